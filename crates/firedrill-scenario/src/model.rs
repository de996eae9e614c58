//! The scenario document, as YAML writes it. Unknown fields are rejected everywhere.

use std::collections::BTreeMap;

use firedrill_alerting::AlertRuleSpec;
use firedrill_telemetry::KeyMetric;
use firedrill_world::FaultClass;
use firedrill_world::spec::{Durability, Reliability, TopologySpec};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A value that is either written out or taken from a parameter (`$name`). Strings may also interpolate
/// parameters (`"v${minor}.0"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Value {
    /// A number.
    Number(f64),
    /// A boolean.
    Bool(bool),
    /// Text, a `$parameter` reference, or text with `${parameter}` inside.
    Text(String),
}

/// Which tier a scenario belongs to.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Single-fault incidents on a small system.
    Basic,
    /// Long multi-phase incidents.
    Advanced,
    /// The distributed pipeline pack.
    Pipeline,
    /// Re-enactments of public postmortems.
    Beyond,
}

/// A whole scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Unique id (`oom_crash`).
    pub id: String,
    /// One-line title (shown to agents: it must not name the cause).
    pub title: String,
    /// Tier.
    pub tier: Tier,
    /// Free tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// What happens and why, for humans only. Never shown to an agent.
    pub description: String,
    /// The system: a built-in topology's name, or one written inline.
    pub topology: TopologyRef,
    /// Seeded parameters.
    #[serde(default)]
    pub parameters: BTreeMap<String, Parameter>,
    /// What difficulty changes besides parameters with `hard` ranges.
    #[serde(default)]
    pub difficulty: DifficultySpec,
    /// The faults.
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
    /// Phases that inject faults on a trigger.
    #[serde(default)]
    pub phases: Vec<PhaseSpec>,
    /// Benign events that are not faults (a traffic burst, a routine restart).
    #[serde(default)]
    pub events: Vec<BenignEventSpec>,
    /// Alert rules (Prometheus alerting rules) added to the topology's standard ones.
    #[serde(default)]
    pub alerts: Vec<AlertRuleSpec>,
    /// How often the alert rules are evaluated (Prometheus's `evaluation_interval`), a multiple of the tick;
    /// default: the built-in topology's, or `15s`.
    #[serde(default)]
    pub evaluation_interval: Option<String>,
    /// The truth the episode is graded against.
    pub ground_truth: GroundTruthSpec,
    /// Simulated minutes the responder has after the page.
    pub budget_minutes: f64,
    /// When the page may arrive.
    #[serde(default)]
    pub page: PageSpec,
}

/// A topology by built-in name or inline.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum TopologyRef {
    /// Name of a built-in topology (`shop`).
    Builtin(String),
    /// A topology written out.
    Inline(Box<TopologySpec>),
}

// By hand rather than `#[serde(untagged)]`: an untagged enum buffers the value and, when no variant fits, reports
// only "data did not match any variant" at the start of the block, so a typo deep in an inline topology lost its
// message and its line. Telling the variants apart by the value's shape (text or mapping) lets the topology's
// own error, with its position, come through.
impl<'de> Deserialize<'de> for TopologyRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Shape;
        impl<'de> serde::de::Visitor<'de> for Shape {
            type Value = TopologyRef;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("the name of a built-in topology or a topology written out")
            }

            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<TopologyRef, E> {
                Ok(TopologyRef::Builtin(name.to_string()))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<TopologyRef, A::Error> {
                TopologySpec::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(|spec| TopologyRef::Inline(Box::new(spec)))
            }
        }
        deserializer.deserialize_any(Shape)
    }
}

/// A seeded parameter: exactly one of `choice`, `range` or `service`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Parameter {
    /// Pick one of these values uniformly.
    #[serde(default)]
    pub choice: Option<Vec<Value>>,
    /// Pick uniformly from `[low, high]` at difficulty 0.
    #[serde(default)]
    pub range: Option<[f64; 2]>,
    /// The range at difficulty 1; in between, the bounds are interpolated.
    #[serde(default)]
    pub hard: Option<[f64; 2]>,
    /// Round the drawn number to an integer.
    #[serde(default)]
    pub integer: bool,
    /// Pick a service of the topology that fits the filter.
    #[serde(default)]
    pub service: Option<ServiceFilter>,
}

/// Which services a service parameter may pick.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceFilter {
    /// Allowed kinds (default: any).
    #[serde(default)]
    pub kinds: Option<Vec<firedrill_world::spec::ServiceKind>>,
    /// Only services with this feature.
    #[serde(default)]
    pub has: Vec<Feature>,
    /// Services never picked.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// At higher difficulty, favour services further from the entry point (deeper cascades).
    #[serde(default)]
    pub prefer_deep: bool,
}

/// A feature a service may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    /// A connection pool to some dependency.
    Pool,
    /// A volume.
    Disk,
    /// A served certificate.
    Tls,
    /// A rate limiter.
    RateLimit,
    /// Outgoing calls.
    Calls,
    /// Callers (something depends on it).
    Callers,
    /// Database queries (calls to a database).
    DatabaseClient,
}

/// What difficulty changes. Each pair is the value at difficulty 0 and at difficulty 1; in between it is
/// interpolated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DifficultySpec {
    /// Red-herring deploys of healthy services around the onset.
    pub distractor_deploys: [f64; 2],
    /// Harmless configuration changes on healthy services.
    pub distractor_configs: [f64; 2],
    /// Background warning noise in logs, as a multiple of the normal rate.
    pub log_noise: [f64; 2],
    /// Concurrent benign events (routine restarts, small traffic bumps).
    pub benign_events: [f64; 2],
}

impl Default for DifficultySpec {
    fn default() -> Self {
        DifficultySpec {
            distractor_deploys: [1.0, 4.0],
            distractor_configs: [0.0, 3.0],
            log_noise: [1.0, 3.0],
            benign_events: [0.0, 2.0],
        }
    }
}

/// One fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// Id, unique in the scenario.
    pub id: String,
    /// Class, from the closed taxonomy.
    pub class: FaultClass,
    /// The service it acts on.
    pub target: Value,
    /// Minutes after the world began when it starts (omit if a phase injects it).
    #[serde(default)]
    pub onset_minutes: Option<Value>,
    /// Who the change history says did it (for deploys and configuration pushes).
    #[serde(default)]
    pub actor: Option<String>,
    /// What it does.
    pub mechanism: Mechanism,
}

/// A fault mechanism: how a fault changes the dynamics. Symptoms follow from the world's rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Mechanism {
    /// Roll out a new version of the target with this behaviour.
    DeployVersion {
        /// Version name (`${version}`); `next` bumps the running version's minor number.
        version: Value,
        /// How the new version behaves.
        #[serde(default)]
        behaviour: BTreeMap<BehaviourField, Value>,
    },
    /// Push a configuration value.
    SetConfig {
        /// Key.
        key: String,
        /// Value.
        value: Value,
    },
    /// Lower the memory limit to a share of the steady working set (recreates the pods).
    LowerMemoryLimit {
        /// New limit as a share of the working set (below 1 means it cannot fit).
        ratio: Value,
    },
    /// Turn on a feature flag that adds this behaviour.
    FlagOn {
        /// Flag name.
        flag: String,
        /// What it does while on.
        #[serde(default)]
        behaviour: BTreeMap<BehaviourField, Value>,
    },
    /// The served certificate expires at the onset; a renewed one already sits in the secret (restart loads
    /// it) unless `renewed` is false.
    CertificateExpiry {
        /// Whether the secret holds a renewed certificate.
        #[serde(default = "yes")]
        renewed: bool,
    },
    /// Entry traffic grows by a factor (a campaign, a bot).
    TrafficSurge {
        /// Factor.
        factor: Value,
    },
    /// The load arriving at the target grows (a client or partner hammering its API): by `factor`, or to
    /// `over_limit` times the target's rate limit at the onset.
    LoadSurge {
        /// Factor.
        #[serde(default)]
        factor: Option<Value>,
        /// Load as a multiple of the rate limit.
        #[serde(default)]
        over_limit: Option<Value>,
    },
    /// The target's network is detached.
    NetworkPartition {},
    /// The target gets only a share of its CPU.
    CpuStarvation {
        /// Share in (0, 1].
        share: Value,
    },
    /// The target (an external dependency) degrades.
    DependencyOutage {
        /// Error ratio.
        error_ratio: Value,
        /// Latency multiple.
        #[serde(default)]
        latency_factor: Option<Value>,
    },
    /// The target's QoS contract changes on its subscriptions (reader) or publications (writer).
    QosChange {
        /// Which side changes.
        side: QosSide,
        /// New reliability.
        reliability: Reliability,
        /// New durability.
        #[serde(default)]
        durability: Option<Durability>,
    },
}

fn yes() -> bool {
    true
}

/// Side of a publish/subscribe contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum QosSide {
    /// The subscriber.
    Reader,
    /// The publisher.
    Writer,
}

/// A field of [`firedrill_world::spec::Behaviour`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum BehaviourField {
    /// MiB per minute leaked per replica.
    LeakMbPerMin,
    /// Extra working set, MiB.
    ExtraMemoryMb,
    /// Connections leaked per minute per replica.
    ConnLeakPerMin,
    /// CPU cost multiple.
    CpuFactor,
    /// Latency multiple.
    LatencyFactor,
    /// Extra error ratio.
    ErrorRatio,
    /// Row-lock hold per query, ms.
    LockHoldMs,
    /// Publish-rate multiple.
    PublishFactor,
    /// Exits right after start (1 or true).
    CrashOnStart,
}

/// A phase: when its trigger fires, its faults start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PhaseSpec {
    /// Id.
    pub id: String,
    /// When.
    pub trigger: Trigger,
    /// Faults it injects (ids).
    pub faults: Vec<String>,
}

/// A phase trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    /// At a time, minutes after the world began.
    AtMinutes(Value),
    /// Minutes after the page.
    AfterPageMinutes(Value),
    /// After an operation of this kind (optionally on this service) is applied.
    AfterOperation {
        /// Operation name (`deploy`, `restart`, `scale`, `set_config`, `set_limits`, `set_flag`,
        /// `reconnect_network`, `drain_queue`).
        operation: String,
        /// Service it must act on.
        #[serde(default)]
        service: Option<Value>,
    },
    /// When a key signal of a service crosses a threshold.
    When {
        /// Service.
        service: Value,
        /// Signal.
        metric: KeyMetric,
        /// Comparison.
        op: firedrill_telemetry::Comparison,
        /// Threshold.
        value: f64,
    },
}

/// A benign event: something that happens in a healthy system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum BenignEventSpec {
    /// Entry traffic rises by a factor for a while.
    TrafficBurst {
        /// Minutes after the world began.
        at_minutes: Value,
        /// Factor.
        factor: Value,
        /// How long, minutes.
        duration_minutes: Value,
    },
    /// A routine restart of a service.
    RoutineRestart {
        /// Minutes after the world began.
        at_minutes: Value,
        /// Service.
        service: Value,
    },
}

/// The truth an episode is graded against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroundTruthSpec {
    /// Fault ids that are root causes (default: every fault).
    #[serde(default)]
    pub root_causes: Option<Vec<String>>,
    /// When the incident counts as mitigated.
    pub mitigated: MitigatedSpec,
    /// Signals that prove the cause.
    #[serde(default)]
    pub evidence: Vec<EvidenceSpec>,
    /// The intended remediation, in order.
    #[serde(default)]
    pub remediation: Vec<RemediationSpec>,
}

/// The state conditions that count as mitigated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MitigatedSpec {
    /// Every root-cause mechanism must be removed, not masked.
    #[serde(default = "yes")]
    pub faults_cleared: bool,
    /// Service levels that must hold.
    #[serde(default)]
    pub slo: Vec<SloSpec>,
    /// For how long everything must hold, minutes.
    #[serde(default = "five")]
    pub sustain_minutes: f64,
}

fn five() -> f64 {
    5.0
}

/// A service-level condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SloSpec {
    /// Services (default: every service reached by traffic).
    #[serde(default)]
    pub services: Option<Vec<Value>>,
    /// Highest error ratio.
    #[serde(default)]
    pub max_error_ratio: Option<f64>,
    /// Highest p99 latency, ms.
    #[serde(default)]
    pub max_p99_ms: Option<f64>,
}

/// A signal that proves a cause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceSpec {
    /// Kind of observation.
    pub kind: EvidenceKind,
    /// Service it is about.
    pub service: Value,
    /// What to look for: a metric name, a log event, a change type.
    pub signal: String,
}

/// Kind of evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    /// A metric.
    Metric,
    /// A log event.
    Log,
    /// A deploy or change record.
    Change,
    /// A trace.
    Trace,
}

/// One step of the intended remediation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RemediationSpec {
    /// Roll back to the version that ran before the fault.
    Rollback {
        /// Service.
        service: Value,
    },
    /// Restart, optionally with a memory limit this many times the original.
    Restart {
        /// Service.
        service: Value,
        /// Memory limit as a multiple of the service's original limit.
        #[serde(default)]
        memory_factor: Option<Value>,
    },
    /// Scale to this many times the current replicas.
    Scale {
        /// Service.
        service: Value,
        /// Factor.
        factor: Value,
    },
    /// Set a key; `restore: true` puts back the value from before the fault.
    SetConfig {
        /// Service.
        service: Value,
        /// Key.
        key: String,
        /// Value (omit with `restore`).
        #[serde(default)]
        value: Option<Value>,
        /// Put back the original value.
        #[serde(default)]
        restore: bool,
    },
    /// Turn a flag off.
    FlagOff {
        /// Service.
        service: Value,
        /// Flag.
        flag: String,
    },
    /// Reattach the network.
    ReconnectNetwork {
        /// Service.
        service: Value,
    },
    /// Purge a backlog.
    DrainQueue {
        /// Service.
        service: Value,
    },
}

/// When the page may arrive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PageSpec {
    /// Telemetry history before the page, at least (minutes).
    pub min_history_minutes: f64,
    /// How long after the last fault onset the page must have arrived (minutes).
    pub max_wait_minutes: f64,
}

impl Default for PageSpec {
    fn default() -> Self {
        PageSpec {
            min_history_minutes: 60.0,
            max_wait_minutes: 60.0,
        }
    }
}
