//! `interop-probe`: the test programs of the Xen interop test bed.
//!
//! * `interop-probe agent` (domU): logs every event of every
//!   `/dev/input/event*` on stdout, acknowledges each key in xenstore
//!   (`data/keys`) and answers `data/ping` with `data/pong` (for the latency
//!   benchmark), and runs the commands dom0 writes to `data/cmd`
//!   (`<seq> fb` draws the test pattern on `/dev/fb0`, `<seq> tone <ms>`
//!   plays a tone period by period and prints the period timing,
//!   `<seq> sh <command>` runs a shell command), answering in `data/result`.
//! * `interop-probe inject <fifo>` (dom0): creates the uinput devices
//!   `interop-touch` (multi-touch) and `interop-keys`, prints their nodes,
//!   then runs the commands written to the FIFO (`touch`, `key <code>`,
//!   `latency <domid> <count>`).
//! * `interop-probe png2rgba <in.png> <out.rgba>` (dom0): what the display
//!   sink wrote, as raw RGBA for the host to compare pixel by pixel.
//!
//! * `evtchn-echo`, `evtchn-ping`, `xs-read`: round trips for
//!   `cargo xtask bench xen` (see `figures`).
//! * `grant-copy <dom> <gref>` (backend): GNTTABOP_copy checked against a
//!   mapping of the same grant (see `grants`).
//!
//! Every line meant for the host starts with `probe: `.

mod agent;
mod figures;
mod grants;
mod inject;
mod pattern;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.first().map(String::as_str) {
        Some("agent") => agent::run(),
        Some("inject") if args.len() == 2 => inject::run(&args[1]),
        Some("png2rgba") if args.len() == 3 => png2rgba(&args[1], &args[2]),
        Some("evtchn-echo") if args.len() == 3 => figures::evtchn_echo(&args[1], &args[2]),
        Some("evtchn-ping") if args.len() == 3 => figures::evtchn_ping(&args[1], &args[2]),
        Some("xs-read") if args.len() == 3 => figures::xs_read(&args[1], &args[2]),
        Some("grant-copy") if args.len() == 3 => grants::grant_copy(&args[1], &args[2]),
        _ => Err("usage: interop-probe agent | inject <fifo> | png2rgba <in.png> <out.rgba> | evtchn-echo <remote> <n> | evtchn-ping <fe> <n> | xs-read <path> <n> | grant-copy <dom> <gref>".into()),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("probe: error: {e}");
            ExitCode::FAILURE
        }
    }
}

pub type Result<T = ()> = std::result::Result<T, String>;

fn png2rgba(input: &str, output: &str) -> Result {
    let file = std::fs::File::open(input).map_err(|e| format!("{input}: {e}"))?;
    let mut dec = png::Decoder::new(std::io::BufReader::new(file));
    dec.set_transformations(png::Transformations::EXPAND);
    let mut reader = dec.read_info().map_err(|e| format!("{input}: {e}"))?;
    let mut buf = vec![0; reader.output_buffer_size().ok_or("image too large")?];
    let info = reader.next_frame(&mut buf).map_err(|e| format!("{input}: {e}"))?;
    if info.color_type != png::ColorType::Rgba || info.bit_depth != png::BitDepth::Eight {
        return Err(format!("{input}: {:?}/{:?}, expected 8-bit RGBA", info.color_type, info.bit_depth));
    }
    std::fs::write(output, &buf[..info.buffer_size()]).map_err(|e| format!("{output}: {e}"))?;
    println!("probe: png {input} {}x{}", info.width, info.height);
    Ok(())
}
