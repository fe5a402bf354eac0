//! Xen hypercalls (`HVC #0xEA1`, number in x16; r12 on Armv7-A), each argument structure
//! encoded in a buffer on the caller's stack: the hypervisor reads it
//! through the guest's own stage-1 tables, as it does Linux's.

use core::arch::asm;

use xen_abi::hypercall::{self as hc, evtchnop, gnttabop, hvmop, xenmem, DOMID_SELF};

/// A hypercall's negative errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i64);

#[cfg(target_arch = "aarch64")]
fn raw(nr: u64, a: [u64; 3]) -> i64 {
    let r: i64;
    // SAFETY: the Xen hypercall convention: the hypervisor may clobber x16
    // and the argument registers x0-x4 (x0 the result), and touches only
    // the memory the arguments name, buffers the caller lent for the call.
    unsafe {
        asm!("hvc #0xea1", inout("x0") a[0] => r, inout("x1") a[1] => _, inout("x2") a[2] => _,
             inout("x3") 0u64 => _, inout("x4") 0u64 => _, inout("x16") nr => _, options(nostack));
    }
    r
}

#[cfg(target_arch = "arm")]
fn raw(nr: u64, a: [u64; 3]) -> i64 {
    let r: u32;
    // SAFETY: Xen's arm32 convention: the hypervisor may clobber r12 and
    // the argument registers r0-r4 (r0 the result), and touches only the
    // memory the arguments name, buffers the caller lent for the call.
    unsafe {
        asm!(".arch_extension virt", "hvc #0xea1", inout("r0") a[0] as u32 => r, inout("r1") a[1] as u32 => _,
             inout("r2") a[2] as u32 => _, inout("r3") 0u32 => _, inout("r4") 0u32 => _, inout("r12") nr as u32 => _,
             options(nostack));
    }
    r as i32 as i64
}

fn check(r: i64) -> Result<i64, Errno> {
    if r < 0 {
        Err(Errno(r))
    } else {
        Ok(r)
    }
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}
fn get32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn with<const N: usize>(nr: u64, cmd: u64, buf: &mut [u8; N]) -> Result<i64, Errno> {
    check(raw(nr, [cmd, buf.as_mut_ptr() as u64, 1]))
}

/// XENMEM_add_to_physmap for ourselves: `space` page `idx` at frame `gfn`.
pub fn add_to_physmap(space: u32, idx: u64, gfn: u64) -> Result<(), Errno> {
    let mut b = [0u8; xenmem::ADD_TO_PHYSMAP_SIZE];
    put16(&mut b, 0, DOMID_SELF);
    put32(&mut b, 4, space);
    put64(&mut b, 8, idx);
    put64(&mut b, 16, gfn);
    with(hc::MEMORY_OP, xenmem::ADD_TO_PHYSMAP, &mut b).map(drop)
}

/// GNTTABOP_query_size: (frames in use, most frames allowed).
pub fn grant_query_size() -> Result<(u32, u32), Errno> {
    let mut b = [0u8; gnttabop::QUERY_SIZE_SIZE];
    put16(&mut b, 0, DOMID_SELF);
    with(hc::GRANT_TABLE_OP, gnttabop::QUERY_SIZE, &mut b)?;
    let status = i16::from_le_bytes([b[12], b[13]]);
    if status != 0 {
        return Err(Errno(status.into()));
    }
    Ok((get32(&b, 4), get32(&b, 8)))
}

/// HVMOP_get_param for ourselves.
pub fn hvm_param(index: u32) -> Result<u64, Errno> {
    let mut b = [0u8; hvmop::PARAM_SIZE];
    put16(&mut b, 0, DOMID_SELF);
    put32(&mut b, 4, index);
    with(hc::HVM_OP, hvmop::GET_PARAM, &mut b)?;
    Ok(u64::from_le_bytes(b[8..16].try_into().expect("8 bytes")))
}

/// EVTCHNOP_alloc_unbound: a port of ours that `remote` may bind.
pub fn alloc_unbound(remote: u16) -> Result<u32, Errno> {
    let mut b = [0u8; 8];
    put16(&mut b, 0, DOMID_SELF);
    put16(&mut b, 2, remote);
    with(hc::EVENT_CHANNEL_OP, evtchnop::ALLOC_UNBOUND, &mut b)?;
    Ok(get32(&b, 4))
}

/// EVTCHNOP_bind_interdomain: our end of `remote`'s `remote_port`.
pub fn bind_interdomain(remote: u16, remote_port: u32) -> Result<u32, Errno> {
    let mut b = [0u8; 12];
    put16(&mut b, 0, remote);
    put32(&mut b, 4, remote_port);
    with(hc::EVENT_CHANNEL_OP, evtchnop::BIND_INTERDOMAIN, &mut b)?;
    Ok(get32(&b, 8))
}

/// EVTCHNOP_send.
pub fn send(port: u32) -> Result<(), Errno> {
    let mut b = port.to_le_bytes();
    with(hc::EVENT_CHANNEL_OP, evtchnop::SEND, &mut b).map(drop)
}

/// EVTCHNOP_close.
pub fn close(port: u32) -> Result<(), Errno> {
    let mut b = port.to_le_bytes();
    with(hc::EVENT_CHANNEL_OP, evtchnop::CLOSE, &mut b).map(drop)
}
