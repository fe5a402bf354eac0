//! Round trips for `cargo xtask bench xen`, measured inside the guests on
//! either hypervisor with the same stock kernel interfaces:
//!
//! * `interop-probe evtchn-echo <remote> <n>` (frontend): allocates a port
//!   for `remote`, publishes it in `data/evtchn-port`, and answers `n`
//!   events with an event.
//! * `interop-probe evtchn-ping <fe> <n>` (backend): binds to that port and
//!   times `n` event round trips.
//! * `interop-probe xs-read <path> <n>`: times `n` reads of one node and
//!   prints its value (checked equal across hypervisors by the host).

use std::time::{Duration, Instant};

use pv_transport::linux::{Evtchn, XsClient};
use pv_transport::xenbus::read_string;
use pv_transport::{EventChannel, Xenstore};

use crate::Result;

fn xs() -> Result<XsClient> {
    XsClient::open_default().map_err(|e| format!("xenstore: {e}"))
}

fn num<T: std::str::FromStr>(s: &str, what: &str) -> Result<T> {
    s.parse().map_err(|_| format!("{what}: not a number: {s}"))
}

/// Median and extremes of microsecond samples.
fn summary(v: &mut [f64]) -> String {
    v.sort_by(f64::total_cmp);
    let pick = |q: usize| v[(v.len() * q / 100).min(v.len() - 1)];
    format!("median_us {:.1} p95_us {:.1} min_us {:.1} n {}", pick(50), pick(95), v[0], v.len())
}

pub fn evtchn_echo(remote: &str, n: &str) -> Result {
    let (remote, n): (u16, usize) = (num(remote, "remote")?, num(n, "count")?);
    let ev = Evtchn::open().map_err(|e| format!("evtchn: {e}"))?;
    let port = ev.alloc_unbound(remote).map_err(|e| format!("alloc_unbound: {e}"))?;
    xs()?.write("data/evtchn-port", port.to_string().as_bytes()).map_err(|e| e.to_string())?;
    println!("probe: evtchn-echo port {port} for dom{remote}");
    let mut answered = 0;
    while answered < n {
        match ev.wait(30_000).map_err(|e| e.to_string())? {
            Some(p) => {
                ev.unmask(p).map_err(|e| e.to_string())?;
                ev.notify(port).map_err(|e| e.to_string())?;
                answered += 1;
            }
            None => return Err(format!("evtchn-echo: idle for 30 s after {answered} events")),
        }
    }
    println!("probe: evtchn-echo answered {answered}");
    Ok(())
}

pub fn evtchn_ping(fe: &str, n: &str) -> Result {
    let (fe, n): (u16, usize) = (num(fe, "frontend")?, num(n, "count")?);
    let xs = xs()?;
    let node = format!("/local/domain/{fe}/data/evtchn-port");
    let deadline = Instant::now() + Duration::from_secs(30);
    let remote_port: u32 = loop {
        if let Ok(v) = read_string(&xs, &node) {
            break num(&v, "port")?;
        }
        if Instant::now() > deadline {
            return Err(format!("no {node}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let ev = Evtchn::open().map_err(|e| format!("evtchn: {e}"))?;
    let port = ev.bind_interdomain(fe, remote_port).map_err(|e| format!("bind_interdomain: {e}"))?;
    let mut rtt = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        ev.notify(port).map_err(|e| e.to_string())?;
        let got = ev.wait(5_000).map_err(|e| e.to_string())?.ok_or("no echo within 5 s")?;
        rtt.push(t0.elapsed().as_secs_f64() * 1e6);
        ev.unmask(got).map_err(|e| e.to_string())?;
    }
    let _ = ev.unbind(port);
    println!("probe: evtchn-rtt {}", summary(&mut rtt));
    Ok(())
}

pub fn xs_read(path: &str, n: &str) -> Result {
    let n: usize = num(n, "count")?;
    let xs = xs()?;
    let mut t = Vec::with_capacity(n);
    let mut value = String::new();
    for _ in 0..n {
        let t0 = Instant::now();
        value = read_string(&xs, path).map_err(|e| format!("{path}: {e}"))?;
        t.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    println!("probe: xs-read {} value {value:?}", summary(&mut t));
    Ok(())
}
