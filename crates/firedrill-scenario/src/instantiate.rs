//! Turning a scenario, a seed and a difficulty into one concrete incident: parameters drawn, faults resolved to
//! services and times, distractors placed, topology compiled, ground truth fixed.

use std::collections::BTreeMap;
use std::sync::Arc;

use firedrill_alerting::{AlertRuleSpec, AlertingRule, ParsedExprs};
use firedrill_world::config::CLUSTER_RESOLVER;
use firedrill_world::spec::{Behaviour, FlagSpec, Qos, ServiceKind, TopologySpec, VersionSpec};
use firedrill_world::topology::{SpecError, SpecPath};
use firedrill_world::{Actor, FaultClass, Operation, Perturbation, ServiceId, Topology};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use serde::Serialize;

use crate::library;
use crate::model::{
    BehaviourField, BenignEventSpec, EvidenceKind, Feature, Mechanism, Parameter, QosSide,
    RemediationSpec, Scenario, TopologyRef, Trigger, Value,
};

/// A drawn parameter value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Scalar {
    /// A number.
    Num(f64),
    /// Text.
    Text(String),
    /// A boolean.
    Bool(bool),
}

impl std::fmt::Display for Scalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scalar::Num(n) if n.fract() == 0.0 && n.abs() < 1e15 => write!(f, "{}", *n as i64),
            Scalar::Num(n) => write!(f, "{n}"),
            Scalar::Text(t) => f.write_str(t),
            Scalar::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// What a fault does when it starts.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultAction {
    /// An operation, attributed to an actor (a deploy, a config push).
    Operation(Operation, Actor),
    /// A change to the environment.
    Perturbation(Perturbation),
}

/// How to tell from the state that a fault's mechanism is gone.
#[derive(Debug, Clone, PartialEq)]
pub enum ClearCondition {
    /// No replica runs this version and the deployment does not target it.
    VersionGone(u8),
    /// The key no longer has this value.
    ConfigNot {
        /// Key.
        key: String,
        /// Bad value.
        value: String,
    },
    /// The memory limit fits the working set again.
    MemoryFits,
    /// The flag is off.
    FlagOff(u8),
    /// Every ready replica serves an unexpired certificate.
    CertificateValid,
    /// The rate limiter no longer rejects traffic.
    NotRateLimited,
    /// The network is attached.
    NetworkAttached,
    /// The service is no longer CPU-saturated.
    CpuHeadroom,
    /// The dependency is healthy again (only the provider can do that).
    OutageOver,
    /// Every subscription matches a writer.
    QosMatched,
}

/// A fault, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// Id.
    pub id: String,
    /// Class.
    pub class: FaultClass,
    /// Target.
    pub service: ServiceId,
    /// Onset, seconds (None: a phase injects it).
    pub onset_s: Option<f64>,
    /// What it does.
    pub actions: Vec<FaultAction>,
    /// How to tell it is gone.
    pub clear: ClearCondition,
}

/// A phase trigger, resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum PhaseTrigger {
    /// At a time, seconds.
    At(f64),
    /// Seconds after the page.
    AfterPage(f64),
    /// After an operation by name, optionally on a service.
    AfterOperation(String, Option<ServiceId>),
    /// When a key signal crosses a threshold.
    When(
        ServiceId,
        firedrill_telemetry::KeyMetric,
        firedrill_telemetry::Comparison,
        f64,
    ),
}

/// A phase, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    /// Id.
    pub id: String,
    /// Trigger.
    pub trigger: PhaseTrigger,
    /// Indexes into [`Instance::faults`].
    pub faults: Vec<usize>,
}

/// Something scheduled that is not a fault: distractors and benign events.
#[derive(Debug, Clone, PartialEq)]
pub struct Scheduled {
    /// When, seconds.
    pub t_s: f64,
    /// What.
    pub action: FaultAction,
}

/// A root cause.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RootCause {
    /// Fault id.
    pub fault: String,
    /// Service name.
    pub service: String,
    /// Class.
    pub fault_class: FaultClass,
    /// Onset, seconds since the world began (None until a phase injects it).
    pub onset_s: Option<f64>,
}

/// A service-level condition, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    /// Services.
    pub services: Vec<ServiceId>,
    /// Highest error ratio.
    pub max_error_ratio: Option<f64>,
    /// Highest p99, ms.
    pub max_p99_ms: Option<f64>,
}

/// A piece of evidence, resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    /// Kind.
    pub kind: EvidenceKind,
    /// Service name.
    pub service: String,
    /// Signal.
    pub signal: String,
}

/// The ground truth of one instance.
#[derive(Debug, Clone, PartialEq)]
pub struct GroundTruth {
    /// Indexes into [`Instance::faults`] of root causes.
    pub root_causes: Vec<usize>,
    /// Whether root mechanisms must be gone.
    pub faults_cleared: bool,
    /// Service levels.
    pub slo: Vec<Slo>,
    /// Sustain window, seconds.
    pub sustain_s: f64,
    /// Evidence.
    pub evidence: Vec<Evidence>,
    /// The intended remediation, as operations.
    pub remediation: Vec<Operation>,
}

/// One concrete incident, ready to run.
#[derive(Debug, Clone)]
pub struct Instance {
    /// Scenario id.
    pub scenario_id: String,
    /// Scenario title.
    pub title: String,
    /// Seed.
    pub seed: u64,
    /// Difficulty in [0, 1].
    pub difficulty: f64,
    /// Drawn parameters.
    pub params: BTreeMap<String, Scalar>,
    /// The compiled topology.
    pub topology: Arc<Topology>,
    /// Alert rules (the topology's standard ones, then the scenario's).
    pub alerts: Vec<AlertingRule>,
    /// Ticks between two evaluations of the alert rules.
    pub alert_interval_ticks: u64,
    /// Faults.
    pub faults: Vec<Fault>,
    /// Phases.
    pub phases: Vec<Phase>,
    /// Distractors and benign events, by time.
    pub scheduled: Vec<Scheduled>,
    /// Ground truth.
    pub truth: GroundTruth,
    /// Budget after the page, seconds.
    pub budget_s: f64,
    /// Minimum history before the page, seconds.
    pub min_history_s: f64,
    /// Latest page time allowed, seconds.
    pub page_deadline_s: f64,
    /// Log noise multiple.
    pub log_noise: f64,
}

impl Instance {
    /// The root causes with names.
    pub fn root_causes(&self) -> Vec<RootCause> {
        self.truth
            .root_causes
            .iter()
            .map(|&i| {
                let f = &self.faults[i];
                RootCause {
                    fault: f.id.clone(),
                    service: self.topology.service(f.service).name().to_string(),
                    fault_class: f.class,
                    onset_s: f.onset_s,
                }
            })
            .collect()
    }
}

/// Derives an independent generator per purpose from the seed, so adding a parameter or a distractor never
/// changes another's draw.
pub(crate) fn stream(seed: u64, purpose: &str) -> ChaCha8Rng {
    let h = xxhash_rust::xxh3::xxh3_64_with_seed(purpose.as_bytes(), seed);
    ChaCha8Rng::seed_from_u64(h)
}

fn unit(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

fn pick(rng: &mut ChaCha8Rng, n: usize) -> usize {
    ((unit(rng) * n as f64) as usize).min(n.saturating_sub(1))
}

fn lerp(pair: [f64; 2], d: f64) -> f64 {
    pair[0] + (pair[1] - pair[0]) * d
}

/// The most distractor deploys, distractor configuration changes or benign events a difficulty may ask for: far
/// more than an hour before a page holds realistically, and few enough that an instance stays small (each deploy
/// adds a version to a service).
pub const MAX_DIFFICULTY_EVENTS: f64 = 50.0;

/// The largest log noise multiple a difficulty may ask for.
pub const MAX_LOG_NOISE: f64 = 100.0;

/// What is wrong with what difficulty changes: every pair must be finite and in range.
fn difficulty_errors(d: &crate::model::DifficultySpec, p: &SpecPath) -> Vec<SpecError> {
    [
        (
            "distractor_deploys",
            d.distractor_deploys,
            MAX_DIFFICULTY_EVENTS,
        ),
        (
            "distractor_configs",
            d.distractor_configs,
            MAX_DIFFICULTY_EVENTS,
        ),
        ("benign_events", d.benign_events, MAX_DIFFICULTY_EVENTS),
        ("log_noise", d.log_noise, MAX_LOG_NOISE),
    ]
    .into_iter()
    .filter(|(_, pair, max)| !pair.iter().all(|v| (0.0..=*max).contains(v)))
    .map(|(key, _, max)| SpecError::new(p.key(key), format!("both values must be in [0, {max}]")))
    .collect()
}

/// The latest a fault may begin, and the longest the page may take to come, in simulated minutes (a day): the
/// hour before a page is simulated at every start, so a start of a scenario that pages days in would take
/// minutes of real time.
pub const MAX_TIMELINE_MINUTES: f64 = 24.0 * 60.0;

/// What is wrong with when the page may arrive: both bounds must be finite and within a day.
fn page_errors(page: &crate::model::PageSpec, p: &SpecPath) -> Vec<SpecError> {
    [
        ("min_history_minutes", page.min_history_minutes),
        ("max_wait_minutes", page.max_wait_minutes),
    ]
    .into_iter()
    .filter(|(_, v)| !(0.0..=MAX_TIMELINE_MINUTES).contains(v))
    .map(|(key, _)| {
        SpecError::new(
            p.key(key),
            format!("must be in [0, {MAX_TIMELINE_MINUTES}] minutes"),
        )
    })
    .collect()
}

/// Resolves the scenario's topology reference.
pub fn topology_spec(scenario: &Scenario) -> Result<(TopologySpec, Vec<AlertRuleSpec>), SpecError> {
    topology_parts(scenario).map(|(spec, alerts, _)| (spec.clone(), alerts.to_vec()))
}

/// The topology a scenario runs on, its standard alert rules and their evaluation interval, borrowed.
fn topology_parts(
    scenario: &Scenario,
) -> Result<(&TopologySpec, &[AlertRuleSpec], Option<&str>), SpecError> {
    match &scenario.topology {
        TopologyRef::Inline(spec) => Ok((spec, &[], None)),
        TopologyRef::Builtin(name) => match library::builtin_topology(name) {
            Some(Ok(t)) => Ok((&t.topology, &t.alerts, t.evaluation_interval.as_deref())),
            Some(Err(message)) => Err(SpecError::new(SpecPath::root().key("topology"), message)),
            None => Err(SpecError::new(
                SpecPath::root().key("topology"),
                format!(
                    "unknown built-in topology {name:?} (known: {})",
                    library::TOPOLOGY_NAMES.join(", ")
                ),
            )),
        },
    }
}

struct Ctx<'a> {
    params: &'a BTreeMap<String, Scalar>,
}

impl Ctx<'_> {
    fn scalar(&self, v: &Value, path: &SpecPath) -> Result<Scalar, SpecError> {
        match v {
            Value::Number(n) => Ok(Scalar::Num(*n)),
            Value::Bool(b) => Ok(Scalar::Bool(*b)),
            Value::Text(t) => {
                if let Some(name) = t.strip_prefix('$').filter(|n| !n.starts_with('{')) {
                    return self.params.get(name).cloned().ok_or_else(|| {
                        SpecError::new(path.clone(), format!("unknown parameter ${name}"))
                    });
                }
                let mut out = String::new();
                let mut rest = t.as_str();
                while let Some(start) = rest.find("${") {
                    out.push_str(&rest[..start]);
                    let Some(end) = rest[start..].find('}') else {
                        return Err(SpecError::new(path.clone(), "unclosed ${ in text"));
                    };
                    let name = &rest[start + 2..start + end];
                    let v = self.params.get(name).ok_or_else(|| {
                        SpecError::new(path.clone(), format!("unknown parameter ${{{name}}}"))
                    })?;
                    out.push_str(&v.to_string());
                    rest = &rest[start + end + 1..];
                }
                out.push_str(rest);
                Ok(Scalar::Text(out))
            }
        }
    }

    fn num(&self, v: &Value, path: &SpecPath) -> Result<f64, SpecError> {
        match self.scalar(v, path)? {
            Scalar::Num(n) if n.is_finite() => Ok(n),
            Scalar::Text(t) => t
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .ok_or_else(|| {
                    SpecError::new(path.clone(), format!("expected a number, got {t:?}"))
                }),
            other => Err(SpecError::new(
                path.clone(),
                format!("expected a number, got {other}"),
            )),
        }
    }

    fn text(&self, v: &Value, path: &SpecPath) -> Result<String, SpecError> {
        Ok(self.scalar(v, path)?.to_string())
    }

    fn service(&self, v: &Value, spec: &TopologySpec, path: &SpecPath) -> Result<usize, SpecError> {
        let name = self.text(v, path)?;
        spec.services
            .iter()
            .position(|s| s.name == name)
            .ok_or_else(|| {
                let known: Vec<&str> = spec.services.iter().map(|s| s.name.as_str()).collect();
                SpecError::new(
                    path.clone(),
                    format!("unknown service {name:?} (known: {})", known.join(", ")),
                )
            })
    }

    fn behaviour(
        &self,
        fields: &BTreeMap<BehaviourField, Value>,
        path: &SpecPath,
    ) -> Result<Behaviour, SpecError> {
        let mut b = Behaviour::default();
        for (field, v) in fields {
            let p = path.key(&format!("{field:?}").to_lowercase());
            match field {
                BehaviourField::CrashOnStart => {
                    b.crash_on_start = match self.scalar(v, &p)? {
                        Scalar::Bool(x) => x,
                        Scalar::Num(n) => n != 0.0,
                        Scalar::Text(t) => t == "true",
                    }
                }
                _ => {
                    let n = self.num(v, &p)?;
                    match field {
                        BehaviourField::LeakMbPerMin => b.leak_mb_per_min = n,
                        BehaviourField::ExtraMemoryMb => b.extra_memory_mb = n,
                        BehaviourField::ConnLeakPerMin => b.conn_leak_per_min = n,
                        BehaviourField::CpuFactor => b.cpu_factor = n,
                        BehaviourField::LatencyFactor => b.latency_factor = n,
                        BehaviourField::ErrorRatio => b.error_ratio = n,
                        BehaviourField::LockHoldMs => b.lock_hold_ms = n,
                        BehaviourField::PublishFactor => b.publish_factor = n,
                        BehaviourField::CrashOnStart => {}
                    }
                }
            }
        }
        Ok(b)
    }
}

fn has_feature(spec: &TopologySpec, i: usize, f: Feature) -> bool {
    let s = &spec.services[i];
    let is_db = |name: &str| {
        spec.services
            .iter()
            .any(|x| x.name == name && x.kind == ServiceKind::Database)
    };
    match f {
        Feature::Pool => s.calls.iter().any(|c| c.pool.is_some()),
        Feature::Disk => s.disk.is_some(),
        Feature::Tls => s.tls.is_some(),
        Feature::RateLimit => s.rate_limit.is_some(),
        Feature::Calls => !s.calls.is_empty(),
        Feature::Callers => spec
            .services
            .iter()
            .any(|x| x.calls.iter().any(|c| c.to == s.name)),
        Feature::DatabaseClient => s.calls.iter().any(|c| is_db(&c.to)),
    }
}

/// The services a service parameter may pick, in declaration order.
pub fn candidates(spec: &TopologySpec, filter: &crate::model::ServiceFilter) -> Vec<usize> {
    (0..spec.services.len())
        .filter(|&i| {
            let s = &spec.services[i];
            filter.kinds.as_ref().is_none_or(|k| k.contains(&s.kind))
                && filter.has.iter().all(|f| has_feature(spec, i, *f))
                && !filter.exclude.contains(&s.name)
        })
        .collect()
}

fn draw_param(
    name: &str,
    p: &Parameter,
    spec: &TopologySpec,
    depth: &[u16],
    seed: u64,
    difficulty: f64,
    path: &SpecPath,
) -> Result<Scalar, SpecError> {
    let mut rng = stream(seed, &format!("param/{name}"));
    let given = p.choice.is_some() as u8 + p.range.is_some() as u8 + p.service.is_some() as u8;
    if given != 1 {
        return Err(SpecError::new(
            path.clone(),
            "a parameter needs exactly one of choice, range or service",
        ));
    }
    if let Some(choices) = &p.choice {
        if choices.is_empty() {
            return Err(SpecError::new(
                path.key("choice"),
                "choice needs at least one value",
            ));
        }
        let v = &choices[pick(&mut rng, choices.len())];
        return Ok(match v {
            Value::Number(n) => Scalar::Num(*n),
            Value::Bool(b) => Scalar::Bool(*b),
            Value::Text(t) => Scalar::Text(t.clone()),
        });
    }
    if let Some(range) = p.range {
        let hard = p.hard.unwrap_or(range);
        for (key, r) in [("range", range), ("hard", hard)] {
            if !(r[0].is_finite() && r[1].is_finite() && r[0] <= r[1]) {
                return Err(SpecError::new(
                    path.key(key),
                    "a range is [low, high] with low <= high",
                ));
            }
        }
        let lo = lerp([range[0], hard[0]], difficulty);
        let hi = lerp([range[1], hard[1]], difficulty);
        let x = lo + (hi - lo) * unit(&mut rng);
        return Ok(Scalar::Num(if p.integer { x.round() } else { x }));
    }
    let filter = p.service.as_ref().expect("checked above");
    let cands = candidates(spec, filter);
    if cands.is_empty() {
        return Err(SpecError::new(
            path.key("service"),
            "no service of the topology fits this filter",
        ));
    }
    let weights: Vec<f64> = cands
        .iter()
        .map(|&i| {
            let d = depth.get(i).copied().unwrap_or(0).min(8) as f64;
            if filter.prefer_deep {
                1.0 + 2.0 * difficulty * d
            } else {
                1.0
            }
        })
        .collect();
    let total: f64 = weights.iter().sum();
    let mut x = unit(&mut rng) * total;
    for (k, w) in weights.iter().enumerate() {
        if x < *w {
            return Ok(Scalar::Text(spec.services[cands[k]].name.clone()));
        }
        x -= w;
    }
    Ok(Scalar::Text(
        spec.services[*cands.last().expect("non-empty")]
            .name
            .clone(),
    ))
}

/// The next version name after `current` that is not taken: `v2.3.1` becomes `v2.4.0`.
pub fn bump_version(current: &str, taken: &[String], step: u32) -> String {
    let core = current.trim_start_matches('v');
    let parts: Vec<u32> = core.split('.').filter_map(|p| p.parse().ok()).collect();
    let mut candidate = if parts.len() == 3 {
        format!("v{}.{}.{}", parts[0], parts[1] + step, 0)
    } else {
        format!("{current}-{step}")
    };
    let mut n = step;
    while taken.contains(&candidate) {
        n += 1;
        candidate = if parts.len() == 3 {
            format!("v{}.{}.{}", parts[0], parts[1] + n, 0)
        } else {
            format!("{current}-{n}")
        };
    }
    candidate
}

/// Builds one instance. Every error carries the path of the scenario field responsible.
pub fn instantiate(
    scenario: &Scenario,
    seed: u64,
    difficulty: f64,
) -> Result<Instance, Vec<SpecError>> {
    instantiate_with(scenario, seed, difficulty, &ParsedExprs::new())
}

/// The text of every alert expression an instance of `scenario` compiles: its topology's rules, then its own
/// (an unknown topology has none).
pub fn alert_exprs(scenario: &Scenario) -> Vec<&str> {
    let builtin = topology_parts(scenario).map_or(&[][..], |(_, alerts, _)| alerts);
    builtin
        .iter()
        .chain(&scenario.alerts)
        .map(|a| a.expr.as_str())
        .collect()
}

/// [`instantiate`], with alert expressions already parsed where `parsed` has them (see [`alert_exprs`]):
/// the same instance, without parsing the same rules at every start.
pub fn instantiate_with(
    scenario: &Scenario,
    seed: u64,
    difficulty: f64,
    parsed: &ParsedExprs,
) -> Result<Instance, Vec<SpecError>> {
    let difficulty = if difficulty.is_finite() {
        difficulty.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let root = SpecPath::root();
    // Both checked before anything is built on them (a count here sizes what instantiation allocates).
    let mut errors = difficulty_errors(&scenario.difficulty, &root.key("difficulty"));
    errors.extend(page_errors(&scenario.page, &root.key("page")));
    if !errors.is_empty() {
        return Err(errors);
    }
    let (spec, builtin_alerts, topology_interval) =
        topology_parts(scenario).map_err(|e| vec![e])?;
    let mut spec = spec.clone();
    let topo_path = root.key("topology");

    // Depths for prefer_deep come from the untouched topology (a built-in one's are computed once).
    let builtin_depths = match &scenario.topology {
        TopologyRef::Builtin(name) => library::builtin_depths(name),
        TopologyRef::Inline(_) => None,
    };
    let depth: Vec<u16> = match builtin_depths {
        Some(depths) => depths.to_vec(),
        None => match Topology::compile(&spec, &topo_path) {
            Ok(t) => t.services.iter().map(|s| s.depth).collect(),
            Err(errors) => return Err(errors),
        },
    };

    let mut errors = Vec::new();
    let mut params = BTreeMap::new();
    for (name, p) in &scenario.parameters {
        match draw_param(
            name,
            p,
            &spec,
            &depth,
            seed,
            difficulty,
            &root.key("parameters").key(name),
        ) {
            Ok(v) => {
                params.insert(name.clone(), v);
            }
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let ctx = Ctx { params: &params };

    // Faults: resolve targets and change the spec where a mechanism needs it (a new version, a new flag).
    struct Pending {
        id: String,
        class: FaultClass,
        target: usize,
        onset_s: Option<f64>,
        actor: Actor,
        mechanism: Mechanism,
        new_version: Option<String>,
        flag: Option<String>,
    }
    let mut pending = Vec::new();
    let mut targets = Vec::new();
    let mut first_onset = f64::INFINITY;
    for (i, f) in scenario.faults.iter().enumerate() {
        let p = root.key("faults").index(i);
        let target = match ctx.service(&f.target, &spec, &p.key("target")) {
            Ok(t) => t,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        targets.push(target);
        let onset_s = match &f.onset_minutes {
            Some(v) => match ctx.num(v, &p.key("onset_minutes")) {
                Ok(m) if (0.0..=MAX_TIMELINE_MINUTES).contains(&m) => Some(m * 60.0),
                Ok(_) => {
                    errors.push(SpecError::new(
                        p.key("onset_minutes"),
                        format!("onset must be in [0, {MAX_TIMELINE_MINUTES}] minutes"),
                    ));
                    None
                }
                Err(e) => {
                    errors.push(e);
                    None
                }
            },
            None => None,
        };
        if let Some(o) = onset_s {
            first_onset = first_onset.min(o);
        }
        // The actor may be a `$parameter` (drawn per seed), like any other text field.
        let actor = Actor(match &f.actor {
            Some(a) => match ctx.text(&Value::Text(a.clone()), &p.key("actor")) {
                Ok(text) => text,
                Err(e) => {
                    errors.push(e);
                    a.clone()
                }
            },
            None => "deploy-pipeline".to_string(),
        });
        let mut new_version = None;
        let mut flag = None;
        let svc = &mut spec.services[target];
        match &f.mechanism {
            Mechanism::DeployVersion { version, behaviour } => {
                let mp = p.key("mechanism").key("deploy_version");
                let name = match ctx.text(version, &mp.key("version")) {
                    Ok(n) if n == "next" => {
                        let taken: Vec<String> =
                            svc.versions.iter().map(|v| v.name.clone()).collect();
                        bump_version(&svc.version, &taken, 1)
                    }
                    Ok(n) => n,
                    Err(e) => {
                        errors.push(e);
                        continue;
                    }
                };
                if svc.versions.iter().any(|v| v.name == name) {
                    errors.push(SpecError::new(
                        mp.key("version"),
                        format!("{} already has a version {name}", svc.name),
                    ));
                    continue;
                }
                match ctx.behaviour(behaviour, &mp.key("behaviour")) {
                    Ok(b) => svc.versions.push(VersionSpec {
                        name: name.clone(),
                        behaviour: b,
                    }),
                    Err(e) => errors.push(e),
                }
                new_version = Some(name);
            }
            Mechanism::FlagOn {
                flag: name,
                behaviour,
            } => {
                let mp = p.key("mechanism").key("flag_on");
                match ctx.behaviour(behaviour, &mp.key("behaviour")) {
                    Ok(b) => {
                        if svc.flags.iter().any(|x| x.name == *name) {
                            errors.push(SpecError::new(
                                mp.key("flag"),
                                format!("{} already has a flag {name}", svc.name),
                            ));
                        } else {
                            svc.flags.push(FlagSpec {
                                name: name.clone(),
                                enabled: false,
                                when_on: b,
                            });
                        }
                    }
                    Err(e) => errors.push(e),
                }
                flag = Some(name.clone());
            }
            Mechanism::CertificateExpiry { .. } if svc.tls.is_none() => {
                errors.push(SpecError::new(
                    p.key("target"),
                    format!("{} serves no certificate", svc.name),
                ));
            }
            _ => {}
        }
        pending.push(Pending {
            id: f.id.clone(),
            class: f.class,
            target,
            onset_s,
            actor,
            mechanism: f.mechanism.clone(),
            new_version,
            flag,
        });
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if !first_onset.is_finite() {
        first_onset = scenario.page.min_history_minutes * 60.0;
    }

    // Distractors and benign events: only on services no fault touches.
    let mut scheduled_ops: Vec<(f64, usize, DistractorOp)> = Vec::new();
    let bystanders: Vec<usize> = (0..spec.services.len())
        .filter(|i| !targets.contains(i))
        .filter(|&i| {
            matches!(
                spec.services[i].kind,
                ServiceKind::Service
                    | ServiceKind::Gateway
                    | ServiceKind::Edge
                    | ServiceKind::Worker
            )
        })
        .collect();
    let window = (first_onset - 100.0 * 60.0).max(5.0 * 60.0)..(first_onset + 3.0 * 60.0);
    let mut rng = stream(seed, "distractors");
    if !bystanders.is_empty() {
        let n_deploys = lerp(scenario.difficulty.distractor_deploys, difficulty)
            .round()
            .max(0.0) as usize;
        for _ in 0..n_deploys {
            let s = bystanders[pick(&mut rng, bystanders.len())];
            let t = window.start + unit(&mut rng) * (window.end - window.start);
            let svc = &mut spec.services[s];
            let taken: Vec<String> = svc.versions.iter().map(|v| v.name.clone()).collect();
            let name = bump_version(&svc.version, &taken, 1);
            svc.versions.push(VersionSpec {
                name: name.clone(),
                behaviour: Behaviour::default(),
            });
            scheduled_ops.push((t, s, DistractorOp::Deploy(name)));
        }
        let n_configs = lerp(scenario.difficulty.distractor_configs, difficulty)
            .round()
            .max(0.0) as usize;
        const INERT: [(&str, &[&str]); 5] = [
            ("feature.recommendations.limit", &["10", "12", "20", "24"]),
            ("cache.ttl_seconds", &["60", "120", "300"]),
            ("http.server.keepalive_seconds", &["30", "60", "75"]),
            ("metrics.histogram.buckets", &["default", "fine"]),
            ("ui.banner.enabled", &["true", "false"]),
        ];
        for _ in 0..n_configs {
            let s = bystanders[pick(&mut rng, bystanders.len())];
            let t = window.start + unit(&mut rng) * (window.end - window.start);
            let (key, values) = INERT[pick(&mut rng, INERT.len())];
            let value = values[pick(&mut rng, values.len())];
            scheduled_ops.push((
                t,
                s,
                DistractorOp::Config(key.to_string(), value.to_string()),
            ));
        }
        let n_benign = lerp(scenario.difficulty.benign_events, difficulty)
            .round()
            .max(0.0) as usize;
        for _ in 0..n_benign {
            // Small traffic swings: visible in the metrics, harmless, and never enough to page by themselves.
            let t = window.start + unit(&mut rng) * (window.end - window.start);
            let factor = 1.06 + 0.1 * unit(&mut rng);
            let minutes = 5.0 + 10.0 * unit(&mut rng);
            scheduled_ops.push((t, 0, DistractorOp::Traffic(factor)));
            scheduled_ops.push((t + minutes * 60.0, 0, DistractorOp::Traffic(1.0 / factor)));
        }
    }
    for (i, e) in scenario.events.iter().enumerate() {
        let p = root.key("events").index(i);
        match e {
            BenignEventSpec::TrafficBurst {
                at_minutes,
                factor,
                duration_minutes,
            } => {
                let p = p.key("traffic_burst");
                let at = ctx.num(at_minutes, &p.key("at_minutes"));
                let f = ctx.num(factor, &p.key("factor"));
                let d = ctx.num(duration_minutes, &p.key("duration_minutes"));
                match (at, f, d) {
                    (Ok(at), Ok(f), Ok(d)) if f > 0.0 && d > 0.0 => {
                        scheduled_ops.push((at * 60.0, 0, DistractorOp::Traffic(f)));
                        scheduled_ops.push(((at + d) * 60.0, 0, DistractorOp::Traffic(1.0 / f)));
                    }
                    (Ok(_), Ok(_), Ok(_)) => {
                        errors.push(SpecError::new(p, "factor and duration must be > 0"))
                    }
                    (a, b, c) => errors.extend([a.err(), b.err(), c.err()].into_iter().flatten()),
                }
            }
            BenignEventSpec::RoutineRestart {
                at_minutes,
                service,
            } => {
                let p = p.key("routine_restart");
                match (
                    ctx.num(at_minutes, &p.key("at_minutes")),
                    ctx.service(service, &spec, &p.key("service")),
                ) {
                    (Ok(at), Ok(s)) => scheduled_ops.push((at * 60.0, s, DistractorOp::Restart)),
                    (a, b) => errors.extend([a.err(), b.err()].into_iter().flatten()),
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    // Compile the topology with every version and flag in place.
    let topology = Arc::new(Topology::compile(&spec, &topo_path)?);
    let id_of = |i: usize| ServiceId(i as u16);

    // Alerts: the topology's standard rules, then the scenario's own.
    let mut alerts = Vec::new();
    for (i, a) in builtin_alerts.iter().enumerate() {
        match AlertingRule::compile_with(a, &topology, &topo_path.key("alerts").index(i), parsed) {
            Ok(r) => alerts.push(r),
            Err(e) => errors.extend(e),
        }
    }
    for (i, a) in scenario.alerts.iter().enumerate() {
        match AlertingRule::compile_with(a, &topology, &root.key("alerts").index(i), parsed) {
            Ok(r) => alerts.push(r),
            Err(e) => errors.extend(e),
        }
    }

    let interval = scenario
        .evaluation_interval
        .as_deref()
        .or(topology_interval)
        .unwrap_or("15s");
    let alert_interval_ticks = match firedrill_telemetry::duration::parse_duration_s(interval) {
        Ok(s) if s > 0.0 && (s / topology.tick_s).fract() == 0.0 => (s / topology.tick_s) as u64,
        Ok(_) => {
            errors.push(SpecError::new(
                root.key("evaluation_interval"),
                format!(
                    "the evaluation interval must be a positive multiple of the {} s tick",
                    topology.tick_s
                ),
            ));
            1
        }
        Err(e) => {
            errors.push(SpecError::new(root.key("evaluation_interval"), e));
            1
        }
    };

    // Faults, resolved against the compiled topology.
    let mut faults = Vec::new();
    for (i, pf) in pending.iter().enumerate() {
        let p = root.key("faults").index(i).key("mechanism");
        let service = id_of(pf.target);
        let svc = topology.service(service);
        let s = &spec.services[pf.target];
        let resolved: Result<(Vec<FaultAction>, ClearCondition), SpecError> = (|| {
            Ok(match &pf.mechanism {
                Mechanism::DeployVersion { .. } => {
                    let name = pf.new_version.as_deref().unwrap_or_default();
                    let v = svc.version_index(name).expect("added above") as u8;
                    (
                        vec![FaultAction::Operation(
                            Operation::Deploy {
                                service,
                                version: v,
                            },
                            pf.actor.clone(),
                        )],
                        ClearCondition::VersionGone(v),
                    )
                }
                Mechanism::SetConfig { key, value } => {
                    let value = ctx.text(value, &p.key("set_config").key("value"))?;
                    firedrill_world::config::check_value(key, &value)
                        .map_err(|m| SpecError::new(p.key("set_config").key("value"), m))?;
                    (
                        vec![FaultAction::Operation(
                            Operation::SetConfig {
                                service,
                                key: key.clone(),
                                value: value.clone(),
                            },
                            pf.actor.clone(),
                        )],
                        ClearCondition::ConfigNot {
                            key: key.clone(),
                            value,
                        },
                    )
                }
                Mechanism::LowerMemoryLimit { ratio } => {
                    let r = ctx.num(ratio, &p.key("lower_memory_limit").key("ratio"))?;
                    if !(r > 0.05 && r < 1.0) {
                        return Err(SpecError::new(
                            p.key("lower_memory_limit").key("ratio"),
                            "ratio must be in (0.05, 1)",
                        ));
                    }
                    let mb = ((s.base_memory_mb * r).round() as u32)
                        .max(firedrill_world::ops::MEMORY_RANGE_MB.0);
                    (
                        vec![FaultAction::Operation(
                            Operation::SetLimits {
                                service,
                                memory_mb: Some(mb),
                                cpu_millis: None,
                                disk_gb: None,
                            },
                            pf.actor.clone(),
                        )],
                        ClearCondition::MemoryFits,
                    )
                }
                Mechanism::FlagOn { flag, .. } => {
                    let _ = &pf.flag;
                    let idx = svc.flag_index(flag).expect("added above") as u8;
                    (
                        vec![FaultAction::Operation(
                            Operation::SetFlag {
                                service,
                                flag: idx,
                                enabled: true,
                            },
                            pf.actor.clone(),
                        )],
                        ClearCondition::FlagOff(idx),
                    )
                }
                Mechanism::CertificateExpiry { renewed } => {
                    let onset = pf.onset_s.unwrap_or(0.0);
                    (
                        vec![FaultAction::Perturbation(Perturbation::Certificate {
                            service,
                            expires_at_s: onset,
                            renewed_at_s: renewed.then_some(onset - 2.0 * 86_400.0),
                        })],
                        ClearCondition::CertificateValid,
                    )
                }
                Mechanism::TrafficSurge { factor } => {
                    let f = ctx.num(factor, &p.key("traffic_surge").key("factor"))?;
                    if !(f > 0.0 && f <= 100.0) {
                        return Err(SpecError::new(
                            p.key("traffic_surge").key("factor"),
                            "factor must be in (0, 100]",
                        ));
                    }
                    (
                        vec![FaultAction::Perturbation(Perturbation::Traffic {
                            factor: f,
                        })],
                        ClearCondition::NotRateLimited,
                    )
                }
                Mechanism::LoadSurge { factor, over_limit } => {
                    let lp = p.key("load_surge");
                    let perturbation = match (factor, over_limit) {
                        (Some(f), None) => {
                            let f = ctx.num(f, &lp.key("factor"))?;
                            if !(f > 0.0 && f <= 100.0) {
                                return Err(SpecError::new(
                                    lp.key("factor"),
                                    "factor must be in (0, 100]",
                                ));
                            }
                            Perturbation::Load { service, factor: f }
                        }
                        (None, Some(m)) => {
                            let m = ctx.num(m, &lp.key("over_limit"))?;
                            if !(m > 0.0 && m <= 100.0) {
                                return Err(SpecError::new(
                                    lp.key("over_limit"),
                                    "over_limit must be in (0, 100]",
                                ));
                            }
                            if s.rate_limit.is_none() {
                                return Err(SpecError::new(
                                    lp.key("over_limit"),
                                    format!("{} has no rate limiter", s.name),
                                ));
                            }
                            Perturbation::LoadOverLimit {
                                service,
                                multiple: m,
                            }
                        }
                        _ => {
                            return Err(SpecError::new(
                                lp,
                                "give exactly one of factor or over_limit",
                            ));
                        }
                    };
                    (
                        vec![FaultAction::Perturbation(perturbation)],
                        ClearCondition::NotRateLimited,
                    )
                }
                Mechanism::NetworkPartition {} => (
                    vec![FaultAction::Perturbation(Perturbation::DetachNetwork {
                        service,
                    })],
                    ClearCondition::NetworkAttached,
                ),
                Mechanism::CpuStarvation { share } => {
                    let sh = ctx.num(share, &p.key("cpu_starvation").key("share"))?;
                    if !(sh > 0.0 && sh <= 1.0) {
                        return Err(SpecError::new(
                            p.key("cpu_starvation").key("share"),
                            "share must be in (0, 1]",
                        ));
                    }
                    (
                        vec![FaultAction::Perturbation(Perturbation::CpuShare {
                            service,
                            share: sh,
                        })],
                        ClearCondition::CpuHeadroom,
                    )
                }
                Mechanism::DependencyOutage {
                    error_ratio,
                    latency_factor,
                } => {
                    let e = ctx.num(error_ratio, &p.key("dependency_outage").key("error_ratio"))?;
                    let l = match latency_factor {
                        Some(v) => ctx.num(v, &p.key("dependency_outage").key("latency_factor"))?,
                        None => 1.0,
                    };
                    (
                        vec![FaultAction::Perturbation(Perturbation::Outage {
                            service,
                            error_ratio: e,
                            latency_factor: l,
                        })],
                        ClearCondition::OutageOver,
                    )
                }
                Mechanism::QosChange {
                    side,
                    reliability,
                    durability,
                } => {
                    let qos = Qos {
                        reliability: *reliability,
                        durability: durability
                            .unwrap_or(firedrill_world::spec::Durability::Volatile),
                    };
                    let p = match side {
                        QosSide::Reader => Perturbation::ReaderQos { service, qos },
                        QosSide::Writer => Perturbation::WriterQos { service, qos },
                    };
                    (
                        vec![FaultAction::Perturbation(p)],
                        ClearCondition::QosMatched,
                    )
                }
            })
        })();
        match resolved {
            Ok((actions, clear)) => faults.push(Fault {
                id: pf.id.clone(),
                class: pf.class,
                service,
                onset_s: pf.onset_s,
                actions,
                clear,
            }),
            Err(e) => errors.push(e),
        }
    }

    // Phases.
    let mut phases = Vec::new();
    let mut in_phase = vec![false; faults.len()];
    for (i, ph) in scenario.phases.iter().enumerate() {
        let p = root.key("phases").index(i);
        let trigger = match &ph.trigger {
            Trigger::AtMinutes(v) => ctx
                .num(v, &p.key("trigger").key("at_minutes"))
                .map(|m| PhaseTrigger::At(m * 60.0)),
            Trigger::AfterPageMinutes(v) => ctx
                .num(v, &p.key("trigger").key("after_page_minutes"))
                .map(|m| PhaseTrigger::AfterPage(m * 60.0)),
            Trigger::AfterOperation { operation, service } => {
                const OPS: [&str; 8] = [
                    "restart",
                    "scale",
                    "deploy",
                    "set_config",
                    "set_limits",
                    "set_flag",
                    "reconnect_network",
                    "drain_queue",
                ];
                if !OPS.contains(&operation.as_str()) {
                    Err(SpecError::new(
                        p.key("trigger").key("after_operation").key("operation"),
                        format!(
                            "unknown operation {operation:?} (known: {})",
                            OPS.join(", ")
                        ),
                    ))
                } else {
                    match service {
                        Some(v) => ctx
                            .service(
                                v,
                                &spec,
                                &p.key("trigger").key("after_operation").key("service"),
                            )
                            .map(|s| {
                                PhaseTrigger::AfterOperation(operation.clone(), Some(id_of(s)))
                            }),
                        None => Ok(PhaseTrigger::AfterOperation(operation.clone(), None)),
                    }
                }
            }
            Trigger::When {
                service,
                metric,
                op,
                value,
            } => ctx
                .service(service, &spec, &p.key("trigger").key("when").key("service"))
                .map(|s| PhaseTrigger::When(id_of(s), *metric, *op, *value)),
        };
        let mut idxs = Vec::new();
        for (j, fid) in ph.faults.iter().enumerate() {
            match scenario.faults.iter().position(|f| f.id == *fid) {
                Some(k) => {
                    if scenario.faults[k].onset_minutes.is_some() {
                        errors.push(SpecError::new(
                            p.key("faults").index(j),
                            format!("fault {fid:?} has its own onset_minutes; a phase cannot inject it too"),
                        ));
                    }
                    if k < in_phase.len() {
                        in_phase[k] = true;
                    }
                    idxs.push(k);
                }
                None => errors.push(SpecError::new(
                    p.key("faults").index(j),
                    format!("unknown fault {fid:?}"),
                )),
            }
        }
        match trigger {
            Ok(trigger) => phases.push(Phase {
                id: ph.id.clone(),
                trigger,
                faults: idxs,
            }),
            Err(e) => errors.push(e),
        }
    }
    for (k, f) in scenario.faults.iter().enumerate() {
        if f.onset_minutes.is_none() && !in_phase.get(k).copied().unwrap_or(true) {
            errors.push(SpecError::new(
                root.key("faults").index(k),
                format!(
                    "fault {:?} has no onset_minutes and no phase injects it",
                    f.id
                ),
            ));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for (k, f) in scenario.faults.iter().enumerate() {
        if !seen.insert(f.id.as_str()) {
            errors.push(SpecError::new(
                root.key("faults").index(k).key("id"),
                format!("duplicate fault id {:?}", f.id),
            ));
        }
    }

    // Ground truth.
    let gt = &scenario.ground_truth;
    let gp = root.key("ground_truth");
    let root_causes: Vec<usize> = match &gt.root_causes {
        None => (0..faults.len()).collect(),
        Some(ids) => ids
            .iter()
            .enumerate()
            .filter_map(
                |(j, id)| match scenario.faults.iter().position(|f| f.id == *id) {
                    Some(k) => Some(k),
                    None => {
                        errors.push(SpecError::new(
                            gp.key("root_causes").index(j),
                            format!("unknown fault {id:?}"),
                        ));
                        None
                    }
                },
            )
            .collect(),
    };
    let reached: Vec<ServiceId> = (0..topology.len())
        .map(id_of)
        .filter(|id| topology.service(*id).depth != u16::MAX)
        .collect();
    let mut slo = Vec::new();
    for (j, s) in gt.mitigated.slo.iter().enumerate() {
        let sp = gp.key("mitigated").key("slo").index(j);
        let services = match &s.services {
            None => reached.clone(),
            Some(list) => list
                .iter()
                .enumerate()
                .filter_map(
                    |(k, v)| match ctx.service(v, &spec, &sp.key("services").index(k)) {
                        Ok(i) => Some(id_of(i)),
                        Err(e) => {
                            errors.push(e);
                            None
                        }
                    },
                )
                .collect(),
        };
        slo.push(Slo {
            services,
            max_error_ratio: s.max_error_ratio,
            max_p99_ms: s.max_p99_ms,
        });
    }
    let mut evidence = Vec::new();
    for (j, e) in gt.evidence.iter().enumerate() {
        match ctx.service(
            &e.service,
            &spec,
            &gp.key("evidence").index(j).key("service"),
        ) {
            Ok(i) => evidence.push(Evidence {
                kind: e.kind,
                service: spec.services[i].name.clone(),
                signal: e.signal.clone(),
            }),
            Err(err) => errors.push(err),
        }
    }
    let mut remediation = Vec::new();
    for (j, r) in gt.remediation.iter().enumerate() {
        match remedy(r, &ctx, &spec, &topology, &gp.key("remediation").index(j)) {
            Ok(op) => remediation.push(op),
            Err(e) => errors.push(e),
        }
    }
    if !(scenario.budget_minutes > 0.0 && scenario.budget_minutes <= 24.0 * 60.0) {
        errors.push(SpecError::new(
            root.key("budget_minutes"),
            "budget_minutes must be in (0, 1440]",
        ));
    }
    if !(gt.mitigated.sustain_minutes >= 0.0
        && gt.mitigated.sustain_minutes < scenario.budget_minutes.max(0.0))
    {
        errors.push(SpecError::new(
            gp.key("mitigated").key("sustain_minutes"),
            "sustain_minutes must be >= 0 and shorter than the budget",
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let mut scheduled: Vec<Scheduled> = scheduled_ops
        .into_iter()
        .map(|(t, s, op)| {
            let service = id_of(s);
            let action = match op {
                DistractorOp::Deploy(name) => {
                    let v = topology.service(service).version_index(&name).unwrap_or(0) as u8;
                    FaultAction::Operation(
                        Operation::Deploy {
                            service,
                            version: v,
                        },
                        Actor("deploy-pipeline".into()),
                    )
                }
                DistractorOp::Config(key, value) => FaultAction::Operation(
                    Operation::SetConfig {
                        service,
                        key,
                        value,
                    },
                    Actor("config-sync".into()),
                ),
                DistractorOp::Restart => FaultAction::Operation(
                    Operation::Restart {
                        service,
                        memory_mb: None,
                        cpu_millis: None,
                    },
                    Actor("node-maintenance".into()),
                ),
                DistractorOp::Traffic(f) => {
                    FaultAction::Perturbation(Perturbation::Traffic { factor: f })
                }
            };
            Scheduled { t_s: t, action }
        })
        .collect();
    scheduled.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));

    let last_onset = faults
        .iter()
        .filter_map(|f| f.onset_s)
        .fold(first_onset, f64::max);
    Ok(Instance {
        scenario_id: scenario.id.clone(),
        title: scenario.title.clone(),
        seed,
        difficulty,
        params,
        topology,
        alerts,
        alert_interval_ticks,
        faults,
        phases,
        scheduled,
        truth: GroundTruth {
            root_causes,
            faults_cleared: gt.mitigated.faults_cleared,
            slo,
            sustain_s: gt.mitigated.sustain_minutes * 60.0,
            evidence,
            remediation,
        },
        budget_s: scenario.budget_minutes * 60.0,
        min_history_s: scenario.page.min_history_minutes * 60.0,
        page_deadline_s: last_onset.max(scenario.page.min_history_minutes * 60.0)
            + scenario.page.max_wait_minutes * 60.0,
        log_noise: lerp(scenario.difficulty.log_noise, difficulty),
    })
}

enum DistractorOp {
    Deploy(String),
    Config(String, String),
    Restart,
    Traffic(f64),
}

fn remedy(
    r: &RemediationSpec,
    ctx: &Ctx<'_>,
    spec: &TopologySpec,
    topology: &Topology,
    p: &SpecPath,
) -> Result<Operation, SpecError> {
    let id = |i: usize| ServiceId(i as u16);
    Ok(match r {
        RemediationSpec::Rollback { service } => {
            let i = ctx.service(service, spec, &p.key("rollback").key("service"))?;
            let original = &spec.services[i].version;
            let v = topology.service(id(i)).version_index(original).unwrap_or(0) as u8;
            Operation::Deploy {
                service: id(i),
                version: v,
            }
        }
        RemediationSpec::Restart {
            service,
            memory_factor,
        } => {
            let i = ctx.service(service, spec, &p.key("restart").key("service"))?;
            let memory_mb = match memory_factor {
                Some(f) => {
                    let f = ctx.num(f, &p.key("restart").key("memory_factor"))?;
                    Some((spec.services[i].memory_mb as f64 * f).round() as u32)
                }
                None => None,
            };
            Operation::Restart {
                service: id(i),
                memory_mb,
                cpu_millis: None,
            }
        }
        RemediationSpec::Scale { service, factor } => {
            let i = ctx.service(service, spec, &p.key("scale").key("service"))?;
            let f = ctx.num(factor, &p.key("scale").key("factor"))?;
            let replicas = ((spec.services[i].replicas as f64 * f).ceil() as u32)
                .min(firedrill_world::topology::MAX_REPLICAS as u32);
            Operation::Scale {
                service: id(i),
                replicas,
            }
        }
        RemediationSpec::SetConfig {
            service,
            key,
            value,
            restore,
        } => {
            let i = ctx.service(service, spec, &p.key("set_config").key("service"))?;
            let value = match (value, restore) {
                (Some(v), false) => ctx.text(v, &p.key("set_config").key("value"))?,
                (None, true) => spec.services[i]
                    .config
                    .get(key)
                    .cloned()
                    .unwrap_or_else(|| default_config(key)),
                _ => {
                    return Err(SpecError::new(
                        p.key("set_config"),
                        "give exactly one of value or restore: true",
                    ));
                }
            };
            Operation::SetConfig {
                service: id(i),
                key: key.clone(),
                value,
            }
        }
        RemediationSpec::FlagOff { service, flag } => {
            let i = ctx.service(service, spec, &p.key("flag_off").key("service"))?;
            let f = topology.service(id(i)).flag_index(flag).ok_or_else(|| {
                SpecError::new(
                    p.key("flag_off").key("flag"),
                    format!("unknown flag {flag:?}"),
                )
            })?;
            Operation::SetFlag {
                service: id(i),
                flag: f as u8,
                enabled: false,
            }
        }
        RemediationSpec::ReconnectNetwork { service } => Operation::ReconnectNetwork {
            service: id(ctx.service(service, spec, &p.key("reconnect_network").key("service"))?),
        },
        RemediationSpec::DrainQueue { service } => Operation::DrainQueue {
            service: id(ctx.service(service, spec, &p.key("drain_queue").key("service"))?),
        },
    })
}

/// The value a known key has when a service does not set it.
pub fn default_config(key: &str) -> String {
    match key {
        "log.level" => "info".into(),
        "dns.resolver" => CLUSTER_RESOLVER.into(),
        "log.retention_minutes" => "60".into(),
        _ => String::new(),
    }
}
