//! Tokenizer for LogQL. Every token carries its byte offset so errors can point at it.

use crate::error::LogqlError;

/// Token kinds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    LBrace,
    RBrace,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    /// `=`
    Assign,
    /// `==`
    EqEq,
    /// `!=`
    Ne,
    /// `=~`
    Re,
    /// `!~`
    Nre,
    /// `|=`
    PipeEq,
    /// `|~`
    PipeRe,
    /// `|>`
    PipeGt,
    Pipe,
    Gt,
    Ge,
    Lt,
    Le,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Caret,
    Str(String),
    /// A number, possibly with a unit suffix (`5m`, `1h30m`, `20MB`, `1.5e3`).
    Num(String),
    Ident(String),
    Eof,
}

impl Tok {
    /// How the token reads in an error message.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Str(s) => format!("string {}", crate::ast::quote(s)),
            Self::Num(n) => format!("number '{n}'"),
            Self::Ident(i) => format!("identifier '{i}'"),
            Self::Eof => "end of query".to_owned(),
            other => format!("'{}'", other.symbol()),
        }
    }

    pub(crate) fn symbol(&self) -> &'static str {
        match self {
            Self::LBrace => "{",
            Self::RBrace => "}",
            Self::LParen => "(",
            Self::RParen => ")",
            Self::LBracket => "[",
            Self::RBracket => "]",
            Self::Comma => ",",
            Self::Assign => "=",
            Self::EqEq => "==",
            Self::Ne => "!=",
            Self::Re => "=~",
            Self::Nre => "!~",
            Self::PipeEq => "|=",
            Self::PipeRe => "|~",
            Self::PipeGt => "|>",
            Self::Pipe => "|",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Plus => "+",
            Self::Minus => "-",
            Self::Star => "*",
            Self::Slash => "/",
            Self::Percent => "%",
            Self::Caret => "^",
            Self::Str(_) | Self::Num(_) | Self::Ident(_) | Self::Eof => "",
        }
    }
}

/// A token and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub pos: usize,
}

/// Reads a Go-style quoted string (`"..."` with escapes, or a raw `` `...` `` string) at the
/// start of `s`. Returns the value and the number of bytes consumed, or an offset and message.
pub(crate) fn unquote_prefix(s: &str) -> Result<(String, usize), (usize, String)> {
    let mut chars = s.char_indices();
    let Some((_, q)) = chars.next() else {
        return Err((0, "expected a string".into()));
    };
    if q == '`' {
        return match s[1..].find('`') {
            Some(end) => Ok((s[1..=end].to_owned(), end + 2)),
            None => Err((0, "unterminated raw string".into())),
        };
    }
    if q != '"' {
        return Err((0, "expected a string".into()));
    }
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, i + 1)),
            '\n' => return Err((i, "newline in string".into())),
            '\\' => {
                let Some((j, e)) = chars.next() else {
                    break;
                };
                let simple = match e {
                    'n' => Some('\n'),
                    't' => Some('\t'),
                    'r' => Some('\r'),
                    'a' => Some('\x07'),
                    'b' => Some('\x08'),
                    'f' => Some('\x0c'),
                    'v' => Some('\x0b'),
                    '\\' => Some('\\'),
                    '"' => Some('"'),
                    '\'' => Some('\''),
                    _ => None,
                };
                if let Some(c) = simple {
                    out.push(c);
                    continue;
                }
                let digits = match e {
                    'x' => 2,
                    'u' => 4,
                    'U' => 8,
                    '0'..='7' => 2,
                    _ => return Err((i, format!("unknown escape sequence '\\{e}'"))),
                };
                let mut hex = String::new();
                for _ in 0..digits {
                    match chars.next() {
                        Some((_, d)) => hex.push(d),
                        None => return Err((i, "unterminated escape sequence".into())),
                    }
                }
                let value = if e.is_ascii_digit() {
                    u32::from_str_radix(&format!("{e}{hex}"), 8).ok()
                } else {
                    u32::from_str_radix(&hex, 16).ok()
                };
                match value {
                    // \x and octal escapes are single bytes in Go; only ASCII is valid UTF-8 alone.
                    Some(v) if (e == 'x' || e.is_ascii_digit()) && v > 0x7f => {
                        return Err((j, "non-ASCII byte escape is not supported".into()));
                    }
                    Some(v) => match char::from_u32(v) {
                        Some(c) => out.push(c),
                        None => return Err((j, "invalid Unicode code point".into())),
                    },
                    None => return Err((j, "invalid escape sequence".into())),
                }
            }
            c => out.push(c),
        }
    }
    Err((0, "unterminated string".into()))
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Splits a query into tokens, ending with [`Tok::Eof`].
pub(crate) fn lex(src: &str) -> Result<Vec<Token>, LogqlError> {
    let mut out = Vec::new();
    let bytes = src.as_bytes();
    let mut i = 0;
    while i < src.len() {
        let rest = &src[i..];
        let Some(c) = rest.chars().next() else { break };
        if c.is_whitespace() {
            i += c.len_utf8();
            continue;
        }
        if c == '#' {
            // Loki accepts `#` line comments.
            i += rest.find('\n').unwrap_or(rest.len());
            continue;
        }
        let next = bytes.get(i + 1).copied().map(char::from);
        let two = |t: Tok| (t, 2usize);
        let one = |t: Tok| (t, 1usize);
        let simple = match (c, next) {
            ('{', _) => Some(one(Tok::LBrace)),
            ('}', _) => Some(one(Tok::RBrace)),
            ('(', _) => Some(one(Tok::LParen)),
            (')', _) => Some(one(Tok::RParen)),
            ('[', _) => Some(one(Tok::LBracket)),
            (']', _) => Some(one(Tok::RBracket)),
            (',', _) => Some(one(Tok::Comma)),
            ('=', Some('=')) => Some(two(Tok::EqEq)),
            ('=', Some('~')) => Some(two(Tok::Re)),
            ('=', _) => Some(one(Tok::Assign)),
            ('!', Some('=')) => Some(two(Tok::Ne)),
            ('!', Some('~')) => Some(two(Tok::Nre)),
            ('|', Some('=')) => Some(two(Tok::PipeEq)),
            ('|', Some('~')) => Some(two(Tok::PipeRe)),
            ('|', Some('>')) => Some(two(Tok::PipeGt)),
            ('|', _) => Some(one(Tok::Pipe)),
            ('>', Some('=')) => Some(two(Tok::Ge)),
            ('>', _) => Some(one(Tok::Gt)),
            ('<', Some('=')) => Some(two(Tok::Le)),
            ('<', _) => Some(one(Tok::Lt)),
            ('+', _) => Some(one(Tok::Plus)),
            ('-', _) => Some(one(Tok::Minus)),
            ('*', _) => Some(one(Tok::Star)),
            ('/', _) => Some(one(Tok::Slash)),
            ('%', _) => Some(one(Tok::Percent)),
            ('^', _) => Some(one(Tok::Caret)),
            _ => None,
        };
        if let Some((tok, len)) = simple {
            out.push(Token { tok, pos: i });
            i += len;
            continue;
        }
        if c == '"' || c == '`' {
            let (s, len) =
                unquote_prefix(rest).map_err(|(off, m)| LogqlError::parse(i + off, m))?;
            out.push(Token {
                tok: Tok::Str(s),
                pos: i,
            });
            i += len;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && next.is_some_and(|n| n.is_ascii_digit())) {
            let mut j = i;
            let mut prev_e = false;
            while let Some(ch) = src[j..].chars().next() {
                let sign_after_e = (ch == '+' || ch == '-')
                    && prev_e
                    && src[j + 1..].starts_with(|d: char| d.is_ascii_digit());
                if ch.is_ascii_alphanumeric() || ch == '.' || ch == 'µ' || ch == 'μ' || sign_after_e
                {
                    prev_e = (ch == 'e' || ch == 'E')
                        && src[i..j].chars().all(|d| d.is_ascii_digit() || d == '.');
                    j += ch.len_utf8();
                } else {
                    break;
                }
            }
            out.push(Token {
                tok: Tok::Num(src[i..j].to_owned()),
                pos: i,
            });
            i = j;
            continue;
        }
        if is_ident_start(c) {
            let len = rest
                .find(|ch: char| !is_ident_char(ch))
                .unwrap_or(rest.len());
            out.push(Token {
                tok: Tok::Ident(rest[..len].to_owned()),
                pos: i,
            });
            i += len;
            continue;
        }
        return Err(LogqlError::parse(i, format!("unexpected character {c:?}")));
    }
    out.push(Token {
        tok: Tok::Eof,
        pos: src.len(),
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn basic_tokens() {
        assert_eq!(
            toks(r#"{a="b"} |= "x" != `y` |~ "z" | json"#),
            vec![
                Tok::LBrace,
                Tok::Ident("a".into()),
                Tok::Assign,
                Tok::Str("b".into()),
                Tok::RBrace,
                Tok::PipeEq,
                Tok::Str("x".into()),
                Tok::Ne,
                Tok::Str("y".into()),
                Tok::PipeRe,
                Tok::Str("z".into()),
                Tok::Pipe,
                Tok::Ident("json".into()),
                Tok::Eof
            ]
        );
        assert_eq!(
            toks("[1h30m] 1.5e-3 20MB"),
            vec![
                Tok::LBracket,
                Tok::Num("1h30m".into()),
                Tok::RBracket,
                Tok::Num("1.5e-3".into()),
                Tok::Num("20MB".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn strings_and_errors() {
        assert_eq!(toks(r#""a\"b\n\u00e9""#)[0], Tok::Str("a\"b\né".into()));
        let e = lex(r#"{a="b}"#).unwrap_err();
        assert_eq!(e.position(), Some(3));
        let e = lex("{a@}").unwrap_err();
        assert_eq!(e.position(), Some(2));
        assert!(lex(r#""\q""#).is_err());
    }
}
