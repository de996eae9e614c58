//! The PromQL [`Storage`] over a world: series rendered from the frame history on demand.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::sync::Arc;

use firedrill_promql::{
    EndsRead, KeyedStorage, Label, LabelMatcher, Labels, METRIC_NAME, Sample, Series, Storage,
    StorageError, Window, WindowFacts, is_stale_nan, stale_nan,
};
use firedrill_telemetry::metrics::{
    self, KeyedSeries, LabelScope, LabelText, MetricSeries, SeriesKey, SeriesName, TickSample,
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

    /// [`CachedSeries::push`] of a sample at each of `times` with `values`: the samples copied in one go, then
    /// what `push` notes read off the values (copying and noting in one loop cost twice as much).
    #[inline(always)]
    fn extend(&mut self, times: &[i64], values: &[f64]) {
        let first = self.base + self.samples.len();
        // Nothing is below NaN, as nothing is below a missing sample.
        let prev = self.samples.last().map_or(f64::NAN, |p| p.v);
        self.samples
            .extend(times.iter().zip(values).map(|(&t, &v)| Sample::new(t, v)));
        // Most series neither go stale nor fall: a pass that only reads, and the noting pass only if it found
        // something.
        let (mut note, mut p) = (false, prev);
        for &v in values {
            note |= is_stale_nan(v) | (v < p);
            p = v;
        }
        if note {
            self.note(first, prev, values);
        }
    }

    /// Notes the markers and decreases among `values`, the first at position `first`, after a sample `prev`.
    #[cold]
    fn note(&mut self, first: usize, mut prev: f64, values: &[f64]) {
        for (pos, &v) in (first..).zip(values) {
            if is_stale_nan(v) {
                self.markers.push(pos);
            }
            if v < prev {
                self.drops.push(pos);
            }
            prev = v;
        }
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
    /// Per service index, whether its series are left out (see [`SeriesCache::serve_only`]); `None` for none.
    /// Shared, so a render borrows it without copying.
    left_out: Option<Arc<[bool]>>,
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
            left_out: None,
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
            s.head += s.live().partition_point(|x| x.t < keep_from_ms);
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

impl CachedFamily {
    /// During a render: the series of `key`, added if new.
    fn series_of(&mut self, key: SeriesKey) -> &mut CachedSeries {
        let key = key.bits();
        // Series come in the same order at every render, so the one after the previous is usually next.
        let next = self.next;
        let i = if self.series.get(next).is_some_and(|s| s.key == key) {
            next
        } else {
            *self.index.entry(key).or_insert_with(|| {
                self.series.push(CachedSeries::new(key));
                self.series.len() - 1
            })
        };
        self.next = i + 1;
        &mut self.series[i]
    }
}

impl CachedSeries {
    /// Appends samples at the consecutive ticks `first..=last` (at `times`, with `values`): no gap between
    /// them, so the only marker that can come is one before the first (as [`Append::series`] would write it).
    #[inline(always)]
    fn append_consecutive(
        &mut self,
        world: &World,
        first_new: u64,
        (first, last): (u64, u64),
        times: &[i64],
        values: &[f64],
    ) {
        if let Some(l) = self.last_present
            && l + 1 < first
            && l + 1 >= first_new
        {
            self.push(Sample::new(metrics::tick_ms(world, l + 1), stale_nan()));
        }
        self.extend(times, values);
        self.last_present = Some(last);
    }
}

impl Append<'_> {
    /// The cached series of `key`, added if new; `None` for a series no family of this render takes.
    fn cached(&mut self, key: SeriesKey) -> Option<&mut CachedSeries> {
        let fi = self.family_of[key.name() as usize]?;
        Some(self.families[fi].series_of(key))
    }
}

/// The first and last of `ticks` if they are consecutive (and not empty).
fn consecutive(ticks: &[u64]) -> Option<(u64, u64)> {
    let (&first, &last) = (ticks.first()?, ticks.last()?);
    (last - first + 1 == ticks.len() as u64).then_some((first, last))
}

impl metrics::SampleSink for Append<'_> {
    fn series(&mut self, key: SeriesKey, samples: &[TickSample]) {
        let (world, first_new) = (self.world, self.first_new);
        let Some(s) = self.cached(key) else {
            return;
        };
        s.samples.reserve(samples.len() + 1);
        let mut last_present = s.last_present;
        for x in samples {
            // A gap since the series' last sample that began among the new ticks: a marker where it began.
            if let Some(last) = last_present
                && last + 1 < x.tick
                && last + 1 >= first_new
            {
                s.push(Sample::new(metrics::tick_ms(world, last + 1), stale_nan()));
            }
            s.push(Sample::new(x.ms, x.v));
            last_present = Some(x.tick);
        }
        s.last_present = last_present;
    }

    /// What [`Append::series`] does with the same samples, the values going in as one column.
    fn dense(&mut self, key: SeriesKey, ticks: &[u64], times: &[i64], values: &[f64]) {
        let Some(span) = consecutive(ticks) else {
            return self.series(key, &TickSample::column(ticks, times, values));
        };
        let (world, first_new) = (self.world, self.first_new);
        if let Some(s) = self.cached(key) {
            s.append_consecutive(world, first_new, span, times, values);
        }
    }

    /// [`Append::dense`] of each series of the run, finding their family once.
    fn dense_run(&mut self, first: SeriesKey, ticks: &[u64], times: &[i64], values: &[f64]) {
        let (Some(span), Some(fi)) = (consecutive(ticks), self.family_of[first.name() as usize])
        else {
            for (j, run) in values.chunks_exact(ticks.len().max(1)).enumerate() {
                self.dense(first.nth_after(j as u32), ticks, times, run);
            }
            return;
        };
        let family = &mut self.families[fi];
        for (j, run) in values.chunks_exact(ticks.len()).enumerate() {
            family
                .series_of(first.nth_after(j as u32))
                .append_consecutive(self.world, self.first_new, span, times, run);
        }
    }
}

/// How many ticks a family's cache holds beyond what the windows read before it forgets them (see
/// `CachedWorldStorage::select_windows`).
const TRIM_BATCH_TICKS: u64 = 32;

/// Rendered samples kept between rule evaluations, by metric name and series key, so each evaluation renders
/// only the ticks that arrived since the previous one and reads its windows without copying.
///
/// A sample depends on its tick alone, not on the window that renders it (see `tests/windows.rs`), so a
/// window read from the cache is exactly a fresh render of it. Use it through [`CachedWorldStorage`]; clone
/// it with the world it was filled from (a fork keeps its cache); reusing it with another world gives wrong
/// answers.
#[derive(Debug, Clone, Default)]
pub struct SeriesCache {
    families: FamilyCache,
    /// Shared between forks until one of them meets a series the book does not know (copy on write): label
    /// sets are learnt in the first evaluations and depend on the series key alone.
    labels: Arc<LabelBook>,
    /// Whether [`SeriesCache::serve_only`] was applied.
    serving_only: bool,
}

impl SeriesCache {
    /// Leaves out of what the cache renders every series that none of `selectors` (metric name, matchers) can
    /// match, as judged by the labels all series of one metric and service share
    /// ([`metrics::family_labels`]): a service whose `job`, say, every selector of a metric rejects has none of
    /// that metric's series rendered, kept or scanned. Only for a cache read through those selectors alone (a rule
    /// engine's plans); another selector could miss series. Families already cached start over.
    pub fn serve_only(&mut self, world: &World, selectors: &[(&str, &[LabelMatcher])]) {
        self.serving_only = true;
        let names: std::collections::BTreeSet<&str> = selectors.iter().map(|(n, _)| *n).collect();
        for name in names {
            let Some(series_name) = SeriesName::ALL.iter().copied().find(|n| n.as_str() == name)
            else {
                continue;
            };
            let of_name: Vec<&[LabelMatcher]> = selectors
                .iter()
                .filter(|(n, _)| *n == name)
                .map(|(_, m)| *m)
                .collect();
            let mut rejected = vec![false; of_name.len()];
            let left_out: Vec<bool> = (0..world.topology().len())
                .map(|i| {
                    // Left out when every selector of the name has a matcher that rejects a shared label's value
                    // (the labels of [`metrics::family_labels`], visited without copying); a matcher on a
                    // label the family does not share decides nothing here.
                    rejected.fill(false);
                    let service = firedrill_world::ServiceId(i as u16);
                    metrics::visit_family_labels(world, series_name, service, |label, value| {
                        for (r, matchers) in rejected.iter_mut().zip(&of_name) {
                            *r |= matchers
                                .iter()
                                .any(|m| m.name == label && !m.matches(value));
                        }
                    });
                    rejected.iter().all(|r| *r)
                })
                .collect();
            let families = &mut self.families.families;
            let i = match families.iter().position(|f| f.name == name) {
                Some(i) => i,
                None => {
                    families.push(CachedFamily::new(name));
                    families.len() - 1
                }
            };
            let family = &mut families[i];
            family.restart(family.to);
            family.left_out = left_out.contains(&true).then(|| left_out.into());
        }
    }

    /// Makes this cache, filled from world `old`, a cache of world `new` as if new, but keeping the label sets
    /// it built, and what [`SeriesCache::serve_only`] decided, when every series it holds has the same labels in
    /// both worlds ([`metrics::same_series_labels`]: two worlds of one topology, whatever their seeds, unless
    /// the cache holds pods' series). Returns false, changing nothing, otherwise.
    pub fn rebind(&mut self, old: &World, new: &World) -> bool {
        let names: Vec<SeriesName> = self
            .families
            .families
            .iter()
            .filter_map(|f| f.series_name)
            .collect();
        if !metrics::same_series_labels(old, new, &names) {
            return false;
        }
        for f in &mut self.families.families {
            f.restart(0);
            f.next = 0;
            f.span = 0;
        }
        self.families.ok_falls = metrics::OkFalls::default();
        true
    }

    /// Whether [`SeriesCache::serve_only`] was applied.
    pub fn serves_only(&self) -> bool {
        self.serving_only
    }
}

/// The label sets of a [`SeriesCache`]'s world, built once per series. A new incident's rules meet every
/// series for the first time; building each label set from shared parts (the labels every series of one metric
/// and service has, and one allocation per distinct string) costs a fraction of building it from text.
#[derive(Debug, Clone, Default)]
struct LabelBook {
    /// Each series' label set, by key.
    series: BTreeMap<u64, Labels>,
    /// The labels of [`LabelScope::Family`], sorted by name, by metric and service.
    families: BTreeMap<(u16, u16), Vec<Label>>,
    /// Constant names and values, found by address: there are a few dozen, all in the program's text.
    constants: Vec<(&'static str, Arc<str>)>,
    /// Names of the world (services, versions), one allocation each.
    names: BTreeMap<Box<str>, Arc<str>>,
}

impl LabelBook {
    fn constant(constants: &mut Vec<(&'static str, Arc<str>)>, s: &'static str) -> Arc<str> {
        let same = |c: &&(&'static str, Arc<str>)| std::ptr::eq(c.0, s);
        if let Some((_, a)) = constants.iter().find(same) {
            return Arc::clone(a);
        }
        let a: Arc<str> = Arc::from(s);
        constants.push((s, Arc::clone(&a)));
        a
    }

    fn text(&mut self, t: LabelText<'_>) -> Arc<str> {
        match t {
            LabelText::Static(s) => Self::constant(&mut self.constants, s),
            LabelText::Borrowed(s) => {
                if let Some(a) = self.names.get(s) {
                    return Arc::clone(a);
                }
                let a: Arc<str> = Arc::from(s);
                self.names.insert(s.into(), Arc::clone(&a));
                a
            }
            LabelText::Owned(s) => Arc::from(s),
        }
    }

    /// The label set of series `bits`, exactly [`metrics::series_labels`]'s as a [`Labels`].
    fn labels(&mut self, world: &World, bits: u64) -> Option<Labels> {
        if let Some(l) = self.series.get(&bits) {
            return Some(l.clone());
        }
        let key = SeriesKey::from_bits(bits)?;
        let family_key = (key.name() as u16, key.service().index() as u16);
        let known_family = self.families.contains_key(&family_key);
        let (mut family, mut own) = (Vec::new(), Vec::new());
        let known = metrics::visit_series_labels(world, key, |scope, name, value| {
            if scope == LabelScope::Family && known_family {
                return;
            }
            let pair = (Self::constant(&mut self.constants, name), self.text(value));
            match scope {
                LabelScope::Family => family.push(pair),
                LabelScope::Series => own.push(pair),
            }
        });
        if !known {
            return None;
        }
        let mut pairs = match self.families.get(&family_key) {
            Some(shared) => shared.clone(),
            None => {
                // Sorted once, so that each series' own labels go in by a search.
                family.sort_by(|a, b| a.0.cmp(&b.0));
                self.families.insert(family_key, family.clone());
                family
            }
        };
        for p in own {
            match pairs.binary_search_by(|x| x.0.cmp(&p.0)) {
                Ok(i) => pairs[i] = p,
                Err(i) => pairs.insert(i, p),
            }
        }
        let l = Labels::from_pairs(pairs);
        self.series.insert(bits, l.clone());
        Some(l)
    }
}

/// The cached families of a [`SeriesCache`], apart from its label sets so that a plan can ask for labels while
/// a family is being read.
#[derive(Debug, Clone, Default)]
struct FamilyCache {
    families: Vec<CachedFamily>,
    /// Where the world's `code="200"` counts fall, for the windows of `http_requests_total` told by their ends.
    ok_falls: metrics::OkFalls,
}

impl FamilyCache {
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
        let names: Vec<SeriesName> = members
            .iter()
            .filter_map(|&j| self.families[j].series_name)
            .collect();
        let mut family_of = [None; SeriesName::ALL.len()];
        for &j in &members {
            let family = &mut self.families[j];
            family.next = 0;
            if let Some(name) = family.series_name {
                family_of[name as usize] = Some(j);
            }
        }
        let left_out: Vec<(SeriesName, Arc<[bool]>)> = members
            .iter()
            .filter_map(|&j| {
                let f = &self.families[j];
                Some((f.series_name?, Arc::clone(f.left_out.as_ref()?)))
            })
            .collect();
        let excluded: Vec<(SeriesName, &[bool])> =
            left_out.iter().map(|(n, l)| (*n, &l[..])).collect();
        let mut sink = Append {
            world,
            families: &mut self.families,
            family_of,
            first_new,
        };
        metrics::render_into_excluding(world, &names, &excluded, start_ms, end_ms, &mut sink);
        for &j in &members {
            self.families[j].close(world, first_new, end);
        }
    }
}

/// A [`KeyedStorage`] over a world that renders through a [`SeriesCache`].
pub struct CachedWorldStorage<'a> {
    world: &'a World,
    cache: RefCell<&'a mut FamilyCache>,
    labels: RefCell<&'a mut Arc<LabelBook>>,
    /// The latest `(start_ms, end_ms)` asked and its held ticks: the rules of one evaluation mostly ask the
    /// same window, and finding its ticks is two binary searches.
    last_window: Cell<Option<(i64, i64, u64, u64)>>,
    /// The same for the windows of [`KeyedStorage::select_ends`] (which start one tick later).
    last_ends_window: Cell<Option<(i64, i64, u64, u64)>>,
}

impl<'a> CachedWorldStorage<'a> {
    /// A view of `world` filling and reading `cache`.
    pub fn new(world: &'a World, cache: &'a mut SeriesCache) -> Self {
        CachedWorldStorage {
            world,
            cache: RefCell::new(&mut cache.families),
            labels: RefCell::new(&mut cache.labels),
            last_window: Cell::new(None),
            last_ends_window: Cell::new(None),
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
        // Keep the longest window asked so far, with room for a few evaluations' lag. Forget in batches: a
        // trim is a pass over the family's series however little it forgets, and what is kept longer is never
        // read (every window is located by time).
        let keep_from = ticks.end.saturating_sub(family.span + 16);
        if keep_from >= family.from + TRIM_BATCH_TICKS {
            family.trim(keep_from, metrics::tick_ms(self.world, keep_from));
        }
        Ok(())
    }

    /// The windows of a name [told by its ends](metrics::told_by_ends) (or, for an instant selector, whose
    /// [newest sample is](metrics::newest_told_by_ends)) straight from the world's ring, without rendering or
    /// caching their samples: each series' samples at the window's first and last held ticks, exactly the ends
    /// of the window [`CachedWorldStorage::select_windows`] lends (which has a sample at every held tick, no
    /// marker, and no decrease for a name told by its ends). Other names go through the cache.
    fn select_ends(
        &self,
        name: &str,
        start_ms: i64,
        end_ms: i64,
        reads: EndsRead,
        visit: &mut dyn FnMut(u64, Window<'_>),
    ) -> Result<(), StorageError> {
        let (series_name, left_out) = {
            let cache = self.cache.borrow();
            match cache.families.iter().find(|f| f.name == name) {
                Some(f) => (f.series_name, f.left_out.clone()),
                None => (
                    SeriesName::ALL.iter().copied().find(|n| n.as_str() == name),
                    None,
                ),
            }
        };
        let told = |n: SeriesName| match reads {
            EndsRead::Change => metrics::told_by_ends(n),
            EndsRead::Newest => metrics::newest_told_by_ends(n),
        };
        if let Some(series_name) = series_name.filter(|&n| told(n)) {
            if start_ms > end_ms {
                return Ok(());
            }
            let ticks = match self.last_ends_window.get() {
                Some((s, e, lo, hi)) if (s, e) == (start_ms, end_ms) => lo..hi,
                _ => {
                    let ticks = metrics::window_ticks(self.world, start_ms, end_ms);
                    self.last_ends_window
                        .set(Some((start_ms, end_ms, ticks.start, ticks.end)));
                    ticks
                }
            };
            if ticks.is_empty() {
                return Ok(());
            }
            let (first, last) = (ticks.start, ticks.end - 1);
            let (first_ms, last_ms) = (
                metrics::tick_ms(self.world, first),
                metrics::tick_ms(self.world, last),
            );
            let len = (ticks.end - ticks.start) as usize;
            // The cache is borrowed for `ok_falls` during the visit only (the visitor asks for labels, kept apart).
            let told = metrics::visit_ends(
                self.world,
                series_name,
                left_out.as_deref(),
                (first, last),
                &mut self.cache.borrow_mut().ok_falls,
                |key, a, b| {
                    visit(
                        key.bits(),
                        Window::Ends {
                            first: Sample::new(first_ms, a),
                            last: Sample::new(last_ms, b),
                            len,
                        },
                    )
                },
            );
            if told {
                return Ok(());
            }
            // Declined, having visited nothing (a `code="200"` series that falls in this window, a volume of
            // no size): the samples, as for any other name.
        }
        self.select_windows(name, start_ms, end_ms, &mut |key, samples, facts| {
            visit(key, Window::Samples(samples, facts))
        })
    }

    fn labels_of(&self, key: u64) -> Option<Labels> {
        let mut book = self.labels.borrow_mut();
        if let Some(l) = book.series.get(&key) {
            return Some(l.clone());
        }
        Arc::make_mut(&mut book).labels(self.world, key)
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

    /// The label book gives every series exactly the label set built from [`metrics::series_labels`]'s text,
    /// for every series a world renders (pods of several generations after restarts, every bucket and code),
    /// asked in an order that meets families both new and known, and asked twice; a key of no series gives none.
    #[test]
    fn the_label_book_gives_the_labels_built_from_text() {
        let catalog = firedrill_scenario::Catalog::builtin().expect("library");
        for (scenario, seed) in [
            ("oom_crash", 3),
            ("db_pool_exhaustion", 1),
            ("disk_full", 2),
        ] {
            let mut incident = catalog.start(scenario, seed, 0.7).expect("start");
            for _ in 0..40 {
                incident.step();
            }
            let world = incident.world();
            let now = metrics::tick_ms(world, world.tick_count());
            let mut keys: Vec<SeriesKey> =
                metrics::render_keyed(world, &|_| true, now - 3_600_000, now)
                    .into_iter()
                    .map(|s| s.key)
                    .collect();
            assert!(keys.len() > 300, "{scenario}: {} series", keys.len());
            // Alternate ends of the key order, so that families are met in pieces.
            keys.sort_by_key(|k| k.bits());
            let (a, b) = keys.split_at(keys.len() / 2);
            let order: Vec<SeriesKey> = a
                .iter()
                .zip(b.iter().rev())
                .flat_map(|(x, y)| [*x, *y])
                .collect();
            let mut book = LabelBook::default();
            for pass in 0..2 {
                for &key in &order {
                    let expected = metrics::series_labels(world, key).map(Labels::new);
                    assert_eq!(
                        book.labels(world, key.bits()),
                        expected,
                        "{scenario} pass {pass} {key:?}"
                    );
                }
            }
            let unknown = (SeriesName::Up as u64) << 48 | 0xfff << 32;
            assert_eq!(book.labels(world, unknown), None);
            assert_eq!(book.labels(world, u64::MAX), None);
        }
    }

    /// Series handed over as columns ([`Append::dense`], [`Append::dense_run`]) leave the cache exactly as the
    /// same samples handed over one by one ([`Append::series`]) do: samples, markers (gaps that began among the
    /// new ticks, and not before), noted markers and decreases, the latest tick present; over renders that skip
    /// some series, start before a series' first new tick, and hand over ticks that are not consecutive.
    #[test]
    fn columns_append_what_samples_append() {
        let incident = firedrill_scenario::Catalog::builtin()
            .expect("library")
            .start("db_pool_exhaustion", 1, 0.5)
            .expect("start");
        let world = incident.world();
        let name = SeriesName::HttpRequestDurationBucket;
        let key = |j: u64| SeriesKey::from_bits((name as u64) << 48 | j).expect("key");
        let mut by_samples = vec![CachedFamily::new(name.as_str())];
        let mut by_columns = vec![CachedFamily::new(name.as_str())];
        let mut family_of = [None; SeriesName::ALL.len()];
        family_of[name as usize] = Some(0);
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut rand = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let mut tick = 100u64;
        let (mut markers, mut runs) = (0, 0);
        for round in 0..400 {
            let len = 1 + rand(6) as usize;
            // Usually consecutive ticks; sometimes one missing in the middle.
            let mut ticks: Vec<u64> = (tick..tick + len as u64).collect();
            if len > 2 && rand(5) == 0 {
                ticks.remove(1);
            }
            let times: Vec<i64> = ticks.iter().map(|&t| metrics::tick_ms(world, t)).collect();
            let first_new = tick - rand(3).min(tick);
            let end = tick + len as u64 + rand(2);
            // Values that rise, repeat, fall, go NaN or are a staleness marker.
            let column = |rand: &mut dyn FnMut(u64) -> u64| -> Vec<f64> {
                (0..ticks.len())
                    .map(|i| match rand(12) {
                        0 => stale_nan(),
                        1 => f64::NAN,
                        2 => 1.0,
                        r => (round * 10 + i) as f64 - r as f64,
                    })
                    .collect()
            };
            let run = rand(3) == 0;
            let mut series: Vec<(u64, Vec<f64>)> = Vec::new();
            for j in 0..4u64 {
                if run || rand(3) != 0 {
                    series.push((j, column(&mut rand)));
                }
            }
            for family in [&mut by_samples[0], &mut by_columns[0]] {
                family.next = 0;
            }
            let mut a = Append {
                world,
                families: &mut by_samples,
                family_of,
                first_new,
            };
            for (j, values) in &series {
                let samples: Vec<TickSample> = ticks
                    .iter()
                    .zip(&times)
                    .zip(values)
                    .map(|((&tick, &ms), &v)| TickSample { tick, ms, v })
                    .collect();
                metrics::SampleSink::series(&mut a, key(*j), &samples);
            }
            let mut b = Append {
                world,
                families: &mut by_columns,
                family_of,
                first_new,
            };
            if run {
                let values: Vec<f64> = series.iter().flat_map(|(_, v)| v.clone()).collect();
                metrics::SampleSink::dense_run(&mut b, key(0), &ticks, &times, &values);
                runs += 1;
            } else {
                for (j, values) in &series {
                    metrics::SampleSink::dense(&mut b, key(*j), &ticks, &times, values);
                }
            }
            for family in [&mut by_samples[0], &mut by_columns[0]] {
                family.close(world, first_new, end);
            }
            let (a, b) = (&by_samples[0].series, &by_columns[0].series);
            assert_eq!(a.len(), b.len(), "round {round}");
            for (a, b) in a.iter().zip(b) {
                let bits = |s: &CachedSeries| -> Vec<(i64, u64)> {
                    s.live().iter().map(|x| (x.t, x.v.to_bits())).collect()
                };
                assert_eq!(a.key, b.key);
                assert_eq!(bits(a), bits(b), "round {round}, series {}", a.key);
                assert_eq!(
                    (&a.markers, &a.drops, a.last_present, a.base),
                    (&b.markers, &b.drops, b.last_present, b.base),
                    "round {round}, series {}",
                    a.key
                );
            }
            markers += by_samples[0]
                .series
                .iter()
                .filter(|s| s.live().last().is_some_and(Sample::is_stale))
                .count();
            tick = end + rand(3);
        }
        assert!(markers > 100 && runs > 50, "{markers} markers, {runs} runs");
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
