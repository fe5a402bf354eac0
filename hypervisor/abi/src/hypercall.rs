//! Xen hypercall convention on Arm (`xen/include/public/arch-arm.h`):
//! `HVC #0xEA1`, hypercall number in x16, arguments in x0..x4, result in x0.

/// The HVC immediate that marks a Xen hypercall; HVC #0 is SMCCC.
pub const XEN_HYPERCALL_TAG: u16 = 0xEA1;

pub const PLATFORM_OP: u64 = 7;
pub const MEMORY_OP: u64 = 12;
pub const MULTICALL: u64 = 13;
pub const XEN_VERSION: u64 = 17;
pub const CONSOLE_IO: u64 = 18;
pub const GRANT_TABLE_OP: u64 = 20;
pub const VM_ASSIST: u64 = 21;
pub const VCPU_OP: u64 = 24;
pub const SCHED_OP: u64 = 29;
pub const EVENT_CHANNEL_OP: u64 = 32;
pub const PHYSDEV_OP: u64 = 33;
pub const HVM_OP: u64 = 34;

/// Errno values returned negated in x0.
pub const ENOSYS: i64 = 38;
pub const EINVAL: i64 = 22;
