//! Every kernel set this CPU runs gives the scalar reference's pixels, on
//! lengths that cross every vector width and tail, with random pixels
//! (premultiplied or not), opacities, taps and weights.

use cockpit_kernels::{Columns, Kernels, Taps, Turn};
use proptest::prelude::*;

fn sets() -> Vec<&'static Kernels> {
    let v = Kernels::available();
    assert_eq!(v[0].name(), "scalar");
    v
}

/// Pixels, mostly premultiplied, some not (a hostile client's).
fn pixels(max: usize) -> impl Strategy<Value = Vec<u32>> {
    prop::collection::vec(
        prop_oneof![
            any::<u32>(),
            (any::<u8>(), any::<u32>()).prop_map(|(a, c)| {
                let ch = |s: u32| ((c >> s) & 0xff) * a as u32 / 255;
                ((a as u32) << 24) | (ch(16) << 16) | (ch(8) << 8) | ch(0)
            }),
            Just(0),
            Just(0xff00_0000),
        ],
        0..max,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn copy_opaque_matches(src in pixels(80), dst in pixels(80)) {
        let mut want = dst.clone();
        sets()[0].copy_opaque(&mut want, &src);
        for k in sets() {
            let mut got = dst.clone();
            k.copy_opaque(&mut got, &src);
            prop_assert_eq!(&got, &want, "{}", k.name());
        }
    }

    #[test]
    fn over_matches(src in pixels(80), dst in pixels(80), opacity in prop_oneof![Just(255u8), Just(0u8), any::<u8>()]) {
        let mut want = dst.clone();
        sets()[0].over(&mut want, &src, opacity);
        for k in sets() {
            let mut got = dst.clone();
            k.over(&mut got, &src, opacity);
            prop_assert_eq!(&got, &want, "{} opacity {}", k.name(), opacity);
        }
    }

    #[test]
    fn bilinear_matches(
        row0 in pixels(70).prop_filter("two pixels at least", |r| r.len() >= 2),
        seed in any::<u64>(),
        n in 0usize..70,
        w in prop_oneof![Just(0u16), Just(128u16), 0u16..=128],
        or in prop_oneof![Just(0u32), Just(0xff00_0000u32)],
    ) {
        let len = row0.len();
        let row1: Vec<u32> = row0.iter().map(|p| p.rotate_left(7) ^ seed as u32).collect();
        let mut taps = Taps::default();
        let mut s = seed;
        taps.set((0..n).map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (((s >> 33) as usize % (len - 1)) as u32, ((s >> 20) % 129) as u16)
        }));
        let run = |k: &Kernels| {
            let (mut h0, mut h1) = (vec![0u16; 4 * n], vec![0u16; 4 * n]);
            k.bilinear_h(&mut h0, &row0, &taps);
            k.bilinear_h(&mut h1, &row1, &taps);
            let mut out = vec![0u32; n];
            k.bilinear_v(&mut out, &h0, &h1, w, or);
            (h0, out)
        };
        let want = run(sets()[0]);
        for k in sets() {
            prop_assert_eq!(&run(k), &want, "{}", k.name());
        }
    }

    #[test]
    fn gather_matches(row in pixels(70).prop_filter("not empty", |r| !r.is_empty()), xs in prop::collection::vec(any::<u32>(), 0..70)) {
        let mut cols = Columns::default();
        cols.set(xs.iter().map(|x| x % row.len() as u32));
        let mut want = vec![0u32; xs.len()];
        sets()[0].gather(&mut want, &row, &cols, 0xff00_0000);
        for k in sets() {
            let mut got = vec![0u32; xs.len()];
            k.gather(&mut got, &row, &cols, 0xff00_0000);
            prop_assert_eq!(&got, &want, "{}", k.name());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Quarter turns both ways (and a transposed copy), blocks of every size
    /// up to 37x37 from any start inside the buffer.
    #[test]
    fn turn_matches(
        (bw, bh) in (1usize..40, 1usize..40),
        (w, h) in (0usize..38, 0usize..38),
        way in 0usize..4,
        (x, y) in (0usize..40, 0usize..40),
        pad in 0usize..5,
        or in prop_oneof![Just(0u32), Just(0xff00_0000u32)],
    ) {
        let src: Vec<u32> = (0..bw * bh).map(|i| (i as u32).wrapping_mul(2654435761)).collect();
        let s = bw as isize;
        // (di, dj) per output step: clockwise, anticlockwise, transposed, both flipped.
        let (di, dj) = [(-s, 1), (s, -1), (s, 1), (-s, -1)][way];
        // Output columns walk buffer rows, output rows buffer columns: fit the block.
        let (w, h) = (w.min(bh), h.min(bw));
        let (r, c) = (y % (bh - w.max(1) + 1), x % (bw - h.max(1) + 1));
        let row = if di < 0 { bh - 1 - r } else { r };
        let col = if dj < 0 { bw - 1 - c } else { c };
        let t = Turn::new(row * bw + col, di, dj, w, h, src.len());
        prop_assert!(t.is_some(), "the block fits by construction");
        let t = t.unwrap();
        // One step further leaves the buffer: refused, not read.
        if row == 0 && di < 0 && w > 0 && h > 0 {
            prop_assert!(Turn::new(row * bw + col, di, dj, w + 1, h, src.len()).is_none());
        }
        let stride = w + pad;
        let run = |k: &Kernels| {
            let mut dst = vec![7u32; stride * h];
            k.turn(&mut dst, stride, &src, &t, or);
            dst
        };
        let want = run(sets()[0]);
        for k in sets() {
            prop_assert_eq!(&run(k), &want, "{}", k.name());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// The vertical pass on any rows the horizontal pass could make (every
    /// lane up to 255 * 128), not only the ones it made above.
    #[test]
    fn bilinear_v_matches_on_any_valid_rows(
        rows in prop::collection::vec((0u16..=255 * 128, 0u16..=255 * 128), 0..120),
        w in 0u16..=128,
    ) {
        let (h0, h1): (Vec<u16>, Vec<u16>) = rows.iter().copied().unzip();
        let n = h0.len() / 4;
        let run = |k: &Kernels| {
            let mut out = vec![0u32; n];
            k.bilinear_v(&mut out, &h0, &h1, w, 0);
            out
        };
        let want = run(sets()[0]);
        for k in sets() {
            prop_assert_eq!(&run(k), &want, "{}", k.name());
        }
    }
}

/// A destination stride so large that the block's end would wrap around
/// is refused, not written.
#[test]
#[should_panic(expected = "outside the destination")]
fn a_wrapping_destination_stride_is_refused() {
    let t = Turn::new(0, 0, 1, 4, 4, 4).unwrap();
    let mut dst = [0u32; 6];
    Kernels::best().turn(&mut dst, (usize::MAX - 1) / 3 + 1, &[1, 2, 3, 4], &t, 0);
}

/// The reference itself against hand-worked values.
#[test]
fn reference_values() {
    let k = sets()[0];
    // Half-transparent red over blue: red 128, blue 255 * 127 / 255 = 127.
    let mut d = [0xff00_00ff];
    k.over(&mut d, &[0x8080_0000], 255);
    assert_eq!(d, [0xff80_007f]);
    // Opaque red at opacity 128 over blue.
    let mut d = [0xff00_00ff];
    k.over(&mut d, &[0xffff_0000], 128);
    assert_eq!(d, [0xff80_007f]);
    // A non-premultiplied source saturates instead of carrying into green.
    let mut d = [0xff00_00ff];
    k.over(&mut d, &[0x0100_00ff], 255);
    assert_eq!(d, [0xff00_00ff]);
    // Black to white at a quarter: 255 * 32 / 128 = 63.75, rounded to 64.
    let mut t = Taps::default();
    t.set([(0u32, 32u16)].into_iter());
    let mut h = [0u16; 4];
    k.bilinear_h(&mut h, &[0xff00_0000, 0xffff_ffff], &t);
    assert_eq!(h, [255 * 32, 255 * 32, 255 * 32, 255 * 128]);
    let mut out = [0u32];
    k.bilinear_v(&mut out, &h, &h, 0, 0);
    assert_eq!(out, [0xff40_4040]);
}

#[test]
fn the_best_set_is_the_last_available() {
    assert_eq!(Kernels::best().name(), sets().last().unwrap().name());
    #[cfg(target_arch = "aarch64")]
    assert_eq!(Kernels::best().name(), "neon");
}
