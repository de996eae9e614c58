//! Unit-level checks of the engine's trickier semantics through the public API.

use firedrill_promql::{
    Engine, EngineOptions, LabelMatcher, Labels, MatchOp, MemStorage, QueryError, Sample, Storage,
    Value, stale_nan,
};

fn lbl(name: &str, pairs: &[(&str, &str)]) -> Labels {
    let mut v: Vec<(String, String)> = vec![("__name__".into(), name.into())];
    v.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Labels::new(v)
}

fn engine() -> Engine {
    Engine::new(EngineOptions::default())
}

fn vector(v: Value) -> Vec<(Labels, Sample)> {
    match v {
        Value::Vector(v) => v,
        other => panic!("expected vector, got {other:?}"),
    }
}

fn single(v: Value) -> f64 {
    let v = vector(v);
    assert_eq!(v.len(), 1, "{v:?}");
    v[0].1.v
}

#[test]
fn lookback_window_is_left_open() {
    let mut s = MemStorage::new();
    s.append(&lbl("m", &[]), 0, 1.0);
    let e = engine();
    assert_eq!(single(e.instant(&s, "m", 299_999).unwrap()), 1.0);
    assert!(vector(e.instant(&s, "m", 300_000).unwrap()).is_empty());
}

#[test]
fn stale_marker_ends_series() {
    let mut s = MemStorage::new();
    let l = lbl("m", &[]);
    s.append(&l, 0, 1.0);
    s.append(&l, 10_000, stale_nan());
    s.append(&l, 20_000, 2.0);
    let e = engine();
    assert_eq!(single(e.instant(&s, "m", 5_000).unwrap()), 1.0);
    assert!(vector(e.instant(&s, "m", 15_000).unwrap()).is_empty());
    assert_eq!(single(e.instant(&s, "m", 25_000).unwrap()), 2.0);
    // Range selectors drop the marker itself.
    assert_eq!(
        single(e.instant(&s, "count_over_time(m[1m])", 30_000).unwrap()),
        2.0
    );
}

#[test]
fn rate_extrapolates_to_window_edges() {
    // Counter sampled every 15s, +1 per sample, starting well above zero so the zero-point
    // rule does not apply; samples at 15s..300s lie in the window (0, 300] at t=300s.
    let mut s = MemStorage::new();
    let l = lbl("c", &[]);
    for i in 0..=20 {
        s.append(&l, i * 15_000, 100.0 + i as f64);
    }
    let e = engine();
    let r = single(e.instant(&s, "rate(c[5m])", 300_000).unwrap());
    // 19 increments over 285s, extrapolated by 15s to the window start: 20/300.
    assert!((r - 20.0 / 300.0).abs() < 1e-12, "{r}");
    let inc = single(e.instant(&s, "increase(c[5m])", 300_000).unwrap());
    assert!((inc - 20.0).abs() < 1e-9, "{inc}");
}

#[test]
fn rate_handles_counter_reset() {
    let mut s = MemStorage::new();
    let l = lbl("c", &[]);
    for (i, v) in [10.0, 20.0, 5.0, 15.0].iter().enumerate() {
        s.append(&l, (i as i64 + 1) * 10_000, *v);
    }
    let e = engine();
    // Increase 10 + 5 (restart from 0) + 10 = 25 between 10s and 40s; the first sample is 10s
    // after the window start, within 1.1x the sample spacing, so it extrapolates all the way.
    let inc = single(e.instant(&s, "increase(c[40s])", 40_000).unwrap());
    assert!((inc - 25.0 * 40.0 / 30.0).abs() < 1e-9, "{inc}");
    // With the window starting 30s before the first sample, extrapolation is capped at half
    // the average spacing (5s).
    let inc = single(e.instant(&s, "increase(c[60s])", 40_000).unwrap());
    assert!((inc - 25.0 * 35.0 / 30.0).abs() < 1e-9, "{inc}");
}

#[test]
fn histogram_quantile_interpolates_classic_buckets() {
    let mut s = MemStorage::new();
    for (le, v) in [("0.1", 10.0), ("0.5", 60.0), ("1", 90.0), ("+Inf", 100.0)] {
        s.append(&lbl("h_bucket", &[("le", le), ("svc", "a")]), 0, v);
    }
    let e = engine();
    let r = vector(
        e.instant(&s, "histogram_quantile(0.5, h_bucket)", 0)
            .unwrap(),
    );
    assert_eq!(r[0].0, Labels::new([("svc", "a")]));
    // Rank 50 falls in (0.1, 0.5] holding 50 observations: 0.1 + 0.4 * 40/50.
    assert!((r[0].1.v - 0.42).abs() < 1e-12);
    // Rank 99 falls in the +Inf bucket: the highest finite bound is returned.
    assert_eq!(
        single(
            e.instant(&s, "histogram_quantile(0.99, h_bucket)", 0)
                .unwrap()
        ),
        1.0
    );
    // Missing +Inf bucket gives NaN.
    let r = single(
        e.instant(&s, "histogram_quantile(0.5, h_bucket{le!=\"+Inf\"})", 0)
            .unwrap(),
    );
    assert!(r.is_nan());
}

#[test]
fn vector_matching_errors() {
    let mut s = MemStorage::new();
    s.append(&lbl("a", &[("job", "x"), ("i", "1")]), 0, 1.0);
    s.append(&lbl("a", &[("job", "x"), ("i", "2")]), 0, 2.0);
    s.append(&lbl("b", &[("job", "x")]), 0, 10.0);
    let e = engine();
    let err = e.instant(&s, "a + on(job) b", 0).unwrap_err();
    assert!(
        err.to_string()
            .contains("many-to-one matching must be explicit"),
        "{err}"
    );
    // The right side is checked for uniqueness first.
    let err = e.instant(&s, "b + on(job) a", 0).unwrap_err();
    assert!(
        err.to_string()
            .contains("duplicate series for the match group"),
        "{err}"
    );
    let err = e.instant(&s, "b + on(job) group_left a", 0).unwrap_err();
    assert!(err.to_string().contains("duplicate series"), "{err}");
    let ok = vector(e.instant(&s, "a + on(job) group_left b", 0).unwrap());
    assert_eq!(ok.len(), 2);
    // Dropping the metric name makes b{job="x"} and c{job="x"} collide.
    s.append(&lbl("c", &[("job", "x")]), 0, 3.0);
    let err = e.instant(&s, "ceil({__name__=~\"b|c\"})", 0).unwrap_err();
    assert!(err.to_string().contains("same labelset"), "{err}");
    // Without name dropping they coexist.
    assert_eq!(
        vector(e.instant(&s, "{__name__=~\"b|c\"}", 0).unwrap()).len(),
        2
    );
}

#[test]
fn bad_inputs_return_errors() {
    let s = MemStorage::new();
    let e = engine();
    for q in [
        "",
        "sum(",
        "rate(x)",
        "foo{",
        "1 +",
        "x[5m] + 1",
        "label_replace(x, \"a\", \"b\", \"c\", \"(\")",
    ] {
        assert!(e.instant(&s, q, 0).is_err(), "{q} should fail");
    }
    assert!(matches!(
        e.range(&s, "1", 0, 10, 0),
        Err(QueryError::BadParameters(_))
    ));
    assert!(matches!(
        e.range(&s, "1", 0, 10, -5),
        Err(QueryError::BadParameters(_))
    ));
    assert!(matches!(
        e.range(&s, "1", 10, 0, 1),
        Err(QueryError::BadParameters(_))
    ));
    assert!(matches!(
        e.range(&s, "1", 0, i64::MAX, 1),
        Err(QueryError::BadParameters(_))
    ));
    assert!(e.instant(&s, "x[10000d:1ms]", 0).is_err());
    let err = e.instant(&s, "sum(rate(x[5m])) by (", 0).unwrap_err();
    assert!(matches!(err, QueryError::Parse { .. }));
    let err = e.instant(&s, "foo $ bar", 0).unwrap_err();
    assert_eq!(
        err,
        QueryError::Parse {
            message: err_msg(&err),
            position: Some(4)
        }
    );
}

fn err_msg(e: &QueryError) -> String {
    match e {
        QueryError::Parse { message, .. } => message.clone(),
        _ => String::new(),
    }
}

#[test]
fn sample_limit_is_enforced() {
    let mut s = MemStorage::new();
    for i in 0..1000 {
        s.append(&lbl("m", &[]), i * 1000, 1.0);
    }
    let e = Engine::new(EngineOptions {
        max_samples: 100,
        ..Default::default()
    });
    assert_eq!(
        e.instant(&s, "count_over_time(m[1000s])", 1_000_000),
        Err(QueryError::TooManySamples)
    );
}

#[test]
fn range_result_is_sorted_and_json_shaped() {
    let mut s = MemStorage::new();
    for svc in ["b", "a"] {
        for i in 0..10 {
            s.append(&lbl("up", &[("svc", svc)]), i * 15_000, 1.0);
        }
    }
    let e = engine();
    let v = e.range(&s, "up", 0, 30_000, 15_000).unwrap();
    let j = v.to_prometheus_data();
    assert_eq!(j["resultType"], "matrix");
    assert_eq!(j["result"][0]["metric"]["svc"], "a");
    assert_eq!(j["result"][0]["values"][1], serde_json::json!([15, "1"]));
}

#[test]
fn storage_matchers_are_anchored() {
    let mut s = MemStorage::new();
    s.append(&lbl("up", &[("job", "api")]), 0, 1.0);
    s.append(&lbl("up", &[("job", "api-server")]), 0, 1.0);
    let m = [LabelMatcher::new("job", MatchOp::Re, "api").unwrap()];
    assert_eq!(s.select(&m, 0, 0).unwrap().len(), 1);
    assert_eq!(
        s.label_values("job", &[]).unwrap(),
        vec!["api", "api-server"]
    );
}

/// A storage that cannot lend samples, so the engine takes the copying path.
struct CopyOnly(MemStorage);

impl Storage for CopyOnly {
    fn select(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<firedrill_promql::Series>, firedrill_promql::StorageError> {
        self.0.select(matchers, start_ms, end_ms)
    }
}

#[test]
fn prepared_queries_and_lent_samples_give_the_same_answers() {
    let mut s = MemStorage::new();
    for svc in ["a", "b", "c"] {
        for code in ["200", "429", "500"] {
            let l = lbl("req_total", &[("service", svc), ("code", code)]);
            for i in 0..40i64 {
                let v = if i == 25 && svc == "b" {
                    stale_nan()
                } else {
                    (i * (code.len() + svc.len()) as i64) as f64
                };
                s.append(&l, i * 15_000, v);
            }
        }
        for le in ["0.1", "1", "+Inf"] {
            let l = lbl("lat_bucket", &[("service", svc), ("le", le)]);
            for i in 0..40i64 {
                s.append(&l, i * 15_000, (i * le.len() as i64) as f64);
            }
        }
    }
    let copy = CopyOnly(s.clone());
    let e = engine();
    let queries = [
        r#"sum by (service) (rate(req_total{code=~"5..|429"}[5m])) / sum by (service) (rate(req_total[5m])) > 0.05"#,
        r#"histogram_quantile(0.9, sum by (le, service) (rate(lat_bucket[5m])))"#,
        r#"req_total{code!~"2.."} offset 1m"#,
        r#"max_over_time(req_total{service="b"}[3m:30s])"#,
        r#"{__name__=~"req_total|lat_bucket", service="a"}"#,
        r#"count by (__name__) ({service="c"})"#,
        r#"req_total[2m]"#,
        r#"timestamp(req_total{code="200"}) - time()"#,
    ];
    for q in queries {
        let prepared = e.prepare(q).unwrap();
        let expr = firedrill_promql::parse_query(q).unwrap();
        let cloned = prepared.clone();
        for t in [0, 200_000, 400_000, 585_000] {
            let want = e.instant_expr(&copy, &expr, t);
            assert_eq!(e.instant_expr(&s, &expr, t), want, "{q} at {t}");
            assert_eq!(e.instant_prepared(&s, &prepared, t), want, "{q} at {t}");
            assert_eq!(e.instant_prepared(&copy, &cloned, t), want, "{q} at {t}");
        }
        let want = e.range_expr(&copy, &expr, 0, 585_000, 45_000);
        assert_eq!(
            e.range_prepared(&s, &prepared, 0, 585_000, 45_000),
            want,
            "{q}"
        );
    }
}
