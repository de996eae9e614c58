//! The run directory: `<out>/<run-id>/{episodes.jsonl, report.json, report.md}`.
//!
//! The run id is made from the matrix alone (no clock): `<agents>_<scenarios>_s<start>-<end>_d<difficulty>`,
//! with `-2`, `-3`... appended when a directory of that name already exists, so a repeated run never overwrites
//! an earlier one.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use firedrill_agents::EpisodeRecord;
use firedrill_scenario::Catalog;

use crate::EvalError;
use crate::matrix::Matrix;
use crate::report::Report;
use crate::run::{Progress, run_matrix};

/// File names inside a run directory.
pub const EPISODES_FILE: &str = "episodes.jsonl";
/// The report as JSON.
pub const REPORT_JSON: &str = "report.json";
/// The report as Markdown.
pub const REPORT_MD: &str = "report.md";

/// Longest run id before the agent and scenario parts are replaced by a hash.
const MAX_ID_LEN: usize = 80;

fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '+') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The run id of a matrix (before any `-N` suffix).
pub fn run_id(matrix: &Matrix) -> String {
    let basic: Vec<&str> = firedrill_scenario::library::BASIC_FAMILIES.to_vec();
    let scenarios = if matrix.scenarios.iter().map(String::as_str).eq(basic) {
        "basic".to_string()
    } else {
        matrix.scenarios.join("+")
    };
    let tail = format!(
        "s{}-{}_d{}",
        matrix.seeds.start, matrix.seeds.end, matrix.difficulty
    );
    let id = clean(&format!(
        "{}_{}_{}",
        matrix.agents.join("+"),
        scenarios,
        tail
    ));
    if id.len() <= MAX_ID_LEN {
        return id;
    }
    // Too long for a directory name people can read: keep the seeds and difficulty, hash the rest.
    let key = format!("{}|{}", matrix.agents.join(","), matrix.scenarios.join(","));
    let hash = xxhash_rust::xxh3::xxh3_64(key.as_bytes());
    clean(&format!(
        "{}agents_{}scenarios_{:08x}_{}",
        matrix.agents.len(),
        matrix.scenarios.len(),
        hash >> 32,
        tail
    ))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EvalError + '_ {
    move |source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates `<out>/<run-id>` (or `<run-id>-2`, `-3`... if taken) and returns it. Creating the directory itself is
/// the check, so two runs started at once never share one.
pub fn create_run_dir(out: &Path, matrix: &Matrix) -> Result<PathBuf, EvalError> {
    std::fs::create_dir_all(out).map_err(io(out))?;
    let id = run_id(matrix);
    for n in 1u32.. {
        let name = if n == 1 {
            id.clone()
        } else {
            format!("{id}-{n}")
        };
        let dir = out.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io(&dir)(e)),
        }
    }
    // `1u32..` ends only after four billion taken names.
    Err(EvalError::Io {
        path: out.to_path_buf(),
        source: std::io::Error::other("no free run directory name"),
    })
}

/// Runs the matrix and writes its three files into `dir` (which must exist): `episodes.jsonl` as episodes
/// arrive, in report order, then `report.json` and `report.md`.
pub fn run_into_dir(
    catalog: Arc<Catalog>,
    matrix: &Matrix,
    jobs: usize,
    dir: &Path,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Report, EvalError> {
    let episodes_path = dir.join(EPISODES_FILE);
    let file = File::create(&episodes_path).map_err(io(&episodes_path))?;
    let mut episodes = BufWriter::new(file);
    let mut sink = |record: &EpisodeRecord| -> Result<(), EvalError> {
        write_episode(&mut episodes, record).map_err(io(&episodes_path))
    };
    let report = run_matrix(catalog, matrix, jobs, &mut sink, progress)?;
    episodes.flush().map_err(io(&episodes_path))?;
    write_report(dir, &report)?;
    Ok(report)
}

/// One `episodes.jsonl` line: the episode record (scenario, seed, difficulty, agent, page, every step with its
/// action, observation and reward breakdown, the return and the grade).
fn write_episode(w: &mut impl Write, record: &EpisodeRecord) -> std::io::Result<()> {
    serde_json::to_writer(&mut *w, record)?;
    w.write_all(b"\n")
}

/// Writes `report.json` (pretty-printed, with a final newline) and `report.md` into `dir`.
pub fn write_report(dir: &Path, report: &Report) -> Result<(), EvalError> {
    let json_path = dir.join(REPORT_JSON);
    std::fs::write(&json_path, report_json(report)?).map_err(io(&json_path))?;
    let md_path = dir.join(REPORT_MD);
    std::fs::write(&md_path, report.to_markdown()).map_err(io(&md_path))?;
    Ok(())
}

/// The text of `report.json`.
pub fn report_json(report: &Report) -> Result<String, EvalError> {
    let mut s = serde_json::to_string_pretty(report).map_err(EvalError::Json)?;
    s.push('\n');
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::{DEFAULT_AGENTS, SeedRange};

    fn matrix(agents: &[&str], scenarios: &[&str]) -> Matrix {
        Matrix {
            agents: agents.iter().map(|s| s.to_string()).collect(),
            scenarios: scenarios.iter().map(|s| s.to_string()).collect(),
            seeds: SeedRange { start: 0, end: 20 },
            difficulty: 0.5,
        }
    }

    #[test]
    fn run_ids_are_readable_and_deterministic() {
        let basic = firedrill_scenario::library::BASIC_FAMILIES;
        assert_eq!(
            run_id(&matrix(&DEFAULT_AGENTS, &basic)),
            "heuristic+oracle+random_basic_s0-20_d0.5"
        );
        assert_eq!(
            run_id(&matrix(&["noop"], &["oom_crash", "my/odd id"])),
            "noop_oom_crash+my_odd_id_s0-20_d0.5"
        );
        let long = matrix(
            &[
                "oracle",
                "heuristic",
                "random",
                "noop",
                "restart-all",
                "farmer",
            ],
            &["oom_crash", "disk_full", "dns_failure", "cert_expiry"],
        );
        let id = run_id(&long);
        assert!(
            id.len() <= MAX_ID_LEN && id.starts_with("6agents_4scenarios_"),
            "{id}"
        );
        assert_eq!(id, run_id(&long.clone()));
    }
}
