//! The run: build, boot Xen once, then drive and check each device.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::checks::{self, Check, Ev, Inputs, ABS_X, ABS_Y, EV_ABS, EV_KEY};
use super::machine::{ev, Machine};
use crate::qemu::{DOM0_ARGS, XEN_ARGS};
use super::{cross, images, Args};
use crate::artifacts::root;

/// What `vkb=` in samples/interop/dom0/etc/xen/guest.cfg gives the frontend.
const PTR_W: u32 = 1024;
const PTR_H: u32 = 768;
const MT_W: u32 = 1280;
const MT_H: u32 = 720;
/// QEMU's virtio-tablet axes run 0..=0x7fff; the dom0 probe's uinput
/// touch device 0..=9999.
const TABLET_MAX: i32 = 0x7fff;
const TOUCH_MAX: i32 = 9999;
const TONE_HZ: f64 = 1000.0;
const FB_W: u32 = 800;
const FB_H: u32 = 600;

const KEYBOARD: &str = "Xen Virtual Keyboard";
const POINTER: &str = "Xen Virtual Pointer";
const TOUCH: &str = "Xen Virtual Multi-touch";

pub struct Report {
    pub checks: Vec<Check>,
    pub bench: Vec<String>,
    pub transcript_path: PathBuf,
    pub boot_s: f64,
    pub total_s: f64,
}

impl Report {
    pub fn print(&self) {
        for c in &self.checks {
            println!("{} {:<30} {}", if c.ok { "ok  " } else { "FAIL" }, c.name, c.detail);
        }
        for b in &self.bench {
            println!("{b}");
        }
        println!(
            "interop: QEMU start to a ready domU {:.1} s, whole run (build included) {:.1} s; console: {}",
            self.boot_s,
            self.total_s,
            self.transcript_path.display()
        );
    }

    pub fn failed(&self) -> Vec<&Check> {
        self.checks.iter().filter(|c| !c.ok).collect()
    }
}

struct Run {
    m: Machine,
    domu_seq: u32,
    /// The frontend's domain id, and its console lines' prefix.
    domid: u32,
    fe: &'static str,
    /// The backend's domain id (dom0 on Xen, the driver domain on ours).
    be: u32,
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

impl Run {
    fn log_lines(&self, from: usize) -> Vec<&str> {
        self.m.con.log[from.min(self.m.con.log.len())..].iter().map(String::as_str).collect()
    }

    /// A dom0 shell script that must succeed; its output.
    fn dom0(&mut self, script: &str, timeout: Duration) -> Result<String, String> {
        let (code, out) = self.m.dom0(script, timeout)?;
        if code == 0 {
            Ok(out)
        } else {
            Err(format!("dom0 `{script}` exited {code}: {}", out.trim()))
        }
    }

    /// A command for the domU's probe agent (through xenstore `data/cmd`);
    /// its result line (`ok ...` / `err ...`).
    fn domu(&mut self, cmd: &str, timeout: Duration) -> Result<String, String> {
        self.domu_seq += 1;
        let seq = self.domu_seq;
        let mark = self.m.con.log.len();
        let node = format!("/local/domain/{}/data/cmd", self.domid);
        self.dom0(&format!("xenstore write {node} '{seq} {cmd}'"), secs(30))?;
        let tag = format!("{}probe: result {seq} ", self.fe);
        let i = self.m.con.expect_after(mark, &tag, timeout).ok_or_else(|| format!("the domU did not answer `{cmd}` within {timeout:?}"))?;
        Ok(self.m.con.log[i].split(&tag).nth(1).unwrap_or("").to_string())
    }

    fn write_transcript(&self, path: &std::path::Path) {
        let _ = std::fs::write(path, self.m.con.timed_transcript());
    }
}

/// Which hypervisor the run boots, and what that changes.
struct Bed {
    /// Console prefix of the frontend's lines.
    fe: &'static str,
    boot_check: &'static str,
}

/// A booted bed: the machine, the frontend ready (or why not).
struct Booted {
    run: Run,
    bed: Bed,
    work: PathBuf,
    tone: Vec<u8>,
    ready: Option<usize>,
    boot_s: f64,
}

fn boot(args: &Args, t0: Instant) -> Result<Booted, String> {
    let ours = args.hypervisor == "ours";
    let bed = if ours {
        Bed { fe: "[guest] ", boot_check: "boot: our hypervisor, driver domain" }
    } else {
        Bed { fe: "[domU] ", boot_check: "boot: Xen, dom0, xl create" }
    };
    let base = root().join("target/interop");
    let work = if ours { base.join("ours") } else { base.clone() };
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let bins = cross::build()?;
    let tone = images::tone_wav(48_000, TONE_HZ, 1000);
    let img = images::build(&bins, &tone)?;
    let m = if ours {
        let sample = root().join("samples/interop/ours/system.toml");
        let built = crate::artifacts::build(&sample.to_string_lossy(), None, None)?;
        eprintln!("xtask: interop images ready after {:.1} s; booting our hypervisor under QEMU", t0.elapsed().as_secs_f64());
        Machine::start_ours(&built, &work, args.verbose || args.shell)?
    } else {
        eprintln!("xtask: interop images ready after {:.1} s; booting Xen 4.17 under QEMU", t0.elapsed().as_secs_f64());
        Machine::start(args.machine.as_ref(), &img.xen, &img.kernel.image, &img.dom0_initrd, &work, args.verbose || args.shell)?
    };
    let mut run = Run { m, domu_seq: 0, domid: 1, fe: bed.fe, be: 0 };
    let agent_up = format!("{}probe: agent up in dom", bed.fe);
    let ready = run.m.con.wait_index(secs(300), |l| l.contains(&agent_up));
    let boot_s = run.m.con.started.elapsed().as_secs_f64();
    if ours {
        // The driver domain says whom it is and whom it serves.
        run.be = run.m.con.log.iter().find_map(|l| l.split("driver: domain ").nth(1)?.split(',').next()?.trim().parse().ok()).unwrap_or(1);
    }
    if let Some(i) = ready {
        run.domid = run.m.con.log[i].rsplit("dom").next().and_then(|d| d.trim().parse().ok()).unwrap_or(1);
    }
    Ok(Booted { run, bed, work, tone, ready, boot_s })
}

/// The devices the boot check and the power-on figure wait for.
const CONNECTED: [&str; 3] = ["vinput", "vfb", "vsnd"];

pub fn run(args: &Args) -> Result<Report, String> {
    let t0 = Instant::now();
    let Booted { mut run, bed, work, tone, ready, boot_s } = boot(args, t0)?;
    let transcript_path = work.join("console.log");
    let mut checks = Vec::new();
    let mut bench = Vec::new();
    let ours = args.hypervisor == "ours";
    let booted = match ready {
        Some(_) => {
            // The frontend being up does not order the backends' own
            // "connected" lines before it: give them a moment to say so.
            let said = |t: &str, k: &str| t.contains(&format!("backend/{k}/{}/0: connected", run.domid));
            if !CONNECTED.iter().all(|k| said(&run.m.con.transcript(), k)) {
                let mut seen: Vec<&str> = Vec::new();
                let t = run.m.con.transcript();
                seen.extend(CONNECTED.iter().filter(|k| said(&t, k)));
                let domid = run.domid;
                run.m.con.wait_index(secs(30), |l| {
                    seen.extend(CONNECTED.iter().filter(|k| l.contains(&format!("backend/{k}/{domid}/0: connected"))));
                    CONNECTED.iter().all(|k| seen.contains(k))
                });
            }
            let t = run.m.con.transcript();
            let connected: Vec<&str> =
                CONNECTED.into_iter().filter(|k| t.contains(&format!("backend/{k}/{}/0: connected", run.domid))).collect();
            let how = if ours { "devices from the system description" } else { "xl create" };
            if connected.len() == 3 {
                Ok(format!("{how}; vkbd (vinput), vfb, vsnd connected to pv-backendd; frontend ready {boot_s:.1} s after QEMU started"))
            } else {
                Err(format!("frontend up but only {connected:?} connected"))
            }
        }
        None => Err(format!(
            "no ready frontend: {} (see {})",
            run.m.con.stopped.as_ref().map(ToString::to_string).unwrap_or_default(),
            transcript_path.display()
        )),
    };
    let up = ready.is_some();
    checks.push(Check::new(bed.boot_check, booted));
    if up && args.shell {
        shell(&mut run);
    } else if up {
        eprintln!("xtask: interop: domU ready after {boot_s:.1} s; input");
        checks.extend(input(&mut run));
        eprintln!("xtask: interop: display");
        checks.push(Check::new("vfb: pattern pixel-exact", display(&mut run, &work, "fb.png")));
        eprintln!("xtask: interop: sound");
        checks.push(Check::new("vsnd: tone through ALSA", sound(&mut run, &work, &tone, "vsnd.wav")));
        checks.push(Check::new("vdispl: as far as Debian's kernel", vdispl(&mut run)));
        if ours {
            eprintln!("xtask: interop: vdispl from a Rust guest");
            checks.push(Check::new("vdispl: Rust frontend, pixel-exact", panel(&mut run, &work, 1)));
            checks.push(Check::new("grant copy (gntdev, GNTTABOP_copy)", grant_copy(&mut run)));
        }
        if args.bench {
            eprintln!("xtask: interop: benchmark");
            match benchmark(&mut run, args.samples) {
                Ok(b) => bench.extend(b),
                Err(e) => bench.push(format!("benchmark failed: {e}")),
            }
        }
        eprintln!("xtask: interop: backend restart");
        checks.extend(restart(&mut run, &work, &tone));
        if ours {
            // The panel closes on the old backend and connects to the new one.
            checks.push(Check::new("restart: vdispl Rust frontend again", panel(&mut run, &work, 1 + PANEL_FRAMES)));
        }
        let oops = run.log_lines(0).iter().any(|l| l.contains("Unable to handle kernel") || l.contains("Kernel panic") || l.contains("BUG: "));
        checks.push(Check::new(
            "no kernel oops in any domain",
            if oops { Err("see the console transcript".into()) } else { Ok("none".into()) },
        ));
    }
    run.m.con.drain();
    run.write_transcript(&transcript_path);
    Ok(Report { checks, bench, transcript_path, boot_s, total_s: t0.elapsed().as_secs_f64() })
}

/// `--shell`: commands from stdin, for finding out what a check sees.
fn shell(run: &mut Run) {
    use std::io::BufRead;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let (what, arg) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let r = match what {
            "0" => run.m.dom0(arg, secs(600)).map(|(c, o)| format!("exit {c}\n{o}")),
            "u" => run.domu(&format!("sh {arg}"), secs(600)),
            "k" => run.m.input(&[ev::key(arg, true)]).and_then(|()| run.m.input(&[ev::key(arg, false)])).map(|()| "sent".into()),
            "q" => break,
            _ => Err("0 <dom0 shell> | u <domU shell> | k <qcode> | q".into()),
        };
        run.m.con.drain();
        match r {
            Ok(o) => eprintln!(">>> {o}"),
            Err(e) => eprintln!(">>> error: {e}"),
        }
    }
}

/// Keys and pointer from QEMU's virtio devices (QMP), multi-touch from
/// dom0's uinput device: each reaches the domU's evdev through
/// xen-kbdfront with the right codes and scaled coordinates.
fn input(run: &mut Run) -> Vec<Check> {
    let mark = run.m.con.log.len();
    // The agent lists the frontend's three devices when it starts.
    let tag = format!("{}probe: input ", run.fe);
    let count = |run: &Run| run.log_lines(0).iter().filter(|l| l.contains(&tag)).count();
    let deadline = Instant::now() + secs(20);
    while count(run) < 3 && Instant::now() < deadline {
        run.m.con.pause(Duration::from_millis(200));
    }
    let sent: Result<(), String> = (|| {
        run.m.input(&[ev::key("a", true)])?;
        run.m.input(&[ev::key("a", false)])?;
        run.m.input(&[ev::abs("x", 0x7fff), ev::abs("y", 0x7fff)])?;
        run.m.input(&[ev::abs("x", 0x4000), ev::abs("y", 0x2000)])?;
        run.m.input(&[ev::btn("left", true)])?;
        run.m.input(&[ev::btn("left", false)])?;
        run.dom0("echo touch > /run/inject", secs(30)).map(drop)
    })();
    let inputs = Inputs::parse(&run.log_lines(0));
    let node = |name: &str| inputs.node(name).map(str::to_string);
    // Everything has arrived once the second finger lifts.
    if let Some(mt) = node(TOUCH) {
        run.m.con.expect_after(mark, &format!("probe: ev {mt} 3 57 -1"), secs(30));
        run.m.con.pause(secs(1));
    }
    let lines = run.log_lines(mark);
    let evs = |name: &str| node(name).map(|n| checks::events(&lines, &n)).ok_or(format!("the domU has no \"{name}\" device"));
    let e = |kind, code, value| Ev { kind, code, value };
    let mut out = Vec::new();
    if let Err(e) = &sent {
        out.push(Check::new("input: injected", Err(e.clone())));
    }

    out.push(Check::new(
        "vkbd: keys (virtio-keyboard)",
        evs(KEYBOARD).and_then(|got| {
            checks::in_order(&got, &[e(EV_KEY, 30, 1), e(EV_KEY, 30, 0)])?;
            Ok("KEY_A press and release".into())
        }),
    ));
    let (x1, y1) = (checks::scaled(TABLET_MAX, TABLET_MAX, PTR_W), checks::scaled(TABLET_MAX, TABLET_MAX, PTR_H));
    let (x2, y2) = (checks::scaled(0x4000, TABLET_MAX, PTR_W), checks::scaled(0x2000, TABLET_MAX, PTR_H));
    out.push(Check::new(
        "vkbd: pointer (virtio-tablet)",
        evs(POINTER).and_then(|got| {
            checks::in_order(
                &got,
                &[e(EV_ABS, ABS_X, x1), e(EV_ABS, ABS_Y, y1), e(EV_ABS, ABS_X, x2), e(EV_ABS, ABS_Y, y2), e(EV_KEY, 272, 1), e(EV_KEY, 272, 0)],
            )?;
            let range = inputs.range(POINTER, ABS_X).zip(inputs.range(POINTER, ABS_Y));
            Ok(format!(
                "(32767,32767)->({x1},{y1}), (16384,8192)->({x2},{y2}) on {PTR_W}x{PTR_H}, BTN_LEFT; frontend declares X,Y ranges {range:?}"
            ))
        }),
    ));
    let want = [
        (0, checks::scaled(1000, TOUCH_MAX, MT_W), checks::scaled(2000, TOUCH_MAX, MT_H)),
        (1, checks::scaled(8000, TOUCH_MAX, MT_W), checks::scaled(7000, TOUCH_MAX, MT_H)),
        (0, checks::scaled(5000, TOUCH_MAX, MT_W), checks::scaled(5000, TOUCH_MAX, MT_H)),
    ];
    out.push(Check::new(
        "vkbd: multi-touch (uinput)",
        evs(TOUCH).and_then(|got| {
            let (pos, lifted) = checks::mt_positions(&got);
            let mut it = pos.iter();
            for w in &want {
                if !it.any(|p| p == w) {
                    return Err(format!("contact {w:?} (slot, x, y) not reported in order; got {pos:?}"));
                }
            }
            if !(lifted.contains(&0) && lifted.contains(&1)) {
                return Err(format!("both contacts should lift; lifted slots {lifted:?}"));
            }
            // Contact sizes travel as SHAPE and come out as TOUCH_MAJOR.
            checks::in_order(&got, &[e(EV_ABS, checks::ABS_MT_TOUCH_MAJOR, 40), e(EV_ABS, checks::ABS_MT_TOUCH_MAJOR, 60)])?;
            Ok(format!("2 contacts on {MT_W}x{MT_H}: {pos:?}, sizes 40 and 60, slots lifted {lifted:?}"))
        }),
    ));
    out
}

/// Draws the pattern in the domU and compares what the PNG sink wrote.
fn display(run: &mut Run, work: &std::path::Path, name: &str) -> Result<String, String> {
    // Frames shown before this one go (a restarted sink numbers from 0 again).
    let d = run.domid;
    run.dom0(&format!("rm -f /tmp/frames/dom{d}-*"), secs(30))?;
    let r = run.domu("fb", secs(60))?;
    if !r.starts_with("ok") {
        return Err(format!("the domU could not draw: {r}"));
    }
    let mut last_err = String::new();
    for _ in 0..8 {
        // fbfront sends its updates every 50 ms; encoding a PNG takes a while.
        run.m.con.pause(secs(2));
        let out = run.dom0(
            &format!(
                "n=$(ls /tmp/frames/dom{d}-*.png | wc -l); f=$(ls /tmp/frames/dom{d}-*.png | tail -1); echo $n; [ $n -gt 0 ] && interop-probe png2rgba $f /host/fb.rgba && cp $f /host/{name}"
            ),
            secs(60),
        );
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                last_err = e;
                continue;
            }
        };
        let rgba = std::fs::read(run.m.share().join("fb.rgba")).map_err(|e| e.to_string())?;
        match checks::check_pattern(&rgba, FB_W, FB_H) {
            Ok(d) => {
                let frames = out.lines().next().unwrap_or("?").to_string();
                let _ = std::fs::copy(run.m.share().join(name), work.join(name));
                return Ok(format!("{d} ({frames} frame(s) shown; {})", work.join(name).display()));
            }
            Err(e) => last_err = e,
        }
    }
    Err(last_err)
}

/// Plays the tone in the domU and checks the recording dom0 made.
fn sound(run: &mut Run, work: &std::path::Path, tone: &[u8], name: &str) -> Result<String, String> {
    run.dom0("rm -f /tmp/vsnd.wav", secs(30))?;
    let mark = run.m.con.log.len();
    let r = run.domu("sh aplay -D hw:0,0 /tone.wav", secs(60))?;
    if r != "ok exit 0" {
        // What aplay said, and what the backend said meanwhile.
        let said: Vec<&str> =
            run.log_lines(mark).into_iter().filter(|l| l.contains("probe: sh|") || l.contains("vsnd")).collect();
        return Err(format!("aplay in the domU: {r}; it and the backend said:\n{}", said.join("\n")));
    }
    // The file plugin completes the WAV header when the stream closes.
    run.dom0(&format!("sleep 1; cp /tmp/vsnd.wav /host/{name}"), secs(30))?;
    let bytes = std::fs::read(run.m.share().join(name)).map_err(|e| e.to_string())?;
    let _ = std::fs::write(work.join(name), &bytes);
    let rec = checks::parse_wav(&bytes)?;
    let played = checks::parse_wav(tone)?;
    checks::check_tone(&rec, &played, TONE_HZ)
}

fn vdispl(run: &mut Run) -> Result<String, String> {
    let (d, be) = (run.domid, run.be);
    let out = run.dom0(
        &format!("xenstore read /local/domain/{be}/backend/vdispl/{d}/0/state /local/domain/{d}/device/vdispl/0/state"),
        secs(30),
    )?;
    let v: Vec<&str> = out.split_whitespace().collect();
    if v == ["2", "1"] {
        Ok("backend in InitWait, frontend Initialising: Debian's kernel has no DRM_XEN_FRONTEND".into())
    } else {
        Err(format!("backend/frontend states {v:?}, expected [\"2\", \"1\"]"))
    }
}

/// The panel guest's domain id, as it reports it.
fn panel_domid(run: &Run) -> Result<u32, String> {
    run.log_lines(0)
        .iter()
        .find_map(|l| l.split("panel: domain ").nth(1)?.split(',').next()?.trim().parse().ok())
        .ok_or_else(|| "the panel guest never said its domain id".into())
}

/// What the panel guest of samples/interop/ours draws.
const PANEL_FRAMES: u32 = 4;
const PANEL_W: u32 = 320;
const PANEL_H: u32 = 240;

/// The Rust vdispl guest (`panel`) draws its frames through vdispl-front,
/// over grants, event channels and the store of our hypervisor; every
/// frame the driver domain's sink received is compared, in order, with
/// the one drawn: the first shown by SET_CONFIG, the rest by page flips
/// the guest saw completed.
fn panel(run: &mut Run, work: &std::path::Path, first: u32) -> Result<String, String> {
    let last_line = format!("panel: frame {} shown", first + PANEL_FRAMES - 1);
    let finished = |l: &str| l.contains(&last_line) || l.contains("panel: FAILED");
    let end = run.m.con.log.iter().position(|l| finished(l)).or_else(|| run.m.con.wait_index(secs(120), finished));
    let line = end.map(|i| run.m.con.log[i].clone()).ok_or(format!("no \"{last_line}\" within 120 s"))?;
    if line.contains("FAILED") {
        return Err(line);
    }
    let dom = panel_domid(run)?;
    let out = run.dom0(
        &format!("i=0; for f in $(ls /tmp/frames/dom{dom}-conn0-*.png); do i=$((i+1)); interop-probe png2rgba $f /host/panel-$i.rgba || exit 1; done; echo $i"),
        secs(120),
    )?;
    let n: u32 = out.lines().last().and_then(|l| l.trim().parse().ok()).ok_or(format!("frame count: {out:?}"))?;
    if n != PANEL_FRAMES {
        return Err(format!("the sink received {n} frame(s) of domain {dom}, the guest drew {PANEL_FRAMES}"));
    }
    for (i, k) in (first..first + PANEL_FRAMES).enumerate() {
        let name = format!("panel-{}.rgba", i + 1);
        let rgba = std::fs::read(run.m.share().join(&name)).map_err(|e| format!("{name}: {e}"))?;
        checks::check_image(&rgba, PANEL_W, PANEL_H, |x, y| checks::panel_rgb(x, y, k)).map_err(|e| format!("frame {k}: {e}"))?;
        let _ = std::fs::copy(run.m.share().join(&name), work.join(format!("panel-frame{k}.rgba")));
    }
    Ok(format!(
        "domain {dom}: frames {first}..={} of {PANEL_W}x{PANEL_H}, 1 by SET_CONFIG and {} by page flips, each pixel-exact in order",
        first + PANEL_FRAMES - 1,
        PANEL_FRAMES - 1
    ))
}

/// The driver domain copies the panel's connector ring page with
/// GNTTABOP_copy (Linux's gntdev GRANT_COPY) and checks it against a
/// mapping of the same grant (`interop-probe grant-copy`).
fn grant_copy(run: &mut Run) -> Result<String, String> {
    let dom = panel_domid(run)?;
    let out = run.dom0(
        &format!("interop-probe grant-copy {dom} $(xenstore read /local/domain/{dom}/device/vdispl/0/0/req-ring-ref)"),
        secs(60),
    )?;
    let line = out.lines().find_map(|l| l.split("probe: grant-copy ").nth(1)).ok_or(format!("no result: {out:?}"))?;
    line.strip_prefix("ok ").map(|d| format!("domain {dom}'s ring page: {d}")).ok_or_else(|| line.to_string())
}

/// Kills pv-backendd while the domU runs, restarts it, and checks each
/// frontend again.
fn restart(run: &mut Run, work: &std::path::Path, tone: &[u8]) -> Vec<Check> {
    let mut out = Vec::new();
    let killed = run.dom0("kill $(cat /run/backendd.pid); sleep 2; ! kill -0 $(cat /run/backendd.pid) 2>/dev/null", secs(30));
    let alive = killed.and_then(|_| run.domu("sh echo alive", secs(60)));
    out.push(Check::new(
        "restart: domU runs on without backend",
        alive.and_then(|r| if r == "ok exit 0" { Ok("pv-backendd killed; the domU still answers".into()) } else { Err(r) }),
    ));
    let mark = run.m.con.log.len();
    let started = run.dom0("/etc/interop/start-backendd", secs(30));
    let deadline = Instant::now() + secs(60);
    let d = run.domid;
    let reconnected = |run: &Run| -> Vec<&'static str> {
        let lines = run.log_lines(mark);
        ["vinput", "vfb", "vsnd"]
            .into_iter()
            .filter(|k| lines.iter().any(|l| l.contains(&format!("backend/{k}/{d}/0: connected"))))
            .collect()
    };
    while started.is_ok() && reconnected(run).len() < 3 && Instant::now() < deadline {
        run.m.con.pause(Duration::from_millis(200));
    }
    let back = reconnected(run);
    out.push(Check::new(
        "restart: backends reconnect",
        match (&started, back.len()) {
            (Err(e), _) => Err(e.clone()),
            (Ok(_), 3) => Ok("vinput, vfb, vsnd connected again".into()),
            (Ok(_), _) => Err(format!("only {back:?} connected again within 60 s")),
        },
    ));

    let kbd = Inputs::parse(&run.log_lines(0)).node(KEYBOARD).map(str::to_string);
    let key_mark = run.m.con.log.len();
    let key = (|| {
        let kbd = kbd.ok_or("no keyboard device")?;
        run.m.input(&[ev::key("b", true)])?;
        run.m.input(&[ev::key("b", false)])?;
        run.m.con
            .expect_after(key_mark, &format!("probe: ev {kbd} 1 48 0"), secs(30))
            .map(|_| "KEY_B press and release arrive after the restart".to_string())
            .ok_or_else(|| "KEY_B did not arrive after the restart".to_string())
    })();
    out.push(Check::new("restart: vkbd events flow", key));
    out.push(Check::new("restart: vfb pattern again", display(run, work, "fb-after-restart.png")));
    // The backend connects first; the frontend registers its ALSA card
    // again and only then says Connected. Play once it has.
    let fe_state = format!("/local/domain/{d}/device/vsnd/0/state");
    let ready = run.dom0(
        &format!("n=0; until [ \"$(xenstore read {fe_state})\" = 4 ] || [ $n -ge 150 ]; do usleep 200000; n=$((n + 1)); done; xenstore read {fe_state}"),
        secs(60),
    );
    let snd = match ready {
        Ok(s) if s.trim() == "4" => sound(run, work, tone, "vsnd-after-restart.wav"),
        Ok(s) => Err(format!("the vsnd frontend did not reconnect within 30 s (state {})", s.trim())),
        Err(e) => Err(e),
    };
    let alive = run.domu("sh echo alive", secs(60));
    out.push(Check::new(
        "restart: vsnd plays again",
        match (snd, alive) {
            (Ok(d), _) => Ok(d),
            (Err(e), Ok(a)) if a == "ok exit 0" => Err(format!("{e} (the domU is still alive)")),
            (Err(e), a) => Err(format!("{e}; the domU no longer answers: {a:?}")),
        },
    ));
    out
}

fn host_cpu() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| c.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).map(|s| s.trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into())
}

/// Input latency (dom0 uinput to the domU's evdev read) and the period
/// timing of a tone played through vsnd, with what they ran on.
fn benchmark(run: &mut Run, samples: usize) -> Result<Vec<String>, String> {
    let mut out = vec![format!(
        "bench: QEMU {} (TCG, {} host CPUs, {}); Xen 4.17 `{XEN_ARGS}`, dom0 `{DOM0_ARGS}` 2 vCPUs, domU 1 vCPU",
        crate::qemu::Machine::xen_test_bed(),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        host_cpu()
    )];
    run.domu("quiet", secs(60))?;
    let mark = run.m.con.log.len();
    run.dom0(&format!("echo 'latency {} {samples}' > /run/inject", run.domid), secs(30))?;
    let i = run
        .m
        .con
        .expect_after(mark, "probe: inject ", secs(60 + samples as u64))
        .ok_or("no answer from the latency benchmark")?;
    let line = run.m.con.log[i].clone();
    let r = line.split("probe: inject ").nth(1).unwrap_or("").to_string();
    out.push(format!("bench: input {}", r.trim_start_matches("ok ")));
    for (period, periods) in [(960, 4), (4096, 4)] {
        let t = run.domu(&format!("tone 3000 {period} {periods}"), secs(180))?;
        out.push(format!("bench: audio 48 kHz S16 stereo, hw:0,0 in the domU, 3 s tone: {}", t.trim_start_matches("ok ")));
    }
    run.domu("verbose", secs(60))?;
    Ok(out)
}

/// What `cargo xtask bench xen` compares between the two hypervisors.
pub struct Figures {
    /// Seconds from QEMU's start to the last of the frontend's vkbd, vfb
    /// and vsnd reaching Connected (as pv-backendd logs it).
    pub connected_s: f64,
    /// An event round trip between the backend and the frontend domain
    /// (`probe: evtchn-rtt ...`), and a xenstore read in the frontend
    /// (`probe: xs-read ... value "..."`).
    pub evtchn: String,
    pub xs_read: String,
}

fn median(line: &str) -> Option<f64> {
    line.split("median_us ").nth(1)?.split_whitespace().next()?.parse().ok()
}

impl Figures {
    pub fn evtchn_us(&self) -> Option<f64> {
        median(&self.evtchn)
    }
    pub fn xs_read_us(&self) -> Option<f64> {
        median(&self.xs_read)
    }
    /// What both runs must agree on: the node value read.
    pub fn xs_value(&self) -> Option<&str> {
        self.xs_read.split(" value ").nth(1)
    }
}

/// Boots the bed and measures; no checks.
pub fn figures(args: &Args, n: usize) -> Result<Figures, String> {
    let t0 = Instant::now();
    let Booted { mut run, ready, work, .. } = boot(args, t0)?;
    let transcript = work.join("console-figures.log");
    let r = (|| {
        ready.ok_or("the frontend did not come up")?;
        let d = run.domid;
        let at = |run: &Run, k: &str| {
            let tag = format!("backend/{k}/{d}/0: connected");
            run.m.con.log.iter().position(|l| l.contains(&tag)).map(|i| (run.m.con.arrived[i] - run.m.con.started).as_secs_f64())
        };
        let mut connected_s = 0f64;
        for k in CONNECTED {
            connected_s = connected_s.max(at(&run, k).ok_or(format!("{k} never connected"))?);
        }
        // The frontend reads its own name node n times.
        let mark = run.m.con.log.len();
        run.domu(&format!("sh interop-probe xs-read name {n}"), secs(300))?;
        let i = run.m.con.expect_after(mark, "probe: xs-read ", secs(30)).ok_or("no xs-read figure")?;
        let xs_read = run.m.con.log[i].split("probe: xs-read ").nth(1).unwrap_or("").to_string();
        // Event round trips: the frontend echoes, the backend pings.
        let mark = run.m.con.log.len();
        // In the background, its lines to the console (the agent stops
        // reading a command's output when the shell returns).
        run.domu(&format!("sh interop-probe evtchn-echo {} {n} > /dev/console 2>&1 &", run.be), secs(60))?;
        run.m.con.expect_after(mark, "probe: evtchn-echo port ", secs(30)).ok_or("the frontend published no port")?;
        let out = run.dom0(&format!("interop-probe evtchn-ping {d} {n}"), secs(300))?;
        let evtchn = out.lines().find_map(|l| l.strip_prefix("probe: evtchn-rtt ")).ok_or(format!("no evtchn figure: {out}"))?.to_string();
        if !evtchn.ends_with(&format!(" n {n}")) {
            return Err(format!("not every event was answered: {evtchn}"));
        }
        Ok(Figures { connected_s, evtchn, xs_read })
    })();
    run.m.con.drain();
    run.write_transcript(&transcript);
    r.map_err(|e: String| format!("{e} (console: {})", transcript.display()))
}
