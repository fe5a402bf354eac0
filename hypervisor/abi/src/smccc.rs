//! Arm SMC Calling Convention (DEN0028): function-ID fields and return codes.

/// Bit 31: fast call (the only kind guests make to a hypervisor).
pub const FAST_CALL: u32 = 1 << 31;
/// Bit 30: SMC64/HVC64 calling convention.
pub const CONV_64: u32 = 1 << 30;
/// Owning entity number, bits 29:24.
pub const fn owner(function_id: u32) -> u32 {
    (function_id >> 24) & 0x3f
}
/// [`owner`] of Arm architecture calls (SMCCC_VERSION, workarounds...).
pub const OWNER_ARCH: u32 = 0;
/// [`owner`] of standard secure-service calls, PSCI among them.
pub const OWNER_STANDARD: u32 = 4;

/// Returns the SMCCC version the firmware (here: hypervisor) implements.
pub const SMCCC_VERSION: u32 = 0x8000_0000;
/// Asks whether an architecture function ID (passed in x1) is implemented.
pub const SMCCC_ARCH_FEATURES: u32 = 0x8000_0001;
/// SMCCC 1.1, as reported by SMCCC_VERSION.
pub const VERSION_1_1: u64 = 0x1_0001;

/// Every unknown function ID answers this in x0, so guests can probe.
pub const NOT_SUPPORTED: i64 = -1;
