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

/// One side of a grant copy: a local buffer's address, or a grant
/// (`ref` u32 @0, `offset` u16 @4, `domid` u16 @6) packed in the same
/// eight bytes, as the union in `struct gntdev_grant_copy_segment`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct GntdevCopySide(pub u64);

impl GntdevCopySide {
    /// A grant side.
    pub fn grant(gref: u32, offset: u16, domid: u16) -> Self {
        Self(u64::from(gref) | u64::from(offset) << 32 | u64::from(domid) << 48)
    }
}

/// `struct gntdev_grant_copy_segment`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct GntdevGrantCopySegment {
    pub source: GntdevCopySide,
    pub dest: GntdevCopySide,
    pub len: u16,
    /// GNTCOPY_source_gref (1) and/or GNTCOPY_dest_gref (2).
    pub flags: u16,
    /// Out: the hypervisor's GNTST status.
    pub status: i16,
}

/// `struct ioctl_gntdev_grant_copy`.
#[repr(C)]
pub struct GntdevGrantCopy {
    pub count: u32,
    pub segments: *mut GntdevGrantCopySegment,
}

/// `/dev/xen/gntdev`: copy between grants and local buffers (GNTTABOP_copy).
pub const IOCTL_GNTDEV_GRANT_COPY: u64 = ioc_none(b'G', 8, size_of::<GntdevGrantCopy>());

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
///
/// # Safety
/// `request` must be an ioctl of `fd`'s device whose argument is exactly a
/// `T` (the request numbers above encode the size of the matching struct):
/// the kernel then reads and writes only within `arg`.
unsafe fn ioctl<T>(fd: BorrowedFd<'_>, request: u64, arg: &mut T) -> io::Result<i32> {
    // SAFETY: `arg` is a live, exclusively borrowed `T`, and by the
    // caller's promise the kernel accesses no more than that.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, arg as *mut T) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// `/dev/xen/evtchn`: a fresh local port only `remote` may bind to.
pub(crate) fn evtchn_bind_unbound(fd: BorrowedFd<'_>, remote: u32) -> io::Result<u32> {
    let mut a = EvtchnBindUnboundPort { remote_domain: remote };
    // SAFETY: the request's argument is an EvtchnBindUnboundPort.
    unsafe { ioctl(fd, IOCTL_EVTCHN_BIND_UNBOUND_PORT, &mut a) }.map(|p| p as u32)
}

/// `/dev/xen/evtchn`: connect to `remote`'s unbound `port`; the local port.
pub(crate) fn evtchn_bind_interdomain(fd: BorrowedFd<'_>, remote: u32, port: u32) -> io::Result<u32> {
    let mut a = EvtchnBindInterdomain { remote_domain: remote, remote_port: port };
    // SAFETY: the request's argument is an EvtchnBindInterdomain.
    unsafe { ioctl(fd, IOCTL_EVTCHN_BIND_INTERDOMAIN, &mut a) }.map(|p| p as u32)
}

/// `/dev/xen/evtchn`: close a local port.
pub(crate) fn evtchn_unbind(fd: BorrowedFd<'_>, port: u32) -> io::Result<()> {
    let mut a = EvtchnPort { port };
    // SAFETY: the request's argument is an EvtchnPort.
    unsafe { ioctl(fd, IOCTL_EVTCHN_UNBIND, &mut a) }.map(drop)
}

/// `/dev/xen/evtchn`: raise the event at the peer's end of a local port.
pub(crate) fn evtchn_notify(fd: BorrowedFd<'_>, port: u32) -> io::Result<()> {
    let mut a = EvtchnPort { port };
    // SAFETY: the request's argument is an EvtchnPort.
    unsafe { ioctl(fd, IOCTL_EVTCHN_NOTIFY, &mut a) }.map(drop)
}

/// The MAP_GRANT_REF argument: the header (count, pad, index) then
/// `count` (domid, ref) pairs, in u64 words so the buffer is aligned for
/// the header.
fn gntdev_map_request(domid: u32, refs: &[u32]) -> Vec<u64> {
    let mut words = vec![0u64; 2 + refs.len()];
    words[0] = refs.len() as u64; // count (low half), pad (high half)
    for (w, &r) in words[2..].iter_mut().zip(refs) {
        // Little-endian words: Xen guests are little-endian.
        *w = u64::from(domid) | (u64::from(r) << 32);
    }
    words
}

/// `/dev/xen/gntdev`: reserve a range for the grants `(domid, ref)`; the
/// `mmap` offset of the range.
pub(crate) fn gntdev_map(fd: BorrowedFd<'_>, domid: u32, refs: &[u32]) -> io::Result<u64> {
    if refs.is_empty() || refs.len() > u32::MAX as usize {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let mut words = gntdev_map_request(domid, refs);
    // SAFETY: the buffer holds a GntdevMapGrantRef header followed by its
    // `count` grant pairs, which is all the kernel reads; it writes only
    // `index`, inside the header.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), IOCTL_GNTDEV_MAP_GRANT_REF as _, words.as_mut_ptr()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(words[1])
}

/// `/dev/xen/gntdev`: give back a range reserved by [`gntdev_map`], after
/// its `munmap`.
pub(crate) fn gntdev_unmap(fd: BorrowedFd<'_>, index: u64, count: u32) -> io::Result<()> {
    let mut a = GntdevUnmapGrantRef { index, count, pad: 0 };
    // SAFETY: the request's argument is a GntdevUnmapGrantRef.
    unsafe { ioctl(fd, IOCTL_GNTDEV_UNMAP_GRANT_REF, &mut a) }.map(drop)
}

/// `/dev/xen/gntalloc`: allocate `count` zeroed pages granted to `domid`;
/// the `mmap` offset of the pages and their grant references.
/// One GNTTABOP_copy between `domid`'s grant `gref` and `local`: out of
/// the grant when `into_local`, else into it. The hypervisor's status.
pub(crate) fn gntdev_grant_copy(fd: BorrowedFd<'_>, domid: u16, gref: u32, offset: u16, local: &mut [u8], into_local: bool) -> io::Result<i16> {
    let len = u16::try_from(local.len()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let grant = GntdevCopySide::grant(gref, offset, domid);
    let buf = GntdevCopySide(local.as_mut_ptr() as u64);
    let (source, dest, flags) = if into_local { (grant, buf, 1) } else { (buf, grant, 2) };
    let mut seg = GntdevGrantCopySegment { source, dest, len, flags, status: 0 };
    let mut a = GntdevGrantCopy { count: 1, segments: &mut seg };
    // SAFETY: GRANT_COPY takes a GntdevGrantCopy pointing at `count`
    // segments; the one segment and `local` (its buffer, `len` bytes,
    // borrowed mutably for the call) outlive the ioctl.
    unsafe { ioctl(fd, IOCTL_GNTDEV_GRANT_COPY, &mut a) }?;
    Ok(seg.status)
}

pub(crate) fn gntalloc_alloc(fd: BorrowedFd<'_>, domid: u16, writable: bool, count: u32) -> io::Result<(u64, Vec<u32>)> {
    if count == 0 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let flags = if writable { GNTALLOC_FLAG_WRITABLE } else { 0 };
    // Header (domid, flags, count, index) is 16 bytes, then the refs.
    let mut words = vec![0u64; 2 + (count as usize).div_ceil(2)];
    words[0] = u64::from(domid) | (u64::from(flags) << 16) | (u64::from(count) << 32);
    // SAFETY: the buffer holds a GntallocAllocGref header and room for
    // `count` grant references after it, which is what the kernel writes.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), IOCTL_GNTALLOC_ALLOC_GREF as _, words.as_mut_ptr()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let refs = (0..count as usize).map(|i| (words[2 + i / 2] >> (32 * (i % 2))) as u32).collect();
    Ok((words[1], refs))
}

/// `/dev/xen/gntalloc`: give up the pages of one [`gntalloc_alloc`]; they
/// are freed once no longer mmapped.
pub(crate) fn gntalloc_dealloc(fd: BorrowedFd<'_>, index: u64, count: u32) -> io::Result<()> {
    let mut a = GntallocDeallocGref { index, count };
    // SAFETY: the request's argument is a GntallocDeallocGref.
    unsafe { ioctl(fd, IOCTL_GNTALLOC_DEALLOC_GREF, &mut a) }.map(drop)
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

/// A shared mapping of `len` bytes of a device at `offset`: memory another
/// domain may write at any moment. It hands out no references; every
/// access is a bounds-checked volatile copy, and writes to a read-only
/// mapping are refused instead of faulting.
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    writable: bool,
}

// SAFETY: every access below is a bounds-checked volatile load or store of
// memory the peer may change at any time anyway; none relies on exclusive
// ownership, so moving or sharing the handle between threads is sound.
unsafe impl Send for Mapping {}
// SAFETY: as above.
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
        Ok(Self { ptr, len, writable })
    }

    /// Whether writes are possible (the mapping was made writable).
    #[cfg(test)]
    pub fn writable(&self) -> bool {
        self.writable
    }

    /// Size of the mapping in bytes, as asked of [`map`](Self::map).
    pub fn len(&self) -> usize {
        self.len
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

    /// A 4-byte-aligned volatile store; out of range, unaligned or on a
    /// read-only mapping (where it would fault) writes nothing and returns
    /// false.
    pub fn write_u32(&self, offset: usize, v: u32) -> bool {
        if !self.writable || !self.range_ok(offset, 4) || !offset.is_multiple_of(4) {
            return false;
        }
        // SAFETY: in range, aligned (mmap returns page-aligned memory), and
        // the pages are mapped writable.
        unsafe { self.ptr.as_ptr().add(offset).cast::<u32>().write_volatile(v) }
        true
    }

    /// Copies out once, with volatile loads, so the peer cannot change data
    /// between our checks; a range outside the mapping reads zeros.
    pub fn read(&self, offset: usize, buf: &mut [u8]) {
        if !self.range_ok(offset, buf.len()) {
            buf.fill(0);
            return;
        }
        let src = self.ptr.as_ptr().wrapping_add(offset);
        let mut i = 0;
        // Whole aligned words where possible (display frames are large).
        while i < buf.len() && !(src as usize + i).is_multiple_of(8) {
            // SAFETY: in range (checked above).
            buf[i] = unsafe { src.add(i).read_volatile() };
            i += 1;
        }
        while i + 8 <= buf.len() {
            // SAFETY: in range and 8-byte aligned.
            let w = unsafe { src.add(i).cast::<u64>().read_volatile() };
            buf[i..i + 8].copy_from_slice(&w.to_ne_bytes());
            i += 8;
        }
        while i < buf.len() {
            // SAFETY: in range.
            buf[i] = unsafe { src.add(i).read_volatile() };
            i += 1;
        }
    }

    /// Copies `data` in at `offset` with volatile stores; a range outside
    /// the mapping, or a read-only mapping, writes nothing and returns
    /// false.
    pub fn write(&self, offset: usize, data: &[u8]) -> bool {
        if !self.writable || !self.range_ok(offset, data.len()) {
            return false;
        }
        let dst = self.ptr.as_ptr().wrapping_add(offset);
        let mut i = 0;
        while i < data.len() && !(dst as usize + i).is_multiple_of(8) {
            // SAFETY: in range, writable.
            unsafe { dst.add(i).write_volatile(data[i]) };
            i += 1;
        }
        while i + 8 <= data.len() {
            let w = u64::from_ne_bytes(data[i..i + 8].try_into().unwrap_or([0; 8]));
            // SAFETY: in range, 8-byte aligned, writable.
            unsafe { dst.add(i).cast::<u64>().write_volatile(w) };
            i += 8;
        }
        while i < data.len() {
            // SAFETY: in range, writable.
            unsafe { dst.add(i).write_volatile(data[i]) };
            i += 1;
        }
        true
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
        assert_eq!(size_of::<GntdevGrantCopySegment>(), 24);
        assert_eq!(std::mem::offset_of!(GntdevGrantCopySegment, len), 16);
        assert_eq!(std::mem::offset_of!(GntdevGrantCopySegment, status), 20);
        assert_eq!(size_of::<GntdevGrantCopy>(), 16);
        assert_eq!(IOCTL_GNTDEV_GRANT_COPY, 0x0010_4708);
        assert_eq!(GntdevCopySide::grant(7, 0x100, 3).0.to_le_bytes(), [7, 0, 0, 0, 0, 1, 3, 0]);
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
    fn map_request_layout() {
        let w = gntdev_map_request(3, &[0x10, 0x20]);
        let bytes: Vec<u8> = w.iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(bytes.len(), 16 + 2 * 8);
        assert_eq!(&bytes[0..4], &2u32.to_le_bytes(), "count");
        assert_eq!(&bytes[16..24], &[3, 0, 0, 0, 0x10, 0, 0, 0], "refs[0]");
        assert_eq!(&bytes[24..32], &[3, 0, 0, 0, 0x20, 0, 0, 0], "refs[1]");
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
        assert!(m.write_u32(8, 0xdead_beef));
        assert_eq!(m.read_u32(8), 0xdead_beef);
        assert_eq!(m.read_u32(4094), 0, "out of range reads zero");
        assert_eq!(m.read_u32(9), 0, "unaligned reads zero");
        m.write(4090, b"abcdef");
        let mut b = [1u8; 8];
        m.read(4092, &mut b);
        assert_eq!(b, [0; 8], "out of range reads zero");
        m.read(4090, &mut b[..6]);
        assert_eq!(&b[..6], b"abcdef");
        // Unaligned heads and tails around whole words copy exactly.
        let data: Vec<u8> = (0..100u8).collect();
        assert!(m.write(13, &data));
        let mut back = vec![0u8; 100];
        m.read(13, &mut back);
        assert_eq!(back, data);
    }

    /// A write to a read-only mapping would kill the daemon with SIGSEGV
    /// (f64e04b did that): it is refused instead.
    #[test]
    fn writes_to_a_read_only_mapping_are_refused() {
        let f = std::fs::File::open("/dev/zero").unwrap();
        let m = Mapping::map(std::os::fd::AsFd::as_fd(&f), 0, 4096, false).unwrap();
        assert!(!m.writable());
        assert!(!m.write_u32(0, 1));
        assert!(!m.write(0, b"x"));
        assert_eq!(m.read_u32(0), 0);
    }
}
