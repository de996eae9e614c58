//! The evidence ledger: every piece of evidence an episode has returned, under a stable id (`ev-17`).
//!
//! An item is identified by what it is (a metric series, a log line, a change record, a trace, a diagnostic
//! result), not by when it was returned: re-reading the same series gives the same id, so an agent can cite an
//! id it saw long ago and the grader can tell a real citation from an invented one. Ids are handed out in the
//! order items are first returned, which makes them deterministic for a given action sequence.

use std::collections::BTreeSet;

use xxhash_rust::xxh3::xxh3_64;

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

impl EvidenceFact {
    /// The fact by reference.
    pub fn view(&self) -> FactRef<'_> {
        FactRef {
            kind: self.kind,
            service: &self.service,
            signal: &self.signal,
        }
    }
}

/// An [`EvidenceFact`] by reference: what an item is about, without owning the strings (an item returned
/// before is looked up without building one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FactRef<'a> {
    /// Kind.
    pub kind: FactKind,
    /// Service the item is about.
    pub service: &'a str,
    /// Metric name, log event, change kind, diagnostic check, or trace root name.
    pub signal: &'a str,
}

impl FactRef<'_> {
    /// The owned fact.
    pub fn to_fact(self) -> EvidenceFact {
        EvidenceFact {
            kind: self.kind,
            service: self.service.to_string(),
            signal: self.signal.to_string(),
        }
    }
}

/// Every evidence item an episode returned, by id. An item's identity is its fact plus a discriminator (a
/// series' labels, a log line's time and pod, a change index, a trace id).
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    /// `(hash of the identity, id)` for every item: the ids under one hash are the candidates a lookup compares
    /// (barring a collision, one). The hash only finds candidates; ids still go by first appearance.
    by_hash: BTreeSet<(u64, u32)>,
    /// Per id - 1: the item's fact and discriminator.
    facts: Vec<EvidenceFact>,
    discriminators: Vec<String>,
    /// Scratch: the identity's bytes, hashed.
    key: Vec<u8>,
    /// Test builds only: every identity hashes alike, so that lookups go through the collision path.
    #[cfg(test)]
    colliding: bool,
}

impl Ledger {
    /// Gives an item its id: the existing one if it was returned before. Returns the id and whether it is new.
    /// Allocates only for a new item (and the id's text).
    pub fn issue(&mut self, fact: FactRef<'_>, discriminator: &str) -> (String, bool) {
        // Lengths first, so that no two identities give the same bytes.
        self.key.clear();
        self.key.push(fact.kind as u8);
        for part in [fact.service, fact.signal] {
            self.key
                .extend_from_slice(&(part.len() as u64).to_le_bytes());
            self.key.extend_from_slice(part.as_bytes());
        }
        self.key.extend_from_slice(discriminator.as_bytes());
        let h = xxh3_64(&self.key);
        #[cfg(test)]
        let h = if self.colliding { 7 } else { h };
        for &(_, n) in self.by_hash.range((h, 0)..=(h, u32::MAX)) {
            let i = n as usize - 1;
            if self.facts[i].view() == fact && self.discriminators[i] == discriminator {
                return (format_id(n), false);
            }
        }
        self.facts.push(fact.to_fact());
        self.discriminators.push(discriminator.to_string());
        let n = self.facts.len() as u32;
        self.by_hash.insert((h, n));
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

/// `ev-N`, written without the formatting machinery (every evidence item of every observation gets one).
fn format_id(n: u32) -> String {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(n);
    let mut id = String::with_capacity(3 + digits.len());
    id.push_str("ev-");
    id.push_str(digits);
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(signal: &str) -> FactRef<'_> {
        FactRef {
            kind: FactKind::Metric,
            service: "a",
            signal,
        }
    }

    /// What `issue` returned, call by call.
    type Issued = Vec<(String, bool)>;

    /// A model of the ledger (ids by first appearance, looked up by the whole identity) and the ledger, fed the
    /// same items: what each returned.
    fn model_ids(items: &[(u8, u8, u8, u8)], colliding: bool) -> (Issued, Issued) {
        let names = ["", "a", "ab", "b", "c", "bc"];
        let mut model = std::collections::BTreeMap::new();
        let mut ledger = Ledger {
            colliding,
            ..Ledger::default()
        };
        let (mut want, mut got) = (vec![], vec![]);
        for &(k, a, b, d) in items {
            let kind = if k % 2 == 0 {
                FactKind::Metric
            } else {
                FactKind::Log
            };
            let (service, signal) = (names[a as usize % 6], names[b as usize % 6]);
            let disc = names[d as usize % 6];
            let key = (kind, service, signal, disc);
            let next = model.len() as u32 + 1;
            let n = *model.entry(key).or_insert(next);
            want.push((format!("ev-{n}"), n == next));
            got.push(ledger.issue(
                FactRef {
                    kind,
                    service,
                    signal,
                },
                disc,
            ));
        }
        assert_eq!(ledger.len(), model.len());
        (want, got)
    }

    proptest::proptest! {
        /// Ids go by first appearance and an item returned again gets its id back, whether the hash tells the
        /// items apart or every item collides (identities that split the same bytes differently included:
        /// service "ab" with signal "c" is not service "a" with signal "bc").
        #[test]
        fn ids_are_those_of_a_map_by_identity(
            items in proptest::collection::vec((0u8..2, 0u8..6, 0u8..6, 0u8..6), 0..60),
            colliding: bool,
        ) {
            let (want, got) = model_ids(&items, colliding);
            proptest::prop_assert_eq!(want, got);
        }
    }

    #[test]
    fn same_item_same_id_and_unknown_ids_resolve_to_nothing() {
        let mut l = Ledger::default();
        assert_eq!(l.issue(fact("up"), ""), ("ev-1".into(), true));
        assert_eq!(l.issue(fact("cpu"), ""), ("ev-2".into(), true));
        assert_eq!(l.issue(fact("up"), ""), ("ev-1".into(), false));
        assert_eq!(l.issue(fact("up"), "pod=x"), ("ev-3".into(), true));
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
