//! A metric sample is the same whatever window renders it, and stays the same as the world advances.
//!
//! Rendering reads only the window's ticks (counters read totals the world keeps per tick), so a PromQL query over
//! five minutes, a rule evaluation or an environment read must see exactly what a render of the whole history
//! shows at the same timestamps, to the bit, as a Prometheus that scraped every tick would return.

use std::collections::BTreeMap;

use firedrill_scenario::{Catalog, Incident};
use firedrill_telemetry::metrics::{self, CATALOGUE, MetricKind, MetricSeries};
use firedrill_world::{World, WorldOptions};

type Labels = BTreeMap<String, String>;

/// An incident of the built-in library, run `ticks` past its page.
fn incident(family: &str, seed: u64, ticks: usize) -> Incident {
    let mut inc = Catalog::builtin()
        .expect("library")
        .start(family, seed, 0.5)
        .expect("incident");
    for _ in 0..ticks {
        inc.step();
    }
    inc
}

fn render(world: &World, start_ms: i64, end_ms: i64) -> Vec<MetricSeries> {
    metrics::render(world, &|_| true, start_ms, end_ms)
}

/// The series of `full` restricted to `[start_ms, end_ms]`, without the ones left empty.
fn restrict(full: &[MetricSeries], start_ms: i64, end_ms: i64) -> Vec<MetricSeries> {
    full.iter()
        .map(|s| MetricSeries {
            labels: s.labels.clone(),
            samples: s
                .samples
                .iter()
                .copied()
                .filter(|(t, _)| (start_ms..=end_ms).contains(t))
                .collect(),
        })
        .filter(|s| !s.samples.is_empty())
        .collect()
}

/// Samples as (labels, timestamp) -> value bits.
fn bits(series: &[MetricSeries]) -> BTreeMap<(&Labels, i64), u64> {
    series
        .iter()
        .flat_map(|s| {
            s.samples
                .iter()
                .map(|&(t, v)| ((&s.labels, t), v.to_bits()))
        })
        .collect()
}

/// Rendering `[start_ms, end_ms]` gives exactly the full render's series and samples in that window, bit for bit.
fn assert_window(world: &World, full: &[MetricSeries], start_ms: i64, end_ms: i64, what: &str) {
    let want = restrict(full, start_ms, end_ms);
    let got = render(world, start_ms, end_ms);
    let names = |v: &[MetricSeries]| v.iter().map(|s| s.labels.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&got),
        names(&want),
        "{what}: series of window [{start_ms}, {end_ms}]"
    );
    let (got, want) = (bits(&got), bits(&want));
    if got != want {
        let diff = want
            .iter()
            .find(|(k, v)| got.get(*k) != Some(*v))
            .map(|((l, t), v)| (l["__name__"].clone(), *t, f64::from_bits(*v)));
        panic!(
            "{what}: window [{start_ms}, {end_ms}] differs from the full render, first at {diff:?}"
        );
    }
}

/// A small deterministic generator for windows (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Fixed windows (the last five minutes, the last hour, one tick, the oldest ticks, windows reaching past both
/// ends, between two ticks) and random ones, each compared with the full render.
fn assert_every_window(world: &World, what: &str, random: usize) {
    let ring = world.history();
    let (first, end) = (ring.first_tick(), ring.end_tick());
    let ms = |t: u64| metrics::tick_ms(world, t);
    let (lo, hi) = (ms(first), ms(end - 1));
    let step = ms(first + 1) - lo;
    let full = render(world, i64::MIN, i64::MAX);
    assert!(full.len() > 100, "{what}: {} series", full.len());
    let windows = [
        (hi - 5 * 60_000, hi),
        (hi - 3_600_000, hi),
        (hi, hi),
        (lo, lo + 10 * step),
        (lo - 1_000_000, lo + 3 * step),
        (hi - 3 * step, hi + 1_000_000),
        (lo + step / 2, lo + 20 * step + step / 2),
        (lo + 7 * step, hi - 7 * step),
    ];
    for (start, stop) in windows {
        assert_window(world, &full, start, stop, what);
    }
    let mut rng = Rng(end ^ 0x5eed);
    for _ in 0..random {
        let a = first + rng.below(end - first);
        let b = a + rng.below(end - a);
        // Bounds anywhere within a tick, so windows also start and stop between scrapes.
        let (start, stop) = (ms(a) - rng.below(step as u64) as i64, ms(b));
        assert_window(world, &full, start, stop, what);
    }
}

#[test]
fn any_window_renders_the_full_histories_samples() {
    for family in [
        "db_pool_exhaustion",
        "dns_failure",
        "cert_expiry",
        "rate_limit_exhaustion",
        "bad_deployment_cascade",
        "oom_crash",
    ] {
        let inc = incident(family, 3, 80);
        assert_every_window(inc.world(), family, 40);
    }
}

#[test]
fn any_window_renders_the_full_histories_samples_after_eviction() {
    // Run past the ring's retention so that the oldest ticks are gone and the counters' totals started before
    // the first held tick.
    let inc = incident("db_pool_exhaustion", 5, 40);
    let mut world = inc.world().clone();
    world.run(1_600);
    assert!(world.history().first_tick() > 1, "the ring has evicted");
    assert_every_window(&world, "db_pool_exhaustion, evicted", 40);
}

#[test]
fn counter_samples_do_not_change_as_the_world_advances_and_evicts() {
    // What a Prometheus scraping every tick stored: a counter or histogram sample rendered now is the one rendered
    // later at the same timestamp, even after older ticks were evicted from the ring.
    let inc = incident("db_pool_exhaustion", 7, 40);
    let before = render(inc.world(), i64::MIN, i64::MAX);
    let mut world = inc.world().clone();
    let held = inc.world().history().end_tick();
    // Far enough that the ring evicts, not so far that the ticks rendered before are all gone.
    world.run(WorldOptions::default().retention_ticks as u64 - held / 2);
    assert!(world.history().first_tick() > 1, "the ring has evicted");
    let after = render(&world, i64::MIN, i64::MAX);
    let cumulative = |s: &&MetricSeries| {
        let name = s.labels["__name__"].as_str();
        name.starts_with("http_request_duration_seconds_")
            || CATALOGUE
                .iter()
                .any(|m| m.name == name && m.kind == MetricKind::Counter)
    };
    let before: Vec<MetricSeries> = before.iter().filter(cumulative).cloned().collect();
    let after: Vec<MetricSeries> = after.iter().filter(cumulative).cloned().collect();
    let (before, after) = (bits(&before), bits(&after));
    let mut common = 0;
    for (key, v) in &before {
        if let Some(w) = after.get(key) {
            common += 1;
            assert_eq!(
                v,
                w,
                "{} at {}: {} then {}",
                key.0["__name__"],
                key.1,
                f64::from_bits(*v),
                f64::from_bits(*w)
            );
        }
    }
    assert!(common > 1_000, "{common} samples in common");
}
