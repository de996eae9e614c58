//! Repeated instant evaluation of one expression with the label work done once.
//!
//! An alerting rule is evaluated every interval over series whose label sets barely change, and most of a
//! general evaluation goes into label sets: building them, matching selectors against them, hashing them for
//! grouping and vector matching, sorting by them. An [`InstantPlan`] compiles a rule-shaped expression into a
//! tree that keeps, per node, what each input series maps to (its group, its matching signature, its output
//! label set), keyed by the storage's stable series keys ([`KeyedStorage`]), so an evaluation after the first
//! one is arithmetic over small integers.
//!
//! The result is exactly [`Engine::instant_expr`](super::Engine::instant_expr)'s, to the bit: every node
//! visits its inputs in the engine's order (selectors by label set, aggregation groups by first appearance,
//! vector matching in left-hand order) and calls the engine's own arithmetic (Kahan sums, `extrapolated_rate`,
//! `bucket_quantile`, label rules). Where the engine would fail (duplicate series, many-to-many matching, the
//! sample limit), the plan does not try to reproduce the error: it declines the evaluation and the caller
//! asks the engine, which then reports it. Expressions outside the supported shapes (set operators,
//! `group_left`, subqueries, `offset`/`@`, functions other than the range functions without parameters and
//! `histogram_quantile`) do not compile at all.

use std::sync::Arc;

use promql_parser::parser::{
    AggregateExpr, BinaryExpr, Call, Expr, LabelModifier, MatrixSelector, VectorMatchCardinality,
    VectorSelector,
};

use super::aggregate::{Acc, Simple, group_spec};
use super::binary::{Op, elem, matching_spec, result_labels};
use super::functions::{
    MATRIX_FUNCS, Win, extrapolated_rate_ends, extrapolated_rate_scanning, parse_le, window_fn,
};
use super::util::{Bucket, bucket_quantile};
use super::{EngineOptions, dur_ms, lookup, selector_matchers};
use crate::hash::{FxMap, fx_map};
use crate::labels::{KeySpec, LabelMatcher, Labels, METRIC_NAME, MatchOp};
use crate::storage::{Sample, StorageError, is_stale_nan};
use crate::value::Value;

/// A store that names its series by stable keys, so a reader can keep per-series work between queries.
///
/// A key must stand for the same label set for as long as the store (and whatever it is derived from) lives;
/// an [`InstantPlan`] builds each key's label set once and trusts the key afterwards.
pub trait KeyedStorage {
    /// Calls `visit` with the key and samples of each series named `name` with samples in
    /// `[start_ms, end_ms]`: exactly the series and samples [`Storage::select`](crate::Storage::select)
    /// returns for `{__name__="name"}` over that window (ascending time, staleness markers included), in any
    /// order. Lending the samples lets a store that keeps them answer without copying.
    fn select_keyed(
        &self,
        name: &str,
        start_ms: i64,
        end_ms: i64,
        visit: &mut dyn FnMut(u64, &[Sample]),
    ) -> Result<(), StorageError>;

    /// [`KeyedStorage::select_keyed`] with what the store knows about each window without reading it, so the
    /// reader can skip scans (see [`WindowFacts`]). The default knows nothing.
    fn select_windows(
        &self,
        name: &str,
        start_ms: i64,
        end_ms: i64,
        visit: &mut dyn FnMut(u64, &[Sample], WindowFacts),
    ) -> Result<(), StorageError> {
        self.select_keyed(name, start_ms, end_ms, &mut |key, samples| {
            visit(key, samples, WindowFacts::default())
        })
    }

    /// [`KeyedStorage::select_windows`] for a reader that needs of a window without staleness markers only
    /// what `reads` says: its newest sample, or (without a decrease either) its first and last samples and how
    /// many it holds (`rate`, `increase` and `delta` then read nothing else). A store that knows this of a
    /// series without reading its samples may lend [`Window::Ends`] for it, exactly the ends and the length of
    /// the window it would lend; for any other series it lends the samples. The default always lends the
    /// samples.
    fn select_ends(
        &self,
        name: &str,
        start_ms: i64,
        end_ms: i64,
        reads: EndsRead,
        visit: &mut dyn FnMut(u64, Window<'_>),
    ) -> Result<(), StorageError> {
        let _ = reads;
        self.select_windows(name, start_ms, end_ms, &mut |key, samples, facts| {
            visit(key, Window::Samples(samples, facts))
        })
    }

    /// The label set of a key [`KeyedStorage::select_keyed`] gave.
    fn labels_of(&self, key: u64) -> Option<Labels>;
}

/// What a reader of [`KeyedStorage::select_ends`] reads of a window lent by its ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndsRead {
    /// Only the newest sample (an instant selector): a window without a staleness marker may be lent by its
    /// ends even if its samples fall.
    Newest,
    /// The change from the first sample to the last over the window's length (`rate`, `increase`, `delta`):
    /// only a window without a staleness marker and without a decrease may be lent by its ends.
    Change,
}

/// A series' window as a store lends it to [`KeyedStorage::select_ends`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Window<'a> {
    /// The samples (ascending time, staleness markers included), with what the store knows about them.
    Samples(&'a [Sample], WindowFacts),
    /// A window of `len` samples (at least one) of which none is a staleness marker (and, when read for its
    /// [change](EndsRead::Change), none is below the one before it), told by its first and last samples (the
    /// same sample when `len` is 1).
    Ends {
        /// The oldest sample.
        first: Sample,
        /// The newest sample.
        last: Sample,
        /// How many samples the window holds.
        len: usize,
    },
}

impl Window<'_> {
    /// How many samples the window holds.
    pub fn len(&self) -> usize {
        match self {
            Window::Samples(s, _) => s.len(),
            Window::Ends { len, .. } => *len,
        }
    }

    /// Whether the window holds no sample.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a store knows about a window's samples without reading them (a store that keeps samples can keep
/// these too, as they arrive). A set flag is a promise about the samples lent with it; an unset one promises
/// nothing, so [`WindowFacts::default`] is always true.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowFacts {
    /// No sample is a staleness marker: range functions need not filter them out.
    pub no_stale: bool,
    /// No sample's value is below the one before it (`s[i].v < s[i - 1].v` for no `i`; a staleness marker is
    /// neither below nor above anything): a counter has no reset here, so `rate` and `increase` need not
    /// look for one.
    pub no_decrease: bool,
}

impl WindowFacts {
    /// The facts of `samples`, read from them (every flag that holds is set).
    pub fn of(samples: &[Sample]) -> WindowFacts {
        WindowFacts {
            no_stale: !samples.iter().any(Sample::is_stale),
            no_decrease: !samples.windows(2).any(|p| p[1].v < p[0].v),
        }
    }
}

/// Label sets interned by a node, with their rank in label-set order when asked.
///
/// Shared between clones until one of them adds a set (copy on write): what a plan learnt about the label sets
/// of a world holds for every fork of it, and after the first evaluations sets are added only when a series
/// appears, so forking an incident (a snapshot, a repeated start) shares the tables instead of copying every set.
#[derive(Debug, Clone, Default)]
struct LabelTable(Arc<LabelTableData>);

#[derive(Debug, Clone, Default)]
struct LabelTableData {
    labels: Vec<Labels>,
    index: FxMap<Labels, u32>,
    /// Rank of each id in label order; rebuilt when an id was added since.
    rank: Vec<u32>,
}

impl LabelTable {
    fn intern(&mut self, l: Labels) -> u32 {
        if let Some(&id) = self.0.index.get(&l) {
            return id;
        }
        let t = Arc::make_mut(&mut self.0);
        let id = t.labels.len() as u32;
        t.labels.push(l.clone());
        t.index.insert(l, id);
        id
    }

    /// Adds `l` under a new id without looking for an equal set, for a table whose sets come from distinct
    /// series keys (a selector's): hashing every label set of a family the first time it is read was a fifth of
    /// a cold rule evaluation. A store should never give two keys one label set; if it does, the two ids get
    /// the same rank (see [`LabelTable::rank`]), which is how a selector notices. Never mixed with `intern` on
    /// one table.
    fn push(&mut self, l: Labels) -> u32 {
        let t = Arc::make_mut(&mut self.0);
        let id = t.labels.len() as u32;
        t.labels.push(l);
        id
    }

    fn get(&self, id: u32) -> &Labels {
        &self.0.labels[id as usize]
    }

    /// The rank of `id` in label-set order; equal sets (only ever in a table filled by [`LabelTable::push`])
    /// share a rank.
    fn rank(&mut self, id: u32) -> u32 {
        if self.0.rank.len() != self.0.labels.len() {
            let t = Arc::make_mut(&mut self.0);
            let mut order: Vec<u32> = (0..t.labels.len() as u32).collect();
            order.sort_by(|&a, &b| t.labels[a as usize].cmp(&t.labels[b as usize]));
            t.rank = vec![0; order.len()];
            let mut r = 0u32;
            for (i, &id) in order.iter().enumerate() {
                if i > 0 && t.labels[id as usize] != t.labels[order[i - 1] as usize] {
                    r = i as u32;
                }
                t.rank[id as usize] = r;
            }
        }
        self.0.rank[id as usize]
    }
}

/// One element of an instant vector: the producing node's label id, the value, and whether the metric name
/// is to be dropped at the end (Prometheus 3's delayed name removal).
#[derive(Debug, Clone, Copy)]
struct Entry {
    id: u32,
    v: f64,
    drop: bool,
}

/// Per-evaluation slots of small dense ids (group, signature, label ids), reused across evaluations without
/// clearing: an id's slot counts only if it was set in the current round.
#[derive(Debug, Clone, Default)]
struct Slots {
    /// Per id: the round it was set in, and its slot.
    entries: Vec<(u32, u32)>,
    round: u32,
}

impl Slots {
    /// Starts a round: every id is unset.
    fn begin(&mut self) {
        self.round = self.round.wrapping_add(1);
        if self.round == 0 {
            self.entries.fill((0, 0));
            self.round = 1;
        }
    }

    fn get(&self, id: u32) -> Option<u32> {
        self.entries
            .get(id as usize)
            .and_then(|&(r, slot)| (r == self.round).then_some(slot))
    }

    fn set(&mut self, id: u32, slot: u32) {
        let i = id as usize;
        if self.entries.len() <= i {
            self.entries.resize(i + 1, (0, 0));
        }
        self.entries[i] = (self.round, slot);
    }
}

enum Val {
    Scalar(f64),
    Vector(Vec<Entry>),
}

/// Why an evaluation was declined: the engine must answer (it will report an error or a limit).
struct Declined;

type Eval<T> = Result<T, Declined>;

/// A selector: its matchers, and per key whether it matches and under which label id.
#[derive(Debug, Clone)]
struct Selector {
    name: String,
    matchers: Vec<LabelMatcher>,
    /// Key to the label id of a matching series, or `None` for a series the matchers reject.
    seen: FxMap<u64, Option<u32>>,
    table: LabelTable,
    /// The latest evaluation's keys with samples, in the order the storage gave them, and what `seen` says of
    /// each. A store gives its series in the same order evaluation after evaluation (they change only when a
    /// series appears or goes), so comparing keys as they stream in replaces the hash lookups.
    visit_keys: Vec<u64>,
    visit_ids: Vec<Option<u32>>,
    /// When `order_valid`: the latest evaluation's picked series (positions in `picked`) in label order. The
    /// same key sequence picks the same label ids in the same order, so the ranking and the sort are kept.
    order: Vec<u32>,
    order_valid: bool,
    /// Scratch: the picked series of an evaluation in visit order (label id, value), and their ranks.
    picked: Vec<(u32, Option<f64>)>,
    ranked: Vec<(u32, u32)>,
}

impl Selector {
    fn compile(vs: &VectorSelector) -> Option<Selector> {
        if vs.offset.is_some() || vs.at.is_some() {
            return None;
        }
        let mut groups = selector_matchers(vs).ok()?;
        if groups.len() != 1 {
            return None;
        }
        let matchers = groups.pop()?;
        let name = matchers
            .iter()
            .find(|m| m.name == METRIC_NAME && m.op == MatchOp::Eq)?
            .value
            .clone();
        Some(Selector {
            name,
            matchers,
            seen: fx_map(),
            table: LabelTable::default(),
            visit_keys: Vec::new(),
            visit_ids: Vec::new(),
            order: Vec::new(),
            order_valid: false,
            picked: Vec::new(),
            ranked: Vec::new(),
        })
    }

    /// Appends to `out` the matching series of the window, in label order: their label ids and what `value`
    /// makes of their windows (series it gives `None` for are left out). With `ends`, the store may lend a
    /// window by its ends for that use ([`KeyedStorage::select_ends`]); otherwise every window is its samples.
    /// Counts the samples read.
    #[allow(clippy::too_many_arguments)]
    fn select(
        &mut self,
        storage: &dyn KeyedStorage,
        (mint, maxt): (i64, i64),
        run: &mut Run,
        drop: bool,
        ends: Option<EndsRead>,
        out: &mut Vec<Entry>,
        mut value: impl FnMut(Window<'_>) -> Option<f64>,
    ) -> Eval<()> {
        // Set again only when this evaluation succeeds: a declined one leaves no order to trust.
        let same_as_before = std::mem::replace(&mut self.order_valid, false);
        if !same_as_before {
            self.visit_keys.clear();
            self.visit_ids.clear();
        }
        let mut same = same_as_before;
        let mut pos = 0usize;
        let mut read = 0usize;
        let mut unknown_key = false;
        self.picked.clear();
        let (seen, table, matchers) = (&mut self.seen, &mut self.table, &self.matchers);
        let (keys, ids, picked) = (&mut self.visit_keys, &mut self.visit_ids, &mut self.picked);
        let mut each = |key: u64, window: Window<'_>| {
            if window.is_empty() || unknown_key {
                return;
            }
            let id = if same && keys.get(pos) == Some(&key) {
                ids[pos]
            } else {
                if same {
                    // The sequence changed here: what follows is recorded anew.
                    same = false;
                    keys.truncate(pos);
                    ids.truncate(pos);
                }
                let id = match seen.get(&key) {
                    Some(&id) => id,
                    None => {
                        let Some(labels) = storage.labels_of(key) else {
                            unknown_key = true;
                            return;
                        };
                        let id = matchers
                            .iter()
                            .all(|m| m.matches_labels(&labels))
                            .then(|| table.push(labels));
                        seen.insert(key, id);
                        id
                    }
                };
                keys.push(key);
                ids.push(id);
                id
            };
            pos += 1;
            if let Some(id) = id {
                read += window.len();
                picked.push((id, value(window)));
            }
        };
        let selected = if let Some(reads) = ends {
            storage.select_ends(&self.name, mint, maxt, reads, &mut each)
        } else {
            storage.select_windows(&self.name, mint, maxt, &mut |key, samples, facts| {
                each(key, Window::Samples(samples, facts))
            })
        };
        selected.map_err(|_| Declined)?;
        if unknown_key {
            return Err(Declined);
        }
        if same && pos != self.visit_keys.len() {
            // Fewer series than before.
            same = false;
            self.visit_keys.truncate(pos);
            self.visit_ids.truncate(pos);
        }
        run.add(read)?;
        if !same {
            self.ranked.clear();
            for (i, &(id, _)) in self.picked.iter().enumerate() {
                self.ranked.push((self.table.rank(id), i as u32));
            }
            self.ranked.sort_unstable_by_key(|&(r, _)| r);
            // Two keys with one label set (one rank): the engine merges them; leave that to it.
            if self.ranked.windows(2).any(|w| w[0].0 == w[1].0) {
                return Err(Declined);
            }
            self.order.clear();
            self.order.extend(self.ranked.iter().map(|&(_, i)| i));
        }
        let picked = &self.picked;
        out.extend(self.order.iter().filter_map(|&i| {
            let (id, v) = picked[i as usize];
            Some(Entry { id, v: v?, drop })
        }));
        self.order_valid = true;
        Ok(())
    }
}

/// One evaluation's running state: the engine's sample limit, counted the way the engine counts, and the
/// entry vectors nodes are done with.
struct Run {
    used: usize,
    max: usize,
    /// Emptied vectors for the next node that needs one: evaluations repeat the same nodes in the same order,
    /// so once each has grown to its size an evaluation allocates none.
    spare: Vec<Vec<Entry>>,
}

impl Run {
    fn add(&mut self, n: usize) -> Eval<()> {
        self.used = self.used.saturating_add(n);
        if self.used > self.max {
            return Err(Declined);
        }
        Ok(())
    }

    /// An empty vector, with room from an earlier use where there is one.
    fn vec(&mut self) -> Vec<Entry> {
        self.spare.pop().unwrap_or_default()
    }

    /// Takes back a vector a node has read.
    fn give(&mut self, mut v: Vec<Entry>) {
        v.clear();
        self.spare.push(v);
    }
}

/// A range function, resolved when the plan is compiled rather than by name at every window.
#[derive(Debug, Clone, Copy)]
enum RangeFn {
    /// `rate`, `increase` and `delta`: the engine's extrapolation, called directly so the store's facts can
    /// spare the counter-reset scan.
    Extrapolated { is_counter: bool, is_rate: bool },
    /// Any other parameterless range function, through the engine's `window_fn`.
    Other(&'static str),
}

#[derive(Debug, Clone)]
enum Node {
    Number(f64),
    Negate(Box<Node>),
    Instant(Box<Selector>),
    Range {
        func: RangeFn,
        /// Whether the result keeps the metric name (`last_over_time`, `first_over_time`).
        keep_name: bool,
        range: i64,
        selector: Box<Selector>,
        /// Scratch: a window without its staleness markers.
        fresh: Vec<Sample>,
    },
    Aggregate(Box<Aggregate>),
    Binary(Box<Binary>),
    HistogramQuantile(Box<HistogramQuantile>),
}

impl Node {
    /// Appends the selectors of this node and those below it, left to right.
    fn selectors<'a>(&'a self, out: &mut Vec<(&'a str, &'a [LabelMatcher])>) {
        match self {
            Node::Number(_) => {}
            Node::Negate(n) => n.selectors(out),
            Node::Instant(s) | Node::Range { selector: s, .. } => {
                out.push((s.name.as_str(), s.matchers.as_slice()))
            }
            Node::Aggregate(a) => a.input.selectors(out),
            Node::Binary(b) => {
                b.lhs.selectors(out);
                b.rhs.selectors(out);
            }
            Node::HistogramQuantile(h) => {
                h.q.selectors(out);
                h.input.selectors(out);
            }
        }
    }
}

#[derive(Debug, Clone)]
struct Aggregate {
    op: Simple,
    modifier: Option<LabelModifier>,
    input: Node,
    /// Input label id to group id.
    group_of: Vec<Option<u32>>,
    groups: LabelTable,
    /// Per group id: whether its label set has a metric name (to drop when an input asked to).
    named: Vec<bool>,
    /// Group id to its slot in the evaluation's output.
    slots: Slots,
    /// Scratch: the groups of an evaluation in order of first appearance (group, drop name, accumulator).
    accs: Vec<(u32, bool, Acc)>,
}

#[derive(Debug, Clone)]
struct Binary {
    op: Op,
    return_bool: bool,
    matching: Option<LabelModifier>,
    lhs: Node,
    rhs: Node,
    /// Matching signatures of left and right label ids.
    lsig: Vec<Option<u32>>,
    rsig: Vec<Option<u32>>,
    sigs: LabelTable,
    /// Output label id per (left id, right id).
    pairs: FxMap<(u32, u32), u32>,
    out: LabelTable,
    /// Per evaluation: the right-hand entry of each signature, the signatures matched on the left, and each
    /// output label id's slot.
    right: Slots,
    matched: Slots,
    out_slots: Slots,
    /// Scratch: output slots in creation order (label id, drop name, value once pushed).
    made: Vec<(u32, bool, Option<f64>)>,
}

#[derive(Debug, Clone)]
struct HistogramQuantile {
    q: Node,
    input: Node,
    /// Input label id to (group, upper bound), or `None` for a series without a usable `le`.
    member: Vec<Option<Option<(u32, f64)>>>,
    groups: LabelTable,
    /// Group id to its slot in the evaluation's output.
    slots: Slots,
    /// Scratch: the groups of an evaluation with their buckets; the first `used` count, the rest keep their
    /// vectors' room for later evaluations.
    buckets: Vec<(u32, Vec<Bucket>)>,
    used: usize,
}

/// An expression compiled for repeated instant evaluation over a [`KeyedStorage`].
#[derive(Debug, Clone)]
pub struct InstantPlan {
    root: Node,
    lookback_ms: i64,
    max_samples: usize,
    /// The root's (label id, drop name) to the id of its final label set.
    finals_of: FxMap<(u32, bool), u32>,
    finals: LabelTable,
    /// Entry vectors kept between evaluations (see [`Run`]).
    spare: Vec<Vec<Entry>>,
    /// Scratch: the result's (rank, final id, value).
    ranked: Vec<(u32, u32, f64)>,
}

impl InstantPlan {
    /// Compiles `expr`, or `None` when it has a shape the plan does not cover (then use the engine).
    pub fn compile(expr: &Expr, opts: &EngineOptions) -> Option<InstantPlan> {
        Some(InstantPlan {
            root: compile(expr)?,
            lookback_ms: opts.lookback_delta_ms,
            max_samples: opts.max_samples,
            finals_of: fx_map(),
            finals: LabelTable::default(),
            spare: Vec::new(),
            ranked: Vec::new(),
        })
    }

    /// Every vector selector the plan reads, as (metric name, matchers, the `__name__` matcher among them), in
    /// the order of the expression: what a store serving only this plan (and others it is told of) must hold.
    pub fn selectors(&self) -> Vec<(&str, &[LabelMatcher])> {
        let mut out = Vec::new();
        self.root.selectors(&mut out);
        out
    }

    /// Evaluates at `time_ms`: `Some` of exactly what the engine's instant evaluation returns, or `None` when
    /// the engine must be asked (it will report an error: duplicate series, ambiguous matching, a limit, a
    /// storage failure).
    pub fn eval(&mut self, storage: &dyn KeyedStorage, time_ms: i64) -> Option<Value> {
        let mut run = Run {
            used: 0,
            max: self.max_samples,
            spare: std::mem::take(&mut self.spare),
        };
        let cx = Cx {
            storage,
            t: time_ms,
            lookback: self.lookback_ms,
        };
        let v = self.root.eval(&cx, &mut run);
        let out = match v {
            Err(Declined) => None,
            Ok(Val::Scalar(s)) => Some(Value::Scalar(Sample::new(time_ms, s))),
            Ok(Val::Vector(entries)) => {
                let out = self.finish(&entries, time_ms);
                run.give(entries);
                out
            }
        };
        self.spare = run.spare;
        out
    }

    /// The root's entries as the engine's result: final label sets (names dropped where due), in label
    /// order; `None` where two share a label set (the engine's error).
    fn finish(&mut self, entries: &[Entry], time_ms: i64) -> Option<Value> {
        let root = &self.root;
        self.ranked.clear();
        for e in entries {
            let fid = match self.finals_of.get(&(e.id, e.drop)) {
                Some(&f) => f,
                None => {
                    let mut l = root.labels(e.id).clone();
                    if e.drop {
                        l.remove_metric_identity();
                    }
                    let f = self.finals.intern(l);
                    self.finals_of.insert((e.id, e.drop), f);
                    f
                }
            };
            self.ranked.push((0, fid, e.v));
        }
        // Ranked once every label set of this evaluation is interned (interning re-ranks).
        for r in &mut self.ranked {
            r.0 = self.finals.rank(r.1);
        }
        self.ranked.sort_unstable_by_key(|&(r, _, _)| r);
        // Two results with one label set once names are dropped: the engine's error.
        if self.ranked.windows(2).any(|w| w[0].1 == w[1].1) {
            return None;
        }
        Some(Value::Vector(
            self.ranked
                .iter()
                .map(|&(_, f, v)| (self.finals.get(f).clone(), Sample::new(time_ms, v)))
                .collect(),
        ))
    }
}

/// What every node's evaluation reads.
struct Cx<'s> {
    storage: &'s dyn KeyedStorage,
    t: i64,
    lookback: i64,
}

fn compile(e: &Expr) -> Option<Node> {
    Some(match e {
        Expr::NumberLiteral(n) => Node::Number(n.val),
        Expr::Paren(p) => compile(&p.expr)?,
        Expr::Unary(u) => Node::Negate(Box::new(compile(&u.expr)?)),
        Expr::VectorSelector(vs) => Node::Instant(Box::new(Selector::compile(vs)?)),
        Expr::Call(c) => compile_call(c)?,
        Expr::Aggregate(a) => compile_aggregate(a)?,
        Expr::Binary(b) => compile_binary(b)?,
        _ => return None,
    })
}

fn compile_call(c: &Call) -> Option<Node> {
    let name = c.func.name;
    let args: Vec<&Expr> = c.args.args.iter().map(|a| a.as_ref()).collect();
    if name == "histogram_quantile" {
        let [q, v] = args.as_slice() else {
            return None;
        };
        return Some(Node::HistogramQuantile(Box::new(HistogramQuantile {
            q: compile(q)?,
            input: compile(v)?,
            member: Vec::new(),
            groups: LabelTable::default(),
            slots: Slots::default(),
            buckets: Vec::new(),
            used: 0,
        })));
    }
    // A range function whose only argument is a range vector (those with parameters take more), computed
    // by the engine's `window_fn`.
    let name = *MATRIX_FUNCS.iter().find(|f| **f == name)?;
    let [Expr::MatrixSelector(MatrixSelector { vs, range })] = args.as_slice() else {
        return None;
    };
    let func = match name {
        "rate" => RangeFn::Extrapolated {
            is_counter: true,
            is_rate: true,
        },
        "increase" => RangeFn::Extrapolated {
            is_counter: true,
            is_rate: false,
        },
        "delta" => RangeFn::Extrapolated {
            is_counter: false,
            is_rate: false,
        },
        other => RangeFn::Other(other),
    };
    Some(Node::Range {
        func,
        keep_name: matches!(name, "last_over_time" | "first_over_time"),
        range: dur_ms(range),
        selector: Box::new(Selector::compile(vs)?),
        fresh: Vec::new(),
    })
}

fn compile_aggregate(a: &AggregateExpr) -> Option<Node> {
    let op = match a.op.to_string().to_lowercase().as_str() {
        "sum" => Simple::Sum,
        "avg" => Simple::Avg,
        "min" => Simple::Min,
        "max" => Simple::Max,
        "count" => Simple::Count,
        "group" => Simple::Group,
        "stddev" => Simple::Stddev,
        "stdvar" => Simple::Stdvar,
        _ => return None,
    };
    if a.param.is_some() {
        return None;
    }
    Some(Node::Aggregate(Box::new(Aggregate {
        op,
        modifier: a.modifier.clone(),
        input: compile(&a.expr)?,
        group_of: Vec::new(),
        groups: LabelTable::default(),
        named: Vec::new(),
        slots: Slots::default(),
        accs: Vec::new(),
    })))
}

fn compile_binary(b: &BinaryExpr) -> Option<Node> {
    let op = Op::parse(&b.op.to_string()).ok()?;
    if matches!(op, Op::And | Op::Or | Op::Unless) {
        return None;
    }
    let (return_bool, matching) = match &b.modifier {
        None => (false, None),
        Some(m) => {
            if !matches!(m.card, VectorMatchCardinality::OneToOne)
                || m.fill_values.lhs.is_some()
                || m.fill_values.rhs.is_some()
            {
                return None;
            }
            (m.return_bool, m.matching.clone())
        }
    };
    Some(Node::Binary(Box::new(Binary {
        op,
        return_bool,
        matching,
        lhs: compile(&b.lhs)?,
        rhs: compile(&b.rhs)?,
        lsig: Vec::new(),
        rsig: Vec::new(),
        sigs: LabelTable::default(),
        pairs: fx_map(),
        out: LabelTable::default(),
        right: Slots::default(),
        matched: Slots::default(),
        out_slots: Slots::default(),
        made: Vec::new(),
    })))
}

/// Grows a memo indexed by label id to cover `id`.
fn memo<T: Clone>(v: &mut Vec<Option<T>>, id: u32) -> &mut Option<T> {
    let i = id as usize;
    if v.len() <= i {
        v.resize(i + 1, None);
    }
    &mut v[i]
}

impl Node {
    /// Whether the node yields a scalar (its type is fixed by its shape, as the parser's type check says).
    fn is_scalar(&self) -> bool {
        match self {
            Node::Number(_) => true,
            Node::Negate(inner) => inner.is_scalar(),
            Node::Binary(b) => b.lhs.is_scalar() && b.rhs.is_scalar(),
            _ => false,
        }
    }

    /// The label set of one of this node's output ids.
    fn labels(&self, id: u32) -> &Labels {
        match self {
            Node::Number(_) => unreachable!("scalars have no labels"),
            Node::Negate(inner) => inner.labels(id),
            Node::Instant(s) | Node::Range { selector: s, .. } => s.table.get(id),
            Node::Aggregate(a) => a.groups.get(id),
            Node::Binary(b) => match b.vector_side() {
                Some(side) => side.labels(id),
                None => b.out.get(id),
            },
            Node::HistogramQuantile(h) => h.groups.get(id),
        }
    }

    fn eval(&mut self, cx: &Cx, run: &mut Run) -> Eval<Val> {
        let v = match self {
            Node::Number(n) => Val::Scalar(*n),
            Node::Negate(inner) => match inner.eval(cx, run)? {
                Val::Scalar(s) => Val::Scalar(-s),
                Val::Vector(mut v) => {
                    for e in &mut v {
                        e.v = -e.v;
                        e.drop = true;
                    }
                    Val::Vector(v)
                }
            },
            Node::Instant(s) => {
                let (mint, maxt) = (cx.t - cx.lookback + 1, cx.t);
                let mut out = run.vec();
                // The newest sample of the window decides, so a window told by its ends is enough.
                s.select(
                    cx.storage,
                    (mint, maxt),
                    run,
                    false,
                    Some(EndsRead::Newest),
                    &mut out,
                    |window| match window {
                        Window::Samples(samples, _) => lookup(samples, cx.t, cx.lookback),
                        Window::Ends { last, .. } => lookup(&[last], cx.t, cx.lookback),
                    },
                )?;
                Val::Vector(out)
            }
            Node::Range {
                func,
                keep_name,
                range,
                selector,
                fresh,
            } => {
                let (mint, maxt) = (cx.t - *range + 1, cx.t);
                let w = Win {
                    t: cx.t,
                    lo: cx.t - *range,
                    hi: cx.t,
                    range: *range,
                    p: [f64::NAN, f64::NAN],
                };
                let func = *func;
                let mut read = 0usize;
                let mut out = run.vec();
                // The extrapolating functions read only a window's ends when it has no marker and no decrease.
                let ends = matches!(func, RangeFn::Extrapolated { .. }).then_some(EndsRead::Change);
                selector.select(
                    cx.storage,
                    (mint, maxt),
                    run,
                    !*keep_name,
                    ends,
                    &mut out,
                    |window| {
                        let (samples, facts) = match window {
                            Window::Samples(samples, facts) => (samples, facts),
                            Window::Ends { first, last, len } => {
                                read += len;
                                let RangeFn::Extrapolated {
                                    is_counter,
                                    is_rate,
                                } = func
                                else {
                                    return None;
                                };
                                return extrapolated_rate_ends(
                                    first, last, len, &w, is_counter, is_rate,
                                );
                            }
                        };
                        // The engine drops staleness markers from range-vector samples.
                        let clean = facts.no_stale || !samples.iter().any(|p| is_stale_nan(p.v));
                        let samples: &[Sample] = if clean {
                            samples
                        } else {
                            fresh.clear();
                            fresh.extend(samples.iter().filter(|p| !is_stale_nan(p.v)));
                            fresh
                        };
                        read += samples.len();
                        if samples.is_empty() {
                            return None;
                        }
                        match func {
                            // Without a marker the window is the lent slice, so the store's `no_decrease`
                            // speaks of exactly these samples.
                            RangeFn::Extrapolated {
                                is_counter,
                                is_rate,
                            } => extrapolated_rate_scanning(
                                samples,
                                &w,
                                is_counter,
                                is_rate,
                                !(clean && facts.no_decrease),
                            ),
                            RangeFn::Other(name) => window_fn(name, samples, &w),
                        }
                    },
                )?;
                run.add(read / 4)?;
                Val::Vector(out)
            }
            Node::Aggregate(a) => a.eval(cx, run)?,
            Node::Binary(b) => b.eval(cx, run)?,
            Node::HistogramQuantile(h) => h.eval(cx, run)?,
        };
        if let Val::Vector(v) = &v {
            run.add(v.len())?;
        }
        Ok(v)
    }
}

impl Aggregate {
    fn eval(&mut self, cx: &Cx, run: &mut Run) -> Eval<Val> {
        let Val::Vector(input) = self.input.eval(cx, run)? else {
            return Err(Declined);
        };
        // Groups in order of first appearance, as the engine creates them.
        self.slots.begin();
        self.accs.clear();
        for e in &input {
            let g = match *memo(&mut self.group_of, e.id) {
                Some(g) => g,
                None => {
                    let l = group_spec(self.modifier.as_ref()).labels(self.input.labels(e.id));
                    let g = self.groups.intern(l);
                    if self.named.len() <= g as usize {
                        self.named.resize(g as usize + 1, false);
                    }
                    self.named[g as usize] = self.groups.get(g).get(METRIC_NAME).is_some();
                    *memo(&mut self.group_of, e.id) = Some(g);
                    g
                }
            };
            match self.slots.get(g) {
                Some(s) => {
                    let slot = &mut self.accs[s as usize];
                    slot.1 |= e.drop;
                    slot.2.add(self.op, e.v);
                }
                None => {
                    self.slots.set(g, self.accs.len() as u32);
                    self.accs.push((g, e.drop, Acc::first(self.op, e.v)));
                }
            }
        }
        run.give(input);
        let mut out = run.vec();
        out.extend(self.accs.iter_mut().map(|(g, drop, acc)| Entry {
            id: *g,
            v: acc.finish(self.op, f64::NAN),
            drop: *drop && self.named[*g as usize],
        }));
        Ok(Val::Vector(out))
    }
}

impl Binary {
    /// For vector-scalar operations, the vector operand (whose label ids the result keeps).
    fn vector_side(&self) -> Option<&Node> {
        match (self.lhs.is_scalar(), self.rhs.is_scalar()) {
            (false, true) => Some(&self.lhs),
            (true, false) => Some(&self.rhs),
            _ => None,
        }
    }

    fn eval(&mut self, cx: &Cx, run: &mut Run) -> Eval<Val> {
        let lhs = self.lhs.eval(cx, run)?;
        let rhs = self.rhs.eval(cx, run)?;
        let op = self.op;
        let cmp = op.is_comparison();
        match (lhs, rhs) {
            (Val::Scalar(l), Val::Scalar(r)) => {
                let (v, keep) = elem(op, l, r);
                Ok(Val::Scalar(if cmp {
                    if keep { 1.0 } else { 0.0 }
                } else {
                    v
                }))
            }
            (Val::Vector(v), Val::Scalar(s)) => self.with_scalar(v, s, false),
            (Val::Scalar(s), Val::Vector(v)) => self.with_scalar(v, s, true),
            (Val::Vector(l), Val::Vector(r)) => {
                let out = self.one_to_one(&l, &r, run);
                run.give(l);
                run.give(r);
                out
            }
        }
    }

    fn with_scalar(&self, mut v: Vec<Entry>, s: f64, swap: bool) -> Eval<Val> {
        let op = self.op;
        let cmp = op.is_comparison();
        v.retain_mut(|e| {
            let (l, r) = if swap { (s, e.v) } else { (e.v, s) };
            let (mut val, mut keep) = elem(op, l, r);
            if cmp && swap {
                val = r;
            }
            if self.return_bool {
                val = if keep { 1.0 } else { 0.0 };
                keep = true;
            }
            e.v = val;
            if !cmp || self.return_bool {
                e.drop = true;
            }
            keep
        });
        Ok(Val::Vector(v))
    }

    fn sig(&mut self, right: bool, id: u32) -> u32 {
        let (memo_vec, node) = if right {
            (&mut self.rsig, &self.rhs)
        } else {
            (&mut self.lsig, &self.lhs)
        };
        if let Some(s) = *memo(memo_vec, id) {
            return s;
        }
        let l = matching_spec(self.matching.as_ref()).labels(node.labels(id));
        let s = self.sigs.intern(l);
        *memo(memo_vec, id) = Some(s);
        s
    }

    fn one_to_one(&mut self, l: &[Entry], r: &[Entry], run: &mut Run) -> Eval<Val> {
        if self.vector_side().is_some() {
            return Err(Declined);
        }
        if l.is_empty() || r.is_empty() {
            return Ok(Val::Vector(run.vec()));
        }
        // The right-hand entry of each signature; a second one is the engine's many-to-many error.
        self.right.begin();
        for (i, e) in r.iter().enumerate() {
            let s = self.sig(true, e.id);
            if self.right.get(s).is_some() {
                return Err(Declined);
            }
            self.right.set(s, i as u32);
        }
        self.matched.begin();
        self.out_slots.begin();
        // Output slots in creation order: label id, drop flag, value once pushed.
        let mut slots = std::mem::take(&mut self.made);
        slots.clear();
        let out = self.match_left(l, r, &mut slots);
        let out = out.map(|()| {
            let mut out = run.vec();
            out.extend(
                slots
                    .iter()
                    .filter_map(|&(id, drop, v)| Some(Entry { id, v: v?, drop })),
            );
            Val::Vector(out)
        });
        self.made = slots;
        out
    }

    /// The left-hand side of [`Binary::one_to_one`] matched against the right-hand entries of `self.right`,
    /// into output `slots`.
    fn match_left(
        &mut self,
        l: &[Entry],
        r: &[Entry],
        slots: &mut Vec<(u32, bool, Option<f64>)>,
    ) -> Eval<()> {
        let op = self.op;
        let cmp = op.is_comparison();
        for e in l {
            let s = self.sig(false, e.id);
            let Some(ri) = self.right.get(s) else {
                continue;
            };
            let Entry { id: rid, v: rv, .. } = r[ri as usize];
            let (mut val, keep) = elem(op, e.v, rv);
            let drop = self.return_bool || !cmp || e.drop;
            let out = match self.pairs.get(&(e.id, rid)) {
                Some(&o) => o,
                None => {
                    let labels = result_labels(
                        self.lhs.labels(e.id),
                        self.rhs.labels(rid),
                        self.matching.as_ref(),
                        &VectorMatchCardinality::OneToOne,
                    );
                    let o = self.out.intern(labels);
                    self.pairs.insert((e.id, rid), o);
                    o
                }
            };
            let slot = match self.out_slots.get(out) {
                Some(i) => {
                    slots[i as usize].1 |= drop;
                    i as usize
                }
                None => {
                    self.out_slots.set(out, slots.len() as u32);
                    slots.push((out, drop, None));
                    slots.len() - 1
                }
            };
            // A second left-hand entry with this signature: the engine's many-to-one error.
            if self.matched.get(s).is_some() {
                return Err(Declined);
            }
            self.matched.set(s, 0);
            if self.return_bool {
                val = if keep { 1.0 } else { 0.0 };
            } else if !keep {
                continue;
            }
            if slots[slot].2.replace(val).is_some() {
                return Err(Declined);
            }
        }
        Ok(())
    }
}

impl HistogramQuantile {
    fn eval(&mut self, cx: &Cx, run: &mut Run) -> Eval<Val> {
        let Val::Scalar(q) = self.q.eval(cx, run)? else {
            return Err(Declined);
        };
        let Val::Vector(input) = self.input.eval(cx, run)? else {
            return Err(Declined);
        };
        self.slots.begin();
        self.used = 0;
        for e in &input {
            let member = match memo(&mut self.member, e.id) {
                Some(m) => *m,
                slot @ None => {
                    let labels = self.input.labels(e.id);
                    let m = labels.get("le").and_then(parse_le).map(|le| {
                        (
                            self.groups.intern(KeySpec::Without("le").labels(labels)),
                            le,
                        )
                    });
                    *slot = Some(m);
                    m
                }
            };
            let Some((g, le)) = member else {
                continue;
            };
            let bucket = Bucket {
                upper: le,
                count: e.v,
            };
            match self.slots.get(g) {
                Some(i) => self.buckets[i as usize].1.push(bucket),
                None => {
                    let i = self.used;
                    self.slots.set(g, i as u32);
                    self.used += 1;
                    if i == self.buckets.len() {
                        self.buckets.push((g, Vec::new()));
                    }
                    let (group, buckets) = &mut self.buckets[i];
                    *group = g;
                    buckets.clear();
                    buckets.push(bucket);
                }
            }
        }
        run.give(input);
        let mut out = run.vec();
        out.extend(
            self.buckets[..self.used]
                .iter_mut()
                .map(|(g, buckets)| Entry {
                    id: *g,
                    v: bucket_quantile(q, buckets),
                    drop: true,
                }),
        );
        Ok(Val::Vector(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{EngineOptions, parse_query};

    /// A store whose keys `0..n` hold one sample each at time 0; `labels(k)` gives key `k`'s label set.
    struct Keys {
        n: u64,
        labels: fn(u64) -> Labels,
    }

    impl KeyedStorage for Keys {
        fn select_keyed(
            &self,
            _name: &str,
            start_ms: i64,
            end_ms: i64,
            visit: &mut dyn FnMut(u64, &[Sample]),
        ) -> Result<(), StorageError> {
            if start_ms <= 0 && 0 <= end_ms {
                for k in 0..self.n {
                    visit(k, &[Sample::new(0, k as f64)]);
                }
            }
            Ok(())
        }

        fn labels_of(&self, key: u64) -> Option<Labels> {
            Some((self.labels)(key))
        }
    }

    fn plan(query: &str) -> InstantPlan {
        let expr = parse_query(query).expect("parses");
        InstantPlan::compile(&expr, &EngineOptions::default()).expect("planned")
    }

    #[test]
    fn a_plan_lists_its_selectors_left_to_right() {
        let p = plan(r#"histogram_quantile(0.9, sum by (le) (rate(b{job="x"}[5m]))) > 2"#);
        let names: Vec<&str> = p.selectors().iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["b"]);
        assert!(
            p.selectors()[0]
                .1
                .iter()
                .any(|m| m.name == "job" && m.value == "x")
        );
        let p = plan("sum(rate(a[5m])) / -sum(up) > m");
        let names: Vec<&str> = p.selectors().iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["a", "up", "m"]);
    }

    #[test]
    fn a_selector_declines_two_keys_with_one_label_set() {
        let distinct = Keys {
            n: 3,
            labels: |k| Labels::new([("__name__", "m".to_string()), ("k", k.to_string())]),
        };
        let Some(Value::Vector(v)) = plan("m").eval(&distinct, 0) else {
            panic!("distinct keys are answered");
        };
        assert_eq!(v.len(), 3);
        // Keys 1 and 2 share a label set: the engine must answer (it reports the duplicate series).
        let shared = Keys {
            n: 3,
            labels: |k| Labels::new([("__name__", "m".to_string()), ("k", k.min(1).to_string())]),
        };
        assert!(plan("m").eval(&shared, 0).is_none());
        assert!(plan("sum by (k) (m)").eval(&shared, 0).is_none());
    }

    /// Series of samples every 15 s from 0 to 30 minutes: key `k` is counter `c` (buckets `le` 0.1, 1 and
    /// +Inf, rising at different paces) for `k < 3`, gauge `g` (rising and falling) for `k = 3`, and a counter
    /// `r` that resets at 10 minutes for `k = 4`. With `ends`, windows are lent by their ends wherever
    /// [`KeyedStorage::select_ends`] allows.
    struct Sampled {
        ends: bool,
    }

    impl Sampled {
        fn samples(key: u64) -> Vec<Sample> {
            (0..=120)
                .map(|i| {
                    let x = i as f64;
                    let v = match key {
                        0..=2 => (x * (key + 1) as f64 * 1.5).floor(),
                        3 => 10.0 + (x / 7.0).sin() * 5.0,
                        _ => (x % 40.0) * 2.0,
                    };
                    Sample::new(i * 15_000, v)
                })
                .collect()
        }

        fn name_of(key: u64) -> &'static str {
            match key {
                0..=2 => "c",
                3 => "g",
                _ => "r",
            }
        }
    }

    impl KeyedStorage for Sampled {
        fn select_keyed(
            &self,
            name: &str,
            start_ms: i64,
            end_ms: i64,
            visit: &mut dyn FnMut(u64, &[Sample]),
        ) -> Result<(), StorageError> {
            for key in (0..5).filter(|&k| Sampled::name_of(k) == name) {
                let s: Vec<Sample> = Sampled::samples(key)
                    .into_iter()
                    .filter(|x| x.t >= start_ms && x.t <= end_ms)
                    .collect();
                if !s.is_empty() {
                    visit(key, &s);
                }
            }
            Ok(())
        }

        fn select_ends(
            &self,
            name: &str,
            start_ms: i64,
            end_ms: i64,
            reads: EndsRead,
            visit: &mut dyn FnMut(u64, Window<'_>),
        ) -> Result<(), StorageError> {
            self.select_windows(name, start_ms, end_ms, &mut |key, s, facts| {
                let told = self.ends
                    && match reads {
                        EndsRead::Newest => !s.iter().any(Sample::is_stale),
                        EndsRead::Change => {
                            WindowFacts::of(s)
                                == WindowFacts {
                                    no_stale: true,
                                    no_decrease: true,
                                }
                        }
                    };
                if told {
                    let (first, last) = (s[0], s[s.len() - 1]);
                    visit(
                        key,
                        Window::Ends {
                            first,
                            last,
                            len: s.len(),
                        },
                    );
                } else {
                    visit(key, Window::Samples(s, facts));
                }
            })
        }

        fn labels_of(&self, key: u64) -> Option<Labels> {
            let name = Sampled::name_of(key).to_string();
            Some(match key {
                0..=2 => Labels::new([
                    ("__name__", name),
                    ("le", ["0.1", "1", "+Inf"][key as usize].to_string()),
                ]),
                _ => Labels::new([("__name__", name)]),
            })
        }
    }

    /// A store that lends windows by their ends gives every plan the same answer to the bit as one that lends
    /// the samples: counters, a gauge read for its newest sample (and, falling, never lent by its ends for a
    /// change), and a counter whose windows with its reset are lent as samples.
    #[test]
    fn windows_lent_by_their_ends_answer_as_their_samples() {
        let queries = [
            "rate(c[5m])",
            "increase(c[2m])",
            "delta(g[5m])",
            "rate(g[5m])",
            "g",
            "c > 10",
            "rate(r[5m])",
            "increase(r[15m])",
            "histogram_quantile(0.9, sum by (le) (rate(c[5m])))",
            "sum(rate(c[1m])) / sum(increase(c[10m])) > bool 0.01",
        ];
        let (samples, ends) = (Sampled { ends: false }, Sampled { ends: true });
        for q in queries {
            let (mut a, mut b) = (plan(q), plan(q));
            for t in (0..=1_800_000).step_by(45_000) {
                let (x, y) = (a.eval(&samples, t), b.eval(&ends, t));
                assert!(x.is_some(), "{q} at {t}: not answered");
                assert_eq!(format!("{x:?}"), format!("{y:?}"), "{q} at {t}");
            }
        }
    }
}
