//! Reading scenario files: YAML with serde-saphyr, then semantic checks, every problem reported as
//! `file:line:column: message`.

use std::path::{Path, PathBuf};

use firedrill_world::topology::SpecError;

use crate::instantiate::instantiate;
use crate::locate::Locator;
use crate::model::Scenario;

/// A problem in a scenario file, with its position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{col}: {message}")]
pub struct Diagnostic {
    /// File name.
    pub file: String,
    /// Line, from 1 (0 if unknown).
    pub line: usize,
    /// Column, from 1 (0 if unknown).
    pub col: usize,
    /// What is wrong, and where in the document (`faults[0].target: ...`).
    pub message: String,
}

/// Errors reading scenarios.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file has problems.
    #[error("{}", .0.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Diagnostic>),
}

/// Seeds and difficulties a scenario is tried with during validation, so that errors that depend on drawn
/// parameters (a picked service without a volume, say) are found before a user meets them.
const CHECK_SEEDS: std::ops::Range<u64> = 0..6;
const CHECK_DIFFICULTIES: [f64; 3] = [0.0, 0.5, 1.0];

/// Parses and checks one scenario document.
pub fn parse_scenario(file: &str, text: &str) -> Result<Scenario, Vec<Diagnostic>> {
    let scenario: Scenario = serde_saphyr::from_str(text).map_err(|e| {
        let (line, col) = e
            .location()
            .map(|l| (l.line() as usize, l.column() as usize))
            .unwrap_or((0, 0));
        vec![Diagnostic {
            file: file.to_string(),
            line,
            col,
            message: first_line(&e.to_string()),
        }]
    })?;
    let locator = Locator::new(text);
    let to_diag = |e: SpecError| {
        let pos = locator.find(&e.path);
        Diagnostic {
            file: file.to_string(),
            line: pos.map(|p| p.line).unwrap_or(0),
            col: pos.map(|p| p.col).unwrap_or(0),
            message: if e.path.0.is_empty() {
                e.message
            } else {
                format!("{}: {}", e.path, e.message)
            },
        }
    };
    let mut diags: Vec<Diagnostic> = Vec::new();
    if scenario.id.is_empty()
        || !scenario
            .id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        diags.push(to_diag(SpecError::new(
            crate::locate::path(&["id"]),
            "ids are lowercase letters, digits and '_'",
        )));
    }
    'outer: for seed in CHECK_SEEDS {
        for d in CHECK_DIFFICULTIES {
            if let Err(errors) = instantiate(&scenario, seed, d) {
                for e in errors {
                    let diag = to_diag(e);
                    if !diags.contains(&diag) {
                        diags.push(diag);
                    }
                }
                break 'outer;
            }
        }
    }
    if diags.is_empty() {
        Ok(scenario)
    } else {
        Err(diags)
    }
}

/// The message of a serde-saphyr error without its own position prefix and source snippet: the position is
/// reported separately, in `file:line:col` form.
pub(crate) fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or(s).trim();
    let line = line.strip_prefix("error: ").unwrap_or(line);
    match line
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
    {
        Some((pos, msg)) if pos.contains("column") => msg.to_string(),
        _ => line.to_string(),
    }
}

/// Reads one file.
pub fn load_file(path: &Path) -> Result<Scenario, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_scenario(&path.display().to_string(), &text).map_err(LoadError::Invalid)
}

/// The YAML files under a path (the path itself if it is a file), sorted.
pub fn scenario_files(path: &Path) -> Result<Vec<PathBuf>, LoadError> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|source| LoadError::Io {
            path: dir.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| LoadError::Io {
                path: dir.clone(),
                source,
            })?;
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}
