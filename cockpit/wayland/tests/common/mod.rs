//! A compositor with its Wayland server on a thread of its own, and a small
//! wayland-client test client.
#![allow(dead_code)]

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cockpit_core::{Compositor, Layout};
use cockpit_wayland::WaylandServer;
use wayland_client::globals::{registry_queue_init, GlobalListContents};
use wayland_client::protocol::{
    wl_buffer::WlBuffer,
    wl_callback::WlCallback,
    wl_compositor::WlCompositor,
    wl_keyboard::{self, WlKeyboard},
    wl_pointer::{self, WlPointer},
    wl_registry::WlRegistry,
    wl_seat::WlSeat,
    wl_shm::{self, WlShm},
    wl_shm_pool::WlShmPool,
    wl_surface::WlSurface,
    wl_touch::{self, WlTouch},
};
use wayland_client::{Connection, Dispatch, EventQueue, Proxy, QueueHandle};
use wayland_protocols::xdg::shell::client::{xdg_surface, xdg_toplevel, xdg_wm_base};

type Cmd = Box<dyn FnOnce(&mut Compositor, &mut WaylandServer) + Send>;

/// The compositor loop (dispatch, render, frame done) on its own thread.
pub struct Harness {
    /// Which displays present each frame (`None`: all of them).
    pub presenting: Arc<Mutex<Option<Vec<usize>>>>,
    tx: Option<Sender<Cmd>>,
    thread: Option<JoinHandle<()>>,
    pub dir: PathBuf,
    pub socket: PathBuf,
}

impl Harness {
    /// A fresh directory for a harness's socket.
    pub fn new_dir() -> PathBuf {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("cockpit-wl-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    pub fn start(layout: &str) -> Harness {
        Harness::start_in(layout, Harness::new_dir(), cockpit_wayland::Options::default())
    }

    /// A harness listening at `dir`/wayland-0 with server `options`.
    pub fn start_in(layout: &str, dir: PathBuf, options: cockpit_wayland::Options) -> Harness {
        let socket = dir.join("wayland-0");
        let layout = Layout::parse(layout, Path::new("test.toml")).unwrap_or_else(|e| panic!("{e}"));
        let (tx, rx) = channel::<Cmd>();
        let (ready_tx, ready_rx) = channel();
        let sock = socket.clone();
        let presenting: Arc<Mutex<Option<Vec<usize>>>> = Arc::default();
        let presenting_in = presenting.clone();
        let thread = std::thread::spawn(move || {
            let mut c = Compositor::new(layout);
            let mut w = WaylandServer::bind_with(c.sources(), &sock, options).unwrap();
            let all: Vec<usize> = (0..c.layout().displays.len()).collect();
            let presenting = presenting_in.clone();
            ready_tx.send(()).unwrap();
            loop {
                loop {
                    match rx.try_recv() {
                        Ok(cmd) => cmd(&mut c, &mut w),
                        Err(std::sync::mpsc::TryRecvError::Empty) => break,
                        Err(std::sync::mpsc::TryRecvError::Disconnected) => return,
                    }
                }
                w.dispatch().unwrap();
                w.take_commits().unwrap();
                c.render(Instant::now());
                // The displays that present this frame (all, unless a test
                // holds some back).
                let shown = presenting.lock().unwrap().clone().unwrap_or_else(|| all.clone());
                w.frame_presented(&shown).unwrap();
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        ready_rx.recv().unwrap();
        Harness {
            presenting,
            tx: Some(tx),
            thread: Some(thread),
            dir,
            socket,
        }
    }

    /// Runs `f` on the compositor thread between two frames.
    pub fn with<R: Send + 'static>(&self, f: impl FnOnce(&mut Compositor, &mut WaylandServer) -> R + Send + 'static) -> R {
        let (tx, rx) = channel();
        self.tx
            .as_ref()
            .unwrap()
            .send(Box::new(move |c: &mut Compositor, w: &mut WaylandServer| tx.send(f(c, w)).unwrap()))
            .unwrap();
        rx.recv().unwrap()
    }

    /// Polls `f` on the compositor thread until it holds, or panics after `secs`.
    pub fn wait_for(&self, what: &str, secs: u64, f: impl Fn(&mut Compositor, &mut WaylandServer) -> bool + Send + Clone + 'static) {
        let t0 = Instant::now();
        while !self.with(f.clone()) {
            assert!(t0.elapsed() < Duration::from_secs(secs), "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What the test client saw.
#[derive(Default)]
pub struct Seen {
    pub configure: Option<(i32, i32)>,
    pub configured: bool,
    pub touches: Vec<(i32, f64, f64)>,
    /// The surface (protocol id) of each touch down.
    pub touch_surfaces: Vec<u32>,
    pub frames_done: u32,
    /// Pointer and keyboard events, in a short text form.
    pub events: Vec<String>,
    /// `wl_output` and `wl_surface.enter`/`leave` events, in a short text form.
    pub outputs: Vec<String>,
    /// `wp_presentation` clock and feedback events, in a short text form.
    pub presentation: Vec<String>,
}

pub struct TestClient {
    pub conn: Connection,
    pub queue: EventQueue<Seen>,
    pub qh: QueueHandle<Seen>,
    pub seen: Seen,
    pub compositor: WlCompositor,
    pub shm: WlShm,
    pub wm: xdg_wm_base::XdgWmBase,
    pub seat: WlSeat,
    pub globals: wayland_client::globals::GlobalList,
}

impl TestClient {
    pub fn connect(socket: &Path) -> TestClient {
        let stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
        let conn = Connection::from_socket(stream).unwrap();
        let (globals, queue) = registry_queue_init::<Seen>(&conn).unwrap();
        let qh = queue.handle();
        let compositor = globals.bind(&qh, 1..=4, ()).unwrap();
        let shm = globals.bind(&qh, 1..=1, ()).unwrap();
        let wm = globals.bind(&qh, 1..=2, ()).unwrap();
        let seat: WlSeat = globals.bind(&qh, 1..=5, ()).unwrap();
        seat.get_touch(&qh, ());
        seat.get_pointer(&qh, ());
        seat.get_keyboard(&qh, ());
        TestClient {
            conn,
            queue,
            qh,
            seen: Seen::default(),
            compositor,
            shm,
            wm,
            seat,
            globals,
        }
    }

    /// Binds `wp_viewporter`.
    pub fn viewporter(&self) -> wayland_protocols::wp::viewporter::client::wp_viewporter::WpViewporter {
        self.globals.bind(&self.qh, 1..=1, ()).expect("wp_viewporter is offered")
    }

    /// Binds every `wl_output` (version 4), in the order the server offers them.
    pub fn outputs(&self) -> Vec<wayland_client::protocol::wl_output::WlOutput> {
        let mut names: Vec<u32> = self.globals.contents().clone_list().iter().filter(|g| g.interface == "wl_output").map(|g| g.name).collect();
        names.sort();
        names.into_iter().map(|n| self.globals.registry().bind(n, 4, &self.qh, ())).collect()
    }

    pub fn roundtrip(&mut self) -> Result<(), String> {
        self.queue.roundtrip(&mut self.seen).map(|_| ()).map_err(|e| e.to_string())
    }

    /// A toplevel with `app_id`, configured.
    pub fn toplevel(&mut self, app_id: &str) -> (WlSurface, xdg_toplevel::XdgToplevel) {
        let surface = self.compositor.create_surface(&self.qh, ());
        let xdg = self.wm.get_xdg_surface(&surface, &self.qh, ());
        let top = xdg.get_toplevel(&self.qh, ());
        top.set_app_id(app_id.into());
        surface.commit();
        self.roundtrip().unwrap();
        assert!(self.seen.configured, "the initial commit is answered with a configure");
        (surface, top)
    }

    /// A `w`x`h` XRGB8888 buffer of `pixels` in a memfd of `file_len` bytes
    /// (a liar passes less than the pool it claims).
    pub fn buffer(&self, w: i32, h: i32, pixels: &[u32], pool_size: i32, file_len: u64) -> WlBuffer {
        let fd = rustix::fs::memfd_create("test-buffer", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&fd, file_len).unwrap();
        let file = File::from(fd);
        let bytes: Vec<u8> = pixels.iter().flat_map(|p| p.to_le_bytes()).collect();
        file.write_all_at(&bytes[..bytes.len().min(file_len as usize)], 0).unwrap();
        let pool: WlShmPool = self.shm.create_pool(file.as_fd(), pool_size, &self.qh, ());
        let buf = pool.create_buffer(0, w, h, w * 4, wl_shm::Format::Xrgb8888, &self.qh, ());
        pool.destroy();
        buf
    }

    pub fn show(&mut self, surface: &WlSurface, w: i32, h: i32, pixels: &[u32]) -> Result<(), String> {
        let size = w * h * 4;
        let buf = self.buffer(w, h, pixels, size, size as u64);
        surface.attach(Some(&buf), 0, 0);
        surface.damage_buffer(0, 0, w, h);
        surface.frame(&self.qh, ());
        surface.commit();
        self.roundtrip()
    }
}

impl Dispatch<WlRegistry, GlobalListContents> for Seen {
    fn event(
        _: &mut Self,
        _: &WlRegistry,
        _: wayland_client::protocol::wl_registry::Event,
        _: &GlobalListContents,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }
}

macro_rules! ignore_events {
    ($($t:ty),*) => {$(
        impl Dispatch<$t, ()> for Seen {
            fn event(_: &mut Self, _: &$t, _: <$t as wayland_client::Proxy>::Event, _: &(), _: &Connection, _: &QueueHandle<Self>) {}
        }
    )*};
}
ignore_events!(
    WlCompositor,
    WlShm,
    WlShmPool,
    WlBuffer,
    WlSeat,
    wayland_protocols::wp::viewporter::client::wp_viewporter::WpViewporter,
    wayland_protocols::wp::viewporter::client::wp_viewport::WpViewport
);

impl Dispatch<wayland_protocols::wp::presentation_time::client::wp_presentation::WpPresentation, ()> for Seen {
    fn event(
        s: &mut Self,
        _: &wayland_protocols::wp::presentation_time::client::wp_presentation::WpPresentation,
        e: wayland_protocols::wp::presentation_time::client::wp_presentation::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wayland_protocols::wp::presentation_time::client::wp_presentation::Event::ClockId { clk_id } = e {
            s.presentation.push(format!("clock {clk_id}"));
        }
    }
}

impl Dispatch<wayland_protocols::wp::presentation_time::client::wp_presentation_feedback::WpPresentationFeedback, u32> for Seen {
    fn event(
        s: &mut Self,
        _: &wayland_protocols::wp::presentation_time::client::wp_presentation_feedback::WpPresentationFeedback,
        e: wayland_protocols::wp::presentation_time::client::wp_presentation_feedback::Event,
        tag: &u32,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        use wayland_protocols::wp::presentation_time::client::wp_presentation_feedback::Event;
        match e {
            Event::Presented { tv_sec_lo, tv_nsec, refresh, seq_lo, .. } => {
                s.presentation.push(format!("{tag} presented {tv_sec_lo}.{tv_nsec:09} refresh {refresh} seq {seq_lo}"))
            }
            Event::Discarded => s.presentation.push(format!("{tag} discarded")),
            _ => {}
        }
    }
}

impl Dispatch<WlSurface, ()> for Seen {
    fn event(s: &mut Self, _: &WlSurface, e: wayland_client::protocol::wl_surface::Event, _: &(), _: &Connection, _: &QueueHandle<Self>) {
        use wayland_client::protocol::wl_surface::Event;
        match e {
            Event::Enter { output } => s.outputs.push(format!("enter {}", output.id().protocol_id())),
            Event::Leave { output } => s.outputs.push(format!("leave {}", output.id().protocol_id())),
            _ => {}
        }
    }
}

impl Dispatch<wayland_client::protocol::wl_output::WlOutput, ()> for Seen {
    fn event(
        s: &mut Self,
        o: &wayland_client::protocol::wl_output::WlOutput,
        e: wayland_client::protocol::wl_output::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        use wayland_client::protocol::wl_output::Event;
        let id = o.id().protocol_id();
        match e {
            Event::Geometry { physical_width, physical_height, .. } => s.outputs.push(format!("{id} geometry {physical_width}x{physical_height}mm")),
            Event::Mode { width, height, refresh, .. } => s.outputs.push(format!("{id} mode {width}x{height}@{refresh}")),
            Event::Scale { factor } => s.outputs.push(format!("{id} scale {factor}")),
            Event::Name { name } => s.outputs.push(format!("{id} name {name}")),
            Event::Done => s.outputs.push(format!("{id} done")),
            _ => {}
        }
    }
}

impl Dispatch<WlCallback, ()> for Seen {
    fn event(s: &mut Self, _: &WlCallback, _: wayland_client::protocol::wl_callback::Event, _: &(), _: &Connection, _: &QueueHandle<Self>) {
        s.frames_done += 1;
    }
}

impl Dispatch<xdg_wm_base::XdgWmBase, ()> for Seen {
    fn event(_: &mut Self, wm: &xdg_wm_base::XdgWmBase, e: xdg_wm_base::Event, _: &(), _: &Connection, _: &QueueHandle<Self>) {
        if let xdg_wm_base::Event::Ping { serial } = e {
            wm.pong(serial);
        }
    }
}

impl Dispatch<xdg_surface::XdgSurface, ()> for Seen {
    fn event(s: &mut Self, x: &xdg_surface::XdgSurface, e: xdg_surface::Event, _: &(), _: &Connection, _: &QueueHandle<Self>) {
        if let xdg_surface::Event::Configure { serial } = e {
            x.ack_configure(serial);
            s.configured = true;
        }
    }
}

impl Dispatch<xdg_toplevel::XdgToplevel, ()> for Seen {
    fn event(s: &mut Self, _: &xdg_toplevel::XdgToplevel, e: xdg_toplevel::Event, _: &(), _: &Connection, _: &QueueHandle<Self>) {
        if let xdg_toplevel::Event::Configure { width, height, .. } = e {
            s.configure = Some((width, height));
        }
    }
}

impl Dispatch<WlTouch, ()> for Seen {
    fn event(s: &mut Self, _: &WlTouch, e: wl_touch::Event, _: &(), _: &Connection, _: &QueueHandle<Self>) {
        match e {
            wl_touch::Event::Down { id, x, y, surface, .. } => {
                s.touches.push((id, x, y));
                s.touch_surfaces.push(surface.id().protocol_id());
            }
            wl_touch::Event::Motion { id, x, y, .. } => s.touches.push((id, x, y)),
            _ => {}
        }
    }
}

impl Dispatch<WlPointer, ()> for Seen {
    fn event(s: &mut Self, _: &WlPointer, e: wl_pointer::Event, _: &(), _: &Connection, _: &QueueHandle<Self>) {
        match e {
            wl_pointer::Event::Enter { surface_x, surface_y, .. } => s.events.push(format!("enter {surface_x} {surface_y}")),
            wl_pointer::Event::Motion { surface_x, surface_y, .. } => s.events.push(format!("motion {surface_x} {surface_y}")),
            wl_pointer::Event::Button { button, state, .. } => {
                let pressed = matches!(state, wayland_client::WEnum::Value(wl_pointer::ButtonState::Pressed));
                s.events
                    .push(format!("button {button} {}", if pressed { "pressed" } else { "released" }))
            }
            wl_pointer::Event::Leave { .. } => s.events.push("leave".into()),
            _ => {}
        }
    }
}

impl Dispatch<WlKeyboard, ()> for Seen {
    fn event(s: &mut Self, _: &WlKeyboard, e: wl_keyboard::Event, _: &(), _: &Connection, _: &QueueHandle<Self>) {
        match e {
            wl_keyboard::Event::Keymap { format, fd, size } => {
                let none = matches!(format, wayland_client::WEnum::Value(wl_keyboard::KeymapFormat::NoKeymap));
                // An XKB keymap is text a client compiles: check it is one.
                // (At offset 0, as a client's mmap sees it: the file
                // position is shared by every client given the fd.)
                let mut bytes = vec![0u8; size as usize];
                let _ = File::from(fd).read_exact_at(&mut bytes, 0);
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let whole = text.contains("xkb_keycodes") && text.contains("xkb_symbols") && text.ends_with('\0');
                s.events.push(match (none, whole) {
                    (true, _) => "keymap none".into(),
                    (false, true) => "keymap xkb".into(),
                    (false, false) => format!("keymap unreadable ({} of {size} bytes)", text.len()),
                })
            }
            wl_keyboard::Event::Modifiers { mods_depressed, mods_locked, .. } => s.events.push(format!("mods {mods_depressed} {mods_locked}")),
            wl_keyboard::Event::Enter { .. } => s.events.push("kbd enter".into()),
            wl_keyboard::Event::Leave { .. } => s.events.push("kbd leave".into()),
            wl_keyboard::Event::Key { key, state, .. } => {
                let pressed = matches!(state, wayland_client::WEnum::Value(wl_keyboard::KeyState::Pressed));
                s.events.push(format!("key {key} {}", if pressed { "pressed" } else { "released" }))
            }
            _ => {}
        }
    }
}

// zwp_linux_dmabuf_v1 for the dma-buf and quota tests: the offer and the
// params' answers land in `Seen::events`.
use wayland_protocols::wp::linux_dmabuf::zv1::client::{
    zwp_linux_buffer_params_v1::{self as params, ZwpLinuxBufferParamsV1},
    zwp_linux_dmabuf_v1::{self as dmabuf, ZwpLinuxDmabufV1},
};

impl Dispatch<ZwpLinuxDmabufV1, ()> for Seen {
    fn event(s: &mut Self, _: &ZwpLinuxDmabufV1, e: dmabuf::Event, _: &(), _: &Connection, _: &QueueHandle<Self>) {
        match e {
            dmabuf::Event::Modifier { format, modifier_hi, modifier_lo } => {
                s.events.push(format!("modifier {format:#010x} {:#x}", (modifier_hi as u64) << 32 | modifier_lo as u64))
            }
            dmabuf::Event::Format { format } => s.events.push(format!("format {format:#010x}")),
            _ => {}
        }
    }
}

impl Dispatch<ZwpLinuxBufferParamsV1, ()> for Seen {
    fn event(s: &mut Self, _: &ZwpLinuxBufferParamsV1, e: params::Event, _: &(), _: &Connection, _: &QueueHandle<Self>) {
        match e {
            params::Event::Created { .. } => s.events.push("created".into()),
            params::Event::Failed => s.events.push("failed".into()),
            _ => {}
        }
    }
    wayland_client::event_created_child!(Seen, ZwpLinuxBufferParamsV1, [
        params::EVT_CREATED_OPCODE => (wayland_client::protocol::wl_buffer::WlBuffer, ()),
    ]);
}

pub fn dmabuf(c: &TestClient) -> ZwpLinuxDmabufV1 {
    c.globals.bind(&c.qh, 3..=3, ()).expect("zwp_linux_dmabuf_v1 3 is offered")
}

/// A memfd of `len` bytes: memory, but no dma-buf.
pub fn memfd(len: u64) -> std::os::fd::OwnedFd {
    let fd = rustix::fs::memfd_create("not-a-dmabuf", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    rustix::fs::ftruncate(&fd, len).unwrap();
    fd
}

