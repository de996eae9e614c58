//! Typical investigation queries on a 20-service world with two hours of history.
//!
//! Run with `cargo bench -p firedrill-query --bench query`; results are written up in docs/benchmarks.md.
//!
//! The world: an edge and a gateway in front of twelve services in two layers, two databases behind
//! connection pools, a cache, a third-party payment provider and two workers on a topic (20 services, 15 s
//! ticks, 480 ticks simulated). One service fails 3 % of its requests so that error traces and error logs exist.
//! Each query renders its telemetry from the frames, as every query against a world does.

use std::sync::{Arc, OnceLock};

use firedrill_query::{LogSourceOptions, LogqlRequest, now_ms};
use firedrill_world::spec::TopologySpec;
use firedrill_world::topology::SpecPath;
use firedrill_world::{Topology, World, WorldOptions};
use serde_json::{Value, json};

fn main() {
    divan::main();
}

/// The 20-service topology, written out here so the benchmark does not depend on the scenario library.
fn spec() -> TopologySpec {
    let mut services: Vec<Value> = vec![
        json!({"name": "edge", "kind": "edge", "replicas": 3, "capacity_rps": 300, "version": "v1",
               "versions": [{"name": "v1"}], "calls": [{"to": "gateway", "timeout_ms": 5000}]}),
        json!({"name": "gateway", "kind": "gateway", "replicas": 3, "capacity_rps": 300, "version": "v1",
               "versions": [{"name": "v1"}],
               "calls": (1..=6).map(|i| json!({"to": format!("svc-{i:02}"), "per_request": 0.2,
                                                "timeout_ms": 3000, "retries": 1})).collect::<Vec<_>>()}),
    ];
    for i in 1..=6 {
        let mut calls = vec![json!({"to": format!("svc-{:02}", i + 6), "timeout_ms": 2000})];
        if i == 3 {
            calls.push(json!({"to": "psp", "per_request": 0.5, "timeout_ms": 4000}));
        }
        let mut s = json!({"name": format!("svc-{i:02}"), "kind": "service", "version": "v1",
                           "versions": [{"name": "v1"}], "calls": calls});
        if i == 1 {
            s["publishes"] =
                json!([{"topic": "events", "rate_hz": 20, "qos": {"reliability": "reliable"}}]);
        }
        services.push(s);
    }
    for i in 7..=12 {
        let db = if i % 2 == 0 { "db-a" } else { "db-b" };
        let mut s = json!({"name": format!("svc-{i:02}"), "kind": "service", "version": "v1",
                           "versions": [{"name": "v1"}],
                           "calls": [{"to": db, "per_request": 2, "pool": 20, "hold_ms": 4, "timeout_ms": 2000,
                                      "via_cache": "cache"}]});
        if i == 7 {
            s["error_ratio"] = json!(0.03);
        }
        services.push(s);
    }
    for db in ["db-a", "db-b"] {
        services.push(
            json!({"name": db, "kind": "database", "replicas": 1, "capacity_rps": 3000,
                             "version": "v1", "versions": [{"name": "v1"}]}),
        );
    }
    services.push(
        json!({"name": "cache", "kind": "cache", "capacity_rps": 5000, "version": "v1",
                         "versions": [{"name": "v1"}]}),
    );
    services.push(
        json!({"name": "psp", "kind": "external", "capacity_rps": 1000, "version": "v1",
                         "versions": [{"name": "v1"}]}),
    );
    for w in ["worker-1", "worker-2"] {
        services.push(
            json!({"name": w, "kind": "worker", "version": "v1", "versions": [{"name": "v1"}],
                             "subscribes": [{"topic": "events", "qos": {"reliability": "reliable"},
                                             "capacity_hz_per_replica": 10}]}),
        );
    }
    let doc = json!({
        "tick_s": 15,
        "cluster": {"cpu_millis": 64000, "memory_mb": 65536},
        "entrypoints": [{"service": "edge", "rps": 200}],
        "services": services,
    });
    serde_json::from_value(doc).expect("the benchmark topology deserialises")
}

/// The world after two hours of simulated history.
fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let spec = spec();
        assert_eq!(spec.services.len(), 20);
        let topology = Arc::new(
            Topology::compile(&spec, &SpecPath::root()).expect("the benchmark topology compiles"),
        );
        let mut w = World::new(topology, 11, WorldOptions::default());
        w.run(2 * 3600 / 15);
        w
    })
}

const HOUR_MS: i64 = 3_600_000;

/// `sum by (service) (rate(http_requests_total[5m]))`, instant at the end of the history.
#[divan::bench]
fn promql_rate_5m_by_service(bencher: divan::Bencher) {
    let w = world();
    let q = "sum by (service) (rate(http_requests_total[5m]))";
    let t = now_ms(w);
    let n = firedrill_query::evaluate_promql_instant(w, q, t).expect("query")["result"]
        .as_array()
        .map_or(0, Vec::len);
    assert!(n >= 15, "{n} series");
    bencher.bench(|| firedrill_query::promql_instant(w, divan::black_box(q), t));
}

/// The p99 latency per service over the last hour: a range query with a one-minute step (61 points).
#[divan::bench]
fn promql_p99_histogram_quantile_1h(bencher: divan::Bencher) {
    let w = world();
    let q = "histogram_quantile(0.99, sum by (le, service) (rate(http_request_duration_seconds_bucket[5m])))";
    let end = now_ms(w);
    let data =
        firedrill_query::evaluate_promql_range(w, q, end - HOUR_MS, end, 60_000).expect("query");
    assert!(
        data["result"].as_array().is_some_and(|r| r.len() >= 15),
        "{data}"
    );
    bencher.bench(|| {
        firedrill_query::promql_range(w, divan::black_box(q), end - HOUR_MS, end, 60_000)
    });
}

/// `sum by (level) (count_over_time({namespace="prod"}[1h]))`: every service's log lines of the last hour.
#[divan::bench]
fn logql_count_over_time_by_level_1h(bencher: divan::Bencher) {
    let w = world();
    let q = r#"sum by (level) (count_over_time({namespace="prod"}[1h]))"#;
    let req = LogqlRequest::instant(now_ms(w) * 1_000_000);
    let opts = LogSourceOptions::default();
    let data = firedrill_query::evaluate_logql(w, &opts, q, &req).expect("query");
    assert!(
        data["result"].as_array().is_some_and(|r| !r.is_empty()),
        "{data}"
    );
    bencher.bench(|| firedrill_query::logql(w, &opts, divan::black_box(q), &req));
}

/// A TraceQL search over the last hour: failed spans of one service, the 20 newest traces.
#[divan::bench]
fn traceql_search_1h(bencher: divan::Bencher) {
    let w = world();
    let q = r#"{ .service.name = "svc-07" && status = error }"#;
    let end = now_ms(w) * 1_000_000;
    let start = end - HOUR_MS * 1_000_000;
    let data = firedrill_query::search_traces(w, q, start, end, 20).expect("search");
    assert!(
        data["traces"].as_array().is_some_and(|t| !t.is_empty()),
        "{data}"
    );
    bencher.bench(|| firedrill_query::search_traces(w, divan::black_box(q), start, end, 20));
}

/// Regenerating one trace from its id.
#[divan::bench]
fn trace_by_id(bencher: divan::Bencher) {
    let w = world();
    let end = now_ms(w) * 1_000_000;
    let data =
        firedrill_query::search_traces(w, "{ }", end - 60_000_000_000, end, 1).expect("search");
    let id = data["traces"][0]["traceID"]
        .as_str()
        .expect("a trace")
        .to_string();
    bencher.bench(|| firedrill_query::trace_by_id(w, divan::black_box(&id)));
}

/// The shop topology's standard alerting rules (six PromQL rules), evaluated once at the end of the history,
/// with the request-serving job selector adapted to this world's service names.
#[divan::bench]
fn alert_rules_evaluation(bencher: divan::Bencher) {
    use firedrill_alerting::{AlertingRule, RuleEngine};
    let w = world();
    let shop = firedrill_scenario::library::builtin_topology("shop")
        .expect("the shop topology exists")
        .expect("the shop topology parses");
    let rules: Vec<AlertingRule> = shop
        .alerts
        .iter()
        .map(|s| {
            let mut s = s.clone();
            s.expr = s
                .expr
                .replace("frontend-bff|api-gateway|.+-service", "edge|gateway|svc-.+");
            AlertingRule::compile(&s, w.topology(), &SpecPath::root()).expect("rule compiles")
        })
        .collect();
    assert_eq!(rules.len(), 6);
    let engine = RuleEngine::new(rules, 1);
    let mut check = engine.clone();
    check.evaluate_now(w);
    assert!(
        (0..6).all(|r| check.rule_error(r).is_none()),
        "every rule evaluates"
    );
    bencher.bench(|| {
        let mut e = engine.clone();
        e.evaluate_now(w);
        e
    });
}
