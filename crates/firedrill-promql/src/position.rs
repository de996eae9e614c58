//! Locating parse errors that `promql-parser` reports without a position.
//!
//! The parser drops its LR error spans and answers "invalid promql query" for any syntax error; its generated
//! grammar module is private, so the spans cannot be recovered. Its other errors carry no position either.
//! Each kind is located its own way:
//!
//! * a lexer error (`unexpected character inside braces`, `unclosed left parenthesis`, ...) by lexing prefixes
//!   or, for what the lexer only notices at the end, by finding the construct left open ([`lexical`]);
//! * an error of the grammar's actions or type checks (`binary expression must contain only scalar and instant
//!   vector types`, `expected type vector in aggregation expression, got matrix`, arity and argument types,
//!   modifiers, matchers, ...) by finding the sub-expression that raises it in a span tree of the query, then
//!   the part of it the message is about ([`semantic`], [`tree`]); should the tree not be understood, an
//!   error naming a function (`unknown function with name 'f'`, `... in call to 'f'`) still points at the
//!   first call of that function;
//! * a syntax error: the query is cut at each token boundary and every prefix is tested for being *viable*,
//!   i.e. some short completion (an operand, a matcher, a call, then the brackets still open) is syntactically
//!   valid. Type and arity errors of a completion do not count against it: they are raised by the grammar's
//!   actions, after the whole input was recognised. The first token whose prefix is not viable is where the
//!   query stopped making sense, which is where an LR parser reports its error. When every prefix is viable
//!   and only the whole fails, the query ends too early and the position is its end.
//!
//! When a kind of error cannot be located, it gets no position: no position is better than a wrong one. The
//! tests hold the syntax scan to every valid query of the conformance scripts (no prefix of a valid query may
//! be judged dead, or positions would come out too early).

mod lexical;
mod semantic;
mod tree;

use promql_parser::parser;

/// What the parser says about every syntax error.
const SYNTAX_ERROR: &str = "invalid promql query";

/// Queries longer than this are not scanned (each prefix, or each sub-expression on the way to an error, costs
/// a parse or a few).
const MAX_SCAN_BYTES: usize = 4096;

/// Byte offset of the error in `query`, for a parser `message` that carries none.
pub(crate) fn locate(query: &str, message: &str) -> Option<usize> {
    if let Some(found) = lexical::locate(query, message) {
        return found;
    }
    if END_OF_INPUT.iter().any(|m| message.starts_with(m)) {
        return Some(query.len());
    }
    if message != SYNTAX_ERROR {
        if query.len() > MAX_SCAN_BYTES {
            return function_position(query, message);
        }
        return semantic::locate(query, semantic::Failure::Message(message))
            .or_else(|| function_position(query, message));
    }
    if query.len() > MAX_SCAN_BYTES {
        return None;
    }
    let tokens = tokens(query);
    let mut open: Vec<u8> = Vec::new();
    for &(start, end) in &tokens {
        track_brackets(&mut open, &query[start..end]);
        if !viable(&query[..end], &open) {
            return Some(start);
        }
    }
    // Every prefix can be completed, the whole cannot stand alone: the query ends too early.
    (!tokens.is_empty()).then_some(query.len())
}

/// Byte offset of what makes the parser panic on `query`: the smallest sub-expression that panics on its own
/// (and in it the duration or time, for a range, subquery, `offset` or `@`).
pub(crate) fn locate_panic(query: &str) -> Option<usize> {
    if query.len() > MAX_SCAN_BYTES {
        return None;
    }
    semantic::locate(query, semantic::Failure::Panic)
}

/// Byte offset of the first `limitk`/`limit_ratio` parameter of a parsed `query` that is not a scalar, which
/// the parser lets through.
pub(crate) fn limit_param_position(query: &str) -> Option<usize> {
    semantic::limit_param(query)
}

/// Messages of the grammar for input that ends where something else must follow (only blanks and comments,
/// an `offset` or `@` without a value).
const END_OF_INPUT: &[&str] = &[
    "no expression found in input",
    "unexpected end of input in offset, expected duration",
    "unexpected end of input in @, expected timestamp",
];

/// The position of the function a message names, as `name(` in the query.
fn function_position(query: &str, message: &str) -> Option<usize> {
    let named = [
        "unknown function with name '",
        "in call to function '",
        "in call to '",
    ]
    .iter()
    .find_map(|marker| {
        let rest = &message[message.find(marker)? + marker.len()..];
        Some(&rest[..rest.find('\'')?])
    })?;
    if named.is_empty() {
        return None;
    }
    let mut from = 0;
    while let Some(i) = query[from..].find(named) {
        let at = from + i;
        let before_ok = query[..at].chars().next_back().is_none_or(|c| !is_word(c));
        let after = query[at + named.len()..].trim_start();
        if before_ok && after.starts_with('(') {
            return Some(at);
        }
        from = at + named.len();
    }
    None
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == ':' || c == '.'
}

/// Token spans, approximately as PromQL's lexer cuts them: words (names, numbers, durations), strings,
/// two-character operators and single characters. Comments and blanks separate tokens.
fn tokens(q: &str) -> Vec<(usize, usize)> {
    let b = q.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'#' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let start = i;
        if c == b'"' || c == b'\'' || c == b'`' {
            i += 1;
            while i < b.len() && b[i] != c {
                if b[i] == b'\\' && c != b'`' {
                    i += 1;
                }
                i += 1;
            }
            i = (i + 1).min(b.len());
        } else if c.is_ascii_alphanumeric() || c == b'_' || c == b':' || c == b'.' || c >= 0x80 {
            let numeric = c.is_ascii_digit() || c == b'.';
            while i < b.len() {
                let d = b[i];
                if d.is_ascii_alphanumeric() || d == b'_' || d == b':' || d == b'.' || d >= 0x80 {
                    i += 1;
                } else if numeric
                    && (d == b'+' || d == b'-')
                    && matches!(b[i - 1], b'e' | b'E')
                    && !b[start..i].starts_with(b"0x")
                {
                    // The sign of an exponent (`1e-5`) belongs to the number.
                    i += 1;
                } else {
                    break;
                }
            }
        } else {
            let two = b.get(i..i + 2);
            i += match two {
                Some(b"==" | b"!=" | b">=" | b"<=" | b"=~" | b"!~") => 2,
                _ => 1,
            };
        }
        // Stay on character boundaries whatever the bytes were.
        while i < b.len() && !q.is_char_boundary(i) {
            i += 1;
        }
        out.push((start, i));
    }
    out
}

fn track_brackets(open: &mut Vec<u8>, token: &str) {
    match token {
        "(" => open.push(b')'),
        "[" => open.push(b']'),
        "{" => open.push(b'}'),
        ")" | "]" | "}" if open.last() == token.as_bytes().first() => {
            open.pop();
        }
        _ => {}
    }
}

/// What may follow a prefix before its open brackets are closed.
const MIDDLES: &[&str] = &[
    "", " x", " 1", "(x)", " (x)", " (x) (x)", "=\"y\"", "\"y\"", " x=\"y\"", "[5m]", "5m", "m",
    ":1m", "()",
];

/// What may follow a prefix whose innermost open bracket is `(`, closing it (grouping clauses and matching
/// modifiers are followed by an operand: `by (a) (x)`, `ignoring(a) x`).
const CLOSING_MIDDLES: &[&str] = &[")", ") x", "x) x", "x) (x)"];

/// What may follow once the brackets are closed.
const TAILS: &[&str] = &["", " (x)", " x"];

/// Whether `candidate` is syntactically valid PromQL (type and arity errors allowed).
fn syntactically_valid(candidate: &str) -> bool {
    if parser::lex::lexer(candidate).is_err() {
        return false;
    }
    // A number the parser would panic on (see `unrepresentable_duration`) does not parse; any other panic is
    // caught the same way.
    if crate::engine::unrepresentable_duration(candidate).is_some() {
        return false;
    }
    match std::panic::catch_unwind(|| parser::parse(candidate)) {
        Ok(Ok(_)) => true,
        Ok(Err(message)) => message != SYNTAX_ERROR,
        Err(_) => false,
    }
}

fn viable(prefix: &str, open: &[u8]) -> bool {
    let closers: String = open.iter().rev().map(|&c| c as char).collect();
    let open_middles = MIDDLES.iter().map(|m| (*m, closers.as_str()));
    // Middles that close the innermost `(` themselves leave the outer brackets to close.
    let closing = if open.last() == Some(&b')') {
        CLOSING_MIDDLES
    } else {
        &[]
    };
    let closing_middles = closing.iter().map(|m| (*m, &closers[1..]));
    open_middles.chain(closing_middles).any(|(m, c)| {
        TAILS
            .iter()
            .any(|t| syntactically_valid(&format!("{prefix}{m}{c}{t}")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(q: &str) -> Option<usize> {
        let message = parser::parse(q).expect_err("query must fail");
        locate(q, &message)
    }

    #[test]
    fn positions_of_common_mistakes() {
        assert_eq!(at("sum by (le) up"), Some(12));
        assert_eq!(at("1 +* 2"), Some(3));
        assert_eq!(at("up + "), Some(5));
        assert_eq!(at("sum(up) by"), Some(10));
        assert_eq!(at("rate(up)"), Some(5));
        assert_eq!(at("1 + unknown_fn(up)"), Some(4));
        assert_eq!(at("histogram_quantile(0.9)"), Some(0));
        assert_eq!(at(r#"up{a="b"} == == 1"#), Some(13));
        assert_eq!(at("sum(rate(x[5m])) by (a) b"), Some(24));
    }

    /// The query of an `eval` line: what follows `at <time>` or `step <duration>`.
    fn eval_query(line: &str) -> Option<&str> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let i = words.iter().position(|w| *w == "at" || *w == "step")?;
        let time = words.get(i + 1)?;
        let from = line.find(&format!(" {time} "))? + time.len() + 2;
        Some(line[from..].trim())
    }

    /// No prefix of a valid query may be judged dead, or positions would come out too early: checked on every
    /// valid query of the vendored Prometheus scripts and our own.
    #[test]
    fn every_prefix_of_a_valid_query_is_viable() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
        let mut checked = 0;
        let mut dead = Vec::new();
        for dir in ["prometheus/core", "scripts"] {
            let mut files: Vec<_> = std::fs::read_dir(root.join(dir))
                .expect("scripts")
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            files.sort();
            for f in files {
                let text = std::fs::read_to_string(&f).expect("read");
                for line in text.lines().filter(|l| l.starts_with("eval")) {
                    let Some(q) = eval_query(line) else { continue };
                    if parser::parse(q).is_err() {
                        continue;
                    }
                    checked += 1;
                    let mut open = Vec::new();
                    for &(start, end) in &tokens(q) {
                        track_brackets(&mut open, &q[start..end]);
                        if !viable(&q[..end], &open) {
                            dead.push(format!("{q}  <-- dead after {:?}", &q[..end]));
                            break;
                        }
                    }
                }
            }
        }
        assert!(checked > 900, "{checked}");
        assert!(
            dead.is_empty(),
            "{} of {checked}:\n{}",
            dead.len(),
            dead.join("\n")
        );
    }

    #[test]
    fn tokens_split_like_the_lexer() {
        let q = r#"a{b=~"c\"d"} >= 1e-5 # note"#;
        let t: Vec<&str> = tokens(q).iter().map(|&(s, e)| &q[s..e]).collect();
        assert_eq!(t, ["a", "{", "b", "=~", r#""c\"d""#, "}", ">=", "1e-5"]);
    }
}
