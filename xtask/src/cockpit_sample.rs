//! The cockpit sample's images (`samples/cockpit`), built under
//! `target/cockpit-sample/` before the sample itself: the driver domain's
//! (busybox, the compositor and pv-backendd cross-built, the xenstore
//! client, the Xen, virtio GPU and input modules, snd-aloop for the sound
//! output) and the IVI's (busybox, the HMI, aplay and its chime,
//! snd-xen-front). Shares the interop test bed's image tooling.

use std::path::PathBuf;

use crate::artifacts::root;
use crate::debian;
use crate::interop::cross;
// The packages are those of the interop bed's driver domain and domU: the
// xenstore client and ALSA for the driver, aplay for the guest.
use crate::interop::images::{tone_wav, unpacked_all, Tree, DOMU_PACKAGES as IVI_PACKAGES, DRIVER_PACKAGES};

/// What the driver domain loads (and its dependencies): the Xen devices,
/// the screens, tablet and keyboard, the harness's 9p share, and the
/// loopback sound card behind its ALSA output.
const DRIVER_MODULES: &[&str] = &[
    "xen_evtchn",
    "xen_gntdev",
    "xen_gntalloc",
    "xen_privcmd",
    "xenfs",
    "evdev",
    "virtio_mmio",
    "virtio_input",
    "virtio-gpu",
    "9pnet_virtio",
    "9p",
    "snd_aloop",
];

/// The IVI: evdev nodes for xen-kbdfront's devices, the vsnd frontend.
const IVI_MODULES: &[&str] = &["evdev", "snd_xen_front"];

/// Where system.toml expects the images.
pub fn dir() -> PathBuf {
    root().join("target/cockpit-sample")
}

fn io(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Builds `driver.cpio` and `ivi.cpio`.
pub fn images() -> Result<(), String> {
    let bins = cross::build_cockpit()?;
    let (work, sample) = (dir(), root().join("samples/cockpit"));
    std::fs::create_dir_all(&work).map_err(io)?;
    let kernel = debian::kernel("linux-image-arm64")?;
    let alsa_data = unpacked_all("libasound2-data")?;

    let mut ivi = Tree::new(work.join("ivi-tree"), IVI_PACKAGES)?;
    ivi.overlay(&sample.join("ivi"), "")?;
    ivi.program("usr/bin/cockpit-hmi", &bins.hmi)?;
    ivi.program("usr/bin/aplay", &debian::unpacked("alsa-utils")?.join("usr/bin/aplay"))?;
    ivi.overlay(&alsa_data.join("usr/share/alsa"), "usr/share/alsa")?;
    ivi.put("lib/ld-linux-aarch64.so.1", &std::fs::read(ivi.find_lib("ld-linux-aarch64.so.1").ok_or("no ld.so")?).map_err(io)?)?;
    ivi.put("usr/share/cockpit/chime.wav", &tone_wav(48_000, 880.0, 300))?;
    ivi.modules(&kernel, IVI_MODULES)?;
    ivi.build(&kernel, &work.join("ivi.cpio"))?;

    let mut drv = Tree::new(work.join("driver-tree"), DRIVER_PACKAGES)?;
    drv.overlay(&sample.join("driver"), "")?;
    // The harness runs its commands through the 9p share as in the interop run.
    drv.put("etc/interop/host-commands", &std::fs::read(root().join("samples/interop/dom0/etc/interop/host-commands")).map_err(io)?)?;
    drv.program("usr/bin/xenstore", &debian::unpacked("xenstore-utils")?.join("usr/bin/xenstore"))?;
    drv.program("usr/bin/pv-backendd", &bins.backendd)?;
    drv.program("usr/bin/cockpit", &bins.cockpit)?;
    drv.put("lib/ld-linux-aarch64.so.1", &std::fs::read(drv.find_lib("ld-linux-aarch64.so.1").ok_or("no ld.so")?).map_err(io)?)?;
    drv.overlay(&alsa_data.join("usr/share/alsa"), "usr/share/alsa")?;
    drv.modules(&kernel, DRIVER_MODULES)?;
    drv.build(&kernel, &work.join("driver.cpio"))
}
