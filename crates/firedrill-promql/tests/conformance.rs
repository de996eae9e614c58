//! Runs the shared Prometheus promqltest suite and our own scripts.

use std::path::{Path, PathBuf};

use firedrill_promql::promqltest::{FileReport, run_file};

fn shared_dir(sub: &str) -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/conformance/promql"
    ))
    .join(sub)
}

fn run_dir(dir: &Path) -> Vec<FileReport> {
    assert!(
        dir.is_dir(),
        "conformance directory {} does not exist; the shared PromQL suite must be checked out beside the repository",
        dir.display()
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read conformance dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .test files in {}", dir.display());
    files
        .iter()
        .map(|f| run_file(f).expect("read test file"))
        .collect()
}

fn print_reports(title: &str, reports: &[FileReport]) -> (usize, usize, usize) {
    let (mut p, mut f, mut s) = (0, 0, 0);
    println!("== {title} ==");
    for r in reports {
        let name = Path::new(&r.file)
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        println!(
            "{name:<32} passed {:>4}  failed {:>3}  skipped {:>4}",
            r.passed, r.failed, r.skipped
        );
        for fail in &r.failures {
            println!(
                "    line {}: {}\n        {}",
                fail.line, fail.query, fail.message
            );
        }
        p += r.passed;
        f += r.failed;
        s += r.skipped;
    }
    println!("{title} total: passed {p}, failed {f}, skipped {s}");
    (p, f, s)
}

/// The core scripts, vendored unchanged under `tests/prometheus/core` (see its NOTICE.md) so CI needs nothing
/// outside the repository.
fn vendored_core() -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/prometheus/core"
    ))
    .to_path_buf()
}

#[test]
fn core_conformance() {
    let reports = run_dir(&vendored_core());
    let (p, f, _) = print_reports("core", &reports);
    let rate = p as f64 / (p + f).max(1) as f64;
    println!("core pass rate {:.2}%", rate * 100.0);
    assert!(
        rate >= 0.97,
        "core pass rate {:.2}% below 97%",
        rate * 100.0
    );
}

/// Newer/experimental features: reported, not required.
#[test]
fn optional_conformance_report() {
    let dir = shared_dir("optional");
    if !dir.is_dir() {
        println!("optional suite not present at {}", dir.display());
        return;
    }
    let reports = run_dir(&dir);
    print_reports("optional", &reports);
}

#[test]
fn own_scripts() {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scripts"));
    let reports = run_dir(dir);
    let (_, f, s) = print_reports("own scripts", &reports);
    assert_eq!(f, 0, "own promqltest scripts failed");
    assert_eq!(s, 0);
}

/// Every instant evaluation of the core and own scripts whose query compiles to an `InstantPlan` gives
/// exactly the engine's result through the plan (or the plan declines where the engine fails).
#[test]
fn instant_plans_agree_with_the_engine() {
    use firedrill_promql::promqltest::check_plans;
    use firedrill_promql::{Engine, EngineOptions};

    let engine = Engine::new(EngineOptions::default());
    let own = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scripts")).to_path_buf();
    let (mut compared, mut declined, mut declined_ok, mut not_compiled) = (0, 0, 0, 0);
    let mut mismatches = Vec::new();
    for dir in [vendored_core(), own] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("read script dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "test"))
            .collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).expect("read script");
            let r = check_plans(&f.display().to_string(), &text, &engine);
            compared += r.compared;
            declined += r.declined;
            declined_ok += r.declined_engine_ok;
            not_compiled += r.not_compiled;
            for m in r.mismatches {
                mismatches.push(format!(
                    "{}:{}: {}\n    {}",
                    f.display(),
                    m.line,
                    m.query,
                    m.message
                ));
            }
        }
    }
    println!(
        "plans: compared {compared}, declined {declined} (engine answered {declined_ok}), not compiled {not_compiled}"
    );
    assert!(
        mismatches.is_empty(),
        "{} plan results differ from the engine's:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    // The check must exercise the plan, not only its refusals.
    assert!(compared > 500, "only {compared} plan evaluations compared");
}
