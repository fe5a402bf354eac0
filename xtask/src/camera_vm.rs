//! The camera VM: a plain arm64 Linux on QEMU's `virt` (no hypervisor)
//! whose compositor shows a V4L2 camera through `zwp_linux_dmabuf_v1`.
//! The camera is the kernel's vivid driver; weston's simple-dmabuf-v4l
//! (Debian's arm64 weston) exports its capture buffers as dma-bufs and
//! hands them to the compositor (cross-built, KMS output). This is where
//! the dma-buf path meets a real exporter: CI's container has none.
//! Built under `target/camera-vm/`; the guest's files are
//! `xtask/tests/fixtures/camera`.

use std::path::PathBuf;

use crate::artifacts::root;
use crate::debian::{self, Kernel};
use crate::interop::cross;
use crate::interop::images::Tree;

/// The camera, the screen, the harness's 9p share, and vgem (a dma-buf
/// exporter whose mappings are raw page frames, like a board's capture
/// driver; loaded after the screen, which stays card0).
const MODULES: &[&str] = &[
    "vivid",
    "virtio_mmio",
    "virtio-gpu",
    "9pnet_virtio",
    "9p",
    "vgem",
];

/// What the client and the compositor load.
const PACKAGES: &[&str] = &["libwayland-client0", "libffi8", "libc6", "libgcc-s1"];

/// QEMU's devices for the VM: the screen the compositor drives.
pub const DEVICES: &[&str] = &["virtio-gpu-device,id=screen,xres=800,yres=480,edid=on"];

pub fn dir() -> PathBuf {
    root().join("target/camera-vm")
}

/// The kernel and `camera.cpio`.
pub fn image() -> Result<(Kernel, PathBuf), String> {
    let bins = cross::build_cockpit()?;
    let work = dir();
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let kernel = debian::kernel("linux-image-arm64")?;
    let mut t = Tree::new(work.join("tree"), PACKAGES)?;
    t.overlay(&root().join("xtask/tests/fixtures/camera"), "")?;
    t.put("etc/interop/host-commands", &std::fs::read(root().join("samples/interop/dom0/etc/interop/host-commands")).map_err(|e| e.to_string())?)?;
    t.program("usr/bin/cockpit", &bins.cockpit)?;
    t.program(
        "usr/bin/weston-simple-dmabuf-v4l",
        &debian::unpacked("weston")?.join("usr/bin/weston-simple-dmabuf-v4l"),
    )?;
    // cockpit-dmabuf's test of a vgem dma-buf, run by /init.
    let vgem = cross::build_tests("cockpit-dmabuf", &["cockpit-dmabuf/vgem-test"])?
        .into_iter()
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vgem-"))
        })
        .ok_or("cargo built no vgem test for cockpit-dmabuf")?;
    t.program("usr/bin/cockpit-dmabuf-vgem-test", &vgem)?;
    t.loader()?;
    t.modules(&kernel, MODULES)?;
    let out = work.join("camera.cpio");
    t.build(&kernel, &out)?;
    Ok((kernel, out))
}
