//! The part of Prometheus's alert templating (Go `text/template`) that rule labels and annotations use.
//!
//! Written by hand because no maintained Rust crate implements Go templates with Prometheus's functions, and a
//! general template engine (Tera, Handlebars) has a different syntax: a rule copied from a real Prometheus must
//! expand the same way here. Supported: text with `{{ ... }}` actions (and the `{{-`/`-}}` trim markers);
//! operands `$labels.NAME`, `.Labels.NAME`, `$value`, `.Value`, `$externalLabels.NAME` (always empty here),
//! string and number literals; pipelines with `|`; the functions `humanize`, `humanize1024`,
//! `humanizePercentage`, `humanizeDuration`, `printf`, `toUpper`, `toLower` and `title`. Anything else is
//! rejected when the rule is compiled, with its position in the template.

use std::collections::BTreeMap;
use std::fmt;

/// A template that failed to parse: what and where (1-based column, counted in characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template error at column {column}: {message}")]
pub struct TemplateError {
    /// 1-based character column in the template text.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Action(Vec<Command>),
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Label(String),
    ExternalLabel,
    Value,
    Str(String),
    Num(f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Humanize,
    Humanize1024,
    HumanizePercentage,
    HumanizeDuration,
    Printf,
    ToUpper,
    ToLower,
    Title,
}

impl Func {
    fn from_name(name: &str) -> Option<Func> {
        Some(match name {
            "humanize" => Func::Humanize,
            "humanize1024" => Func::Humanize1024,
            "humanizePercentage" => Func::HumanizePercentage,
            "humanizeDuration" => Func::HumanizeDuration,
            "printf" => Func::Printf,
            "toUpper" => Func::ToUpper,
            "toLower" => Func::ToLower,
            "title" => Func::Title,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Command {
    Operand(Operand),
    Call(Func, Vec<Operand>),
}

/// A value flowing through a pipeline.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Num(f64),
    Str(String),
}

impl fmt::Display for Val {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Val::Num(v) => f.write_str(&go_float(*v)),
            Val::Str(s) => f.write_str(s),
        }
    }
}

/// What a template reads: the alert's labels and value.
#[derive(Debug, Clone, Copy)]
pub struct Data<'a> {
    /// `$labels`.
    pub labels: &'a BTreeMap<String, String>,
    /// `$value`.
    pub value: f64,
}

impl Template {
    /// Parses a template.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = text;
        let mut offset = 0usize; // byte offset of `rest` in `text`
        let col = |byte: usize| text[..byte].chars().count() + 1;
        while let Some(open) = rest.find("{{") {
            let mut literal = &rest[..open];
            let mut inner_start = open + 2;
            if rest[inner_start..].starts_with('-')
                && rest[inner_start + 1..].starts_with(char::is_whitespace)
            {
                literal = literal.trim_end();
                inner_start += 1;
            }
            if !literal.is_empty() {
                parts.push(Part::Text(literal.to_string()));
            }
            let Some(close_rel) = rest[inner_start..].find("}}") else {
                return Err(TemplateError {
                    column: col(offset + open),
                    message: "unclosed action: missing }}".into(),
                });
            };
            let mut inner_end = inner_start + close_rel;
            let mut trim_after = false;
            if inner_end > inner_start
                && rest[..inner_end].ends_with('-')
                && rest[..inner_end - 1].ends_with(char::is_whitespace)
            {
                inner_end -= 1;
                trim_after = true;
            }
            let inner = &rest[inner_start..inner_end];
            let commands = parse_pipeline(inner, |b| col(offset + inner_start + b))?;
            parts.push(Part::Action(commands));
            let after = inner_start + close_rel + 2;
            offset += after;
            rest = &rest[after..];
            if trim_after {
                let trimmed = rest.trim_start();
                offset += rest.len() - trimmed.len();
                rest = trimmed;
            }
        }
        if let Some(close) = rest.find("}}") {
            return Err(TemplateError {
                column: col(offset + close),
                message: "unexpected }} outside an action".into(),
            });
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template { parts })
    }

    /// Whether the template is plain text (no action).
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Text(_)))
    }

    /// Whether the expansion reads the alert's value (`$value`, `.Value`): if not, it depends on the labels alone,
    /// so the rule engine can keep it for a label set (see [`crate::RuleEngine`]).
    pub fn reads_value(&self) -> bool {
        let value = |o: &Operand| matches!(o, Operand::Value);
        self.parts.iter().any(|p| match p {
            Part::Text(_) => false,
            Part::Action(cmds) => cmds.iter().any(|c| match c {
                Command::Operand(o) => value(o),
                Command::Call(_, args) => args.iter().any(value),
            }),
        })
    }

    /// Expands the template. Missing labels expand to the empty string, as Prometheus's `missingkey=zero`.
    pub fn expand(&self, data: Data<'_>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Action(cmds) => {
                    let mut acc: Option<Val> = None;
                    for c in cmds {
                        acc = Some(run(c, acc.take(), data));
                    }
                    if let Some(v) = acc {
                        out.push_str(&v.to_string());
                    }
                }
            }
        }
        out
    }
}

fn operand_value(o: &Operand, data: Data<'_>) -> Val {
    match o {
        Operand::Label(name) => Val::Str(data.labels.get(name).cloned().unwrap_or_default()),
        Operand::ExternalLabel => Val::Str(String::new()),
        Operand::Value => Val::Num(data.value),
        Operand::Str(s) => Val::Str(s.clone()),
        Operand::Num(n) => Val::Num(*n),
    }
}

fn as_number(v: &Val) -> f64 {
    match v {
        Val::Num(n) => *n,
        // Prometheus's template functions convert strings with strconv.ParseFloat.
        Val::Str(s) => s.trim().parse().unwrap_or(f64::NAN),
    }
}

fn run(c: &Command, piped: Option<Val>, data: Data<'_>) -> Val {
    match c {
        Command::Operand(o) => operand_value(o, data),
        Command::Call(f, args) => {
            let mut vals: Vec<Val> = args.iter().map(|a| operand_value(a, data)).collect();
            vals.extend(piped);
            let first = vals.first().cloned().unwrap_or(Val::Str(String::new()));
            match f {
                Func::Humanize => Val::Str(humanize(as_number(&first))),
                Func::Humanize1024 => Val::Str(humanize1024(as_number(&first))),
                Func::HumanizePercentage => {
                    Val::Str(format!("{}%", go_g(as_number(&first) * 100.0, 4)))
                }
                Func::HumanizeDuration => Val::Str(humanize_duration(as_number(&first))),
                Func::ToUpper => Val::Str(first.to_string().to_uppercase()),
                Func::ToLower => Val::Str(first.to_string().to_lowercase()),
                Func::Title => Val::Str(title(&first.to_string())),
                Func::Printf => {
                    let format = match &first {
                        Val::Str(s) => s.clone(),
                        Val::Num(_) => String::new(),
                    };
                    Val::Str(printf(&format, &vals[1.min(vals.len())..]))
                }
            }
        }
    }
}

fn parse_pipeline(
    inner: &str,
    col: impl Fn(usize) -> usize,
) -> Result<Vec<Command>, TemplateError> {
    let tokens = tokenize(inner, &col)?;
    if tokens.is_empty() {
        return Err(TemplateError {
            column: col(0),
            message: "empty action".into(),
        });
    }
    let mut commands = Vec::new();
    for (i, group) in tokens.split(|t| t.1 == Tok::Pipe).enumerate() {
        let Some(((head_at, head), args)) = group.split_first() else {
            return Err(TemplateError {
                column: col(inner.len()),
                message: "missing command in pipeline".into(),
            });
        };
        match head {
            Tok::Ident(name) => {
                let Some(f) = Func::from_name(name) else {
                    return Err(TemplateError {
                        column: col(*head_at),
                        message: format!("function {name:?} not defined"),
                    });
                };
                let mut operands = Vec::new();
                for (at, t) in args {
                    operands.push(to_operand(t).ok_or_else(|| TemplateError {
                        column: col(*at),
                        message: "expected an operand".into(),
                    })?);
                }
                if f == Func::Printf && operands.is_empty() && i == 0 {
                    return Err(TemplateError {
                        column: col(*head_at),
                        message: "printf needs a format string".into(),
                    });
                }
                let max_args = if f == Func::Printf { usize::MAX } else { 1 };
                let given = operands.len() + usize::from(i > 0);
                if given == 0 || given > max_args {
                    return Err(TemplateError {
                        column: col(*head_at),
                        message: format!(
                            "wrong number of arguments for {name}: want 1, got {given}"
                        ),
                    });
                }
                commands.push(Command::Call(f, operands));
            }
            t => {
                if i > 0 {
                    return Err(TemplateError {
                        column: col(*head_at),
                        message: "only functions can follow | in a pipeline".into(),
                    });
                }
                if let Some((at, _)) = args.first() {
                    return Err(TemplateError {
                        column: col(*at),
                        message: "unexpected operand: only a function takes arguments".into(),
                    });
                }
                commands.push(Command::Operand(to_operand(t).ok_or_else(|| {
                    TemplateError {
                        column: col(*head_at),
                        message: "expected an operand".into(),
                    }
                })?));
            }
        }
    }
    Ok(commands)
}

fn to_operand(t: &Tok) -> Option<Operand> {
    match t {
        Tok::Var(v) => Some(v.clone()),
        Tok::Str(s) => Some(Operand::Str(s.clone())),
        Tok::Num(n) => Some(Operand::Num(*n)),
        Tok::Ident(_) | Tok::Pipe => None,
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Pipe,
    Ident(String),
    Var(Operand),
    Str(String),
    Num(f64),
}

fn tokenize(s: &str, col: &impl Fn(usize) -> usize) -> Result<Vec<(usize, Tok)>, TemplateError> {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |at: usize, message: String| TemplateError {
        column: col(at),
        message,
    };
    let word_end = |from: usize| {
        s[from..]
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.' || c == '$'))
            .map_or(s.len(), |e| from + e)
    };
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'|' {
            out.push((i, Tok::Pipe));
            i += 1;
        } else if c == b'"' || c == b'`' {
            let mut j = i + 1;
            let mut text = String::new();
            let mut closed = false;
            while j < bytes.len() {
                let ch = s[j..].chars().next().unwrap_or('\0');
                if ch as u32 == c as u32 {
                    closed = true;
                    j += 1;
                    break;
                }
                if c == b'"' && ch == '\\' {
                    let next = s[j + 1..].chars().next().unwrap_or('\0');
                    text.push(match next {
                        'n' => '\n',
                        't' => '\t',
                        other => other,
                    });
                    j += 1 + next.len_utf8();
                    continue;
                }
                text.push(ch);
                j += ch.len_utf8();
            }
            if !closed {
                return Err(err(i, "unterminated string".into()));
            }
            out.push((i, Tok::Str(text)));
            i = j;
        } else if c.is_ascii_digit() || c == b'-' || c == b'+' {
            let end = word_end(i + 1);
            let n: f64 = s[i..end]
                .parse()
                .map_err(|_| err(i, format!("bad number {:?}", &s[i..end])))?;
            out.push((i, Tok::Num(n)));
            i = end;
        } else if c == b'$' || c == b'.' {
            let end = word_end(i + 1);
            let word = &s[i..end];
            let var = match word {
                "$value" | ".Value" => Operand::Value,
                _ => {
                    let label = word
                        .strip_prefix("$labels.")
                        .or_else(|| word.strip_prefix(".Labels."));
                    match label {
                        Some(l) if valid_label_name(l) => Operand::Label(l.to_string()),
                        _ if word.starts_with("$externalLabels.")
                            || word.starts_with(".ExternalLabels.") =>
                        {
                            Operand::ExternalLabel
                        }
                        _ => {
                            return Err(err(
                                i,
                                format!(
                                    "undefined variable {word:?} (use $labels.NAME, $value, \
                                     .Labels.NAME or .Value)"
                                ),
                            ));
                        }
                    }
                }
            };
            out.push((i, Tok::Var(var)));
            i = end;
        } else if c.is_ascii_alphabetic() {
            let end = word_end(i);
            out.push((i, Tok::Ident(s[i..end].to_string())));
            i = end;
        } else {
            let ch = s[i..].chars().next().unwrap_or('?');
            return Err(err(i, format!("unexpected {ch:?} in action")));
        }
    }
    Ok(out)
}

/// Whether a string is a valid Prometheus label name.
pub fn valid_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Go's `%v` of a float64 (`strconv.FormatFloat(v, 'g', -1, 64)`): the shortest digits that round-trip, in
/// exponent form when the exponent is below -4 or at least 6 (Go decides with precision 6 when the precision
/// is the shortest).
pub fn go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits, like Go's precision -1.
    let e = format!("{v:e}");
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        go_exp(mantissa, exp)
    } else {
        format!("{v}")
    }
}

fn go_exp(mantissa: &str, exp: i32) -> String {
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

/// Go's `%.{prec}g`.
pub fn go_g(v: f64, prec: usize) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let prec = prec.max(1);
    let e = format!("{:.*e}", prec - 1, v);
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if exp < -4 || exp >= prec as i32 {
        go_exp(&trim(mantissa), exp)
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        trim(&format!("{:.*}", decimals, v))
    }
}

fn humanize(mut v: f64) -> String {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return go_g(v, 4);
    }
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", go_g(v, 4))
}

fn humanize1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || v.is_nan() || v.is_infinite() {
        return go_g(v, 4);
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", go_g(v, 4))
}

fn humanize_duration(mut v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return go_g(v, 4);
    }
    if v == 0.0 {
        return "0s".into();
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        v = v.abs();
        let d = v as i64;
        let (days, hours, minutes, seconds) = (d / 86_400, d / 3600 % 24, d / 60 % 60, d % 60);
        return if days != 0 {
            format!("{sign}{days}d {hours}h {minutes}m {seconds}s")
        } else if hours != 0 {
            format!("{sign}{hours}h {minutes}m {seconds}s")
        } else if minutes != 0 {
            format!("{sign}{minutes}m {seconds}s")
        } else {
            format!("{sign}{}s", go_g(v, 4))
        };
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", go_g(v, 4))
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    out
}

/// Go's `fmt.Sprintf` for the verbs alert templates use: `%v %s %d %f %e %g` with flags width and precision,
/// and `%%`.
fn printf(format: &str, args: &[Val]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = String::new();
        let mut verb = None;
        for c in chars.by_ref() {
            if c.is_ascii_alphabetic() || c == '%' {
                verb = Some(c);
                break;
            }
            spec.push(c);
        }
        let Some(verb) = verb else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let flags_end = spec
            .find(|c: char| !matches!(c, '-' | '+' | '#' | ' ' | '0'))
            .unwrap_or(spec.len());
        let (flags, rest) = spec.split_at(flags_end);
        let (width, precision) = match rest.split_once('.') {
            Some((w, p)) => (
                w.parse::<usize>().ok(),
                Some(p.parse::<usize>().unwrap_or(0)),
            ),
            None => (rest.parse::<usize>().ok(), None),
        };
        let Some(arg) = args.next() else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        let body = match (verb, arg) {
            ('v' | 's', v) => v.to_string(),
            ('d', Val::Num(n)) if n.fract() == 0.0 => format!("{}", *n as i64),
            ('f' | 'F', v) => format!("{:.*}", precision.unwrap_or(6), as_number(v)),
            ('e', v) => {
                let e = format!("{:.*e}", precision.unwrap_or(6), as_number(v));
                let (m, x) = e.split_once('e').unwrap_or((&e, "0"));
                go_exp(m, x.parse().unwrap_or(0))
            }
            ('g', Val::Num(n)) => match precision {
                Some(p) => go_g(*n, p),
                None => go_float(*n),
            },
            ('q', v) => format!("{:?}", v.to_string()),
            (verb, v) => format!("%!{verb}({v})"),
        };
        let width = width.unwrap_or(0);
        let pad = width.saturating_sub(body.chars().count());
        if flags.contains('-') {
            out.push_str(&body);
            out.extend(std::iter::repeat_n(' ', pad));
        } else if flags.contains('0') && !matches!(verb, 's' | 'v' | 'q') {
            out.extend(std::iter::repeat_n('0', pad));
            out.push_str(&body);
        } else {
            out.extend(std::iter::repeat_n(' ', pad));
            out.push_str(&body);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(t: &str, value: f64) -> String {
        let mut labels = BTreeMap::new();
        labels.insert("service".to_string(), "order-service".to_string());
        Template::parse(t).unwrap().expand(Data {
            labels: &labels,
            value,
        })
    }

    #[test]
    fn labels_and_value() {
        assert_eq!(
            expand("{{ $labels.service }} fails {{ $value }}", 0.25),
            "order-service fails 0.25"
        );
        assert_eq!(
            expand("{{.Labels.service}}/{{.Value}}", 3.0),
            "order-service/3"
        );
        assert_eq!(expand("[{{ $labels.missing }}]", 1.0), "[]");
        assert_eq!(expand("a  {{- $value -}}  b", 1.5), "a1.5b");
    }

    #[test]
    fn go_float_matches_fmt_v() {
        assert_eq!(go_float(0.05263157894736842), "0.05263157894736842");
        assert_eq!(go_float(1234567.0), "1.234567e+06");
        assert_eq!(go_float(100000.0), "100000");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(0.0001), "0.0001");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(f64::INFINITY), "+Inf");
    }

    #[test]
    fn functions() {
        assert_eq!(
            expand("{{ $value | humanizePercentage }}", 0.0712345),
            "7.123%"
        );
        assert_eq!(expand("{{ $value | humanize }}", 1234567.0), "1.235M");
        assert_eq!(expand("{{ $value | humanize }}", 0.00123), "1.23m");
        assert_eq!(expand("{{ humanize $value }}", 0.0), "0");
        assert_eq!(expand("{{ $value | humanize1024 }}", 2048.0), "2ki");
        assert_eq!(
            expand("{{ $value | humanizeDuration }}", 3725.0),
            "1h 2m 5s"
        );
        assert_eq!(expand("{{ $value | humanizeDuration }}", 0.25), "250ms");
        assert_eq!(expand("{{ $value | humanizeDuration }}", 12.5), "12.5s");
        assert_eq!(expand(r#"{{ printf "%.2f" $value }}"#, 2.0 / 3.0), "0.67");
        assert_eq!(expand(r#"{{ $value | printf "%.1f%%" }}"#, 12.34), "12.3%");
        assert_eq!(
            expand("{{ $labels.service | toUpper }}", 0.0),
            "ORDER-SERVICE"
        );
    }

    #[test]
    fn reads_value_finds_every_use_of_the_value() {
        let reads = |t: &str| Template::parse(t).unwrap().reads_value();
        assert!(reads("{{ $value }}"));
        assert!(reads("x {{ .Value | humanize }}"));
        assert!(reads(r#"{{ printf "%.1f" $value }}"#));
        assert!(reads("{{ $labels.service }} {{ humanize .Value }}"));
        assert!(!reads("{{ $labels.service | toUpper }} fails"));
        assert!(!reads(r#"{{ printf "%s" $labels.value }} value"#));
        assert!(!reads("literal $value"));
    }

    #[test]
    fn errors_have_columns() {
        let e = Template::parse("x {{ $labels.service | nope }}").unwrap_err();
        assert_eq!(e.column, 24, "{e}");
        let e = Template::parse("x {{ $lables.service }}").unwrap_err();
        assert_eq!(e.column, 6, "{e}");
        assert!(Template::parse("x {{ $value").is_err());
        assert!(Template::parse("x }} y").is_err());
        assert!(Template::parse("{{ }}").is_err());
        assert!(Template::parse("{{ $value $value }}").is_err());
    }
}
