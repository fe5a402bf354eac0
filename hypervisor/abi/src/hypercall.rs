//! Xen hypercall convention on Arm (`xen/include/public/arch-arm.h`):
//! `HVC #0xEA1`, hypercall number in x16, arguments in x0..x4, result in x0.

/// The HVC immediate that marks a Xen hypercall; HVC #0 is SMCCC.
pub const XEN_HYPERCALL_TAG: u16 = 0xEA1;

// Hypercall numbers, passed in x16.

/// Platform-wide control (time, firmware info); privileged domains only.
pub const PLATFORM_OP: u64 = 7;
/// Guest memory reservation and physmap changes (`XENMEM_*` sub-ops).
pub const MEMORY_OP: u64 = 12;
/// Runs a batch of hypercalls described in guest memory in one trap.
pub const MULTICALL: u64 = 13;
/// Queries the hypervisor's version, features and build details.
pub const XEN_VERSION: u64 = 17;
/// Reads from or writes to the hypervisor's debug console.
pub const CONSOLE_IO: u64 = 18;
/// Grant-table setup and operations (`GNTTABOP_*`), for sharing pages.
pub const GRANT_TABLE_OP: u64 = 20;
/// Turns optional guest-assist modes on or off.
pub const VM_ASSIST: u64 = 21;
/// Per-vCPU operations (`VCPUOP_*`), e.g. registering a vcpu_info area.
pub const VCPU_OP: u64 = 24;
/// Scheduler requests from the calling vCPU: yield, block, shutdown.
pub const SCHED_OP: u64 = 29;
/// Event-channel operations (`EVTCHNOP_*`): bind, send, close, unmask.
pub const EVENT_CHANNEL_OP: u64 = 32;
/// Physical-device and interrupt-routing requests (`PHYSDEVOP_*`).
pub const PHYSDEV_OP: u64 = 33;
/// HVM parameters (`HVMOP_*`), e.g. the xenstore ring's frame and port.
pub const HVM_OP: u64 = 34;

// Errno values; a failing hypercall returns them negated in x0.

/// No such hypercall or sub-operation (x0 = -38).
pub const ENOSYS: i64 = 38;
/// An argument is out of range or malformed (x0 = -22).
pub const EINVAL: i64 = 22;
/// Not allowed for this caller (x0 = -1).
pub const EPERM: i64 = 1;
/// No such domain (x0 = -3).
pub const ESRCH: i64 = 3;
/// Already bound or present (x0 = -17).
pub const EEXIST: i64 = 17;
/// A table or quota is full (x0 = -28).
pub const ENOSPC: i64 = 28;
