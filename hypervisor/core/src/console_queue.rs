//! The console's output queue: complete lines from every domain and from
//! the hypervisor, in the order they were written, waiting for the one
//! physical UART.
//!
//! Nobody waits on the UART: writers queue a line and go on, and whoever
//! comes by drains what the UART's FIFO accepts. Each source (a domain, or
//! the hypervisor) may hold at most its share of the queue. A source that
//! writes faster than the UART drains loses its own lines, counted and
//! reported, and never anybody else's: its rate is limited to its fair
//! share of the UART.

/// Bytes the queue holds.
pub const QUEUE_BYTES: usize = 16 * 1024;
/// Lines the queue holds.
pub const QUEUE_LINES: usize = 512;
/// The most bytes of one line (prefix included); longer ones are cut.
pub const LINE_BYTES: usize = 256;

/// Per source: queued bytes and lines lost since the last notice.
#[derive(Clone, Copy, Default)]
struct Source {
    queued: usize,
    lines: usize,
    dropped: u32,
}

pub struct ConsoleQueue<const SOURCES: usize> {
    bytes: [u8; QUEUE_BYTES],
    head: usize,
    len: usize,
    /// (source, bytes) of each queued line, oldest first.
    lines: [(u8, u16); QUEUE_LINES],
    lines_head: usize,
    lines_len: usize,
    /// Bytes of the oldest line already handed to the UART.
    sent: usize,
    sources: [Source; SOURCES],
}

impl<const SOURCES: usize> Default for ConsoleQueue<SOURCES> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const SOURCES: usize> ConsoleQueue<SOURCES> {
    pub const fn new() -> Self {
        ConsoleQueue {
            bytes: [0; QUEUE_BYTES],
            head: 0,
            len: 0,
            lines: [(0, 0); QUEUE_LINES],
            lines_head: 0,
            lines_len: 0,
            sent: 0,
            sources: [Source { queued: 0, lines: 0, dropped: 0 }; SOURCES],
        }
    }

    /// The most one source may hold queued.
    pub const fn share() -> usize {
        QUEUE_BYTES / if SOURCES == 0 { 1 } else { SOURCES }
    }

    /// The most lines one source may hold queued.
    pub const fn line_share() -> usize {
        QUEUE_LINES / if SOURCES == 0 { 1 } else { SOURCES }
    }

    /// Bytes queued, all sources.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Queues `[name] text` + CRLF from source `src`, bytes outside
    /// printable ASCII (and tab) shown as `.` so nobody drives the terminal.
    /// A line over its source's share is dropped and counted; the next line
    /// that fits is preceded by a notice saying how many were lost.
    /// Returns whether the line was queued.
    pub fn push(&mut self, src: usize, name: &str, text: &[u8]) -> bool {
        let Some(s) = self.sources.get(src).copied() else { return false };
        if s.dropped > 0 {
            let mut notice = [0u8; 48];
            let n = write_dropped(&mut notice, s.dropped);
            if !self.push_line(src, name, &notice[..n]) {
                self.sources[src].dropped = s.dropped.saturating_add(1);
                return false;
            }
            self.sources[src].dropped = 0;
        }
        if self.push_line(src, name, text) {
            return true;
        }
        self.sources[src].dropped = self.sources[src].dropped.saturating_add(1);
        false
    }

    fn push_line(&mut self, src: usize, name: &str, text: &[u8]) -> bool {
        let name = &name.as_bytes()[..name.len().min(32)];
        let text = &text[..text.len().min(LINE_BYTES - name.len() - 5)];
        let total = name.len() + text.len() + 5; // "[" "] " "\r\n"
        let fits = self.sources[src].queued + total <= Self::share()
            && self.sources[src].lines < Self::line_share()
            && self.len + total <= QUEUE_BYTES
            && self.lines_len < QUEUE_LINES;
        if !fits {
            return false;
        }
        self.put(b"[");
        self.put(name);
        self.put(b"] ");
        for &c in text {
            let shown = if (0x20..0x7f).contains(&c) || c == b'\t' { c } else { b'.' };
            self.put(&[shown]);
        }
        self.put(b"\r\n");
        let slot = (self.lines_head + self.lines_len) % QUEUE_LINES;
        self.lines[slot] = (src as u8, total as u16);
        self.lines_len += 1;
        self.sources[src].queued += total;
        self.sources[src].lines += 1;
        true
    }

    fn put(&mut self, b: &[u8]) {
        for &c in b {
            self.bytes[(self.head + self.len) % QUEUE_BYTES] = c;
            self.len += 1;
        }
    }

    /// The next byte for the UART, if any.
    pub fn front(&self) -> Option<u8> {
        (self.len > 0).then(|| self.bytes[self.head])
    }

    /// The UART took the front byte.
    pub fn advance(&mut self) {
        if self.len == 0 {
            return;
        }
        self.head = (self.head + 1) % QUEUE_BYTES;
        self.len -= 1;
        self.sent += 1;
        let (src, total) = self.lines[self.lines_head];
        if self.sent == total as usize {
            self.sent = 0;
            self.lines_head = (self.lines_head + 1) % QUEUE_LINES;
            self.lines_len -= 1;
            if let Some(s) = self.sources.get_mut(src as usize) {
                s.queued -= total as usize;
                s.lines -= 1;
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// "(N lines dropped: console busy)" into `buf`; returns its length.
fn write_dropped(buf: &mut [u8; 48], n: u32) -> usize {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    let mut v = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let parts: [&[u8]; 3] = [b"(", &digits[i..], b" lines dropped: console busy)"];
    let mut len = 0;
    for p in parts {
        buf[len..len + p.len()].copy_from_slice(p);
        len += p.len();
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain<const N: usize>(q: &mut ConsoleQueue<N>) -> String {
        let mut out = Vec::new();
        while let Some(b) = q.front() {
            out.push(b);
            q.advance();
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn lines_come_out_in_order_prefixed_and_sanitised() {
        let mut q = ConsoleQueue::<3>::new();
        assert!(q.push(0, "cluster", b"speed 42"));
        assert!(q.push(2, "hv", b"ivi: Crash -> Restart"));
        assert!(q.push(1, "ivi", b"\x1b[2Jboom"));
        assert_eq!(drain(&mut q), "[cluster] speed 42\r\n[hv] ivi: Crash -> Restart\r\n[ivi] .[2Jboom\r\n");
        assert!(q.is_empty());
    }

    #[test]
    fn a_flooding_source_loses_its_own_lines_and_nobody_elses() {
        let mut q = ConsoleQueue::<2>::new();
        let line = [b'x'; 200];
        let mut kept = 0;
        for _ in 0..1000 {
            kept += q.push(1, "ivi", &line) as usize;
        }
        assert!(kept > 0 && kept * 207 <= ConsoleQueue::<2>::share());
        // The UART is busy (nothing drained), yet the cluster's lines fit.
        for i in 0..20 {
            assert!(q.push(0, "cluster", format!("beat {i}").as_bytes()), "beat {i}");
        }
        let mut out = drain(&mut q);
        assert_eq!(out.matches("[cluster] beat").count(), 20);
        // Once drained, the flooder's next line follows a notice; the
        // notices (some fit between its lines) count every line it lost.
        assert!(q.push(1, "ivi", b"hello"));
        out += &drain(&mut q);
        assert!(out.ends_with(" lines dropped: console busy)\r\n[ivi] hello\r\n"), "{out}");
        let lost: usize = out.split("[ivi] (").skip(1).map(|s| s.split(' ').next().unwrap().parse::<usize>().unwrap()).sum();
        assert_eq!(lost, 1000 - kept);
    }

    #[test]
    fn long_lines_are_cut_and_bad_sources_ignored() {
        let mut q = ConsoleQueue::<1>::new();
        assert!(q.push(0, "d", &[b'a'; 1000]));
        assert_eq!(drain(&mut q).len(), LINE_BYTES);
        assert!(!q.push(5, "nobody", b"x"));
        assert!(q.is_empty());
    }

    #[test]
    fn empty_lines_cannot_use_up_everyones_line_slots() {
        let mut q = ConsoleQueue::<3>::new();
        for src in [1, 2] {
            while q.push(src, "", b"") {}
        }
        assert!(q.push(0, "cluster", b"beat 1"));
    }

    #[test]
    fn the_line_count_bounds_the_queue_too() {
        let mut q = ConsoleQueue::<1>::new();
        let mut n = 0;
        while q.push(0, "d", b"") {
            n += 1;
        }
        assert_eq!(n, ConsoleQueue::<1>::line_share().min(ConsoleQueue::<1>::share() / 5));
        drain(&mut q);
        assert!(q.push(0, "d", b"again"));
    }
}
