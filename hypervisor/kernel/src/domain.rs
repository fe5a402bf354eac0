//! Domains and their vCPUs: the state shared between pCPUs, created once at
//! boot from the bundle and never allocated again.

use crate::arch::memory::{DomainRam, Stage2Root};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use hv_core::bundle::{DomainDesc, MAX_DOMAINS, MAX_VCPUS};
use hv_core::lifecycle::FaultWatch;
use hv_core::log_budget::LogBudget;
use hv_core::setway::SetWay;
use hv_core::sched::Placement;
use hv_core::vgic::VGic;
use hv_core::vuart::VUart;

/// vCPU power states, as PSCI AFFINITY_INFO reports them.
pub const VCPU_OFF: u8 = 0;
pub const VCPU_ON_PENDING: u8 = 1;
pub const VCPU_RUNNING: u8 = 2;
/// A CPU_ON is writing the entry point; becomes ON_PENDING at once.
pub const VCPU_CLAIMED: u8 = 3;

/// Domain states.
pub const DOM_RUNNING: u8 = 0;
pub const DOM_STOPPING: u8 = 1;
pub const DOM_DESTROYED: u8 = 2;
pub const DOM_PRESERVED: u8 = 3;

/// Every lock a domain's state sits under: a ticket lock, so no vCPU can
/// starve another of it (test-and-set locks favour whoever spins fastest).
pub type Lock<T> = spin::mutex::TicketMutex<T>;

pub struct Vcpu {
    pub state: AtomicU8,
    /// Where the next start begins, and what it finds in its first
    /// argument register; set by `arm_image_boot` or `arm_cpu_on` before
    /// `state` becomes ON_PENDING.
    pub entry: AtomicU64,
    pub context: AtomicU64,
    /// The next start is the kernel image's (boot, restart: `context` is
    /// its device tree), not a PSCI CPU_ON's (`context` the caller's).
    pub boots_image: AtomicBool,
    /// The domain is going down: stop at the next exit.
    pub stop: AtomicBool,
    /// pCPU this vCPU is pinned to (`usize::MAX`: none).
    pub pcpu: usize,
    pub faults: Lock<FaultWatch>,
    pub setway: Lock<SetWay>,
    /// It has an enabled pending interrupt not yet in a list register.
    /// Published after every vGIC change (`Domain::vgic`), so a scheduler
    /// reads it without taking the domain's lock.
    pub deliverable: AtomicBool,
    /// It has an enabled pending interrupt its pCPU has not flushed yet
    /// (`VGic::needs_flush`): set means it was kicked already.
    pub unflushed: AtomicBool,
    /// It waits in WFI on a shared pCPU: an interrupt must kick that pCPU.
    pub waiting: AtomicBool,
}

impl Vcpu {
    /// Arms the next start as the domain's kernel image boots (vCPU 0 at
    /// boot or restart). Published by the ON_PENDING store that follows.
    pub fn arm_image_boot(&self, entry: u64, device_tree: u64) {
        self.entry.store(entry, Ordering::Relaxed);
        self.context.store(device_tree, Ordering::Relaxed);
        self.boots_image.store(true, Ordering::Relaxed);
    }

    /// Arms the next start as PSCI CPU_ON asks, whichever vCPU it is
    /// (vCPU 0 too, after its CPU_OFF).
    pub fn arm_cpu_on(&self, entry: u64, context: u64) {
        self.entry.store(entry, Ordering::Relaxed);
        self.context.store(context, Ordering::Relaxed);
        self.boots_image.store(false, Ordering::Relaxed);
    }
}

pub struct Domain {
    pub desc: DomainDesc<'static>,
    /// Its RAM; `None` for a domain refused at boot (never started).
    pub ram: Option<DomainRam>,
    pub vmid: u16,
    pub s2_root: Stage2Root,
    /// Its stage-2 tables and their pool, kept for a domain that serves
    /// devices: granted pages replace its own one page at a time.
    pub s2_live: Lock<Option<(hv_core::stage2::Stage2, crate::arch::memory::TablePool)>>,
    pub state: AtomicU8,
    pub restarts: AtomicU32,
    /// Log lines its aborts may cause, and its lifecycle (crashes,
    /// restarts, traps worth a word): budgets for the domain's whole life,
    /// so a guest that faults or restarts in a loop cannot flood the log.
    pub abort_log: Lock<LogBudget>,
    pub life_log: Lock<LogBudget>,
    /// Use through `Domain::vgic`, which publishes what became deliverable.
    vgic: Lock<VGic>,
    pub vuart: Lock<VUart>,
    pub vcpus: heapless::Vec<Vcpu, MAX_VCPUS>,
    /// Counter value at the domain's (re)start: its virtual time zero.
    pub epoch: AtomicU64,
    /// A restart's scrub: the offset of the next chunk to zero, or
    /// `NO_SCRUB`. Only vCPU 0's pCPU advances it (`scrub_step`).
    pub scrub_at: AtomicU64,
    /// Set/way emulation was reported (once per domain).
    pub setway_logged: AtomicBool,
    /// A broken xenstore ring was reported (once per domain: a guest that
    /// breaks it on every restart must not crowd its lifecycle lines out).
    pub store_break_logged: AtomicBool,
    /// Its console showed Linux's panic banner since it (re)started: its
    /// next reboot is a crash (`lifecycle::classify`).
    pub panicked: AtomicBool,
}

pub const NO_SCRUB: u64 = u64::MAX;

/// A restart scrubs this much between looks at the clock: on a shared pCPU
/// the work is cut at the scheduler's next decision and charged to the
/// restarting domain's vCPU 0, so no other vCPU waits for it.
const RESTART_CHUNK: u64 = 256 << 10;

impl Domain {
    /// A domain as boot creates it: destroyed (not started) until its
    /// memory and tables are in place; vCPU i pinned to `pcpus[i]`.
    pub fn new(desc: DomainDesc<'static>, vmid: u16, pcpus: impl Iterator<Item = Option<usize>>) -> Self {
        let freq = crate::arch::sysreg::counter_hz();
        let mut vcpus = heapless::Vec::new();
        for pcpu in pcpus.take(MAX_VCPUS) {
            let _ = vcpus.push(Vcpu {
                state: AtomicU8::new(VCPU_OFF),
                entry: AtomicU64::new(0),
                context: AtomicU64::new(0),
                boots_image: AtomicBool::new(false),
                stop: AtomicBool::new(false),
                pcpu: pcpu.unwrap_or(usize::MAX),
                faults: Lock::new(FaultWatch::default()),
                setway: Lock::new(SetWay::default()),
                deliverable: AtomicBool::new(false),
                unflushed: AtomicBool::new(false),
                waiting: AtomicBool::new(false),
            });
        }
        Domain {
            desc,
            ram: None,
            vmid,
            s2_root: Stage2Root::default(),
            s2_live: Lock::new(None),
            state: AtomicU8::new(DOM_DESTROYED),
            restarts: AtomicU32::new(0),
            abort_log: Lock::new(LogBudget::new(8, freq * 10)),
            life_log: Lock::new(LogBudget::new(16, freq / 2)),
            vgic: Lock::new(VGic::new(desc.vcpus as usize)),
            vuart: Lock::new(VUart::new()),
            vcpus,
            epoch: AtomicU64::new(crate::arch::sysreg::counter()),
            scrub_at: AtomicU64::new(NO_SCRUB),
            setway_logged: AtomicBool::new(false),
            store_break_logged: AtomicBool::new(false),
            panicked: AtomicBool::new(false),
        }
    }

    /// Its place in the system's table.
    pub fn index(&self) -> usize {
        self.vmid as usize - 1
    }

    pub fn name(&self) -> &str {
        self.desc.name
    }

    pub fn entry_ipa(&self) -> u64 {
        self.desc.ram_ipa + self.desc.load_offset
    }

    fn blobs(&self) -> [(u64, &'static [u8]); 3] {
        let d = &self.desc;
        [(d.load_offset, d.image), (d.initrd_offset, d.initrd), (d.dtb_offset, d.dtb)]
    }

    /// Goes on with a restart's scrub, a chunk at a time, until it is done
    /// or the counter passes `until`: zeroing, then loading the pristine
    /// image, initrd and device tree. Returns whether the RAM is ready to run.
    /// At least one chunk is scrubbed per call, so every call progresses.
    pub fn scrub_step(&self, until: Option<u64>) -> bool {
        loop {
            let at = self.scrub_at.load(Ordering::Acquire);
            if at == NO_SCRUB {
                return true;
            }
            let Some(ram) = self.ram else {
                self.scrub_at.store(NO_SCRUB, Ordering::Release);
                return true;
            };
            // Past the RAM's end the cursor counts the blobs' bytes copied:
            // loading the image is cut into chunks as zeroing is.
            let next = if at < ram.size() {
                ram.zero(at, RESTART_CHUNK);
                // Stop exactly at the end: the blob phase counts from there.
                (at + RESTART_CHUNK).min(ram.size())
            } else {
                let mut skip = at - ram.size();
                let mut part = None;
                for (offset, blob) in self.blobs() {
                    let len = blob.len() as u64;
                    if skip < len {
                        let n = (len - skip).min(RESTART_CHUNK);
                        part = Some((offset + skip, &blob[skip as usize..(skip + n) as usize]));
                        break;
                    }
                    skip -= len;
                }
                let Some((offset, bytes)) = part else {
                    self.scrub_at.store(NO_SCRUB, Ordering::Release);
                    return true;
                };
                ram.copy_blobs(&[(offset, bytes)]);
                at + bytes.len() as u64
            };
            self.scrub_at.store(next, Ordering::Release);
            if until.is_some_and(|t| crate::arch::sysreg::counter() >= t) {
                return false;
            }
        }
    }

    /// Loads the blobs into RAM the boot-time scrub has zeroed.
    pub fn load_blobs(&self) {
        if let Some(ram) = self.ram {
            ram.copy_blobs(&self.blobs());
        }
    }

    /// What vCPU 0 finds in x0: its device tree's address (Linux boot
    /// protocol), or 0 for a bare-metal image.
    pub fn boot_context(&self) -> u64 {
        if self.desc.dtb.is_empty() {
            0
        } else {
            self.desc.ram_ipa + self.desc.dtb_offset
        }
    }

    /// What a started vCPU `v` keeps of its last run: nothing (list
    /// registers the vGIC thought it held, fault history, set/way flush).
    pub fn forget_vcpu_state(&self, v: usize) {
        self.vgic(|g| g.forget_lrs(v));
        if let Some(vcpu) = self.vcpus.get(v) {
            *vcpu.faults.lock() = Default::default();
            *vcpu.setway.lock() = Default::default();
        }
    }

    /// Runs `f` on the domain's vGIC, then publishes each vCPU's
    /// `deliverable` and `unflushed`. Returns `f`'s result and the vCPUs
    /// that now have an interrupt to flush and had none: the only ones
    /// worth a kick (the others were kicked already, or need none).
    pub fn vgic<R>(&self, f: impl FnOnce(&mut VGic) -> R) -> (R, u8) {
        let mut g = self.vgic.lock();
        let r = f(&mut g);
        let mut newly = 0;
        for (i, vcpu) in self.vcpus.iter().enumerate() {
            // SeqCst: pairs with `waiting` (see `kick_for_irq`). A kick for
            // whatever rose: new work to flush, or new work to take.
            // Deliverable implies unflushed: one scan when nothing is pending.
            let unflushed = g.needs_flush(i);
            let deliverable = unflushed && g.has_deliverable(i);
            let was_deliverable = vcpu.deliverable.swap(deliverable, Ordering::SeqCst);
            let was_unflushed = vcpu.unflushed.swap(unflushed, Ordering::SeqCst);
            if (deliverable && !was_deliverable) || (unflushed && !was_unflushed) {
                newly |= 1 << i;
            }
        }
        (r, newly)
    }
}

/// Every domain, each built in place at boot: a table of them is too big
/// for a boot stack to hold, let alone to move.
static DOMAINS: [spin::Once<Domain>; MAX_DOMAINS] = [const { spin::Once::new() }; MAX_DOMAINS];

/// Creates domain `i` (boot, once per index).
pub fn create(i: usize, make: impl FnOnce() -> Domain) -> Option<&'static Domain> {
    Some(DOMAINS.get(i)?.call_once(make))
}

/// The domains created at boot, by index.
#[derive(Clone, Copy)]
pub struct Domains {
    count: usize,
}

impl Domains {
    pub fn new(count: usize) -> Self {
        Domains { count: count.min(MAX_DOMAINS) }
    }

    pub fn iter(&self) -> impl Iterator<Item = &'static Domain> {
        DOMAINS[..self.count].iter().filter_map(|d| d.get())
    }

    pub fn get(&self, i: usize) -> Option<&'static Domain> {
        DOMAINS[..self.count].get(i)?.get()
    }
}

impl core::ops::Index<usize> for Domains {
    type Output = Domain;
    /// For indices the placement produced (always a created domain).
    fn index(&self, i: usize) -> &Domain {
        self.get(i).expect("a domain created at boot")
    }
}

pub struct System {
    pub domains: Domains,
    pub placement: Placement,
    pub trap_wfi: bool,
    /// The board's GIC is a GICv2, and so are the guests'.
    pub gic_v2: bool,
    /// Affinity of each pCPU, for kicks.
    pub cpu_aff: [u64; hv_core::sched::MAX_PCPUS],
    pub ncpus: usize,
    /// Owner (domain index + 1; 0: none) of each passed-through SPI.
    pub spi_owner: [u8; hv_core::vgic::NR_IRQS],
}

pub static SYSTEM: spin::Once<System> = spin::Once::new();

pub fn system() -> &'static System {
    // Set on the primary CPU before any secondary starts or any guest runs.
    SYSTEM.get().expect("system initialised at boot")
}

const NO_VCPU: u16 = u16::MAX;
static CURRENT: [core::sync::atomic::AtomicU16; hv_core::sched::MAX_PCPUS] =
    [const { core::sync::atomic::AtomicU16::new(NO_VCPU) }; hv_core::sched::MAX_PCPUS];

/// Records which vCPU `cpu` has loaded (only `cpu` itself calls this).
pub fn set_current(cpu: usize, id: Option<hv_core::sched::VcpuId>) {
    let v = id.map_or(NO_VCPU, |id| (id.domain as u16) << 8 | id.vcpu as u16);
    if let Some(c) = CURRENT.get(cpu) {
        c.store(v, Ordering::Release);
    }
}

/// The vCPU this pCPU has loaded, if any.
pub fn current(cpu: usize) -> Option<(&'static Domain, usize)> {
    let v = CURRENT.get(cpu)?.load(Ordering::Acquire);
    if v == NO_VCPU {
        return None;
    }
    let d = system().domains.get((v >> 8) as usize)?;
    Some((d, (v & 0xff) as usize))
}

/// An interrupt became deliverable to the vCPUs in `mask`: kicks those that
/// need it to notice. On a null-scheduled pCPU that is every one (it runs
/// its vCPU). On a shared pCPU, only a vCPU loaded there or waiting in WFI:
/// one that is merely runnable finds its interrupt when it is loaded, so
/// it costs the vCPU running there nothing.
pub fn kick_for_irq(dom: &Domain, mask: u8, self_cpu: usize) {
    let sys = system();
    let d = dom.index();
    for (i, v) in dom.vcpus.iter().enumerate() {
        if mask & (1 << i) == 0 || v.pcpu == self_cpu || v.pcpu >= sys.ncpus {
            continue;
        }
        if sys.placement.is_rtds(v.pcpu) {
            // `deliverable` was published (SeqCst) before this load; a vCPU
            // that starts waiting after it checks `deliverable` after.
            let loaded = CURRENT.get(v.pcpu).is_some_and(|c| c.load(Ordering::SeqCst) == (d as u16) << 8 | i as u16);
            if !loaded && !v.waiting.load(Ordering::SeqCst) {
                continue;
            }
        }
        crate::arch::gic::kick(v.pcpu, sys.cpu_aff[v.pcpu]);
    }
}

/// Kicks the pCPUs of the vCPUs in `mask` (bit i = vCPU i of `dom`), except
/// `self_cpu`, which checks its own work before returning to its guest:
/// for lifecycle changes (start, stop), which every pCPU must see.
pub fn kick_vcpus(dom: &Domain, mask: u8, self_cpu: usize) {
    for (i, v) in dom.vcpus.iter().enumerate() {
        if mask & (1 << i) != 0 && v.pcpu != self_cpu && v.pcpu < system().ncpus {
            crate::arch::gic::kick(v.pcpu, system().cpu_aff[v.pcpu]);
        }
    }
}

pub fn all_destroyed() -> bool {
    system().domains.iter().all(|d| d.state.load(Ordering::Acquire) == DOM_DESTROYED)
}
