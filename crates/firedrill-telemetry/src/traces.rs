//! Traces generated on demand from a tick's frames.
//!
//! A few root requests per entry point per tick walk the call graph. Each instrumented service (edge, gateway,
//! service, worker) writes a server span; every call writes a client span, and calls to what we do not
//! instrument (databases, caches, third parties) are client spans only, as with real OpenTelemetry
//! instrumentation. Durations come from each service's log-normal latency at that tick. Failures are decided
//! top down from each service's error share and explained by the tick's `err_cause`/`err_dep`: a request that
//! failed because a pool was exhausted shows a client span to the database that waited out its timeout and
//! never reached it; one that failed on an expired certificate shows a 3 ms client span with `error.type=tls`.
//!
//! A trace id encodes its tick and index (masked so ids look random), so any trace can be regenerated from its
//! id alone in O(1).
//!
//! Each trace draws from its own generator, keyed by (tick, index). [`outlines_between`] walks the same way
//! without writing any text, which is enough to tell whether a trace went through a service and whether it
//! failed; [`build_traces`] then builds only the traces wanted. A query that shows the newest few of a window's
//! traces through one service builds those few, not the window ([`newest_through`], whose walks also stop as
//! soon as they are known to count or not).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::LazyLock;

use firedrill_world::changes::ChangeKind;
use firedrill_world::frame::ErrorCause;
use firedrill_world::spec::ServiceKind;
use firedrill_world::topology::Edge;
use firedrill_world::{ServiceFrame, ServiceId, World};
use rand_xoshiro::rand_core::Rng;
use serde::Serialize;

use crate::det::{self, KeyedRng, Purpose, normal, pick, stochastic_round, unit};
use crate::metrics::{PodNames, code_of};

/// Span kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanKind {
    /// Handling an incoming request.
    Server,
    /// Making an outgoing call.
    Client,
}

impl SpanKind {
    /// Lowercase name (`server`, `client`).
    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Server => "server",
            SpanKind::Client => "client",
        }
    }
}

/// Span status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanStatus {
    /// Succeeded.
    Ok,
    /// Failed.
    Error,
}

impl SpanStatus {
    /// Lowercase name (`ok`, `error`).
    pub fn as_str(self) -> &'static str {
        match self {
            SpanStatus::Ok => "ok",
            SpanStatus::Error => "error",
        }
    }
}

/// One span.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Span {
    /// Trace id, 32 hex digits.
    pub trace_id: String,
    /// Span id, 16 hex digits.
    pub span_id: String,
    /// Parent span id (`None` for the root).
    pub parent_span_id: Option<String>,
    /// Service that wrote the span (`service.name`).
    pub service: String,
    /// Operation name (`GET /v1/orders/{id}`, `SELECT shop.orders`).
    pub name: String,
    /// Kind.
    pub kind: SpanKind,
    /// Start, unix nanoseconds.
    pub start_ns: i64,
    /// Duration, nanoseconds.
    pub duration_ns: i64,
    /// Status.
    pub status: SpanStatus,
    /// Attributes (`http.status_code`, `error.type`, `peer.service`, `db.system`...).
    pub attributes: BTreeMap<String, String>,
}

/// A trace: spans in the order they were opened, root first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trace {
    /// Trace id, 32 hex digits.
    pub trace_id: String,
    /// Spans.
    pub spans: Vec<Span>,
}

impl Trace {
    /// The root span.
    pub fn root(&self) -> Option<&Span> {
        self.spans.first()
    }

    /// Duration of the root span, in ns.
    pub fn duration_ns(&self) -> i64 {
        self.root().map(|s| s.duration_ns).unwrap_or(0)
    }

    /// Whether any span failed.
    pub fn has_error(&self) -> bool {
        self.spans.iter().any(|s| s.status == SpanStatus::Error)
    }
}

/// Sampled root requests per entry point per tick.
pub const TRACES_PER_TICK: usize = 4;
const MAX_DEPTH: usize = 8;
const MAX_SPANS: usize = 256;
const MAX_CALLS_PER_EDGE: usize = 3;

/// The trace id of sample `index` of tick `tick`: the low 64 bits are a keyed hash of (seed, tick, index), the
/// high 64 bits are `tick << 16 | index` masked by a function of the low bits.
fn trace_id(world: &World, tick: u64, index: usize) -> String {
    let lo = det::key(world.seed(), Purpose::TraceId, tick, index as u64);
    let hi = ((tick << 16) | (index as u64 & 0xffff)) ^ id_mask(world, lo);
    let mut id = String::with_capacity(32);
    push_hex16(&mut id, hi);
    push_hex16(&mut id, lo);
    id
}

/// Appends `x` as sixteen lowercase hex digits, as `format!("{x:016x}")` writes it. Every span of every trace
/// built gets an id, and the formatting machinery costs several times these few instructions; a dependency
/// for five lines is not worth it.
fn push_hex16(out: &mut String, x: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for shift in (0..16).rev() {
        out.push(DIGITS[((x >> (shift * 4)) & 0xf) as usize] as char);
    }
}

fn id_mask(world: &World, lo: u64) -> u64 {
    det::splitmix64(lo ^ det::splitmix64(world.seed() ^ 0x7ACE_7ACE_7ACE_7ACE))
}

/// (tick, index) of a trace id of this world, if it is one.
fn decode_trace_id(world: &World, id: &str) -> Option<(u64, usize)> {
    let id = id.trim();
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let hi = u64::from_str_radix(&id[..16], 16).ok()?;
    let lo = u64::from_str_radix(&id[16..], 16).ok()?;
    let payload = hi ^ id_mask(world, lo);
    let (tick, index) = (payload >> 16, (payload & 0xffff) as usize);
    (det::key(world.seed(), Purpose::TraceId, tick, index as u64) == lo).then_some((tick, index))
}

/// What a span must turn out as (decided by its caller, top down).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// Draw from the service's error share (roots).
    Free,
    /// The request succeeds.
    Succeed,
    /// The request fails.
    Fail,
    /// The request succeeds but takes at least this many ms (its caller timed out).
    Slow(f64),
}

/// Whether a service writes spans of its own.
fn instrumented(kind: ServiceKind) -> bool {
    matches!(
        kind,
        ServiceKind::Edge
            | ServiceKind::Gateway
            | ServiceKind::Service
            | ServiceKind::Worker
            | ServiceKind::Sensor
            | ServiceKind::Observability
    )
}

/// A route template for a service (`/v1/orders/{id}`), fixed per service and varied per request. Without
/// `text` the same draws are made but the path is left empty (an outline needs the draws, not the words).
fn route(
    rng: &mut KeyedRng,
    kind: ServiceKind,
    name: &str,
    text: bool,
) -> (&'static str, Cow<'static, str>) {
    let method = pick(rng, &["GET", "GET", "GET", "POST", "PUT"]);
    let path = match kind {
        ServiceKind::Edge => Cow::Borrowed(pick(
            rng,
            &["/checkout", "/cart", "/product/{id}", "/account"],
        )),
        ServiceKind::Gateway => Cow::Borrowed(pick(
            rng,
            &[
                "/api/v1/orders",
                "/api/v1/cart",
                "/api/v1/users/{id}",
                "/api/v1/items",
            ],
        )),
        _ if !text => Cow::Borrowed(""),
        _ => {
            let base = trim_suffix(
                trim_suffix(trim_suffix(name, "-service"), "-svc"),
                "-worker",
            );
            let plural = if base.ends_with('s') { "" } else { "s" };
            let id = if method == "GET" { "/{id}" } else { "" };
            Cow::Owned(concat(&["/v1/", base, plural, id]))
        }
    };
    (method, path)
}

/// `s.trim_end_matches(suffix)` for a non-empty `suffix`: every trailing repetition removed. Comparing the end
/// with `strip_suffix` avoids the substring searcher `trim_end_matches` builds on every call (a built span's route
/// names its service this way).
fn trim_suffix<'s>(mut s: &'s str, suffix: &str) -> &'s str {
    while let Some(rest) = s.strip_suffix(suffix) {
        s = rest;
    }
    s
}

/// The parts joined into one string of the right size: what `format!` with only `{}` placeholders writes, without
/// its formatting machinery (every span of a built trace names itself this way).
fn concat(parts: &[&str]) -> String {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        out.push_str(p);
    }
    out
}

fn error_type(cause: ErrorCause) -> &'static str {
    match cause {
        ErrorCause::UpstreamTimeout => "timeout",
        ErrorCause::PoolTimeout => "pool_timeout",
        ErrorCause::DnsResolution => "dns",
        ErrorCause::TlsHandshake => "tls",
        ErrorCause::Unreachable => "connect_timeout",
        ErrorCause::DiskFull => "io",
        ErrorCause::LockTimeout => "lock_timeout",
        ErrorCause::RateLimited => "rate_limited",
        ErrorCause::Overload => "timeout",
        ErrorCause::Unavailable => "unavailable",
        ErrorCause::UpstreamError => "upstream",
        ErrorCause::None | ErrorCause::Internal => "internal",
    }
}

/// Whether a cause blames a dependency.
fn blames_dependency(cause: ErrorCause) -> bool {
    matches!(
        cause,
        ErrorCause::UpstreamTimeout
            | ErrorCause::UpstreamError
            | ErrorCause::PoolTimeout
            | ErrorCause::TlsHandshake
            | ErrorCause::DnsResolution
            | ErrorCause::Unreachable
    )
}

/// Share of a service's requests that fail at a tick (server errors only).
fn server_error_share(f: &ServiceFrame) -> f64 {
    let denom = (f.offered_rps - f.rejected_rps).max(0.0) as f64;
    if denom <= 0.0 {
        return if f.ready == 0 && f.desired > 0 {
            1.0
        } else {
            0.0
        };
    }
    (f.error_rps as f64 / denom).clamp(0.0, 1.0)
}

/// The frame read for a service a tick does not hold (none in a compiled topology; kept for safety).
static NO_FRAME: LazyLock<ServiceFrame> = LazyLock::new(ServiceFrame::default);

/// The client settings each service calls with at one tick (`http.client.timeout_ms` and `http.client.retries` as
/// in effect then), read once per service: a walk makes many calls from the same few services and every walk of
/// a tick reads the same values, while each read is a map lookup and a scan of the world's changes.
///
/// Ticks that begin after the last change to either key all read the current configuration, so values read
/// for one of them serve every other: a window of traces then reads each service's settings once, not once per
/// tick.
#[derive(Debug, Default)]
struct ClientSettings {
    /// The tick the values are for.
    tick: u64,
    /// Whether the values are the current configuration's (the tick began after the last change to the keys).
    current: bool,
    /// World ms of the last change to either key (`i64::MIN` if none), once looked up.
    last_change_ms: Option<i64>,
    /// Per service: `None` until read, then (timeout ms, retries), each `None` when unset or unparsable.
    by_service: Vec<Option<(Option<f64>, Option<u8>)>>,
}

/// The configuration keys a client's calls read.
const CLIENT_KEYS: [&str; 2] = ["http.client.timeout_ms", "http.client.retries"];

impl ClientSettings {
    /// These settings for `tick`: kept if they are that tick's, or if both that tick and theirs read the current
    /// configuration; emptied otherwise.
    fn for_tick(mut self, world: &World, tick: u64) -> ClientSettings {
        let services = world.topology().len();
        let last_change_ms = *self.last_change_ms.get_or_insert_with(|| {
            world
                .changes()
                .iter()
                .rev()
                .find(|c| {
                    matches!(&c.kind, ChangeKind::Config { key, .. } if CLIENT_KEYS.contains(&key.as_str()))
                })
                .map_or(i64::MIN, |c| det::round_ms(c.t_s))
        });
        // As `det::config_at` decides: a change at or before the tick's start is in effect during the tick.
        let current = det::tick_world_ms(world, tick) - det::tick_len_ms(world) >= last_change_ms;
        let same = self.tick == tick || (current && self.current);
        if !same || self.by_service.len() != services {
            self.by_service.clear();
            self.by_service.resize(services, None);
        }
        self.tick = tick;
        self.current = current;
        self
    }

    /// (timeout ms, retries) of calls made by `from`, as configured during the tick ending at `tick_world_ms`.
    fn get(
        &mut self,
        world: &World,
        from: ServiceId,
        tick_world_ms: i64,
    ) -> (Option<f64>, Option<u8>) {
        if let Some(Some(v)) = self.by_service.get(from.index()) {
            return *v;
        }
        let v = (
            det::config_at(world, from, CLIENT_KEYS[0], tick_world_ms)
                .and_then(|v| v.parse::<f64>().ok()),
            det::config_at(world, from, CLIENT_KEYS[1], tick_world_ms)
                .and_then(|v| v.parse::<u8>().ok()),
        );
        if let Some(slot) = self.by_service.get_mut(from.index()) {
            *slot = Some(v);
        }
        v
    }
}

/// How far an outline walk goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Until {
    /// To the end: the outline says whether the target wrote a span and whether any span failed.
    End,
    /// Until the target writes a span (whether one failed is then unknown), or nothing left of the walk can.
    Hit,
    /// Until the target has written a span and some span has failed, or nothing left of the walk can write a
    /// span by the target.
    HitAndError,
}

/// One trace being generated.
///
/// A walk makes the same draws whether or not it writes text: with `pods` it builds every span (ids, names,
/// attributes), without it only what an outline needs (how many spans, whether one failed, whether `target`
/// wrote one). Both follow one code path, so an outline always describes the trace the full walk would build.
struct Walk<'a> {
    world: &'a World,
    /// Pod names, for the spans' text; `None` for an outline.
    pods: Option<&'a PodNames>,
    /// Whether written spans get their attributes.
    attributes: bool,
    frames: &'a [ServiceFrame],
    /// The frame read for a service the tick does not hold ([`NO_FRAME`], forced once per walk: read through the
    /// lazy static, every span paid an atomic check for it).
    no_frame: &'a ServiceFrame,
    tick_world_ms: i64,
    /// Client settings of the walk's tick, shared by the walks of a tick.
    settings: ClientSettings,
    trace_id: String,
    rng: KeyedRng,
    /// The spans, when written (`pods` is some).
    spans: Vec<Span>,
    /// Spans opened, written or not.
    opened: usize,
    /// Whether any span failed.
    error: bool,
    /// The service an outline asks about, and whether it wrote a span.
    target: Option<ServiceId>,
    hit: bool,
    /// When the walk may stop (always [`Until::End`] when spans are written).
    until: Until,
    /// Whether what the walk was asked is decided: the walk then unwinds without drawing further, and its
    /// outline is only good for that answer.
    done: bool,
    /// For a walk that may stop: per service, whether serving it can lead to a span by the target (it is the
    /// target, or calls to instrumented services can reach it). Empty otherwise.
    reach: &'a [bool],
    /// With `reach`: per edge, whether a call along it or along a later edge of its caller (in the caller's
    /// `out_edges` order) may lead to a span by the target, so that asking about the edges a service has left
    /// is one lookup. Empty otherwise.
    reach_after: &'a [bool],
    /// Whether what is left of the callers' requests once the current call returns (later calls, retries) may
    /// yet lead to a span by the target. Kept only when `reach` is given.
    above: bool,
}

impl<'a> Walk<'a> {
    /// Notes whether the walk's question is decided, after a span was opened or failed. Once decided it stays
    /// so: the draws after the point where it stopped are never made.
    fn settle(&mut self) {
        self.done |= match self.until {
            Until::End => false,
            Until::Hit => self.hit,
            Until::HitAndError => self.hit && self.error,
        };
    }

    /// Whether a call along edge `e` may lead to a span by the target (always, without `reach`).
    fn edge_may_reach(&self, e: usize) -> bool {
        self.reach.is_empty()
            || self.reach.get(self.world.topology().edges[e].to.index()) == Some(&true)
    }

    /// Whether a call along one of `out_edges[j..]` (a service's edges, in order) may lead to a span by the
    /// target (always, without `reach`).
    fn may_reach_from(&self, out_edges: &[usize], j: usize) -> bool {
        self.reach.is_empty()
            || out_edges
                .get(j)
                .is_some_and(|&e| self.reach_after.get(e) == Some(&true))
    }

    /// Stops a walk that may stop, when the target has written no span and nothing left of it can: neither the
    /// calls along `out_edges[j..]` (the current service's edges not yet done) nor what the callers do next.
    fn give_up_unless_reachable(&mut self, out_edges: &[usize], j: usize) {
        if !self.reach.is_empty() && !self.hit && !self.above && !self.may_reach_from(out_edges, j)
        {
            self.done = true;
        }
    }

    /// Whether spans are written out.
    fn text(&self) -> bool {
        self.pods.is_some()
    }

    /// Whether spans are written out with their attributes.
    fn with_attributes(&self) -> bool {
        self.text() && self.attributes
    }

    /// Sets attribute `key` of the span at `index`, when spans are written with their attributes.
    #[inline(always)]
    fn set_attribute(&mut self, index: usize, key: &str, value: &str) {
        if !self.with_attributes() {
            return;
        }
        if let Some(span) = self.spans.get_mut(index) {
            span.attributes.insert(key.into(), value.into());
        }
    }

    fn frame(&self, id: ServiceId) -> &'a ServiceFrame {
        self.frames.get(id.index()).unwrap_or(self.no_frame)
    }

    fn name(&self, id: ServiceId) -> &'a str {
        self.world.topology().service(id).name()
    }

    /// A latency draw from a frame's log-normal, in ms, scaled to a median of `median_ms`.
    fn draw_ms(&mut self, median_ms: f64, sigma: f64) -> f64 {
        median_ms.max(0.05) * (sigma.max(0.05) * normal(&mut self.rng)).exp()
    }

    /// Opens a span written by `service`, a child of the span opened at index `parent`; returns its index. The
    /// span id is drawn either way: later draws must not depend on whether text is written.
    ///
    /// Inlined, with the writing apart: most walks are outlines, which only count the span, and the call of an
    /// out-of-line function moving a name, a parent and attributes they never write cost more than the count.
    #[inline(always)]
    fn open(
        &mut self,
        service: ServiceId,
        name: String,
        kind: SpanKind,
        parent: Option<usize>,
        start_ns: i64,
        attributes: Option<BTreeMap<String, String>>,
    ) -> usize {
        let raw_id = self.rng.next_u64() | 1;
        let index = self.opened;
        self.opened += 1;
        self.hit |= self.target == Some(service);
        self.settle();
        if self.text() {
            self.write_span(raw_id, service, name, kind, parent, start_ns, attributes);
        }
        index
    }

    /// Writes the span [`Walk::open`] opened, with id `raw_id`. Spans are written in the order they are opened
    /// (every one, when text is written), so a span's index is its place in `spans`, and its parent's id is
    /// read from there: one copy of the id per child, where passing it down took two.
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn write_span(
        &mut self,
        raw_id: u64,
        service: ServiceId,
        name: String,
        kind: SpanKind,
        parent: Option<usize>,
        start_ns: i64,
        attributes: Option<BTreeMap<String, String>>,
    ) {
        let mut span_id = String::with_capacity(16);
        push_hex16(&mut span_id, raw_id);
        let parent_span_id = parent
            .and_then(|p| self.spans.get(p))
            .map(|p| p.span_id.clone());
        self.spans.push(Span {
            trace_id: self.trace_id.clone(),
            span_id,
            parent_span_id,
            service: self.name(service).to_string(),
            name,
            kind,
            start_ns,
            duration_ns: 0,
            status: SpanStatus::Ok,
            attributes: attributes.unwrap_or_default(),
        });
    }

    /// The span at `index`, when spans are written.
    fn span_mut(&mut self, index: usize) -> Option<&mut Span> {
        self.spans.get_mut(index)
    }

    /// Marks the span at `index` failed with `error_type`.
    fn fail(&mut self, index: usize, error_type: &str) {
        self.error = true;
        self.settle();
        if let Some(span) = self.span_mut(index) {
            span.status = SpanStatus::Error;
        }
        self.set_attribute(index, "error.type", error_type);
    }

    /// Median of one call along an edge at this tick, in ms (through its cache when it has one).
    fn call_median_ms(&self, e: &Edge) -> f64 {
        let to = self.frame(e.to).latency_median_ms as f64;
        match e.via_cache {
            Some(c) => {
                let cf = self.frame(c);
                let hit = (cf.cache_hit_ratio as f64).clamp(0.0, 1.0);
                hit * cf.latency_median_ms as f64 + (1.0 - hit) * to
            }
            None => to,
        }
    }

    /// The server span of an instrumented `service` and its subtree; returns (duration ns, failed, status code).
    fn server(
        &mut self,
        service: ServiceId,
        parent: Option<usize>,
        start_ns: i64,
        depth: usize,
        mode: Mode,
        route_hint: Option<(&'static str, Cow<'static, str>)>,
    ) -> (i64, bool, &'static str) {
        let topo = self.world.topology();
        let f = self.frame(service);
        let svc = topo.service(service);
        let text = self.text();
        let (method, path) = match route_hint {
            Some(r) => r,
            None => route(&mut self.rng, svc.kind(), svc.name(), text),
        };
        // The replica that served the span only names its pod among the attributes; the draw that picks it is
        // made all the same, so that the draws after it do not depend on what is written.
        let slot = if self.with_attributes() {
            let live = f.replica_memory_mb.iter().filter(|&&m| m > 0.0).count();
            (live > 0).then(|| {
                let k = ((unit(&mut self.rng) * live as f64) as usize).min(live - 1);
                (0..f.replica_memory_mb.len())
                    .filter(|&s| f.replica_memory_mb[s] > 0.0)
                    .nth(k)
                    .unwrap_or(0)
            })
        } else {
            if f.replica_memory_mb.iter().any(|&m| m > 0.0) {
                unit(&mut self.rng);
            }
            None
        };
        let name = if text {
            concat(&[method, " ", &path])
        } else {
            String::new()
        };
        // No map at all unless attributes are written: even an empty one costs its drop, on every span walked.
        let attrs = match self.pods.filter(|_| self.attributes) {
            Some(pods) => Some({
                let version = svc
                    .spec
                    .versions
                    .get(f.version as usize)
                    .map(|v| v.name.clone())
                    .unwrap_or_default();
                let mut attrs = BTreeMap::from([
                    ("http.request.method".to_string(), method.to_string()),
                    ("http.route".to_string(), path.to_string()),
                    ("service.version".to_string(), version),
                ]);
                if let Some(slot) = slot {
                    attrs.insert(
                        "k8s.pod.name".into(),
                        pods.name(service, slot, self.tick_world_ms),
                    );
                }
                attrs
            }),
            None => None,
        };
        let index = self.open(service, name, SpanKind::Server, parent, start_ns, attrs);
        if self.done {
            // Decided (only ever in an outline that may stop): what is returned no longer matters.
            return (0, false, "200");
        }

        // Rejected by the rate limiter (roots only: a caller decides its callees' outcome).
        let reject_share = if f.offered_rps > 0.0 {
            (f.rejected_rps / f.offered_rps).clamp(0.0, 1.0) as f64
        } else {
            0.0
        };
        if mode == Mode::Free && unit(&mut self.rng) < reject_share {
            return self.close(index, 1_000_000, true, "429", "rate_limited");
        }
        let failed = match mode {
            Mode::Free => unit(&mut self.rng) < server_error_share(f),
            Mode::Fail => true,
            Mode::Succeed | Mode::Slow(_) => false,
        };
        let cause = f.err_cause;
        if failed && (f.ready == 0 || cause == ErrorCause::Unavailable) {
            // No replica to answer: the proxy in front answers at once.
            return self.close(index, 400_000, true, "503", "unavailable");
        }
        // The call that explains the failure, when the tick's cause blames a dependency we call.
        let culprit = (failed && blames_dependency(cause))
            .then(|| {
                svc.out_edges
                    .iter()
                    .copied()
                    .find(|&e| topo.edges[e].to.0 == f.err_dep)
            })
            .flatten();
        let own_failure = failed && culprit.is_none();

        // Own processing time: what the median leaves once the dependencies' share is taken out.
        let deps_ms: f64 = svc
            .out_edges
            .iter()
            .map(|&e| topo.edges[e].per_request * self.call_median_ms(&topo.edges[e]))
            .sum::<f64>()
            + f.pool_wait_ms as f64;
        let median = f.latency_median_ms.max(0.1) as f64;
        let own_median = (median - deps_ms).max(0.15 * median).max(0.1);
        let mut own_ms = self.draw_ms(own_median, f.latency_sigma as f64);
        if own_failure && cause == ErrorCause::Overload {
            // Timed out waiting for a worker: no calls were made.
            own_ms = own_ms.max(median * 3.0);
        }
        if let Mode::Slow(min) = mode {
            own_ms = own_ms.max(min * (1.05 + 0.5 * unit(&mut self.rng)));
        }
        let mut cursor = start_ns + (own_ms * 0.3 * 1e6) as i64;
        let mut code = if failed { code_of(cause) } else { "200" };
        if failed && code == "429" {
            code = "500";
        }
        let skip_calls = own_failure && cause == ErrorCause::Overload;
        if depth < MAX_DEPTH && !skip_calls {
            'edges: for (j, &e) in svc.out_edges.iter().enumerate() {
                self.give_up_unless_reachable(&svc.out_edges, j);
                if self.done {
                    break 'edges;
                }
                let edge = &topo.edges[e];
                let forced = culprit == Some(e);
                let mut calls =
                    stochastic_round(&mut self.rng, edge.per_request).min(MAX_CALLS_PER_EDGE);
                if forced {
                    calls = calls.max(1);
                }
                for c in 0..calls {
                    if self.opened >= MAX_SPANS || self.done {
                        break 'edges;
                    }
                    if let Some(cache) = edge.via_cache {
                        let (d, hit) = self.cache_lookup(service, cache, index, cursor);
                        cursor += d;
                        if hit && !forced {
                            continue;
                        }
                    }
                    let call_mode = if forced { Some(cause) } else { None };
                    let above = self.above;
                    if !self.reach.is_empty() {
                        // After this call: this edge's other calls, then the later edges.
                        self.above = above
                            || (c + 1 < calls && self.edge_may_reach(e))
                            || self.may_reach_from(&svc.out_edges, j + 1);
                    }
                    let (d, err, upstream_code) =
                        self.client(service, edge, index, cursor, depth, call_mode);
                    self.above = above;
                    cursor += d;
                    if err && forced {
                        if cause == ErrorCause::UpstreamError {
                            code = match upstream_code {
                                "503" | "504" | "429" => "502",
                                _ => "500",
                            };
                        }
                        // The request gives up at its first failed call.
                        break 'edges;
                    }
                }
            }
        }
        let duration = (cursor - start_ns) + (own_ms * 0.7 * 1e6) as i64;
        let etype = if failed {
            if own_failure {
                error_type(cause)
            } else {
                match cause {
                    ErrorCause::UpstreamError => "upstream",
                    c => error_type(c),
                }
            }
        } else {
            ""
        };
        self.close(index, duration, failed, code, etype)
    }

    fn close(
        &mut self,
        index: usize,
        duration_ns: i64,
        failed: bool,
        code: &'static str,
        error_type: &str,
    ) -> (i64, bool, &'static str) {
        let duration_ns = duration_ns.max(1_000);
        if let Some(span) = self.span_mut(index) {
            span.duration_ns = duration_ns;
        }
        self.set_attribute(index, "http.status_code", code);
        if failed {
            self.fail(index, error_type);
        }
        (duration_ns, failed, code)
    }

    /// A cache lookup before a call; returns (duration ns, hit).
    fn cache_lookup(
        &mut self,
        from: ServiceId,
        cache: ServiceId,
        parent: usize,
        start_ns: i64,
    ) -> (i64, bool) {
        let cf = self.frame(cache);
        let key_id = self.rng.next_u64() % 100_000;
        let hit = cf.ready > 0 && unit(&mut self.rng) < cf.cache_hit_ratio as f64;
        let (name, parent, attrs) = if self.with_attributes() {
            let peer = self.name(cache);
            let attrs = BTreeMap::from([
                ("db.system".to_string(), "redis".to_string()),
                ("db.operation.name".to_string(), "GET".to_string()),
                ("db.query.text".to_string(), format!("GET item:{key_id}")),
                ("peer.service".to_string(), peer.to_string()),
                ("server.address".to_string(), peer.to_string()),
                ("cache.hit".to_string(), hit.to_string()),
            ]);
            ("GET".to_string(), Some(parent), Some(attrs))
        } else if self.text() {
            ("GET".to_string(), Some(parent), None)
        } else {
            (String::new(), None, None)
        };
        let index = self.open(from, name, SpanKind::Client, parent, start_ns, attrs);
        let ms = self.draw_ms(cf.latency_median_ms as f64, cf.latency_sigma as f64);
        let d = ((ms + 0.1) * 1e6) as i64;
        if let Some(span) = self.span_mut(index) {
            span.duration_ns = d.max(1_000);
        }
        (d, hit)
    }

    /// The client span(s) of one call, with retries, and the callee's subtree. `forced` is the cause the call
    /// must fail with, if it must. Returns (duration ns over all attempts, failed, upstream status code).
    fn client(
        &mut self,
        from: ServiceId,
        edge: &Edge,
        parent: usize,
        start_ns: i64,
        depth: usize,
        forced: Option<ErrorCause>,
    ) -> (i64, bool, &'static str) {
        let (timeout_ms, retries) = self.settings.get(self.world, from, self.tick_world_ms);
        let timeout_ms = timeout_ms.unwrap_or(edge.timeout_ms);
        let retries = retries.unwrap_or(edge.retries);
        let to_frame = self.frame(edge.to);
        let mut at = start_ns;
        let mut last = (false, "200");
        for attempt in 0..=retries {
            // Without a forced failure, a first attempt fails now and then and its retry succeeds.
            let attempt_fails = match forced {
                Some(_) => true,
                None => {
                    attempt < retries && unit(&mut self.rng) < server_error_share(to_frame).min(0.5)
                }
            };
            let cause = match forced {
                Some(c) => c,
                None if attempt_fails => ErrorCause::UpstreamError,
                None => ErrorCause::None,
            };
            let above = self.above;
            if !self.reach.is_empty() {
                // After this attempt: a retry, then what the caller does next.
                self.above =
                    above || (attempt < retries && self.reach.get(edge.to.index()) == Some(&true));
            }
            let (d, failed, code) = self.attempt(
                from,
                edge,
                parent,
                at,
                depth,
                attempt,
                timeout_ms,
                attempt_fails,
                cause,
            );
            self.above = above;
            if self.done {
                break;
            }
            at += d + if failed { 2_000_000 } else { 0 };
            last = (failed, code);
            if !failed
                || !matches!(
                    cause,
                    ErrorCause::UpstreamError
                        | ErrorCause::UpstreamTimeout
                        | ErrorCause::Unreachable
                )
            {
                break;
            }
        }
        (at - start_ns, last.0, last.1)
    }

    /// One attempt of a call.
    #[allow(clippy::too_many_arguments)]
    fn attempt(
        &mut self,
        from: ServiceId,
        edge: &Edge,
        parent: usize,
        start_ns: i64,
        depth: usize,
        attempt: u8,
        timeout_ms: f64,
        fail: bool,
        cause: ErrorCause,
    ) -> (i64, bool, &'static str) {
        let text = self.text();
        let topo = self.world.topology();
        let callee = topo.service(edge.to);
        let kind = callee.kind();
        let peer = callee.name();
        let to_frame = self.frame(edge.to);
        let caller_frame = self.frame(from);
        let timeout_ns = (timeout_ms * 1e6) as i64;
        // Attributes are only built when written; every draw below is made either way, in the same order.
        let mut attrs = self.with_attributes().then(BTreeMap::new);
        if let Some(attrs) = attrs.as_mut() {
            attrs.insert("peer.service".to_string(), peer.to_string());
            attrs.insert(
                "server.address".to_string(),
                format!("{peer}.prod.svc.cluster.local"),
            );
            if attempt > 0 {
                attrs.insert("http.request.resend_count".into(), attempt.to_string());
            }
        }
        let route_hint = instrumented(kind).then(|| route(&mut self.rng, kind, peer, text));
        let name = match kind {
            ServiceKind::Database => {
                let (op, table) = (
                    pick(
                        &mut self.rng,
                        &["SELECT", "SELECT", "SELECT", "UPDATE", "INSERT"],
                    ),
                    pick(
                        &mut self.rng,
                        &["orders", "order_items", "users", "stock", "payments"],
                    ),
                );
                if let Some(attrs) = attrs.as_mut() {
                    attrs.insert("db.system".into(), "postgresql".into());
                    attrs.insert("db.operation.name".into(), op.into());
                    attrs.insert("db.collection.name".into(), table.into());
                }
                if text {
                    concat(&[op, " shop.", table])
                } else {
                    String::new()
                }
            }
            _ if !text => String::new(),
            ServiceKind::Cache => {
                if let Some(attrs) = attrs.as_mut() {
                    attrs.insert("db.system".into(), "redis".into());
                }
                "GET".into()
            }
            ServiceKind::External => {
                if let Some(attrs) = attrs.as_mut() {
                    attrs.insert("http.request.method".into(), "POST".into());
                    attrs.insert("url.full".into(), format!("https://{peer}/v1/charges"));
                }
                "POST".into()
            }
            _ => {
                let (m, p) = route_hint
                    .as_ref()
                    .map(|(m, p)| (*m, p.as_ref()))
                    .unwrap_or(("GET", "/"));
                if let Some(attrs) = attrs.as_mut() {
                    attrs.insert("http.request.method".into(), m.into());
                }
                concat(&[m, " ", p])
            }
        };
        // Waiting for a pooled connection happens inside the client span.
        let pool_wait_ms = if edge.pool.is_some() && caller_frame.pool_wait_ms > 0.0 {
            caller_frame.pool_wait_ms as f64 * -unit(&mut self.rng).max(1e-9).ln()
        } else {
            0.0
        };
        if let Some(attrs) = attrs.as_mut().filter(|_| pool_wait_ms > 0.5) {
            attrs.insert(
                "db.client.connection.wait_ms".into(),
                format!("{pool_wait_ms:.0}"),
            );
        }
        let index = self.open(from, name, SpanKind::Client, Some(parent), start_ns, attrs);
        let small = |rng: &mut KeyedRng, ms: f64| ((ms * (0.8 + 0.4 * unit(rng))) * 1e6) as i64;
        // Failures that never reach the callee.
        let early = if fail {
            match cause {
                ErrorCause::PoolTimeout => Some((timeout_ns, "pool_timeout")),
                ErrorCause::DnsResolution => Some((small(&mut self.rng, 5.0), "dns")),
                ErrorCause::TlsHandshake => Some((small(&mut self.rng, 3.0), "tls")),
                ErrorCause::Unreachable => Some((timeout_ns, "connect_timeout")),
                _ => None,
            }
        } else {
            None
        };
        if let Some((d, etype)) = early {
            if let Some(span) = self.span_mut(index) {
                span.duration_ns = d.max(1_000);
            }
            self.fail(index, etype);
            return (d, true, "");
        }
        let body_start = start_ns + (pool_wait_ms * 1e6) as i64 + 150_000;
        let (child_ns, child_failed, child_code) = if instrumented(kind) && depth + 1 < MAX_DEPTH {
            let mode = match (fail, cause) {
                (true, ErrorCause::UpstreamTimeout) => Mode::Slow(timeout_ms),
                (true, _) => Mode::Fail,
                (false, _) => Mode::Succeed,
            };
            self.server(
                edge.to,
                Some(index),
                body_start,
                depth + 1,
                mode,
                route_hint,
            )
        } else {
            // Not instrumented: only the client side is seen.
            let mut ms = self.draw_ms(
                to_frame.latency_median_ms as f64,
                to_frame.latency_sigma as f64,
            );
            if fail && cause == ErrorCause::UpstreamTimeout {
                ms = ms.max(timeout_ms * (1.05 + 0.5 * unit(&mut self.rng)));
            }
            let code = if fail {
                code_of(to_frame.err_cause)
            } else {
                "200"
            };
            ((ms * 1e6) as i64, fail, code)
        };
        let mut duration = body_start - start_ns + child_ns + 150_000;
        let mut failed = child_failed;
        let mut etype = None;
        if duration > timeout_ns {
            duration = timeout_ns;
            failed = true;
            etype = Some("timeout");
        } else if child_failed {
            etype = Some(match kind {
                ServiceKind::Database if to_frame.err_cause == ErrorCause::LockTimeout => {
                    "lock_timeout"
                }
                ServiceKind::Database | ServiceKind::Cache => "db_error",
                _ => child_code,
            });
        }
        if let Some(span) = self.span_mut(index) {
            span.duration_ns = duration.max(1_000);
        }
        if matches!(kind, ServiceKind::Database | ServiceKind::Cache) {
            if failed && to_frame.err_cause == ErrorCause::LockTimeout && etype != Some("timeout") {
                self.set_attribute(index, "db.response.status_code", "55P03");
            }
        } else if etype != Some("timeout") {
            self.set_attribute(index, "http.status_code", child_code);
        }
        if failed {
            self.fail(index, etype.unwrap_or("internal"));
        }
        (
            duration,
            failed,
            if etype == Some("timeout") {
                "504"
            } else {
                child_code
            },
        )
    }
}

/// The traces sampled at one tick (at most `max`), in index order: [`TRACES_PER_TICK`] per entry point.
pub fn traces_at(world: &World, tick: u64, max: usize) -> Vec<Trace> {
    if world.history().tick(tick).is_none() {
        return Vec::new();
    }
    let pods = PodNames::new(world);
    let mut settings = ClientSettings::default();
    let n = (TRACES_PER_TICK * world.topology().entries.len()).min(max);
    (0..n)
        .filter_map(|i| generate(world, &pods, &mut settings, SpanDetail::Full, tick, i))
        .collect()
}

/// A walk of sample `index` of tick `tick`, with its root start (unix ns) drawn; `None` if the tick is not held
/// or the topology has no entry point. `settings` are those a previous walk read (kept if of the same tick).
fn start_walk<'a>(
    world: &'a World,
    pods: Option<&'a PodNames>,
    target: Option<ServiceId>,
    settings: ClientSettings,
    tick: u64,
    index: usize,
) -> Option<(Walk<'a>, ServiceId, i64)> {
    let frames = world.history().tick(tick)?;
    let entries = &world.topology().entries;
    let entry = entries.get(index % entries.len().max(1))?.service;
    let mut walk = Walk {
        world,
        pods,
        attributes: true,
        frames,
        no_frame: &NO_FRAME,
        tick_world_ms: det::tick_world_ms(world, tick),
        settings: settings.for_tick(world, tick),
        trace_id: if pods.is_some() {
            trace_id(world, tick, index)
        } else {
            String::new()
        },
        rng: det::rng_for(world, Purpose::Trace, tick, index as u64),
        spans: Vec::new(),
        opened: 0,
        error: false,
        target,
        hit: false,
        until: Until::End,
        done: false,
        reach: &[],
        reach_after: &[],
        above: false,
    };
    let tick_ns = (world.tick_s() * 1e9) as i64;
    let end_ns = det::tick_end_ms(world, tick) * 1_000_000;
    let start = end_ns - tick_ns + (unit(&mut walk.rng) * tick_ns as f64 * 0.9) as i64;
    Some((walk, entry, start))
}

/// Builds sample `index` of tick `tick` in `detail`; `settings` are shared with the other traces built (kept if
/// of the same tick).
fn generate(
    world: &World,
    pods: &PodNames,
    settings: &mut ClientSettings,
    detail: SpanDetail,
    tick: u64,
    index: usize,
) -> Option<Trace> {
    let (mut walk, entry, start) = start_walk(
        world,
        Some(pods),
        None,
        std::mem::take(settings),
        tick,
        index,
    )?;
    walk.attributes = detail == SpanDetail::Full;
    walk.server(entry, None, start, 0, Mode::Free, None);
    *settings = walk.settings;
    Some(Trace {
        trace_id: walk.trace_id,
        spans: walk.spans,
    })
}

/// Regenerates a trace from its id; `None` if the id is malformed, not of this world, or its tick is no longer
/// held. O(1) in the number of ticks: the id encodes its tick and index.
pub fn find_trace(world: &World, trace_id_hex: &str) -> Option<Trace> {
    let (tick, index) = decode_trace_id(world, &trace_id_hex.to_ascii_lowercase())?;
    if index >= TRACES_PER_TICK * world.topology().entries.len() {
        return None;
    }
    generate(
        world,
        &PodNames::new(world),
        &mut ClientSettings::default(),
        SpanDetail::Full,
        tick,
        index,
    )
}

/// The ticks whose sampled roots can start in `[start_ms, end_ms)` (unix ms), oldest first.
fn window_ticks(world: &World, start_ms: i64, end_ms: i64) -> impl Iterator<Item = u64> + '_ {
    let ring = world.history();
    let tick_ms = (world.tick_s() * 1000.0) as i64;
    (ring.first_tick()..ring.end_tick()).filter(move |&t| {
        let end = det::tick_end_ms(world, t);
        !(end < start_ms || end - tick_ms >= end_ms)
    })
}

/// Every sampled trace whose root starts in `[start_ms, end_ms)` (unix ms), oldest tick first, at most `max`.
pub fn traces_between(world: &World, start_ms: i64, end_ms: i64, max: usize) -> Vec<Trace> {
    let pods = PodNames::new(world);
    let mut settings = ClientSettings::default();
    let per_tick = TRACES_PER_TICK * world.topology().entries.len();
    let mut out = Vec::new();
    for t in window_ticks(world, start_ms, end_ms) {
        for i in 0..per_tick {
            let Some(tr) = generate(world, &pods, &mut settings, SpanDetail::Full, t, i) else {
                continue;
            };
            let root = tr.spans[0].start_ns.div_euclid(1_000_000);
            if root >= start_ms && root < end_ms {
                out.push(tr);
                if out.len() >= max {
                    return out;
                }
            }
        }
    }
    out
}

/// What a sampled trace is, without its spans: enough to choose which traces to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceOutline {
    /// Tick the trace was sampled at.
    pub tick: u64,
    /// Index of the sample within its tick.
    pub index: usize,
    /// Start of the root span, unix nanoseconds.
    pub start_ns: i64,
    /// Whether any span failed (what [`Trace::has_error`] says of the trace).
    pub error: bool,
}

/// The outlines of the traces [`traces_between`] returns for the same window and `max` that have a span written
/// by `through`, in the same order (every one if `through` is `None`).
///
/// A trace's draws come from its own generator, so each is walked alone, making the same draws as when it is
/// built but writing no text (no ids, names or attributes). Entry points from which `through` cannot be reached
/// by calls to instrumented services are not walked at all: only their roots' start is drawn, since those
/// traces still count towards `max`. Build the ones wanted with [`build_traces`].
pub fn outlines_between(
    world: &World,
    start_ms: i64,
    end_ms: i64,
    max: usize,
    through: Option<ServiceId>,
) -> Vec<TraceOutline> {
    let mut out = Vec::new();
    scan_outlines(world, start_ms, end_ms, max, through, Until::End, |o| {
        out.push(o)
    });
    out
}

/// What a built trace's spans hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanDetail {
    /// Everything.
    Full,
    /// Everything but the attributes (every span's map is left empty), for a reader that shows none: writing them
    /// (pod names, addresses, status codes...) is most of the cost of building a trace.
    NoAttributes,
}

/// What [`newest_through`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThroughQuery {
    /// The service the traces go through (have a span written by).
    pub through: ServiceId,
    /// Only the traces with a failed span.
    pub errors_only: bool,
    /// How many of the newest to build.
    pub newest: usize,
    /// What their spans hold.
    pub detail: SpanDetail,
}

/// What a query for the traces through a service shows of those [`traces_between`] returns for the same window
/// and `max` (only those with a failed span if `errors_only`): how many there are, and the newest `newest` of
/// them, built, newest first.
///
/// The same as filtering [`outlines_between`] and building the newest, only cheaper: each trace is walked only
/// until it is known whether it counts (up to its first span by `through`, and with `errors_only` a failed span
/// too; or until nothing left of it can reach `through`), since nothing more of the traces not built is needed.
pub fn newest_through(
    world: &World,
    start_ms: i64,
    end_ms: i64,
    max: usize,
    query: &ThroughQuery,
) -> (usize, Vec<Trace>) {
    let ThroughQuery {
        through,
        errors_only,
        newest,
        detail,
    } = *query;
    let until = if errors_only {
        Until::HitAndError
    } else {
        Until::Hit
    };
    let mut matched = 0;
    // The newest `newest` so far, as a ring: `matched % newest` is the oldest's slot once it is full.
    let mut ring: Vec<TraceOutline> = Vec::with_capacity(newest.min(64));
    scan_outlines(world, start_ms, end_ms, max, Some(through), until, |o| {
        // Stopped walks have `o.error` only when it was asked for; the others walked to their end.
        if errors_only && !o.error {
            return;
        }
        if ring.len() < newest {
            ring.push(o);
        } else if newest > 0 {
            ring[matched % newest] = o;
        }
        matched += 1;
    });
    if ring.len() == newest && newest > 0 {
        ring.rotate_left(matched % newest);
    }
    (matched, build_traces_in(world, ring.iter().rev(), detail))
}

/// Walks the traces of [`traces_between`] for the same window and `max`, in its order, as far as `until` asks,
/// and hands `each` the outline of every one with a span by `through` (every one if `None`).
fn scan_outlines(
    world: &World,
    start_ms: i64,
    end_ms: i64,
    max: usize,
    through: Option<ServiceId>,
    until: Until,
    mut each: impl FnMut(TraceOutline),
) {
    let topo = world.topology();
    let per_tick = TRACES_PER_TICK * topo.entries.len();
    let reaches: Vec<bool> = topo
        .entries
        .iter()
        .map(|e| through.is_none_or(|x| may_write_span(world, e.service, x)))
        .collect();
    // Which services can lead to a span by `through`, for walks that stop once they cannot write one.
    let reach: Vec<bool> = match (through, until) {
        (Some(x), Until::Hit | Until::HitAndError) => topo
            .services
            .iter()
            .enumerate()
            .map(|(s, svc)| {
                instrumented(svc.kind()) && may_write_span(world, ServiceId(s as u16), x)
            })
            .collect(),
        _ => Vec::new(),
    };
    let mut reach_after = vec![
        false;
        if reach.is_empty() {
            0
        } else {
            topo.edges.len()
        }
    ];
    if !reach.is_empty() {
        for svc in &topo.services {
            let mut any = false;
            for &e in svc.out_edges.iter().rev() {
                any |= reach.get(topo.edges[e].to.index()) == Some(&true);
                if let Some(slot) = reach_after.get_mut(e) {
                    *slot = any;
                }
            }
        }
    }
    // Traces from entry points that cannot reach `through` only count towards `max`; when the window cannot
    // hold `max` traces, they need not even be started.
    let counts = max
        < window_ticks(world, start_ms, end_ms)
            .count()
            .saturating_mul(per_tick);
    let mut seen = 0usize;
    let mut settings = ClientSettings::default();
    for t in window_ticks(world, start_ms, end_ms) {
        for i in 0..per_tick {
            if !counts && !reaches[i % reaches.len()] {
                continue;
            }
            let Some((mut walk, entry, start)) =
                start_walk(world, None, through, std::mem::take(&mut settings), t, i)
            else {
                continue;
            };
            let root = start.div_euclid(1_000_000);
            if root >= start_ms && root < end_ms {
                if reaches[i % reaches.len()] {
                    walk.until = until;
                    walk.reach = &reach;
                    walk.reach_after = &reach_after;
                    walk.server(entry, None, start, 0, Mode::Free, None);
                    if through.is_none() || walk.hit {
                        each(TraceOutline {
                            tick: t,
                            index: i,
                            start_ns: start,
                            error: walk.error,
                        });
                    }
                }
                seen += 1;
                if seen >= max {
                    return;
                }
            }
            settings = walk.settings;
        }
    }
}

/// Whether a trace rooted at `entry` can hold a span written by `service`: spans are written by the services a
/// walk serves, the entry and the instrumented services reachable from it by calls (a superset of what any one
/// walk reaches, which stops at `MAX_DEPTH`).
fn may_write_span(world: &World, entry: ServiceId, service: ServiceId) -> bool {
    let topo = world.topology();
    let mut seen = vec![false; topo.len()];
    let mut stack = vec![entry];
    while let Some(s) = stack.pop() {
        if s == service {
            return true;
        }
        if std::mem::replace(&mut seen[s.index()], true) {
            continue;
        }
        for &e in &topo.services[s.index()].out_edges {
            let to = topo.edges[e].to;
            if instrumented(topo.service(to).kind()) && !seen[to.index()] {
                stack.push(to);
            }
        }
    }
    false
}

/// The traces of `outlines`, built in full, in the same order (those whose tick is no longer held are left out).
pub fn build_traces<'a>(
    world: &World,
    outlines: impl IntoIterator<Item = &'a TraceOutline>,
) -> Vec<Trace> {
    build_traces_in(world, outlines, SpanDetail::Full)
}

/// [`build_traces`], with spans holding `detail`.
fn build_traces_in<'a>(
    world: &World,
    outlines: impl IntoIterator<Item = &'a TraceOutline>,
    detail: SpanDetail,
) -> Vec<Trace> {
    let pods = PodNames::new(world);
    let mut settings = ClientSettings::default();
    outlines
        .into_iter()
        .filter_map(|o| generate(world, &pods, &mut settings, detail, o.tick, o.index))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trim_suffix_is_trim_end_matches() {
        for s in [
            "",
            "-svc",
            "cart-service",
            "a-service-service",
            "x-svc-service",
            "-worker-worker",
            "svc",
            "a-sv",
        ] {
            for suffix in ["-service", "-svc", "-worker", "aa", "a"] {
                assert_eq!(
                    trim_suffix(s, suffix),
                    s.trim_end_matches(suffix),
                    "{s:?} {suffix:?}"
                );
            }
        }
        assert_eq!(trim_suffix("aaa", "aa"), "aaa".trim_end_matches("aa"));
    }

    #[test]
    fn hex16_is_what_format_writes() {
        for v in [0, 1, 0xf, 0x10, u64::MAX, 1 << 63, 0x0123_4567_89ab_cdef] {
            let mut s = String::new();
            push_hex16(&mut s, v);
            assert_eq!(s, format!("{v:016x}"));
        }
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..10_000 {
            x = det::splitmix64(x);
            let mut s = String::from("ab");
            push_hex16(&mut s, x);
            assert_eq!(s, format!("ab{x:016x}"));
        }
    }
}
