//! `firedrill play`: a person plays an incident in the terminal.
//!
//! Actions are read line by line from stdin, either as the wire JSON (`{"action": "query_logs", "service":
//! "orders"}`) or in the short command syntax of [`firedrill_env::command`] (`logs orders level=warn`, `wait 5`,
//! `resolve orders-db disk_full evidence=ev-3,ev-7 summary="volume filled up"`). Either goes to the environment,
//! which validates it exactly as it validates an agent's action (a bad parameter is an error observation with its
//! penalty); only lines that cannot be translated at all (an unknown command, an unclosed quote) are refused here,
//! at no cost. `help` lists the actions, `help NAME` details one, `quit` ends; blank lines and lines starting with
//! `#` are skipped, so a script can be piped in. At the end the grade is printed with its components and every
//! lost point.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use comfy_table::{CellAlignment, ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use firedrill_env::command::{help_action, help_overview, translate};
use firedrill_env::{Env, Grade, RewardBreakdown, Step};
use firedrill_scenario::Catalog;

#[derive(Debug, Args)]
#[command(
    after_help = "Actions are read line by line from stdin, as JSON ({\"action\": \"query_logs\", \"service\": \"x\"}) \
or as short commands: NAME [POSITIONAL...] [key=value...], e.g. `query_logs order-service level=warn`, `wait 5`, \
`resolve postgres-db disk_full evidence=ev-3,ev-7 summary=\"...\"`. At the prompt, `help` lists every action \
and its parameters; `quit` stops. Piped scripts work: blank lines and # comments are skipped."
)]
pub struct PlayArgs {
    /// Scenario id (`firedrill scenarios list` shows them).
    scenario: String,
    /// Seed: the same seed is the same incident.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Difficulty in [0, 1].
    #[arg(long, default_value_t = 0.5)]
    difficulty: f64,
}

fn reward_line(reward: f64, b: &RewardBreakdown) -> String {
    let terms: Vec<String> = [
        ("information", b.information),
        ("shaping", b.shaping),
        ("safety", b.safety),
        ("invalid", b.invalid),
        ("time", b.time),
        ("outcome", b.outcome),
    ]
    .iter()
    // Terms that round to zero at four decimals are noise in a line meant for reading.
    .filter(|(_, v)| v.abs() >= 0.00005)
    .map(|(k, v)| format!("{k} {v:+.4}"))
    .collect();
    format!("reward {reward:+.4} ({})", terms.join(", "))
}

fn print_grade(grade: &Grade, episode_return: f64) {
    say!(
        "\nGRADE: score {:.3} — {}",
        grade.score,
        if grade.success {
            "success"
        } else {
            "not a success"
        }
    );
    say!(
        "resolved {}, mitigated {}, diagnosis correct {}, minutes to mitigate {}, user impact {:.2}%, \
         hallucinated citations {}, harmful actions {}, invalid actions {}, return {:+.4}",
        grade.resolved,
        grade.mitigated,
        grade.diagnosis_correct,
        grade
            .minutes_to_mitigate
            .map(|m| format!("{m:.1}"))
            .unwrap_or_else(|| "–".into()),
        grade.impact * 100.0,
        grade.hallucinated_citations,
        grade.harmful_actions,
        grade.invalid_actions,
        episode_return
    );
    let c = &grade.components;
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(["component", "earned", "weight", "points"]);
    for (name, comp) in [
        ("mitigation", c.mitigation),
        ("diagnosis", c.diagnosis),
        ("evidence", c.evidence),
        ("time", c.time),
        ("impact", c.impact),
        ("safety", c.safety),
    ] {
        t.add_row([
            name.to_string(),
            format!("{:.1}%", comp.fraction * 100.0),
            format!("{:.2}", comp.weight),
            format!("{:.3}", comp.points()),
        ]);
    }
    for i in 1..4 {
        if let Some(col) = t.column_mut(i) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    say!("{t}");
    if grade.lost.is_empty() {
        say!("no points lost");
    } else {
        say!("points lost:");
        for l in &grade.lost {
            say!(
                "  -{:.3} {} [{}]: {}",
                l.points,
                l.component,
                l.reason,
                l.detail
            );
        }
    }
}

/// Writes the prompt without a newline (interactive use only).
fn prompt() {
    let mut out = std::io::stdout().lock();
    if write!(out, "> ").and_then(|_| out.flush()).is_err() {
        std::process::exit(0);
    }
}

fn show(step: &Step) {
    say!("{}", step.observation.to_text().trim_end());
    say!("{}", reward_line(step.reward, &step.breakdown));
}

pub fn run(args: PlayArgs, catalog: Catalog) -> Result<ExitCode, String> {
    if !(args.difficulty.is_finite() && (0.0..=1.0).contains(&args.difficulty)) {
        return Err(format!(
            "--difficulty must be in [0, 1], got {}",
            args.difficulty
        ));
    }
    let mut env = Env::new(Arc::new(catalog));
    let page = env
        .reset(&args.scenario, args.seed, args.difficulty)
        .map_err(|e| e.to_string())?;
    say!("{}", page.to_text().trim_end());
    say!("\nYou are on call. Type `help` for the actions, `quit` to stop.");
    let interactive = std::io::stdin().is_terminal();
    let mut total = 0.0;
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        if interactive {
            prompt();
        }
        let line = match lines.next() {
            None => break,
            Some(Ok(l)) => l,
            Some(Err(e)) => return Err(format!("cannot read stdin: {e}")),
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !interactive {
            // Piped input is not echoed by a terminal: show it so the transcript reads in order.
            say!("\n> {line}");
        }
        let (first, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let step = match first {
            "quit" | "exit" => {
                say!("quit: the episode was not resolved, so it is not graded");
                return Ok(ExitCode::SUCCESS);
            }
            "help" | "?" => {
                let rest = rest.trim();
                say!(
                    "{}",
                    if rest.is_empty() {
                        help_overview()
                    } else {
                        help_action(rest)
                    }
                );
                continue;
            }
            _ if line.starts_with('{') => env.step_json(line),
            _ => match translate(line) {
                Ok(json) => env.step_json(&json.to_string()),
                Err(e) => {
                    say!("not sent: {e} (type help for the actions; nothing happened)");
                    continue;
                }
            },
        }
        .map_err(|e| e.to_string())?;
        total += step.reward;
        show(&step);
        if interactive {
            // A blank line before the next prompt separates one exchange from the next.
            say!("");
        }
        if let Some(grade) = &step.info.grade {
            print_grade(grade, total);
            return Ok(ExitCode::SUCCESS);
        }
    }
    say!("\ninput ended before the episode did: not graded (resolve_incident ends an episode)");
    Ok(ExitCode::SUCCESS)
}
