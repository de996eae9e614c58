//! Helpers shared by the integration tests of this crate.

use std::sync::Arc;

use firedrill_world::Topology;
use firedrill_world::spec::TopologySpec;
use firedrill_world::topology::SpecPath;

/// A small world: an edge `web` calling a two-replica `api`.
pub fn topology() -> Arc<Topology> {
    let spec: TopologySpec = serde_json::from_value(serde_json::json!({
        "tick_s": 15,
        "cluster": { "cpu_millis": 16000, "memory_mb": 16384 },
        "entrypoints": [{ "service": "web", "rps": 100 }],
        "services": [
            { "name": "web", "kind": "edge", "version": "v1", "versions": [{ "name": "v1" }],
              "calls": [{ "to": "api", "timeout_ms": 3000 }] },
            { "name": "api", "kind": "service", "version": "v1", "versions": [{ "name": "v1" }],
              "capacity_rps": 150, "replicas": 2 }
        ]
    }))
    .expect("spec");
    Arc::new(Topology::compile(&spec, &SpecPath::root()).expect("topology"))
}
