//! [`ConfigError`] and the bookkeeping that turns byte offsets into lines.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use crate::locate;

/// A problem in a board or sample file.
///
/// Displays as `{file}:{line}: {field}: {message}`, or `{file}: {field}: {message}`
/// when no single line is to blame. `field` is a path into the file such as
/// `board.guest_ram`, `profiles.null-native.vwfi`, `domain "crasher".pcpus`,
/// or `domain[1].name` (0-based index) while the domain has no usable name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based line of the offending value.
    pub line: Option<usize>,
    pub field: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(
        file: impl Into<PathBuf>,
        line: Option<usize>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ConfigError { file: file.into(), line, field: field.into(), message: message.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": {}: {}", self.field, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// 1-based line holding byte `offset` of `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

/// One file's text, so errors can be placed in it.
pub(crate) struct Source<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl<'a> Source<'a> {
    /// Reads `path`; `field` is what the error blames if it cannot be read.
    pub fn read(path: &Path, field: &str, what: &str) -> Result<String, ConfigError> {
        std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(path, None, field, format!("cannot read the {what}: {e}"))
        })
    }

    pub fn error_at(&self, span: Range<usize>, field: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::new(self.path, Some(line_of(self.text, span.start)), field, message)
    }

    pub fn error<T>(&self, at: &Spanned<T>, field: impl Into<String>, message: impl Into<String>) -> ConfigError {
        self.error_at(at.span(), field, message)
    }

    pub fn error_nowhere(&self, field: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::new(self.path, None, field, message)
    }

    /// Parses the whole file, turning a syntax or type error into a
    /// [`ConfigError`] whose field is found from the error's position.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, ConfigError> {
        toml::from_str(self.text).map_err(|e| self.toml_error(&e))
    }

    fn toml_error(&self, e: &toml::de::Error) -> ConfigError {
        let raw = e.message().trim();
        let key = ["unknown field `", "missing field `", "duplicate key `"]
            .iter()
            .find_map(|p| raw.strip_prefix(p))
            .and_then(|rest| rest.split('`').next());
        let message = raw
            .replacen("unknown field", "unknown key", 1)
            .replacen("missing field", "missing required key", 1)
            .replacen(", expected", "; expected", 1)
            .replace("expected u64", "expected a non-negative integer")
            .replace("expected i64", "expected an integer")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        match e.span() {
            Some(span) => {
                let field = locate::field_at(self.text, span.start, key);
                ConfigError::new(self.path, Some(line_of(self.text, span.start)), field, message)
            }
            None => ConfigError::new(self.path, None, key.unwrap_or("(file)"), message),
        }
    }
}

/// `0x6000_0000`: hex with `_` every four digits, as the board files write it.
pub(crate) fn addr(v: u64) -> String {
    let hex = format!("{v:x}");
    let mut out = String::from("0x");
    for (i, c) in hex.chars().enumerate() {
        if i > 0 && (hex.len() - i) % 4 == 0 {
            out.push('_');
        }
        out.push(c);
    }
    out
}

/// A size for people: `16 MiB`, `4 KiB`, `1.5 GiB` is written `1536 MiB`, else bytes.
pub(crate) fn size(v: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (unit, name) in UNITS {
        if v >= unit && v.is_multiple_of(unit) {
            return format!("{} {name}", v / unit);
        }
    }
    format!("{v} bytes")
}

/// `[a, b)` as `0x6000_0000..0x6100_0000`.
pub(crate) fn range(base: u64, size: u64) -> String {
    format!("{}..{}", addr(base), addr(base.saturating_add(size)))
}

/// `"a", "b", "c"` for messages listing allowed values.
pub(crate) fn quoted_list<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        return "(none)".into();
    }
    items.iter().map(|s| format!("\"{}\"", s.as_ref())).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_with_and_without_line() {
        let e = ConfigError::new("s/system.toml", Some(14), "domain \"b\".pcpus", "bad");
        assert_eq!(e.to_string(), "s/system.toml:14: domain \"b\".pcpus: bad");
        let e = ConfigError::new("s/system.toml", None, "domain", "none");
        assert_eq!(e.to_string(), "s/system.toml: domain: none");
    }

    #[test]
    fn helpers_format_for_people() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 4), 3);
        assert_eq!(addr(0x6000_0000), "0x6000_0000");
        assert_eq!(addr(0x8_0000), "0x8_0000");
        assert_eq!(addr(0), "0x0");
        assert_eq!(size(16 << 20), "16 MiB");
        assert_eq!(size(1536 << 20), "1536 MiB");
        assert_eq!(size(2 << 30), "2 GiB");
        assert_eq!(size(4097), "4097 bytes");
        assert_eq!(quoted_list(&["a", "b"]), "\"a\", \"b\"");
    }
}
