//! The short command syntax for actions, designed for typing: `firedrill play` reads it, and any front end for
//! people can.
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
//! comma-separated lists for lists, text otherwise; quote a value with spaces (`summary="a b"`).
//! [`translate`] turns a line into the wire JSON, which [`parse_action`](crate::parse_action) then validates
//! exactly as it validates an agent's action; only lines that cannot be translated at all (an unknown command, an
//! unclosed quote) are refused here. The syntax is written by hand: it is a few rules over the actions' own
//! schemas, and a shell-words or argument-parser crate would bring its own quoting and flag conventions instead.

use serde_json::{Map, Value};

use crate::ActionKind;

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

/// The short name of an action, if it has one.
fn alias(kind: ActionKind) -> Option<&'static str> {
    ALIASES.iter().find(|(_, k)| *k == kind).map(|(a, _)| *a)
}

/// The action a full or short name stands for.
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

/// One parameter of an action, as the help shows it.
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

/// How a parameter's value is written, from its schema node.
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
pub fn translate(line: &str) -> Result<Value, String> {
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

/// How a value of this type is written in a usage line.
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

/// An action's usage line: positional parameters in capitals, the others as `key=TYPE`, optional ones in brackets.
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

/// Every action with its usage, description, cost and alias, and examples.
pub fn help_overview() -> String {
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

/// One action's usage and parameters (an unknown name gets the overview).
pub fn help_action(name: &str) -> String {
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
                let _ = crate::parse_action(&json.to_string());
            }
        }
    }
}
