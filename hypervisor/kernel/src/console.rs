//! The hypervisor console: one physical UART shared by the hypervisor's own
//! messages and every domain's output, a line at a time, each prefixed with
//! its source. Lines wait in `hv_core::console_queue` (each source limited
//! to its share) and are drained without waiting: whoever passes by (every
//! guest exit, every line written) hands the UART what its FIFO accepts.
//! Only the last words before the machine stops wait for the UART.

use crate::arch::uart;
use core::fmt::{self, Write};
use hv_core::bundle::MAX_DOMAINS;
use hv_core::console_queue::{ConsoleQueue, LINE_BYTES};

/// Source index of the hypervisor's own lines (domains are 0..MAX_DOMAINS).
const HV: usize = MAX_DOMAINS;

static QUEUE: spin::mutex::TicketMutex<ConsoleQueue<{ MAX_DOMAINS + 1 }>> =
    spin::mutex::TicketMutex::new(ConsoleQueue::new());

/// A domain's line (`index` is its place in the system's table).
pub fn domain_line(index: usize, name: &str, line: &[u8]) {
    QUEUE.lock().push(index.min(HV - 1), name, line);
    drain();
}

/// A line of the hypervisor's own, cut at the queue's line length.
pub fn hv_line(args: fmt::Arguments<'_>) {
    hv_line_for(HV, args)
}

/// A hypervisor line that domain `index` caused (a crash, a restart, an
/// abort): labelled `hv`, but charged to that domain's share, so no domain
/// can push others' hypervisor lines out.
pub fn hv_line_for(index: usize, args: fmt::Arguments<'_>) {
    let line = LineBuf::render(args);
    QUEUE.lock().push(index.min(HV), "hv", line.as_bytes());
    drain();
}

/// The last words of a pCPU that stops for good (a hypervisor fault or
/// panic): written straight to the UART, queue or not, since this pCPU may
/// hold the queue's lock itself.
pub fn emergency_line(args: fmt::Arguments<'_>) {
    let line = LineBuf::render(args);
    for &b in b"[hv] ".iter().chain(line.as_bytes()).chain(b"\r\n") {
        uart::put(b);
    }
}

struct LineBuf {
    bytes: [u8; LINE_BYTES],
    len: usize,
}

impl LineBuf {
    /// `args` as one line, cut at the queue's line length.
    fn render(args: fmt::Arguments<'_>) -> Self {
        let mut buf = LineBuf { bytes: [0; LINE_BYTES], len: 0 };
        let _ = buf.write_fmt(args);
        buf
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl Write for LineBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(LINE_BYTES - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Hands the UART what it takes now; never waits (another pCPU draining
/// already is enough).
pub fn drain() {
    let Some(mut q) = QUEUE.try_lock() else { return };
    while let Some(b) = q.front() {
        if !uart::try_put(b) {
            break;
        }
        q.advance();
    }
}

/// Waits until what is queued now is out, before the machine powers off or
/// resets: at most that many bytes (domains running meanwhile cannot keep
/// it waiting), each given 1 ms (a byte takes about that at 9600 baud), so
/// a UART that never drains cannot keep it waiting either.
pub fn flush() {
    let mut left = QUEUE.lock().len();
    let per_byte = (crate::arch::sysreg::counter_hz() / 1000).max(1_000);
    let deadline = crate::arch::sysreg::counter().saturating_add(per_byte.saturating_mul(left as u64 + 1));
    while left > 0 && crate::arch::sysreg::counter() < deadline {
        let mut q = QUEUE.lock();
        let Some(b) = q.front() else { return };
        if uart::try_put(b) {
            q.advance();
            left -= 1;
        }
        drop(q);
        core::hint::spin_loop();
    }
}

/// `hvlog!("...", args)`: a hypervisor console line.
macro_rules! hvlog {
    ($($arg:tt)*) => { $crate::console::hv_line(format_args!($($arg)*)) };
}
pub(crate) use hvlog;

/// `domlog!(dom, budget, "...", args)`: a hypervisor line caused by `dom`,
/// within the domain's `budget` (a `Lock<LogBudget>` field).
macro_rules! domlog {
    ($dom:expr, $budget:ident, $($arg:tt)*) => {{
        let verdict = $dom.$budget.lock().line($crate::arch::sysreg::counter());
        if let hv_core::log_budget::Verdict::Log { suppressed } = verdict {
            if suppressed > 0 {
                $crate::console::hv_line_for($dom.index(), format_args!("{}: {} such lines left out", $dom.name(), suppressed));
            }
            $crate::console::hv_line_for($dom.index(), format_args!($($arg)*));
        }
    }};
}
pub(crate) use domlog;
