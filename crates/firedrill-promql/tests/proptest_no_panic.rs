//! The engine must return errors, never panic, on arbitrary input; the positions of parse errors must be
//! inside the query.

use firedrill_promql::{Engine, EngineOptions, Labels, MemStorage, QueryError, parse_query};
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

/// Asserts that a parse error of `q`, if any, points inside `q`.
fn position_in_bounds(q: &str) -> Result<(), TestCaseError> {
    if let Err(QueryError::Parse {
        position: Some(p), ..
    }) = parse_query(q)
    {
        prop_assert!(p <= q.len() && q.is_char_boundary(p), "{q:?}: {p}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_error_positions_are_in_the_query(q in ".{0,64}") {
        position_in_bounds(&q)?;
    }

    #[test]
    fn promql_like_error_positions_are_in_the_query(q in "[a-z_(){}\\[\\]\"'`=~!0-9.:+*/^@ ,#\n-]{0,48}") {
        position_in_bounds(&q)?;
    }

    /// Generated queries are mostly valid syntax, so their errors are mostly type and arity errors: every one
    /// has a position, which moves with the text when the query is wrapped. An error found at the end of the
    /// query (`x * on(job) group_left (y)` reads `(y)` as the label list and then misses its operand) points
    /// at the end of the input alone, and at the token that follows once wrapped, past the newline.
    #[test]
    fn type_errors_have_positions_that_move_with_the_text(e in expr()) {
        if let Err(QueryError::Parse { message, position }) = parse_query(&e) {
            prop_assert!(position.is_some(), "{e:?}: {message}");
            let wrapped = format!("sum(\n  {e}\n)");
            let moved = position.map(|p| p + 7);
            let at_end = position == Some(e.len());
            match parse_query(&wrapped) {
                Err(QueryError::Parse { message: m, position: Some(w) }) => {
                    prop_assert_eq!(&m, &message, "{:?}", e);
                    let next_token = e.len() + 7 + 1;
                    prop_assert!(
                        Some(w) == moved || (at_end && w == next_token),
                        "{e:?}: {message} at {position:?}, wrapped at {w}"
                    );
                }
                other => prop_assert!(false, "{e:?}: wrapped gave {other:?}"),
            }
        }
    }

    /// A range vector operand fails any binary expression, at its operator.
    #[test]
    fn range_operands_point_at_the_operator(e in expr()) {
        prop_assume!(parse_query(&e).is_ok());
        let q = format!("({e}) +\n x[5m]");
        prop_assert_eq!(
            parse_query(&q),
            Err(QueryError::Parse {
                message: "binary expression must contain only scalar and instant vector types".into(),
                position: Some(e.len() + 3),
            })
        );
    }

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

proptest! {
    // Damaged queries are mostly syntax errors, whose location parses many prefixes: fewer cases.
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn damaged_queries_never_panic_and_point_inside(e in expr(), cut in any::<(prop::sample::Index, prop::sample::Index)>()) {
        // Generated queries are ASCII: any byte range can go.
        let (a, b) = (cut.0.index(e.len() + 1), cut.1.index(e.len() + 1));
        let q = format!("{}{}", &e[..a.min(b)], &e[a.max(b)..]);
        position_in_bounds(&q)?;
    }
}

thread_local! {
    /// Panics raised on this thread since the hook below was installed, caught or not.
    static PANICS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Numbers too large for a duration where PromQL reads one are refused as parse errors at their position, and no
/// panic is raised on the way: promql-parser panics on them, and even a caught panic prints its message.
#[test]
fn durations_too_large_are_refused_without_a_panic() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.with(|n| n.set(n.get() + 1));
        previous(info);
    }));
    for (query, at) in [
        ("x offset 1e300", 9),
        ("rate(x[88888888888888888888888])", 7),
        ("x[5m:1e300]", 5),
        ("x offset -Inf", 10),
        ("x offset +1e999", 10),
        ("sum(x[1e30] offset 5m)", 6),
    ] {
        match parse_query(query) {
            Err(QueryError::Parse { message, position }) => {
                assert!(
                    message.contains("duration out of range"),
                    "{query}: {message}"
                );
                assert_eq!(position, Some(at), "{query}");
            }
            other => panic!("{query}: {other:?}"),
        }
        // Evaluation parses the same way.
        let result = Engine::new(EngineOptions::default()).instant(&store(), query, 60_000);
        assert!(result.is_err(), "{query}");
    }
    // Large numbers elsewhere, and durations that fit, still parse.
    for query in [
        "x > 1e300",
        "x @ 100",
        "rate(x[300])",
        "x offset 5",
        "x[5m:30]",
    ] {
        assert!(parse_query(query).is_ok(), "{query}");
    }
    assert_eq!(
        PANICS.with(|n| n.get()),
        0,
        "a panic was raised (and caught) on the way"
    );
}
