//! The action wire format: every action round-trips, bad input gets a precise typed error, and nothing panics.

use std::sync::Arc;

use firedrill_env::action::{ActionKind, openai_tools, parse_action_value};
use firedrill_env::{Action, ActionError, parse_action};
use firedrill_world::Topology;
use firedrill_world::spec::TopologySpec;
use firedrill_world::topology::SpecPath;
use serde_json::json;

fn topology() -> Arc<Topology> {
    let spec: TopologySpec = serde_json::from_str(include_str!(
        "../../firedrill-world/tests/fixtures/small.json"
    ))
    .expect("spec");
    Arc::new(Topology::compile(&spec, &SpecPath::root()).expect("topology"))
}

fn examples() -> Vec<serde_json::Value> {
    vec![
        json!({"action": "list_services"}),
        json!({"action": "describe_service", "service": "api"}),
        json!({"action": "query_metrics", "service": "api", "window_minutes": 60}),
        json!({"action": "query_logs", "service": "api", "level": "warn", "limit": 20}),
        json!({"action": "query_traces", "service": "edge", "errors_only": true}),
        json!({"action": "run_diagnostic", "service": "db", "check": "connectivity"}),
        json!({"action": "query_deploys"}),
        json!({"action": "restart_service", "service": "api", "memory_mb": 1024}),
        json!({"action": "scale_service", "service": "edge", "replicas": 4}),
        json!({"action": "rollback_deploy", "service": "api", "version": "v1"}),
        json!({"action": "update_config", "service": "api", "key": "log.level", "value": "info"}),
        json!({"action": "wait", "minutes": 2.0}),
        json!({"action": "resolve_incident", "root_causes": ["api"], "fault_class": "connection_pool_exhaustion",
               "evidence": ["ev-3"], "remediation": "rolled back", "summary": "pool leak"}),
    ]
}

#[test]
fn every_action_parses_validates_and_round_trips() {
    let topo = topology();
    let parsed: Vec<Action> = examples()
        .into_iter()
        .map(|v| parse_action_value(v).expect("parse"))
        .collect();
    let kinds: Vec<ActionKind> = parsed.iter().map(Action::kind).collect();
    assert_eq!(
        kinds,
        ActionKind::ALL.to_vec(),
        "the examples cover every action once"
    );
    for a in &parsed {
        a.validate(&topo).expect("valid");
        assert_eq!(&parse_action_value(a.to_json()).expect("round trip"), a);
    }
}

#[test]
fn bad_input_gets_precise_typed_errors() {
    let topo = topology();
    let cases: Vec<(&str, &str)> = vec![
        ("not json", "malformed action"),
        ("[1, 2]", "JSON object"),
        (r#"{"service": "api"}"#, "missing \"action\""),
        (
            r#"{"action": "reboot_everything"}"#,
            "unknown action \"reboot_everything\"",
        ),
        (
            r#"{"action": "describe_service"}"#,
            "missing field `service`",
        ),
        (
            r#"{"action": "describe_service", "service": "api", "force": true}"#,
            "unknown field `force`",
        ),
        (
            r#"{"action": "scale_service", "service": "api", "replicas": "three"}"#,
            "invalid type",
        ),
        (
            r#"{"action": "scale_service", "service": "api", "replicas": -1}"#,
            "invalid value",
        ),
        (
            r#"{"action": "list_services", "service": "api"}"#,
            "takes no parameters",
        ),
        (
            r#"{"action": "resolve_incident", "root_causes": [], "fault_class": "gremlins"}"#,
            "unknown variant `gremlins`",
        ),
    ];
    for (text, expected) in cases {
        let err = parse_action(text).expect_err(text).to_string();
        assert!(err.contains(expected), "{text}: {err}");
    }
    let checks: Vec<(serde_json::Value, &str)> = vec![
        (
            json!({"action": "describe_service", "service": "billing"}),
            "unknown service \"billing\"",
        ),
        (
            json!({"action": "scale_service", "service": "api", "replicas": 99}),
            "replicas must be 0..=16",
        ),
        (
            json!({"action": "wait", "minutes": 0}),
            "minutes must be 0.25..=30",
        ),
        (
            json!({"action": "query_logs", "service": "api", "limit": 100000}),
            "limit must be 1..=500",
        ),
        (
            json!({"action": "restart_service", "service": "api", "memory_mb": 1}),
            "memory_mb must be 16..=65536",
        ),
        (
            json!({"action": "update_config", "service": "api", "key": "log.level", "value": "loud"}),
            "invalid value",
        ),
        (
            json!({"action": "resolve_incident", "root_causes": ["ghost"], "fault_class": "no_fault"}),
            "unknown service",
        ),
    ];
    for (value, expected) in checks {
        let action = parse_action_value(value.clone()).expect("parses");
        let err = action.validate(&topo).expect_err("invalid");
        assert!(err.to_string().contains(expected), "{value}: {err}");
        assert!(matches!(
            err,
            ActionError::UnknownService { .. }
                | ActionError::OutOfRange { .. }
                | ActionError::BadParameter { .. }
        ));
    }
}

#[test]
fn tools_are_openai_function_definitions_with_object_schemas() {
    let tools = openai_tools();
    let tools = tools.as_array().expect("array");
    assert_eq!(tools.len(), ActionKind::ALL.len());
    for t in tools {
        assert_eq!(t["type"], "function");
        let f = &t["function"];
        assert!(f["name"].as_str().is_some_and(|n| !n.is_empty()));
        assert!(f["description"].as_str().is_some_and(|d| d.len() > 10));
        assert_eq!(f["parameters"]["type"], "object", "{}", f["name"]);
    }
    let scale = tools
        .iter()
        .find(|t| t["function"]["name"] == "scale_service")
        .expect("scale");
    let required = scale["function"]["parameters"]["required"]
        .as_array()
        .expect("required");
    assert!(required.contains(&json!("service")) && required.contains(&json!("replicas")));
}

#[test]
fn every_action_costs_simulated_time_except_wait_itself() {
    for k in ActionKind::ALL {
        if k != ActionKind::Wait {
            assert!(k.cost_s() > 0.0, "{} is free", k.name());
        }
    }
}

proptest::proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,80}") {
        let _ = parse_action(&text);
    }

    #[test]
    fn arbitrary_objects_never_panic(name in "[a-z_]{0,20}", key in "[a-z_]{0,12}", n in proptest::num::f64::ANY) {
        let topo = topology();
        let v = json!({"action": name, key: n, "service": "api"});
        if let Ok(a) = parse_action_value(v) {
            let _ = a.validate(&topo);
        }
    }
}
