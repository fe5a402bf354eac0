//! Xen's hypercalls as an unmodified Arm Linux issues them: decoding the
//! call (number in x16, arguments in x0..x4), reading and checking its
//! argument structures from guest memory, and writing the results back.
//! What a call changes (event channels, shared pages, the domain's life) is
//! done by the kernel through [`Services`]; how guest memory is reached, by
//! [`GuestMemory`]. Both are traits so the whole layer is tested here.
//!
//! Every argument is the guest's: a structure is copied in once, every
//! field checked, and a pointer that does not translate answers EFAULT.
//! Unknown hypercalls answer ENOSYS, as Xen does.

use crate::evtchn::{Binding, DomId, Errno};
use xen_abi::hypercall::{self as hc, evtchnop, gnttabop, hvmop, schedop, vcpuop, vmassist, xenfeat, xenmem, xenver};

/// The calling vCPU's memory, by guest virtual address (hypercall
/// arguments are virtual addresses on Arm).
pub trait GuestMemory {
    /// Fills `buf` from `va`; false if any byte does not translate.
    fn read(&self, va: u64, buf: &mut [u8]) -> bool;
    /// Writes `data` at `va`; false if any byte does not translate to
    /// memory the guest may write (then nothing is written).
    fn write(&mut self, va: u64, data: &[u8]) -> bool;
}

/// Why a domain stops, as SCHEDOP_shutdown says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    PowerOff,
    Reboot,
    Crash,
    Watchdog,
}

/// What hypercalls change, carried out by the kernel for the calling vCPU.
/// Domain ids are already resolved (DOMID_SELF is the caller's own id);
/// each method checks what only the kernel can (that a frame is the
/// caller's RAM, that a domain exists) and answers Xen's errno.
pub trait Services {
    /// The caller's domain id.
    fn domid(&self) -> DomId;
    fn nr_vcpus(&self) -> u32;
    /// XENMEM_add_to_physmap of the shared_info page at `gfn`.
    fn map_shared_info(&mut self, gfn: u64) -> Result<()>;
    /// XENMEM_add_to_physmap of grant frame `idx` at `gfn`.
    fn map_grant_frame(&mut self, idx: u64, gfn: u64) -> Result<()>;
    /// Grant frames in use and the most the domain may have.
    fn grant_frames(&self) -> (u32, u32);
    fn register_vcpu_info(&mut self, vcpu: u32, gfn: u64, offset: u32) -> Result<()>;
    /// The runstate area at guest virtual address `va` (translated when
    /// written, as the guest's tables may change).
    fn register_runstate(&mut self, vcpu: u32, va: u64) -> Result<()>;
    /// An HVM parameter the hypervisor set for the caller.
    fn param(&self, index: u32) -> Result<u64>;
    fn shutdown(&mut self, why: Shutdown);
    fn yield_now(&mut self);
    /// SCHEDOP_watchdog (see [`crate::watchdog::Watchdogs::op`]).
    fn watchdog(&mut self, id: u32, timeout_s: u32) -> Result<u32>;
    fn alloc_unbound(&mut self, remote: DomId) -> Result<u32>;
    fn bind_interdomain(&mut self, remote: DomId, remote_port: u32) -> Result<u32>;
    fn bind_virq(&mut self, virq: u32, vcpu: u32) -> Result<u32>;
    fn close(&mut self, port: u32) -> Result<()>;
    fn send(&mut self, port: u32) -> Result<()>;
    fn unmask(&mut self, port: u32) -> Result<()>;
    /// What `port` is bound to and the vCPU it notifies.
    fn status(&self, port: u32) -> Result<(Binding, u32)>;
    fn bind_vcpu(&mut self, port: u32, vcpu: u32) -> Result<()>;
    /// Whether guest frame `gfn` is RAM of the caller's (a balloon's page).
    fn own_frame(&self, gfn: u64) -> bool;
    /// GNTTABOP_map_grant_ref: `dom`'s grant `gref` at the caller's IPA
    /// `host_addr`. The handle and the bus address, or a GNTST status.
    fn grant_map(&mut self, host_addr: u64, flags: u32, gref: u32, dom: DomId) -> core::result::Result<(u32, u64), i16>;
    /// GNTTABOP_unmap_grant_ref of `handle`, mapped at `host_addr`.
    fn grant_unmap(&mut self, host_addr: u64, handle: u32) -> i16;
    /// GNTTABOP_copy of `len` bytes from `src` to `dst` (offsets and
    /// length already checked to stay within a page); a GNTST status.
    fn grant_copy(&mut self, src: CopySide, dst: CopySide, len: u16) -> i16;
    /// Maps `dom`'s frame `gfn` at the caller's frame `at` (a legacy fbif
    /// backend's privcmd mapping); 0 or a negative errno.
    fn map_foreign(&mut self, dom: DomId, gfn: u64, at: u64) -> i32;
    /// XENMEM_remove_from_physmap of the caller's frame `at`.
    fn unmap_foreign(&mut self, at: u64) -> Result<()>;
}

/// One side of a GNTTABOP_copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyPage {
    /// Grant `gref` of domain `dom` (granted to the caller).
    Grant { dom: DomId, gref: u32 },
    /// The caller's own frame.
    Own { gfn: u64 },
}

/// A page and the offset in it a copy starts at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopySide {
    pub page: CopyPage,
    pub offset: u16,
}

/// Decodes one side of a copy (16 bytes at `at`), or the status that
/// refuses it: a frame side must name the caller.
fn copy_side(b: &[u8], at: usize, gref: bool, sv: &impl Services) -> core::result::Result<CopySide, i16> {
    let (u, dom, offset) = (u64_at(b, at), u16_at(b, at + 8), u16_at(b, at + 10));
    let page = if gref {
        // The union's 32-bit `ref`, as Xen reads it: Linux's gntdev writes
        // only that and leaves the rest of the union as it was.
        CopyPage::Grant { dom: peer(dom, sv), gref: u as u32 }
    } else {
        // Only a privileged domain may copy to or from others' frames.
        if peer(dom, sv) != sv.domid() {
            return Err(crate::grant::status::PERMISSION_DENIED);
        }
        CopyPage::Own { gfn: u }
    };
    Ok(CopySide { page, offset })
}

/// One `gnttab_copy`: its status.
fn grant_copy_one(b: &[u8], sv: &mut impl Services) -> i16 {
    use crate::grant::status;
    let (len, flags) = (u16_at(b, 32), u16_at(b, 34));
    let src = copy_side(b, 0, flags & gnttabop::COPY_SOURCE_GREF != 0, sv);
    let dst = copy_side(b, 16, flags & gnttabop::COPY_DEST_GREF != 0, sv);
    let (src, dst) = match (src, dst) {
        (Ok(s), Ok(d)) => (s, d),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let fits = |side: CopySide| usize::from(side.offset) + usize::from(len) <= 4096;
    if flags & !(gnttabop::COPY_SOURCE_GREF | gnttabop::COPY_DEST_GREF) != 0 || !fits(src) || !fits(dst) {
        return status::BAD_COPY_ARG;
    }
    if len == 0 {
        return status::OKAY;
    }
    sv.grant_copy(src, dst, len)
}

/// Operations one grant_table_op may carry (Xen preempts longer batches;
/// a whole framebuffer is under 1024 pages).
pub const MAX_GRANT_BATCH: u64 = 4096;

/// The most grant copies one GNTTABOP_copy may ask for. Each may move a
/// page, and hypercalls are not preempted: 128 pages bound the time a
/// caller keeps a shared pCPU from the others (Xen preempts instead; its
/// Linux callers batch far fewer, gntdev 24 at a time).
pub const MAX_COPY_BATCH: u64 = 128;
/// Extents one memory reservation may carry (Linux's balloon sends a page
/// of frame numbers at most).
pub const MAX_EXTENTS: u64 = 512;

/// Feature submap 0 as this hypervisor reports it: a translated guest
/// (stage 2), SMCCC over HVC #0, guest frames that are not machine frames
/// (so Linux never turns on swiotlb-xen). Never XENFEAT_dom0.
pub const FEATURES: u32 = 1 << xenfeat::AUTO_TRANSLATED_PHYSMAP | 1 << xenfeat::ARM_SMCCC_SUPPORTED | 1 << xenfeat::NOT_DIRECT_MAPPED;

/// HVM parameters a guest may read (Xen's HVM_NR_PARAMS).
pub const NR_PARAMS: u32 = 39;

/// Carries out hypercall `nr` with arguments `a` (x0..x4) for the calling
/// vCPU; returns what goes in x0.
pub fn hypercall(nr: u64, a: [u64; 5], mem: &mut impl GuestMemory, sv: &mut impl Services) -> i64 {
    let r = match nr {
        hc::XEN_VERSION => xen_version(a[0], a[1], mem),
        hc::MEMORY_OP => memory_op(a[0], a[1], mem, sv),
        hc::GRANT_TABLE_OP => grant_table_op(a[0], a[1], a[2], mem, sv),
        hc::VM_ASSIST => vm_assist(a[0], a[1]),
        hc::VCPU_OP => vcpu_op(a[0], a[1], a[2], mem, sv),
        hc::SCHED_OP => sched_op(a[0], a[1], mem, sv),
        hc::EVENT_CHANNEL_OP => event_channel_op(a[0], a[1], mem, sv),
        hc::HVM_OP => hvm_op(a[0], a[1], mem, sv),
        _ => Err(Errno(-hc::ENOSYS)),
    };
    match r {
        Ok(v) => v,
        Err(Errno(e)) => e,
    }
}

pub type Result<T> = core::result::Result<T, Errno>;

fn fault() -> Errno {
    Errno(-hc::EFAULT)
}

fn read<const N: usize>(mem: &impl GuestMemory, va: u64) -> Result<[u8; N]> {
    let mut b = [0; N];
    if mem.read(va, &mut b) {
        Ok(b)
    } else {
        Err(fault())
    }
}

fn write(mem: &mut impl GuestMemory, va: u64, data: &[u8]) -> Result<()> {
    if mem.write(va, data) {
        Ok(())
    } else {
        Err(fault())
    }
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    let mut w = [0; 8];
    w.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(w)
}

/// A domain-id argument that must name the caller (these calls act on
/// the caller only: no domain has another's powers).
fn self_only(dom: u16, sv: &impl Services) -> Result<()> {
    if dom == hc::DOMID_SELF || dom == sv.domid() {
        Ok(())
    } else {
        Err(Errno(-hc::EPERM))
    }
}

/// A domain-id argument naming a peer: DOMID_SELF resolved.
fn peer(dom: u16, sv: &impl Services) -> DomId {
    if dom == hc::DOMID_SELF {
        sv.domid()
    } else {
        dom
    }
}

/// Writes `s` NUL-padded into a `len`-byte guest buffer.
fn write_string(mem: &mut impl GuestMemory, va: u64, s: &str, len: usize) -> Result<()> {
    let mut buf = [0u8; 64];
    let n = s.len().min(len.min(64) - 1);
    buf[..n].copy_from_slice(&s.as_bytes()[..n]);
    // Longer buffers: the string, then zeros in 64-byte pieces.
    let mut at = 0;
    while at < len {
        let chunk = (len - at).min(64);
        let src = if at == 0 { &buf[..chunk] } else { &[0u8; 64][..chunk] };
        write(mem, va.wrapping_add(at as u64), src)?;
        at += chunk;
    }
    Ok(())
}

fn xen_version(cmd: u64, arg: u64, mem: &mut impl GuestMemory) -> Result<i64> {
    match cmd {
        xenver::VERSION => Ok(hc::XEN_VERSION_4_17),
        xenver::EXTRAVERSION => write_string(mem, arg, ".0-cockpit", 16).map(|_| 0),
        xenver::CHANGESET => write_string(mem, arg, "cockpit", 64).map(|_| 0),
        xenver::CAPABILITIES => write_string(mem, arg, "xen-3.0-aarch64", 1024).map(|_| 0),
        xenver::PAGESIZE => Ok(4096),
        xenver::GET_FEATURES => {
            let b = read::<8>(mem, arg)?;
            let submap = if u32_at(&b, 0) == 0 { FEATURES } else { 0 };
            write(mem, arg.wrapping_add(4), &submap.to_le_bytes()).map(|_| 0)
        }
        _ => Err(Errno(-hc::ENOSYS)),
    }
}

fn memory_op(cmd: u64, arg: u64, mem: &mut impl GuestMemory, sv: &mut impl Services) -> Result<i64> {
    match cmd {
        xenmem::ADD_TO_PHYSMAP => {
            let b = read::<{ xenmem::ADD_TO_PHYSMAP_SIZE }>(mem, arg)?;
            self_only(u16_at(&b, 0), sv)?;
            let (space, idx, gfn) = (u32_at(&b, 4), u64_at(&b, 8), u64_at(&b, 16));
            match space {
                xenmem::SPACE_SHARED_INFO if idx == 0 => sv.map_shared_info(gfn)?,
                // Bit 31: a v2 status frame; only v1 is offered.
                xenmem::SPACE_GRANT_TABLE if idx & 1 << 31 == 0 => sv.map_grant_frame(idx, gfn)?,
                _ => return Err(Errno(-hc::EINVAL)),
            }
            Ok(0)
        }
        xenmem::ADD_TO_PHYSMAP_RANGE => {
            let b = read::<32>(mem, arg)?;
            self_only(u16_at(&b, 0), sv)?;
            let (space, size, foreign) = (u16_at(&b, 2), u64::from(u16_at(&b, 4)), u16_at(&b, 6));
            if u32::from(space) != xenmem::SPACE_GMFN_FOREIGN || size > MAX_EXTENTS {
                return Err(Errno(-hc::EINVAL));
            }
            let (idxs, gpfns, errs) = (u64_at(&b, 8), u64_at(&b, 16), u64_at(&b, 24));
            for i in 0..size {
                let idx = u64::from_le_bytes(read::<8>(mem, idxs.wrapping_add(i * 8))?);
                let gpfn = u64::from_le_bytes(read::<8>(mem, gpfns.wrapping_add(i * 8))?);
                let err = sv.map_foreign(peer(foreign, sv), idx, gpfn);
                write(mem, errs.wrapping_add(i * 4), &err.to_le_bytes())?;
            }
            Ok(0)
        }
        xenmem::REMOVE_FROM_PHYSMAP => {
            let b = read::<16>(mem, arg)?;
            self_only(u16_at(&b, 0), sv)?;
            sv.unmap_foreign(u64_at(&b, 8)).map(|_| 0)
        }
        xenmem::DECREASE_RESERVATION | xenmem::POPULATE_PHYSMAP => {
            // A balloon giving pages back or taking them again. Memory is
            // static here: the pages stay the domain's and stay mapped, so
            // there is nothing to change; every frame named is checked.
            let b = read::<{ xenmem::RESERVATION_SIZE }>(mem, arg)?;
            self_only(u16_at(&b, 24), sv)?;
            let (list, n, order) = (u64_at(&b, 0), u64_at(&b, 8), u32_at(&b, 16));
            if order != 0 || n > MAX_EXTENTS {
                return Err(Errno(-hc::EINVAL));
            }
            for i in 0..n {
                let gfn = u64::from_le_bytes(read::<8>(mem, list.wrapping_add(i * 8))?);
                if !sv.own_frame(gfn) {
                    // Xen answers with the extents done before the bad one.
                    return Ok(i as i64);
                }
            }
            Ok(n as i64)
        }
        _ => Err(Errno(-hc::ENOSYS)),
    }
}

fn grant_table_op(cmd: u64, arg: u64, count: u64, mem: &mut impl GuestMemory, sv: &mut impl Services) -> Result<i64> {
    match cmd {
        gnttabop::QUERY_SIZE => {
            if count != 1 {
                return Err(Errno(-hc::EINVAL));
            }
            let mut b = read::<{ gnttabop::QUERY_SIZE_SIZE }>(mem, arg)?;
            let (nr, max) = sv.grant_frames();
            let status: i16 = if self_only(u16_at(&b, 0), sv).is_ok() { 0 } else { crate::grant::status::BAD_DOMAIN };
            if status == 0 {
                b[4..8].copy_from_slice(&nr.to_le_bytes());
                b[8..12].copy_from_slice(&max.to_le_bytes());
            }
            b[12..14].copy_from_slice(&status.to_le_bytes());
            write(mem, arg, &b).map(|_| 0)
        }
        gnttabop::SET_VERSION => {
            if count != 1 {
                return Err(Errno(-hc::EINVAL));
            }
            let b = read::<4>(mem, arg)?;
            if u32_at(&b, 0) == 1 {
                Ok(0)
            } else {
                // The caller reads the version back: v1, the only one offered.
                write(mem, arg, &1u32.to_le_bytes())?;
                Err(Errno(-hc::EINVAL))
            }
        }
        gnttabop::COPY => {
            if count > MAX_COPY_BATCH {
                return Err(Errno(-hc::EINVAL));
            }
            for i in 0..count {
                let at = arg.wrapping_add(i * gnttabop::COPY_SIZE as u64);
                let mut b = read::<{ gnttabop::COPY_SIZE }>(mem, at)?;
                let status = grant_copy_one(&b, sv);
                b[36..38].copy_from_slice(&status.to_le_bytes());
                write(mem, at, &b)?;
            }
            Ok(0)
        }
        gnttabop::MAP_GRANT_REF | gnttabop::UNMAP_GRANT_REF => {
            if count > MAX_GRANT_BATCH {
                return Err(Errno(-hc::EINVAL));
            }
            let map = cmd == gnttabop::MAP_GRANT_REF;
            let size = if map { 32 } else { 24 };
            for i in 0..count {
                let at = arg.wrapping_add(i * size);
                if map {
                    let mut b = read::<32>(mem, at)?;
                    let (host_addr, flags, gref, dom) = (u64_at(&b, 0), u32_at(&b, 8), u32_at(&b, 12), u16_at(&b, 16));
                    let (status, handle, bus) = match sv.grant_map(host_addr, flags, gref, peer(dom, sv)) {
                        Ok((h, bus)) => (0i16, h, bus),
                        Err(st) => (st, 0, 0),
                    };
                    b[18..20].copy_from_slice(&status.to_le_bytes());
                    b[20..24].copy_from_slice(&handle.to_le_bytes());
                    b[24..32].copy_from_slice(&bus.to_le_bytes());
                    if let Err(e) = write(mem, at, &b) {
                        // The caller cannot learn the handle: undo the map.
                        if status == 0 {
                            sv.grant_unmap(host_addr, handle);
                        }
                        return Err(e);
                    }
                } else {
                    let mut b = read::<24>(mem, at)?;
                    let status = sv.grant_unmap(u64_at(&b, 0), u32_at(&b, 16));
                    b[20..22].copy_from_slice(&status.to_le_bytes());
                    write(mem, at, &b)?;
                }
            }
            Ok(0)
        }
        _ => Err(Errno(-hc::ENOSYS)),
    }
}

fn vm_assist(cmd: u64, kind: u64) -> Result<i64> {
    // The runstate "update in progress" flag is always honoured; no other
    // assist exists on Arm.
    match (cmd, kind) {
        (vmassist::CMD_ENABLE | vmassist::CMD_DISABLE, vmassist::TYPE_RUNSTATE_UPDATE_FLAG) => Ok(0),
        _ => Err(Errno(-hc::EINVAL)),
    }
}

fn vcpu_op(cmd: u64, vcpu: u64, arg: u64, mem: &mut impl GuestMemory, sv: &mut impl Services) -> Result<i64> {
    if vcpu >= u64::from(sv.nr_vcpus()) {
        return Err(Errno(-hc::ENOENT));
    }
    let vcpu = vcpu as u32;
    match cmd {
        vcpuop::REGISTER_VCPU_INFO => {
            let b = read::<{ vcpuop::REGISTER_VCPU_INFO_SIZE }>(mem, arg)?;
            let (gfn, offset) = (u64_at(&b, 0), u32_at(&b, 8));
            // The structure must sit inside one page, naturally aligned for
            // the 8-byte selector the hypervisor updates atomically.
            let size = xen_abi::hypercall::shared_info::VCPU_INFO_SIZE as u32;
            if offset > 4096 - size || offset % 8 != 0 {
                return Err(Errno(-hc::EINVAL));
            }
            sv.register_vcpu_info(vcpu, gfn, offset).map(|_| 0)
        }
        vcpuop::REGISTER_RUNSTATE_MEMORY_AREA => {
            let b = read::<8>(mem, arg)?;
            sv.register_runstate(vcpu, u64_at(&b, 0)).map(|_| 0)
        }
        _ => Err(Errno(-hc::EINVAL)),
    }
}

fn sched_op(cmd: u64, arg: u64, mem: &mut impl GuestMemory, sv: &mut impl Services) -> Result<i64> {
    match cmd {
        schedop::YIELD => {
            sv.yield_now();
            Ok(0)
        }
        schedop::SHUTDOWN => {
            let b = read::<4>(mem, arg)?;
            let why = match u32_at(&b, 0) {
                schedop::SHUTDOWN_POWEROFF => Shutdown::PowerOff,
                schedop::SHUTDOWN_REBOOT => Shutdown::Reboot,
                schedop::SHUTDOWN_CRASH => Shutdown::Crash,
                schedop::SHUTDOWN_WATCHDOG => Shutdown::Watchdog,
                // Suspend and soft reset need a toolstack to resume the
                // domain; there is none.
                _ => return Err(Errno(-hc::EINVAL)),
            };
            sv.shutdown(why);
            Ok(0)
        }
        schedop::WATCHDOG => {
            let b = read::<8>(mem, arg)?;
            sv.watchdog(u32_at(&b, 0), u32_at(&b, 4)).map(i64::from)
        }
        _ => Err(Errno(-hc::ENOSYS)),
    }
}

fn hvm_op(cmd: u64, arg: u64, mem: &mut impl GuestMemory, sv: &mut impl Services) -> Result<i64> {
    match cmd {
        hvmop::GET_PARAM => {
            let mut b = read::<{ hvmop::PARAM_SIZE }>(mem, arg)?;
            self_only(u16_at(&b, 0), sv)?;
            let index = u32_at(&b, 4);
            if index >= NR_PARAMS {
                return Err(Errno(-hc::EINVAL));
            }
            b[8..16].copy_from_slice(&sv.param(index)?.to_le_bytes());
            write(mem, arg, &b).map(|_| 0)
        }
        // Parameters are the hypervisor's, from the system description: a
        // guest changes none (Xen's XSM denies a domU the same ones).
        hvmop::SET_PARAM => Err(Errno(-hc::EPERM)),
        _ => Err(Errno(-hc::ENOSYS)),
    }
}

/// EVTCHNOP_status's (state, u) for a binding.
fn status_words(b: Binding) -> (u32, u64) {
    match b {
        Binding::Free => (evtchnop::STAT_CLOSED, 0),
        Binding::Unbound { remote } => (evtchnop::STAT_UNBOUND, u64::from(remote)),
        Binding::Interdomain { remote, port } => (evtchnop::STAT_INTERDOMAIN, u64::from(remote) | u64::from(port) << 32),
        Binding::Virq { virq } => (evtchnop::STAT_VIRQ, u64::from(virq)),
        // The store is a peer in Xen: an interdomain port of the store's domain.
        Binding::Store => (evtchnop::STAT_INTERDOMAIN, u64::from(crate::xenstore::DOMID_HV)),
    }
}

/// Writes a new port back to the guest at `at`; a port the guest cannot
/// learn is closed again, not leaked.
fn publish_port(mem: &mut impl GuestMemory, sv: &mut impl Services, at: u64, port: u32) -> Result<i64> {
    if let Err(e) = write(mem, at, &port.to_le_bytes()) {
        let _ = sv.close(port);
        return Err(e);
    }
    Ok(0)
}

fn event_channel_op(cmd: u64, arg: u64, mem: &mut impl GuestMemory, sv: &mut impl Services) -> Result<i64> {
    match cmd {
        evtchnop::ALLOC_UNBOUND => {
            let b = read::<8>(mem, arg)?;
            self_only(u16_at(&b, 0), sv)?;
            let port = sv.alloc_unbound(peer(u16_at(&b, 2), sv))?;
            publish_port(mem, sv, arg.wrapping_add(4), port)
        }
        evtchnop::BIND_INTERDOMAIN => {
            let b = read::<12>(mem, arg)?;
            let port = sv.bind_interdomain(peer(u16_at(&b, 0), sv), u32_at(&b, 4))?;
            publish_port(mem, sv, arg.wrapping_add(8), port)
        }
        evtchnop::BIND_VIRQ => {
            let b = read::<12>(mem, arg)?;
            let port = sv.bind_virq(u32_at(&b, 0), u32_at(&b, 4))?;
            publish_port(mem, sv, arg.wrapping_add(8), port)
        }
        evtchnop::CLOSE => sv.close(u32::from_le_bytes(read::<4>(mem, arg)?)).map(|_| 0),
        evtchnop::SEND => sv.send(u32::from_le_bytes(read::<4>(mem, arg)?)).map(|_| 0),
        evtchnop::UNMASK => sv.unmask(u32::from_le_bytes(read::<4>(mem, arg)?)).map(|_| 0),
        evtchnop::STATUS => {
            let mut b = read::<24>(mem, arg)?;
            self_only(u16_at(&b, 0), sv)?;
            let (binding, vcpu) = sv.status(u32_at(&b, 4))?;
            let (state, u) = status_words(binding);
            b[8..12].copy_from_slice(&state.to_le_bytes());
            b[12..16].copy_from_slice(&vcpu.to_le_bytes());
            b[16..24].copy_from_slice(&u.to_le_bytes());
            write(mem, arg, &b).map(|_| 0)
        }
        evtchnop::BIND_VCPU => {
            let b = read::<8>(mem, arg)?;
            sv.bind_vcpu(u32_at(&b, 0), u32_at(&b, 4)).map(|_| 0)
        }
        // INIT_CONTROL (FIFO) included: Linux falls back to 2-level.
        _ => Err(Errno(-hc::ENOSYS)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evtchn::{self, Ports};
    use proptest::prelude::*;
    use std::collections::HashMap;

    /// Guest memory as a test harness: pages mapped at virtual addresses,
    /// some read-only; every other address faults.
    #[derive(Default)]
    struct Mem {
        bytes: HashMap<u64, u8>,
        pages: HashMap<u64, bool>,
    }

    impl Mem {
        fn with_page(va: u64, writable: bool) -> Self {
            let mut m = Mem::default();
            m.pages.insert(va & !0xfff, writable);
            m
        }
        fn put(&mut self, va: u64, data: &[u8]) {
            for (i, b) in data.iter().enumerate() {
                self.bytes.insert(va.wrapping_add(i as u64), *b);
            }
        }
        fn get(&self, va: u64, n: usize) -> Vec<u8> {
            (0..n as u64).map(|i| self.bytes.get(&va.wrapping_add(i)).copied().unwrap_or(0)).collect()
        }
    }

    impl GuestMemory for Mem {
        fn read(&self, va: u64, buf: &mut [u8]) -> bool {
            if !(0..buf.len() as u64).all(|i| va.checked_add(i).is_some_and(|a| self.pages.contains_key(&(a & !0xfff)))) {
                return false;
            }
            buf.copy_from_slice(&self.get(va, buf.len()));
            true
        }
        fn write(&mut self, va: u64, data: &[u8]) -> bool {
            if !(0..data.len() as u64).all(|i| va.checked_add(i).is_some_and(|a| self.pages.get(&(a & !0xfff)) == Some(&true))) {
                return false;
            }
            self.put(va, data);
            true
        }
    }

    /// The kernel's side, as a test harness: one domain (id 1) with a
    /// port table, and a record of what was asked.
    struct Fake {
        ports: Ports<32>,
        shared_info: Option<u64>,
        vcpu_info: Vec<(u32, u64, u32)>,
        shutdown: Option<Shutdown>,
        sent: Vec<u32>,
        copies: Vec<(CopySide, CopySide, u16)>,
        dogs: crate::watchdog::Watchdogs,
    }

    impl Fake {
        fn new() -> Self {
            Fake { ports: Ports::new(8, 2), shared_info: None, vcpu_info: vec![], shutdown: None, sent: vec![], copies: vec![], dogs: Default::default() }
        }
    }

    impl Services for Fake {
        fn domid(&self) -> DomId {
            1
        }
        fn nr_vcpus(&self) -> u32 {
            2
        }
        fn map_shared_info(&mut self, gfn: u64) -> Result<()> {
            self.shared_info = Some(gfn);
            Ok(())
        }
        fn map_grant_frame(&mut self, idx: u64, _gfn: u64) -> Result<()> {
            if idx < 4 {
                Ok(())
            } else {
                Err(Errno(-hc::EINVAL))
            }
        }
        fn grant_frames(&self) -> (u32, u32) {
            (4, 4)
        }
        fn register_vcpu_info(&mut self, vcpu: u32, gfn: u64, offset: u32) -> Result<()> {
            self.vcpu_info.push((vcpu, gfn, offset));
            Ok(())
        }
        fn register_runstate(&mut self, _vcpu: u32, _va: u64) -> Result<()> {
            Ok(())
        }
        fn param(&self, index: u32) -> Result<u64> {
            Ok(if index == hvmop::PARAM_STORE_EVTCHN { 3 } else { 0 })
        }
        fn shutdown(&mut self, why: Shutdown) {
            self.shutdown = Some(why);
        }
        fn yield_now(&mut self) {}
        fn watchdog(&mut self, id: u32, timeout_s: u32) -> Result<u32> {
            self.dogs.op(id, timeout_s, 0, 1000)
        }
        fn alloc_unbound(&mut self, remote: DomId) -> Result<u32> {
            self.ports.alloc_unbound(remote)
        }
        fn bind_interdomain(&mut self, _remote: DomId, _port: u32) -> Result<u32> {
            Err(Errno(-hc::EINVAL))
        }
        fn bind_virq(&mut self, virq: u32, vcpu: u32) -> Result<u32> {
            self.ports.bind_virq(virq, vcpu)
        }
        fn close(&mut self, port: u32) -> Result<()> {
            evtchn::close(&mut self.ports, 1, port, None)
        }
        fn send(&mut self, port: u32) -> Result<()> {
            self.sent.push(port);
            Ok(())
        }
        fn unmask(&mut self, _port: u32) -> Result<()> {
            Ok(())
        }
        fn status(&self, port: u32) -> Result<(Binding, u32)> {
            Ok((self.ports.binding(port), u32::from(self.ports.vcpu(port))))
        }
        fn bind_vcpu(&mut self, port: u32, vcpu: u32) -> Result<()> {
            self.ports.bind_vcpu(port, vcpu)
        }
        fn own_frame(&self, gfn: u64) -> bool {
            (0x40000..0x50000).contains(&gfn)
        }
        fn grant_map(&mut self, host_addr: u64, _flags: u32, gref: u32, dom: DomId) -> core::result::Result<(u32, u64), i16> {
            if dom == 2 && gref < 4 {
                self.sent.push(gref);
                Ok((gref + 10, host_addr))
            } else {
                Err(crate::grant::status::BAD_DOMAIN)
            }
        }
        fn grant_unmap(&mut self, _host_addr: u64, handle: u32) -> i16 {
            if handle >= 10 { 0 } else { crate::grant::status::BAD_HANDLE }
        }
        fn grant_copy(&mut self, src: CopySide, dst: CopySide, len: u16) -> i16 {
            self.copies.push((src, dst, len));
            match src.page {
                CopyPage::Grant { gref, .. } if gref >= 100 => crate::grant::status::BAD_GNTREF,
                _ => 0,
            }
        }
        fn map_foreign(&mut self, dom: DomId, gfn: u64, _at: u64) -> i32 {
            if dom == 2 && gfn < 8 { 0 } else { -1 }
        }
        fn unmap_foreign(&mut self, _at: u64) -> Result<()> {
            Ok(())
        }
    }

    const ARG: u64 = 0xffff_0000_0010_0000;

    #[test]
    fn what_linux_does_at_boot() {
        let (mut m, mut f) = (Mem::with_page(ARG, true), Fake::new());
        // xen_version(GET_FEATURES, {submap_idx 0}).
        m.put(ARG, &[0; 8]);
        assert_eq!(hypercall(hc::XEN_VERSION, [xenver::GET_FEATURES, ARG, 0, 0, 0], &mut m, &mut f), 0);
        let submap = u32::from_le_bytes(m.get(ARG + 4, 4).try_into().unwrap());
        assert_ne!(submap & 1 << xenfeat::AUTO_TRANSLATED_PHYSMAP, 0);
        assert_eq!(submap & 1 << xenfeat::DOM0, 0, "no domain is dom0");
        assert_eq!(hypercall(hc::XEN_VERSION, [xenver::VERSION, 0, 0, 0, 0], &mut m, &mut f), 4 << 16 | 17);
        // add_to_physmap(shared_info) with DOMID_SELF.
        let mut x = [0u8; 24];
        x[0..2].copy_from_slice(&hc::DOMID_SELF.to_le_bytes());
        x[16..24].copy_from_slice(&0x4_1234u64.to_le_bytes());
        m.put(ARG, &x);
        assert_eq!(hypercall(hc::MEMORY_OP, [xenmem::ADD_TO_PHYSMAP, ARG, 0, 0, 0], &mut m, &mut f), 0);
        assert_eq!(f.shared_info, Some(0x4_1234));
        // register_vcpu_info for vCPU 1.
        let mut r = [0u8; 16];
        r[0..8].copy_from_slice(&0x4_5678u64.to_le_bytes());
        r[8..12].copy_from_slice(&0x40u32.to_le_bytes());
        m.put(ARG, &r);
        assert_eq!(hypercall(hc::VCPU_OP, [vcpuop::REGISTER_VCPU_INFO, 1, ARG, 0, 0], &mut m, &mut f), 0);
        assert_eq!(f.vcpu_info, vec![(1, 0x4_5678, 0x40)]);
        // FIFO is refused, so Linux uses 2-level.
        assert_eq!(hypercall(hc::EVENT_CHANNEL_OP, [evtchnop::INIT_CONTROL, ARG, 0, 0, 0], &mut m, &mut f), -hc::ENOSYS);
        // query_size, get_param.
        let mut q = [0u8; 16];
        q[0..2].copy_from_slice(&hc::DOMID_SELF.to_le_bytes());
        m.put(ARG, &q);
        assert_eq!(hypercall(hc::GRANT_TABLE_OP, [gnttabop::QUERY_SIZE, ARG, 1, 0, 0], &mut m, &mut f), 0);
        assert_eq!(m.get(ARG + 8, 4), 4u32.to_le_bytes());
        let mut p = [0u8; 16];
        p[0..2].copy_from_slice(&hc::DOMID_SELF.to_le_bytes());
        p[4..8].copy_from_slice(&hvmop::PARAM_STORE_EVTCHN.to_le_bytes());
        m.put(ARG, &p);
        assert_eq!(hypercall(hc::HVM_OP, [hvmop::GET_PARAM, ARG, 0, 0, 0], &mut m, &mut f), 0);
        assert_eq!(m.get(ARG + 8, 8), 3u64.to_le_bytes());
        // A panic's reboot, a crash.
        m.put(ARG, &schedop::SHUTDOWN_CRASH.to_le_bytes());
        assert_eq!(hypercall(hc::SCHED_OP, [schedop::SHUTDOWN, ARG, 0, 0, 0], &mut m, &mut f), 0);
        assert_eq!(f.shutdown, Some(Shutdown::Crash));
        // xen_wdt: a watchdog created (id 1), kicked, and a wild id refused.
        let wd = |id: u32, t: u32| [id.to_le_bytes(), t.to_le_bytes()].concat();
        m.put(ARG, &wd(0, 30));
        assert_eq!(hypercall(hc::SCHED_OP, [schedop::WATCHDOG, ARG, 0, 0, 0], &mut m, &mut f), 1);
        m.put(ARG, &wd(1, 30));
        assert_eq!(hypercall(hc::SCHED_OP, [schedop::WATCHDOG, ARG, 0, 0, 0], &mut m, &mut f), 0);
        m.put(ARG, &wd(9, 30));
        assert_eq!(hypercall(hc::SCHED_OP, [schedop::WATCHDOG, ARG, 0, 0, 0], &mut m, &mut f), -hc::EINVAL);
    }

    #[test]
    fn wild_arguments_get_xens_errors_and_change_nothing() {
        let (mut m, mut f) = (Mem::with_page(ARG, true), Fake::new());
        let unmapped = 0xdead_0000;
        for nr in [hc::XEN_VERSION, hc::MEMORY_OP, hc::VCPU_OP, hc::SCHED_OP, hc::EVENT_CHANNEL_OP, hc::HVM_OP] {
            let sub = if nr == hc::XEN_VERSION { xenver::GET_FEATURES } else if nr == hc::MEMORY_OP { xenmem::ADD_TO_PHYSMAP } else if nr == hc::SCHED_OP { schedop::SHUTDOWN } else if nr == hc::HVM_OP { hvmop::GET_PARAM } else { 0 };
            let a = if nr == hc::VCPU_OP { [vcpuop::REGISTER_VCPU_INFO, 0, unmapped, 0, 0] } else { [sub, unmapped, 0, 0, 0] };
            assert_eq!(hypercall(nr, a, &mut m, &mut f), -hc::EFAULT, "hypercall {nr}");
        }
        // A structure running off the end of its page into nothing.
        assert_eq!(hypercall(hc::MEMORY_OP, [xenmem::ADD_TO_PHYSMAP, ARG + 4090, 0, 0, 0], &mut m, &mut f), -hc::EFAULT);
        // Another domain's shared_info, params or ports: EPERM.
        let mut x = [0u8; 24];
        x[0..2].copy_from_slice(&2u16.to_le_bytes());
        m.put(ARG, &x);
        assert_eq!(hypercall(hc::MEMORY_OP, [xenmem::ADD_TO_PHYSMAP, ARG, 0, 0, 0], &mut m, &mut f), -hc::EPERM);
        assert_eq!(hypercall(hc::HVM_OP, [hvmop::GET_PARAM, ARG, 0, 0, 0], &mut m, &mut f), -hc::EPERM);
        assert_eq!(hypercall(hc::EVENT_CHANNEL_OP, [evtchnop::ALLOC_UNBOUND, ARG, 0, 0, 0], &mut m, &mut f), -hc::EPERM);
        assert_eq!(hypercall(hc::HVM_OP, [hvmop::SET_PARAM, ARG, 0, 0, 0], &mut m, &mut f), -hc::EPERM);
        // vCPU out of range, vcpu_info across a page, a v2 status frame.
        assert_eq!(hypercall(hc::VCPU_OP, [vcpuop::REGISTER_VCPU_INFO, 2, ARG, 0, 0], &mut m, &mut f), -hc::ENOENT);
        let mut r = [0u8; 16];
        r[8..12].copy_from_slice(&4060u32.to_le_bytes());
        m.put(ARG, &r);
        assert_eq!(hypercall(hc::VCPU_OP, [vcpuop::REGISTER_VCPU_INFO, 0, ARG, 0, 0], &mut m, &mut f), -hc::EINVAL);
        let mut g = [0u8; 24];
        g[0..2].copy_from_slice(&hc::DOMID_SELF.to_le_bytes());
        g[4..8].copy_from_slice(&xenmem::SPACE_GRANT_TABLE.to_le_bytes());
        g[8..16].copy_from_slice(&(1u64 << 31).to_le_bytes());
        m.put(ARG, &g);
        assert_eq!(hypercall(hc::MEMORY_OP, [xenmem::ADD_TO_PHYSMAP, ARG, 0, 0, 0], &mut m, &mut f), -hc::EINVAL);
        // Unknown shutdown reasons and hypercalls.
        m.put(ARG, &7u32.to_le_bytes());
        assert_eq!(hypercall(hc::SCHED_OP, [schedop::SHUTDOWN, ARG, 0, 0, 0], &mut m, &mut f), -hc::EINVAL);
        assert_eq!(hypercall(hc::PLATFORM_OP, [0; 5], &mut m, &mut f), -hc::ENOSYS);
        assert_eq!(hypercall(u64::MAX, [0; 5], &mut m, &mut f), -hc::ENOSYS);
        assert!(f.shared_info.is_none() && f.vcpu_info.is_empty() && f.shutdown.is_none());
    }

    #[test]
    fn a_port_the_guest_cannot_learn_is_not_leaked() {
        // A read-only argument page: the port cannot be written back.
        let (mut m, mut f) = (Mem::with_page(ARG, false), Fake::new());
        m.put(ARG, &[0xf0, 0x7f, 0, 0, 0, 0, 0, 0]);
        assert_eq!(hypercall(hc::EVENT_CHANNEL_OP, [evtchnop::ALLOC_UNBOUND, ARG, 0, 0, 0], &mut m, &mut f), -hc::EFAULT);
        assert_eq!(f.ports.used(), 0);
        let mut m = Mem::with_page(ARG, true);
        // Remote DOMID_SELF: the caller's own id is recorded.
        m.put(ARG, &[0xf0, 0x7f, 0xf0, 0x7f, 0, 0, 0, 0]);
        assert_eq!(hypercall(hc::EVENT_CHANNEL_OP, [evtchnop::ALLOC_UNBOUND, ARG, 0, 0, 0], &mut m, &mut f), 0);
        assert_eq!(m.get(ARG + 4, 4), 1u32.to_le_bytes());
        // Status reports it unbound for the caller itself.
        let mut s = [0u8; 24];
        s[0..2].copy_from_slice(&hc::DOMID_SELF.to_le_bytes());
        s[4..8].copy_from_slice(&1u32.to_le_bytes());
        m.put(ARG, &s);
        assert_eq!(hypercall(hc::EVENT_CHANNEL_OP, [evtchnop::STATUS, ARG, 0, 0, 0], &mut m, &mut f), 0);
        assert_eq!(m.get(ARG + 8, 4), evtchnop::STAT_UNBOUND.to_le_bytes());
        assert_eq!(m.get(ARG + 16, 2), 1u16.to_le_bytes());
    }

    #[test]
    fn grant_batches_report_each_status_and_balloons_name_their_own_pages() {
        let (mut m, mut f) = (Mem::with_page(ARG, true), Fake::new());
        m.pages.insert(ARG + 4096, true);
        // Two maps: one of domain 2's grant 3, one of domain 5's.
        let mut b = vec![0u8; 64];
        b[0..8].copy_from_slice(&0x4_0000_0000u64.to_le_bytes());
        b[12..16].copy_from_slice(&3u32.to_le_bytes());
        b[16..18].copy_from_slice(&2u16.to_le_bytes());
        b[32 + 16..32 + 18].copy_from_slice(&5u16.to_le_bytes());
        m.put(ARG, &b);
        assert_eq!(hypercall(hc::GRANT_TABLE_OP, [gnttabop::MAP_GRANT_REF, ARG, 2, 0, 0], &mut m, &mut f), 0);
        assert_eq!(m.get(ARG + 18, 2), 0i16.to_le_bytes());
        assert_eq!(m.get(ARG + 20, 4), 13u32.to_le_bytes());
        assert_eq!(m.get(ARG + 32 + 18, 2), crate::grant::status::BAD_DOMAIN.to_le_bytes());
        assert_eq!(hypercall(hc::GRANT_TABLE_OP, [gnttabop::MAP_GRANT_REF, ARG, MAX_GRANT_BATCH + 1, 0, 0], &mut m, &mut f), -hc::EINVAL);
        // A batch running into unmapped memory stops with EFAULT.
        assert_eq!(hypercall(hc::GRANT_TABLE_OP, [gnttabop::MAP_GRANT_REF, ARG + 4096, 200, 0, 0], &mut m, &mut f), -hc::EFAULT);
        // A balloon: two own frames, then a foreign one.
        let mut r = [0u8; 32];
        r[0..8].copy_from_slice(&(ARG + 512).to_le_bytes());
        r[8..16].copy_from_slice(&3u64.to_le_bytes());
        r[24..26].copy_from_slice(&hc::DOMID_SELF.to_le_bytes());
        m.put(ARG, &r);
        let frames: Vec<u8> = [0x40001u64, 0x40002, 0x9999].iter().flat_map(|g| g.to_le_bytes()).collect();
        m.put(ARG + 512, &frames);
        assert_eq!(hypercall(hc::MEMORY_OP, [xenmem::DECREASE_RESERVATION, ARG, 0, 0, 0], &mut m, &mut f), 2);
        r[16..20].copy_from_slice(&1u32.to_le_bytes());
        m.put(ARG, &r);
        assert_eq!(hypercall(hc::MEMORY_OP, [xenmem::POPULATE_PHYSMAP, ARG, 0, 0, 0], &mut m, &mut f), -hc::EINVAL, "order 1");
    }

    fn copy_op(src: (u64, u16, u16), dst: (u64, u16, u16), len: u16, flags: u16) -> [u8; 40] {
        let mut b = [0u8; 40];
        for (at, (u, dom, off)) in [(0, src), (16, dst)] {
            b[at..at + 8].copy_from_slice(&u.to_le_bytes());
            b[at + 8..at + 10].copy_from_slice(&dom.to_le_bytes());
            b[at + 10..at + 12].copy_from_slice(&off.to_le_bytes());
        }
        b[32..34].copy_from_slice(&len.to_le_bytes());
        b[34..36].copy_from_slice(&flags.to_le_bytes());
        b
    }

    #[test]
    fn grant_copies_stay_within_a_page_and_name_only_the_callers_frames() {
        use crate::grant::status as st;
        let (mut m, mut f) = (Mem::with_page(ARG, true), Fake::new());
        let both = gnttabop::COPY_SOURCE_GREF;
        let ops = [
            // Domain 2's grant 7 into our frame 0x40010 at offset 100.
            copy_op((7, 2, 0), (0x40010, hc::DOMID_SELF, 100), 3996, both),
            // One byte too many for the destination page.
            copy_op((7, 2, 0), (0x40010, hc::DOMID_SELF, 100), 3997, both),
            // A frame side naming another domain.
            copy_op((7, 2, 0), (0x40010, 3, 0), 16, both),
            // Garbage above the union's 32-bit reference is not looked at.
            copy_op((1 << 32 | 7, 2, 0), (0x40010, 1, 0), 16, both),
            // Unknown flag bits.
            copy_op((7, 2, 0), (0x40010, 1, 0), 16, both | 4),
            // The service's own refusal comes back.
            copy_op((100, 2, 0), (0x40010, 1, 0), 16, both),
        ];
        let bytes: Vec<u8> = ops.iter().flatten().copied().collect();
        m.put(ARG, &bytes);
        assert_eq!(hypercall(hc::GRANT_TABLE_OP, [gnttabop::COPY, ARG, ops.len() as u64, 0, 0], &mut m, &mut f), 0);
        let status = |i: u64| i16::from_le_bytes(m.get(ARG + i * 40 + 36, 2).try_into().unwrap());
        assert_eq!(
            (0..6).map(status).collect::<Vec<_>>(),
            [st::OKAY, st::BAD_COPY_ARG, st::PERMISSION_DENIED, st::OKAY, st::BAD_COPY_ARG, st::BAD_GNTREF]
        );
        // Only the three well-formed ones reached the service.
        assert_eq!(f.copies.len(), 3);
        assert_eq!(f.copies[1].0.page, CopyPage::Grant { dom: 2, gref: 7 });
        assert_eq!(
            f.copies[0],
            (
                CopySide { page: CopyPage::Grant { dom: 2, gref: 7 }, offset: 0 },
                CopySide { page: CopyPage::Own { gfn: 0x40010 }, offset: 100 },
                3996
            )
        );
        assert_eq!(hypercall(hc::GRANT_TABLE_OP, [gnttabop::COPY, ARG, MAX_COPY_BATCH + 1, 0, 0], &mut m, &mut f), -hc::EINVAL);
    }

    proptest! {
        /// Any hypercall with any arguments, into memory holding anything:
        /// an answer, never a panic, and never a success for a number Xen
        /// does not define.
        #[test]
        fn any_call_gets_an_answer(nr in 0u64..64, a in prop::array::uniform5(prop_oneof![0u64..16, Just(ARG), Just(ARG + 4088), Just(u64::MAX - 7), any::<u64>()]), fill in prop::collection::vec(any::<u8>(), 64)) {
            let (mut m, mut f) = (Mem::with_page(ARG, true), Fake::new());
            m.put(ARG, &fill);
            let r = hypercall(nr, a, &mut m, &mut f);
            let served = [hc::XEN_VERSION, hc::MEMORY_OP, hc::GRANT_TABLE_OP, hc::VM_ASSIST, hc::VCPU_OP, hc::SCHED_OP, hc::EVENT_CHANNEL_OP, hc::HVM_OP];
            if !served.contains(&nr) {
                prop_assert_eq!(r, -hc::ENOSYS);
            }
            prop_assert!(f.ports.used() <= 8);
        }
    }
}
