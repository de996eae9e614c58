//! `firedrill eval`, `play` and `bench` as a user runs them: each check runs the built binary in its own process.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn firedrill(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run firedrill")
}

fn with_stdin(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn firedrill");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write script");
    child.wait_with_output().expect("wait")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

const FIELDS: [&str; 11] = [
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
];

#[test]
fn eval_json_prints_the_report_and_writes_the_run_directory() {
    let out = scratch("cli-eval");
    let out_s = out.to_string_lossy().into_owned();
    let args = |jobs: &'static str| {
        vec![
            "eval",
            "--agent",
            "noop",
            "--agent",
            "oracle",
            "--scenario",
            "oom_crash",
            "--seeds",
            "0..2",
            "--jobs",
            jobs,
            "--json",
            "--out",
        ]
    };
    let mut a2 = args("2");
    a2.push(&out_s);
    let o = firedrill(&a2);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let report: serde_json::Value =
        serde_json::from_slice(&o.stdout).expect("report.json on stdout");
    let agents = report["agents"].as_array().expect("agents");
    assert_eq!(agents.len(), 2);
    for a in agents {
        for f in FIELDS {
            assert!(a.get(f).is_some(), "agent row lacks {f}: {a}");
        }
        assert_eq!(a["episodes"], 2);
    }
    assert_eq!(agents[0]["name"], "oracle");
    assert_eq!(agents[0]["success_rate"], 1.0);
    assert_eq!(agents[1]["name"], "noop");
    assert!(agents[1]["mean_minutes_to_mitigate"].is_null());
    let families = report["families"].as_array().expect("families");
    assert_eq!(families.len(), 2);
    for f in families {
        assert_eq!(f["family"], "oom_crash");
        for k in &FIELDS[1..] {
            assert!(f.get(*k).is_some(), "family row lacks {k}: {f}");
        }
    }

    let dir = out.join("noop+oracle_oom_crash_s0-2_d0.5");
    let written = std::fs::read_to_string(dir.join("report.json")).expect("report.json written");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&written).expect("json"),
        report
    );
    assert!(
        std::fs::read_to_string(dir.join("report.md"))
            .expect("report.md")
            .contains("## Leaderboard")
    );
    let episodes = std::fs::read_to_string(dir.join("episodes.jsonl")).expect("episodes.jsonl");
    let lines: Vec<serde_json::Value> = episodes
        .lines()
        .map(|l| serde_json::from_str(l).expect("jsonl line"))
        .collect();
    assert_eq!(lines.len(), 4);
    assert!(
        lines
            .iter()
            .all(|l| l["steps"].as_array().is_some_and(|s| !s.is_empty()))
    );

    // One job gives the same report, in a new directory beside the first.
    let mut a1 = args("1");
    a1.push(&out_s);
    let o1 = firedrill(&a1);
    assert!(o1.status.success(), "{}", text(&o1.stderr));
    assert_eq!(o1.stdout, o.stdout, "--jobs 1 and --jobs 2 differ");
    assert!(
        out.join("noop+oracle_oom_crash_s0-2_d0.5-2/report.json")
            .is_file()
    );
}

#[test]
fn eval_refuses_bad_arguments_with_a_clear_message() {
    let out = scratch("cli-eval-bad");
    let out_s = out.to_string_lossy().into_owned();
    let cases: [(&[&str], &str); 7] = [
        (&["--agent", "nobody"], "unknown agent \"nobody\""),
        (
            &["--scenario", "no_such_scenario"],
            "unknown scenario \"no_such_scenario\"",
        ),
        (&["--seeds", "5..2"], "5..2"),
        (&["--seeds", "x"], "bad seed range"),
        (
            &["--difficulty", "1.5"],
            "difficulty must be a number in [0, 1]",
        ),
        (&["--suite", "advanced"], "unknown suite \"advanced\""),
        (&["--jobs", "0"], "--jobs must be at least 1"),
    ];
    for (extra, needle) in cases {
        let mut args = vec!["eval", "--out", &out_s];
        args.extend_from_slice(extra);
        let o = firedrill(&args);
        assert!(!o.status.success(), "{extra:?} succeeded");
        let err = text(&o.stderr);
        assert!(err.contains(needle), "{extra:?}: {err}");
        assert!(o.stdout.is_empty(), "{extra:?} printed {}", text(&o.stdout));
    }
    // Nothing was run, so no run directory was made.
    assert!(std::fs::read_dir(&out).map(|d| d.count()).unwrap_or(0) == 0);
}

#[test]
fn play_from_a_script_investigates_resolves_and_prints_the_grade() {
    let script = "\
# a short investigation, then a resolution
help query_logs
services
query_deploys
logs api-gateway level=warn limit=5
{\"action\": \"query_metrics\", \"service\": \"api-gateway\", \"window_minutes\": 10}
diag api-gateway health
not_a_command
{\"action\": \"query_logs\"
wait 2
resolve api-gateway memory_leak_oom evidence=ev-1,ev-999 summary=\"a guess\"
";
    let o = with_stdin(&["play", "oom_crash", "--seed", "3"], script);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    // The page, the help, the observations and their rewards.
    assert!(out.contains("PAGE: "), "{out}");
    assert!(
        out.contains("query_logs [SERVICE] [level=debug|info|warn|error]"),
        "{out}"
    );
    assert!(
        out.contains("> logs api-gateway level=warn limit=5"),
        "{out}"
    );
    assert!(out.contains("logs of api-gateway, last 15 min"), "{out}");
    assert!(out.contains("metrics of api-gateway, last 10 min"), "{out}");
    assert!(out.contains("diagnostic health on api-gateway"), "{out}");
    assert!(out.contains("reward "), "{out}");
    // A line that is no command costs nothing; malformed JSON is the environment's error observation.
    assert!(
        out.contains("not sent: unknown command \"not_a_command\""),
        "{out}"
    );
    assert!(out.contains("ERROR malformed"), "{out}");
    // The grade, its components and every lost point with its reason.
    assert!(out.contains("GRADE: score "), "{out}");
    for c in [
        "mitigation",
        "diagnosis",
        "evidence",
        "time",
        "impact",
        "safety",
    ] {
        assert!(out.contains(c), "no component {c}: {out}");
    }
    assert!(out.contains("points lost:"), "{out}");
    // oom_crash seed 3 pages on another service: the named one is wrong. ev-999 was never returned.
    assert!(out.contains("[wrong_root_cause_service]"), "{out}");
    assert!(out.contains("hallucinated citations 1,"), "{out}");
    assert!(out.contains("invalid actions 1,"), "{out}");
}

#[test]
fn play_ends_cleanly_at_eof_and_on_quit() {
    let o = with_stdin(&["play", "disk_full", "--seed", "1"], "wait 1\n");
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("input ended before the episode did: not graded"));
    let o = with_stdin(&["play", "disk_full", "--seed", "1"], "quit\nwait 1\n");
    assert!(o.status.success());
    let out = text(&o.stdout);
    assert!(out.contains("quit:"), "{out}");
    assert!(!out.contains("waited"), "{out}");
    let o = with_stdin(&["play", "no_such", "--seed", "1"], "");
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("unknown scenario"));
}

#[test]
fn bench_json_prints_the_five_figures() {
    let o = firedrill(&["bench", "--json", "--seconds", "0.1", "--threads", "2"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    for f in [
        "resets_per_sec",
        "repeated_resets_per_sec",
        "steps_per_sec_structured",
        "steps_per_sec_text",
        "steps_per_sec_with_resets",
        "episodes_per_sec",
        "vec_steps_per_sec",
        "vec_policy_steps_per_sec",
        "vec_policy_steps_per_sec_prefetch",
    ] {
        assert!(v[f].as_f64().is_some_and(|x| x > 0.0), "{f}: {v}");
    }
    assert_eq!(v["threads"], 2);
    assert_eq!(v["policy_ms"], 2.0);
    // One thread has nothing to prepare starts on: no training-loop figures.
    let o = firedrill(&[
        "bench",
        "--json",
        "--seconds",
        "0.05",
        "--threads",
        "1",
        "--policy-ms",
        "0.5",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(v["vec_policy_steps_per_sec"].is_null(), "{v}");
    assert_eq!(v["policy_ms"], 0.5);
    let o = firedrill(&["bench", "--policy-ms=-1"]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("--policy-ms"),
        "{}",
        text(&o.stderr)
    );
    let o = firedrill(&["bench", "--seconds", "0"]);
    assert!(!o.status.success());
}
