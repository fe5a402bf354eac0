//! `cargo xtask image`: what a board's U-Boot boots, as files and as a
//! disk image to write to an SD card.
//!
//! - `cockpit.itb`: a FIT (made by `mkimage` from u-boot-tools) holding the
//!   hypervisor (kernel, at its link address), the boot bundle (ramdisk:
//!   the hypervisor finds it as the initrd) and, for real boards, the
//!   board's device tree, each with its load address from
//!   [`hv_config::boot::layout`] and a SHA-256 U-Boot checks;
//! - `boot.scr`: the compiled script that loads and boots it from the boot
//!   partition (distro boot runs it; by hand `load ...; source ...`), and
//!   `boot-tftp.scr`, the same over TFTP;
//! - `manifest.toml`: board, sample, profile, git revision and each part's
//!   SHA-256;
//! - `cockpit.img`: an MBR disk with one FAT boot partition holding the
//!   four files above (`fatfs`, `mbrman`).
//!
//! Every timestamp is the revision's commit time, and volume and disk IDs
//! come from the contents: two builds of one revision are the same bytes.

use crate::artifacts::{self, Built};
use hv_config::boot::{BootDtb, BootLayout};
use hv_config::DtSource;
use sha2::{Digest, Sha256};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The files on the boot partition, in the order they are written.
pub const PARTITION_FILES: &[&str] = &["cockpit.itb", "boot.scr", "boot-tftp.scr", "manifest.toml"];
/// The partition starts 1 MiB in (the usual alignment; room for SPL).
const PARTITION_START: u64 = 1 << 20;
const SECTOR: u64 = 512;
/// The TFTP script's line that says how to run it (`cargo xtask flash`
/// prints it).
pub const TFTP_RUN: &str = "# Run it with: ";
/// The FIT configuration the scripts boot.
const FIT_CONFIG: &str = "cockpit";

/// What `cargo xtask image` made.
pub struct Image {
    pub dir: PathBuf,
    /// The disk image (`cockpit.img`).
    pub disk: PathBuf,
    pub manifest: Manifest,
    pub layout: BootLayout,
    pub built: Built,
}

/// What an image says about itself (`manifest.toml`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub board: String,
    pub sample: String,
    pub profile: String,
    /// `git describe`-like: the commit, `-dirty` if the tree had changes.
    pub revision: String,
    /// (file name, SHA-256 hex) of each part.
    pub parts: Vec<(String, String)>,
}

impl Manifest {
    fn to_toml(&self) -> String {
        let mut s = String::from("# What this cockpit image holds (cargo xtask image).\n");
        for (k, v) in [("board", &self.board), ("sample", &self.sample), ("profile", &self.profile), ("revision", &self.revision)] {
            s += &format!("{k} = {}\n", toml_str(v));
        }
        s += "\n[sha256]\n";
        for (name, sum) in &self.parts {
            s += &format!("{} = {}\n", toml_str(name), toml_str(sum));
        }
        s
    }

    /// Reads a manifest written by [`Manifest::to_toml`].
    pub fn parse(text: &str) -> Result<Manifest, String> {
        let v: toml::Table = text.parse().map_err(|e| format!("manifest.toml: {e}"))?;
        let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string).ok_or(format!("manifest.toml has no `{k}`"));
        let parts = match v.get("sha256").and_then(|t| t.as_table()) {
            Some(t) => t.iter().map(|(k, x)| (k.clone(), x.as_str().unwrap_or_default().to_string())).collect(),
            None => Vec::new(),
        };
        Ok(Manifest { board: field("board")?, sample: field("sample")?, profile: field("profile")?, revision: field("revision")?, parts })
    }
}

/// A name as it may appear in the FIT source and the boot script: a
/// sample's directory name could hold quotes or a newline (a command).
fn label(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect()
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The revision and its commit time (the image's one timestamp).
fn revision() -> Result<(String, u64), String> {
    let git = |args: &[&str]| -> Result<String, String> {
        let out = Command::new("git").args(args).current_dir(artifacts::root()).output().map_err(|e| format!("git: {e}"))?;
        if !out.status.success() {
            return Err(format!("git {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let rev = git(&["rev-parse", "--short=12", "HEAD"])?;
    let time: u64 = git(&["log", "-1", "--format=%ct", "HEAD"])?.parse().map_err(|_| "git log: no commit time")?;
    // Untracked files count: a sample or initramfs not yet committed
    // changes the image as much as an edited one.
    let dirty = !git(&["status", "--porcelain"])?.is_empty();
    Ok((if dirty { format!("{rev}-dirty") } else { rev }, time))
}

/// The board's own device tree, for boards whose image carries it.
fn board_dtb(board: &hv_config::Board) -> Result<Vec<u8>, String> {
    let path = board
        .devicetrees
        .iter()
        .find_map(|s| match s {
            DtSource::DebianDtb(rel) => Some(crate::debian::kernel_dtb(
                crate::debian::DebArch::of_board(&board.arch),
                rel,
            )),
            DtSource::LinuxDts(rel) => Some(crate::debian::linux_dts(rel)),
            DtSource::Qemu => None,
        })
        .ok_or(format!("board {} carries its device tree but names none", board.name))??;
    std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))
}

fn mkimage(args: &[&str], epoch: u64, dir: &Path) -> Result<(), String> {
    crate::toolchain::ensure_debian_packages(&["u-boot-tools", "device-tree-compiler"], "mkimage, for U-Boot's image and script formats")?;
    let out = Command::new("mkimage")
        .args(args)
        .current_dir(dir)
        // mkimage stamps images with this instead of the time of day.
        .env("SOURCE_DATE_EPOCH", epoch.to_string())
        .output()
        .map_err(|e| format!("mkimage: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("mkimage {}: {}{}", args.join(" "), String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    }
}

/// The FIT source: paths relative to `dir`, where mkimage runs.
fn its(b: &Built, layout: &BootLayout, with_dtb: bool) -> String {
    let hash = "hash { algo = \"sha256\"; };";
    // U-Boot's name for the images' architecture: a 32-bit board's U-Boot
    // boots only "arm" kernels (in HYP mode, as it does a zImage).
    let arch = if b.sample.board.arch == "armv7a" { "arm" } else { "arm64" };
    let mut s = format!(
        "/dts-v1/;\n/ {{\n\tdescription = \"cockpit: {sample} on {board} ({profile})\";\n\t#address-cells = <1>;\n\timages {{\n",
        sample = label(&b.sample.name),
        board = label(&b.sample.board.name),
        profile = label(&b.sample.profile.name)
    );
    s += &format!(
        "\t\thypervisor {{\n\t\t\tdescription = \"cockpit hypervisor\";\n\t\t\tdata = /incbin/(\"hypervisor.bin\");\n\t\t\ttype = \"kernel\";\n\t\t\tarch = \"{arch}\";\n\t\t\tos = \"linux\";\n\t\t\tcompression = \"none\";\n\t\t\tload = <{:#x}>;\n\t\t\tentry = <{:#x}>;\n\t\t\t{hash}\n\t\t}};\n",
        layout.hypervisor, layout.hypervisor
    );
    s += &format!(
        "\t\tbundle {{\n\t\t\tdescription = \"boot bundle: domains and their images\";\n\t\t\tdata = /incbin/(\"bundle.bin\");\n\t\t\ttype = \"ramdisk\";\n\t\t\tarch = \"{arch}\";\n\t\t\tos = \"linux\";\n\t\t\tcompression = \"none\";\n\t\t\tload = <{:#x}>;\n\t\t\t{hash}\n\t\t}};\n",
        layout.bundle
    );
    if with_dtb {
        s += &format!(
            "\t\tfdt {{\n\t\t\tdescription = \"{board}'s device tree\";\n\t\t\tdata = /incbin/(\"board.dtb\");\n\t\t\ttype = \"flat_dt\";\n\t\t\tarch = \"{arch}\";\n\t\t\tcompression = \"none\";\n\t\t\tload = <{:#x}>;\n\t\t\t{hash}\n\t\t}};\n",
            layout.dtb,
            board = label(&b.sample.board.name)
        );
    }
    s += &format!(
        "\t}};\n\tconfigurations {{\n\t\tdefault = \"{FIT_CONFIG}\";\n\t\t{FIT_CONFIG} {{\n\t\t\tdescription = \"{}\";\n\t\t\tkernel = \"hypervisor\";\n\t\t\tramdisk = \"bundle\";\n{}\t\t}};\n\t}};\n}};\n",
        label(&b.sample.name),
        if with_dtb { "\t\t\tfdt = \"fdt\";\n" } else { "" }
    );
    s
}

/// The boot script's text; `load` is the command that fetches the FIT.
fn script(b: &Built, layout: &BootLayout, rev: &str, load: &str, dtb: BootDtb) -> String {
    let boot = match dtb {
        BootDtb::Image => format!("bootm {:#x}#{FIT_CONFIG}", layout.staging),
        // U-Boot's own tree (QEMU's): named as bootm's third argument.
        BootDtb::UBoot => format!("bootm {0:#x}:hypervisor {0:#x}:bundle ${{fdtcontroladdr}}", layout.staging),
    };
    format!(
        "# cockpit: {sample} on {board} ({profile}), revision {rev}. Written by cargo xtask image.\n\
         # The bundle stays where the image puts it (the hypervisor finds it as the initrd);\n\
         # U-Boot's copy of the device tree stays below {dtb_end:#x}, out of everything else's way.\n\
         setenv initrd_high {no_relocation}\n\
         setenv fdt_high {dtb_end:#x}\n\
         {load}\n\
         {boot}\n\
         echo cockpit: bootm failed\n",
        sample = label(&b.sample.name),
        board = label(&b.sample.board.name),
        profile = label(&b.sample.profile.name),
        dtb_end = layout.dtb_end,
        // "Never relocate" in the width of the board's U-Boot.
        no_relocation = if b.sample.board.arch == "armv7a" { "0xffffffff" } else { "0xffffffffffffffff" },
    )
}

/// Builds the image of `sample` for `board`.
pub fn build(sample: &str, board: &str, profile: Option<&str>) -> Result<Image, String> {
    let built = artifacts::build(sample, Some(board), profile)?;
    let b = &built.sample.board;
    let boot = b.boot.clone().ok_or(format!("board {} has no [boot] table in {}: it does not say how its U-Boot boots an image", b.name, b.path.display()))?;
    let dir = built.dir.join("image");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let (rev, epoch) = revision()?;

    let hv = std::fs::read(&built.hypervisor).map_err(|e| e.to_string())?;
    let bundle = std::fs::read(&built.bundle).map_err(|e| e.to_string())?;
    let dtb = match boot.dtb {
        BootDtb::Image => Some(board_dtb(b)?),
        BootDtb::UBoot => None,
    };
    // The FIT is its parts plus a few KiB of headers and hashes.
    let staged = (hv.len() + bundle.len() + dtb.as_ref().map_or(0, Vec::len)) as u64 + (64 << 10);
    let layout = hv_config::boot::layout(b, bundle.len() as u64, staged).map_err(|e| format!("{} on {}: {e}", built.sample.name, b.name))?;
    if let Some(d) = &dtb {
        if d.len() as u64 > layout.dtb_end - layout.dtb - (64 << 10) {
            return Err(format!("{}'s device tree ({} KiB) does not fit its room", b.name, d.len() >> 10));
        }
    }

    std::fs::write(dir.join("hypervisor.bin"), &hv).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("bundle.bin"), &bundle).map_err(|e| e.to_string())?;
    if let Some(d) = &dtb {
        std::fs::write(dir.join("board.dtb"), d).map_err(|e| e.to_string())?;
    }
    // The FIT source writes addresses in one cell.
    for (what, at, len) in [("the hypervisor", layout.hypervisor, hv_config::HV_IMAGE_MAX), ("the device tree", layout.dtb, layout.dtb_end - layout.dtb), ("the bundle", layout.bundle, bundle.len() as u64)] {
        if at.saturating_add(len) > 1 << 32 {
            return Err(format!("{what} would go at {at:#x}, above 4 GiB: images for RAM above 4 GiB are not supported yet"));
        }
    }
    std::fs::write(dir.join("cockpit.its"), its(&built, &layout, dtb.is_some())).map_err(|e| e.to_string())?;
    mkimage(&["-f", "cockpit.its", "cockpit.itb"], epoch, &dir)?;
    // The staged size above was an estimate: the real file must fit too.
    let itb_len = std::fs::metadata(dir.join("cockpit.itb")).map_err(|e| e.to_string())?.len();
    if itb_len > staged {
        hv_config::boot::layout(b, bundle.len() as u64, itb_len).map_err(|e| format!("{} on {}: {e}", built.sample.name, b.name))?;
    }

    let (iface, devpart) = boot.device.split_once(' ').unwrap_or((&boot.device, "0:1"));
    let from_disk = format!(
        "# Distro boot names the partition it found this script on; run by hand, the board's boot partition.\n\
         if test -z \"${{devtype}}\"; then setenv devtype {iface}; setenv devnum {}; setenv distro_bootpart {}; fi\n\
         echo cockpit: loading cockpit.itb from ${{devtype}} ${{devnum}}:${{distro_bootpart}}\n\
         load ${{devtype}} ${{devnum}}:${{distro_bootpart}} {:#x} cockpit.itb",
        devpart.split(':').next().unwrap_or("0"),
        devpart.split(':').nth(1).unwrap_or("1"),
        layout.staging
    );
    let from_tftp = format!(
        "# serverip (and ipaddr, or dhcp) set beforehand: cockpit.itb is in the TFTP directory.\n{TFTP_RUN}tftpboot {at:#x} boot-tftp.scr; source {at:#x}\ntftpboot {:#x} cockpit.itb",
        layout.staging,
        at = layout.script
    );
    for (name, load) in [("boot.scr", from_disk), ("boot-tftp.scr", from_tftp)] {
        compile_script(&script(&built, &layout, &rev, &load, boot.dtb), &dir.join(name), epoch)?;
    }

    let mut parts = Vec::new();
    for name in ["cockpit.itb", "boot.scr", "boot-tftp.scr", "hypervisor.bin", "bundle.bin", "board.dtb"] {
        if let Ok(bytes) = std::fs::read(dir.join(name)) {
            parts.push((name.to_string(), sha256_hex(&bytes)));
        }
    }
    let manifest = Manifest { board: b.name.clone(), sample: built.sample.name.clone(), profile: built.sample.profile.name.clone(), revision: rev, parts };
    std::fs::write(dir.join("manifest.toml"), manifest.to_toml()).map_err(|e| e.to_string())?;

    let disk = dir.join("cockpit.img");
    write_disk(&dir, &disk, epoch)?;
    let sum = sha256_hex(&std::fs::read(&disk).map_err(|e| e.to_string())?);
    std::fs::write(dir.join("cockpit.img.sha256"), format!("{sum}  cockpit.img\n")).map_err(|e| e.to_string())?;
    Ok(Image { dir, disk, manifest, layout, built })
}

/// FAT's time stamps, all at the revision's commit time.
#[derive(Debug)]
struct FixedTime(fatfs::DateTime);

impl fatfs::TimeProvider for FixedTime {
    fn get_current_date(&self) -> fatfs::Date {
        self.0.date
    }
    fn get_current_date_time(&self) -> fatfs::DateTime {
        self.0
    }
}

/// A Unix time as FAT's date and time (UTC; FAT starts in 1980).
fn fat_time(epoch: u64) -> fatfs::DateTime {
    let (days, secs) = ((epoch / 86_400) as i64, epoch % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = (yoe + era * 400 + i64::from(month <= 2)).clamp(1980, 2107);
    fatfs::DateTime {
        date: fatfs::Date { year: year as u16, month: month as u16, day: day as u16 },
        time: fatfs::Time { hour: (secs / 3600) as u16, min: (secs / 60 % 60) as u16, sec: (secs % 60) as u16, millis: 0 },
    }
}

/// The partition's size for `payload` bytes of files: room to spare for
/// a vendor's BOOT.BIN or a newer image, at least 64 MiB, whole MiB.
fn partition_size(payload: u64) -> u64 {
    (payload + payload / 4 + (32 << 20)).max(64 << 20).div_ceil(1 << 20) << 20
}

/// Writes the MBR disk with one FAT partition holding [`PARTITION_FILES`].
fn write_disk(dir: &Path, disk: &Path, epoch: u64) -> Result<(), String> {
    let files: Vec<(&str, Vec<u8>)> =
        PARTITION_FILES.iter().map(|n| std::fs::read(dir.join(n)).map(|b| (*n, b)).map_err(|e| format!("{n}: {e}"))).collect::<Result<_, _>>()?;
    write_boot_disk(&files, disk, epoch)
}

/// Compiles the U-Boot script `text` into `out` (a legacy script image).
pub fn compile_script(text: &str, out: &Path, epoch: u64) -> Result<(), String> {
    let dir = out.parent().ok_or("no directory")?;
    let name = out.file_name().and_then(|n| n.to_str()).ok_or("not a file name")?;
    let cmd = Path::new(name).with_extension("cmd").to_string_lossy().into_owned();
    std::fs::write(dir.join(&cmd), text).map_err(|e| e.to_string())?;
    mkimage(&["-A", "arm64", "-O", "linux", "-T", "script", "-C", "none", "-n", "cockpit boot script", "-d", &cmd, name], epoch, dir)
}

/// Writes an MBR disk with one FAT32 partition holding `files`.
pub fn write_boot_disk(files: &[(&str, Vec<u8>)], disk: &Path, epoch: u64) -> Result<(), String> {
    let payload: u64 = files.iter().map(|(_, b)| b.len() as u64).sum();
    let part_size = partition_size(payload);
    // IDs from the contents: the same files, the same disk.
    let mut id = Sha256::new();
    for (n, b) in files {
        id.update(n.as_bytes());
        id.update(b);
    }
    let id = id.finalize();

    let mut f = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(disk).map_err(|e| format!("{}: {e}", disk.display()))?;
    f.set_len(PARTITION_START + part_size).map_err(|e| e.to_string())?;
    let mut mbr = mbrman::MBR::new_from(&mut f, SECTOR as u32, [id[0], id[1], id[2], id[3]]).map_err(|e| format!("MBR: {e}"))?;
    mbr[1] = mbrman::MBRPartitionEntry {
        boot: mbrman::BOOT_ACTIVE,
        first_chs: mbrman::CHS::empty(),
        // FAT32 with LBA addressing: what boot ROMs and U-Boot look for.
        sys: 0x0c,
        last_chs: mbrman::CHS::empty(),
        starting_lba: (PARTITION_START / SECTOR) as u32,
        sectors: (part_size / SECTOR) as u32,
    };
    mbr.write_into(&mut f).map_err(|e| format!("MBR: {e}"))?;

    let mut part = Partition { file: &mut f, start: PARTITION_START, len: part_size, pos: 0 };
    let opts = fatfs::FormatVolumeOptions::new()
        .fat_type(fatfs::FatType::Fat32)
        .volume_id(u32::from_le_bytes([id[4], id[5], id[6], id[7]]))
        .volume_label(*b"COCKPIT    ");
    fatfs::format_volume(&mut part, opts).map_err(|e| format!("formatting the boot partition: {e}"))?;
    part.pos = 0;
    let time: &'static FixedTime = Box::leak(Box::new(FixedTime(fat_time(epoch))));
    let fs = fatfs::FileSystem::new(part, fatfs::FsOptions::new().time_provider(time)).map_err(|e| format!("boot partition: {e}"))?;
    for (name, bytes) in files {
        let mut out = fs.root_dir().create_file(name).map_err(|e| format!("{name}: {e}"))?;
        out.truncate().map_err(|e| e.to_string())?;
        out.write_all(bytes).map_err(|e| format!("writing {name} to the boot partition: {e}"))?;
    }
    fs.unmount().map_err(|e| format!("boot partition: {e}"))?;
    f.sync_all().map_err(|e| e.to_string())
}

/// Reads `name` from the boot partition of the disk image `disk`.
pub fn read_partition_file(disk: &Path, name: &str) -> Result<Vec<u8>, String> {
    let mut f = std::fs::File::open(disk).map_err(|e| format!("{}: {e}", disk.display()))?;
    let mbr = mbrman::MBR::read_from(&mut f, SECTOR as u32).map_err(|e| format!("{}: no MBR: {e}", disk.display()))?;
    let p = mbr.get(1).filter(|p| p.is_used()).ok_or(format!("{}: no first partition", disk.display()))?;
    let (start, len) = (p.starting_lba as u64 * SECTOR, p.sectors as u64 * SECTOR);
    let fs = fatfs::FileSystem::new(Partition { file: &mut f, start, len, pos: 0 }, fatfs::FsOptions::new())
        .map_err(|e| format!("{}: the boot partition is not FAT: {e}", disk.display()))?;
    let mut out = Vec::new();
    fs.root_dir().open_file(name).and_then(|mut file| file.read_to_end(&mut out)).map_err(|e| format!("{}: {name}: {e}", disk.display()))?;
    Ok(out)
}

/// A window of a file: the partition fatfs formats and reads.
struct Partition<'a, F> {
    file: &'a mut F,
    start: u64,
    len: u64,
    pos: u64,
}

impl<F: Read + Write + Seek> Partition<'_, F> {
    fn room(&mut self, want: usize) -> std::io::Result<usize> {
        self.file.seek(SeekFrom::Start(self.start + self.pos))?;
        Ok(want.min(self.len.saturating_sub(self.pos) as usize))
    }
}

impl<F: Read + Write + Seek> Read for Partition<'_, F> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.room(buf.len())?;
        let n = self.file.read(&mut buf[..n])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<F: Read + Write + Seek> Write for Partition<'_, F> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.room(buf.len())?;
        if n == 0 && !buf.is_empty() {
            return Err(std::io::Error::new(std::io::ErrorKind::WriteZero, "past the partition's end"));
        }
        let n = self.file.write(&buf[..n])?;
        self.pos += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl<F: Read + Write + Seek> Seek for Partition<'_, F> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match pos {
            Some(p) if p <= self.len => {
                self.pos = p;
                Ok(p)
            }
            _ => Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek outside the partition")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_break_out_of_the_script_or_the_fit_source() {
        assert_eq!(label("two-partitions"), "two-partitions");
        assert_eq!(label("x\"; };\nreset\n#"), "x______reset__");
    }

    #[test]
    fn fat_dates_follow_the_calendar() {
        // 2026-12-04 03:53:42 UTC
        let t = fat_time(1_796_356_422);
        assert_eq!((t.date.year, t.date.month, t.date.day), (2026, 12, 4));
        assert_eq!((t.time.hour, t.time.min, t.time.sec), (3, 53, 42));
        // 2000-02-29 (a leap day)
        let t = fat_time(951_782_400);
        assert_eq!((t.date.year, t.date.month, t.date.day), (2000, 2, 29));
    }

    #[test]
    fn a_manifest_reads_back_as_written() {
        let m = Manifest {
            board: "rcar-h3".into(),
            sample: "two-partitions".into(),
            profile: "null-native".into(),
            revision: "0123456789ab-dirty".into(),
            parts: vec![("cockpit.itb".into(), "ab".repeat(32))],
        };
        assert_eq!(Manifest::parse(&m.to_toml()).unwrap(), m);
        assert!(Manifest::parse("board = 1").unwrap_err().contains("board"));
    }

    #[test]
    fn a_disk_holds_the_files_on_a_fat_partition() {
        let dir = std::env::temp_dir().join(format!("cockpit-image-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (i, n) in PARTITION_FILES.iter().enumerate() {
            std::fs::write(dir.join(n), vec![i as u8 + 1; 5000 * (i + 1)]).unwrap();
        }
        let disk = dir.join("disk.img");
        write_disk(&dir, &disk, 1_796_356_422).unwrap();
        let first = std::fs::read(&disk).unwrap();
        assert_eq!(first.len() as u64, PARTITION_START + (64 << 20));
        for (i, n) in PARTITION_FILES.iter().enumerate() {
            assert_eq!(read_partition_file(&disk, n).unwrap(), vec![i as u8 + 1; 5000 * (i + 1)], "{n}");
        }
        // The same files, the same bytes.
        write_disk(&dir, &disk, 1_796_356_422).unwrap();
        assert!(std::fs::read(&disk).unwrap() == first);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
