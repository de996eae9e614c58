//! What an evaluation runs: agents × scenarios × seeds at one difficulty.

use std::fmt;
use std::str::FromStr;

use firedrill_scenario::Catalog;
use serde::Serialize;

use crate::EvalError;

/// The agents `firedrill eval` runs when none is named.
pub const DEFAULT_AGENTS: [&str; 3] = ["heuristic", "oracle", "random"];
/// The seeds `firedrill eval` runs when none are given: `0..20`, half-open, so twenty seeds.
pub const DEFAULT_SEEDS: SeedRange = SeedRange { start: 0, end: 20 };
/// The difficulty `firedrill eval` runs at when none is given.
pub const DEFAULT_DIFFICULTY: f64 = 0.5;
/// The most episodes one run holds: every episode's task and summary are kept for the report (a few hundred
/// bytes each), and a million episodes already take hours on two cores.
pub const MAX_EPISODES: u64 = 1_000_000;
/// The suites a matrix can name.
pub const SUITES: [&str; 2] = ["basic", "all"];

/// A half-open range of seeds, `start..end`: `0..20` is the twenty seeds 0 to 19.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SeedRange {
    /// First seed.
    pub start: u64,
    /// One past the last seed.
    pub end: u64,
}

impl SeedRange {
    /// A range, refused when it holds no seed.
    pub fn new(start: u64, end: u64) -> Result<SeedRange, EvalError> {
        if end <= start {
            return Err(EvalError::SeedRange {
                text: format!("{start}..{end}"),
                reason: "it holds no seed: the end is exclusive and must be greater than the start"
                    .into(),
            });
        }
        Ok(SeedRange { start, end })
    }

    /// Number of seeds.
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether the range holds no seed (never true for a range built by [`SeedRange::new`] or parsed).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The seeds in order.
    pub fn iter(&self) -> std::ops::Range<u64> {
        self.start..self.end
    }
}

impl fmt::Display for SeedRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

impl FromStr for SeedRange {
    type Err = EvalError;

    /// `A..B` (half-open: B is not included), `A..=B` (inclusive) or a single seed `A`.
    fn from_str(text: &str) -> Result<SeedRange, EvalError> {
        let bad = |reason: &str| EvalError::SeedRange {
            text: text.to_string(),
            reason: reason.to_string(),
        };
        let number = |s: &str| -> Result<u64, EvalError> {
            s.trim().parse::<u64>().map_err(|_| {
                bad("expected A..B (half-open), A..=B or a single seed, with A and B whole numbers")
            })
        };
        let (start, end) = if let Some((a, b)) = text.split_once("..=") {
            let end = number(b)?
                .checked_add(1)
                .ok_or_else(|| bad("the end is too large"))?;
            (number(a)?, end)
        } else if let Some((a, b)) = text.split_once("..") {
            (number(a)?, number(b)?)
        } else {
            let a = number(text)?;
            (
                a,
                a.checked_add(1)
                    .ok_or_else(|| bad("the seed is too large"))?,
            )
        };
        if end <= start {
            return Err(bad(
                "it holds no seed: the end is exclusive and must be greater than the start",
            ));
        }
        Ok(SeedRange { start, end })
    }
}

/// The scenario ids of a suite: `basic` is the basic library's nine families, `all` every scenario of the
/// catalog (built-ins first, then user directories).
pub fn suite(name: &str, catalog: &Catalog) -> Result<Vec<String>, EvalError> {
    match name {
        "basic" => Ok(firedrill_scenario::library::BASIC_FAMILIES
            .iter()
            .map(|s| s.to_string())
            .collect()),
        "all" => Ok(catalog.scenarios().iter().map(|s| s.id.clone()).collect()),
        other => Err(EvalError::UnknownSuite(other.to_string())),
    }
}

/// One cell of the matrix: an agent plays a scenario at a seed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Task {
    /// Agent name.
    pub agent: String,
    /// Scenario id.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
}

/// What an evaluation runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Matrix {
    /// Agent names, in the order given (duplicates are dropped by [`Matrix::new`]).
    pub agents: Vec<String>,
    /// Scenario ids, in the order given (duplicates dropped).
    pub scenarios: Vec<String>,
    /// Seeds.
    pub seeds: SeedRange,
    /// Difficulty, in [0, 1].
    pub difficulty: f64,
}

fn dedup(items: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

impl Matrix {
    /// A matrix, checked against the built-in agents and the catalog: every agent and scenario must exist, there
    /// must be at least one of each, and the difficulty must be a number in [0, 1].
    pub fn new(
        agents: Vec<String>,
        scenarios: Vec<String>,
        seeds: SeedRange,
        difficulty: f64,
        catalog: &Catalog,
    ) -> Result<Matrix, EvalError> {
        let m = Matrix {
            agents: dedup(agents),
            scenarios: dedup(scenarios),
            seeds,
            difficulty,
        };
        m.validate(catalog)?;
        Ok(m)
    }

    /// Checks the matrix (see [`Matrix::new`]).
    pub fn validate(&self, catalog: &Catalog) -> Result<(), EvalError> {
        if self.agents.is_empty() {
            return Err(EvalError::Empty("agents"));
        }
        if self.scenarios.is_empty() {
            return Err(EvalError::Empty("scenarios"));
        }
        if self.seeds.is_empty() {
            return Err(EvalError::SeedRange {
                text: self.seeds.to_string(),
                reason: "it holds no seed".into(),
            });
        }
        let episodes = self.episodes();
        if episodes > MAX_EPISODES {
            return Err(EvalError::TooLarge {
                episodes,
                max: MAX_EPISODES,
            });
        }
        if !(self.difficulty.is_finite() && (0.0..=1.0).contains(&self.difficulty)) {
            return Err(EvalError::Difficulty(self.difficulty));
        }
        for a in &self.agents {
            // Building checks the name; the agent itself is thrown away.
            firedrill_agents::build(a, 0)?;
        }
        for s in &self.scenarios {
            catalog.require(s)?;
        }
        Ok(())
    }

    /// Number of episodes (at most [`MAX_EPISODES`] for a validated matrix).
    pub fn len(&self) -> usize {
        usize::try_from(self.episodes()).unwrap_or(usize::MAX)
    }

    /// Number of episodes, saturated at `u64::MAX` (a matrix built by hand may ask for more than any run holds).
    fn episodes(&self) -> u64 {
        (self.agents.len() as u64)
            .saturating_mul(self.scenarios.len() as u64)
            .saturating_mul(self.seeds.len())
    }

    /// Whether the matrix holds no episode.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every episode, in report order: by agent, then scenario, then seed, each in the order the matrix lists
    /// them. Results are written in this order whatever the number of worker threads.
    pub fn tasks(&self) -> Vec<Task> {
        let mut out = Vec::with_capacity(self.len());
        for a in &self.agents {
            for s in &self.scenarios {
                for seed in self.seeds.iter() {
                    out.push(Task {
                        agent: a.clone(),
                        scenario: s.clone(),
                        seed,
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_ranges_parse_half_open_inclusive_and_single() {
        assert_eq!(
            "0..20".parse::<SeedRange>().ok(),
            Some(SeedRange { start: 0, end: 20 })
        );
        assert_eq!("0..20".parse::<SeedRange>().map(|r| r.len()).ok(), Some(20));
        assert_eq!(
            "3..=5".parse::<SeedRange>().ok(),
            Some(SeedRange { start: 3, end: 6 })
        );
        assert_eq!(
            "7".parse::<SeedRange>().ok(),
            Some(SeedRange { start: 7, end: 8 })
        );
    }

    #[test]
    fn empty_or_malformed_seed_ranges_are_refused_with_the_reason() {
        for bad in [
            "5..2",
            "3..3",
            "a..b",
            "1..x",
            "",
            "..",
            "-1..3",
            "1..=18446744073709551615",
        ] {
            let e = bad.parse::<SeedRange>();
            assert!(
                matches!(e, Err(EvalError::SeedRange { .. })),
                "{bad:?} gave {e:?}"
            );
        }
        let msg = "5..2".parse::<SeedRange>().err().map(|e| e.to_string());
        assert!(
            msg.as_deref()
                .is_some_and(|m| m.contains("5..2") && m.contains("exclusive")),
            "{msg:?}"
        );
    }

    #[test]
    fn a_matrix_larger_than_a_run_holds_is_refused() {
        let catalog = Catalog::builtin().unwrap_or_default();
        let build = |end: u64| {
            Matrix::new(
                vec!["noop".into(), "oracle".into()],
                vec!["disk_full".into()],
                SeedRange::new(0, end).unwrap_or(DEFAULT_SEEDS),
                0.5,
                &catalog,
            )
        };
        assert!(build(MAX_EPISODES / 2).is_ok());
        let refused = build(MAX_EPISODES / 2 + 1);
        assert!(
            matches!(refused, Err(EvalError::TooLarge { episodes, .. }) if episodes == MAX_EPISODES + 2),
            "{refused:?}"
        );
        // The whole seed space: the count saturates instead of wrapping to something small.
        assert!(matches!(
            build(u64::MAX),
            Err(EvalError::TooLarge {
                episodes: u64::MAX,
                ..
            })
        ));
    }

    #[test]
    fn tasks_are_agent_major_then_scenario_then_seed() {
        let catalog = Catalog::builtin().unwrap_or_default();
        let m = Matrix::new(
            vec!["noop".into(), "oracle".into(), "noop".into()],
            vec!["disk_full".into(), "oom_crash".into()],
            SeedRange::new(4, 6).unwrap_or(DEFAULT_SEEDS),
            0.5,
            &catalog,
        );
        let Ok(m) = m else {
            panic!("valid matrix refused: {m:?}");
        };
        let t: Vec<String> = m
            .tasks()
            .iter()
            .map(|t| format!("{}/{}/{}", t.agent, t.scenario, t.seed))
            .collect();
        assert_eq!(
            t,
            [
                "noop/disk_full/4",
                "noop/disk_full/5",
                "noop/oom_crash/4",
                "noop/oom_crash/5",
                "oracle/disk_full/4",
                "oracle/disk_full/5",
                "oracle/oom_crash/4",
                "oracle/oom_crash/5"
            ]
        );
    }

    #[test]
    fn bad_matrices_are_refused_with_typed_errors() {
        let catalog = Catalog::builtin().unwrap_or_default();
        let seeds = DEFAULT_SEEDS;
        let m = |agents: &[&str], scenarios: &[&str], d: f64| {
            Matrix::new(
                agents.iter().map(|s| s.to_string()).collect(),
                scenarios.iter().map(|s| s.to_string()).collect(),
                seeds,
                d,
                &catalog,
            )
        };
        assert!(matches!(
            m(&["nobody"], &["oom_crash"], 0.5),
            Err(EvalError::UnknownAgent(_))
        ));
        assert!(matches!(
            m(&["noop"], &["no_such"], 0.5),
            Err(EvalError::Scenario(_))
        ));
        for d in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                m(&["noop"], &["oom_crash"], d),
                Err(EvalError::Difficulty(_))
            ));
        }
        assert!(matches!(
            m(&[], &["oom_crash"], 0.5),
            Err(EvalError::Empty("agents"))
        ));
        assert!(matches!(
            suite("advanced", &catalog),
            Err(EvalError::UnknownSuite(_))
        ));
        assert_eq!(suite("basic", &catalog).map(|s| s.len()).ok(), Some(9));
    }
}
