//! A temporary BSP directory and sample, for error tests.
#![allow(dead_code)]

use std::path::PathBuf;

use hv_config::{load_board, load_sample, Board, ConfigError, LoadOptions, Sample};

/// A small valid board: 4 CPUs, 64 MiB of guest RAM at 0x6000_0000.
pub const BOARD: &str = r#"[board]
name = "tb"
arch = "aarch64"
cpus = 4
uart = 0x0900_0000
gic = "v3"
gicd = 0x0800_0000
gicr = 0x080A_0000
ram = { base = 0x4000_0000, size = "1G" }
guest_ram = { base = 0x6000_0000, size = "64M" }
default_profile = "fast"

[profiles.fast]
scheduler = "null"
vwfi = "native"

[profiles.slow]
scheduler = "null"
vwfi = "trap"
"#;

pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Self {
        let f = Fixture { dir: tempfile::tempdir().unwrap() };
        f.write("bsp/tb/board.toml", BOARD);
        f
    }

    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    pub fn bsp(&self) -> PathBuf {
        self.dir.path().join("bsp")
    }

    pub fn opts() -> LoadOptions {
        LoadOptions { known_guests: vec!["heartbeat".into(), "crasher".into()], profile_override: None, board_override: None }
    }

    pub fn sample_with(&self, text: &str, opts: &LoadOptions) -> Result<Sample, ConfigError> {
        let p = self.write("samples/s/system.toml", text);
        load_sample(&p, &self.bsp(), opts)
    }

    pub fn sample(&self, text: &str) -> Result<Sample, ConfigError> {
        self.sample_with(text, &Self::opts())
    }

    /// Loads `text` as board "tb" directly.
    pub fn board(&self, text: &str) -> Result<Board, ConfigError> {
        self.write("bsp/tb/board.toml", text);
        load_board(&self.bsp(), "tb")
    }
}

/// Asserts the error's file, line, field, message and rendering.
#[track_caller]
pub fn expect(res: Result<impl std::fmt::Debug, ConfigError>, file: &str, line: usize, field: &str, needles: &[&str]) {
    let err = res.expect_err("expected a ConfigError");
    let shown = err.to_string();
    assert!(err.file.ends_with(file), "file: {shown}");
    assert_eq!(err.line, Some(line), "line: {shown}");
    assert_eq!(err.field, field, "field: {shown}");
    let prefix = format!("{file}:{line}: {field}: ");
    assert!(shown.contains(&prefix), "expected {prefix:?} in {shown:?}");
    for n in needles {
        assert!(err.message.contains(n), "expected {n:?} in {shown:?}");
    }
}
