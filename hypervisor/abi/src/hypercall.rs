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
/// A guest address could not be read or written (x0 = -14).
pub const EFAULT: i64 = 14;
/// Try again (x0 = -11).
pub const EAGAIN: i64 = 11;
/// Argument too big (x0 = -7).
pub const E2BIG: i64 = 7;

/// `DOMID_SELF`: the calling domain, wherever a domain id is asked for.
pub const DOMID_SELF: u16 = 0x7ff0;

/// The Xen release this ABI follows (xen_version: major << 16 | minor).
pub const XEN_VERSION_4_17: i64 = 4 << 16 | 17;

/// `xen_version` sub-operations (`version.h`).
pub mod xenver {
    /// Returns major << 16 | minor.
    pub const VERSION: u64 = 0;
    /// Writes the 16-byte extra-version string.
    pub const EXTRAVERSION: u64 = 1;
    /// Writes 60 bytes of compile information.
    pub const COMPILE_INFO: u64 = 2;
    /// Writes the 1024-byte capabilities string.
    pub const CAPABILITIES: u64 = 3;
    /// Writes the 40-byte changeset string.
    pub const CHANGESET: u64 = 4;
    /// Writes `xen_platform_parameters` (virt_start u64).
    pub const PLATFORM_PARAMETERS: u64 = 5;
    /// Reads `xen_feature_info` {submap_idx u32, submap u32}; fills submap.
    pub const GET_FEATURES: u64 = 6;
    /// Returns the page size.
    pub const PAGESIZE: u64 = 7;
    /// Writes the 64-byte guest handle (a UUID-sized opaque value).
    pub const GUEST_HANDLE: u64 = 8;
    /// Writes the 1024-byte command line.
    pub const COMMANDLINE: u64 = 9;
    /// Returns the build id length, or writes it.
    pub const BUILD_ID: u64 = 10;
}

/// XENFEAT_* bits of feature submap 0 (`features.h`).
pub mod xenfeat {
    /// The guest's page tables are its own (always, on Arm).
    pub const WRITABLE_PAGE_TABLES: u32 = 0;
    /// Guest frame numbers are translated by the hypervisor (stage 2).
    pub const AUTO_TRANSLATED_PHYSMAP: u32 = 2;
    /// The caller is the hardware domain: never set by this hypervisor.
    pub const DOM0: u32 = 11;
    /// SMCCC calls go through HVC #0.
    pub const ARM_SMCCC_SUPPORTED: u32 = 14;
    /// Guest frames are not machine frames (no swiotlb-xen needed).
    pub const NOT_DIRECT_MAPPED: u32 = 16;
    /// Guest frames equal machine frames.
    pub const DIRECT_MAPPED: u32 = 17;
}

/// `memory_op` sub-operations and physmap spaces (`memory.h`).
pub mod xenmem {
    /// Gives frames back (balloon).
    pub const DECREASE_RESERVATION: u64 = 1;
    /// Repopulates frames given back.
    pub const POPULATE_PHYSMAP: u64 = 6;
    /// Size of `struct xen_memory_reservation`: extent_start @0 (a guest
    /// address of a GFN list), nr_extents u64 @8, extent_order u32 @16,
    /// mem_flags u32 @20, domid u16 @24.
    pub const RESERVATION_SIZE: usize = 32;
    /// `xen_add_to_physmap` (24 bytes): domid u16 @0, size u16 @2,
    /// space u32 @4, idx u64 @8, gpfn u64 @16.
    pub const ADD_TO_PHYSMAP: u64 = 7;
    /// Size of `struct xen_add_to_physmap`.
    pub const ADD_TO_PHYSMAP_SIZE: usize = 24;
    /// Removes a frame from the caller's physmap (`xen_remove_from_physmap`,
    /// 16 bytes: domid u16 @0, gpfn u64 @8).
    pub const REMOVE_FROM_PHYSMAP: u64 = 15;
    /// Maps a batch of frames (`xen_add_to_physmap_range`, 32 bytes: domid
    /// u16 @0, space u16 @2, size u16 @4, foreign_domid u16 @6, then guest
    /// addresses of idxs (u64 each) @8, gpfns (u64 each) @16, errs (i32
    /// each) @24).
    pub const ADD_TO_PHYSMAP_RANGE: u64 = 23;
    /// Space: another domain's frames (idx is its GFN).
    pub const SPACE_GMFN_FOREIGN: u32 = 4;
    /// Space: the shared_info page (idx 0).
    pub const SPACE_SHARED_INFO: u32 = 0;
    /// Space: grant-table frame `idx` (bit 31 set: a v2 status frame).
    pub const SPACE_GRANT_TABLE: u32 = 1;
}

/// `vcpu_op` sub-operations (`vcpu.h`), as Xen on Arm serves them.
pub mod vcpuop {
    /// `vcpu_register_runstate_memory_area`: one guest virtual address (8 bytes).
    pub const REGISTER_RUNSTATE_MEMORY_AREA: u64 = 5;
    /// `vcpu_register_vcpu_info` (16 bytes): gfn u64 @0, offset u32 @8.
    pub const REGISTER_VCPU_INFO: u64 = 10;
    /// Size of `struct vcpu_register_vcpu_info`.
    pub const REGISTER_VCPU_INFO_SIZE: usize = 16;
    /// Size of `struct vcpu_runstate_info`: state i32 @0,
    /// state_entry_time u64 @8, time[4] u64 @16.
    pub const RUNSTATE_INFO_SIZE: usize = 48;
    /// Runstate: running.
    pub const RUNSTATE_RUNNING: u32 = 0;
    /// Runstate: runnable, waiting for a pCPU.
    pub const RUNSTATE_RUNNABLE: u32 = 1;
    /// Runstate: blocked (WFI).
    pub const RUNSTATE_BLOCKED: u32 = 2;
}

/// `sched_op` sub-operations and shutdown reasons (`sched.h`).
pub mod schedop {
    /// Gives the pCPU up for a moment.
    pub const YIELD: u64 = 0;
    /// Waits for an event (x86 PV only; Arm guests use WFI).
    pub const BLOCK: u64 = 1;
    /// `sched_shutdown` {reason u32}: the domain stops, for `reason`.
    pub const SHUTDOWN: u64 = 2;
    /// Waits for one of a list of ports (unused by Arm Linux).
    pub const POLL: u64 = 3;
    /// `sched_watchdog` {id u32, timeout u32}: arm, pet or stop a watchdog.
    pub const WATCHDOG: u64 = 6;
    /// Shutdown reason: power off.
    pub const SHUTDOWN_POWEROFF: u32 = 0;
    /// Shutdown reason: reboot.
    pub const SHUTDOWN_REBOOT: u32 = 1;
    /// Shutdown reason: suspend (not offered: no toolstack resumes it).
    pub const SHUTDOWN_SUSPEND: u32 = 2;
    /// Shutdown reason: the guest crashed.
    pub const SHUTDOWN_CRASH: u32 = 3;
    /// Shutdown reason: its watchdog expired.
    pub const SHUTDOWN_WATCHDOG: u32 = 4;
    /// Shutdown reason: soft reset (not offered).
    pub const SHUTDOWN_SOFT_RESET: u32 = 5;
}

/// `hvm_op` sub-operations and parameters (`hvm_op.h`, `params.h`).
pub mod hvmop {
    /// `xen_hvm_param` (16 bytes): domid u16 @0, index u32 @4, value u64 @8.
    pub const SET_PARAM: u64 = 0;
    /// Same structure; fills `value`.
    pub const GET_PARAM: u64 = 1;
    /// Size of `struct xen_hvm_param`.
    pub const PARAM_SIZE: usize = 16;
    /// The event upcall's interrupt (type in bits 63:56; 2 = PPI).
    pub const PARAM_CALLBACK_IRQ: u32 = 0;
    /// The xenstore ring's frame (~0: not yet there, Linux waits for an event).
    pub const PARAM_STORE_PFN: u32 = 1;
    /// The xenstore event channel.
    pub const PARAM_STORE_EVTCHN: u32 = 2;
    /// The PV console ring's frame.
    pub const PARAM_CONSOLE_PFN: u32 = 17;
    /// The PV console event channel.
    pub const PARAM_CONSOLE_EVTCHN: u32 = 18;
}

/// `vm_assist` commands and types (`xen.h`).
pub mod vmassist {
    /// Turn an assist on.
    pub const CMD_ENABLE: u64 = 0;
    /// Turn an assist off.
    pub const CMD_DISABLE: u64 = 1;
    /// Runstate updates set XEN_RUNSTATE_UPDATE in state_entry_time.
    pub const TYPE_RUNSTATE_UPDATE_FLAG: u64 = 5;
}

/// `grant_table_op` sub-operations (`grant_table.h`).
pub mod gnttabop {
    /// `gnttab_map_grant_ref` (32 bytes each).
    pub const MAP_GRANT_REF: u64 = 0;
    /// `gnttab_unmap_grant_ref` (24 bytes each).
    pub const UNMAP_GRANT_REF: u64 = 1;
    /// `gnttab_copy` (40 bytes each): source @0 and dest @16, each
    /// {ref or gmfn u64 @0, domid u16 @8, offset u16 @10}; len u16 @32,
    /// flags u16 @34, status i16 @36 OUT.
    pub const COPY: u64 = 5;
    /// Size of one `gnttab_copy`.
    pub const COPY_SIZE: usize = 40;
    /// `flags` of a copy: the source is a grant reference (else a frame
    /// of the caller's).
    pub const COPY_SOURCE_GREF: u16 = 1;
    /// `flags` of a copy: the destination is a grant reference.
    pub const COPY_DEST_GREF: u16 = 2;
    /// `gnttab_query_size` (16 bytes): dom u16 @0, nr_frames u32 @4,
    /// max_nr_frames u32 @8, status i16 @12.
    pub const QUERY_SIZE: u64 = 6;
    /// Size of `struct gnttab_query_size`.
    pub const QUERY_SIZE_SIZE: usize = 16;
    /// `gnttab_set_version` {version u32}.
    pub const SET_VERSION: u64 = 8;
}

/// A v1 grant entry (`grant_entry_v1_t`): {flags u16 @0, domid u16 @2,
/// frame u32 @4}, eight bytes, in the granting domain's grant frames.
pub mod grant_entry {
    /// Size of one entry.
    pub const SIZE: usize = 8;
    /// Entries per 4 KiB grant frame.
    pub const PER_FRAME: usize = 4096 / SIZE;
    /// References below this are the toolstack's (console, xenstore).
    pub const RESERVED: u32 = 8;
    /// The entry's type bits.
    pub const GTF_TYPE_MASK: u16 = 3;
    /// Type: `domid` may map or copy `frame`.
    pub const GTF_PERMIT_ACCESS: u16 = 1;
    /// The grantee may only read.
    pub const GTF_READONLY: u16 = 1 << 2;
    /// Set by the hypervisor while the grantee has the page mapped.
    pub const GTF_READING: u16 = 1 << 3;
    /// Set by the hypervisor while the grantee has the page mapped writable.
    pub const GTF_WRITING: u16 = 1 << 4;
}

/// `event_channel_op` sub-operations (`event_channel.h`) with their
/// structure sizes; every port and domain id in them is the caller's word.
pub mod evtchnop {
    /// {remote_dom u16 @0, remote_port u32 @4, local_port u32 @8 OUT}.
    pub const BIND_INTERDOMAIN: u64 = 0;
    /// {virq u32 @0, vcpu u32 @4, port u32 @8 OUT}.
    pub const BIND_VIRQ: u64 = 1;
    /// {port u32}.
    pub const CLOSE: u64 = 3;
    /// {port u32}.
    pub const SEND: u64 = 4;
    /// {dom u16 @0, port u32 @4, status u32 @8 OUT, vcpu u32 @12 OUT,
    /// u: 8 bytes @16 OUT}: 24 bytes.
    pub const STATUS: u64 = 5;
    /// {dom u16 @0, remote_dom u16 @2, port u32 @4 OUT}.
    pub const ALLOC_UNBOUND: u64 = 6;
    /// {port u32 @0, vcpu u32 @4}.
    pub const BIND_VCPU: u64 = 8;
    /// {port u32}.
    pub const UNMASK: u64 = 9;
    /// FIFO ABI setup: answered ENOSYS, so Linux uses the 2-level ABI.
    pub const INIT_CONTROL: u64 = 11;
    /// EVTCHNSTAT_*: what `STATUS` reports.
    pub const STAT_CLOSED: u32 = 0;
    /// Allocated, waiting for a peer.
    pub const STAT_UNBOUND: u32 = 1;
    /// Bound to a port of another domain.
    pub const STAT_INTERDOMAIN: u32 = 2;
    /// Bound to a VIRQ.
    pub const STAT_VIRQ: u32 = 4;
}

/// The 2-level event ABI's shared_info page and vcpu_info (arm64 layout).
pub mod shared_info {
    /// Bytes of one `vcpu_info`: upcall_pending u8 @0, pending_sel u64 @8,
    /// vcpu_time_info @16.
    pub const VCPU_INFO_SIZE: u64 = 48;
    /// Offset of `evtchn_upcall_pending` in a vcpu_info.
    pub const UPCALL_PENDING: u64 = 0;
    /// Offset of `evtchn_pending_sel` in a vcpu_info.
    pub const PENDING_SEL: u64 = 8;
    /// Offset of `evtchn_pending[64]` (u64 words) in shared_info.
    pub const EVTCHN_PENDING: u64 = 48;
    /// Offset of `evtchn_mask[64]` in shared_info.
    pub const EVTCHN_MASK: u64 = 560;
    /// Offset of the wall clock: wc_version u32, wc_sec u32, wc_nsec u32, wc_sec_hi u32.
    pub const WC_VERSION: u64 = 1072;
    /// vcpu_info slots in shared_info (XEN_LEGACY_MAX_VCPUS on Arm).
    pub const LEGACY_VCPUS: usize = 1;
}
/// No such vCPU or entry (x0 = -2).
pub const ENOENT: i64 = 2;
