//! The boot bundle: the validated system description plus every domain's
//! image, in one blob that the boot loader places in memory beside the
//! hypervisor (QEMU's `guest-loader`, or U-Boot on a board).
//!
//! `xtask` validates the TOML description at build time and encodes it here;
//! the hypervisor only decodes, with every offset and length bounds-checked,
//! and keeps the bundle in reserved memory as the pristine copy of each image
//! that a restarted domain boots from.
//!
//! Layout (little endian):
//! ```text
//! 0   magic  "CKPTHV08"          8   total_len u64
//! 16  ncpus u32  20 vwfi u8  21 scheduler u8  22 ndomains u16
//! 24  uart_base  32 gicd_base  40 gicr_base  48 ram_base  56 ram_size  (u64 each)
//! 64  gic_version u8 (2 or 3)  65 uart_kind u8 (0 PL011, 1 Cadence, 2 SCIF, 3 OMAP), 6 bytes unused
//! 72  gicc_base  80 gich_base  88 gicv_base  (u64 each; 0 on GICv3)
//! 96  aux_core_boot  104 realtime_counter  112 clksel_sys  (u64 each; 0
//!     but on TI DRA7)
//! 120 crossbar_base u64 (TI's IRQ crossbar; 0: none)  128 crossbar table
//!     (bundle offset u32, entries u16)  134 crossbar lines u16  136
//!     crossbar inputs u16; 6 bytes unused
//! 144 domain records, RECORD_SIZE bytes each
//! ..  blobs (images, initrds, device trees), each 4 KiB aligned, at the
//!     offsets the records give; the crossbar table: (register offset from
//!     crossbar_base, value) as u16 pairs, every 16-bit register the
//!     hypervisor writes at boot
//! ```
//!
//! A domain record: name[32], vcpus, flags, on_poweroff, on_reboot, on_crash,
//! npassthrough, serves and foreign (domain masks), pins[8], mem_pa, mem_size, then three blobs (image,
//! initrd, device tree) of (bundle offset, length, offset in guest RAM), then
//! four passthrough entries of (pa, size, spi), then ram_ipa and
//! the RTDS budget and period (u32 microseconds each), then the Xen guest
//! ABI's limits: grant frames and event channels (u16 each; 0 grant frames
//! without FLAG_XEN), xenstore nodes (u16), watches and transactions (u8
//! each), then the domain's xenstore seed blob (bundle offset, length; u64
//! each; see `xenstore::seed`), then 16 bytes unused and passthrough
//! entries 4 to 7.

pub const MAGIC: &[u8; 8] = b"CKPTHV08";
pub const HEADER_SIZE: usize = 144;
pub const RECORD_SIZE: usize = 384;
pub const MAX_PASSTHROUGH: usize = 8;

/// Where passthrough entry `i` sits in a domain record: the first four
/// after the blobs, the rest at the record's end (a driver domain owning
/// two screens, input and more needs more than four).
fn passthrough_at(i: usize) -> usize {
    if i < 4 {
        136 + 24 * i
    } else {
        288 + 24 * (i - 4)
    }
}
pub const MAX_DOMAINS: usize = 8;
pub const MAX_VCPUS: usize = 8;
pub const NAME_LEN: usize = 32;

/// Whether a guest's WFI/WFE trap to the hypervisor (HCR_EL2.TWI/TWE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vwfi {
    /// WFI traps; the pCPU waits in the hypervisor.
    Trap = 0,
    /// WFI runs in the guest: lowest interrupt latency for pinned vCPUs.
    Native = 1,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheduler {
    /// One vCPU per pCPU, no tick.
    Null = 0,
}

/// What happens to a domain when it powers off, reboots or crashes
/// (xl.cfg's `on_poweroff`, `on_reboot`, `on_crash`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Destroy = 0,
    Restart = 1,
    /// Stop the vCPUs, keep memory for inspection.
    Preserve = 2,
}

pub const FLAG_SYSTEM_CONTROLLER: u8 = 1 << 0;
pub const FLAG_VPL011: u8 = 1 << 1;
/// The domain is offered Xen's guest ABI (hypercalls, event channels,
/// grant table, a `/hypervisor` node in its device tree).
pub const FLAG_XEN: u8 = 1 << 2;

/// Grant frames a domain may have at most (512 v1 entries each).
pub const MAX_GRANT_FRAMES: u16 = 32;
/// Event channels a domain may have at most (port 0 is never used).
pub const MAX_EVENT_CHANNELS: u16 = 1023;

/// Bytes the Xen pages of a domain with `grant_frames` grant frames take
/// from the top of its RAM: the frames and the xenstore ring.
pub const fn xen_pages_size(grant_frames: u16) -> u64 {
    (grant_frames as u64 + 1) * 4096
}

/// Where a Xen-enabled domain finds its hypervisor pages: the last pages
/// of its RAM, left out of the memory its device tree declares. Grant
/// frames first, then the xenstore ring. They are the domain's own RAM, so
/// they need no mapping of their own and a restart scrubs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XenPages {
    /// Guest physical address of grant frame 0.
    pub grant_ipa: u64,
    pub grant_frames: u16,
    /// Guest physical address of the xenstore ring page.
    pub store_ipa: u64,
    /// Bytes taken from the top of RAM.
    pub size: u64,
    pub event_channels: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DomainDesc<'a> {
    pub name: &'a str,
    pub vcpus: u8,
    /// pCPU each vCPU is pinned to; `vcpus` entries are meaningful.
    pub pins: [u8; MAX_VCPUS],
    pub flags: u8,
    pub on_poweroff: Action,
    pub on_reboot: Action,
    pub on_crash: Action,
    /// Host physical base of the domain's RAM, mapped at `ram_ipa`.
    pub mem_pa: u64,
    /// Guest physical base of its RAM: `guest_layout::RAM0_BASE`, or
    /// `mem_pa` for a direct-mapped domain (DMA from passed-through devices
    /// reaches the right memory without an IOMMU).
    pub ram_ipa: u64,
    pub mem_size: u64,
    /// Where the image is copied, as an offset into guest RAM; also the entry point.
    pub load_offset: u64,
    pub image: &'a [u8],
    /// Initial ramdisk and where it goes in guest RAM (empty: none).
    pub initrd: &'a [u8],
    pub initrd_offset: u64,
    /// The domain's device tree (empty: none); its IPA is passed in x0.
    pub dtb: &'a [u8],
    pub dtb_offset: u64,
    /// Host devices assigned to this domain, mapped at the same address.
    pub passthrough: [Passthrough; MAX_PASSTHROUGH],
    pub npassthrough: u8,
    /// Real-time scheduling on a shared pCPU: budget per period, in
    /// microseconds (both 0: the domain's pCPUs run the null scheduler).
    pub rtds_budget_us: u32,
    pub rtds_period_us: u32,
    /// Xen guest ABI limits (meaningful with FLAG_XEN).
    pub grant_frames: u16,
    pub event_channels: u16,
    pub xenstore: crate::xenstore::Quota,
    /// The xenstore nodes its (re)start writes (`xenstore::seed` records).
    pub xenstore_seed: &'a [u8],
    /// Domains (bit i: domain index i) whose grants it may map: the
    /// frontends of the devices it serves. Non-zero: its RAM is mapped in
    /// 4 KiB pages, so granted pages can take their place.
    pub serves: u8,
    /// Domains (bit i) whose frames it may map without a grant: frontends
    /// of a legacy vfb it serves (fbif names frames, not grants). A subset
    /// of `serves`.
    pub foreign: u8,
}

/// An MMIO region (and its SPI, 0 for none) owned by one domain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Passthrough {
    pub pa: u64,
    pub size: u64,
    pub spi: u32,
}

impl Default for DomainDesc<'_> {
    fn default() -> Self {
        DomainDesc {
            name: "",
            vcpus: 1,
            pins: [0; MAX_VCPUS],
            flags: 0,
            on_poweroff: Action::Destroy,
            on_reboot: Action::Restart,
            on_crash: Action::Destroy,
            mem_pa: 0,
            ram_ipa: xen_abi::guest_layout::RAM0_BASE,
            mem_size: 0,
            load_offset: 0,
            image: &[],
            initrd: &[],
            initrd_offset: 0,
            dtb: &[],
            dtb_offset: 0,
            passthrough: [Passthrough::default(); MAX_PASSTHROUGH],
            npassthrough: 0,
            rtds_budget_us: 0,
            rtds_period_us: 0,
            grant_frames: 0,
            event_channels: 0,
            xenstore: crate::xenstore::Quota::DEFAULT,
            xenstore_seed: &[],
            serves: 0,
            foreign: 0,
        }
    }
}

impl DomainDesc<'_> {
    pub fn is_system_controller(&self) -> bool {
        self.flags & FLAG_SYSTEM_CONTROLLER != 0
    }
    pub fn has_vpl011(&self) -> bool {
        self.flags & FLAG_VPL011 != 0
    }
    pub fn pins(&self) -> &[u8] {
        &self.pins[..self.vcpus as usize]
    }

    /// Scheduled by RTDS on shared pCPUs (else by the null scheduler).
    pub fn is_rtds(&self) -> bool {
        self.rtds_period_us != 0
    }

    /// Its Xen pages, if it is offered Xen's guest ABI.
    pub fn xen(&self) -> Option<XenPages> {
        if self.flags & FLAG_XEN == 0 {
            return None;
        }
        let size = xen_pages_size(self.grant_frames);
        let base = self.ram_ipa + self.mem_size.checked_sub(size)?;
        Some(XenPages {
            grant_ipa: base,
            grant_frames: self.grant_frames,
            store_ipa: base + u64::from(self.grant_frames) * 4096,
            size,
            event_channels: self.event_channels,
        })
    }

    pub fn passthrough(&self) -> &[Passthrough] {
        &self.passthrough[..(self.npassthrough as usize).min(MAX_PASSTHROUGH)]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoardDesc {
    pub ncpus: u32,
    pub vwfi: Vwfi,
    pub scheduler: Scheduler,
    pub uart_base: u64,
    pub gicd_base: u64,
    pub gicr_base: u64,
    pub ram_base: u64,
    pub ram_size: u64,
    pub gic: GicVersion,
    pub uart: UartKind,
    /// GICv2's CPU interface, virtual interface control and virtual CPU
    /// interface frames (0 on GICv3).
    pub gicc_base: u64,
    pub gich_base: u64,
    pub gicv_base: u64,
    /// TI DRA7 (J6): WakeupGen's base, whose AuxCoreBoot registers start
    /// the secondary CPUs (the J6 has no PSCI); 0 on other boards.
    pub aux_core_boot: u64,
    /// TI DRA7: the realtime counter the generic timer counts, and
    /// CM_CLKSEL_SYS, from which the hypervisor programs it (`dra7`);
    /// 0 where firmware sets the counter up.
    pub realtime_counter: u64,
    pub clksel_sys: u64,
    /// TI's IRQ crossbar (DRA7): the base of its line registers, which the
    /// hypervisor programs at boot from the bundle's crossbar table; 0 on
    /// boards without one.
    pub crossbar_base: u64,
    /// The crossbar's line registers (GIC SPIs behind it) and its inputs:
    /// every write the bundle's table holds stays within both.
    pub crossbar_lines: u16,
    pub crossbar_sources: u16,
}

impl BoardDesc {
    /// How far from `crossbar_base` the crossbar's line registers reach
    /// (16 bits each).
    pub fn crossbar_span(&self) -> u64 {
        2 * u64::from(self.crossbar_lines)
    }

    /// Whether the crossbar facts hang together: none at all, or a 4-byte
    /// aligned base with 1 to `crossbar::MAX_LINES` lines and some inputs,
    /// whose registers end before the address space does.
    fn crossbar_ok(&self) -> bool {
        if self.crossbar_base == 0 {
            return self.crossbar_lines == 0 && self.crossbar_sources == 0;
        }
        self.crossbar_base % 4 == 0
            && (1..=crate::crossbar::MAX_LINES).contains(&usize::from(self.crossbar_lines))
            && self.crossbar_sources > 0
            && self.crossbar_base.checked_add(self.crossbar_span()).is_some()
    }
}

/// One crossbar register write: the 16-bit register at `offset` from the
/// crossbar's base gets `value` (a crossbar input).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrossbarWrite {
    pub offset: u16,
    pub value: u16,
}

/// The hypervisor console's UART.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UartKind {
    /// Arm PL011 (QEMU virt, and the SBSA UART of most Arm boards).
    Pl011 = 0,
    /// Cadence UART (Zynq UltraScale+).
    Cadence = 1,
    /// Renesas SCIF (R-Car Gen3).
    Scif = 2,
    /// TI's OMAP UART (DRA7/J6): an 8250 with registers 4 bytes apart.
    Omap = 3,
}

/// The architecture version of the board's GIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicVersion {
    V2 = 2,
    V3 = 3,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BundleError {
    TooShort,
    BadMagic,
    BadLength,
    TooManyDomains,
    BadEnum { field: &'static str, value: u8 },
    BadName,
    BadVcpus,
    ImageOutOfBounds,
    ImageTooLarge,
    BadPassthrough,
    BadRamIpa,
    /// Xen limits out of range, or Xen pages that do not fit in its RAM.
    BadXen,
    /// Crossbar facts that do not hang together, or a crossbar table
    /// without a crossbar, out of the bundle, writing past the crossbar's
    /// line registers or naming an input it does not have.
    BadCrossbar,
    /// Two of the frames the hypervisor drives overlap.
    FramesOverlap,
}

/// What the hypervisor prints when it refuses a bundle (plain text: no
/// `Debug` string escaping, which would cost the image its Unicode tables).
impl core::fmt::Display for BundleError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let what = match self {
            BundleError::TooShort => "shorter than its header",
            BundleError::BadMagic => "not a bundle of this hypervisor's version (magic)",
            BundleError::BadLength => "its length disagrees with the header or the domain records",
            BundleError::TooManyDomains => "too many domains",
            BundleError::BadEnum { field, value } => return write!(f, "field {field} holds {value}, which names nothing"),
            BundleError::BadName => "a domain's name is empty, too long or holds a NUL",
            BundleError::BadVcpus => "a domain's vCPU count is out of range",
            BundleError::ImageOutOfBounds => "a blob lies outside the bundle",
            BundleError::ImageTooLarge => "a blob does not fit its domain's RAM",
            BundleError::BadPassthrough => "a passthrough entry is unaligned, wraps, is not an SPI, or touches the hypervisor's own frames or interrupts",
            BundleError::BadRamIpa => "a domain's RAM guest address is unaligned or out of range",
            BundleError::BadXen => "a domain's Xen limits are out of range or its Xen pages do not fit",
            BundleError::BadCrossbar => "the IRQ crossbar's facts or register table are out of range",
            BundleError::FramesOverlap => "two of the hypervisor's own device frames overlap",
        };
        f.write_str(what)
    }
}

/// A decoded, bounds-checked view of a bundle in memory.
#[derive(Clone, Copy, Debug)]
pub struct Bundle<'a> {
    bytes: &'a [u8],
    pub board: BoardDesc,
    ndomains: usize,
    /// The crossbar table: 4 bytes per write, checked by `parse`.
    crossbar: &'a [u8],
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(a)
}

fn action(field: &'static str, v: u8) -> Result<Action, BundleError> {
    match v {
        0 => Ok(Action::Destroy),
        1 => Ok(Action::Restart),
        2 => Ok(Action::Preserve),
        value => Err(BundleError::BadEnum { field, value }),
    }
}

/// The header's crossbar table, checked: inside the bundle, only with a
/// crossbar (whose facts `board` holds, checked by `crossbar_ok`: no
/// crossbar means no lines), no more writes than lines, each to a 2-byte
/// aligned line register the crossbar has, of an input it has.
fn crossbar_table<'a>(bytes: &'a [u8], board: &BoardDesc) -> Result<&'a [u8], BundleError> {
    let at = u32_at(bytes, 128) as usize;
    let count = u16::from_le_bytes([bytes[132], bytes[133]]) as usize;
    if count == 0 {
        return Ok(&[]);
    }
    if count > usize::from(board.crossbar_lines) {
        return Err(BundleError::BadCrossbar);
    }
    let table = at
        .checked_add(count * 4)
        .and_then(|end| bytes.get(at..end))
        .ok_or(BundleError::BadCrossbar)?;
    let fits = |w: &[u8]| {
        let off = u64::from(u16::from_le_bytes([w[0], w[1]]));
        let input = u16::from_le_bytes([w[2], w[3]]);
        off % 2 == 0 && off + 2 <= board.crossbar_span() && input < board.crossbar_sources
    };
    if !table.chunks_exact(4).all(fits) {
        return Err(BundleError::BadCrossbar);
    }
    Ok(table)
}

impl<'a> Bundle<'a> {
    /// Checks the header and every record; afterwards `domain(i)` cannot fail.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, BundleError> {
        if bytes.len() < HEADER_SIZE {
            return Err(BundleError::TooShort);
        }
        if &bytes[..8] != MAGIC {
            return Err(BundleError::BadMagic);
        }
        let total = u64_at(bytes, 8);
        if total < HEADER_SIZE as u64 || total > bytes.len() as u64 {
            return Err(BundleError::BadLength);
        }
        let bytes = &bytes[..total as usize];
        let vwfi = match bytes[20] {
            0 => Vwfi::Trap,
            1 => Vwfi::Native,
            value => return Err(BundleError::BadEnum { field: "vwfi", value }),
        };
        let scheduler = match bytes[21] {
            0 => Scheduler::Null,
            value => return Err(BundleError::BadEnum { field: "scheduler", value }),
        };
        let ndomains = u16::from_le_bytes([bytes[22], bytes[23]]) as usize;
        if ndomains > MAX_DOMAINS {
            return Err(BundleError::TooManyDomains);
        }
        if HEADER_SIZE + ndomains * RECORD_SIZE > bytes.len() {
            return Err(BundleError::BadLength);
        }
        let board = BoardDesc {
            ncpus: u32_at(bytes, 16),
            vwfi,
            scheduler,
            uart_base: u64_at(bytes, 24),
            gicd_base: u64_at(bytes, 32),
            gicr_base: u64_at(bytes, 40),
            ram_base: u64_at(bytes, 48),
            ram_size: u64_at(bytes, 56),
            gic: match bytes[64] {
                2 => GicVersion::V2,
                3 => GicVersion::V3,
                v => return Err(BundleError::BadEnum { field: "gic_version", value: v }),
            },
            uart: match bytes[65] {
                0 => UartKind::Pl011,
                1 => UartKind::Cadence,
                2 => UartKind::Scif,
                3 => UartKind::Omap,
                v => {
                    return Err(BundleError::BadEnum {
                        field: "uart_kind",
                        value: v,
                    })
                }
            },
            gicc_base: u64_at(bytes, 72),
            gich_base: u64_at(bytes, 80),
            gicv_base: u64_at(bytes, 88),
            aux_core_boot: u64_at(bytes, 96),
            realtime_counter: u64_at(bytes, 104),
            clksel_sys: u64_at(bytes, 112),
            crossbar_base: u64_at(bytes, 120),
            crossbar_lines: u16::from_le_bytes([bytes[134], bytes[135]]),
            crossbar_sources: u16::from_le_bytes([bytes[136], bytes[137]]),
        };
        if !board.crossbar_ok() {
            return Err(BundleError::BadCrossbar);
        }
        if board.overlapping_frames().is_some() {
            return Err(BundleError::FramesOverlap);
        }
        let crossbar = crossbar_table(bytes, &board)?;
        let bundle = Bundle { bytes, board, ndomains, crossbar };
        for i in 0..ndomains {
            bundle.decode_domain(i)?;
        }
        Ok(bundle)
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// The crossbar register writes the hypervisor makes at boot: every
    /// offset is a 2-byte aligned line register within
    /// `board.crossbar_span()`, every value one of the crossbar's inputs.
    pub fn crossbar_writes(&self) -> impl Iterator<Item = CrossbarWrite> + 'a {
        self.crossbar.chunks_exact(4).map(|w| CrossbarWrite {
            offset: u16::from_le_bytes([w[0], w[1]]),
            value: u16::from_le_bytes([w[2], w[3]]),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn domain_count(&self) -> usize {
        self.ndomains
    }

    /// The `i`th domain; `None` past the end.
    pub fn domain(&self, i: usize) -> Option<DomainDesc<'a>> {
        if i >= self.ndomains {
            return None;
        }
        self.decode_domain(i).ok()
    }

    pub fn domains(&self) -> impl Iterator<Item = DomainDesc<'a>> + '_ {
        (0..self.ndomains).filter_map(|i| self.domain(i))
    }

    fn decode_domain(&self, i: usize) -> Result<DomainDesc<'a>, BundleError> {
        let r = &self.bytes[HEADER_SIZE + i * RECORD_SIZE..][..RECORD_SIZE];
        let name_bytes = &r[..NAME_LEN];
        let name_len = name_bytes.iter().position(|&c| c == 0).unwrap_or(NAME_LEN);
        let name = core::str::from_utf8(&name_bytes[..name_len]).map_err(|_| BundleError::BadName)?;
        if name.is_empty() {
            return Err(BundleError::BadName);
        }
        let vcpus = r[32];
        if vcpus == 0 || vcpus as usize > MAX_VCPUS {
            return Err(BundleError::BadVcpus);
        }
        let mut pins = [0u8; MAX_VCPUS];
        pins.copy_from_slice(&r[40..48]);
        let mem_size = u64_at(r, 56);
        let npassthrough = r[37];
        if npassthrough as usize > MAX_PASSTHROUGH {
            return Err(BundleError::BadPassthrough);
        }
        let (image, load_offset) = self.blob(r, 64, mem_size)?;
        let (initrd, initrd_offset) = self.blob(r, 88, mem_size)?;
        let (dtb, dtb_offset) = self.blob(r, 112, mem_size)?;
        let ram_ipa = u64_at(r, 232);
        let ram_end = ram_ipa.checked_add(mem_size).ok_or(BundleError::BadRamIpa)?;
        if !ram_ipa.is_multiple_of(2 << 20) || ram_end > 1 << 39 || ram_ipa < xen_abi::guest_layout::RAM0_BASE {
            return Err(BundleError::BadRamIpa);
        }
        let (grant_frames, event_channels) = (u16::from_le_bytes([r[248], r[249]]), u16::from_le_bytes([r[250], r[251]]));
        if r[33] & FLAG_XEN != 0
            && (!(1..=MAX_GRANT_FRAMES).contains(&grant_frames)
                || !(1..=MAX_EVENT_CHANNELS).contains(&event_channels)
                || xen_pages_size(grant_frames) >= mem_size)
        {
            return Err(BundleError::BadXen);
        }
        if r[33] & FLAG_XEN != 0 {
            // No blob may reach into the Xen pages the guest will write.
            let limit = mem_size - xen_pages_size(grant_frames);
            let ends = [(load_offset, image.len()), (initrd_offset, initrd.len()), (dtb_offset, dtb.len())];
            if ends.iter().any(|&(o, n)| n > 0 && o + n as u64 > limit) {
                return Err(BundleError::BadXen);
            }
        }
        let mut passthrough = [Passthrough::default(); MAX_PASSTHROUGH];
        for (i, p) in passthrough.iter_mut().enumerate().take(npassthrough as usize) {
            let at = passthrough_at(i);
            *p = Passthrough { pa: u64_at(r, at), size: u64_at(r, at + 8), spi: u32_at(r, at + 16) };
            let aligned = p.pa % 4096 == 0 && p.size % 4096 == 0 && p.size > 0;
            // Never the hypervisor's own frames (its UART, GIC, crossbar).
            let own = aligned && self.board.own_frame_touching(p.pa, p.size).is_some();
            // Nor the interrupt of the domain's virtual PL011.
            let vuart = r[33] & FLAG_VPL011 != 0 && p.spi == xen_abi::guest_layout::PL011_SPI;
            if !aligned || own || vuart || p.pa.checked_add(p.size).is_none() || (p.spi != 0 && !(32..1020).contains(&p.spi)) {
                return Err(BundleError::BadPassthrough);
            }
        }
        Ok(DomainDesc {
            name,
            vcpus,
            pins,
            flags: r[33],
            on_poweroff: action("on_poweroff", r[34])?,
            on_reboot: action("on_reboot", r[35])?,
            on_crash: action("on_crash", r[36])?,
            mem_pa: u64_at(r, 48),
            ram_ipa,
            mem_size,
            load_offset,
            image,
            initrd,
            initrd_offset,
            dtb,
            dtb_offset,
            passthrough,
            npassthrough,
            rtds_budget_us: u32_at(r, 240),
            rtds_period_us: u32_at(r, 244),
            grant_frames,
            event_channels,
            xenstore: crate::xenstore::Quota { nodes: u16::from_le_bytes([r[252], r[253]]), watches: r[254], transactions: r[255] },
            xenstore_seed: self.seed(r)?,
            serves: r[38],
            foreign: r[39] & r[38],
        })
    }

    /// A blob described at `at` in a record: (bundle offset, length, offset
    /// in guest RAM), bounds-checked against the bundle and the domain's RAM.
    fn blob(&self, r: &[u8], at: usize, mem_size: u64) -> Result<(&'a [u8], u64), BundleError> {
        let (off, len, ram_off) = (u64_at(r, at), u64_at(r, at + 8), u64_at(r, at + 16));
        let end = off.checked_add(len).ok_or(BundleError::ImageOutOfBounds)?;
        if end > self.bytes.len() as u64 {
            return Err(BundleError::ImageOutOfBounds);
        }
        match ram_off.checked_add(len) {
            Some(e) if e <= mem_size => {}
            _ => return Err(BundleError::ImageTooLarge),
        }
        Ok((&self.bytes[off as usize..end as usize], ram_off))
    }
}

impl<'a> Bundle<'a> {
    /// A record's xenstore seed (empty: none).
    fn seed(&self, r: &[u8]) -> Result<&'a [u8], BundleError> {
        let (off, len) = (u64_at(r, 256), u64_at(r, 264));
        let end = off.checked_add(len).ok_or(BundleError::ImageOutOfBounds)?;
        if end > self.bytes.len() as u64 {
            return Err(BundleError::ImageOutOfBounds);
        }
        Ok(&self.bytes[off as usize..end as usize])
    }
}

/// Encodes a bundle (host side: xtask and tests).
#[cfg(any(feature = "alloc", test))]
pub fn encode(board: &BoardDesc, crossbar: &[CrossbarWrite], domains: &[DomainDesc<'_>]) -> EncodeResult {
    extern crate alloc;
    use alloc::vec::Vec;

    if domains.len() > MAX_DOMAINS {
        return Err(BundleError::TooManyDomains);
    }
    let mut out: Vec<u8> = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&0u64.to_le_bytes()); // total_len, patched below
    out.extend_from_slice(&board.ncpus.to_le_bytes());
    out.push(board.vwfi as u8);
    out.push(board.scheduler as u8);
    out.extend_from_slice(&(domains.len() as u16).to_le_bytes());
    for v in [board.uart_base, board.gicd_base, board.gicr_base, board.ram_base, board.ram_size] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.push(board.gic as u8);
    out.push(board.uart as u8);
    out.extend_from_slice(&[0; 6]);
    for v in [board.gicc_base, board.gich_base, board.gicv_base, board.aux_core_boot, board.realtime_counter, board.clksel_sys, board.crossbar_base] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    if !board.crossbar_ok() || crossbar.len() > usize::from(board.crossbar_lines) {
        return Err(BundleError::BadCrossbar);
    }
    out.extend_from_slice(&0u32.to_le_bytes()); // crossbar table's offset, patched below
    out.extend_from_slice(&(crossbar.len() as u16).to_le_bytes());
    out.extend_from_slice(&board.crossbar_lines.to_le_bytes());
    out.extend_from_slice(&board.crossbar_sources.to_le_bytes());
    out.extend_from_slice(&[0; 6]);
    let records_at = out.len();
    debug_assert_eq!(records_at, HEADER_SIZE);
    out.resize(records_at + domains.len() * RECORD_SIZE, 0);
    for (i, d) in domains.iter().enumerate() {
        if d.name.is_empty() || d.name.len() > NAME_LEN || d.name.as_bytes().contains(&0) {
            return Err(BundleError::BadName);
        }
        if d.vcpus == 0 || d.vcpus as usize > MAX_VCPUS {
            return Err(BundleError::BadVcpus);
        }
        if d.npassthrough as usize > MAX_PASSTHROUGH {
            return Err(BundleError::BadPassthrough);
        }
        let mut blobs = [(0u64, 0u64, 0u64); 3];
        for (slot, (bytes, ram_off)) in [(d.image, d.load_offset), (d.initrd, d.initrd_offset), (d.dtb, d.dtb_offset)].into_iter().enumerate() {
            let off = out.len().next_multiple_of(4096);
            out.resize(off, 0);
            out.extend_from_slice(bytes);
            blobs[slot] = (off as u64, bytes.len() as u64, ram_off);
        }
        let seed_at = if d.xenstore_seed.is_empty() {
            (0u64, 0u64)
        } else {
            let off = out.len().next_multiple_of(8);
            out.resize(off, 0);
            out.extend_from_slice(d.xenstore_seed);
            (off as u64, d.xenstore_seed.len() as u64)
        };
        let r = &mut out[records_at + i * RECORD_SIZE..][..RECORD_SIZE];
        r[..d.name.len()].copy_from_slice(d.name.as_bytes());
        r[32] = d.vcpus;
        r[33] = d.flags;
        r[34] = d.on_poweroff as u8;
        r[35] = d.on_reboot as u8;
        r[36] = d.on_crash as u8;
        r[37] = d.npassthrough;
        r[38] = d.serves;
        r[39] = d.foreign;
        r[40..48].copy_from_slice(&d.pins);
        r[48..56].copy_from_slice(&d.mem_pa.to_le_bytes());
        r[56..64].copy_from_slice(&d.mem_size.to_le_bytes());
        for (slot, (off, len, ram_off)) in blobs.into_iter().enumerate() {
            let at = 64 + 24 * slot;
            r[at..at + 8].copy_from_slice(&off.to_le_bytes());
            r[at + 8..at + 16].copy_from_slice(&len.to_le_bytes());
            r[at + 16..at + 24].copy_from_slice(&ram_off.to_le_bytes());
        }
        r[232..240].copy_from_slice(&d.ram_ipa.to_le_bytes());
        r[240..244].copy_from_slice(&d.rtds_budget_us.to_le_bytes());
        r[244..248].copy_from_slice(&d.rtds_period_us.to_le_bytes());
        r[248..250].copy_from_slice(&d.grant_frames.to_le_bytes());
        r[250..252].copy_from_slice(&d.event_channels.to_le_bytes());
        r[252..254].copy_from_slice(&d.xenstore.nodes.to_le_bytes());
        r[254] = d.xenstore.watches;
        r[255] = d.xenstore.transactions;
        r[256..264].copy_from_slice(&seed_at.0.to_le_bytes());
        r[264..272].copy_from_slice(&seed_at.1.to_le_bytes());
        for (j, p) in d.passthrough().iter().enumerate() {
            let at = passthrough_at(j);
            r[at..at + 8].copy_from_slice(&p.pa.to_le_bytes());
            r[at + 8..at + 16].copy_from_slice(&p.size.to_le_bytes());
            r[at + 16..at + 20].copy_from_slice(&p.spi.to_le_bytes());
        }
    }
    if !crossbar.is_empty() {
        let at = out.len().next_multiple_of(4);
        out.resize(at, 0);
        for w in crossbar {
            out.extend_from_slice(&w.offset.to_le_bytes());
            out.extend_from_slice(&w.value.to_le_bytes());
        }
        let at = u32::try_from(at).map_err(|_| BundleError::BadCrossbar)?;
        out[128..132].copy_from_slice(&at.to_le_bytes());
    }
    let total = out.len() as u64;
    out[8..16].copy_from_slice(&total.to_le_bytes());
    Ok(out)
}

#[cfg(any(feature = "alloc", test))]
pub type EncodeResult = Result<alloc::vec::Vec<u8>, BundleError>;

#[cfg(test)]
extern crate alloc;

#[cfg(test)]
mod tests {
    use super::*;

    fn board() -> BoardDesc {
        BoardDesc {
            ncpus: 4,
            vwfi: Vwfi::Native,
            scheduler: Scheduler::Null,
            uart_base: 0x0900_0000,
            gicd_base: 0x0800_0000,
            gicr_base: 0x080A_0000,
            ram_base: 0x4000_0000,
            ram_size: 1 << 30,
            gic: GicVersion::V3,
            uart: UartKind::Pl011,
            gicc_base: 0,
            gich_base: 0,
            gicv_base: 0,
            aux_core_boot: 0,
            realtime_counter: 0,
            clksel_sys: 0,
            crossbar_base: 0,
            crossbar_lines: 0,
            crossbar_sources: 0,
        }
    }

    fn dom<'a>(name: &'a str, image: &'a [u8]) -> DomainDesc<'a> {
        DomainDesc {
            name,
            vcpus: 2,
            pins: [1, 2, 0, 0, 0, 0, 0, 0],
            flags: FLAG_VPL011,
            on_poweroff: Action::Destroy,
            on_reboot: Action::Restart,
            on_crash: Action::Preserve,
            mem_pa: 0x6000_0000,
            mem_size: 16 << 20,
            load_offset: 0x8_0000,
            image,
            ..Default::default()
        }
    }

    #[test]
    fn round_trip_keeps_every_field_and_image() {
        let img_a = [1u8, 2, 3, 4, 5];
        let img_b = [9u8; 5000];
        let bytes = encode(&board(), &[], &[dom("cluster", &img_a), dom("ivi", &img_b)]).unwrap();
        let b = Bundle::parse(&bytes).unwrap();
        assert_eq!(b.board, board());
        assert_eq!(b.domain_count(), 2);
        assert_eq!(b.domain(0).unwrap(), dom("cluster", &img_a));
        assert_eq!(b.domain(1).unwrap(), dom("ivi", &img_b));
        assert!(b.domain(2).is_none());
        assert_eq!(b.domain(1).unwrap().pins(), &[1, 2]);
    }

    #[test]
    fn linux_domains_carry_initrd_dtb_and_passthrough() {
        let (img, rd, dt) = ([1u8; 10], [2u8; 20], [3u8; 30]);
        let mut d = dom("ivi", &img);
        d.initrd = &rd;
        d.initrd_offset = 0x80_0000;
        d.dtb = &dt;
        d.dtb_offset = 0x0e0_0000;
        d.passthrough[0] = Passthrough { pa: 0x0a00_3000, size: 0x1000, spi: 79 };
        d.npassthrough = 1;
        let bytes = encode(&board(), &[], &[d]).unwrap();
        let got = Bundle::parse(&bytes).unwrap().domain(0).unwrap();
        assert_eq!(got, d);
        assert_eq!(got.passthrough(), &[Passthrough { pa: 0x0a00_3000, size: 0x1000, spi: 79 }]);
        // A passthrough SPI that is not an SPI is refused.
        let mut bad = bytes.clone();
        bad[HEADER_SIZE + 136 + 16..HEADER_SIZE + 136 + 20].copy_from_slice(&5u32.to_le_bytes());
        assert_eq!(Bundle::parse(&bad).unwrap_err(), BundleError::BadPassthrough);
        // Nor the domain's virtual PL011's SPI, unless it has none.
        let mut d32 = d;
        d32.passthrough[0].spi = xen_abi::guest_layout::PL011_SPI;
        assert_eq!(Bundle::parse(&encode(&board(), &[], &[d32]).unwrap()).unwrap_err(), BundleError::BadPassthrough);
        d32.flags &= !FLAG_VPL011;
        assert!(Bundle::parse(&encode(&board(), &[], &[d32]).unwrap()).is_ok());
    }

    #[test]
    fn a_driver_domain_keeps_all_eight_passthrough_devices() {
        let img = [1u8; 10];
        let mut d = dom("driver", &img);
        for (i, p) in d.passthrough.iter_mut().enumerate() {
            *p = Passthrough { pa: 0x0a00_0000 + 0x1000 * i as u64, size: 0x1000, spi: 40 + i as u32 };
        }
        d.npassthrough = MAX_PASSTHROUGH as u8;
        let bytes = encode(&board(), &[], &[d]).unwrap();
        let got = Bundle::parse(&bytes).unwrap().domain(0).unwrap();
        assert_eq!(got.passthrough(), &d.passthrough[..]);
        // The last entry is checked like the first.
        let mut bad = bytes.clone();
        let at = HEADER_SIZE + passthrough_at(MAX_PASSTHROUGH - 1) + 16;
        bad[at..at + 4].copy_from_slice(&1020u32.to_le_bytes());
        assert_eq!(Bundle::parse(&bad).unwrap_err(), BundleError::BadPassthrough);
    }

    #[test]
    fn the_crossbar_table_round_trips_and_stays_inside_the_crossbar() {
        let img = [7u8; 100];
        let mut j6 = board();
        (j6.crossbar_base, j6.crossbar_lines, j6.crossbar_sources) = (0x4A00_2A48, 160, 400);
        let writes = [CrossbarWrite { offset: 0x12E, value: 69 }, CrossbarWrite { offset: 0, value: 0 }];
        let bytes = encode(&j6, &writes, &[dom("a", &img)]).unwrap();
        let b = Bundle::parse(&bytes).unwrap();
        assert_eq!((b.board.crossbar_base, b.board.crossbar_lines, b.board.crossbar_sources), (0x4A00_2A48, 160, 400));
        assert_eq!(b.crossbar_writes().collect::<heapless::Vec<_, 4>>().as_slice(), &writes);
        // No table without a crossbar, on either side.
        assert_eq!(encode(&board(), &writes, &[]).unwrap_err(), BundleError::BadCrossbar);
        let mut bad = bytes.clone();
        bad[120..128].copy_from_slice(&0u64.to_le_bytes());
        assert_eq!(Bundle::parse(&bad).unwrap_err(), BundleError::BadCrossbar);
        // A write past the crossbar's 160 line registers, or misaligned, is
        // refused; the last line's register is not.
        let at = u32::from_le_bytes([bytes[128], bytes[129], bytes[130], bytes[131]]) as usize;
        for (offset, ok) in [(318, true), (320, false), (0x12F, false), (u16::MAX, false)] {
            let mut w = bytes.clone();
            w[at..at + 2].copy_from_slice(&offset.to_le_bytes());
            assert_eq!(Bundle::parse(&w).is_ok(), ok, "offset {offset:#x}");
        }
        // So is an input the crossbar does not have.
        for (input, ok) in [(399u16, true), (400, false), (u16::MAX, false)] {
            let mut w = bytes.clone();
            w[at + 2..at + 4].copy_from_slice(&input.to_le_bytes());
            assert_eq!(Bundle::parse(&w).is_ok(), ok, "input {input}");
        }
        // A table reaching past the bundle's end is refused, and so is one
        // with more writes than the crossbar has lines.
        let mut bad = bytes.clone();
        bad[132..134].copy_from_slice(&150u16.to_le_bytes());
        assert_eq!(Bundle::parse(&bad).unwrap_err(), BundleError::BadCrossbar);
        let mut bad = bytes.clone();
        bad[134..136].copy_from_slice(&1u16.to_le_bytes());
        assert_eq!(Bundle::parse(&bad).unwrap_err(), BundleError::BadCrossbar, "2 writes, 1 line");
        // Crossbar facts that do not hang together are refused: lines or
        // inputs without a base, a base without them, too many lines.
        for (lines, sources, base) in [(160u16, 400u16, 0u64), (0, 400, 0x4A00_2A48), (160, 0, 0x4A00_2A48), (257, 400, 0x4A00_2A48)] {
            let mut bad = bytes.clone();
            bad[120..128].copy_from_slice(&base.to_le_bytes());
            bad[132..134].copy_from_slice(&0u16.to_le_bytes());
            bad[134..136].copy_from_slice(&lines.to_le_bytes());
            bad[136..138].copy_from_slice(&sources.to_le_bytes());
            assert_eq!(Bundle::parse(&bad).unwrap_err(), BundleError::BadCrossbar, "{lines} lines, {sources} inputs at {base:#x}");
        }
        // A board without a crossbar has an empty table.
        let plain = encode(&board(), &[], &[dom("a", &img)]).unwrap();
        assert_eq!(Bundle::parse(&plain).unwrap().crossbar_writes().count(), 0);
    }

    #[test]
    fn the_hypervisor_s_frames_are_its_own() {
        let img = [7u8; 100];
        // The crossbar's registers on the GIC distributor's page: refused.
        let mut b = board();
        (b.crossbar_base, b.crossbar_lines, b.crossbar_sources) = (b.gicd_base + 0x100, 160, 400);
        let bytes = encode(&b, &[], &[dom("a", &img)]).unwrap();
        assert_eq!(Bundle::parse(&bytes).unwrap_err(), BundleError::FramesOverlap);
        // A domain given the page of the hypervisor's UART, or a range
        // covering the GIC's, is refused.
        for (pa, size) in [(0x0900_0000, 0x1000), (0x0700_0000, 0x0200_0000)] {
            let mut d = dom("a", &img);
            d.passthrough[0] = Passthrough { pa, size, spi: 0 };
            d.npassthrough = 1;
            let bytes = encode(&board(), &[], &[d]).unwrap();
            assert_eq!(Bundle::parse(&bytes).unwrap_err(), BundleError::BadPassthrough, "{pa:#x}+{size:#x}");
        }
        // Next to them, it is not.
        let mut d = dom("a", &img);
        d.passthrough[0] = Passthrough { pa: 0x0900_1000, size: 0x1000, spi: 0 };
        d.npassthrough = 1;
        assert!(Bundle::parse(&encode(&board(), &[], &[d]).unwrap()).is_ok());
    }

    #[test]
    fn rejects_corruption_without_panicking() {
        let img = [7u8; 100];
        let good = encode(&board(), &[], &[dom("a", &img)]).unwrap();
        assert_eq!(Bundle::parse(&good[..10]).unwrap_err(), BundleError::TooShort);
        let mut bad = good.clone();
        bad[0] = b'X';
        assert_eq!(Bundle::parse(&bad).unwrap_err(), BundleError::BadMagic);
        let mut bad = good.clone();
        bad[HEADER_SIZE + 72..HEADER_SIZE + 80].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(Bundle::parse(&bad).unwrap_err(), BundleError::ImageOutOfBounds);
        let mut bad = good.clone();
        bad[HEADER_SIZE + 36] = 9;
        assert_eq!(
            Bundle::parse(&bad).unwrap_err(),
            BundleError::BadEnum { field: "on_crash", value: 9 }
        );
        let mut bad = good.clone();
        bad[HEADER_SIZE + 80..HEADER_SIZE + 88].copy_from_slice(&(16u64 << 20).to_le_bytes());
        assert_eq!(Bundle::parse(&bad).unwrap_err(), BundleError::ImageTooLarge);
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics_on_arbitrary_bytes(mut bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2048), len in 0u64..4096) {
            if bytes.len() >= 16 {
                bytes[..8].copy_from_slice(MAGIC);
                bytes[8..16].copy_from_slice(&len.to_le_bytes());
            }
            if let Ok(b) = Bundle::parse(&bytes) {
                for d in b.domains() {
                    proptest::prop_assert!(d.image.len() as u64 <= d.mem_size);
                }
            }
        }
    }
}
