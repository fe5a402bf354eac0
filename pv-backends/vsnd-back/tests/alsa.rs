//! vsnd through real libasound: the backend opens ALSA PCMs defined in an
//! asoundrc this test writes (pointed to by ALSA_CONFIG_PATH), whose
//! `file` plugin records playback to a raw file and feeds capture from one.
//! Needs only libasound2 at run time (listed in .ci/apt-packages).

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use pv_transport::loopback::Loopback;
use pv_transport::Platform;
use vsnd_back::AlsaAudio;
use vsnd_front::{PcmFormat, PcmParams, TriggerType, VsndFront};

struct Files {
    dir: PathBuf,
}

/// Writes the ALSA configuration once per test binary, before any ALSA call.
fn alsa_config() -> &'static Files {
    static FILES: OnceLock<Files> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("vsnd-alsa-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut conf = String::new();
        // `evil` is a device no route names: a guest that names it in its
        // unique-id must not reach it.
        for name in ["play_a", "play_b", "play_c", "evil"] {
            conf += &format!(
                "pcm.{name} {{\n type file\n slave.pcm {{ type null }}\n file \"{}\"\n format \"raw\"\n}}\n",
                dir.join(format!("{name}.raw")).display()
            );
        }
        conf += &format!(
            "pcm.mic {{\n type file\n slave.pcm {{ type null }}\n file \"{}\"\n infile \"{}\"\n format \"raw\"\n}}\n",
            dir.join("mic-out.raw").display(),
            dir.join("mic-in.raw").display()
        );
        let path = dir.join("asoundrc");
        std::fs::write(&path, conf).unwrap();
        // Set before the first ALSA call in this process; ALSA reads it once.
        std::env::set_var("ALSA_CONFIG_PATH", &path);
        Files { dir }
    })
}

fn read_file(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_default()
}

/// dom's card 0 routed by the daemon to `play_device` and `mic`; the
/// guest's own unique-ids are `play` and `mic`.
fn backend(lb: &Loopback, dom: u16, play_device: &str) -> (common::Backend, VsndFront) {
    backend_ids(lb, dom, play_device, "play")
}

fn backend_ids(lb: &Loopback, dom: u16, play_device: &str, play_id: &str) -> (common::Backend, VsndFront) {
    let be = common::start(lb, || Box::new(AlsaAudio), common::router(dom, play_device, "mic"));
    common::add(lb, &common::card(dom, play_id, "mic"));
    let fe = VsndFront::connect(lb.platform(dom).open().unwrap(), 0, 5000).unwrap();
    (be, fe)
}

const PARAMS: PcmParams = PcmParams {
    rate: 48000,
    format: PcmFormat::S16Le,
    channels: 2,
    buffer_size: 19200, // 100 ms
    period_size: 960,   // 5 ms
};

#[test]
fn playback_through_the_alsa_file_plugin_is_sample_exact() {
    let files = alsa_config();
    let lb = Loopback::new();
    let (_be, mut fe) = backend(&lb, 1, "play_a");
    let s = fe.find("play").unwrap();
    fe.open(s, PARAMS).unwrap();
    fe.trigger(s, TriggerType::Start).unwrap();
    let pcm = common::stereo_ramp(48000 / 2, 3); // half a second
    for chunk in pcm.chunks(PARAMS.period_size as usize) {
        fe.write(s, chunk).unwrap();
    }
    fe.trigger(s, TriggerType::Stop).unwrap();
    fe.close(s).unwrap(); // the plugin writes the rest of its file on close
    let written = read_file(&files.dir.join("play_a.raw"));
    assert_eq!(written.len(), pcm.len());
    assert!(
        written == pcm,
        "first differing byte at {:?}",
        written.iter().zip(&pcm).position(|(a, b)| a != b)
    );
}

#[test]
fn playback_gain_is_applied_before_alsa() {
    let files = alsa_config();
    let lb = Loopback::new();
    let (_be, mut fe) = backend(&lb, 2, "play_b");
    let s = fe.find("play").unwrap();
    fe.open(s, PARAMS).unwrap();
    fe.mute(s, &[true, false], true).unwrap();
    fe.set_volume(s, &[0, -20000]).unwrap(); // right at -20 dB: a tenth
    let pcm = common::stereo_ramp(4800, 11);
    fe.write(s, &pcm).unwrap();
    fe.close(s).unwrap();
    let want: Vec<u8> = pcm
        .chunks_exact(4)
        .flat_map(|f| {
            let r = i16::from_le_bytes([f[2], f[3]]);
            let r = (f64::from(r) * 0.1).round() as i16;
            [0i16.to_le_bytes(), r.to_le_bytes()].concat()
        })
        .collect();
    assert_eq!(read_file(&files.dir.join("play_b.raw")), want);
}

#[test]
fn capture_from_the_alsa_file_plugin_is_sample_exact() {
    let files = alsa_config();
    let source = common::stereo_ramp(9600, 17);
    std::fs::write(files.dir.join("mic-in.raw"), &source).unwrap();
    let lb = Loopback::new();
    let (_be, mut fe) = backend(&lb, 3, "play_a");
    let s = fe.find("mic").unwrap();
    fe.open(s, PARAMS).unwrap();
    fe.trigger(s, TriggerType::Start).unwrap();
    let got = fe.read(s, source.len()).unwrap();
    fe.close(s).unwrap();
    assert!(
        got == source,
        "first differing byte at {:?}",
        got.iter().zip(&source).position(|(a, b)| a != b)
    );
}

/// A guest names a device in its stream's unique-id (snd_be's `alsa<...>`
/// form, which f64e04b passed to ALSA): its samples still go to the device
/// the daemon routed its card to, and the named device is never opened.
/// Through ALSA's `file` plugin a named device could have written anywhere
/// in the driver domain or run a shell command.
#[test]
fn a_guest_cannot_choose_its_alsa_device() {
    let files = alsa_config();
    let lb = Loopback::new();
    let (_be, mut fe) = backend_ids(&lb, 4, "play_c", "alsa<evil>");
    let s = fe.find("alsa<evil>").unwrap();
    fe.open(s, PARAMS).unwrap();
    let pcm = common::stereo_ramp(960, 5);
    fe.write(s, &pcm).unwrap();
    fe.close(s).unwrap();
    assert!(!files.dir.join("evil.raw").exists(), "the guest-named device was opened");
    let routed = read_file(&files.dir.join("play_c.raw"));
    assert_eq!(routed, pcm, "playback should reach the routed device, sample for sample");
}
