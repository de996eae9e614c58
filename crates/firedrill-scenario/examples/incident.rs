//! Runs one incident for many ticks after the page, alert rules included (for profilers: a fixed amount of
//! work). `valgrind --tool=callgrind --toggle-collect='*RuleEngine::evaluate*' target/release/examples/incident
//! 400` counts the rule evaluations alone (one per simulated minute, every fourth tick).
fn main() {
    let mut inc = firedrill_scenario::Catalog::builtin()
        .expect("library")
        .start("db_pool_exhaustion", 1, 0.5)
        .expect("start");
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or(4_000);
    let before = inc.alerts().evaluations();
    let t = std::time::Instant::now();
    for _ in 0..n {
        inc.step();
    }
    eprintln!(
        "{:.2} us/tick, {} rule evaluations",
        t.elapsed().as_secs_f64() * 1e6 / n as f64,
        inc.alerts().evaluations() - before
    );
}
