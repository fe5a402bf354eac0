//! Quotas between clients: one user's many connections, or a greedy
//! client, cannot get an ordinary client cut off or keep it out.

mod common;

use std::os::fd::AsFd;

use common::*;
use wayland_client::{Connection, Dispatch, QueueHandle};
use wayland_protocols::wp::linux_dmabuf::zv1::client::{
    zwp_linux_buffer_params_v1::{self as params, ZwpLinuxBufferParamsV1},
    zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1,
};

const LAYOUT: &str = r##"
[[display]]
name = "center"
mode = "64x48"

[[source]]
name = "nav"
app_id = "nav"
display = "center"
rect = [0, 0, 64, 48]
"##;

/// Creates shm pools (never destroyed) until `n` are held or the server
/// cuts the client off; the protocol error, if it did.
fn hold_pools(c: &mut TestClient, n: usize) -> Option<String> {
    for i in 0..n {
        c.shm.create_pool(memfd(4096).as_fd(), 4096, &c.qh, ());
        if (i % 8 == 7 || i + 1 == n) && c.roundtrip().is_err() {
            let p = c
                .conn
                .protocol_error()
                .expect("cut off with a protocol error");
            return Some(format!("{} {}: {}", p.object_interface, p.code, p.message));
        }
    }
    None
}

#[test]
fn greedy_connections_cannot_get_an_ordinary_client_cut_off() {
    let h = Harness::start(LAYOUT);
    // An ordinary client, already showing its picture.
    let mut honest = TestClient::connect(&h.socket);
    let (surface, _top) = honest.toplevel("nav");
    honest
        .show(&surface, 64, 48, &vec![0x0000_ff00; 64 * 48])
        .unwrap();

    // Greedy connections (one user's) each hold all the pools they may,
    // until the user's share of the budget clients share is spent: the
    // last one is cut off.
    let mut greedy = Vec::new();
    let cut_off = loop {
        assert!(
            greedy.len() < 8,
            "eight greedy clients and their user's share of the budget is not spent"
        );
        let mut g = TestClient::connect(&h.socket);
        let e = hold_pools(&mut g, 127);
        greedy.push(g);
        if let Some(e) = e {
            break e;
        }
    };
    assert!(
        cut_off.starts_with("wl_display 2:") && cut_off.contains("this user's limit"),
        "{cut_off}"
    );
    // That freed its pools. Another greedy client takes what is left in
    // dma-buf planes, which past the user's share are refused without a
    // disconnect: the share stays spent.
    let mut filler = TestClient::connect(&h.socket);
    let fd: ZwpLinuxDmabufV1 = filler.globals.bind(&filler.qh, 3..=3, ()).unwrap();
    for _ in 0..127 {
        fd.create_params(&filler.qh, ())
            .add(memfd(4096).as_fd(), 0, 0, 256, 0, 0);
    }
    filler
        .roundtrip()
        .expect("planes past the shared budget do not cut a client off");

    // The ordinary client keeps working within its reserve: more pools and
    // pictures.
    assert_eq!(
        hold_pools(&mut honest, 4),
        None,
        "a client within its reserve is served"
    );
    honest
        .show(&surface, 64, 48, &vec![0x00ff_0000; 64 * 48])
        .unwrap();
    h.wait_for("the ordinary client's new picture", 10, |comp, _| {
        comp.snapshot(0).get(10, 10) == 0xffff_0000
    });

    // Beyond its reserve, with nothing of its user's share left, its
    // dma-buf planes are refused with `failed`: it stays connected.
    let d: ZwpLinuxDmabufV1 = honest.globals.bind(&honest.qh, 3..=3, ()).unwrap();
    let params: Vec<ZwpLinuxBufferParamsV1> = (0..20)
        .map(|_| {
            let p = d.create_params(&honest.qh, ());
            p.add(memfd(64 * 48 * 4).as_fd(), 0, 0, 64 * 4, 0, 0);
            p
        })
        .collect();
    honest
        .roundtrip()
        .expect("planes past the reserve are not a reason to cut a client off");
    params
        .last()
        .unwrap()
        .create(64, 48, u32::from_le_bytes(*b"XR24"), params::Flags::empty());
    honest.roundtrip().unwrap();
    assert_eq!(
        honest.seen.events.last().map(String::as_str),
        Some("failed")
    );
    honest.roundtrip().expect("still connected");
}

/// A connection whose server may have closed it: whether a roundtrip works.
fn answered(c: &wayland_client::Connection) -> bool {
    struct Nobody;
    impl Dispatch<wayland_client::protocol::wl_callback::WlCallback, ()> for Nobody {
        fn event(
            _: &mut Self,
            _: &wayland_client::protocol::wl_callback::WlCallback,
            _: wayland_client::protocol::wl_callback::Event,
            _: &(),
            _: &Connection,
            _: &QueueHandle<Self>,
        ) {
        }
    }
    let mut q = c.new_event_queue::<Nobody>();
    c.display().sync(&q.handle(), ());
    q.roundtrip(&mut Nobody).is_ok()
}

#[test]
fn one_user_s_connections_are_capped_and_freed_when_closed() {
    let h = Harness::start(LAYOUT);
    let connect = || {
        Connection::from_socket(std::os::unix::net::UnixStream::connect(&h.socket).unwrap())
            .unwrap()
    };
    let mut held: Vec<Connection> = (0..16).map(|_| connect()).collect();
    assert!(
        held.iter().all(answered),
        "sixteen connections from one user are served"
    );
    let extra = connect();
    assert!(!answered(&extra), "the seventeenth is closed");
    held.pop();
    h.wait_for("the closed connection to be gone", 10, |_, w| {
        w.client_count() == 15
    });
    let again = connect();
    assert!(
        answered(&again),
        "a connection closed makes room for another"
    );
    // The compositor serves its clients throughout.
    assert!(held.iter().all(answered));
}
