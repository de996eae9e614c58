//! Label sets and label matchers.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::hash::Hasher;
use std::sync::Arc;

use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::hash::{FxHasher, FxMap, FxSet, fx_map};

/// The reserved label holding the metric name.
pub const METRIC_NAME: &str = "__name__";

/// A sorted, deduplicated set of `(name, value)` label pairs, including `__name__`.
///
/// Labels with an empty value are never stored: Prometheus treats an empty value
/// exactly like an absent label, and keeping them would make equal sets compare unequal.
///
/// The pairs are shared behind an [`Arc`], so cloning a label set is a reference-count
/// increment; the modifying methods build a new set (sharing the strings).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Labels(Arc<[Label]>);

/// One `(name, value)` pair of a [`Labels`]; both strings are shared, so copying a pair (or
/// building a subset of a label set) never copies text.
pub type Label = (Arc<str>, Arc<str>);

impl Labels {
    /// The empty label set.
    pub fn empty() -> Self {
        Labels::default()
    }

    /// Builds a label set from arbitrary pairs; later duplicates win and empty values are dropped.
    pub fn new<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let v = normalised(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect::<Vec<(String, String)>>(),
        );
        if v.is_empty() {
            return Labels::empty();
        }
        let mut v = Some(v);
        let shared = STRINGS.try_with(|strings| {
            let mut strings = strings.borrow_mut();
            let v = v.take().unwrap_or_default();
            if strings.len() + 2 * v.len() > STRING_CACHE_CAP {
                strings.clear();
            }
            // An exact-size iterator collects straight into the shared slice.
            Labels(
                v.into_iter()
                    .map(|(k, val)| (shared_str(&mut strings, k), shared_str(&mut strings, val)))
                    .collect(),
            )
        });
        match (shared, v) {
            (Ok(l), _) => l,
            // The thread is shutting down: build without sharing.
            (Err(_), v) => Labels(
                v.unwrap_or_default()
                    .into_iter()
                    .map(|(k, val)| (Arc::from(k), Arc::from(val)))
                    .collect(),
            ),
        }
    }

    /// Builds a label set from shared pairs in any order, as [`Labels::new`] does (later duplicates win, empty
    /// values are dropped) but without copying or interning the strings: for a caller that keeps its own.
    pub fn from_pairs(v: Vec<Label>) -> Self {
        let v = normalised(v);
        if v.is_empty() {
            return Labels::empty();
        }
        Labels(v.into())
    }

    /// Wraps pairs already sorted by name, unique and without empty values.
    pub(crate) fn from_sorted(v: Vec<Label>) -> Self {
        debug_assert!(v.windows(2).all(|w| w[0].0 < w[1].0));
        debug_assert!(v.iter().all(|(_, val)| !val.is_empty()));
        if v.is_empty() {
            return Labels::empty();
        }
        Labels(v.into())
    }

    fn position(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| (**k).cmp(name))
    }

    /// Value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        // Equality mostly stops at the length, ordering needs the bytes: for the usual handful
        // of labels a scan beats a binary search.
        if self.0.len() <= 8 {
            return self.0.iter().find(|(k, _)| **k == *name).map(|(_, v)| &**v);
        }
        self.position(name).ok().map(|i| &*self.0[i].1)
    }

    /// Value of label `name`, or `""` when absent (the PromQL matching convention).
    pub fn get_or_empty(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }

    /// The metric name, if any.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// A copy without `__name__`.
    pub fn without_name(&self) -> Labels {
        let mut l = self.clone();
        l.remove(METRIC_NAME);
        l
    }

    /// Removes `__name__` and the `__type__`/`__unit__` metadata labels that Prometheus's
    /// type-and-unit feature attaches to it; they describe the metric name and go with it.
    pub(crate) fn remove_metric_identity(&mut self) {
        if self.0.iter().any(|(k, _)| is_metric_identity(k)) {
            *self = self.filtered(|k| !is_metric_identity(k));
        }
    }

    fn filtered(&self, keep: impl Fn(&str) -> bool) -> Labels {
        Labels::from_sorted(self.0.iter().filter(|(k, _)| keep(k)).cloned().collect())
    }

    /// Sets a label; an empty value removes it.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.position(name) {
            Ok(i) => {
                if value.is_empty() {
                    self.remove(name);
                } else if &*self.0[i].1 != value {
                    let mut v = self.0.to_vec();
                    v[i].1 = value.into();
                    *self = Labels::from_sorted(v);
                }
            }
            Err(i) => {
                if !value.is_empty() {
                    let mut v = Vec::with_capacity(self.0.len() + 1);
                    v.extend_from_slice(&self.0[..i]);
                    v.push((name.into(), value.into()));
                    v.extend_from_slice(&self.0[i..]);
                    *self = Labels::from_sorted(v);
                }
            }
        }
    }

    /// Removes a label if present.
    pub fn remove(&mut self, name: &str) {
        if self.position(name).is_ok() {
            *self = self.filtered(|k| k != name);
        }
    }

    /// Iterates `(name, value)` pairs in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (&**k, &**v))
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The underlying sorted pairs.
    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }

    /// Keeps only the labels whose names are listed.
    pub fn keep_only(&self, names: &[String]) -> Labels {
        self.filtered(|k| names.iter().any(|n| n == k))
    }

    /// Drops the labels whose names are listed.
    pub fn drop_names(&self, names: &[String]) -> Labels {
        self.filtered(|k| !names.iter().any(|n| n == k))
    }

    /// Prometheus's `Labels.Hash()`: xxhash64 over `name 0xff value 0xff ...`.
    ///
    /// `limit_ratio` depends on this exact value to select the same series as Prometheus.
    pub fn prometheus_hash(&self) -> u64 {
        let mut buf = Vec::with_capacity(64);
        for (k, v) in self.0.iter() {
            buf.extend_from_slice(k.as_bytes());
            buf.push(0xff);
            buf.extend_from_slice(v.as_bytes());
            buf.push(0xff);
        }
        xxhash_rust::xxh64::xxh64(&buf, 0)
    }
}

fn is_metric_identity(k: &str) -> bool {
    k == METRIC_NAME || k == "__type__" || k == "__unit__"
}

/// Which labels of a series form a grouping or matching key.
#[derive(Clone, Copy, Debug)]
pub(crate) enum KeySpec<'a> {
    /// No labels at all (aggregation without `by`/`without`).
    Nothing,
    /// Only the listed labels (`by (...)`, `on (...)`).
    Only(&'a [String]),
    /// All but the listed labels and the metric identity (`without (...)`, `ignoring (...)`;
    /// an empty list is plain one-to-one matching).
    AllBut(&'a [String]),
    /// All labels but one, keeping the metric identity (a histogram's buckets without `le`).
    Without(&'a str),
}

impl KeySpec<'_> {
    #[inline]
    fn keeps(&self, k: &str) -> bool {
        match self {
            KeySpec::Nothing => false,
            KeySpec::Only(names) => names.iter().any(|n| n == k),
            KeySpec::AllBut(names) => !is_metric_identity(k) && !names.iter().any(|n| n == k),
            KeySpec::Without(name) => k != *name,
        }
    }

    /// The key pairs of `l`, in name order.
    #[inline]
    pub(crate) fn pairs<'l>(&self, l: &'l Labels) -> impl Iterator<Item = &'l Label> + use<'l, '_> {
        l.0.iter().filter(move |(k, _)| self.keeps(k))
    }

    /// The key of `l` as a label set.
    pub(crate) fn labels(&self, l: &Labels) -> Labels {
        match self {
            KeySpec::Nothing => Labels::empty(),
            _ if l.0.iter().all(|(k, _)| self.keeps(k)) => l.clone(),
            _ => Labels::from_sorted(self.pairs(l).cloned().collect()),
        }
    }
}

/// Interns the keys of label sets under a [`KeySpec`] into dense ids (in order of first
/// appearance) without building a label set for keys already seen.
pub(crate) struct KeyInterner<'a> {
    spec: KeySpec<'a>,
    /// Key hash to the first id with that hash; `next` chains ids sharing a hash.
    first: FxMap<u64, u32>,
    next: Vec<u32>,
    hashes: Vec<u64>,
    /// The key label sets, indexed by id.
    pub keys: Vec<Labels>,
    /// Indices of the key pairs of the label set being looked up.
    scratch: Vec<u32>,
    /// Per label position, the last name seen there and whether the spec keeps it: series
    /// being grouped usually share their label names (same strings, same positions), so one
    /// pointer comparison answers. Holding the `Arc`s keeps their addresses from being reused.
    seen_names: Vec<(Arc<str>, bool)>,
}

const NO_ID: u32 = u32::MAX;

impl<'a> KeyInterner<'a> {
    /// An interner of keys under `spec` expecting up to `n` distinct keys.
    pub fn with_capacity(spec: KeySpec<'a>, n: usize) -> Self {
        let mut first = fx_map();
        first.reserve(n);
        KeyInterner {
            spec,
            first,
            next: Vec::with_capacity(n),
            hashes: Vec::with_capacity(n),
            keys: Vec::with_capacity(n),
            scratch: Vec::new(),
            seen_names: Vec::new(),
        }
    }

    /// Number of distinct keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The id of `l`'s key, and whether it is new.
    pub fn id(&mut self, l: &Labels) -> (usize, bool) {
        let spec = self.spec;
        self.scratch.clear();
        let mut h = FxHasher::default();
        for (i, (k, v)) in l.0.iter().enumerate() {
            let keep = match self.seen_names.get(i) {
                Some((n, keep)) if Arc::ptr_eq(n, k) => *keep,
                _ => {
                    let keep = spec.keeps(k);
                    let entry = (Arc::clone(k), keep);
                    if i < self.seen_names.len() {
                        self.seen_names[i] = entry;
                    } else {
                        self.seen_names.push(entry);
                    }
                    keep
                }
            };
            if keep {
                self.scratch.push(i as u32);
                h.write(k.as_bytes());
                h.write_u8(0xff);
                h.write(v.as_bytes());
                h.write_u8(0xff);
            }
        }
        let hash = h.finish();
        let pairs = &l.0;
        let mut cur = self.first.get(&hash).copied().unwrap_or(NO_ID);
        let head = cur;
        while cur != NO_ID {
            let i = cur as usize;
            if self.hashes[i] == hash
                && self.keys[i]
                    .0
                    .iter()
                    .eq(self.scratch.iter().map(|&j| &pairs[j as usize]))
            {
                return (i, false);
            }
            cur = self.next[i];
        }
        let id = self.keys.len();
        let key = if self.scratch.len() == l.len() {
            l.clone()
        } else if self.scratch.is_empty() {
            Labels::empty()
        } else {
            Labels(
                self.scratch
                    .iter()
                    .map(|&j| pairs[j as usize].clone())
                    .collect(),
            )
        };
        self.keys.push(key);
        self.hashes.push(hash);
        self.next.push(head);
        self.first.insert(hash, id as u32);
        (id, true)
    }
}

/// Pairs sorted by name, the last of equal names kept, those with an empty value dropped: the label-set rules of
/// [`Labels::new`] over any string type.
fn normalised<S: Ord + std::ops::Deref<Target = str>>(mut v: Vec<(S, S)>) -> Vec<(S, S)> {
    if !v.windows(2).all(|w| w[0].0 < w[1].0) {
        // Stable, so among equal names the last one given stays last.
        v.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(S, S)> = Vec::with_capacity(v.len());
        for p in v {
            match out.last_mut() {
                Some(last) if last.0 == p.0 => *last = p,
                _ => out.push(p),
            }
        }
        v = out;
    }
    v.retain(|(_, val)| !val.is_empty());
    v
}

/// Orders two shared strings, equal without reading them when they are the same allocation.
#[inline]
fn cmp_shared(a: &Arc<str>, b: &Arc<str>) -> Ordering {
    if Arc::ptr_eq(a, b) {
        Ordering::Equal
    } else {
        (**a).cmp(&**b)
    }
}

impl Ord for Labels {
    /// Lexicographic over the `(name, value)` pairs, then by length.
    fn cmp(&self, other: &Self) -> Ordering {
        if Arc::ptr_eq(&self.0, &other.0) {
            return Ordering::Equal;
        }
        for (a, b) in self.0.iter().zip(other.0.iter()) {
            let o = cmp_shared(&a.0, &b.0).then_with(|| cmp_shared(&a.1, &b.1));
            if o != Ordering::Equal {
                return o;
            }
        }
        self.0.len().cmp(&other.0.len())
    }
}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.metric_name();
        if let Some(n) = name {
            f.write_str(n)?;
        }
        let rest: Vec<_> = self.0.iter().filter(|(k, _)| &**k != METRIC_NAME).collect();
        if rest.is_empty() && name.is_some() {
            return Ok(());
        }
        f.write_str("{")?;
        for (i, (k, v)) in rest.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{k}=\"{}\"", escape_label_value(v))?;
        }
        f.write_str("}")
    }
}

fn escape_label_value(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0.iter() {
            m.serialize_entry(&**k, &**v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let m: BTreeMap<String, String> = BTreeMap::deserialize(deserializer)?;
        Ok(Labels::new(m))
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Labels {
    fn from_iter<T: IntoIterator<Item = (K, V)>>(iter: T) -> Self {
        Labels::new(iter)
    }
}

/// How a [`LabelMatcher`] compares a label value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MatchOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `=~` (fully anchored regex)
    Re,
    /// `!~` (fully anchored regex)
    Nre,
}

impl fmt::Display for MatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MatchOp::Eq => "=",
            MatchOp::Ne => "!=",
            MatchOp::Re => "=~",
            MatchOp::Nre => "!~",
        })
    }
}

/// A label matcher with its regex precompiled, independent of the parser's types so that
/// storage implementations only depend on this crate.
#[derive(Clone, Debug)]
pub struct LabelMatcher {
    /// Label name.
    pub name: String,
    /// Comparison.
    pub op: MatchOp,
    /// Literal value or (unanchored) regex source as written in the query.
    pub value: String,
    regex: Option<Arc<Regex>>,
}

impl PartialEq for LabelMatcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl LabelMatcher {
    /// Creates a matcher; regex matchers are compiled fully anchored (`^(?s:...)$`), like
    /// Prometheus, so `job=~"api"` does not match `"api-server"`.
    pub fn new(
        name: impl Into<String>,
        op: MatchOp,
        value: impl Into<String>,
    ) -> Result<Self, regex::Error> {
        let value = value.into();
        let regex = match op {
            MatchOp::Re | MatchOp::Nre => Some(compile_anchored_shared(&value)?),
            _ => None,
        };
        Ok(LabelMatcher {
            name: name.into(),
            op,
            value,
            regex,
        })
    }

    /// `name="value"`.
    pub fn eq(name: impl Into<String>, value: impl Into<String>) -> Self {
        LabelMatcher {
            name: name.into(),
            op: MatchOp::Eq,
            value: value.into(),
            regex: None,
        }
    }

    /// Whether a label value (`""` for an absent label) satisfies the matcher.
    pub fn matches(&self, v: &str) -> bool {
        match self.op {
            MatchOp::Eq => self.value == v,
            MatchOp::Ne => self.value != v,
            MatchOp::Re => self.regex.as_ref().is_some_and(|r| r.is_match(v)),
            MatchOp::Nre => !self.regex.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }

    /// Whether a label set satisfies the matcher (absent labels count as `""`).
    pub fn matches_labels(&self, l: &Labels) -> bool {
        self.matches(l.get_or_empty(&self.name))
    }
}

impl fmt::Display for LabelMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}\"{}\"",
            self.name,
            self.op,
            escape_label_value(&self.value)
        )
    }
}

/// Compiles a PromQL regex fully anchored. Go's RE2 accepts a literal `{` that does not start a
/// repetition (e.g. `a{b}`), Rust's regex does not, so on failure such braces are escaped.
pub(crate) fn compile_anchored(src: &str) -> Result<Regex, regex::Error> {
    let re = format!("^(?s:{src})$");
    match Regex::new(&re) {
        Ok(r) => Ok(r),
        Err(e) => Regex::new(&escape_non_repeat_braces(&re)).map_err(|_| e),
    }
}

/// How many label strings each thread shares; the set is emptied when it would grow past.
const STRING_CACHE_CAP: usize = 8192;

thread_local! {
    /// Label names and values recently turned into label sets. Storages that build their series'
    /// label sets on every selection (rendering them from other state) then hand the engine
    /// shared strings: one allocation per distinct string rather than per use, and the
    /// engine's pointer-equality shortcuts apply.
    static STRINGS: RefCell<FxSet<Arc<str>>> = RefCell::new(FxSet::default());
}

/// The shared copy of `s` in `strings`, added if new.
fn shared_str(strings: &mut FxSet<Arc<str>>, s: String) -> Arc<str> {
    if let Some(x) = strings.get(s.as_str()) {
        return Arc::clone(x);
    }
    let a: Arc<str> = Arc::from(s);
    strings.insert(Arc::clone(&a));
    a
}

/// How many compiled regexes each thread keeps; the cache is emptied when it would grow past.
const REGEX_CACHE_CAP: usize = 256;

thread_local! {
    /// Compiled anchored regexes by source. Rules and dashboards evaluate the same few
    /// selectors over and over, and compiling a regex costs far more than evaluating a small
    /// query; the compiled automaton is a pure function of the source, so sharing it cannot
    /// change any result.
    static REGEX_CACHE: RefCell<FxMap<String, Arc<Regex>>> = RefCell::new(fx_map());
}

/// [`compile_anchored`], memoized per thread. Sharing one `Regex` (rather than cloning it) also
/// shares its matching caches, which are costly to build.
pub(crate) fn compile_anchored_shared(src: &str) -> Result<Arc<Regex>, regex::Error> {
    if let Ok(Some(r)) = REGEX_CACHE.try_with(|c| c.borrow().get(src).cloned()) {
        return Ok(r);
    }
    let r = Arc::new(compile_anchored(src)?);
    // Unavailable only while the thread shuts down; the regex is then simply not cached.
    let _ = REGEX_CACHE.try_with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= REGEX_CACHE_CAP {
            c.clear();
        }
        c.insert(src.to_string(), Arc::clone(&r));
    });
    Ok(r)
}

fn escape_non_repeat_braces(re: &str) -> String {
    let chars: Vec<char> = re.chars().collect();
    let mut out = String::with_capacity(re.len() + 4);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            out.push(c);
            if i + 1 < chars.len() {
                out.push(chars[i + 1]);
            }
            i += 2;
            continue;
        }
        if c == '{' {
            // A valid repetition is `{n}`, `{n,}` or `{n,m}`.
            let mut j = i + 1;
            let mut digits = 0;
            let mut comma = false;
            let mut ok = false;
            while j < chars.len() {
                let d = chars[j];
                if d.is_ascii_digit() {
                    digits += 1;
                } else if d == ',' && !comma && digits > 0 {
                    comma = true;
                } else if d == '}' {
                    ok = digits > 0;
                    break;
                } else {
                    break;
                }
                j += 1;
            }
            if !ok {
                out.push('\\');
            }
            out.push(c);
            i += 1;
            continue;
        }
        if c == '}' {
            // Only escape a closing brace that has no matching repetition opener; a cheap
            // heuristic is enough because this path only runs after a compile failure.
            let prev_open = out.rfind('{');
            let escaped_open = out.rfind("\\{");
            let is_repeat_close = match (prev_open, escaped_open) {
                (Some(p), Some(e)) => p != e + 1,
                (Some(_), None) => true,
                _ => false,
            };
            if !is_repeat_close {
                out.push('\\');
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_sorted_and_deduped() {
        let l = Labels::new([("b", "2"), ("a", "1"), ("b", "3"), ("c", "")]);
        assert_eq!(l.as_slice().len(), 2);
        assert_eq!(l.get("b"), Some("3"));
        assert_eq!(l.to_string(), "{a=\"1\", b=\"3\"}");
        let n = Labels::new([("__name__", "up"), ("job", "x")]);
        assert_eq!(n.to_string(), "up{job=\"x\"}");
        assert_eq!(
            serde_json::to_string(&n).unwrap(),
            r#"{"__name__":"up","job":"x"}"#
        );
    }

    #[test]
    fn later_pairs_win_and_order_is_by_pairs() {
        assert!(Labels::new([("a", "1"), ("a", "")]).is_empty());
        assert_eq!(Labels::new([("a", ""), ("a", "2")]).get("a"), Some("2"));
        let mut sets = [
            Labels::new([("a", "2")]),
            Labels::new([("a", "1"), ("b", "1")]),
            Labels::new([("a", "1")]),
            Labels::empty(),
        ];
        sets.sort();
        let shown: Vec<String> = sets.iter().map(|l| l.to_string()).collect();
        assert_eq!(
            shown,
            ["{}", "{a=\"1\"}", "{a=\"1\", b=\"1\"}", "{a=\"2\"}"]
        );
        let mut l = Labels::new([("b", "1")]);
        l.set("a", "0");
        l.set("c", "2");
        l.set("b", "");
        assert_eq!(l.to_string(), "{a=\"0\", c=\"2\"}");
    }

    #[test]
    fn key_interner_groups_by_spec() {
        let by = vec!["job".to_string()];
        let mut k = KeyInterner::with_capacity(KeySpec::Only(&by), 4);
        let a = Labels::new([("__name__", "x"), ("job", "a"), ("i", "1")]);
        let b = Labels::new([("__name__", "y"), ("job", "a"), ("i", "2")]);
        let c = Labels::new([("job", "b")]);
        assert_eq!(k.id(&a), (0, true));
        assert_eq!(k.id(&b), (0, false));
        assert_eq!(k.id(&c), (1, true));
        assert_eq!(k.keys[0].to_string(), "{job=\"a\"}");
        let mut all = KeyInterner::with_capacity(KeySpec::AllBut(&[]), 4);
        assert_eq!(all.id(&a), (0, true));
        assert_eq!(all.id(&Labels::new([("i", "1"), ("job", "a")])), (0, false));
        assert_eq!(all.keys[0].metric_name(), None);
    }

    #[test]
    fn regex_is_anchored() {
        let m = LabelMatcher::new("job", MatchOp::Re, "api").unwrap();
        assert!(m.matches("api"));
        assert!(!m.matches("api-server"));
        let m = LabelMatcher::new("job", MatchOp::Re, "a{b}").unwrap();
        assert!(m.matches("a{b}"));
    }
}
