//! PNG in and out: fallback pictures and screenshots.

use crate::canvas::Canvas;
use crate::format::{premultiply, PixelFormat};
use crate::frame::Frame;

/// Decodes a PNG (any colour type, 8-bit or expanded) into a premultiplied ARGB8888 frame.
pub fn decode_png(bytes: &[u8]) -> Result<Frame, String> {
    let mut dec = png::Decoder::new(std::io::Cursor::new(bytes));
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = dec.read_info().map_err(|e| e.to_string())?;
    let mut buf = vec![0; reader.output_buffer_size().ok_or("image too large")?];
    let info = reader.next_frame(&mut buf).map_err(|e| e.to_string())?;
    let (w, h) = (info.width, info.height);
    let channels = info.color_type.samples();
    let mut px = Vec::with_capacity(w as usize * h as usize);
    for y in 0..h as usize {
        let row = &buf[y * info.line_size..];
        for x in 0..w as usize {
            let s = &row[x * channels..];
            let (r, g, b, a) = match channels {
                1 => (s[0], s[0], s[0], 255),
                2 => (s[0], s[0], s[0], s[1]),
                3 => (s[0], s[1], s[2], 255),
                _ => (s[0], s[1], s[2], s[3]),
            };
            px.push(premultiply(u32::from_be_bytes([a, r, g, b])));
        }
    }
    Frame::from_pixels(&px, w, h, PixelFormat::Argb8888).map_err(|e| e.to_string())
}

/// Encodes opaque `0x..RRGGBB` pixels as an RGB PNG.
pub fn encode_png(width: u32, height: u32, pixels: impl Iterator<Item = u32>) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Fast);
        let mut w = enc.write_header().expect("PNG header to a vector");
        let data: Vec<u8> = pixels.flat_map(|p| [(p >> 16) as u8, (p >> 8) as u8, p as u8]).collect();
        w.write_image_data(&data).expect("PNG data to a vector");
    }
    out
}

/// A frame as it would look on a black display, as an RGB PNG.
pub fn frame_to_png(frame: &Frame) -> Vec<u8> {
    let (w, h) = (frame.width(), frame.height());
    encode_png(w, h, (0..h).flat_map(move |y| (0..w).map(move |x| frame.pixel(x, y))))
}

/// Decodes a PNG into a canvas (alpha composed over black).
pub fn png_to_canvas(bytes: &[u8]) -> Result<Canvas, String> {
    let f = decode_png(bytes)?;
    let mut c = Canvas::new(f.width(), f.height(), 0);
    for y in 0..f.height() {
        for x in 0..f.width() {
            c.set(x, y, f.pixel(x, y) | 0xff00_0000);
        }
    }
    Ok(c)
}
