//! The agent-facing side of firedrill. This crate holds the typed action set: the wire format
//! `{"action": "<name>", ...parameters}`, a JSON Schema per action, OpenAI function-calling tool definitions,
//! the simulated time each action costs, and validation that turns any bad input into a typed [`ActionError`]
//! with a precise message. The environment loop (reset, step, observations, reward) builds on it.

pub mod action;

pub use action::{Action, ActionError, ActionKind, parse_action};
