//! The oracle reads the ground truth: it applies the intended remediation at once, collects an observation for
//! every proof the ground truth names, waits until the mitigated state has held for the sustain window, and
//! resolves with the true diagnosis. It is the upper bound of the score and the check that every instance is
//! solvable with the actions agents have.

use firedrill_env::action::{
    ConfigParams, DeploysParams, LevelFilter, LogsParams, MetricsParams, ResolveParams,
    RestartParams, RollbackParams, ScaleParams, TracesParams, WaitParams,
};
use firedrill_env::env::fact_matches;
use firedrill_env::{Action, Episode, Observation};
use firedrill_scenario::model::EvidenceKind;
use firedrill_world::{FaultClass, Operation};

use crate::PrivilegedAgent;
use crate::heuristic::evidence_ids;

/// See the module documentation.
#[derive(Default)]
pub struct Oracle {
    plan: Option<Vec<Action>>,
    next: usize,
    seen: Vec<String>,
}

fn plan(ep: &Episode) -> Vec<Action> {
    let inst = ep.incident().instance();
    let topo = &inst.topology;
    let name = |id: firedrill_world::ServiceId| topo.service(id).name().to_string();
    let mut actions = Vec::new();
    for op in &inst.truth.remediation {
        actions.push(match op {
            Operation::Restart {
                service,
                memory_mb,
                cpu_millis,
            } => Action::RestartService(RestartParams {
                service: name(*service),
                memory_mb: *memory_mb,
                cpu_millis: *cpu_millis,
            }),
            Operation::Scale { service, replicas } => Action::ScaleService(ScaleParams {
                service: name(*service),
                replicas: *replicas,
            }),
            Operation::Deploy { service, version } => Action::RollbackDeploy(RollbackParams {
                service: name(*service),
                version: topo
                    .service(*service)
                    .spec
                    .versions
                    .get(*version as usize)
                    .map(|v| v.name.clone()),
            }),
            Operation::SetConfig {
                service,
                key,
                value,
            } => Action::UpdateConfig(ConfigParams {
                service: name(*service),
                key: key.clone(),
                value: value.clone(),
            }),
            // The basic library's remediations are all expressible with basic actions; anything else is waited
            // out (and the validity test would show the oracle failing).
            _ => Action::Wait(WaitParams { minutes: 1.0 }),
        });
    }
    if inst.truth.evidence.is_empty() {
        // Nothing to prove but that the system is fine: look at the alerted services.
        for a in ep.incident().alerts().active() {
            if let Some(service) = a.labels.get("service") {
                actions.push(Action::QueryMetrics(MetricsParams {
                    service: service.clone(),
                    window_minutes: Some(15),
                }));
            }
        }
    }
    for ev in &inst.truth.evidence {
        let service = ev.service.clone();
        actions.push(match ev.kind {
            EvidenceKind::Metric => Action::QueryMetrics(MetricsParams {
                service,
                window_minutes: Some(60),
            }),
            EvidenceKind::Log => Action::QueryLogs(LogsParams {
                service,
                window_minutes: Some(30),
                level: Some(LevelFilter::Debug),
                limit: Some(500),
            }),
            EvidenceKind::Change => Action::QueryDeploys(DeploysParams {
                service: Some(service),
            }),
            EvidenceKind::Trace => Action::QueryTraces(TracesParams {
                service,
                window_minutes: Some(30),
                errors_only: true,
            }),
        });
    }
    actions
}

impl PrivilegedAgent for Oracle {
    fn act(&mut self, obs: &Observation, ep: &Episode) -> Action {
        self.seen.extend(evidence_ids(obs));
        let plan = self.plan.get_or_insert_with(|| plan(ep));
        if let Some(a) = plan.get(self.next) {
            self.next += 1;
            return a.clone();
        }
        let inc = ep.incident();
        let left_min = (inc.deadline_s() - inc.world().now_s()) / 60.0;
        if !inc.mitigated() && left_min > 1.0 {
            return Action::Wait(WaitParams { minutes: 1.0 });
        }
        let inst = inc.instance();
        let truth = &inst.truth;
        // Cite exactly the observations that show a proof.
        let mut unique = std::collections::BTreeSet::new();
        let mut cited: Vec<String> = self
            .seen
            .iter()
            .filter(|id| unique.insert(id.as_str()))
            .filter(|id| {
                ep.ledger()
                    .get(id)
                    .is_some_and(|f| truth.evidence.iter().any(|ev| fact_matches(f.view(), ev)))
            })
            .cloned()
            .collect();
        if truth.evidence.is_empty() {
            cited.extend(self.seen.first().cloned());
        }
        let causes = inst.root_causes();
        Action::ResolveIncident(ResolveParams {
            root_causes: causes.iter().map(|c| c.service.clone()).collect(),
            fault_class: causes
                .first()
                .map(|c| c.fault_class)
                .unwrap_or(FaultClass::NoFault),
            evidence: cited,
            remediation: "intended remediation".into(),
            summary: "oracle".into(),
        })
    }
}
