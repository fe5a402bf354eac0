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

use cockpit_core::compositor::compose_frame;
use cockpit_core::{Canvas, Compositor, Filter, Frame, Layout, PixelFormat, Placement, Rect, Rotation, Scaling};

use crate::pixman::Pixman;

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

/// Median time of `f` over at least 5 runs and about `budget`.
fn time(budget: Duration, mut f: impl FnMut()) -> Duration {
    f(); // warm caches and lazy set-up
    let mut v = Vec::new();
    let t0 = Instant::now();
    while v.len() < 5 || (t0.elapsed() < budget && v.len() < 1000) {
        let t = Instant::now();
        f();
        v.push(t.elapsed());
    }
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:8.3}", d.as_secs_f64() * 1e3)
}

struct Row {
    name: &'static str,
    ours: Duration,
    theirs: Option<Duration>,
    diff: Option<u32>,
}

/// Largest per-channel difference between our canvas and pixman's pixels.
fn max_diff(ours: &Canvas, theirs: &[u32]) -> u32 {
    ours.pixels()
        .iter()
        .zip(theirs)
        .map(|(&a, &b)| {
            (0..3)
                .map(|s| ((a >> (8 * s)) & 0xff).abs_diff((b >> (8 * s)) & 0xff))
                .max()
                .unwrap_or(0)
        })
        .max()
        .unwrap_or(0)
}

fn main() {
    let budget = Duration::from_millis(std::env::var("COCKPIT_BENCH_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(700));
    let px = Pixman::load();
    if let Err(e) = &px {
        println!("pixman: not available ({e}); install Debian's libpixman-1-0 for the comparison");
    }
    let px = px.ok();

    let cluster_px = pattern(1920, 720, 1, None);
    let ivi_px = pattern(1920, 1080, 2, None);
    let overlay_px = pattern(600, 200, 3, Some(0xc0));
    let cluster = frame(&cluster_px, 1920, 720, PixelFormat::Xrgb8888);
    let ivi = frame(&ivi_px, 1920, 1080, PixelFormat::Xrgb8888);
    let overlay = frame(&overlay_px, 600, 200, PixelFormat::Argb8888);
    let cl_disp = Rect::new(0, 0, 1920, 720);
    let ce_disp = Rect::new(0, 0, 1280, 720);
    let ov_rect = Rect::new(340, 460, 600, 200);
    let p_cluster = Placement::new(1920, 720, cl_disp, cl_disp, Rotation::R0, Scaling::Fit);
    let p_ivi = Placement::new(1920, 1080, ce_disp, ce_disp, Rotation::R0, Scaling::Fit);
    let p_overlay = Placement::new(600, 200, ov_rect, ce_disp, Rotation::R0, Scaling::Fit);
    let p_ivi_rot = Placement::new(
        1920,
        1080,
        Rect::new(0, 0, 720, 1280),
        Rect::new(0, 0, 720, 1280),
        Rotation::R90,
        Scaling::Stretch,
    );

    let mut rows = Vec::new();

    // 1. Cluster: opaque 1:1 copy.
    let mut c1 = Canvas::new(1920, 720, 0);
    let ours = time(budget, || {
        compose_frame(&mut c1, &cl_disp, &cluster, &p_cluster, Filter::Bilinear, 255);
    });
    let (theirs, diff) = px.as_ref().map_or((None, None), |p| {
        let mut src = cluster_px.clone();
        let mut dst = vec![0u32; 1920 * 720];
        let t = {
            let s = p.bits(pixman::X8R8G8B8, 1920, 720, &mut src, 1920);
            let mut d = p.bits(pixman::X8R8G8B8, 1920, 720, &mut dst, 1920);
            time(budget, || p.composite(pixman::OP_SRC, &s, None, &mut d, (0, 0, 1920, 720), (0, 0)))
        };
        (Some(t), Some(max_diff(&c1, &dst)))
    });
    rows.push(Row {
        name: "cluster 1920x720 opaque copy",
        ours,
        theirs,
        diff,
    });

    // 2-3. IVI: 1920x1080 scaled to 1280x720.
    for (name, filter, pf) in [
        ("ivi 1920x1080 -> 1280x720 bilinear", Filter::Bilinear, pixman::FILTER_BILINEAR),
        ("ivi 1920x1080 -> 1280x720 nearest", Filter::Nearest, pixman::FILTER_NEAREST),
    ] {
        let mut c = Canvas::new(1280, 720, 0);
        let ours = time(budget, || {
            compose_frame(&mut c, &ce_disp, &ivi, &p_ivi, filter, 255);
        });
        let (theirs, diff) = px.as_ref().map_or((None, None), |p| {
            let mut src = ivi_px.clone();
            let mut dst = vec![0u32; 1280 * 720];
            let t = {
                let mut s = p.bits(pixman::X8R8G8B8, 1920, 1080, &mut src, 1920);
                s.scale(1.5, 1.5, pf);
                let mut d = p.bits(pixman::X8R8G8B8, 1280, 720, &mut dst, 1280);
                time(budget, || p.composite(pixman::OP_SRC, &s, None, &mut d, (0, 0, 1280, 720), (0, 0)))
            };
            (Some(t), Some(max_diff(&c, &dst)))
        });
        rows.push(Row { name, ours, theirs, diff });
    }

    // 4. Translucent overlay: ARGB OVER at opacity 0.8 (pixman: a solid mask).
    let base = pattern(1280, 720, 4, None);
    let mut c4 = Canvas::new(1280, 720, 0);
    c4.pixels_mut().copy_from_slice(&base);
    let ours = time(budget, || {
        compose_frame(&mut c4, &ov_rect, &overlay, &p_overlay, Filter::Bilinear, 204);
    });
    let theirs = px.as_ref().map(|p| {
        let mut src = overlay_px.clone();
        let mut dst = base.clone();
        let s = p.bits(pixman::A8R8G8B8, 600, 200, &mut src, 600);
        let m = p.solid_alpha(0.8);
        let mut d = p.bits(pixman::X8R8G8B8, 1280, 720, &mut dst, 1280);
        time(budget, || {
            p.composite(pixman::OP_OVER, &s, Some(&m), &mut d, (340, 460, 600, 200), (-340, -460))
        })
    });
    // (Repeated OVER accumulates differently in each; no pixel comparison.)
    rows.push(Row {
        name: "overlay 600x200 ARGB over, opacity 0.8",
        ours,
        theirs,
        diff: None,
    });

    // 5. Rotation: the IVI turned 90 degrees onto a 720x1280 portrait display, 1.5x down.
    let mut c5 = Canvas::new(720, 1280, 0);
    let ours = time(budget, || {
        compose_frame(&mut c5, &Rect::new(0, 0, 720, 1280), &ivi, &p_ivi_rot, Filter::Nearest, 255);
    });
    let (theirs, diff) = px.as_ref().map_or((None, None), |p| {
        let mut src = ivi_px.clone();
        let mut dst = vec![0u32; 720 * 1280];
        let t = {
            // Turned clockwise: display (x, y) shows buffer (1.5 y, 1080 - 1.5 x).
            let mut s = p.bits(pixman::X8R8G8B8, 1920, 1080, &mut src, 1920);
            s.transform([[0.0, 1.5, 0.0], [-1.5, 0.0, 1080.0]], pixman::FILTER_NEAREST);
            let mut d = p.bits(pixman::X8R8G8B8, 720, 1280, &mut dst, 720);
            time(budget, || p.composite(pixman::OP_SRC, &s, None, &mut d, (0, 0, 720, 1280), (0, 0)))
        };
        (Some(t), Some(max_diff(&c5, &dst)))
    });
    rows.push(Row {
        name: "ivi rotated 90, 1.5x down, nearest",
        ours,
        theirs,
        diff,
    });

    // 6-7. Whole frames through the compositor, both displays.
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
    let full = time(budget, || {
        comp.damage_all();
        comp.render(Instant::now());
    });
    let pix_full = px.as_ref().map(|p| {
        let (mut a, mut b, mut o) = (cluster_px.clone(), ivi_px.clone(), overlay_px.clone());
        let (mut d1, mut d2) = (vec![0u32; 1920 * 720], vec![0u32; 1280 * 720]);
        let s1 = p.bits(pixman::X8R8G8B8, 1920, 720, &mut a, 1920);
        let mut s2 = p.bits(pixman::X8R8G8B8, 1920, 1080, &mut b, 1920);
        s2.scale(1.5, 1.5, pixman::FILTER_BILINEAR);
        let s3 = p.bits(pixman::A8R8G8B8, 600, 200, &mut o, 600);
        let m = p.solid_alpha(0.8);
        let mut t1 = p.bits(pixman::X8R8G8B8, 1920, 720, &mut d1, 1920);
        let mut t2 = p.bits(pixman::X8R8G8B8, 1280, 720, &mut d2, 1280);
        time(budget, || {
            p.composite(pixman::OP_SRC, &s1, None, &mut t1, (0, 0, 1920, 720), (0, 0));
            p.composite(pixman::OP_SRC, &s2, None, &mut t2, (0, 0, 1280, 720), (0, 0));
            p.composite(pixman::OP_OVER, &s3, Some(&m), &mut t2, (340, 460, 600, 200), (-340, -460));
        })
    });
    rows.push(Row {
        name: "full frame, both displays",
        ours: full,
        theirs: pix_full,
        diff: None,
    });

    // A 96x96 change in the IVI buffer: 64x64 on the display (66x66 with the bilinear margin).
    let damage = Rect::new(300, 300, 96, 96);
    let small = time(budget, || {
        hi.submit_damaged(ivi.clone(), &[damage]);
        comp.render(Instant::now());
    });
    let dmg_disp = Rect::new(199, 199, 66, 66);
    let pix_small = px.as_ref().map(|p| {
        let mut b = ivi_px.clone();
        let mut d2 = vec![0u32; 1280 * 720];
        let mut s2 = p.bits(pixman::X8R8G8B8, 1920, 1080, &mut b, 1920);
        s2.scale(1.5, 1.5, pixman::FILTER_BILINEAR);
        let mut t2 = p.bits(pixman::X8R8G8B8, 1280, 720, &mut d2, 1280);
        let r = dmg_disp;
        time(budget, || {
            p.composite(pixman::OP_SRC, &s2, None, &mut t2, (r.x, r.y, r.w, r.h), (r.x, r.y))
        })
    });
    rows.push(Row {
        name: "small damage (64x64 of the IVI)",
        ours: small,
        theirs: pix_small,
        diff: None,
    });

    println!(
        "cockpit composition, one core, median ms per frame ({} ms budget per figure)",
        budget.as_millis()
    );
    println!(
        "{:<42} {:>8} {:>8} {:>7} {:>9}",
        "operation", "cockpit", "pixman", "ratio", "max diff"
    );
    for r in &rows {
        let (t, ratio) = match r.theirs {
            Some(t) => (ms(t), format!("{:6.2}x", r.ours.as_secs_f64() / t.as_secs_f64())),
            None => ("       -".into(), "      -".into()),
        };
        let d = r.diff.map_or("-".into(), |d| d.to_string());
        println!("{:<42} {} {} {} {:>9}", r.name, ms(r.ours), t, ratio, d);
    }
    println!("(ratio = cockpit / pixman: below 1 is faster; max diff = largest channel difference of the two results)");
}
