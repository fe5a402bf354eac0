//! The repository's own board and sample load, place and encode.

use std::path::PathBuf;

use hv_config::{encode_bundle, load_board, Gic, load_sample, Action, ImageRef, LoadOptions, Region, Scheduler, Vwfi};
use hv_core::bundle::{Bundle, FLAG_VPL011};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn opts() -> LoadOptions {
    LoadOptions { known_guests: vec!["heartbeat".into(), "crasher".into()], profile_override: None, board_override: None }
}

#[test]
fn qemu_virt_board_loads() {
    let b = load_board(&root().join("bsp"), "qemu-virt").unwrap();
    assert_eq!(b.name, "qemu-virt");
    assert_eq!(b.arch, "aarch64");
    assert_eq!(b.cpus, 4);
    assert_eq!((b.uart, b.gic), (0x0900_0000, Gic::V3 { gicd: 0x0800_0000, gicr: 0x080A_0000 }));
    assert_eq!(b.ram, Region { base: 0x4000_0000, size: 2 << 30 });
    assert_eq!(b.guest_ram, Region { base: 0x6000_0000, size: 1536 << 20 });
    assert!(b.ram.contains(&b.guest_ram));
    let q = b.qemu.as_ref().unwrap();
    assert_eq!(q.machine, "virt,virtualization=on,gic-version=3");
    assert_eq!(q.cpu, "cortex-a57");
    assert_eq!(q.memory, "2G");
    assert_eq!(q.bundle_addr, Some(0x4900_0000));
    assert_eq!(b.default_profile, "null-native");
    assert_eq!(b.profile_names(), ["null-native", "null-trap"]);
    assert_eq!(b.profile("null-trap").unwrap().vwfi, Vwfi::Trap);
    assert_eq!(b.profile("null-native").unwrap().vwfi, Vwfi::Native);
    assert!(b.path.ends_with("bsp/qemu-virt/board.toml"));
}

#[test]
fn two_partitions_loads_places_and_encodes() {
    let path = root().join("samples/two-partitions/system.toml");
    let s = load_sample(&path, &root().join("bsp"), &opts()).unwrap();
    assert_eq!(s.name, "two-partitions");
    assert_eq!(s.board.name, "qemu-virt");
    assert_eq!(s.profile.name, "null-native");
    assert_eq!((s.profile.scheduler, s.profile.vwfi), (Scheduler::Null, Vwfi::Native));
    assert_eq!(s.domains.len(), 2);

    let (hb, cr) = (&s.domains[0], &s.domains[1]);
    assert_eq!((hb.name.as_str(), cr.name.as_str()), ("heartbeat", "crasher"));
    assert_eq!((hb.vcpus, hb.pcpus.as_slice()), (1, &[1u8][..]));
    assert_eq!((cr.vcpus, cr.pcpus.as_slice()), (1, &[2u8][..]));
    assert_eq!(hb.image, ImageRef::Guest("heartbeat".into()));
    assert_eq!(cr.image, ImageRef::Guest("crasher".into()));
    assert!(hb.vpl011 && cr.vpl011);
    assert!(!hb.system_controller && !cr.system_controller);
    assert_eq!((hb.on_poweroff, hb.on_reboot, hb.on_crash), (Action::Destroy, Action::Restart, Action::Destroy));
    assert_eq!((cr.on_poweroff, cr.on_reboot, cr.on_crash), (Action::Destroy, Action::Restart, Action::Restart));
    assert_eq!(hb.load_offset, 0);

    // Auto-placed: first fit, in file order, 2 MiB aligned, inside guest_ram.
    assert_eq!(hb.memory, Region { base: 0x6000_0000, size: 16 << 20 });
    assert_eq!(cr.memory, Region { base: 0x6100_0000, size: 16 << 20 });
    for d in &s.domains {
        assert!(s.board.guest_ram.contains(&d.memory), "{} outside guest_ram", d.name);
        assert_eq!(d.memory.base % (2 << 20), 0);
    }
    assert!(!hb.memory.overlaps(&cr.memory));

    let images: Vec<hv_config::DomainBlobs> = vec![vec![0xAAu8; 5000].into(), vec![0x55u8; 123].into()];
    let bytes = encode_bundle(&s, &images).unwrap();
    let b = Bundle::parse(&bytes).unwrap();
    assert_eq!(b.board.ncpus, 4);
    assert_eq!(b.board.vwfi, Vwfi::Native);
    assert_eq!(b.board.scheduler, Scheduler::Null);
    assert_eq!((b.board.uart_base, b.board.gicd_base, b.board.gicr_base), (0x0900_0000, 0x0800_0000, 0x080A_0000));
    assert_eq!((b.board.ram_base, b.board.ram_size), (0x4000_0000, 2 << 30));
    assert_eq!(b.domain_count(), 2);
    for (i, d) in b.domains().enumerate() {
        let want = &s.domains[i];
        assert_eq!(d.name, want.name);
        assert_eq!(d.vcpus, want.vcpus);
        assert_eq!(d.pins(), want.pcpus.as_slice());
        assert_eq!(d.flags, FLAG_VPL011);
        assert!(!d.is_system_controller());
        assert_eq!((d.on_poweroff, d.on_reboot, d.on_crash), (want.on_poweroff, want.on_reboot, want.on_crash));
        assert_eq!((d.mem_pa, d.mem_size, d.load_offset), (want.memory.base, want.memory.size, want.load_offset));
        assert_eq!(d.image, images[i].image.as_slice());
    }
}

#[test]
fn profile_override_selects_another_board_profile() {
    let path = root().join("samples/two-partitions/system.toml");
    let o = LoadOptions { profile_override: Some("null-trap".into()), ..opts() };
    let s = load_sample(&path, &root().join("bsp"), &o).unwrap();
    assert_eq!(s.profile.name, "null-trap");
    let bytes = encode_bundle(&s, &[vec![1].into(), vec![2].into()]).unwrap();
    assert_eq!(Bundle::parse(&bytes).unwrap().board.vwfi, Vwfi::Trap);
}

/// The Nautilus cockpit on the J6: the cluster's UART3 comes through the
/// crossbar on the highest free line; the bundle tells the hypervisor to
/// route it there and to park every other line on the safe input, and the
/// cluster's device tree names that line's SPI.
#[test]
fn nautilus_j6_routes_the_cluster_s_uart_through_the_crossbar() {
    let path = root().join("samples/nautilus-j6/system.toml");
    let s = load_sample(&path, &root().join("bsp"), &opts()).unwrap();
    let cluster = &s.domains[0];
    assert_eq!(cluster.passthrough.len(), 1);
    let uart3 = &cluster.passthrough[0];
    assert_eq!((uart3.reg, uart3.crossbar_input, uart3.irq), (Region { base: 0x4802_0000, size: 0x1000 }, Some(69), Some(191)));
    assert_eq!(cluster.ram_ipa(), cluster.memory.base, "direct-mapped: its RAM clear of the J6's peripherals");
    let writes = hv_config::crossbar_writes(&s);
    // 160 lines: 8 reserved (no register), 4 skipped (left alone).
    assert_eq!(writes.len(), 148);
    let line159 = (159 - 8) * 2;
    assert!(writes.contains(&hv_core::bundle::CrossbarWrite { offset: line159, value: 69 }));
    assert_eq!(writes.iter().filter(|w| w.value != 0).count(), 1, "every other line parked on input 0");
    // A stand-in zImage: its header (magic, start, end) is all the build reads.
    let mut zimage = vec![0u8; 0x1000];
    zimage[0x24..0x28].copy_from_slice(&0x016F_2818u32.to_le_bytes());
    zimage[0x2c..0x30].copy_from_slice(&0x1000u32.to_le_bytes());
    let blobs: Vec<hv_config::DomainBlobs> = s.domains.iter().map(|_| zimage.clone().into()).collect();
    let bytes = encode_bundle(&s, &blobs).unwrap();
    let b = Bundle::parse(&bytes).unwrap();
    assert_eq!(b.board.crossbar_base, 0x4A00_2A48);
    assert_eq!(b.crossbar_writes().collect::<Vec<_>>(), writes);
    assert_eq!(b.domain(0).unwrap().passthrough()[0].spi, 191);
}

/// The J6's crossbar as its board file gives it: the hypervisor can route
/// the console's interrupt (crossbar input 67) to a line of its own.
#[test]
fn the_j6_crossbar_routes_the_console_s_interrupt() {
    let b = load_board(&root().join("bsp"), "ti-j6").unwrap();
    let x = b.crossbar.expect("the J6 has a crossbar").desc();
    let routes = x.plan(&[67]).unwrap();
    assert_eq!((routes[0].line, routes[0].intid()), (159, 191));
    assert_eq!(
        x.register_offset(159),
        Some((159 - 8) * 2),
        "eight reserved lines have no register"
    );
}
