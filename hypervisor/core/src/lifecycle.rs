//! Domain lifecycle: what a power-off, reboot or crash turns into, and when a
//! vCPU that keeps faulting counts as crashed.

use crate::bundle::{Action, DomainDesc};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    PowerOff,
    Reboot,
    Crash,
}

/// What the hypervisor does about an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Destroy,
    Restart,
    Preserve,
    /// The system controller powered off: the whole machine goes off.
    MachineOff,
    /// The system controller rebooted: the whole machine resets.
    MachineReset,
}

pub fn decide(dom: &DomainDesc<'_>, event: Event) -> Decision {
    let action = match event {
        Event::PowerOff if dom.is_system_controller() => return Decision::MachineOff,
        Event::Reboot if dom.is_system_controller() => return Decision::MachineReset,
        Event::PowerOff => dom.on_poweroff,
        Event::Reboot => dom.on_reboot,
        Event::Crash => dom.on_crash,
    };
    match action {
        Action::Destroy => Decision::Destroy,
        Action::Restart => Decision::Restart,
        Action::Preserve => Decision::Preserve,
    }
}

/// What Linux prints on its console as it panics. Arm Linux tells Xen of
/// a panic only by rebooting (the Xen panic notifier is x86's alone), so a
/// reboot that follows this line on the domain's console is a crash. A
/// guest that prints it falsely changes only its own policy.
const PANIC_BANNER: &[u8] = b"Kernel panic - not syncing";

/// Whether a console line of a domain is Linux's panic banner (with or
/// without the kernel's timestamp prefix).
pub fn is_panic_line(line: &[u8]) -> bool {
    line.windows(PANIC_BANNER.len()).take(32).any(|w| w == PANIC_BANNER)
}

/// A reboot after the domain's kernel panicked counts as a crash.
pub fn classify(event: Event, panicked: bool) -> Event {
    match event {
        Event::Reboot if panicked => Event::Crash,
        e => e,
    }
}

/// Consecutive aborts injected at the guest's own vector table before the
/// vCPU counts as crashed: a guest with no working handler faults there again
/// and again and would otherwise spin forever.
pub const VECTOR_FAULT_LIMIT: u32 = 4;

/// Tracks aborts injected into one vCPU.
#[derive(Clone, Copy, Debug, Default)]
pub struct FaultWatch {
    at_vector: u32,
}

impl FaultWatch {
    /// Records a fault at `pc` with the guest's VBAR_EL1 `vbar`; returns true
    /// when the vCPU is to be treated as crashed.
    pub fn fault(&mut self, pc: u64, vbar: u64) -> bool {
        // Where an injected abort enters: the synchronous entries for the
        // current EL (SP_EL0 at +0x000, SP_ELx at +0x200). The rest of the
        // 2 KiB table may be ordinary code (a small guest puts its code right
        // after the entries it uses), and faults there are progress.
        let off = pc.wrapping_sub(vbar);
        if off < 0x400 && off % 0x200 < 0x80 {
            self.at_vector += 1;
        } else {
            self.at_vector = 0;
        }
        self.at_vector >= VECTOR_FAULT_LIMIT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reboot_after_a_panic_banner_is_a_crash() {
        assert!(is_panic_line(b"[    3.141592] Kernel panic - not syncing: sysrq triggered crash"));
        assert!(is_panic_line(b"Kernel panic - not syncing: Attempted to kill init!"));
        assert!(!is_panic_line(b"ivi tick 3"));
        // Only near the start of the line: an application quoting it later on is not a panic.
        let mut quoted = vec![b'x'; 64];
        quoted.extend_from_slice(PANIC_BANNER);
        assert!(!is_panic_line(&quoted));
        assert_eq!(classify(Event::Reboot, true), Event::Crash);
        assert_eq!(classify(Event::Reboot, false), Event::Reboot);
        assert_eq!(classify(Event::PowerOff, true), Event::PowerOff);
    }
    use crate::bundle::*;

    fn dom(flags: u8) -> DomainDesc<'static> {
        DomainDesc {
            name: "d",
            vcpus: 1,
            pins: [0; MAX_VCPUS],
            flags,
            on_poweroff: Action::Destroy,
            on_reboot: Action::Restart,
            on_crash: Action::Preserve,
            mem_pa: 0,
            mem_size: 0,
            load_offset: 0,
            image: &[],
            ..Default::default()
        }
    }

    #[test]
    fn policies_map_events_like_xl_cfg() {
        let d = dom(0);
        assert_eq!(decide(&d, Event::PowerOff), Decision::Destroy);
        assert_eq!(decide(&d, Event::Reboot), Decision::Restart);
        assert_eq!(decide(&d, Event::Crash), Decision::Preserve);
    }

    #[test]
    fn only_the_system_controller_stops_the_machine() {
        let d = dom(FLAG_SYSTEM_CONTROLLER);
        assert_eq!(decide(&d, Event::PowerOff), Decision::MachineOff);
        assert_eq!(decide(&d, Event::Reboot), Decision::MachineReset);
        assert_eq!(decide(&d, Event::Crash), Decision::Preserve);
    }

    #[test]
    fn repeated_faults_at_the_vectors_are_a_crash() {
        let mut w = FaultWatch::default();
        // A fault in ordinary code, then the handler itself faults repeatedly.
        assert!(!w.fault(0x4000_1234, 0));
        for _ in 0..VECTOR_FAULT_LIMIT - 1 {
            assert!(!w.fault(0x200, 0));
        }
        assert!(w.fault(0x200, 0));
    }

    /// Found by the hostile test guest: its attack code sits 0x6ec past its
    /// VBAR, and four aborts in a row there declared it crashed.
    #[test]
    fn faults_in_code_after_the_entries_used_are_not_at_the_vectors() {
        let mut w = FaultWatch::default();
        for _ in 0..10 {
            assert!(!w.fault(0x4000_0eec, 0x4000_0800));
            assert!(!w.fault(0x4000_0b00, 0x4000_0800));
        }
        // The entries themselves still count, from either stack pointer.
        for _ in 0..VECTOR_FAULT_LIMIT - 1 {
            assert!(!w.fault(0x4000_0804, 0x4000_0800));
        }
        assert!(w.fault(0x4000_0a10, 0x4000_0800));
    }

    #[test]
    fn progress_between_faults_is_not_a_crash() {
        let mut w = FaultWatch::default();
        // A fault in ordinary code between two at the vectors is progress.
        for _ in 0..10 {
            assert!(!w.fault(0x4000_0a00, 0x4000_0800));
            assert!(!w.fault(0x4000_1234, 0x4000_0800));
        }
    }
}
