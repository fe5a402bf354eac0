//! SCHEDOP_watchdog: a domain's watchdog timers (Xen gives each domain
//! two). A guest creates one with a timeout in seconds, kicks it by id
//! before it runs out, and destroys it with a timeout of 0; if one runs
//! out, the domain is shut down with reason "watchdog" and its crash
//! policy runs. Deadlines are counter ticks; the kernel arms a timer for
//! [`Watchdogs::next`] and calls [`Watchdogs::expired`] when it fires.

use crate::evtchn::Errno;
use xen_abi::hypercall as hc;

/// Watchdog timers per domain (Xen's NR_DOMAIN_WATCHDOG_TIMERS).
pub const TIMERS: usize = 2;

/// A domain's watchdogs: each slot's deadline in counter ticks, 0 unused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Watchdogs {
    deadline: [u64; TIMERS],
}

impl Watchdogs {
    /// None set.
    pub const fn new() -> Self {
        Self { deadline: [0; TIMERS] }
    }

    /// SCHEDOP_watchdog {`id`, `timeout_s`} at counter `now` ticking
    /// `freq` times a second: id 0 creates a timer (its id, 1-based, is
    /// returned); an existing id is re-armed, or destroyed by timeout 0.
    pub fn op(&mut self, id: u32, timeout_s: u32, now: u64, freq: u64) -> Result<u32, Errno> {
        let deadline = now.saturating_add(u64::from(timeout_s).saturating_mul(freq)).max(1);
        if id == 0 {
            // As in Xen, even a timeout of 0: then it is due at once.
            let free = self.deadline.iter().position(|&d| d == 0).ok_or(Errno(-hc::ENOSPC))?;
            self.deadline[free] = deadline;
            return Ok(free as u32 + 1);
        }
        let slot = (id - 1) as usize;
        match self.deadline.get_mut(slot) {
            Some(d) if *d != 0 => {
                *d = if timeout_s == 0 { 0 } else { deadline };
                Ok(0)
            }
            _ => Err(Errno(-hc::EINVAL)),
        }
    }

    /// Whether a timer has run out at counter `now`.
    pub fn expired(&self, now: u64) -> bool {
        self.deadline.iter().any(|&d| d != 0 && now >= d)
    }

    /// The earliest deadline, if any timer is set.
    pub fn next(&self) -> Option<u64> {
        self.deadline.iter().copied().filter(|&d| d != 0).min()
    }

    /// Every timer gone (the domain stopped or restarts).
    pub fn clear(&mut self) {
        *self = Self::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HZ: u64 = 1000;

    #[test]
    fn create_kick_expire_and_destroy() {
        let mut w = Watchdogs::new();
        assert_eq!(w.next(), None);
        assert_eq!(w.op(0, 10, 5_000, HZ), Ok(1));
        assert_eq!(w.op(0, 30, 5_000, HZ), Ok(2));
        assert_eq!(w.op(0, 30, 5_000, HZ), Err(Errno(-hc::ENOSPC)), "two per domain");
        assert_eq!(w.next(), Some(15_000));
        assert!(!w.expired(14_999) && w.expired(15_000));
        // A kick moves the deadline on.
        assert_eq!(w.op(1, 10, 14_000, HZ), Ok(0));
        assert!(!w.expired(15_000));
        assert_eq!(w.next(), Some(24_000));
        // Destroyed: no longer counts, and its id is free and unknown.
        assert_eq!(w.op(1, 0, 14_500, HZ), Ok(0));
        assert_eq!(w.op(1, 5, 14_500, HZ), Err(Errno(-hc::EINVAL)));
        assert_eq!(w.next(), Some(35_000));
        assert_eq!(w.op(0, 1, 20_000, HZ), Ok(1));
        w.clear();
        assert_eq!(w.next(), None);
    }

    #[test]
    fn wild_ids_and_timeouts_are_refused_or_bounded() {
        let mut w = Watchdogs::new();
        for id in [3, 4, u32::MAX] {
            assert_eq!(w.op(id, 1, 0, HZ), Err(Errno(-hc::EINVAL)));
        }
        // The largest timeout saturates rather than wrapping into the past.
        assert_eq!(w.op(0, u32::MAX, u64::MAX - 5, u64::MAX), Ok(1));
        assert!(!w.expired(u64::MAX - 1));
        // Created with timeout 0, it is due at once.
        let mut w = Watchdogs::new();
        assert_eq!(w.op(0, 0, 7, HZ), Ok(1));
        assert!(w.expired(7));
    }
}
