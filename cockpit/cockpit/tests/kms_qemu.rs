//! The DRM/KMS output for real: Debian's arm64 kernel under QEMU with a
//! virtio-gpu device, the cockpit cross-built for aarch64 (static) in a
//! busybox initramfs, scanning out a layout of test patterns. QEMU's
//! `screendump` of the display must equal the headless composition of the
//! same layout, pixel for pixel.
//!
//! Needs: qemu-system-arm (the command line comes from `xtask::qemu`), Debian's rustc-web and rust-web-src (build-std),
//! gcc-aarch64-linux-gnu and libc6-dev-arm64-cross, and Debian's arm64
//! archive (`linux-image-arm64`, `busybox-static`, fetched with
//! `apt-get download`, through `xtask::debian`).

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use xtask::qemu::{Machine, QemuCommand};

use cockpit_core::{Canvas, Compositor, Layout};

const LAYOUT: &str = r##"
[[display]]
name = "screen"
connector = "Virtual-1"
mode = "1024x768"
background = "#203040"

[[source]]
name = "main"
guest = "pattern/0"
display = "screen"
rect = [0, 0, 640, 768]
scaling = "stretch"

[[source]]
name = "side"
guest = "pattern/2"
display = "screen"
rect = [660, 20, 340, 500]
rotation = 90
scaling = "fit"
filter = "nearest"

[[source]]
name = "glass"
guest = "pattern/1"
display = "screen"
rect = [100, 500, 800, 240]
z = 5
opacity = 0.8
"##;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The cockpit for aarch64 Linux, static, KMS only (Debian's rustc with build-std).
fn cross_build() -> PathBuf {
    let ws = workspace();
    let target_dir = ws.join("target/cockpit-aarch64");
    run(Command::new("/usr/bin/cargo")
        .current_dir(&ws)
        .args([
            "build",
            "--locked",
            "--release",
            "-p",
            "cockpit",
            "--no-default-features",
            "--features",
            "kms",
        ])
        .args(["--target", "aarch64-unknown-linux-gnu", "-Zbuild-std=std,panic_abort"])
        .arg("--target-dir")
        .arg(&target_dir)
        .env("RUSTC_BOOTSTRAP", "1")
        .env("RUSTC", "/usr/bin/rustc")
        .env_remove("RUSTFLAGS")
        .env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER", "aarch64-linux-gnu-gcc")
        .env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS", "-C target-feature=+crt-static"));
    target_dir.join("aarch64-unknown-linux-gnu/release/cockpit")
}

/// A binary PPM (P6) as a canvas.
fn parse_ppm(b: &[u8]) -> Canvas {
    let mut fields = Vec::new();
    let mut i = 2;
    while fields.len() < 3 {
        while b[i].is_ascii_whitespace() {
            i += 1;
        }
        let s = i;
        while !b[i].is_ascii_whitespace() {
            i += 1;
        }
        fields.push(std::str::from_utf8(&b[s..i]).unwrap().parse::<u32>().unwrap());
    }
    assert_eq!(&b[..2], b"P6");
    assert_eq!(fields[2], 255);
    let data = &b[i + 1..];
    let (w, h) = (fields[0], fields[1]);
    let mut c = Canvas::new(w, h, 0);
    for y in 0..h {
        for x in 0..w {
            let p = &data[3 * (y * w + x) as usize..];
            c.set(x, y, (p[0] as u32) << 16 | (p[1] as u32) << 8 | p[2] as u32);
        }
    }
    c
}

fn expected() -> Canvas {
    let mut comp = Compositor::new(Layout::parse(LAYOUT, Path::new("kms.toml")).unwrap());
    let _p = cockpit::sim::start_patterns(&comp.sources());
    let t0 = Instant::now();
    loop {
        comp.render(Instant::now());
        if (0..3).all(|i| comp.status(cockpit_core::SourceId(i)) == cockpit_core::SourceStatus::Live) {
            return comp.snapshot(0);
        }
        assert!(t0.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
#[ignore = "needs qemu-system-arm, an aarch64 cross toolchain and Debian's arm64 archive: run with cargo xtask test"]
fn kms_output_on_virtio_gpu_under_qemu_matches_the_headless_composition() {
    let cockpit = cross_build();
    let kernel = xtask::debian::kernel("linux-image-arm64").unwrap();
    let vmlinuz = kernel.image.clone();
    let busybox = xtask::debian::busybox(xtask::debian::DebArch::Arm64).unwrap();
    let mods: Vec<PathBuf> = xtask::debian::module_closure(&kernel, &["virtio_pci", "virtio-gpu"])
        .unwrap()
        .iter()
        .map(|rel| xtask::debian::module(&kernel, rel.to_str().unwrap()).unwrap())
        .collect();
    let names: Vec<String> = mods.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    let init = format!(
        "#!/bin/busybox sh\n/bin/busybox --install -s /bin\nmkdir -p /proc /sys /dev /tmp\nmount -t proc proc /proc\nmount -t sysfs sys /sys\nmount -t devtmpfs dev /dev\n\
         for m in {}; do insmod /lib/modules/$m || echo \"cockpit-test: insmod $m failed\"; done\n\
         i=0; while [ ! -e /dev/dri/card0 ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done\n\
         echo cockpit-test: starting\n/cockpit run --layout /layout.toml --output kms --patterns --wayland-socket none --stats 30 --seconds 900\n\
         echo \"cockpit-test: cockpit exited $?\"\npoweroff -f\n",
        names.join(" ")
    );
    let mut files = vec![
        ("bin".to_string(), 0o040755, Vec::new()),
        ("lib".to_string(), 0o040755, Vec::new()),
        ("lib/modules".to_string(), 0o040755, Vec::new()),
        ("init".to_string(), 0o100755, init.into_bytes()),
        ("bin/busybox".to_string(), 0o100755, std::fs::read(&busybox).unwrap()),
        ("cockpit".to_string(), 0o100755, std::fs::read(&cockpit).unwrap()),
        ("layout.toml".to_string(), 0o100644, LAYOUT.as_bytes().to_vec()),
    ];
    for (p, n) in mods.iter().zip(&names) {
        files.push((format!("lib/modules/{n}"), 0o100644, std::fs::read(p).unwrap()));
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("kms-qemu-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("initrd.cpio"), xtask::initramfs::archive(&files).unwrap()).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let monitor = dir.join("monitor.sock");
    let shot = dir.join("screen.ppm");

    let mut q = QemuCommand::new(&Machine::virt(2, "1024"));
    q.kernel(&vmlinuz)
        .initrd(&dir.join("initrd.cpio"))
        .append("console=ttyAMA0 rdinit=/init panic=-1 loglevel=3")
        .device("virtio-gpu-pci,xres=1024,yres=768")
        .monitor_socket(&monitor);
    let mut qemu = q.spawn().unwrap();
    // Up once it reports frame statistics; a cockpit that exits, or a QEMU
    // that dies, fails the test at once.
    let up = qemu.wait_for(Duration::from_secs(600), |l| l.contains("frames in") || l.contains("cockpit exited"));
    assert!(
        up.as_deref().is_some_and(|l| l.contains("frames in")),
        "the cockpit did not come up on KMS; console:\n{}",
        qemu.transcript()
    );
    let mut mon = std::os::unix::net::UnixStream::connect(&monitor).unwrap();
    writeln!(mon, "screendump {}", shot.display()).unwrap();
    let t1 = Instant::now();
    let mut last = 0;
    loop {
        let len = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
        if len > 0 && len == last {
            break;
        }
        last = len;
        assert!(qemu.try_exit().is_none(), "QEMU exited before its screendump:\n{}", qemu.transcript());
        assert!(t1.elapsed() < Duration::from_secs(30), "no screendump");
        std::thread::sleep(Duration::from_millis(500));
    }
    let _ = writeln!(mon, "quit");
    qemu.wait_exit(Duration::from_secs(30));

    let got = parse_ppm(&std::fs::read(&shot).unwrap());
    let _ = std::fs::write(dir.join("screen.png"), got.to_png());
    let want = expected();
    let _ = std::fs::write(dir.join("expected.png"), want.to_png());
    assert_eq!((got.width(), got.height()), (1024, 768), "console:\n{}", qemu.transcript());
    let differing = got.pixels().iter().zip(want.pixels()).filter(|(a, b)| a != b).count();
    assert_eq!(
        differing,
        0,
        "{differing} pixels differ between the screen and the headless composition (see {})",
        dir.display()
    );
}
