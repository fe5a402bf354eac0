//! `interop-probe grant-copy <dom> <gref>` (backend): GNTTABOP_copy
//! through `/dev/xen/gntdev`, checked against a mapping of the same grant:
//! the page copied out equals the page mapped; copied back in (the same
//! bytes, so the frontend sees no change) it still reads the same; and a
//! reference never granted (0, the toolstack's) is refused.

use pv_transport::linux::Gntdev;
use pv_transport::{GrantMapper, RingMemory};

use crate::Result;

pub fn grant_copy(dom: &str, gref: &str) -> Result {
    let dom: u16 = dom.parse().map_err(|_| format!("domain: {dom}"))?;
    let gref: u32 = gref.parse().map_err(|_| format!("grant: {gref}"))?;
    let dev = Gntdev::open().map_err(|e| format!("gntdev: {e}"))?;
    let mut copied = vec![0u8; 4096];
    dev.copy_from(dom, gref, 0, &mut copied).map_err(|e| format!("copy out: {e}"))?;
    let map = dev.map(dom, &[gref], false).map_err(|e| format!("map: {e}"))?;
    let mut mapped = vec![0u8; 4096];
    map.read_bytes(0, &mut mapped);
    if copied != mapped {
        let at = copied.iter().zip(&mapped).position(|(a, b)| a != b).unwrap_or(0);
        return Err(format!("the copy differs from the mapping at byte {at}"));
    }
    drop(map);
    dev.copy_to(dom, gref, 0, &copied).map_err(|e| format!("copy in: {e}"))?;
    let mut again = vec![0u8; 4096];
    dev.copy_from(dom, gref, 0, &mut again).map_err(|e| format!("copy out again: {e}"))?;
    if again != copied {
        return Err("the page changed across a copy of itself".into());
    }
    let refused = dev.copy_from(dom, 0, 0, &mut again[..16]);
    if refused.is_ok() {
        return Err("grant 0 (never granted) was copied".into());
    }
    let nonzero = copied.iter().filter(|&&b| b != 0).count();
    println!("probe: grant-copy ok 4096 bytes ({nonzero} non-zero) equal to the mapping, copied back unchanged; grant 0 refused ({})", refused.unwrap_err());
    Ok(())
}
