//! The PV console page (`io/console.h`, `struct xencons_interface`).
//!
//! Two byte streams with free-running indices: `in` carries keystrokes to
//! the guest, `out` carries the guest's output. The hypervisor's vPL011 and
//! xenconsoled both speak this layout.

use super::wire::{exact, get_u32, put_u32, WireError};

/// Byte offsets within the console page.
pub mod offsets {
    /// Backend → guest bytes.
    pub const IN: usize = 0;
    /// Guest → backend bytes.
    pub const OUT: usize = 1024;
    /// Guest's read index into `in` (advanced by the guest).
    pub const IN_CONS: usize = 3072;
    /// Backend's write index into `in` (advanced by the backend).
    pub const IN_PROD: usize = 3076;
    /// Backend's read index into `out` (advanced by the backend).
    pub const OUT_CONS: usize = 3080;
    /// Guest's write index into `out` (advanced by the guest).
    pub const OUT_PROD: usize = 3084;
    /// End of the defined fields.
    pub const END: usize = 3088;
}

/// Bytes in the `in` buffer (backend → guest).
pub const IN_SIZE: usize = 1024;
/// Bytes in the `out` buffer (guest → backend).
pub const OUT_SIZE: usize = 2048;

const _: () = assert!(offsets::OUT == offsets::IN + IN_SIZE);
const _: () = assert!(offsets::IN_CONS == offsets::OUT + OUT_SIZE);
const _: () = assert!(offsets::END == offsets::IN_CONS + ConsoleIndices::SIZE);
const _: () = assert!(IN_SIZE.is_power_of_two() && OUT_SIZE.is_power_of_two());

/// The index block at [`offsets::IN_CONS`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConsoleIndices {
    /// Free-running count of `in` bytes the guest has consumed.
    pub in_cons: u32,
    /// Free-running count of `in` bytes the backend has produced.
    pub in_prod: u32,
    /// Free-running count of `out` bytes the backend has consumed.
    pub out_cons: u32,
    /// Free-running count of `out` bytes the guest has produced.
    pub out_prod: u32,
}

impl ConsoleIndices {
    /// Encoded size: four little-endian `u32`s.
    pub const SIZE: usize = 16;

    /// The block as it sits on the page at [`offsets::IN_CONS`].
    pub fn encode(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        put_u32(&mut b, rel(offsets::IN_CONS), self.in_cons);
        put_u32(&mut b, rel(offsets::IN_PROD), self.in_prod);
        put_u32(&mut b, rel(offsets::OUT_CONS), self.out_cons);
        put_u32(&mut b, rel(offsets::OUT_PROD), self.out_prod);
        b
    }

    /// Reads the block from exactly [`Self::SIZE`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let b = exact::<{ Self::SIZE }>(bytes)?;
        Ok(Self {
            in_cons: get_u32(b, rel(offsets::IN_CONS)),
            in_prod: get_u32(b, rel(offsets::IN_PROD)),
            out_cons: get_u32(b, rel(offsets::OUT_CONS)),
            out_prod: get_u32(b, rel(offsets::OUT_PROD)),
        })
    }

    /// Unread bytes in `in`; fails if the producer overran the buffer.
    pub fn in_pending(&self) -> Result<u32, WireError> {
        pending(self.in_prod, self.in_cons, IN_SIZE)
    }

    /// Unread bytes in `out`; fails if the producer overran the buffer.
    pub fn out_pending(&self) -> Result<u32, WireError> {
        pending(self.out_prod, self.out_cons, OUT_SIZE)
    }
}

/// Offset of a page field within [`ConsoleIndices`]'s encoding.
const fn rel(page_offset: usize) -> usize {
    page_offset - offsets::IN_CONS
}

/// Page offset of the `in` byte that free-running index `idx` selects.
pub const fn in_offset(idx: u32) -> usize {
    offsets::IN + (idx as usize & (IN_SIZE - 1))
}

/// Page offset of the `out` byte that free-running index `idx` selects.
pub const fn out_offset(idx: u32) -> usize {
    offsets::OUT + (idx as usize & (OUT_SIZE - 1))
}

fn pending(prod: u32, cons: u32, size: usize) -> Result<u32, WireError> {
    let n = prod.wrapping_sub(cons);
    if n as usize > size {
        return Err(WireError::TooLong {
            limit: size,
            actual: n as usize,
        });
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let idx = ConsoleIndices {
            in_cons: 1,
            in_prod: 2,
            out_cons: 3,
            out_prod: 0x0403_0201,
        };
        let b = idx.encode();
        assert_eq!(b[..12], [1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(b[12..], [1, 2, 3, 4]);
        assert_eq!(ConsoleIndices::decode(&b), Ok(idx));
        assert_eq!(in_offset(1025), 1);
        assert_eq!(out_offset(2049), 1025);
    }

    #[test]
    fn overrun_detected() {
        let ok = ConsoleIndices {
            out_prod: 2048,
            ..Default::default()
        };
        assert_eq!(ok.out_pending(), Ok(2048));
        let bad = ConsoleIndices {
            in_prod: 1025,
            ..Default::default()
        };
        assert!(bad.in_pending().is_err());
        let wrapped = ConsoleIndices {
            in_cons: u32::MAX,
            in_prod: 3,
            ..Default::default()
        };
        assert_eq!(wrapped.in_pending(), Ok(4));
    }
}
