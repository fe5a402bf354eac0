//! Guest artifacts from Debian's arm64 archive (and armhf, for the 32-bit
//! boards): the current kernel and a static busybox, fetched with
//! `apt-get download` (multiarch) into a cache under `target/debian/` and
//! unpacked with `dpkg -x`. Nothing prebuilt is committed to the
//! repository.

use crate::artifacts::root;
use crate::toolchain::which;
use object::{Object, ObjectSection};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn cache() -> PathBuf {
    root().join("target/debian")
}

fn run(cmd: &mut Command, what: &str) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{what}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{what} failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A Debian architecture whose packages the guests use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DebArch {
    Arm64,
    /// 32-bit Armv7 (hard float): the TI J6's and qemu-virt-a15's guests.
    Armhf,
}

impl DebArch {
    pub fn name(self) -> &'static str {
        match self {
            DebArch::Arm64 => "arm64",
            DebArch::Armhf => "armhf",
        }
    }

    /// The kernel metapackage for boards of this architecture (armhf: the
    /// LPAE flavour, which runs under a hypervisor).
    pub fn kernel_meta(self) -> &'static str {
        match self {
            DebArch::Arm64 => "linux-image-arm64",
            DebArch::Armhf => "linux-image-armmp-lpae",
        }
    }

    /// The Debian architecture of a board's `arch`.
    pub fn of_board(arch: &str) -> DebArch {
        if arch == "armv7a" {
            DebArch::Armhf
        } else {
            DebArch::Arm64
        }
    }

    /// Where its packages are cached (arm64's at the top, as before).
    fn cache(self) -> PathBuf {
        match self {
            DebArch::Arm64 => cache(),
            DebArch::Armhf => cache().join("armhf"),
        }
    }
}

fn enabled(arch: DebArch) -> bool {
    Command::new("dpkg")
        .arg("--print-foreign-architectures")
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == arch.name())
        })
}

/// Makes `arch`'s packages visible to apt (root on Debian only).
fn enable(arch: DebArch) -> Result<(), String> {
    let a = arch.name();
    if !which("apt-get") || !which("dpkg") {
        return Err(format!(
            "fetching {a} guest packages needs Debian's apt-get and dpkg"
        ));
    }
    if enabled(arch) {
        return Ok(());
    }
    eprintln!("xtask: enabling the {a} architecture in dpkg to fetch guest packages (dpkg --add-architecture {a})");
    run(
        Command::new("dpkg").args(["--add-architecture", a]),
        &format!("dpkg --add-architecture {a}"),
    )?;
    crate::apt::update();
    Ok(())
}

/// The concrete package a metapackage (e.g. linux-image-arm64) depends on.
fn resolve(arch: DebArch, meta: &str) -> Result<String, String> {
    let a = arch.name();
    let out = run(
        Command::new("apt-cache").args(["depends", &format!("{meta}:{a}")]),
        "apt-cache depends",
    )?;
    out.lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .map(|d| d.trim_end_matches(&format!(":{a}")).to_string())
        .find(|d| d.starts_with("linux-image-"))
        .ok_or_else(|| format!("{meta}:{a} names no kernel package"))
}

/// Downloads and unpacks `pkg:arm64` once; returns its unpacked root.
pub fn unpacked(pkg: &str) -> Result<PathBuf, String> {
    unpacked_for(DebArch::Arm64, pkg)
}

/// Downloads and unpacks `pkg:<arch>` once; returns its unpacked root.
pub fn unpacked_for(arch: DebArch, pkg: &str) -> Result<PathBuf, String> {
    let a = arch.name();
    let dir = arch.cache().join(pkg);
    let done = dir.join(".unpacked");
    if done.exists() {
        return Ok(dir);
    }
    enable(arch)?;
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    eprintln!("xtask: fetching {pkg}:{a} from Debian's archive");
    // apt's sandbox user must be able to write where it downloads.
    let dl = cache().join("downloads");
    std::fs::create_dir_all(&dl).map_err(|e| e.to_string())?;
    crate::apt::download(&format!("{pkg}:{a}"), &dl)?;
    let deb = std::fs::read_dir(&dl)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n.starts_with(&format!("{pkg}_")) && n.ends_with(&format!("_{a}.deb"))
            })
        })
        .ok_or_else(|| format!("no .deb for {pkg}:{a} after download"))?;
    run(
        Command::new("dpkg").arg("-x").arg(&deb).arg(&dir),
        "dpkg -x",
    )?;
    std::fs::write(&done, deb.file_name().unwrap().to_string_lossy().as_bytes())
        .map_err(|e| e.to_string())?;
    Ok(dir)
}

/// A kernel for `debian:<meta>`: the unpacked package root and its Image.
pub struct Kernel {
    pub arch: DebArch,
    pub root: PathBuf,
    pub image: PathBuf,
    pub version: String,
}

/// The arm64 kernel of metapackage `meta`.
pub fn kernel(meta: &str) -> Result<Kernel, String> {
    kernel_for(DebArch::Arm64, meta)
}

/// `arch`'s kernel of metapackage `meta`.
pub fn kernel_for(arch: DebArch, meta: &str) -> Result<Kernel, String> {
    let resolved = arch.cache().join(format!("{meta}.resolved"));
    let pkg = match std::fs::read_to_string(&resolved) {
        Ok(p) => p.trim().to_string(),
        Err(_) => {
            enable(arch)?;
            let p = resolve(arch, meta)?;
            std::fs::create_dir_all(arch.cache()).map_err(|e| e.to_string())?;
            std::fs::write(&resolved, &p).map_err(|e| e.to_string())?;
            p
        }
    };
    let root = unpacked_for(arch, &pkg)?;
    let version = pkg.trim_start_matches("linux-image-").to_string();
    let image = root.join("boot").join(format!("vmlinuz-{version}"));
    if !image.is_file() {
        return Err(format!("{} has no {}", pkg, image.display()));
    }
    Ok(Kernel { arch, root, image, version })
}

/// A board's `.dtb` as Debian's kernel package for `arch` ships it (`rel`
/// under `/usr/lib/linux-image-<version>/`: arm64's by vendor, e.g.
/// `xilinx/zynqmp-zcu102-rev1.0.dtb`; armhf's flat, e.g. `dra7-evm.dtb`).
pub fn kernel_dtb(arch: DebArch, rel: &str) -> Result<PathBuf, String> {
    let k = kernel_for(arch, arch.kernel_meta())?;
    let p = k
        .root
        .join("usr/lib")
        .join(format!("linux-image-{}", k.version))
        .join(rel);
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!("linux-image-{} has no {}", k.version, p.display()))
    }
}

/// The Linux source Debian ships (`linux-source-<v>`, architecture all):
/// only what device trees need is unpacked from its tarball (the arm64
/// trees, dt-bindings and the input event codes they include).
fn linux_source() -> Result<PathBuf, String> {
    let dir = cache().join("linux-source");
    let done = dir.join(".unpacked");
    if done.exists() {
        return Ok(dir);
    }
    let out = run(Command::new("apt-cache").args(["depends", "linux-source"]), "apt-cache depends linux-source")?;
    let pkg = out
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|d| d.starts_with("linux-source-"))
        .ok_or("the linux-source metapackage names no source package")?
        .to_string();
    let dl = cache().join("downloads");
    std::fs::create_dir_all(&dl).map_err(|e| e.to_string())?;
    let have = |dl: &Path| {
        std::fs::read_dir(dl).ok()?.flatten().map(|e| e.path()).find(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n.starts_with(&format!("{pkg}_")) && n.ends_with("_all.deb")
            })
        })
    };
    if have(&dl).is_none() {
        eprintln!("xtask: fetching {pkg} from Debian's archive (device-tree sources)");
        crate::apt::download(&pkg, &dl)?;
    }
    let deb = have(&dl).ok_or_else(|| format!("no .deb for {pkg} after download"))?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    // The package name comes from apt's output: only a plain one is used.
    if !pkg.bytes().all(|c| c.is_ascii_alphanumeric() || b".+-".contains(&c)) {
        return Err(format!("unexpected source package name {pkg:?}"));
    }
    // Paths reach the shell as arguments, never inside the script's text.
    let script = "set -o pipefail 2>/dev/null; dpkg-deb --fsys-tarfile \"$1\" | tar -xO \"./usr/src/$3.tar.xz\" | tar -xJ -C \"$2\" --strip-components=1 --wildcards \
         \"$3/arch/arm64/boot/dts/*\" \"$3/include/dt-bindings/*\" \"$3/include/uapi/linux/input-event-codes.h\"";
    run(
        Command::new("bash").arg("-c").arg(script).arg("unpack").arg(&deb).arg(&dir).arg(&pkg),
        &format!("unpacking {pkg}'s device trees"),
    )?;
    std::fs::write(&done, pkg.as_bytes()).map_err(|e| e.to_string())?;
    Ok(dir)
}

/// `rel` (under `arch/arm64/boot/dts/`) of Debian's Linux source, compiled
/// as the kernel's build does: `cpp` for the includes, then `dtc`.
pub fn linux_dts(rel: &str) -> Result<PathBuf, String> {
    let src = linux_source()?;
    let dts_root = src.join("arch/arm64/boot/dts");
    let dts = dts_root.join(rel);
    if !dts.is_file() {
        return Err(format!("Linux's source has no arch/arm64/boot/dts/{rel}"));
    }
    if !which("dtc") {
        return Err("compiling device trees needs dtc: install Debian's device-tree-compiler".into());
    }
    let out = cache().join("dtbs").join(rel.replace(".dts", ".dtb"));
    std::fs::create_dir_all(out.parent().expect("a file in dtbs/")).map_err(|e| e.to_string())?;
    let pre = run(
        Command::new("cpp")
            .args(["-nostdinc", "-undef", "-D__DTS__", "-x", "assembler-with-cpp", "-P"])
            .arg("-I")
            .arg(src.join("include"))
            .arg("-I")
            .arg(dts.parent().expect("a file"))
            .arg(&dts),
        &format!("cpp {rel}"),
    )?;
    let pp = out.with_extension("dts.pp");
    std::fs::write(&pp, pre).map_err(|e| e.to_string())?;
    run(Command::new("dtc").args(["-q", "-I", "dts", "-O", "dtb", "-o"]).arg(&out).arg(&pp), &format!("dtc {rel}"))?;
    Ok(out)
}

/// The static busybox binary from `busybox-static:<arch>`.
pub fn busybox(arch: DebArch) -> Result<PathBuf, String> {
    let p = unpacked_for(arch, "busybox-static")?.join("bin/busybox");
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!("busybox-static has no {}", p.display()))
    }
}

/// A kernel module's file, for an initramfs.
pub fn module(kernel: &Kernel, rel: &str) -> Result<PathBuf, String> {
    let p = kernel.root.join("lib/modules").join(&kernel.version).join("kernel").join(rel);
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!("module {} not in the kernel package", Path::new(rel).display()))
    }
}

/// A module's `depends=` list, from its `.modinfo` section.
fn modinfo_depends(file: &Path) -> Result<Vec<String>, String> {
    let data = std::fs::read(file).map_err(|e| e.to_string())?;
    let obj = object::File::parse(&*data).map_err(|e| format!("{}: {e}", file.display()))?;
    let Some(sec) = obj.section_by_name(".modinfo") else { return Ok(Vec::new()) };
    let bytes = sec.data().map_err(|e| e.to_string())?;
    Ok(bytes
        .split(|&b| b == 0)
        .filter_map(|kv| std::str::from_utf8(kv).ok()?.strip_prefix("depends="))
        .flat_map(|v| v.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect::<Vec<_>>())
        .collect())
}

/// `wanted` modules and their dependencies, dependencies first, as paths
/// relative to the kernel's `lib/modules/<version>/kernel`.
pub fn module_closure(kernel: &Kernel, wanted: &[&str]) -> Result<Vec<PathBuf>, String> {
    let base = kernel.root.join("lib/modules").join(&kernel.version).join("kernel");
    let mut index = BTreeMap::new();
    let mut stack = vec![base.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).map_err(|e| e.to_string())?.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Some(n) = p.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".ko")) {
                index.insert(n.replace('-', "_"), p.strip_prefix(&base).unwrap().to_path_buf());
            }
        }
    }
    fn visit(name: &str, base: &Path, index: &BTreeMap<String, PathBuf>, seen: &mut HashSet<String>, out: &mut Vec<PathBuf>) -> Result<(), String> {
        let key = name.replace('-', "_");
        if !seen.insert(key.clone()) {
            return Ok(());
        }
        let rel = index.get(&key).ok_or_else(|| format!("kernel module {name} is not in the kernel package (built in?)"))?;
        for dep in modinfo_depends(&base.join(rel))? {
            visit(&dep, base, index, seen, out)?;
        }
        out.push(rel.clone());
        Ok(())
    }
    let (mut seen, mut out) = (HashSet::new(), Vec::new());
    for w in wanted {
        visit(w, &base, &index, &mut seen, &mut out)?;
    }
    Ok(out)
}

