//! Set/way cache maintenance (`DC ISW`, `DC CSW`, `DC CISW`) from guests.
//!
//! By set/way a guest would clean or invalidate its pCPU's physical caches:
//! lines of every domain that ran there (on a shared pCPU, a timing effect
//! the others can measure), and never the copies other CPUs hold, so it
//! cannot maintain its own memory that way in an SMP system anyway.
//! HCR_EL2.TSW traps it and, as Xen and KVM do, the domain's set/way
//! operation becomes a clean and invalidate by address of its own RAM.
//!
//! A guest walks every set and way of every level, thousands of
//! instructions: the first one flushes, the rest are complete at once,
//! until the guest turns its data cache on or off (SCTLR_EL1.C), which is
//! when firmware and boot code use set/way. The flush is done a chunk per
//! trap with the instruction retried, so it is preemptible and charged to
//! the vCPU that asked for it.

use crate::esr::{Cp15Access, SysReg, SysRegAccess};

pub const DC_ISW: SysReg = SysReg(1, 0, 7, 6, 2);
pub const DC_CSW: SysReg = SysReg(1, 0, 7, 10, 2);
pub const DC_CISW: SysReg = SysReg(1, 0, 7, 14, 2);

pub fn is_set_way(acc: &SysRegAccess) -> bool {
    !acc.read && (acc.is(DC_ISW) || acc.is(DC_CSW) || acc.is(DC_CISW))
}

/// The same operations from a 32-bit guest: MCR p15, 0, Rt, c7, CRm, 2
/// with CRm 6 (DCISW), 10 (DCCSW) or 14 (DCCISW), trapped by HCR.TSW.
pub fn is_set_way_cp15(acc: &Cp15Access) -> bool {
    !acc.read && acc.opc1 == 0 && acc.crn == 7 && acc.opc2 == 2 && matches!(acc.crm, 6 | 10 | 14)
}

/// One vCPU's set/way state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetWay {
    /// A flush under way: the next offset into the domain's RAM, and the
    /// data-cache state it began with (a toggle meanwhile starts it over).
    next: Option<(u64, bool)>,
    /// The data-cache state (SCTLR_EL1.C) of the last completed flush.
    flushed_with: Option<bool>,
}

/// What to do for one trapped set/way instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// Clean and invalidate `(offset, len)` of the domain's RAM now.
    pub flush: Option<(u64, u64)>,
    /// The instruction is complete: step over it. Otherwise the guest
    /// executes it again and the flush goes on from where it stopped.
    pub complete: bool,
    /// A new flush began with this instruction.
    pub started: bool,
}

impl SetWay {
    /// A set/way instruction trapped while the guest's data cache is
    /// `caches_on`; `ram` is the domain's RAM size and `chunk` (non-zero)
    /// the most to flush per trap.
    pub fn on_trap(&mut self, caches_on: bool, ram: u64, chunk: u64) -> Step {
        let chunk = chunk.max(1);
        let mut started = false;
        let at = match self.next {
            Some((at, with)) if with == caches_on => at,
            Some(_) => {
                started = true;
                0
            }
            None if self.flushed_with == Some(caches_on) => return Step { flush: None, complete: true, started },
            None => {
                started = true;
                0
            }
        };
        let len = chunk.min(ram.saturating_sub(at));
        let end = at + len;
        if end >= ram {
            self.next = None;
            self.flushed_with = Some(caches_on);
        } else {
            self.next = Some((end, caches_on));
        }
        Step { flush: (len > 0).then_some((at, len)), complete: self.next.is_none(), started }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::esr::{decode, Trap};

    fn run_until_complete(s: &mut SetWay, caches_on: bool, ram: u64, chunk: u64) -> (u64, u32) {
        let (mut flushed, mut traps) = (0, 0);
        loop {
            let step = s.on_trap(caches_on, ram, chunk);
            traps += 1;
            if let Some((off, len)) = step.flush {
                assert_eq!(off, flushed, "chunks are contiguous");
                flushed += len;
            }
            if step.complete {
                return (flushed, traps);
            }
            assert!(traps < 10_000);
        }
    }

    #[test]
    fn a_32_bit_guests_set_way_ops_are_recognised_and_nothing_else_of_c7() {
        let cp15 = |crm: u64, opc2: u64, read: bool| match decode(0x03 << 26 | opc2 << 17 | 7 << 10 | crm << 1 | read as u64) {
            Trap::Cp15(a) => a,
            other => panic!("{other:?}"),
        };
        for crm in [6, 10, 14] {
            assert!(is_set_way_cp15(&cp15(crm, 2, false)));
            assert!(!is_set_way_cp15(&cp15(crm, 2, true)));
        }
        // DCCIMVAC (c7, c14, 1: by address) and ICIALLU (c7, c5, 0) are not.
        assert!(!is_set_way_cp15(&cp15(14, 1, false)));
        assert!(!is_set_way_cp15(&cp15(5, 0, false)));
    }

    #[test]
    fn the_first_set_way_op_flushes_all_ram_in_chunks_then_the_rest_are_free() {
        let mut s = SetWay::default();
        assert_eq!(run_until_complete(&mut s, false, 10 << 20, 4 << 20), (10 << 20, 3));
        // The rest of the walk over sets and ways: no flush.
        for _ in 0..1000 {
            assert_eq!(s.on_trap(false, 10 << 20, 4 << 20), Step { flush: None, complete: true, started: false });
        }
    }

    #[test]
    fn turning_the_data_cache_on_or_off_makes_the_next_op_flush_again() {
        let mut s = SetWay::default();
        run_until_complete(&mut s, false, 1 << 20, 1 << 20);
        assert_eq!(run_until_complete(&mut s, true, 1 << 20, 1 << 20), (1 << 20, 1));
        assert_eq!(run_until_complete(&mut s, true, 1 << 20, 1 << 20), (0, 1));
        assert_eq!(run_until_complete(&mut s, false, 1 << 20, 1 << 20), (1 << 20, 1));
    }

    #[test]
    fn a_toggle_in_the_middle_of_a_flush_starts_it_over() {
        let mut s = SetWay::default();
        assert_eq!(s.on_trap(false, 4 << 20, 1 << 20).flush, Some((0, 1 << 20)));
        assert_eq!(s.on_trap(false, 4 << 20, 1 << 20).flush, Some((1 << 20, 1 << 20)));
        let step = s.on_trap(true, 4 << 20, 1 << 20);
        assert_eq!(step.flush, Some((0, 1 << 20)), "none of the RAM may be skipped");
        assert!(step.started);
    }

    #[test]
    fn a_zero_chunk_or_empty_ram_still_completes() {
        let mut s = SetWay::default();
        assert!(s.on_trap(false, 0, 0).complete);
        let mut s = SetWay::default();
        assert_eq!(run_until_complete(&mut s, false, 3, 0), (3, 3));
    }

    #[test]
    fn set_way_ops_are_recognised_from_their_syndrome() {
        // ESR for `dc cisw, x3`: EC 0x18, Op0=1 Op1=0 CRn=7 CRm=14 Op2=2, Rt=3, write.
        let iss = (2 << 17) | (7 << 10) | (3 << 5) | (14 << 1) | (1 << 20); // Op1 = 0
        let esr = (0x18u64 << 26) | (1 << 25) | iss;
        match decode(esr) {
            Trap::SysReg(acc) => {
                assert!(is_set_way(&acc));
                assert!(acc.is(DC_CISW));
            }
            t => panic!("{t:?}"),
        }
    }
}
