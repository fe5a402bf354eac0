//! The two initramfs images, assembled from Debian's arm64 packages and our
//! cross-built programs: dom0 (busybox, Xen's toolstack, pv-backendd, the
//! probe, the domU's kernel and initramfs) and the domU (busybox, aplay,
//! the probe, the snd-xen-front modules). Shared libraries are found by
//! following each ELF's `DT_NEEDED` entries through the unpacked packages;
//! kernel modules by following `depends=` in their `.modinfo`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use object::read::elf::{Dyn, FileHeader};

use crate::artifacts::root;
use crate::debian::{self, Kernel};
use crate::initramfs;

/// Xen's toolstack and the libraries it and our programs need (arm64).
const DOM0_PACKAGES: &[&str] = &[
    "xen-utils-4.17",
    "xenstore-utils",
    "libxencall1",
    "libxendevicemodel1",
    "libxenevtchn1",
    "libxenforeignmemory1",
    "libxengnttab1",
    "libxenhypfs1",
    "libxenmisc4.17",
    "libxenstore4",
    "libxentoolcore1",
    "libxentoollog1",
    "libyajl2",
    "libc6",
    "libgcc-s1",
    "libuuid1",
    "libfdt1",
    "zlib1g",
    "liblzma5",
    "libzstd1",
    "libbz2-1.0",
    "libncurses6",
    "libtinfo6",
    "libnl-3-200",
    "libnl-route-3-200",
    "libasound2",
];

pub(crate) const DOMU_PACKAGES: &[&str] = &["alsa-utils", "libasound2", "libc6", "libgcc-s1"];

/// The driver domain on our hypervisor: no toolstack, only the xenstore
/// client and what pv-backendd and the probe load.
pub(crate) const DRIVER_PACKAGES: &[&str] = &["xenstore-utils", "libxenstore4", "libxentoolcore1", "libc6", "libgcc-s1", "libasound2"];

/// dom0: the Xen device files, the virtio devices QEMU gives it (input
/// from the host, the 9p share), uinput for multi-touch, a timed ALSA
/// sink (snd-aloop) behind the `file` plugin that records what vsnd plays.
const DOM0_MODULES: &[&str] = &[
    "xen_evtchn",
    "xen_gntdev",
    "xen_gntalloc",
    "xen_privcmd",
    "xenfs",
    "evdev",
    "uinput",
    "virtio_mmio",
    "virtio_input",
    "9pnet_virtio",
    "9p",
    "snd_aloop",
];

/// domU: evdev nodes for xen-kbdfront's devices, the vsnd frontend, the
/// event-channel device (`bench xen`'s round trips).
const DOMU_MODULES: &[&str] = &["evdev", "snd_xen_front", "xen_evtchn"];

/// Where the Xen binaries live in dom0 (and on its PATH).
const XEN_BIN: &str = "usr/lib/xen-4.17/bin";

pub struct Images {
    pub xen: PathBuf,
    pub kernel: Kernel,
    pub dom0_initrd: PathBuf,
}

fn io(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// An architecture-independent package (`apt-get download` without an
/// architecture), unpacked next to `debian::unpacked`'s arm64 ones.
pub(crate) fn unpacked_all(pkg: &str) -> Result<PathBuf, String> {
    let cache = root().join("target/debian");
    let dir = cache.join(pkg);
    if dir.join(".unpacked").exists() {
        return Ok(dir);
    }
    let dl = cache.join("downloads");
    std::fs::create_dir_all(&dl).map_err(io)?;
    eprintln!("xtask: fetching {pkg} (all) from Debian's archive");
    crate::apt::download(pkg, &dl)?;
    let deb = std::fs::read_dir(&dl)
        .map_err(io)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(&format!("{pkg}_")) && n.to_string_lossy().ends_with("_all.deb")))
        .ok_or_else(|| format!("no .deb for {pkg} after download"))?;
    std::fs::create_dir_all(&dir).map_err(io)?;
    let st = Command::new("dpkg").arg("-x").arg(&deb).arg(&dir).status().map_err(io)?;
    if !st.success() {
        return Err(format!("dpkg -x {} failed", deb.display()));
    }
    std::fs::write(dir.join(".unpacked"), deb.file_name().unwrap().to_string_lossy().as_bytes()).map_err(io)?;
    Ok(dir)
}

/// Follows symlinks inside an unpacked package (absolute targets are
/// relative to the package root, not the host's).
fn resolve(pkg_root: &Path, mut p: PathBuf) -> Option<PathBuf> {
    for _ in 0..16 {
        let meta = std::fs::symlink_metadata(&p).ok()?;
        if !meta.file_type().is_symlink() {
            return Some(p);
        }
        let target = std::fs::read_link(&p).ok()?;
        p = if target.is_absolute() {
            pkg_root.join(target.strip_prefix("/").ok()?)
        } else {
            p.parent()?.join(target)
        };
    }
    None
}

/// Shared libraries named by an aarch64 ELF's `DT_NEEDED` entries.
pub fn needed(data: &[u8]) -> Result<Vec<String>, String> {
    let hdr = object::elf::FileHeader64::<object::Endianness>::parse(data).map_err(io)?;
    let endian = hdr.endian().map_err(io)?;
    let sections = hdr.sections(endian, data).map_err(io)?;
    let Some((dyns, link)) = sections.dynamic(endian, data).map_err(io)? else {
        return Ok(Vec::new());
    };
    let strings = sections.strings(endian, data, link).map_err(io)?;
    let mut out = Vec::new();
    for d in dyns {
        if d.tag32(endian) == Some(object::elf::DT_NEEDED) {
            out.push(String::from_utf8_lossy(d.string(endian, strings).map_err(io)?).into_owned());
        }
    }
    Ok(out)
}

/// A staging directory that becomes an initramfs.
pub(crate) struct Tree {
    dir: PathBuf,
    /// Package roots searched for libraries.
    libs_from: Vec<PathBuf>,
    copied: HashSet<String>,
}

impl Tree {
    pub(crate) fn new(dir: PathBuf, packages: &[&str]) -> Result<Self, String> {
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io)?;
        }
        std::fs::create_dir_all(&dir).map_err(io)?;
        let libs_from = packages.iter().map(|p| debian::unpacked(p)).collect::<Result<_, _>>()?;
        Ok(Self { dir, libs_from, copied: HashSet::new() })
    }

    pub(crate) fn put(&self, rel: &str, data: &[u8]) -> Result<(), String> {
        let p = self.dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).map_err(io)?;
        std::fs::write(&p, data).map_err(|e| format!("{}: {e}", p.display()))
    }

    /// Copies a sample directory (init scripts, configs) into the tree.
    pub(crate) fn overlay(&self, from: &Path, rel: &str) -> Result<(), String> {
        for e in std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let sub = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
            if e.file_type().map_err(io)?.is_dir() {
                self.overlay(&e.path(), &sub)?;
            } else {
                self.put(&sub, &std::fs::read(e.path()).map_err(io)?)?;
            }
        }
        Ok(())
    }

    pub(crate) fn find_lib(&self, soname: &str) -> Option<PathBuf> {
        for pkg in &self.libs_from {
            for d in ["lib/aarch64-linux-gnu", "usr/lib/aarch64-linux-gnu", "lib", "usr/lib"] {
                let cand = pkg.join(d).join(soname);
                if std::fs::symlink_metadata(&cand).is_ok() {
                    if let Some(p) = resolve(pkg, cand) {
                        return Some(p);
                    }
                }
            }
        }
        None
    }

    /// Adds the dynamic loader (`/lib/ld-linux-aarch64.so.1`) the
    /// programs' ELF headers name as their interpreter.
    pub(crate) fn loader(&self) -> Result<(), String> {
        let ld = self
            .find_lib("ld-linux-aarch64.so.1")
            .ok_or("no ld-linux-aarch64.so.1 in the fetched libc6")?;
        self.put("lib/ld-linux-aarch64.so.1", &std::fs::read(ld).map_err(io)?)
    }

    /// Adds an ELF program at `rel` and every library it needs under /lib.
    pub(crate) fn program(&mut self, rel: &str, from: &Path) -> Result<(), String> {
        let data = std::fs::read(from).map_err(|e| format!("{}: {e}", from.display()))?;
        self.put(rel, &data)?;
        self.libraries(&data, &from.display().to_string())
    }

    fn libraries(&mut self, data: &[u8], who: &str) -> Result<(), String> {
        for lib in needed(data).map_err(|e| format!("{who}: {e}"))? {
            if !self.copied.insert(lib.clone()) {
                continue;
            }
            let p = self.find_lib(&lib).ok_or_else(|| format!("{who} needs {lib}, which no fetched package provides"))?;
            let bytes = std::fs::read(&p).map_err(io)?;
            self.put(&format!("lib/{lib}"), &bytes)?;
            self.libraries(&bytes, &lib)?;
        }
        Ok(())
    }

    /// Writes the `modules` list the initramfs builder reads and the load
    /// order `/etc/modules-load` the init scripts follow.
    pub(crate) fn modules(&self, kernel: &Kernel, wanted: &[&str]) -> Result<(), String> {
        let order = debian::module_closure(kernel, wanted)?;
        let rels: Vec<String> = order.iter().map(|p| p.display().to_string()).collect();
        self.put("modules", format!("{}\n", rels.join("\n")).as_bytes())?;
        let names: Vec<String> = order.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        self.put("etc/modules-load", format!("{}\n", names.join("\n")).as_bytes())
    }

    pub(crate) fn build(&self, kernel: &Kernel, out: &Path) -> Result<(), String> {
        let bytes = initramfs::build(&self.dir, kernel)?;
        std::fs::write(out, bytes).map_err(|e| format!("{}: {e}", out.display()))
    }
}

/// A 16-bit stereo WAV of a `freq` Hz sine at `rate` Hz, `ms` long.
pub fn tone_wav(rate: u32, freq: f64, ms: u32) -> Vec<u8> {
    let frames = (u64::from(rate) * u64::from(ms) / 1000) as u32;
    let data_len = frames * 4;
    let mut w = Vec::with_capacity(44 + data_len as usize);
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + data_len).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes()); // PCM
    w.extend_from_slice(&2u16.to_le_bytes()); // channels
    w.extend_from_slice(&rate.to_le_bytes());
    w.extend_from_slice(&(rate * 4).to_le_bytes());
    w.extend_from_slice(&4u16.to_le_bytes());
    w.extend_from_slice(&16u16.to_le_bytes());
    w.extend_from_slice(b"data");
    w.extend_from_slice(&data_len.to_le_bytes());
    for i in 0..frames {
        let v = ((f64::from(i) * 2.0 * std::f64::consts::PI * freq / f64::from(rate)).sin() * 12000.0).round() as i16;
        w.extend_from_slice(&v.to_le_bytes());
        w.extend_from_slice(&v.to_le_bytes());
    }
    w
}

/// Builds both images under `target/interop/`.
pub fn build(bins: &super::cross::Binaries, tone: &[u8]) -> Result<Images, String> {
    let work = root().join("target/interop");
    let samples = root().join("samples/interop");
    let kernel = debian::kernel("linux-image-arm64")?;
    let alsa_data = unpacked_all("libasound2-data")?;

    // The domU first: dom0 carries it.
    let mut u = Tree::new(work.join("domU-tree"), DOMU_PACKAGES)?;
    u.overlay(&samples.join("domU"), "")?;
    u.program("usr/bin/interop-probe", &bins.probe)?;
    let alsa_utils = debian::unpacked("alsa-utils")?;
    u.program("usr/bin/aplay", &alsa_utils.join("usr/bin/aplay"))?;
    u.overlay(&alsa_data.join("usr/share/alsa"), "usr/share/alsa")?;
    u.loader()?;
    u.put("tone.wav", tone)?;
    u.modules(&kernel, DOMU_MODULES)?;
    let domu_initrd = work.join("domU.cpio");
    u.build(&kernel, &domu_initrd)?;

    let mut d = Tree::new(work.join("dom0-tree"), DOM0_PACKAGES)?;
    d.overlay(&samples.join("dom0"), "")?;
    let xen_utils = debian::unpacked("xen-utils-4.17")?;
    for b in ["xl", "xenstored", "xenconsoled", "xen-init-dom0"] {
        d.program(&format!("{XEN_BIN}/{b}"), &xen_utils.join(XEN_BIN).join(b))?;
    }
    d.program("usr/bin/xenstore", &debian::unpacked("xenstore-utils")?.join("usr/bin/xenstore"))?;
    d.program("usr/bin/pv-backendd", &bins.backendd)?;
    d.program("usr/bin/interop-probe", &bins.probe)?;
    d.loader()?;
    d.overlay(&alsa_data.join("usr/share/alsa"), "usr/share/alsa")?;
    d.put("guest/Image", &std::fs::read(&kernel.image).map_err(io)?)?;
    d.put("guest/initrd", &std::fs::read(&domu_initrd).map_err(io)?)?;
    d.modules(&kernel, DOM0_MODULES)?;
    let dom0_initrd = work.join("dom0.cpio");
    d.build(&kernel, &dom0_initrd)?;

    // The driver domain: dom0's backend side without Xen's toolstack.
    let mut r = Tree::new(work.join("driver-tree"), DRIVER_PACKAGES)?;
    r.overlay(&samples.join("dom0/etc"), "etc")?;
    r.overlay(&samples.join("driver"), "")?;
    r.program("usr/bin/xenstore", &debian::unpacked("xenstore-utils")?.join("usr/bin/xenstore"))?;
    r.program("usr/bin/pv-backendd", &bins.backendd)?;
    r.program("usr/bin/interop-probe", &bins.probe)?;
    r.loader()?;
    r.overlay(&alsa_data.join("usr/share/alsa"), "usr/share/alsa")?;
    r.modules(&kernel, DOM0_MODULES)?;
    // The run on our hypervisor finds it (and domU.cpio) by the paths
    // samples/interop/ours/system.toml names.
    r.build(&kernel, &work.join("driver.cpio"))?;

    let xen = debian::unpacked("xen-hypervisor-4.17-arm64")?.join("boot/xen-4.17-arm64");
    Ok(Images { xen, kernel, dom0_initrd })
}
