//! CPU-bound, and measures what the scheduler gives it: it spins reading
//! its virtual counter (which runs on while the vCPU is descheduled), adds
//! up the short steps as time it ran and the long gaps as time it did not,
//! and every second of guest time prints its share of that second and its
//! longest uninterrupted run (a burst), which a budget/period scheduler
//! bounds by the budget.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod guest {
    use hv_test_guests::*;

    #[no_mangle]
    extern "C" fn guest_main() {
        let freq = counter_freq();
        // A step longer than this means the vCPU did not run meanwhile:
        // another vCPU ran, or the pCPU idled between periods (the RTDS
        // test leaves 1 ms a period idle). Shorter stalls count as run;
        // that is the measurement's resolution.
        let gap = freq / 4000; // 0.25 ms
        println!("share: spinning; reporting every second");
        let start = virtual_count();
        let (mut last, mut ran, mut window_start, mut window_ran) = (start, 0u64, start, 0u64);
        let (mut burst_start, mut longest) = (start, 0u64);
        let mut report = 0u64;
        loop {
            let now = virtual_count();
            let step = now - last;
            if step < gap {
                ran += step;
                window_ran += step;
            } else {
                longest = longest.max(last - burst_start);
                burst_start = now;
            }
            last = now;
            if now - window_start >= freq {
                report += 1;
                longest = longest.max(now - burst_start);
                let permille = window_ran * 1000 / (now - window_start);
                let longest_us = longest * 1_000_000 / freq;
                println!(
                    "share {}: {}.{}% (total {}%), longest run {} us",
                    report,
                    permille / 10,
                    permille % 10,
                    ran * 100 / (now - start),
                    longest_us
                );
                window_start = virtual_count();
                last = window_start;
                burst_start = window_start;
                window_ran = 0;
                longest = 0;
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
