//! The daemon's wiring, end to end on the loopback transport: devices
//! described in xl.cfg syntax inside the TOML file are created as libxl
//! would, served, and driven by the Rust frontends.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use drm_fourcc::DrmFourcc;
use pv_config::BackendConfig;
use pv_transport::loopback::Loopback;
use pv_transport::Platform;

#[test]
fn devices_from_xl_syntax_are_served() {
    let dir = std::env::temp_dir().join(format!("pv-backendd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let toml = format!(
        r#"
domain = 0
transport = "loopback"
[sound]
default_device = "null"
[display]
sink = "png"
png_dir = "{}"
[[guest]]
domain = 3
xl = """
vdispl = [ 'backend=0,connectors=center:64x48' ]
vsnd = [ [ 'CARD, short-name=ivi, sample-rates=48000, sample-formats=s16_le',
           'PCM, name=main', 'STREAM, unique-id=media, type=p' ] ]
vkb = [ 'backend-type=linux,feature-abs-pointer=1,width=640,height=480' ]
"""
"#,
        dir.display()
    );
    let cfg = BackendConfig::from_toml(&toml).unwrap();
    let lb = Loopback::new();
    let specs = pv_backendd::create_guests(&cfg, &*lb.xenstore(0)).unwrap();
    assert_eq!(specs.len(), 3);
    pv_backend::testlog::init();
    let sup = pv_backendd::supervisor(&cfg, Arc::new(lb.platform(0)));
    let stop = sup.stop_flag();
    let h = std::thread::spawn(move || sup.run().unwrap());

    let mut d =
        vdispl_front::VdisplFront::connect(lb.platform(3).open().unwrap(), 0, 5000).unwrap();
    assert_eq!(d.connectors().next().unwrap().unique_id, "center");
    let buf = d.create_dbuf(64, 48, 32).unwrap();
    let fb = d
        .attach_fb(buf, 64, 48, DrmFourcc::Xrgb8888 as u32)
        .unwrap();
    d.set_config(
        0,
        vdispl_front::SetConfig {
            fb_cookie: fb,
            x: 0,
            y: 0,
            width: 64,
            height: 48,
            bpp: 32,
        },
    )
    .unwrap();
    d.page_flip(0, fb).unwrap();
    d.wait_flip_done(0, fb, 3000).unwrap();
    assert!(
        std::fs::read_dir(&dir).unwrap().count() >= 2,
        "frames written as PNG"
    );

    let mut s = vsnd_front::VsndFront::connect(lb.platform(3).open().unwrap(), 0, 5000).unwrap();
    let media = s.find("media").unwrap();
    let p = vsnd_front::PcmParams {
        rate: 48000,
        format: vsnd_front::PcmFormat::S16Le,
        channels: 2,
        buffer_size: 4096,
        period_size: 1024,
    };
    s.open(media, p).unwrap();
    s.write(media, &[0u8; 8192]).unwrap();
    assert_eq!(s.wait_position(media, 8192, 2000).unwrap(), 8192);

    let k =
        vkbd_front::VkbdFront::connect(lb.platform(3).open().unwrap(), 0, Default::default(), 5000)
            .unwrap();
    assert_eq!(
        (k.features().width, k.features().height),
        (640, 480),
        "the vkb= sizes reach the frontend"
    );
    assert!(k.features().abs_pointer);

    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
}
