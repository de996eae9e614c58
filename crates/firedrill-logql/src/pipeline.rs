//! Executes pipeline stages on one log entry, following Loki's semantics: parsers add labels
//! (suffixing `_extracted` on collisions with stream labels), failures set `__error__` rather than
//! dropping the line, and label filters on unparsable values keep the line and flag it.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::Value;

use crate::ast::{
    JsonParam, JsonPathSeg, LabelFilterExpr, LabelFmt, LabelSel, LineFilter, LineFilterOp,
    PatternNode, Stage,
};
use crate::template::Ctx;
use crate::units::{parse_bytes, parse_duration_ns};

/// Name of the label Loki uses to flag processing errors.
pub const ERROR_LABEL: &str = "__error__";
/// Name of the label Loki uses for error details.
pub const ERROR_DETAILS_LABEL: &str = "__error_details__";

/// Labels as they evolve through a pipeline: borrowed from the stream until a stage changes them.
pub(crate) type Labels<'a> = Cow<'a, BTreeMap<String, String>>;

/// One entry in flight through a pipeline.
pub(crate) struct Entry<'a> {
    pub base: &'a BTreeMap<String, String>,
    pub labels: Labels<'a>,
    pub line: Cow<'a, str>,
    pub ts_ns: i64,
}

impl<'a> Entry<'a> {
    pub(crate) fn new(base: &'a BTreeMap<String, String>, line: &'a str, ts_ns: i64) -> Self {
        Self {
            base,
            labels: Cow::Borrowed(base),
            line: Cow::Borrowed(line),
            ts_ns,
        }
    }

    pub(crate) fn set_error(&mut self, kind: &str, details: impl Into<String>) {
        if !self.labels.contains_key(ERROR_LABEL) {
            let l = self.labels.to_mut();
            l.insert(ERROR_LABEL.to_owned(), kind.to_owned());
            l.insert(ERROR_DETAILS_LABEL.to_owned(), details.into());
        }
    }

    /// Adds a parser-extracted label; a name clash with a stream label gets `_extracted`.
    fn add_extracted(&mut self, key: &str, value: String) {
        let Some(mut key) = sanitize_label_name(key) else {
            return;
        };
        if self.base.contains_key(&key) {
            key.push_str("_extracted");
        }
        self.labels.to_mut().insert(key, value);
    }
}

/// Makes a label name valid the way Loki does: invalid characters become `_`, and a leading digit
/// gets a `_` prefix.
pub(crate) fn sanitize_label_name(key: &str) -> Option<String> {
    if key.is_empty() {
        return None;
    }
    let mut out: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    Some(out)
}

/// Runs all stages; returns false when a filter drops the entry.
pub(crate) fn run(stages: &[Stage], e: &mut Entry<'_>) -> bool {
    stages.iter().all(|s| run_stage(s, e))
}

fn run_stage(stage: &Stage, e: &mut Entry<'_>) -> bool {
    match stage {
        Stage::LineFilter(f) => line_filter(f, &e.line),
        Stage::Json(params) => {
            json(params, e);
            true
        }
        Stage::Logfmt {
            strict,
            keep_empty,
            params,
        } => {
            logfmt(*strict, *keep_empty, params, e);
            true
        }
        Stage::Pattern(p) => {
            let caps = match_pattern(&p.nodes, &e.line);
            for (k, v) in caps {
                e.add_extracted(&k, v);
            }
            true
        }
        Stage::Regexp(r) => {
            let found: Vec<(String, String)> = match r.re.captures(&e.line) {
                Some(c) => {
                    r.re.capture_names()
                        .flatten()
                        .filter_map(|n| c.name(n).map(|m| (n.to_owned(), m.as_str().to_owned())))
                        .collect()
                }
                None => Vec::new(),
            };
            for (k, v) in found {
                e.add_extracted(&k, v);
            }
            true
        }
        Stage::LabelFilter(f) => label_filter(f, e),
        Stage::LineFormat(t) => {
            let r = t.render(&Ctx {
                labels: &e.labels,
                line: &e.line,
                ts_ns: e.ts_ns,
            });
            match r {
                Ok(s) => e.line = Cow::Owned(s),
                Err(m) => e.set_error("TemplateFormatErr", m),
            }
            true
        }
        Stage::LabelFormat(items) => {
            for it in items {
                match it {
                    LabelFmt::Rename { dst, src } => {
                        if let Some(v) = e.labels.get(src).cloned() {
                            let l = e.labels.to_mut();
                            l.remove(src);
                            l.insert(dst.clone(), v);
                        }
                    }
                    LabelFmt::Template { dst, template } => {
                        let r = template.render(&Ctx {
                            labels: &e.labels,
                            line: &e.line,
                            ts_ns: e.ts_ns,
                        });
                        match r {
                            Ok(v) => {
                                e.labels.to_mut().insert(dst.clone(), v);
                            }
                            Err(m) => e.set_error("TemplateFormatErr", m),
                        }
                    }
                }
            }
            true
        }
        Stage::Drop(sels) => {
            let doomed: Vec<String> = e
                .labels
                .iter()
                .filter(|(k, v)| {
                    sels.iter().any(|s| match s {
                        LabelSel::Name(n) => n == *k,
                        LabelSel::Matcher(m) => m.name == **k && m.matches(v),
                    })
                })
                .map(|(k, _)| k.clone())
                .collect();
            if !doomed.is_empty() {
                let l = e.labels.to_mut();
                for k in doomed {
                    l.remove(&k);
                }
            }
            true
        }
        Stage::Keep(sels) => {
            let keep = |k: &str, v: &str| {
                k == ERROR_LABEL
                    || k == ERROR_DETAILS_LABEL
                    || sels.iter().any(|s| match s {
                        LabelSel::Name(n) => n == k,
                        LabelSel::Matcher(m) => m.name == k && m.matches(v),
                    })
            };
            if e.labels.iter().any(|(k, v)| !keep(k, v)) {
                e.labels.to_mut().retain(|k, v| keep(k, v));
            }
            true
        }
        Stage::Decolorize => {
            if e.line.contains('\x1b') {
                e.line = Cow::Owned(strip_ansi(&e.line));
            }
            true
        }
    }
}

fn line_filter(f: &LineFilter, line: &str) -> bool {
    match f.op {
        LineFilterOp::Contains => f.values.iter().any(|v| line.contains(v.as_str())),
        LineFilterOp::NotContains => !f.values.iter().any(|v| line.contains(v.as_str())),
        LineFilterOp::Match => f.regexes.iter().any(|r| r.is_match(line)),
        LineFilterOp::NotMatch => !f.regexes.iter().any(|r| r.is_match(line)),
    }
}

/// Evaluates a label filter. Unparsable values keep the entry and flag it, as Loki does.
pub(crate) fn label_filter(f: &LabelFilterExpr, e: &mut Entry<'_>) -> bool {
    match f {
        LabelFilterExpr::And(a, b) => label_filter(a, e) && label_filter(b, e),
        LabelFilterExpr::Or(a, b) => label_filter(a, e) || label_filter(b, e),
        LabelFilterExpr::Str(m) => m.matches_labels(&e.labels),
        LabelFilterExpr::Number { name, op, value } => {
            let Some(v) = e.labels.get(name) else {
                return false;
            };
            match v.trim().parse::<f64>() {
                Ok(x) => op.cmp_f64(x, *value),
                Err(_) => {
                    let d = format!("cannot parse {v:?} as a number");
                    e.set_error("LabelFilterErr", d);
                    true
                }
            }
        }
        LabelFilterExpr::Duration { name, op, value_ns } => {
            let Some(v) = e.labels.get(name) else {
                return false;
            };
            match parse_duration_ns(v.trim(), false) {
                Some(x) => op.cmp_f64(x as f64, *value_ns as f64),
                None => {
                    let d = format!("cannot parse {v:?} as a duration");
                    e.set_error("LabelFilterErr", d);
                    true
                }
            }
        }
        LabelFilterExpr::Bytes { name, op, value } => {
            let Some(v) = e.labels.get(name) else {
                return false;
            };
            match parse_bytes(v) {
                Some(x) => op.cmp_f64(x as f64, *value as f64),
                None => {
                    let d = format!("cannot parse {v:?} as a byte size");
                    e.set_error("LabelFilterErr", d);
                    true
                }
            }
        }
    }
}

fn json_scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => None,
        Value::Array(_) | Value::Object(_) => None,
    }
}

fn flatten(prefix: &str, obj: &serde_json::Map<String, Value>, out: &mut Vec<(String, String)>) {
    for (k, v) in obj {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}_{k}")
        };
        match v {
            Value::Object(inner) => flatten(&key, inner, out),
            // Loki's json parser skips arrays unless they are addressed by a path parameter.
            Value::Array(_) => {}
            other => {
                if let Some(s) = json_scalar(other) {
                    out.push((key, s));
                }
            }
        }
    }
}

fn json(params: &[JsonParam], e: &mut Entry<'_>) {
    let parsed: Value = match serde_json::from_str(&e.line) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => {
            e.set_error("JSONParserErr", "Value is not an object");
            return;
        }
        Err(err) => {
            e.set_error("JSONParserErr", err.to_string());
            return;
        }
    };
    let mut found = Vec::new();
    if params.is_empty() {
        if let Value::Object(obj) = &parsed {
            flatten("", obj, &mut found);
        }
    } else {
        for p in params {
            let mut cur = Some(&parsed);
            for seg in &p.segs {
                cur = match (seg, cur) {
                    (JsonPathSeg::Key(k), Some(Value::Object(o))) => o.get(k),
                    (JsonPathSeg::Index(i), Some(Value::Array(a))) => a.get(*i),
                    _ => None,
                };
            }
            let value = match cur {
                Some(v @ (Value::Array(_) | Value::Object(_))) => Some(v.to_string()),
                Some(v) => json_scalar(v),
                None => None,
            };
            if let Some(v) = value {
                found.push((p.label.clone(), v));
            }
        }
    }
    for (k, v) in found {
        e.add_extracted(&k, v);
    }
}

/// Splits a logfmt line into `(key, value, had '=')`. In strict mode the first malformed pair
/// is an error; otherwise malformed pairs are skipped, like Loki's default.
fn parse_logfmt(line: &str, strict: bool) -> Result<Vec<(String, String, bool)>, String> {
    let mut out = Vec::new();
    let b = line.as_bytes();
    let mut i = 0;
    let skip_token = |mut i: usize| {
        while i < b.len() && b[i] > b' ' {
            i += 1;
        }
        i
    };
    while i < b.len() {
        if b[i] <= b' ' {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && b[i] > b' ' && b[i] != b'=' && b[i] != b'"' {
            i += 1;
        }
        if i == start || (i < b.len() && b[i] == b'"') {
            let msg = format!(
                "logfmt syntax error at pos {}: unexpected {:?}",
                i + 1,
                char::from(b[i])
            );
            if strict {
                return Err(msg);
            }
            i = skip_token(i + 1);
            continue;
        }
        let key = &line[start..i];
        if i >= b.len() || b[i] != b'=' {
            out.push((key.to_owned(), String::new(), false));
            continue;
        }
        i += 1;
        if i < b.len() && b[i] == b'"' {
            match crate::lexer::unquote_prefix(&line[i..]) {
                Ok((v, len)) => {
                    out.push((key.to_owned(), v, true));
                    i += len;
                }
                Err((_, m)) => {
                    if strict {
                        return Err(format!("logfmt syntax error at pos {}: {m}", i + 1));
                    }
                    i = skip_token(i + 1);
                }
            }
        } else {
            let vstart = i;
            while i < b.len() && b[i] > b' ' {
                i += 1;
            }
            let v = &line[vstart..i];
            if v.contains('"') {
                if strict {
                    return Err(format!(
                        "logfmt syntax error at pos {}: unexpected '\"'",
                        vstart + 1
                    ));
                }
                continue;
            }
            out.push((key.to_owned(), v.to_owned(), true));
        }
    }
    Ok(out)
}

fn logfmt(strict: bool, keep_empty: bool, params: &[(String, String)], e: &mut Entry<'_>) {
    let pairs = match parse_logfmt(&e.line, strict) {
        Ok(p) => p,
        Err(m) => {
            e.set_error("LogfmtParserErr", m);
            return;
        }
    };
    if params.is_empty() {
        for (k, v, _) in pairs {
            if !v.is_empty() || keep_empty {
                e.add_extracted(&k, v);
            }
        }
    } else {
        for (label, key) in params {
            // The last occurrence wins, as in Loki's logfmt expression parser.
            if let Some((_, v, _)) = pairs.iter().rev().find(|(k, _, _)| k == key) {
                let v = v.clone();
                e.add_extracted(label, v);
            }
        }
    }
}

/// Matches a pattern from the start of the line; on a missing literal returns what it has.
pub(crate) fn match_pattern(nodes: &[PatternNode], line: &str) -> Vec<(String, String)> {
    let mut caps = Vec::new();
    let mut rest = line;
    let mut i = 0;
    while i < nodes.len() {
        match &nodes[i] {
            PatternNode::Literal(l) => {
                // Only a leading literal lands here; others are consumed with their capture.
                match rest.strip_prefix(l.as_str()) {
                    Some(r) => rest = r,
                    None => return caps,
                }
                i += 1;
            }
            PatternNode::Capture(name) => {
                let (value, next) = match nodes.get(i + 1) {
                    Some(PatternNode::Literal(l)) => match rest.find(l.as_str()) {
                        Some(idx) => (&rest[..idx], &rest[idx + l.len()..]),
                        None => return caps,
                    },
                    _ => (rest, ""),
                };
                if let Some(n) = name {
                    caps.push((n.clone(), value.to_owned()));
                }
                rest = next;
                i += 2;
            }
        }
    }
    caps
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            for t in chars.by_ref() {
                if ('@'..='~').contains(&t) {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Expr, parse};

    fn run_q(
        q: &str,
        labels: &[(&str, &str)],
        line: &str,
    ) -> Option<(BTreeMap<String, String>, String)> {
        let Expr::Log(l) = parse(q).unwrap() else {
            panic!("not a log query")
        };
        let base: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        let mut e = Entry::new(&base, line, 1_000);
        run(&l.stages, &mut e).then(|| (e.labels.into_owned(), e.line.into_owned()))
    }

    #[test]
    fn line_filters() {
        let q = r#"{a="b"} |= "err" != "debug" |~ "time(out)?" !~ "^skip""#;
        assert!(run_q(q, &[("a", "b")], "err timeout").is_some());
        assert!(run_q(q, &[("a", "b")], "err debug timeout").is_none());
        assert!(run_q(q, &[("a", "b")], "skip err time").is_none());
        assert!(run_q(q, &[("a", "b")], "nothing").is_none());
        let q = r#"{a="b"} |= "x" or "y""#;
        assert!(run_q(q, &[("a", "b")], "y").is_some());
        let q = r#"{a="b"} != "x" or "y""#;
        assert!(run_q(q, &[("a", "b")], "y").is_none());
        assert!(run_q(q, &[("a", "b")], "z").is_some());
    }

    #[test]
    fn json_parser() {
        let (l, _) = run_q(
            r#"{a="b"} | json"#,
            &[("a", "b")],
            r#"{"a":"x","level":"error","req":{"status":500,"path":"/x"},"tags":[1],"ok":true,"n":null,"my-key":1}"#,
        )
        .unwrap();
        assert_eq!(l["a"], "b");
        assert_eq!(l["a_extracted"], "x");
        assert_eq!(l["req_status"], "500");
        assert_eq!(l["req_path"], "/x");
        assert_eq!(l["ok"], "true");
        assert_eq!(l["my_key"], "1");
        assert!(!l.contains_key("tags"));
        let (l, _) = run_q(r#"{a="b"} | json"#, &[("a", "b")], "not json").unwrap();
        assert_eq!(l[ERROR_LABEL], "JSONParserErr");
        let (l, _) = run_q(
            r#"{a="b"} | json s="req.status", first="tags[0]", obj="req", level"#,
            &[("a", "b")],
            r#"{"level":"warn","req":{"status":500},"tags":["t1"]}"#,
        )
        .unwrap();
        assert_eq!(l["s"], "500");
        assert_eq!(l["first"], "t1");
        assert_eq!(l["obj"], r#"{"status":500}"#);
        assert_eq!(l["level"], "warn");
    }

    #[test]
    fn logfmt_parser() {
        let line =
            r#"level=error msg="upstream timeout \"x\"" duration=1.5s empty= flag status=504"#;
        let (l, _) = run_q(r#"{a="b"} | logfmt"#, &[("a", "b")], line).unwrap();
        assert_eq!(l["level"], "error");
        assert_eq!(l["msg"], "upstream timeout \"x\"");
        assert_eq!(l["duration"], "1.5s");
        assert!(!l.contains_key("empty") && !l.contains_key("flag"));
        let (l, _) = run_q(r#"{a="b"} | logfmt --keep-empty"#, &[("a", "b")], line).unwrap();
        assert_eq!(l["flag"], "");
        let (l, _) = run_q(
            r#"{a="b"} | logfmt --strict"#,
            &[("a", "b")],
            r#"a="unterminated"#,
        )
        .unwrap();
        assert_eq!(l[ERROR_LABEL], "LogfmtParserErr");
        let (l, _) = run_q(
            r#"{a="b"} | logfmt"#,
            &[("a", "b")],
            r#"a="unterminated b=2"#,
        )
        .unwrap();
        assert!(!l.contains_key(ERROR_LABEL));
        let (l, _) = run_q(r#"{a="b"} | logfmt lvl="level""#, &[("a", "b")], line).unwrap();
        assert_eq!(l["lvl"], "error");
        assert!(!l.contains_key("msg"));
    }

    #[test]
    fn pattern_and_regexp() {
        let (l, _) = run_q(
            r#"{a="b"} | pattern "<ip> - <_> [<ts>] \"<method> <path> <_>\" <status>""#,
            &[("a", "b")],
            r#"10.0.0.1 - frank [10/Oct/2000:13:55:36] "GET /api HTTP/1.1" 200"#,
        )
        .unwrap();
        assert_eq!(l["ip"], "10.0.0.1");
        assert_eq!(l["ts"], "10/Oct/2000:13:55:36");
        assert_eq!(l["method"], "GET");
        assert_eq!(l["path"], "/api");
        assert_eq!(l["status"], "200");
        let (l, _) = run_q(
            r#"{a="b"} | regexp "took (?P<ms>\\d+)ms""#,
            &[("a", "b")],
            "request took 42ms",
        )
        .unwrap();
        assert_eq!(l["ms"], "42");
    }

    #[test]
    fn label_filters() {
        let line = "status=503 duration=1.5s size=2MB level=error";
        let keep = |q: &str| run_q(q, &[("a", "b")], line).is_some();
        assert!(keep(r#"{a="b"} | logfmt | status >= 500"#));
        assert!(!keep(r#"{a="b"} | logfmt | status < 500"#));
        assert!(keep(r#"{a="b"} | logfmt | duration > 1s"#));
        assert!(!keep(r#"{a="b"} | logfmt | duration > 2s"#));
        assert!(keep(r#"{a="b"} | logfmt | size >= 2MB"#));
        assert!(keep(r#"{a="b"} | logfmt | level="warn" or status == 503"#));
        assert!(!keep(r#"{a="b"} | logfmt | level="error", status != 503"#));
        assert!(keep(
            r#"{a="b"} | logfmt | level=~"err.*" and (status=404 or status=503)"#
        ));
        assert!(!keep(r#"{a="b"} | logfmt | missing > 1"#));
        let (l, _) = run_q(r#"{a="b"} | logfmt | level > 1"#, &[("a", "b")], line).unwrap();
        assert_eq!(l[ERROR_LABEL], "LabelFilterErr");
        assert!(!keep(r#"{a="b"} | logfmt | level > 1 | __error__="""#));
    }

    #[test]
    fn formatters() {
        let line = "level=error msg=boom user=bob";
        let (l, out) = run_q(
            r#"{a="b"} | logfmt | line_format "{{.level | ToUpper}}: {{.msg}}" | label_format who=user, tag="{{.level}}-x" | drop msg | keep who, tag, a"#,
            &[("a", "b")],
            line,
        )
        .unwrap();
        assert_eq!(out, "ERROR: boom");
        let expected: BTreeMap<String, String> = [("a", "b"), ("tag", "error-x"), ("who", "bob")]
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        assert_eq!(l, expected);
        let (l, _) = run_q(
            r#"{a="b"} | logfmt | drop level="warn", msg"#,
            &[("a", "b")],
            line,
        )
        .unwrap();
        assert!(l.contains_key("level") && !l.contains_key("msg"));
        let (_, out) = run_q(
            r#"{a="b"} | decolorize"#,
            &[("a", "b")],
            "\x1b[31mred\x1b[0m text",
        )
        .unwrap();
        assert_eq!(out, "red text");
    }
}
