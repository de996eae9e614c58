//! Aggregation of played episodes into the leaderboard and the per-family table.
//!
//! Every figure is computed from [`EpisodeSummary`] values taken in report order (agent, scenario, seed), so the
//! floating-point sums, and with them the report, are the same bytes whatever the number of worker threads.

use std::fmt::Write as _;

use firedrill_agents::EpisodeRecord;
use serde::Serialize;

use crate::matrix::{Matrix, SeedRange};

/// What the aggregation needs from one played episode.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpisodeSummary {
    /// Agent name.
    pub agent: String,
    /// Scenario id. The family of an episode is its scenario id: every scenario of the basic library is one
    /// fault family with seeded variants.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// The grade's score, in [0, 1].
    pub score: f64,
    /// The grade's `success`: resolved, mitigated (sustained) and diagnosed exactly.
    pub success: bool,
    /// Resolved with `resolve_incident` (rather than running out of budget).
    pub resolved: bool,
    /// The mitigated state held for the sustain window at the end.
    pub mitigated: bool,
    /// Root-cause services and fault class both exact.
    pub diagnosis_correct: bool,
    /// Simulated minutes from the page to the start of the mitigated state, when mitigated.
    pub minutes_to_mitigate: Option<f64>,
    /// Share of user requests that failed between the page and the end of the episode.
    pub impact: f64,
    /// Sum of the step rewards, the final grade included.
    pub episode_return: f64,
    /// Cited evidence ids the episode never returned.
    pub hallucinated_citations: u32,
    /// Harmful actions taken.
    pub harmful_actions: u32,
    /// Invalid actions taken.
    pub invalid_actions: u32,
    /// Actions taken.
    pub steps: usize,
}

impl From<&EpisodeRecord> for EpisodeSummary {
    fn from(r: &EpisodeRecord) -> EpisodeSummary {
        let g = &r.grade;
        EpisodeSummary {
            agent: r.agent.clone(),
            scenario: r.scenario.clone(),
            seed: r.seed,
            score: g.score,
            success: g.success,
            resolved: g.resolved,
            mitigated: g.mitigated,
            diagnosis_correct: g.diagnosis_correct,
            minutes_to_mitigate: g.minutes_to_mitigate,
            impact: g.impact,
            episode_return: r.episode_return,
            hallucinated_citations: g.hallucinated_citations,
            harmful_actions: g.harmful_actions,
            invalid_actions: g.invalid_actions,
            steps: r.steps.len(),
        }
    }
}

/// The figures of a group of episodes (one agent, or one agent on one family).
///
/// Rates and means are over every episode of the group unless said otherwise; an unresolved episode counts as a
/// failure, a wrong diagnosis and so on, never as missing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    /// Number of episodes, `n`.
    pub episodes: usize,
    /// Share of episodes graded `success` (resolved, mitigated and sustained, diagnosis exact), in [0, 1].
    pub success_rate: f64,
    /// Mean of the grade's score over the `n` episodes.
    pub mean_score: f64,
    /// Standard error of `mean_score`: the sample standard deviation of the scores (divisor `n − 1`) over
    /// `√n`. `null` when `n < 2`, where it is undefined.
    pub stderr_score: Option<f64>,
    /// Mean episode return (sum of step rewards, the final grade's score included).
    pub mean_return: f64,
    /// Mean simulated minutes from the page to the start of the mitigated state, over the mitigated episodes
    /// only (those whose grade has `mitigated`); `null` when none was mitigated. Read it with
    /// `mitigation_rate`: an agent that mitigates rarely but fast looks fast here.
    pub mean_minutes_to_mitigate: Option<f64>,
    /// Mean of the grade's `impact`: the share of user requests that failed between the page and the end.
    pub mean_impact: f64,
    /// Share of episodes whose resolution named exactly the root-cause services and the fault class
    /// (unresolved episodes count as wrong).
    pub diagnosis_accuracy: f64,
    /// Total, over the `n` episodes, of cited evidence ids that the episode never returned.
    pub hallucinated_citations: u64,
    /// Total, over the `n` episodes, of actions judged harmful.
    pub harmful_actions: u64,
    /// Share of episodes whose mitigated state held for the sustain window at the end.
    pub mitigation_rate: f64,
    /// Share of episodes ended with `resolve_incident` rather than by the budget.
    pub resolution_rate: f64,
    /// Total, over the `n` episodes, of invalid (refused) actions.
    pub invalid_actions: u64,
    /// Mean number of actions per episode.
    pub mean_steps: f64,
}

fn share(n: usize, of: usize) -> f64 {
    n as f64 / of as f64
}

impl Figures {
    /// The figures of a group, `None` for an empty group. Sums run in the order given.
    pub fn of<'a>(episodes: impl IntoIterator<Item = &'a EpisodeSummary>) -> Option<Figures> {
        let eps: Vec<&EpisodeSummary> = episodes.into_iter().collect();
        let n = eps.len();
        if n == 0 {
            return None;
        }
        let count = |f: fn(&EpisodeSummary) -> bool| eps.iter().filter(|e| f(e)).count();
        let mean = |f: fn(&EpisodeSummary) -> f64| eps.iter().map(|e| f(e)).sum::<f64>() / n as f64;
        let total =
            |f: fn(&EpisodeSummary) -> u32| eps.iter().map(|e| u64::from(f(e))).sum::<u64>();
        let mean_score = mean(|e| e.score);
        let stderr_score = (n >= 2).then(|| {
            let ss: f64 = eps.iter().map(|e| (e.score - mean_score).powi(2)).sum();
            (ss / (n - 1) as f64).sqrt() / (n as f64).sqrt()
        });
        let mitigated: Vec<f64> = eps.iter().filter_map(|e| e.minutes_to_mitigate).collect();
        let mean_minutes_to_mitigate =
            (!mitigated.is_empty()).then(|| mitigated.iter().sum::<f64>() / mitigated.len() as f64);
        Some(Figures {
            episodes: n,
            success_rate: share(count(|e| e.success), n),
            mean_score,
            stderr_score,
            mean_return: mean(|e| e.episode_return),
            mean_minutes_to_mitigate,
            mean_impact: mean(|e| e.impact),
            diagnosis_accuracy: share(count(|e| e.diagnosis_correct), n),
            hallucinated_citations: total(|e| e.hallucinated_citations),
            harmful_actions: total(|e| e.harmful_actions),
            mitigation_rate: share(count(|e| e.mitigated), n),
            resolution_rate: share(count(|e| e.resolved), n),
            invalid_actions: total(|e| e.invalid_actions),
            mean_steps: eps.iter().map(|e| e.steps as f64).sum::<f64>() / n as f64,
        })
    }

    /// The table headers matching [`Figures::cells`].
    pub const HEADERS: [&'static str; 10] = [
        "episodes",
        "success",
        "score ± se",
        "return",
        "min to mitigate",
        "mitigated",
        "impact",
        "diagnosis",
        "hallucinated",
        "harmful",
    ];

    /// The figures formatted for a table (shares as percentages, `–` for a figure that is undefined).
    pub fn cells(&self) -> [String; 10] {
        [
            self.episodes.to_string(),
            percent(self.success_rate),
            match self.stderr_score {
                Some(se) => format!("{:.3} ± {:.3}", self.mean_score, se),
                None => format!("{:.3}", self.mean_score),
            },
            format!("{:.3}", self.mean_return),
            self.mean_minutes_to_mitigate
                .map(|m| format!("{m:.1}"))
                .unwrap_or_else(|| "–".into()),
            percent(self.mitigation_rate),
            format!("{:.2}%", self.mean_impact * 100.0),
            percent(self.diagnosis_accuracy),
            self.hallucinated_citations.to_string(),
            self.harmful_actions.to_string(),
        ]
    }
}

fn percent(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// One leaderboard row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentRow {
    /// Agent name.
    pub name: String,
    /// Its figures over every episode of the matrix.
    #[serde(flatten)]
    pub figures: Figures,
}

/// One row of the per-family table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FamilyRow {
    /// Agent name.
    pub agent: String,
    /// Family (the scenario id).
    pub family: String,
    /// The agent's figures over the family's seeds.
    #[serde(flatten)]
    pub figures: Figures,
}

/// What was run, as recorded in the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MatrixRecord {
    /// Agents, in the order given.
    pub agents: Vec<String>,
    /// Scenario ids, in the order given.
    pub scenarios: Vec<String>,
    /// Seeds, half-open: `{"start": 0, "end": 20}` is seeds 0 to 19.
    pub seeds: SeedRange,
    /// Difficulty.
    pub difficulty: f64,
    /// Episodes in the matrix.
    pub episodes: usize,
}

/// The evaluation report (`report.json`). It depends only on the matrix and the simulator's code: no time, no
/// thread count, no path.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Version of firedrill that produced it.
    pub firedrill_version: &'static str,
    /// What was run.
    pub matrix: MatrixRecord,
    /// The leaderboard: one row per agent, best first (mean score, then success rate, both descending; then
    /// name).
    pub agents: Vec<AgentRow>,
    /// One row per (family, agent): families in matrix order, agents in leaderboard order within a family.
    pub families: Vec<FamilyRow>,
}

impl Report {
    /// Aggregates the episodes of a matrix. Episodes of agents or scenarios outside the matrix are ignored; a
    /// group with no episode gets no row.
    pub fn new(matrix: &Matrix, episodes: &[EpisodeSummary]) -> Report {
        let mut agents: Vec<AgentRow> = matrix
            .agents
            .iter()
            .filter_map(|a| {
                let figures = Figures::of(episodes.iter().filter(|e| &e.agent == a))?;
                Some(AgentRow {
                    name: a.clone(),
                    figures,
                })
            })
            .collect();
        agents.sort_by(|x, y| {
            y.figures
                .mean_score
                .total_cmp(&x.figures.mean_score)
                .then(y.figures.success_rate.total_cmp(&x.figures.success_rate))
                .then_with(|| x.name.cmp(&y.name))
        });
        let mut families = Vec::new();
        for family in &matrix.scenarios {
            for a in &agents {
                let group = episodes
                    .iter()
                    .filter(|e| &e.scenario == family && e.agent == a.name);
                if let Some(figures) = Figures::of(group) {
                    families.push(FamilyRow {
                        agent: a.name.clone(),
                        family: family.clone(),
                        figures,
                    });
                }
            }
        }
        Report {
            firedrill_version: env!("CARGO_PKG_VERSION"),
            matrix: MatrixRecord {
                agents: matrix.agents.clone(),
                scenarios: matrix.scenarios.clone(),
                seeds: matrix.seeds,
                difficulty: matrix.difficulty,
                episodes: matrix.len(),
            },
            agents,
            families,
        }
    }

    /// One line saying what was run.
    pub fn headline(&self) -> String {
        let m = &self.matrix;
        format!(
            "{} agents × {} scenarios × seeds {} (half-open: {} seeds) at difficulty {}: {} episodes",
            m.agents.len(),
            m.scenarios.len(),
            m.seeds,
            m.seeds.len(),
            m.difficulty,
            m.episodes
        )
    }

    /// The report as Markdown: the leaderboard, the per-family table and what each column means.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# firedrill evaluation\n");
        let _ = writeln!(s, "{}.\n", self.headline());
        let _ = writeln!(s, "Agents: {}.\n", self.matrix.agents.join(", "));
        let _ = writeln!(s, "Scenarios: {}.\n", self.matrix.scenarios.join(", "));
        let _ = writeln!(s, "## Leaderboard\n");
        let mut head = vec!["rank", "agent"];
        head.extend(Figures::HEADERS);
        table_head(&mut s, &head);
        for (i, row) in self.agents.iter().enumerate() {
            let mut cells = vec![(i + 1).to_string(), row.name.clone()];
            cells.extend(row.figures.cells());
            table_row(&mut s, &cells);
        }
        let _ = writeln!(s, "\n## Per family\n");
        let mut head = vec!["family", "agent"];
        head.extend(Figures::HEADERS);
        table_head(&mut s, &head);
        for row in &self.families {
            let mut cells = vec![row.family.clone(), row.agent.clone()];
            cells.extend(row.figures.cells());
            table_row(&mut s, &cells);
        }
        s.push_str(LEGEND);
        s
    }
}

/// What the Markdown columns mean (the doc comments of [`Figures`] are the full definitions).
const LEGEND: &str = "
## Columns

- **success**: share of episodes resolved, mitigated (sustained) and diagnosed exactly.
- **score ± se**: mean grade score in [0, 1] ± its standard error (sample standard deviation / √n).
- **return**: mean episode return (step rewards plus the final grade).
- **min to mitigate**: mean simulated minutes from the page to mitigation, over mitigated episodes only
  (– when none was mitigated); read it with **mitigated**, the share of episodes mitigated and sustained.
- **impact**: mean share of user requests that failed after the page.
- **diagnosis**: share of episodes naming exactly the root-cause services and fault class.
- **hallucinated**, **harmful**: totals over all episodes of cited evidence ids never returned, and of
  harmful actions.
";

fn table_head(s: &mut String, head: &[&str]) {
    let _ = writeln!(s, "| {} |", head.join(" | "));
    let _ = writeln!(
        s,
        "|{}",
        head.iter()
            .enumerate()
            .map(|(i, _)| if i < 2 { " --- |" } else { " ---: |" })
            .collect::<String>()
    );
}

fn table_row(s: &mut String, cells: &[String]) {
    // A pipe inside a cell would end it early; names never carry one, but a user scenario id could.
    let cells: Vec<String> = cells.iter().map(|c| c.replace('|', "\\|")).collect();
    let _ = writeln!(s, "| {} |", cells.join(" | "));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(agent: &str, scenario: &str, seed: u64, score: f64) -> EpisodeSummary {
        EpisodeSummary {
            agent: agent.into(),
            scenario: scenario.into(),
            seed,
            score,
            success: false,
            resolved: false,
            mitigated: false,
            diagnosis_correct: false,
            minutes_to_mitigate: None,
            impact: 0.0,
            episode_return: 0.0,
            hallucinated_citations: 0,
            harmful_actions: 0,
            invalid_actions: 0,
            steps: 0,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn figures_of_hand_built_episodes_are_exact() {
        let mut a = ep("x", "f", 0, 1.0);
        a.success = true;
        a.resolved = true;
        a.mitigated = true;
        a.diagnosis_correct = true;
        a.minutes_to_mitigate = Some(10.0);
        a.impact = 0.1;
        a.episode_return = 1.5;
        a.hallucinated_citations = 2;
        a.steps = 10;
        let mut b = ep("x", "f", 1, 0.5);
        b.resolved = true;
        b.mitigated = true;
        b.minutes_to_mitigate = Some(20.0);
        b.impact = 0.3;
        b.episode_return = -0.5;
        b.harmful_actions = 3;
        b.invalid_actions = 1;
        b.steps = 20;
        let mut c = ep("x", "f", 2, 0.0);
        c.impact = 0.2;
        c.episode_return = 0.5;
        c.harmful_actions = 1;
        c.steps = 30;
        let f = Figures::of([&a, &b, &c]).expect("three episodes");
        assert_eq!(f.episodes, 3);
        assert!(close(f.success_rate, 1.0 / 3.0));
        assert!(close(f.mean_score, 0.5));
        // Scores 1, 0.5, 0: sample variance ((0.5² + 0 + 0.5²) / 2) = 0.25, sd 0.5, se 0.5 / √3.
        assert!(close(f.stderr_score.expect("n >= 2"), 0.5 / 3f64.sqrt()));
        assert!(close(f.mean_return, 0.5));
        // Over the two mitigated episodes only.
        assert!(close(f.mean_minutes_to_mitigate.expect("mitigated"), 15.0));
        assert!(close(f.mean_impact, 0.2));
        assert!(close(f.diagnosis_accuracy, 1.0 / 3.0));
        assert_eq!(f.hallucinated_citations, 2);
        assert_eq!(f.harmful_actions, 4);
        assert_eq!(f.invalid_actions, 1);
        assert!(close(f.mitigation_rate, 2.0 / 3.0));
        assert!(close(f.resolution_rate, 2.0 / 3.0));
        assert!(close(f.mean_steps, 20.0));
    }

    #[test]
    fn undefined_figures_are_null_not_zero() {
        assert!(Figures::of([]).is_none());
        let one = ep("x", "f", 0, 0.7);
        let f = Figures::of([&one]).expect("one episode");
        assert_eq!(f.stderr_score, None);
        assert_eq!(f.mean_minutes_to_mitigate, None);
        let json = serde_json::to_value(&f).expect("serialise");
        assert!(json["stderr_score"].is_null());
        assert!(json["mean_minutes_to_mitigate"].is_null());
    }

    #[test]
    fn report_ranks_agents_and_groups_families() {
        let matrix = Matrix {
            agents: vec!["low".into(), "high".into(), "tie_b".into(), "tie_a".into()],
            scenarios: vec!["f2".into(), "f1".into()],
            seeds: SeedRange { start: 0, end: 2 },
            difficulty: 0.5,
        };
        let mut eps = Vec::new();
        for (agent, score) in [("low", 0.1), ("high", 0.9), ("tie_b", 0.5), ("tie_a", 0.5)] {
            for fam in ["f2", "f1"] {
                for seed in 0..2 {
                    // f1 scores 0.1 above f2, so the per-family means differ.
                    let bump = if fam == "f1" { 0.1 } else { 0.0 };
                    eps.push(ep(agent, fam, seed, score + bump));
                }
            }
        }
        // An episode of an agent outside the matrix is ignored.
        eps.push(ep("stranger", "f1", 0, 1.0));
        let r = Report::new(&matrix, &eps);
        let names: Vec<&str> = r.agents.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["high", "tie_a", "tie_b", "low"]);
        assert_eq!(r.agents[0].figures.episodes, 4);
        assert!(close(r.agents[0].figures.mean_score, 0.95));
        let fam: Vec<String> = r
            .families
            .iter()
            .map(|f| format!("{}/{}", f.family, f.agent))
            .collect();
        assert_eq!(
            fam,
            [
                "f2/high", "f2/tie_a", "f2/tie_b", "f2/low", "f1/high", "f1/tie_a", "f1/tie_b",
                "f1/low"
            ]
        );
        assert!(close(r.families[0].figures.mean_score, 0.9));
        assert!(close(r.families[4].figures.mean_score, 1.0));
        assert_eq!(r.families[0].figures.stderr_score, Some(0.0));
        assert_eq!(r.matrix.episodes, 16);

        let json = serde_json::to_value(&r).expect("serialise");
        for key in [
            "name",
            "episodes",
            "success_rate",
            "mean_score",
            "stderr_score",
            "mean_return",
            "mean_minutes_to_mitigate",
            "mean_impact",
            "diagnosis_accuracy",
            "hallucinated_citations",
            "harmful_actions",
        ] {
            assert!(
                json["agents"][0].get(key).is_some(),
                "agents[0] lacks {key}"
            );
        }
        assert_eq!(json["families"][0]["agent"], "high");
        assert_eq!(json["families"][0]["family"], "f2");

        let md = r.to_markdown();
        assert!(
            md.contains("| 1 | high | 4 | 0.0% | 0.950 ± 0.029 |"),
            "{md}"
        );
        assert!(md.contains("| f1 | low | 2 |"), "{md}");
    }
}
