//! Prometheus-style metric series rendered from the world's frames.
//!
//! The world keeps one compact frame per service per tick (bounded retention); this module turns them into
//! named, labelled series with Prometheus types when somebody reads them, one sample per held tick (the scrape
//! interval is the tick). Counters are cumulative, monotonic and integral where they count things; histograms
//! are classic `le` buckets computed from each tick's log-normal latency distribution. Every series carries
//! `service`, `job` (= service) and `namespace="prod"`; per-pod series add `pod`.
//!
//! Every family reads the ticks of the requested window only: counters read totals the world keeps per tick
//! (the frame's own `*_total` fields, or [`firedrill_world::frame::ServiceTotals`] for what a frame holds as a
//! rate), so a query over five minutes costs five minutes of ticks whatever the history held. A sample is the
//! same whatever window it is rendered in.
//!
//! Nothing names a fault class, a hidden state or a fix: the catalogue is what a kube-state-metrics, cAdvisor,
//! postgres-exporter, blackbox-exporter and instrumented-application setup would expose.

use std::collections::{BTreeMap, BTreeSet};

use firedrill_world::frame::{ErrorCause, SERVER_ERROR_CODES, ServiceTotals};
use firedrill_world::spec::ServiceKind;
use firedrill_world::topology::MAX_REPLICAS;
use firedrill_world::world::LATENCY_BUCKETS_S;
use firedrill_world::{EventKind, ServiceFrame, ServiceId, World};
use serde::Serialize;

use crate::det;

/// Prometheus metric type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// Monotonic counter.
    Counter,
    /// Gauge.
    Gauge,
    /// Classic histogram (`_bucket`, `_sum`, `_count`).
    Histogram,
}

/// A metric family of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MetricInfo {
    /// Family name (for histograms, without the `_bucket`/`_sum`/`_count` suffix).
    pub name: &'static str,
    /// Type.
    pub kind: MetricKind,
    /// Help text.
    pub help: &'static str,
    /// Unit, as OpenMetrics spells it (`seconds`, `bytes`, `ratio`...; empty when dimensionless).
    pub unit: &'static str,
}

const fn info(
    name: &'static str,
    kind: MetricKind,
    unit: &'static str,
    help: &'static str,
) -> MetricInfo {
    MetricInfo {
        name,
        kind,
        help,
        unit,
    }
}

use MetricKind::{Counter, Gauge, Histogram};

/// Every metric family rendered.
pub const CATALOGUE: &[MetricInfo] = &[
    info(
        "http_requests_total",
        Counter,
        "requests",
        "Requests received, by status code.",
    ),
    info(
        "http_request_duration_seconds",
        Histogram,
        "seconds",
        "Latency of answered requests.",
    ),
    info("up", Gauge, "", "1 if at least one replica is ready."),
    info(
        "app_info",
        Gauge,
        "",
        "Running version, as a label (value 1).",
    ),
    info(
        "kube_deployment_spec_replicas",
        Gauge,
        "replicas",
        "Desired replicas.",
    ),
    info(
        "kube_deployment_status_replicas_available",
        Gauge,
        "replicas",
        "Ready replicas.",
    ),
    info(
        "kube_deployment_status_replicas_pending",
        Gauge,
        "replicas",
        "Pods waiting to be scheduled.",
    ),
    info(
        "kube_pod_container_status_restarts_total",
        Counter,
        "restarts",
        "Container restarts.",
    ),
    info(
        "kube_pod_container_status_oomkilled_total",
        Counter,
        "restarts",
        "Containers terminated with reason OOMKilled.",
    ),
    info(
        "kube_pod_container_resource_limits",
        Gauge,
        "",
        "Resource limits per container (memory in bytes, cpu in cores).",
    ),
    info(
        "container_memory_working_set_bytes",
        Gauge,
        "bytes",
        "Working set per pod.",
    ),
    info(
        "container_cpu_usage_seconds_total",
        Counter,
        "seconds",
        "CPU time consumed, over all pods.",
    ),
    info(
        "db_client_connections_in_use",
        Gauge,
        "connections",
        "Pooled connections in use per replica.",
    ),
    info(
        "db_client_connections_max",
        Gauge,
        "connections",
        "Pool size per replica.",
    ),
    info(
        "db_client_connection_timeouts_total",
        Counter,
        "timeouts",
        "Calls that gave up waiting for a pooled connection.",
    ),
    info(
        "db_client_connection_wait_seconds",
        Gauge,
        "seconds",
        "Mean wait for a pooled connection.",
    ),
    info(
        "pg_lock_wait_seconds",
        Gauge,
        "seconds",
        "Mean wait on row locks per query.",
    ),
    info(
        "pg_stat_activity_count",
        Gauge,
        "connections",
        "Open client connections.",
    ),
    info("node_filesystem_size_bytes", Gauge, "bytes", "Volume size."),
    info(
        "node_filesystem_avail_bytes",
        Gauge,
        "bytes",
        "Volume space available.",
    ),
    info(
        "probe_ssl_earliest_cert_expiry",
        Gauge,
        "seconds",
        "Expiry of the served certificate, unix seconds.",
    ),
    info(
        "dns_lookup_failures_total",
        Counter,
        "lookups",
        "Outgoing calls that failed name resolution.",
    ),
    info(
        "tls_handshake_failures_total",
        Counter,
        "handshakes",
        "Outgoing calls that failed the TLS handshake.",
    ),
    info(
        "ratelimit_rejected_total",
        Counter,
        "requests",
        "Requests rejected by the rate limiter.",
    ),
    info(
        "messages_published_total",
        Counter,
        "messages",
        "Messages published.",
    ),
    info(
        "messages_consumed_total",
        Counter,
        "messages",
        "Messages consumed.",
    ),
    info(
        "subscription_backlog_messages",
        Gauge,
        "messages",
        "Messages waiting in subscriptions.",
    ),
    info(
        "cache_hit_ratio",
        Gauge,
        "ratio",
        "Share of lookups served from the cache.",
    ),
    info(
        "log_pipeline_dropped_ratio",
        Gauge,
        "ratio",
        "Share of log lines dropped by the pipeline.",
    ),
];

/// Every metric family rendered (the same as [`CATALOGUE`]).
pub fn catalogue() -> &'static [MetricInfo] {
    CATALOGUE
}

/// One series: labels (including `__name__`) and samples as (unix ms, value), oldest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricSeries {
    /// Labels, including `__name__`.
    pub labels: BTreeMap<String, String>,
    /// Samples, oldest first, one per held tick in the requested window.
    pub samples: Vec<(i64, f64)>,
}

/// Unix milliseconds of the end of tick `tick` (the timestamp of its samples).
pub fn tick_ms(world: &World, tick: u64) -> i64 {
    det::tick_end_ms(world, tick)
}

/// A pod name like a ReplicaSet's: the service name and five lowercase alphanumerics derived from the world's
/// seed, the replica slot and the slot's pod generation.
pub fn pod_name(seed: u64, service: &str, slot: usize, generation: u32) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in service.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
    }
    h = det::splitmix64(h ^ det::splitmix64(seed));
    h = det::splitmix64(h ^ ((slot as u64) << 32 | generation as u64));
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    // Written into one string of the right size: every written log line, span and pod series names its pod,
    // and formatting took most of the time.
    let mut name = String::with_capacity(service.len() + 6);
    name.push_str(service);
    name.push('-');
    for i in 0..5 {
        name.push(ALPHABET[((h >> (i * 9)) % ALPHABET.len() as u64) as usize] as char);
    }
    name
}

/// Pod names over time, rebuilt from the world's events.
///
/// Frames record replicas by slot, not by pod. A slot keeps its pod (and name) across container restarts (an OOM
/// kill restarts the container in the same pod, as in Kubernetes) and gets a new pod, with a new name, after
/// each `PodTerminated` in that slot. Metrics, logs and traces all name pods through this, so they agree.
#[derive(Debug, Clone, PartialEq)]
pub struct PodNames {
    seed: u64,
    names: Vec<String>,
    /// Per service, per slot: world ms of every pod termination, in time order.
    terminations: Vec<Vec<Vec<i64>>>,
}

impl PodNames {
    /// Collects pod terminations from the world's events.
    pub fn new(world: &World) -> PodNames {
        let topo = world.topology();
        let n = topo.len();
        let mut terminations = vec![vec![Vec::new(); MAX_REPLICAS]; n];
        for e in world.events().iter() {
            if e.kind == EventKind::PodTerminated
                && (e.service as usize) < n
                && (e.replica as usize) < MAX_REPLICAS
            {
                terminations[e.service as usize][e.replica as usize].push(e.t_ms);
            }
        }
        PodNames {
            seed: world.seed(),
            names: topo.services.iter().map(|s| s.spec.name.clone()).collect(),
            terminations,
        }
    }

    /// The pod generation of a slot at a world time (ms since the world began): pods terminated before it.
    pub fn generation(&self, service: ServiceId, slot: usize, world_ms: i64) -> u32 {
        self.terminations
            .get(service.index())
            .and_then(|s| s.get(slot))
            .map(|v| v.partition_point(|&t| t < world_ms) as u32)
            .unwrap_or(0)
    }

    /// The name of the pod in a slot at a world time (ms since the world began).
    pub fn name(&self, service: ServiceId, slot: usize, world_ms: i64) -> String {
        let svc = self
            .names
            .get(service.index())
            .map(String::as_str)
            .unwrap_or("unknown");
        pod_name(
            self.seed,
            svc,
            slot,
            self.generation(service, slot, world_ms),
        )
    }
}

/// Whether a service's pods are ours (scraped, in the cluster) rather than a third party's.
fn in_cluster(kind: ServiceKind) -> bool {
    kind != ServiceKind::External
}

/// The status code most failures of a tick are answered with: the world's server-error code for its cause
/// (the one `http_requests_total` counts them under), or 429 when the rate limiter is the cause.
pub(crate) fn code_of(cause: ErrorCause) -> &'static str {
    if cause == ErrorCause::RateLimited {
        return "429";
    }
    match cause.server_error_code() {
        503 => "503",
        504 => "504",
        _ => "500",
    }
}

macro_rules! series_names {
    ($($variant:ident = $name:literal,)*) => {
        /// Every series name the renderer writes: the catalogue's families, a histogram as its three series.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u8)]
        pub enum SeriesName {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
        }

        impl SeriesName {
            /// All of them, in discriminant order.
            pub const ALL: &[SeriesName] = &[$(SeriesName::$variant,)*];

            /// The name as Prometheus shows it (`__name__`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(SeriesName::$variant => $name,)*
                }
            }
        }
    };
}

series_names! {
    HttpRequestsTotal = "http_requests_total",
    HttpRequestDurationBucket = "http_request_duration_seconds_bucket",
    HttpRequestDurationSum = "http_request_duration_seconds_sum",
    HttpRequestDurationCount = "http_request_duration_seconds_count",
    Up = "up",
    AppInfo = "app_info",
    DeploymentSpecReplicas = "kube_deployment_spec_replicas",
    DeploymentReplicasAvailable = "kube_deployment_status_replicas_available",
    DeploymentReplicasPending = "kube_deployment_status_replicas_pending",
    ContainerRestarts = "kube_pod_container_status_restarts_total",
    ContainerOomKills = "kube_pod_container_status_oomkilled_total",
    ContainerLimits = "kube_pod_container_resource_limits",
    WorkingSet = "container_memory_working_set_bytes",
    CpuUsage = "container_cpu_usage_seconds_total",
    PoolInUse = "db_client_connections_in_use",
    PoolMax = "db_client_connections_max",
    PoolTimeouts = "db_client_connection_timeouts_total",
    PoolWait = "db_client_connection_wait_seconds",
    LockWait = "pg_lock_wait_seconds",
    DbConnections = "pg_stat_activity_count",
    FilesystemSize = "node_filesystem_size_bytes",
    FilesystemAvail = "node_filesystem_avail_bytes",
    CertExpiry = "probe_ssl_earliest_cert_expiry",
    DnsFailures = "dns_lookup_failures_total",
    TlsFailures = "tls_handshake_failures_total",
    RateLimitRejected = "ratelimit_rejected_total",
    MessagesPublished = "messages_published_total",
    MessagesConsumed = "messages_consumed_total",
    SubscriptionBacklog = "subscription_backlog_messages",
    CacheHitRatio = "cache_hit_ratio",
    LogPipelineDropped = "log_pipeline_dropped_ratio",
}

/// The identity of one rendered series: its name, its service and which of that service's series of the name it
/// is (a status code, a bucket, a version, a pod...). A key always stands for the same label set in a world and
/// its forks ([`series_labels`]), so a reader can build each label set once and recognise the series by key
/// afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesKey(u64);

impl SeriesKey {
    fn new(name: SeriesName, service: ServiceId, variant: u32) -> SeriesKey {
        SeriesKey((name as u64) << 48 | (service.0 as u64) << 32 | variant as u64)
    }

    /// The series name.
    pub fn name(self) -> SeriesName {
        // Keys are only built by `new`, from a valid name.
        SeriesName::ALL[(self.0 >> 48) as usize]
    }

    /// The service whose series this is.
    pub fn service(self) -> ServiceId {
        ServiceId((self.0 >> 32) as u16)
    }

    fn variant(self) -> u32 {
        self.0 as u32
    }

    /// The key `j` variants after this one, of the same name and service: the `j`-th series of
    /// [`SampleSink::dense_run`].
    pub fn nth_after(self, j: u32) -> SeriesKey {
        SeriesKey::new(self.name(), self.service(), self.variant() + j)
    }

    /// The key as one integer (for stores that key series by `u64`).
    pub fn bits(self) -> u64 {
        self.0
    }

    /// The key of [`SeriesKey::bits`], or `None` for an integer no key has.
    pub fn from_bits(bits: u64) -> Option<SeriesKey> {
        ((bits >> 48) < SeriesName::ALL.len() as u64).then_some(SeriesKey(bits))
    }
}

/// One series keyed rather than labelled: the label set is [`series_labels`] of the key.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyedSeries {
    /// Which series.
    pub key: SeriesKey,
    /// Samples, oldest first, one per held tick in the requested window.
    pub samples: Vec<(i64, f64)>,
}

/// `code` label values of `http_requests_total`, as variants (the code itself).
const CODE_OK: u32 = 200;
const CODE_RATE_LIMITED: u32 = 429;
/// `kube_pod_container_resource_limits` variants.
const LIMIT_MEMORY: u32 = 0;
const LIMIT_CPU: u32 = 1;
/// Slots take the low bits of a pod's variant, its generation the rest.
const POD_SLOT_BITS: u32 = 4;
const _: () = assert!(MAX_REPLICAS <= 1 << POD_SLOT_BITS);

/// The label set of a keyed series (including `__name__`), or `None` for a key naming a service the world does
/// not have.
pub fn series_labels(world: &World, key: SeriesKey) -> Option<BTreeMap<String, String>> {
    let mut l = BTreeMap::new();
    visit_series_labels(world, key, |_, name, value| {
        l.insert(name.to_string(), value.as_str().to_string());
    })
    .then_some(l)
}

/// Which series of a metric share a label of [`visit_series_labels`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelScope {
    /// Every series of the key's metric and service has the label, with the same value.
    Family,
    /// The label depends on the key's variant (a status code, a bucket, a version, a pod, a resource).
    Series,
}

/// A label value of [`visit_series_labels`]: a constant, text borrowed from the world, or text made for the series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelText<'w> {
    /// A constant.
    Static(&'static str),
    /// Text borrowed from the world (a service or version name).
    Borrowed(&'w str),
    /// Text made for this series (a pod name, an unusual status code).
    Owned(String),
}

impl LabelText<'_> {
    /// The text.
    pub fn as_str(&self) -> &str {
        match self {
            LabelText::Static(s) => s,
            LabelText::Borrowed(s) => s,
            LabelText::Owned(s) => s,
        }
    }
}

/// Hands `each` every label of a keyed series (including `__name__`), with its [`LabelScope`], in no particular
/// order; returns false, having handed nothing, for a key naming a service the world does not have. The values of
/// [`LabelScope::Family`] labels are always borrowed, so a reader that already holds a family's labels skips them
/// for free.
pub fn visit_series_labels<'w>(
    world: &'w World,
    key: SeriesKey,
    mut each: impl FnMut(LabelScope, &'static str, LabelText<'w>),
) -> bool {
    use LabelScope::{Family, Series};
    use LabelText::{Borrowed, Owned, Static};
    let topo = world.topology();
    let id = key.service();
    if id.index() >= topo.len() {
        return false;
    }
    let svc = topo.service(id);
    let name = svc.name();
    let v = key.variant();
    each(Family, "__name__", Static(key.name().as_str()));
    each(Family, "service", Borrowed(name));
    each(Family, "job", Borrowed(name));
    each(Family, "namespace", Static("prod"));
    use SeriesName as N;
    match key.name() {
        N::HttpRequestsTotal => each(
            Series,
            "code",
            match v {
                200 => Static("200"),
                429 => Static("429"),
                500 => Static("500"),
                503 => Static("503"),
                504 => Static("504"),
                _ => Owned(v.to_string()),
            },
        ),
        N::HttpRequestDurationBucket => each(
            Series,
            "le",
            Static(LE_LABELS.get(v as usize).copied().unwrap_or("+Inf")),
        ),
        N::AppInfo => each(
            Series,
            "version",
            svc.spec
                .versions
                .get(v as usize)
                .map_or(Static(""), |x| Borrowed(x.name.as_str())),
        ),
        N::DeploymentSpecReplicas
        | N::DeploymentReplicasAvailable
        | N::DeploymentReplicasPending => each(Family, "deployment", Borrowed(name)),
        N::ContainerRestarts | N::ContainerOomKills | N::CpuUsage => {
            each(Family, "container", Borrowed(name))
        }
        N::ContainerLimits => {
            each(Family, "container", Borrowed(name));
            let (resource, unit) = if v == LIMIT_CPU {
                ("cpu", "core")
            } else {
                ("memory", "byte")
            };
            each(Series, "resource", Static(resource));
            each(Series, "unit", Static(unit));
        }
        N::WorkingSet => {
            let slot = (v & ((1 << POD_SLOT_BITS) - 1)) as usize;
            let generation = v >> POD_SLOT_BITS;
            each(
                Series,
                "pod",
                Owned(pod_name(world.seed(), name, slot, generation)),
            );
            each(Family, "container", Borrowed(name));
        }
        N::PoolInUse | N::PoolMax | N::PoolTimeouts | N::PoolWait => {
            if let Some(target) = pool_target(world, id) {
                each(Family, "pool", Borrowed(topo.service(target).name()));
            }
        }
        N::FilesystemSize | N::FilesystemAvail => {
            each(Family, "mountpoint", Static("/data"));
            each(Family, "device", Static("/dev/nvme1n1"));
        }
        _ => {}
    }
    true
}

/// Whether every series of the metrics `names` has the same label set in world `a` as in world `b` (see
/// [`visit_series_labels`]), judged from what those labels are made of: the services' names, the service each
/// one's pool leads to, and, for the metrics that carry them, the versions' names (`app_info`) and the seed the
/// pods' names are drawn from (the working set). True for two worlds of one topology whatever the seeds, as long
/// as none of `names` names its pods. Written next to [`visit_series_labels`] because it must change with it.
pub fn same_series_labels(a: &World, b: &World, names: &[SeriesName]) -> bool {
    let (ta, tb) = (a.topology(), b.topology());
    if ta.len() != tb.len() {
        return false;
    }
    if names.contains(&SeriesName::WorkingSet) && a.seed() != b.seed() {
        return false;
    }
    let versions = names.contains(&SeriesName::AppInfo);
    (0..ta.len()).all(|i| {
        let id = ServiceId(i as u16);
        let (sa, sb) = (ta.service(id), tb.service(id));
        sa.name() == sb.name()
            && pool_target(a, id).map(|t| ta.service(t).name())
                == pool_target(b, id).map(|t| tb.service(t).name())
            && (!versions
                || sa.spec.versions.iter().map(|v| &v.name).eq(sb
                    .spec
                    .versions
                    .iter()
                    .map(|v| &v.name)))
    })
}

/// The service behind a service's connection pool (the first outgoing edge with a pool).
fn pool_target(world: &World, id: ServiceId) -> Option<ServiceId> {
    let topo = world.topology();
    topo.service(id)
        .out_edges
        .iter()
        .find(|&&e| topo.edges[e].pool.is_some())
        .map(|&e| topo.edges[e].to)
}

/// One rendered sample: its tick, its timestamp (unix milliseconds) and its value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TickSample {
    /// The world tick the sample was taken at.
    pub tick: u64,
    /// Its timestamp, unix milliseconds.
    pub ms: i64,
    /// The value.
    pub v: f64,
}

impl TickSample {
    /// The samples of a column: `values[i]` at `ticks[i]`, whose timestamp is `times[i]`.
    pub fn column(ticks: &[u64], times: &[i64], values: &[f64]) -> Vec<TickSample> {
        ticks
            .iter()
            .zip(times)
            .zip(values)
            .map(|((&tick, &ms), &v)| TickSample { tick, ms, v })
            .collect()
    }
}

/// Receives a render series by series.
pub trait SampleSink {
    /// Every sample of series `key` in the window, oldest first (never empty). A series comes whole, in one
    /// call: handing samples over one at a time cost more than computing them.
    fn series(&mut self, key: SeriesKey, samples: &[TickSample]);

    /// A series with one sample at each of `ticks` (ascending, not empty): `values[i]` at `ticks[i]`, whose
    /// timestamp is `times[i]`. Exactly [`SampleSink::series`] with those samples, which is what it does unless
    /// a sink does better: most series have a sample at every tick of the window, and a sink given them as one
    /// column of values skips a sample's bookkeeping per tick.
    fn dense(&mut self, key: SeriesKey, ticks: &[u64], times: &[i64], values: &[f64]) {
        self.series(key, &TickSample::column(ticks, times, values));
    }

    /// Series `first` and the ones after it ([`SeriesKey::nth_after`]), each with one sample at each of `ticks`:
    /// the `j`-th takes the `j`-th run of `ticks.len()` values. Exactly [`SampleSink::dense`] of each in turn,
    /// which it is unless a sink does better: a histogram's buckets come this way, one call for all of a
    /// service's, so a sink finds its place once for them.
    fn dense_run(&mut self, first: SeriesKey, ticks: &[u64], times: &[i64], values: &[f64]) {
        for (j, run) in values.chunks_exact(ticks.len().max(1)).enumerate() {
            self.dense(first.nth_after(j as u32), ticks, times, run);
        }
    }
}

/// Collects a render into one [`KeyedSeries`] per series.
#[derive(Default)]
struct Collect(Vec<KeyedSeries>);

impl SampleSink for Collect {
    fn series(&mut self, key: SeriesKey, samples: &[TickSample]) {
        self.0.push(KeyedSeries {
            key,
            samples: samples.iter().map(|s| (s.ms, s.v)).collect(),
        });
    }

    fn dense(&mut self, key: SeriesKey, _ticks: &[u64], times: &[i64], values: &[f64]) {
        self.0.push(KeyedSeries {
            key,
            samples: times.iter().copied().zip(values.iter().copied()).collect(),
        });
    }
}

/// Which series a render computes.
struct Want<'e> {
    /// By [`SeriesName`] discriminant.
    names: [bool; SeriesName::ALL.len()],
    /// Whether the histogram's family name (`http_request_duration_seconds`) is asked for: its three series.
    histogram: bool,
    /// Names whose series of some services are left out: per service index, whether it is left out.
    excluded: &'e [(SeriesName, &'e [bool])],
}

impl Want<'_> {
    /// What `wanted` accepts, asked once per name.
    fn from_fn(wanted: &dyn Fn(&str) -> bool) -> Want<'static> {
        Want {
            names: std::array::from_fn(|i| wanted(SeriesName::ALL[i].as_str())),
            histogram: wanted("http_request_duration_seconds"),
            excluded: &[],
        }
    }
}

struct Builder<'a> {
    world: &'a World,
    /// Which series names are asked for, by [`SeriesName`] discriminant: asked once per render.
    want: [bool; SeriesName::ALL.len()],
    /// Whether the histogram's family name (`http_request_duration_seconds`) is asked for.
    want_histogram: bool,
    /// Ticks in the window, oldest first.
    ticks: Vec<u64>,
    /// Their timestamps (unix ms), computed once per render rather than once per sample.
    times: Vec<i64>,
    /// Their frames and totals (every service's), looked up in the ring once per render rather than once per
    /// series and tick.
    frames: Vec<Option<&'a [ServiceFrame]>>,
    totals: Vec<Option<&'a [ServiceTotals]>>,
    /// The samples of the series being rendered, handed to `sink` whole: while every tick from the window's
    /// first has one, only their values, in `vals` (`buf` empty); from the first tick without one on, every
    /// sample in `buf` (see [`Builder::sample`]).
    vals: Vec<f64>,
    buf: Vec<TickSample>,
    /// The histogram's scratch (see [`histogram`]), kept from one service to the next.
    counts: Vec<f64>,
    held: Vec<bool>,
    sink: &'a mut dyn SampleSink,
}

impl Builder<'_> {
    fn wants(&self, name: SeriesName) -> bool {
        self.want[name as usize]
    }

    /// Adds the sample of the window's `i`-th tick to the series being rendered (`i` ascending).
    #[inline]
    fn sample(&mut self, i: usize, v: f64) {
        if self.buf.is_empty() && self.vals.len() == i {
            self.vals.push(v);
        } else {
            self.sample_after_gap(i, v);
        }
    }

    /// [`Builder::sample`] once a tick of the window had none.
    #[cold]
    #[inline(never)]
    fn sample_after_gap(&mut self, i: usize, v: f64) {
        if self.buf.is_empty() {
            // The first tick without a sample: from here on, sample by sample.
            for (j, &v) in self.vals.iter().enumerate() {
                self.buf.push(TickSample {
                    tick: self.ticks[j],
                    ms: self.times[j],
                    v,
                });
            }
            self.vals.clear();
        }
        self.buf.push(TickSample {
            tick: self.ticks[i],
            ms: self.times[i],
            v,
        });
    }

    /// Hands the series being rendered to the sink (if it has samples) and starts the next one.
    fn flush(&mut self, key: SeriesKey) {
        if !self.buf.is_empty() {
            self.sink.series(key, &self.buf);
            self.buf.clear();
        } else if !self.vals.is_empty() {
            // Samples at the first `n` ticks.
            let n = self.vals.len();
            self.sink
                .dense(key, &self.ticks[..n], &self.times[..n], &self.vals);
            self.vals.clear();
        }
    }

    /// A gauge (or a counter the frame already holds cumulatively): one sample per tick where `value` is some.
    fn gauge(
        &mut self,
        name: SeriesName,
        service: ServiceId,
        variant: u32,
        value: impl Fn(&ServiceFrame) -> Option<f64>,
    ) {
        if !self.wants(name) {
            return;
        }
        let key = SeriesKey::new(name, service, variant);
        let s = service.index();
        for i in 0..self.frames.len() {
            if let Some(v) = self.frames[i].and_then(|f| f.get(s)).and_then(&value) {
                self.sample(i, v);
            }
        }
        self.flush(key);
    }

    /// A counter read from a cumulative value the frame holds; kept monotonic against float noise.
    fn cumulative(
        &mut self,
        name: SeriesName,
        service: ServiceId,
        variant: u32,
        integral: bool,
        value: impl Fn(&ServiceFrame) -> f64,
    ) {
        let s = service.index();
        self.monotonic(name, service, variant, integral, |frames, _| {
            frames.and_then(|f| f.get(s)).map(&value)
        });
    }

    /// A counter of something a frame holds as a rate, read from the totals the world accumulated per tick (see
    /// [`ServiceTotals`]). Counts of things are floored to integers, as an exporter would report them.
    fn total(
        &mut self,
        name: SeriesName,
        service: ServiceId,
        variant: u32,
        integral: bool,
        value: impl Fn(&ServiceTotals) -> f64,
    ) {
        let s = service.index();
        self.monotonic(name, service, variant, integral, |_, totals| {
            totals.and_then(|t| t.get(s)).map(&value)
        });
    }

    /// A cumulative series over the window's ticks: `value` of each tick's frames and totals (none where not
    /// held), never below 0,
    /// floored if `integral`, and never below an earlier sample of the window (float noise in a difference of
    /// totals must not show as a counter reset).
    fn monotonic(
        &mut self,
        name: SeriesName,
        service: ServiceId,
        variant: u32,
        integral: bool,
        value: impl Fn(Option<&[ServiceFrame]>, Option<&[ServiceTotals]>) -> Option<f64>,
    ) {
        if !self.wants(name) {
            return;
        }
        let key = SeriesKey::new(name, service, variant);
        let mut shown = 0.0f64;
        for i in 0..self.frames.len() {
            let Some(v) = value(self.frames[i], self.totals[i]) else {
                continue;
            };
            let v = at_least_zero(v);
            let v = if integral { floor(v) } else { v };
            // `shown.max(v)`: `shown` starts at 0 and is never NaN.
            shown = max_over(shown, v);
            self.sample(i, shown);
        }
        self.flush(key);
    }
}

/// Renders every series whose name passes `wanted`, with samples at the held ticks whose timestamps lie in
/// `[start_ms, end_ms]`, sorted by labels.
///
/// `wanted` is asked about each series name (`__name__`: `http_request_duration_seconds_bucket`, `up`...); the
/// three series of a histogram are also rendered when it accepts the family name
/// (`http_request_duration_seconds`). A PromQL storage adapter passes its `__name__` matcher here, so only the
/// families a query names are computed.
pub fn render(
    world: &World,
    wanted: &dyn Fn(&str) -> bool,
    start_ms: i64,
    end_ms: i64,
) -> Vec<MetricSeries> {
    let mut out = labelled(world, render_keyed(world, wanted, start_ms, end_ms));
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    out
}

/// The series of [`render`] in no particular order (deterministic, but not sorted), for callers that sort by
/// a key of their own: sorting by label maps costs about as much as building them.
pub fn render_unordered(
    world: &World,
    wanted: &dyn Fn(&str) -> bool,
    start_ms: i64,
    end_ms: i64,
) -> Vec<MetricSeries> {
    labelled(world, render_keyed(world, wanted, start_ms, end_ms))
}

/// The series of [`render_unordered`] by key, without their label sets (see [`series_labels`]): for readers
/// that keep label sets between calls, since building them costs more than computing the samples.
pub fn render_keyed(
    world: &World,
    wanted: &dyn Fn(&str) -> bool,
    start_ms: i64,
    end_ms: i64,
) -> Vec<KeyedSeries> {
    let mut out = Collect::default();
    render_scoped(
        world,
        Want::from_fn(wanted),
        None,
        start_ms,
        end_ms,
        &mut out,
    );
    out.0
}

/// The samples of [`render_keyed`] of the series named in `names` handed to `sink` series after series,
/// without collecting them: for readers that keep samples of their own. Takes the names rather than a matcher:
/// such a reader knows them, and asking a matcher about every name cost more than a render's bookkeeping.
pub fn render_into(
    world: &World,
    names: &[SeriesName],
    start_ms: i64,
    end_ms: i64,
    sink: &mut dyn SampleSink,
) {
    render_into_excluding(world, names, &[], start_ms, end_ms, sink);
}

/// [`render_into`] without the series of some services for some names: for each `(name, left_out)` of
/// `excluded`, the series of `name` of every service whose index `left_out` marks true are not computed (the
/// others are exactly `render_into`'s). For a reader that knows no query of its own can match those series.
pub fn render_into_excluding(
    world: &World,
    names: &[SeriesName],
    excluded: &[(SeriesName, &[bool])],
    start_ms: i64,
    end_ms: i64,
    sink: &mut dyn SampleSink,
) {
    let mut want = Want {
        names: [false; SeriesName::ALL.len()],
        histogram: false,
        excluded,
    };
    for &n in names {
        want.names[n as usize] = true;
    }
    render_scoped(world, want, None, start_ms, end_ms, sink);
}

/// The labels every series of metric `name` of `service` has ([`LabelScope::Family`]), as (name, value) pairs;
/// empty for a service the world does not have. No series of that metric and service carries another value
/// under one of these names (its own labels have other names), so a matcher that rejects one of these values
/// rejects every such series.
pub fn family_labels(
    world: &World,
    name: SeriesName,
    service: ServiceId,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    visit_family_labels(world, name, service, |label, value| {
        out.push((label, value.to_string()));
    });
    out
}

/// [`family_labels`] handed to `each` one by one, borrowed: nothing is copied.
pub fn visit_family_labels(
    world: &World,
    name: SeriesName,
    service: ServiceId,
    mut each: impl FnMut(&'static str, &str),
) {
    visit_series_labels(
        world,
        SeriesKey::new(name, service, 0),
        |scope, label, value| {
            if scope == LabelScope::Family {
                each(label, value.as_str());
            }
        },
    );
}

/// Renders the series of one service only: exactly the series of [`render`] whose `service` label names it, in
/// the same order (empty for a service the topology does not have).
///
/// Every series is computed from its own service's frames and labelled with that service's (unique) name, so
/// leaving the other services out changes nothing in this one's; it costs about one service's share of
/// [`render`].
pub fn render_service(
    world: &World,
    wanted: &dyn Fn(&str) -> bool,
    service: ServiceId,
    start_ms: i64,
    end_ms: i64,
) -> Vec<MetricSeries> {
    if service.index() >= world.topology().len() {
        return Vec::new();
    }
    let mut keyed = Collect::default();
    render_scoped(
        world,
        Want::from_fn(wanted),
        Some(service),
        start_ms,
        end_ms,
        &mut keyed,
    );
    let mut out = labelled(world, keyed.0);
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    out
}

/// The held ticks whose timestamps lie in `[start_ms, end_ms]`, oldest first.
pub fn window_ticks(world: &World, start_ms: i64, end_ms: i64) -> std::ops::Range<u64> {
    let ring = world.history();
    let (first, end) = (ring.first_tick(), ring.end_tick());
    // Tick timestamps ascend with the tick, evenly: each end is found from where the tick length puts it, then
    // moved tick by tick to the exact boundary (the estimate only decides how far; the tests decide where). Every
    // rule evaluation and query reads a window, and a binary search over the ring took a dozen timestamps.
    let epoch_ms = world.epoch_unix_s() as f64 * 1000.0;
    let tick_ms_len = world.tick_s() * 1000.0;
    let partition = |before: &dyn Fn(i64) -> bool, ms: i64| {
        let estimate = ((ms as f64 - epoch_ms) / tick_ms_len).floor();
        // NaN and out-of-range estimates saturate, then clamp to the ring.
        let mut t = (estimate as i64).clamp(first as i64, end as i64) as u64;
        while t > first && !before(tick_ms(world, t - 1)) {
            t -= 1;
        }
        while t < end && before(tick_ms(world, t)) {
            t += 1;
        }
        t
    };
    let lo = partition(&|t| t < start_ms, start_ms);
    let hi = partition(&|t| t <= end_ms, end_ms);
    lo..hi.max(lo)
}

/// Keyed series with their label sets.
fn labelled(world: &World, keyed: Vec<KeyedSeries>) -> Vec<MetricSeries> {
    keyed
        .into_iter()
        .filter_map(|KeyedSeries { key, samples }| {
            Some(MetricSeries {
                labels: series_labels(world, key)?,
                samples,
            })
        })
        .collect()
}

/// [`render_into`] over every service, or over `only`.
fn render_scoped(
    world: &World,
    want: Want,
    only: Option<ServiceId>,
    start_ms: i64,
    end_ms: i64,
    sink: &mut dyn SampleSink,
) {
    use SeriesName as N;
    let ring = world.history();
    let ticks: Vec<u64> = window_ticks(world, start_ms, end_ms).collect();
    if ticks.is_empty() {
        return;
    }
    let times = ticks.iter().map(|&t| tick_ms(world, t)).collect();
    let frames = ticks.iter().map(|&t| ring.tick(t)).collect();
    let totals = ticks.iter().map(|&t| ring.tick_totals(t)).collect();
    let mut b = Builder {
        world,
        want: want.names,
        want_histogram: want.histogram,
        ticks,
        times,
        frames,
        totals,
        vals: Vec::new(),
        buf: Vec::new(),
        counts: Vec::new(),
        held: Vec::new(),
        sink,
    };
    let topo = world.topology();
    let dt = world.tick_s();
    let pods = b.wants(N::WorkingSet).then(|| PodNames::new(world));
    let services = match only {
        Some(id) => id.index()..id.index() + 1,
        None => 0..topo.len(),
    };
    for i in services {
        let id = ServiceId(i as u16);
        let svc = topo.service(id);
        let spec = &svc.spec;
        for &(n, left_out) in want.excluded {
            b.want[n as usize] =
                want.names[n as usize] && !left_out.get(i).copied().unwrap_or(false);
        }

        if spec.kind.serves_http() {
            // 200: everything offered that was neither a server error nor rejected. The frame holds the
            // cumulative totals, so this counter survives the ring's eviction exactly.
            b.cumulative(N::HttpRequestsTotal, id, CODE_OK, true, answered_ok);
            // Server errors, split by the cause of each tick (the world keeps the split totals).
            for (k, &code) in SERVER_ERROR_CODES.iter().enumerate() {
                b.total(N::HttpRequestsTotal, id, code as u32, true, move |t| {
                    t.server_errors[k]
                });
            }
            if spec.rate_limit.is_some() {
                b.cumulative(N::HttpRequestsTotal, id, CODE_RATE_LIMITED, true, |f| {
                    f.rejected_total
                });
            }
            histogram(&mut b, id);
        }
        b.gauge(N::Up, id, 0, |f| Some((f.ready > 0) as u8 as f64));
        if !in_cluster(spec.kind) {
            continue;
        }
        if b.wants(N::AppInfo) {
            // One series per version seen in the window, 1 while it is the running version.
            let mut seen = BTreeSet::new();
            for &t in &b.ticks {
                if let Some(f) = ring.get(t, i) {
                    seen.insert(f.version);
                }
            }
            for v in seen {
                b.gauge(N::AppInfo, id, v as u32, move |f| {
                    (f.version == v).then_some(1.0)
                });
            }
        }
        b.gauge(N::DeploymentSpecReplicas, id, 0, |f| Some(f.desired as f64));
        b.gauge(N::DeploymentReplicasAvailable, id, 0, |f| {
            Some(f.ready as f64)
        });
        b.gauge(N::DeploymentReplicasPending, id, 0, |f| {
            Some(f.pending as f64)
        });
        b.cumulative(N::ContainerRestarts, id, 0, true, restarts);
        b.cumulative(N::ContainerOomKills, id, 0, true, |f| {
            f.oom_kills_total as f64
        });
        b.gauge(N::ContainerLimits, id, LIMIT_MEMORY, |f| {
            Some(f.memory_limit_mb as f64 * 1_048_576.0)
        });
        b.gauge(N::ContainerLimits, id, LIMIT_CPU, |f| {
            Some(f.cpu_limit_cores as f64)
        });
        if let Some(pods) = &pods {
            working_set(&mut b, pods, id);
        }
        b.cumulative(N::CpuUsage, id, 0, false, |f| f.cpu_seconds_total);
        if pool_target(world, id).is_some() {
            b.gauge(N::PoolInUse, id, 0, |f| {
                Some(round(f.pool_in_use as f64 * 100.0) / 100.0)
            });
            b.gauge(N::PoolMax, id, 0, |f| Some(f.pool_max as f64));
            b.total(N::PoolTimeouts, id, 0, true, |t| t.pool_timeouts);
            b.gauge(N::PoolWait, id, 0, |f| Some(f.pool_wait_ms as f64 / 1000.0));
        }
        if spec.kind == ServiceKind::Database {
            b.gauge(N::LockWait, id, 0, |f| Some(f.lock_wait_ms as f64 / 1000.0));
            b.gauge(N::DbConnections, id, 0, |f| {
                Some(f.db_connections.round() as f64)
            });
        }
        if spec.disk.is_some() {
            b.gauge(N::FilesystemSize, id, 0, |f| {
                (f.disk_size_gb > 0.0).then(|| volume_size(f))
            });
            b.gauge(N::FilesystemAvail, id, 0, |f| {
                (f.disk_size_gb > 0.0).then(|| volume_avail(f))
            });
        }
        if spec.tls.is_some() && b.wants(N::CertExpiry) {
            let epoch = world.epoch_unix_s() as f64;
            let key = SeriesKey::new(N::CertExpiry, id, 0);
            for k in 0..b.ticks.len() {
                let t = b.ticks[k];
                let Some(f) = ring.get(t, i) else {
                    continue;
                };
                if f.cert_expires_in_s.is_finite() {
                    let v = round(epoch + t as f64 * dt + f.cert_expires_in_s as f64);
                    b.sample(k, v);
                }
            }
            b.flush(key);
        }
        if !svc.out_edges.is_empty() {
            b.total(N::DnsFailures, id, 0, true, |t| t.dns_failures);
            b.total(N::TlsFailures, id, 0, true, |t| t.tls_failures);
        }
        if spec.rate_limit.is_some() {
            b.cumulative(N::RateLimitRejected, id, 0, true, |f| f.rejected_total);
        }
        if !spec.publishes.is_empty() {
            b.total(N::MessagesPublished, id, 0, true, |t| t.published);
        }
        if !spec.subscribes.is_empty() {
            b.total(N::MessagesConsumed, id, 0, true, |t| t.consumed);
            b.gauge(N::SubscriptionBacklog, id, 0, |f| {
                Some(f.queue_depth.round() as f64)
            });
        }
        if spec.kind == ServiceKind::Cache {
            b.gauge(N::CacheHitRatio, id, 0, |f| Some(f.cache_hit_ratio as f64));
        }
        if spec.kind == ServiceKind::Observability {
            b.gauge(N::LogPipelineDropped, id, 0, |f| {
                Some(f.log_drop_ratio as f64)
            });
        }
    }
}

/// `container_memory_working_set_bytes` per pod: one series per (slot, pod generation) with samples while the
/// pod's container runs.
fn working_set(b: &mut Builder<'_>, pods: &PodNames, id: ServiceId) {
    // By (generation, slot): the order of pod age, then slot.
    let mut by_pod: BTreeMap<(u32, usize), Vec<TickSample>> = BTreeMap::new();
    // Per slot: the pod whose samples are being gathered (its generation) and them, handed to `by_pod` when the
    // slot's pod changes. Each tick's frame is read once for all sixteen slots, and `by_pod` is touched once
    // per pod rather than once per sample; every pod's samples still go in in tick order.
    let mut open: [Option<(u32, Vec<TickSample>)>; MAX_REPLICAS] = Default::default();
    let hand_over = |by_pod: &mut BTreeMap<(u32, usize), Vec<TickSample>>,
                     slot: usize,
                     (generation, samples): (u32, Vec<TickSample>)| {
        by_pod
            .entry((generation, slot))
            .or_default()
            .extend(samples);
    };
    for (k, (&t, &ms)) in b.ticks.iter().zip(&b.times).enumerate() {
        let Some(f) = b.frames[k].and_then(|frames| frames.get(id.index())) else {
            continue;
        };
        // (`> 0.0`, not `<= 0.0` negated: a NaN has no sample, as before.)
        for (slot, &mb) in f
            .replica_memory_mb
            .iter()
            .enumerate()
            .filter(|(_, mb)| **mb > 0.0)
        {
            let generation = pods.generation(id, slot, det::tick_world_ms(b.world, t));
            let sample = TickSample {
                tick: t,
                ms,
                v: round(mb as f64 * 1_048_576.0),
            };
            match &mut open[slot] {
                Some((g, samples)) if *g == generation => samples.push(sample),
                current => {
                    if let Some(done) = current.replace((generation, vec![sample])) {
                        hand_over(&mut by_pod, slot, done);
                    }
                }
            }
        }
    }
    for (slot, pod) in open.into_iter().enumerate() {
        if let Some(done) = pod {
            hand_over(&mut by_pod, slot, done);
        }
    }
    for ((generation, slot), samples) in by_pod {
        let key = SeriesKey::new(
            SeriesName::WorkingSet,
            id,
            generation << POD_SLOT_BITS | slot as u32,
        );
        b.sink.series(key, &samples);
    }
}

fn histogram(b: &mut Builder<'_>, id: ServiceId) {
    let family = b.want_histogram;
    let want_bucket = family || b.wants(SeriesName::HttpRequestDurationBucket);
    let want_sum = family || b.wants(SeriesName::HttpRequestDurationSum);
    let want_count = family || b.wants(SeriesName::HttpRequestDurationCount);
    if !(want_bucket || want_sum || want_count) {
        return;
    }
    let n = LATENCY_BUCKETS_S.len();
    let nt = b.ticks.len();
    if nt == 0 {
        return;
    }
    let s = id.index();
    // Each tick's count is whole requests, as an exporter counts them, never below the bucket before it at the
    // same tick, and never below its own earlier samples. The totals only grow, so this depends on the tick
    // alone, not on where the window starts. Computed tick by tick (each tick's totals read once), bucket `k`
    // of the `i`-th tick at `counts[k * nt + i]`; `held[i]` says whether the ring holds the tick.
    let (mut counts, mut held) = (std::mem::take(&mut b.counts), std::mem::take(&mut b.held));
    counts.clear();
    counts.resize((n + 1) * nt, 0.0);
    held.clear();
    held.resize(nt, false);
    let mut shown = [0.0f64; LATENCY_BUCKETS_S.len() + 1];
    for (i, tick_totals) in b.totals.iter().enumerate() {
        let Some(totals) = tick_totals.and_then(|t| t.get(s)) else {
            continue;
        };
        held[i] = true;
        bucket_counts(&mut shown, totals);
        for (k, &c) in shown.iter().enumerate() {
            counts[k * nt + i] = c;
        }
    }
    // Usually the ring holds every tick of the window for the service: each bucket's counts are then its
    // samples as they are.
    let all_held = held.iter().all(|&h| h);
    let emit = |b: &mut Builder<'_>, key: SeriesKey, values: &[f64]| {
        if all_held {
            b.sink.dense(key, &b.ticks, &b.times, values);
            return;
        }
        for (i, &v) in values.iter().enumerate() {
            if held[i] {
                b.sample(i, v);
            }
        }
        b.flush(key);
    };
    if want_bucket {
        let first = SeriesKey::new(SeriesName::HttpRequestDurationBucket, id, 0);
        if all_held {
            b.sink.dense_run(first, &b.ticks, &b.times, &counts);
        } else {
            for (k, values) in counts.chunks_exact(nt).enumerate() {
                emit(b, first.nth_after(k as u32), values);
            }
        }
    }
    if want_count {
        // The count is the +Inf bucket.
        let key = SeriesKey::new(SeriesName::HttpRequestDurationCount, id, 0);
        emit(b, key, &counts[n * nt..]);
    }
    if want_sum {
        let key = SeriesKey::new(SeriesName::HttpRequestDurationSum, id, 0);
        let mut shown = 0.0f64;
        for i in 0..b.totals.len() {
            let Some(totals) = b.totals[i].and_then(|t| t.get(s)) else {
                continue;
            };
            shown = shown.max(totals.latency_sum_s);
            b.sample(i, shown);
        }
        b.flush(key);
    }
    b.counts = counts;
    b.held = held;
}

/// One tick of the latency histogram's bucket counts, from the counts `shown` of the tick before (zeros for the
/// first): each bucket's whole requests, never below the bucket before it at the same tick nor below its own
/// earlier count.
#[inline]
fn bucket_counts(shown: &mut [f64; LATENCY_BUCKETS_S.len() + 1], totals: &ServiceTotals) {
    let mut floor = 0.0f64;
    for (k, s) in shown.iter_mut().enumerate() {
        // `s.max(..).max(floor)`: neither the running count nor the floor is ever NaN (both start at 0).
        *s = max_over(max_over(*s, round(totals.latency_buckets[k])), floor);
        floor = *s;
    }
}

/// `http_requests_total{code="200"}`, before the counter's clamps: everything offered that was neither a server
/// error nor rejected.
fn answered_ok(f: &ServiceFrame) -> f64 {
    f.requests_total - f.errors_total - f.rejected_total
}

/// A counter's sample as `Builder::monotonic` renders it where it does not fall: never below 0, floored.
fn whole_count(v: f64) -> f64 {
    max_over(0.0, floor(at_least_zero(v)))
}

/// `node_filesystem_size_bytes` of a volume of some size.
fn volume_size(f: &ServiceFrame) -> f64 {
    round(f.disk_size_gb as f64 * 1_073_741_824.0)
}

/// `node_filesystem_avail_bytes` of a volume of some size.
fn volume_avail(f: &ServiceFrame) -> f64 {
    round((f.disk_size_gb - f.disk_used_gb).max(0.0) as f64 * 1_073_741_824.0)
}

/// `kube_pod_container_status_restarts_total`, before the counter's clamps.
fn restarts(f: &ServiceFrame) -> f64 {
    f.restarts_total as f64
}

/// Whether every series of `name` is a counter with, at every tick the world holds, exactly one sample whose
/// value depends on that tick alone and is never below its value at an earlier tick: then a window of it holds a
/// sample at each of its held ticks, no staleness marker and no decrease, and is told by its first and last
/// samples ([`visit_ends`]).
///
/// So for the counters that count up from totals that only grow: the restarts (an integer the world only
/// increments), the latency buckets (sums of non-negative shares of answered requests, each rounded, then
/// raised to the bucket below: rounding and maxima of non-decreasing values do not decrease), and
/// `http_requests_total` (server errors and rejections are such totals) with one exception: its `code="200"`
/// series is a difference of totals, which float rounding could make fall by a request where the others grow
/// by nothing, so [`visit_ends`] checks it over each window ([`OkFalls`]) and declines a window where it falls.
/// Not gauges, which fall, nor the series of pods, versions or volumes, which come and go.
pub fn told_by_ends(name: SeriesName) -> bool {
    matches!(
        name,
        SeriesName::ContainerRestarts
            | SeriesName::HttpRequestDurationBucket
            | SeriesName::HttpRequestsTotal
    )
}

/// Whether every series of `name` has, at every tick the world holds, exactly one sample whose value depends on
/// that tick alone: then a window of it has no staleness marker, and its newest sample is its value at the
/// window's last held tick ([`visit_ends`]). So for the names [told by their ends](told_by_ends), for the gauges
/// `up` and `kube_deployment_{spec_replicas,status_replicas_available}`, which every service of their kind
/// exports at every tick, and for the volumes' `node_filesystem_{size,avail}_bytes`, exported at every tick
/// where the volume has some size: [`visit_ends`] checks that every volume has some at the window's first tick
/// (a volume only ever grows) and declines the window otherwise.
pub fn newest_told_by_ends(name: SeriesName) -> bool {
    told_by_ends(name)
        || matches!(
            name,
            SeriesName::Up
                | SeriesName::DeploymentSpecReplicas
                | SeriesName::DeploymentReplicasAvailable
                | SeriesName::FilesystemSize
                | SeriesName::FilesystemAvail
        )
}

/// The ticks at which some service's `http_requests_total{code="200"}` count (as rendered where it does not
/// fall) is below its count at the tick before, found as windows ask about them: each tick of the world is
/// looked at once. Keep one per world (a fork clones it); [`OkFalls::default`] knows nothing yet.
#[derive(Debug, Clone, Default)]
pub struct OkFalls {
    /// The ticks looked at: `scanned.0..scanned.1` (empty at first).
    scanned: (u64, u64),
    /// The ticks among them where a count falls, ascending.
    falls: Vec<u64>,
}

impl OkFalls {
    /// Whether a count falls at a tick of `first..=last` (from the tick before), the world holding those ticks;
    /// a tick whose tick before the world no longer holds has nothing to fall from.
    pub fn any_in(&mut self, world: &World, first: u64, last: u64) -> bool {
        let ring = world.history();
        let topo = world.topology();
        let count = |f: &ServiceFrame| whole_count(answered_ok(f));
        let falls_at = |t: u64| {
            let (Some(before), Some(now)) = (ring.tick(t - 1), ring.tick(t)) else {
                return false;
            };
            before
                .iter()
                .zip(now)
                .zip(&topo.services)
                .any(|((b, n), svc)| svc.spec.kind.serves_http() && count(n) < count(b))
        };
        self.any_in_by(ring.first_tick() + 1, first, last, falls_at)
    }

    /// [`OkFalls::any_in`] where `falls_at(t)` tells whether a count falls at tick `t`, for ticks from `held`
    /// on (the ticks before have nothing to fall from).
    fn any_in_by(
        &mut self,
        held: u64,
        first: u64,
        last: u64,
        falls_at: impl Fn(u64) -> bool,
    ) -> bool {
        let (lo, hi) = (first.max(held), last.saturating_add(1));
        if lo >= hi {
            return false;
        }
        let (s0, s1) = self.scanned;
        let scan = |from: u64, to: u64, falls: &mut Vec<u64>| {
            falls.extend((from..to).filter(|&t| falls_at(t)));
        };
        if s0 >= s1 || hi < s0 || lo > s1 {
            // Nothing looked at yet, or not next to what was: start over at this window.
            self.falls.clear();
            scan(lo, hi, &mut self.falls);
            self.scanned = (lo, hi);
        } else {
            if lo < s0 {
                scan(lo, s0, &mut self.falls);
            }
            if hi > s1 {
                scan(s1, hi, &mut self.falls);
            }
            self.scanned = (lo.min(s0), hi.max(s1));
            self.falls.sort_unstable();
        }
        let at = self.falls.partition_point(|&t| t < lo);
        self.falls.get(at).is_some_and(|&t| t < hi)
    }
}

/// For a name whose newest sample is [told by its ends](newest_told_by_ends): the samples at ticks `first` and
/// `last` (`first <= last`, both held by the world's ring) of each of its series, exactly those of a render of
/// any window holding both ticks and every tick between, handed to `visit` as (key, value at `first`, value at
/// `last`). Series of the services `left_out` marks are skipped. Returns false, visiting nothing, for any other
/// name, for ticks not held, and for `http_requests_total` when a `code="200"` series falls between `first` and
/// `last` or from the tick before `first` (a render of the window starts there), as `falls` finds (kept with
/// the world between calls, so each tick is looked at once): then only the samples tell it.
pub fn visit_ends(
    world: &World,
    name: SeriesName,
    left_out: Option<&[bool]>,
    (first, last): (u64, u64),
    falls: &mut OkFalls,
    mut visit: impl FnMut(SeriesKey, f64, f64),
) -> bool {
    let ring = world.history();
    let held = |t: u64| t >= ring.first_tick() && t < ring.end_tick();
    if !newest_told_by_ends(name) || first > last || !held(first) || !held(last) {
        return false;
    }
    let (Some(a), Some(b)) = (ring.tick(first), ring.tick(last)) else {
        return false;
    };
    let (Some(ta), Some(tb)) = (ring.tick_totals(first), ring.tick_totals(last)) else {
        return false;
    };
    let topo = world.topology();
    let skipped = |i: usize| left_out.is_some_and(|l| l.get(i).copied().unwrap_or(false));
    if name == SeriesName::HttpRequestsTotal && falls.any_in(world, first, last) {
        return false;
    }
    let volumes = matches!(
        name,
        SeriesName::FilesystemSize | SeriesName::FilesystemAvail
    );
    if volumes
        && !topo
            .services
            .iter()
            .zip(a)
            .all(|(svc, f)| svc.spec.disk.is_none() || f.disk_size_gb > 0.0)
    {
        return false;
    }
    for i in 0..topo.len().min(a.len()).min(b.len()) {
        if skipped(i) {
            continue;
        }
        let id = ServiceId(i as u16);
        let kind = topo.service(id).spec.kind;
        let (fa, fb) = (&a[i], &b[i]);
        let key = SeriesKey::new(name, id, 0);
        match name {
            // As `render_scoped` renders them.
            SeriesName::Up => visit(
                key,
                (fa.ready > 0) as u8 as f64,
                (fb.ready > 0) as u8 as f64,
            ),
            SeriesName::DeploymentSpecReplicas if in_cluster(kind) => {
                visit(key, fa.desired as f64, fb.desired as f64)
            }
            SeriesName::DeploymentReplicasAvailable if in_cluster(kind) => {
                visit(key, fa.ready as f64, fb.ready as f64)
            }
            // Every volume has some size from the first tick on (checked above): a sample at every tick.
            SeriesName::FilesystemSize
                if in_cluster(kind) && topo.services[i].spec.disk.is_some() =>
            {
                visit(key, volume_size(fa), volume_size(fb))
            }
            SeriesName::FilesystemAvail
                if in_cluster(kind) && topo.services[i].spec.disk.is_some() =>
            {
                visit(key, volume_avail(fa), volume_avail(fb))
            }
            SeriesName::ContainerRestarts if in_cluster(kind) => {
                // As `Builder::monotonic` renders it: never below 0, floored, never below the window's first
                // sample (which a counter that never falls is not).
                let va = whole_count(restarts(fa));
                let vb = max_over(va, whole_count(restarts(fb)));
                visit(key, va, vb)
            }
            SeriesName::HttpRequestsTotal if kind.serves_http() => {
                // As `render_scoped` renders them, in its order; the 200s were checked above not to fall.
                let ok = SeriesKey::new(name, id, CODE_OK);
                let va = whole_count(answered_ok(fa));
                visit(ok, va, max_over(va, whole_count(answered_ok(fb))));
                let (Some(xa), Some(xb)) = (ta.get(i), tb.get(i)) else {
                    continue;
                };
                for (k, &code) in SERVER_ERROR_CODES.iter().enumerate() {
                    let va = whole_count(xa.server_errors[k]);
                    let vb = max_over(va, whole_count(xb.server_errors[k]));
                    visit(SeriesKey::new(name, id, code as u32), va, vb);
                }
                if topo.service(id).spec.rate_limit.is_some() {
                    let va = whole_count(fa.rejected_total);
                    let vb = max_over(va, whole_count(fb.rejected_total));
                    visit(SeriesKey::new(name, id, CODE_RATE_LIMITED), va, vb);
                }
            }
            SeriesName::HttpRequestDurationBucket if kind.serves_http() => {
                let (Some(xa), Some(xb)) = (ta.get(i), tb.get(i)) else {
                    continue;
                };
                // As `histogram` renders a window: the first tick's counts from zero, the last tick's from the
                // first's (the ticks between, which cannot raise a count above the last tick's, are skipped).
                let mut shown = [0.0f64; LATENCY_BUCKETS_S.len() + 1];
                bucket_counts(&mut shown, xa);
                let at_first = shown;
                bucket_counts(&mut shown, xb);
                for (k, (&va, &vb)) in at_first.iter().zip(&shown).enumerate() {
                    visit(key.nth_after(k as u32), va, vb);
                }
            }
            _ => {}
        }
    }
    true
}

/// `a.max(b)` for an `a` that is not NaN, as one comparison instead of the NaN-aware maximum: `b` when it is
/// greater, `a` otherwise (for a NaN `b`, and on ties, where `f64::max` keeps `a` too).
#[inline]
fn max_over(a: f64, b: f64) -> f64 {
    if b > a { b } else { a }
}

/// `v.max(0.0)` as one comparison: `v` unless it is below zero or NaN (and a negative zero stays, as with
/// `f64::max`, which keeps its receiver on ties).
#[inline]
fn at_least_zero(v: f64) -> f64 {
    if v >= 0.0 { v } else { 0.0 }
}

/// `f64::round` (half away from zero) to the bit, without the library call x86-64's baseline instruction set
/// (no SSE4.1 `roundsd`) makes of it: the histogram rounds every bucket of every tick it renders, and the
/// gauges that report whole numbers round every sample.
#[inline]
pub(crate) fn round(x: f64) -> f64 {
    // Most values rounded are positive (counts, sizes): see `nearest`; only halves, which it takes to the even
    // neighbour, differ from rounding half away from zero. The result is never a negative zero.
    if x > 0.0 && x < TWO_52 {
        let r = nearest(x);
        return if x - r == 0.5 { r + 1.0 } else { r };
    }
    round_any(x)
}

/// 2^52: from there on every float is an integer.
const TWO_52: f64 = 4_503_599_627_370_496.0;

/// `x` rounded to the nearest integer, halves to even, for `0 <= x < 2^52`: adding 2^52 leaves no bit below the
/// units, so the addition rounds (to nearest, the only rounding Rust uses), and subtracting it again is exact.
/// Cheaper than a truncation through `i64`, whose saturation costs checks. `x - nearest(x)` is exact too
/// (Sterbenz: the two are within a factor two of each other, or the result is `x` itself).
#[inline]
fn nearest(x: f64) -> f64 {
    (x + TWO_52) - TWO_52
}

/// [`round`] of any value.
fn round_any(x: f64) -> f64 {
    // From 2^52 on every float is an integer; NaN and the infinities pass through too.
    if x.is_nan() || x.abs() >= 4_503_599_627_370_496.0 {
        return x;
    }
    // Truncation through i64 is exact below 2^52, and so is the fractional part.
    let t = x as i64 as f64;
    let frac = x - t;
    let r = if frac >= 0.5 {
        t + 1.0
    } else if frac <= -0.5 {
        t - 1.0
    } else {
        t
    };
    // Keep the sign of a zero result (round(-0.3) is -0.0).
    if r == 0.0 { 0.0f64.copysign(x) } else { r }
}

/// `f64::floor` to the bit, without the library call (as [`round`]): every integral counter floors each sample.
#[inline]
fn floor(x: f64) -> f64 {
    if x > 0.0 && x < TWO_52 {
        let r = nearest(x);
        return if r > x { r - 1.0 } else { r };
    }
    // NaN, the infinities, the zeros (whose sign stays) and everything from 2^52 on are their own floor.
    if x.is_nan() || x == 0.0 || x.abs() >= 4_503_599_627_370_496.0 {
        return x;
    }
    // Negative: truncation went up unless the value was whole.
    let t = x as i64 as f64;
    if t > x { t - 1.0 } else { t }
}

/// The `le` label of each of [`LATENCY_BUCKETS_S`], in the shortest form Prometheus client libraries print
/// (`0.005`, `1.0`, `10.0`; a test checks them against [`format_le`]): label sets
/// are built for every bucket series of every incident, and formatting floats is most of that work.
const LE_LABELS: [&str; LATENCY_BUCKETS_S.len()] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0",
];

/// Bucket bounds in the shortest form Prometheus client libraries print, always with a fraction.
#[cfg(test)]
fn format_le(x: f64) -> String {
    let s = format!("{x}");
    if s.contains('.') || s.contains('e') {
        s
    } else {
        format!("{s}.0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_bucket_labels_are_what_format_le_writes() {
        for (b, le) in LATENCY_BUCKETS_S.iter().zip(LE_LABELS) {
            assert_eq!(format_le(*b), le);
        }
    }

    /// Checks `ours` against the standard library's `std` to the bit on `cases` and on pseudo-random bit patterns
    /// (splitmix64) over every exponent, and small values near integers and halves.
    fn assert_same_bits(
        name: &str,
        ours: fn(f64) -> f64,
        std: fn(f64) -> f64,
        mut cases: Vec<f64>,
    ) {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..200_000u64 {
            x = det::splitmix64(x);
            cases.push(f64::from_bits(x));
            cases.push((x % 10_000_000) as f64 / 1000.0 * if i % 2 == 0 { 1.0 } else { -1.0 });
        }
        for c in cases {
            let (got, want) = (ours(c), std(c));
            assert!(
                got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                "{name}({c:e}) = {got:e}, want {want:e}"
            );
        }
    }

    #[test]
    fn round_matches_the_standard_library_to_the_bit() {
        let cases = vec![
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.5,
            2.5,
            -2.5,
            0.49999999999999994,
            -0.49999999999999994,
            4_503_599_627_370_495.5,
            4_503_599_627_370_496.0,
            9_007_199_254_740_993.0,
            f64::MAX,
            f64::MIN_POSITIVE,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        assert_same_bits("round", round, f64::round, cases);
    }

    /// Records what a render hands over, dense series as the samples they stand for.
    #[derive(Default)]
    struct Record(Vec<(SeriesKey, Vec<TickSample>, bool)>);

    impl SampleSink for Record {
        fn series(&mut self, key: SeriesKey, samples: &[TickSample]) {
            self.0.push((key, samples.to_vec(), false));
        }

        fn dense(&mut self, key: SeriesKey, ticks: &[u64], times: &[i64], values: &[f64]) {
            let samples = ticks
                .iter()
                .zip(times)
                .zip(values)
                .map(|((&tick, &ms), &v)| TickSample { tick, ms, v })
                .collect();
            self.0.push((key, samples, true));
        }
    }

    /// A series is handed over as a column of values exactly when its samples are at the window's first ticks
    /// without a gap, and sample by sample otherwise, the same samples either way: every pattern of ticks with
    /// and without a sample, one series after another through the same builder.
    #[test]
    fn series_go_dense_exactly_when_they_start_the_window_without_a_gap() {
        let topology: firedrill_world::spec::TopologySpec = serde_json::from_value(serde_json::json!({
            "tick_s": 15,
            "cluster": { "cpu_millis": 4000, "memory_mb": 4096 },
            "entrypoints": [{ "service": "web", "rps": 10 }],
            "services": [{ "name": "web", "kind": "edge", "version": "v1", "versions": [{ "name": "v1" }] }]
        }))
        .expect("spec");
        let topology = firedrill_world::Topology::compile(
            &topology,
            &firedrill_world::topology::SpecPath::root(),
        )
        .expect("topology");
        let world = World::new(
            std::sync::Arc::new(topology),
            1,
            firedrill_world::WorldOptions::default(),
        );
        let n = 7;
        let mut sink = Record::default();
        let mut b = Builder {
            world: &world,
            want: [true; SeriesName::ALL.len()],
            want_histogram: true,
            ticks: (40..40 + n as u64).collect(),
            times: (0..n as i64).map(|i| 1_000 + 15_000 * i).collect(),
            frames: Vec::new(),
            totals: Vec::new(),
            vals: Vec::new(),
            buf: Vec::new(),
            counts: Vec::new(),
            held: Vec::new(),
            sink: &mut sink,
        };
        let mut expected = Vec::new();
        for mask in 0u32..1 << n {
            let key = SeriesKey::new(SeriesName::Up, ServiceId(0), mask);
            let mut want = Vec::new();
            for i in (0..n).filter(|i| mask >> i & 1 == 1) {
                let v = f64::from(mask) + i as f64 / 8.0;
                b.sample(i, v);
                want.push(TickSample {
                    tick: 40 + i as u64,
                    ms: 1_000 + 15_000 * i as i64,
                    v,
                });
            }
            b.flush(key);
            if !want.is_empty() {
                // Dense: the present ticks are the first `k`.
                let dense = mask & (mask + 1) == 0;
                expected.push((key, want, dense));
            }
        }
        assert_eq!(sink.0.len(), (1 << n) - 1);
        assert_eq!(sink.0, expected);
    }

    #[test]
    fn the_maxima_are_those_of_the_standard_library() {
        let mut values = vec![0.0, -0.0, 1.0, -1.0, 0.5, f64::INFINITY, f64::NEG_INFINITY];
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2_000 {
            x = det::splitmix64(x);
            values.push(f64::from_bits(x));
            values.push((x % 64) as f64 / 4.0 - 8.0);
        }
        let nans = [f64::NAN, -f64::NAN, f64::from_bits(0x7ff0_0000_0000_0002)];
        let mut compared = 0;
        for &v in values.iter().chain(&nans) {
            let want = std::hint::black_box(v).max(std::hint::black_box(0.0));
            assert_eq!(at_least_zero(v).to_bits(), want.to_bits(), "max({v:e}, 0)");
        }
        for &a in values.iter().filter(|a| !a.is_nan()) {
            // Every special value, the others sampled.
            let special = values[..7].iter().chain(&nans);
            for &b in special.chain(values[7..].iter().step_by(7)) {
                // `black_box`: the maximum as the renderer computed it, at run time.
                let want = std::hint::black_box(a).max(std::hint::black_box(b));
                assert_eq!(
                    max_over(a, b).to_bits(),
                    want.to_bits(),
                    "max({a:e}, {b:e})"
                );
                compared += 1;
            }
        }
        assert!(compared > 500_000, "{compared}");
    }

    #[test]
    fn ok_falls_finds_every_fall_in_any_window_as_a_fresh_look_would() {
        // Falls at a scattered set of ticks; windows forwards, backwards, overlapping, apart and past the held
        // ticks, asked of one tracker in a row, against a look at every tick of each window.
        let falls_at = |t: u64| t % 37 == 5 || t.is_multiple_of(101) || (200..203).contains(&t);
        let mut tracker = OkFalls::default();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let mut found = 0;
        for _ in 0..5_000 {
            let held = 1 + next(40);
            let first = next(400);
            let last = first + next(60);
            let want = (first.max(held)..=last).any(falls_at);
            assert_eq!(
                tracker.any_in_by(held, first, last, falls_at),
                want,
                "[{first}, {last}] from {held}, after {:?}",
                tracker.scanned
            );
            found += want as u32;
        }
        assert!(found > 1_000 && found < 4_900, "{found}");
    }

    #[test]
    fn floor_matches_the_standard_library_to_the_bit() {
        let cases = vec![
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.0,
            -1.0,
            // The floats either side of 1 and -1.
            f64::from_bits(1.0f64.to_bits() - 1),
            f64::from_bits(1.0f64.to_bits() + 1),
            -f64::from_bits(1.0f64.to_bits() - 1),
            -f64::from_bits(1.0f64.to_bits() + 1),
            4_503_599_627_370_495.5,
            -4_503_599_627_370_495.5,
            4_503_599_627_370_496.0,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ];
        assert_same_bits("floor", floor, f64::floor, cases);
    }

    #[test]
    fn le_labels_look_like_prometheus() {
        assert_eq!(format_le(0.005), "0.005");
        assert_eq!(format_le(1.0), "1.0");
        assert_eq!(format_le(10.0), "10.0");
    }

    #[test]
    fn pod_names_are_stable_and_distinct() {
        let a = pod_name(1, "order-service", 0, 0);
        assert_eq!(a, pod_name(1, "order-service", 0, 0));
        assert!(a.starts_with("order-service-") && a.len() == "order-service-".len() + 5);
        assert_ne!(a, pod_name(1, "order-service", 1, 0));
        assert_ne!(a, pod_name(1, "order-service", 0, 1));
        assert_ne!(a, pod_name(2, "order-service", 0, 0));
    }

    #[test]
    fn catalogue_names_are_unique_and_clean() {
        let mut names: Vec<&str> = catalogue().iter().map(|m| m.name).collect();
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(n, names.len());
        for m in catalogue() {
            assert!(
                m.name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{}",
                m.name
            );
            for class in firedrill_world::FaultClass::ALL {
                assert!(!m.name.contains(class.as_str()), "{}", m.name);
                assert!(!m.help.to_lowercase().contains(class.as_str()));
            }
        }
    }
}
