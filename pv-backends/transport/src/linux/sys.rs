//! Every `unsafe` operation of the Linux transport: ioctls on the
//! `/dev/xen` devices, `mmap` of granted pages, `poll`, and volatile
//! access to the mapped memory. The rest of the crate is safe code.
//!
//! Struct layouts and ioctl numbers restate the Linux uapi headers
//! `xen/evtchn.h`, `xen/gntdev.h` and `xen/gntalloc.h`; the tests pin their
//! sizes, since the ioctl number encodes the size.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;

/// `_IOC(_IOC_NONE, ty, nr, size)` as the generic Linux encoding has it
/// (x86 and arm64 alike): size in bits 16..30, type in 8..16, nr in 0..8.
pub const fn ioc_none(ty: u8, nr: u8, size: usize) -> u64 {
    ((size as u64) << 16) | ((ty as u64) << 8) | nr as u64
}

/// Argument of BIND_INTERDOMAIN: the peer's end to connect to; the ioctl
/// returns our new local port.
#[repr(C)]
pub struct EvtchnBindInterdomain {
    /// Domain that allocated the unbound port.
    pub remote_domain: u32,
    /// That domain's port, as it published it in xenstore.
    pub remote_port: u32,
}

/// Argument of BIND_UNBOUND_PORT: the ioctl returns a fresh local port
/// that only `remote_domain` may bind to.
#[repr(C)]
pub struct EvtchnBindUnboundPort {
    /// Domain allowed to connect to the new port.
    pub remote_domain: u32,
}

/// Argument of UNBIND and NOTIFY.
#[repr(C)]
pub struct EvtchnPort {
    /// A local port bound through this `/dev/xen/evtchn` handle.
    pub port: u32,
}

/// `/dev/xen/evtchn`: connect to a peer's unbound port
/// ([`EvtchnBindInterdomain`]); returns the local port.
pub const IOCTL_EVTCHN_BIND_INTERDOMAIN: u64 =
    ioc_none(b'E', 1, size_of::<EvtchnBindInterdomain>());
/// `/dev/xen/evtchn`: allocate a port for a peer to bind
/// ([`EvtchnBindUnboundPort`]); returns the local port.
pub const IOCTL_EVTCHN_BIND_UNBOUND_PORT: u64 =
    ioc_none(b'E', 2, size_of::<EvtchnBindUnboundPort>());
/// `/dev/xen/evtchn`: close a port of this handle ([`EvtchnPort`]).
pub const IOCTL_EVTCHN_UNBIND: u64 = ioc_none(b'E', 3, size_of::<EvtchnPort>());
/// `/dev/xen/evtchn`: raise the event at the peer's end of a port
/// ([`EvtchnPort`]).
pub const IOCTL_EVTCHN_NOTIFY: u64 = ioc_none(b'E', 4, size_of::<EvtchnPort>());

/// One grant to map through gntdev: who granted it and which reference.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct GntdevGrantRef {
    /// Domain that granted the page.
    pub domid: u32,
    /// The grant reference within that domain's grant table.
    pub gref: u32,
}

/// `struct ioctl_gntdev_map_grant_ref` with its one-element `refs[1]`;
/// more references follow it in the same allocation.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct GntdevMapGrantRef {
    /// In: number of grants, i.e. of entries in `refs` and what follows.
    pub count: u32,
    /// Unused; zero.
    pub pad: u32,
    /// Out: the offset to pass to `mmap`.
    pub index: u64,
    /// In: the first grant; the other `count - 1` follow in memory.
    pub refs: [GntdevGrantRef; 1],
}

/// Argument of UNMAP_GRANT_REF: releases grants mapped by one
/// MAP_GRANT_REF, after their `munmap`.
#[repr(C)]
pub struct GntdevUnmapGrantRef {
    /// The `index` MAP_GRANT_REF returned.
    pub index: u64,
    /// Number of grants mapped there.
    pub count: u32,
    /// Unused; zero.
    pub pad: u32,
}

/// `/dev/xen/gntdev`: reserve a range for grants ([`GntdevMapGrantRef`]);
/// the pages are mapped by a later `mmap` at the returned index.
pub const IOCTL_GNTDEV_MAP_GRANT_REF: u64 = ioc_none(b'G', 0, size_of::<GntdevMapGrantRef>());
/// `/dev/xen/gntdev`: give back a range ([`GntdevUnmapGrantRef`]); fails
/// while it is still mmapped.
pub const IOCTL_GNTDEV_UNMAP_GRANT_REF: u64 = ioc_none(b'G', 1, size_of::<GntdevUnmapGrantRef>());

/// `struct ioctl_gntalloc_alloc_gref` with its one-element `gref_ids[1]`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct GntallocAllocGref {
    /// In: domain the pages are granted to.
    pub domid: u16,
    /// In: [`GNTALLOC_FLAG_WRITABLE`] or 0 for read-only grants.
    pub flags: u16,
    /// In: number of pages to allocate and grant.
    pub count: u32,
    /// Out: the offset to pass to `mmap` to reach the pages.
    pub index: u64,
    /// Out: the first grant reference; the other `count - 1` follow.
    pub gref_ids: [u32; 1],
}

/// Argument of DEALLOC_GREF: gives up pages of one ALLOC_GREF; they are
/// freed once no longer mmapped.
#[repr(C)]
pub struct GntallocDeallocGref {
    /// The `index` ALLOC_GREF returned.
    pub index: u64,
    /// Number of pages allocated there.
    pub count: u32,
}

/// ALLOC_GREF flag: the grantee may write the pages.
pub const GNTALLOC_FLAG_WRITABLE: u16 = 1;
/// `/dev/xen/gntalloc`: allocate zeroed pages and grant them
/// ([`GntallocAllocGref`]).
pub const IOCTL_GNTALLOC_ALLOC_GREF: u64 = ioc_none(b'G', 5, size_of::<GntallocAllocGref>());
/// `/dev/xen/gntalloc`: give back pages of one allocation
/// ([`GntallocDeallocGref`]).
pub const IOCTL_GNTALLOC_DEALLOC_GREF: u64 = ioc_none(b'G', 6, size_of::<GntallocDeallocGref>());

/// `struct privcmd_mmapbatch_v2`: maps `num` frames of `dom` at `addr`,
/// a range previously mmapped from the privcmd device.
#[repr(C)]
pub struct PrivcmdMmapBatchV2 {
    /// Number of frames, i.e. of entries in `arr` and `err`.
    pub num: u32,
    /// Domain whose frames are mapped.
    pub dom: u16,
    /// Start address of our privcmd mapping, page aligned.
    pub addr: u64,
    /// The guest frame numbers to map, in order.
    pub arr: *const u64,
    /// Out: per frame, 0 if it mapped, else a negative errno.
    pub err: *mut i32,
}

/// `/dev/xen/privcmd`: map another domain's frames into a privcmd
/// mapping ([`PrivcmdMmapBatchV2`]).
pub const IOCTL_PRIVCMD_MMAPBATCH_V2: u64 = ioc_none(b'P', 4, size_of::<PrivcmdMmapBatchV2>());

/// Fills `map` with frames `frames` of domain `dom`; per-frame errors
/// land in the returned vector (0 = mapped).
pub fn privcmd_mmapbatch(
    fd: BorrowedFd<'_>,
    dom: u16,
    map: &Mapping,
    frames: &[u64],
) -> io::Result<Vec<i32>> {
    if frames.len() * 4096 > map.len() {
        return Err(io::Error::other("mapping too small for the frames"));
    }
    let mut errs = vec![0i32; frames.len()];
    let mut arg = PrivcmdMmapBatchV2 {
        num: frames.len() as u32,
        dom,
        addr: map.ptr.as_ptr() as u64,
        arr: frames.as_ptr(),
        err: errs.as_mut_ptr(),
    };
    // SAFETY: `arg` points at `frames` and `errs`, both live for the call
    // and `num` elements long; `addr` is a privcmd mapping we own that is
    // large enough (checked above), which the kernel fills with the frames.
    let r = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            IOCTL_PRIVCMD_MMAPBATCH_V2 as _,
            &mut arg as *mut PrivcmdMmapBatchV2,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(errs)
}

/// An ioctl whose argument is one `T`. Returns the ioctl's result.
pub fn ioctl<T>(fd: BorrowedFd<'_>, request: u64, arg: &mut T) -> io::Result<i32> {
    // SAFETY: `arg` is a live, exclusively borrowed `T`, and every request
    // number above encodes `size_of::<T>()` of the matching uapi struct, so
    // the kernel reads and writes only within it.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, arg as *mut T) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// An ioctl whose argument is a header struct `H` followed by trailing
/// elements, all held in `buf` (a `u64` buffer, so it is aligned for `H`).
pub fn ioctl_buf(fd: BorrowedFd<'_>, request: u64, buf: &mut [u64]) -> io::Result<i32> {
    // SAFETY: `buf` is a live, exclusive allocation; the callers size it for
    // the header plus `count` trailing elements the kernel will access.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, buf.as_mut_ptr()) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Waits until `fd` is readable or `timeout_ms` passes.
pub fn poll_readable(fd: BorrowedFd<'_>, timeout_ms: u32) -> io::Result<bool> {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let timeout = timeout_ms.min(i32::MAX as u32) as i32;
    // SAFETY: one valid pollfd, and the count passed is 1.
    let r = unsafe { libc::poll(&mut p, 1, timeout) };
    match r {
        r if r < 0 => {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            }
        }
        0 => Ok(false),
        _ => Ok(p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0),
    }
}

/// A shared mapping of `len` bytes of a device at `offset`.
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory that another domain may write
// at any time anyway; every access below is bounds-checked and volatile or
// a single copy, so sharing the handle between threads adds no new hazard.
unsafe impl Send for Mapping {}
// SAFETY: as above: no access relies on exclusive ownership.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// `mmap`s `len` bytes of the device `fd` at `offset` (for gntdev and
    /// gntalloc, the `index` their ioctl returned), shared and readable,
    /// writable too if asked. Unmapped on drop; fails with the OS error.
    pub fn map(fd: BorrowedFd<'_>, offset: u64, len: usize, writable: bool) -> io::Result<Self> {
        let prot = if writable {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        // SAFETY: a fresh shared mapping chosen by the kernel (null hint);
        // it aliases no Rust object, and `Drop` unmaps exactly it.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                offset as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Self { ptr, len })
    }

    /// Size of the mapping in bytes, as asked of [`map`](Self::map).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping has no bytes (never, for one `mmap` accepted).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn range_ok(&self, offset: usize, n: usize) -> bool {
        offset.checked_add(n).is_some_and(|end| end <= self.len)
    }

    /// A 4-byte-aligned volatile load; out of range or unaligned reads 0.
    pub fn read_u32(&self, offset: usize) -> u32 {
        if !self.range_ok(offset, 4) || !offset.is_multiple_of(4) {
            return 0;
        }
        // SAFETY: in range and aligned (mmap returns page-aligned memory).
        unsafe { self.ptr.as_ptr().add(offset).cast::<u32>().read_volatile() }
    }

    /// A 4-byte-aligned volatile store; out of range or unaligned writes
    /// nothing. The mapping must have been made writable.
    pub fn write_u32(&self, offset: usize, v: u32) {
        if !self.range_ok(offset, 4) || !offset.is_multiple_of(4) {
            return;
        }
        // SAFETY: in range and aligned; a read-only mapping is never handed
        // out for writing by the callers (gntdev maps writable on request).
        unsafe {
            self.ptr
                .as_ptr()
                .add(offset)
                .cast::<u32>()
                .write_volatile(v)
        }
    }

    /// Copies out once, so the peer cannot change data between our checks.
    pub fn read(&self, offset: usize, buf: &mut [u8]) {
        if !self.range_ok(offset, buf.len()) {
            buf.fill(0);
            return;
        }
        // SAFETY: the source range is inside the mapping, and `buf` is a
        // distinct Rust allocation, so the ranges cannot overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.ptr.as_ptr().add(offset),
                buf.as_mut_ptr(),
                buf.len(),
            )
        }
    }

    /// Copies `data` in at `offset`; a range outside the mapping writes
    /// nothing. The mapping must have been made writable.
    pub fn write(&self, offset: usize, data: &[u8]) {
        if !self.range_ok(offset, data.len()) {
            return;
        }
        // SAFETY: the destination range is inside the mapping and `data` is
        // a distinct Rust allocation.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.as_ptr().add(offset), data.len())
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: exactly the region `mmap` returned; nothing borrows it
        // past this point since `Mapping` hands out no references.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uapi_sizes_and_numbers() {
        assert_eq!(size_of::<EvtchnBindInterdomain>(), 8);
        assert_eq!(size_of::<EvtchnBindUnboundPort>(), 4);
        assert_eq!(size_of::<GntdevGrantRef>(), 8);
        assert_eq!(size_of::<GntdevMapGrantRef>(), 24);
        assert_eq!(std::mem::offset_of!(GntdevMapGrantRef, index), 8);
        assert_eq!(std::mem::offset_of!(GntdevMapGrantRef, refs), 16);
        assert_eq!(size_of::<GntdevUnmapGrantRef>(), 16);
        assert_eq!(size_of::<GntallocAllocGref>(), 24);
        assert_eq!(std::mem::offset_of!(GntallocAllocGref, index), 8);
        assert_eq!(std::mem::offset_of!(GntallocAllocGref, gref_ids), 16);
        assert_eq!(size_of::<GntallocDeallocGref>(), 16);
        assert_eq!(size_of::<PrivcmdMmapBatchV2>(), 32);
        assert_eq!(std::mem::offset_of!(PrivcmdMmapBatchV2, addr), 8);
        assert_eq!(std::mem::offset_of!(PrivcmdMmapBatchV2, err), 24);
        assert_eq!(IOCTL_PRIVCMD_MMAPBATCH_V2, 0x0020_5004);
        assert_eq!(IOCTL_EVTCHN_BIND_INTERDOMAIN, 0x0008_4501);
        assert_eq!(IOCTL_EVTCHN_BIND_UNBOUND_PORT, 0x0004_4502);
        assert_eq!(IOCTL_EVTCHN_UNBIND, 0x0004_4503);
        assert_eq!(IOCTL_EVTCHN_NOTIFY, 0x0004_4504);
        assert_eq!(IOCTL_GNTDEV_MAP_GRANT_REF, 0x0018_4700);
        assert_eq!(IOCTL_GNTDEV_UNMAP_GRANT_REF, 0x0010_4701);
        assert_eq!(IOCTL_GNTALLOC_ALLOC_GREF, 0x0018_4705);
        assert_eq!(IOCTL_GNTALLOC_DEALLOC_GREF, 0x0010_4706);
    }

    #[test]
    fn anonymous_mapping_bounds() {
        // Any mappable fd shows the accessors' bounds checks; /dev/zero is
        // always there (MAP_SHARED of /dev/zero is shared anonymous memory).
        let f = std::fs::File::options()
            .read(true)
            .write(true)
            .open("/dev/zero")
            .unwrap();
        let m = Mapping::map(std::os::fd::AsFd::as_fd(&f), 0, 4096, true).unwrap();
        m.write_u32(8, 0xdead_beef);
        assert_eq!(m.read_u32(8), 0xdead_beef);
        assert_eq!(m.read_u32(4094), 0, "out of range reads zero");
        assert_eq!(m.read_u32(9), 0, "unaligned reads zero");
        m.write(4090, b"abcdef");
        let mut b = [1u8; 8];
        m.read(4092, &mut b);
        assert_eq!(b, [0; 8], "out of range reads zero");
        m.read(4090, &mut b[..6]);
        assert_eq!(&b[..6], b"abcdef");
    }
}
