//! A storage that renders each metric family once per rule evaluation.
//!
//! All rules of an evaluation read the world at the same instant, and most read the same few families over the
//! same windows (`http_requests_total` over 5 minutes twice in an error-ratio rule, `up` in several rules).
//! Rendering a family is the expensive part of a selection, so this wrapper renders it once per (family,
//! window) with only the `__name__` matcher and applies the other matchers to the cached series, which is
//! exactly what the world storage itself does after rendering.

use std::cell::RefCell;

use firedrill_promql::{LabelMatcher, METRIC_NAME, MatchOp, Series, Storage, StorageError};

/// One rendered family: its name, the window asked and the series.
type Rendered = (String, i64, i64, Vec<Series>);

/// Caches renders of a storage by (family, window) for the lifetime of one evaluation.
pub(crate) struct FamilyCache<S> {
    inner: S,
    cache: RefCell<Vec<Rendered>>,
}

impl<S: Storage> FamilyCache<S> {
    pub(crate) fn new(inner: S) -> Self {
        FamilyCache {
            inner,
            cache: RefCell::new(Vec::new()),
        }
    }
}

impl<S: Storage> Storage for FamilyCache<S> {
    fn select(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Series>, StorageError> {
        let Some(name) = matchers
            .iter()
            .find(|m| m.name == METRIC_NAME && m.op == MatchOp::Eq)
            .map(|m| m.value.as_str())
        else {
            return self.inner.select(matchers, start_ms, end_ms);
        };
        let filter = |series: &[Series]| -> Vec<Series> {
            series
                .iter()
                .filter(|s| matchers.iter().all(|m| m.matches_labels(&s.labels)))
                .cloned()
                .collect()
        };
        let mut cache = self.cache.borrow_mut();
        if let Some((_, _, _, series)) = cache
            .iter()
            .find(|(n, s, e, _)| n == name && *s == start_ms && *e == end_ms)
        {
            return Ok(filter(series));
        }
        let series = self
            .inner
            .select(&[LabelMatcher::eq(METRIC_NAME, name)], start_ms, end_ms)?;
        let out = filter(&series);
        cache.push((name.to_string(), start_ms, end_ms, series));
        Ok(out)
    }
}
