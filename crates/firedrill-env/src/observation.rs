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
    /// Pods that exist and are not terminating, per version they run (oldest version first, versions with none
    /// left out): more than one entry while a rollout replaces pods, as `kubectl get pods` would show.
    pub pods: Vec<(String, u32)>,
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

/// A measured value as the text shows it: `0`, else three significant decimals in scientific notation for very
/// large or small magnitudes, whole numbers from 100 up, three decimals below.
#[derive(Debug, Clone, Copy)]
struct Num(f64);

impl std::fmt::Display for Num {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self.0;
        if v == 0.0 {
            f.write_str("0")
        } else if v.abs() >= 1e6 || v.abs() < 1e-3 {
            Sci3(v).fmt(f)
        } else if v.abs() >= 100.0 {
            Fixed::new(v, 0).fmt(f)
        } else {
            Fixed::new(v, 3).fmt(f)
        }
    }
}

/// `value` with `decimals` digits after the point, and a `+` before non-negative values when `plus`: exactly what
/// `format!("{value:.decimals$}")` (or `{value:+.decimals$}`) writes.
///
/// Written by hand because observations are mostly numbers, and `std`'s exact formatting (Grisu, falling back to
/// Dragon4's big-number arithmetic, which alone was a third of the time) was two thirds of rendering an
/// observation as text. Here one rounded product decides the digits wherever it can (see [`round_decided`]):
/// everywhere but on a tie it cannot tell. There, and for values too large, not finite, or asked for more than
/// nine decimals, `std` decides as before. The tests compare both on 300,000 chosen values, ties and their
/// neighbours included, and on any float.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fixed {
    value: f64,
    decimals: u8,
    plus: bool,
}

impl Fixed {
    pub(crate) fn new(value: f64, decimals: u8) -> Fixed {
        Fixed {
            value,
            decimals,
            plus: false,
        }
    }

    fn signed(value: f64, decimals: u8) -> Fixed {
        Fixed {
            value,
            decimals,
            plus: true,
        }
    }
}

/// Powers of ten that are exact in `f64` (up to 10^22).
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// `r >= 0` rounded to an integer when that decides how the exact value it was rounded from rounds. `r` is a
/// product or quotient rounded once, and rounding keeps order while every `n + 0.5` below 2^32 is a float, so a
/// rounded value above (below) a tie comes from an exact value above (below) it. On the tie itself, the exact
/// value is the tie when `exact` says the operation lost nothing, and then rounds to even as `std` rounds it;
/// otherwise it may lie either side, and `None` leaves it to `std`. `None` too from 2^32 up (and for NaN).
fn round_decided(r: f64, exact: bool) -> Option<u64> {
    if !(0.0..4_294_967_296.0).contains(&r) {
        return None;
    }
    // Both exact: `r` is below 2^32.
    let whole = r as u64;
    let frac = r - whole as f64;
    if frac != 0.5 {
        Some(whole + (frac > 0.5) as u64)
    } else if exact {
        Some(whole + (whole % 2))
    } else {
        None
    }
}

/// Whether `x * 10^m` loses no bit, for a normal `x` whose product stays normal: `x * 2^m` never does, and
/// `x * 5^m` does not when `x`'s significand ends in at least as many zero bits as `5^m` has bits.
fn scales_exactly(x: f64, m: u32) -> bool {
    const FIVE_POW_BITS: [u32; 23] = [
        0, 3, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28, 31, 33, 35, 38, 40, 42, 45, 47, 49, 52,
    ];
    if m == 0 {
        return true;
    }
    let Some(&bits) = FIVE_POW_BITS.get(m as usize) else {
        return false;
    };
    if !x.is_normal() {
        return false;
    }
    let significand = (x.to_bits() & ((1u64 << 52) - 1)) | (1u64 << 52);
    significand.trailing_zeros() >= bits
}

/// Appends `n` as decimal digits, at least `width` of them (zeros in front).
fn push_digits(out: &mut [u8; 40], len: &mut usize, mut n: u64, width: usize) {
    let mut digits = [0u8; 20];
    let mut k = 0;
    while n > 0 || k < width.max(1) {
        digits[k] = b'0' + (n % 10) as u8;
        n /= 10;
        k += 1;
    }
    for &d in digits[..k].iter().rev() {
        out[*len] = d;
        *len += 1;
    }
}

impl std::fmt::Display for Fixed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Fixed {
            value,
            decimals,
            plus,
        } = *self;
        let d = decimals as usize;
        let magnitude = value.abs();
        // Nine decimals at most: `units` stays below 2^32, so its digits fit the buffer below.
        let units = if d <= 9 && value.is_finite() {
            round_decided(magnitude * POW10[d], scales_exactly(magnitude, d as u32))
        } else {
            None
        };
        let Some(units) = units else {
            return if plus {
                write!(f, "{value:+.d$}")
            } else {
                write!(f, "{value:.d$}")
            };
        };
        // Sign and magnitude, as `std` writes them: a minus for every negative value, negative zero included.
        let mut buf = [0u8; 40];
        let mut len = 0;
        if value.is_sign_negative() {
            buf[0] = b'-';
            len = 1;
        } else if plus {
            buf[0] = b'+';
            len = 1;
        }
        // `units < 2^32` and `d` is small here, so `POW10[d]` converts exactly.
        let scale = POW10[d] as u64;
        push_digits(&mut buf, &mut len, units / scale, 1);
        if d > 0 {
            buf[len] = b'.';
            len += 1;
            push_digits(&mut buf, &mut len, units % scale, d);
        }
        // Only ASCII digits and signs were written.
        f.write_str(std::str::from_utf8(&buf[..len]).map_err(|_| std::fmt::Error)?)
    }
}

/// `value` in scientific notation with three decimals: exactly what `format!("{value:.3e}")` writes (`1.234e6`,
/// `-5.000e-4`), decided as [`Fixed`] decides.
#[derive(Debug, Clone, Copy)]
struct Sci3(f64);

impl Sci3 {
    /// (mantissa in units of 10^-3, from 1000 to 9999, exponent) of a finite, non-zero `magnitude`, when one
    /// rounded quotient or product decides them.
    fn decide(magnitude: f64) -> Option<(u64, i32)> {
        if !(magnitude > 0.0 && magnitude.is_finite()) {
            return None;
        }
        let mut exp = magnitude.log10().floor() as i32;
        // `log10` may be one off near a power of ten: two tries find the exponent that puts the four digits
        // in [1000, 10000).
        for _ in 0..2 {
            let k = exp - 3;
            let p = *POW10.get(k.unsigned_abs() as usize)?;
            let r = if k >= 0 { magnitude / p } else { magnitude * p };
            // Whether `r` is the exact quotient or product, for a tie: a quotient of a whole number when the
            // tie times `10^k` gives it back exactly (in integers), a product as `scales_exactly` says.
            let exact = if k >= 0 {
                magnitude < 9.2e18
                    && magnitude.fract() == 0.0
                    && (r.fract() != 0.5
                        || (2 * r as u128 + 1) * 10u128.pow(k as u32) == 2 * magnitude as u128)
            } else {
                scales_exactly(magnitude, k.unsigned_abs())
            };
            if r < 1000.0 {
                exp -= 1;
            } else if r >= 10_000.0 {
                exp += 1;
            } else {
                let units = round_decided(r, exact)?;
                // 9.9995e6 and up round to 1.000e7.
                return Some(if units == 10_000 {
                    (1000, exp + 1)
                } else {
                    (units, exp)
                });
            }
        }
        None
    }
}

impl std::fmt::Display for Sci3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = self.0;
        let Some((units, exp)) = Sci3::decide(value.abs()) else {
            return write!(f, "{value:.3e}");
        };
        let mut buf = [0u8; 40];
        let mut len = 0;
        if value.is_sign_negative() {
            buf[0] = b'-';
            len = 1;
        }
        push_digits(&mut buf, &mut len, units / 1000, 1);
        buf[len] = b'.';
        len += 1;
        push_digits(&mut buf, &mut len, units % 1000, 3);
        buf[len] = b'e';
        len += 1;
        if exp < 0 {
            buf[len] = b'-';
            len += 1;
        }
        push_digits(&mut buf, &mut len, exp.unsigned_abs() as u64, 1);
        // Only ASCII digits, signs, a point and an `e` were written.
        f.write_str(std::str::from_utf8(&buf[..len]).map_err(|_| std::fmt::Error)?)
    }
}

impl Observation {
    /// The observation as text for a language model: compact, one item per line, evidence ids first.
    pub fn to_text(&self) -> String {
        let mut s = String::with_capacity(512);
        let _ = writeln!(
            s,
            "[t+{} min, {} min of budget left, step {}]",
            Fixed::new(self.minutes_since_page, 1),
            Fixed::new(self.budget_left_minutes, 1),
            self.step
        );
        if self.firing_alerts.is_empty() {
            s.push_str("alerts firing: none\n");
        } else {
            s.push_str("alerts firing:");
            for a in &self.firing_alerts {
                let _ = write!(
                    s,
                    " {}({}, {}, since t{})",
                    a.name,
                    a.service,
                    a.severity,
                    Fixed::signed(a.active_since_minutes, 1)
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
                    "budget: {} simulated minutes. Actions: list_services, describe_service, query_metrics, \
                     query_logs, query_traces, run_diagnostic, query_deploys, restart_service, scale_service, \
                     rollback_deploy, update_config, wait, resolve_incident (JSON: {{\"action\": name, ...}}); \
                     query_metrics, query_logs and query_traces also take `promql`, `logql` or `traceql`.",
                    Fixed::new(p.budget_minutes, 0)
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
                let pods: Vec<String> = d
                    .pods
                    .iter()
                    .map(|(version, n)| format!("{n} on {version}"))
                    .collect();
                let rolling = d.pods.iter().any(|(version, _)| *version != d.version);
                let _ = writeln!(
                    s,
                    "  pods: {}{}",
                    join_or_none(&pods),
                    if rolling {
                        format!(" (rolling out {})", d.version)
                    } else {
                        String::new()
                    }
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
                        "  {} t{} {} {} by {}: {}",
                        c.id,
                        Fixed::signed(c.minutes, 1),
                        c.service,
                        c.kind,
                        c.actor,
                        c.summary
                    );
                }
            }
            Content::Operation { action, message } => {
                let _ = writeln!(s, "{action}: {message}");
            }
            Content::Waited { minutes } => {
                let _ = writeln!(s, "waited {} min", Fixed::new(*minutes, 1));
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
    let _ = write!(s, "  {} {}{{", m.id, m.metric);
    for (i, (k, v)) in m.labels.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{k}=\"{v}\"");
    }
    s.push('}');
    if unit {
        let _ = write!(s, " [{}]", m.unit);
    }
    let _ = write!(
        s,
        " first {} last {} min {} max {} | ",
        Num(m.first),
        Num(m.last),
        Num(m.min),
        Num(m.max)
    );
    for (i, p) in m.points.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{}", Num(p.1));
    }
    s.push('\n');
}

/// One trace summary on a line.
fn write_trace(s: &mut String, t: &TraceSummary) {
    let _ = writeln!(
        s,
        "  {} trace {} t{} {} {}ms{}: {}",
        t.id,
        t.trace_id,
        Fixed::signed(t.minutes, 1),
        t.root,
        Fixed::new(t.duration_ms, 0),
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The three forms `Num` chooses between, and the signed one, against `std` for one value.
    fn assert_as_std(v: f64) {
        for d in [0u8, 1, 3] {
            let d_ = d as usize;
            assert_eq!(
                Fixed::new(v, d).to_string(),
                format!("{v:.d_$}"),
                "{v:e} .{d}"
            );
            assert_eq!(
                Fixed::signed(v, d).to_string(),
                format!("{v:+.d_$}"),
                "{v:e} +.{d}"
            );
        }
        assert_eq!(Sci3(v).to_string(), format!("{v:.3e}"), "{v:e} .3e");
    }

    /// A generator of the values this must get right: all sorts of magnitudes, the ties of every form and the
    /// floats next to them, the powers of ten and their neighbours, and the special values.
    fn hard_values(seed: u64, n: usize) -> Vec<f64> {
        let mut x = seed;
        let mut next = move || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        let mut out = vec![
            0.0,
            -0.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::EPSILON,
            4_294_967_296.0,
            4_294_967_295.5,
        ];
        while out.len() < n {
            let r = next();
            let v = match r % 7 {
                // Any bit pattern.
                0 => f64::from_bits(next()),
                // Uniform magnitudes from 1e-9 to 1e12.
                1 => 10f64.powf((next() % 21_000) as f64 / 1000.0 - 9.0),
                // Ties at 0, 1 and 3 decimals, and halves at the fourth significant digit.
                2 => (next() % 20_000_000) as f64 / 2000.0 + 0.0005 * (next() % 2) as f64,
                3 => {
                    ((next() % 2_000_000) as f64 + 0.5) / [1.0, 10.0, 1000.0][(next() % 3) as usize]
                }
                4 => {
                    let e = (next() % 40) as i32 - 20;
                    (((next() % 9000) + 1000) as f64 + 0.5) * 10f64.powi(e - 3)
                }
                // Binary fractions: exact ties at one, two and three decimals (0.25, 0.125, 2.0625...).
                5 => (next() % 100_000) as f64 / (1u64 << (next() % 14)) as f64,
                // Powers of ten.
                _ => 10f64.powi((next() % 40) as i32 - 20),
            };
            let sign = if next() % 2 == 0 { 1.0 } else { -1.0 };
            // The value and the floats either side of it.
            for w in [
                v,
                f64::from_bits(v.to_bits().wrapping_add(1)),
                f64::from_bits(v.to_bits().wrapping_sub(1)),
            ] {
                out.push(sign * w);
            }
        }
        out
    }

    #[test]
    fn many_decimals_are_left_to_std() {
        for d in [10u8, 20, 30, 255] {
            let d_ = d as usize;
            for v in [0.1, 1.0 / 3.0, -2.5, 1e300] {
                assert_eq!(Fixed::new(v, d).to_string(), format!("{v:.d_$}"));
            }
        }
    }

    #[test]
    fn fixed_and_scientific_write_what_std_writes() {
        for v in hard_values(7, 300_000) {
            assert_as_std(v);
        }
    }

    proptest! {
        #[test]
        fn fixed_and_scientific_write_what_std_writes_for_any_float(bits in any::<u64>()) {
            let v = f64::from_bits(bits);
            for d in [0u8, 1, 3] {
                let d_ = d as usize;
                prop_assert_eq!(Fixed::new(v, d).to_string(), format!("{v:.d_$}"));
                prop_assert_eq!(Fixed::signed(v, d).to_string(), format!("{v:+.d_$}"));
            }
            prop_assert_eq!(Sci3(v).to_string(), format!("{v:.3e}"));
        }

        #[test]
        fn num_is_the_three_forms_it_chooses_between(v in -1e9f64..1e9) {
            let want = if v == 0.0 {
                "0".to_string()
            } else if v.abs() >= 1e6 || v.abs() < 1e-3 {
                format!("{v:.3e}")
            } else if v.abs() >= 100.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.3}")
            };
            prop_assert_eq!(Num(v).to_string(), want);
        }
    }
}
