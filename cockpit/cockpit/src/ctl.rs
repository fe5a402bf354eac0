//! The HMI control socket: a line per request on a Unix socket, a line per
//! reply (`ok ...` or `error: ...`), served between frames without ever
//! blocking the compositor. `cockpit ctl` is its command-line client.
//!
//! Requests:
//! - `show NAME`, `hide NAME`
//! - `move NAME X Y W H` (display pixels)
//! - `opacity NAME VALUE [MS]` (0.0-1.0, faded over MS milliseconds)
//! - `list`
//! - `scene NAME` (switch to one of the layout's scenes), `scenes`
//!
//! The layout's safety rules hold (see `Compositor::set_shown`): a request
//! that would hide, fade or move a cluster or telltale off its display is
//! refused with the reason.

use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use cockpit_core::{Compositor, Rect};

/// Clients served at once; more wait in the listen queue.
const MAX_CLIENTS: usize = 4;
/// The longest request line: a longer one is refused and its client dropped.
const MAX_LINE: usize = 256;

/// A full server makes room for a newcomer by dropping the client idle
/// longest, if it has been idle at least this long (idle connections
/// cannot lock the HMI out).
const IDLE: Duration = Duration::from_secs(1);

struct Client {
    stream: UnixStream,
    buf: Vec<u8>,
    /// When it last sent anything.
    last: Instant,
}

/// The listening socket and its connected clients.
pub struct CtlServer {
    listener: UnixListener,
    clients: Vec<Client>,
}

impl CtlServer {
    /// Listens at `path` (replacing a stale socket), for the owner only:
    /// the socket file is owner-only, and a peer of another user that
    /// connected before that took effect is refused by its credentials.
    pub fn bind(path: &Path) -> io::Result<CtlServer> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        listener.set_nonblocking(true)?;
        Ok(CtlServer { listener, clients: Vec::new() })
    }

    /// Accepts, reads and answers whatever is ready; never waits.
    pub fn serve(&mut self, comp: &mut Compositor, now: Instant) {
        // A bounded number of accepts per frame, whatever connects.
        for _ in 0..MAX_CLIENTS * 2 {
            let Ok((mut stream, _)) = self.listener.accept() else { break };
            if !same_user(&stream) {
                let _ = stream.write_all(b"error: the control socket serves its owner only\n");
                continue;
            }
            if self.clients.len() >= MAX_CLIENTS {
                let idlest = self.clients.iter().enumerate().min_by_key(|(_, c)| c.last).map(|(i, c)| (i, c.last));
                match idlest {
                    Some((i, last)) if now.saturating_duration_since(last) >= IDLE => {
                        let mut old = self.clients.swap_remove(i);
                        let _ = old.stream.write_all(b"error: dropped while idle to serve another client\n");
                    }
                    _ => {
                        let _ = stream.write_all(b"error: busy; try again\n");
                        continue;
                    }
                }
            }
            if stream.set_nonblocking(true).is_ok() {
                self.clients.push(Client { stream, buf: Vec::new(), last: now });
            }
        }
        self.clients.retain_mut(|c| c.serve(comp, now));
    }
}

/// Whether the peer runs as this process's user.
fn same_user(stream: &UnixStream) -> bool {
    rustix::net::sockopt::socket_peercred(stream).is_ok_and(|c| c.uid == rustix::process::geteuid())
}

impl Client {
    /// Answers each complete line; false when the client is gone or
    /// misbehaved (it is dropped).
    fn serve(&mut self, comp: &mut Compositor, now: Instant) -> bool {
        let mut chunk = [0u8; 256];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return false,
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    self.last = now;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
            if self.buf.len() > MAX_LINE * 4 {
                break;
            }
        }
        while let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=end).collect();
            let reply = match std::str::from_utf8(&line[..end]) {
                Ok(text) if end <= MAX_LINE => match apply(comp, text.trim(), now) {
                    Ok(r) => format!("ok{}{r}\n", if r.is_empty() { "" } else { " " }),
                    Err(e) => format!("error: {e}\n"),
                },
                _ => format!("error: a request is one line of at most {MAX_LINE} UTF-8 bytes\n"),
            };
            // A client that does not read its replies is dropped, not waited for.
            if self.stream.write_all(reply.as_bytes()).is_err() {
                return false;
            }
        }
        self.buf.len() <= MAX_LINE
    }
}

/// Carries out one request.
pub fn apply(comp: &mut Compositor, line: &str, now: Instant) -> Result<String, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let num = |s: &str, what: &str| s.parse::<i32>().map_err(|_| format!("{what} `{s}` is not a whole number"));
    match words.as_slice() {
        ["show", name] => comp.set_shown(name, true).map(|_| String::new()),
        ["hide", name] => comp.set_shown(name, false).map(|_| String::new()),
        ["move", name, x, y, w, h] => {
            let r = Rect::new(num(x, "x")?, num(y, "y")?, num(w, "width")?, num(h, "height")?);
            comp.move_source(name, r).map(|_| String::new())
        }
        ["opacity", name, value, rest @ ..] if rest.len() <= 1 => {
            let v: f64 = value.parse().map_err(|_| format!("opacity `{value}` is not a number"))?;
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("opacity {v} is out of range; expected 0.0 to 1.0"));
            }
            let ms = match rest.first() {
                Some(m) => m.parse::<u64>().map_err(|_| format!("`{m}` is not a number of milliseconds"))?,
                None => 0,
            };
            comp.fade(name, (v * 255.0).round() as u8, Duration::from_millis(ms), now).map(|_| String::new())
        }
        ["list"] => Ok(comp
            .hmi_state()
            .iter()
            .map(|(n, shown, r, op)| {
                format!("{n} {} {},{} {}x{} {:.2}", if *shown { "shown" } else { "hidden" }, r.x, r.y, r.w, r.h, *op as f64 / 255.0)
            })
            .collect::<Vec<_>>()
            .join("; ")),
        ["scene", name] => comp.apply_scene(name, now).map(|_| String::new()),
        ["scenes"] => Ok(comp.scene_names().join(" ")),
        [] => Err("empty request".into()),
        [cmd, ..] => Err(format!(
            "`{}` is not a request; expected show NAME, hide NAME, move NAME X Y W H, opacity NAME VALUE [MS], scene NAME, scenes or list",
            cmd.escape_debug()
        )),
    }
}

/// `cockpit ctl`: sends `request` to the socket at `path` and returns the reply.
pub fn request(path: &Path, request: &str) -> Result<String, String> {
    let mut s = UnixStream::connect(path).map_err(|e| format!("{}: {e} (is the compositor running with this --ctl-socket?)", path.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    s.write_all(format!("{request}\n").as_bytes()).map_err(|e| e.to_string())?;
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    while reply.len() < 64 * 1024 {
        match s.read(&mut byte) {
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => reply.push(byte[0]),
            Err(e) => return Err(format!("no reply: {e}")),
        }
    }
    Ok(String::from_utf8_lossy(&reply).into_owned())
}
