//! Evaluation of agents on firedrill, and the throughput benchmark.
//!
//! - [`matrix`]: what an evaluation runs — agents × scenarios × seeds (half-open `A..B`) at one difficulty.
//! - [`run`]: the matrix played on worker threads, episodes handed back in report order.
//! - [`report`]: aggregation into the leaderboard and the per-family table; every figure is defined on
//!   [`report::Figures`].
//! - [`output`]: the run directory with `episodes.jsonl`, `report.json` and `report.md`.
//! - [`bench`]: resets/s and steps/s, structured and text, single-threaded and through `VecEnv`.
//!
//! Results never depend on the number of threads: episodes are independent and deterministic by (agent,
//! scenario, seed, difficulty), and everything downstream of them sees them in report order.

pub mod bench;
pub mod matrix;
pub mod output;
pub mod report;
pub mod run;

use std::path::PathBuf;

pub use matrix::{Matrix, SeedRange, Task};
pub use output::{create_run_dir, run_id, run_into_dir};
pub use report::{EpisodeSummary, Figures, Report};
pub use run::{Progress, run_matrix};

/// Why an evaluation (or a benchmark) could not run or finish.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// An agent name that is not built in.
    #[error(transparent)]
    UnknownAgent(#[from] firedrill_agents::UnknownAgent),
    /// An unknown scenario id, or a scenario that could not start.
    #[error(transparent)]
    Scenario(#[from] firedrill_scenario::catalog::CatalogError),
    /// The environment refused.
    #[error(transparent)]
    Env(#[from] firedrill_env::EnvError),
    /// A suite name that does not exist.
    #[error("unknown suite {0:?} (known: basic, all)")]
    UnknownSuite(String),
    /// A seed range that holds no seed or does not parse.
    #[error("bad seed range {text:?}: {reason}")]
    SeedRange {
        /// As given.
        text: String,
        /// What is wrong.
        reason: String,
    },
    /// A difficulty outside [0, 1].
    #[error("difficulty must be a number in [0, 1], got {0}")]
    Difficulty(f64),
    /// No agent, or no scenario.
    #[error("the matrix has no {0}")]
    Empty(&'static str),
    /// More episodes than one run holds ([`matrix::MAX_EPISODES`]).
    #[error(
        "the matrix has {episodes} episodes (agents × scenarios × seeds); one run holds at most {max}: narrow --seeds or split the run"
    )]
    TooLarge {
        /// Episodes asked for (saturated at `u64::MAX`).
        episodes: u64,
        /// The most a run holds.
        max: u64,
    },
    /// An episode failed to play.
    #[error("episode {agent} on {scenario} seed {seed} failed: {message}")]
    Episode {
        /// Agent.
        agent: String,
        /// Scenario.
        scenario: String,
        /// Seed.
        seed: u64,
        /// Why.
        message: String,
    },
    /// A file could not be written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The report could not be serialised.
    #[error("cannot serialise the report: {0}")]
    Json(serde_json::Error),
}
