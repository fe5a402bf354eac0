//! A guest's accesses to its virtual GIC distributor (GICv3's and GICv2's)
//! and redistributors,
//! interleaved with interrupts arriving and list registers being filled:
//! any sequence leaves the vGIC consistent (no panic, kicks only for the
//! domain's own vCPUs, list registers only with valid interrupt ids).
#![no_main]

use hv_core::esr::Access;
use hv_core::vgic::{lr, lr_v2, VGic, NR_IRQS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&n, ops)) = data.split_first() else { return };
    let nvcpus = usize::from(n % 7) + 1; // below the mask width, so the kick check can fail
    let mut g = VGic::new(nvcpus);
    let mut lrs = [0u64; 16];
    for op in ops.chunks_exact(12) {
        let offset = u64::from(u32::from_le_bytes([op[1], op[2], op[3], op[4]]) & 0x3_ffff);
        let value = u64::from_le_bytes(op[4..12].try_into().unwrap());
        let acc = Access { size: [1, 2, 4, 8][usize::from(op[0] & 3)], write: op[0] & 4 != 0, reg: 0, sign_extend: false, sf: true };
        let vcpu = usize::from(op[1]) % nvcpus;
        let kick = match op[0] >> 3 & 15 {
            0 => g.dist_access(offset & 0xffff, acc, value).1,
            1 => g.redist_access(offset, acc, value).1,
            2 => g.inject(vcpu, (value % 1024) as u32, op[2] & 1 != 0),
            3 => g.set_level((value % 1024) as u32, op[2] & 1 != 0),
            4 => g.send_sgi(vcpu, value),
            5 => {
                let nlr = usize::from(op[2] % 16) + 1;
                g.flush(vcpu, &mut lrs[..nlr]);
                for &v in &lrs[..nlr] {
                    assert!(lr::is_free(v) || (lr::intid(v) as usize) < NR_IRQS, "LR {v:#x}");
                }
                0
            }
            6 => {
                g.forget_lrs(vcpu);
                0
            }
            // GICv2's distributor, from any vCPU the guest could name.
            7 | 8 => g.dist_access_v2(usize::from(op[1] % 9), offset & 0xfff, acc, value).1,
            9 => {
                g.pin_to_vcpu0((value % 1100) as u32);
                0
            }
            10 => {
                for &v in &lrs {
                    let back = lr_v2::to_v3(lr_v2::from_v3(v));
                    assert_eq!(lr::is_free(back), lr::is_free(v), "LR {v:#x} changed state through GICH_LR");
                }
                0
            }
            _ => {
                let _ = g.has_deliverable(vcpu);
                0
            }
        };
        assert_eq!(u32::from(kick) >> nvcpus, 0, "kicked a vCPU the domain does not have");
    }
});
