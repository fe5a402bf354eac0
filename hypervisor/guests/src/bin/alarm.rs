//! Owns a passed-through PL031 real-time clock (QEMU virt: 0x0901_0000,
//! level-triggered SPI 34) and leaves its interrupt line raised on purpose:
//!
//! - first boot: arms the RTC alarm, takes the interrupt and reboots from
//!   inside the handler, line high and interrupt still active;
//! - after that restart: the interrupt must come again (the hypervisor
//!   deactivated it), before any alarm is armed; then it powers off with
//!   the line still high, so its domain is destroyed with a device
//!   interrupt nobody will ever clear.
//!
//! The domains sharing its pCPU must not notice any of it.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod guest {
    use core::sync::atomic::{AtomicU64, Ordering};
    use hv_test_guests::*;
    use xen_abi::{guest_layout as gl, psci};

    const RTC: u64 = 0x0901_0000;
    const RTC_DR: u64 = RTC;
    const RTC_MR: u64 = RTC + 0x04;
    const RTC_IMSC: u64 = RTC + 0x10;
    const RTC_SPI: u32 = 34;
    const GICD_ISENABLER: u64 = gl::GICD_BASE + 0x100;

    /// Virtual time by which an interrupt counts as carried over.
    static ARMED_AT: AtomicU64 = AtomicU64::new(u64::MAX);
    static START: AtomicU64 = AtomicU64::new(0);

    #[no_mangle]
    extern "C" fn guest_main() -> ! {
        println!("alarm: up");
        START.store(virtual_count(), Ordering::Relaxed);
        gic_init(1 << gl::VTIMER_PPI);
        mmio_write(GICD_ISENABLER + 4 * (RTC_SPI as u64 / 32), 1 << (RTC_SPI % 32));
        irqs_on();
        // 200 ms for an interrupt left over from the last incarnation.
        timer_at(virtual_count() + counter_freq() / 5);
        loop {
            wait_for_interrupt();
        }
    }

    #[no_mangle]
    fn on_irq(intid: u32) {
        match intid {
            gl::VTIMER_PPI => {
                // Nothing carried over: arm the RTC alarm 2 s ahead.
                timer_off();
                mmio_write(RTC_MR, mmio_read(RTC_DR).wrapping_add(2));
                mmio_write(RTC_IMSC, 1);
                ARMED_AT.store(virtual_count(), Ordering::Relaxed);
                println!("alarm: RTC alarm armed");
            }
            RTC_SPI if ARMED_AT.load(Ordering::Relaxed) == u64::MAX => {
                let ms = (virtual_count() - START.load(Ordering::Relaxed)) * 1000 / counter_freq();
                println!("alarm: RTC interrupt raised since before the restart, taken {ms} ms after start; powering off with it raised");
                power_off();
            }
            RTC_SPI => {
                println!("alarm: RTC alarm taken; rebooting with the line raised and the interrupt active");
                hvc_call(psci::SYSTEM_RESET, 0, 0, 0);
                println!("alarm: unexpected: SYSTEM_RESET returned");
            }
            other => println!("alarm: unexpected interrupt {other}"),
        }
    }

    #[no_mangle]
    fn on_sync(frame: &mut TrapFrame, esr: u64, _far: u64) {
        println!("alarm: unexpected exception ESR {:#x} at {:#x}", esr, frame.elr);
        power_off();
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
