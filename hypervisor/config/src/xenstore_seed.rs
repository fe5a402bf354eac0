//! The xenstore nodes each domain's (re)start writes (dom0less: no
//! toolstack), packed as `hv_core::xenstore::seed` records: its home
//! directory, its name, id and vCPUs, and for every PV device both directories
//! libxl would write (the frontend's in its home, readable by the backend;
//! the backend's in the backend's home, readable by the frontend). A
//! backend domain's seed holds the backend directories of the devices it
//! serves, so a restart of either side starts the device afresh.

use hv_core::xenstore::seed::{push, Record, FLAG_FRESH, FLAG_PEER_WRITES, NO_READER};
use pv_backend::toolstack::DeviceSpec;

use crate::Domain;

/// Domain ids in Xen's ABI: the domain's index + 1 (its VMID).
pub fn domid(index: usize) -> u16 {
    index as u16 + 1
}

/// The seed of domain `d` (empty for a domain without Xen's ABI).
pub fn seed(domains: &[Domain], d: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    if domains[d].xen.is_none() {
        return Ok(out);
    }
    let id = domid(d);
    let home = format!("/local/domain/{id}");
    let mut rec = |flags: u8, owner: u16, reader: u16, path: &str, value: &str| {
        push(&mut out, &Record { flags, owner, reader, path, value }).map_err(|e| format!("xenstore node {path}: {e}"))
    };
    rec(FLAG_FRESH, id, NO_READER, &home, "")?;
    // The name is the hypervisor's, so a guest cannot take another's place
    // where a backend places by name (the compositor's layout); the one
    // domain that serves its devices reads it, as dom0 reads it on Xen.
    let name_reader = domains[d].pv.first().map_or(id, |s| s.be_dom);
    rec(0, hv_core::xenstore::DOMID_HV, name_reader, &format!("{home}/name"), &domains[d].name)?;
    rec(0, id, NO_READER, &format!("{home}/domid"), &id.to_string())?;
    // Linux's Xen CPU hotplug reads each vCPU's availability.
    for v in 0..domains[d].vcpus {
        rec(0, id, NO_READER, &format!("{home}/cpu/{v}/availability"), "online")?;
    }
    for (path, peer) in &domains[d].xen_shares {
        rec(FLAG_FRESH | FLAG_PEER_WRITES, id, domid(*peer), &format!("{home}/{path}"), "")?;
    }
    for spec in &domains[d].pv {
        frontend(&mut rec, spec)?;
        backend(&mut rec, spec)?;
    }
    for other in domains {
        for spec in other.pv.iter().filter(|s| s.be_dom == id) {
            backend(&mut rec, spec)?;
        }
    }
    // A backend's gntdev and privcmd take their pages from Linux's balloon.
    // A balloon target below its RAM makes Linux set that much aside at
    // boot, so mappings never make it hot-add memory it cannot have.
    if domains.iter().any(|o| o.pv.iter().any(|s| s.be_dom == id)) {
        let visible = domains[d].memory.size - xen_pages_size(&domains[d]);
        let pool = (visible / 8).min(BALLOON_POOL);
        rec(0, hv_core::xenstore::DOMID_HV, id, &format!("{home}/memory/target"), &((visible - pool) >> 10).to_string())?;
    }
    // A legacy vfb's backend maps its frontend's framebuffer frames through
    // privcmd, which Linux allows a domain other than dom0 only for its
    // `target` (the frontend); the hypervisor's node, so the driver cannot
    // change it. One target per domain, as in Xen.
    let vfb_frontend = domains.iter().flat_map(|o| &o.pv).find(|s| s.be_dom == id && s.fe_kind == "vfb");
    if let Some(s) = vfb_frontend {
        rec(0, hv_core::xenstore::DOMID_HV, id, &format!("{home}/target"), &s.fe_dom.to_string())?;
    }
    Ok(out)
}

/// Memory a backend domain's balloon keeps for mapping others' pages.
const BALLOON_POOL: u64 = 32 << 20;

fn xen_pages_size(d: &Domain) -> u64 {
    d.xen.map_or(0, |x| hv_core::bundle::xen_pages_size(x.grant_frames))
}

type Rec<'a> = dyn FnMut(u8, u16, u16, &str, &str) -> Result<(), String> + 'a;

fn frontend(rec: &mut Rec<'_>, s: &DeviceSpec) -> Result<(), String> {
    let (fe, be) = (s.fe_dir(), s.be_dir());
    rec(FLAG_FRESH, s.fe_dom, s.be_dom, &fe, "")?;
    rec(0, s.fe_dom, s.be_dom, &format!("{fe}/backend"), &be)?;
    rec(0, s.fe_dom, s.be_dom, &format!("{fe}/backend-id"), &s.be_dom.to_string())?;
    rec(0, s.fe_dom, s.be_dom, &format!("{fe}/state"), "1")?;
    for (k, v) in &s.fe_nodes {
        rec(0, s.fe_dom, s.be_dom, &format!("{fe}/{k}"), v)?;
    }
    Ok(())
}

fn backend(rec: &mut Rec<'_>, s: &DeviceSpec) -> Result<(), String> {
    let (fe, be) = (s.fe_dir(), s.be_dir());
    rec(FLAG_FRESH, s.be_dom, s.fe_dom, &be, "")?;
    rec(0, s.be_dom, s.fe_dom, &format!("{be}/frontend"), &fe)?;
    rec(0, s.be_dom, s.fe_dom, &format!("{be}/frontend-id"), &s.fe_dom.to_string())?;
    rec(0, s.be_dom, s.fe_dom, &format!("{be}/online"), "1")?;
    rec(0, s.be_dom, s.fe_dom, &format!("{be}/state"), "1")?;
    for (k, v) in &s.be_nodes {
        rec(0, s.be_dom, s.fe_dom, &format!("{be}/{k}"), v)?;
    }
    Ok(())
}

/// Nodes owned by domain `id` across all seeds (each path counted once:
/// a frontend's and its backend's seeds both hold the backend directory),
/// with the directories the store creates above them in its home, which
/// inherit its ownership.
pub fn owned_by(seeds: &[Vec<u8>], id: u16) -> usize {
    let home = format!("/local/domain/{id}");
    let mut paths = std::collections::BTreeSet::new();
    for seed in seeds {
        for r in hv_core::xenstore::seed::records(seed).filter(|r| r.owner == id) {
            let mut p = r.path;
            paths.insert(p.to_string());
            while let Some(i) = p.rfind('/') {
                p = &p[..i];
                if !p.starts_with(&home) {
                    break;
                }
                paths.insert(p.to_string());
            }
        }
    }
    paths.len()
}
