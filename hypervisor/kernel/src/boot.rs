//! Boot: find the bundle through the device tree, set up EL2, create every
//! domain (memory, stage-2 tables, vGIC) and start the pCPUs.

use crate::arch::{entry, gic, memory, mmu, psci, sysreg, uart};
use crate::console::hvlog;
use crate::domain::*;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use hv_core::bundle::{self, Bundle, DomainDesc, Vwfi};
use hv_core::lifecycle::FaultWatch;
use hv_core::sched::{Placement, MAX_PCPUS};
use hv_core::stage2::{self, MemKind, Stage2};
use hv_core::vgic::VGic;
use hv_core::vuart::VUart;

/// Where the boot loader put things, from the device tree.
struct BootInfo {
    ram: (u64, u64),
    bundle: Option<(u64, u64)>,
    dtb: (u64, u64),
    cpu_aff: [u64; MAX_PCPUS],
    ncpus: usize,
}

fn read_dtb(dtb: u64) -> Option<BootInfo> {
    // SAFETY: the boot loader passes the device tree's address in x0 and
    // leaves it in RAM untouched; `from_ptr` reads and checks its header
    // before trusting the size.
    let fdt = unsafe { fdt::Fdt::from_ptr(dtb as *const u8) }.ok()?;
    let region = fdt.memory().regions().next()?;
    let ram = (region.starting_address as u64, region.size? as u64);
    let mut info = BootInfo {
        ram,
        bundle: None,
        dtb: (dtb, fdt.total_size() as u64),
        cpu_aff: [0; MAX_PCPUS],
        ncpus: 0,
    };
    for cpu in fdt.cpus().take(MAX_PCPUS) {
        info.cpu_aff[info.ncpus] = cpu.ids().first() as u64;
        info.ncpus += 1;
    }
    // Boot modules (QEMU guest-loader, U-Boot): the one that starts with the
    // bundle magic is ours.
    if let Some(chosen) = fdt.find_node("/chosen") {
        for m in chosen.children() {
            let Some((addr, size)) = m.property("reg").and_then(|p| module_reg(p.value)) else { continue };
            if size as usize >= bundle::HEADER_SIZE {
                // SAFETY: a boot module the loader placed in RAM; it stays
                // untouched (domain memory is checked not to overlap it).
                let head = unsafe { memory::boot_blob(addr, 8) };
                if head == bundle::MAGIC {
                    info.bundle = Some((addr, size));
                }
            }
        }
    }
    Some(info)
}

/// A module's `reg`: loaders write it with 2+2 cells (QEMU's guest-loader,
/// U-Boot), even though /chosen declares no cell sizes; 1+1 is accepted too.
fn module_reg(v: &[u8]) -> Option<(u64, u64)> {
    let cell = |i: usize| v.get(4 * i..4 * i + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as u64);
    match v.len() {
        16 => Some((cell(0)? << 32 | cell(1)?, cell(2)? << 32 | cell(3)?)),
        8 => Some((cell(0)?, cell(1)?)),
        _ => None,
    }
}

fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 < b.0.saturating_add(b.1) && b.0 < a.0.saturating_add(a.1)
}

#[no_mangle]
extern "C" fn primary_main(dtb: u64) -> ! {
    hvlog!("cockpit hypervisor {} starting on pCPU 0", env!("CARGO_PKG_VERSION"));
    let Some(info) = read_dtb(dtb) else { halt("no usable device tree in x0") };
    let Some((baddr, bsize)) = info.bundle else { halt("no boot bundle among the /chosen modules") };
    // SAFETY: the bundle module lies in RAM that nothing writes: domain RAM
    // is checked against it below, and the hypervisor never writes it.
    let blob = unsafe { memory::boot_blob(baddr, bsize as usize) };
    let bundle = match Bundle::parse(blob) {
        Ok(b) => b,
        Err(e) => halt_fmt(format_args!("boot bundle rejected: {:?}", e)),
    };
    let board = bundle.board;
    uart::init(board.uart_base);
    mmu::build(info.ram.0);
    mmu::enable();
    sysreg_write_vbar();
    gic::init_distributor(board.gicd_base, board.gicr_base);
    gic::init_cpu(0);

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

    let (image_start, image_end) = memory::image_range();
    // (start, length) of what domain RAM must never cover.
    let reserved = [(image_start, image_end - image_start), (baddr, bsize), info.dtb];
    let mut domains = heapless::Vec::new();
    for (i, desc) in bundle.domains().enumerate() {
        let reserved_hit = reserved.iter().any(|&r| overlaps((desc.mem_pa, desc.mem_size), r));
        let dom = create_domain(i, desc, &placement, &info, reserved_hit);
        let _ = domains.push(dom);
    }
    // Passed-through interrupts go to the pCPU of their domain's vCPU 0.
    let mut spi_owner = [0u8; hv_core::vgic::NR_IRQS];
    for (i, dom) in domains.iter().enumerate() {
        if dom.state.load(core::sync::atomic::Ordering::Relaxed) != DOM_RUNNING {
            continue;
        }
        let pcpu = dom.vcpus.first().map_or(0, |v| v.pcpu).min(MAX_PCPUS - 1);
        for p in dom.desc.passthrough() {
            if let Some(slot) = spi_owner.get_mut(p.spi as usize).filter(|_| p.spi >= 32) {
                *slot = i as u8 + 1;
                gic::route_spi(p.spi, info.cpu_aff[pcpu]);
            }
            hvlog!("{}: passthrough {:#x}+{:#x}, SPI {}", dom.name(), p.pa, p.size, p.spi);
        }
    }
    let mut scrub_list = heapless::Vec::new();
    for dom in domains.iter().filter(|d| d.state.load(Ordering::Relaxed) == DOM_RUNNING) {
        let _ = scrub_list.push((dom.desc.mem_pa, dom.desc.mem_size));
    }
    crate::scrub::plan(scrub_list);
    SYSTEM.call_once(|| System {
        domains,
        placement,
        trap_wfi: board.vwfi == Vwfi::Trap,
        cpu_aff: info.cpu_aff,
        ncpus,
        spi_owner,
    });

    for cpu in 1..ncpus {
        let r = psci::cpu_on(info.cpu_aff[cpu], secondary_entry_addr(), cpu as u64);
        if r != 0 {
            hvlog!("pCPU {} did not start (PSCI {})", cpu, r);
        }
    }
    // Every pCPU scrubs domain RAM; then the images go in and vCPUs start.
    crate::scrub::work();
    crate::scrub::wait();
    start_domains();
    crate::vcpu::cpu_main(0)
}

#[no_mangle]
extern "C" fn secondary_main(cpu: usize) -> ! {
    mmu::enable();
    sysreg_write_vbar();
    gic::init_cpu(cpu);
    crate::scrub::work();
    crate::vcpu::cpu_main(cpu)
}

fn sysreg_write_vbar() {
    crate::arch::sysreg::write!(vbar_el2, entry::vectors());
    sysreg::isb();
}

fn secondary_entry_addr() -> u64 {
    extern "C" {
        static secondary_entry: u8;
    }
    // A code label: only its address is taken.
    core::ptr::addr_of!(secondary_entry) as u64
}

/// Builds a domain: its RAM loaded, stage-2 tables from its own pool, vCPU 0
/// ready to start. A domain whose memory cannot be honoured is created
/// destroyed, with the reason logged; the others boot regardless.
fn create_domain(i: usize, desc: DomainDesc<'static>, placement: &Placement, info: &BootInfo, reserved_hit: bool) -> Domain {
    let mut vcpus = heapless::Vec::new();
    for v in 0..desc.vcpus as usize {
        let id = hv_core::sched::VcpuId { domain: i as u8, vcpu: v as u8 };
        let _ = vcpus.push(Vcpu {
            state: AtomicU8::new(VCPU_OFF),
            entry: AtomicU64::new(0),
            context: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            pcpu: placement.pcpu_of(id).unwrap_or(usize::MAX),
            faults: spin::Mutex::new(FaultWatch::default()),
        });
    }
    let mut dom = Domain {
        desc,
        vmid: i as u16 + 1,
        s2_root: 0,
        state: AtomicU8::new(DOM_DESTROYED),
        restarts: AtomicU32::new(0),
        aborts_logged: AtomicU32::new(0),
        vgic: spin::Mutex::new(VGic::new(desc.vcpus as usize)),
        vuart: spin::Mutex::new(VUart::new()),
        vcpus,
        epoch: AtomicU64::new(sysreg::counter()),
    };
    let in_ram = desc.mem_pa >= info.ram.0 && desc.mem_pa + desc.mem_size <= info.ram.0 + info.ram.1;
    // Passthrough is for device registers: never RAM (that would reach
    // other domains or the hypervisor).
    if desc.passthrough().iter().any(|p| overlaps((p.pa, p.size), info.ram)) {
        hvlog!("{}: a passthrough region overlaps RAM: not started", desc.name);
        return dom;
    }
    if !in_ram || reserved_hit {
        hvlog!("{}: memory {:#x}+{:#x} is outside RAM or overlaps the hypervisor, DTB or bundle: not started", desc.name, desc.mem_pa, desc.mem_size);
        return dom;
    }
    let mut regions: heapless::Vec<(u64, u64, u64), { 1 + bundle::MAX_PASSTHROUGH }> = heapless::Vec::new();
    let _ = regions.push((desc.ram_ipa, desc.mem_pa, desc.mem_size));
    for p in desc.passthrough() {
        let _ = regions.push((p.pa, p.pa, p.size));
    }
    let Some(mut pool) = memory::TablePool::reserve(stage2::frames_needed(&regions)) else {
        hvlog!("{}: page-table pool exhausted: not started", desc.name);
        return dom;
    };
    let s2 = Stage2::new(&mut pool).and_then(|mut s2| {
        s2.map(&mut pool, desc.ram_ipa, desc.mem_pa, desc.mem_size, MemKind::Ram)?;
        // Passed-through devices appear at their host addresses.
        for p in desc.passthrough() {
            s2.map(&mut pool, p.pa, p.pa, p.size, MemKind::Device)?;
        }
        Ok(s2)
    });
    match s2 {
        Ok(s2) => dom.s2_root = s2.root(),
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
        dom.load_blobs();
        if let Some(v0) = dom.vcpus.first() {
            v0.entry.store(dom.entry_ipa(), Ordering::Relaxed);
            v0.context.store(dom.boot_context(), Ordering::Relaxed);
            v0.state.store(VCPU_ON_PENDING, Ordering::Release);
        }
        kick_vcpus(dom, 1, 0);
    }
}

fn halt(msg: &str) -> ! {
    halt_fmt(format_args!("{}", msg))
}

fn halt_fmt(args: core::fmt::Arguments<'_>) -> ! {
    hvlog!("{}", args);
    hvlog!("cannot boot: powering off");
    psci::system_off()
}
