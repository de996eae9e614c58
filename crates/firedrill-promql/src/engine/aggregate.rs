//! Aggregation operators.

use promql_parser::parser::{AggregateExpr, LabelModifier};

use super::util::{go_f64_to_i64, kahan_inc, quantile};
use super::{Collector, Evaluator, Grid, Points, StepSeries, Val, by_step};
use crate::error::QueryError;
use crate::hash::{FxMap, fx_map};
use crate::labels::{KeyInterner, KeySpec, Labels, METRIC_NAME};
use crate::value::format_value;

fn group_labels(l: &Labels, m: Option<&LabelModifier>) -> Labels {
    group_spec(m).labels(l)
}

/// The grouping key of an aggregation's `by`/`without` clause.
pub(crate) fn group_spec(m: Option<&LabelModifier>) -> KeySpec<'_> {
    match m {
        Some(LabelModifier::Include(by)) => KeySpec::Only(&by.labels),
        Some(LabelModifier::Exclude(without)) => KeySpec::AllBut(&without.labels),
        None => KeySpec::Nothing,
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Simple {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Group,
    Stddev,
    Stdvar,
    Quantile,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Acc {
    count: f64,
    value: f64,
    kahan_c: f64,
    mean: f64,
    incremental_mean: bool,
    values: Vec<f64>,
}

impl Acc {
    pub(crate) fn first(op: Simple, v: f64) -> Acc {
        let mut a = Acc {
            count: 1.0,
            value: v,
            kahan_c: 0.0,
            mean: v,
            incremental_mean: false,
            values: Vec::new(),
        };
        match op {
            Simple::Stddev | Simple::Stdvar => {
                a.value = if v.is_nan() || v.is_infinite() {
                    f64::NAN
                } else {
                    0.0
                };
            }
            Simple::Quantile => a.values.push(v),
            Simple::Group => a.value = 1.0,
            _ => {}
        }
        a
    }

    pub(crate) fn add(&mut self, op: Simple, v: f64) {
        match op {
            Simple::Sum => {
                (self.value, self.kahan_c) = kahan_inc(v, self.value, self.kahan_c);
            }
            Simple::Avg => {
                self.count += 1.0;
                if !self.incremental_mean {
                    let (nv, nc) = kahan_inc(v, self.value, self.kahan_c);
                    if nv.is_finite() || nv.is_nan() {
                        self.value = nv;
                        self.kahan_c = nc;
                        return;
                    }
                    // The running sum would overflow: continue with an incremental mean.
                    self.incremental_mean = true;
                    self.mean = self.value / (self.count - 1.0);
                    self.kahan_c /= self.count - 1.0;
                }
                if self.mean.is_infinite() {
                    if v.is_infinite() && (self.mean > 0.0) == (v > 0.0) {
                        return;
                    }
                    if !v.is_infinite() && !v.is_nan() {
                        return;
                    }
                }
                let current = self.mean + self.kahan_c;
                (self.mean, self.kahan_c) = kahan_inc(
                    v / self.count - current / self.count,
                    self.mean,
                    self.kahan_c,
                );
            }
            Simple::Min => {
                if self.value > v || self.value.is_nan() {
                    self.value = v;
                }
            }
            Simple::Max => {
                if self.value < v || self.value.is_nan() {
                    self.value = v;
                }
            }
            Simple::Count => self.count += 1.0,
            Simple::Group => {}
            Simple::Stddev | Simple::Stdvar => {
                self.count += 1.0;
                let delta = v - self.mean;
                self.mean += delta / self.count;
                self.value += delta * (v - self.mean);
            }
            Simple::Quantile => self.values.push(v),
        }
    }

    pub(crate) fn finish(&mut self, op: Simple, q: f64) -> f64 {
        match op {
            Simple::Sum => self.value + self.kahan_c,
            Simple::Avg => {
                if self.incremental_mean {
                    self.mean + self.kahan_c
                } else {
                    (self.value + self.kahan_c) / self.count
                }
            }
            Simple::Min | Simple::Max | Simple::Group => self.value,
            Simple::Count => self.count,
            Simple::Stdvar => self.value / self.count,
            Simple::Stddev => (self.value / self.count).sqrt(),
            Simple::Quantile => quantile(q, &mut self.values),
        }
    }
}

impl Evaluator<'_> {
    pub(crate) fn eval_aggregate(&self, a: &AggregateExpr, grid: Grid) -> Result<Val, QueryError> {
        let op = a.op.to_string().to_lowercase();
        let modifier = a.modifier.as_ref();
        let simple = match op.as_str() {
            "sum" => Some(Simple::Sum),
            "avg" => Some(Simple::Avg),
            "min" => Some(Simple::Min),
            "max" => Some(Simple::Max),
            "count" => Some(Simple::Count),
            "group" => Some(Simple::Group),
            "stddev" => Some(Simple::Stddev),
            "stdvar" => Some(Simple::Stdvar),
            "quantile" => Some(Simple::Quantile),
            _ => None,
        };
        // Prometheus evaluates the parameter before the operand.
        let param_scalar = match op.as_str() {
            "topk" | "bottomk" | "limitk" | "limit_ratio" | "quantile" => match &a.param {
                Some(p) => Some(self.eval_scalar(p, grid)?),
                None => return Err(QueryError::exec(format!("{op} requires a parameter"))),
            },
            _ => None,
        };
        let param_string = if op == "count_values" {
            match &a.param {
                Some(p) => Some(self.eval_string(p, grid)?),
                None => return Err(QueryError::exec("count_values requires a label name")),
            }
        } else {
            None
        };
        let input = self.eval_vector(&a.expr, grid)?;
        if let Some(s) = simple {
            return self.simple_agg(s, input, modifier, param_scalar.as_deref(), grid);
        }
        match op.as_str() {
            "topk" | "bottomk" | "limitk" | "limit_ratio" => self.k_agg(
                &op,
                input,
                modifier,
                param_scalar.as_deref().unwrap_or(&[]),
                grid,
            ),
            "count_values" => {
                self.count_values(input, modifier, &param_string.unwrap_or_default(), grid)
            }
            other => Err(QueryError::exec(format!(
                "unsupported aggregation {other:?}"
            ))),
        }
    }

    fn simple_agg(
        &self,
        op: Simple,
        input: Vec<StepSeries>,
        modifier: Option<&LabelModifier>,
        param: Option<&[f64]>,
        grid: Grid,
    ) -> Result<Val, QueryError> {
        let spec = group_spec(modifier);
        let mut gid = KeyInterner::with_capacity(spec, input.len());
        let mut groups: Vec<StepSeries> = Vec::with_capacity(input.len());
        let mut series_group = Vec::with_capacity(input.len());
        // Whether each group's labels keep the metric name.
        let mut named: Vec<bool> = Vec::with_capacity(input.len());
        for s in &input {
            let (g, new) = gid.id(&s.labels);
            if new {
                let labels = gid.keys[g].clone();
                named.push(labels.get(METRIC_NAME).is_some());
                groups.push(StepSeries {
                    labels,
                    drop_name: false,
                    points: Points::Empty,
                });
            }
            if s.drop_name && named[g] {
                groups[g].drop_name = true;
            }
            series_group.push(g);
        }
        let steps = by_step(&input, grid);
        let mut accs: Vec<Option<Acc>> = vec![None; groups.len()];
        let mut touched: Vec<usize> = Vec::new();
        for (step, entries) in steps.iter().enumerate() {
            if entries.is_empty() {
                continue;
            }
            for &(si, v) in entries {
                let g = series_group[si];
                match &mut accs[g] {
                    Some(acc) => acc.add(op, v),
                    slot @ None => {
                        *slot = Some(Acc::first(op, v));
                        touched.push(g);
                    }
                }
            }
            let q = param.map(|p| p[step]).unwrap_or(f64::NAN);
            let t = grid.ts(step);
            for &g in &touched {
                if let Some(mut acc) = accs[g].take() {
                    let v = acc.finish(op, q);
                    groups[g].points.push(crate::storage::Sample::new(t, v));
                }
            }
            touched.clear();
        }
        Ok(Val::Vector(
            groups
                .into_iter()
                .filter(|g| !g.points.is_empty())
                .collect(),
        ))
    }

    fn k_agg(
        &self,
        op: &str,
        input: Vec<StepSeries>,
        modifier: Option<&LabelModifier>,
        param: &[f64],
        grid: Grid,
    ) -> Result<Val, QueryError> {
        let spec = group_spec(modifier);
        let mut gid = KeyInterner::with_capacity(spec, input.len());
        let series_group: Vec<usize> = input.iter().map(|s| gid.id(&s.labels).0).collect();
        let ngroups = gid.len();
        let hashes: Vec<f64> = if op == "limit_ratio" {
            input
                .iter()
                .map(|s| s.labels.prometheus_hash() as f64 / u64::MAX as f64)
                .collect()
        } else {
            Vec::new()
        };
        let steps = by_step(&input, grid);
        let mut out: Collector<usize> = Collector::new();
        let mut per_group: Vec<Vec<(usize, f64)>> = vec![Vec::new(); ngroups];
        let mut order: Vec<usize> = Vec::new();
        for (step, entries) in steps.iter().enumerate() {
            // The parameter is validated at every step, even without input, like Prometheus.
            let p = param.get(step).copied().unwrap_or(f64::NAN);
            let t = grid.ts(step);
            let mut k = 0usize;
            let mut ratio = 0.0;
            if op == "limit_ratio" {
                if p.is_nan() {
                    return Err(QueryError::exec(format!(
                        "Ratio value {} is NaN",
                        format_value(p)
                    )));
                }
                if p == 0.0 {
                    continue;
                }
                ratio = p.clamp(-1.0, 1.0);
            } else {
                if !(-9.223_372_036_854_776e18..=9.223_372_036_854_776e18).contains(&p)
                    || p.is_nan()
                {
                    return Err(QueryError::exec(format!(
                        "Scalar value {} overflows int64",
                        format_value(p)
                    )));
                }
                let ki = go_f64_to_i64(p);
                if ki < 1 {
                    continue;
                }
                k = (ki as usize).min(input.len());
            }
            if entries.is_empty() {
                continue;
            }
            for &(si, v) in entries {
                let g = series_group[si];
                if per_group[g].is_empty() {
                    order.push(g);
                }
                per_group[g].push((si, v));
            }
            for &g in &order {
                let mut members = std::mem::take(&mut per_group[g]);
                match op {
                    "topk" | "bottomk" => {
                        let top = op == "topk";
                        members.sort_by(|a, b| {
                            use std::cmp::Ordering;
                            match (a.1.is_nan(), b.1.is_nan()) {
                                (true, true) => Ordering::Equal,
                                (true, false) => Ordering::Greater,
                                (false, true) => Ordering::Less,
                                _ => {
                                    let o = a.1.partial_cmp(&b.1).unwrap_or(Ordering::Equal);
                                    if top { o.reverse() } else { o }
                                }
                            }
                        });
                        members.truncate(k);
                    }
                    "limitk" => members.truncate(k),
                    _ => members.retain(|&(si, _)| {
                        let off = hashes[si];
                        (ratio >= 0.0 && off < ratio) || (ratio < 0.0 && off >= 1.0 + ratio)
                    }),
                }
                for (si, v) in members {
                    let slot = out.slot(si, || (input[si].labels.clone(), input[si].drop_name));
                    out.push(slot, t, v)?;
                }
            }
            order.clear();
        }
        Ok(Val::Vector(out.finish()))
    }

    fn count_values(
        &self,
        input: Vec<StepSeries>,
        modifier: Option<&LabelModifier>,
        label: &str,
        grid: Grid,
    ) -> Result<Val, QueryError> {
        if label.is_empty() || std::str::from_utf8(label.as_bytes()).is_err() {
            return Err(QueryError::exec(format!("invalid label name {label:?}")));
        }
        let modifier_with_label: Option<LabelModifier> = match modifier {
            Some(LabelModifier::Include(by)) => {
                let mut names = by.labels.clone();
                names.push(label.to_string());
                Some(LabelModifier::Include(promql_parser::label::Labels {
                    labels: names,
                }))
            }
            Some(LabelModifier::Exclude(w)) => Some(LabelModifier::Exclude(w.clone())),
            None => Some(LabelModifier::Include(promql_parser::label::Labels {
                labels: vec![label.to_string()],
            })),
        };
        let steps = by_step(&input, grid);
        let mut out: Collector<Labels> = Collector::new();
        for (step, entries) in steps.iter().enumerate() {
            let t = grid.ts(step);
            let mut counts: Vec<(usize, f64)> = Vec::new();
            let mut index: FxMap<usize, usize> = fx_map();
            for &(si, v) in entries {
                let mut l = input[si].labels.clone();
                l.set(label, &format_value(v));
                let gl = group_labels(&l, modifier_with_label.as_ref());
                let slot = out.slot(gl.clone(), || (gl, false));
                match index.get(&slot) {
                    Some(&i) => counts[i].1 += 1.0,
                    None => {
                        index.insert(slot, counts.len());
                        counts.push((slot, 1.0));
                    }
                }
            }
            for (slot, c) in counts {
                out.push(slot, t, c)?;
            }
        }
        Ok(Val::Vector(out.finish()))
    }
}
