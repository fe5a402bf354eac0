//! The hypervisor console: one physical UART shared by the hypervisor's own
//! messages and every domain's output, a line at a time, each line prefixed
//! with its source so interleaved domains stay readable.

use crate::arch::uart;
use core::fmt::{self, Write};

// A ticket lock: fair, so a domain that prints without pause cannot starve
// the others (or the hypervisor) of the console.
static LOCK: spin::mutex::TicketMutex<()> = spin::mutex::TicketMutex::new(());

struct Raw;

impl Write for Raw {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                uart::put(b'\r');
            }
            uart::put(b);
        }
        Ok(())
    }
}

/// A domain's line: `[name] text`. Non-printable bytes are shown as `.` so a
/// guest cannot drive the terminal.
pub fn domain_line(name: &str, line: &[u8]) {
    let _g = LOCK.lock();
    let _ = write!(Raw, "[{name}] ");
    for &c in line {
        uart::put(if (0x20..0x7f).contains(&c) || c == b'\t' { c } else { b'.' });
    }
    let _ = Raw.write_str("\n");
}

pub fn hv_line(args: fmt::Arguments<'_>) {
    let _g = LOCK.lock();
    let _ = Raw.write_str("[hv] ");
    let _ = Raw.write_fmt(args);
    let _ = Raw.write_str("\n");
}

/// `hvlog!("...", args)`: a hypervisor console line.
macro_rules! hvlog {
    ($($arg:tt)*) => { $crate::console::hv_line(format_args!($($arg)*)) };
}
pub(crate) use hvlog;
