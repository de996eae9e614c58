//! Observations: what the agent sees after each action, structured (serde) and as text for language models.
//!
//! Every piece of evidence carries the stable id it has in the episode's ledger. Nothing here is derived from the
//! ground truth: observations are built from telemetry, the topology and the change history only (the
//! answer-leak test in `tests/env.rs` scans every rendered observation of every family).

use std::fmt::Write as _;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

/// One observation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Observation {
    /// Actions taken so far in the episode.
    pub step: u32,
    /// Simulated minutes since the page.
    pub minutes_since_page: f64,
    /// Simulated minutes left in the budget.
    pub budget_left_minutes: f64,
    /// Alerts firing now (an on-call engineer always sees the alert console).
    pub firing_alerts: Vec<AlertBrief>,
    /// What the action returned.
    pub content: Content,
}

/// A firing alert, briefly.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertBrief {
    /// `alertname`.
    pub name: String,
    /// The service label.
    pub service: String,
    /// The severity label.
    pub severity: String,
    /// Minutes since it went active, relative to the page (negative: before the page).
    pub active_since_minutes: f64,
}

/// What an action returned.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Content {
    /// The page that opens the episode.
    Page(Box<Page>),
    /// `list_services`.
    Services {
        /// The catalogue.
        services: Vec<ServiceEntry>,
    },
    /// `describe_service`.
    Service(Box<ServiceDescription>),
    /// `query_metrics`.
    Metrics {
        /// Service.
        service: String,
        /// Window, minutes.
        window_minutes: u32,
        /// One summary per series.
        series: Vec<MetricSummary>,
    },
    /// `query_logs`.
    Logs {
        /// Service.
        service: String,
        /// Window, minutes.
        window_minutes: u32,
        /// Lines that matched before the limit.
        matched: usize,
        /// The newest `limit` matching lines, oldest first.
        lines: Vec<LogLine>,
    },
    /// `query_traces`.
    Traces {
        /// Service.
        service: String,
        /// Window, minutes.
        window_minutes: u32,
        /// Traces that matched before the cap.
        matched: usize,
        /// Summaries, newest first.
        traces: Vec<TraceSummary>,
    },
    /// One page of a PromQL, LogQL or TraceQL query's result.
    QueryResult {
        /// `promql`, `logql` or `traceql`.
        language: String,
        /// The query as given.
        query: String,
        /// Window, minutes.
        window_minutes: u32,
        /// Items in the whole result.
        total: usize,
        /// This page, from 0.
        page: u32,
        /// Number of pages.
        pages: usize,
        /// Series (PromQL, LogQL metric queries).
        series: Vec<MetricSummary>,
        /// Log lines (LogQL log queries), oldest first.
        lines: Vec<LogLine>,
        /// Traces (TraceQL), newest first.
        traces: Vec<TraceSummary>,
    },
    /// `run_diagnostic`.
    Diagnostic {
        /// Service.
        service: String,
        /// Check.
        check: String,
        /// Evidence id.
        id: String,
        /// Overall status: `ok`, `warning` or `failing`.
        status: String,
        /// One line per finding.
        findings: Vec<String>,
    },
    /// `query_deploys`.
    Changes {
        /// Only this service, if asked.
        service: Option<String>,
        /// Changes, oldest first.
        changes: Vec<ChangeEntry>,
    },
    /// An operation was accepted (restart, scale, rollback, config).
    Operation {
        /// Action name.
        action: String,
        /// What was done, in words.
        message: String,
    },
    /// `wait`.
    Waited {
        /// Simulated minutes that passed.
        minutes: f64,
    },
    /// `resolve_incident`, or the budget ran out.
    Ended {
        /// Why the episode ended.
        message: String,
    },
    /// The action was refused; nothing happened except the time it cost.
    Error {
        /// Machine-readable code (`unknown_action`, `bad_parameter`, `out_of_range`, `unknown_service`,
        /// `malformed`, `refused`).
        code: String,
        /// What is wrong, precisely.
        message: String,
    },
}

/// The page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page {
    /// Incident title as the pager shows it.
    pub title: String,
    /// The fired alerts, in Alertmanager webhook (version 4) shape.
    pub alertmanager: Value,
    /// Service catalogue.
    pub services: Vec<ServiceEntry>,
    /// The actions, as OpenAI function-calling tools with JSON Schemas (one value shared by every page).
    pub actions: Arc<Value>,
    /// Budget, simulated minutes.
    pub budget_minutes: f64,
}

/// A service in the catalogue: name and kind only (health is for the agent to find out).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceEntry {
    /// Name.
    pub name: String,
    /// Kind (`gateway`, `database`...).
    pub kind: String,
    /// Services it calls.
    pub calls: Vec<String>,
}

/// `describe_service`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceDescription {
    /// Evidence id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: String,
    /// Version the deployment targets.
    pub version: String,
    /// Versions known to the deployment history, oldest first.
    pub versions: Vec<String>,
    /// Desired replicas.
    pub replicas_desired: u32,
    /// Memory limit per pod, MiB.
    pub memory_limit_mb: u32,
    /// CPU limit per pod, millicores.
    pub cpu_limit_millis: u32,
    /// Configuration keys and values.
    pub config: Vec<(String, String)>,
    /// Feature flags and whether each is on.
    pub flags: Vec<(String, bool)>,
    /// Services it calls.
    pub calls: Vec<String>,
    /// Services that call it.
    pub called_by: Vec<String>,
}

/// A metric series summarised over the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricSummary {
    /// Evidence id.
    pub id: String,
    /// Prometheus metric name; counters are shown as a per-second rate, histograms as quantiles.
    pub metric: String,
    /// Labels other than the service's.
    pub labels: Vec<(String, String)>,
    /// How the values read: `per_second`, a unit (`bytes`), or `p99_seconds`.
    pub unit: String,
    /// First value in the window.
    pub first: f64,
    /// Last value.
    pub last: f64,
    /// Minimum.
    pub min: f64,
    /// Maximum.
    pub max: f64,
    /// Up to twelve evenly spaced points `(minutes since page, value)`.
    pub points: Vec<(f64, f64)>,
}

/// A log line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogLine {
    /// Evidence id.
    pub id: String,
    /// Minutes since the page (negative: before it).
    pub minutes: f64,
    /// RFC 3339 time.
    pub time: String,
    /// Pod, if the line came from one.
    pub pod: Option<String>,
    /// Level.
    pub level: String,
    /// Event name.
    pub event: String,
    /// Rendered message.
    pub message: String,
}

/// A trace, summarised.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceSummary {
    /// Evidence id.
    pub id: String,
    /// Trace id (hex), resolvable later.
    pub trace_id: String,
    /// Minutes since the page.
    pub minutes: f64,
    /// Root span name.
    pub root: String,
    /// Duration, ms.
    pub duration_ms: f64,
    /// Whether any span failed.
    pub error: bool,
    /// The slowest or failing path, `service: span (ms, status)` per hop.
    pub path: Vec<String>,
}

/// A change record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeEntry {
    /// Evidence id.
    pub id: String,
    /// Minutes since the page (negative: before it).
    pub minutes: f64,
    /// Who.
    pub actor: String,
    /// Service.
    pub service: String,
    /// Kind (`deploy`, `rollback`, `config`, `resources`...).
    pub kind: String,
    /// What changed.
    pub summary: String,
}

fn num(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1e6 || v.abs() < 1e-3 {
        format!("{v:.3e}")
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

impl Observation {
    /// The observation as text for a language model: compact, one item per line, evidence ids first.
    pub fn to_text(&self) -> String {
        let mut s = String::with_capacity(512);
        let _ = writeln!(
            s,
            "[t+{:.1} min, {:.1} min of budget left, step {}]",
            self.minutes_since_page, self.budget_left_minutes, self.step
        );
        if self.firing_alerts.is_empty() {
            s.push_str("alerts firing: none\n");
        } else {
            s.push_str("alerts firing:");
            for a in &self.firing_alerts {
                let _ = write!(
                    s,
                    " {}({}, {}, since t{:+.1})",
                    a.name, a.service, a.severity, a.active_since_minutes
                );
            }
            s.push('\n');
        }
        match &self.content {
            Content::Page(p) => {
                let _ = writeln!(s, "PAGE: {}", p.title);
                if let Some(alerts) = p.alertmanager.get("alerts").and_then(Value::as_array) {
                    for a in alerts {
                        let l = &a["labels"];
                        let _ = writeln!(
                            s,
                            "  alert {} service={} severity={} startsAt={}: {}",
                            l["alertname"].as_str().unwrap_or("?"),
                            l["service"].as_str().unwrap_or("?"),
                            l["severity"].as_str().unwrap_or("?"),
                            a["startsAt"].as_str().unwrap_or("?"),
                            a["annotations"]["summary"].as_str().unwrap_or("")
                        );
                    }
                }
                s.push_str("services:\n");
                write_services(&mut s, &p.services);
                let _ = writeln!(
                    s,
                    "budget: {:.0} simulated minutes. Actions: list_services, describe_service, query_metrics, \
                     query_logs, query_traces, run_diagnostic, query_deploys, restart_service, scale_service, \
                     rollback_deploy, update_config, wait, resolve_incident (JSON: {{\"action\": name, ...}}); \
                     query_metrics, query_logs and query_traces also take `promql`, `logql` or `traceql`.",
                    p.budget_minutes
                );
            }
            Content::Services { services } => write_services(&mut s, services),
            Content::Service(d) => {
                let _ = writeln!(
                    s,
                    "{} {} ({}) version {} (known: {}), replicas desired {}, limits {}Mi / {}m",
                    d.id,
                    d.name,
                    d.kind,
                    d.version,
                    d.versions.join(", "),
                    d.replicas_desired,
                    d.memory_limit_mb,
                    d.cpu_limit_millis
                );
                let config: Vec<String> =
                    d.config.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let _ = writeln!(s, "  config: {}", join_or_none(&config));
                let flags: Vec<String> = d
                    .flags
                    .iter()
                    .map(|(k, v)| format!("{k}={}", if *v { "on" } else { "off" }))
                    .collect();
                let _ = writeln!(s, "  flags: {}", join_or_none(&flags));
                let _ = writeln!(s, "  calls: {}", join_or_none(&d.calls));
                let _ = writeln!(s, "  called by: {}", join_or_none(&d.called_by));
            }
            Content::Metrics {
                service,
                window_minutes,
                series,
            } => {
                let _ = writeln!(s, "metrics of {service}, last {window_minutes} min:");
                for m in series {
                    write_series(&mut s, m, true);
                }
                if series.is_empty() {
                    s.push_str("  (no series)\n");
                }
            }
            Content::Logs {
                service,
                window_minutes,
                matched,
                lines,
            } => {
                let _ = writeln!(
                    s,
                    "logs of {service}, last {window_minutes} min: {} of {matched} matching lines",
                    lines.len()
                );
                for l in lines {
                    let _ = writeln!(
                        s,
                        "  {} {} {} {} {}",
                        l.id,
                        l.time,
                        l.pod.as_deref().unwrap_or("-"),
                        l.level,
                        l.message
                    );
                }
            }
            Content::Traces {
                service,
                window_minutes,
                matched,
                traces,
            } => {
                let _ = writeln!(
                    s,
                    "traces through {service}, last {window_minutes} min: {} of {matched}",
                    traces.len()
                );
                for t in traces {
                    write_trace(&mut s, t);
                }
            }
            Content::QueryResult {
                language,
                query,
                window_minutes,
                total,
                page,
                pages,
                series,
                lines,
                traces,
            } => {
                let _ = writeln!(
                    s,
                    "{language} `{query}` over the last {window_minutes} min: {total} results, page {page} of {pages} (pages from 0)"
                );
                for m in series {
                    write_series(&mut s, m, false);
                }
                for l in lines {
                    let _ = writeln!(s, "  {} {} {} {}", l.id, l.time, l.level, l.message);
                }
                for t in traces {
                    write_trace(&mut s, t);
                }
            }
            Content::Diagnostic {
                service,
                check,
                id,
                status,
                findings,
            } => {
                let _ = writeln!(s, "{id} diagnostic {check} on {service}: {status}");
                for f in findings {
                    let _ = writeln!(s, "  {f}");
                }
            }
            Content::Changes { service, changes } => {
                let _ = writeln!(
                    s,
                    "changes{}: {}",
                    service
                        .as_deref()
                        .map(|x| format!(" of {x}"))
                        .unwrap_or_default(),
                    changes.len()
                );
                for c in changes {
                    let _ = writeln!(
                        s,
                        "  {} t{:+.1} {} {} by {}: {}",
                        c.id, c.minutes, c.service, c.kind, c.actor, c.summary
                    );
                }
            }
            Content::Operation { action, message } => {
                let _ = writeln!(s, "{action}: {message}");
            }
            Content::Waited { minutes } => {
                let _ = writeln!(s, "waited {minutes:.1} min");
            }
            Content::Ended { message } => {
                let _ = writeln!(s, "episode ended: {message}");
            }
            Content::Error { code, message } => {
                let _ = writeln!(s, "ERROR {code}: {message}");
            }
        }
        s
    }
}

/// One metric summary on a line; `unit` is left out where every series of the result has the same one.
fn write_series(s: &mut String, m: &MetricSummary, unit: bool) {
    let labels: Vec<String> = m
        .labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect();
    let points: Vec<String> = m.points.iter().map(|p| num(p.1)).collect();
    let unit = if unit {
        format!(" [{}]", m.unit)
    } else {
        String::new()
    };
    let _ = writeln!(
        s,
        "  {} {}{{{}}}{unit} first {} last {} min {} max {} | {}",
        m.id,
        m.metric,
        labels.join(","),
        num(m.first),
        num(m.last),
        num(m.min),
        num(m.max),
        points.join(" ")
    );
}

/// One trace summary on a line.
fn write_trace(s: &mut String, t: &TraceSummary) {
    let _ = writeln!(
        s,
        "  {} trace {} t{:+.1} {} {:.0}ms{}: {}",
        t.id,
        t.trace_id,
        t.minutes,
        t.root,
        t.duration_ms,
        if t.error { " ERROR" } else { "" },
        t.path.join(" -> ")
    );
}

fn write_services(s: &mut String, services: &[ServiceEntry]) {
    for e in services {
        let _ = writeln!(
            s,
            "  {} ({}) calls: {}",
            e.name,
            e.kind,
            join_or_none(&e.calls)
        );
    }
}

fn join_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}
