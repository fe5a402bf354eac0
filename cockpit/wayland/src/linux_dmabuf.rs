//! `zwp_linux_dmabuf_v1` 3: buffers in a client's dma-bufs (a camera's
//! V4L2 buffers, a GPU's render targets). Offered: the `wl_shm` formats,
//! single plane, linear layout (modifier 0), upright or y-inverted.
//!
//! A buffer is checked when it is made: every plane's fd must be a real
//! dma-buf (`cockpit-dmabuf` maps it read-only), large enough for the
//! buffer by the kernel's own size, and within the client's quota of
//! mapped bytes. A commit then copies the damage out of it like a shm
//! buffer's, and the buffer is released at once. What a client got wrong
//! by the protocol (a plane index out of range, a plane set twice, an
//! unknown format, bad dimensions, a buffer past its dma-buf's end) is a
//! protocol error; what the compositor merely does not take (a tiled
//! modifier, several planes, an interlaced picture, a fd that is no
//! dma-buf, the quota spent) is `failed` (or, for `create_immed`,
//! `invalid_wl_buffer`), as the protocol asks.

use std::os::fd::OwnedFd;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use cockpit_core::PixelFormat;
use cockpit_dmabuf::{DmaBuf, ImportError};
use wayland_protocols::wp::linux_dmabuf::zv1::server::{
    zwp_linux_buffer_params_v1::{self as params, ZwpLinuxBufferParamsV1},
    zwp_linux_dmabuf_v1::{self as dmabuf, ZwpLinuxDmabufV1},
};
use wayland_server::protocol::wl_buffer::WlBuffer;
use wayland_server::{Client, DataInit, Dispatch, DisplayHandle, GlobalDispatch, New, Resource, WEnum};

use crate::shm::BufferInfo;
use crate::state::{ClientState, State};

/// The version offered: formats as `modifier` events (4's feedback
/// objects describe devices; the compositor's reads are the CPU's).
pub(crate) const VERSION: u32 = 3;

/// Bytes of dma-buf one client may have mapped at once (each buffer
/// counts its whole dma-buf): bounds the compositor's address space, which
/// matters on the 32-bit boards.
pub(crate) const CLIENT_QUOTA: usize = 256 << 20;

const MAX_PLANES: usize = 4;
const MAX_SIDE: i32 = 16384;
const DRM_FORMAT_MOD_LINEAR: u64 = 0;

/// A mapped dma-buf, counted against its client's quota while it lives.
pub(crate) struct Mapped {
    buf: DmaBuf,
    account: Arc<AtomicUsize>,
}

impl Mapped {
    pub(crate) fn copy_rows(&self, dst: &mut [u8], rows: impl Iterator<Item = (usize, Range<usize>)>) -> bool {
        self.buf.copy_rows(dst, rows)
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        self.account.fetch_sub(self.buf.len(), Ordering::SeqCst);
    }
}

struct Plane {
    fd: OwnedFd,
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
                    p.planes[i] = Some(Plane { fd, offset, stride, modifier });
                }
            }
            params::Request::Create { width, height, format, flags } => match make(&mut p, client, width, height, format, flags) {
                Ok(info) => match client.create_resource::<WlBuffer, Option<BufferInfo>, State>(dh, 1, Some(info)) {
                    Ok(buffer) => res.created(&buffer),
                    Err(_) => res.failed(),
                },
                Err(Refusal::Error(code, message)) => res.post_error(code, message),
                Err(Refusal::Failed(_)) => res.failed(),
            },
            params::Request::CreateImmed {
                buffer_id,
                width,
                height,
                format,
                flags,
            } => match make(&mut p, client, width, height, format, flags) {
                Ok(info) => {
                    init.init(buffer_id, Some(info));
                }
                Err(Refusal::Error(code, message)) => {
                    init.init(buffer_id, None::<BufferInfo>);
                    res.post_error(code, message);
                }
                Err(Refusal::Failed(message)) => {
                    init.init(buffer_id, None::<BufferInfo>);
                    res.post_error(params::Error::InvalidWlBuffer, message);
                }
            },
            _ => {}
        }
    }
}

/// Checks the params and maps plane 0's dma-buf.
fn make(p: &mut Params, client: &Client, width: i32, height: i32, format: u32, flags: WEnum<params::Flags>) -> Result<BufferInfo, Refusal> {
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
    if !(1..=MAX_SIDE).contains(&width) || !(1..=MAX_SIDE).contains(&height) {
        return Err(Error(params::Error::InvalidDimensions, format!("{width}x{height} is not a size from 1x1 to {MAX_SIDE}x{MAX_SIDE}")));
    }
    if p.planes.iter().any(Option::is_some) {
        return Err(Failed(format!("{} has one plane; more were added", pixel.name())));
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
    let account = client.get_data::<ClientState>().map(|c| c.mapped.clone()).ok_or_else(|| Failed("unknown client".into()))?;
    let room = CLIENT_QUOTA.saturating_sub(account.load(Ordering::SeqCst));
    let buf = match DmaBuf::import(plane.fd, room) {
        Ok(b) => b,
        Err(ImportError::TooLarge { len, .. }) => {
            return Err(Failed(format!("a {len}-byte dma-buf would pass the client's quota of {CLIENT_QUOTA} mapped bytes")))
        }
        Err(e) => return Err(Failed(format!("plane 0: {e}"))),
    };
    let len = buf.len();
    account.fetch_add(len, Ordering::SeqCst);
    let mapped = Arc::new(Mapped { buf, account });
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
