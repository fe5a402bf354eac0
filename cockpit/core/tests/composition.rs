//! Pixel-exact composition: scaling, rotation, alpha, z-order, formats,
//! damage and direct scanout, as a driver would see them on the display.

mod common;

use std::time::Instant;

use cockpit_core::{DisplayImage, Frame, PixelFormat};
use common::*;

/// [A B]
/// [C D]
fn quad() -> Frame {
    frame(2, 2, &[A, B, C, D])
}

#[test]
fn integer_scaling_makes_sharp_blocks_centred() {
    let mut c = compositor("[[source]]\nname = \"s\"\nguest = \"g/0\"\ndisplay = \"d\"\nrect = [1, 1, 7, 7]\nscaling = \"integer\"\n");
    let s = c.sources().connect_by_name("s").unwrap();
    s.submit(quad());
    c.render(Instant::now());
    // 7x7 holds 3x3 blocks: a 6x6 picture centred at (1 + 0, 1 + 0) (the odd pixel is left over).
    let expect = expect_with(
        &[
            &[A, A, A, B, B, B],
            &[A, A, A, B, B, B],
            &[A, A, A, B, B, B],
            &[C, C, C, D, D, D],
            &[C, C, C, D, D, D],
            &[C, C, C, D, D, D],
        ],
        1,
        1,
    );
    assert_eq!(rows(&c.snapshot(0)), expect);
}

#[test]
fn fit_letterboxes_and_fill_crops_with_nearest_sampling() {
    let wide = frame(4, 2, &[A, B, C, D, E, F, A, B]);
    let mut c = compositor("[[source]]\nname = \"s\"\nguest = \"g/0\"\ndisplay = \"d\"\nscaling = \"fit\"\nfilter = \"nearest\"\n");
    let s = c.sources().connect_by_name("s").unwrap();
    s.submit(wide.clone());
    c.render(Instant::now());
    let expect = expect_with(
        &[
            &[A, A, B, B, C, C, D, D],
            &[A, A, B, B, C, C, D, D],
            &[E, E, F, F, A, A, B, B],
            &[E, E, F, F, A, A, B, B],
        ],
        0,
        2,
    );
    assert_eq!(rows(&c.snapshot(0)), expect, "fit: 4x2 doubled, centred vertically");

    let mut c = compositor(
        "[[source]]\nname = \"s\"\nguest = \"g/0\"\ndisplay = \"d\"\nrect = [0, 0, 4, 4]\nscaling = \"fill\"\nfilter = \"nearest\"\n",
    );
    let s = c.sources().connect_by_name("s").unwrap();
    s.submit(wide);
    c.render(Instant::now());
    let expect = expect_with(&[&[B, B, C, C], &[B, B, C, C], &[F, F, A, A], &[F, F, A, A]], 0, 0);
    assert_eq!(rows(&c.snapshot(0)), expect, "fill: doubled to 8x4, middle 4 columns kept");
}

/// [A B C]
/// [D E F]
fn six() -> Frame {
    frame(3, 2, &[A, B, C, D, E, F])
}

fn rotated(deg: u32) -> Vec<Vec<u32>> {
    let (w, h) = if deg.is_multiple_of(180) { (3, 2) } else { (2, 3) };
    let mut c = compositor(&format!(
        "[[source]]\nname = \"s\"\nguest = \"g/0\"\ndisplay = \"d\"\nrect = [2, 3, {w}, {h}]\nrotation = {deg}\nscaling = \"stretch\"\n"
    ));
    let s = c.sources().connect_by_name("s").unwrap();
    s.submit(six());
    c.render(Instant::now());
    rows(&c.snapshot(0))
}

#[test]
fn rotation_turns_the_picture_clockwise() {
    assert_eq!(rotated(0), expect_with(&[&[A, B, C], &[D, E, F]], 2, 3));
    assert_eq!(rotated(90), expect_with(&[&[D, A], &[E, B], &[F, C]], 2, 3));
    assert_eq!(rotated(180), expect_with(&[&[F, E, D], &[C, B, A]], 2, 3));
    assert_eq!(rotated(270), expect_with(&[&[C, F], &[B, E], &[A, D]], 2, 3));
}

/// Unscaled quarter turns of a buffer big enough for the vector
/// transposes: every display pixel is the buffer pixel the turn puts there.
#[test]
fn unscaled_quarter_turns_put_every_pixel_in_its_place() {
    let (bw, bh) = (8u32, 6u32);
    let px: Vec<u32> = (0..bw * bh).map(|i| 0xff00_0000 | (i * 0x010305)).collect();
    for deg in [90, 270] {
        let mut c = compositor(&format!(
            "[[source]]\nname = \"s\"\nguest = \"g/0\"\ndisplay = \"d\"\nrect = [1, 0, {bh}, {bw}]\nrotation = {deg}\nscaling = \"stretch\"\n"
        ));
        let s = c.sources().connect_by_name("s").unwrap();
        s.submit(frame(bw, bh, &px));
        c.render(Instant::now());
        let shot = c.snapshot(0);
        for y in 0..bw {
            for x in 0..bh {
                // Clockwise 90: display (x, y) shows buffer (y, bh - 1 - x); 270 the other way.
                let (u, v) = if deg == 90 { (y, bh - 1 - x) } else { (bw - 1 - y, x) };
                assert_eq!(shot.get(x + 1, y), px[(v * bw + u) as usize], "{deg} at display ({}, {y})", x + 1);
            }
        }
    }
}

#[test]
fn rotation_and_scaling_together() {
    let mut c = compositor(
        "[[source]]\nname = \"s\"\nguest = \"g/0\"\ndisplay = \"d\"\nrect = [0, 0, 4, 6]\nrotation = 90\nscaling = \"integer\"\n",
    );
    let s = c.sources().connect_by_name("s").unwrap();
    s.submit(six());
    c.render(Instant::now());
    let expect = expect_with(
        &[
            &[D, D, A, A],
            &[D, D, A, A],
            &[E, E, B, B],
            &[E, E, B, B],
            &[F, F, C, C],
            &[F, F, C, C],
        ],
        0,
        0,
    );
    assert_eq!(rows(&c.snapshot(0)), expect);
}

#[test]
fn premultiplied_alpha_and_opacity_blend_over_lower_sources() {
    let mut c = compositor(concat!(
        "[[source]]\nname = \"under\"\nguest = \"g/0\"\ndisplay = \"d\"\n",
        "[[source]]\nname = \"glass\"\nguest = \"g/1\"\ndisplay = \"d\"\nrect = [0, 0, 4, 4]\nz = 1\n",
        "[[source]]\nname = \"faded\"\nguest = \"g/2\"\ndisplay = \"d\"\nrect = [4, 4, 4, 4]\nz = 1\nopacity = 0.5\n",
        "[[source]]\nname = \"straight\"\nguest = \"g/3\"\ndisplay = \"d\"\nrect = [4, 0, 4, 4]\nz = 1\nalpha = \"straight\"\n",
    ));
    let src = c.sources();
    let under = src.connect_by_name("under").unwrap();
    under.submit(Frame::solid(8, 8, PixelFormat::Xrgb8888, 0xff00_00ff));
    let glass = src.connect_by_name("glass").unwrap();
    // Half-covering red, premultiplied: 0x80 alpha, 0x80 red.
    glass.submit(Frame::solid(4, 4, PixelFormat::Argb8888, 0x8080_0000));
    let faded = src.connect_by_name("faded").unwrap();
    faded.submit(Frame::solid(4, 4, PixelFormat::Xrgb8888, 0xffff_0000));
    let straight = src.connect_by_name("straight").unwrap();
    // Straight alpha: full red at half coverage, the same colour as `glass`.
    straight.submit(Frame::solid(4, 4, PixelFormat::Abgr8888, 0x80ff_0000));
    c.render(Instant::now());
    let shot = c.snapshot(0);
    assert_eq!(shot.get(1, 1), 0xff80_007f, "premultiplied half red over blue");
    assert_eq!(shot.get(6, 6), 0xff80_007f, "opaque red at opacity 0.5 over blue");
    assert_eq!(shot.get(6, 1), 0xff80_007f, "straight-alpha red at half coverage over blue");
    assert_eq!(shot.get(1, 6), 0xff00_00ff, "uncovered");
}

#[test]
fn z_order_and_safety_roles_decide_what_is_on_top() {
    let mut c = compositor(concat!(
        "[[source]]\nname = \"ivi\"\nguest = \"ivi/0\"\ndisplay = \"d\"\nz = 100\n",
        "[[source]]\nname = \"popup\"\napp_id = \"popup\"\ndisplay = \"d\"\nrect = [0, 0, 8, 2]\nz = 5\n",
        "[[source]]\nname = \"cluster\"\nguest = \"cluster/0\"\ndisplay = \"d\"\nrect = [0, 4, 8, 4]\nrole = \"cluster\"\nz = -10\n",
        "[[source]]\nname = \"lamps\"\nguest = \"cluster/1\"\ndisplay = \"d\"\nrect = [0, 6, 2, 2]\nrole = \"telltale\"\n",
    ));
    let src = c.sources();
    let (ivi, popup, cluster, lamps) = (
        src.connect_by_name("ivi").unwrap(),
        src.connect_by_name("popup").unwrap(),
        src.connect_by_name("cluster").unwrap(),
        src.connect_by_name("lamps").unwrap(),
    );
    ivi.submit(Frame::solid(8, 8, PixelFormat::Xrgb8888, A));
    popup.submit(Frame::solid(8, 2, PixelFormat::Xrgb8888, B));
    cluster.submit(Frame::solid(8, 4, PixelFormat::Xrgb8888, C));
    lamps.submit(Frame::solid(2, 2, PixelFormat::Xrgb8888, D));
    c.render(Instant::now());
    let shot = c.snapshot(0);
    assert_eq!(shot.get(0, 0), A, "z 100 is above z 5");
    assert_eq!(shot.get(0, 5), C, "the cluster is above the IVI although its z is lower");
    assert_eq!(shot.get(0, 7), D, "telltales stay visible over the cluster");
    assert_eq!(shot.get(4, 7), C);
}

#[test]
fn every_source_format_is_read_right() {
    for f in PixelFormat::ALL {
        let mut c = compositor("[[source]]\nname = \"s\"\nguest = \"g/0\"\ndisplay = \"d\"\nrect = [0, 0, 2, 2]\n");
        let s = c.sources().connect_by_name("s").unwrap();
        s.submit(Frame::from_pixels(&[0xff84_8284, 0xffff_0000, 0xff00_ff00, 0xff00_00ff], 2, 2, f).unwrap());
        c.render(Instant::now());
        let shot = c.snapshot(0);
        assert_eq!(
            [shot.get(0, 0), shot.get(1, 0), shot.get(0, 1), shot.get(1, 1)],
            [0xff84_8284, A, B, 0xff00_00ff],
            "{f}"
        );
    }
}

#[test]
fn only_damaged_parts_are_composed_again_and_the_result_is_the_same() {
    let layout = "[[source]]\nname = \"s\"\nguest = \"g/0\"\ndisplay = \"d\"\nrect = [0, 0, 8, 8]\nscaling = \"stretch\"\n";
    let mut c = compositor(layout);
    let s = c.sources().connect_by_name("s").unwrap();
    let mut px = vec![A; 16];
    s.submit(frame(4, 4, &px));
    let st = c.render(Instant::now());
    assert!(st.changed[0] && st.composed_pixels >= 64);

    let st = c.render(Instant::now());
    assert_eq!((st.changed[0], st.composed_pixels), (false, 0), "nothing changed, nothing composed");

    px[5] = B; // buffer (1, 1): display (2..4, 2..4) and a pixel around for bilinear
    s.submit_damaged(frame(4, 4, &px), &[cockpit_core::Rect::new(1, 1, 1, 1)]);
    let st = c.render(Instant::now());
    assert!(st.changed[0]);
    assert!(
        st.composed_pixels > 0 && st.composed_pixels <= 2 * 16,
        "composed {} pixels for one buffer pixel",
        st.composed_pixels
    );
    match c.image(0) {
        DisplayImage::Composed { damage, .. } => assert_eq!(damage, &[cockpit_core::Rect::new(1, 1, 4, 4)]),
        DisplayImage::Direct(_) => panic!("not a scanout case"),
    }

    let mut fresh = compositor(layout);
    let s2 = fresh.sources().connect_by_name("s").unwrap();
    s2.submit(frame(4, 4, &px));
    fresh.render(Instant::now());
    assert_eq!(
        rows(&c.snapshot(0)),
        rows(&fresh.snapshot(0)),
        "partial recomposition equals a full one"
    );
}

/// Bilinear upscaling spreads a changed buffer pixel over half a buffer
/// pixel around it: at 4x and more that is several display pixels, and the
/// damaged recomposition must still equal a full one (no stale pixels).
#[test]
fn damage_on_a_source_scaled_up_many_times_leaves_no_stale_pixels() {
    for (w, scale) in [(4, 2), (2, 4), (2, 5), (1, 8)] {
        let size = w * scale;
        let layout = format!("[[source]]\nname = \"s\"\nguest = \"g/0\"\ndisplay = \"d\"\nrect = [0, 0, {size}, {size}]\nscaling = \"stretch\"\n");
        let mut c = compositor(&layout);
        let s = c.sources().connect_by_name("s").unwrap();
        let mut px = vec![A; (w * w) as usize];
        s.submit(frame(w as u32, w as u32, &px));
        c.render(Instant::now());
        let last = px.len() - 1;
        px[last] = B;
        s.submit_damaged(frame(w as u32, w as u32, &px), &[cockpit_core::Rect::new(w - 1, w - 1, 1, 1)]);
        c.render(Instant::now());

        let mut fresh = compositor(&layout);
        let s2 = fresh.sources().connect_by_name("s").unwrap();
        s2.submit(frame(w as u32, w as u32, &px));
        fresh.render(Instant::now());
        assert_eq!(rows(&c.snapshot(0)), rows(&fresh.snapshot(0)), "{w}x{w} buffer at {scale}x");
    }
}

#[test]
fn a_full_screen_opaque_source_is_scanned_out_without_a_copy() {
    let mut c = compositor(concat!(
        "[[source]]\nname = \"ivi\"\nguest = \"ivi/0\"\ndisplay = \"d\"\n",
        "[[source]]\nname = \"toast\"\napp_id = \"toast\"\ndisplay = \"d\"\nrect = [0, 0, 2, 2]\nz = 1\n",
    ));
    c.set_scanout_formats(0, &[PixelFormat::Xrgb8888]);
    let src = c.sources();
    let ivi = src.connect_by_name("ivi").unwrap();
    let f = Frame::solid(8, 8, PixelFormat::Xrgb8888, A);
    ivi.submit(f.clone());
    let st = c.render(Instant::now());
    assert_eq!((st.direct[0], st.composed_pixels), (true, 0));
    match c.image(0) {
        DisplayImage::Direct(shown) => assert!(shown.same_memory(&f), "the guest's own buffer is scanned out"),
        DisplayImage::Composed { .. } => panic!("expected direct scanout"),
    }

    // A toast on top needs composition again, and the canvas must be whole.
    let toast = src.connect_by_name("toast").unwrap();
    toast.submit(Frame::solid(2, 2, PixelFormat::Xrgb8888, B));
    let st = c.render(Instant::now());
    assert!(!st.direct[0]);
    let shot = c.snapshot(0);
    assert_eq!((shot.get(0, 0), shot.get(7, 7)), (B, A));

    // Wrong size or a format the output does not take: composed.
    drop(toast);
    let mut c2 = compositor("[[source]]\nname = \"ivi\"\nguest = \"ivi/0\"\ndisplay = \"d\"\n");
    c2.set_scanout_formats(0, &[PixelFormat::Xrgb8888]);
    let ivi2 = c2.sources().connect_by_name("ivi").unwrap();
    ivi2.submit(Frame::solid(8, 8, PixelFormat::Rgb565, 0xffff_ffff));
    assert!(!c2.render(Instant::now()).direct[0]);
    ivi2.submit(Frame::solid(4, 4, PixelFormat::Xrgb8888, A));
    assert!(!c2.render(Instant::now()).direct[0]);
}

#[test]
fn straight_alpha_bilinear_does_not_bleed_hidden_colour() {
    // A transparent pixel's hidden colour must not tint its neighbours.
    let mut c = compositor(
        "[[source]]\nname = \"s\"\nguest = \"g/0\"\ndisplay = \"d\"\nrect = [0, 0, 4, 1]\nscaling = \"stretch\"\nalpha = \"straight\"\n",
    );
    let s = c.sources().connect_by_name("s").unwrap();
    s.submit(Frame::from_pixels(&[0xff00_0000, 0x00ff_ffff], 2, 1, PixelFormat::Argb8888).unwrap());
    c.render(Instant::now());
    let shot = c.snapshot(0);
    // Between opaque black and transparent (hidden white) over blue: no white or grey, only black/blue.
    let p = shot.get(1, 0);
    assert_eq!((p >> 16) & 0xff, 0, "no red from the hidden white: {p:08x}");
    assert_eq!((p >> 8) & 0xff, 0, "no green from the hidden white: {p:08x}");
}

#[test]
fn flips_complete_only_after_the_frame_was_presented() {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    let mut c = compositor("[[source]]\nname = \"s\"\nguest = \"g/0\"\ndisplay = \"d\"\n");
    let s = c.sources().connect_by_name("s").unwrap();
    let done = Arc::new(AtomicU32::new(0));
    for _ in 0..2 {
        let d = done.clone();
        s.submit_then(Frame::solid(8, 8, PixelFormat::Xrgb8888, A), None, move || {
            d.fetch_add(1, Ordering::SeqCst);
        });
    }
    assert_eq!(done.load(Ordering::SeqCst), 0);
    c.render(Instant::now());
    assert_eq!(done.load(Ordering::SeqCst), 0, "composed but not yet on screen");
    c.frame_presented();
    assert_eq!(
        done.load(Ordering::SeqCst),
        2,
        "the shown flip and the one it replaced both complete"
    );
}

#[test]
fn sources_hidden_behind_an_opaque_one_are_not_composed() {
    let mut c = compositor(concat!(
        "[[source]]\nname = \"below\"\nguest = \"g/0\"\ndisplay = \"d\"\n",
        "[[source]]\nname = \"above\"\nguest = \"g/1\"\ndisplay = \"d\"\nz = 1\n",
    ));
    let src = c.sources();
    let (below, above) = (src.connect_by_name("below").unwrap(), src.connect_by_name("above").unwrap());
    below.submit(Frame::solid(8, 8, PixelFormat::Xrgb8888, A));
    above.submit(Frame::solid(8, 8, PixelFormat::Xrgb8888, B));
    let st = c.render(Instant::now());
    assert_eq!(st.composed_pixels, 64, "only the top source is drawn: no background, nothing below");
    assert_eq!(c.snapshot(0).get(3, 3), B);

    above.submit(Frame::solid(8, 8, PixelFormat::Argb8888, 0x8000_0000));
    let st = c.render(Instant::now());
    assert_eq!(st.composed_pixels, 2 * 64, "a translucent top needs the one below");
    assert_eq!(c.snapshot(0).get(3, 3), 0xff7f_0000);
}

#[test]
fn a_flipped_picture_is_damaged_only_where_it_changed() {
    let px = |marks: &[(usize, usize)]| {
        let mut v = vec![A; 64 * 32];
        for &(x, y) in marks {
            v[y * 64 + x] = B;
        }
        Frame::from_pixels(&v, 64, 32, PixelFormat::Xrgb8888).unwrap()
    };
    let old = px(&[(3, 1)]);
    let new = px(&[(10, 5), (12, 6), (40, 20)]);
    let d = new.changes_from(&old).unwrap();
    let mut rects = d.rects().to_vec();
    rects.sort_by_key(|r| (r.y, r.x));
    // The old mark's row; rows 5-6 as one band as wide as both marks; row 20.
    assert_eq!(
        rects,
        vec![
            cockpit_core::Rect::new(3, 1, 1, 1),
            cockpit_core::Rect::new(10, 5, 3, 2),
            cockpit_core::Rect::new(40, 20, 1, 1)
        ]
    );
    assert!(new.changes_from(&new).unwrap().is_empty());
    // Another size cannot be compared: all of it is new.
    assert!(Frame::solid(8, 8, PixelFormat::Xrgb8888, A).changes_from(&old).is_none());
}

/// Composing in horizontal bands on several threads gives the picture one
/// thread gives, pixel for pixel: scaled, turned and translucent sources,
/// sub-pictures, and a stale source's label crossing the bands' edges.
#[test]
fn bands_on_several_threads_compose_the_same_picture_as_one() {
    let layout = r##"
[[display]]
name = "d"
mode = "640x480"
background = "#102030"

[[source]]
name = "scaled"
guest = "g/0"
display = "d"
rect = [0, 0, 400, 300]
scaling = "stretch"

[[source]]
name = "turned"
guest = "g/1"
display = "d"
rect = [380, 40, 250, 420]
rotation = 90
scaling = "fit"

[[source]]
name = "glass"
app_id = "glass"
display = "d"
rect = [100, 200, 300, 200]
opacity = 0.7
z = 2

[[source]]
name = "stale"
guest = "g/2"
display = "d"
rect = [0, 0, 640, 480]
z = 5
watchdog_ms = 1
label = "STALE SOURCE LABEL"
"##;
    let pattern = |w: u32, h: u32, k: u32| -> Vec<u32> {
        (0..w * h).map(|i| 0xff00_0000 | (i.wrapping_mul(2654435761u32.wrapping_add(k)) >> 8)).collect()
    };
    let render = |bands: usize| {
        let mut c = layout_compositor(layout);
        c.set_bands(bands);
        let src = c.sources();
        let scaled = src.connect_by_name("scaled").unwrap();
        scaled.submit_with_subs(
            frame(173, 129, &pattern(173, 129, 1)),
            vec![cockpit_core::SubPicture { frame: frame(31, 17, &pattern(31, 17, 2)), at: cockpit_core::Rect::new(60, 50, 40, 30), below: false }],
            None,
        );
        let turned = src.connect_by_name("turned").unwrap();
        turned.submit(frame(300, 180, &pattern(300, 180, 3)));
        let glass = src.connect_by_name("glass").unwrap();
        let argb: Vec<u32> = pattern(150, 100, 4).iter().map(|p| p & 0x7f7f_7f7f).collect();
        glass.submit(Frame::from_pixels(&argb, 150, 100, PixelFormat::Argb8888).unwrap());
        let stale = src.connect_by_name("stale").unwrap();
        let glassy: Vec<u32> = pattern(64, 32, 5).iter().map(|p| p & 0x3f3f_3f3f).collect();
        stale.submit(Frame::from_pixels(&glassy, 64, 32, PixelFormat::Argb8888).unwrap());
        let t0 = Instant::now();
        c.render(t0);
        let live = rows(&c.snapshot(0));
        // The full-display source goes stale: its dimmed picture with its
        // label across the middle, where the bands meet.
        c.render(t0 + std::time::Duration::from_secs(1));
        let _keep = (scaled, turned, glass, stale);
        (live, rows(&c.snapshot(0)))
    };
    let one = render(1);
    for bands in [2, 3, 4] {
        let got = render(bands);
        for (what, a, b) in [("live", &got.0, &one.0), ("stale", &got.1, &one.1)] {
            let diff = (0..a.len()).flat_map(|y| (0..a[y].len()).map(move |x| (x, y))).find(|&(x, y)| a[y][x] != b[y][x]);
            assert!(diff.is_none(), "{bands} bands: the {what} picture differs from one thread's first at {diff:?}: {:#x} vs {:#x}", diff.map_or(0, |(x, y)| a[y][x]), diff.map_or(0, |(x, y)| b[y][x]));
        }
    }
}

/// Sub-pictures go over their frame, or under it where they are marked
/// below (showing through its transparent parts), scaled with it.
#[test]
fn sub_pictures_are_drawn_over_or_under_their_frame_scaled_with_it() {
    // A 4x4 frame shown at 8x8 (stretch, nearest): its left half opaque
    // red, its right half transparent.
    let layout = "[[source]]\nname = \"s\"\nguest = \"g/0\"\ndisplay = \"d\"\nrect = [0, 0, 8, 8]\nscaling = \"stretch\"\nfilter = \"nearest\"\n";
    let mut c = compositor(layout);
    let s = c.sources().connect_by_name("s").unwrap();
    let px: Vec<u32> = (0..16).map(|i| if i % 4 < 2 { A } else { 0 }).collect();
    let root = Frame::from_pixels(&px, 4, 4, PixelFormat::Argb8888).unwrap();
    let sub = |colour: u32, at: cockpit_core::Rect, below: bool| cockpit_core::SubPicture { frame: frame(1, 1, &[colour]), at, below };
    s.submit_with_subs(
        root,
        vec![
            // Under the frame, across both halves.
            sub(B, cockpit_core::Rect::new(1, 0, 2, 1), true),
            // Over the frame, in its opaque half.
            sub(C, cockpit_core::Rect::new(0, 3, 1, 1), false),
        ],
        None,
    );
    c.render(Instant::now());
    let shot = c.snapshot(0);
    assert_eq!(shot.get(2, 0), A, "the frame's opaque half covers what is below it");
    assert_eq!(shot.get(4, 1), B, "what is below shows through the transparent half");
    assert_eq!(shot.get(6, 1), BG, "beyond the sub-picture: the background");
    assert_eq!(shot.get(1, 7), C, "a sub-picture over the frame, scaled 2x with it");
    assert_eq!(shot.get(2, 7), A);
}
