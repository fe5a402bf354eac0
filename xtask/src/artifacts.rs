//! Building what boots: the hypervisor image, the test guests, and a
//! sample's boot bundle, under `target/cockpit/<board>/<sample>/`.

use crate::toolchain::{self, CrossCargo, TARGET, TARGET_A32};
use crate::{debian, initramfs};
use hv_config::{DomainBlobs, ImageRef, LoadOptions, Sample};
use object::{Object, ObjectSegment, ObjectSymbol};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Built-in test guests, referenced from samples as `guest:<name>`; each
/// builds for aarch64 and for Armv7-A.
pub const GUESTS: &[&str] = &["heartbeat", "crasher", "countdown", "smp", "share", "hostile", "alarm", "vdispl", "cluster"];

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn bare_target_dir() -> PathBuf {
    root().join("target/bare")
}

/// The hypervisor's link address when RAM starts at `ram_base`: where boot
/// loaders put an arm64 Image (RAM base + text_offset).
pub fn hypervisor_base(ram_base: u64) -> u64 {
    ram_base + hv_config::HV_IMAGE_OFFSET
}

/// Where the hypervisor linked at `base` is built: QEMU virt's in the
/// guests' directory, others beside it (each its own link).
fn hypervisor_target_dir(base: u64) -> PathBuf {
    if base == hypervisor_base(0x4000_0000) {
        bare_target_dir()
    } else {
        root().join(format!("target/bare-hv-{base:x}"))
    }
}

/// Builds a bare-metal crate (its own workspace) in release mode, in
/// `target_dir`, with `envs` for its build scripts.
fn cross_build(
    cc: &CrossCargo,
    manifest: &Path,
    target_dir: &Path,
    envs: &[(&str, String)],
) -> Result<(), String> {
    cross_build_for(TARGET, cc, manifest, target_dir, envs, &[])
}

/// Builds `manifest` for `target` (only the binaries `bins`, if any).
fn cross_build_for(
    target: &str,
    cc: &CrossCargo,
    manifest: &Path,
    target_dir: &Path,
    envs: &[(&str, String)],
    bins: &[&str],
) -> Result<(), String> {
    let mut cmd = Command::new(&cc.cargo);
    cmd.arg("build")
        .arg("--release")
        .arg("--quiet")
        .arg("--target")
        .arg(target);
    for b in bins {
        cmd.arg("--bin").arg(b);
    }
    cmd.arg("--manifest-path").arg(manifest);
    cmd.env("CARGO_TARGET_DIR", target_dir);
    cmd.envs(envs.iter().map(|(k, v)| (k, v)));
    cmd.env("RUSTC", &cc.rustc);
    // The host toolchain's flags must not leak into the cross build.
    cmd.env_remove("RUSTFLAGS").env_remove("CARGO_ENCODED_RUSTFLAGS");
    if cc.build_std {
        cmd.arg("-Zbuild-std=core,alloc").env("RUSTC_BOOTSTRAP", "1");
    }
    let st = cmd.status().map_err(|e| format!("running {}: {e}", cc.cargo))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("building {} failed", manifest.display()))
    }
}

/// A test guest's ELF, as built for `arch` (a board's).
fn elf_path(arch: &str, name: &str) -> PathBuf {
    if arch == "armv7a" {
        a32_guests_dir().join(TARGET_A32).join("release").join(name)
    } else {
        elf_in(&bare_target_dir(), name)
    }
}

fn a32_guests_dir() -> PathBuf {
    root().join("target/bare-a32-guests")
}

fn elf_in(target_dir: &Path, name: &str) -> PathBuf {
    target_dir.join(TARGET).join("release").join(name)
}

/// The loadable segments of an ELF as one flat image starting at the lowest
/// segment address (what a boot loader copies to memory), with the bytes
/// the image takes in memory from its first address: segments' sizes in memory (bss) and, where the linker
/// script puts it past them, the stack (`__stack_top`).
pub fn flat_image(elf: &Path) -> Result<(Vec<u8>, u64), String> {
    let data = std::fs::read(elf).map_err(|e| format!("{}: {e}", elf.display()))?;
    let file = object::File::parse(&*data).map_err(|e| format!("{}: {e}", elf.display()))?;
    let segs: Vec<_> = file.segments().filter(|s| s.file_range().1 > 0).collect();
    let base = segs.iter().map(|s| s.address()).min().ok_or("ELF has no loadable segments")?;
    let seg_end = file.segments().map(|s| s.address() + s.size()).max().unwrap_or(base);
    let stack_top = file.symbols().find(|s| s.name() == Ok("__stack_top")).map_or(0, |s| s.address());
    let footprint = seg_end.max(stack_top).saturating_sub(base);
    let mut out = Vec::new();
    for s in &segs {
        let bytes = s.data().map_err(|e| e.to_string())?;
        let off = (s.address() - base) as usize;
        if out.len() < off + bytes.len() {
            out.resize(off + bytes.len(), 0);
        }
        out[off..off + bytes.len()].copy_from_slice(bytes);
    }
    Ok((out, footprint))
}

/// Builds the Armv7-A hypervisor linked for `board`'s RAM (where QEMU and
/// U-Boot's `bootz` load a zImage: RAM base + 64 KiB): its ELF.
fn build_hypervisor_a32_elf(cc: &CrossCargo, board: &hv_config::Board) -> Result<PathBuf, String> {
    let base = board.ram.base + hv_config::HV_IMAGE_OFFSET_A32;
    let dir = root().join(format!("target/bare-a32-{base:x}"));
    cross_build_for(TARGET_A32, cc, &root().join("hypervisor/kernel/Cargo.toml"), &dir, &[("HV_IMAGE_BASE", format!("{base:#x}"))], &[])?;
    Ok(dir.join(TARGET_A32).join("release/hv-kernel"))
}

pub struct Built {
    pub dir: PathBuf,
    pub hypervisor: PathBuf,
    pub bundle: PathBuf,
    pub sample: Sample,
}

pub fn sample_path(name: &str) -> PathBuf {
    let p = Path::new(name);
    if p.extension().is_some_and(|e| e == "toml") {
        return p.to_path_buf();
    }
    root().join("samples").join(name).join("system.toml")
}

/// Samples whose domains boot images xtask builds first (cross-built
/// programs in initramfs images the description names by path).
const PREPARED: &[(&str, fn() -> Result<(), String>)] = &[("cockpit", crate::cockpit_sample::images)];

/// Builds what `sample` needs before it can be loaded.
pub fn prepare(sample: &str) -> Result<(), String> {
    match PREPARED.iter().find(|(name, _)| *name == sample) {
        Some((_, build)) => build(),
        None => Ok(()),
    }
}

/// Validates a sample (build errors name file, line and field), for
/// `board` instead of its own if given.
pub fn load(sample: &str, board: Option<&str>, profile: Option<&str>) -> Result<Sample, String> {
    let opts = LoadOptions {
        known_guests: GUESTS.iter().map(|s| s.to_string()).collect(),
        profile_override: profile.map(str::to_string),
        board_override: board.map(str::to_string),
    };
    hv_config::load_sample(&sample_path(sample), &root().join("bsp"), &opts).map_err(|e| e.to_string())
}

/// Builds the hypervisor, the guests and the sample's bundle.
pub fn build(sample: &str, board: Option<&str>, profile: Option<&str>) -> Result<Built, String> {
    prepare(sample)?;
    let s = load(sample, board, profile)?;
    let a32 = s.board.arch == "armv7a";
    let hv_elf = if a32 {
        let cc = toolchain::cross_cargo_for(TARGET_A32)?;
        cross_build_for(TARGET_A32, &cc, &root().join("hypervisor/guests/Cargo.toml"), &a32_guests_dir(), &[], &[])?;
        build_hypervisor_a32_elf(&cc, &s.board)?
    } else {
        let cc = toolchain::cross_cargo()?;
        let hv_base = hypervisor_base(s.board.ram.base);
        let hv_dir = hypervisor_target_dir(hv_base);
        cross_build(&cc, &root().join("hypervisor/kernel/Cargo.toml"), &hv_dir, &[("HV_IMAGE_BASE", format!("{hv_base:#x}"))])?;
        cross_build(&cc, &root().join("hypervisor/guests/Cargo.toml"), &bare_target_dir(), &[])?;
        elf_in(&hv_dir, "hv-kernel")
    };
    let deb_arch = debian::DebArch::of_board(&s.board.arch);

    let mut blobs = Vec::new();
    for d in &s.domains {
        let mut kernel = None;
        let mut footprint = 0;
        let image = match &d.image {
            ImageRef::Guest(g) => {
                let (bytes, f) = flat_image(&elf_path(&s.board.arch, g))?;
                footprint = f;
                bytes
            }
            ImageRef::File(p) => std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?,
            ImageRef::Debian(pkg) => {
                let k = debian::kernel_for(deb_arch, pkg)?;
                let bytes = std::fs::read(&k.image).map_err(|e| e.to_string())?;
                kernel = Some(k);
                bytes
            }
            ImageRef::Initramfs(p) => return Err(format!("{}: an initramfs is not a kernel image", p.display())),
        };
        let initrd = match &d.initrd {
            None => None,
            Some(ImageRef::Initramfs(tree)) => {
                let k = match kernel {
                    Some(k) => k,
                    None => return Err(format!("domain {}: an initramfs needs a debian: kernel for its modules", d.name)),
                };
                Some(initramfs::build(tree, &k)?)
            }
            Some(ImageRef::File(p)) => Some(std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?),
            Some(other) => return Err(format!("domain {}: {other:?} is not an initrd", d.name)),
        };
        blobs.push(DomainBlobs { image, initrd, footprint });
    }
    let bundle = hv_config::encode_bundle(&s, &blobs).map_err(|e| e.to_string())?;
    let dir = root().join("target/cockpit").join(&s.board.name).join(&s.name).join(&s.profile.name);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let hypervisor = dir.join("hypervisor.bin");
    let bundle_path = dir.join("bundle.bin");
    let (hv_bytes, hv_footprint) = flat_image(&hv_elf)?;
    // Firmware's reserved memory is checked against this much from the link
    // address (hv_config::HV_IMAGE_MAX): the image must stay inside it.
    if hv_footprint > hv_config::HV_IMAGE_MAX {
        return Err(format!("the hypervisor takes {hv_footprint:#x} bytes from its load address, more than HV_IMAGE_MAX ({:#x})", hv_config::HV_IMAGE_MAX));
    }
    std::fs::write(&hypervisor, hv_bytes).map_err(|e| e.to_string())?;
    std::fs::write(&bundle_path, bundle).map_err(|e| e.to_string())?;
    Ok(Built { dir, hypervisor, bundle: bundle_path, sample: s })
}
