//! Where each vCPU runs. pCPUs are either null-scheduled (exactly one vCPU,
//! bound for good: no run queue, no tick) or shared by several vCPUs under
//! the real-time scheduler (`rtds`), as the description's cpupools say.

use crate::bundle::{Bundle, MAX_VCPUS};

pub const MAX_PCPUS: usize = 8;
pub const MAX_PER_PCPU: usize = 8;

/// A vCPU: (domain index, vCPU index within the domain).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuId {
    pub domain: u8,
    pub vcpu: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlacementError {
    PcpuOutOfRange { domain: u8, pcpu: u8 },
    /// A null-scheduled pCPU asked to run a second vCPU, or a pCPU asked to
    /// run both null and real-time vCPUs.
    PcpuTaken { pcpu: u8, first: VcpuId, second: VcpuId },
    TooManyOnPcpu { pcpu: u8 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    slots: [[Option<VcpuId>; MAX_PER_PCPU]; MAX_PCPUS],
    rtds: [bool; MAX_PCPUS],
}

impl Placement {
    /// Checks the pins again at boot (the build checked them already): a
    /// bundle that over-commits a null pCPU is refused rather than half-booted.
    pub fn from_bundle(bundle: &Bundle<'_>, ncpus: usize) -> Result<Self, PlacementError> {
        let ncpus = ncpus.min(MAX_PCPUS);
        let mut p = Placement { slots: [[None; MAX_PER_PCPU]; MAX_PCPUS], rtds: [false; MAX_PCPUS] };
        for (d, dom) in bundle.domains().enumerate() {
            for (v, &pcpu) in dom.pins().iter().enumerate().take(MAX_VCPUS) {
                let id = VcpuId { domain: d as u8, vcpu: v as u8 };
                let c = pcpu as usize;
                if c >= ncpus {
                    return Err(PlacementError::PcpuOutOfRange { domain: d as u8, pcpu });
                }
                if let Some(first) = p.slots[c][0] {
                    if !dom.is_rtds() || !p.rtds[c] {
                        return Err(PlacementError::PcpuTaken { pcpu, first, second: id });
                    }
                }
                let free = p.slots[c].iter().position(|s| s.is_none()).ok_or(PlacementError::TooManyOnPcpu { pcpu })?;
                p.slots[c][free] = Some(id);
                p.rtds[c] = dom.is_rtds();
            }
        }
        Ok(p)
    }

    /// The vCPU of a null-scheduled pCPU (the first of a shared one).
    pub fn vcpu_on(&self, pcpu: usize) -> Option<VcpuId> {
        self.slots.get(pcpu).and_then(|s| s[0])
    }

    /// Every vCPU placed on `pcpu`.
    pub fn vcpus_on(&self, pcpu: usize) -> impl Iterator<Item = VcpuId> + '_ {
        self.slots.get(pcpu).into_iter().flat_map(|s| s.iter().flatten().copied())
    }

    /// Whether `pcpu` is shared under the real-time scheduler.
    pub fn is_rtds(&self, pcpu: usize) -> bool {
        self.rtds.get(pcpu).copied().unwrap_or(false)
    }

    /// The pCPU a vCPU is pinned to.
    pub fn pcpu_of(&self, id: VcpuId) -> Option<usize> {
        self.slots.iter().position(|s| s.contains(&Some(id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::*;

    fn bundle_with(pins: &[(&[u8], bool)]) -> Vec<u8> {
        let board = BoardDesc {
            ncpus: 4,
            vwfi: Vwfi::Native,
            scheduler: Scheduler::Null,
            // QEMU virt's frames: a bundle whose frames overlap is refused.
            uart_base: 0x0900_0000,
            gicd_base: 0x0800_0000,
            gicr_base: 0x080A_0000,
            ram_base: 0,
            ram_size: 0,
            gic: GicVersion::V3,
            uart: crate::bundle::UartKind::Pl011,
            aux_core_boot: 0,
            realtime_counter: 0,
            clksel_sys: 0,
            crossbar_base: 0,
            crossbar_lines: 0,
            crossbar_sources: 0,
            gicc_base: 0,
            gich_base: 0,
            gicv_base: 0,
        };
        let names = ["a", "b", "c"];
        let doms: Vec<DomainDesc> = pins
            .iter()
            .enumerate()
            .map(|(i, (p, rtds))| {
                let mut pa = [0u8; MAX_VCPUS];
                pa[..p.len()].copy_from_slice(p);
                DomainDesc {
                    name: names[i],
                    vcpus: p.len() as u8,
                    pins: pa,
                    mem_size: 1 << 20,
                    rtds_budget_us: if *rtds { 3000 } else { 0 },
                    rtds_period_us: if *rtds { 10000 } else { 0 },
                    ..Default::default()
                }
            })
            .collect();
        encode(&board, &[], &doms).unwrap()
    }

    #[test]
    fn places_each_vcpu_on_its_pinned_pcpu() {
        let bytes = bundle_with(&[(&[1], false), (&[2, 3], false)]);
        let b = Bundle::parse(&bytes).unwrap();
        let p = Placement::from_bundle(&b, 4).unwrap();
        assert_eq!(p.vcpu_on(0), None);
        assert_eq!(p.vcpu_on(1), Some(VcpuId { domain: 0, vcpu: 0 }));
        assert_eq!(p.vcpu_on(3), Some(VcpuId { domain: 1, vcpu: 1 }));
        assert_eq!(p.pcpu_of(VcpuId { domain: 1, vcpu: 0 }), Some(2));
        assert!(!p.is_rtds(1));
    }

    #[test]
    fn refuses_overcommit_of_null_pcpus_and_missing_cpus() {
        let bytes = bundle_with(&[(&[1], false), (&[1], false)]);
        let b = Bundle::parse(&bytes).unwrap();
        assert!(matches!(Placement::from_bundle(&b, 4), Err(PlacementError::PcpuTaken { pcpu: 1, .. })));
        let bytes = bundle_with(&[(&[5], false)]);
        let b = Bundle::parse(&bytes).unwrap();
        assert_eq!(Placement::from_bundle(&b, 4), Err(PlacementError::PcpuOutOfRange { domain: 0, pcpu: 5 }));
    }

    #[test]
    fn real_time_vcpus_share_a_pcpu_but_not_with_a_null_one() {
        let bytes = bundle_with(&[(&[3], true), (&[3], true), (&[1], false)]);
        let b = Bundle::parse(&bytes).unwrap();
        let p = Placement::from_bundle(&b, 4).unwrap();
        assert!(p.is_rtds(3));
        assert_eq!(p.vcpus_on(3).count(), 2);
        let bytes = bundle_with(&[(&[3], true), (&[3], false)]);
        let b = Bundle::parse(&bytes).unwrap();
        assert!(matches!(Placement::from_bundle(&b, 4), Err(PlacementError::PcpuTaken { pcpu: 3, .. })));
    }
}
