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
#![forbid(unsafe_code)]

mod ivi;
mod keymap;
mod linux_dmabuf;
mod presentation;
mod protocol;
mod quota;
mod seat;
mod shm;
mod state;
mod subsurface;
mod viewporter;
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
        let display = Display::<State>::new().map_err(io::Error::other)?;
        let listener =
            ListeningSocket::bind_absolute(socket.to_path_buf()).map_err(io::Error::other)?;
        let state = State::new(sources, &display.handle(), options);
        Ok(WaylandServer {
            display,
            listener,
            path: socket.to_path_buf(),
            state,
            refusals: 0,
        })
    }

    /// Where clients connect.
    pub fn socket_path(&self) -> &Path {
        &self.path
    }

    /// The listening socket and the clients' fd, to poll for readability.
    pub fn poll_fds(&mut self) -> [BorrowedFd<'_>; 2] {
        use std::os::fd::AsFd;
        let backend = self.display.backend().poll_fd();
        [self.listener.as_fd(), backend]
    }

    /// Accepts new clients, handles every pending request, delivers the
    /// input the compositor routed to Wayland sources, and flushes.
    pub fn dispatch(&mut self) -> io::Result<()> {
        // A failed accept (the process out of fds) leaves the connection
        // waiting and the server serving the clients it has.
        loop {
            match self.listener.accept() {
                Ok(Some(stream)) => {
                    if let Err(e) = self.display.handle().insert_client(
                        stream,
                        Arc::new(ClientState::new(self.state.clients.clone())),
                    ) {
                        self.refused(&e);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    self.refused(&e);
                    break;
                }
            }
        }
        self.display.dispatch_clients(&mut self.state)?;
        self.state.deliver_input(&self.display.handle());
        self.display.flush_clients()
    }

    fn refused(&mut self, e: &io::Error) {
        self.refusals += 1;
        if self.refusals.is_power_of_two() {
            eprintln!(
                "cockpit-wayland: a client could not be accepted ({} so far): {e}",
                self.refusals
            );
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
