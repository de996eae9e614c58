//! Where the parts of a query are: a span tree of a syntactically valid query.
//!
//! `promql-parser` builds its AST without positions, so the errors of its grammar actions and type checks
//! cannot say where they are. This is a small precedence-climbing parser over the tokens of
//! [`super::tokens`] that mirrors the shape of the parser's grammar (operator precedence and associativity,
//! a sign binding tighter than `*` but looser than `^`, postfix `[..]`, `offset` and `@` binding tightest,
//! aggregation modifiers before or after the arguments) and records byte spans: of every sub-expression, of
//! operators, arguments, grouping labels, durations and matchers.
//!
//! It checks nothing (types, names, arity): it is only run on queries the parser recognised, since its
//! grammar has no error recovery and every other error comes after the whole input was recognised. It
//! gives up (`None`) on anything it does not understand, and on nesting deeper than [`MAX_DEPTH`], so
//! that no input can exhaust the stack.

use super::tokens;

/// A byte range `start..end` of the query.
pub(super) type Span = (usize, usize);

/// Deeper nesting (of sub-expressions, signs and `^` chains alike) is not followed.
const MAX_DEPTH: usize = 256;

/// Aggregation operators: `sum(...)`/`sum by (a) (...)` aggregate, `sum` alone is a metric name.
const AGGREGATORS: &[&str] = &[
    "avg",
    "bottomk",
    "count",
    "count_values",
    "group",
    "limit_ratio",
    "limitk",
    "max",
    "min",
    "quantile",
    "stddev",
    "stdvar",
    "sum",
    "topk",
];

/// One sub-expression and where it is.
#[derive(Debug)]
pub(super) struct Node {
    /// Byte offset of its first token.
    pub start: usize,
    /// Byte offset just past its last token.
    pub end: usize,
    /// What it is, with the positions of its parts.
    pub kind: Kind,
}

/// The kinds of sub-expression, with what the error positions need of each.
#[derive(Debug)]
pub(super) enum Kind {
    /// A number, a string or a bare metric name: one token.
    Atom,
    /// A selector with braces, `foo{a="b"}` or `{a="b"}`.
    Selector {
        /// The `{`.
        brace: usize,
        /// Each matcher: the tokens between separators.
        matchers: Vec<Span>,
        /// The `,` and `or` separators.
        separators: Vec<usize>,
    },
    /// `( expr )`.
    Paren(Box<Node>),
    /// `-expr` or `+expr`.
    Unary {
        /// The sign.
        sign: usize,
        /// What it applies to.
        operand: Box<Node>,
    },
    /// `lhs op [bool] [on|ignoring (..)] [group_left|group_right [(..)]] [fill..(..)] rhs`.
    Binary {
        /// Left operand.
        lhs: Box<Node>,
        /// The operator token.
        op: usize,
        /// `group_left`/`group_right`, if any.
        group: Option<usize>,
        /// Labels of the `on`/`ignoring` and group lists.
        labels: Vec<Span>,
        /// Right operand.
        rhs: Box<Node>,
    },
    /// `name(args)`.
    Call {
        /// The function name.
        name: Span,
        /// The arguments.
        args: Vec<Node>,
        /// A `,` right before the closing `)`.
        trailing_comma: Option<usize>,
    },
    /// `op [by|without (..)] (args) [by|without (..)]`.
    Aggregate {
        /// The aggregation operator.
        name: Span,
        /// The arguments (parameter first, when there is one).
        args: Vec<Node>,
        /// A `,` right before the closing `)`.
        trailing_comma: Option<usize>,
        /// Labels of the `by`/`without` list.
        labels: Vec<Span>,
    },
    /// `expr[range]` or `expr[range:step]`.
    Bracket {
        /// What the brackets apply to.
        inner: Box<Node>,
        /// The `[`.
        open: usize,
        /// The `]`.
        close: usize,
        /// The range, then the step of a subquery when one is given.
        durations: Vec<Span>,
    },
    /// `expr offset [+|-]duration`.
    Offset {
        /// What the modifier applies to.
        inner: Box<Node>,
        /// The `offset` keyword.
        keyword: usize,
        /// The duration, with its sign.
        value: Span,
    },
    /// `expr @ [+|-]time`, `expr @ start()`, `expr @ end()`.
    At {
        /// What the modifier applies to.
        inner: Box<Node>,
        /// The `@`.
        keyword: usize,
        /// The time, with its sign (or `start()`/`end()`).
        value: Span,
    },
}

impl Node {
    /// The sub-expressions, in the order the parser reduces them (left to right).
    pub(super) fn children(&self) -> Vec<&Node> {
        match &self.kind {
            Kind::Atom | Kind::Selector { .. } => Vec::new(),
            Kind::Paren(inner)
            | Kind::Unary { operand: inner, .. }
            | Kind::Bracket { inner, .. }
            | Kind::Offset { inner, .. }
            | Kind::At { inner, .. } => vec![inner],
            Kind::Binary { lhs, rhs, .. } => vec![lhs, rhs],
            Kind::Call { args, .. } | Kind::Aggregate { args, .. } => args.iter().collect(),
        }
    }

    /// Every node below and including this one, children before parents, left to right (the order in
    /// which the parser checks them).
    pub(super) fn post_order(&self) -> Vec<&Node> {
        let mut out = Vec::new();
        let mut stack = vec![(self, false)];
        while let Some((n, expanded)) = stack.pop() {
            if expanded {
                out.push(n);
            } else {
                stack.push((n, true));
                stack.extend(n.children().into_iter().rev().map(|c| (c, false)));
            }
        }
        out
    }
}

/// The span tree of `query`, or `None` when it is not understood.
pub(super) fn parse(query: &str) -> Option<Node> {
    let mut p = Parser {
        q: query,
        toks: tokens(query),
        i: 0,
        depth: 0,
    };
    let root = p.expr(0)?;
    (p.i == p.toks.len()).then_some(root)
}

/// Binding power and right-associativity of a binary operator token, as in the parser's grammar.
fn binary_precedence(token: &str) -> Option<(u8, bool)> {
    Some(match token.to_ascii_lowercase().as_str() {
        "or" => (1, false),
        "and" | "unless" => (2, false),
        "==" | "!=" | "<=" | "<" | ">=" | ">" => (3, false),
        "+" | "-" => (4, false),
        "*" | "/" | "%" | "atan2" => (5, false),
        "^" => (6, true),
        _ => return None,
    })
}

/// The operand of a sign extends over `^` only (the grammar gives unary expressions `*`'s precedence).
const SIGN_OPERAND_PRECEDENCE: u8 = 6;

struct Parser<'q> {
    q: &'q str,
    toks: Vec<Span>,
    i: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek_at(&self, ahead: usize) -> Option<&str> {
        self.toks.get(self.i + ahead).map(|&(s, e)| &self.q[s..e])
    }

    fn peek(&self) -> Option<&str> {
        self.peek_at(0)
    }

    /// The next token, lower-cased (keywords are case-insensitive).
    fn peek_keyword(&self) -> String {
        self.peek().unwrap_or_default().to_ascii_lowercase()
    }

    fn bump(&mut self) -> Option<Span> {
        let t = *self.toks.get(self.i)?;
        self.i += 1;
        Some(t)
    }

    fn expect(&mut self, token: &str) -> Option<Span> {
        if self.peek()? == token {
            self.bump()
        } else {
            None
        }
    }

    /// An expression whose binary operators bind at least as tightly as `min`.
    fn expr(&mut self, min: u8) -> Option<Node> {
        // Counted on the way down only: a failure abandons the whole parse.
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        let mut lhs = self.unary()?;
        while let Some((prec, right)) = self.peek().and_then(binary_precedence) {
            if prec < min {
                break;
            }
            let op = self.bump()?.0;
            let (group, labels) = self.bin_modifiers()?;
            let rhs = self.expr(if right { prec } else { prec + 1 })?;
            lhs = Node {
                start: lhs.start,
                end: rhs.end,
                kind: Kind::Binary {
                    lhs: Box::new(lhs),
                    op,
                    group,
                    labels,
                    rhs: Box::new(rhs),
                },
            };
        }
        self.depth -= 1;
        Some(lhs)
    }

    fn unary(&mut self) -> Option<Node> {
        if matches!(self.peek(), Some("+" | "-")) {
            let sign = self.bump()?.0;
            let operand = self.expr(SIGN_OPERAND_PRECEDENCE)?;
            return Some(Node {
                start: sign,
                end: operand.end,
                kind: Kind::Unary {
                    sign,
                    operand: Box::new(operand),
                },
            });
        }
        let primary = self.primary()?;
        self.postfix(primary)
    }

    fn primary(&mut self) -> Option<Node> {
        let (start, end) = self.bump()?;
        let token = &self.q[start..end];
        let first = token.chars().next()?;
        if token == "(" {
            let inner = self.expr(0)?;
            let close = self.expect(")")?;
            return Some(Node {
                start,
                end: close.1,
                kind: Kind::Paren(Box::new(inner)),
            });
        }
        if token == "{" {
            return self.braces(start, start);
        }
        if matches!(first, '"' | '\'' | '`') {
            return Some(Node {
                start,
                end,
                kind: Kind::Atom,
            });
        }
        if !(first.is_alphanumeric() || matches!(first, '_' | ':' | '.')) {
            return None;
        }
        let keyword = token.to_ascii_lowercase();
        let next = self.peek_keyword();
        if AGGREGATORS.contains(&keyword.as_str())
            && matches!(next.as_str(), "(" | "by" | "without")
        {
            return self.aggregate((start, end));
        }
        match next.as_str() {
            "(" => {
                let (args, trailing_comma, close) = self.args()?;
                Some(Node {
                    start,
                    end: close,
                    kind: Kind::Call {
                        name: (start, end),
                        args,
                        trailing_comma,
                    },
                })
            }
            "{" => {
                let brace = self.bump()?.0;
                self.braces(start, brace)
            }
            _ => Some(Node {
                start,
                end,
                kind: Kind::Atom,
            }),
        }
    }

    /// The matchers after a `{` (already consumed) up to the `}`.
    fn braces(&mut self, start: usize, brace: usize) -> Option<Node> {
        let mut matchers = Vec::new();
        let mut separators = Vec::new();
        let mut current: Option<Span> = None;
        loop {
            let (s, e) = self.bump()?;
            let token = &self.q[s..e];
            // The lexer takes `or` for a separator only when a space follows (`{or}` is a label name).
            let or = token.eq_ignore_ascii_case("or") && self.q[e..].starts_with(' ');
            if token == "}" || token == "," || or {
                matchers.extend(current.take());
                if token == "}" {
                    return Some(Node {
                        start,
                        end: e,
                        kind: Kind::Selector {
                            brace,
                            matchers,
                            separators,
                        },
                    });
                }
                separators.push(s);
            } else {
                current = Some(current.map_or((s, e), |(cs, _)| (cs, e)));
            }
        }
    }

    /// `(args)`: the arguments, a trailing comma and the end of the `)`.
    fn args(&mut self) -> Option<(Vec<Node>, Option<usize>, usize)> {
        self.expect("(")?;
        let mut args = Vec::new();
        if self.peek()? == ")" {
            return Some((args, None, self.bump()?.1));
        }
        loop {
            args.push(self.expr(0)?);
            let (s, e) = self.bump()?;
            match &self.q[s..e] {
                ")" => return Some((args, None, e)),
                "," if self.peek()? == ")" => return Some((args, Some(s), self.bump()?.1)),
                "," => {}
                _ => return None,
            }
        }
    }

    /// `(a, b, ...)` of a grouping or matching clause; the labels are added to `labels`.
    fn grouping(&mut self, labels: &mut Vec<Span>) -> Option<usize> {
        self.expect("(")?;
        loop {
            let (s, e) = self.bump()?;
            match &self.q[s..e] {
                ")" => return Some(e),
                "," => {}
                _ => labels.push((s, e)),
            }
        }
    }

    fn aggregate(&mut self, name: Span) -> Option<Node> {
        let mut labels = Vec::new();
        if matches!(self.peek_keyword().as_str(), "by" | "without") {
            self.bump()?;
            self.grouping(&mut labels)?;
        }
        let (args, trailing_comma, mut end) = self.args()?;
        if matches!(self.peek_keyword().as_str(), "by" | "without") {
            self.bump()?;
            end = self.grouping(&mut labels)?;
        }
        Some(Node {
            start: name.0,
            end,
            kind: Kind::Aggregate {
                name,
                args,
                trailing_comma,
                labels,
            },
        })
    }

    /// What may follow a binary operator before its right operand.
    fn bin_modifiers(&mut self) -> Option<(Option<usize>, Vec<Span>)> {
        let mut group = None;
        let mut labels = Vec::new();
        if self.peek_keyword() == "bool" {
            self.bump()?;
        }
        if matches!(self.peek_keyword().as_str(), "on" | "ignoring") {
            self.bump()?;
            self.grouping(&mut labels)?;
        }
        if matches!(self.peek_keyword().as_str(), "group_left" | "group_right") {
            group = Some(self.bump()?.0);
            // The grammar always takes a `(` after group_left/group_right as its label list.
            if self.peek() == Some("(") {
                self.grouping(&mut labels)?;
            }
        }
        while matches!(
            self.peek_keyword().as_str(),
            "fill" | "fill_left" | "fill_right"
        ) && self.peek_at(1) == Some("(")
        {
            self.bump()?;
            self.bump()?;
            while self.bump().map(|(s, e)| &self.q[s..e])? != ")" {}
        }
        Some((group, labels))
    }

    /// Range and subquery brackets, `offset` and `@` after `node`.
    fn postfix(&mut self, mut node: Node) -> Option<Node> {
        loop {
            let start = node.start;
            let keyword = self.peek_keyword();
            let (kind, end) = match keyword.as_str() {
                "[" => {
                    let open = self.bump()?.0;
                    let close = loop {
                        let (s, e) = self.bump()?;
                        if &self.q[s..e] == "]" {
                            break s;
                        }
                    };
                    let durations = durations(self.q, open + 1, close);
                    let kind = Kind::Bracket {
                        inner: Box::new(node),
                        open,
                        close,
                        durations,
                    };
                    (kind, close + 1)
                }
                "offset" | "@" => {
                    let at = self.bump()?.0;
                    let value_start = self.toks.get(self.i)?.0;
                    if matches!(self.peek(), Some("+" | "-")) {
                        self.bump()?;
                    }
                    let (_, mut value_end) = self.bump()?;
                    let preprocessor = matches!(
                        self.q[value_start..value_end].to_ascii_lowercase().as_str(),
                        "start" | "end"
                    );
                    if keyword == "@" && preprocessor && self.peek() == Some("(") {
                        self.bump()?;
                        value_end = self.expect(")")?.1;
                    }
                    let inner = Box::new(node);
                    let value = (value_start, value_end);
                    let kind = if keyword == "@" {
                        Kind::At {
                            inner,
                            keyword: at,
                            value,
                        }
                    } else {
                        Kind::Offset {
                            inner,
                            keyword: at,
                            value,
                        }
                    };
                    (kind, value_end)
                }
                _ => return Some(node),
            };
            node = Node { start, end, kind };
        }
    }
}

/// The duration spans between `[` and `]`: the range, and the step of a subquery when one is given.
fn durations(q: &str, from: usize, to: usize) -> Vec<Span> {
    let mut out = Vec::new();
    let mut start = from;
    for part in q[from..to].split(':') {
        let lead = part.len() - part.trim_start().len();
        let trimmed = part.trim();
        if !trimmed.is_empty() {
            out.push((start + lead, start + lead + trimmed.len()));
        }
        start += part.len() + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tree as text: each node as `kind(children)`, with the text of leaves.
    fn shape(q: &str) -> String {
        fn walk(q: &str, n: &Node) -> String {
            let kids: Vec<String> = n.children().iter().map(|c| walk(q, c)).collect();
            let name = match &n.kind {
                Kind::Atom | Kind::Selector { .. } => return q[n.start..n.end].to_string(),
                Kind::Paren(_) => "paren".to_string(),
                Kind::Unary { sign, .. } => q[*sign..*sign + 1].to_string(),
                Kind::Binary { op, .. } => {
                    let len = q[*op..].find(' ').unwrap_or(q.len() - op);
                    q[*op..*op + len].to_string()
                }
                Kind::Call { name, .. } | Kind::Aggregate { name, .. } => {
                    q[name.0..name.1].to_string()
                }
                Kind::Bracket { durations, .. } => {
                    let d: Vec<&str> = durations.iter().map(|&(s, e)| &q[s..e]).collect();
                    format!("[{}]", d.join(":"))
                }
                Kind::Offset { value, .. } => format!("offset {}", &q[value.0..value.1]),
                Kind::At { value, .. } => format!("@ {}", &q[value.0..value.1]),
            };
            format!("{name}({})", kids.join(", "))
        }
        walk(q, &parse(q).expect("understood"))
    }

    #[test]
    fn precedence_and_associativity_follow_the_grammar() {
        assert_eq!(shape("a + b * c"), "+(a, *(b, c))");
        assert_eq!(shape("a - b - c"), "-(-(a, b), c)");
        assert_eq!(shape("a ^ b ^ c"), "^(a, ^(b, c))");
        assert_eq!(shape("a or b and c == d"), "or(a, and(b, ==(c, d)))");
        assert_eq!(shape("-a * b"), "*(-(a), b)");
        assert_eq!(shape("-a ^ b"), "-(^(a, b))");
        assert_eq!(shape("-a[5m]"), "-([5m](a))");
        assert_eq!(shape("a + b offset 5m"), "+(a, offset 5m(b))");
        assert_eq!(shape("a > bool on(x) group_left(y) b"), ">(a, b)");
        assert_eq!(shape("a atan2 b"), "atan2(a, b)");
    }

    #[test]
    fn calls_aggregations_and_selectors() {
        assert_eq!(
            shape("sum by (job) (rate(foo{a=\"b\"}[5m:1m] @ start()))"),
            "sum(rate(@ start()([5m:1m](foo{a=\"b\"}))))"
        );
        assert_eq!(shape("topk(3, x) without (a)"), "topk(3, x)");
        assert_eq!(shape("sum"), "sum");
        assert_eq!(shape("sum{a=\"b\"} offset -5m"), "offset -5m(sum{a=\"b\"})");
        assert_eq!(shape("time()"), "time()");
        assert_eq!(shape("(a)[1h:]"), "[1h](paren(a))");
    }

    #[test]
    fn spans_of_parts() {
        let q = "sum by (a) (x, y,)";
        let Some(Node {
            kind:
                Kind::Aggregate {
                    name,
                    args,
                    trailing_comma,
                    labels,
                },
            ..
        }) = parse(q)
        else {
            panic!("aggregate")
        };
        assert_eq!(name, (0, 3));
        assert_eq!(labels, vec![(8, 9)]);
        assert_eq!(args.iter().map(|a| a.start).collect::<Vec<_>>(), [12, 15]);
        assert_eq!(trailing_comma, Some(16));
    }

    #[test]
    fn gives_up_rather_than_guess() {
        assert!(parse("a +").is_none());
        assert!(parse("sum(").is_none());
        assert!(parse("").is_none());
        assert!(parse(&"-".repeat(10_000)).is_none());
        assert!(parse(&format!("{}1", "-".repeat(10_000))).is_none());
    }
}
