//! The agent-facing side of firedrill: typed actions, the environment loop, observations, reward and grading.
//!
//! - [`action`]: the basic-tier actions, their wire format `{"action": "<name>", ...parameters}`, a JSON Schema
//!   per action, OpenAI function-calling tools, the simulated time each costs, and validation that turns any bad
//!   input into a typed [`ActionError`].
//! - [`env`]: [`Env`] with `reset(scenario, seed, difficulty)` and `step(action)`; snapshot and fork.
//! - [`observation`]: what the agent sees, structured and as text; every evidence item carries a stable id.
//! - [`reward`]: the per-step reward breakdown and the end-of-episode [`Grade`].
//! - [`vec_env`]: [`VecEnv`], many episodes stepped together, with an explicit auto-reset mode.

pub mod action;
pub mod command;
pub mod env;
pub mod evidence;
pub mod observation;
pub mod reward;
pub mod vec_env;

pub use action::{Action, ActionError, ActionKind, parse_action};
pub use env::{Env, EnvError, Episode, Step, StepInfo};
pub use observation::{Content, Observation};
pub use reward::{Grade, RewardBreakdown};
pub use vec_env::{AutoReset, EpisodeSpec, VecEnv};
