//! PromQL functions.

use std::collections::HashMap;

use promql_parser::parser::{Call, Expr, VectorSelector};

use super::util::{
    Bucket, bucket_fraction, bucket_quantile, civil_from_days, days_in_month, go_f64_to_i64,
    go_max, go_min, kahan_inc, linear_regression, natsort_less, quantile,
};
use super::{Collector, Evaluator, Grid, Points, StepSeries, Val, by_step, user_regex};
use crate::error::QueryError;
use crate::hash::{FxMap, fx_map};
use crate::labels::{KeyInterner, KeySpec, Labels, METRIC_NAME};
use crate::storage::Sample;

/// Per-step context of a range-vector function call.
pub(crate) struct Win {
    /// Evaluation timestamp.
    pub t: i64,
    /// Window bounds `(lo, hi]`.
    pub lo: i64,
    pub hi: i64,
    pub range: i64,
    /// Scalar parameters at this step, in argument order (excluding the matrix).
    pub p: [f64; 2],
}

fn extrapolated_rate(s: &[Sample], w: &Win, is_counter: bool, is_rate: bool) -> Option<f64> {
    extrapolated_rate_scanning(s, w, is_counter, is_rate, is_counter)
}

/// `rate`, `increase` and `delta` over a window: [`extrapolated_rate`] with the counter-reset scan made
/// optional. A caller that knows no sample of `s` is below the one before it passes `scan_resets = false`:
/// the scan would add nothing then (it adds only at a decrease), so the result is the same to the bit.
pub(crate) fn extrapolated_rate_scanning(
    s: &[Sample],
    w: &Win,
    is_counter: bool,
    is_rate: bool,
    scan_resets: bool,
) -> Option<f64> {
    if s.len() < 2 {
        return None;
    }
    let n1 = s.len() - 1;
    let mut result = s[n1].v - s[0].v;
    if is_counter && scan_resets {
        let mut prev = s[0].v;
        for p in &s[1..] {
            if p.v < prev {
                result += prev;
            }
            prev = p.v;
        }
    }
    Some(extrapolate(result, s[0], s[n1], n1, w, is_counter, is_rate))
}

/// [`extrapolated_rate_scanning`] of a window of `len` samples without a decrease, told by its first and last
/// samples: the same arithmetic, so the same result to the bit.
pub(crate) fn extrapolated_rate_ends(
    first: Sample,
    last: Sample,
    len: usize,
    w: &Win,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if len < 2 {
        return None;
    }
    Some(extrapolate(
        last.v - first.v,
        first,
        last,
        len - 1,
        w,
        is_counter,
        is_rate,
    ))
}

/// Prometheus's extrapolation of `result`, the change over a window of `n1 + 1` samples from `first` to
/// `last`, to the window's bounds (and to zero for a counter), per second for a rate.
fn extrapolate(
    result: f64,
    first: Sample,
    last: Sample,
    n1: usize,
    w: &Win,
    is_counter: bool,
    is_rate: bool,
) -> f64 {
    let (first_t, last_t) = (first.t, last.t);
    let mut to_start = (first_t - w.lo) as f64 / 1000.0;
    let mut to_end = (w.hi - last_t) as f64 / 1000.0;
    let sampled = (last_t - first_t) as f64 / 1000.0;
    let avg_between = sampled / n1 as f64;
    let threshold = avg_between * 1.1;
    if to_start >= threshold {
        to_start = avg_between / 2.0;
    }
    if is_counter {
        let mut to_zero = to_start;
        if result > 0.0 && first.v >= 0.0 {
            to_zero = sampled * (first.v / result);
        }
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg_between / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if is_rate {
        factor /= w.range as f64 / 1000.0;
    }
    result * factor
}

fn instant_value(s: &[Sample], is_rate: bool) -> Option<f64> {
    if s.len() < 2 {
        return None;
    }
    let last = s[s.len() - 1];
    let prev = s[s.len() - 2];
    let mut v = if is_rate && last.v < prev.v {
        last.v
    } else {
        last.v - prev.v
    };
    let dt = last.t - prev.t;
    if dt == 0 {
        return None;
    }
    if is_rate {
        v /= dt as f64 / 1000.0;
    }
    Some(v)
}

fn avg_over_time(s: &[Sample]) -> f64 {
    let mut sum = s[0].v;
    let mut count = 1.0;
    let mut mean = 0.0;
    let mut c = 0.0;
    let mut incremental = false;
    for (i, p) in s[1..].iter().enumerate() {
        count = (i + 2) as f64;
        if !incremental {
            let (ns, nc) = kahan_inc(p.v, sum, c);
            if !ns.is_infinite() {
                sum = ns;
                c = nc;
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        if mean.is_infinite() {
            if p.v.is_infinite() && (mean > 0.0) == (p.v > 0.0) {
                continue;
            }
            if !p.v.is_infinite() && !p.v.is_nan() {
                continue;
            }
        }
        let corrected = mean + c;
        (mean, c) = kahan_inc(p.v / count - corrected / count, mean, c);
    }
    if incremental {
        mean + c
    } else {
        sum / count + c / count
    }
}

fn stdvar_over_time(s: &[Sample]) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for p in s {
        count += 1.0;
        let delta = p.v - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_inc(delta * (p.v - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

fn double_exponential_smoothing(s: &[Sample], sf: f64, tf: f64) -> Option<f64> {
    if s.len() < 2 {
        return None;
    }
    let mut s0 = 0.0;
    let mut s1 = s[0].v;
    let mut b = s[1].v - s[0].v;
    for (i, p) in s.iter().enumerate().skip(1) {
        let x = sf * p.v;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Some(s1)
}

/// Evaluates a range-vector function on one window; `None` drops the element.
pub(crate) fn window_fn(name: &str, s: &[Sample], w: &Win) -> Option<f64> {
    if s.is_empty() {
        return None;
    }
    Some(match name {
        "rate" => return extrapolated_rate(s, w, true, true),
        "increase" => return extrapolated_rate(s, w, true, false),
        "delta" => return extrapolated_rate(s, w, false, false),
        "irate" => return instant_value(s, true),
        "idelta" => return instant_value(s, false),
        "deriv" => {
            if s.len() < 2 {
                return None;
            }
            let pts: Vec<(i64, f64)> = s.iter().map(|p| (p.t, p.v)).collect();
            linear_regression(&pts, s[0].t).0
        }
        "predict_linear" => {
            if s.len() < 2 {
                return None;
            }
            let pts: Vec<(i64, f64)> = s.iter().map(|p| (p.t, p.v)).collect();
            let (slope, intercept) = linear_regression(&pts, w.t);
            slope * w.p[0] + intercept
        }
        "resets" => {
            let mut n = 0.0;
            for pair in s.windows(2) {
                if pair[1].v < pair[0].v {
                    n += 1.0;
                }
            }
            n
        }
        "changes" => {
            let mut n = 0.0;
            for pair in s.windows(2) {
                let (a, b) = (pair[0].v, pair[1].v);
                if a != b && !(a.is_nan() && b.is_nan()) {
                    n += 1.0;
                }
            }
            n
        }
        "avg_over_time" => avg_over_time(s),
        "sum_over_time" => {
            let (mut sum, mut c) = (0.0, 0.0);
            for p in s {
                (sum, c) = kahan_inc(p.v, sum, c);
            }
            if sum.is_infinite() { sum } else { sum + c }
        }
        "count_over_time" => s.len() as f64,
        "min_over_time" => {
            let mut m = s[0].v;
            for p in s {
                if p.v < m || m.is_nan() {
                    m = p.v;
                }
            }
            m
        }
        "max_over_time" => {
            let mut m = s[0].v;
            for p in s {
                if p.v > m || m.is_nan() {
                    m = p.v;
                }
            }
            m
        }
        "last_over_time" => s[s.len() - 1].v,
        "first_over_time" => s[0].v,
        "present_over_time" => 1.0,
        "stdvar_over_time" => stdvar_over_time(s),
        "stddev_over_time" => stdvar_over_time(s).sqrt(),
        "quantile_over_time" => {
            let mut vals: Vec<f64> = s.iter().map(|p| p.v).collect();
            quantile(w.p[0], &mut vals)
        }
        "mad_over_time" => {
            if s.iter().any(|p| p.v.is_nan()) {
                return Some(f64::NAN);
            }
            let mut vals: Vec<f64> = s.iter().map(|p| p.v).collect();
            let median = quantile(0.5, &mut vals);
            let mut dev: Vec<f64> = s.iter().map(|p| (p.v - median).abs()).collect();
            quantile(0.5, &mut dev)
        }
        "double_exponential_smoothing" | "holt_winters" => {
            return double_exponential_smoothing(s, w.p[0], w.p[1]);
        }
        "ts_of_last_over_time" => s[s.len() - 1].t as f64 / 1000.0,
        "ts_of_first_over_time" => s[0].t as f64 / 1000.0,
        "ts_of_max_over_time" | "ts_of_min_over_time" => {
            let max = name == "ts_of_max_over_time";
            let mut best = s[0];
            for p in s {
                let better = if max { p.v >= best.v } else { p.v <= best.v };
                if better || best.v.is_nan() {
                    best = *p;
                }
            }
            best.t as f64 / 1000.0
        }
        _ => return None,
    })
}

pub(crate) const MATRIX_FUNCS: &[&str] = &[
    "rate",
    "irate",
    "increase",
    "delta",
    "idelta",
    "deriv",
    "predict_linear",
    "resets",
    "changes",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "count_over_time",
    "last_over_time",
    "first_over_time",
    "present_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "quantile_over_time",
    "mad_over_time",
    "double_exponential_smoothing",
    "holt_winters",
    "ts_of_first_over_time",
    "ts_of_last_over_time",
    "ts_of_max_over_time",
    "ts_of_min_over_time",
];

fn unwrap_parens(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => unwrap_parens(&p.expr),
        other => other,
    }
}

/// Labels `absent()` reports: the selector's equality matchers (a label constrained more than
/// once, or by a non-equality matcher, is left out, as in Prometheus).
fn absent_labels(e: &Expr) -> Labels {
    let vs: &VectorSelector = match e {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::empty(),
    };
    let mut out = Labels::empty();
    let mut has: HashMap<&str, bool> = HashMap::new();
    for m in &vs.matchers.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        let is_eq = matches!(m.op, promql_parser::label::MatchOp::Equal);
        if is_eq && !has.contains_key(m.name.as_str()) {
            out.set(&m.name, &m.value);
            has.insert(&m.name, true);
        } else {
            out.remove(&m.name);
        }
    }
    out
}

fn map_values(mut v: Vec<StepSeries>, f: impl Fn(f64) -> f64) -> Vec<StepSeries> {
    for s in &mut v {
        s.drop_name = true;
        for p in &mut s.points {
            p.v = f(p.v);
        }
    }
    v
}

fn is_valid_label_name(s: &str) -> bool {
    !s.is_empty() && !s.contains('\u{FFFD}')
}

impl Evaluator<'_> {
    fn scalar_args(&self, args: &[&Expr], grid: Grid) -> Result<Vec<Vec<f64>>, QueryError> {
        args.iter().map(|a| self.eval_scalar(a, grid)).collect()
    }

    pub(crate) fn eval_call(&self, c: &Call, grid: Grid) -> Result<Val, QueryError> {
        let name = c.func.name;
        let args: Vec<&Expr> = c.args.args.iter().map(|b| b.as_ref()).collect();
        let n = grid.len();
        if MATRIX_FUNCS.contains(&name) {
            return self.matrix_call(name, &args, grid);
        }
        match name {
            "absent_over_time" => {
                let m = self.eval_matrix(args[0], grid)?;
                let labels = absent_labels(unwrap_parens(args[0]));
                let mut cursors = vec![(0usize, 0usize); m.series.len()];
                let mut points = Points::Empty;
                for i in 0..n {
                    let t = grid.ts(i);
                    let (lo, hi) = m.window(t);
                    let mut any = false;
                    for (si, s) in m.series.iter().enumerate() {
                        let (a, b) = advance(&s.points, &mut cursors[si], lo, hi);
                        if b > a {
                            any = true;
                        }
                    }
                    if !any {
                        points.push(Sample::new(t, 1.0));
                    }
                }
                Ok(Val::Vector(one_series(labels, points)))
            }
            "time" => Ok(Val::Scalar(
                (0..n).map(|i| grid.ts(i) as f64 / 1000.0).collect(),
            )),
            "pi" => Ok(Val::Scalar(vec![std::f64::consts::PI; n])),
            "start" => Ok(Val::Scalar(vec![self.query_start as f64 / 1000.0; n])),
            "end" => Ok(Val::Scalar(vec![self.query_end as f64 / 1000.0; n])),
            "range" => Ok(Val::Scalar(vec![
                (self.query_end - self.query_start) as f64
                    / 1000.0;
                n
            ])),
            "step" => Ok(Val::Scalar(vec![self.query_step as f64 / 1000.0; n])),
            "vector" => {
                let s = self.eval_scalar(args[0], grid)?;
                let points = s
                    .iter()
                    .enumerate()
                    .map(|(i, v)| Sample::new(grid.ts(i), *v))
                    .collect();
                Ok(Val::Vector(one_series(Labels::empty(), points)))
            }
            "scalar" => {
                let v = self.eval_vector(args[0], grid)?;
                let mut out = vec![f64::NAN; n];
                let mut count = vec![0u32; n];
                for s in &v {
                    for p in &s.points {
                        let i = grid.index(p.t);
                        count[i] += 1;
                        out[i] = p.v;
                    }
                }
                for i in 0..n {
                    if count[i] != 1 {
                        out[i] = f64::NAN;
                    }
                }
                Ok(Val::Scalar(out))
            }
            "absent" => {
                let v = self.eval_vector(args[0], grid)?;
                let mut present = vec![false; n];
                for s in &v {
                    for p in &s.points {
                        present[grid.index(p.t)] = true;
                    }
                }
                let labels = absent_labels(unwrap_parens(args[0]));
                let points = (0..n)
                    .filter(|&i| !present[i])
                    .map(|i| Sample::new(grid.ts(i), 1.0))
                    .collect();
                Ok(Val::Vector(one_series(labels, points)))
            }
            "timestamp" => {
                if let Expr::VectorSelector(vs) = unwrap_parens(args[0]) {
                    return Ok(Val::Vector(self.eval_selector_timestamps(vs, grid)?));
                }
                let v = self.eval_vector(args[0], grid)?;
                let mut v = v;
                for s in &mut v {
                    s.drop_name = true;
                    for p in &mut s.points {
                        p.v = p.t as f64 / 1000.0;
                    }
                }
                Ok(Val::Vector(v))
            }
            "label_replace" => {
                let v = self.eval_vector(args[0], grid)?;
                let dst = self.eval_string(args[1], grid)?;
                let repl = self.eval_string(args[2], grid)?;
                let src = self.eval_string(args[3], grid)?;
                let re_src = self.eval_string(args[4], grid)?;
                let re = user_regex(&re_src).map_err(|e| {
                    QueryError::exec(format!(
                        "invalid regular expression in label_replace(): {e}"
                    ))
                })?;
                if !is_valid_label_name(&dst) {
                    return Err(QueryError::exec(format!(
                        "invalid destination label name in label_replace(): {dst}"
                    )));
                }
                let mut out: Collector<usize> = Collector::new();
                for (i, s) in v.iter().enumerate() {
                    let src_val = s.labels.get_or_empty(&src);
                    let mut labels = s.labels.clone();
                    let mut drop = s.drop_name;
                    if let Some(caps) = re.captures(src_val) {
                        let mut res = String::new();
                        caps.expand(&repl, &mut res);
                        labels.set(&dst, &res);
                        if dst == METRIC_NAME {
                            drop = false;
                        }
                    }
                    let slot = out.slot(i, || (labels, drop));
                    for p in &s.points {
                        out.push(slot, p.t, p.v)?;
                    }
                }
                Ok(Val::Vector(merge_sorted(out.finish())?))
            }
            "label_join" => {
                let v = self.eval_vector(args[0], grid)?;
                let dst = self.eval_string(args[1], grid)?;
                let sep = self.eval_string(args[2], grid)?;
                let mut srcs = Vec::new();
                for a in &args[3..] {
                    srcs.push(self.eval_string(a, grid)?);
                }
                if !is_valid_label_name(&dst) {
                    return Err(QueryError::exec(format!(
                        "invalid destination label name in label_join(): {dst}"
                    )));
                }
                let mut out: Collector<usize> = Collector::new();
                for (i, s) in v.iter().enumerate() {
                    let joined = srcs
                        .iter()
                        .map(|l| s.labels.get_or_empty(l))
                        .collect::<Vec<_>>()
                        .join(&sep);
                    let mut labels = s.labels.clone();
                    labels.set(&dst, &joined);
                    let drop = s.drop_name && dst != METRIC_NAME;
                    let slot = out.slot(i, || (labels, drop));
                    for p in &s.points {
                        out.push(slot, p.t, p.v)?;
                    }
                }
                Ok(Val::Vector(merge_sorted(out.finish())?))
            }
            "sort" | "sort_desc" => {
                let mut v = self.eval_vector(args[0], grid)?;
                if n == 1 {
                    let desc = name == "sort_desc";
                    v.sort_by(|a, b| {
                        let (x, y) = (a.points[0].v, b.points[0].v);
                        use std::cmp::Ordering;
                        match (x.is_nan(), y.is_nan()) {
                            (true, true) => Ordering::Equal,
                            (true, false) => Ordering::Greater,
                            (false, true) => Ordering::Less,
                            _ => {
                                let o = x.partial_cmp(&y).unwrap_or(Ordering::Equal);
                                if desc { o.reverse() } else { o }
                            }
                        }
                    });
                }
                Ok(Val::Vector(v))
            }
            "sort_by_label" | "sort_by_label_desc" => {
                let mut v = self.eval_vector(args[0], grid)?;
                let mut names = Vec::new();
                for a in &args[1..] {
                    names.push(self.eval_string(a, grid)?);
                }
                let desc = name == "sort_by_label_desc";
                v.sort_by(|a, b| {
                    use std::cmp::Ordering;
                    let mut o = Ordering::Equal;
                    for l in &names {
                        let (x, y) = (a.labels.get_or_empty(l), b.labels.get_or_empty(l));
                        if x == y {
                            continue;
                        }
                        o = if natsort_less(x, y) {
                            Ordering::Less
                        } else {
                            Ordering::Greater
                        };
                        break;
                    }
                    if o == Ordering::Equal {
                        o = a.labels.cmp(&b.labels);
                    }
                    if desc { o.reverse() } else { o }
                });
                Ok(Val::Vector(v))
            }
            "histogram_quantile" => {
                let q = self.eval_scalar(args[0], grid)?;
                let v = self.eval_vector(args[1], grid)?;
                self.histogram_fn(
                    v,
                    grid,
                    |b, i, out| out.push(bucket_quantile(q[i], b)),
                    |l, _| l.clone(),
                )
            }
            "histogram_fraction" => {
                let lo = self.eval_scalar(args[0], grid)?;
                let hi = self.eval_scalar(args[1], grid)?;
                let v = self.eval_vector(args[2], grid)?;
                self.histogram_fn(
                    v,
                    grid,
                    |b, i, out| out.push(bucket_fraction(lo[i], hi[i], b)),
                    |l, _| l.clone(),
                )
            }
            "histogram_quantiles" => {
                let v = self.eval_vector(args[0], grid)?;
                let label = self.eval_string(args[1], grid)?;
                let qs = self.scalar_args(&args[2..], grid)?;
                let names: Vec<String> = qs
                    .iter()
                    .map(|q| {
                        let s = crate::value::format_value(q.first().copied().unwrap_or(f64::NAN));
                        if s.contains(['.', 'N', 'I']) {
                            s
                        } else {
                            format!("{s}.0")
                        }
                    })
                    .collect();
                self.histogram_fn(
                    v,
                    grid,
                    |b, i, out| {
                        out.extend(qs.iter().map(|q| bucket_quantile(q[i], &mut b.clone())));
                    },
                    |l, qi| {
                        let mut l = l.clone();
                        l.set(&label, &names[qi]);
                        l
                    },
                )
            }
            "min_of" | "max_of" => {
                let a = self.eval_scalar(args[0], grid)?;
                let b = self.eval_scalar(args[1], grid)?;
                let f = if name == "min_of" { go_min } else { go_max };
                Ok(Val::Scalar(
                    a.iter().zip(&b).map(|(x, y)| f(*x, *y)).collect(),
                ))
            }
            "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev"
            | "histogram_stdvar" => {
                // Only native histograms carry these; float samples are ignored.
                self.eval_vector(args[0], grid)?;
                Ok(Val::Vector(Vec::new()))
            }
            "clamp" | "clamp_min" | "clamp_max" => {
                let v = self.eval_vector(args[0], grid)?;
                let p = self.scalar_args(&args[1..], grid)?;
                let mut v = v;
                for s in &mut v {
                    s.drop_name = true;
                    s.points.retain_mut(|pt| {
                        let i = grid.index(pt.t);
                        match name {
                            "clamp" => {
                                let (mn, mx) = (p[0][i], p[1][i]);
                                if mx < mn {
                                    return false;
                                }
                                pt.v = go_max(mn, go_min(mx, pt.v));
                            }
                            "clamp_min" => pt.v = go_max(p[0][i], pt.v),
                            _ => pt.v = go_min(p[0][i], pt.v),
                        }
                        true
                    });
                }
                v.retain(|s| !s.points.is_empty());
                Ok(Val::Vector(v))
            }
            "round" => {
                let v = self.eval_vector(args[0], grid)?;
                let to = if args.len() > 1 {
                    self.eval_scalar(args[1], grid)?
                } else {
                    vec![1.0; n]
                };
                let mut v = v;
                for s in &mut v {
                    s.drop_name = true;
                    for p in &mut s.points {
                        let inv = 1.0 / to[grid.index(p.t)];
                        p.v = (p.v * inv + 0.5).floor() / inv;
                    }
                }
                Ok(Val::Vector(v))
            }
            "day_of_month" | "day_of_week" | "day_of_year" | "days_in_month" | "hour"
            | "minute" | "month" | "year" => {
                let f = |secs: f64| -> f64 { date_part(name, secs) };
                if args.is_empty() {
                    let points = (0..n)
                        .map(|i| {
                            let t = grid.ts(i);
                            Sample::new(t, f(t.div_euclid(1000) as f64))
                        })
                        .collect();
                    return Ok(Val::Vector(one_series(Labels::empty(), points)));
                }
                let v = self.eval_vector(args[0], grid)?;
                Ok(Val::Vector(map_values(v, f)))
            }
            "info" => {
                // Returning the input unenriched would look like a valid answer; refuse instead.
                Err(QueryError::exec("function \"info\" is not supported"))
            }
            _ => {
                let f: fn(f64) -> f64 = match name {
                    "abs" => f64::abs,
                    "ceil" => f64::ceil,
                    "floor" => f64::floor,
                    "exp" => f64::exp,
                    "sqrt" => f64::sqrt,
                    "ln" => f64::ln,
                    "log2" => f64::log2,
                    "log10" => f64::log10,
                    "sgn" => |v: f64| {
                        if v < 0.0 {
                            -1.0
                        } else if v > 0.0 {
                            1.0
                        } else {
                            v
                        }
                    },
                    "sin" => f64::sin,
                    "cos" => f64::cos,
                    "tan" => f64::tan,
                    "asin" => f64::asin,
                    "acos" => f64::acos,
                    "atan" => f64::atan,
                    "sinh" => f64::sinh,
                    "cosh" => f64::cosh,
                    "tanh" => f64::tanh,
                    "asinh" => f64::asinh,
                    "acosh" => f64::acosh,
                    "atanh" => f64::atanh,
                    "deg" => |v: f64| v * 180.0 / std::f64::consts::PI,
                    "rad" => |v: f64| v * std::f64::consts::PI / 180.0,
                    _ => {
                        return Err(QueryError::exec(format!(
                            "function {name:?} is not supported"
                        )));
                    }
                };
                let v = self.eval_vector(args[0], grid)?;
                Ok(Val::Vector(map_values(v, f)))
            }
        }
    }

    fn matrix_call(&self, name: &str, args: &[&Expr], grid: Grid) -> Result<Val, QueryError> {
        let midx = args
            .iter()
            .position(|a| a.value_type() == promql_parser::parser::value::ValueType::Matrix)
            .ok_or_else(|| QueryError::exec(format!("{name} expects a range vector argument")))?;
        let mut params: Vec<Vec<f64>> = Vec::new();
        for (i, a) in args.iter().enumerate() {
            if i != midx {
                params.push(self.eval_scalar(a, grid)?);
            }
        }
        let m = self.eval_matrix(args[midx], grid)?;
        let n = grid.len();
        if matches!(name, "double_exponential_smoothing" | "holt_winters") {
            for (&sf, &tf) in params[0].iter().zip(params[1].iter()) {
                if sf <= 0.0 || sf >= 1.0 || sf.is_nan() {
                    return Err(QueryError::exec(format!(
                        "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}"
                    )));
                }
                if tf <= 0.0 || tf >= 1.0 || tf.is_nan() {
                    return Err(QueryError::exec(format!(
                        "invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}"
                    )));
                }
            }
        }
        let keep_name = matches!(name, "last_over_time" | "first_over_time");
        let mut out = Vec::with_capacity(m.series.len());
        for s in &m.series {
            let mut cursor = (0usize, 0usize);
            let mut points = Points::Empty;
            for i in 0..n {
                let t = grid.ts(i);
                let (lo, hi) = m.window(t);
                let (a, b) = advance(&s.points, &mut cursor, lo, hi);
                if a >= b {
                    continue;
                }
                let w = Win {
                    t,
                    lo,
                    hi,
                    range: m.range,
                    p: [
                        params.first().map(|p| p[i]).unwrap_or(f64::NAN),
                        params.get(1).map(|p| p[i]).unwrap_or(f64::NAN),
                    ],
                };
                if let Some(v) = window_fn(name, &s.points[a..b], &w) {
                    points.push(Sample::new(t, v));
                }
            }
            if !points.is_empty() {
                out.push(StepSeries {
                    labels: s.labels.clone(),
                    drop_name: s.drop_name || !keep_name,
                    points,
                });
            }
        }
        self.add_samples(m.series.iter().map(|s| s.points.len()).sum::<usize>() / 4)?;
        Ok(Val::Vector(out))
    }

    /// Groups classic-histogram bucket series by their labels minus `le` and applies `f` to the
    /// buckets of each group at each step; `f` yields one value per output variant (several
    /// for `histogram_quantiles`), labelled by `label`.
    fn histogram_fn(
        &self,
        v: Vec<StepSeries>,
        grid: Grid,
        f: impl Fn(&mut Vec<Bucket>, usize, &mut Vec<f64>),
        label: impl Fn(&Labels, usize) -> Labels,
    ) -> Result<Val, QueryError> {
        let mut gid = KeyInterner::with_capacity(KeySpec::Without("le"), v.len());
        let mut member: Vec<Option<(usize, f64)>> = Vec::with_capacity(v.len());
        // Bucket series share few distinct `le` values; parse each once.
        let mut les: FxMap<&str, Option<f64>> = fx_map();
        for s in &v {
            let le = s
                .labels
                .get("le")
                .and_then(|x| *les.entry(x).or_insert_with(|| parse_le(x)));
            let Some(le) = le else {
                member.push(None);
                continue;
            };
            // The name stays in the group key until delayed name removal, so buckets of two
            // differently named histograms are not mixed (and collide at the end instead).
            let (g, _) = gid.id(&s.labels);
            member.push(Some((g, le)));
        }
        let groups = gid.keys;
        let steps = by_step(&v, grid);
        let mut sizes = vec![0usize; groups.len()];
        for &(g, _) in member.iter().flatten() {
            sizes[g] += 1;
        }
        let mut buckets: Vec<Vec<Bucket>> = sizes.into_iter().map(Vec::with_capacity).collect();
        let mut touched = Vec::new();
        let mut results = Vec::new();
        let mut out: Collector<(usize, usize)> = Collector::new();
        for (i, entries) in steps.iter().enumerate() {
            for &(si, val) in entries {
                if let Some((g, le)) = member[si] {
                    if buckets[g].is_empty() {
                        touched.push(g);
                    }
                    buckets[g].push(Bucket {
                        upper: le,
                        count: val,
                    });
                }
            }
            let t = grid.ts(i);
            for &g in &touched {
                results.clear();
                f(&mut buckets[g], i, &mut results);
                buckets[g].clear();
                for (qi, &r) in results.iter().enumerate() {
                    let slot = out.slot((g, qi), || (label(&groups[g], qi), true));
                    out.push(slot, t, r)?;
                }
            }
            touched.clear();
        }
        Ok(Val::Vector(out.finish()))
    }
}

pub(crate) fn parse_le(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("+inf") || t.eq_ignore_ascii_case("inf") {
        return Some(f64::INFINITY);
    }
    if t.eq_ignore_ascii_case("-inf") {
        return Some(f64::NEG_INFINITY);
    }
    if t.eq_ignore_ascii_case("nan") {
        return Some(f64::NAN);
    }
    t.parse::<f64>().ok()
}

/// Advances a `(start, end)` cursor pair so that `points[start..end]` is the window `(lo, hi]`.
fn advance(points: &[Sample], cur: &mut (usize, usize), lo: i64, hi: i64) -> (usize, usize) {
    if *cur == (0, 0) {
        // The first window (often the only one) can be anywhere: search rather than walk.
        let a = points.partition_point(|p| p.t <= lo);
        let b = a + points[a..].partition_point(|p| p.t <= hi);
        *cur = (a, b);
        return *cur;
    }
    // Windows only move forward across steps, so both ends advance monotonically; a window
    // that moved backwards (never produced by the grid) is handled by a binary search.
    if cur.0 > 0 && points[cur.0 - 1].t > lo {
        cur.0 = points.partition_point(|p| p.t <= lo);
    }
    while cur.0 < points.len() && points[cur.0].t <= lo {
        cur.0 += 1;
    }
    if cur.1 < cur.0 {
        cur.1 = cur.0;
    }
    if cur.1 > 0 && cur.1 <= points.len() && cur.1 > cur.0 && points[cur.1 - 1].t > hi {
        cur.1 = cur.0 + points[cur.0..].partition_point(|p| p.t <= hi);
    }
    while cur.1 < points.len() && points[cur.1].t <= hi {
        cur.1 += 1;
    }
    *cur
}

fn one_series(labels: Labels, points: Points) -> Vec<StepSeries> {
    if points.is_empty() {
        return Vec::new();
    }
    vec![StepSeries {
        labels,
        drop_name: false,
        points,
    }]
}

/// After a label rewrite, series merged into one slot may have interleaved points.
fn merge_sorted(mut v: Vec<StepSeries>) -> Result<Vec<StepSeries>, QueryError> {
    for s in &mut v {
        if s.points.windows(2).any(|w| w[0].t >= w[1].t) {
            s.points.sort_by_key(|p| p.t);
            if s.points.windows(2).any(|w| w[0].t == w[1].t) {
                return Err(super::dup_labelset_err());
            }
        }
    }
    Ok(v)
}

fn date_part(name: &str, secs: f64) -> f64 {
    let secs = go_f64_to_i64(secs);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    match name {
        "day_of_month" => d as f64,
        "day_of_week" => (days + 4).rem_euclid(7) as f64,
        "day_of_year" => {
            let mut doy = d as i64;
            for mm in 1..m {
                doy += days_in_month(y, mm) as i64;
            }
            doy as f64
        }
        "days_in_month" => days_in_month(y, m) as f64,
        "hour" => (sod / 3600) as f64,
        "minute" => ((sod % 3600) / 60) as f64,
        "month" => m as f64,
        "year" => y as f64,
        _ => f64::NAN,
    }
}
