//! The built-in library, embedded in the binary: topologies (with their standard alert rules) and scenarios.

use std::sync::OnceLock;

use firedrill_alerting::AlertRuleSpec;
use firedrill_world::spec::TopologySpec;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A built-in topology file: the system and the alert rules its operators run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TopologyFile {
    /// Name scenarios refer to.
    pub name: String,
    /// What it is, for humans.
    #[serde(default)]
    pub description: String,
    /// The system.
    pub topology: TopologySpec,
    /// The standard alert rules.
    #[serde(default)]
    pub alerts: Vec<AlertRuleSpec>,
    /// How often the operators' Prometheus evaluates the rules (`evaluation_interval`; default `15s`, the
    /// tick). A scenario may set its own.
    #[serde(default)]
    pub evaluation_interval: Option<String>,
}

/// Names of the built-in topologies.
pub const TOPOLOGY_NAMES: &[&str] = &["shop"];

const TOPOLOGIES: &[(&str, &str)] = &[("shop", include_str!("../library/topologies/shop.yaml"))];

/// The basic tier's families, in library order.
pub const BASIC_FAMILIES: [&str; 9] = [
    "oom_crash",
    "db_pool_exhaustion",
    "bad_deployment_cascade",
    "disk_full",
    "slow_query",
    "cert_expiry",
    "dns_failure",
    "rate_limit_exhaustion",
    "no_fault_control",
];

/// Built-in scenario sources: (file name, YAML).
pub const SCENARIOS: &[(&str, &str)] = &[
    (
        "oom_crash.yaml",
        include_str!("../library/scenarios/oom_crash.yaml"),
    ),
    (
        "db_pool_exhaustion.yaml",
        include_str!("../library/scenarios/db_pool_exhaustion.yaml"),
    ),
    (
        "bad_deployment_cascade.yaml",
        include_str!("../library/scenarios/bad_deployment_cascade.yaml"),
    ),
    (
        "disk_full.yaml",
        include_str!("../library/scenarios/disk_full.yaml"),
    ),
    (
        "slow_query.yaml",
        include_str!("../library/scenarios/slow_query.yaml"),
    ),
    (
        "cert_expiry.yaml",
        include_str!("../library/scenarios/cert_expiry.yaml"),
    ),
    (
        "dns_failure.yaml",
        include_str!("../library/scenarios/dns_failure.yaml"),
    ),
    (
        "rate_limit_exhaustion.yaml",
        include_str!("../library/scenarios/rate_limit_exhaustion.yaml"),
    ),
    (
        "no_fault_control.yaml",
        include_str!("../library/scenarios/no_fault_control.yaml"),
    ),
];

/// The source of a built-in topology file.
pub fn topology_source(name: &str) -> Option<&'static str> {
    TOPOLOGIES.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// A built-in topology file, parsed once per process: `None` if there is no such name, `Some(Err)` if the
/// embedded file does not parse (a build defect the test suite catches; reported, never a panic).
pub fn builtin_topology(name: &str) -> Option<Result<&'static TopologyFile, String>> {
    // Parsing the YAML was a third of every instantiation; the files are embedded, so once is enough.
    static PARSED: OnceLock<Vec<Result<TopologyFile, String>>> = OnceLock::new();
    let parsed = PARSED.get_or_init(|| {
        TOPOLOGIES
            .iter()
            .map(|(n, src)| parse_topology(n, src))
            .collect()
    });
    let i = TOPOLOGIES.iter().position(|(n, _)| *n == name)?;
    Some(parsed[i].as_ref().map_err(Clone::clone))
}

/// The call-graph depth of every service of a built-in topology as written, before any scenario changes it
/// (what instantiation draws `prefer_deep` targets from), computed once per process: `None` if there is no such
/// topology or it does not compile (instantiation then compiles it and reports why).
pub fn builtin_depths(name: &str) -> Option<&'static [u16]> {
    // A second compilation of the untouched topology at every instantiation, only for these, was a third of
    // building an instance.
    static DEPTHS: OnceLock<Vec<Option<Vec<u16>>>> = OnceLock::new();
    let depths = DEPTHS.get_or_init(|| {
        TOPOLOGIES
            .iter()
            .map(|(n, _)| {
                let file = builtin_topology(n)?.ok()?;
                let path = firedrill_world::topology::SpecPath::root().key("topology");
                let topology = firedrill_world::Topology::compile(&file.topology, &path).ok()?;
                Some(topology.services.iter().map(|s| s.depth).collect())
            })
            .collect()
    });
    let i = TOPOLOGIES.iter().position(|(n, _)| *n == name)?;
    depths[i].as_deref()
}

fn parse_topology(name: &str, src: &str) -> Result<TopologyFile, String> {
    serde_saphyr::from_str::<TopologyFile>(src).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!("{}:{}: ", l.line(), l.column()))
            .unwrap_or_default();
        format!(
            "built-in topology {name}.yaml: {at}{}",
            crate::load::first_line(&e.to_string())
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The depths kept for each built-in topology are those of compiling it as written, by name.
    #[test]
    fn builtin_depths_are_the_compiled_topologys() {
        for name in TOPOLOGY_NAMES {
            let file = builtin_topology(name).expect("known").expect("parses");
            let path = firedrill_world::topology::SpecPath::root().key("topology");
            let compiled =
                firedrill_world::Topology::compile(&file.topology, &path).expect("compiles");
            let depths: Vec<u16> = compiled.services.iter().map(|s| s.depth).collect();
            assert_eq!(builtin_depths(name), Some(&depths[..]), "{name}");
            assert!(
                depths.iter().any(|&d| d > 1),
                "{name}: a call graph deeper than its entries"
            );
        }
        assert_eq!(builtin_depths("no-such-topology"), None);
    }
}
