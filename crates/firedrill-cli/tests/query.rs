//! `firedrill query` and `firedrill conformance` as a user runs them, each in its own process.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn firedrill(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .args(args)
        .output()
        .expect("run firedrill")
}

fn ok(args: &[&str]) -> String {
    let out = firedrill(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn json(args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.push("--json");
    serde_json::from_str(&ok(&a)).expect("json")
}

/// Runs a command that must fail cleanly; returns its stderr.
fn fails(args: &[&str]) -> String {
    let out = firedrill(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{args:?} succeeded");
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "{args:?} printed on stdout");
    stderr
}

const BASE: [&str; 6] = ["query", "db_pool_exhaustion", "--seed", "4", "--at", "70"];

fn with(extra: &[&str]) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = BASE.to_vec();
    for e in extra {
        v.push(Box::leak(e.to_string().into_boxed_str()));
    }
    v
}

const P99: &str = "histogram_quantile(0.99, sum by (le, service) (rate(http_request_duration_seconds_bucket[5m])))";

#[test]
fn promql_example_prints_one_p99_per_service() {
    let text = ok(&with(&["--promql", P99]));
    assert!(text.contains("world at minute 70"), "{text}");
    assert!(text.contains("{service=\"order-service\"}"), "{text}");
    let data = json(&with(&["--promql", P99]));
    assert_eq!(data["resultType"], "vector");
    let result = data["result"].as_array().expect("result");
    assert!(result.len() >= 5, "{data}");
    let mut services: Vec<&str> = result
        .iter()
        .map(|r| r["metric"]["service"].as_str().expect("service"))
        .collect();
    let n = services.len();
    services.dedup();
    assert_eq!(services.len(), n, "one series per service");
}

#[test]
fn promql_range_has_a_point_per_step() {
    let data = json(&[
        "query",
        "db_pool_exhaustion",
        "--seed",
        "4",
        "--range",
        "60",
        "70",
        "1m",
        "--promql",
        "sum(up)",
    ]);
    assert_eq!(data["resultType"], "matrix");
    assert_eq!(
        data["result"][0]["values"]
            .as_array()
            .expect("values")
            .len(),
        11
    );
}

#[test]
fn logql_example_and_a_non_empty_count_by_level() {
    let example =
        r#"sum by (level) (count_over_time({service="order-service"} |= "timeout" [10m]))"#;
    let data = json(&with(&["--logql", example]));
    assert_eq!(data["resultType"], "vector");
    assert!(data["stats"]["summary"]["totalLinesProcessed"].as_u64() > Some(0));
    let everywhere = r#"sum by (level) (count_over_time({namespace="prod"} |= "timeout" [10m]))"#;
    let data = json(&with(&["--logql", everywhere]));
    let result = data["result"].as_array().expect("result");
    assert!(!result.is_empty(), "{data}");
    assert!(result.iter().all(|r| r["metric"]["level"].is_string()));
    // A log query prints lines, newest first.
    let text = ok(&with(&["--logql", r#"{namespace="prod"} |= "timeout""#]));
    assert!(text.contains("lines from"), "{text}");
}

#[test]
fn a_searched_trace_resolves_by_id() {
    let data = json(&with(&["--traceql", "{ status = error }"]));
    let id = data["traces"][0]["traceID"].as_str().expect("a hit");
    let body = json(&with(&["--trace", id]));
    let spans: usize = body["batches"]
        .as_array()
        .expect("batches")
        .iter()
        .map(|b| b["scopeSpans"][0]["spans"].as_array().map_or(0, Vec::len))
        .sum();
    assert!(spans > 1, "{body}");
    let text = ok(&with(&["--trace", id]));
    assert!(text.contains(&format!("trace {id}")), "{text}");
}

/// Every `firedrill query` example of the README runs (trace ids are deterministic: the README's names a trace
/// of seed 4 at minute 70).
#[test]
fn readme_query_examples_run() {
    let readme = include_str!("../../../README.md");
    let mut n = 0;
    for line in readme.lines() {
        let Some(rest) = line.strip_prefix("cargo run --release -- query ") else {
            continue;
        };
        let args = shell_words(rest);
        let mut argv = vec!["query"];
        argv.extend(args.iter().map(String::as_str));
        ok(&argv);
        n += 1;
    }
    assert!(n >= 5, "{n} examples");
}

/// Splits a command line on blanks, honouring single quotes (all the README uses).
fn shell_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in s.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

fn scalar(v: &Value) -> f64 {
    v["result"][1]
        .as_str()
        .expect("value")
        .parse()
        .expect("f64")
}

#[test]
fn before_the_page_is_the_same_world_as_seen_later() {
    let q = ["query", "db_pool_exhaustion", "--seed", "4"];
    let t30 = scalar(&json(
        &[&q[..], &["--at", "30", "--promql", "time()"]].concat(),
    ));
    let then = json(
        &[
            &q[..],
            &["--at", "30", "--promql", "scalar(sum(http_requests_total))"],
        ]
        .concat(),
    );
    let later_q = format!("scalar(sum(http_requests_total @ {t30}))");
    let later = json(&[&q[..], &["--at", "70", "--promql", &later_q]].concat());
    assert!(scalar(&then) > 0.0);
    assert_eq!(scalar(&then), scalar(&later));
}

#[test]
fn bad_queries_fail_with_their_position() {
    let e = fails(&with(&["--promql", "sum by (service) http_requests_total"]));
    assert!(e.contains("position 17"), "{e}");
    assert!(e.contains("                   ^"), "{e}");
    let e = fails(&with(&["--logql", r#"{service="x"} |= timeout"#]));
    assert!(e.contains("position 17"), "{e}");
    let e = fails(&with(&["--traceql", "{ duration > }"]));
    assert!(e.contains("position 13"), "{e}");
    let e = fails(&with(&["--trace", "not-hex"]));
    assert!(e.contains("invalid trace id"), "{e}");
    let e = fails(&with(&["--trace", "00000000000000000000000000000001"]));
    assert!(e.contains("not found"), "{e}");
    // Valid but not evaluable: a range query of a range vector.
    let e = fails(&[
        "query",
        "db_pool_exhaustion",
        "--seed",
        "4",
        "--range",
        "60",
        "70",
        "1m",
        "--promql",
        "up[5m]",
    ]);
    assert!(e.contains("range"), "{e}");
}

#[test]
fn bad_times_fail_clearly() {
    let q = ["query", "db_pool_exhaustion", "--seed", "4"];
    let e = fails(&[&q[..], &["--at", "100000", "--promql", "up"]].concat());
    assert!(e.contains("beyond the incident"), "{e}");
    let e = fails(&[&q[..], &["--at", "-5", "--promql", "up"]].concat());
    assert!(e.contains("--at"), "{e}");
    let e = fails(
        &[
            &q[..],
            &["--at", "60", "--range", "50", "65", "1m", "--promql", "up"],
        ]
        .concat(),
    );
    assert!(e.contains("not reached"), "{e}");
    let e = fails(&[&q[..], &["--range", "70", "60", "1m", "--promql", "up"]].concat());
    assert!(e.contains("before START"), "{e}");
    let e = fails(&[&q[..], &["--range", "60", "70", "0s", "--promql", "up"]].concat());
    assert!(e.contains("STEP"), "{e}");
    let e = fails(&["query", "no_such_scenario", "--seed", "1", "--promql", "up"]);
    assert!(e.contains("no_such_scenario"), "{e}");
}

fn vendored_core() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../firedrill-promql/tests/prometheus/core")
}

#[test]
fn conformance_on_the_core_scripts() {
    let dir = vendored_core();
    let dir = dir.to_str().expect("utf-8 path");
    let text = ok(&["conformance", "promql", dir]);
    let last = text.lines().last().expect("a last line");
    let nums: Vec<usize> = last
        .split([' ', ','])
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(
        last,
        format!(
            "{} passed, {} failed, {} skipped",
            nums[0], nums[1], nums[2]
        )
    );
    assert!(text.contains("aggregators.test"), "{text}");

    let data = json(&["conformance", "promql", dir]);
    let files = data["files"].as_array().expect("files");
    assert_eq!(files.len(), 12);
    let sum = |k: &str| {
        files
            .iter()
            .map(|f| f[k].as_u64().expect("count"))
            .sum::<u64>()
    };
    for k in ["passed", "failed", "skipped"] {
        assert_eq!(data[k].as_u64(), Some(sum(k)), "{k}");
    }
    assert_eq!(data["passed"].as_u64(), Some(nums[0] as u64));
    let (p, f) = (nums[0] as f64, nums[1] as f64);
    assert!(p / (p + f) >= 0.97, "{last}");
    assert!(
        nums[2] > 0,
        "native histogram cases are skipped, not passed"
    );
}

#[test]
fn conformance_results_are_not_errors_but_unreadable_input_is() {
    let dir = std::env::temp_dir().join(format!("firedrill-conformance-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let failing = dir.join("failing.test");
    std::fs::write(
        &failing,
        "load 1m\n  m 1 2 3\n\neval instant at 2m m\n  m 42\n",
    )
    .expect("write");
    let data = json(&["conformance", "promql", failing.to_str().expect("path")]);
    assert_eq!(data["failed"], 1);
    assert_eq!(data["passed"], 0);

    let missing = dir.join("missing.test");
    let e = fails(&["conformance", "promql", missing.to_str().expect("path")]);
    assert!(e.contains("cannot read"), "{e}");
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).expect("dir");
    let e = fails(&["conformance", "promql", empty.to_str().expect("path")]);
    assert!(e.contains("no .test files"), "{e}");
    let binary = dir.join("binary.test");
    std::fs::write(&binary, [0xff, 0xfe, 0x00, 0x80]).expect("write");
    let e = fails(&["conformance", "promql", binary.to_str().expect("path")]);
    assert!(e.contains("cannot read"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}
