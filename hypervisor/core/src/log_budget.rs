//! How many hypervisor log lines a domain may cause: a token bucket that
//! lives as long as the domain (restarts do not refill it), so a guest that
//! crashes, faults or restarts in a loop cannot flood the console or fill
//! the hypervisor's share of it.

/// Lines a domain may cause at once, then one per `refill` ticks.
#[derive(Clone, Copy, Debug)]
pub struct LogBudget {
    tokens: u32,
    burst: u32,
    refill: u64,
    last: u64,
    suppressed: u32,
}

/// The verdict for one line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Log it; `suppressed` lines were left out since the last one logged.
    Log { suppressed: u32 },
    /// Leave it out (counted).
    Quiet,
}

impl LogBudget {
    pub const fn new(burst: u32, refill: u64) -> Self {
        LogBudget { tokens: burst, burst, refill, last: 0, suppressed: 0 }
    }

    /// A line the domain caused at time `now` (ticks).
    pub fn line(&mut self, now: u64) -> Verdict {
        if self.refill > 0 && now > self.last {
            let earned = (now - self.last) / self.refill;
            if earned > 0 {
                self.tokens = self.tokens.saturating_add(earned.min(u32::MAX as u64) as u32).min(self.burst);
                self.last += earned * self.refill;
            }
        } else if now < self.last {
            self.last = now;
        }
        if self.tokens == 0 {
            self.suppressed = self.suppressed.saturating_add(1);
            return Verdict::Quiet;
        }
        self.tokens -= 1;
        Verdict::Log { suppressed: core::mem::take(&mut self.suppressed) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_one_line_per_refill_with_the_gap_reported() {
        let mut b = LogBudget::new(3, 10);
        for _ in 0..3 {
            assert_eq!(b.line(0), Verdict::Log { suppressed: 0 });
        }
        for t in 1..10 {
            assert_eq!(b.line(t), Verdict::Quiet);
        }
        assert_eq!(b.line(10), Verdict::Log { suppressed: 9 });
        assert_eq!(b.line(11), Verdict::Quiet);
        // A long quiet spell refills only up to the burst.
        for _ in 0..3 {
            assert!(matches!(b.line(1_000_000), Verdict::Log { .. }));
        }
        assert_eq!(b.line(1_000_000), Verdict::Quiet);
    }

    #[test]
    fn time_going_backwards_neither_panics_nor_refills() {
        let mut b = LogBudget::new(1, 10);
        assert!(matches!(b.line(100), Verdict::Log { .. }));
        assert_eq!(b.line(5), Verdict::Quiet);
        assert_eq!(b.line(u64::MAX), Verdict::Log { suppressed: 1 });
    }
}
