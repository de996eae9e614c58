//! The PromQL [`Storage`] over a world: series rendered from the frame history on demand.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use firedrill_promql::{
    KeyedStorage, LabelMatcher, Labels, METRIC_NAME, Sample, Series, Storage, StorageError,
    WindowFacts, stale_nan,
};
use firedrill_telemetry::metrics::{
    self, KeyedSeries, MetricSeries, SeriesKey, SeriesName, TickSample,
};
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
        metrics::window_ticks(self.world, start_ms, end_ms)
            .map(|t| metrics::tick_ms(self.world, t))
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
        visit: &mut dyn FnMut(u64, &[Sample]),
    ) -> Result<(), StorageError> {
        if start_ms > end_ms {
            return Ok(());
        }
        let render_start = start_ms.saturating_sub(tick_ms(self.world));
        let scrapes = self.scrape_times(render_start, end_ms);
        if scrapes.is_empty() {
            return Ok(());
        }
        for KeyedSeries { key, samples } in
            metrics::render_keyed(self.world, &|n| n == name, render_start, end_ms)
        {
            let samples: Vec<Sample> = with_staleness(&samples, &scrapes)
                .into_iter()
                .filter(|s| s.t >= start_ms && s.t <= end_ms)
                .collect();
            if !samples.is_empty() {
                visit(key.bits(), &samples);
            }
        }
        Ok(())
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

/// One cached series: its samples and staleness markers over the cached ticks, as a render of those ticks
/// from the first would give them.
#[derive(Debug, Clone)]
struct CachedSeries {
    key: u64,
    /// Samples and markers in time order; those before `head` are forgotten.
    samples: Vec<Sample>,
    head: usize,
    /// The tick of the latest real sample.
    last_present: Option<u64>,
    /// How many samples were dropped from the front of `samples`: `base + i` names `samples[i]` for good.
    base: usize,
    /// Positions (as `base + i`) of the staleness markers, and of the samples below the one before them,
    /// ascending; both are almost always empty (a restarted pod is a new series), so a window's
    /// [`WindowFacts`] cost a glance instead of a read of its samples.
    markers: Vec<usize>,
    drops: Vec<usize>,
}

impl CachedSeries {
    fn new(key: u64) -> CachedSeries {
        CachedSeries {
            key,
            samples: Vec::with_capacity(64),
            head: 0,
            last_present: None,
            base: 0,
            markers: Vec::new(),
            drops: Vec::new(),
        }
    }

    fn live(&self) -> &[Sample] {
        &self.samples[self.head..]
    }

    /// Appends a sample or a marker, noting what [`CachedSeries::facts`] needs.
    fn push(&mut self, x: Sample) {
        let pos = self.base + self.samples.len();
        if x.is_stale() {
            self.markers.push(pos);
        }
        // A marker is below nothing and nothing is below it (NaN compares false), as `WindowFacts` says.
        if self.samples.last().is_some_and(|p| x.v < p.v) {
            self.drops.push(pos);
        }
        self.samples.push(x);
    }

    /// The facts of the window `live()[lo..hi]`, exactly: whether it holds a marker, and whether a sample in
    /// it is below the one before it within the window.
    fn facts(&self, lo: usize, hi: usize) -> WindowFacts {
        let (a, b) = (self.base + self.head + lo, self.base + self.head + hi);
        WindowFacts {
            no_stale: !self
                .markers
                .iter()
                .rev()
                .take_while(|&&p| p >= a)
                .any(|&p| p < b),
            // A drop at `p` is the pair (`p - 1`, `p`): in the window when `a <= p - 1` and `p < b`.
            no_decrease: !self
                .drops
                .iter()
                .rev()
                .take_while(|&&p| p > a)
                .any(|&p| p < b),
        }
    }
}

/// The cached ticks of one metric name.
#[derive(Debug, Clone)]
struct CachedFamily {
    name: String,
    /// The renderer's name for it (`None` for a name the world never writes: the family stays empty).
    series_name: Option<SeriesName>,
    /// Ticks `[from, to)` are rendered.
    from: u64,
    to: u64,
    series: Vec<CachedSeries>,
    /// Key to index in `series`.
    index: BTreeMap<u64, usize>,
    /// During a render: the index after the series appended to last.
    next: usize,
    /// The longest span of ticks asked of this family, so trimming keeps what the next window will read.
    span: u64,
}

impl CachedFamily {
    fn new(name: &str) -> CachedFamily {
        CachedFamily {
            name: name.to_string(),
            series_name: SeriesName::ALL.iter().copied().find(|n| n.as_str() == name),
            from: 0,
            to: 0,
            series: Vec::new(),
            index: BTreeMap::new(),
            next: 0,
            span: 0,
        }
    }

    /// Whether ticks `[from, ..)` can be read by appending to what is cached (otherwise it starts over).
    fn reaches(&self, from: u64) -> bool {
        self.from < self.to && from >= self.from && from <= self.to
    }

    /// Forgets everything and starts the cache at tick `from`.
    fn restart(&mut self, from: u64) {
        self.series.clear();
        self.index.clear();
        self.from = from;
        self.to = from;
    }

    /// After ticks `[first_new, end)` were appended: the first tick each series misses after a present one,
    /// among the new ticks, gets a marker (as `with_staleness` writes them); gaps between samples got theirs as
    /// the samples came.
    fn close(&mut self, world: &World, first_new: u64, end: u64) {
        for s in &mut self.series {
            if let Some(last) = s.last_present
                && last + 1 >= first_new
                && last + 1 < end
            {
                s.push(Sample::new(metrics::tick_ms(world, last + 1), stale_nan()));
            }
        }
        self.to = end;
    }

    /// Forgets ticks before `keep_from`, and series with nothing left.
    fn trim(&mut self, keep_from: u64, keep_from_ms: i64) {
        if keep_from <= self.from {
            return;
        }
        self.from = keep_from.min(self.to);
        for s in &mut self.series {
            // Each trim forgets the few ticks since the previous one: a walk from the head, not a search.
            s.head += s.live().iter().take_while(|x| x.t < keep_from_ms).count();
            // Compact once the forgotten part outweighs the rest, so trimming costs O(1) amortised.
            if s.head > s.samples.len() / 2 {
                s.samples.drain(..s.head);
                s.base += s.head;
                s.head = 0;
            }
            let first = s.base + s.head;
            for positions in [&mut s.markers, &mut s.drops] {
                if positions.first().is_some_and(|&p| p < first) {
                    positions.retain(|&p| p >= first);
                }
            }
        }
        if self.series.iter().any(|s| s.live().is_empty()) {
            self.series.retain(|s| !s.live().is_empty());
            self.index = self
                .series
                .iter()
                .enumerate()
                .map(|(i, s)| (s.key, i))
                .collect();
        }
    }
}

/// Appends rendered samples of new ticks to the series of the families being extended together.
struct Append<'f> {
    world: &'f World,
    families: &'f mut [CachedFamily],
    /// Per series name (by discriminant): the family taking it in this render (an index into `families`).
    family_of: [Option<usize>; SeriesName::ALL.len()],
    first_new: u64,
}

impl metrics::SampleSink for Append<'_> {
    fn series(&mut self, key: SeriesKey, samples: &[TickSample]) {
        let Some(fi) = self.family_of[key.name() as usize] else {
            return;
        };
        let family = &mut self.families[fi];
        let key = key.bits();
        // Series come in the same order at every render, so the one after the previous is usually next.
        let next = family.next;
        let i = if family.series.get(next).is_some_and(|s| s.key == key) {
            next
        } else {
            *family.index.entry(key).or_insert_with(|| {
                family.series.push(CachedSeries::new(key));
                family.series.len() - 1
            })
        };
        family.next = i + 1;
        let s = &mut family.series[i];
        s.samples.reserve(samples.len() + 1);
        let mut last_present = s.last_present;
        for x in samples {
            // A gap since the series' last sample that began among the new ticks: a marker where it began.
            if let Some(last) = last_present
                && last + 1 < x.tick
                && last + 1 >= self.first_new
            {
                s.push(Sample::new(
                    metrics::tick_ms(self.world, last + 1),
                    stale_nan(),
                ));
            }
            s.push(Sample::new(x.ms, x.v));
            last_present = Some(x.tick);
        }
        s.last_present = last_present;
    }
}

/// Rendered samples kept between rule evaluations, by metric name and series key, so each evaluation renders
/// only the ticks that arrived since the previous one and reads its windows without copying.
///
/// A sample depends on its tick alone, not on the window that renders it (see `tests/windows.rs`), so a
/// window read from the cache is exactly a fresh render of it. Use it through [`CachedWorldStorage`]; clone
/// it with the world it was filled from (a fork keeps its cache); reusing it with another world gives wrong
/// answers.
#[derive(Debug, Clone, Default)]
pub struct SeriesCache {
    families: Vec<CachedFamily>,
}

impl SeriesCache {
    /// Makes ticks `[from, end)` of family `i` cached: renders the ones after what is cached (or everything
    /// again when the cache does not reach back to `from` or stops short of it). Every other family cached up
    /// to the same tick takes the same new ticks in the same render: the rules read all their families at
    /// every evaluation, and one render of several families costs about what one of them alone does.
    fn extend(&mut self, world: &World, i: usize, from: u64, end: u64) {
        let family = &mut self.families[i];
        if !family.reaches(from) {
            family.restart(from);
        }
        if end <= family.to {
            return;
        }
        let first_new = family.to;
        let members: Vec<usize> = (0..self.families.len())
            .filter(|&j| {
                let f = &self.families[j];
                j == i || (f.to == first_new && f.from < f.to)
            })
            .collect();
        let (start_ms, end_ms) = (
            metrics::tick_ms(world, first_new),
            metrics::tick_ms(world, end - 1),
        );
        let names: Vec<&'static str> = members
            .iter()
            .filter_map(|&j| self.families[j].series_name.map(SeriesName::as_str))
            .collect();
        let mut family_of = [None; SeriesName::ALL.len()];
        for &j in &members {
            let family = &mut self.families[j];
            family.next = 0;
            if let Some(name) = family.series_name {
                family_of[name as usize] = Some(j);
            }
        }
        let mut sink = Append {
            world,
            families: &mut self.families,
            family_of,
            first_new,
        };
        metrics::render_into(world, &|n| names.contains(&n), start_ms, end_ms, &mut sink);
        for &j in &members {
            self.families[j].close(world, first_new, end);
        }
    }
}

/// A [`KeyedStorage`] over a world that renders through a [`SeriesCache`].
pub struct CachedWorldStorage<'a> {
    world: &'a World,
    cache: RefCell<&'a mut SeriesCache>,
    /// The latest `(start_ms, end_ms)` asked and its held ticks: the rules of one evaluation mostly ask the
    /// same window, and finding its ticks is two binary searches.
    last_window: Cell<Option<(i64, i64, u64, u64)>>,
}

impl<'a> CachedWorldStorage<'a> {
    /// A view of `world` filling and reading `cache`.
    pub fn new(world: &'a World, cache: &'a mut SeriesCache) -> Self {
        CachedWorldStorage {
            world,
            cache: RefCell::new(cache),
            last_window: Cell::new(None),
        }
    }
}

impl KeyedStorage for CachedWorldStorage<'_> {
    fn select_keyed(
        &self,
        name: &str,
        start_ms: i64,
        end_ms: i64,
        visit: &mut dyn FnMut(u64, &[Sample]),
    ) -> Result<(), StorageError> {
        self.select_windows(name, start_ms, end_ms, &mut |key, samples, _| {
            visit(key, samples)
        })
    }

    /// The windows with their exact [`WindowFacts`], from what each series noted as its samples came.
    fn select_windows(
        &self,
        name: &str,
        start_ms: i64,
        end_ms: i64,
        visit: &mut dyn FnMut(u64, &[Sample], WindowFacts),
    ) -> Result<(), StorageError> {
        if start_ms > end_ms {
            return Ok(());
        }
        // As `WorldStorage::select`: one scrape earlier, for the staleness marker of a series gone at the
        // window's first scrape.
        let render_start = start_ms.saturating_sub(tick_ms(self.world));
        let ticks = match self.last_window.get() {
            Some((s, e, lo, hi)) if (s, e) == (render_start, end_ms) => lo..hi,
            _ => {
                let ticks = metrics::window_ticks(self.world, render_start, end_ms);
                self.last_window
                    .set(Some((render_start, end_ms, ticks.start, ticks.end)));
                ticks
            }
        };
        if ticks.is_empty() {
            return Ok(());
        }
        let mut cache = self.cache.borrow_mut();
        let i = match cache.families.iter().position(|f| f.name == name) {
            Some(i) => i,
            None => {
                cache.families.push(CachedFamily::new(name));
                cache.families.len() - 1
            }
        };
        cache.extend(self.world, i, ticks.start, ticks.end);
        let family = &mut cache.families[i];
        family.span = family.span.max(ticks.end - ticks.start);
        // A fresh render starts at the first rendered tick: nothing before it, and no marker at it (the sample
        // the marker follows is not rendered).
        let first_ms = metrics::tick_ms(self.world, ticks.start);
        let from_ms = start_ms.max(first_ms);
        let n_ticks = (ticks.end - ticks.start) as usize;
        for s in &family.series {
            let live = s.live();
            // Windows usually end at the newest tick; and a tick holds at most one entry (a sample or a marker),
            // so the window's entries are among the last `n_ticks` before `hi`.
            let hi = if live.last().is_some_and(|x| x.t <= end_ms) {
                live.len()
            } else {
                live.partition_point(|x| x.t <= end_ms)
            };
            let floor = hi.saturating_sub(n_ticks);
            // Usually the window's first entry is at `floor` or just after it (the extra scrape before the
            // window); search only when it is not.
            let mut lo = floor;
            for _ in 0..2 {
                if lo < hi && live[lo].t < from_ms {
                    lo += 1;
                }
            }
            if lo < hi && live[lo].t < from_ms {
                lo += live[lo..hi].partition_point(|x| x.t < from_ms);
            }
            if live
                .get(lo)
                .is_some_and(|x| x.t == first_ms && x.is_stale())
            {
                lo += 1;
            }
            if lo < hi {
                visit(s.key, &live[lo..hi], s.facts(lo, hi));
            }
        }
        // Keep the longest window asked so far, with room for a few evaluations' lag.
        let keep_from = ticks.end.saturating_sub(family.span + 16);
        if keep_from > family.from {
            family.trim(keep_from, metrics::tick_ms(self.world, keep_from));
        }
        Ok(())
    }

    fn labels_of(&self, key: u64) -> Option<Labels> {
        WorldStorage::new(self.world).labels_of(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use firedrill_promql::is_stale_nan;

    /// A series' noted markers and decreases give every window's facts exactly, through trims and the
    /// compactions that renumber its samples.
    #[test]
    fn series_facts_equal_a_read_of_every_window() {
        let mut s = CachedSeries::new(1);
        // Values that rise, fall, repeat, go stale and come back (a splitmix-like walk).
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut checked = 0;
        for i in 0..400i64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = match x % 7 {
                0 => stale_nan(),
                1 => f64::NAN,
                2 => s.samples.last().map_or(0.0, |p| p.v),
                3 => (x % 5) as f64 - 10.0,
                _ => i as f64 + (x % 3) as f64,
            };
            s.push(Sample::new(i * 15_000, v));
            if i % 37 == 36 {
                let keep_from_ms = (i - 20) * 15_000;
                let mut family = CachedFamily::new("x");
                family.series.push(s);
                family.to = u64::MAX;
                family.trim(1, keep_from_ms);
                s = family.series.pop().expect("the series has samples left");
            }
            let live = s.live();
            for lo in 0..live.len() {
                for hi in lo..=live.len().min(lo + 30) {
                    assert_eq!(
                        s.facts(lo, hi),
                        WindowFacts::of(&live[lo..hi]),
                        "[{lo}, {hi}) at {i}"
                    );
                    checked += 1;
                }
            }
        }
        assert!(s.base > 0, "no compaction renumbered the samples");
        assert!(checked > 100_000);
    }

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
