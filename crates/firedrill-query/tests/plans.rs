//! A compiled instant plan over the world's keyed series gives exactly the engine's answer over its labelled
//! series: the shop's alerting rules and other rule-shaped queries, across every basic family, at many
//! evaluation times, through pod replacements and rollouts, with the plans kept between evaluations as the
//! rule engine keeps them.

mod common;

use firedrill_promql::promqltest::same_value;
use firedrill_promql::{
    EndsRead, Engine, EngineOptions, InstantPlan, KeyedStorage, Sample, Window, WindowFacts,
    parse_query,
};
use firedrill_query::{CachedWorldStorage, SeriesCache, WorldStorage};
use firedrill_scenario::{Catalog, Incident};
use firedrill_telemetry::metrics;
use firedrill_world::{Actor, Operation, ServiceId};

/// Replaces every pod of `service` (new pod names: new series, and staleness markers for the old ones).
fn restart(inc: &mut Incident, service: ServiceId) {
    let op = Operation::Restart {
        service,
        memory_mb: None,
        cpu_millis: None,
    };
    let _ = inc.apply(&op, &Actor::oncall());
}

const FAMILIES: &[&str] = &[
    "oom_crash",
    "db_pool_exhaustion",
    "bad_deployment_cascade",
    "disk_full",
    "slow_query",
    "cert_expiry",
    "dns_failure",
    "rate_limit_exhaustion",
    "no_fault_control",
];

/// Rule-shaped queries beyond the shop's own rules: every node kind the plan compiles, and shapes where the
/// engine fails (many-to-many matching), which the plan must leave to it.
const EXTRA: &[&str] = &[
    "sum by (service) (container_memory_working_set_bytes)",
    "max without (pod) (container_memory_working_set_bytes) / 1048576",
    "count by (service) (container_memory_working_set_bytes) < 2",
    "avg by (service) (kube_pod_container_resource_limits)",
    "stddev(up)",
    "-up",
    "2 * -1 + up",
    "app_info == 1",
    "rate(http_requests_total[1m])",
    "last_over_time(up[2m])",
    "max_over_time(db_client_connections_in_use[5m]) / db_client_connections_max",
    "histogram_quantile(0.5, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
    "kube_deployment_status_replicas_available / ignoring (deployment) kube_deployment_spec_replicas",
    "sum(up) / count(up)",
    "up > bool 0",
    "up + on (service) app_info",
    "up + on (namespace) up",
    "sum by (service) (up) + on (service) group_left kube_deployment_spec_replicas",
    "increase(kube_pod_container_status_restarts_total[15m]) > 0",
];

#[test]
fn compiled_plans_answer_exactly_as_the_engine() {
    let catalog = Catalog::builtin().expect("library");
    let engine = Engine::new(EngineOptions::default());
    let (mut compared, mut declined, mut restricted) = (0usize, 0usize, 0usize);
    for family in FAMILIES {
        for seed in 0..2 {
            let mut inc: Incident = catalog.start(family, seed, 0.5).expect("start");
            let mut queries: Vec<String> = inc
                .alerts()
                .rules()
                .iter()
                .map(|r| r.expr.to_string())
                .collect();
            queries.extend(EXTRA.iter().map(|q| q.to_string()));
            let exprs: Vec<_> = queries
                .iter()
                .map(|q| parse_query(q).expect("query parses"))
                .collect();
            let mut plans: Vec<Option<InstantPlan>> = exprs
                .iter()
                .map(|e| InstantPlan::compile(e, engine.options()))
                .collect();
            // The same plans reading through a cache kept across evaluations, as the rule engine reads.
            let mut cached_plans = plans.clone();
            let mut cache = SeriesCache::default();
            // And the rules' plans alone through a cache told they are its only readers, as the rule engine
            // tells its own (it then leaves out the series their `job` matchers reject).
            let rules = inc.alerts().rules().len();
            let mut rule_plans = plans[..rules].to_vec();
            let mut rule_cache = SeriesCache::default();
            {
                let selectors: Vec<_> = rule_plans
                    .iter()
                    .flatten()
                    .flat_map(|p| p.selectors())
                    .collect();
                rule_cache.serve_only(inc.world(), &selectors);
            }
            // Every query above but the group_left one compiles.
            assert_eq!(plans.iter().filter(|p| p.is_none()).count(), 1);
            for round in 0..24 {
                if round == 6 {
                    let service = inc.world().topology().entries[0].service;
                    restart(&mut inc, service);
                }
                if round == 10 {
                    // A rollout: two versions (two `app_info` series) for a while.
                    let topo = inc.world().topology();
                    let target = (0..topo.len()).find_map(|i| {
                        let id = firedrill_world::ServiceId(i as u16);
                        let n = topo.service(id).spec.versions.len();
                        (n >= 2).then(|| (id, (inc.world().running_version(id) as usize + 1) % n))
                    });
                    if let Some((service, version)) = target {
                        let _ = inc.apply(
                            &Operation::Deploy {
                                service,
                                version: version as u8,
                            },
                            &Actor::oncall(),
                        );
                    }
                }
                for _ in 0..3 {
                    inc.step();
                }
                let w = inc.world();
                let t = metrics::tick_ms(w, w.tick_count());
                let storage = WorldStorage::new(w);
                let cached = CachedWorldStorage::new(w, &mut cache);
                let rule_cached = CachedWorldStorage::new(w, &mut rule_cache);
                for (q, rule_plan) in queries.iter().zip(&mut rule_plans) {
                    let Some(rule_plan) = rule_plan else { continue };
                    let expected = rule_plan.clone().eval(&storage, t);
                    assert_eq!(
                        rule_plan
                            .eval(&rule_cached, t)
                            .as_ref()
                            .map(|v| format!("{v:?}")),
                        expected.as_ref().map(|v| format!("{v:?}")),
                        "{family}/{seed} at {t}: {q} through the cache serving the rules only"
                    );
                    restricted += 1;
                }
                for (((q, e), plan), cached_plan) in queries
                    .iter()
                    .zip(&exprs)
                    .zip(&mut plans)
                    .zip(&mut cached_plans)
                {
                    let (Some(plan), Some(cached_plan)) = (plan, cached_plan) else {
                        continue;
                    };
                    let expected = engine.instant_expr(&storage, e, t);
                    let through_cache = cached_plan.eval(&cached, t);
                    let got = plan.eval(&storage, t);
                    assert_eq!(
                        through_cache.as_ref().map(|v| format!("{v:?}")),
                        got.as_ref().map(|v| format!("{v:?}")),
                        "{family}/{seed} at {t}: {q} through the cache"
                    );
                    match got {
                        None => {
                            declined += 1;
                            assert!(
                                expected.is_err(),
                                "{family}/{seed} at {t}: the plan declined {q} but the engine answered"
                            );
                        }
                        Some(got) => {
                            compared += 1;
                            let expected = expected.unwrap_or_else(|err| {
                                panic!("{family}/{seed}: engine failed on {q} ({err}) but the plan answered")
                            });
                            assert!(
                                same_value(&got, &expected),
                                "{family}/{seed} at {t}: {q}\nplan:   {got:?}\nengine: {expected:?}"
                            );
                        }
                    }
                }
            }
        }
    }
    println!("compared {compared}, declined {declined}, through the rules' cache {restricted}");
    assert!(
        restricted > 1_000,
        "only {restricted} through the rules' cache"
    );
    assert!(compared > 5_000, "only {compared} comparisons");
    // `up + on (namespace) up` matches every service on the right: the engine's many-to-many error.
    assert!(declined > 0, "no evaluation exercised the plan's refusal");
}

/// The cache answers any window, forwards, backwards, overlapping or beyond what it holds, exactly as a
/// fresh render does, staleness markers included (pods replaced by a restart).
#[test]
fn cached_windows_equal_fresh_renders() {
    let catalog = Catalog::builtin().expect("library");
    let mut inc: Incident = catalog.start("oom_crash", 3, 0.5).expect("start");
    let mut cache = SeriesCache::default();
    let names = [
        "http_requests_total",
        "container_memory_working_set_bytes",
        "up",
        "app_info",
        "http_request_duration_seconds_bucket",
    ];
    let tick = 15_000;
    let mut checked = 0;
    for round in 0..30u64 {
        if round == 5 {
            let service = inc.service_id("order-service").expect("order-service");
            restart(&mut inc, service);
        }
        for _ in 0..(round % 5 + 1) {
            inc.step();
        }
        let w = inc.world();
        let now = metrics::tick_ms(w, w.tick_count());
        let fresh = WorldStorage::new(w);
        let cached = CachedWorldStorage::new(w, &mut cache);
        // Windows of several lengths ending now, lagging behind, and one far back.
        let windows = [
            (now - 5 * 60_000 + 1, now),
            (now - 15 * 60_000 + 1, now),
            (now - 3 * tick, now - tick),
            (
                now - (round as i64 % 7) * 60_000 - 20 * tick,
                now - 20 * tick,
            ),
            (now - 90 * 60_000, now - 80 * 60_000),
        ];
        for name in names {
            for (start, end) in windows {
                let a = common::sorted_window(&fresh, name, start, end, false);
                let b = common::sorted_window(&cached, name, start, end, true);
                assert_eq!(a, b, "{name} over [{start}, {end}] at round {round}");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 30 * 5 * 5);
}

/// At the edge of retention: a pod replaced long ago, whose last sample the world has just evicted, has a
/// staleness marker at the first held tick in the cache but none in a fresh render (the sample it follows is
/// gone); windows reaching back past retention must not show it.
#[test]
fn cached_windows_match_at_the_retention_edge() {
    let catalog = Catalog::builtin().expect("library");
    let mut inc: Incident = catalog.start("oom_crash", 1, 0.5).expect("start");
    let service = inc.service_id("order-service").expect("order-service");
    restart(&mut inc, service);
    let restarted_at = inc.world().tick_count();
    let mut cache = SeriesCache::default();
    let name = "container_memory_working_set_bytes";
    let mut checked = 0;
    // Until the ring has evicted well past the restart.
    while inc.world().history().first_tick() < restarted_at + 8 {
        for _ in 0..3 {
            inc.step();
        }
        let w = inc.world();
        let first = metrics::tick_ms(w, w.history().first_tick());
        let now = metrics::tick_ms(w, w.tick_count());
        let cached = CachedWorldStorage::new(w, &mut cache);
        for (start, end) in [(first - 60_000, now), (first, now), (first + 15_000, now)] {
            assert_eq!(
                common::sorted_window(&WorldStorage::new(w), name, start, end, false),
                common::sorted_window(&cached, name, start, end, true),
                "[{start}, {end}] with the first held tick at {first}"
            );
            checked += 1;
        }
    }
    assert!(checked > 100);
}

/// A window as lent: by its ends as (first, last, len), or by its samples.
type Lent = Result<(Sample, Sample, usize), Vec<Sample>>;

/// The series of a name told by its ends ([`metrics::told_by_ends`]) in a window, by key, as lent.
fn ends_or_samples(
    storage: &dyn KeyedStorage,
    name: &str,
    start: i64,
    end: i64,
    reads: EndsRead,
) -> Vec<(u64, Lent)> {
    let mut out = Vec::new();
    storage
        .select_ends(name, start, end, reads, &mut |key, window| {
            out.push((
                key,
                match window {
                    Window::Ends { first, last, len } => Ok((first, last, len)),
                    Window::Samples(s, _) => Err(s.to_vec()),
                },
            ))
        })
        .expect("select");
    out.sort_by_key(|(k, _)| *k);
    out
}

/// Checks that every window of `name` the cache lends by its ends for `reads` is exactly the ends of a fresh
/// render's window, which has no marker (and no decrease, for a change), for the same series, and that a window
/// it declines is the fresh render's samples; returns how many windows it lent by their ends.
fn check_ends(
    w: &firedrill_world::World,
    cache: &mut SeriesCache,
    name: &str,
    (start, end): (i64, i64),
    reads: EndsRead,
) -> usize {
    let fresh = common::sorted_window(&WorldStorage::new(w), name, start, end, false);
    let cached = CachedWorldStorage::new(w, cache);
    let ends = ends_or_samples(&cached, name, start, end, reads);
    assert_eq!(
        ends.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        fresh.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        "{name} over [{start}, {end}]: not the same series"
    );
    for ((key, got), (_, samples)) in ends.iter().zip(&fresh) {
        let (first, last, len) = match got {
            Ok(ends) => ends,
            Err(lent) => {
                // Only a window whose `code="200"` series falls may be declined: then it is the samples.
                assert_eq!(
                    name, "http_requests_total",
                    "{key:x} over [{start}, {end}]: lent by its samples"
                );
                let lent: Vec<(i64, u64)> = lent.iter().map(|x| (x.t, x.v.to_bits())).collect();
                assert_eq!(&lent, samples, "{name} {key:x} over [{start}, {end}]");
                continue;
            }
        };
        let samples: Vec<Sample> = samples
            .iter()
            .map(|&(t, v)| Sample::new(t, f64::from_bits(v)))
            .collect();
        let facts = WindowFacts::of(&samples);
        assert!(
            facts.no_stale && (reads == EndsRead::Newest || facts.no_decrease),
            "{name} {key:x} over [{start}, {end}]: {facts:?}"
        );
        let bits = |s: &Sample| (s.t, s.v.to_bits());
        assert_eq!(
            (bits(first), bits(last), *len),
            (
                bits(&samples[0]),
                bits(&samples[samples.len() - 1]),
                samples.len()
            ),
            "{name} {key:x} over [{start}, {end}]"
        );
    }
    ends.iter().filter(|(_, got)| got.is_ok()).count()
}

/// A name told by its ends is lent by its ends, which are exactly those of a fresh render's window (a sample at
/// every held tick, no marker, no decrease): on every basic family, through restarts (the restart counters
/// rise, pods are replaced), for windows of every length ending now, lagging or far back.
#[test]
fn windows_told_by_ends_are_the_ends_of_fresh_renders() {
    let catalog = Catalog::builtin().expect("library");
    let names: Vec<(&str, EndsRead)> = metrics::SeriesName::ALL
        .iter()
        .flat_map(|&n| {
            [
                metrics::told_by_ends(n).then_some((n.as_str(), EndsRead::Change)),
                metrics::newest_told_by_ends(n).then_some((n.as_str(), EndsRead::Newest)),
            ]
        })
        .flatten()
        .collect();
    assert!(names.contains(&("http_request_duration_seconds_bucket", EndsRead::Change)));
    assert!(names.contains(&("up", EndsRead::Newest)));
    assert!(names.contains(&("http_requests_total", EndsRead::Change)));
    let tick = 15_000;
    let mut compared = 0;
    for family in FAMILIES {
        let mut inc: Incident = catalog.start(family, 2, 0.7).expect("start");
        let mut cache = SeriesCache::default();
        let service = inc.world().topology().services.len() / 2;
        for round in 0..8u64 {
            if round == 3 {
                restart(&mut inc, ServiceId(service as u16));
            }
            for _ in 0..(round % 4 * 3 + 1) {
                inc.step();
            }
            let w = inc.world();
            let now = metrics::tick_ms(w, w.tick_count());
            for &(name, reads) in &names {
                for window in [
                    (now - 5 * 60_000 + 1, now),
                    (now - 15 * 60_000 + 1, now),
                    (now - tick + 1, now),
                    (now - 3 * tick, now - tick),
                    (now - 90 * 60_000, now - 80 * 60_000),
                    (0, now),
                ] {
                    compared += check_ends(w, &mut cache, name, window, reads);
                }
            }
        }
    }
    assert!(
        compared > 20_000,
        "only {compared} windows lent by their ends"
    );
}

/// At the edge of retention too: a window reaching back past the oldest tick the ring holds starts at it.
#[test]
fn windows_told_by_ends_match_at_the_retention_edge() {
    let catalog = Catalog::builtin().expect("library");
    let mut inc: Incident = catalog.start("oom_crash", 1, 0.5).expect("start");
    let mut cache = SeriesCache::default();
    let mut compared = 0;
    let evicting = inc.world().history().capacity_ticks() as u64 + 8;
    while inc.world().tick_count() < evicting {
        for _ in 0..40 {
            inc.step();
        }
        let w = inc.world();
        let first = metrics::tick_ms(w, w.history().first_tick());
        let now = metrics::tick_ms(w, w.tick_count());
        for window in [(first - 60_000, now), (first, first + 60_000)] {
            for (name, reads) in [
                ("http_request_duration_seconds_bucket", EndsRead::Change),
                ("kube_pod_container_status_restarts_total", EndsRead::Change),
                ("up", EndsRead::Newest),
            ] {
                compared += check_ends(w, &mut cache, name, window, reads);
            }
        }
    }
    assert!(inc.world().history().first_tick() > 1, "nothing evicted");
    assert!(compared > 100);
}
