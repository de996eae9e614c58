//! The heuristic investigator.

use firedrill_env::observation::Content;
use firedrill_env::{Action, Observation};

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

/// See the module documentation.
#[derive(Default)]
pub struct Heuristic {}

impl Agent for Heuristic {
    fn act(&mut self, _obs: &Observation) -> Action {
        Action::Wait(firedrill_env::action::WaitParams { minutes: 5.0 })
    }
}
