//! `firedrill eval`: run agents × scenarios × seeds, print the leaderboard and the per-family table, and write
//! `DIR/<run-id>/{episodes.jsonl, report.json, report.md}`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use comfy_table::{CellAlignment, ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use firedrill_eval::matrix::{DEFAULT_AGENTS, DEFAULT_DIFFICULTY, suite};
use firedrill_eval::output::report_json;
use firedrill_eval::{Figures, Matrix, Report, SeedRange, create_run_dir, run_into_dir};
use firedrill_scenario::Catalog;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar of `len` steps drawn on standard error with `template`, or hidden: when `quiet` (the output
/// is JSON) or when standard error is not a terminal.
pub(crate) fn progress_bar(len: u64, quiet: bool, template: &str) -> ProgressBar {
    let bar = if quiet || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr())
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("█▉▊▋▌▍▎▏ "));
    }
    bar
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Agent to evaluate; repeat for several [default: heuristic, oracle, random]. Built in: oracle, heuristic,
    /// random, noop, restart-all, farmer, early-resolve.
    #[arg(long = "agent", value_name = "NAME")]
    agents: Vec<String>,
    /// Scenario suite: `basic` (the nine basic families) or `all` (every scenario loaded, `--scenarios`
    /// directories included) [default: basic, unless --scenario is given].
    #[arg(long, value_name = "NAME")]
    suite: Option<String>,
    /// Scenario id; repeat for several. Alone it replaces the suite; with --suite it adds to it.
    #[arg(long = "scenario", value_name = "ID")]
    scenarios: Vec<String>,
    /// Seeds as a half-open range: `0..20` runs seeds 0 to 19 (`A..=B` includes B; a single number runs one seed).
    #[arg(long, value_name = "A..B", default_value = "0..20", value_parser = parse_seeds)]
    seeds: SeedRange,
    /// Difficulty in [0, 1].
    #[arg(long, default_value_t = DEFAULT_DIFFICULTY)]
    difficulty: f64,
    /// Worker threads [default: the available cores]. Results do not depend on it.
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Directory for run directories; each run writes `<out>/<run-id>/`.
    #[arg(long, value_name = "DIR", default_value = "runs")]
    out: PathBuf,
    /// Print report.json to stdout instead of the tables (no progress bar).
    #[arg(long)]
    json: bool,
}

fn parse_seeds(s: &str) -> Result<SeedRange, String> {
    s.parse::<SeedRange>().map_err(|e| e.to_string())
}

/// The number of cores the process may use (1 when unknown).
pub fn available_cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

pub fn run(args: EvalArgs, catalog: Catalog) -> Result<ExitCode, String> {
    let jobs = args.jobs.unwrap_or_else(available_cores);
    if jobs == 0 {
        return Err("--jobs must be at least 1".into());
    }
    let agents = if args.agents.is_empty() {
        DEFAULT_AGENTS.iter().map(|s| s.to_string()).collect()
    } else {
        args.agents
    };
    let mut scenarios = match (&args.suite, args.scenarios.is_empty()) {
        (Some(name), _) => suite(name, &catalog).map_err(|e| e.to_string())?,
        (None, true) => suite("basic", &catalog).map_err(|e| e.to_string())?,
        (None, false) => Vec::new(),
    };
    scenarios.extend(args.scenarios);
    let matrix = Matrix::new(agents, scenarios, args.seeds, args.difficulty, &catalog)
        .map_err(|e| e.to_string())?;
    let dir = create_run_dir(&args.out, &matrix).map_err(|e| e.to_string())?;

    let bar = progress_bar(
        matrix.len() as u64,
        args.json,
        "{bar:32.cyan/blue} {pos}/{len} episodes  {elapsed} elapsed, eta {eta}  {msg}",
    );
    let catalog = Arc::new(catalog);
    let result = run_into_dir(catalog, &matrix, jobs, &dir, &mut |p| {
        bar.set_position(p.done as u64);
        bar.set_message(format!(
            "{} {} #{}",
            p.task.agent, p.task.scenario, p.task.seed
        ));
    });
    bar.finish_and_clear();
    let report = result.map_err(|e| format!("{e} (partial results in {})", dir.display()))?;

    if args.json {
        let text = report_json(&report).map_err(|e| e.to_string())?;
        say!("{}", text.trim_end());
        eprintln!("wrote {}", dir.display());
    } else {
        print_tables(&report);
        say!(
            "\nwrote {}/ (episodes.jsonl, report.json, report.md)",
            dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn table(first: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    let mut head: Vec<&str> = first.to_vec();
    head.extend(Figures::HEADERS);
    t.set_header(head);
    for i in first.len()..first.len() + Figures::HEADERS.len() {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}

fn print_tables(report: &Report) {
    say!("{}\n", report.headline());
    say!("Leaderboard");
    let mut t = table(&["rank", "agent"]);
    for (i, row) in report.agents.iter().enumerate() {
        let mut cells = vec![(i + 1).to_string(), row.name.clone()];
        cells.extend(row.figures.cells());
        t.add_row(cells);
    }
    say!("{t}");
    say!("\nPer family");
    let mut t = table(&["family", "agent"]);
    for row in &report.families {
        let mut cells = vec![row.family.clone(), row.agent.clone()];
        cells.extend(row.figures.cells());
        t.add_row(cells);
    }
    say!("{t}");
    say!(
        "\nsuccess: resolved, mitigated and diagnosed exactly; score ± standard error; min to mitigate: over \
         mitigated episodes only; impact: share of user requests failed after the page; hallucinated, harmful: \
         totals. Full definitions in report.md."
    );
}
