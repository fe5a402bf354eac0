//! The framebuffer test pattern. `cargo xtask interop` computes the same
//! function on the host (xtask/src/interop/checks.rs) and compares every
//! pixel of what the display sink received.

/// The colour of pixel (x, y) as 0x00RRGGBB.
pub fn rgb(x: u32, y: u32) -> u32 {
    let r = (x.wrapping_mul(3) ^ y) & 0xff;
    let g = (y.wrapping_mul(5).wrapping_add(x / 7)) & 0xff;
    let b = ((x / 16) ^ (y / 16) ^ 0xa5) & 0xff;
    (r << 16) | (g << 8) | b
}
