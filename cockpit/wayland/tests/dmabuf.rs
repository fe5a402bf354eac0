//! `zwp_linux_dmabuf_v1` on the host: what is offered, and how a client's
//! mistakes and lies are answered. The host has no dma-buf exporter a test
//! can reach (no /dev/udmabuf, no /dev/dri, no V4L2 device in CI's
//! container), so buffers really made from dma-bufs (a V4L2 camera's, with
//! weston's simple-dmabuf-v4l client) are shown in the arm64 VM test
//! `xtask/tests/cockpit.rs::a_camera_s_dmabufs_show_on_the_screen`.

mod common;

use std::os::fd::AsFd;

use common::*;
use wayland_protocols::wp::linux_dmabuf::zv1::client::zwp_linux_buffer_params_v1::{self as params, ZwpLinuxBufferParamsV1};

const LAYOUT: &str = r##"
[[display]]
name = "center"
mode = "64x48"

[[source]]
name = "camera"
app_id = "camera"
display = "center"
rect = [0, 0, 64, 48]
"##;

const XRGB8888: u32 = u32::from_le_bytes(*b"XR24");

/// The protocol error the roundtrip after a request ends with.
fn protocol_error(c: &mut TestClient) -> String {
    c.roundtrip().expect_err("the request is a protocol error");
    protocol_error_seen(c, "the request")
}

/// Params holding a 64x48 XRGB8888 plane in a memfd (no dma-buf).
fn memfd_params(c: &TestClient) -> ZwpLinuxBufferParamsV1 {
    let p = dmabuf(c).create_params(&c.qh, ());
    p.add(memfd(64 * 48 * 4).as_fd(), 0, 0, 64 * 4, 0, 0);
    p
}

/// The protocol error a client already got (after `what`).
fn protocol_error_seen(c: &TestClient, what: &str) -> String {
    let p = c
        .conn
        .protocol_error()
        .unwrap_or_else(|| panic!("{what}: disconnected without a protocol error"));
    format!("{} {}: {}", p.object_interface, p.code, p.message)
}

#[test]
fn the_shm_formats_are_offered_linear() {
    let h = Harness::start(LAYOUT);
    let mut c = TestClient::connect(&h.socket);
    let _d = dmabuf(&c);
    c.roundtrip().unwrap();
    for code in [b"XR24", b"AR24", b"XB24", b"AB24", b"RG16"] {
        let line = format!("modifier {:#010x} 0x0", u32::from_le_bytes(*code));
        assert!(c.seen.events.contains(&line), "{} offered linear: {:?}", String::from_utf8_lossy(code), c.seen.events);
    }
    let offers = c.seen.events.iter().filter(|e| e.starts_with("modifier") || e.starts_with("format")).count();
    assert_eq!(offers, 5, "only linear, only those: {:?}", c.seen.events);
}

#[test]
fn a_memfd_passed_as_a_dmabuf_fails_and_the_client_carries_on() {
    let h = Harness::start(LAYOUT);
    let mut c = TestClient::connect(&h.socket);
    memfd_params(&c).create(64, 48, XRGB8888, params::Flags::empty());
    c.roundtrip().unwrap();
    assert_eq!(c.seen.events.last().map(String::as_str), Some("failed"), "{:?}", c.seen.events);
    // Still connected, and its shm buffers still show.
    let (surface, _top) = c.toplevel("camera");
    c.show(&surface, 64, 48, &vec![0x00ff_0000; 64 * 48]).unwrap();
    h.wait_for("the camera's shm picture", 10, |comp, _| comp.snapshot(0).get(10, 10) == 0xffff_0000);
}

/// `create_immed` of what the compositor cannot show: the buffer is
/// marked failed (`failed`), the client stays connected, and attaching
/// the failed buffer shows nothing.
#[test]
fn create_immed_with_a_memfd_is_a_failed_buffer() {
    let h = Harness::start(LAYOUT);
    let mut c = TestClient::connect(&h.socket);
    let (surface, _top) = c.toplevel("camera");
    let buffer = memfd_params(&c).create_immed(64, 48, XRGB8888, params::Flags::empty(), &c.qh, ());
    c.roundtrip()
        .expect("a failed buffer is no reason to disconnect");
    assert_eq!(
        c.seen.events.last().map(String::as_str),
        Some("failed"),
        "{:?}",
        c.seen.events
    );
    surface.attach(Some(&buffer), 0, 0);
    surface.commit();
    c.roundtrip().expect("attaching it neither");
    c.show(&surface, 64, 48, &vec![0x00ff_0000; 64 * 48])
        .unwrap();
    h.wait_for("an shm picture after the failed buffer", 10, |comp, _| {
        comp.snapshot(0).get(10, 10) == 0xffff_0000
    });
}

/// A misuse of params: what it is, what it sends, the error code it earns.
type Misuse = (&'static str, fn(&ZwpLinuxBufferParamsV1), u32);

#[test]
fn params_misuse_is_a_protocol_error_naming_it() {
    let cases: [Misuse; 6] = [
        (
            "plane index past the last plane",
            |p| p.add(memfd(4096).as_fd(), 4, 0, 256, 0, 0),
            1,
        ),
        (
            "plane added twice",
            |p| {
                p.add(memfd(4096).as_fd(), 0, 0, 256, 0, 0);
                p.add(memfd(4096).as_fd(), 0, 0, 256, 0, 0);
            },
            2,
        ),
        (
            "no plane 0",
            |p| p.create(64, 48, XRGB8888, params::Flags::empty()),
            3,
        ),
        (
            "a format not offered (NV12)",
            |p| {
                p.add(memfd(4096).as_fd(), 0, 0, 256, 0, 0);
                p.create(64, 48, u32::from_le_bytes(*b"NV12"), params::Flags::empty());
            },
            4,
        ),
        (
            "two planes for a one-plane format",
            |p| {
                p.add(memfd(4096).as_fd(), 0, 0, 256, 0, 0);
                p.add(memfd(4096).as_fd(), 1, 0, 256, 0, 0);
                p.create(64, 48, XRGB8888, params::Flags::empty());
            },
            3,
        ),
        (
            "a negative height",
            |p| {
                p.add(memfd(4096).as_fd(), 0, 0, 256, 0, 0);
                p.create(64, -48, XRGB8888, params::Flags::empty());
            },
            5,
        ),
    ];
    for (what, misuse, code) in cases {
        let h = Harness::start(LAYOUT);
        let mut c = TestClient::connect(&h.socket);
        let d = dmabuf(&c);
        let p = d.create_params(&c.qh, ());
        misuse(&p);
        let e = protocol_error(&mut c);
        assert!(e.starts_with(&format!("zwp_linux_buffer_params_v1 {code}:")), "{what}: {e}");
        // The server took it and serves the next client.
        let mut next = TestClient::connect(&h.socket);
        next.roundtrip().unwrap();
    }
}

#[test]
fn a_client_holding_too_many_fds_is_disconnected_and_the_others_are_served() {
    let h = Harness::start(LAYOUT);
    // Params that hold a plane's fd each and are never used; shm pools
    // never destroyed. Either way the client is cut off at its quota
    // (wl_display.no_memory) before the compositor runs out of fds.
    for kind in ["dma-buf planes", "shm pools"] {
        let mut c = TestClient::connect(&h.socket);
        let d = dmabuf(&c);
        let mut e = None;
        for i in 0..200 {
            let fd = memfd(4096);
            if kind == "shm pools" {
                c.shm.create_pool(fd.as_fd(), 4096, &c.qh, ());
            } else {
                d.create_params(&c.qh, ()).add(fd.as_fd(), 0, 0, 256, 0, 0);
            }
            // One at a time near the limit, so the client reads its error
            // before writing to a closed connection.
            if i >= 120 && c.roundtrip().is_err() {
                e = Some(protocol_error_seen(&c, &format!("request {i}")));
                break;
            }
        }
        let e = e.unwrap_or_else(|| panic!("{kind}: 200 held and still connected"));
        assert!(e.starts_with("wl_display 2:") && e.contains("limit of 128"), "{kind}: {e}");
    }
    h.wait_for("the cut-off clients to be gone", 10, |_, w| w.client_count() == 0);
    let mut c = TestClient::connect(&h.socket);
    let (surface, _top) = c.toplevel("camera");
    c.show(&surface, 64, 48, &vec![0x0000_ff00; 64 * 48]).unwrap();
    h.wait_for("an honest client's picture", 10, |comp, _| comp.snapshot(0).get(10, 10) == 0xff00_ff00);
}
