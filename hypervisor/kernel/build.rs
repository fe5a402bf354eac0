//! Links the bare-metal hypervisor at `HV_IMAGE_BASE` (hex; default
//! 0x4020_0000, QEMU virt's RAM base + 2 MiB): where a board's boot loader
//! puts an arm64 Image, RAM base + text_offset (a 32-bit image: where a
//! zImage goes, RAM base + 64 KiB). Nothing is relocated at
//! run time, so xtask builds one image per RAM base.
fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rerun-if-env-changed=HV_IMAGE_BASE");
    println!("cargo:rerun-if-changed=link.ld");
    if !(target.ends_with("-none") || target.ends_with("-none-softfloat") || target.ends_with("-none-eabi")) {
        return;
    }
    let default = if target.starts_with("armv7") { "0x40010000" } else { "0x40200000" };
    let base = std::env::var("HV_IMAGE_BASE").unwrap_or_else(|_| default.into());
    let digits = base.trim_start_matches("0x").replace('_', "");
    let addr = u64::from_str_radix(&digits, 16).unwrap_or_else(|_| panic!("HV_IMAGE_BASE={base}: not a hex address"));
    if target.starts_with("armv7") {
        // A 32-bit image goes where QEMU and U-Boot's bootz put a zImage:
        // RAM base + 64 KiB.
        assert!(addr % 0x20_0000 == 0x1_0000, "HV_IMAGE_BASE={base}: must be a 2 MiB-aligned RAM base + 64 KiB");
    } else {
        assert!(addr % 0x20_0000 == 0 && addr >= 0x20_0000, "HV_IMAGE_BASE={base}: must be a 2 MiB-aligned RAM base + 2 MiB");
    }
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let script = std::fs::read_to_string(format!("{dir}/link.ld")).expect("link.ld");
    let script = script.replace("HV_IMAGE_BASE", &format!("{addr:#x}"));
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("link.ld");
    std::fs::write(&out, script).expect("writing the link script");
    println!("cargo:rustc-link-arg=-T{}", out.display());
}
