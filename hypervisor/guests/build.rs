fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.ends_with("-none") || target.ends_with("-none-softfloat") || target.ends_with("-none-eabi") {
        let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
        println!("cargo:rustc-link-arg=-T{dir}/link.ld");
        println!("cargo:rerun-if-changed=link.ld");
    }
}
