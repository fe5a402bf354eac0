//! `cockpit-dmabuf`: a client's dma-buf, read by the compositor's CPU.
//!
//! A Wayland client (a camera pipeline, a GPU-rendering app) hands the
//! compositor dma-buf fds instead of shared memory. Dma-bufs have no
//! `read`: the CPU reaches their pixels only through a mapping. This crate
//! owns that mapping, so the Wayland server itself stays free of unsafe:
//!
//! - [`DmaBuf::import`] accepts only a real dma-buf (its file system says
//!   so: a memfd or a device fd passed as one is refused), learns its size
//!   from the kernel, refuses one larger than the caller's limit, and maps
//!   it read-only.
//! - [`DmaBuf::copy_rows`] copies bounded row ranges into the caller's
//!   memory. It brackets the copy with `DMA_BUF_IOCTL_SYNC` (the exporter's
//!   cache maintenance, for devices that are not cache-coherent) only when
//!   the buffer's writers have finished (`poll` says readable at once): the
//!   compositor never waits on a client's fence, so a client whose GPU
//!   never finishes gets its picture copied as it is, and nobody else's
//!   frame is delayed.
//!
//! The client may write while the compositor copies: the copy is of plain
//! bytes, so that tears that client's picture and nothing else.
//! Exporters keep a dma-buf's memory for as long as a reference is held,
//! and the mapping holds one, so the copy cannot fault on freed memory.

use std::io;
use std::ops::Range;
use std::os::fd::{AsFd, OwnedFd};
use std::ptr::NonNull;

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::fs::SeekFrom;
use rustix::mm::{MapFlags, ProtFlags};

/// `DMA_BUF_MAGIC` ("DMAB"): the file-system magic of every dma-buf fd
/// (Linux 5.3 and later), from `include/uapi/linux/magic.h`.
const DMA_BUF_MAGIC: u32 = 0x444d_4142;

/// Why an fd cannot be read as a dma-buf.
#[derive(Debug)]
pub enum ImportError {
    /// The fd is not a dma-buf (a memfd, a file, a device).
    NotDmaBuf,
    /// The dma-buf holds no bytes.
    Empty,
    /// Larger than the limit the caller allows.
    TooLarge { len: u64, limit: usize },
    /// The kernel refused a query or the mapping.
    Io(io::Error),
}

impl std::fmt::Display for ImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImportError::NotDmaBuf => write!(f, "the fd is not a dma-buf"),
            ImportError::Empty => write!(f, "the dma-buf is empty"),
            ImportError::TooLarge { len, limit } => write!(f, "the dma-buf's {len} bytes exceed the limit of {limit}"),
            ImportError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ImportError {}

/// A dma-buf mapped read-only into the compositor.
pub struct DmaBuf {
    fd: OwnedFd,
    map: Mapping,
}

/// Whether `fd` is a dma-buf.
pub fn is_dmabuf(fd: impl AsFd) -> bool {
    // f_type is 32 bits wide on 32-bit targets: compared as its low 32 bits.
    rustix::fs::fstatfs(fd).is_ok_and(|s| s.f_type as u32 == DMA_BUF_MAGIC)
}

impl DmaBuf {
    /// Maps the dma-buf `fd` (at most `limit` bytes).
    pub fn import(fd: OwnedFd, limit: usize) -> Result<DmaBuf, ImportError> {
        if !is_dmabuf(&fd) {
            return Err(ImportError::NotDmaBuf);
        }
        // A dma-buf's size: the only seek it answers is to its end.
        let len = rustix::fs::seek(&fd, SeekFrom::End(0)).map_err(|e| ImportError::Io(e.into()))?;
        if len == 0 {
            return Err(ImportError::Empty);
        }
        if len > limit as u64 {
            return Err(ImportError::TooLarge { len, limit });
        }
        let map = Mapping::new(&fd, len as usize).map_err(ImportError::Io)?;
        Ok(DmaBuf { fd, map })
    }

    /// The dma-buf's size in bytes.
    pub fn len(&self) -> usize {
        self.map.len
    }

    /// Never true: an empty dma-buf is refused at import.
    pub fn is_empty(&self) -> bool {
        self.map.len == 0
    }

    /// Copies rows into `dst`: each `(offset in the dma-buf, range of
    /// dst)`. A row reaching past either end is skipped, and the result is
    /// then `false`. Synchronizes with the exporter when its writers are
    /// done, never waiting for them (see the crate's doc).
    pub fn copy_rows(&self, dst: &mut [u8], rows: impl Iterator<Item = (usize, Range<usize>)>) -> bool {
        let synced = self.writers_done() && self.sync(SYNC_START).is_ok();
        let mut all = true;
        for (at, range) in rows {
            let fits = at.checked_add(range.len()).is_some_and(|end| end <= self.map.len);
            match dst.get_mut(range) {
                Some(d) if fits => self.map.copy_out(at, d),
                _ => all = false,
            }
        }
        if synced {
            let _ = self.sync(SYNC_END);
        }
        all
    }

    /// Whether the buffer's pending writes (its fences) have signalled.
    fn writers_done(&self) -> bool {
        let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
        let now = Timespec { tv_sec: 0, tv_nsec: 0 };
        poll(&mut fds, Some(&now)).is_ok_and(|n| n == 1 && fds[0].revents().contains(PollFlags::IN))
    }

    fn sync(&self, when: u64) -> io::Result<()> {
        sync::dma_buf_sync(&self.fd, when | SYNC_READ)
    }
}

/// `struct dma_buf_sync`'s flags (`include/uapi/linux/dma-buf.h`).
const SYNC_READ: u64 = 1;
const SYNC_START: u64 = 0;
const SYNC_END: u64 = 4;

mod sync {
    use std::io;
    use std::os::fd::AsFd;

    use rustix::ioctl::{ioctl, opcode, Setter};

    /// `DMA_BUF_IOCTL_SYNC`: `_IOW('b', 0, struct dma_buf_sync)`, the
    /// struct being one `__u64 flags`.
    const DMA_BUF_IOCTL_SYNC: rustix::ioctl::Opcode = opcode::write::<u64>(b'b', 0);

    /// Begins or ends CPU access to the dma-buf `fd`.
    pub(crate) fn dma_buf_sync(fd: impl AsFd, flags: u64) -> io::Result<()> {
        // SAFETY: the opcode is the kernel's DMA_BUF_IOCTL_SYNC, which reads
        // exactly one u64 (`struct dma_buf_sync`) from the pointer rustix
        // passes to its own `flags` value, and writes nothing back. Callers
        // pass only fds `is_dmabuf` accepted, so no other driver sees it.
        unsafe { ioctl(fd, Setter::<DMA_BUF_IOCTL_SYNC, u64>::new(flags)) }.map_err(io::Error::from)
    }
}

/// A read-only shared mapping, unmapped on drop.
struct Mapping {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is read-only memory owned by this value; reads from
// several threads at once are plain byte copies (`copy_out`), and unmapping
// happens once, on drop, when no reference is left.
unsafe impl Send for Mapping {}
// SAFETY: as for Send: `&Mapping` only allows byte copies out of it.
unsafe impl Sync for Mapping {}

impl Mapping {
    fn new(fd: &OwnedFd, len: usize) -> io::Result<Mapping> {
        // SAFETY: a new mapping at an address of the kernel's choosing
        // (null hint), so no existing memory is replaced; read-only and
        // shared, of `len` bytes the kernel just reported for this dma-buf.
        let ptr = unsafe { rustix::mm::mmap(std::ptr::null_mut(), len, ProtFlags::READ, MapFlags::SHARED, fd, 0) }?;
        let base = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Mapping { base, len })
    }

    /// Copies `dst.len()` bytes from `at`; the caller checked the bounds.
    fn copy_out(&self, at: usize, dst: &mut [u8]) {
        assert!(at <= self.len && dst.len() <= self.len - at, "copy_out past the mapping");
        // SAFETY: `[at, at + dst.len())` lies inside the live mapping (just
        // asserted), which is readable for as long as `self` lives; `dst` is
        // memory we own exclusively, so the two cannot overlap. Another
        // process may be writing the source bytes meanwhile: every byte
        // value is a valid u8, so a concurrent write only changes which
        // pixel values are copied.
        unsafe { std::ptr::copy_nonoverlapping(self.base.as_ptr().add(at), dst.as_mut_ptr(), dst.len()) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are exactly the mapping `new` made, and it is
        // unmapped once, here; no reference into it outlives `self` (copies
        // go into caller memory).
        let _ = unsafe { rustix::mm::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_memfd_passed_as_a_dmabuf_is_refused() {
        let fd = rustix::fs::memfd_create("not-a-dmabuf", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&fd, 4096).unwrap();
        assert!(matches!(DmaBuf::import(fd, 1 << 20), Err(ImportError::NotDmaBuf)));
    }

    #[test]
    fn a_regular_file_passed_as_a_dmabuf_is_refused() {
        let f = std::fs::File::open("/proc/self/exe").unwrap();
        assert!(matches!(DmaBuf::import(f.into(), 1 << 30), Err(ImportError::NotDmaBuf)));
    }
}
