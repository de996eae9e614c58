//! The alerting-rule sized store shared by `benches/promql.rs` and `examples/rule_eval.rs` (both include this
//! file with `#[path]`), so that the benchmark and the instruction counts read the same data.

use firedrill_promql::{Labels, MemStorage};

/// Scrape interval of the store, milliseconds.
pub const RULE_STEP_MS: i64 = 15_000;
/// Samples per series.
pub const RULE_SAMPLES: i64 = 22;
/// The error-ratio alerting expression.
pub const RULE_ERROR_RATIO: &str = r#"sum by (service) (rate(http_requests_total{code=~"5..|429"}[5m])) / sum by (service) (rate(http_requests_total[5m])) > 0.05"#;
/// The p99 latency alerting expression.
pub const RULE_P99: &str = r#"histogram_quantile(0.99, sum by (le, service) (rate(http_request_duration_seconds_bucket[5m]))) > 2"#;

/// Alerting-rule sized store: 12 services × 4 codes of `http_requests_total` and 12 services ×
/// 12 `le` buckets of `http_request_duration_seconds_bucket` (labels `service`, `job`,
/// `namespace` and `code`/`le`), 22 samples each at 15 s.
pub fn build_rule_store() -> MemStorage {
    let mut s = MemStorage::new();
    let les = [
        "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
    ];
    for svc in 0..12 {
        let service = format!("svc-{svc:02}");
        for (ci, code) in ["200", "429", "500", "503"].iter().enumerate() {
            let l = Labels::new([
                ("__name__", "http_requests_total"),
                ("service", service.as_str()),
                ("job", "api"),
                ("namespace", "prod"),
                ("code", code),
            ]);
            let mut v = 0.0;
            for i in 0..RULE_SAMPLES {
                v += if ci == 0 {
                    50.0
                } else {
                    1.0 + (svc % 3) as f64
                } + (i % 5) as f64;
                s.append(&l, i * RULE_STEP_MS, v);
            }
        }
        for (bi, le) in les.iter().enumerate() {
            let l = Labels::new([
                ("__name__", "http_request_duration_seconds_bucket"),
                ("service", service.as_str()),
                ("job", "api"),
                ("namespace", "prod"),
                ("le", le),
            ]);
            let mut v = 0.0;
            for i in 0..RULE_SAMPLES {
                v += (bi + 1 + svc) as f64 * 2.0 + (i % 3) as f64;
                s.append(&l, i * RULE_STEP_MS, v);
            }
        }
    }
    s
}
