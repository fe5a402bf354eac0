//! Decoding of ESR_EL2, the syndrome of a trap from a guest (and of HSR,
//! its Armv7-A counterpart in HYP mode, which has the same layout: the
//! 32-bit guests' classes are decoded here too).
//!
//! The arch layer reads the register; everything about what the bits mean
//! lives here so it is tested on the host.

/// A guest trap, decoded from ESR_EL2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trap {
    /// WFI (or WFE when `wfe`), trapped because of HCR_EL2.TWI/TWE.
    Wfx { wfe: bool },
    /// HVC (from AArch64, or AArch32/Armv7) with its immediate; ELR
    /// already points past it.
    Hvc { imm: u16 },
    /// SMC (HCR_EL2.TSC / HCR.TSC); ELR points at the SMC itself. From
    /// AArch32 the immediate is not reported: 0.
    Smc { imm: u16 },
    /// MSR/MRS/system instruction trapped.
    SysReg(SysRegAccess),
    /// MCR/MRC to CP15 from a 32-bit guest (trapped by HCR.TSW, TVM, TIDCP...).
    Cp15(Cp15Access),
    /// MCR/MRC to CP14 (the debug registers) from a 32-bit guest, trapped
    /// by HDCR.TDA/TDOSA/TDRA: the same fields as a CP15 access.
    Cp14(Cp15Access),
    /// Stage-2 data abort (EC 0x24).
    DataAbort(DataAbort),
    /// Stage-2 instruction abort (EC 0x20).
    InstrAbort { fsc: u8 },
    /// Anything else; the exception class is kept for the log.
    Other { ec: u8 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SysRegAccess {
    pub op0: u8,
    pub op1: u8,
    pub crn: u8,
    pub crm: u8,
    pub op2: u8,
    /// General-purpose register number (31 = XZR).
    pub rt: u8,
    pub read: bool,
}

impl SysRegAccess {
    pub fn is(&self, r: SysReg) -> bool {
        (self.op0, self.op1, self.crn, self.crm, self.op2) == (r.0, r.1, r.2, r.3, r.4)
    }
}

/// A system register's encoding: (op0, op1, CRn, CRm, op2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SysReg(pub u8, pub u8, pub u8, pub u8, pub u8);

impl SysRegAccess {
    /// A debug or performance-monitor register: trapped by MDCR_EL2 and
    /// read-as-zero / write-ignored for every guest, so that no domain can
    /// count events in another's time (or at EL2), plant breakpoints that
    /// outlive it, or read what another left. The debug registers are all of
    /// op0 = 2 (MDSCR, the breakpoint and watchpoint registers, the OS
    /// lock); the PMU ones are op0 = 3, op1 = 3, CRn = 9 (PMCR, PMCNTEN,
    /// PMCCNTR, PMUSERENR, ...) or CRn = 14, CRm >= 8 (the event counters,
    /// their types, PMCCFILTR), and PMINTENSET/CLR (op1 = 0, CRn = 9, CRm = 14).
    /// The timer registers (CRn = 14, CRm < 8) are not among them.
    pub fn is_debug_or_pmu(&self) -> bool {
        match (self.op0, self.op1, self.crn, self.crm) {
            (2, ..) => true,
            (3, 3, 9, _) => true,
            (3, 3, 14, crm) => crm >= 8,
            (3, 0, 9, 14) => matches!(self.op2, 1 | 2),
            _ => false,
        }
    }
}

/// An MCR (write) or MRC (read) of a 32-bit CP15 register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cp15Access {
    pub opc1: u8,
    pub crn: u8,
    pub crm: u8,
    pub opc2: u8,
    /// The guest register, r0-r14 (r13/r14 are the guest mode's banked ones).
    pub rt: u8,
    pub read: bool,
}

impl Cp15Access {
    /// The ISS of EC 0x03 and 0x05 (MCR/MRC): Opc2, Opc1, CRn, Rt, CRm,
    /// direction.
    fn from_iss(iss: u64) -> Cp15Access {
        Cp15Access {
            opc2: ((iss >> 17) & 7) as u8,
            opc1: ((iss >> 14) & 7) as u8,
            crn: ((iss >> 10) & 0xf) as u8,
            rt: ((iss >> 5) & 0xf) as u8,
            crm: ((iss >> 1) & 0xf) as u8,
            read: iss & 1 == 1,
        }
    }

    /// CP15 registers a 32-bit guest gets read-as-zero, write-ignored when
    /// they trap: the PMU (CRn 9, HDCR.TPM), the implementation-defined
    /// registers HCR.TIDCP traps (CRn 9, 10 and 11: L2 control, TLB
    /// lockdown, DMA, TCM) and CRn 15, which HSTR.T15 traps (CBAR, the
    /// core's diagnostics). As on aarch64 (`is_debug_or_pmu`), a guest sees
    /// no counters and cannot reach the pCPU's own controls.
    pub fn is_raz_wi(&self) -> bool {
        matches!(self.crn, 9 | 10 | 11 | 15)
    }

    /// ACTLR (c1, c0, 1) or ACTLR2 (c1, c0, 3), trapped by HCR.TAC: the
    /// pCPU's own controls (on a Cortex-A15, SMP coherency among them),
    /// which a guest must not change for the hypervisor and the domains
    /// that share its pCPU.
    pub fn is_actlr(&self) -> bool {
        self.opc1 == 0 && self.crn == 1 && self.crm == 0 && matches!(self.opc2, 1 | 3)
    }
}

pub const ICC_SGI1R_EL1: SysReg = SysReg(3, 0, 12, 11, 5);
pub const ICC_ASGI1R_EL1: SysReg = SysReg(3, 1, 12, 11, 6);
pub const ICC_SGI0R_EL1: SysReg = SysReg(3, 2, 12, 11, 7);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataAbort {
    /// The syndrome describes the access (ISV): only then can it be emulated.
    pub valid: Option<Access>,
    /// Fault during a stage-1 table walk.
    pub s1ptw: bool,
    pub fsc: u8,
}

/// A single load or store the hypervisor can emulate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// Access size in bytes: 1, 2, 4 or 8.
    pub size: u8,
    pub write: bool,
    /// Register transferred (31 = XZR/WZR).
    pub reg: u8,
    /// Sign-extend a load.
    pub sign_extend: bool,
    /// 64-bit register (else the value is 32 bits wide).
    pub sf: bool,
}

impl Access {
    /// The value a load returns to the register, after sign/zero extension.
    pub fn load_value(&self, raw: u64) -> u64 {
        let bits = self.size as u32 * 8;
        let raw = if bits >= 64 { raw } else { raw & ((1u64 << bits) - 1) };
        let v = if self.sign_extend && bits < 64 {
            let shift = 64 - bits;
            (((raw << shift) as i64) >> shift) as u64
        } else {
            raw
        };
        if self.sf {
            v
        } else {
            v & 0xffff_ffff
        }
    }

    /// The bytes a store writes, from the register value.
    pub fn store_value(&self, reg_value: u64) -> u64 {
        let bits = self.size as u32 * 8;
        if bits >= 64 {
            reg_value
        } else {
            reg_value & ((1u64 << bits) - 1)
        }
    }
}

/// Whether an instruction trapped from AArch32 passed its condition code:
/// for the classes whose syndrome carries one (EC 0x01-0x0e and SMC,
/// bits 24 CV and 23:20 COND), an implementation may trap a conditional
/// instruction whose condition fails, and the hypervisor must then treat
/// it as not executed. `spsr`'s NZCV (bits 31:28) decide; without a valid
/// COND (CV = 0, a Thumb IT block's instruction) the Thumb ITSTATE's
/// condition does. Every other class (and AArch64) passes.
pub fn a32_condition_passed(esr: u64, spsr: u64) -> bool {
    let ec = ec(esr);
    if !((0x01..=0x0e).contains(&ec) || ec == EC_SMC32) || spsr & (1 << 4) == 0 {
        return true;
    }
    let cond = if esr & (1 << 24) != 0 {
        (esr >> 20) & 0xf
    } else {
        // ITSTATE[7:4] is the condition (IT[7:2] in bits 15:10, IT[1:0] in
        // 26:25); outside an IT block (IT[3:0] = 0) it always passes.
        let it = ((spsr >> 8) & 0xfc) | ((spsr >> 25) & 0x3);
        if it & 0xf == 0 {
            return true;
        }
        it >> 4
    };
    let (n, z, c, v) = (spsr >> 31 & 1 == 1, spsr >> 30 & 1 == 1, spsr >> 29 & 1 == 1, spsr >> 28 & 1 == 1);
    let base = match cond >> 1 {
        0 => z,
        1 => c,
        2 => n,
        3 => v,
        4 => c && !z,
        5 => n == v,
        6 => n == v && !z,
        _ => return true, // AL (0b1110) and the unconditional 0b1111
    };
    base != (cond & 1 == 1)
}

/// `spsr` after the hypervisor completes (or skips) the trapped AArch32
/// instruction: a Thumb IT block's ITSTATE moves on to the next
/// instruction, as the CPU would have moved it (ITAdvance), so the rest
/// of the block keeps its conditions. MMIO accesses trap from inside IT
/// blocks (Thumb-2 kernels' conditional stores), so clearing it would run
/// the block's remaining instructions unconditionally.
pub fn a32_it_advance(spsr: u64) -> u64 {
    let it = ((spsr >> 8) & 0xfc) | ((spsr >> 25) & 0x3);
    let next = if it & 0x7 == 0 { 0 } else { (it & 0xe0) | ((it << 1) & 0x1f) };
    let cleared = spsr & !(0x3f << 10 | 0b11 << 25);
    cleared | (next & 0xfc) << 8 | (next & 0x3) << 25
}

pub const EC_UNKNOWN: u8 = 0x00;
pub const EC_WFX: u8 = 0x01;
/// MCR/MRC to CP15 from AArch32.
pub const EC_CP15_32: u8 = 0x03;
pub const EC_CP14_32: u8 = 0x05;
pub const EC_HVC32: u8 = 0x12;
pub const EC_SMC32: u8 = 0x13;
pub const EC_HVC64: u8 = 0x16;
pub const EC_SMC64: u8 = 0x17;
pub const EC_SYSREG: u8 = 0x18;
pub const EC_IABT_LOWER: u8 = 0x20;
pub const EC_IABT_CUR: u8 = 0x21;
pub const EC_DABT_LOWER: u8 = 0x24;
pub const EC_DABT_CUR: u8 = 0x25;

/// Length of the trapped instruction (ESR.IL): 2 for a 16-bit T32 one.
pub fn insn_len(esr: u64) -> u64 {
    if esr & (1 << 25) != 0 {
        4
    } else {
        2
    }
}

pub fn ec(esr: u64) -> u8 {
    ((esr >> 26) & 0x3f) as u8
}

pub fn decode(esr: u64) -> Trap {
    let iss = esr & 0x1ff_ffff;
    match ec(esr) {
        EC_WFX => Trap::Wfx { wfe: iss & 1 == 1 },
        EC_HVC64 | EC_HVC32 => Trap::Hvc { imm: iss as u16 },
        EC_SMC64 => Trap::Smc { imm: iss as u16 },
        EC_SMC32 => Trap::Smc { imm: 0 },
        EC_CP15_32 => Trap::Cp15(Cp15Access::from_iss(iss)),
        EC_CP14_32 => Trap::Cp14(Cp15Access::from_iss(iss)),
        EC_SYSREG => Trap::SysReg(SysRegAccess {
            op0: ((iss >> 20) & 3) as u8,
            op2: ((iss >> 17) & 7) as u8,
            op1: ((iss >> 14) & 7) as u8,
            crn: ((iss >> 10) & 0xf) as u8,
            rt: ((iss >> 5) & 0x1f) as u8,
            crm: ((iss >> 1) & 0xf) as u8,
            read: iss & 1 == 1,
        }),
        EC_DABT_LOWER => {
            let isv = iss & (1 << 24) != 0;
            Trap::DataAbort(DataAbort {
                valid: isv.then(|| Access {
                    size: 1 << ((iss >> 22) & 3),
                    sign_extend: iss & (1 << 21) != 0,
                    reg: ((iss >> 16) & 0x1f) as u8,
                    sf: iss & (1 << 15) != 0,
                    write: iss & (1 << 6) != 0,
                }),
                s1ptw: iss & (1 << 7) != 0,
                fsc: (iss & 0x3f) as u8,
            })
        }
        EC_IABT_LOWER => Trap::InstrAbort { fsc: (iss & 0x3f) as u8 },
        ec => Trap::Other { ec },
    }
}

/// The syndrome the guest sees for an undefined instruction (EC 0, IL=1).
pub const fn undef_syndrome() -> u64 {
    1 << 25
}

/// The syndrome the guest sees for an external abort on its access: the
/// class depends on whether the guest was at EL1 or EL0.
pub const fn abort_syndrome(instruction: bool, from_el0: bool) -> u64 {
    let ec = match (instruction, from_el0) {
        (true, true) => EC_IABT_LOWER,
        (true, false) => EC_IABT_CUR,
        (false, true) => EC_DABT_LOWER,
        (false, false) => EC_DABT_CUR,
    };
    // FSC 0x10: synchronous external abort, not on a table walk.
    ((ec as u64) << 26) | (1 << 25) | 0x10
}

#[cfg(test)]
mod tests {
    #[test]
    fn a32_traps_whose_condition_failed_are_not_executed() {
        const USR: u64 = 0x10;
        const Z: u64 = 1 << 30;
        // WFI with COND = EQ (0b0000), CV set.
        let wfi_eq = (EC_WFX as u64) << 26 | 1 << 25 | 1 << 24;
        assert!(a32_condition_passed(wfi_eq, USR | Z));
        assert!(!a32_condition_passed(wfi_eq, USR));
        // NE passes exactly when EQ does not.
        let mcr_ne = (EC_CP15_32 as u64) << 26 | 1 << 25 | 1 << 24 | 0x1 << 20;
        assert!(!a32_condition_passed(mcr_ne, USR | Z) && a32_condition_passed(mcr_ne, USR));
        // GE: N == V; GT: N == V and not Z; AL always.
        let cond = |c: u64| (EC_CP15_32 as u64) << 26 | 1 << 24 | c << 20;
        assert!(a32_condition_passed(cond(0xa), USR | 1 << 31 | 1 << 28));
        assert!(!a32_condition_passed(cond(0xa), USR | 1 << 31));
        assert!(!a32_condition_passed(cond(0xc), USR | Z));
        assert!(a32_condition_passed(cond(0xe), USR));
        // No COND (CV = 0) outside an IT block: executed.
        assert!(a32_condition_passed((EC_CP15_32 as u64) << 26, USR));
        // In an IT block with condition EQ (ITSTATE 0b0000_1000), Z clear: not.
        let it_eq = USR | 0b10 << 10;
        assert!(!a32_condition_passed((EC_CP15_32 as u64) << 26, it_eq));
        assert!(a32_condition_passed((EC_CP15_32 as u64) << 26, it_eq | Z));
        // Data aborts, HVC and anything from AArch64 (M[4] = 0) always pass.
        assert!(a32_condition_passed((EC_DABT_LOWER as u64) << 26 | 1 << 24, USR));
        assert!(a32_condition_passed((EC_HVC32 as u64) << 26 | 1 << 24, USR));
        assert!(a32_condition_passed(wfi_eq, 0x3c5));
    }

    use super::*;

    #[test]
    fn skipping_an_instruction_in_an_it_block_moves_itstate_on() {
        // ITSTATE as (IT[7:0]) packed into SPSR bits 15:10 and 26:25.
        let pack = |it: u64| (it & 0xfc) << 8 | (it & 0x3) << 25 | 0x30;
        let unpack = |spsr: u64| ((spsr >> 8) & 0xfc) | ((spsr >> 25) & 0x3);
        // ITTE EQ: firstcond 0000, mask 0b0110 then shifted on; three
        // instructions: EQ, EQ, NE.
        let itte_eq = 0b0000_0110;
        let second = a32_it_advance(pack(itte_eq));
        assert_eq!(unpack(second), 0b0000_1100, "the second keeps EQ");
        let third = a32_it_advance(second);
        assert_eq!(unpack(third) >> 5, 0b000, "firstcond[3:1] stays");
        assert_eq!(unpack(third), 0b0001_1000, "the third is NE (low bit from the mask)");
        assert_eq!(unpack(a32_it_advance(third)), 0, "the block ends");
        // Outside a block, nothing changes; the other bits are kept.
        assert_eq!(a32_it_advance(0x6000_0030), 0x6000_0030);
        assert_eq!(a32_it_advance(pack(0b0000_1000) | 1 << 31) & !(0x3f << 10 | 0b11 << 25), 1 << 31 | 0x30);
    }

    /// Syndromes as an Armv7-A CPU reports them in HSR for its guests.
    #[test]
    fn armv7_guest_traps_decode() {
        // HVC #0x1234 from a 32-bit guest: EC 0x12, IL=1, imm16 in the ISS.
        assert_eq!(
            decode(0x12 << 26 | 1 << 25 | 0x1234),
            Trap::Hvc { imm: 0x1234 }
        );
        // SMC (trapped by HCR.TSC): no immediate from AArch32.
        assert_eq!(decode(0x13 << 26 | 1 << 25), Trap::Smc { imm: 0 });
        // MRC p15, 0, r3, c1, c0, 0 (SCTLR read): Opc2 0, Opc1 0, CRn 1,
        // Rt 3, CRm 0, direction 1 (read); CV and COND in the top bits.
        let iss = 1 << 24 | 0xe << 20 | 1 << 10 | 3 << 5 | 1;
        assert_eq!(
            decode(0x03 << 26 | 1 << 25 | iss),
            Trap::Cp15(Cp15Access {
                opc1: 0,
                crn: 1,
                crm: 0,
                opc2: 0,
                rt: 3,
                read: true
            })
        );
        // MRC p15, 0, r0, c1, c0, 1: ACTLR, as Linux's A15 set-up reads it.
        match decode(0x03 << 26 | 1 << 25 | 1 << 24 | 0xe << 20 | 1 << 17 | 1 << 10 | 1) {
            Trap::Cp15(a) => assert!(a.is_actlr() && !a.is_raz_wi()),
            other => panic!("{other:?}"),
        }
        // MRC p14, 0, r0, c0, c0, 0 (DBGDIDR, as Linux's hw_breakpoint reads it).
        assert_eq!(
            decode(0x05 << 26 | 1 << 25 | 1 << 24 | 0xe << 20 | 1),
            Trap::Cp14(Cp15Access { opc1: 0, crn: 0, crm: 0, opc2: 0, rt: 0, read: true })
        );
        // MCR p15, 0, r12, c7, c14, 2 (DCCISW, a set/way clean): a write.
        let iss = 2 << 17 | 7 << 10 | 12 << 5 | 14 << 1;
        assert_eq!(
            decode(0x03 << 26 | 1 << 25 | iss),
            Trap::Cp15(Cp15Access {
                opc1: 0,
                crn: 7,
                crm: 14,
                opc2: 2,
                rt: 12,
                read: false
            })
        );
        // A 32-bit store to an emulated device (str r5, [..]): EC 0x24 with
        // the same ISS as from AArch64, a 32-bit register.
        let iss = 1 << 24 | 2 << 22 | 5 << 16 | 1 << 6 | 0x07;
        match decode(0x24 << 26 | 1 << 25 | iss) {
            Trap::DataAbort(DataAbort { valid: Some(a), .. }) => {
                assert_eq!((a.size, a.write, a.reg, a.sf), (4, true, 5, false))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn debug_and_pmu_registers_are_told_from_the_timer_and_the_gic() {
        let r = |op0, op1, crn, crm, op2| SysRegAccess { op0, op1, crn, crm, op2, rt: 0, read: true };
        for (name, a) in [
            ("MDSCR_EL1", r(2, 0, 0, 2, 2)),
            ("OSLAR_EL1", r(2, 0, 1, 0, 4)),
            ("DBGBVR0_EL1", r(2, 0, 0, 0, 4)),
            ("PMCR_EL0", r(3, 3, 9, 12, 0)),
            ("PMUSERENR_EL0", r(3, 3, 9, 14, 0)),
            ("PMCCNTR_EL0", r(3, 3, 9, 13, 0)),
            ("PMEVCNTR0_EL0", r(3, 3, 14, 8, 0)),
            ("PMCCFILTR_EL0", r(3, 3, 14, 15, 7)),
            ("PMINTENSET_EL1", r(3, 0, 9, 14, 1)),
        ] {
            assert!(a.is_debug_or_pmu(), "{name}");
        }
        for (name, a) in [
            ("CNTP_CTL_EL0", r(3, 3, 14, 2, 1)),
            ("CNTV_CVAL_EL0", r(3, 3, 14, 3, 2)),
            ("ICC_SGI1R_EL1", r(3, 0, 12, 11, 5)),
            ("SCTLR_EL1", r(3, 0, 1, 0, 0)),
        ] {
            assert!(!a.is_debug_or_pmu(), "{name}");
        }
    }

    #[test]
    fn decodes_hvc_with_xen_tag() {
        // EC 0x16, IL, imm 0xEA1.
        let esr = (0x16u64 << 26) | (1 << 25) | 0xEA1;
        assert_eq!(decode(esr), Trap::Hvc { imm: 0xEA1 });
    }

    #[test]
    fn decodes_sgi1r_write() {
        // MSR ICC_SGI1R_EL1, x3: op0=3 op2=5 op1=0 CRn=12 Rt=3 CRm=11 write.
        let iss = (3 << 20) | (5 << 17) | (12 << 10) | (3 << 5) | (11 << 1);
        let t = decode((0x18u64 << 26) | (1 << 25) | iss);
        match t {
            Trap::SysReg(a) => {
                assert!(a.is(ICC_SGI1R_EL1));
                assert!(!a.is(ICC_SGI0R_EL1));
                assert_eq!(a.rt, 3);
                assert!(!a.read);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn decodes_data_abort_access() {
        // ISV, SAS=2 (4 bytes), SRT=5, WnR, FSC=translation fault level 1.
        let iss = (1 << 24) | (2 << 22) | (5 << 16) | (1 << 6) | 0x05;
        let t = decode((0x24u64 << 26) | (1 << 25) | iss);
        assert_eq!(
            t,
            Trap::DataAbort(DataAbort {
                valid: Some(Access { size: 4, write: true, reg: 5, sign_extend: false, sf: false }),
                s1ptw: false,
                fsc: 5
            })
        );
        // No ISV: not emulable.
        let t = decode((0x24u64 << 26) | 0x07);
        assert!(matches!(t, Trap::DataAbort(DataAbort { valid: None, .. })));
    }

    #[test]
    fn load_values_are_extended_like_the_cpu_does() {
        let byte_signed = Access { size: 1, write: false, reg: 0, sign_extend: true, sf: true };
        assert_eq!(byte_signed.load_value(0x1ff), u64::MAX);
        let half_w = Access { size: 2, write: false, reg: 0, sign_extend: true, sf: false };
        assert_eq!(half_w.load_value(0x8000), 0xffff_8000);
        let word = Access { size: 4, write: false, reg: 0, sign_extend: false, sf: false };
        assert_eq!(word.load_value(0xdead_beef_1234_5678), 0x1234_5678);
        assert_eq!(word.store_value(0xdead_beef_1234_5678), 0x1234_5678);
    }

    #[test]
    fn instruction_length_follows_il() {
        assert_eq!(insn_len((0x01 << 26) | (1 << 25)), 4);
        assert_eq!(insn_len(0x01 << 26), 2, "a 16-bit T32 WFE from an AArch32 EL0 task");
    }

    #[test]
    fn abort_syndromes_name_the_right_class() {
        assert_eq!(ec(abort_syndrome(false, false)), EC_DABT_CUR);
        assert_eq!(ec(abort_syndrome(true, true)), EC_IABT_LOWER);
        assert_eq!(ec(undef_syndrome()), EC_UNKNOWN);
    }
}
