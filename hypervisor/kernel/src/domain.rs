//! Domains and their vCPUs: the state shared between pCPUs, created once at
//! boot from the bundle and never allocated again.

use crate::arch::memory::DomainRam;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use hv_core::bundle::{DomainDesc, MAX_DOMAINS, MAX_VCPUS};
use hv_core::lifecycle::FaultWatch;
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

pub struct Vcpu {
    pub state: AtomicU8,
    pub entry: AtomicU64,
    pub context: AtomicU64,
    /// The domain is going down: stop at the next exit.
    pub stop: AtomicBool,
    /// pCPU this vCPU is pinned to (`usize::MAX`: none).
    pub pcpu: usize,
    pub faults: spin::Mutex<FaultWatch>,
    pub setway: spin::Mutex<SetWay>,
}

pub struct Domain {
    pub desc: DomainDesc<'static>,
    /// Its RAM; `None` for a domain refused at boot (never started).
    pub ram: Option<DomainRam>,
    pub vmid: u16,
    pub s2_root: u64,
    pub state: AtomicU8,
    pub restarts: AtomicU32,
    /// Aborts logged in this incarnation (logging is rate-limited).
    pub aborts_logged: AtomicU32,
    pub vgic: spin::Mutex<VGic>,
    pub vuart: spin::Mutex<VUart>,
    pub vcpus: heapless::Vec<Vcpu, MAX_VCPUS>,
    /// Counter value at the domain's (re)start: its virtual time zero.
    pub epoch: AtomicU64,
    /// A restart's scrub: the offset of the next chunk to zero, or
    /// `NO_SCRUB`. Only vCPU 0's pCPU advances it (`scrub_step`).
    pub scrub_at: AtomicU64,
    /// Set/way emulation was reported (once per domain).
    pub setway_logged: AtomicBool,
}

pub const NO_SCRUB: u64 = u64::MAX;

/// A restart scrubs this much between looks at the clock: on a shared pCPU
/// the work is cut at the scheduler's next decision and charged to the
/// restarting domain's vCPU 0, so no other vCPU waits for it.
const RESTART_CHUNK: u64 = 256 << 10;

impl Domain {
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
    /// or the counter passes `until`; once done, loads the pristine image,
    /// initrd and device tree. Returns whether the RAM is ready to run.
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
            if at >= ram.size() {
                ram.copy_blobs(&self.blobs());
                self.scrub_at.store(NO_SCRUB, Ordering::Release);
                return true;
            }
            ram.zero(at, RESTART_CHUNK);
            self.scrub_at.store(at + RESTART_CHUNK, Ordering::Release);
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

    pub fn ram_contains(&self, ipa: u64) -> bool {
        let base = self.desc.ram_ipa;
        ipa >= base && ipa - base < self.desc.mem_size
    }
}

pub struct System {
    pub domains: heapless::Vec<Domain, MAX_DOMAINS>,
    pub placement: Placement,
    pub trap_wfi: bool,
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

/// Kicks the pCPUs of the vCPUs in `mask` (bit i = vCPU i of `dom`), except
/// `self_cpu`, which checks its own work before returning to its guest.
pub fn kick_vcpus(dom: &Domain, mask: u8, self_cpu: usize) {
    for (i, v) in dom.vcpus.iter().enumerate() {
        if mask & (1 << i) != 0 && v.pcpu != self_cpu && v.pcpu < system().ncpus {
            crate::arch::gic::kick(system().cpu_aff[v.pcpu]);
        }
    }
}

pub fn all_destroyed() -> bool {
    system().domains.iter().all(|d| d.state.load(Ordering::Acquire) == DOM_DESTROYED)
}
