//! Alerting rules as Prometheus writes them, and their validation against a topology.

use std::collections::BTreeMap;

use firedrill_promql::promql_parser::parser::{Expr, value::ValueType};
use firedrill_promql::{METRIC_NAME, parse_query};
use firedrill_telemetry::duration::parse_duration_s;
use firedrill_telemetry::metrics::{CATALOGUE, MetricKind};
use firedrill_world::Topology;
use firedrill_world::topology::{SpecError, SpecPath};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::template::{Template, valid_label_name};

/// Alert expressions already parsed, by their text: see [`AlertingRule::compile_with`] and
/// [`parse_exprs`].
pub type ParsedExprs = BTreeMap<String, Expr>;

/// Parses each of `exprs` that parses (the others are left for [`AlertingRule::compile`] to report).
pub fn parse_exprs<'a>(exprs: impl IntoIterator<Item = &'a str>) -> ParsedExprs {
    exprs
        .into_iter()
        .filter_map(|e| Some((e.to_string(), parse_query(e).ok()?)))
        .collect()
}

/// An alerting rule as it appears in a Prometheus rule file (`groups[].rules[]`).
///
/// ```yaml
/// - alert: HighErrorRate
///   expr: |
///     sum by (service) (rate(http_requests_total{code=~"5.."}[5m]))
///       / sum by (service) (rate(http_requests_total[5m])) > 0.05
///   for: 2m
///   labels: { severity: critical }
///   annotations:
///     summary: "{{ $labels.service }} is failing {{ $value | humanizePercentage }} of its requests"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertRuleSpec {
    /// The alert's name (`alertname` label).
    pub alert: String,
    /// PromQL expression; every sample it returns is one pending or firing alert.
    pub expr: String,
    /// How long the expression must keep returning an alert before it fires (`2m`, `30s`; default 0).
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<String>,
    /// How long a firing alert keeps firing after the expression stops returning it (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_firing_for: Option<String>,
    /// Labels added to (or overriding) the result's labels; values are templates.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations; values are templates over `$labels` and `$value`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A rule checked and ready to evaluate.
#[derive(Debug, Clone)]
pub struct AlertingRule {
    /// The rule as written.
    pub spec: AlertRuleSpec,
    /// The parsed expression.
    pub expr: Expr,
    /// `for`, milliseconds.
    pub for_ms: i64,
    /// `keep_firing_for`, milliseconds.
    pub keep_firing_for_ms: i64,
    /// Label templates, by label name.
    pub labels: Vec<(String, Template)>,
    /// Annotation templates, by name.
    pub annotations: Vec<(String, Template)>,
    /// Whether the expression reads only samples at or before its evaluation time and nothing that depends on a
    /// query's range (no `@` modifier, no negative `offset`), so that a range query gives, at each step,
    /// exactly the instant query's result: see [`crate::RuleEngine::catch_up`].
    range_evaluable: bool,
}

/// Whether the world exports a metric of this name (histograms as their `_bucket`, `_sum` and `_count` series).
/// Every start of an incident compiles its rules, so this looks the name up rather than listing every name.
fn is_exported(name: &str) -> bool {
    CATALOGUE.iter().any(|m| {
        if m.kind == MetricKind::Histogram {
            name.strip_prefix(m.name)
                .is_some_and(|suffix| matches!(suffix, "_bucket" | "_sum" | "_count"))
        } else {
            name == m.name
        }
    })
}

/// Every vector selector's metric name and `service="..."` matcher values.
fn selectors(expr: &Expr, out: &mut Vec<(Option<String>, Vec<String>)>) {
    use firedrill_promql::promql_parser::label::MatchOp;
    match expr {
        Expr::Aggregate(a) => {
            selectors(&a.expr, out);
            if let Some(p) = &a.param {
                selectors(p, out);
            }
        }
        Expr::Unary(u) => selectors(&u.expr, out),
        Expr::Binary(b) => {
            selectors(&b.lhs, out);
            selectors(&b.rhs, out);
        }
        Expr::Paren(p) => selectors(&p.expr, out),
        Expr::Subquery(s) => selectors(&s.expr, out),
        Expr::MatrixSelector(m) => selectors(&Expr::VectorSelector(m.vs.clone()), out),
        Expr::VectorSelector(vs) => {
            let mut name = vs.name.clone();
            let mut services = Vec::new();
            for m in &vs.matchers.matchers {
                if m.op == MatchOp::Equal {
                    if m.name == METRIC_NAME {
                        name = Some(m.value.clone());
                    } else if m.name == "service" {
                        services.push(m.value.clone());
                    }
                }
            }
            out.push((name, services));
        }
        Expr::Call(c) => {
            for a in &c.args.args {
                selectors(a, out);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// Whether no selector or subquery of `expr` has an `@` modifier or a negative offset: with either, an
/// evaluation depends on the query's range (`@ end()`) or reads the future, so evaluating a range at once
/// would differ from evaluating each step when it is due.
fn reads_only_its_past(expr: &Expr) -> bool {
    use firedrill_promql::promql_parser::parser::Offset;
    let plain = |offset: &Option<Offset>, at: bool| !at && !matches!(offset, Some(Offset::Neg(_)));
    match expr {
        Expr::Aggregate(a) => {
            reads_only_its_past(&a.expr) && a.param.as_deref().is_none_or(reads_only_its_past)
        }
        Expr::Unary(u) => reads_only_its_past(&u.expr),
        Expr::Binary(b) => reads_only_its_past(&b.lhs) && reads_only_its_past(&b.rhs),
        Expr::Paren(p) => reads_only_its_past(&p.expr),
        Expr::Subquery(s) => plain(&s.offset, s.at.is_some()) && reads_only_its_past(&s.expr),
        Expr::MatrixSelector(m) => plain(&m.vs.offset, m.vs.at.is_some()),
        Expr::VectorSelector(vs) => plain(&vs.offset, vs.at.is_some()),
        Expr::Call(c) => c.args.args.iter().all(|a| reads_only_its_past(a)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => true,
        // Not produced by the parser; assume the worst.
        Expr::Extension(_) => false,
    }
}

/// 1-based line and column of a byte offset in a text.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

impl AlertingRule {
    /// Checks a rule: the name, the expression (it must parse, return an instant vector or a scalar, and
    /// read only metrics the world exports and services that exist), the durations, label names and every
    /// template. Errors point at the field; expression and template errors also give the position inside it.
    pub fn compile(
        spec: &AlertRuleSpec,
        topology: &Topology,
        path: &SpecPath,
    ) -> Result<AlertingRule, Vec<SpecError>> {
        AlertingRule::compile_with(spec, topology, path, &ParsedExprs::new())
    }

    /// [`AlertingRule::compile`], taking the parsed expression from `parsed` when it holds the rule's text
    /// (parsing is most of compiling, and an incident compiles the same rules at every start).
    pub fn compile_with(
        spec: &AlertRuleSpec,
        topology: &Topology,
        path: &SpecPath,
        parsed: &ParsedExprs,
    ) -> Result<AlertingRule, Vec<SpecError>> {
        let mut errors = Vec::new();
        if !valid_label_name(&spec.alert) {
            errors.push(SpecError::new(
                path.key("alert"),
                format!(
                    "invalid alert name {:?}: letters, digits and '_', not starting with a digit",
                    spec.alert
                ),
            ));
        }
        let expr = match parsed
            .get(&spec.expr)
            .map_or_else(|| parse_query(&spec.expr), |e| Ok(e.clone()))
        {
            Ok(e) => Some(e),
            Err(e) => {
                let message = match e {
                    firedrill_promql::QueryError::Parse {
                        message,
                        position: Some(p),
                    } => {
                        let (line, col) = line_col(&spec.expr, p);
                        format!(
                            "expression does not parse at line {line}, column {col} of the \
                             expression: {message}"
                        )
                    }
                    other => format!("expression does not parse: {other}"),
                };
                errors.push(SpecError::new(path.key("expr"), message));
                None
            }
        };
        if let Some(e) = &expr {
            match e.value_type() {
                ValueType::Vector | ValueType::Scalar => {}
                other => errors.push(SpecError::new(
                    path.key("expr"),
                    format!(
                        "an alerting expression must return an instant vector or a scalar, this one \
                         returns a {other}"
                    ),
                )),
            }
            let mut found = Vec::new();
            selectors(e, &mut found);
            for (name, services) in found {
                if let Some(name) = name
                    && !is_exported(&name)
                {
                    errors.push(SpecError::new(
                        path.key("expr"),
                        format!("metric {name:?} is not exported by this world"),
                    ));
                }
                for s in services {
                    if topology.service_id(&s).is_none() {
                        errors.push(SpecError::new(
                            path.key("expr"),
                            format!("unknown service {s:?} in a selector"),
                        ));
                    }
                }
            }
        }
        let mut duration = |key: &str, text: &Option<String>| -> i64 {
            match text.as_deref().map(parse_duration_s) {
                None => 0,
                Some(Ok(s)) if s >= 0.0 => (s * 1000.0).round() as i64,
                Some(Ok(_)) => {
                    errors.push(SpecError::new(
                        path.key(key),
                        "duration must not be negative",
                    ));
                    0
                }
                Some(Err(e)) => {
                    errors.push(SpecError::new(path.key(key), e));
                    0
                }
            }
        };
        let for_ms = duration("for", &spec.for_);
        let keep_firing_for_ms = duration("keep_firing_for", &spec.keep_firing_for);
        let mut labels = Vec::new();
        for (name, text) in &spec.labels {
            if !valid_label_name(name) || name.starts_with("__") {
                errors.push(SpecError::new(
                    path.key("labels").key(name),
                    format!("invalid label name {name:?}"),
                ));
            }
            if name == "alertname" {
                errors.push(SpecError::new(
                    path.key("labels").key(name),
                    "alertname is the rule's `alert`; it cannot be set as a label",
                ));
            }
            match Template::parse(text) {
                Ok(t) => labels.push((name.clone(), t)),
                Err(e) => errors.push(SpecError::new(path.key("labels").key(name), e.to_string())),
            }
        }
        let mut annotations = Vec::new();
        for (name, text) in &spec.annotations {
            if !valid_label_name(name) {
                errors.push(SpecError::new(
                    path.key("annotations").key(name),
                    format!("invalid annotation name {name:?}"),
                ));
            }
            match Template::parse(text) {
                Ok(t) => annotations.push((name.clone(), t)),
                Err(e) => errors.push(SpecError::new(
                    path.key("annotations").key(name),
                    e.to_string(),
                )),
            }
        }
        match expr {
            Some(expr) if errors.is_empty() => Ok(AlertingRule {
                spec: spec.clone(),
                range_evaluable: reads_only_its_past(&expr),
                expr,
                for_ms,
                keep_firing_for_ms,
                labels,
                annotations,
            }),
            _ => Err(errors),
        }
    }

    /// Whether evaluations of this rule can be batched into one range query (see
    /// [`crate::RuleEngine::catch_up`]).
    pub fn range_evaluable(&self) -> bool {
        self.range_evaluable
    }

    /// The rule's name.
    pub fn name(&self) -> &str {
        &self.spec.alert
    }

    /// The `severity` label when it is a literal (`warning` otherwise).
    pub fn severity(&self) -> &str {
        self.spec
            .labels
            .get("severity")
            .map_or("warning", String::as_str)
    }
}
