//! Deploy and change history, and the audit log: every operation on the world, who did it and when.

use crate::topology::ServiceId;

/// Who or what performed an operation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Actor(pub String);

impl Actor {
    /// The on-call engineer (the agent).
    pub fn oncall() -> Actor {
        Actor("oncall".to_string())
    }
}

/// What a change did.
#[derive(Debug, Clone, PartialEq)]
pub enum ChangeKind {
    /// A rollout to another version. `rollback` is true when the target is older than the running version.
    Deploy {
        /// Version index before.
        from: u8,
        /// Version index after.
        to: u8,
        /// Whether `to` is older than `from`.
        rollback: bool,
    },
    /// A configuration key changed.
    Config {
        /// Key.
        key: String,
        /// Value before, if the key existed.
        old: Option<String>,
        /// Value after.
        new: String,
    },
    /// A feature flag changed.
    Flag {
        /// Flag index.
        flag: u8,
        /// New state.
        enabled: bool,
    },
    /// Desired replicas changed.
    Scale {
        /// Before.
        from: u32,
        /// After.
        to: u32,
    },
    /// Resource limits changed (each field present if it changed).
    Limits {
        /// New memory limit, MiB.
        memory_mb: Option<u32>,
        /// New CPU limit, millicores.
        cpu_millis: Option<u32>,
        /// New volume size, GiB.
        disk_gb: Option<f64>,
    },
    /// All pods were restarted.
    Restart,
    /// The service's network was reattached.
    NetworkReconnect,
    /// A subscription backlog was purged.
    QueueDrain {
        /// Messages dropped.
        dropped: f64,
    },
}

impl ChangeKind {
    /// Short machine name of the change type (`deploy`, `config`...).
    pub fn name(&self) -> &'static str {
        match self {
            ChangeKind::Deploy { rollback: true, .. } => "rollback",
            ChangeKind::Deploy { .. } => "deploy",
            ChangeKind::Config { .. } => "config",
            ChangeKind::Flag { .. } => "feature_flag",
            ChangeKind::Scale { .. } => "scale",
            ChangeKind::Limits { .. } => "resources",
            ChangeKind::Restart => "restart",
            ChangeKind::NetworkReconnect => "network",
            ChangeKind::QueueDrain { .. } => "queue_drain",
        }
    }

    /// Whether it shows in the deploy history (as opposed to the audit log only).
    pub fn is_deploy(&self) -> bool {
        matches!(self, ChangeKind::Deploy { .. })
    }
}

/// One recorded change.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRecord {
    /// Simulated time, seconds since the world began.
    pub t_s: f64,
    /// Who did it.
    pub actor: Actor,
    /// Service changed.
    pub service: ServiceId,
    /// What changed.
    pub kind: ChangeKind,
}
