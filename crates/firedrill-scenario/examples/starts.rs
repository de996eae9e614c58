//! Starts every basic family at seeds `0..N` (for profilers: a fixed amount of work, unlike a timed loop).
//!
//! `valgrind --tool=callgrind --toggle-collect='*Incident::start*' target/release/examples/starts 2`
fn main() {
    let catalog = firedrill_scenario::Catalog::builtin().expect("library");
    let seeds: u64 = std::env::args()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or(2);
    let families: Vec<String> = catalog.scenarios().iter().map(|s| s.id.clone()).collect();
    let t = std::time::Instant::now();
    let mut n = 0;
    for seed in 0..seeds {
        for family in &families {
            let inc = catalog.start(family, seed, 0.5).expect("start");
            std::hint::black_box(inc.page_s());
            n += 1;
        }
    }
    eprintln!(
        "{n} starts, {:.2} ms each",
        t.elapsed().as_secs_f64() * 1e3 / n as f64
    );
}
