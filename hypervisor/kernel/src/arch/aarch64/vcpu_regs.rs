//! The vCPU state that lives in EL1 and EL2 system registers. With the null
//! scheduler a pCPU runs one vCPU for good, so this state stays in the
//! registers and is only (re)initialised when the vCPU starts.

use super::entry::Frame;
use super::sysreg::{isb, read, write};

const HCR_VM: u64 = 1 << 0;
const HCR_SWIO: u64 = 1 << 1;
const HCR_FMO: u64 = 1 << 3;
const HCR_IMO: u64 = 1 << 4;
const HCR_AMO: u64 = 1 << 5;
const HCR_FB: u64 = 1 << 9;
const HCR_BSU_IS: u64 = 1 << 10;
const HCR_TWI: u64 = 1 << 13;
const HCR_TWE: u64 = 1 << 14;
const HCR_TSC: u64 = 1 << 19;
/// Set/way cache maintenance traps (see `hv_core::setway`).
const HCR_TSW: u64 = 1 << 22;
const HCR_TIDCP: u64 = 1 << 20;
const HCR_RW: u64 = 1 << 31;

/// EL1h with D, A, I, F masked: how a vCPU and an injected exception start.
pub const SPSR_EL1H_MASKED: u64 = 0x3c5;
const SCTLR_EL1_RESET: u64 = 0x30D0_0800;

/// Points this pCPU's stage-2 and traps at a domain.
pub fn enter_domain(vmid: u16, s2_root: super::memory::Stage2Root, trap_wfi: bool) {
    let vtcr = hv_core::stage2::vtcr();
    let mut hcr = HCR_VM | HCR_SWIO | HCR_FMO | HCR_IMO | HCR_AMO | HCR_FB | HCR_BSU_IS | HCR_TSC | HCR_TSW | HCR_TIDCP | HCR_RW;
    if trap_wfi {
        hcr |= HCR_TWI | HCR_TWE;
    }
    write!(vtcr_el2, vtcr);
    write!(vttbr_el2, ((vmid as u64) << 48) | s2_root.addr());
    write!(hcr_el2, hcr);
    // EL1 may read the physical counter but not program the physical timer.
    write!(cnthctl_el2, 1);
    // FP/SIMD not trapped (guests own them; the hypervisor is soft-float).
    write!(cptr_el2, 0x33ff);
    write!(vpidr_el2, read!(midr_el1));
    write!(mdcr_el2, mdcr());
    isb();
}

/// MDCR_EL2 for every domain, worked out once (this runs at every switch):
/// debug and PMU registers trapped (TPMCR, TPM, TDA, TDOSA, TDRA) and
/// emulated read-as-zero, so no domain reaches the physical ones, which
/// other domains share on this pCPU; counters do not count at EL2 (HPMD,
/// where the PMU has it). HPMN stays the counters' number.
fn mdcr() -> u64 {
    static MDCR: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
    let cached = MDCR.load(core::sync::atomic::Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    let hpmn = (read!(pmcr_el0) >> 11) & 0x1f;
    let pmuver = (read!(id_aa64dfr0_el1) >> 8) & 0xf;
    let hpmd = if (4..0xf).contains(&pmuver) { 1 << 17 } else { 0 };
    let v = hpmn | (1 << 5) | (1 << 6) | (1 << 9) | (1 << 10) | (1 << 11) | hpmd;
    MDCR.store(v, core::sync::atomic::Ordering::Relaxed);
    v
}

/// Fresh EL1 state for vCPU `index`, with its virtual counter starting at 0.
pub fn reset_el1(index: u64, counter_offset: u64) {
    write!(vmpidr_el2, (1 << 31) | index);
    write!(cntvoff_el2, counter_offset);
    write!(cntv_ctl_el0, 0);
    write!(cntv_cval_el0, 0);
    write!(cntkctl_el1, 0);
    write!(sctlr_el1, SCTLR_EL1_RESET);
    write!(vbar_el1, 0);
    write!(tcr_el1, 0);
    write!(ttbr0_el1, 0);
    write!(ttbr1_el1, 0);
    write!(mair_el1, 0);
    write!(amair_el1, 0);
    write!(cpacr_el1, 0);
    write!(contextidr_el1, 0);
    write!(tpidr_el1, 0);
    write!(tpidr_el0, 0);
    write!(tpidrro_el0, 0);
    write!(sp_el0, 0);
    write!(sp_el1, 0);
    write!(elr_el1, 0);
    write!(spsr_el1, 0);
    write!(esr_el1, 0);
    write!(far_el1, 0);
    write!(afsr0_el1, 0);
    write!(afsr1_el1, 0);
    write!(par_el1, 0);
    // Nothing of a previous incarnation survives: debug state, FP/SIMD.
    write!(mdscr_el1, 0);
    super::context::clear_fp();
    isb();
}

/// Invalidates every stage-1 and stage-2 TLB entry of the domain currently
/// in VTTBR_EL2, on all pCPUs: its memory was just reloaded.
pub fn flush_guest_tlbs() {
    // SAFETY: TLB maintenance for the current VMID; no memory operands.
    unsafe { core::arch::asm!("dsb ishst", "tlbi vmalls12e1is", "dsb ish", "isb", options(nostack)) };
}

/// Invalidates every TLB entry of domain `vmid` (stage-2 root `root`) on
/// all pCPUs, from any pCPU: its stage 2 just changed (a grant mapped or
/// torn down). VTTBR_EL2 names the VMID the TLBI acts on, so it is
/// switched for the operation and restored; nothing runs at EL1 meanwhile.
/// The EL1 translation registers loaded are the running guest's, not
/// `vmid`'s: stage-1 walks are disabled (TCR_EL1.EPD0/EPD1) while the
/// VMID is switched, so no speculative walk (Cortex-A57/A72/A76 errata
/// 1319367, 1165522) can cache the one under the other's VMID.
pub fn flush_tlbs_of(vmid: u16, root: super::memory::Stage2Root) {
    const EPD0: u64 = 1 << 7;
    const EPD1: u64 = 1 << 23;
    let tcr = read!(tcr_el1);
    write!(tcr_el1, tcr | EPD0 | EPD1);
    isb();
    let saved = read!(vttbr_el2);
    write!(vttbr_el2, ((vmid as u64) << 48) | root.addr());
    isb();
    // SAFETY: TLB maintenance for the VMID just installed; the table
    // writes it follows are made visible first (dsb ishst).
    unsafe { core::arch::asm!("dsb ishst", "tlbi vmalls12e1is", "dsb ish", options(nostack)) };
    write!(vttbr_el2, saved);
    isb();
    write!(tcr_el1, tcr);
    isb();
}

/// Makes stage-2 table writes visible to every table walker before the
/// next guest access (a grant's page just made valid).
pub fn publish_table_writes() {
    // SAFETY: barriers only; no memory operands.
    unsafe { core::arch::asm!("dsb ishst", "isb", options(nostack)) };
}

/// ACTLR as a 32-bit guest reads it; aarch64 runs none, and traps no
/// CP15 access.
pub fn actlr() -> u64 {
    0
}

/// Whether the running vCPU has its data cache on (SCTLR_EL1.C).
pub fn data_cache_on() -> bool {
    read!(sctlr_el1) & (1 << 2) != 0
}

/// The running vCPU's stage-1 translation registers, to walk its tables.
pub fn stage1_regs() -> hv_core::stage1::Regs {
    hv_core::stage1::Regs { sctlr: read!(sctlr_el1), tcr: read!(tcr_el1), ttbr0: read!(ttbr0_el1), ttbr1: read!(ttbr1_el1), aarch32: false }
}

pub fn vbar_el1() -> u64 {
    read!(vbar_el1)
}

/// Guest exception entry: the state an exception taken to EL1 would leave,
/// and where execution continues. `elr`/`spsr` are the interrupted context.
fn inject_exception(esr: u64, far: Option<u64>, elr: u64, spsr: u64) -> (u64, u64) {
    let vbar = read!(vbar_el1);
    let offset = match spsr & 0x1f {
        0b00100 => 0x000, // EL1t: current EL with SP0
        0b00101 => 0x200, // EL1h: current EL with SPx
        m if m & 0x10 == 0 => 0x400, // EL0 AArch64: lower EL
        _ => 0x600,       // AArch32 EL0
    };
    write!(esr_el1, esr);
    if let Some(far) = far {
        write!(far_el1, far);
    }
    write!(elr_el1, elr);
    write!(spsr_el1, spsr);
    (vbar.wrapping_add(offset), SPSR_EL1H_MASKED)
}

/// Injects an undefined instruction at `at` (the trapped instruction).
pub fn inject_undefined(frame: &mut Frame, at: u64) {
    let (pc, spsr) = inject_exception(hv_core::esr::undef_syndrome(), None, at, frame.spsr);
    frame.elr = pc;
    frame.spsr = spsr;
}

/// Injects a synchronous external abort on an instruction fetch or a
/// data access at the guest's virtual address `far`, at the trapped
/// instruction.
pub fn inject_abort(frame: &mut Frame, instruction: bool, far: u64) {
    let from_el0 = frame.spsr & 0xf == 0;
    let syndrome = hv_core::esr::abort_syndrome(instruction, from_el0);
    let (pc, spsr) = inject_exception(syndrome, Some(far), frame.elr, frame.spsr);
    frame.elr = pc;
    frame.spsr = spsr;
}

/// Syndrome of the current trap.
pub fn trap_syndrome() -> (u64, u64, u64) {
    let esr = read!(esr_el2);
    let far = read!(far_el2);
    let ipa = ((read!(hpfar_el2) & 0x0000_0fff_ffff_fff0) << 8) | (far & 0xfff);
    (esr, far, ipa)
}
