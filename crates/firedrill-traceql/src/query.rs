//! A TraceQL subset: spanset filters combined with `&&`/`||`.
//!
//! Why hand-written: no maintained Rust TraceQL parser exists (checked on crates.io/docs.rs and
//! in public code in 2026-11; the only standalone parser is a Go module vendored out of Tempo).
//! The subset we need is small, and owning it lets every error carry a byte offset.
//!
//! Grammar:
//! ```text
//! query    := and ( "||" and )*
//! and      := primary ( "&&" primary )*
//! primary  := "{" cond? "}" | "(" query ")"
//! cond     := conj ( "||" conj )*
//! conj     := atom ( "&&" atom )*
//! atom     := "(" cond ")" | field op value | "true" | "false"
//! field    := name | status | duration | kind | rootName | rootServiceName | traceDuration
//!           | span:name | span:status | span:duration | span:kind
//!           | trace:rootName | trace:rootService | trace:duration
//!           | .attr | span.attr | resource.attr        (attr may be quoted: span."a b")
//! op       := = | != | > | >= | < | <= | =~ | !~
//! value    := "string" | int | float | duration (500ms) | true | false | nil
//!           | error | ok | unset | server | client | internal | producer | consumer
//! ```
//! Regular expressions are fully anchored, as in Tempo. Comparisons between mismatched types,
//! or against a missing attribute, are false (`!= nil` tests presence).

use regex::Regex;

use crate::error::TraceqlError;
use crate::model::{AttrValue, Span, SpanKind, SpanStatus, Trace};

/// Longest query accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 64 * 1024;
const MAX_DEPTH: usize = 64;

/// A parsed TraceQL query.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// `{ cond }`
    Spanset(Option<Cond>),
    /// Both spansets must match in the same trace.
    And(Box<Query>, Box<Query>),
    /// Either spanset must match.
    Or(Box<Query>, Box<Query>),
}

/// A condition inside a spanset.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// Both.
    And(Box<Cond>, Box<Cond>),
    /// Either.
    Or(Box<Cond>, Box<Cond>),
    /// A comparison.
    Cmp(Comparison),
    /// `true` / `false`.
    Const(bool),
}

/// Attribute scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `.attr`: span, then resource.
    Any,
    /// `span.attr`
    Span,
    /// `resource.attr`
    Resource,
}

/// What a comparison looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// Span name.
    Name,
    /// Span status.
    Status,
    /// Span duration.
    Duration,
    /// Span kind.
    Kind,
    /// Root span name.
    RootName,
    /// Root span's service.
    RootServiceName,
    /// Trace duration (earliest start to latest end).
    TraceDuration,
    /// An attribute.
    Attr {
        /// Scope.
        scope: Scope,
        /// Attribute key (`http.status_code`).
        name: String,
    },
}

impl Field {
    /// The key Tempo reports for this field in search results.
    pub fn key(&self) -> &str {
        match self {
            Self::Name => "name",
            Self::Status => "status",
            Self::Duration => "duration",
            Self::Kind => "kind",
            Self::RootName => "rootName",
            Self::RootServiceName => "rootServiceName",
            Self::TraceDuration => "traceDuration",
            Self::Attr { name, .. } => name,
        }
    }
}

/// Comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `=~`
    Re,
    /// `!~`
    Nre,
}

impl Op {
    /// The TraceQL spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Ne => "!=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Re => "=~",
            Self::Nre => "!~",
        }
    }

    fn ord(self, o: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self {
            Self::Eq => o == Equal,
            Self::Ne => o != Equal,
            Self::Gt => o == Greater,
            Self::Ge => o != Less,
            Self::Lt => o == Less,
            Self::Le => o != Greater,
            Self::Re | Self::Nre => false,
        }
    }
}

/// A literal on the right of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// String.
    Str(String),
    /// Integer.
    Int(i64),
    /// Float.
    Float(f64),
    /// Boolean.
    Bool(bool),
    /// Duration in nanoseconds.
    Duration(i64),
    /// Status keyword.
    Status(SpanStatus),
    /// Kind keyword.
    Kind(SpanKind),
    /// `nil` (presence test).
    Nil,
}

/// `field op value`.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// Left side.
    pub field: Field,
    /// Operator.
    pub op: Op,
    /// Right side.
    pub value: Literal,
    re: Option<Regex>,
}

impl PartialEq for Comparison {
    fn eq(&self, o: &Self) -> bool {
        self.field == o.field && self.op == o.op && self.value == o.value
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LBrace,
    RBrace,
    LParen,
    RParen,
    AndAnd,
    OrOr,
    Op(Op),
    Pipe,
    Minus,
    Str(String),
    Num(String),
    Ident(String),
    Attr(Scope, String),
    Other(char),
    Eof,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Self::LBrace => "'{'".into(),
            Self::RBrace => "'}'".into(),
            Self::LParen => "'('".into(),
            Self::RParen => "')'".into(),
            Self::AndAnd => "'&&'".into(),
            Self::OrOr => "'||'".into(),
            Self::Op(o) => format!("'{}'", o.as_str()),
            Self::Pipe => "'|'".into(),
            Self::Minus => "'-'".into(),
            Self::Str(s) => format!("string {s:?}"),
            Self::Num(n) => format!("number '{n}'"),
            Self::Ident(i) => format!("identifier '{i}'"),
            Self::Attr(_, a) => format!("attribute '{a}'"),
            Self::Other(c) => format!("{c:?}"),
            Self::Eof => "end of query".into(),
        }
    }
}

fn is_attr_char(c: char) -> bool {
    !(c.is_whitespace() || "{}()=!<>~&|,\"".contains(c))
}

/// Reads a Go-style double-quoted or backtick string at the start of `s`.
fn read_string(s: &str, pos: usize) -> Result<(String, usize), TraceqlError> {
    let mut chars = s.char_indices();
    let quote = chars.next().map(|(_, c)| c);
    if quote == Some('`') {
        return match s[1..].find('`') {
            Some(end) => Ok((s[1..=end].to_owned(), end + 2)),
            None => Err(TraceqlError::parse(pos, "unterminated string")),
        };
    }
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, i + 1)),
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, 'r')) => out.push('\r'),
                Some((_, e @ ('\\' | '"' | '\''))) => out.push(e),
                Some((j, e)) => {
                    return Err(TraceqlError::parse(
                        pos + j,
                        format!("unknown escape sequence '\\{e}'"),
                    ));
                }
                None => break,
            },
            c => out.push(c),
        }
    }
    Err(TraceqlError::parse(pos, "unterminated string"))
}

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, TraceqlError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < src.len() {
        let rest = &src[i..];
        let Some(c) = rest.chars().next() else { break };
        if c.is_whitespace() {
            i += c.len_utf8();
            continue;
        }
        let next = rest[c.len_utf8()..].chars().next();
        let (tok, len) = match (c, next) {
            ('{', _) => (Tok::LBrace, 1),
            ('}', _) => (Tok::RBrace, 1),
            ('(', _) => (Tok::LParen, 1),
            (')', _) => (Tok::RParen, 1),
            ('&', Some('&')) => (Tok::AndAnd, 2),
            ('|', Some('|')) => (Tok::OrOr, 2),
            ('|', _) => (Tok::Pipe, 1),
            ('=', Some('~')) => (Tok::Op(Op::Re), 2),
            ('=', _) => (Tok::Op(Op::Eq), 1),
            ('!', Some('=')) => (Tok::Op(Op::Ne), 2),
            ('!', Some('~')) => (Tok::Op(Op::Nre), 2),
            ('>', Some('=')) => (Tok::Op(Op::Ge), 2),
            ('>', _) => (Tok::Op(Op::Gt), 1),
            ('<', Some('=')) => (Tok::Op(Op::Le), 2),
            ('<', _) => (Tok::Op(Op::Lt), 1),
            ('-', _) => (Tok::Minus, 1),
            ('"' | '`', _) => {
                let (s, len) = read_string(rest, i)?;
                (Tok::Str(s), len)
            }
            ('.', Some(n)) if n == '"' || is_attr_char(n) => {
                let (name, len) = read_attr_name(&rest[1..], i + 1)?;
                (Tok::Attr(Scope::Any, name), len + 1)
            }
            (c, _) if c.is_ascii_digit() => {
                let len = rest
                    .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '.' || ch == 'µ'))
                    .unwrap_or(rest.len());
                (Tok::Num(rest[..len].to_owned()), len)
            }
            (c, _) if c.is_ascii_alphabetic() || c == '_' => {
                let len = rest
                    .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_' || ch == ':'))
                    .unwrap_or(rest.len());
                let word = &rest[..len];
                let scope = match word {
                    "span" => Some(Scope::Span),
                    "resource" => Some(Scope::Resource),
                    _ => None,
                };
                match (scope, rest[len..].strip_prefix('.')) {
                    (Some(scope), Some(after)) if !after.is_empty() => {
                        let (name, nlen) = read_attr_name(after, i + len + 1)?;
                        (Tok::Attr(scope, name), len + 1 + nlen)
                    }
                    _ => (Tok::Ident(word.to_owned()), len),
                }
            }
            (c, _) => (Tok::Other(c), c.len_utf8()),
        };
        out.push((tok, i));
        i += len;
    }
    out.push((Tok::Eof, src.len()));
    Ok(out)
}

fn read_attr_name(s: &str, pos: usize) -> Result<(String, usize), TraceqlError> {
    if s.starts_with('"') {
        return read_string(s, pos);
    }
    let len = s.find(|c: char| !is_attr_char(c)).unwrap_or(s.len());
    if len == 0 {
        return Err(TraceqlError::parse(pos, "expected an attribute name"));
    }
    Ok((s[..len].to_owned(), len))
}

/// Parses a TraceQL query. An empty query means `{}` (all spans), as Tempo treats it.
pub fn parse(query: &str) -> Result<Query, TraceqlError> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(TraceqlError::parse(
            MAX_QUERY_BYTES,
            format!("query is longer than {MAX_QUERY_BYTES} bytes"),
        ));
    }
    if query.trim().is_empty() {
        return Ok(Query::Spanset(None));
    }
    let mut p = Parser {
        toks: lex(query)?,
        i: 0,
        depth: 0,
    };
    let q = p.query()?;
    match p.peek() {
        Tok::Eof => Ok(q),
        Tok::Pipe => Err(p.err("pipelines ('| count()', '| select()', ...) are not supported")),
        Tok::Op(Op::Gt | Op::Lt) | Tok::Other('~') => {
            Err(p.err("structural operators (>, <, >>, <<, ~) are not supported"))
        }
        t => {
            let d = t.describe();
            Err(p.err(format!(
                "unexpected {d}: expected '&&', '||' or end of query"
            )))
        }
    }
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    i: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        self.toks.get(self.i).map_or(&Tok::Eof, |t| &t.0)
    }

    fn pos(&self) -> usize {
        self.toks
            .get(self.i)
            .or_else(|| self.toks.last())
            .map_or(0, |t| t.1)
    }

    fn bump(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.i + 1 < self.toks.len() {
            self.i += 1;
        }
        t
    }

    fn err(&self, msg: impl Into<String>) -> TraceqlError {
        TraceqlError::parse(self.pos(), msg)
    }

    fn expected(&self, what: &str) -> TraceqlError {
        self.err(format!(
            "expected {what} but found {}",
            self.peek().describe()
        ))
    }

    fn enter(&mut self) -> Result<(), TraceqlError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            Err(self.err(format!("query is nested more than {MAX_DEPTH} levels deep")))
        } else {
            Ok(())
        }
    }

    fn query(&mut self) -> Result<Query, TraceqlError> {
        let mut l = self.query_and()?;
        while self.peek() == &Tok::OrOr {
            self.bump();
            let r = self.query_and()?;
            l = Query::Or(Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn query_and(&mut self) -> Result<Query, TraceqlError> {
        let mut l = self.query_primary()?;
        while self.peek() == &Tok::AndAnd {
            self.bump();
            let r = self.query_primary()?;
            l = Query::And(Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn query_primary(&mut self) -> Result<Query, TraceqlError> {
        self.enter()?;
        let r = match self.peek() {
            Tok::LBrace => {
                self.bump();
                let cond = if self.peek() == &Tok::RBrace {
                    None
                } else {
                    Some(self.cond()?)
                };
                if self.peek() != &Tok::RBrace {
                    return Err(self.expected("'}', '&&' or '||'"));
                }
                self.bump();
                Ok(Query::Spanset(cond))
            }
            Tok::LParen => {
                self.bump();
                let q = self.query()?;
                if self.peek() != &Tok::RParen {
                    return Err(self.expected("')'"));
                }
                self.bump();
                Ok(q)
            }
            _ => Err(self.expected("a spanset '{ ... }'")),
        };
        self.depth -= 1;
        r
    }

    fn cond(&mut self) -> Result<Cond, TraceqlError> {
        let mut l = self.conj()?;
        while self.peek() == &Tok::OrOr {
            self.bump();
            let r = self.conj()?;
            l = Cond::Or(Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn conj(&mut self) -> Result<Cond, TraceqlError> {
        let mut l = self.atom()?;
        while self.peek() == &Tok::AndAnd {
            self.bump();
            let r = self.atom()?;
            l = Cond::And(Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn atom(&mut self) -> Result<Cond, TraceqlError> {
        self.enter()?;
        let r = self.atom_inner();
        self.depth -= 1;
        r
    }

    fn atom_inner(&mut self) -> Result<Cond, TraceqlError> {
        let field_pos = self.pos();
        let field = match self.peek().clone() {
            Tok::LParen => {
                self.bump();
                let c = self.cond()?;
                if self.peek() != &Tok::RParen {
                    return Err(self.expected("')'"));
                }
                self.bump();
                return Ok(c);
            }
            Tok::Attr(scope, name) => {
                self.bump();
                Field::Attr { scope, name }
            }
            Tok::Ident(w) => {
                let f = match w.as_str() {
                    "true" | "false" => {
                        self.bump();
                        return Ok(Cond::Const(w == "true"));
                    }
                    "name" | "span:name" => Field::Name,
                    "status" | "span:status" => Field::Status,
                    "duration" | "span:duration" => Field::Duration,
                    "kind" | "span:kind" => Field::Kind,
                    "rootName" | "trace:rootName" => Field::RootName,
                    "rootServiceName" | "trace:rootService" => Field::RootServiceName,
                    "traceDuration" | "trace:duration" => Field::TraceDuration,
                    other => {
                        return Err(self.err(format!(
                            "unknown intrinsic '{other}': expected name, status, duration, kind, rootName, rootServiceName, traceDuration or an attribute like .http.status_code"
                        )));
                    }
                };
                self.bump();
                f
            }
            _ => {
                return Err(self.expected(
                    "a field (name, status, duration, kind, .attribute, span.attr, resource.attr)",
                ));
            }
        };
        let op = match self.peek() {
            Tok::Op(op) => *op,
            _ => return Err(self.expected("a comparison operator (=, !=, >, >=, <, <=, =~, !~)")),
        };
        self.bump();
        let value_pos = self.pos();
        let value = self.literal()?;
        self.check(&field, op, &value, field_pos, value_pos)?;
        let re = match (op, &value) {
            (Op::Re | Op::Nre, Literal::Str(s)) => Some(
                regex::RegexBuilder::new(&format!("^(?:{s})$"))
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| TraceqlError::parse(value_pos, format!("invalid regex: {e}")))?,
            ),
            _ => None,
        };
        Ok(Cond::Cmp(Comparison {
            field,
            op,
            value,
            re,
        }))
    }

    fn literal(&mut self) -> Result<Literal, TraceqlError> {
        let neg = if self.peek() == &Tok::Minus {
            self.bump();
            true
        } else {
            false
        };
        let pos = self.pos();
        let lit = match self.peek().clone() {
            Tok::Num(n) => {
                if let Ok(i) = n.parse::<i64>() {
                    Literal::Int(if neg { -i } else { i })
                } else if let Ok(f) = n.parse::<f64>() {
                    if !f.is_finite() {
                        return Err(TraceqlError::parse(
                            pos,
                            format!("number '{n}' is out of range"),
                        ));
                    }
                    Literal::Float(if neg { -f } else { f })
                } else if let Some(d) = parse_duration(&n) {
                    Literal::Duration(if neg { -d } else { d })
                } else {
                    return Err(TraceqlError::parse(
                        pos,
                        format!("invalid number or duration '{n}' (examples: 500, 1.5, 250ms, 2s)"),
                    ));
                }
            }
            _ if neg => return Err(self.expected("a number or duration after '-'")),
            Tok::Str(s) => Literal::Str(s),
            Tok::Ident(w) => match w.as_str() {
                "true" => Literal::Bool(true),
                "false" => Literal::Bool(false),
                "nil" => Literal::Nil,
                w => {
                    if let Some(s) = SpanStatus::from_name(w) {
                        Literal::Status(s)
                    } else if let Some(k) = SpanKind::from_name(w) {
                        Literal::Kind(k)
                    } else {
                        return Err(self.err(format!(
                            "unexpected identifier '{w}': expected a value (string, number, duration, true, false, nil, a status or a kind)"
                        )));
                    }
                }
            },
            _ => return Err(self.expected("a value")),
        };
        self.bump();
        Ok(lit)
    }

    fn check(
        &self,
        f: &Field,
        op: Op,
        v: &Literal,
        fpos: usize,
        vpos: usize,
    ) -> Result<(), TraceqlError> {
        let eq_only = matches!(op, Op::Eq | Op::Ne);
        let bad = |msg: String| Err(TraceqlError::parse(vpos, msg));
        if matches!(op, Op::Re | Op::Nre) && !matches!(v, Literal::Str(_)) {
            return bad(format!(
                "operator '{}' needs a quoted regular expression",
                op.as_str()
            ));
        }
        if *v == Literal::Nil && !eq_only {
            return bad("nil can only be compared with = or !=".into());
        }
        match (f, v) {
            (Field::Status, Literal::Status(_)) | (Field::Kind, Literal::Kind(_)) if eq_only => {
                Ok(())
            }
            (Field::Status | Field::Kind, _) => bad(format!(
                "{} can only be compared with = or != against {}",
                f.key(),
                if *f == Field::Status {
                    "error, ok or unset"
                } else {
                    "server, client, internal, producer or consumer"
                }
            )),
            (Field::Duration | Field::TraceDuration, Literal::Duration(_)) => Ok(()),
            (Field::Duration | Field::TraceDuration, _) => {
                bad(format!("{} needs a duration such as 500ms", f.key()))
            }
            (_, Literal::Status(_) | Literal::Kind(_)) => Err(TraceqlError::parse(
                fpos,
                "status and kind values can only be compared with the status and kind intrinsics"
                    .to_owned(),
            )),
            _ => Ok(()),
        }
    }
}

/// Parses a Go duration (`500ms`, `1.5s`, `1h2m`) into nanoseconds.
pub(crate) fn parse_duration(s: &str) -> Option<i64> {
    let mut rest = s;
    let mut total: f64 = 0.0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let num: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[u..];
        total += num * mult;
    }
    (total.is_finite() && total < 9.2e18).then_some(total.round() as i64)
}

/// Trace-level facts some intrinsics need.
pub(crate) struct TraceCtx<'a> {
    pub root: Option<&'a Span>,
    pub duration_ns: i64,
}

impl<'a> TraceCtx<'a> {
    pub(crate) fn new(t: &'a Trace) -> Self {
        Self {
            root: t.root(),
            duration_ns: t.end_ns().saturating_sub(t.start_ns()),
        }
    }
}

enum FVal<'a> {
    Str(&'a str),
    Int(i64),
    Float(f64),
    Bool(bool),
    Dur(i64),
    Status(SpanStatus),
    Kind(SpanKind),
}

fn attr<'a>(span: &'a Span, scope: Scope, name: &str) -> Option<FVal<'a>> {
    let from_span = || {
        span.attributes.get(name).map(|v| match v {
            AttrValue::String(s) => FVal::Str(s),
            AttrValue::Int(i) => FVal::Int(*i),
            AttrValue::Float(f) => FVal::Float(*f),
            AttrValue::Bool(b) => FVal::Bool(*b),
        })
    };
    let from_resource = || (name == "service.name").then_some(FVal::Str(&span.service));
    match scope {
        Scope::Span => from_span(),
        Scope::Resource => from_resource(),
        Scope::Any => from_span().or_else(from_resource),
    }
}

fn field_value<'a>(f: &Field, span: &'a Span, t: &TraceCtx<'a>) -> Option<FVal<'a>> {
    Some(match f {
        Field::Name => FVal::Str(&span.name),
        Field::Status => FVal::Status(span.status),
        Field::Duration => FVal::Dur(span.duration_ns),
        Field::Kind => FVal::Kind(span.kind),
        Field::RootName => FVal::Str(&t.root?.name),
        Field::RootServiceName => FVal::Str(&t.root?.service),
        Field::TraceDuration => FVal::Dur(t.duration_ns),
        Field::Attr { scope, name } => return attr(span, *scope, name),
    })
}

fn compare(c: &Comparison, v: Option<FVal<'_>>) -> bool {
    let Some(v) = v else {
        return c.value == Literal::Nil && c.op == Op::Eq;
    };
    if c.value == Literal::Nil {
        return c.op == Op::Ne;
    }
    let num = |a: f64, b: f64| a.partial_cmp(&b).is_some_and(|o| c.op.ord(o));
    match (v, &c.value) {
        (FVal::Str(s), Literal::Str(_)) if matches!(c.op, Op::Re | Op::Nre) => {
            let m = c.re.as_ref().is_some_and(|r| r.is_match(s));
            (c.op == Op::Re) == m
        }
        (FVal::Str(s), Literal::Str(l)) => c.op.ord(s.cmp(l.as_str())),
        (FVal::Int(a), Literal::Int(b)) => c.op.ord(a.cmp(b)),
        (FVal::Int(a), Literal::Float(b)) => num(a as f64, *b),
        (FVal::Float(a), Literal::Int(b)) => num(a, *b as f64),
        (FVal::Float(a), Literal::Float(b)) => num(a, *b),
        (FVal::Bool(a), Literal::Bool(b)) => matches!(c.op, Op::Eq | Op::Ne) && c.op.ord(a.cmp(b)),
        (FVal::Dur(a), Literal::Duration(b)) => c.op.ord(a.cmp(b)),
        (FVal::Status(a), Literal::Status(b)) => c.op.ord(a.cmp(b)),
        (FVal::Kind(a), Literal::Kind(b)) => c.op.ord(a.cmp(b)),
        _ => false,
    }
}

pub(crate) fn matches(c: &Cond, span: &Span, t: &TraceCtx<'_>) -> bool {
    match c {
        Cond::And(a, b) => matches(a, span, t) && matches(b, span, t),
        Cond::Or(a, b) => matches(a, span, t) || matches(b, span, t),
        Cond::Const(b) => *b,
        Cond::Cmp(cmp) => compare(cmp, field_value(&cmp.field, span, t)),
    }
}

/// Indices of matching spans, or `None` when the trace does not match.
pub(crate) fn eval(q: &Query, trace: &Trace, t: &TraceCtx<'_>) -> Option<Vec<usize>> {
    match q {
        Query::Spanset(cond) => {
            let m: Vec<usize> = trace
                .spans
                .iter()
                .enumerate()
                .filter(|(_, s)| cond.as_ref().is_none_or(|c| matches(c, s, t)))
                .map(|(i, _)| i)
                .collect();
            (!m.is_empty()).then_some(m)
        }
        Query::And(a, b) => {
            let (mut x, y) = (eval(a, trace, t)?, eval(b, trace, t)?);
            x.extend(y);
            x.sort_unstable();
            x.dedup();
            Some(x)
        }
        Query::Or(a, b) => match (eval(a, trace, t), eval(b, trace, t)) {
            (None, None) => None,
            (x, y) => {
                let mut v: Vec<usize> = x.into_iter().chain(y).flatten().collect();
                v.sort_unstable();
                v.dedup();
                Some(v)
            }
        },
    }
}

/// Fields the query compares, in first-use order without duplicates (reported per span by search).
pub(crate) fn referenced_fields(q: &Query) -> Vec<Field> {
    fn cond(c: &Cond, out: &mut Vec<Field>) {
        match c {
            Cond::And(a, b) | Cond::Or(a, b) => {
                cond(a, out);
                cond(b, out);
            }
            Cond::Cmp(c) => {
                if !out.contains(&c.field) {
                    out.push(c.field.clone());
                }
            }
            Cond::Const(_) => {}
        }
    }
    fn query(q: &Query, out: &mut Vec<Field>) {
        match q {
            Query::Spanset(Some(c)) => cond(c, out),
            Query::Spanset(None) => {}
            Query::And(a, b) | Query::Or(a, b) => {
                query(a, out);
                query(b, out);
            }
        }
    }
    let mut out = Vec::new();
    query(q, &mut out);
    out
}

/// A field's value on a span as an attribute value, for search results.
pub(crate) fn field_attr(f: &Field, span: &Span, t: &TraceCtx<'_>) -> Option<AttrValue> {
    Some(match field_value(f, span, t)? {
        FVal::Str(s) => AttrValue::String(s.to_owned()),
        FVal::Int(i) => AttrValue::Int(i),
        FVal::Float(x) => AttrValue::Float(x),
        FVal::Bool(b) => AttrValue::Bool(b),
        FVal::Dur(d) => AttrValue::Int(d),
        FVal::Status(s) => AttrValue::String(s.as_str().to_owned()),
        FVal::Kind(k) => AttrValue::String(k.as_str().to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_pos(q: &str) -> (usize, String) {
        match parse(q) {
            Err(TraceqlError::Parse { pos, message }) => (pos, message),
            other => panic!("{q}: expected parse error, got {other:?}"),
        }
    }

    #[test]
    fn parses_supported_forms() {
        for q in [
            r#"{.service.name="checkout"}"#,
            r#"{ resource.service.name = "checkout" && span.http.status_code >= 500 }"#,
            r#"{ status = error }"#,
            r#"{ duration > 500ms && (kind = server || name =~ "GET .*") }"#,
            r#"{ .http.status_code != 200 && .retry = true && .ratio < 0.5 }"#,
            r#"{ span."my attr" = "x" }"#,
            r#"{ .a = "b" } && { .c = "d" } || ({ status = ok })"#,
            r#"{ span:status = error && trace:rootService = "api" && traceDuration > 1s }"#,
            r#"{ .x != nil }"#,
            "{}",
            "{ true }",
            "",
        ] {
            parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        }
    }

    #[test]
    fn positioned_errors() {
        assert_eq!(err_pos(r#"{ .a = "b" "#).0, 11);
        let (p, m) = err_pos(r#"{ status = 500 }"#);
        assert_eq!(p, 11);
        assert!(m.contains("error, ok or unset"), "{m}");
        let (p, m) = err_pos(r#"{ duration > 5 }"#);
        assert_eq!(p, 13);
        assert!(m.contains("duration"), "{m}");
        let (p, _) = err_pos(r#"{ foo = 1 }"#);
        assert_eq!(p, 2);
        let (_, m) = err_pos(r#"{ .a = 1 } | count() > 2"#);
        assert!(m.contains("pipelines"), "{m}");
        let (_, m) = err_pos(r#"{ .a = 1 } >> { .b = 2 }"#);
        assert!(m.contains("structural"), "{m}");
        let (p, m) = err_pos(r#"{ .a =~ "(" }"#);
        assert_eq!(p, 8);
        assert!(m.contains("regex"), "{m}");
        assert!(parse(&"{(".repeat(200)).is_err());
        assert!(parse(r#"{ .a = "unterminated }"#).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Some(500_000_000));
        assert_eq!(parse_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_duration("1h2m"), Some(3_720_000_000_000));
        assert_eq!(parse_duration("5d"), None);
    }
}
