//! Guest exits: the Rust side of the exception vectors.
//!
//! Every path ends in an answer for the guest (a register value, an emulated
//! access, an injected exception) or in its domain's lifecycle policy; none
//! ends in a hypervisor panic, and none touches another domain.

use crate::arch::entry::{self, Frame};
use crate::arch::{sysreg, vcpu_regs};
use crate::console::{self, domlog, hvlog};
use crate::domain::*;
use crate::vcpu;
use core::sync::atomic::Ordering;
use hv_core::esr::{self, Access, DataAbort, Trap};
use hv_core::lifecycle::Event;
use hv_core::setway;
use hv_core::psci::{self, Call, Power};
use xen_abi::{guest_layout as gl, hypercall, smccc};


#[no_mangle]
extern "C" fn guest_sync(frame: &mut Frame) {
    let cpu = sysreg::cpu_index();
    let Some((dom, v)) = current(cpu) else { return };
    if entry::take_serror(cpu) {
        return serror(cpu, dom, v, frame);
    }
    let (esr_val, far, ipa) = vcpu_regs::trap_syndrome();
    if !esr::a32_condition_passed(esr_val, frame.pstate()) {
        // A 32-bit guest's conditional instruction that failed its
        // condition: it did nothing.
        frame.skip(esr::insn_len(esr_val));
        return vcpu::before_return(cpu, dom, v, frame);
    }
    match esr::decode(esr_val) {
        Trap::Wfx { wfe } => {
            frame.skip(esr::insn_len(esr_val));
            if !wfe {
                vcpu::block(dom, v);
            }
        }
        Trap::Hvc { imm: 0 } => smccc_call(cpu, dom, v, frame),
        Trap::Hvc { imm } if imm == hypercall::XEN_HYPERCALL_TAG => {
            if dom.desc.xen().is_some() {
                crate::xen::hypercall(cpu, dom, v, frame);
            } else {
                // Not offered Xen's ABI: answer as Xen does an unknown call.
                frame.set_result((-hypercall::ENOSYS) as u64);
            }
        }
        Trap::Smc { imm: 0 } => {
            frame.skip(esr::insn_len(esr_val));
            smccc_call(cpu, dom, v, frame);
        }
        Trap::SysReg(acc) if !acc.read && (acc.is(esr::ICC_SGI1R_EL1) || acc.is(esr::ICC_ASGI1R_EL1) || acc.is(esr::ICC_SGI0R_EL1)) => {
            let value = reg(frame, acc.rt);
            let (_, kick) = dom.vgic(|g| g.send_sgi(v, value));
            kick_for_irq(dom, kick, cpu);
            frame.skip(esr::insn_len(esr_val));
        }
        Trap::SysReg(acc) if setway::is_set_way(&acc) => set_way(dom, v, frame, esr::insn_len(esr_val)),
        // Read-as-zero, write-ignored (see `is_debug_or_pmu`).
        Trap::SysReg(acc) if acc.is_debug_or_pmu() => raz_wi(frame, acc.read, acc.rt, false, esr::insn_len(esr_val)),
        // 32-bit guests: set/way by MCR, and the PMU, debug and
        // implementation-defined registers as read-as-zero, write-ignored.
        Trap::Cp15(acc) if setway::is_set_way_cp15(&acc) => set_way(dom, v, frame, esr::insn_len(esr_val)),
        Trap::Cp15(acc) if acc.is_raz_wi() => raz_wi(frame, acc.read, acc.rt, true, esr::insn_len(esr_val)),
        // The pCPU's auxiliary controls: reads see them, writes are ignored.
        Trap::Cp15(acc) if acc.is_actlr() => {
            if acc.read {
                set_reg(frame, acc.rt, if acc.opc2 == 1 { vcpu_regs::actlr() } else { 0 });
            }
            frame.skip(esr::insn_len(esr_val));
        }
        Trap::Cp14(acc) => raz_wi(frame, acc.read, acc.rt, true, esr::insn_len(esr_val)),
        Trap::DataAbort(da) => data_abort(cpu, dom, v, frame, da, far, ipa, esr::insn_len(esr_val)),
        Trap::InstrAbort { .. } => {
            log_abort(dom, "instruction fetch", ipa, frame.pc());
            inject_abort(cpu, dom, v, frame, true, far);
        }
        // HVC/SMC immediates we do not define, trapped system registers we
        // do not emulate, anything else: the guest sees an undefined instruction.
        Trap::Hvc { .. } | Trap::Smc { .. } | Trap::SysReg(_) | Trap::Cp15(_) | Trap::Other { .. } => {
            // SMC traps report the SMC itself in ELR; HVC reports the next one.
            let at = if matches!(esr::ec(esr_val), esr::EC_HVC64 | esr::EC_HVC32) { frame.pc().wrapping_sub(4) } else { frame.pc() };
            vcpu_regs::inject_undefined(frame, at);
        }
    }
    vcpu::before_return(cpu, dom, v, frame);
}

#[no_mangle]
extern "C" fn guest_irq(frame: &mut Frame) {
    let cpu = sysreg::cpu_index();
    let running = current(cpu);
    if let Some((dom, v)) = running.filter(|_| entry::take_serror(cpu)) {
        return serror(cpu, dom, v, frame);
    }
    vcpu::drain_irqs(running);
    if let Some((dom, v)) = running {
        vcpu::before_return(cpu, dom, v, frame);
    }
}

#[no_mangle]
extern "C" fn guest_serror(frame: &mut Frame) {
    let cpu = sysreg::cpu_index();
    let _ = entry::take_serror(cpu);
    let Some((dom, v)) = current(cpu) else { return };
    serror(cpu, dom, v, frame);
}

/// An SError raised while `dom`'s vCPU `v` ran (taken in the guest, or at
/// its exit's synchronisation): the domain crashes, under its policy.
fn serror(cpu: usize, dom: &Domain, v: usize, frame: &mut Frame) {
    domlog!(dom, life_log, "{}: SError at PC {:#x} (ESR {:#x}): treated as a crash", dom.name(), frame.pc(), vcpu_regs::trap_syndrome().0);
    vcpu::shutdown(cpu, dom, v, Event::Crash, frame);
    vcpu::before_return(cpu, dom, v, frame);
}

/// A fault in the hypervisor itself: a bug, never a guest's doing. Report it
/// and stop this pCPU; the other pCPUs and their domains carry on.
#[no_mangle]
pub extern "C" fn hypervisor_fault(esr: u64, elr: u64, far: u64) -> ! {
    console::emergency_line(format_args!("hypervisor fault on pCPU {}: ESR {:#x} ELR {:#x} FAR {:#x}", sysreg::cpu_index(), esr, elr, far));
    loop {
        sysreg::wfi();
    }
}

/// A frame about to return into the hypervisor's own mode (or the
/// firmware's) instead of a guest's: a hypervisor bug, refused at the last
/// instruction before `eret` (the arch's return path). Stops this pCPU.
#[no_mangle]
extern "C" fn guest_return_refused(spsr: usize, elr: usize) -> ! {
    console::emergency_line(format_args!("hypervisor bug on pCPU {}: return to a non-guest mode refused (SPSR {:#x} ELR {:#x})", sysreg::cpu_index(), spsr, elr));
    loop {
        sysreg::wfi();
    }
}

/// A trapped register access that reads as zero and ignores writes
/// (`a32`: an AArch32 MRC/MCR, whose Rt 15 is APSR_nzcv, not x15).
fn raz_wi(frame: &mut Frame, read: bool, rt: u8, a32: bool, len: u64) {
    match (read, rt) {
        // AArch32's MRC to APSR_nzcv (a DCC status poll): flags clear.
        (true, 15) if a32 => frame.set_nzcv(0),
        (true, _) => set_reg(frame, rt, 0),
        (false, _) => {}
    }
    frame.skip(len);
}

fn reg(frame: &Frame, r: u8) -> u64 {
    frame.reg(r)
}

fn set_reg(frame: &mut Frame, r: u8, v: u64) {
    frame.set_reg(r, v)
}

#[allow(clippy::too_many_arguments)]
fn data_abort(cpu: usize, dom: &Domain, v: usize, frame: &mut Frame, da: DataAbort, far: u64, ipa: u64, len: u64) {
    // Emulated devices are never mapped, so only a translation fault can
    // be an access to one; for other faults (permission, external) the
    // fault address register holds no IPA (it is UNKNOWN: a stale one,
    // possibly from another domain's fault on this pCPU).
    let emulated = match da.valid {
        Some(acc) if !da.s1ptw && is_translation_fault(da.fsc) => emulate_mmio(cpu, dom, v, acc, ipa, frame),
        _ => false,
    };
    if emulated {
        frame.skip(len);
    } else if is_translation_fault(da.fsc) && crate::xen::mapped_after_remap(dom, ipa) {
        // A backend's page was being swapped (a grant mapped or torn down,
        // break-before-make): the access runs again on the new page.
    } else {
        log_abort(dom, "data access", ipa, frame.pc());
        inject_abort(cpu, dom, v, frame, false, far);
    }
}

/// A stage-2 translation fault (level 0 to 3), as a data abort's FSC says.
fn is_translation_fault(fsc: u8) -> bool {
    fsc & 0x3c == 0x04
}

/// The emulated devices of a domain: its distributor, redistributors and
/// PL011 (a GICv2 board's guests: the distributor, whose private
/// interrupts' registers are the accessing vCPU `v`'s). Returns false for
/// any other address.
fn emulate_mmio(cpu: usize, dom: &Domain, v: usize, acc: Access, ipa: u64, frame: &mut Frame) -> bool {
    let value = acc.store_value(reg(frame, acc.reg));
    let nvcpus = dom.vcpus.len() as u64;
    let v2 = crate::domain::system().gic_v2;
    // The vGIC's own kick masks are not used: `Domain::vgic` kicks only
    // for what became deliverable.
    let (result, kick) = if v2 && (gl::GICD_BASE..gl::GICD_BASE + gl::GICD_V2_SIZE).contains(&ipa) {
        let ((value, _), kick) = dom.vgic(|g| g.dist_access_v2(v, ipa - gl::GICD_BASE, acc, value));
        (value, kick)
    } else if v2 && ipa >= gl::GICD_BASE && ipa < gl::GICR_BASE + gl::GICR_REGION_SIZE {
        (0, 0) // no GICv3 frames on a GICv2 board
    } else if (gl::GICD_BASE..gl::GICD_BASE + gl::GICD_SIZE).contains(&ipa) {
        let ((value, _), kick) = dom.vgic(|g| g.dist_access(ipa - gl::GICD_BASE, acc, value));
        (value, kick)
    } else if (gl::GICR_BASE..gl::GICR_BASE + nvcpus * gl::GICR_STRIDE).contains(&ipa) {
        let ((value, _), kick) = dom.vgic(|g| g.redist_access(ipa - gl::GICR_BASE, acc, value));
        (value, kick)
    } else if dom.desc.has_vpl011() && (gl::PL011_BASE..gl::PL011_BASE + gl::PL011_SIZE).contains(&ipa) {
        // The line is printed after the UART's lock is released; the
        // interrupt is driven under it (vUART, then vGIC: the one order),
        // so two vCPUs cannot leave a stale level behind.
        let (effect, line, kick) = {
            let mut uart = dom.vuart.lock();
            let effect = uart.access(ipa - gl::PL011_BASE, acc, value);
            let line = effect.line_ready.then(|| uart.take_line());
            let (_, kick) = dom.vgic(|g| g.set_level(gl::PL011_SPI, uart.irq_level()));
            (effect, line, kick)
        };
        if let Some(line) = line {
            if hv_core::lifecycle::is_panic_line(line.as_bytes()) {
                dom.panicked.store(true, Ordering::Release);
            }
            console::domain_line(dom.index(), dom.name(), line.as_bytes());
        }
        (effect.value, kick)
    } else {
        return false;
    };
    if !acc.write {
        set_reg(frame, acc.reg, acc.load_value(result));
    }
    kick_for_irq(dom, kick, cpu);
    true
}

/// Most of its RAM a set/way trap flushes before the guest runs again.
const SET_WAY_CHUNK: u64 = 1 << 20;

/// A set/way cache operation (trapped by HCR_EL2.TSW): see `hv_core::setway`.
fn set_way(dom: &Domain, v: usize, frame: &mut Frame, len: u64) {
    let Some(ram) = dom.ram else { return };
    let step = dom.vcpus[v].setway.lock().on_trap(vcpu_regs::data_cache_on(), ram.size(), SET_WAY_CHUNK);
    if step.started && !dom.setway_logged.swap(true, Ordering::AcqRel) {
        hvlog!("{}: set/way cache maintenance trapped: its RAM is cleaned and invalidated by address instead", dom.name());
    }
    if let Some((offset, n)) = step.flush {
        ram.clean_invalidate(offset, n);
    }
    if step.complete {
        frame.skip(len);
    }
}

fn log_abort(dom: &Domain, what: &str, ipa: u64, pc: u64) {
    domlog!(dom, abort_log, "{}: {} at IPA {:#x} (PC {:#x}) outside its memory and devices: abort injected", dom.name(), what, ipa, pc);
}

/// Injects a synchronous external abort; a vCPU that keeps faulting at its
/// own vectors is crashed instead, under its domain's `on_crash` policy.
fn inject_abort(cpu: usize, dom: &Domain, v: usize, frame: &mut Frame, instruction: bool, far: u64) {
    let vbar = vcpu_regs::vbar_el1();
    let crashed = dom.vcpus[v].faults.lock().fault(frame.pc(), vbar);
    if crashed {
        domlog!(dom, life_log, "{}: vCPU {} keeps faulting at its exception vectors (VBAR {:#x}): crashed", dom.name(), v, vbar);
        vcpu::shutdown(cpu, dom, v, Event::Crash, frame);
        return;
    }
    vcpu_regs::inject_abort(frame, instruction, far);
}

/// SMCCC calls (HVC #0 or SMC #0), decoded and checked by
/// `hv_core::psci`; here they are carried out.
fn smccc_call(cpu: usize, dom: &Domain, v: usize, frame: &mut Frame) {
    let call = psci::decode(frame.smccc_args());
    let ret = match call {
        Call::CpuOn { target, entry, context } => cpu_on(dom, cpu, target, entry, context),
        Call::AffinityInfo { target, level } => psci::affinity_info(dom.vcpus.len(), target, level, |t| {
            match dom.vcpus[t].state.load(Ordering::Acquire) {
                VCPU_RUNNING => Power::On,
                VCPU_ON_PENDING | VCPU_CLAIMED => Power::OnPending,
                _ => Power::Off,
            }
        }),
        Call::CpuOff => return vcpu::cpu_off(cpu, dom, v, frame),
        Call::SystemOff => return vcpu::shutdown(cpu, dom, v, Event::PowerOff, frame),
        Call::SystemReset => return vcpu::shutdown(cpu, dom, v, Event::Reboot, frame),
        other => psci::simple_answer(other).unwrap_or(smccc::NOT_SUPPORTED),
    };
    frame.set_result(ret as u64);
}

fn cpu_on(dom: &Domain, self_cpu: usize, target: u64, entry: u64, context: u64) -> i64 {
    let ram = (dom.desc.ram_ipa, dom.desc.mem_size);
    let t = match psci::cpu_on_target(dom.vcpus.len(), ram, target, entry) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let vcpu = &dom.vcpus[t];
    if vcpu.stop.load(Ordering::Acquire) || dom.state.load(Ordering::Acquire) != DOM_RUNNING {
        // The domain is going down: no vCPU starts now.
        return xen_abi::psci::DENIED;
    }
    // Claim the vCPU before writing its entry, so two CPU_ONs cannot mix.
    if let Err(state) = vcpu.state.compare_exchange(VCPU_OFF, VCPU_CLAIMED, Ordering::AcqRel, Ordering::Acquire) {
        return if state == VCPU_RUNNING { xen_abi::psci::ALREADY_ON } else { xen_abi::psci::ON_PENDING };
    }
    vcpu.arm_cpu_on(entry, context);
    vcpu.state.store(VCPU_ON_PENDING, Ordering::Release);
    if vcpu.stop.load(Ordering::Acquire) {
        // A shutdown began meanwhile; it may be waiting for this vCPU.
        let _ = vcpu.state.compare_exchange(VCPU_ON_PENDING, VCPU_OFF, Ordering::AcqRel, Ordering::Acquire);
        return xen_abi::psci::DENIED;
    }
    kick_vcpus(dom, 1 << t, self_cpu);
    xen_abi::psci::SUCCESS
}
