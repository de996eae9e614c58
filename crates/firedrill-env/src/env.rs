//! The environment loop: reset to a page, step with actions, observe, earn reward, end with a grade.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::Arc;

use firedrill_alerting::{AlertInstance, AlertState};
use firedrill_scenario::catalog::CatalogError;
use firedrill_scenario::model::EvidenceKind;
use firedrill_scenario::{Catalog, Incident};
use firedrill_telemetry::logs::{self, LogOptions};
use firedrill_telemetry::metrics::{self, MetricKind};
use firedrill_telemetry::traces;
use firedrill_world::{Actor, FaultClass, Operation, ServiceId};
use serde::Serialize;
use serde_json::{Value, json};

use crate::action::{
    Action, ActionError, DiagnosticCheck, LevelFilter, LogqlParams, PromqlParams, ResolveParams,
    TraceqlParams, parse_action,
};
use crate::evidence::{FactKind, FactRef, Ledger};
use crate::observation::{
    AlertBrief, ChangeEntry, Content, Fixed, LogLine, MetricSummary, Observation, Page,
    ServiceDescription, ServiceEntry, TraceSummary,
};
use crate::reward::{
    Component, Components, Grade, HARM_PENALTY, INFORMATION_REWARD, INVALID_PENALTY, LostPoints,
    RewardBreakdown, SHAPING_SCALE, TIME_COST_PER_MINUTE, weights,
};

/// Misuse of the environment (as opposed to a bad action, which is an error observation).
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// `step` before any `reset`.
    #[error("no episode: call reset first")]
    NotReset,
    /// `step` after the episode ended.
    #[error("the episode has ended (terminated or truncated): call reset to start another")]
    EpisodeEnded,
    /// The scenario could not be started.
    #[error(transparent)]
    Scenario(#[from] CatalogError),
}

/// The result of one step.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// What the agent sees.
    pub observation: Observation,
    /// The step's reward (`breakdown.total()`).
    pub reward: f64,
    /// Its terms.
    pub breakdown: RewardBreakdown,
    /// The agent resolved the incident. Never reverts: the episode is over.
    pub terminated: bool,
    /// The budget ran out before a resolution.
    pub truncated: bool,
    /// Diagnostics about the step (never ground truth before the end).
    pub info: StepInfo,
}

/// Step diagnostics.
#[derive(Debug, Clone, Serialize)]
pub struct StepInfo {
    /// The action's name (`invalid` when it did not parse).
    pub action: String,
    /// Whether the action was valid and carried out.
    pub valid: bool,
    /// Why the action counts as harmful, if it does.
    pub harmful: Option<String>,
    /// Evidence ids returned for the first time.
    pub new_evidence: Vec<String>,
    /// Simulated minutes the step took.
    pub minutes: f64,
    /// The grade, on the step that ends the episode.
    pub grade: Option<Grade>,
}

/// One episode's state. Cloning it is a snapshot; restoring a clone forks the episode.
#[derive(Debug, Clone)]
pub struct Episode {
    incident: Incident,
    ledger: Ledger,
    /// Which ground-truth evidence entries have been observed.
    discovered: Vec<bool>,
    /// Entries discovered by the current step (paid in its reward).
    newly_discovered: u32,
    root_services: BTreeSet<ServiceId>,
    steps: u32,
    ended: bool,
    resolution: Option<ResolveParams>,
    harmful: Vec<String>,
    invalid: u32,
    impact_failed: f64,
    impact_total: f64,
    potential: f64,
    returns: f64,
    /// The firing alerts as observations show them, and the length of the alert history they were read at.
    /// The set and its start times change only with a transition, which always lengthens the history, so the
    /// briefs are rebuilt only then (building them formats every alert's labels and annotations).
    alert_briefs: (usize, Vec<AlertBrief>),
}

/// The environment. Holds at most one episode; `Clone` forks it.
#[derive(Debug, Clone)]
pub struct Env {
    catalog: Arc<Catalog>,
    episode: Option<Episode>,
    /// The start of the last reset, and its incident at the page once it was asked for twice in a row.
    last_start: Option<LastStart>,
    /// Resets that forked the kept incident instead of starting one.
    reused_starts: u64,
}

/// A start (scenario, seed, difficulty) and, kept once a reset asked for it again right after it, its incident
/// at the page. Group rollouts (several episodes from one start, as GRPO-style training samples them) then pay
/// for the hour before the page once: a reset to it forks the incident, which shares that hour's frames
/// ([`firedrill_world::World::freeze_history`]) rather than copying them. A workload that never repeats a start
/// keeps nothing and clones nothing.
#[derive(Debug, Clone)]
struct LastStart {
    scenario: String,
    seed: u64,
    difficulty_bits: u64,
    page: Option<Arc<Incident>>,
}

impl LastStart {
    fn is(&self, scenario: &str, seed: u64, difficulty: f64) -> bool {
        self.scenario == scenario
            && self.seed == seed
            && self.difficulty_bits == difficulty.to_bits()
    }
}

/// Most lines a log query returns when the agent gives no limit.
const DEFAULT_LOG_LIMIT: u32 = 40;
/// Most traces a trace query returns.
const MAX_TRACES: usize = 8;
/// Points per metric summary.
const SUMMARY_POINTS: usize = 12;
/// Series per page of a query result.
const PAGE_SERIES: usize = 20;
/// Log lines per page of a LogQL result.
const PAGE_LINES: usize = 50;
/// Traces per page of a TraceQL result.
const PAGE_TRACES: usize = 10;
/// Most log lines a LogQL query collects before paging.
const MAX_QUERY_LINES: usize = 5_000;
/// Most traces a TraceQL search collects before paging.
const MAX_QUERY_TRACES: usize = 200;

/// One page of `items`: (page shown, number of pages, the slice). A page past the end shows the last one.
fn paginate<T>(items: &[T], page: Option<u32>, per_page: usize) -> (u32, usize, &[T]) {
    let pages = items.len().div_ceil(per_page).max(1);
    let page = (page.unwrap_or(0) as usize).min(pages - 1);
    let start = page * per_page;
    (
        page as u32,
        pages,
        &items[start.min(items.len())..(start + per_page).min(items.len())],
    )
}

/// `[seconds, "value"]` → (unix ms, value).
fn point(v: &Value) -> Option<(i64, f64)> {
    let t = v.get(0)?.as_f64()?;
    let x: f64 = v.get(1)?.as_str()?.parse().ok()?;
    Some(((t * 1000.0).round() as i64, x))
}

fn minutes_of(s: f64) -> f64 {
    (s / 60.0 * 100.0).round() / 100.0
}

impl Env {
    /// An environment over a catalog of scenarios.
    pub fn new(catalog: Arc<Catalog>) -> Env {
        Env {
            catalog,
            episode: None,
            last_start: None,
            reused_starts: 0,
        }
    }

    /// How many resets forked a kept start instead of simulating it: a reset to the start of the reset just
    /// before, from the second repeat on (see [`Env::reset`]).
    pub fn reused_starts(&self) -> u64 {
        self.reused_starts
    }

    /// The catalog.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// Starts an episode: the world runs its history until the page, which is the first observation. An
    /// unknown scenario leaves the current episode as it was; a scenario that cannot start (its instance cannot
    /// be built at this seed, or it never pages) ends it.
    ///
    /// Resetting to the same start (scenario, seed and difficulty) as the reset before keeps that start's
    /// incident at the page, and every further reset to it forks that incident instead of simulating the hour
    /// before the page again: the episode is byte for byte the same, the reset costs a fork.
    pub fn reset(
        &mut self,
        scenario: &str,
        seed: u64,
        difficulty: f64,
    ) -> Result<Observation, EnvError> {
        // The finished episode's rule engine is taken over where it fits the new world (the same rules over
        // the same topology): the page and every step are the same, the first rule evaluation is cheaper.
        self.catalog.require(scenario)?;
        let previous = self.episode.take().map(|ep| ep.incident);
        let repeat = self
            .last_start
            .as_mut()
            .filter(|last| last.is(scenario, seed, difficulty));
        let incident = match repeat {
            Some(LastStart {
                page: Some(page), ..
            }) => {
                self.reused_starts += 1;
                Incident::clone(page)
            }
            Some(last) => {
                // Asked for twice in a row: likely again, so it is kept from now on.
                let incident = self
                    .catalog
                    .start_recycling(scenario, seed, difficulty, previous)?;
                last.page = Some(Arc::new(incident.clone()));
                incident
            }
            None => {
                self.last_start = None;
                let incident = self
                    .catalog
                    .start_recycling(scenario, seed, difficulty, previous)?;
                self.last_start = Some(LastStart {
                    scenario: scenario.to_string(),
                    seed,
                    difficulty_bits: difficulty.to_bits(),
                    page: None,
                });
                incident
            }
        };
        Ok(self.begin(incident))
    }

    /// Starts an episode from a fork of `page`, an incident at its page that [`Env::reset`] started (as kept
    /// by [`crate::VecEnv`] for starts its slots share): the episode that reset would give, byte for byte.
    /// Counted in [`Env::reused_starts`].
    pub(crate) fn reset_from(&mut self, page: &Incident) -> Observation {
        self.episode = None;
        self.last_start = None;
        self.reused_starts += 1;
        self.begin(page.clone())
    }

    /// Starts the episode of `incident`, which [`Catalog::start`] (or [`Catalog::start_recycling`]) started for
    /// (`scenario`, `seed`, `difficulty`) ahead of time, as [`crate::VecEnv`] prepares them: the episode
    /// [`Env::reset`] to that start gives, byte for byte, and the start counts as the last reset's, as if `reset`
    /// had run. Returns the incident of the episode it replaces, for the next start to recycle.
    pub(crate) fn reset_prepared(
        &mut self,
        scenario: &str,
        seed: u64,
        difficulty: f64,
        incident: Incident,
    ) -> (Observation, Option<Incident>) {
        let previous = self.episode.take().map(|ep| ep.incident);
        self.last_start = Some(LastStart {
            scenario: scenario.to_string(),
            seed,
            difficulty_bits: difficulty.to_bits(),
            page: None,
        });
        (self.begin(incident), previous)
    }

    /// Whether the last reset was to this start (the next reset to it then forks a kept incident, or keeps one).
    pub(crate) fn last_start_is(&self, scenario: &str, seed: u64, difficulty: f64) -> bool {
        self.last_start
            .as_ref()
            .is_some_and(|last| last.is(scenario, seed, difficulty))
    }

    /// The episode of an incident at its page; its first observation.
    fn begin(&mut self, incident: Incident) -> Observation {
        let instance = incident.instance();
        let root_services = instance
            .truth
            .root_causes
            .iter()
            .map(|&i| instance.faults[i].service)
            .collect();
        let discovered = vec![false; instance.truth.evidence.len()];
        let mut ep = Episode {
            incident,
            ledger: Ledger::default(),
            discovered,
            newly_discovered: 0,
            root_services,
            steps: 0,
            ended: false,
            resolution: None,
            harmful: Vec::new(),
            invalid: 0,
            impact_failed: 0.0,
            impact_total: 0.0,
            potential: 0.0,
            returns: 0.0,
            alert_briefs: (usize::MAX, Vec::new()),
        };
        ep.potential = ep.potential_now();
        let obs = ep.page();
        self.episode = Some(ep);
        obs
    }

    /// The current episode, if any.
    pub fn episode(&self) -> Option<&Episode> {
        self.episode.as_ref()
    }

    /// A snapshot of the episode (restore it with [`Env::restore`]).
    pub fn snapshot(&self) -> Option<Episode> {
        self.episode.clone()
    }

    /// Puts a snapshot back: the episode continues from there.
    pub fn restore(&mut self, snapshot: Episode) {
        self.episode = Some(snapshot);
    }

    /// Takes an action given as JSON text. Malformed or invalid input is an error observation with a penalty.
    pub fn step_json(&mut self, text: &str) -> Result<Step, EnvError> {
        match parse_action(text) {
            Ok(a) => self.step(&a),
            Err(e) => self.refuse(e),
        }
    }

    /// Takes a typed action.
    pub fn step(&mut self, action: &Action) -> Result<Step, EnvError> {
        let ep = self.episode.as_mut().ok_or(EnvError::NotReset)?;
        if ep.ended {
            return Err(EnvError::EpisodeEnded);
        }
        if let Err(e) = action.validate(ep.incident.world().topology()) {
            return self.refuse(e);
        }
        Ok(ep.act(action))
    }

    fn refuse(&mut self, e: ActionError) -> Result<Step, EnvError> {
        let ep = self.episode.as_mut().ok_or(EnvError::NotReset)?;
        if ep.ended {
            return Err(EnvError::EpisodeEnded);
        }
        Ok(ep.refused(&e))
    }
}

fn error_code(e: &ActionError) -> &'static str {
    match e {
        ActionError::Malformed(_) => "malformed",
        ActionError::UnknownAction(_) => "unknown_action",
        ActionError::BadParameter { .. } => "bad_parameter",
        ActionError::OutOfRange { .. } => "out_of_range",
        ActionError::UnknownService { .. } => "unknown_service",
    }
}

impl Episode {
    /// The incident (world, alerts, instance).
    pub fn incident(&self) -> &Incident {
        &self.incident
    }

    /// The evidence ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Whether the episode ended.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Actions taken.
    pub fn steps(&self) -> u32 {
        self.steps
    }

    /// Sum of rewards so far.
    pub fn returns(&self) -> f64 {
        self.returns
    }

    fn now_s(&self) -> f64 {
        self.incident.world().now_s()
    }

    fn unix_ms(&self, world_s: f64) -> i64 {
        ((self.incident.world().epoch_unix_s() as f64 + world_s) * 1000.0).round() as i64
    }

    fn since_page_min(&self, world_s: f64) -> f64 {
        minutes_of(world_s - self.incident.page_s())
    }

    fn name(&self, id: ServiceId) -> &str {
        self.incident.world().topology().service(id).name()
    }

    /// User-facing failure ratio now: failed over offered requests at the entry points.
    fn user_error_ratio(&self) -> (f64, f64) {
        let w = self.incident.world();
        let (mut failed, mut offered) = (0.0, 0.0);
        for e in &w.topology().entries {
            let f = w.frame(e.service);
            failed += (f.error_rps + f.rejected_rps) as f64;
            offered += f.offered_rps as f64;
        }
        (failed.min(offered), offered)
    }

    fn potential_now(&self) -> f64 {
        let (failed, offered) = self.user_error_ratio();
        let ratio = if offered > 0.0 { failed / offered } else { 0.0 };
        // Rounded so that float noise in a steady state does not show up as tiny shaping terms.
        (-SHAPING_SCALE * ratio * 1e6).round() / 1e6
    }

    /// The alerts firing now, briefly (cached until the next alert transition).
    fn firing_alerts(&mut self) -> Vec<AlertBrief> {
        let transitions = self.incident.alerts().history().len();
        if self.alert_briefs.0 != transitions {
            let page = self.incident.page_s();
            // The firing alerts in `RuleEngine::active`'s order, read off the instances: a brief shows no
            // annotation, and expanding every active alert's templates cost more than the rest of the step's
            // observation.
            let mut firing: Vec<&AlertInstance> = self
                .incident
                .alerts()
                .instances()
                .iter()
                .filter(|a| a.state == AlertState::Firing)
                .collect();
            firing.sort_by(|a, b| {
                (a.active_at_ms, a.rule, &a.labels).cmp(&(b.active_at_ms, b.rule, &b.labels))
            });
            let briefs = firing
                .into_iter()
                .map(|a| AlertBrief {
                    name: a.labels.get("alertname").cloned().unwrap_or_default(),
                    service: a.labels.get("service").cloned().unwrap_or_default(),
                    severity: a.labels.get("severity").cloned().unwrap_or_default(),
                    active_since_minutes: minutes_of(a.active_at_s - page),
                })
                .collect();
            self.alert_briefs = (transitions, briefs);
        }
        self.alert_briefs.1.clone()
    }

    fn observation(&mut self, content: Content) -> Observation {
        let firing_alerts = self.firing_alerts();
        let w = self.incident.world();
        Observation {
            step: self.steps,
            minutes_since_page: self.since_page_min(w.now_s()),
            budget_left_minutes: minutes_of((self.incident.deadline_s() - w.now_s()).max(0.0)),
            firing_alerts,
            content,
        }
    }

    fn catalogue(&self) -> Vec<ServiceEntry> {
        let topo = self.incident.world().topology();
        (0..topo.len())
            .map(|i| {
                let id = ServiceId(i as u16);
                let s = topo.service(id);
                ServiceEntry {
                    name: s.name().to_string(),
                    kind: s.kind().as_str().to_string(),
                    calls: dedup(topo.callees(id).map(|c| topo.service(c).name().to_string())),
                }
            })
            .collect()
    }

    /// The page: fired alerts in Alertmanager webhook shape, the catalogue, the actions, the budget.
    fn page(&mut self) -> Observation {
        let alerts: Vec<Value> = self
            .incident
            .alerts()
            .active()
            .into_iter()
            .filter(|a| a.state == AlertState::Firing)
            .map(|a| {
                let fingerprint = format!(
                    "{:016x}",
                    xxhash_rust::xxh3::xxh3_64(format!("{:?}", a.labels).as_bytes())
                );
                json!({
                    "status": "firing",
                    "labels": a.labels,
                    "annotations": a.annotations,
                    // Prometheus sends the time the alert started firing, not the time it became pending.
                    "startsAt": logs::rfc3339_ms(a.fired_at_unix_ms.unwrap_or_else(|| self.unix_ms(a.active_since_s))),
                    "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": format!("/graph?g0.expr={}", a.labels.get("alertname").map(String::as_str).unwrap_or("")),
                    "fingerprint": fingerprint,
                })
            })
            .collect();
        let common = |key: &str| -> Value {
            let mut out = serde_json::Map::new();
            if let Some(first) = alerts.first().and_then(|a| a[key].as_object()) {
                for (k, v) in first {
                    if alerts.iter().all(|a| a[key].get(k) == Some(v)) {
                        out.insert(k.clone(), v.clone());
                    }
                }
            }
            Value::Object(out)
        };
        let alertmanager = json!({
            "version": "4",
            "groupKey": "{}:{}",
            "truncatedAlerts": 0,
            "status": "firing",
            "receiver": "oncall",
            "groupLabels": {},
            "commonLabels": common("labels"),
            "commonAnnotations": common("annotations"),
            "externalURL": "http://alertmanager.firedrill.local",
            "alerts": alerts,
        });
        self.observation(Content::Page(Box::new(Page {
            title: self.incident.instance().title.clone(),
            alertmanager,
            services: self.catalogue(),
            actions: crate::action::openai_tools_shared(),
            budget_minutes: minutes_of(self.incident.instance().budget_s),
        })))
    }

    fn refused(&mut self, e: &ActionError) -> Step {
        self.invalid += 1;
        let content = Content::Error {
            code: error_code(e).to_string(),
            message: e.to_string(),
        };
        let mut breakdown = RewardBreakdown {
            invalid: -INVALID_PENALTY,
            ..RewardBreakdown::default()
        };
        // A refused action still takes the time of the shortest action, so an agent cannot stall the clock.
        self.finish_step(
            "invalid".into(),
            false,
            None,
            Vec::new(),
            content,
            15.0,
            &mut breakdown,
        )
    }

    fn act(&mut self, action: &Action) -> Step {
        let kind = action.kind();
        let mut new_evidence = Vec::new();
        let mut breakdown = RewardBreakdown::default();
        let mut harmful = None;
        let mut valid = true;
        let mut cost = kind.cost_s();
        let content = match action {
            Action::ListServices => Content::Services {
                services: self.catalogue(),
            },
            Action::DescribeService(p) => self.describe(self.id(&p.service), &mut new_evidence),
            Action::QueryMetrics(p) => self.metrics(
                self.id(&p.service),
                p.window_minutes.unwrap_or(30),
                &mut new_evidence,
            ),
            Action::QueryLogs(p) => self.logs(
                self.id(&p.service),
                p.window_minutes.unwrap_or(15),
                p.level.unwrap_or(LevelFilter::Info),
                p.limit.unwrap_or(DEFAULT_LOG_LIMIT),
                &mut new_evidence,
            ),
            Action::QueryTraces(p) => self.traces(
                self.id(&p.service),
                p.window_minutes.unwrap_or(15),
                p.errors_only,
                &mut new_evidence,
            ),
            Action::QueryPromql(p) => self.promql(p, &mut new_evidence),
            Action::QueryLogql(p) => self.logql(p, &mut new_evidence),
            Action::QueryTraceql(p) => self.traceql(p, &mut new_evidence),
            Action::RunDiagnostic(p) => {
                self.diagnostic(self.id(&p.service), p.check, &mut new_evidence)
            }
            Action::QueryDeploys(p) => {
                self.changes(p.service.as_deref().map(|s| self.id(s)), &mut new_evidence)
            }
            Action::RestartService(_)
            | Action::ScaleService(_)
            | Action::RollbackDeploy(_)
            | Action::UpdateConfig(_) => match self.operation(action) {
                Ok((op, message)) => {
                    harmful = self.harm(action, &op);
                    match self.incident.apply(&op, &Actor::oncall()) {
                        Ok(_) => Content::Operation {
                            action: kind.name().to_string(),
                            message,
                        },
                        Err(e) => {
                            valid = false;
                            Content::Error {
                                code: "refused".into(),
                                message: format!("{}: {e}", kind.name()),
                            }
                        }
                    }
                }
                Err((message, harm)) => {
                    valid = false;
                    harmful = harm;
                    Content::Error {
                        code: "refused".into(),
                        message,
                    }
                }
            },
            Action::Wait(p) => {
                cost = p.minutes * 60.0;
                Content::Waited { minutes: p.minutes }
            }
            Action::ResolveIncident(p) => {
                self.resolution = Some(p.clone());
                Content::Ended {
                    message: "incident resolved by the on-call engineer".into(),
                }
            }
        };
        if matches!(&content, Content::Error { code, .. } if code == "bad_query") {
            valid = false;
        }
        if !valid {
            self.invalid += 1;
            breakdown.invalid -= INVALID_PENALTY;
        }
        if let Some(h) = &harmful {
            self.harmful.push(h.clone());
            breakdown.safety -= HARM_PENALTY;
        }
        self.finish_step(
            kind.name().to_string(),
            valid,
            harmful,
            new_evidence,
            content,
            cost,
            &mut breakdown,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn finish_step(
        &mut self,
        action: String,
        valid: bool,
        harmful: Option<String>,
        new_evidence: Vec<String>,
        content: Content,
        cost_s: f64,
        breakdown: &mut RewardBreakdown,
    ) -> Step {
        self.steps += 1;
        breakdown.information += INFORMATION_REWARD * self.newly_discovered as f64;
        self.newly_discovered = 0;
        let resolving = self.resolution.is_some();
        let start_s = self.now_s();
        if !resolving {
            self.advance(cost_s);
        }
        let minutes = minutes_of(self.now_s() - start_s);
        breakdown.time -= TIME_COST_PER_MINUTE * (self.now_s() - start_s) / 60.0;
        let potential = self.potential_now();
        breakdown.shaping += potential - self.potential;
        self.potential = potential;
        let truncated = !resolving && self.incident.out_of_budget();
        let terminated = resolving;
        let mut grade = None;
        let content = if truncated {
            Content::Ended {
                message: "the budget ran out before the incident was resolved".into(),
            }
        } else {
            content
        };
        if terminated || truncated {
            self.ended = true;
            let g = self.grade();
            breakdown.outcome += g.score;
            grade = Some(g);
        }
        let observation = self.observation(content);
        let reward = breakdown.total();
        self.returns += reward;
        Step {
            observation,
            reward,
            breakdown: *breakdown,
            terminated,
            truncated,
            info: StepInfo {
                action,
                valid,
                harmful,
                new_evidence,
                minutes,
                grade,
            },
        }
    }

    /// Runs the world forward by `seconds` (whole ticks, at least one), stopping at the deadline, and integrates
    /// user impact.
    fn advance(&mut self, seconds: f64) {
        let tick = self.incident.world().tick_s();
        let ticks = (seconds / tick).ceil().max(1.0) as u64;
        for _ in 0..ticks {
            if self.incident.out_of_budget() {
                break;
            }
            self.incident.step();
            let (failed, offered) = self.user_error_ratio();
            self.impact_failed += failed * tick;
            self.impact_total += offered * tick;
        }
    }

    fn id(&self, name: &str) -> ServiceId {
        // Validation has already checked every service name the action carries.
        self.incident.service_id(name).unwrap_or(ServiceId(0))
    }

    /// Records an evidence item under its stable id and notes which ground-truth entries it shows (paid when the
    /// step finishes).
    fn evidence(
        &mut self,
        kind: FactKind,
        service: ServiceId,
        signal: &str,
        discriminator: &str,
        new_evidence: &mut Vec<String>,
    ) -> String {
        let name = self.incident.world().topology().service(service).name();
        let fact = FactRef {
            kind,
            service: name,
            signal,
        };
        // The free function, not `self.note`: the fact borrows the service's name from the incident.
        note(
            &self.incident.instance().truth.evidence,
            &mut self.discovered,
            &mut self.newly_discovered,
            fact,
        );
        let (id, new) = self.ledger.issue(fact, discriminator);
        if new {
            new_evidence.push(id.clone());
        }
        id
    }

    /// Marks the ground-truth evidence entries this fact shows as discovered.
    fn note(&mut self, fact: FactRef<'_>) {
        note(
            &self.incident.instance().truth.evidence,
            &mut self.discovered,
            &mut self.newly_discovered,
            fact,
        );
    }

    fn describe(&mut self, id: ServiceId, new_evidence: &mut Vec<String>) -> Content {
        let w = self.incident.world();
        let topo = w.topology();
        let svc = topo.service(id);
        let state = w.service(id);
        let spec = &svc.spec;
        let versions: Vec<String> = spec.versions.iter().map(|v| v.name.clone()).collect();
        let version = versions
            .get(state.version as usize)
            .cloned()
            .unwrap_or_default();
        let config = state
            .config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let flags = spec
            .flags
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.clone(), w.flag_enabled(id, i)))
            .collect();
        let calls = dedup(topo.callees(id).map(|c| topo.service(c).name().to_string()));
        let called_by = dedup(topo.callers(id).map(|c| topo.service(c).name().to_string()));
        let mut per_version = vec![0u32; versions.len()];
        for r in state.slots().iter().filter(|r| r.is_live()) {
            if let Some(n) = per_version.get_mut(r.version as usize) {
                *n += 1;
            }
        }
        let pods = versions
            .iter()
            .zip(per_version)
            .filter(|(_, n)| *n > 0)
            .map(|(v, n)| (v.clone(), n))
            .collect();
        let (desired, memory, cpu) = (state.desired, state.memory_mb, state.cpu_millis);
        let name = svc.name().to_string();
        let kind = svc.kind().as_str().to_string();
        let eid = self.evidence(FactKind::Description, id, "describe", "", new_evidence);
        Content::Service(Box::new(ServiceDescription {
            id: eid,
            name,
            kind,
            version,
            versions,
            replicas_desired: desired,
            pods,
            memory_limit_mb: memory,
            cpu_limit_millis: cpu,
            config,
            flags,
            calls,
            called_by,
        }))
    }

    fn window_ms(&self, minutes: u32) -> (i64, i64) {
        let end = self.unix_ms(self.now_s()) + 1;
        (end - minutes as i64 * 60_000, end)
    }

    fn metrics(&mut self, id: ServiceId, window: u32, new_evidence: &mut Vec<String>) -> Content {
        let (start, end) = self.window_ms(window);
        let name = self.name(id).to_string();
        // Only the families summarised below are rendered: the latency histogram is read from the frames instead
        // (its buckets integrate every held tick and were most of the cost of this action), and series outside
        // the catalogue are never shown. The summaries are the same either way.
        let wanted = |name: &str| {
            !name.starts_with("http_request_duration_seconds")
                && metrics::CATALOGUE.iter().any(|m| m.name == name)
        };
        // Only this service's series are rendered: each is computed from its own service's frames, so they are the
        // ones a render of every service would give (tested in firedrill-telemetry).
        let series = metrics::render_service(self.incident.world(), &wanted, id, start, end);
        let page_ms = self.unix_ms(self.incident.page_s());
        let mut out = Vec::new();
        // Latency from the histogram, as the p99 a dashboard would plot.
        let mut latency = Vec::new();
        {
            let w = self.incident.world();
            let ring = w.history();
            // The window's ticks only (two binary searches), not every tick the ring holds.
            for t in metrics::window_ticks(w, start, end) {
                let ms = metrics::tick_ms(w, t);
                if let Some(f) = ring.get(t, id.index())
                    && f.ready > 0
                    && f.offered_rps > 0.0
                {
                    latency.push((ms, f.p99_ms() / 1000.0));
                }
            }
        }
        if !latency.is_empty() {
            out.push((
                "http_request_duration_seconds".to_string(),
                Vec::new(),
                "p99_seconds".to_string(),
                latency,
            ));
        }
        for s in series {
            let metric = s.labels.get("__name__").cloned().unwrap_or_default();
            if metric.starts_with("http_request_duration_seconds") {
                continue;
            }
            let Some(info) = metrics::CATALOGUE.iter().find(|m| m.name == metric) else {
                continue;
            };
            let labels: Vec<(String, String)> = s
                .labels
                .iter()
                .filter(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "__name__"
                            | "service"
                            | "job"
                            | "namespace"
                            | "instance"
                            | "container"
                            | "deployment"
                    )
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let (unit, points) = if info.kind == MetricKind::Counter {
                let rates = s
                    .samples
                    .windows(2)
                    .map(|p| {
                        let dt = (p[1].0 - p[0].0) as f64 / 1000.0;
                        let dv = p[1].1 - p[0].1;
                        // A counter reset (a restarted pod) counts from zero, as Prometheus's rate does.
                        let dv = if dv < 0.0 { p[1].1 } else { dv };
                        (p[1].0, if dt > 0.0 { dv / dt } else { 0.0 })
                    })
                    .collect();
                ("per_second".to_string(), rates)
            } else {
                (info.unit.to_string(), s.samples.clone())
            };
            if points.is_empty() {
                continue;
            }
            out.push((metric, labels, unit, points));
        }
        let mut summaries = Vec::with_capacity(out.len());
        for (metric, labels, unit, points) in out {
            // `k=v` pairs joined by commas.
            let mut disc = String::new();
            for (k, v) in &labels {
                if !disc.is_empty() {
                    disc.push(',');
                }
                disc.push_str(k);
                disc.push('=');
                disc.push_str(v);
            }
            let eid = self.evidence(FactKind::Metric, id, &metric, &disc, new_evidence);
            summaries.push(summarise(eid, metric, labels, unit, &points, page_ms));
        }
        Content::Metrics {
            service: name,
            window_minutes: window,
            series: summaries,
        }
    }

    fn logs(
        &mut self,
        id: ServiceId,
        window: u32,
        level: LevelFilter,
        limit: u32,
        new_evidence: &mut Vec<String>,
    ) -> Content {
        let (start, end) = self.window_ms(window);
        let name = self.name(id).to_string();
        let min_level = match level {
            LevelFilter::Debug => logs::Level::Debug,
            LevelFilter::Info => logs::Level::Info,
            LevelFilter::Warn => logs::Level::Warn,
            LevelFilter::Error => logs::Level::Error,
        };
        let opts = LogOptions {
            noise: self.incident.instance().log_noise,
            max_records: usize::MAX,
        };
        let page_ms = self.unix_ms(self.incident.page_s());
        // Only this service's lines are rendered: every draw is keyed by (tick, service) or by the event, so they
        // are the lines, in the same order, a render of every service would give (tested in firedrill-telemetry).
        // Only the lines returned get their text; the others are only counted.
        let (matched, records) = logs::newest_of_service(
            self.incident.world(),
            id,
            start,
            end,
            &opts,
            min_level,
            limit as usize,
        );
        let mut lines = Vec::with_capacity(records.len());
        for r in records {
            let disc = format!(
                "{}|{}|{}",
                r.t_ms,
                r.pod.as_deref().unwrap_or(""),
                r.message
            );
            let eid = self.evidence(FactKind::Log, id, r.event, &disc, new_evidence);
            lines.push(LogLine {
                id: eid,
                minutes: minutes_of((r.t_ms - page_ms) as f64 / 1000.0),
                time: logs::rfc3339_ms(r.t_ms),
                pod: r.pod,
                level: r.level.as_str().to_string(),
                event: r.event.to_string(),
                message: r.message,
            });
        }
        Content::Logs {
            service: name,
            window_minutes: window,
            matched,
            lines,
        }
    }

    /// A trace as the agent sees it, recorded as evidence about `service`.
    fn trace_summary(
        &mut self,
        t: &traces::Trace,
        service: ServiceId,
        new_evidence: &mut Vec<String>,
    ) -> TraceSummary {
        let page_ms = self.unix_ms(self.incident.page_s());
        let signal = if t.has_error() {
            "error_trace"
        } else {
            "trace"
        };
        let id = self.evidence(FactKind::Trace, service, signal, &t.trace_id, new_evidence);
        let mut spans: Vec<_> = t.spans.iter().collect();
        // Stable, as a sort by a cloned key would be, without cloning an id per comparison.
        spans.sort_by(|a, b| (a.start_ns, &a.span_id).cmp(&(b.start_ns, &b.span_id)));
        TraceSummary {
            id,
            trace_id: t.trace_id.clone(),
            minutes: minutes_of(
                (t.root().map(|r| r.start_ns).unwrap_or(0) / 1_000_000 - page_ms) as f64 / 1000.0,
            ),
            root: t.root().map(|r| r.name.clone()).unwrap_or_default(),
            duration_ms: (t.duration_ns() as f64 / 1e6 * 10.0).round() / 10.0,
            error: t.has_error(),
            path: spans
                .iter()
                .take(10)
                .map(|s| {
                    // `{service}: {name} ({ms}ms, {status})`, the parts pushed rather than formatted.
                    let status = s.status.as_str();
                    let mut line =
                        String::with_capacity(s.service.len() + s.name.len() + status.len() + 16);
                    line.push_str(&s.service);
                    line.push_str(": ");
                    line.push_str(&s.name);
                    line.push_str(" (");
                    // Writing to a `String` cannot fail.
                    let _ = write!(line, "{}", Fixed::new(s.duration_ns as f64 / 1e6, 0));
                    line.push_str("ms, ");
                    line.push_str(status);
                    line.push(')');
                    line
                })
                .collect(),
        }
    }

    fn traces(
        &mut self,
        id: ServiceId,
        window: u32,
        errors_only: bool,
        new_evidence: &mut Vec<String>,
    ) -> Content {
        let (start, end) = self.window_ms(window);
        let name = self.name(id).to_string();
        // Only the traces shown are built; the others are only counted, each walked no further than it takes to
        // know whether it counts.
        // Summaries show no attributes, so none are written.
        let query = traces::ThroughQuery {
            through: id,
            errors_only,
            newest: MAX_TRACES,
            detail: traces::SpanDetail::NoAttributes,
        };
        let (matched, newest) =
            traces::newest_through(self.incident.world(), start, end, 20_000, &query);
        let mut out = Vec::with_capacity(newest.len());
        for t in &newest {
            out.push(self.trace_summary(t, id, new_evidence));
        }
        Content::Traces {
            service: name,
            window_minutes: window,
            matched,
            traces: out,
        }
    }

    /// Summaries of Prometheus-shaped series (`[{metric: {..}, values: [[t, "v"], ..]}]`), with evidence ids.
    fn series_summaries(
        &mut self,
        result: &[Value],
        query: &str,
        new_evidence: &mut Vec<String>,
    ) -> Vec<MetricSummary> {
        let page_ms = self.unix_ms(self.incident.page_s());
        // The metric a query is about, for evidence: the catalogue name it mentions, if any (aggregations drop
        // `__name__` from their results).
        let mentioned = metrics::CATALOGUE
            .iter()
            .map(|m| m.name)
            .filter(|n| query.contains(n))
            .max_by_key(|n| n.len())
            .unwrap_or("");
        let mut out = Vec::with_capacity(result.len());
        for r in result {
            let labels: Vec<(String, String)> = r["metric"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter(|(k, _)| k.as_str() != "__name__")
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                        .collect()
                })
                .unwrap_or_default();
            let name = r["metric"]["__name__"]
                .as_str()
                .unwrap_or(mentioned)
                .to_string();
            let points: Vec<(i64, f64)> = match r.get("values").and_then(Value::as_array) {
                Some(vs) => vs.iter().filter_map(point).collect(),
                None => r.get("value").and_then(point).into_iter().collect(),
            };
            if points.is_empty() {
                continue;
            }
            let service = labels
                .iter()
                .find(|(k, _)| k == "service")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            let fact = FactRef {
                kind: FactKind::Metric,
                service: &service,
                signal: &name,
            };
            self.note(fact);
            let disc = format!("{query}|{labels:?}");
            let (eid, new) = self.ledger.issue(fact, &disc);
            if new {
                new_evidence.push(eid.clone());
            }
            out.push(summarise(
                eid,
                name,
                labels,
                "value".into(),
                &points,
                page_ms,
            ));
        }
        out
    }

    fn query_error(language: &str, e: &firedrill_query::QueryError) -> Content {
        let message = match e.position() {
            Some(p) => format!("{e} (at position {p})"),
            None => e.to_string(),
        };
        Content::Error {
            code: "bad_query".into(),
            message: format!("{language}: {message}"),
        }
    }

    fn promql(&mut self, p: &PromqlParams, new_evidence: &mut Vec<String>) -> Content {
        let window = p.window_minutes.unwrap_or(30);
        let (start, end) = self.window_ms(window);
        let step_s = p.step_seconds.unwrap_or_else(|| (window * 60 / 12).max(15));
        let data = match firedrill_query::evaluate_promql_range(
            self.incident.world(),
            &p.promql,
            start,
            end - 1,
            step_s as i64 * 1000,
        ) {
            Ok(d) => d,
            Err(e) => return Self::query_error("promql", &e),
        };
        let result = match (data["resultType"].as_str(), &data["result"]) {
            (Some("matrix" | "vector"), Value::Array(a)) => a.clone(),
            // A scalar or a string is one unlabelled `[t, "v"]` point.
            (_, v) => vec![json!({"metric": {}, "value": v})],
        };
        let (page, pages, slice) = paginate(&result, p.page, PAGE_SERIES);
        let series = self.series_summaries(slice, &p.promql, new_evidence);
        Content::QueryResult {
            language: "promql".into(),
            query: p.promql.clone(),
            window_minutes: window,
            total: result.len(),
            page,
            pages,
            series,
            lines: Vec::new(),
            traces: Vec::new(),
        }
    }

    fn logql(&mut self, p: &LogqlParams, new_evidence: &mut Vec<String>) -> Content {
        let window = p.window_minutes.unwrap_or(15);
        let (start, end) = self.window_ms(window);
        let opts = firedrill_query::LogSourceOptions {
            noise: self.incident.instance().log_noise,
            ..Default::default()
        };
        let mut request =
            firedrill_query::LogqlRequest::range(start * 1_000_000, end * 1_000_000, None);
        request.limit = MAX_QUERY_LINES;
        let data =
            match firedrill_query::evaluate_logql(self.incident.world(), &opts, &p.logql, &request)
            {
                Ok(d) => d,
                Err(e) => return Self::query_error("logql", &e),
            };
        let result = data["result"].as_array().cloned().unwrap_or_default();
        if data["resultType"] != "streams" {
            let (page, pages, slice) = paginate(&result, p.page, PAGE_SERIES);
            let series = self.series_summaries(slice, &p.logql, new_evidence);
            return Content::QueryResult {
                language: "logql".into(),
                query: p.logql.clone(),
                window_minutes: window,
                total: result.len(),
                page,
                pages,
                series,
                lines: Vec::new(),
                traces: Vec::new(),
            };
        }
        // Lines of every stream, newest first, so page 0 is the most recent.
        let mut all: Vec<(i64, serde_json::Map<String, Value>, String)> = Vec::new();
        for stream in &result {
            let labels = stream["stream"].as_object().cloned().unwrap_or_default();
            for v in stream["values"].as_array().into_iter().flatten() {
                let ns: i64 = v[0].as_str().and_then(|t| t.parse().ok()).unwrap_or(0);
                all.push((ns, labels.clone(), v[1].as_str().unwrap_or("").to_string()));
            }
        }
        all.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.2.cmp(&b.2)));
        let (page, pages, slice) = paginate(&all, p.page, PAGE_LINES);
        let page_ms = self.unix_ms(self.incident.page_s());
        let mut lines = Vec::with_capacity(slice.len());
        for (ns, labels, line) in slice.iter().rev() {
            let label = |k: &str| {
                labels
                    .get(k)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            // Lines are logfmt; the event name is its `event=` field (never quoted: event names are identifiers).
            let event = line
                .split(' ')
                .find_map(|t| t.strip_prefix("event="))
                .unwrap_or("")
                .to_string();
            let service = label("service");
            let fact = FactRef {
                kind: FactKind::Log,
                service: &service,
                signal: &event,
            };
            self.note(fact);
            let (eid, new) = self
                .ledger
                .issue(fact, &format!("{ns}|{}|{line}", label("pod")));
            if new {
                new_evidence.push(eid.clone());
            }
            let ms = ns / 1_000_000;
            lines.push(LogLine {
                id: eid,
                minutes: minutes_of((ms - page_ms) as f64 / 1000.0),
                time: logs::rfc3339_ms(ms),
                pod: Some(label("pod")).filter(|p| !p.is_empty()),
                level: label("level"),
                event,
                message: line.clone(),
            });
        }
        Content::QueryResult {
            language: "logql".into(),
            query: p.logql.clone(),
            window_minutes: window,
            total: all.len(),
            page,
            pages,
            series: Vec::new(),
            lines,
            traces: Vec::new(),
        }
    }

    fn traceql(&mut self, p: &TraceqlParams, new_evidence: &mut Vec<String>) -> Content {
        let window = p.window_minutes.unwrap_or(15);
        let (start, end) = self.window_ms(window);
        let data = match firedrill_query::search_traces(
            self.incident.world(),
            &p.traceql,
            start * 1_000_000,
            end * 1_000_000,
            MAX_QUERY_TRACES,
        ) {
            Ok(d) => d,
            Err(e) => return Self::query_error("traceql", &e),
        };
        let found = data["traces"].as_array().cloned().unwrap_or_default();
        let (page, pages, slice) = paginate(&found, p.page, PAGE_TRACES);
        let mut out = Vec::with_capacity(slice.len());
        for t in slice {
            let Some(id) = t["traceID"].as_str() else {
                continue;
            };
            let Some(trace) = traces::find_trace(self.incident.world(), id) else {
                continue;
            };
            // A search result is attributed to the service its trace entered by.
            let root_service = trace.root().map(|r| r.service.clone()).unwrap_or_default();
            let sid = self
                .incident
                .service_id(&root_service)
                .unwrap_or(ServiceId(0));
            out.push(self.trace_summary(&trace, sid, new_evidence));
        }
        Content::QueryResult {
            language: "traceql".into(),
            query: p.traceql.clone(),
            window_minutes: window,
            total: found.len(),
            page,
            pages,
            series: Vec::new(),
            lines: Vec::new(),
            traces: out,
        }
    }

    fn diagnostic(
        &mut self,
        id: ServiceId,
        check: DiagnosticCheck,
        new_evidence: &mut Vec<String>,
    ) -> Content {
        let w = self.incident.world();
        let topo = w.topology();
        let f = *w.frame(id);
        let state = w.service(id);
        let spec = &topo.service(id).spec;
        let mut findings = Vec::new();
        let mut status = "ok";
        let worse = |s: &mut &str, to: &'static str| {
            if to == "failing" || (*s == "ok" && to == "warning") {
                *s = to;
            }
        };
        let check_name = match check {
            DiagnosticCheck::Connectivity => "connectivity",
            DiagnosticCheck::Health => "health",
            DiagnosticCheck::Resources => "resources",
            DiagnosticCheck::Dns => "dns",
            DiagnosticCheck::Tls => "tls",
        };
        // The cause of failures, named only when it concerns this check: a diagnostic reports what it probes.
        let dep_name = (f.err_dep != u16::MAX && (f.err_dep as usize) < topo.len())
            .then(|| topo.service(ServiceId(f.err_dep)).name().to_string());
        use firedrill_world::frame::ErrorCause as C;
        match check {
            DiagnosticCheck::Health => {
                findings.push(format!(
                    "pods: {} ready of {} desired ({} existing, {} pending scheduling)",
                    f.ready, f.desired, f.pods, f.pending
                ));
                let restarts_recent = restarts_in(w, id, 15);
                findings.push(format!(
                    "container restarts: {} in the last 15 min ({} total, {} OOMKilled)",
                    restarts_recent, f.restarts_total, f.oom_kills_total
                ));
                if f.ready == 0 {
                    worse(&mut status, "failing");
                    findings.push("readiness probe failing on every pod".into());
                } else if f.ready < f.desired || restarts_recent > 0 {
                    worse(&mut status, "warning");
                }
                if f.offered_rps > 0.0 {
                    findings.push(format!(
                        "probe /healthz: {} of requests answered with an error over the last tick",
                        pct(f.error_ratio())
                    ));
                    if f.error_ratio() > 0.05 {
                        worse(&mut status, "failing");
                    } else if f.error_ratio() > 0.01 {
                        worse(&mut status, "warning");
                    }
                }
            }
            DiagnosticCheck::Resources => {
                findings.push(format!(
                    "cpu: {:.2} cores used of {:.2} limit over {} ready pods ({} of limit)",
                    f.cpu_cores,
                    f.cpu_limit_cores * f.ready.max(1) as f32,
                    f.ready,
                    pct(f.cpu_utilisation())
                ));
                if f.cpu_utilisation() > 0.9 {
                    worse(&mut status, "warning");
                }
                let mem = f.memory_mb_max();
                findings.push(format!(
                    "memory: highest working set {:.0}Mi of {:.0}Mi limit ({})",
                    mem,
                    f.memory_limit_mb,
                    pct(mem / f.memory_limit_mb.max(1.0) as f64)
                ));
                if mem > 0.9 * f.memory_limit_mb as f64
                    || f.oom_kills_total > 0 && restarts_in(w, id, 15) > 0
                {
                    worse(&mut status, "warning");
                }
                if f.disk_size_gb > 0.0 {
                    let used = f.disk_used_gb / f.disk_size_gb;
                    findings.push(format!(
                        "volume /data: {:.1}GiB used of {:.1}GiB ({})",
                        f.disk_used_gb,
                        f.disk_size_gb,
                        pct(used as f64)
                    ));
                    if used >= 0.99 {
                        worse(&mut status, "failing");
                    } else if used > 0.85 {
                        worse(&mut status, "warning");
                    }
                }
                if f.pool_max > 0.0 {
                    findings.push(format!(
                        "connection pool: {:.1} in use of {:.0} per pod, mean wait {:.0}ms",
                        f.pool_in_use, f.pool_max, f.pool_wait_ms
                    ));
                    if f.pool_in_use >= 0.95 * f.pool_max {
                        worse(&mut status, "failing");
                    }
                }
                let (cpu, memory) = w.quota_used();
                let cluster = &w.topology().cluster;
                findings.push(format!(
                    "cluster quota: {cpu}m of {}m cpu and {memory}Mi of {}Mi memory requested by scheduled pods",
                    cluster.cpu_millis, cluster.memory_mb
                ));
                if f.pending > 0 {
                    worse(&mut status, "warning");
                    findings.push(format!(
                        "{} pods pending: insufficient cluster quota",
                        f.pending
                    ));
                }
            }
            DiagnosticCheck::Connectivity => {
                if state.detached {
                    worse(&mut status, "failing");
                    findings.push("network interface detached: no route to any dependency".into());
                }
                let mut callees: Vec<ServiceId> = topo.callees(id).collect();
                callees.dedup();
                for cid in callees {
                    let c = topo.service(cid).name().to_string();
                    let bad = dep_name.as_deref() == Some(c.as_str());
                    // What a probe request to the dependency sees, besides the caller's own failures.
                    let cf = w.frame(cid);
                    let probe = if cf.ready == 0 {
                        "reachable, no ready endpoint".to_string()
                    } else if cf.error_ratio() > 0.05 {
                        format!("reachable, answering {} errors", pct(cf.error_ratio()))
                    } else if cf.p99_ms() > 2_000.0 {
                        format!("reachable, slow (p99 {:.0}ms)", cf.p99_ms())
                    } else {
                        "reachable".to_string()
                    };
                    let verdict = match (bad, f.err_cause) {
                        (true, C::Unreachable) => "unreachable (connection timed out)".to_string(),
                        (true, C::UpstreamTimeout) => "reachable, calls timing out".to_string(),
                        (true, C::UpstreamError) => "reachable, answering with errors".to_string(),
                        (true, C::PoolTimeout) => {
                            "reachable, waiting for a pooled connection times out".to_string()
                        }
                        (true, C::TlsHandshake) => "TCP ok, TLS handshake failing".to_string(),
                        (true, C::DnsResolution) => "name does not resolve".to_string(),
                        _ if state.detached => "unreachable".to_string(),
                        _ => probe,
                    };
                    if verdict != "reachable" {
                        worse(&mut status, "failing");
                    }
                    findings.push(format!("{c}: {verdict}"));
                }
                if findings.is_empty() {
                    findings.push("no outgoing dependencies".into());
                }
            }
            DiagnosticCheck::Dns => {
                let resolver = state
                    .config
                    .get("dns.resolver")
                    .cloned()
                    .unwrap_or_else(|| firedrill_world::config::CLUSTER_RESOLVER.to_string());
                findings.push(format!("resolver: {resolver}"));
                if f.dns_failures_rps > 0.0 {
                    worse(&mut status, "failing");
                    findings.push(format!(
                        "{:.1} lookups/s failing (SERVFAIL){}",
                        f.dns_failures_rps,
                        dep_name.map(|d| format!(", e.g. {d}")).unwrap_or_default()
                    ));
                } else {
                    findings.push("lookups of every dependency succeed".into());
                }
            }
            DiagnosticCheck::Tls => {
                if spec.tls.is_some() {
                    let days = f.cert_expires_in_s as f64 / 86_400.0;
                    if f.cert_expires_in_s.is_nan() || f.ready == 0 {
                        findings.push("no ready pod to probe".into());
                        worse(&mut status, "warning");
                    } else if days < 0.0 {
                        worse(&mut status, "failing");
                        findings.push(format!(
                            "serving certificate expired {:.1} h ago",
                            -days * 24.0
                        ));
                    } else {
                        if days < 7.0 {
                            worse(&mut status, "warning");
                        }
                        findings.push(format!("serving certificate valid for {days:.1} more days"));
                    }
                } else {
                    findings.push("service does not terminate TLS".into());
                }
                if f.tls_failures_rps > 0.0 {
                    worse(&mut status, "failing");
                    findings.push(format!(
                        "{:.1} outgoing handshakes/s failing{}",
                        f.tls_failures_rps,
                        dep_name.map(|d| format!(" (to {d})")).unwrap_or_default()
                    ));
                }
            }
        }
        let signal = format!("{check_name}:{status}");
        let disc = findings.join("|");
        let eid = self.evidence(FactKind::Diagnostic, id, &signal, &disc, new_evidence);
        Content::Diagnostic {
            service: self.name(id).to_string(),
            check: check_name.to_string(),
            id: eid,
            status: status.to_string(),
            findings,
        }
    }

    fn changes(&mut self, only: Option<ServiceId>, new_evidence: &mut Vec<String>) -> Content {
        let w = self.incident.world();
        let page_ms = self.unix_ms(self.incident.page_s());
        let only_name = only.map(|id| self.name(id).to_string());
        let views: Vec<_> = logs::audit_log(w)
            .into_iter()
            .filter(|c| only_name.as_deref().is_none_or(|n| n == c.service))
            .collect();
        let mut changes = Vec::with_capacity(views.len());
        for c in views {
            let sid = self.id(&c.service);
            let eid = self.evidence(
                FactKind::Change,
                sid,
                c.kind,
                &c.id.to_string(),
                new_evidence,
            );
            changes.push(ChangeEntry {
                id: eid,
                minutes: minutes_of((c.t_ms - page_ms) as f64 / 1000.0),
                actor: c.actor,
                service: c.service,
                kind: c.kind.to_string(),
                summary: c.summary,
            });
        }
        Content::Changes {
            service: only_name,
            changes,
        }
    }

    /// The world operation an operational action stands for. A refusal carries its message and whether the
    /// attempt itself counts as harmful.
    #[allow(clippy::result_large_err)]
    fn operation(&self, action: &Action) -> Result<(Operation, String), (String, Option<String>)> {
        let w = self.incident.world();
        Ok(match action {
            Action::RestartService(p) => {
                let id = self.id(&p.service);
                (
                    Operation::Restart {
                        service: id,
                        memory_mb: p.memory_mb,
                        cpu_millis: p.cpu_millis,
                    },
                    format!(
                        "restarting every pod of {}{}",
                        p.service,
                        match (p.memory_mb, p.cpu_millis) {
                            (None, None) => String::new(),
                            (m, c) => format!(
                                " with limits{}{}",
                                m.map(|m| format!(" memory {m}Mi")).unwrap_or_default(),
                                c.map(|c| format!(" cpu {c}m")).unwrap_or_default()
                            ),
                        }
                    ),
                )
            }
            Action::ScaleService(p) => (
                Operation::Scale {
                    service: self.id(&p.service),
                    replicas: p.replicas,
                },
                format!("scaling {} to {} replicas", p.service, p.replicas),
            ),
            Action::RollbackDeploy(p) => {
                let id = self.id(&p.service);
                let svc = w.topology().service(id);
                let current = w.service(id).version;
                let target = match &p.version {
                    Some(v) => match svc.version_index(v) {
                        Some(i) => i as u8,
                        None => {
                            let known: Vec<&str> =
                                svc.spec.versions.iter().map(|v| v.name.as_str()).collect();
                            return Err((
                                format!(
                                    "rollback_deploy: {} has no version {v:?} (known: {})",
                                    p.service,
                                    known.join(", ")
                                ),
                                None,
                            ));
                        }
                    },
                    None => match previous_version(w, id) {
                        Some(v) => v,
                        None => {
                            return Err((
                                format!(
                                    "rollback_deploy: {} has no earlier version to roll back to",
                                    p.service
                                ),
                                None,
                            ));
                        }
                    },
                };
                if target == current {
                    return Err((
                        format!(
                            "rollback_deploy: {} already runs {}",
                            p.service, svc.spec.versions[current as usize].name
                        ),
                        Some(format!("rollback of {} to the running version", p.service)),
                    ));
                }
                (
                    Operation::Deploy {
                        service: id,
                        version: target,
                    },
                    format!(
                        "rolling {} back from {} to {}",
                        p.service,
                        svc.spec.versions[current as usize].name,
                        svc.spec.versions[target as usize].name
                    ),
                )
            }
            Action::UpdateConfig(p) => (
                Operation::SetConfig {
                    service: self.id(&p.service),
                    key: p.key.clone(),
                    value: p.value.clone(),
                },
                format!("set {} = {} on {}", p.key, p.value, p.service),
            ),
            _ => return Err(("not an operation".into(), None)),
        })
    }

    /// Whether an operation is harmful, judged from the state before it and the ground truth: changing a service
    /// that is not a root cause while it is healthy (or when nothing is broken at all), and scaling down under
    /// load.
    fn harm(&self, action: &Action, op: &Operation) -> Option<String> {
        let w = self.incident.world();
        let id = op.service();
        let f = w.frame(id);
        let name = self.name(id);
        let root = self.root_services.contains(&id);
        let no_fault = self.root_services.is_empty();
        if let Operation::Scale { replicas, .. } = op {
            let desired = w.service(id).desired;
            if *replicas == 0 && f.offered_rps > 0.0 {
                return Some(format!("scaled {name} to zero while it serves traffic"));
            }
            if *replicas < desired && f.cpu_utilisation() > 0.5 {
                return Some(format!(
                    "scaled {name} down from {desired} to {replicas} under load ({} cpu)",
                    pct(f.cpu_utilisation())
                ));
            }
        }
        if !root && (no_fault || f.health == firedrill_world::Health::Healthy) {
            let what = match action {
                Action::RestartService(_) => "restarted",
                Action::ScaleService(_) => return None,
                Action::RollbackDeploy(_) => "rolled back",
                _ => "reconfigured",
            };
            let why = if no_fault {
                "when nothing was broken"
            } else {
                "a healthy service that is not a root cause"
            };
            return Some(format!("{what} {name}: {why}"));
        }
        None
    }

    /// The grade of the episode as it stands (final once ended).
    pub fn grade(&self) -> Grade {
        let inst = self.incident.instance();
        let truth = &inst.truth;
        let mut lost = Vec::new();
        let resolved = self.resolution.is_some();
        // With nothing broken (`no_fault_control`) the world recovers from the page by itself, so its state says
        // nothing of the agent. The outcome there is leaving the system alone: an operation on it (every such
        // operation is harmful there) forfeits what the state would credit as mitigated.
        let disturbed_control = truth.root_causes.is_empty() && !self.harmful.is_empty();
        let mitigated = self.incident.mitigated() && !disturbed_control;
        let page = self.incident.page_s();
        let minutes_to_mitigate = if mitigated {
            self.incident
                .mitigated_since()
                .map(|s| minutes_of((s - page).max(0.0)))
        } else {
            None
        };
        let mut lose = |component: &'static str,
                        weight: f64,
                        fraction_lost: f64,
                        reason: &'static str,
                        detail: String| {
            // Hallucinations are always recorded, even when the evidence credit they would cost is already gone.
            if fraction_lost > 0.0 || reason == "hallucinated_citation" {
                lost.push(LostPoints {
                    component,
                    points: weight * fraction_lost,
                    reason,
                    detail,
                });
            }
        };

        // Mitigation.
        let mut mitigation = if mitigated {
            1.0
        } else if disturbed_control {
            lose(
                "mitigation",
                weights::MITIGATION,
                1.0,
                "disturbed_control",
                format!(
                    "nothing was broken, and the agent changed the system: {}",
                    self.harmful.join("; ")
                ),
            );
            0.0
        } else if self.incident.mitigated_now() {
            lose(
                "mitigation",
                weights::MITIGATION,
                0.5,
                "not_sustained",
                format!(
                    "the mitigated state held for {:.1} of the {:.0} minutes required",
                    minutes_of(
                        self.now_s() - self.incident.mitigated_since().unwrap_or(self.now_s())
                    ),
                    truth.sustain_s / 60.0
                ),
            );
            0.5
        } else {
            lose(
                "mitigation",
                weights::MITIGATION,
                1.0,
                "not_mitigated",
                "service levels were not back within objective with the cause removed".into(),
            );
            0.0
        };
        if !resolved && mitigation > 0.0 {
            lose(
                "mitigation",
                weights::MITIGATION,
                mitigation * 0.5,
                "not_resolved",
                "the budget ran out without resolve_incident: half the mitigation credit".into(),
            );
            mitigation *= 0.5;
        }

        // Diagnosis, evidence, time, impact and safety need a resolution.
        let true_services: BTreeSet<&str> = truth
            .root_causes
            .iter()
            .map(|&i| inst.topology.service(inst.faults[i].service).name())
            .collect();
        let true_classes: BTreeSet<FaultClass> = truth
            .root_causes
            .iter()
            .map(|&i| inst.faults[i].class)
            .collect();
        let (mut diagnosis, mut evidence, mut time, mut impact_c, mut safety) =
            (0.0, 0.0, 0.0, 0.0, 0.0);
        let mut diagnosis_correct = false;
        let mut hallucinated = 0u32;
        let impact = if self.impact_total > 0.0 {
            self.impact_failed / self.impact_total
        } else {
            0.0
        };
        if let Some(r) = &self.resolution {
            // Which proofs the citations hold, and how many cite nothing the episode returned.
            let mut matched = vec![false; truth.evidence.len()];
            let mut real_cited = 0usize;
            let mut seen = BTreeSet::new();
            for cited in &r.evidence {
                if !seen.insert(cited.as_str()) {
                    continue;
                }
                match self.ledger.get(cited) {
                    None => hallucinated += 1,
                    Some(fact) => {
                        real_cited += 1;
                        for (i, ev) in truth.evidence.iter().enumerate() {
                            if fact_matches(fact.view(), ev) {
                                matched[i] = true;
                            }
                        }
                    }
                }
            }
            let proofs_cited = matched.iter().filter(|m| **m).count();
            // A diagnosis is supported when a citation proves it (with no proofs to find, when any real
            // observation is cited). Without support it is a guess, however right: the page alone names the root
            // service in some families, and a blind resolve must not collect the whole diagnosis there.
            let supported = if truth.evidence.is_empty() {
                real_cited > 0
            } else {
                proofs_cited > 0
            };

            // Services: precision at full recall.
            let claimed: BTreeSet<&str> = r.root_causes.iter().map(String::as_str).collect();
            let service_part = if claimed == true_services {
                1.0
            } else if true_services.is_subset(&claimed) && !true_services.is_empty() {
                let p = true_services.len() as f64 / claimed.len() as f64;
                lose(
                    "diagnosis",
                    weights::DIAGNOSIS,
                    0.5 * (1.0 - p),
                    "extra_root_cause_services",
                    format!(
                        "named {} services, {} of them root causes",
                        claimed.len(),
                        true_services.len()
                    ),
                );
                p
            } else {
                lose(
                    "diagnosis",
                    weights::DIAGNOSIS,
                    0.5,
                    "wrong_root_cause_service",
                    format!("named {:?}", r.root_causes),
                );
                0.0
            };
            let class_ok = if true_classes.is_empty() {
                r.fault_class == FaultClass::NoFault
            } else {
                true_classes.contains(&r.fault_class)
            };
            if !class_ok {
                lose(
                    "diagnosis",
                    weights::DIAGNOSIS,
                    0.5,
                    "wrong_fault_class",
                    format!("named {}", r.fault_class.as_str()),
                );
            }
            diagnosis = 0.5 * service_part + if class_ok { 0.5 } else { 0.0 };
            diagnosis_correct = service_part == 1.0 && class_ok;
            if !supported && diagnosis > 0.0 {
                lose(
                    "diagnosis",
                    weights::DIAGNOSIS,
                    0.5 * diagnosis,
                    "unsupported_diagnosis",
                    if truth.evidence.is_empty() {
                        "no observation cited: an unsupported diagnosis earns half".into()
                    } else {
                        "no cited observation proves the cause: an unsupported diagnosis earns half"
                            .into()
                    },
                );
                diagnosis *= 0.5;
            }

            // Evidence: citations must be real; the ground truth's proofs must be among them.
            let base = if truth.evidence.is_empty() {
                if r.evidence.is_empty() {
                    lose(
                        "evidence",
                        weights::EVIDENCE,
                        0.5,
                        "no_evidence_cited",
                        "no evidence id cited".into(),
                    );
                    0.5
                } else {
                    1.0
                }
            } else {
                let need = truth.evidence.len().min(2) as f64;
                let got = proofs_cited as f64;
                let f = (got / need).min(1.0);
                if f < 1.0 {
                    lose(
                        "evidence",
                        weights::EVIDENCE,
                        1.0 - f,
                        "proof_not_cited",
                        format!("cited {got:.0} of the {need:.0} proofs required"),
                    );
                }
                f
            };
            let penalty = (0.25 * hallucinated as f64).min(base);
            if hallucinated > 0 {
                lose(
                    "evidence",
                    weights::EVIDENCE,
                    penalty,
                    "hallucinated_citation",
                    format!("{hallucinated} cited ids were never returned to the agent"),
                );
            }
            evidence = base - penalty;

            // Time to mitigate, against a reference of a third of the budget.
            let budget_min = inst.budget_s / 60.0;
            let reference = budget_min / 3.0;
            time = match minutes_to_mitigate {
                Some(m) if m <= reference => 1.0,
                Some(m) => {
                    (1.0 - (m - reference) / (budget_min - reference).max(1.0)).clamp(0.0, 1.0)
                }
                None => 0.0,
            };
            if time < 1.0 {
                lose(
                    "time",
                    weights::TIME,
                    1.0 - time,
                    if minutes_to_mitigate.is_some() {
                        "slow_mitigation"
                    } else {
                        "not_mitigated"
                    },
                    match minutes_to_mitigate {
                        Some(m) => {
                            format!("mitigated after {m:.1} min; reference {reference:.1} min")
                        }
                        None => "never mitigated".into(),
                    },
                );
            }

            // User impact and safety are credited only when the incident was actually mitigated: resolving at
            // once without touching anything must not collect points for "breaking nothing".
            if mitigation > 0.0 {
                // A quarter of user requests failing over the episode loses it all.
                impact_c = (1.0 - impact / 0.25).clamp(0.0, 1.0);
                if impact_c < 1.0 {
                    lose(
                        "impact",
                        weights::IMPACT,
                        1.0 - impact_c,
                        "user_impact",
                        format!("{} of user requests failed after the page", pct(impact)),
                    );
                }
                safety = (1.0 - 0.5 * self.harmful.len() as f64).max(0.0);
                if !self.harmful.is_empty() {
                    lose(
                        "safety",
                        weights::SAFETY,
                        1.0 - safety,
                        "harmful_action",
                        self.harmful.join("; "),
                    );
                }
            } else {
                lose(
                    "impact",
                    weights::IMPACT,
                    1.0,
                    "not_mitigated",
                    "no credit for impact without mitigation".into(),
                );
                lose(
                    "safety",
                    weights::SAFETY,
                    1.0,
                    if self.harmful.is_empty() {
                        "not_mitigated"
                    } else {
                        "harmful_action"
                    },
                    if self.harmful.is_empty() {
                        "no credit for safety without mitigation".into()
                    } else {
                        self.harmful.join("; ")
                    },
                );
            }
        } else {
            lose(
                "diagnosis",
                weights::DIAGNOSIS,
                1.0,
                "not_resolved",
                "no diagnosis: the incident was never resolved".into(),
            );
            lose(
                "evidence",
                weights::EVIDENCE,
                1.0,
                "not_resolved",
                "no evidence cited".into(),
            );
            lose(
                "time",
                weights::TIME,
                1.0,
                "not_resolved",
                "the incident was never resolved".into(),
            );
            lose(
                "impact",
                weights::IMPACT,
                1.0,
                "not_resolved",
                "no credit for impact without a resolution".into(),
            );
            lose(
                "safety",
                weights::SAFETY,
                1.0,
                "not_resolved",
                "no credit for safety without a resolution".into(),
            );
        }
        let components = Components {
            mitigation: Component {
                fraction: mitigation,
                weight: weights::MITIGATION,
            },
            diagnosis: Component {
                fraction: diagnosis,
                weight: weights::DIAGNOSIS,
            },
            evidence: Component {
                fraction: evidence,
                weight: weights::EVIDENCE,
            },
            time: Component {
                fraction: time,
                weight: weights::TIME,
            },
            impact: Component {
                fraction: impact_c,
                weight: weights::IMPACT,
            },
            safety: Component {
                fraction: safety,
                weight: weights::SAFETY,
            },
        };
        let score = [
            components.mitigation,
            components.diagnosis,
            components.evidence,
            components.time,
            components.impact,
            components.safety,
        ]
        .iter()
        .map(Component::points)
        .sum::<f64>()
        .clamp(0.0, 1.0);
        Grade {
            score: (score * 1e6).round() / 1e6,
            success: resolved && mitigated && diagnosis_correct,
            resolved,
            mitigated,
            diagnosis_correct,
            minutes_to_mitigate,
            impact: (impact * 1e6).round() / 1e6,
            hallucinated_citations: hallucinated,
            harmful_actions: self.harmful.len() as u32,
            invalid_actions: self.invalid,
            components,
            lost,
        }
    }

    /// How many ground-truth evidence entries have been observed.
    pub fn discovered(&self) -> usize {
        self.discovered.iter().filter(|d| **d).count()
    }
}

/// Whether an observed fact shows a ground-truth evidence entry.
pub fn fact_matches(fact: FactRef<'_>, ev: &firedrill_scenario::instantiate::Evidence) -> bool {
    if fact.service != ev.service {
        return false;
    }
    match ev.kind {
        EvidenceKind::Metric => {
            fact.kind == FactKind::Metric
                && (fact.signal == ev.signal
                    || fact
                        .signal
                        .strip_prefix(ev.signal.as_str())
                        .is_some_and(|rest| rest.starts_with('_')))
        }
        EvidenceKind::Log => fact.kind == FactKind::Log && fact.signal == ev.signal,
        EvidenceKind::Change => {
            fact.kind == FactKind::Change
                && (fact.signal == ev.signal
                    || (ev.signal == "deploy" && fact.signal == "rollback"))
        }
        EvidenceKind::Trace => fact.kind == FactKind::Trace && fact.signal == "error_trace",
    }
}

/// Marks the entries of `truth` that `fact` shows and were not discovered yet, counting them in `newly`.
fn note(
    truth: &[firedrill_scenario::instantiate::Evidence],
    discovered: &mut [bool],
    newly: &mut u32,
    fact: FactRef<'_>,
) {
    for (seen, ev) in discovered.iter_mut().zip(truth) {
        if !*seen && fact_matches(fact, ev) {
            *seen = true;
            *newly += 1;
        }
    }
}

/// The version that ran before the latest deploy of a service, if any.
fn previous_version(w: &firedrill_world::World, id: ServiceId) -> Option<u8> {
    let current = w.service(id).version;
    for c in w.changes().iter().rev() {
        if c.service != id {
            continue;
        }
        if let firedrill_world::changes::ChangeKind::Deploy { from, to, .. } = c.kind
            && to == current
            && from != current
        {
            return Some(from);
        }
    }
    current.checked_sub(1)
}

/// Container restarts of a service over the last `minutes`.
fn restarts_in(w: &firedrill_world::World, id: ServiceId, minutes: u32) -> u32 {
    let ring = w.history();
    let back = (minutes as f64 * 60.0 / w.tick_s()) as u64;
    let end = ring.end_tick();
    let start = end.saturating_sub(back + 1).max(ring.first_tick());
    let now = ring
        .get(end.saturating_sub(1), id.index())
        .map(|f| f.restarts_total);
    let then = ring.get(start, id.index()).map(|f| f.restarts_total);
    match (now, then) {
        (Some(a), Some(b)) => a.saturating_sub(b),
        _ => 0,
    }
}

/// A series over a window as the agent sees it: first, last, extremes and up to [`SUMMARY_POINTS`] evenly
/// spaced points in minutes since the page. `points` is not empty.
fn summarise(
    id: String,
    metric: String,
    labels: Vec<(String, String)>,
    unit: String,
    points: &[(i64, f64)],
    page_ms: i64,
) -> MetricSummary {
    let n = points.len();
    let picks = SUMMARY_POINTS.min(n);
    let values = points.iter().map(|p| p.1);
    MetricSummary {
        id,
        metric,
        labels,
        unit,
        first: round_sig(points[0].1),
        last: round_sig(points[n - 1].1),
        min: round_sig(values.clone().fold(f64::INFINITY, f64::min)),
        max: round_sig(values.fold(f64::NEG_INFINITY, f64::max)),
        points: (0..picks)
            .map(|k| {
                let i = if picks == 1 {
                    n - 1
                } else {
                    k * (n - 1) / (picks - 1)
                };
                (
                    minutes_of((points[i].0 - page_ms) as f64 / 1000.0),
                    round_sig(points[i].1),
                )
            })
            .collect(),
    }
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn round_sig(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let mag = 10f64.powi(5 - v.abs().log10().ceil() as i32);
    (v * mag).round() / mag
}

fn dedup(names: impl Iterator<Item = String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    names.filter(|n| seen.insert(n.clone())).collect()
}
