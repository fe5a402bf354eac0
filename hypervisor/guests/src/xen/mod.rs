//! Xen's guest ABI for a bare guest, found and brought up the way Linux
//! does it: the `/hypervisor` node of the boot device tree names the grant
//! window, `add_to_physmap` places shared_info and the grant frames,
//! `HVM_PARAM_STORE_PFN`/`_EVTCHN` name the xenstore ring. The result is
//! a [`pv_transport::Endpoint`], so the no_std PV frontends run on it
//! unchanged.

mod call;
mod events;
mod grants;
mod pages;

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use alloc::sync::Arc;

use pv_transport::xs_client::SpinClient;
use pv_transport::xs_ring::RingConnection;
use pv_transport::{DomId, Endpoint, Error, ForeignMapper, GrantMapper, GrantRef, Result, Shm, WatchEvent, Xenstore};
use xen_abi::hypercall::{hvmop, xenmem};

pub use events::WAKE_PPIS;
use events::{Events, SharedInfo, StoreBell};
use pages::Pages;

/// What the boot device tree says about the hypervisor.
#[derive(Clone, Copy, Debug)]
pub struct Discovery {
    /// Guest-physical base of the grant-table window.
    pub grant_base: u64,
    /// Frames the window holds: no more are placed, whatever the
    /// hypervisor allows.
    pub grant_frames: u64,
}

impl Discovery {
    /// Reads the `/hypervisor` node (`compatible = "xen,xen"`) of the
    /// device tree the hypervisor put in x0.
    ///
    /// # Safety
    /// `dtb` must be the address x0 held at entry, of a device tree in
    /// this domain's memory that nothing has overwritten.
    pub unsafe fn from_boot_dtb(dtb: u64) -> core::result::Result<Self, &'static str> {
        if dtb == 0 {
            return Err("no device tree in x0");
        }
        // SAFETY: the caller vouches for the address; the parser checks
        // the header's magic and sizes before reading on.
        let fdt = unsafe { fdt::Fdt::from_ptr(dtb as *const u8) }.map_err(|_| "the device tree in x0 does not parse")?;
        let node = fdt.find_node("/hypervisor").ok_or("no /hypervisor node: not offered Xen's ABI")?;
        if !node.compatible().is_some_and(|c| c.all().any(|s| s == "xen,xen")) {
            return Err("/hypervisor is not compatible with xen,xen");
        }
        let grant = node.reg().and_then(|mut r| r.next()).ok_or("/hypervisor has no grant window")?;
        let frames = grant.size.unwrap_or(0) / 4096;
        if frames == 0 {
            return Err("the grant window is empty");
        }
        Ok(Self { grant_base: grant.starting_address as u64, grant_frames: frames as u64 })
    }
}

/// Xen brought up: shared_info, the grant table and the store.
pub struct Xen {
    shared: &'static SharedInfo,
    table: &'static grants::Table,
    /// The store, over the one ring page.
    store: Arc<dyn Xenstore>,
}

fn errno(what: &'static str) -> impl Fn(call::Errno) -> &'static str {
    move |_| what
}

impl Xen {
    /// Registers shared_info and every grant frame. Call once.
    pub fn init(d: Discovery) -> core::result::Result<Self, &'static str> {
        let shared: &'static SharedInfo = Box::leak(Box::new(SharedInfo::register().ok_or("shared_info refused")?));
        let (_, max) = call::grant_query_size().map_err(errno("GNTTABOP_query_size failed"))?;
        let max = u64::from(max).min(d.grant_frames);
        let base_gfn = d.grant_base >> 12;
        for i in 0..max {
            call::add_to_physmap(xenmem::SPACE_GRANT_TABLE, i, base_gfn + i).map_err(errno("a grant frame was refused"))?;
        }
        // SAFETY: the window the device tree names is this domain's own
        // RAM (left out of its /memory), and nothing else of ours uses it.
        let frames = unsafe { Pages::given(d.grant_base, max as usize) }.ok_or("grant window not page-aligned")?;
        let table = Box::leak(Box::new(grants::Table::new(frames)));
        let store_pfn = call::hvm_param(hvmop::PARAM_STORE_PFN).map_err(errno("no store page"))?;
        let store_port = call::hvm_param(hvmop::PARAM_STORE_EVTCHN).map_err(errno("no store port"))? as u32;
        // 0: none; all ones: "not there yet" (the ABI's INVALID_PFN).
        if store_pfn == 0 || store_pfn == u64::MAX {
            return Err("no store page");
        }
        // SAFETY: the page HVM_PARAM_STORE_PFN names is this domain's own
        // RAM, outside its /memory; only this one connection uses it.
        let page = unsafe { Pages::given(store_pfn << 12, 1) }.ok_or("store page")?;
        let conn = RingConnection::new(page, StoreBell::new(shared, store_port)).map_err(|_| "store page")?;
        Ok(Self { shared, table, store: Arc::new(SpinClient::spin(conn)) })
    }

    /// An endpoint for one device, with its own event handle. Endpoints
    /// share the domain's one store connection (one ring): use one at a
    /// time, or their watch events mix.
    pub fn endpoint(&self) -> Result<Endpoint> {
        let store = self.store.clone();
        let domid = String::from_utf8(store.read("domid")?).ok().and_then(|s| s.trim_end_matches('\0').parse().ok());
        Ok(Endpoint {
            domid: domid.ok_or(Error::Invalid("domid"))?,
            store: Box::new(SharedStore(store)),
            events: Box::new(Events::new(self.shared)),
            grants: Arc::new(grants::Grants(self.table)),
            mapper: Arc::new(FrontendOnly),
            foreign: Arc::new(FrontendOnly),
        })
    }
}

/// The domain's store connection, lent to an endpoint.
struct SharedStore(Arc<dyn Xenstore>);

impl Xenstore for SharedStore {
    fn read(&self, path: &str) -> Result<Vec<u8>> {
        self.0.read(path)
    }
    fn write(&self, path: &str, value: &[u8]) -> Result<()> {
        self.0.write(path, value)
    }
    fn mkdir(&self, path: &str) -> Result<()> {
        self.0.mkdir(path)
    }
    fn rm(&self, path: &str) -> Result<()> {
        self.0.rm(path)
    }
    fn directory(&self, path: &str) -> Result<Vec<String>> {
        self.0.directory(path)
    }
    fn watch(&self, path: &str, token: &str) -> Result<()> {
        self.0.watch(path, token)
    }
    fn unwatch(&self, path: &str, token: &str) -> Result<()> {
        self.0.unwatch(path, token)
    }
    fn wait_watch(&self, timeout_ms: u32) -> Result<Option<WatchEvent>> {
        self.0.wait_watch(timeout_ms)
    }
    fn write_all(&self, entries: &[(&str, &[u8])]) -> Result<()> {
        self.0.write_all(entries)
    }
}

/// A frontend maps nothing of others'.
struct FrontendOnly;

impl GrantMapper for FrontendOnly {
    fn map(&self, _: DomId, _: &[GrantRef], _: bool) -> Result<Shm> {
        Err(Error::Unsupported("a bare frontend maps no grants"))
    }
}

impl ForeignMapper for FrontendOnly {
    fn map_frames(&self, _: DomId, _: &[u64], _: bool) -> Result<Shm> {
        Err(Error::Unsupported("a bare frontend maps no frames"))
    }
}
