//! `/dev/xen/evtchn`, `/dev/xen/gntdev` and `/dev/xen/gntalloc`.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};

use xen_abi::io::XEN_PAGE_SIZE;

use super::os_error;
use super::sys::{self, Mapping};
use crate::{
    DomId, Error, EventChannel, Fence, ForeignMapper, GrantMapper, GrantRef, GrantTable, Port,
    Result, RingMemory, SharedMemory, Shm,
};

fn open_rw(path: &str) -> Result<File> {
    File::options()
        .read(true)
        .write(true)
        .open(path)
        .map_err(os_error)
}

/// One open `/dev/xen/evtchn`.
pub struct Evtchn {
    file: Mutex<File>,
}

impl Evtchn {
    /// Opens a new handle: it sees only the ports bound through it.
    /// [`Error::Os`] with the errno if the device is missing (no Xen) or
    /// not accessible.
    pub fn open() -> Result<Self> {
        Ok(Self {
            file: Mutex::new(open_rw("/dev/xen/evtchn")?),
        })
    }

    fn with_fd<T>(&self, f: impl FnOnce(std::os::fd::BorrowedFd<'_>) -> std::io::Result<T>) -> std::io::Result<T> {
        let file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        f(file.as_fd())
    }
}

impl EventChannel for Evtchn {
    fn alloc_unbound(&self, remote: DomId) -> Result<Port> {
        self.with_fd(|fd| sys::evtchn_bind_unbound(fd, remote.into())).map_err(os_error)
    }

    fn bind_interdomain(&self, remote: DomId, remote_port: Port) -> Result<Port> {
        self.with_fd(|fd| sys::evtchn_bind_interdomain(fd, remote.into(), remote_port))
            .map_err(|_| Error::BadPort(remote_port))
    }

    fn unbind(&self, port: Port) -> Result<()> {
        self.with_fd(|fd| sys::evtchn_unbind(fd, port)).map_err(|_| Error::BadPort(port))
    }

    fn notify(&self, port: Port) -> Result<()> {
        self.with_fd(|fd| sys::evtchn_notify(fd, port)).map_err(|_| Error::BadPort(port))
    }

    fn wait(&self, timeout_ms: u32) -> Result<Option<Port>> {
        let mut f = self.file.lock().unwrap();
        if !sys::poll_readable(f.as_fd(), timeout_ms).map_err(os_error)? {
            return Ok(None);
        }
        // The device hands out whole u32 port numbers; read one at a time
        // so that each caller's wait sees one port.
        let mut b = [0u8; 4];
        f.read_exact(&mut b).map_err(os_error)?;
        Ok(Some(u32::from_ne_bytes(b)))
    }

    fn unmask(&self, port: Port) -> Result<()> {
        let mut f = self.file.lock().unwrap();
        f.write_all(&port.to_ne_bytes()).map_err(os_error)
    }
}

/// `/dev/xen/gntdev`: maps a frontend's grants into this process.
pub struct Gntdev {
    file: Arc<File>,
}

impl Gntdev {
    /// Opens the device; [`Error::Os`] with the errno if it is missing or
    /// not accessible. Mappings keep it open until they are dropped.
    pub fn open() -> Result<Self> {
        Ok(Self {
            file: Arc::new(open_rw("/dev/xen/gntdev")?),
        })
    }
}

/// Mapped (or allocated) grant pages, released on drop.
struct DevMemory {
    /// `None` only while dropping: gntdev wants the munmap first.
    map: Option<Mapping>,
    grefs: Vec<GrantRef>,
    file: Arc<File>,
    index: u64,
    release: Release,
}

/// How a mapping's pages are given back after the munmap.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Release {
    GntdevUnmap,
    GntallocDealloc,
    /// Foreign frames: the munmap is all.
    Nothing,
}

impl Drop for DevMemory {
    fn drop(&mut self) {
        // gntdev refuses to unmap grants that are still mmapped.
        drop(self.map.take());
        let count = self.grefs.len() as u32;
        if self.release == Release::Nothing {
            return;
        }
        if self.release == Release::GntallocDealloc {
            let _ = sys::gntalloc_dealloc(self.file.as_fd(), self.index, count);
        } else {
            let _ = sys::gntdev_unmap(self.file.as_fd(), self.index, count);
        }
    }
}

impl RingMemory for DevMemory {
    fn len(&self) -> usize {
        self.map.as_ref().map_or(0, Mapping::len)
    }
    fn read_u32(&self, offset: usize) -> u32 {
        self.map.as_ref().map_or(0, |m| m.read_u32(offset))
    }
    fn write_u32(&self, offset: usize, value: u32) {
        if let Some(m) = &self.map {
            // Refused on a read-only mapping (where it would fault).
            let _ = m.write_u32(offset, value);
        }
    }
    fn read_bytes(&self, offset: usize, buf: &mut [u8]) {
        match &self.map {
            Some(m) => m.read(offset, buf),
            None => buf.fill(0),
        }
    }
    fn write_bytes(&self, offset: usize, data: &[u8]) {
        if let Some(m) = &self.map {
            // Refused on a read-only mapping (where it would fault).
            let _ = m.write(offset, data);
        }
    }
    fn fence(&self, kind: Fence) {
        use std::sync::atomic::{fence, Ordering};
        fence(match kind {
            Fence::Read => Ordering::Acquire,
            Fence::Write => Ordering::Release,
            Fence::Full => Ordering::SeqCst,
        });
    }
}

impl SharedMemory for DevMemory {
    fn grefs(&self) -> &[GrantRef] {
        &self.grefs
    }
}

/// Largest failed mapping whose grants are probed one by one to name the
/// bad one; beyond it the OS error is reported as it is.
const MAX_PROBE: usize = 64;

impl Gntdev {
    /// Copies `buf.len()` bytes out of `remote`'s grant `gref` from
    /// `offset` (GNTTABOP_copy, no mapping made). A GNTST status other
    /// than 0 is [`Error::BadGrant`].
    pub fn copy_from(&self, remote: DomId, gref: GrantRef, offset: u16, buf: &mut [u8]) -> Result<()> {
        Self::status(gref, sys::gntdev_grant_copy(self.file.as_fd(), remote, gref, offset, buf, true))
    }

    /// Copies `data` into `remote`'s grant `gref` at `offset`.
    pub fn copy_to(&self, remote: DomId, gref: GrantRef, offset: u16, data: &[u8]) -> Result<()> {
        let mut local = data.to_vec();
        Self::status(gref, sys::gntdev_grant_copy(self.file.as_fd(), remote, gref, offset, &mut local, false))
    }

    fn status(gref: GrantRef, r: std::io::Result<i16>) -> Result<()> {
        match r {
            Ok(0) => Ok(()),
            Ok(_) => Err(Error::BadGrant(gref)),
            Err(e) => Err(os_error(e)),
        }
    }

    /// Maps `refs` of `remote` in one range; the OS error if a step fails.
    fn map_range(&self, remote: DomId, refs: &[GrantRef], writable: bool) -> std::io::Result<(u64, Mapping)> {
        let fd = self.file.as_fd();
        let index = sys::gntdev_map(fd, remote.into(), refs)?;
        match Mapping::map(fd, index, refs.len() * XEN_PAGE_SIZE, writable) {
            Ok(m) => Ok((index, m)),
            Err(e) => {
                let _ = sys::gntdev_unmap(fd, index, refs.len() as u32);
                Err(e)
            }
        }
    }
}

impl GrantMapper for Gntdev {
    fn map(&self, remote: DomId, refs: &[GrantRef], writable: bool) -> Result<Shm> {
        if refs.is_empty() || refs.len() > u32::MAX as usize {
            return Err(Error::Invalid("page count"));
        }
        let (index, map) = match self.map_range(remote, refs, writable) {
            Ok(r) => r,
            // mmap fails when a grant does not map (bad ref, revoked, not
            // ours, read-only): name the one that fails on its own. Other
            // failures (no memory, too many mappings) keep their errno.
            Err(e) if e.raw_os_error() == Some(libc::ENOMEM) || refs.len() > MAX_PROBE => {
                return Err(if refs.len() == 1 { Error::BadGrant(refs[0]) } else { os_error(e) });
            }
            Err(e) => {
                // Each probe that maps is given back at once (munmap, then
                // the gntdev range): nothing stays mapped for a failure.
                let maps = |r: GrantRef| match self.map_range(remote, &[r], writable) {
                    Ok((index, m)) => {
                        drop(m);
                        let _ = sys::gntdev_unmap(self.file.as_fd(), index, 1);
                        true
                    }
                    Err(_) => false,
                };
                return Err(match refs.iter().find(|&&r| !maps(r)) {
                    Some(&r) => Error::BadGrant(r),
                    None => os_error(e),
                });
            }
        };
        Ok(Shm::new(DevMemory {
            map: Some(map),
            grefs: refs.to_vec(),
            file: self.file.clone(),
            index,
            release: Release::GntdevUnmap,
        }))
    }
}

/// `/dev/xen/gntalloc`: shares pages of this process with another domain.
pub struct Gntalloc {
    file: Arc<File>,
}

impl Gntalloc {
    /// Opens the device; [`Error::Os`] with the errno if it is missing
    /// (many driver domains lack it) or not accessible.
    pub fn open() -> Result<Self> {
        Ok(Self {
            file: Arc::new(open_rw("/dev/xen/gntalloc")?),
        })
    }
}

impl GrantTable for Gntalloc {
    fn share(&self, remote: DomId, pages: usize, readonly: bool) -> Result<Shm> {
        let count = u32::try_from(pages).ok().filter(|&c| c > 0).ok_or(Error::Invalid("page count"))?;
        let fd = self.file.as_fd();
        let (index, grefs) = sys::gntalloc_alloc(fd, remote, !readonly, count).map_err(os_error)?;
        // Our side is always writable: we fill the pages we share.
        let map = match Mapping::map(fd, index, pages * XEN_PAGE_SIZE, true) {
            Ok(m) => m,
            Err(e) => {
                // Give the grants back rather than leak them.
                let _ = sys::gntalloc_dealloc(fd, index, count);
                return Err(os_error(e));
            }
        };
        Ok(Shm::new(DevMemory {
            map: Some(map),
            grefs,
            file: self.file.clone(),
            index,
            release: Release::GntallocDealloc,
        }))
    }
}

/// `/dev/xen/privcmd`: maps another domain's frames (needs privilege).
pub struct Privcmd {
    file: Arc<File>,
}

impl Privcmd {
    /// Opens the device; [`Error::Os`] with the errno if it is missing or
    /// not accessible. Whether a guest's frames may be mapped is decided
    /// by Xen at each mapping, not here.
    pub fn open() -> Result<Self> {
        Ok(Self {
            file: Arc::new(open_rw("/dev/xen/privcmd")?),
        })
    }
}

impl ForeignMapper for Privcmd {
    fn map_frames(&self, remote: DomId, frames: &[u64], writable: bool) -> Result<Shm> {
        if frames.is_empty() {
            return Err(Error::Invalid("zero pages"));
        }
        let map = Mapping::map(self.file.as_fd(), 0, frames.len() * XEN_PAGE_SIZE, writable)
            .map_err(os_error)?;
        let errs =
            sys::privcmd_mmapbatch(self.file.as_fd(), remote, &map, frames).map_err(os_error)?;
        if let Some(i) = errs.iter().position(|&e| e != 0) {
            return Err(Error::BadGrant(frames[i] as GrantRef));
        }
        Ok(Shm::new(DevMemory {
            map: Some(map),
            grefs: Vec::new(),
            file: self.file.clone(),
            index: 0,
            release: Release::Nothing,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_absent_without_xen() {
        // Without Xen these fail cleanly, naming the errno, instead of
        // panicking; with it they open (as root) or say why not.
        for (path, r) in [
            ("/dev/xen/evtchn", Evtchn::open().map(drop)),
            ("/dev/xen/gntdev", Gntdev::open().map(drop)),
            ("/dev/xen/gntalloc", Gntalloc::open().map(drop)),
        ] {
            if std::path::Path::new(path).exists() {
                assert!(matches!(r, Ok(()) | Err(Error::Os(libc::EACCES))), "{path}: {r:?}");
            } else {
                assert_eq!(r, Err(Error::Os(libc::ENOENT)), "{path}");
            }
        }
    }
}
