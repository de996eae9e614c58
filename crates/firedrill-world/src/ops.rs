//! Operations: the typed changes an operator (or a fault program) makes to the world.
//!
//! Each operation is validated first and refused with a typed [`OpError`] if it is malformed or would do
//! nothing; a refused operation leaves the world untouched. Accepted operations take effect through the
//! mechanics: pods are replaced over the following ticks, so they take simulated time.

use crate::changes::{Actor, ChangeKind, ChangeRecord};
use crate::config::{ConfigEffects, check_value};
use crate::events::EventKind;
use crate::spec::Qos;
use crate::topology::{MAX_REPLICAS, ServiceId};
use crate::world::{Phase, World};

/// A change to the world that an operator can make.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    /// Replace every pod of a service at once, optionally with new limits. The service is unavailable until
    /// the new pods are ready.
    Restart {
        /// Service.
        service: ServiceId,
        /// New memory limit per pod, MiB.
        memory_mb: Option<u32>,
        /// New CPU limit per pod, millicores.
        cpu_millis: Option<u32>,
    },
    /// Set the desired replica count (with an autoscaler: its floor).
    Scale {
        /// Service.
        service: ServiceId,
        /// Replicas, 0 to [`MAX_REPLICAS`].
        replicas: u32,
    },
    /// Roll out a version (a rollback is a rollout to an older version), one pod at a time.
    Deploy {
        /// Service.
        service: ServiceId,
        /// Version index.
        version: u8,
    },
    /// Set a configuration key (takes effect at once, like a hot-reloaded ConfigMap).
    SetConfig {
        /// Service.
        service: ServiceId,
        /// Key.
        key: String,
        /// Value.
        value: String,
    },
    /// Change resource limits. Memory or CPU changes recreate the pods; a volume grows online.
    SetLimits {
        /// Service.
        service: ServiceId,
        /// Memory per pod, MiB.
        memory_mb: Option<u32>,
        /// CPU per pod, millicores.
        cpu_millis: Option<u32>,
        /// Volume size, GiB (can only grow).
        disk_gb: Option<f64>,
    },
    /// Turn a feature flag on or off (takes effect at once).
    SetFlag {
        /// Service.
        service: ServiceId,
        /// Flag index.
        flag: u8,
        /// New state.
        enabled: bool,
    },
    /// Reattach a detached network.
    ReconnectNetwork {
        /// Service.
        service: ServiceId,
    },
    /// Purge the backlog of a service's subscriptions.
    DrainQueue {
        /// Service.
        service: ServiceId,
    },
}

impl Operation {
    /// The service the operation acts on.
    pub fn service(&self) -> ServiceId {
        match self {
            Operation::Restart { service, .. }
            | Operation::Scale { service, .. }
            | Operation::Deploy { service, .. }
            | Operation::SetConfig { service, .. }
            | Operation::SetLimits { service, .. }
            | Operation::SetFlag { service, .. }
            | Operation::ReconnectNetwork { service }
            | Operation::DrainQueue { service } => *service,
        }
    }

    /// Short machine name (`restart`, `scale`...).
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Restart { .. } => "restart",
            Operation::Scale { .. } => "scale",
            Operation::Deploy { .. } => "deploy",
            Operation::SetConfig { .. } => "set_config",
            Operation::SetLimits { .. } => "set_limits",
            Operation::SetFlag { .. } => "set_flag",
            Operation::ReconnectNetwork { .. } => "reconnect_network",
            Operation::DrainQueue { .. } => "drain_queue",
        }
    }
}

/// Why an operation was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OpError {
    /// No service with this id.
    #[error("unknown service id {0}")]
    UnknownService(u16),
    /// No version with this index.
    #[error("{service} has no version #{index}")]
    UnknownVersion {
        /// Service name.
        service: String,
        /// Index asked for.
        index: u8,
    },
    /// No flag with this index.
    #[error("{service} has no flag #{index}")]
    UnknownFlag {
        /// Service name.
        service: String,
        /// Index asked for.
        index: u8,
    },
    /// A parameter is out of its range.
    #[error("{what} must be {range}, got {got}")]
    OutOfRange {
        /// Parameter.
        what: &'static str,
        /// Accepted range.
        range: String,
        /// Value given.
        got: String,
    },
    /// A configuration value is invalid.
    #[error("{0}")]
    InvalidConfig(String),
    /// The operation would change nothing.
    #[error("no change: {0}")]
    NoChange(String),
    /// The operation does not apply to this service.
    #[error("not applicable: {0}")]
    NotApplicable(String),
}

/// Limits accepted for memory and CPU.
pub const MEMORY_RANGE_MB: (u32, u32) = (16, 65_536);
/// Limits accepted for CPU.
pub const CPU_RANGE_MILLIS: (u32, u32) = (10, 64_000);

impl World {
    /// Applies an operation on behalf of `actor`. On success returns the index of the new change record.
    pub fn apply(&mut self, op: &Operation, actor: &Actor) -> Result<usize, OpError> {
        let id = op.service();
        if id.index() >= self.topology().len() {
            return Err(OpError::UnknownService(id.0));
        }
        let name = self.topology().service(id).name().to_string();
        let kind = match op {
            Operation::Restart {
                memory_mb,
                cpu_millis,
                ..
            } => {
                check_limits(*memory_mb, *cpu_millis)?;
                self.set_template_limits(id, *memory_mb, *cpu_millis);
                self.replace_all_pods(id);
                if memory_mb.is_some() || cpu_millis.is_some() {
                    ChangeKind::Limits {
                        memory_mb: *memory_mb,
                        cpu_millis: *cpu_millis,
                        disk_gb: None,
                    }
                } else {
                    ChangeKind::Restart
                }
            }
            Operation::Scale { replicas, .. } => {
                if *replicas as usize > MAX_REPLICAS {
                    return Err(OpError::OutOfRange {
                        what: "replicas",
                        range: format!("0..={MAX_REPLICAS}"),
                        got: replicas.to_string(),
                    });
                }
                let st = self.service_mut(id);
                let from = st.desired;
                if from == *replicas {
                    return Err(OpError::NoChange(format!(
                        "{name} already has {from} desired replicas"
                    )));
                }
                st.desired = *replicas;
                st.hpa_min = *replicas;
                self.log(
                    id,
                    u8::MAX,
                    EventKind::Scaled,
                    from as f64,
                    *replicas as f64,
                    0,
                );
                ChangeKind::Scale {
                    from,
                    to: *replicas,
                }
            }
            Operation::Deploy { version, .. } => {
                let n_versions = self.topology().service(id).spec.versions.len();
                if *version as usize >= n_versions {
                    return Err(OpError::UnknownVersion {
                        service: name,
                        index: *version,
                    });
                }
                let from = self.service(id).version;
                if from == *version {
                    let v = &self.topology().service(id).spec.versions[*version as usize].name;
                    return Err(OpError::NoChange(format!("{name} already runs {v}")));
                }
                self.service_mut(id).version = *version;
                self.log(
                    id,
                    u8::MAX,
                    EventKind::RolloutStarted,
                    from as f64,
                    *version as f64,
                    0,
                );
                ChangeKind::Deploy {
                    from,
                    to: *version,
                    rollback: *version < from,
                }
            }
            Operation::SetConfig { key, value, .. } => {
                check_value(key, value).map_err(OpError::InvalidConfig)?;
                let st = self.service_mut(id);
                let old = st.config.get(key).cloned();
                if old.as_deref() == Some(value.as_str()) {
                    return Err(OpError::NoChange(format!(
                        "{key} is already {value:?} on {name}"
                    )));
                }
                st.config.insert(key.clone(), value.clone());
                st.fx = ConfigEffects::from_config(&st.config);
                let idx = self.changes().len() as u32;
                self.log(id, u8::MAX, EventKind::ConfigChanged, 0.0, 0.0, idx);
                ChangeKind::Config {
                    key: key.clone(),
                    old,
                    new: value.clone(),
                }
            }
            Operation::SetLimits {
                memory_mb,
                cpu_millis,
                disk_gb,
                ..
            } => {
                check_limits(*memory_mb, *cpu_millis)?;
                if memory_mb.is_none() && cpu_millis.is_none() && disk_gb.is_none() {
                    return Err(OpError::NoChange("no limit given".into()));
                }
                if let Some(gb) = disk_gb {
                    let st = self.service(id);
                    if st.disk_size_gb <= 0.0 {
                        return Err(OpError::NotApplicable(format!("{name} has no volume")));
                    }
                    if !(gb.is_finite() && *gb > st.disk_size_gb && *gb <= 65_536.0) {
                        return Err(OpError::OutOfRange {
                            what: "disk_gb",
                            range: format!(
                                "more than the current {:.0} GiB and at most 65536",
                                st.disk_size_gb
                            ),
                            got: gb.to_string(),
                        });
                    }
                    self.service_mut(id).disk_size_gb = *gb;
                }
                if memory_mb.is_some() || cpu_millis.is_some() {
                    self.set_template_limits(id, *memory_mb, *cpu_millis);
                    self.replace_all_pods(id);
                }
                self.log(
                    id,
                    u8::MAX,
                    EventKind::LimitsChanged,
                    self.service(id).memory_mb as f64,
                    self.service(id).cpu_millis as f64,
                    0,
                );
                ChangeKind::Limits {
                    memory_mb: *memory_mb,
                    cpu_millis: *cpu_millis,
                    disk_gb: *disk_gb,
                }
            }
            Operation::SetFlag { flag, enabled, .. } => {
                if *flag as usize >= self.topology().service(id).spec.flags.len().min(64) {
                    return Err(OpError::UnknownFlag {
                        service: name,
                        index: *flag,
                    });
                }
                let was = self.flag_enabled(id, *flag as usize);
                if was == *enabled {
                    let f = &self.topology().service(id).spec.flags[*flag as usize].name;
                    return Err(OpError::NoChange(format!(
                        "flag {f} is already {} on {name}",
                        if was { "on" } else { "off" }
                    )));
                }
                let st = self.service_mut(id);
                if *enabled {
                    st.flags |= 1 << flag;
                } else {
                    st.flags &= !(1 << flag);
                }
                let idx = self.changes().len() as u32;
                self.log(id, u8::MAX, EventKind::FlagChanged, 0.0, 0.0, idx);
                ChangeKind::Flag {
                    flag: *flag,
                    enabled: *enabled,
                }
            }
            Operation::ReconnectNetwork { .. } => {
                if !self.service(id).detached {
                    return Err(OpError::NoChange(format!("{name} is not detached")));
                }
                self.service_mut(id).detached = false;
                self.log(id, u8::MAX, EventKind::NetworkReattached, 0.0, 0.0, 0);
                ChangeKind::NetworkReconnect
            }
            Operation::DrainQueue { .. } => {
                let mut dropped = 0.0;
                let mut any = false;
                let mut topic = 0;
                for sub in self
                    .subscriptions_mut()
                    .iter_mut()
                    .filter(|s| s.service == id)
                {
                    any = true;
                    dropped += sub.depth;
                    topic = sub.topic;
                    sub.depth = 0.0;
                }
                if !any {
                    return Err(OpError::NotApplicable(format!(
                        "{name} subscribes to no topic"
                    )));
                }
                self.log(
                    id,
                    u8::MAX,
                    EventKind::QueueDrained,
                    dropped,
                    0.0,
                    topic as u32,
                );
                ChangeKind::QueueDrain { dropped }
            }
        };
        let t_s = self.now_s();
        self.changes_mut().push(ChangeRecord {
            t_s,
            actor: actor.clone(),
            service: id,
            kind,
        });
        Ok(self.changes().len() - 1)
    }

    fn set_template_limits(
        &mut self,
        id: ServiceId,
        memory_mb: Option<u32>,
        cpu_millis: Option<u32>,
    ) {
        let st = self.service_mut(id);
        if let Some(m) = memory_mb {
            st.memory_mb = m;
        }
        if let Some(c) = cpu_millis {
            st.cpu_millis = c;
        }
    }

    /// Terminates every live pod; the reconciler creates fresh ones on the next tick.
    fn replace_all_pods(&mut self, id: ServiceId) {
        for r in 0..self.service(id).used as usize {
            let phase = self.service(id).replicas[r].phase;
            if !matches!(phase, Phase::Empty | Phase::Terminating) {
                self.terminate(id, r);
            }
        }
    }
}

fn check_limits(memory_mb: Option<u32>, cpu_millis: Option<u32>) -> Result<(), OpError> {
    if let Some(m) = memory_mb
        && !(MEMORY_RANGE_MB.0..=MEMORY_RANGE_MB.1).contains(&m)
    {
        return Err(OpError::OutOfRange {
            what: "memory_mb",
            range: format!("{}..={}", MEMORY_RANGE_MB.0, MEMORY_RANGE_MB.1),
            got: m.to_string(),
        });
    }
    if let Some(c) = cpu_millis
        && !(CPU_RANGE_MILLIS.0..=CPU_RANGE_MILLIS.1).contains(&c)
    {
        return Err(OpError::OutOfRange {
            what: "cpu_millis",
            range: format!("{}..={}", CPU_RANGE_MILLIS.0, CPU_RANGE_MILLIS.1),
            got: c.to_string(),
        });
    }
    Ok(())
}

/// A change to the world that no operator makes: what a fault does to the environment (a network split, a
/// noisy neighbour, an outage upstream, a surge of traffic). Recorded nowhere an agent can read; only its
/// consequences show.
#[derive(Debug, Clone, PartialEq)]
pub enum Perturbation {
    /// Detach a service's network.
    DetachNetwork {
        /// Service.
        service: ServiceId,
    },
    /// Give a service only a share of its CPU limit.
    CpuShare {
        /// Service.
        service: ServiceId,
        /// Share in (0, 1].
        share: f64,
    },
    /// Degrade a service from outside (an external provider's outage).
    Outage {
        /// Service.
        service: ServiceId,
        /// Extra error ratio.
        error_ratio: f64,
        /// Latency multiple.
        latency_factor: f64,
    },
    /// Multiply the load arriving at one service (a client hammering its API).
    Load {
        /// Service.
        service: ServiceId,
        /// Factor.
        factor: f64,
    },
    /// Add outside traffic to a rate-limited service so that its load becomes a multiple of its current total
    /// limit (a client hammering one API). The multiple is of the service's usual load: a traffic swing under way
    /// ([`Perturbation::Traffic`]) comes on top of it.
    LoadOverLimit {
        /// Service.
        service: ServiceId,
        /// Load as a multiple of the limit (above 1 means rejections).
        multiple: f64,
    },
    /// Multiply all entry traffic by a factor (on top of earlier factors; undo with the inverse).
    Traffic {
        /// Factor.
        factor: f64,
    },
    /// Change the QoS a reader requests on its subscriptions.
    ReaderQos {
        /// Reader.
        service: ServiceId,
        /// New contract.
        qos: Qos,
    },
    /// Change the QoS a writer offers on its publications.
    WriterQos {
        /// Writer.
        service: ServiceId,
        /// New contract.
        qos: Qos,
    },
    /// Make the certificate in use expire at a time; optionally a renewed one lands in the secret at another.
    Certificate {
        /// Service.
        service: ServiceId,
        /// Expiry of the certificate loaded by running processes, seconds.
        expires_at_s: f64,
        /// When a renewed certificate is written to the secret.
        renewed_at_s: Option<f64>,
    },
}

impl World {
    /// Applies a perturbation.
    pub fn perturb(&mut self, p: &Perturbation) {
        let now = self.now_s();
        match p {
            Perturbation::DetachNetwork { service } => {
                self.service_mut(*service).detached = true;
                self.log(*service, u8::MAX, EventKind::NetworkDetached, 0.0, 0.0, 0);
            }
            Perturbation::CpuShare { service, share } => {
                self.service_mut(*service).cpu_share = share.clamp(0.01, 1.0);
                self.log(*service, u8::MAX, EventKind::CpuThrottled, *share, 0.0, 0);
            }
            Perturbation::Outage {
                service,
                error_ratio,
                latency_factor,
            } => {
                let st = self.service_mut(*service);
                st.outage_error_ratio = error_ratio.clamp(0.0, 1.0);
                st.outage_latency_factor = latency_factor.max(0.01);
                self.log(
                    *service,
                    u8::MAX,
                    EventKind::DependencyDegraded,
                    *error_ratio,
                    0.0,
                    0,
                );
            }
            Perturbation::Traffic { factor } => {
                let f = if factor.is_finite() && *factor > 0.0 {
                    *factor
                } else {
                    1.0
                };
                self.set_traffic_factor(self.traffic_factor() * f);
                self.log(
                    ServiceId(0),
                    u8::MAX,
                    EventKind::TrafficShift,
                    *factor,
                    0.0,
                    0,
                );
            }
            Perturbation::LoadOverLimit { service, multiple } => {
                let frame = *self.frame(*service);
                let st = self.service(*service);
                let per_replica = self
                    .topology()
                    .service(*service)
                    .spec
                    .rate_limit
                    .map(|r| r.rps_per_replica);
                let limit =
                    st.fx.rate_limit_rps.or(per_replica).unwrap_or(0.0) * frame.ready as f64;
                // The surge is sized against the service's usual load: without the factor of passing traffic
                // swings, which end. Sized against a swing, it would fall back under the limit when the swing
                // ends, and the fault would leave no symptom at all.
                let swing = self.traffic_factor();
                let arriving = (frame.offered_rps as f64 - st.extra_rps)
                    / if swing > 0.0 { swing } else { 1.0 };
                let extra = (multiple * limit - arriving).max(0.0);
                self.service_mut(*service).extra_rps = extra;
                self.log(*service, u8::MAX, EventKind::TrafficShift, extra, 0.0, 0);
            }
            Perturbation::Load { service, factor } => {
                self.service_mut(*service).load_factor = factor.max(0.0);
                self.log(*service, u8::MAX, EventKind::TrafficShift, *factor, 0.0, 0);
            }
            Perturbation::ReaderQos { service, qos } => {
                for s in self
                    .subscriptions_mut()
                    .iter_mut()
                    .filter(|s| s.service == *service)
                {
                    s.qos = *qos;
                }
            }
            Perturbation::WriterQos { service, qos } => {
                for p in self
                    .publications_mut()
                    .iter_mut()
                    .filter(|p| p.service == *service)
                {
                    p.qos = *qos;
                }
            }
            Perturbation::Certificate {
                service,
                expires_at_s,
                renewed_at_s,
            } => {
                let st = self.service_mut(*service);
                st.secret_cert_expiry_s = *expires_at_s;
                st.cert_renewal = renewed_at_s.map(|at| (at, now.max(at) + 90.0 * 86_400.0));
                for r in st
                    .replicas
                    .iter_mut()
                    .take(st.used as usize)
                    .filter(|r| r.is_live())
                {
                    r.cert_expiry_s = *expires_at_s;
                }
            }
        }
    }
}
