//! A process-wide logger that keeps every line in memory (and echoes it to
//! stderr), so tests can assert that bad input was logged.

use std::sync::Mutex;

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Memory;

impl log::Log for Memory {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        let line = format!("{} {}", record.level(), record.args());
        eprintln!("{line}");
        if let Ok(mut l) = LINES.lock() {
            l.push(line);
        }
    }
    fn flush(&self) {}
}

static LOGGER: Memory = Memory;

/// Installs the logger (idempotent; a logger set elsewhere wins).
pub fn init() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}

/// Every line logged so far that contains `needle`.
pub fn lines_containing(needle: &str) -> Vec<String> {
    LINES
        .lock()
        .map(|l| l.iter().filter(|s| s.contains(needle)).cloned().collect())
        .unwrap_or_default()
}
