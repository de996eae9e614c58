//! The `firedrill` binary as a user runs it: each check runs the real executable in its own process.

use std::path::PathBuf;
use std::process::{Command, Output};

fn firedrill(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .args(args)
        .output()
        .expect("run firedrill")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const FAMILIES: [&str; 9] = firedrill_scenario::library::BASIC_FAMILIES;

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/trajectory_hashes.txt")
}

/// Golden trajectory hashes for every family and three seeds, each computed in a separate process. Set
/// `FIREDRILL_BLESS=1` to rewrite the file after an intended change of the dynamics.
#[test]
fn golden_trajectory_hashes() {
    let mut lines = Vec::new();
    for id in FAMILIES {
        for seed in ["1", "2", "3"] {
            let out = firedrill(&[
                "simulate",
                id,
                "--seed",
                seed,
                "--difficulty",
                "0.5",
                "--minutes",
                "10",
                "--json",
            ]);
            assert!(
                out.status.success(),
                "{id} {seed}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
            let hash = doc["trajectory_hash"].as_str().expect("hash").to_string();
            assert_eq!(hash.len(), 32);
            lines.push(format!("{id} {seed} {hash}"));
        }
    }
    let text = lines.join("\n") + "\n";
    if std::env::var_os("FIREDRILL_BLESS").is_some() {
        std::fs::write(golden_path(), &text).expect("write golden");
        return;
    }
    let golden = std::fs::read_to_string(golden_path())
        .expect("golden file (run with FIREDRILL_BLESS=1 once)");
    assert_eq!(
        text, golden,
        "trajectories changed; if intended, rerun with FIREDRILL_BLESS=1"
    );
}

#[test]
fn the_same_run_twice_prints_the_same_document() {
    let a = firedrill(&[
        "simulate",
        "db_pool_exhaustion",
        "--seed",
        "7",
        "--minutes",
        "5",
        "--json",
        "--reveal",
    ]);
    let b = firedrill(&[
        "simulate",
        "db_pool_exhaustion",
        "--seed",
        "7",
        "--minutes",
        "5",
        "--json",
        "--reveal",
    ]);
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout);
    let c = firedrill(&[
        "simulate",
        "db_pool_exhaustion",
        "--seed",
        "8",
        "--minutes",
        "5",
        "--json",
    ]);
    let ha: serde_json::Value = serde_json::from_slice(&a.stdout).expect("json");
    let hc: serde_json::Value = serde_json::from_slice(&c.stdout).expect("json");
    assert_ne!(
        ha["trajectory_hash"], hc["trajectory_hash"],
        "different seeds gave the same trajectory"
    );
}

#[test]
fn simulate_json_has_the_documented_shape() {
    let out = firedrill(&[
        "simulate",
        "oom_crash",
        "--seed",
        "3",
        "--minutes",
        "5",
        "--json",
        "--reveal",
    ]);
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    for key in [
        "scenario",
        "seed",
        "difficulty",
        "ticks",
        "alerts",
        "trajectory_hash",
        "ground_truth",
    ] {
        assert!(doc.get(key).is_some(), "missing {key}");
    }
    let tick = &doc["ticks"][0]["services"]["api-gateway"];
    for key in ["health", "rps", "error_ratio", "p99_ms"] {
        assert!(tick.get(key).is_some(), "tick misses {key}");
    }
    let rc = &doc["ground_truth"]["root_causes"][0];
    assert!(rc["service"].is_string() && rc["fault_class"] == "memory_leak_oom");
    // Without --reveal there is no ground truth in the document.
    let hidden = firedrill(&[
        "simulate",
        "oom_crash",
        "--seed",
        "3",
        "--minutes",
        "5",
        "--json",
    ]);
    let doc: serde_json::Value = serde_json::from_slice(&hidden.stdout).expect("json");
    assert!(doc.get("ground_truth").is_none());
}

#[test]
fn simulate_human_output_shows_alerts_health_and_metrics() {
    let out = firedrill(&[
        "simulate",
        "db_pool_exhaustion",
        "--seed",
        "7",
        "--difficulty",
        "0.5",
        "--minutes",
        "30",
    ]);
    assert!(out.status.success());
    let text = stdout(&out);
    for needle in [
        "alerts",
        "FIRING",
        "health per minute",
        "key metrics",
        "trajectory hash",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn scenarios_list_json_and_show() {
    let out = firedrill(&["scenarios", "list", "--json"]);
    assert!(out.status.success());
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(list.as_array().map(|a| a.len()), Some(9));
    assert!(list[0]["fault_classes"].is_array());
    let shown = stdout(&firedrill(&["scenarios", "show", "oom_crash"]));
    assert!(
        !shown.contains("memory_leak_oom"),
        "show without --reveal leaks the class"
    );
    let revealed = stdout(&firedrill(&["scenarios", "show", "oom_crash", "--reveal"]));
    assert!(revealed.contains("memory_leak_oom"));
    let unknown = firedrill(&["scenarios", "show", "nope"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown scenario"));
}

#[test]
fn validate_points_at_file_line_and_column() {
    let dir = std::env::temp_dir().join(format!("firedrill-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let good = include_str!("../../firedrill-scenario/library/scenarios/dns_failure.yaml");
    std::fs::write(dir.join("good.yaml"), good).expect("write");
    let bad = good.replace("target: $target", "target: billing-service");
    std::fs::write(dir.join("bad.yaml"), &bad).expect("write");
    let line = bad
        .lines()
        .position(|l| l.contains("billing-service"))
        .expect("line")
        + 1;

    let out = firedrill(&["scenarios", "validate", dir.to_str().expect("utf8")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let expected =
        format!("bad.yaml:{line}:13: faults[0].target: unknown service \"billing-service\"");
    assert!(err.contains(&expected), "expected {expected:?} in {err}");
    assert!(stdout(&out).contains("1 valid, 1 invalid"));

    let ok = firedrill(&[
        "scenarios",
        "validate",
        dir.join("good.yaml").to_str().expect("utf8"),
    ]);
    assert!(ok.status.success());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_arguments_fail_cleanly() {
    let out = firedrill(&["simulate", "oom_crash", "--difficulty", "3"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--difficulty"));
    let out = firedrill(&["simulate", "nope"]);
    assert!(!out.status.success());
}

#[test]
fn the_documented_example_validates_runs_and_is_quoted_verbatim() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let example = root.join("docs/examples/checkout_pool_leak.yaml");
    let out = firedrill(&["scenarios", "validate", example.to_str().expect("utf8")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = root.join("docs/examples");
    let run = firedrill(&[
        "--scenarios",
        dir.to_str().expect("utf8"),
        "simulate",
        "checkout_pool_leak",
        "--seed",
        "2",
        "--minutes",
        "10",
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout(&run).contains("EdgeErrors"));
    let doc = std::fs::read_to_string(root.join("docs/scenarios.md")).expect("docs/scenarios.md");
    let text = std::fs::read_to_string(&example).expect("example");
    assert!(
        doc.contains(&text),
        "docs/scenarios.md no longer quotes the example file verbatim"
    );
}

#[test]
fn a_closed_stdout_ends_quietly() {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .args(["simulate", "oom_crash", "--seed", "1", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut first = [0u8; 16];
    child
        .stdout
        .take()
        .expect("stdout")
        .read_exact(&mut first)
        .expect("read");
    // The read end is dropped here, as `| head -c 16` would.
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

#[test]
fn actions_json_prints_openai_tools() {
    let out = firedrill(&["actions", "--json"]);
    assert!(out.status.success());
    let tools: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let names: Vec<&str> = tools
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    assert!(names.contains(&"resolve_incident") && names.contains(&"query_logs"));
    assert!(stdout(&firedrill(&["actions"])).contains("restart_service"));
}

/// The human outputs, pinned: `scenarios list`, `scenarios show` and `simulate` as a user reads them. A change
/// of layout, wording or dynamics shows up as a snapshot diff to review (`cargo insta review`, or
/// `INSTA_UPDATE=always cargo test -p firedrill-cli --test cli snapshots` and read the diff).
#[test]
fn human_output_snapshots() {
    for (name, args) in [
        ("scenarios_list", &["scenarios", "list"][..]),
        (
            "scenarios_show_oom_crash",
            &["scenarios", "show", "oom_crash"][..],
        ),
        (
            "simulate_db_pool_seed7",
            &[
                "simulate",
                "db_pool_exhaustion",
                "--seed",
                "7",
                "--difficulty",
                "0.5",
                "--minutes",
                "30",
            ][..],
        ),
    ] {
        let out = firedrill(args);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        insta::assert_snapshot!(name, stdout(&out));
    }
}
