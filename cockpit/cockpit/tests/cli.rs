//! The `cockpit` binary end to end, headless: the simulator's screenshots,
//! a malformed layout's error, and screenshots on request.

use std::path::PathBuf;
use std::process::Command;

use cockpit_core::image::png_to_canvas;

fn tmp(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn cockpit(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cockpit")).args(args).output().unwrap()
}

#[test]
fn the_headless_simulator_writes_screenshots_of_both_displays() {
    let dir = tmp("sim");
    let out = cockpit(&[
        "sim",
        "--output",
        "headless",
        "--frames",
        "90",
        "--wayland-socket",
        "none",
        "--screenshot-dir",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let center = png_to_canvas(&std::fs::read(dir.join("center.png")).unwrap()).unwrap();
    assert_eq!((center.width(), center.height()), (1024, 600));
    assert_eq!(center.get(500, 10), 0xff1e_88e5, "the simulated IVI's top bar");
    let cluster = png_to_canvas(&std::fs::read(dir.join("cluster.png")).unwrap()).unwrap();
    assert_eq!((cluster.width(), cluster.height()), (1024, 384));
    assert!(
        cluster.pixels().contains(&0xff00_b4ff) || cluster.pixels().contains(&0xff2a_3a4a),
        "the simulated gauge's ring"
    );
}

#[test]
fn a_malformed_layout_is_reported_with_file_line_and_field() {
    let dir = tmp("bad");
    let path = dir.join("bad.toml");
    std::fs::write(
        &path,
        "[[display]]\nname = \"d\"\nmode = \"800x480\"\n\n[[source]]\nname = \"ivi\"\nguest = \"ivi/0\"\ndisplay = \"dash\"\n",
    )
    .unwrap();
    for args in [
        vec!["check", path.to_str().unwrap()],
        vec!["run", "--layout", path.to_str().unwrap(), "--output", "headless"],
    ] {
        let out = cockpit(&args);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("bad.toml:8: source \"ivi\".display: unknown display \"dash\""),
            "{err}"
        );
    }
}

#[test]
fn screenshots_are_taken_on_request_and_every_n_presented_frames() {
    let dir = tmp("req");
    std::fs::write(dir.join("screenshot"), b"").unwrap();
    let out = cockpit(&[
        "sim",
        "--output",
        "headless",
        "--frames",
        "60",
        "--wayland-socket",
        "none",
        "--screenshot-dir",
        dir.to_str().unwrap(),
        "--screenshot-every",
        "5",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        dir.join("center-000001.png").exists(),
        "the requested screenshot, at the first frame"
    );
    assert!(!dir.join("screenshot").exists(), "the request was consumed");
    // Every 5th presented frame of each display (a display is presented when it changed).
    assert!(dir.join("center-000005.png").exists() && dir.join("cluster-000005.png").exists());
}

/// `cockpit ctl` against a running compositor: the HMI hides a source and
/// the screen shows it gone; hiding the cluster is refused with the reason;
/// a bad request gets an error, not a crash.
#[test]
fn cockpit_ctl_hides_a_source_and_is_refused_the_cluster() {
    let dir = tmp("ctl");
    let sock = dir.join("ctl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cockpit"))
        .args(["sim", "--output", "headless", "--seconds", "60", "--wayland-socket", "none"])
        .arg("--ctl-socket")
        .arg(&sock)
        .arg("--screenshot-dir")
        .arg(&dir)
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let t0 = std::time::Instant::now();
    while !sock.exists() {
        assert!(child.try_wait().unwrap().is_none(), "the compositor exited");
        assert!(t0.elapsed().as_secs() < 30, "no control socket");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _child = Kill(child);
    let ctl = |req: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_cockpit")).arg("ctl").arg("--socket").arg(&sock).args(req).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
    };
    // A screenshot on request: `center-<frame>.png`, the newest one.
    let shot = |name: &str| {
        let newest = || {
            std::fs::read_dir(&dir)
                .unwrap()
                .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                .filter(|n| n.starts_with("center-") && n.ends_with(".png"))
                .max()
        };
        let before = newest();
        std::fs::write(dir.join("screenshot"), b"").unwrap();
        let t0 = std::time::Instant::now();
        while dir.join("screenshot").exists() || newest() == before {
            assert!(t0.elapsed().as_secs() < 20, "no screenshot for {name}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        png_to_canvas(&std::fs::read(dir.join(newest().unwrap())).unwrap()).unwrap()
    };

    let (ok, out) = ctl(&["list"]);
    assert!(ok && out.contains("ivi shown") && out.contains("cluster shown"), "{out}");
    // (The simulated IVI's first frame may come a moment after the socket.)
    let t0 = std::time::Instant::now();
    while shot("before").get(500, 10) != 0xff1e_88e5 {
        assert!(t0.elapsed().as_secs() < 20, "the simulated IVI's top bar never showed");
    }

    let (ok, out) = ctl(&["hide", "ivi"]);
    assert!(ok, "{out}");
    assert_eq!(shot("hidden").get(500, 10), 0xff10_1018, "the IVI hidden: the display's background");

    let (ok, out) = ctl(&["hide", "cluster"]);
    assert!(!ok && out.contains("never hidden"), "{out}");
    let (ok, out) = ctl(&["opacity", "telltales", "0.1"]);
    assert!(!ok && out.contains("fixed"), "{out}");
    let (ok, out) = ctl(&["frobnicate", "ivi"]);
    assert!(!ok && out.contains("not a request"), "{out}");

    let (ok, out) = ctl(&["show", "ivi"]);
    assert!(ok, "{out}");
    assert_eq!(shot("shown").get(500, 10), 0xff1e_88e5);

    // Scenes from the layout switch several sources at once.
    let (ok, out) = ctl(&["scenes"]);
    assert!(ok && out.contains("reverse normal"), "{out}");
    let (ok, out) = ctl(&["scene", "reverse"]);
    assert!(ok, "{out}");
    assert_eq!(shot("reverse").get(500, 10), 0xff10_1018, "the reverse scene hides the IVI");
    let (ok, out) = ctl(&["scene", "normal"]);
    assert!(ok, "{out}");
    assert_eq!(shot("normal").get(500, 10), 0xff1e_88e5);
    let (ok, out) = ctl(&["scene", "parking"]);
    assert!(!ok && out.contains("no scene"), "{out}");

    // Idle connections filling every slot do not lock the HMI out: the
    // one idle longest makes room.
    // (Each is checked to hold a slot: one told "busy" is tried again.)
    let mut idle = Vec::new();
    let t0 = std::time::Instant::now();
    while idle.len() < 4 {
        assert!(t0.elapsed().as_secs() < 20, "could not fill the slots");
        let s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
        s.set_nonblocking(true).unwrap();
        let mut b = [0u8; 64];
        if !matches!(std::io::Read::read(&mut &s, &mut b), Ok(n) if n > 0) {
            idle.push(s);
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let (ok, out) = ctl(&["list"]);
    assert!(ok && out.contains("ivi shown"), "{out}");
    drop(idle);
}
