//! The closed fault-class taxonomy.
//!
//! Every root cause in every scenario is one of these classes, and an agent's diagnosis names one of them. The set
//! is closed on purpose: grading compares classes exactly, never by keyword matching. `docs/taxonomy.md` explains
//! each class with the symptoms it produces.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A class of root cause, as an agent diagnoses it and as ground truth records it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FaultClass {
    /// Memory grows until the container limit kills the process (a leak, or a working set above the limit).
    MemoryLeakOom,
    /// The process cannot get the CPU it needs (a quota too low, a noisy neighbour, throttling).
    CpuStarvation,
    /// A client's connection pool runs out, usually because connections are leaked.
    ConnectionPoolExhaustion,
    /// A newly deployed version behaves worse than the one before it.
    BadDeploy,
    /// Queries wait on locks held too long (a slow or locking query).
    LockContention,
    /// A volume fills up and writes fail.
    DiskFull,
    /// A TLS certificate in use has expired.
    CertificateExpiry,
    /// Name resolution fails for a service.
    DnsFailure,
    /// A rate limiter rejects legitimate traffic.
    RateLimitExhaustion,
    /// A publisher and a subscriber disagree on their quality-of-service contract, so nothing is delivered.
    QosMismatch,
    /// A publisher sends far more messages than its consumers can take.
    MessageFlood,
    /// Two parts of the system can no longer reach each other.
    NetworkPartition,
    /// A process is down and does not come back on its own.
    ProcessDown,
    /// A configuration value is wrong.
    ConfigError,
    /// A dependency outside our control is failing.
    DependencyOutage,
    /// Producers and consumers disagree on a data schema.
    SchemaDrift,
    /// The logging or telemetry pipeline is saturated and drops data.
    LoggingPipelineSaturation,
    /// An access policy change exposes or blocks data it should not.
    AccessPolicyRegression,
    /// Retries amplify load until the system cannot recover by itself (metastable failure).
    RetryStorm,
    /// Many clients miss a cache at once and overload its backing store.
    CacheStampede,
    /// A clock is wrong and time-based logic fails.
    ClockSkew,
    /// Nothing is wrong: the right answer is that no action is needed.
    NoFault,
}

impl FaultClass {
    /// Every class, in declaration order.
    pub const ALL: [FaultClass; 22] = [
        FaultClass::MemoryLeakOom,
        FaultClass::CpuStarvation,
        FaultClass::ConnectionPoolExhaustion,
        FaultClass::BadDeploy,
        FaultClass::LockContention,
        FaultClass::DiskFull,
        FaultClass::CertificateExpiry,
        FaultClass::DnsFailure,
        FaultClass::RateLimitExhaustion,
        FaultClass::QosMismatch,
        FaultClass::MessageFlood,
        FaultClass::NetworkPartition,
        FaultClass::ProcessDown,
        FaultClass::ConfigError,
        FaultClass::DependencyOutage,
        FaultClass::SchemaDrift,
        FaultClass::LoggingPipelineSaturation,
        FaultClass::AccessPolicyRegression,
        FaultClass::RetryStorm,
        FaultClass::CacheStampede,
        FaultClass::ClockSkew,
        FaultClass::NoFault,
    ];

    /// The class's wire name (`memory_leak_oom`).
    pub fn as_str(self) -> &'static str {
        match self {
            FaultClass::MemoryLeakOom => "memory_leak_oom",
            FaultClass::CpuStarvation => "cpu_starvation",
            FaultClass::ConnectionPoolExhaustion => "connection_pool_exhaustion",
            FaultClass::BadDeploy => "bad_deploy",
            FaultClass::LockContention => "lock_contention",
            FaultClass::DiskFull => "disk_full",
            FaultClass::CertificateExpiry => "certificate_expiry",
            FaultClass::DnsFailure => "dns_failure",
            FaultClass::RateLimitExhaustion => "rate_limit_exhaustion",
            FaultClass::QosMismatch => "qos_mismatch",
            FaultClass::MessageFlood => "message_flood",
            FaultClass::NetworkPartition => "network_partition",
            FaultClass::ProcessDown => "process_down",
            FaultClass::ConfigError => "config_error",
            FaultClass::DependencyOutage => "dependency_outage",
            FaultClass::SchemaDrift => "schema_drift",
            FaultClass::LoggingPipelineSaturation => "logging_pipeline_saturation",
            FaultClass::AccessPolicyRegression => "access_policy_regression",
            FaultClass::RetryStorm => "retry_storm",
            FaultClass::CacheStampede => "cache_stampede",
            FaultClass::ClockSkew => "clock_skew",
            FaultClass::NoFault => "no_fault",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<FaultClass> {
        FaultClass::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl std::fmt::Display for FaultClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for class in FaultClass::ALL {
            assert_eq!(FaultClass::parse(class.as_str()), Some(class));
            let json = serde_json::to_string(&class).unwrap();
            assert_eq!(json, format!("\"{}\"", class.as_str()));
        }
        assert_eq!(FaultClass::parse("oom"), None);
    }
}
