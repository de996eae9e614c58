//! Structured logs rendered from the world when read.
//!
//! Three sources, merged in time order:
//!
//! 1. discrete events ([`World::events`]): what the kubelet, controllers, cert-manager, the database and the
//!    applications said when something happened (OOM kills, pod starts and stops, rollouts, configuration
//!    reloads, pool and disk conditions...);
//! 2. request failures derived from each tick's frame, worded after the tick's `err_cause` and `err_dep`, with
//!    the real peers, timeouts, pool sizes and resolver of that moment;
//! 3. background lines every service writes (request summaries, health checks, GC, pool and cache stats) and
//!    warnings that healthy services write too, so the failing service is never the only one that warns.
//!
//! Text is written like the real thing: it carries the actual versions, numbers and peers, and it never names
//! a fault class, a hidden state or a fix. Perturbations nobody could observe directly (an outside traffic
//! surge, a detached network) are not logged as such; they show through their consequences.
//!
//! Every line is a pure function of (seed, tick, service) and the world's events and changes: rendering the
//! same window twice gives the same lines.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use firedrill_world::changes::ChangeKind;
use firedrill_world::config::{CLUSTER_RESOLVER, LogLevel};
use firedrill_world::frame::ErrorCause;
use firedrill_world::spec::{ServiceKind, ServiceSpec};
use firedrill_world::topology::Edge;
use firedrill_world::{ChangeRecord, Event, EventKind, ServiceFrame, ServiceId, World};
use rand_xoshiro::rand_core::Rng;
use serde::Serialize;

use crate::det::{self, KeyedRng, Purpose, normal, pick, stochastic_round, unit};
use crate::metrics::{PodNames, code_of};

/// `format!` when the context writes text, else an empty string. The arguments are evaluated either way, in the
/// same order, so the draws they make do not depend on whether text is written.
macro_rules! text {
    ($ctx:expr, $($fmt:tt)+) => {
        $ctx.written(format_args!($($fmt)+))
    };
}

/// Severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
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
    /// Stable machine name of the event (`oom_killed`, `pool_timeout`, `request`...).
    pub event: &'static str,
    /// Extra fields.
    pub fields: BTreeMap<String, String>,
    /// Human message.
    pub message: String,
}

impl LogRecord {
    /// logfmt: `ts=... level=... service=... [pod=...] event=... msg="..." k=v...`.
    pub fn logfmt(&self) -> String {
        let mut s = format!(
            "ts={} level={} service={}",
            rfc3339_ms(self.t_ms),
            self.level.as_str(),
            quote(&self.service),
        );
        if let Some(p) = &self.pod {
            s.push_str(" pod=");
            s.push_str(&quote(p));
        }
        s.push_str(" event=");
        s.push_str(self.event);
        s.push_str(" msg=");
        s.push_str(&quote(&self.message));
        for (k, v) in &self.fields {
            s.push(' ');
            s.push_str(k);
            s.push('=');
            s.push_str(&quote(v));
        }
        s
    }

    /// One JSON object: `ts`, `level`, `service`, `pod` (if any), `event`, `msg`, then the fields.
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
            obj.entry(k.clone()).or_insert_with(|| v.clone().into());
        }
        serde_json::Value::Object(obj).to_string()
    }

    /// Loki-style stream labels: `namespace`, `service`, and `pod` when one pod wrote the line.
    pub fn stream_labels(&self) -> BTreeMap<String, String> {
        let mut l = BTreeMap::new();
        l.insert("namespace".to_string(), "prod".to_string());
        l.insert("service".to_string(), self.service.clone());
        if let Some(p) = &self.pod {
            l.insert("pod".to_string(), p.clone());
        }
        l
    }
}

fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@+".contains(c))
    {
        s.to_string()
    } else {
        let mut out = String::with_capacity(s.len() + 2);
        out.push('"');
        for c in s.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }
}

/// (year, month, day, hour, minute, second, millisecond), UTC, of unix milliseconds (civil-from-days; no
/// calendar crate needed).
fn civil(t_ms: i64) -> [i64; 7] {
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
    [y, m, d, sod / 3600, sod % 3600 / 60, sod % 60, ms]
}

/// [`rfc3339_ms`] through `format!`: the reference, and the form for years outside 0..=9999.
fn rfc3339_formatted([y, m, d, hh, mm, ss, ms]: [i64; 7]) -> String {
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{ms:03}Z")
}

/// RFC 3339 with milliseconds, UTC, from unix milliseconds.
pub fn rfc3339_ms(t_ms: i64) -> String {
    let parts = civil(t_ms);
    if !(0..=9999).contains(&parts[0]) {
        return rfc3339_formatted(parts);
    }
    // Every log line and alert carries one of these; the digits written by hand cost a fraction of
    // `format!`'s seven padded integers (a test compares the two over a wide range of times).
    let mut out = [0u8; 24];
    for (&v, (at, width)) in
        parts
            .iter()
            .zip([(0, 4), (5, 2), (8, 2), (11, 2), (14, 2), (17, 2), (20, 3)])
    {
        let mut v = v;
        for i in (at..at + width).rev() {
            out[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    }
    for (at, c) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (23, b'Z'),
    ] {
        out[at] = c;
    }
    out.iter().map(|&b| b as char).collect()
}

/// RFC 3339 to the second, UTC, from unix seconds (`2026-03-02T07:00:00Z`), as Go prints times in errors.
pub fn rfc3339_s(t_s: i64) -> String {
    let full = rfc3339_ms(t_s.saturating_mul(1000));
    format!("{}Z", &full[..19])
}

/// How logs are rendered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogOptions {
    /// Background lines and everyday warnings, as a multiple of the normal rate (0 for none).
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

/// Most request-failure lines one service writes per tick (services sample their error logs too).
pub const MAX_FAILURE_LINES_PER_TICK: f64 = 8.0;
/// Most background lines one service writes per tick.
const MAX_BACKGROUND_LINES_PER_TICK: f64 = 10.0;
/// Background lines rendered per line/s a replica writes at `info` (the rest is too dull to render).
const BACKGROUND_SCALE: f64 = 0.01;
/// Everyday warnings per service per tick, at noise 1.
const DISTRACTOR_RATE: f64 = 0.06;

fn fields(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect()
}

/// Renders the logs of every service in `[start_ms, end_ms)` (unix ms), sorted by (time, service, order of
/// writing); at most `opts.max_records`, the newest kept.
pub fn render(world: &World, start_ms: i64, end_ms: i64, opts: &LogOptions) -> Vec<LogRecord> {
    render_scoped(world, None, start_ms, end_ms, opts)
}

/// Renders the logs of one service in `[start_ms, end_ms)` (unix ms): the lines of [`render`] whose `service`
/// is this one, in the same order, when [`render`] keeps every line (`opts.max_records` applies to this
/// service's lines here, not to every service's). Empty for a service the topology does not have.
///
/// Scoping changes no line: every draw is keyed by (seed, tick, service) or by the event, the pipeline's drops
/// are drawn from the writing service's own frame, and what a line reads of other services (a peer's name or
/// frame, the quota in use) is read, never drawn. The merge sort is stable and keyed by (time, service name),
/// and names are unique, so one service's lines keep their relative order.
pub fn render_service(
    world: &World,
    service: ServiceId,
    start_ms: i64,
    end_ms: i64,
    opts: &LogOptions,
) -> Vec<LogRecord> {
    if service.index() >= world.topology().len() {
        return Vec::new();
    }
    render_scoped(world, Some(service), start_ms, end_ms, opts)
}

/// What a reader asking for the newest lines of one service at `min_level` or above sees: of the lines
/// [`render_service`] gives for the same window and options, those at `min_level` or above, how many there are
/// and the newest `limit` of them, oldest first.
///
/// The same as filtering [`render_service`], only cheaper: each tick's lines are first drawn without their text
/// (the same draws, so the same lines, times and levels), and only the lines returned are drawn again with it,
/// their ticks' other lines again without. A window holds many lines, and most are only ever counted.
pub fn newest_of_service(
    world: &World,
    service: ServiceId,
    start_ms: i64,
    end_ms: i64,
    opts: &LogOptions,
    min_level: Level,
    limit: usize,
) -> (usize, Vec<LogRecord>) {
    if service.index() >= world.topology().len() || end_ms <= start_ms {
        return (0, Vec::new());
    }
    /// Where a line comes from: an event's line (by its index among them), or a tick's (by the order it was
    /// written in, among the lines of that tick, kept or not).
    enum Source {
        Event(usize),
        Tick(u64, usize),
    }
    let ctx = Ctx::new(world);
    let noise = noise_of(opts);
    let mut event_lines = Vec::new();
    events(&ctx, Some(service), start_ms, end_ms, &mut event_lines);
    // (time, level, source) of every line, in the order `render_scoped` pushes them: events, then ticks.
    let mut lines: Vec<(i64, Level, Source)> = event_lines
        .iter()
        .enumerate()
        .map(|(k, r)| (r.t_ms, r.level, Source::Event(k)))
        .collect();
    for (t, frames) in ticks_between(&ctx, start_ms, end_ms) {
        let Some(f) = frames.get(service.index()) else {
            continue;
        };
        let mut emit = |g, r: LogRecord| lines.push((r.t_ms, r.level, Source::Tick(t, g)));
        service_tick(
            &ctx,
            t,
            service,
            f,
            start_ms,
            end_ms,
            noise,
            |_| false,
            &mut emit,
        );
    }
    // As `render_scoped` orders and caps them (one service: its stable sort is by time alone).
    lines.sort_by_key(|l| l.0);
    if lines.len() > opts.max_records {
        lines.drain(..lines.len() - opts.max_records);
    }
    lines.retain(|l| l.1 >= min_level);
    let matched = lines.len();
    let newest = lines.split_off(matched.saturating_sub(limit));

    // The lines returned, drawn again with text: per tick, which of its lines.
    let mut wanted: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (_, _, source) in &newest {
        if let Source::Tick(t, g) = *source {
            wanted.entry(t).or_default().push(g);
        }
    }
    let mut written: BTreeMap<(u64, usize), LogRecord> = BTreeMap::new();
    for (&t, gs) in &mut wanted {
        gs.sort_unstable();
        let Some(f) = world.history().get(t, service.index()) else {
            continue;
        };
        let want = |g: usize| gs.binary_search(&g).is_ok();
        let mut emit = |g, r| {
            if want(g) {
                written.insert((t, g), r);
            }
        };
        service_tick(
            &ctx, t, service, f, start_ms, end_ms, noise, want, &mut emit,
        );
    }
    let mut event_lines: Vec<Option<LogRecord>> = event_lines.into_iter().map(Some).collect();
    let mut out = Vec::with_capacity(newest.len());
    for (t_ms, level, source) in newest {
        let line = match source {
            Source::Event(k) => event_lines.get_mut(k).and_then(Option::take),
            Source::Tick(t, g) => written.remove(&(t, g)),
        };
        debug_assert!(
            line.as_ref()
                .is_some_and(|r| r.t_ms == t_ms && r.level == level),
            "a tick's lines drawn with text differ from those drawn without"
        );
        out.extend(line);
    }
    (matched, out)
}

/// [`render`] over every service, or over `only`.
fn render_scoped(
    world: &World,
    only: Option<ServiceId>,
    start_ms: i64,
    end_ms: i64,
    opts: &LogOptions,
) -> Vec<LogRecord> {
    if end_ms <= start_ms || world.topology().is_empty() {
        return Vec::new();
    }
    let ctx = Ctx::new(world);
    let mut out = Vec::new();
    events(&ctx, only, start_ms, end_ms, &mut out);
    per_tick(&ctx, only, start_ms, end_ms, opts, &mut out);
    // Stable: lines of the same instant and service keep the order they were written in.
    out.sort_by(|a, b| (a.t_ms, &a.service).cmp(&(b.t_ms, &b.service)));
    if out.len() > opts.max_records {
        out.drain(..out.len() - opts.max_records);
    }
    out
}

/// What rendering needs besides the world: pod names over time, and whether the line being drawn is written out.
struct Ctx<'a> {
    world: &'a World,
    pods: PodNames,
    tick_ms: i64,
    /// Whether the per-tick line being drawn gets its text (message and fields). Without it the line is drawn
    /// all the same, which is enough to know its time and level. Set by [`service_tick`] line by line.
    text: Cell<bool>,
    /// Per service, once looked up: the world ms of the last change to its `log.level` (`i64::MIN` if none) and
    /// the level set now. Every tick of every service reads its level, and most ticks began after that change.
    log_levels: RefCell<Vec<Option<LevelSince<'a>>>>,
}

/// A service's `log.level` now, and the world ms of its last change (`i64::MIN` if none).
type LevelSince<'a> = (i64, Option<&'a str>);

impl<'a> Ctx<'a> {
    fn new(world: &'a World) -> Ctx<'a> {
        Ctx {
            world,
            pods: PodNames::new(world),
            tick_ms: (world.tick_s() * 1000.0).round().max(1.0) as i64,
            text: Cell::new(true),
            log_levels: RefCell::new(Vec::new()),
        }
    }

    /// `log.level` of a service as [`Ctx::config_at`] reads it for the tick ending at `tick_world_ms`: the level set
    /// now for a tick that began after its last change, which the cache knows without walking the changes.
    fn log_level_at(&self, id: ServiceId, tick_world_ms: i64) -> Option<&'a str> {
        const KEY: &str = "log.level";
        let world = self.world;
        let mut levels = self.log_levels.borrow_mut();
        if levels.len() != world.topology().len() {
            levels.clear();
            levels.resize(world.topology().len(), None);
        }
        let Some(slot) = levels.get_mut(id.index()) else {
            return self.config_at(id, KEY, tick_world_ms);
        };
        let (last_change_ms, now) = *slot.get_or_insert_with(|| {
            let last = world
                .changes()
                .iter()
                .rev()
                .find(|c| {
                    c.service == id
                        && matches!(&c.kind, ChangeKind::Config { key, .. } if key == KEY)
                })
                .map_or(i64::MIN, |c| det::round_ms(c.t_s));
            (last, world.service(id).config.get(KEY).map(String::as_str))
        });
        // As `det::config_at` decides: a change at or before the tick's start is in effect during the tick.
        if last_change_ms <= tick_world_ms - det::tick_len_ms(world) {
            now
        } else {
            self.config_at(id, KEY, tick_world_ms)
        }
    }

    /// Sets field `key` when the line being drawn gets its text.
    fn put(&self, fields: &mut BTreeMap<String, String>, key: &str, value: impl Into<String>) {
        if self.text.get() {
            fields.insert(key.to_string(), value.into());
        }
    }

    /// `args` written out when the line being drawn gets its text, else an empty string (see [`text!`]).
    fn written(&self, args: std::fmt::Arguments<'_>) -> String {
        if self.text.get() {
            std::fmt::format(args)
        } else {
            String::new()
        }
    }

    fn name(&self, id: ServiceId) -> &'a str {
        self.world
            .topology()
            .services
            .get(id.index())
            .map(|s| s.spec.name.as_str())
            .unwrap_or("unknown")
    }

    fn spec(&self, id: ServiceId) -> &'a ServiceSpec {
        &self.world.topology().service(id).spec
    }

    /// The tick whose interval contains a world time (ms).
    fn tick_of(&self, world_ms: i64) -> u64 {
        ((world_ms + self.tick_ms - 1) / self.tick_ms).max(0) as u64
    }

    /// The frame of a service at the tick containing a world time, if held.
    fn frame_at(&self, id: ServiceId, world_ms: i64) -> Option<&'a ServiceFrame> {
        self.world.history().get(self.tick_of(world_ms), id.index())
    }

    /// A configuration value as it was in effect during the tick ending at `tick_world_ms`.
    fn config_at(&self, id: ServiceId, key: &str, tick_world_ms: i64) -> Option<&'a str> {
        det::config_at(self.world, id, key, tick_world_ms)
    }

    /// [`Ctx::config_at`] for a value only a line's text shows (no draw may depend on it): `None`, unread, when
    /// the line gets no text.
    fn text_config_at(&self, id: ServiceId, key: &str, tick_world_ms: i64) -> Option<&'a str> {
        if self.text.get() {
            self.config_at(id, key, tick_world_ms)
        } else {
            None
        }
    }
}

/// A stable pseudo cluster IP for a service (what a connection error shows).
fn cluster_ip(name: &str) -> ClusterIp {
    ClusterIp(name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    }))
}

/// A pseudo pod IP for a caller.
fn pod_ip(rng: &mut KeyedRng) -> PodIp {
    PodIp(rng.next_u64())
}

/// [`cluster_ip`]'s address, written out only where it is shown: the lines that show one are drawn without
/// text as often as with it (see [`text!`]), and their arguments are built either way.
struct ClusterIp(u64);

impl std::fmt::Display for ClusterIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let h = self.0;
        write!(f, "10.96.{}.{}", (h >> 8) % 250 + 1, h % 250 + 2)
    }
}

/// [`pod_ip`]'s address, written out only where it is shown (as [`ClusterIp`]).
struct PodIp(u64);

impl std::fmt::Display for PodIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let x = self.0;
        write!(f, "10.244.{}.{}", (x >> 8) % 32, x % 250 + 2)
    }
}

fn version_name(spec: &ServiceSpec, i: u32) -> String {
    spec.versions
        .get(i as usize)
        .map(|v| v.name.clone())
        .unwrap_or_else(|| "unknown".into())
}

/// Who writes a line, when it is not the application: it decides whether the log pipeline can drop it.
fn writer(kind: EventKind) -> &'static str {
    match kind {
        EventKind::OomKilled
        | EventKind::CrashLoopBackOff
        | EventKind::ContainerStarted
        | EventKind::ContainerReady
        | EventKind::ContainerExited
        | EventKind::PodTerminated => "kubelet",
        EventKind::FailedScheduling => "default-scheduler",
        EventKind::Autoscaled => "horizontal-pod-autoscaler",
        EventKind::RolloutStarted
        | EventKind::RolloutFinished
        | EventKind::Scaled
        | EventKind::LimitsChanged => "deployment-controller",
        EventKind::CertRenewed => "cert-manager",
        EventKind::CpuThrottled => "cadvisor",
        EventKind::DependencyDegraded => "statuspage",
        _ => "app",
    }
}

/// Lines of the world's events in the window (of `only`'s events, if given).
fn events(
    ctx: &Ctx<'_>,
    only: Option<ServiceId>,
    start_ms: i64,
    end_ms: i64,
    out: &mut Vec<LogRecord>,
) {
    let world = ctx.world;
    let topo = world.topology();
    for e in world.events().iter() {
        if only.is_some_and(|id| id.0 != e.service) {
            continue;
        }
        let t_ms = det::unix_ms(world, e.t_ms);
        if t_ms < start_ms || t_ms >= end_ms || e.service as usize >= topo.len() {
            continue;
        }
        let id = ServiceId(e.service);
        let source = writer(e.kind);
        if source == "app" {
            // Application lines go through the log pipeline, which may be dropping a share of them.
            let drop = ctx
                .frame_at(id, e.t_ms)
                .map(|f| f.log_drop_ratio)
                .unwrap_or(0.0) as f64;
            let u = det::key(
                world.seed(),
                Purpose::EventDrop,
                e.t_ms as u64,
                (e.service as u64) << 16 | (e.kind as u64) << 8 | e.replica as u64,
            ) >> 11;
            if (u as f64 / (1u64 << 53) as f64) < drop {
                continue;
            }
        }
        let Some((level, event, message, mut f)) = event_text(ctx, e) else {
            continue;
        };
        let pod = (e.replica != u8::MAX).then(|| ctx.pods.name(id, e.replica as usize, e.t_ms));
        f.insert("source".into(), source.into());
        out.push(LogRecord {
            t_ms,
            service: ctx.name(id).to_string(),
            pod,
            level,
            event,
            fields: f,
            message,
        });
    }
}

type Line = (Level, &'static str, String, BTreeMap<String, String>);

/// The text of one event, or `None` for what no real system would log.
fn event_text(ctx: &Ctx<'_>, e: &Event) -> Option<Line> {
    let world = ctx.world;
    let topo = world.topology();
    let id = ServiceId(e.service);
    let spec = ctx.spec(id);
    let name = spec.name.as_str();
    let peer = |i: u32| {
        ctx.name(ServiceId(i.min(u16::MAX as u32) as u16))
            .to_string()
    };
    let topic = |i: u32| {
        topo.topics
            .get(i as usize)
            .map(|t| t.name.clone())
            .unwrap_or_else(|| "unknown".into())
    };
    let line = match e.kind {
        EventKind::OomKilled => (
            Level::Error,
            "oom_killed",
            format!(
                "Container {name} in pod terminated: reason=OOMKilled exit_code=137; memory limit {:.0}Mi",
                e.b
            ),
            fields(&[
                ("restart_count", e.c.to_string()),
                ("reason", "OOMKilled".into()),
                ("exit_code", "137".into()),
                ("limit_mib", format!("{:.0}", e.b)),
            ]),
        ),
        EventKind::CrashLoopBackOff => (
            Level::Warn,
            "crash_loop_back_off",
            format!(
                "Back-off restarting failed container {name}: waiting {:.0}s before the next start",
                e.a
            ),
            fields(&[
                ("restart_count", e.c.to_string()),
                ("reason", "BackOff".into()),
            ]),
        ),
        EventKind::ContainerStarted => {
            let v = version_name(spec, e.c);
            (
                Level::Info,
                "container_started",
                format!("Started container {name} (image registry.internal/shop/{name}:{v})"),
                fields(&[("version", v)]),
            )
        }
        EventKind::ContainerReady => (
            Level::Info,
            "container_ready",
            format!("Readiness probe succeeded after {:.0}s; pod is ready", e.a),
            BTreeMap::new(),
        ),
        EventKind::ContainerExited => {
            let v = version_name(spec, e.c);
            (
                Level::Error,
                "container_exited",
                format!(
                    "Container {name} exited with code 1 {:.0}s after start (image registry.internal/shop/{name}:{v})",
                    spec.startup_s
                ),
                fields(&[("version", v), ("exit_code", "1".into())]),
            )
        }
        EventKind::PodTerminated => (
            Level::Info,
            "pod_terminated",
            format!("Stopping container {name}: sent SIGTERM, draining in-flight requests"),
            fields(&[("version", version_name(spec, e.c))]),
        ),
        EventKind::FailedScheduling => {
            let (used_cpu, used_mem) = quota_used_at(ctx, e.t_ms);
            let q = topo.cluster;
            (
                Level::Warn,
                "failed_scheduling",
                format!(
                    "pods \"{name}\" is forbidden: exceeded quota: compute-resources, requested: limits.cpu={:.0}m,limits.memory={:.0}Mi, used: limits.cpu={used_cpu}m,limits.memory={used_mem}Mi, limited: limits.cpu={}m,limits.memory={}Mi",
                    e.a, e.b, q.cpu_millis, q.memory_mb
                ),
                fields(&[("reason", "FailedCreate".into())]),
            )
        }
        EventKind::Autoscaled => (
            Level::Info,
            "autoscaled",
            format!(
                "New size: {:.0}; reason: cpu resource utilization (percentage of request) {} target (was {:.0} replicas)",
                e.b,
                if e.b > e.a { "above" } else { "below" },
                e.a
            ),
            fields(&[
                ("cpu_utilization_pct", e.c.to_string()),
                ("from", format!("{:.0}", e.a)),
                ("to", format!("{:.0}", e.b)),
            ]),
        ),
        EventKind::RolloutStarted => {
            let (from, to) = (
                version_name(spec, e.a as u32),
                version_name(spec, e.b as u32),
            );
            (
                Level::Info,
                "rollout_started",
                format!(
                    "Scaled up replica set for deployment {name}: rolling update from {from} to {to}"
                ),
                fields(&[("from_version", from), ("version", to)]),
            )
        }
        EventKind::RolloutFinished => {
            let v = version_name(spec, e.b as u32);
            (
                Level::Info,
                "rollout_finished",
                format!("deployment \"{name}\" successfully rolled out {v}"),
                fields(&[("version", v)]),
            )
        }
        EventKind::ConfigChanged => {
            let c = world.changes().get(e.c as usize)?;
            let ChangeKind::Config { key, old, new } = &c.kind else {
                return None;
            };
            (
                Level::Info,
                "config_reloaded",
                format!(
                    "configuration reloaded: {key} changed from {} to {new} (ConfigMap {name}-config updated by {})",
                    old.as_deref().unwrap_or("(unset)"),
                    c.actor.0
                ),
                fields(&[
                    ("key", key.clone()),
                    ("old", old.clone().unwrap_or_default()),
                    ("new", new.clone()),
                    ("actor", c.actor.0.clone()),
                ]),
            )
        }
        EventKind::FlagChanged => {
            let c = world.changes().get(e.c as usize)?;
            let ChangeKind::Flag { flag, enabled } = &c.kind else {
                return None;
            };
            let flag = spec
                .flags
                .get(*flag as usize)
                .map(|f| f.name.clone())
                .unwrap_or_else(|| "unknown".into());
            (
                Level::Info,
                "flag_changed",
                format!(
                    "feature flag {flag} {} (changed by {})",
                    if *enabled { "enabled" } else { "disabled" },
                    c.actor.0
                ),
                fields(&[
                    ("flag", flag.clone()),
                    ("enabled", enabled.to_string()),
                    ("actor", c.actor.0.clone()),
                ]),
            )
        }
        EventKind::Scaled => (
            Level::Info,
            "scaled",
            format!(
                "Scaled deployment {name} from {:.0} to {:.0} replicas",
                e.a, e.b
            ),
            fields(&[
                ("from", format!("{:.0}", e.a)),
                ("to", format!("{:.0}", e.b)),
            ]),
        ),
        EventKind::LimitsChanged => (
            Level::Info,
            "resources_changed",
            format!(
                "Pod template of deployment {name} updated: limits.memory={:.0}Mi limits.cpu={:.0}m",
                e.a, e.b
            ),
            fields(&[
                ("memory_mib", format!("{:.0}", e.a)),
                ("cpu_millis", format!("{:.0}", e.b)),
            ]),
        ),
        EventKind::PoolExhausted => (
            Level::Warn,
            "pool_exhausted",
            format!(
                "connection pool to {} exhausted: {:.0}/{:.0} connections in use, 0 idle, requests waiting",
                peer(e.c),
                e.a,
                e.b
            ),
            fields(&[
                ("pool", peer(e.c)),
                ("in_use", format!("{:.0}", e.a)),
                ("max", format!("{:.0}", e.b)),
            ]),
        ),
        EventKind::PoolTimeout => (
            Level::Error,
            "pool_timeout",
            format!(
                "connection is not available from pool {}: request timed out after {:.0}ms ({:.1} timeouts/s)",
                peer(e.c),
                e.b.max(1.0),
                e.a
            ),
            fields(&[("pool", peer(e.c)), ("wait_ms", format!("{:.0}", e.b))]),
        ),
        EventKind::DiskPressure => (
            Level::Warn,
            "disk_pressure",
            format!(
                "volume /data is {:.0}% full ({:.1}GiB of {:.1}GiB used)",
                100.0 * e.a / e.b.max(1e-9),
                e.a,
                e.b
            ),
            fields(&[
                ("mountpoint", "/data".into()),
                ("used_gib", format!("{:.1}", e.a)),
                ("size_gib", format!("{:.1}", e.b)),
            ]),
        ),
        EventKind::DiskFull => (
            Level::Error,
            "no_space_left",
            format!(
                "write /data failed: ENOSPC: no space left on device ({:.1}GiB of {:.1}GiB used)",
                e.a, e.b
            ),
            fields(&[
                ("mountpoint", "/data".into()),
                ("used_gib", format!("{:.1}", e.a)),
                ("size_gib", format!("{:.1}", e.b)),
            ]),
        ),
        EventKind::CertExpired => {
            let mut rng = det::rng_for(world, Purpose::EventDrop, e.t_ms as u64, e.service as u64);
            (
                Level::Error,
                "tls_handshake",
                format!(
                    "http: TLS handshake error from {}:{}: remote error: tls: bad certificate",
                    pod_ip(&mut rng),
                    32768 + rng.next_u64() % 28000
                ),
                BTreeMap::new(),
            )
        }
        EventKind::CertRenewed => (
            Level::Info,
            "certificate_issued",
            format!("cert-manager: certificate {name}-tls renewed; secret {name}-tls updated"),
            fields(&[("secret", format!("{name}-tls"))]),
        ),
        EventKind::LockWaits => {
            let mut rng = det::rng_for(world, Purpose::EventDrop, e.t_ms as u64, e.service as u64);
            let pid = 20_000 + rng.next_u64() % 40_000;
            let blocker = 20_000 + rng.next_u64() % 40_000;
            (
                Level::Warn,
                "lock_waits",
                format!(
                    "process {pid} still waiting for ShareLock on transaction {} after {:.1} ms; process holding the lock: {blocker} (application_name={})",
                    1_000_000 + rng.next_u64() % 9_000_000,
                    e.a,
                    peer(e.c)
                ),
                fields(&[
                    ("blocking_application", peer(e.c)),
                    ("wait_ms", format!("{:.0}", e.a)),
                ]),
            )
        }
        EventKind::QosIncompatible => (
            Level::Warn,
            "requested_incompatible_qos",
            format!(
                "subscription to {}: no matching publisher (requested incompatible QoS: reliability/durability offered by writers is weaker)",
                topic(e.c)
            ),
            fields(&[("topic", topic(e.c))]),
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
            fields(&[("topic", topic(e.c)), ("lag", format!("{:.0}", e.a))]),
        ),
        EventKind::QueueDrained => (
            Level::Info,
            "queue_purged",
            format!(
                "subscription to {} purged: {:.0} messages dropped",
                topic(e.c),
                e.a
            ),
            fields(&[("topic", topic(e.c))]),
        ),
        EventKind::TelemetryDropping => (
            Level::Warn,
            "buffer_full",
            format!(
                "[output:loki:loki.0] buffer full; dropping {:.0}% of records ({:.0} lines/s in)",
                100.0 * e.a,
                e.b
            ),
            fields(&[("drop_pct", format!("{:.0}", 100.0 * e.a))]),
        ),
        EventKind::RateLimited => (
            Level::Warn,
            "rate_limited",
            format!(
                "rate limiter rejecting requests: {:.0} req/s answered 429 ({:.0} req/s admitted)",
                e.a, e.b
            ),
            fields(&[
                ("rejected_rps", format!("{:.0}", e.a)),
                ("admitted_rps", format!("{:.0}", e.b)),
            ]),
        ),
        EventKind::CpuThrottled => {
            if e.a >= 0.95 {
                return None;
            }
            (
                Level::Warn,
                "cpu_throttled",
                format!(
                    "{:.0}% of CFS periods throttled for container {name}",
                    (100.0 * (1.0 - e.a)).clamp(5.0, 99.0)
                ),
                BTreeMap::new(),
            )
        }
        EventKind::DependencyDegraded => {
            if e.a < 0.05 {
                return None;
            }
            (
                Level::Warn,
                "upstream_status",
                format!("status.{name}: Investigating - elevated error rates on API requests"),
                BTreeMap::new(),
            )
        }
        // What no real system logs: an outside surge or a detached network shows only through its
        // consequences (more requests, connection errors at the callers).
        EventKind::TrafficShift | EventKind::NetworkDetached | EventKind::NetworkReattached => {
            return None;
        }
    };
    Some(line)
}

/// Quota in use at a world time, approximated from the frames: (CPU millicores, MiB) of scheduled pods.
fn quota_used_at(ctx: &Ctx<'_>, world_ms: i64) -> (u64, u64) {
    let Some(frames) = ctx.world.history().tick(ctx.tick_of(world_ms)) else {
        return ctx.world.quota_used();
    };
    frames.iter().fold((0, 0), |(c, m), f| {
        let pods = f.pods.saturating_sub(f.pending) as u64;
        (
            c + pods * (f.cpu_limit_cores as f64 * 1000.0).round() as u64,
            m + pods * f.memory_limit_mb.round() as u64,
        )
    })
}

/// The live replica slots of a frame.
fn live_slots(f: &ServiceFrame) -> Vec<usize> {
    f.replica_memory_mb
        .iter()
        .enumerate()
        .filter(|(_, m)| **m > 0.0)
        .map(|(i, _)| i)
        .collect()
}

fn log_level(v: Option<&str>) -> LogLevel {
    match v.map(str::trim) {
        Some("debug") => LogLevel::Debug,
        Some("warn") => LogLevel::Warn,
        Some("error") => LogLevel::Error,
        _ => LogLevel::Info,
    }
}

/// Whether a line of `level` passes a service configured at `min`.
fn passes(level: Level, min: LogLevel) -> bool {
    let rank = match min {
        LogLevel::Debug => 0,
        LogLevel::Info => 1,
        LogLevel::Warn => 2,
        LogLevel::Error => 3,
    };
    level as u8 >= rank
}

/// Lines derived from each tick's state: request failures by cause, background lines and everyday warnings (of
/// `only`, if given).
fn per_tick(
    ctx: &Ctx<'_>,
    only: Option<ServiceId>,
    start_ms: i64,
    end_ms: i64,
    opts: &LogOptions,
    out: &mut Vec<LogRecord>,
) {
    let noise = noise_of(opts);
    for (t, frames) in ticks_between(ctx, start_ms, end_ms) {
        // Each service's lines of a tick come from its own generator, keyed by (tick, service): skipping the
        // others draws nothing they would have drawn.
        let (skip, take) = match only {
            Some(id) => (id.index(), 1),
            None => (0, frames.len()),
        };
        for (i, f) in frames.iter().enumerate().skip(skip).take(take) {
            let mut emit = |_, r| out.push(r);
            service_tick(
                ctx,
                t,
                ServiceId(i as u16),
                f,
                start_ms,
                end_ms,
                noise,
                |_| true,
                &mut emit,
            );
        }
    }
}

/// The background noise factor of `opts`, made safe.
fn noise_of(opts: &LogOptions) -> f64 {
    if opts.noise.is_finite() {
        opts.noise.max(0.0)
    } else {
        0.0
    }
}

/// The held ticks whose lines can fall in `[start_ms, end_ms)` (unix ms), oldest first, with their frames.
fn ticks_between<'a>(
    ctx: &Ctx<'a>,
    start_ms: i64,
    end_ms: i64,
) -> impl Iterator<Item = (u64, &'a [ServiceFrame])> {
    let world = ctx.world;
    let ring = world.history();
    let tick_ms = ctx.tick_ms;
    (ring.first_tick()..ring.end_tick()).filter_map(move |t| {
        let end = det::tick_end_ms(world, t);
        let begin = end - tick_ms;
        if end <= start_ms || begin >= end_ms {
            return None;
        }
        ring.tick(t).map(|frames| (t, frames))
    })
}

/// The lines service `id` (whose frame at tick `t` is `f`) writes during tick `t` that fall in
/// `[start_ms, end_ms)`, handed to `emit` in the order they were written, each with its place in that order
/// (counting the lines the pipeline dropped or the window leaves out). Only lines `text` picks (by that place)
/// get their text; the others come out the same, with the same times and levels, but with no message, fields,
/// pod or service.
#[allow(clippy::too_many_arguments)]
fn service_tick(
    ctx: &Ctx<'_>,
    t: u64,
    id: ServiceId,
    f: &ServiceFrame,
    start_ms: i64,
    end_ms: i64,
    noise: f64,
    text: impl Fn(usize) -> bool,
    emit: &mut impl FnMut(usize, LogRecord),
) {
    let world = ctx.world;
    let dt = world.tick_s();
    let begin = det::tick_end_ms(world, t) - ctx.tick_ms;
    let tick_world_ms = det::tick_world_ms(world, t);
    let i = id.index();
    let spec = &world.topology().services[i].spec;
    if spec.kind == ServiceKind::External {
        // A third party's logs are not ours to read.
        return;
    }
    let mut rng = det::rng_for(world, Purpose::TickLogs, t, i as u64);
    let keep = (1.0 - f.log_drop_ratio as f64).clamp(0.0, 1.0);
    let slots = live_slots(f);
    let level_cfg = log_level(ctx.log_level_at(id, tick_world_ms));
    let mut lines: Vec<Line> = Vec::new();

    // Request failures, a handful per tick at most.
    let failing = if f.err_cause == ErrorCause::RateLimited {
        f.error_rps + f.rejected_rps
    } else {
        f.error_rps
    } as f64;
    let n = stochastic_round(&mut rng, (failing * dt).min(MAX_FAILURE_LINES_PER_TICK));
    for _ in 0..n {
        ctx.text.set(text(lines.len()));
        lines.push(failure_line(ctx, &mut rng, id, f, t, tick_world_ms));
    }
    // Background lines, in proportion to what the service writes at its configured level.
    let volume = spec.log_lines_per_s * f.ready as f64 * level_cfg.volume_factor();
    let n = stochastic_round(
        &mut rng,
        (volume * BACKGROUND_SCALE * dt * noise).min(MAX_BACKGROUND_LINES_PER_TICK),
    );
    for _ in 0..n {
        ctx.text.set(text(lines.len()));
        let line = background(ctx, &mut rng, id, f, level_cfg);
        if passes(line.0, level_cfg) {
            lines.push(line);
        }
    }
    // Warnings that healthy systems write all the time.
    if f.ready > 0 && unit(&mut rng) < DISTRACTOR_RATE * noise {
        ctx.text.set(text(lines.len()));
        let line = distractor(ctx, &mut rng, id, f);
        if passes(line.0, level_cfg) {
            lines.push(line);
        }
    }

    for (g, (level, event, message, fl)) in lines.into_iter().enumerate() {
        let dropped = unit(&mut rng) >= keep;
        let at = begin + (unit(&mut rng) * ctx.tick_ms as f64) as i64 + 1;
        let slot = slots
            .get(((unit(&mut rng) * slots.len() as f64) as usize).min(slots.len().max(1) - 1))
            .copied();
        if dropped || at < start_ms || at >= end_ms {
            continue;
        }
        // With no container running, only the proxy in front of the service can answer (and log).
        let written = text(g);
        let pod = slot
            .filter(|_| written)
            .map(|s| ctx.pods.name(id, s, tick_world_ms));
        emit(
            g,
            LogRecord {
                t_ms: at,
                service: if written {
                    spec.name.clone()
                } else {
                    String::new()
                },
                pod,
                level,
                event,
                fields: fl,
                message,
            },
        );
    }
}

const ROUTES: &[&str] = &[
    "/api/v1/items",
    "/api/v1/orders",
    "/api/v1/session",
    "/api/v1/cart",
    "/api/v1/checkout",
    "/api/v1/users/me",
];

fn route(rng: &mut KeyedRng) -> (&'static str, &'static str) {
    (
        pick(rng, &["GET", "GET", "GET", "POST", "PUT"]),
        pick(rng, ROUTES),
    )
}

/// A latency draw from a frame's log-normal distribution, in ms.
fn latency_draw(rng: &mut KeyedRng, f: &ServiceFrame) -> f64 {
    f.latency_median_ms.max(0.1) as f64 * (f.latency_sigma.max(0.05) as f64 * normal(rng)).exp()
}

/// The out-edge of `from` to `to`, if any.
fn edge_to(world: &World, from: ServiceId, to: u16) -> Option<&Edge> {
    let topo = world.topology();
    topo.services[from.index()]
        .out_edges
        .iter()
        .map(|&e| &topo.edges[e])
        .find(|e| e.to.0 == to)
}

/// One request-failure line, worded after the tick's cause and dependency.
fn failure_line(
    ctx: &Ctx<'_>,
    rng: &mut KeyedRng,
    id: ServiceId,
    f: &ServiceFrame,
    tick: u64,
    tick_world_ms: i64,
) -> Line {
    let world = ctx.world;
    let topo = world.topology();
    let dep = ServiceId(f.err_dep);
    let has_dep = (f.err_dep as usize) < topo.len();
    let peer = if has_dep { ctx.name(dep) } else { "upstream" };
    let edge = edge_to(world, id, f.err_dep);
    let timeout = ctx
        .text_config_at(id, "http.client.timeout_ms", tick_world_ms)
        .and_then(|v| v.parse::<f64>().ok())
        .or(edge.map(|e| e.timeout_ms))
        .unwrap_or(1000.0);
    let (method, path) = route(rng);
    let mut fl = BTreeMap::new();
    ctx.put(&mut fl, "method", method);
    ctx.put(&mut fl, "path", path);
    if has_dep {
        ctx.put(&mut fl, "peer", peer);
    }
    let peer_kind = has_dep.then(|| topo.service(dep).kind());
    let (level, event, message, status) = match f.err_cause {
        ErrorCause::None | ErrorCause::Internal => {
            let spec = ctx.spec(id);
            let msg = if spec.kind == ServiceKind::Database {
                text!(
                    ctx,
                    "ERROR: could not serialize access due to concurrent update (SQLSTATE 40001) in statement {}",
                    pick(
                        rng,
                        &["UPDATE orders", "UPDATE stock", "INSERT INTO payments"]
                    )
                )
            } else {
                text!(
                    ctx,
                    "unhandled error handling {method} {path}: {}",
                    exception(rng, &spec.name)
                )
            };
            (Level::Error, "request_failed", msg, "500")
        }
        ErrorCause::Overload => (
            Level::Warn,
            "request_timeout",
            text!(
                ctx,
                "{method} {path}: request timed out after {:.0}ms waiting for a free worker ({} in flight)",
                latency_draw(rng, f).max(1000.0),
                64 + rng.next_u64() % 64
            ),
            "504",
        ),
        ErrorCause::Unavailable => (
            Level::Error,
            "no_healthy_upstream",
            text!(
                ctx,
                "upstream connect error or disconnect/reset before headers: no healthy upstream for {}",
                ctx.name(id)
            ),
            "503",
        ),
        ErrorCause::UpstreamTimeout => {
            let msg = match peer_kind {
                Some(ServiceKind::Database) => text!(
                    ctx,
                    "query to {peer} failed: context deadline exceeded after {timeout:.0}ms"
                ),
                _ => text!(
                    ctx,
                    "upstream request timeout after {timeout:.0}ms calling {peer}"
                ),
            };
            ctx.put(&mut fl, "timeout_ms", text!(ctx, "{timeout:.0}"));
            (Level::Error, "upstream_timeout", msg, "504")
        }
        ErrorCause::UpstreamError => {
            let dep_frame = has_dep
                .then(|| world.history().get(tick, dep.index()))
                .flatten();
            let code = dep_frame.map(|d| code_of(d.err_cause)).unwrap_or("500");
            let msg = match peer_kind {
                Some(ServiceKind::Database) => {
                    let lock = dep_frame.is_some_and(|d| d.err_cause == ErrorCause::LockTimeout);
                    if lock {
                        text!(
                            ctx,
                            "query to {peer} failed: ERROR: canceling statement due to lock timeout (SQLSTATE 55P03)"
                        )
                    } else {
                        text!(
                            ctx,
                            "query to {peer} failed: ERROR: {} (SQLSTATE 40001)",
                            "could not serialize access due to concurrent update"
                        )
                    }
                }
                Some(ServiceKind::Cache) => {
                    text!(ctx, "call to {peer} failed: redis: connection pool timeout")
                }
                Some(ServiceKind::External) => text!(
                    ctx,
                    "POST https://{peer}/v1/charges failed: upstream returned {code} {}",
                    status_text(code)
                ),
                _ => text!(
                    ctx,
                    "call to {peer} failed: upstream returned {code} {}",
                    status_text(code)
                ),
            };
            ctx.put(&mut fl, "upstream_status", code);
            (Level::Error, "upstream_error", msg, "502")
        }
        ErrorCause::PoolTimeout => {
            let size = ctx
                .text_config_at(id, "db.pool.max_size", tick_world_ms)
                .and_then(|v| v.parse::<u32>().ok())
                .or(edge.and_then(|e| e.pool))
                .unwrap_or(0);
            ctx.put(&mut fl, "pool", peer);
            (
                Level::Error,
                "pool_timeout",
                text!(
                    ctx,
                    "could not acquire connection from pool {peer} within {timeout:.0}ms (pool {size}/{size} in use)"
                ),
                "504",
            )
        }
        ErrorCause::DiskFull => (
            Level::Error,
            "no_space_left",
            text!(
                ctx,
                "ENOSPC: no space left on device writing /data/{}/{:08x}.tmp",
                pick(rng, &["spool", "uploads", "journal", "tmp"]),
                rng.next_u64() as u32
            ),
            "500",
        ),
        ErrorCause::TlsHandshake => {
            let now = det::unix_ms(world, tick_world_ms) / 1000;
            let not_after = world
                .history()
                .get(tick, dep.index())
                .filter(|_| has_dep)
                .map(|d| d.cert_expires_in_s)
                .filter(|x| x.is_finite())
                .map(|left| now + left.round() as i64);
            // Only the text shows the dates (and writing them is not cheap).
            let when = match not_after.filter(|&na| na <= now && ctx.text.get()) {
                Some(na) => format!(
                    ": current time {} is after {}",
                    rfc3339_s(now),
                    rfc3339_s(na)
                ),
                None => String::new(),
            };
            (
                Level::Error,
                "tls_handshake",
                text!(
                    ctx,
                    "Post \"https://{peer}.prod.svc.cluster.local/\": tls: failed to verify certificate: x509: certificate has expired or is not yet valid{when}"
                ),
                "502",
            )
        }
        ErrorCause::DnsResolution => {
            let resolver = ctx
                .text_config_at(id, "dns.resolver", tick_world_ms)
                .unwrap_or(CLUSTER_RESOLVER);
            let resolver = if resolver.contains(':') {
                resolver.to_string()
            } else {
                text!(ctx, "{resolver}:53")
            };
            let src = pod_ip(rng);
            let port = 32768 + rng.next_u64() % 28000;
            ctx.put(&mut fl, "resolver", resolver.as_str());
            (
                Level::Error,
                "dns_resolution",
                text!(
                    ctx,
                    "dial tcp: lookup {peer}.prod.svc.cluster.local on {resolver}: read udp {src}:{port}->{resolver}: i/o timeout"
                ),
                "502",
            )
        }
        ErrorCause::Unreachable => (
            Level::Error,
            "connect_timeout",
            text!(
                ctx,
                "dial tcp {}:8080: connect: connection timed out (calling {peer})",
                cluster_ip(peer)
            ),
            "504",
        ),
        ErrorCause::LockTimeout => (
            Level::Error,
            "lock_timeout",
            text!(
                ctx,
                "ERROR: canceling statement due to lock timeout (SQLSTATE 55P03)"
            ),
            "500",
        ),
        ErrorCause::RateLimited => {
            let per_replica = ctx
                .text_config_at(id, "rate_limit.rps_per_replica", tick_world_ms)
                .and_then(|v| v.parse::<f64>().ok())
                .or(ctx.spec(id).rate_limit.map(|r| r.rps_per_replica))
                .unwrap_or(0.0);
            (
                Level::Warn,
                "rate_limited",
                text!(
                    ctx,
                    "429 Too Many Requests: rate limit of {per_replica:.0} rps per replica exceeded ({method} {path} from {})",
                    pod_ip(rng)
                ),
                "429",
            )
        }
    };
    ctx.put(&mut fl, "status", status);
    (level, event, message, fl)
}

fn status_text(code: &str) -> &'static str {
    match code {
        "429" => "Too Many Requests",
        "503" => "Service Unavailable",
        "504" => "Gateway Timeout",
        _ => "Internal Server Error",
    }
}

/// An exception in the runtime a service is written in (stable per service).
fn exception(rng: &mut KeyedRng, service: &str) -> &'static str {
    let lang = service
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32))
        % 3;
    match lang {
        0 => pick(
            rng,
            &[
                "panic: runtime error: invalid memory address or nil pointer dereference",
                "panic: runtime error: index out of range [3] with length 3",
                "json: cannot unmarshal string into Go struct field .quantity of type int",
            ],
        ),
        1 => pick(
            rng,
            &[
                "java.lang.NullPointerException: Cannot invoke \"String.length()\" because \"sku\" is null",
                "java.lang.IllegalStateException: Duplicate key 4411",
                "com.fasterxml.jackson.databind.exc.MismatchedInputException: Cannot deserialize value of type `int`",
            ],
        ),
        _ => pick(
            rng,
            &[
                "TypeError: Cannot read properties of undefined (reading 'id')",
                "RangeError: Invalid array length",
                "SyntaxError: Unexpected token < in JSON at position 0",
            ],
        ),
    }
}

/// An ordinary line a service writes when nothing in particular happens.
fn background(
    ctx: &Ctx<'_>,
    rng: &mut KeyedRng,
    id: ServiceId,
    f: &ServiceFrame,
    level_cfg: LogLevel,
) -> Line {
    let spec = ctx.spec(id);
    let world = ctx.world;
    let topo = world.topology();
    let heap = f.memory_mb_max() * (0.55 + 0.2 * unit(rng));
    match spec.kind {
        ServiceKind::Database => match (unit(rng) * 3.0) as u32 {
            0 => (
                Level::Info,
                "checkpoint",
                text!(
                    ctx,
                    "checkpoint complete: wrote {} buffers ({:.1}%); 0 WAL file(s) added, 0 removed, {} recycled; write={:.3} s",
                    200 + rng.next_u64() % 3000,
                    0.5 + 3.0 * unit(rng),
                    rng.next_u64() % 4,
                    5.0 + 25.0 * unit(rng)
                ),
                BTreeMap::new(),
            ),
            1 => (
                Level::Info,
                "autovacuum",
                text!(
                    ctx,
                    "automatic vacuum of table \"shop.public.{}\": index scans: 1, pages: 0 removed, {} remain",
                    pick(
                        rng,
                        &["orders", "order_items", "users", "sessions", "stock"]
                    ),
                    1000 + rng.next_u64() % 90_000
                ),
                BTreeMap::new(),
            ),
            _ => {
                let clients: Vec<&str> = topo.services[id.index()]
                    .in_edges
                    .iter()
                    .map(|&e| topo.service(topo.edges[e].from).name())
                    .collect();
                let app = if clients.is_empty() {
                    "psql"
                } else {
                    pick(rng, &clients)
                };
                (
                    Level::Info,
                    "connection_authorized",
                    text!(
                        ctx,
                        "connection authorized: user=app database=shop application_name={app}"
                    ),
                    BTreeMap::new(),
                )
            }
        },
        ServiceKind::Cache => (
            Level::Info,
            "cache_stats",
            text!(
                ctx,
                "keyspace_hits_ratio={:.3} used_memory={:.0}mb connected_clients={}",
                f.cache_hit_ratio,
                f.memory_mb_max(),
                8 + rng.next_u64() % 40
            ),
            BTreeMap::new(),
        ),
        ServiceKind::Observability => (
            Level::Info,
            "flush",
            text!(
                ctx,
                "[output:loki:loki.0] flushed {} records ({:.0} lines/s in)",
                (f.offered_rps as f64 * world.tick_s() * (0.8 + 0.4 * unit(rng))) as u64,
                f.offered_rps
            ),
            BTreeMap::new(),
        ),
        ServiceKind::Worker if !spec.subscribes.is_empty() && f.consumed_hz > 0.0 => {
            let sub = &spec.subscribes
                [(unit(rng) * spec.subscribes.len() as f64) as usize % spec.subscribes.len()];
            (
                Level::Info,
                "batch_processed",
                text!(
                    ctx,
                    "processed {} messages from {} in {:.0}ms",
                    (f.consumed_hz as f64 * (0.5 + unit(rng))).round().max(1.0),
                    sub.topic,
                    latency_draw(rng, f) * 10.0
                ),
                BTreeMap::new(),
            )
        }
        _ => {
            let pooled = topo.services[id.index()]
                .out_edges
                .iter()
                .map(|&e| &topo.edges[e])
                .find(|e| e.pool.is_some());
            let choice = (unit(rng) * 6.0) as u32;
            if level_cfg == LogLevel::Debug && choice < 2 {
                let (method, path) = route(rng);
                return (
                    Level::Debug,
                    "request_trace",
                    text!(
                        ctx,
                        "request headers parsed for {method} {path}: accept=application/json x-request-id={:016x}",
                        rng.next_u64()
                    ),
                    BTreeMap::new(),
                );
            }
            match choice {
                0 | 1 => {
                    let (method, path) = route(rng);
                    let ms = latency_draw(rng, f);
                    (
                        Level::Info,
                        "request",
                        text!(ctx, "{method} {path} 200 {ms:.0}ms"),
                        if ctx.text.get() {
                            fields(&[
                                ("method", method.into()),
                                ("path", path.into()),
                                ("status", "200".into()),
                                ("duration_ms", format!("{ms:.0}")),
                            ])
                        } else {
                            BTreeMap::new()
                        },
                    )
                }
                2 => (
                    Level::Debug,
                    "health_check",
                    text!(ctx, "GET /healthz 200 1ms"),
                    BTreeMap::new(),
                ),
                3 => (
                    Level::Info,
                    "gc_pause",
                    text!(
                        ctx,
                        "GC pause {:.1}ms, heap {heap:.0}Mi after collection",
                        2.0 + 20.0 * unit(rng)
                    ),
                    BTreeMap::new(),
                ),
                4 if pooled.is_some() && f.pool_max > 0.0 => {
                    let e = pooled.expect("checked");
                    (
                        Level::Info,
                        "pool_stats",
                        text!(
                            ctx,
                            "pool {} stats (total={:.0}, active={:.0}, idle={:.0}, waiting={})",
                            topo.service(e.to).name(),
                            f.pool_max,
                            f.pool_in_use.round(),
                            (f.pool_max - f.pool_in_use).max(0.0).round(),
                            (f.pool_wait_ms > 50.0) as u32 * (1 + rng.next_u64() % 20) as u32
                        ),
                        BTreeMap::new(),
                    )
                }
                _ => (
                    Level::Info,
                    "stats",
                    text!(
                        ctx,
                        "served {:.1} req/s, p50 {:.0}ms over the last {:.0}s",
                        f.admitted_rps,
                        f.latency_median_ms,
                        world.tick_s()
                    ),
                    BTreeMap::new(),
                ),
            }
        }
    }
}

/// Warnings that healthy systems write all the time.
fn distractor(ctx: &Ctx<'_>, rng: &mut KeyedRng, id: ServiceId, f: &ServiceFrame) -> Line {
    let topo = ctx.world.topology();
    let other = topo.services[(unit(rng) * topo.len() as f64) as usize % topo.len()]
        .spec
        .name
        .as_str();
    let me = ctx.name(id);
    match ctx.spec(id).kind {
        ServiceKind::Database => {
            return (
                Level::Warn,
                "checkpoint_frequency",
                text!(
                    ctx,
                    "checkpoints are occurring too frequently ({} seconds apart)",
                    20 + rng.next_u64() % 9
                ),
                BTreeMap::new(),
            );
        }
        ServiceKind::Cache => {
            return (
                Level::Warn,
                "slowlog",
                text!(
                    ctx,
                    "slowlog: command KEYS session:* took {:.0}ms",
                    12.0 + 40.0 * unit(rng)
                ),
                BTreeMap::new(),
            );
        }
        ServiceKind::Observability => {
            return (
                Level::Warn,
                "flush_retry",
                text!(
                    ctx,
                    "[output:loki:loki.0] chunk flush failed (HTTP 429 from loki), retrying in {}s",
                    1 + rng.next_u64() % 8
                ),
                BTreeMap::new(),
            );
        }
        _ => {}
    }
    let (level, event, message) = match (unit(rng) * 8.0) as u32 {
        0 => (
            Level::Warn,
            "deprecated_api",
            text!(
                ctx,
                "client {other} called deprecated endpoint /api/v0/lookup; it will be removed in the next major version"
            ),
        ),
        1 => (
            Level::Warn,
            "slow_gc",
            text!(
                ctx,
                "GC pause {:.0}ms exceeded the 200ms target (heap {:.0}Mi)",
                200.0 + 300.0 * unit(rng),
                f.memory_mb_max() * 0.6
            ),
        ),
        2 => (
            Level::Warn,
            "metrics_push_retry",
            text!(
                ctx,
                "retrying metrics push to collector: context deadline exceeded (attempt 2 of 5)"
            ),
        ),
        3 => (
            Level::Warn,
            "tls_session",
            text!(
                ctx,
                "TLS session resumption failed with {other}; falling back to a full handshake"
            ),
        ),
        4 => (
            Level::Warn,
            "slow_request",
            text!(
                ctx,
                "slow request: GET /api/v1/report took {:.0}ms",
                900.0 + 1500.0 * unit(rng)
            ),
        ),
        5 => (
            Level::Info,
            "config_reload",
            text!(ctx, "config reload requested for {me}; no changes detected"),
        ),
        6 => (
            Level::Warn,
            "client_disconnect",
            text!(
                ctx,
                "client closed connection before the response was written (POST /api/v1/cart, {} bytes sent)",
                rng.next_u64() % 4096
            ),
        ),
        _ => (
            Level::Error,
            "request_failed",
            text!(
                ctx,
                "validation failed for POST /api/v1/cart: field \"quantity\" must be positive (got -{})",
                1 + rng.next_u64() % 3
            ),
        ),
    };
    (level, event, message, BTreeMap::new())
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
    /// Type (`deploy`, `rollback`, `config`, `feature_flag`, `scale`, `resources`, `restart`, `network`,
    /// `queue_drain`).
    pub kind: &'static str,
    /// What changed, in words, with version names, keys and values.
    pub summary: String,
}

/// A change in words: `deployed order-service from v2.3.1 to v2.4.0`, `set dns.resolver on ...: a -> b`.
pub fn change_summary(world: &World, c: &ChangeRecord) -> String {
    let spec = &world.topology().service(c.service).spec;
    let version = |i: u8| {
        spec.versions
            .get(i as usize)
            .map(|v| v.name.as_str())
            .unwrap_or("?")
    };
    match &c.kind {
        ChangeKind::Deploy { from, to, rollback } => format!(
            "{} {} from {} to {}",
            if *rollback { "rolled back" } else { "deployed" },
            spec.name,
            version(*from),
            version(*to)
        ),
        ChangeKind::Config { key, old, new } => format!(
            "set {key} on {}: {} -> {new}",
            spec.name,
            old.as_deref().unwrap_or("(unset)")
        ),
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
            t_ms: det::unix_ms(world, (c.t_s * 1000.0).round() as i64),
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

    /// `Ctx::log_level_at` reads, at every held tick of every service, what `det::config_at` reads, in a world
    /// whose levels change before, between and at the ticks (several changes per tick, other keys and services
    /// changed in between), asked for ticks in any order.
    #[test]
    fn the_log_level_of_a_tick_is_the_one_config_at_reads() {
        use firedrill_world::{Actor, Operation};
        let spec: firedrill_world::spec::TopologySpec = serde_json::from_value(serde_json::json!({
            "tick_s": 15,
            "cluster": { "cpu_millis": 8000, "memory_mb": 8192 },
            "entrypoints": [{ "service": "web", "rps": 10 }],
            "services": [
                { "name": "web", "kind": "edge", "version": "v1", "versions": [{ "name": "v1" }],
                  "calls": [{ "to": "api", "per_request": 1, "timeout_ms": 1000 }],
                  "config": { "log.level": "info" } },
                { "name": "api", "kind": "service", "version": "v1", "versions": [{ "name": "v1" }] }
            ]
        }))
        .expect("spec");
        let topology =
            firedrill_world::Topology::compile(&spec, &firedrill_world::topology::SpecPath::root())
                .expect("topology");
        let mut world = World::new(
            std::sync::Arc::new(topology),
            3,
            firedrill_world::WorldOptions::default(),
        );
        let set = |w: &mut World, service: u16, key: &str, value: &str| {
            w.apply(
                &Operation::SetConfig {
                    service: ServiceId(service),
                    key: key.into(),
                    value: value.into(),
                },
                &Actor::oncall(),
            )
            .expect("config");
        };
        world.run(3);
        set(&mut world, 0, "log.level", "debug");
        world.run(2);
        set(&mut world, 1, "log.level", "warn");
        set(&mut world, 0, "log.level", "error");
        set(&mut world, 0, "http.client.retries", "1");
        world.run(1);
        set(&mut world, 0, "log.level", "info");
        world.run(4);
        set(&mut world, 1, "log.level", "debug");
        let ring = world.history();
        let mut ticks: Vec<u64> = (ring.first_tick()..ring.end_tick()).collect();
        // Newest first, then oldest first, with a fresh cache each time.
        ticks.reverse();
        for order in 0..2 {
            if order == 1 {
                ticks.reverse();
            }
            let ctx = Ctx::new(&world);
            for &t in &ticks {
                for s in 0..2u16 {
                    let at = det::tick_world_ms(&world, t);
                    assert_eq!(
                        ctx.log_level_at(ServiceId(s), at),
                        det::config_at(&world, ServiceId(s), "log.level", at),
                        "service {s} tick {t}"
                    );
                }
            }
        }
    }

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        // The hand-written digits are `format!`'s, across centuries, leap days and both ends of the fast path.
        let formatted = |t_ms: i64| rfc3339_formatted(civil(t_ms));
        let mut t = -62_167_219_200_000i64 - 86_400_000; // the last day of year -1
        while t < 253_402_300_800_000 + 86_400_000 {
            // Steps of a prime number of ms, so every field takes many values.
            assert_eq!(rfc3339_ms(t), formatted(t), "{t}");
            t += 7_919_999_993;
        }
        for t in [
            -1,
            1,
            999,
            1_000,
            86_399_999,
            253_402_300_799_999,
            253_402_300_800_000,
        ] {
            assert_eq!(rfc3339_ms(t), formatted(t), "{t}");
        }
        assert_eq!(rfc3339_ms(1_772_434_800_123), "2026-03-02T07:00:00.123Z");
        assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_ms(-1), "1969-12-31T23:59:59.999Z");
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
        let j: serde_json::Value = serde_json::from_str(&r.json()).expect("json");
        assert_eq!(j["msg"], "say \"hi\"");
        assert_eq!(j["k"], "two words");
        assert_eq!(j["level"], "warn");
    }

    #[test]
    fn levels_filter_like_a_logger() {
        assert!(passes(Level::Error, LogLevel::Warn));
        assert!(passes(Level::Warn, LogLevel::Warn));
        assert!(!passes(Level::Info, LogLevel::Warn));
        assert!(!passes(Level::Debug, LogLevel::Info));
        assert!(passes(Level::Debug, LogLevel::Debug));
    }

    #[test]
    fn cluster_ips_are_stable() {
        assert_eq!(
            cluster_ip("order-service").to_string(),
            cluster_ip("order-service").to_string()
        );
        assert!(cluster_ip("x").to_string().starts_with("10.96."));
    }
}
