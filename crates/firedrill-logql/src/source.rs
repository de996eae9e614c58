//! The data seam between the engine and whatever stores log lines.

use std::collections::BTreeMap;
use std::fmt;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::error::SourceError;

/// One log line with its timestamp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Unix epoch timestamp in nanoseconds.
    pub ts_ns: i64,
    /// The raw log line.
    pub line: String,
}

/// A set of entries sharing one label set, ordered by ascending timestamp.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LogStream {
    /// Stream labels (sorted by name thanks to the `BTreeMap`).
    pub labels: BTreeMap<String, String>,
    /// Entries in ascending timestamp order.
    pub entries: Vec<LogEntry>,
}

/// Label matching operator of a stream selector or label matcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

impl MatchOp {
    /// The LogQL spelling of the operator.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Ne => "!=",
            Self::Re => "=~",
            Self::Nre => "!~",
        }
    }
}

impl fmt::Display for MatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Regex size cap: user-supplied patterns must not be able to make compilation blow up.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Compiles a regex the way Loki does for label matchers: anchored at both ends.
pub(crate) fn compile_anchored(pattern: &str) -> Result<Regex, regex::Error> {
    compile_regex(&format!("^(?:{pattern})$"))
}

/// Compiles an unanchored regex with the crate's size limits.
pub(crate) fn compile_regex(pattern: &str) -> Result<Regex, regex::Error> {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
}

/// A label matcher such as `service="api"` or `level=~"warn|error"`.
///
/// A missing label matches as the empty string, as in Loki and Prometheus.
#[derive(Debug, Clone)]
pub struct StreamMatcher {
    /// Label name.
    pub name: String,
    /// Operator.
    pub op: MatchOp,
    /// Right-hand side (a literal or a regex source).
    pub value: String,
    re: Option<Regex>,
}

impl PartialEq for StreamMatcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl StreamMatcher {
    /// Builds a matcher, compiling the fully anchored regex for `=~` / `!~`.
    pub fn new(
        name: impl Into<String>,
        op: MatchOp,
        value: impl Into<String>,
    ) -> Result<Self, regex::Error> {
        let value = value.into();
        let re = match op {
            MatchOp::Re | MatchOp::Nre => Some(compile_anchored(&value)?),
            MatchOp::Eq | MatchOp::Ne => None,
        };
        Ok(Self {
            name: name.into(),
            op,
            value,
            re,
        })
    }

    /// Shorthand for an `=` matcher (never fails).
    pub fn eq(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            op: MatchOp::Eq,
            value: value.into(),
            re: None,
        }
    }

    /// Whether a label value (use `""` for a missing label) satisfies the matcher.
    pub fn matches(&self, value: &str) -> bool {
        match (self.op, &self.re) {
            (MatchOp::Eq, _) => value == self.value,
            (MatchOp::Ne, _) => value != self.value,
            (MatchOp::Re, Some(re)) => re.is_match(value),
            (MatchOp::Nre, Some(re)) => !re.is_match(value),
            // Unreachable by construction; treat as non-matching rather than panic.
            (MatchOp::Re | MatchOp::Nre, None) => false,
        }
    }

    /// Whether the label set satisfies the matcher.
    pub fn matches_labels(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches(labels.get(&self.name).map_or("", String::as_str))
    }
}

impl fmt::Display for StreamMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}{}",
            self.name,
            self.op,
            crate::ast::quote(&self.value)
        )
    }
}

/// Whether every matcher accepts the label set.
pub fn matches_all(matchers: &[StreamMatcher], labels: &BTreeMap<String, String>) -> bool {
    matchers.iter().all(|m| m.matches_labels(labels))
}

/// Where the engine reads logs from. The simulator implements this over its world state.
pub trait LogSource {
    /// Streams matching all `matchers`, restricted to entries with `start_ns <= ts < end_ns`,
    /// each stream's entries sorted ascending. Streams with no entries in range may be omitted.
    fn select(
        &self,
        matchers: &[StreamMatcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<LogStream>, SourceError>;

    /// Label names of streams with entries in `[start_ns, end_ns)`, sorted and deduplicated.
    fn label_names(&self, start_ns: i64, end_ns: i64) -> Result<Vec<String>, SourceError>;

    /// Values of label `name` among streams matching `matchers` (all streams when empty)
    /// with entries in `[start_ns, end_ns)`, sorted and deduplicated.
    fn label_values(
        &self,
        name: &str,
        matchers: &[StreamMatcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<String>, SourceError>;
}

/// An in-memory [`LogSource`], for tests and small fixtures.
#[derive(Debug, Clone, Default)]
pub struct MemLogSource {
    streams: BTreeMap<BTreeMap<String, String>, Vec<LogEntry>>,
}

impl MemLogSource {
    /// An empty source.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one line to the stream with these labels, keeping timestamps sorted.
    pub fn push(&mut self, labels: &BTreeMap<String, String>, ts_ns: i64, line: impl Into<String>) {
        let entries = self.streams.entry(labels.clone()).or_default();
        let entry = LogEntry {
            ts_ns,
            line: line.into(),
        };
        // Insert after equal timestamps so same-time lines keep their push order.
        let idx = entries.partition_point(|e| e.ts_ns <= ts_ns);
        entries.insert(idx, entry);
    }

    /// Convenience: labels given as pairs.
    pub fn push_kv(&mut self, labels: &[(&str, &str)], ts_ns: i64, line: impl Into<String>) {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.push(&labels, ts_ns, line);
    }

    /// Number of entries over all streams.
    pub fn len(&self) -> usize {
        self.streams.values().map(Vec::len).sum()
    }

    /// Whether the source holds no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn in_range(entries: &[LogEntry], start_ns: i64, end_ns: i64) -> &[LogEntry] {
        let lo = entries.partition_point(|e| e.ts_ns < start_ns);
        let hi = entries.partition_point(|e| e.ts_ns < end_ns);
        entries.get(lo..hi.max(lo)).unwrap_or(&[])
    }
}

impl LogSource for MemLogSource {
    fn select(
        &self,
        matchers: &[StreamMatcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<LogStream>, SourceError> {
        Ok(self
            .streams
            .iter()
            .filter(|(labels, _)| matches_all(matchers, labels))
            .filter_map(|(labels, entries)| {
                let slice = Self::in_range(entries, start_ns, end_ns);
                (!slice.is_empty()).then(|| LogStream {
                    labels: labels.clone(),
                    entries: slice.to_vec(),
                })
            })
            .collect())
    }

    fn label_names(&self, start_ns: i64, end_ns: i64) -> Result<Vec<String>, SourceError> {
        let mut names: Vec<String> = self
            .streams
            .iter()
            .filter(|(_, e)| !Self::in_range(e, start_ns, end_ns).is_empty())
            .flat_map(|(l, _)| l.keys().cloned())
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[StreamMatcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<String>, SourceError> {
        let mut values: Vec<String> = self
            .streams
            .iter()
            .filter(|(l, e)| {
                matches_all(matchers, l) && !Self::in_range(e, start_ns, end_ns).is_empty()
            })
            .filter_map(|(l, _)| l.get(name).cloned())
            .collect();
        values.sort();
        values.dedup();
        Ok(values)
    }
}
