//! A desktop window per display (minifb on X11), for development on a PC:
//! the mouse's left button acts as a finger (touch id 0) and as a pointer
//! button; keys are passed on as evdev codes.

use std::io;

use cockpit_core::compositor::frame_canvas;
use cockpit_core::input::codes::BTN_LEFT;
use cockpit_core::{DisplayEvent, DisplayImage, Layout, PixelFormat};
use minifb::{Key, KeyRepeat, MouseButton, MouseMode, Window, WindowOptions};

use crate::platform::Platform;

/// One desktop window per layout display.
pub struct Windows {
    windows: Vec<Win>,
}

struct Win {
    window: Window,
    width: usize,
    height: usize,
    /// The last picture, re-sent when nothing changed (minifb wants a buffer per update).
    pixels: Vec<u32>,
    touching: bool,
    last_pos: Option<(f32, f32)>,
    /// Whether `present` pumped the window's events since input was last read.
    pumped: bool,
}

impl Windows {
    /// Opens one window per layout display, titled `cockpit: <display>`.
    pub fn open(layout: &Layout) -> io::Result<Windows> {
        let mut windows = Vec::new();
        // Stacked top to bottom, as a cluster sits above a centre display.
        let mut y = 0;
        for d in &layout.displays {
            let (w, h) = (d.width as usize, d.height as usize);
            let mut window = Window::new(&format!("cockpit: {}", d.name), w, h, WindowOptions::default())
                .map_err(|e| io::Error::other(format!("cannot open a window for display \"{}\": {e} (is DISPLAY set?)", d.name)))?;
            // The compositor paces itself.
            window.set_target_fps(0);
            window.set_position(0, y);
            y += h as isize + 8;
            windows.push(Win {
                window,
                width: w,
                height: h,
                pixels: vec![0; w * h],
                touching: false,
                last_pos: None,
                pumped: false,
            });
        }
        Ok(Windows { windows })
    }
}

impl Platform for Windows {
    fn scanout_formats(&self, _d: usize) -> Vec<PixelFormat> {
        // A window always takes a copy; composing is as cheap as converting.
        Vec::new()
    }

    fn present(&mut self, d: usize, image: DisplayImage<'_>) -> io::Result<()> {
        let w = &mut self.windows[d];
        match image {
            DisplayImage::Composed { canvas, damage } => {
                let width = w.width;
                for r in damage {
                    for y in r.y..r.bottom() {
                        let s = y as usize * width + r.x as usize;
                        w.pixels[s..s + r.w as usize].copy_from_slice(&canvas.pixels()[s..s + r.w as usize]);
                    }
                }
            }
            DisplayImage::Direct(f) => w.pixels.copy_from_slice(frame_canvas(f).pixels()),
        }
        w.window
            .update_with_buffer(&w.pixels, w.width, w.height)
            .map_err(|e| io::Error::other(e.to_string()))
    }

    fn poll_input(&mut self, out: &mut Vec<DisplayEvent>) -> bool {
        for (d, w) in self.windows.iter_mut().enumerate() {
            // Pump events once per frame only: minifb reports a key as
            // pressed between two pumps, so a second pump would lose it.
            if !std::mem::take(&mut w.pumped) {
                w.window.update();
            }
            if !w.window.is_open() {
                return false;
            }
            let pos = w.window.get_mouse_pos(MouseMode::Discard);
            let down = w.window.get_mouse_down(MouseButton::Left);
            if let Some((x, y)) = pos {
                let (x, y) = (x as f64, y as f64);
                if w.last_pos != pos {
                    out.push(DisplayEvent::PointerMotion { display: d, x, y });
                    if w.touching && down {
                        out.push(DisplayEvent::TouchMotion { display: d, id: 0, x, y });
                        out.push(DisplayEvent::TouchFrame);
                    }
                }
                if down && !w.touching {
                    out.push(DisplayEvent::TouchDown { display: d, id: 0, x, y });
                    out.push(DisplayEvent::TouchFrame);
                    out.push(DisplayEvent::Button {
                        code: BTN_LEFT,
                        pressed: true,
                    });
                }
            }
            if !down && w.touching {
                out.push(DisplayEvent::TouchUp { id: 0 });
                out.push(DisplayEvent::TouchFrame);
                out.push(DisplayEvent::Button {
                    code: BTN_LEFT,
                    pressed: false,
                });
            }
            w.touching = down && (pos.is_some() || w.touching);
            w.last_pos = pos;
            for k in w.window.get_keys_pressed(KeyRepeat::No) {
                if let Some(code) = evdev_code(k) {
                    out.push(DisplayEvent::Key { code, pressed: true });
                }
            }
            for k in w.window.get_keys_released() {
                if let Some(code) = evdev_code(k) {
                    out.push(DisplayEvent::Key { code, pressed: false });
                }
            }
        }
        true
    }
}

/// Linux evdev key codes for the keys an HMI developer is likely to press.
fn evdev_code(k: Key) -> Option<u32> {
    use Key::*;
    const LETTERS: [(Key, u32); 26] = [
        (A, 30),
        (B, 48),
        (C, 46),
        (D, 32),
        (E, 18),
        (F, 33),
        (G, 34),
        (H, 35),
        (I, 23),
        (J, 36),
        (K, 37),
        (L, 38),
        (M, 50),
        (N, 49),
        (O, 24),
        (P, 25),
        (Q, 16),
        (R, 19),
        (S, 31),
        (T, 20),
        (U, 22),
        (V, 47),
        (W, 17),
        (X, 45),
        (Y, 21),
        (Z, 44),
    ];
    const OTHERS: [(Key, u32); 20] = [
        (Key1, 2),
        (Key2, 3),
        (Key3, 4),
        (Key4, 5),
        (Key5, 6),
        (Key6, 7),
        (Key7, 8),
        (Key8, 9),
        (Key9, 10),
        (Key0, 11),
        (Escape, 1),
        (Backspace, 14),
        (Tab, 15),
        (Enter, 28),
        (Space, 57),
        (Up, 103),
        (Left, 105),
        (Right, 106),
        (Down, 108),
        (LeftShift, 42),
    ];
    LETTERS.iter().chain(OTHERS.iter()).find(|(key, _)| *key == k).map(|(_, c)| *c)
}
