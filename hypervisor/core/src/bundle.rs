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
//! 0   magic  "CKPTHV01"          8   total_len u64
//! 16  ncpus u32  20 vwfi u8  21 scheduler u8  22 ndomains u16
//! 24  uart_base  32 gicd_base  40 gicr_base  48 ram_base  56 ram_size  (u64 each)
//! 64  domain records, RECORD_SIZE bytes each
//! ..  images, each 4 KiB aligned, at the offsets the records give
//! ```

pub const MAGIC: &[u8; 8] = b"CKPTHV01";
pub const HEADER_SIZE: usize = 64;
pub const RECORD_SIZE: usize = 128;
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
    /// Host physical base of the domain's RAM, mapped at `guest_layout::RAM0_BASE`.
    pub mem_pa: u64,
    pub mem_size: u64,
    /// Where the image is copied, as an offset into guest RAM; also the entry point.
    pub load_offset: u64,
    pub image: &'a [u8],
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
}

/// A decoded, bounds-checked view of a bundle in memory.
#[derive(Clone, Copy, Debug)]
pub struct Bundle<'a> {
    bytes: &'a [u8],
    pub board: BoardDesc,
    ndomains: usize,
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
        };
        let bundle = Bundle { bytes, board, ndomains };
        for i in 0..ndomains {
            bundle.decode_domain(i)?;
        }
        Ok(bundle)
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
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
        let image_off = u64_at(r, 64);
        let image_len = u64_at(r, 72);
        let load_offset = u64_at(r, 80);
        let end = image_off.checked_add(image_len).ok_or(BundleError::ImageOutOfBounds)?;
        if end > self.bytes.len() as u64 {
            return Err(BundleError::ImageOutOfBounds);
        }
        match load_offset.checked_add(image_len) {
            Some(e) if e <= mem_size => {}
            _ => return Err(BundleError::ImageTooLarge),
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
            mem_size,
            load_offset,
            image: &self.bytes[image_off as usize..end as usize],
        })
    }
}

/// Encodes a bundle (host side: xtask and tests).
#[cfg(any(feature = "alloc", test))]
pub fn encode(board: &BoardDesc, domains: &[DomainDesc<'_>]) -> EncodeResult {
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
    let records_at = out.len();
    out.resize(records_at + domains.len() * RECORD_SIZE, 0);
    for (i, d) in domains.iter().enumerate() {
        if d.name.is_empty() || d.name.len() > NAME_LEN || d.name.as_bytes().contains(&0) {
            return Err(BundleError::BadName);
        }
        if d.vcpus == 0 || d.vcpus as usize > MAX_VCPUS {
            return Err(BundleError::BadVcpus);
        }
        let image_off = out.len().next_multiple_of(4096);
        out.resize(image_off, 0);
        out.extend_from_slice(d.image);
        let r = &mut out[records_at + i * RECORD_SIZE..][..RECORD_SIZE];
        r[..d.name.len()].copy_from_slice(d.name.as_bytes());
        r[32] = d.vcpus;
        r[33] = d.flags;
        r[34] = d.on_poweroff as u8;
        r[35] = d.on_reboot as u8;
        r[36] = d.on_crash as u8;
        r[40..48].copy_from_slice(&d.pins);
        for (off, v) in [
            (48, d.mem_pa),
            (56, d.mem_size),
            (64, image_off as u64),
            (72, d.image.len() as u64),
            (80, d.load_offset),
        ] {
            r[off..off + 8].copy_from_slice(&v.to_le_bytes());
        }
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
        }
    }

    #[test]
    fn round_trip_keeps_every_field_and_image() {
        let img_a = [1u8, 2, 3, 4, 5];
        let img_b = [9u8; 5000];
        let bytes = encode(&board(), &[dom("cluster", &img_a), dom("ivi", &img_b)]).unwrap();
        let b = Bundle::parse(&bytes).unwrap();
        assert_eq!(b.board, board());
        assert_eq!(b.domain_count(), 2);
        assert_eq!(b.domain(0).unwrap(), dom("cluster", &img_a));
        assert_eq!(b.domain(1).unwrap(), dom("ivi", &img_b));
        assert!(b.domain(2).is_none());
        assert_eq!(b.domain(1).unwrap().pins(), &[1, 2]);
    }

    #[test]
    fn rejects_corruption_without_panicking() {
        let img = [7u8; 100];
        let good = encode(&board(), &[dom("a", &img)]).unwrap();
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
