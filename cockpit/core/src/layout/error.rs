//! [`LayoutError`]: a problem in a layout file, placed at its line and field.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A problem in a layout file.
///
/// Displays as `{file}:{line}: {field}: {message}` (or without the line when
/// no single line is to blame). `field` is a path such as `display "cluster".mode`,
/// `source "ivi".display` or `source[2].opacity` while the source has no name yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayoutError {
    pub file: PathBuf,
    /// 1-based line of the offending value.
    pub line: Option<usize>,
    pub field: String,
    pub message: String,
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": {}: {}", self.field, self.message)
    }
}

impl std::error::Error for LayoutError {}

/// The text of the file being loaded, to place errors in it.
pub(crate) struct Text<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl Text<'_> {
    pub fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
    }

    pub fn at(&self, span: Range<usize>, field: impl Into<String>, message: impl Into<String>) -> LayoutError {
        LayoutError {
            file: self.path.into(),
            line: Some(self.line_of(span.start)),
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn nowhere(&self, field: impl Into<String>, message: impl Into<String>) -> LayoutError {
        LayoutError {
            file: self.path.into(),
            line: None,
            field: field.into(),
            message: message.into(),
        }
    }

    /// A syntax or type error from `toml`, with the field found from its position.
    pub fn toml_error(&self, e: &toml::de::Error) -> LayoutError {
        let raw = e.message().trim();
        let key = ["unknown field `", "missing field `", "duplicate key `"]
            .iter()
            .find_map(|p| raw.strip_prefix(p))
            .and_then(|rest| rest.split('`').next());
        let message = raw
            .replacen("unknown field", "unknown key", 1)
            .replacen("missing field", "missing required key", 1)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        match e.span() {
            Some(span) => {
                let field = self.field_at(span.start, key);
                LayoutError {
                    file: self.path.into(),
                    line: Some(self.line_of(span.start)),
                    field,
                    message,
                }
            }
            None => self.nowhere(key.unwrap_or("(file)"), message),
        }
    }

    /// Names the field at byte `offset`: the key on that line inside the
    /// table headed above it, e.g. `source "ivi".opacity` or `display[0]`.
    fn field_at(&self, offset: usize, key: Option<&str>) -> String {
        let offset = offset.min(self.text.len());
        let line_start = self.text[..offset].rfind('\n').map_or(0, |i| i + 1);
        let line = self.text[line_start..].lines().next().unwrap_or("");
        let line_key = line.split_once('=').map(|(k, _)| k.trim()).filter(|k| !k.starts_with('['));
        let key = key.map(str::to_string).or(line_key.map(str::to_string));

        // The last table header before the line, and which entry of an array of tables it is.
        let mut table: Option<(String, usize, usize)> = None; // (name, index, header offset)
        let mut counts: Vec<(String, usize)> = Vec::new();
        let mut pos = 0;
        for l in self.text.split_inclusive('\n') {
            if pos > line_start {
                break;
            }
            let t = l.trim();
            if let Some(name) = t.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
                let name = name.trim().to_string();
                let n = match counts.iter_mut().find(|(k, _)| *k == name) {
                    Some((_, c)) => {
                        *c += 1;
                        *c - 1
                    }
                    None => {
                        counts.push((name.clone(), 1));
                        0
                    }
                };
                table = Some((name, n, pos));
            } else if let Some(name) = t.strip_prefix('[').and_then(|r| r.split(']').next()) {
                table = Some((name.trim().to_string(), usize::MAX, pos));
            }
            pos += l.len();
        }
        let prefix = match &table {
            None => String::new(),
            Some((name, usize::MAX, _)) => name.clone(),
            Some((name, idx, at)) => match self.name_in_table(*at) {
                Some(n) => format!("{name} \"{n}\""),
                None => format!("{name}[{idx}]"),
            },
        };
        match (prefix.is_empty(), key) {
            (true, Some(k)) => k,
            (true, None) => "(file)".into(),
            (false, Some(k)) if line_start > table.as_ref().map_or(0, |t| t.2) || !line.trim().starts_with('[') => {
                format!("{prefix}.{k}")
            }
            (false, _) => prefix,
        }
    }

    /// The `name = "..."` value of the table whose header is at `at`.
    fn name_in_table(&self, at: usize) -> Option<String> {
        for l in self.text[at..].lines().skip(1) {
            let t = l.trim();
            if t.starts_with('[') {
                return None;
            }
            if let Some((k, v)) = t.split_once('=') {
                if k.trim() == "name" {
                    let v = v.trim();
                    let v = v.strip_prefix('"')?;
                    return v.split('"').next().map(str::to_string);
                }
            }
        }
        None
    }
}
