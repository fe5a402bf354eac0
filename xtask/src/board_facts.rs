//! A board file's facts against the board's real device trees: the GIC and
//! its frames, the console UART, RAM, the CPUs' affinities, the timer's and
//! the GIC's interrupts, and firmware's no-map memory. The trees come from
//! where the board says (`[devicetree] sources`): QEMU's own (`dumpdtb`),
//! Debian's arm64 kernel package, or a `.dts` of Debian's Linux source
//! compiled with `cpp` and `dtc`. Nothing is written from memory.

use fdt::node::FdtNode;
use fdt::Fdt;
use hv_config::{Board, DtSource, Gic, Region};
use hv_core::bundle::UartKind;
use hv_core::vgic::{HYP_TIMER_INTID, MAINTENANCE_INTID, VTIMER_INTID};

/// The device trees `board` names, each with where it came from.
pub fn trees(board: &Board) -> Result<Vec<(String, Vec<u8>)>, String> {
    if board.devicetrees.is_empty() {
        return Err(format!("board {} names no device tree to check against ([devicetree] sources in {})", board.name, board.path.display()));
    }
    let mut out = Vec::new();
    for s in &board.devicetrees {
        let (label, path) = match s {
            DtSource::Qemu => {
                let m = crate::qemu::Machine::for_board(board)?;
                let path = crate::artifacts::root().join(format!("target/dtbs/qemu-{}.dtb", board.name));
                crate::qemu::dump_dtb(&m, &path)?;
                (format!("QEMU's {}", m.machine), path)
            }
            DtSource::DebianDtb(rel) => (
                format!("Debian's {rel}"),
                crate::debian::kernel_dtb(crate::debian::DebArch::of_board(&board.arch), rel)?,
            ),
            DtSource::LinuxDts(rel) => (format!("Linux's {rel}"), crate::debian::linux_dts(rel)?),
        };
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        out.push((label, bytes));
    }
    Ok(out)
}

/// Every way `board` disagrees with the tree `dtb`; empty if none.
pub fn check(board: &Board, dtb: &[u8]) -> Vec<String> {
    let fdt = match Fdt::new(dtb) {
        Ok(f) => f,
        Err(e) => return vec![format!("not a device tree: {e:?}")],
    };
    let mut bad = Vec::new();
    cpus(board, &fdt, &mut bad);
    memory(board, &fdt, &mut bad);
    gic(board, &fdt, &mut bad);
    uart(board, &fdt, &mut bad);
    timer(&fdt, &mut bad);
    crossbar(board, &fdt, &mut bad);
    secondary_boot(board, &fdt, &mut bad);
    reserved(board, &fdt, &mut bad);
    devices(board, &fdt, &mut bad);
    bad
}

/// Each passthrough device: a node with its compatible and first region,
/// whose regions, interrupts and IOMMU streams are the catalog's. Regions
/// are CPU addresses (translated through each bus's `ranges`); where a
/// device sits alone in a bus window of its own (TI's target modules, a
/// page with the module's sysconfig registers), the catalog may give that
/// window, as passthrough maps whole pages. Interrupts under TI's IRQ
/// crossbar are crossbar inputs (`crossbar_inputs`), the rest GIC INTIDs.
fn devices(board: &Board, fdt: &Fdt<'_>, bad: &mut Vec<String>) {
    let paths = all_paths(fdt);
    for d in &board.devices {
        let found = paths.iter().find_map(|p| {
            let node = node_at(fdt, p)?;
            let first = node.compatible().and_then(|c| c.all().next());
            let tree = cpu_regs(fdt, p);
            let window = bus_window(fdt, p);
            let at = |r: &[Region]| r.first().map(|r| r.base) == Some(d.regs[0].base);
            (first == Some(d.compatible.as_str()) && (at(&tree) || window.is_some_and(|w| at(&[w])))).then(|| (p, node, tree, window))
        });
        let Some((path, node, tree, window)) = found else {
            bad.push(format!("device {}: no node with compatible \"{}\" at {:#x}", d.name, d.compatible, d.regs[0].base));
            continue;
        };
        let whole_window = window.is_some_and(|w| d.regs == [w] && tree.iter().all(|r| w.contains(r)));
        if tree != d.regs && !whole_window {
            bad.push(format!("device {}: board.toml says regions {:x?}, the tree {:x?}", d.name, d.regs, tree));
        }
        // Three cells per interrupt: type (0 SPI), number, flags.
        let spis: Vec<u32> = cells(&node, "interrupts").chunks_exact(3).filter(|c| c[0] == 0).map(|c| c[1]).collect();
        let (irqs, inputs): (Vec<u32>, Vec<u16>) = if under_crossbar(fdt, path) {
            (Vec::new(), spis.iter().map(|&n| n as u16).collect())
        } else {
            (spis.iter().map(|n| n + 32).collect(), Vec::new())
        };
        if irqs != d.irqs {
            bad.push(format!("device {}: board.toml says INTIDs {:?}, the tree {:?}", d.name, d.irqs, irqs));
        }
        if inputs != d.crossbar_inputs {
            bad.push(format!("device {}: board.toml says crossbar inputs {:?}, the tree {:?}", d.name, d.crossbar_inputs, inputs));
        }
        // `iommus`: (phandle, id) pairs, the IOMMU named by its base.
        let iommus: Vec<(u64, u32)> = cells(&node, "iommus")
            .chunks_exact(2)
            .map(|c| (fdt.find_phandle(c[0]).and_then(|n| regs(&n).first().map(|r| r.base)).unwrap_or(0), c[1]))
            .collect();
        if iommus != d.iommus {
            bad.push(format!("device {}: board.toml says IOMMU streams {:x?}, the tree {:x?}", d.name, d.iommus, iommus));
        }
    }
}

/// Whether the node at `path` takes its interrupts through TI's IRQ
/// crossbar: its `interrupt-parent`, or its nearest ancestor's, is one.
fn under_crossbar(fdt: &Fdt<'_>, path: &str) -> bool {
    let Some(chain) = node_chain(fdt, path) else { return false };
    let parent = chain.iter().rev().find_map(|n| cells(n, "interrupt-parent").first().copied());
    parent
        .and_then(|ph| fdt.find_phandle(ph))
        .is_some_and(|n| n.compatible().is_some_and(|c| c.all().any(|s| s == "ti,irq-crossbar")))
}

/// Every node's absolute path.
fn all_paths(fdt: &Fdt<'_>) -> Vec<String> {
    fn walk(n: FdtNode<'_, '_>, at: &str, out: &mut Vec<String>) {
        out.push(if at.is_empty() { "/".into() } else { at.to_string() });
        for c in n.children() {
            walk(c, &format!("{at}/{}", c.name), out);
        }
    }
    let mut out = Vec::new();
    if let Some(root) = fdt.find_node("/") {
        walk(root, "", &mut out);
    }
    out
}

/// The node at an absolute path; a component without `@unit` matches a
/// node of that name with any unit address. (fdt's `find_node` misses
/// some nodes, e.g. /chosen in ZynqMP's tree.)
fn node_at<'b, 'a>(fdt: &'b Fdt<'a>, path: &str) -> Option<FdtNode<'b, 'a>> {
    node_chain(fdt, path)?.pop()
}

/// The nodes from the root to the one at `path` (matched as `node_at`
/// does), or `None` if a component is missing.
fn node_chain<'b, 'a>(fdt: &'b Fdt<'a>, path: &str) -> Option<Vec<FdtNode<'b, 'a>>> {
    let mut chain = vec![fdt.find_node("/")?];
    for comp in path.split('/').filter(|c| !c.is_empty()) {
        let node = chain.last()?.children().find(|c| c.name == comp || (!comp.contains('@') && c.name.split('@').next() == Some(comp)))?;
        chain.push(node);
    }
    Some(chain)
}

fn all_nodes<'b, 'a>(fdt: &'b Fdt<'a>) -> Vec<FdtNode<'b, 'a>> {
    fn walk<'b, 'a>(n: FdtNode<'b, 'a>, out: &mut Vec<FdtNode<'b, 'a>>) {
        out.push(n);
        for c in n.children() {
            walk(c, out);
        }
    }
    let mut out = Vec::new();
    if let Some(root) = fdt.find_node("/") {
        walk(root, &mut out);
    }
    out
}

fn cells(n: &FdtNode<'_, '_>, prop: &str) -> Vec<u32> {
    n.property(prop).map_or(Vec::new(), |p| p.value.chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect())
}

fn regs(n: &FdtNode<'_, '_>) -> Vec<Region> {
    n.reg().map_or(Vec::new(), |r| r.map(|m| Region { base: m.starting_address as u64, size: m.size.unwrap_or(0) as u64 }).collect())
}

/// The regions of the node at `path` as the CPU sees them: its `reg`
/// translated through each bus's `ranges` up to the root (TI's trees put
/// devices at offsets inside interconnect segments and target modules).
fn cpu_regs(fdt: &Fdt<'_>, path: &str) -> Vec<Region> {
    let Some(chain) = node_chain(fdt, path) else {
        return Vec::new();
    };
    let Some(leaf) = chain.last() else {
        return Vec::new();
    };
    translate(&chain, regs(leaf), chain.len().saturating_sub(2))
}

/// The window of its parent bus's `ranges` that holds the node at `path`
/// (its first region), as the CPU sees it: a TI target module's page.
/// Only a window the node has to itself counts: one that also holds a
/// sibling's registers would pass that device through with it.
fn bus_window(fdt: &Fdt<'_>, path: &str) -> Option<Region> {
    let chain = node_chain(fdt, path)?;
    let at = chain.len().checked_sub(2).filter(|&i| i >= 1)?;
    let leaf = chain.last()?;
    let first = *regs(leaf).first()?;
    let (child_at, parent_at, size) = ranges(&chain[at], &chain[at - 1]).into_iter().find(|&(c, _, size)| in_window(first.base, c, size))?;
    let shared = chain[at].children().any(|sib| sib.name != leaf.name && regs(&sib).iter().any(|r| in_window(r.base, child_at, size)));
    if shared {
        return None;
    }
    translate(&chain, vec![Region { base: parent_at, size }], at - 1).first().copied()
}

/// Whether `addr` lies in the `size` bytes from `start` (a `ranges` window).
fn in_window(addr: u64, start: u64, size: u64) -> bool {
    addr >= start && addr - start < size
}

/// A bus's `ranges`: (child address, parent address, size) entries.
fn ranges(bus: &FdtNode<'_, '_>, parent: &FdtNode<'_, '_>) -> Vec<(u64, u64, u64)> {
    let Some(ranges) = bus.property("ranges") else {
        return Vec::new();
    };
    let count = |n: &FdtNode<'_, '_>, prop: &str, default: u32| cells(n, prop).first().copied().unwrap_or(default) as usize;
    let number = |c: &[u32]| c.iter().fold(0u64, |acc, &w| acc << 32 | w as u64);
    let (ac, sc, pac) = (count(bus, "#address-cells", 2), count(bus, "#size-cells", 1), count(parent, "#address-cells", 2));
    let words: Vec<u32> = ranges.value.chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect();
    words
        .chunks_exact(ac + pac + sc)
        .map(|e| (number(&e[..ac]), number(&e[ac..ac + pac]), number(&e[ac + pac..])))
        .collect()
}

/// `regs`, addresses in the child space of `chain[from]`, translated
/// through the `ranges` of `chain[from]` and each bus above it up to the
/// root's child. A bus without `ranges` ends the translation; an empty one
/// maps one to one.
fn translate(chain: &[FdtNode<'_, '_>], mut out: Vec<Region>, from: usize) -> Vec<Region> {
    for i in (1..=from.min(chain.len().saturating_sub(1))).rev() {
        let (bus, parent) = (&chain[i], &chain[i - 1]);
        if bus.property("ranges").is_none() {
            break;
        }
        let entries = ranges(bus, parent);
        for r in &mut out {
            if let Some((child, parent_at, _)) = entries.iter().find(|&&(c, _, size)| in_window(r.base, c, size)) {
                r.base = r.base - child + parent_at;
            }
        }
    }
    out
}

fn status_ok(n: &FdtNode<'_, '_>) -> bool {
    n.property("status").and_then(|p| p.as_str()).is_none_or(|s| s == "okay" || s == "ok")
}

fn cpus(board: &Board, fdt: &Fdt<'_>, bad: &mut Vec<String>) {
    let Some(cpus) = node_at(fdt, "/cpus") else {
        bad.push("the tree has no /cpus".into());
        return;
    };
    let found: Vec<u64> = cpus
        .children()
        .filter(|c| c.property("device_type").and_then(|p| p.as_str()) == Some("cpu") && status_ok(c))
        .map(|c| {
            let r = cells(&c, "reg");
            r.iter().fold(0u64, |acc, &w| acc << 32 | w as u64)
        })
        .collect();
    if found != board.mpidr {
        bad.push(format!(
            "CPUs: board.toml has {} with affinities {}; the tree has {} with {}",
            board.cpus,
            hex_list(&board.mpidr),
            found.len(),
            hex_list(&found)
        ));
    }
}

fn hex_list(v: &[u64]) -> String {
    let s: Vec<String> = v.iter().map(|x| format!("{x:#x}")).collect();
    format!("[{}]", s.join(", "))
}

fn memory(board: &Board, fdt: &Fdt<'_>, bad: &mut Vec<String>) {
    let banks: Vec<Region> = node_at(fdt, "/")
        .into_iter()
        .flat_map(|r| r.children())
        .filter(|n| n.property("device_type").and_then(|p| p.as_str()) == Some("memory"))
        .flat_map(|n| regs(&n))
        .filter(|r| r.size > 0)
        .collect();
    if !banks.iter().any(|b| b.contains(&board.ram)) {
        let list: Vec<String> = banks.iter().map(|b| format!("{:#x}+{:#x}", b.base, b.size)).collect();
        bad.push(format!(
            "RAM: board.ram {:#x}+{:#x} is not inside one of the tree's memory banks [{}]",
            board.ram.base,
            board.ram.size,
            list.join(", ")
        ));
    }
}

fn gic(board: &Board, fdt: &Fdt<'_>, bad: &mut Vec<String>) {
    let (compat, want): (&[&str], Vec<(&str, u64, u64)>) = match board.gic {
        Gic::V3 { gicd, gicr } => (&["arm,gic-v3"], vec![("gicd", gicd, 0x1_0000), ("gicr", gicr, 0x2_0000 * board.cpus as u64)]),
        Gic::V2 { gicd, gicc, gich, gicv } => (
            &["arm,gic-400", "arm,cortex-a15-gic", "arm,cortex-a9-gic", "arm,arm11mp-gic"],
            vec![("gicd", gicd, 0x1000), ("gicc", gicc, 0x2000), ("gich", gich, 0x1000), ("gicv", gicv, 0x2000)],
        ),
    };
    let Some(node) = all_nodes(fdt).into_iter().find(|n| n.compatible().is_some_and(|c| c.all().any(|s| compat.contains(&s)))) else {
        bad.push(format!("GIC: board.toml says GICv{}; the tree has no {} node", board.gic.version(), compat.join(" or ")));
        return;
    };
    let have = regs(&node);
    for (i, (field, at, len)) in want.iter().enumerate() {
        let inside = have.get(i).is_some_and(|r| r.contains(&Region { base: *at, size: *len }));
        // GICD and GICH start their window; GICC and GICV may sit at the
        // last alias of a 64 KiB-aliased window.
        let placed = have.get(i).is_some_and(|r| matches!(*field, "gicc" | "gicv") || r.base == *at);
        if !inside || !placed {
            let got = have.get(i).map_or("nothing".to_string(), |r| format!("{:#x}+{:#x}", r.base, r.size));
            bad.push(format!("GIC: board.{field} = {at:#x} ({len:#x} bytes) does not fit the tree's reg[{i}] of {}: {got}", node.name));
        }
    }
    let irq = cells(&node, "interrupts");
    if irq.len() < 2 || irq[0] != 1 || irq[1] + 16 != MAINTENANCE_INTID {
        bad.push(format!("GIC: the maintenance interrupt is {irq:?} in the tree; the hypervisor takes PPI {} (INTID {MAINTENANCE_INTID})", MAINTENANCE_INTID - 16));
    }
}

/// `compatible` strings a UART kind's driver serves.
fn uart_compatibles(kind: UartKind) -> &'static [&'static str] {
    match kind {
        UartKind::Pl011 => &["arm,pl011", "arm,sbsa-uart"],
        UartKind::Cadence => &["cdns,uart-r1p12", "xlnx,zynqmp-uart", "xlnx,xuartps"],
        UartKind::Scif => &["renesas,rcar-gen3-scif", "renesas,scif"],
        UartKind::Omap => &["ti,dra742-uart", "ti,omap4-uart", "ti,am654-uart"],
    }
}

fn uart(board: &Board, fdt: &Fdt<'_>, bad: &mut Vec<String>) {
    // The console is the tree's stdout-path: a path or an alias.
    let stdout = node_at(fdt, "/chosen")
        .and_then(|c| c.property("stdout-path").or_else(|| c.property("linux,stdout-path")))
        .and_then(|p| p.as_str())
        .map(|s| s.split(':').next().unwrap_or("").to_string());
    let path = match stdout {
        Some(p) if p.starts_with('/') => Some(p),
        Some(alias) => node_at(fdt, "/aliases").and_then(|a| a.property(&alias)).and_then(|p| p.as_str()).map(str::to_string),
        None => None,
    };
    let Some(node) = path.as_deref().and_then(|p| node_at(fdt, p)) else {
        bad.push(format!("UART: the tree's /chosen stdout-path ({path:?}) names no node"));
        return;
    };
    let base = path
        .as_deref()
        .and_then(|p| cpu_regs(fdt, p).first().map(|r| r.base));
    if base != Some(board.uart) {
        bad.push(format!("UART: board.uart = {:#x}; the tree's console ({}) is at {}", board.uart, node.name, base.map_or("no address".into(), |b| format!("{b:#x}"))));
    }
    let want = uart_compatibles(board.uart_kind);
    if !node.compatible().is_some_and(|c| c.all().any(|s| want.contains(&s))) {
        let have: Vec<&str> = node.compatible().map_or(Vec::new(), |c| c.all().collect());
        bad.push(format!("UART: board.uart_kind = {:?} drives {}; the tree's console is {}", board.uart_kind, want.join(" or "), have.join(", ")));
    }
}

fn timer(fdt: &Fdt<'_>, bad: &mut Vec<String>) {
    let Some(node) = all_nodes(fdt)
        .into_iter()
        .find(|n| n.compatible().is_some_and(|c| c.all().any(|s| s == "arm,armv8-timer" || s == "arm,armv7-timer")))
    else {
        bad.push("timer: the tree has no arm,armv8-timer".into());
        return;
    };
    // Four GIC specifiers (secure, non-secure, virtual, hypervisor), of
    // three cells each, or four with interrupts-extended's phandle.
    let (raw, stride) = match cells(&node, "interrupts") {
        v if !v.is_empty() => (v, 3),
        _ => (cells(&node, "interrupts-extended"), 4),
    };
    let ppi = |i: usize| raw.get(i * stride + stride - 2).filter(|_| raw.get(i * stride + stride - 3) == Some(&1)).map(|n| n + 16);
    for (i, want, what) in [(2, VTIMER_INTID, "virtual"), (3, HYP_TIMER_INTID, "hypervisor")] {
        if ppi(i) != Some(want) {
            bad.push(format!("timer: the tree's {what} timer is {:?}; the hypervisor takes INTID {want}", ppi(i)));
        }
    }
}

/// TI's WakeupGen, whose AuxCoreBoot registers start the secondary CPUs
/// (`board.secondary_boot`): where the tree has it.
fn secondary_boot(board: &Board, fdt: &Fdt<'_>, bad: &mut Vec<String>) {
    let Some(sb) = board.secondary_boot else { return };
    let node = all_nodes(fdt).into_iter().find(|n| n.compatible().is_some_and(|c| c.all().any(|s| s == "ti,omap4-wugen-mpu")));
    let base = node.and_then(|n| regs(&n).first().map(|r| r.base));
    if base != Some(sb.aux_core_boot) {
        bad.push(format!(
            "secondary boot: board.secondary_boot.base = {:#x}; the tree's WakeupGen (ti,omap4-wugen-mpu) is at {}",
            sb.aux_core_boot,
            base.map_or("no address (no such node)".into(), |b| format!("{b:#x}"))
        ));
    }
}

/// TI's IRQ crossbar: where it is, its size, and the lines firmware and
/// silicon keep, as the tree gives them.
fn crossbar(board: &Board, fdt: &Fdt<'_>, bad: &mut Vec<String>) {
    let node = all_nodes(fdt).into_iter().find(|n| {
        n.compatible()
            .is_some_and(|c| c.all().any(|s| s == "ti,irq-crossbar"))
    });
    let (Some(c), Some(node)) = (&board.crossbar, node) else {
        if board.crossbar.is_some() {
            bad.push("crossbar: board.toml has one; the tree has no ti,irq-crossbar".into());
        } else if node.is_some() {
            bad.push("crossbar: the tree has a ti,irq-crossbar in front of the GIC; board.toml names none (board.crossbar)".into());
        }
        return;
    };
    let one = |prop: &str| cells(&node, prop).first().copied();
    let base = regs(&node).first().map(|r| r.base);
    for (what, have, want) in [
        ("base", base, Some(c.base)),
        (
            "lines (ti,max-irqs)",
            one("ti,max-irqs").map(u64::from),
            Some(u64::from(c.lines)),
        ),
        (
            "sources (ti,max-crossbar-sources)",
            one("ti,max-crossbar-sources").map(u64::from),
            Some(u64::from(c.sources)),
        ),
        // Each line's routing register is 16 bits wide.
        (
            "register size (ti,reg-size)",
            one("ti,reg-size").map(u64::from),
            Some(2),
        ),
        (
            "safe input (ti,irqs-safe-map)",
            one("ti,irqs-safe-map").map(u64::from),
            Some(u64::from(c.safe)),
        ),
    ] {
        if have != want {
            let hex = |v: Option<u64>| v.map_or("nothing".into(), |v| format!("{v:#x}"));
            bad.push(format!(
                "crossbar: board.crossbar {what} is {}; the tree says {}",
                hex(want),
                hex(have)
            ));
        }
    }
    for (what, have, want) in [
        ("reserved", cells(&node, "ti,irqs-reserved"), &c.reserved),
        ("skip", cells(&node, "ti,irqs-skip"), &c.skip),
    ] {
        if have != *want {
            bad.push(format!(
                "crossbar: board.crossbar {what} = {want:?}; the tree's ti,irqs-{what} = {have:?}"
            ));
        }
    }
}

fn reserved(board: &Board, fdt: &Fdt<'_>, bad: &mut Vec<String>) {
    let Some(rm) = node_at(fdt, "/reserved-memory") else { return };
    for n in rm.children().filter(|n| n.property("no-map").is_some()) {
        for r in regs(&n) {
            if r.overlaps(&board.guest_ram) && !board.reserved.iter().any(|k| k.region.contains(&r)) {
                bad.push(format!(
                    "memory: the tree keeps {} ({:#x}+{:#x}, no-map) inside guest_ram; list it in [[board.reserved]] and move guest_ram off it",
                    n.name, r.base, r.size
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bus at 0x4800_0000 whose one window holds a UART and, if
    /// `sibling`, a timer too.
    fn tree(sibling: bool) -> Vec<u8> {
        let mut w = vm_fdt::FdtWriter::new().unwrap();
        let root = w.begin_node("").unwrap();
        w.property_u32("#address-cells", 1).unwrap();
        w.property_u32("#size-cells", 1).unwrap();
        let bus = w.begin_node("bus@48000000").unwrap();
        w.property_string("compatible", "simple-bus").unwrap();
        w.property_u32("#address-cells", 1).unwrap();
        w.property_u32("#size-cells", 1).unwrap();
        w.property_array_u32("ranges", &[0, 0x4800_0000, 0x2000]).unwrap();
        let uart = w.begin_node("serial@0").unwrap();
        w.property_string("compatible", "x,uart").unwrap();
        w.property_array_u32("reg", &[0, 0x100]).unwrap();
        w.end_node(uart).unwrap();
        if sibling {
            let timer = w.begin_node("timer@1000").unwrap();
            w.property_string("compatible", "x,timer").unwrap();
            w.property_array_u32("reg", &[0x1000, 0x100]).unwrap();
            w.end_node(timer).unwrap();
        }
        w.end_node(bus).unwrap();
        w.end_node(root).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn a_bus_window_counts_only_when_the_device_has_it_to_itself() {
        let alone = tree(false);
        let fdt = Fdt::new(&alone).unwrap();
        assert_eq!(bus_window(&fdt, "/bus@48000000/serial@0"), Some(Region { base: 0x4800_0000, size: 0x2000 }));
        // With a timer in the same window, passing the window through
        // would hand the timer over too: no window.
        let shared = tree(true);
        let fdt = Fdt::new(&shared).unwrap();
        assert_eq!(bus_window(&fdt, "/bus@48000000/serial@0"), None);
    }
}
