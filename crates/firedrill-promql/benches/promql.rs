//! Typical investigation queries over a synthetic store: 20 services, 2 hours of 15 s samples.

use firedrill_promql::{Engine, EngineOptions, Labels, MemStorage};

#[path = "support/rule_store.rs"]
mod rule_store;
use rule_store::{RULE_ERROR_RATIO, RULE_P99, RULE_SAMPLES, RULE_STEP_MS, build_rule_store};

fn main() {
    divan::main();
}

const STEP: i64 = 15_000;
const HOURS2: i64 = 2 * 3600 * 1000;

fn build_store() -> MemStorage {
    let mut s = MemStorage::new();
    let les = [
        "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf",
    ];
    for svc in 0..20 {
        let service = format!("svc-{svc:02}");
        for inst in 0..5 {
            let instance = format!("i-{inst}");
            for code in ["200", "500"] {
                let l = Labels::new([
                    ("__name__", "http_requests_total"),
                    ("service", service.as_str()),
                    ("instance", instance.as_str()),
                    ("code", code),
                ]);
                let mut v = 0.0;
                for t in (0..=HOURS2).step_by(STEP as usize) {
                    v += if code == "200" { 10.0 } else { 0.5 } + (t / STEP % 7) as f64;
                    s.append(&l, t, v);
                }
            }
            for (bi, le) in les.iter().enumerate() {
                let l = Labels::new([
                    ("__name__", "http_request_duration_seconds_bucket"),
                    ("service", service.as_str()),
                    ("instance", instance.as_str()),
                    ("le", le),
                ]);
                let mut v = 0.0;
                for t in (0..=HOURS2).step_by(STEP as usize) {
                    v += (bi + 1) as f64 * 3.0 + (t / STEP % 3) as f64;
                    s.append(&l, t, v);
                }
            }
        }
    }
    s
}

#[divan::bench(sample_count = 10)]
fn rate_by_service_range(bencher: divan::Bencher) {
    let s = build_store();
    let e = Engine::new(EngineOptions::default());
    bencher.bench_local(|| {
        e.range(
            &s,
            "sum by (service) (rate(http_requests_total[5m]))",
            HOURS2 - 3600 * 1000,
            HOURS2,
            STEP,
        )
        .expect("query")
    });
}

#[divan::bench(sample_count = 10)]
fn p99_over_an_hour_range(bencher: divan::Bencher) {
    let s = build_store();
    let e = Engine::new(EngineOptions::default());
    bencher.bench_local(|| {
        e.range(
            &s,
            "histogram_quantile(0.99, sum by (service, le) (rate(http_request_duration_seconds_bucket[5m])))",
            HOURS2 - 3600 * 1000,
            HOURS2,
            STEP,
        )
        .expect("query")
    });
}

#[divan::bench(sample_count = 10)]
fn error_ratio_instant(bencher: divan::Bencher) {
    let s = build_store();
    let e = Engine::new(EngineOptions::default());
    bencher.bench_local(|| {
        e.instant(
            &s,
            "sum by (service) (rate(http_requests_total{code=~\"5..\"}[5m])) / sum by (service) (rate(http_requests_total[5m]))",
            HOURS2,
        )
        .expect("query")
    });
}

fn rule_instant(bencher: divan::Bencher, query: &str) {
    let s = build_rule_store();
    let e = Engine::new(EngineOptions::default());
    let expr = firedrill_promql::parse_query(query).expect("parse");
    let t = (RULE_SAMPLES - 1) * RULE_STEP_MS;
    bencher.bench_local(|| e.instant_expr(&s, &expr, t).expect("query"));
}

/// An error-ratio alerting rule, parsed once and evaluated at one instant.
#[divan::bench]
fn rule_error_ratio_instant(bencher: divan::Bencher) {
    rule_instant(bencher, RULE_ERROR_RATIO);
}

/// A p99-latency alerting rule over classic histogram buckets, parsed once.
#[divan::bench]
fn rule_p99_instant(bencher: divan::Bencher) {
    rule_instant(bencher, RULE_P99);
}

fn rule_prepared(bencher: divan::Bencher, query: &str) {
    let s = build_rule_store();
    let e = Engine::new(EngineOptions::default());
    let q = e.prepare(query).expect("parse");
    let t = (RULE_SAMPLES - 1) * RULE_STEP_MS;
    bencher.bench_local(|| e.instant_prepared(&s, &q, t).expect("query"));
}

/// The error-ratio rule through `Engine::instant_prepared`, as a rule evaluator runs it.
#[divan::bench]
fn rule_error_ratio_prepared(bencher: divan::Bencher) {
    rule_prepared(bencher, RULE_ERROR_RATIO);
}

/// The p99 rule through `Engine::instant_prepared`.
#[divan::bench]
fn rule_p99_prepared(bencher: divan::Bencher) {
    rule_prepared(bencher, RULE_P99);
}
