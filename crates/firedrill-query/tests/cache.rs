//! The series cache forgets old ticks in batches, as the windows asked of it move on. Over hundreds of ticks of
//! rule-shaped reads (a window ending now every few ticks, windows lagging behind it by up to the slack the cache
//! keeps, a longer window now and then), through pod replacements, every window it answers is a fresh render's.

mod common;

use firedrill_query::{CachedWorldStorage, SeriesCache, WorldStorage};
use firedrill_scenario::Catalog;
use firedrill_telemetry::metrics;
use firedrill_world::{Actor, Operation};

#[test]
fn windows_stay_exact_while_the_cache_forgets() {
    let catalog = Catalog::builtin().expect("library");
    let mut inc = catalog.start("oom_crash", 2, 0.5).expect("start");
    let service = inc.service_id("order-service").expect("order-service");
    let mut cache = SeriesCache::default();
    let names = [
        "http_requests_total",
        "container_memory_working_set_bytes",
        "up",
    ];
    let tick = 15_000;
    let mut checked = 0;
    for round in 0..150u64 {
        if round % 40 == 20 {
            let op = Operation::Restart {
                service,
                memory_mb: None,
                cpu_millis: None,
            };
            let _ = inc.apply(&op, &Actor::oncall());
        }
        for _ in 0..4 {
            inc.step();
        }
        let w = inc.world();
        let now = metrics::tick_ms(w, w.tick_count());
        let fresh = WorldStorage::new(w);
        let cached = CachedWorldStorage::new(w, &mut cache);
        // Five minutes (a rule's `rate` window), fifteen once in a while (the longest window then sets how much
        // is kept), each ending now and lagging by one, eight and sixteen ticks: the last starts at the oldest
        // tick the cache must still hold.
        let minutes = if round % 50 == 30 { 15 } else { 5 };
        for lag in [0, 1, 8, 16] {
            let end = now - lag * tick;
            let start = end - minutes * 60_000 + 1;
            for name in names {
                assert_eq!(
                    common::sorted_window(&fresh, name, start, end, false),
                    common::sorted_window(&cached, name, start, end, true),
                    "{name} over [{start}, {end}] at round {round}"
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 150 * 4 * 3);
}
