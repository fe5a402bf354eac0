//! Beats five times, then asks PSCI for SYSTEM_OFF. Whether that ends only
//! this domain or the whole machine is the hypervisor's call, made from the
//! description (`system_controller`).
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod guest {
    use hv_test_guests::*;
    use xen_abi::guest_layout as gl;

    static TICK: Ticker = Ticker::new();
    const BEATS: u64 = 5;

    #[no_mangle]
    extern "C" fn guest_main() -> ! {
        println!("countdown: powering off after {} beats", BEATS);
        tick_forever(&TICK, 10)
    }

    #[no_mangle]
    fn on_irq(intid: u32) {
        if intid != gl::VTIMER_PPI {
            return;
        }
        let n = TICK.tick();
        println!("countdown {}", BEATS.saturating_sub(n));
        if n == BEATS {
            println!("countdown: SYSTEM_OFF");
            power_off();
        }
    }

    #[no_mangle]
    fn on_sync(frame: &mut TrapFrame, esr: u64, _far: u64) {
        println!("countdown: unexpected exception ESR {:#x} at {:#x}", esr, frame.elr);
        power_off();
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
