//! `cargo xtask flash`: writes a cockpit image (`crate::image`) to an SD
//! card or other block device, to an image file, or into a TFTP directory.
//!
//! Writing a whole disk destroys what is on it, so before a byte is
//! written a device must pass [`System::refusals`]: not a partition, big
//! enough, not the disk the running system lives on, nothing on it mounted
//! or used as swap, removable unless `--force`. The image must have been
//! built for the board named. The plan is shown and confirmed (`--yes`
//! skips the question). The write shows progress and throughput, is
//! synced, and is read back from the device (the page cache dropped first)
//! and compared by SHA-256.
//!
//! What is known about devices comes from sysfs and procfs under a
//! [`System`]'s roots: `/sys` and `/proc` on a machine, fixture trees in
//! tests.

use crate::image::{self, Manifest};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where an image goes.
#[derive(Debug)]
pub enum Target {
    /// A whole-disk block device.
    Device(Device),
    /// An image file, created or replaced (no root needed).
    File(PathBuf),
    /// A TFTP server's directory: the FIT, the TFTP boot script and the
    /// manifest are copied in.
    Tftp(PathBuf),
}

/// A block device as sysfs describes it.
#[derive(Debug, Clone)]
pub struct Device {
    pub path: PathBuf,
    /// Its kernel name (`sdb`, `mmcblk0`, `loop3`).
    pub name: String,
    pub size: u64,
    pub removable: bool,
    /// Vendor and model, where sysfs has them.
    pub model: String,
    /// (major, minor): the device the checks were made on, which the
    /// opened file must still be.
    pub number: (u32, u32),
    /// The kernel's sequence number of the medium (`diskseq`, Linux 5.15+):
    /// a disk plugged in later gets a new one even if it reuses the name.
    pub diskseq: Option<String>,
    /// Its sysfs directory, where `diskseq` is read again after opening.
    pub sysfs: PathBuf,
}

/// Where sysfs and procfs are: the machine's, or a test's fixture trees.
pub struct System {
    pub sys: PathBuf,
    pub proc: PathBuf,
    /// `major:minor` of the file system `/` is on (from stat, so a chroot
    /// that hides the mount still knows its disk).
    pub root_dev: Option<String>,
}

/// Mount points whose disk is the running system's.
const SYSTEM_MOUNTS: &[&str] = &["/", "/boot", "/boot/efi", "/usr", "/var", "/home"];

fn read_trim(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok().map(|s| s.trim().to_string())
}

impl System {
    pub fn host() -> System {
        use std::os::unix::fs::MetadataExt;
        let root_dev = std::fs::metadata("/").ok().map(|m| format!("{}:{}", rustix::fs::major(m.dev()), rustix::fs::minor(m.dev())));
        System { sys: "/sys".into(), proc: "/proc".into(), root_dev }
    }

    fn block(&self, name: &str) -> PathBuf {
        self.sys.join("class/block").join(name)
    }

    /// The device `path` names (a /dev node, or a link to one such as
    /// /dev/disk/by-id/...), as sysfs describes it.
    pub fn device(&self, path: &Path) -> Result<Device, String> {
        let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let name = real.file_name().and_then(|n| n.to_str()).ok_or(format!("{}: not a device name", path.display()))?.to_string();
        let dir = self.block(&name);
        if !dir.join("dev").is_file() {
            return Err(format!("{}: sysfs knows no block device {name}", path.display()));
        }
        let sectors: u64 = read_trim(&dir.join("size")).and_then(|s| s.parse().ok()).ok_or(format!("{name}: no size in sysfs"))?;
        let model = [read_trim(&dir.join("device/vendor")), read_trim(&dir.join("device/model")), read_trim(&dir.join("device/name"))]
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        // An SD card in a built-in slot (mmcblk, type SD) is removable media
        // even though sysfs says the slot is not removable; eMMC is not.
        let sd_card = read_trim(&dir.join("device/type")).as_deref() == Some("SD");
        let removable = read_trim(&dir.join("removable")).as_deref() == Some("1") || sd_card;
        let number = read_trim(&dir.join("dev"))
            .and_then(|d| d.split_once(':').and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?))))
            .ok_or(format!("{name}: no device number in sysfs"))?;
        let diskseq = read_trim(&dir.join("diskseq"));
        Ok(Device { path: real, name, size: sectors.saturating_mul(512), removable, model, number, diskseq, sysfs: dir })
    }

    /// The disk's partitions and whatever is stacked on it (device mapper,
    /// RAID): kernel names, the disk first.
    fn family(&self, disk: &str) -> Vec<String> {
        let mut out = vec![disk.to_string()];
        if let Ok(rd) = std::fs::read_dir(self.block(disk)) {
            let mut parts: Vec<String> = rd.flatten().filter(|e| e.path().join("partition").is_file()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
            parts.sort();
            out.extend(parts);
        }
        let mut i = 0;
        while i < out.len() && out.len() < 256 {
            if let Ok(rd) = std::fs::read_dir(self.block(&out[i]).join("holders")) {
                for e in rd.flatten() {
                    let n = e.file_name().to_string_lossy().into_owned();
                    if !out.contains(&n) {
                        out.push(n);
                    }
                }
            }
            i += 1;
        }
        out
    }

    /// `major:minor` of a kernel block device.
    fn dev_number(&self, name: &str) -> Option<String> {
        read_trim(&self.block(name).join("dev"))
    }

    /// (device, mount point) of each mount: the device as major:minor, and
    /// again as the kernel name of its source (btrfs and ZFS report an
    /// anonymous number; their source names the disk).
    fn mounts(&self) -> Vec<(String, String)> {
        let text = std::fs::read_to_string(self.proc.join("self/mountinfo")).unwrap_or_default();
        let mut out = Vec::new();
        for l in text.lines() {
            let f: Vec<&str> = l.split(' ').collect();
            let (Some(num), Some(at)) = (f.get(2), f.get(4)) else { continue };
            let at = unescape_mount(at);
            out.push((num.to_string(), at.clone()));
            let source = f.iter().position(|x| *x == "-").and_then(|i| f.get(i + 2)).map(|s| unescape_mount(s));
            if let Some(src) = source.filter(|s| s.starts_with("/dev/")) {
                let real = std::fs::canonicalize(&src).unwrap_or_else(|_| PathBuf::from(&src));
                if let Some(name) = real.file_name().and_then(|n| n.to_str()) {
                    out.push((format!("name:{name}"), at));
                }
            }
        }
        out
    }

    /// Kernel names of active swap devices.
    fn swaps(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.proc.join("swaps")).unwrap_or_default();
        text.lines().skip(1).filter_map(|l| l.split_whitespace().next()).filter_map(|p| p.strip_prefix("/dev/")).map(str::to_string).collect()
    }

    /// Why `dev` must not be written with an image of `image_len` bytes;
    /// empty if it may. `force` allows a non-removable disk, nothing else.
    pub fn refusals(&self, dev: &Device, image_len: u64, force: bool) -> Vec<String> {
        let mut no = Vec::new();
        let dir = self.block(&dev.name);
        if dir.join("partition").is_file() {
            let parent = std::fs::canonicalize(&dir).ok().and_then(|p| p.parent().and_then(|d| d.file_name()).map(|n| n.to_string_lossy().into_owned()));
            no.push(format!(
                "{} is a partition{}: the image holds its own partition table, so name the whole disk",
                dev.path.display(),
                parent.map(|p| format!(" of /dev/{p}")).unwrap_or_default()
            ));
            return no;
        }
        if dev.size < image_len {
            no.push(format!("{} holds {} but the image is {}", dev.path.display(), human(dev.size), human(image_len)));
        }
        let family = self.family(&dev.name);
        let mut numbers: Vec<(String, String)> = family.iter().filter_map(|n| Some((self.dev_number(n)?, n.clone()))).collect();
        numbers.extend(family.iter().map(|n| (format!("name:{n}"), n.clone())));
        let mut mounts = self.mounts();
        if let Some(d) = &self.root_dev {
            mounts.push((d.clone(), "/".into()));
        }
        let on_disk = |num: &str| numbers.iter().find(|(d, _)| d == num).map(|(_, n)| n.clone());
        if let Some((m, n)) = mounts.iter().find_map(|(num, m)| SYSTEM_MOUNTS.contains(&m.as_str()).then(|| on_disk(num).map(|n| (m, n))).flatten()) {
            no.push(format!("{} is the disk the running system lives on ({n} is mounted at {m})", dev.path.display()));
        } else {
            for (num, m) in &mounts {
                if let Some(n) = on_disk(num) {
                    let msg = format!("{n} on {} is mounted at {m}: unmount it first", dev.path.display());
                    if !no.contains(&msg) {
                        no.push(msg);
                    }
                }
            }
        }
        for s in self.swaps() {
            if family.contains(&s) {
                no.push(format!("{s} on {} is in use as swap", dev.path.display()));
            }
        }
        if !dev.removable && !force {
            no.push(format!(
                "{} is not a removable disk (sysfs says so); if it is the card or board you mean (eMMC over UMS, a loop device), pass --force",
                dev.path.display()
            ));
        }
        no
    }
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b => format!("{b} bytes"),
    }
}

/// Classifies `--to`: an existing directory is a TFTP directory, a block
/// device a disk, anything else a file to create or replace.
pub fn target(sys: &System, to: &Path) -> Result<Target, String> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::metadata(to) {
        Ok(m) if m.is_dir() => Ok(Target::Tftp(to.to_path_buf())),
        Ok(m) if m.file_type().is_block_device() => Ok(Target::Device(sys.device(to)?)),
        Ok(m) if m.is_file() => Ok(Target::File(to.to_path_buf())),
        Ok(_) => Err(format!("{}: neither a block device, a file nor a directory", to.display())),
        Err(_) if to.starts_with("/dev") => Err(format!("{}: no such device (is the card in the reader?)", to.display())),
        Err(_) => Ok(Target::File(to.to_path_buf())),
    }
}

/// What a write took.
#[derive(Debug, Clone, Copy)]
pub struct WriteStats {
    pub bytes: u64,
    /// Writing and syncing.
    pub write: Duration,
    /// Reading back and checking.
    pub verify: Duration,
}

fn open_error(path: &Path, e: std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => format!(
            "{}: permission denied. Writing a disk needs root (sudo -E cargo xtask flash ...) or membership of its group (usually `disk`); an image file (--to cockpit.img) needs neither",
            path.display()
        ),
        std::io::ErrorKind::ResourceBusy => format!("{}: the device is busy (mounted or held by another program)", path.display()),
        _ => format!("{}: {e}", path.display()),
    }
}

/// Copies `image` onto `dst` (the block device numbered `device`, or a
/// file), syncs it, drops the cached pages and reads `dst` back, comparing
/// SHA-256s.
pub fn write_verified(image: &Path, dst: &Path, device: Option<&Device>, progress: bool) -> Result<WriteStats, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut src = std::fs::File::open(image).map_err(|e| format!("{}: {e}", image.display()))?;
    let len = src.metadata().map_err(|e| e.to_string())?.len();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).read(true);
    if device.is_some() {
        // The kernel refuses an exclusive open of a mounted device: a last
        // guard against a mount that came after the checks.
        opts.custom_flags(rustix::fs::OFlags::EXCL.bits() as i32);
    } else {
        opts.create(true).truncate(true);
    }
    let mut out = opts.open(dst).map_err(|e| open_error(dst, e))?;
    if let Some(dev) = device {
        // The node opened is the device that was checked, not one a rename
        // or another disk plugged in since (under the same name and number,
        // but with a new diskseq) put in its place.
        use std::os::unix::fs::MetadataExt;
        let rdev = out.metadata().map_err(|e| e.to_string())?.rdev();
        let (major, minor) = dev.number;
        let seq_now = read_trim(&dev.sysfs.join("diskseq"));
        if (rustix::fs::major(rdev), rustix::fs::minor(rdev)) != (major, minor) || seq_now != dev.diskseq {
            return Err(format!("{} is no longer the disk that was checked (it was unplugged or replaced): nothing written", dst.display()));
        }
    }
    let bar = if progress {
        let b = indicatif::ProgressBar::new(len);
        b.set_style(
            indicatif::ProgressStyle::with_template("{spinner} writing [{bar:40}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}")
                .map_err(|e| e.to_string())?
                .progress_chars("=> "),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let start = Instant::now();
    // The image's SHA-256 on the other core, while this one writes.
    let hasher = {
        let image = image.to_path_buf();
        std::thread::spawn(move || -> Result<Vec<u8>, String> {
            let mut f = std::fs::File::open(&image).map_err(|e| format!("{}: {e}", image.display()))?;
            let mut sum = Sha256::new();
            let mut buf = vec![0u8; 1 << 20];
            loop {
                match f.read(&mut buf).map_err(|e| format!("{}: {e}", image.display()))? {
                    0 => return Ok(sum.finalize().to_vec()),
                    n => sum.update(&buf[..n]),
                }
            }
        })
    };
    let mut buf = vec![0u8; 4 << 20];
    loop {
        let n = src.read(&mut buf).map_err(|e| format!("{}: {e}", image.display()))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).map_err(|e| format!("writing {}: {e}", dst.display()))?;
        bar.inc(n as u64);
    }
    bar.set_message("syncing");
    out.sync_all().map_err(|e| format!("syncing {}: {e}", dst.display()))?;
    bar.finish_and_clear();
    let write = start.elapsed();
    let want = hasher.join().map_err(|_| "hashing the image failed")??;

    let start = Instant::now();
    // The pages just written are clean now: dropping them makes the read
    // below come from the medium, not from memory.
    rustix::fs::fadvise(&out, 0, std::num::NonZeroU64::new(len), rustix::fs::Advice::DontNeed)
        .map_err(|e| format!("{}: cannot drop its cached pages ({e}), so a read-back would not read the medium", dst.display()))?;
    let mut back = std::fs::File::open(dst).map_err(|e| open_error(dst, e))?.take(len);
    let mut sum = Sha256::new();
    let mut got = 0u64;
    loop {
        let n = back.read(&mut buf).map_err(|e| format!("reading {} back: {e}", dst.display()))?;
        if n == 0 {
            break;
        }
        got += n as u64;
        sum.update(&buf[..n]);
    }
    if got != len || sum.finalize()[..] != want[..] {
        return Err(format!("{}: what reads back is not what was written ({} of {} bytes read; the medium may be failing)", dst.display(), got, len));
    }
    Ok(WriteStats { bytes: len, write, verify: start.elapsed() })
}

/// `cargo xtask flash`'s options.
#[derive(clap::Args)]
pub struct Args {
    /// The board the image is for (an image built for another is refused).
    #[arg(long)]
    pub board: String,
    /// Sample name under samples/, or a path to a system.toml.
    #[arg(long, default_value = crate::DEFAULT_SAMPLE)]
    pub sample: String,
    #[arg(long)]
    pub profile: Option<String>,
    /// A block device (/dev/sdX, /dev/mmcblkN), an image file, or a TFTP
    /// server's directory.
    #[arg(long, value_name = "DEVICE|FILE|DIR")]
    pub to: PathBuf,
    /// Write this disk image (from `cargo xtask image`) instead of building one.
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// Do not ask before writing.
    #[arg(long)]
    pub yes: bool,
    /// Allow a disk sysfs does not call removable.
    #[arg(long)]
    pub force: bool,
}

fn confirm(plan: &str, yes: bool) -> Result<(), String> {
    use std::io::IsTerminal;
    eprintln!("{plan}");
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err("not confirmed: no terminal to ask on (pass --yes to write without asking)".into());
    }
    eprint!("Write it? [y/N] ");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).map_err(|e| e.to_string())?;
    if matches!(line.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err("not confirmed: nothing written".into())
    }
}

/// Runs `cargo xtask flash`.
pub fn run(a: &Args, sys: &System) -> Result<(), String> {
    // A device that is refused whatever the image is refused before
    // anything is built (which, under sudo, would run as root).
    if let Target::Device(dev) = target(sys, &a.to)? {
        let no = sys.refusals(&dev, 0, a.force);
        if !no.is_empty() {
            return Err(format!("refusing to write {}:\n  {}", dev.path.display(), no.join("\n  ")));
        }
    }
    let disk = match &a.image {
        Some(p) => p.clone(),
        None => image::build(&a.sample, &a.board, a.profile.as_deref())?.disk,
    };
    let manifest = Manifest::parse(&String::from_utf8_lossy(&image::read_partition_file(&disk, "manifest.toml")?))?;
    if manifest.board != a.board {
        return Err(format!("{} was built for board {}, not {}: build it for {} (cargo xtask image --board {})", disk.display(), manifest.board, a.board, a.board, a.board));
    }
    let len = std::fs::metadata(&disk).map_err(|e| e.to_string())?.len();
    let what = format!("{} on {} ({}), revision {}, {}", manifest.sample, manifest.board, manifest.profile, manifest.revision, human(len));
    match target(sys, &a.to)? {
        Target::Device(dev) => {
            let no = sys.refusals(&dev, len, a.force);
            if !no.is_empty() {
                return Err(format!("refusing to write {}:\n  {}", dev.path.display(), no.join("\n  ")));
            }
            let plan = format!(
                "About to write {what}\n  to {} ({}{}, {}{}).\n  Everything on {} will be lost.",
                dev.path.display(),
                dev.name,
                if dev.model.is_empty() { String::new() } else { format!(": {}", dev.model) },
                human(dev.size),
                if dev.removable { ", removable" } else { ", NOT removable" },
                dev.path.display()
            );
            confirm(&plan, a.yes)?;
            report(&dev.path, write_verified(&disk, &dev.path, Some(&dev), true)?);
        }
        Target::File(f) => {
            if std::fs::canonicalize(&f).ok() == std::fs::canonicalize(&disk).ok() {
                return Err(format!("{} is the image itself", f.display()));
            }
            // A file that is not a cockpit image is somebody's data.
            let replaces = std::fs::metadata(&f).is_ok_and(|m| m.len() > 0);
            if replaces && image::read_partition_file(&f, "manifest.toml").is_err() && !a.force {
                return Err(format!("{} exists and holds no cockpit image: pass --force to replace it", f.display()));
            }
            let plan = format!("About to write {what}\n  to the file {}{}.", f.display(), if f.exists() { ", replacing it" } else { "" });
            confirm(&plan, a.yes || !f.exists())?;
            report(&f, write_verified(&disk, &f, None, true)?);
        }
        Target::Tftp(dir) => {
            if let Ok(old) = std::fs::read_to_string(dir.join("manifest.toml")) {
                if let Ok(m) = Manifest::parse(&old) {
                    if m.board != a.board && !a.force {
                        return Err(format!("{} holds an image for board {}: pass --force to replace it with one for {}", dir.display(), m.board, a.board));
                    }
                }
            }
            confirm(&format!("About to copy {what}\n  into the TFTP directory {}.", dir.display()), a.yes)?;
            let mut script = String::new();
            for name in ["cockpit.itb", "boot-tftp.scr", "manifest.toml"] {
                let bytes = image::read_partition_file(&disk, name)?;
                if name == "boot-tftp.scr" {
                    script = String::from_utf8_lossy(&bytes).into_owned();
                }
                // A fresh file (never one somebody linked into a shared
                // directory), renamed over the old one.
                let tmp = dir.join(format!(".{name}.part"));
                let _ = std::fs::remove_file(&tmp);
                let write = || -> std::io::Result<()> {
                    use std::os::unix::fs::OpenOptionsExt;
                    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32).open(&tmp)?;
                    f.write_all(&bytes)?;
                    f.sync_all()?;
                    std::fs::rename(&tmp, dir.join(name))
                };
                write().map_err(|e| open_error(&dir.join(name), e))?;
            }
            let run = script.lines().find_map(|l| l.strip_prefix(image::TFTP_RUN)).unwrap_or("tftpboot ${scriptaddr} boot-tftp.scr; source ${scriptaddr}");
            println!("copied cockpit.itb, boot-tftp.scr and manifest.toml to {}", dir.display());
            println!("on the board's U-Boot:\n  setenv serverip <this host's address>; dhcp   (or setenv ipaddr ...)\n  {run}");
        }
    }
    Ok(())
}

fn report(dst: &Path, s: WriteStats) {
    let mib = s.bytes as f64 / (1u64 << 20) as f64;
    println!(
        "wrote {} to {} in {:.1} s ({:.0} MiB/s, synced); read back and checked (SHA-256) in {:.1} s",
        human(s.bytes),
        dst.display(),
        s.write.as_secs_f64(),
        mib / s.write.as_secs_f64().max(1e-6),
        s.verify.as_secs_f64()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sysfs and procfs fixture: disks with partitions, mounts, swap.
    struct Fixture {
        root: PathBuf,
    }

    impl Fixture {
        fn new(tag: &str) -> Fixture {
            let root = std::env::temp_dir().join(format!("flash-fixture-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            std::fs::create_dir_all(root.join("proc/self")).unwrap();
            std::fs::write(root.join("proc/swaps"), "Filename\tType\tSize\tUsed\tPriority\n").unwrap();
            std::fs::write(root.join("proc/self/mountinfo"), "").unwrap();
            Fixture { root }
        }

        fn sys(&self) -> System {
            System { sys: self.root.join("sys"), proc: self.root.join("proc"), root_dev: None }
        }

        /// A disk `name` with `dev` = major:minor, `parts` partitions
        /// (minor + 1, ...), `gib` GiB.
        fn disk(&self, name: &str, major: u32, minor: u32, parts: u32, gib: u64, removable: bool) -> &Self {
            let d = self.root.join("sys/class/block").join(name);
            std::fs::create_dir_all(d.join("device")).unwrap();
            std::fs::write(d.join("dev"), format!("{major}:{minor}\n")).unwrap();
            std::fs::write(d.join("size"), format!("{}\n", gib << 21)).unwrap();
            std::fs::write(d.join("removable"), if removable { "1\n" } else { "0\n" }).unwrap();
            std::fs::write(d.join("device/model"), "Reader\n").unwrap();
            for p in 1..=parts {
                let pn = if name.ends_with(|c: char| c.is_ascii_digit()) { format!("{name}p{p}") } else { format!("{name}{p}") };
                for at in [d.join(&pn), self.root.join("sys/class/block").join(&pn)] {
                    std::fs::create_dir_all(&at).unwrap();
                    std::fs::write(at.join("dev"), format!("{major}:{}\n", minor + p)).unwrap();
                    std::fs::write(at.join("partition"), format!("{p}\n")).unwrap();
                    std::fs::write(at.join("size"), "1000\n").unwrap();
                }
            }
            self
        }

        fn mount(&self, dev: &str, at: &str) -> &Self {
            let p = self.root.join("proc/self/mountinfo");
            let mut s = std::fs::read_to_string(&p).unwrap();
            s += &format!("30 1 {dev} / {} rw,relatime shared:1 - ext4 /dev/x rw\n", at.replace(' ', "\\040"));
            std::fs::write(p, s).unwrap();
            self
        }

        fn check(&self, name: &str, image: u64, force: bool) -> Vec<String> {
            let sys = self.sys();
            let dev = sys.device(&self.root.join("sys/class/block").join(name)).unwrap();
            let dev = Device { path: PathBuf::from(format!("/dev/{name}")), ..dev };
            sys.refusals(&dev, image, force)
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }

    const IMG: u64 = 100 << 20;

    #[test]
    fn a_removable_unmounted_card_big_enough_may_be_written() {
        let f = Fixture::new("ok");
        f.disk("sda", 8, 0, 2, 100, false).disk("sdb", 8, 16, 1, 16, true).mount("8:1", "/");
        assert_eq!(f.check("sdb", IMG, false), Vec::<String>::new());
    }

    #[test]
    fn the_system_disk_is_refused_even_with_force() {
        let f = Fixture::new("system");
        f.disk("nvme0n1", 259, 0, 3, 500, false).mount("259:2", "/").mount("259:3", "/home");
        let no = f.check("nvme0n1", IMG, true);
        assert!(no.iter().any(|n| n.contains("running system lives on") && n.contains("nvme0n1p2 is mounted at /")), "{no:?}");
    }

    #[test]
    fn the_disk_of_the_root_file_system_is_the_system_disk_when_no_mount_shows_it() {
        // In a chroot, mountinfo need not list `/`: stat's device does.
        let f = Fixture::new("chroot");
        f.disk("vda", 254, 0, 0, 50, false);
        let sys = System { root_dev: Some("254:0".into()), ..f.sys() };
        let dev = Device { path: "/dev/vda".into(), ..sys.device(&f.root.join("sys/class/block/vda")).unwrap() };
        assert!(sys.refusals(&dev, IMG, true).iter().any(|n| n.contains("running system")));
    }

    #[test]
    fn a_mounted_partition_is_refused_and_named() {
        let f = Fixture::new("mounted");
        f.disk("sdc", 8, 32, 2, 32, true).mount("8:34", "/media/user/my card");
        let no = f.check("sdc", IMG, false);
        assert_eq!(no.len(), 1, "{no:?}");
        assert!(no[0].contains("sdc2") && no[0].contains("/media/user/my card") && no[0].contains("unmount"), "{no:?}");
    }

    #[test]
    fn a_partition_swap_or_small_card_is_refused() {
        let f = Fixture::new("misc");
        f.disk("sdd", 8, 48, 1, 1, true);
        let no = f.check("sdd1", IMG, false);
        assert!(no[0].contains("is a partition") && no[0].contains("whole disk"), "{no:?}");
        let no = f.check("sdd", 2 << 30, false);
        assert!(no.iter().any(|n| n.contains("holds 1.0 GiB but the image is 2.0 GiB")), "{no:?}");
        std::fs::write(f.root.join("proc/swaps"), "Filename Type Size Used Priority\n/dev/sdd1 partition 100 0 -2\n").unwrap();
        assert!(f.check("sdd", IMG, false).iter().any(|n| n.contains("swap")));
    }

    #[test]
    fn a_fixed_disk_needs_force_but_an_sd_card_in_a_slot_does_not() {
        let f = Fixture::new("fixed");
        f.disk("sde", 8, 64, 0, 64, false).disk("mmcblk0", 179, 0, 0, 16, false).disk("mmcblk1", 179, 8, 0, 16, false);
        assert!(f.check("sde", IMG, false).iter().any(|n| n.contains("not a removable disk") && n.contains("--force")));
        assert!(f.check("sde", IMG, true).is_empty());
        std::fs::write(f.root.join("sys/class/block/mmcblk0/device/type"), "SD\n").unwrap();
        std::fs::write(f.root.join("sys/class/block/mmcblk1/device/type"), "MMC\n").unwrap();
        assert!(f.check("mmcblk0", IMG, false).is_empty());
        assert!(!f.check("mmcblk1", IMG, false).is_empty(), "eMMC is not removable media");
    }

    #[test]
    fn a_mount_on_a_volume_stacked_on_the_disk_counts() {
        let f = Fixture::new("holders");
        f.disk("sdf", 8, 80, 1, 64, true).disk("dm-0", 254, 0, 0, 60, false);
        std::fs::create_dir_all(f.root.join("sys/class/block/sdf1/holders/dm-0")).unwrap();
        f.mount("254:0", "/");
        assert!(f.check("sdf", IMG, false).iter().any(|n| n.contains("running system") && n.contains("dm-0")));
    }

    #[test]
    fn a_mount_known_only_by_its_source_counts() {
        // btrfs: an anonymous device number, the source names the partition.
        let f = Fixture::new("btrfs");
        f.disk("sdg", 8, 96, 2, 64, true);
        std::fs::write(f.root.join("proc/self/mountinfo"), "40 1 0:35 / /data rw - btrfs /dev/sdg2 rw\n").unwrap();
        let no = f.check("sdg", IMG, false);
        assert!(no.iter().any(|n| n.contains("sdg2") && n.contains("/data")), "{no:?}");
    }

    #[test]
    fn mount_points_are_unescaped() {
        assert_eq!(unescape_mount("/media/a\\040b\\011c\\134"), "/media/a b\tc\\");
        assert_eq!(unescape_mount("/x\\04"), "/x\\04");
    }
}
