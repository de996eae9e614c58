//! What an agent reads, pinned: the text of every kind of observation (the page, each action's result, a
//! refused action, the graded end) and the page's JSON, for one seeded episode. A change to the wording, the
//! layout or the numbers of an observation shows up here as a snapshot diff to review (`cargo insta review`,
//! or `INSTA_UPDATE=always cargo test -p firedrill-env --test snapshots` and read the diff).

use std::sync::Arc;

use firedrill_env::Env;
use firedrill_scenario::Catalog;

/// The episode every snapshot reads: oom_crash, seed 3, difficulty 0.5, through one action of each kind.
fn episode_texts() -> (String, serde_json::Value) {
    let mut env = Env::new(Arc::new(Catalog::builtin().expect("library")));
    let page = env.reset("oom_crash", 3, 0.5).expect("reset");
    let mut page_json = serde_json::to_value(&page).expect("json");
    // The tool schemas are pinned by the action tests; here only what the page says of the incident.
    if let Some(content) = page_json
        .get_mut("content")
        .and_then(serde_json::Value::as_object_mut)
    {
        content.remove("actions");
    }
    let mut text = format!("=== page\n{}\n", page.to_text());
    let gateway = "api-gateway";
    let actions = [
        r#"{"action":"list_services"}"#.to_string(),
        format!(r#"{{"action":"describe_service","service":"{gateway}"}}"#),
        format!(r#"{{"action":"query_metrics","service":"{gateway}","window_minutes":15}}"#),
        format!(
            r#"{{"action":"query_logs","service":"{gateway}","level":"warn","limit":5,"window_minutes":15}}"#
        ),
        format!(r#"{{"action":"query_traces","service":"{gateway}","errors_only":true}}"#),
        r#"{"action":"query_deploys"}"#.to_string(),
        format!(r#"{{"action":"run_diagnostic","service":"{gateway}","check":"resources"}}"#),
        r#"{"action":"query_logs","service":"no-such-service"}"#.to_string(),
        r#"{"action":"wait","minutes":2}"#.to_string(),
        r#"{"action":"resolve_incident","root_causes":["api-gateway"],"fault_class":"no_fault","evidence":["ev-1","ev-999"],"remediation":"none","summary":"a guess"}"#.to_string(),
    ];
    for a in actions {
        let step = env.step_json(&a).expect("step");
        text.push_str(&format!(
            "=== {a}\nreward {:.4} terminated {}\n{}\n",
            step.reward,
            step.terminated,
            step.observation.to_text()
        ));
        if step.terminated || step.truncated {
            break;
        }
    }
    (text, page_json)
}

#[test]
fn observation_texts() {
    let (text, _) = episode_texts();
    insta::assert_snapshot!(text);
}

#[test]
fn page_json() {
    let (_, page) = episode_texts();
    insta::assert_json_snapshot!(page);
}
