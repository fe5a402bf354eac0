//! A vCPU's PL1 state on Armv7-A: entering a domain (VTTBR, HCR and the
//! trap registers), its reset, the trap syndrome, exceptions injected into
//! it (worked out by `hv_core::a32_exception`), and TLB maintenance.

use super::banked;
use super::entry::Frame;
use super::sysreg::{self, isb, read32, read64, write32, write64};
use hv_core::a32_exception::{self, Fault, Kind};

const HCR_VM: u32 = 1 << 0;
const HCR_SWIO: u32 = 1 << 1;
const HCR_FMO: u32 = 1 << 3;
const HCR_IMO: u32 = 1 << 4;
const HCR_AMO: u32 = 1 << 5;
const HCR_FB: u32 = 1 << 9;
/// Barriers the guest issues are upgraded to inner shareable.
const HCR_BSU_IS: u32 = 1 << 10;
const HCR_TWI: u32 = 1 << 13;
const HCR_TWE: u32 = 1 << 14;
const HCR_TSC: u32 = 1 << 19;
/// Implementation-defined CP15 registers (c9-c11's): emulated as RAZ/WI.
const HCR_TIDCP: u32 = 1 << 20;
/// ACTLR and ACTLR2: the pCPU's own controls (SMP coherency on a
/// Cortex-A15), read but never written by guests.
const HCR_TAC: u32 = 1 << 21;
/// Set/way cache maintenance traps (see `hv_core::setway`).
const HCR_TSW: u32 = 1 << 22;

/// HDCR: PMU (TPM, TPMCR) and debug (TDA, TDOSA, TDRA) accesses trap
/// and read as zero (HPMN keeps PMCR.N: 0 is UNPREDICTABLE).
const HDCR_TRAPS: u32 = 1 << 5 | 1 << 6 | 1 << 9 | 1 << 10 | 1 << 11;

/// HCPTR: only CP10/CP11 (VFP and Advanced SIMD) are the guest's; the
/// others trap (bits of coprocessors the CPU lacks are RES1), and so do
/// the CP14 trace registers (TTA, bit 20: read as zero).
const HCPTR_GUEST: u32 = 0x33ff | 1 << 20;

/// SCTLR at reset (Cortex-A15's: the RES1 bits, MMU and caches off).
pub const SCTLR_RESET: u32 = 0x00c5_0078;

/// Points this pCPU's stage 2 and traps at a domain.
pub fn enter_domain(vmid: u16, s2_root: super::memory::Stage2Root, trap_wfi: bool) {
    let mut hcr = HCR_VM | HCR_SWIO | HCR_FMO | HCR_IMO | HCR_AMO | HCR_FB | HCR_BSU_IS | HCR_TSC | HCR_TSW | HCR_TIDCP | HCR_TAC;
    if trap_wfi {
        hcr |= HCR_TWI | HCR_TWE;
    }
    write32!(4, c2, c1, 2, hv_core::stage2::vtcr_a32() as u32); // VTCR
    // VMIDs are 8 bits here: domains are far fewer.
    // SAFETY: the root is a domain's stage-2 table from its own pool
    // (`Stage2Root` is only made from one), which stays in place for the
    // hypervisor's life and maps only that domain's memory and devices.
    unsafe { sysreg::set_vttbr(s2_root.addr(), vmid as u8) };
    sysreg::set_hcr(hcr);
    // HSTR.T15: CRn 15, the core's own (CBAR, cache and TLB diagnostics),
    // traps and reads as zero (HCR.TIDCP leaves it alone on Armv7).
    write32!(4, c1, c1, 3, HSTR_T15); // HSTR
    write32!(4, c1, c1, 2, HCPTR_GUEST); // HCPTR
    let hpmn = (read32!(0, c9, c12, 0) >> 11) & 0x1f; // PMCR.N
    write32!(4, c1, c1, 1, hpmn | HDCR_TRAPS); // HDCR
    write32!(4, c14, c1, 0, 1); // CNTHCTL: PL1 reads the physical counter; its timer traps
    write32!(4, c0, c0, 0, sysreg::midr()); // VPIDR
    isb();
}

/// HSTR: trap the guest's CP15 accesses with primary register c15.
const HSTR_T15: u32 = 1 << 15;

/// Resets the running vCPU's PL1 state for vCPU `index`: MMU and caches
/// off, vectors at 0, the virtual timer off and counting from
/// `counter_offset` (the domain's epoch), every banked register zero.
pub fn reset_el1(index: u64, counter_offset: u64) {
    sysreg::set_cntvoff(counter_offset);
    write32!(0, c14, c3, 1, 0); // CNTV_CTL
    write64!(3, c14, 0); // CNTV_CVAL
    // VMPIDR, SCTLR and every other PL1 register as the context switch
    // knows them, at their reset values; banked registers and VFP zero.
    super::context::load_pl1(&super::context::VcpuContext::fresh(index, Frame::ZERO));
    super::context::clear_fp();
    isb();
}

/// Invalidates every guest TLB entry (all VMIDs, stage 1 and 2) on every
/// pCPU: after a domain's stage-2 changed under a restart.
pub fn flush_guest_tlbs() {
    sysreg::dsb_ishst();
    write32!(4, c8, c3, 4, 0); // TLBIALLNSNHIS
    sysreg::dsb_ish();
    isb();
}

/// Invalidates the TLB entries of one domain's stage 2 after a leaf
/// changed. Armv7 has no by-VMID broadcast without switching VTTBR, so
/// this takes every guest's (TLBIALLNSNHIS): correct, and rare (grant
/// map and unmap of a backend).
pub fn flush_tlbs_of(_vmid: u16, _root: super::memory::Stage2Root) {
    flush_guest_tlbs();
}

/// Makes stage-2 table writes visible to every table walker before the
/// next guest access.
pub fn publish_table_writes() {
    sysreg::dsb_ishst();
    isb();
}

/// Whether the running vCPU has its data cache on (SCTLR.C).
pub fn data_cache_on() -> bool {
    read32!(0, c1, c0, 0) & (1 << 2) != 0
}

/// The running vCPU's stage-1 registers, for `hv_core::stage1` (which
/// walks LPAE's long descriptors; short ones it refuses).
pub fn stage1_regs() -> hv_core::stage1::Regs {
    hv_core::stage1::Regs {
        sctlr: read32!(0, c1, c0, 0) as u64,
        tcr: read32!(0, c2, c0, 2) as u64, // TTBCR
        ttbr0: read64!(0, c2),
        ttbr1: read64!(1, c2),
        aarch32: true,
    }
}

/// The pCPU's ACTLR, as a guest reads it.
pub fn actlr() -> u64 {
    read32!(0, c1, c0, 1) as u64
}

/// The running vCPU's vector base (VBAR).
pub fn vbar_el1() -> u64 {
    read32!(0, c12, c0, 0) as u64
}

/// Injects an undefined instruction at `at` (the trapped instruction).
pub fn inject_undefined(frame: &mut Frame, at: u64) {
    inject(frame, at as u32, Kind::Undefined);
}

/// Injects a synchronous external abort on an instruction fetch or a data
/// access at the guest's virtual address `far`, at the trapped instruction.
pub fn inject_abort(frame: &mut Frame, instruction: bool, far: u64) {
    let address = far as u32;
    let kind = if instruction { Kind::PrefetchAbort { address } } else { Kind::DataAbort { address, write: hsr_write() } };
    inject(frame, frame.elr, kind);
}

/// Whether the data abort HYP took last was a write (HSR.WnR).
fn hsr_write() -> bool {
    sysreg::hsr() & (1 << 6) != 0
}

fn inject(frame: &mut Frame, pc: u32, kind: Kind) {
    let guest = a32_exception::Guest {
        cpsr: frame.spsr,
        pc,
        sctlr: read32!(0, c1, c0, 0),
        vbar: read32!(0, c12, c0, 0),
        lpae: read32!(0, c2, c0, 2) & (1 << 31) != 0,
    };
    let e = a32_exception::enter(guest, kind);
    let mode = e.cpsr & 0x1f;
    banked::set_lr(mode, e.lr);
    banked::set_spsr(mode, e.spsr);
    match e.fault {
        Some(Fault::Data { dfsr, dfar }) => {
            write32!(0, c5, c0, 0, dfsr);
            write32!(0, c6, c0, 0, dfar);
        }
        Some(Fault::Prefetch { ifsr, ifar }) => {
            write32!(0, c5, c0, 1, ifsr);
            write32!(0, c6, c0, 2, ifar);
        }
        None => {}
    }
    frame.elr = e.pc;
    frame.spsr = e.cpsr;
}

/// The last exit's syndrome (HSR), the guest's faulting virtual address
/// (HIFAR for an instruction abort, else HDFAR) and IPA (HPFAR).
pub fn trap_syndrome() -> (u64, u64, u64) {
    let hsr = sysreg::hsr();
    let far = if hsr >> 26 == hv_core::esr::EC_IABT_LOWER as u32 { sysreg::hifar() } else { sysreg::hdfar() };
    let hpfar = read32!(4, c6, c0, 4) as u64;
    let ipa = (hpfar & !0xf) << 8 | (far as u64 & 0xfff);
    (hsr as u64, far as u64, ipa)
}
