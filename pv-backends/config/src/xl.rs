//! xl.cfg: the language, and the `vsnd=`, `vdispl=` and `vkb=` options.
//!
//! The language: `name = value` settings ended by a newline or `;`,
//! `#` comments, values that are numbers, single- or double-quoted
//! strings, or `[ ... ]` lists (nested for `vsnd`, trailing comma allowed).
//! Other options are parsed and kept but not interpreted here.
//!
//! Device strings are `key=value` lists separated by commas. Unknown keys
//! are errors, as in xl. One deliberate leniency: `vsnd` streams accept
//! `id=` as a synonym of `unique-id=`, because the manual's own example
//! uses it (xl itself rejects it).

use std::collections::BTreeMap;
use std::fmt;

use pv_backend::toolstack::DeviceSpec;

/// A parsed value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A quoted string, quotes removed and `"`-string escapes resolved.
    Str(String),
    /// A number, kept as the text written (e.g. `1`, `-1`, `0x10`): only
    /// its first character is checked, the caller interprets the rest.
    Num(String),
    /// A `[ ... ]` list, items in order; may nest.
    List(Vec<Value>),
}

/// A parse or interpretation error, with the line when known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XlError {
    /// 1-based line of the text at fault; 0 when not known (the message
    /// is then shown without a line).
    pub line: usize,
    /// What is wrong, naming the option or key at fault.
    pub msg: String,
}

impl fmt::Display for XlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "line {}: {}", self.line, self.msg)
        } else {
            f.write_str(&self.msg)
        }
    }
}

impl std::error::Error for XlError {}

fn err<T>(line: usize, msg: impl Into<String>) -> Result<T, XlError> {
    Err(XlError {
        line,
        msg: msg.into(),
    })
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    line: usize,
}

impl Parser<'_> {
    /// Skips blanks and comments; newlines too when `newlines`.
    fn skip(&mut self, newlines: bool) {
        while let Some(&c) = self.s.get(self.i) {
            match c {
                b' ' | b'\t' | b'\r' => self.i += 1,
                b'\n' if newlines => {
                    self.line += 1;
                    self.i += 1;
                }
                b'#' => {
                    while self.s.get(self.i).is_some_and(|&c| c != b'\n') {
                        self.i += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn name(&mut self) -> Result<String, XlError> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
        {
            self.i += 1;
        }
        if start == self.i {
            return err(self.line, "expected an option name");
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn string(&mut self, quote: u8) -> Result<Value, XlError> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'\n') => return err(self.line, "unterminated string"),
                Some(c) if c == quote => {
                    self.i += 1;
                    break;
                }
                Some(b'\\') if quote == b'"' => {
                    let e = self.s.get(self.i + 1).copied();
                    out.push(match e {
                        Some(b'n') => b'\n',
                        Some(b't') => b'\t',
                        Some(c @ (b'\\' | b'"' | b'\'')) => c,
                        _ => return err(self.line, "unknown escape in string"),
                    });
                    self.i += 2;
                }
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
        String::from_utf8(out)
            .map(Value::Str)
            .or_else(|_| err(self.line, "string is not UTF-8"))
    }

    fn value(&mut self, depth: usize) -> Result<Value, XlError> {
        if depth > 8 {
            return err(self.line, "lists nested too deeply");
        }
        self.skip(depth > 0);
        match self.peek() {
            Some(q @ (b'"' | b'\'')) => self.string(q),
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    self.skip(true);
                    if self.peek() == Some(b']') {
                        self.i += 1;
                        return Ok(Value::List(items));
                    }
                    items.push(self.value(depth + 1)?);
                    self.skip(true);
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {}
                        _ => return err(self.line, "expected ',' or ']' in list"),
                    }
                }
            }
            Some(c) if c.is_ascii_digit() || c == b'-' => {
                let start = self.i;
                self.i += 1;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'.')
                {
                    self.i += 1;
                }
                Ok(Value::Num(
                    String::from_utf8_lossy(&self.s[start..self.i]).into_owned(),
                ))
            }
            _ => err(self.line, "expected a value"),
        }
    }
}

/// Every option of an xl.cfg text, by name.
pub fn parse(text: &str) -> Result<BTreeMap<String, (usize, Value)>, XlError> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
        line: 1,
    };
    let mut out = BTreeMap::new();
    loop {
        p.skip(true);
        while p.peek() == Some(b';') {
            p.i += 1;
            p.skip(true);
        }
        if p.peek().is_none() {
            return Ok(out);
        }
        let line = p.line;
        let name = p.name()?;
        p.skip(false);
        if p.peek() != Some(b'=') {
            return err(p.line, format!("expected '=' after {name}"));
        }
        p.i += 1;
        let v = p.value(0)?;
        p.skip(false);
        match p.peek() {
            None | Some(b'\n') | Some(b';') => {}
            _ => return err(p.line, format!("unexpected text after the value of {name}")),
        }
        out.insert(name, (line, v));
    }
}

/// A spec string's optional bare first word and its key=value pairs.
type Pairs = (Option<String>, Vec<(String, String)>);

/// Splits `k=v, k=v` (the first element may be a bare word: vsnd's item kind).
fn pairs(spec: &str, line: usize) -> Result<Pairs, XlError> {
    let mut head = None;
    let mut kv = Vec::new();
    for (i, part) in spec.split(',').map(str::trim).enumerate() {
        if part.is_empty() {
            continue;
        }
        match part.split_once('=') {
            Some((k, v)) => kv.push((k.trim().to_string(), v.trim().to_string())),
            None if i == 0 => head = Some(part.to_string()),
            None => return err(line, format!("'{part}' is not key=value")),
        }
    }
    Ok((head, kv))
}

fn strings(v: &Value, what: &str, line: usize) -> Result<Vec<String>, XlError> {
    match v {
        Value::List(items) => items
            .iter()
            .map(|i| match i {
                Value::Str(s) => Ok(s.clone()),
                _ => err(line, format!("{what} entries must be strings")),
            })
            .collect(),
        _ => err(line, format!("{what} must be a list")),
    }
}

fn backend(v: &str, line: usize) -> Result<u16, XlError> {
    match v {
        "0" | "Domain-0" | "dom0" => Ok(0),
        _ => v.parse().or_else(|_| {
            err(
                line,
                format!("backend '{v}': give a domain id (names are not resolved)"),
            )
        }),
    }
}

fn boolean(v: &str, line: usize) -> Result<&'static str, XlError> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok("1"),
        "0" | "false" | "no" | "off" => Ok("0"),
        _ => err(line, format!("'{v}' is not a boolean")),
    }
}

fn number(k: &str, v: &str, line: usize) -> Result<String, XlError> {
    v.parse::<u32>()
        .map(|n| n.to_string())
        .or_else(|_| err(line, format!("{k}={v} is not a number")))
}

/// A vsnd common parameter (`;`-lists in xl, `,`-lists in xenstore).
fn common(k: &str, v: &str, line: usize) -> Result<Option<String>, XlError> {
    Ok(Some(match k {
        "sample-rates" => {
            let items: Result<Vec<String>, _> =
                v.split(';').map(|r| number(k, r.trim(), line)).collect();
            items?.join(",")
        }
        "sample-formats" => {
            const KNOWN: &[&str] = &[
                "s8",
                "u8",
                "s16_le",
                "s16_be",
                "u16_le",
                "u16_be",
                "s24_le",
                "s24_be",
                "u24_le",
                "u24_be",
                "s32_le",
                "s32_be",
                "u32_le",
                "u32_be",
                "float_le",
                "float_be",
                "float64_le",
                "float64_be",
                "iec958_subframe_le",
                "iec958_subframe_be",
                "mu_law",
                "a_law",
                "ima_adpcm",
                "mpeg",
                "gsm",
            ];
            let f: Vec<&str> = v.split(';').map(str::trim).collect();
            if let Some(bad) = f.iter().find(|x| !KNOWN.contains(x)) {
                return err(line, format!("unknown sample format '{bad}'"));
            }
            f.join(",")
        }
        "channels-min" | "channels-max" | "buffer-size" => number(k, v, line)?,
        _ => return Ok(None),
    }))
}

fn vsnd_card(
    items: &[String],
    fe_dom: u16,
    dev_id: u32,
    line: usize,
) -> Result<DeviceSpec, XlError> {
    let mut spec = DeviceSpec { be_kind: "vsnd".into(), fe_kind: "vsnd".into(), fe_dom, dev_id, ..Default::default() };
    let mut pcm: Option<u32> = None;
    let mut streams_in_pcm = 0u32;
    for (n, item) in items.iter().enumerate() {
        let (head, kv) = pairs(item, line)?;
        let kind = head.unwrap_or_default().to_ascii_uppercase();
        let prefix = match kind.as_str() {
            "CARD" if n == 0 => String::new(),
            "PCM" => {
                let p = pcm.map_or(0, |p| p + 1);
                pcm = Some(p);
                streams_in_pcm = 0;
                format!("{p}/")
            }
            "STREAM" => {
                let p = pcm.ok_or(XlError {
                    line,
                    msg: "STREAM before any PCM".into(),
                })?;
                streams_in_pcm += 1;
                format!("{p}/{}/", streams_in_pcm - 1)
            }
            "CARD" => return err(line, "CARD must be the first item of a card"),
            other => return err(line, format!("'{other}' is not CARD, PCM or STREAM")),
        };
        let mut has_type = false;
        for (k, v) in kv {
            if let Some(val) = common(&k, &v, line)? {
                spec.fe_nodes.push((format!("{prefix}{k}"), val));
                continue;
            }
            let node = match (kind.as_str(), k.as_str()) {
                ("CARD", "backend") => {
                    spec.be_dom = backend(&v, line)?;
                    continue;
                }
                ("CARD", "short-name" | "long-name") | ("PCM", "name") => (k.clone(), v),
                ("STREAM", "unique-id" | "id") => ("unique-id".to_string(), v),
                ("STREAM", "type") => {
                    has_type = true;
                    match v.to_ascii_lowercase().as_str() {
                        t @ ("p" | "c") => ("type".to_string(), t.to_string()),
                        _ => return err(line, format!("stream type '{v}' is not p or c")),
                    }
                }
                _ => return err(line, format!("unknown {kind} parameter '{k}'")),
            };
            spec.fe_nodes.push((format!("{prefix}{}", node.0), node.1));
        }
        if kind == "STREAM" && !has_type {
            return err(line, "STREAM needs type=p or type=c");
        }
    }
    Ok(spec)
}

/// A device of `kind` for `fe_dom`, with its spec's key=value pairs (a
/// bare word is an error: only vsnd items have one).
fn spec_for(kind: &str, s: &str, fe_dom: u16, dev_id: u32, line: usize) -> Result<(DeviceSpec, Vec<(String, String)>), XlError> {
    let spec = DeviceSpec { be_kind: kind.into(), fe_kind: kind.into(), fe_dom, dev_id, ..Default::default() };
    let (head, kv) = pairs(s, line)?;
    if let Some(h) = head {
        return err(line, format!("'{h}' is not key=value"));
    }
    Ok((spec, kv))
}

fn vdispl(s: &str, fe_dom: u16, dev_id: u32, line: usize) -> Result<DeviceSpec, XlError> {
    let (mut spec, kv) = spec_for("vdispl", s, fe_dom, dev_id, line)?;
    let mut connectors = 0;
    for (k, v) in kv {
        match k.as_str() {
            "backend" => spec.be_dom = backend(&v, line)?,
            "be-alloc" => spec
                .fe_nodes
                .push(("be-alloc".into(), boolean(&v, line)?.into())),
            "connectors" => {
                for (i, c) in v
                    .split(';')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .enumerate()
                {
                    let bad = || XlError {
                        line,
                        msg: format!("connector '{c}' is not <id>:<W>x<H>"),
                    };
                    let (id, res) = c.rsplit_once(':').ok_or_else(bad)?;
                    let (w, h) = res.split_once('x').ok_or_else(bad)?;
                    let (w, h) = (
                        w.parse::<u32>().map_err(|_| bad())?,
                        h.parse::<u32>().map_err(|_| bad())?,
                    );
                    if id.is_empty() || id.contains(' ') || w == 0 || h == 0 {
                        return Err(bad());
                    }
                    spec.fe_nodes
                        .push((format!("{i}/resolution"), format!("{w}x{h}")));
                    spec.fe_nodes
                        .push((format!("{i}/unique-id"), id.to_string()));
                    connectors += 1;
                }
            }
            _ => return err(line, format!("unknown vdispl parameter '{k}'")),
        }
    }
    if connectors == 0 {
        return err(line, "vdispl needs connectors=");
    }
    Ok(spec)
}

fn vkb(s: &str, fe_dom: u16, dev_id: u32, line: usize) -> Result<DeviceSpec, XlError> {
    let (mut spec, kv) = spec_for("vkbd", s, fe_dom, dev_id, line)?;
    for (k, v) in kv {
        let node = match k.as_str() {
            "backend" => {
                spec.be_dom = backend(&v, line)?;
                continue;
            }
            "backend-type" => {
                spec.be_kind = match v.as_str() {
                    "qemu" => "vkbd".into(),
                    // libxl names the directory of a user-space backend so.
                    "linux" => "vinput".into(),
                    _ => return err(line, format!("backend-type '{v}' is not qemu or linux")),
                };
                continue;
            }
            "unique-id" => v,
            "feature-disable-keyboard"
            | "feature-disable-pointer"
            | "feature-abs-pointer"
            | "feature-raw-pointer"
            | "feature-multi-touch" => boolean(&v, line)?.to_string(),
            "multi-touch-width"
            | "multi-touch-height"
            | "multi-touch-num-contacts"
            | "width"
            | "height" => number(&k, &v, line)?,
            _ => return err(line, format!("unknown vkb parameter '{k}'")),
        };
        spec.be_nodes.push((k, node));
    }
    Ok(spec)
}

/// One device of `kind` (`vkbd`, `vdispl`, `vsnd`, `vfb`) for frontend
/// domain `fe_dom` served by `be_dom`, from its xl.cfg device string(s):
/// one string, or for `vsnd` the card's item list. For system
/// descriptions that declare devices without xl (dom0less). A `backend=`
/// inside the options is refused: the caller names the backend.
pub fn device_spec(kind: &str, options: &[String], fe_dom: u16, be_dom: u16, dev_id: u32) -> Result<DeviceSpec, XlError> {
    let one = || match options {
        [s] => Ok(s.as_str()),
        _ => err(0, format!("{kind} takes one option string")),
    };
    if options.iter().any(|o| pairs(o, 0).is_ok_and(|(_, kv)| kv.iter().any(|(k, _)| k == "backend"))) {
        return err(0, "backend= belongs in the device's `backend` field, as a domain name");
    }
    let mut spec = match kind {
        "vkbd" => vkb(one()?, fe_dom, dev_id, 0)?,
        "vdispl" => vdispl(one()?, fe_dom, dev_id, 0)?,
        "vsnd" => vsnd_card(options, fe_dom, dev_id, 0)?,
        "vfb" => vfb(one()?, fe_dom, dev_id)?,
        _ => return err(0, format!("unknown device kind '{kind}': vkbd, vfb, vsnd or vdispl")),
    };
    spec.be_dom = be_dom;
    Ok(spec)
}

/// A vfb as the interop bed creates it without xl (xl's vfb= would start a
/// QEMU device model): the framebuffer's size for the backend.
fn vfb(s: &str, fe_dom: u16, dev_id: u32) -> Result<DeviceSpec, XlError> {
    let (mut spec, kv) = spec_for("vfb", s, fe_dom, dev_id, 0)?;
    for (k, v) in kv {
        match k.as_str() {
            "width" | "height" => {
                let n = number(&k, &v, 0)?;
                spec.be_nodes.push((k, n));
            }
            _ => return err(0, format!("unknown vfb parameter '{k}'")),
        }
    }
    Ok(spec)
}

/// The vsnd, vdispl and vkb devices of `text`, as the nodes libxl would
/// write for frontend domain `fe_dom`, in that order.
pub fn device_specs(text: &str, fe_dom: u16) -> Result<Vec<DeviceSpec>, XlError> {
    let cfg = parse(text)?;
    let mut out = Vec::new();
    if let Some((line, v)) = cfg.get("vsnd") {
        let Value::List(cards) = v else {
            return err(*line, "vsnd must be a list of cards");
        };
        for (i, card) in cards.iter().enumerate() {
            let items = strings(card, "a vsnd card", *line)?;
            out.push(vsnd_card(&items, fe_dom, i as u32, *line)?);
        }
    }
    if let Some((line, v)) = cfg.get("vdispl") {
        for (i, s) in strings(v, "vdispl", *line)?.iter().enumerate() {
            out.push(vdispl(s, fe_dom, i as u32, *line)?);
        }
    }
    if let Some((line, v)) = cfg.get("vkb") {
        for (i, s) in strings(v, "vkb", *line)?.iter().enumerate() {
            out.push(vkb(s, fe_dom, i as u32, *line)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn node<'a>(nodes: &'a [(String, String)], k: &str) -> Option<&'a str> {
        nodes.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    /// The vsnd example of the xl.cfg manual.
    #[test]
    fn manual_vsnd_example() {
        let text = "
    vsnd = [
        ['CARD, short-name=Main, sample-formats=s16_le;s8;u32_be',
            'PCM, name=Main',
                'STREAM, id=0, type=p',
                'STREAM, id=1, type=c, channels-max=2'
        ],
        ['CARD, short-name=Second',
            'PCM, name=Second, buffer-size=1024',
                'STREAM, id=2, type=p',
                'STREAM, id=3, type=c'
        ]
    ]
";
        let specs = device_specs(text, 5).unwrap();
        assert_eq!(specs.len(), 2);
        let a = &specs[0].fe_nodes;
        assert_eq!(node(a, "short-name"), Some("Main"));
        assert_eq!(node(a, "sample-formats"), Some("s16_le,s8,u32_be"));
        assert_eq!(node(a, "0/name"), Some("Main"));
        assert_eq!(node(a, "0/0/unique-id"), Some("0"));
        assert_eq!(node(a, "0/0/type"), Some("p"));
        assert_eq!(node(a, "0/1/type"), Some("c"));
        assert_eq!(node(a, "0/1/channels-max"), Some("2"));
        let b = &specs[1];
        assert_eq!((b.dev_id, b.fe_dom, b.be_dom), (1, 5, 0));
        assert_eq!(node(&b.fe_nodes, "0/buffer-size"), Some("1024"));
        assert_eq!(node(&b.fe_nodes, "0/1/unique-id"), Some("3"));
        assert_eq!(b.fe_dir(), "/local/domain/5/device/vsnd/1");
    }

    /// The connectors example of the manual, inside a vdispl spec.
    #[test]
    fn manual_vdispl_example() {
        let text =
            "vdispl = [ 'backend=0,be-alloc=0,connectors=id0:1920x1080;id1:800x600;id2:640x480' ]";
        let s = &device_specs(text, 2).unwrap()[0];
        assert_eq!(s.be_dir(), "/local/domain/0/backend/vdispl/2/0");
        assert_eq!(node(&s.fe_nodes, "be-alloc"), Some("0"));
        assert_eq!(node(&s.fe_nodes, "0/resolution"), Some("1920x1080"));
        assert_eq!(node(&s.fe_nodes, "2/unique-id"), Some("id2"));
        assert_eq!(node(&s.fe_nodes, "1/resolution"), Some("800x600"));
    }

    /// vkb with the options the manual lists.
    #[test]
    fn vkb_options() {
        let text = r#"
name = "ivi"   # other options are parsed and ignored
memory = 512
vkb = [ "backend-type=linux,unique-id=touch0,feature-multi-touch=1,multi-touch-width=1280,multi-touch-height=720,multi-touch-num-contacts=10,feature-abs-pointer=1,width=1280,height=720" ]
"#;
        let s = &device_specs(text, 1).unwrap()[0];
        assert_eq!(s.be_kind, "vinput");
        assert_eq!(s.fe_dir(), "/local/domain/1/device/vkbd/0");
        assert_eq!(node(&s.be_nodes, "multi-touch-num-contacts"), Some("10"));
        assert_eq!(node(&s.be_nodes, "feature-multi-touch"), Some("1"));
        assert_eq!(node(&s.be_nodes, "unique-id"), Some("touch0"));
    }

    #[test]
    fn errors_have_lines() {
        let e = device_specs("memory = 1\nvkb = [ 'colour=red' ]\n", 1).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.msg.contains("colour"));
        assert!(device_specs("vdispl = [ 'connectors=a:800' ]", 1).is_err());
        assert!(device_specs("vsnd = [ [ 'CARD', 'STREAM, type=p' ] ]", 1).is_err());
        assert!(device_specs("vsnd = [ [ 'CARD', 'PCM', 'STREAM, type=x' ] ]", 1).is_err());
        assert!(device_specs("vsnd = [ [ 'CARD, sample-formats=s17' ] ]", 1).is_err());
        assert!(device_specs("x = 'unterminated\n", 1).is_err());
        assert!(device_specs("x = [1, 2", 1).is_err());
    }

    proptest! {
        #[test]
        fn parser_never_panics(text in "[\\[\\]'\",=;a-z0-9 \\n#:x-]{0,200}") {
            let _ = device_specs(&text, 1);
        }

        #[test]
        fn vdispl_connectors_round_trip(cs in proptest::collection::vec(("[a-z][a-z0-9]{0,6}", 1u32..5000, 1u32..5000), 1..5)) {
            let list: Vec<String> = cs.iter().map(|(id, w, h)| format!("{id}:{w}x{h}")).collect();
            let text = format!("vdispl = [ 'connectors={}' ]", list.join(";"));
            let s = &device_specs(&text, 3).unwrap()[0];
            for (i, (id, w, h)) in cs.iter().enumerate() {
                let res = format!("{w}x{h}");
                prop_assert_eq!(node(&s.fe_nodes, &format!("{i}/resolution")), Some(res.as_str()));
                prop_assert_eq!(node(&s.fe_nodes, &format!("{i}/unique-id")), Some(id.as_str()));
            }
        }
    }
}
