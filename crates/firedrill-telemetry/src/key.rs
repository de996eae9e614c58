//! Key per-service signals read straight from the latest frames: what the simulate report prints and what
//! phase triggers and mitigation conditions compare.

use firedrill_world::{ServiceId, World};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Comparison of a key signal with a threshold (phase triggers, mitigation conditions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Comparison {
    /// Greater than.
    #[serde(rename = ">")]
    Gt,
    /// Greater or equal.
    #[serde(rename = ">=")]
    Ge,
    /// Less than.
    #[serde(rename = "<")]
    Lt,
    /// Less or equal.
    #[serde(rename = "<=")]
    Le,
}

impl Comparison {
    /// Whether `v op threshold` holds.
    pub fn holds(self, v: f64, threshold: f64) -> bool {
        match self {
            Comparison::Gt => v > threshold,
            Comparison::Ge => v >= threshold,
            Comparison::Lt => v < threshold,
            Comparison::Le => v <= threshold,
        }
    }
}

/// A per-service signal.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum KeyMetric {
    /// Requests per second offered.
    Rps,
    /// Share of requests failing (5xx and 429).
    ErrorRatio,
    /// Share of requests failing over the last 5 minutes (what a `rate(...[5m])` rule sees).
    #[serde(rename = "error_ratio_5m")]
    ErrorRatio5m,
    /// Share of requests rejected by the rate limiter.
    RejectedRatio,
    /// 99th percentile latency, ms.
    P99LatencyMs,
    /// Ready replicas over desired replicas.
    ReadyRatio,
    /// 1 if any replica is ready, else 0.
    Up,
    /// Container restarts over the last 15 minutes.
    #[serde(rename = "restarts_increase_15m")]
    RestartsIncrease15m,
    /// CPU in use over the limit.
    CpuUtilisation,
    /// Highest replica working set over the memory limit.
    MemoryUtilisation,
    /// Pooled connections in use over pool size (services with pools).
    PoolUtilisation,
    /// Volume use (services with volumes).
    DiskUtilisation,
    /// Hours until the served certificate expires (services with TLS).
    CertExpiryHours,
    /// Messages waiting in subscriptions.
    QueueDepth,
    /// Mean row-lock wait, ms (databases).
    LockWaitMs,
    /// Share of log lines the telemetry pipeline drops.
    LogDropRatio,
}

/// The frame `seconds` before the latest one (or the oldest held).
fn window_start(
    world: &World,
    service: ServiceId,
    seconds: f64,
) -> Option<&firedrill_world::ServiceFrame> {
    let ticks = (seconds / world.tick_s()).round() as u64;
    let ring = world.history();
    ring.get(
        world
            .tick_count()
            .saturating_sub(ticks)
            .max(ring.first_tick()),
        service.index(),
    )
}

impl KeyMetric {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyMetric::Rps => "rps",
            KeyMetric::ErrorRatio => "error_ratio",
            KeyMetric::ErrorRatio5m => "error_ratio_5m",
            KeyMetric::RejectedRatio => "rejected_ratio",
            KeyMetric::P99LatencyMs => "p99_latency_ms",
            KeyMetric::ReadyRatio => "ready_ratio",
            KeyMetric::Up => "up",
            KeyMetric::RestartsIncrease15m => "restarts_increase_15m",
            KeyMetric::CpuUtilisation => "cpu_utilisation",
            KeyMetric::MemoryUtilisation => "memory_utilisation",
            KeyMetric::PoolUtilisation => "pool_utilisation",
            KeyMetric::DiskUtilisation => "disk_utilisation",
            KeyMetric::CertExpiryHours => "cert_expiry_hours",
            KeyMetric::QueueDepth => "queue_depth",
            KeyMetric::LockWaitMs => "lock_wait_ms",
            KeyMetric::LogDropRatio => "log_drop_ratio",
        }
    }

    /// The value for a service now; `None` where the signal does not apply (no pool, no volume, no TLS).
    pub fn value(self, world: &World, service: ServiceId) -> Option<f64> {
        let f = world.frame(service);
        Some(match self {
            KeyMetric::Rps => f.offered_rps as f64,
            KeyMetric::ErrorRatio => f.error_ratio(),
            KeyMetric::ErrorRatio5m => {
                let past = window_start(world, service, 300.0);
                let requests = f.requests_total - past.map(|p| p.requests_total).unwrap_or(0.0);
                let failed = f.errors_total + f.rejected_total
                    - past
                        .map(|p| p.errors_total + p.rejected_total)
                        .unwrap_or(0.0);
                if requests > 0.0 {
                    (failed / requests).clamp(0.0, 1.0)
                } else {
                    0.0
                }
            }
            KeyMetric::RejectedRatio => {
                if f.offered_rps > 0.0 {
                    (f.rejected_rps / f.offered_rps) as f64
                } else {
                    0.0
                }
            }
            KeyMetric::P99LatencyMs => f.p99_ms(),
            KeyMetric::ReadyRatio => {
                if f.desired == 0 {
                    1.0
                } else {
                    f.ready as f64 / f.desired as f64
                }
            }
            KeyMetric::Up => (f.ready > 0) as u8 as f64,
            KeyMetric::RestartsIncrease15m => {
                let past = window_start(world, service, 900.0)
                    .map(|p| p.restarts_total)
                    .unwrap_or(0);
                f.restarts_total.saturating_sub(past) as f64
            }
            KeyMetric::CpuUtilisation => f.cpu_utilisation(),
            KeyMetric::MemoryUtilisation => f.memory_mb_max() / f.memory_limit_mb.max(1.0) as f64,
            KeyMetric::PoolUtilisation => {
                if f.pool_max <= 0.0 {
                    return None;
                }
                (f.pool_in_use / f.pool_max) as f64
            }
            KeyMetric::DiskUtilisation => {
                if f.disk_size_gb <= 0.0 {
                    return None;
                }
                (f.disk_used_gb / f.disk_size_gb) as f64
            }
            KeyMetric::CertExpiryHours => {
                if f.cert_expires_in_s.is_nan() {
                    return None;
                }
                f.cert_expires_in_s as f64 / 3600.0
            }
            KeyMetric::QueueDepth => f.queue_depth as f64,
            KeyMetric::LockWaitMs => f.lock_wait_ms as f64,
            KeyMetric::LogDropRatio => f.log_drop_ratio as f64,
        })
    }
}
