//! End-to-end tests: queries over a `MemLogSource` with structured logfmt and JSON lines,
//! checked against hand-computed Loki results.

use firedrill_logql::{
    Direction, Engine, Limits, LogSource, LogqlError, MemLogSource, QueryResult, StreamMatcher,
};
use serde_json::json;

const S: i64 = 1_000_000_000;
const T0: i64 = 1_700_000_000 * S;

/// 10 minutes of logs, one line every 10 s per stream:
/// * order-service (logfmt): 60 info lines, 20 error lines (every third tick) mentioning a timeout;
/// * payment-service (JSON): 60 lines, 6 of them (every tenth tick) slow 503s, plus one non-JSON line.
fn fixture() -> MemLogSource {
    let mut src = MemLogSource::new();
    for i in 0..60i64 {
        let ts = T0 + i * 10 * S;
        src.push_kv(
            &[("service", "order-service"), ("level", "info")],
            ts,
            format!(
                "level=info msg=\"order placed\" order_id={i} duration={}ms status=200",
                i * 10
            ),
        );
        if i % 3 == 0 {
            src.push_kv(
                &[("service", "order-service"), ("level", "error")],
                ts,
                format!(
                    "level=error msg=\"upstream timeout calling payment-service\" order_id={i} duration={}ms status=504",
                    1000 + i
                ),
            );
        }
        let line = if i % 10 == 0 {
            json!({"level":"warn","msg":"slow charge timeout","latency_ms":500 + i,"http":{"status":503,"path":"/charge"}})
        } else {
            json!({"level":"info","msg":"charge ok","latency_ms":i,"http":{"status":200,"path":"/charge"}})
        };
        src.push_kv(
            &[("service", "payment-service"), ("level", "info")],
            ts,
            line.to_string(),
        );
    }
    src.push_kv(
        &[("service", "payment-service"), ("level", "info")],
        T0 + 5 * S,
        "panic: runtime error: invalid memory address",
    );
    src
}

fn instant(q: &str, t: i64) -> Result<QueryResult, LogqlError> {
    Engine::new().query_instant(&fixture(), q, t, 100, Direction::Backward)
}

fn vector(q: &str, t: i64) -> Vec<(serde_json::Value, f64)> {
    let r = instant(q, t).unwrap_or_else(|e| panic!("{q}: {e}"));
    let QueryResult::Vector(samples, _) = r else {
        panic!("{q}: not a vector: {r:?}")
    };
    samples
        .into_iter()
        .map(|s| (serde_json::to_value(&s.labels).unwrap(), s.value))
        .collect()
}

#[test]
fn count_by_level_with_line_filter() {
    let q = r#"sum by (level) (count_over_time({service="order-service"} |= "timeout" [10m]))"#;
    assert_eq!(
        vector(q, T0 + 590 * S),
        vec![(json!({"level": "error"}), 20.0)]
    );
    // Windows are left-open, (t - 10m, t], so the line at exactly T0 falls out.
    assert_eq!(
        vector(q, T0 + 600 * S),
        vec![(json!({"level": "error"}), 19.0)]
    );
}

#[test]
fn log_query_backward_with_limit_exact_shape() {
    let r = Engine::new()
        .query_range(
            &fixture(),
            r#"{service="order-service"}"#,
            T0,
            T0 + 600 * S,
            S,
            5,
            Direction::Backward,
        )
        .unwrap();
    let data = r.to_loki_data();
    let ts = |i: i64| (T0 + i * 10 * S).to_string();
    let info = |i: i64| {
        format!(
            "level=info msg=\"order placed\" order_id={i} duration={}ms status=200",
            i * 10
        )
    };
    assert_eq!(data["resultType"], "streams");
    assert_eq!(
        data["result"],
        json!([
            {
                "stream": {"level": "error", "service": "order-service"},
                "values": [[ts(57), "level=error msg=\"upstream timeout calling payment-service\" order_id=57 duration=1057ms status=504"]]
            },
            {
                "stream": {"level": "info", "service": "order-service"},
                "values": [[ts(59), info(59)], [ts(58), info(58)], [ts(57), info(57)], [ts(56), info(56)]]
            }
        ])
    );
    assert_eq!(data["stats"]["summary"]["totalEntriesReturned"], 5);
}

#[test]
fn log_query_forward() {
    let r = Engine::new()
        .query_range(
            &fixture(),
            r#"{service="order-service"}"#,
            T0,
            T0 + 600 * S,
            S,
            3,
            Direction::Forward,
        )
        .unwrap();
    let QueryResult::Streams(streams, _) = r else {
        panic!()
    };
    let got: Vec<(String, Vec<i64>)> = streams
        .iter()
        .map(|s| {
            (
                s.labels["level"].clone(),
                s.entries.iter().map(|e| (e.0 - T0) / S).collect(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![("error".into(), vec![0]), ("info".into(), vec![0, 10])]
    );
}

#[test]
fn rate_matrix() {
    let r = Engine::new()
        .query_range(
            &fixture(),
            r#"sum by (service) (rate({service=~".+-service"}[1m]))"#,
            T0 + 60 * S,
            T0 + 180 * S,
            60 * S,
            100,
            Direction::Backward,
        )
        .unwrap();
    let data = r.to_loki_data();
    assert_eq!(data["resultType"], "matrix");
    let v = |x: f64| firedrill_logql::format_value(x);
    assert_eq!(
        data["result"],
        json!([
            {"metric": {"service": "order-service"}, "values": [
                [1_700_000_060i64, v(8.0 / 60.0)], [1_700_000_120i64, v(8.0 / 60.0)], [1_700_000_180i64, v(8.0 / 60.0)]]},
            {"metric": {"service": "payment-service"}, "values": [
                [1_700_000_060i64, v(7.0 / 60.0)], [1_700_000_120i64, v(0.1)], [1_700_000_180i64, v(0.1)]]},
        ])
    );
}

#[test]
fn json_filter_line_format_keep() {
    let q = r#"{service="payment-service"} | json | http_status >= 500 | line_format "{{.level_extracted}} {{.http_path}} {{.latency_ms}}ms" | keep service, level_extracted"#;
    let r = Engine::new()
        .query_range(&fixture(), q, T0, T0 + 600 * S, S, 100, Direction::Backward)
        .unwrap();
    let QueryResult::Streams(streams, stats) = r else {
        panic!()
    };
    assert_eq!(streams.len(), 1);
    assert_eq!(
        serde_json::to_value(&streams[0].labels).unwrap(),
        json!({"level_extracted": "warn", "service": "payment-service"})
    );
    let lines: Vec<&str> = streams[0].entries.iter().map(|e| e.1.as_str()).collect();
    assert_eq!(lines.len(), 6);
    assert_eq!(lines[0], "warn /charge 550ms");
    assert_eq!(lines[5], "warn /charge 500ms");
    assert_eq!(stats.lines_processed, 61);
}

#[test]
fn parse_errors_surface_as_error_label_in_log_queries() {
    let q = r#"{service="payment-service"} | json | __error__!="""#;
    let r = Engine::new()
        .query_range(&fixture(), q, T0, T0 + 600 * S, S, 100, Direction::Backward)
        .unwrap();
    let QueryResult::Streams(streams, _) = r else {
        panic!()
    };
    assert_eq!(streams.len(), 1);
    assert_eq!(streams[0].labels["__error__"], "JSONParserErr");
    assert!(streams[0].entries[0].1.starts_with("panic:"));
}

#[test]
fn unwrap_quantile_and_avg() {
    let got = vector(
        r#"quantile_over_time(0.5, {service="order-service", level="info"} | logfmt | unwrap duration(duration) [10m]) by (service)"#,
        T0 + 590 * S,
    );
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, json!({"service": "order-service"}));
    assert!((got[0].1 - 0.295).abs() < 1e-9, "{}", got[0].1);

    let got = vector(
        r#"avg_over_time({service="order-service"} | logfmt | unwrap duration(duration) [10m]) by (level)"#,
        T0 + 590 * S,
    );
    assert_eq!(got[0].0, json!({"level": "error"}));
    assert!((got[0].1 - 1.0285).abs() < 1e-9, "{}", got[0].1);
    assert_eq!(got[1].0, json!({"level": "info"}));
    assert!((got[1].1 - 0.295).abs() < 1e-9);

    // Without grouping the unwrapped label is dropped and other labels are kept.
    let got = vector(
        r#"max_over_time({service="order-service", level="error"} | logfmt | keep service, duration | unwrap duration(duration) [10m])"#,
        T0 + 590 * S,
    );
    assert_eq!(got, vec![(json!({"service": "order-service"}), 1.057)]);
}

#[test]
fn pipeline_errors_fail_metric_queries_unless_filtered() {
    let e = instant(
        r#"sum(count_over_time({service="payment-service"} | json [10m]))"#,
        T0 + 590 * S,
    )
    .unwrap_err();
    assert!(matches!(e, LogqlError::Execution(_)));
    assert!(e.to_string().contains("JSONParserErr"), "{e}");
    assert_eq!(
        vector(
            r#"sum(count_over_time({service="payment-service"} | json | __error__="" [10m]))"#,
            T0 + 590 * S
        ),
        vec![(json!({}), 60.0)]
    );
}

#[test]
fn topk_and_sorting() {
    let inner = r#"sum by (service) (count_over_time({service=~".+"}[10m]))"#;
    let t = T0 + 590 * S;
    assert_eq!(
        vector(&format!("topk(1, {inner})"), t),
        vec![(json!({"service": "order-service"}), 80.0)]
    );
    assert_eq!(
        vector(&format!("bottomk(1, {inner})"), t),
        vec![(json!({"service": "payment-service"}), 61.0)]
    );
    let names = |q: String| -> Vec<String> {
        vector(&q, t)
            .into_iter()
            .map(|(l, _)| l["service"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        names(format!("sort_desc({inner})")),
        ["order-service", "payment-service"]
    );
    assert_eq!(
        names(format!("sort({inner})")),
        ["payment-service", "order-service"]
    );
}

#[test]
fn binary_operations() {
    let t = T0 + 590 * S;
    assert_eq!(
        vector(
            r#"sum(rate({service="order-service", level="error"}[10m])) / sum(rate({service="order-service"}[10m])) * 100"#,
            t
        ),
        vec![(json!({}), 25.0)]
    );
    let by_level = r#"sum by (level) (count_over_time({service="order-service"}[10m]))"#;
    assert_eq!(
        vector(&format!("{by_level} > 30"), t),
        vec![(json!({"level": "info"}), 60.0)]
    );
    assert_eq!(
        vector(&format!("{by_level} > bool 30"), t),
        vec![
            (json!({"level": "error"}), 0.0),
            (json!({"level": "info"}), 1.0)
        ]
    );
    assert_eq!(
        vector(&format!("{by_level} / on (level) {by_level}"), t),
        vec![
            (json!({"level": "error"}), 1.0),
            (json!({"level": "info"}), 1.0)
        ]
    );
    assert_eq!(
        vector(
            r#"sum(count_over_time({service="order-service"} |= "no-such-text" [1m])) or vector(0)"#,
            t
        ),
        vec![(json!({}), 0.0)]
    );
    let r = instant("1 + 2 * 3", t).unwrap();
    assert_eq!(r.to_loki_data()["result"], json!([1_700_000_590i64, "7"]));
    assert_eq!(r.to_loki_data()["resultType"], "scalar");
}

#[test]
fn absent_and_offset() {
    let t = T0 + 590 * S;
    assert_eq!(
        vector(r#"absent_over_time({service="nope", level=~".+"}[5m])"#, t),
        vec![(json!({"service": "nope"}), 1.0)]
    );
    assert!(vector(r#"absent_over_time({service="order-service"}[5m])"#, t).is_empty());
    assert_eq!(
        vector(
            r#"count_over_time({service="order-service", level="error"}[1m] offset 5m)"#,
            t
        ),
        vec![(json!({"level": "error", "service": "order-service"}), 2.0)]
    );
}

#[test]
fn request_validation_and_limits() {
    let src = fixture();
    let e = Engine::new();
    let err = e
        .query_range(
            &src,
            r#"{service="order-service"}"#,
            T0,
            T0 + S,
            S,
            6000,
            Direction::Backward,
        )
        .unwrap_err();
    assert!(err.to_string().contains("max entries limit"), "{err}");
    let err = e
        .query_range(
            &src,
            r#"count_over_time({service="order-service"}[1m])"#,
            T0,
            T0 + 100_000 * S,
            S,
            100,
            Direction::Backward,
        )
        .unwrap_err();
    assert!(err.to_string().contains("maximum resolution"), "{err}");
    let err = e
        .query_range(
            &src,
            r#"count_over_time({service="order-service"}[1m])"#,
            T0,
            T0 + S,
            0,
            100,
            Direction::Backward,
        )
        .unwrap_err();
    assert!(err.to_string().contains("step"), "{err}");
    let err = e
        .query_instant(
            &src,
            r#"{service="order-service"}"#,
            T0,
            100,
            Direction::Backward,
        )
        .unwrap_err();
    assert!(err.to_string().contains("instant query"), "{err}");

    let tight = Engine::with_limits(Limits {
        max_scanned_entries: 10,
        ..Limits::default()
    });
    let err = tight
        .query_range(
            &src,
            r#"{service="order-service"} |= "nothing""#,
            T0,
            T0 + 600 * S,
            S,
            100,
            Direction::Backward,
        )
        .unwrap_err();
    assert!(matches!(err, LogqlError::LimitExceeded(_)), "{err}");
    let tight = Engine::with_limits(Limits {
        max_series: 1,
        ..Limits::default()
    });
    let err = tight
        .query_instant(
            &src,
            r#"count_over_time({service=~".+"}[10m])"#,
            T0 + 590 * S,
            100,
            Direction::Backward,
        )
        .unwrap_err();
    assert!(err.to_string().contains("maximum of series"), "{err}");
    let err = e
        .query_range(
            &src,
            r#"{service="order-service""#,
            T0,
            T0 + S,
            S,
            10,
            Direction::Backward,
        )
        .unwrap_err();
    assert_eq!(err.position(), Some(24));
    assert!(err.is_client_error());
}

#[test]
fn output_is_deterministic() {
    let q = r#"{service=~".+"} | logfmt | json"#;
    let run = || {
        Engine::new()
            .query_range(&fixture(), q, T0, T0 + 600 * S, S, 1000, Direction::Forward)
            .unwrap()
            .to_loki_data()
            .to_string()
    };
    let a = run();
    assert_eq!(a, run());
    let m = r#"sum by (level, service) (count_over_time({service=~".+"}[1m]))"#;
    let run_m = || {
        Engine::new()
            .query_range(
                &fixture(),
                m,
                T0,
                T0 + 600 * S,
                30 * S,
                100,
                Direction::Forward,
            )
            .unwrap()
            .to_loki_data()
            .to_string()
    };
    assert_eq!(run_m(), run_m());
}

#[test]
fn label_apis_of_mem_source() {
    let src = fixture();
    assert_eq!(
        src.label_names(T0, T0 + 600 * S).unwrap(),
        ["level", "service"]
    );
    assert_eq!(
        src.label_values("service", &[], T0, T0 + 600 * S).unwrap(),
        ["order-service", "payment-service"]
    );
    let m = firedrill_logql::parse_selector(r#"{service="order-service"}"#).unwrap();
    assert_eq!(
        src.label_values("level", &m, T0, T0 + 600 * S).unwrap(),
        ["error", "info"]
    );
    assert_eq!(
        src.label_values(
            "level",
            &[StreamMatcher::eq("service", "x")],
            T0,
            T0 + 600 * S
        )
        .unwrap(),
        Vec::<String>::new()
    );
}

#[test]
fn extreme_time_ranges_do_not_panic() {
    let src = fixture();
    let e = Engine::new();
    for q in [
        r#"{service="order-service"}"#,
        r#"count_over_time({service="order-service"}[1m] offset 1h)"#,
        r#"rate_counter({service="order-service"} | logfmt | unwrap order_id [5m])"#,
    ] {
        let _ = e.query_range(
            &src,
            q,
            i64::MIN,
            i64::MAX,
            i64::MAX,
            10,
            Direction::Forward,
        );
        let _ = e.query_range(&src, q, i64::MIN, i64::MAX, 1, 10, Direction::Backward);
        let _ = e.query_range(&src, q, i64::MAX - 1, i64::MAX, 1, 10, Direction::Backward);
        let _ = e.query_instant(&src, q, i64::MIN, 10, Direction::Backward);
        let _ = e.query_instant(&src, q, i64::MAX, 10, Direction::Backward);
    }
}
