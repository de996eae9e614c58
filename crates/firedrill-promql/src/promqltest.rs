//! A runner for Prometheus's promqltest script format (`load`, `clear`, `eval ...`).
//!
//! Native histograms are out of scope: an `eval` whose expectations contain `{{...}}`, or whose
//! query selects a series that was loaded with histogram samples (including the series that
//! `load_with_nhcb` would synthesise), is counted as skipped. Annotation expectations
//! (`expect warn`/`info`) are not checked, and `expect fail msg:` only requires a failure.

use std::path::Path;

use promql_parser::parser::{self as pparser, Expr};
use promql_parser::util::visitor::ExprVisitor;
use promql_parser::util::walk_expr;

use crate::engine::plan::{InstantPlan, KeyedStorage, WindowFacts};
use crate::engine::util::almost_equal;
use crate::engine::{Engine, EngineOptions, parse_query};
use crate::labels::{LabelMatcher, Labels, METRIC_NAME, MatchOp};
use crate::storage::{MemStorage, Sample, Storage, stale_nan};
use crate::value::{Value, format_value};

/// Result of one failed `eval` case.
#[derive(Clone, Debug, PartialEq)]
pub struct CaseFailure {
    /// 1-based line of the `eval` command.
    pub line: usize,
    /// The query.
    pub query: String,
    /// What went wrong.
    pub message: String,
}

/// Outcome of running one script.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FileReport {
    /// Script name or path.
    pub file: String,
    /// Cases that matched their expectations.
    pub passed: usize,
    /// Cases that did not.
    pub failed: usize,
    /// Cases skipped because they involve native histograms.
    pub skipped: usize,
    /// Details of each failure.
    pub failures: Vec<CaseFailure>,
}

/// Reads and runs a script file.
pub fn run_file(path: impl AsRef<Path>) -> std::io::Result<FileReport> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path)?;
    Ok(run_source(&path.display().to_string(), &text))
}

/// Runs a script given as text with the default engine options.
pub fn run_source(name: &str, text: &str) -> FileReport {
    run_source_with(name, text, &Engine::new(EngineOptions::default()))
}

/// Runs a script with a specific engine.
pub fn run_source_with(name: &str, text: &str, engine: &Engine) -> FileReport {
    run_source_inner(name, text, engine, None)
}

/// How [`InstantPlan`]s compare with the engine over a script's instant evaluations.
#[derive(Debug, Default, Clone)]
pub struct PlanReport {
    /// Instant evaluations whose query compiled to a plan and whose plan result was compared.
    pub compared: usize,
    /// Compiled plans that declined (the engine then answers; it must fail there or the plan gave up).
    pub declined: usize,
    /// Of those, the ones the engine answered without an error (the plan gave up where it need not have).
    pub declined_engine_ok: usize,
    /// Queries that did not compile to a plan.
    pub not_compiled: usize,
    /// Evaluations where the plan answered differently from the engine.
    pub mismatches: Vec<CaseFailure>,
}

/// Runs a script like [`run_source_with`] and, for every instant evaluation whose query compiles to an
/// [`InstantPlan`], checks that the plan (evaluated twice, so its kept label work is exercised) returns
/// exactly the engine's result, or declines where the engine fails.
pub fn check_plans(name: &str, text: &str, engine: &Engine) -> PlanReport {
    let mut plans = PlanReport::default();
    run_source_inner(name, text, engine, Some(&mut plans));
    plans
}

/// A [`KeyedStorage`] over a [`MemStorage`], keying each label set by order of first sight (for checking
/// [`InstantPlan`]s against the engine).
pub struct KeyedMem<'a> {
    storage: &'a MemStorage,
    keys: std::cell::RefCell<(crate::hash::FxMap<Labels, u64>, Vec<Labels>)>,
}

impl<'a> KeyedMem<'a> {
    /// A keyed view of `storage`; keys hold for this view's lifetime.
    pub fn new(storage: &'a MemStorage) -> Self {
        KeyedMem {
            storage,
            keys: Default::default(),
        }
    }
}

impl KeyedStorage for KeyedMem<'_> {
    fn select_keyed(
        &self,
        name: &str,
        start_ms: i64,
        end_ms: i64,
        visit: &mut dyn FnMut(u64, &[Sample]),
    ) -> Result<(), crate::StorageError> {
        self.select_windows(name, start_ms, end_ms, &mut |key, samples, _| {
            visit(key, samples)
        })
    }

    /// Every window with its facts read from it, so the plans' shortcuts for known facts are checked against
    /// the engine on every script (staleness markers and counter resets included).
    fn select_windows(
        &self,
        name: &str,
        start_ms: i64,
        end_ms: i64,
        visit: &mut dyn FnMut(u64, &[Sample], WindowFacts),
    ) -> Result<(), crate::StorageError> {
        let series =
            self.storage
                .select(&[LabelMatcher::eq(METRIC_NAME, name)], start_ms, end_ms)?;
        for s in series {
            let key = {
                let mut keys = self.keys.borrow_mut();
                let (index, labels) = &mut *keys;
                let next = labels.len() as u64;
                let key = *index.entry(s.labels.clone()).or_insert(next);
                if key == next {
                    labels.push(s.labels);
                }
                key
            };
            visit(key, &s.samples, WindowFacts::of(&s.samples));
        }
        Ok(())
    }

    fn labels_of(&self, key: u64) -> Option<Labels> {
        self.keys.borrow().1.get(key as usize).cloned()
    }
}

/// Compares a compiled plan with the engine on one instant evaluation.
fn compare_plan(engine: &Engine, st: &State, line: &str, lineno: usize, out: &mut PlanReport) {
    let Some(rest) = line
        .strip_prefix("eval")
        .and_then(|r| r.split_once(char::is_whitespace))
        .map(|(_, r)| r.trim())
    else {
        return;
    };
    let Some(r) = rest.strip_prefix("instant") else {
        return;
    };
    let r = r.trim_start();
    let (t, query) = match r.strip_prefix("at") {
        Some(r) => {
            let r = r.trim_start();
            let (t, q) = r.split_once(char::is_whitespace).unwrap_or((r, ""));
            match parse_duration_ms(t) {
                Some(t) => (t, q.trim()),
                None => return,
            }
        }
        None => (0, r),
    };
    let Ok(expr) = parse_query(query) else {
        return;
    };
    if !st.hist_series.is_empty() && touches_histograms(&expr, &st.hist_series) {
        return;
    }
    let Some(mut plan) = InstantPlan::compile(&expr, engine.options()) else {
        out.not_compiled += 1;
        return;
    };
    let keyed = KeyedMem::new(&st.storage);
    let expected = engine.instant_expr(&st.storage, &expr, t);
    for round in 0..2 {
        let got = plan.eval(&keyed, t);
        let message = match (&got, &expected) {
            (None, e) => {
                out.declined += 1;
                if e.is_ok() {
                    out.declined_engine_ok += 1;
                }
                continue;
            }
            (Some(g), Ok(e)) if same_value(g, e) => {
                out.compared += 1;
                continue;
            }
            (Some(g), Ok(e)) => format!(
                "round {round}: plan gave {}, engine {}",
                describe(g),
                describe(e)
            ),
            (Some(g), Err(e)) => format!(
                "round {round}: plan gave {}, engine failed: {e}",
                describe(g)
            ),
        };
        out.mismatches.push(CaseFailure {
            line: lineno,
            query: query.to_string(),
            message,
        });
    }
}

/// Equal values, floats compared by bits (so NaNs of the same kind are equal): the test of "exactly the
/// engine's result" for anything that computes a query another way.
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Scalar(x), Value::Scalar(y)) => x.t == y.t && x.v.to_bits() == y.v.to_bits(),
        (Value::Vector(x), Value::Vector(y)) => {
            x.len() == y.len()
                && x.iter().zip(y).all(|((la, sa), (lb, sb))| {
                    la == lb && sa.t == sb.t && sa.v.to_bits() == sb.v.to_bits()
                })
        }
        _ => false,
    }
}

fn run_source_inner(
    name: &str,
    text: &str,
    engine: &Engine,
    mut plans: Option<&mut PlanReport>,
) -> FileReport {
    let mut rep = FileReport {
        file: name.to_string(),
        ..Default::default()
    };
    let mut st = State {
        storage: MemStorage::new(),
        hist_series: Vec::new(),
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let raw = lines[i];
        let line = raw.trim();
        let lineno = i + 1;
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // Gather the command's block: following lines up to a blank line or the next command.
        let mut block: Vec<(usize, &str)> = Vec::new();
        while i < lines.len() {
            let l = lines[i];
            let t = l.trim();
            if t.is_empty() {
                break;
            }
            if !l.starts_with([' ', '\t']) && is_command(t) {
                break;
            }
            if !t.starts_with('#') {
                block.push((i + 1, t));
            }
            i += 1;
        }
        let word = line.split_whitespace().next().unwrap_or("");
        match word {
            "clear" => {
                st.storage.clear();
                st.hist_series.clear();
            }
            "load" | "load_with_nhcb" => {
                let rest = line[word.len()..].trim();
                let Some(interval) = parse_duration_ms(rest) else {
                    rep.failed += 1;
                    rep.failures.push(CaseFailure {
                        line: lineno,
                        query: line.to_string(),
                        message: format!("bad load interval {rest:?}"),
                    });
                    continue;
                };
                for (ln, def) in &block {
                    if let Err(e) = st.load_series(def, interval, word == "load_with_nhcb") {
                        rep.failed += 1;
                        rep.failures.push(CaseFailure {
                            line: *ln,
                            query: def.to_string(),
                            message: format!("bad series definition: {e}"),
                        });
                    }
                }
            }
            w if w.starts_with("eval") => {
                if let Some(plans) = plans.as_deref_mut() {
                    compare_plan(engine, &st, line, lineno, plans);
                }
                let outcome = run_eval(engine, &st, line, &block);
                match outcome {
                    Outcome::Pass => rep.passed += 1,
                    Outcome::Skip => rep.skipped += 1,
                    Outcome::Fail(query, message) => {
                        rep.failed += 1;
                        rep.failures.push(CaseFailure {
                            line: lineno,
                            query,
                            message,
                        });
                    }
                }
            }
            _ => {
                rep.failed += 1;
                rep.failures.push(CaseFailure {
                    line: lineno,
                    query: line.to_string(),
                    message: "unknown command".to_string(),
                });
            }
        }
    }
    rep
}

fn is_command(t: &str) -> bool {
    let w = t.split_whitespace().next().unwrap_or("");
    w == "clear" || w == "load" || w == "load_with_nhcb" || w.starts_with("eval")
}

struct State {
    storage: MemStorage,
    /// Label sets of series that hold native histograms.
    hist_series: Vec<Labels>,
}

impl State {
    fn load_series(&mut self, def: &str, interval: i64, nhcb: bool) -> Result<(), String> {
        let (labels, rest) = parse_series_desc(def)?;
        let vals = parse_values(rest)?;
        if vals.histogram {
            self.hist_series.push(labels.clone());
        }
        if nhcb && let Some(name) = labels.metric_name() {
            for suffix in ["_bucket", "_count", "_sum"] {
                if let Some(base) = name.strip_suffix(suffix) {
                    let mut l = labels.clone();
                    l.set(METRIC_NAME, base);
                    l.remove("le");
                    self.hist_series.push(l);
                }
            }
        }
        for (idx, v) in vals.values.iter().enumerate() {
            if let Some(v) = v {
                let t = (idx as i64).saturating_mul(interval);
                self.storage.append(&labels, t, *v);
            }
        }
        Ok(())
    }
}

enum Outcome {
    Pass,
    Skip,
    Fail(String, String),
}

#[derive(Default)]
struct Expectations {
    fail: bool,
    ordered: bool,
    string: Option<String>,
    range_vector: Option<(i64, i64, i64)>,
    scalar: Option<f64>,
    series: Vec<(Labels, Vec<Option<f64>>)>,
    histogram: bool,
}

fn run_eval(engine: &Engine, st: &State, line: &str, block: &[(usize, &str)]) -> Outcome {
    let (cmd, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let mut exp = Expectations::default();
    match cmd {
        "eval_fail" => exp.fail = true,
        "eval_ordered" => exp.ordered = true,
        "eval" | "eval_warn" | "eval_info" => {}
        other => return Outcome::Fail(line.to_string(), format!("unknown eval form {other}")),
    }
    let rest = rest.trim();
    enum Kind {
        Instant(i64),
        Range(i64, i64, i64),
    }
    let (kind, query) = if let Some(r) = rest.strip_prefix("instant") {
        let r = r.trim_start();
        match r.strip_prefix("at") {
            Some(r) => {
                let r = r.trim_start();
                let (t, q) = r.split_once(char::is_whitespace).unwrap_or((r, ""));
                match parse_duration_ms(t) {
                    Some(t) => (Kind::Instant(t), q.trim()),
                    None => return Outcome::Fail(line.to_string(), format!("bad time {t:?}")),
                }
            }
            None => (Kind::Instant(0), r),
        }
    } else if let Some(r) = rest.strip_prefix("range") {
        let toks: Vec<&str> = r.split_whitespace().collect();
        if toks.len() < 7 || toks[0] != "from" || toks[2] != "to" || toks[4] != "step" {
            return Outcome::Fail(line.to_string(), "malformed eval range".into());
        }
        let (Some(s), Some(e), Some(st_)) = (
            parse_duration_ms(toks[1]),
            parse_duration_ms(toks[3]),
            parse_duration_ms(toks[5]),
        ) else {
            return Outcome::Fail(line.to_string(), "bad range times".into());
        };
        // The query is everything after the step token.
        let idx = find_nth_token_end(r, 6);
        (Kind::Range(s, e, st_), r[idx..].trim())
    } else {
        return Outcome::Fail(line.to_string(), "malformed eval".into());
    };
    let query = query.to_string();
    for (_, l) in block {
        if l.contains("{{") {
            exp.histogram = true;
        }
        if let Err(e) = parse_expectation(l, &mut exp) {
            return Outcome::Fail(query, format!("bad expectation {l:?}: {e}"));
        }
    }
    if exp.histogram {
        return Outcome::Skip;
    }
    if !st.hist_series.is_empty()
        && let Ok(expr) = parse_query(&query)
        && touches_histograms(&expr, &st.hist_series)
    {
        return Outcome::Skip;
    }
    let rng = match kind {
        Kind::Range(s, e, step) => Some((s, e, step)),
        Kind::Instant(_) => None,
    };
    let result = match kind {
        Kind::Instant(t) => engine.instant(&st.storage, &query, t),
        Kind::Range(s, e, step) => engine.range(&st.storage, &query, s, e, step),
    };
    let value = match result {
        Err(e) => {
            if exp.fail {
                return Outcome::Pass;
            }
            return Outcome::Fail(query, format!("unexpected error: {e}"));
        }
        Ok(v) => v,
    };
    if exp.fail {
        return Outcome::Fail(query, format!("expected failure, got {}", describe(&value)));
    }
    match check(&value, &exp, &rng) {
        Ok(()) => Outcome::Pass,
        Err(m) => Outcome::Fail(query, m),
    }
}

fn find_nth_token_end(s: &str, n: usize) -> usize {
    let mut count = 0;
    let mut in_tok = false;
    for (i, c) in s.char_indices() {
        if c.is_whitespace() {
            if in_tok {
                count += 1;
                in_tok = false;
                if count == n {
                    return i;
                }
            }
        } else {
            in_tok = true;
        }
    }
    s.len()
}

fn describe(v: &Value) -> String {
    let s = v.to_prometheus_data().to_string();
    if s.len() > 600 {
        format!("{}...", &s[..600])
    } else {
        s
    }
}

/// Collects the label matchers of every selector in an expression.
struct SelectorCollector {
    selectors: Vec<Vec<LabelMatcher>>,
}

impl ExprVisitor for SelectorCollector {
    type Error = ();
    fn pre_visit(&mut self, plan: &Expr) -> Result<bool, Self::Error> {
        let vs = match plan {
            Expr::VectorSelector(vs) => Some(vs),
            Expr::MatrixSelector(ms) => Some(&ms.vs),
            _ => None,
        };
        if let Some(vs) = vs {
            let mut ms = Vec::new();
            if let Some(n) = &vs.name {
                ms.push(LabelMatcher::eq(METRIC_NAME, n.clone()));
            }
            for m in &vs.matchers.matchers {
                let op = match m.op {
                    promql_parser::label::MatchOp::Equal => MatchOp::Eq,
                    promql_parser::label::MatchOp::NotEqual => MatchOp::Ne,
                    promql_parser::label::MatchOp::Re(_) => MatchOp::Re,
                    promql_parser::label::MatchOp::NotRe(_) => MatchOp::Nre,
                };
                if let Ok(lm) = LabelMatcher::new(m.name.clone(), op, m.value.clone()) {
                    ms.push(lm);
                }
            }
            self.selectors.push(ms);
        }
        Ok(true)
    }
}

fn touches_histograms(expr: &Expr, hist: &[Labels]) -> bool {
    let mut c = SelectorCollector {
        selectors: Vec::new(),
    };
    if walk_expr(&mut c, expr).is_err() {
        return false;
    }
    c.selectors
        .iter()
        .any(|ms| hist.iter().any(|l| ms.iter().all(|m| m.matches_labels(l))))
}

fn parse_expectation(l: &str, exp: &mut Expectations) -> Result<(), String> {
    if let Some(rest) = l.strip_prefix("expect") {
        let rest = rest.trim();
        let (kw, arg) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        match kw {
            "fail" => exp.fail = true,
            "ordered" => exp.ordered = true,
            "warn" | "no_warn" | "info" | "no_info" => {}
            "string" => exp.string = Some(unquote(arg.trim())?),
            "range" => {
                let toks: Vec<&str> = arg.split_whitespace().collect();
                // `vector from A to B step C`
                if toks.len() != 7 || toks[0] != "vector" {
                    return Err("malformed range vector expectation".into());
                }
                let p = |s: &str| parse_duration_ms(s).ok_or_else(|| format!("bad duration {s}"));
                exp.range_vector = Some((p(toks[2])?, p(toks[4])?, p(toks[6])?));
            }
            other => return Err(format!("unknown expectation {other}")),
        }
        return Ok(());
    }
    if let Some(v) = parse_number(l) {
        exp.scalar = Some(v);
        return Ok(());
    }
    let (labels, rest) = parse_series_desc(l)?;
    let vals = parse_values(rest)?;
    if vals.histogram {
        exp.histogram = true;
    }
    exp.series.push((labels, vals.values));
    Ok(())
}

fn unquote(s: &str) -> Result<String, String> {
    if s.len() >= 2 && s.starts_with('`') && s.ends_with('`') {
        return Ok(s[1..s.len() - 1].to_string());
    }
    promql_parser::util::unquote_string(s)
}

/// Splits `metric{a="b"} 1 2 3` into its label set and the value text.
fn parse_series_desc(line: &str) -> Result<(Labels, &str), String> {
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut end = line.len();
    for (i, c) in line.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '{' => depth += 1,
            '}' => depth -= 1,
            c if c.is_whitespace() && depth == 0 => {
                end = i;
                break;
            }
            _ => {}
        }
    }
    let desc = &line[..end];
    let rest = &line[end..];
    let compact: String = desc.chars().filter(|c| !c.is_whitespace()).collect();
    if compact == "{}" {
        return Ok((Labels::empty(), rest));
    }
    if let Some((_, number)) = crate::engine::unrepresentable_duration(desc) {
        return Err(format!(
            "bad series {desc:?}: duration out of range: {number}"
        ));
    }
    let expr = std::panic::catch_unwind(|| pparser::parse(desc))
        .map_err(|_| format!("bad series {desc:?}: the parser failed on it"))?
        .map_err(|e| format!("bad series {desc:?}: {e}"))?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(format!("not a series descriptor: {desc:?}"));
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    if let Some(n) = vs.name {
        pairs.push((METRIC_NAME.to_string(), n));
    }
    for m in vs.matchers.matchers {
        pairs.push((m.name, m.value));
    }
    Ok((Labels::new(pairs), rest))
}

struct Values {
    values: Vec<Option<f64>>,
    histogram: bool,
}

fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "inf" | "+inf" => return Some(f64::INFINITY),
        "-inf" => return Some(f64::NEG_INFINITY),
        "nan" | "+nan" | "-nan" => return Some(f64::NAN),
        _ => {}
    }
    if t.is_empty() || t.contains(char::is_whitespace) {
        return None;
    }
    let lower = t.to_ascii_lowercase();
    let (sign, body) = match lower.strip_prefix('-') {
        Some(b) => (-1.0, b),
        None => (1.0, lower.strip_prefix('+').unwrap_or(&lower)),
    };
    // `0x59` is "0 repeated", not hex, in the point syntax.
    if body.contains('x') {
        return None;
    }
    if !body
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit() || c == '.')
    {
        return None;
    }
    body.parse::<f64>().ok().map(|v| sign * v)
}

/// Expands the point syntax (`1 2 _ stale 1+2x3 5x2 _x3 {{...}}`).
fn parse_values(s: &str) -> Result<Values, String> {
    let mut out = Values {
        values: Vec::new(),
        histogram: false,
    };
    let mut toks: Vec<String> = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let mut tok = String::new();
        let mut depth = 0;
        while i < chars.len() && (depth > 0 || !chars[i].is_whitespace()) {
            if chars[i] == '{' && chars.get(i + 1) == Some(&'{') {
                depth += 1;
                tok.push_str("{{");
                i += 2;
                continue;
            }
            if chars[i] == '}' && chars.get(i + 1) == Some(&'}') && depth > 0 {
                depth -= 1;
                tok.push_str("}}");
                i += 2;
                continue;
            }
            tok.push(chars[i]);
            i += 1;
        }
        toks.push(tok);
    }
    for tok in toks {
        if tok.contains("{{") {
            out.histogram = true;
            let times = tok
                .rsplit_once("}}")
                .and_then(|(_, r)| r.strip_prefix('x'))
                .and_then(|n| n.parse::<usize>().ok());
            let n = times.map(|n| n + 1).unwrap_or(1);
            out.values.extend(std::iter::repeat_n(None, n));
            continue;
        }
        if tok == "_" {
            out.values.push(None);
            continue;
        }
        if tok == "stale" {
            out.values.push(Some(stale_nan()));
            continue;
        }
        if let Some(v) = parse_number(&tok) {
            out.values.push(Some(v));
            continue;
        }
        let Some((left, times)) = tok.rsplit_once('x') else {
            return Err(format!("bad value {tok:?}"));
        };
        let times: usize = times
            .parse()
            .map_err(|_| format!("bad repeat count in {tok:?}"))?;
        if times > 1_000_000 {
            return Err(format!("repeat count too large in {tok:?}"));
        }
        if left == "_" {
            out.values.extend(std::iter::repeat_n(None, times));
            continue;
        }
        if left == "stale" {
            out.values
                .extend(std::iter::repeat_n(Some(stale_nan()), times + 1));
            continue;
        }
        // Split `a+b` / `a-b` at the operator that is not a sign or exponent sign.
        let bytes = left.as_bytes();
        let mut split = None;
        for j in 1..bytes.len() {
            if (bytes[j] == b'+' || bytes[j] == b'-') && !matches!(bytes[j - 1], b'e' | b'E') {
                split = Some(j);
            }
        }
        match split {
            None => {
                let v = parse_number(left).ok_or_else(|| format!("bad value {tok:?}"))?;
                out.values.extend(std::iter::repeat_n(Some(v), times + 1));
            }
            Some(j) => {
                let a = parse_number(&left[..j]).ok_or_else(|| format!("bad start in {tok:?}"))?;
                let b =
                    parse_number(&left[j + 1..]).ok_or_else(|| format!("bad delta in {tok:?}"))?;
                let b = if bytes[j] == b'-' { -b } else { b };
                let mut cur = a;
                for _ in 0..=times {
                    out.values.push(Some(cur));
                    cur += b;
                }
            }
        }
    }
    Ok(out)
}

/// Parses Prometheus durations (`1h30m`, `10s53ms`, `1d`, `0`) or plain seconds.
pub fn parse_duration_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(v) = s.parse::<f64>() {
        return Some((v * 1000.0).round() as i64);
    }
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let mut total: i64 = 0;
    let b = body.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return None;
        }
        let n: i64 = body[start..i].parse().ok()?;
        let ustart = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let mult: i64 = match &body[ustart..i] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "y" => 31_536_000_000,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(mult)?)?;
    }
    Some(if neg { -total } else { total })
}

fn vals_equal(a: f64, b: f64) -> bool {
    if a.is_infinite() || b.is_infinite() {
        return a == b;
    }
    almost_equal(a, b, 1e-6)
}

fn check(v: &Value, exp: &Expectations, range: &Option<(i64, i64, i64)>) -> Result<(), String> {
    match v {
        Value::String { value, .. } => match &exp.string {
            Some(s) if s == value => Ok(()),
            Some(s) => Err(format!("expected string {s:?}, got {value:?}")),
            None => Err(format!("unexpected string result {value:?}")),
        },
        Value::Scalar(s) => {
            let want = exp
                .scalar
                .or_else(|| {
                    exp.series
                        .first()
                        .filter(|(l, v)| l.is_empty() && v.len() == 1)
                        .and_then(|(_, v)| v[0])
                })
                .ok_or_else(|| format!("unexpected scalar result {}", format_value(s.v)))?;
            if vals_equal(want, s.v) {
                Ok(())
            } else {
                Err(format!(
                    "expected scalar {}, got {}",
                    format_value(want),
                    format_value(s.v)
                ))
            }
        }
        Value::Vector(vec) => {
            if exp.scalar.is_some() || exp.string.is_some() || exp.range_vector.is_some() {
                return Err(format!(
                    "expected a different result type, got vector {}",
                    describe(v)
                ));
            }
            if vec.len() != exp.series.len() {
                return Err(format!(
                    "expected {} series, got {}: {}",
                    exp.series.len(),
                    vec.len(),
                    describe(v)
                ));
            }
            for (idx, (labels, vals)) in exp.series.iter().enumerate() {
                if vals.len() != 1 {
                    return Err(format!(
                        "expectation for {labels} must have exactly one value"
                    ));
                }
                let pos = vec.iter().position(|(l, _)| l == labels);
                let Some(pos) = pos else {
                    return Err(format!("missing series {labels}; got {}", describe(v)));
                };
                if exp.ordered && pos != idx {
                    return Err(format!("series {labels} at position {pos}, expected {idx}"));
                }
                let want = vals[0].unwrap_or(f64::NAN);
                let got = vec[pos].1.v;
                if !vals_equal(want, got) {
                    return Err(format!(
                        "series {labels}: expected {}, got {}",
                        format_value(want),
                        format_value(got)
                    ));
                }
            }
            Ok(())
        }
        Value::Matrix(m) => {
            let grid = match (exp.range_vector, range) {
                (Some(g), _) => g,
                (None, Some(g)) => *g,
                (None, None) => {
                    return Err(format!("unexpected range vector result {}", describe(v)));
                }
            };
            if exp.scalar.is_some() {
                return Err(format!("expected scalar, got matrix {}", describe(v)));
            }
            if m.len() != exp.series.len() {
                return Err(format!(
                    "expected {} series, got {}: {}",
                    exp.series.len(),
                    m.len(),
                    describe(v)
                ));
            }
            for (labels, vals) in &exp.series {
                let Some(s) = m.iter().find(|s| &s.labels == labels) else {
                    return Err(format!("missing series {labels}; got {}", describe(v)));
                };
                let want: Vec<Sample> = vals
                    .iter()
                    .enumerate()
                    .filter_map(|(i, x)| x.map(|x| Sample::new(grid.0 + i as i64 * grid.2, x)))
                    .collect();
                if want.len() != s.samples.len() {
                    return Err(format!(
                        "series {labels}: expected {} points, got {}: {:?}",
                        want.len(),
                        s.samples.len(),
                        s.samples
                    ));
                }
                for (w, g) in want.iter().zip(s.samples.iter()) {
                    if w.t != g.t || !vals_equal(w.v, g.v) {
                        return Err(format!(
                            "series {labels}: expected {} @{}, got {} @{}",
                            format_value(w.v),
                            w.t,
                            format_value(g.v),
                            g.t
                        ));
                    }
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_values() {
        let v = parse_values("1+2x2 _ stale 5x1 _x2 -1-1x1").unwrap();
        let got: Vec<String> = v
            .values
            .iter()
            .map(|x| x.map(format_value).unwrap_or("_".into()))
            .collect();
        assert_eq!(
            got,
            ["1", "3", "5", "_", "NaN", "5", "5", "_", "_", "-1", "-2"]
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("10s53ms"), Some(10_053));
        assert_eq!(parse_duration_ms("1h30m"), Some(5_400_000));
        assert_eq!(parse_duration_ms("0"), Some(0));
    }

    #[test]
    fn small_script() {
        let src = "load 1m\n  up{job=\"a\"} 0+1x10\n\neval instant at 5m up\n  up{job=\"a\"} 5\n\neval range from 0 to 2m step 1m up * 2\n  {job=\"a\"} 0 2 4\n\neval instant at 0 foo(\n  expect fail\n";
        let r = run_source("t", src);
        assert_eq!((r.passed, r.failed), (3, 0), "{:?}", r.failures);
    }
}
