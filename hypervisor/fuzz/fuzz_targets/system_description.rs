//! The system description (`system.toml`), as a Tier-1 team or a tool might
//! write it, against the real boards under `bsp/`: it is accepted with every
//! domain inside the board's RAM and pCPUs, or refused with an error that
//! names the file. Never a panic.
#![no_main]

use hv_config::{parse_sample, LoadOptions};
use libfuzzer_sys::fuzz_target;
use std::path::{Path, PathBuf};

fn bsp() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bsp")
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let opts = LoadOptions { known_guests: vec!["heartbeat".into(), "crasher".into()], profile_override: None, board_override: None };
    let path = Path::new("/fuzz/system.toml");
    match parse_sample(path, &text, &bsp(), &opts) {
        Ok(s) => {
            for d in &s.domains {
                assert!(s.board.ram.contains(&d.memory), "{} outside RAM", d.name);
                assert!(hv_config::valid_domain_name(&d.name), "{:?}", d.name);
                assert!(d.pcpus.iter().all(|&p| u64::from(p) < u64::from(s.board.cpus)), "{} pinned outside the board", d.name);
            }
        }
        Err(e) => assert!(e.to_string().contains("system.toml"), "{e}"),
    }
});
