//! The evidence ledger: every piece of evidence an episode has returned, under a stable id (`ev-17`).
//!
//! An item is identified by what it is (a metric series, a log line, a change record, a trace, a diagnostic
//! result), not by when it was returned: re-reading the same series gives the same id, so an agent can cite an
//! id it saw long ago and the grader can tell a real citation from an invented one. Ids are handed out in the
//! order items are first returned, which makes them deterministic for a given action sequence.

use std::collections::BTreeMap;

use serde::Serialize;

/// What kind of observation an evidence item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FactKind {
    /// A metric series.
    Metric,
    /// A log line.
    Log,
    /// A deploy or change record.
    Change,
    /// A trace.
    Trace,
    /// The result of a diagnostic check.
    Diagnostic,
    /// A service's description (configuration, versions, replicas).
    Description,
}

/// What an evidence item says, in terms the grader can compare with the ground truth. Never shown to the agent
/// beyond what the observation itself shows.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct EvidenceFact {
    /// Kind.
    pub kind: FactKind,
    /// Service the item is about.
    pub service: String,
    /// Metric name, log event, change kind, diagnostic check, or trace root name.
    pub signal: String,
}

/// Identity of an item: its fact plus a discriminator (a series' labels, a log line's time and pod, a change
/// index, a trace id).
type ItemKey = (EvidenceFact, String);

/// Every evidence item an episode returned, by id.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    ids: BTreeMap<ItemKey, u32>,
    facts: Vec<EvidenceFact>,
}

impl Ledger {
    /// Gives an item its id: the existing one if it was returned before. Returns the id and whether it is new.
    pub fn issue(&mut self, fact: EvidenceFact, discriminator: String) -> (String, bool) {
        let key = (fact, discriminator);
        if let Some(&n) = self.ids.get(&key) {
            return (format_id(n), false);
        }
        self.facts.push(key.0.clone());
        let n = self.facts.len() as u32;
        self.ids.insert(key, n);
        (format_id(n), true)
    }

    /// The fact behind an id, if the episode ever returned it.
    pub fn get(&self, id: &str) -> Option<&EvidenceFact> {
        let n: usize = id.trim().strip_prefix("ev-")?.parse().ok()?;
        n.checked_sub(1).and_then(|i| self.facts.get(i))
    }

    /// How many distinct items were returned.
    pub fn len(&self) -> usize {
        self.facts.len()
    }

    /// Whether nothing was returned yet.
    pub fn is_empty(&self) -> bool {
        self.facts.is_empty()
    }
}

fn format_id(n: u32) -> String {
    format!("ev-{n}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(signal: &str) -> EvidenceFact {
        EvidenceFact {
            kind: FactKind::Metric,
            service: "a".into(),
            signal: signal.into(),
        }
    }

    #[test]
    fn same_item_same_id_and_unknown_ids_resolve_to_nothing() {
        let mut l = Ledger::default();
        assert_eq!(l.issue(fact("up"), String::new()), ("ev-1".into(), true));
        assert_eq!(l.issue(fact("cpu"), String::new()), ("ev-2".into(), true));
        assert_eq!(l.issue(fact("up"), String::new()), ("ev-1".into(), false));
        assert_eq!(l.issue(fact("up"), "pod=x".into()), ("ev-3".into(), true));
        assert_eq!(l.get("ev-2").map(|f| f.signal.as_str()), Some("cpu"));
        for bad in [
            "ev-0",
            "ev-4",
            "ev-",
            "17",
            "ev--1",
            "ev-99999999999999999999",
        ] {
            assert!(l.get(bad).is_none(), "{bad}");
        }
    }
}
