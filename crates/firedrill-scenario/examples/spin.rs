//! Runs one world for many ticks (for profilers).
fn main() {
    let inc = firedrill_scenario::Catalog::builtin()
        .expect("library")
        .start("db_pool_exhaustion", 1, 0.5)
        .expect("start");
    let mut w = inc.world().clone();
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or(20_000);
    let t = std::time::Instant::now();
    w.run(n);
    eprintln!("{:.3} us/tick", t.elapsed().as_secs_f64() * 1e6 / n as f64);
}
