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
//!   memory through the kernel (`process_vm_readv` on the compositor's own
//!   mapping): a page the exporter cannot provide (a device gone, an
//!   exporter that faults) is an error for that copy, never a SIGBUS in the
//!   compositor.
//! - Except where the kernel cannot: most exporters on boards (V4L2
//!   capture drivers on vb2-dma-contig, dma-heaps, TTM, vgem) map their
//!   buffers as raw page frames (`VM_PFNMAP`/`VM_IO`), which
//!   `process_vm_readv` refuses with EFAULT. [`DmaBuf::import`] tries one
//!   read through the kernel; if it fails and the kernel's own account of
//!   the mapping (`/proc/self/smaps`) says it is such a mapping, that
//!   buffer is copied directly; any other EFAULT refuses the buffer. Some
//!   of those exporters fault pages in lazily and can fail (TTM, i915):
//!   a fault in a directly read mapping is caught (see `guard`), the page
//!   reads as zeros from then on and the copy reports failure.
//! - It never calls `DMA_BUF_IOCTL_SYNC`: that call waits, without a
//!   timeout, for the buffer's fences, which a client controls (a GPU job,
//!   an imported sync file). A compositor that also draws the instrument
//!   cluster must not wait on a client, so it reads without the exporter's
//!   cache maintenance: on an exporter whose CPU mapping is not coherent,
//!   that client may see stale pixels of its own; nobody else is affected.
//!
//! The client may write while the compositor copies: that tears that
//! client's picture and nothing else.

mod guard;

use std::io;
use std::ops::Range;
use std::os::fd::{AsFd, OwnedFd};
use std::ptr::NonNull;

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
/// The fd is closed once mapped: the mapping holds the dma-buf.
pub struct DmaBuf {
    map: Mapping,
}

/// Whether `fd` is a dma-buf.
fn is_dmabuf(fd: impl AsFd) -> bool {
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
        let mut map = Mapping::new(&fd, len as usize).map_err(ImportError::Io)?;
        map.read = map.probe().map_err(ImportError::Io)?;
        if map.read == Read::Direct {
            map.guard = Some(
                guard::Guarded::register(map.base.as_ptr() as usize, map.len)
                    .ok_or_else(|| ImportError::Io(io::Error::other("no fault guard for a directly read dma-buf (too many, or no signal handler)")))?,
            );
        }
        Ok(DmaBuf { map })
    }

    /// Whether copies go through the kernel (`false`: this exporter's
    /// mapping is raw page frames, copied directly).
    pub fn read_through_kernel(&self) -> bool {
        self.map.read == Read::Kernel
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
    /// dst)`. A row reaching past either end is skipped; the result is
    /// `false` if one was, or if the kernel could not read a page.
    pub fn copy_rows(&self, dst: &mut [u8], rows: impl Iterator<Item = (usize, Range<usize>)>) -> bool {
        let mut all = true;
        let mut batch = Vec::with_capacity(BATCH);
        for (at, range) in rows {
            let fits = range.start <= range.end
                && range.end <= dst.len()
                && at.checked_add(range.len()).is_some_and(|end| end <= self.map.len);
            if !fits {
                all = false;
                continue;
            }
            batch.push((at, range));
            if batch.len() == BATCH {
                all &= self.map.read(dst, &batch);
                batch.clear();
            }
        }
        if !batch.is_empty() {
            all &= self.map.read(dst, &batch);
        }
        all
    }
}

/// Bytes a direct copy moves between checks for a failed page.
const PAGE_CHUNK: usize = 4096;

/// Most dma-bufs read directly at once: the guard's table (the Wayland
/// quotas must keep below it).
pub const MAX_DIRECT_MAPPINGS: usize = guard::SLOTS;

/// Rows per `process_vm_readv` (under the kernel's IOV_MAX of 1024).
const BATCH: usize = 256;

/// How a mapping's bytes are copied out.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Read {
    /// `process_vm_readv`: an unreadable page is an error.
    Kernel,
    /// Plain loads: for mappings of raw page frames, which the kernel
    /// will not read for us, and where the call is missing.
    Direct,
}

/// A read-only shared mapping, unmapped on drop.
struct Mapping {
    base: NonNull<u8>,
    len: usize,
    read: Read,
    /// Registered for fault recovery while read directly.
    guard: Option<guard::Guarded>,
}

// SAFETY: the mapping is read-only memory owned by this value; reads from
// several threads at once are copies out of it (`read`), and unmapping
// happens once, on drop, when no reference is left.
unsafe impl Send for Mapping {}
// SAFETY: as for Send: `&Mapping` only allows byte copies out of it.
unsafe impl Sync for Mapping {}

impl Mapping {
    fn new(fd: &OwnedFd, len: usize) -> io::Result<Mapping> {
        // SAFETY: a new mapping at an address of the kernel's choosing
        // (null hint), so no existing memory is replaced; read-only and
        // shared, of `len` bytes the kernel just reported for this dma-buf.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ,
                MapFlags::SHARED,
                fd,
                0,
            )
        }?;
        let base =
            NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Mapping {
            base,
            len,
            read: Read::Kernel,
            guard: None,
        })
    }

    /// How to read this mapping: one byte through the kernel decides.
    fn probe(&self) -> io::Result<Read> {
        let mut byte = [0u8];
        match self.kernel_read(&mut byte, &[(0, 0..1)]) {
            Ok(_) => Ok(Read::Kernel),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EPERM)) => {
                Ok(Read::Direct)
            }
            Err(e) if e.raw_os_error() == Some(libc::EFAULT) => {
                match vm_flags(self.base.as_ptr() as usize) {
                    Some(flags) if flags.iter().any(|f| f == "pf" || f == "io") => Ok(Read::Direct),
                    _ => Err(io::Error::other(
                        "the exporter cannot provide the buffer's pages",
                    )),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Copies each row `(offset in the mapping, range of dst)`, which the
    /// caller checked are in bounds of both. `false` if it could not read
    /// them all.
    fn read(&self, dst: &mut [u8], rows: &[(usize, Range<usize>)]) -> bool {
        match self.read {
            Read::Kernel => self
                .kernel_read(dst, rows)
                .is_ok_and(|got| got == rows.iter().map(|(_, r)| r.len()).sum::<usize>()),
            Read::Direct => {
                self.assert_in_bounds(dst.len(), rows);
                let Some(guard) = &self.guard else {
                    return false;
                };
                let base = dst.as_mut_ptr();
                for (at, range) in rows {
                    // A page at a time, stopping at the first that failed:
                    // an exporter that fails every fault costs one signal.
                    let mut done = 0;
                    while done < range.len() {
                        let n = (range.len() - done).min(PAGE_CHUNK);
                        // SAFETY: `[at + done, + n)` lies in the live mapping and `range.start + done + n` within `range` in `dst` (asserted above); `dst` is ours alone, so they cannot overlap. The mapping is registered with `guard`, so a page the exporter fails to provide becomes zeros instead of a fatal signal.
                        unsafe {
                            std::ptr::copy_nonoverlapping(
                                self.base.as_ptr().add(*at + done),
                                base.add(range.start + done),
                                n,
                            )
                        }
                        // The copy above, not moved past the check.
                        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
                        if guard.faulted() {
                            return false;
                        }
                        done += n;
                    }
                }
                true
            }
        }
    }

    /// Every row `(offset in the mapping, range of dst)` lies in both: what
    /// the copies' unsafe blocks rely on (the callers checked; a bug here
    /// stops the compositor rather than corrupting it).
    fn assert_in_bounds(&self, dst_len: usize, rows: &[(usize, Range<usize>)]) {
        for (at, range) in rows {
            assert!(range.start <= range.end && range.end <= dst_len && *at <= self.len && range.len() <= self.len - at);
        }
    }

    /// `process_vm_readv` of `rows` (in bounds: checked by the callers):
    /// the bytes read, or the kernel's error.
    fn kernel_read(&self, dst: &mut [u8], rows: &[(usize, Range<usize>)]) -> io::Result<usize> {
        self.assert_in_bounds(dst.len(), rows);
        let base = dst.as_mut_ptr();
        // In bounds (asserted): `wrapping_add` only to stay out of unsafe.
        let local: Vec<libc::iovec> = rows
            .iter()
            .map(|(_, r)| libc::iovec { iov_base: base.wrapping_add(r.start).cast(), iov_len: r.len() })
            .collect();
        let remote: Vec<libc::iovec> = rows
            .iter()
            .map(|(at, r)| libc::iovec { iov_base: self.base.as_ptr().wrapping_add(*at).cast(), iov_len: r.len() })
            .collect();
        // Rows may overlap in `dst`: the kernel then writes the same bytes
        // twice. It reads the mapping with its own fault handling, so an
        // unreadable page is EFAULT, not a signal.
        // SAFETY: the local iovecs lie in `dst` (asserted), borrowed mutably for the call; the remote ones in the live mapping (asserted); each array holds rows.len() <= BATCH < IOV_MAX entries.
        let got = unsafe {
            libc::process_vm_readv(
                libc::getpid(),
                local.as_ptr(),
                local.len() as _,
                remote.as_ptr(),
                remote.len() as _,
                0,
            )
        };
        if got < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(got as usize)
        }
    }
}

/// The kernel's flags for the mapping starting at `addr`
/// (`/proc/self/smaps`' VmFlags: `pf` is VM_PFNMAP, `io` VM_IO).
fn vm_flags(addr: usize) -> Option<Vec<String>> {
    use std::io::BufRead;
    // Read as far as our mapping only: the kernel writes smaps as it is
    // read, walking each mapping's page tables. Lines are bytes: a
    // dma-buf's name (a client's choice) need not be UTF-8.
    let smaps = std::io::BufReader::new(std::fs::File::open("/proc/self/smaps").ok()?);
    // The kernel writes addresses with at least 8 hex digits.
    let start = format!("{addr:08x}-");
    let mut lines = smaps
        .split(b'\n')
        .map_while(Result::ok)
        .skip_while(|l| !l.starts_with(start.as_bytes()));
    lines.next()?;
    // The mapping's "Key: value" lines run until the next mapping's header.
    let flags = lines
        .take_while(|l| {
            l.split(|&b| b == b' ')
                .next()
                .is_some_and(|key| key.ends_with(b":"))
        })
        .find_map(|l| l.strip_prefix(b"VmFlags:").map(<[u8]>::to_vec))?;
    Some(
        String::from_utf8_lossy(&flags)
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    )
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // Unregistered before the address range can be reused.
        self.guard = None;
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

    /// A memfd mapped like a dma-buf: `read` copies what is there, and a
    /// page that went away is a failed copy, not a SIGBUS.
    #[test]
    fn reads_go_through_the_kernel_and_a_vanished_page_is_an_error() {
        let fd = rustix::fs::memfd_create("pages", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        let bytes: Vec<u8> = (0..8192u32).map(|i| (i % 251) as u8).collect();
        rustix::io::write(&fd, &bytes).unwrap();
        let map = Mapping::new(&fd, 8192).unwrap();
        assert_eq!(
            map.probe().unwrap(),
            Read::Kernel,
            "ordinary pages are read through the kernel"
        );
        let flags = vm_flags(map.base.as_ptr() as usize).expect("the mapping is in smaps");
        assert!(
            flags.iter().any(|f| f == "sh") && !flags.iter().any(|f| f == "pf"),
            "{flags:?}"
        );
        let mut dst = vec![0u8; 300];
        assert!(map.read(&mut dst, &[(10, 0..100), (5000, 100..300)]));
        assert_eq!(&dst[..100], &bytes[10..110]);
        assert_eq!(&dst[100..], &bytes[5000..5200]);
        rustix::fs::ftruncate(&fd, 4096).unwrap();
        assert!(map.read(&mut dst, &[(0, 0..100)]), "the first page is still there");
        assert!(!map.read(&mut dst, &[(5000, 0..100)]), "the second page is gone: an error");
    }

    /// A directly read mapping whose page goes away (a memfd truncated
    /// under it: SIGBUS, as from an exporter that fails a fault) reads as
    /// zeros and the copy says it failed; the process lives on.
    #[test]
    fn a_fault_in_a_directly_read_mapping_is_survived() {
        let fd = rustix::fs::memfd_create("direct", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        rustix::io::write(&fd, &[7u8; 8192]).unwrap();
        let mut map = Mapping::new(&fd, 8192).unwrap();
        map.read = Read::Direct;
        map.guard = guard::Guarded::register(map.base.as_ptr() as usize, map.len);
        assert!(map.guard.is_some());
        let mut dst = vec![0u8; 100];
        assert!(map.read(&mut dst, &[(5000, 0..100)]));
        assert_eq!(dst, [7u8; 100]);
        rustix::fs::ftruncate(&fd, 4096).unwrap();
        let mut dst = vec![1u8; 100];
        assert!(
            !map.read(&mut dst, &[(5000, 0..100)]),
            "the vanished page is a failed copy"
        );
        assert_eq!(dst, [0u8; 100], "and reads as zeros");
        assert!(
            !map.read(&mut dst, &[(0, 0..100)]),
            "the mapping stays marked"
        );
    }

    #[test]
    fn a_regular_file_passed_as_a_dmabuf_is_refused() {
        let f = std::fs::File::open("/proc/self/exe").unwrap();
        assert!(matches!(DmaBuf::import(f.into(), 1 << 30), Err(ImportError::NotDmaBuf)));
    }
}
