//! The storage seam between the engine and whatever holds the samples.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::labels::{LabelMatcher, Labels};

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
#[derive(Clone, Debug, Default)]
pub struct MemStorage {
    series: BTreeMap<Labels, Vec<Sample>>,
}

impl MemStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one sample; out-of-order samples are inserted in place and a sample at an
    /// existing timestamp replaces the old one.
    pub fn append(&mut self, labels: &Labels, t: i64, v: f64) {
        let samples = self.series.entry(labels.clone()).or_default();
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
        self.series.clear();
    }

    /// Number of series.
    pub fn num_series(&self) -> usize {
        self.series.len()
    }

    /// Iterates all stored series.
    pub fn iter(&self) -> impl Iterator<Item = (&Labels, &[Sample])> {
        self.series.iter().map(|(l, s)| (l, s.as_slice()))
    }
}

impl Storage for MemStorage {
    fn select(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Series>, StorageError> {
        let mut out = Vec::new();
        for (labels, samples) in &self.series {
            if !matchers.iter().all(|m| m.matches_labels(labels)) {
                continue;
            }
            let lo = samples.partition_point(|s| s.t < start_ms);
            let hi = samples.partition_point(|s| s.t <= end_ms);
            if lo >= hi {
                continue;
            }
            out.push(Series {
                labels: labels.clone(),
                samples: samples[lo..hi].to_vec(),
            });
        }
        Ok(out)
    }
}
