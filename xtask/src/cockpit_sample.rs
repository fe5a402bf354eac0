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
    ivi.loader()?;
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
    drv.loader()?;
    drv.overlay(&alsa_data.join("usr/share/alsa"), "usr/share/alsa")?;
    drv.modules(&kernel, DRIVER_MODULES)?;
    drv.build(&kernel, &work.join("driver.cpio"))
}

/// What a statistics line of the compositor (`cockpit run --stats`) says
/// of source `name`: the new frames it has brought since the start.
pub fn stats_frames(line: &str, name: &str) -> Option<u64> {
    let counts = line.split("frames from sources: ").nth(1)?.split(';').next()?;
    counts.split(' ').find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))?.parse().ok()
}

/// What a statistics line says of source `name`'s frame times since the
/// line before: p50, p99 and the maximum, in milliseconds.
pub fn stats_frame_times(line: &str, name: &str) -> Option<[f64; 3]> {
    let times = line.split("(ms, p50/p99/max): ").nth(1)?;
    let t = times.split(", ").find_map(|t| t.strip_prefix(name)?.strip_prefix(' '))?;
    let v: Vec<f64> = t.split('/').filter_map(|x| x.trim().parse().ok()).collect();
    (v.len() == 3).then(|| [v[0], v[1], v[2]])
}

#[cfg(test)]
mod tests {
    #[test]
    fn statistics_lines_are_read_per_source() {
        let l = "cockpit: 100 frames in 1.7 s (59.6 fps), 8190 pixels composed per frame; frames from sources: gauges=2217 telltales=2217 ivi=2; \
                 frame times since the last line (ms, p50/p99/max): gauges 33.1/40.0/45.2, telltales 33.0/40.1/45.0";
        assert_eq!(super::stats_frames(l, "gauges"), Some(2217));
        assert_eq!(super::stats_frames(l, "ivi"), Some(2));
        assert_eq!(super::stats_frames(l, "gau"), None);
        assert_eq!(super::stats_frame_times(l, "gauges"), Some([33.1, 40.0, 45.2]));
        assert_eq!(super::stats_frame_times(l, "ivi"), None);
    }
}
