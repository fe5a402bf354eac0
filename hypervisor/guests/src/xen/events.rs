//! Event channels on the 2-level ABI, as a bare guest waits for them:
//! pending bits in shared_info, the upcall PPI only to wake WFI.
//!
//! Interrupts stay masked in PSTATE; WFI still wakes for the upcall (or
//! the virtual timer armed for a deadline), and the guest then looks at
//! the pending bits itself. Several handles share shared_info, so each
//! scans the bitmap for its own ports rather than consuming the selector.

use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use pv_transport::{DomId, Error, EventChannel, Port, Result};
use xen_abi::guest_layout as gl;
use xen_abi::hypercall::shared_info as si;

use super::call;
use super::pages::Pages;
use crate::rt;

/// Milliseconds on the virtual counter.
pub fn now_ms() -> u64 {
    rt::virtual_count() / (rt::counter_freq() / 1000).max(1)
}

/// The domain's shared_info page, registered once.
pub struct SharedInfo(Pages);

impl SharedInfo {
    /// A fresh page, handed to the hypervisor as our shared_info.
    pub fn register() -> Option<Self> {
        let page = Pages::alloc(1)?;
        call::add_to_physmap(xen_abi::hypercall::xenmem::SPACE_SHARED_INFO, 0, page.gfn(0)).ok()?;
        Some(Self(page))
    }

    /// Clears `port`'s pending bit; whether it was set.
    fn take(&self, port: Port) -> bool {
        let bit = 1u64 << (port % 64);
        let at = si::EVTCHN_PENDING as usize + (port / 64) as usize * 8;
        self.0.atomic_u64(at).is_some_and(|w| w.fetch_and(!bit, Ordering::SeqCst) & bit != 0)
    }

    /// Re-arms the upcall: vCPU 0's pending flag and selector cleared (in
    /// shared_info's vcpu_info; nothing is registered elsewhere), and the
    /// PPI acknowledged, so the next event interrupts again.
    fn rearm(&self) {
        if let Some(b) = self.0.atomic_u8(si::UPCALL_PENDING as usize) {
            b.store(0, Ordering::SeqCst);
        }
        if let Some(w) = self.0.atomic_u64(si::PENDING_SEL as usize) {
            w.store(0, Ordering::SeqCst);
        }
        rt::drain_interrupts();
    }
}

/// Sleeps until an interrupt (an event's upcall) or `deadline_ms`.
fn sleep(deadline_ms: Option<u64>) {
    let freq = rt::counter_freq();
    let now = rt::virtual_count();
    // Wake at least every 100 ms: a missed wake-up costs latency, not a hang.
    let mut at = now + freq / 10;
    if let Some(d) = deadline_ms {
        at = at.min(d.saturating_mul(freq / 1000));
    }
    rt::wait_until(at);
}

/// One handle's ports: a delivered port stays masked here until unmasked.
/// Dropping the handle closes the ports it allocated or bound (as closing
/// Linux's /dev/xen/evtchn does), not the ones it adopted.
pub struct Events {
    shared: &'static SharedInfo,
    ports: spin::Mutex<Vec<(Port, bool)>>,
    owned: spin::Mutex<Vec<Port>>,
}

impl Drop for Events {
    fn drop(&mut self) {
        for &p in self.owned.lock().iter() {
            let _ = call::close(p);
        }
    }
}

impl Events {
    /// A handle with no ports.
    pub fn new(shared: &'static SharedInfo) -> Self {
        Self { shared, ports: spin::Mutex::new(Vec::new()), owned: spin::Mutex::new(Vec::new()) }
    }

    /// Takes `port` (already bound, e.g. the store's) into this handle.
    pub fn adopt(&self, port: Port) {
        self.ports.lock().push((port, false));
    }

    fn held(&self, port: Port) -> Result<()> {
        if self.ports.lock().iter().any(|&(p, _)| p == port) {
            Ok(())
        } else {
            Err(Error::BadPort(port))
        }
    }

    fn poll(&self) -> Option<Port> {
        let mut ports = self.ports.lock();
        for (p, masked) in ports.iter_mut() {
            if !*masked && self.shared.take(*p) {
                *masked = true;
                return Some(*p);
            }
        }
        None
    }
}

fn errno(e: call::Errno) -> Error {
    Error::Os(-e.0 as i32)
}

impl EventChannel for Events {
    fn alloc_unbound(&self, remote: DomId) -> Result<Port> {
        let p = call::alloc_unbound(remote).map_err(errno)?;
        self.adopt(p);
        self.owned.lock().push(p);
        Ok(p)
    }

    fn bind_interdomain(&self, remote: DomId, remote_port: Port) -> Result<Port> {
        let p = call::bind_interdomain(remote, remote_port).map_err(errno)?;
        self.adopt(p);
        self.owned.lock().push(p);
        Ok(p)
    }

    fn unbind(&self, port: Port) -> Result<()> {
        self.held(port)?;
        call::close(port).map_err(errno)?;
        self.ports.lock().retain(|&(p, _)| p != port);
        self.owned.lock().retain(|&p| p != port);
        Ok(())
    }

    fn notify(&self, port: Port) -> Result<()> {
        self.held(port)?;
        call::send(port).map_err(errno)
    }

    fn wait(&self, timeout_ms: u32) -> Result<Option<Port>> {
        let deadline = now_ms() + u64::from(timeout_ms);
        loop {
            // Re-arm before looking, so an event after the look wakes WFI.
            self.shared.rearm();
            if let Some(p) = self.poll() {
                return Ok(Some(p));
            }
            if now_ms() >= deadline {
                return Ok(None);
            }
            sleep(Some(deadline));
        }
    }

    fn unmask(&self, port: Port) -> Result<()> {
        let mut ports = self.ports.lock();
        let slot = ports.iter_mut().find(|(p, _)| *p == port).ok_or(Error::BadPort(port))?;
        slot.1 = false;
        Ok(())
    }
}

/// The PPIs a waiting guest wakes for.
pub const WAKE_PPIS: u32 = 1 << gl::EVTCHN_PPI | 1 << gl::VTIMER_PPI;

/// The store's doorbell: its port in a handle of its own.
pub struct StoreBell {
    events: Events,
    port: Port,
}

impl StoreBell {
    pub fn new(shared: &'static SharedInfo, port: Port) -> Self {
        let events = Events::new(shared);
        events.adopt(port);
        Self { events, port }
    }
}

impl pv_transport::xs_ring::Doorbell for StoreBell {
    fn notify(&mut self) -> Result<()> {
        self.events.notify(self.port)
    }

    fn wait(&mut self, timeout_ms: Option<u32>) -> Result<()> {
        // A request without limit still wakes now and then to look again.
        if self.events.wait(timeout_ms.unwrap_or(1000))?.is_some() {
            self.events.unmask(self.port)?;
        }
        Ok(())
    }

    fn now_ms(&self) -> u64 {
        now_ms()
    }
}
