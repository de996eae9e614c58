//! The LogQL syntax tree. `Display` renders canonical LogQL that parses back to an equal tree.

use std::fmt::{self, Display, Formatter, Write as _};

use regex::Regex;

use crate::source::StreamMatcher;
use crate::template::Template;
use crate::units::{format_bytes, format_duration};

/// A parsed LogQL query: either a log query (returns lines) or a metric query (returns samples).
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `{selector} | pipeline`
    Log(LogExpr),
    /// Range/vector aggregations, binary operations and literals.
    Metric(MetricExpr),
}

/// A stream selector followed by a pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct LogExpr {
    /// The `{...}` matchers (at least one, and at least one not matching the empty string).
    pub selector: Vec<StreamMatcher>,
    /// Pipeline stages in order.
    pub stages: Vec<Stage>,
}

/// Line filter operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineFilterOp {
    /// `|=` line contains the string.
    Contains,
    /// `!=` line does not contain the string.
    NotContains,
    /// `|~` line matches the (unanchored) regex.
    Match,
    /// `!~` line does not match the regex.
    NotMatch,
}

impl LineFilterOp {
    /// The LogQL spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Contains => "|=",
            Self::NotContains => "!=",
            Self::Match => "|~",
            Self::NotMatch => "!~",
        }
    }
}

/// `|= "a" or "b"`: a positive filter keeps lines matching any value; a negative one drops them.
#[derive(Debug, Clone)]
pub struct LineFilter {
    /// Operator.
    pub op: LineFilterOp,
    /// One value, or several joined by `or`.
    pub values: Vec<String>,
    pub(crate) regexes: Vec<Regex>,
}

impl PartialEq for LineFilter {
    fn eq(&self, other: &Self) -> bool {
        self.op == other.op && self.values == other.values
    }
}

/// One step of a JSON path such as `a.b[0]["c d"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonPathSeg {
    /// Object member.
    Key(String),
    /// Array element.
    Index(usize),
}

/// `label="json.path"` parameter of the `json` parser.
#[derive(Debug, Clone)]
pub struct JsonParam {
    /// Label to create.
    pub label: String,
    /// Path expression as written.
    pub path: String,
    pub(crate) segs: Vec<JsonPathSeg>,
}

impl PartialEq for JsonParam {
    fn eq(&self, other: &Self) -> bool {
        self.label == other.label && self.path == other.path
    }
}

/// One node of a `pattern` expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternNode {
    /// Literal text that must appear.
    Literal(String),
    /// `<name>` capture, or `<_>` (None) that matches without extracting.
    Capture(Option<String>),
}

/// A compiled `| pattern "<ip> - <_> <msg>"` expression.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// Source text.
    pub src: String,
    pub(crate) nodes: Vec<PatternNode>,
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.src == other.src
    }
}

/// A compiled `| regexp "..."` parser.
#[derive(Debug, Clone)]
pub struct RegexpParser {
    /// Source text.
    pub src: String,
    pub(crate) re: Regex,
}

impl PartialEq for RegexpParser {
    fn eq(&self, other: &Self) -> bool {
        self.src == other.src
    }
}

/// Comparison operator of numeric, duration and bytes label filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `==` (also written `=`)
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
}

impl CmpOp {
    /// The LogQL spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "==",
            Self::Ne => "!=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Lt => "<",
            Self::Le => "<=",
        }
    }

    pub(crate) fn cmp_f64(self, a: f64, b: f64) -> bool {
        match self {
            Self::Eq => a == b,
            Self::Ne => a != b,
            Self::Gt => a > b,
            Self::Ge => a >= b,
            Self::Lt => a < b,
            Self::Le => a <= b,
        }
    }
}

/// A label filter expression (`| status >= 500 and level="error"`).
#[derive(Debug, Clone, PartialEq)]
pub enum LabelFilterExpr {
    /// Both must hold (`and`, `,`).
    And(Box<LabelFilterExpr>, Box<LabelFilterExpr>),
    /// Either must hold (`or`).
    Or(Box<LabelFilterExpr>, Box<LabelFilterExpr>),
    /// String matcher (`=`, `!=`, `=~`, `!~`).
    Str(StreamMatcher),
    /// Numeric comparison; the label value is parsed as a float.
    Number {
        /// Label name.
        name: String,
        /// Operator.
        op: CmpOp,
        /// Right-hand side.
        value: f64,
    },
    /// Duration comparison; the label value is parsed as a Go duration.
    Duration {
        /// Label name.
        name: String,
        /// Operator.
        op: CmpOp,
        /// Right-hand side in nanoseconds.
        value_ns: i64,
    },
    /// Byte-size comparison; the label value is parsed as a human byte size.
    Bytes {
        /// Label name.
        name: String,
        /// Operator.
        op: CmpOp,
        /// Right-hand side in bytes.
        value: u64,
    },
}

/// One assignment of `label_format`.
#[derive(Debug, Clone, PartialEq)]
pub enum LabelFmt {
    /// `dst=src`: renames (the source label is removed).
    Rename {
        /// New label.
        dst: String,
        /// Existing label.
        src: String,
    },
    /// `dst="{{.x}}"`: sets from a template.
    Template {
        /// Label to set.
        dst: String,
        /// Template.
        template: Template,
    },
}

/// An entry of `drop`/`keep`.
#[derive(Debug, Clone, PartialEq)]
pub enum LabelSel {
    /// Just a label name.
    Name(String),
    /// A label whose value matches (`=` or `=~` only: `!=` after a label list starts a line filter).
    Matcher(StreamMatcher),
}

/// A pipeline stage.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    /// `|= "x"`, `!= "x"`, `|~ "re"`, `!~ "re"`.
    LineFilter(LineFilter),
    /// `| json` (no params: extract everything) or `| json a="b.c"`.
    Json(Vec<JsonParam>),
    /// `| logfmt [--strict] [--keep-empty] [a="b"]`.
    Logfmt {
        /// Stop with an error at the first malformed pair.
        strict: bool,
        /// Keep standalone keys and empty values.
        keep_empty: bool,
        /// `label="key"` pairs; empty means extract everything.
        params: Vec<(String, String)>,
    },
    /// `| pattern "..."`.
    Pattern(Pattern),
    /// `| regexp "(?P<name>...)"`.
    Regexp(RegexpParser),
    /// `| label op value ...`.
    LabelFilter(LabelFilterExpr),
    /// `| line_format "{{.x}}"`.
    LineFormat(Template),
    /// `| label_format a=b, c="{{.d}}"`.
    LabelFormat(Vec<LabelFmt>),
    /// `| drop a, b="v"`.
    Drop(Vec<LabelSel>),
    /// `| keep a, b="v"`.
    Keep(Vec<LabelSel>),
    /// `| decolorize` (strips ANSI colour codes).
    Decolorize,
}

/// How `unwrap` converts the label value to a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnwrapConv {
    /// `unwrap x`: float.
    Number,
    /// `unwrap duration(x)` / `duration_seconds(x)`: Go duration to seconds.
    Duration,
    /// `unwrap bytes(x)`: byte size to bytes.
    Bytes,
}

/// `| unwrap [conv(]label[)]` plus the label filters that follow it.
#[derive(Debug, Clone, PartialEq)]
pub struct Unwrap {
    /// Conversion.
    pub conv: UnwrapConv,
    /// Label holding the value.
    pub label: String,
    /// Label filters after the unwrap (typically `| __error__=""`).
    pub post_filters: Vec<LabelFilterExpr>,
}

/// Range aggregation function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeOp {
    /// Entries (or unwrapped samples' count) in the window.
    CountOverTime,
    /// Entries per second; with unwrap, sum per second.
    Rate,
    /// Counter rate of unwrapped values, Prometheus-style.
    RateCounter,
    /// Sum of line sizes.
    BytesOverTime,
    /// Line bytes per second.
    BytesRate,
    /// 1 where the window has no entries.
    AbsentOverTime,
    /// Sum of unwrapped values.
    SumOverTime,
    /// Mean of unwrapped values.
    AvgOverTime,
    /// Minimum of unwrapped values.
    MinOverTime,
    /// Maximum of unwrapped values.
    MaxOverTime,
    /// Population variance.
    StdvarOverTime,
    /// Population standard deviation.
    StddevOverTime,
    /// φ-quantile.
    QuantileOverTime,
    /// First value in the window.
    FirstOverTime,
    /// Last value in the window.
    LastOverTime,
}

impl RangeOp {
    /// All range functions with their names.
    pub const ALL: [(Self, &'static str); 15] = [
        (Self::CountOverTime, "count_over_time"),
        (Self::Rate, "rate"),
        (Self::RateCounter, "rate_counter"),
        (Self::BytesOverTime, "bytes_over_time"),
        (Self::BytesRate, "bytes_rate"),
        (Self::AbsentOverTime, "absent_over_time"),
        (Self::SumOverTime, "sum_over_time"),
        (Self::AvgOverTime, "avg_over_time"),
        (Self::MinOverTime, "min_over_time"),
        (Self::MaxOverTime, "max_over_time"),
        (Self::StdvarOverTime, "stdvar_over_time"),
        (Self::StddevOverTime, "stddev_over_time"),
        (Self::QuantileOverTime, "quantile_over_time"),
        (Self::FirstOverTime, "first_over_time"),
        (Self::LastOverTime, "last_over_time"),
    ];

    /// Looks a function up by name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(op, _)| *op)
    }

    /// The function name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(op, _)| *op == self)
            .map_or("", |(_, n)| n)
    }

    /// Whether the function needs `| unwrap`.
    pub fn requires_unwrap(self) -> bool {
        !matches!(
            self,
            Self::CountOverTime
                | Self::Rate
                | Self::BytesOverTime
                | Self::BytesRate
                | Self::AbsentOverTime
        )
    }

    /// Whether the function accepts `| unwrap`.
    pub fn allows_unwrap(self) -> bool {
        self.requires_unwrap() || self == Self::Rate
    }
}

/// `by (...)` or `without (...)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grouping {
    /// `without` instead of `by`.
    pub without: bool,
    /// Label names.
    pub labels: Vec<String>,
}

/// `op([param,] {sel} | pipeline [| unwrap x] [range] [offset o]) [by (...)]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeAgg {
    /// Function.
    pub op: RangeOp,
    /// φ of `quantile_over_time`.
    pub param: Option<f64>,
    /// Selector and pipeline.
    pub log: LogExpr,
    /// Unwrap stage, if any.
    pub unwrap: Option<Unwrap>,
    /// Window length in nanoseconds.
    pub range_ns: i64,
    /// `offset` in nanoseconds (0 when absent).
    pub offset_ns: i64,
    /// Grouping (only for unwrapped functions, as in Loki).
    pub grouping: Option<Grouping>,
}

/// Vector aggregation operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VectorOp {
    /// `sum`
    Sum,
    /// `avg`
    Avg,
    /// `min`
    Min,
    /// `max`
    Max,
    /// `count`
    Count,
    /// `stddev`
    Stddev,
    /// `stdvar`
    Stdvar,
    /// `topk`
    Topk,
    /// `bottomk`
    Bottomk,
    /// `sort`
    Sort,
    /// `sort_desc`
    SortDesc,
}

impl VectorOp {
    /// All operators with their names.
    pub const ALL: [(Self, &'static str); 11] = [
        (Self::Sum, "sum"),
        (Self::Avg, "avg"),
        (Self::Min, "min"),
        (Self::Max, "max"),
        (Self::Count, "count"),
        (Self::Stddev, "stddev"),
        (Self::Stdvar, "stdvar"),
        (Self::Topk, "topk"),
        (Self::Bottomk, "bottomk"),
        (Self::Sort, "sort"),
        (Self::SortDesc, "sort_desc"),
    ];

    /// Looks an operator up by name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(op, _)| *op)
    }

    /// The operator name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(op, _)| *op == self)
            .map_or("", |(_, n)| n)
    }
}

/// `op [by (...)] ([k,] expr)`.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorAgg {
    /// Operator.
    pub op: VectorOp,
    /// k of `topk`/`bottomk`.
    pub param: Option<usize>,
    /// Inner expression.
    pub expr: Box<MetricExpr>,
    /// Grouping.
    pub grouping: Option<Grouping>,
}

/// Binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `^`
    Pow,
    /// `==`
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
    /// `and`
    And,
    /// `or`
    Or,
    /// `unless`
    Unless,
}

impl BinOp {
    /// The LogQL spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "+",
            Self::Sub => "-",
            Self::Mul => "*",
            Self::Div => "/",
            Self::Mod => "%",
            Self::Pow => "^",
            Self::Eq => "==",
            Self::Ne => "!=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::And => "and",
            Self::Or => "or",
            Self::Unless => "unless",
        }
    }

    /// Binding strength, higher binds tighter (Prometheus' table).
    pub(crate) fn precedence(self) -> u8 {
        match self {
            Self::Or => 1,
            Self::And | Self::Unless => 2,
            Self::Eq | Self::Ne | Self::Gt | Self::Ge | Self::Lt | Self::Le => 3,
            Self::Add | Self::Sub => 4,
            Self::Mul | Self::Div | Self::Mod => 5,
            Self::Pow => 6,
        }
    }

    /// Whether this is a comparison (filters unless `bool`).
    pub fn is_comparison(self) -> bool {
        self.precedence() == 3
    }

    /// Whether this is `and`/`or`/`unless`.
    pub fn is_set_op(self) -> bool {
        matches!(self, Self::And | Self::Or | Self::Unless)
    }
}

/// `on(...)` / `ignoring(...)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorMatching {
    /// `on` (true) or `ignoring` (false).
    pub on: bool,
    /// Label names.
    pub labels: Vec<String>,
}

/// `lhs op [bool] [on|ignoring (...)] rhs`.
#[derive(Debug, Clone, PartialEq)]
pub struct BinaryExpr {
    /// Operator.
    pub op: BinOp,
    /// Left operand.
    pub lhs: Box<MetricExpr>,
    /// Right operand.
    pub rhs: Box<MetricExpr>,
    /// `bool` modifier of comparisons.
    pub return_bool: bool,
    /// Label matching for vector/vector operations.
    pub matching: Option<VectorMatching>,
}

/// A metric expression.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricExpr {
    /// Range aggregation over a log selector.
    Range(RangeAgg),
    /// Vector aggregation.
    Vector(VectorAgg),
    /// Binary operation.
    Binary(BinaryExpr),
    /// Number literal (a scalar).
    Literal(f64),
    /// Unary minus of a non-literal.
    Neg(Box<MetricExpr>),
    /// `vector(x)`: a single series with no labels.
    VectorLit(f64),
}

/// Quotes a string the way Go's `strconv.Quote` does (what Loki prints).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn write_list(f: &mut Formatter<'_>, items: &[String]) -> fmt::Result {
    f.write_str(&items.join(", "))
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Self::Log(l) => l.fmt(f),
            Self::Metric(m) => m.fmt(f),
        }
    }
}

fn fmt_selector(f: &mut Formatter<'_>, sel: &[StreamMatcher]) -> fmt::Result {
    f.write_char('{')?;
    for (i, m) in sel.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        m.fmt(f)?;
    }
    f.write_char('}')
}

impl Display for LogExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        fmt_selector(f, &self.selector)?;
        for s in &self.stages {
            f.write_char(' ')?;
            s.fmt(f)?;
        }
        Ok(())
    }
}

fn fmt_label_sels(f: &mut Formatter<'_>, sels: &[LabelSel]) -> fmt::Result {
    for (i, s) in sels.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        match s {
            LabelSel::Name(n) => f.write_str(n)?,
            LabelSel::Matcher(m) => m.fmt(f)?,
        }
    }
    Ok(())
}

impl Display for Stage {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Self::LineFilter(lf) => {
                f.write_str(lf.op.as_str())?;
                for (i, v) in lf.values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" or")?;
                    }
                    write!(f, " {}", quote(v))?;
                }
                Ok(())
            }
            Self::Json(params) => {
                f.write_str("| json")?;
                for (i, p) in params.iter().enumerate() {
                    f.write_str(if i == 0 { " " } else { ", " })?;
                    write!(f, "{}={}", p.label, quote(&p.path))?;
                }
                Ok(())
            }
            Self::Logfmt {
                strict,
                keep_empty,
                params,
            } => {
                f.write_str("| logfmt")?;
                if *strict {
                    f.write_str(" --strict")?;
                }
                if *keep_empty {
                    f.write_str(" --keep-empty")?;
                }
                for (i, (l, k)) in params.iter().enumerate() {
                    f.write_str(if i == 0 { " " } else { ", " })?;
                    write!(f, "{l}={}", quote(k))?;
                }
                Ok(())
            }
            Self::Pattern(p) => write!(f, "| pattern {}", quote(&p.src)),
            Self::Regexp(r) => write!(f, "| regexp {}", quote(&r.src)),
            Self::LabelFilter(e) => write!(f, "| {e}"),
            Self::LineFormat(t) => write!(f, "| line_format {}", quote(t.source())),
            Self::LabelFormat(items) => {
                f.write_str("| label_format ")?;
                for (i, it) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    match it {
                        LabelFmt::Rename { dst, src } => write!(f, "{dst}={src}")?,
                        LabelFmt::Template { dst, template } => {
                            write!(f, "{dst}={}", quote(template.source()))?;
                        }
                    }
                }
                Ok(())
            }
            Self::Drop(s) => {
                f.write_str("| drop ")?;
                fmt_label_sels(f, s)
            }
            Self::Keep(s) => {
                f.write_str("| keep ")?;
                fmt_label_sels(f, s)
            }
            Self::Decolorize => f.write_str("| decolorize"),
        }
    }
}

impl Display for LabelFilterExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Self::And(a, b) => {
                // `or` binds looser than `and`, and the parser associates to the left, so an
                // `or` operand, or an `and` on the right, needs parentheses to survive a re-parse.
                if matches!(**a, Self::Or(..)) {
                    write!(f, "({a})")?;
                } else {
                    a.fmt(f)?;
                }
                f.write_str(" and ")?;
                if matches!(**b, Self::Or(..) | Self::And(..)) {
                    write!(f, "({b})")
                } else {
                    b.fmt(f)
                }
            }
            Self::Or(a, b) => {
                a.fmt(f)?;
                f.write_str(" or ")?;
                // Right-nested `or` is re-associated to the left by the parser, so keep it grouped.
                if matches!(**b, Self::Or(..)) {
                    write!(f, "({b})")
                } else {
                    b.fmt(f)
                }
            }
            Self::Str(m) => m.fmt(f),
            Self::Number { name, op, value } => write!(f, "{name} {} {value}", op.as_str()),
            Self::Duration { name, op, value_ns } => {
                write!(f, "{name} {} {}", op.as_str(), format_duration(*value_ns))
            }
            Self::Bytes { name, op, value } => {
                write!(f, "{name} {} {}", op.as_str(), format_bytes(*value))
            }
        }
    }
}

fn fmt_grouping(f: &mut Formatter<'_>, g: &Grouping) -> fmt::Result {
    f.write_str(if g.without { "without (" } else { "by (" })?;
    write_list(f, &g.labels)?;
    f.write_char(')')
}

impl Display for RangeAgg {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.op.name())?;
        if let Some(p) = self.param {
            write!(f, "{p}, ")?;
        }
        self.log.fmt(f)?;
        if let Some(u) = &self.unwrap {
            f.write_str(" | unwrap ")?;
            match u.conv {
                UnwrapConv::Number => f.write_str(&u.label)?,
                UnwrapConv::Duration => write!(f, "duration({})", u.label)?,
                UnwrapConv::Bytes => write!(f, "bytes({})", u.label)?,
            }
            for pf in &u.post_filters {
                write!(f, " | {pf}")?;
            }
        }
        write!(f, " [{}]", format_duration(self.range_ns))?;
        if self.offset_ns != 0 {
            write!(f, " offset {}", format_duration(self.offset_ns))?;
        }
        f.write_char(')')?;
        if let Some(g) = &self.grouping {
            f.write_char(' ')?;
            fmt_grouping(f, g)?;
        }
        Ok(())
    }
}

fn needs_parens(e: &MetricExpr) -> bool {
    match e {
        MetricExpr::Binary(_) | MetricExpr::Neg(_) => true,
        MetricExpr::Literal(v) => v.is_sign_negative(),
        _ => false,
    }
}

fn fmt_operand(f: &mut Formatter<'_>, e: &MetricExpr) -> fmt::Result {
    if needs_parens(e) {
        write!(f, "({e})")
    } else {
        e.fmt(f)
    }
}

impl Display for MetricExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Self::Range(r) => r.fmt(f),
            Self::Vector(v) => {
                f.write_str(v.op.name())?;
                if let Some(g) = &v.grouping {
                    f.write_char(' ')?;
                    fmt_grouping(f, g)?;
                    f.write_char(' ')?;
                }
                f.write_char('(')?;
                if let Some(k) = v.param {
                    write!(f, "{k}, ")?;
                }
                write!(f, "{})", v.expr)
            }
            Self::Binary(b) => {
                fmt_operand(f, &b.lhs)?;
                write!(f, " {}", b.op.as_str())?;
                if b.return_bool {
                    f.write_str(" bool")?;
                }
                if let Some(m) = &b.matching {
                    f.write_str(if m.on { " on (" } else { " ignoring (" })?;
                    write_list(f, &m.labels)?;
                    f.write_char(')')?;
                }
                f.write_char(' ')?;
                fmt_operand(f, &b.rhs)
            }
            Self::Literal(v) => write!(f, "{v}"),
            Self::Neg(e) => {
                f.write_char('-')?;
                fmt_operand(f, e)
            }
            Self::VectorLit(v) => write!(f, "vector({v})"),
        }
    }
}
