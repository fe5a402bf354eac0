//! Shared helpers for the byte-level encoders and decoders.
//!
//! Every wire struct in `io` is little-endian (all Xen Arm guests are) and is
//! built by hand from byte arrays, so the crate stays free of `unsafe` and
//! never depends on the host's struct layout.

use core::fmt;

/// Xen shares memory in 4 KiB pages whatever the guest's own page size is.
pub const XEN_PAGE_SIZE: usize = 4096;

/// Why bytes could not be turned into a wire value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// The input is not exactly the size of the structure.
    Length {
        /// Size of the structure in bytes.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
    /// A stream ends before the message it announces; more bytes may follow.
    Truncated {
        /// Bytes the whole message occupies.
        needed: usize,
        /// Bytes received so far.
        available: usize,
    },
    /// A field holds a number the protocol does not define.
    UnknownValue {
        /// Which field (a protocol-prefixed name, e.g. "sndif operation").
        field: &'static str,
        /// The number found there, widened to `u32`.
        value: u32,
    },
    /// A length field or string exceeds the protocol's limit.
    TooLong {
        /// Largest length the protocol (or the output buffer) allows.
        limit: usize,
        /// Length found or needed.
        actual: usize,
    },
    /// Text that should be a decimal number or a known keyword is not.
    BadText,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Length { expected, actual } => {
                write!(f, "expected {expected} bytes, got {actual}")
            }
            Self::Truncated { needed, available } => {
                write!(f, "need {needed} bytes, only {available} available")
            }
            Self::UnknownValue { field, value } => write!(f, "unknown {field} value {value}"),
            Self::TooLong { limit, actual } => write!(f, "length {actual} exceeds limit {limit}"),
            Self::BadText => f.write_str("malformed text value"),
        }
    }
}

/// Borrows `bytes` as a fixed-size array, or reports the size mismatch.
pub(crate) fn exact<const N: usize>(bytes: &[u8]) -> Result<&[u8; N], WireError> {
    bytes.try_into().map_err(|_| WireError::Length {
        expected: N,
        actual: bytes.len(),
    })
}

// The accessors below take compile-time offsets that each module checks with
// `const` assertions, so the indexing can never go out of bounds.

pub(crate) const fn get_u16<const N: usize>(b: &[u8; N], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

pub(crate) const fn get_u32<const N: usize>(b: &[u8; N], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

pub(crate) const fn get_i32<const N: usize>(b: &[u8; N], off: usize) -> i32 {
    get_u32(b, off) as i32
}

pub(crate) const fn get_u64<const N: usize>(b: &[u8; N], off: usize) -> u64 {
    (get_u32(b, off) as u64) | ((get_u32(b, off + 4) as u64) << 32)
}

pub(crate) fn put_u16<const N: usize>(b: &mut [u8; N], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_u32<const N: usize>(b: &mut [u8; N], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_i32<const N: usize>(b: &mut [u8; N], off: usize, v: i32) {
    put_u32(b, off, v as u32);
}

pub(crate) fn put_u64<const N: usize>(b: &mut [u8; N], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

/// Parses a xenstore decimal value: ASCII digits, surrounding whitespace and
/// a trailing NUL tolerated, since peers differ in how they write nodes.
pub fn parse_decimal(text: &[u8]) -> Result<u32, WireError> {
    let text = match text.split_last() {
        Some((0, head)) => head,
        _ => text,
    };
    let text = text.trim_ascii();
    if text.is_empty() {
        return Err(WireError::BadText);
    }
    let mut value: u32 = 0;
    for &c in text {
        if !c.is_ascii_digit() {
            return Err(WireError::BadText);
        }
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u32::from(c - b'0')))
            .ok_or(WireError::BadText)?;
    }
    Ok(value)
}

/// Formats into a caller-supplied buffer; the crate has no allocator.
pub(crate) struct SliceWriter<'a> {
    pub buf: &'a mut [u8],
    pub len: usize,
}

impl fmt::Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Renders `value` into `buf`, returning the used prefix length.
pub(crate) fn write_display(buf: &mut [u8], value: &dyn fmt::Display) -> Result<usize, WireError> {
    let capacity = buf.len();
    let mut w = SliceWriter { buf, len: 0 };
    fmt::write(&mut w, format_args!("{value}")).map_err(|_| WireError::TooLong {
        limit: capacity,
        actual: capacity + 1,
    })?;
    Ok(w.len)
}

/// Declares a `u8`/`u32`-backed protocol enum with `from_*` validation.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident : $repr:ty as $field:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $value:expr ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr($repr)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant = $value ),+
        }

        impl $name {
            /// Every defined value, in protocol order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The number carried on the wire.
            pub const fn raw(self) -> $repr {
                self as $repr
            }

            /// Maps a wire number back, or `None` if the protocol lacks it.
            pub const fn from_raw(v: $repr) -> Option<Self> {
                match v {
                    $( x if x == $value => Some(Self::$variant), )+
                    _ => None,
                }
            }

            /// Like [`Self::from_raw`], as a decoder error.
            pub fn decode_raw(v: $repr) -> Result<Self, $crate::io::wire::WireError> {
                Self::from_raw(v).ok_or($crate::io::wire::WireError::UnknownValue {
                    field: $field,
                    value: v as u32,
                })
            }
        }
    };
}
pub(crate) use wire_enum;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_parsing() {
        assert_eq!(parse_decimal(b"4"), Ok(4));
        assert_eq!(parse_decimal(b" 42\n"), Ok(42));
        assert_eq!(parse_decimal(b"7\0"), Ok(7));
        assert_eq!(parse_decimal(b"4294967295"), Ok(u32::MAX));
        assert_eq!(parse_decimal(b"4294967296"), Err(WireError::BadText));
        assert_eq!(parse_decimal(b""), Err(WireError::BadText));
        assert_eq!(parse_decimal(b"-1"), Err(WireError::BadText));
        assert_eq!(parse_decimal(b"1 2"), Err(WireError::BadText));
    }

    #[test]
    fn display_into_small_buffer_fails_cleanly() {
        let mut buf = [0u8; 3];
        assert!(write_display(&mut buf, &"abcd").is_err());
        assert_eq!(write_display(&mut buf, &"abc"), Ok(3));
    }
}
