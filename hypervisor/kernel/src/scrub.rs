//! Boot-time scrubbing of every domain's RAM, shared by all pCPUs: each
//! takes 2 MiB chunks from a common counter until none is left, so boot
//! waits for the RAM divided by the number of pCPUs, not all of it.

use crate::arch::memory::DomainRam;
use core::sync::atomic::{AtomicUsize, Ordering};

const CHUNK: u64 = 2 << 20;
const MAX_REGIONS: usize = hv_core::bundle::MAX_DOMAINS;

static REGIONS: spin::Once<heapless::Vec<DomainRam, MAX_REGIONS>> = spin::Once::new();
static NEXT: AtomicUsize = AtomicUsize::new(0);
static DONE: AtomicUsize = AtomicUsize::new(0);

fn chunks(len: u64) -> usize {
    len.div_ceil(CHUNK) as usize
}

/// The regions to scrub (primary CPU, before the secondaries start).
pub fn plan(regions: heapless::Vec<DomainRam, MAX_REGIONS>) {
    REGIONS.call_once(|| regions);
}

fn total() -> usize {
    REGIONS.get().map_or(0, |r| r.iter().map(|ram| chunks(ram.size())).sum())
}

/// Scrubs chunks until none is left. Every pCPU calls it once at boot.
pub fn work() {
    let Some(regions) = REGIONS.get() else { return };
    let total = total();
    loop {
        let mut i = NEXT.fetch_add(1, Ordering::AcqRel);
        if i >= total {
            return;
        }
        for ram in regions.iter() {
            let n = chunks(ram.size());
            if i < n {
                ram.zero(i as u64 * CHUNK, CHUNK);
                break;
            }
            i -= n;
        }
        DONE.fetch_add(1, Ordering::AcqRel);
    }
}

/// Waits until every chunk is scrubbed (the primary, before loading images).
pub fn wait() {
    let total = total();
    while DONE.load(Ordering::Acquire) < total {
        core::hint::spin_loop();
    }
}
