//! The primary CPU's bring-up on Armv7-A, as far as the port goes: the
//! console from the device tree, the CPU's features, the HYP vectors'
//! self-test; then it stops and says why.

use super::entry::{self, HypFrame, Vector};
use super::{gic, sysreg, uart};
use crate::console::{self, hvlog};
use core::sync::atomic::{AtomicUsize, Ordering};
use hv_core::bundle::{BoardDesc, GicVersion, Scheduler, UartKind, Vwfi};

/// HSR exception classes this layer knows.
const EC_HVC: u32 = 0x12;

/// The immediate the self-test's HVC carries (`sysreg::hvc_self_test`).
const SELF_TEST_IMM: u32 = 0x5a;

/// The console UART the device tree's /chosen names, and its kind.
fn console_of(fdt: &fdt::Fdt<'_>) -> Option<(UartKind, u64)> {
    let node = fdt.chosen().stdout()?;
    let base = node.reg()?.next()?.starting_address as u64;
    let compatible = node.compatible()?;
    let kind = if compatible.all().any(|c| c == "arm,pl011") {
        UartKind::Pl011
    } else if compatible.all().any(|c| c == "ti,dra742-uart" || c == "ti,omap4-uart") {
        UartKind::Omap
    } else {
        return None;
    };
    Some((kind, base))
}

#[no_mangle]
extern "C" fn armv7_primary(dtb: usize) -> ! {
    // SAFETY: r2 held the device tree's address (the zImage boot protocol);
    // it stays untouched in RAM, and `from_ptr` checks the header's magic
    // and version before it trusts the size it declares.
    let fdt = unsafe { fdt::Fdt::from_ptr(dtb as *const u8) };
    let Ok(fdt) = fdt else { halt() };
    let Some((kind, base)) = console_of(&fdt) else { halt() };
    // SAFETY: the device tree's console is a UART of this kind at `base`,
    // which nothing else drives.
    unsafe { uart::init(kind, base) };

    if sysreg::mode() != sysreg::MODE_HYP {
        // The entry code checked; a CPU that says otherwise now is broken.
        hvlog!("armv7a: not in HYP mode (mode {:#x}): stopping", sysreg::mode());
        halt();
    }
    let virt = (sysreg::id_pfr1() >> 12) & 0xf == 1;
    let lpae = sysreg::id_mmfr0() & 0xf >= 5;
    hvlog!(
        "hypervisor (armv7a) on {}: HYP mode, CPU {:#010x} (MPIDR {:#x}), virtualization extensions {}, LPAE {}",
        fdt.root().model(),
        sysreg::midr(),
        sysreg::mpidr(),
        if virt { "yes" } else { "NO" },
        if lpae { "yes" } else { "NO" }
    );
    let cpus = fdt.cpus().count();
    let (ram_base, ram_size) = fdt
        .memory()
        .regions()
        .next()
        .map_or((0, 0), |r| (r.starting_address as u64, r.size.unwrap_or(0) as u64));
    // The GICv2's frames in the tree's order: distributor, CPU interface,
    // virtual interface control, virtual CPU interface.
    let mut frames = [0u64; 4];
    if let Some(regs) = fdt.find_compatible(&["arm,cortex-a15-gic", "arm,gic-400"]).and_then(|n| n.reg()) {
        for (f, r) in frames.iter_mut().zip(regs) {
            *f = r.starting_address as u64;
        }
    }
    hvlog!(
        "device tree: {} CPUs, RAM {:#x}+{:#x}, GICv2 distributor at {:#x}, counter at {} Hz",
        cpus,
        ram_base,
        ram_size,
        frames[0],
        sysreg::counter_hz()
    );
    if frames.contains(&0) {
        hvlog!("armv7a: the device tree names no GICv2 with virtualization frames: stopping");
        halt();
    }
    if !virt || !lpae {
        hvlog!("armv7a: this CPU lacks the virtualization extensions or LPAE: stopping");
        halt();
    }
    // The HYP MMU, with caches: the RAM this image runs from as normal
    // memory (trimmed to whole 2 MiB chunks, as on aarch64), the rest of
    // the low 4 GiB as device memory.
    let here = entry::image_start();
    let Some((start, size)) = fdt.memory().regions().find_map(|r| {
        let (b, n) = (r.starting_address as u64, r.size? as u64);
        (here >= b && here - b < n).then_some((b, n))
    }) else {
        hvlog!("armv7a: no RAM in the device tree holds this image: stopping");
        halt();
    };
    let chunk = hv_core::el2_map::CHUNK;
    let ram_start = start.saturating_add(chunk - 1) & !(chunk - 1);
    let ram_end = start.saturating_add(size) & !(chunk - 1);
    if ram_end <= ram_start {
        hvlog!("armv7a: the RAM holding this image is smaller than 2 MiB: stopping");
        halt();
    }
    // SAFETY: once, on the primary CPU, before anything else runs; the
    // range is the RAM this code, its stack and data, and the device tree
    // run from.
    unsafe {
        super::mmu::build((ram_start, ram_end - ram_start));
        super::mmu::enable();
    }
    hvlog!(
        "HYP MMU {}: the low 4 GiB one to one, RAM {:#x}..{:#x} cached",
        if super::mmu::enabled() { "on" } else { "OFF" },
        ram_start,
        ram_end
    );
    let board = BoardDesc {
        ncpus: cpus as u32,
        vwfi: Vwfi::Native,
        scheduler: Scheduler::Null,
        uart_base: base,
        gicd_base: frames[0],
        gicr_base: 0,
        ram_base: ram_start,
        ram_size: ram_end - ram_start,
        gic: GicVersion::V2,
        uart: kind,
        gicc_base: frames[1],
        gich_base: frames[2],
        gicv_base: frames[3],
    };
    // SAFETY: the frames are the device tree's GICv2, in the device memory
    // of the HYP map, driven by nothing else.
    unsafe { gic::init(&board) };
    gic::init_cpu(0);
    gic::reset_virtual_interface(gic::lr_count());
    hvlog!("GICv2 up: {} list registers", gic::lr_count());
    start_secondaries(&fdt);
    let back = sysreg::hvc_self_test(0x1000);
    if back == 0x1000 + SELF_TEST_IMM {
        hvlog!("HYP vectors: an HVC from HYP came back through the vector table with its immediate read from HSR");
    } else {
        hvlog!("HYP vectors: the HVC self-test came back with {back:#x}, not {:#x}: stopping", 0x1000 + SELF_TEST_IMM);
        halt();
    }
    let dtb_range = (dtb as u64, fdt.total_size() as u64);
    super::probe::run((ram_start, ram_end - ram_start), dtb_range, frames[3], finish)
}

/// pCPUs that finished their own bring-up.
static UP: AtomicUsize = AtomicUsize::new(1);

/// Starts the other CPUs the device tree lists (PSCI CPU_ON, where the
/// firmware has PSCI: QEMU's virt; the J6 will use its AuxCoreBoot
/// registers) and waits for each to come up in HYP mode.
fn start_secondaries(fdt: &fdt::Fdt<'_>) {
    let has_psci = fdt.find_compatible(&["arm,psci-1.0", "arm,psci-0.2"]).is_some();
    for (i, cpu) in fdt.cpus().enumerate().skip(1).take(entry::MAX_STARTED - 1) {
        let mpidr = cpu.ids().first() as u32;
        if !has_psci {
            hvlog!("pCPU {i} (MPIDR {mpidr:#x}): no PSCI in the device tree to start it with");
            continue;
        }
        let rc = sysreg::psci_cpu_on(mpidr, i as u32);
        let deadline = sysreg::counter() + sysreg::counter_hz();
        while UP.load(Ordering::Acquire) <= i && sysreg::counter() < deadline {
            core::hint::spin_loop();
        }
        if UP.load(Ordering::Acquire) <= i {
            hvlog!("pCPU {i} (MPIDR {mpidr:#x}) did not come up (PSCI CPU_ON returned {rc})");
        }
    }
}

/// A secondary pCPU, its HYP MMU already on (the entry code).
#[no_mangle]
extern "C" fn armv7_secondary(cpu: usize) -> ! {
    gic::init_cpu(cpu);
    hvlog!(
        "pCPU {} up: {} mode, MPIDR {:#x}, HYP MMU {}",
        sysreg::cpu_index(),
        if sysreg::mode() == sysreg::MODE_HYP { "HYP" } else { "NOT HYP" },
        sysreg::mpidr(),
        if super::mmu::enabled() { "on" } else { "OFF" }
    );
    UP.fetch_add(1, Ordering::Release);
    halt()
}

/// The end of the bring-up, after the probe guest: says how it went.
fn finish(ok: bool) -> ! {
    if ok {
        hvlog!("armv7a: bring-up done; the port stops here (domains from a boot bundle, the emulated distributor and real guests are next)");
    } else {
        hvlog!("armv7a: the probe guest did not see what it should: stopping");
    }
    console::flush();
    halt()
}

/// An exception taken to HYP mode. Only the self-test's HVC returns;
/// anything else is a fault in the hypervisor itself.
pub fn exception(frame: &mut HypFrame, vector: Vector) {
    let hsr = sysreg::hsr();
    if vector == Vector::HypervisorCall && hsr >> 26 == EC_HVC {
        frame.r[0] = frame.r[0].wrapping_add(hsr & 0xffff);
        return;
    }
    if vector == Vector::HypTrap && super::probe::exit(frame, hsr, finish).is_some() {
        return;
    }
    if vector == Vector::Irq {
        return super::probe::irq();
    }
    console::emergency_line(format_args!("hypervisor fault: HYP exception {:?}, HSR {:#010x}, ELR {:#010x}", vector, hsr, entry::elr_hyp()));
    halt()
}

fn halt() -> ! {
    loop {
        sysreg::wfi();
    }
}
