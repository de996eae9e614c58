//! The PromQL evaluator.
//!
//! Every expression is evaluated over a grid of steps (`start..=end` by `step`; an instant query
//! is a one-step grid), like Prometheus's range evaluation. Instant-vector values are kept as
//! sparse per-series point lists so operators can work series-at-a-time where possible and only
//! fall back to per-step work where semantics require it (matching, aggregation).

mod aggregate;
mod binary;
mod functions;
pub(crate) mod plan;
mod points;
pub(crate) mod util;

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use promql_parser::label::{MatchOp as PMatchOp, Matcher as PMatcher};
use promql_parser::parser::{self, AtModifier, Expr, Offset, VectorSelector};

use crate::error::QueryError;
use crate::hash::{FxMap, fx_map};
use crate::labels::{LabelMatcher, Labels, METRIC_NAME, MatchOp, compile_anchored_shared};
use crate::storage::{Sample, Series, Storage, is_stale_nan};
use crate::value::Value;
pub(crate) use points::Points;

/// Engine configuration.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// How far back an instant selector looks for the latest sample (Prometheus default 5m).
    pub lookback_delta_ms: i64,
    /// Upper bound on samples loaded plus points produced while evaluating one query.
    pub max_samples: usize,
    /// Upper bound on the number of steps of a range query (Prometheus's API allows 11,000).
    pub max_steps: usize,
    /// Upper bound on the number of steps of any subquery evaluation.
    pub max_subquery_steps: usize,
    /// Subquery resolution when none is given (`x[1h:]`), Prometheus's default global
    /// evaluation interval.
    pub default_subquery_step_ms: i64,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta_ms: 5 * 60 * 1000,
            max_samples: 50_000_000,
            max_steps: 11_000,
            max_subquery_steps: 1_000_000,
            default_subquery_step_ms: 60_000,
        }
    }
}

/// A PromQL engine. Cheap to create and stateless between queries.
///
/// Each thread memoizes (bounded) a few pure computations shared by all engines: prepared
/// query texts for [`Engine::instant`]/[`Engine::range`], compiled label-matcher regexes and
/// label strings. They only save work; no result depends on them.
#[derive(Clone, Debug, Default)]
pub struct Engine {
    opts: EngineOptions,
}

/// The byte position and text of the first number written where PromQL reads a duration in seconds (`x[N]`,
/// `x[N:M]`, `x offset N`, `x offset -N`) whose value no `Duration` holds (too large, infinite or NaN).
///
/// promql-parser converts such a number with `Duration::from_secs_f64`, which panics on these values. The
/// callers catch that panic, but the panic hook prints its message first, so a user's query would put a panic
/// on their terminal; reading the tokens beforehand refuses the query without one. `None` also for a text that
/// does not lex (the parser then fails before converting anything).
pub(crate) fn unrepresentable_duration(text: &str) -> Option<(usize, String)> {
    use lrpar::{Lexeme, Lexer, NonStreamingLexer};
    use parser::token::{T_ADD, T_COLON, T_LEFT_BRACKET, T_NUMBER, T_OFFSET, T_SUB};
    let lexer = parser::lex::lexer(text).ok()?;
    // The two tokens before the current one.
    let (mut before, mut before_that) = (None, None);
    for lexeme in lexer.iter().flatten() {
        let id = lexeme.tok_id();
        let duration_position = match before {
            Some(T_LEFT_BRACKET | T_COLON | T_OFFSET) => true,
            Some(T_ADD | T_SUB) => before_that == Some(T_OFFSET),
            _ => false,
        };
        if id == T_NUMBER && duration_position {
            let number = lexer.span_str(lexeme.span());
            let fits = promql_parser::util::parse_str_radix(number)
                .map(|secs| secs.is_finite() && (0.0..u64::MAX as f64).contains(&secs))
                // A number it cannot read is an error the parser reports itself.
                .unwrap_or(true);
            if !fits {
                return Some((lexeme.span().start(), number.to_string()));
            }
        }
        (before, before_that) = (Some(id), before);
    }
    None
}

/// Parses a query, mapping parser failures to [`QueryError::Parse`] with the byte offset of the
/// offending part of the query whenever it can be found (see `position.rs`).
pub fn parse_query(query: &str) -> Result<Expr, QueryError> {
    // The parser's recursion is proportional to nesting depth; refuse absurd nesting before it
    // can exhaust the stack.
    let (depth, deepest) = max_nesting(query);
    if depth > MAX_NESTING {
        return Err(QueryError::Parse {
            message: format!("query nesting too deep ({depth} levels)"),
            position: deepest,
        });
    }
    if let Some((position, number)) = unrepresentable_duration(query) {
        return Err(QueryError::Parse {
            message: format!("duration out of range: {number}"),
            position: Some(position),
        });
    }
    let parsed = std::panic::catch_unwind(|| parser::parse(query));
    let expr = match parsed {
        Ok(Ok(e)) => e,
        Ok(Err(message)) => {
            return Err(QueryError::Parse {
                position: crate::position::locate(query, &message),
                message,
            });
        }
        Err(_) => {
            return Err(QueryError::Parse {
                message: "parser failed on this input".to_string(),
                position: crate::position::locate_panic(query),
            });
        }
    };
    check_limit_params(query, &expr)?;
    Ok(expr)
}

/// Deepest bracket nesting the engine accepts.
const MAX_NESTING: usize = 200;

/// The deepest bracket nesting of `q`, and where it first went past [`MAX_NESTING`].
fn max_nesting(q: &str) -> (usize, Option<usize>) {
    let (mut d, mut m, mut past) = (0usize, 0usize, None);
    for (i, c) in q.char_indices() {
        match c {
            '(' | '[' | '{' => {
                d += 1;
                m = m.max(d);
                if d > MAX_NESTING && past.is_none() {
                    past = Some(i);
                }
            }
            ')' | ']' | '}' => d = d.saturating_sub(1),
            _ => {}
        }
    }
    (m, past)
}

/// `limitk` and `limit_ratio` take a scalar parameter, like `topk`; Prometheus rejects anything else when
/// parsing, `promql-parser` lets it through (it checks `topk`, `bottomk` and `quantile` only). Reported
/// with the parser's wording for `topk`.
fn check_limit_params(query: &str, expr: &Expr) -> Result<(), QueryError> {
    let Some(got) = bad_limit_param(expr) else {
        return Ok(());
    };
    Err(QueryError::Parse {
        message: format!("expected type scalar in aggregation expression, got {got}"),
        position: crate::position::limit_param_position(query),
    })
}

/// The type of the first `limitk`/`limit_ratio` parameter that is not a scalar, children first and
/// left to right (the order in which the parser checks, and `position.rs` searches).
fn bad_limit_param(e: &Expr) -> Option<parser::value::ValueType> {
    let children: Vec<&Expr> = match e {
        Expr::Aggregate(a) => a.param.iter().map(|p| &**p).chain([&*a.expr]).collect(),
        Expr::Unary(u) => vec![&u.expr],
        Expr::Binary(b) => vec![&b.lhs, &b.rhs],
        Expr::Paren(p) => vec![&p.expr],
        Expr::Subquery(s) => vec![&s.expr],
        Expr::Call(c) => c.args.args.iter().map(|a| &**a).collect(),
        Expr::VectorSelector(_)
        | Expr::MatrixSelector(_)
        | Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::Extension(_) => Vec::new(),
    };
    if let Some(t) = children.into_iter().find_map(bad_limit_param) {
        return Some(t);
    }
    match e {
        Expr::Aggregate(a)
            if matches!(
                a.op.to_string().to_lowercase().as_str(),
                "limitk" | "limit_ratio"
            ) =>
        {
            a.param
                .as_ref()
                .map(|p| p.value_type())
                .filter(|t| *t != parser::value::ValueType::Scalar)
        }
        _ => None,
    }
}

impl Engine {
    /// Creates an engine.
    pub fn new(opts: EngineOptions) -> Self {
        Engine { opts }
    }

    /// The engine's options.
    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// Evaluates `query` at `time_ms`. The parsed and prepared query is kept per thread, so
    /// sending the same text again costs only the evaluation.
    pub fn instant(
        &self,
        storage: &dyn Storage,
        query: &str,
        time_ms: i64,
    ) -> Result<Value, QueryError> {
        self.instant_prepared(storage, &prepared_cached(query)?, time_ms)
    }

    /// Evaluates an already parsed expression at `time_ms`.
    pub fn instant_expr(
        &self,
        storage: &dyn Storage,
        expr: &Expr,
        time_ms: i64,
    ) -> Result<Value, QueryError> {
        self.instant_with(storage, expr, None, time_ms)
    }

    /// Parses `query` and prepares it for repeated evaluation; see [`PreparedQuery`].
    pub fn prepare(&self, query: &str) -> Result<PreparedQuery, QueryError> {
        PreparedQuery::parse(query)
    }

    /// Evaluates a prepared query at `time_ms`; the result is exactly that of
    /// [`Engine::instant_expr`] on the same expression.
    pub fn instant_prepared(
        &self,
        storage: &dyn Storage,
        query: &PreparedQuery,
        time_ms: i64,
    ) -> Result<Value, QueryError> {
        self.instant_with(storage, &query.expr, Some(&query.selectors), time_ms)
    }

    /// Range evaluation of a prepared query; the result is exactly that of
    /// [`Engine::range_expr`] on the same expression.
    pub fn range_prepared(
        &self,
        storage: &dyn Storage,
        query: &PreparedQuery,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Value, QueryError> {
        self.range_with(
            storage,
            &query.expr,
            Some(&query.selectors),
            start_ms,
            end_ms,
            step_ms,
        )
    }

    fn instant_with(
        &self,
        storage: &dyn Storage,
        expr: &Expr,
        prepared: Option<&[PreparedSelector]>,
        time_ms: i64,
    ) -> Result<Value, QueryError> {
        let ev = Evaluator::new(storage, &self.opts, time_ms, time_ms, 0, prepared);
        let grid = Grid {
            start: time_ms,
            end: time_ms,
            step: 1,
        };
        let v = ev.eval(expr, grid)?;
        match v {
            Val::Scalar(s) => Ok(Value::Scalar(Sample::new(
                time_ms,
                s.first().copied().unwrap_or(f64::NAN),
            ))),
            Val::Str(s) => Ok(Value::String {
                t: time_ms,
                value: s,
            }),
            Val::Vector(vs) => {
                let vs = cleanup_names(vs)?;
                let mut out: Vec<(Labels, Sample)> = vs
                    .into_iter()
                    .filter_map(|s| {
                        s.points
                            .first()
                            .map(|p| (s.labels, Sample::new(time_ms, p.v)))
                    })
                    .collect();
                if !is_ordered_expr(expr) {
                    out.sort_by(|a, b| a.0.cmp(&b.0));
                }
                Ok(Value::Vector(out))
            }
            Val::Matrix(m) => {
                let series = ev.matrix_at_instant(m, time_ms)?;
                Ok(Value::Matrix(series))
            }
        }
    }

    /// Evaluates `query` at every `step_ms` from `start_ms` to `end_ms` inclusive.
    pub fn range(
        &self,
        storage: &dyn Storage,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Value, QueryError> {
        self.range_prepared(storage, &prepared_cached(query)?, start_ms, end_ms, step_ms)
    }

    /// Range evaluation of an already parsed expression.
    pub fn range_expr(
        &self,
        storage: &dyn Storage,
        expr: &Expr,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Value, QueryError> {
        self.range_with(storage, expr, None, start_ms, end_ms, step_ms)
    }

    fn range_with(
        &self,
        storage: &dyn Storage,
        expr: &Expr,
        prepared: Option<&[PreparedSelector]>,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Value, QueryError> {
        if step_ms <= 0 {
            return Err(QueryError::BadParameters(
                "zero or negative query resolution step widths are not accepted. Try a positive integer"
                    .into(),
            ));
        }
        if end_ms < start_ms {
            return Err(QueryError::BadParameters(
                "end timestamp must not be before start time".into(),
            ));
        }
        let steps = (end_ms as i128 - start_ms as i128) / step_ms as i128 + 1;
        if steps > self.opts.max_steps as i128 {
            return Err(QueryError::BadParameters(format!(
                "exceeded maximum resolution of {} points per timeseries. Try decreasing the query resolution (?step=XX)",
                self.opts.max_steps
            )));
        }
        match expr.value_type() {
            parser::value::ValueType::Scalar | parser::value::ValueType::Vector => {}
            t => {
                let name = match t {
                    parser::value::ValueType::Matrix => "range vector",
                    _ => "string",
                };
                return Err(QueryError::exec(format!(
                    "invalid expression type \"{name}\" for range query, must be Scalar or instant Vector"
                )));
            }
        }
        let ev = Evaluator::new(storage, &self.opts, start_ms, end_ms, step_ms, prepared);
        let grid = Grid {
            start: start_ms,
            end: end_ms,
            step: step_ms,
        };
        let v = ev.eval(expr, grid)?;
        let mut series: Vec<Series> = match v {
            Val::Scalar(s) => vec![Series {
                labels: Labels::empty(),
                samples: s
                    .iter()
                    .enumerate()
                    .map(|(i, v)| Sample::new(grid.ts(i), *v))
                    .collect(),
            }],
            Val::Vector(vs) => cleanup_names(vs)?
                .into_iter()
                .filter(|s| !s.points.is_empty())
                .map(|s| Series {
                    labels: s.labels,
                    samples: s.points.into_vec(),
                })
                .collect(),
            _ => {
                return Err(QueryError::exec(
                    "invalid expression type for range query, must be Scalar or instant Vector",
                ));
            }
        };
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(Value::Matrix(series))
    }
}

/// A parsed expression made ready for repeated evaluation, as alerting and recording rules
/// evaluate the same expression at every interval.
///
/// Preparing builds every selector's label matchers (compiling their regexes) once; evaluating
/// through [`Engine::instant_prepared`] or [`Engine::range_prepared`] then gives exactly the
/// results (and errors) of [`Engine::instant_expr`] and [`Engine::range_expr`]. Cloning is cheap
/// and clones share the prepared state.
///
/// ```
/// use firedrill_promql::{Engine, EngineOptions, Labels, MemStorage, Value};
///
/// let mut store = MemStorage::new();
/// store.append(&Labels::new([("__name__", "up"), ("job", "api")]), 0, 0.0);
/// let engine = Engine::new(EngineOptions::default());
/// let rule = engine.prepare(r#"up{job=~"api|web"} == 0"#).unwrap();
/// for t in [0, 15_000, 30_000] {
///     let v = engine.instant_prepared(&store, &rule, t).unwrap();
///     assert!(matches!(v, Value::Vector(ref s) if s.len() == 1));
/// }
/// ```
#[derive(Clone, Debug)]
pub struct PreparedQuery {
    /// Shared so that the selectors' addresses, which key `selectors`, never change.
    expr: Arc<Expr>,
    /// Per selector of `expr` (by address, ascending), its matcher groups or the error building
    /// them raised (reported only if the selector is evaluated, as without preparation).
    selectors: Arc<[PreparedSelector]>,
}

/// A selector's address in its prepared expression and its matcher groups.
type PreparedSelector = (usize, Result<Arc<[Vec<LabelMatcher>]>, QueryError>);

impl PreparedQuery {
    /// Prepares a parsed expression.
    pub fn new(expr: Expr) -> Self {
        let expr = Arc::new(expr);
        let mut selectors = Vec::new();
        visit_selectors(&expr, &mut |vs| {
            selectors.push((selector_key(vs), selector_matchers(vs).map(Arc::from)));
        });
        selectors.sort_by_key(|s| s.0);
        PreparedQuery {
            expr,
            selectors: selectors.into(),
        }
    }

    /// Parses and prepares a query.
    pub fn parse(query: &str) -> Result<Self, QueryError> {
        Ok(PreparedQuery::new(parse_query(query)?))
    }

    /// The prepared expression.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }
}

/// How many prepared query texts each thread keeps; the cache is emptied when it would grow past.
const PREPARED_CACHE_CAP: usize = 128;

thread_local! {
    /// Prepared queries by text, for [`Engine::instant`] and [`Engine::range`]: callers often
    /// send the same text again, and parsing (which compiles the parser's own regexes) costs
    /// more than evaluating a small query. Parsing is a pure function of the text, so this
    /// cannot change any result.
    static PREPARED: RefCell<FxMap<String, PreparedQuery>> = RefCell::new(fx_map());
}

/// [`PreparedQuery::parse`], memoized per thread (parse errors are not kept).
fn prepared_cached(query: &str) -> Result<PreparedQuery, QueryError> {
    if let Ok(Some(p)) = PREPARED.try_with(|c| c.borrow().get(query).cloned()) {
        return Ok(p);
    }
    let p = PreparedQuery::parse(query)?;
    // Unavailable only while the thread shuts down; the query is then simply not kept.
    let _ = PREPARED.try_with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= PREPARED_CACHE_CAP {
            c.clear();
        }
        c.insert(query.to_string(), p.clone());
    });
    Ok(p)
}

/// Identifies a selector node by its address, which is stable while its tree is neither moved
/// nor modified (a prepared expression is behind an `Arc` and never modified).
fn selector_key(vs: &VectorSelector) -> usize {
    std::ptr::from_ref(vs) as usize
}

/// Calls `f` on every vector selector in `e`, including those of matrix selectors.
fn visit_selectors<'e>(e: &'e Expr, f: &mut impl FnMut(&'e VectorSelector)) {
    match e {
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                visit_selectors(p, f);
            }
            visit_selectors(&a.expr, f);
        }
        Expr::Unary(u) => visit_selectors(&u.expr, f),
        Expr::Binary(b) => {
            visit_selectors(&b.lhs, f);
            visit_selectors(&b.rhs, f);
        }
        Expr::Paren(p) => visit_selectors(&p.expr, f),
        Expr::Subquery(s) => visit_selectors(&s.expr, f),
        Expr::VectorSelector(vs) => f(vs),
        Expr::MatrixSelector(ms) => f(&ms.vs),
        Expr::Call(c) => {
            for a in &c.args.args {
                visit_selectors(a, f);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// Label matchers of a selector; one matcher list per `or` alternative.
pub(crate) fn selector_matchers(vs: &VectorSelector) -> Result<Vec<Vec<LabelMatcher>>, QueryError> {
    let conv = |m: &PMatcher| -> Result<LabelMatcher, QueryError> {
        let op = match m.op {
            PMatchOp::Equal => MatchOp::Eq,
            PMatchOp::NotEqual => MatchOp::Ne,
            PMatchOp::Re(_) => MatchOp::Re,
            PMatchOp::NotRe(_) => MatchOp::Nre,
        };
        LabelMatcher::new(m.name.clone(), op, m.value.clone())
            .map_err(|e| QueryError::exec(format!("invalid regular expression {:?}: {e}", m.value)))
    };
    let mut base: Vec<LabelMatcher> = Vec::new();
    if let Some(n) = &vs.name {
        base.push(LabelMatcher::eq(METRIC_NAME, n.clone()));
    }
    for m in &vs.matchers.matchers {
        base.push(conv(m)?);
    }
    if vs.matchers.or_matchers.is_empty() {
        return Ok(vec![base]);
    }
    let mut out = Vec::new();
    for group in &vs.matchers.or_matchers {
        let mut ms = base.clone();
        for m in group {
            ms.push(conv(m)?);
        }
        out.push(ms);
    }
    Ok(out)
}

/// Whether Prometheus would return this expression's instant result in a meaningful order.
fn is_ordered_expr(e: &Expr) -> bool {
    match e {
        Expr::Paren(p) => is_ordered_expr(&p.expr),
        Expr::Call(c) => matches!(
            c.func.name,
            "sort" | "sort_desc" | "sort_by_label" | "sort_by_label_desc"
        ),
        Expr::Aggregate(a) => matches!(a.op.to_string().as_str(), "topk" | "bottomk"),
        _ => false,
    }
}

/// The evaluation grid of one (sub)expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Grid {
    pub start: i64,
    pub end: i64,
    pub step: i64,
}

impl Grid {
    pub fn len(&self) -> usize {
        ((self.end - self.start) / self.step + 1) as usize
    }
    pub fn ts(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }
    pub fn index(&self, t: i64) -> usize {
        ((t - self.start) / self.step) as usize
    }
}

/// An instant-vector series over the grid. `points[i].t` are grid timestamps.
#[derive(Clone, Debug)]
pub(crate) struct StepSeries {
    pub labels: Labels,
    /// Prometheus 3 delays `__name__` removal to the end of evaluation so that label functions
    /// can still read it; this flag records that the name must go.
    pub drop_name: bool,
    pub points: Points,
}

/// One series of a range-vector operand.
#[derive(Clone, Debug)]
pub(crate) struct MatrixSeries<'s> {
    pub labels: Labels,
    pub drop_name: bool,
    /// Samples in time order, without staleness markers; lent by the storage when possible.
    pub points: Cow<'s, [Sample]>,
}

/// A range-vector operand: raw samples plus how to cut a window for a given step.
#[derive(Clone, Debug)]
pub(crate) struct MatrixVal<'s> {
    pub series: Vec<MatrixSeries<'s>>,
    pub range: i64,
    pub offset: i64,
    pub at: Option<i64>,
}

impl MatrixVal<'_> {
    /// The same value owning all its samples.
    fn into_owned(self) -> MatrixVal<'static> {
        MatrixVal {
            series: self
                .series
                .into_iter()
                .map(|s| MatrixSeries {
                    labels: s.labels,
                    drop_name: s.drop_name,
                    points: Cow::Owned(s.points.into_owned()),
                })
                .collect(),
            range: self.range,
            offset: self.offset,
            at: self.at,
        }
    }

    /// Window `(lo, hi]` for evaluation time `t`.
    pub fn window(&self, t: i64) -> (i64, i64) {
        let base = self.at.unwrap_or(t);
        let hi = base.saturating_sub(self.offset);
        (hi.saturating_sub(self.range), hi)
    }
}

#[derive(Debug)]
pub(crate) enum Val {
    Scalar(Vec<f64>),
    Str(String),
    Vector(Vec<StepSeries>),
    Matrix(MatrixVal<'static>),
}

pub(crate) struct Evaluator<'a> {
    storage: &'a dyn Storage,
    opts: &'a EngineOptions,
    pub(crate) query_start: i64,
    pub(crate) query_end: i64,
    /// Top-level step (0 for instant queries), reported by `step()`.
    pub(crate) query_step: i64,
    samples: Cell<usize>,
    /// Matchers of a prepared query's selectors, by selector address.
    prepared: Option<&'a [PreparedSelector]>,
}

pub(crate) fn dur_ms(d: &Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn system_time_ms(t: &SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => dur_ms(&d),
        Err(e) => dur_ms(&e.duration()).saturating_neg(),
    }
}

fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => dur_ms(d),
        Some(Offset::Neg(d)) => dur_ms(d).saturating_neg(),
    }
}

/// Drops flagged metric names and merges series that become identical, failing when two of
/// them have a point at the same time (Prometheus's `cleanupMetricLabels`).
pub(crate) fn cleanup_names(vs: Vec<StepSeries>) -> Result<Vec<StepSeries>, QueryError> {
    if !vs.iter().any(|s| s.drop_name) {
        return Ok(vs);
    }
    let mut idx: FxMap<Labels, usize> = fx_map();
    let mut out: Vec<StepSeries> = Vec::with_capacity(vs.len());
    let mut merged = false;
    for mut s in vs {
        if s.drop_name {
            s.labels.remove_metric_identity();
            s.drop_name = false;
        }
        match idx.get(&s.labels) {
            Some(&i) => {
                merged = true;
                out[i].points.append(s.points);
            }
            None => {
                idx.insert(s.labels.clone(), out.len());
                out.push(s);
            }
        }
    }
    if merged {
        for s in &mut out {
            s.points.sort_by_key(|p| p.t);
            if s.points.windows(2).any(|w| w[0].t == w[1].t) {
                return Err(dup_labelset_err());
            }
        }
    }
    Ok(out)
}

pub(crate) fn dup_labelset_err() -> QueryError {
    QueryError::exec("vector cannot contain metrics with the same labelset")
}

/// Collects output points into series keyed by label set, detecting duplicate label sets at
/// the same timestamp. `K` is a cheap caller-side key (e.g. input series index) so that labels
/// are computed and hashed once per distinct key, not once per point.
pub(crate) struct Collector<K: Hash + Eq> {
    by_key: FxMap<K, usize>,
    by_labels: FxMap<Labels, usize>,
    pub series: Vec<StepSeries>,
}

impl<K: Hash + Eq> Collector<K> {
    pub fn new() -> Self {
        Collector {
            by_key: fx_map(),
            by_labels: fx_map(),
            series: Vec::new(),
        }
    }

    pub fn slot(&mut self, key: K, make: impl FnOnce() -> (Labels, bool)) -> usize {
        if let Some(&i) = self.by_key.get(&key) {
            return i;
        }
        let (labels, drop_name) = make();
        let i = match self.by_labels.get(&labels) {
            Some(&i) => {
                self.series[i].drop_name |= drop_name;
                i
            }
            None => {
                let i = self.series.len();
                self.by_labels.insert(labels.clone(), i);
                self.series.push(StepSeries {
                    labels,
                    drop_name,
                    points: Points::Empty,
                });
                i
            }
        };
        self.by_key.insert(key, i);
        i
    }

    pub fn push(&mut self, slot: usize, t: i64, v: f64) -> Result<(), QueryError> {
        let pts = &mut self.series[slot].points;
        if let Some(last) = pts.last()
            && last.t == t
        {
            return Err(dup_labelset_err());
        }
        pts.push(Sample::new(t, v));
        Ok(())
    }

    pub fn finish(self) -> Vec<StepSeries> {
        self.series
            .into_iter()
            .filter(|s| !s.points.is_empty())
            .collect()
    }
}

/// Per-step view of a vector: for each grid step, `(series index, value)` pairs.
pub(crate) fn by_step(series: &[StepSeries], grid: Grid) -> Vec<Vec<(usize, f64)>> {
    let mut steps: Vec<Vec<(usize, f64)>> = vec![Vec::new(); grid.len()];
    if let [only] = steps.as_mut_slice() {
        only.reserve_exact(series.len());
    }
    for (i, s) in series.iter().enumerate() {
        for p in &s.points {
            steps[grid.index(p.t)].push((i, p.v));
        }
    }
    steps
}

impl<'a> Evaluator<'a> {
    fn new(
        storage: &'a dyn Storage,
        opts: &'a EngineOptions,
        query_start: i64,
        query_end: i64,
        query_step: i64,
        prepared: Option<&'a [PreparedSelector]>,
    ) -> Self {
        Evaluator {
            storage,
            opts,
            query_start,
            query_end,
            query_step,
            samples: Cell::new(0),
            prepared,
        }
    }

    pub(crate) fn add_samples(&self, n: usize) -> Result<(), QueryError> {
        let total = self.samples.get().saturating_add(n);
        self.samples.set(total);
        if total > self.opts.max_samples {
            return Err(QueryError::TooManySamples);
        }
        Ok(())
    }

    fn count_points(&self, vs: &[StepSeries]) -> Result<(), QueryError> {
        self.add_samples(vs.iter().map(|s| s.points.len()).sum())
    }

    pub(crate) fn eval(&self, expr: &Expr, grid: Grid) -> Result<Val, QueryError> {
        let v = match expr {
            Expr::NumberLiteral(n) => Val::Scalar(vec![n.val; grid.len()]),
            Expr::StringLiteral(s) => Val::Str(s.val.clone()),
            Expr::Paren(p) => self.eval(&p.expr, grid)?,
            Expr::Unary(u) => match self.eval(&u.expr, grid)? {
                Val::Scalar(mut s) => {
                    for v in &mut s {
                        *v = -*v;
                    }
                    Val::Scalar(s)
                }
                Val::Vector(mut vs) => {
                    for s in &mut vs {
                        s.drop_name = true;
                        for p in &mut s.points {
                            p.v = -p.v;
                        }
                    }
                    Val::Vector(vs)
                }
                _ => {
                    return Err(QueryError::exec(
                        "unary expression only allowed on expressions of type scalar or instant vector",
                    ));
                }
            },
            Expr::VectorSelector(vs) => Val::Vector(self.eval_vector_selector(vs, grid)?),
            Expr::MatrixSelector(_) | Expr::Subquery(_) => {
                Val::Matrix(self.eval_matrix(expr, grid)?.into_owned())
            }
            Expr::Binary(b) => self.eval_binary(b, grid)?,
            Expr::Aggregate(a) => self.eval_aggregate(a, grid)?,
            Expr::Call(c) => self.eval_call(c, grid)?,
            Expr::Extension(_) => {
                return Err(QueryError::exec("extension expressions are not supported"));
            }
        };
        if let Val::Vector(vs) = &v {
            self.count_points(vs)?;
        }
        Ok(v)
    }

    pub(crate) fn eval_vector(
        &self,
        expr: &Expr,
        grid: Grid,
    ) -> Result<Vec<StepSeries>, QueryError> {
        match self.eval(expr, grid)? {
            Val::Vector(v) => Ok(v),
            _ => Err(QueryError::exec(format!(
                "expected instant vector, got {}",
                expr.value_type()
            ))),
        }
    }

    pub(crate) fn eval_scalar(&self, expr: &Expr, grid: Grid) -> Result<Vec<f64>, QueryError> {
        match self.eval(expr, grid)? {
            Val::Scalar(v) => Ok(v),
            _ => Err(QueryError::exec(format!(
                "expected scalar, got {}",
                expr.value_type()
            ))),
        }
    }

    pub(crate) fn eval_string(&self, expr: &Expr, grid: Grid) -> Result<String, QueryError> {
        match self.eval(expr, grid)? {
            Val::Str(s) => Ok(s),
            _ => Err(QueryError::exec(format!(
                "expected string, got {}",
                expr.value_type()
            ))),
        }
    }

    fn resolve_at(&self, at: &Option<AtModifier>) -> Option<i64> {
        match at {
            None => None,
            Some(AtModifier::Start) => Some(self.query_start),
            Some(AtModifier::End) => Some(self.query_end),
            Some(AtModifier::At(t)) => Some(system_time_ms(t)),
        }
    }

    /// Fetches series for a selector, deterministic order, sample budget enforced.
    fn select(
        &self,
        vs: &VectorSelector,
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<MatrixSeries<'a>>, QueryError> {
        if mint > maxt {
            return Ok(Vec::new());
        }
        let prepared = self.prepared.and_then(|p| {
            let key = selector_key(vs);
            p.binary_search_by_key(&key, |s| s.0).ok().map(|i| &p[i].1)
        });
        let built;
        let groups: &[Vec<LabelMatcher>] = match prepared {
            Some(Ok(g)) => g,
            Some(Err(e)) => return Err(e.clone()),
            None => {
                built = selector_matchers(vs)?;
                &built
            }
        };
        let storage = self.storage;
        let fetch = |g: &[LabelMatcher]| -> Result<Vec<MatrixSeries<'a>>, QueryError> {
            Ok(match storage.select_lent(g, mint, maxt) {
                Some(lent) => lent?
                    .into_iter()
                    .map(|s| MatrixSeries {
                        labels: s.labels,
                        drop_name: false,
                        points: Cow::Borrowed(s.samples),
                    })
                    .collect(),
                None => storage
                    .select(g, mint, maxt)?
                    .into_iter()
                    .map(|s| MatrixSeries {
                        labels: s.labels,
                        drop_name: false,
                        points: Cow::Owned(s.samples),
                    })
                    .collect(),
            })
        };
        let mut series = if groups.len() == 1 {
            fetch(&groups[0])?
        } else {
            let mut all: BTreeMap<Labels, MatrixSeries<'a>> = BTreeMap::new();
            for g in groups {
                for s in fetch(g)? {
                    all.entry(s.labels.clone()).or_insert(s);
                }
            }
            all.into_values().collect()
        };
        // Storages usually return sorted, distinct series already; checking is cheaper.
        if !series.windows(2).all(|w| w[0].labels < w[1].labels) {
            series.sort_by(|a, b| a.labels.cmp(&b.labels));
            series.dedup_by(|a, b| a.labels == b.labels);
        }
        self.add_samples(series.iter().map(|s| s.points.len()).sum())?;
        Ok(series)
    }

    fn eval_vector_selector(
        &self,
        vs: &VectorSelector,
        grid: Grid,
    ) -> Result<Vec<StepSeries>, QueryError> {
        let offset = offset_ms(&vs.offset);
        let at = self.resolve_at(&vs.at);
        let lookback = self.opts.lookback_delta_ms;
        let (lo_base, hi_base) = match at {
            Some(a) => (a, a),
            None => (grid.start, grid.end),
        };
        let mint = lo_base
            .saturating_sub(offset)
            .saturating_sub(lookback)
            .saturating_add(1);
        let maxt = hi_base.saturating_sub(offset);
        let series = self.select(vs, mint, maxt)?;
        let n = grid.len();
        let mut out = Vec::with_capacity(series.len());
        for s in series {
            let mut points = Points::Empty;
            if let Some(a) = at {
                if let Some(v) = lookup(&s.points, a.saturating_sub(offset), lookback) {
                    points = (0..n).map(|i| Sample::new(grid.ts(i), v)).collect();
                }
            } else {
                let mut cursor = 0usize;
                for i in 0..n {
                    let t = grid.ts(i);
                    let ref_t = t.saturating_sub(offset);
                    while cursor < s.points.len() && s.points[cursor].t <= ref_t {
                        cursor += 1;
                    }
                    if cursor == 0 {
                        continue;
                    }
                    let smp = s.points[cursor - 1];
                    if smp.t > ref_t.saturating_sub(lookback) && !is_stale_nan(smp.v) {
                        points.push(Sample::new(t, smp.v));
                    }
                }
            }
            if !points.is_empty() {
                out.push(StepSeries {
                    labels: s.labels,
                    drop_name: false,
                    points,
                });
            }
        }
        Ok(out)
    }

    /// `timestamp(selector)`: like a selector but yielding the sample's own timestamp.
    pub(crate) fn eval_selector_timestamps(
        &self,
        vs: &VectorSelector,
        grid: Grid,
    ) -> Result<Vec<StepSeries>, QueryError> {
        let offset = offset_ms(&vs.offset);
        let at = self.resolve_at(&vs.at);
        let lookback = self.opts.lookback_delta_ms;
        let (lo_base, hi_base) = match at {
            Some(a) => (a, a),
            None => (grid.start, grid.end),
        };
        let mint = lo_base
            .saturating_sub(offset)
            .saturating_sub(lookback)
            .saturating_add(1);
        let maxt = hi_base.saturating_sub(offset);
        let series = self.select(vs, mint, maxt)?;
        let mut out = Vec::new();
        for s in series {
            let mut points = Points::Empty;
            for i in 0..grid.len() {
                let t = grid.ts(i);
                let ref_t = at.unwrap_or(t).saturating_sub(offset);
                let idx = s.points.partition_point(|x| x.t <= ref_t);
                if idx == 0 {
                    continue;
                }
                let smp = s.points[idx - 1];
                if smp.t > ref_t.saturating_sub(lookback) && !is_stale_nan(smp.v) {
                    points.push(Sample::new(t, smp.t as f64 / 1000.0));
                }
            }
            if !points.is_empty() {
                out.push(StepSeries {
                    labels: s.labels,
                    drop_name: true,
                    points,
                });
            }
        }
        Ok(out)
    }

    /// Evaluates a range-vector expression for use over `grid`.
    pub(crate) fn eval_matrix(&self, expr: &Expr, grid: Grid) -> Result<MatrixVal<'a>, QueryError> {
        match expr {
            Expr::Paren(p) => self.eval_matrix(&p.expr, grid),
            Expr::MatrixSelector(ms) => {
                let vs = &ms.vs;
                let offset = offset_ms(&vs.offset);
                let at = self.resolve_at(&vs.at);
                let range = dur_ms(&ms.range);
                let (lo_base, hi_base) = match at {
                    Some(a) => (a, a),
                    None => (grid.start, grid.end),
                };
                let mint = lo_base
                    .saturating_sub(offset)
                    .saturating_sub(range)
                    .saturating_add(1);
                let maxt = hi_base.saturating_sub(offset);
                let mut series = self.select(vs, mint, maxt)?;
                for s in &mut series {
                    without_stale(&mut s.points);
                }
                Ok(MatrixVal {
                    series,
                    range,
                    offset,
                    at,
                })
            }
            Expr::Subquery(sq) => {
                let offset = offset_ms(&sq.offset);
                let at = self.resolve_at(&sq.at);
                let range = dur_ms(&sq.range);
                let step = sq
                    .step
                    .as_ref()
                    .map(dur_ms)
                    .unwrap_or(self.opts.default_subquery_step_ms);
                if step <= 0 {
                    return Err(QueryError::exec("subquery step must be positive"));
                }
                let (lo_base, hi_base) = match at {
                    Some(a) => (a, a),
                    None => (grid.start, grid.end),
                };
                let first = lo_base.saturating_sub(offset).saturating_sub(range);
                let mut start = first.div_euclid(step).saturating_mul(step);
                if start <= first {
                    start = start.saturating_add(step);
                }
                let end = hi_base.saturating_sub(offset);
                let mut series = Vec::new();
                if start <= end {
                    let steps = (end as i128 - start as i128) / step as i128 + 1;
                    if steps > self.opts.max_subquery_steps as i128 {
                        return Err(QueryError::exec(format!(
                            "subquery would evaluate {steps} steps, more than the limit of {}",
                            self.opts.max_subquery_steps
                        )));
                    }
                    let inner = Grid { start, end, step };
                    series = self
                        .eval_vector(&sq.expr, inner)?
                        .into_iter()
                        .map(|s| MatrixSeries {
                            labels: s.labels,
                            drop_name: s.drop_name,
                            points: Cow::Owned(s.points.into_vec()),
                        })
                        .collect();
                }
                Ok(MatrixVal {
                    series,
                    range,
                    offset,
                    at,
                })
            }
            _ => Err(QueryError::exec(format!(
                "expected range vector, got {}",
                expr.value_type()
            ))),
        }
    }

    /// The samples of a range-vector value as seen by an instant query at `t`.
    fn matrix_at_instant(&self, m: MatrixVal, t: i64) -> Result<Vec<Series>, QueryError> {
        let (lo, hi) = m.window(t);
        let series: Vec<StepSeries> = m
            .series
            .into_iter()
            .filter_map(|s| {
                let points: Points = s
                    .points
                    .iter()
                    .filter(|p| p.t > lo && p.t <= hi)
                    .copied()
                    .collect();
                (!points.is_empty()).then_some(StepSeries {
                    labels: s.labels,
                    drop_name: s.drop_name,
                    points,
                })
            })
            .collect();
        let mut out: Vec<Series> = cleanup_names(series)?
            .into_iter()
            .map(|s| Series {
                labels: s.labels,
                samples: s.points.into_vec(),
            })
            .collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }
}

/// Drops staleness markers; samples without any stay lent.
fn without_stale(samples: &mut Cow<'_, [Sample]>) {
    if samples.iter().any(|p| is_stale_nan(p.v)) {
        *samples = Cow::Owned(
            samples
                .iter()
                .filter(|p| !is_stale_nan(p.v))
                .copied()
                .collect(),
        );
    }
}

/// Latest non-stale sample at or before `t` within the lookback window.
pub(crate) fn lookup(samples: &[Sample], t: i64, lookback: i64) -> Option<f64> {
    let idx = samples.partition_point(|s| s.t <= t);
    if idx == 0 {
        return None;
    }
    let s = samples[idx - 1];
    if s.t > t.saturating_sub(lookback) && !is_stale_nan(s.v) {
        Some(s.v)
    } else {
        None
    }
}

/// Compiles a user regex (label_replace & co.) with PromQL's anchoring.
pub(crate) fn user_regex(src: &str) -> Result<std::sync::Arc<regex::Regex>, regex::Error> {
    compile_anchored_shared(src)
}
