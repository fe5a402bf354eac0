//! The guest physical address map every domain sees.
//!
//! It follows Xen's Arm guest layout (`arch-arm.h`), so kernels built for Xen
//! domUs find the GIC, the virtual PL011 and RAM at the usual places.

/// Guest physical address of the virtual GIC distributor (GICv3 or v2).
pub const GICD_BASE: u64 = 0x0300_1000;
/// Size of the GICv3 distributor's MMIO frame in bytes (64 KiB).
pub const GICD_SIZE: u64 = 0x1_0000;
/// Size of the GICv2 distributor's MMIO frame in bytes (4 KiB).
pub const GICD_V2_SIZE: u64 = 0x1000;
/// Guest physical address of a GICv2 guest's CPU interface: the board's
/// virtual CPU interface (GICV), mapped there.
pub const GICC_BASE: u64 = 0x0300_2000;
/// Size of the GICv2 CPU interface in bytes (8 KiB).
pub const GICC_SIZE: u64 = 0x2000;
/// Guest physical address of vCPU 0's redistributor; vCPU `n`'s follows at
/// `GICR_BASE + n * GICR_STRIDE`.
pub const GICR_BASE: u64 = 0x0302_0000;
/// Bytes between consecutive vCPUs' redistributors: one 128 KiB pair of
/// frames (RD_base + SGI_base) each.
pub const GICR_STRIDE: u64 = 0x2_0000;
/// Address space reserved for redistributors from [`GICR_BASE`] (16 MiB,
/// room for 128 vCPUs); only `vcpus * GICR_STRIDE` of it is backed.
pub const GICR_REGION_SIZE: u64 = 0x100_0000;

/// Guest physical address of the virtual PL011 UART (SBSA subset).
pub const PL011_BASE: u64 = 0x2200_0000;
/// Size of the PL011's MMIO frame in bytes (one 4 KiB page).
pub const PL011_SIZE: u64 = 0x1000;
/// GIC interrupt ID (an SPI) the virtual PL011 raises.
pub const PL011_SPI: u32 = 32;

/// Guest physical address where the first RAM bank starts (1 GiB).
pub const RAM0_BASE: u64 = 0x4000_0000;
/// Size of the guest address window of the first RAM bank (3 GiB, as in
/// Xen's layout): RAM0 lives in `RAM0_BASE..RAM0_BASE + RAM0_SIZE`.
pub const RAM0_SIZE: u64 = 0xC000_0000;

/// PPI of the EL1 virtual timer (CNTV), as the guest sees it.
pub const VTIMER_PPI: u32 = 27;
/// PPI of the EL1 non-secure physical timer (CNTP), as the guest sees it.
pub const PTIMER_PPI: u32 = 30;
/// Xen event-channel upcall PPI.
pub const EVTCHN_PPI: u32 = 31;
