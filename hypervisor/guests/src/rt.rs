//! The runtime proper (bare-metal only).

use core::arch::{asm, global_asm};
use core::fmt::{self, Write};
use xen_abi::guest_layout as gl;

global_asm!(
    r#"
.section .text.boot, "ax"
.global _start
_start:
    adrp    x1, __stack_top
    add     x1, x1, :lo12:__stack_top
    mov     sp, x1
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
1:  cmp     x1, x2
    b.hs    2f
    stp     xzr, xzr, [x1], #16
    b       1b
2:  adrp    x1, guest_vectors
    add     x1, x1, :lo12:guest_vectors
    msr     vbar_el1, x1
    isb
    bl      guest_main
3:  wfi
    b       3b

.macro SAVE
    sub     sp, sp, #272
    stp     x0, x1, [sp, #0]
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x0, elr_el1
    stp     x30, x0, [sp, #240]
    mov     x0, sp
.endm

.macro RESTORE
    ldp     x30, x0, [sp, #240]
    msr     elr_el1, x0
    ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    add     sp, sp, #272
    eret
.endm

.section .text
.balign 2048
.global guest_vectors
guest_vectors:
    .balign 128
    b       .
    .balign 128
    b       .
    .balign 128
    b       .
    .balign 128
    b       .
    // Current EL, SPx: the guest's own exceptions. Each slot is 128 bytes,
    // so the handlers live out of line.
    .balign 128
    b       sync_entry
    .balign 128
    b       irq_entry
    .balign 128
    b       .
    .balign 128
    b       .

sync_entry:
    SAVE
    bl      rt_sync
    RESTORE

irq_entry:
    SAVE
    bl      rt_irq
    RESTORE
"#
);

/// Registers saved on a guest exception; `elr` is where it resumes.
#[repr(C)]
pub struct TrapFrame {
    pub x: [u64; 31],
    pub elr: u64,
    _pad: u64,
}

extern "Rust" {
    fn on_sync(frame: &mut TrapFrame, esr: u64, far: u64);
    fn on_irq(intid: u32);
}

#[no_mangle]
extern "C" fn rt_sync(frame: &mut TrapFrame) {
    let esr: u64;
    let far: u64;
    // SAFETY: reading EL1 syndrome registers has no side effects.
    unsafe {
        asm!("mrs {}, esr_el1", out(reg) esr);
        asm!("mrs {}, far_el1", out(reg) far);
    }
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

/// Whether this vCPU's GIC has the system-register CPU interface (GICv3);
/// without it, the GICv2 layout (distributor, memory-mapped CPU interface).
pub fn gic_is_v3() -> bool {
    let pfr0: u64;
    // SAFETY: reading ID_AA64PFR0_EL1, an identification register.
    unsafe { asm!("mrs {}, id_aa64pfr0_el1", out(reg) pfr0) };
    (pfr0 >> 24) & 0xf != 0
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
        let intid: u64;
        // SAFETY: acknowledging through the (virtual) CPU interface.
        unsafe { asm!("mrs {}, icc_iar1_el1", out(reg) intid) };
        intid as u32 & 0xff_ffff
    } else {
        mmio_read(GICC_IAR) & 0x1fff
    }
}

/// Ends (EOImode 0: also deactivates) an interrupt `gic_ack` returned.
fn gic_eoi(iar: u32) {
    if gic_is_v3() {
        // SAFETY: EOI of the interrupt just acknowledged.
        unsafe { asm!("msr icc_eoir1_el1, {}", in(reg) iar as u64) };
    } else {
        mmio_write(GICC_EOIR, iar);
    }
}

// MMIO through a single plain `str`/`ldr`, as Linux's writel/readl do: a
// trapped access must carry a valid syndrome (ISV) to be emulated, and
// pre/post-indexed or paired forms do not.
pub fn mmio_write(addr: u64, v: u32) {
    // SAFETY: `addr` is a device register of the guest layout or one passed
    // through to it (callers name only those).
    unsafe { asm!("str {v:w}, [{a}]", v = in(reg) v, a = in(reg) addr, options(nostack)) }
}

pub fn mmio_read(addr: u64) -> u32 {
    let v: u32;
    // SAFETY: as for `mmio_write`.
    unsafe { asm!("ldr {v:w}, [{a}]", v = out(reg) v, a = in(reg) addr, options(nostack)) };
    v
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
    let daif: u64;
    // SAFETY: saving DAIF and masking IRQs for the duration of the line.
    unsafe { asm!("mrs {}, daif", "msr daifset, #2", out(reg) daif) };
    while CONSOLE_LOCK.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
        core::hint::spin_loop();
    }
    let _ = Console.write_fmt(args);
    let _ = Console.write_str("\n");
    CONSOLE_LOCK.store(false, Ordering::Release);
    // SAFETY: restoring the interrupt mask saved above.
    unsafe { asm!("msr daif, {}", in(reg) daif) };
}

#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {{
        $crate::print_line(format_args!($($arg)*));
    }};
}

/// An SMCCC call through HVC #0: x0 = function ID, returns x0.
pub fn hvc_call(fid: u32, a1: u64, a2: u64, a3: u64) -> i64 {
    let r: i64;
    // SAFETY: SMCCC convention; x0-x3 are the only registers the call uses.
    unsafe {
        asm!("hvc #0", inout("x0") fid as u64 => r, inout("x1") a1 => _,
             inout("x2") a2 => _, inout("x3") a3 => _, options(nostack));
    }
    r
}

/// Sends SGI `intid` to the vCPUs in `targets` (bit i = vCPU i, cluster 0).
pub fn send_sgi(intid: u32, targets: u16) {
    if !gic_is_v3() {
        // GICD_SGIR: target list filter 0, CPU interfaces = vCPUs.
        mmio_write(gl::GICD_BASE + 0xF00, ((targets as u32 & 0xff) << 16) | (intid & 0xf));
        return;
    }
    let v = ((intid as u64 & 0xf) << 24) | targets as u64;
    // SAFETY: writing ICC_SGI1R_EL1 (trapped and emulated by the hypervisor).
    unsafe { asm!("msr icc_sgi1r_el1, {}", "isb", in(reg) v) };
}

/// The same through SMC #0 (trapped to the hypervisor).
pub fn smc_call(fid: u32, a1: u64) -> i64 {
    let r: i64;
    // SAFETY: as for `hvc_call`.
    unsafe {
        asm!("smc #0", inout("x0") fid as u64 => r, inout("x1") a1 => _,
             out("x2") _, out("x3") _, options(nostack));
    }
    r
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
    // SAFETY: enabling the system-register CPU interface and group 1.
    unsafe {
        asm!("mrs {t}, icc_sre_el1", "orr {t}, {t}, #1", "msr icc_sre_el1, {t}", "isb", t = out(reg) _);
        asm!("msr icc_pmr_el1, {}", in(reg) 0xffu64);
        asm!("msr icc_igrpen1_el1, {}", in(reg) 1u64);
        asm!("isb");
    }
}

pub fn mpidr_index() -> u64 {
    let m: u64;
    // SAFETY: reading MPIDR_EL1 (virtualised by VMPIDR_EL2).
    unsafe { asm!("mrs {}, mpidr_el1", out(reg) m) };
    m & 0xff
}

pub fn counter_freq() -> u64 {
    let f: u64;
    // SAFETY: reading CNTFRQ_EL0.
    unsafe { asm!("mrs {}, cntfrq_el0", out(reg) f) };
    f
}

pub fn virtual_count() -> u64 {
    let c: u64;
    // SAFETY: reading CNTVCT_EL0.
    unsafe { asm!("isb", "mrs {}, cntvct_el0", out(reg) c) };
    c
}

/// Arms the virtual timer to fire at virtual count `cval`.
pub fn timer_at(cval: u64) {
    // SAFETY: programming this vCPU's own virtual timer.
    unsafe {
        asm!("msr cntv_cval_el0, {}", in(reg) cval);
        asm!("msr cntv_ctl_el0, {}", in(reg) 1u64);
        asm!("isb");
    }
}

/// Stops the virtual timer. (Not `timer_at(u64::MAX)`: QEMU 7.2's TCG adds
/// CNTVOFF to such a deadline, wraps, and spins re-arming its host timer,
/// stalling the whole machine.)
pub fn timer_off() {
    // SAFETY: programming this vCPU's own virtual timer.
    unsafe { asm!("msr cntv_ctl_el0, {}", "isb", in(reg) 0u64) };
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

pub fn irqs_on() {
    // SAFETY: unmasking IRQs once handlers are in place.
    unsafe { asm!("msr daifclr, #2", "isb") };
}

pub fn wait_for_interrupt() {
    // SAFETY: WFI has no memory effects.
    unsafe { asm!("wfi") };
}

pub fn set_vbar(addr: u64) {
    // SAFETY: changes where this guest's exceptions go; the caller means it.
    unsafe { asm!("msr vbar_el1, {}", "isb", in(reg) addr) };
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

/// Turns the MMU and caches on with [`IDENTITY`]. Memory shared with other
/// domains must be cacheable on both sides to be coherent.
pub fn mmu_on() {
    // bss and the stack were written with the MMU off, straight to memory:
    // lines of them still cached from before (the loader's, a scrub's)
    // would hide those writes once caching is on. Invalidate (which EL2
    // makes a clean and invalidate: the hypervisor leaves no dirty lines
    // of a domain's memory when it loads it).
    let (start, end) = (&raw const __bss_start as u64, &raw const __stack_top as u64);
    let ctr: u64;
    // SAFETY: reading CTR_EL0 has no side effects.
    unsafe { asm!("mrs {}, ctr_el0", out(reg) ctr) };
    let line = 4u64 << ((ctr >> 16) & 0xf);
    let mut at = start & !(line - 1);
    while at < end {
        // SAFETY: invalidates cache lines of this guest's own bss and stack
        // only, whose contents are in memory (written with the MMU off).
        unsafe { asm!("dc ivac, {}", in(reg) at) };
        at += line;
    }
    let mair: u64 = 0xff << 8; // attr 0: Device-nGnRnE; attr 1: normal WB
    // T0SZ = 32 (4 GiB, starting at level 1), 4 KiB granule, WB walks,
    // inner shareable; TTBR1 walks disabled; 32-bit physical addresses.
    let tcr: u64 = 32 | 1 << 8 | 1 << 10 | 3 << 12 | 1 << 23;
    // SAFETY: the map is the identity over everything this guest touches,
    // so execution carries on at the same addresses once it is on.
    unsafe {
        asm!(
            "dsb sy",
            "msr mair_el1, {mair}",
            "msr tcr_el1, {tcr}",
            "msr ttbr0_el1, {ttbr}",
            "dsb ish",
            "tlbi vmalle1",
            "dsb ish",
            "isb",
            "mrs {t}, sctlr_el1",
            "orr {t}, {t}, #(1 << 0)",
            "orr {t}, {t}, #(1 << 2)",
            "orr {t}, {t}, #(1 << 12)",
            "msr sctlr_el1, {t}",
            "isb",
            mair = in(reg) mair,
            tcr = in(reg) tcr,
            ttbr = in(reg) IDENTITY.0.as_ptr() as u64,
            t = out(reg) _,
        );
    }
}

/// Exception class of a syndrome.
pub fn esr_class(esr: u64) -> u64 {
    (esr >> 26) & 0x3f
}
