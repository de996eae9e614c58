//! The bodies of firedrill's fuzz targets: each takes arbitrary bytes, feeds them to one of the parsers that
//! read outside input, and runs whatever parses as far as a user's input would go (evaluation against a world,
//! a started incident, an environment step). None returns anything: a target fails only by panicking, which is
//! what a fuzzer looks for, since bad input must come back as a typed error.
//!
//! Two callers share them, so that a fuzzer's findings stay fixed: the cargo-fuzz crate in `fuzz/` (outside the
//! workspace; it needs a nightly toolchain for libFuzzer's instrumentation), and `tests/corpus.rs`, which replays
//! every committed input under `fuzz/corpus/` and `fuzz/regressions/` on the stable toolchain in CI. How to run
//! them: `docs/fuzzing.md`.

#![forbid(unsafe_code)]

use std::sync::{Arc, OnceLock};

use firedrill_env::{Env, Episode};
use firedrill_query::{LogSourceOptions, LogqlRequest};
use firedrill_scenario::{Catalog, Incident};
use serde_json::Value;

/// Longest input a target reads, in bytes: longer ones only make each run slower without reaching more code
/// (the query languages' own limits are far below this; a scenario file of this size is already large).
pub const MAX_INPUT: usize = 16 * 1024;

/// The scenario, seed and difficulty every query and action target runs against: an incident at its page, with
/// an hour of telemetry, alerts firing and a fault under way.
const SCENARIO: (&str, u64, f64) = ("db_pool_exhaustion", 1, 0.5);

/// A fuzz target: bytes in, a panic on failure.
pub type Target = fn(&[u8]);

/// The targets, by name, as `fuzz/fuzz_targets/` and `fuzz/corpus/` name them.
pub const TARGETS: &[(&str, Target)] = &[
    ("promql", promql),
    ("promqltest", promqltest),
    ("logql", logql),
    ("traceql", traceql),
    ("scenario", scenario),
    ("scenario_values", scenario_values),
    ("action", action),
    ("command", command),
];

fn text(data: &[u8]) -> Option<&str> {
    if data.len() > MAX_INPUT {
        return None;
    }
    std::str::from_utf8(data).ok()
}

fn catalog() -> &'static Arc<Catalog> {
    static CATALOG: OnceLock<Arc<Catalog>> = OnceLock::new();
    CATALOG.get_or_init(|| Arc::new(Catalog::builtin().expect("the built-in library loads")))
}

fn incident() -> &'static Incident {
    static INCIDENT: OnceLock<Incident> = OnceLock::new();
    INCIDENT.get_or_init(|| {
        let (id, seed, difficulty) = SCENARIO;
        catalog()
            .start(id, seed, difficulty)
            .expect("the built-in scenario starts")
    })
}

/// A PromQL query, checked, then evaluated at the page (instant) and over its last ten minutes (range, one point
/// a minute), with both results rendered as the Prometheus API's `data`.
pub fn promql(data: &[u8]) {
    let Some(query) = text(data) else { return };
    let world = incident().world();
    let now = firedrill_query::now_ms(world);
    let checked = firedrill_query::check_promql(query);
    let instant = firedrill_query::evaluate_promql_instant(world, query, now);
    let range = firedrill_query::evaluate_promql_range(world, query, now - 600_000, now, 60_000);
    check_agrees(
        query,
        checked.is_ok(),
        &[
            ("instantly", instant.is_ok()),
            ("as a range", range.is_ok()),
        ],
    );
}

/// A query that fails the check (what actions validate their queries with) must fail every evaluation too.
fn check_agrees(query: &str, checked: bool, evaluations: &[(&str, bool)]) {
    if !checked {
        for (how, evaluated) in evaluations {
            assert!(!evaluated, "{query:?} failed the check but evaluated {how}");
        }
    }
}

/// A script in Prometheus's promqltest format (`load`, `clear`, `eval ...` with expected results), run by the
/// conformance runner of `firedrill conformance promql` against an in-memory store.
pub fn promqltest(data: &[u8]) {
    let Some(script) = text(data) else { return };
    let report = firedrill_promql::promqltest::run_source("fuzz.test", script);
    let _ = report.passed + report.failed;
}

/// A LogQL query, checked, then run as an agent's "as of now" query and as a ten-minute range query, rendered
/// as Loki's `data`.
pub fn logql(data: &[u8]) {
    let Some(query) = text(data) else { return };
    let world = incident().world();
    let now_ns = firedrill_query::now_ms(world).saturating_mul(1_000_000);
    let logs = LogSourceOptions::default();
    let checked = firedrill_query::check_logql(query);
    let as_of = firedrill_query::evaluate_logql(world, &logs, query, &LogqlRequest::as_of(now_ns));
    let range = LogqlRequest::range(now_ns - 600_000_000_000, now_ns, None);
    let ranged = firedrill_query::evaluate_logql(world, &logs, query, &range);
    check_agrees(
        query,
        checked.is_ok(),
        &[("as of now", as_of.is_ok()), ("as a range", ranged.is_ok())],
    );
}

/// A TraceQL search over the last ten minutes, rendered as Tempo's search body; the same text is also looked up
/// as a trace id.
pub fn traceql(data: &[u8]) {
    let Some(query) = text(data) else { return };
    let world = incident().world();
    let now_ns = firedrill_query::now_ms(world).saturating_mul(1_000_000);
    let checked = firedrill_query::check_traceql(query);
    let searched =
        firedrill_query::search_traces(world, query, now_ns - 600_000_000_000, now_ns, 0);
    check_agrees(query, checked.is_ok(), &[("as a search", searched.is_ok())]);
    let _ = firedrill_query::trace_by_id(world, query);
}

/// A scenario file: parsed and validated; if valid, instantiated at two seeds and difficulties, and each
/// instance that builds is started (its hour before the page simulated) and stepped ten ticks.
pub fn scenario(data: &[u8]) {
    let Some(yaml) = text(data) else { return };
    let Ok(scenario) = firedrill_scenario::parse_scenario("fuzz.yaml", yaml) else {
        return;
    };
    for (seed, difficulty) in [(0, 0.0), (7, 1.0)] {
        let Ok(instance) = firedrill_scenario::instantiate(&scenario, seed, difficulty) else {
            continue;
        };
        if let Ok(mut incident) = Incident::start(Arc::new(instance)) {
            for _ in 0..10 {
                incident.step();
            }
        }
    }
}

/// A built-in scenario with its topology written out inline (and the topology's alert rules and evaluation
/// interval with it, so that it still pages), as a JSON document, and the JSON pointer of every scalar in it.
struct Document {
    value: Value,
    leaves: Vec<String>,
}

fn leaves(value: &Value, at: &mut String, out: &mut Vec<String>) {
    let len = at.len();
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                at.push('/');
                at.push_str(&k.replace('~', "~0").replace('/', "~1"));
                leaves(v, at, out);
                at.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                at.push('/');
                at.push_str(&i.to_string());
                leaves(v, at, out);
                at.truncate(len);
            }
        }
        _ => out.push(at.clone()),
    }
}

fn documents() -> &'static [Document] {
    static DOCUMENTS: OnceLock<Vec<Document>> = OnceLock::new();
    DOCUMENTS.get_or_init(|| {
        catalog()
            .scenarios()
            .iter()
            .map(|s| {
                let mut value = serde_json::to_value(s).expect("scenarios serialise");
                if let Some(name) = value["topology"].as_str().map(str::to_string) {
                    let file = firedrill_scenario::library::builtin_topology(&name)
                        .expect("a built-in topology")
                        .expect("the built-in topology loads");
                    value["topology"] =
                        serde_json::to_value(&file.topology).expect("topologies serialise");
                    let mut alerts = serde_json::to_value(&file.alerts).expect("rules serialise");
                    if let (Some(all), Some(own)) =
                        (alerts.as_array_mut(), value["alerts"].as_array())
                    {
                        all.extend(own.iter().cloned());
                    }
                    value["alerts"] = alerts;
                    if value["evaluation_interval"].is_null() {
                        value["evaluation_interval"] =
                            serde_json::to_value(&file.evaluation_interval)
                                .expect("intervals serialise");
                    }
                }
                let mut out = Vec::new();
                leaves(&value, &mut String::new(), &mut out);
                Document { value, leaves: out }
            })
            .collect()
    })
}

/// The value an edit writes in place of `old`: mostly one of the same type (so that the document still reads
/// and the edit reaches validation and what lies behind it), picked by `code`; now and then one of any type.
fn edge_value(code: u8, old: &Value) -> Value {
    let number = |k: u8, x: f64| match k % 16 {
        0 => Value::from(0),
        1 => Value::from(1),
        2 => Value::from(-1),
        3 => Value::from(0.5),
        4 => Value::from(1e-9),
        5 => Value::from(1e9),
        6 => Value::from(1e300),
        7 => Value::from(-1e300),
        8 => Value::from(u32::MAX),
        9 => Value::from(i64::MAX),
        10 => Value::from(x * 2.0),
        11 => Value::from(x * 100.0),
        12 => Value::from(x / 100.0),
        13 => Value::from(-x),
        14 => Value::from(x + 1.0),
        _ => Value::from((x.round() as i64).saturating_add(1)),
    };
    // Edits that grow a text stop at a size (repeated doublings of one value would grow it exponentially).
    let t_grown = |t: &str| t.chars().take(256).collect::<String>();
    let text = |k: u8, t: &str| match k % 16 {
        0 => Value::from(""),
        1 => Value::from(format!("{}x", t_grown(t))),
        2 => Value::from(t.to_uppercase()),
        3 => Value::from("$nope"),
        4 => Value::from("${nope}"),
        5 => Value::from("0s"),
        6 => Value::from("1h"),
        7 => Value::from("100000h"),
        8 => Value::from("-1m"),
        9 => Value::from("shop"),
        10 => Value::from(t.chars().rev().collect::<String>()),
        11 => Value::from(t_grown(&format!("{t}{t}"))),
        12 => Value::from("api-gateway"),
        13 => Value::from("postgres-db"),
        14 => Value::from("0"),
        _ => Value::from(" "),
    };
    if code >= 240 {
        // Any type: the document may no longer read, which the loader must report, not panic on.
        return match code % 4 {
            0 => number(code / 4, 1.0),
            1 => text(code / 4, ""),
            2 => Value::Null,
            _ => Value::Array(Vec::new()),
        };
    }
    match old {
        Value::Number(n) => number(code, n.as_f64().unwrap_or(1.0)),
        Value::String(t) => text(code, t),
        Value::Bool(b) => Value::from(!b),
        _ => number(code, 1.0),
    }
}

/// A valid scenario changed value by value, so that the changes reach what lies behind the parser: validation of
/// every reference and range, instantiation, and the world's mechanics under odd but accepted parameters. The
/// first byte picks a built-in scenario (its topology written out inline, so its numbers are in reach too); each
/// three bytes after it replace one scalar (two bytes pick it, one picks the new value, [`edge_value`]). The result
/// goes through the same path as [`scenario`].
pub fn scenario_values(data: &[u8]) {
    if let Some(text) = scenario_text(data) {
        scenario(text.as_bytes());
    }
}

/// The scenario file [`scenario_values`] makes of its input (`None` for no input or one over [`MAX_INPUT`]).
pub fn scenario_text(data: &[u8]) -> Option<String> {
    let (&pick, edits) = data.split_first()?;
    if data.len() > MAX_INPUT {
        return None;
    }
    let docs = documents();
    let doc = &docs[pick as usize % docs.len()];
    let mut value = doc.value.clone();
    for edit in edits.chunks_exact(3) {
        let leaf = u16::from_le_bytes([edit[0], edit[1]]) as usize % doc.leaves.len();
        if let Some(slot) = value.pointer_mut(&doc.leaves[leaf]) {
            *slot = edge_value(edit[2], slot);
        }
    }
    // JSON is YAML: the scenario loader reads it as it reads a file.
    Some(serde_json::to_string_pretty(&value).expect("values serialise"))
}

/// Agent actions as JSON, one per line (up to eight), stepped in turn in an environment at the page of
/// [`SCENARIO`]; each observation (an error observation for an invalid action) is rendered as text and as JSON. A
/// single action is stepped twice, so that what it changed (time, an operation under way, an ended episode) is
/// stepped on too.
pub fn action(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(8)
        .collect();
    step_actions(lines);
}

/// Lines typed in the short command syntax of `firedrill play` (up to eight), each translated to the wire JSON
/// and its help looked up; what translates is stepped as [`action`] steps JSON. A translation names a known
/// action, whatever the line.
pub fn command(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let mut translated = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()).take(8) {
        let first = line.split_whitespace().next().unwrap_or_default();
        let _ = firedrill_env::command::help_action(first);
        match firedrill_env::command::translate(line) {
            Ok(json) => {
                let name = json["action"].as_str().unwrap_or_default();
                assert!(
                    firedrill_env::ActionKind::ALL
                        .iter()
                        .any(|k| k.name() == name),
                    "{line:?} translated to an unknown action: {json}"
                );
                translated.push(json.to_string());
            }
            Err(e) => assert!(!e.is_empty(), "an empty refusal for {line:?}"),
        }
    }
    step_actions(translated.iter().map(String::as_str).collect());
}

/// Steps wire-JSON actions in turn in an environment at the page of [`SCENARIO`] (a single one twice), rendering
/// every observation; an ended episode must refuse a further step.
fn step_actions(mut lines: Vec<&str>) {
    match lines.len() {
        0 => return,
        1 => lines.push(lines[0]),
        _ => {}
    }
    thread_local! {
        static ENV: std::cell::RefCell<Option<(Env, Episode)>> = const { std::cell::RefCell::new(None) };
    }
    ENV.with_borrow_mut(|slot| {
        let (env, page) = slot.get_or_insert_with(|| {
            let mut env = Env::new(Arc::clone(catalog()));
            let (id, seed, difficulty) = SCENARIO;
            env.reset(id, seed, difficulty)
                .expect("the built-in scenario resets");
            let page = env.snapshot().expect("an episode after reset");
            (env, page)
        });
        env.restore(page.clone());
        for json in lines {
            match env.step_json(json) {
                Ok(step) => {
                    let _ = step.observation.to_text();
                    let _ =
                        serde_json::to_string(&step.observation).expect("observations serialise");
                    if step.terminated || step.truncated {
                        // An ended episode refuses further steps with an error, never a panic.
                        assert!(
                            env.step_json(json).is_err(),
                            "a step after the end was taken"
                        );
                        break;
                    }
                }
                Err(e) => {
                    let _ = e.to_string();
                }
            }
        }
    });
}
