//! Exceptions the hypervisor injects into a 32-bit (Armv7-A PL1) guest: an
//! undefined instruction for what it may not do, an abort for an access
//! nothing answers. Worked out here, applied by the Armv7-A arch layer
//! (which writes the banked LR and SPSR, the fault registers, CPSR and PC).
//!
//! The rules are the architecture's exception entry (Arm ARM, Armv7-A,
//! "Exception entry"): the mode, the vector, the return address offset,
//! which of A/I/F are masked, the instruction set and endianness from
//! SCTLR, and the fault status format the guest's TTBCR.EAE chose.

/// What is injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Undefined,
    /// An external abort on an instruction fetch at `address`.
    PrefetchAbort {
        address: u32,
    },
    /// An external abort on a data access at `address`.
    DataAbort {
        address: u32,
        write: bool,
    },
}

/// The guest state the entry depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Guest {
    /// CPSR when the exception was taken (SPSR_hyp at the trap).
    pub cpsr: u32,
    /// The address of the instruction that caused it (ELR_hyp at the trap).
    pub pc: u32,
    /// Its SCTLR (V, TE, EE) and VBAR.
    pub sctlr: u32,
    pub vbar: u32,
    /// TTBCR.EAE: long-descriptor fault status format.
    pub lpae: bool,
}

/// The guest state after the entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub cpsr: u32,
    pub pc: u32,
    /// The new mode's banked LR and SPSR.
    pub lr: u32,
    pub spsr: u32,
    /// For an abort: (DFSR, DFAR) or (IFSR, IFAR), to write.
    pub fault: Option<Fault>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Data { dfsr: u32, dfar: u32 },
    Prefetch { ifsr: u32, ifar: u32 },
}

pub const MODE_ABT: u32 = 0x17;
pub const MODE_UND: u32 = 0x1b;
const MODE_MASK: u32 = 0x1f;
const T: u32 = 1 << 5;
const I: u32 = 1 << 7;
const A: u32 = 1 << 8;
const E: u32 = 1 << 9;
/// IT[7:2] (bits 15:10), J (24), IT[1:0] (26:25).
const IT_J: u32 = 0x3f << 10 | 1 << 24 | 0b11 << 25;

const SCTLR_V: u32 = 1 << 13;
const SCTLR_EE: u32 = 1 << 25;
const SCTLR_TE: u32 = 1 << 30;

/// Synchronous external abort: the short-descriptor FS (0b01000) and the
/// long-descriptor STATUS (0b010000) with the LPAE bit.
const FS_SHORT_SYNC_EXTERNAL: u32 = 0b01000;
const FS_LONG_SYNC_EXTERNAL: u32 = 0b01_0000 | 1 << 9;
const FSR_WNR: u32 = 1 << 11;

/// The entry into the guest's handler for `kind`.
pub fn enter(g: Guest, kind: Kind) -> Entry {
    let (mode, offset, lr, mask) = match kind {
        // Return address: the next instruction (ARM +4, Thumb +2).
        Kind::Undefined => (
            MODE_UND,
            0x04,
            g.pc.wrapping_add(if g.cpsr & T != 0 { 2 } else { 4 }),
            I,
        ),
        Kind::PrefetchAbort { .. } => (MODE_ABT, 0x0c, g.pc.wrapping_add(4), A | I),
        Kind::DataAbort { .. } => (MODE_ABT, 0x10, g.pc.wrapping_add(8), A | I),
    };
    let base = if g.sctlr & SCTLR_V != 0 {
        0xffff_0000
    } else {
        g.vbar & !0x1f
    };
    let mut cpsr = (g.cpsr & !(MODE_MASK | T | E | IT_J)) | mode | mask;
    if g.sctlr & SCTLR_TE != 0 {
        cpsr |= T;
    }
    if g.sctlr & SCTLR_EE != 0 {
        cpsr |= E;
    }
    let status = if g.lpae {
        FS_LONG_SYNC_EXTERNAL
    } else {
        FS_SHORT_SYNC_EXTERNAL
    };
    let fault = match kind {
        Kind::Undefined => None,
        Kind::PrefetchAbort { address } => Some(Fault::Prefetch {
            ifsr: status,
            ifar: address,
        }),
        Kind::DataAbort { address, write } => Some(Fault::Data {
            dfsr: status | if write { FSR_WNR } else { 0 },
            dfar: address,
        }),
    };
    Entry {
        cpsr,
        pc: base.wrapping_add(offset),
        lr,
        spsr: g.cpsr,
        fault,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SVC_ARM: u32 = 0x13; // SVC mode, ARM, A/I/F clear
    const F: u32 = 1 << 6;

    fn guest() -> Guest {
        Guest {
            cpsr: SVC_ARM,
            pc: 0x8000_1000,
            sctlr: 0x00c5_0078,
            vbar: 0xc000_8000,
            lpae: true,
        }
    }

    #[test]
    fn an_undefined_instruction_enters_und_at_vbar_plus_4() {
        let e = enter(guest(), Kind::Undefined);
        assert_eq!(e.cpsr & 0x1f, MODE_UND);
        assert_eq!(e.pc, 0xc000_8004);
        assert_eq!(e.lr, 0x8000_1004, "the next ARM instruction");
        assert_eq!(e.spsr, SVC_ARM);
        assert_eq!(
            e.cpsr & (A | I | F),
            I,
            "IRQs masked; aborts and FIQs as they were (none of these masks FIQs)"
        );
        assert_eq!(e.fault, None);
        // From Thumb code, to a kernel built for Thumb (SCTLR.TE).
        let g = Guest {
            cpsr: SVC_ARM | T,
            sctlr: guest().sctlr | SCTLR_TE,
            ..guest()
        };
        let e = enter(g, Kind::Undefined);
        assert_eq!(e.lr, 0x8000_1002);
        assert_ne!(e.cpsr & T, 0);
    }

    #[test]
    fn a_data_abort_enters_abt_with_the_fault_described() {
        let e = enter(
            guest(),
            Kind::DataAbort {
                address: 0x0900_0040,
                write: true,
            },
        );
        assert_eq!(
            (e.cpsr & 0x1f, e.pc, e.lr),
            (MODE_ABT, 0xc000_8010, 0x8000_1008)
        );
        assert_eq!(e.cpsr & (A | I), A | I);
        assert_eq!(
            e.fault,
            Some(Fault::Data {
                dfsr: 0x210 | FSR_WNR,
                dfar: 0x0900_0040
            }),
            "LPAE format, write"
        );
        // Short descriptors, high vectors.
        let g = Guest {
            lpae: false,
            sctlr: guest().sctlr | SCTLR_V,
            ..guest()
        };
        let e = enter(
            g,
            Kind::DataAbort {
                address: 4,
                write: false,
            },
        );
        assert_eq!(e.pc, 0xffff_0010);
        assert_eq!(
            e.fault,
            Some(Fault::Data {
                dfsr: 0x008,
                dfar: 4
            })
        );
    }

    #[test]
    fn a_prefetch_abort_and_the_cpsr_bits_that_never_survive() {
        // From a Thumb IT block, big-endian data: the handler starts in
        // ARM (TE clear), little-endian (EE clear), outside any IT block.
        let g = Guest {
            cpsr: SVC_ARM | T | E | IT_J & !(1 << 24),
            ..guest()
        };
        let e = enter(
            g,
            Kind::PrefetchAbort {
                address: 0x8000_1000,
            },
        );
        assert_eq!((e.pc, e.lr), (0xc000_800c, 0x8000_1004));
        assert_eq!(e.cpsr & (T | E | IT_J), 0);
        assert_eq!(e.spsr, g.cpsr, "the old state is kept for the return");
        assert_eq!(
            e.fault,
            Some(Fault::Prefetch {
                ifsr: 0x210,
                ifar: 0x8000_1000
            })
        );
    }
}
