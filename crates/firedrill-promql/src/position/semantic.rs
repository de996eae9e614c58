//! Locating the errors of the parser's grammar actions and type checks (`binary expression must contain only
//! scalar and instant vector types`, `expected type vector in aggregation expression, got matrix`, ...).
//!
//! The parser checks each sub-expression as it reduces it, bottom-up and left to right, and an error
//! travels up unchanged. So the sub-expression that raised an error is the smallest one that fails with the
//! same message when parsed on its own: starting from the whole query, descend into the first child of the
//! [span tree](super::tree) that still fails with that message, and stop where none does.
//!
//! The message then says which part of that sub-expression is at fault: the operator of a binary
//! expression, the argument of an aggregation or call that has the wrong type, the surplus argument, the
//! `[`, `offset` or `@` of a modifier that cannot apply, the duration or time that does not parse, the
//! matcher of a selector. Where the part cannot be told, the sub-expression's start stands in: the error is
//! inside it.

use promql_parser::parser::value::ValueType;
use promql_parser::parser::{self, Expr};

use super::tree::{self, Kind, Node, Span};

/// What went wrong, as parsing the whole query reported it.
#[derive(Clone, Copy)]
pub(super) enum Failure<'m> {
    /// The parser returned this message.
    Message(&'m str),
    /// The parser panicked.
    Panic,
}

impl Failure<'_> {
    /// The message, empty for a panic (which then matches no message rule).
    fn message(&self) -> &str {
        match self {
            Failure::Message(m) => m,
            Failure::Panic => "",
        }
    }
}

/// What parsing a text on its own gives.
enum Outcome {
    Parsed(Expr),
    Failed(String),
    Panicked,
}

fn parse_alone(text: &str) -> Outcome {
    // The parser panics on durations too long for `Duration`: such a probe is taken as one that panicked,
    // without running it (the panic hook would print the panic even though it is caught).
    if crate::engine::unrepresentable_duration(text).is_some() {
        return Outcome::Panicked;
    }
    match std::panic::catch_unwind(|| parser::parse(text)) {
        Ok(Ok(e)) => Outcome::Parsed(e),
        Ok(Err(m)) => Outcome::Failed(m),
        Err(_) => Outcome::Panicked,
    }
}

/// Whether `text` on its own fails the way the query did.
fn fails_like(text: &str, failure: Failure) -> bool {
    match (parse_alone(text), failure) {
        (Outcome::Failed(m), Failure::Message(expected)) => m == expected,
        (Outcome::Panicked, Failure::Panic) => true,
        _ => false,
    }
}

/// Value type of `text` on its own, when it parses.
fn value_type(text: &str) -> Option<ValueType> {
    match parse_alone(text) {
        Outcome::Parsed(e) => Some(e.value_type()),
        _ => None,
    }
}

fn text(q: &str, (s, e): Span) -> &str {
    &q[s..e]
}

fn node_text<'q>(q: &'q str, n: &Node) -> &'q str {
    &q[n.start..n.end]
}

/// Byte offset of the part of `query` that the parser's `failure` is about; `None` when the query is not
/// understood (see [`tree`]).
pub(super) fn locate(query: &str, failure: Failure) -> Option<usize> {
    let root = tree::parse(query)?;
    let node = culprit(&root, query, failure);
    Some(position_in(node, query, failure).unwrap_or(node.start))
}

/// The smallest sub-expression that fails like the whole `root` does.
fn culprit<'t>(root: &'t Node, q: &str, failure: Failure) -> &'t Node {
    let mut node = root;
    'descend: loop {
        for child in node.children() {
            if fails_like(node_text(q, child), failure) {
                node = child;
                continue 'descend;
            }
        }
        return node;
    }
}

/// The part of `node` (whose children all parse) that `failure` is about.
fn position_in(node: &Node, q: &str, failure: Failure) -> Option<usize> {
    let message = failure.message();
    match &node.kind {
        Kind::Binary {
            op, group, labels, ..
        } => {
            if message.starts_with("unexpected <group_") {
                *group
            } else if let Some(label) = invalid_grouping_label(message) {
                find_label(q, labels, label)
            } else {
                // Operand types, `bool`, set operators, matching clauses: all are about this operator.
                Some(*op)
            }
        }
        Kind::Aggregate {
            name,
            args,
            trailing_comma,
            labels,
        } => aggregate_position(q, message, *name, args, *trailing_comma, labels),
        Kind::Call {
            name,
            args,
            trailing_comma,
        } => call_position(q, message, *name, args, *trailing_comma),
        Kind::Unary { sign, .. } => Some(*sign),
        Kind::Bracket {
            open,
            close,
            durations,
            ..
        } => {
            if message == "missing unit character in duration" {
                // `x[]`: the duration is missing right before the `]`.
                return Some(*close);
            }
            // A duration that fails the same way in a minimal range or subquery is the culprit; otherwise
            // the brackets cannot apply to what they follow.
            durations
                .iter()
                .enumerate()
                .find(|&(i, &d)| {
                    let probe = if i == 0 {
                        format!("x[{}]", text(q, d))
                    } else {
                        format!("x[1m:{}]", text(q, d))
                    };
                    fails_like(&probe, failure)
                })
                .map(|(_, d)| d.0)
                .or(Some(*open))
        }
        Kind::Offset { keyword, value, .. } => {
            let probe = format!("x offset {}", text(q, *value));
            Some(if fails_like(&probe, failure) {
                value.0
            } else {
                *keyword
            })
        }
        Kind::At { keyword, value, .. } => {
            let probe = format!("x @ {}", text(q, *value));
            Some(if fails_like(&probe, failure) {
                value.0
            } else {
                *keyword
            })
        }
        Kind::Selector {
            brace,
            matchers,
            separators,
        } => selector_position(q, failure, *brace, matchers, separators),
        Kind::Atom | Kind::Paren(_) => None,
    }
}

/// The label of `"<label> is not valid label in grouping opts"`.
fn invalid_grouping_label(message: &str) -> Option<&str> {
    message.strip_suffix(" is not valid label in grouping opts")
}

fn find_label(q: &str, labels: &[Span], label: &str) -> Option<usize> {
    labels
        .iter()
        .find(|&&l| text(q, l) == label)
        .map(|&(s, _)| s)
}

const TRAILING_COMMA: &str = "trailing commas not allowed in function call args";

fn aggregate_position(
    q: &str,
    message: &str,
    name: Span,
    args: &[Node],
    trailing_comma: Option<usize>,
    labels: &[Span],
) -> Option<usize> {
    if message == TRAILING_COMMA {
        return trailing_comma;
    }
    if let Some(label) = invalid_grouping_label(message) {
        return find_label(q, labels, label);
    }
    if let Some(rest) = message
        .strip_prefix("wrong number of arguments for aggregate expression provided, expected ")
    {
        // Too many arguments: the first one too many; too few: the operator.
        let expected: usize = rest.split(',').next()?.parse().ok()?;
        return Some(args.get(expected).map_or(name.0, |a| a.start));
    }
    if message.starts_with("expected type vector in aggregation expression") {
        // The aggregated expression is the last argument.
        return args.last().map(|a| a.start);
    }
    if message.starts_with("expected type ") && message.contains(" in aggregation expression") {
        // The parameter (of topk, quantile, count_values...) is the first.
        return args.first().map(|a| a.start);
    }
    Some(name.0)
}

fn call_position(
    q: &str,
    message: &str,
    name: Span,
    args: &[Node],
    trailing_comma: Option<usize>,
) -> Option<usize> {
    if message == TRAILING_COMMA {
        return trailing_comma;
    }
    if let Some(rest) = message.strip_prefix("expected ")
        && message.contains(" argument(s) in call to '")
    {
        // `expected N`, `expected at most N`: the first argument too many. `expected at least N`, or too
        // few: the function.
        if rest.starts_with("at least ") {
            return Some(name.0);
        }
        let rest = rest.strip_prefix("at most ").unwrap_or(rest);
        let expected: usize = rest.split(' ').next()?.parse().ok()?;
        return Some(args.get(expected).map_or(name.0, |a| a.start));
    }
    if message.contains(" in call to function '") {
        return mistyped_argument(q, text(q, name), args).or(Some(name.0));
    }
    Some(name.0)
}

/// A placeholder argument of each type, for probes.
fn placeholder(t: ValueType) -> &'static str {
    match t {
        ValueType::Scalar => "1",
        ValueType::Vector => "x",
        ValueType::Matrix => "x[1m]",
        ValueType::String => "\"x\"",
    }
}

/// The first argument of a call whose type the function does not take.
///
/// The parser's function table is private, so the expected types are found by probing: the parser checks
/// arguments in order and reports the first mismatch as `... got <type>`. With argument `i` kept and every
/// later one replaced by a placeholder of another type, a mismatch reported as `got <type of i>` can only
/// be argument `i`'s (the earlier ones passed the previous probes).
fn mistyped_argument(q: &str, name: &str, args: &[Node]) -> Option<usize> {
    let types: Vec<ValueType> = args
        .iter()
        .map(|a| value_type(node_text(q, a)))
        .collect::<Option<_>>()?;
    for (i, &t) in types.iter().enumerate() {
        let other = [
            ValueType::Scalar,
            ValueType::Vector,
            ValueType::Matrix,
            ValueType::String,
        ]
        .into_iter()
        .find(|&o| o != t)?;
        let probe_args: Vec<&str> = args[..=i]
            .iter()
            .map(|a| node_text(q, a))
            .chain(std::iter::repeat_n(placeholder(other), args.len() - i - 1))
            .collect();
        let probe = format!("{name}({})", probe_args.join(", "));
        if let Outcome::Failed(m) = parse_alone(&probe)
            && m.ends_with(&format!(" in call to function '{name}', got {t}"))
        {
            return Some(args[i].start);
        }
    }
    None
}

fn selector_position(
    q: &str,
    failure: Failure,
    brace: usize,
    matchers: &[Span],
    separators: &[usize],
) -> Option<usize> {
    let message = failure.message();
    if message.starts_with("vector selector must contain at least one non-empty matcher") {
        return Some(brace);
    }
    if message.starts_with("unexpected ',' in label matching") {
        // `{,}`
        return separators.first().copied();
    }
    if message.starts_with("metric name must not be set twice") {
        // The second name is the `__name__` matcher, or a bare quoted name (`{"foo"}`).
        return matchers
            .iter()
            .find(|&&m| {
                let t = text(q, m);
                let name = t
                    .split(|c: char| matches!(c, '=' | '!') || c.is_whitespace())
                    .next()
                    .unwrap_or_default();
                name.trim_matches(|c| matches!(c, '"' | '\'' | '`')) == "__name__"
                    || !t.contains(['=', '!'])
            })
            .map(|&(s, _)| s);
    }
    // A matcher that fails the same way on its own is the culprit.
    let &matcher = matchers
        .iter()
        .find(|&&m| fails_like(&format!("{{{}}}", text(q, m)), failure))?;
    let matcher_text = text(q, matcher);
    if message.starts_with("unexpected '") || message.starts_with("unexpected identifier '") {
        // `a=~=~"b"`, `a = b`: what stands after the matching operator, where the value should be.
        return Some(matcher.0 + after_match_op(matcher_text)?);
    }
    if message.starts_with("illegal regex for ") {
        // The value, last in the matcher.
        let &(s, _) = super::tokens(matcher_text).last()?;
        return Some(matcher.0 + s);
    }
    Some(matcher.0)
}

/// Offset in a matcher's text of what follows its label name and first matching operator. (Inside braces
/// the lexer reads `==` as `=` twice, so the operators are not cut as tokens are elsewhere.)
fn after_match_op(matcher: &str) -> Option<usize> {
    let &(_, name_end) = super::tokens(matcher).first()?;
    let skip_blanks =
        |from: usize| from + (matcher[from..].len() - matcher[from..].trim_start().len());
    let op_at = skip_blanks(name_end);
    let op_len = ["=~", "!~", "!=", "="]
        .iter()
        .find(|op| matcher[op_at..].starts_with(**op))?
        .len();
    Some(skip_blanks(op_at + op_len))
}

/// Byte offset of the first `limitk`/`limit_ratio` parameter (children first, left to right) that is not a
/// scalar. The parser does not check these, Prometheus does.
pub(super) fn limit_param(query: &str) -> Option<usize> {
    let root = tree::parse(query)?;
    root.post_order().into_iter().find_map(|n| match &n.kind {
        Kind::Aggregate { name, args, .. }
            if matches!(
                text(query, *name).to_ascii_lowercase().as_str(),
                "limitk" | "limit_ratio"
            ) && args.len() == 2 =>
        {
            let param = &args[0];
            value_type(node_text(query, param))
                .is_some_and(|t| t != ValueType::Scalar)
                .then_some(param.start)
        }
        _ => None,
    })
}
