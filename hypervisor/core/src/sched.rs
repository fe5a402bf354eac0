//! Schedulers. The null scheduler binds each vCPU to one pCPU for good: no
//! run queue, no tick, a pCPU without a vCPU sleeps.

use crate::bundle::{Bundle, MAX_VCPUS};

pub const MAX_PCPUS: usize = 8;

/// A vCPU: (domain index, vCPU index within the domain).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuId {
    pub domain: u8,
    pub vcpu: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlacementError {
    PcpuOutOfRange { domain: u8, pcpu: u8 },
    PcpuTaken { pcpu: u8, first: VcpuId, second: VcpuId },
}

/// Which vCPU each pCPU runs under the null scheduler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NullPlacement {
    pub slots: [Option<VcpuId>; MAX_PCPUS],
}

impl NullPlacement {
    /// Checks the pins again at boot (the build checked them already): a
    /// bundle that over-commits a pCPU is refused rather than half-booted.
    pub fn from_bundle(bundle: &Bundle<'_>, ncpus: usize) -> Result<Self, PlacementError> {
        let ncpus = ncpus.min(MAX_PCPUS);
        let mut slots = [None; MAX_PCPUS];
        for (d, dom) in bundle.domains().enumerate() {
            for (v, &pcpu) in dom.pins().iter().enumerate().take(MAX_VCPUS) {
                let id = VcpuId { domain: d as u8, vcpu: v as u8 };
                let p = pcpu as usize;
                if p >= ncpus {
                    return Err(PlacementError::PcpuOutOfRange { domain: d as u8, pcpu });
                }
                if let Some(first) = slots[p] {
                    return Err(PlacementError::PcpuTaken { pcpu, first, second: id });
                }
                slots[p] = Some(id);
            }
        }
        Ok(NullPlacement { slots })
    }

    pub fn vcpu_on(&self, pcpu: usize) -> Option<VcpuId> {
        self.slots.get(pcpu).copied().flatten()
    }

    /// The pCPU a vCPU is pinned to.
    pub fn pcpu_of(&self, id: VcpuId) -> Option<usize> {
        self.slots.iter().position(|s| *s == Some(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::*;

    fn bundle_with(pins: &[&[u8]]) -> Vec<u8> {
        let board = BoardDesc {
            ncpus: 4,
            vwfi: Vwfi::Native,
            scheduler: Scheduler::Null,
            uart_base: 0,
            gicd_base: 0,
            gicr_base: 0,
            ram_base: 0,
            ram_size: 0,
        };
        let names = ["a", "b", "c"];
        let doms: Vec<DomainDesc> = pins
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut pa = [0u8; MAX_VCPUS];
                pa[..p.len()].copy_from_slice(p);
                DomainDesc {
                    name: names[i],
                    vcpus: p.len() as u8,
                    pins: pa,
                    flags: 0,
                    on_poweroff: Action::Destroy,
                    on_reboot: Action::Restart,
                    on_crash: Action::Destroy,
                    mem_pa: 0,
                    mem_size: 1 << 20,
                    load_offset: 0,
                    image: &[],
                    ..Default::default()
                }
            })
            .collect();
        encode(&board, &doms).unwrap()
    }

    #[test]
    fn places_each_vcpu_on_its_pinned_pcpu() {
        let bytes = bundle_with(&[&[1], &[2, 3]]);
        let b = Bundle::parse(&bytes).unwrap();
        let p = NullPlacement::from_bundle(&b, 4).unwrap();
        assert_eq!(p.vcpu_on(0), None);
        assert_eq!(p.vcpu_on(1), Some(VcpuId { domain: 0, vcpu: 0 }));
        assert_eq!(p.vcpu_on(3), Some(VcpuId { domain: 1, vcpu: 1 }));
        assert_eq!(p.pcpu_of(VcpuId { domain: 1, vcpu: 0 }), Some(2));
    }

    #[test]
    fn refuses_overcommit_and_missing_cpus() {
        let bytes = bundle_with(&[&[1], &[1]]);
        let b = Bundle::parse(&bytes).unwrap();
        assert!(matches!(NullPlacement::from_bundle(&b, 4), Err(PlacementError::PcpuTaken { pcpu: 1, .. })));
        let bytes = bundle_with(&[&[5]]);
        let b = Bundle::parse(&bytes).unwrap();
        assert_eq!(
            NullPlacement::from_bundle(&b, 4),
            Err(PlacementError::PcpuOutOfRange { domain: 0, pcpu: 5 })
        );
    }
}
