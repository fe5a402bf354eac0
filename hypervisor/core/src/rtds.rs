//! A budget/period real-time scheduler for pCPUs shared by several vCPUs, in
//! the spirit of Xen's RTDS: every vCPU gets `budget` of CPU time in each
//! `period`; among vCPUs with budget left the earliest deadline (end of the
//! current period) runs. It is not work-conserving: a vCPU that used its
//! budget waits for its next period even if the pCPU would be idle, so each
//! guest's share is what the description promised, no more and no less.
//! A vCPU that ran past its budget (the timer fired late, or a trap took
//! long) pays the excess back from its next budgets: at most one budget per
//! period, and at most a period's worth owed in all (a vCPU stuck in a long
//! trap is not starved for long after). Late timers then do not shift
//! shares towards short budgets.
//!
//! One `RtdsQueue` per shared pCPU, owned by that pCPU; times are counter
//! ticks. The arch layer calls `schedule` at every scheduling point (its
//! timer, a vCPU blocking or waking) and programs its timer for `until`.

pub const MAX_QUEUE: usize = 8;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RtdsParams {
    pub budget: u64,
    pub period: u64,
}

#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    params: RtdsParams,
    remaining: u64,
    /// Time run beyond the budget, taken off the next replenishments
    /// (at most one period's worth).
    debt: u64,
    deadline: u64,
    /// Switched on and not waiting for an interrupt.
    runnable: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Which vCPU (queue index) runs; `None`: the pCPU idles.
    pub run: Option<usize>,
    /// When to decide again at the latest: the running vCPU's budget runs
    /// out, or some vCPU's next period starts.
    pub until: u64,
    /// Ticks the vCPU that ran until now used beyond its budget (a late
    /// scheduling timer), 0 normally.
    pub overran: u64,
}

pub struct RtdsQueue {
    entries: [Entry; MAX_QUEUE],
    len: usize,
    current: Option<usize>,
    since: u64,
}

impl Default for RtdsQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl RtdsQueue {
    pub const fn new() -> Self {
        RtdsQueue {
            entries: [Entry { params: RtdsParams { budget: 0, period: 0 }, remaining: 0, debt: 0, deadline: 0, runnable: false };
                MAX_QUEUE],
            len: 0,
            current: None,
            since: 0,
        }
    }

    /// Adds a vCPU (boot time); returns its index, or `None` when full or
    /// the parameters make no sense (zero period, budget beyond period).
    pub fn add(&mut self, params: RtdsParams, now: u64) -> Option<usize> {
        if self.len == MAX_QUEUE || params.period == 0 || params.budget == 0 || params.budget > params.period {
            return None;
        }
        self.entries[self.len] =
            Entry { params, remaining: params.budget, debt: 0, deadline: now.saturating_add(params.period), runnable: false };
        self.len += 1;
        Some(self.len - 1)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Marks a vCPU runnable or not (woken, blocked in WFI, switched off).
    pub fn set_runnable(&mut self, i: usize, runnable: bool) {
        if let Some(e) = self.entries[..self.len].get_mut(i) {
            e.runnable = runnable;
        }
    }

    /// Charges the running vCPU for the time since the last decision,
    /// replenishes budgets whose period has ended, and picks who runs next.
    pub fn schedule(&mut self, now: u64) -> Decision {
        let mut overran = 0;
        if let Some(c) = self.current {
            let ran = now.saturating_sub(self.since);
            let e = &mut self.entries[c];
            overran = ran.saturating_sub(e.remaining);
            e.remaining = e.remaining.saturating_sub(ran);
            e.debt = e.debt.saturating_add(overran).min(e.params.period);
        }
        let mut next_period = u64::MAX;
        for e in self.entries[..self.len].iter_mut() {
            if now >= e.deadline {
                // Whole periods missed (the pCPU was busy elsewhere or idle)
                // are skipped, not paid back.
                let behind = (now - e.deadline) / e.params.period + 1;
                e.deadline = e.deadline.saturating_add(behind.saturating_mul(e.params.period));
                let paid = e.debt.min(e.params.budget);
                e.debt -= paid;
                e.remaining = e.params.budget - paid;
            }
            next_period = next_period.min(e.deadline);
        }
        let best = self.pick_earliest();
        self.current = best;
        self.since = now;
        let until = match best {
            Some(b) => next_period.min(now.saturating_add(self.entries[b].remaining)),
            None => next_period,
        };
        Decision { run: best, until, overran }
    }

    /// Time the hypervisor spent after the last decision on work of its
    /// own (a log line), charged to no vCPU: the current one's run starts
    /// that much later.
    pub fn skip(&mut self, ticks: u64) {
        self.since = self.since.saturating_add(ticks);
    }

    fn pick_earliest(&self) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (i, e) in self.entries[..self.len].iter().enumerate() {
            if e.runnable && e.remaining > 0 && best.is_none_or(|b| e.deadline < self.entries[b].deadline) {
                best = Some(i);
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Runs CPU-bound vCPUs for `total` ticks, rescheduling exactly when the
    /// scheduler asks (plus `jitter` late, as a real timer would be).
    fn simulate(params: &[RtdsParams], total: u64, jitter: u64) -> Vec<u64> {
        let mut q = RtdsQueue::new();
        for &p in params {
            let i = q.add(p, 0).unwrap();
            q.set_runnable(i, true);
        }
        let mut ran = vec![0u64; params.len()];
        let mut now = 0;
        while now < total {
            let d = q.schedule(now);
            let next = (d.until + jitter).min(total).max(now + 1);
            if let Some(r) = d.run {
                ran[r] += next - now;
            }
            now = next;
        }
        ran
    }

    #[test]
    fn cpu_bound_vcpus_get_exactly_their_budgets() {
        let ran = simulate(&[RtdsParams { budget: 3, period: 10 }, RtdsParams { budget: 6, period: 10 }], 10_000, 0);
        assert_eq!(ran, vec![3_000, 6_000]);
    }

    #[test]
    fn not_work_conserving_one_vcpu_alone_gets_only_its_budget() {
        let ran = simulate(&[RtdsParams { budget: 2, period: 10 }], 1_000, 0);
        assert_eq!(ran, vec![200]);
    }

    #[test]
    fn a_blocked_vcpu_gives_its_time_to_nobody_else_beyond_their_budget() {
        let mut q = RtdsQueue::new();
        let a = q.add(RtdsParams { budget: 5, period: 10 }, 0).unwrap();
        let b = q.add(RtdsParams { budget: 5, period: 10 }, 0).unwrap();
        q.set_runnable(b, true);
        assert_eq!(q.schedule(0), Decision { run: Some(b), until: 5, overran: 0 });
        assert_eq!(q.schedule(5), Decision { run: None, until: 10, overran: 0 });
        // A timer two ticks late shows as an overrun.
        q.set_runnable(b, true);
        assert_eq!(q.schedule(10).run, Some(b));
        assert_eq!(q.schedule(17).overran, 2);
        q.set_runnable(a, true);
        let d = q.schedule(10);
        assert!(d.run.is_some());
    }

    #[test]
    fn earliest_deadline_first() {
        let mut q = RtdsQueue::new();
        let slow = q.add(RtdsParams { budget: 10, period: 100 }, 0).unwrap();
        let fast = q.add(RtdsParams { budget: 1, period: 5 }, 0).unwrap();
        q.set_runnable(slow, true);
        q.set_runnable(fast, true);
        assert_eq!(q.schedule(0).run, Some(fast));
        assert_eq!(q.schedule(1).run, Some(slow));
    }

    #[test]
    fn nonsense_parameters_are_refused() {
        let mut q = RtdsQueue::new();
        assert_eq!(q.add(RtdsParams { budget: 0, period: 10 }, 0), None);
        assert_eq!(q.add(RtdsParams { budget: 11, period: 10 }, 0), None);
        assert_eq!(q.add(RtdsParams { budget: 1, period: 0 }, 0), None);
    }

    proptest! {
        #[test]
        fn shares_match_budgets_for_any_schedulable_set(
            b1 in 3u64..50, b2 in 3u64..50, p in 100u64..200, jitter in 0u64..3,
        ) {
            let params = [RtdsParams { budget: b1, period: p }, RtdsParams { budget: b2, period: p }];
            let periods = 200;
            let ran = simulate(&params, p * periods, jitter);
            for (r, prm) in ran.iter().zip(&params) {
                let want = prm.budget * periods;
                // Overruns are paid back: off by at most the last period's
                // overrun and a budget not yet given.
                prop_assert!(*r <= want + jitter, "{} > {}", r, want);
                prop_assert!(*r + prm.budget + jitter >= want, "{} < {}", r, want);
            }
        }

        #[test]
        fn late_timers_do_not_shift_shares(
            b1 in 2u64..30, b2 in 2u64..30, jitter in 0u64..40,
        ) {
            // Timers late by up to more than a budget, as under a loaded
            // emulator: each vCPU still gets its budget per period on the
            // whole, where forgiving overruns would give every switch the
            // jitter and push shares towards 1:1.
            let p = 100;
            let params = [RtdsParams { budget: b1, period: p }, RtdsParams { budget: b2, period: p }];
            let periods = 300;
            let ran = simulate(&params, p * periods, jitter);
            for (r, prm) in ran.iter().zip(&params) {
                let want = prm.budget * periods;
                let slack = 2 * prm.budget + jitter;
                prop_assert!(r.abs_diff(want) <= slack, "ran {} want {} (budgets {}, {}, jitter {})", r, want, b1, b2, jitter);
            }
        }
    }
}
