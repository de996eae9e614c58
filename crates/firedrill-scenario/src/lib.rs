//! Scenarios: the YAML language, its JSON Schema and validation, the built-in library, instantiation by seed and
//! difficulty, and the incident runtime.
//!
//! A [`model::Scenario`] is what a file says. [`instantiate::instantiate`] turns it, a seed and a difficulty into
//! an [`instantiate::Instance`]: parameters drawn, faults bound to services and times, distractors placed,
//! topology compiled, ground truth fixed. [`incident::Incident`] runs an instance: the history up to the page,
//! then tick by tick with operations applied.

pub mod catalog;
pub mod incident;
pub mod instantiate;
pub mod library;
pub mod load;
pub mod locate;
pub mod model;

pub use catalog::Catalog;
pub use incident::{Incident, StartError};
pub use instantiate::{Instance, instantiate};
pub use load::{Diagnostic, LoadError, parse_scenario};
pub use model::Scenario;

/// The JSON Schema of scenario files.
pub fn scenario_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(model::Scenario)).unwrap_or(serde_json::Value::Null)
}

/// The JSON Schema of built-in topology files.
pub fn topology_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(library::TopologyFile))
        .unwrap_or(serde_json::Value::Null)
}
