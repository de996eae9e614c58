//! Binary operators and vector matching.

use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};

use super::{Collector, Evaluator, Grid, StepSeries, Val, by_step};
use crate::error::QueryError;
use crate::hash::FxSet;
use crate::labels::{KeyInterner, KeySpec, Labels};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    And,
    Or,
    Unless,
}

impl Op {
    pub(crate) fn parse(s: &str) -> Result<Op, QueryError> {
        Ok(match s {
            "+" => Op::Add,
            "-" => Op::Sub,
            "*" => Op::Mul,
            "/" => Op::Div,
            "%" => Op::Mod,
            "^" => Op::Pow,
            "atan2" => Op::Atan2,
            "==" => Op::Eq,
            "!=" => Op::Ne,
            ">" => Op::Gt,
            "<" => Op::Lt,
            ">=" => Op::Ge,
            "<=" => Op::Le,
            "and" => Op::And,
            "or" => Op::Or,
            "unless" => Op::Unless,
            other => {
                return Err(QueryError::exec(format!(
                    "unsupported binary operator {other:?}"
                )));
            }
        })
    }

    pub(crate) fn is_comparison(self) -> bool {
        matches!(self, Op::Eq | Op::Ne | Op::Gt | Op::Lt | Op::Ge | Op::Le)
    }
}

/// Applies `op` to two floats: `(value, keep)`; comparisons return the left value.
pub(crate) fn elem(op: Op, l: f64, r: f64) -> (f64, bool) {
    match op {
        Op::Add => (l + r, true),
        Op::Sub => (l - r, true),
        Op::Mul => (l * r, true),
        Op::Div => (l / r, true),
        Op::Mod => (l % r, true),
        Op::Pow => (go_pow(l, r), true),
        Op::Atan2 => (l.atan2(r), true),
        Op::Eq => (l, l == r),
        Op::Ne => (l, l != r),
        Op::Gt => (l, l > r),
        Op::Lt => (l, l < r),
        Op::Ge => (l, l >= r),
        Op::Le => (l, l <= r),
        Op::And | Op::Or | Op::Unless => (l, true),
    }
}

/// Go's `math.Pow` special cases differ from C's `pow` in a few places.
fn go_pow(x: f64, y: f64) -> f64 {
    if y == 0.0 {
        return 1.0;
    }
    if x == 1.0 {
        return 1.0;
    }
    if (x == -1.0) && y.is_infinite() {
        return 1.0;
    }
    x.powf(y)
}

/// The matching signature of `on (...)`, `ignoring (...)` or plain one-to-one matching.
pub(crate) fn matching_spec(modifier: Option<&LabelModifier>) -> KeySpec<'_> {
    match modifier {
        Some(LabelModifier::Include(on)) => KeySpec::Only(&on.labels),
        Some(LabelModifier::Exclude(ign)) => KeySpec::AllBut(&ign.labels),
        None => KeySpec::AllBut(&[]),
    }
}

impl Evaluator<'_> {
    pub(crate) fn eval_binary(&self, b: &BinaryExpr, grid: Grid) -> Result<Val, QueryError> {
        let op = Op::parse(&b.op.to_string())?;
        let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
        let lhs = self.eval(&b.lhs, grid)?;
        let rhs = self.eval(&b.rhs, grid)?;
        match (lhs, rhs) {
            (Val::Scalar(l), Val::Scalar(r)) => {
                let out = l
                    .iter()
                    .zip(r.iter())
                    .map(|(&a, &c)| {
                        let (v, keep) = elem(op, a, c);
                        if op.is_comparison() {
                            if keep { 1.0 } else { 0.0 }
                        } else {
                            v
                        }
                    })
                    .collect();
                Ok(Val::Scalar(out))
            }
            (Val::Vector(v), Val::Scalar(s)) => Ok(Val::Vector(vector_scalar(
                op,
                v,
                &s,
                false,
                return_bool,
                grid,
            ))),
            (Val::Scalar(s), Val::Vector(v)) => Ok(Val::Vector(vector_scalar(
                op,
                v,
                &s,
                true,
                return_bool,
                grid,
            ))),
            (Val::Vector(l), Val::Vector(r)) => {
                let matching = b.modifier.as_ref().and_then(|m| m.matching.as_ref());
                let card = b
                    .modifier
                    .as_ref()
                    .map(|m| m.card.clone())
                    .unwrap_or(VectorMatchCardinality::OneToOne);
                match op {
                    Op::And | Op::Or | Op::Unless => set_op(op, l, r, matching, grid),
                    _ => {
                        let fill = b
                            .modifier
                            .as_ref()
                            .map(|m| (m.fill_values.lhs, m.fill_values.rhs))
                            .unwrap_or((None, None));
                        vector_binop(op, l, r, matching, &card, return_bool, fill, grid)
                    }
                }
            }
            _ => Err(QueryError::exec(
                "binary expression must contain only scalar and instant vector types",
            )),
        }
    }
}

fn vector_scalar(
    op: Op,
    mut v: Vec<StepSeries>,
    s: &[f64],
    swap: bool,
    return_bool: bool,
    grid: Grid,
) -> Vec<StepSeries> {
    for series in &mut v {
        series.points.retain_mut(|p| {
            let sv = s[grid.index(p.t)];
            let (l, r) = if swap { (sv, p.v) } else { (p.v, sv) };
            let (mut val, mut keep) = elem(op, l, r);
            if op.is_comparison() && swap {
                val = r;
            }
            if return_bool {
                val = if keep { 1.0 } else { 0.0 };
                keep = true;
            }
            p.v = val;
            keep
        });
        if !op.is_comparison() || return_bool {
            series.drop_name = true;
        }
    }
    v.retain(|s| !s.points.is_empty());
    v
}

fn set_op(
    op: Op,
    l: Vec<StepSeries>,
    r: Vec<StepSeries>,
    matching: Option<&LabelModifier>,
    grid: Grid,
) -> Result<Val, QueryError> {
    // Signatures are interned so per-step work uses small integers instead of label sets.
    let spec = matching_spec(matching);
    let mut sigs = KeyInterner::with_capacity(spec, l.len() + r.len());
    let lsig: Vec<usize> = l.iter().map(|s| sigs.id(&s.labels).0).collect();
    let rsig: Vec<usize> = r.iter().map(|s| sigs.id(&s.labels).0).collect();
    let nsig = sigs.len();
    let lsteps = by_step(&l, grid);
    let rsteps = by_step(&r, grid);
    // `stamp[sig] == step + 1` marks a signature seen on the other side at this step, avoiding
    // a per-step clear.
    let mut stamp = vec![0usize; nsig];
    let mut out: Collector<(bool, usize)> = Collector::new();
    for step in 0..grid.len() {
        let t = grid.ts(step);
        let mark = step + 1;
        match op {
            Op::And | Op::Unless => {
                for &(ri, _) in &rsteps[step] {
                    stamp[rsig[ri]] = mark;
                }
                for &(li, v) in &lsteps[step] {
                    let present = stamp[lsig[li]] == mark;
                    if present == (op == Op::And) {
                        let slot =
                            out.slot((false, li), || (l[li].labels.clone(), l[li].drop_name));
                        out.push(slot, t, v)?;
                    }
                }
            }
            _ => {
                for &(li, v) in &lsteps[step] {
                    stamp[lsig[li]] = mark;
                    let slot = out.slot((false, li), || (l[li].labels.clone(), l[li].drop_name));
                    out.push(slot, t, v)?;
                }
                for &(ri, v) in &rsteps[step] {
                    if stamp[rsig[ri]] != mark {
                        let slot = out.slot((true, ri), || (r[ri].labels.clone(), r[ri].drop_name));
                        out.push(slot, t, v)?;
                    }
                }
            }
        }
    }
    Ok(Val::Vector(out.finish()))
}

pub(crate) fn result_labels(
    ls: &Labels,
    rs: &Labels,
    matching: Option<&LabelModifier>,
    card: &VectorMatchCardinality,
) -> Labels {
    let mut out = ls.clone();
    if matches!(card, VectorMatchCardinality::OneToOne) {
        match matching {
            Some(LabelModifier::Include(on)) => out = out.keep_only(&on.labels),
            Some(LabelModifier::Exclude(ign)) => out = out.drop_names(&ign.labels),
            None => {}
        }
    }
    if let Some(include) = card.labels() {
        for name in &include.labels {
            out.set(name, rs.get_or_empty(name));
        }
    }
    out
}

/// Vector-vector arithmetic/comparison. `fill` holds the `fill_left`/`fill_right` values that
/// stand in for a missing operand on that side.
#[allow(clippy::too_many_arguments)]
fn vector_binop(
    op: Op,
    l: Vec<StepSeries>,
    r: Vec<StepSeries>,
    matching: Option<&LabelModifier>,
    card: &VectorMatchCardinality,
    return_bool: bool,
    fill: (Option<f64>, Option<f64>),
    grid: Grid,
) -> Result<Val, QueryError> {
    // One-to-many is many-to-one with sides swapped; `swapped` restores operand order.
    let swapped = matches!(card, VectorMatchCardinality::OneToMany(_));
    // The parser already stores group_right's fill values relative to the many/one sides.
    let (fill_many, fill_one) = fill;
    if (l.is_empty() || r.is_empty()) && fill.0.is_none() && fill.1.is_none() {
        return Ok(Val::Vector(Vec::new()));
    }
    let (many, one) = if swapped { (r, l) } else { (l, r) };
    let spec = matching_spec(matching);
    let mut sigs = KeyInterner::with_capacity(spec, many.len() + one.len());
    let msig: Vec<usize> = many.iter().map(|s| sigs.id(&s.labels).0).collect();
    let osig: Vec<usize> = one.iter().map(|s| sigs.id(&s.labels).0).collect();
    let nsig = sigs.len();
    let msteps = by_step(&many, grid);
    let osteps = by_step(&one, grid);
    let one_to_one = matches!(card, VectorMatchCardinality::OneToOne);
    let mut out: Collector<(usize, usize)> = Collector::new();
    // Per signature, the step (plus one) at which the one side had it, and which series with
    // what value; the stamps avoid clearing per step.
    let mut right_stamp = vec![0usize; nsig];
    let mut right: Vec<(usize, f64)> = vec![(0, 0.0); nsig];
    // Per signature, the step (plus one) at which a many-side series matched it; for
    // many-to-one matching also the output slots it produced at this step.
    let mut matched_stamp = vec![0usize; nsig];
    let mut matched_slots: FxSet<(usize, usize)> = FxSet::default();
    for step in 0..grid.len() {
        let no_fill = fill_many.is_none() && fill_one.is_none();
        if (msteps[step].is_empty() || osteps[step].is_empty()) && no_fill {
            continue;
        }
        let t = grid.ts(step);
        let mark = step + 1;
        matched_slots.clear();
        for &(oi, v) in &osteps[step] {
            let sig = osig[oi];
            if right_stamp[sig] == mark {
                let prev = right[sig].0;
                let side = if swapped { "left" } else { "right" };
                let group = matching_group_labels(&one[oi].labels, matching);
                return Err(QueryError::exec(format!(
                    "found duplicate series for the match group {group} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                    one[oi].labels, one[prev].labels
                )));
            }
            right_stamp[sig] = mark;
            right[sig] = (oi, v);
        }
        for &(mi, mv) in &msteps[step] {
            let sig = msig[mi];
            let Some((oi, ov)) = (right_stamp[sig] == mark).then(|| right[sig]) else {
                if let Some(ov) = fill_one {
                    let (a, c) = if swapped { (ov, mv) } else { (mv, ov) };
                    let (mut val, keep) = elem(op, a, c);
                    if return_bool {
                        val = if keep { 1.0 } else { 0.0 };
                    } else if !keep {
                        continue;
                    }
                    let drop = return_bool || !op.is_comparison() || many[mi].drop_name;
                    let slot = out.slot((mi, usize::MAX), || {
                        (
                            result_labels(&many[mi].labels, &Labels::empty(), matching, card),
                            drop,
                        )
                    });
                    out.push(slot, t, val)?;
                }
                continue;
            };
            let (a, c) = if swapped { (ov, mv) } else { (mv, ov) };
            let (mut val, keep) = elem(op, a, c);
            let drop = return_bool || !op.is_comparison() || many[mi].drop_name;
            let slot = out.slot((mi, oi), || {
                (
                    result_labels(&many[mi].labels, &one[oi].labels, matching, card),
                    drop,
                )
            });
            // Matching errors are detected before comparison filtering, as in Prometheus.
            let seen = matched_stamp[sig] == mark;
            matched_stamp[sig] = mark;
            if one_to_one {
                if seen {
                    return Err(QueryError::exec(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                    ));
                }
            } else if !matched_slots.insert((sig, slot)) {
                return Err(QueryError::exec(
                    "multiple matches for labels: grouping labels must ensure unique matches",
                ));
            }
            if return_bool {
                val = if keep { 1.0 } else { 0.0 };
            } else if !keep {
                continue;
            }
            out.push(slot, t, val)?;
        }
        // One-side series nobody on the many side matched: a filled many-side operand yields
        // one result labelled with the match group.
        if let Some(mv) = fill_many {
            for &(oi, ov) in &osteps[step] {
                if matched_stamp[osig[oi]] == mark {
                    continue;
                }
                let (a, c) = if swapped { (ov, mv) } else { (mv, ov) };
                let (mut val, keep) = elem(op, a, c);
                if return_bool {
                    val = if keep { 1.0 } else { 0.0 };
                } else if !keep {
                    continue;
                }
                let slot = out.slot((usize::MAX, oi), || {
                    (matching_group_labels(&one[oi].labels, matching), true)
                });
                out.push(slot, t, val)?;
            }
        }
    }
    Ok(Val::Vector(out.finish()))
}

fn matching_group_labels(l: &Labels, matching: Option<&LabelModifier>) -> Labels {
    matching_spec(matching).labels(l)
}
