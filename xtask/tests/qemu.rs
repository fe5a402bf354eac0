//! Boots real builds under QEMU (virt with GICv3 and GICv2, and the ZCU102
//! model, at EL2; virt with Cortex-A15s in HYP mode; 4 CPUs) and asserts
//! on the hypervisor console. Run through `cargo xtask test`, which provisions
//! the cross toolchain and QEMU first; plain `cargo test` skips them.

use std::time::Duration;
use xtask::bench::{share_reports, ShareReport};
use xtask::{artifacts, on_each_board, on_each_qemu_board, qemu::Console};

const BOOT: Duration = Duration::from_secs(90);

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}/system.toml", env!("CARGO_MANIFEST_DIR"))
}

fn boot(board: &str, sample: &str, profile: Option<&str>) -> Console {
    let built = artifacts::build(sample, Some(board), profile).unwrap_or_else(|e| panic!("build {sample}: {e}"));
    Console::start_built(&built).unwrap()
}

/// The beat number of a `[heartbeat] beat N` line.
fn beat(line: &str) -> Option<u64> {
    line.strip_prefix("[heartbeat] beat ")?.parse().ok()
}

fn beats(log: &[String]) -> Vec<u64> {
    log.iter().filter_map(|l| beat(l)).collect()
}

fn assert_consecutive(b: &[u64], transcript: &str) {
    assert!(!b.is_empty(), "no heartbeat at all:\n{transcript}");
    for w in b.windows(2) {
        assert_eq!(w[1], w[0] + 1, "heartbeat skipped or repeated a beat ({} then {})", w[0], w[1]);
    }
    assert_eq!(b[0], 1, "heartbeat did not start at beat 1");
}

on_each_board! {
fn both_partitions_boot_and_print(board: &str) {
    let mut s = boot(board, xtask::DEFAULT_SAMPLE, None);
    let (mut hb, mut cr) = (false, false);
    let ok = s.wait_for(BOOT, |l| {
        hb |= l == "[heartbeat] beat 5";
        cr |= l == "[crasher] crasher beat 5";
        hb && cr
    });
    assert!(ok.is_some(), "both domains should print their fifth beat:\n{}", s.transcript());
    assert!(s.log.iter().any(|l| l.contains("2 domains on 4 pCPUs, null scheduler, vwfi=native")));
}
}

on_each_board! {
fn crasher_restarts_while_heartbeat_stays_consecutive(board: &str) {
    let mut s = boot(board, xtask::DEFAULT_SAMPLE, None);
    let third = s.wait_for(BOOT, |l| l.contains("crasher: restarting (restart #3)"));
    assert!(third.is_some(), "crasher should be restarted 3 times:\n{}", s.transcript());
    let at_third = beats(&s.log).last().copied().unwrap_or(0);
    // The heartbeat keeps coming after the third restart.
    let target = format!("[heartbeat] beat {}", at_third + 30);
    assert!(s.wait_for(BOOT, |l| l == target).is_some(), "heartbeat stalled:\n{}", s.transcript());
    let t = s.transcript();
    assert_consecutive(&beats(&s.log), &t);
    // Each crash was the abort the hypervisor injected, then the vector loop.
    assert!(t.contains("crasher: data access at IPA 0x44000000"), "{t}");
    assert!(t.contains("crasher: vCPU 0 keeps faulting at its exception vectors"), "{t}");
    // The restarted domain boots from a pristine image and beats again.
    let after = t.split("restart #1)").nth(1).unwrap_or("");
    assert!(after.contains("[crasher] crasher: up;") && after.contains("[crasher] crasher beat 20"), "{t}");
    // The heartbeat domain was never touched by the crasher's lifecycle.
    assert!(!t.contains("heartbeat: Crash") && !t.contains("heartbeat: restarting"), "{t}");
}
}

on_each_board! {
fn unknown_smccc_calls_get_not_supported_and_the_guest_carries_on(board: &str) {
    let mut s = boot(board, xtask::DEFAULT_SAMPLE, None);
    assert!(s.wait_for(BOOT, |l| l == "[heartbeat] beat 3").is_some(), "{}", s.transcript());
    let t = s.transcript();
    assert!(t.contains("[heartbeat] heartbeat: PSCI version 1.1"), "{t}");
    assert!(t.contains("[heartbeat] heartbeat: unknown SMCCC call via HVC returned -1"), "{t}");
    assert!(t.contains("[heartbeat] heartbeat: unknown SMCCC call via SMC returned -1"), "{t}");
    // An HVC immediate the hypervisor does not define is an undefined instruction (EC 0).
    assert!(t.contains("[heartbeat] heartbeat: HVC #1 raised exception class 0x0, carrying on"), "{t}");
    // Debug and PMU registers read as zero whatever the guest writes: no
    // domain sees or drives the physical ones (shared on RTDS pCPUs).
    assert!(t.contains("[heartbeat] heartbeat: PMCR_EL0 0x0, MDSCR_EL1 0x0 after writing them"), "{t}");
    // Armv7-A's implementation-defined c15 (HSTR.T15): a guest does not
    // learn the pCPU's peripheral base (QEMU's virt gives its A15s one).
    if xtask::board_arch(board) == "armv7a" {
        assert!(t.contains("[heartbeat] heartbeat: CBAR 0x0"), "{t}");
    }
    // Set/way maintenance never reaches the shared physical caches: the
    // hypervisor traps it and cleans the domain's own RAM by address.
    // (QEMU's Cortex-A15 model runs AArch32 set/way operations as no-ops
    // without consulting HCR.TSW, so on qemu-virt-a15 nothing traps;
    // `hv_core::setway` tests the Armv7-A decoding on the host.)
    let done = t.find("[heartbeat] heartbeat: 512 set/way operations done").expect(&t);
    if xtask::board_arch(board) != "armv7a" {
        let trapped = t.find("[hv] heartbeat: set/way cache maintenance trapped").expect(&t);
        assert!(trapped < done, "{t}");
    }
}
}

fn heartbeat_runs_with(board: &str, profile: &str, banner: &str) {
    let mut s = boot(board, xtask::DEFAULT_SAMPLE, Some(profile));
    assert!(s.wait_for(BOOT, |l| l == "[heartbeat] beat 50").is_some(), "{}", s.transcript());
    let t = s.transcript();
    assert!(t.contains(banner), "{t}");
    assert_consecutive(&beats(&s.log), &t);
}

on_each_board! {
fn vwfi_native_runs(board: &str) {
    heartbeat_runs_with(board, "null-native", "vwfi=native");
}
}

on_each_board! {
fn vwfi_trap_runs(board: &str) {
    heartbeat_runs_with(board, "null-trap", "vwfi=trap");
}
}

on_each_board! {
fn a_domain_power_off_stops_only_that_domain(board: &str) {
    let mut s = boot(board, &fixture("poweroff-domain"), None);
    assert!(s.wait_for(BOOT, |l| l.contains("countdown: destroyed")).is_some(), "{}", s.transcript());
    let last = beats(&s.log).last().copied().unwrap_or(0);
    let target = format!("[heartbeat] beat {}", last + 20);
    assert!(s.wait_for(BOOT, |l| l == target).is_some(), "machine must keep running:\n{}", s.transcript());
    assert!(s.transcript().contains("countdown: PowerOff -> Destroy"));
}
}

on_each_board! {
fn the_system_controller_power_off_ends_the_machine(board: &str) {
    let mut s = boot(board, &fixture("poweroff-machine"), None);
    assert!(s.wait_exit(BOOT), "QEMU should exit on the controller's SYSTEM_OFF:\n{}", s.transcript());
    let t = s.transcript();
    assert!(t.contains("system controller countdown powered off: machine off"), "{t}");
}
}

on_each_board! {
fn vcpus_of_a_domain_start_each_other_and_exchange_sgis(board: &str) {
    let mut s = boot(board, &fixture("smp"), None);
    let done = s.wait_for(BOOT, |l| l.starts_with("[smp] smp: 10 SGI round trips"));
    let t = s.transcript();
    assert!(done.is_some(), "{t}");
    assert!(t.contains("[smp] smp: vCPU 0 up; vCPU 1 affinity 1"), "vCPU 1 starts off:\n{t}");
    assert!(t.contains("[smp] smp: CPU_ON(1) returned 0"), "{t}");
    // Asked again while it is on (or about to be): ALREADY_ON (-4) or ON_PENDING (-5).
    assert!(t.contains("[smp] smp: CPU_ON(1) again returned -4") || t.contains("[smp] smp: CPU_ON(1) again returned -5"), "{t}");
    assert!(t.contains("[smp] smp: CPU_ON(7) returned -2"), "no vCPU 7 in this domain:\n{t}");
    assert!(t.contains("[smp] smp: vCPU 1 up"), "{t}");
    for n in 1..=10 {
        assert!(t.contains(&format!("[smp] pong {n}\n")) || t.ends_with(&format!("[smp] pong {n}")), "missing pong {n}:\n{t}");
    }
    assert!(t.contains("[smp] smp: 10 SGI round trips; vCPU 1 affinity 1"), "vCPU 1 should be off after CPU_OFF:\n{t}");
    // vCPU 0 switched off and back on by vCPU 1: CPU_ON's context reaches
    // it as PSCI says (on Armv7 a kernel image's r0 would be 0).
    // Both vCPUs report, in either order; a guest fault ends the wait at
    // once (the domain is gone, QEMU is not).
    let (mut back, mut turned) = (None, false);
    s.wait_for(BOOT, |l| {
        if l.starts_with("[smp] smp: vCPU 0 back on") {
            back = Some(l.to_string());
        }
        turned |= l.starts_with("[smp] smp: vCPU 1 turning vCPU 0 back on");
        (back.is_some() && turned) || l.contains("unexpected") || (l.starts_with("[hv] smp:") && l.contains("abort injected"))
    });
    let t = s.transcript();
    assert!(t.contains("[smp] smp: CPU_ON(1) for the swap returned 0") && t.contains("[smp] smp: vCPU 1 turning vCPU 0 back on: 0"), "{t}");
    assert_eq!(back.as_deref(), Some("[smp] smp: vCPU 0 back on, context as CPU_ON gave it"), "{t}");
    assert!(!t.contains("unexpected") && !t.contains("should not happen") && !t.contains("abort injected"), "{t}");
}
}

/// A domain's share reports after the first (start-up), but those of
/// seconds in which the hypervisor may have switched a vCPU late. A late
/// line disqualifies the next two reports, not one: a guest that worked out
/// its report just before the late switch prints it just after the line,
/// so the second holding the switch is the report after that. A line saying
/// further late switches went unlogged disqualifies three, since its quiet
/// stretch (up to a second from the first line) reaches one report further.
fn on_time_reports(log: &[String], domain: &str) -> Vec<ShareReport> {
    let prefix = format!("[{domain}] share ");
    let mut unjudged = 1; // the first report covers start-up
    let mut out = Vec::new();
    for line in log {
        if line.starts_with("[hv] rtds: pCPU") {
            let reach = if line.contains("not logged") { 3 } else { 2 };
            unjudged = reach.max(unjudged);
        } else if line.starts_with(&prefix) {
            if unjudged == 0 {
                out.extend(share_reports(std::slice::from_ref(line), domain));
            } else {
                unjudged -= 1;
            }
        }
    }
    out
}

on_each_board! {
fn an_overcommitted_rtds_pool_keeps_each_guest_within_its_budget(board: &str) {
    let mut s = boot(board, &fixture("rtds"), None);
    // Twelve reports each (12 s of guest time), then judge.
    let (mut g12, mut m12) = (false, false);
    let ok = s.wait_for(BOOT, |l| {
        g12 |= l.starts_with("[gauges] share 12:");
        m12 |= l.starts_with("[media] share 12:");
        g12 && m12
    });
    assert!(ok.is_some(), "{}", s.transcript());
    let t = s.transcript();
    // The first report includes start-up.
    let (g, m) = (share_reports(&s.log, "gauges"), share_reports(&s.log, "media"));
    assert!(g.len() >= 12 && m.len() >= 12, "both guests should report their share repeatedly:\n{t}");
    let (g, m) = (&g[1..], &m[1..]);
    // Never more than the budget in one go, within what the guest can
    // resolve: it counts stalls under 0.25 ms as run time, and under TCG the
    // budget timer sometimes fires late when the host is slow to run QEMU's
    // timer thread. The hypervisor reports each switch it made over 1 ms
    // late; seconds with such a report are the emulator's, not judged.
    for (name, budget_us) in [("gauges", 3_000u64), ("media", 6_000)] {
        let judged = on_time_reports(&s.log, name);
        if judged.is_empty() {
            // The ratio below still judges this run.
            eprintln!("note: {name}: every second had a late switch (a loaded host); bursts not judged");
        }
        for r in &judged {
            assert!(
                r.longest_us <= budget_us + 1_250,
                "{name} ran {} us in one go in second {}, budget {budget_us} us per period:\n{t}",
                r.longest_us,
                r.n
            );
        }
    }
    // Spinning guests share the pCPU in the ratio of their budgets (3:6).
    // Absolute shares depend on the host: `cargo xtask bench rtds` prints them.
    let total = |r: &[ShareReport]| r.iter().map(|r| r.percent).sum::<f64>();
    let ratio = total(g) / total(m);
    assert!((ratio / 0.5 - 1.0).abs() <= 0.15, "gauges:media shares {ratio:.3}, budgets 0.5 ±15%:\n{t}");
    assert!(t.contains("rtds pCPUs: [3]"), "{t}");
    // The null-scheduled heartbeat on its own pCPU is untouched.
    assert_consecutive(&beats(&s.log), &t);
}
}

/// The beat numbers `domain` (running the heartbeat guest) printed.
fn beats_of(log: &[String], domain: &str) -> Vec<u64> {
    let prefix = format!("[{domain}] beat ");
    log.iter().filter_map(|l| l.strip_prefix(&prefix)?.parse().ok()).collect()
}

on_each_board! {
fn hostile_guests_disturb_no_one_on_their_own_pcpu_or_a_shared_one(board: &str) {
    let mut s = boot(board, &fixture("hostile"), None);
    // Each hostile guest runs two rounds of random attacks, restarted after
    // each (and on any crash), one on a pCPU of its own and one sharing an
    // RTDS pCPU with the `beacon` heartbeat.
    let (mut own, mut shared) = (false, false);
    let ok = s.wait_for(Duration::from_secs(240), |l| {
        own |= l.contains("hostile: restarting (restart #2)");
        shared |= l.contains("intruder: restarting (restart #2)");
        own && shared
    });
    assert!(ok.is_some(), "both hostile guests should be restarted twice:\n{}", s.transcript());
    // Both heartbeats keep coming after that.
    for domain in ["heartbeat", "beacon"] {
        let last = beats_of(&s.log, domain).last().copied().unwrap_or(0);
        let target = format!("[{domain}] beat {}", last + 20);
        assert!(s.wait_for(BOOT, |l| l == target).is_some(), "{domain} stalled:\n{}", s.transcript());
    }
    let t = s.transcript();
    for domain in ["heartbeat", "beacon"] {
        let b = beats_of(&s.log, domain);
        assert!(!b.is_empty() && b[0] == 1, "{domain} did not start at beat 1:\n{t}");
        for w in b.windows(2) {
            assert_eq!(w[1], w[0] + 1, "{domain} skipped or repeated a beat ({} then {})", w[0], w[1]);
        }
        assert!(!t.contains(&format!("{domain}: restarting")) && !t.contains(&format!("{domain}: Crash")), "{t}");
    }
    // The attacks happened, on both pCPUs: each attacker finished rounds
    // (a round ends with the exceptions it caused) and was restarted for
    // its resets, never for a crash.
    for attacker in ["hostile", "intruder"] {
        let prefix = format!("[{attacker}] hostile: round done, ");
        let stepped: Vec<u64> =
            s.log.iter().filter_map(|l| l.strip_prefix(&prefix)?.split(' ').next()?.parse().ok()).collect();
        assert!(stepped.len() >= 2 && stepped.iter().all(|&n| n > 0), "{attacker}: {stepped:?}:\n{t}");
        assert!(!t.contains(&format!("{attacker}: Crash")), "{attacker} crashed:\n{t}");
        // Its aborts are logged within a budget for its whole life (8, then
        // one per 10 s), not 8 per incarnation: restarts do not refill it.
        let aborts = t.matches(&format!("[hv] {attacker}: data access at IPA")).count()
            + t.matches(&format!("[hv] {attacker}: instruction fetch at IPA")).count();
        let restarts = t.matches(&format!("[hv] {attacker}: restarting")).count();
        assert!(restarts >= 2 && aborts <= 8 + 6, "{attacker}: {aborts} abort lines over {restarts} restarts:\n{t}");
    }
    // The Xen attacks reached the store: a scribbled ring is refused.
    assert!(t.contains("broke the xenstore ring protocol"), "no attack reached the xenstore ring:\n{t}");
}
}

on_each_qemu_board! {
fn a_passed_through_level_interrupt_left_raised_disturbs_no_one(board: &str) {
    let mut s = boot(board, &fixture("passthrough"), None);
    // The first incarnation reboots from inside the RTC's interrupt handler:
    // the line stays high and the interrupt active. The restarted domain
    // must get it again (the hypervisor deactivated it), before it arms
    // anything; then it powers off with the line still high.
    let carried = s.wait_for(BOOT, |l| l.starts_with("[alarm] alarm: RTC interrupt raised since before the restart, taken"));
    assert!(carried.is_some(), "the restarted owner never got its interrupt again:\n{}", s.transcript());
    assert!(s.wait_for(BOOT, |l| l == "[hv] alarm: destroyed").is_some(), "{}", s.transcript());
    // Its line stays high with no owner running: the shared pCPU's
    // heartbeat and the other one go on, consecutive.
    for domain in ["beacon", "heartbeat"] {
        let last = beats_of(&s.log, domain).last().copied().unwrap_or(0);
        let target = format!("[{domain}] beat {}", last + 100);
        assert!(s.wait_for(BOOT, |l| l == target).is_some(), "{domain} stalled:\n{}", s.transcript());
    }
    let t = s.transcript();
    assert_eq!(t.matches("[alarm] alarm: RTC alarm taken; rebooting").count(), 1, "{t}");
    assert_eq!(t.matches("[alarm] alarm: up").count(), 2, "{t}");
    assert!(!t.contains("unexpected"), "{t}");
    for domain in ["beacon", "heartbeat"] {
        let b = beats_of(&s.log, domain);
        for w in b.windows(2) {
            assert_eq!(w[1], w[0] + 1, "{domain} skipped or repeated a beat ({} then {}):\n{t}", w[0], w[1]);
        }
    }
}
}
