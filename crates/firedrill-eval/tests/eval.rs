//! End-to-end evaluation runs: identical results for any number of threads, and the three files.

use std::path::PathBuf;
use std::sync::Arc;

use firedrill_eval::output::{EPISODES_FILE, REPORT_JSON, REPORT_MD, report_json};
use firedrill_eval::{Matrix, SeedRange, create_run_dir, run_into_dir, run_matrix};
use firedrill_scenario::Catalog;

fn catalog() -> Arc<Catalog> {
    Arc::new(Catalog::builtin().expect("library"))
}

fn matrix(catalog: &Catalog) -> Matrix {
    Matrix::new(
        vec!["oracle".into(), "random".into(), "early-resolve".into()],
        vec!["oom_crash".into(), "dns_failure".into()],
        SeedRange::new(0, 3).expect("seeds"),
        0.5,
        catalog,
    )
    .expect("matrix")
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn one_and_two_jobs_write_identical_files() {
    let catalog = catalog();
    let m = matrix(&catalog);
    let out = scratch("eval-jobs");
    let mut files = Vec::new();
    for jobs in [1, 2] {
        let dir = create_run_dir(&out, &m).expect("run dir");
        let mut seen = 0;
        let report = run_into_dir(Arc::clone(&catalog), &m, jobs, &dir, &mut |p| {
            seen += 1;
            assert_eq!(p.done, seen);
            assert_eq!(p.total, 18);
        })
        .expect("run");
        assert_eq!(seen, 18);
        assert_eq!(report.agents.len(), 3);
        assert_eq!(report.families.len(), 6);
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).expect("file");
        files.push((read(EPISODES_FILE), read(REPORT_JSON), read(REPORT_MD), dir));
    }
    // The second run found the first one's directory taken.
    assert!(
        files[1].3.to_string_lossy().ends_with("-2"),
        "{:?}",
        files[1].3
    );
    assert_eq!(
        files[0].0, files[1].0,
        "episodes.jsonl differs between --jobs 1 and 2"
    );
    assert_eq!(files[0].1, files[1].1, "report.json differs");
    assert_eq!(files[0].2, files[1].2, "report.md differs");

    // episodes.jsonl: one line per episode, in (agent, scenario, seed) order, each with every step.
    let lines: Vec<serde_json::Value> = files[0]
        .0
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 18);
    let order: Vec<String> = lines
        .iter()
        .map(|l| {
            format!(
                "{}/{}/{}",
                l["agent"].as_str().unwrap_or(""),
                l["scenario"].as_str().unwrap_or(""),
                l["seed"]
            )
        })
        .collect();
    let expected: Vec<String> = m
        .tasks()
        .iter()
        .map(|t| format!("{}/{}/{}", t.agent, t.scenario, t.seed))
        .collect();
    assert_eq!(order, expected);
    for l in &lines {
        let steps = l["steps"].as_array().expect("steps");
        assert!(!steps.is_empty());
        for s in steps {
            assert!(s["action"]["action"].is_string());
            assert!(s["observation"]["content"]["type"].is_string());
            assert!(s["reward"]["outcome"].is_number());
        }
        assert!(l["grade"]["score"].is_number());
        assert!(l["grade"]["lost"].is_array());
    }
    // The oracle solves what it is given; the early resolver does not.
    let report: serde_json::Value = serde_json::from_str(&files[0].1).expect("report json");
    let row = |name: &str| {
        report["agents"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["name"] == name))
            .cloned()
            .expect("row")
    };
    assert_eq!(report["agents"][0]["name"], "oracle");
    assert_eq!(row("oracle")["episodes"], 6);
    assert!(row("oracle")["success_rate"].as_f64() > row("early-resolve")["success_rate"].as_f64());
}

#[test]
fn reports_in_memory_match_for_three_jobs_too() {
    let catalog = catalog();
    let m = matrix(&catalog);
    let mut texts = Vec::new();
    for jobs in [1, 3] {
        let mut lines = Vec::new();
        let report = run_matrix(
            Arc::clone(&catalog),
            &m,
            jobs,
            &mut |r| {
                lines.push(serde_json::to_string(r).expect("serialise"));
                Ok(())
            },
            &mut |_| {},
        )
        .expect("run");
        texts.push((report_json(&report).expect("json"), lines));
    }
    assert_eq!(texts[0], texts[1]);
}

#[test]
fn a_failing_sink_stops_the_run_with_its_error() {
    let catalog = catalog();
    let m = matrix(&catalog);
    let mut n = 0;
    let r = run_matrix(
        catalog,
        &m,
        2,
        &mut |_| {
            n += 1;
            if n == 3 {
                Err(firedrill_eval::EvalError::Empty("disk space"))
            } else {
                Ok(())
            }
        },
        &mut |_| {},
    );
    assert!(matches!(
        r,
        Err(firedrill_eval::EvalError::Empty("disk space"))
    ));
    assert_eq!(n, 3);
}
