//! The simulated production system at the bottom of firedrill.
//!
//! A [`World`] is a topology of services (compiled from a [`spec::TopologySpec`]) plus the state that evolves
//! over simulated time: pods and their phases, memory, connection pools, volumes, certificates, queues,
//! configuration, flags and versions. [`World::step`] advances one tick; causal rules turn load and state into
//! latency and errors, so cascades emerge rather than being placed. Operators change the world through typed
//! [`ops::Operation`]s; faults change it through the same operations (a bad deploy is a deploy) or through
//! [`ops::Perturbation`]s (a network split, an outage upstream). Every tick leaves a [`frame::ServiceFrame`] per
//! service, from which the telemetry crate renders metrics, logs and traces.
//!
//! Invariants: one seeded generator per world, no wall clock, no hash-map iteration in anything observable, and
//! no heap allocation in [`World::step`] once the world is built (see `tests/no_alloc.rs`).

pub mod changes;
pub mod config;
pub mod events;
pub mod frame;
pub mod normal;
pub mod ops;
pub mod spec;
pub mod taxonomy;
pub mod topology;
pub mod world;

pub use changes::{Actor, ChangeKind, ChangeRecord};
pub use events::{Event, EventKind};
pub use frame::{ErrorCause, Health, ServiceFrame};
pub use ops::{OpError, Operation, Perturbation};
pub use taxonomy::FaultClass;
pub use topology::{ServiceId, Topology};
pub use world::{World, WorldOptions};
