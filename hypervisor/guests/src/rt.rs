//! The runtime proper (bare-metal only): what is the same on both
//! architectures; the entry, vectors and registers are `aarch64`'s or
//! `armv7`'s.

use core::fmt::{self, Write};
use xen_abi::guest_layout as gl;

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "aarch64")]
pub use aarch64::*;
#[cfg(target_arch = "arm")]
mod armv7;
#[cfg(target_arch = "arm")]
pub use armv7::*;

extern "Rust" {
    fn on_sync(frame: &mut TrapFrame, esr: u64, far: u64);
    fn on_irq(intid: u32);
}

/// A synchronous exception, as an aarch64 syndrome (`esr`) and fault
/// address: to the guest binary's `on_sync`.
fn dispatch_sync(frame: &mut TrapFrame, esr: u64, far: u64) {
    // SAFETY: provided by the guest binary with this exact signature.
    unsafe { on_sync(frame, esr, far) }
}

#[no_mangle]
extern "C" fn rt_irq(_frame: &mut TrapFrame) {
    loop {
        let iar = gic_ack();
        let intid = iar & 0x3ff;
        if intid >= 1020 {
            return;
        }
        // SAFETY: provided by the guest binary with this exact signature.
        unsafe { on_irq(intid) };
        gic_eoi(iar);
    }
}

/// GICv2 CPU interface registers (the hypervisor maps the GICV frame here).
const GICC_CTLR: u64 = gl::GICC_BASE;
const GICC_PMR: u64 = gl::GICC_BASE + 0x4;
const GICC_IAR: u64 = gl::GICC_BASE + 0xC;
const GICC_EOIR: u64 = gl::GICC_BASE + 0x10;

/// Acknowledges the highest pending interrupt: its IAR value (an SGI's
/// carries its source on GICv2, which the EOI must give back).
fn gic_ack() -> u32 {
    if gic_is_v3() {
        gic_v3_ack()
    } else {
        mmio_read(GICC_IAR) & 0x1fff
    }
}

/// Ends (EOImode 0: also deactivates) an interrupt `gic_ack` returned.
fn gic_eoi(iar: u32) {
    if gic_is_v3() {
        gic_v3_eoi(iar);
    } else {
        mmio_write(GICC_EOIR, iar);
    }
}

pub struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            while mmio_read(gl::PL011_BASE + 0x18) & (1 << 5) != 0 {}
            mmio_write(gl::PL011_BASE, b as u32);
        }
        Ok(())
    }
}

static CONSOLE_LOCK: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Prints one line atomically with respect to the domain's other vCPUs (they
/// share one UART) and to interrupt handlers (IRQs are masked meanwhile).
pub fn print_line(args: fmt::Arguments<'_>) {
    use core::sync::atomic::Ordering;
    let mask = irq_save();
    while CONSOLE_LOCK.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
        core::hint::spin_loop();
    }
    let _ = Console.write_fmt(args);
    let _ = Console.write_str("\n");
    CONSOLE_LOCK.store(false, Ordering::Release);
    irq_restore(mask);
}

#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {{
        $crate::print_line(format_args!($($arg)*));
    }};
}

/// Sends SGI `intid` to the vCPUs in `targets` (bit i = vCPU i, cluster 0).
pub fn send_sgi(intid: u32, targets: u16) {
    if !gic_is_v3() {
        // GICD_SGIR: target list filter 0, CPU interfaces = vCPUs.
        mmio_write(gl::GICD_BASE + 0xF00, ((targets as u32 & 0xff) << 16) | (intid & 0xf));
        return;
    }
    gic_v3_sgi(((intid as u64 & 0xf) << 24) | targets as u64);
}

/// GIC set-up for this vCPU: distributor on, `ppis` enabled, CPU interface
/// accepting everything (GICv3: the redistributor awake too).
pub fn gic_init(ppis: u32) {
    if !gic_is_v3() {
        // Private interrupts' registers are banked in the distributor.
        mmio_write(gl::GICD_BASE, 1);
        for n in 0..8 {
            mmio_write(gl::GICD_BASE + 0x400 + 4 * n, 0xa0a0_a0a0);
        }
        mmio_write(gl::GICD_BASE + 0x100, ppis);
        mmio_write(GICC_PMR, 0xff);
        mmio_write(GICC_CTLR, 1);
        return;
    }
    let rd = gl::GICR_BASE + mpidr_index() * gl::GICR_STRIDE;
    let sgi = rd + 0x1_0000;
    mmio_write(gl::GICD_BASE, (1 << 4) | (1 << 1));
    mmio_write(rd + 0x14, mmio_read(rd + 0x14) & !(1 << 1));
    while mmio_read(rd + 0x14) & (1 << 2) != 0 {}
    for n in 0..8 {
        mmio_write(sgi + 0x400 + 4 * n, 0xa0a0_a0a0);
    }
    mmio_write(sgi + 0x100, ppis);
    gic_v3_cpu_interface_on();
}

/// Waits (interrupts masked or not) until an interrupt is pending or the
/// virtual counter reaches `at`, whichever comes first.
pub fn wait_until(at: u64) {
    timer_at(at);
    wait_for_interrupt();
    timer_off();
}

/// Sleeps `ms` milliseconds of guest time, serving interrupts meanwhile.
pub fn sleep_ms(ms: u64) {
    let until = virtual_count() + counter_freq() * ms / 1000;
    while virtual_count() < until {
        wait_until(until);
        drain_interrupts();
    }
}

pub fn power_off() -> ! {
    hvc_call(xen_abi::psci::SYSTEM_OFF, 0, 0, 0);
    loop {
        wait_for_interrupt();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let _ = writeln!(Console, "guest panic: {info}");
    power_off()
}

/// A periodic virtual-timer tick: `period_ms` of guest (virtual) time apart,
/// counted from the first arm, so beats never drift.
pub struct Ticker {
    interval: core::sync::atomic::AtomicU64,
    next: core::sync::atomic::AtomicU64,
    count: core::sync::atomic::AtomicU64,
}

impl Ticker {
    pub const fn new() -> Self {
        use core::sync::atomic::AtomicU64;
        Ticker { interval: AtomicU64::new(0), next: AtomicU64::new(0), count: AtomicU64::new(0) }
    }

    pub fn start(&self, period_ms: u64) {
        use core::sync::atomic::Ordering::Relaxed;
        let interval = counter_freq() * period_ms / 1000;
        self.interval.store(interval, Relaxed);
        let next = virtual_count() + interval;
        self.next.store(next, Relaxed);
        timer_at(next);
    }

    /// Call on each timer interrupt: re-arms and returns the tick number (1, 2, ...).
    pub fn tick(&self) -> u64 {
        use core::sync::atomic::Ordering::Relaxed;
        let next = self.next.load(Relaxed) + self.interval.load(Relaxed);
        self.next.store(next, Relaxed);
        timer_at(next);
        self.count.fetch_add(1, Relaxed) + 1
    }
}

impl Default for Ticker {
    fn default() -> Self {
        Self::new()
    }
}

/// Takes the virtual timer interrupt, starts `ticker` every `period_ms` of
/// guest time and waits for interrupts forever: a timer-driven guest's main
/// loop (its `on_irq` does the work).
pub fn tick_forever(ticker: &Ticker, period_ms: u64) -> ! {
    gic_init(1 << gl::VTIMER_PPI);
    ticker.start(period_ms);
    irqs_on();
    loop {
        wait_for_interrupt();
    }
}

/// Acknowledges and ends every pending interrupt without handling it: for
/// a guest that waits with interrupts masked and looks for itself.
pub fn drain_interrupts() {
    loop {
        let iar = gic_ack();
        if iar & 0x3ff >= 1020 {
            return;
        }
        gic_eoi(iar);
    }
}

/// Level-1 table of the identity map: 4 GiB in 1 GiB blocks, the first
/// (devices) Device-nGnRnE, the rest (RAM from `RAM0_BASE`) write-back
/// cacheable, inner shareable. Built at compile time, so it is part of the
/// loaded image (which the hypervisor cleans to the point of coherency)
/// and never written with the MMU off.
#[repr(C, align(4096))]
struct Level1([u64; 512]);

const fn identity_map() -> Level1 {
    const VALID_BLOCK: u64 = 0b01;
    const AF: u64 = 1 << 10;
    const INNER_SHAREABLE: u64 = 3 << 8;
    const ATTR_NORMAL: u64 = 1 << 2;
    const XN: u64 = 3 << 53;
    let mut t = [0u64; 512];
    t[0] = VALID_BLOCK | AF | XN;
    let mut gib = 1;
    while gib < 4 {
        t[gib] = (gib as u64) << 30 | VALID_BLOCK | AF | INNER_SHAREABLE | ATTR_NORMAL;
        gib += 1;
    }
    Level1(t)
}

static IDENTITY: Level1 = identity_map();

extern "C" {
    static __bss_start: u8;
    static __stack_top: u8;
}

/// Exception class of a syndrome.
pub fn esr_class(esr: u64) -> u64 {
    (esr >> 26) & 0x3f
}

