//! The domU side: input logger, xenstore command loop, framebuffer pattern,
//! ALSA period timing.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pv_transport::linux::XsClient;
use pv_transport::xenbus::read_string;
use pv_transport::Xenstore;

use crate::Result;

struct Shared {
    /// Print every input event (off during benchmarks).
    verbose: AtomicBool,
    /// Key events seen on any device; mirrored to `data/keys`.
    keys: AtomicU64,
    opened: Mutex<HashSet<String>>,
    home: String,
}

fn xs() -> Result<XsClient> {
    XsClient::open_default().map_err(|e| format!("xenstore: {e}"))
}

pub fn run() -> Result {
    let store = xs()?;
    let domid = read_string(&store, "domid").map_err(|e| format!("domid: {e}"))?;
    let home = format!("/local/domain/{domid}/data");
    let shared = Arc::new(Shared {
        verbose: AtomicBool::new(true),
        keys: AtomicU64::new(0),
        opened: Mutex::new(HashSet::new()),
        home: home.clone(),
    });
    let s = shared.clone();
    std::thread::spawn(move || scan_inputs(s));
    let h = home.clone();
    std::thread::spawn(move || {
        if let Err(e) = pong(&h) {
            println!("probe: error: ping loop: {e}");
        }
    });
    println!("probe: agent up in dom{domid}");
    commands(&store, &shared)
}

/// Answers every `data/ping` with the same value in `data/pong`.
fn pong(home: &str) -> Result {
    let xs = xs()?;
    let ping = format!("{home}/ping");
    xs.watch(&ping, "ping").map_err(|e| e.to_string())?;
    let mut last = String::new();
    loop {
        if xs.wait_watch(1000).map_err(|e| e.to_string())?.is_none() {
            continue;
        }
        if let Ok(v) = read_string(&xs, &ping) {
            if v != last {
                xs.write(&format!("{home}/pong"), v.as_bytes()).map_err(|e| e.to_string())?;
                last = v;
            }
        }
    }
}

/// Opens every input node as it appears, one reader thread each.
fn scan_inputs(shared: Arc<Shared>) {
    loop {
        let mut nodes: Vec<String> = std::fs::read_dir("/dev/input")
            .map(|d| d.flatten().map(|e| e.path().display().to_string()).collect())
            .unwrap_or_default();
        nodes.retain(|n| n.starts_with("/dev/input/event"));
        nodes.sort();
        for n in nodes {
            if !shared.opened.lock().unwrap().insert(n.clone()) {
                continue;
            }
            let s = shared.clone();
            std::thread::spawn(move || {
                if let Err(e) = read_input(&n, &s) {
                    println!("probe: input {n} closed: {e}");
                }
                s.opened.lock().unwrap().remove(&n);
            });
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn read_input(node: &str, shared: &Shared) -> Result {
    let mut dev = evdev::Device::open(node).map_err(|e| e.to_string())?;
    let short = node.trim_start_matches("/dev/input/").to_string();
    let mut axes = String::new();
    if let Ok(info) = dev.get_absinfo() {
        for (axis, a) in info {
            axes.push_str(&format!(" abs{}={}..{}", axis.0, a.minimum(), a.maximum()));
        }
    }
    println!("probe: input {short} \"{}\"{axes}", dev.name().unwrap_or("?"));
    let xs = xs()?;
    let keys_node = format!("{}/keys", shared.home);
    loop {
        let events: Vec<evdev::InputEvent> = dev.fetch_events().map_err(|e| e.to_string())?.collect();
        for ev in events {
            let (kind, code, value) = (ev.event_type().0, ev.code(), ev.value());
            if kind == 1 {
                // Acknowledge first: the latency benchmark waits on it.
                let n = shared.keys.fetch_add(1, Ordering::SeqCst) + 1;
                let _ = xs.write(&keys_node, n.to_string().as_bytes());
            }
            if kind != 0 && shared.verbose.load(Ordering::Relaxed) {
                println!("probe: ev {short} {kind} {code} {value}");
            }
        }
    }
}

/// Runs `<seq> <verb> [args]` from `data/cmd`, answering in `data/result`.
fn commands(xs: &XsClient, shared: &Shared) -> Result {
    let cmd = format!("{}/cmd", shared.home);
    xs.watch(&cmd, "cmd").map_err(|e| e.to_string())?;
    let mut done = 0u64;
    loop {
        if xs.wait_watch(1000).map_err(|e| e.to_string())?.is_none() {
            continue;
        }
        let Ok(line) = read_string(xs, &cmd) else { continue };
        let mut parts = line.splitn(3, ' ');
        let Some(seq) = parts.next().and_then(|s| s.parse::<u64>().ok()) else { continue };
        if seq <= done {
            continue;
        }
        done = seq;
        let verb = parts.next().unwrap_or("");
        let args = parts.next().unwrap_or("");
        let r = match verb {
            "fb" => draw_pattern(),
            "tone" => {
                let v: Vec<u32> = args.split_whitespace().filter_map(|a| a.parse().ok()).collect();
                tone(v.first().copied().unwrap_or(2000), v.get(1).copied().unwrap_or(960), v.get(2).copied().unwrap_or(4))
            }
            "sh" => shell(args),
            "quiet" => {
                shared.verbose.store(false, Ordering::Relaxed);
                Ok("quiet".into())
            }
            "verbose" => {
                shared.verbose.store(true, Ordering::Relaxed);
                Ok("verbose".into())
            }
            other => Err(format!("unknown command {other}")),
        };
        let text = match &r {
            Ok(m) => format!("{seq} ok {m}"),
            Err(e) => format!("{seq} err {e}"),
        };
        println!("probe: result {text}");
        let _ = xs.write(&format!("{}/result", shared.home), text.as_bytes());
    }
}

fn shell(cmd: &str) -> Result<String> {
    let out = std::process::Command::new("/bin/busybox")
        .args(["sh", "-c", cmd])
        .output()
        .map_err(|e| e.to_string())?;
    for l in String::from_utf8_lossy(&out.stdout).lines().chain(String::from_utf8_lossy(&out.stderr).lines()) {
        println!("probe: sh| {l}");
    }
    Ok(format!("exit {}", out.status.code().unwrap_or(-1)))
}

fn sysfs_u32s(name: &str) -> Result<Vec<u32>> {
    let p = format!("/sys/class/graphics/fb0/{name}");
    let s = std::fs::read_to_string(&p).map_err(|e| format!("{p}: {e}"))?;
    s.trim().split(',').map(|v| v.parse().map_err(|_| format!("{p}: {s}"))).collect()
}

/// Writes the test pattern over the whole of `/dev/fb0` (XRGB8888).
fn draw_pattern() -> Result<String> {
    let size = sysfs_u32s("virtual_size")?;
    let (w, h) = (size[0], size[1]);
    let bpp = sysfs_u32s("bits_per_pixel")?[0];
    let stride = sysfs_u32s("stride")?[0];
    if bpp != 32 {
        return Err(format!("fb0 has {bpp} bits per pixel, the pattern needs 32"));
    }
    let mut buf = vec![0u8; (stride * h) as usize];
    for y in 0..h {
        for x in 0..w {
            let at = (y * stride + x * 4) as usize;
            buf[at..at + 4].copy_from_slice(&crate::pattern::rgb(x, y).to_le_bytes());
        }
    }
    std::fs::write("/dev/fb0", &buf).map_err(|e| format!("/dev/fb0: {e}"))?;
    Ok(format!("pattern {w}x{h} stride {stride}"))
}

/// Plays a 1 kHz tone on `hw:0,0` period by period for `ms` milliseconds
/// (periods of `period` frames, `periods` to the buffer) and reports how
/// regularly the periods were taken: once the buffer is full, each
/// `writei` returns when the backend has played a period.
fn tone(ms: u32, period: u32, periods: u32) -> Result<String> {
    use alsa::pcm::{Access, Format, HwParams, PCM};
    use alsa::{Direction, ValueOr};
    const RATE: u32 = 48_000;
    let (period_want, periods_want) = (period as usize, periods.max(2) as usize);
    fn e(what: &'static str) -> impl Fn(alsa::Error) -> String {
        move |e| format!("{what}: {e}")
    }
    let pcm = PCM::new("hw:0,0", Direction::Playback, false).map_err(e("open hw:0,0"))?;
    {
        let hw = HwParams::any(&pcm).map_err(e("hw_params"))?;
        hw.set_access(Access::RWInterleaved).map_err(e("access"))?;
        hw.set_format(Format::s16()).map_err(e("format"))?;
        hw.set_channels(2).map_err(e("channels"))?;
        hw.set_rate(RATE, ValueOr::Nearest).map_err(e("rate"))?;
        hw.set_period_size_near(period_want as i64, ValueOr::Nearest).map_err(e("period"))?;
        hw.set_buffer_size_near((period_want * periods_want) as i64).map_err(e("buffer"))?;
        pcm.hw_params(&hw).map_err(e("hw_params"))?;
    }
    let (period, buffer) = {
        let hw = pcm.hw_params_current().map_err(e("hw_params"))?;
        (hw.get_period_size().map_err(e("period"))? as usize, hw.get_buffer_size().map_err(e("buffer"))? as usize)
    };
    let io = pcm.io_i16().map_err(e("io"))?;
    let total = (RATE as u64 * u64::from(ms) / 1000) as usize / period;
    let mut chunk = vec![0i16; period * 2];
    let mut times = Vec::with_capacity(total);
    let mut xruns = 0;
    let mut t = 0usize;
    for _ in 0..total {
        for f in 0..period {
            let v = ((t as f64 * 2.0 * std::f64::consts::PI * 1000.0 / f64::from(RATE)).sin() * 8000.0) as i16;
            chunk[2 * f] = v;
            chunk[2 * f + 1] = v;
            t += 1;
        }
        let mut off = 0;
        while off < period {
            match io.writei(&chunk[off * 2..]) {
                Ok(n) => off += n,
                Err(err) => {
                    xruns += 1;
                    pcm.try_recover(err, true).map_err(e("recover"))?;
                }
            }
        }
        times.push(Instant::now());
    }
    let _ = pcm.drain();
    // The first buffer-full of writes return at once; the rest are paced.
    let skip = buffer / period + 1;
    let iv: Vec<f64> = times.windows(2).skip(skip).map(|w| (w[1] - w[0]).as_secs_f64() * 1000.0).collect();
    if iv.len() < 4 {
        return Err("too few periods to time".into());
    }
    let nominal = period as f64 * 1000.0 / f64::from(RATE);
    let mean = iv.iter().sum::<f64>() / iv.len() as f64;
    let sd = (iv.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / iv.len() as f64).sqrt();
    let mut sorted = iv.clone();
    sorted.sort_by(f64::total_cmp);
    let p99 = sorted[(sorted.len() * 99 / 100).min(sorted.len() - 1)];
    let worst = sorted.iter().map(|x| (x - nominal).abs()).fold(0.0, f64::max);
    Ok(format!(
        "period {period} frames ({nominal:.2} ms) buffer {buffer} frames; {} intervals: mean {mean:.3} ms sd {sd:.3} ms min {:.3} max {:.3} p99 {p99:.3} worst deviation {worst:.3} ms; xruns {xruns}",
        iv.len(),
        sorted[0],
        sorted[sorted.len() - 1]
    ))
}
