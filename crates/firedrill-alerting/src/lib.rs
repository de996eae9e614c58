//! Prometheus alerting rules over a simulated world.
//!
//! A scenario's alert rules are written as in a Prometheus rule file ([`AlertRuleSpec`]: `alert`, `expr`,
//! `for`, `keep_firing_for`, `labels`, `annotations`), checked against the topology when the scenario is
//! compiled ([`AlertingRule::compile`]: the expression must parse — errors give the position in it — and read
//! only exported metrics and existing services; templates must parse), and evaluated by [`RuleEngine`] on the
//! simulated clock with the PromQL engine over the world's telemetry, with Prometheus's state machine
//! (pending, firing, `keep_firing_for`, resolved) and templating (`$labels`, `$value`, `humanize`...).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cache;
mod engine;
mod rule;
pub mod template;

pub use engine::{
    ActiveAlert, AlertInstance, AlertState, AlertTransition, RuleEngine, SkippedEvaluationsLost,
};
pub use rule::{AlertRuleSpec, AlertingRule, ParsedExprs, line_col, parse_exprs};
