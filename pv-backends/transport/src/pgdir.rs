//! Buffers shared through a page directory (sndif, displif): the
//! frontend grants the data pages and a chain of directory pages listing
//! their grants; the backend follows the chain and maps the data.

use alloc::vec::Vec;

use xen_abi::io::pgdir::{data_pages, directory_pages, DirectoryPage, GREFS_PER_PAGE, GREF_NONE};
use xen_abi::io::XEN_PAGE_SIZE;

use crate::{DomId, Error, GrantMapper, GrantRef, GrantTable, Result, RingMemory, Shm};

/// A frontend's shared buffer and the directory that describes it.
pub struct SharedBuffer {
    /// The data pages, `size` bytes rounded up to whole pages.
    pub data: Shm,
    /// The directory pages; the first one's grant goes into the request.
    pub directory: Shm,
    /// The buffer size in bytes as asked of [`share_buffer`] (not rounded
    /// up); what the request's `buffer_sz` field should carry.
    pub size: u32,
}

impl SharedBuffer {
    /// The grant the protocol's `gref_directory` field carries.
    pub fn gref_directory(&self) -> GrantRef {
        self.directory.grefs()[0]
    }
}

/// Frontend: grants `size` bytes (at least one page) to `remote`, and a
/// directory chain for them, read-only for the backend.
pub fn share_buffer(grants: &dyn GrantTable, remote: DomId, size: u32) -> Result<SharedBuffer> {
    let pages = data_pages(size).max(1) as usize;
    let data = grants.share(remote, pages, false)?;
    let dir_pages = directory_pages(size) as usize;
    let directory = grants.share(remote, dir_pages, true)?;
    let refs = data.grefs();
    for i in 0..dir_pages {
        let next = directory.grefs().get(i + 1).copied().unwrap_or(GREF_NONE);
        let chunk = refs.iter().skip(i * GREFS_PER_PAGE).take(GREFS_PER_PAGE);
        let mut page = DirectoryPage {
            next,
            grefs: [0; GREFS_PER_PAGE],
        };
        for (slot, &g) in page.grefs.iter_mut().zip(chunk) {
            *slot = g;
        }
        directory.write_bytes(i * XEN_PAGE_SIZE, &page.encode());
    }
    Ok(SharedBuffer {
        data,
        directory,
        size,
    })
}

/// Backend: follows the directory chain starting at `first` and maps the
/// `size`-byte buffer it describes. Fails on any grant that does not map,
/// a chain that ends early or loops, or a size above `max_size`.
pub fn map_buffer(
    mapper: &dyn GrantMapper,
    remote: DomId,
    first: GrantRef,
    size: u32,
    max_size: u32,
    writable: bool,
) -> Result<Shm> {
    if size == 0 || size > max_size {
        return Err(Error::Invalid("buffer size out of range"));
    }
    let wanted = data_pages(size) as usize;
    let mut refs: Vec<GrantRef> = Vec::with_capacity(wanted);
    let mut next = first;
    let mut dir_pages = 0;
    while refs.len() < wanted {
        // The chain can be no longer than the size implies: this bounds
        // the walk even if the frontend links a page to itself.
        if next == GREF_NONE || dir_pages >= directory_pages(size) {
            return Err(Error::Invalid("page directory ends early"));
        }
        let page = mapper.map(remote, &[next], false)?;
        let mut bytes = alloc::vec![0u8; XEN_PAGE_SIZE];
        page.read_bytes(0, &mut bytes);
        let dir = DirectoryPage::decode(&bytes).map_err(|_| Error::Invalid("directory page"))?;
        let take = (wanted - refs.len()).min(GREFS_PER_PAGE);
        refs.extend_from_slice(&dir.grefs[..take]);
        next = dir.next;
        dir_pages += 1;
    }
    mapper.map(remote, &refs, writable)
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use crate::loopback::Loopback;
    use proptest::prelude::*;

    #[test]
    fn round_trip_across_directory_pages() {
        let lb = Loopback::new();
        let (fe, be) = (lb.grants(1), lb.grants(0));
        let size = (GREFS_PER_PAGE as u32 + 3) * 4096 - 100;
        let buf = share_buffer(&*fe, 0, size).unwrap();
        assert_eq!(buf.directory.grefs().len(), 2);
        buf.data.write_bytes(size as usize - 4, b"tail");
        let m = map_buffer(&*be, 1, buf.gref_directory(), size, u32::MAX, false).unwrap();
        let mut t = [0u8; 4];
        m.read_bytes(size as usize - 4, &mut t);
        assert_eq!(&t, b"tail");
    }

    #[test]
    fn hostile_directories_fail_cleanly() {
        let lb = Loopback::new();
        let (fe, be) = (lb.grants(1), lb.grants(0));
        let buf = share_buffer(&*fe, 0, 8192).unwrap();
        let g = buf.gref_directory();
        assert!(map_buffer(&*be, 1, g, 0, 1 << 20, false).is_err(), "empty");
        assert!(
            map_buffer(&*be, 1, g, 1 << 21, 1 << 20, false).is_err(),
            "above limit"
        );
        assert!(
            map_buffer(&*be, 1, 12345, 8192, 1 << 20, false).is_err(),
            "bad directory"
        );
        // Claims more pages than listed: the second page's ref is 0.
        assert!(map_buffer(&*be, 1, g, 4 * 4096, 1 << 20, false).is_err());
        // A directory pointing at itself with bogus data grants.
        let evil = fe.share(0, 1, true).unwrap();
        let mut page = DirectoryPage {
            next: evil.grefs()[0],
            grefs: [999; GREFS_PER_PAGE],
        };
        page.grefs[0] = buf.data.grefs()[0];
        evil.write_bytes(0, &page.encode());
        let size = 4096 * 2000;
        assert!(map_buffer(&*be, 1, evil.grefs()[0], size, u32::MAX, false).is_err());
    }

    proptest! {
        #[test]
        fn any_directory_content_is_handled(words in proptest::collection::vec(any::<u32>(), 1024), size in 1u32..(1 << 24)) {
            let lb = Loopback::new();
            let (fe, be) = (lb.grants(1), lb.grants(0));
            let dir = fe.share(0, 1, true).unwrap();
            let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
            dir.write_bytes(0, &bytes);
            let _ = map_buffer(&*be, 1, dir.grefs()[0], size, 1 << 24, false);
        }
    }
}
