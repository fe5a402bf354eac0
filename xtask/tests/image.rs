//! Bootable images and `cargo xtask flash`: an image flashed the way a user
//! does boots under Debian's U-Boot in QEMU; the images of boards QEMU
//! cannot boot carry their BSP's load addresses and device tree; images are
//! reproducible; and flash refuses what it must, on real loop devices.
//! Ignored by plain `cargo test` (they need QEMU, U-Boot, mkimage and root
//! for loop devices: `cargo xtask test`).

use hv_config::boot::BootDtb;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use xtask::image::{self, sha256_hex};
use xtask::qemu::QemuCommand;

const SAMPLE: &str = "two-partitions";

fn scratch(tag: &str) -> PathBuf {
    let d = xtask::artifacts::root().join("target/test-image").join(tag);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `cargo xtask flash ...` as a user types it; (success, stdout + stderr).
fn flash(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask")).arg("flash").args(args).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// Builds `board`'s image of the sample and flashes it to a file.
fn flashed(board: &str, tag: &str) -> PathBuf {
    let to = scratch(tag).join("sd-card.img");
    let (ok, out) = flash(&["--board", board, "--sample", SAMPLE, "--to", to.to_str().unwrap()]);
    assert!(ok, "flash failed:\n{out}");
    assert!(out.contains("read back and checked"), "{out}");
    to
}

/// The whole path a user takes: `cargo xtask flash --to <file>`, the file
/// as the board's SD card, U-Boot's distro boot finding boot.scr on it,
/// bootm unpacking the FIT, and the sample's domains running. (QEMU's
/// ZCU102 has no U-Boot of Debian's: its image is checked in
/// `real_boards_images_carry_their_bsps_load_addresses`.)
fn boots_under_debians_uboot(board: &str) {
    let disk = flashed(board, &format!("boot-{board}"));
    let b = xtask::artifacts::load(SAMPLE, Some(board), None).unwrap().board;
    let mut q = QemuCommand::uboot_disk(&b, &disk).unwrap();
    let mut con = q.extra(&["-nic", "none"]).spawn().unwrap();
    for want in ["Found U-Boot script /boot.scr", "Verifying Hash Integrity ... sha256+ OK", "cockpit hypervisor", "[heartbeat] beat 3", "[crasher] crasher beat 3"] {
        assert!(con.wait_for(Duration::from_secs(90), |l| l.contains(want)).is_some(), "no `{want}` on {board}:\n{}", con.transcript());
    }
    // U-Boot put the bundle where the image says, and the hypervisor found
    // it there as the initrd.
    let layout = image::build(SAMPLE, board, None).unwrap().layout;
    let t = con.transcript();
    assert!(t.lines().any(|l| l.contains("Loading ramdisk from") && l.ends_with(&format!("to {:#x}", layout.bundle))), "{t}");
}

#[test]
#[ignore = "boots QEMU with U-Boot: cargo xtask test"]
fn a_flashed_image_boots_under_debians_uboot_gicv3() {
    boots_under_debians_uboot(xtask::BOARD_MATRIX[0].1);
}

#[test]
#[ignore = "boots QEMU with U-Boot: cargo xtask test"]
fn a_flashed_image_boots_under_debians_uboot_gicv2() {
    boots_under_debians_uboot(xtask::BOARD_MATRIX[1].1);
}

/// The 32-bit path: a FIT of "arm" images, bootm in HYP mode, the
/// hypervisor a zImage-style image at RAM base + 64 KiB.
#[test]
#[ignore = "boots QEMU with U-Boot: cargo xtask test"]
fn a_flashed_image_boots_under_debians_uboot_a15() {
    boots_under_debians_uboot(xtask::A15.1);
}

/// `dumpimage -l` of a FIT: (image name, load address) pairs, in order,
/// and each image's type.
fn fit_images(itb: &Path) -> Vec<(String, String, Option<u64>)> {
    let out = Command::new("dumpimage").arg("-l").arg(itb).output().unwrap();
    assert!(out.status.success(), "dumpimage -l {}", itb.display());
    let text = String::from_utf8_lossy(&out.stdout);
    let mut v: Vec<(String, String, Option<u64>)> = Vec::new();
    for l in text.lines() {
        let t = l.trim();
        if let Some(rest) = t.strip_prefix("Image ").and_then(|r| r.split_once(" (")) {
            v.push((rest.1.trim_end_matches(')').to_string(), String::new(), None));
        } else if let (Some(last), Some(ty)) = (v.last_mut(), t.strip_prefix("Type:")) {
            last.1 = ty.trim().to_string();
        } else if let (Some(last), Some(a)) = (v.last_mut(), t.strip_prefix("Load Address:")) {
            last.2 = u64::from_str_radix(a.trim().trim_start_matches("0x"), 16).ok();
        }
    }
    v
}

/// R-Car H3 and ZCU102 cannot boot under QEMU's U-Boot: their images are
/// read back with u-boot-tools and checked against the BSP and the board's
/// device tree.
#[test]
#[ignore = "builds images with mkimage and Debian's device trees: cargo xtask test"]
fn real_boards_images_carry_their_bsps_load_addresses() {
    for board in ["rcar-h3", "zcu102"] {
        let img = image::build(SAMPLE, board, None).unwrap_or_else(|e| panic!("{board}: {e}"));
        let b = &img.built.sample.board;
        assert_eq!(b.boot.as_ref().unwrap().dtb, BootDtb::Image);
        // What is on the disk's boot partition is what dumpimage reads.
        let itb = img.dir.join("from-disk.itb");
        std::fs::write(&itb, image::read_partition_file(&img.disk, "cockpit.itb").unwrap()).unwrap();
        let parts = fit_images(&itb);
        let names: Vec<&str> = parts.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(names, ["hypervisor", "bundle", "fdt"], "{board}: {parts:?}");
        let (hv, bundle, fdt) = (parts[0].2.unwrap(), parts[1].2.unwrap(), parts[2].2.unwrap());
        assert_eq!(parts[0].1, "Kernel Image");
        assert_eq!(parts[1].1, "RAMDisk Image");
        assert_eq!(parts[2].1, "Flat Device Tree");
        // The hypervisor is loaded where it is linked: the ELF says so,
        // independently of the image code.
        let elf = std::fs::read(xtask::artifacts::root().join(format!("target/bare-hv-{hv:x}/aarch64-unknown-none-softfloat/release/hv-kernel")))
            .unwrap_or_else(|e| panic!("{board}: no hypervisor linked at {hv:#x}: {e}"));
        use object::{Object, ObjectSegment};
        let elf = object::File::parse(&*elf).unwrap();
        assert_eq!(elf.segments().map(|s| s.address()).min(), Some(hv), "{board}");
        assert_eq!(hv, b.ram.base + hv_config::HV_IMAGE_OFFSET, "{board}");
        // Bundle and device tree in RAM, clear of guest RAM, firmware's
        // memory and the hypervisor's span.
        let bundle_len = std::fs::metadata(&img.built.bundle).unwrap().len();
        let dtb = std::fs::read(img.dir.join("board.dtb")).unwrap();
        for (what, at, len) in [("bundle", bundle, bundle_len), ("device tree", fdt, dtb.len() as u64)] {
            let r = hv_config::Region { base: at, size: len };
            assert!(b.ram.contains(&r), "{board}: {what} at {at:#x} outside RAM");
            assert!(!b.guest_ram.overlaps(&r), "{board}: {what} at {at:#x} in guest RAM");
            assert!(b.reserved.iter().all(|f| !f.region.overlaps(&r)), "{board}: {what} at {at:#x} in firmware's memory");
            assert!(at >= hv + hv_config::HV_IMAGE_MAX, "{board}: {what} at {at:#x} inside the hypervisor's span");
        }
        // The carried device tree is the board's, and agrees with board.toml.
        let bad = xtask::board_facts::check(b, &dtb);
        assert!(bad.is_empty(), "{board}: the image's device tree disagrees with board.toml: {bad:?}");
        // The script is a U-Boot script that boots that FIT's configuration
        // from the board's boot device, with U-Boot's copy of the tree
        // kept clear of the bundle.
        let scr = img.dir.join("boot.scr");
        let listed = Command::new("dumpimage").arg("-l").arg(&scr).output().unwrap();
        assert!(String::from_utf8_lossy(&listed.stdout).contains("Script"), "{board}: boot.scr is not a script image");
        let cmd = std::fs::read_to_string(img.dir.join("boot.cmd")).unwrap();
        let fdt_high = cmd.lines().find_map(|l| l.strip_prefix("setenv fdt_high ")).and_then(|v| u64::from_str_radix(v.trim_start_matches("0x"), 16).ok()).unwrap();
        assert!(fdt_high <= bundle && fdt_high >= fdt + dtb.len() as u64, "{board}: fdt_high {fdt_high:#x}");
        let (iface, dev) = b.boot.as_ref().unwrap().device.split_once(' ').unwrap();
        assert!(cmd.contains(&format!("setenv devtype {iface}; setenv devnum {}", dev.split(':').next().unwrap())), "{board}:\n{cmd}");
        assert!(cmd.contains(&format!("bootm {:#x}#cockpit", img.layout.staging)), "{board}:\n{cmd}");
        // The manifest names the board, and each part's checksum holds.
        let m = image::Manifest::parse(&String::from_utf8_lossy(&image::read_partition_file(&img.disk, "manifest.toml").unwrap())).unwrap();
        assert_eq!((m.board.as_str(), m.sample.as_str()), (board, SAMPLE));
        for name in ["cockpit.itb", "boot.scr", "boot-tftp.scr"] {
            let want = &m.parts.iter().find(|p| p.0 == name).unwrap_or_else(|| panic!("{board}: manifest lacks {name}")).1;
            assert_eq!(&sha256_hex(&image::read_partition_file(&img.disk, name).unwrap()), want, "{board}: {name}");
        }
    }
}

#[test]
#[ignore = "builds images with mkimage: cargo xtask test"]
fn two_builds_of_one_revision_are_the_same_bytes() {
    let first = std::fs::read(image::build(SAMPLE, "zcu102", None).unwrap().disk).unwrap();
    // Time moves on between builds: nothing in the image may notice.
    std::thread::sleep(Duration::from_millis(2100));
    let second = std::fs::read(image::build(SAMPLE, "zcu102", None).unwrap().disk).unwrap();
    assert!(first == second, "two builds differ ({} vs {})", sha256_hex(&first), sha256_hex(&second));
}

/// A loop device over a file of `size` bytes, detached when dropped.
struct Loop(String);

impl Loop {
    fn new(file: &Path, size: u64) -> Loop {
        std::fs::File::create(file).unwrap().set_len(size).unwrap();
        Loop::over(file)
    }

    fn over(file: &Path) -> Loop {
        let out = Command::new("losetup").args(["-f", "--show"]).arg(file).output().expect("losetup (util-linux)");
        assert!(out.status.success(), "losetup: {} (loop devices need root)", String::from_utf8_lossy(&out.stderr));
        Loop(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
    }
}

#[test]
#[ignore = "needs root for loop devices and builds an image: cargo xtask test"]
fn flash_refuses_what_it_must_on_real_devices() {
    let dir = scratch("refusals");
    let img = image::build(SAMPLE, "qemu-virt", None).unwrap().disk;
    let img = img.to_str().unwrap();
    let len = std::fs::metadata(img).unwrap().len();

    // An image built for another board.
    let (ok, out) = flash(&["--board", "rcar-h3", "--image", img, "--to", dir.join("x.img").to_str().unwrap()]);
    assert!(!ok && out.contains("built for board qemu-virt, not rcar-h3"), "{out}");
    assert!(!dir.join("x.img").exists(), "nothing may be written");

    // Too small.
    let small = Loop::new(&dir.join("small.raw"), len / 2);
    let (ok, out) = flash(&["--board", "qemu-virt", "--image", img, "--to", &small.0, "--yes", "--force"]);
    assert!(!ok && out.contains("but the image is"), "{out}");

    // Not removable: refused without --force, written with it; the read
    // back goes to the device.
    let disk = Loop::new(&dir.join("disk.raw"), len + (8 << 20));
    let (ok, out) = flash(&["--board", "qemu-virt", "--image", img, "--to", &disk.0, "--yes"]);
    assert!(!ok && out.contains("not a removable disk") && out.contains("--force"), "{out}");
    let (ok, out) = flash(&["--board", "qemu-virt", "--image", img, "--to", &disk.0, "--yes", "--force"]);
    assert!(ok && out.contains("read back and checked"), "{out}");
    let written = std::fs::read(dir.join("disk.raw")).unwrap();
    assert!(written[..len as usize] == std::fs::read(img).unwrap()[..], "the device does not hold the image");

    // Mounted: a card holding a file system in use (ext4: what a
    // card's Linux root file system would be).
    let card = Loop::new(&dir.join("card.raw"), len + (8 << 20));
    let made = Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&card.0).status().expect("mkfs.ext4 (e2fsprogs)");
    assert!(made.success(), "mkfs.ext4 {}", card.0);
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let mounted = Command::new("mount").arg(&card.0).arg(&mnt).status().unwrap().success();
    assert!(mounted, "mounting {} failed", card.0);
    let (ok, out) = flash(&["--board", "qemu-virt", "--image", img, "--to", &card.0, "--yes", "--force"]);
    let _ = Command::new("umount").arg(&mnt).status();
    assert!(!ok && out.contains("is mounted at") && out.contains("unmount"), "{out}");

    // Not confirmed: no terminal and no --yes.
    let (ok, out) = flash(&["--board", "qemu-virt", "--image", img, "--to", &disk.0, "--force"]);
    assert!(!ok && out.contains("--yes"), "{out}");

    // The disk the running system lives on, when / is on a block device.
    if let Some(sys_disk) = system_disk() {
        let (ok, out) = flash(&["--board", "qemu-virt", "--image", img, "--to", &sys_disk, "--yes", "--force"]);
        assert!(!ok && out.contains("running system lives on"), "{sys_disk}: {out}");
    } else {
        eprintln!("note: / is not on a block device here; the system-disk refusal is covered by the flash module's fixtures");
    }
}

/// The /dev node of the whole disk holding `/`, if any.
fn system_disk() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata("/").ok()?.dev();
    let link = std::fs::canonicalize(format!("/sys/dev/block/{}:{}", rustix::fs::major(dev), rustix::fs::minor(dev))).ok()?;
    let disk = if link.join("partition").is_file() { link.parent()? } else { &link };
    let node = PathBuf::from("/dev").join(disk.file_name()?);
    node.exists().then(|| node.to_string_lossy().into_owned())
}

#[test]
#[ignore = "builds an image: cargo xtask test"]
fn flash_fills_a_tftp_directory_and_says_how_to_boot_from_it() {
    let dir = scratch("tftp");
    let (ok, out) = flash(&["--board", "rcar-h3", "--sample", SAMPLE, "--to", dir.to_str().unwrap(), "--yes"]);
    assert!(ok, "{out}");
    for f in ["cockpit.itb", "boot-tftp.scr", "manifest.toml"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    assert!(out.contains("tftpboot") && out.contains("source"), "{out}");
    let script = std::fs::read(dir.join("boot-tftp.scr")).unwrap();
    assert!(String::from_utf8_lossy(&script).contains("tftpboot"), "the TFTP script loads over TFTP");
    // Another board's image is not silently dropped over this one.
    let (ok, out) = flash(&["--board", "qemu-virt", "--sample", SAMPLE, "--to", dir.to_str().unwrap(), "--yes"]);
    assert!(!ok && out.contains("holds an image for board rcar-h3"), "{out}");
}

/// The R-Car development flow on a PC: `cargo xtask flash --to <dir>`
/// fills a TFTP directory, and U-Boot, given the lines flash printed (here
/// the boot script of an otherwise empty disk, as if typed at the prompt),
/// fetches the script and the FIT from QEMU's TFTP server and boots them.
#[test]
#[ignore = "boots QEMU with U-Boot over TFTP: cargo xtask test"]
fn a_tftp_directory_boots_under_debians_uboot() {
    let dir = scratch("tftp-boot");
    let tftp = dir.join("tftp");
    std::fs::create_dir_all(&tftp).unwrap();
    let (ok, out) = flash(&["--board", "qemu-virt", "--sample", SAMPLE, "--to", tftp.to_str().unwrap(), "--yes"]);
    assert!(ok, "{out}");
    let run = out.lines().map(str::trim).find(|l| l.starts_with("tftpboot ") && l.contains("; source ")).unwrap_or_else(|| panic!("flash printed no U-Boot lines:\n{out}"));
    // QEMU's user network: DHCP gives 10.0.2.15, the TFTP server is 10.0.2.2.
    let typed = format!("setenv autoload no\ndhcp\nsetenv serverip 10.0.2.2\n{run}\n");
    let scr = dir.join("boot.scr");
    image::compile_script(&typed, &scr, 0).unwrap();
    let disk = dir.join("netboot.img");
    image::write_boot_disk(&[("boot.scr", std::fs::read(&scr).unwrap())], &disk, 0).unwrap();
    let b = xtask::artifacts::load(SAMPLE, Some("qemu-virt"), None).unwrap().board;
    let mut q = QemuCommand::uboot_disk(&b, &disk).unwrap();
    let mut con = q.tftp_net(&tftp).unwrap().spawn().unwrap();
    for want in ["Filename 'boot-tftp.scr'", "Filename 'cockpit.itb'", "Verifying Hash Integrity ... sha256+ OK", "[heartbeat] beat 3", "[crasher] crasher beat 3"] {
        assert!(con.wait_for(Duration::from_secs(90), |l| l.contains(want)).is_some(), "no `{want}`:\n{}", con.transcript());
    }
}
