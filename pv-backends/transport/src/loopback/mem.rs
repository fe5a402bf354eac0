//! Granted pages: heap pages of atomic words, so two threads may share
//! them without `unsafe`, and the grant table that hands them out.

use std::collections::HashMap;
use std::sync::atomic::{fence, AtomicU32, Ordering};
use std::sync::{Arc, Weak};

use xen_abi::io::XEN_PAGE_SIZE;

use super::Hub;
use crate::{DomId, Error, Fence, GrantRef, Result, RingMemory, SharedMemory, Shm};

const WORDS: usize = XEN_PAGE_SIZE / 4;

/// One 4 KiB page.
pub struct Page {
    words: Box<[AtomicU32]>,
}

impl Page {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            words: (0..WORDS).map(|_| AtomicU32::new(0)).collect(),
        })
    }
}

struct Grant {
    page: Arc<Page>,
    grantee: DomId,
    readonly: bool,
}

/// Live grants, by (granting domain, reference).
#[derive(Default)]
pub(super) struct GrantTableState {
    grants: HashMap<(DomId, GrantRef), Grant>,
    next: HashMap<DomId, GrantRef>,
}

impl GrantTableState {
    pub(super) fn len(&self) -> usize {
        self.grants.len()
    }
}

/// Pages seen as one contiguous area.
pub struct LoopMemory {
    pages: Vec<Arc<Page>>,
    grefs: Vec<GrantRef>,
    writable: bool,
    /// Set on the granter's copy: dropping it revokes the grants.
    revoke: Option<(Weak<Hub>, DomId)>,
}

impl Drop for LoopMemory {
    fn drop(&mut self) {
        let Some((hub, domid)) = &self.revoke else {
            return;
        };
        if let Some(hub) = hub.upgrade() {
            let mut table = hub.grants.lock().unwrap();
            for g in &self.grefs {
                table.grants.remove(&(*domid, *g));
            }
        }
    }
}

pub(super) fn share(
    hub: &Arc<Hub>,
    domid: DomId,
    remote: DomId,
    pages: usize,
    readonly: bool,
) -> Result<Shm> {
    if pages == 0 {
        return Err(Error::Invalid("zero pages"));
    }
    let mut table = hub.grants.lock().unwrap();
    let mut mem = LoopMemory {
        pages: Vec::with_capacity(pages),
        grefs: Vec::with_capacity(pages),
        writable: true,
        revoke: Some((Arc::downgrade(hub), domid)),
    };
    for _ in 0..pages {
        // References below 8 are reserved by convention (console, store).
        let next = table.next.entry(domid).or_insert(8);
        let gref = *next;
        *next = next.wrapping_add(1).max(8);
        let page = Page::new();
        table.grants.insert(
            (domid, gref),
            Grant {
                page: page.clone(),
                grantee: remote,
                readonly,
            },
        );
        mem.pages.push(page);
        mem.grefs.push(gref);
    }
    Ok(Shm::new(mem))
}

pub(super) fn map(
    hub: &Arc<Hub>,
    domid: DomId,
    remote: DomId,
    refs: &[GrantRef],
    writable: bool,
) -> Result<Shm> {
    if refs.is_empty() {
        return Err(Error::Invalid("zero pages"));
    }
    let table = hub.grants.lock().unwrap();
    let mut pages = Vec::with_capacity(refs.len());
    for &r in refs {
        match table.grants.get(&(remote, r)) {
            Some(g) if g.grantee == domid && !(writable && g.readonly) => {
                pages.push(g.page.clone())
            }
            _ => return Err(Error::BadGrant(r)),
        }
    }
    Ok(Shm::new(LoopMemory {
        pages,
        grefs: refs.to_vec(),
        writable,
        revoke: None,
    }))
}

pub(super) fn map_foreign(
    hub: &Arc<Hub>,
    remote: DomId,
    frames: &[u64],
    writable: bool,
) -> Result<Shm> {
    if frames.is_empty() {
        return Err(Error::Invalid("zero pages"));
    }
    let table = hub.grants.lock().unwrap();
    let mut pages = Vec::with_capacity(frames.len());
    for &f in frames {
        let gref = GrantRef::try_from(f).map_err(|_| Error::BadGrant(u32::MAX))?;
        match table.grants.get(&(remote, gref)) {
            Some(g) => pages.push(g.page.clone()),
            None => return Err(Error::BadGrant(gref)),
        }
    }
    Ok(Shm::new(LoopMemory {
        pages,
        grefs: Vec::new(),
        writable,
        revoke: None,
    }))
}

impl LoopMemory {
    fn word(&self, index: usize) -> Option<&AtomicU32> {
        self.pages
            .get(index / WORDS)
            .map(|p| &p.words[index % WORDS])
    }

    fn in_range(&self, offset: usize, len: usize) -> bool {
        offset
            .checked_add(len)
            .is_some_and(|end| end <= self.pages.len() * XEN_PAGE_SIZE)
    }

    /// Replaces the bytes of a word selected by `mask` (atomic merge, so a
    /// peer writing the word's other bytes at the same time is not lost).
    fn merge(word: &AtomicU32, mask: u32, bits: u32) {
        let _ = word.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| {
            Some((w & !mask) | (bits & mask))
        });
    }
}

impl RingMemory for LoopMemory {
    fn len(&self) -> usize {
        self.pages.len() * XEN_PAGE_SIZE
    }

    fn read_u32(&self, offset: usize) -> u32 {
        let mut b = [0u8; 4];
        self.read_bytes(offset, &mut b);
        u32::from_le_bytes(b)
    }

    fn write_u32(&self, offset: usize, value: u32) {
        self.write_bytes(offset, &value.to_le_bytes());
    }

    fn read_bytes(&self, offset: usize, buf: &mut [u8]) {
        if !self.in_range(offset, buf.len()) {
            buf.fill(0);
            return;
        }
        let mut done = 0;
        while done < buf.len() {
            let at = offset + done;
            let (wi, bi) = (at / 4, at % 4);
            let bytes = self
                .word(wi)
                .map_or(0, |w| w.load(Ordering::Relaxed))
                .to_le_bytes();
            let n = (4 - bi).min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&bytes[bi..bi + n]);
            done += n;
        }
    }

    fn write_bytes(&self, offset: usize, data: &[u8]) {
        // A write to a read-only mapping is a backend bug: the hardware
        // faults on it (the Linux transport refuses it before it gets
        // there). The harness panics, so a test sees the bug.
        assert!(self.writable, "write to a read-only grant mapping (a real mapping would fault)");
        if !self.in_range(offset, data.len()) {
            return;
        }
        let mut done = 0;
        while done < data.len() {
            let at = offset + done;
            let (wi, bi) = (at / 4, at % 4);
            let n = (4 - bi).min(data.len() - done);
            let Some(word) = self.word(wi) else { return };
            if n == 4 {
                let v = u32::from_le_bytes(data[done..done + 4].try_into().unwrap());
                word.store(v, Ordering::Relaxed);
            } else {
                let mut bytes = [0u8; 4];
                bytes[bi..bi + n].copy_from_slice(&data[done..done + n]);
                let mask = u32::from_le_bytes(core::array::from_fn(|i| {
                    if (bi..bi + n).contains(&i) {
                        0xff
                    } else {
                        0
                    }
                }));
                Self::merge(word, mask, u32::from_le_bytes(bytes));
            }
            done += n;
        }
    }

    fn fence(&self, kind: Fence) {
        fence(match kind {
            Fence::Read => Ordering::Acquire,
            Fence::Write => Ordering::Release,
            Fence::Full => Ordering::SeqCst,
        });
    }
}

impl SharedMemory for LoopMemory {
    fn grefs(&self) -> &[GrantRef] {
        &self.grefs
    }
}

#[cfg(test)]
mod tests {
    use super::super::Loopback;
    use crate::{Error, GrantMapper, GrantTable, RingMemory};

    #[test]
    fn grant_map_rules() {
        let lb = Loopback::new();
        let (fe, be, other) = (lb.grants(1), lb.grants(0), lb.grants(2));
        let buf = fe.share(0, 2, false).unwrap();
        assert_eq!(buf.len(), 8192);
        buf.write_bytes(4094, b"abcd");
        let m = be.map(1, buf.grefs(), true).unwrap();
        let mut got = [0u8; 4];
        m.read_bytes(4094, &mut got);
        assert_eq!(&got, b"abcd");
        m.write_bytes(1, b"xyz");
        let mut got = [0u8; 5];
        buf.read_bytes(0, &mut got);
        assert_eq!(&got, b"\0xyz\0");
        // Not granted to domain 2; no such reference; out-of-range reads.
        assert_eq!(
            other.map(1, buf.grefs(), false).unwrap_err(),
            Error::BadGrant(buf.grefs()[0])
        );
        assert!(matches!(
            be.map(1, &[9999], false),
            Err(Error::BadGrant(9999))
        ));
        m.read_bytes(8190, &mut got);
        assert_eq!(got, [0; 5]);
        // Read-only grants refuse writable maps; revocation on drop.
        let ro = fe.share(0, 1, true).unwrap();
        assert!(be.map(1, ro.grefs(), true).is_err());
        assert!(be.map(1, ro.grefs(), false).is_ok());
        assert_eq!(lb.live_grants(), 3);
        let refs = buf.grefs().to_vec();
        drop(buf);
        drop(ro);
        assert_eq!(lb.live_grants(), 0);
        assert!(be.map(1, &refs, false).is_err());
        // The mapper's view survives revocation, as with a real mapping.
        m.read_bytes(4094, &mut got[..4]);
        assert_eq!(&got[..4], b"abcd");
    }
}
