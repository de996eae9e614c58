//! Per-tick telemetry frames: the compact state record that every metric, log and trace is rendered from.
//!
//! One [`ServiceFrame`] per service per tick, plain data of fixed size, kept in a ring of bounded retention that
//! is allocated once. Rendering series from frames on demand (rather than writing every series every tick) keeps
//! the tick free of allocation and hashing.

use std::sync::Arc;

use crate::topology::MAX_REPLICAS;

/// Health of a service, derived from its frame (never set directly).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
#[repr(u8)]
pub enum Health {
    /// Within objectives.
    #[default]
    Healthy = 0,
    /// Noticeably worse: some errors, slow, or short of replicas.
    Degraded = 1,
    /// Failing a large share of requests or very slow.
    Unhealthy = 2,
    /// No ready replica.
    Down = 3,
}

impl Health {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Degraded => "degraded",
            Health::Unhealthy => "unhealthy",
            Health::Down => "down",
        }
    }
}

/// Why most failed requests of a service failed this tick (drives log lines and status codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum ErrorCause {
    /// No notable failures.
    #[default]
    None = 0,
    /// Its own background errors or a bad version.
    Internal,
    /// Overloaded: requests shed or timed out in its own queue.
    Overload,
    /// No ready replica.
    Unavailable,
    /// A dependency timed out (see `err_dep`).
    UpstreamTimeout,
    /// A dependency answered with errors (see `err_dep`).
    UpstreamError,
    /// Waiting for a pooled connection timed out (see `err_dep`).
    PoolTimeout,
    /// The volume is full.
    DiskFull,
    /// TLS handshakes to a dependency failed (see `err_dep`).
    TlsHandshake,
    /// Name resolution failed (see `err_dep`).
    DnsResolution,
    /// A dependency could not be reached (see `err_dep`).
    Unreachable,
    /// Waiting on a row lock timed out.
    LockTimeout,
    /// Rejected by the rate limiter.
    RateLimited,
}

impl ErrorCause {
    /// The 5xx status code the server errors of a tick with this cause are counted under: 503 without a ready
    /// replica, 504 for timeouts and overload, 500 for everything else. A rate-limited tick's server errors (its
    /// rejections are 429s, counted apart) are 500s.
    pub fn server_error_code(self) -> u16 {
        match self {
            ErrorCause::Unavailable => 503,
            ErrorCause::UpstreamTimeout
            | ErrorCause::PoolTimeout
            | ErrorCause::LockTimeout
            | ErrorCause::Overload => 504,
            _ => 500,
        }
    }
}

/// One service's state at the end of one tick.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ServiceFrame {
    /// Requests per second arriving.
    pub offered_rps: f32,
    /// Requests per second admitted past the rate limiter to a ready replica.
    pub admitted_rps: f32,
    /// Requests per second answered with a server error (5xx).
    pub error_rps: f32,
    /// Requests per second rejected by the rate limiter (429).
    pub rejected_rps: f32,
    /// Median latency of answered requests, in ms.
    pub latency_median_ms: f32,
    /// Log-normal spread of latency.
    pub latency_sigma: f32,
    /// CPU in use, in cores, over all replicas.
    pub cpu_cores: f32,
    /// CPU limit per replica, in cores.
    pub cpu_limit_cores: f32,
    /// Memory limit per replica, in MiB.
    pub memory_limit_mb: f32,
    /// Working set per replica slot, in MiB (0 for an empty or dead slot).
    pub replica_memory_mb: [f32; MAX_REPLICAS],
    /// Ready replicas.
    pub ready: u8,
    /// Desired replicas.
    pub desired: u8,
    /// Pods that exist (any phase but empty).
    pub pods: u8,
    /// Pods waiting for cluster quota.
    pub pending: u8,
    /// Index of the version most replicas run.
    pub version: u8,
    /// Why most failures happened.
    pub err_cause: ErrorCause,
    /// The dependency involved in `err_cause`, if any (`u16::MAX` if none).
    pub err_dep: u16,
    /// Derived health.
    pub health: Health,
    /// Pooled connections in use (sum over the service's pools, per replica average).
    pub pool_in_use: f32,
    /// Pool size per replica (sum over the service's pools).
    pub pool_max: f32,
    /// Calls per second that gave up waiting for a pooled connection.
    pub pool_timeouts_rps: f32,
    /// Mean wait for a pooled connection, in ms.
    pub pool_wait_ms: f32,
    /// Mean wait on row locks per query (databases), in ms.
    pub lock_wait_ms: f32,
    /// Volume used, in GiB.
    pub disk_used_gb: f32,
    /// Volume size, in GiB (0 without a volume).
    pub disk_size_gb: f32,
    /// Seconds until the certificate loaded by the oldest ready replica expires (negative once expired; NaN
    /// without TLS).
    pub cert_expires_in_s: f32,
    /// Outgoing calls per second that failed name resolution.
    pub dns_failures_rps: f32,
    /// Outgoing calls per second that failed the TLS handshake.
    pub tls_failures_rps: f32,
    /// Messages per second published.
    pub published_hz: f32,
    /// Messages per second delivered to this service as a reader.
    pub delivered_hz: f32,
    /// Messages per second consumed.
    pub consumed_hz: f32,
    /// Messages waiting in this service's subscriptions.
    pub queue_depth: f32,
    /// Subscriptions with no matching writer (QoS incompatible).
    pub qos_mismatches: u8,
    /// Cache hit ratio (caches).
    pub cache_hit_ratio: f32,
    /// Database connections open (databases).
    pub db_connections: f32,
    /// Log lines per second written (before any pipeline drop).
    pub log_lines_per_s: f32,
    /// Share of log lines the telemetry pipeline drops, in [0, 1].
    pub log_drop_ratio: f32,
    /// Requests answered since the world began (all outcomes).
    pub requests_total: f64,
    /// Server errors since the world began.
    pub errors_total: f64,
    /// Rate-limited requests since the world began.
    pub rejected_total: f64,
    /// CPU seconds since the world began.
    pub cpu_seconds_total: f64,
    /// Container restarts since the world began.
    pub restarts_total: u32,
    /// OOM kills since the world began.
    pub oom_kills_total: u32,
}

impl ServiceFrame {
    /// Share of offered requests that failed (5xx or 429).
    pub fn error_ratio(&self) -> f64 {
        if self.offered_rps <= 0.0 {
            0.0
        } else {
            ((self.error_rps + self.rejected_rps) / self.offered_rps).clamp(0.0, 1.0) as f64
        }
    }

    /// 99th percentile latency, in ms.
    pub fn p99_ms(&self) -> f64 {
        self.latency_median_ms as f64 * (2.326_347_874 * self.latency_sigma as f64).exp()
    }

    /// Average working set over live replicas, in MiB.
    pub fn memory_mb_avg(&self) -> f64 {
        let (sum, n) = self
            .replica_memory_mb
            .iter()
            .filter(|m| **m > 0.0)
            .fold((0.0f64, 0u32), |(s, n), m| (s + *m as f64, n + 1));
        if n == 0 { 0.0 } else { sum / n as f64 }
    }

    /// Highest working set over replicas, in MiB.
    pub fn memory_mb_max(&self) -> f64 {
        self.replica_memory_mb
            .iter()
            .fold(0.0f64, |m, x| m.max(*x as f64))
    }

    /// CPU utilisation of the limit, in [0, 1].
    pub fn cpu_utilisation(&self) -> f64 {
        let limit = self.cpu_limit_cores as f64 * self.ready.max(1) as f64;
        if limit <= 0.0 {
            0.0
        } else {
            (self.cpu_cores as f64 / limit).clamp(0.0, 1.0)
        }
    }
}

/// The 5xx codes [`ServiceTotals::server_errors`] counts, in its order.
pub const SERVER_ERROR_CODES: [u16; 3] = [500, 503, 504];

/// Number of latency-histogram buckets, `+Inf` included (the last).
pub const LATENCY_BUCKET_COUNT: usize = crate::world::LATENCY_BUCKETS_S.len() + 1;

/// One service's cumulative totals at the end of one tick, for the counters a frame only holds as rates.
///
/// Each is the running sum, since recording began, of a frame rate times the tick length (only finite positive
/// rates count), accumulated in tick order in `f64` at record time. Rendering a counter then reads the window's
/// ticks only, instead of integrating the whole history on every query; the sums are the very ones a renderer
/// integrating from the first recorded tick would compute, so the rendered values are the same to the bit.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ServiceTotals {
    /// Server errors by status code, in [`SERVER_ERROR_CODES`] order: each tick's `error_rps` goes to the code of
    /// its `err_cause` ([`ErrorCause::server_error_code`]). Errors from before recording began count as 500.
    pub server_errors: [f64; 3],
    /// Calls that gave up waiting for a pooled connection (`pool_timeouts_rps`).
    pub pool_timeouts: f64,
    /// Outgoing calls that failed name resolution (`dns_failures_rps`).
    pub dns_failures: f64,
    /// Outgoing calls that failed the TLS handshake (`tls_failures_rps`).
    pub tls_failures: f64,
    /// Messages published (`published_hz`).
    pub published: f64,
    /// Messages consumed (`consumed_hz`).
    pub consumed: f64,
    /// Latency-histogram counts of answered requests (`admitted_rps - error_rps`), cumulative over the bucket
    /// bounds of [`crate::world::LATENCY_BUCKETS_S`] then `+Inf`, from each tick's log-normal latency (its median
    /// and sigma at full precision, which the frame holds rounded to `f32`). Fractional; kept for services that
    /// serve HTTP only ([`crate::spec::ServiceKind::serves_http`]), zero for the others.
    pub latency_buckets: [f64; LATENCY_BUCKET_COUNT],
    /// Latency sum of answered requests, in seconds (the log-normal mean times the count; same services).
    pub latency_sum_s: f64,
}

/// A ring of frames: `capacity_ticks` ticks of `n` services, allocated once.
///
/// The ticks up to some point may be [frozen](FrameRing::freeze): moved, without copying, into storage shared
/// with every clone, so that forking a world copies only the ticks pushed since (an incident freezes its history
/// at the page; an episode's snapshot then costs its own ticks, not the hour before). The ring reads the same
/// either way: which ticks are held, and what, depends only on what was pushed.
#[derive(Debug)]
pub struct FrameRing {
    n: usize,
    capacity_ticks: usize,
    /// Ticks `frozen.first..frozen_end`, shared and never written again (empty when nothing was frozen).
    frozen: Arc<Frozen>,
    /// One past the last frozen tick; the private ring's ticks count from here (its `origin`).
    frozen_end: u64,
    /// Frames of the ticks pushed since the freeze, tick-major; slot `((tick - origin) % capacity) * n + service`.
    frames: Vec<ServiceFrame>,
    /// Totals, laid out as `frames` (kept apart so that reading gauges does not drag them through the cache).
    totals: Vec<ServiceTotals>,
    /// The first tick still held.
    first_tick: u64,
    /// One past the last tick held.
    end_tick: u64,
    /// The first tick the private ring holds: slots count from it, so tick `origin` sits in slot 0.
    origin: u64,
}

/// The frozen ticks of a [`FrameRing`], in tick order from `first`.
#[derive(Debug, Default)]
struct Frozen {
    first: u64,
    frames: Vec<ServiceFrame>,
    totals: Vec<ServiceTotals>,
}

impl Clone for FrameRing {
    // Cloning keeps the full capacity, so a forked world's ticks do not allocate either; the frozen ticks are
    // shared, not copied.
    fn clone(&self) -> Self {
        let mut frames = Vec::with_capacity(self.frames.capacity());
        frames.extend_from_slice(&self.frames);
        let mut totals = Vec::with_capacity(self.totals.capacity());
        totals.extend_from_slice(&self.totals);
        FrameRing {
            n: self.n,
            capacity_ticks: self.capacity_ticks,
            frozen: Arc::clone(&self.frozen),
            frozen_end: self.frozen_end,
            frames,
            totals,
            first_tick: self.first_tick,
            end_tick: self.end_tick,
            origin: self.origin,
        }
    }
}

impl FrameRing {
    /// An empty ring for `n` services holding `capacity_ticks` ticks.
    pub fn new(n: usize, capacity_ticks: usize) -> FrameRing {
        let capacity_ticks = capacity_ticks.max(1);
        FrameRing {
            n,
            capacity_ticks,
            frozen: Arc::default(),
            frozen_end: 0,
            frames: Vec::with_capacity(n * capacity_ticks),
            totals: Vec::with_capacity(n * capacity_ticks),
            first_tick: 0,
            end_tick: 0,
            origin: 0,
        }
    }

    /// Stores the frames and totals of tick `tick` (must be the next tick), evicting the oldest tick when full.
    pub fn push(&mut self, tick: u64, frames: &[ServiceFrame], totals: &[ServiceTotals]) {
        debug_assert_eq!(frames.len(), self.n);
        debug_assert_eq!(totals.len(), self.n);
        debug_assert!(self.end_tick == 0 || tick == self.end_tick);
        if self.is_empty() {
            self.first_tick = tick;
            self.origin = tick;
        }
        if self.frames.len() < self.n * self.capacity_ticks {
            self.frames.extend_from_slice(frames);
            self.totals.extend_from_slice(totals);
        } else {
            let slot = ((tick - self.origin) as usize % self.capacity_ticks) * self.n;
            self.frames[slot..slot + self.n].copy_from_slice(frames);
            self.totals[slot..slot + self.n].copy_from_slice(totals);
        }
        self.end_tick = tick + 1;
        // Frozen ticks count against the capacity too: the ring holds the newest `capacity_ticks` ticks pushed,
        // frozen or not, so that freezing changes nothing a reader sees.
        if self.end_tick - self.first_tick > self.capacity_ticks as u64 {
            self.first_tick = self.end_tick - self.capacity_ticks as u64;
        }
    }

    /// Moves every tick held into storage shared with clones, leaving the ring's own storage empty (allocated
    /// afresh at full capacity, so later pushes still do not allocate). Nothing a reader sees changes. Does
    /// nothing when ticks are frozen already or the ring has wrapped (its slots are then not in tick order), and
    /// for an empty ring.
    pub fn freeze(&mut self) {
        if self.frozen_end > 0 || self.frames.is_empty() || self.is_full() {
            return;
        }
        let capacity = self.n * self.capacity_ticks;
        let frames = std::mem::replace(&mut self.frames, Vec::with_capacity(capacity));
        let totals = std::mem::replace(&mut self.totals, Vec::with_capacity(capacity));
        // Not wrapped: the private ring's slots run in tick order from its origin, which is the first tick held.
        self.frozen = Arc::new(Frozen {
            first: self.origin,
            frames,
            totals,
        });
        self.frozen_end = self.end_tick;
        self.origin = self.end_tick;
    }

    /// How many ticks the ring holds before it evicts the oldest.
    pub fn capacity_ticks(&self) -> usize {
        self.capacity_ticks
    }

    /// Whether nothing was ever pushed.
    pub fn is_empty(&self) -> bool {
        self.end_tick == 0 && self.frames.is_empty()
    }

    /// Whether the next push evicts a tick.
    pub fn is_full(&self) -> bool {
        self.end_tick - self.first_tick >= self.capacity_ticks as u64
    }

    /// The frames of the oldest tick held.
    pub fn oldest(&self) -> Option<&[ServiceFrame]> {
        self.tick(self.first_tick)
    }

    /// First tick held.
    pub fn first_tick(&self) -> u64 {
        self.first_tick
    }

    /// One past the last tick held.
    pub fn end_tick(&self) -> u64 {
        self.end_tick
    }

    /// Where tick `tick` sits: in the frozen storage (`true`) or the ring's own, and at which slot; `None` when
    /// the tick is not held.
    #[inline]
    fn slot(&self, tick: u64) -> Option<(bool, usize)> {
        if tick < self.first_tick || tick >= self.end_tick {
            return None;
        }
        Some(if tick < self.frozen_end {
            (true, (tick - self.frozen.first) as usize * self.n)
        } else {
            (
                false,
                ((tick - self.origin) as usize % self.capacity_ticks) * self.n,
            )
        })
    }

    /// A tick's row of one of the ring's two tables (frames or totals), from the frozen storage or the ring's
    /// own, if held.
    #[inline]
    fn row<'a, T>(&self, tick: u64, frozen: &'a [T], own: &'a [T]) -> Option<&'a [T]> {
        let (in_frozen, slot) = self.slot(tick)?;
        let table = if in_frozen { frozen } else { own };
        table.get(slot..slot + self.n)
    }

    /// All services' frames at a tick, if held.
    #[inline]
    pub fn tick(&self, tick: u64) -> Option<&[ServiceFrame]> {
        self.row(tick, &self.frozen.frames, &self.frames)
    }

    /// One service's frame at a tick, if held.
    #[inline]
    pub fn get(&self, tick: u64, service: usize) -> Option<&ServiceFrame> {
        self.tick(tick).and_then(|f| f.get(service))
    }

    /// All services' totals at a tick, if held (indexed by service, as [`FrameRing::tick`]).
    #[inline]
    pub fn tick_totals(&self, tick: u64) -> Option<&[ServiceTotals]> {
        self.row(tick, &self.frozen.totals, &self.totals)
    }

    /// One service's totals at a tick, if held.
    #[inline]
    pub fn totals(&self, tick: u64, service: usize) -> Option<&ServiceTotals> {
        if service >= self.n {
            return None;
        }
        self.tick_totals(tick).and_then(|t| t.get(service))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(x: f32) -> [ServiceFrame; 1] {
        [ServiceFrame {
            offered_rps: x,
            ..ServiceFrame::default()
        }]
    }

    fn totals(x: f64) -> [ServiceTotals; 1] {
        [ServiceTotals {
            published: x,
            ..ServiceTotals::default()
        }]
    }

    #[test]
    fn every_tick_reads_back_its_own_frame_before_and_after_wrapping() {
        let mut ring = FrameRing::new(1, 4);
        for t in 1..=10u64 {
            ring.push(t, &frame(t as f32), &totals(t as f64));
            for k in ring.first_tick()..ring.end_tick() {
                assert_eq!(
                    ring.get(k, 0).map(|f| f.offered_rps),
                    Some(k as f32),
                    "after pushing {t}, tick {k}"
                );
                assert_eq!(
                    ring.totals(k, 0).map(|f| f.published),
                    Some(k as f64),
                    "after pushing {t}, tick {k}"
                );
                assert_eq!(
                    ring.tick_totals(k).map(|f| f[0].published),
                    Some(k as f64),
                    "after pushing {t}, tick {k}"
                );
            }
        }
        assert!(ring.tick_totals(6).is_none() && ring.tick_totals(11).is_none());
        assert_eq!(ring.first_tick(), 7);
        assert!(ring.get(6, 0).is_none() && ring.get(11, 0).is_none());
        assert!(ring.totals(6, 0).is_none() && ring.totals(11, 0).is_none());
        assert!(ring.totals(8, 1).is_none());
    }

    /// A tick's frame, totals and totals of all services, as a ring reads them (service 0 only).
    type TickRead = (Option<f32>, Option<f64>, Option<f64>);

    /// Every read a ring answers: which ticks it holds and, for each tick from before the first to past the
    /// last, its frames and totals (one service).
    fn reads(ring: &FrameRing) -> (u64, u64, bool, Vec<TickRead>) {
        let reads = (0..ring.end_tick() + 2)
            .map(|k| {
                (
                    ring.get(k, 0).map(|f| f.offered_rps),
                    ring.totals(k, 0).map(|t| t.published),
                    ring.tick_totals(k).map(|t| t[0].published),
                )
            })
            .collect();
        (ring.first_tick(), ring.end_tick(), ring.is_full(), reads)
    }

    proptest::proptest! {
        /// Freezing, at any point, and cloning a frozen ring change nothing it reads, however far it then wraps;
        /// a clone pushed further does not change the ring it was cloned from.
        #[test]
        fn a_frozen_ring_and_its_clones_read_as_a_ring_never_frozen(
            capacity in 1usize..7,
            start in 0u64..3,
            before in 0u64..12,
            after in 0u64..20,
            refreeze in proptest::bool::ANY,
        ) {
            let (mut plain, mut frozen) = (FrameRing::new(1, capacity), FrameRing::new(1, capacity));
            let mut t = start;
            for _ in 0..before {
                plain.push(t, &frame(t as f32), &totals(t as f64));
                frozen.push(t, &frame(t as f32), &totals(t as f64));
                t += 1;
            }
            frozen.freeze();
            proptest::prop_assert_eq!(reads(&frozen), reads(&plain));
            let untouched = frozen.clone();
            let seen = reads(&untouched);
            let mut fork = frozen.clone();
            for _ in 0..after {
                plain.push(t, &frame(t as f32), &totals(t as f64));
                fork.push(t, &frame(t as f32), &totals(t as f64));
                if refreeze {
                    fork.freeze();
                }
                t += 1;
                proptest::prop_assert_eq!(reads(&fork), reads(&plain));
            }
            proptest::prop_assert_eq!(reads(&untouched), seen);
        }
    }

    #[test]
    fn freezing_moves_the_ticks_into_storage_clones_share() {
        let mut ring = FrameRing::new(1, 8);
        for t in 1..=5u64 {
            ring.push(t, &frame(t as f32), &totals(t as f64));
        }
        ring.freeze();
        assert!(ring.frames.is_empty() && ring.frozen.frames.len() == 5);
        let fork = ring.clone();
        assert!(Arc::ptr_eq(&ring.frozen, &fork.frozen));
        // A ring that has wrapped is left as it is.
        let mut wrapped = FrameRing::new(1, 2);
        for t in 1..=3u64 {
            wrapped.push(t, &frame(t as f32), &totals(t as f64));
        }
        wrapped.freeze();
        assert!(wrapped.frozen.frames.is_empty() && wrapped.frames.len() == 2);
    }
}
