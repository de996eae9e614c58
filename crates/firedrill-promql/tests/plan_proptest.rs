//! Property: a compiled `InstantPlan` answers every rule-shaped query exactly as the engine does (or declines
//! where the engine fails), evaluated repeatedly at random times so that its kept label work is reused, over
//! series that reset, go stale and come back.

use firedrill_promql::promqltest::{KeyedMem, same_value};
use firedrill_promql::{
    Engine, EngineOptions, InstantPlan, Labels, MemStorage, parse_query, stale_nan,
};
use proptest::prelude::*;

const STEP_MS: i64 = 15_000;

/// Counters `a` by job and code (with a reset), gauges `b` by job (one goes stale for a while), a classic
/// histogram `c_bucket` by job, and counters `d` by job that go stale for a while and come back: one restarted
/// lower (a reset seen only once the marker between is dropped), and the first in label order gone long
/// enough that some windows lack it (the series after it move up).
fn storage() -> MemStorage {
    let mut st = MemStorage::new();
    for (j, job) in ["x", "y", "z"].iter().enumerate() {
        for (c, code) in ["200", "500"].iter().enumerate() {
            let l = Labels::new([("__name__", "a"), ("job", job), ("code", code)]);
            let mut v = 0.0;
            for i in 0..120i64 {
                v = if i == 70 && j == 1 {
                    3.0
                } else {
                    v + (j + 1) as f64 * (c + 1) as f64 * 1.5
                };
                st.append(&l, i * STEP_MS, v);
            }
        }
        let l = Labels::new([("__name__", "b"), ("job", job)]);
        for i in 0..120i64 {
            if j == 2 && (40..60).contains(&i) {
                if i == 40 {
                    st.append(&l, i * STEP_MS, stale_nan());
                }
                continue;
            }
            st.append(&l, i * STEP_MS, ((i * 7 + j as i64 * 13) % 17) as f64 - 4.0);
        }
        let l = Labels::new([("__name__", "d"), ("job", job)]);
        let mut v = 100.0;
        let gap = if j == 0 { 75..110 } else { 50..56 };
        for i in 0..120i64 {
            if gap.contains(&i) {
                if i == gap.start {
                    st.append(&l, i * STEP_MS, stale_nan());
                }
                continue;
            }
            v = if i == 56 && j == 1 { 1.0 } else { v + 2.5 };
            st.append(&l, i * STEP_MS, v);
        }
        for (k, le) in ["0.1", "1", "+Inf"].iter().enumerate() {
            let l = Labels::new([("__name__", "c_bucket"), ("job", job), ("le", le)]);
            for i in 0..120i64 {
                st.append(
                    &l,
                    i * STEP_MS,
                    (i * (k as i64 + 1) * (j as i64 + 2)) as f64,
                );
            }
        }
    }
    st
}

fn leaf() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_string()),
        Just(r#"a{code="500"}"#.to_string()),
        Just(r#"a{job=~"x|z"}"#.to_string()),
        Just("b".to_string()),
        Just("rate(a[5m])".to_string()),
        Just("increase(a[10m])".to_string()),
        Just("delta(b[2m])".to_string()),
        Just("max_over_time(b[3m])".to_string()),
        Just("last_over_time(b[1m])".to_string()),
        Just("c_bucket".to_string()),
        Just("rate(d[5m])".to_string()),
        Just("increase(d[3m])".to_string()),
        Just("histogram_quantile(0.9, sum by (le, job) (rate(c_bucket[5m])))".to_string()),
    ]
}

fn expr() -> impl Strategy<Value = String> {
    let aggs = prop_oneof![
        Just("sum"),
        Just("avg"),
        Just("min"),
        Just("max"),
        Just("count"),
        Just("stddev"),
        Just("group")
    ];
    let grouping = prop_oneof![
        Just(""),
        Just(" by (job)"),
        Just(" by (code)"),
        Just(" without (code)"),
        Just(" without (job, le)"),
    ];
    let ops = prop_oneof![
        Just("+"),
        Just("-"),
        Just("*"),
        Just("/"),
        Just(">"),
        Just("<="),
        Just("=="),
        Just("!="),
        Just("> bool"),
    ];
    let matching = prop_oneof![
        Just(""),
        Just(" on (job)"),
        Just(" ignoring (code)"),
        Just(" on (job, code)")
    ];
    leaf().prop_recursive(3, 12, 2, move |inner| {
        prop_oneof![
            (aggs.clone(), grouping.clone(), inner.clone())
                .prop_map(|(a, g, e)| format!("{a}{g} ({e})")),
            (inner.clone(), ops.clone(), matching.clone(), inner.clone())
                .prop_map(|(l, o, m, r)| format!("({l}) {o}{m} ({r})")),
            (inner.clone(), ops.clone(), -3.0f64..3.0)
                .prop_map(|(l, o, x)| format!("({l}) {o} {x:.2}")),
            (-3.0f64..3.0, ops.clone(), inner.clone())
                .prop_map(|(x, o, r)| format!("{x:.2} {o} ({r})")),
            inner.clone().prop_map(|e| format!("-({e})")),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn plans_answer_as_the_engine(query in expr(), times in proptest::collection::vec(20i64..120, 1..6)) {
        let st = storage();
        let engine = Engine::new(EngineOptions::default());
        // Queries the parser rejects (a comparison between scalars without `bool`) are not rules.
        let Ok(parsed) = parse_query(&query) else { return Ok(()) };
        let Some(mut plan) = InstantPlan::compile(&parsed, engine.options()) else {
            return Ok(());
        };
        let keyed = KeyedMem::new(&st);
        for i in times {
            let t = i * STEP_MS;
            let expected = engine.instant_expr(&st, &parsed, t);
            match plan.eval(&keyed, t) {
                None => prop_assert!(expected.is_err(), "{query} at {t}: the plan declined, the engine answered {expected:?}"),
                Some(got) => {
                    prop_assert!(expected.is_ok(), "{query} at {t}: the engine failed ({expected:?}), the plan answered {got:?}");
                    let expected = expected.unwrap();
                    prop_assert!(same_value(&got, &expected), "{query} at {t}\nplan:   {got:?}\nengine: {expected:?}");
                }
            }
        }
    }
}
