//! Repeated instant evaluation of two alerting-rule expressions over a small store, for
//! instruction counting with callgrind (see `docs/benchmarks.md`):
//!
//! ```text
//! cargo build --release -p firedrill-promql --example rule_eval
//! valgrind --tool=callgrind --toggle-collect='rule_eval::run' \
//!     target/release/examples/rule_eval error_ratio prepared 100
//! ```
//!
//! Arguments: `error_ratio|p99`; `string`, `expr` or `prepared` (parse every time with
//! `Engine::instant`, parse once for `Engine::instant_expr`, or prepare once for
//! `Engine::instant_prepared`, the default); and the number of evaluations. Divide the
//! collected instruction count by that number. A fourth argument `render` reads through a
//! storage that rebuilds label sets on every selection, like a storage rendering series on
//! demand.

use firedrill_promql::promql_parser::parser::Expr;
use firedrill_promql::{
    Engine, EngineOptions, LabelMatcher, Labels, MemStorage, PreparedQuery, Series, Storage,
    StorageError, Value, parse_query,
};

#[path = "../benches/support/rule_store.rs"]
mod rule_store;
use rule_store::{RULE_ERROR_RATIO as ERROR_RATIO, RULE_P99 as P99, RULE_SAMPLES as SAMPLES};
use rule_store::{RULE_STEP_MS as STEP, build_rule_store as build_store};

/// How `run` evaluates the query.
enum Mode {
    /// `Engine::instant`: parse every time.
    String,
    /// `Engine::instant_expr`: parsed once.
    Expr(Expr),
    /// `Engine::instant_prepared`: parsed and prepared once.
    Prepared(PreparedQuery),
}

/// A storage that builds every selected series' label set afresh from owned strings, as a
/// storage rendering series on demand (like the simulator's world storage) does.
struct Rendering<'a>(&'a MemStorage);

impl Storage for Rendering<'_> {
    fn select(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Series>, StorageError> {
        let mut out = self.0.select(matchers, start_ms, end_ms)?;
        for s in &mut out {
            let owned: Vec<(String, String)> = s
                .labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            s.labels = Labels::new(owned);
        }
        Ok(out)
    }
}

#[inline(never)]
fn run(engine: &Engine, store: &dyn Storage, query: &str, mode: &Mode, n: usize) -> usize {
    let t = (SAMPLES - 1) * STEP;
    let mut total = 0;
    for _ in 0..n {
        let v = match mode {
            Mode::String => engine.instant(store, query, t),
            Mode::Expr(e) => engine.instant_expr(store, e, t),
            Mode::Prepared(p) => engine.instant_prepared(store, p, t),
        };
        total += len(&v.expect("query"));
    }
    total
}

fn len(v: &Value) -> usize {
    match v {
        Value::Vector(v) => v.len(),
        _ => 0,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let query = match args.get(1).map(String::as_str) {
        Some("p99") => P99,
        _ => ERROR_RATIO,
    };
    let mode = match args.get(2).map(String::as_str) {
        Some("string") => Mode::String,
        Some("expr") => Mode::Expr(parse_query(query).expect("parse")),
        _ => Mode::Prepared(PreparedQuery::parse(query).expect("parse")),
    };
    let n: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(100);
    let store = build_store();
    let engine = Engine::new(EngineOptions::default());
    let first = engine
        .instant(&store, query, (SAMPLES - 1) * STEP)
        .expect("query");
    println!("{}", first.to_prometheus_data());
    let total = if args.get(4).map(String::as_str) == Some("render") {
        run(&engine, &Rendering(&store), query, &mode, n)
    } else {
        run(&engine, &store, query, &mode, n)
    };
    println!("{total} result series over {n} evaluations");
}
