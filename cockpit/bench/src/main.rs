//! `cockpit-bench`: what one frame of software composition costs on one
//! core, for the cockpit engine and for pixman doing the same operations on
//! the same pixels in the same run. Figures are printed, never asserted.
//!
//! The scene: a 1920x720 opaque cluster on a 1920x720 display, and on a
//! 1280x720 centre display a 1920x1080 IVI scaled down (bilinear) under a
//! translucent 600x200 ARGB overlay at opacity 0.8.
#![deny(unsafe_code)]

mod pixman;

use std::path::Path;
use std::time::{Duration, Instant};

use cockpit_core::compositor::Composer;
use cockpit_core::{Canvas, Compositor, Filter, Frame, Layout, PixelFormat, Placement, Rect, Rotation, Scaling};

use crate::pixman::{Img, Job, Pixman};

const LAYOUT: &str = r##"
[[display]]
name = "cluster"
mode = "1920x720"
[[display]]
name = "center"
mode = "1280x720"
[[source]]
name = "cluster"
guest = "cluster/0"
display = "cluster"
role = "cluster"
[[source]]
name = "ivi"
guest = "ivi/0"
display = "center"
[[source]]
name = "overlay"
app_id = "overlay"
display = "center"
rect = [340, 460, 600, 200]
z = 1
opacity = 0.8
"##;

/// A deterministic, busy picture (so nothing is trivially compressible).
fn pattern(w: u32, h: u32, seed: u32, alpha: Option<u32>) -> Vec<u32> {
    (0..w * h)
        .map(|i| {
            let (x, y) = (i % w, i / w);
            let rgb = (x.wrapping_mul(7) ^ y.wrapping_mul(13) ^ seed).wrapping_mul(2654435761) & 0xff_ffff;
            match alpha {
                None => 0xff00_0000 | rgb,
                // Premultiplied: every channel at most alpha.
                Some(a) => {
                    let c = |s: u32| ((rgb >> s) & 0xff) * a / 255;
                    (a << 24) | (c(16) << 16) | (c(8) << 8) | c(0)
                }
            }
        })
        .collect()
}

fn frame(px: &[u32], w: u32, h: u32, f: PixelFormat) -> Frame {
    Frame::new(std::sync::Arc::new(px.to_vec()), 0, w, h, w as usize * 4, f).unwrap()
}

/// Median times of `ours` and `theirs`, run alternately (so both see the
/// same machine load) at least 5 times each and for about `budget`.
fn time_pair(budget: Duration, mut ours: impl FnMut(), mut theirs: Option<impl FnMut()>) -> (Duration, Option<Duration>) {
    ours(); // warm caches and lazy set-up
    if let Some(t) = theirs.as_mut() {
        t();
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let t0 = Instant::now();
    while a.len() < 5 || (t0.elapsed() < budget && a.len() < 200_000) {
        let t = Instant::now();
        ours();
        a.push(t.elapsed());
        if let Some(f) = theirs.as_mut() {
            let t = Instant::now();
            f();
            b.push(t.elapsed());
        }
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let theirs = if b.is_empty() { None } else { Some(median(&mut b)) };
    (median(&mut a), theirs)
}

fn ms(d: Duration) -> String {
    format!("{:8.4}", d.as_secs_f64() * 1e3)
}

struct Row {
    name: &'static str,
    ours: Duration,
    theirs: Option<Duration>,
    /// Largest channel difference from pixman's result, and the largest allowed.
    diff: Option<(u32, u32)>,
}

/// Largest per-channel (RGB) difference between our pixels and pixman's
/// within `r` of two images `w` pixels wide.
fn max_diff_in(ours: &[u32], theirs: &[u32], w: i32, r: Rect) -> u32 {
    let mut m = 0;
    for y in r.y..r.bottom() {
        for x in r.x..r.right() {
            let i = (y * w + x) as usize;
            let (a, b) = (ours[i], theirs[i]);
            for s in 0..3 {
                m = m.max(((a >> (8 * s)) & 0xff).abs_diff((b >> (8 * s)) & 0xff));
            }
        }
    }
    m
}

/// Largest per-channel difference over the whole canvas.
fn max_diff(ours: &Canvas, theirs: &[u32]) -> u32 {
    max_diff_in(ours.pixels(), theirs, ours.width() as i32, ours.bounds())
}

fn main() {
    let budget = Duration::from_millis(std::env::var("COCKPIT_BENCH_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(700));
    let px = Pixman::load();
    if let Err(e) = &px {
        println!("pixman: not available ({e}); install Debian's libpixman-1-0 for the comparison");
    }
    let px = px.ok();
    let k = cockpit_kernels::Kernels::best();
    println!(
        "cockpit kernels: {} (available: {})",
        k.name(),
        cockpit_kernels::Kernels::available().iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
    );
    if let Some(p) = &px {
        #[cfg(target_arch = "x86_64")]
        let cpu = format!(
            "CPU has sse2 {}, ssse3 {}, avx2 {} (pixman's x86 paths are MMX, SSE2 and SSSE3)",
            is_x86_feature_detected!("sse2"),
            is_x86_feature_detected!("ssse3"),
            is_x86_feature_detected!("avx2")
        );
        #[cfg(not(target_arch = "x86_64"))]
        let cpu = String::from("pixman's NEON paths on arm");
        println!("pixman {}: {cpu}; PIXMAN_DISABLE={}", p.version, std::env::var("PIXMAN_DISABLE").unwrap_or_default());
    }

    let cluster_px = pattern(1920, 720, 1, None);
    let ivi_px = pattern(1920, 1080, 2, None);
    let overlay_px = pattern(600, 200, 3, Some(0xc0));
    let nav_px = pattern(1280, 720, 5, None);
    let cluster = frame(&cluster_px, 1920, 720, PixelFormat::Xrgb8888);
    let ivi = frame(&ivi_px, 1920, 1080, PixelFormat::Xrgb8888);
    let overlay = frame(&overlay_px, 600, 200, PixelFormat::Argb8888);
    let nav = frame(&nav_px, 1280, 720, PixelFormat::Xrgb8888);
    let cl_disp = Rect::new(0, 0, 1920, 720);
    let ce_disp = Rect::new(0, 0, 1280, 720);
    let portrait = Rect::new(0, 0, 720, 1280);
    let ov_rect = Rect::new(340, 460, 600, 200);
    let p_cluster = Placement::new(1920, 720, cl_disp, cl_disp, Rotation::R0, Scaling::Fit);
    let p_ivi = Placement::new(1920, 1080, ce_disp, ce_disp, Rotation::R0, Scaling::Fit);
    let p_overlay = Placement::new(600, 200, ov_rect, ce_disp, Rotation::R0, Scaling::Fit);
    let p_ivi_rot = Placement::new(1920, 1080, portrait, portrait, Rotation::R90, Scaling::Stretch);
    let p_nav_rot = Placement::new(1280, 720, portrait, portrait, Rotation::R90, Scaling::Stretch);
    let black = |w, h| Canvas::new(w, h, 0);
    let busy = Canvas::from_pixels(1280, 720, pattern(1280, 720, 4, None));
    let px = px.as_ref();
    let mut cp = Composer::default();
    let mut rows = Vec::new();

    rows.extend(measure(
        budget,
        px,
        "cluster 1920x720 opaque copy",
        0,
        &black(1920, 720),
        |c| {
            cp.compose(c, &cl_disp, &cluster, &p_cluster, Filter::Bilinear, 255);
        },
        |p, dst| {
            let mut j = p.job();
            let s = j.bits(pixman::X8R8G8B8, 1920, 720, cluster_px.clone());
            let d = j.bits(pixman::X8R8G8B8, 1920, 720, dst);
            j.step(pixman::OP_SRC, s, None, d, (0, 0, 1920, 720), (0, 0));
            (j, d)
        },
    ));
    // Rounding once (ours) against pixman's truncation: at most one step apart.
    for (name, filter, pf, allowed) in [
        ("ivi 1920x1080 -> 1280x720 bilinear", Filter::Bilinear, pixman::FILTER_BILINEAR, 1),
        ("ivi 1920x1080 -> 1280x720 nearest", Filter::Nearest, pixman::FILTER_NEAREST, 0),
    ] {
        rows.extend(measure(
            budget,
            px,
            name,
            allowed,
            &black(1280, 720),
            |c| {
            cp.compose(c, &ce_disp, &ivi, &p_ivi, filter, 255);
        },
            |p, dst| {
                let mut j = p.job();
                let s = j.bits(pixman::X8R8G8B8, 1920, 1080, ivi_px.clone());
                j.scale(s, 1.5, 1.5, pf);
                let d = j.bits(pixman::X8R8G8B8, 1280, 720, dst);
                j.step(pixman::OP_SRC, s, None, d, (0, 0, 1280, 720), (0, 0));
                (j, d)
            },
        ));
    }
    // Translucent overlay: ARGB OVER at opacity 0.8 (pixman: a solid mask),
    // the source read from its own origin.
    rows.extend(measure(
        budget,
        px,
        "overlay 600x200 ARGB over, opacity 0.8",
        0,
        &busy,
        |c| {
            cp.compose(c, &ov_rect, &overlay, &p_overlay, Filter::Bilinear, 204);
        },
        |p, dst| {
            let mut j = p.job();
            let s = j.bits(pixman::A8R8G8B8, 600, 200, overlay_px.clone());
            let m = j.solid_alpha(0.8);
            let d = j.bits(pixman::X8R8G8B8, 1280, 720, dst);
            j.step(pixman::OP_OVER, s, Some(m), d, (340, 460, 600, 200), (0, 0));
            (j, d)
        },
    ));
    // Turned clockwise, unscaled: display (x, y) shows buffer (y, 720 - x).
    rows.extend(measure(
        budget,
        px,
        "nav 1280x720 rotated 90, unscaled",
        0,
        &black(720, 1280),
        |c| {
            cp.compose(c, &portrait, &nav, &p_nav_rot, Filter::Nearest, 255);
        },
        |p, dst| {
            let mut j = p.job();
            let s = j.bits(pixman::X8R8G8B8, 1280, 720, nav_px.clone());
            j.transform(s, [[0.0, 1.0, 0.0], [-1.0, 0.0, 720.0]], pixman::FILTER_NEAREST);
            let d = j.bits(pixman::X8R8G8B8, 720, 1280, dst);
            j.step(pixman::OP_SRC, s, None, d, (0, 0, 720, 1280), (0, 0));
            (j, d)
        },
    ));
    // Turned and 1.5x down: display (x, y) shows buffer (1.5 y, 1080 - 1.5 x).
    rows.extend(measure(
        budget,
        px,
        "ivi rotated 90, 1.5x down, nearest",
        0,
        &black(720, 1280),
        |c| {
            cp.compose(c, &portrait, &ivi, &p_ivi_rot, Filter::Nearest, 255);
        },
        |p, dst| {
            let mut j = p.job();
            let s = j.bits(pixman::X8R8G8B8, 1920, 1080, ivi_px.clone());
            j.transform(s, [[0.0, 1.5, 0.0], [-1.5, 0.0, 1080.0]], pixman::FILTER_NEAREST);
            let d = j.bits(pixman::X8R8G8B8, 720, 1280, dst);
            j.step(pixman::OP_SRC, s, None, d, (0, 0, 720, 1280), (0, 0));
            (j, d)
        },
    ));

    // Whole frames through the compositor, both displays: everything, then
    // a 96x96 change in the IVI buffer (64x64 on the display, 65x65 with
    // the bilinear margin).
    let layout = Layout::parse(LAYOUT, Path::new("bench.toml")).unwrap();
    let mut comp = Compositor::new(layout);
    let src = comp.sources();
    let (hc, hi, ho) = (
        src.connect_by_name("cluster").unwrap(),
        src.connect_by_name("ivi").unwrap(),
        src.connect(&cockpit_core::SourceKey::AppId("overlay".into())).unwrap(),
    );
    hc.submit(cluster.clone());
    hi.submit(ivi.clone());
    ho.submit(overlay.clone());
    comp.render(Instant::now());
    let whole = |p| {
        let p: &Pixman = p;
        let mut j = p.job();
        let s1 = j.bits(pixman::X8R8G8B8, 1920, 720, cluster_px.clone());
        let s2 = j.bits(pixman::X8R8G8B8, 1920, 1080, ivi_px.clone());
        j.scale(s2, 1.5, 1.5, pixman::FILTER_BILINEAR);
        let s3 = j.bits(pixman::A8R8G8B8, 600, 200, overlay_px.clone());
        let m = j.solid_alpha(0.8);
        let t1 = j.bits(pixman::X8R8G8B8, 1920, 720, vec![0; 1920 * 720]);
        let t2 = j.bits(pixman::X8R8G8B8, 1280, 720, vec![0; 1280 * 720]);
        j.step(pixman::OP_SRC, s1, None, t1, (0, 0, 1920, 720), (0, 0));
        j.step(pixman::OP_SRC, s2, None, t2, (0, 0, 1280, 720), (0, 0));
        j.step(pixman::OP_OVER, s3, Some(m), t2, (340, 460, 600, 200), (0, 0));
        (j, t1, t2, s2, s3, m)
    };
    let (full_name, small_name) = ("full frame, both displays", "small damage (64x64 of the IVI)");
    let mut band_line = None;
    let frames = wanted(full_name) || wanted(small_name) || wanted("full frame, both displays, in bands");
    let mut full = px.filter(|_| frames).map(|p| whole(p));
    // The whole frame, timed against pixman's and compared with it.
    let full_frame = |comp: &mut Compositor, full: &mut Option<_>, budget: Duration, what: &str| {
        let (ours, theirs) = time_pair(
            budget,
            || {
                comp.damage_all();
                comp.render(Instant::now());
            },
            full.as_mut().map(|f: &mut (pixman::Job, _, _, _, _, _)| || f.0.run()),
        );
        let diff = full.as_ref().map(|(j, t1, t2, ..)| {
            let d = max_diff(&comp.snapshot(0), j.pixels(*t1)).max(max_diff(&comp.snapshot(1), j.pixels(*t2)));
            assert!(d <= 1, "{what}: differs from pixman by {d}");
            (d, 1)
        });
        (ours, theirs, diff)
    };
    let (ours, theirs, diff) = full_frame(&mut comp, &mut full, if wanted(full_name) { budget } else { Duration::ZERO }, full_name);
    if wanted(full_name) {
        rows.push(Row { name: full_name, ours, theirs, diff });
    }

    // The same frame in horizontal bands, one thread per core; compared
    // with pixman (one thread) and with our one-thread figure above.
    let bands = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    let band_name = "full frame, both displays, in bands";
    let one_thread = ours;
    if wanted(band_name) && bands > 1 {
        comp.set_bands(bands);
        let (ours, theirs, diff) = full_frame(&mut comp, &mut full, budget, band_name);
        comp.set_bands(1);
        band_line = Some(format!(
            "bands: {bands} threads compose the full frame in {} ms, one thread in {} ms ({:.2}x)",
            ms(ours).trim(),
            ms(one_thread).trim(),
            one_thread.as_secs_f64() / ours.as_secs_f64()
        ));
        rows.push(Row { name: band_name, ours, theirs, diff });
    }

    let damage = Rect::new(300, 300, 96, 96);
    let dmg_disp = Rect::new(199, 199, 66, 66);
    if let Some(f) = full.as_mut() {
        // pixman redraws just the damaged part of the IVI, and the overlay over it.
        let (j, _, t2, s2, s3, m) = f;
        j.steps_clear();
        let r = (dmg_disp.x, dmg_disp.y, dmg_disp.w, dmg_disp.h);
        j.step(pixman::OP_SRC, *s2, None, *t2, r, (r.0, r.1));
        let o = dmg_disp.intersect(&ov_rect);
        if !o.is_empty() {
            j.step(pixman::OP_OVER, *s3, Some(*m), *t2, (o.x, o.y, o.w, o.h), (o.x - ov_rect.x, o.y - ov_rect.y));
        }
    }
    let (ours, theirs) = time_pair(
        if wanted(small_name) { budget } else { Duration::ZERO },
        || {
            hi.submit_damaged(ivi.clone(), &[damage]);
            comp.render(Instant::now());
        },
        full.as_mut().map(|f| || f.0.run()),
    );
    let diff = full.as_ref().map(|(j, _, t2, ..)| {
        let d = max_diff_in(comp.snapshot(1).pixels(), j.pixels(*t2), 1280, ce_disp);
        assert!(d <= 1, "small damage: differs from pixman by {d}");
        (d, 1)
    });
    if wanted(small_name) {
        rows.push(Row { name: small_name, ours, theirs, diff });
    }

    println!(
        "cockpit composition, one thread unless it says bands, median ms per operation, alternating with pixman ({} ms budget per figure)",
        budget.as_millis()
    );
    println!("{:<42} {:>8} {:>8} {:>10} {:>12}", "operation", "cockpit", "pixman", "throughput", "max diff");
    for r in &rows {
        let (t, ratio) = match r.theirs {
            Some(t) => (ms(t), format!("{:8.2}x", t.as_secs_f64() / r.ours.as_secs_f64())),
            None => ("       -".into(), "         -".into()),
        };
        let d = r.diff.map_or("-".into(), |(d, a)| format!("{d} (<= {a})"));
        println!("{:<42} {} {} {} {:>12}", r.name, ms(r.ours), t, ratio, d);
    }
    if let Some(l) = &band_line {
        println!("{l}");
    }
    println!("(throughput = pixman's time / ours: 1.00x or more is at least pixman's throughput;");
    println!(" max diff = largest channel difference from pixman's result, checked against its bound)");
}

/// One operation, ours and pixman's: compared once from the same start
/// (`base`), then timed alternately.
fn measure<'p>(
    budget: Duration,
    px: Option<&'p Pixman>,
    name: &'static str,
    allowed: u32,
    base: &Canvas,
    mut ours: impl FnMut(&mut Canvas),
    theirs: impl Fn(&'p Pixman, Vec<u32>) -> (Job<'p>, Img),
) -> Option<Row> {
    if !wanted(name) {
        return None;
    }
    let diff = px.map(|p| {
        let mut mine = base.clone();
        ours(&mut mine);
        let (mut j, d) = theirs(p, base.pixels().to_vec());
        j.run();
        let dd = max_diff(&mine, j.pixels(d));
        assert!(dd <= allowed, "{name}: differs from pixman by {dd} (at most {allowed} allowed)");
        (dd, allowed)
    });
    let mut c = base.clone();
    let mut job = px.map(|p| theirs(p, base.pixels().to_vec()).0);
    let (o, t) = time_pair(budget, || ours(&mut c), job.as_mut().map(|j| move || j.run()));
    Some(Row { name, ours: o, theirs: t, diff })
}

/// Whether to run operation `name`: `COCKPIT_BENCH_ONLY` (a part of the
/// name) picks some, e.g. for a profiler.
fn wanted(name: &str) -> bool {
    std::env::var("COCKPIT_BENCH_ONLY").map_or(true, |only| name.contains(&only))
}
