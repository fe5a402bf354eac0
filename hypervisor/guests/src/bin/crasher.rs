//! Beats like `heartbeat`, then after a few beats touches memory outside its
//! domain. The hypervisor injects an abort; the guest's handler "breaks"
//! (points its vector base at nothing and retries), so the vCPU keeps
//! faulting at its own vectors: the hypervisor counts that as a crash and
//! applies the domain's `on_crash` policy.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod guest {
    use hv_test_guests::*;
    use xen_abi::guest_layout as gl;

    static TICK: Ticker = Ticker::new();
    const BEATS_BEFORE_CRASH: u64 = 20;
    /// 64 MiB into guest RAM: beyond any test domain's memory.
    const OUTSIDE: u64 = gl::RAM0_BASE + (64 << 20);

    #[no_mangle]
    extern "C" fn guest_main() -> ! {
        println!("crasher: up; touching {:#x} after {} beats", OUTSIDE, BEATS_BEFORE_CRASH);
        tick_forever(&TICK, 10)
    }

    #[no_mangle]
    fn on_irq(intid: u32) {
        if intid != gl::VTIMER_PPI {
            return;
        }
        let n = TICK.tick();
        println!("crasher beat {}", n);
        if n == BEATS_BEFORE_CRASH {
            println!("crasher: touching {:#x}", OUTSIDE);
            // SAFETY: deliberately reads outside this domain's memory; the
            // hypervisor answers with an abort (that is the test).
            let _ = unsafe { core::ptr::read_volatile(OUTSIDE as *const u32) };
            println!("crasher: survived the access (should not happen)");
        }
    }

    #[no_mangle]
    fn on_sync(_frame: &mut TrapFrame, esr: u64, far: u64) {
        println!("crasher: abort ESR {:#x} FAR {:#x}; handler breaks its vector base and retries", esr, far);
        set_vbar(0);
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
