//! System-register access by name: `read!(esr_el2)`, `write!(hcr_el2, v)`.
//! Register names are spelled as the assembler knows them (`s3_4_c12_c...`
//! forms where it lacks a name).

macro_rules! read {
    ($reg:tt) => {{
        let v: u64;
        // SAFETY: reading a system register has no memory effects; every use
        // names a register that is accessible at EL2.
        unsafe { core::arch::asm!(concat!("mrs {}, ", stringify!($reg)), out(reg) v, options(nomem, nostack)) };
        v
    }};
}

macro_rules! write {
    ($reg:tt, $val:expr) => {{
        let v: u64 = $val;
        // SAFETY: every use writes an EL2-accessible register with a value
        // the caller derived for it; effects on translation are followed by
        // the barriers the caller issues.
        unsafe { core::arch::asm!(concat!("msr ", stringify!($reg), ", {}"), in(reg) v, options(nostack)) };
    }};
}

pub(crate) use read;
pub(crate) use write;

pub fn isb() {
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

pub fn dsb_sy() {
    aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::SY);
}

/// Sleeps until an interrupt is pending (taken or not: DAIF stays masked).
pub fn wfi() {
    aarch64_cpu::asm::wfi();
}

pub fn cpu_index() -> usize {
    read!(tpidr_el2) as usize
}

/// Physical counter and its frequency.
pub fn counter() -> u64 {
    read!(cntpct_el0)
}

pub fn counter_hz() -> u64 {
    read!(cntfrq_el0)
}

/// Why this CPU cannot run the hypervisor: every Armv8-A CPU entered at
/// EL2 can (the entry code is reached only there).
pub fn cpu_unsupported() -> Option<&'static str> {
    None
}
