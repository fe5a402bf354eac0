//! `ivi_application`: surfaces placed by ivi id, with the ids checked
//! against the layout, and a server that offers no desktop shell (as
//! weston's ivi-shell). Debian's weston 10 clients no longer speak
//! ivi_application (they require xdg-shell), so the client here is our own.

mod common;

use cockpit_core::{SourceId, SourceStatus};
use common::*;
use wayland_client::{Connection, Dispatch, QueueHandle};

#[allow(dead_code, non_camel_case_types, non_upper_case_globals, unused_imports, clippy::all)]
mod ivi {
    use wayland_client;
    use wayland_client::protocol::*;
    pub mod __interfaces {
        use wayland_client::protocol::__interfaces::*;
        wayland_scanner::generate_interfaces!("protocols/ivi-application.xml");
    }
    use self::__interfaces::*;
    wayland_scanner::generate_client_code!("protocols/ivi-application.xml");
}

use ivi::{ivi_application::IviApplication, ivi_surface::IviSurface};

fn layout(other_uid: u32) -> String {
    format!(
        r##"
[[display]]
name = "center"
mode = "64x48"
background = "#000040"

[[source]]
name = "camera"
ivi_id = 1001
display = "center"
rect = [0, 0, 32, 24]

[[source]]
name = "theirs"
ivi_id = 1002
client_uid = {other_uid}
display = "center"
rect = [32, 0, 32, 24]
"##
    )
}

impl Dispatch<IviApplication, ()> for Seen {
    fn event(_: &mut Self, _: &IviApplication, _: <IviApplication as wayland_client::Proxy>::Event, _: &(), _: &Connection, _: &QueueHandle<Self>) {}
}

impl Dispatch<IviSurface, ()> for Seen {
    fn event(s: &mut Self, _: &IviSurface, e: ivi::ivi_surface::Event, _: &(), _: &Connection, _: &QueueHandle<Self>) {
        let ivi::ivi_surface::Event::Configure { width, height } = e;
        s.configure = Some((width, height));
    }
}

#[test]
fn a_surface_is_placed_by_its_ivi_id_and_ids_are_checked() {
    let me = rustix::process::getuid().as_raw();
    let h = Harness::start(&layout(me.wrapping_add(1)));
    let mut c = TestClient::connect(&h.socket);
    let app: IviApplication = c.globals.bind(&c.qh, 1..=1, ()).expect("ivi_application is offered");
    let surface = c.compositor.create_surface(&c.qh, ());
    let ivi_1001 = app.surface_create(1001, &surface, &c.qh, ());
    c.roundtrip().unwrap();
    assert_eq!(c.seen.configure, Some((32, 24)), "told the size of its place");
    c.show(&surface, 32, 24, &vec![0xff_ff0000; 32 * 24]).unwrap();
    h.wait_for("the ivi surface", 10, |comp, _| comp.status(SourceId(0)) == SourceStatus::Live);
    assert_eq!(h.with(|comp, _| comp.snapshot(0).get(10, 10)), 0xffff_0000);

    // The id is held: another client cannot take it.
    let mut thief = TestClient::connect(&h.socket);
    let app2: IviApplication = thief.globals.bind(&thief.qh, 1..=1, ()).unwrap();
    let s2 = thief.compositor.create_surface(&thief.qh, ());
    let _i2 = app2.surface_create(1001, &s2, &thief.qh, ());
    let err = thief.roundtrip().unwrap_err();
    assert!(err.contains("ivi id 1001 is held by another surface"), "{err}");
    assert_eq!(h.with(|comp, _| comp.snapshot(0).get(10, 10)), 0xffff_0000, "the holder is still shown");

    // An id the layout gives another user's client.
    let mut other = TestClient::connect(&h.socket);
    let app3: IviApplication = other.globals.bind(&other.qh, 1..=1, ()).unwrap();
    let s3 = other.compositor.create_surface(&other.qh, ());
    let _i3 = app3.surface_create(1002, &s3, &other.qh, ());
    let err = other.roundtrip().unwrap_err();
    assert!(err.contains(&format!("belongs to user {}'s client", me.wrapping_add(1))), "{err}");

    // A surface with a role already cannot take an id.
    let mut twice = TestClient::connect(&h.socket);
    let app4: IviApplication = twice.globals.bind(&twice.qh, 1..=1, ()).unwrap();
    let (s4, _top) = twice.toplevel("org.example.any");
    let _i4 = app4.surface_create(1003, &s4, &twice.qh, ());
    let err = twice.roundtrip().unwrap_err();
    assert!(err.contains("already has a role"), "{err}");

    // Giving the id up frees it for another surface.
    ivi_1001.destroy();
    c.roundtrip().unwrap();
    let mut next = TestClient::connect(&h.socket);
    let app5: IviApplication = next.globals.bind(&next.qh, 1..=1, ()).unwrap();
    let s5 = next.compositor.create_surface(&next.qh, ());
    let _i5 = app5.surface_create(1001, &s5, &next.qh, ());
    next.roundtrip().unwrap();
    assert_eq!(next.seen.configure, Some((32, 24)));
}

#[test]
fn without_the_desktop_shell_only_ivi_application_places_surfaces() {
    // As under weston's ivi-shell: no xdg_wm_base to fall back on.
    let h = Harness::start_in(&layout(0), Harness::new_dir(), cockpit_wayland::Options { xdg_shell: false });
    let conn = Connection::from_socket(std::os::unix::net::UnixStream::connect(&h.socket).unwrap()).unwrap();
    let (globals, _q) = wayland_client::globals::registry_queue_init::<Seen>(&conn).unwrap();
    let names: Vec<String> = globals.contents().clone_list().into_iter().map(|g| g.interface).collect();
    assert!(names.iter().any(|n| n == "ivi_application"), "{names:?}");
    assert!(!names.iter().any(|n| n == "xdg_wm_base"), "{names:?}");
}
