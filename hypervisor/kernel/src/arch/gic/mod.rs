//! The physical GIC, v3 or v2 as the board has it (the boot bundle says
//! which): the hypervisor's own interrupts, passthrough SPIs, and the
//! virtual CPU interface's list registers. List-register values are in
//! the GICv3 encoding everywhere above this module (`hv_core::vgic::lr`);
//! the GICv2 driver converts them. What the two distributors share (the
//! SPIs' enable and active bits) lives here, once.

mod v2;
#[cfg(target_arch = "aarch64")]
mod v3;

/// The GICv2 call, or on aarch64 the GICv3 one when the board has that.
/// Armv7-A boards have GICv2 only (the build checks; `init` enforces).
macro_rules! by_version {
    ($v2:expr, $v3:expr) => {{
        #[cfg(target_arch = "aarch64")]
        let r = if v2() { $v2 } else { $v3 };
        #[cfg(not(target_arch = "aarch64"))]
        let r = $v2;
        r
    }};
}

use super::sysreg::dsb_sy;
use core::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use hv_core::bundle::{BoardDesc, GicVersion};
pub use hv_core::vgic::lr;

/// SGI a pCPU sends another to make it look at its vCPU's pending work.
pub const KICK_SGI: u32 = 0;
pub const MAINTENANCE_PPI: u32 = hv_core::vgic::MAINTENANCE_INTID;
pub const VTIMER_PPI: u32 = hv_core::vgic::VTIMER_INTID;
/// EL2 physical timer: the shared pCPUs' scheduling tick.
pub const HYP_TIMER_PPI: u32 = hv_core::vgic::HYP_TIMER_INTID;
pub const SPURIOUS: u32 = 1023;

/// The private interrupts every pCPU takes.
const OWN_PPIS: u32 = (1 << KICK_SGI) | (1 << MAINTENANCE_PPI) | (1 << VTIMER_PPI) | (1 << HYP_TIMER_PPI);

static VERSION: AtomicU8 = AtomicU8::new(3);
/// pCPUs whose GIC interface is up (`init_cpu` done).
static CPUS_UP: AtomicUsize = AtomicUsize::new(0);
static GICD: AtomicU64 = AtomicU64::new(0);

fn v2() -> bool {
    VERSION.load(Ordering::Relaxed) == 2
}

/// Every address below is computed from an INTID or a pCPU index: only
/// values inside the GIC's frames pass.
fn is_spi(intid: u32) -> bool {
    (32..1020).contains(&intid)
}

const GICD_CTLR: usize = 0x0;
const IGROUPR: usize = 0x80;
const ISENABLER: usize = 0x100;
const ICENABLER: usize = 0x180;
const ISACTIVER: usize = 0x300;
const ICACTIVER: usize = 0x380;
const IPRIORITYR: usize = 0x400;
const ICFGR: usize = 0xC00;

fn rd(addr: usize) -> u32 {
    // SAFETY: `addr` is a register inside the GIC's MMIO frames (a base
    // from the validated boot bundle plus an architectural offset bounded
    // by the callers), mapped as Device memory by the EL2 tables.
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

fn wr(addr: usize, v: u32) {
    // SAFETY: as for `rd`.
    unsafe { core::ptr::write_volatile(addr as *mut u32, v) }
}

fn gicd() -> usize {
    GICD.load(Ordering::Relaxed) as usize
}

/// Brings the distributor up. Primary CPU only, before any other.
///
/// # Safety
/// `board`'s GIC frames must be the board's, mapped as device memory at
/// EL2; every other function here relies on them.
pub unsafe fn init(board: &BoardDesc) {
    GICD.store(board.gicd_base, Ordering::Relaxed);
    match board.gic {
        #[cfg(target_arch = "aarch64")]
        GicVersion::V3 => {
            VERSION.store(3, Ordering::Relaxed);
            // SAFETY: forwarded from our caller.
            unsafe { v3::init_distributor(board.gicr_base, board.ncpus as usize) }
        }
        // An armv7a board with a GICv3 is a build error (hv-config), so no
        // bundle for this image says so; were one to, nothing here could
        // drive it.
        #[cfg(not(target_arch = "aarch64"))]
        GicVersion::V3 => panic!("a GICv3 on an Armv7-A board: refused at build time"),
        GicVersion::V2 => {
            VERSION.store(2, Ordering::Relaxed);
            // SAFETY: forwarded from our caller.
            unsafe { v2::init_distributor(board.gicc_base, board.gich_base) }
        }
    }
}

/// Distributor start-up shared by both versions: off, every SPI disabled
/// and group 1, then on with `ctlr`.
fn init_spis(ctlr: u32) {
    let d = gicd();
    wr(d + GICD_CTLR, 0);
    // Only the lines the distributor has (GICD_TYPER.ITLinesNumber).
    let words = ((rd(d + 0x4) & 0x1f) as usize + 1).min(32);
    for n in 1..words {
        wr(d + ICENABLER + 4 * n, 0xffff_ffff);
        wr(d + IGROUPR + 4 * n, 0xffff_ffff);
    }
    wr(d + GICD_CTLR, ctlr);
    dsb_sy();
}

/// This CPU's interface (and, on GICv3, redistributor).
pub fn init_cpu(cpu: usize) {
    by_version!(v2::init_cpu(cpu), v3::init_cpu(cpu));
    CPUS_UP.fetch_add(1, Ordering::Release);
}

/// Waits (boot only; at most about `ticks` of the counter) until `n`
/// pCPUs have their GIC interface up: a GICv2 SPI or SGI names its
/// target's CPU interface, which only that CPU can read.
pub fn wait_cpus_up(n: usize, ticks: u64) -> bool {
    let start = super::sysreg::counter();
    while CPUS_UP.load(Ordering::Acquire) < n {
        if super::sysreg::counter().wrapping_sub(start) > ticks {
            return false;
        }
        core::hint::spin_loop();
    }
    true
}

/// Acknowledges the highest pending interrupt (SPURIOUS when none).
pub fn ack() -> u32 {
    by_version!(v2::ack(), v3::ack())
}

/// Priority drop only: a HW-linked virtual interrupt deactivates it later.
pub fn eoi(intid: u32) {
    by_version!(v2::eoi(intid), v3::eoi(intid))
}

pub fn deactivate(intid: u32) {
    by_version!(v2::deactivate(intid), v3::deactivate(intid))
}

/// Sends the kick SGI to pCPU `pcpu`, whose affinity is `aff`.
pub fn kick(pcpu: usize, aff: u64) {
    by_version!(v2::kick(pcpu), v3::kick(aff))
}

/// Number of list registers this CPU interface implements.
pub fn lr_count() -> usize {
    by_version!(v2::lr_count(), v3::lr_count())
}

/// List register `i`, in the GICv3 encoding.
pub fn read_lr(i: usize) -> u64 {
    by_version!(v2::read_lr(i), v3::read_lr(i))
}

/// Writes list register `i` from a GICv3-encoded value.
pub fn write_lr(i: usize, v: u64) {
    by_version!(v2::write_lr(i, v), v3::write_lr(i, v))
}

/// Underflow maintenance interrupt on/off (refill LRs when they drain).
pub fn set_underflow_irq(on: bool) {
    by_version!(v2::set_underflow_irq(on), v3::set_underflow_irq(on))
}

/// The virtual CPU interface's state beyond the list registers: active
/// priorities and the guest's own control register (VMCR).
#[derive(Clone, Copy, Default)]
pub struct VifState {
    pub vmcr: u64,
    pub ap0: [u64; 4],
    pub ap1: [u64; 4],
}

impl VifState {
    pub const ZERO: VifState = VifState { vmcr: 0, ap0: [0; 4], ap1: [0; 4] };
}

pub fn save_vif(s: &mut VifState) {
    by_version!(v2::save_vif(s), v3::save_vif(s))
}

pub fn restore_vif(s: &VifState) {
    by_version!(v2::restore_vif(s), v3::restore_vif(s))
}

/// A vCPU's part of the virtual CPU interface while another vCPU runs on
/// its pCPU (RTDS): its list registers and the rest of the interface.
#[derive(Clone, Copy)]
pub struct SavedInterface {
    lrs: [u64; 16],
    vif: VifState,
}

impl SavedInterface {
    pub const ZERO: SavedInterface = SavedInterface { lrs: [0; 16], vif: VifState::ZERO };

    /// Saves the loaded vCPU's interface on `cpu` and leaves it empty for
    /// the next one. The virtual timer's interrupt (per pCPU) must not
    /// stay active for the next vCPU: the guest keeps its view, the link to
    /// the physical one goes. A passed-through SPI keeps its link: it is
    /// one interrupt for the whole machine, and the guest's deactivation
    /// must still reach it.
    pub fn save(&mut self, cpu: usize, nlr: usize) {
        for (n, slot) in self.lrs.iter_mut().enumerate().take(nlr) {
            let mut v = read_lr(n);
            if ((v >> 32) & 0x3ff) as u32 == VTIMER_PPI {
                v &= !(lr::HW | (0x3ff << 32));
            }
            *slot = v;
        }
        clear_active(cpu, VTIMER_PPI);
        save_vif(&mut self.vif);
        reset_virtual_interface(nlr);
    }

    /// Loads it back.
    pub fn restore(&self, nlr: usize) {
        for (n, &v) in self.lrs.iter().enumerate().take(nlr) {
            write_lr(n, v);
        }
        restore_vif(&self.vif);
    }

    /// Whether a list register holds an interrupt the vCPU should take.
    pub fn has_pending(&self) -> bool {
        self.lrs.iter().any(|&v| v & lr::STATE_PENDING != 0)
    }
}

/// Discards the list registers of a vCPU that stops or starts afresh. A
/// passed-through SPI in one (HW-linked) would never see the guest's
/// deactivation and stay active for good, silencing its device: it is
/// deactivated here.
pub fn discard_virtual_interface(nlr: usize) {
    for i in 0..nlr {
        let v = read_lr(i);
        let pintid = ((v >> 32) & 0x3ff) as u32;
        if v & lr::HW != 0 && !lr::is_free(v) && is_spi(pintid) {
            clear_active_spi(pintid);
        }
    }
    reset_virtual_interface(nlr);
}

/// Clears the virtual CPU interface for a vCPU that starts afresh: its
/// list registers, and active priorities left by an interrupt the old
/// vCPU never completed (they would mask every new one of that priority).
pub fn reset_virtual_interface(nlr: usize) {
    for i in 0..nlr {
        write_lr(i, 0);
    }
    restore_vif(&VifState::ZERO);
    by_version!(v2::enable_vif(), v3::enable_vif())
}

/// Deactivates `intid` (an SGI or PPI) on `cpu` if it is active, e.g. the
/// virtual timer's PPI left active by a vCPU that was reset mid-interrupt.
/// Only `cpu` itself can do so on GICv2 (the registers are banked).
pub fn clear_active(cpu: usize, intid: u32) {
    if intid >= 32 {
        return;
    }
    let base = by_version!(gicd(), {
        match v3::sgi_frame(cpu) {
            Some(s) => s,
            None => return,
        }
    });
    if rd(base + ISACTIVER) & (1 << intid) != 0 {
        wr(base + ICACTIVER, 1 << intid);
        dsb_sy();
    }
}

/// Routes SPI `intid` to pCPU `pcpu` (affinity `aff`), level-triggered,
/// group 1, and enables it: a passed-through device's interrupt. False
/// (left disabled) if it cannot reach that pCPU: not an SPI, or a GICv2
/// CPU interface that is not up.
#[must_use]
pub fn route_spi(intid: u32, pcpu: usize, aff: u64) -> bool {
    if !is_spi(intid) {
        return false;
    }
    let d = gicd();
    let n = intid as usize;
    let reachable = by_version!(v2::target(n, pcpu), {
        v3::route(n, aff);
        true
    });
    if !reachable {
        return false;
    }
    let cfg = d + ICFGR + 4 * (n / 16);
    wr(cfg, rd(cfg) & !(0b10 << (2 * (n % 16))));
    let pr = d + IPRIORITYR + (n & !3);
    wr(pr, (rd(pr) & !(0xff << (8 * (n % 4)))) | (0xa0 << (8 * (n % 4))));
    wr(d + IGROUPR + 4 * (n / 32), rd(d + IGROUPR + 4 * (n / 32)) | (1 << (n % 32)));
    wr(d + ISENABLER + 4 * (n / 32), 1 << (n % 32));
    dsb_sy();
    true
}

/// Enables or disables SPI `intid` at the distributor: a passed-through
/// interrupt is off while its owner is not running, so a level-high line
/// nobody will service cannot keep a pCPU taking it.
pub fn set_spi_enabled(intid: u32, on: bool) {
    if !is_spi(intid) {
        return;
    }
    let (w, b) = (intid as usize / 32, intid % 32);
    wr(gicd() + if on { ISENABLER } else { ICENABLER } + 4 * w, 1 << b);
    dsb_sy();
}

/// Deactivates SPI `intid` if it is active (its owner was reset).
pub fn clear_active_spi(intid: u32) {
    if !is_spi(intid) {
        return;
    }
    let d = gicd();
    let (w, b) = (intid as usize / 32, intid % 32);
    if rd(d + ISACTIVER + 4 * w) & (1 << b) != 0 {
        wr(d + ICACTIVER + 4 * w, 1 << b);
        dsb_sy();
    }
}
