//! The world: per-service state, the tick that advances it, and its read accessors.
//!
//! Everything here is causal: a tick computes load, capacity, latency and errors from state and topology, then
//! evolves resources (memory, pools, disks, certificates, queues) from those. Health is derived in the frame and
//! never stored. All randomness comes from the world's one seeded generator.

// Per-slot arrays (replicas, frames, scratch) are walked together by index, which reads better than zips.
#![allow(clippy::needless_range_loop)]

use std::collections::BTreeMap;
use std::sync::Arc;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

use crate::changes::ChangeRecord;
use crate::config::ConfigEffects;
use crate::events::{Event, EventKind, EventLog};
use crate::frame::{
    ErrorCause, FrameRing, Health, LATENCY_BUCKET_COUNT, ServiceFrame, ServiceTotals,
};
use crate::normal::{std_normal_cdf, upper_tail_within_7};
use crate::spec::{Behaviour, Qos, ServiceKind, ServiceSpec};
use crate::topology::{MAX_REPLICAS, Service, ServiceId, Topology};

/// Upper bounds of the latency histogram buckets, in seconds (the classic Prometheus defaults).
pub const LATENCY_BUCKETS_S: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Natural logarithms of [`LATENCY_BUCKETS_S`] in milliseconds (`f64::ln` is not `const`; a test checks them).
const LN_LATENCY_BUCKETS_MS: [f64; 11] = [
    1.609_437_912_434_100_3,
    std::f64::consts::LN_10,
    3.218_875_824_868_200_6,
    3.912_023_005_428_146,
    4.605_170_185_988_092,
    5.521_460_917_862_246,
    6.214_608_098_422_191,
    6.907_755_278_982_137,
    7.824_046_010_856_292,
    8.517_193_191_416_238,
    9.210_340_371_976_184,
];

/// How a world is built.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WorldOptions {
    /// Ticks of frames kept (default: 6 hours at 15 s).
    pub retention_ticks: usize,
    /// Events kept.
    pub event_capacity: usize,
    /// Unix time of the world's second zero, for rendering timestamps.
    pub epoch_unix_s: i64,
}

impl Default for WorldOptions {
    fn default() -> Self {
        WorldOptions {
            retention_ticks: 1440,
            event_capacity: 16_384,
            epoch_unix_s: 1_772_434_800,
        }
    }
}

/// Lifecycle phase of a replica slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    /// No pod.
    #[default]
    Empty,
    /// Waiting for cluster quota.
    Pending,
    /// Process started, not yet ready.
    Starting,
    /// Ready and serving.
    Running,
    /// Crashed; waiting for the next start.
    BackOff,
    /// Shutting down.
    Terminating,
}

/// One replica slot.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Replica {
    /// Phase.
    pub phase: Phase,
    /// When the current phase ends (Starting, BackOff, Terminating).
    pub until_s: f64,
    /// When the current process started.
    pub started_s: f64,
    /// Version index it runs.
    pub version: u8,
    /// Steady (non-leaked) working set, MiB.
    pub mem_base_mb: f64,
    /// Leaked memory, MiB.
    pub leaked_mb: f64,
    /// Leaked pooled connections.
    pub leaked_conns: f64,
    /// Container restarts of this pod.
    pub restarts: u32,
    /// Next back-off, seconds.
    pub backoff_s: f64,
    /// Expiry of the certificate this process loaded.
    pub cert_expiry_s: f64,
    /// Pod serial number (names the pod).
    pub serial: u32,
    /// Per-replica jitter in [-1, 1], fixed at creation, so replicas do not move in lock-step.
    pub jitter: f64,
}

impl Replica {
    /// Whether the pod exists and counts against quota.
    pub fn is_scheduled(&self) -> bool {
        matches!(
            self.phase,
            Phase::Starting | Phase::Running | Phase::BackOff | Phase::Terminating
        )
    }

    /// Whether the pod exists and is not going away.
    pub fn is_live(&self) -> bool {
        !matches!(self.phase, Phase::Empty | Phase::Terminating)
    }
}

/// Mutable state of one service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceState {
    /// Replica slots.
    pub replicas: [Replica; MAX_REPLICAS],
    /// Slots in use: every slot from here on is empty. Pods take the lowest free slot, so this stays close to
    /// the replica count and per-tick loops need not walk all sixteen slots.
    pub used: u8,
    /// Desired replicas.
    pub desired: u32,
    /// Version index the deployment targets.
    pub version: u8,
    /// Memory limit per pod, MiB (pod template).
    pub memory_mb: u32,
    /// CPU limit per pod, millicores (pod template).
    pub cpu_millis: u32,
    /// Configuration.
    pub config: BTreeMap<String, String>,
    /// Parsed effect of the configuration.
    pub fx: ConfigEffects,
    /// Enabled flags, bit per flag index.
    pub flags: u64,
    /// Autoscaler floor (raised when someone scales by hand).
    pub hpa_min: u32,
    /// Since when the autoscaler has wanted fewer replicas.
    pub hpa_low_since: Option<f64>,
    /// Volume size, GiB.
    pub disk_size_gb: f64,
    /// Data on the volume, GiB.
    pub disk_data_gb: f64,
    /// Logs on the volume, GiB.
    pub disk_log_gb: f64,
    /// Share of its CPU limit the service actually gets (noisy neighbours).
    pub cpu_share: f64,
    /// Whether its network is detached.
    pub detached: bool,
    /// Multiple of the load arriving at the service.
    pub load_factor: f64,
    /// Extra requests per second from outside (a client hammering one API).
    pub extra_rps: f64,
    /// Extra error ratio (external dependency outage).
    pub outage_error_ratio: f64,
    /// Latency factor (external dependency degradation).
    pub outage_latency_factor: f64,
    /// Expiry of the certificate currently in the secret.
    pub secret_cert_expiry_s: f64,
    /// When a renewed certificate lands in the secret, and its expiry.
    pub cert_renewal: Option<(f64, f64)>,
    /// Rate limiter tokens.
    pub tokens: f64,
    /// Cumulative counters.
    pub requests_total: f64,
    /// Cumulative server errors.
    pub errors_total: f64,
    /// Cumulative rate-limited requests.
    pub rejected_total: f64,
    /// Cumulative CPU seconds.
    pub cpu_seconds_total: f64,
    /// Cumulative restarts.
    pub restarts_total: u32,
    /// Cumulative OOM kills.
    pub oom_kills_total: u32,
    /// When each throttled event kind was last logged (see `EVENT_SLOTS`).
    last_event_s: [f64; EVENT_SLOTS],
}

impl ServiceState {
    /// The replica slots in use.
    #[inline]
    pub fn slots(&self) -> &[Replica] {
        &self.replicas[..self.used as usize]
    }

    /// Shrinks `used` past trailing empty slots.
    fn trim_used(&mut self) {
        while self.used > 0 && self.replicas[self.used as usize - 1].phase == Phase::Empty {
            self.used -= 1;
        }
    }
}

const EVENT_SLOTS: usize = 8;
const SLOT_POOL: usize = 0;
const SLOT_DISK: usize = 1;
const SLOT_CERT: usize = 2;
const SLOT_LOCK: usize = 3;
const SLOT_QUEUE: usize = 4;
const SLOT_RATE: usize = 5;
const SLOT_SCHED: usize = 6;
const SLOT_TELEMETRY: usize = 7;

/// How often a condition that persists is logged again, in seconds.
const EVENT_REPEAT_S: f64 = 60.0;

/// Per-reader subscription state (flattened over topics).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Subscription {
    /// Topic index.
    pub topic: u16,
    /// Reader index within the topic.
    pub reader: u16,
    /// Reading service.
    pub service: ServiceId,
    /// Requested QoS (a fault can change it).
    pub qos: Qos,
    /// Messages waiting.
    pub depth: f64,
}

/// Per-writer publication state (flattened over topics).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Publication {
    /// Topic index.
    pub topic: u16,
    /// Writing service.
    pub service: ServiceId,
    /// Offered QoS (a fault can change it).
    pub qos: Qos,
    /// Nominal rate.
    pub rate_hz: f64,
}

/// One service's working values for a tick, kept together: the passes of the tick read and write several of them
/// per service, so one bounds check and one run of cache lines serve them all.
#[derive(Debug, Clone, Copy, Default)]
struct Work {
    /// Requests per second arriving (entry load, calls, load factor and extra load).
    offered: f64,
    /// The part of `offered` from outside (entry points and extra load), which TLS handshakes can fail.
    entry: f64,
    admitted: f64,
    rejected: f64,
    unavailable: f64,
    err_seen: f64,
    median_ms: f64,
    sigma: f64,
    /// `ln median_ms` and `1 / sigma`, taken once per service for the callers' timeout tails and the histogram.
    ln_median: f64,
    inv_sigma: f64,
    /// Share of ready replicas serving an expired certificate.
    tls_bad: f64,
    lock_load: f64,
    lock_hold_sum: f64,
    lock_calls: f64,
    ready: u32,
    /// The version most live replicas run.
    version: u8,
    /// The behaviour of `version` with the enabled flags.
    behaviour: Behaviour,
    /// The (version, flags) `behaviour` was combined for; kept across ticks.
    behaviour_key: Option<(u8, u64)>,
    /// CPU seconds per request at the behaviour's cost; kept across ticks with `behaviour`.
    cpu_cost: f64,
    /// The CPU limit per pod `cpu_scale` and `cpu_limit` were computed for; kept across ticks.
    cpu_millis_key: Option<u32>,
    /// The pod template's CPU over the spec's, and the pod template's CPU in cores.
    cpu_scale: f64,
    cpu_limit: f64,
    /// Whether some replica may hold leaked pooled connections; kept across ticks. Leaks only grow in
    /// `resources`, which sets it, so while it is false every slot's `leaked_conns` is exactly zero.
    conn_leaks: bool,
    /// What the passes read from the service's replica slots, valid while `slots_known`; kept across ticks.
    slots: SlotSummary,
    /// Whether `slots` describes the slots as they stand: cleared by every change of a slot's phase, times,
    /// back-off, version or certificate, of `used` and of the deployment's version ([`World::slots_changed`]).
    slots_known: bool,
    /// Whether `ready`, `version`, `behaviour`, the CPU terms and a zero `tls_bad` are those of the slots,
    /// flags and pod template as they stand, with no certificate expired by `slots.oldest_cert_s`: then traffic
    /// keeps them. Cleared with `slots_known` (flags and template change only through `service_mut`).
    settled: bool,
    /// The log lines per second the service writes apart from its errors' (the spec's rate for each ready
    /// replica at the configured level), for the telemetry pipeline; kept with the settled values.
    log_lines_base: f64,
}

/// What a tick's passes need from one service's replica slots. These change only when a pod is created, started,
/// crashed, terminated or changes phase, or an operation touches the service, so a quiet service keeps one across
/// ticks and its passes skip walking the slots.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct SlotSummary {
    /// The lifecycle's census, against the deployment's version.
    census: Census,
    /// The earliest end of a timed phase (starting, back-off, terminating); infinite without one. A transition is
    /// due at `now` exactly when `now >= until_s` of some slot, that is of this earliest one.
    until_s: f64,
    /// The earliest start of a running pod whose back-off is not yet reset to 10 s; infinite without one.
    /// `now - started_s` falls as `started_s` rises (rounding is monotone), so some such pod has run for ten
    /// minutes exactly when this earliest one has.
    backoff_started_s: f64,
    /// Running pods.
    ready: u32,
    /// The earliest certificate expiry among running pods (infinite without one): before it, none has expired.
    oldest_cert_s: f64,
    /// The version most live replicas run (the deployment's without live replicas).
    version: u8,
}

impl SlotSummary {
    /// Walks the slots in use.
    fn of(st: &ServiceState) -> SlotSummary {
        let target = st.version;
        let mut s = SlotSummary {
            until_s: f64::INFINITY,
            backoff_started_s: f64::INFINITY,
            oldest_cert_s: f64::INFINITY,
            ..SlotSummary::default()
        };
        let mut first_live: Option<u8> = None;
        let mut mixed = false;
        for r in st.slots() {
            match r.phase {
                Phase::Running => {
                    s.ready += 1;
                    if r.cert_expiry_s < s.oldest_cert_s {
                        s.oldest_cert_s = r.cert_expiry_s;
                    }
                    if r.backoff_s != 10.0 && r.started_s < s.backoff_started_s {
                        s.backoff_started_s = r.started_s;
                    }
                }
                Phase::Starting | Phase::BackOff | Phase::Terminating => {
                    if r.until_s < s.until_s {
                        s.until_s = r.until_s;
                    }
                }
                Phase::Empty | Phase::Pending => {}
            }
            if r.is_live() {
                match first_live {
                    None => first_live = Some(r.version),
                    Some(v) => mixed |= v != r.version,
                }
            }
            s.census.count(r, target);
        }
        s.version = if mixed {
            running_version_of(st)
        } else {
            first_live.unwrap_or(st.version)
        };
        s
    }
}

/// Scratch reused every tick, so ticking never allocates.
#[derive(Debug, Clone, Default)]
struct Scratch {
    /// Per service.
    work: Vec<Work>,
    /// Per edge: calls per second this tick, retries included.
    edge_calls: Vec<f64>,
    /// Per edge: the last timeout in effect and its logarithm (configuration rarely changes it).
    edge_ln_timeout: Vec<(f64, f64)>,
    /// One bit per service (service `i` is bit `i % 64` of word `i / 64`): whether its frame shows a condition
    /// that traffic logs (pool exhausted, lock waits, rate limiting). Set by traffic's backward pass, cleared by
    /// the log pass that reads it, which visits only the services set, in index order.
    log_due: Vec<u64>,
    /// Per edge: the series of [`FailureSeries`] for its calls per request (capped at 50).
    edge_series: Vec<FailureSeries>,
}

/// Counts over a service's replica slots that reconciling needs, taken while the lifecycle walks them.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Census {
    /// Live pods (any phase but empty and terminating).
    live: usize,
    /// Live pods of another version than the deployment's.
    old_live: usize,
    /// Ready pods of the deployment's version.
    new_ready: usize,
    /// Pods waiting for quota.
    pending: usize,
}

impl Census {
    /// Counts one slot, with `target` the deployment's version.
    #[inline]
    fn count(&mut self, r: &Replica, target: u8) {
        if r.is_live() {
            self.live += 1;
            if r.version != target {
                self.old_live += 1;
            } else if r.phase == Phase::Running {
                self.new_ready += 1;
            }
        }
        self.pending += (r.phase == Phase::Pending) as usize;
    }
}

/// The simulated system.
#[derive(Debug, Clone)]
pub struct World {
    topology: Arc<Topology>,
    seed: u64,
    rng: ChaCha8Rng,
    tick: u64,
    now_s: f64,
    epoch_unix_s: i64,
    services: Vec<ServiceState>,
    /// Per edge: probability an attempt failed last tick (drives retries).
    edge_pfail: Vec<f64>,
    subscriptions: Vec<Subscription>,
    publications: Vec<Publication>,
    traffic_factor: f64,
    pod_serial: u32,
    frames: Vec<ServiceFrame>,
    /// Per service: totals at the end of the last tick (the running sums [`ServiceTotals`] describes).
    totals: Vec<ServiceTotals>,
    ring: FrameRing,
    events: EventLog,
    changes: Vec<ChangeRecord>,
    scratch: Scratch,
}

impl World {
    /// Builds a world in its initial steady state at second zero. Nothing has been simulated yet.
    pub fn new(topology: Arc<Topology>, seed: u64, options: WorldOptions) -> World {
        let n = topology.len();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(1);
        let mut world = World {
            seed,
            rng,
            tick: 0,
            now_s: 0.0,
            epoch_unix_s: options.epoch_unix_s,
            services: Vec::with_capacity(n),
            edge_pfail: vec![0.0; topology.edges.len()],
            subscriptions: Vec::new(),
            publications: Vec::new(),
            traffic_factor: 1.0,
            pod_serial: 0,
            frames: vec![ServiceFrame::default(); n],
            totals: vec![ServiceTotals::default(); n],
            ring: FrameRing::new(n, options.retention_ticks),
            events: EventLog::new(options.event_capacity),
            changes: Vec::new(),
            scratch: Scratch::default(),
            topology: topology.clone(),
        };
        for (ti, topic) in topology.topics.iter().enumerate() {
            for (ri, r) in topic.readers.iter().enumerate() {
                world.subscriptions.push(Subscription {
                    topic: ti as u16,
                    reader: ri as u16,
                    service: r.service,
                    qos: r.qos,
                    depth: 0.0,
                });
            }
            for w in &topic.writers {
                world.publications.push(Publication {
                    topic: ti as u16,
                    service: w.service,
                    qos: w.qos,
                    rate_hz: w.rate_hz,
                });
            }
        }
        for svc in &topology.services {
            let spec = &svc.spec;
            let version = svc.version_index(&spec.version).unwrap_or(0) as u8;
            let mut flags = 0u64;
            for (i, f) in spec.flags.iter().enumerate() {
                if f.enabled && i < 64 {
                    flags |= 1 << i;
                }
            }
            let desired = match spec.autoscale {
                Some(a) => spec.replicas.clamp(a.min, a.max),
                None => spec.replicas,
            };
            let (secret_cert_expiry_s, cert_renewal) = match spec.tls {
                Some(t) => (
                    t.expires_at_s,
                    t.renewed_at_s
                        .map(|at| (at, t.expires_at_s + 90.0 * 86_400.0)),
                ),
                None => (f64::INFINITY, None),
            };
            let disk = spec.disk;
            let mut state = ServiceState {
                replicas: [Replica::default(); MAX_REPLICAS],
                used: desired as u8,
                desired,
                version,
                memory_mb: spec.memory_mb,
                cpu_millis: spec.cpu_millis,
                fx: ConfigEffects::from_config(&spec.config),
                config: spec.config.clone(),
                flags,
                hpa_min: spec.autoscale.map(|a| a.min).unwrap_or(0),
                hpa_low_since: None,
                disk_size_gb: disk.map(|d| d.size_gb).unwrap_or(0.0),
                disk_data_gb: disk.map(|d| d.data_gb).unwrap_or(0.0),
                disk_log_gb: 0.0,
                cpu_share: 1.0,
                detached: false,
                load_factor: 1.0,
                extra_rps: 0.0,
                outage_error_ratio: 0.0,
                outage_latency_factor: 1.0,
                secret_cert_expiry_s,
                cert_renewal,
                tokens: 0.0,
                requests_total: 0.0,
                errors_total: 0.0,
                rejected_total: 0.0,
                cpu_seconds_total: 0.0,
                restarts_total: 0,
                oom_kills_total: 0,
                last_event_s: [f64::NEG_INFINITY; EVENT_SLOTS],
            };
            if let Some(d) = disk {
                // Logs already on the volume: what retention keeps at the configured level.
                state.disk_log_gb = d.log_mb_per_min
                    * desired as f64
                    * state.fx.log_level.volume_factor()
                    * state.fx.log_retention_min
                    / 1024.0;
            }
            // Pods already up and warmed, started at staggered times in the past.
            for r in 0..desired as usize {
                let jitter = uniform(&mut world.rng) * 2.0 - 1.0;
                world.pod_serial += 1;
                state.replicas[r] = Replica {
                    phase: Phase::Running,
                    until_s: 0.0,
                    started_s: -86_400.0 * (1.0 + uniform(&mut world.rng) * 6.0),
                    version,
                    mem_base_mb: spec.base_memory_mb * (1.0 + 0.05 * jitter),
                    leaked_mb: 0.0,
                    leaked_conns: 0.0,
                    restarts: 0,
                    backoff_s: 10.0,
                    cert_expiry_s: secret_cert_expiry_s,
                    serial: world.pod_serial,
                    jitter,
                };
            }
            world.services.push(state);
        }
        world.scratch = Scratch {
            work: vec![Work::default(); n],
            edge_calls: vec![0.0; topology.edges.len()],
            edge_ln_timeout: topology
                .edges
                .iter()
                .map(|e| (e.timeout_ms, e.timeout_ms.ln()))
                .collect(),
            log_due: vec![0; n.div_ceil(64)],
            edge_series: topology
                .edges
                .iter()
                .map(|e| FailureSeries::new(e.per_request.min(50.0)))
                .collect(),
        };
        world
    }

    /// The topology.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The shared topology handle.
    pub fn topology_arc(&self) -> &Arc<Topology> {
        &self.topology
    }

    /// The episode seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Ticks simulated so far.
    pub fn tick_count(&self) -> u64 {
        self.tick
    }

    /// Simulated seconds since the world began.
    pub fn now_s(&self) -> f64 {
        self.now_s
    }

    /// Seconds per tick.
    pub fn tick_s(&self) -> f64 {
        self.topology.tick_s
    }

    /// Unix time of second zero.
    pub fn epoch_unix_s(&self) -> i64 {
        self.epoch_unix_s
    }

    /// State of a service.
    pub fn service(&self, id: ServiceId) -> &ServiceState {
        &self.services[id.index()]
    }

    /// The state of a service to change; forgets what the tick knows about its slots (see [`SlotSummary`]).
    pub(crate) fn service_mut(&mut self, id: ServiceId) -> &mut ServiceState {
        self.slots_changed(id.index());
        &mut self.services[id.index()]
    }

    /// To be called on every change of a service's replica slots (phase, times, back-off, version, certificate,
    /// `used`) or its deployment's version: the passes then walk the slots again (see [`SlotSummary`]).
    #[inline]
    fn slots_changed(&mut self, i: usize) {
        if let Some(w) = self.scratch.work.get_mut(i) {
            w.slots_known = false;
            w.settled = false;
        }
    }

    /// The summary of a service's slots, walking them only if they changed since it was taken.
    #[inline]
    fn slot_summary(work: &mut Work, st: &ServiceState) -> SlotSummary {
        if !work.slots_known {
            work.slots = SlotSummary::of(st);
            work.slots_known = true;
        }
        debug_assert_eq!(
            work.slots,
            SlotSummary::of(st),
            "a slot changed unannounced"
        );
        work.slots
    }

    /// The latest frame of every service (all zero before the first tick).
    pub fn frames(&self) -> &[ServiceFrame] {
        &self.frames
    }

    /// The latest frame of one service.
    pub fn frame(&self, id: ServiceId) -> &ServiceFrame {
        &self.frames[id.index()]
    }

    /// Stored frames.
    pub fn history(&self) -> &FrameRing {
        &self.ring
    }

    /// Shares the frames stored so far with every later clone instead of copying them ([`FrameRing::freeze`]):
    /// a fork then copies only the frames of the ticks run since. Changes nothing the world or a reader sees.
    pub fn freeze_history(&mut self) {
        self.ring.freeze();
    }

    /// One service's cumulative totals at the end of the last tick (those of held ticks are in
    /// [`World::history`]).
    pub fn totals(&self, id: ServiceId) -> &ServiceTotals {
        &self.totals[id.index()]
    }

    /// Events, oldest first.
    pub fn events(&self) -> &EventLog {
        &self.events
    }

    /// Change history, oldest first.
    pub fn changes(&self) -> &[ChangeRecord] {
        &self.changes
    }

    pub(crate) fn changes_mut(&mut self) -> &mut Vec<ChangeRecord> {
        &mut self.changes
    }

    /// Subscriptions (one per reader per topic).
    pub fn subscriptions(&self) -> &[Subscription] {
        &self.subscriptions
    }

    pub(crate) fn subscriptions_mut(&mut self) -> &mut [Subscription] {
        &mut self.subscriptions
    }

    /// Publications (one per writer per topic).
    pub fn publications(&self) -> &[Publication] {
        &self.publications
    }

    pub(crate) fn publications_mut(&mut self) -> &mut [Publication] {
        &mut self.publications
    }

    /// Entry traffic multiplier.
    pub fn traffic_factor(&self) -> f64 {
        self.traffic_factor
    }

    pub(crate) fn set_traffic_factor(&mut self, f: f64) {
        self.traffic_factor = f;
    }

    /// The behaviour of a version of a service combined with the service's enabled flags.
    pub fn behaviour(&self, id: ServiceId, version: u8) -> Behaviour {
        combined_behaviour(
            &self.topology.services[id.index()],
            self.services[id.index()].flags,
            version,
        )
    }

    /// Whether the flag at `index` is on.
    pub fn flag_enabled(&self, id: ServiceId, index: usize) -> bool {
        index < 64 && self.services[id.index()].flags & (1 << index) != 0
    }

    /// Index of the version most live replicas run (the deployment target if none is live).
    pub fn running_version(&self, id: ServiceId) -> u8 {
        running_version_of(&self.services[id.index()])
    }

    /// Whether any live replica runs `version`.
    pub fn runs_version(&self, id: ServiceId, version: u8) -> bool {
        self.services[id.index()]
            .slots()
            .iter()
            .any(|r| r.is_live() && r.version == version)
    }

    pub(crate) fn next_serial(&mut self) -> u32 {
        self.pod_serial += 1;
        self.pod_serial
    }

    pub(crate) fn next_jitter(&mut self) -> f64 {
        uniform(&mut self.rng) * 2.0 - 1.0
    }

    pub(crate) fn log(
        &mut self,
        service: ServiceId,
        replica: u8,
        kind: EventKind,
        a: f64,
        b: f64,
        c: u32,
    ) {
        self.events.push(Event {
            t_ms: (self.now_s * 1000.0).round() as i64,
            service: service.0,
            replica,
            kind,
            a: a as f32,
            b: b as f32,
            c,
        });
    }

    /// Logs a condition at most once per [`EVENT_REPEAT_S`] while it persists.
    fn log_throttled(
        &mut self,
        id: ServiceId,
        slot: usize,
        kind: EventKind,
        a: f64,
        b: f64,
        c: u32,
    ) {
        let now = self.now_s;
        let last = &mut self.services[id.index()].last_event_s[slot];
        if now - *last >= EVENT_REPEAT_S {
            *last = now;
            self.log(id, u8::MAX, kind, a, b, c);
        }
    }

    /// Quota in use: (CPU millicores, MiB) over scheduled pods.
    pub fn quota_used(&self) -> (u64, u64) {
        let mut cpu = 0u64;
        let mut mem = 0u64;
        for st in &self.services {
            let pods = st.slots().iter().filter(|r| r.is_scheduled()).count() as u64;
            cpu += pods * st.cpu_millis as u64;
            mem += pods * st.memory_mb as u64;
        }
        (cpu, mem)
    }

    /// Advances the world by one tick.
    pub fn step(&mut self) {
        let dt = self.topology.tick_s;
        self.now_s += dt;
        self.tick += 1;
        let topo = Arc::clone(&self.topology);
        self.lifecycle(&topo, dt);
        self.traffic(&topo, dt);
        self.resources(&topo, dt);
        self.topics(&topo, dt);
        let drop = self.telemetry_pipeline(&topo);
        self.finish_frames(&topo, dt, drop);
        self.ring.push(self.tick, &self.frames, &self.totals);
    }

    /// Advances the world by `n` ticks.
    pub fn run(&mut self, n: u64) {
        for _ in 0..n {
            self.step();
        }
    }

    /// Pod lifecycle: phase transitions, reconciling replicas with the desired count, rollouts, autoscaling and
    /// scheduling against the cluster quota.
    fn lifecycle(&mut self, topo: &Topology, dt: f64) {
        let now = self.now_s;
        // Whether any pod may be waiting for quota: a pending one seen below or one created by reconciling (pod
        // serials count creations). A pod terminated while pending only makes the scheduler look for nothing.
        let mut any_pending = false;
        for i in 0..topo.len() {
            let id = ServiceId(i as u16);
            let spec = &topo.services[i].spec;
            let st = &mut self.services[i];
            let target = st.version;
            let used = st.used as usize;
            // The census, and whether a back-off reset or a timed transition is due (most ticks neither is), from
            // the slots' summary: a quiet service's slots are not walked at all.
            let summary = Self::slot_summary(&mut self.scratch.work[i], st);
            let mut census = summary.census;
            let due = now >= summary.until_s;
            if now - summary.backoff_started_s >= 600.0 {
                for rep in &mut st.replicas[..used] {
                    if rep.phase == Phase::Running && now - rep.started_s >= 600.0 {
                        // Kubernetes forgets the back-off after ten minutes of good running.
                        rep.backoff_s = 10.0;
                    }
                }
                self.slots_changed(i);
            }
            if due {
                self.slots_changed(i);
                census = Census::default();
                for r in 0..used {
                    // The four fields the phase machine reads, not the whole slot.
                    let rep = &self.services[i].replicas[r];
                    let (phase, until_s, version) = (rep.phase, rep.until_s, rep.version);
                    match phase {
                        Phase::Starting if now >= until_s => {
                            if self.behaviour(id, version).crash_on_start {
                                self.crash(
                                    id,
                                    r,
                                    EventKind::ContainerExited,
                                    0.0,
                                    0.0,
                                    version as u32,
                                );
                            } else {
                                self.services[i].replicas[r].phase = Phase::Running;
                                self.log(
                                    id,
                                    r as u8,
                                    EventKind::ContainerReady,
                                    spec.startup_s,
                                    0.0,
                                    0,
                                );
                            }
                        }
                        Phase::BackOff if now >= until_s => {
                            self.start_process(id, r);
                        }
                        Phase::Terminating if now >= until_s => {
                            self.services[i].replicas[r] = Replica::default();
                        }
                        _ => {}
                    }
                    // A transition changes its own slot only, so the slot is counted as it now stands.
                    census.count(&self.services[i].replicas[r], target);
                }
            }
            any_pending |= census.pending > 0;
            if due {
                // Only a finished termination empties a slot here.
                self.services[i].trim_used();
            }
            self.autoscale(id, dt);
            let serial = self.pod_serial;
            self.reconcile(id, census);
            any_pending |= self.pod_serial != serial;
        }
        if any_pending {
            self.schedule_pending(topo);
        }
    }

    fn autoscale(&mut self, id: ServiceId, _dt: f64) {
        let Some(hpa) = self.topology.services[id.index()].spec.autoscale else {
            return;
        };
        let frame = &self.frames[id.index()];
        let st = &self.services[id.index()];
        if frame.ready == 0 {
            return;
        }
        let util = frame.cpu_utilisation();
        let current = st.desired.max(1) as f64;
        // A manual scale raises the floor; the ceiling follows it, as an operator editing the autoscaler would.
        let floor = st.hpa_min.max(hpa.min);
        let ceiling = hpa.max.max(floor).min(MAX_REPLICAS as u32);
        let want =
            ((current * util / hpa.target_cpu).ceil() as u32).clamp(floor.min(ceiling), ceiling);
        let now = self.now_s;
        let from = st.desired;
        if want > from {
            let to = want.min(from * 2).max(from + 1).min(ceiling);
            self.services[id.index()].desired = to;
            self.services[id.index()].hpa_low_since = None;
            self.log(
                id,
                u8::MAX,
                EventKind::Autoscaled,
                from as f64,
                to as f64,
                (util * 100.0) as u32,
            );
        } else if want < from {
            let since = *self.services[id.index()].hpa_low_since.get_or_insert(now);
            // The scale-down stabilisation window of the Kubernetes autoscaler: five minutes.
            if now - since >= 300.0 {
                self.services[id.index()].desired = want;
                self.services[id.index()].hpa_low_since = None;
                self.log(
                    id,
                    u8::MAX,
                    EventKind::Autoscaled,
                    from as f64,
                    want as f64,
                    (util * 100.0) as u32,
                );
            }
        } else {
            self.services[id.index()].hpa_low_since = None;
        }
    }

    /// Creates or removes pods so the live count matches the desired count, and drives rollouts (surge one new
    /// pod, retire one old pod once it is ready).
    ///
    /// `census` counts the service's slots as they stand.
    fn reconcile(&mut self, id: ServiceId, census: Census) {
        let i = id.index();
        let target = self.services[i].version;
        let desired = self.services[i].desired as usize;
        let (live, old_live, new_ready) = (census.live, census.old_live, census.new_ready);
        if old_live == 0 && live == desired {
            // Nothing to create, retire or roll: the usual tick.
            return;
        }
        let reps = self.services[i].slots();
        let new_live = live - old_live;
        let new_unready = new_live - new_ready;

        if old_live > 0 {
            // Rolling update with the Kubernetes defaults: max surge 25 % (at least one), max unavailable 25 %
            // (rounded down). Old pods that are not ready serve nothing, so they go first.
            if let Some(r) = (0..reps.len().min(self.services[i].used as usize)).find(|&r| {
                reps[r].is_live() && reps[r].version != target && reps[r].phase != Phase::Running
            }) {
                self.terminate(id, r);
                if new_live < desired {
                    self.create_pod(id, target);
                }
                return;
            }
            let max_unavailable = desired / 4;
            let new_pending = reps
                .iter()
                .any(|r| r.phase == Phase::Pending && r.version == target);
            let ready = reps.iter().filter(|r| r.phase == Phase::Running).count();
            if new_unready == 0 && live <= desired {
                self.create_pod(id, target);
            } else if new_unready == 0 && live > desired {
                self.terminate_one(id, |r| r.version != target);
                if old_live == 1 {
                    self.log(
                        id,
                        u8::MAX,
                        EventKind::RolloutFinished,
                        0.0,
                        target as f64,
                        0,
                    );
                }
            } else if new_pending && max_unavailable > 0 && ready + max_unavailable > desired {
                // The surge pod waits for quota: make room by retiring an old pod within the unavailability budget.
                self.terminate_one(id, |r| r.version != target && r.phase == Phase::Running);
            }
            return;
        }
        if live < desired {
            for _ in live..desired {
                self.create_pod(id, target);
            }
        } else if live > desired {
            for _ in desired..live {
                // Scale down the least useful pods first: pending, then not ready, then the newest.
                if !self.terminate_one(id, |r| r.phase == Phase::Pending)
                    && !self.terminate_one(id, |r| r.phase != Phase::Running)
                {
                    self.terminate_one(id, |_| true);
                }
            }
        }
    }

    fn create_pod(&mut self, id: ServiceId, version: u8) -> bool {
        let Some(slot) = self.services[id.index()]
            .replicas
            .iter()
            .position(|r| r.phase == Phase::Empty)
        else {
            return false;
        };
        let serial = self.next_serial();
        let jitter = self.next_jitter();
        self.slots_changed(id.index());
        self.services[id.index()].replicas[slot] = Replica {
            phase: Phase::Pending,
            version,
            serial,
            jitter,
            backoff_s: 10.0,
            ..Replica::default()
        };
        let st = &mut self.services[id.index()];
        st.used = st.used.max(slot as u8 + 1);
        true
    }

    /// Terminates the newest live pod matching `pred`; false if none matched.
    fn terminate_one(&mut self, id: ServiceId, pred: impl Fn(&Replica) -> bool) -> bool {
        let reps = &self.services[id.index()].replicas;
        let pick = (0..self.services[id.index()].used as usize)
            .filter(|&r| reps[r].is_live() && pred(&reps[r]))
            .max_by_key(|&r| reps[r].serial);
        match pick {
            Some(r) => {
                self.terminate(id, r);
                true
            }
            None => false,
        }
    }

    pub(crate) fn terminate(&mut self, id: ServiceId, r: usize) {
        self.slots_changed(id.index());
        let rep = &mut self.services[id.index()].replicas[r];
        if rep.phase == Phase::Pending {
            *rep = Replica::default();
            self.services[id.index()].trim_used();
            return;
        }
        let version = rep.version;
        rep.phase = Phase::Terminating;
        rep.until_s = self.now_s + 5.0;
        self.log(
            id,
            r as u8,
            EventKind::PodTerminated,
            0.0,
            0.0,
            version as u32,
        );
    }

    fn schedule_pending(&mut self, topo: &Topology) {
        if !self
            .services
            .iter()
            .any(|st| st.slots().iter().any(|r| r.phase == Phase::Pending))
        {
            return;
        }
        let (mut cpu, mut mem) = self.quota_used();
        let quota_cpu = topo.cluster.cpu_millis as u64;
        let quota_mem = topo.cluster.memory_mb as u64;
        for i in 0..topo.len() {
            let id = ServiceId(i as u16);
            for r in 0..self.services[i].used as usize {
                if self.services[i].replicas[r].phase != Phase::Pending {
                    continue;
                }
                let need_cpu = self.services[i].cpu_millis as u64;
                let need_mem = self.services[i].memory_mb as u64;
                if cpu + need_cpu <= quota_cpu && mem + need_mem <= quota_mem {
                    cpu += need_cpu;
                    mem += need_mem;
                    self.start_process(id, r);
                } else {
                    self.log_throttled(
                        id,
                        SLOT_SCHED,
                        EventKind::FailedScheduling,
                        need_cpu as f64,
                        need_mem as f64,
                        0,
                    );
                }
            }
        }
    }

    /// Starts (or restarts) the process in a slot.
    fn start_process(&mut self, id: ServiceId, r: usize) {
        let i = id.index();
        let spec = &self.topology.services[i].spec;
        let startup = spec.startup_s;
        let base = spec.base_memory_mb;
        let now = self.now_s;
        let expiry = self.current_secret_expiry(id);
        self.slots_changed(i);
        let rep = &mut self.services[i].replicas[r];
        rep.phase = Phase::Starting;
        rep.started_s = now;
        rep.until_s = now + startup * (1.0 + 0.15 * rep.jitter.abs());
        rep.mem_base_mb = base * 0.4;
        rep.leaked_mb = 0.0;
        rep.leaked_conns = 0.0;
        rep.cert_expiry_s = expiry;
        let version = rep.version;
        self.log(
            id,
            r as u8,
            EventKind::ContainerStarted,
            0.0,
            0.0,
            version as u32,
        );
    }

    fn current_secret_expiry(&self, id: ServiceId) -> f64 {
        let st = &self.services[id.index()];
        match st.cert_renewal {
            Some((at, expiry)) if self.now_s >= at => expiry,
            _ => st.secret_cert_expiry_s,
        }
    }

    /// Kills the process in a slot; it comes back after the back-off.
    fn crash(&mut self, id: ServiceId, r: usize, kind: EventKind, a: f64, b: f64, c: u32) {
        self.slots_changed(id.index());
        let now = self.now_s;
        let st = &mut self.services[id.index()];
        st.restarts_total += 1;
        if kind == EventKind::OomKilled {
            st.oom_kills_total += 1;
        }
        let rep = &mut st.replicas[r];
        rep.restarts += 1;
        let backoff = rep.backoff_s;
        rep.phase = Phase::BackOff;
        rep.until_s = now + backoff;
        rep.backoff_s = (backoff * 2.0).min(300.0);
        let restarts = rep.restarts;
        let c = if kind == EventKind::OomKilled {
            restarts
        } else {
            c
        };
        self.log(id, r as u8, kind, a, b, c);
        if restarts >= 2 {
            self.log(
                id,
                r as u8,
                EventKind::CrashLoopBackOff,
                backoff,
                0.0,
                restarts,
            );
        }
    }

    /// Entry load, forward propagation along calls, then latency and errors from the leaves back up.
    // Out of line, like `resources`: inlined into `step`, the passes' loops shared one register allocation and
    // spilled more (about 300 instructions a tick for the two; `lifecycle` and `finish_frames` lose out of line).
    #[inline(never)]
    fn traffic(&mut self, topo: &Topology, dt: f64) {
        let n = topo.len();
        let now = self.now_s;
        let traffic_factor = self.traffic_factor;
        let tod_h = hour_of_day((self.epoch_unix_s as f64 + now) / 3600.0);
        // Daily cycle: trough around 04:00, peak around 16:00 (UTC of the simulated clock).
        let daily = ((tod_h - 10.0) / 24.0 * std::f64::consts::TAU).sin();
        // Disjoint borrows of the fields, so the scratch need not be moved out of the world and back.
        let World {
            rng,
            services,
            frames,
            scratch,
            edge_pfail,
            ..
        } = self;
        let services = &mut services[..n];
        let frames = &mut frames[..n];
        let work = &mut scratch.work[..n];
        let edge_calls = &mut scratch.edge_calls[..];
        let edge_ln_timeout = &mut scratch.edge_ln_timeout[..];
        let log_bits = &mut scratch.log_due[..];
        let edge_series = &scratch.edge_series[..];
        for i in 0..n {
            // Ready replicas and the version most live ones run from the slots' summary (nothing changed them since
            // the lifecycle, so it is known unless the lifecycle changed them); those serving an expired
            // certificate counted only once the oldest certificate has expired.
            let st = &services[i];
            let w = &mut work[i];
            w.offered = 0.0;
            w.entry = 0.0;
            w.lock_load = 0.0;
            w.lock_hold_sum = 0.0;
            w.lock_calls = 0.0;
            if w.settled && now < w.slots.oldest_cert_s {
                // Nothing they depend on changed since the last tick: no slot, flag or limit, and still no
                // certificate expired.
                continue;
            }
            let summary = Self::slot_summary(w, st);
            let ready = summary.ready;
            let bad = if now < summary.oldest_cert_s {
                0
            } else {
                st.slots()
                    .iter()
                    .filter(|r| r.phase == Phase::Running && r.cert_expiry_s <= now)
                    .count() as u32
            };
            w.ready = ready;
            let v = summary.version;
            // The behaviour only depends on the version and the flags: recombine it only when either changed.
            let key = (v, st.flags);
            if w.behaviour_key != Some(key) {
                let spec = &topo.services[i].spec;
                w.behaviour = combined_behaviour(&topo.services[i], st.flags, v);
                w.behaviour_key = Some(key);
                w.cpu_cost =
                    (spec.cpu_millis as f64 / 1000.0) / spec.capacity_rps * w.behaviour.cpu_factor;
            }
            if w.cpu_millis_key != Some(st.cpu_millis) {
                let spec = &topo.services[i].spec;
                w.cpu_millis_key = Some(st.cpu_millis);
                w.cpu_scale = st.cpu_millis as f64 / spec.cpu_millis as f64;
                w.cpu_limit = st.cpu_millis as f64 / 1000.0;
            }
            w.version = v;
            // Without an expired certificate the share is exactly 0 (0 / ready): no division.
            w.tls_bad = if ready == 0 || bad == 0 {
                0.0
            } else {
                bad as f64 / ready as f64
            };
            w.settled = bad == 0;
            // `ready` is the frame's (written below): the same product the pipeline took from the frame.
            w.log_lines_base = topo.services[i].spec.log_lines_per_s
                * ready as f64
                * st.fx.log_level.volume_factor();
        }
        for e in &topo.entries {
            let noise = 1.0 + e.noise * gaussian(rng);
            let rps = (e.rps * (1.0 + e.daily_amplitude * daily) * noise * traffic_factor).max(0.0);
            let w = &mut work[e.service.index()];
            w.offered += rps;
            w.entry += rps;
        }

        // Forward: callers before callees.
        for &id in &topo.call_order {
            let i = id.index();
            let st = &mut services[i];
            let w = &mut work[i];
            w.offered = w.offered * st.load_factor + st.extra_rps;
            w.entry += st.extra_rps;
            let offered = w.offered;
            let ready = w.ready;
            // External clients whose TLS handshake fails never reach the service.
            let handshake_failed = w.entry * w.tls_bad;
            let mut admitted = offered - handshake_failed;
            let mut rejected = 0.0;
            // The limiter runs in the replicas: with none ready, requests fail as unavailable, not as limited.
            if let Some(rl) = topo.services[i].spec.rate_limit.filter(|_| ready > 0) {
                let per_replica = st.fx.rate_limit_rps.unwrap_or(rl.rps_per_replica);
                let limit = per_replica * ready as f64;
                let burst_cap = rl.burst * ready as f64;
                let allowed = limit + st.tokens / dt;
                if admitted > allowed {
                    rejected = admitted - allowed;
                    admitted = allowed;
                    st.tokens = 0.0;
                } else {
                    st.tokens = (st.tokens + (limit - admitted).max(0.0) * dt).min(burst_cap);
                }
            }
            let unavailable = if ready == 0 {
                admitted + handshake_failed
            } else {
                handshake_failed
            };
            if ready == 0 {
                admitted = 0.0;
            }
            w.admitted = admitted;
            w.rejected = rejected;
            w.unavailable = unavailable;
            let fx = st.fx;
            let detached = st.detached;
            let lock_hold = w.behaviour.lock_hold_ms;
            for &e in &topo.services[i].out_edges {
                let edge = &topo.edges[e];
                let retries = fx.retries.unwrap_or(edge.retries);
                let p = edge_pfail[e];
                let mut amp = 1.0;
                let mut pk = 1.0;
                for _ in 0..retries {
                    pk *= p;
                    amp += pk;
                }
                let calls = admitted * edge.per_request * amp;
                edge_calls[e] = calls;
                let to = edge.to.index();
                if !fx.resolver_ok || detached || services[to].detached {
                    continue;
                }
                match edge.via_cache {
                    Some(c) if !services[c.index()].detached => {
                        work[c.index()].offered += calls;
                        let hit = frames[c.index()].cache_hit_ratio as f64;
                        let callee = &mut work[to];
                        callee.offered += calls * (1.0 - hit);
                        if lock_hold != 0.0 || !calls.is_finite() {
                            callee.lock_load += calls * (1.0 - hit) * lock_hold / 1000.0;
                        }
                        if lock_hold > 0.0 {
                            callee.lock_hold_sum += calls * (1.0 - hit) * lock_hold;
                            callee.lock_calls += calls * (1.0 - hit);
                        }
                    }
                    _ => {
                        let callee = &mut work[to];
                        callee.offered += calls;
                        // Without locking queries this adds a zero (unless `calls` is not finite).
                        if lock_hold != 0.0 || !calls.is_finite() {
                            callee.lock_load += calls * lock_hold / 1000.0;
                        }
                        if lock_hold > 0.0 {
                            callee.lock_hold_sum += calls * lock_hold;
                            callee.lock_calls += calls;
                        }
                    }
                }
            }
        }

        // Backward: callees before callers, so a caller sees this tick's dependency latency and errors.
        for &id in topo.call_order.iter().rev() {
            let i = id.index();
            let svc = &topo.services[i];
            let spec = &svc.spec;
            let w = &work[i];
            let b = &w.behaviour;
            let ready = w.ready as f64;
            let conn_leaks = w.conn_leaks;
            let st = &services[i];
            // Borrowed: a copy of the whole configuration was stored to the stack and read back field by field.
            let fx = &st.fx;
            // Dependencies.
            let mut dep_ms = 0.0;
            let mut q_ok = 1.0;
            let mut pool_in_use = 0.0;
            let mut pool_max = 0.0;
            let mut pool_timeouts = 0.0;
            let mut pool_wait = 0.0;
            let mut dns_fail = 0.0;
            let mut tls_fail = 0.0;
            let mut dep_cause = (0.0, ErrorCause::None, u16::MAX);
            for &e in &svc.out_edges {
                let edge = &topo.edges[e];
                let to = edge.to.index();
                let callee = &work[to];
                let timeout = fx.timeout_ms.unwrap_or(edge.timeout_ms);
                let retries = fx.retries.unwrap_or(edge.retries);
                let calls = edge_calls[e];
                let (p, fail_ms, kind) = if !fx.resolver_ok {
                    dns_fail += calls;
                    (1.0, 5.0, ErrorCause::DnsResolution)
                } else if st.detached || services[to].detached {
                    (1.0, timeout, ErrorCause::Unreachable)
                } else if callee.tls_bad > 0.0 {
                    tls_fail += calls * callee.tls_bad;
                    let p_err = callee.err_seen;
                    (
                        callee.tls_bad + (1.0 - callee.tls_bad) * p_err,
                        3.0,
                        ErrorCause::TlsHandshake,
                    )
                } else {
                    let m = callee.median_ms;
                    let cached = &mut edge_ln_timeout[e];
                    if cached.0.to_bits() != timeout.to_bits() {
                        *cached = (timeout, timeout.ln());
                    }
                    let p_slow =
                        lognormal_tail_ln(m, callee.ln_median, callee.inv_sigma, timeout, cached.1);
                    let p_err = callee.err_seen;
                    let p = p_err + (1.0 - p_err) * p_slow;
                    let kind = if p_slow > p_err {
                        ErrorCause::UpstreamTimeout
                    } else {
                        ErrorCause::UpstreamError
                    };
                    (
                        p,
                        if p_slow > p_err {
                            timeout
                        } else {
                            min_to(m, timeout)
                        },
                        kind,
                    )
                };
                let mut p = p;
                let mut kind = kind;
                let mut call_ok_ms = match edge.via_cache {
                    Some(c) => {
                        let hit = frames[c.index()].cache_hit_ratio as f64;
                        hit * work[c.index()].median_ms + (1.0 - hit) * callee.median_ms
                    }
                    None => callee.median_ms,
                };
                if let Some(size) = edge.pool {
                    let size = fx.pool_max.unwrap_or(size) as f64;
                    // Without leaks the mean below is exactly zero.
                    let leaked = if conn_leaks {
                        let (leak_sum, n_ready) = st
                            .slots()
                            .iter()
                            .filter(|r| r.phase == Phase::Running)
                            .fold((0.0, 0.0), |(l, n), r| {
                                (l + r.leaked_conns.min(size), n + 1.0)
                            });
                        if n_ready > 0.0 {
                            leak_sum / n_ready
                        } else {
                            0.0
                        }
                    } else {
                        0.0
                    };
                    let hold_s = (call_ok_ms + edge.hold_ms) / 1000.0;
                    let demand = if ready > 0.0 {
                        calls / ready * hold_s
                    } else {
                        0.0
                    };
                    let available = (size - leaked).max(0.0);
                    let in_use = min_to(min_to(demand, available) + leaked, size);
                    pool_in_use += in_use;
                    pool_max += size;
                    if demand > available {
                        let p_pool = if demand > 0.0 {
                            1.0 - available / demand
                        } else {
                            1.0
                        };
                        pool_timeouts += calls * p_pool;
                        pool_wait += timeout * p_pool;
                        call_ok_ms += timeout * 0.5 * p_pool;
                        p = 1.0 - (1.0 - p) * (1.0 - p_pool);
                        if p_pool > 0.5 * p {
                            kind = ErrorCause::PoolTimeout;
                        }
                    } else if available > 0.0 {
                        // Waiting in the pool rises steeply as it fills.
                        let u = (demand / available).min(0.99);
                        pool_wait += call_ok_ms * u * u / (1.0 - u) * 0.1;
                    }
                }
                edge_pfail[e] = p;
                let (attempts, p_retries) = {
                    let mut a = 1.0;
                    let mut pk = 1.0;
                    for _ in 0..retries {
                        pk *= p;
                        a += pk;
                    }
                    (a, pk)
                };
                // `p` to the power `retries + 1` as the product of that many `p` from 1: the same roundings in the
                // same order as the loop above, and one more factor.
                let p_final = p_retries * p;
                dep_ms += edge.per_request * attempts * ((1.0 - p) * call_ok_ms + p * fail_ms);
                let fail_share = if p_final < 1e-12 {
                    p_final * edge.per_request
                } else {
                    // `edge.per_request.min(50.0)` calls.
                    let series = &edge_series[e];
                    if series.c == 1.0 {
                        1.0 - (1.0 - p_final)
                    } else {
                        series.any_failed(p_final)
                    }
                };
                q_ok *= 1.0 - fail_share;
                if fail_share > dep_cause.0 {
                    dep_cause = (fail_share, kind, edge.to.0);
                }
            }
            // The service's own latency and errors, after the dependencies: computed before them, their values
            // were live across the edge loop, which then spilled its accumulators.
            let w = &work[i];
            let (unavailable, rejected, offered) = (w.unavailable, w.rejected, w.offered);
            let admitted = w.admitted;
            let (cpu_scale, cpu_limit, cost) = (w.cpu_scale, w.cpu_limit, w.cpu_cost);
            let cpu_factor = b.cpu_factor;
            let capacity = ready * spec.capacity_rps * cpu_scale * st.cpu_share / cpu_factor;
            let rho = if capacity > 0.0 {
                admitted / capacity
            } else {
                0.0
            };
            let shed = if rho > 1.0 { 1.0 - 1.0 / rho } else { 0.0 };
            let rho_q = rho.min(0.95);
            let jitter = 1.0 + 0.03 * gaussian(rng);
            let mut own_ms = spec.latency_ms * b.latency_factor * st.outage_latency_factor * jitter
                / (1.0 - rho_q);
            let mut own_err = spec.error_ratio + b.error_ratio + st.outage_error_ratio;
            let mut cause = ErrorCause::Internal;
            let mut cause_weight = own_err;

            // Row locks (databases): utilisation of the hot rows from the locking queries of all clients.
            let mut lock_wait_ms = 0.0;
            if w.lock_load > 0.0 {
                const HOT_ROWS: f64 = 4.0;
                let rho_l = w.lock_load / HOT_ROWS;
                let mean_hold = w.lock_hold_sum / w.lock_calls.max(1e-9);
                lock_wait_ms = if rho_l < 0.98 {
                    mean_hold * rho_l / (1.0 - rho_l)
                } else {
                    30_000.0
                };
                lock_wait_ms = lock_wait_ms.min(30_000.0);
                // Half the queries touch the hot table; those wait.
                own_ms += 0.5 * lock_wait_ms;
                if rho_l > 0.9 {
                    let timeouts = 0.5 * ((rho_l - 0.9) * 5.0).min(1.0);
                    own_err += timeouts;
                    if timeouts > cause_weight {
                        cause = ErrorCause::LockTimeout;
                        cause_weight = timeouts;
                    }
                }
            }

            // A full volume fails the requests that write.
            if let Some(d) = spec.disk
                && st.disk_size_gb > 0.0
                && st.disk_data_gb + st.disk_log_gb >= st.disk_size_gb * 0.999
            {
                own_err += d.write_ratio;
                if d.write_ratio > cause_weight {
                    cause = ErrorCause::DiskFull;
                    cause_weight = d.write_ratio;
                }
            }
            if shed > cause_weight {
                cause = ErrorCause::Overload;
                cause_weight = shed;
            }

            let f_dep = 1.0 - q_ok;
            let mut err_dep_id = u16::MAX;
            if f_dep > cause_weight {
                cause = dep_cause.1;
                err_dep_id = dep_cause.2;
            }
            let err =
                (1.0 - (1.0 - own_err.min(1.0)) * (1.0 - f_dep) * (1.0 - shed)).clamp(0.0, 1.0);
            let error_rps = admitted * err + unavailable;
            let err_seen = if offered > 0.0 {
                ((error_rps + rejected) / offered).min(1.0)
            } else if ready == 0.0 {
                1.0
            } else {
                0.0
            };
            let median = own_ms + dep_ms + pool_wait;
            let sigma = (spec.latency_sigma + 0.25 * rho_q).min(2.0);
            {
                let w = &mut work[i];
                w.err_seen = err_seen;
                w.median_ms = median;
                w.sigma = sigma;
            }
            if unavailable > 0.0 && unavailable >= admitted * err {
                cause = ErrorCause::Unavailable;
                err_dep_id = u16::MAX;
            }
            if rejected > error_rps {
                cause = ErrorCause::RateLimited;
                err_dep_id = u16::MAX;
            }
            if err_seen < 0.005 {
                cause = ErrorCause::None;
                err_dep_id = u16::MAX;
            }

            let served = min_to(admitted, capacity);
            let cpu = min_to(
                served * cost + 0.02 * ready,
                ready * cpu_limit * st.cpu_share,
            );

            let f = &mut frames[i];
            f.offered_rps = offered as f32;
            f.admitted_rps = admitted as f32;
            f.error_rps = error_rps as f32;
            f.rejected_rps = rejected as f32;
            f.latency_median_ms = median as f32;
            f.latency_sigma = sigma as f32;
            f.cpu_cores = cpu as f32;
            f.cpu_limit_cores = cpu_limit as f32;
            f.ready = ready as u8;
            f.err_cause = cause;
            f.err_dep = err_dep_id;
            f.pool_in_use = pool_in_use as f32;
            f.pool_max = pool_max as f32;
            f.pool_timeouts_rps = pool_timeouts as f32;
            f.pool_wait_ms = pool_wait as f32;
            f.lock_wait_ms = lock_wait_ms as f32;
            f.dns_failures_rps = dns_fail as f32;
            f.tls_failures_rps = tls_fail as f32;
            // Whether the loop below may have a condition to log: implied by each of its exact tests on the
            // frame's `f32` values (rounding to `f32` keeps signs and the order against 200, and moves a ratio by
            // far less than the slack between 0.999 and 0.998), so services without one skip them.
            let log_due = (pool_max > 0.0 && pool_in_use >= pool_max * 0.998)
                || lock_wait_ms > 200.0
                || rejected > 0.0;
            log_bits[i / 64] |= (log_due as u64) << (i % 64);

            let st = &mut services[i];
            st.requests_total += offered * dt;
            st.errors_total += error_rps * dt;
            st.rejected_total += rejected * dt;
            st.cpu_seconds_total += cpu * dt;
            // Last, where little else is live: around the call to `ln` every live float register is spilled.
            let w = &mut work[i];
            w.ln_median = median.ln();
            w.inv_sigma = 1.0 / sigma;
        }

        // Conditions worth a log line, throttled, for the services whose bit is set (most have none: testing a
        // flag of every service cost more than visiting the set bits).
        for word in 0..self.scratch.log_due.len() {
            let mut bits = std::mem::take(&mut self.scratch.log_due[word]);
            while bits != 0 {
                let i = word * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                self.log_conditions(topo, i);
            }
        }
    }

    /// Logs the conditions traffic found in service `i`'s frame, throttled.
    fn log_conditions(&mut self, topo: &Topology, i: usize) {
        let id = ServiceId(i as u16);
        // Only the fields read below: a whole frame is a few hundred bytes to copy for every service.
        let f = &self.frames[i];
        let (pool_max, pool_in_use, pool_timeouts_rps, pool_wait_ms) = (
            f.pool_max,
            f.pool_in_use,
            f.pool_timeouts_rps,
            f.pool_wait_ms,
        );
        let (lock_wait_ms, rejected_rps, offered_rps, admitted_rps) = (
            f.lock_wait_ms,
            f.rejected_rps,
            f.offered_rps,
            f.admitted_rps,
        );
        if pool_max > 0.0 && pool_in_use >= pool_max * 0.999 {
            let dep = topo.services[i]
                .out_edges
                .iter()
                .find(|&&e| topo.edges[e].pool.is_some())
                .map(|&e| topo.edges[e].to.0 as u32)
                .unwrap_or(0);
            if pool_timeouts_rps > 0.0 {
                self.log_throttled(
                    id,
                    SLOT_POOL,
                    EventKind::PoolTimeout,
                    pool_timeouts_rps as f64,
                    pool_wait_ms as f64,
                    dep,
                );
            } else {
                self.log_throttled(
                    id,
                    SLOT_POOL,
                    EventKind::PoolExhausted,
                    pool_in_use as f64,
                    pool_max as f64,
                    dep,
                );
            }
        }
        if lock_wait_ms > 200.0 {
            let holder = self.top_lock_holder(topo, id);
            self.log_throttled(
                id,
                SLOT_LOCK,
                EventKind::LockWaits,
                lock_wait_ms as f64,
                0.0,
                holder,
            );
        }
        if rejected_rps > 0.01 * offered_rps && rejected_rps > 0.0 {
            let limit = admitted_rps as f64;
            self.log_throttled(
                id,
                SLOT_RATE,
                EventKind::RateLimited,
                rejected_rps as f64,
                limit,
                0,
            );
        }
    }

    fn top_lock_holder(&self, topo: &Topology, db: ServiceId) -> u32 {
        let mut best = (0.0, u32::MAX);
        for &e in &topo.services[db.index()].in_edges {
            let from = topo.edges[e].from;
            let hold = self
                .scratch
                .work
                .get(from.index())
                .map(|w| w.behaviour.lock_hold_ms)
                .unwrap_or(0.0);
            let load = self.scratch.edge_calls.get(e).copied().unwrap_or(0.0) * hold;
            if load > best.0 {
                best = (load, from.0 as u32);
            }
        }
        best.1
    }

    /// Memory, leaks and OOM kills; pool leaks; disks; certificates; caches.
    // Out of line: see `traffic`.
    #[inline(never)]
    fn resources(&mut self, topo: &Topology, dt: f64) {
        let now = self.now_s;
        for i in 0..topo.len() {
            let id = ServiceId(i as u16);
            let spec = &topo.services[i].spec;
            let ready = self.frames[i].ready.max(1) as f64;
            let rps_per_replica = self.frames[i].admitted_rps as f64 / ready;
            let load_ratio = (rps_per_replica / (spec.capacity_rps * 0.35)).clamp(0.0, 3.0);
            let limit = self.services[i].memory_mb as f64;
            // Memory warms up towards its target with a three-minute time constant.
            let warm = dt / (180.0 + dt);
            let mut any_conn_leak = false;
            let work = &self.scratch.work[i];
            let current = work.version;
            // What the replicas of the current version share, hoisted out of the slot loop (the same expressions
            // in the same order as `memory_terms`, so the same values).
            let current_terms = memory_terms(spec, &work.behaviour, dt, load_ratio);
            let per_rps = spec.memory_per_rps_mb * rps_per_replica;
            // Slots to kill, one bit each.
            let mut oom = 0u32;
            let st = &mut self.services[i];
            let flags = st.flags;
            let used = st.used as usize;
            let memory = &mut self.frames[i].replica_memory_mb;
            // The whole fixed-size array, which compiles to a few stores (a `fill` of the unused tail is a call to
            // `memset`, and every live float register is spilled around a call); slots without a process stay 0.
            *memory = [0.0; MAX_REPLICAS];
            for (r, rep) in st.replicas[..used].iter_mut().enumerate() {
                let phase = rep.phase;
                if !matches!(phase, Phase::Running | Phase::Starting) {
                    continue;
                }
                // Most replicas run the version computed for this tick; only rollouts mix versions.
                let (base, leak, conn_leak) = if rep.version == current {
                    current_terms
                } else {
                    other_memory_terms(&topo.services[i], flags, rep.version, dt, load_ratio)
                };
                let target = base * (1.0 + 0.04 * rep.jitter) + per_rps;
                rep.mem_base_mb += (target - rep.mem_base_mb) * warm;
                // A zero leak rate adds a zero (the jitter factor is positive and finite): nothing to do.
                if phase == Phase::Running && leak != 0.0 {
                    rep.leaked_mb += leak * (1.0 + 0.1 * rep.jitter);
                }
                if phase == Phase::Running && conn_leak != 0.0 {
                    rep.leaked_conns += conn_leak * (1.0 + 0.1 * rep.jitter);
                    any_conn_leak = true;
                }
                let mem = rep.mem_base_mb + rep.leaked_mb;
                memory[r] = mem as f32;
                if mem > limit {
                    oom |= 1 << r;
                }
            }
            self.scratch.work[i].conn_leaks |= any_conn_leak;
            // What the rest of the tick needs from the slots (ready replicas and the oldest certificate among them,
            // live pods and pending ones): from their summary, which traffic took or kept (nothing changed the
            // slots since), unless a kill changed them. Read after the slot loop, so as not to be live across it.
            debug_assert!(self.scratch.work[i].slots_known);
            let summary = &self.scratch.work[i].slots;
            let (mut running, mut live, mut pending, mut oldest_cert) = (
                summary.ready,
                summary.census.live as u8,
                summary.census.pending as u8,
                summary.oldest_cert_s,
            );
            if oom != 0 {
                for r in 0..used {
                    if oom & (1 << r) != 0 {
                        let mem = self.services[i].replicas[r].mem_base_mb
                            + self.services[i].replicas[r].leaked_mb;
                        self.frames[i].replica_memory_mb[r] = 0.0;
                        self.crash(id, r, EventKind::OomKilled, mem, limit, 0);
                    }
                }
                (running, live, pending) = (0, 0, 0);
                oldest_cert = f64::INFINITY;
                for r in self.services[i].slots() {
                    match r.phase {
                        Phase::Empty | Phase::Terminating => continue,
                        Phase::Running => {
                            running += 1;
                            oldest_cert = oldest_cert.min(r.cert_expiry_s);
                        }
                        Phase::Pending => pending += 1,
                        Phase::Starting | Phase::BackOff => {}
                    }
                    live += 1;
                }
            }

            // Volume: data grows slowly; logs grow with volume and level, and rotation deletes what is older
            // than the retention (a first-order decay with that time constant).
            if let Some(d) = spec.disk {
                let st = &mut self.services[i];
                let live = running as f64;
                let full = st.disk_data_gb + st.disk_log_gb >= st.disk_size_gb * 0.999;
                st.disk_data_gb += d.growth_gb_per_day * dt / 86_400.0;
                let write_gb =
                    d.log_mb_per_min * live * st.fx.log_level.volume_factor() * dt / 60.0 / 1024.0;
                let retention_s = st.fx.log_retention_min * 60.0;
                st.disk_log_gb -= st.disk_log_gb * (dt / retention_s).min(1.0);
                if !full {
                    st.disk_log_gb += write_gb;
                }
                let cap = (st.disk_size_gb - st.disk_data_gb).max(0.0);
                st.disk_log_gb = st.disk_log_gb.min(cap);
                let used = st.disk_data_gb + st.disk_log_gb;
                let size = st.disk_size_gb;
                self.frames[i].disk_used_gb = used as f32;
                self.frames[i].disk_size_gb = size as f32;
                if used >= size * 0.999 {
                    self.log_throttled(id, SLOT_DISK, EventKind::DiskFull, used, size, 0);
                } else if used >= size * 0.9 {
                    self.log_throttled(id, SLOT_DISK, EventKind::DiskPressure, used, size, 0);
                }
            }

            // Certificates: the expiry of the oldest ready process's certificate.
            if spec.tls.is_some() {
                if let Some((at, _)) = self.services[i].cert_renewal
                    && now >= at
                    && now - dt < at
                {
                    self.log(id, u8::MAX, EventKind::CertRenewed, 0.0, 0.0, 0);
                }
                let expiry = oldest_cert;
                let left = if expiry.is_finite() {
                    expiry - now
                } else {
                    self.current_secret_expiry(id) - now
                };
                self.frames[i].cert_expires_in_s = left as f32;
                if left <= 0.0 {
                    self.log_throttled(id, SLOT_CERT, EventKind::CertExpired, -left, 0.0, 0);
                }
            } else {
                self.frames[i].cert_expires_in_s = f32::NAN;
            }

            // Caches: each ready replica warms up over minutes; a fresh or missing replica misses.
            if spec.kind == ServiceKind::Cache {
                let st = &self.services[i];
                let slots = st.desired.max(1) as f64;
                let warmth: f64 = st
                    .slots()
                    .iter()
                    .filter(|r| r.phase == Phase::Running)
                    .map(|r| {
                        // From 38 time constants on, e^-x < 2^-54 and 1 - e^-x rounds to exactly 1.
                        let x = (now - r.started_s) / 300.0;
                        if x >= 38.0 { 1.0 } else { 1.0 - (-x).exp() }
                    })
                    .sum();
                self.frames[i].cache_hit_ratio = (0.9 * (warmth / slots).min(1.0)) as f32;
            }

            let st = &self.services[i];
            let f = &mut self.frames[i];
            f.version = current;
            f.desired = st.desired as u8;
            f.pods = live;
            f.pending = pending;
            f.memory_limit_mb = st.memory_mb as f32;
            f.requests_total = st.requests_total;
            f.errors_total = st.errors_total;
            f.rejected_total = st.rejected_total;
            f.cpu_seconds_total = st.cpu_seconds_total;
            f.restarts_total = st.restarts_total;
            f.oom_kills_total = st.oom_kills_total;
        }
        // Databases: connections open from every client pool.
        for i in 0..topo.len() {
            if topo.services[i].spec.kind == ServiceKind::Database {
                let mut conns = 0.0;
                for &e in &topo.services[i].in_edges {
                    let from = topo.edges[e].from.index();
                    if topo.edges[e].pool.is_some() {
                        conns +=
                            self.frames[from].pool_in_use as f64 * self.frames[from].ready as f64;
                    }
                }
                self.frames[i].db_connections = conns as f32;
            }
        }
    }

    /// Publish/subscribe: delivery needs a QoS match and reachability; backlogs grow when readers fall behind.
    fn topics(&mut self, topo: &Topology, dt: f64) {
        for f in self.frames.iter_mut() {
            f.published_hz = 0.0;
            f.delivered_hz = 0.0;
            f.consumed_hz = 0.0;
            f.queue_depth = 0.0;
            f.qos_mismatches = 0;
        }
        for p in 0..self.publications.len() {
            let pub_ = self.publications[p];
            let w = pub_.service.index();
            if self.frames[w].ready > 0 {
                let rate = pub_.rate_hz * self.scratch.work[w].behaviour.publish_factor;
                self.frames[w].published_hz += rate as f32;
            }
        }
        for k in 0..self.subscriptions.len() {
            let sub = self.subscriptions[k];
            let reader = sub.service.index();
            let mut delivered = 0.0;
            let mut matched = 0;
            for p in 0..self.publications.len() {
                let pub_ = self.publications[p];
                if pub_.topic != sub.topic {
                    continue;
                }
                if !pub_.qos.satisfies(&sub.qos) {
                    continue;
                }
                matched += 1;
                let w = pub_.service.index();
                if self.frames[w].ready == 0
                    || self.services[w].detached
                    || self.services[reader].detached
                {
                    continue;
                }
                delivered += pub_.rate_hz * self.scratch.work[w].behaviour.publish_factor;
            }
            let cap_per = topo.topics[sub.topic as usize].readers[sub.reader as usize]
                .capacity_hz_per_replica;
            let st = &self.services[reader];
            let capacity = cap_per * self.frames[reader].ready as f64 * st.cpu_share
                / self
                    .scratch
                    .work
                    .get(reader)
                    .map(|w| w.behaviour.cpu_factor)
                    .unwrap_or(1.0);
            let backlog = sub.depth + delivered * dt;
            let consumed = backlog.min(capacity * dt);
            let limit = match sub.qos.reliability {
                crate::spec::Reliability::Reliable => 1_000_000.0,
                crate::spec::Reliability::BestEffort => 1_000.0,
            };
            let depth = (backlog - consumed).min(limit);
            self.subscriptions[k].depth = depth;
            let f = &mut self.frames[reader];
            f.delivered_hz += delivered as f32;
            f.consumed_hz += (consumed / dt) as f32;
            f.queue_depth += depth as f32;
            let id = sub.service;
            if matched == 0 {
                self.frames[reader].qos_mismatches += 1;
                self.log_throttled(
                    id,
                    SLOT_QUEUE,
                    EventKind::QosIncompatible,
                    0.0,
                    0.0,
                    sub.topic as u32,
                );
            } else if depth > capacity.max(1.0) * 60.0 {
                self.log_throttled(
                    id,
                    SLOT_QUEUE,
                    EventKind::QueueBacklog,
                    depth,
                    delivered,
                    sub.topic as u32,
                );
            }
        }
    }

    /// Log volume into the observability pipeline; a saturated pipeline drops a share of every service's logs.
    /// Returns that share (the frames get it in `finish_frames`).
    fn telemetry_pipeline(&mut self, topo: &Topology) -> f64 {
        let mut total = 0.0;
        let mut capacity = f64::INFINITY;
        let mut collector = None;
        let per_service = topo
            .services
            .iter()
            .zip(&mut self.frames)
            .zip(&self.scratch.work);
        for (i, ((svc, f), w)) in per_service.enumerate() {
            let spec = &svc.spec;
            // The rate for the ready replicas at the level, as traffic kept it, and the errors'.
            let lines = w.log_lines_base + (f.error_rps as f64).min(500.0);
            f.log_lines_per_s = lines as f32;
            total += lines;
            if spec.kind == ServiceKind::Observability {
                let st = &self.services[i];
                let cap = f.ready as f64 * spec.capacity_rps * st.cpu_share;
                capacity = if capacity.is_finite() {
                    capacity + cap
                } else {
                    cap
                };
                collector = Some(ServiceId(i as u16));
            }
        }
        let drop = if capacity.is_finite() && total > capacity {
            1.0 - capacity / total
        } else {
            0.0
        };
        if let Some(c) = collector {
            if drop > 0.01 {
                self.log_throttled(
                    c,
                    SLOT_TELEMETRY,
                    EventKind::TelemetryDropping,
                    drop,
                    total,
                    0,
                );
            }
            let f = &mut self.frames[c.index()];
            f.offered_rps = total as f32;
            f.admitted_rps = total.min(capacity) as f32;
        }
        drop
    }

    /// Finishes the frames: the pipeline's drop ratio and health, then adds them to the running totals (see
    /// [`ServiceTotals`]).
    ///
    /// Every counter is accumulated exactly as a renderer integrating the frame's rates from the first recorded
    /// tick would (same expressions, same order), so that reading a total is the same to the bit as integrating.
    /// The latency histogram and sum come from the tick's latency distribution at full precision.
    fn finish_frames(&mut self, topo: &Topology, dt: f64, drop: f64) {
        let first = self.ring.is_empty();
        // The per-service vectors walked together (one bounds check for all, pointers that step).
        let services = topo.services.iter().zip(&self.scratch.work);
        for ((f, t), (svc, w)) in self.frames.iter_mut().zip(&mut self.totals).zip(services) {
            f.log_drop_ratio = drop as f32;
            // Health last: it reads every other field of the frame.
            f.health = derive_health(f);
            if first {
                // Errors the world counted before recording began (none for a fresh world but float dust) are
                // 500s: there is no tick to tell their cause.
                t.server_errors[0] = (f.errors_total - f.error_rps as f64 * dt).max(0.0);
            }
            let code = match f.err_cause.server_error_code() {
                503 => 1,
                504 => 2,
                _ => 0,
            };
            add_rate(&mut t.server_errors[code], f.error_rps, dt);
            add_rate(&mut t.pool_timeouts, f.pool_timeouts_rps, dt);
            add_rate(&mut t.dns_failures, f.dns_failures_rps, dt);
            add_rate(&mut t.tls_failures, f.tls_failures_rps, dt);
            add_rate(&mut t.published, f.published_hz, dt);
            add_rate(&mut t.consumed, f.consumed_hz, dt);
            if !svc.spec.kind.serves_http() {
                // Nobody reads their histogram: the bucket probabilities are the tick's costliest arithmetic.
                continue;
            }
            let answered = (f.admitted_rps - f.error_rps).max(0.0) as f64 * dt;
            if answered > 0.0 {
                // The tick's latency distribution as traffic computed it, before the frame rounded it to `f32`
                // (its logarithm is taken there once for the callers too).
                add_bucket_counts(
                    &mut t.latency_buckets,
                    answered,
                    w.median_ms,
                    w.ln_median,
                    w.inv_sigma,
                );
                t.latency_buckets[LATENCY_BUCKETS_S.len()] += answered;
                t.latency_sum_s +=
                    answered * w.median_ms / 1000.0 * (0.5 * w.sigma * w.sigma).exp();
            }
        }
    }
}

/// The behaviour of `version` of a service combined with the flags enabled in `flags`.
fn combined_behaviour(svc: &Service, flags: u64, version: u8) -> Behaviour {
    let mut b = svc
        .version_behaviours
        .get(version as usize)
        .copied()
        .unwrap_or_default();
    for (i, f) in svc.spec.flags.iter().enumerate() {
        if i < 64 && flags & (1 << i) != 0 {
            b = b.combine(&f.when_on);
        }
    }
    b
}

/// A version's memory terms for the slot loop of `resources`: base working set, leak and pooled-connection leak
/// per tick.
#[inline]
fn memory_terms(spec: &ServiceSpec, b: &Behaviour, dt: f64, load_ratio: f64) -> (f64, f64, f64) {
    (
        spec.base_memory_mb + b.extra_memory_mb,
        b.leak_mb_per_min * dt / 60.0 * (0.5 + 0.5 * load_ratio),
        b.conn_leak_per_min * dt / 60.0 * (0.5 + 0.5 * load_ratio),
    )
}

/// [`memory_terms`] of another version than most replicas run, kept out of line whole: with only the behaviour
/// out of line, the compiler selected between the two behaviours and recomputed the terms (two divisions) for
/// every replica.
#[cold]
#[inline(never)]
fn other_memory_terms(
    svc: &Service,
    flags: u64,
    version: u8,
    dt: f64,
    load_ratio: f64,
) -> (f64, f64, f64) {
    memory_terms(
        &svc.spec,
        &combined_behaviour(svc, flags, version),
        dt,
        load_ratio,
    )
}

/// Index of the version most live replicas of a service run (the deployment target if none is live).
fn running_version_of(st: &ServiceState) -> u8 {
    // Outside a rollout every live replica runs the same version: answer without counting.
    let mut live = st.slots().iter().filter(|r| r.is_live());
    match live.next() {
        None => return st.version,
        Some(first) if live.all(|r| r.version == first.version) => return first.version,
        _ => {}
    }
    let mut counts = [0u8; 256];
    let mut best = (0u8, st.version);
    for r in st.slots().iter().filter(|r| r.is_live()) {
        let c = &mut counts[r.version as usize];
        *c += 1;
        if *c > best.0 || (*c == best.0 && r.version == st.version) {
            best = (*c, r.version);
        }
    }
    best.1
}

/// How far out the latency histogram takes the normal distribution function: beyond `±6` its tail is below
/// 1e-9 (9.9e-10 at 6), within the 2e-9 of the table itself, so a bucket whose bound lies further out holds none
/// (below) or all (above) of the requests without a lookup.
const BUCKET_Z_CUT: f64 = 6.0;
// `add_bucket_counts` looks up `|z| < BUCKET_Z_CUT` without testing for the end of the table.
const _: () = assert!(BUCKET_Z_CUT < 7.0);

/// Adds `answered` requests with a log-normal latency of this median (given with its logarithm) and sigma (given
/// as its inverse) to the cumulative latency buckets (each bound `le` gets `answered · P(latency <= le)`; the
/// `+Inf` bucket is the caller's).
///
/// `P(latency <= le) = Φ((ln le - ln median) / sigma)`: the bounds' logarithms are constants, Φ is a table lookup
/// (see `normal`) and only the bounds within [`BUCKET_Z_CUT`] of the median need one. Within 2e-9 of the exact
/// probabilities, and monotone in `le`.
#[inline]
fn add_bucket_counts(
    buckets: &mut [f64; LATENCY_BUCKET_COUNT],
    answered: f64,
    median: f64,
    ln_median: f64,
    inv_sigma: f64,
) {
    let z = |k: usize| (LN_LATENCY_BUCKETS_MS[k] - ln_median) * inv_sigma;
    let n = LN_LATENCY_BUCKETS_MS.len();
    let mut k = 0;
    if median > 0.0 {
        // Bounds far below the median: empty buckets, nothing to add.
        while k < n && z(k) <= -BUCKET_Z_CUT {
            k += 1;
        }
        // `Φ(z)` is `std_normal_cdf(z)`, the table's upper tail `Q(-z)` below the median and `1 - Q(z)` from it
        // up to the cut, in two loops so that neither tests the sign (nor the end of the table, which is beyond
        // the cut). The bounds rise and `sigma > 0`, so once `z >= 0` it stays so, and after the scan above every
        // `z` is above `-BUCKET_Z_CUT`; a NaN `z` gives a NaN `c` in either loop.
        let mut prev = 0.0f64;
        // Monotone in `le` even where the interpolation wobbles: `c.max(prev)` (NaN gives `prev`) as a plain
        // comparison (`f64::max` compiles to a NaN-aware sequence, and `prev` is never NaN). Below the cut `c < 1`
        // (a test checks it), so no bucket here holds every request yet.
        let mut add = |k: usize, c: f64| {
            let p = if c > prev { c } else { prev };
            prev = p;
            buckets[k] += answered * p;
        };
        while k < n {
            let z = z(k);
            if z >= 0.0 {
                break;
            }
            add(k, upper_tail_within_7(-z));
            k += 1;
        }
        while k < n {
            let z = z(k);
            if z >= BUCKET_Z_CUT {
                break;
            }
            add(k, 1.0 - upper_tail_within_7(z));
            k += 1;
        }
    }
    // Once a bucket holds every request the ones above it do too.
    for total in &mut buckets[k..n] {
        *total += answered;
    }
}

/// `h.rem_euclid(24.0)`, the same to the bit, without the call to `fmod` (a bit-by-bit loop of some hundred
/// instructions) for the hours of the simulated clock.
///
/// For `0 <= h < 2^51`, `k` is `h / 24` rounded to an integer, `⌊h/24⌋` or one more, so `h - 24k` is the remainder
/// or the remainder less 24. Both steps are exact: `24k` is an integer below 2^53, and `h - 24k` is a
/// subtraction of two floats within a factor 2 of each other (Sterbenz) or with `k = 0`; adding 24 then gives
/// the remainder, which is representable (a remainder always is). Other values take `rem_euclid` itself.
#[inline]
fn hour_of_day(h: f64) -> f64 {
    // 2^52: adding it to a float in [0, 2^51) rounds that to an integer.
    const ROUND: f64 = 4_503_599_627_370_496.0;
    if !(0.0..2_251_799_813_685_248.0).contains(&h) {
        return h.rem_euclid(24.0);
    }
    let k = (h / 24.0 + ROUND) - ROUND;
    let r = h - 24.0 * k;
    if r < 0.0 { r + 24.0 } else { r }
}

/// `a.min(b)` as one comparison, for a `b` that is never NaN (a NaN `a` gives `b`, as `min` does): `f64::min`
/// of two variables compiles to a NaN-aware sequence of six instructions. The callers' `b` are products and
/// quotients of validated finite spec and configuration values (timeouts, pool sizes, capacities, CPU limits),
/// and their operands are never a `-0` against a `+0`, the one other case where the two may differ.
#[inline]
fn min_to(a: f64, b: f64) -> f64 {
    if a < b { a } else { b }
}

/// Adds a per-second rate over one tick to a total, ignoring non-finite and non-positive rates.
#[inline]
fn add_rate(total: &mut f64, rate: f32, dt: f64) {
    // Finite and positive, as one integer comparison: the bit patterns of the positive finite `f32`s are exactly
    // 1..0x7f80_0000 (zero, the negatives, infinity and NaN all fall outside). The float comparisons compile to a
    // chain of classification tests.
    if rate.to_bits().wrapping_sub(1) < 0x7f80_0000 - 1 {
        *total += rate as f64 * dt;
    }
}

/// Health from a frame: down without ready replicas; otherwise by error ratio, tail latency and missing replicas.
#[inline]
pub fn derive_health(f: &ServiceFrame) -> Health {
    if f.desired > 0 && f.ready == 0 {
        return Health::Down;
    }
    let err = f.error_ratio();
    // Failing services are unhealthy whatever their latency: no p99 to compute.
    if err >= 0.2 || f.qos_mismatches > 0 {
        return Health::Unhealthy;
    }
    // The p99 only matters from 1 s up. Most ticks a cheap upper bound of the exponential in `p99_ms` shows it
    // is below that, and then the exact value would change nothing: 0 stands in for it.
    let y = P99_Z * f.latency_sigma as f64;
    let p99 = if y < 15.0 && f.latency_median_ms as f64 * exp_upper_bound(y) < 1_000.0 {
        0.0
    } else {
        f.p99_ms()
    };
    let queue_stuck =
        f.qos_mismatches > 0 || (f.delivered_hz > 0.0 && f.queue_depth > f.delivered_hz * 120.0);
    if p99 >= 5_000.0 {
        Health::Unhealthy
    } else if err >= 0.02
        || p99 >= 1_000.0
        || f.ready < f.desired
        || queue_stuck
        || f.disk_size_gb > 0.0 && f.disk_used_gb >= 0.9 * f.disk_size_gb
    {
        Health::Degraded
    } else {
        Health::Healthy
    }
}

/// The standard normal quantile of 0.99 that [`ServiceFrame::p99_ms`] uses.
const P99_Z: f64 = 2.326_347_874;

/// An upper bound of `e^y` for `y < 16`, in six arithmetic operations instead of an exponential.
///
/// For `0 <= y < 16`, `(1 - y/16)^-16 = e^(y + y²/32 + y³/768 + …) >= e^y`; for `y < 0` it is 1 >= `e^y`. Its
/// rounding errors (a subtraction, a division and four squarings, below 1e-14 relative in all) are covered by
/// the factor `1 + 1e-12`, which also puts it above an exponential correct to within an ulp. So `m * bound < t`
/// implies `m * y.exp() < t` when both products are rounded, for any `m`.
#[inline]
fn exp_upper_bound(y: f64) -> f64 {
    let r = 1.0 / (1.0 - y.max(0.0) / 16.0);
    let r2 = r * r;
    let r4 = r2 * r2;
    let r8 = r4 * r4;
    r8 * r8 * (1.0 + 1e-12)
}

/// `1 - (1 - x)^c`: the share of requests that see a failure among `c` calls that each fail with probability
/// `x`.
///
/// Where `x · max(c, 1) <= 0.01` (healthy dependencies, most ticks) it is the binomial series
/// `Σ (-1)^(k+1) C(c, k) x^k` to the sixth power, with a relative error below 2e-13 (the terms after it shrink
/// geometrically from `x^6 / 7` for `c < 1`, from `(c x)^6 / 5040` above), which is more accurate than `powf`
/// there: `1 - x` loses the digits of `x` below 1e-16. Elsewhere `powf`.
///
/// The series' coefficients depend on `c` alone, which is fixed per edge: they are computed once per edge
/// ([`FailureSeries::new`]), with the expressions that computed them at every call before, so the same values.
#[derive(Debug, Clone, Copy)]
struct FailureSeries {
    /// Calls per request.
    c: f64,
    /// `c.max(1.0)`, for the test of where the series holds.
    c_at_least_1: f64,
    /// The binomial coefficients `(-1)^(k+1) C(c, k)`, `k = 1..=6`.
    b: [f64; 6],
}

impl FailureSeries {
    fn new(c: f64) -> FailureSeries {
        let b1 = c;
        let b2 = b1 * (1.0 - c) * 0.5;
        let b3 = b2 * (2.0 - c) * (1.0 / 3.0);
        let b4 = b3 * (3.0 - c) * 0.25;
        let b5 = b4 * (4.0 - c) * 0.2;
        let b6 = b5 * (5.0 - c) * (1.0 / 6.0);
        FailureSeries {
            c,
            c_at_least_1: c.max(1.0),
            b: [b1, b2, b3, b4, b5, b6],
        }
    }

    /// `1 - (1 - x)^c`.
    #[inline]
    fn any_failed(&self, x: f64) -> f64 {
        let [b1, b2, b3, b4, b5, b6] = self.b;
        if x * self.c_at_least_1 <= 0.01 {
            x * (b1 + x * (b2 + x * (b3 + x * (b4 + x * (b5 + x * b6)))))
        } else {
            1.0 - (1.0 - x).powf(self.c)
        }
    }
}

/// A uniform draw in [0, 1).
#[inline]
pub(crate) fn uniform(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// An approximately standard normal draw: four uniforms summed, centred and rescaled (the Irwin–Hall
/// distribution), all four cut from one 64-bit draw as 16-bit uniforms. Cheaper than Box-Muller and than four
/// draws; neither the tails it cuts off at ±2√3 ≈ ±3.46 sigma nor its steps of 2.6e-5 sigma matter for noise.
#[inline]
pub(crate) fn gaussian(rng: &mut ChaCha8Rng) -> f64 {
    gaussian_from_bits(rng.next_u64())
}

/// [`gaussian`] of the draw `x`.
#[inline]
fn gaussian_from_bits(x: u64) -> f64 {
    // The four 16-bit lanes summed in two steps: pairs of lanes in each 32-bit half, then the halves.
    const LOW_LANES: u64 = 0x0000_ffff_0000_ffff;
    let pairs = (x & LOW_LANES) + ((x >> 16) & LOW_LANES);
    let sum = (pairs & 0xffff_ffff) + (pairs >> 32);
    // Lane value k stands for the uniform (k + 1/2) / 2^16, so the four sum to (sum + 2) / 2^16 with mean 2: centred,
    // (sum - (2^17 - 2)) / 2^16; times √3 for unit variance (each uniform's is 1/12).
    const SQRT_3: f64 = 1.732_050_807_568_877_2;
    (sum as f64 - 131_070.0) * (SQRT_3 / 65_536.0)
}

/// P(X > threshold) for a log-normal latency with this median and sigma (within 2e-9, see
/// [`std_normal_cdf`]).
#[inline]
pub fn lognormal_tail(median_ms: f64, sigma: f64, threshold_ms: f64) -> f64 {
    if median_ms <= 0.0 {
        return 0.0;
    }
    if threshold_ms <= 0.0 {
        return 1.0;
    }
    // The upper tail as the table's lower one, which keeps its relative precision.
    std_normal_cdf((median_ms / threshold_ms).ln() / sigma)
}

/// [`lognormal_tail`] from logarithms taken beforehand: the median's (`ln_median`, with `inv_sigma = 1 / sigma`)
/// once per service for all its callers, the threshold's once per edge. Within 1e-14 of [`lognormal_tail`] (the
/// difference of two logarithms in place of the logarithm of a ratio, a product in place of a quotient).
#[inline]
fn lognormal_tail_ln(
    median_ms: f64,
    ln_median: f64,
    inv_sigma: f64,
    threshold_ms: f64,
    ln_threshold: f64,
) -> f64 {
    if median_ms <= 0.0 {
        return 0.0;
    }
    if threshold_ms <= 0.0 {
        return 1.0;
    }
    std_normal_cdf((ln_median - ln_threshold) * inv_sigma)
}

/// P(X <= threshold) for a log-normal latency with this median and sigma (within 2e-9, see
/// [`std_normal_cdf`]).
#[inline]
pub fn lognormal_cdf(median_ms: f64, sigma: f64, threshold_ms: f64) -> f64 {
    if median_ms <= 0.0 {
        return 1.0;
    }
    if threshold_ms <= 0.0 {
        return 0.0;
    }
    std_normal_cdf((threshold_ms / median_ms).ln() / sigma)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slot summaries a world keeps across ticks are those of its slots as they stand: checked after every
    /// tick and every operation through OOM crash loops (a leaking version rolled out on a small memory limit),
    /// a rollout and a rollback, restarts, scaling both ways, a flag, a log level, a new CPU limit, an expiring and a renewed
    /// certificate and a network split; and so are the per-service values traffic keeps for settled services.
    /// Fails if any change of the slots does not forget the summary.
    #[test]
    fn kept_slot_summaries_are_those_of_the_slots() {
        use crate::{Actor, Operation, Perturbation};
        let spec: crate::spec::TopologySpec =
            serde_json::from_str(include_str!("../tests/fixtures/small.json")).expect("spec");
        let topology = Arc::new(
            Topology::compile(&spec, &crate::topology::SpecPath::root()).expect("topology"),
        );
        let mut w = World::new(topology, 3, WorldOptions::default());
        let (mut kept, mut walked, mut settled) = (0, 0, 0);
        let mut check = |w: &World| {
            for (i, (st, work)) in w.services.iter().zip(&w.scratch.work).enumerate() {
                if work.slots_known {
                    assert_eq!(work.slots, SlotSummary::of(st), "at second {}", w.now_s);
                    kept += 1;
                } else {
                    walked += 1;
                }
                if work.settled {
                    let s = SlotSummary::of(st);
                    assert!(work.slots_known);
                    assert_eq!((work.ready, work.version), (s.ready, s.version));
                    assert_eq!(work.behaviour_key, Some((s.version, st.flags)));
                    assert_eq!(work.cpu_millis_key, Some(st.cpu_millis));
                    assert_eq!(work.tls_bad, 0.0);
                    let spec = &w.topology.services[i].spec;
                    let lines =
                        spec.log_lines_per_s * s.ready as f64 * st.fx.log_level.volume_factor();
                    assert_eq!(work.log_lines_base.to_bits(), lines.to_bits());
                    settled += 1;
                }
            }
        };
        let id = |w: &World, name: &str| w.topology().service_id(name).expect("service");
        let (api, edge, worker) = (id(&w, "api"), id(&w, "edge"), id(&w, "worker"));
        let ops = [
            (
                40,
                Some(Operation::Deploy {
                    service: api,
                    version: 1,
                }),
            ),
            (
                10,
                Some(Operation::Restart {
                    service: api,
                    memory_mb: Some(300),
                    cpu_millis: None,
                }),
            ),
            (
                200,
                Some(Operation::Scale {
                    service: api,
                    replicas: 5,
                }),
            ),
            (
                30,
                Some(Operation::Restart {
                    service: worker,
                    memory_mb: None,
                    cpu_millis: None,
                }),
            ),
            (
                30,
                Some(Operation::SetFlag {
                    service: api,
                    flag: 0,
                    enabled: true,
                }),
            ),
            (
                30,
                Some(Operation::SetConfig {
                    service: api,
                    key: "log.level".into(),
                    value: "debug".into(),
                }),
            ),
            (
                30,
                Some(Operation::Restart {
                    service: worker,
                    memory_mb: None,
                    cpu_millis: Some(700),
                }),
            ),
            (
                60,
                Some(Operation::Scale {
                    service: api,
                    replicas: 1,
                }),
            ),
            (
                60,
                Some(Operation::Deploy {
                    service: api,
                    version: 0,
                }),
            ),
            (
                100,
                Some(Operation::Restart {
                    service: api,
                    memory_mb: Some(2048),
                    cpu_millis: None,
                }),
            ),
            (100, None),
        ];
        for (k, (ticks, op)) in ops.into_iter().enumerate() {
            for _ in 0..ticks {
                w.step();
                check(&w);
            }
            if let Some(op) = op {
                let _ = w.apply(&op, &Actor::oncall());
                check(&w);
            }
            if k == 3 {
                let now = w.now_s();
                w.perturb(&Perturbation::Certificate {
                    service: edge,
                    expires_at_s: now + 120.0,
                    renewed_at_s: Some(now + 600.0),
                });
                check(&w);
                w.perturb(&Perturbation::DetachNetwork { service: worker });
                check(&w);
            }
        }
        assert!(
            w.service(api).restarts_total >= 2,
            "the leaking version crashed"
        );
        assert!(kept > 10 * walked, "kept {kept}, walked {walked}");
        assert!(settled > 10 * walked, "settled {settled}, walked {walked}");
    }

    /// The log-normal distribution function through libm's erfc.
    fn lognormal_cdf_exact(median_ms: f64, sigma: f64, threshold_ms: f64) -> f64 {
        0.5 * libm::erfc(-(threshold_ms / median_ms).ln() / (sigma * std::f64::consts::SQRT_2))
    }

    #[test]
    fn lognormal_tail_and_cdf_are_close_to_exact_and_complementary() {
        for median in [0.6, 3.0, 40.0, 900.0, 7_000.0] {
            for sigma in [0.05, 0.3, 0.5, 1.0, 2.0] {
                let mut t = 0.1;
                while t < 100_000.0 {
                    let exact = lognormal_cdf_exact(median, sigma, t);
                    let (cdf, tail) = (
                        lognormal_cdf(median, sigma, t),
                        lognormal_tail(median, sigma, t),
                    );
                    assert!((cdf - exact).abs() < 2e-9, "{median} {sigma} {t}");
                    assert!((tail - (1.0 - exact)).abs() < 2e-9, "{median} {sigma} {t}");
                    assert!((cdf + tail - 1.0).abs() < 4e-9);
                    t *= 1.07;
                }
            }
        }
        assert_eq!(lognormal_cdf(0.0, 0.5, 10.0), 1.0);
        assert_eq!(lognormal_tail(0.0, 0.5, 10.0), 0.0);
        assert_eq!(lognormal_cdf(10.0, 0.5, 0.0), 0.0);
        assert_eq!(lognormal_tail(10.0, 0.5, 0.0), 1.0);
    }

    #[test]
    fn the_tail_from_logarithms_taken_beforehand_is_the_tail() {
        let mut worst = 0.0f64;
        for median in [0.6, 3.0, 40.0, 900.0, 7_000.0, 0.0, -1.0] {
            for sigma in [0.05, 0.3, 0.5, 1.0, 2.0] {
                let mut t = 0.1;
                while t < 100_000.0 {
                    let direct = lognormal_tail(median, sigma, t);
                    let from_ln = lognormal_tail_ln(median, median.ln(), 1.0 / sigma, t, t.ln());
                    assert!((direct - from_ln).abs() < 1e-14, "{median} {sigma} {t}");
                    worst = worst.max((direct - from_ln).abs());
                    t *= 1.07;
                }
                assert_eq!(
                    lognormal_tail_ln(median, median.ln(), 1.0 / sigma, 0.0, f64::NEG_INFINITY),
                    { if median <= 0.0 { 0.0 } else { 1.0 } }
                );
            }
        }
        // Not equal to the bit everywhere: the bound is about something.
        assert!(worst > 0.0);
    }

    #[test]
    fn any_failed_is_one_minus_the_power_to_its_claimed_precision() {
        for c in [
            0.01, 0.1, 0.3, 0.35, 0.5, 0.8, 0.999, 1.5, 2.0, 2.5, 3.0, 7.3, 20.0, 50.0,
        ] {
            let mut x = 1e-12f64;
            while x < 1.0 {
                // -expm1(c ln1p(-x)) keeps the digits that 1 - (1 - x)^c loses.
                let exact = -(c * (-x).ln_1p()).exp_m1();
                let got = FailureSeries::new(c).any_failed(x);
                let tol = if x * f64::max(c, 1.0) <= 0.01 {
                    2e-13 * exact
                } else {
                    // powf's own cancellation: 1 - x is rounded to 1e-16.
                    4e-16 * c.max(1.0) + 1e-15 * exact
                };
                assert!((got - exact).abs() <= tol, "c {c} x {x}: {got} vs {exact}");
                x *= 1.13;
            }
        }
        // Past the series, powf.
        assert_eq!(
            FailureSeries::new(3.0).any_failed(0.5),
            1.0 - 0.5f64.powf(3.0)
        );
    }

    /// The series with its coefficients computed once per edge is the series with them computed at every call
    /// (as the tick did before), to the bit.
    #[test]
    fn failure_series_kept_per_edge_is_the_series_computed_per_call() {
        fn per_call(x: f64, c: f64) -> f64 {
            if x * c.max(1.0) <= 0.01 {
                let b1 = c;
                let b2 = b1 * (1.0 - c) * 0.5;
                let b3 = b2 * (2.0 - c) * (1.0 / 3.0);
                let b4 = b3 * (3.0 - c) * 0.25;
                let b5 = b4 * (4.0 - c) * 0.2;
                let b6 = b5 * (5.0 - c) * (1.0 / 6.0);
                x * (b1 + x * (b2 + x * (b3 + x * (b4 + x * (b5 + x * b6)))))
            } else {
                1.0 - (1.0 - x).powf(c)
            }
        }
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for _ in 0..20_000 {
            let c = (uniform(&mut rng) * 60.0).min(50.0);
            let series = FailureSeries::new(c);
            for x in [
                uniform(&mut rng) * 1e-3,
                uniform(&mut rng) * 0.02,
                uniform(&mut rng),
                1e-12,
                0.01 / c.max(1.0),
            ] {
                assert_eq!(series.any_failed(x).to_bits(), per_call(x, c).to_bits());
            }
        }
    }

    #[test]
    fn exp_upper_bound_is_above_the_exponential_by_the_claimed_margin() {
        let mut y = -3.0;
        while y < 16.0 {
            let b = exp_upper_bound(y);
            assert!(b >= y.exp() * (1.0 + 1e-13), "y = {y}");
            // And it is the bound it claims to be, so no looser than e^(y²/32 + …) (1.05 at y = 1.2).
            let claimed = (-16.0 * (-y.max(0.0) / 16.0).ln_1p()).exp();
            assert!(b <= claimed * (1.0 + 2e-12), "y = {y}");
            y += 0.000_97;
        }
    }

    /// `derive_health` with the exact p99, as it was before the bound.
    fn health_exact(f: &ServiceFrame) -> Health {
        if f.desired > 0 && f.ready == 0 {
            return Health::Down;
        }
        let err = f.error_ratio();
        let p99 = f.p99_ms();
        let queue_stuck = f.qos_mismatches > 0
            || (f.delivered_hz > 0.0 && f.queue_depth > f.delivered_hz * 120.0);
        if err >= 0.2 || p99 >= 5_000.0 || f.qos_mismatches > 0 {
            Health::Unhealthy
        } else if err >= 0.02
            || p99 >= 1_000.0
            || f.ready < f.desired
            || queue_stuck
            || f.disk_size_gb > 0.0 && f.disk_used_gb >= 0.9 * f.disk_size_gb
        {
            Health::Degraded
        } else {
            Health::Healthy
        }
    }

    #[test]
    fn health_with_the_bounded_p99_is_health_with_the_exact_one() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut f = ServiceFrame {
            ready: 2,
            desired: 2,
            offered_rps: 100.0,
            ..ServiceFrame::default()
        };
        let mut checked = [0usize; 3];
        for k in 0..200_000 {
            // Medians spread over 0.1 ms .. 10 s, sigmas over 0 .. 2.5, with values right at the thresholds.
            let median = (10f64).powf(uniform(&mut rng) * 5.0 - 1.0);
            // Some sigmas tiny, where the bound is tightest.
            let sigma = uniform(&mut rng) * if k % 5 == 0 { 1e-6 } else { 2.5 };
            f.latency_median_ms = median as f32;
            f.latency_sigma = sigma as f32;
            if k % 3 == 0 {
                // A median that puts the p99 within a few `f32` steps of 1 s.
                let at = (1_000.0 / (P99_Z * f.latency_sigma as f64).exp()) as f32;
                let steps = (uniform(&mut rng) * 9.0) as i32 - 4;
                f.latency_median_ms = f32::from_bits((at.to_bits() as i32 + steps) as u32);
            }
            f.error_rps = if k % 7 == 0 { 10.0 } else { 0.0 };
            assert_eq!(derive_health(&f), health_exact(&f), "{f:?}");
            checked[derive_health(&f) as usize] += 1;
        }
        for odd in [
            f32::NAN,
            f32::INFINITY,
            -1.0,
            0.0,
            f32::MAX,
            f32::MIN_POSITIVE,
        ] {
            for sigma in [f32::NAN, f32::INFINITY, -1.0, 0.0, 2.0, 7.0, 20.0] {
                f.latency_median_ms = odd;
                f.latency_sigma = sigma;
                assert_eq!(derive_health(&f), health_exact(&f), "{f:?}");
                f.latency_median_ms = 50.0;
                assert_eq!(derive_health(&f), health_exact(&f), "{f:?}");
            }
        }
        // Every outcome the latency can give was reached.
        assert!(checked.iter().all(|&n| n > 1_000), "{checked:?}");
    }

    #[test]
    fn gaussian_is_the_irwin_hall_sum_of_four_uniforms() {
        // Symmetric to the bit: complementing the draw negates the value.
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for _ in 0..10_000 {
            let x = rng.next_u64();
            assert_eq!(gaussian_from_bits(!x), -gaussian_from_bits(x));
        }
        // The extremes are ±2√3 less half a step per lane.
        let edge = 3.0f64.sqrt() * (2.0 - 2.0 / 65_536.0);
        assert!((gaussian_from_bits(u64::MAX) - edge).abs() < 1e-15);
        assert!((gaussian_from_bits(0) + edge).abs() < 1e-15);
        // Each lane counts with the same weight.
        for lane in 0..4 {
            let one = gaussian_from_bits(1 << (16 * lane)) - gaussian_from_bits(0);
            assert!(
                (one - 3.0f64.sqrt() / 65_536.0).abs() < 1e-12,
                "lane {lane}"
            );
        }
        // Moments and distribution: mean 0, variance 1, and the Irwin–Hall distribution function of four
        // uniforms (rescaled) at a few points, from 400,000 draws (the tolerances are about five standard errors).
        let n = 400_000;
        let (mut sum, mut sum2) = (0.0, 0.0);
        let points = [-3.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0];
        let mut below = [0usize; 9];
        for _ in 0..n {
            let g = gaussian(&mut rng);
            sum += g;
            sum2 += g * g;
            for (k, p) in points.iter().enumerate() {
                below[k] += (g <= *p) as usize;
            }
        }
        let mean = sum / n as f64;
        let var = sum2 / n as f64 - mean * mean;
        assert!(mean.abs() < 0.008, "mean {mean}");
        assert!((var - 1.0).abs() < 0.012, "variance {var}");
        // Irwin–Hall CDF of the sum of four uniforms at s = 2 + g / √3.
        let irwin_hall = |s: f64| -> f64 {
            let s = s.clamp(0.0, 4.0);
            let mut c = 0.0;
            for k in 0..=4 {
                let t = s - k as f64;
                if t > 0.0 {
                    let binom = [1.0, 4.0, 6.0, 4.0, 1.0][k];
                    c += if k % 2 == 0 { 1.0 } else { -1.0 } * binom * t.powi(4);
                }
            }
            c / 24.0
        };
        for (k, p) in points.iter().enumerate() {
            let got = below[k] as f64 / n as f64;
            let want = irwin_hall(2.0 + p / 3.0f64.sqrt());
            assert!((got - want).abs() < 0.004, "at {p}: {got} vs {want}");
        }
    }

    #[test]
    fn hour_of_day_is_rem_euclid_to_the_bit() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let check = |h: f64| {
            assert_eq!(
                hour_of_day(h).to_bits(),
                h.rem_euclid(24.0).to_bits(),
                "{h}"
            );
        };
        for h in [
            0.0,
            -0.0,
            11.999_999_999_999_998,
            12.0,
            23.999_999_999_999_996,
            24.0,
            35.999_999_999_999_99,
            36.0,
            47.999_999_999_999_99,
            48.0,
            -1.0,
            -24.0,
            1e300,
            f64::NAN,
            f64::INFINITY,
            2_251_799_813_685_247.5,
        ] {
            check(h);
        }
        // Hours of Unix times from the epoch to the year 2200, at random and next to every multiple of 24.
        for _ in 0..200_000 {
            let h = uniform(&mut rng) * 2_000_000.0;
            check(h);
            let day = (h / 24.0).floor() * 24.0;
            // The neighbours of the multiple (`next_down` of 0 is the negative subnormal, where taking one from its
            // bits would overflow).
            for x in [day, day.next_down(), day.next_up()] {
                check(x);
            }
        }
    }

    #[test]
    fn min_to_is_min_for_a_b_that_is_not_nan() {
        let values = [
            f64::NAN,
            f64::NEG_INFINITY,
            -1.5,
            0.0,
            1e-300,
            0.5,
            1.0,
            2.0,
            1e300,
            f64::INFINITY,
        ];
        for a in values {
            for b in values.into_iter().filter(|b| !b.is_nan()) {
                assert_eq!(min_to(a, b).to_bits(), a.min(b).to_bits(), "{a} {b}");
            }
        }
    }

    #[test]
    fn add_rate_counts_exactly_the_finite_positive_rates() {
        let rates = [
            0.0,
            -0.0,
            1.5,
            -1.5,
            1e-45,
            f32::MIN_POSITIVE,
            f32::MAX,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            -f32::NAN,
        ];
        for r in rates {
            let mut total = 0.0;
            add_rate(&mut total, r, 1.0);
            let counted = (r as f64).is_finite() && r as f64 > 0.0;
            assert_eq!(total, if counted { r as f64 } else { 0.0 }, "rate {r}");
        }
    }

    #[test]
    fn bucket_counts_are_the_log_normal_probabilities_within_two_billionths() {
        let mut worst = 0.0f64;
        let mut cut = 0;
        for median in [
            0.3, 1.0, 4.5, 12.0, 40.0, 150.0, 999.0, 2_400.0, 9_000.0, 60_000.0,
        ] {
            let mut sigma = 0.01;
            while sigma <= 2.0 {
                let mut b = [0.0; LATENCY_BUCKET_COUNT];
                add_bucket_counts(&mut b, 1.0, median, median.ln(), 1.0 / sigma);
                let mut prev = 0.0;
                for (k, le) in LATENCY_BUCKETS_S.iter().enumerate() {
                    let exact = lognormal_cdf_exact(median, sigma, le * 1000.0);
                    let err = (b[k] - exact).abs();
                    assert!(
                        err < 2e-9,
                        "median {median} sigma {sigma} le {le}: {} vs {exact}",
                        b[k]
                    );
                    assert!(b[k] >= prev && b[k] <= 1.0);
                    worst = worst.max(err);
                    prev = b[k];
                    let z = ((le * 1000.0f64).ln() - median.ln()) / sigma;
                    cut += (z.abs() >= BUCKET_Z_CUT && z.abs() < 8.0) as usize;
                }
                // The caller's +Inf bucket is left alone.
                assert_eq!(b[LATENCY_BUCKETS_S.len()], 0.0);
                sigma *= 1.09;
            }
        }
        // The cut was exercised, and the error is not far below the bound it claims.
        assert!(cut > 100, "{cut}");
        assert!(worst > 1e-10, "{worst}");
        // No latency at all: every bucket holds every request.
        let mut b = [0.0; LATENCY_BUCKET_COUNT];
        add_bucket_counts(&mut b, 2.0, 0.0, f64::NEG_INFINITY, 2.0);
        assert!(b[..LATENCY_BUCKETS_S.len()].iter().all(|&x| x == 2.0));
    }

    #[test]
    fn below_the_bucket_cut_the_distribution_function_is_below_one() {
        // What lets the bucket loop skip the clamp to 1: even at the cut, a billionth of the requests is slower.
        let mut z = -10.0;
        while z < BUCKET_Z_CUT {
            assert!(std_normal_cdf(z) < 1.0 - 5e-10, "z = {z}");
            z += 0.000_31;
        }
        assert!(std_normal_cdf(BUCKET_Z_CUT.next_down()) < 1.0 - 5e-10);
    }

    #[test]
    fn bucket_logarithms_are_those_of_the_bounds() {
        for (le, ln) in LATENCY_BUCKETS_S.iter().zip(LN_LATENCY_BUCKETS_MS) {
            assert_eq!((le * 1000.0).ln(), ln, "{le}");
        }
    }

    #[test]
    fn lognormal_cdf_is_a_cdf() {
        assert!((lognormal_cdf(100.0, 0.5, 100.0) - 0.5).abs() < 1e-6);
        assert!(lognormal_cdf(100.0, 0.5, 10_000.0) > 0.999_999);
        assert!(lognormal_cdf(100.0, 0.5, 1.0) < 1e-6);
        let mut last = 0.0;
        for t in 1..2000 {
            let c = lognormal_cdf(100.0, 0.5, t as f64);
            assert!(c >= last);
            last = c;
        }
    }
}
