//! `cockpit-wayland`: the cockpit compositor's Wayland server.
//!
//! Native clients (an HMI toolkit's app, a camera view, weston's demo
//! clients) connect with `wl_compositor`, `wl_shm`, `xdg_shell` or
//! `ivi_application`, and `wl_seat`. A toplevel whose `app_id` the layout
//! places (or a surface with the layout's `ivi_id`) becomes that source:
//! its committed buffers are copied out of the client's pool into
//! compositor memory (so a client truncating or rewriting its pool can never
//! fault the compositor or tear a composition) and submitted with their
//! damage; touches, pointer and keys routed to the source come back to the
//! client through its seat. A client that lies about its buffers (a pool or
//! buffer larger than the memory it passed) gets a protocol error, which
//! disconnects that client only. A layout source may name the `client_uid`
//! that alone may take it: a client chooses its app id and ivi id, the
//! kernel says which user it runs as.
//!
//! Supported: `wl_compositor` 4, `wl_shm` 1 (XRGB8888, ARGB8888, XBGR8888,
//! ABGR8888, RGB565), `wl_output` 4 (one per display: mode, refresh,
//! physical size from the layout's `size_mm`, name; surfaces get `enter`
//! and `leave`), `wl_seat` 5 with pointer, keyboard (an XKB keymap and
//! modifiers with the `xkb` feature, else raw evdev codes; see `keymap`)
//! and touch, `xdg_wm_base` 2 (toplevels; popups are dismissed at
//! once; not offered with [`Options::xdg_shell`] off, as under weston's
//! ivi-shell), `ivi_application` 1 (see `ivi`), `wp_viewporter` 1 (crop
//! and destination size; input arrives in the destination's coordinates),
//! `wp_presentation` 1 (presented or discarded per commit, on
//! `CLOCK_MONOTONIC`), `wl_subcompositor` 1 (sub-surfaces drawn over their
//! toplevel, synchronized or not; see `subsurface`),
//! `zwp_linux_dmabuf_v1` 3 (linear single-plane dma-bufs in the `wl_shm`
//! formats, mapped read-only by `cockpit-dmabuf` within a per-client quota;
//! see `linux_dmabuf`). Commits copy only
//! their damage, into the picture the compositor let go of (two pictures
//! per placed surface). Frame callbacks fire when the display a surface is
//! on presented a frame, at that display's rate; a surface on no display
//! (hidden, not placed) is not asked to draw. Not supported yet: buffer
//! scale or transform other than 1/normal; dma-buf feedback (version 4),
//! tiled modifiers, multi-planar (YUV) formats; scanning a client's
//! dma-buf out on KMS without the copy.
//!
//! Clients are bounded (see `quota`): 48 connections, 16 per user; per
//! client 128 pools, planes and mappings and 128 MiB mapped, of which 16
//! and 16 MiB are its own reserve and the rest drawn from a budget all
//! clients share (one user at most half of it). Past its own limit a
//! client is cut off (`wl_display.no_memory`); a dma-buf plane past the
//! shared budget makes its buffer `failed` instead, as other clients'
//! greed is not its fault (a pool cannot fail: past its reserve, that
//! client is cut off). The server raises its fd limit to what this holds.
#![forbid(unsafe_code)]

mod ivi;
mod keymap;
mod linux_dmabuf;
mod presentation;
mod protocol;
mod quota;
mod seat;
mod shm;
mod viewporter;
mod state;
mod subsurface;
mod xdg;

use std::io;
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cockpit_core::Sources;
use wayland_server::{Display, ListeningSocket};

use crate::state::{ClientState, State};

/// A Wayland server over the compositor's [`Sources`]. Drive it from the
/// compositor loop: [`dispatch`](WaylandServer::dispatch) when its fds are
/// readable (or every frame), [`frame_presented`](WaylandServer::frame_presented)
/// after the outputs showed a frame.
pub struct WaylandServer {
    display: Display<State>,
    listener: ListeningSocket,
    path: PathBuf,
    state: State,
    /// Connections that could not be accepted.
    refusals: u64,
    /// An fd held back for taking a connection when the process is out
    /// of them (to close it, so the listener stops being readable).
    spare: Option<std::fs::File>,
    /// No accepting until then (after an accept error).
    accept_paused_until: Option<std::time::Instant>,
}

/// How long accepting rests after an accept error.
const ACCEPT_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

/// Connections taken per [`WaylandServer::dispatch`].
const ACCEPTS_PER_DISPATCH: usize = 8;

fn spare_fd() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}

/// What the server offers.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Offer `xdg_wm_base`. Without it, clients written for weston's
    /// ivi-shell take their `ivi_application` path (as under ivi-shell,
    /// which offers no desktop shell).
    pub xdg_shell: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options { xdg_shell: true }
    }
}

impl WaylandServer {
    /// Listens at `socket` (an absolute path; clients use it as `WAYLAND_DISPLAY`).
    pub fn bind(sources: Sources, socket: &Path) -> io::Result<WaylandServer> {
        WaylandServer::bind_with(sources, socket, Options::default())
    }

    /// [`bind`](Self::bind) with `options`.
    pub fn bind_with(
        sources: Sources,
        socket: &Path,
        options: Options,
    ) -> io::Result<WaylandServer> {
        crate::quota::raise_fd_limit();
        let display = Display::<State>::new().map_err(io::Error::other)?;
        let listener = ListeningSocket::bind_absolute(socket.to_path_buf()).map_err(io::Error::other)?;
        let state = State::new(sources, &display.handle(), options);
        Ok(WaylandServer {
            display,
            listener,
            path: socket.to_path_buf(),
            state,
            refusals: 0,
            spare: spare_fd(),
            accept_paused_until: None,
        })
    }

    /// Where clients connect.
    pub fn socket_path(&self) -> &Path {
        &self.path
    }

    /// The listening socket and the clients' fd, to poll for readability.
    /// While accepting is paused (after an accept error) the listener is
    /// left out (the clients' fd stands twice), so a connection waiting in
    /// its backlog does not wake the loop again and again.
    pub fn poll_fds(&mut self) -> [BorrowedFd<'_>; 2] {
        use std::os::fd::AsFd;
        let paused = self
            .accept_paused_until
            .is_some_and(|t| std::time::Instant::now() < t);
        let backend = self.display.backend().poll_fd();
        [
            if paused {
                backend
            } else {
                self.listener.as_fd()
            },
            backend,
        ]
    }

    /// Accepts new clients, handles every pending request, delivers the
    /// input the compositor routed to Wayland sources, and flushes.
    pub fn dispatch(&mut self) -> io::Result<()> {
        // At most a few connections a call, so a flood of connects cannot
        // keep the compositor from its frame; none for a while after an
        // accept failed.
        let now = std::time::Instant::now();
        let paused = self.accept_paused_until.is_some_and(|t| now < t);
        if self.spare.is_none() {
            self.spare = spare_fd();
        }
        for _ in 0..if paused { 0 } else { ACCEPTS_PER_DISPATCH } {
            match self.listener.accept() {
                Ok(Some(stream)) => self.admit(stream),
                Ok(None) => break,
                Err(e) => {
                    // Out of fds: the connection would wait in the backlog
                    // and keep the listener readable (a busy loop). Free the
                    // spare fd, take the connection and close it.
                    self.refused(&e);
                    let out_of_fds = [rustix::io::Errno::MFILE, rustix::io::Errno::NFILE]
                        .map(|e| Some(e.raw_os_error()));
                    if out_of_fds.contains(&e.raw_os_error()) {
                        self.spare = None;
                        if let Ok(Some(stream)) = self.listener.accept() {
                            drop(stream);
                        }
                        self.spare = spare_fd();
                    }
                    self.accept_paused_until = Some(now + ACCEPT_PAUSE);
                    break;
                }
            }
        }
        self.display.dispatch_clients(&mut self.state)?;
        self.state.deliver_input(&self.display.handle());
        self.display.flush_clients()
    }

    /// Serves `stream` if its user may have one more connection (see
    /// `quota`); closes it otherwise.
    fn admit(&mut self, stream: std::os::unix::net::UnixStream) {
        let uid = match rustix::net::sockopt::socket_peercred(&stream) {
            Ok(cred) => cred.uid.as_raw(),
            Err(e) => return self.refused(&e.into()),
        };
        let seat = match self.state.connections.admit(uid) {
            Ok(seat) => seat,
            Err(why) => return self.refused(&io::Error::other(why)),
        };
        let client = ClientState::new(self.state.clients.clone(), seat);
        if let Err(e) = self
            .display
            .handle()
            .insert_client(stream, Arc::new(client))
        {
            self.refused(&e);
        }
    }

    fn refused(&mut self, e: &io::Error) {
        self.refusals += 1;
        if self.refusals.is_power_of_two() {
            eprintln!("cockpit-wayland: a client could not be accepted ({} so far): {e}", self.refusals);
        }
    }

    /// Copies in the newest buffer each surface committed since the last
    /// call (at most one copy per surface per compositor frame), for the
    /// compositor to take. Call once per frame, before composing.
    pub fn take_commits(&mut self) -> io::Result<()> {
        self.state.take_commits();
        self.state.update_outputs();
        self.display.flush_clients()
    }

    /// Tells clients on `displays` (those that just presented a frame)
    /// that their commits have been shown: their frame callbacks fire, so
    /// they draw the next one at that display's pace.
    pub fn frame_presented(&mut self, displays: &[usize]) -> io::Result<()> {
        self.state.frame_presented(displays);
        self.display.flush_clients()
    }

    /// Clients connected now.
    pub fn client_count(&self) -> usize {
        self.state.clients()
    }

    /// App ids of the toplevels currently shown as sources.
    pub fn placed_app_ids(&self) -> Vec<String> {
        self.state.placed_app_ids()
    }
}
