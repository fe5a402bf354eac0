//! Every BSP's board.toml against the board's real device trees (QEMU's
//! own, Debian's kernel package, or Linux's source compiled with dtc), and
//! the check itself catching a wrong fact. Ignored by plain `cargo test`:
//! the trees come from Debian's archive and QEMU (`cargo xtask test`).

use hv_config::{load_board, Board, Gic};
use xtask::artifacts::root;
use xtask::board_facts::{check, trees};

fn boards() -> Vec<Board> {
    let bsp = root().join("bsp");
    let mut names: Vec<String> = std::fs::read_dir(&bsp)
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("board.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.iter().map(|n| load_board(&bsp, n).unwrap_or_else(|e| panic!("{e}"))).collect()
}

#[test]
#[ignore = "fetches device trees from Debian's archive and QEMU"]
fn every_board_matches_its_device_trees() {
    let all = boards();
    assert!(
        ["rcar-h3", "zcu102", "ti-j6"]
            .iter()
            .all(|n| all.iter().any(|b| b.name == *n)),
        "the BSPs are missing"
    );
    let mut failures = Vec::new();
    for b in &all {
        let ts = trees(b).unwrap_or_else(|e| panic!("{}: {e}", b.name));
        for (label, dtb) in ts {
            for bad in check(b, &dtb) {
                failures.push(format!("{} vs {label}: {bad}", b.name));
            }
            eprintln!("{}: matches {label}", b.name);
        }
    }
    assert!(failures.is_empty(), "board facts disagree with the device trees:\n{}", failures.join("\n"));
}

/// The tree a board is checked against, and the board as its file says.
fn board_and_tree(name: &str) -> (Board, Vec<u8>) {
    let b = load_board(&root().join("bsp"), name).unwrap();
    let dtb = trees(&b).unwrap().remove(0).1;
    assert!(check(&b, &dtb).is_empty(), "{name} must match its tree before the faults are planted");
    (b, dtb)
}

fn caught(b: &Board, dtb: &[u8], what: &str) {
    let found = check(b, dtb);
    assert!(found.iter().any(|m| m.starts_with(what) || (m.starts_with("device ") && m.contains(what))), "a wrong {what} fact went unnoticed; the check said {found:?}");
}

#[test]
#[ignore = "fetches device trees from Debian's archive"]
fn a_wrong_board_fact_is_caught() {
    let (good, dtb) = board_and_tree("rcar-h3");

    let mut b = good.clone();
    b.uart += 0x1000;
    caught(&b, &dtb, "UART");

    let mut b = good.clone();
    b.uart_kind = hv_core::bundle::UartKind::Pl011;
    caught(&b, &dtb, "UART");

    // The A53s numbered as a second A57 block: SGIs and PSCI would miss.
    let mut b = good.clone();
    b.mpidr = (0..8).collect();
    caught(&b, &dtb, "CPUs");

    let mut b = good.clone();
    b.ram.size *= 2;
    caught(&b, &dtb, "RAM");

    let mut b = good.clone();
    if let Gic::V2 { gicd, gicc, gicv, .. } = good.gic {
        b.gic = Gic::V2 { gicd, gicc, gich: 0xF105_0000, gicv };
    }
    caught(&b, &dtb, "GIC");

    // Passthrough devices: an interrupt off by one, a region that is not
    // the device's.
    let mut b = good.clone();
    b.devices[0].irqs[0] += 1;
    caught(&b, &dtb, "INTIDs");
    let mut b = good.clone();
    b.devices[1].regs[1].size = 0x1000;
    caught(&b, &dtb, "regions");

    let mut b = good;
    b.gic = Gic::V3 { gicd: 0xF101_0000, gicr: 0xF110_0000 };
    caught(&b, &dtb, "GIC");

    // An IOMMU stream ID (ZCU102's SMMU): a wrong one is caught.
    let (good, dtb) = board_and_tree("zcu102");
    let mut b = good;
    let gdma = b.devices.iter_mut().find(|d| d.name == "gdma").unwrap();
    gdma.iommus[0].1 = 0x14E9;
    caught(&b, &dtb, "IOMMU");

    // TI J6: the console sits inside interconnect segments (found through
    // their `ranges`), and the IRQ crossbar's facts.
    let (good, dtb) = board_and_tree("ti-j6");
    let mut b = good.clone();
    b.uart = 0x4806_C000; // UART2
    caught(&b, &dtb, "UART");
    let mut b = good.clone();
    b.crossbar.as_mut().unwrap().reserved.pop();
    caught(&b, &dtb, "crossbar");
    let mut b = good.clone();
    b.crossbar.as_mut().unwrap().lines = 152;
    caught(&b, &dtb, "crossbar");
    let mut b = good.clone();
    b.crossbar = None;
    caught(&b, &dtb, "crossbar");
    let mut b = good.clone();
    b.crossbar.as_mut().unwrap().safe = 1;
    caught(&b, &dtb, "crossbar");
    // A passthrough device behind the crossbar: its input, and its page
    // (the target module's window holding it).
    let mut b = good.clone();
    b.devices[0].crossbar_inputs[0] = 68;
    caught(&b, &dtb, "crossbar inputs");
    let mut b = good.clone();
    b.devices[0].regs[0].base = 0x4806_E000; // UART4's module
    caught(&b, &dtb, "uart3");
    let mut b = good.clone();
    b.devices[0].regs[0].size = 0x2000;
    caught(&b, &dtb, "regions");
    // WakeupGen, whose AuxCoreBoot registers start the second A15.
    let mut b = good;
    b.secondary_boot = Some(hv_config::SecondaryBoot { aux_core_boot: 0x4828_2000 });
    caught(&b, &dtb, "secondary boot");
}
