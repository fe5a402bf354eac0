//! Shared pCPUs: several vCPUs take turns under `hv_core::rtds`, switched at
//! guest exits. Each pCPU owns its queue and the saved contexts of its
//! vCPUs; other pCPUs only flip vCPU states and kick it.

use crate::arch::context::{self, VcpuContext};
use crate::arch::entry::Frame;
use crate::arch::{gic, sysreg, vcpu_regs};
use crate::console::hvlog;
use crate::domain::*;
use core::sync::atomic::Ordering;
use hv_core::rtds::{RtdsParams, RtdsQueue, MAX_QUEUE};
use hv_core::sched::{VcpuId, MAX_PCPUS};

struct PcpuSched {
    queue: RtdsQueue,
    ids: [Option<VcpuId>; MAX_QUEUE],
    ctx: [VcpuContext; MAX_QUEUE],
    /// Waiting in WFI for an interrupt (mirrored in `Vcpu::waiting`).
    blocked: [bool; MAX_QUEUE],
    /// Started since it was last loaded: its domain's per-vCPU state is
    /// reset when it is loaded, so that lock is taken on its time.
    fresh: [bool; MAX_QUEUE],
    loaded: Option<usize>,
    /// Late-switch log lines in the current second, and when it began: a
    /// guest that makes switches late (long traps) cannot flood the console.
    late_logged: u32,
    late_window: u64,
}

/// Late-switch lines per pCPU and second; then one saying the rest is not.
const LATE_LINES_PER_SECOND: u32 = 5;

impl PcpuSched {
    const NEW: spin::Mutex<PcpuSched> = spin::Mutex::new(PcpuSched {
        queue: RtdsQueue::new(),
        ids: [None; MAX_QUEUE],
        ctx: [VcpuContext::ZERO; MAX_QUEUE],
        blocked: [false; MAX_QUEUE],
        fresh: [false; MAX_QUEUE],
        loaded: None,
        late_logged: 0,
        late_window: 0,
    });
}

impl PcpuSched {
    fn set_blocked(&mut self, i: usize, blocked: bool) {
        self.blocked[i] = blocked;
        if let Some(id) = self.ids[i] {
            // SeqCst: pairs with `deliverable` (see `kick_for_irq`).
            domain_of(id).vcpus[id.vcpu as usize].waiting.store(blocked, Ordering::SeqCst);
        }
    }
}

static SCHED: [spin::Mutex<PcpuSched>; MAX_PCPUS] = [PcpuSched::NEW; MAX_PCPUS];

fn us_to_ticks(us: u32) -> u64 {
    let freq = crate::arch::sysreg::counter_hz();
    us as u64 * freq / 1_000_000
}

fn ticks_to_us(ticks: u64) -> u64 {
    let freq = crate::arch::sysreg::counter_hz().max(1);
    ticks * 1_000_000 / freq
}

fn domain_of(id: VcpuId) -> &'static Domain {
    &system().domains[id.domain as usize]
}

/// Fills this pCPU's queue from the placement (once, at its start).
pub fn init(cpu: usize) {
    let sys = system();
    let mut s = SCHED[cpu].lock();
    let now = sysreg::counter();
    for id in sys.placement.vcpus_on(cpu) {
        let d = &domain_of(id).desc;
        let params = RtdsParams { budget: us_to_ticks(d.rtds_budget_us), period: us_to_ticks(d.rtds_period_us) };
        if let Some(i) = s.queue.add(params, now) {
            s.ids[i] = Some(id);
        }
    }
}

/// Switches vCPU `id` off on its shared pCPU `pcpu` if that pCPU does not
/// have it loaded: a vCPU that is not running needs nobody's cooperation
/// to stop. (Two domains shutting down at once on the same shared pCPUs
/// would otherwise each wait for the other's pCPU, which is busy waiting
/// too.) Returns whether it is off now.
pub fn switch_off_unloaded(id: VcpuId, pcpu: usize) -> bool {
    if !system().placement.is_rtds(pcpu) {
        return false;
    }
    let Some(mut s) = SCHED.get(pcpu).and_then(|m| m.try_lock()) else { return false };
    let Some(i) = s.ids.iter().position(|x| *x == Some(id)) else { return false };
    if s.loaded == Some(i) {
        return false;
    }
    domain_of(id).vcpus[id.vcpu as usize].state.store(VCPU_OFF, Ordering::Release);
    s.queue.set_runnable(i, false);
    s.set_blocked(i, false);
    true
}

/// The vCPU that just trapped on `cpu` executed WFI: it waits for an interrupt.
pub fn block_current(cpu: usize) {
    let mut s = SCHED[cpu].lock();
    if let Some(i) = s.loaded {
        // An interrupt in hand (pending in a list register, or deliverable):
        // WFI completes at once, as on a pCPU of its own.
        let in_lr = (0..gic::lr_count()).any(|n| gic::read_lr(n) & hv_core::vgic::lr::STATE_PENDING != 0);
        let deliverable = s.ids[i].is_some_and(|id| domain_of(id).vcpus[id.vcpu as usize].deliverable.load(Ordering::SeqCst));
        if in_lr || deliverable {
            return;
        }
        s.set_blocked(i, true);
        s.queue.set_runnable(i, false);
    }
}

/// Brings states up to date (starts, stops, wake-ups) and returns the
/// earliest virtual-timer wake-up of a blocked vCPU, in physical ticks.
fn housekeeping(s: &mut PcpuSched, cpu: usize, now: u64) -> u64 {
    let mut wake = u64::MAX;
    for i in 0..s.queue.len() {
        let Some(id) = s.ids[i] else { continue };
        let dom = domain_of(id);
        let vcpu = &dom.vcpus[id.vcpu as usize];
        if vcpu.stop.load(Ordering::Acquire) {
            vcpu.state.store(VCPU_OFF, Ordering::Release);
            s.queue.set_runnable(i, false);
            s.set_blocked(i, false);
            continue;
        }
        match vcpu.state.load(Ordering::Acquire) {
            VCPU_ON_PENDING => {
                if vcpu.state.compare_exchange(VCPU_ON_PENDING, VCPU_RUNNING, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                    if s.loaded == Some(i) {
                        // Restarted while loaded: nothing of the old one is kept.
                        s.loaded = None;
                        gic::discard_virtual_interface(gic::lr_count());
                        gic::clear_active(cpu, gic::VTIMER_PPI);
                    }
                    let frame = crate::vcpu::entry_frame(vcpu);
                    s.ctx[i] = VcpuContext::fresh(id.vcpu as u64, frame);
                    s.fresh[i] = true;
                    s.set_blocked(i, false);
                    s.queue.set_runnable(i, true);
                }
            }
            VCPU_OFF => {
                s.queue.set_runnable(i, false);
                s.set_blocked(i, false);
            }
            _ => {}
        }
        if s.blocked[i] && s.loaded != Some(i) {
            let epoch = dom.epoch.load(Ordering::Acquire);
            let timer_due = s.ctx[i].timer_deadline().map(|cval| cval.saturating_add(epoch));
            // Atomics only: no other domain's lock on this pCPU's path.
            let irq = vcpu.deliverable.load(Ordering::SeqCst) || s.ctx[i].has_pending_lr();
            if irq || timer_due.is_some_and(|t| t <= now) {
                s.set_blocked(i, false);
                s.queue.set_runnable(i, true);
            } else if let Some(t) = timer_due {
                wake = wake.min(t);
            }
        }
    }
    wake
}

/// Decides who runs next on `cpu` and switches to it, replacing `frame`
/// (the interrupted vCPU's registers) with the chosen vCPU's. With nothing
/// to run the pCPU waits here until something is.
pub fn reschedule(cpu: usize, frame: &mut Frame) {
    let nlr = gic::lr_count();
    loop {
        let mut s = SCHED[cpu].lock();
        let now = sysreg::counter();
        let mut wake = housekeeping(&mut s, cpu, now);
        let mut d = s.queue.schedule(now);
        if d.overran > us_to_ticks(1000) {
            if now.saturating_sub(s.late_window) >= us_to_ticks(1_000_000) {
                s.late_window = now;
                s.late_logged = 0;
            }
            s.late_logged += 1;
            if s.late_logged <= LATE_LINES_PER_SECOND {
                hvlog!("rtds: pCPU {cpu} switched {} us late", ticks_to_us(d.overran));
            } else if s.late_logged == LATE_LINES_PER_SECOND + 1 {
                hvlog!("rtds: pCPU {cpu}: more late switches this second, not logged");
            }
            // The line took time of its own: nobody's budget pays for it.
            let spent = sysreg::counter().saturating_sub(now);
            s.queue.skip(spent);
            d.until = d.until.saturating_add(spent);
        }
        // A restarting domain's vCPU 0 scrubs its RAM in its own time,
        // until the scheduler's next decision is due.
        if let Some(id) = d.run.and_then(|i| s.ids[i]) {
            if id.vcpu == 0 && !domain_of(id).scrub_step(Some(d.until.min(wake))) {
                continue;
            }
        }
        if d.run != s.loaded {
            if let Some(old) = s.loaded {
                if let Some(id) = s.ids[old] {
                    // A vCPU switched off keeps nothing; otherwise save it.
                    let off = domain_of(id).vcpus[id.vcpu as usize].state.load(Ordering::Acquire) == VCPU_OFF;
                    if off {
                        gic::discard_virtual_interface(nlr);
                        gic::clear_active(cpu, gic::VTIMER_PPI);
                        context::stop_virtual_timer();
                    } else {
                        context::save(&mut s.ctx[old], frame, cpu, nlr);
                        // Blocked just now: housekeeping saw its timer from
                        // before this save (stale by up to a period). Wake
                        // it by the timer it has now.
                        if s.blocked[old] {
                            let vcpu = &domain_of(id).vcpus[id.vcpu as usize];
                            let epoch = domain_of(id).epoch.load(Ordering::Acquire);
                            if vcpu.deliverable.load(Ordering::SeqCst) || s.ctx[old].has_pending_lr() {
                                // It waits with an interrupt in hand (Linux
                                // idles with IRQs masked): runnable again,
                                // and decided on at once.
                                s.set_blocked(old, false);
                                s.queue.set_runnable(old, true);
                                wake = now;
                            } else if let Some(t) = s.ctx[old].timer_deadline() {
                                wake = wake.min(t.saturating_add(epoch));
                            }
                        }
                    }
                }
            }
            s.loaded = d.run;
            match d.run.and_then(|i| s.ids[i].map(|id| (i, id))) {
                Some((i, id)) => {
                    let dom = domain_of(id);
                    if core::mem::take(&mut s.fresh[i]) {
                        dom.forget_vcpu_state(id.vcpu as usize);
                    }
                    vcpu_regs::enter_domain(dom.vmid, dom.s2_root, true);
                    context::restore(&s.ctx[i], dom.epoch.load(Ordering::Acquire), nlr);
                    *frame = s.ctx[i].frame;
                    set_current(cpu, Some(id));
                }
                None => set_current(cpu, None),
            }
        }
        context::arm_sched_timer(d.until.min(wake).min(crate::xen::watchdog_deadline(cpu)));
        if d.run.is_some() {
            return;
        }
        drop(s);
        // Idle: expired watchdogs fire and the deadline moves on, so a
        // passed one does not wake this pCPU again and again (outside the
        // scheduler's lock, which is never held with a domain's Xen state;
        // a vCPU that runs meets them in `before_return`).
        crate::xen::watchdog_tick(cpu);
        sysreg::wfi();
        crate::vcpu::drain_irqs(None);
    }
}

/// This pCPU's life when it is shared: run whoever the scheduler picks.
pub fn cpu_main(cpu: usize) -> ! {
    init(cpu);
    let mut frame = Frame::ZERO;
    reschedule(cpu, &mut frame);
    crate::arch::entry::enter(cpu, &frame)
}
