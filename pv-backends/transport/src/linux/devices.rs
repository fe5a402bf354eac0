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

    fn ioctl<T>(&self, req: u64, arg: &mut T) -> Result<i32> {
        let f = self.file.lock().unwrap();
        sys::ioctl(f.as_fd(), req, arg).map_err(os_error)
    }
}

impl EventChannel for Evtchn {
    fn alloc_unbound(&self, remote: DomId) -> Result<Port> {
        let mut a = sys::EvtchnBindUnboundPort {
            remote_domain: remote.into(),
        };
        self.ioctl(sys::IOCTL_EVTCHN_BIND_UNBOUND_PORT, &mut a)
            .map(|p| p as Port)
    }

    fn bind_interdomain(&self, remote: DomId, remote_port: Port) -> Result<Port> {
        let mut a = sys::EvtchnBindInterdomain {
            remote_domain: remote.into(),
            remote_port,
        };
        self.ioctl(sys::IOCTL_EVTCHN_BIND_INTERDOMAIN, &mut a)
            .map(|p| p as Port)
            .map_err(|_| Error::BadPort(remote_port))
    }

    fn unbind(&self, port: Port) -> Result<()> {
        let mut a = sys::EvtchnPort { port };
        self.ioctl(sys::IOCTL_EVTCHN_UNBIND, &mut a).map(drop)
    }

    fn notify(&self, port: Port) -> Result<()> {
        let mut a = sys::EvtchnPort { port };
        self.ioctl(sys::IOCTL_EVTCHN_NOTIFY, &mut a).map(drop)
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
            let mut a = sys::GntallocDeallocGref {
                index: self.index,
                count,
            };
            let _ = sys::ioctl(self.file.as_fd(), sys::IOCTL_GNTALLOC_DEALLOC_GREF, &mut a);
        } else {
            let mut a = sys::GntdevUnmapGrantRef {
                index: self.index,
                count,
                pad: 0,
            };
            let _ = sys::ioctl(self.file.as_fd(), sys::IOCTL_GNTDEV_UNMAP_GRANT_REF, &mut a);
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
            m.write_u32(offset, value)
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
            m.write(offset, data)
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

/// The MAP_GRANT_REF argument for `refs`: header then `count` (domid, ref)
/// pairs, in u64 words so the buffer is aligned for the header.
pub(crate) fn map_request(remote: DomId, refs: &[GrantRef]) -> Vec<u64> {
    let mut words = vec![0u64; 2 + refs.len()];
    words[0] = refs.len() as u64; // count (low half), pad (high half)
    for (i, &r) in refs.iter().enumerate() {
        words[2 + i] = u64::from(remote) | (u64::from(r) << 32);
    }
    if cfg!(target_endian = "big") {
        // The pairs above are laid out for little-endian u64 words.
        unreachable!("Xen guests are little-endian");
    }
    words
}

impl GrantMapper for Gntdev {
    fn map(&self, remote: DomId, refs: &[GrantRef], writable: bool) -> Result<Shm> {
        if refs.is_empty() {
            return Err(Error::Invalid("zero pages"));
        }
        let mut req = map_request(remote, refs);
        sys::ioctl_buf(self.file.as_fd(), sys::IOCTL_GNTDEV_MAP_GRANT_REF, &mut req)
            .map_err(|_| Error::BadGrant(refs[0]))?;
        let index = req[1];
        let len = refs.len() * XEN_PAGE_SIZE;
        let map = match Mapping::map(self.file.as_fd(), index, len, writable) {
            Ok(m) => m,
            Err(_) => {
                let mut a = sys::GntdevUnmapGrantRef {
                    index,
                    count: refs.len() as u32,
                    pad: 0,
                };
                let _ = sys::ioctl(self.file.as_fd(), sys::IOCTL_GNTDEV_UNMAP_GRANT_REF, &mut a);
                // mmap fails when a grant does not map (bad ref, revoked).
                return Err(Error::BadGrant(refs[0]));
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
        if pages == 0 {
            return Err(Error::Invalid("zero pages"));
        }
        // Header (domid, flags, count, index) is 16 bytes, then the refs.
        let mut words = vec![0u64; 2 + pages.div_ceil(2)];
        let flags = if readonly {
            0
        } else {
            sys::GNTALLOC_FLAG_WRITABLE
        };
        words[0] = u64::from(remote) | (u64::from(flags) << 16) | ((pages as u64) << 32);
        sys::ioctl_buf(
            self.file.as_fd(),
            sys::IOCTL_GNTALLOC_ALLOC_GREF,
            &mut words,
        )
        .map_err(os_error)?;
        let index = words[1];
        let grefs: Vec<GrantRef> = (0..pages)
            .map(|i| (words[2 + i / 2] >> (32 * (i % 2))) as u32)
            .collect();
        let map = Mapping::map(self.file.as_fd(), index, pages * XEN_PAGE_SIZE, true)
            .map_err(os_error)?;
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
    fn map_request_layout() {
        let w = map_request(3, &[0x10, 0x20]);
        let bytes: Vec<u8> = w.iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(bytes.len(), 16 + 2 * 8);
        assert_eq!(&bytes[0..4], &2u32.to_le_bytes(), "count");
        assert_eq!(&bytes[16..24], &[3, 0, 0, 0, 0x10, 0, 0, 0], "refs[0]");
        assert_eq!(&bytes[24..32], &[3, 0, 0, 0, 0x20, 0, 0, 0], "refs[1]");
    }

    #[test]
    fn devices_absent_without_xen() {
        // On a machine without Xen these fail cleanly instead of panicking.
        if !std::path::Path::new("/dev/xen/evtchn").exists() {
            assert!(matches!(Evtchn::open(), Err(Error::Os(_))));
            assert!(Gntdev::open().is_err());
        }
    }
}
