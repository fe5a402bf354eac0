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

/// `read64!(opc1, crm)`: a 64-bit CP15 register (`mrrc`).
macro_rules! read64 {
    ($opc1:literal, $crm:ident) => {{
        let (lo, hi): (u32, u32);
        // SAFETY: reading a CP15 register has no memory effects; every use
        // names a register that is accessible in HYP mode.
        unsafe {
            core::arch::asm!(
                concat!("mrrc p15, ", stringify!($opc1), ", {}, {}, ", stringify!($crm)),
                out(reg) lo,
                out(reg) hi,
                options(nomem, nostack)
            )
        };
        (hi as u64) << 32 | lo as u64
    }};
}

/// `write64!(opc1, crm, value)`: a 64-bit CP15 register (`mcrr`).
macro_rules! write64 {
    ($opc1:literal, $crm:ident, $val:expr) => {{
        let v: u64 = $val;
        // SAFETY: every use writes a HYP-accessible register with a value
        // its caller derived for it, followed by the barriers it needs.
        unsafe {
            core::arch::asm!(
                concat!("mcrr p15, ", stringify!($opc1), ", {}, {}, ", stringify!($crm)),
                in(reg) v as u32,
                in(reg) (v >> 32) as u32,
                options(nostack)
            )
        };
    }};
}

pub(crate) use {read32, read64, write32, write64};

/// MIDR: the CPU's implementer, part and revision.
pub fn midr() -> u32 {
    read32!(0, c0, c0, 0)
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

const MODE_HYP: u32 = 0x1a;

/// Why this CPU cannot run the hypervisor, if it cannot: it must be in
/// HYP mode (the entry code checked), with the virtualization extensions
/// (ID_PFR1[15:12] = 1) and LPAE (ID_MMFR0[3:0] >= 5).
pub fn cpu_unsupported() -> Option<&'static str> {
    if mode() != MODE_HYP {
        Some("not in HYP mode")
    } else if (id_pfr1() >> 12) & 0xf != 1 {
        Some("this CPU lacks the virtualization extensions")
    } else if id_mmfr0() & 0xf < 5 {
        Some("this CPU lacks LPAE")
    } else {
        None
    }
}

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

/// The counter's rate, where the board knows better than CNTFRQ (which
/// only the secure side writes): see `platform`. 0: CNTFRQ's.
static COUNTER_HZ: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// The counter's frequency: CNTFRQ as firmware set it, unless the board's
/// bring-up found the counter running at another rate.
pub fn counter_hz() -> u64 {
    match COUNTER_HZ.load(core::sync::atomic::Ordering::Relaxed) {
        0 => read32!(0, c14, c0, 0) as u64,
        hz => hz,
    }
}

/// Records the counter's real rate (`counter_hz`).
pub fn set_counter_hz(hz: u64) {
    COUNTER_HZ.store(hz, core::sync::atomic::Ordering::Relaxed);
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

/// HCR: what the guest's exceptions and instructions trap to HYP.
pub fn set_hcr(v: u32) {
    write32!(4, c1, c1, 0, v);
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

/// HDFAR: the virtual address of the data abort HYP took last.
pub fn hdfar() -> u32 {
    read32!(4, c6, c0, 0)
}

/// HIFAR: the virtual address of the prefetch abort HYP took last.
pub fn hifar() -> u32 {
    read32!(4, c6, c0, 2)
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

/// Orders stores before the barrier against the inner-shareable domain.
pub fn dsb_ishst() {
    // SAFETY: a barrier; no memory effects of its own.
    unsafe { core::arch::asm!("dsb ishst", options(nostack)) };
}

/// The inner-shareable barrier.
pub fn dsb_ish() {
    // SAFETY: a barrier; no memory effects of its own.
    unsafe { core::arch::asm!("dsb ish", options(nostack)) };
}

/// CNTVOFF: the guest's virtual counter is the physical one minus this.
pub fn set_cntvoff(v: u64) {
    // SAFETY: sets the virtual timer's offset; no memory effects.
    unsafe { core::arch::asm!("mcrr p15, 4, {}, {}, c14", "isb", in(reg) v as u32, in(reg) (v >> 32) as u32, options(nostack)) };
}
