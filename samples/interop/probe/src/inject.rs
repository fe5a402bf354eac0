//! The dom0 side: uinput devices the backend reads, and the input latency
//! benchmark.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use evdev::uinput::VirtualDevice;
use evdev::{
    AbsInfo, AbsoluteAxisCode as Abs, AttributeSet, EventType, InputEvent, KeyCode, PropType,
    UinputAbsSetup,
};
use pv_transport::linux::XsClient;
use pv_transport::xenbus::read_string;
use pv_transport::Xenstore;

use crate::Result;

/// The touch device's axis range: unlike any frontend size, so scaling shows.
pub const TOUCH_MAX: i32 = 9999;
/// The key the latency benchmark presses.
const BENCH_KEY: KeyCode = KeyCode::KEY_F9;

fn io(what: &'static str) -> impl Fn(std::io::Error) -> String {
    move |e| format!("{what}: {e}")
}

fn node_of(dev: &mut VirtualDevice) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(Ok(p)) = dev.enumerate_dev_nodes_blocking().map_err(io("uinput nodes"))?.next() {
            if p.exists() {
                return Ok(p.display().to_string());
            }
        }
        if Instant::now() > deadline {
            return Err("uinput device has no /dev/input node".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn touch_device() -> Result<VirtualDevice> {
    let axis = |code, min, max| UinputAbsSetup::new(code, AbsInfo::new(0, min, max, 0, 0, 0));
    let mut keys = AttributeSet::<KeyCode>::new();
    keys.insert(KeyCode::BTN_TOUCH);
    let mut props = AttributeSet::<PropType>::new();
    props.insert(PropType::DIRECT);
    let mut b = VirtualDevice::builder()
        .map_err(io("/dev/uinput"))?
        .name("interop-touch")
        .with_keys(&keys)
        .map_err(io("keys"))?
        .with_properties(&props)
        .map_err(io("props"))?;
    for a in [
        axis(Abs::ABS_X, 0, TOUCH_MAX),
        axis(Abs::ABS_Y, 0, TOUCH_MAX),
        axis(Abs::ABS_MT_SLOT, 0, 9),
        axis(Abs::ABS_MT_TRACKING_ID, 0, 65535),
        axis(Abs::ABS_MT_POSITION_X, 0, TOUCH_MAX),
        axis(Abs::ABS_MT_POSITION_Y, 0, TOUCH_MAX),
        axis(Abs::ABS_MT_TOUCH_MAJOR, 0, 255),
    ] {
        b = b.with_absolute_axis(&a).map_err(io("axis"))?;
    }
    b.build().map_err(io("uinput create"))
}

fn key_device() -> Result<VirtualDevice> {
    let mut keys = AttributeSet::<KeyCode>::new();
    for k in [KeyCode::KEY_A, KeyCode::KEY_B, KeyCode::KEY_ENTER, KeyCode::KEY_LEFTSHIFT, BENCH_KEY] {
        keys.insert(k);
    }
    VirtualDevice::builder()
        .map_err(io("/dev/uinput"))?
        .name("interop-keys")
        .with_keys(&keys)
        .map_err(io("keys"))?
        .build()
        .map_err(io("uinput create"))
}

fn abs(code: Abs, v: i32) -> InputEvent {
    InputEvent::new(EventType::ABSOLUTE.0, code.0, v)
}

fn key(code: KeyCode, v: i32) -> InputEvent {
    InputEvent::new(EventType::KEY.0, code.0, v)
}

/// Two fingers down (contact sizes 40 and 60), the first one moves, both
/// lift: three MT frames.
fn touch_gesture(dev: &mut VirtualDevice) -> Result {
    let emit = |dev: &mut VirtualDevice, evs: &[InputEvent]| dev.emit(evs).map_err(io("emit"));
    emit(
        dev,
        &[
            abs(Abs::ABS_MT_SLOT, 0),
            abs(Abs::ABS_MT_TRACKING_ID, 100),
            abs(Abs::ABS_MT_POSITION_X, 1000),
            abs(Abs::ABS_MT_POSITION_Y, 2000),
            abs(Abs::ABS_MT_TOUCH_MAJOR, 40),
            abs(Abs::ABS_MT_SLOT, 1),
            abs(Abs::ABS_MT_TRACKING_ID, 101),
            abs(Abs::ABS_MT_POSITION_X, 8000),
            abs(Abs::ABS_MT_POSITION_Y, 7000),
            abs(Abs::ABS_MT_TOUCH_MAJOR, 60),
            key(KeyCode::BTN_TOUCH, 1),
            abs(Abs::ABS_X, 1000),
            abs(Abs::ABS_Y, 2000),
        ],
    )?;
    std::thread::sleep(Duration::from_millis(100));
    emit(
        dev,
        &[
            abs(Abs::ABS_MT_SLOT, 0),
            abs(Abs::ABS_MT_POSITION_X, 5000),
            abs(Abs::ABS_MT_POSITION_Y, 5000),
            abs(Abs::ABS_X, 5000),
            abs(Abs::ABS_Y, 5000),
        ],
    )?;
    std::thread::sleep(Duration::from_millis(100));
    emit(
        dev,
        &[
            abs(Abs::ABS_MT_SLOT, 0),
            abs(Abs::ABS_MT_TRACKING_ID, -1),
            abs(Abs::ABS_MT_SLOT, 1),
            abs(Abs::ABS_MT_TRACKING_ID, -1),
            key(KeyCode::BTN_TOUCH, 0),
        ],
    )
}

pub fn run(fifo: &str) -> Result {
    let mut touch = touch_device()?;
    let mut keys = key_device()?;
    println!("probe: inject touch={} keys={}", node_of(&mut touch)?, node_of(&mut keys)?);
    loop {
        let f = std::fs::File::open(fifo).map_err(|e| format!("{fifo}: {e}"))?;
        for line in BufReader::new(f).lines() {
            let line = line.map_err(io("fifo"))?;
            let words: Vec<&str> = line.split_whitespace().collect();
            let r = match words.as_slice() {
                ["touch"] => touch_gesture(&mut touch).map(|()| "touch gesture sent".to_string()),
                ["key", code] => match code.parse::<u16>() {
                    Ok(c) => keys
                        .emit(&[key(KeyCode(c), 1)])
                        .and_then(|()| keys.emit(&[key(KeyCode(c), 0)]))
                        .map(|()| format!("key {c} pressed and released"))
                        .map_err(|e| e.to_string()),
                    Err(_) => Err(format!("bad key code {code}")),
                },
                ["latency", dom, n] => match (dom.parse::<u16>(), n.parse::<usize>()) {
                    (Ok(d), Ok(n)) => latency(&mut keys, d, n),
                    _ => Err("usage: latency <domid> <count>".into()),
                },
                [] => continue,
                _ => Err(format!("unknown command: {line}")),
            };
            match r {
                Ok(m) => println!("probe: inject ok {m}"),
                Err(e) => println!("probe: inject err {e}"),
            }
        }
    }
}

/// Waits until `node` reads `want` (watched with `token`).
fn wait_value(xs: &XsClient, node: &str, want: &str, deadline: Instant) -> Result {
    loop {
        if read_string(xs, node).is_ok_and(|v| v == want) {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("{node} never read {want}"));
        }
        xs.wait_watch(left.as_millis().min(1000) as u32).map_err(|e| e.to_string())?;
    }
}

fn stats(v: &mut [f64]) -> String {
    v.sort_by(f64::total_cmp);
    let pick = |q: usize| v[(v.len() * q / 100).min(v.len() - 1)];
    format!("median {:.2} p95 {:.2} min {:.2} max {:.2}", pick(50), pick(95), v[0], v[v.len() - 1])
}

/// Round trips, all timed on dom0's clock: (a) a key pressed on the uinput
/// device until the domU agent has read it from its evdev node and written
/// its key count to xenstore; (b) a xenstore ping answered by the agent's
/// pong. One-way input latency is estimated as (a) minus half of (b).
fn latency(keys: &mut VirtualDevice, domid: u16, n: usize) -> Result<String> {
    let xs = XsClient::open_default().map_err(|e| format!("xenstore: {e}"))?;
    let base = format!("/local/domain/{domid}/data");
    let (keys_node, ping, pong) = (format!("{base}/keys"), format!("{base}/ping"), format!("{base}/pong"));
    xs.watch(&keys_node, "keys").map_err(|e| e.to_string())?;
    xs.watch(&pong, "pong").map_err(|e| e.to_string())?;
    let mut count: u64 = read_string(&xs, &keys_node).ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let (mut input, mut store) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        let deadline = Instant::now() + Duration::from_secs(5);
        let tag = format!("{}-{i}", std::process::id());
        let t0 = Instant::now();
        xs.write(&ping, tag.as_bytes()).map_err(|e| e.to_string())?;
        wait_value(&xs, &pong, &tag, deadline)?;
        store.push(t0.elapsed().as_secs_f64() * 1000.0);
        // Spread the presses over the backend's polling period.
        std::thread::sleep(Duration::from_millis(7 + (i as u64 * 3) % 11));
        let t0 = Instant::now();
        keys.emit(&[key(BENCH_KEY, (i % 2 == 0) as i32)]).map_err(io("emit"))?;
        count += 1;
        wait_value(&xs, &keys_node, &count.to_string(), deadline)?;
        input.push(t0.elapsed().as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_millis(5));
    }
    if n % 2 == 1 {
        let _ = keys.emit(&[key(BENCH_KEY, 0)]);
    }
    let mut one_way: Vec<f64> = {
        let mut s = store.clone();
        s.sort_by(f64::total_cmp);
        let half = s[s.len() / 2] / 2.0;
        input.iter().map(|x| x - half).collect()
    };
    Ok(format!(
        "latency n={n} key_rtt_ms {} | xenstore_rtt_ms {} | one_way_ms {}",
        stats(&mut input),
        stats(&mut store),
        stats(&mut one_way)
    ))
}
