//! The declarative description of a system, as scenario files write it.
//!
//! These types are deserialised straight from YAML (unknown fields rejected) and compiled by
//! [`crate::Topology::compile`] into the index-based form the simulation runs on. Services refer to each other by
//! name here; every name is checked at compile time.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The kind of a service, which decides which telemetry it exposes and which mechanics apply to it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKind {
    /// Terminates external traffic (a load balancer or a browser-facing front end).
    Edge,
    /// An API gateway routing to internal services.
    Gateway,
    /// An ordinary request/response service.
    Service,
    /// A background consumer of queues or topics.
    Worker,
    /// A database server.
    Database,
    /// A cache server.
    Cache,
    /// A message broker or queue.
    Queue,
    /// A dependency outside our control (a payment provider, a SaaS API).
    External,
    /// A sensor or publisher that emits messages at its own rate.
    Sensor,
    /// A telemetry component (log shipper, collector).
    Observability,
}

impl ServiceKind {
    /// The wire name (`gateway`).
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceKind::Edge => "edge",
            ServiceKind::Gateway => "gateway",
            ServiceKind::Service => "service",
            ServiceKind::Worker => "worker",
            ServiceKind::Database => "database",
            ServiceKind::Cache => "cache",
            ServiceKind::Queue => "queue",
            ServiceKind::External => "external",
            ServiceKind::Sensor => "sensor",
            ServiceKind::Observability => "observability",
        }
    }

    /// Whether the service answers HTTP requests that are counted (`http_requests_total`) and timed (the latency
    /// histogram). Sensors only publish and telemetry components only ingest, so neither exposes them.
    pub fn serves_http(self) -> bool {
        !matches!(self, ServiceKind::Observability | ServiceKind::Sensor)
    }
}

/// How one version (or one enabled feature flag) of a service behaves, relative to a clean baseline.
///
/// A bad version is nothing but a behaviour with non-neutral values: the symptoms follow from the mechanics.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Behaviour {
    /// Memory that each replica leaks, in MiB per minute of running.
    pub leak_mb_per_min: f64,
    /// Extra steady working set per replica, in MiB.
    pub extra_memory_mb: f64,
    /// Database connections each replica fails to return to its pools, per minute at nominal load.
    pub conn_leak_per_min: f64,
    /// CPU cost per request, as a multiple of the baseline (2.0 halves capacity).
    pub cpu_factor: f64,
    /// Own processing latency, as a multiple of the baseline.
    pub latency_factor: f64,
    /// Extra share of requests that fail with a server error.
    pub error_ratio: f64,
    /// How long each of this service's database queries holds a row lock, in ms (0: no locking queries).
    pub lock_hold_ms: f64,
    /// Rate of published messages, as a multiple of the baseline.
    pub publish_factor: f64,
    /// The process exits right after starting (a broken build or a bad configuration).
    pub crash_on_start: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            leak_mb_per_min: 0.0,
            extra_memory_mb: 0.0,
            conn_leak_per_min: 0.0,
            cpu_factor: 1.0,
            latency_factor: 1.0,
            error_ratio: 0.0,
            lock_hold_ms: 0.0,
            publish_factor: 1.0,
            crash_on_start: false,
        }
    }
}

impl Behaviour {
    /// Combines two behaviours (a version and an enabled flag): additive terms add, factors multiply.
    pub fn combine(&self, other: &Behaviour) -> Behaviour {
        Behaviour {
            leak_mb_per_min: self.leak_mb_per_min + other.leak_mb_per_min,
            extra_memory_mb: self.extra_memory_mb + other.extra_memory_mb,
            conn_leak_per_min: self.conn_leak_per_min + other.conn_leak_per_min,
            cpu_factor: self.cpu_factor * other.cpu_factor,
            latency_factor: self.latency_factor * other.latency_factor,
            error_ratio: self.error_ratio + other.error_ratio,
            lock_hold_ms: self.lock_hold_ms + other.lock_hold_ms,
            publish_factor: self.publish_factor * other.publish_factor,
            crash_on_start: self.crash_on_start || other.crash_on_start,
        }
    }
}

/// A deployable version of a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionSpec {
    /// Version name (`v2.3.1`).
    pub name: String,
    /// How it behaves.
    #[serde(default)]
    pub behaviour: Behaviour,
}

/// A feature flag of a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlagSpec {
    /// Flag name.
    pub name: String,
    /// Whether it starts enabled.
    #[serde(default)]
    pub enabled: bool,
    /// The behaviour it adds while enabled.
    #[serde(default)]
    pub when_on: Behaviour,
}

/// A synchronous call edge: each request to the caller makes `per_request` calls to `to`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallSpec {
    /// The callee.
    pub to: String,
    /// Calls per request (fan-out; may be fractional for calls made by only some requests).
    #[serde(default = "one")]
    pub per_request: f64,
    /// Client timeout per attempt, in ms.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: f64,
    /// Retries after a failed attempt.
    #[serde(default)]
    pub retries: u8,
    /// Size of the caller's connection pool to the callee, per caller replica (databases).
    #[serde(default)]
    pub pool: Option<u32>,
    /// Average time a pooled connection is held per call beyond the callee's latency, in ms.
    #[serde(default)]
    pub hold_ms: f64,
    /// A cache consulted first; only misses reach the callee.
    #[serde(default)]
    pub via_cache: Option<String>,
}

fn one() -> f64 {
    1.0
}

fn default_timeout_ms() -> f64 {
    2000.0
}

/// Reliability of a publish/subscribe contract (DDS semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reliability {
    /// Lost samples are not resent.
    BestEffort,
    /// Lost samples are resent.
    Reliable,
}

/// Durability of a publish/subscribe contract (DDS semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// Late joiners get nothing old.
    Volatile,
    /// Late joiners get the last samples.
    TransientLocal,
}

/// A quality-of-service contract, offered by a writer or requested by a reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Qos {
    /// Reliability.
    pub reliability: Reliability,
    /// Durability.
    #[serde(default = "volatile")]
    pub durability: Durability,
}

fn volatile() -> Durability {
    Durability::Volatile
}

impl Qos {
    /// Whether a writer offering `self` can serve a reader requesting `requested` (the DDS request/offer rule:
    /// the offer must be at least as strong as the request).
    pub fn satisfies(&self, requested: &Qos) -> bool {
        let reliability_ok = !(requested.reliability == Reliability::Reliable
            && self.reliability == Reliability::BestEffort);
        let durability_ok = !(requested.durability == Durability::TransientLocal
            && self.durability == Durability::Volatile);
        reliability_ok && durability_ok
    }
}

/// A service publishing to a topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishSpec {
    /// Topic name.
    pub topic: String,
    /// Messages per second published at nominal operation.
    pub rate_hz: f64,
    /// The contract the writer offers.
    pub qos: Qos,
}

/// A service subscribing to a topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscribeSpec {
    /// Topic name.
    pub topic: String,
    /// The contract the reader requests.
    pub qos: Qos,
    /// Messages per second one replica can process.
    #[serde(default = "default_consume_hz")]
    pub capacity_hz_per_replica: f64,
}

fn default_consume_hz() -> f64 {
    200.0
}

/// A horizontal autoscaler on CPU utilisation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AutoscaleSpec {
    /// Fewest replicas.
    pub min: u32,
    /// Most replicas.
    pub max: u32,
    /// Target CPU utilisation in (0, 1].
    pub target_cpu: f64,
}

/// A token-bucket rate limiter in front of the service, per replica.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSpec {
    /// Sustained requests per second each replica admits.
    pub rps_per_replica: f64,
    /// Burst size per replica, in requests.
    #[serde(default)]
    pub burst: f64,
}

/// A persistent volume.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiskSpec {
    /// Volume size in GiB.
    pub size_gb: f64,
    /// Data already on it, in GiB.
    pub data_gb: f64,
    /// Data growth per day, in GiB.
    #[serde(default)]
    pub growth_gb_per_day: f64,
    /// Log volume written at `info` level, in MiB per minute per replica.
    #[serde(default = "default_log_mb")]
    pub log_mb_per_min: f64,
    /// Share of requests that write to the volume (they fail when it is full).
    #[serde(default = "default_write_ratio")]
    pub write_ratio: f64,
}

fn default_log_mb() -> f64 {
    2.0
}

fn default_write_ratio() -> f64 {
    0.6
}

/// The TLS certificate a service serves.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    /// When the certificate loaded at start expires, in seconds of simulated time.
    pub expires_at_s: f64,
    /// When a renewed certificate is written to the secret (loaded only by a process that starts after this).
    #[serde(default)]
    pub renewed_at_s: Option<f64>,
}

/// One service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// Unique name (`order-service`).
    pub name: String,
    /// Kind.
    pub kind: ServiceKind,
    /// Desired replicas at start.
    #[serde(default = "default_replicas")]
    pub replicas: u32,
    /// CPU limit per replica, in millicores.
    #[serde(default = "default_cpu")]
    pub cpu_millis: u32,
    /// Memory limit per replica, in MiB.
    #[serde(default = "default_memory")]
    pub memory_mb: u32,
    /// Memory in use by an idle warmed-up replica, in MiB.
    #[serde(default = "default_base_memory")]
    pub base_memory_mb: f64,
    /// Extra working set per request/s handled by a replica, in MiB.
    #[serde(default)]
    pub memory_per_rps_mb: f64,
    /// Requests per second one replica serves at its full CPU limit.
    #[serde(default = "default_capacity")]
    pub capacity_rps: f64,
    /// Own median processing latency at low load, in ms.
    #[serde(default = "default_latency")]
    pub latency_ms: f64,
    /// Spread of the latency distribution (log-normal sigma).
    #[serde(default = "default_sigma")]
    pub latency_sigma: f64,
    /// Background share of requests that fail.
    #[serde(default = "default_error_ratio")]
    pub error_ratio: f64,
    /// Seconds from process start to ready.
    #[serde(default = "default_startup")]
    pub startup_s: f64,
    /// Maximum concurrent client connections (databases).
    #[serde(default)]
    pub max_connections: Option<u32>,
    /// Autoscaler, if any.
    #[serde(default)]
    pub autoscale: Option<AutoscaleSpec>,
    /// Rate limiter, if any.
    #[serde(default)]
    pub rate_limit: Option<RateLimitSpec>,
    /// Volume, if any.
    #[serde(default)]
    pub disk: Option<DiskSpec>,
    /// Served certificate, if any.
    #[serde(default)]
    pub tls: Option<TlsSpec>,
    /// The running version; must be one of `versions`.
    pub version: String,
    /// Known versions, oldest first.
    pub versions: Vec<VersionSpec>,
    /// Configuration keys and values.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Feature flags.
    #[serde(default)]
    pub flags: Vec<FlagSpec>,
    /// Synchronous calls.
    #[serde(default)]
    pub calls: Vec<CallSpec>,
    /// Topics written.
    #[serde(default)]
    pub publishes: Vec<PublishSpec>,
    /// Topics read.
    #[serde(default)]
    pub subscribes: Vec<SubscribeSpec>,
    /// Background log lines per second per replica.
    #[serde(default = "default_log_rate")]
    pub log_lines_per_s: f64,
}

fn default_replicas() -> u32 {
    2
}
fn default_cpu() -> u32 {
    500
}
fn default_memory() -> u32 {
    512
}
fn default_base_memory() -> f64 {
    160.0
}
fn default_capacity() -> f64 {
    100.0
}
fn default_latency() -> f64 {
    10.0
}
fn default_sigma() -> f64 {
    0.45
}
fn default_error_ratio() -> f64 {
    0.0005
}
fn default_startup() -> f64 {
    20.0
}
fn default_log_rate() -> f64 {
    2.0
}

/// Where external traffic enters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EntrySpec {
    /// The service receiving it.
    pub service: String,
    /// Mean requests per second over a day.
    pub rps: f64,
    /// Peak-to-mean amplitude of the daily cycle, in [0, 1).
    #[serde(default = "default_daily")]
    pub daily_amplitude: f64,
    /// Relative standard deviation of per-tick noise.
    #[serde(default = "default_noise")]
    pub noise: f64,
}

fn default_daily() -> f64 {
    0.3
}
fn default_noise() -> f64 {
    0.03
}

/// The cluster's shared resource quota.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    /// Total CPU that all replicas may request, in millicores.
    pub cpu_millis: u32,
    /// Total memory that all replicas may request, in MiB.
    pub memory_mb: u32,
}

impl Default for ClusterSpec {
    fn default() -> Self {
        ClusterSpec {
            cpu_millis: 16_000,
            memory_mb: 16_384,
        }
    }
}

/// A whole system: services, traffic and cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TopologySpec {
    /// Services.
    pub services: Vec<ServiceSpec>,
    /// Traffic entry points.
    pub entrypoints: Vec<EntrySpec>,
    /// Cluster quota.
    #[serde(default)]
    pub cluster: ClusterSpec,
    /// Seconds per tick (default 15, one scrape interval).
    #[serde(default = "default_tick")]
    pub tick_s: f64,
}

fn default_tick() -> f64 {
    15.0
}
