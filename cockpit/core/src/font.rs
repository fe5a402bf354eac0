//! Text on a [`Canvas`] in `cockpit-gauges`' 5×7 font: the watchdog's
//! labels and the simulator's.

use crate::canvas::{Band, Canvas};
use crate::geom::Rect;
use cockpit_gauges::Pixels;

pub use cockpit_gauges::font::text_size;

/// Draws `text` with its top-left at (x, y), in `0xRRGGBB`, clipped to `clip`.
pub fn draw_text(canvas: &mut Canvas, clip: &Rect, x: i32, y: i32, scale: i32, text: &str, rgb: u32) {
    draw_text_in(&mut canvas.band(), clip, x, y, scale, text, rgb)
}

/// [`draw_text`] into a band of a canvas.
pub(crate) fn draw_text_in(band: &mut Band<'_>, clip: &Rect, x: i32, y: i32, scale: i32, text: &str, rgb: u32) {
    let (w, b) = (band.width(), band.bounds());
    let (px, y0) = band.pixels_mut();
    // The band's rows are a window from y0: draw there shifted up by y0.
    if let Some(p) = Pixels::new(px, w, b.h as u32) {
        cockpit_gauges::font::draw_text(&mut p.clip(clip.x, clip.y - y0, clip.w, clip.h), x, y - y0, scale, text, rgb | 0xff00_0000);
    }
}

/// Draws `text` centred in `area`, as large as fits in half its height and
/// 90% of its width, on a dark plate so it reads over any picture.
pub fn draw_label(canvas: &mut Canvas, clip: &Rect, area: &Rect, text: &str, rgb: u32) {
    draw_label_in(&mut canvas.band(), clip, area, text, rgb)
}

/// [`draw_label`] into a band of a canvas.
pub(crate) fn draw_label_in(canvas: &mut Band<'_>, clip: &Rect, area: &Rect, text: &str, rgb: u32) {
    let (w1, h1) = text_size(text, 1);
    if w1 == 0 || area.is_empty() {
        return;
    }
    let scale = ((area.w * 9 / 10) / w1).min((area.h / 2) / h1).clamp(1, 16);
    let (w, h) = text_size(text, scale);
    let (x, y) = (area.x + (area.w - w) / 2, area.y + (area.h - h) / 2);
    let plate = Rect::new(x - 2 * scale, y - 2 * scale, w + 4 * scale, h + 4 * scale).intersect(area);
    canvas.fill(&plate.intersect(clip), 0x101010);
    draw_text_in(canvas, &clip.intersect(area), x, y, scale, text, rgb);
}
