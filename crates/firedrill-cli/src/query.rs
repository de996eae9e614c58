//! `firedrill query`: one PromQL, LogQL or TraceQL query (or a trace by id) against a scenario's world at a
//! point of its simulated timeline.
//!
//! The clock is the world's: `--at` and `--range` take simulated minutes since the world began, the same
//! minutes `simulate` prints. The world is run to `--at` and queried as it stands then, so nothing after that
//! moment exists yet. Without `--at` the world stands at the page. A time before the page is the world as it
//! was then (rebuilt and run to that minute, before the page arrived); a time after the incident's budget is an
//! error, since no episode ever reaches it.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::{ArgGroup, Args};
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use firedrill_query::{LogSourceOptions, LogqlRequest, QueryError};
use firedrill_scenario::{Catalog, Incident};
use firedrill_world::World;
use serde_json::Value as Json;

/// Arguments of `firedrill query`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("query").required(true).args(["promql", "logql", "traceql", "trace"])))]
pub struct QueryArgs {
    /// Scenario id.
    scenario: String,
    /// Seed.
    #[arg(long)]
    seed: u64,
    /// Difficulty in [0, 1].
    #[arg(long, default_value_t = 0.5)]
    difficulty: f64,
    /// Simulated minutes since the world began at which to stand (default: the page; with --range, its END).
    #[arg(long, value_name = "MINUTES", allow_negative_numbers = true)]
    at: Option<f64>,
    /// A PromQL query (instant at --at, or a range query with --range).
    #[arg(long, value_name = "Q")]
    promql: Option<String>,
    /// A LogQL query: a metric query is instant at --at; a log query returns the newest 100 lines of the hour
    /// up to --at (or of the range).
    #[arg(long, value_name = "Q")]
    logql: Option<String>,
    /// A TraceQL search over the hour up to --at (or the range); the 20 newest matching traces.
    #[arg(long, value_name = "Q")]
    traceql: Option<String>,
    /// A trace id (hex), as a search or a log line shows it.
    #[arg(long, value_name = "ID")]
    trace: Option<String>,
    /// Evaluate over simulated minutes START to END (metric queries at every STEP, e.g. `30s`, `1m`, or
    /// seconds).
    #[arg(long, num_args = 3, value_names = ["START", "END", "STEP"], allow_negative_numbers = true)]
    range: Option<Vec<String>>,
    /// Print the `data` object the Prometheus, Loki or Tempo HTTP API would return.
    #[arg(long)]
    json: bool,
}

/// Where the world stands and the time range the query reads.
struct When {
    /// Minutes the world was run to (the evaluation time of instant queries).
    at_min: f64,
    /// `(start, end, step)` in Unix ms, from `--range`.
    range_ms: Option<(i64, i64, i64)>,
}

/// Seconds in a minute, for the user-facing clock.
const MIN: f64 = 60.0;
/// How far back a search or log query without `--range` looks: an hour, Grafana Explore's default.
const LOOKBACK_MS: i64 = 3_600_000;

fn parse_minutes(what: &str, s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|m| m.is_finite())
        .ok_or_else(|| format!("--range {what} must be a number of minutes, got {s:?}"))
}

fn parse_step_ms(s: &str) -> Result<i64, String> {
    firedrill_promql::promqltest::parse_duration_ms(s)
        .filter(|&ms| ms > 0)
        .ok_or_else(|| {
            format!("--range STEP must be a positive duration (`30s`, `1m`, or seconds), got {s:?}")
        })
}

/// Runs `firedrill query`.
pub fn run(args: QueryArgs, catalog: &Catalog) -> Result<ExitCode, String> {
    if !(0.0..=1.0).contains(&args.difficulty) {
        return Err(format!(
            "--difficulty must be in [0, 1], got {}",
            args.difficulty
        ));
    }
    if let Some(at) = args.at
        && !(at.is_finite() && at >= 0.0)
    {
        return Err(format!(
            "--at must be a number of minutes since the world began (0 or more), got {at}"
        ));
    }
    let range_min = match &args.range {
        Some(v) => {
            let [start, end, step] = v.as_slice() else {
                return Err("--range takes START END STEP".into());
            };
            let (start, end) = (parse_minutes("START", start)?, parse_minutes("END", end)?);
            if end < start {
                return Err(format!(
                    "--range END ({end}) must not be before START ({start})"
                ));
            }
            Some((start, end, parse_step_ms(step)?))
        }
        None => None,
    };

    // Malformed queries are reported before minutes of simulation are spent.
    let (query, check) = if let Some(q) = &args.promql {
        (q, firedrill_query::check_promql(q))
    } else if let Some(q) = &args.logql {
        (q, firedrill_query::check_logql(q))
    } else if let Some(q) = &args.traceql {
        (q, firedrill_query::check_traceql(q))
    } else if let Some(id) = &args.trace {
        (id, firedrill_query::check_trace_id(id))
    } else {
        return Err("one of --promql, --logql, --traceql or --trace is required".into());
    };
    check.map_err(|e| describe(&e, query))?;

    let started = catalog
        .start(&args.scenario, args.seed, args.difficulty)
        .map_err(|e| e.to_string())?;
    let page_min = started.page_s() / MIN;
    let budget_end_min = started.deadline_s() / MIN;
    let at_min = args
        .at
        .or(range_min.map(|(_, end, _)| end))
        .unwrap_or(page_min);
    if at_min > budget_end_min + 1e-9 {
        return Err(format!(
            "--at {at_min} is beyond the incident: it pages at minute {page_min:.2} and its budget ends at minute \
             {budget_end_min:.2}"
        ));
    }
    if let Some((_, end, _)) = range_min
        && end > at_min + 1e-9
    {
        return Err(format!(
            "--range END ({end}) is after --at ({at_min}): the world has not reached it yet"
        ));
    }
    let incident = run_to(started, at_min * MIN);
    let world = incident.world();
    let when = When {
        at_min: world.now_s() / MIN,
        range_ms: range_min.map(|(start, end, step)| {
            (
                firedrill_query::unix_ms(world, start * MIN),
                firedrill_query::unix_ms(world, end * MIN),
                step,
            )
        }),
    };

    let logs = LogSourceOptions {
        noise: incident.instance().log_noise,
        ..LogSourceOptions::default()
    };
    // Evaluate first, print after: a failing query prints nothing on stdout.
    let answer = if args.promql.is_some() {
        promql(world, query, &when)
    } else if args.logql.is_some() {
        logql(world, &logs, query, &when)
    } else if args.traceql.is_some() {
        traceql(world, query, &when)
    } else {
        firedrill_query::trace(world, query).map(Answer::Trace)
    }
    .map_err(|e| describe(&e, query))?;
    if args.json {
        say!("{}", answer.to_json());
        return Ok(ExitCode::SUCCESS);
    }
    say!(
        "{} seed {} difficulty {}: world at minute {} ({}); paged at minute {}; budget ends at minute {}",
        args.scenario,
        args.seed,
        args.difficulty,
        fmt_min(when.at_min),
        firedrill_telemetry::logs::rfc3339_s(firedrill_query::now_ms(world).div_euclid(1000)),
        fmt_min(page_min),
        fmt_min(budget_end_min),
    );
    match answer {
        Answer::Promql(v) => print_promql(world, v),
        Answer::Logql(r, limit) => print_logql(world, r, limit),
        Answer::Traces(r) => print_traces(world, &r),
        Answer::Trace(t) => print_trace(world, &t),
    }
    Ok(ExitCode::SUCCESS)
}

/// A query's answer, before printing.
enum Answer {
    Promql(firedrill_promql::Value),
    /// The result and the line limit it was asked with.
    Logql(firedrill_logql::QueryResult, usize),
    Traces(firedrill_traceql::SearchResponse),
    Trace(firedrill_traceql::Trace),
}

impl Answer {
    /// The `data` object of the Prometheus / Loki API, or the Tempo body.
    fn to_json(&self) -> Json {
        match self {
            Answer::Promql(v) => v.to_prometheus_data(),
            Answer::Logql(r, _) => r.to_loki_data(),
            Answer::Traces(r) => r.to_json(),
            Answer::Trace(t) => firedrill_traceql::trace_to_tempo_json(t),
        }
    }
}

/// The incident as it stands at `at_s`: the started one run on, or, before its page, a fresh one run to then
/// (the world before the page is the same whether or not it will page later).
fn run_to(started: Incident, at_s: f64) -> Incident {
    let mut incident = if at_s < started.world().now_s() {
        Incident::build(started.instance_arc().clone())
    } else {
        started
    };
    while incident.world().now_s() + 1e-9 < at_s {
        incident.step();
    }
    incident
}

/// An error message; parse errors point at their position under the query.
fn describe(e: &QueryError, query: &str) -> String {
    match e.position() {
        Some(pos) if query.is_char_boundary(pos.min(query.len())) && !query.contains('\n') => {
            let col = query[..pos.min(query.len())].chars().count();
            format!("{e}\n  {query}\n  {}^", " ".repeat(col))
        }
        _ => e.to_string(),
    }
}

/// Minutes with at most two decimals, trailing zeros trimmed (`70`, `67.75`).
fn fmt_min(m: f64) -> String {
    let s = format!("{m:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn new_table() -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    t
}

/// `name{a="b", c="d"}` the way Prometheus prints a series.
fn series_name<'a>(labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut name = "";
    let mut rest = Vec::new();
    for (k, v) in labels {
        if k == "__name__" {
            name = v;
        } else {
            rest.push(format!(
                "{k}=\"{}\"",
                v.replace('\\', "\\\\").replace('"', "\\\"")
            ));
        }
    }
    if rest.is_empty() && !name.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{}}}", rest.join(", "))
    }
}

fn fmt_value(v: f64) -> String {
    firedrill_promql::format_value(v)
}

/// One labelled value per row.
fn print_vector(rows: Vec<(String, f64)>) {
    if rows.is_empty() {
        say!("\n(empty vector: no series matched)");
        return;
    }
    let mut t = new_table();
    t.set_header(["series", "value"]);
    let n = rows.len();
    for (name, v) in rows {
        t.add_row([name, fmt_value(v)]);
    }
    say!("\n{t}\n{n} series");
}

/// Series over time: a column per point when there are few, else a summary per series.
fn print_matrix(world: &World, series: Vec<(String, Vec<(i64, f64)>)>) {
    if series.is_empty() {
        say!("\n(empty matrix: no series matched)");
        return;
    }
    let mut times: Vec<i64> = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|x| x.0))
        .collect();
    times.sort_unstable();
    times.dedup();
    let minute = |t: i64| fmt_min(firedrill_query::world_s(world, t) / MIN);
    let mut t = new_table();
    if times.len() <= 8 {
        let mut header = vec!["series".to_string()];
        header.extend(times.iter().map(|&x| format!("m{}", minute(x))));
        t.set_header(header);
        for (name, points) in &series {
            let by_t: BTreeMap<i64, f64> = points.iter().copied().collect();
            let mut row = vec![name.clone()];
            row.extend(
                times
                    .iter()
                    .map(|x| by_t.get(x).map(|v| fmt_sig(*v)).unwrap_or_default()),
            );
            t.add_row(row);
        }
    } else {
        t.set_header([
            "series", "points", "from", "to", "min", "avg", "max", "last",
        ]);
        for (name, points) in &series {
            let vals: Vec<f64> = points.iter().map(|p| p.1).collect();
            let (min, max) = vals
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |a, &v| {
                    (a.0.min(v), a.1.max(v))
                });
            let avg = vals.iter().sum::<f64>() / vals.len().max(1) as f64;
            let span = |p: Option<&(i64, f64)>| p.map(|p| format!("m{}", minute(p.0)));
            t.add_row([
                name.clone(),
                points.len().to_string(),
                span(points.first()).unwrap_or_default(),
                span(points.last()).unwrap_or_default(),
                fmt_sig(min),
                fmt_sig(avg),
                fmt_sig(max),
                points.last().map(|p| fmt_sig(p.1)).unwrap_or_default(),
            ]);
        }
    }
    say!("\n{t}\n{} series", series.len());
}

/// A value with four significant digits, for summaries.
fn fmt_sig(v: f64) -> String {
    if !v.is_finite() || v == 0.0 {
        return fmt_value(v);
    }
    let digits = (3 - v.abs().log10().floor() as i32).clamp(0, 12) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn promql(world: &World, q: &str, when: &When) -> Result<Answer, QueryError> {
    let value = match when.range_ms {
        Some((start, end, step)) => firedrill_query::promql_range(world, q, start, end, step)?,
        None => firedrill_query::promql_instant(world, q, firedrill_query::now_ms(world))?,
    };
    Ok(Answer::Promql(value))
}

fn print_promql(world: &World, value: firedrill_promql::Value) {
    use firedrill_promql::Value;
    match value {
        Value::Scalar(s) => say!("\nscalar {}", fmt_value(s.v)),
        Value::String { value, .. } => say!("\nstring {value:?}"),
        Value::Vector(v) => print_vector(
            v.iter()
                .map(|(l, s)| (series_name(l.iter()), s.v))
                .collect(),
        ),
        Value::Matrix(m) => print_matrix(
            world,
            m.iter()
                .map(|s| {
                    (
                        series_name(s.labels.iter()),
                        s.samples.iter().map(|p| (p.t, p.v)).collect(),
                    )
                })
                .collect(),
        ),
    }
}

fn str_pairs(l: &BTreeMap<String, String>) -> impl Iterator<Item = (&str, &str)> {
    l.iter().map(|(k, v)| (k.as_str(), v.as_str()))
}

fn logql(
    world: &World,
    logs: &LogSourceOptions,
    q: &str,
    when: &When,
) -> Result<Answer, QueryError> {
    let request = match when.range_ms {
        Some((start, end, step)) => LogqlRequest::range(
            start.saturating_mul(1_000_000),
            end.saturating_mul(1_000_000),
            Some(step.saturating_mul(1_000_000)),
        ),
        None => LogqlRequest::as_of(firedrill_query::now_ms(world).saturating_mul(1_000_000)),
    };
    let result = firedrill_query::logql(world, logs, q, &request)?;
    Ok(Answer::Logql(result, request.limit))
}

fn print_logql(world: &World, result: firedrill_logql::QueryResult, limit: usize) {
    use firedrill_logql::QueryResult;
    match result {
        QueryResult::Streams(streams, _) => {
            let mut lines: Vec<(i64, &str)> = streams
                .iter()
                .flat_map(|s| s.entries.iter().map(|(t, l)| (*t, l.as_str())))
                .collect();
            // Newest first across streams, as Grafana shows them; equal times keep stream order.
            lines.sort_by_key(|l| std::cmp::Reverse(l.0));
            say!("");
            for (_, line) in &lines {
                say!("{line}");
            }
            say!(
                "\n{} lines from {} streams (newest first, at most {})",
                lines.len(),
                streams.len(),
                limit
            );
        }
        QueryResult::Vector(samples, _) => print_vector(
            samples
                .iter()
                .map(|s| (series_name(str_pairs(&s.labels)), s.value))
                .collect(),
        ),
        QueryResult::Matrix(series, _) => print_matrix(
            world,
            series
                .iter()
                .map(|s| {
                    (
                        series_name(str_pairs(&s.labels)),
                        s.points
                            .iter()
                            .map(|(t, v)| (t.div_euclid(1_000_000), *v))
                            .collect(),
                    )
                })
                .collect(),
        ),
        QueryResult::Scalar(_, v, _) => say!("\nscalar {}", fmt_value(v)),
    }
}

fn traceql(world: &World, q: &str, when: &When) -> Result<Answer, QueryError> {
    let (start_ms, end_ms) = match when.range_ms {
        Some((start, end, _)) => (start, end),
        // Up to and including the current tick's end.
        None => {
            let now = firedrill_query::now_ms(world);
            (now - LOOKBACK_MS, now + 1)
        }
    };
    let opts = firedrill_traceql::SearchOptions::new(
        start_ms.saturating_mul(1_000_000),
        end_ms.saturating_mul(1_000_000),
    );
    firedrill_query::traceql_search(world, q, &opts).map(Answer::Traces)
}

fn print_traces(world: &World, r: &firedrill_traceql::SearchResponse) {
    if r.traces.is_empty() {
        say!("\n(no trace matched)");
        return;
    }
    let mut t = new_table();
    t.set_header([
        "trace id",
        "root",
        "start",
        "duration",
        "matched spans",
        "error spans",
    ]);
    for h in &r.traces {
        let errors: u64 = h.service_stats.values().map(|s| s.error_count).sum();
        t.add_row([
            h.trace_id.clone(),
            format!("{}: {}", h.root_service_name, h.root_trace_name),
            format!(
                "m{}",
                fmt_min(firedrill_query::world_s(world, h.start_ns.div_euclid(1_000_000)) / MIN)
            ),
            format!("{} ms", h.duration_ms),
            h.span_sets
                .iter()
                .map(|s| s.matched)
                .sum::<usize>()
                .to_string(),
            errors.to_string(),
        ]);
    }
    say!(
        "\n{t}\n{} traces (newest first, at most {}); {} traces inspected",
        r.traces.len(),
        firedrill_traceql::DEFAULT_LIMIT,
        r.metrics.inspected_traces
    );
}

fn print_trace(world: &World, tr: &firedrill_traceql::Trace) {
    // Depth of each span in the call tree, for indentation.
    let mut spans: Vec<&firedrill_traceql::Span> = tr.spans.iter().collect();
    spans.sort_by_key(|s| (s.start_ns, s.span_id));
    let parent: BTreeMap<_, _> = tr
        .spans
        .iter()
        .map(|s| (s.span_id, s.parent_span_id))
        .collect();
    let depth = |s: &firedrill_traceql::Span| {
        let mut d = 0;
        let mut p = s.parent_span_id;
        // Bounded by the span count, so a malformed parent chain cannot loop.
        while let Some(id) = p
            && d < tr.spans.len()
        {
            d += 1;
            p = parent.get(&id).copied().flatten();
        }
        d
    };
    let t0 = tr.start_ns();
    let mut t = new_table();
    t.set_header([
        "span",
        "service",
        "start",
        "duration",
        "status",
        "attributes",
    ]);
    for s in spans {
        let attrs: Vec<String> = s
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        t.add_row([
            format!("{}{} ({})", "  ".repeat(depth(s)), s.name, s.kind.as_str()),
            s.service.clone(),
            format!("+{:.1} ms", (s.start_ns - t0) as f64 / 1e6),
            format!("{:.1} ms", s.duration_ns as f64 / 1e6),
            s.status.as_str().to_string(),
            attrs.join(" "),
        ]);
    }
    say!(
        "\ntrace {} at minute {}: {} spans, {:.1} ms\n{t}",
        firedrill_traceql::to_hex(&tr.trace_id),
        fmt_min(firedrill_query::world_s(world, t0.div_euclid(1_000_000)) / MIN),
        tr.spans.len(),
        (tr.end_ns() - t0) as f64 / 1e6
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_names_look_like_prometheus() {
        assert_eq!(series_name([("__name__", "up")]), "up");
        assert_eq!(
            series_name([("__name__", "up"), ("job", "a\"b")]),
            r#"up{job="a\"b"}"#
        );
        assert_eq!(series_name([("service", "x")]), r#"{service="x"}"#);
        assert_eq!(series_name([]), "{}");
    }

    #[test]
    fn numbers_print_briefly() {
        assert_eq!(fmt_min(70.0), "70");
        assert_eq!(fmt_min(67.75), "67.75");
        assert_eq!(fmt_sig(0.123456), "0.1235");
        assert_eq!(fmt_sig(12345.6), "12346");
        assert_eq!(fmt_sig(f64::NAN), "NaN");
        assert_eq!(parse_step_ms("1m"), Ok(60_000));
        assert_eq!(parse_step_ms("30"), Ok(30_000));
        assert!(parse_step_ms("0s").is_err());
        assert!(parse_step_ms("soon").is_err());
    }

    #[test]
    fn errors_point_at_their_position() {
        let e = QueryError::Logql(firedrill_logql::parse("{a=}").expect_err("bad"));
        let msg = describe(&e, "{a=}");
        let lines: Vec<&str> = msg.lines().collect();
        assert_eq!(lines.len(), 3, "{msg}");
        let caret = lines[2].find('^').expect("caret") - 2;
        assert_eq!(Some(caret), e.position());
    }
}
