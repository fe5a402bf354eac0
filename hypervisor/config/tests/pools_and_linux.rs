//! Errors and results for cpupools (the real-time scheduler) and Linux
//! domains (kernel, initrd, passthrough, direct map).

mod common;
use common::Fixture;

const RTDS: &str = r#"[system]
board = "tb"

[[cpupool]]
name = "shared"
pcpus = [3]
scheduler = "rtds"

[[domain]]
name = "a"
pcpus = [3]
memory = "4M"
image = "guest:heartbeat"
cpupool = "shared"
budget = "3ms"
period = "10ms"

[[domain]]
name = "b"
pcpus = [3]
memory = "4M"
image = "guest:heartbeat"
cpupool = "shared"
budget = "6ms"
period = "10ms"
"#;

#[test]
fn rtds_domains_share_a_pcpu_with_their_budgets() {
    let s = Fixture::new().sample(RTDS).unwrap();
    assert_eq!(s.domains[0].rtds, Some((3000, 10_000)));
    assert_eq!(s.domains[1].rtds, Some((6000, 10_000)));
    assert_eq!(s.cpupools[0].pcpus, vec![3]);
}

#[test]
fn an_overcommitted_rtds_pcpu_is_rejected_at_the_budget() {
    let e = Fixture::new().sample(&RTDS.replace("budget = \"6ms\"", "budget = \"8ms\"")).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("system.toml:24: domain \"b\".budget: pCPU 3 is over-committed"), "{msg}");
}

#[test]
fn a_null_domain_cannot_sit_on_an_rtds_pcpu() {
    let text = RTDS.replace("cpupool = \"shared\"\nbudget = \"6ms\"\nperiod = \"10ms\"\n", "");
    let msg = Fixture::new().sample(&text).unwrap_err().to_string();
    assert!(msg.contains("domain \"b\".pcpus: pCPU 3 belongs to rtds cpupool \"shared\""), "{msg}");
}

#[test]
fn rtds_needs_a_period_and_knows_its_pools() {
    let msg = Fixture::new().sample(&RTDS.replace("period = \"10ms\"\n\n[[domain]]", "\n[[domain]]")).unwrap_err().to_string();
    assert!(msg.contains("domain \"a\".period: a domain in rtds cpupool \"shared\" needs `period`"), "{msg}");
    let msg = Fixture::new().sample(&RTDS.replacen("cpupool = \"shared\"", "cpupool = \"fast\"", 1)).unwrap_err().to_string();
    assert!(msg.contains("domain \"a\".cpupool: no cpupool \"fast\""), "{msg}");
}

#[test]
fn a_dma_device_needs_a_direct_mapped_domain() {
    let f = Fixture::new();
    f.write("samples/s/images/Image", "not really a kernel");
    let text = r#"[system]
board = "tb"

[[domain]]
name = "l"
kind = "linux"
pcpus = [1]
memory = "32M"
image = "images/Image"

[[domain.passthrough]]
base = 0x0a003e00
size = 0x200
irq = 79
compatible = "virtio,mmio"
dma = true
"#;
    let msg = f.sample(text).unwrap_err().to_string();
    assert!(msg.contains("system.toml:16: domain \"l\".passthrough.dma: a device that does DMA needs `direct_map = true`"), "{msg}");
    let ok = f.sample(&text.replace("image = \"images/Image\"", "image = \"images/Image\"\ndirect_map = true")).unwrap();
    assert_eq!(ok.domains[0].ram_ipa(), ok.domains[0].memory.base);
    assert_eq!(ok.domains[0].passthrough[0].pages(), hv_config::Region { base: 0x0a00_3000, size: 0x1000 });
}

/// One Linux domain "a" on board "tb", its first passthrough entry open.
const ONE_LINUX: &str = r#"[system]
board = "tb"

[[domain]]
name = "a"
kind = "linux"
pcpus = [1]
memory = "4M"
image = "k"

[[domain.passthrough]]
"#;

#[test]
fn passthrough_cannot_reach_ram_or_be_shared() {
    let f = Fixture::new();
    let text = format!("{ONE_LINUX}base = 0x4000_0000\nsize = 0x1000\ncompatible = \"evil\"\n");
    f.write("samples/s/k", "x");
    let msg = f.sample(&text).unwrap_err().to_string();
    assert!(msg.contains("domain \"a\".passthrough: region 0x4000_0000+4 KiB (its pages) overlaps the board's RAM") || msg.contains("overlaps the board's RAM"), "{msg}");
}

#[test]
fn a_passed_through_interrupt_cannot_be_the_virtual_uart_s() {
    let f = Fixture::new();
    f.write("samples/s/k", "x");
    let text = format!("{ONE_LINUX}base = 0x0a00_3000\nsize = 0x1000\nirq = 32\ncompatible = \"x,dev\"\n");
    let msg = f.sample(&text).unwrap_err().to_string();
    assert!(msg.contains("domain \"a\".passthrough: irq 32 is the domain's virtual PL011's"), "{msg}");
    // Without the virtual PL011 the line is free.
    f.sample(&text.replace("image = \"k\"", "image = \"k\"\ndevices = []")).unwrap_or_else(|e| panic!("{e}"));
    f.sample(&text.replace("irq = 32", "irq = 33")).unwrap_or_else(|e| panic!("{e}"));
}

/// A board with a passthrough catalog: the real ZCU102 BSP's, copied in.
fn zcu102(f: &Fixture) {
    let real = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../bsp/zcu102/board.toml")).unwrap();
    f.write("bsp/zcu102/board.toml", &real);
}

const ZCU_LINUX: &str = r#"[system]
board = "zcu102"

[[domain]]
name = "l"
kind = "linux"
pcpus = [1]
memory = "32M"
image = "images/Image"
direct_map = true

[[domain.passthrough]]
"#;

#[test]
fn a_catalog_device_passes_through_by_name() {
    let f = Fixture::new();
    f.write("bsp/tb/board.toml", &format!("{}\n[[board.devices]]\nname = \"rtc\"\ncompatible = \"arm,pl031\"\nregs = [[0x0901_0000, 0x1000]]\nirqs = [34]\n", common::BOARD));
    f.write("samples/s/images/Image", "not really a kernel");
    let text = ZCU_LINUX.replace("zcu102", "tb").replace("direct_map = true\n", "");
    let s = f.sample(&format!("{text}device = \"rtc\"\n")).unwrap_or_else(|e| panic!("{e}"));
    let p = &s.domains[0].passthrough[0];
    assert_eq!((p.reg, p.irq, p.compatible.as_str(), p.dma), (hv_config::Region { base: 0x0901_0000, size: 0x1000 }, Some(34), "arm,pl031", false));
}

#[test]
fn a_device_the_board_lacks_is_a_build_error_naming_what_it_offers() {
    let f = Fixture::new();
    zcu102(&f);
    f.write("samples/s/images/Image", "not really a kernel");
    let msg = f.sample(&format!("{ZCU_LINUX}device = \"gpu\"\n")).unwrap_err().to_string();
    assert!(msg.contains("system.toml:13: domain \"l\".passthrough.device: board \"zcu102\" offers no device \"gpu\"") && msg.contains("\"dpsub\", \"gdma\""), "{msg}");
    // Four register regions: not one passthrough entry.
    let msg = f.sample(&format!("{ZCU_LINUX}device = \"dpsub\"\n")).unwrap_err().to_string();
    assert!(msg.contains("dpsub has 4 register regions"), "{msg}");
    // An address outside the catalog.
    let raw = format!("{ZCU_LINUX}base = 0xFF0E0000\nsize = 0x1000\ncompatible = \"cdns,gem\"\n");
    let msg = f.sample(&raw).unwrap_err().to_string();
    assert!(msg.contains("passthrough.base: board \"zcu102\" offers no device at 0xff0e_0000"), "{msg}");
    // Inside a catalog device, but with another device's interrupt.
    let raw = format!("{ZCU_LINUX}base = 0xFD500000\nsize = 0x1000\nirq = 151\ncompatible = \"xlnx,zynqmp-dma-1.0\"\n");
    let msg = f.sample(&raw).unwrap_err().to_string();
    assert!(msg.contains("irq 151 is not gdma's"), "{msg}");
    // The catalog says it does DMA: a sample cannot say otherwise.
    let msg = f.sample(&format!("{ZCU_LINUX}device = \"gdma\"\ndma = false\n")).unwrap_err().to_string();
    assert!(msg.contains("passthrough.dma: the board's catalog says this device masters memory"), "{msg}");
    // Both a name and an address.
    let msg = f.sample(&format!("{ZCU_LINUX}device = \"gdma\"\nbase = 0xFD500000\n")).unwrap_err().to_string();
    assert!(msg.contains("give `device` alone"), "{msg}");
}

#[test]
fn a_catalog_entry_is_checked_when_the_board_is_read() {
    let f = Fixture::new();
    let board = common::BOARD.to_string();
    let with = |dev: &str| format!("{board}\n[[board.devices]]\n{dev}\n");
    let msg = f.board(&with("name = \"x\"\ncompatible = \"c\"\nregs = [[0x1000, 0x100]]\nirqs = [20]")).unwrap_err().to_string();
    assert!(msg.contains("board.devices[0].irqs: 20 is not an SPI's GIC INTID"), "{msg}");
    let msg = f.board(&with("name = \"x\"\ncompatible = \"c\"\nregs = []")).unwrap_err().to_string();
    assert!(msg.contains("board.devices[0].regs: a device has at least one register region"), "{msg}");
}

/// The real TI J6 BSP, copied in: a catalog whose interrupts come through
/// TI's IRQ crossbar.
fn ti_j6(f: &Fixture) {
    let real = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../bsp/ti-j6/board.toml")).unwrap();
    f.write("bsp/ti-j6/board.toml", &real);
    f.write("samples/s/images/zImage", "not really a kernel");
}

/// A J6 domain of 256 MiB, `extra` added to it, passing UART3 through.
fn j6_domain(name: &str, pcpu: u32, extra: &str) -> String {
    format!("[[domain]]\nname = \"{name}\"\nkind = \"linux\"\npcpus = [{pcpu}]\nmemory = \"256M\"\nimage = \"images/zImage\"\n{extra}\n[[domain.passthrough]]\ndevice = \"uart3\"\n\n")
}

#[test]
fn a_crossbar_device_gets_a_gic_line_of_its_own_and_one_owner() {
    let f = Fixture::new();
    ti_j6(&f);
    let head = "[system]\nboard = \"ti-j6\"\n\n";
    let s = f.sample(&format!("{head}{}", j6_domain("cluster", 0, "direct_map = true"))).unwrap_or_else(|e| panic!("{e}"));
    let p = &s.domains[0].passthrough[0];
    assert_eq!((p.crossbar_input, p.irq), (Some(69), Some(191)), "input 69 on line 159, the highest free one");
    // On the J6 the peripherals sit where a domain's RAM usually starts:
    // 256 MiB from 0x4000_0000 would hold UART3, unless direct-mapped.
    let msg = f.sample(&format!("{head}{}", j6_domain("cluster", 0, ""))).unwrap_err().to_string();
    assert!(msg.contains("domain \"cluster\".passthrough: region 0x4802_0000+4 KiB (its pages) overlaps the domain's RAM"), "{msg}");
    // One input, one owner: the second domain asking is the one named.
    let two = format!("{head}{}{}", j6_domain("cluster", 0, "direct_map = true"), j6_domain("ivi", 1, "direct_map = true"));
    let msg = f.sample(&two).unwrap_err().to_string();
    assert!(msg.contains("domain \"ivi\".passthrough: crossbar input 69 is passed through twice"), "{msg}");
}

#[test]
fn a_crossbar_line_beyond_the_virtual_gic_is_a_build_error() {
    let f = Fixture::new();
    ti_j6(&f);
    // A crossbar of 256 lines hands out line 255 first: INTID 287.
    let real = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../bsp/ti-j6/board.toml")).unwrap();
    f.write("bsp/ti-j6/board.toml", &real.replacen("lines = 160", "lines = 256", 1));
    let msg = f.sample(&format!("[system]\nboard = \"ti-j6\"\n\n{}", j6_domain("cluster", 0, "direct_map = true"))).unwrap_err().to_string();
    assert!(msg.contains("domain \"cluster\".passthrough: crossbar input 69 would take GIC line 255 (INTID 287), beyond the SPIs"), "{msg}");
}

#[test]
fn crossbar_inputs_need_a_board_with_a_crossbar() {
    let f = Fixture::new();
    let board = format!("{}\n[[board.devices]]\nname = \"x\"\ncompatible = \"c\"\nregs = [[0x0901_0000, 0x1000]]\ncrossbar_inputs = [69]\n", common::BOARD);
    let msg = f.board(&board).unwrap_err().to_string();
    assert!(msg.contains("board.devices[0].crossbar_inputs: the board has no IRQ crossbar"), "{msg}");
}
