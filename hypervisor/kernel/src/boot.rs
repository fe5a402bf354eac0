//! Boot, once the hardware is up (`arch::handoff`): create every domain
//! (memory, stage-2 tables, vGIC), start the pCPUs, scrub and load.

use crate::arch::handoff::{self, Handoff};
use crate::arch::memory::{self, DomainRam};
use crate::arch::{gic, psci};
use crate::console::hvlog;
use crate::domain::*;
use core::sync::atomic::{AtomicU8, Ordering};
use hv_core::bundle::{self, DomainDesc, Vwfi};
use hv_core::sched::{Placement, MAX_PCPUS};
use hv_core::stage2::{self, MemKind, Stage2};
use xen_abi::guest_layout as gl;

/// The primary CPU, once the handoff has brought the hardware up.
pub fn primary_main(info: Handoff) -> ! {
    let bundle = info.bundle;
    let board = bundle.board;
    let ncpus = (board.ncpus as usize).min(info.ncpus.max(1)).min(MAX_PCPUS);
    let placement = match Placement::from_bundle(&bundle, ncpus) {
        Ok(p) => p,
        Err(e) => halt_fmt(format_args!("vCPU placement rejected: {:?}", e)),
    };
    let mut shared = heapless::Vec::<usize, MAX_PCPUS>::new();
    for c in (0..ncpus).filter(|&c| placement.is_rtds(c)) {
        let _ = shared.push(c);
    }
    hvlog!(
        "{} domains on {} pCPUs, null scheduler, vwfi={}{}",
        bundle.domain_count(),
        ncpus,
        if board.vwfi == Vwfi::Native { "native" } else { "trap" },
        if shared.is_empty() { "" } else { "; rtds on shared pCPUs" }
    );
    if !shared.is_empty() {
        hvlog!("rtds pCPUs: {:?} (WFI always traps there)", shared.as_slice());
    }

    let gicv = (board.gic == bundle::GicVersion::V2).then_some(board.gicv_base);
    let mut count = 0;
    for (i, desc) in bundle.domains().enumerate() {
        if crate::domain::create(i, || create_domain(i, desc, &placement, gicv)).is_some() {
            count = i + 1;
        }
    }
    let domains = Domains::new(count);
    // Passed-through interrupts go to the pCPU of their domain's vCPU 0.
    let mut spi_owner = [0u8; hv_core::vgic::NR_IRQS];
    let mut routes: heapless::Vec<(u32, usize), { bundle::MAX_DOMAINS * bundle::MAX_PASSTHROUGH }> = heapless::Vec::new();
    for (i, dom) in domains.iter().enumerate() {
        if dom.state.load(core::sync::atomic::Ordering::Relaxed) != DOM_RUNNING {
            continue;
        }
        let pcpu = dom.vcpus.first().map_or(0, |v| v.pcpu).min(MAX_PCPUS - 1);
        for p in dom.desc.passthrough() {
            if let Some(slot) = spi_owner.get_mut(p.spi as usize).filter(|_| p.spi >= 32) {
                *slot = i as u8 + 1;
                let _ = routes.push((p.spi, pcpu));
                // Its guest may route it elsewhere; it stays with vCPU 0.
                dom.vgic(|g| g.pin_to_vcpu0(p.spi));
            }
            hvlog!("{}: passthrough {:#x}+{:#x}, SPI {}", dom.name(), p.pa, p.size, p.spi);
        }
    }
    let mut scrub_list = heapless::Vec::new();
    for dom in domains.iter().filter(|d| d.state.load(Ordering::Relaxed) == DOM_RUNNING) {
        if let Some(ram) = dom.ram {
            let _ = scrub_list.push(ram);
        }
    }
    crate::scrub::plan(scrub_list);
    SYSTEM.call_once(|| System {
        domains,
        placement,
        trap_wfi: board.vwfi == Vwfi::Trap,
        gic_v2: board.gic == bundle::GicVersion::V2,
        cpu_aff: info.cpu_aff,
        ncpus,
        spi_owner,
    });

    let mut started = 1;
    for cpu in 1..ncpus {
        let r = handoff::start_secondary(info.cpu_aff[cpu], cpu);
        if r != 0 {
            hvlog!("pCPU {} did not start (PSCI {})", cpu, r);
        } else {
            started += 1;
        }
    }
    // Every pCPU scrubs domain RAM; then the images go in and vCPUs start.
    crate::scrub::work();
    crate::scrub::wait();
    // Every pCPU brings its GIC interface up first: a GICv2 SPI names its
    // target's CPU interface, known once that CPU has read it.
    let freq = crate::arch::sysreg::counter_hz();
    if !gic::wait_cpus_up(started, freq) {
        hvlog!("not every pCPU brought its GIC interface up within a second");
    }
    for &(spi, pcpu) in &routes {
        if !gic::route_spi(spi, pcpu, info.cpu_aff[pcpu]) {
            hvlog!("SPI {}: pCPU {} has no GIC interface up; left disabled", spi, pcpu);
        }
    }
    start_domains();
    crate::vcpu::cpu_main(0)
}

/// A secondary pCPU, started by the primary.
pub fn secondary_main(cpu: usize) -> ! {
    crate::scrub::work();
    crate::vcpu::cpu_main(cpu)
}

/// Builds a domain: its RAM loaded, stage-2 tables from its own pool, vCPU 0
/// ready to start. A domain whose memory cannot be honoured is created
/// destroyed, with the reason logged; the others boot regardless.
/// `gicv`: a GICv2 board's virtual CPU interface, which every domain sees
/// as its CPU interface.
fn create_domain(i: usize, desc: DomainDesc<'static>, placement: &Placement, gicv: Option<u64>) -> Domain {
    let pcpus = (0..desc.vcpus).map(|v| placement.pcpu_of(hv_core::sched::VcpuId { domain: i as u8, vcpu: v }));
    let mut dom = Domain::new(desc, i as u16 + 1, pcpus);
    // Passthrough is for device registers: never RAM (that would reach
    // other domains or the hypervisor).
    if desc.passthrough().iter().any(|p| memory::overlaps_ram((p.pa, p.size))) {
        hvlog!("{}: a passthrough region overlaps RAM: not started", desc.name);
        return dom;
    }
    match DomainRam::claim(desc.mem_pa, desc.mem_size) {
        Ok(ram) => dom.ram = Some(ram),
        Err(e) => {
            hvlog!("{}: memory {:#x}+{:#x} refused ({:?}): not started", desc.name, desc.mem_pa, desc.mem_size, e);
            return dom;
        }
    }
    let mut regions: heapless::Vec<(u64, u64, u64), { 2 + bundle::MAX_PASSTHROUGH }> = heapless::Vec::new();
    let _ = regions.push((desc.ram_ipa, desc.mem_pa, desc.mem_size));
    for p in desc.passthrough() {
        let _ = regions.push((p.pa, p.pa, p.size));
    }
    if let Some(pa) = gicv {
        let _ = regions.push((gl::GICC_BASE, pa, gl::GICC_SIZE));
    }
    // A backend's RAM is mapped in pages, so granted pages can replace its own.
    let frames = if desc.serves != 0 {
        stage2::frames_needed(&regions[1..]) + stage2::frames_needed_pages(desc.ram_ipa, desc.mem_size)
    } else {
        stage2::frames_needed(&regions)
    };
    let Some(mut pool) = memory::TablePool::reserve(frames) else {
        hvlog!("{}: page-table pool exhausted: not started", desc.name);
        return dom;
    };
    let s2 = Stage2::new(&mut pool).and_then(|mut s2| {
        if desc.serves != 0 {
            s2.map_pages(&mut pool, desc.ram_ipa, desc.mem_pa, desc.mem_size, MemKind::Ram)?;
        } else {
            s2.map(&mut pool, desc.ram_ipa, desc.mem_pa, desc.mem_size, MemKind::Ram)?;
        }
        // Passed-through devices appear at their host addresses.
        for p in desc.passthrough() {
            // Devices sharing a page (virtio-mmio slots) map it once.
            if s2.translate(&pool, p.pa) == Some((p.pa, MemKind::Device)) && p.size == 4096 {
                continue;
            }
            s2.map(&mut pool, p.pa, p.pa, p.size, MemKind::Device)?;
        }
        if let Some(pa) = gicv {
            s2.map(&mut pool, gl::GICC_BASE, pa, gl::GICC_SIZE, MemKind::Device)?;
        }
        Ok(s2)
    });
    match s2 {
        Ok(s2) => match pool.root(s2.root()) {
            Some(root) => {
                dom.s2_root = root;
                if desc.serves != 0 {
                    dom.s2_live = crate::domain::Lock::new(Some((s2, pool)));
                }
            }
            None => {
                hvlog!("{}: stage-2 root outside its table pool: not started", desc.name);
                return dom;
            }
        },
        Err(e) => {
            hvlog!("{}: stage-2 mapping failed ({:?}): not started", desc.name, e);
            return dom;
        }
    }
    hvlog!(
        "{}: {} vCPU(s) on pCPU {:?}, {} MiB at {:#x}, image {} bytes",
        desc.name,
        desc.vcpus,
        desc.pins(),
        desc.mem_size >> 20,
        desc.mem_pa,
        desc.image.len()
    );
    // Scrubbed by all pCPUs, loaded and started by `start_domains`.
    dom.state = AtomicU8::new(DOM_RUNNING);
    dom
}

/// After the boot-time scrub: loads each domain's images and lets its
/// vCPU 0 start.
fn start_domains() {
    for dom in system().domains.iter() {
        if dom.state.load(Ordering::Acquire) != DOM_RUNNING {
            continue;
        }
        crate::xen::reset(dom, true);
        dom.load_blobs();
        if let Some(v0) = dom.vcpus.first() {
            v0.arm_image_boot(dom.entry_ipa(), dom.boot_context());
            v0.state.store(VCPU_ON_PENDING, Ordering::Release);
        }
        kick_vcpus(dom, 1, 0);
    }
}

fn halt_fmt(args: core::fmt::Arguments<'_>) -> ! {
    hvlog!("{}", args);
    hvlog!("cannot boot: powering off");
    crate::console::flush();
    psci::system_off()
}
