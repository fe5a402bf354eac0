//! Xen's guest ABI for the domains that are offered it (`[domain.xen]`):
//! the kernel's half of `hv_core::xen`. It owns each domain's event-channel
//! table and the places the guest registered (shared_info, vcpu_info,
//! runstate), raises events in the guest's memory and injects the upcall
//! PPI. Decoding and checking the hypercalls is `hv_core::xen`'s.
//!
//! Locks: one per domain, over its Xen state. Two are taken together only
//! for a binding between domains, lower domain index first; the vGIC's lock
//! may be taken under one, never the other way round.

use crate::arch::entry::Frame;
use crate::arch::memory::DomainRam;
use crate::arch::entry::MAX_CPUS;
use crate::arch::{context, sysreg, vcpu_regs};
use crate::console::domlog;
use crate::domain::{kick_for_irq, system, Domain, Lock};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use hv_core::bundle::{MAX_DOMAINS, MAX_VCPUS};
use hv_core::evtchn::{self, Binding, DomId, Errno, EventWords, Ports};
use hv_core::grant::{self, status as gntst, GrantEntries, MapRequest, MapTrack};
use hv_core::stage2::MemKind;
use hv_core::lifecycle::Event;
use hv_core::stage1;
use hv_core::watchdog::Watchdogs;
use hv_core::xen::{CopyPage, CopySide, GuestMemory, Services, Shutdown};
use xen_abi::guest_layout::EVTCHN_PPI;
use xen_abi::hypercall::{self as hc, hvmop, shared_info as si, vcpuop};

/// Ports a table holds: the most a description may ask for, plus port 0.
const PORTS: usize = hv_core::bundle::MAX_EVENT_CHANNELS as usize + 1;

/// One domain's Xen state; reset at every (re)start.
pub struct XenState {
    ports: Ports<PORTS>,
    /// RAM offset of its shared_info page.
    shared_info: Option<u64>,
    /// RAM offset of each vCPU's vcpu_info.
    vcpu_info: [Option<u64>; MAX_VCPUS],
    /// Guest virtual address of each vCPU's runstate area.
    runstate: [Option<u64>; MAX_VCPUS],
    /// Grant frames the guest placed (bit i: frame i).
    grant_frames: u32,
    /// SCHEDOP_watchdog timers.
    watchdogs: Watchdogs,
}

impl XenState {
    const fn new() -> Self {
        XenState { ports: Ports::new(0, 0), shared_info: None, vcpu_info: [None; MAX_VCPUS], runstate: [None; MAX_VCPUS], grant_frames: 0, watchdogs: Watchdogs::new() }
    }
}

/// Every domain's Xen state, by domain index: static, as the port tables
/// are too big to build on a stack.
static XEN: [Lock<XenState>; MAX_DOMAINS] = [const { Lock::new(XenState::new()) }; MAX_DOMAINS];

/// Grant mappings a backend may hold at once (a framebuffer and two
/// display buffers at 800x600 need about 1,500).
const MAPTRACK: usize = 2048;

/// One domain's grant mappings of others' pages, and where each sits in
/// its IPA space.
struct GrantMaps {
    track: MapTrack<MAPTRACK>,
    at: [u64; MAPTRACK],
}

// Zero-initialised (quota 0 until boot), so they live in .bss.
static MAPS: [Lock<GrantMaps>; MAX_DOMAINS] = [const { Lock::new(GrantMaps { track: MapTrack::new(0), at: [0; MAPTRACK] }) }; MAX_DOMAINS];

/// Per pCPU: the earliest watchdog deadline its EL2 timer is armed for
/// (0: none), and the domains that armed it (bit i: domain index i). A
/// domain's watchdog arms only the pCPUs its own vCPUs run on, so it never
/// interrupts another domain's dedicated pCPU.
static WD_AT: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static WD_DOMS: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];
/// Per domain: a watchdog ran out; its vCPUs shut it down at their next exit.
static WD_FIRED: [AtomicBool; MAX_DOMAINS] = [const { AtomicBool::new(false) }; MAX_DOMAINS];

fn watchdog_arm(cpu: usize, dom: usize, at: u64) {
    let Some(slot) = WD_AT.get(cpu) else { return };
    WD_DOMS[cpu].fetch_or(1 << dom, Ordering::AcqRel);
    let cur = slot.load(Ordering::Acquire);
    if cur == 0 || at < cur {
        slot.store(at, Ordering::Release);
    }
    context::arm_sched_timer_by(at);
}

/// The watchdog deadline this pCPU's timer must also serve (`u64::MAX`:
/// none): the scheduler arms for the earlier of its own and this.
pub fn watchdog_deadline(cpu: usize) -> u64 {
    match WD_AT.get(cpu).map(|a| a.load(Ordering::Acquire)) {
        Some(0) | None => u64::MAX,
        Some(at) => at,
    }
}

/// Every exit of a vCPU on `cpu`: [`watchdog_tick`], then whether `dom`
/// itself must now shut down.
pub fn watchdog_check(cpu: usize, dom: &Domain) -> bool {
    watchdog_tick(cpu);
    WD_FIRED.get(dom.index()).is_some_and(|f| f.load(Ordering::Acquire))
}

/// When this pCPU's watchdog deadline has passed, the domains that armed
/// it are checked, the expired ones marked (and their vCPUs kicked), and
/// the timer re-armed for what is left. Also run where a pCPU waits (a
/// trapped WFI, the shared pCPU's idle loop), so a guest that hangs idle
/// is caught too, and a passed deadline never keeps a waiting pCPU awake.
pub fn watchdog_tick(cpu: usize) {
    let at = watchdog_deadline(cpu);
    // Nothing armed here (the common case on a scheduler's hot path): not
    // even the counter is read.
    if at == u64::MAX {
        return;
    }
    let now = sysreg::counter();
    if now >= at {
        let mut next = u64::MAX;
        let doms = WD_DOMS[cpu].load(Ordering::Acquire);
        for (i, d) in system().domains.iter().enumerate().filter(|(i, _)| doms & 1 << i != 0) {
            let mut s = XEN[i].lock();
            if s.watchdogs.expired(now) {
                s.watchdogs.clear();
                // Marked under the lock a restart's reset takes: a restart
                // in between starts a clean instance.
                WD_FIRED[i].store(true, Ordering::Release);
                drop(s);
                domlog!(d, life_log, "{}: watchdog expired", d.name());
                crate::domain::kick_vcpus(d, u8::MAX, cpu);
            } else if let Some(n) = s.watchdogs.next() {
                next = next.min(n);
            } else {
                WD_DOMS[cpu].fetch_and(!(1 << i), Ordering::AcqRel);
            }
        }
        WD_AT[cpu].store(if next == u64::MAX { 0 } else { next }, Ordering::Release);
        if next != u64::MAX {
            context::arm_sched_timer_by(next);
        }
    }
}

/// One side of a grant copy, held: where its bytes are, and the maptrack
/// handle that pins a grant.
struct Pinned {
    ram: DomainRam,
    offset: u64,
    held: Option<(u32, &'static Domain)>,
}

fn unpin(m: &mut GrantMaps, p: Pinned) {
    if let Some((handle, granter)) = p.held {
        let mut entries = GuestGrants::of(granter);
        let _ = grant::unmap(&mut m.track, handle, entries.as_mut().map(|e| e as &mut dyn GrantEntries));
    }
}

/// A granter's v1 grant table: its grant frames, in its RAM, which it
/// writes at any time. Every access is one atomic operation.
struct GuestGrants {
    ram: DomainRam,
    /// RAM offset of grant frame 0.
    base: u64,
    count: u32,
}

impl GuestGrants {
    fn of(dom: &Domain) -> Option<Self> {
        let x = dom.desc.xen()?;
        Some(GuestGrants { ram: dom.ram?, base: x.grant_ipa - dom.desc.ram_ipa, count: u32::from(x.grant_frames) * 512 })
    }
}

impl GrantEntries for GuestGrants {
    fn count(&self) -> u32 {
        self.count
    }
    fn load(&self, gref: u32) -> u64 {
        self.ram.word(self.base + u64::from(gref) * 8).map_or(0, |w| w.load(Ordering::Acquire))
    }
    fn cas(&mut self, gref: u32, old: u64, new: u64) -> Result<(), u64> {
        let Some(w) = self.ram.word(self.base + u64::from(gref) * 8) else { return Err(0) };
        w.compare_exchange(old, new, Ordering::AcqRel, Ordering::Acquire).map(|_| ())
    }
}

/// Points `mapper`'s page at `ipa` at host page `pa` (or back at its own
/// RAM when `pa` is `None`), break-before-make: the old page is out of
/// every TLB before the new one is mapped, so once this returns no vCPU
/// of the mapper can reach the old page any more.
fn remap(mapper: &Domain, ipa: u64, pa: Option<u64>, kind: MemKind) -> bool {
    let own = mapper.desc.mem_pa + (ipa - mapper.desc.ram_ipa);
    let mut live = mapper.s2_live.lock();
    let Some((s2, pool)) = live.as_mut() else { return false };
    if s2.break_page(pool, ipa).is_err() {
        return false;
    }
    flush(mapper);
    let (pa, kind) = match pa {
        Some(pa) => (pa, kind),
        None => (own, MemKind::Ram),
    };
    let made = s2.make_page(pool, ipa, pa, kind).is_ok();
    // The new entry reaches the table walkers before anyone relies on it.
    crate::arch::vcpu_regs::publish_table_writes();
    made
}

/// A stage-2 translation fault of `dom` at `ipa` that a `remap` in
/// progress caused: after waiting for it (its lock), the page is mapped
/// again and the access only has to run again. False for a real fault.
pub fn mapped_after_remap(dom: &Domain, ipa: u64) -> bool {
    let live = dom.s2_live.lock();
    let Some((s2, pool)) = live.as_ref() else { return false };
    s2.translate(pool, ipa).is_some()
}

fn flush(dom: &Domain) {
    crate::arch::vcpu_regs::flush_tlbs_of(dom.vmid, dom.s2_root);
}

/// Tears down every grant mapping `mapper` holds of `granter`'s pages (all
/// of them when `granter` is `None`): its own pages come back, the grant
/// entries are released if the granter still runs.
fn unmap_all(mapper: &Domain, granter: Option<&Domain>) {
    let mut m = MAPS[mapper.index()].lock();
    for h in 0..MAPTRACK as u32 {
        let Some(map) = m.track.get(h) else { continue };
        if granter.is_some_and(|g| domid(g) != map.granter) {
            continue;
        }
        let at = m.at[h as usize];
        // Out of the mapper's TLBs (`remap`) before the grant is released.
        remap(mapper, at, None, MemKind::Ram);
        let owner = by_domid(map.granter).filter(|g| granter.is_none() && g.state.load(Ordering::Acquire) == crate::domain::DOM_RUNNING);
        let mut entries = owner.and_then(GuestGrants::of);
        let _ = grant::unmap(&mut m.track, h, entries.as_mut().map(|e| e as &mut dyn GrantEntries));
    }
}

/// A domain's id in Xen's ABI: its VMID (1-based), so no domain is 0.
fn domid(dom: &Domain) -> DomId {
    dom.vmid
}

/// The Xen-enabled domain with id `id`.
fn by_domid(id: DomId) -> Option<&'static Domain> {
    let d = system().domains.get((id as usize).checked_sub(1)?)?;
    d.desc.xen().is_some().then_some(d)
}

/// Prepares `dom`'s Xen state for a (re)start: its bindings to other
/// domains are closed (their ports go back to unbound, as in Xen) and its
/// table takes the description's quota. Called while none of its vCPUs
/// runs and before its RAM is scrubbed.
pub fn reset(dom: &Domain, restarting: bool) {
    let Some(x) = dom.desc.xen() else { return };
    let me = dom.index();
    // Grants first: no other domain keeps a page of this one mapped while
    // it is scrubbed, and this one's own mappings end.
    for other in system().domains.iter().filter(|o| o.desc.serves & (1 << me) != 0) {
        unmap_all(other, Some(dom));
    }
    if dom.desc.serves != 0 {
        unmap_all(dom, None);
        MAPS[me].lock().track.set_quota(MAPTRACK);
    }
    let mut from = 1;
    loop {
        let next = XEN[me].lock().ports.next_interdomain(from);
        let Some(port) = next else { break };
        from = port + 1;
        let peer = evtchn::peer_of(&XEN[me].lock().ports, port).and_then(by_domid);
        match peer {
            Some(p) if p.index() != me => with_two(me, p.index(), |mine, theirs| {
                let _ = evtchn::close(&mut mine.ports, domid(dom), port, Some(&mut theirs.ports));
            }),
            _ => {}
        }
    }
    let mut s = XEN[me].lock();
    s.ports.reset(usize::from(x.event_channels), dom.desc.vcpus);
    s.shared_info = None;
    s.vcpu_info = [None; MAX_VCPUS];
    s.runstate = [None; MAX_VCPUS];
    s.grant_frames = 0;
    s.watchdogs.clear();
    WD_FIRED[me].store(false, Ordering::Release);
    if !restarting {
        // Destroyed: no ports, no store connection.
        drop(s);
        crate::store::stop(dom);
        return;
    }
    // Port 1: the store's (HVM_PARAM_STORE_EVTCHN).
    let _ = s.ports.bind_store();
    drop(s);
    crate::store::start(dom, crate::arch::sysreg::cpu_index());
}

/// Raises `dom`'s store port: the store has output for it.
pub fn raise_store(dom: &Domain, self_cpu: usize) {
    let s = XEN[dom.index()].lock();
    if let Some(port) = s.ports.store_port() {
        raise(dom, &s, port, self_cpu);
    }
}

/// Runs `f` with the Xen state of domains `a` and `b` (distinct) locked,
/// lower index first.
fn with_two<R>(a: usize, b: usize, f: impl FnOnce(&mut XenState, &mut XenState) -> R) -> R {
    if a < b {
        let mut x = XEN[a].lock();
        let mut y = XEN[b].lock();
        f(&mut x, &mut y)
    } else {
        let mut y = XEN[b].lock();
        let mut x = XEN[a].lock();
        f(&mut x, &mut y)
    }
}

/// The 2-level ABI's words of one domain, in its RAM.
struct Words<'a> {
    ram: DomainRam,
    state: &'a XenState,
}

impl Words<'_> {
    fn shared_word(&self, base: u64, port: u32) -> Option<&'static core::sync::atomic::AtomicU64> {
        self.ram.word(self.state.shared_info? + base + u64::from(port / 64) * 8)
    }

    /// vCPU `v`'s vcpu_info: the registered one, or for vCPU 0 before it
    /// registers, the slot in shared_info (as Xen does).
    fn vcpu_info(&self, v: u8) -> Option<u64> {
        match self.state.vcpu_info.get(v as usize).copied().flatten() {
            Some(at) => Some(at),
            None if (v as usize) < si::LEGACY_VCPUS => self.state.shared_info,
            None => None,
        }
    }
}

impl EventWords for Words<'_> {
    fn test_and_set_pending(&mut self, port: u32) -> bool {
        let bit = 1u64 << (port % 64);
        // No shared_info yet: nothing can be raised; report it pending so
        // no upcall follows.
        self.shared_word(si::EVTCHN_PENDING, port).map_or(true, |w| w.fetch_or(bit, Ordering::SeqCst) & bit != 0)
    }
    fn is_pending(&self, port: u32) -> bool {
        self.shared_word(si::EVTCHN_PENDING, port).is_some_and(|w| w.load(Ordering::SeqCst) & 1 << (port % 64) != 0)
    }
    fn is_masked(&self, port: u32) -> bool {
        self.shared_word(si::EVTCHN_MASK, port).map_or(true, |w| w.load(Ordering::SeqCst) & 1 << (port % 64) != 0)
    }
    fn test_and_clear_mask(&mut self, port: u32) -> bool {
        let bit = 1u64 << (port % 64);
        self.shared_word(si::EVTCHN_MASK, port).is_some_and(|w| w.fetch_and(!bit, Ordering::SeqCst) & bit != 0)
    }
    fn test_and_set_selector(&mut self, vcpu: u8, word: u32) -> bool {
        let bit = 1u64 << (word % 64);
        let w = self.vcpu_info(vcpu).and_then(|at| self.ram.word(at + si::PENDING_SEL));
        w.map_or(true, |w| w.fetch_or(bit, Ordering::SeqCst) & bit != 0)
    }
    fn test_and_set_upcall(&mut self, vcpu: u8) -> bool {
        let b = self.vcpu_info(vcpu).and_then(|at| self.ram.byte(at + si::UPCALL_PENDING));
        b.map_or(true, |b| b.swap(1, Ordering::SeqCst) != 0)
    }
}

/// Raises `port` of domain `dom` (whose state `s` is locked): the guest's
/// bits, then the upcall PPI on the port's vCPU if it went 0 to 1. A
/// domain that does not run (preserved, going down) is not written.
fn raise(dom: &Domain, s: &XenState, port: u32, self_cpu: usize) {
    let Some(ram) = dom.ram else { return };
    if dom.state.load(Ordering::Acquire) != crate::domain::DOM_RUNNING {
        return;
    }
    let vcpu = s.ports.vcpu(port);
    if evtchn::raise(&mut Words { ram, state: s }, port, vcpu) {
        upcall(dom, vcpu, self_cpu);
    }
}

fn upcall(dom: &Domain, vcpu: u8, self_cpu: usize) {
    let (_, kick) = dom.vgic(|g| g.inject(vcpu as usize, EVTCHN_PPI, false));
    kick_for_irq(dom, kick, self_cpu);
}

/// A hypercall (HVC #0xEA1) from vCPU `v` of `dom`, which is offered the
/// ABI: carried out, its result in x0. A shutdown it asked for runs last.
pub fn hypercall(cpu: usize, dom: &'static Domain, v: usize, frame: &mut Frame) {
    let Some(ram) = dom.ram else {
        frame.set_result((-hc::ENOSYS) as u64);
        return;
    };
    let mut mem = CallerMemory { ram, ram_ipa: dom.desc.ram_ipa, regs: vcpu_regs::stage1_regs() };
    let mut sv = Caller { dom, v, cpu, shutdown: None };
    let (nr, args) = frame.xen_hypercall();
    frame.set_result(hv_core::xen::hypercall(nr, args, &mut mem, &mut sv) as u64);
    if let Some(why) = sv.shutdown {
        domlog!(dom, life_log, "{}: SCHEDOP_shutdown ({:?})", dom.name(), why);
        let event = match why {
            Shutdown::PowerOff => Event::PowerOff,
            Shutdown::Reboot => Event::Reboot,
            Shutdown::Crash | Shutdown::Watchdog => Event::Crash,
        };
        crate::vcpu::shutdown(cpu, dom, v, event, frame);
    }
}

/// The calling vCPU's memory by virtual address: its stage 1 walked in
/// software (`hv_core::stage1`), then its RAM.
struct CallerMemory {
    ram: DomainRam,
    ram_ipa: u64,
    regs: stage1::Regs,
}

impl CallerMemory {
    /// The RAM offset of `va`, if it translates (and is writable, if asked).
    fn offset(&self, va: u64, write: bool) -> Option<u64> {
        let read = |ipa: u64| {
            let mut b = [0; 8];
            (ipa % 8 == 0 && self.ram.read(ipa.checked_sub(self.ram_ipa)?, &mut b)).then(|| u64::from_le_bytes(b))
        };
        let t = stage1::translate(&self.regs, va, read).ok()?;
        if write && !t.writable {
            return None;
        }
        let off = t.ipa.checked_sub(self.ram_ipa)?;
        (off < self.ram.size()).then_some(off)
    }

    /// `va..va+len` as (RAM offset, length) pieces split at pages.
    fn pieces(&self, va: u64, len: usize, write: bool, mut each: impl FnMut(u64, usize, usize) -> bool) -> bool {
        let mut done = 0;
        while done < len {
            let Some(at) = va.checked_add(done as u64) else { return false };
            let n = (len - done).min(4096 - (at % 4096) as usize);
            let Some(off) = self.offset(at, write) else { return false };
            if !each(off, done, n) {
                return false;
            }
            done += n;
        }
        true
    }
}

impl GuestMemory for CallerMemory {
    fn read(&self, va: u64, buf: &mut [u8]) -> bool {
        let ram = self.ram;
        self.pieces(va, buf.len(), false, |off, at, n| ram.read(off, &mut buf[at..at + n]))
    }

    fn write(&mut self, va: u64, data: &[u8]) -> bool {
        // Translate every piece first, so a fault writes nothing.
        if !self.pieces(va, data.len(), true, |_, _, _| true) {
            return false;
        }
        let ram = self.ram;
        self.pieces(va, data.len(), true, |off, at, n| ram.write(off, &data[at..at + n]))
    }
}

/// The calling vCPU, as `hv_core::xen` sees the hypervisor.
struct Caller {
    dom: &'static Domain,
    v: usize,
    cpu: usize,
    shutdown: Option<Shutdown>,
}

impl Caller {
    fn me(&self) -> usize {
        self.dom.index()
    }

    /// The RAM offset of guest frame `gfn` if it is RAM the guest's own
    /// device tree declares (not its Xen pages).
    fn ram_page(&self, gfn: u64) -> Result<u64, Errno> {
        let visible = self.dom.desc.mem_size - self.dom.desc.xen().map_or(0, |x| x.size);
        let off = gfn.checked_mul(4096).and_then(|ipa| ipa.checked_sub(self.dom.desc.ram_ipa));
        off.filter(|&o| o < visible).ok_or(Errno(-hc::EINVAL))
    }

    /// Least privilege: a domain maps another's pages only if that one is a
    /// frontend it serves, and only while it runs with its memory in place
    /// (checked under the mapper's maptrack lock, which a restart's
    /// teardown takes too).
    fn may_map(&self, granter: &Domain) -> bool {
        self.dom.desc.serves & (1 << granter.index()) != 0
            && granter.state.load(Ordering::Acquire) == crate::domain::DOM_RUNNING
            && granter.scrub_at.load(Ordering::Acquire) == crate::domain::NO_SCRUB
    }

    /// Holds one side of a grant copy for its duration: a grant is taken
    /// as a mapping (so its granter cannot revoke it meanwhile, and the
    /// maptrack quota holds), an own frame must be the caller's RAM with
    /// no grant mapped over it.
    fn pin(&self, m: &mut GrantMaps, side: CopySide, write: bool) -> Result<Pinned, i16> {
        match side.page {
            CopyPage::Own { gfn } => {
                let off = self.ram_page(gfn).map_err(|_| gntst::BAD_PAGE)?;
                let at = gfn * 4096;
                if (0..MAPTRACK).any(|h| m.track.get(h as u32).is_some() && m.at[h] == at) {
                    return Err(gntst::BAD_PAGE);
                }
                let ram = self.dom.ram.ok_or(gntst::GENERAL_ERROR)?;
                Ok(Pinned { ram, offset: off + u64::from(side.offset), held: None })
            }
            CopyPage::Grant { dom, gref } => {
                let granter = by_domid(dom).ok_or(gntst::BAD_DOMAIN)?;
                let allowed = self.may_map(granter);
                let mut entries = GuestGrants::of(granter).ok_or(gntst::BAD_DOMAIN)?;
                let visible = granter.desc.mem_size - granter.desc.xen().map_or(0, |x| x.size);
                let frames = granter.desc.ram_ipa >> 12..(granter.desc.ram_ipa + visible) >> 12;
                let flags = grant::GNTMAP_HOST_MAP | if write { 0 } else { grant::GNTMAP_READONLY };
                let req = MapRequest { granter: dom, gref, flags };
                let (handle, frame) = grant::map(&mut m.track, domid(self.dom), req, &mut entries, frames, allowed)?;
                // No address: the copy goes through the hypervisor's own view.
                m.at[handle as usize] = u64::MAX;
                let offset = u64::from(frame) * 4096 - granter.desc.ram_ipa + u64::from(side.offset);
                Ok(Pinned { ram: entries.ram, offset, held: Some((handle, granter)) })
            }
        }
    }

    fn runstate_write(&self, va: u64) {
        // Best effort, as in Xen: a runstate area that does not translate
        // is skipped. It reads "running since registration".
        let Some(ram) = self.dom.ram else { return };
        let mut mem = CallerMemory { ram, ram_ipa: self.dom.desc.ram_ipa, regs: vcpu_regs::stage1_regs() };
        let mut b = [0u8; vcpuop::RUNSTATE_INFO_SIZE];
        b[0..4].copy_from_slice(&vcpuop::RUNSTATE_RUNNING.to_le_bytes());
        b[8..16].copy_from_slice(&now_ns().to_le_bytes());
        let _ = mem.write(va, &b);
    }
}

fn now_ns() -> u64 {
    let freq = sysreg::counter_hz().max(1);
    (u128::from(sysreg::counter()) * 1_000_000_000 / u128::from(freq)) as u64
}

impl Services for Caller {
    fn domid(&self) -> DomId {
        domid(self.dom)
    }

    fn nr_vcpus(&self) -> u32 {
        u32::from(self.dom.desc.vcpus)
    }

    fn map_shared_info(&mut self, gfn: u64) -> Result<(), Errno> {
        let off = self.ram_page(gfn)?;
        XEN[self.me()].lock().shared_info = Some(off);
        Ok(())
    }

    fn map_grant_frame(&mut self, idx: u64, gfn: u64) -> Result<(), Errno> {
        // The frames are fixed pages at the top of the domain's RAM (see
        // `bundle::XenPages`): frame `idx` can only be where it already is.
        let x = self.dom.desc.xen().ok_or(Errno(-hc::EINVAL))?;
        if idx >= u64::from(x.grant_frames) || gfn.checked_mul(4096) != Some(x.grant_ipa + idx * 4096) {
            return Err(Errno(-hc::EINVAL));
        }
        XEN[self.me()].lock().grant_frames |= 1 << idx;
        Ok(())
    }

    fn grant_frames(&self) -> (u32, u32) {
        let max = self.dom.desc.xen().map_or(0, |x| u32::from(x.grant_frames));
        // All of them exist from boot.
        (max, max)
    }

    fn register_vcpu_info(&mut self, vcpu: u32, gfn: u64, offset: u32) -> Result<(), Errno> {
        let off = self.ram_page(gfn)? + u64::from(offset);
        let mut s = XEN[self.me()].lock();
        let slot = s.vcpu_info.get_mut(vcpu as usize).ok_or(Errno(-hc::EINVAL))?;
        if slot.is_some() {
            // Xen refuses a second registration; Linux never asks twice.
            return Err(Errno(-hc::EINVAL));
        }
        *slot = Some(off);
        // Events pending in the legacy slot carry over (vCPU 0).
        let Some(ram) = self.dom.ram else { return Ok(()) };
        if let (Some(si_off), 0) = (s.shared_info, vcpu) {
            let sel = ram.word(si_off + si::PENDING_SEL).map_or(0, |w| w.swap(0, Ordering::SeqCst));
            if sel != 0 {
                if let Some(w) = ram.word(off + si::PENDING_SEL) {
                    w.fetch_or(sel, Ordering::SeqCst);
                }
                if let Some(b) = ram.byte(off + si::UPCALL_PENDING) {
                    b.store(1, Ordering::SeqCst);
                }
                drop(s);
                upcall(self.dom, 0, self.cpu);
            }
        }
        Ok(())
    }

    fn register_runstate(&mut self, vcpu: u32, va: u64) -> Result<(), Errno> {
        let mut s = XEN[self.me()].lock();
        *s.runstate.get_mut(vcpu as usize).ok_or(Errno(-hc::EINVAL))? = Some(va);
        drop(s);
        if vcpu as usize == self.v {
            self.runstate_write(va);
        }
        Ok(())
    }

    fn param(&self, index: u32) -> Result<u64, Errno> {
        Ok(match index {
            // The upcall PPI: type 2 (PPI) in bits 63:56, flags 2 (active low).
            hvmop::PARAM_CALLBACK_IRQ => 2 << 56 | 2 << 8 | u64::from(EVTCHN_PPI),
            hvmop::PARAM_STORE_PFN => self.dom.desc.xen().map_or(0, |x| x.store_ipa >> 12),
            hvmop::PARAM_STORE_EVTCHN => u64::from(XEN[self.me()].lock().ports.store_port().unwrap_or(0)),
            // No PV console: Linux then skips hvc (the vPL011 is the console).
            _ => 0,
        })
    }

    fn shutdown(&mut self, why: Shutdown) {
        self.shutdown = Some(why);
    }

    fn yield_now(&mut self) {}

    fn watchdog(&mut self, id: u32, timeout_s: u32) -> Result<u32, Errno> {
        let freq = sysreg::counter_hz().max(1);
        let (r, next) = {
            let mut s = XEN[self.me()].lock();
            let r = s.watchdogs.op(id, timeout_s, sysreg::counter(), freq);
            (r, s.watchdogs.next())
        };
        if let Some(at) = next {
            watchdog_arm(self.cpu, self.me(), at);
        }
        r
    }

    fn alloc_unbound(&mut self, remote: DomId) -> Result<u32, Errno> {
        if remote != domid(self.dom) && by_domid(remote).is_none() {
            return Err(Errno(-hc::ESRCH));
        }
        XEN[self.me()].lock().ports.alloc_unbound(remote)
    }

    fn bind_interdomain(&mut self, remote: DomId, remote_port: u32) -> Result<u32, Errno> {
        let peer = by_domid(remote).ok_or(Errno(-hc::ESRCH))?;
        if peer.index() == self.me() {
            return Err(Errno(-hc::EINVAL));
        }
        // A domain going down or restarting takes no new bindings (its
        // table is being reset).
        if peer.state.load(Ordering::Acquire) != crate::domain::DOM_RUNNING {
            return Err(Errno(-hc::ESRCH));
        }
        let me = domid(self.dom);
        let port = with_two(self.me(), peer.index(), |mine, theirs| {
            // Again under its lock: its reset may have begun meanwhile.
            if peer.state.load(Ordering::Acquire) != crate::domain::DOM_RUNNING {
                return Err(Errno(-hc::ESRCH));
            }
            evtchn::bind_interdomain(&mut mine.ports, me, &mut theirs.ports, remote, remote_port)
        })?;
        // Xen raises the new local port, so a waiter notices the binding.
        raise(self.dom, &XEN[self.me()].lock(), port, self.cpu);
        Ok(port)
    }

    fn bind_virq(&mut self, virq: u32, vcpu: u32) -> Result<u32, Errno> {
        XEN[self.me()].lock().ports.bind_virq(virq, vcpu)
    }

    fn close(&mut self, port: u32) -> Result<(), Errno> {
        let me = domid(self.dom);
        let peer = evtchn::peer_of(&XEN[self.me()].lock().ports, port).and_then(by_domid);
        match peer {
            Some(p) if p.index() != self.me() => with_two(self.me(), p.index(), |mine, theirs| {
                // Re-checked under both locks: the binding may have changed.
                match evtchn::peer_of(&mine.ports, port) {
                    Some(r) if r == domid(p) => evtchn::close(&mut mine.ports, me, port, Some(&mut theirs.ports)),
                    Some(_) => Err(Errno(-hc::EAGAIN)),
                    None => evtchn::close(&mut mine.ports, me, port, None),
                }
            }),
            // No other Xen domain at the far end (bind_interdomain never
            // makes one): a port of our own, closed alone.
            _ => evtchn::close(&mut XEN[self.me()].lock().ports, me, port, None),
        }
    }

    fn send(&mut self, port: u32) -> Result<(), Errno> {
        // The lock is released before the store is kicked (it raises this
        // domain's port, taking this lock again).
        let binding = XEN[self.me()].lock().ports.binding(port);
        match binding {
            Binding::Store => {
                crate::store::kick(self.dom, self.cpu);
                return Ok(());
            }
            // Nobody at the far end yet: Xen drops the event.
            Binding::Unbound { .. } => return Ok(()),
            _ => {}
        }
        let (remote, rport) = evtchn::send_target(&XEN[self.me()].lock().ports, port)?;
        let peer = by_domid(remote).ok_or(Errno(-hc::EINVAL))?;
        let s = XEN[peer.index()].lock();
        // Still bound back to us? (The peer may have closed meanwhile.)
        if s.ports.binding(rport) != (Binding::Interdomain { remote: domid(self.dom), port }) {
            return Ok(());
        }
        raise(peer, &s, rport, self.cpu);
        Ok(())
    }

    fn unmask(&mut self, port: u32) -> Result<(), Errno> {
        let Some(ram) = self.dom.ram else { return Ok(()) };
        let s = XEN[self.me()].lock();
        if s.ports.binding(port) == Binding::Free {
            return Err(Errno(-hc::EINVAL));
        }
        let vcpu = s.ports.vcpu(port);
        if evtchn::unmask(&mut Words { ram, state: &s }, port, vcpu) {
            drop(s);
            upcall(self.dom, vcpu, self.cpu);
        }
        Ok(())
    }

    fn status(&self, port: u32) -> Result<(Binding, u32), Errno> {
        let s = XEN[self.me()].lock();
        if port as usize >= PORTS {
            return Err(Errno(-hc::EINVAL));
        }
        Ok((s.ports.binding(port), u32::from(s.ports.vcpu(port))))
    }

    fn bind_vcpu(&mut self, port: u32, vcpu: u32) -> Result<(), Errno> {
        XEN[self.me()].lock().ports.bind_vcpu(port, vcpu)
    }

    fn own_frame(&self, gfn: u64) -> bool {
        self.ram_page(gfn).is_ok()
    }

    fn grant_map(&mut self, host_addr: u64, flags: u32, gref: u32, dom: DomId) -> Result<(u32, u64), i16> {
        let granter = by_domid(dom).ok_or(gntst::BAD_DOMAIN)?;
        // Its own page must be at `host_addr` (not another grant already).
        self.ram_page(host_addr >> 12).map_err(|_| gntst::GENERAL_ERROR)?;
        if host_addr % 4096 != 0 {
            return Err(gntst::GENERAL_ERROR);
        }
        let mut m = MAPS[self.me()].lock();
        if (0..MAPTRACK).any(|h| m.track.get(h as u32).is_some() && m.at[h] == host_addr) {
            return Err(gntst::GENERAL_ERROR);
        }
        let allowed = self.may_map(granter);
        let mut entries = GuestGrants::of(granter).ok_or(gntst::BAD_DOMAIN)?;
        let visible = granter.desc.mem_size - granter.desc.xen().map_or(0, |x| x.size);
        let frames = granter.desc.ram_ipa >> 12..(granter.desc.ram_ipa + visible) >> 12;
        let req = MapRequest { granter: dom, gref, flags };
        let (handle, frame) = grant::map(&mut m.track, domid(self.dom), req, &mut entries, frames, allowed)?;
        let pa = granter.desc.mem_pa + (u64::from(frame) * 4096 - granter.desc.ram_ipa);
        let kind = if flags & grant::GNTMAP_READONLY != 0 { MemKind::RamReadOnly } else { MemKind::RamNoExec };
        if !remap(self.dom, host_addr, Some(pa), kind) {
            let _ = grant::unmap(&mut m.track, handle, Some(&mut entries));
            return Err(gntst::GENERAL_ERROR);
        }
        m.at[handle as usize] = host_addr;
        // The bus address is the IPA: guest frames are not machine frames.
        Ok((handle, host_addr))
    }

    fn map_foreign(&mut self, dom: DomId, gfn: u64, at: u64) -> i32 {
        const EPERM: i32 = -(hc::EPERM as i32);
        const EINVAL: i32 = -(hc::EINVAL as i32);
        let Some(granter) = by_domid(dom) else { return -(hc::ESRCH as i32) };
        let Ok(_) = self.ram_page(at) else { return EINVAL };
        let host_addr = at * 4096;
        let visible = granter.desc.mem_size - granter.desc.xen().map_or(0, |x| x.size);
        let frames = granter.desc.ram_ipa >> 12..(granter.desc.ram_ipa + visible) >> 12;
        let Ok(frame) = u32::try_from(gfn) else { return EINVAL };
        if !frames.contains(&gfn) {
            return EINVAL;
        }
        let mut m = MAPS[self.me()].lock();
        // Only a legacy vfb's backend, only of that frontend's RAM: fbif
        // hands its backend frame numbers, not grants.
        if self.dom.desc.foreign & (1 << granter.index()) == 0 || !self.may_map(granter) {
            return EPERM;
        }
        if (0..MAPTRACK).any(|h| m.track.get(h as u32).is_some() && m.at[h] == host_addr) {
            return -(hc::EEXIST as i32);
        }
        let Ok(handle) = grant::map_foreign(&mut m.track, dom, frame) else { return -(hc::ENOSPC as i32) };
        let pa = granter.desc.mem_pa + (gfn * 4096 - granter.desc.ram_ipa);
        if !remap(self.dom, host_addr, Some(pa), MemKind::RamNoExec) {
            let _ = grant::unmap(&mut m.track, handle, None);
            return EINVAL;
        }
        m.at[handle as usize] = host_addr;
        0
    }

    fn unmap_foreign(&mut self, at: u64) -> Result<(), Errno> {
        let host_addr = at.checked_mul(4096).ok_or(Errno(-hc::EINVAL))?;
        let mut m = MAPS[self.me()].lock();
        let found = (0..MAPTRACK).find(|&h| m.track.get(h as u32).is_some_and(|x| x.gref == grant::FOREIGN) && m.at[h] == host_addr);
        // A frame with no foreign mapping stays the domain's own page.
        let Some(h) = found else { return Ok(()) };
        remap(self.dom, host_addr, None, MemKind::Ram);
        let _ = grant::unmap(&mut m.track, h as u32, None);
        Ok(())
    }

    fn grant_copy(&mut self, src: CopySide, dst: CopySide, len: u16) -> i16 {
        let mut m = MAPS[self.me()].lock();
        let s = match self.pin(&mut m, src, false) {
            Ok(p) => p,
            Err(st) => return st,
        };
        let d = match self.pin(&mut m, dst, true) {
            Ok(p) => p,
            Err(st) => {
                unpin(&mut m, s);
                return st;
            }
        };
        let mut buf = [0u8; 256];
        let mut done = 0u64;
        let mut ok = true;
        while ok && done < u64::from(len) {
            let n = (u64::from(len) - done).min(buf.len() as u64);
            let chunk = &mut buf[..n as usize];
            ok = s.ram.read(s.offset + done, chunk) && d.ram.write(d.offset + done, chunk);
            done += n;
        }
        unpin(&mut m, s);
        unpin(&mut m, d);
        if ok {
            gntst::OKAY
        } else {
            gntst::GENERAL_ERROR
        }
    }

    fn grant_unmap(&mut self, host_addr: u64, handle: u32) -> i16 {
        let mut m = MAPS[self.me()].lock();
        let Some(map) = m.track.get(handle) else { return gntst::BAD_HANDLE };
        if m.at[handle as usize] != host_addr {
            return gntst::GENERAL_ERROR;
        }
        // Out of every TLB (`remap`) before the grant is released.
        remap(self.dom, host_addr, None, MemKind::Ram);
        let mut entries = by_domid(map.granter).and_then(GuestGrants::of);
        let r = grant::unmap(&mut m.track, handle, entries.as_mut().map(|e| e as &mut dyn GrantEntries));
        r.map_or_else(|st| st, |_| gntst::OKAY)
    }
}
