//! PSCI (DEN0022) function IDs and return codes a guest uses.
//!
//! IDs starting `0x84` use the 32-bit calling convention, `0xC4` the 64-bit
//! one; calls that take an address or MPIDR exist in both forms.

/// Returns the implemented PSCI version (major in bits 31:16, minor 15:0).
pub const PSCI_VERSION: u32 = 0x8400_0000;
/// Suspends the calling core to a power state (32-bit arguments).
pub const CPU_SUSPEND_32: u32 = 0x8400_0001;
/// Powers the calling core down; does not return on success.
pub const CPU_OFF: u32 = 0x8400_0002;
/// Starts a core at an entry point with a context ID (32-bit arguments).
pub const CPU_ON_32: u32 = 0x8400_0003;
/// Reports whether the cores at an affinity level are on (32-bit).
pub const AFFINITY_INFO_32: u32 = 0x8400_0004;
/// Asks whether a trusted OS needs to be migrated off a core.
pub const MIGRATE_INFO_TYPE: u32 = 0x8400_0006;
/// Powers the whole system off; does not return on success.
pub const SYSTEM_OFF: u32 = 0x8400_0008;
/// Resets the whole system; does not return on success.
pub const SYSTEM_RESET: u32 = 0x8400_0009;
/// Asks whether a PSCI function ID (passed in x1) is implemented.
pub const PSCI_FEATURES: u32 = 0x8400_000A;
/// [`CPU_SUSPEND_32`] with 64-bit entry point and context ID.
pub const CPU_SUSPEND_64: u32 = 0xC400_0001;
/// [`CPU_ON_32`] with a 64-bit MPIDR, entry point and context ID.
pub const CPU_ON_64: u32 = 0xC400_0003;
/// [`AFFINITY_INFO_32`] with a 64-bit MPIDR.
pub const AFFINITY_INFO_64: u32 = 0xC400_0004;

/// PSCI 1.1.
pub const VERSION_1_1: u64 = 0x1_0001;

// Return codes, in x0.

/// The call did what was asked.
pub const SUCCESS: i64 = 0;
/// The function ID is not implemented.
pub const NOT_SUPPORTED: i64 = -1;
/// An argument (MPIDR, power state...) is malformed.
pub const INVALID_PARAMETERS: i64 = -2;
/// The caller is not allowed to act on that core or the system.
pub const DENIED: i64 = -3;
/// CPU_ON: the target core is already running.
pub const ALREADY_ON: i64 = -4;
/// CPU_ON: an earlier CPU_ON for the target core has not completed yet.
pub const ON_PENDING: i64 = -5;
/// The firmware failed for reasons of its own.
pub const INTERNAL_FAILURE: i64 = -6;
/// The target (e.g. a trusted OS to migrate) does not exist.
pub const NOT_PRESENT: i64 = -7;
/// The target core is disabled.
pub const DISABLED: i64 = -8;
/// The entry point address is not valid for the caller.
pub const INVALID_ADDRESS: i64 = -9;

/// AFFINITY_INFO: the core (or one at the level asked about) is on.
pub const AFFINITY_ON: i64 = 0;
/// AFFINITY_INFO: the core (or every one at the level) is off.
pub const AFFINITY_OFF: i64 = 1;
/// AFFINITY_INFO: a CPU_ON for the core is still in progress.
pub const AFFINITY_ON_PENDING: i64 = 2;

/// MIGRATE_INFO_TYPE: no trusted OS that needs migrating.
pub const TOS_NOT_PRESENT_MP: i64 = 2;
