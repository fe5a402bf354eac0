//! The telltale lamps: two warning lamps blinking out of phase, on a
//! transparent overlay (premultiplied ARGB).

use crate::Pixels;

/// A lit amber lamp.
pub const TELLTALE_AMBER: u32 = 0xffff_a000;
/// A lit red lamp.
pub const TELLTALE_RED: u32 = 0xffff_2020;
const AMBER_OFF: u32 = 0xff30_2000;
const RED_OFF: u32 = 0xff30_0000;

/// Draws the lamps as they are at `ms` milliseconds: clear everywhere
/// else, so the overlay shows what is under it there.
pub fn telltales(out: &mut Pixels<'_>, ms: u64) {
    let (w, h) = (out.width() as i32, out.height() as i32);
    let on = (ms / 500).is_multiple_of(2);
    out.fill(0, 0, w, h, 0);
    let side = (h - 8).max(0);
    out.fill(4, 4, side, side, if on { TELLTALE_AMBER } else { AMBER_OFF });
    out.fill(w / 2, 4, side, side, if on { RED_OFF } else { TELLTALE_RED });
}
