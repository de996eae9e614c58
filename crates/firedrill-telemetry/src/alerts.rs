//! Alert rules evaluated on the simulated clock with Prometheus semantics: a rule's condition must hold for
//! `for` before the alert fires; it resolves when the condition stops holding (after `keep_firing_for`).
//!
//! Rules here compare one key signal per service with a threshold. Each (rule, service) pair is one alert
//! instance, labelled `alertname`, `service` and `severity` plus the rule's own labels, like a Prometheus rule
//! grouped `by (service)`.

use std::collections::BTreeMap;

use firedrill_world::spec::ServiceKind;
use firedrill_world::topology::{SpecError, SpecPath};
use firedrill_world::{ServiceId, Topology, World};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::parse_duration_s;
use crate::key::KeyMetric;

/// Comparison of a threshold rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Comparison {
    /// Greater than.
    #[serde(rename = ">")]
    Gt,
    /// Greater or equal.
    #[serde(rename = ">=")]
    Ge,
    /// Less than.
    #[serde(rename = "<")]
    Lt,
    /// Less or equal.
    #[serde(rename = "<=")]
    Le,
}

impl Comparison {
    fn holds(self, v: f64, threshold: f64) -> bool {
        match self {
            Comparison::Gt => v > threshold,
            Comparison::Ge => v >= threshold,
            Comparison::Lt => v < threshold,
            Comparison::Le => v <= threshold,
        }
    }
}

/// `metric op value`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// Signal compared.
    pub metric: KeyMetric,
    /// Comparison.
    pub op: Comparison,
    /// Threshold.
    pub value: f64,
}

/// An alert rule as a scenario writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertRuleSpec {
    /// `alertname`.
    pub name: String,
    /// The condition.
    pub threshold: Threshold,
    /// Services it watches (default: every service the kinds filter admits).
    #[serde(default)]
    pub services: Option<Vec<String>>,
    /// Kinds of service it watches (default: all).
    #[serde(default)]
    pub kinds: Option<Vec<ServiceKind>>,
    /// How long the condition must hold before firing (`2m`, `30s`).
    #[serde(default = "zero", rename = "for")]
    pub for_: String,
    /// How long to keep firing after the condition stops holding.
    #[serde(default = "zero")]
    pub keep_firing_for: String,
    /// `severity` label.
    #[serde(default = "warning")]
    pub severity: String,
    /// Extra labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Summary annotation; `{{ $labels.service }}` and `{{ $value }}` are replaced.
    #[serde(default)]
    pub summary: String,
}

fn zero() -> String {
    "0s".to_string()
}

fn warning() -> String {
    "warning".to_string()
}

/// A rule checked against a topology.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRule {
    /// The spec.
    pub spec: AlertRuleSpec,
    /// Services watched.
    pub services: Vec<ServiceId>,
    /// `for`, seconds.
    pub for_s: f64,
    /// `keep_firing_for`, seconds.
    pub keep_firing_for_s: f64,
}

impl AlertRule {
    /// Checks a rule against a topology.
    pub fn compile(
        spec: &AlertRuleSpec,
        topology: &Topology,
        path: &SpecPath,
    ) -> Result<AlertRule, Vec<SpecError>> {
        let mut errors = Vec::new();
        if spec.name.is_empty()
            || !spec
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            errors.push(SpecError::new(
                path.key("name"),
                "alert names are letters, digits and '_'",
            ));
        }
        let for_s = parse_duration_s(&spec.for_).unwrap_or_else(|e| {
            errors.push(SpecError::new(path.key("for"), e));
            0.0
        });
        let keep_firing_for_s = parse_duration_s(&spec.keep_firing_for).unwrap_or_else(|e| {
            errors.push(SpecError::new(path.key("keep_firing_for"), e));
            0.0
        });
        if !spec.threshold.value.is_finite() {
            errors.push(SpecError::new(
                path.key("threshold").key("value"),
                "threshold must be finite",
            ));
        }
        let mut services = Vec::new();
        match &spec.services {
            Some(names) => {
                for (i, name) in names.iter().enumerate() {
                    match topology.service_id(name) {
                        Some(id) => services.push(id),
                        None => errors.push(SpecError::new(
                            path.key("services").index(i),
                            format!("unknown service {name:?}"),
                        )),
                    }
                }
            }
            None => services.extend((0..topology.len()).map(|i| ServiceId(i as u16))),
        }
        if let Some(kinds) = &spec.kinds {
            services.retain(|id| kinds.contains(&topology.service(*id).kind()));
        }
        if errors.is_empty() {
            Ok(AlertRule {
                spec: spec.clone(),
                services,
                for_s,
                keep_firing_for_s,
            })
        } else {
            Err(errors)
        }
    }
}

/// State of an alert instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// Condition false.
    Inactive,
    /// Condition true, not yet for long enough.
    Pending,
    /// Firing.
    Firing,
}

/// One change of an alert instance's state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertTransition {
    /// Simulated seconds.
    pub t_s: f64,
    /// Rule index.
    pub rule: usize,
    /// Service.
    #[serde(skip)]
    pub service: ServiceId,
    /// Previous state.
    pub from: AlertState,
    /// New state.
    pub to: AlertState,
    /// The value that caused it.
    pub value: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Instance {
    state: AlertState,
    active_since: f64,
    last_true: f64,
    value: f64,
}

/// Evaluates rules every tick and keeps the history of transitions.
#[derive(Debug, Clone)]
pub struct AlertEngine {
    rules: Vec<AlertRule>,
    /// Instance per (rule, watched service), in rule then service order.
    instances: Vec<Instance>,
    offsets: Vec<usize>,
    history: Vec<AlertTransition>,
}

/// A currently pending or firing alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActiveAlert {
    /// Labels (`alertname`, `service`, `severity`, rule labels).
    pub labels: BTreeMap<String, String>,
    /// Annotations (`summary`).
    pub annotations: BTreeMap<String, String>,
    /// Pending or firing.
    pub state: AlertState,
    /// When the condition started holding, seconds.
    pub active_since_s: f64,
    /// Latest value.
    pub value: f64,
}

impl AlertEngine {
    /// An engine with every instance inactive.
    pub fn new(rules: Vec<AlertRule>) -> AlertEngine {
        let mut offsets = Vec::with_capacity(rules.len());
        let mut n = 0;
        for r in &rules {
            offsets.push(n);
            n += r.services.len();
        }
        let inactive = Instance {
            state: AlertState::Inactive,
            active_since: 0.0,
            last_true: f64::NEG_INFINITY,
            value: 0.0,
        };
        AlertEngine {
            rules,
            instances: vec![inactive; n],
            offsets,
            history: Vec::new(),
        }
    }

    /// The rules.
    pub fn rules(&self) -> &[AlertRule] {
        &self.rules
    }

    /// Every transition so far.
    pub fn history(&self) -> &[AlertTransition] {
        &self.history
    }

    /// Evaluates every rule against the world's latest frames.
    pub fn evaluate(&mut self, world: &World) {
        let now = world.now_s();
        for (ri, rule) in self.rules.iter().enumerate() {
            for (si, &service) in rule.services.iter().enumerate() {
                let inst = &mut self.instances[self.offsets[ri] + si];
                let value = rule.spec.threshold.metric.value(world, service);
                let holds = value
                    .is_some_and(|v| rule.spec.threshold.op.holds(v, rule.spec.threshold.value));
                let v = value.unwrap_or(f64::NAN);
                let before = inst.state;
                if holds {
                    inst.value = v;
                    inst.last_true = now;
                    if inst.state == AlertState::Inactive {
                        inst.state = AlertState::Pending;
                        inst.active_since = now;
                    }
                    if inst.state == AlertState::Pending && now - inst.active_since >= rule.for_s {
                        inst.state = AlertState::Firing;
                    }
                } else if inst.state == AlertState::Pending
                    || (inst.state == AlertState::Firing
                        && now - inst.last_true >= rule.keep_firing_for_s)
                {
                    inst.state = AlertState::Inactive;
                }
                if inst.state != before {
                    self.history.push(AlertTransition {
                        t_s: now,
                        rule: ri,
                        service,
                        from: before,
                        to: inst.state,
                        value: v,
                    });
                }
            }
        }
    }

    /// Alerts pending or firing now, in rule then service order.
    pub fn active(&self, topology: &Topology) -> Vec<ActiveAlert> {
        let mut out = Vec::new();
        for (ri, rule) in self.rules.iter().enumerate() {
            for (si, &service) in rule.services.iter().enumerate() {
                let inst = &self.instances[self.offsets[ri] + si];
                if inst.state == AlertState::Inactive {
                    continue;
                }
                out.push(ActiveAlert {
                    labels: labels(rule, topology.service(service).name()),
                    annotations: annotations(rule, topology.service(service).name(), inst.value),
                    state: inst.state,
                    active_since_s: inst.active_since,
                    value: inst.value,
                });
            }
        }
        out
    }

    /// Whether anything is firing now.
    pub fn any_firing(&self) -> bool {
        self.instances.iter().any(|i| i.state == AlertState::Firing)
    }
}

/// The labels of a rule's alert for one service.
pub fn labels(rule: &AlertRule, service: &str) -> BTreeMap<String, String> {
    let mut l = rule.spec.labels.clone();
    l.insert("alertname".into(), rule.spec.name.clone());
    l.insert("service".into(), service.to_string());
    l.insert("severity".into(), rule.spec.severity.clone());
    l
}

/// The annotations of a rule's alert for one service, with templates filled in.
pub fn annotations(rule: &AlertRule, service: &str, value: f64) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    let value_text = if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.3}")
    };
    let summary = rule
        .spec
        .summary
        .replace("{{ $labels.service }}", service)
        .replace("{{$labels.service}}", service)
        .replace("{{ $value }}", &value_text)
        .replace("{{$value}}", &value_text);
    if !summary.is_empty() {
        a.insert("summary".into(), summary);
    }
    a
}
