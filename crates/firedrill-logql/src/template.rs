//! A small subset of Go's `text/template`, enough for `line_format` and `label_format`.
//!
//! Supported: text, `{{.label}}`, string/number/bool literals, function calls, pipelines
//! (`{{ .x | ToUpper }}`), parenthesised sub-pipelines, `{{if}}`/`{{else if}}`/`{{else}}`/`{{end}}`,
//! trim markers (`{{-`, `-}}`), comments, and the common Loki/sprig functions listed in
//! [`FUNCTIONS`]. Not supported: `range`, `with`, variables, `define`/`template`.
//! Missing labels render as the empty string, as Loki's `map[string]string` data does.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

/// Function names the template engine knows (checked at parse time, as Go does).
pub const FUNCTIONS: &[&str] = &[
    "ToUpper",
    "ToLower",
    "upper",
    "lower",
    "title",
    "TrimSpace",
    "trim",
    "Trim",
    "TrimLeft",
    "TrimRight",
    "TrimPrefix",
    "TrimSuffix",
    "trimPrefix",
    "trimSuffix",
    "Replace",
    "replace",
    "trunc",
    "substr",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "repeat",
    "printf",
    "default",
    "len",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "and",
    "or",
    "not",
    "__line__",
    "__timestamp__",
    "unixEpoch",
    "int",
    "float64",
    "add",
    "sub",
    "mul",
    "div",
    "mod",
    "addf",
    "subf",
    "mulf",
    "divf",
    "regexReplaceAll",
    "regexReplaceAllLiteral",
    "count",
];

/// Cap on rendered output, so `repeat` and friends cannot exhaust memory.
const MAX_OUTPUT: usize = 64 * 1024;
/// Cap on nesting (parentheses, `if`), so hostile templates cannot overflow the stack.
const MAX_DEPTH: usize = 32;

/// A parsed template. Equality compares the source text.
#[derive(Debug, Clone)]
pub struct Template {
    src: String,
    nodes: Vec<Node>,
}

impl PartialEq for Template {
    fn eq(&self, other: &Self) -> bool {
        self.src == other.src
    }
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipeline),
    If {
        branches: Vec<(Pipeline, Vec<Node>)>,
        otherwise: Vec<Node>,
    },
}

#[derive(Debug, Clone)]
struct Pipeline(Vec<Command>);

#[derive(Debug, Clone)]
struct Command(Vec<Arg>);

#[derive(Debug, Clone)]
enum Arg {
    Field(String),
    Dot,
    Str(String),
    Num(f64),
    Bool(bool),
    Func(String),
    Sub(Pipeline),
}

#[derive(Debug, Clone, PartialEq)]
enum Val {
    Str(String),
    Num(f64),
    Int(i64),
    Bool(bool),
    Time(i64),
}

impl fmt::Display for Val {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Str(s) => f.write_str(s),
            Self::Num(n) => write!(f, "{n}"),
            Self::Int(n) => write!(f, "{n}"),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Time(ns) => f.write_str(&go_time_string(*ns)),
        }
    }
}

impl Val {
    fn truthy(&self) -> bool {
        match self {
            Self::Str(s) => !s.is_empty(),
            Self::Num(n) => *n != 0.0,
            Self::Int(n) => *n != 0,
            Self::Bool(b) => *b,
            Self::Time(_) => true,
        }
    }

    fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Str(s) => s.trim().parse().ok(),
            Self::Num(n) => Some(*n),
            Self::Int(n) => Some(*n as f64),
            Self::Bool(_) => None,
            Self::Time(ns) => Some(*ns as f64 / 1e9),
        }
    }

    fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Int(n) => Some(*n),
            Self::Str(s) => s
                .trim()
                .parse::<i64>()
                .ok()
                .or_else(|| s.trim().parse::<f64>().ok().map(|f| f as i64)),
            other => other.as_f64().map(|f| f as i64),
        }
    }
}

/// What a template can see while rendering.
pub(crate) struct Ctx<'a> {
    pub labels: &'a BTreeMap<String, String>,
    pub line: &'a str,
    pub ts_ns: i64,
}

/// A template parse error: byte offset into the template and message.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateError {
    /// Byte offset in the template source.
    pub pos: usize,
    /// Description.
    pub message: String,
}

impl Template {
    /// Parses template source.
    pub fn parse(src: &str) -> Result<Self, TemplateError> {
        let mut p = TParser { src, pos: 0 };
        let (nodes, end) = p.parse_nodes(0)?;
        if let Some(kw) = end {
            return Err(TemplateError {
                pos: p.pos,
                message: format!("unexpected {{{{{kw}}}}}"),
            });
        }
        Ok(Self {
            src: src.to_owned(),
            nodes,
        })
    }

    /// The template source.
    pub fn source(&self) -> &str {
        &self.src
    }

    pub(crate) fn render(&self, ctx: &Ctx<'_>) -> Result<String, String> {
        let mut out = String::new();
        render_nodes(&self.nodes, ctx, &mut out)?;
        Ok(out)
    }
}

fn render_nodes(nodes: &[Node], ctx: &Ctx<'_>, out: &mut String) -> Result<(), String> {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Action(p) => {
                let v = eval_pipeline(p, ctx)?;
                let _ = write!(out, "{v}");
            }
            Node::If {
                branches,
                otherwise,
            } => {
                let mut taken = false;
                for (cond, body) in branches {
                    if eval_pipeline(cond, ctx)?.truthy() {
                        render_nodes(body, ctx, out)?;
                        taken = true;
                        break;
                    }
                }
                if !taken {
                    render_nodes(otherwise, ctx, out)?;
                }
            }
        }
        if out.len() > MAX_OUTPUT {
            return Err(format!("template output exceeds {MAX_OUTPUT} bytes"));
        }
    }
    Ok(())
}

fn eval_pipeline(p: &Pipeline, ctx: &Ctx<'_>) -> Result<Val, String> {
    let mut prev: Option<Val> = None;
    for cmd in &p.0 {
        prev = Some(eval_command(cmd, ctx, prev.take())?);
    }
    prev.ok_or_else(|| "empty pipeline".to_owned())
}

fn eval_arg(a: &Arg, ctx: &Ctx<'_>) -> Result<Val, String> {
    Ok(match a {
        Arg::Field(name) => Val::Str(ctx.labels.get(name).cloned().unwrap_or_default()),
        Arg::Dot => Val::Str(
            ctx.labels
                .iter()
                .map(|(k, v)| format!("{k}:{v}"))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        Arg::Str(s) => Val::Str(s.clone()),
        Arg::Num(n) => {
            if n.fract() == 0.0 && n.abs() < 9e15 {
                Val::Int(*n as i64)
            } else {
                Val::Num(*n)
            }
        }
        Arg::Bool(b) => Val::Bool(*b),
        Arg::Func(f) => call(f, Vec::new(), ctx)?,
        Arg::Sub(p) => eval_pipeline(p, ctx)?,
    })
}

fn eval_command(cmd: &Command, ctx: &Ctx<'_>, piped: Option<Val>) -> Result<Val, String> {
    match cmd.0.first() {
        Some(Arg::Func(f)) => {
            let mut args = cmd.0[1..]
                .iter()
                .map(|a| eval_arg(a, ctx))
                .collect::<Result<Vec<_>, _>>()?;
            args.extend(piped);
            call(f, args, ctx)
        }
        Some(a) if cmd.0.len() == 1 => {
            if piped.is_some() {
                return Err("can't give argument to non-function".to_owned());
            }
            eval_arg(a, ctx)
        }
        Some(_) => Err("can't give argument to non-function".to_owned()),
        None => Err("empty command".to_owned()),
    }
}

fn want(name: &str, args: &[Val], n: usize) -> Result<(), String> {
    if args.len() == n {
        Ok(())
    } else {
        Err(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        ))
    }
}

fn s(v: &Val) -> String {
    v.to_string()
}

fn num(name: &str, v: &Val) -> Result<f64, String> {
    v.as_f64()
        .ok_or_else(|| format!("{name}: cannot convert {v} to a number"))
}

fn int(name: &str, v: &Val) -> Result<i64, String> {
    v.as_i64()
        .ok_or_else(|| format!("{name}: cannot convert {v} to an integer"))
}

fn compare(a: &Val, b: &Val) -> std::cmp::Ordering {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) if !matches!((a, b), (Val::Str(_), Val::Str(_))) => {
            x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal)
        }
        _ => s(a).cmp(&s(b)),
    }
}

fn vals_eq(a: &Val, b: &Val) -> bool {
    match (a, b) {
        (Val::Str(x), Val::Str(y)) => x == y,
        (Val::Bool(x), Val::Bool(y)) => x == y,
        _ => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => s(a) == s(b),
        },
    }
}

fn char_slice(st: &str, start: usize, end: usize) -> String {
    st.chars()
        .skip(start)
        .take(end.saturating_sub(start))
        .collect()
}

fn call(name: &str, args: Vec<Val>, ctx: &Ctx<'_>) -> Result<Val, String> {
    use Val::{Bool, Int, Num, Str};
    let a = &args;
    let r = match name {
        "ToUpper" | "upper" => {
            want(name, a, 1)?;
            Str(s(&a[0]).to_uppercase())
        }
        "ToLower" | "lower" => {
            want(name, a, 1)?;
            Str(s(&a[0]).to_lowercase())
        }
        "title" => {
            want(name, a, 1)?;
            let mut out = String::new();
            let mut start = true;
            for c in s(&a[0]).chars() {
                if start && c.is_alphabetic() {
                    out.extend(c.to_uppercase());
                } else {
                    out.push(c);
                }
                start = !c.is_alphanumeric();
            }
            Str(out)
        }
        "TrimSpace" | "trim" => {
            want(name, a, 1)?;
            Str(s(&a[0]).trim().to_owned())
        }
        "Trim" | "TrimLeft" | "TrimRight" => {
            want(name, a, 2)?;
            let cut: Vec<char> = s(&a[1]).chars().collect();
            let v = s(&a[0]);
            let r = match name {
                "Trim" => v.trim_matches(cut.as_slice()),
                "TrimLeft" => v.trim_start_matches(cut.as_slice()),
                _ => v.trim_end_matches(cut.as_slice()),
            };
            Str(r.to_owned())
        }
        "TrimPrefix" | "TrimSuffix" => {
            want(name, a, 2)?;
            let (v, affix) = (s(&a[0]), s(&a[1]));
            let r = if name == "TrimPrefix" {
                v.strip_prefix(affix.as_str())
            } else {
                v.strip_suffix(affix.as_str())
            };
            Str(r.map_or(v.clone(), str::to_owned))
        }
        "trimPrefix" | "trimSuffix" => {
            want(name, a, 2)?;
            let (affix, v) = (s(&a[0]), s(&a[1]));
            let r = if name == "trimPrefix" {
                v.strip_prefix(affix.as_str())
            } else {
                v.strip_suffix(affix.as_str())
            };
            Str(r.map_or(v.clone(), str::to_owned))
        }
        "Replace" => {
            want(name, a, 4)?;
            let n = int(name, &a[3])?;
            let (v, old, new) = (s(&a[0]), s(&a[1]), s(&a[2]));
            Str(if n < 0 {
                v.replace(&old, &new)
            } else {
                v.replacen(&old, &new, usize::try_from(n).unwrap_or(usize::MAX))
            })
        }
        "replace" => {
            want(name, a, 3)?;
            Str(s(&a[2]).replace(&s(&a[0]), &s(&a[1])))
        }
        "trunc" => {
            want(name, a, 2)?;
            let n = int(name, &a[0])?;
            let v = s(&a[1]);
            let len = v.chars().count();
            let k = usize::try_from(n.unsigned_abs())
                .unwrap_or(usize::MAX)
                .min(len);
            Str(if n >= 0 {
                char_slice(&v, 0, k)
            } else {
                char_slice(&v, len - k, len)
            })
        }
        "substr" => {
            want(name, a, 3)?;
            let start = usize::try_from(int(name, &a[0])?.max(0)).unwrap_or(0);
            let end = usize::try_from(int(name, &a[1])?.max(0)).unwrap_or(0);
            Str(char_slice(&s(&a[2]), start, end))
        }
        "contains" => {
            want(name, a, 2)?;
            Bool(s(&a[1]).contains(&s(&a[0])))
        }
        "hasPrefix" => {
            want(name, a, 2)?;
            Bool(s(&a[1]).starts_with(&s(&a[0])))
        }
        "hasSuffix" => {
            want(name, a, 2)?;
            Bool(s(&a[1]).ends_with(&s(&a[0])))
        }
        "count" => {
            want(name, a, 2)?;
            let (needle, hay) = (s(&a[0]), s(&a[1]));
            Int(if needle.is_empty() {
                0
            } else {
                hay.matches(&needle).count() as i64
            })
        }
        "repeat" => {
            want(name, a, 2)?;
            let n = usize::try_from(int(name, &a[0])?.max(0)).unwrap_or(0);
            let v = s(&a[1]);
            if v.len().saturating_mul(n) > MAX_OUTPUT {
                return Err(format!("repeat output exceeds {MAX_OUTPUT} bytes"));
            }
            Str(v.repeat(n))
        }
        "printf" => {
            let Some((fmt, rest)) = a.split_first() else {
                return Err("wrong number of args for printf: want at least 1 got 0".into());
            };
            Str(sprintf(&s(fmt), rest))
        }
        "default" => {
            want(name, a, 2)?;
            if a[1].truthy() {
                a[1].clone()
            } else {
                a[0].clone()
            }
        }
        "len" => {
            want(name, a, 1)?;
            Int(s(&a[0]).len() as i64)
        }
        "eq" => {
            if a.len() < 2 {
                return Err("missing argument for comparison".into());
            }
            Bool(a[1..].iter().any(|b| vals_eq(&a[0], b)))
        }
        "ne" => {
            want(name, a, 2)?;
            Bool(!vals_eq(&a[0], &a[1]))
        }
        "lt" | "le" | "gt" | "ge" => {
            want(name, a, 2)?;
            let o = compare(&a[0], &a[1]);
            Bool(match name {
                "lt" => o.is_lt(),
                "le" => o.is_le(),
                "gt" => o.is_gt(),
                _ => o.is_ge(),
            })
        }
        "and" => {
            if a.is_empty() {
                return Err("missing argument for and".into());
            }
            a.iter()
                .find(|v| !v.truthy())
                .unwrap_or(&a[a.len() - 1])
                .clone()
        }
        "or" => {
            if a.is_empty() {
                return Err("missing argument for or".into());
            }
            a.iter()
                .find(|v| v.truthy())
                .unwrap_or(&a[a.len() - 1])
                .clone()
        }
        "not" => {
            want(name, a, 1)?;
            Bool(!a[0].truthy())
        }
        "__line__" => {
            want(name, a, 0)?;
            Str(ctx.line.to_owned())
        }
        "__timestamp__" => {
            want(name, a, 0)?;
            Val::Time(ctx.ts_ns)
        }
        "unixEpoch" => {
            want(name, a, 1)?;
            match &a[0] {
                Val::Time(ns) => Int(ns.div_euclid(1_000_000_000)),
                other => return Err(format!("unixEpoch: {other} is not a time")),
            }
        }
        "int" => {
            want(name, a, 1)?;
            Int(int(name, &a[0])?)
        }
        "float64" => {
            want(name, a, 1)?;
            Num(num(name, &a[0])?)
        }
        "add" | "sub" | "mul" | "div" | "mod" => {
            want(name, a, 2)?;
            let (x, y) = (int(name, &a[0])?, int(name, &a[1])?);
            Int(match name {
                "add" => x.wrapping_add(y),
                "sub" => x.wrapping_sub(y),
                "mul" => x.wrapping_mul(y),
                _ if y == 0 => return Err("integer divide by zero".into()),
                "div" => x.wrapping_div(y),
                _ => x.wrapping_rem(y),
            })
        }
        "addf" | "subf" | "mulf" | "divf" => {
            want(name, a, 2)?;
            let (x, y) = (num(name, &a[0])?, num(name, &a[1])?);
            Num(match name {
                "addf" => x + y,
                "subf" => x - y,
                "mulf" => x * y,
                _ => x / y,
            })
        }
        "regexReplaceAll" | "regexReplaceAllLiteral" => {
            want(name, a, 3)?;
            let re = crate::source::compile_regex(&s(&a[0])).map_err(|e| e.to_string())?;
            let (v, repl) = (s(&a[1]), s(&a[2]));
            Str(if name == "regexReplaceAll" {
                re.replace_all(&v, repl.as_str()).into_owned()
            } else {
                re.replace_all(&v, regex::NoExpand(&repl)).into_owned()
            })
        }
        other => return Err(format!("function {other:?} not defined")),
    };
    Ok(r)
}

/// Go's `fmt.Sprintf` for the common verbs (`%s %v %d %f %g %e %q %x %X %t %%`, flags, width, precision).
fn sprintf(fmt: &str, args: &[Val]) -> String {
    let mut out = String::new();
    let mut it = fmt.chars().peekable();
    let mut next_arg = 0usize;
    while let Some(c) = it.next() {
        if out.len() > MAX_OUTPUT {
            break;
        }
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut left, mut zero, mut plus, mut space) = (false, false, false, false);
        while let Some(&f) = it.peek() {
            match f {
                '-' => left = true,
                '0' => zero = true,
                '+' => plus = true,
                ' ' => space = true,
                '#' => {}
                _ => break,
            }
            it.next();
        }
        let mut width = String::new();
        while let Some(&d) = it.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            it.next();
        }
        let mut prec: Option<usize> = None;
        if it.peek() == Some(&'.') {
            it.next();
            let mut p = String::new();
            while let Some(&d) = it.peek().filter(|d| d.is_ascii_digit()) {
                p.push(d);
                it.next();
            }
            prec = Some(p.parse().unwrap_or(0).min(64));
        }
        let width: usize = width.parse().unwrap_or(0).min(1024);
        let Some(verb) = it.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next_arg) else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        next_arg += 1;
        let sign = |v: f64| {
            if v.is_sign_negative() {
                ""
            } else if plus {
                "+"
            } else if space {
                " "
            } else {
                ""
            }
        };
        let body = match verb {
            's' | 'v' => {
                let v = s(arg);
                match prec {
                    Some(p) => v.chars().take(p).collect(),
                    None => v,
                }
            }
            'q' => crate::ast::quote(&s(arg)),
            't' => s(arg),
            'd' => match arg.as_i64() {
                Some(n) => format!("{}{n}", sign(n as f64)),
                None => format!("%!d({})", s(arg)),
            },
            'x' | 'X' => {
                let h = match arg {
                    Val::Str(st) => st.bytes().map(|b| format!("{b:02x}")).collect(),
                    other => match other.as_i64() {
                        Some(n) if n < 0 => format!("-{:x}", n.unsigned_abs()),
                        Some(n) => format!("{n:x}"),
                        None => s(other),
                    },
                };
                if verb == 'X' { h.to_uppercase() } else { h }
            }
            'f' | 'F' | 'e' | 'g' => match arg.as_f64() {
                Some(v) => {
                    let body = match verb {
                        'e' => format!("{:.*e}", prec.unwrap_or(6), v),
                        'g' => match prec {
                            Some(p) => format!("{:.*}", p, v),
                            None => format!("{v}"),
                        },
                        _ => format!("{:.*}", prec.unwrap_or(6), v),
                    };
                    format!("{}{body}", sign(v))
                }
                None => format!("%!{verb}({})", s(arg)),
            },
            other => format!("%!{other}({})", s(arg)),
        };
        let pad = width.saturating_sub(body.chars().count());
        if left {
            out.push_str(&body);
            out.extend(std::iter::repeat_n(' ', pad));
        } else if zero && matches!(verb, 'd' | 'f' | 'F' | 'e' | 'g' | 'x' | 'X') {
            let (sgn, digits) = match body.strip_prefix(['-', '+', ' ']) {
                Some(d) => (&body[..1], d),
                None => ("", body.as_str()),
            };
            out.push_str(sgn);
            out.extend(std::iter::repeat_n('0', pad));
            out.push_str(digits);
        } else {
            out.extend(std::iter::repeat_n(' ', pad));
            out.push_str(&body);
        }
    }
    if next_arg < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[next_arg..].iter().map(s).collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

/// Renders a timestamp the way Go prints a `time.Time` in UTC.
fn go_time_string(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let frac = ns.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut out = format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    );
    if frac != 0 {
        let f = format!("{frac:09}");
        out.push('.');
        out.push_str(f.trim_end_matches('0'));
    }
    out.push_str(" +0000 UTC");
    out
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

struct TParser<'a> {
    src: &'a str,
    pos: usize,
}

impl TParser<'_> {
    fn err<T>(&self, pos: usize, message: impl Into<String>) -> Result<T, TemplateError> {
        Err(TemplateError {
            pos,
            message: message.into(),
        })
    }

    /// Parses nodes until EOF or a block keyword (`else`, `end`), which is returned.
    fn parse_nodes(&mut self, depth: usize) -> Result<(Vec<Node>, Option<String>), TemplateError> {
        if depth > MAX_DEPTH {
            return self.err(self.pos, "template nested too deeply");
        }
        let mut nodes = Vec::new();
        loop {
            let rest = &self.src[self.pos..];
            let Some(open) = rest.find("{{") else {
                if !rest.is_empty() {
                    nodes.push(Node::Text(rest.to_owned()));
                }
                self.pos = self.src.len();
                return Ok((nodes, None));
            };
            let mut text = rest[..open].to_owned();
            let action_start = self.pos + open;
            self.pos = action_start + 2;
            if self.src[self.pos..].starts_with('-') {
                self.pos += 1;
                text.truncate(text.trim_end().len());
            }
            if !text.is_empty() {
                nodes.push(Node::Text(text));
            }
            self.skip_ws();
            if self.src[self.pos..].starts_with("/*") {
                let Some(close) = self.src[self.pos..].find("*/") else {
                    return self.err(action_start, "unclosed comment");
                };
                self.pos += close + 2;
                self.skip_ws();
                self.close_action(action_start)?;
                continue;
            }
            let kw_pos = self.pos;
            let kw = self.peek_ident();
            match kw.as_deref() {
                Some("end") => {
                    self.pos += 3;
                    self.close_action(action_start)?;
                    return Ok((nodes, Some("end".into())));
                }
                Some("else") => {
                    self.pos += 4;
                    self.skip_ws();
                    if self.peek_ident().as_deref() == Some("if") {
                        self.pos += 2;
                        return Ok((nodes, Some("else if".into())));
                    }
                    self.close_action(action_start)?;
                    return Ok((nodes, Some("else".into())));
                }
                Some("if") => {
                    self.pos += 2;
                    let node = self.parse_if(action_start, depth)?;
                    nodes.push(node);
                }
                Some(k @ ("range" | "with" | "define" | "template" | "block")) => {
                    return self.err(kw_pos, format!("{{{{{k}}}}} is not supported"));
                }
                _ => {
                    let p = self.parse_pipeline(depth)?;
                    self.close_action(action_start)?;
                    nodes.push(Node::Action(p));
                }
            }
        }
    }

    /// After `{{if` has been consumed: condition, body, optional else branches, `{{end}}`.
    fn parse_if(&mut self, start: usize, depth: usize) -> Result<Node, TemplateError> {
        let mut branches = Vec::new();
        loop {
            let cond = self.parse_pipeline(depth)?;
            self.close_action(start)?;
            let (body, end) = self.parse_nodes(depth + 1)?;
            branches.push((cond, body));
            match end.as_deref() {
                Some("end") => {
                    return Ok(Node::If {
                        branches,
                        otherwise: Vec::new(),
                    });
                }
                Some("else if") => continue,
                Some("else") => {
                    let (otherwise, end) = self.parse_nodes(depth + 1)?;
                    if end.as_deref() != Some("end") {
                        return self.err(self.pos, "expected {{end}}");
                    }
                    return Ok(Node::If {
                        branches,
                        otherwise,
                    });
                }
                _ => return self.err(start, "unclosed {{if}}: expected {{end}}"),
            }
        }
    }

    fn close_action(&mut self, start: usize) -> Result<(), TemplateError> {
        self.skip_ws();
        let rest = &self.src[self.pos..];
        if let Some(r) = rest.strip_prefix("-}}") {
            self.pos += 3;
            let trimmed = r.trim_start();
            self.pos += r.len() - trimmed.len();
            Ok(())
        } else if rest.starts_with("}}") {
            self.pos += 2;
            Ok(())
        } else if rest.is_empty() {
            self.err(start, "unclosed action: expected }}")
        } else {
            self.err(self.pos, "unexpected input in action: expected }}")
        }
    }

    fn skip_ws(&mut self) {
        let rest = &self.src[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn peek_ident(&self) -> Option<String> {
        let rest = &self.src[self.pos..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let word = &rest[..end];
        (!word.is_empty() && !word.starts_with(|c: char| c.is_ascii_digit()))
            .then(|| word.to_owned())
    }

    fn at_action_end(&self) -> bool {
        let rest = &self.src[self.pos..];
        rest.is_empty() || rest.starts_with("}}") || rest.starts_with("-}}")
    }

    fn parse_pipeline(&mut self, depth: usize) -> Result<Pipeline, TemplateError> {
        if depth > MAX_DEPTH {
            return self.err(self.pos, "template nested too deeply");
        }
        let mut cmds = Vec::new();
        loop {
            let mut args = Vec::new();
            loop {
                self.skip_ws();
                if self.at_action_end()
                    || self.src[self.pos..].starts_with('|')
                    || self.src[self.pos..].starts_with(')')
                {
                    break;
                }
                args.push(self.parse_arg(depth)?);
            }
            if args.is_empty() {
                return self.err(self.pos, "missing value for command");
            }
            cmds.push(Command(args));
            if self.src[self.pos..].starts_with('|') {
                self.pos += 1;
            } else {
                return Ok(Pipeline(cmds));
            }
        }
    }

    fn parse_arg(&mut self, depth: usize) -> Result<Arg, TemplateError> {
        let start = self.pos;
        let rest = &self.src[self.pos..];
        let Some(c) = rest.chars().next() else {
            return self.err(start, "unexpected end of template");
        };
        match c {
            '.' => {
                let name_len = rest[1..]
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len() - 1);
                self.pos += 1 + name_len;
                if name_len == 0 {
                    Ok(Arg::Dot)
                } else {
                    Ok(Arg::Field(rest[1..=name_len].to_owned()))
                }
            }
            '"' | '`' => {
                let (s, len) =
                    crate::lexer::unquote_prefix(rest).map_err(|(off, m)| TemplateError {
                        pos: start + off,
                        message: m,
                    })?;
                self.pos += len;
                Ok(Arg::Str(s))
            }
            '(' => {
                self.pos += 1;
                let p = self.parse_pipeline(depth + 1)?;
                self.skip_ws();
                if !self.src[self.pos..].starts_with(')') {
                    return self.err(self.pos, "unclosed left paren");
                }
                self.pos += 1;
                Ok(Arg::Sub(p))
            }
            c if c.is_ascii_digit() || c == '-' || c == '+' => {
                let len = rest[1..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
                    .map_or(rest.len(), |i| i + 1);
                let text = &rest[..len];
                let n: f64 = text.parse().map_err(|_| TemplateError {
                    pos: start,
                    message: format!("bad number syntax: {text:?}"),
                })?;
                self.pos += len;
                Ok(Arg::Num(n))
            }
            _ => match self.peek_ident() {
                Some(w) => {
                    self.pos += w.len();
                    match w.as_str() {
                        "true" => Ok(Arg::Bool(true)),
                        "false" => Ok(Arg::Bool(false)),
                        f if FUNCTIONS.contains(&f) => Ok(Arg::Func(w)),
                        _ => self.err(start, format!("function {w:?} not defined")),
                    }
                }
                None => self.err(start, format!("unexpected {c:?} in action")),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(t: &str, labels: &[(&str, &str)]) -> Result<String, String> {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        let tpl = Template::parse(t).map_err(|e| e.message)?;
        tpl.render(&Ctx {
            labels: &labels,
            line: "the line",
            ts_ns: 1_700_000_000_123_000_000,
        })
    }

    #[test]
    fn fields_and_functions() {
        let l = [("msg", "hello"), ("level", "warn"), ("n", "7")];
        assert_eq!(render("{{.level}}: {{.msg}}", &l).unwrap(), "warn: hello");
        assert_eq!(render("{{ .msg | ToUpper }}", &l).unwrap(), "HELLO");
        assert_eq!(render("{{ToUpper .msg}}", &l).unwrap(), "HELLO");
        assert_eq!(render("{{.missing}}|", &l).unwrap(), "|");
        assert_eq!(
            render(r#"{{printf "%-5s|%03d|%.2f" .level .n 1.5}}"#, &l).unwrap(),
            "warn |007|1.50"
        );
        assert_eq!(render(r#"{{ default "x" .missing }}"#, &l).unwrap(), "x");
        assert_eq!(render("{{ __line__ }}", &l).unwrap(), "the line");
        assert_eq!(
            render("{{ __timestamp__ }}", &l).unwrap(),
            "2023-11-14 22:13:20.123 +0000 UTC"
        );
        assert_eq!(render(r#"{{ add .n 3 }}"#, &l).unwrap(), "10");
        assert_eq!(
            render(r#"{{ .msg | replace "l" "L" | trunc 3 }}"#, &l).unwrap(),
            "heL"
        );
    }

    #[test]
    fn conditionals_and_trim() {
        let l = [("level", "error")];
        let t = r#"{{if eq .level "error"}}E{{else if eq .level "warn"}}W{{else}}I{{end}}"#;
        assert_eq!(render(t, &l).unwrap(), "E");
        assert_eq!(render(t, &[("level", "warn")]).unwrap(), "W");
        assert_eq!(render(t, &[]).unwrap(), "I");
        assert_eq!(render("a  {{- .level -}}  b", &l).unwrap(), "aerrorb");
        assert_eq!(render("x{{/* c */}}y", &l).unwrap(), "xy");
    }

    #[test]
    fn parse_errors() {
        assert!(Template::parse("{{.a").is_err());
        assert!(Template::parse("{{ nosuch .a }}").is_err());
        assert!(Template::parse("{{if .a}}x").is_err());
        assert!(Template::parse("{{end}}").is_err());
        assert!(Template::parse("{{range .a}}{{end}}").is_err());
        assert!(Template::parse(&"{{(".repeat(100)).is_err());
    }

    #[test]
    fn runtime_errors() {
        assert!(render(r#"{{ repeat 100000000 "ab" }}"#, &[]).is_err());
        assert!(render(r#"{{ div 1 0 }}"#, &[]).is_err());
        assert!(render(r#"{{ ToUpper "a" "b" }}"#, &[]).is_err());
    }
}
