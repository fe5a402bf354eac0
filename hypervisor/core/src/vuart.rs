//! The virtual PL011 each domain writes its console to (the SBSA subset Xen's
//! vpl011 offers): transmit always succeeds, output is collected into lines
//! that the hypervisor console prints prefixed with the domain's name.

use crate::esr::Access;

pub const LINE_MAX: usize = 160;

const DR: u64 = 0x000;
const FR: u64 = 0x018;
const IBRD: u64 = 0x024;
const FBRD: u64 = 0x028;
const LCR_H: u64 = 0x02C;
const CR: u64 = 0x030;
const IFLS: u64 = 0x034;
const IMSC: u64 = 0x038;
const RIS: u64 = 0x03C;
const MIS: u64 = 0x040;
const ICR: u64 = 0x044;

const FR_RXFE: u64 = 1 << 4;
const FR_TXFE: u64 = 1 << 7;
/// Transmit interrupt: the FIFO is always empty, so it is always raised.
const INT_TX: u32 = 1 << 5;

/// PrimeCell identification registers at 0xFE0..0xFFC.
const ID: [u8; 8] = [0x11, 0x10, 0x14, 0x00, 0x0D, 0xF0, 0x05, 0xB1];

pub struct VUart {
    line: [u8; LINE_MAX],
    len: usize,
    regs: [u32; 5], // IBRD, FBRD, LCR_H, CR, IFLS
    imsc: u32,
}

/// What a guest access produced.
#[derive(Debug, PartialEq, Eq)]
pub struct UartEffect {
    /// Value for a load.
    pub value: u64,
    /// A complete line is ready: `take_line` it.
    pub line_ready: bool,
}

impl Default for VUart {
    fn default() -> Self {
        Self::new()
    }
}

impl VUart {
    pub const fn new() -> Self {
        VUart { line: [0; LINE_MAX], len: 0, regs: [0; 5], imsc: 0 }
    }

    pub fn reset(&mut self) {
        *self = Self::new();
    }

    pub fn access(&mut self, offset: u64, acc: Access, value: u64) -> UartEffect {
        let mut out = UartEffect { value: 0, line_ready: false };
        match (offset, acc.write) {
            (DR, true) => out.line_ready = self.push(value as u8),
            (DR, false) => {}
            (FR, false) => out.value = FR_TXFE | FR_RXFE,
            (IBRD | FBRD | LCR_H | CR | IFLS, w) => {
                let i = ((offset - IBRD) / 4) as usize;
                if w {
                    self.regs[i] = value as u32;
                } else {
                    out.value = self.regs[i] as u64;
                }
            }
            (IMSC, true) => self.imsc = value as u32 & 0x7ff,
            (IMSC, false) => out.value = self.imsc as u64,
            (RIS, false) => out.value = INT_TX as u64,
            (MIS, false) => out.value = (INT_TX & self.imsc) as u64,
            (ICR, true) => {}
            (o, false) if (0xFE0..0x1000).contains(&o) && o % 4 == 0 => out.value = ID[((o - 0xFE0) / 4) as usize] as u64,
            _ => {}
        }
        out
    }

    /// The interrupt line's level (SPI 32): transmit space, if unmasked.
    pub fn irq_level(&self) -> bool {
        self.imsc & INT_TX != 0
    }

    fn push(&mut self, c: u8) -> bool {
        match c {
            b'\r' => false,
            b'\n' => true,
            // A full line nobody took: the byte is dropped, the line is due.
            _ if self.len >= LINE_MAX => true,
            _ => {
                self.line[self.len] = c;
                self.len += 1;
                self.len == LINE_MAX
            }
        }
    }

    /// Hands out the line collected so far (a copy, so it is printed without
    /// holding the UART) and starts a new one.
    pub fn take_line(&mut self) -> Line {
        let line = Line { bytes: self.line, len: self.len };
        self.len = 0;
        line
    }
}

/// A completed console line, owned by whoever prints it.
#[derive(Clone, Copy)]
pub struct Line {
    bytes: [u8; LINE_MAX],
    len: usize,
}

impl Line {
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len.min(LINE_MAX)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wr() -> Access {
        Access { size: 1, write: true, reg: 0, sign_extend: false, sf: false }
    }
    fn rd() -> Access {
        Access { size: 4, write: false, reg: 0, sign_extend: false, sf: false }
    }

    #[test]
    fn collects_lines_and_drops_carriage_returns() {
        let mut u = VUart::new();
        for &c in b"beat 1\r" {
            assert!(!u.access(DR, wr(), c as u64).line_ready);
        }
        assert!(u.access(DR, wr(), b'\n' as u64).line_ready);
        assert_eq!(u.take_line().as_bytes(), b"beat 1");
        assert_eq!(u.take_line().as_bytes(), b"");
    }

    #[test]
    fn long_lines_are_split_not_overflowed() {
        let mut u = VUart::new();
        let mut ready = 0;
        for _ in 0..(LINE_MAX * 2 + 5) {
            if u.access(DR, wr(), b'x' as u64).line_ready {
                ready += 1;
                assert_eq!(u.take_line().as_bytes().len(), LINE_MAX);
            }
        }
        assert_eq!(ready, 2);
    }

    #[test]
    fn a_full_line_nobody_took_drops_bytes_instead_of_overflowing() {
        let mut u = VUart::new();
        for _ in 0..LINE_MAX * 3 {
            let _ = u.access(DR, wr(), b'y' as u64);
        }
        assert!(u.access(DR, wr(), b'z' as u64).line_ready);
        assert_eq!(u.take_line().as_bytes(), [b'y'; LINE_MAX]);
    }

    #[test]
    fn looks_like_an_idle_pl011() {
        let mut u = VUart::new();
        assert_eq!(u.access(FR, rd(), 0).value, FR_TXFE | FR_RXFE);
        assert_eq!(u.access(0xFE0, rd(), 0).value, 0x11);
        assert_eq!(u.access(0xFFC, rd(), 0).value, 0xB1);
        assert!(!u.irq_level());
        u.access(IMSC, Access { size: 4, write: true, ..rd() }, INT_TX as u64);
        assert!(u.irq_level());
        assert_eq!(u.access(MIS, rd(), 0).value, INT_TX as u64);
        // Unknown offsets read as zero.
        assert_eq!(u.access(0x800, rd(), 0).value, 0);
    }
}
