//! Metrics, logs and traces rendered from a small world built in code: well-formed series, determinism, lines
//! for operations, wording that leaks nothing, and traces found again by id.

use std::collections::BTreeSet;
use std::sync::Arc;

use firedrill_telemetry::logs::{self, Level, LogOptions, LogRecord};
use firedrill_telemetry::metrics::{self, CATALOGUE, MetricKind, MetricSeries};
use firedrill_telemetry::traces::{self, SpanKind, SpanStatus};
use firedrill_world::spec::TopologySpec;
use firedrill_world::topology::SpecPath;
use firedrill_world::{
    Actor, FaultClass, Operation, Perturbation, ServiceId, Topology, World, WorldOptions,
};
use proptest::prelude::*;

fn spec() -> TopologySpec {
    serde_json::from_value(spec_json()).expect("spec")
}

fn spec_json() -> serde_json::Value {
    serde_json::json!({
        "tick_s": 15,
        "cluster": { "cpu_millis": 16000, "memory_mb": 16384 },
        "entrypoints": [{ "service": "web", "rps": 120 }],
        "services": [
            { "name": "web", "kind": "edge", "version": "v1.3.0",
              "versions": [{ "name": "v1.2.4" }, { "name": "v1.3.0" }],
              "tls": { "expires_at_s": 9.0e6 }, "rate_limit": { "rps_per_replica": 200, "burst": 40 },
              "disk": { "size_gb": 10, "data_gb": 6 },
              "config": { "log.level": "info", "dns.resolver": "10.96.0.10" },
              "calls": [{ "to": "api", "timeout_ms": 3000, "retries": 1 }] },
            { "name": "api", "kind": "service", "version": "v2.3.1", "capacity_rps": 150,
              "versions": [{ "name": "v2.3.1" },
                           { "name": "v2.4.0", "behaviour": { "conn_leak_per_min": 4.0 } }],
              "tls": { "expires_at_s": 8.0e6 },
              "config": { "log.level": "info", "dns.resolver": "10.96.0.10", "db.pool.max_size": "10" },
              "flags": [{ "name": "new-pricing", "when_on": { "error_ratio": 0.3 } }],
              "calls": [
                { "to": "db", "per_request": 2, "timeout_ms": 1000, "pool": 10, "hold_ms": 2, "via_cache": "cache" },
                { "to": "psp", "per_request": 0.5, "timeout_ms": 4000 }
              ],
              "publishes": [{ "topic": "order-events", "rate_hz": 10, "qos": { "reliability": "reliable" } }] },
            { "name": "worker", "kind": "worker", "version": "v1.0.0", "versions": [{ "name": "v1.0.0" }],
              "subscribes": [{ "topic": "order-events", "qos": { "reliability": "reliable" }, "capacity_hz_per_replica": 50 }] },
            { "name": "cache", "kind": "cache", "replicas": 1, "capacity_rps": 5000, "latency_ms": 0.6,
              "version": "7.2.4", "versions": [{ "name": "7.2.4" }] },
            { "name": "db", "kind": "database", "replicas": 1, "capacity_rps": 3000, "cpu_millis": 2000,
              "memory_mb": 2048, "base_memory_mb": 1200, "max_connections": 200,
              "disk": { "size_gb": 50, "data_gb": 30 },
              "version": "15.4", "versions": [{ "name": "15.4" }] },
            { "name": "psp", "kind": "external", "replicas": 1, "latency_ms": 140, "capacity_rps": 2000,
              "log_lines_per_s": 0, "version": "api-2024-06", "versions": [{ "name": "api-2024-06" }] },
            { "name": "logs", "kind": "observability", "replicas": 1, "capacity_rps": 400,
              "log_lines_per_s": 0.5, "version": "1.9.2", "versions": [{ "name": "1.9.2" }] }
        ]
    })
}

fn world(seed: u64) -> World {
    let topology = Arc::new(Topology::compile(&spec(), &SpecPath::root()).expect("topology"));
    let mut w = World::new(topology, seed, WorldOptions::default());
    w.run(80);
    w
}

fn id(w: &World, name: &str) -> ServiceId {
    w.topology().service_id(name).expect("service")
}

/// Unix ms of "now" plus one, and of a window `minutes` long ending there.
fn window(w: &World, minutes: i64) -> (i64, i64) {
    let end = ((w.epoch_unix_s() as f64 + w.now_s()) * 1000.0) as i64 + 1;
    (end - minutes * 60_000, end)
}

fn all_logs(w: &World, noise: f64) -> Vec<LogRecord> {
    logs::render(
        w,
        i64::MIN / 4,
        i64::MAX / 4,
        &LogOptions {
            noise,
            max_records: usize::MAX,
        },
    )
}

fn all_series(w: &World) -> Vec<MetricSeries> {
    metrics::render(w, &|_| true, i64::MIN, i64::MAX)
}

/// A world that went through most of what can happen: a leaking deploy, a bad resolver, a flag, an expired
/// certificate, a detached network, CPU starvation, an outage upstream, a surge, a restart and a scale.
fn eventful(seed: u64) -> World {
    let mut w = world(seed);
    let (api, web, worker, psp) = (
        id(&w, "api"),
        id(&w, "web"),
        id(&w, "worker"),
        id(&w, "psp"),
    );
    let bot = Actor("deploy-bot".into());
    w.apply(
        &Operation::Deploy {
            service: api,
            version: 1,
        },
        &bot,
    )
    .expect("deploy");
    w.run(20);
    w.apply(
        &Operation::SetConfig {
            service: web,
            key: "dns.resolver".into(),
            value: "10.0.0.53".into(),
        },
        &bot,
    )
    .expect("config");
    w.run(8);
    w.apply(
        &Operation::SetConfig {
            service: web,
            key: "dns.resolver".into(),
            value: "10.96.0.10".into(),
        },
        &Actor::oncall(),
    )
    .expect("config back");
    w.apply(
        &Operation::SetFlag {
            service: api,
            flag: 0,
            enabled: true,
        },
        &bot,
    )
    .expect("flag");
    w.perturb(&Perturbation::Certificate {
        service: api,
        expires_at_s: w.now_s() + 30.0,
        renewed_at_s: Some(w.now_s() - 100.0),
    });
    w.perturb(&Perturbation::DetachNetwork { service: worker });
    w.perturb(&Perturbation::CpuShare {
        service: web,
        share: 0.3,
    });
    w.perturb(&Perturbation::Outage {
        service: psp,
        error_ratio: 0.5,
        latency_factor: 3.0,
    });
    w.perturb(&Perturbation::Traffic { factor: 2.0 });
    w.run(30);
    w.apply(
        &Operation::Restart {
            service: api,
            memory_mb: None,
            cpu_millis: None,
        },
        &Actor::oncall(),
    )
    .expect("restart");
    w.apply(
        &Operation::Scale {
            service: web,
            replicas: 4,
        },
        &Actor::oncall(),
    )
    .expect("scale");
    w.run(20);
    w
}

#[test]
fn counters_are_monotonic_and_histograms_consistent() {
    let w = eventful(3);
    let series = all_series(&w);
    let counters: BTreeSet<&str> = CATALOGUE
        .iter()
        .filter(|m| m.kind == MetricKind::Counter)
        .map(|m| m.name)
        .collect();
    let mut names = BTreeSet::new();
    for s in &series {
        let name = s.labels["__name__"].as_str();
        names.insert(name.to_string());
        assert!(s.labels.contains_key("service") && s.labels["namespace"] == "prod");
        assert_eq!(s.labels["job"], s.labels["service"]);
        assert!(
            s.samples.windows(2).all(|p| p[1].0 > p[0].0),
            "{name}: timestamps not increasing"
        );
        assert!(
            s.samples.iter().all(|p| p.1.is_finite()),
            "{name}: not finite"
        );
        if counters.contains(name) || name.starts_with("http_request_duration_seconds_") {
            assert!(
                s.samples.windows(2).all(|p| p[1].1 >= p[0].1),
                "{name} {:?} decreases",
                s.labels
            );
        }
    }
    // Every rendered family is in the catalogue.
    for n in &names {
        let family = n
            .strip_suffix("_bucket")
            .or(n.strip_suffix("_sum"))
            .or(n.strip_suffix("_count"))
            .filter(|f| f.ends_with("_seconds"))
            .unwrap_or(n);
        assert!(
            CATALOGUE.iter().any(|m| m.name == family),
            "{n} not in the catalogue"
        );
    }
    for svc in ["web", "api", "worker"] {
        let buckets: Vec<&MetricSeries> = series
            .iter()
            .filter(|s| {
                s.labels["__name__"] == "http_request_duration_seconds_bucket"
                    && s.labels["service"] == svc
            })
            .collect();
        assert_eq!(buckets.len(), 12, "{svc}: 11 bounds and +Inf");
        let count = series
            .iter()
            .find(|s| {
                s.labels["__name__"] == "http_request_duration_seconds_count"
                    && s.labels["service"] == svc
            })
            .expect("count");
        for k in 0..count.samples.len() {
            let mut by_le: Vec<(f64, f64)> = buckets
                .iter()
                .map(|s| {
                    (
                        s.labels["le"].parse::<f64>().unwrap_or(f64::INFINITY),
                        s.samples[k].1,
                    )
                })
                .collect();
            by_le.sort_by(|a, b| a.0.total_cmp(&b.0));
            assert!(
                by_le.windows(2).all(|p| p[1].1 >= p[0].1),
                "{svc}: buckets decrease in le"
            );
            assert_eq!(
                by_le.last().expect("+Inf").1,
                count.samples[k].1,
                "{svc}: _count != +Inf"
            );
        }
    }
    // The external provider is not scraped as a deployment.
    assert!(
        !series
            .iter()
            .any(|s| s.labels["service"] == "psp" && s.labels["__name__"].starts_with("kube_"))
    );
}

#[test]
fn rendering_is_deterministic_and_clones_render_alike() {
    let w = eventful(5);
    let fork = w.clone();
    let opts = LogOptions {
        noise: 2.0,
        max_records: usize::MAX,
    };
    let (s, e) = window(&w, 60);
    assert_eq!(
        metrics::render(&w, &|_| true, s, e),
        metrics::render(&w, &|_| true, s, e)
    );
    assert_eq!(
        metrics::render(&w, &|_| true, s, e),
        metrics::render(&fork, &|_| true, s, e)
    );
    assert_eq!(
        logs::render(&w, s, e, &opts),
        logs::render(&fork, s, e, &opts)
    );
    let again = eventful(5);
    assert_eq!(
        logs::render(&w, s, e, &opts),
        logs::render(&again, s, e, &opts)
    );
    let t = w.tick_count() - 3;
    assert_eq!(
        traces::traces_at(&w, t, 100),
        traces::traces_at(&fork, t, 100)
    );
    assert_ne!(
        logs::render(&w, s, e, &opts),
        logs::render(&eventful(6), s, e, &opts),
        "another seed renders other lines"
    );
    // A sub-window renders the same lines as the matching part of a wider one.
    let mid = s + (e - s) / 2;
    let wide: Vec<LogRecord> = logs::render(&w, s, e, &opts)
        .into_iter()
        .filter(|l| l.t_ms >= mid)
        .collect();
    assert_eq!(wide, logs::render(&w, mid, e, &opts));
}

#[test]
fn the_name_filter_selects_series() {
    let w = world(1);
    let only_buckets = metrics::render(
        &w,
        &|n| n == "http_request_duration_seconds_bucket",
        i64::MIN,
        i64::MAX,
    );
    assert!(!only_buckets.is_empty());
    assert!(
        only_buckets
            .iter()
            .all(|s| s.labels["__name__"] == "http_request_duration_seconds_bucket")
    );
    let family = metrics::render(
        &w,
        &|n| n == "http_request_duration_seconds",
        i64::MIN,
        i64::MAX,
    );
    let names: BTreeSet<&str> = family
        .iter()
        .map(|s| s.labels["__name__"].as_str())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    let up = metrics::render(&w, &|n| n == "up", i64::MIN, i64::MAX);
    assert!(up.iter().all(|s| s.labels["__name__"] == "up"));
    assert_eq!(
        up[0].samples.len(),
        w.history().end_tick() as usize - w.history().first_tick() as usize
    );
    let (s, e) = window(&w, 5);
    let recent = metrics::render(&w, &|n| n == "up", s, e);
    assert_eq!(recent[0].samples.len(), 20, "one sample per 15 s tick");
}

#[test]
fn histogram_rendering_is_cheap() {
    let w = world(2);
    let mut w = w;
    w.run(400);
    let start = std::time::Instant::now();
    let series = metrics::render(
        &w,
        &|n| n == "http_request_duration_seconds_bucket",
        i64::MIN,
        i64::MAX,
    );
    let took = start.elapsed();
    assert!(!series.is_empty());
    eprintln!(
        "histogram buckets of {} services over {} ticks: {took:?}",
        w.topology().len(),
        w.tick_count()
    );
    // Generous for unoptimised builds; release builds take a few milliseconds.
    assert!(took.as_millis() < 2_000, "{took:?}");
}

#[test]
fn a_restart_logs_a_termination_and_a_start_and_renames_pods() {
    let mut w = world(7);
    let api = id(&w, "api");
    let before = ((w.epoch_unix_s() as f64 + w.now_s()) * 1000.0) as i64;
    let old_pods: BTreeSet<String> = metrics::render(
        &w,
        &|n| n == "container_memory_working_set_bytes",
        before - 1,
        before,
    )
    .into_iter()
    .filter(|s| s.labels["service"] == "api")
    .map(|s| s.labels["pod"].clone())
    .collect();
    assert_eq!(old_pods.len(), 2);
    w.apply(
        &Operation::Restart {
            service: api,
            memory_mb: None,
            cpu_millis: None,
        },
        &Actor::oncall(),
    )
    .expect("restart");
    w.run(8);
    let lines: Vec<LogRecord> =
        logs::render(&w, before - 1, before + 3_600_000, &LogOptions::default())
            .into_iter()
            .filter(|l| l.service == "api")
            .collect();
    let events: Vec<&str> = lines.iter().map(|l| l.event).collect();
    assert!(events.contains(&"pod_terminated"), "{events:?}");
    assert!(events.contains(&"container_started"), "{events:?}");
    assert!(events.contains(&"container_ready"), "{events:?}");
    let terminated: BTreeSet<String> = lines
        .iter()
        .filter(|l| l.event == "pod_terminated")
        .filter_map(|l| l.pod.clone())
        .collect();
    assert_eq!(
        terminated, old_pods,
        "the pods that stop are the pods the metrics showed"
    );
    let started: BTreeSet<String> = lines
        .iter()
        .filter(|l| l.event == "container_started")
        .filter_map(|l| l.pod.clone())
        .collect();
    assert!(started.is_disjoint(&old_pods), "new pods get new names");
    let now = ((w.epoch_unix_s() as f64 + w.now_s()) * 1000.0) as i64;
    let new_pods: BTreeSet<String> = metrics::render(
        &w,
        &|n| n == "container_memory_working_set_bytes",
        now - 1,
        now,
    )
    .into_iter()
    .filter(|s| s.labels["service"] == "api")
    .map(|s| s.labels["pod"].clone())
    .collect();
    assert_eq!(new_pods, started);
    let start_line = lines
        .iter()
        .find(|l| l.event == "container_started")
        .expect("start");
    assert!(
        start_line.message.contains("v2.3.1"),
        "{}",
        start_line.message
    );
    assert!(
        logs::audit_log(&w)
            .iter()
            .any(|c| c.actor == "oncall" && c.kind == "restart")
    );
}

/// `container_memory_working_set_bytes` is, per pod, the frames' memory of its slot at the ticks its container
/// ran: checked against a walk of every slot and tick, through restarts and a scale-up that replace pods.
#[test]
fn working_set_series_are_each_pods_memory_by_slot() {
    for w in [eventful(3), eventful(8)] {
        let end = metrics::tick_ms(&w, w.tick_count());
        let start = end - 45 * 60_000;
        let pods = metrics::PodNames::new(&w);
        let mut expected: std::collections::BTreeMap<(String, String), Vec<(i64, f64)>> =
            Default::default();
        let ring = w.history();
        for (i, svc) in w.topology().services.iter().enumerate() {
            // A third party's pods are not ours to scrape.
            if svc.kind() == firedrill_world::spec::ServiceKind::External {
                continue;
            }
            let id = firedrill_world::ServiceId(i as u16);
            for slot in 0..16 {
                for t in metrics::window_ticks(&w, start, end) {
                    let Some(f) = ring.get(t, i) else { continue };
                    let mb = f.replica_memory_mb[slot];
                    if mb > 0.0 {
                        let world_ms = (t as f64 * w.tick_s() * 1000.0).round() as i64;
                        expected
                            .entry((svc.name().to_string(), pods.name(id, slot, world_ms)))
                            .or_default()
                            .push((metrics::tick_ms(&w, t), (mb as f64 * 1_048_576.0).round()));
                    }
                }
            }
        }
        let got: std::collections::BTreeMap<(String, String), Vec<(i64, f64)>> = metrics::render(
            &w,
            &|n| n == "container_memory_working_set_bytes",
            start,
            end,
        )
        .into_iter()
        .map(|s| {
            (
                (s.labels["service"].clone(), s.labels["pod"].clone()),
                s.samples,
            )
        })
        .collect();
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>()
        );
        for (k, v) in &expected {
            assert_eq!(got[k].len(), v.len(), "{k:?}");
            assert!(got[k] == *v, "{k:?}");
        }
        // The window saw pods replaced: some slot held two pods.
        assert!(got.len() > w.topology().services.len() + 4, "{}", got.len());
    }
}

#[test]
fn failure_lines_carry_the_real_parameters() {
    let mut w = world(11);
    let (web, api) = (id(&w, "web"), id(&w, "api"));
    w.apply(
        &Operation::SetConfig {
            service: web,
            key: "dns.resolver".into(),
            value: "10.0.0.53".into(),
        },
        &Actor("deploy-bot".into()),
    )
    .expect("config");
    w.run(6);
    w.apply(
        &Operation::SetConfig {
            service: web,
            key: "dns.resolver".into(),
            value: "10.96.0.10".into(),
        },
        &Actor::oncall(),
    )
    .expect("config back");
    w.run(6);
    let lines = all_logs(&w, 1.0);
    let dns: Vec<&LogRecord> = lines
        .iter()
        .filter(|l| l.event == "dns_resolution")
        .collect();
    assert!(!dns.is_empty());
    for l in &dns {
        assert_eq!(l.service, "web");
        // Lines written while the bad resolver was configured name it, even after it was fixed.
        assert!(
            l.message
                .contains("lookup api.prod.svc.cluster.local on 10.0.0.53:53"),
            "{}",
            l.message
        );
    }
    let reload = lines
        .iter()
        .find(|l| {
            l.event == "config_reloaded"
                && l.fields.get("actor").map(String::as_str) == Some("deploy-bot")
        })
        .expect("config reload");
    assert!(
        reload
            .message
            .contains("dns.resolver changed from 10.96.0.10 to 10.0.0.53"),
        "{}",
        reload.message
    );

    // A version that leaks connections exhausts a pool of 10.
    w.apply(
        &Operation::Deploy {
            service: api,
            version: 1,
        },
        &Actor("deploy-bot".into()),
    )
    .expect("deploy");
    w.run(120);
    let lines = all_logs(&w, 1.0);
    let pool = lines
        .iter()
        .find(|l| l.event == "pool_timeout" && l.message.starts_with("could not acquire"))
        .expect("pool timeout line");
    assert_eq!(pool.service, "api");
    assert!(
        pool.message
            .contains("from pool db within 1000ms (pool 10/10 in use)"),
        "{}",
        pool.message
    );
    assert!(
        lines
            .iter()
            .any(|l| l.event == "rollout_started" && l.message.contains("from v2.3.1 to v2.4.0"))
    );
    let history = logs::deploy_history(&w);
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].summary, "deployed api from v2.3.1 to v2.4.0");
    assert_eq!(history[0].actor, "deploy-bot");
}

#[test]
fn healthy_services_warn_too() {
    let w = world(4);
    let lines = all_logs(&w, 1.0);
    let warners: BTreeSet<&str> = lines
        .iter()
        .filter(|l| l.level >= Level::Warn)
        .map(|l| l.service.as_str())
        .collect();
    assert!(warners.len() >= 3, "only {warners:?} warn");
    assert!(lines.iter().any(|l| l.level == Level::Info));
    assert!(
        !lines.iter().any(|l| l.service == "psp"),
        "a third party's logs are not ours"
    );
    let quiet = all_logs(&w, 0.0);
    assert!(quiet.len() < lines.len());
}

fn assert_clean(text: &str) {
    let forbidden_phrases = [
        "root cause",
        "rollback will",
        "restart will",
        "will fix",
        "should",
        "consider",
        "try restarting",
        "red herring",
        "traffic surge",
        "noisy neighbo",
    ];
    let forbidden_words = [
        "fault",
        "faults",
        "faulty",
        "inject",
        "injected",
        "injection",
        "chaos",
        "leak",
        "leaks",
        "leaking",
        "leaked",
        "misconfigured",
        "misconfiguration",
        "culprit",
        "perturbation",
        "detached",
    ];
    let lower = text.to_lowercase();
    for p in forbidden_phrases {
        assert!(!lower.contains(p), "{p:?} in {text}");
    }
    for word in lower.split(|c: char| !c.is_ascii_alphanumeric()) {
        assert!(!forbidden_words.contains(&word), "{word:?} in {text}");
    }
    for class in FaultClass::ALL {
        assert!(
            !lower.contains(class.as_str()),
            "class {} in {text}",
            class.as_str()
        );
    }
}

#[test]
fn no_rendered_text_names_a_cause_or_prescribes_a_fix() {
    for seed in 0..3 {
        let w = eventful(seed);
        let lines = all_logs(&w, 3.0);
        let events: BTreeSet<&str> = lines.iter().map(|l| l.event).collect();
        for l in &lines {
            assert_clean(&l.logfmt());
            assert_clean(&l.json());
        }
        for c in logs::audit_log(&w) {
            assert_clean(&format!(
                "{} {} {} {}",
                c.actor, c.service, c.kind, c.summary
            ));
        }
        for s in all_series(&w) {
            assert_clean(&format!("{:?}", s.labels));
        }
        for m in CATALOGUE {
            assert_clean(&format!("{} {} {}", m.name, m.help, m.unit));
        }
        for t in w.history().first_tick()..w.history().end_tick() {
            for tr in traces::traces_at(&w, t, 8) {
                for s in &tr.spans {
                    assert_clean(&format!("{} {} {:?}", s.service, s.name, s.attributes));
                }
            }
        }
        // The perturbations nobody can observe directly are not logged as such...
        assert!(!events.contains("traffic_shift"));
        assert!(
            !lines
                .iter()
                .any(|l| l.service == "worker" && l.message.contains("network"))
        );
        // ...while their consequences are.
        assert!(events.contains("cpu_throttled"), "{events:?}");
        assert!(events.contains("tls_handshake"), "{events:?}");
        assert!(
            events.contains("certificate_issued") || seed > 0 || events.contains("tls_handshake")
        );
    }
}

#[test]
fn traces_are_found_again_by_id() {
    let w = eventful(2);
    let end = w.history().end_tick();
    let mut seen = 0;
    let mut errors = 0;
    for t in end - 40..end {
        for tr in traces::traces_at(&w, t, usize::MAX) {
            seen += 1;
            errors += tr.has_error() as usize;
            assert_eq!(tr.trace_id.len(), 32);
            assert_eq!(traces::find_trace(&w, &tr.trace_id).as_ref(), Some(&tr));
            assert_eq!(
                traces::find_trace(&w, &tr.trace_id.to_uppercase()).as_ref(),
                Some(&tr)
            );
            let root = tr.root().expect("root");
            assert!(root.parent_span_id.is_none());
            assert_eq!(root.kind, SpanKind::Server);
            assert_eq!(root.service, "web");
            let ids: BTreeSet<&str> = tr.spans.iter().map(|s| s.span_id.as_str()).collect();
            assert_eq!(ids.len(), tr.spans.len(), "span ids unique");
            for s in tr.spans.iter().skip(1) {
                let parent = tr
                    .spans
                    .iter()
                    .find(|p| Some(&p.span_id) == s.parent_span_id.as_ref())
                    .expect("parent in trace");
                assert!(s.start_ns >= parent.start_ns);
                assert_eq!(s.span_id.len(), 16);
                assert!(s.duration_ns > 0);
                if s.kind == SpanKind::Client {
                    assert!(s.attributes.contains_key("peer.service"));
                }
                if s.status == SpanStatus::Error {
                    assert!(s.attributes.contains_key("error.type"), "{s:?}");
                }
            }
        }
    }
    assert!(seen >= 40);
    assert!(errors > 0, "an eventful world has failing requests");
    assert!(traces::find_trace(&w, "00000000000000000000000000000000").is_none());
    assert!(traces::find_trace(&w, "not-a-trace").is_none());
    let one = traces::traces_at(&w, end - 1, 1).remove(0);
    assert!(
        traces::find_trace(&world(99), &one.trace_id).is_none(),
        "ids are per world"
    );
    let between = traces::traces_between(&w, i64::MIN / 4, i64::MAX / 4, 10);
    assert_eq!(between.len(), 10);
}

#[test]
fn a_pool_timeout_shows_in_traces_as_a_call_that_never_reached_the_database() {
    let mut w = world(13);
    let api = id(&w, "api");
    w.apply(
        &Operation::Deploy {
            service: api,
            version: 1,
        },
        &Actor("deploy-bot".into()),
    )
    .expect("deploy");
    w.run(160);
    let end = w.history().end_tick();
    let found = (end - 40..end)
        .flat_map(|t| traces::traces_at(&w, t, usize::MAX))
        .any(|tr| {
            tr.spans.iter().any(|s| {
                s.kind == SpanKind::Client
                    && s.attributes.get("error.type").map(String::as_str) == Some("pool_timeout")
                    && s.attributes.get("peer.service").map(String::as_str) == Some("db")
            })
        });
    assert!(found, "no trace shows a pool timeout");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn log_rendering_never_panics(start in -10_000_000i64..10_000_000, len in -1_000_000i64..20_000_000,
                                  noise in -1.0f64..5.0, max in 0usize..500) {
        let w = WORLD.with(|w| w.clone());
        let base = w.epoch_unix_s() * 1000;
        let out = logs::render(&w, base + start, base + start + len, &LogOptions { noise, max_records: max });
        prop_assert!(out.len() <= max);
        prop_assert!(out.windows(2).all(|p| p[0].t_ms <= p[1].t_ms));
        prop_assert!(out.iter().all(|l| l.t_ms >= base + start && l.t_ms < base + start + len));
        let _ = metrics::render(&w, &|_| true, base + start, base + start + len);
    }
}

thread_local! {
    static WORLD: World = eventful(21);
}

/// The eventful world with the log pipeline overloaded too (its collector starved of CPU), so the pipeline drops
/// a share of every service's lines.
fn dropping(seed: u64) -> World {
    let mut w = eventful(seed);
    let collector = id(&w, "logs");
    w.perturb(&Perturbation::CpuShare {
        service: collector,
        share: 0.02,
    });
    w.run(12);
    w
}

/// A world with a second entry point (`admin`) whose calls never reach `api`, and whose traces `web`'s never
/// share past the root, so service-scoped trace outlines skip whole entry points.
fn two_entries(seed: u64) -> World {
    let mut j = spec_json();
    j["entrypoints"]
        .as_array_mut()
        .expect("entrypoints")
        .push(serde_json::json!({ "service": "admin", "rps": 30 }));
    j["services"]
        .as_array_mut()
        .expect("services")
        .push(serde_json::json!(
            { "name": "admin", "kind": "edge", "version": "v0.9.0", "versions": [{ "name": "v0.9.0" }],
              "calls": [{ "to": "logs", "timeout_ms": 500 }] }
        ));
    let spec: TopologySpec = serde_json::from_value(j).expect("spec");
    let topology = Arc::new(Topology::compile(&spec, &SpecPath::root()).expect("topology"));
    let mut w = World::new(topology, seed, WorldOptions::default());
    w.run(60);
    let api = id(&w, "api");
    w.perturb(&Perturbation::Outage {
        service: id(&w, "psp"),
        error_ratio: 0.6,
        latency_factor: 4.0,
    });
    w.apply(
        &Operation::SetFlag {
            service: api,
            flag: 0,
            enabled: true,
        },
        &Actor("deploy-bot".into()),
    )
    .expect("flag");
    w.run(40);
    w
}

/// Windows ending now: 1, 5, 15 and 60 minutes, one that ends 7.5 minutes ago, and everything held.
fn windows(w: &World) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = [1, 5, 15, 60].iter().map(|&m| window(w, m)).collect();
    let (s, e) = window(w, 20);
    out.push((s, e - 450_000));
    out.push((i64::MIN / 4, i64::MAX / 4));
    out
}

#[test]
fn service_scoped_logs_are_the_full_render_filtered() {
    let worlds = [eventful(3), dropping(5), two_entries(8)];
    assert!(
        (worlds[1].history().first_tick()..worlds[1].history().end_tick()).any(|t| worlds[1]
            .history()
            .tick(t)
            .is_some_and(|fs| fs.iter().any(|f| f.log_drop_ratio > 0.05))),
        "the pipeline must be dropping lines for this test to mean anything"
    );
    let mut compared = 0;
    for w in &worlds {
        for (start, end) in windows(w) {
            for noise in [0.0, 1.0, 4.0] {
                let opts = LogOptions {
                    noise,
                    max_records: usize::MAX,
                };
                let full = logs::render(w, start, end, &opts);
                for svc in &w.topology().services {
                    let sid = id(w, svc.name());
                    let want: Vec<LogRecord> = full
                        .iter()
                        .filter(|r| r.service == svc.name())
                        .cloned()
                        .collect();
                    let got = logs::render_service(w, sid, start, end, &opts);
                    assert_eq!(
                        got,
                        want,
                        "{} in [{start}, {end}) noise {noise}",
                        svc.name()
                    );
                    compared += got.len();
                    // The cap keeps the newest of this service's lines.
                    let capped = logs::render_service(
                        w,
                        sid,
                        start,
                        end,
                        &LogOptions {
                            noise,
                            max_records: 3,
                        },
                    );
                    assert_eq!(capped, want[want.len().saturating_sub(3)..]);
                }
            }
        }
        assert!(
            logs::render_service(
                w,
                ServiceId(999),
                i64::MIN / 4,
                i64::MAX / 4,
                &LogOptions::default()
            )
            .is_empty()
        );
    }
    assert!(compared > 1_000, "only {compared} lines compared");
}

#[test]
fn service_scoped_metrics_are_the_full_render_filtered() {
    let worlds = [eventful(3), dropping(5), two_entries(8)];
    let filters: [&dyn Fn(&str) -> bool; 3] = [
        &|_| true,
        &|n| !n.starts_with("http_request_duration_seconds"),
        &|n| n == "http_requests_total" || n == "container_memory_working_set_bytes",
    ];
    let mut compared = 0;
    for w in &worlds {
        for (start, end) in windows(w) {
            for wanted in filters {
                let full = metrics::render(w, wanted, start, end);
                for svc in &w.topology().services {
                    let want: Vec<MetricSeries> = full
                        .iter()
                        .filter(|s| s.labels["service"] == svc.name())
                        .cloned()
                        .collect();
                    let got = metrics::render_service(w, wanted, id(w, svc.name()), start, end);
                    assert_eq!(got, want, "{} in [{start}, {end})", svc.name());
                    compared += got.len();
                }
                // The unordered render holds the same series, only in another order.
                let mut unordered = metrics::render_unordered(w, wanted, start, end);
                unordered.sort_by(|a, b| a.labels.cmp(&b.labels));
                assert_eq!(unordered, full, "unordered render in [{start}, {end})");
            }
        }
        assert!(
            metrics::render_service(w, &|_| true, ServiceId(999), i64::MIN, i64::MAX).is_empty()
        );
    }
    assert!(compared > 1_000, "only {compared} series compared");
}

/// A sink that takes every series sample by sample: the trait's own `dense` and `dense_run`.
struct Plain(Vec<(metrics::SeriesKey, Vec<(i64, u64)>)>);

impl metrics::SampleSink for Plain {
    fn series(&mut self, key: metrics::SeriesKey, samples: &[metrics::TickSample]) {
        self.0
            .push((key, samples.iter().map(|s| (s.ms, s.v.to_bits())).collect()));
    }
}

/// Series handed over as columns of values (by the renderer, to sinks that take them so) are the samples a sink
/// taking them one by one gets, bit for bit, in the same order.
#[test]
fn sinks_taking_columns_get_the_samples_of_sinks_taking_samples() {
    let worlds = [eventful(3), dropping(5), two_entries(8)];
    let mut compared = 0;
    for w in &worlds {
        for (start, end) in windows(w) {
            let mut plain = Plain(Vec::new());
            metrics::render_into(w, metrics::SeriesName::ALL, start, end, &mut plain);
            let keyed: Vec<(metrics::SeriesKey, Vec<(i64, u64)>)> =
                metrics::render_keyed(w, &|_| true, start, end)
                    .into_iter()
                    .map(|s| {
                        let samples = s.samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
                        (s.key, samples)
                    })
                    .collect();
            assert_eq!(plain.0, keyed, "[{start}, {end}]");
            compared += keyed.len();
        }
    }
    assert!(compared > 1_000, "only {compared} series compared");
}

/// A render leaving out some services of some names is the full render without exactly those series; and a
/// family's labels are on every series of it, under names its own labels never use.
#[test]
fn renders_leaving_services_out_are_the_full_render_without_them() {
    use metrics::SeriesName as N;
    for w in [eventful(3), two_entries(8)] {
        let n = w.topology().len();
        let odd: Vec<bool> = (0..n).map(|i| i % 2 == 1).collect();
        let first: Vec<bool> = (0..n).map(|i| i == 0).collect();
        let excluded = [(N::HttpRequestsTotal, &odd[..]), (N::Up, &first[..])];
        for (start, end) in windows(&w) {
            let mut full = Plain(Vec::new());
            metrics::render_into(&w, metrics::SeriesName::ALL, start, end, &mut full);
            let mut some = Plain(Vec::new());
            metrics::render_into_excluding(
                &w,
                metrics::SeriesName::ALL,
                &excluded,
                start,
                end,
                &mut some,
            );
            let expected: Vec<_> = full
                .0
                .iter()
                .filter(|(key, _)| {
                    !excluded
                        .iter()
                        .any(|(name, out)| key.name() == *name && out[key.service().index()])
                })
                .cloned()
                .collect();
            assert!(expected.len() < full.0.len());
            assert_eq!(some.0, expected, "[{start}, {end}]");
        }
        for (key, _) in metrics::render_keyed(&w, &|_| true, i64::MIN / 4, i64::MAX / 4)
            .into_iter()
            .map(|s| (s.key, ()))
        {
            let family = metrics::family_labels(&w, key.name(), key.service());
            let labels = metrics::series_labels(&w, key).expect("labels");
            for (name, value) in &family {
                assert_eq!(labels.get(*name), Some(value), "{key:?} {name}");
            }
            assert!(family.iter().any(|(name, _)| *name == "job"));
        }
    }
}

#[test]
fn trace_outlines_pick_the_traces_a_full_render_filters() {
    let worlds = [eventful(2), dropping(6), two_entries(9)];
    let (mut kept, mut left_out, mut errors) = (0, 0, 0);
    for w in &worlds {
        for (start, end) in windows(w) {
            for max in [usize::MAX, 20_000, 37, 5, 1] {
                let full = traces::traces_between(w, start, end, max);
                let through: Vec<Option<&str>> = std::iter::once(None)
                    .chain(w.topology().services.iter().map(|s| Some(s.name())))
                    .collect();
                for name in through {
                    let want: Vec<&traces::Trace> = full
                        .iter()
                        .filter(|t| name.is_none_or(|n| t.spans.iter().any(|s| s.service == n)))
                        .collect();
                    let outlines =
                        traces::outlines_between(w, start, end, max, name.map(|n| id(w, n)));
                    let what = format!("{name:?} in [{start}, {end}) max {max}");
                    assert_eq!(outlines.len(), want.len(), "{what}");
                    for (o, t) in outlines.iter().zip(&want) {
                        assert_eq!(o.error, t.has_error(), "{what}");
                        assert_eq!(Some(o.start_ns), t.root().map(|r| r.start_ns), "{what}");
                    }
                    let built = traces::build_traces(w, &outlines);
                    assert_eq!(built.iter().collect::<Vec<_>>(), want, "{what}");
                    // What the environment builds: the newest few.
                    let newest = traces::build_traces(w, outlines.iter().rev().take(8));
                    assert!(
                        newest.iter().eq(want.iter().rev().take(8).copied()),
                        "{what}"
                    );
                    if name.is_some() {
                        kept += want.len();
                        left_out += full.len() - want.len();
                        errors += want.iter().filter(|t| t.has_error()).count();
                    }
                }
            }
        }
    }
    assert!(
        kept > 1_000 && left_out > 1_000 && errors > 100,
        "{kept} {left_out} {errors}"
    );
}

/// A world whose client settings change twice: `api` calls with a 40 ms timeout (every call to `psp` times
/// out), then `web` stops retrying and `api` retries three times with a 2 s timeout.
fn reconfigured(seed: u64) -> World {
    let mut w = world(seed);
    let (api, web) = (id(&w, "api"), id(&w, "web"));
    let set = |w: &mut World, service, key: &str, value: &str| {
        w.apply(
            &Operation::SetConfig {
                service,
                key: key.into(),
                value: value.into(),
            },
            &Actor::oncall(),
        )
        .expect("config");
    };
    w.perturb(&Perturbation::Outage {
        service: id(&w, "psp"),
        error_ratio: 0.4,
        latency_factor: 1.0,
    });
    w.run(6);
    set(&mut w, api, "http.client.timeout_ms", "40");
    w.run(6);
    set(&mut w, web, "http.client.retries", "0");
    set(&mut w, api, "http.client.retries", "3");
    set(&mut w, api, "http.client.timeout_ms", "2000");
    w.run(6);
    w
}

#[test]
fn traces_of_a_window_are_the_traces_found_alone() {
    // A window's walks share each tick's client settings; a trace found by id reads them afresh.
    let (mut timeouts, mut third_retries) = (0, 0);
    for w in [
        reconfigured(1),
        reconfigured(4),
        eventful(2),
        two_entries(9),
    ] {
        let all = traces::traces_between(&w, i64::MIN / 4, i64::MAX / 4, usize::MAX);
        for t in &all {
            assert_eq!(traces::find_trace(&w, &t.trace_id).as_ref(), Some(t));
        }
        for s in all.iter().flat_map(|t| &t.spans) {
            let attr = |k: &str| s.attributes.get(k).map(String::as_str);
            if s.service == "api" && attr("peer.service") == Some("psp") {
                timeouts += (attr("error.type") == Some("timeout")) as usize;
                third_retries += (attr("http.request.resend_count") == Some("3")) as usize;
            }
        }
    }
    assert!(
        timeouts > 20 && third_retries > 0,
        "{timeouts} {third_retries}"
    );
}

/// A world whose requests fan out: `gw` calls `a` once or twice (with retries, and `a` fails a share of its
/// requests), `x` and `c`; `a` calls `b`, the database and `c`; `b` calls `c` with retries. So `b` is reached
/// only through `a`, on any of its calls or retries, and `c` along several paths and at several depths; many
/// requests reach neither, and failures at `a`, `c` and the database make retries and failed spans.
fn fanout(seed: u64) -> World {
    let svc = |name: &str, kind: &str, calls: serde_json::Value| {
        serde_json::json!({ "name": name, "kind": kind, "version": "v1", "versions": [{ "name": "v1" }],
                            "capacity_rps": 400, "latency_ms": 5, "calls": calls })
    };
    let mut a = svc(
        "a",
        "service",
        serde_json::json!([
            { "to": "b", "per_request": 0.4, "timeout_ms": 1000, "retries": 1 },
            { "to": "db", "per_request": 1.5, "timeout_ms": 500, "pool": 10, "hold_ms": 2 },
            { "to": "c", "per_request": 0.5, "timeout_ms": 800 }
        ]),
    );
    a["flags"] = serde_json::json!([{ "name": "new-checkout", "when_on": { "error_ratio": 0.3 } }]);
    let spec = serde_json::json!({
        "tick_s": 15,
        "cluster": { "cpu_millis": 32000, "memory_mb": 32768 },
        "entrypoints": [{ "service": "edge", "rps": 100 }],
        "services": [
            svc("edge", "edge", serde_json::json!([{ "to": "gw", "timeout_ms": 3000 }])),
            svc("gw", "gateway", serde_json::json!([
                { "to": "a", "per_request": 1.6, "timeout_ms": 2000, "retries": 2 },
                { "to": "x", "per_request": 0.5, "timeout_ms": 1000 },
                { "to": "c", "per_request": 0.2, "timeout_ms": 1000, "retries": 1 }
            ])),
            a,
            svc("b", "service", serde_json::json!([
                { "to": "c", "per_request": 0.7, "timeout_ms": 500, "retries": 2 }
            ])),
            svc("c", "service", serde_json::json!([{ "to": "db", "timeout_ms": 300 }])),
            svc("x", "service", serde_json::json!([])),
            { "name": "db", "kind": "database", "replicas": 1, "capacity_rps": 3000, "latency_ms": 2,
              "max_connections": 200, "version": "15.4", "versions": [{ "name": "15.4" }] }
        ]
    });
    let spec: TopologySpec = serde_json::from_value(spec).expect("spec");
    let topology = Arc::new(Topology::compile(&spec, &SpecPath::root()).expect("topology"));
    let mut w = World::new(topology, seed, WorldOptions::default());
    w.run(40);
    let a = id(&w, "a");
    w.apply(
        &Operation::SetFlag {
            service: a,
            flag: 0,
            enabled: true,
        },
        &Actor::oncall(),
    )
    .expect("flag");
    w.perturb(&Perturbation::Outage {
        service: id(&w, "c"),
        error_ratio: 0.3,
        latency_factor: 2.0,
    });
    w.run(30);
    w
}

#[test]
fn newest_traces_through_a_service_are_the_outlines_filtered() {
    let worlds = [
        fanout(1),
        fanout(7),
        reconfigured(3),
        eventful(2),
        dropping(6),
        two_entries(9),
    ];
    let (mut matched_total, mut errors_total) = (0, 0);
    for w in &worlds {
        for (start, end) in windows(w) {
            for max in [usize::MAX, 20_000, 37, 5, 1, 0] {
                for svc in &w.topology().services {
                    let sid = id(w, svc.name());
                    let outlines = traces::outlines_between(w, start, end, max, Some(sid));
                    for errors_only in [false, true] {
                        let want: Vec<&traces::TraceOutline> = outlines
                            .iter()
                            .filter(|o| !errors_only || o.error)
                            .collect();
                        for newest in [0, 1, 3, 8, 1_000] {
                            let what = format!(
                                "{} in [{start}, {end}) max {max} errors_only {errors_only} newest {newest}",
                                svc.name()
                            );
                            let mut query = traces::ThroughQuery {
                                through: sid,
                                errors_only,
                                newest,
                                detail: traces::SpanDetail::Full,
                            };
                            let (matched, built) =
                                traces::newest_through(w, start, end, max, &query);
                            assert_eq!(matched, want.len(), "{what}");
                            let mut expected =
                                traces::build_traces(w, want.iter().rev().take(newest).copied());
                            assert_eq!(built, expected, "{what}");
                            // Without attributes: the same traces, every span's map left empty.
                            query.detail = traces::SpanDetail::NoAttributes;
                            let (matched, bare) =
                                traces::newest_through(w, start, end, max, &query);
                            assert_eq!(matched, want.len(), "{what}");
                            for s in expected.iter_mut().flat_map(|t| &mut t.spans) {
                                s.attributes.clear();
                            }
                            assert_eq!(bare, expected, "{what}");
                        }
                        if errors_only {
                            errors_total += want.len();
                        } else {
                            matched_total += want.len();
                        }
                    }
                }
            }
        }
    }
    assert!(
        matched_total > 1_000 && errors_total > 100,
        "{matched_total} {errors_total}"
    );
}

#[test]
fn newest_lines_of_a_service_are_the_render_filtered() {
    // `reconfigured` logs `api` at debug from its last change on; `fanout` fails at several depths.
    let mut worlds = vec![eventful(3), dropping(5), two_entries(8), fanout(2)];
    let mut debug = reconfigured(6);
    debug
        .apply(
            &Operation::SetConfig {
                service: id(&debug, "api"),
                key: "log.level".into(),
                value: "debug".into(),
            },
            &Actor::oncall(),
        )
        .expect("config");
    debug.run(8);
    worlds.push(debug);
    let levels = [Level::Debug, Level::Info, Level::Warn, Level::Error];
    let (mut returned, mut counted) = (0, [0usize; 4]);
    for w in &worlds {
        for (start, end) in windows(w) {
            for noise in [0.0, 1.0, 4.0] {
                for max_records in [usize::MAX, 50, 3] {
                    let opts = LogOptions { noise, max_records };
                    for svc in &w.topology().services {
                        let sid = id(w, svc.name());
                        let all = logs::render_service(w, sid, start, end, &opts);
                        for (l, &min_level) in levels.iter().enumerate() {
                            let want: Vec<&LogRecord> =
                                all.iter().filter(|r| r.level >= min_level).collect();
                            for limit in [0, 1, 7, 20, 10_000] {
                                let (matched, got) = logs::newest_of_service(
                                    w, sid, start, end, &opts, min_level, limit,
                                );
                                let what = format!(
                                    "{} in [{start}, {end}) noise {noise} max {max_records} {min_level:?} limit {limit}",
                                    svc.name()
                                );
                                assert_eq!(matched, want.len(), "{what}");
                                let newest = &want[want.len().saturating_sub(limit)..];
                                assert!(got.iter().eq(newest.iter().copied()), "{what}");
                                returned += got.len();
                            }
                            counted[l] += want.len();
                        }
                    }
                }
            }
        }
        let everything = (i64::MIN / 4, i64::MAX / 4);
        assert_eq!(
            logs::newest_of_service(
                w,
                ServiceId(999),
                everything.0,
                everything.1,
                &LogOptions::default(),
                Level::Debug,
                10
            ),
            (0, Vec::new())
        );
    }
    assert!(
        returned > 10_000 && counted.iter().all(|&n| n > 500),
        "{returned} {counted:?}"
    );
}

/// `same_series_labels` holds where every series of the named metrics has one label set in both worlds: two
/// worlds of one topology at other seeds, after other events, agree on every series but the pods'; the pods'
/// series at another seed, or a renamed service, make it false.
#[test]
fn same_series_labels_holds_where_every_label_set_is_the_same() {
    use metrics::SeriesName;
    let (a, b) = (eventful(2), eventful(5));
    let without_pods: Vec<SeriesName> = SeriesName::ALL
        .iter()
        .copied()
        .filter(|n| *n != SeriesName::WorkingSet)
        .collect();
    assert!(metrics::same_series_labels(&a, &b, &without_pods));
    let mut compared = 0;
    for s in metrics::render_keyed(&a, &|_| true, i64::MIN / 4, i64::MAX / 4) {
        if s.key.name() != SeriesName::WorkingSet {
            let (la, lb) = (
                metrics::series_labels(&a, s.key),
                metrics::series_labels(&b, s.key),
            );
            assert_eq!(la, lb, "{:?}", s.key);
            compared += 1;
        }
    }
    assert!(compared > 50, "{compared}");
    assert!(!metrics::same_series_labels(
        &a,
        &b,
        &[SeriesName::WorkingSet]
    ));
    assert!(metrics::same_series_labels(
        &a,
        &a.clone(),
        &[SeriesName::WorkingSet]
    ));

    let mut renamed = spec_json();
    renamed["services"][6]["name"] = serde_json::json!("log-shipper");
    let spec: TopologySpec = serde_json::from_value(renamed).expect("spec");
    let topology = Arc::new(Topology::compile(&spec, &SpecPath::root()).expect("topology"));
    let other = World::new(topology, 2, WorldOptions::default());
    assert!(!metrics::same_series_labels(&a, &other, &without_pods));
}

/// A world of ticks `tick_s` long whose ring has evicted its first ticks.
fn evicting(tick_s: f64, seed: u64) -> World {
    let mut spec = spec_json();
    spec["tick_s"] = serde_json::json!(tick_s);
    let spec: TopologySpec = serde_json::from_value(spec).expect("spec");
    let topology = Arc::new(Topology::compile(&spec, &SpecPath::root()).expect("topology"));
    let options = WorldOptions {
        retention_ticks: 40,
        ..WorldOptions::default()
    };
    let mut w = World::new(topology, seed, options);
    w.run(70);
    w
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// `window_ticks` is exactly the held ticks whose timestamps lie in the window, for windows anywhere (before
    /// the ring, across its edges, on a tick's timestamp or a millisecond off it, past its end), for tick lengths
    /// that are and are not whole milliseconds.
    #[test]
    fn window_ticks_are_the_held_ticks_stamped_in_the_window(
        tick_s in prop::sample::select(vec![15.0, 2.5, 1.001, 7.3]),
        a in 0u64..90,
        a_off in -2i64..=2,
        b in 0u64..90,
        b_off in -2i64..=2,
    ) {
        let w = evicting(tick_s, 3);
        let ring = w.history();
        let (first, end) = (ring.first_tick(), ring.end_tick());
        prop_assert!(first > 0);
        let start = metrics::tick_ms(&w, a) + a_off;
        let stop = metrics::tick_ms(&w, b) + b_off;
        let want: Vec<u64> = (first..end)
            .filter(|&t| (start..=stop).contains(&metrics::tick_ms(&w, t)))
            .collect();
        let got: Vec<u64> = metrics::window_ticks(&w, start, stop).collect();
        prop_assert_eq!(got, want);
        // Far outside the ring on either side, and a window reaching over all of it.
        prop_assert!(metrics::window_ticks(&w, i64::MIN, start.min(metrics::tick_ms(&w, first) - 1)).next().is_none());
        prop_assert!(metrics::window_ticks(&w, metrics::tick_ms(&w, end) + 1, i64::MAX).next().is_none());
        prop_assert_eq!(metrics::window_ticks(&w, i64::MIN, i64::MAX), first..end);
    }
}
