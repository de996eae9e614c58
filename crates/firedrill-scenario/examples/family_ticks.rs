//! Steps the first tick after the page of every basic family (seed 1, difficulty 0.5) `N` times each, on fresh
//! clones of the world: the tick the `world_step` benchmark times, as a fixed amount of work for profilers.
//!
//! `valgrind --tool=callgrind --toggle-collect='family_ticks::tick' target/release/examples/family_ticks 200 oom_crash`
//! (the start's own ticks are left out of the count).
fn main() {
    let catalog = firedrill_scenario::Catalog::builtin().expect("library");
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|x| x.parse().ok()).unwrap_or(200);
    let only: Vec<String> = args.collect();
    for family in firedrill_scenario::library::BASIC_FAMILIES {
        if !only.is_empty() && !only.iter().any(|o| o == family) {
            continue;
        }
        let incident = catalog.start(family, 1, 0.5).expect("start");
        let mut worlds: Vec<_> = (0..n).map(|_| incident.world().clone()).collect();
        let t = std::time::Instant::now();
        for w in &mut worlds {
            tick(w);
        }
        eprintln!(
            "{family}: {:.3} us per tick",
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        );
        drop(worlds);
    }
}

/// One tick, not inlined so that a profiler can collect only these.
#[inline(never)]
fn tick(world: &mut firedrill_world::World) {
    world.step();
    std::hint::black_box(world);
}
