//! The boot bundle the hypervisor parses at boot: any bytes either parse
//! into domains whose fields stay inside the bundle, or are refused.
#![no_main]

use hv_core::bundle::Bundle;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = Bundle::parse(data) {
        for d in b.domains() {
            let _ = (d.is_system_controller(), d.has_vpl011(), d.pins().len(), d.passthrough().len());
        }
        assert!(b.domain_count() == b.domains().count());
    }
});
