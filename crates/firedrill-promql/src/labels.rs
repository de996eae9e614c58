//! Label sets and label matchers.

use std::collections::BTreeMap;
use std::fmt;

use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The reserved label holding the metric name.
pub const METRIC_NAME: &str = "__name__";

/// A sorted, deduplicated set of `(name, value)` label pairs, including `__name__`.
///
/// Labels with an empty value are never stored: Prometheus treats an empty value
/// exactly like an absent label, and keeping them would make equal sets compare unequal.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    /// The empty label set.
    pub fn empty() -> Self {
        Labels(Vec::new())
    }

    /// Builds a label set from arbitrary pairs; later duplicates win and empty values are dropped.
    pub fn new<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut map: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in pairs {
            let v = v.into();
            let k = k.into();
            if v.is_empty() {
                map.remove(&k);
            } else {
                map.insert(k, v);
            }
        }
        Labels(map.into_iter().collect())
    }

    /// Value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].1.as_str())
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
        self.0
            .retain(|(k, _)| k != METRIC_NAME && k != "__type__" && k != "__unit__");
    }

    /// Sets a label; an empty value removes it.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.0.binary_search_by(|(k, _)| k.as_str().cmp(name)) {
            Ok(i) => {
                if value.is_empty() {
                    self.0.remove(i);
                } else {
                    self.0[i].1 = value.to_string();
                }
            }
            Err(i) => {
                if !value.is_empty() {
                    self.0.insert(i, (name.to_string(), value.to_string()));
                }
            }
        }
    }

    /// Removes a label if present.
    pub fn remove(&mut self, name: &str) {
        if let Ok(i) = self.0.binary_search_by(|(k, _)| k.as_str().cmp(name)) {
            self.0.remove(i);
        }
    }

    /// Iterates `(name, value)` pairs in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
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
    pub fn as_slice(&self) -> &[(String, String)] {
        &self.0
    }

    /// Keeps only the labels whose names are listed.
    pub fn keep_only(&self, names: &[String]) -> Labels {
        Labels(
            self.0
                .iter()
                .filter(|(k, _)| names.iter().any(|n| n == k))
                .cloned()
                .collect(),
        )
    }

    /// Drops the labels whose names are listed.
    pub fn drop_names(&self, names: &[String]) -> Labels {
        Labels(
            self.0
                .iter()
                .filter(|(k, _)| !names.iter().any(|n| n == k))
                .cloned()
                .collect(),
        )
    }

    /// Prometheus's `Labels.Hash()`: xxhash64 over `name 0xff value 0xff ...`.
    ///
    /// `limit_ratio` depends on this exact value to select the same series as Prometheus.
    pub fn prometheus_hash(&self) -> u64 {
        let mut buf = Vec::with_capacity(64);
        for (k, v) in &self.0 {
            buf.extend_from_slice(k.as_bytes());
            buf.push(0xff);
            buf.extend_from_slice(v.as_bytes());
            buf.push(0xff);
        }
        xxhash_rust::xxh64::xxh64(&buf, 0)
    }
}

impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.metric_name();
        if let Some(n) = name {
            f.write_str(n)?;
        }
        let rest: Vec<_> = self.0.iter().filter(|(k, _)| k != METRIC_NAME).collect();
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
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
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
    regex: Option<Regex>,
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
            MatchOp::Re | MatchOp::Nre => Some(compile_anchored(&value)?),
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
    fn regex_is_anchored() {
        let m = LabelMatcher::new("job", MatchOp::Re, "api").unwrap();
        assert!(m.matches("api"));
        assert!(!m.matches("api-server"));
        let m = LabelMatcher::new("job", MatchOp::Re, "a{b}").unwrap();
        assert!(m.matches("a{b}"));
    }
}
