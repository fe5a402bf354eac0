//! CPU-bound, and counts its own share of the CPU: it spins reading its
//! virtual counter (which runs on while the vCPU is descheduled), adds up
//! the short steps as time it ran and the long gaps as time it did not, and
//! prints its share every second of guest time.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod guest {
    use hv_test_guests::*;

    #[no_mangle]
    extern "C" fn guest_main() {
        let freq = counter_freq();
        // A step longer than this means another vCPU ran meanwhile. Being
        // descheduled lasts milliseconds here (the other guest's budget);
        // shorter stalls are the host's, not the scheduler's, and count as run.
        let gap = freq / 500; // 2 ms
        println!("share: spinning; reporting every second");
        let start = virtual_count();
        let (mut last, mut ran, mut window_start, mut window_ran) = (start, 0u64, start, 0u64);
        let mut report = 0u64;
        loop {
            let now = virtual_count();
            let step = now - last;
            if step < gap {
                ran += step;
                window_ran += step;
            }
            last = now;
            if now - window_start >= freq {
                report += 1;
                let permille = window_ran * 1000 / (now - window_start);
                println!("share {}: {}.{}% (total {}%)", report, permille / 10, permille % 10, ran * 100 / (now - start));
                window_start = virtual_count();
                last = window_start;
                window_ran = 0;
            }
        }
    }

    #[no_mangle]
    fn on_irq(_intid: u32) {}

    #[no_mangle]
    fn on_sync(frame: &mut TrapFrame, esr: u64, _far: u64) {
        println!("share: unexpected exception ESR {:#x} at {:#x}", esr, frame.elr);
        power_off();
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
