//! Layout files: what loads, and what is rejected with file, line and field.

use std::path::Path;

use cockpit_core::layout::{FocusPolicy, Role, SourceKey};
use cockpit_core::{Layout, PixelFormat, Rect, Rotation, Scaling};

fn parse(text: &str) -> Result<Layout, String> {
    Layout::parse(text, Path::new("cockpit.toml")).map_err(|e| e.to_string())
}

const GOOD: &str = r##"
[[display]]
name = "cluster"
connector = "HDMI-A-1"
mode = "1920x720@60"

[[display]]
name = "center"
mode = "1280x800"
format = "RGB565"
background = "#102030"

[[source]]
name = "gauges"
guest = "cluster/0"
display = "cluster"
role = "cluster"
watchdog_ms = 200

[[source]]
name = "nav"
app_id = "org.example.nav"
display = "center"
rect = [100, 50, 600, 400]
z = 3
scaling = "integer"
rotation = 90
opacity = 0.5

[input]
keyboard_focus = "source:nav"
"##;

#[test]
fn a_good_layout_loads_with_defaults_filled_in() {
    let l = parse(GOOD).unwrap();
    assert_eq!(l.displays.len(), 2);
    assert_eq!(
        (l.displays[0].width, l.displays[0].height, l.displays[0].refresh_hz),
        (1920, 720, Some(60))
    );
    assert_eq!(l.displays[0].connector.as_deref(), Some("HDMI-A-1"));
    assert_eq!(l.displays[1].format, PixelFormat::Rgb565);
    assert_eq!(l.displays[1].background, 0x102030);
    let g = &l.sources[0];
    assert_eq!(g.key, SourceKey::Guest("cluster/0".into()));
    assert_eq!(g.rect, Rect::new(0, 0, 1920, 720), "the rectangle defaults to the whole display");
    assert_eq!(g.role, Role::Cluster);
    assert_eq!(g.watchdog, Some(std::time::Duration::from_millis(200)));
    let n = &l.sources[1];
    assert_eq!(n.key, SourceKey::AppId("org.example.nav".into()));
    assert_eq!((n.display, n.rect, n.z), (1, Rect::new(100, 50, 600, 400), 3));
    assert_eq!((n.scaling, n.rotation, n.opacity), (Scaling::Integer, Rotation::R90, 128));
    assert_eq!(n.preferred_size(), (400, 600), "rotated sources want their buffer turned");
    assert_eq!(l.keyboard_focus, FocusPolicy::Fixed(1));
}

fn with(replace: &str, by: &str) -> String {
    assert!(GOOD.contains(replace), "{replace}");
    GOOD.replacen(replace, by, 1)
}

#[test]
fn a_source_on_an_unknown_display_is_rejected_at_its_line() {
    let e = parse(&with("display = \"center\"", "display = \"centre\"")).unwrap_err();
    assert_eq!(
        e,
        "cockpit.toml:23: source \"nav\".display: unknown display \"centre\"; the layout defines \"cluster\", \"center\""
    );
}

#[test]
fn a_malformed_value_names_file_line_and_field() {
    let e = parse(&with("opacity = 0.5", "opacity = \"half\"")).unwrap_err();
    assert!(e.starts_with("cockpit.toml:28: source \"nav\".opacity: "), "{e}");
    let e = parse(&with("opacity = 0.5", "opacity = 1.5")).unwrap_err();
    assert_eq!(
        e,
        "cockpit.toml:28: source \"nav\".opacity: 1.5 is out of range; expected 0.0 to 1.0"
    );
    let e = parse(&with("rotation = 90", "rotation = 45")).unwrap_err();
    assert_eq!(
        e,
        "cockpit.toml:27: source \"nav\".rotation: 45 is not a rotation; expected 0, 90, 180 or 270"
    );
    let e = parse(&with("scaling = \"integer\"", "scaling = \"zoom\"")).unwrap_err();
    assert!(
        e.starts_with("cockpit.toml:26: source \"nav\".scaling: unknown variant `zoom`"),
        "{e}"
    );
    let e = parse(&with("mode = \"1280x800\"", "mode = \"big\"")).unwrap_err();
    assert!(e.starts_with("cockpit.toml:9: display \"center\".mode: `big` is not a mode"), "{e}");
    let e = parse(&with("format = \"RGB565\"", "format = \"YUYV\"")).unwrap_err();
    assert!(
        e.starts_with("cockpit.toml:10: display \"center\".format: unknown format `YUYV`"),
        "{e}"
    );
}

#[test]
fn unknown_keys_and_syntax_errors_are_placed() {
    let e = parse(&with("z = 3", "zorder = 3")).unwrap_err();
    assert!(e.starts_with("cockpit.toml:25: source \"nav\".zorder: unknown key `zorder`"), "{e}");
    let e = parse(&with("z = 3", "z = ")).unwrap_err();
    assert!(e.starts_with("cockpit.toml:25:"), "{e}");
}

#[test]
fn safety_rules_are_checked_at_load() {
    let e = parse(&with("role = \"cluster\"", "role = \"cluster\"\nopacity = 0.8")).unwrap_err();
    assert_eq!(
        e,
        "cockpit.toml:18: source \"gauges\".opacity: a cluster source is always opaque (opacity 1.0)"
    );
    let two = format!(
        "{GOOD}\n[[source]]\nname = \"speedo\"\nguest = \"safety/0\"\ndisplay = \"cluster\"\nrect = [0, 0, 100, 100]\nrole = \"cluster\"\n"
    );
    let e = parse(&two).unwrap_err();
    assert!(
        e.starts_with("cockpit.toml:37: source \"speedo\".rect: overlaps cluster source \"gauges\""),
        "{e}"
    );
}

#[test]
fn duplicates_and_missing_pieces_are_rejected() {
    let e = parse(&with("guest = \"cluster/0\"", "")).unwrap_err();
    assert!(e.contains("source \"gauges\".guest: a source needs"), "{e}");
    let e = parse(&with("app_id = \"org.example.nav\"", "guest = \"cluster/0\"")).unwrap_err();
    assert_eq!(
        e,
        "cockpit.toml:22: source \"nav\".guest: already shown by source \"gauges\"; a source can be placed once"
    );
    let e = parse("[[source]]\nname = \"a\"\nguest = \"x/0\"\ndisplay = \"d\"\n").unwrap_err();
    assert_eq!(e, "cockpit.toml: display: a layout needs at least one [[display]]");
    let e = parse(&with("rect = [100, 50, 600, 400]", "rect = [5000, 50, 600, 400]")).unwrap_err();
    assert_eq!(
        e,
        "cockpit.toml:24: source \"nav\".rect: lies outside display \"center\" (1280x800)"
    );
    let e = parse(&with("keyboard_focus = \"source:nav\"", "keyboard_focus = \"source:radio\"")).unwrap_err();
    assert_eq!(e, "cockpit.toml:31: input.keyboard_focus: no source is named `radio`");
}

#[test]
fn fallback_images_are_loaded_relative_to_the_layout() {
    let dir = std::env::temp_dir().join(format!("cockpit-layout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let png = cockpit_core::Canvas::new(4, 2, 0xff0000).to_png();
    std::fs::write(dir.join("nosignal.png"), png).unwrap();
    let text = with("watchdog_ms = 200", "watchdog_ms = 200\nfallback_image = \"nosignal.png\"");
    let l = Layout::parse(&text, &dir.join("l.toml")).unwrap();
    match &l.sources[0].fallback {
        cockpit_core::layout::Fallback::Image(f) => assert_eq!((f.width(), f.height(), f.pixel(1, 1)), (4, 2, 0xffff_0000)),
        other => panic!("{other:?}"),
    }
    let text = with("watchdog_ms = 200", "watchdog_ms = 200\nfallback_image = \"missing.png\"");
    let e = Layout::parse(&text, &dir.join("l.toml")).unwrap_err().to_string();
    assert!(e.contains("l.toml:19: source \"gauges\".fallback_image: cannot read"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}
