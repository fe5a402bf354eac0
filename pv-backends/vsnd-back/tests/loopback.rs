//! vsnd end to end on the loopback transport, against the in-memory audio
//! harness: sample-exact playback and capture, volume and mute, CUR_POS,
//! negotiation, and hostile frontends.

mod common;

use std::time::Duration;

use pv_backend::testlog;
use pv_transport::loopback::Loopback;
use pv_transport::xenbus::{self, XenbusState};
use pv_transport::{Platform, RingMemory};
use vsnd_back::{MemoryAudio, Router};
use vsnd_front::{Error, HwParams, Interval, PcmFormat, PcmParams, TriggerType, VsndFront};

const S16_STEREO_48K: PcmParams = PcmParams {
    rate: 48000,
    format: PcmFormat::S16Le,
    channels: 2,
    buffer_size: 16384,
    period_size: 960,
};

fn setup(dom: u16) -> (Loopback, MemoryAudio, common::Backend, VsndFront) {
    let lb = Loopback::new();
    let audio = MemoryAudio::default();
    let a2 = audio.clone();
    let mut router = Router::default();
    router.routes.insert("play".into(), "speaker".into());
    router.routes.insert("mic".into(), "microphone".into());
    let be = common::start(&lb, move || Box::new(a2.clone()), router);
    common::add(&lb, &common::card(dom, "play", "mic"));
    let fe = VsndFront::connect(lb.platform(dom).open().unwrap(), 0, 5000).unwrap();
    (lb, audio, be, fe)
}

#[test]
fn playback_is_sample_exact_with_volume_mute_and_positions() {
    let (_lb, audio, _be, mut fe) = setup(1);
    let infos: Vec<_> = fe.streams().cloned().collect();
    assert_eq!(infos.len(), 2);
    assert!(infos[0].playback && !infos[1].playback);
    let play = fe.find("play").unwrap();

    fe.open(play, S16_STEREO_48K).unwrap();
    fe.trigger(play, TriggerType::Start).unwrap();
    let pcm = common::stereo_ramp(48000 / 10, 5); // 100 ms, more than one buffer
    fe.write(play, &pcm).unwrap();
    // CUR_POS arrives per period; the last report is at most a period behind.
    let pos = fe.wait_position(play, pcm.len() as u64, 2000).unwrap();
    assert_eq!(pos, pcm.len() as u64);

    // Right channel muted, left at -6 dB: checked against the documented gain.
    fe.set_volume(play, &[-6000, 0]).unwrap();
    assert_eq!(fe.get_volume(play, 2).unwrap(), vec![-6000, 0]);
    fe.mute(play, &[false, true], true).unwrap();
    let second = common::stereo_ramp(480, 99);
    fe.write(play, &second).unwrap();
    fe.mute(play, &[false, true], false).unwrap();
    fe.set_volume(play, &[0, 0]).unwrap();
    fe.trigger(play, TriggerType::Stop).unwrap();
    fe.close(play).unwrap();

    let tap = audio.tap.lock().unwrap();
    let played = &tap.played["speaker"];
    assert_eq!(&played[..pcm.len()], &pcm[..], "unity gain is bit-exact");
    let g = 10f64.powf(-6000.0 / 20000.0);
    let want: Vec<u8> = second
        .chunks_exact(4)
        .flat_map(|f| {
            let l = i16::from_le_bytes([f[0], f[1]]);
            let l = (f64::from(l) * g).round() as i16;
            [l.to_le_bytes(), 0i16.to_le_bytes()].concat()
        })
        .collect();
    assert_eq!(&played[pcm.len()..], &want[..]);
    assert_eq!(tap.triggers["speaker"], vec!["start", "stop"]);
    let (dev, cfg) = &tap.opened[0];
    assert_eq!(
        (dev.as_str(), cfg.rate, cfg.channels, cfg.period_frames),
        ("speaker", 48000, 2, 240)
    );
}

#[test]
fn capture_delivers_the_source_exactly() {
    let (_lb, audio, _be, mut fe) = setup(2);
    let mic = fe.find("mic").unwrap();
    let source = common::stereo_ramp(4800, 7);
    audio
        .tap
        .lock()
        .unwrap()
        .to_capture
        .insert("microphone".into(), source.clone());
    fe.open(mic, S16_STEREO_48K).unwrap();
    fe.trigger(mic, TriggerType::Start).unwrap();
    let got = fe.read(mic, source.len()).unwrap();
    assert_eq!(got, source);
    assert_eq!(
        fe.wait_position(mic, source.len() as u64, 2000).unwrap(),
        source.len() as u64
    );
    // Writing to a capture stream is refused.
    assert_eq!(fe.write(mic, &[0; 4]), Err(Error::Status(-22)));
}

#[test]
fn negotiation_follows_the_xenstore_ranges() {
    let (_lb, _audio, _be, mut fe) = setup(3);
    let play = fe.find("play").unwrap();
    let any = HwParams::default();
    let hw = fe.hw_param_query(play, any).unwrap();
    assert_eq!(
        hw.formats,
        PcmFormat::S16Le.mask_bit() | PcmFormat::S32Le.mask_bit()
    );
    assert_eq!(
        hw.rates,
        Interval {
            min: 44100,
            max: 48000
        }
    );
    assert_eq!(hw.channels, Interval { min: 1, max: 2 });
    let narrow = HwParams {
        formats: PcmFormat::S32Le.mask_bit() | PcmFormat::U8.mask_bit(),
        rates: Interval {
            min: 8000,
            max: 44100,
        },
        ..any
    };
    let hw = fe.hw_param_query(play, narrow).unwrap();
    assert_eq!(hw.formats, PcmFormat::S32Le.mask_bit());
    assert_eq!(
        hw.rates,
        Interval {
            min: 44100,
            max: 44100
        }
    );
    let impossible = HwParams {
        rates: Interval {
            min: 96000,
            max: 192000,
        },
        ..any
    };
    assert_eq!(fe.hw_param_query(play, impossible), Err(Error::Status(-22)));
    // OPEN outside the ranges fails; inside works.
    for bad in [
        PcmParams {
            rate: 96000,
            ..S16_STEREO_48K
        },
        PcmParams {
            format: PcmFormat::U8,
            ..S16_STEREO_48K
        },
        PcmParams {
            channels: 6,
            ..S16_STEREO_48K
        },
        PcmParams {
            buffer_size: 1 << 20,
            ..S16_STEREO_48K
        },
    ] {
        assert_eq!(fe.open(play, bad), Err(Error::Status(-22)), "{bad:?}");
    }
    fe.open(
        play,
        PcmParams {
            rate: 44100,
            format: PcmFormat::S32Le,
            channels: 1,
            ..S16_STEREO_48K
        },
    )
    .unwrap();
}

#[test]
fn hostile_requests_get_errors_and_a_corrupt_ring_gets_closing() {
    let (lb, audio, _be, mut fe) = setup(4);
    let play = fe.find("play").unwrap();
    fe.open(play, S16_STEREO_48K).unwrap();
    // A second, well-behaved card in another domain.
    common::add(&lb, &common::card(5, "play", "mic"));
    let mut good = VsndFront::connect(lb.platform(5).open().unwrap(), 0, 5000).unwrap();
    let gp = good.find("play").unwrap();
    good.open(gp, S16_STEREO_48K).unwrap();

    // Windows beyond the buffer, partial frames, volume for 3 channels.
    let raw = RawStream::new(&lb, 4, 0);
    assert_eq!(
        raw.call(&lb, 3, 0x10, &[(8, 16380), (12, 8)]),
        -22,
        "WRITE past the buffer"
    );
    assert_eq!(
        raw.call(&lb, 3, 0x11, &[(8, 0xffff_fff0), (12, 0x20)]),
        -22,
        "offset overflow"
    );
    assert_eq!(
        raw.call(&lb, 3, 0x12, &[(8, 0), (12, 3)]),
        -22,
        "partial frame"
    );
    assert_eq!(
        raw.call(&lb, 4, 0x13, &[(8, 0), (12, 12)]),
        -22,
        "volume for 3 channels"
    );
    assert_eq!(raw.call(&lb, 42, 0x14, &[]), -22, "unknown operation");
    assert!(!testlog::lines_containing("operation 42").is_empty());
    // OPEN with a directory grant that does not exist.
    assert_eq!(
        raw.call(
            &lb,
            0,
            0x15,
            &[(8, 48000), (12, 0x0202), (16, 4096), (20, 77777), (24, 0)]
        )
        .clamp(-100, 100),
        -22
    );
    assert!(!testlog::lines_containing("does not map").is_empty());

    // The good card still plays.
    let pcm = common::stereo_ramp(240, 1);
    good.write(gp, &pcm).unwrap();
    assert_eq!(audio.tap.lock().unwrap().played["speaker"], pcm);

    // Ring indices beyond the ring: the backend moves to Closing.
    raw.ring
        .write_u32(0, raw.ring.read_u32(0).wrapping_add(1000));
    raw.kick(&lb);
    let be_dir = "/local/domain/0/backend/vsnd/4/0";
    xenbus::wait_state(&*lb.xenstore(9), be_dir, "t", 5000, |s| {
        s == XenbusState::Closing
    })
    .unwrap();
    assert!(!testlog::lines_containing("beyond the ring").is_empty());
    assert_eq!(fe.backend_state(), XenbusState::Closing);
    let more = common::stereo_ramp(240, 2);
    good.write(gp, &more).unwrap();
    assert_eq!(
        audio.tap.lock().unwrap().played["speaker"],
        [pcm, more].concat()
    );
    std::thread::sleep(Duration::from_millis(10));
}

/// Direct access to a stream's request ring, as a hostile frontend has.
struct RawStream {
    ring: pv_transport::Shm,
    port: u32,
    dom: u16,
}

impl RawStream {
    fn new(lb: &Loopback, dom: u16, stream: u32) -> Self {
        let xs = lb.xenstore(dom);
        let dir = format!("/local/domain/{dom}/device/vsnd/0/0/{stream}");
        let rd = |n: &str| xenbus::read_u32(&*xs, &format!("{dir}/{n}")).unwrap();
        let ring =
            pv_transport::GrantMapper::map(&*lb.grants(0), dom, &[rd("ring-ref")], true).unwrap();
        Self {
            ring,
            port: rd("event-channel"),
            dom,
        }
    }

    /// Writes a request straight into the next slot and waits for the
    /// response status in the same slot.
    fn call(&self, lb: &Loopback, op: u8, id: u16, fields: &[(usize, u32)]) -> i32 {
        let prod = self.ring.read_u32(0);
        let slot = 64 + (prod as usize % 32) * 64;
        let mut req = [0u8; 64];
        req[0..2].copy_from_slice(&id.to_le_bytes());
        req[2] = op;
        for &(off, v) in fields {
            req[off..off + 4].copy_from_slice(&v.to_le_bytes());
        }
        self.ring.write_bytes(slot, &req);
        self.ring.write_u32(0, prod.wrapping_add(1));
        self.kick(lb);
        for _ in 0..500 {
            if self.ring.read_u32(8) == prod.wrapping_add(1) {
                let mut rsp = [0u8; 8];
                self.ring.read_bytes(slot, &mut rsp);
                assert_eq!(u16::from_le_bytes([rsp[0], rsp[1]]), id);
                return i32::from_le_bytes([rsp[4], rsp[5], rsp[6], rsp[7]]);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        panic!("no response");
    }

    /// Notifies the backend as the frontend would.
    fn kick(&self, lb: &Loopback) {
        lb.notify_from(self.dom, self.port).unwrap();
    }
}

/// Random request packets: each is answered with a status, the backend
/// stays Connected, and another card keeps playing.
#[test]
fn random_requests_are_all_answered() {
    let (lb, audio, _be, mut fe) = setup(6);
    let play = fe.find("play").unwrap();
    fe.open(play, S16_STEREO_48K).unwrap();
    let raw = RawStream::new(&lb, 6, 0);
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..400u16 {
        let op = (next() % 12) as u8;
        let fields: Vec<(usize, u32)> = (0..10)
            .map(|k| {
                (
                    8 + k * 4,
                    next() as u32 % if k % 2 == 0 { 20000 } else { u32::MAX },
                )
            })
            .collect();
        let status = raw.call(&lb, op, 0x1000 + i, &fields);
        assert!(status <= 0, "status {status}");
    }
    assert_eq!(fe.backend_state(), XenbusState::Connected);
    let _ = audio;
}
