//! `cockpit-hmi`: the IVI's HMI in the cockpit sample. Six tiles on the
//! framebuffer (`/dev/fb0`, xen-fbfront); a touch (xen-kbdfront's devices,
//! fed by the compositor through vkbd) lights the tile under it, or puts it
//! out, and plays a chime (`aplay` on snd-xen-front). Every change is
//! printed (`hmi: tile N on`), which is what the tests read besides the
//! screen. F12 crashes the whole IVI (a kernel panic through sysrq), to
//! show that the cluster carries on and the IVI comes back. F11 turns a
//! load on and off: a busy loop on every CPU and the whole screen redrawn
//! as fast as it goes (a flip storm), what `cargo xtask bench
//! cockpit-load` measures the cluster under.
#![forbid(unsafe_code)]

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use evdev::{AbsoluteAxisCode, Device, EventSummary, KeyCode};

const COLS: u32 = 3;
const ROWS: u32 = 2;
const GAP: u32 = 24;
const BACKGROUND: u32 = 0x0010_1018;
/// Each tile's colour when lit; out, a dark version of it.
const LIT: [u32; 6] = [0x00e0_4040, 0x0040_c060, 0x0040_70e0, 0x00e0_b030, 0x00a0_50d0, 0x0030_c0c0];
const CHIME: &str = "/usr/share/cockpit/chime.wav";

struct Screen {
    fb: File,
    width: u32,
    height: u32,
    stride: u32,
    /// The picture being drawn, kept from one draw to the next (a fresh
    /// 2.4 MB buffer per draw is a map and an unmap each time).
    canvas: Mutex<Vec<u8>>,
}

fn sysfs(name: &str) -> Result<String, String> {
    let p = format!("/sys/class/graphics/fb0/{name}");
    std::fs::read_to_string(&p).map(|s| s.trim().to_string()).map_err(|e| format!("{p}: {e}"))
}

impl Screen {
    fn open() -> Result<Screen, String> {
        let size = sysfs("virtual_size")?;
        let (w, h) = size.split_once(',').ok_or(format!("virtual_size {size:?}"))?;
        let (width, height) = (w.parse().map_err(|_| "width")?, h.parse().map_err(|_| "height")?);
        let bpp: u32 = sysfs("bits_per_pixel")?.parse().map_err(|_| "bits_per_pixel")?;
        if bpp != 32 {
            return Err(format!("fb0 has {bpp} bits per pixel; the HMI draws 32"));
        }
        let stride = sysfs("stride")?.parse().map_err(|_| "stride")?;
        let fb = File::options().write(true).open("/dev/fb0").map_err(|e| format!("/dev/fb0: {e}"))?;
        let canvas = Mutex::new(vec![0u8; stride as usize * height as usize]);
        Ok(Screen { fb, width, height, stride, canvas })
    }

    fn tile(&self, i: usize) -> (u32, u32, u32, u32) {
        let (i, w, h) = (i as u32, (self.width - GAP * (COLS + 1)) / COLS, (self.height - GAP * (ROWS + 1)) / ROWS);
        (GAP + (i % COLS) * (w + GAP), GAP + (i / COLS) * (h + GAP), w, h)
    }

    fn tile_at(&self, x: u32, y: u32) -> Option<usize> {
        (0..LIT.len()).find(|&i| {
            let (tx, ty, w, h) = self.tile(i);
            x >= tx && x < tx + w && y >= ty && y < ty + h
        })
    }

    fn draw(&self, lit: &[bool]) -> Result<(), String> {
        self.draw_on(lit, BACKGROUND)
    }

    fn draw_on(&self, lit: &[bool], background: u32) -> Result<(), String> {
        let mut bytes = self.canvas.lock().unwrap_or_else(|e| e.into_inner());
        let stride = self.stride as usize;
        let fill = |bytes: &mut [u8], y: u32, x0: u32, w: u32, c: u32| {
            let at = y as usize * stride + x0 as usize * 4;
            for px in bytes[at..at + w as usize * 4].chunks_exact_mut(4) {
                px.copy_from_slice(&c.to_le_bytes());
            }
        };
        for y in 0..self.height {
            fill(&mut bytes, y, 0, self.width, background);
        }
        for (i, on) in lit.iter().enumerate() {
            let (tx, ty, w, h) = self.tile(i);
            let c = if *on { LIT[i] } else { (LIT[i] >> 2) & 0x003f_3f3f };
            for y in ty..ty + h {
                fill(&mut bytes, y, tx, w, c);
            }
        }
        self.fb.write_all_at(&bytes, 0).map_err(|e| format!("/dev/fb0: {e}"))
    }
}

/// xen-kbdfront's devices (keyboard, pointer, multi-touch), waited for.
fn inputs() -> Vec<Device> {
    for _ in 0..100 {
        let found: Vec<Device> = evdev::enumerate()
            .map(|(_, d)| d)
            .filter(|d| d.name().is_some_and(|n| n.starts_with("Xen Virtual")))
            .collect();
        if found.iter().any(|d| d.supported_absolute_axes().is_some_and(|a| a.contains(AbsoluteAxisCode::ABS_MT_POSITION_X))) {
            return found;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Vec::new()
}

/// A device's axis value as a position on a screen `size` pixels wide.
fn scale(v: i32, max: i32, size: u32) -> u32 {
    if max <= 0 {
        return 0;
    }
    (i64::from(v.clamp(0, max)) * i64::from(size - 1) / i64::from(max)) as u32
}

enum Input {
    Touch(u32, u32),
    Crash,
    Load,
}

/// F11's load: every CPU busy, and the screen redrawn (in two alternating
/// shades) as fast as writes go, until `on` is cleared.
fn start_load(screen: Arc<Screen>, lit: Arc<Mutex<Vec<bool>>>, on: Arc<AtomicBool>) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    for _ in 0..cpus {
        let on = on.clone();
        std::thread::spawn(move || {
            let mut x = 0u64;
            while on.load(Ordering::Relaxed) {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        });
    }
    std::thread::spawn(move || {
        let mut flips = 0u64;
        while on.load(Ordering::Relaxed) {
            let shade = if flips % 2 == 0 { BACKGROUND } else { 0x0018_1828 };
            // The tiles as they are now: a touch during the load shows.
            let tiles = lit.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if screen.draw_on(&tiles, shade).is_err() {
                break;
            }
            flips += 1;
        }
        let tiles = lit.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let _ = screen.draw(&tiles);
        println!("hmi: load off after {flips} redraws");
    });
    println!("hmi: load on ({cpus} busy loops, a redraw storm)");
}

fn chime() {
    // Fire and forget: a chime that cannot play must not stop the HMI.
    match Command::new("aplay").args(["-q", CHIME]).spawn() {
        Ok(_) => {}
        Err(e) => eprintln!("hmi: no chime: {e}"),
    }
}

fn run() -> Result<(), String> {
    let screen = Arc::new(Screen::open()?);
    let lit = Arc::new(Mutex::new(vec![false; LIT.len()]));
    screen.draw(&lit.lock().unwrap_or_else(|e| e.into_inner()))?;
    println!("hmi: {} tiles on a {}x{} screen", LIT.len(), screen.width, screen.height);
    let devices = inputs();
    println!("hmi: inputs: {:?}", devices.iter().filter_map(|d| d.name()).collect::<Vec<_>>());
    let (tx, rx) = std::sync::mpsc::channel();
    for mut d in devices {
        let tx = tx.clone();
        let max = |axis| d.get_absinfo().ok().and_then(|mut i| i.find(|(a, _)| *a == axis).map(|(_, i)| i.maximum())).unwrap_or(0);
        let (mx, my) = (max(AbsoluteAxisCode::ABS_MT_POSITION_X), max(AbsoluteAxisCode::ABS_MT_POSITION_Y));
        let (w, h) = (screen.width, screen.height);
        std::thread::spawn(move || {
            let (mut x, mut y, mut down) = (0, 0, false);
            while let Ok(events) = d.fetch_events() {
                for e in events {
                    match e.destructure() {
                        EventSummary::AbsoluteAxis(_, AbsoluteAxisCode::ABS_MT_POSITION_X, v) => x = scale(v, mx, w),
                        EventSummary::AbsoluteAxis(_, AbsoluteAxisCode::ABS_MT_POSITION_Y, v) => y = scale(v, my, h),
                        EventSummary::AbsoluteAxis(_, AbsoluteAxisCode::ABS_MT_TRACKING_ID, id) => down = id >= 0,
                        EventSummary::Key(_, KeyCode::BTN_TOUCH, v) => down = v != 0,
                        EventSummary::Synchronization(..) if down => {
                            let _ = tx.send(Input::Touch(x, y));
                            down = false;
                        }
                        EventSummary::Key(_, KeyCode::KEY_F12, 1) => {
                            let _ = tx.send(Input::Crash);
                        }
                        EventSummary::Key(_, KeyCode::KEY_F11, 1) => {
                            let _ = tx.send(Input::Load);
                        }
                        _ => {}
                    }
                }
            }
        });
    }
    drop(tx);
    let mut load: Option<Arc<AtomicBool>> = None;
    for input in rx {
        let (x, y) = match input {
            Input::Touch(x, y) => (x, y),
            Input::Crash => {
                println!("hmi: F12: crashing the IVI");
                std::fs::write("/proc/sysrq-trigger", "c").map_err(|e| format!("/proc/sysrq-trigger: {e}"))?;
                continue;
            }
            Input::Load => {
                match load.take() {
                    Some(on) => on.store(false, Ordering::Relaxed),
                    None => {
                        let on = Arc::new(AtomicBool::new(true));
                        start_load(screen.clone(), lit.clone(), on.clone());
                        load = Some(on);
                    }
                }
                continue;
            }
        };
        println!("hmi: touch at ({x}, {y})");
        if let Some(i) = screen.tile_at(x, y) {
            let now_on = {
                let mut lit = lit.lock().unwrap_or_else(|e| e.into_inner());
                lit[i] = !lit[i];
                screen.draw(&lit)?;
                lit[i]
            };
            println!("hmi: tile {i} {}", if now_on { "on" } else { "off" });
            chime();
        }
    }
    Err("every input device went away".into())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("hmi: {e}");
        std::process::exit(1);
    }
}
