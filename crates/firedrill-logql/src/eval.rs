//! Query evaluation: log queries (streams) and metric queries (matrix, vector, scalar).

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use crate::ast::{
    BinOp, BinaryExpr, Expr, Grouping, LogExpr, MetricExpr, RangeAgg, RangeOp, UnwrapConv,
    VectorAgg, VectorMatching, VectorOp,
};
use crate::error::LogqlError;
use crate::parser::parse;
use crate::pipeline::{self, ERROR_DETAILS_LABEL, ERROR_LABEL, Entry};
use crate::result::{QueryResult, Sample, Series, Stats, StreamResult};
use crate::source::{LogSource, MatchOp};
use crate::units::{parse_bytes, parse_duration_ns};

type Labels = BTreeMap<String, String>;

/// Order of entries in a log query result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Oldest first.
    Forward,
    /// Newest first (Loki's default).
    #[default]
    Backward,
}

impl FromStr for Direction {
    type Err = LogqlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "forward" => Ok(Self::Forward),
            "backward" => Ok(Self::Backward),
            _ => Err(LogqlError::InvalidRequest(format!(
                "invalid direction {s:?}: expected forward or backward"
            ))),
        }
    }
}

/// Caps on the work one query may do. Exceeding any is an error, never a truncated answer
/// (except `limit`, which is the caller's own truncation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest `limit` accepted for log queries (Loki: `max_entries_limit_per_query`).
    pub max_entries_limit: usize,
    /// Most steps per series in a range query (Prometheus/Loki: 11,000).
    pub max_points_per_series: usize,
    /// Most series a metric query may produce at any stage (Loki: `max_query_series`).
    pub max_series: usize,
    /// Most log lines read from the source for one query.
    pub max_scanned_entries: usize,
    /// Most `series × steps` cells held at once.
    pub max_total_points: usize,
    /// Most samples visited while computing range-aggregation windows.
    pub max_window_samples: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_entries_limit: 5000,
            max_points_per_series: 11_000,
            max_series: 5000,
            max_scanned_entries: 5_000_000,
            max_total_points: 20_000_000,
            max_window_samples: 200_000_000,
        }
    }
}

/// Loki's default step for a range query without `step`: the range split into ~250 points,
/// at least one second.
pub fn default_step_ns(start_ns: i64, end_ns: i64) -> i64 {
    let secs = (end_ns.saturating_sub(start_ns) as f64 / 1e9 / 250.0)
        .ceil()
        .max(1.0);
    (secs as i64).saturating_mul(1_000_000_000)
}

/// Evaluates LogQL against a [`LogSource`].
#[derive(Debug, Clone, Default)]
pub struct Engine {
    /// Work caps.
    pub limits: Limits,
}

enum Value {
    Scalar(f64),
    Vector(Vec<StepSeries>),
}

/// A series evaluated at every step (`None` where it has no sample).
struct StepSeries {
    labels: Labels,
    points: Vec<Option<f64>>,
}

struct Ctx<'a> {
    src: &'a dyn LogSource,
    steps: Vec<i64>,
    stats: Stats,
    window_work: u64,
}

impl Engine {
    /// An engine with default [`Limits`].
    pub fn new() -> Self {
        Self::default()
    }

    /// An engine with custom limits.
    pub fn with_limits(limits: Limits) -> Self {
        Self { limits }
    }

    /// Loki's `/query_range`: a log query returns streams with entries in `[start, end)`,
    /// at most `limit` of them, in `direction`; a metric query is evaluated at
    /// `start, start+step, ... <= end` and returns a matrix.
    #[allow(clippy::too_many_arguments)]
    pub fn query_range(
        &self,
        src: &dyn LogSource,
        query: &str,
        start_ns: i64,
        end_ns: i64,
        step_ns: i64,
        limit: usize,
        direction: Direction,
    ) -> Result<QueryResult, LogqlError> {
        let expr = parse(query)?;
        self.eval_range(src, &expr, start_ns, end_ns, step_ns, limit, direction)
    }

    /// Like [`Engine::query_range`] for an already parsed expression.
    #[allow(clippy::too_many_arguments)]
    pub fn eval_range(
        &self,
        src: &dyn LogSource,
        expr: &Expr,
        start_ns: i64,
        end_ns: i64,
        step_ns: i64,
        limit: usize,
        direction: Direction,
    ) -> Result<QueryResult, LogqlError> {
        if end_ns < start_ns {
            return Err(LogqlError::InvalidRequest(
                "end timestamp must not be before start time".into(),
            ));
        }
        match expr {
            Expr::Log(l) => self.eval_log(src, l, start_ns, end_ns, limit, direction),
            Expr::Metric(m) => {
                if step_ns <= 0 {
                    return Err(LogqlError::InvalidRequest(
                        "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
                    ));
                }
                let n = (i128::from(end_ns) - i128::from(start_ns)) / i128::from(step_ns) + 1;
                if n > self.limits.max_points_per_series as i128 {
                    return Err(LogqlError::InvalidRequest(format!(
                        "exceeded maximum resolution of {} points per timeseries. Try decreasing the query resolution (?step=XX)",
                        self.limits.max_points_per_series
                    )));
                }
                // start + i * step <= end, so the i128 result always fits back into i64.
                let steps: Vec<i64> = (0..n)
                    .map(|i| {
                        i64::try_from(i128::from(start_ns) + i * i128::from(step_ns))
                            .unwrap_or(end_ns)
                    })
                    .collect();
                let mut ctx = Ctx {
                    src,
                    steps,
                    stats: Stats::default(),
                    window_work: 0,
                };
                let v = self.eval_metric(&mut ctx, m)?;
                let steps = std::mem::take(&mut ctx.steps);
                let mut series: Vec<Series> = match v {
                    Value::Scalar(x) => vec![Series {
                        labels: Labels::new(),
                        points: steps.iter().map(|t| (*t, x)).collect(),
                    }],
                    Value::Vector(vs) => vs
                        .into_iter()
                        .map(|s| Series {
                            labels: s.labels,
                            points: steps
                                .iter()
                                .zip(s.points)
                                .filter_map(|(t, p)| p.map(|v| (*t, v)))
                                .collect(),
                        })
                        .filter(|s| !s.points.is_empty())
                        .collect(),
                };
                series.sort_by(|a, b| a.labels.cmp(&b.labels));
                ctx.stats.entries_returned = series.iter().map(|s| s.points.len() as u64).sum();
                Ok(QueryResult::Matrix(series, ctx.stats))
            }
        }
    }

    /// Loki's `/query` for metric queries: evaluates at `ts_ns` and returns a vector (or a
    /// scalar). Log queries are rejected, as Loki 3 does. `limit` and `direction` are accepted
    /// for signature symmetry with Loki's API and ignored.
    pub fn query_instant(
        &self,
        src: &dyn LogSource,
        query: &str,
        ts_ns: i64,
        limit: usize,
        direction: Direction,
    ) -> Result<QueryResult, LogqlError> {
        let expr = parse(query)?;
        self.eval_instant(src, &expr, ts_ns, limit, direction)
    }

    /// Like [`Engine::query_instant`] for an already parsed expression.
    pub fn eval_instant(
        &self,
        src: &dyn LogSource,
        expr: &Expr,
        ts_ns: i64,
        _limit: usize,
        _direction: Direction,
    ) -> Result<QueryResult, LogqlError> {
        let Expr::Metric(m) = expr else {
            return Err(LogqlError::InvalidRequest(
                "log queries are not supported as an instant query type, please change your query to a range query type".into(),
            ));
        };
        let mut ctx = Ctx {
            src,
            steps: vec![ts_ns],
            stats: Stats::default(),
            window_work: 0,
        };
        match self.eval_metric(&mut ctx, m)? {
            Value::Scalar(x) => Ok(QueryResult::Scalar(ts_ns, x, ctx.stats)),
            Value::Vector(vs) => {
                let mut samples: Vec<Sample> = vs
                    .into_iter()
                    .filter_map(|s| {
                        s.points.first().copied().flatten().map(|value| Sample {
                            labels: s.labels,
                            ts_ns,
                            value,
                        })
                    })
                    .collect();
                let by_labels = |a: &Sample, b: &Sample| a.labels.cmp(&b.labels);
                match m {
                    MetricExpr::Vector(VectorAgg {
                        op: VectorOp::Sort | VectorOp::Bottomk,
                        ..
                    }) => samples
                        .sort_by(|a, b| a.value.total_cmp(&b.value).then_with(|| by_labels(a, b))),
                    MetricExpr::Vector(VectorAgg {
                        op: VectorOp::SortDesc | VectorOp::Topk,
                        ..
                    }) => samples
                        .sort_by(|a, b| b.value.total_cmp(&a.value).then_with(|| by_labels(a, b))),
                    _ => samples.sort_by(by_labels),
                }
                ctx.stats.entries_returned = samples.len() as u64;
                Ok(QueryResult::Vector(samples, ctx.stats))
            }
        }
    }

    fn read_limit_check(&self, scanned: u64) -> Result<(), LogqlError> {
        if scanned > self.limits.max_scanned_entries as u64 {
            Err(LogqlError::LimitExceeded(format!(
                "the query would read more than {} log lines; narrow the stream selector or the time range",
                self.limits.max_scanned_entries
            )))
        } else {
            Ok(())
        }
    }

    fn eval_log(
        &self,
        src: &dyn LogSource,
        l: &LogExpr,
        start_ns: i64,
        end_ns: i64,
        limit: usize,
        direction: Direction,
    ) -> Result<QueryResult, LogqlError> {
        if limit == 0 {
            return Err(LogqlError::InvalidRequest(
                "limit must be a positive value".into(),
            ));
        }
        if limit > self.limits.max_entries_limit {
            return Err(LogqlError::InvalidRequest(format!(
                "max entries limit per query exceeded, limit > max_entries_limit_per_query ({limit} > {})",
                self.limits.max_entries_limit
            )));
        }
        let streams = src.select(&l.selector, start_ns, end_ns)?;
        let mut stats = Stats::default();
        // (ts, stream index, entry index, labels, line); the indices make ordering total.
        let mut kept: Vec<(i64, usize, usize, Labels, String)> = Vec::new();
        for (si, s) in streams.iter().enumerate() {
            let mut taken = 0usize;
            let order: Box<dyn Iterator<Item = (usize, &crate::LogEntry)>> = match direction {
                Direction::Forward => Box::new(s.entries.iter().enumerate()),
                Direction::Backward => Box::new(s.entries.iter().enumerate().rev()),
            };
            for (ei, entry) in order {
                if entry.ts_ns < start_ns || entry.ts_ns >= end_ns {
                    continue;
                }
                stats.lines_processed += 1;
                stats.bytes_processed += entry.line.len() as u64;
                self.read_limit_check(stats.lines_processed)?;
                let mut e = Entry::new(&s.labels, &entry.line, entry.ts_ns);
                if pipeline::run(&l.stages, &mut e) {
                    stats.post_filter_lines += 1;
                    kept.push((
                        entry.ts_ns,
                        si,
                        ei,
                        e.labels.into_owned(),
                        e.line.into_owned(),
                    ));
                    taken += 1;
                    // Entries are time-ordered per stream, so no stream can contribute more
                    // than `limit` entries to the global top `limit`.
                    if taken >= limit {
                        break;
                    }
                }
            }
        }
        match direction {
            Direction::Forward => kept.sort_by_key(|a| (a.0, a.1, a.2)),
            Direction::Backward => kept.sort_by(|a, b| (b.0, a.1, b.2).cmp(&(a.0, b.1, a.2))),
        }
        kept.truncate(limit);
        stats.entries_returned = kept.len() as u64;
        let mut grouped: BTreeMap<Labels, Vec<(i64, String)>> = BTreeMap::new();
        for (ts, _, _, labels, line) in kept {
            grouped.entry(labels).or_default().push((ts, line));
        }
        let streams = grouped
            .into_iter()
            .map(|(labels, entries)| StreamResult { labels, entries })
            .collect();
        Ok(QueryResult::Streams(streams, stats))
    }

    fn check_series(&self, n: usize, steps: usize) -> Result<(), LogqlError> {
        if n > self.limits.max_series {
            return Err(LogqlError::LimitExceeded(format!(
                "maximum of series ({}) reached for a single query",
                self.limits.max_series
            )));
        }
        if n.saturating_mul(steps) > self.limits.max_total_points {
            return Err(LogqlError::LimitExceeded(format!(
                "the query would hold more than {} points; use a larger step or fewer series",
                self.limits.max_total_points
            )));
        }
        Ok(())
    }

    fn eval_metric(&self, ctx: &mut Ctx<'_>, m: &MetricExpr) -> Result<Value, LogqlError> {
        match m {
            MetricExpr::Literal(v) => Ok(Value::Scalar(*v)),
            MetricExpr::VectorLit(v) => Ok(Value::Vector(vec![StepSeries {
                labels: Labels::new(),
                points: vec![Some(*v); ctx.steps.len()],
            }])),
            MetricExpr::Neg(inner) => Ok(match self.eval_metric(ctx, inner)? {
                Value::Scalar(x) => Value::Scalar(-x),
                Value::Vector(mut vs) => {
                    for s in &mut vs {
                        for p in s.points.iter_mut().flatten() {
                            *p = -*p;
                        }
                    }
                    Value::Vector(vs)
                }
            }),
            MetricExpr::Range(r) => self.eval_range_agg(ctx, r).map(Value::Vector),
            MetricExpr::Vector(v) => {
                let Value::Vector(inner) = self.eval_metric(ctx, &v.expr)? else {
                    return Err(LogqlError::Execution(format!(
                        "expected a vector in {} aggregation, got a scalar",
                        v.op.name()
                    )));
                };
                Ok(Value::Vector(vector_agg(v, inner, ctx.steps.len())))
            }
            MetricExpr::Binary(b) => {
                let l = self.eval_metric(ctx, &b.lhs)?;
                let r = self.eval_metric(ctx, &b.rhs)?;
                let out = binary(b, l, r, ctx.steps.len())?;
                if let Value::Vector(vs) = &out {
                    self.check_series(vs.len(), ctx.steps.len())?;
                }
                Ok(out)
            }
        }
    }

    fn eval_range_agg(
        &self,
        ctx: &mut Ctx<'_>,
        r: &RangeAgg,
    ) -> Result<Vec<StepSeries>, LogqlError> {
        let (Some(&first), Some(&last)) = (ctx.steps.first(), ctx.steps.last()) else {
            return Ok(Vec::new());
        };
        // Window for step t is (t - offset - range, t - offset]; the source range is half-open.
        let lo = first
            .saturating_sub(r.offset_ns)
            .saturating_sub(r.range_ns)
            .saturating_add(1);
        let hi = last.saturating_sub(r.offset_ns).saturating_add(1);
        let streams = ctx.src.select(&r.log.selector, lo, hi)?;
        let bytes_op = matches!(r.op, RangeOp::BytesOverTime | RangeOp::BytesRate);
        let mut series: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
        for s in &streams {
            for entry in &s.entries {
                if entry.ts_ns < lo || entry.ts_ns >= hi {
                    continue;
                }
                ctx.stats.lines_processed += 1;
                ctx.stats.bytes_processed += entry.line.len() as u64;
                self.read_limit_check(ctx.stats.lines_processed)?;
                let mut e = Entry::new(&s.labels, &entry.line, entry.ts_ns);
                if !pipeline::run(&r.log.stages, &mut e) {
                    continue;
                }
                let value = match &r.unwrap {
                    None if bytes_op => e.line.len() as f64,
                    None => 1.0,
                    Some(u) => {
                        let raw = e.labels.get(&u.label).cloned().unwrap_or_default();
                        let parsed = match u.conv {
                            UnwrapConv::Number => raw.trim().parse::<f64>().ok(),
                            UnwrapConv::Duration => {
                                parse_duration_ns(raw.trim(), false).map(|ns| ns as f64 / 1e9)
                            }
                            UnwrapConv::Bytes => parse_bytes(&raw).map(|b| b as f64),
                        };
                        let v = match parsed {
                            Some(v) => v,
                            None => {
                                e.set_error(
                                    "SampleExtractionErr",
                                    format!("cannot convert label {} value {raw:?}", u.label),
                                );
                                0.0
                            }
                        };
                        if !u
                            .post_filters
                            .iter()
                            .all(|f| pipeline::label_filter(f, &mut e))
                        {
                            continue;
                        }
                        if e.labels.contains_key(&u.label) {
                            e.labels.to_mut().remove(&u.label);
                        }
                        v
                    }
                };
                ctx.stats.post_filter_lines += 1;
                if let Some(kind) = e.labels.get(ERROR_LABEL) {
                    let mut shown = e.labels.clone().into_owned();
                    shown.remove(ERROR_DETAILS_LABEL);
                    return Err(LogqlError::Execution(format!(
                        "pipeline error: '{kind}' for series: '{}'. Use a label filter to intentionally skip this error. (e.g | __error__!=\"{kind}\"). To skip all potential errors you can match empty errors.(e.g __error__=\"\") The label filter can also be specified after unwrap. (e.g | unwrap latency | __error__=\"\" )",
                        fmt_labels(&shown)
                    )));
                }
                let labels = match &r.grouping {
                    Some(g) => group_labels(&e.labels, Some(g)),
                    None => e.labels.into_owned(),
                };
                let len = series.len();
                series.entry(labels).or_default().push((entry.ts_ns, value));
                if series.len() != len {
                    self.check_series(series.len(), ctx.steps.len())?;
                }
            }
        }
        let range_secs = r.range_ns as f64 / 1e9;
        if r.op == RangeOp::AbsentOverTime {
            let labels: Labels = r
                .log
                .selector
                .iter()
                .filter(|m| m.op == MatchOp::Eq)
                .map(|m| (m.name.clone(), m.value.clone()))
                .collect();
            let points = ctx
                .steps
                .iter()
                .map(|&t| {
                    let end = t.saturating_sub(r.offset_ns);
                    let start = end.saturating_sub(r.range_ns);
                    let any = series.values().any(|pts| {
                        let a = pts.partition_point(|p| p.0 <= start);
                        let b = pts.partition_point(|p| p.0 <= end);
                        b > a
                    });
                    (!any).then_some(1.0)
                })
                .collect();
            return Ok(vec![StepSeries { labels, points }]);
        }
        let mut out = Vec::with_capacity(series.len());
        for (labels, mut pts) in series {
            // Several streams can collapse into one series, so restore time order.
            pts.sort_by_key(|p| p.0);
            let mut points = Vec::with_capacity(ctx.steps.len());
            for &t in &ctx.steps {
                let end = t.saturating_sub(r.offset_ns);
                let start = end.saturating_sub(r.range_ns);
                let a = pts.partition_point(|p| p.0 <= start);
                let b = pts.partition_point(|p| p.0 <= end);
                let window = &pts[a..b.max(a)];
                if r.op != RangeOp::CountOverTime {
                    ctx.window_work += window.len() as u64;
                    if ctx.window_work > self.limits.max_window_samples {
                        return Err(LogqlError::LimitExceeded(format!(
                            "the query would visit more than {} samples; use a larger step or a shorter range",
                            self.limits.max_window_samples
                        )));
                    }
                }
                points.push(range_fn(r, window, start, end, range_secs));
            }
            out.push(StepSeries { labels, points });
        }
        Ok(out)
    }
}

fn fmt_labels(l: &Labels) -> String {
    let parts: Vec<String> = l
        .iter()
        .map(|(k, v)| format!("{k}={}", crate::ast::quote(v)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

fn range_fn(r: &RangeAgg, w: &[(i64, f64)], start: i64, end: i64, range_secs: f64) -> Option<f64> {
    if w.is_empty() {
        return None;
    }
    let n = w.len() as f64;
    let sum = || w.iter().map(|p| p.1).sum::<f64>();
    let var = || {
        let mean = sum() / n;
        w.iter().map(|p| (p.1 - mean).powi(2)).sum::<f64>() / n
    };
    Some(match r.op {
        RangeOp::CountOverTime => n,
        RangeOp::Rate if r.unwrap.is_none() => n / range_secs,
        RangeOp::Rate | RangeOp::BytesRate => sum() / range_secs,
        RangeOp::BytesOverTime | RangeOp::SumOverTime => sum(),
        RangeOp::AvgOverTime => sum() / n,
        RangeOp::MinOverTime => w.iter().map(|p| p.1).fold(f64::INFINITY, f64::min),
        RangeOp::MaxOverTime => w.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max),
        RangeOp::StdvarOverTime => var(),
        RangeOp::StddevOverTime => var().sqrt(),
        RangeOp::QuantileOverTime => {
            let mut vals: Vec<f64> = w.iter().map(|p| p.1).collect();
            quantile(r.param.unwrap_or(0.5), &mut vals)
        }
        RangeOp::FirstOverTime => w[0].1,
        RangeOp::LastOverTime => w[w.len() - 1].1,
        RangeOp::RateCounter => return extrapolated_rate(w, start, end, range_secs),
        RangeOp::AbsentOverTime => return None,
    })
}

/// Prometheus' quantile: linear interpolation between closest ranks.
fn quantile(q: f64, vals: &mut [f64]) -> f64 {
    if vals.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    vals.sort_by(f64::total_cmp);
    let rank = q * (vals.len() - 1) as f64;
    let lower = rank.floor() as usize;
    let upper = (lower + 1).min(vals.len() - 1);
    let weight = rank - rank.floor();
    vals[lower] * (1.0 - weight) + vals[upper] * weight
}

/// Prometheus' `rate()` with counter-reset handling and extrapolation to the window edges.
fn extrapolated_rate(w: &[(i64, f64)], start: i64, end: i64, range_secs: f64) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let (first_t, first_v) = w[0];
    let (last_t, last_v) = w[w.len() - 1];
    let mut result = last_v - first_v;
    for pair in w.windows(2) {
        if pair[1].1 < pair[0].1 {
            result += pair[0].1;
        }
    }
    let sampled = (last_t - first_t) as f64 / 1e9;
    if sampled <= 0.0 {
        return None;
    }
    let mut to_start = (first_t - start) as f64 / 1e9;
    let to_end = (end - last_t) as f64 / 1e9;
    let avg = sampled / (w.len() - 1) as f64;
    if result > 0.0 && first_v >= 0.0 {
        let to_zero = sampled * (first_v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = avg * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold {
        to_start
    } else {
        avg / 2.0
    };
    interval += if to_end < threshold {
        to_end
    } else {
        avg / 2.0
    };
    Some(result * (interval / sampled) / range_secs)
}

fn group_labels(l: &Labels, g: Option<&Grouping>) -> Labels {
    match g {
        None => Labels::new(),
        Some(g) if g.without => l
            .iter()
            .filter(|(k, _)| !g.labels.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        Some(g) => l
            .iter()
            .filter(|(k, _)| g.labels.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

fn vector_agg(v: &VectorAgg, inner: Vec<StepSeries>, nsteps: usize) -> Vec<StepSeries> {
    let mut groups: BTreeMap<Labels, Vec<usize>> = BTreeMap::new();
    for (i, s) in inner.iter().enumerate() {
        groups
            .entry(group_labels(&s.labels, v.grouping.as_ref()))
            .or_default()
            .push(i);
    }
    match v.op {
        VectorOp::Sort | VectorOp::SortDesc => inner,
        VectorOp::Topk | VectorOp::Bottomk => {
            let k = v.param.unwrap_or(1);
            let mut selected = vec![vec![false; nsteps]; inner.len()];
            for members in groups.values() {
                #[allow(clippy::needless_range_loop)] // `step` indexes two parallel structures.
                for step in 0..nsteps {
                    let mut cands: Vec<(usize, f64)> = members
                        .iter()
                        .filter_map(|&i| inner[i].points[step].map(|x| (i, x)))
                        .collect();
                    // NaN sorts last for both directions, as in Prometheus.
                    cands.sort_by(|a, b| {
                        let ord = match (a.1.is_nan(), b.1.is_nan()) {
                            (true, true) => std::cmp::Ordering::Equal,
                            (true, false) => std::cmp::Ordering::Greater,
                            (false, true) => std::cmp::Ordering::Less,
                            _ if v.op == VectorOp::Topk => b.1.total_cmp(&a.1),
                            _ => a.1.total_cmp(&b.1),
                        };
                        ord.then(a.0.cmp(&b.0))
                    });
                    for (i, _) in cands.into_iter().take(k) {
                        selected[i][step] = true;
                    }
                }
            }
            inner
                .into_iter()
                .zip(selected)
                .filter_map(|(s, sel)| {
                    let points: Vec<Option<f64>> = s
                        .points
                        .into_iter()
                        .zip(sel)
                        .map(|(p, keep)| p.filter(|_| keep))
                        .collect();
                    points.iter().any(Option::is_some).then_some(StepSeries {
                        labels: s.labels,
                        points,
                    })
                })
                .collect()
        }
        op => groups
            .into_iter()
            .map(|(labels, members)| {
                let points = (0..nsteps)
                    .map(|step| {
                        let vals: Vec<f64> = members
                            .iter()
                            .filter_map(|&i| inner[i].points[step])
                            .collect();
                        if vals.is_empty() {
                            return None;
                        }
                        let n = vals.len() as f64;
                        let sum: f64 = vals.iter().sum();
                        let var = || {
                            let mean = sum / n;
                            vals.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n
                        };
                        Some(match op {
                            VectorOp::Sum => sum,
                            VectorOp::Avg => sum / n,
                            VectorOp::Min => vals.iter().copied().fold(f64::INFINITY, f64::min),
                            VectorOp::Max => vals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                            VectorOp::Count => n,
                            VectorOp::Stdvar => var(),
                            _ => var().sqrt(),
                        })
                    })
                    .collect();
                StepSeries { labels, points }
            })
            .collect(),
    }
}

fn arith(op: BinOp, a: f64, b: f64) -> f64 {
    match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div => a / b,
        BinOp::Mod => a % b,
        BinOp::Pow => a.powf(b),
        BinOp::Eq => f64::from(a == b),
        BinOp::Ne => f64::from(a != b),
        BinOp::Gt => f64::from(a > b),
        BinOp::Ge => f64::from(a >= b),
        BinOp::Lt => f64::from(a < b),
        BinOp::Le => f64::from(a <= b),
        BinOp::And | BinOp::Or | BinOp::Unless => f64::NAN,
    }
}

/// Applies `op` to one pair of values; `keep` is the value a filtering comparison keeps.
fn combine(b: &BinaryExpr, x: f64, y: f64, keep: f64) -> Option<f64> {
    let r = arith(b.op, x, y);
    if b.op.is_comparison() && !b.return_bool {
        (r == 1.0).then_some(keep)
    } else {
        Some(r)
    }
}

fn signature(l: &Labels, m: Option<&VectorMatching>) -> Labels {
    match m {
        None => l.clone(),
        Some(m) => group_labels(
            l,
            Some(&Grouping {
                without: !m.on,
                labels: m.labels.clone(),
            }),
        ),
    }
}

fn binary(b: &BinaryExpr, l: Value, r: Value, nsteps: usize) -> Result<Value, LogqlError> {
    match (l, r) {
        (Value::Scalar(x), Value::Scalar(y)) => Ok(Value::Scalar(arith(b.op, x, y))),
        (Value::Vector(mut vs), Value::Scalar(y)) => {
            for s in &mut vs {
                for p in &mut s.points {
                    *p = p.and_then(|x| combine(b, x, y, x));
                }
            }
            Ok(Value::Vector(vs))
        }
        (Value::Scalar(x), Value::Vector(mut vs)) => {
            for s in &mut vs {
                for p in &mut s.points {
                    *p = p.and_then(|y| combine(b, x, y, y));
                }
            }
            Ok(Value::Vector(vs))
        }
        (Value::Vector(lhs), Value::Vector(rhs)) => {
            let m = b.matching.as_ref();
            if b.op.is_set_op() {
                return Ok(Value::Vector(set_op(b.op, lhs, rhs, m, nsteps)));
            }
            let mut by_sig: BTreeMap<Labels, usize> = BTreeMap::new();
            for (i, s) in rhs.iter().enumerate() {
                if by_sig.insert(signature(&s.labels, m), i).is_some() {
                    return Err(LogqlError::Execution(format!(
                        "found duplicate series for the match group {} on the right hand-side of the operation: many-to-many matching not allowed: matching labels must be unique on one side",
                        fmt_labels(&signature(&s.labels, m))
                    )));
                }
            }
            let mut out: BTreeMap<Labels, StepSeries> = BTreeMap::new();
            for s in lhs {
                let sig = signature(&s.labels, m);
                let Some(&ri) = by_sig.get(&sig) else {
                    continue;
                };
                let points: Vec<Option<f64>> = (0..nsteps)
                    .map(|i| match (s.points[i], rhs[ri].points[i]) {
                        (Some(x), Some(y)) => combine(b, x, y, x),
                        _ => None,
                    })
                    .collect();
                // Prometheus keeps the lhs labels of a filtering comparison without matching.
                let labels = if b.op.is_comparison() && !b.return_bool && m.is_none() {
                    s.labels
                } else {
                    sig
                };
                if out.contains_key(&labels) {
                    return Err(LogqlError::Execution(format!(
                        "multiple matches for labels {}: many-to-one matching must be explicit (group_left/group_right)",
                        fmt_labels(&labels)
                    )));
                }
                out.insert(labels.clone(), StepSeries { labels, points });
            }
            Ok(Value::Vector(out.into_values().collect()))
        }
    }
}

fn set_op(
    op: BinOp,
    lhs: Vec<StepSeries>,
    rhs: Vec<StepSeries>,
    m: Option<&VectorMatching>,
    nsteps: usize,
) -> Vec<StepSeries> {
    let present = |side: &[StepSeries], step: usize| -> BTreeSet<Labels> {
        side.iter()
            .filter(|s| s.points[step].is_some())
            .map(|s| signature(&s.labels, m))
            .collect()
    };
    let rhs_sigs: Vec<BTreeSet<Labels>> = (0..nsteps).map(|i| present(&rhs, i)).collect();
    let lhs_sigs: Vec<BTreeSet<Labels>> = (0..nsteps).map(|i| present(&lhs, i)).collect();
    let mut out: Vec<StepSeries> = lhs
        .into_iter()
        .map(|mut s| {
            let sig = signature(&s.labels, m);
            if op != BinOp::Or {
                for (i, p) in s.points.iter_mut().enumerate() {
                    let matched = rhs_sigs[i].contains(&sig);
                    if (op == BinOp::And) != matched {
                        *p = None;
                    }
                }
            }
            s
        })
        .collect();
    if op == BinOp::Or {
        for mut s in rhs {
            let sig = signature(&s.labels, m);
            for (i, p) in s.points.iter_mut().enumerate() {
                if lhs_sigs[i].contains(&sig) {
                    *p = None;
                }
            }
            out.push(s);
        }
    }
    out.retain(|s| s.points.iter().any(Option::is_some));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles() {
        let mut v = vec![1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(0.5, &mut v), 2.5);
        assert_eq!(quantile(1.0, &mut v), 4.0);
        assert_eq!(quantile(0.0, &mut v), 1.0);
        assert_eq!(quantile(2.0, &mut v), f64::INFINITY);
    }

    #[test]
    fn counter_rate() {
        // 10 per second over samples every second across a 10s window, with a reset.
        let s = 1_000_000_000;
        let w: Vec<(i64, f64)> = (1..=10).map(|i| (i * s, (i * 10) as f64)).collect();
        let r = extrapolated_rate(&w, 0, 10 * s, 10.0).unwrap();
        assert!((r - 10.0).abs() < 1e-9, "{r}");
        let w = vec![(s, 100.0), (2 * s, 110.0), (3 * s, 5.0)];
        assert!(extrapolated_rate(&w, 0, 4 * s, 4.0).unwrap() > 0.0);
    }

    #[test]
    fn default_step() {
        assert_eq!(default_step_ns(0, 3600 * 1_000_000_000), 15_000_000_000);
        assert_eq!(default_step_ns(0, 1_000_000_000), 1_000_000_000);
    }

    #[test]
    fn directions() {
        assert_eq!("FORWARD".parse::<Direction>().unwrap(), Direction::Forward);
        assert!("sideways".parse::<Direction>().is_err());
    }
}
