//! Prometheus-style metric series rendered from the world's frames.
//!
//! The world keeps one compact frame per service per tick (bounded retention); this module turns them into
//! named, labelled series with Prometheus types when somebody reads them. Counters are cumulative and
//! monotonic; histograms are classic `le` buckets computed from each tick's latency distribution.

use std::collections::BTreeMap;

use firedrill_world::frame::ErrorCause;
use firedrill_world::spec::ServiceKind;
use firedrill_world::world::{LATENCY_BUCKETS_S, lognormal_cdf};
use firedrill_world::{ServiceFrame, ServiceId, World};
use serde::Serialize;

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
    /// Family name.
    pub name: &'static str,
    /// Type.
    pub kind: MetricKind,
    /// Help text.
    pub help: &'static str,
}

/// Every metric family rendered.
pub const CATALOGUE: &[MetricInfo] = &[
    MetricInfo {
        name: "http_requests_total",
        kind: MetricKind::Counter,
        help: "Requests received, by status code.",
    },
    MetricInfo {
        name: "http_request_duration_seconds",
        kind: MetricKind::Histogram,
        help: "Latency of answered requests.",
    },
    MetricInfo {
        name: "up",
        kind: MetricKind::Gauge,
        help: "1 if at least one replica is ready.",
    },
    MetricInfo {
        name: "app_info",
        kind: MetricKind::Gauge,
        help: "Running version (value 1).",
    },
    MetricInfo {
        name: "kube_deployment_spec_replicas",
        kind: MetricKind::Gauge,
        help: "Desired replicas.",
    },
    MetricInfo {
        name: "kube_deployment_status_replicas_available",
        kind: MetricKind::Gauge,
        help: "Ready replicas.",
    },
    MetricInfo {
        name: "kube_deployment_status_replicas_pending",
        kind: MetricKind::Gauge,
        help: "Pods waiting to be scheduled.",
    },
    MetricInfo {
        name: "kube_pod_container_status_restarts_total",
        kind: MetricKind::Counter,
        help: "Container restarts.",
    },
    MetricInfo {
        name: "kube_pod_container_status_oomkilled_total",
        kind: MetricKind::Counter,
        help: "Containers terminated with reason OOMKilled.",
    },
    MetricInfo {
        name: "kube_pod_container_resource_limits",
        kind: MetricKind::Gauge,
        help: "Resource limits per container.",
    },
    MetricInfo {
        name: "container_memory_working_set_bytes",
        kind: MetricKind::Gauge,
        help: "Working set per pod.",
    },
    MetricInfo {
        name: "container_cpu_usage_seconds_total",
        kind: MetricKind::Counter,
        help: "CPU time consumed.",
    },
    MetricInfo {
        name: "db_client_connections_in_use",
        kind: MetricKind::Gauge,
        help: "Pooled connections in use per replica.",
    },
    MetricInfo {
        name: "db_client_connections_max",
        kind: MetricKind::Gauge,
        help: "Pool size per replica.",
    },
    MetricInfo {
        name: "db_client_connection_timeouts_total",
        kind: MetricKind::Counter,
        help: "Calls that gave up waiting for a pooled connection.",
    },
    MetricInfo {
        name: "db_client_connection_wait_seconds",
        kind: MetricKind::Gauge,
        help: "Mean wait for a pooled connection.",
    },
    MetricInfo {
        name: "pg_lock_wait_seconds",
        kind: MetricKind::Gauge,
        help: "Mean wait on row locks per query.",
    },
    MetricInfo {
        name: "pg_stat_activity_count",
        kind: MetricKind::Gauge,
        help: "Open client connections.",
    },
    MetricInfo {
        name: "node_filesystem_size_bytes",
        kind: MetricKind::Gauge,
        help: "Volume size.",
    },
    MetricInfo {
        name: "node_filesystem_avail_bytes",
        kind: MetricKind::Gauge,
        help: "Volume space available.",
    },
    MetricInfo {
        name: "probe_ssl_earliest_cert_expiry",
        kind: MetricKind::Gauge,
        help: "Expiry of the served certificate, unix seconds.",
    },
    MetricInfo {
        name: "dns_lookup_failures_total",
        kind: MetricKind::Counter,
        help: "Outgoing calls that failed name resolution.",
    },
    MetricInfo {
        name: "tls_handshake_failures_total",
        kind: MetricKind::Counter,
        help: "Outgoing calls that failed the TLS handshake.",
    },
    MetricInfo {
        name: "ratelimit_rejected_total",
        kind: MetricKind::Counter,
        help: "Requests rejected by the rate limiter.",
    },
    MetricInfo {
        name: "messages_published_total",
        kind: MetricKind::Counter,
        help: "Messages published.",
    },
    MetricInfo {
        name: "messages_consumed_total",
        kind: MetricKind::Counter,
        help: "Messages consumed.",
    },
    MetricInfo {
        name: "subscription_backlog_messages",
        kind: MetricKind::Gauge,
        help: "Messages waiting in subscriptions.",
    },
    MetricInfo {
        name: "cache_hit_ratio",
        kind: MetricKind::Gauge,
        help: "Share of lookups served from the cache.",
    },
    MetricInfo {
        name: "log_pipeline_dropped_ratio",
        kind: MetricKind::Gauge,
        help: "Share of log lines dropped by the pipeline.",
    },
];

/// One series: labels (including `__name__`) and samples as (unix ms, value).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricSeries {
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Samples, oldest first.
    pub samples: Vec<(i64, f64)>,
}

/// Unix milliseconds of the end of tick `tick`.
pub fn tick_ms(world: &World, tick: u64) -> i64 {
    ((world.epoch_unix_s() as f64 + tick as f64 * world.tick_s()) * 1000.0).round() as i64
}

/// A stable pod name for a replica slot.
pub fn pod_name(service: &str, slot: usize) -> String {
    // Five lowercase alphanumerics derived from the name and slot, like a ReplicaSet pod suffix.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in service.bytes().chain([slot as u8]) {
        h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let suffix: String = (0..5)
        .map(|i| ALPHABET[((h >> (i * 8)) % ALPHABET.len() as u64) as usize] as char)
        .collect();
    format!("{service}-{suffix}")
}

struct Builder<'a> {
    world: &'a World,
    ticks: Vec<u64>,
    out: Vec<MetricSeries>,
}

impl Builder<'_> {
    fn labels(
        &self,
        name: &str,
        service: ServiceId,
        extra: &[(&str, String)],
    ) -> BTreeMap<String, String> {
        let svc = self.world.topology().service(service).name();
        let mut l = BTreeMap::new();
        l.insert("__name__".to_string(), name.to_string());
        l.insert("service".to_string(), svc.to_string());
        l.insert("job".to_string(), svc.to_string());
        l.insert("namespace".to_string(), "prod".to_string());
        for (k, v) in extra {
            l.insert((*k).to_string(), v.clone());
        }
        l
    }

    fn series(
        &mut self,
        name: &str,
        service: ServiceId,
        extra: &[(&str, String)],
        value: impl Fn(&ServiceFrame) -> Option<f64>,
    ) {
        let ring = self.world.history();
        let samples: Vec<(i64, f64)> = self
            .ticks
            .iter()
            .filter_map(|&t| {
                ring.get(t, service.index())
                    .and_then(&value)
                    .map(|v| (tick_ms(self.world, t), v))
            })
            .collect();
        if !samples.is_empty() {
            let labels = self.labels(name, service, extra);
            self.out.push(MetricSeries { labels, samples });
        }
    }

    /// A counter accumulated tick by tick from a per-second rate, starting from `base` at the first held tick.
    fn counter(
        &mut self,
        name: &str,
        service: ServiceId,
        extra: &[(&str, String)],
        base: f64,
        rate: impl Fn(&ServiceFrame) -> f64,
    ) {
        let ring = self.world.history();
        let dt = self.world.tick_s();
        let mut total = base;
        let mut samples = Vec::new();
        for t in ring.first_tick()..ring.end_tick() {
            let Some(f) = ring.get(t, service.index()) else {
                continue;
            };
            total += rate(f).max(0.0) * dt;
            if self.ticks.first().is_some_and(|&a| t >= a)
                && self.ticks.last().is_some_and(|&b| t <= b)
            {
                samples.push((tick_ms(self.world, t), total));
            }
        }
        if !samples.is_empty() {
            let labels = self.labels(name, service, extra);
            self.out.push(MetricSeries { labels, samples });
        }
    }
}

fn code_of(cause: ErrorCause) -> &'static str {
    match cause {
        ErrorCause::Unavailable => "503",
        ErrorCause::UpstreamTimeout
        | ErrorCause::PoolTimeout
        | ErrorCause::LockTimeout
        | ErrorCause::Overload => "504",
        _ => "500",
    }
}

/// Renders every series whose family name passes `wanted`, with samples in `[start_ms, end_ms]`, sorted by
/// labels.
pub fn render(
    world: &World,
    wanted: &dyn Fn(&str) -> bool,
    start_ms: i64,
    end_ms: i64,
) -> Vec<MetricSeries> {
    let ring = world.history();
    let ticks: Vec<u64> = (ring.first_tick()..ring.end_tick())
        .filter(|&t| (start_ms..=end_ms).contains(&tick_ms(world, t)))
        .collect();
    let mut b = Builder {
        world,
        ticks,
        out: Vec::new(),
    };
    if b.ticks.is_empty() {
        return Vec::new();
    }
    let topo = world.topology();
    let first = ring.first_tick();
    for i in 0..topo.len() {
        let id = ServiceId(i as u16);
        let spec = &topo.service(id).spec;
        let first_frame = ring.get(first, i).copied().unwrap_or_default();
        let dt = world.tick_s();
        if wanted("http_requests_total") && !matches!(spec.kind, ServiceKind::Observability) {
            let ok_base = (first_frame.requests_total
                - first_frame.errors_total
                - first_frame.rejected_total)
                .max(0.0)
                - ((first_frame.admitted_rps - first_frame.error_rps).max(0.0) as f64 * dt);
            b.counter(
                "http_requests_total",
                id,
                &[("code", "200".into())],
                ok_base.max(0.0),
                |f| (f.admitted_rps - f.error_rps).max(0.0) as f64,
            );
            let err_base = (first_frame.errors_total - first_frame.error_rps as f64 * dt).max(0.0);
            for code in ["500", "503", "504"] {
                let base = if code == "500" { err_base } else { 0.0 };
                b.counter(
                    "http_requests_total",
                    id,
                    &[("code", code.into())],
                    base,
                    move |f| {
                        if code_of(f.err_cause) == code {
                            f.error_rps as f64
                        } else {
                            0.0
                        }
                    },
                );
            }
            if spec.rate_limit.is_some() {
                let base =
                    (first_frame.rejected_total - first_frame.rejected_rps as f64 * dt).max(0.0);
                b.counter(
                    "http_requests_total",
                    id,
                    &[("code", "429".into())],
                    base,
                    |f| f.rejected_rps as f64,
                );
            }
        }
        if wanted("http_request_duration_seconds")
            && !matches!(spec.kind, ServiceKind::Observability)
        {
            histogram(&mut b, world, id);
        }
        if wanted("up") {
            b.series("up", id, &[], |f| Some((f.ready > 0) as u8 as f64));
        }
        if wanted("app_info") {
            // One series per version seen in the window, 1 while it is the running version.
            let mut seen = std::collections::BTreeSet::new();
            for &t in &b.ticks {
                if let Some(f) = ring.get(t, i) {
                    seen.insert(f.version);
                }
            }
            for v in seen {
                let name = spec
                    .versions
                    .get(v as usize)
                    .map(|x| x.name.clone())
                    .unwrap_or_default();
                b.series("app_info", id, &[("version", name)], move |f| {
                    (f.version == v).then_some(1.0)
                });
            }
        }
        if wanted("kube_deployment_spec_replicas") {
            b.series(
                "kube_deployment_spec_replicas",
                id,
                &[("deployment", spec.name.clone())],
                |f| Some(f.desired as f64),
            );
        }
        if wanted("kube_deployment_status_replicas_available") {
            b.series(
                "kube_deployment_status_replicas_available",
                id,
                &[("deployment", spec.name.clone())],
                |f| Some(f.ready as f64),
            );
        }
        if wanted("kube_deployment_status_replicas_pending") {
            b.series(
                "kube_deployment_status_replicas_pending",
                id,
                &[("deployment", spec.name.clone())],
                |f| Some(f.pending as f64),
            );
        }
        if wanted("kube_pod_container_status_restarts_total") {
            b.series(
                "kube_pod_container_status_restarts_total",
                id,
                &[("container", spec.name.clone())],
                |f| Some(f.restarts_total as f64),
            );
        }
        if wanted("kube_pod_container_status_oomkilled_total") {
            b.series(
                "kube_pod_container_status_oomkilled_total",
                id,
                &[("container", spec.name.clone())],
                |f| Some(f.oom_kills_total as f64),
            );
        }
        if wanted("kube_pod_container_resource_limits") {
            b.series(
                "kube_pod_container_resource_limits",
                id,
                &[("resource", "memory".into()), ("unit", "byte".into())],
                |f| Some(f.memory_limit_mb as f64 * 1_048_576.0),
            );
            b.series(
                "kube_pod_container_resource_limits",
                id,
                &[("resource", "cpu".into()), ("unit", "core".into())],
                |f| Some(f.cpu_limit_cores as f64),
            );
        }
        if wanted("container_memory_working_set_bytes") {
            for slot in 0..firedrill_world::topology::MAX_REPLICAS {
                let pod = pod_name(&spec.name, slot);
                b.series(
                    "container_memory_working_set_bytes",
                    id,
                    &[("pod", pod)],
                    move |f| {
                        let mb = f.replica_memory_mb[slot];
                        (mb > 0.0).then_some(mb as f64 * 1_048_576.0)
                    },
                );
            }
        }
        if wanted("container_cpu_usage_seconds_total") {
            b.series("container_cpu_usage_seconds_total", id, &[], |f| {
                Some(f.cpu_seconds_total)
            });
        }
        let has_pool = topo
            .service(id)
            .out_edges
            .iter()
            .any(|&e| topo.edges[e].pool.is_some());
        if has_pool {
            let db = topo
                .service(id)
                .out_edges
                .iter()
                .find(|&&e| topo.edges[e].pool.is_some())
                .map(|&e| topo.service(topo.edges[e].to).name().to_string())
                .unwrap_or_default();
            let pool = [("pool", db)];
            if wanted("db_client_connections_in_use") {
                b.series("db_client_connections_in_use", id, &pool, |f| {
                    Some(f.pool_in_use as f64)
                });
            }
            if wanted("db_client_connections_max") {
                b.series("db_client_connections_max", id, &pool, |f| {
                    Some(f.pool_max as f64)
                });
            }
            if wanted("db_client_connection_timeouts_total") {
                b.counter("db_client_connection_timeouts_total", id, &pool, 0.0, |f| {
                    f.pool_timeouts_rps as f64
                });
            }
            if wanted("db_client_connection_wait_seconds") {
                b.series("db_client_connection_wait_seconds", id, &pool, |f| {
                    Some(f.pool_wait_ms as f64 / 1000.0)
                });
            }
        }
        if spec.kind == ServiceKind::Database {
            if wanted("pg_lock_wait_seconds") {
                b.series("pg_lock_wait_seconds", id, &[], |f| {
                    Some(f.lock_wait_ms as f64 / 1000.0)
                });
            }
            if wanted("pg_stat_activity_count") {
                b.series("pg_stat_activity_count", id, &[], |f| {
                    Some(f.db_connections.round() as f64)
                });
            }
        }
        if spec.disk.is_some() {
            let mount = [("mountpoint", "/data".to_string())];
            if wanted("node_filesystem_size_bytes") {
                b.series("node_filesystem_size_bytes", id, &mount, |f| {
                    Some(f.disk_size_gb as f64 * 1_073_741_824.0)
                });
            }
            if wanted("node_filesystem_avail_bytes") {
                b.series("node_filesystem_avail_bytes", id, &mount, |f| {
                    Some(
                        ((f.disk_size_gb - f.disk_used_gb).max(0.0) as f64 * 1_073_741_824.0)
                            .round(),
                    )
                });
            }
        }
        if spec.tls.is_some() && wanted("probe_ssl_earliest_cert_expiry") {
            let epoch = world.epoch_unix_s() as f64;
            let tick_s = world.tick_s();
            let ticks = b.ticks.clone();
            let ring = world.history();
            let samples: Vec<(i64, f64)> = ticks
                .iter()
                .filter_map(|&t| {
                    let f = ring.get(t, i)?;
                    (!f.cert_expires_in_s.is_nan()).then(|| {
                        (
                            tick_ms(world, t),
                            (epoch + t as f64 * tick_s + f.cert_expires_in_s as f64).round(),
                        )
                    })
                })
                .collect();
            if !samples.is_empty() {
                let labels = b.labels("probe_ssl_earliest_cert_expiry", id, &[]);
                b.out.push(MetricSeries { labels, samples });
            }
        }
        if !spec.calls.is_empty() {
            if wanted("dns_lookup_failures_total") {
                b.counter("dns_lookup_failures_total", id, &[], 0.0, |f| {
                    f.dns_failures_rps as f64
                });
            }
            if wanted("tls_handshake_failures_total") {
                b.counter("tls_handshake_failures_total", id, &[], 0.0, |f| {
                    f.tls_failures_rps as f64
                });
            }
        }
        if spec.rate_limit.is_some() && wanted("ratelimit_rejected_total") {
            let base = (first_frame.rejected_total - first_frame.rejected_rps as f64 * dt).max(0.0);
            b.counter("ratelimit_rejected_total", id, &[], base, |f| {
                f.rejected_rps as f64
            });
        }
        if !spec.publishes.is_empty() && wanted("messages_published_total") {
            b.counter("messages_published_total", id, &[], 0.0, |f| {
                f.published_hz as f64
            });
        }
        if !spec.subscribes.is_empty() {
            if wanted("messages_consumed_total") {
                b.counter("messages_consumed_total", id, &[], 0.0, |f| {
                    f.consumed_hz as f64
                });
            }
            if wanted("subscription_backlog_messages") {
                b.series("subscription_backlog_messages", id, &[], |f| {
                    Some(f.queue_depth.round() as f64)
                });
            }
        }
        if spec.kind == ServiceKind::Cache && wanted("cache_hit_ratio") {
            b.series("cache_hit_ratio", id, &[], |f| {
                Some(f.cache_hit_ratio as f64)
            });
        }
        if spec.kind == ServiceKind::Observability && wanted("log_pipeline_dropped_ratio") {
            b.series("log_pipeline_dropped_ratio", id, &[], |f| {
                Some(f.log_drop_ratio as f64)
            });
        }
    }
    let mut out = b.out;
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    out
}

fn histogram(b: &mut Builder<'_>, world: &World, id: ServiceId) {
    let ring = world.history();
    let dt = world.tick_s();
    let (baseline, sum_base) = world.latency_baseline(id);
    let mut cum = *baseline;
    let mut sum = sum_base;
    let n = LATENCY_BUCKETS_S.len();
    let mut buckets: Vec<Vec<(i64, f64)>> = vec![Vec::new(); n + 1];
    let mut sums = Vec::new();
    let (first_wanted, last_wanted) = (
        b.ticks.first().copied().unwrap_or(0),
        b.ticks.last().copied().unwrap_or(0),
    );
    for t in ring.first_tick()..ring.end_tick() {
        let Some(f) = ring.get(t, id.index()) else {
            continue;
        };
        let answered = (f.admitted_rps - f.error_rps).max(0.0) as f64 * dt;
        if answered > 0.0 {
            for (k, le) in LATENCY_BUCKETS_S.iter().enumerate() {
                cum[k] += answered
                    * lognormal_cdf(
                        f.latency_median_ms as f64,
                        f.latency_sigma as f64,
                        le * 1000.0,
                    );
            }
            cum[n] += answered;
            sum += answered * f.latency_median_ms as f64 / 1000.0
                * (0.5 * (f.latency_sigma as f64).powi(2)).exp();
        }
        if t >= first_wanted && t <= last_wanted {
            let ms = tick_ms(world, t);
            for k in 0..=n {
                // Rounded to whole requests: a bucket count is an integer in a real exporter.
                buckets[k].push((ms, cum[k].round()));
            }
            sums.push((ms, sum));
        }
    }
    for (k, samples) in buckets.into_iter().enumerate() {
        let le = if k == n {
            "+Inf".to_string()
        } else {
            format_le(LATENCY_BUCKETS_S[k])
        };
        let labels = b.labels("http_request_duration_seconds_bucket", id, &[("le", le)]);
        if k == n {
            let count_labels = b.labels("http_request_duration_seconds_count", id, &[]);
            b.out.push(MetricSeries {
                labels: count_labels,
                samples: samples.clone(),
            });
        }
        b.out.push(MetricSeries { labels, samples });
    }
    let labels = b.labels("http_request_duration_seconds_sum", id, &[]);
    b.out.push(MetricSeries {
        labels,
        samples: sums,
    });
}

fn format_le(x: f64) -> String {
    // Prometheus client libraries print bucket bounds in their shortest form.
    let s = format!("{x}");
    if s.contains('.') || s.contains('e') {
        s
    } else {
        format!("{s}.0")
    }
}
