//! The grant-reference page directory sndif and displif use to share a
//! buffer bigger than one page.
//!
//! A request names only the first directory page; each directory page holds
//! the grant of the next one and then as many buffer grants as fit. The
//! number of buffer grants is implied by the buffer size, never sent.

use super::wire::{exact, get_u32, put_u32, WireError, XEN_PAGE_SIZE};

/// Offset of the grant of the next directory page (0 on the last page).
pub const NEXT_PAGE: usize = 0;
/// Offset of the first buffer grant.
pub const GREFS: usize = 4;
/// Buffer grants one directory page holds.
pub const GREFS_PER_PAGE: usize = (XEN_PAGE_SIZE - GREFS) / 4;

const _: () = assert!(GREFS_PER_PAGE == 1023);
const _: () = assert!(GREFS + GREFS_PER_PAGE * 4 == XEN_PAGE_SIZE);

/// Grant reference 0 exists but belongs to the console, so protocols use
/// it to mean "none" (here: no further directory page).
pub const GREF_NONE: u32 = 0;

/// Buffer pages (and so buffer grants) needed for `buffer_sz` bytes.
pub const fn data_pages(buffer_sz: u32) -> u32 {
    buffer_sz.div_ceil(XEN_PAGE_SIZE as u32)
}

/// Directory pages needed for `buffer_sz` bytes; there is always one.
pub const fn directory_pages(buffer_sz: u32) -> u32 {
    let n = data_pages(buffer_sz).div_ceil(GREFS_PER_PAGE as u32);
    if n == 0 {
        1
    } else {
        n
    }
}

/// One directory page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryPage {
    /// Grant of the next directory page, or [`GREF_NONE`].
    pub next: u32,
    /// Buffer grants; entries past the buffer's page count are unused.
    pub grefs: [u32; GREFS_PER_PAGE],
}

impl DirectoryPage {
    /// A directory page fills one Xen page.
    pub const SIZE: usize = XEN_PAGE_SIZE;

    /// The page bytes: `next`, then every grant slot.
    pub fn encode(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        put_u32(&mut b, NEXT_PAGE, self.next);
        for (i, &g) in self.grefs.iter().enumerate() {
            put_u32(&mut b, GREFS + 4 * i, g);
        }
        b
    }

    /// Reads a directory page from exactly one page of bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let b = exact::<{ Self::SIZE }>(bytes)?;
        Ok(Self {
            next: get_u32(b, NEXT_PAGE),
            grefs: core::array::from_fn(|i| get_u32(b, GREFS + 4 * i)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        assert_eq!(data_pages(0), 0);
        assert_eq!(data_pages(1), 1);
        assert_eq!(data_pages(4096), 1);
        assert_eq!(data_pages(4097), 2);
        assert_eq!(data_pages(u32::MAX), 1 << 20);
        assert_eq!(directory_pages(0), 1);
        assert_eq!(directory_pages(1023 * 4096), 1);
        assert_eq!(directory_pages(1023 * 4096 + 1), 2);
    }

    #[test]
    fn layout_and_round_trip() {
        let mut grefs = [0u32; GREFS_PER_PAGE];
        grefs[0] = 0x11;
        grefs[1022] = 0x2233;
        let page = DirectoryPage { next: 9, grefs };
        let b = page.encode();
        assert_eq!(b[0..4], [9, 0, 0, 0]);
        assert_eq!(b[4..8], [0x11, 0, 0, 0]);
        assert_eq!(b[4092..4096], [0x33, 0x22, 0, 0]);
        assert_eq!(DirectoryPage::decode(&b), Ok(page));
        assert!(DirectoryPage::decode(&b[..4095]).is_err());
    }
}
