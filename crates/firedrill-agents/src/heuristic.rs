//! The heuristic investigator: an honest agent that works like an on-call engineer, with no access to the ground
//! truth.
//!
//! 1. Reads the page and the change history.
//! 2. Walks the dependency graph from the first alerted service: a connectivity check on each service names the
//!    dependencies that fail; it follows a failing dependency until it reaches a service whose dependencies are
//!    fine, or a failure that points at one place (a TLS handshake, a name that does not resolve, a pool whose
//!    connections time out).
//! 3. Reads the suspect's warning logs, health and description, and matches signatures: `oom_killed`,
//!    `pool_timeout`, `no_space_left`, `dns_resolution`, `tls_handshake`, `rate_limited`, and `lock_waits` on a
//!    database, correlated with recent changes (a deploy, a resources change, a config push).
//! 4. Applies the fitting remediation (roll back a bad deploy, restart with more memory, revert a config key,
//!    restart to load a renewed certificate, scale out under a rate limit), reads the metrics that show the cause,
//!    watches a rollback's rollout until every pod runs the good version, waits until the alerts clear and stay
//!    clear, and resolves citing what it saw.
//! 5. Doubts itself: a service that raises a new alert after it was examined is examined again, and when another
//!    service keeps alerting minutes after the remediation, the investigation starts over from it (at most twice).
//!
//! If nothing is wrong any more and no signature shows, it resolves `no_fault` without touching anything.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use firedrill_env::action::{
    ConfigParams, DeploysParams, DiagnosticCheck, DiagnosticParams, LevelFilter, LogsParams,
    MetricsParams, ResolveParams, RestartParams, RollbackParams, ScaleParams, ServiceParams,
    WaitParams,
};
use firedrill_env::observation::{ChangeEntry, Content};
use firedrill_env::{Action, Observation};
use firedrill_world::FaultClass;

use crate::Agent;

/// Every evidence id an observation carries.
pub fn evidence_ids(obs: &Observation) -> Vec<String> {
    match &obs.content {
        Content::Service(d) => vec![d.id.clone()],
        Content::Metrics { series, .. } => series.iter().map(|s| s.id.clone()).collect(),
        Content::Logs { lines, .. } => lines.iter().map(|l| l.id.clone()).collect(),
        Content::Traces { traces, .. } => traces.iter().map(|t| t.id.clone()).collect(),
        Content::Diagnostic { id, .. } => vec![id.clone()],
        Content::Changes { changes, .. } => changes.iter().map(|c| c.id.clone()).collect(),
        _ => Vec::new(),
    }
}

/// Where the investigation stands.
#[derive(Debug, Clone, PartialEq)]
enum Stage {
    Start,
    /// Waiting for the connectivity check of this service.
    Walk(String),
    /// Waiting for the suspect's logs, health and description (and the database's logs).
    Signature {
        suspect: String,
        database: Option<String>,
        tls_peer: bool,
    },
    /// Remediation issued; waiting for the alerts to clear and stay clear.
    Verify,
    Done,
}

/// Minutes the alerts must stay clear before resolving.
const QUIET_MINUTES: f64 = 6.0;

/// Minutes after a remediation (and its rollout) that alerts elsewhere may take to clear before the diagnosis is
/// doubted: error-rate alerts average over five minutes, so a cascade takes a few minutes to drain.
const PATIENCE_MINUTES: f64 = 8.0;

/// Times the heuristic starts over from a service that keeps alerting after its remediation.
const SECOND_LOOKS: u32 = 2;

/// See the module documentation.
pub struct Heuristic {
    stage: Stage,
    pending: VecDeque<Action>,
    calls: BTreeMap<String, Vec<String>>,
    /// Depth of each service in the call graph (see [`depths`]), from the page.
    depth: BTreeMap<String, usize>,
    alerted: Vec<String>,
    changes: Vec<ChangeEntry>,
    visited: BTreeSet<String>,
    /// Log events seen per service, with the ids of their lines.
    events: BTreeMap<(String, String), Vec<String>>,
    /// Metric series ids per (service, metric).
    metrics: BTreeMap<(String, String), Vec<String>>,
    health: BTreeMap<String, (String, Vec<String>, String)>,
    described: BTreeMap<String, (u32, u32)>,
    diagnosis: Option<(Vec<String>, FaultClass, String)>,
    /// Ids to cite besides the signature lines and metrics.
    cite: Vec<String>,
    clear_since: Option<f64>,
    /// Alerted services still to walk from, deepest first.
    starts: VecDeque<String>,
    /// Volume use per service, from resources checks.
    volume_full: BTreeMap<String, f64>,
    /// Whether a rate-limit signature was checked again after a few minutes.
    rechecked: bool,
    /// Alerts seen so far, as (alert name, service).
    seen_alerts: BTreeSet<(String, String)>,
    /// Services already examined that raised an alert they had not raised before: look at them again before
    /// calling the incident over.
    reexamine: VecDeque<String>,
    /// How often the database's lock-wait lines named each application as the one holding the lock.
    lock_holders: BTreeMap<String, usize>,
    /// Per service, whether its last description showed every pod on the version its deployment targets.
    rolled_out: BTreeMap<String, bool>,
    /// A service rolled back whose rollout must finish before the alerts' quiet time counts: alerts that cleared
    /// while the bad pods still served say nothing about the fix.
    awaiting_rollout: Option<String>,
    /// When verification began (after the remediation and its rollout).
    verify_from: Option<f64>,
    /// Times the investigation started over because alerts outlived a remediation.
    second_looks: u32,
}

impl Default for Heuristic {
    fn default() -> Self {
        Heuristic {
            stage: Stage::Start,
            pending: VecDeque::new(),
            calls: BTreeMap::new(),
            depth: BTreeMap::new(),
            alerted: Vec::new(),
            changes: Vec::new(),
            visited: BTreeSet::new(),
            events: BTreeMap::new(),
            metrics: BTreeMap::new(),
            health: BTreeMap::new(),
            described: BTreeMap::new(),
            diagnosis: None,
            cite: Vec::new(),
            clear_since: None,
            starts: VecDeque::new(),
            volume_full: BTreeMap::new(),
            rechecked: false,
            seen_alerts: BTreeSet::new(),
            reexamine: VecDeque::new(),
            lock_holders: BTreeMap::new(),
            rolled_out: BTreeMap::new(),
            awaiting_rollout: None,
            verify_from: None,
            second_looks: 0,
        }
    }
}

fn connectivity(service: &str) -> Action {
    Action::RunDiagnostic(DiagnosticParams {
        service: service.to_string(),
        check: DiagnosticCheck::Connectivity,
    })
}

fn warn_logs(service: &str) -> Action {
    Action::QueryLogs(LogsParams {
        service: service.to_string(),
        window_minutes: Some(20),
        level: Some(LevelFilter::Warn),
        limit: Some(200),
    })
}

fn metrics(service: &str) -> Action {
    Action::QueryMetrics(MetricsParams {
        service: service.to_string(),
        window_minutes: Some(60),
    })
}

impl Heuristic {
    fn absorb(&mut self, obs: &Observation) {
        match &obs.content {
            Content::Page(p) => {
                for s in &p.services {
                    self.calls.insert(s.name.clone(), s.calls.clone());
                }
                self.depth = depths(&self.calls);
                if let Some(alerts) = p.alertmanager["alerts"].as_array() {
                    for a in alerts {
                        if let Some(s) = a["labels"]["service"].as_str()
                            && !self.alerted.iter().any(|x| x == s)
                        {
                            self.alerted.push(s.to_string());
                        }
                    }
                }
            }
            Content::Changes { changes, .. } => {
                self.changes = changes.clone();
            }
            Content::Logs { service, lines, .. } => {
                for l in lines {
                    if l.event == "lock_waits"
                        && let Some((_, rest)) = l.message.split_once("application_name=")
                    {
                        let holder = rest.split(')').next().unwrap_or(rest);
                        *self.lock_holders.entry(holder.to_string()).or_default() += 1;
                    }
                    self.events
                        .entry((service.clone(), l.event.clone()))
                        .or_default()
                        .push(l.id.clone());
                }
            }
            Content::Metrics {
                service, series, ..
            } => {
                for m in series {
                    self.metrics
                        .entry((service.clone(), m.metric.clone()))
                        .or_default()
                        .push(m.id.clone());
                }
            }
            Content::Diagnostic {
                service,
                check,
                id,
                status,
                findings,
            } if check == "health" => {
                self.health.insert(
                    service.clone(),
                    (status.clone(), findings.clone(), id.clone()),
                );
            }
            Content::Diagnostic {
                service,
                check,
                findings,
                ..
            } if check == "resources" => {
                for f in findings {
                    if let Some(rest) = f.strip_prefix("volume /data: ")
                        && let Some(p) = rest
                            .rsplit_once('(')
                            .and_then(|(_, p)| p.strip_suffix("%)"))
                        && let Ok(p) = p.parse::<f64>()
                    {
                        self.volume_full.insert(service.clone(), p / 100.0);
                    }
                }
            }
            Content::Service(d) => {
                self.described
                    .insert(d.name.clone(), (d.memory_limit_mb, d.replicas_desired));
                self.rolled_out.insert(
                    d.name.clone(),
                    d.pods.iter().all(|(version, _)| *version == d.version),
                );
            }
            _ => {}
        }
    }

    /// Recent changes (before the page, by someone other than the on-call) to a service, newest first.
    fn recent(&self, service: &str, kinds: &[&str]) -> Vec<&ChangeEntry> {
        let mut v: Vec<&ChangeEntry> = self
            .changes
            .iter()
            .filter(|c| {
                c.service == service
                    && c.actor != "oncall"
                    && c.minutes <= 0.0
                    && c.minutes > -120.0
                    && kinds.contains(&c.kind.as_str())
            })
            .collect();
        v.sort_by(|a, b| b.minutes.total_cmp(&a.minutes));
        v
    }

    fn has_event(&self, service: &str, event: &str) -> bool {
        self.events
            .get(&(service.to_string(), event.to_string()))
            .is_some_and(|v| !v.is_empty())
    }

    fn event_ids(&self, service: &str, event: &str, n: usize) -> Vec<String> {
        self.events
            .get(&(service.to_string(), event.to_string()))
            .map(|v| v.iter().rev().take(n).cloned().collect())
            .unwrap_or_default()
    }

    /// Handles a connectivity result during the walk: the next service to check, or the suspect.
    fn walk(&mut self, obs: &Observation) {
        let Content::Diagnostic {
            service, findings, ..
        } = &obs.content
        else {
            return;
        };
        let service = service.clone();
        let mut next = None;
        for f in findings {
            let Some((dep, verdict)) = f.split_once(": ") else {
                continue;
            };
            if !self.calls.contains_key(dep) {
                continue;
            }
            if verdict.contains("TLS handshake failing") {
                self.stage = Stage::Signature {
                    suspect: dep.to_string(),
                    database: None,
                    tls_peer: true,
                };
                return self.read_signature();
            }
            if verdict.contains("name does not resolve") || verdict.starts_with("unreachable") {
                return self.suspect(service, None);
            }
            if verdict.contains("pooled connection") {
                return self.suspect(service, Some(dep.to_string()));
            }
            if verdict != "reachable" && next.is_none() && !self.visited.contains(dep) {
                next = Some(dep.to_string());
            }
        }
        match next {
            Some(dep) => {
                self.visited.insert(dep.clone());
                self.stage = Stage::Walk(dep.clone());
                self.pending.push_back(connectivity(&dep));
            }
            None => self.suspect(service, None),
        }
    }

    fn suspect(&mut self, suspect: String, database: Option<String>) {
        self.stage = Stage::Signature {
            suspect,
            database,
            tls_peer: false,
        };
        self.read_signature();
    }

    fn read_signature(&mut self) {
        let Stage::Signature {
            suspect, database, ..
        } = &self.stage
        else {
            return;
        };
        self.pending.push_back(warn_logs(suspect));
        self.pending
            .push_back(Action::RunDiagnostic(DiagnosticParams {
                service: suspect.clone(),
                check: DiagnosticCheck::Health,
            }));
        self.pending
            .push_back(Action::DescribeService(ServiceParams {
                service: suspect.clone(),
            }));
        self.pending
            .push_back(Action::RunDiagnostic(DiagnosticParams {
                service: suspect.clone(),
                check: DiagnosticCheck::Resources,
            }));
        if let Some(db) = database {
            self.pending.push_back(warn_logs(db));
        }
    }

    /// Matches signatures and plans the remediation and the confirming reads.
    fn decide(&mut self) {
        let Stage::Signature {
            suspect,
            database,
            tls_peer,
        } = self.stage.clone()
        else {
            return;
        };
        let s = suspect.as_str();
        let mut plan: Vec<Action> = Vec::new();
        let mut proof_metric: Option<(String, &str)> = None;
        let (class, roots, signature_ids, remediation): (
            FaultClass,
            Vec<String>,
            Vec<String>,
            String,
        );
        let recent_deploy = self.recent(s, &["deploy"]).first().map(|c| c.id.clone());
        if let Some(db) = database.as_deref().filter(|db| {
            // Lock waits show in the database's log, or in its clients' logs when the database's newest lines are
            // all cancelled statements.
            self.has_event(db, "lock_waits")
                || self.has_event(db, "lock_timeout")
                || !self.lock_holders.is_empty()
        }) {
            // A database with lock waits: the client its lock-wait lines name most often as holding the lock,
            // and that client's newest deploy; without a name, the newest deploy among its callers.
            let holder = self
                .lock_holders
                .iter()
                .filter(|(h, _)| {
                    self.calls
                        .get(*h)
                        .is_some_and(|cs| cs.iter().any(|x| x == db))
                })
                .max_by_key(|(_, n)| **n)
                .map(|(h, _)| h.clone());
            let culprit = self
                .changes
                .iter()
                .filter(|c| {
                    c.kind == "deploy"
                        && c.actor != "oncall"
                        && c.minutes <= 0.0
                        && c.minutes > -120.0
                        && match &holder {
                            Some(h) => c.service == *h,
                            None => self
                                .calls
                                .get(&c.service)
                                .is_some_and(|cs| cs.iter().any(|x| x == db)),
                        }
                })
                .max_by(|a, b| a.minutes.total_cmp(&b.minutes))
                .cloned();
            let root = culprit
                .as_ref()
                .map(|c| c.service.clone())
                .or(holder)
                .unwrap_or_else(|| s.to_string());
            if let Some(c) = &culprit {
                self.cite.push(c.id.clone());
            }
            plan.push(rollback(&root));
            proof_metric = Some((db.to_string(), "pg_lock_wait_seconds"));
            class = FaultClass::LockContention;
            signature_ids = [
                self.event_ids(db, "lock_waits", 3),
                self.event_ids(s, "lock_waits", 3),
                self.event_ids(db, "lock_timeout", 2),
            ]
            .concat();
            remediation = format!("rolled back {root}");
            roots = vec![root];
        } else if tls_peer || self.has_event(s, "tls_handshake") {
            plan.push(restart(s, None));
            proof_metric = Some((s.to_string(), "probe_ssl_earliest_cert_expiry"));
            class = FaultClass::CertificateExpiry;
            signature_ids = self.event_ids(s, "tls_handshake", 3);
            remediation = format!("restarted {s} to load the renewed certificate");
            roots = vec![s.to_string()];
        } else if self.has_event(s, "oom_killed")
            || self.health_mentions(s, "OOMKilled") && self.recent_restarts(s)
        {
            let resources = self.recent(s, &["resources"]).first().map(|c| c.id.clone());
            if let (None, Some(deploy)) = (&resources, &recent_deploy) {
                self.cite.push(deploy.clone());
                plan.push(rollback(s));
                proof_metric = Some((s.to_string(), "container_cpu_usage_seconds_total"));
                class = FaultClass::BadDeploy;
                remediation = format!("rolled back {s}");
            } else {
                self.cite.extend(resources);
                let limit = self.described.get(s).map(|d| d.0).unwrap_or(256);
                plan.push(restart(s, Some((limit * 2).clamp(64, 65_536))));
                proof_metric = Some((s.to_string(), "container_memory_working_set_bytes"));
                class = FaultClass::MemoryLeakOom;
                remediation = format!("restarted {s} with twice the memory limit");
            }
            signature_ids = self.event_ids(s, "oom_killed", 3);
            roots = vec![s.to_string()];
        } else if self.has_event(s, "pool_timeout") {
            match &recent_deploy {
                Some(d) => {
                    self.cite.push(d.clone());
                    plan.push(rollback(s));
                }
                None => plan.push(restart(s, None)),
            }
            proof_metric = Some((s.to_string(), "db_client_connections_in_use"));
            class = FaultClass::ConnectionPoolExhaustion;
            signature_ids = self.event_ids(s, "pool_timeout", 3);
            remediation = format!("rolled back {s}");
            roots = vec![s.to_string()];
        } else if self.has_event(s, "no_space_left")
            || self.volume_full.get(s).is_some_and(|f| *f > 0.9)
        {
            let configs: Vec<ChangeEntry> =
                self.recent(s, &["config"]).into_iter().cloned().collect();
            for c in &configs {
                self.cite.push(c.id.clone());
                if let Some((key, old)) = config_change(c)
                    && !key.starts_with("log.retention")
                {
                    plan.push(set_config(s, &key, &old));
                }
            }
            plan.push(set_config(s, "log.retention_minutes", "10"));
            proof_metric = Some((s.to_string(), "node_filesystem_avail_bytes"));
            class = FaultClass::DiskFull;
            signature_ids = self.event_ids(s, "no_space_left", 3);
            remediation = format!("reverted the logging change on {s} and shortened log retention");
            roots = vec![s.to_string()];
        } else if self.has_event(s, "dns_resolution") {
            let change = self
                .recent(s, &["config"])
                .into_iter()
                .find(|c| c.summary.contains("dns."))
                .cloned();
            let (key, old) = change
                .as_ref()
                .and_then(config_change)
                .unwrap_or_else(|| ("dns.resolver".into(), "(unset)".into()));
            let old = if old == "(unset)" {
                "10.96.0.10".to_string()
            } else {
                old
            };
            if let Some(c) = change {
                self.cite.push(c.id.clone());
            }
            plan.push(set_config(s, &key, &old));
            class = FaultClass::DnsFailure;
            signature_ids = self.event_ids(s, "dns_resolution", 3);
            remediation = format!("restored {key} on {s}");
            roots = vec![s.to_string()];
        } else if self.has_event(s, "rate_limited") && !self.rechecked {
            // A burst of traffic passes on its own: look again before scaling anything.
            self.rechecked = true;
            self.pending
                .push_back(Action::Wait(WaitParams { minutes: 3.0 }));
            self.pending
                .push_back(Action::RunDiagnostic(DiagnosticParams {
                    service: s.to_string(),
                    check: DiagnosticCheck::Health,
                }));
            return;
        } else if self.has_event(s, "rate_limited")
            && self.health.get(s).is_none_or(|h| h.0 != "ok")
        {
            let replicas = self.described.get(s).map(|d| d.1).unwrap_or(2);
            plan.push(Action::ScaleService(ScaleParams {
                service: s.to_string(),
                replicas: (replicas * 2).clamp(1, 16),
            }));
            proof_metric = Some((s.to_string(), "http_requests_total"));
            class = FaultClass::RateLimitExhaustion;
            signature_ids = self.event_ids(s, "rate_limited", 3);
            remediation = format!("scaled {s} out");
            roots = vec![s.to_string()];
        } else if let Some(d) = self
            .recent(s, &["deploy"])
            .first()
            .filter(|c| c.minutes > -15.0 && !self.rechecked)
            .map(|c| c.id.clone())
        {
            // An alerted service deployed minutes before the page: the deploy is the prime suspect even when its
            // pods look fine at this instant.
            self.cite.push(d);
            plan.push(rollback(s));
            proof_metric = Some((s.to_string(), "container_cpu_usage_seconds_total"));
            class = FaultClass::BadDeploy;
            signature_ids = self.event_ids(s, "oom_killed", 2);
            remediation = format!("rolled back {s}");
            roots = vec![s.to_string()];
        } else if self.health.get(s).is_some_and(|h| h.0 == "ok")
            && let Some(next) = self.reexamine.pop_front()
        {
            // Nothing here, but a service examined before has raised a new alert since: look at it again.
            self.suspect(next, None);
            return;
        } else if self.health.get(s).is_some_and(|h| h.0 == "ok") && !self.starts.is_empty() {
            // Nothing here: walk again from the next alerted service.
            let next = self.starts.pop_front().unwrap_or_default();
            self.visited.insert(next.clone());
            self.stage = Stage::Walk(next.clone());
            self.pending.push_back(connectivity(&next));
            return;
        } else if self.health.get(s).is_some_and(|h| h.0 == "ok") {
            class = FaultClass::NoFault;
            signature_ids = self
                .health
                .get(s)
                .map(|h| vec![h.2.clone()])
                .unwrap_or_default();
            remediation = "none: the system recovered on its own".into();
            roots = Vec::new();
            proof_metric = Some((s.to_string(), "http_requests_total"));
        } else if let Some(d) = &recent_deploy {
            self.cite.push(d.clone());
            plan.push(rollback(s));
            proof_metric = Some((s.to_string(), "container_cpu_usage_seconds_total"));
            class = FaultClass::BadDeploy;
            signature_ids = self
                .health
                .get(s)
                .map(|h| vec![h.2.clone()])
                .unwrap_or_default();
            remediation = format!("rolled back {s}");
            roots = vec![s.to_string()];
        } else {
            plan.push(restart(s, None));
            class = FaultClass::BadDeploy;
            signature_ids = self
                .health
                .get(s)
                .map(|h| vec![h.2.clone()])
                .unwrap_or_default();
            remediation = format!("restarted {s}");
            roots = vec![s.to_string()];
        }
        self.cite.extend(signature_ids);
        if let Some(Action::RollbackDeploy(p)) =
            plan.iter().find(|a| matches!(a, Action::RollbackDeploy(_)))
        {
            // Descriptions read before the rollback show the old rollout finished: forget them.
            self.rolled_out.remove(&p.service);
            self.awaiting_rollout = Some(p.service.clone());
        }
        if let Some((service, metric)) = proof_metric {
            plan.push(metrics(&service));
            self.cite.push(format!("metric:{service}:{metric}"));
        }
        self.pending.extend(plan);
        self.diagnosis = Some((roots, class, remediation));
        self.stage = Stage::Verify;
    }

    /// A service that starts alerting during the investigation joins the services to walk from, in depth order:
    /// a fault deep in the graph often pages at the edge first and reaches its own alerts minutes later.
    ///
    /// A service already examined that raises an alert it had not raised before (a pod that starts crash-looping
    /// after its health looked fine) is queued to be examined again.
    fn note_new_alerts(&mut self, obs: &Observation) {
        let start = self.stage == Stage::Start;
        for a in &obs.firing_alerts {
            let s = &a.service;
            if !self.seen_alerts.insert((a.name.clone(), s.clone())) || start {
                // At the start the walk's starting points are chosen from every alerted service.
                continue;
            }
            if !self.calls.contains_key(s) {
                continue;
            }
            if self.alerted.contains(s) {
                if self.visited.contains(s) && !self.reexamine.contains(s) {
                    self.reexamine.push_back(s.clone());
                }
                continue;
            }
            self.alerted.push(s.clone());
            if self.visited.contains(s) {
                continue;
            }
            let d = self.depth_of(s);
            let at = self
                .starts
                .iter()
                .position(|x| self.depth_of(x) < d)
                .unwrap_or(self.starts.len());
            self.starts.insert(at, s.clone());
        }
    }

    fn depth_of(&self, service: &str) -> usize {
        self.depth.get(service).copied().unwrap_or(0)
    }

    /// The deepest service alerting now that the current diagnosis does not blame.
    fn still_alerting(&self, obs: &Observation) -> Option<String> {
        let blamed: &[String] = self.diagnosis.as_ref().map_or(&[], |d| &d.0);
        let mut best: Option<(&String, usize)> = None;
        for a in &obs.firing_alerts {
            let s = &a.service;
            if blamed.contains(s) || !self.calls.contains_key(s) {
                continue;
            }
            let d = self.depth_of(s);
            if best.is_none_or(|(_, bd)| d > bd) {
                best = Some((s, d));
            }
        }
        best.map(|(s, _)| s.clone())
    }

    fn health_mentions(&self, service: &str, text: &str) -> bool {
        self.health
            .get(service)
            .is_some_and(|h| h.1.iter().any(|f| f.contains(text)))
    }

    fn recent_restarts(&self, service: &str) -> bool {
        self.health.get(service).is_some_and(|h| {
            h.1.iter().any(|f| {
                f.starts_with("container restarts:") && !f.starts_with("container restarts: 0 ")
            })
        })
    }

    fn resolve(&mut self) -> Action {
        self.stage = Stage::Done;
        let (roots, class, remediation) =
            self.diagnosis
                .clone()
                .unwrap_or((Vec::new(), FaultClass::NoFault, String::new()));
        let mut evidence = Vec::new();
        for c in &self.cite {
            if let Some(rest) = c.strip_prefix("metric:") {
                if let Some((service, metric)) = rest.split_once(':')
                    && let Some(ids) = self.metrics.get(&(service.to_string(), metric.to_string()))
                {
                    evidence.extend(ids.iter().take(2).cloned());
                }
            } else {
                evidence.push(c.clone());
            }
        }
        let mut seen = BTreeSet::new();
        evidence.retain(|e| seen.insert(e.clone()));
        Action::ResolveIncident(ResolveParams {
            summary: format!(
                "{} on {}; {}",
                class.as_str(),
                if roots.is_empty() {
                    "no service".to_string()
                } else {
                    roots.join(", ")
                },
                remediation
            ),
            root_causes: roots,
            fault_class: class,
            evidence,
            remediation,
        })
    }
}

fn rollback(service: &str) -> Action {
    Action::RollbackDeploy(RollbackParams {
        service: service.to_string(),
        version: None,
    })
}

fn restart(service: &str, memory_mb: Option<u32>) -> Action {
    Action::RestartService(RestartParams {
        service: service.to_string(),
        memory_mb,
        cpu_millis: None,
    })
}

fn set_config(service: &str, key: &str, value: &str) -> Action {
    Action::UpdateConfig(ConfigParams {
        service: service.to_string(),
        key: key.to_string(),
        value: value.to_string(),
    })
}

/// Depth of each service in the call graph: the longest chain of callers above it.
fn depths(calls: &BTreeMap<String, Vec<String>>) -> BTreeMap<String, usize> {
    let mut depth: BTreeMap<String, usize> = calls.keys().map(|k| (k.clone(), 0)).collect();
    // Relaxation bounded by the service count: the graph is acyclic, and a cycle would only stop early.
    for _ in 0..calls.len() {
        let mut changed = false;
        for (caller, callees) in calls {
            let d = depth.get(caller).copied().unwrap_or(0) + 1;
            for c in callees {
                if let Some(x) = depth.get_mut(c)
                    && *x < d
                {
                    *x = d;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    depth
}

/// `set KEY on SERVICE: OLD -> NEW` → (KEY, OLD).
fn config_change(c: &ChangeEntry) -> Option<(String, String)> {
    let rest = c.summary.strip_prefix("set ")?;
    let (key, rest) = rest.split_once(" on ")?;
    let (_, values) = rest.split_once(": ")?;
    let (old, _) = values.split_once(" -> ")?;
    Some((key.to_string(), old.to_string()))
}

impl Agent for Heuristic {
    fn act(&mut self, obs: &Observation) -> Action {
        self.absorb(obs);
        self.note_new_alerts(obs);
        if matches!(self.stage, Stage::Walk(_)) && matches!(obs.content, Content::Diagnostic { .. })
        {
            self.walk(obs);
        }
        if let Some(a) = self.pending.pop_front() {
            return a;
        }
        match self.stage.clone() {
            Stage::Start => {
                let mut alerted = self.alerted.clone();
                // Stable sort: deepest first, page order among equals.
                alerted.sort_by_key(|a| std::cmp::Reverse(self.depth_of(a)));
                self.starts = alerted.into_iter().collect();
                let first = self
                    .starts
                    .pop_front()
                    .or_else(|| self.calls.keys().next().cloned())
                    .unwrap_or_default();
                self.visited.insert(first.clone());
                self.stage = Stage::Walk(first.clone());
                self.pending
                    .push_back(Action::QueryDeploys(DeploysParams { service: None }));
                self.pending.push_back(connectivity(&first));
                self.pending.pop_front().unwrap_or(Action::ListServices)
            }
            Stage::Walk(s) => {
                // The connectivity result did not arrive (an error observation): treat the service as the suspect.
                self.suspect(s, None);
                self.pending.pop_front().unwrap_or(Action::ListServices)
            }
            Stage::Signature { .. } => {
                self.decide();
                self.pending
                    .pop_front()
                    .unwrap_or(Action::Wait(WaitParams { minutes: 1.0 }))
            }
            Stage::Verify => {
                let now = obs.minutes_since_page;
                if obs.budget_left_minutes <= 2.0 {
                    return self.resolve();
                }
                if let Some(s) = self.awaiting_rollout.clone() {
                    // Like `kubectl rollout status`: describe the service until every pod runs the good version.
                    if self.rolled_out.get(&s) != Some(&true) {
                        return Action::DescribeService(ServiceParams { service: s });
                    }
                    self.awaiting_rollout = None;
                    self.clear_since = None;
                    self.verify_from = None;
                }
                if self
                    .diagnosis
                    .as_ref()
                    .is_some_and(|d| d.1 == FaultClass::NoFault)
                    && let Some(next) = self.reexamine.pop_front()
                {
                    // "Recovered on its own" does not survive a new alert: examine its service again.
                    self.diagnosis = None;
                    self.cite.clear();
                    self.clear_since = None;
                    self.suspect(next, None);
                    return self
                        .pending
                        .pop_front()
                        .unwrap_or(Action::Wait(WaitParams { minutes: 1.0 }));
                }
                let from = *self.verify_from.get_or_insert(now);
                if !obs.firing_alerts.is_empty()
                    && now - from >= PATIENCE_MINUTES
                    && self.second_looks < SECOND_LOOKS
                    && let Some(next) = self.still_alerting(obs)
                {
                    // The fix did not end the incident: a service other than the one blamed keeps alerting. Start
                    // over from it, as an engineer whose first theory failed would.
                    self.second_looks += 1;
                    self.diagnosis = None;
                    self.cite.clear();
                    self.clear_since = None;
                    self.verify_from = None;
                    if self.visited.contains(&next) {
                        self.suspect(next, None);
                    } else {
                        self.visited.insert(next.clone());
                        self.stage = Stage::Walk(next.clone());
                        self.pending.push_back(connectivity(&next));
                    }
                    return self
                        .pending
                        .pop_front()
                        .unwrap_or(Action::Wait(WaitParams { minutes: 1.0 }));
                }
                if obs.firing_alerts.is_empty() {
                    let since = *self.clear_since.get_or_insert(now);
                    if now - since >= QUIET_MINUTES {
                        return self.resolve();
                    }
                } else {
                    self.clear_since = None;
                }
                Action::Wait(WaitParams { minutes: 1.0 })
            }
            Stage::Done => self.resolve(),
        }
    }
}
