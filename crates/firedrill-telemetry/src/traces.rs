//! Traces generated on demand from a tick's frames: a few sampled requests per tick walk the call graph, with
//! durations drawn from each service's latency distribution and failures from its error ratio at that tick.
//! A trace id encodes its tick and index, so any trace can be regenerated from its id alone.

use std::collections::BTreeMap;

use firedrill_world::frame::ErrorCause;
use firedrill_world::{ServiceId, World};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use serde::Serialize;

/// Span kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanKind {
    /// Handling an incoming request.
    Server,
    /// Making an outgoing call.
    Client,
}

/// Span status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanStatus {
    /// Succeeded.
    Ok,
    /// Failed.
    Error,
}

/// One span.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Span {
    /// Trace id, 32 hex digits.
    pub trace_id: String,
    /// Span id, 16 hex digits.
    pub span_id: String,
    /// Parent span id.
    pub parent_span_id: Option<String>,
    /// Service.
    pub service: String,
    /// Operation name.
    pub name: String,
    /// Kind.
    pub kind: SpanKind,
    /// Start, unix nanoseconds.
    pub start_ns: i64,
    /// Duration, nanoseconds.
    pub duration_ns: i64,
    /// Status.
    pub status: SpanStatus,
    /// Attributes.
    pub attributes: BTreeMap<String, String>,
}

/// A trace: spans in start order, root first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trace {
    /// Trace id.
    pub trace_id: String,
    /// Spans.
    pub spans: Vec<Span>,
}

/// Sampled root requests per entry point per tick.
pub const TRACES_PER_TICK: usize = 4;
const MAX_DEPTH: usize = 8;
const MAX_SPANS: usize = 200;

fn trace_id(world: &World, tick: u64, index: usize) -> String {
    let salt = world.seed().wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5EED;
    format!(
        "{:08x}{:04x}{:020x}",
        tick as u32,
        index as u16,
        salt as u128 & ((1u128 << 80) - 1)
    )
}

fn unit(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    // Box-Muller: traces are rendered rarely, so exactness beats speed here.
    let u1 = unit(rng).max(1e-12);
    let u2 = unit(rng);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

struct Walk<'a> {
    world: &'a World,
    tick: u64,
    trace_id: String,
    rng: ChaCha8Rng,
    spans: Vec<Span>,
}

impl Walk<'_> {
    fn next_span_id(&mut self) -> String {
        format!("{:016x}", self.rng.next_u64())
    }

    /// Generates the server span of `service` starting at `start_ns` and its subtree; returns (duration, error).
    fn server(
        &mut self,
        service: ServiceId,
        parent: Option<String>,
        start_ns: i64,
        depth: usize,
    ) -> (i64, bool) {
        let topo = self.world.topology();
        let frame = *self
            .world
            .history()
            .get(self.tick, service.index())
            .unwrap_or(self.world.frame(service));
        let span_id = self.next_span_id();
        let index = self.spans.len();
        let name = topo.service(service).name().to_string();
        self.spans.push(Span {
            trace_id: self.trace_id.clone(),
            span_id: span_id.clone(),
            parent_span_id: parent,
            service: name.clone(),
            name: format!(
                "{} {}",
                if depth == 0 { "GET" } else { "POST" },
                if depth == 0 {
                    "/api/v1/checkout".to_string()
                } else {
                    format!("/{name}/v1")
                }
            ),
            kind: SpanKind::Server,
            start_ns,
            duration_ns: 0,
            status: SpanStatus::Ok,
            attributes: BTreeMap::new(),
        });
        let sigma = frame.latency_sigma.max(0.05) as f64;
        let own_ms =
            (frame.latency_median_ms.max(0.1) as f64 * 0.3) * (sigma * normal(&mut self.rng)).exp();
        let mut cursor = start_ns + (own_ms * 0.3 * 1e6) as i64;
        let mut failed = unit(&mut self.rng) < frame.error_ratio();
        let mut child_failed = false;
        if depth < MAX_DEPTH {
            for &e in &topo.service(service).out_edges {
                let edge = &topo.edges[e];
                let calls = edge.per_request.floor() as usize
                    + (unit(&mut self.rng) < edge.per_request.fract()) as usize;
                for _ in 0..calls.min(3) {
                    if self.spans.len() >= MAX_SPANS {
                        break;
                    }
                    let (d, err) = self.client(
                        service,
                        edge.to,
                        edge.via_cache,
                        edge.timeout_ms,
                        &span_id,
                        cursor,
                        depth,
                    );
                    cursor += d;
                    child_failed |= err;
                }
            }
        }
        failed |= child_failed && unit(&mut self.rng) < 0.9;
        let duration = (cursor - start_ns) + (own_ms * 0.7 * 1e6) as i64;
        let span = &mut self.spans[index];
        span.duration_ns = duration.max(1000);
        let code = if failed {
            match frame.err_cause {
                ErrorCause::Unavailable | ErrorCause::Overload => "503",
                ErrorCause::UpstreamTimeout | ErrorCause::PoolTimeout | ErrorCause::LockTimeout => {
                    "504"
                }
                ErrorCause::RateLimited => "429",
                _ => "500",
            }
        } else {
            "200"
        };
        span.attributes
            .insert("http.status_code".into(), code.into());
        if failed {
            span.status = SpanStatus::Error;
            let kind = match frame.err_cause {
                ErrorCause::UpstreamTimeout => "timeout",
                ErrorCause::PoolTimeout => "pool_timeout",
                ErrorCause::DnsResolution => "dns",
                ErrorCause::TlsHandshake => "tls",
                ErrorCause::DiskFull => "io",
                ErrorCause::Unreachable => "connect",
                ErrorCause::LockTimeout => "lock_timeout",
                ErrorCause::RateLimited => "rate_limited",
                _ => "internal",
            };
            span.attributes.insert("error.type".into(), kind.into());
        }
        (span.duration_ns, failed)
    }

    #[allow(clippy::too_many_arguments)]
    fn client(
        &mut self,
        from: ServiceId,
        to: ServiceId,
        via_cache: Option<ServiceId>,
        timeout_ms: f64,
        parent: &str,
        start_ns: i64,
        depth: usize,
    ) -> (i64, bool) {
        let topo = self.world.topology();
        let span_id = self.next_span_id();
        let index = self.spans.len();
        let peer = topo.service(to).name().to_string();
        self.spans.push(Span {
            trace_id: self.trace_id.clone(),
            span_id: span_id.clone(),
            parent_span_id: Some(parent.to_string()),
            service: topo.service(from).name().to_string(),
            name: format!("call {peer}"),
            kind: SpanKind::Client,
            start_ns,
            duration_ns: 0,
            status: SpanStatus::Ok,
            attributes: BTreeMap::from([("peer.service".to_string(), peer)]),
        });
        let mut at = start_ns + 200_000;
        let mut failed = false;
        let mut hit = false;
        if let Some(cache) = via_cache {
            let frame = self
                .world
                .history()
                .get(self.tick, cache.index())
                .copied()
                .unwrap_or_default();
            let (d, err) = self.server(cache, Some(span_id.clone()), at, depth + 1);
            at += d;
            hit = !err && unit(&mut self.rng) < frame.cache_hit_ratio as f64;
        }
        if !hit {
            let (d, err) = self.server(to, Some(span_id), at, depth + 1);
            at += d;
            failed = err;
        }
        let mut duration = at - start_ns + 200_000;
        let timeout_ns = (timeout_ms * 1e6) as i64;
        if duration > timeout_ns {
            duration = timeout_ns;
            failed = true;
        }
        let span = &mut self.spans[index];
        span.duration_ns = duration;
        if failed {
            span.status = SpanStatus::Error;
        }
        (duration, failed)
    }
}

/// The traces sampled at one tick (up to `max`), oldest request first.
pub fn traces_at(world: &World, tick: u64, max: usize) -> Vec<Trace> {
    if world.history().tick(tick).is_none() {
        return Vec::new();
    }
    let entries = world.topology().entries.len();
    (0..(TRACES_PER_TICK * entries).min(max))
        .filter_map(|i| generate(world, tick, i))
        .collect()
}

fn generate(world: &World, tick: u64, index: usize) -> Option<Trace> {
    world.history().tick(tick)?;
    let entries = &world.topology().entries;
    let entry = entries.get(index % entries.len().max(1))?.service;
    let trace_id = trace_id(world, tick, index);
    let seed = world.seed() ^ (tick << 20) ^ index as u64 ^ 0x7ace;
    let mut walk = Walk {
        world,
        tick,
        trace_id: trace_id.clone(),
        rng: ChaCha8Rng::seed_from_u64(seed),
        spans: Vec::new(),
    };
    let tick_ns = (world.tick_s() * 1e9) as i64;
    let end_ns = crate::metrics::tick_ms(world, tick) * 1_000_000;
    let start = end_ns - tick_ns + (unit(&mut walk.rng) * tick_ns as f64 * 0.9) as i64;
    walk.server(entry, None, start, 0);
    Some(Trace {
        trace_id,
        spans: walk.spans,
    })
}

/// Regenerates a trace from its id; `None` if the id is malformed, foreign, or its tick is no longer held.
pub fn find_trace(world: &World, trace_id_hex: &str) -> Option<Trace> {
    let id = trace_id_hex.trim().to_ascii_lowercase();
    if id.len() != 32 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let tick = u64::from_str_radix(&id[0..8], 16).ok()?;
    let index = usize::from_str_radix(&id[8..12], 16).ok()?;
    if index >= TRACES_PER_TICK * world.topology().entries.len()
        || trace_id(world, tick, index) != id
    {
        return None;
    }
    generate(world, tick, index)
}

/// Every sampled trace whose root starts in `[start_ms, end_ms)`.
pub fn traces_between(world: &World, start_ms: i64, end_ms: i64, max: usize) -> Vec<Trace> {
    let ring = world.history();
    let mut out = Vec::new();
    for t in ring.first_tick()..ring.end_tick() {
        let end = crate::metrics::tick_ms(world, t);
        if end < start_ms || end - (world.tick_s() * 1000.0) as i64 >= end_ms {
            continue;
        }
        for tr in traces_at(world, t, usize::MAX) {
            let root = tr.spans[0].start_ns / 1_000_000;
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
