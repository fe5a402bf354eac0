//! The speedometer: a ring lit up to the speed, a needle and the number.

use alloc::vec::Vec;

use crate::font::draw_centred;
use crate::Pixels;

/// The top of the scale. The ring spans 240 degrees, so one km/h is one
/// degree of needle travel.
pub const MAX_KMH: u32 = 240;

const BACKGROUND: u32 = 0xff05_070a;
const RING_OFF: u32 = 0xff2a_3a4a;
const RING_ON: u32 = 0xff00_b4ff;
const NEEDLE: u32 = 0xffff_3020;
const NUMBER: u32 = 0xffff_ffff;
const CAPTION: u32 = 0xff88_99aa;
const LABEL: u32 = 0xff44_5566;
/// Where the scale starts: lower left, 210 degrees from 3 o'clock.
const START_DEG: f32 = 210.0;
/// Ring thickness in pixels.
const RING: f32 = 10.0;

/// A speedometer for a `width`×`height` picture. The dial (background,
/// caption, unlit ring) is drawn once; [`Speedometer::draw`] then costs a
/// copy, the lit part of the ring, the needle and the number.
pub struct Speedometer {
    width: u32,
    height: u32,
    dial: Vec<u32>,
    /// Ring pixels (index into the picture) with the speed, in 1/16 km/h,
    /// from which each is lit; in index order.
    ring: Vec<(u32, u16)>,
    cx: f32,
    cy: f32,
    r: f32,
}

impl Speedometer {
    /// The dial for a `width`×`height` picture with `label` in its corner.
    pub fn new(width: u32, height: u32, label: &str) -> Self {
        let (cx, cy, r) = (width as f32 / 2.0, height as f32 * 0.58, height as f32 * 0.42);
        let mut dial = alloc::vec![BACKGROUND; width as usize * height as usize];
        let mut ring = Vec::new();
        let (x0, x1) = (((cx - r).max(0.0)) as u32, ((cx + r + 1.0) as u32).min(width));
        let (y0, y1) = (((cy - r).max(0.0)) as u32, ((cy + r + 1.0) as u32).min(height));
        for y in y0..y1 {
            for x in x0..x1 {
                let (dx, dy) = (x as f32 + 0.5 - cx, cy - (y as f32 + 0.5));
                let d = libm::sqrtf(dx * dx + dy * dy);
                let deg = libm::atan2f(dy, dx).to_degrees();
                // atan2 is within (-180, 180]: `along` within [30, 390).
                let along = match START_DEG - deg {
                    a if a >= 360.0 => a - 360.0,
                    a => a,
                };
                if d > r - RING && d < r && along <= MAX_KMH as f32 {
                    let i = y * width + x;
                    dial[i as usize] = RING_OFF;
                    ring.push((i, (along * 16.0) as u16));
                }
            }
        }
        if let Some(mut p) = Pixels::new(&mut dial, width, height) {
            crate::font::draw_text(&mut p, 12, 12, 2, label, LABEL);
            draw_centred(&mut p, cx as i32, (cy + r * 0.15) as i32 + 50, 2, "KM/H", CAPTION);
        }
        Speedometer { width, height, dial, ring, cx, cy, r }
    }

    /// The picture's size.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Where the needle's tip is at `kmh` (clamped to the scale).
    pub fn needle_tip(&self, kmh: u32) -> (i32, i32) {
        let (c, s) = self.direction(kmh);
        let len = self.needle_len();
        ((self.cx + c * len) as i32, (self.cy - s * len) as i32)
    }

    fn needle_len(&self) -> f32 {
        (self.r - 14.0).max(0.0)
    }

    fn direction(&self, kmh: u32) -> (f32, f32) {
        let a = (START_DEG - kmh.min(MAX_KMH) as f32).to_radians();
        (libm::cosf(a), libm::sinf(a))
    }

    /// Draws the speedometer at `kmh` into `out`, which must be the size
    /// it was made for (else nothing is drawn).
    pub fn draw(&self, out: &mut Pixels<'_>, kmh: u32) {
        if (out.width(), out.height()) != (self.width, self.height) {
            return;
        }
        let kmh = kmh.min(MAX_KMH);
        let px = out.as_mut_slice();
        px.copy_from_slice(&self.dial);
        let lit = (kmh * 16) as u16;
        for &(i, from) in &self.ring {
            if from <= lit {
                px[i as usize] = RING_ON;
            }
        }
        let (c, s) = self.direction(kmh);
        for i in 0..self.needle_len() as i32 {
            let (x, y) = (self.cx + c * i as f32, self.cy - s * i as f32);
            out.fill(x as i32 - 2, y as i32 - 2, 4, 4, NEEDLE);
        }
        let mut digits = [0u8; 3];
        draw_centred(out, self.cx as i32, (self.cy + self.r * 0.15) as i32, 6, number(kmh, &mut digits), NUMBER);
    }
}

/// `n` (below 1000) in decimal, without allocating.
fn number(n: u32, buf: &mut [u8; 3]) -> &str {
    let n = n.min(999);
    let len = if n >= 100 { 3 } else if n >= 10 { 2 } else { 1 };
    let mut v = n;
    for i in (0..len).rev() {
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    core::str::from_utf8(&buf[..len]).unwrap_or("")
}

/// The demo drive: the speed at `ms` milliseconds, sweeping 0 to 240 km/h
/// and back every 15.7 s.
pub fn speed_at(ms: u64) -> u32 {
    let t = (ms % 1_000_000) as f32 / 1000.0;
    (120.0 - 120.0 * libm::cosf(t * 0.4)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_needle_and_the_ring_follow_the_speed() {
        let s = Speedometer::new(320, 160, "TEST");
        let (mut a, mut b) = (alloc::vec![0u32; 320 * 160], alloc::vec![0u32; 320 * 160]);
        s.draw(&mut Pixels::new(&mut a, 320, 160).unwrap(), 0);
        s.draw(&mut Pixels::new(&mut b, 320, 160).unwrap(), 120);
        let at = |px: &[u32], (x, y): (i32, i32)| px[y as usize * 320 + x as usize];
        // At 120 km/h the needle points straight up, and is drawn there.
        let tip = s.needle_tip(120);
        assert!((tip.0 - 160).abs() <= 1 && tip.1 < 40, "{tip:?}");
        assert_eq!(at(&b, tip), NEEDLE);
        assert_ne!(at(&a, tip), NEEDLE);
        // The ring is lit up to the speed only.
        let lit = |px: &[u32]| px.iter().filter(|&&p| p == RING_ON).count();
        assert_eq!(lit(&a), s.ring.iter().filter(|r| r.1 == 0).count());
        assert!(lit(&b) > s.ring.len() / 3 && lit(&b) < s.ring.len() * 2 / 3);
        // A picture of another size is left alone.
        let mut c = alloc::vec![0u32; 100];
        s.draw(&mut Pixels::new(&mut c, 10, 10).unwrap(), 50);
        assert!(c.iter().all(|&p| p == 0));
    }

    #[test]
    fn numbers_and_the_drive() {
        let mut buf = [0u8; 3];
        assert_eq!(number(0, &mut buf), "0");
        assert_eq!(number(47, &mut buf), "47");
        assert_eq!(number(240, &mut buf), "240");
        assert_eq!(speed_at(0), 0);
        assert!(speed_at(7854) >= 239);
        assert!((0..20_000).step_by(100).all(|ms| speed_at(ms) <= MAX_KMH));
    }
}
