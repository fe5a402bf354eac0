//! Wayland clients written with wayland-client: placement by app id,
//! frames, routed touches, and protocol errors for lying clients.

mod common;

use cockpit_core::{DisplayEvent, SourceId, SourceStatus};
use common::*;

const LAYOUT: &str = r##"
[[display]]
name = "center"
mode = "64x48"
background = "#000040"

[[source]]
name = "nav"
app_id = "org.example.nav"
display = "center"
rect = [0, 0, 32, 48]
scaling = "integer"

[[source]]
name = "radio"
app_id = "org.example.radio"
display = "center"
rect = [32, 0, 32, 48]
rotation = 90
scaling = "stretch"
filter = "nearest"
"##;

#[test]
fn a_client_is_placed_by_app_id_and_its_frames_appear() {
    let h = Harness::start(LAYOUT);
    let mut c = TestClient::connect(&h.socket);
    let (surface, _top) = c.toplevel("org.example.nav");
    assert_eq!(c.seen.configure, Some((32, 48)), "configured to its layout rectangle");
    let px: Vec<u32> = (0..16 * 16).map(|i| if i % 16 < 8 { 0xff_ff0000 } else { 0xff_00ff00 }).collect();
    c.show(&surface, 16, 16, &px).unwrap();
    h.wait_for("the frame to be shown", 10, |comp, _| {
        comp.status(SourceId(0)) == SourceStatus::Live
    });
    let shot = h.with(|comp, _| comp.snapshot(0));
    // 16x16 at integer scale 2 in 32x48: rows 8..40, red on the left half.
    assert_eq!(shot.get(4, 20), 0xffff_0000);
    assert_eq!(shot.get(28, 20), 0xff00_ff00);
    assert_eq!(shot.get(4, 2), 0xff00_0040, "letterbox shows the background");
    assert_eq!(h.with(|_, w| w.placed_app_ids()), vec!["org.example.nav".to_string()]);

    // Frame callbacks fire once the frame was presented.
    let t0 = std::time::Instant::now();
    while c.seen.frames_done == 0 && t0.elapsed().as_secs() < 5 {
        c.roundtrip().unwrap();
    }
    assert!(c.seen.frames_done > 0);
}

#[test]
fn touches_reach_the_client_in_its_own_coordinates() {
    let h = Harness::start(LAYOUT);
    let mut c = TestClient::connect(&h.socket);
    let (surface, _top) = c.toplevel("org.example.radio");
    assert_eq!(c.seen.configure, Some((48, 32)), "a rotated source is asked for a turned buffer");
    c.show(&surface, 48, 32, &vec![0xff_ffffff; 48 * 32]).unwrap();
    h.wait_for("the frame", 10, |comp, _| comp.status(SourceId(1)) == SourceStatus::Live);
    // Display (34.5, 1.5) is near the top-left of the turned picture: the
    // buffer's bottom-left, i.e. (1.5, 32 - 2.5).
    h.with(|comp, _| {
        comp.input(&DisplayEvent::TouchDown {
            display: 0,
            id: 3,
            x: 34.5,
            y: 1.5,
        });
        comp.input(&DisplayEvent::TouchFrame);
    });
    let t0 = std::time::Instant::now();
    while c.seen.touches.is_empty() && t0.elapsed().as_secs() < 5 {
        c.roundtrip().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(c.seen.touches, vec![(3, 1.5, 29.5)]);
}

#[test]
fn a_client_lying_about_its_buffer_gets_a_protocol_error_and_others_carry_on() {
    let h = Harness::start(LAYOUT);
    let mut good = TestClient::connect(&h.socket);
    let (gs, _gt) = good.toplevel("org.example.nav");
    good.show(&gs, 32, 48, &vec![0xff_ff0000; 32 * 48]).unwrap();

    // Claims a 4096-byte pool over a 64-byte file.
    let mut liar = TestClient::connect(&h.socket);
    let (ls, _lt) = liar.toplevel("org.example.radio");
    let buf = liar.buffer(32, 32, &[0; 16], 4096, 64);
    ls.attach(Some(&buf), 0, 0);
    ls.commit();
    let err = liar.roundtrip().unwrap_err();
    assert!(err.contains("larger than the 64 bytes its fd holds"), "{err}");

    // Claims a buffer larger than its (honest) pool.
    let mut liar2 = TestClient::connect(&h.socket);
    let (ls2, _lt2) = liar2.toplevel("org.example.radio");
    let buf = {
        let fd = rustix::fs::memfd_create("b", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&fd, 1024).unwrap();
        use std::os::fd::AsFd;
        let pool = liar2.shm.create_pool(fd.as_fd(), 1024, &liar2.qh, ());
        pool.create_buffer(0, 64, 64, 256, wayland_client::protocol::wl_shm::Format::Xrgb8888, &liar2.qh, ())
    };
    ls2.attach(Some(&buf), 0, 0);
    ls2.commit();
    let err = liar2.roundtrip().unwrap_err();
    assert!(err.contains("needs 16384 bytes; the pool has 1024"), "{err}");

    // A pool on something that is not memory: a socket, whose reads
    // would wait for its other end (as a FUSE file's would wait on its
    // server) and block the compositor.
    let mut liar3 = TestClient::connect(&h.socket);
    let (_ls3, _lt3) = liar3.toplevel("org.example.radio");
    let (sock, _peer) = std::os::unix::net::UnixStream::pair().unwrap();
    {
        use std::os::fd::AsFd;
        let _pool = liar3.shm.create_pool(sock.as_fd(), 4096, &liar3.qh, ());
    }
    let err = liar3.roundtrip().unwrap_err();
    assert!(err.contains("not shared memory"), "{err}");

    // The honest client is still served and still shown.
    good.show(&gs, 32, 48, &vec![0xff_00ff00; 32 * 48]).unwrap();
    h.wait_for("the honest client's next frame", 10, |comp, _| {
        comp.snapshot(0).get(10, 10) == 0xff00_ff00
    });
    h.wait_for("the liars to be gone", 10, |_, w| w.client_count() == 1);
    assert_eq!(
        h.with(|comp, _| comp.status(SourceId(1))),
        SourceStatus::Waiting,
        "no liar ever showed a frame"
    );
}

#[test]
fn a_client_truncating_its_pool_after_creating_a_buffer_is_caught_at_commit() {
    let h = Harness::start(LAYOUT);
    let mut c = TestClient::connect(&h.socket);
    let (s, _t) = c.toplevel("org.example.nav");
    let fd = rustix::fs::memfd_create("b", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    rustix::fs::ftruncate(&fd, 32 * 48 * 4).unwrap();
    use std::os::fd::AsFd;
    let pool = c.shm.create_pool(fd.as_fd(), 32 * 48 * 4, &c.qh, ());
    let buf = pool.create_buffer(0, 32, 48, 128, wayland_client::protocol::wl_shm::Format::Xrgb8888, &c.qh, ());
    c.roundtrip().unwrap();
    rustix::fs::ftruncate(&fd, 100).unwrap();
    s.attach(Some(&buf), 0, 0);
    s.commit();
    // The pool is read (and the lie found) when the compositor copies
    // commits in, between frames: a roundtrip may come back before that.
    let t0 = std::time::Instant::now();
    let err = loop {
        match c.roundtrip() {
            Err(e) => break e,
            Ok(()) => assert!(t0.elapsed().as_secs() < 10, "the truncated pool was never caught"),
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    assert!(err.contains("the fd holds 100"), "{err}");
    // The compositor is alive and well.
    assert_eq!(h.with(|comp, _| comp.status(SourceId(0))), SourceStatus::Waiting);
}

#[test]
fn a_client_vanishing_leaves_its_fallback_and_the_rest_running() {
    let h = Harness::start(LAYOUT);
    let mut a = TestClient::connect(&h.socket);
    let (sa, _ta) = a.toplevel("org.example.nav");
    a.show(&sa, 32, 48, &vec![0xff_ff0000; 32 * 48]).unwrap();
    let mut b = TestClient::connect(&h.socket);
    let (sb, _tb) = b.toplevel("org.example.radio");
    b.show(&sb, 48, 32, &vec![0xff_0000ff; 48 * 32]).unwrap();
    h.wait_for("both shown", 10, |comp, _| {
        comp.status(SourceId(0)) == SourceStatus::Live && comp.status(SourceId(1)) == SourceStatus::Live
    });
    drop(a);
    h.wait_for("nav to vanish", 10, |comp, _| comp.status(SourceId(0)) == SourceStatus::Vanished);
    b.show(&sb, 48, 32, &vec![0xff_00ff00; 48 * 32]).unwrap();
    h.wait_for("radio's next frame", 10, |comp, _| comp.snapshot(0).get(40, 10) == 0xff00_ff00);
}

#[test]
fn pointer_and_keyboard_reach_the_client_under_the_pointer() {
    let h = Harness::start(LAYOUT);
    let mut c = TestClient::connect(&h.socket);
    let (surface, _top) = c.toplevel("org.example.nav");
    c.show(&surface, 16, 16, &vec![0xff_ffffff; 256]).unwrap();
    h.wait_for("the frame", 10, |comp, _| comp.status(SourceId(0)) == SourceStatus::Live);
    // Integer scale 2, picture at (0, 8): display (10, 20) is buffer (5, 6).
    h.with(|comp, _| {
        comp.input(&DisplayEvent::PointerMotion {
            display: 0,
            x: 10.0,
            y: 20.0,
        });
        comp.input(&DisplayEvent::PointerMotion {
            display: 0,
            x: 12.0,
            y: 20.0,
        });
        comp.input(&DisplayEvent::Button {
            code: 0x110,
            pressed: true,
        });
        comp.input(&DisplayEvent::Button {
            code: 0x110,
            pressed: false,
        });
        comp.input(&DisplayEvent::Key { code: 30, pressed: true });
        // Shift down and up: the modifiers follow from the keymap.
        comp.input(&DisplayEvent::Key { code: 42, pressed: true });
        comp.input(&DisplayEvent::Key { code: 42, pressed: false });
        comp.input(&DisplayEvent::PointerMotion {
            display: 0,
            x: 60.0,
            y: 20.0,
        });
    });
    let want = [
        "keymap xkb",
        "enter 5 6",
        "motion 6 6",
        "kbd enter",
        "mods 0 0",
        "button 272 pressed",
        "button 272 released",
        "key 30 pressed",
        "key 42 pressed",
        "mods 1 0",
        "key 42 released",
        "mods 0 0",
        "leave",
    ];
    let t0 = std::time::Instant::now();
    while c.seen.events.len() < want.len() && t0.elapsed().as_secs() < 5 {
        c.roundtrip().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(c.seen.events, want);
}

/// A client redrawing small parts of one buffer and damaging only those:
/// after every commit the whole picture on screen is the client's (the
/// compositor copies damage into the picture it kept two commits back, so
/// it must also catch up the commit before; a miss shows a stale square).
#[test]
fn damaged_commits_keep_the_whole_picture_current() {
    use std::os::fd::AsFd;
    use std::os::unix::fs::FileExt;

    let h = Harness::start(LAYOUT);
    let mut c = TestClient::connect(&h.socket);
    let (surface, _top) = c.toplevel("org.example.nav");
    let fd = rustix::fs::memfd_create("damage-test", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    rustix::fs::ftruncate(&fd, 16 * 16 * 4).unwrap();
    let file = std::fs::File::from(fd);
    let pool = c.shm.create_pool(file.as_fd(), 16 * 16 * 4, &c.qh, ());
    let buf = pool.create_buffer(0, 16, 16, 64, wayland_client::protocol::wl_shm::Format::Xrgb8888, &c.qh, ());
    let mut px = vec![0xff_202020u32; 256];
    let write = |px: &[u32]| {
        let bytes: Vec<u8> = px.iter().flat_map(|p| p.to_le_bytes()).collect();
        file.write_all_at(&bytes, 0).unwrap();
    };
    write(&px);
    surface.attach(Some(&buf), 0, 0);
    surface.damage_buffer(0, 0, 16, 16);
    surface.commit();
    c.roundtrip().unwrap();
    for k in 0..8u32 {
        // A 3x3 square at a new place each time, in a new colour.
        let (x0, y0) = ((k * 5) % 14, (k * 3) % 14);
        for y in y0..y0 + 3 {
            for x in x0..x0 + 3 {
                px[(y * 16 + x) as usize] = 0xff_000000 | (0x30 + k * 0x18) << 16 | (k * 0x1f) & 0xff;
            }
        }
        write(&px);
        surface.attach(Some(&buf), 0, 0);
        surface.damage_buffer(x0 as i32, y0 as i32, 3, 3);
        surface.commit();
        c.roundtrip().unwrap();
        let want = px.clone();
        // 16x16 at integer scale 2 in 32x48: buffer (x, y) at display (2x, 8 + 2y).
        // Composed afresh from the picture the compositor holds, not
        // just where this commit's damage says.
        h.wait_for(&format!("commit {k} on screen, whole"), 10, move |comp, _| {
            comp.damage_all();
            comp.render(std::time::Instant::now());
            let shot = comp.snapshot(0);
            (0..16u32).all(|y| (0..16u32).all(|x| shot.get(2 * x, 8 + 2 * y) == want[(y * 16 + x) as usize]))
        });
    }
    pool.destroy();
}

/// `wl_output` describes each display as the layout does (mode, refresh,
/// physical size, name), and a surface is told when it appears on its
/// display and when it leaves it.
#[test]
fn outputs_describe_the_displays_and_surfaces_enter_theirs() {
    use wayland_client::Proxy;
    let layout = format!("{LAYOUT}\n[[display]]\nname = \"cluster\"\nmode = \"40x20@30\"\nsize_mm = [292, 110]\n");
    let h = Harness::start(&layout);
    let mut c = TestClient::connect(&h.socket);
    let outs = c.outputs();
    assert_eq!(outs.len(), 2, "one wl_output per display");
    let (centre, cluster) = (&outs[0], &outs[1]);
    c.roundtrip().unwrap();
    let (a, b) = (centre.id().protocol_id(), cluster.id().protocol_id());
    for want in [
        format!("{a} mode 64x48@60000"),
        format!("{a} geometry 0x0mm"),
        format!("{a} name center"),
        format!("{b} mode 40x20@30000"),
        format!("{b} geometry 292x110mm"),
        format!("{b} name cluster"),
        format!("{b} scale 1"),
        format!("{b} done"),
    ] {
        assert!(c.seen.outputs.contains(&want), "no `{want}` in {:?}", c.seen.outputs);
    }

    let (surface, _top) = c.toplevel("org.example.nav");
    c.show(&surface, 16, 16, &[0xff_ff0000; 256]).unwrap();
    let t0 = std::time::Instant::now();
    while !c.seen.outputs.contains(&format!("enter {a}")) {
        assert!(t0.elapsed().as_secs() < 10, "no enter: {:?}", c.seen.outputs);
        c.roundtrip().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(!c.seen.outputs.contains(&format!("enter {b}")), "entered a display it is not on");
    // Unmapped (a null buffer): it leaves.
    surface.attach(None, 0, 0);
    surface.commit();
    let t0 = std::time::Instant::now();
    while !c.seen.outputs.contains(&format!("leave {a}")) {
        assert!(t0.elapsed().as_secs() < 10, "no leave: {:?}", c.seen.outputs);
        c.roundtrip().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// `wp_viewporter`: the crop is what is shown, the destination size is the
/// surface's coordinate space for input, and a crop outside the buffer is
/// the protocol error it should be.
#[test]
fn a_viewport_crops_the_picture_and_scales_input_to_its_destination() {
    let h = Harness::start(LAYOUT);
    let mut c = TestClient::connect(&h.socket);
    let vpr = c.viewporter();
    let (surface, _top) = c.toplevel("org.example.nav");
    // 32x32: an 8-pixel red border round a 16x16 pattern.
    let px: Vec<u32> = (0..32 * 32u32)
        .map(|i| {
            let (x, y) = (i % 32, i / 32);
            if (8..24).contains(&x) && (8..24).contains(&y) { 0xff_000000 | (x * 9) << 8 | y * 11 } else { 0xff_ff0000 }
        })
        .collect();
    let vp = vpr.get_viewport(&surface, &c.qh, ());
    vp.set_source(8.0, 8.0, 16.0, 16.0);
    vp.set_destination(64, 64);
    c.show(&surface, 32, 32, &px).unwrap();
    // The 16x16 crop at integer scale 2 in 32x48: crop (x, y) at display (2x, 8 + 2y).
    let want = px.clone();
    h.wait_for("the cropped picture", 10, move |comp, _| {
        let shot = comp.snapshot(0);
        (0..16u32).all(|y| (0..16u32).all(|x| shot.get(2 * x, 8 + 2 * y) == want[((y + 8) * 32 + x + 8) as usize]))
    });
    // Display (10.5, 20.5): crop pixel (5.25, 6.25); the 64x64 surface has 4 per crop pixel.
    h.with(|comp, _| {
        comp.input(&DisplayEvent::TouchDown { display: 0, id: 1, x: 10.5, y: 20.5 });
        comp.input(&DisplayEvent::TouchFrame);
    });
    let t0 = std::time::Instant::now();
    while c.seen.touches.is_empty() && t0.elapsed().as_secs() < 5 {
        c.roundtrip().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(c.seen.touches, vec![(1, 21.0, 25.0)]);

    // Another client cropping outside its buffer gets wp_viewport.out_of_buffer.
    let mut bad = TestClient::connect(&h.socket);
    let vpr = bad.viewporter();
    let (s2, _t2) = bad.toplevel("org.example.radio");
    let vp = vpr.get_viewport(&s2, &bad.qh, ());
    vp.set_source(20.0, 20.0, 16.0, 16.0);
    let err = bad.show(&s2, 32, 32, &px).err().or_else(|| bad.roundtrip().err());
    assert!(err.is_some_and(|e| e.contains("outside")), "a crop outside the buffer is refused");
    // The first client carries on.
    c.roundtrip().unwrap();
}

/// `wp_presentation`: a commit's feedback says when its picture was
/// presented (monotonic clock, the display's refresh, rising frame
/// numbers); a commit replaced before it was shown, or one of a surface the
/// layout does not place, is discarded.
#[test]
fn presentation_feedback_reports_shown_commits_and_discards_the_rest() {
    use wayland_protocols::wp::presentation_time::client::wp_presentation::WpPresentation;
    let h = Harness::start(LAYOUT);
    let mut c = TestClient::connect(&h.socket);
    let pres: WpPresentation = c.globals.bind(&c.qh, 1..=1, ()).expect("wp_presentation is offered");
    let (surface, _top) = c.toplevel("org.example.nav");
    c.roundtrip().unwrap();
    assert!(c.seen.presentation.contains(&"clock 1".to_string()), "CLOCK_MONOTONIC: {:?}", c.seen.presentation);
    let size = 16 * 16 * 4;
    let before = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    // Commits 1 and 2 in one go: 2 replaces 1 before the compositor looks.
    for tag in [1u32, 2] {
        let buf = c.buffer(16, 16, &[0xff_00ff00; 256], size, size as u64);
        surface.attach(Some(&buf), 0, 0);
        surface.damage_buffer(0, 0, 16, 16);
        pres.feedback(&surface, &c.qh, tag);
        surface.commit();
    }
    c.conn.flush().unwrap();
    let wait = |c: &mut TestClient, what: &str, n: usize| {
        let t0 = std::time::Instant::now();
        while c.seen.presentation.len() < n {
            assert!(t0.elapsed().as_secs() < 10, "no {what}: {:?}", c.seen.presentation);
            c.roundtrip().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    };
    wait(&mut c, "feedback", 3);
    assert_eq!(c.seen.presentation[1], "1 discarded");
    let p2 = &c.seen.presentation[2].clone();
    assert!(p2.starts_with("2 presented ") && p2.contains("refresh 16666666"), "{p2}");
    let secs: f64 = p2.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert!(secs >= (before.tv_sec as u32) as f64, "a monotonic time after the commit: {p2}");
    let seq = |line: &str| line.rsplit(' ').next().unwrap().parse::<u64>().unwrap();

    let buf = c.buffer(16, 16, &[0xff_0000ff; 256], size, size as u64);
    surface.attach(Some(&buf), 0, 0);
    surface.damage_buffer(0, 0, 16, 16);
    pres.feedback(&surface, &c.qh, 3);
    surface.commit();
    wait(&mut c, "feedback for commit 3", 4);
    assert!(c.seen.presentation[3].starts_with("3 presented "), "{:?}", c.seen.presentation);
    assert!(seq(&c.seen.presentation[3]) > seq(p2), "frame numbers rise");

    // A toplevel the layout does not place: never shown, so discarded.
    let (other, _t) = c.toplevel("org.example.unplaced");
    let buf = c.buffer(16, 16, &[0xff_0000ff; 256], size, size as u64);
    other.attach(Some(&buf), 0, 0);
    pres.feedback(&other, &c.qh, 4);
    other.commit();
    wait(&mut c, "feedback for the unplaced surface", 5);
    assert_eq!(c.seen.presentation[4], "4 discarded");
}

/// However often a client commits between two frames, at most 64 answers
/// wait per surface: the rest are discarded at once, and every feedback
/// gets an answer.
#[test]
fn presentation_feedback_waiting_per_surface_is_bounded() {
    use wayland_protocols::wp::presentation_time::client::wp_presentation::WpPresentation;
    let h = Harness::start(LAYOUT);
    let mut c = TestClient::connect(&h.socket);
    let pres: WpPresentation = c.globals.bind(&c.qh, 1..=1, ()).expect("wp_presentation is offered");
    let (surface, _top) = c.toplevel("org.example.nav");
    c.show(&surface, 16, 16, &[0xff_00ff00; 256]).unwrap();
    h.wait_for("the frame", 10, |comp, _| comp.status(SourceId(0)) == SourceStatus::Live);
    c.seen.presentation.clear();
    for tag in 0..200u32 {
        pres.feedback(&surface, &c.qh, tag);
        surface.commit();
    }
    c.conn.flush().unwrap();
    let t0 = std::time::Instant::now();
    while c.seen.presentation.iter().filter(|l| !l.starts_with("clock")).count() < 200 {
        assert!(t0.elapsed().as_secs() < 10, "not every feedback was answered: {}", c.seen.presentation.len());
        c.roundtrip().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let presented = c.seen.presentation.iter().filter(|l| l.contains("presented")).count();
    assert!((1..=64).contains(&presented), "{presented} presented");
}

/// Frame callbacks come from the display a surface is on: a display that
/// presents no frame asks its clients for none, and a surface the HMI hid
/// is not asked to draw until it is shown again.
#[test]
fn frame_callbacks_follow_the_display_a_surface_is_on() {
    const TWO: &str = r##"
[[display]]
name = "a"
mode = "32x32"

[[display]]
name = "b"
mode = "32x32@30"

[[source]]
name = "on-a"
app_id = "org.example.a"
display = "a"
rect = [0, 0, 32, 32]

[[source]]
name = "on-b"
app_id = "org.example.b"
display = "b"
rect = [0, 0, 32, 32]
"##;
    let h = Harness::start(TWO);
    let mut a = TestClient::connect(&h.socket);
    let mut b = TestClient::connect(&h.socket);
    let (sa, _ta) = a.toplevel("org.example.a");
    let (sb, _tb) = b.toplevel("org.example.b");
    a.show(&sa, 32, 32, &vec![0xff_ff0000; 32 * 32]).unwrap();
    b.show(&sb, 32, 32, &vec![0xff_00ff00; 32 * 32]).unwrap();
    let wait_done = |c: &mut TestClient, n: u32, what: &str| {
        let t0 = std::time::Instant::now();
        while c.seen.frames_done < n {
            assert!(t0.elapsed().as_secs() < 5, "no frame callback {what}");
            c.roundtrip().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    };
    wait_done(&mut a, 1, "for a");
    wait_done(&mut b, 1, "for b");

    // Only display "a" presents: b's next frame callback waits.
    *h.presenting.lock().unwrap() = Some(vec![0]);
    std::thread::sleep(std::time::Duration::from_millis(50));
    a.show(&sa, 32, 32, &vec![0xff_ff0000; 32 * 32]).unwrap();
    b.show(&sb, 32, 32, &vec![0xff_00ff00; 32 * 32]).unwrap();
    wait_done(&mut a, 2, "for a while a presents");
    for _ in 0..20 {
        b.roundtrip().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(b.seen.frames_done, 1, "b was asked to draw though its display presented nothing");
    *h.presenting.lock().unwrap() = None;
    wait_done(&mut b, 2, "for b once its display presents");

    // Hidden by the HMI: not asked to draw until shown.
    h.with(|c, _| c.set_shown("on-a", false)).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    a.show(&sa, 32, 32, &vec![0xff_ff0000; 32 * 32]).unwrap();
    for _ in 0..20 {
        a.roundtrip().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(a.seen.frames_done, 2, "a hidden surface was asked to draw");
    h.with(|c, _| c.set_shown("on-a", true)).unwrap();
    wait_done(&mut a, 3, "for a once shown again");
}

/// A client taking over a source the pointer is on gets its own enter,
/// never an event naming the previous client's surface (which would stop
/// the compositor).
#[test]
fn a_source_taken_over_under_the_pointer_gets_a_clean_enter() {
    let h = Harness::start(LAYOUT);
    let mut first = TestClient::connect(&h.socket);
    let (s1, _t1) = first.toplevel("org.example.nav");
    first.show(&s1, 16, 16, &vec![0xff_ffffff; 256]).unwrap();
    h.wait_for("the first client's frame", 10, |comp, _| comp.status(SourceId(0)) == SourceStatus::Live);
    h.with(|comp, _| comp.input(&DisplayEvent::PointerMotion { display: 0, x: 10.0, y: 20.0 }));
    let t0 = std::time::Instant::now();
    while !first.seen.events.iter().any(|e| e.starts_with("enter")) && t0.elapsed().as_secs() < 5 {
        first.roundtrip().unwrap();
    }
    // Unmapped: the source is free; another client takes it.
    s1.attach(None, 0, 0);
    s1.commit();
    first.roundtrip().unwrap();
    let mut second = TestClient::connect(&h.socket);
    let (s2, _t2) = second.toplevel("org.example.nav");
    second.show(&s2, 16, 16, &vec![0xff_00ff00; 256]).unwrap();
    h.wait_for("the second client's frame", 10, |comp, _| comp.snapshot(0).get(10, 20) == 0xff00_ff00);
    h.with(|comp, _| comp.input(&DisplayEvent::PointerMotion { display: 0, x: 12.0, y: 20.0 }));
    let t0 = std::time::Instant::now();
    while !second.seen.events.iter().any(|e| e.starts_with("enter")) && t0.elapsed().as_secs() < 5 {
        second.roundtrip().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(second.seen.events.iter().any(|e| e == "enter 6 6"), "{:?}", second.seen.events);
    assert!(!second.seen.events.iter().any(|e| e == "leave"), "{:?}", second.seen.events);
    assert_eq!(h.with(|_, w| w.client_count()), 2, "the compositor and both clients carry on");
}
