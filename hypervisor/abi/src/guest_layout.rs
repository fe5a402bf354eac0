//! The guest physical address map every domain sees.
//!
//! It follows Xen's Arm guest layout (`arch-arm.h`), so kernels built for Xen
//! domUs find the GIC, the virtual PL011 and RAM at the usual places.

/// Virtual GICv3 distributor (64 KiB).
pub const GICD_BASE: u64 = 0x0300_1000;
pub const GICD_SIZE: u64 = 0x1_0000;
/// Virtual GICv3 redistributors: one 128 KiB frame (RD + SGI) per vCPU.
pub const GICR_BASE: u64 = 0x0302_0000;
pub const GICR_STRIDE: u64 = 0x2_0000;
pub const GICR_REGION_SIZE: u64 = 0x100_0000;

/// Virtual PL011 (SBSA subset) and its SPI.
pub const PL011_BASE: u64 = 0x2200_0000;
pub const PL011_SIZE: u64 = 0x1000;
pub const PL011_SPI: u32 = 32;

/// First guest RAM bank.
pub const RAM0_BASE: u64 = 0x4000_0000;
pub const RAM0_MAX: u64 = 0xC000_0000;

/// Architected timer PPIs as the guest sees them.
pub const VTIMER_PPI: u32 = 27;
pub const PTIMER_PPI: u32 = 30;
/// Xen event-channel upcall PPI.
pub const EVTCHN_PPI: u32 = 31;
