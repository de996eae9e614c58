//! Baseline agents and the episode runner.
//!
//! Honest agents implement [`Agent`]: they see observations and nothing else. The oracle implements
//! [`PrivilegedAgent`] and also reads the episode (ground truth included); it exists as the upper bound and the
//! solvability check. The split is in the types, so an honest agent cannot reach the ground truth by accident.
//!
//! | agent | what it does |
//! |---|---|
//! | `random` | uniform over action kinds, with plausible parameters drawn from the catalogue |
//! | `noop` | waits until the budget ends |
//! | `restart-all` | restarts every service once, then waits |
//! | `farmer` | cycles investigation actions over every service until the budget ends |
//! | `early-resolve` | resolves at once, blaming the first alerted service with a common fault class |
//! | `oracle` | applies the intended remediation, collects the proofs, waits for the sustained mitigation, resolves |
//! | `heuristic` | investigates like an on-call engineer, without ground truth (see [`heuristic`]) |

use std::sync::Arc;

use firedrill_env::observation::Content;
use firedrill_env::{Action, Env, EnvError, Episode, Grade, Observation, RewardBreakdown};
use serde::Serialize;

mod baselines;
pub mod heuristic;
mod oracle;

pub use baselines::{EarlyResolve, Farmer, Noop, RandomAgent, RestartAll};
pub use heuristic::Heuristic;
pub use oracle::Oracle;

/// An agent that sees only observations.
pub trait Agent: Send {
    /// The next action, given the latest observation (the page first).
    fn act(&mut self, observation: &Observation) -> Action;
}

/// An agent that also reads the episode, ground truth included (the oracle).
pub trait PrivilegedAgent: Send {
    /// The next action.
    fn act(&mut self, observation: &Observation, episode: &Episode) -> Action;
}

/// Either kind of agent.
pub enum AnyAgent {
    /// Sees observations only.
    Honest(Box<dyn Agent>),
    /// Reads the episode too.
    Privileged(Box<dyn PrivilegedAgent>),
}

/// The built-in agents, in leaderboard order.
pub const AGENTS: [&str; 7] = [
    "oracle",
    "heuristic",
    "random",
    "noop",
    "restart-all",
    "farmer",
    "early-resolve",
];

/// An agent name that is not built in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown agent {0:?} (built in: oracle, heuristic, random, noop, restart-all, farmer, early-resolve)"
)]
pub struct UnknownAgent(pub String);

/// A fresh built-in agent for one episode. `seed` drives the random agent's choices.
pub fn build(name: &str, seed: u64) -> Result<AnyAgent, UnknownAgent> {
    Ok(match name {
        "oracle" => AnyAgent::Privileged(Box::new(Oracle::default())),
        "heuristic" => AnyAgent::Honest(Box::new(Heuristic::default())),
        "random" => AnyAgent::Honest(Box::new(RandomAgent::new(seed))),
        "noop" => AnyAgent::Honest(Box::new(Noop)),
        "restart-all" => AnyAgent::Honest(Box::new(RestartAll::default())),
        "farmer" => AnyAgent::Honest(Box::new(Farmer::default())),
        "early-resolve" => AnyAgent::Honest(Box::new(EarlyResolve)),
        other => return Err(UnknownAgent(other.to_string())),
    })
}

/// One step of a recorded episode.
#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    /// The action, in wire form.
    pub action: serde_json::Value,
    /// What came back.
    pub observation: Observation,
    /// The reward's terms.
    pub reward: RewardBreakdown,
}

/// A played episode.
#[derive(Debug, Clone, Serialize)]
pub struct EpisodeRecord {
    /// Scenario id.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// Difficulty.
    pub difficulty: f64,
    /// Agent name.
    pub agent: String,
    /// The page.
    pub page: Observation,
    /// Every step.
    pub steps: Vec<StepRecord>,
    /// Sum of rewards.
    pub episode_return: f64,
    /// The grade.
    pub grade: Grade,
}

/// Most actions an episode may take: a safety net against an agent that never spends time (every action costs
/// simulated time, so a real episode ends long before this).
pub const MAX_STEPS: usize = 2_000;

/// Plays one episode of `agent` on a fresh environment.
pub fn run_episode(
    catalog: Arc<firedrill_scenario::Catalog>,
    agent_name: &str,
    scenario: &str,
    seed: u64,
    difficulty: f64,
) -> Result<EpisodeRecord, RunError> {
    let mut agent = build(agent_name, seed)?;
    let mut env = Env::new(catalog);
    let page = env.reset(scenario, seed, difficulty)?;
    let mut last = page.clone();
    let mut steps = Vec::new();
    let mut total = 0.0;
    for _ in 0..MAX_STEPS {
        let action = match &mut agent {
            AnyAgent::Honest(a) => a.act(&last),
            AnyAgent::Privileged(a) => {
                let ep = env.episode().ok_or(EnvError::NotReset)?;
                a.act(&last, ep)
            }
        };
        let step = env.step(&action)?;
        total += step.reward;
        steps.push(StepRecord {
            action: action.to_json(),
            observation: step.observation.clone(),
            reward: step.breakdown,
        });
        last = step.observation;
        if let Some(grade) = step.info.grade {
            return Ok(EpisodeRecord {
                scenario: scenario.to_string(),
                seed,
                difficulty,
                agent: agent_name.to_string(),
                page,
                steps,
                episode_return: total,
                grade,
            });
        }
    }
    Err(RunError::TooManySteps(MAX_STEPS))
}

/// Why an episode could not be played.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Unknown agent.
    #[error(transparent)]
    Agent(#[from] UnknownAgent),
    /// The environment refused.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// The agent never ended the episode.
    #[error("the episode did not end within {0} steps")]
    TooManySteps(usize),
}

/// The service names of the catalogue in a page observation.
pub fn page_services(obs: &Observation) -> Vec<String> {
    match &obs.content {
        Content::Page(p) => p.services.iter().map(|s| s.name.clone()).collect(),
        Content::Services { services } => services.iter().map(|s| s.name.clone()).collect(),
        _ => Vec::new(),
    }
}
