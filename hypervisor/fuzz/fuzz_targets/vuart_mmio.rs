//! A guest's accesses to its virtual PL011: any sequence keeps the line
//! buffer bounded and the device answering.
#![no_main]

use hv_core::esr::Access;
use hv_core::vuart::{VUart, LINE_MAX};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut u = VUart::new();
    for op in data.chunks_exact(6) {
        let acc = Access { size: [1, 2, 4, 8][usize::from(op[0] & 3)], write: op[0] & 4 != 0, reg: 0, sign_extend: false, sf: true };
        let offset = u64::from(u16::from_le_bytes([op[1], op[2]]));
        let value = u64::from(u32::from_le_bytes([op[2], op[3], op[4], op[5]]));
        let effect = u.access(offset, acc, value);
        // A line is handed out whole, never longer than LINE_MAX; one not
        // taken (op[0] & 8 clear) keeps collecting without overflowing.
        if effect.line_ready || op[0] & 8 != 0 {
            assert!(u.take_line().as_bytes().len() <= LINE_MAX);
        }
        let _ = u.irq_level();
    }
});
