//! Coprocessor-15 registers by name (Armv7-A), read and written with
//! `mrc`/`mcr` (`mrrc` for the 64-bit ones).

/// `read32!(p15, opc1, crn, crm, opc2)`.
macro_rules! read32 {
    ($opc1:literal, $crn:ident, $crm:ident, $opc2:literal) => {{
        let v: u32;
        // SAFETY: reading a CP15 register has no memory effects; every use
        // names a register that is accessible in HYP mode.
        unsafe {
            core::arch::asm!(
                concat!("mrc p15, ", stringify!($opc1), ", {}, ", stringify!($crn), ", ", stringify!($crm), ", ", stringify!($opc2)),
                out(reg) v,
                options(nomem, nostack)
            )
        };
        v
    }};
}


/// `write32!(opc1, crn, crm, opc2, value)`.
macro_rules! write32 {
    ($opc1:literal, $crn:ident, $crm:ident, $opc2:literal, $val:expr) => {{
        let v: u32 = $val;
        // SAFETY: every use writes a HYP-accessible register with a value
        // its caller derived for it, followed by the barriers it needs.
        unsafe {
            core::arch::asm!(
                concat!("mcr p15, ", stringify!($opc1), ", {}, ", stringify!($crn), ", ", stringify!($crm), ", ", stringify!($opc2)),
                in(reg) v,
                options(nostack)
            )
        };
    }};
}

pub(crate) use {read32, write32};

/// MIDR: the CPU's implementer, part and revision.
pub fn midr() -> u32 {
    read32!(0, c0, c0, 0)
}

/// MPIDR's affinity fields (Aff2..Aff0).
pub fn mpidr() -> u32 {
    read32!(0, c0, c0, 5) & 0x00ff_ffff
}

/// ID_PFR1: bits 15:12 say the virtualization extensions are there.
pub fn id_pfr1() -> u32 {
    read32!(0, c0, c1, 1)
}

/// ID_MMFR0: bits 3:0 are 5 with LPAE (VMSAv7 with long descriptors).
pub fn id_mmfr0() -> u32 {
    read32!(0, c0, c1, 4)
}

/// The CPU's mode (CPSR.M): 0x1a is HYP.
pub fn mode() -> u32 {
    let cpsr: u32;
    // SAFETY: reading CPSR has no effects.
    unsafe { core::arch::asm!("mrs {}, cpsr", out(reg) cpsr, options(nomem, nostack)) };
    cpsr & 0x1f
}

pub const MODE_HYP: u32 = 0x1a;

/// HSR, the syndrome of the exception HYP mode took last.
pub fn hsr() -> u32 {
    read32!(4, c5, c2, 0)
}

/// The physical counter (CNTPCT).
pub fn counter() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: reading CNTPCT has no memory effects; it is accessible in HYP.
    unsafe { core::arch::asm!("isb", "mrrc p15, 0, {}, {}, c14", out(reg) lo, out(reg) hi, options(nomem, nostack)) };
    (hi as u64) << 32 | lo as u64
}

/// CNTFRQ: the counter's frequency, as firmware set it.
pub fn counter_hz() -> u64 {
    read32!(0, c14, c0, 0) as u64
}

/// Sleeps until an interrupt is pending.
pub fn wfi() {
    // SAFETY: waits; no memory effects.
    unsafe { core::arch::asm!("wfi", options(nomem, nostack)) };
}

/// This pCPU's index (HTPIDR, set by the entry code).
pub fn cpu_index() -> usize {
    read32!(4, c13, c0, 2) as usize
}

/// PSCI CPU_ON (SMC32) to the firmware: starts the CPU with affinity
/// `mpidr` at this image's secondary entry (HYP mode) as pCPU `index`
/// (below `entry::MAX_STARTED`: its stack). PSCI's return code.
pub fn psci_cpu_on(mpidr: u32, index: u32) -> i32 {
    if index as usize >= super::entry::MAX_STARTED {
        return -2; // INVALID_PARAMETERS
    }
    let entry = super::entry::secondary_entry() as u32;
    let mut r0: u32 = 0x8400_0003;
    // SAFETY: a PSCI call to the firmware (QEMU's, on virt); it starts
    // another CPU at our own secondary entry, which takes a stack by the
    // index checked above, and touches none of our memory. The SMC calling
    // convention lets the firmware change r1-r3.
    unsafe {
        core::arch::asm!(
            ".arch_extension sec",
            "smc #0",
            inout("r0") r0,
            inout("r1") mpidr => _,
            inout("r2") entry => _,
            inout("r3") index => _,
            options(nostack)
        )
    };
    r0 as i32
}

/// Raises a hypervisor call from HYP mode itself: the vectors' self-test.
/// Returns what the HVC handler left in r0.
pub fn hvc_self_test(value: u32) -> u32 {
    let mut r0 = value;
    // SAFETY: HVC in HYP mode is taken by our own vectors (`entry`), which
    // save and restore every register but r0 and return past the HVC.
    // (It uses this stack: no `nostack`.)
    unsafe { core::arch::asm!(".arch_extension virt", "hvc #0x5a", inout("r0") r0) };
    r0
}

/// HCR: what the guest's exceptions and instructions trap to HYP.
pub fn set_hcr(v: u32) {
    write32!(4, c1, c1, 0, v);
    isb();
}

/// The (non-secure PL1) SCTLR a guest starts with.
pub fn set_guest_sctlr(v: u32) {
    write32!(0, c1, c0, 0, v);
    isb();
}

/// VTCR: the stage-2 walk's shape.
pub fn set_vtcr(v: u32) {
    write32!(4, c2, c1, 2, v);
    isb();
}

/// VTTBR: the stage-2 root and the VMID (64 bits, written with MCRR).
///
/// # Safety
/// `root` is a stage-2 root table (`hv_core::stage2::Stage2`) whose tables
/// stay in place while it is installed, and map only what the guests to
/// run under `vmid` may reach.
pub unsafe fn set_vttbr(root: u64, vmid: u8) {
    let v = root | (vmid as u64) << 48;
    // SAFETY: per the contract; HYP's own accesses do not go through it.
    unsafe { core::arch::asm!("mcrr p15, 6, {}, {}, c2", "isb", in(reg) v as u32, in(reg) (v >> 32) as u32, options(nostack)) };
}

/// HPFAR (the faulting IPA's page, bits 39:12 in 31:4) and HDFAR (the
/// faulting virtual address, for its offset in the page).
pub fn fault_ipa() -> u64 {
    let hpfar = read32!(4, c6, c0, 4) as u64;
    let hdfar = read32!(4, c6, c0, 0) as u64;
    (hpfar & !0xf) << 8 | (hdfar & 0xfff)
}

/// Invalidates all stage-1 and stage-2 TLB entries of non-HYP modes
/// (TLBIALLNSNH), and the instruction cache (ICIALLU): after new guest
/// tables and code.
pub fn invalidate_guest_tlbs_and_icache() {
    write32!(4, c8, c7, 4, 0);
    write32!(0, c7, c5, 0, 0);
    dsb_sy();
    isb();
}

pub fn isb() {
    // SAFETY: a barrier; no memory effects of its own.
    unsafe { core::arch::asm!("isb", options(nostack)) };
}

/// The full-system barrier (named as on aarch64, for the shared GIC driver).
pub fn dsb_sy() {
    // SAFETY: a barrier; no memory effects of its own.
    unsafe { core::arch::asm!("dsb", options(nostack)) };
}

/// CNTVOFF: the guest's virtual counter is the physical one minus this.
pub fn set_cntvoff(v: u64) {
    // SAFETY: sets the virtual timer's offset; no memory effects.
    unsafe { core::arch::asm!("mcrr p15, 4, {}, {}, c14", "isb", in(reg) v as u32, in(reg) (v >> 32) as u32, options(nostack)) };
}
