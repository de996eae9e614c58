//! `firedrill`: the command-line front door.

/// `println!` that ends the process quietly when stdout is closed (`firedrill ... | head`) instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::emit(format_args!($($arg)*))
    };
}

mod bench;
mod conformance;
mod eval;
mod play;
mod query;
mod scenarios;
mod simulate;

/// Writes one line to stdout; a closed pipe ends the process with success, any other write error with failure.
pub(crate) fn emit(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    if let Err(e) = writeln!(std::io::stdout().lock(), "{args}") {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

/// mimalloc rather than the system allocator: an environment step allocates often (label sets, query results,
/// observations), and with glibc's malloc about a tenth of a step's instructions went to `malloc` and `free`
/// (docs/benchmarks.md, "Allocator").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use firedrill_scenario::Catalog;

/// firedrill: an incident-response simulator, RL environment and benchmark for SRE agents.
#[derive(Debug, Parser)]
#[command(name = "firedrill", version, about, propagate_version = true)]
struct Cli {
    /// Extra scenario directories (or files) to load besides the built-in library.
    #[arg(long = "scenarios", global = true, value_name = "PATH")]
    scenario_dirs: Vec<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List, show and validate scenarios.
    Scenarios {
        #[command(subcommand)]
        command: scenarios::ScenariosCommand,
    },
    /// Run a scenario with no agent and report what happened.
    Simulate(simulate::SimulateArgs),
    /// Query a scenario's world with PromQL, LogQL or TraceQL at a point of its simulated timeline.
    Query(query::QueryArgs),
    /// Run conformance scripts (PromQL: Prometheus's promqltest format).
    Conformance(conformance::ConformanceArgs),
    /// List the agent actions with their simulated time cost; `--json` prints OpenAI tool definitions.
    Actions {
        /// Print the actions as OpenAI function-calling tool definitions.
        #[arg(long)]
        json: bool,
    },
    /// Evaluate agents on scenarios × seeds: leaderboard, per-family table and a run directory.
    Eval(eval::EvalArgs),
    /// Play an incident yourself in the terminal, graded at the end.
    Play(play::PlayArgs),
    /// Measure environment throughput (resets/s, steps/s, VecEnv steps/s).
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn catalog(extra: &[PathBuf]) -> Result<Catalog, String> {
    let mut catalog = Catalog::builtin().map_err(|d| {
        let lines: Vec<String> = d.iter().map(|x| x.to_string()).collect();
        format!("the built-in library is invalid:\n{}", lines.join("\n"))
    })?;
    for path in extra {
        catalog.add_path(path).map_err(|e| e.to_string())?;
    }
    Ok(catalog)
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Command::Scenarios { command } => scenarios::run(command, &cli.scenario_dirs),
        Command::Simulate(args) => simulate::run(args, &catalog(&cli.scenario_dirs)?),
        Command::Query(args) => query::run(args, &catalog(&cli.scenario_dirs)?),
        Command::Conformance(args) => conformance::run(args),
        Command::Eval(args) => eval::run(args, catalog(&cli.scenario_dirs)?),
        Command::Play(args) => play::run(args, catalog(&cli.scenario_dirs)?),
        Command::Bench(args) => bench::run(args, catalog(&cli.scenario_dirs)?),
        Command::Actions { json } => {
            use firedrill_env::action::{ActionKind, openai_tools};
            if json {
                say!(
                    "{}",
                    serde_json::to_string_pretty(&openai_tools()).map_err(|e| e.to_string())?
                );
            } else {
                for k in ActionKind::ALL {
                    say!("{:<18} {:>4.0}s  {}", k.name(), k.cost_s(), k.description());
                }
                say!(
                    "\nEvery action costs the simulated seconds shown; wait costs the minutes it is given."
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
