//! `firedrill play`: a person plays an incident in the terminal.
//!
//! Actions are read line by line from stdin, either as the wire JSON (`{"action": "query_logs", "service":
//! "orders"}`) or in a short command form designed for typing:
//!
//! ```text
//! NAME [POSITIONAL...] [key=value...]
//! query_logs orders window_minutes=30 level=warn
//! logs orders level=warn                    (aliases: services, describe, metrics, logs, traces, diag,
//!                                            deploys, restart, scale, rollback, config, resolve)
//! wait 5
//! resolve orders-db disk_full evidence=ev-3,ev-7 summary="volume filled up"
//! ```
//!
//! Positional arguments fill each action's main parameters in a fixed order (`service` first, then e.g.
//! `check` for `run_diagnostic`, `replicas` for `scale_service`); `key=value` sets any parameter. Values are
//! typed from the action's JSON Schema: numbers for numeric parameters, `true`/`false` for booleans,
//! comma-separated lists for lists, text otherwise; quote a value with spaces (`summary="a b"`). The short form
//! is translated to the wire JSON and sent to the environment, which validates it exactly as it validates an
//! agent's action (a bad parameter is an error observation with its penalty). Only lines that cannot be
//! translated at all (an unknown command, an unclosed quote) are refused here, at no cost. `help` lists the
//! actions, `help NAME` details one, `quit` ends; blank lines and lines starting with `#` are skipped, so a
//! script can be piped in. At the end the grade is printed with its components and every lost point.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use comfy_table::{CellAlignment, ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use firedrill_env::{ActionKind, Env, Grade, RewardBreakdown, Step};
use firedrill_scenario::Catalog;
use serde_json::{Map, Value};

#[derive(Debug, Args)]
#[command(
    after_help = "Actions are read line by line from stdin, as JSON ({\"action\": \"query_logs\", \"service\": \"x\"}) \
or as short commands: NAME [POSITIONAL...] [key=value...], e.g. `query_logs order-service level=warn`, `wait 5`, \
`resolve postgres-db disk_full evidence=ev-3,ev-7 summary=\"...\"`. At the prompt, `help` lists every action \
and its parameters; `quit` stops. Piped scripts work: blank lines and # comments are skipped."
)]
pub struct PlayArgs {
    /// Scenario id (`firedrill scenarios list` shows them).
    scenario: String,
    /// Seed: the same seed is the same incident.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Difficulty in [0, 1].
    #[arg(long, default_value_t = 0.5)]
    difficulty: f64,
}

/// Short names accepted for the actions.
const ALIASES: [(&str, ActionKind); 12] = [
    ("services", ActionKind::ListServices),
    ("describe", ActionKind::DescribeService),
    ("metrics", ActionKind::QueryMetrics),
    ("logs", ActionKind::QueryLogs),
    ("traces", ActionKind::QueryTraces),
    ("diag", ActionKind::RunDiagnostic),
    ("deploys", ActionKind::QueryDeploys),
    ("restart", ActionKind::RestartService),
    ("scale", ActionKind::ScaleService),
    ("rollback", ActionKind::RollbackDeploy),
    ("config", ActionKind::UpdateConfig),
    ("resolve", ActionKind::ResolveIncident),
];

fn alias(kind: ActionKind) -> Option<&'static str> {
    ALIASES.iter().find(|(_, k)| *k == kind).map(|(a, _)| *a)
}

fn kind_named(name: &str) -> Option<ActionKind> {
    ActionKind::ALL
        .into_iter()
        .find(|k| k.name() == name)
        .or_else(|| ALIASES.iter().find(|(a, _)| *a == name).map(|(_, k)| *k))
}

/// The parameters positional arguments fill, in order.
fn positional(kind: ActionKind) -> &'static [&'static str] {
    match kind {
        ActionKind::ListServices => &[],
        ActionKind::DescribeService
        | ActionKind::QueryMetrics
        | ActionKind::QueryLogs
        | ActionKind::QueryTraces
        | ActionKind::QueryDeploys
        | ActionKind::RestartService => &["service"],
        ActionKind::RunDiagnostic => &["service", "check"],
        ActionKind::ScaleService => &["service", "replicas"],
        ActionKind::RollbackDeploy => &["service", "version"],
        ActionKind::UpdateConfig => &["service", "key", "value"],
        ActionKind::Wait => &["minutes"],
        ActionKind::ResolveIncident => &["root_causes", "fault_class"],
    }
}

/// How a parameter's value is written, from its JSON Schema.
#[derive(Debug, Clone, PartialEq)]
enum ParamType {
    Integer,
    Number,
    Boolean,
    List,
    Text,
    Choice(Vec<String>),
}

#[derive(Debug, Clone)]
struct Param {
    name: String,
    required: bool,
    ty: ParamType,
    description: String,
}

/// Follows a local `$ref` (`#/$defs/Name`) in an action schema.
fn resolve_ref<'a>(schema: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix("#/$defs/")
            .and_then(|name| schema.get("$defs").and_then(|d| d.get(name)))
            .unwrap_or(node),
        None => node,
    }
}

fn param_type(schema: &Value, node: &Value) -> ParamType {
    let node = resolve_ref(schema, node);
    // An optional parameter is `anyOf: [<the type>, null]`; a closed set of names is `oneOf` of `const`s.
    if let Some(alts) = node.get("anyOf").and_then(Value::as_array) {
        for alt in alts {
            if alt.get("type").and_then(Value::as_str) != Some("null") {
                return param_type(schema, alt);
            }
        }
    }
    if let Some(alts) = node.get("oneOf").and_then(Value::as_array) {
        let names: Vec<String> = alts
            .iter()
            .filter_map(|a| a.get("const").and_then(Value::as_str).map(String::from))
            .collect();
        if !names.is_empty() {
            return ParamType::Choice(names);
        }
    }
    if let Some(names) = node.get("enum").and_then(Value::as_array) {
        return ParamType::Choice(
            names
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
        );
    }
    let types: Vec<&str> = match node.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    match types.into_iter().find(|t| *t != "null") {
        Some("integer") => ParamType::Integer,
        Some("number") => ParamType::Number,
        Some("boolean") => ParamType::Boolean,
        Some("array") => ParamType::List,
        _ => ParamType::Text,
    }
}

/// An action's parameters, positional ones first (in their order), then the others by name.
fn params(kind: ActionKind) -> Vec<Param> {
    let schema = kind.parameters_schema();
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out: Vec<Param> = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|props| {
            props
                .iter()
                .map(|(name, node)| Param {
                    name: name.clone(),
                    required: required.contains(&name.as_str()),
                    ty: param_type(&schema, node),
                    description: node
                        .get("description")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    let pos = positional(kind);
    out.sort_by_key(|p| {
        (
            pos.iter().position(|n| *n == p.name).unwrap_or(pos.len()),
            p.name.clone(),
        )
    });
    out
}

/// Splits a command line into words: whitespace separates, single or double quotes group (also inside a word,
/// as in `summary="two words"`), and a backslash escapes the next character inside double quotes.
fn words(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' => {
                in_word = true;
                let quote = c;
                loop {
                    match chars.next() {
                        Some(q) if q == quote => break,
                        Some('\\') if quote == '"' => match chars.next() {
                            Some(e) => cur.push(e),
                            None => return Err("unclosed quote".into()),
                        },
                        Some(x) => cur.push(x),
                        None => return Err("unclosed quote".into()),
                    }
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// A value typed as its parameter expects. A value that does not read as the type is passed on as text, so the
/// environment names the problem as it would for an agent.
fn typed(ty: &ParamType, raw: &str) -> Value {
    match ty {
        ParamType::Integer => raw
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| raw.into()),
        ParamType::Number => match raw.parse::<f64>() {
            Ok(x) if x.is_finite() => Value::from(x),
            _ => raw.into(),
        },
        ParamType::Boolean => match raw {
            "true" | "yes" | "on" => Value::Bool(true),
            "false" | "no" | "off" => Value::Bool(false),
            _ => raw.into(),
        },
        ParamType::List => Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_string()))
                .collect(),
        ),
        ParamType::Text | ParamType::Choice(_) => raw.into(),
    }
}

/// Translates a short command into the wire JSON.
fn translate(line: &str) -> Result<Value, String> {
    let words = words(line)?;
    let Some((name, args)) = words.split_first() else {
        return Err("empty command".into());
    };
    let kind = kind_named(name).ok_or_else(|| format!("unknown command {name:?}"))?;
    let params = params(kind);
    let ty = |key: &str| {
        params
            .iter()
            .find(|p| p.name == key)
            .map(|p| p.ty.clone())
            .unwrap_or(ParamType::Text)
    };
    let mut obj = Map::new();
    obj.insert("action".into(), kind.name().into());
    let mut slots = positional(kind).iter();
    for arg in args {
        let (key, raw) = match arg.split_once('=') {
            Some((k, v)) if !k.is_empty() => (k.to_string(), v),
            _ => {
                if let Some(p) = params
                    .iter()
                    .find(|p| p.name == *arg && p.ty == ParamType::Boolean)
                {
                    // A boolean named alone is switched on: `traces orders errors_only`.
                    (p.name.clone(), "true")
                } else {
                    let Some(slot) = slots.next() else {
                        return Err(format!(
                            "unexpected {arg:?}: {} takes {} positional argument(s); give other parameters as key=value",
                            kind.name(),
                            positional(kind).len()
                        ));
                    };
                    (slot.to_string(), arg.as_str())
                }
            }
        };
        if obj.contains_key(&key) {
            return Err(format!("{key} given twice"));
        }
        let value = typed(&ty(&key), raw);
        obj.insert(key, value);
    }
    Ok(Value::Object(obj))
}

fn type_hint(ty: &ParamType) -> String {
    match ty {
        ParamType::Integer => "N".into(),
        ParamType::Number => "X".into(),
        ParamType::Boolean => "true|false".into(),
        ParamType::List => "a,b".into(),
        ParamType::Text => "TEXT".into(),
        ParamType::Choice(c) if c.len() <= 5 => c.join("|"),
        ParamType::Choice(_) => "NAME".into(),
    }
}

fn usage(kind: ActionKind) -> String {
    let pos = positional(kind);
    let mut s = kind.name().to_string();
    for p in params(kind) {
        let item = if pos.contains(&p.name.as_str()) {
            p.name.to_uppercase()
        } else {
            format!("{}={}", p.name, type_hint(&p.ty))
        };
        if p.required {
            s.push_str(&format!(" {item}"));
        } else {
            s.push_str(&format!(" [{item}]"));
        }
    }
    s
}

fn help_overview() -> String {
    let mut s = String::from(
        "Actions: NAME [POSITIONAL...] [key=value...], or the JSON form {\"action\": NAME, ...}.\n\
         Upper-case words are positional; quote values with spaces (summary=\"two words\").\n\n",
    );
    for k in ActionKind::ALL {
        let cost = if k == ActionKind::Wait {
            "its minutes".to_string()
        } else {
            format!("{:.0}s", k.cost_s())
        };
        s.push_str(&format!(
            "  {}\n      {} ({}{})\n",
            usage(k),
            k.description(),
            cost,
            alias(k).map(|a| format!("; alias {a}")).unwrap_or_default()
        ));
    }
    s.push_str(
        "\nExamples:\n  logs checkout level=warn limit=20\n  diag orders-db resources\n  wait 5\n  \
         resolve orders-db disk_full evidence=ev-3,ev-7 remediation=\"cleaned the volume\" summary=\"...\"\n\n\
         help NAME details an action; quit ends without a grade. Every action costs simulated time.",
    );
    s
}

fn help_action(name: &str) -> String {
    let Some(kind) = kind_named(name) else {
        return format!("unknown action {name:?}\n\n{}", help_overview());
    };
    let mut s = format!("{}\n  {}\n", usage(kind), kind.description());
    for p in params(kind) {
        let values = match &p.ty {
            ParamType::Choice(c) => format!(" One of: {}.", c.join(", ")),
            ParamType::List => " Comma-separated.".into(),
            _ => String::new(),
        };
        s.push_str(&format!(
            "  {}{}: {}{}\n",
            p.name,
            if p.required { "" } else { " (optional)" },
            p.description,
            values
        ));
    }
    s
}

fn reward_line(reward: f64, b: &RewardBreakdown) -> String {
    let terms: Vec<String> = [
        ("information", b.information),
        ("shaping", b.shaping),
        ("safety", b.safety),
        ("invalid", b.invalid),
        ("time", b.time),
        ("outcome", b.outcome),
    ]
    .iter()
    // Terms that round to zero at four decimals are noise in a line meant for reading.
    .filter(|(_, v)| v.abs() >= 0.00005)
    .map(|(k, v)| format!("{k} {v:+.4}"))
    .collect();
    format!("reward {reward:+.4} ({})", terms.join(", "))
}

fn print_grade(grade: &Grade, episode_return: f64) {
    say!(
        "\nGRADE: score {:.3} — {}",
        grade.score,
        if grade.success {
            "success"
        } else {
            "not a success"
        }
    );
    say!(
        "resolved {}, mitigated {}, diagnosis correct {}, minutes to mitigate {}, user impact {:.2}%, \
         hallucinated citations {}, harmful actions {}, invalid actions {}, return {:+.4}",
        grade.resolved,
        grade.mitigated,
        grade.diagnosis_correct,
        grade
            .minutes_to_mitigate
            .map(|m| format!("{m:.1}"))
            .unwrap_or_else(|| "–".into()),
        grade.impact * 100.0,
        grade.hallucinated_citations,
        grade.harmful_actions,
        grade.invalid_actions,
        episode_return
    );
    let c = &grade.components;
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(["component", "earned", "weight", "points"]);
    for (name, comp) in [
        ("mitigation", c.mitigation),
        ("diagnosis", c.diagnosis),
        ("evidence", c.evidence),
        ("time", c.time),
        ("impact", c.impact),
        ("safety", c.safety),
    ] {
        t.add_row([
            name.to_string(),
            format!("{:.1}%", comp.fraction * 100.0),
            format!("{:.2}", comp.weight),
            format!("{:.3}", comp.points()),
        ]);
    }
    for i in 1..4 {
        if let Some(col) = t.column_mut(i) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    say!("{t}");
    if grade.lost.is_empty() {
        say!("no points lost");
    } else {
        say!("points lost:");
        for l in &grade.lost {
            say!(
                "  -{:.3} {} [{}]: {}",
                l.points,
                l.component,
                l.reason,
                l.detail
            );
        }
    }
}

/// Writes the prompt without a newline (interactive use only).
fn prompt() {
    let mut out = std::io::stdout().lock();
    if write!(out, "> ").and_then(|_| out.flush()).is_err() {
        std::process::exit(0);
    }
}

fn show(step: &Step) {
    say!("{}", step.observation.to_text().trim_end());
    say!("{}", reward_line(step.reward, &step.breakdown));
}

pub fn run(args: PlayArgs, catalog: Catalog) -> Result<ExitCode, String> {
    if !(args.difficulty.is_finite() && (0.0..=1.0).contains(&args.difficulty)) {
        return Err(format!(
            "--difficulty must be in [0, 1], got {}",
            args.difficulty
        ));
    }
    let mut env = Env::new(Arc::new(catalog));
    let page = env
        .reset(&args.scenario, args.seed, args.difficulty)
        .map_err(|e| e.to_string())?;
    say!("{}", page.to_text().trim_end());
    say!("\nYou are on call. Type `help` for the actions, `quit` to stop.");
    let interactive = std::io::stdin().is_terminal();
    let mut total = 0.0;
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        if interactive {
            prompt();
        }
        let line = match lines.next() {
            None => break,
            Some(Ok(l)) => l,
            Some(Err(e)) => return Err(format!("cannot read stdin: {e}")),
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !interactive {
            // Piped input is not echoed by a terminal: show it so the transcript reads in order.
            say!("\n> {line}");
        }
        let (first, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let step = match first {
            "quit" | "exit" => {
                say!("quit: the episode was not resolved, so it is not graded");
                return Ok(ExitCode::SUCCESS);
            }
            "help" | "?" => {
                let rest = rest.trim();
                say!(
                    "{}",
                    if rest.is_empty() {
                        help_overview()
                    } else {
                        help_action(rest)
                    }
                );
                continue;
            }
            _ if line.starts_with('{') => env.step_json(line),
            _ => match translate(line) {
                Ok(json) => env.step_json(&json.to_string()),
                Err(e) => {
                    say!("not sent: {e} (type help for the actions; nothing happened)");
                    continue;
                }
            },
        }
        .map_err(|e| e.to_string())?;
        total += step.reward;
        show(&step);
        if interactive {
            // A blank line before the next prompt separates one exchange from the next.
            say!("");
        }
        if let Some(grade) = &step.info.grade {
            print_grade(grade, total);
            return Ok(ExitCode::SUCCESS);
        }
    }
    say!("\ninput ended before the episode did: not graded (resolve_incident ends an episode)");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_on_spaces_and_respect_quotes() {
        assert_eq!(
            words(r#"resolve a summary="two words" x='it''s' q="say \"hi\"""#).ok(),
            Some(vec![
                "resolve".to_string(),
                "a".into(),
                "summary=two words".into(),
                "x=its".into(),
                "q=say \"hi\"".into()
            ])
        );
        assert_eq!(words(r#"x="open"#).err().as_deref(), Some("unclosed quote"));
        assert_eq!(words("  ").ok(), Some(Vec::new()));
    }

    #[test]
    fn short_commands_translate_to_typed_wire_json() {
        let t = |s: &str| translate(s).map(|v| v.to_string());
        assert_eq!(
            t("query_logs orders window_minutes=30 level=warn")
                .ok()
                .as_deref(),
            Some(
                r#"{"action":"query_logs","level":"warn","service":"orders","window_minutes":30}"#
            )
        );
        assert_eq!(
            t("wait 5").ok().as_deref(),
            Some(r#"{"action":"wait","minutes":5.0}"#)
        );
        assert_eq!(
            t("traces orders errors_only").ok().as_deref(),
            Some(r#"{"action":"query_traces","errors_only":true,"service":"orders"}"#)
        );
        assert_eq!(
            t("diag db resources").ok().as_deref(),
            Some(r#"{"action":"run_diagnostic","check":"resources","service":"db"}"#)
        );
        assert_eq!(
            t(r#"resolve a,b disk_full evidence=ev-3,ev-7 summary="full disk""#)
                .ok()
                .as_deref(),
            Some(
                r#"{"action":"resolve_incident","evidence":["ev-3","ev-7"],"fault_class":"disk_full","root_causes":["a","b"],"summary":"full disk"}"#
            )
        );
        // A value that does not read as its type goes through as text, for the environment to refuse.
        assert_eq!(
            t("scale orders many").ok().as_deref(),
            Some(r#"{"action":"scale_service","replicas":"many","service":"orders"}"#)
        );
        assert!(t("frobnicate x").is_err());
        assert!(t("wait 5 6").is_err());
        assert!(t("wait 5 minutes=6").is_err());
    }

    #[test]
    fn every_action_has_usage_and_help() {
        for k in ActionKind::ALL {
            assert!(usage(k).starts_with(k.name()));
            assert!(help_action(k.name()).contains(k.description()));
        }
        assert!(usage(ActionKind::QueryLogs).contains("[level=debug|info|warn|error]"));
        assert!(help_action("resolve").contains("disk_full"));
        assert!(help_overview().contains("alias logs"));
    }

    proptest::proptest! {
        /// Whatever a person types, the translation is an error message or wire JSON naming a known action, which
        /// the environment's parser then accepts or refuses with a typed error: nothing panics on the way.
        #[test]
        fn any_typed_line_translates_or_is_refused(
            line in r#"(services|describe|metrics|logs|traces|diag|deploys|restart|scale|rollback|config|resolve|wait|query_logs|help)?[ a-z0-9=,._"'\\-]{0,40}"#
        ) {
            if let Ok(json) = translate(&line) {
                let name = json["action"].as_str().unwrap_or_default().to_string();
                proptest::prop_assert!(ActionKind::ALL.iter().any(|k| k.name() == name), "{json}");
                let _ = firedrill_env::parse_action(&json.to_string());
            }
        }
    }
}
