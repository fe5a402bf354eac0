//! What the boot loader hands over, and the hardware brought up from it.
//!
//! The loader leaves the device tree's address in a register (x0 on
//! aarch64, r2 on Armv7-A: the entry code passes it on) and the boot bundle
//! among the device tree's /chosen modules. This module is the one place
//! that trusts those addresses: it reads them, records what domain RAM must
//! never cover, and brings the console, the hypervisor's MMU and the GIC up from the
//! bundle's board facts. `boot.rs` receives only checked values.

use super::{entry, gic, memory, mmu, psci, uart};
use crate::console::hvlog;
use hv_core::bundle::{self, Bundle};
use hv_core::sched::MAX_PCPUS;

/// What the rest of boot needs from the loader.
pub struct Handoff {
    pub bundle: Bundle<'static>,
    /// Affinity (MPIDR) of each pCPU the device tree lists.
    pub cpu_aff: [u64; MAX_PCPUS],
    pub ncpus: usize,
}

struct DtbInfo {
    ram: (u64, u64),
    /// Every RAM bank, as declared: passthrough must touch none.
    banks: hv_core::el2_map::RamBanks,
    bundle: Option<(u64, u64)>,
    dtb: (u64, u64),
    cpu_aff: [u64; MAX_PCPUS],
    ncpus: usize,
    /// The tree names a PSCI firmware.
    psci: bool,
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

fn read_dtb(dtb: usize) -> Option<DtbInfo> {
    let ptr = dtb as *const u8;
    // SAFETY: the entry code passed the device tree's address the boot
    // protocol (arm64 `Image`, zImage) names, which stays untouched in RAM; `from_ptr` checks the
    // header's magic and version before it trusts the declared size.
    let fdt = unsafe { fdt::Fdt::from_ptr(ptr) }.ok()?;
    // The RAM this image runs from (the region holding it: a board may
    // list more banks), trimmed to whole 2 MiB chunks: the EL2 map maps
    // chunks, and a chunk firmware shares with the RAM's ragged edge must
    // not become normal memory.
    let here = memory::image_range().0;
    let region = fdt.memory().regions().find(|r| {
        let (b, n) = (r.starting_address as u64, r.size.unwrap_or(0) as u64);
        here >= b && here - b < n
    })?;
    let (base, size) = (region.starting_address as u64, region.size? as u64);
    let chunk = hv_core::el2_map::CHUNK;
    let start = base.checked_add(chunk - 1)? & !(chunk - 1);
    let end = base.checked_add(size)? & !(chunk - 1);
    let ram = (start, end.checked_sub(start).filter(|&n| n > 0)?);
    let mut banks = hv_core::el2_map::RamBanks::EMPTY;
    // Every memory node: `fdt`'s `memory()` reads only the first, and
    // boards such as R-Car H3 give each bank a node of its own.
    let root = fdt.find_node("/")?;
    for node in root.children().filter(|n| n.name == "memory" || n.name.starts_with("memory@")) {
        for r in node.reg().into_iter().flatten() {
            banks.add(r.starting_address as u64, r.size.unwrap_or(0) as u64);
        }
    }
    let mut info = DtbInfo { ram, banks, bundle: None, dtb: (dtb as u64, fdt.total_size() as u64), cpu_aff: [0; MAX_PCPUS], ncpus: 0, psci: false };
    info.psci = fdt.find_compatible(&["arm,psci-1.0", "arm,psci-0.2", "arm,psci"]).is_some();
    for cpu in fdt.cpus().take(MAX_PCPUS) {
        info.cpu_aff[info.ncpus] = cpu.ids().first() as u64;
        info.ncpus += 1;
    }
    // Boot modules (QEMU guest-loader, U-Boot): the one that starts with the
    // bundle magic is ours. Only modules inside RAM the EL2 map reaches
    // are read.
    // Or the initrd (QEMU's -initrd, U-Boot's `booti kernel initrd fdt`).
    // Looked up among the root's children: `fdt` 0.1's path search misses
    // /chosen in some trees (ZynqMP's, after /aliases).
    let chosen = fdt.find_node("/").and_then(|root| root.children().find(|n| n.name == "chosen"));
    if let Some(chosen) = chosen {
        let modules = chosen.children().filter_map(|m| m.property("reg").and_then(|p| module_reg(p.value)));
        let initrd = initrd_range(&chosen);
        for (addr, size) in modules.chain(initrd) {
            if size < bundle::HEADER_SIZE as u64 || !memory::within(mmu::reachable(ram), (addr, size)) {
                continue;
            }
            // SAFETY: a module the loader placed inside RAM (checked above);
            // nothing writes it, as domain RAM may not cover it (see
            // `memory::reserve`) and the hypervisor never writes it.
            let head = unsafe { memory::boot_blob(addr, 8) };
            if head == bundle::MAGIC && info.bundle.is_none() {
                info.bundle = Some((addr, size));
            }
        }
    }
    Some(info)
}

/// `/chosen`'s `linux,initrd-start` and `-end` (one or two cells each) as
/// (address, size).
fn initrd_range(chosen: &fdt::node::FdtNode<'_, '_>) -> Option<(u64, u64)> {
    let cells = |name: &str| {
        let v = chosen.property(name)?.value;
        match v.len() {
            4 => Some(u32::from_be_bytes([v[0], v[1], v[2], v[3]]) as u64),
            8 => Some(u64::from_be_bytes([v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]])),
            _ => None,
        }
    };
    let (start, end) = (cells("linux,initrd-start")?, cells("linux,initrd-end")?);
    Some((start, end.checked_sub(start)?))
}

/// The primary CPU's first Rust code (`_start` jumps here with the
/// device tree's address).
#[no_mangle]
extern "C" fn primary_main(dtb: usize) -> ! {
    // Nothing is printed until the bundle names the UART: a failure before
    // that halts silently (a board's UART address is RAM on another).
    let Some(info) = read_dtb(dtb) else { halt(format_args!("no usable device tree at {:#x}", dtb)) };
    let Some((baddr, bsize)) = info.bundle else { halt(format_args!("no boot bundle among the /chosen modules")) };
    // SAFETY: the bundle module lies in RAM (checked by `read_dtb`) that
    // nothing writes: it is reserved below, before any domain RAM is claimed.
    let blob = unsafe { memory::boot_blob(baddr, bsize as usize) };
    let bundle = match Bundle::parse(blob) {
        Ok(b) => b,
        Err(e) => halt(format_args!("boot bundle rejected: {e}")),
    };
    let (image_start, image_end) = memory::image_range();
    memory::reserve(info.ram, info.banks, &[(image_start, image_end - image_start), (baddr, bsize), info.dtb]);
    let board = bundle.board;
    // The build checked the board's frames against board.toml's RAM; the
    // map follows the RAM the loader reports, so check again before any
    // frame is driven, the UART included (on another board its address
    // may be RAM): a failure here halts silently.
    for f in board.own_frames().into_iter().flatten() {
        if !hv_core::el2_map::is_device((f.base, f.size), info.ram) {
            halt(format_args!(
                "{} at {:#x} would not be device memory with RAM at {:#x}+{:#x} (the device tree's)",
                f.what, f.base, info.ram.0, info.ram.1
            ));
        }
    }
    // SAFETY: the UART's kind and base are board facts from the bundle the
    // build validated (`hv-config`), device memory by the check above; the
    // MMU is still off, so no map is needed to reach it.
    unsafe { uart::init(board.uart, board.uart_base) };
    hvlog!("cockpit hypervisor {} starting on pCPU 0", env!("CARGO_PKG_VERSION"));
    psci::set_firmware_present(info.psci);
    if let Some(why) = super::sysreg::cpu_unsupported() {
        halt(format_args!("{why}"));
    }
    // SAFETY: once, on the primary CPU, no other CPU started yet; `info.ram`
    // is the RAM the device tree reports, which this code runs from.
    unsafe { mmu::build(info.ram) };
    // SAFETY: the table was just built; this code, its stack and data lie
    // in RAM, which the table maps one to one.
    unsafe { mmu::enable() };
    // SAFETY: the GIC's frames are board facts from the validated bundle,
    // checked above to be device memory in the table just enabled.
    unsafe { gic::init(&board) };
    entry::install_vectors();
    gic::init_cpu(0);
    super::platform::init(&bundle);
    crate::boot::primary_main(Handoff { bundle, cpu_aff: info.cpu_aff, ncpus: info.ncpus })
}

/// A secondary CPU's first Rust code, started by `start_secondary`.
#[no_mangle]
extern "C" fn secondary_main(cpu: usize) -> ! {
    // SAFETY: the primary built the table before starting this CPU.
    unsafe { mmu::enable_secondary() };
    entry::install_vectors();
    gic::init_cpu(cpu);
    crate::boot::secondary_main(cpu)
}

/// Starts pCPU `cpu` (affinity `mpidr`) at the secondary entry point.
/// Returns the firmware's answer (PSCI's codes).
pub fn start_secondary(mpidr: u64, cpu: usize) -> i64 {
    psci::start_cpu(mpidr, cpu)
}

fn halt(args: core::fmt::Arguments<'_>) -> ! {
    hvlog!("{}", args);
    hvlog!("cannot boot: powering off");
    crate::console::flush();
    psci::system_off()
}
