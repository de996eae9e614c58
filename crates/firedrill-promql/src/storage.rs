//! The storage seam between the engine and whatever holds the samples.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::hash::FxSet;
use crate::labels::{LabelMatcher, Labels, METRIC_NAME, MatchOp};

/// Bit pattern Prometheus uses to mark a series as stale (a NaN distinct from ordinary NaN).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The staleness marker value.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// True if `v` is exactly the staleness marker (ordinary NaN is a valid sample value).
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// A float sample.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Timestamp in milliseconds since the Unix epoch.
    pub t: i64,
    /// Value; may be a staleness marker in stored data, never in query results.
    pub v: f64,
}

impl Sample {
    /// Convenience constructor.
    pub fn new(t: i64, v: f64) -> Self {
        Sample { t, v }
    }

    /// Whether this sample is a staleness marker.
    pub fn is_stale(&self) -> bool {
        is_stale_nan(self.v)
    }
}

/// A series with its samples sorted by time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// Label set, including `__name__` when present.
    pub labels: Labels,
    /// Samples in ascending timestamp order.
    pub samples: Vec<Sample>,
}

/// A series whose samples are lent by a [`Storage`] (see [`Storage::select_lent`]).
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesRef<'s> {
    /// Label set, including `__name__` when present.
    pub labels: Labels,
    /// Samples in ascending timestamp order.
    pub samples: &'s [Sample],
}

/// Error raised by a [`Storage`] implementation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("storage error: {0}")]
pub struct StorageError(pub String);

/// What the engine needs from a time-series store. Object safe so the simulator can hand in
/// `&dyn Storage`.
pub trait Storage {
    /// All series matching every matcher, restricted to samples with `start_ms <= t <= end_ms`,
    /// each sorted by time. Series without samples in the range may be omitted.
    fn select(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Series>, StorageError>;

    /// Like [`Storage::select`], but lending the samples instead of copying them, for storages
    /// that hold them in memory. `None` (the default) means the storage cannot lend, and the
    /// engine calls `select` instead; an implementation must select exactly the same series.
    fn select_lent(
        &self,
        _matchers: &[LabelMatcher],
        _start_ms: i64,
        _end_ms: i64,
    ) -> Option<Result<Vec<SeriesRef<'_>>, StorageError>> {
        None
    }

    /// Sorted distinct label names of series matching `matchers` (all series if empty).
    fn label_names(&self, matchers: &[LabelMatcher]) -> Result<Vec<String>, StorageError> {
        let mut names: Vec<String> = self
            .select(matchers, i64::MIN, i64::MAX)?
            .into_iter()
            .flat_map(|s| {
                s.labels
                    .iter()
                    .map(|(k, _)| k.to_string())
                    .collect::<Vec<_>>()
            })
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Sorted distinct values of label `name` over series matching `matchers`.
    fn label_values(
        &self,
        name: &str,
        matchers: &[LabelMatcher],
    ) -> Result<Vec<String>, StorageError> {
        let mut vals: Vec<String> = self
            .select(matchers, i64::MIN, i64::MAX)?
            .into_iter()
            .filter_map(|s| s.labels.get(name).map(str::to_string))
            .collect();
        vals.sort();
        vals.dedup();
        Ok(vals)
    }
}

/// Simple in-memory storage, ordered by label set so selections are deterministic.
///
/// Series are kept per metric name, so a selector naming its metric only visits that family,
/// and every label name and value is stored once and shared by all series using it.
#[derive(Clone, Debug, Default)]
pub struct MemStorage {
    /// Series by metric name (`""` for series without one), each family ordered by label set.
    families: BTreeMap<String, BTreeMap<Labels, Vec<Sample>>>,
    /// The shared copy of every label name and value in use.
    strings: FxSet<Arc<str>>,
    count: usize,
}

/// The shared copy of `s` in `strings`, added if new.
fn intern(strings: &mut FxSet<Arc<str>>, s: &Arc<str>) -> Arc<str> {
    match strings.get(&**s) {
        Some(x) => Arc::clone(x),
        None => {
            strings.insert(Arc::clone(s));
            Arc::clone(s)
        }
    }
}

impl MemStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The samples of series `labels`, created empty if new.
    fn series_mut(&mut self, labels: &Labels) -> &mut Vec<Sample> {
        let name = labels.metric_name().unwrap_or("");
        if !self.families.contains_key(name) {
            self.families.insert(name.to_string(), BTreeMap::new());
        }
        let family = self.families.get_mut(name).expect("family just ensured");
        if !family.contains_key(labels) {
            let strings = &mut self.strings;
            let shared = Labels::from_sorted(
                labels
                    .as_slice()
                    .iter()
                    .map(|(k, v)| (intern(strings, k), intern(strings, v)))
                    .collect(),
            );
            family.insert(shared, Vec::new());
            self.count += 1;
        }
        family.get_mut(labels).expect("series just ensured")
    }

    /// Appends one sample; out-of-order samples are inserted in place and a sample at an
    /// existing timestamp replaces the old one.
    pub fn append(&mut self, labels: &Labels, t: i64, v: f64) {
        let samples = self.series_mut(labels);
        match samples.last() {
            Some(last) if last.t < t => samples.push(Sample { t, v }),
            None => samples.push(Sample { t, v }),
            _ => match samples.binary_search_by_key(&t, |s| s.t) {
                Ok(i) => samples[i].v = v,
                Err(i) => samples.insert(i, Sample { t, v }),
            },
        }
    }

    /// Appends many samples to one series.
    pub fn append_series(&mut self, labels: &Labels, samples: impl IntoIterator<Item = Sample>) {
        for s in samples {
            self.append(labels, s.t, s.v);
        }
    }

    /// Drops all data.
    pub fn clear(&mut self) {
        self.families.clear();
        self.strings.clear();
        self.count = 0;
    }

    /// Number of series.
    pub fn num_series(&self) -> usize {
        self.count
    }

    /// Iterates all stored series, ordered by label set.
    pub fn iter(&self) -> impl Iterator<Item = (&Labels, &[Sample])> {
        let mut all: Vec<(&Labels, &[Sample])> = self
            .families
            .values()
            .flat_map(|f| f.iter().map(|(l, s)| (l, s.as_slice())))
            .collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        all.into_iter()
    }
}

impl MemStorage {
    /// `f` of each series matching `matchers` that has samples in `start_ms..=end_ms` and of
    /// those samples, in label-set order.
    fn visit<'s, T>(
        &'s self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
        mut f: impl FnMut(&'s Labels, &'s [Sample]) -> T,
    ) -> Vec<T> {
        let mut out = Vec::new();
        // A selector naming its metric only needs that family, and that matcher holds there.
        let name = matchers
            .iter()
            .position(|m| m.name == METRIC_NAME && m.op == MatchOp::Eq);
        let scan = |family: &'s BTreeMap<Labels, Vec<Sample>>,
                    f: &mut dyn FnMut(&'s Labels, &'s [Sample])| {
            for (labels, samples) in family {
                if !matchers
                    .iter()
                    .enumerate()
                    .all(|(i, m)| Some(i) == name || m.matches_labels(labels))
                {
                    continue;
                }
                let lo = samples.partition_point(|s| s.t < start_ms);
                let hi = samples.partition_point(|s| s.t <= end_ms);
                if lo < hi {
                    f(labels, &samples[lo..hi]);
                }
            }
        };
        match name {
            Some(i) => {
                if let Some(family) = self.families.get(matchers[i].value.as_str()) {
                    out.reserve(family.len());
                    scan(family, &mut |l, s| out.push(f(l, s)));
                }
            }
            None => {
                // Label-set order can interleave families (names sorting before `__name__`).
                let mut hits: Vec<(&'s Labels, &'s [Sample])> = Vec::new();
                for family in self.families.values() {
                    scan(family, &mut |l, s| hits.push((l, s)));
                }
                hits.sort_by(|a, b| a.0.cmp(b.0));
                out.extend(hits.into_iter().map(|(l, s)| f(l, s)));
            }
        }
        out
    }
}

impl Storage for MemStorage {
    fn select(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Series>, StorageError> {
        Ok(
            self.visit(matchers, start_ms, end_ms, |labels, samples| Series {
                labels: labels.clone(),
                samples: samples.to_vec(),
            }),
        )
    }

    fn select_lent(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Option<Result<Vec<SeriesRef<'_>>, StorageError>> {
        Some(Ok(self.visit(
            matchers,
            start_ms,
            end_ms,
            |labels, samples| SeriesRef {
                labels: labels.clone(),
                samples,
            },
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections_stay_ordered_by_label_set_across_families() {
        let mut s = MemStorage::new();
        // `A` sorts before `__name__`, so label-set order interleaves the two families.
        for (name, a) in [("b_metric", "1"), ("a_metric", "2"), ("b_metric", "3")] {
            s.append(&Labels::new([("__name__", name), ("A", a)]), 0, 1.0);
        }
        s.append(&Labels::new([("A", "0")]), 0, 1.0);
        let all = s
            .select(&[LabelMatcher::new("A", MatchOp::Re, ".+").unwrap()], 0, 0)
            .unwrap();
        let order: Vec<&str> = all.iter().map(|x| x.labels.get_or_empty("A")).collect();
        assert_eq!(order, ["0", "1", "2", "3"]);
        let iter: Vec<&str> = s.iter().map(|(l, _)| l.get_or_empty("A")).collect();
        assert_eq!(iter, ["0", "1", "2", "3"]);
        assert_eq!(s.num_series(), 4);
        let b = s
            .select(&[LabelMatcher::eq(METRIC_NAME, "b_metric")], 0, 0)
            .unwrap();
        assert_eq!(b.len(), 2);
        let unnamed = s
            .select(&[LabelMatcher::eq(METRIC_NAME, "")], 0, 0)
            .unwrap();
        assert_eq!(unnamed.len(), 1);
    }
}
