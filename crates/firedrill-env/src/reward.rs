//! Per-step reward and the end-of-episode grade. `docs/reward.md` explains every term with a worked example.
//!
//! The reward is built so that it cannot be farmed:
//! - information reward is paid once per ground-truth evidence entry, the first time an observation contains
//!   it; re-reading, or reading anything else, pays nothing;
//! - shaping on user impact is potential-based (`Φ(s') − Φ(s)` with `Φ = −k · user error ratio`), so its sum
//!   over an episode telescopes to `Φ(end) − Φ(page)` whatever the path;
//! - every action costs simulated time, charged per minute;
//! - the outcome term is the grade, paid once when the episode ends; an ended episode never steps again.

use serde::Serialize;

/// Information reward per newly observed ground-truth evidence entry.
pub const INFORMATION_REWARD: f64 = 0.05;
/// Scale `k` of the impact potential `Φ = −k · user error ratio`.
pub const SHAPING_SCALE: f64 = 0.2;
/// Penalty per harmful action.
pub const HARM_PENALTY: f64 = 0.1;
/// Penalty per invalid action.
pub const INVALID_PENALTY: f64 = 0.02;
/// Time cost per simulated minute.
pub const TIME_COST_PER_MINUTE: f64 = 0.002;

/// The terms of one step's reward.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct RewardBreakdown {
    /// New ground-truth evidence observed.
    pub information: f64,
    /// Potential-based shaping on user impact.
    pub shaping: f64,
    /// Harmful actions.
    pub safety: f64,
    /// Invalid actions.
    pub invalid: f64,
    /// Simulated time spent.
    pub time: f64,
    /// The final grade, paid once at the end.
    pub outcome: f64,
}

impl RewardBreakdown {
    /// The step's reward.
    pub fn total(&self) -> f64 {
        self.information + self.shaping + self.safety + self.invalid + self.time + self.outcome
    }

    /// Adds another breakdown term by term.
    pub fn add(&mut self, o: &RewardBreakdown) {
        self.information += o.information;
        self.shaping += o.shaping;
        self.safety += o.safety;
        self.invalid += o.invalid;
        self.time += o.time;
        self.outcome += o.outcome;
    }
}

/// Weights of the grade's components (they sum to 1).
pub mod weights {
    /// Mitigation, state-based and sustained.
    pub const MITIGATION: f64 = 0.35;
    /// Diagnosis: root-cause services and fault class.
    pub const DIAGNOSIS: f64 = 0.30;
    /// Evidence cited.
    pub const EVIDENCE: f64 = 0.10;
    /// Time to mitigate.
    pub const TIME: f64 = 0.10;
    /// User impact.
    pub const IMPACT: f64 = 0.05;
    /// Safety.
    pub const SAFETY: f64 = 0.10;
}

/// One component of the grade.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Component {
    /// Fraction earned, in [0, 1].
    pub fraction: f64,
    /// Weight in the score.
    pub weight: f64,
}

impl Component {
    /// Points earned (`fraction · weight`).
    pub fn points(&self) -> f64 {
        self.fraction * self.weight
    }
}

/// The components of a grade.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Components {
    /// Mitigated, sustained.
    pub mitigation: Component,
    /// Diagnosis.
    pub diagnosis: Component,
    /// Evidence.
    pub evidence: Component,
    /// Time to mitigate.
    pub time: Component,
    /// User impact.
    pub impact: Component,
    /// Safety.
    pub safety: Component,
}

/// Points lost, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LostPoints {
    /// Component (`mitigation`, `diagnosis`...).
    pub component: &'static str,
    /// Points of the score lost.
    pub points: f64,
    /// Machine-readable reason (`not_mitigated`, `wrong_fault_class`, `hallucinated_citation`...).
    pub reason: &'static str,
    /// Human-readable detail.
    pub detail: String,
}

/// The grade of an ended episode.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Grade {
    /// Score in [0, 1].
    pub score: f64,
    /// Resolved, mitigated (sustained) and diagnosed exactly.
    pub success: bool,
    /// Whether the agent resolved the incident (rather than running out of budget).
    pub resolved: bool,
    /// Whether the mitigated state held for the sustain window at the end.
    pub mitigated: bool,
    /// Root-cause services and fault class both exact.
    pub diagnosis_correct: bool,
    /// Simulated minutes from the page until the mitigated state began (when mitigated).
    pub minutes_to_mitigate: Option<f64>,
    /// Share of user requests that failed between the page and the end.
    pub impact: f64,
    /// Cited evidence ids the episode never returned.
    pub hallucinated_citations: u32,
    /// Harmful actions taken.
    pub harmful_actions: u32,
    /// Invalid actions taken.
    pub invalid_actions: u32,
    /// The components.
    pub components: Components,
    /// Every point lost, with its reason.
    pub lost: Vec<LostPoints>,
}
