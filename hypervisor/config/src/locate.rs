//! Finds the field a TOML parser error is about.
//!
//! The `toml` crate reports where a syntax or type error is (a byte span) but
//! not the key path. This module scans the text up to that offset, following
//! `[table]` / `[[array]]` headers, `key = value` lines, dotted keys and
//! inline tables, to name the field the same way validation errors do
//! (`board.ram.size`, `domain "crasher".pcpus`).

use std::collections::HashMap;

use crate::sample::domain_label;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

enum Frame {
    Array,
    /// An inline table; its keys start at this length of the key path.
    Inline(usize),
}

/// The field path at byte `offset` of `text`; `key` (from messages such as
/// "unknown field `x`") is appended unless the path already ends with it.
pub(crate) fn field_at(text: &str, offset: usize, key: Option<&str>) -> String {
    let mut segs = path_at(text, offset);
    if let Some(k) = key {
        if segs.last() != Some(&Seg::Key(k.to_string())) {
            segs.push(Seg::Key(k.to_string()));
        }
    }
    let mut out = String::new();
    let mut i = 0;
    while i < segs.len() {
        match (&segs[i], segs.get(i + 1)) {
            (Seg::Key(k), Some(Seg::Index(n))) if i == 0 && k == "domain" => {
                out.push_str(&domain_label(*n, domain_name_in_text(text, *n).as_deref()));
                i += 2;
                continue;
            }
            (Seg::Key(k), _) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            (Seg::Index(n), _) => out.push_str(&format!("[{n}]")),
        }
        i += 1;
    }
    if out.is_empty() {
        out.push_str("(top level)");
    }
    out
}

fn path_at(text: &str, offset: usize) -> Vec<Seg> {
    let b = text.as_bytes();
    let end = offset.min(b.len());
    let mut section: Vec<Seg> = Vec::new();
    let mut array_tables: HashMap<Vec<String>, usize> = HashMap::new();
    let mut path: Vec<String> = Vec::new();
    let mut frames: Vec<Frame> = Vec::new();
    let mut expect_key = true;
    let mut i = 0;
    while i <= end && i < b.len() {
        match b[i] {
            b'\n' => {
                i += 1;
                if frames.is_empty() {
                    path.clear();
                    expect_key = true;
                }
            }
            b' ' | b'\t' | b'\r' => i += 1,
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'[' if frames.is_empty() && expect_key => {
                let array = b.get(i + 1) == Some(&b'[');
                let (parts, next) = read_key(b, i + if array { 2 } else { 1 });
                i = next;
                while i < b.len() && (b[i] == b']' || b[i] == b' ' || b[i] == b'\t') {
                    i += 1;
                }
                section = parts.iter().cloned().map(Seg::Key).collect();
                if array {
                    let n = array_tables.entry(parts).or_insert(0);
                    section.push(Seg::Index(*n));
                    *n += 1;
                }
                path.clear();
                expect_key = false;
            }
            _ if expect_key => {
                let (parts, next) = read_key(b, i);
                if parts.is_empty() {
                    i += 1;
                    continue;
                }
                let base = match frames.last() {
                    Some(Frame::Inline(base)) => *base,
                    _ => 0,
                };
                path.truncate(base);
                path.extend(parts);
                i = next;
                if b.get(i) == Some(&b'=') {
                    i += 1;
                }
                expect_key = false;
            }
            q @ (b'"' | b'\'') => i = skip_string(b, i, q),
            b'[' => {
                frames.push(Frame::Array);
                i += 1;
            }
            b']' => {
                if let Some(Frame::Array) = frames.last() {
                    frames.pop();
                }
                i += 1;
            }
            b'{' => {
                frames.push(Frame::Inline(path.len()));
                expect_key = true;
                i += 1;
            }
            b'}' => {
                if let Some(Frame::Inline(base)) = frames.last() {
                    path.truncate(*base);
                    frames.pop();
                }
                i += 1;
            }
            b',' => {
                if let Some(Frame::Inline(base)) = frames.last() {
                    path.truncate(*base);
                    expect_key = true;
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    section.extend(path.into_iter().map(Seg::Key));
    section
}

/// Reads a possibly dotted, possibly quoted key at `i`; returns its parts and
/// the offset after it (and after trailing blanks).
fn read_key(b: &[u8], mut i: usize) -> (Vec<String>, usize) {
    let mut parts = Vec::new();
    loop {
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        let start = i;
        match b.get(i) {
            Some(&q @ (b'"' | b'\'')) => {
                i += 1;
                while i < b.len() && b[i] != q && b[i] != b'\n' {
                    i += if b[i] == b'\\' && q == b'"' { 2 } else { 1 };
                }
                let stop = i.min(b.len());
                parts.push(String::from_utf8_lossy(&b[start + 1..stop]).into_owned());
                i = (i + 1).min(b.len());
            }
            _ => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'-') {
                    i += 1;
                }
                if i == start {
                    return (parts, i);
                }
                parts.push(String::from_utf8_lossy(&b[start..i]).into_owned());
            }
        }
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
        } else {
            return (parts, i);
        }
    }
}

/// Offset after the string starting at `i` (quote `q`, possibly tripled).
fn skip_string(b: &[u8], i: usize, q: u8) -> usize {
    let triple = b.get(i + 1) == Some(&q) && b.get(i + 2) == Some(&q);
    let mut j = i + if triple { 3 } else { 1 };
    while j < b.len() {
        if b[j] == b'\\' && q == b'"' {
            j += 2;
            continue;
        }
        if triple {
            if b[j] == q && b.get(j + 1) == Some(&q) && b.get(j + 2) == Some(&q) {
                return j + 3;
            }
        } else if b[j] == q || b[j] == b'\n' {
            return j + 1;
        }
        j += 1;
    }
    b.len()
}

/// The `name = "..."` of the `index`th `[[domain]]`, read from the raw text
/// (used when the file does not parse, so no structured value exists).
pub(crate) fn domain_name_in_text(text: &str, index: usize) -> Option<String> {
    let mut seen = 0usize;
    let mut inside = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            let is_domain = t
                .strip_prefix("[[")
                .and_then(|r| r.split("]]").next())
                .is_some_and(|h| h.trim() == "domain");
            inside = is_domain && seen == index;
            if is_domain {
                seen += 1;
            }
            continue;
        }
        if !inside {
            continue;
        }
        if let Some(rest) = t.strip_prefix("name") {
            let rest = rest.trim_start().strip_prefix('=')?.trim_start().strip_prefix('"')?;
            return rest.split('"').next().map(str::to_string);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, needle: &str, key: Option<&str>) -> String {
        field_at(text, text.find(needle).unwrap(), key)
    }

    const SAMPLE: &str = "# comment [not a header]\n[system]\nboard = \"qemu-virt\" # x = 1\n\n[[domain]]\nname = \"a\"\npcpus = [\n  1,\n  \"x\",\n]\nmemory = \"16M\"\n\n[[domain]]\nname = \"b\"\nvcpus = \"two\"\n\n[[domain]]\nname = \"Bad Name\"\nfoo = 1\n";

    #[test]
    fn names_keys_in_tables_and_array_tables() {
        assert_eq!(at(SAMPLE, "\"qemu-virt\"", None), "system.board");
        assert_eq!(at(SAMPLE, "\"x\"", None), "domain \"a\".pcpus");
        assert_eq!(at(SAMPLE, "\"16M\"", None), "domain \"a\".memory");
        assert_eq!(at(SAMPLE, "\"two\"", None), "domain \"b\".vcpus");
        // Domains without a valid name are named by index.
        assert_eq!(at(SAMPLE, "foo", Some("foo")), "domain[2].foo");
        // A missing key reported at a table's header.
        assert_eq!(at(SAMPLE, "[[domain]]\nname = \"b\"", Some("image")), "domain \"b\".image");
        assert_eq!(at(SAMPLE, "[system]", Some("board")), "system.board");
    }

    #[test]
    fn names_keys_in_inline_tables_and_dotted_keys() {
        let t = "[board]\nram = { base = 0x4000_0000, size = \"2X\" }\nguest_ram.size = \"1Q\"\n[profiles.fast]\nvwfi = \"never\"\n";
        assert_eq!(at(t, "0x4000", None), "board.ram.base");
        assert_eq!(at(t, "\"2X\"", None), "board.ram.size");
        assert_eq!(at(t, "\"1Q\"", None), "board.guest_ram.size");
        assert_eq!(at(t, "\"never\"", None), "profiles.fast.vwfi");
        assert_eq!(at(t, "size = \"2X\"", Some("size")), "board.ram.size");
        assert_eq!(at(t, "fast", Some("fast")), "profiles.fast");
    }

    #[test]
    fn reads_domain_names_from_text() {
        assert_eq!(domain_name_in_text(SAMPLE, 0).as_deref(), Some("a"));
        assert_eq!(domain_name_in_text(SAMPLE, 1).as_deref(), Some("b"));
        assert_eq!(domain_name_in_text(SAMPLE, 2).as_deref(), Some("Bad Name"));
        assert_eq!(domain_name_in_text(SAMPLE, 3), None);
    }
}
