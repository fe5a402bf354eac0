//! Sizes as the description files write them: an integer number of bytes, or
//! a string with a binary suffix, `"4K"`, `"16M"`, `"2G"`, `"1536M"`.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// A size in bytes, read from an integer or a suffixed string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size(pub u64);

const HINT: &str = "write a whole number of bytes (16777216) or a string with a K, M or G suffix (\"16M\", \"2G\", \"1536M\")";

/// Parses `"16M"`-style sizes: digits then exactly one of `K`, `M`, `G`
/// (KiB, MiB, GiB).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let bad = || format!("invalid size \"{s}\": {HINT}");
    let (digits, shift) = match s.as_bytes().last() {
        Some(b'K') => (&s[..s.len() - 1], 10),
        Some(b'M') => (&s[..s.len() - 1], 20),
        Some(b'G') => (&s[..s.len() - 1], 30),
        _ => return Err(bad()),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(1u64 << shift).ok_or_else(|| format!("size \"{s}\" is too large"))
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size: an integer number of bytes or a string such as \"16M\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
                Ok(Size(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
                u64::try_from(v)
                    .map(Size)
                    .map_err(|_| E::custom(format!("invalid size {v}: a size cannot be negative")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
                parse_size(v).map(Size).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes() {
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("16M"), Ok(16 << 20));
        assert_eq!(parse_size("1536M"), Ok(1536 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("0M"), Ok(0));
    }

    #[test]
    fn rejects_everything_else() {
        for bad in ["", "M", "16", "16MB", "16m", "1.5G", " 16M", "16 M", "-1M", "0x10M", "16T"] {
            let e = parse_size(bad).unwrap_err();
            assert!(e.contains("invalid size"), "{bad}: {e}");
            assert!(e.contains("\"16M\""), "message should show the accepted form: {e}");
        }
        assert!(parse_size("99999999999G").unwrap_err().contains("too large"));
    }

    #[test]
    fn deserializes_integers_and_strings() {
        #[derive(serde::Deserialize)]
        struct T {
            a: Size,
            b: Size,
        }
        let t: T = toml::from_str("a = 4096\nb = \"2G\"").unwrap();
        assert_eq!((t.a, t.b), (Size(4096), Size(2 << 30)));
        let e = toml::from_str::<T>("a = -1\nb = \"2G\"").err().unwrap();
        assert!(e.message().contains("cannot be negative"));
        let e = toml::from_str::<T>("a = 1\nb = true").err().unwrap();
        assert!(e.message().contains("a size"), "{}", e.message());
    }
}
