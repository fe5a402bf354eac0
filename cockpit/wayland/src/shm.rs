//! `wl_shm`: pools and buffers, checked against the memory the client
//! really passed, and copied out with `pread` so no client memory is ever
//! mapped into the compositor (a truncated pool is a short read and a
//! protocol error, never a SIGBUS). A pool must be memory (a memfd, or a
//! file on tmpfs or hugetlbfs): a read from anything else (a FUSE file, a
//! disk) could block the compositor's thread, and every display with it.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

use cockpit_core::{PixelFormat, Rect};
use wayland_server::protocol::{
    wl_buffer::{self, WlBuffer},
    wl_shm::{self, WlShm},
    wl_shm_pool::{self, WlShmPool},
};
use wayland_server::{Client, DataInit, Dispatch, DisplayHandle, GlobalDispatch, New, Resource, WEnum};

use crate::state::{Content, State};

pub(crate) struct Pool {
    file: File,
    size: Mutex<usize>,
    shm: WlShm,
    /// One handle (its fd) against the client's and the server's quota.
    _charge: Option<crate::quota::Charge>,
}

/// Where a buffer's pixels are.
pub(crate) enum Memory {
    /// A `wl_shm` pool, read with `pread`.
    Pool(Arc<Pool>),
    /// A client's dma-buf (`zwp_linux_dmabuf_v1`), mapped read-only.
    DmaBuf { buf: Arc<crate::linux_dmabuf::Mapped>, y_invert: bool },
}

pub(crate) struct BufferInfo {
    memory: Memory,
    offset: usize,
    width: u32,
    height: u32,
    stride: usize,
    format: PixelFormat,
}

impl BufferInfo {
    /// A buffer in a dma-buf the caller has checked it fits in.
    pub(crate) fn in_dmabuf(
        buf: Arc<crate::linux_dmabuf::Mapped>,
        y_invert: bool,
        (offset, stride): (usize, usize),
        (width, height): (u32, u32),
        format: PixelFormat,
    ) -> BufferInfo {
        BufferInfo {
            memory: Memory::DmaBuf { buf, y_invert },
            offset,
            width,
            height,
            stride,
            format,
        }
    }

    /// The byte just past the buffer's last pixel (`height` and `width` ≥ 1).
    pub(crate) fn end(&self) -> usize {
        self.offset + self.stride * (self.height as usize - 1) + self.width as usize * self.format.bytes_per_pixel()
    }
}

/// A client's lie about its memory, to be answered with a protocol error.
pub(crate) struct ShmError {
    shm: WlShm,
    message: String,
}

impl ShmError {
    pub fn post(self) {
        self.shm.post_error(wl_shm::Error::InvalidFd, self.message);
    }
}

pub(crate) const FORMATS: [(wl_shm::Format, PixelFormat); 5] = [
    (wl_shm::Format::Argb8888, PixelFormat::Argb8888),
    (wl_shm::Format::Xrgb8888, PixelFormat::Xrgb8888),
    (wl_shm::Format::Abgr8888, PixelFormat::Abgr8888),
    (wl_shm::Format::Xbgr8888, PixelFormat::Xbgr8888),
    (wl_shm::Format::Rgb565, PixelFormat::Rgb565),
];

impl GlobalDispatch<WlShm, ()> for State {
    fn bind(_: &mut Self, _: &DisplayHandle, _: &Client, res: New<WlShm>, _: &(), init: &mut DataInit<'_, Self>) {
        let shm = init.init(res, ());
        for (f, _) in FORMATS {
            shm.format(f);
        }
    }
}

/// Whether `file` is plain memory, whose reads never wait on anything: a
/// regular file on tmpfs (memfds, /dev/shm) or hugetlbfs.
fn is_memory(file: &File) -> bool {
    // f_type is 32 bits wide on 32-bit targets: compared as its low 32 bits.
    const TMPFS_MAGIC: u32 = 0x0102_1994;
    const HUGETLBFS_MAGIC: u32 = 0x9584_58f6;
    let regular = file.metadata().is_ok_and(|m| m.file_type().is_file());
    let fs = rustix::fs::fstatfs(file).map(|s| s.f_type as u32);
    regular && fs.is_ok_and(|t| t == TMPFS_MAGIC || t == HUGETLBFS_MAGIC)
}

/// The size of the file behind `file`, as the kernel sees it now.
fn file_len(file: &File) -> u64 {
    file.metadata().map(|m| m.len()).unwrap_or(0)
}

impl Dispatch<WlShm, ()> for State {
    fn request(
        _: &mut Self,
        client: &Client,
        shm: &WlShm,
        req: wl_shm::Request,
        _: &(),
        dh: &DisplayHandle,
        init: &mut DataInit<'_, Self>,
    ) {
        if let wl_shm::Request::CreatePool { id, fd, size } = req {
            let file = File::from(fd);
            let len = file_len(&file);
            let charge = crate::quota::take_handle(client);
            let memory = is_memory(&file);
            let (charge, refused) = match charge {
                Ok(c) => (Some(c), None),
                Err(why) => (None, Some(why.message)),
            };
            let pool = Arc::new(Pool {
                file,
                size: Mutex::new(size.max(0) as usize),
                shm: shm.clone(),
                _charge: charge,
            });
            init.init(id, pool);
            if let Some(why) = refused {
                crate::quota::refuse(client, dh, format!("a shm pool: {why}"));
            } else if size <= 0 {
                shm.post_error(wl_shm::Error::InvalidStride, format!("pool size {size} is not positive"));
            } else if !memory {
                shm.post_error(
                    wl_shm::Error::InvalidFd,
                    "the pool's fd is not shared memory (a memfd or a file on tmpfs)".to_string(),
                );
            } else if size as u64 > len {
                shm.post_error(
                    wl_shm::Error::InvalidFd,
                    format!("pool size {size} is larger than the {len} bytes its fd holds"),
                );
            }
        }
    }
}

impl Dispatch<WlShmPool, Arc<Pool>> for State {
    fn request(
        _: &mut Self,
        _: &Client,
        res: &WlShmPool,
        req: wl_shm_pool::Request,
        pool: &Arc<Pool>,
        _: &DisplayHandle,
        init: &mut DataInit<'_, Self>,
    ) {
        match req {
            wl_shm_pool::Request::CreateBuffer {
                id,
                offset,
                width,
                height,
                stride,
                format,
            } => {
                let fmt = match format {
                    WEnum::Value(f) => FORMATS.iter().find(|(w, _)| *w == f).map(|(_, p)| *p),
                    WEnum::Unknown(_) => None,
                };
                let Some(fmt) = fmt else {
                    init.init(id, None::<BufferInfo>);
                    pool.shm
                        .post_error(wl_shm::Error::InvalidFormat, format!("format {format:?} is not offered"));
                    return;
                };
                let ok_dims = offset >= 0
                    && (1..=16384).contains(&width)
                    && (1..=16384).contains(&height)
                    && stride >= width * fmt.bytes_per_pixel() as i32;
                let info = BufferInfo {
                    memory: Memory::Pool(pool.clone()),
                    offset: offset.max(0) as usize,
                    width: width.max(1) as u32,
                    height: height.max(1) as u32,
                    stride: stride.max(0) as usize,
                    format: fmt,
                };
                let pool_size = *pool.size.lock().unwrap_or_else(|e| e.into_inner());
                let end = info.end();
                init.init(id, Some(info));
                if !ok_dims {
                    res.post_error(
                        wl_shm::Error::InvalidStride,
                        format!("bad buffer: offset {offset}, {width}x{height}, stride {stride}"),
                    );
                } else if end > pool_size {
                    res.post_error(
                        wl_shm::Error::InvalidStride,
                        format!(
                            "a {width}x{height} buffer with stride {stride} at offset {offset} needs {end} bytes; the pool has {pool_size}"
                        ),
                    );
                }
            }
            wl_shm_pool::Request::Resize { size } => {
                let mut cur = pool.size.lock().unwrap_or_else(|e| e.into_inner());
                let len = file_len(&pool.file);
                if size < *cur as i32 {
                    res.post_error(wl_shm::Error::InvalidStride, format!("pools only grow: {size} < {}", *cur));
                } else if size as u64 > len {
                    pool.shm.post_error(
                        wl_shm::Error::InvalidFd,
                        format!("pool size {size} is larger than the {len} bytes its fd holds"),
                    );
                } else {
                    *cur = size as usize;
                }
            }
            _ => {}
        }
    }
}

impl Dispatch<WlBuffer, Option<BufferInfo>> for State {
    fn request(
        _: &mut Self,
        _: &Client,
        _: &WlBuffer,
        _: wl_buffer::Request,
        _: &Option<BufferInfo>,
        _: &DisplayHandle,
        _: &mut DataInit<'_, Self>,
    ) {
    }
}

fn info(buffer: &WlBuffer) -> Option<&BufferInfo> {
    buffer.data::<Option<BufferInfo>>().and_then(Option::as_ref)
}

/// A buffer's size in pixels (`None` for one whose creation failed).
pub(crate) fn size(buffer: &WlBuffer) -> Option<(u32, u32)> {
    info(buffer).map(|b| (b.width, b.height))
}

/// Whether `buffer` has the size and format of `content` (so damage applies).
pub(crate) fn same_shape(buffer: &WlBuffer, c: &Content) -> bool {
    info(buffer).is_some_and(|b| b.width == c.width && b.height == c.height && b.format == c.format)
}

/// Copies `buffer` into compositor memory: only the `damage` rectangles
/// when `reuse` is a picture of the same shape that nobody else holds and
/// that differs from the buffer only there, otherwise all of it (into
/// `reuse`'s memory when nobody else holds it, else into new memory).
/// Shared memory is never cloned: the compositor may still be showing it.
/// `Ok(None)`: a buffer whose creation failed (its client is already being
/// disconnected); nothing to show.
pub(crate) fn copy_in(buffer: &WlBuffer, reuse: Option<Content>, damage: Option<&[Rect]>) -> Result<Option<Content>, ShmError> {
    let Some(b) = info(buffer) else { return Ok(None) };
    if let Memory::Pool(pool) = &b.memory {
        let len = file_len(&pool.file);
        if b.end() as u64 > len {
            return Err(ShmError {
                shm: pool.shm.clone(),
                message: format!("the buffer needs {} bytes of its pool but the fd holds {len}", b.end()),
            });
        }
    }
    let bpp = b.format.bytes_per_pixel();
    let row = b.width as usize * bpp;
    let reuse = reuse.filter(|c| c.width == b.width && c.height == b.height && c.format == b.format);
    // Memory nobody else holds, and whether it differs from the buffer only
    // within `damage`.
    let (mut data, only) = match reuse.map(|c| Arc::try_unwrap(c.data)) {
        Some(Ok(d)) => (d, damage),
        _ => (vec![0u8; row * b.height as usize], None),
    };
    // A y-inverted buffer's rows are stored bottom up; its damage is in
    // the picture's coordinates, like everyone's.
    let flip = matches!(b.memory, Memory::DmaBuf { y_invert: true, .. });
    // The copies to make: (offset in the buffer's memory, range of `data`).
    let whole = Rect::new(0, 0, b.width as i32, b.height as i32);
    let src_row = |y: usize| {
        let mem_y = if flip { b.height as usize - 1 - y } else { y };
        b.offset + mem_y * b.stride
    };
    let rows: Box<dyn Iterator<Item = (usize, std::ops::Range<usize>)> + '_> = match only {
        None if b.stride == row && !flip => Box::new(std::iter::once((b.offset, 0..data.len()))),
        None => Box::new((0..b.height as usize).map(move |y| (src_row(y), y * row..(y + 1) * row))),
        Some(damage) => Box::new(damage.iter().flat_map(move |r| {
            let r = r.intersect(&whole);
            let (x0, x1) = (r.x as usize * bpp, r.right() as usize * bpp);
            (r.y.max(0) as usize..r.bottom().max(0) as usize).map(move |y| (src_row(y) + x0, y * row + x0..y * row + x1))
        })),
    };
    match &b.memory {
        Memory::Pool(pool) => {
            for (at, range) in rows {
                pool.file.read_exact_at(&mut data[range], at as u64).map_err(|e| ShmError {
                    shm: pool.shm.clone(),
                    message: format!("reading the buffer failed: {e}"),
                })?;
            }
        }
        // In bounds by construction (checked when the buffer was made; a
        // dma-buf's size never changes): a `false` here copied nothing.
        Memory::DmaBuf { buf, .. } => {
            if !buf.copy_rows(&mut data, rows) {
                buf.note_failed_copy();
            }
        }
    }
    Ok(Some(Content {
        data: Arc::new(data),
        width: b.width,
        height: b.height,
        format: b.format,
    }))
}
