//! One test per class of mistake: each asserts the file, the exact line, the
//! field path and the gist of the message.

mod common;

use common::{expect, Fixture, BOARD};
use hv_config::{encode_bundle, Action, Gic, ImageRef, LoadOptions, Region};

/// Two valid domains. Line numbers, for the tests below:
/// 1 [system], 2 board, 4 [[domain]] a, 5 name, 6 pcpus, 7 memory, 8 image,
/// 10 [[domain]] b, 11 name, 12 pcpus, 13 memory, 14 image.
const TWO: &str = r#"[system]
board = "tb"

[[domain]]
name = "a"
pcpus = [1]
memory = "16M"
image = "guest:heartbeat"

[[domain]]
name = "b"
pcpus = [2]
memory = "16M"
image = "guest:crasher"
"#;

const S: &str = "system.toml";
const B: &str = "board.toml";

fn edit(from: &str, to: &str) -> String {
    assert!(TWO.contains(from), "{from}");
    TWO.replacen(from, to, 1)
}

#[test]
fn the_fixture_itself_is_valid() {
    let s = Fixture::new().sample(TWO).unwrap();
    assert_eq!(s.name, "s");
    assert_eq!(s.profile.name, "fast");
    assert_eq!(s.domains[0].memory, Region { base: 0x6000_0000, size: 16 << 20 });
    assert_eq!(s.domains[1].memory, Region { base: 0x6100_0000, size: 16 << 20 });
}

// --- TOML syntax and types -------------------------------------------------

#[test]
fn syntax_error_names_line_and_field() {
    let r = Fixture::new().sample(&edit("memory = \"16M\"\nimage = \"guest:crasher\"", "memory = 16M\nimage = \"guest:crasher\""));
    expect(r, S, 13, "domain \"b\".memory", &[]);
}

#[test]
fn type_error_names_line_and_field() {
    let r = Fixture::new().sample(&edit("pcpus = [1]", "vcpus = \"two\""));
    expect(r, S, 6, "domain \"a\".vcpus", &["invalid type", "string \"two\""]);
}

#[test]
fn type_error_inside_a_list() {
    let r = Fixture::new().sample(&edit("pcpus = [2]", "pcpus = [\"two\"]"));
    expect(r, S, 12, "domain \"b\".pcpus", &["invalid type"]);
}

#[test]
fn unknown_key_in_sample_is_named() {
    let r = Fixture::new().sample(&edit("image = \"guest:heartbeat\"\n", "image = \"guest:heartbeat\"\ncolour = \"red\"\n"));
    expect(r, S, 9, "domain \"a\".colour", &["unknown key `colour`", "`pcpus`"]);
    let r = Fixture::new().sample(&edit("board = \"tb\"", "board = \"tb\"\nboot = 1"));
    expect(r, S, 3, "system.boot", &["unknown key `boot`"]);
}

#[test]
fn unknown_key_in_board_is_named() {
    let f = Fixture::new();
    let r = f.board(&BOARD.replacen("cpus = 4", "cpus = 4\nfpu = true", 1));
    expect(r, B, 5, "board.fpu", &["unknown key `fpu`"]);
    let r = f.board(&BOARD.replacen("vwfi = \"native\"", "vwfi = \"native\"\nhz = 100", 1));
    expect(r, B, 16, "profiles.fast.hz", &["unknown key `hz`"]);
    let r = f.board(&BOARD.replacen("size = \"64M\" }", "size = \"64M\", cached = true }", 1));
    expect(r, B, 10, "board.guest_ram.cached", &["unknown key `cached`"]);
}

#[test]
fn missing_required_key_points_at_its_table() {
    let r = Fixture::new().sample(&edit("image = \"guest:crasher\"\n", ""));
    expect(r, S, 10, "domain \"b\".image", &["missing required key `image`"]);
    let r = Fixture::new().sample(&edit("pcpus = [1]\n", ""));
    expect(r, S, 4, "domain \"a\".pcpus", &["missing required key `pcpus`"]);
}

// --- sizes ------------------------------------------------------------------

#[test]
fn bad_size_string_is_explained() {
    let r = Fixture::new().sample(&edit("memory = \"16M\"", "memory = \"16MB\""));
    expect(r, S, 7, "domain \"a\".memory", &["invalid size \"16MB\"", "\"16M\""]);
    let r = Fixture::new().board(&BOARD.replacen("\"1G\"", "\"1 GiB\"", 1));
    expect(r, B, 9, "board.ram.size", &["invalid size \"1 GiB\""]);
}

#[test]
fn memory_must_be_a_multiple_of_2_mib() {
    let r = Fixture::new().sample(&edit("memory = \"16M\"", "memory = \"3M\""));
    expect(r, S, 7, "domain \"a\".memory", &["multiple of 2 MiB", "3 MiB"]);
    let r = Fixture::new().sample(&edit("memory = \"16M\"", "memory = 0"));
    expect(r, S, 7, "domain \"a\".memory", &["non-zero"]);
}

#[test]
fn sizes_accept_integers() {
    let s = Fixture::new().sample(&edit("memory = \"16M\"", "memory = 4194304")).unwrap();
    assert_eq!(s.domains[0].memory.size, 4 << 20);
}

// --- memory layout ------------------------------------------------------------

#[test]
fn overlapping_explicit_memory_names_both_domains() {
    let t = edit("memory = \"16M\"\nimage = \"guest:heartbeat\"", "memory = \"16M\"\nimage = \"guest:heartbeat\"\nmemory_base = 0x6000_0000")
        .replacen("memory = \"16M\"\nimage = \"guest:crasher\"", "memory = \"16M\"\nimage = \"guest:crasher\"\nmemory_base = 0x6080_0000", 1);
    let r = Fixture::new().sample(&t);
    expect(r, S, 16, "domain \"b\".memory_base", &["overlaps domain \"a\"", "0x6000_0000..0x6100_0000", "0x6080_0000..0x6180_0000"]);
}

#[test]
fn memory_outside_guest_ram() {
    let r = Fixture::new().sample(&edit("memory = \"16M\"\nimage = \"guest:crasher\"", "memory = \"16M\"\nimage = \"guest:crasher\"\nmemory_base = 0x5000_0000"));
    expect(r, S, 15, "domain \"b\".memory_base", &["outside board \"tb\"'s guest_ram 0x6000_0000..0x6400_0000"]);
    // Starts inside, ends past the end.
    let r = Fixture::new().sample(&edit("memory = \"16M\"\nimage = \"guest:crasher\"", "memory = \"16M\"\nimage = \"guest:crasher\"\nmemory_base = 0x6380_0000"));
    expect(r, S, 15, "domain \"b\".memory_base", &["outside"]);
}

#[test]
fn memory_base_must_be_2_mib_aligned() {
    let r = Fixture::new().sample(&edit("memory = \"16M\"", "memory = \"16M\"\nmemory_base = 0x6010_0000"));
    expect(r, S, 8, "domain \"a\".memory_base", &["0x6010_0000 is not 2 MiB aligned"]);
}

#[test]
fn auto_placement_avoids_explicit_memory_in_file_order() {
    // a: auto 16M; b: fixed at the start of guest_ram; c: auto 4M.
    let t = format!(
        "{}\n[[domain]]\nname = \"c\"\npcpus = [3]\nmemory = \"4M\"\nimage = \"guest:heartbeat\"\n",
        edit("memory = \"16M\"\nimage = \"guest:crasher\"", "memory = \"8M\"\nimage = \"guest:crasher\"\nmemory_base = 0x6000_0000")
    );
    let s = Fixture::new().sample(&t).unwrap();
    assert_eq!(s.domains[0].memory, Region { base: 0x6080_0000, size: 16 << 20 });
    assert_eq!(s.domains[1].memory, Region { base: 0x6000_0000, size: 8 << 20 });
    assert_eq!(s.domains[2].memory, Region { base: 0x6180_0000, size: 4 << 20 });
}

#[test]
fn auto_placement_running_out_names_the_domain() {
    let t = edit("memory = \"16M\"", "memory = \"32M\"").replacen("memory = \"16M\"", "memory = \"48M\"", 1);
    let r = Fixture::new().sample(&t);
    expect(r, S, 13, "domain \"b\".memory", &["no room for 48 MiB", "largest free gap", "32 MiB"]);
}

#[test]
fn load_offset_rules() {
    let r = Fixture::new().sample(&edit("memory = \"16M\"", "memory = \"16M\"\nload_offset = 0x1800"));
    expect(r, S, 8, "domain \"a\".load_offset", &["4 KiB aligned"]);
    let r = Fixture::new().sample(&edit("memory = \"16M\"", "memory = \"16M\"\nload_offset = 0x100_0000"));
    expect(r, S, 8, "domain \"a\".load_offset", &["below the domain's memory (16 MiB)"]);
    let s = Fixture::new().sample(&edit("memory = \"16M\"", "memory = \"16M\"\nload_offset = 0x8_0000")).unwrap();
    assert_eq!(s.domains[0].load_offset, 0x8_0000);
}

// --- CPUs ----------------------------------------------------------------------

#[test]
fn pcpu_shared_by_two_domains_names_both() {
    let r = Fixture::new().sample(&edit("pcpus = [2]", "pcpus = [1]"));
    expect(r, S, 12, "domain \"b\".pcpus", &["pCPU 1 is already used by vCPU 0 of domain \"a\"", "domain \"a\" and domain \"b\"", "null scheduler", "free pCPUs: 0, 2, 3"]);
    assert_eq!(
        Fixture::new().sample(&edit("pcpus = [2]", "pcpus = [1]")).unwrap_err().to_string().split(": ").next().unwrap().rsplit('/').next().unwrap(),
        "system.toml:12"
    );
}

#[test]
fn pcpu_used_twice_in_one_domain() {
    let r = Fixture::new().sample(&edit("pcpus = [1]", "vcpus = 2\npcpus = [3, 3]"));
    expect(r, S, 7, "domain \"a\".pcpus", &["pCPU 3 is already used by vCPU 0 of this domain"]);
}

#[test]
fn pin_beyond_board_cpus() {
    let r = Fixture::new().sample(&edit("pcpus = [1]", "vcpus = 2\npcpus = [\n  0,\n  4,\n]"));
    expect(r, S, 9, "domain \"a\".pcpus", &["pCPU 4 does not exist", "board \"tb\" has 4 CPUs, numbered 0 to 3"]);
    let r = Fixture::new().sample(&edit("pcpus = [2]", "pcpus = [-1]"));
    expect(r, S, 12, "domain \"b\".pcpus", &["pCPU -1 does not exist"]);
}

#[test]
fn pins_must_match_vcpus() {
    let r = Fixture::new().sample(&edit("pcpus = [1]", "vcpus = 2\npcpus = [1]"));
    expect(r, S, 7, "domain \"a\".pcpus", &["1 pCPU(s) listed for 2 vCPU(s)"]);
    let r = Fixture::new().sample(&edit("pcpus = [2]", "pcpus = [2, 3]"));
    expect(r, S, 12, "domain \"b\".pcpus", &["2 pCPU(s) listed for 1 vCPU(s)", "default 1"]);
}

#[test]
fn vcpus_range() {
    let r = Fixture::new().sample(&edit("pcpus = [1]", "vcpus = 9\npcpus = [1]"));
    expect(r, S, 6, "domain \"a\".vcpus", &["1 to 8 vCPUs"]);
    let r = Fixture::new().sample(&edit("pcpus = [1]", "vcpus = 0\npcpus = []"));
    expect(r, S, 6, "domain \"a\".vcpus", &["0 vCPUs"]);
}

// --- devices, images -----------------------------------------------------------

#[test]
fn unknown_device_lists_known_ones() {
    let r = Fixture::new().sample(&edit("memory = \"16M\"", "memory = \"16M\"\ndevices = [\"vpl011\", \"virtio-net\"]"));
    expect(r, S, 8, "domain \"a\".devices", &["unknown device \"virtio-net\"", "known devices: \"vpl011\""]);
}

#[test]
fn devices_default_to_vpl011_and_may_be_empty() {
    let s = Fixture::new().sample(&edit("memory = \"16M\"", "memory = \"16M\"\ndevices = []")).unwrap();
    assert!(!s.domains[0].vpl011);
    assert!(s.domains[1].vpl011);
}

#[test]
fn missing_image_file() {
    let r = Fixture::new().sample(&edit("image = \"guest:heartbeat\"", "image = \"images/kernel.bin\""));
    expect(r, S, 8, "domain \"a\".image", &["image file \"images/kernel.bin\" not found", "relative to the sample's directory", "\"heartbeat\", \"crasher\""]);
}

#[test]
fn existing_image_file_is_resolved_against_the_sample_dir() {
    let f = Fixture::new();
    f.write("samples/s/images/kernel.bin", "x");
    let s = f.sample(&edit("image = \"guest:heartbeat\"", "image = \"images/kernel.bin\"")).unwrap();
    assert_eq!(s.domains[0].image, ImageRef::File(f.dir.path().join("samples/s/images/kernel.bin")));
}

#[test]
fn unknown_builtin_guest_lists_known_ones() {
    let r = Fixture::new().sample(&edit("image = \"guest:crasher\"", "image = \"guest:blinker\""));
    expect(r, S, 14, "domain \"b\".image", &["unknown built-in guest \"blinker\"", "known guests: \"heartbeat\", \"crasher\""]);
}

// --- names, system controller, enums ------------------------------------------

#[test]
fn duplicate_domain_names() {
    let r = Fixture::new().sample(&edit("name = \"b\"", "name = \"a\""));
    expect(r, S, 11, "domain[1].name", &["duplicate domain name \"a\"", "domain[0] (line 5)"]);
}

#[test]
fn invalid_domain_names() {
    let r = Fixture::new().sample(&edit("name = \"b\"", "name = \"Big B\""));
    expect(r, S, 11, "domain[1].name", &["invalid domain name \"Big B\"", "1 to 31 characters"]);
    let long = "x".repeat(32);
    let r = Fixture::new().sample(&edit("name = \"a\"", &format!("name = \"{long}\"")));
    expect(r, S, 5, "domain[0].name", &["invalid domain name"]);
    let ok = "x".repeat(31);
    let s = Fixture::new().sample(&edit("name = \"a\"", &format!("name = \"{ok}\""))).unwrap();
    assert_eq!(s.domains[0].name, ok);
}

#[test]
fn at_most_one_system_controller() {
    let t = edit("memory = \"16M\"", "memory = \"16M\"\nsystem_controller = true")
        .replacen("image = \"guest:crasher\"", "image = \"guest:crasher\"\nsystem_controller = true", 1);
    let r = Fixture::new().sample(&t);
    expect(r, S, 16, "domain \"b\".system_controller", &["domain \"a\" is already the system controller"]);
}

#[test]
fn bad_action_lists_allowed_values() {
    let r = Fixture::new().sample(&edit("image = \"guest:crasher\"", "image = \"guest:crasher\"\non_crash = \"reboot\""));
    expect(r, S, 15, "domain \"b\".on_crash", &["unknown value \"reboot\"", "allowed values: \"destroy\", \"restart\", \"preserve\""]);
}

#[test]
fn actions_default_and_parse() {
    let s = Fixture::new()
        .sample(&edit("image = \"guest:crasher\"", "image = \"guest:crasher\"\non_poweroff = \"preserve\"\non_reboot = \"destroy\""))
        .unwrap();
    let (a, b) = (&s.domains[0], &s.domains[1]);
    assert_eq!((a.on_poweroff, a.on_reboot, a.on_crash), (Action::Destroy, Action::Restart, Action::Destroy));
    assert_eq!((b.on_poweroff, b.on_reboot, b.on_crash), (Action::Preserve, Action::Destroy, Action::Destroy));
}

#[test]
fn domain_count_limits() {
    let r = Fixture::new().sample("[system]\nboard = \"tb\"\n");
    let e = r.unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (None, "domain"));
    assert!(e.to_string().ends_with("system.toml: domain: the sample defines no domains; add at least one [[domain]] table"), "{e}");

    let mut t = String::from("[system]\nboard = \"tb\"\n");
    for i in 0..9 {
        t.push_str(&format!("[[domain]]\nname = \"d{i}\"\npcpus = [0]\nmemory = \"2M\"\nimage = \"guest:heartbeat\"\n"));
    }
    // The ninth [[domain]] header is on line 3 + 8 * 5.
    expect(Fixture::new().sample(&t), S, 43, "domain[8]", &["9 domains defined", "at most 8"]);
}

// --- system: board and profile ---------------------------------------------------

#[test]
fn unknown_board_lists_available_ones() {
    let r = Fixture::new().sample(&edit("board = \"tb\"", "board = \"rpi5\""));
    expect(r, S, 2, "system.board", &["no board \"rpi5\"", "boards in", "\"tb\""]);
    let r = Fixture::new().sample(&edit("board = \"tb\"", "board = \"../bsp/tb\""));
    expect(r, S, 2, "system.board", &["no board"]);
}

#[test]
fn an_armv7_board_takes_32_bit_kernels_and_refuses_what_is_built_for_aarch64() {
    let f = Fixture::new();
    let armv7_gicv2 = BOARD
        .replacen("\"aarch64\"", "\"armv7a\"", 1)
        .replacen("gic = \"v3\"", "gic = \"v2\"", 1)
        .replacen(
            "gicr = 0x080A_0000",
            "gicc = 0x0801_0000\ngich = 0x0803_0000\ngicv = 0x0804_0000",
            1,
        );
    let b = f.board(&armv7_gicv2).unwrap();
    assert_eq!(b.arch, "armv7a");
    // The test guests build for both architectures.
    let s = f.sample(TWO).unwrap();
    assert_eq!(s.board.arch, "armv7a");
    // So is Debian's arm64 kernel; armhf's LPAE flavour is the one.
    let arm64 = TWO.replacen("image = \"guest:heartbeat\"", "kind = \"linux\"\nimage = \"debian:linux-image-arm64\"", 1);
    expect(f.sample(&arm64), S, 9, "domain \"a\".image", &["\"linux-image-arm64\" is for aarch64 boards", "known for armv7a: \"linux-image-armmp-lpae\""]);
    let armhf = TWO
        .replacen("image = \"guest:heartbeat\"", "kind = \"linux\"\nimage = \"debian:linux-image-armmp-lpae\"", 1)
        .replacen("image = \"guest:crasher\"", "kind = \"linux\"\nimage = \"debian:linux-image-armmp-lpae\"", 1);
    let s = f.sample(&armhf).unwrap();
    assert_eq!(s.board.arch, "armv7a");
    assert!(s.domains.iter().all(|d| matches!(&d.image, hv_config::ImageRef::Debian(p) if p == "linux-image-armmp-lpae")));
}

#[test]
fn an_unknown_arch_is_an_error_naming_the_known_ones() {
    let r = Fixture::new().board(&BOARD.replacen("\"aarch64\"", "\"armv8r\"", 1));
    expect(
        r,
        B,
        3,
        "board.arch",
        &["unknown value \"armv8r\"", "\"aarch64\", \"armv7a\""],
    );
}

#[test]
fn an_armv7a_board_with_a_gicv3_is_an_error() {
    let r = Fixture::new().board(&BOARD.replacen("\"aarch64\"", "\"armv7a\"", 1));
    expect(r, B, 6, "board.gic", &["armv7a", "GICv2", "gic = \"v2\""]);
}

#[test]
fn a_crossbar_line_past_its_end_is_an_error() {
    let with = |xbar: &str| {
        BOARD.replacen(
            "uart = 0x0900_0000",
            &format!("uart = 0x0900_0000\ncrossbar = {xbar}"),
            1,
        )
    };
    let b = Fixture::new()
        .board(&with(
            "{ base = 0x0A00_2A48, lines = 160, sources = 400, safe = 0, reserved = [0, 131], skip = [10] }",
        ))
        .unwrap();
    let c = b.crossbar.expect("the crossbar is read");
    assert_eq!(
        (c.base, c.lines, c.sources, c.reserved, c.skip),
        (0x0A00_2A48, 160, 400, vec![0, 131], vec![10])
    );
    let r = Fixture::new().board(&with(
        "{ base = 0x0A00_2A48, lines = 160, sources = 400, safe = 0, skip = [160] }",
    ));
    expect(r, B, 6, "board.crossbar", &["line 160", "lines 0 to 159"]);
    let r = Fixture::new().board(&with(
        "{ base = 0x0A00_2A48, lines = 160, sources = 400, safe = 0, reserved = [5], skip = [5] }",
    ));
    expect(
        r,
        B,
        6,
        "board.crossbar",
        &["line 5", "both reserved and skipped"],
    );
    let r = Fixture::new().board(&with("{ base = 0x0A00_2A48, lines = 0, sources = 400, safe = 0 }"));
    expect(
        r,
        B,
        6,
        "board.crossbar.lines",
        &["0 crossbar lines", "1 to 256"],
    );
    let r = Fixture::new().board(&with("{ base = 0x0A00_2A48, lines = 160, sources = 400, safe = 400 }"));
    expect(r, B, 6, "board.crossbar.safe", &["input 400", "400 inputs"]);
    // The hypervisor drives the crossbar: its registers must be device
    // memory in its map, as the UART's and the GIC's are.
    let r = Fixture::new().board(&with("{ base = 0x4A00_2A48, lines = 160, sources = 400, safe = 0 }"));
    expect(r, B, 6, "board.crossbar", &["the IRQ crossbar 0x4a00_2000..0x4a00_3000", "without RAM"]);
}

#[test]
fn unknown_profile_in_sample_or_override() {
    let r = Fixture::new().sample(&edit("board = \"tb\"", "board = \"tb\"\nprofile = \"turbo\""));
    expect(r, S, 3, "system.profile", &["no profile \"turbo\"", "\"fast\", \"slow\""]);
    let o = LoadOptions { profile_override: Some("turbo".into()), ..Fixture::opts() };
    let e = Fixture::new().sample_with(TWO, &o).unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (None, "profile (override)"));
    assert!(e.message.contains("no profile \"turbo\""), "{e}");
}

#[test]
fn profile_choice_order() {
    let f = Fixture::new();
    assert_eq!(f.sample(TWO).unwrap().profile.name, "fast");
    let with_slow = edit("board = \"tb\"", "board = \"tb\"\nprofile = \"slow\"");
    assert_eq!(f.sample(&with_slow).unwrap().profile.vwfi, hv_config::Vwfi::Trap);
    let o = LoadOptions { profile_override: Some("fast".into()), ..Fixture::opts() };
    assert_eq!(f.sample_with(&with_slow, &o).unwrap().profile.name, "fast");
}

// --- board file ----------------------------------------------------------------------

#[test]
fn board_name_must_match_directory() {
    let r = Fixture::new().board(&BOARD.replacen("name = \"tb\"", "name = \"testboard\"", 1));
    expect(r, B, 2, "board.name", &["named \"testboard\" but its directory is \"tb\""]);
}

#[test]
fn board_cpus_range() {
    let r = Fixture::new().board(&BOARD.replacen("cpus = 4", "cpus = 9", 1));
    expect(r, B, 4, "board.cpus", &["1 to 8 CPUs"]);
}

#[test]
fn each_gic_version_names_its_own_frames() {
    // A GICv2 board without its CPU interface frames.
    let r = Fixture::new().board(&BOARD.replacen("gic = \"v3\"", "gic = \"v2\"", 1));
    expect(r, B, 6, "board.gic", &["a GICv2 board needs `gicc`"]);
    // A GICv3 board given a GICv2 frame.
    let r = Fixture::new().board(&BOARD.replacen("gicr = 0x080A_0000", "gicr = 0x080A_0000\ngicc = 0x0801_0000", 1));
    expect(r, B, 9, "board.gicc", &["`gicc` is not a GICv3 frame"]);
    // A GICv2 board with all of its frames, and a redistributor it lacks.
    let v2 = BOARD.replacen("gic = \"v3\"", "gic = \"v2\"", 1).replacen(
        "gicr = 0x080A_0000",
        "gicc = 0x0801_0000\ngich = 0x0803_0000\ngicv = 0x0804_0000",
        1,
    );
    let b = Fixture::new().board(&v2).unwrap();
    assert_eq!(b.gic, Gic::V2 { gicd: 0x0800_0000, gicc: 0x0801_0000, gich: 0x0803_0000, gicv: 0x0804_0000 });
    let r = Fixture::new().board(&v2.replacen("gicv = 0x0804_0000", "gicv = 0x0804_0000\ngicr = 0x080A_0000", 1));
    expect(r, B, 11, "board.gicr", &["`gicr` is not a GICv2 frame"]);
    let r = Fixture::new().board(&BOARD.replacen("gic = \"v3\"", "gic = \"v4\"", 1));
    expect(r, B, 6, "board.gic", &["allowed values: \"v2\", \"v3\""]);
}

/// The frames the hypervisor drives must be device memory in its map (a
/// 1 GiB block without RAM, below 4 GiB), on a page, and apart.
#[test]
fn the_hypervisors_own_frames_must_be_device_memory_and_apart() {
    // The UART in RAM's block, past RAM's end: mapped as normal memory.
    let r = Fixture::new().board(&BOARD.replacen("uart = 0x0900_0000", "uart = 0x7000_0000", 1).replacen("size = \"1G\" }", "size = \"512M\" }", 1).replacen("base = 0x6000_0000", "base = 0x4000_0000", 1));
    expect(r, B, 5, "board.uart", &["the hypervisor's UART 0x7000_0000..0x7000_1000", "1 GiB block without RAM", "ram is 0x4000_0000..0x6000_0000"]);
    // Above 4 GiB: not mapped at all.
    let r = Fixture::new().board(&BOARD.replacen("gicd = 0x0800_0000", "gicd = 0x1_0800_0000", 1));
    expect(r, B, 7, "board.gicd", &["the GIC distributor", "below 4 GiB"]);
    // Off a page.
    let r = Fixture::new().board(&BOARD.replacen("uart = 0x0900_0000", "uart = 0x0900_0800", 1));
    expect(r, B, 5, "board.uart", &["must start on a 4 KiB page"]);
    // Redistributors (4 CPUs: 512 KiB) running into the UART.
    let r = Fixture::new().board(&BOARD.replacen("uart = 0x0900_0000", "uart = 0x080C_0000", 1));
    expect(r, B, 8, "board.gicr", &["the GIC redistributors 0x80a_0000..0x812_0000 overlaps the hypervisor's UART"]);
    // GICv2: GICH kept with its alias page, so a GICV right after GICH
    // overlaps it.
    let v2 = BOARD.replacen("gic = \"v3\"", "gic = \"v2\"", 1).replacen(
        "gicr = 0x080A_0000",
        "gicc = 0x0801_0000\ngich = 0x0803_0000\ngicv = 0x0803_1000",
        1,
    );
    let r = Fixture::new().board(&v2);
    expect(r, B, 10, "board.gicv", &["the GIC virtual CPU interface", "overlaps the GIC virtual interface control"]);
}

#[test]
fn guest_ram_must_lie_inside_ram() {
    let r = Fixture::new().board(&BOARD.replacen("base = 0x6000_0000", "base = 0x3000_0000", 1));
    expect(r, B, 10, "board.guest_ram", &["guest_ram 0x3000_0000..0x3400_0000 must lie inside ram 0x4000_0000..0x8000_0000"]);
}

#[test]
fn default_profile_must_exist() {
    let r = Fixture::new().board(&BOARD.replacen("default_profile = \"fast\"", "default_profile = \"rt\"", 1));
    expect(r, B, 11, "board.default_profile", &["no profile named \"rt\"", "\"fast\", \"slow\""]);
}

#[test]
fn scheduler_and_vwfi_list_allowed_values() {
    let r = Fixture::new().board(&BOARD.replacen("scheduler = \"null\"", "scheduler = \"credit2\"", 1));
    expect(r, B, 14, "profiles.fast.scheduler", &["unknown value \"credit2\"", "allowed values: \"null\""]);
    let r = Fixture::new().board(&BOARD.replacen("vwfi = \"trap\"", "vwfi = \"sometimes\"", 1));
    expect(r, B, 19, "profiles.slow.vwfi", &["allowed values: \"trap\", \"native\""]);
}

#[test]
fn board_errors_surface_through_load_sample() {
    let f = Fixture::new();
    f.write("bsp/tb/board.toml", &BOARD.replacen("cpus = 4", "cpus = \"four\"", 1));
    expect(f.sample(TWO), B, 4, "board.cpus", &["invalid type"]);
}

#[test]
fn qemu_bundle_addr_must_be_outside_guest_ram() {
    let with_qemu = |addr: &str| {
        format!("{BOARD}\n[qemu]\nmachine = \"virt\"\ncpu = \"cortex-a57\"\nmemory = \"1G\"\nbundle_addr = {addr}\n")
    };
    let b = Fixture::new().board(&with_qemu("0x4900_0000")).unwrap();
    assert_eq!(b.qemu.unwrap().bundle_addr, Some(0x4900_0000));
    let r = Fixture::new().board(&with_qemu("0x6000_0000"));
    expect(r, B, 25, "qemu.bundle_addr", &["outside guest_ram"]);
}

// --- encoding ------------------------------------------------------------------------------

#[test]
fn a_bare_domain_offered_xen_gets_a_device_tree_below_its_xen_pages_clear_of_its_bss() {
    let f = Fixture::new();
    let s = f.sample(&format!("{TWO}\n[domain.xen]\ngrant_frames = 4\n")).unwrap();
    let fits = hv_config::DomainBlobs { image: vec![0; 10], initrd: None, footprint: 8 << 20 };
    let bundle = encode_bundle(&s, &[vec![0; 10].into(), fits]).unwrap();
    // The device tree's magic, 64 KiB below the 5 Xen pages at the top.
    let d = hv_core::bundle::Bundle::parse(&bundle).unwrap();
    let b = d.domain(1).unwrap();
    assert_eq!(b.dtb_offset, (16 << 20) - 5 * 4096 - (64 << 10));
    assert_eq!(b.dtb.get(..4), Some(&[0xd0, 0x0d, 0xfe, 0xed][..]));
    assert!(d.domain(0).unwrap().dtb.is_empty(), "no device tree without [domain.xen]");
    // bss and stack reaching into the device tree's slot are refused.
    let over = hv_config::DomainBlobs { image: vec![0; 10], initrd: None, footprint: (16 << 20) - 5 * 4096 - (64 << 10) + 1 };
    let r = encode_bundle(&s, &[vec![0; 10].into(), over]);
    expect(r, S, 14, "domain \"b\".image", &["with its bss and stack", "do not fit in 16 MiB"]);
}

#[test]
fn image_too_large_for_memory_names_domain_and_sizes() {
    let f = Fixture::new();
    let s = f.sample(&edit("memory = \"16M\"\nimage = \"guest:crasher\"", "memory = \"4M\"\nimage = \"guest:crasher\"\nload_offset = 0x1000")).unwrap();
    let room = (4 << 20) - 0x1000;
    assert!(encode_bundle(&s, &[vec![0; 10].into(), vec![0; room].into()]).is_ok());
    let r = encode_bundle(&s, &[vec![0; 10].into(), vec![0; room + 1].into()]);
    expect(r, S, 14, "domain \"b\".image", &["the image takes 4190209 bytes with its bss and stack but only 4190208 bytes", "memory 4 MiB minus load_offset 0x1000"]);
    // Its bss and stack count too, though the file does not hold them.
    let small_file = hv_config::DomainBlobs { image: vec![0; 10], initrd: None, footprint: room as u64 + 1 };
    let r = encode_bundle(&s, &[vec![0; 10].into(), small_file]);
    expect(r, S, 14, "domain \"b\".image", &["takes 4190209 bytes with its bss and stack"]);
    let e = encode_bundle(&s, &[vec![0; 10].into()]).unwrap_err();
    assert!(e.message.contains("2 domains but 1 images"), "{e}");
}

#[test]
fn system_controller_and_devices_reach_the_bundle() {
    let s = Fixture::new()
        .sample(&edit("memory = \"16M\"", "memory = \"16M\"\nsystem_controller = true\ndevices = []"))
        .unwrap();
    let bytes = encode_bundle(&s, &[vec![1; 3].into(), vec![2; 3].into()]).unwrap();
    let b = hv_core::bundle::Bundle::parse(&bytes).unwrap();
    let (a, bb) = (b.domain(0).unwrap(), b.domain(1).unwrap());
    assert!(a.is_system_controller() && !a.has_vpl011());
    assert!(!bb.is_system_controller() && bb.has_vpl011());
}

/// A big.LITTLE test board: pCPUs 0-1 in cluster 0, 2-3 in cluster 1.
fn two_clusters(mix: bool) -> String {
    let b = BOARD.replacen("cpus = 4\n", "cpus = 4\nmpidr = [0x0, 0x1, 0x100, 0x101]\n", 1);
    if mix {
        b.replacen("vwfi = \"native\"", "vwfi = \"native\"\nmix_clusters = true", 1)
    } else {
        b
    }
}

#[test]
fn affinities_must_be_one_per_cpu_and_distinct() {
    let r = Fixture::new().board(&BOARD.replacen("cpus = 4\n", "cpus = 4\nmpidr = [0x0, 0x1, 0x100]\n", 1));
    expect(r, B, 5, "board.mpidr", &["3 affinities for 4 CPUs"]);
    let r = Fixture::new().board(&BOARD.replacen("cpus = 4\n", "cpus = 4\nmpidr = [0x0, 0x1, 0x100, 0x1]\n", 1));
    expect(r, B, 5, "board.mpidr", &["affinity 0x1 is listed twice"]);
    let r = Fixture::new().board(&BOARD.replacen("cpus = 4\n", "cpus = 4\nmpidr = [0x0, 0x1, 0x100, 0x8000_0000]\n", 1));
    expect(r, B, 5, "board.mpidr", &["0x80000000 is not an affinity"]);
}

#[test]
fn a_domain_or_cpupool_stays_in_one_cluster_unless_the_profile_mixes() {
    let f = Fixture::new();
    f.write("bsp/tb/board.toml", &two_clusters(false));
    let spans = edit("pcpus = [1]", "vcpus = 2\npcpus = [1, 2]");
    expect(f.sample(&spans), S, 7, "domain \"a\".pcpus", &["pCPU 2 (MPIDR 0x100) is in another cluster than pCPU 1 (MPIDR 0x1)", "mix_clusters = true"]);
    let pool = format!("{TWO}\n[[cpupool]]\nname = \"p\"\npcpus = [0, 3]\nscheduler = \"null\"\n");
    expect(f.sample(&pool), S, 18, "cpupool \"p\".pcpus", &["pCPU 3 (MPIDR 0x101) is in another cluster"]);
    // Within one cluster it builds; a profile that allows mixing lets it span.
    assert!(f.sample(&edit("pcpus = [1]", "vcpus = 2\npcpus = [0, 1]").replacen("pcpus = [2]", "pcpus = [3]", 1)).is_ok());
    f.write("bsp/tb/board.toml", &two_clusters(true));
    assert!(f.sample(&spans.replacen("pcpus = [2]", "pcpus = [3]", 1)).is_ok());
}

#[test]
fn nothing_of_ours_may_sit_in_firmware_memory() {
    // TOML: [[board.reserved]] after the profiles is still the board's.
    let reserved = |base: &str| format!("{BOARD}\n[[board.reserved]]\nbase = {base}\nsize = \"16M\"\nwhat = \"OP-TEE\"\n");
    let r = Fixture::new().board(&reserved("0x6100_0000"));
    expect(r, B, 21, "board.reserved[0]", &["guest_ram 0x6000_0000..0x6400_0000 overlaps firmware's OP-TEE 0x6100_0000..0x6200_0000"]);
    let r = Fixture::new().board(&reserved("0x4000_0000"));
    expect(r, B, 21, "board.reserved[0]", &["the hypervisor's image", "overlaps firmware's OP-TEE"]);
    assert!(Fixture::new().board(&reserved("0x5000_0000")).is_ok());
}

#[test]
fn device_tree_sources_are_named_plainly() {
    let r = Fixture::new().board(&format!("{BOARD}\n[devicetree]\nsources = [\"linux-dts:../etc/passwd.dts\"]\n"));
    expect(r, B, 22, "devicetree.sources", &["is not a device-tree source"]);
    let r = Fixture::new().board(&format!("{BOARD}\n[devicetree]\nsources = [\"qemu\"]\n"));
    expect(r, B, 22, "devicetree.sources", &["needs a [qemu] table"]);
}

#[test]
fn the_console_may_be_a_scif() {
    let b = Fixture::new().board(&BOARD.replacen("uart = 0x0900_0000", "uart = 0x0900_0000\nuart_kind = \"scif\"", 1)).unwrap();
    assert_eq!(b.uart_kind, hv_core::bundle::UartKind::Scif);
    let r = Fixture::new().board(&BOARD.replacen("uart = 0x0900_0000", "uart = 0x0900_0000\nuart_kind = \"8250\"", 1));
    expect(r, B, 6, "board.uart_kind", &["unknown value \"8250\"", "\"pl011\", \"cadence\", \"scif\""]);
}
