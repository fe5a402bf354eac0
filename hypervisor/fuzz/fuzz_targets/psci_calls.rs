//! A guest's SMCCC/PSCI calls, registers chosen by the fuzzer: every call
//! decodes, every answer is a PSCI or SMCCC code, and a CPU_ON or
//! AFFINITY_INFO target is only ever one of the caller's own vCPUs, with an
//! entry point inside its RAM.
#![no_main]

use hv_core::psci::{self, Call, Power};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut words = data.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap()));
    let (Some(nv), Some(base), Some(size)) = (words.next(), words.next(), words.next()) else { return };
    let nvcpus = (nv % 9) as usize;
    let ram = (base & !0xfff, size & 0xffff_ffff);
    while let (Some(x0), Some(x1), Some(x2), Some(x3)) = (words.next(), words.next(), words.next(), words.next()) {
        match psci::decode([x0, x1, x2, x3]) {
            Call::CpuOn { target, entry, .. } => match psci::cpu_on_target(nvcpus, ram, target, entry) {
                Ok(t) => {
                    assert!(t < nvcpus);
                    assert!(entry >= ram.0 && entry - ram.0 < ram.1, "entry {entry:#x} outside {ram:x?}");
                }
                Err(e) => assert!(e == xen_abi::psci::INVALID_PARAMETERS || e == xen_abi::psci::INVALID_ADDRESS),
            },
            Call::AffinityInfo { target, level } => {
                let r = psci::affinity_info(nvcpus, target, level, |t| {
                    assert!(t < nvcpus, "state of vCPU {t} of {nvcpus} asked");
                    [Power::On, Power::OnPending, Power::Off][t % 3]
                });
                assert!((-2..=2).contains(&r));
            }
            other => {
                if let Some(r) = psci::simple_answer(other) {
                    assert!(r >= -9, "{other:?} answered {r}");
                }
            }
        }
    }
});
