//! Locating the lexer's errors, which the parser passes on without a position.
//!
//! Errors about a character in the middle of the query (`unexpected character inside braces: '$'`) are
//! found by lexing prefixes: the first prefix on which the lexer fails with the same message ends at the
//! offending character (shorter prefixes end inside a token or construct, which gives another message).
//!
//! That does not work for the errors the lexer only notices at the end of the input, because any earlier
//! construct cut in the middle gives the same message (`a + (b` cut after `a + (` is unclosed too, and so
//! is `(a) + (b` cut after `(`). These point at the construct left open: the earliest unmatched `(`, the
//! unclosed `{` or `[`, the opening quote of an unterminated string. A scan mirroring the lexer's
//! contexts (strings, comments, braces, brackets) finds them.

use promql_parser::parser;

/// Prefixes of longer queries are not scanned (each costs a lexer run).
const MAX_SCAN_BYTES: usize = 4096;

/// For a lexer error of `query` (the lexer fails with exactly `message`): `Some` of where it is, if that
/// could be found. `None` when `message` is not the lexer's.
pub(super) fn locate(query: &str, message: &str) -> Option<Option<usize>> {
    match parser::lex::lexer(query) {
        Err(e) if e == message => {}
        _ => return None,
    }
    let open = open_at_end(query);
    Some(match message {
        "unclosed left parenthesis" => open.parens.first().copied(),
        "unexpected end of input inside braces" => open.brace,
        "unexpected end of input inside brackets" => open.bracket,
        "escape sequence not terminated" => open.string,
        m if m.starts_with("unterminated quoted string") => open.string,
        // Both are raised for the very last character.
        "'!' can not be at the end" | "unexpected character: '.'" => {
            query.char_indices().next_back().map(|(i, _)| i)
        }
        _ => first_failing_prefix(query, message),
    })
}

/// The first character whose prefix makes the lexer fail with `message`.
fn first_failing_prefix(query: &str, message: &str) -> Option<usize> {
    if query.len() > MAX_SCAN_BYTES {
        return None;
    }
    query.char_indices().find_map(|(i, c)| {
        let end = i + c.len_utf8();
        matches!(parser::lex::lexer(&query[..end]), Err(e) if e == message).then_some(i)
    })
}

/// What is still open at the end of a query.
#[derive(Debug, Default, PartialEq)]
struct Open {
    /// Unmatched `(`, earliest first.
    parens: Vec<usize>,
    /// An unclosed `{` (braces do not nest).
    brace: Option<usize>,
    /// An unclosed `[` (brackets do not nest).
    bracket: Option<usize>,
    /// The opening quote of an unterminated string.
    string: Option<usize>,
}

/// Scans `q` as the lexer does: strings (any quote; a backslash escapes the next character, even in
/// backquotes) and `#` comments outside brackets; only `]` ends brackets; parentheses outside braces.
fn open_at_end(q: &str) -> Open {
    let mut open = Open::default();
    let mut chars = q.char_indices();
    while let Some((i, c)) = chars.next() {
        if open.bracket.is_some() {
            if c == ']' {
                open.bracket = None;
            }
            continue;
        }
        match c {
            '#' => {
                for (_, c) in chars.by_ref() {
                    if c == '\n' || c == '\r' {
                        break;
                    }
                }
            }
            '"' | '\'' | '`' => {
                open.string = Some(i);
                while let Some((_, s)) = chars.next() {
                    if s == '\\' {
                        chars.next();
                    } else if s == c {
                        open.string = None;
                        break;
                    }
                }
            }
            '{' => open.brace = open.brace.or(Some(i)),
            '}' => open.brace = None,
            _ if open.brace.is_some() => {}
            '(' => open.parens.push(i),
            ')' => {
                open.parens.pop();
            }
            '[' => open.bracket = Some(i),
            _ => {}
        }
    }
    open
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(q: &str) -> Option<usize> {
        let message = parser::lex::lexer(q).err().expect("lexer must fail");
        locate(q, &message).expect("a lexer error")
    }

    #[test]
    fn unclosed_constructs_point_at_their_opening() {
        assert_eq!(at("sum(rate(foo[5m])"), Some(3));
        assert_eq!(at("a + (b"), Some(4));
        assert_eq!(at("(a) + (b"), Some(6));
        assert_eq!(at("sum(rate(foo[5m]"), Some(3));
        assert_eq!(at("f(\")\", (x"), Some(1));
        assert_eq!(at("f(x) # (\n + g(y"), Some(13));
        assert_eq!(at(r#"a{b="("} + (c"#), Some(11));
        assert_eq!(at(r#"a{b="c"} + d{e="f""#), Some(12));
        assert_eq!(at("a[5m] + b[5m"), Some(9));
        assert_eq!(at(r#""a" + "b"#), Some(6));
        assert_eq!(at(r#""a\"" + 'b\"#), Some(8));
        assert_eq!(at("a != b !"), Some(7));
    }

    #[test]
    fn characters_in_the_middle() {
        assert_eq!(at("foo $ bar"), Some(4));
        assert_eq!(at(r#"a{b="c"} + d{e~"f"}"#), Some(14));
        assert_eq!(at("a)"), Some(1));
    }

    #[test]
    fn only_lexer_errors() {
        assert_eq!(locate("a +", "invalid promql query"), None);
        // The lexer accepts an empty query; the grammar does not.
        assert_eq!(locate("", "no expression found in input"), None);
    }
}
