//! Recursive-descent LogQL parser.
//!
//! Why hand-written rather than a crates.io dependency (checked in 2026-11):
//! * `logql-parser` (0.1.x, extracted from SignalDB) is the only recent LogQL parser, but it is
//!   AGPL-3.0, which this MIT/Apache-2.0 workspace cannot take; it is also pre-1.0, reports errors
//!   as line/column rather than byte offsets, and has no way back to query text (`Display`).
//! * `logql` (0.2.7) was last released in May 2022, targets an old LogQL, and pulls in `nom` 7.
//!
//! LogQL is small enough that owning the grammar costs less than adapting either, and lets every
//! error carry the byte offset of the offending token and say what was expected.

use crate::ast::{
    BinOp, BinaryExpr, CmpOp, Expr, Grouping, JsonParam, JsonPathSeg, LabelFilterExpr, LabelFmt,
    LabelSel, LineFilter, LineFilterOp, LogExpr, MetricExpr, Pattern, PatternNode, RangeAgg,
    RangeOp, RegexpParser, Stage, Unwrap, UnwrapConv, VectorAgg, VectorMatching, VectorOp,
};
use crate::error::LogqlError;
use crate::lexer::{Tok, Token, lex};
use crate::source::{MatchOp, StreamMatcher, compile_regex};
use crate::template::Template;
use crate::units::{parse_bytes, parse_duration_ns};

/// Longest query accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 128 * 1024;
/// Deepest nesting accepted (parentheses, aggregations), so recursion cannot overflow the stack.
const MAX_DEPTH: usize = 64;

/// Parses a LogQL query (log or metric).
///
/// ```
/// let e = firedrill_logql::parse(r#"sum by (level) (count_over_time({service="api"} |= "timeout" [10m]))"#).unwrap();
/// assert!(matches!(e, firedrill_logql::Expr::Metric(_)));
/// let err = firedrill_logql::parse(r#"{service="api""#).unwrap_err();
/// assert_eq!(err.to_string(), "parse error at position 14: expected '}' or ',' but found end of query");
/// ```
pub fn parse(query: &str) -> Result<Expr, LogqlError> {
    let mut p = Parser::new(query)?;
    let expr = if p.peek() == &Tok::LBrace {
        let (log, _) = p.parse_log_expr(false)?;
        match p.peek() {
            Tok::Eof => {}
            Tok::LBracket => {
                return Err(p.err_here(
                    "a log range like '[5m]' must be inside a range aggregation such as count_over_time",
                ));
            }
            t if binop_of(t).is_some() => {
                return Err(p.err_here(format!(
                    "unexpected {}: binary operations are only allowed on metric queries",
                    t.describe()
                )));
            }
            t => {
                return Err(p.err_here(format!(
                    "unexpected {}: expected a pipeline stage ('|', '|=', '!=', '|~', '!~') or end of query",
                    t.describe()
                )));
            }
        }
        Expr::Log(log)
    } else {
        let m = p.parse_metric(0)?;
        if p.peek() != &Tok::Eof {
            let t = p.peek().describe();
            return Err(p.err_here(format!(
                "unexpected {t}: expected an operator or end of query"
            )));
        }
        Expr::Metric(m)
    };
    Ok(expr)
}

/// Parses just a stream selector such as `{service="api", level=~"warn|error"}`
/// (for `/series` `match[]` and label-value `query` parameters).
pub fn parse_selector(query: &str) -> Result<Vec<StreamMatcher>, LogqlError> {
    let mut p = Parser::new(query)?;
    let sel = p.parse_selector()?;
    if p.peek() != &Tok::Eof {
        let t = p.peek().describe();
        return Err(p.err_here(format!("unexpected {t} after stream selector")));
    }
    Ok(sel)
}

fn binop_of(t: &Tok) -> Option<BinOp> {
    Some(match t {
        Tok::Plus => BinOp::Add,
        Tok::Minus => BinOp::Sub,
        Tok::Star => BinOp::Mul,
        Tok::Slash => BinOp::Div,
        Tok::Percent => BinOp::Mod,
        Tok::Caret => BinOp::Pow,
        Tok::EqEq => BinOp::Eq,
        Tok::Ne => BinOp::Ne,
        Tok::Gt => BinOp::Gt,
        Tok::Ge => BinOp::Ge,
        Tok::Lt => BinOp::Lt,
        Tok::Le => BinOp::Le,
        Tok::Ident(i) if i == "and" => BinOp::And,
        Tok::Ident(i) if i == "or" => BinOp::Or,
        Tok::Ident(i) if i == "unless" => BinOp::Unless,
        _ => return None,
    })
}

/// Whether an expression evaluates to a scalar rather than a vector.
pub(crate) fn is_scalar(e: &MetricExpr) -> bool {
    match e {
        MetricExpr::Literal(_) => true,
        MetricExpr::Neg(x) => is_scalar(x),
        MetricExpr::Binary(b) => is_scalar(&b.lhs) && is_scalar(&b.rhs),
        _ => false,
    }
}

const PIPELINE_KEYWORDS: &[&str] = &[
    "json",
    "logfmt",
    "pattern",
    "regexp",
    "line_format",
    "label_format",
    "drop",
    "keep",
    "decolorize",
    "unwrap",
    "unpack",
];

struct Parser {
    toks: Vec<Token>,
    i: usize,
    depth: usize,
}

impl Parser {
    fn new(query: &str) -> Result<Self, LogqlError> {
        if query.len() > MAX_QUERY_BYTES {
            return Err(LogqlError::parse(
                MAX_QUERY_BYTES,
                format!("query is longer than {MAX_QUERY_BYTES} bytes"),
            ));
        }
        if query.trim().is_empty() {
            return Err(LogqlError::parse(0, "empty query"));
        }
        Ok(Self {
            toks: lex(query)?,
            i: 0,
            depth: 0,
        })
    }

    fn peek(&self) -> &Tok {
        self.peek_at(0)
    }

    fn peek_at(&self, n: usize) -> &Tok {
        self.toks
            .get(self.i + n)
            .or_else(|| self.toks.last())
            .map_or(&Tok::Eof, |t| &t.tok)
    }

    fn pos(&self) -> usize {
        self.pos_at(0)
    }

    fn pos_at(&self, n: usize) -> usize {
        self.toks
            .get(self.i + n)
            .or_else(|| self.toks.last())
            .map_or(0, |t| t.pos)
    }

    fn bump(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        t
    }

    fn err_here(&self, msg: impl Into<String>) -> LogqlError {
        LogqlError::parse(self.pos(), msg)
    }

    fn expected(&self, what: &str) -> LogqlError {
        self.err_here(format!(
            "expected {what} but found {}",
            self.peek().describe()
        ))
    }

    fn expect(&mut self, t: &Tok, what: &str) -> Result<usize, LogqlError> {
        if self.peek() == t {
            let pos = self.pos();
            self.bump();
            Ok(pos)
        } else {
            Err(self.expected(what))
        }
    }

    fn is_ident(&self, n: usize, word: &str) -> bool {
        matches!(self.peek_at(n), Tok::Ident(i) if i == word)
    }

    fn ident(&mut self, what: &str) -> Result<(String, usize), LogqlError> {
        match self.peek().clone() {
            Tok::Ident(i) => {
                let pos = self.pos();
                self.bump();
                Ok((i, pos))
            }
            _ => Err(self.expected(what)),
        }
    }

    fn string(&mut self, what: &str) -> Result<(String, usize), LogqlError> {
        match self.peek().clone() {
            Tok::Str(s) => {
                let pos = self.pos();
                self.bump();
                Ok((s, pos))
            }
            _ => Err(self.expected(what)),
        }
    }

    fn enter(&mut self) -> Result<(), LogqlError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            Err(self.err_here(format!("query is nested more than {MAX_DEPTH} levels deep")))
        } else {
            Ok(())
        }
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    // ---- numbers -------------------------------------------------------------------------

    fn plain_number(&self, text: &str, pos: usize) -> Result<f64, LogqlError> {
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            Ok(_) => Err(LogqlError::parse(
                pos,
                format!("number '{text}' is out of range"),
            )),
            Err(_) => Err(LogqlError::parse(pos, format!("invalid number '{text}'"))),
        }
    }

    fn signed_number(&mut self, what: &str) -> Result<f64, LogqlError> {
        let neg = if self.peek() == &Tok::Minus {
            self.bump();
            true
        } else {
            false
        };
        match self.peek().clone() {
            Tok::Num(n) => {
                let v = self.plain_number(&n, self.pos())?;
                self.bump();
                Ok(if neg { -v } else { v })
            }
            _ => Err(self.expected(what)),
        }
    }

    fn duration(&mut self, what: &str) -> Result<i64, LogqlError> {
        let neg = if self.peek() == &Tok::Minus {
            self.bump();
            true
        } else {
            false
        };
        match self.peek().clone() {
            Tok::Num(n) => {
                let pos = self.pos();
                let v = parse_duration_ns(&n, true).ok_or_else(|| {
                    LogqlError::parse(
                        pos,
                        format!("invalid duration '{n}' (examples: 30s, 5m, 1h30m)"),
                    )
                })?;
                self.bump();
                Ok(if neg { -v } else { v })
            }
            _ => Err(self.expected(what)),
        }
    }

    // ---- metric expressions --------------------------------------------------------------

    fn parse_metric(&mut self, min_prec: u8) -> Result<MetricExpr, LogqlError> {
        let mut lhs = self.parse_unary()?;
        while let Some(op) = binop_of(self.peek()) {
            let prec = op.precedence();
            if prec < min_prec {
                break;
            }
            let op_pos = self.pos();
            self.bump();
            let mut return_bool = false;
            if self.is_ident(0, "bool") {
                if !op.is_comparison() {
                    return Err(
                        self.err_here("bool modifier can only be used on comparison operators")
                    );
                }
                self.bump();
                return_bool = true;
            }
            let mut matching = None;
            if self.is_ident(0, "on") || self.is_ident(0, "ignoring") {
                let on = self.is_ident(0, "on");
                self.bump();
                matching = Some(VectorMatching {
                    on,
                    labels: self.label_list()?,
                });
            }
            if self.is_ident(0, "group_left") || self.is_ident(0, "group_right") {
                return Err(
                    self.err_here("group_left/group_right (many-to-one matching) is not supported")
                );
            }
            let next_min = if op == BinOp::Pow { prec } else { prec + 1 };
            self.enter()?;
            let rhs = self.parse_metric(next_min);
            self.leave();
            let rhs = rhs?;
            let both_scalar = is_scalar(&lhs) && is_scalar(&rhs);
            if op.is_comparison() && both_scalar && !return_bool {
                return Err(LogqlError::parse(
                    op_pos,
                    "comparisons between scalars must use the bool modifier",
                ));
            }
            if op.is_set_op() && (is_scalar(&lhs) || is_scalar(&rhs)) {
                return Err(LogqlError::parse(
                    op_pos,
                    format!(
                        "set operator '{}' not allowed in binary scalar expression",
                        op.as_str()
                    ),
                ));
            }
            if matching.is_some() && (is_scalar(&lhs) || is_scalar(&rhs)) {
                return Err(LogqlError::parse(
                    op_pos,
                    "vector matching (on/ignoring) is only allowed between two vectors",
                ));
            }
            lhs = MetricExpr::Binary(BinaryExpr {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
                return_bool,
                matching,
            });
        }
        Ok(lhs)
    }

    fn parse_unary(&mut self) -> Result<MetricExpr, LogqlError> {
        self.enter()?;
        let r = match self.peek() {
            Tok::Minus => {
                self.bump();
                self.parse_metric(BinOp::Pow.precedence()).map(|e| match e {
                    MetricExpr::Literal(v) => MetricExpr::Literal(-v),
                    other => MetricExpr::Neg(Box::new(other)),
                })
            }
            Tok::Plus => {
                self.bump();
                self.parse_metric(BinOp::Pow.precedence())
            }
            _ => self.parse_primary(),
        };
        self.leave();
        r
    }

    fn parse_primary(&mut self) -> Result<MetricExpr, LogqlError> {
        let pos = self.pos();
        match self.peek().clone() {
            Tok::Num(n) => {
                if parse_duration_ns(&n, true).is_some() && n.parse::<f64>().is_err() {
                    return Err(self.err_here(format!(
                        "unexpected duration '{n}': durations belong in a range '[...]' or after offset"
                    )));
                }
                let v = self.plain_number(&n, pos)?;
                self.bump();
                Ok(MetricExpr::Literal(v))
            }
            Tok::LParen => {
                self.bump();
                let e = self.parse_metric(0)?;
                self.expect(&Tok::RParen, "')'")?;
                Ok(e)
            }
            Tok::LBrace => Err(self.err_here(
                "unexpected log query where a metric query is expected; wrap it in a range aggregation such as count_over_time({...} [5m])",
            )),
            Tok::Ident(name) => {
                if let Some(op) = RangeOp::from_name(&name) {
                    self.bump();
                    self.parse_range_agg(op)
                } else if let Some(op) = VectorOp::from_name(&name) {
                    self.bump();
                    self.parse_vector_agg(op)
                } else if name == "vector" {
                    self.bump();
                    self.expect(&Tok::LParen, "'(' after vector")?;
                    let v = self.signed_number("a number")?;
                    self.expect(&Tok::RParen, "')'")?;
                    Ok(MetricExpr::VectorLit(v))
                } else if matches!(name.as_str(), "label_replace" | "count_values" | "absent" | "scalar") {
                    Err(self.err_here(format!("function '{name}' is not supported")))
                } else {
                    Err(self.err_here(format!(
                        "unexpected identifier '{name}': expected a stream selector, a range or vector aggregation, or a number"
                    )))
                }
            }
            t => Err(self.err_here(format!(
                "unexpected {}: expected a metric expression",
                t.describe()
            ))),
        }
    }

    fn label_list(&mut self) -> Result<Vec<String>, LogqlError> {
        self.expect(&Tok::LParen, "'('")?;
        let mut labels = Vec::new();
        loop {
            match self.peek().clone() {
                Tok::RParen => {
                    self.bump();
                    return Ok(labels);
                }
                Tok::Ident(i) => {
                    self.bump();
                    labels.push(i);
                    match self.peek() {
                        Tok::Comma => {
                            self.bump();
                        }
                        Tok::RParen => {}
                        _ => return Err(self.expected("',' or ')'")),
                    }
                }
                _ => return Err(self.expected("a label name or ')'")),
            }
        }
    }

    fn grouping(&mut self) -> Result<Option<Grouping>, LogqlError> {
        let without = if self.is_ident(0, "by") {
            false
        } else if self.is_ident(0, "without") {
            true
        } else {
            return Ok(None);
        };
        self.bump();
        Ok(Some(Grouping {
            without,
            labels: self.label_list()?,
        }))
    }

    fn parse_range_agg(&mut self, op: RangeOp) -> Result<MetricExpr, LogqlError> {
        let op_pos = self.pos_at(0).saturating_sub(1);
        self.expect(&Tok::LParen, &format!("'(' after {}", op.name()))?;
        let param = if op == RangeOp::QuantileOverTime {
            let v = self.signed_number("the quantile parameter (a number)")?;
            self.expect(&Tok::Comma, "','")?;
            Some(v)
        } else {
            None
        };
        if self.peek() != &Tok::LBrace {
            return Err(self.expected("a stream selector '{...}'"));
        }
        let (mut log, mut unwrap) = self.parse_log_expr(true)?;
        if self.peek() != &Tok::LBracket {
            return Err(self.expected("a range like '[5m]' or a pipeline stage"));
        }
        self.bump();
        let range_pos = self.pos();
        let range_ns = self.duration("a range duration such as 5m")?;
        if range_ns <= 0 {
            return Err(LogqlError::parse(
                range_pos,
                "range must be greater than zero",
            ));
        }
        self.expect(&Tok::RBracket, "']'")?;
        let mut offset_ns = 0;
        if self.is_ident(0, "offset") {
            self.bump();
            offset_ns = self.duration("an offset duration")?;
        }
        // Loki also accepts the pipeline after the range: `{a="b"}[5m] | json`.
        if log.stages.is_empty() && unwrap.is_none() {
            self.parse_stages(&mut log.stages, &mut unwrap, true)?;
        } else if matches!(
            self.peek(),
            Tok::Pipe | Tok::PipeEq | Tok::PipeRe | Tok::Ne | Tok::Nre
        ) {
            return Err(
                self.err_here("the pipeline must come either before or after the range, not both")
            );
        }
        if offset_ns == 0 && self.is_ident(0, "offset") {
            self.bump();
            offset_ns = self.duration("an offset duration")?;
        }
        self.expect(&Tok::RParen, "')'")?;
        let grouping = self.grouping()?;
        if op.requires_unwrap() && unwrap.is_none() {
            return Err(LogqlError::parse(
                op_pos,
                format!("invalid aggregation {} without unwrap", op.name()),
            ));
        }
        if !op.allows_unwrap() && unwrap.is_some() {
            return Err(LogqlError::parse(
                op_pos,
                format!("invalid aggregation {} with unwrap", op.name()),
            ));
        }
        if grouping.is_some() && (unwrap.is_none() || op == RangeOp::Rate) {
            return Err(LogqlError::parse(
                op_pos,
                format!("grouping not allowed for {} aggregation", op.name()),
            ));
        }
        Ok(MetricExpr::Range(RangeAgg {
            op,
            param,
            log,
            unwrap,
            range_ns,
            offset_ns,
            grouping,
        }))
    }

    fn parse_vector_agg(&mut self, op: VectorOp) -> Result<MetricExpr, LogqlError> {
        let op_pos = self.pos_at(0).saturating_sub(1);
        let mut grouping = self.grouping()?;
        self.expect(&Tok::LParen, &format!("'(' after {}", op.name()))?;
        let param = if matches!(op, VectorOp::Topk | VectorOp::Bottomk) {
            let pos = self.pos();
            let k = self.signed_number("the k parameter (an integer)")?;
            if k.fract() != 0.0 || !(1.0..=1e9).contains(&k) {
                return Err(LogqlError::parse(
                    pos,
                    format!(
                        "invalid parameter for {}: must be an integer greater than 0",
                        op.name()
                    ),
                ));
            }
            self.expect(&Tok::Comma, "','")?;
            Some(k as usize)
        } else {
            None
        };
        let inner_pos = self.pos();
        self.enter()?;
        let inner = self.parse_metric(0);
        self.leave();
        let inner = inner?;
        self.expect(&Tok::RParen, "')'")?;
        if grouping.is_none() {
            grouping = self.grouping()?;
        }
        if is_scalar(&inner) {
            return Err(LogqlError::parse(
                inner_pos,
                format!(
                    "expected a vector in {} aggregation, got a scalar",
                    op.name()
                ),
            ));
        }
        if grouping.is_some() && matches!(op, VectorOp::Sort | VectorOp::SortDesc) {
            return Err(LogqlError::parse(
                op_pos,
                format!("grouping is not allowed for {}", op.name()),
            ));
        }
        Ok(MetricExpr::Vector(VectorAgg {
            op,
            param,
            expr: Box::new(inner),
            grouping,
        }))
    }

    // ---- log expressions -----------------------------------------------------------------

    fn parse_selector(&mut self) -> Result<Vec<StreamMatcher>, LogqlError> {
        let open = self.expect(&Tok::LBrace, "'{'")?;
        let mut matchers = Vec::new();
        if self.peek() != &Tok::RBrace {
            loop {
                let (name, _) = self.ident("a label name")?;
                let op = match self.peek() {
                    Tok::Assign => MatchOp::Eq,
                    Tok::Ne => MatchOp::Ne,
                    Tok::Re => MatchOp::Re,
                    Tok::Nre => MatchOp::Nre,
                    _ => return Err(self.expected("'=', '!=', '=~' or '!~'")),
                };
                self.bump();
                let (value, vpos) = self.string("a quoted label value")?;
                let m = StreamMatcher::new(name, op, value)
                    .map_err(|e| LogqlError::parse(vpos, format!("invalid regex: {e}")))?;
                matchers.push(m);
                match self.peek() {
                    Tok::Comma => {
                        self.bump();
                        if self.peek() == &Tok::RBrace {
                            break;
                        }
                    }
                    Tok::RBrace => break,
                    _ => return Err(self.expected("'}' or ','")),
                }
            }
        }
        self.expect(&Tok::RBrace, "'}'")?;
        if !matchers.iter().any(|m| !m.matches("")) {
            return Err(LogqlError::parse(
                open,
                "queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will",
            ));
        }
        Ok(matchers)
    }

    fn parse_log_expr(
        &mut self,
        allow_unwrap: bool,
    ) -> Result<(LogExpr, Option<Unwrap>), LogqlError> {
        let selector = self.parse_selector()?;
        let mut stages = Vec::new();
        let mut unwrap = None;
        self.parse_stages(&mut stages, &mut unwrap, allow_unwrap)?;
        Ok((LogExpr { selector, stages }, unwrap))
    }

    fn parse_stages(
        &mut self,
        stages: &mut Vec<Stage>,
        unwrap: &mut Option<Unwrap>,
        allow_unwrap: bool,
    ) -> Result<(), LogqlError> {
        loop {
            let op = match self.peek() {
                Tok::PipeEq => Some(LineFilterOp::Contains),
                Tok::Ne => Some(LineFilterOp::NotContains),
                Tok::PipeRe => Some(LineFilterOp::Match),
                Tok::Nre => Some(LineFilterOp::NotMatch),
                Tok::PipeGt => {
                    return Err(self.err_here("pattern line filters ('|>') are not supported"));
                }
                Tok::Pipe => None,
                _ => return Ok(()),
            };
            if let Some(u) = unwrap.as_mut() {
                // After unwrap only label filters may follow.
                let is_filter = op.is_none()
                    && match self.peek_at(1) {
                        Tok::LParen => true,
                        Tok::Ident(i) => !PIPELINE_KEYWORDS.contains(&i.as_str()),
                        _ => false,
                    };
                if !is_filter {
                    return Err(self.err_here("only label filters are allowed after unwrap"));
                }
                self.bump();
                u.post_filters.push(self.lf_or()?);
                continue;
            }
            if let Some(op) = op {
                stages.push(Stage::LineFilter(self.line_filter(op)?));
                continue;
            }
            let stage = match self.peek_at(1).clone() {
                Tok::Ident(kw) if PIPELINE_KEYWORDS.contains(&kw.as_str()) => {
                    let kw_pos = self.pos_at(1);
                    self.bump();
                    self.bump();
                    match kw.as_str() {
                        "json" => Stage::Json(self.json_params()?),
                        "logfmt" => self.logfmt()?,
                        "pattern" => {
                            let (src, pos) = self.string("a quoted pattern expression")?;
                            Stage::Pattern(compile_pattern(&src, pos)?)
                        }
                        "regexp" => {
                            let (src, pos) = self.string("a quoted regular expression")?;
                            Stage::Regexp(compile_regexp_parser(&src, pos)?)
                        }
                        "line_format" => {
                            let (src, pos) = self.string("a quoted template")?;
                            Stage::LineFormat(template(&src, pos)?)
                        }
                        "label_format" => Stage::LabelFormat(self.label_format()?),
                        "drop" => Stage::Drop(self.label_sels()?),
                        "keep" => Stage::Keep(self.label_sels()?),
                        "decolorize" => Stage::Decolorize,
                        "unwrap" => {
                            if !allow_unwrap {
                                return Err(LogqlError::parse(
                                    kw_pos,
                                    "unwrap is only allowed inside a range aggregation such as sum_over_time",
                                ));
                            }
                            *unwrap = Some(self.unwrap_expr()?);
                            continue;
                        }
                        other => {
                            return Err(LogqlError::parse(
                                kw_pos,
                                format!("'{other}' is not supported"),
                            ));
                        }
                    }
                }
                Tok::Ident(_) | Tok::LParen => {
                    self.bump();
                    Stage::LabelFilter(self.lf_or()?)
                }
                _ => {
                    self.bump();
                    return Err(self.expected("a parser, formatter or label filter after '|'"));
                }
            };
            stages.push(stage);
        }
    }

    fn line_filter(&mut self, op: LineFilterOp) -> Result<LineFilter, LogqlError> {
        self.bump();
        let mut values = Vec::new();
        let mut regexes = Vec::new();
        loop {
            let (v, pos) = self.string(&format!("a quoted string after '{}'", op.as_str()))?;
            if matches!(op, LineFilterOp::Match | LineFilterOp::NotMatch) {
                regexes.push(
                    compile_regex(&v)
                        .map_err(|e| LogqlError::parse(pos, format!("invalid regex: {e}")))?,
                );
            }
            values.push(v);
            if self.is_ident(0, "or") && matches!(self.peek_at(1), Tok::Str(_)) {
                self.bump();
            } else {
                break;
            }
        }
        Ok(LineFilter {
            op,
            values,
            regexes,
        })
    }

    /// `name="value"` pairs (or bare `name`) separated by commas, for json and logfmt.
    fn extraction_params(&mut self) -> Result<Vec<(String, String, usize)>, LogqlError> {
        let mut out = Vec::new();
        while let Tok::Ident(name) = self.peek().clone() {
            let pos = self.pos();
            self.bump();
            if self.peek() == &Tok::Assign {
                self.bump();
                let (v, vpos) = self.string("a quoted expression")?;
                out.push((name, v, vpos));
            } else {
                out.push((name.clone(), name, pos));
            }
            if self.peek() == &Tok::Comma {
                self.bump();
                if !matches!(self.peek(), Tok::Ident(_)) {
                    return Err(self.expected("a label name"));
                }
            } else {
                break;
            }
        }
        Ok(out)
    }

    fn json_params(&mut self) -> Result<Vec<JsonParam>, LogqlError> {
        self.extraction_params()?
            .into_iter()
            .map(|(label, path, pos)| {
                let segs = parse_json_path(&path).map_err(|m| LogqlError::parse(pos, m))?;
                Ok(JsonParam { label, path, segs })
            })
            .collect()
    }

    fn logfmt(&mut self) -> Result<Stage, LogqlError> {
        let (mut strict, mut keep_empty) = (false, false);
        while self.peek() == &Tok::Minus && self.peek_at(1) == &Tok::Minus {
            if self.is_ident(2, "strict") {
                self.i += 3;
                strict = true;
            } else if self.is_ident(2, "keep")
                && self.peek_at(3) == &Tok::Minus
                && self.is_ident(4, "empty")
            {
                self.i += 5;
                keep_empty = true;
            } else {
                return Err(LogqlError::parse(
                    self.pos_at(2),
                    "unknown logfmt flag: expected --strict or --keep-empty",
                ));
            }
        }
        let params = self
            .extraction_params()?
            .into_iter()
            .map(|(l, k, _)| (l, k))
            .collect();
        Ok(Stage::Logfmt {
            strict,
            keep_empty,
            params,
        })
    }

    fn label_format(&mut self) -> Result<Vec<LabelFmt>, LogqlError> {
        let mut out: Vec<LabelFmt> = Vec::new();
        loop {
            let (dst, dpos) = self.ident("a label name")?;
            self.expect(&Tok::Assign, "'='")?;
            let item = match self.peek().clone() {
                Tok::Ident(src) => {
                    self.bump();
                    LabelFmt::Rename {
                        dst: dst.clone(),
                        src,
                    }
                }
                Tok::Str(s) => {
                    let pos = self.pos();
                    self.bump();
                    LabelFmt::Template {
                        dst: dst.clone(),
                        template: template(&s, pos)?,
                    }
                }
                _ => return Err(self.expected("a label name or a quoted template")),
            };
            if out.iter().any(|o| match o {
                LabelFmt::Rename { dst: d, .. } | LabelFmt::Template { dst: d, .. } => *d == dst,
            }) {
                return Err(LogqlError::parse(
                    dpos,
                    format!("multiple label name '{dst}' not allowed in a single format operation"),
                ));
            }
            out.push(item);
            if self.peek() == &Tok::Comma {
                self.bump();
            } else {
                return Ok(out);
            }
        }
    }

    fn label_sels(&mut self) -> Result<Vec<LabelSel>, LogqlError> {
        let mut out = Vec::new();
        loop {
            let (name, _) = self.ident("a label name")?;
            // `!=` and `!~` are deliberately not matchers here: after `| keep a` they start a
            // line filter, and reading them as matchers would make `keep a != "x"` ambiguous.
            let op = match self.peek() {
                Tok::Assign => Some(MatchOp::Eq),
                Tok::Re => Some(MatchOp::Re),
                _ => None,
            };
            match op {
                Some(op) => {
                    self.bump();
                    let (v, vpos) = self.string("a quoted label value")?;
                    out.push(LabelSel::Matcher(StreamMatcher::new(name, op, v).map_err(
                        |e| LogqlError::parse(vpos, format!("invalid regex: {e}")),
                    )?));
                }
                None => out.push(LabelSel::Name(name)),
            }
            if self.peek() == &Tok::Comma {
                self.bump();
            } else {
                return Ok(out);
            }
        }
    }

    fn unwrap_expr(&mut self) -> Result<Unwrap, LogqlError> {
        let conv = match self.peek() {
            Tok::Ident(i) if self.peek_at(1) == &Tok::LParen => match i.as_str() {
                "duration" | "duration_seconds" => Some(UnwrapConv::Duration),
                "bytes" => Some(UnwrapConv::Bytes),
                other => {
                    return Err(self.err_here(format!(
                        "unknown unwrap conversion '{other}': expected duration, duration_seconds or bytes"
                    )));
                }
            },
            _ => None,
        };
        let (conv, label) = match conv {
            Some(c) => {
                self.bump();
                self.bump();
                let (l, _) = self.ident("a label name")?;
                self.expect(&Tok::RParen, "')'")?;
                (c, l)
            }
            None => (UnwrapConv::Number, self.ident("a label name to unwrap")?.0),
        };
        Ok(Unwrap {
            conv,
            label,
            post_filters: Vec::new(),
        })
    }

    // ---- label filters -------------------------------------------------------------------

    fn starts_label_filter(&self) -> bool {
        match self.peek() {
            Tok::LParen => true,
            Tok::Ident(_) => matches!(
                self.peek_at(1),
                Tok::Assign
                    | Tok::EqEq
                    | Tok::Ne
                    | Tok::Re
                    | Tok::Nre
                    | Tok::Gt
                    | Tok::Ge
                    | Tok::Lt
                    | Tok::Le
            ),
            _ => false,
        }
    }

    fn lf_or(&mut self) -> Result<LabelFilterExpr, LogqlError> {
        let mut l = self.lf_and()?;
        while self.is_ident(0, "or") {
            self.bump();
            if !self.starts_label_filter() {
                return Err(self.expected("a label filter after 'or'"));
            }
            let r = self.lf_and()?;
            l = LabelFilterExpr::Or(Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn lf_and(&mut self) -> Result<LabelFilterExpr, LogqlError> {
        let mut l = self.lf_primary()?;
        while self.is_ident(0, "and") || self.peek() == &Tok::Comma {
            self.bump();
            if !self.starts_label_filter() {
                return Err(self.expected("a label filter"));
            }
            let r = self.lf_primary()?;
            l = LabelFilterExpr::And(Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn lf_primary(&mut self) -> Result<LabelFilterExpr, LogqlError> {
        if self.peek() == &Tok::LParen {
            self.bump();
            self.enter()?;
            let e = self.lf_or();
            self.leave();
            let e = e?;
            self.expect(&Tok::RParen, "')'")?;
            return Ok(e);
        }
        let (name, _) = self.ident("a label name")?;
        let op_tok = self.peek().clone();
        let op_pos = self.pos();
        if !matches!(
            op_tok,
            Tok::Assign
                | Tok::EqEq
                | Tok::Ne
                | Tok::Re
                | Tok::Nre
                | Tok::Gt
                | Tok::Ge
                | Tok::Lt
                | Tok::Le
        ) {
            return Err(self.expected("a comparison operator (=, !=, =~, !~, ==, >, >=, <, <=)"));
        }
        self.bump();
        match self.peek().clone() {
            Tok::Str(v) => {
                let vpos = self.pos();
                let op = match op_tok {
                    Tok::Assign => MatchOp::Eq,
                    Tok::Ne => MatchOp::Ne,
                    Tok::Re => MatchOp::Re,
                    Tok::Nre => MatchOp::Nre,
                    _ => {
                        return Err(LogqlError::parse(
                            op_pos,
                            format!(
                                "operator '{}' needs a number, duration or byte size, not a string",
                                op_tok.symbol()
                            ),
                        ));
                    }
                };
                self.bump();
                Ok(LabelFilterExpr::Str(
                    StreamMatcher::new(name, op, v)
                        .map_err(|e| LogqlError::parse(vpos, format!("invalid regex: {e}")))?,
                ))
            }
            Tok::Num(_) | Tok::Minus => {
                let op = match op_tok {
                    Tok::Assign | Tok::EqEq => CmpOp::Eq,
                    Tok::Ne => CmpOp::Ne,
                    Tok::Gt => CmpOp::Gt,
                    Tok::Ge => CmpOp::Ge,
                    Tok::Lt => CmpOp::Lt,
                    Tok::Le => CmpOp::Le,
                    _ => {
                        return Err(LogqlError::parse(
                            op_pos,
                            format!("operator '{}' needs a quoted string", op_tok.symbol()),
                        ));
                    }
                };
                let neg = if self.peek() == &Tok::Minus {
                    self.bump();
                    true
                } else {
                    false
                };
                let vpos = self.pos();
                let Tok::Num(text) = self.peek().clone() else {
                    return Err(self.expected("a number"));
                };
                self.bump();
                if let Ok(v) = text.parse::<f64>() {
                    if !v.is_finite() {
                        return Err(LogqlError::parse(
                            vpos,
                            format!("number '{text}' is out of range"),
                        ));
                    }
                    return Ok(LabelFilterExpr::Number {
                        name,
                        op,
                        value: if neg { -v } else { v },
                    });
                }
                if let Some(ns) = parse_duration_ns(&text, true) {
                    return Ok(LabelFilterExpr::Duration {
                        name,
                        op,
                        value_ns: if neg { -ns } else { ns },
                    });
                }
                match parse_bytes(&text) {
                    Some(b) if !neg => Ok(LabelFilterExpr::Bytes { name, op, value: b }),
                    _ => Err(LogqlError::parse(
                        vpos,
                        format!(
                            "invalid value '{text}': expected a number, a duration (250ms, 1s) or a byte size (20MB)"
                        ),
                    )),
                }
            }
            _ => Err(self.expected("a quoted string, number, duration or byte size")),
        }
    }
}

fn template(src: &str, pos: usize) -> Result<Template, LogqlError> {
    // +1 skips the opening quote; exact when the string has no escapes.
    Template::parse(src)
        .map_err(|e| LogqlError::parse(pos + 1 + e.pos, format!("invalid template: {}", e.message)))
}

fn compile_regexp_parser(src: &str, pos: usize) -> Result<RegexpParser, LogqlError> {
    let re =
        compile_regex(src).map_err(|e| LogqlError::parse(pos, format!("invalid regex: {e}")))?;
    if re.capture_names().flatten().next().is_none() {
        return Err(LogqlError::parse(
            pos,
            "at least one named capture must be supplied, e.g. (?P<name>...)",
        ));
    }
    Ok(RegexpParser {
        src: src.to_owned(),
        re,
    })
}

fn compile_pattern(src: &str, pos: usize) -> Result<Pattern, LogqlError> {
    let mut nodes: Vec<PatternNode> = Vec::new();
    let mut lit = String::new();
    let mut rest = src;
    let mut names: Vec<&str> = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('<') {
            let end = after.find('>');
            let name = end.map(|e| &after[..e]);
            let valid = name.is_some_and(|n| {
                !n.is_empty()
                    && n.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                    && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
            if let (true, Some(name), Some(end)) = (valid, name, end) {
                if !lit.is_empty() {
                    nodes.push(PatternNode::Literal(std::mem::take(&mut lit)));
                }
                if matches!(nodes.last(), Some(PatternNode::Capture(_))) {
                    return Err(LogqlError::parse(
                        pos,
                        format!(
                            "invalid pattern: found consecutive capture '<{name}>'; captures must be separated by literal text"
                        ),
                    ));
                }
                if name == "_" {
                    nodes.push(PatternNode::Capture(None));
                } else {
                    if names.contains(&name) {
                        return Err(LogqlError::parse(
                            pos,
                            format!("invalid pattern: duplicate capture '<{name}>'"),
                        ));
                    }
                    names.push(name);
                    nodes.push(PatternNode::Capture(Some(name.to_owned())));
                }
                rest = &after[end + 1..];
                continue;
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            lit.push(c);
        }
        rest = chars.as_str();
    }
    if !lit.is_empty() {
        nodes.push(PatternNode::Literal(lit));
    }
    if names.is_empty() {
        return Err(LogqlError::parse(
            pos,
            "invalid pattern: at least one named capture is required",
        ));
    }
    Ok(Pattern {
        src: src.to_owned(),
        nodes,
    })
}

/// Parses `a.b[0]["c d"]` into path segments.
pub(crate) fn parse_json_path(path: &str) -> Result<Vec<JsonPathSeg>, String> {
    let mut segs = Vec::new();
    let mut rest = path;
    let mut expect_key = true;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('[') {
            let close = r
                .find(']')
                .ok_or_else(|| format!("invalid json path '{path}': missing ']'"))?;
            let inner = r[..close].trim();
            if let Some(q) = inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                segs.push(JsonPathSeg::Key(q.to_owned()));
            } else {
                let idx: usize = inner
                    .parse()
                    .map_err(|_| format!("invalid json path '{path}': bad index '{inner}'"))?;
                segs.push(JsonPathSeg::Index(idx));
            }
            rest = &r[close + 1..];
            expect_key = false;
        } else if let Some(r) = rest.strip_prefix('.') {
            if expect_key {
                return Err(format!("invalid json path '{path}': empty key"));
            }
            rest = r;
            expect_key = true;
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            segs.push(JsonPathSeg::Key(rest[..end].to_owned()));
            rest = &rest[end..];
            expect_key = false;
        }
    }
    if segs.is_empty() || expect_key {
        return Err(format!("invalid json path '{path}'"));
    }
    Ok(segs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(q: &str) -> Expr {
        parse(q).unwrap_or_else(|e| panic!("{q}: {e}"))
    }

    fn err(q: &str) -> LogqlError {
        parse(q).expect_err(q)
    }

    #[test]
    fn selectors() {
        let Expr::Log(l) = ok(r#"{service="api", level=~"warn|error", env!="dev", x!~"y.*"}"#)
        else {
            panic!()
        };
        assert_eq!(l.selector.len(), 4);
        assert!(l.selector[1].matches("warn"));
        assert!(!l.selector[1].matches("xwarn"), "regex must be anchored");
        assert!(parse_selector(r#"{a="b"}"#).is_ok());
    }

    #[test]
    fn selector_errors_are_positioned() {
        let e = err(r#"{service="api" |= "x""#);
        assert_eq!(e.position(), Some(15));
        assert!(e.to_string().contains("expected '}' or ','"), "{e}");
        let e = err(r#"{service=~".*"}"#);
        assert!(
            e.to_string()
                .contains("at least one regexp or equality matcher"),
            "{e}"
        );
        assert!(err("{}").to_string().contains("at least one"));
        let e = err(r#"{a="b"} | json | x >"#);
        assert_eq!(e.position(), Some(20));
        let e = err(r#"{a=~"("}"#);
        assert_eq!(e.position(), Some(4));
        assert!(e.to_string().contains("invalid regex"));
    }

    #[test]
    fn pipelines() {
        let q = r#"{a="b"} |= "x" or "y" != "z" |~ "t.+" | json | logfmt --strict | pattern "<ip> - <_> <msg>" | regexp "(?P<x>\\d+)" | status >= 500 and (level="error" or duration > 1s), size < 20MB | line_format "{{.msg}}" | label_format new=old, t="{{.x}}" | drop a, b="c" | keep d | decolorize | json a="b.c", d="e[0]""#;
        let Expr::Log(l) = ok(q) else { panic!() };
        assert_eq!(l.stages.len(), 14);
        assert!(matches!(&l.stages[0], Stage::LineFilter(f) if f.values.len() == 2));
    }

    #[test]
    fn metric_queries() {
        ok(r#"sum by (level) (count_over_time({service="order-service"} |= "timeout" [10m]))"#);
        ok(r#"sum(rate({a="b"}[5m])) by (x)"#);
        ok(r#"topk(3, sum by (svc) (bytes_rate({a="b"}[1m] offset 1h)))"#);
        ok(
            r#"quantile_over_time(0.99, {a="b"} | logfmt | unwrap duration(latency) | __error__="" [5m]) by (svc)"#,
        );
        ok(r#"sum_over_time({a="b"} | json | unwrap bytes(size) [5m])"#);
        ok(r#"count_over_time({a="b"}[5m] | json)"#);
        ok(r#"sum(rate({a="b"}[5m])) / sum(rate({a="c"}[5m])) * 100 > bool 5"#);
        ok(r#"-sum(rate({a="b"}[5m])) ^ 2 ^ 3 % 4"#);
        ok(r#"sum(rate({a="b"}[5m])) or vector(0)"#);
        ok(r#"sum by (x) (rate({a="b"}[5m])) / on (x) sum by (x) (rate({a="c"}[5m]))"#);
        ok("1 + 2 * 3");
    }

    #[test]
    fn metric_errors() {
        assert!(
            err(r#"sum_over_time({a="b"}[5m])"#)
                .to_string()
                .contains("without unwrap")
        );
        assert!(
            err(r#"count_over_time({a="b"} | unwrap x [5m])"#)
                .to_string()
                .contains("with unwrap")
        );
        assert!(
            err(r#"count_over_time({a="b"}[5m]) by (x)"#)
                .to_string()
                .contains("grouping not allowed")
        );
        assert!(
            err(r#"count_over_time({a="b"})"#)
                .to_string()
                .contains("expected a range")
        );
        assert!(
            err(r#"{a="b"}[5m]"#)
                .to_string()
                .contains("range aggregation")
        );
        assert!(
            err(r#"{a="b"} | unwrap x"#)
                .to_string()
                .contains("only allowed inside")
        );
        assert!(err(r#"sum({a="b"})"#).to_string().contains("log query"));
        assert!(err("sum(1)").to_string().contains("scalar"));
        assert!(err("1 > 2").to_string().contains("bool"));
        assert!(
            err(r#"topk(0, rate({a="b"}[1m]))"#)
                .to_string()
                .contains("greater than 0")
        );
        assert!(
            err(r#"sum_over_time({a="b"} | unwrap x | json [5m])"#)
                .to_string()
                .contains("after unwrap")
        );
        assert!(err(&"(".repeat(500)).to_string().contains("nested"));
        assert!(err("").to_string().contains("empty"));
    }

    #[test]
    fn patterns() {
        assert!(compile_pattern("<a><b>", 0).is_err());
        assert!(compile_pattern("<_> x", 0).is_err());
        assert!(compile_pattern("<a> <a>", 0).is_err());
        let p = compile_pattern("<ip> - <_> [<ts>] \"<method> <path>\"", 0).unwrap();
        assert_eq!(p.nodes.len(), 10);
    }

    #[test]
    fn json_paths() {
        assert_eq!(
            parse_json_path(r#"a.b[0]["c d"]"#).unwrap(),
            vec![
                JsonPathSeg::Key("a".into()),
                JsonPathSeg::Key("b".into()),
                JsonPathSeg::Index(0),
                JsonPathSeg::Key("c d".into())
            ]
        );
        assert!(parse_json_path("a.").is_err());
        assert!(parse_json_path("").is_err());
        assert!(parse_json_path("a[x]").is_err());
    }

    #[test]
    fn display_round_trips() {
        for q in [
            r#"{a="b", c=~"d|e"} |= "x" or "y" | json | status >= 500 and level="error" | line_format "{{.msg}}""#,
            r#"sum by (level) (count_over_time({service="order-service"} |= "timeout" [10m]))"#,
            r#"quantile_over_time(0.99, {a="b"} | logfmt | unwrap duration(latency) | __error__="" [5m] offset 1h) by (svc)"#,
            r#"(1 + 2) * -3 - (-4)"#,
            r#"-(sum(rate({a="b"}[5m])) + 1)"#,
            r#"{a="b"} | x > 1s or (y < 20MB and z != -3) | a="b" and (c="d" and e="f")"#,
            r#"topk by (x) (5, rate({a="b"}[1m])) > bool on (x) vector(1)"#,
        ] {
            let e1 = ok(q);
            let s = e1.to_string();
            let e2 = parse(&s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(e1, e2, "{q} -> {s}");
        }
    }
}
