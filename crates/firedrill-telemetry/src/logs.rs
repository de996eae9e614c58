//! Structured logs rendered from the world when read: discrete events (what the mechanics and operations did),
//! request failures derived from each tick's frame, and background lines every healthy service writes.
//!
//! Text is written like the real thing: it carries the actual versions, numbers and peers, and it never names
//! a fault class, a hidden state, or a fix. Healthy services log warnings too, so the faulty one is never the
//! only service with bad lines.

use std::collections::BTreeMap;

use firedrill_world::changes::ChangeKind;
use firedrill_world::frame::ErrorCause;
use firedrill_world::{EventKind, ServiceId, World};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use serde::Serialize;

use crate::metrics::pod_name;

/// Severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Debug.
    Debug,
    /// Info.
    Info,
    /// Warning.
    Warn,
    /// Error.
    Error,
}

impl Level {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// One log line, structured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogRecord {
    /// Unix milliseconds.
    pub t_ms: i64,
    /// Service.
    pub service: String,
    /// Pod, when one pod wrote it.
    pub pod: Option<String>,
    /// Severity.
    pub level: Level,
    /// Stable machine name of the event (`oom_killed`, `request_failed`, ...).
    pub event: &'static str,
    /// Extra fields.
    pub fields: BTreeMap<String, String>,
    /// Human message.
    pub message: String,
}

impl LogRecord {
    /// logfmt: `ts=... level=... service=... event=... msg="..." k=v`.
    pub fn logfmt(&self) -> String {
        let mut s = format!(
            "ts={} level={} service={} event={}",
            rfc3339_ms(self.t_ms),
            self.level.as_str(),
            self.service,
            self.event
        );
        if let Some(p) = &self.pod {
            s.push_str(&format!(" pod={p}"));
        }
        s.push_str(&format!(" msg={}", quote(&self.message)));
        for (k, v) in &self.fields {
            s.push_str(&format!(" {k}={}", quote(v)));
        }
        s
    }

    /// One JSON object per line.
    pub fn json(&self) -> String {
        let mut obj = serde_json::Map::new();
        obj.insert("ts".into(), rfc3339_ms(self.t_ms).into());
        obj.insert("level".into(), self.level.as_str().into());
        obj.insert("service".into(), self.service.clone().into());
        if let Some(p) = &self.pod {
            obj.insert("pod".into(), p.clone().into());
        }
        obj.insert("event".into(), self.event.into());
        obj.insert("msg".into(), self.message.clone().into());
        for (k, v) in &self.fields {
            obj.insert(k.clone(), v.clone().into());
        }
        serde_json::Value::Object(obj).to_string()
    }
}

fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:".contains(c))
    {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// RFC 3339 with milliseconds, UTC, from unix milliseconds (civil-from-days; no calendar crate needed for this).
pub fn rfc3339_ms(t_ms: i64) -> String {
    let secs = t_ms.div_euclid(1000);
    let ms = t_ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// How logs are rendered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogOptions {
    /// Background warning noise, as a multiple of the normal rate.
    pub noise: f64,
    /// Most records returned (the newest are kept).
    pub max_records: usize,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            noise: 1.0,
            max_records: 5_000,
        }
    }
}

/// A deterministic generator for one (purpose, tick, service): rendering the same tick twice gives the same
/// lines, whatever else was rendered.
fn rng_for(world: &World, purpose: u64, tick: u64, service: usize) -> ChaCha8Rng {
    let mut x = world.seed() ^ purpose.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x = splitmix(x ^ tick.wrapping_mul(0xBF58_476D_1CE4_E5B9));
    x = splitmix(x ^ (service as u64).wrapping_mul(0x94D0_49BB_1331_11EB));
    ChaCha8Rng::seed_from_u64(x)
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn unit(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

fn pick<'a>(rng: &mut ChaCha8Rng, items: &'a [&'a str]) -> &'a str {
    items[((unit(rng) * items.len() as f64) as usize).min(items.len() - 1)]
}

fn fields(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect()
}

/// Renders the logs of every service in `[start_ms, end_ms)`, oldest first.
pub fn render(world: &World, start_ms: i64, end_ms: i64, opts: &LogOptions) -> Vec<LogRecord> {
    let mut out = Vec::new();
    events(world, start_ms, end_ms, &mut out);
    per_tick(world, start_ms, end_ms, opts, &mut out);
    out.sort_by(|a, b| {
        (a.t_ms, &a.service, a.event, &a.message).cmp(&(b.t_ms, &b.service, b.event, &b.message))
    });
    if out.len() > opts.max_records {
        out.drain(..out.len() - opts.max_records);
    }
    out
}

fn world_ms(world: &World, t_ms_world: i64) -> i64 {
    world.epoch_unix_s() * 1000 + t_ms_world
}

fn events(world: &World, start_ms: i64, end_ms: i64, out: &mut Vec<LogRecord>) {
    let topo = world.topology();
    for e in world.events().iter() {
        let t_ms = world_ms(world, e.t_ms);
        if t_ms < start_ms || t_ms >= end_ms {
            continue;
        }
        let id = ServiceId(e.service);
        if id.index() >= topo.len() {
            continue;
        }
        let spec = &topo.service(id).spec;
        let name = spec.name.clone();
        let pod = (e.replica != u8::MAX).then(|| pod_name(&name, e.replica as usize));
        let version = |i: u32| {
            spec.versions
                .get(i as usize)
                .map(|v| v.name.clone())
                .unwrap_or_default()
        };
        let peer = |i: u32| {
            topo.services
                .get(i as usize)
                .map(|s| s.spec.name.clone())
                .unwrap_or_else(|| "unknown".into())
        };
        let topic = |i: u32| {
            topo.topics
                .get(i as usize)
                .map(|t| t.name.clone())
                .unwrap_or_default()
        };
        let (level, event, message, f): (Level, &'static str, String, BTreeMap<String, String>) =
            match e.kind {
                EventKind::OomKilled => (
                    Level::Error,
                    "oom_killed",
                    format!(
                        "container {name} terminated: reason=OOMKilled exit_code=137 (working set {:.0}Mi, limit {:.0}Mi)",
                        e.a, e.b
                    ),
                    fields(&[("restart_count", e.c.to_string())]),
                ),
                EventKind::CrashLoopBackOff => (
                    Level::Warn,
                    "crash_loop_back_off",
                    format!(
                        "Back-off restarting failed container {name}: waiting {:.0}s",
                        e.a
                    ),
                    fields(&[("restart_count", e.c.to_string())]),
                ),
                EventKind::ContainerStarted => (
                    Level::Info,
                    "container_started",
                    format!("starting {name} {}", version(e.c)),
                    fields(&[("version", version(e.c))]),
                ),
                EventKind::ContainerReady => (
                    Level::Info,
                    "container_ready",
                    "readiness probe succeeded; serving traffic".into(),
                    BTreeMap::new(),
                ),
                EventKind::ContainerExited => (
                    Level::Error,
                    "container_exited",
                    format!(
                        "process exited with code 1 during start-up of {}",
                        version(e.c)
                    ),
                    BTreeMap::new(),
                ),
                EventKind::PodTerminated => (
                    Level::Info,
                    "pod_terminated",
                    "received SIGTERM; draining connections and shutting down".into(),
                    BTreeMap::new(),
                ),
                EventKind::FailedScheduling => (
                    Level::Warn,
                    "failed_scheduling",
                    format!(
                        "0/6 nodes available: exceeded quota: requested cpu={:.0}m memory={:.0}Mi",
                        e.a, e.b
                    ),
                    BTreeMap::new(),
                ),
                EventKind::Autoscaled => (
                    Level::Info,
                    "autoscaled",
                    format!(
                        "horizontal-pod-autoscaler: new size {:.0} (was {:.0}); cpu utilization {}% of request",
                        e.b, e.a, e.c
                    ),
                    BTreeMap::new(),
                ),
                EventKind::RolloutStarted => (
                    Level::Info,
                    "rollout_started",
                    format!(
                        "deployment {name}: rolling update from {} to {}",
                        version(e.a as u32),
                        version(e.b as u32)
                    ),
                    fields(&[("version", version(e.b as u32))]),
                ),
                EventKind::RolloutFinished => (
                    Level::Info,
                    "rollout_finished",
                    format!(
                        "deployment {name} successfully rolled out {}",
                        version(e.b as u32)
                    ),
                    BTreeMap::new(),
                ),
                EventKind::ConfigChanged | EventKind::FlagChanged => {
                    let Some(c) = world.changes().get(e.c as usize) else {
                        continue;
                    };
                    let text = change_summary(world, c);
                    (
                        Level::Info,
                        if e.kind == EventKind::ConfigChanged {
                            "config_reloaded"
                        } else {
                            "flag_changed"
                        },
                        text,
                        fields(&[("actor", c.actor.0.clone())]),
                    )
                }
                EventKind::Scaled => (
                    Level::Info,
                    "scaled",
                    format!(
                        "deployment {name} scaled from {:.0} to {:.0} replicas",
                        e.a, e.b
                    ),
                    BTreeMap::new(),
                ),
                EventKind::LimitsChanged => (
                    Level::Info,
                    "resources_changed",
                    format!(
                        "pod template updated: memory limit {:.0}Mi, cpu limit {:.0}m",
                        e.a, e.b
                    ),
                    BTreeMap::new(),
                ),
                EventKind::PoolExhausted => (
                    Level::Warn,
                    "pool_exhausted",
                    format!(
                        "connection pool to {} exhausted: {:.0}/{:.0} connections in use, 0 idle",
                        peer(e.c),
                        e.a,
                        e.b
                    ),
                    BTreeMap::new(),
                ),
                EventKind::PoolTimeout => (
                    Level::Error,
                    "pool_timeout",
                    format!(
                        "connection is not available from pool {}, request timed out after {:.0}ms ({:.1}/s)",
                        peer(e.c),
                        e.b.max(1.0),
                        e.a
                    ),
                    BTreeMap::new(),
                ),
                EventKind::DiskPressure => (
                    Level::Warn,
                    "disk_pressure",
                    format!(
                        "volume /data {:.0}% used ({:.1}GiB of {:.1}GiB)",
                        100.0 * e.a / e.b.max(1e-9),
                        e.a,
                        e.b
                    ),
                    BTreeMap::new(),
                ),
                EventKind::DiskFull => (
                    Level::Error,
                    "no_space_left",
                    format!(
                        "write /data failed: ENOSPC: no space left on device ({:.1}GiB of {:.1}GiB used)",
                        e.a, e.b
                    ),
                    BTreeMap::new(),
                ),
                EventKind::CertExpired => (
                    Level::Error,
                    "tls_handshake",
                    format!(
                        "tls: client rejected our certificate: x509: certificate has expired ({:.0}s ago)",
                        e.a
                    ),
                    BTreeMap::new(),
                ),
                EventKind::CertRenewed => (
                    Level::Info,
                    "certificate_issued",
                    format!(
                        "cert-manager: certificate {name}-tls is up to date and has not expired; secret updated"
                    ),
                    BTreeMap::new(),
                ),
                EventKind::LockWaits => (
                    Level::Warn,
                    "lock_waits",
                    format!(
                        "process still waiting for ShareLock on transaction after {:.0} ms; blocking process application_name={}",
                        e.a,
                        peer(e.c)
                    ),
                    fields(&[("blocking_application", peer(e.c))]),
                ),
                EventKind::QosIncompatible => (
                    Level::Warn,
                    "requested_incompatible_qos",
                    format!(
                        "subscription to {}: no matching publisher (requested QoS incompatible with offered)",
                        topic(e.c)
                    ),
                    BTreeMap::new(),
                ),
                EventKind::QueueBacklog => (
                    Level::Warn,
                    "consumer_lag",
                    format!(
                        "consumer lag on {}: {:.0} messages behind ({:.0} msg/s arriving)",
                        topic(e.c),
                        e.a,
                        e.b
                    ),
                    BTreeMap::new(),
                ),
                EventKind::QueueDrained => (
                    Level::Info,
                    "queue_purged",
                    format!(
                        "subscription {} purged: {:.0} messages dropped",
                        topic(e.c),
                        e.a
                    ),
                    BTreeMap::new(),
                ),
                EventKind::TelemetryDropping => (
                    Level::Warn,
                    "buffer_full",
                    format!(
                        "output buffer full; dropping {:.0}% of records ({:.0} lines/s in)",
                        100.0 * e.a,
                        e.b
                    ),
                    BTreeMap::new(),
                ),
                EventKind::RateLimited => (
                    Level::Warn,
                    "rate_limited",
                    format!(
                        "429 Too Many Requests: {:.0} req/s over limit ({:.0} req/s allowed)",
                        e.a, e.b
                    ),
                    BTreeMap::new(),
                ),
                EventKind::CpuThrottled => (
                    Level::Warn,
                    "cpu_throttled",
                    "high ratio of CFS throttled periods for container".into(),
                    BTreeMap::new(),
                ),
                EventKind::DependencyDegraded => (
                    Level::Warn,
                    "upstream_status",
                    "provider status page reports degraded performance".into(),
                    BTreeMap::new(),
                ),
                // What no real system logs: an outside surge or a detached network shows only through its
                // consequences (more requests, connection errors at the callers).
                EventKind::TrafficShift
                | EventKind::NetworkDetached
                | EventKind::NetworkReattached => continue,
            };
        out.push(LogRecord {
            t_ms,
            service: name,
            pod,
            level,
            event,
            fields: f,
            message,
        });
    }
}

/// Lines derived from each tick's state: request failures by cause, and background lines.
fn per_tick(
    world: &World,
    start_ms: i64,
    end_ms: i64,
    opts: &LogOptions,
    out: &mut Vec<LogRecord>,
) {
    let topo = world.topology();
    let ring = world.history();
    let dt = world.tick_s();
    let tick_ms = (dt * 1000.0) as i64;
    for t in ring.first_tick()..ring.end_tick() {
        let end = crate::metrics::tick_ms(world, t);
        let begin = end - tick_ms;
        if end <= start_ms || begin >= end_ms {
            continue;
        }
        for (i, f) in ring.tick(t).unwrap_or(&[]).iter().enumerate() {
            let spec = &topo.services[i].spec;
            if spec.kind == firedrill_world::spec::ServiceKind::External {
                continue;
            }
            let mut rng = rng_for(world, 1, t, i);
            let keep = 1.0 - f.log_drop_ratio as f64;
            let mut emit = |rng: &mut ChaCha8Rng,
                            level: Level,
                            event: &'static str,
                            message: String,
                            fl: BTreeMap<String, String>| {
                if unit(rng) >= keep {
                    return;
                }
                let at = begin + (unit(rng) * tick_ms as f64) as i64;
                if at < start_ms || at >= end_ms {
                    return;
                }
                let slot = (unit(rng) * f.ready.max(1) as f64) as usize;
                out.push(LogRecord {
                    t_ms: at,
                    service: spec.name.clone(),
                    pod: Some(pod_name(&spec.name, slot)),
                    level,
                    event,
                    fields: fl,
                    message,
                });
            };
            // Request failures, a handful per tick at most (real services sample error logs too).
            let failures = (f.error_rps as f64 * dt).min(6.0);
            let n = failures.floor() as usize + (unit(&mut rng) < failures.fract()) as usize;
            for _ in 0..n {
                let (level, event, message) = failure_text(world, i, f.err_cause, f.err_dep);
                emit(&mut rng, level, event, message, BTreeMap::new());
            }
            // Background: request summaries, health checks, GC, and warnings healthy services write too.
            let lines = (spec.log_lines_per_s * 0.02 * dt).min(4.0);
            let n = lines.floor() as usize + (unit(&mut rng) < lines.fract()) as usize;
            for _ in 0..n {
                let (level, event, message) = background(&mut rng, spec, f);
                emit(&mut rng, level, event, message, BTreeMap::new());
            }
            let warn_rate = 0.06 * opts.noise;
            if unit(&mut rng) < warn_rate {
                let (event, message) = distractor(&mut rng, world, i);
                emit(&mut rng, Level::Warn, event, message, BTreeMap::new());
            }
        }
    }
}

fn failure_text(
    world: &World,
    service: usize,
    cause: ErrorCause,
    dep: u16,
) -> (Level, &'static str, String) {
    let topo = world.topology();
    let peer = topo
        .services
        .get(dep as usize)
        .map(|s| s.spec.name.as_str())
        .unwrap_or("upstream");
    let edge = topo.services[service]
        .out_edges
        .iter()
        .map(|&e| &topo.edges[e])
        .find(|e| e.to.0 == dep);
    let timeout = edge.map(|e| e.timeout_ms).unwrap_or(1000.0);
    let state = world.service(ServiceId(service as u16));
    match cause {
        ErrorCause::None | ErrorCause::Internal => (
            Level::Error,
            "internal_error",
            "unhandled exception while processing request: status=500".into(),
        ),
        ErrorCause::Overload => (
            Level::Warn,
            "request_timeout",
            "request queue full; request timed out waiting for a worker (status=503)".into(),
        ),
        ErrorCause::Unavailable => (
            Level::Error,
            "no_healthy_upstream",
            "no healthy upstream: all endpoints unavailable (status=503)".into(),
        ),
        ErrorCause::UpstreamTimeout => (
            Level::Error,
            "upstream_timeout",
            format!("upstream request timeout after {timeout:.0}ms calling {peer}"),
        ),
        ErrorCause::UpstreamError => (
            Level::Error,
            "upstream_error",
            format!("call to {peer} failed: upstream returned 5xx"),
        ),
        ErrorCause::PoolTimeout => {
            let size = state.fx.pool_max.or(edge.and_then(|e| e.pool)).unwrap_or(0);
            (
                Level::Error,
                "pool_timeout",
                format!(
                    "could not acquire connection to {peer} within {timeout:.0}ms (pool {size}/{size} in use)"
                ),
            )
        }
        ErrorCause::DiskFull => (
            Level::Error,
            "no_space_left",
            "ENOSPC: no space left on device while writing /data/spool".into(),
        ),
        ErrorCause::TlsHandshake => (
            Level::Error,
            "tls_handshake",
            format!(
                "x509: certificate has expired or is not yet valid when calling https://{peer}"
            ),
        ),
        ErrorCause::DnsResolution => {
            let resolver = state
                .config
                .get("dns.resolver")
                .cloned()
                .unwrap_or_else(|| "10.96.0.10".into());
            (
                Level::Error,
                "dns_resolution",
                format!(
                    "dial tcp: lookup {peer}.prod.svc.cluster.local on {resolver}:53: i/o timeout"
                ),
            )
        }
        ErrorCause::Unreachable => (
            Level::Error,
            "connect_timeout",
            format!("dial tcp {peer}:443: connect: connection timed out"),
        ),
        ErrorCause::LockTimeout => (
            Level::Error,
            "lock_timeout",
            "ERROR: canceling statement due to lock timeout".into(),
        ),
        ErrorCause::RateLimited => (
            Level::Warn,
            "rate_limited",
            "429 Too Many Requests: client over rate limit".into(),
        ),
    }
}

fn background(
    rng: &mut ChaCha8Rng,
    spec: &firedrill_world::spec::ServiceSpec,
    f: &firedrill_world::ServiceFrame,
) -> (Level, &'static str, String) {
    match (unit(rng) * 4.0) as u32 {
        0 => (
            Level::Info,
            "request",
            format!(
                "handled {} {} in {:.0}ms status=200",
                pick(rng, &["GET", "GET", "POST", "PUT"]),
                pick(
                    rng,
                    &[
                        "/api/v1/items",
                        "/api/v1/orders",
                        "/healthz/deep",
                        "/api/v1/session",
                        "/api/v1/cart"
                    ]
                ),
                f.latency_median_ms.max(1.0) as f64 * (0.6 + 0.8 * unit(rng))
            ),
        ),
        1 => (Level::Debug, "health_check", "liveness probe ok".into()),
        2 => (
            Level::Info,
            "gc_pause",
            format!(
                "GC pause {:.1}ms, heap {:.0}Mi after collection",
                2.0 + 20.0 * unit(rng),
                f.memory_mb_max() * 0.7
            ),
        ),
        _ => (
            Level::Info,
            "stats",
            format!(
                "{} throughput {:.1} req/s, p50 {:.0}ms",
                spec.name, f.admitted_rps, f.latency_median_ms
            ),
        ),
    }
}

/// Warnings that healthy systems write all the time.
fn distractor(rng: &mut ChaCha8Rng, world: &World, service: usize) -> (&'static str, String) {
    let topo = world.topology();
    let other = &topo.services[(unit(rng) * topo.len() as f64) as usize % topo.len()]
        .spec
        .name;
    match (unit(rng) * 6.0) as u32 {
        0 => (
            "deprecated_api",
            format!("client {other} called deprecated endpoint /api/v0/lookup"),
        ),
        1 => (
            "slow_gc",
            format!(
                "GC pause {:.0}ms exceeded 200ms target",
                200.0 + 300.0 * unit(rng)
            ),
        ),
        2 => (
            "metrics_push_retry",
            "retrying metrics push to collector: context deadline exceeded (attempt 2)".into(),
        ),
        3 => (
            "tls_session",
            format!("TLS session resumption failed with {other}; falling back to full handshake"),
        ),
        4 => (
            "slow_request",
            format!(
                "slow request: GET /api/v1/report took {:.0}ms",
                900.0 + 1500.0 * unit(rng)
            ),
        ),
        _ => (
            "config_reload",
            format!(
                "config reload requested for {}; no changes detected",
                topo.services[service].spec.name
            ),
        ),
    }
}

/// A change record, rendered for the deploy history and audit log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeView {
    /// Index in the world's change list.
    pub id: usize,
    /// Unix milliseconds.
    pub t_ms: i64,
    /// Who.
    pub actor: String,
    /// Service.
    pub service: String,
    /// Type (`deploy`, `rollback`, `config`...).
    pub kind: &'static str,
    /// What changed, in words.
    pub summary: String,
}

fn change_summary(world: &World, c: &firedrill_world::ChangeRecord) -> String {
    let spec = &world.topology().service(c.service).spec;
    let version = |i: u8| {
        spec.versions
            .get(i as usize)
            .map(|v| v.name.as_str())
            .unwrap_or("?")
    };
    match &c.kind {
        ChangeKind::Deploy { from, to, rollback } => {
            format!(
                "{} {} from {} to {}",
                if *rollback { "rolled back" } else { "deployed" },
                spec.name,
                version(*from),
                version(*to)
            )
        }
        ChangeKind::Config { key, old, new } => {
            format!(
                "set {key} on {}: {} -> {new}",
                spec.name,
                old.as_deref().unwrap_or("(unset)")
            )
        }
        ChangeKind::Flag { flag, enabled } => format!(
            "feature flag {} {} on {}",
            spec.flags
                .get(*flag as usize)
                .map(|f| f.name.as_str())
                .unwrap_or("?"),
            if *enabled { "enabled" } else { "disabled" },
            spec.name
        ),
        ChangeKind::Scale { from, to } => {
            format!("scaled {} from {from} to {to} replicas", spec.name)
        }
        ChangeKind::Limits {
            memory_mb,
            cpu_millis,
            disk_gb,
        } => {
            let mut parts = Vec::new();
            if let Some(m) = memory_mb {
                parts.push(format!("memory limit {m}Mi"));
            }
            if let Some(c) = cpu_millis {
                parts.push(format!("cpu limit {c}m"));
            }
            if let Some(d) = disk_gb {
                parts.push(format!("volume size {d:.0}GiB"));
            }
            format!("updated resources of {}: {}", spec.name, parts.join(", "))
        }
        ChangeKind::Restart => format!("restarted all pods of {}", spec.name),
        ChangeKind::NetworkReconnect => format!("reattached network of {}", spec.name),
        ChangeKind::QueueDrain { dropped } => format!(
            "purged subscriptions of {} ({dropped:.0} messages)",
            spec.name
        ),
    }
}

/// Every change (the audit log), oldest first.
pub fn audit_log(world: &World) -> Vec<ChangeView> {
    world
        .changes()
        .iter()
        .enumerate()
        .map(|(id, c)| ChangeView {
            id,
            t_ms: world.epoch_unix_s() * 1000 + (c.t_s * 1000.0).round() as i64,
            actor: c.actor.0.clone(),
            service: world.topology().service(c.service).name().to_string(),
            kind: c.kind.name(),
            summary: change_summary(world, c),
        })
        .collect()
}

/// Deploys and rollbacks only, oldest first.
pub fn deploy_history(world: &World) -> Vec<ChangeView> {
    audit_log(world)
        .into_iter()
        .filter(|c| c.kind == "deploy" || c.kind == "rollback")
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_772_434_800_123), "2026-03-02T07:00:00.123Z");
        assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn logfmt_quotes_what_needs_it() {
        let r = LogRecord {
            t_ms: 0,
            service: "a".into(),
            pod: None,
            level: Level::Warn,
            event: "x",
            fields: fields(&[("k", "two words".into())]),
            message: "say \"hi\"".into(),
        };
        assert_eq!(
            r.logfmt(),
            "ts=1970-01-01T00:00:00.000Z level=warn service=a event=x msg=\"say \\\"hi\\\"\" k=\"two words\""
        );
    }
}
