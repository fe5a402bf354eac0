//! vsnd end to end on the loopback transport, against the in-memory audio
//! harness: sample-exact playback and capture, volume and mute, CUR_POS,
//! negotiation, and hostile frontends.

mod common;

use std::time::Duration;

use pv_backend::testlog;
use pv_transport::loopback::Loopback;
use pv_transport::xenbus::{self, XenbusState};
use pv_transport::{Platform, RingMemory};
use vsnd_back::{MemoryAudio, VsndLimits};
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
    let router = common::router(dom, "speaker", "microphone");
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
        s == XenbusState::Closed
    })
    .unwrap();
    assert!(!testlog::lines_containing("beyond the ring").is_empty());
    assert_eq!(fe.backend_state(), XenbusState::Closed);
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
        // Success, or one of the errors the backend documents.
        assert!([0, -5, -12, -13, -22, -95].contains(&status), "op {op}: status {status}");
    }
    assert_eq!(fe.backend_state(), XenbusState::Connected);
    // The raw calls moved the ring's indices under the frontend: it starts
    // over, and the backend serves the new connection exactly.
    fe.disconnect(5000).unwrap();
    let mut fe = VsndFront::connect(lb.platform(6).open().unwrap(), 0, 5000).unwrap();
    let play = fe.find("play").unwrap();
    fe.open(play, S16_STEREO_48K).unwrap();
    let pcm = common::stereo_ramp(240, 77);
    fe.write(play, &pcm).unwrap();
    assert!(audio.tap.lock().unwrap().played["speaker"].ends_with(&pcm));
}

/// A backend killed and restarted under a connected frontend (what
/// `cargo xtask interop` does to pv-backendd under Linux's snd-xen-front)
/// leaves the dead backend's rings alone and says InitWait: the frontend
/// notices at its next request, starts over with new rings and plays on
/// them. (A backend that took the old rings raced the frontend's restart
/// and could stay on them while the frontend used new ones: the interop
/// test's first play after a restart failed 1 run in 5 that way.)
#[test]
fn a_restarted_backend_has_the_frontend_start_over() {
    let lb = Loopback::new();
    let audio = MemoryAudio::default();
    let router = common::router(8, "speaker", "microphone");
    let start = |lb: &Loopback| {
        let a = audio.clone();
        common::start(lb, move || Box::new(a.clone()), router.clone())
    };
    let be = start(&lb);
    common::add(&lb, &common::card(8, "play", "mic"));
    let mut fe = VsndFront::connect(lb.platform(8).open().unwrap(), 0, 5000).unwrap();
    let play = fe.find("play").unwrap();
    fe.open(play, S16_STEREO_48K).unwrap();
    let first = common::stereo_ramp(240, 3); // one period
    fe.write(play, &first).unwrap();
    assert_eq!(fe.wait_position(play, 960, 2000).unwrap(), 960);

    drop(be);
    let connected = || testlog::lines_containing("vsnd/8/0: connected to dom8").len();
    assert_eq!(connected(), 1);
    let _be = start(&lb);
    let be_dir = "/local/domain/0/backend/vsnd/8/0";
    xenbus::wait_state(&*lb.xenstore(9), be_dir, "t", 5000, |x| x == XenbusState::InitWait).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(connected(), 1, "the new backend took the dead one's rings");
    // The frontend's next request finds its backend gone; it starts over.
    assert_eq!(
        fe.open(play, S16_STEREO_48K).err(),
        Some(vsnd_front::Error::Transport(pv_transport::Error::Closed))
    );
    let mut fe = VsndFront::connect(fe.disconnect(5000).unwrap(), 0, 5000).unwrap();
    // The backend says Connected before it logs it: the line may come a
    // moment after the frontend has seen the state.
    let t0 = std::time::Instant::now();
    while connected() < 2 && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(connected(), 2, "the new backend connects to the new rings");
    fe.open(play, S16_STEREO_48K).unwrap();
    let second = common::stereo_ramp(480, 4); // two periods
    fe.write(play, &second).unwrap();
    assert_eq!(fe.wait_position(play, 1920, 2000).unwrap(), 1920);
    // Nothing before the restart was played twice.
    assert_eq!(audio.tap.lock().unwrap().played["speaker"], [first, second].concat());
}

/// Linux keeps the stream pointer modulo the buffer, so no CUR_POS may
/// advance by a whole buffer: writing a full buffer at once (or an
/// underrun, after which everything written counts as played) is
/// reported in steps of at most half a buffer.
#[test]
fn no_position_event_advances_a_whole_buffer() {
    let (lb, _audio, _be, mut fe) = setup(10);
    let play = fe.find("play").unwrap();
    fe.open(play, S16_STEREO_48K).unwrap();
    let full = common::stereo_ramp(S16_STEREO_48K.buffer_size as usize / 4, 5);
    fe.write(play, &full).unwrap();
    assert_eq!(fe.wait_position(play, full.len() as u64, 2000).unwrap(), full.len() as u64);
    let dir = "/local/domain/10/device/vsnd/0/0/0";
    let evt_ref = xenbus::read_u32(&*lb.xenstore(10), &format!("{dir}/evt-ring-ref")).unwrap();
    let page = pv_transport::GrantMapper::map(&*lb.grants(0), 10, &[evt_ref], false).unwrap();
    let prod = page.read_u32(4);
    let mut last = 0u64;
    for i in 0..prod {
        let mut ev = [0u8; 64];
        page.read_bytes(64 + (i as usize % 63) * 64, &mut ev);
        let pos = u64::from_le_bytes(ev[8..16].try_into().unwrap());
        assert!(pos - last <= u64::from(S16_STEREO_48K.buffer_size) / 2, "event {i} jumps {last} -> {pos}");
        last = pos;
    }
    assert_eq!(last, full.len() as u64);
}

/// The CUR_POS positions of stream 0 of card `dom`, from its event page.
fn positions(lb: &Loopback, dom: u16) -> Vec<u64> {
    let dir = format!("/local/domain/{dom}/device/vsnd/0/0/0");
    let evt_ref = xenbus::read_u32(&*lb.xenstore(dom), &format!("{dir}/evt-ring-ref")).unwrap();
    let page = pv_transport::GrantMapper::map(&*lb.grants(0), dom, &[evt_ref], false).unwrap();
    (0..page.read_u32(4))
        .map(|i| {
            let mut ev = [0u8; 64];
            page.read_bytes(64 + (i as usize % 63) * 64, &mut ev);
            u64::from_le_bytes(ev[8..16].try_into().unwrap())
        })
        .collect()
}

/// Positions follow what the device has played, not what it was handed,
/// and come from the backend's own clock; a period is reported once the
/// device is strictly past its end (snd-xen-front needs more than a period
/// to signal one), and the exact position once everything has played.
#[test]
fn positions_follow_the_device_and_cross_period_boundaries() {
    let (lb, audio, _be, mut fe) = setup(11);
    let play = fe.find("play").unwrap();
    fe.open(play, S16_STEREO_48K).unwrap();
    let set_queued = |n: u64| {
        audio.tap.lock().unwrap().queued.insert("speaker".into(), n);
    };
    let wait_for = |want: usize| {
        for _ in 0..400 {
            if positions(&lb, 11).len() >= want {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        positions(&lb, 11)
    };
    // Four periods handed over, three still in the device: the first
    // period has played exactly, not yet past its end.
    set_queued(3 * 960);
    fe.write(play, &common::stereo_ramp(960, 1)).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(positions(&lb, 11), Vec::<u64>::new());
    // The device plays on without any request: reports come by themselves.
    set_queued(2 * 960 - 4);
    assert_eq!(wait_for(1), vec![1924]);
    set_queued(960);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(positions(&lb, 11).len(), 1, "exactly on a boundary: not yet");
    set_queued(956);
    assert_eq!(wait_for(2), vec![1924, 2884]);
    // Drained: the exact position, so a frontend's drain completes.
    set_queued(0);
    assert_eq!(wait_for(3), vec![1924, 2884, 3840]);
}

/// The frontend's own `buffer-size` (which the guest writes) is no licence:
/// an OPEN over the daemon's cap per stream is answered with an error, the
/// backend keeps serving, and a normal OPEN then plays.
#[test]
fn a_buffer_over_the_daemons_cap_is_refused_whatever_the_frontend_publishes() {
    let lb = Loopback::new();
    let audio = MemoryAudio::default();
    let a2 = audio.clone();
    let _be = common::start(&lb, move || Box::new(a2.clone()), common::router(11, "speaker", "microphone"));
    let mut spec = common::card(11, "play", "mic");
    for (k, v) in spec.fe_nodes.iter_mut() {
        if k == "buffer-size" {
            *v = (1u32 << 30).to_string();
        }
    }
    common::add(&lb, &spec);
    let mut fe = VsndFront::connect(lb.platform(11).open().unwrap(), 0, 5000).unwrap();
    let play = fe.find("play").unwrap();
    // What the backend offers already says so.
    let offered = fe.hw_param_query(play, HwParams::default()).unwrap();
    let cap_frames = VsndLimits::default().max_buffer_bytes / 2; // S16, mono at least
    assert!(offered.buffer.max <= cap_frames, "offered {:?}, cap {cap_frames} frames", offered.buffer);
    // 4 MiB of S16 stereo: 21 s of audio, 16 times the cap.
    let huge = PcmParams { buffer_size: 4 << 20, ..S16_STEREO_48K };
    assert_eq!(fe.open(play, huge), Err(Error::Status(-22)));
    assert!(!testlog::lines_containing("vsnd dom11: OPEN buffer of 4194304 bytes").is_empty());
    fe.open(play, S16_STEREO_48K).unwrap();
    let pcm = common::stereo_ramp(4096, 9); // a whole buffer in one WRITE
    fe.write(play, &pcm).unwrap();
    assert_eq!(audio.tap.lock().unwrap().played["speaker"], pcm);
}

/// Streams of one card share a quota of mapped buffer bytes; one over it
/// gets -ENOMEM until another closes. A card with more streams than the
/// daemon allows is refused at connect.
#[test]
fn a_card_has_a_quota_of_buffer_bytes_and_streams() {
    let lb = Loopback::new();
    let audio = MemoryAudio::default();
    let a2 = audio.clone();
    let limits = VsndLimits { max_card_bytes: 20_000, ..VsndLimits::default() };
    let _be = common::start_with(&lb, move || Box::new(a2.clone()), common::router(12, "speaker", "microphone"), limits);
    common::add(&lb, &common::card(12, "play", "mic"));
    let mut fe = VsndFront::connect(lb.platform(12).open().unwrap(), 0, 5000).unwrap();
    let (play, mic) = (fe.find("play").unwrap(), fe.find("mic").unwrap());
    fe.open(play, S16_STEREO_48K).unwrap(); // 16384 bytes
    assert_eq!(fe.open(mic, S16_STEREO_48K), Err(Error::Status(-12)));
    fe.close(play).unwrap();
    fe.open(mic, S16_STEREO_48K).unwrap();

    let lb = Loopback::new();
    let a3 = audio.clone();
    let one = VsndLimits { max_streams: 1, ..VsndLimits::default() };
    let _be = common::start_with(&lb, move || Box::new(a3.clone()), common::router(13, "speaker", "microphone"), one);
    common::add(&lb, &common::card(13, "play", "mic"));
    assert!(VsndFront::connect(lb.platform(13).open().unwrap(), 0, 5000).is_err());
    assert!(!testlog::lines_containing("2 streams, more than the 1 allowed").is_empty());
}

/// Capture needs a device the daemon configured for the card; playback of
/// a card with no route of its own goes to the default playback device.
#[test]
fn capture_without_a_configured_device_is_refused() {
    let lb = Loopback::new();
    let audio = MemoryAudio::default();
    let a2 = audio.clone();
    let _be = common::start(&lb, move || Box::new(a2.clone()), vsnd_back::Router::new(Some("dmix".into())));
    common::add(&lb, &common::card(14, "play", "mic"));
    let mut fe = VsndFront::connect(lb.platform(14).open().unwrap(), 0, 5000).unwrap();
    let (play, mic) = (fe.find("play").unwrap(), fe.find("mic").unwrap());
    assert_eq!(fe.open(mic, S16_STEREO_48K), Err(Error::Status(-13)));
    fe.open(play, S16_STEREO_48K).unwrap();
    let pcm = common::stereo_ramp(240, 4);
    fe.write(play, &pcm).unwrap();
    let tap = audio.tap.lock().unwrap();
    assert_eq!(tap.played["dmix"], pcm);
    assert!(tap.opened.iter().all(|(dev, _)| dev == "dmix"), "{:?}", tap.opened);
}
