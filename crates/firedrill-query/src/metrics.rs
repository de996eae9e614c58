//! The PromQL [`Storage`] over a world: series rendered from the frame history on demand.

use std::sync::Arc;

use firedrill_promql::{
    KeyedSamples, KeyedStorage, LabelMatcher, Labels, METRIC_NAME, Sample, Series, Storage,
    StorageError, stale_nan,
};
use firedrill_telemetry::metrics::{self, KeyedSeries, MetricSeries, SeriesKey};
use firedrill_world::World;

/// A PromQL [`Storage`] reading a [`World`]'s telemetry.
///
/// Nothing is stored: each `select` renders, from the frames the world still holds, only the metric families
/// whose names pass the selector's `__name__` matchers, over the requested window, then applies the other
/// matchers. Retention is the world's: ticks evicted from its frame ring have no samples here, exactly as a
/// Prometheus with that retention would answer.
///
/// Series that stop being exported (a pod replaced, a pool gone) get a staleness marker at the first scrape
/// (tick) they are missing from, as Prometheus's scraper writes one; without it the 5-minute lookback would
/// keep a replaced pod's last value alive and `sum` would count it twice.
#[derive(Debug, Clone, Copy)]
pub struct WorldStorage<'a> {
    world: &'a World,
}

impl<'a> WorldStorage<'a> {
    /// A storage view of `world` as it is now.
    pub fn new(world: &'a World) -> Self {
        WorldStorage { world }
    }

    /// The world read.
    pub fn world(&self) -> &'a World {
        self.world
    }

    /// Timestamps (Unix ms) of the held ticks whose samples fall in `[start_ms, end_ms]`, oldest first.
    fn scrape_times(&self, start_ms: i64, end_ms: i64) -> Vec<i64> {
        let ring = self.world.history();
        (ring.first_tick()..ring.end_tick())
            .map(|t| metrics::tick_ms(self.world, t))
            .filter(|t| (start_ms..=end_ms).contains(t))
            .collect()
    }
}

/// Milliseconds per tick, at least 1.
pub(crate) fn tick_ms(world: &World) -> i64 {
    ((world.tick_s() * 1000.0).round() as i64).max(1)
}

/// The samples of one rendered series with a staleness marker at each scrape the series is missing from after
/// having been present (`scrapes` are all scrape times of the window, ascending).
fn with_staleness(samples: &[(i64, f64)], scrapes: &[i64]) -> Vec<Sample> {
    let mut out = Vec::with_capacity(samples.len() + 1);
    // Both lists ascend, so one cursor walks the scrapes once.
    let mut scrape = 0;
    for (i, &(t, v)) in samples.iter().enumerate() {
        out.push(Sample::new(t, v));
        while scrapes.get(scrape).is_some_and(|&s| s <= t) {
            scrape += 1;
        }
        let next_scrape = scrapes.get(scrape).copied();
        let next_sample = samples.get(i + 1).map(|s| s.0);
        if let Some(ns) = next_scrape
            && next_sample != Some(ns)
        {
            out.push(Sample::new(ns, stale_nan()));
        }
    }
    out
}

impl KeyedStorage for WorldStorage<'_> {
    /// The series of `select` for `{__name__="name"}`, keyed by [`SeriesKey::bits`]: the same rendering, the
    /// same staleness markers, without building label sets.
    fn select_keyed(
        &self,
        name: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Arc<[KeyedSamples]>, StorageError> {
        if start_ms > end_ms {
            return Ok(Arc::from([]));
        }
        let render_start = start_ms.saturating_sub(tick_ms(self.world));
        let scrapes = self.scrape_times(render_start, end_ms);
        if scrapes.is_empty() {
            return Ok(Arc::from([]));
        }
        Ok(
            metrics::render_keyed(self.world, &|n| n == name, render_start, end_ms)
                .into_iter()
                .filter_map(|KeyedSeries { key, samples }| {
                    let samples: Vec<Sample> = with_staleness(&samples, &scrapes)
                        .into_iter()
                        .filter(|s| s.t >= start_ms && s.t <= end_ms)
                        .collect();
                    (!samples.is_empty()).then_some(KeyedSamples {
                        key: key.bits(),
                        samples,
                    })
                })
                .collect(),
        )
    }

    fn labels_of(&self, key: u64) -> Option<Labels> {
        let key = SeriesKey::from_bits(key)?;
        metrics::series_labels(self.world, key).map(Labels::new)
    }
}

impl Storage for WorldStorage<'_> {
    fn select(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Series>, StorageError> {
        if start_ms > end_ms {
            return Ok(Vec::new());
        }
        let name_matchers: Vec<&LabelMatcher> =
            matchers.iter().filter(|m| m.name == METRIC_NAME).collect();
        // Rendering is by family name: only what the selector can match is computed.
        let wanted = |name: &str| name_matchers.iter().all(|m| m.matches(name));
        // One scrape earlier than asked, so a series that vanished at the first scrape of the window is seen
        // present just before it and gets its staleness marker.
        let render_start = start_ms.saturating_sub(tick_ms(self.world));
        let scrapes = self.scrape_times(render_start, end_ms);
        if scrapes.is_empty() {
            return Ok(Vec::new());
        }
        let mut out: Vec<Series> =
            metrics::render_unordered(self.world, &wanted, render_start, end_ms)
                .into_iter()
                .filter_map(|MetricSeries { labels, samples }| {
                    let labels = Labels::new(labels);
                    if !matchers.iter().all(|m| m.matches_labels(&labels)) {
                        return None;
                    }
                    let samples: Vec<Sample> = with_staleness(&samples, &scrapes)
                        .into_iter()
                        .filter(|s| s.t >= start_ms && s.t <= end_ms)
                        .collect();
                    (!samples.is_empty()).then_some(Series { labels, samples })
                })
                .collect();
        // The engine's order is by `Labels` (which drops empty values), so the renderer's own order is not asked for.
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use firedrill_promql::is_stale_nan;

    #[test]
    fn staleness_marks_the_first_missing_scrape_only() {
        let scrapes = [0, 15, 30, 45, 60, 75];
        let s = with_staleness(&[(0, 1.0), (15, 2.0), (60, 3.0)], &scrapes);
        let ts: Vec<(i64, bool)> = s.iter().map(|x| (x.t, is_stale_nan(x.v))).collect();
        assert_eq!(
            ts,
            vec![(0, false), (15, false), (30, true), (60, false), (75, true)]
        );
        // A series present at the last scrape gets no marker.
        let s = with_staleness(&[(60, 1.0), (75, 1.0)], &scrapes);
        assert!(s.iter().all(|x| !is_stale_nan(x.v)));
    }
}
