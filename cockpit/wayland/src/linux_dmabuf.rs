//! `zwp_linux_dmabuf_v1` 3: buffers in a client's dma-bufs (a camera's
//! V4L2 buffers, a GPU's render targets). Offered: the `wl_shm` formats,
//! single plane, linear layout (modifier 0), upright or y-inverted.
//!
//! A buffer is checked when it is made: its plane's fd must be a real
//! dma-buf (`cockpit-dmabuf` maps it read-only and closes the fd), large
//! enough for the buffer by the kernel's own size, and within the quotas
//! (`quota`: a plane waiting in its params and a buffer's mapping each
//! count as a handle; a mapping's bytes, at least 1 MiB, count too). A
//! commit then copies the damage out of it like a shm buffer's, and the
//! buffer is released at once. What a client got wrong by the protocol (a
//! plane index out of range, a plane set twice, planes missing or too many,
//! an unknown format, a size below 1, a buffer past its dma-buf's end) is a
//! protocol error; what the compositor merely does not take (a tiled
//! modifier, an interlaced picture, a fd that is no dma-buf, a side above
//! 16384, the byte quota spent) is `failed`, for `create_immed` too (a
//! dead buffer), as the protocol allows. Adding a plane past the client's
//! own handle quota disconnects it (`wl_display.no_memory`); past the
//! budget it shares with others, its buffer is `failed`.

use std::ops::Range;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

use cockpit_core::PixelFormat;
use cockpit_dmabuf::{DmaBuf, ImportError};
use wayland_protocols::wp::linux_dmabuf::zv1::server::{
    zwp_linux_buffer_params_v1::{self as params, ZwpLinuxBufferParamsV1},
    zwp_linux_dmabuf_v1::{self as dmabuf, ZwpLinuxDmabufV1},
};
use wayland_server::protocol::wl_buffer::WlBuffer;
use wayland_server::{Client, DataInit, Dispatch, DisplayHandle, GlobalDispatch, New, Resource, WEnum};

use crate::quota::{self, Charge};
use crate::shm::BufferInfo;
use crate::state::State;

/// The version offered: formats as `modifier` events (4's feedback
/// objects describe devices; the compositor's reads are the CPU's).
pub(crate) const VERSION: u32 = 3;

/// What a mapping is charged at least: many tiny dma-bufs would otherwise
/// cost the compositor mappings without costing the client quota.
const MIN_CHARGE: usize = 1 << 20;

const MAX_PLANES: usize = 4;
const MAX_SIDE: i32 = 16384;
const DRM_FORMAT_MOD_LINEAR: u64 = 0;

/// A mapped dma-buf, charged to its client while it lives.
pub(crate) struct Mapped {
    buf: DmaBuf,
    _charge: Charge,
}

impl Mapped {
    pub(crate) fn copy_rows(&self, dst: &mut [u8], rows: impl Iterator<Item = (usize, Range<usize>)>) -> bool {
        self.buf.copy_rows(dst, rows)
    }

    /// A copy out of this buffer failed (its exporter could not provide a
    /// page): the picture keeps what it had there.
    pub(crate) fn note_failed_copy(&self) {
        tell("reading it failed: its exporter could not provide a page (the picture may be wrong there)");
    }
}

struct Plane {
    /// The fd and the handle it is charged (carried over to the buffer's
    /// mapping); `None`: refused for want of shared budget (the buffer
    /// will fail).
    held: Option<(OwnedFd, Charge)>,
    offset: u32,
    stride: u32,
    modifier: u64,
}

/// A `zwp_linux_buffer_params_v1` being filled in.
#[derive(Default)]
pub(crate) struct Params {
    planes: [Option<Plane>; MAX_PLANES],
    used: bool,
}

/// Why no buffer was made.
enum Refusal {
    /// The client broke the protocol.
    Error(params::Error, String),
    /// Valid, but not something the compositor can show.
    Failed(String),
}

impl GlobalDispatch<ZwpLinuxDmabufV1, ()> for State {
    fn bind(_: &mut Self, _: &DisplayHandle, _: &Client, res: New<ZwpLinuxDmabufV1>, _: &(), init: &mut DataInit<'_, Self>) {
        let global = init.init(res, ());
        for (_, format) in crate::shm::FORMATS {
            let code = format.fourcc() as u32;
            if global.version() >= 3 {
                global.modifier(code, (DRM_FORMAT_MOD_LINEAR >> 32) as u32, DRM_FORMAT_MOD_LINEAR as u32);
            } else {
                global.format(code);
            }
        }
    }
}

impl Dispatch<ZwpLinuxDmabufV1, ()> for State {
    fn request(
        _: &mut Self,
        _: &Client,
        _: &ZwpLinuxDmabufV1,
        req: dmabuf::Request,
        _: &(),
        _: &DisplayHandle,
        init: &mut DataInit<'_, Self>,
    ) {
        if let dmabuf::Request::CreateParams { params_id } = req {
            init.init(params_id, Mutex::new(Params::default()));
        }
    }
}

impl Dispatch<ZwpLinuxBufferParamsV1, Mutex<Params>> for State {
    fn request(
        _: &mut Self,
        client: &Client,
        res: &ZwpLinuxBufferParamsV1,
        req: params::Request,
        data: &Mutex<Params>,
        dh: &DisplayHandle,
        init: &mut DataInit<'_, Self>,
    ) {
        let mut p = data.lock().unwrap_or_else(|e| e.into_inner());
        match req {
            params::Request::Add {
                fd,
                plane_idx,
                offset,
                stride,
                modifier_hi,
                modifier_lo,
            } => {
                let i = plane_idx as usize;
                if p.used {
                    res.post_error(params::Error::AlreadyUsed, "these params already made a buffer");
                } else if i >= MAX_PLANES {
                    res.post_error(params::Error::PlaneIdx, format!("plane {plane_idx}: at most {MAX_PLANES} planes"));
                } else if p.planes[i].is_some() {
                    res.post_error(params::Error::PlaneSet, format!("plane {plane_idx} was already added"));
                } else {
                    let modifier = (modifier_hi as u64) << 32 | modifier_lo as u64;
                    let held = match quota::take_handle(client) {
                        Ok(charge) => Some((fd, charge)),
                        // The shared budget is spent (by other clients): the
                        // fd is closed and the buffer will be `failed`.
                        Err(why) if why.shared => {
                            tell(&format!("plane {i} refused: {}", why.message));
                            None
                        }
                        Err(why) => {
                            return quota::refuse(client, dh, format!("a dma-buf plane: {}", why.message));
                        }
                    };
                    p.planes[i] = Some(Plane { held, offset, stride, modifier });
                }
            }
            params::Request::Create { width, height, format, flags } => match make(&mut p, width, height, format, flags) {
                Ok(info) => match client.create_resource::<WlBuffer, Option<BufferInfo>, State>(dh, 1, Some(info)) {
                    Ok(buffer) => res.created(&buffer),
                    Err(_) => res.failed(),
                },
                Err(Refusal::Error(code, message)) => res.post_error(code, message),
                Err(Refusal::Failed(why)) => {
                    tell(&format!("failed: {why}"));
                    res.failed()
                }
            },
            params::Request::CreateImmed {
                buffer_id,
                width,
                height,
                format,
                flags,
            } => match make(&mut p, width, height, format, flags) {
                Ok(info) => {
                    init.init(buffer_id, Some(info));
                }
                Err(Refusal::Error(code, message)) => {
                    init.init(buffer_id, None::<BufferInfo>);
                    res.post_error(code, message);
                }
                // The spec lets create_immed answer `failed` as create
                // does: the client keeps its connection and a dead buffer.
                Err(Refusal::Failed(message)) => {
                    init.init(buffer_id, None::<BufferInfo>);
                    tell(&format!("failed: {message}"));
                    res.failed();
                }
            },
            _ => {}
        }
    }
}

/// Says on stderr why a buffer failed (a developer's first question), the
/// first few times only: a client cannot flood the compositor's log.
fn tell(why: &str) {
    static TOLD: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    if TOLD.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < 16 {
        eprintln!("cockpit-wayland: a zwp_linux_dmabuf_v1 buffer: {why}");
    }
}

/// Checks the params and maps plane 0's dma-buf.
fn make(p: &mut Params, width: i32, height: i32, format: u32, flags: WEnum<params::Flags>) -> Result<BufferInfo, Refusal> {
    use Refusal::{Error, Failed};
    if p.used {
        return Err(Error(params::Error::AlreadyUsed, "these params already made a buffer".into()));
    }
    p.used = true;
    let Some(plane) = p.planes[0].take() else {
        return Err(Error(params::Error::Incomplete, "no plane 0 was added".into()));
    };
    let pixel = drm_fourcc::DrmFourcc::try_from(format).ok().and_then(PixelFormat::from_fourcc);
    let Some(pixel) = pixel.filter(|f| crate::shm::FORMATS.iter().any(|(_, o)| o == f)) else {
        return Err(Error(params::Error::InvalidFormat, format!("format {format:#010x} is not offered")));
    };
    if width < 1 || height < 1 {
        return Err(Error(params::Error::InvalidDimensions, format!("{width}x{height} is not a size")));
    }
    if p.planes.iter().any(Option::is_some) {
        return Err(Error(params::Error::Incomplete, format!("{} has one plane; more were added", pixel.name())));
    }
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(Failed(format!("{width}x{height}: the compositor takes sides up to {MAX_SIDE}")));
    }
    let bits = match flags {
        WEnum::Value(f) => f.bits(),
        WEnum::Unknown(b) => b,
    };
    let y_invert = bits & params::Flags::YInvert.bits() != 0;
    if bits & !params::Flags::YInvert.bits() != 0 {
        return Err(Failed(format!("flags {bits:#x}: interlaced pictures are not shown")));
    }
    if plane.modifier != DRM_FORMAT_MOD_LINEAR {
        return Err(Failed(format!("modifier {:#x}: only the linear layout is read", plane.modifier)));
    }
    let row = width as u64 * pixel.bytes_per_pixel() as u64;
    if (plane.stride as u64) < row {
        return Err(Error(params::Error::OutOfBounds, format!("stride {} is shorter than a {width}-pixel row", plane.stride)));
    }
    let end = plane.offset as u64 + plane.stride as u64 * (height as u64 - 1) + row;
    let Some((fd, mut charge)) = plane.held else {
        return Err(Failed(
            "plane 0: the compositor held too many buffers for all clients when it was added"
                .into(),
        ));
    };
    let buf = match DmaBuf::import(fd, quota::CLIENT_BYTES) {
        Ok(b) => b,
        Err(e @ ImportError::TooLarge { .. }) => return Err(Failed(format!("plane 0: {e} (the client's quota)"))),
        Err(e) => return Err(Failed(format!("plane 0: {e}"))),
    };
    let len = buf.len();
    charge
        .grow(len.max(MIN_CHARGE))
        .map_err(|r| Failed(r.message))?;
    let mapped = Arc::new(Mapped {
        buf,
        _charge: charge,
    });
    if end > len as u64 {
        return Err(Error(
            params::Error::OutOfBounds,
            format!("a {width}x{height} buffer with stride {} at offset {} needs {end} bytes; the dma-buf has {len}", plane.stride, plane.offset),
        ));
    }
    Ok(BufferInfo::in_dmabuf(
        mapped,
        y_invert,
        (plane.offset as usize, plane.stride as usize),
        (width as u32, height as u32),
        pixel,
    ))
}
