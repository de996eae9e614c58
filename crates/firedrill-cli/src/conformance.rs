//! `firedrill conformance promql PATH...`: runs Prometheus `promqltest` scripts against our PromQL engine.
//!
//! A failing case is a result, not an error: the command exits with success whatever the pass rate, so a
//! script can read the counts (gating on a rate is the caller's choice; the CI test gates at 97 %). It fails
//! only when its input cannot be read: a path that does not exist, a directory without `.test` files, a file
//! that is not readable UTF-8. Then nothing is printed on stdout, so a partial report is never mistaken for a
//! complete one.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use firedrill_promql::promqltest::{FileReport, run_file};
use serde_json::json;

/// Arguments of `firedrill conformance`.
#[derive(Debug, Args)]
pub struct ConformanceArgs {
    #[command(subcommand)]
    suite: Suite,
}

#[derive(Debug, Subcommand)]
enum Suite {
    /// Run promqltest scripts (`.test` files; a directory is searched recursively). Cases with native
    /// histograms are skipped, never counted as passed.
    Promql {
        /// Script files or directories.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Print `{files: [{file, passed, failed, skipped}], passed, failed, skipped}`.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `firedrill conformance`.
pub fn run(args: ConformanceArgs) -> Result<ExitCode, String> {
    let Suite::Promql { paths, json } = args.suite;
    let mut files = Vec::new();
    for p in &paths {
        collect(p, &mut files)?;
    }
    let mut reports = Vec::with_capacity(files.len());
    for f in &files {
        reports.push(run_file(f).map_err(|e| format!("cannot read {}: {e}", f.display()))?);
    }
    let (passed, failed, skipped) = totals(&reports);
    if json {
        let files: Vec<_> = reports
            .iter()
            .map(|r| {
                json!({"file": r.file, "passed": r.passed, "failed": r.failed, "skipped": r.skipped})
            })
            .collect();
        say!(
            "{}",
            json!({"files": files, "passed": passed, "failed": failed, "skipped": skipped})
        );
        return Ok(ExitCode::SUCCESS);
    }
    let width = reports.iter().map(|r| r.file.len()).max().unwrap_or(0);
    for r in &reports {
        say!(
            "{:width$}  {:>4} passed  {:>3} failed  {:>4} skipped",
            r.file,
            r.passed,
            r.failed,
            r.skipped
        );
        for f in &r.failures {
            say!("    line {}: {}\n      {}", f.line, f.query, f.message);
        }
    }
    say!("{passed} passed, {failed} failed, {skipped} skipped");
    Ok(ExitCode::SUCCESS)
}

fn totals(reports: &[FileReport]) -> (usize, usize, usize) {
    reports.iter().fold((0, 0, 0), |(p, f, s), r| {
        (p + r.passed, f + r.failed, s + r.skipped)
    })
}

/// The scripts a path names: the file itself, or every `.test` file under a directory, sorted by path.
fn collect(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !meta.is_dir() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let before = out.len();
    walk(path, out)?;
    if out.len() == before {
        return Err(format!("no .test files under {}", path.display()));
    }
    Ok(())
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    // Directory order is the file system's; sorting keeps the report stable.
    entries.sort();
    for p in entries {
        // Linked directories are not followed: a link loop must not recurse forever.
        let is_dir = std::fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_dir());
        if is_dir {
            walk(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "test") {
            out.push(p);
        }
    }
    Ok(())
}
