//! The environment loop: errors for misuse, typed error observations for bad actions, no answer leaks,
//! snapshot and fork, and the vector environment's auto-reset.

use std::sync::Arc;

use firedrill_env::action::{Action, WaitParams};
use firedrill_env::vec_env::{AutoReset, EpisodeSpec, VecEnv};
use firedrill_env::{Content, Env, EnvError, Observation};
use firedrill_scenario::Catalog;
use firedrill_scenario::library::BASIC_FAMILIES;
use firedrill_world::FaultClass;
use proptest::prelude::*;

fn catalog() -> Arc<Catalog> {
    Arc::new(Catalog::builtin().expect("library"))
}

fn wait(minutes: f64) -> Action {
    Action::Wait(WaitParams { minutes })
}

#[test]
fn stepping_before_reset_is_an_error() {
    let mut env = Env::new(catalog());
    assert!(matches!(env.step(&wait(1.0)), Err(EnvError::NotReset)));
    assert!(matches!(env.step_json("{}"), Err(EnvError::NotReset)));
    assert!(matches!(
        env.reset("no_such_scenario", 0, 0.5),
        Err(EnvError::Scenario(_))
    ));
}

#[test]
fn bad_actions_are_typed_error_observations_with_a_penalty() {
    let mut env = Env::new(catalog());
    env.reset("oom_crash", 1, 0.5).expect("reset");
    let cases = [
        ("not json", "malformed"),
        ("[1,2]", "malformed"),
        (r#"{"action":"fly"}"#, "unknown_action"),
        (r#"{"action":"query_logs"}"#, "bad_parameter"),
        (
            r#"{"action":"query_logs","service":"nope"}"#,
            "unknown_service",
        ),
        (
            r#"{"action":"query_logs","service":"api-gateway","limit":100000}"#,
            "out_of_range",
        ),
        (r#"{"action":"wait","minutes":-3}"#, "out_of_range"),
    ];
    for (text, code) in cases {
        let s = env.step_json(text).expect("step");
        match &s.observation.content {
            Content::Error { code: c, message } => {
                assert_eq!(c, code, "{text}: {message}");
                assert!(!message.is_empty());
            }
            other => panic!("{text}: expected an error observation, got {other:?}"),
        }
        assert!(!s.info.valid);
        assert!(s.breakdown.invalid < 0.0);
        assert!(!s.terminated);
    }
    let g = env.episode().expect("episode").grade();
    assert_eq!(g.invalid_actions as usize, cases.len());
}

/// No observation an agent can read names the fault class, the description or the hidden state.
#[test]
fn observations_do_not_leak_the_answer() {
    let cat = catalog();
    let forbidden_classes: Vec<&str> = FaultClass::ALL
        .iter()
        .filter(|c| **c != FaultClass::NoFault)
        .map(|c| c.as_str())
        .collect();
    for fam in BASIC_FAMILIES {
        let scenario = cat.get(fam).expect("scenario").clone();
        {
            for text in scripted_investigation(&cat, fam) {
                for class in &forbidden_classes {
                    assert!(!text.contains(class), "{fam}: {class} in {text}");
                }
                for needle in ["root cause", "root_cause", "ground truth", "mitigated"] {
                    assert!(
                        !text.to_lowercase().contains(needle),
                        "{fam}: {needle} in {text}"
                    );
                }
                let first_line = scenario.description.lines().next().unwrap_or("");
                assert!(first_line.is_empty() || !text.contains(first_line));
            }
        }
    }
}

/// Plays a scripted investigation (every read action over every service, then waits) and returns every
/// observation's text and JSON (the page's JSON without its action schemas, which list the taxonomy by design).
fn scripted_investigation(cat: &Arc<Catalog>, fam: &str) -> Vec<String> {
    let mut env = Env::new(cat.clone());
    let page = env.reset(fam, 1, 0.5).expect("reset");
    let mut out = vec![page.to_text()];
    let services: Vec<String> = match &page.content {
        Content::Page(p) => p.services.iter().map(|s| s.name.clone()).collect(),
        _ => Vec::new(),
    };
    let mut actions = vec![r#"{"action":"query_deploys"}"#.to_string()];
    for s in &services {
        actions.push(format!(
            r#"{{"action":"describe_service","service":"{s}"}}"#
        ));
        actions.push(format!(r#"{{"action":"query_logs","service":"{s}","level":"debug","limit":500,"window_minutes":60}}"#));
        actions.push(format!(r#"{{"action":"query_metrics","service":"{s}"}}"#));
        actions.push(format!(
            r#"{{"action":"query_traces","service":"{s}","errors_only":true}}"#
        ));
        for check in ["connectivity", "health", "resources", "dns", "tls"] {
            actions.push(format!(
                r#"{{"action":"run_diagnostic","service":"{s}","check":"{check}"}}"#
            ));
        }
    }
    for a in actions {
        let Ok(s) = env.step_json(&a) else { break };
        out.push(s.observation.to_text());
        out.push(serde_json::to_string(&s.observation).unwrap_or_default());
        if s.terminated || s.truncated {
            break;
        }
    }
    out
}

#[test]
fn snapshot_and_fork_continue_identically() {
    let mut env = Env::new(catalog());
    env.reset("db_pool_exhaustion", 4, 0.5).expect("reset");
    env.step_json(r#"{"action":"query_deploys"}"#)
        .expect("step");
    let snap = env.snapshot().expect("snapshot");
    let mut fork = env.clone();
    let script = [
        r#"{"action":"query_logs","service":"api-gateway"}"#,
        r#"{"action":"wait","minutes":3}"#,
        r#"{"action":"query_metrics","service":"api-gateway"}"#,
    ];
    let run = |e: &mut Env| -> Vec<String> {
        script
            .iter()
            .map(|a| serde_json::to_string(&e.step_json(a).expect("step")).expect("json"))
            .collect()
    };
    let a = run(&mut env);
    let b = run(&mut fork);
    assert_eq!(a, b, "a fork diverged");
    env.restore(snap);
    let c = run(&mut env);
    assert_eq!(a, c, "a restored snapshot diverged");
}

#[test]
fn the_budget_truncates_and_grades() {
    let mut env = Env::new(catalog());
    env.reset("dns_failure", 0, 0.5).expect("reset");
    let mut steps = 0;
    loop {
        let s = env.step(&wait(30.0)).expect("step");
        steps += 1;
        if s.truncated {
            assert!(!s.terminated);
            let g = s.info.grade.expect("grade");
            assert!(!g.resolved);
            assert!(g.lost.iter().any(|l| l.reason == "not_resolved"));
            assert!(matches!(s.observation.content, Content::Ended { .. }));
            break;
        }
        assert!(steps < 10, "the budget never ran out");
    }
    assert!(matches!(env.step(&wait(1.0)), Err(EnvError::EpisodeEnded)));
}

#[test]
fn vec_env_auto_reset_keeps_the_final_observation_and_is_thread_independent() {
    let schedule: Vec<EpisodeSpec> = ["oom_crash", "disk_full", "cert_expiry"]
        .iter()
        .enumerate()
        .map(|(i, s)| EpisodeSpec {
            scenario: s.to_string(),
            seed: i as u64,
            difficulty: 0.5,
        })
        .collect();
    let run = |threads: usize| {
        let mut v = VecEnv::new(catalog(), 3, schedule.clone(), AutoReset::SameStep, threads);
        for r in v.reset() {
            r.expect("reset");
        }
        let mut log = Vec::new();
        let mut ended = 0;
        for _ in 0..8 {
            let actions = vec![wait(10.0); 3];
            for r in v.step(&actions) {
                let r = r.expect("step");
                if r.step.truncated || r.step.terminated {
                    ended += 1;
                    assert!(r.step.info.grade.is_some());
                    assert!(matches!(r.step.observation.content, Content::Ended { .. }));
                    let next = r.reset_observation.as_ref().expect("auto-reset page");
                    assert!(matches!(next.content, Content::Page(_)));
                } else {
                    assert!(r.reset_observation.is_none());
                }
                log.push(serde_json::to_string(&r).expect("json"));
            }
        }
        assert!(ended >= 3, "no episode ended");
        log
    };
    assert_eq!(run(1), run(2), "results depend on the thread count");

    let mut manual = VecEnv::new(catalog(), 1, schedule, AutoReset::Disabled, 1);
    manual.reset_slot(0).expect("reset");
    let mut saw_end = false;
    for _ in 0..8 {
        match manual.step(&[wait(10.0)]).remove(0) {
            Ok(r) => {
                assert!(r.reset_observation.is_none());
                saw_end |= r.step.truncated;
            }
            Err(e) => {
                assert!(saw_end && matches!(e, EnvError::EpisodeEnded));
                return;
            }
        }
    }
    panic!("stepping an ended slot without auto-reset did not fail");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// Any text as an action yields a step (an error observation at worst), never a panic.
    #[test]
    fn arbitrary_action_text_never_panics(text in ".{0,200}", name in prop::sample::select(vec![
        "list_services", "describe_service", "query_metrics", "query_logs", "query_traces", "run_diagnostic",
        "query_deploys", "restart_service", "scale_service", "rollback_deploy", "update_config", "wait",
        "resolve_incident",
    ]), n in any::<i64>()) {
        let mut env = Env::new(catalog());
        env.reset("rate_limit_exhaustion", 0, 0.5).expect("reset");
        let _ = env.step_json(&text).expect("step");
        let json = format!(r#"{{"action":"{name}","service":"api-gateway","minutes":{n},"replicas":{n},"window_minutes":{n},"limit":{n},"key":"log.level","value":"x","check":"dns","root_causes":[],"fault_class":"no_fault"}}"#);
        if let Ok(s) = env.step_json(&json) {
            prop_assert!(s.reward.is_finite());
        }
    }
}

/// `query_metrics`, `query_logs` and `query_traces` take PromQL, LogQL and TraceQL; results are paged, carry
/// evidence ids, and pay information reward for proofs; a bad query is a typed error with its position.
#[test]
fn query_language_parameters() {
    let mut env = Env::new(catalog());
    env.reset("db_pool_exhaustion", 4, 0.5).expect("reset");
    let target = root_cause_service(&env);
    let promql = format!(
        r#"{{"action":"query_metrics","promql":"max by (service) (db_client_connections_in_use{{service=\"{target}\"}})","window_minutes":30}}"#
    );
    let s = env.step_json(&promql).expect("step");
    match &s.observation.content {
        Content::QueryResult {
            language,
            series,
            total,
            ..
        } => {
            assert_eq!(language, "promql");
            assert_eq!(*total, 1, "{series:?}");
            assert!(series[0].id.starts_with("ev-"));
            assert!(
                series[0].max > series[0].first,
                "the leak shows: {:?}",
                series[0]
            );
        }
        other => panic!("expected a query result, got {other:?}"),
    }
    assert!(s.breakdown.information > 0.0, "the pool metric is a proof");

    let logql = format!(
        r#"{{"action":"query_logs","logql":"{{service=\"{target}\"}} |= \"pool\"","window_minutes":30}}"#
    );
    let s = env.step_json(&logql).expect("step");
    match &s.observation.content {
        Content::QueryResult {
            lines,
            total,
            pages,
            ..
        } => {
            assert!(!lines.is_empty() && *total >= lines.len());
            assert!(*pages >= 1);
            assert!(
                lines.iter().all(|l| l.message.contains("pool")),
                "{lines:?}"
            );
            assert!(lines.iter().any(|l| l.event == "pool_timeout"));
        }
        other => panic!("expected a query result, got {other:?}"),
    }
    let metric_logql = format!(
        r#"{{"action":"query_logs","logql":"sum by (level) (count_over_time({{service=\"{target}\"}}[5m]))"}}"#
    );
    let s = env.step_json(&metric_logql).expect("step");
    assert!(
        matches!(&s.observation.content, Content::QueryResult { series, .. } if !series.is_empty()),
        "{:?}",
        s.observation.content
    );

    let traceql = r#"{"action":"query_traces","traceql":"{ status = error }","window_minutes":10}"#;
    let s = env.step_json(traceql).expect("step");
    match &s.observation.content {
        Content::QueryResult { traces, .. } => {
            assert!(!traces.is_empty());
            assert!(traces.iter().all(|t| t.error));
        }
        other => panic!("expected a query result, got {other:?}"),
    }

    for (bad, lang) in [
        (
            r#"{"action":"query_metrics","promql":"sum(rate(x[5m])"}"#,
            "promql",
        ),
        (r#"{"action":"query_logs","logql":"{service=}"}"#, "logql"),
        (
            r#"{"action":"query_traces","traceql":"{ .a = }"}"#,
            "traceql",
        ),
    ] {
        let s = env.step_json(bad).expect("step");
        match &s.observation.content {
            Content::Error { code, message } => {
                assert_eq!(code, "bad_query");
                assert!(message.starts_with(lang), "{message}");
                assert!(message.contains("position"), "{message}");
            }
            other => panic!("{bad}: expected an error, got {other:?}"),
        }
        assert!(s.breakdown.invalid < 0.0);
    }
}

/// The page and a few steps of an episode, as JSON.
fn short_episode(env: &mut Env, family: &str, seed: u64) -> Vec<String> {
    let page = env.reset(family, seed, 0.5).expect("reset");
    let service = match &page.content {
        Content::Page(p) => p
            .services
            .first()
            .map(|s| s.name.clone())
            .unwrap_or_default(),
        _ => String::new(),
    };
    let mut out = vec![serde_json::to_string(&page).expect("json")];
    for action in [
        r#"{"action":"wait","minutes":3}"#.to_string(),
        format!(r#"{{"action":"query_metrics","service":"{service}"}}"#),
        format!(r#"{{"action":"restart_service","service":"{service}"}}"#),
        r#"{"action":"wait","minutes":6}"#.to_string(),
    ] {
        let step = env.step_json(&action).expect("step");
        out.push(serde_json::to_string(&step).expect("json"));
        if step.terminated || step.truncated {
            break;
        }
    }
    out
}

/// A reset takes over the finished episode's rule engine where it fits (`RuleEngine::rebind`); the episode is
/// byte for byte the one a fresh environment gives, for every basic family, after episodes of other families
/// and seeds that fired alerts and changed the world.
#[test]
fn a_reset_after_other_episodes_equals_a_fresh_one() {
    let cat = catalog();
    let mut warm = Env::new(cat.clone());
    for (k, family) in BASIC_FAMILIES.iter().enumerate() {
        for seed in [k as u64 % 4, 9] {
            let fresh = short_episode(&mut Env::new(cat.clone()), family, seed);
            let after_others = short_episode(&mut warm, family, seed);
            assert_eq!(fresh, after_others, "{family} seed {seed}");
        }
    }
}

/// A reset to the start of the reset just before keeps that start's incident at the page; every further reset
/// to it is a fork of that incident. The episodes are byte for byte a fresh environment's, for every basic
/// family, and another seed or difficulty is another start.
#[test]
fn a_repeated_start_is_a_fork_that_plays_as_a_fresh_one() {
    let cat = catalog();
    let mut env = Env::new(cat.clone());
    for (k, family) in BASIC_FAMILIES.iter().enumerate() {
        let seed = k as u64 % 3;
        let fresh = short_episode(&mut Env::new(cat.clone()), family, seed);
        let before = env.reused_starts();
        for repeat in 0..4 {
            let episode = short_episode(&mut env, family, seed);
            assert_eq!(episode, fresh, "{family} seed {seed}, start {repeat}");
        }
        assert_eq!(
            env.reused_starts() - before,
            2,
            "{family}: the third and fourth starts fork the kept one"
        );
    }
    let json = |p: Observation| serde_json::to_string(&p).expect("json");
    let other = |seed: u64, difficulty: f64| {
        json(
            Env::new(cat.clone())
                .reset("oom_crash", seed, difficulty)
                .expect("reset"),
        )
    };
    for _ in 0..3 {
        env.reset("oom_crash", 5, 0.5).expect("reset");
    }
    let reused = env.reused_starts();
    let page = env.reset("oom_crash", 5, 0.75).expect("reset");
    assert_eq!(json(page), other(5, 0.75));
    let page = env.reset("oom_crash", 6, 0.75).expect("reset");
    assert_eq!(json(page), other(6, 0.75));
    assert_eq!(env.reused_starts(), reused, "other starts are not forks");
}

/// Slots of a vector environment that reset to a start the schedule holds more than once fork the incident the
/// first of them started. Every slot's pages and steps are a fresh environment's, byte for byte, on one thread
/// or two, through `reset` and through auto-reset.
#[test]
fn vec_env_slots_share_the_starts_the_schedule_repeats() {
    let cat = catalog();
    let spec = |scenario: &str, seed: u64| EpisodeSpec {
        scenario: scenario.to_string(),
        seed,
        difficulty: 0.5,
    };
    // Two groups of three rollouts each.
    let schedule = vec![
        spec("oom_crash", 2),
        spec("oom_crash", 2),
        spec("oom_crash", 2),
        spec("disk_full", 1),
        spec("disk_full", 1),
        spec("disk_full", 1),
    ];
    let resolve = firedrill_env::parse_action(
        r#"{"action":"resolve_incident","root_causes":["api-gateway"],"fault_class":"no_fault","evidence":[],"remediation":"none","summary":"nothing"}"#,
    )
    .expect("resolve");
    for threads in [1, 2] {
        let mut v = VecEnv::new(
            cat.clone(),
            3,
            schedule.clone(),
            AutoReset::SameStep,
            threads,
        );
        let mut fresh: Vec<Env> = (0..3).map(|_| Env::new(cat.clone())).collect();
        for (i, page) in v.reset().into_iter().enumerate() {
            let want = fresh[i].reset("oom_crash", 2, 0.5).expect("reset");
            assert_eq!(json(&page.expect("reset")), json(&want), "slot {i}");
        }
        assert_eq!(
            v.reused_starts(),
            2,
            "the second and third slots fork the first's start"
        );
        for (i, r) in v.step(&vec![wait(3.0); 3]).into_iter().enumerate() {
            let want = fresh[i].step(&wait(3.0)).expect("step");
            assert_eq!(json(&r.expect("step").step), json(&want), "slot {i}");
        }
        for (i, r) in v.step(&vec![resolve.clone(); 3]).into_iter().enumerate() {
            let r = r.expect("step");
            assert_eq!(json(&r.step), json(&fresh[i].step(&resolve).expect("step")));
            let want = fresh[i].reset("disk_full", 1, 0.5).expect("reset");
            let page = r.reset_observation.expect("auto-reset page");
            assert_eq!(json(&page), json(&want), "slot {i}, {threads} threads");
        }
        for (i, r) in v.step(&vec![wait(3.0); 3]).into_iter().enumerate() {
            let want = fresh[i].step(&wait(3.0)).expect("step");
            assert_eq!(json(&r.expect("step").step), json(&want), "slot {i}");
        }
        // Slots resetting at once on two threads may each start the group's start; on one, two of three fork.
        assert!(v.reused_starts() >= if threads == 1 { 4 } else { 2 });
    }
}

/// The service of the episode's first root cause (tests that need to act on it read the ground truth).
fn root_cause_service(env: &Env) -> String {
    env.episode()
        .expect("episode")
        .incident()
        .instance()
        .root_causes()[0]
        .service
        .clone()
}

/// JSON text of anything serializable, for comparisons that print the difference.
fn json<T: serde::Serialize>(x: &T) -> String {
    serde_json::to_string(x).expect("json")
}

/// `describe_service` counts pods per version, as `kubectl get pods` would: during a rollback's rollout the old
/// and the new version both show, and once it finishes only the version the deployment targets is left.
#[test]
fn a_rollout_shows_in_the_description() {
    use firedrill_env::action::{RollbackParams, ServiceParams};
    let mut env = Env::new(catalog());
    env.reset("bad_deployment_cascade", 8, 0.5).expect("reset");
    let service = root_cause_service(&env);
    let describe = Action::DescribeService(ServiceParams {
        service: service.clone(),
    });
    let pods = |env: &mut Env| match env.step(&describe).expect("step").observation.content {
        Content::Service(d) => (d.version.clone(), d.pods.clone()),
        other => panic!("expected a description, got {other:?}"),
    };
    let (bad, before) = pods(&mut env);
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(before[0].0, bad);
    env.step(&Action::RollbackDeploy(RollbackParams {
        service,
        version: None,
    }))
    .expect("rollback");
    let (good, during) = pods(&mut env);
    assert_ne!(good, bad);
    assert!(
        during.iter().any(|(v, _)| *v == bad) && during.iter().any(|(v, _)| *v == good),
        "both versions run while the rollout replaces pods: {during:?}"
    );
    let text = env.step(&describe).expect("step").observation.to_text();
    assert!(text.contains(&format!("(rolling out {good})")), "{text}");
    env.step(&wait(10.0)).expect("wait");
    let (_, after) = pods(&mut env);
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0].0, good);
}
