//! The simple baselines: each stands for a way an agent can look busy or lucky without doing the job. The
//! validity tests check that none of them scores well.

use firedrill_env::action::{
    DiagnosticCheck, DiagnosticParams, LevelFilter, LogsParams, MetricsParams, ResolveParams,
    RestartParams, RollbackParams, ScaleParams, ServiceParams, TracesParams, WaitParams,
};
use firedrill_env::{Action, Observation};
use firedrill_world::FaultClass;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

use crate::{Agent, page_services};

fn wait(minutes: f64) -> Action {
    Action::Wait(WaitParams { minutes })
}

/// Waits until the budget ends.
pub struct Noop;

impl Agent for Noop {
    fn act(&mut self, _: &Observation) -> Action {
        wait(5.0)
    }
}

/// Restarts every service once, then waits.
#[derive(Default)]
pub struct RestartAll {
    services: Option<Vec<String>>,
    next: usize,
}

impl Agent for RestartAll {
    fn act(&mut self, obs: &Observation) -> Action {
        let services = self.services.get_or_insert_with(|| page_services(obs));
        if let Some(s) = services.get(self.next) {
            self.next += 1;
            return Action::RestartService(RestartParams {
                service: s.clone(),
                memory_mb: None,
                cpu_millis: None,
            });
        }
        wait(5.0)
    }
}

/// Cycles investigation actions over every service until the budget ends, never acting or resolving: the
/// information reward must not make this pay.
#[derive(Default)]
pub struct Farmer {
    services: Option<Vec<String>>,
    n: usize,
}

impl Agent for Farmer {
    fn act(&mut self, obs: &Observation) -> Action {
        let services = self.services.get_or_insert_with(|| page_services(obs));
        let k = self.n;
        self.n += 1;
        let service = services[(k / 4) % services.len().max(1)].clone();
        match k % 4 {
            0 => Action::QueryMetrics(MetricsParams {
                service,
                window_minutes: None,
            }),
            1 => Action::QueryLogs(LogsParams {
                service,
                window_minutes: None,
                level: None,
                limit: None,
            }),
            2 => Action::QueryTraces(TracesParams {
                service,
                window_minutes: None,
                errors_only: false,
            }),
            _ => Action::RunDiagnostic(DiagnosticParams {
                service,
                check: DiagnosticCheck::Health,
            }),
        }
    }
}

/// Resolves at once, blaming the first alerted service with a common fault class and citing nothing.
pub struct EarlyResolve;

impl Agent for EarlyResolve {
    fn act(&mut self, obs: &Observation) -> Action {
        let service = obs
            .firing_alerts
            .first()
            .map(|a| a.service.clone())
            .or_else(|| page_services(obs).into_iter().next())
            .unwrap_or_default();
        Action::ResolveIncident(ResolveParams {
            root_causes: vec![service],
            fault_class: FaultClass::BadDeploy,
            evidence: Vec::new(),
            remediation: String::new(),
            summary: "resolved without investigation".into(),
        })
    }
}

/// Uniform over action kinds, with plausible parameters drawn from the catalogue, and evidence ids it has
/// actually seen when it resolves.
pub struct RandomAgent {
    rng: ChaCha8Rng,
    services: Vec<String>,
    seen: Vec<String>,
}

impl RandomAgent {
    /// Seeded.
    pub fn new(seed: u64) -> RandomAgent {
        RandomAgent {
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x005e_ed0f_a9e4),
            services: Vec::new(),
            seen: Vec::new(),
        }
    }

    fn below(&mut self, n: usize) -> usize {
        (self.rng.next_u64() % n.max(1) as u64) as usize
    }
}

impl Agent for RandomAgent {
    fn act(&mut self, obs: &Observation) -> Action {
        if self.services.is_empty() {
            self.services = page_services(obs);
        }
        self.seen.extend(crate::heuristic::evidence_ids(obs));
        let pick = self.below(self.services.len());
        let service = self.services[pick].clone();
        match self.below(13) {
            0 => Action::ListServices,
            1 => Action::DescribeService(ServiceParams { service }),
            2 => Action::QueryMetrics(MetricsParams {
                service,
                window_minutes: Some([5, 15, 30, 60][self.below(4)]),
            }),
            3 => Action::QueryLogs(LogsParams {
                service,
                window_minutes: Some([5, 15, 30][self.below(3)]),
                level: Some(
                    [LevelFilter::Info, LevelFilter::Warn, LevelFilter::Error][self.below(3)],
                ),
                limit: Some(20),
            }),
            4 => Action::QueryTraces(TracesParams {
                service,
                window_minutes: Some(15),
                errors_only: self.below(2) == 0,
            }),
            5 => Action::RunDiagnostic(DiagnosticParams {
                service,
                check: [
                    DiagnosticCheck::Connectivity,
                    DiagnosticCheck::Health,
                    DiagnosticCheck::Resources,
                    DiagnosticCheck::Dns,
                    DiagnosticCheck::Tls,
                ][self.below(5)],
            }),
            6 => Action::QueryDeploys(firedrill_env::action::DeploysParams { service: None }),
            7 => Action::RestartService(RestartParams {
                service,
                memory_mb: None,
                cpu_millis: None,
            }),
            8 => Action::ScaleService(ScaleParams {
                service,
                replicas: 1 + self.below(4) as u32,
            }),
            9 => Action::RollbackDeploy(RollbackParams {
                service,
                version: None,
            }),
            10 => Action::UpdateConfig(firedrill_env::action::ConfigParams {
                service,
                key: "log.level".into(),
                value: ["info", "warn", "debug"][self.below(3)].into(),
            }),
            11 => wait([1.0, 2.0, 5.0][self.below(3)]),
            _ => {
                let class = FaultClass::ALL[self.below(FaultClass::ALL.len())];
                let cite = if self.seen.is_empty() {
                    Vec::new()
                } else {
                    let k = self.below(self.seen.len());
                    vec![self.seen[k].clone()]
                };
                Action::ResolveIncident(ResolveParams {
                    root_causes: vec![service],
                    fault_class: class,
                    evidence: cite,
                    remediation: String::new(),
                    summary: "random guess".into(),
                })
            }
        }
    }
}
