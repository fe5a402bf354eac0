//! Trap syndromes as the hardware reports them for whatever a guest
//! executes, and the emulated load and store values they lead to.
#![no_main]

use hv_core::esr::{decode, insn_len, Trap};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Short inputs count too (zero-padded), so coverage grows from the
    // first byte libFuzzer tries.
    let mut b = [0u8; 16];
    let n = data.len().min(16);
    b[..n].copy_from_slice(&data[..n]);
    let esr = u64::from_le_bytes(b[..8].try_into().unwrap());
    let raw = u64::from_le_bytes(b[8..].try_into().unwrap());
    assert!(matches!(insn_len(esr), 2 | 4));
    if let Trap::DataAbort(a) = decode(esr) {
        if let Some(acc) = a.valid {
            assert!(matches!(acc.size, 1 | 2 | 4 | 8));
            let v = acc.load_value(raw);
            if !acc.sf {
                assert_eq!(v >> 32, 0, "a 32-bit load must not set the upper half");
            }
            let _ = acc.store_value(raw);
        }
    }
});
