//! A smoke pass of every fuzz target (`cargo xtask fuzz` runs long ones):
//! the targets build with the coverage flags and survive a short run from
//! their corpus. Run through `cargo xtask test`.

#[test]
#[ignore = "builds libFuzzer targets: run with `cargo xtask test`"]
fn every_fuzz_target_survives_a_smoke_pass() {
    let outcomes = xtask::fuzz::run(&[], 20_000).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outcomes.len(), xtask::fuzz::TARGETS.len());
    for o in &outcomes {
        assert!(o.failure.is_none(), "{}", o.failure.as_deref().unwrap_or(""));
        assert!(o.runs >= 20_000, "{} ran {} times", o.target, o.runs);
        assert!(o.coverage.unwrap_or(0) > 0, "{} reports no coverage: not instrumented", o.target);
    }
}
