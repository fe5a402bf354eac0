//! Prints a numbered beat every 10 ms of guest time, driven by its virtual
//! timer interrupt. At start it checks how the hypervisor answers calls a
//! guest may probe with: PSCI_VERSION, an unknown SMCCC function over HVC and
//! SMC (NOT_SUPPORTED, -1) and an undefined HVC immediate (an undefined
//! instruction exception it catches and steps over), the PMU and debug
//! registers (read as zero), on Armv7-A the core's c15 (CBAR reads as
//! zero), and set/way cache maintenance (trapped).
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod guest {
    use core::sync::atomic::{AtomicU64, Ordering};
    use hv_test_guests::*;
    use xen_abi::{guest_layout as gl, psci};

    static TICK: Ticker = Ticker::new();
    static UNDEF_SEEN: AtomicU64 = AtomicU64::new(u64::MAX);

    /// A function ID no one defines (SMCCC vendor-hypervisor range).
    const UNKNOWN_FID: u32 = 0x86ff_0f0f;

    #[no_mangle]
    extern "C" fn guest_main() -> ! {
        println!("heartbeat: up on vCPU {}", mpidr_index());
        let v = hvc_call(psci::PSCI_VERSION, 0, 0, 0);
        println!("heartbeat: PSCI version {}.{}", v >> 16, v & 0xffff);
        println!("heartbeat: unknown SMCCC call via HVC returned {}", hvc_call(UNKNOWN_FID, 0, 0, 0));
        println!("heartbeat: unknown SMCCC call via SMC returned {}", smc_call(UNKNOWN_FID, 0));
        // An HVC with an immediate the hypervisor does not define: the
        // undefined-instruction exception it raises is caught in `on_sync`.
        undefined_hvc();
        println!("heartbeat: HVC #1 raised exception class {:#x}, carrying on", UNDEF_SEEN.load(Ordering::Relaxed));
        // The PMU and debug registers are not this domain's to use: writes
        // are ignored and reads give zero (the hypervisor traps them).
        // (On Armv7-A: PMCR and DBGDSCRext, the same controls.)
        let (pmcr, mdscr) = pmu_and_debug_after_writing();
        println!("heartbeat: PMCR_EL0 {:#x}, MDSCR_EL1 {:#x} after writing them", pmcr, mdscr);
        // Armv7-A: the core's own c15 registers are not the domain's.
        #[cfg(target_arch = "arm")]
        println!("heartbeat: CBAR {:#x}", cbar());
        // Set/way cache maintenance, as boot code walks it: the hypervisor
        // traps it (it would reach other domains' lines on this pCPU).
        for set in 0..512u64 {
            set_way_clean(set);
        }
        println!("heartbeat: 512 set/way operations done");
        tick_forever(&TICK, 10)
    }

    #[no_mangle]
    fn on_irq(intid: u32) {
        if intid == gl::VTIMER_PPI {
            println!("beat {}", TICK.tick());
        }
    }

    #[no_mangle]
    fn on_sync(frame: &mut TrapFrame, esr: u64, far: u64) {
        if esr_class(esr) == 0 {
            UNDEF_SEEN.store(0, Ordering::Relaxed);
            frame.elr += 4;
            return;
        }
        println!("heartbeat: unexpected exception ESR {:#x} FAR {:#x} at {:#x}", esr, far, frame.elr);
        power_off();
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
