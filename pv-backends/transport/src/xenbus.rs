//! XenBus helpers over any [`Xenstore`]: state nodes, typed reads, and
//! waiting for the peer to reach a state.
//!
//! Both ends of every device use these, so "missing or malformed means
//! Unknown" and "numbers are decimal" are decided once.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use xen_abi::io::wire::parse_decimal;
pub use xen_abi::io::xenbus::XenbusState;

use crate::{Error, Result, Xenstore};

/// `<dir>/<name>`.
pub fn join(dir: &str, name: &str) -> String {
    format!("{dir}/{name}")
}

/// The state in `<dir>/state`; a missing or malformed node reads as
/// `Unknown`, which is also what a vanished peer looks like.
pub fn read_state(xs: &dyn Xenstore, dir: &str) -> XenbusState {
    xs.read(&join(dir, "state"))
        .ok()
        .and_then(|v| XenbusState::parse(&v).ok())
        .unwrap_or(XenbusState::Unknown)
}

/// Publishes our `state` in `<dir>/state`, as its decimal number; the
/// peer's watch on that node fires.
pub fn write_state(xs: &dyn Xenstore, dir: &str, state: XenbusState) -> Result<()> {
    xs.write(&join(dir, "state"), state.as_str().as_bytes())
}

/// A node's value as text, without a trailing NUL or surrounding blanks.
pub fn read_string(xs: &dyn Xenstore, path: &str) -> Result<String> {
    let v = xs.read(path)?;
    let v = v.strip_suffix(b"\0").unwrap_or(&v);
    let s = core::str::from_utf8(v).map_err(|_| Error::Invalid("node is not UTF-8"))?;
    Ok(String::from(s.trim()))
}

/// A decimal node. Malformed text is [`Error::Invalid`].
pub fn read_u32(xs: &dyn Xenstore, path: &str) -> Result<u32> {
    parse_decimal(&xs.read(path)?).map_err(|_| Error::Invalid("node is not a decimal number"))
}

/// A decimal node, or `default` when the node is absent. Malformed text
/// is still an error: a value someone wrote wrongly is not a default.
pub fn read_u32_or(xs: &dyn Xenstore, path: &str, default: u32) -> Result<u32> {
    match read_u32(xs, path) {
        Err(Error::NotFound) => Ok(default),
        other => other,
    }
}

/// A feature flag: "1" enables; absent, "0" or anything else does not.
pub fn read_flag(xs: &dyn Xenstore, path: &str) -> bool {
    matches!(read_u32(xs, path), Ok(1))
}

/// Children of `dir` that are decimal indices, in numeric order.
pub fn numbered_children(xs: &dyn Xenstore, dir: &str) -> Result<Vec<u32>> {
    let mut ids: Vec<u32> = xs
        .directory(dir)?
        .iter()
        .filter_map(|n| parse_decimal(n.as_bytes()).ok())
        .collect();
    ids.sort_unstable();
    Ok(ids)
}

/// Waits until the state in `<dir>/state` satisfies `want`, watching the
/// node with `token`. Gives up after about `timeout_ms` without a
/// matching state (watch events for other tokens are ignored here; the
/// caller re-reads whatever they were about).
pub fn wait_state(
    xs: &dyn Xenstore,
    dir: &str,
    token: &str,
    timeout_ms: u32,
    want: impl Fn(XenbusState) -> bool,
) -> Result<XenbusState> {
    let node = join(dir, "state");
    xs.watch(&node, token)?;
    let result = wait_loop(xs, dir, timeout_ms, want);
    let _ = xs.unwatch(&node, token);
    result
}

fn wait_loop(
    xs: &dyn Xenstore,
    dir: &str,
    timeout_ms: u32,
    want: impl Fn(XenbusState) -> bool,
) -> Result<XenbusState> {
    const STEP_MS: u32 = 20;
    let mut left = timeout_ms;
    loop {
        let s = read_state(xs, dir);
        if want(s) {
            return Ok(s);
        }
        if left == 0 {
            return Err(Error::Timeout);
        }
        let step = left.min(STEP_MS);
        if xs.wait_watch(step)?.is_none() {
            left -= step;
        } else {
            // An event is not a clock tick, but a peer flapping forever
            // must not keep us here forever either.
            left = left.saturating_sub(1);
        }
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use crate::loopback::Loopback;

    #[test]
    fn typed_reads() {
        let lb = Loopback::new();
        let xs = lb.xenstore(0);
        xs.write("/a/n", b"42\n").unwrap();
        xs.write("/a/bad", b"4x").unwrap();
        xs.write("/a/flag", b"1").unwrap();
        assert_eq!(read_u32(&*xs, "/a/n"), Ok(42));
        assert_eq!(read_u32_or(&*xs, "/a/none", 7), Ok(7));
        assert!(matches!(
            read_u32_or(&*xs, "/a/bad", 7),
            Err(Error::Invalid(_))
        ));
        assert!(read_flag(&*xs, "/a/flag"));
        assert!(!read_flag(&*xs, "/a/n"));
        assert_eq!(read_state(&*xs, "/a"), XenbusState::Unknown);
        write_state(&*xs, "/a", XenbusState::Connected).unwrap();
        assert_eq!(read_state(&*xs, "/a"), XenbusState::Connected);
        xs.write("/a/3/x", b"").unwrap();
        xs.write("/a/10/x", b"").unwrap();
        assert_eq!(numbered_children(&*xs, "/a"), Ok(alloc::vec![3, 10]));
    }

    #[test]
    fn waits_for_a_state_set_by_another_thread() {
        let lb = Loopback::new();
        let xs = lb.xenstore(1);
        let other = lb.xenstore(0);
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(30));
            write_state(&*other, "/dev", XenbusState::InitWait).unwrap();
        });
        let s = wait_state(&*xs, "/dev", "t", 2000, |s| s == XenbusState::InitWait);
        assert_eq!(s, Ok(XenbusState::InitWait));
        t.join().unwrap();
        assert_eq!(
            wait_state(&*xs, "/dev", "t", 50, |s| s == XenbusState::Connected),
            Err(Error::Timeout)
        );
    }
}

/// A frontend's first step: Initialising (again, after an earlier close),
/// then wait for the backend's InitWait, which a backend gives only to a
/// frontend that starts over.
pub fn start_frontend(xs: &dyn Xenstore, fe_dir: &str, be_dir: &str, token: &str, timeout_ms: u32) -> Result<()> {
    if read_state(xs, fe_dir) != XenbusState::Initialising {
        write_state(xs, fe_dir, XenbusState::Initialising)?;
    }
    wait_state(xs, be_dir, token, timeout_ms, |s| s == XenbusState::InitWait).map(drop)
}

/// A frontend's half of the connection handshake: publishes `nodes` (ring
/// references, event channels, requests) together with state Initialised in
/// one go, waits for the backend to answer, and moves to Connected if it
/// did. Returns the backend's final state: anything but Connected means the
/// backend gave up (Closing/Closed) and the frontend should too.
pub fn connect_frontend(
    xs: &dyn Xenstore,
    fe_dir: &str,
    be_dir: &str,
    token: &str,
    nodes: &[(String, String)],
    timeout_ms: u32,
) -> Result<XenbusState> {
    let state = join(fe_dir, "state");
    let mut refs: Vec<(&str, &[u8])> = nodes.iter().map(|(k, v)| (k.as_str(), v.as_bytes())).collect();
    refs.push((state.as_str(), XenbusState::Initialised.as_str().as_bytes()));
    xs.write_all(&refs)?;
    let s = wait_state(xs, be_dir, token, timeout_ms, |s| {
        matches!(s, XenbusState::Connected | XenbusState::Closing | XenbusState::Closed)
    })?;
    if s == XenbusState::Connected {
        write_state(xs, fe_dir, XenbusState::Connected)?;
    }
    Ok(s)
}

/// A frontend's half of closing: Closing, wait (up to `timeout_ms`) for the
/// backend to say Closing or Closed, then Closed. Any other state is not an
/// answer: a restarted backend says InitWait while it may still hold our
/// rings. A backend that never answers does not keep the frontend from
/// closing.
pub fn disconnect_frontend(xs: &dyn Xenstore, fe_dir: &str, be_dir: &str, token: &str, timeout_ms: u32) -> Result<()> {
    write_state(xs, fe_dir, XenbusState::Closing)?;
    let _ = wait_state(xs, be_dir, token, timeout_ms, |s| matches!(s, XenbusState::Closing | XenbusState::Closed));
    write_state(xs, fe_dir, XenbusState::Closed)
}
