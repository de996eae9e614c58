//! The engine must return errors, never panic, on arbitrary input.

use firedrill_promql::{Engine, EngineOptions, Labels, MemStorage};
use proptest::prelude::*;

fn store() -> MemStorage {
    let mut s = MemStorage::new();
    for (name, job) in [
        ("up", "a"),
        ("up", "b"),
        ("req_total", "a"),
        ("lat_bucket", "a"),
    ] {
        for i in 0..40 {
            let l = if name == "lat_bucket" {
                Labels::new([
                    ("__name__", name),
                    ("job", job),
                    ("le", if i % 2 == 0 { "0.5" } else { "+Inf" }),
                ])
            } else {
                Labels::new([("__name__", name), ("job", job)])
            };
            s.append(&l, i * 15_000, (i * 7 % 11) as f64);
        }
    }
    s
}

fn engine() -> Engine {
    Engine::new(EngineOptions {
        max_samples: 200_000,
        ..Default::default()
    })
}

const ATOMS: &[&str] = &[
    "up",
    "req_total",
    "lat_bucket",
    "up{job=\"a\"}",
    "up{job=~\"a|b\"}",
    "1",
    "-2.5",
    "NaN",
    "Inf",
    "time()",
    "up offset 1m",
    "up @ 100",
    "vector(1)",
    "scalar(up)",
    "{__name__=~\".+\"}",
];
const MATRICES: &[&str] = &[
    "up[1m]",
    "req_total[5m]",
    "up[30s] offset 1m",
    "(up * 2)[2m:15s]",
    "up[1m] @ end()",
];
const RANGE_FUNCS: &[&str] = &[
    "rate",
    "irate",
    "increase",
    "delta",
    "idelta",
    "deriv",
    "resets",
    "changes",
    "avg_over_time",
    "sum_over_time",
    "stddev_over_time",
    "last_over_time",
    "present_over_time",
    "absent_over_time",
    "mad_over_time",
];
const FUNCS: &[&str] = &[
    "abs",
    "ceil",
    "ln",
    "sqrt",
    "sort",
    "sort_desc",
    "timestamp",
    "absent",
    "hour",
    "sgn",
    "exp",
];
const AGGS: &[&str] = &["sum", "avg", "min", "max", "count", "stddev", "group"];
const OPS: &[&str] = &[
    "+", "-", "*", "/", "%", "^", "==", "!=", ">", "<", "and", "or", "unless", "atan2", "> bool",
];

fn expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        proptest::sample::select(ATOMS).prop_map(str::to_string),
        (
            proptest::sample::select(RANGE_FUNCS),
            proptest::sample::select(MATRICES)
        )
            .prop_map(|(f, m)| format!("{f}({m})")),
    ];
    leaf.prop_recursive(4, 32, 3, |inner| {
        prop_oneof![
            (proptest::sample::select(FUNCS), inner.clone()).prop_map(|(f, e)| format!("{f}({e})")),
            (proptest::sample::select(AGGS), inner.clone())
                .prop_map(|(a, e)| format!("{a} by (job) ({e})")),
            (inner.clone(), proptest::sample::select(OPS), inner.clone())
                .prop_map(|(a, o, b)| format!("({a}) {o} ({b})")),
            (
                inner.clone(),
                proptest::sample::select(
                    &["on(job)", "ignoring(le)", "on(job) group_left", ""][..]
                ),
                inner.clone()
            )
                .prop_map(|(a, m, b)| format!("({a}) * {m} ({b})")),
            inner.clone().prop_map(|e| format!("topk(2, {e})")),
            inner.clone().prop_map(|e| format!("quantile(0.9, {e})")),
            inner
                .clone()
                .prop_map(|e| format!("count_values(\"v\", {e})")),
            inner
                .clone()
                .prop_map(|e| format!("histogram_quantile(0.9, {e})")),
            inner
                .clone()
                .prop_map(|e| format!("max_over_time(({e})[3m:30s])")),
            inner
                .clone()
                .prop_map(|e| format!("label_replace({e}, \"x\", \"$1\", \"job\", \"(.*)\")")),
            inner.prop_map(|e| format!("clamp({e}, 1, 3)")),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_never_panic(q in ".{0,64}") {
        let s = MemStorage::new();
        let _ = engine().instant(&s, &q, 0);
    }

    #[test]
    fn promql_like_strings_never_panic(q in "[a-z_(){}\\[\\]\"=~!0-9.:+*/^@ ,-]{0,48}") {
        let s = store();
        let _ = engine().instant(&s, &q, 300_000);
    }

    #[test]
    fn random_queries_never_panic(q in expr(), t in 0i64..700_000, step in prop_oneof![Just(0i64), 1i64..120_000]) {
        let s = store();
        let e = engine();
        let _ = e.instant(&s, &q, t);
        let _ = e.range(&s, &q, t, t + 300_000, step);
    }
}
