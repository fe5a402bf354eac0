//! What a pCPU does with its vCPU: start it, return to it after every exit
//! with its list registers up to date, park it when it is off, and carry out
//! its domain's lifecycle decisions.

use crate::arch::entry::{self, Frame};
use crate::arch::{gic, psci, sysreg, vcpu_regs};
use crate::console::{domlog, hvlog};
use crate::domain::*;
use core::sync::atomic::Ordering;
use hv_core::lifecycle::{decide, Decision, Event};
use hv_core::vgic::MAX_LRS;

/// A pCPU's life after boot: run its vCPU, or sleep if it has none.
pub fn cpu_main(cpu: usize) -> ! {
    if system().placement.is_rtds(cpu) {
        crate::rtds::cpu_main(cpu)
    }
    set_current(cpu, system().placement.vcpu_on(cpu));
    let Some((dom, v)) = current(cpu) else {
        loop {
            sysreg::wfi();
            drain_irqs(None);
        }
    };
    vcpu_regs::enter_domain(dom.vmid, dom.s2_root, system().trap_wfi);
    let frame = wait_until_started(cpu, dom, v);
    entry::enter(cpu, &frame)
}

/// Parks until vCPU `v` is switched on (boot, PSCI CPU_ON, restart), then
/// resets it and returns the frame it starts from.
pub fn wait_until_started(cpu: usize, dom: &Domain, v: usize) -> Frame {
    let vcpu = &dom.vcpus[v];
    loop {
        if !vcpu.stop.load(Ordering::Acquire)
            && vcpu
                .state
                .compare_exchange(VCPU_ON_PENDING, VCPU_RUNNING, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            return start_frame(cpu, dom, v);
        }
        sysreg::wfi();
        drain_irqs(None);
    }
}

fn start_frame(cpu: usize, dom: &Domain, v: usize) -> Frame {
    let vcpu = &dom.vcpus[v];
    if v == 0 {
        // A restart's scrub, whole: this pCPU is the domain's own.
        dom.scrub_step(None);
    }
    gic::clear_active(cpu, gic::VTIMER_PPI);
    vcpu_regs::reset_el1(v as u64, dom.epoch.load(Ordering::Acquire));
    gic::discard_virtual_interface(gic::lr_count());
    dom.forget_vcpu_state(v);
    entry_frame(vcpu)
}

/// The registers `vcpu` starts with, as it was armed: as a kernel image
/// starts (`context`: its device tree), or as PSCI CPU_ON says (`context`:
/// the caller's value). Called after the ON_PENDING state was seen
/// (Acquire), which publishes what the arming stored.
pub fn entry_frame(vcpu: &Vcpu) -> Frame {
    let (pc, context) = (vcpu.entry.load(Ordering::Relaxed), vcpu.context.load(Ordering::Relaxed));
    if vcpu.boots_image.load(Ordering::Relaxed) {
        Frame::kernel_entry(pc, context)
    } else {
        Frame::cpu_on_entry(pc, context)
    }
}

/// Interrupts taken per drain at most.
const MAX_DRAIN: usize = 64;

/// Takes every pending physical interrupt. With a running vCPU, its virtual
/// timer interrupt is forwarded to it (HW-linked: the guest's EOI deactivates
/// the physical one); kicks and maintenance interrupts only wake us up.
pub fn drain_irqs(running: Option<(&Domain, usize)>) {
    // Bounded: whatever the devices do, the pCPU gets back to its vCPU
    // (an interrupt still pending is taken again at the next exit).
    for _ in 0..MAX_DRAIN {
        let intid = gic::ack();
        if intid == gic::SPURIOUS || intid >= 1020 {
            return;
        }
        gic::eoi(intid);
        match (intid, running) {
            (gic::VTIMER_PPI, Some((dom, v))) => {
                dom.vgic(|g| g.inject(v, intid, true));
            }
            (spi, _) if spi >= 32 => forward_spi(spi),
            (gic::HYP_TIMER_PPI, _) => {
                // The scheduler re-arms it at its next decision.
                crate::arch::context::disarm_sched_timer();
                gic::deactivate(intid);
            }
            _ => gic::deactivate(intid),
        }
    }
}

/// A passed-through device interrupted: hand it to its owner, HW-linked so
/// the guest's completion deactivates it. With no running owner it is
/// dropped (deactivated) rather than left to block the line.
fn forward_spi(spi: u32) {
    let sys = system();
    let owner = sys.spi_owner.get(spi as usize).copied().unwrap_or(0) as usize;
    let Some(dom) = owner.checked_sub(1).and_then(|i| sys.domains.get(i)) else {
        gic::deactivate(spi);
        return;
    };
    if dom.state.load(Ordering::Acquire) != DOM_RUNNING {
        // Its owner left RUNNING: off until the owner runs again.
        gic::set_spi_enabled(spi, false);
        gic::deactivate(spi);
        return;
    }
    let (_, kick) = dom.vgic(|g| g.inject(0, spi, true));
    kick_for_irq(dom, kick, sysreg::cpu_index());
}

/// Last step of every exit: honour a stop request, then bring the list
/// registers up to date. May replace the frame (the vCPU was restarted).
pub fn before_return(cpu: usize, dom: &Domain, v: usize, frame: &mut Frame) {
    crate::console::drain();
    if crate::xen::watchdog_check(cpu, dom) {
        // SCHEDOP_shutdown(watchdog) as Xen raises it: the crash policy.
        return shutdown(cpu, dom, v, Event::Crash, frame);
    }
    if system().placement.is_rtds(cpu) {
        // Every exit of a shared pCPU is a scheduling point.
        crate::rtds::reschedule(cpu, frame);
        if let Some((dom, v)) = current(cpu) {
            pulse_vuart(cpu, dom);
            flush_lrs(dom, v);
        }
        return;
    }
    if dom.vcpus[v].stop.load(Ordering::Acquire) {
        park(cpu, dom, v, frame);
    }
    pulse_vuart(cpu, dom);
    flush_lrs(dom, v);
}

fn pulse_vuart(cpu: usize, dom: &Domain) {
    if dom.desc.has_vpl011() {
        // A level interrupt completed while its line is still high is due
        // again. Driven under the vUART's lock (vUART, then vGIC), so a
        // vCPU lowering the line meanwhile cannot be overtaken.
        let kick = {
            let uart = dom.vuart.lock();
            if !uart.irq_level() {
                return;
            }
            dom.vgic(|g| g.set_level(xen_abi::guest_layout::PL011_SPI, true)).1
        };
        kick_for_irq(dom, kick, cpu);
    }
}

fn park(cpu: usize, dom: &Domain, v: usize, frame: &mut Frame) {
    let vcpu = &dom.vcpus[v];
    if system().placement.is_rtds(cpu) {
        // A shared pCPU moves on to its other vCPUs.
        let _ = vcpu.state.compare_exchange(VCPU_RUNNING, VCPU_OFF, Ordering::AcqRel, Ordering::Acquire);
        crate::rtds::reschedule(cpu, frame);
        return;
    }
    // Quiesce EL1 (the virtual timer above all) and the virtual CPU
    // interface (a live underflow maintenance interrupt would keep waking
    // this pCPU) so nothing fires while off.
    vcpu_regs::reset_el1(v as u64, 0);
    gic::discard_virtual_interface(gic::lr_count());
    dom.vgic(|g| g.forget_lrs(v));
    // A restart may already have switched this vCPU on again: keep that.
    let _ = vcpu.state.compare_exchange(VCPU_RUNNING, VCPU_OFF, Ordering::AcqRel, Ordering::Acquire);
    *frame = wait_until_started(cpu, dom, v);
}

fn flush_lrs(dom: &Domain, v: usize) {
    let n = gic::lr_count().min(MAX_LRS);
    let mut lrs = [0u64; MAX_LRS];
    for (i, lr) in lrs.iter_mut().enumerate().take(n) {
        *lr = gic::read_lr(i);
    }
    let before = lrs;
    let (more, _) = dom.vgic(|g| g.flush(v, &mut lrs[..n]));
    for i in 0..n {
        if lrs[i] != before[i] {
            gic::write_lr(i, lrs[i]);
        }
    }
    gic::set_underflow_irq(more);
}

/// The vCPU executed WFI (vwfi = "trap"): sleep on this pCPU until it has an
/// interrupt to take or must stop. The LRs are reconciled on every round, so
/// an interrupt the guest completed meanwhile can be delivered again.
pub fn block(dom: &Domain, v: usize) {
    let cpu = sysreg::cpu_index();
    if system().placement.is_rtds(cpu) {
        // On a shared pCPU, waiting is the scheduler's business.
        crate::rtds::block_current(cpu);
        return;
    }
    loop {
        if dom.vcpus[v].stop.load(Ordering::Acquire) {
            return;
        }
        flush_lrs(dom, v);
        let n = gic::lr_count();
        if (0..n).any(|i| gic::read_lr(i) & hv_core::vgic::lr::STATE_PENDING != 0) {
            return;
        }
        sysreg::wfi();
        drain_irqs(Some((dom, v)));
        // A guest hung in WFI is what a watchdog is for: its expiry ends
        // the wait, and the exit's `before_return` runs the crash policy.
        if crate::xen::watchdog_check(cpu, dom) {
            return;
        }
    }
}

/// PSCI CPU_OFF: the vCPU stops until another CPU_ON.
pub fn cpu_off(cpu: usize, dom: &Domain, v: usize, frame: &mut Frame) {
    park(cpu, dom, v, frame);
}

/// A power-off, reboot or crash of `dom`, raised by its vCPU `v` on `cpu`.
/// Applies the domain's policy; the caller's frame is replaced when this
/// vCPU runs again.
pub fn shutdown(cpu: usize, dom: &Domain, v: usize, event: Event, frame: &mut Frame) {
    if dom
        .state
        .compare_exchange(DOM_RUNNING, DOM_STOPPING, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        // Another vCPU of this domain is already taking it down.
        park(cpu, dom, v, frame);
        return;
    }
    let panicked = dom.panicked.load(Ordering::Acquire);
    let event = hv_core::lifecycle::classify(event, panicked);
    let decision = decide(&dom.desc, event);
    let after_panic = if panicked { " (a reboot after a kernel panic)" } else { "" };
    domlog!(dom, life_log, "{}: {:?}{} -> {:?}", dom.name(), event, after_panic, decision);
    match decision {
        Decision::MachineOff => {
            hvlog!("system controller {} powered off: machine off", dom.name());
            crate::console::flush();
            psci::system_off()
        }
        Decision::MachineReset => {
            hvlog!("system controller {} rebooted: machine reset", dom.name());
            crate::console::flush();
            psci::system_reset()
        }
        _ => {}
    }
    set_passthrough_irqs(dom, false);
    stop_other_vcpus(dom, v);
    match decision {
        Decision::Restart => restart(dom),
        Decision::Preserve => {
            domlog!(dom, life_log, "{}: preserved (vCPUs stopped, memory kept)", dom.name());
            dom.state.store(DOM_PRESERVED, Ordering::Release);
        }
        _ => {
            domlog!(dom, life_log, "{}: destroyed", dom.name());
            crate::xen::reset(dom, false);
            dom.state.store(DOM_DESTROYED, Ordering::Release);
            if all_destroyed() {
                hvlog!("every domain is gone: machine off");
                crate::console::flush();
                psci::system_off();
            }
        }
    }
    park(cpu, dom, v, frame);
}

/// Every vCPU of `dom` but `me` is stopped and parked when this returns. A
/// guest cannot delay it: the kick is a physical interrupt, which always
/// traps to EL2.
fn stop_other_vcpus(dom: &Domain, me: usize) {
    for (i, vcpu) in dom.vcpus.iter().enumerate() {
        vcpu.stop.store(true, Ordering::Release);
        if i != me {
            let _ = vcpu.state.compare_exchange(VCPU_ON_PENDING, VCPU_OFF, Ordering::AcqRel, Ordering::Acquire);
        }
    }
    let self_cpu = dom.vcpus[me].pcpu;
    kick_vcpus(dom, u8::MAX, self_cpu);
    for (i, vcpu) in dom.vcpus.iter().enumerate() {
        if i != me && vcpu.pcpu == self_cpu {
            // Shares this pCPU, so it is not running now: nobody else would
            // switch it off while this pCPU waits.
            vcpu.state.store(VCPU_OFF, Ordering::Release);
        }
        if i != me {
            // A racing CPU_ON may switch it to ON_PENDING after the first
            // pass; it sees `stop` and backs off, and so do we, again.
            let id = hv_core::sched::VcpuId { domain: dom.index() as u8, vcpu: i as u8 };
            while vcpu.state.load(Ordering::Acquire) != VCPU_OFF {
                let _ = vcpu.state.compare_exchange(VCPU_ON_PENDING, VCPU_OFF, Ordering::AcqRel, Ordering::Acquire);
                // On a shared pCPU that is not running it, switch it off
                // here: that pCPU may be busy stopping another domain.
                crate::rtds::switch_off_unloaded(id, vcpu.pcpu);
                core::hint::spin_loop();
            }
        }
    }
}

/// Starts the domain again from its pristine image: vCPU 0's pCPU scrubs
/// its RAM and loads the image before the vCPU first runs (`scrub_step`).
/// Runs on a pCPU of the domain (so VTTBR_EL2 holds its VMID) while all of
/// its vCPUs are stopped.
fn restart(dom: &Domain) {
    let n = dom.restarts.fetch_add(1, Ordering::AcqRel) + 1;
    domlog!(dom, life_log, "{}: restarting (restart #{})", dom.name(), n);
    // Before the scrub: no other domain may raise events in this RAM now.
    crate::xen::reset(dom, true);
    dom.scrub_at.store(0, Ordering::Release);
    vcpu_regs::flush_guest_tlbs();
    // A passed-through interrupt the old incarnation never completed stays
    // active: release it.
    for p in dom.desc.passthrough() {
        if p.spi != 0 {
            gic::clear_active_spi(p.spi);
        }
    }
    dom.vgic(|g| g.reset());
    dom.vuart.lock().reset();
    dom.epoch.store(sysreg::counter(), Ordering::Release);
    dom.panicked.store(false, Ordering::Release);
    let v0 = &dom.vcpus[0];
    v0.arm_image_boot(dom.entry_ipa(), dom.boot_context());
    for vcpu in dom.vcpus.iter() {
        vcpu.stop.store(false, Ordering::Release);
    }
    v0.state.store(VCPU_ON_PENDING, Ordering::Release);
    dom.state.store(DOM_RUNNING, Ordering::Release);
    set_passthrough_irqs(dom, true);
    kick_vcpus(dom, 1, usize::MAX);
}

/// Interrupts passed through to `dom` are enabled only while it runs.
fn set_passthrough_irqs(dom: &Domain, on: bool) {
    for p in dom.desc.passthrough() {
        if p.spi >= 32 {
            gic::set_spi_enabled(p.spi, on);
        }
    }
}
