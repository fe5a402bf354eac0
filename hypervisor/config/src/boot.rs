//! How a board's U-Boot boots a cockpit image: where the hypervisor, its
//! device tree and the boot bundle go in RAM, and where the image file is
//! staged before `bootm` copies them out. Board facts in, addresses out, so
//! `cargo xtask image` and its tests share one rule.
//!
//! From the RAM base up: the hypervisor at [`crate::HV_IMAGE_OFFSET`] with
//! [`crate::HV_IMAGE_MAX`] for its image, data and stacks; then
//! [`DTB_SPACE`] for the device tree (U-Boot adds /chosen to it there, the
//! hypervisor reserves it); then the bundle, 2 MiB aligned, in the first
//! gap that holds it outside guest RAM and firmware's memory. The image
//! file is staged at the base of guest RAM, which nothing uses until the
//! hypervisor hands it to domains.

use crate::board::{Board, Region};
use crate::{HV_IMAGE_MAX, MEMORY_ALIGN};

/// The device tree's room: its size plus what U-Boot adds (`fdt_high`
/// caps U-Boot's copy to the end of this room).
pub const DTB_SPACE: u64 = 2 << 20;
/// What U-Boot keeps at the top of the RAM it runs from (its relocated
/// self, heap and stack): a staged image stays this far below guest RAM's
/// end.
pub const UBOOT_TOP: u64 = 128 << 20;

/// A boot script's room, at the top of the hypervisor's.
pub const SCRIPT_SPACE: u64 = 64 << 10;

/// `[boot]` in board.toml.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Boot {
    /// U-Boot's `<interface> <device>:<partition>` of the boot partition,
    /// used when the script is not run by distro boot (which names it).
    pub device: String,
    pub dtb: BootDtb,
}

/// Which device tree the hypervisor gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootDtb {
    /// U-Boot's own (QEMU's generated tree).
    UBoot,
    /// The board's, carried in the image (the first non-QEMU source).
    Image,
}

/// `mmc 0:1`, `virtio 0:1`, `usb 0:1`: a U-Boot interface name, then
/// device and partition numbers. Returned as written when it is one.
pub fn parse_uboot_device(s: &str) -> Option<String> {
    let (iface, rest) = s.split_once(' ')?;
    let (dev, part) = rest.split_once(':')?;
    let num = |t: &str| !t.is_empty() && t.len() <= 3 && t.bytes().all(|b| b.is_ascii_digit());
    let ok = !iface.is_empty() && iface.len() <= 16 && iface.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) && num(dev) && num(part);
    ok.then(|| s.to_string())
}

/// Physical addresses U-Boot loads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootLayout {
    /// The hypervisor's load and entry address (its link address).
    pub hypervisor: u64,
    /// Where the device tree goes, and one past its room (`fdt_high`).
    pub dtb: u64,
    pub dtb_end: u64,
    /// Where the bundle goes (the hypervisor finds it as the initrd).
    pub bundle: u64,
    /// Where the image file is loaded before `bootm` unpacks it.
    pub staging: u64,
    /// Where a boot script loaded by hand goes: the top of the
    /// hypervisor's room, which its bss and stacks take only once it runs
    /// (`bootm` copies the image's bytes, far fewer).
    pub script: u64,
}

fn align_up(v: u64, a: u64) -> Option<u64> {
    v.checked_add(a - 1).map(|x| x & !(a - 1))
}

/// Places a bundle of `bundle_len` bytes and an image file of `staged_len`
/// bytes on `board`, or says why they do not fit.
pub fn layout(board: &Board, bundle_len: u64, staged_len: u64) -> Result<BootLayout, String> {
    let ram = board.ram;
    let wraps = || format!("RAM at {:#x} leaves no room for the hypervisor and its device tree", ram.base);
    let hypervisor = ram.base.checked_add(crate::hv_image_offset(&board.arch)).ok_or_else(wraps)?;
    let dtb = hypervisor.checked_add(HV_IMAGE_MAX).ok_or_else(wraps)?;
    let dtb_end = dtb.checked_add(DTB_SPACE).ok_or_else(wraps)?;
    if !ram.contains(&Region { base: hypervisor, size: dtb_end - hypervisor }) {
        return Err(wraps());
    }
    // U-Boot relocates itself to the top of RAM: nothing it loads may go there.
    let uboot = Region { base: ram.end().saturating_sub(UBOOT_TOP), size: UBOOT_TOP.min(ram.size) };
    let mut taken: Vec<(Region, String)> = vec![(board.guest_ram, "guest RAM".into()), (uboot, "U-Boot".into())];
    taken.extend(board.reserved.iter().map(|r| (r.region, r.what.clone())));
    let fixed = Region { base: hypervisor, size: dtb_end - hypervisor };
    if let Some((_, what)) = taken.iter().find(|(r, _)| r.overlaps(&fixed)) {
        return Err(format!("the hypervisor and its device tree ({:#x}..{:#x}) overlap {what}", fixed.base, fixed.end()));
    }
    // First fit from the device tree's end up: step past whatever is in the way.
    let mut at = align_up(dtb_end, MEMORY_ALIGN).ok_or("RAM wraps")?;
    let bundle = loop {
        let want = Region { base: at, size: bundle_len.max(1) };
        if !ram.contains(&want) {
            return Err(format!(
                "the boot bundle ({} MiB) does not fit in RAM beside the hypervisor, guest RAM and firmware's memory: make guest_ram smaller or the sample's images smaller",
                bundle_len.div_ceil(1 << 20)
            ));
        }
        match taken.iter().filter(|(r, _)| r.overlaps(&want)).map(|(r, _)| r.end()).max() {
            None => break at,
            Some(end) => at = align_up(end, MEMORY_ALIGN).ok_or("RAM wraps")?,
        }
    };
    // The image is staged in guest RAM, clear of U-Boot where they meet.
    let room = board.guest_ram.end().min(uboot.base).saturating_sub(board.guest_ram.base);
    if staged_len > room {
        return Err(format!(
            "the image file ({} MiB) is staged in guest RAM, which holds {} MiB clear of U-Boot's top {} MiB of RAM",
            staged_len.div_ceil(1 << 20),
            room >> 20,
            UBOOT_TOP >> 20
        ));
    }
    Ok(BootLayout { hypervisor, dtb, dtb_end, bundle, staging: board.guest_ram.base, script: dtb - SCRIPT_SPACE })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::Reserved;

    fn board(ram: (u64, u64), guest: (u64, u64), reserved: &[(u64, u64)]) -> Board {
        let mut b = crate::load_board(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bsp"), "qemu-virt").unwrap();
        b.ram = Region { base: ram.0, size: ram.1 };
        b.guest_ram = Region { base: guest.0, size: guest.1 };
        b.reserved = reserved.iter().map(|&(base, size)| Reserved { region: Region { base, size }, what: "TF-A".into() }).collect();
        b
    }

    #[test]
    fn the_bundle_follows_the_device_tree_room_and_the_image_is_staged_in_guest_ram() {
        let b = board((0x4000_0000, 2 << 30), (0x6000_0000, 1536 << 20), &[]);
        let l = layout(&b, 100 << 20, 110 << 20).unwrap();
        assert_eq!(l.hypervisor, 0x4020_0000);
        assert_eq!((l.dtb, l.dtb_end), (0x40A0_0000, 0x40C0_0000));
        assert_eq!(l.bundle, 0x40C0_0000);
        assert_eq!(l.staging, 0x6000_0000);
        assert_eq!(l.script, 0x409F_0000);
    }

    #[test]
    fn the_bundle_steps_over_firmware_memory_and_guest_ram() {
        // Firmware right after the device tree's room: the bundle goes past it.
        let b = board((0x4000_0000, 2 << 30), (0x6000_0000, 512 << 20), &[(0x40C0_0000, 0x10_0000)]);
        assert_eq!(layout(&b, 1 << 20, 1 << 20).unwrap().bundle, 0x40E0_0000);
        // Too big for the gap before guest RAM: it goes after guest RAM.
        let l = layout(&b, 600 << 20, 1 << 20).unwrap();
        assert_eq!(l.bundle, 0x8000_0000);
        // Not into U-Boot's top of RAM (0xB800_0000 and up), though RAM holds it.
        assert!(layout(&b, 900 << 20, 1 << 20).unwrap_err().contains("does not fit"));
    }

    #[test]
    fn what_does_not_fit_is_an_error_naming_the_sizes() {
        let b = board((0x4800_0000, 896 << 20), (0x5400_0000, 704 << 20), &[]);
        let e = layout(&b, 200 << 20, 1 << 20).unwrap_err();
        assert!(e.contains("200 MiB") && e.contains("guest_ram"), "{e}");
        let e = layout(&b, 1 << 20, 600 << 20).unwrap_err();
        assert!(e.contains("600 MiB") && e.contains("576 MiB"), "{e}");
        // Firmware over the hypervisor's own room.
        let b = board((0x4000_0000, 2 << 30), (0x6000_0000, 512 << 20), &[(0x4080_0000, 0x1000)]);
        assert!(layout(&b, 1, 1).unwrap_err().contains("TF-A"));
    }

    #[test]
    fn uboot_devices_are_interface_device_partition() {
        for ok in ["mmc 0:1", "virtio 0:1", "usb 1:12"] {
            assert_eq!(parse_uboot_device(ok).as_deref(), Some(ok));
        }
        for bad in ["mmc", "mmc 0", "mmc 0:", "mmc a:1", "MMC 0:1", "mmc 0:1; reset", "mmc  0:1"] {
            assert_eq!(parse_uboot_device(bad), None, "{bad}");
        }
    }
}
