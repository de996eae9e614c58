//! Typed actions of the basic tier, their wire format, schemas, time costs and validation.

use firedrill_world::{FaultClass, Topology};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A diagnostic an agent can run against a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DiagnosticCheck {
    /// Can the service reach each of its dependencies?
    Connectivity,
    /// Probe and pod status.
    Health,
    /// CPU, memory, volume and quota use.
    Resources,
    /// Name resolution from the service.
    Dns,
    /// The certificate the service serves.
    Tls,
}

/// Log severity filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LevelFilter {
    /// Debug and above.
    Debug,
    /// Info and above.
    Info,
    /// Warnings and errors.
    Warn,
    /// Errors only.
    Error,
}

/// `describe_service`, `query_deploys` and other single-service reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceParams {
    /// Service name, as listed by `list_services`.
    pub service: String,
}

/// `query_metrics`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricsParams {
    /// Service name.
    pub service: String,
    /// How far back to look, in minutes (1 to 360, default 30).
    #[serde(default)]
    pub window_minutes: Option<u32>,
}

/// `query_logs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogsParams {
    /// Service name.
    pub service: String,
    /// How far back to look, in minutes (1 to 360, default 15).
    #[serde(default)]
    pub window_minutes: Option<u32>,
    /// Lowest severity returned (default info).
    #[serde(default)]
    pub level: Option<LevelFilter>,
    /// Most lines returned (1 to 500, default 40).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// `query_traces`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TracesParams {
    /// Service name.
    pub service: String,
    /// How far back to look, in minutes (1 to 360, default 15).
    #[serde(default)]
    pub window_minutes: Option<u32>,
    /// Only traces with an error span.
    #[serde(default)]
    pub errors_only: bool,
}

/// `query_metrics` with a PromQL query: a range query over the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PromqlParams {
    /// A PromQL expression, e.g. `sum by (service) (rate(http_requests_total{code=~"5.."}[5m]))`.
    pub promql: String,
    /// How far back to evaluate, in minutes (1 to 360, default 30).
    #[serde(default)]
    pub window_minutes: Option<u32>,
    /// Resolution step in seconds (15 to 3600, default: a twelfth of the window, at least 15).
    #[serde(default)]
    pub step_seconds: Option<u32>,
    /// Result page, from 0 (each page holds up to 20 series).
    #[serde(default)]
    pub page: Option<u32>,
}

/// `query_logs` with a LogQL query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogqlParams {
    /// A LogQL query, e.g. `{service="order-service"} |= "timeout"` or a metric query.
    pub logql: String,
    /// How far back to look, in minutes (1 to 360, default 15).
    #[serde(default)]
    pub window_minutes: Option<u32>,
    /// Result page, from 0 (each page holds up to 50 lines or 20 series).
    #[serde(default)]
    pub page: Option<u32>,
}

/// `query_traces` with a TraceQL query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TraceqlParams {
    /// A TraceQL search, e.g. `{ .service.name = "order-service" && status = error }`.
    pub traceql: String,
    /// How far back to look, in minutes (1 to 360, default 15).
    #[serde(default)]
    pub window_minutes: Option<u32>,
    /// Result page, from 0 (each page holds up to 10 traces).
    #[serde(default)]
    pub page: Option<u32>,
}

/// `run_diagnostic`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiagnosticParams {
    /// Service name.
    pub service: String,
    /// Which check.
    pub check: DiagnosticCheck,
}

/// `query_deploys`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeploysParams {
    /// Only this service (default: all).
    #[serde(default)]
    pub service: Option<String>,
}

/// `restart_service`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestartParams {
    /// Service name.
    pub service: String,
    /// New memory limit per pod, MiB (16 to 65536).
    #[serde(default)]
    pub memory_mb: Option<u32>,
    /// New CPU limit per pod, millicores (10 to 64000).
    #[serde(default)]
    pub cpu_millis: Option<u32>,
}

/// `scale_service`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaleParams {
    /// Service name.
    pub service: String,
    /// Desired replicas (0 to 16).
    pub replicas: u32,
}

/// `rollback_deploy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackParams {
    /// Service name.
    pub service: String,
    /// Version to roll back to (default: the one before the running version).
    #[serde(default)]
    pub version: Option<String>,
}

/// `update_config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigParams {
    /// Service name.
    pub service: String,
    /// Configuration key.
    pub key: String,
    /// New value.
    pub value: String,
}

/// `wait`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitParams {
    /// Simulated minutes to let pass (0.25 to 30).
    pub minutes: f64,
}

/// `resolve_incident`: ends the episode with a structured diagnosis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveParams {
    /// Root-cause services (empty when nothing was wrong).
    pub root_causes: Vec<String>,
    /// Fault class from the closed taxonomy (`no_fault` when nothing was wrong).
    pub fault_class: FaultClass,
    /// Ids of observations that support the diagnosis (`ev-17`).
    #[serde(default)]
    pub evidence: Vec<String>,
    /// What was done to mitigate.
    #[serde(default)]
    pub remediation: String,
    /// Free-text summary.
    #[serde(default)]
    pub summary: String,
}

/// An action of the basic tier.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Service catalogue.
    ListServices,
    /// One service's configuration, dependencies and recent changes.
    DescribeService(ServiceParams),
    /// Key metrics of a service over a window.
    QueryMetrics(MetricsParams),
    /// Recent log lines of a service.
    QueryLogs(LogsParams),
    /// A PromQL range query over a window (wire name `query_metrics`, with `promql`).
    QueryPromql(PromqlParams),
    /// A LogQL query over a window (wire name `query_logs`, with `logql`).
    QueryLogql(LogqlParams),
    /// A TraceQL search over a window (wire name `query_traces`, with `traceql`).
    QueryTraceql(TraceqlParams),
    /// Recent traces through a service.
    QueryTraces(TracesParams),
    /// A diagnostic check.
    RunDiagnostic(DiagnosticParams),
    /// Deploy and change history.
    QueryDeploys(DeploysParams),
    /// Restart a service, optionally with new limits.
    RestartService(RestartParams),
    /// Set desired replicas.
    ScaleService(ScaleParams),
    /// Roll a service back.
    RollbackDeploy(RollbackParams),
    /// Set a configuration key.
    UpdateConfig(ConfigParams),
    /// Let time pass.
    Wait(WaitParams),
    /// End the episode with a diagnosis.
    ResolveIncident(ResolveParams),
}

/// The name of an action, for tables and schemas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ActionKind {
    /// `list_services`
    ListServices,
    /// `describe_service`
    DescribeService,
    /// `query_metrics`
    QueryMetrics,
    /// `query_logs`
    QueryLogs,
    /// `query_traces`
    QueryTraces,
    /// `run_diagnostic`
    RunDiagnostic,
    /// `query_deploys`
    QueryDeploys,
    /// `restart_service`
    RestartService,
    /// `scale_service`
    ScaleService,
    /// `rollback_deploy`
    RollbackDeploy,
    /// `update_config`
    UpdateConfig,
    /// `wait`
    Wait,
    /// `resolve_incident`
    ResolveIncident,
}

impl ActionKind {
    /// Every action, in documentation order.
    pub const ALL: [ActionKind; 13] = [
        ActionKind::ListServices,
        ActionKind::DescribeService,
        ActionKind::QueryMetrics,
        ActionKind::QueryLogs,
        ActionKind::QueryTraces,
        ActionKind::RunDiagnostic,
        ActionKind::QueryDeploys,
        ActionKind::RestartService,
        ActionKind::ScaleService,
        ActionKind::RollbackDeploy,
        ActionKind::UpdateConfig,
        ActionKind::Wait,
        ActionKind::ResolveIncident,
    ];

    /// Wire name.
    pub fn name(self) -> &'static str {
        match self {
            ActionKind::ListServices => "list_services",
            ActionKind::DescribeService => "describe_service",
            ActionKind::QueryMetrics => "query_metrics",
            ActionKind::QueryLogs => "query_logs",
            ActionKind::QueryTraces => "query_traces",
            ActionKind::RunDiagnostic => "run_diagnostic",
            ActionKind::QueryDeploys => "query_deploys",
            ActionKind::RestartService => "restart_service",
            ActionKind::ScaleService => "scale_service",
            ActionKind::RollbackDeploy => "rollback_deploy",
            ActionKind::UpdateConfig => "update_config",
            ActionKind::Wait => "wait",
            ActionKind::ResolveIncident => "resolve_incident",
        }
    }

    /// What it does, for tool descriptions.
    pub fn description(self) -> &'static str {
        match self {
            ActionKind::ListServices => "List the services of the system with their kinds.",
            ActionKind::DescribeService => {
                "Show a service's configuration, limits, versions, pods per version, dependencies and dependents."
            }
            ActionKind::QueryMetrics => {
                "Key metrics of a service (traffic, errors, latency, saturation) over a window."
            }
            ActionKind::QueryLogs => {
                "Recent log lines of a service, optionally filtered by severity."
            }
            ActionKind::QueryTraces => "Recent request traces through a service.",
            ActionKind::RunDiagnostic => {
                "Run a diagnostic check (connectivity, health, resources, dns, tls) on a service."
            }
            ActionKind::QueryDeploys => "Deploy and change history, for one service or all.",
            ActionKind::RestartService => {
                "Restart every pod of a service, optionally with new memory or CPU limits."
            }
            ActionKind::ScaleService => "Set the desired number of replicas of a service.",
            ActionKind::RollbackDeploy => "Roll a service back to an earlier version.",
            ActionKind::UpdateConfig => "Set a configuration key of a service.",
            ActionKind::Wait => "Let simulated time pass.",
            ActionKind::ResolveIncident => {
                "End the incident with a structured diagnosis: root-cause services, fault class, evidence ids, remediation and summary."
            }
        }
    }

    /// Simulated seconds the action costs (a `wait` costs its own duration on top).
    pub fn cost_s(self) -> f64 {
        match self {
            ActionKind::ListServices | ActionKind::QueryDeploys | ActionKind::ResolveIncident => {
                15.0
            }
            ActionKind::DescribeService | ActionKind::QueryMetrics => 30.0,
            ActionKind::QueryLogs | ActionKind::QueryTraces => 45.0,
            ActionKind::RunDiagnostic => 60.0,
            ActionKind::RestartService
            | ActionKind::ScaleService
            | ActionKind::RollbackDeploy
            | ActionKind::UpdateConfig => 30.0,
            ActionKind::Wait => 0.0,
        }
    }

    /// JSON Schema of the parameters.
    pub fn parameters_schema(self) -> Value {
        let schema = match self {
            ActionKind::ListServices => {
                return json!({"type": "object", "properties": {}, "additionalProperties": false});
            }
            ActionKind::DescribeService => schemars::schema_for!(ServiceParams),
            ActionKind::QueryMetrics => {
                return merged_schema(
                    schemars::schema_for!(MetricsParams),
                    schemars::schema_for!(PromqlParams),
                    "Either `service` (a snapshot of the service's metrics) or `promql` (a PromQL range query).",
                );
            }
            ActionKind::QueryLogs => {
                return merged_schema(
                    schemars::schema_for!(LogsParams),
                    schemars::schema_for!(LogqlParams),
                    "Either `service` (the service's recent lines) or `logql` (a LogQL log or metric query).",
                );
            }
            ActionKind::QueryTraces => {
                return merged_schema(
                    schemars::schema_for!(TracesParams),
                    schemars::schema_for!(TraceqlParams),
                    "Either `service` (recent traces through it) or `traceql` (a TraceQL search).",
                );
            }
            ActionKind::RunDiagnostic => schemars::schema_for!(DiagnosticParams),
            ActionKind::QueryDeploys => schemars::schema_for!(DeploysParams),
            ActionKind::RestartService => schemars::schema_for!(RestartParams),
            ActionKind::ScaleService => schemars::schema_for!(ScaleParams),
            ActionKind::RollbackDeploy => schemars::schema_for!(RollbackParams),
            ActionKind::UpdateConfig => schemars::schema_for!(ConfigParams),
            ActionKind::Wait => schemars::schema_for!(WaitParams),
            ActionKind::ResolveIncident => schemars::schema_for!(ResolveParams),
        };
        serde_json::to_value(schema).unwrap_or(Value::Null)
    }

    /// The action as an OpenAI function-calling tool definition.
    pub fn openai_tool(self) -> Value {
        let mut parameters = self.parameters_schema();
        if let Some(obj) = parameters.as_object_mut() {
            obj.remove("$schema");
            obj.remove("title");
        }
        json!({"type": "function", "function": {"name": self.name(), "description": self.description(), "parameters": parameters}})
    }

    fn parse(name: &str) -> Option<ActionKind> {
        ActionKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// One object schema accepting either parameter set: the union of their properties, nothing required (the
/// parser tells them apart by the query field and reports what is missing). Function-calling APIs want a single
/// object schema, not a `oneOf`.
fn merged_schema(a: schemars::Schema, b: schemars::Schema, description: &str) -> Value {
    let mut a = serde_json::to_value(a).unwrap_or(Value::Null);
    let b = serde_json::to_value(b).unwrap_or(Value::Null);
    if let (Some(pa), Some(pb)) = (
        a.get_mut("properties").and_then(Value::as_object_mut),
        b.get("properties").and_then(Value::as_object),
    ) {
        for (k, v) in pb {
            pa.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    if let (Some(obj), Some(defs)) = (a.as_object_mut(), b.get("$defs").and_then(Value::as_object))
    {
        let entry = obj
            .entry("$defs")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(d) = entry.as_object_mut() {
            for (k, v) in defs {
                d.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
    if let Some(obj) = a.as_object_mut() {
        obj.insert("required".into(), Value::Array(Vec::new()));
        obj.insert("description".into(), Value::String(description.into()));
    }
    a
}

/// Every action as OpenAI tool definitions.
pub fn openai_tools() -> Value {
    Value::clone(&openai_tools_shared())
}

/// [`openai_tools`], shared: every page carries the tools, and a copy of the whole value at each reset cost more
/// than a tenth of a million instructions.
pub fn openai_tools_shared() -> std::sync::Arc<Value> {
    // Generating the schemas once per process instead of once per reset saves about a million instructions per
    // reset. The value never changes within a build.
    static TOOLS: std::sync::OnceLock<std::sync::Arc<Value>> = std::sync::OnceLock::new();
    TOOLS
        .get_or_init(|| {
            std::sync::Arc::new(Value::Array(
                ActionKind::ALL.iter().map(|k| k.openai_tool()).collect(),
            ))
        })
        .clone()
}

/// Why an action was refused. The message says exactly what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// Not JSON, or not an object.
    #[error("malformed action: {0}")]
    Malformed(String),
    /// No `action` field, or an unknown name.
    #[error("{0}")]
    UnknownAction(String),
    /// A parameter is missing, unknown or of the wrong type.
    #[error("{action}: {message}")]
    BadParameter {
        /// Action name.
        action: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A parameter is out of its range.
    #[error("{action}: {field} must be {range}, got {got}")]
    OutOfRange {
        /// Action name.
        action: &'static str,
        /// Field.
        field: &'static str,
        /// Accepted range.
        range: &'static str,
        /// Value given.
        got: String,
    },
    /// A service the system does not have.
    #[error("{action}: unknown service {service:?} (known: {known})")]
    UnknownService {
        /// Action name.
        action: &'static str,
        /// Name given.
        service: String,
        /// Known names.
        known: String,
    },
}

impl Action {
    /// The kind.
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::ListServices => ActionKind::ListServices,
            Action::DescribeService(_) => ActionKind::DescribeService,
            Action::QueryMetrics(_) => ActionKind::QueryMetrics,
            Action::QueryLogs(_) => ActionKind::QueryLogs,
            Action::QueryPromql(_) => ActionKind::QueryMetrics,
            Action::QueryLogql(_) => ActionKind::QueryLogs,
            Action::QueryTraceql(_) => ActionKind::QueryTraces,
            Action::QueryTraces(_) => ActionKind::QueryTraces,
            Action::RunDiagnostic(_) => ActionKind::RunDiagnostic,
            Action::QueryDeploys(_) => ActionKind::QueryDeploys,
            Action::RestartService(_) => ActionKind::RestartService,
            Action::ScaleService(_) => ActionKind::ScaleService,
            Action::RollbackDeploy(_) => ActionKind::RollbackDeploy,
            Action::UpdateConfig(_) => ActionKind::UpdateConfig,
            Action::Wait(_) => ActionKind::Wait,
            Action::ResolveIncident(_) => ActionKind::ResolveIncident,
        }
    }

    /// The wire form `{"action": "<name>", ...parameters}`.
    pub fn to_json(&self) -> Value {
        let params = match self {
            Action::ListServices => json!({}),
            Action::DescribeService(p) => json!(p),
            Action::QueryMetrics(p) => json!(p),
            Action::QueryLogs(p) => json!(p),
            Action::QueryPromql(p) => json!(p),
            Action::QueryLogql(p) => json!(p),
            Action::QueryTraceql(p) => json!(p),
            Action::QueryTraces(p) => json!(p),
            Action::RunDiagnostic(p) => json!(p),
            Action::QueryDeploys(p) => json!(p),
            Action::RestartService(p) => json!(p),
            Action::ScaleService(p) => json!(p),
            Action::RollbackDeploy(p) => json!(p),
            Action::UpdateConfig(p) => json!(p),
            Action::Wait(p) => json!(p),
            Action::ResolveIncident(p) => json!(p),
        };
        let mut obj = serde_json::Map::new();
        obj.insert("action".into(), self.kind().name().into());
        if let Value::Object(p) = params {
            for (k, v) in p {
                if !v.is_null() {
                    obj.insert(k, v);
                }
            }
        }
        Value::Object(obj)
    }

    /// The services the action names (to check against a topology).
    pub fn services(&self) -> Vec<&str> {
        match self {
            Action::ListServices
            | Action::Wait(_)
            | Action::QueryPromql(_)
            | Action::QueryLogql(_)
            | Action::QueryTraceql(_) => Vec::new(),
            Action::DescribeService(p) => vec![&p.service],
            Action::QueryMetrics(p) => vec![&p.service],
            Action::QueryLogs(p) => vec![&p.service],
            Action::QueryTraces(p) => vec![&p.service],
            Action::RunDiagnostic(p) => vec![&p.service],
            Action::QueryDeploys(p) => p.service.iter().map(String::as_str).collect(),
            Action::RestartService(p) => vec![&p.service],
            Action::ScaleService(p) => vec![&p.service],
            Action::RollbackDeploy(p) => vec![&p.service],
            Action::UpdateConfig(p) => vec![&p.service],
            Action::ResolveIncident(p) => p.root_causes.iter().map(String::as_str).collect(),
        }
    }

    /// Checks ranges and that every named service exists.
    pub fn validate(&self, topology: &Topology) -> Result<(), ActionError> {
        let name = self.kind().name();
        for s in self.services() {
            if topology.service_id(s).is_none() {
                let known: Vec<&str> = topology.service_names().collect();
                return Err(ActionError::UnknownService {
                    action: name,
                    service: s.to_string(),
                    known: known.join(", "),
                });
            }
        }
        let window = |w: Option<u32>| -> Result<(), ActionError> {
            match w {
                Some(m) if !(1..=360).contains(&m) => Err(ActionError::OutOfRange {
                    action: name,
                    field: "window_minutes",
                    range: "1..=360",
                    got: m.to_string(),
                }),
                _ => Ok(()),
            }
        };
        match self {
            Action::QueryPromql(p) => {
                window(p.window_minutes)?;
                match p.step_seconds {
                    Some(st) if !(15..=3600).contains(&st) => Err(ActionError::OutOfRange {
                        action: name,
                        field: "step_seconds",
                        range: "15..=3600",
                        got: st.to_string(),
                    }),
                    _ => Ok(()),
                }
            }
            Action::QueryLogql(p) => window(p.window_minutes),
            Action::QueryTraceql(p) => window(p.window_minutes),
            Action::QueryMetrics(p) => window(p.window_minutes),
            Action::QueryTraces(p) => window(p.window_minutes),
            Action::QueryLogs(p) => {
                window(p.window_minutes)?;
                match p.limit {
                    Some(l) if !(1..=500).contains(&l) => Err(ActionError::OutOfRange {
                        action: name,
                        field: "limit",
                        range: "1..=500",
                        got: l.to_string(),
                    }),
                    _ => Ok(()),
                }
            }
            Action::RestartService(p) => {
                if let Some(m) = p.memory_mb
                    && !(16..=65_536).contains(&m)
                {
                    return Err(ActionError::OutOfRange {
                        action: name,
                        field: "memory_mb",
                        range: "16..=65536",
                        got: m.to_string(),
                    });
                }
                match p.cpu_millis {
                    Some(c) if !(10..=64_000).contains(&c) => Err(ActionError::OutOfRange {
                        action: name,
                        field: "cpu_millis",
                        range: "10..=64000",
                        got: c.to_string(),
                    }),
                    _ => Ok(()),
                }
            }
            Action::ScaleService(p) if p.replicas > 16 => Err(ActionError::OutOfRange {
                action: name,
                field: "replicas",
                range: "0..=16",
                got: p.replicas.to_string(),
            }),
            Action::Wait(p) if !(p.minutes.is_finite() && (0.25..=30.0).contains(&p.minutes)) => {
                Err(ActionError::OutOfRange {
                    action: name,
                    field: "minutes",
                    range: "0.25..=30",
                    got: p.minutes.to_string(),
                })
            }
            Action::UpdateConfig(p) => firedrill_world::config::check_value(&p.key, &p.value)
                .map_err(|message| ActionError::BadParameter {
                    action: name,
                    message,
                }),
            _ => Ok(()),
        }
    }
}

fn params<T: serde::de::DeserializeOwned>(
    kind: ActionKind,
    value: Value,
) -> Result<T, ActionError> {
    serde_json::from_value(value).map_err(|e| ActionError::BadParameter {
        action: kind.name(),
        message: e.to_string(),
    })
}

/// Parses the wire form `{"action": "<name>", ...parameters}`. Unknown actions, missing or unknown parameters and
/// wrong types give an [`ActionError`] naming the problem; nothing panics.
pub fn parse_action(text: &str) -> Result<Action, ActionError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| ActionError::Malformed(e.to_string()))?;
    parse_action_value(value)
}

/// Like [`parse_action`], from a parsed JSON value.
pub fn parse_action_value(value: Value) -> Result<Action, ActionError> {
    let Value::Object(mut obj) = value else {
        return Err(ActionError::Malformed(
            "an action is a JSON object like {\"action\": \"list_services\"}".into(),
        ));
    };
    let known = || {
        ActionKind::ALL
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let name = match obj.remove("action") {
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(ActionError::UnknownAction(format!(
                "\"action\" must be a string, got {other}"
            )));
        }
        None => {
            return Err(ActionError::UnknownAction(format!(
                "missing \"action\" (one of: {})",
                known()
            )));
        }
    };
    let Some(kind) = ActionKind::parse(&name) else {
        return Err(ActionError::UnknownAction(format!(
            "unknown action {name:?} (one of: {})",
            known()
        )));
    };
    let rest = Value::Object(obj);
    Ok(match kind {
        ActionKind::ListServices => {
            if rest.as_object().is_some_and(|o| !o.is_empty()) {
                return Err(ActionError::BadParameter {
                    action: kind.name(),
                    message: "takes no parameters".into(),
                });
            }
            Action::ListServices
        }
        ActionKind::DescribeService => Action::DescribeService(params(kind, rest)?),
        // A query parameter selects the query-language form of the three read actions.
        ActionKind::QueryMetrics if rest.get("promql").is_some() => {
            Action::QueryPromql(params(kind, rest)?)
        }
        ActionKind::QueryLogs if rest.get("logql").is_some() => {
            Action::QueryLogql(params(kind, rest)?)
        }
        ActionKind::QueryTraces if rest.get("traceql").is_some() => {
            Action::QueryTraceql(params(kind, rest)?)
        }
        ActionKind::QueryMetrics => Action::QueryMetrics(params(kind, rest)?),
        ActionKind::QueryLogs => Action::QueryLogs(params(kind, rest)?),
        ActionKind::QueryTraces => Action::QueryTraces(params(kind, rest)?),
        ActionKind::RunDiagnostic => Action::RunDiagnostic(params(kind, rest)?),
        ActionKind::QueryDeploys => Action::QueryDeploys(params(kind, rest)?),
        ActionKind::RestartService => Action::RestartService(params(kind, rest)?),
        ActionKind::ScaleService => Action::ScaleService(params(kind, rest)?),
        ActionKind::RollbackDeploy => Action::RollbackDeploy(params(kind, rest)?),
        ActionKind::UpdateConfig => Action::UpdateConfig(params(kind, rest)?),
        ActionKind::Wait => Action::Wait(params(kind, rest)?),
        ActionKind::ResolveIncident => Action::ResolveIncident(params(kind, rest)?),
    })
}
