//! Alerting rules on a small world built in code: Prometheus's state machine (pending, firing, `for`,
//! `keep_firing_for`, resolved), templated labels and annotations, duplicate label sets, and validation with
//! positions.

mod common;

use firedrill_alerting::{AlertRuleSpec, AlertState, AlertingRule, RuleEngine};
use firedrill_world::topology::SpecPath;
use firedrill_world::{Actor, Operation, World, WorldOptions};

fn spec(yaml_like: serde_json::Value) -> AlertRuleSpec {
    serde_json::from_value(yaml_like).expect("rule spec")
}

fn compile(s: &AlertRuleSpec) -> AlertingRule {
    AlertingRule::compile(s, &common::topology(), &SpecPath::root()).expect("rule")
}

fn scale(w: &mut World, replicas: u32) {
    let api = w.topology().service_id("api").expect("api");
    w.apply(
        &Operation::Scale {
            service: api,
            replicas,
        },
        &Actor("test".into()),
    )
    .expect("scale");
}

/// Runs `ticks` ticks, evaluating after each, and returns the (minute, state) transitions.
fn run(w: &mut World, e: &mut RuleEngine, ticks: u64) {
    for _ in 0..ticks {
        w.step();
        e.evaluate(w);
    }
}

fn transitions(e: &RuleEngine) -> Vec<(f64, AlertState, AlertState)> {
    e.history()
        .iter()
        .map(|t| (t.t_s / 60.0, t.from, t.to))
        .collect()
}

fn replicas_rule(for_: &str, keep: &str) -> AlertingRule {
    compile(&spec(serde_json::json!({
        "alert": "TooManyReplicas",
        "expr": "kube_deployment_spec_replicas{service=\"api\"} > 3",
        "for": for_,
        "keep_firing_for": keep,
        "labels": { "severity": "page", "team": "{{ $labels.service }}-team" },
        "annotations": { "summary": "{{ $labels.service }} wants {{ $value }} replicas" }
    })))
}

#[test]
fn pending_then_firing_after_for_then_resolved() {
    let mut w = World::new(common::topology(), 1, WorldOptions::default());
    let mut e = RuleEngine::new(vec![replicas_rule("2m", "0s")], 1);
    run(&mut w, &mut e, 8);
    assert!(
        e.history().is_empty(),
        "nothing while the condition is false"
    );
    scale(&mut w, 5);
    run(&mut w, &mut e, 1);
    let t0 = w.now_s() / 60.0;
    assert_eq!(
        transitions(&e),
        vec![(t0, AlertState::Inactive, AlertState::Pending)]
    );
    // 2 minutes = 8 evaluations at 15 s: firing exactly at the evaluation 2 minutes after the first one.
    run(&mut w, &mut e, 7);
    assert_eq!(
        e.history().len(),
        1,
        "still pending before `for` has passed"
    );
    run(&mut w, &mut e, 1);
    assert_eq!(
        transitions(&e)[1],
        (t0 + 2.0, AlertState::Pending, AlertState::Firing)
    );
    let active = e.active();
    assert_eq!(active.len(), 1);
    let a = &active[0];
    assert_eq!(a.labels["alertname"], "TooManyReplicas");
    assert_eq!(a.labels["severity"], "page");
    assert_eq!(a.labels["team"], "api-team", "label templates expanded");
    assert_eq!(a.labels["service"], "api");
    assert!(!a.labels.contains_key("__name__"));
    assert_eq!(a.annotations["summary"], "api wants 5 replicas");
    assert_eq!(a.value, 5.0);
    assert!(e.any_firing());
    scale(&mut w, 2);
    run(&mut w, &mut e, 1);
    assert_eq!(
        transitions(&e)[2].1..=transitions(&e)[2].2,
        AlertState::Firing..=AlertState::Inactive
    );
    assert!(!e.any_firing());
}

#[test]
fn pending_alert_that_stops_never_fires() {
    let mut w = World::new(common::topology(), 2, WorldOptions::default());
    let mut e = RuleEngine::new(vec![replicas_rule("5m", "0s")], 1);
    run(&mut w, &mut e, 4);
    scale(&mut w, 5);
    run(&mut w, &mut e, 4);
    scale(&mut w, 2);
    run(&mut w, &mut e, 30);
    let states: Vec<AlertState> = e.history().iter().map(|t| t.to).collect();
    assert_eq!(states, vec![AlertState::Pending, AlertState::Inactive]);
    // A new activation starts a new `for` period from scratch.
    scale(&mut w, 5);
    run(&mut w, &mut e, 1);
    run(&mut w, &mut e, 19);
    assert_eq!(e.history().last().map(|t| t.to), Some(AlertState::Pending));
    run(&mut w, &mut e, 1);
    assert_eq!(e.history().last().map(|t| t.to), Some(AlertState::Firing));
}

#[test]
fn keep_firing_for_holds_a_firing_alert() {
    let mut w = World::new(common::topology(), 3, WorldOptions::default());
    let mut e = RuleEngine::new(vec![replicas_rule("0s", "1m")], 1);
    run(&mut w, &mut e, 4);
    scale(&mut w, 5);
    run(&mut w, &mut e, 1);
    // `for: 0s` fires at the first evaluation.
    assert_eq!(
        transitions(&e),
        vec![(w.now_s() / 60.0, AlertState::Inactive, AlertState::Firing)]
    );
    scale(&mut w, 2);
    run(&mut w, &mut e, 1);
    let gone = w.now_s() / 60.0;
    run(&mut w, &mut e, 3);
    assert_eq!(e.history().len(), 1, "kept firing for less than a minute");
    assert_eq!(e.active()[0].value, 5.0, "the last value is kept");
    run(&mut w, &mut e, 1);
    assert_eq!(
        transitions(&e)[1],
        (gone + 1.0, AlertState::Firing, AlertState::Inactive)
    );
}

#[test]
fn evaluation_interval_spaces_evaluations() {
    let mut w = World::new(common::topology(), 4, WorldOptions::default());
    let mut e = RuleEngine::new(vec![replicas_rule("0s", "0s")], 4);
    run(&mut w, &mut e, 40);
    assert_eq!(e.evaluations(), 10);
    scale(&mut w, 5);
    run(&mut w, &mut e, 4);
    let t = e.history()[0].t_s;
    assert_eq!((t / 60.0).fract(), 0.0, "evaluated on whole minutes: {t}");
}

#[test]
fn one_alert_per_result_series() {
    let mut w = World::new(common::topology(), 5, WorldOptions::default());
    let rule = compile(&spec(serde_json::json!({
        "alert": "Up",
        "expr": "up == 1",
        "annotations": { "summary": "{{ $labels.service | toUpper }} is {{ $value | humanizePercentage }} up" }
    })));
    let mut e = RuleEngine::new(vec![rule], 1);
    run(&mut w, &mut e, 3);
    let services: Vec<String> = e
        .active()
        .iter()
        .map(|a| a.labels["service"].clone())
        .collect();
    assert_eq!(services, vec!["api", "web"]);
    assert_eq!(e.active()[0].annotations["summary"], "API is 100% up");
    assert!(e.active().iter().all(|a| a.state == AlertState::Firing));
}

#[test]
fn duplicate_label_sets_fail_the_rule_without_changing_alerts() {
    let mut w = World::new(common::topology(), 6, WorldOptions::default());
    // The rule's label overwrites the only label that told the two results apart.
    let rule = compile(&spec(serde_json::json!({
        "alert": "Dup",
        "expr": "up == 1",
        "labels": { "service": "same", "job": "same" }
    })));
    let mut e = RuleEngine::new(vec![rule], 1);
    run(&mut w, &mut e, 3);
    assert!(e.history().is_empty());
    assert!(
        e.rule_error(0).is_some_and(|m| m.contains("same labelset")),
        "{:?}",
        e.rule_error(0)
    );
}

#[test]
fn scalar_results_are_one_alert() {
    let mut w = World::new(common::topology(), 7, WorldOptions::default());
    let rule = compile(&spec(
        serde_json::json!({ "alert": "Scalar", "expr": "scalar(sum(up))" }),
    ));
    let mut e = RuleEngine::new(vec![rule], 1);
    run(&mut w, &mut e, 1);
    assert_eq!(e.active().len(), 1);
    assert_eq!(
        e.active()[0].labels.keys().collect::<Vec<_>>(),
        vec!["alertname"]
    );
}

#[test]
fn forks_are_independent_and_deterministic() {
    let mut w = World::new(common::topology(), 8, WorldOptions::default());
    let mut e = RuleEngine::new(vec![replicas_rule("1m", "0s")], 1);
    run(&mut w, &mut e, 4);
    let (mut w2, mut e2) = (w.clone(), e.clone());
    scale(&mut w, 5);
    run(&mut w, &mut e, 10);
    run(&mut w2, &mut e2, 10);
    assert!(e2.history().is_empty());
    assert_eq!(e.history().len(), 2);
    let (mut w3, mut e3) = (
        World::new(common::topology(), 8, WorldOptions::default()),
        RuleEngine::new(vec![replicas_rule("1m", "0s")], 1),
    );
    run(&mut w3, &mut e3, 4);
    scale(&mut w3, 5);
    run(&mut w3, &mut e3, 10);
    assert_eq!(e.history(), e3.history());
}

fn errors(rule: serde_json::Value) -> Vec<String> {
    match AlertingRule::compile(
        &spec(rule),
        &common::topology(),
        &SpecPath::root().key("alerts").index(0),
    ) {
        Ok(_) => Vec::new(),
        Err(es) => es
            .iter()
            .map(|e| format!("{}: {}", e.path, e.message))
            .collect(),
    }
}

#[test]
fn validation_reports_what_and_where() {
    let e = errors(serde_json::json!({ "alert": "X", "expr": "sum by (service (up)" }));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("alerts[0].expr: expression does not parse at line 1, column"),
        "{e:?}"
    );

    let e =
        errors(serde_json::json!({ "alert": "X", "expr": "up\n  and on(service)\n  rate(up[5m)" }));
    assert!(e[0].contains("line 3, column"), "{e:?}");

    let e = errors(serde_json::json!({ "alert": "X", "expr": "up[5m]" }));
    assert!(
        e[0].contains("must return an instant vector or a scalar"),
        "{e:?}"
    );

    let e = errors(serde_json::json!({ "alert": "X", "expr": "nonexistent_metric_total > 0" }));
    assert!(
        e[0].contains("\"nonexistent_metric_total\" is not exported"),
        "{e:?}"
    );

    // Histograms are exported as their `_bucket`, `_sum` and `_count` series, not under their own name.
    for series in ["_bucket", "_sum", "_count"] {
        let expr = format!("rate(http_request_duration_seconds{series}[5m]) > 0");
        assert_eq!(
            errors(serde_json::json!({ "alert": "X", "expr": expr })),
            Vec::<String>::new()
        );
    }
    for name in [
        "http_request_duration_seconds",
        "http_request_duration_seconds_total",
    ] {
        let e = errors(serde_json::json!({ "alert": "X", "expr": format!("{name} > 0") }));
        assert!(e[0].contains(&format!("{name:?} is not exported")), "{e:?}");
    }

    let e = errors(serde_json::json!({ "alert": "X", "expr": "up{service=\"nope\"} == 0" }));
    assert!(e[0].contains("unknown service \"nope\""), "{e:?}");

    let e =
        errors(serde_json::json!({ "alert": "bad name", "expr": "up == 0", "for": "5 minutes" }));
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(e[0].starts_with("alerts[0].alert:"), "{e:?}");
    assert!(e[1].starts_with("alerts[0].for:"), "{e:?}");

    let e = errors(serde_json::json!({
        "alert": "X", "expr": "up == 0",
        "annotations": { "summary": "{{ $labels.service | humanise }}" }
    }));
    assert!(
        e[0].starts_with("alerts[0].annotations.summary: template error at column 22"),
        "{e:?}"
    );
    let e = errors(serde_json::json!({
        "alert": "X", "expr": "up == 0", "labels": { "alertname": "Y" }
    }));
    assert!(e[0].contains("alertname"), "{e:?}");

    assert!(errors(serde_json::json!({
        "alert": "Fine",
        "expr": "histogram_quantile(0.99, sum by (le, service) (rate(http_request_duration_seconds_bucket[5m]))) > 2",
        "for": "5m", "keep_firing_for": "1m"
    }))
    .is_empty());
}

/// A rule engine that catches up late (in batches of evaluations, range queries where it can) ends in exactly
/// the state of one evaluated on every interval: same transitions, same alerts, same rule health.
#[test]
fn catching_up_late_equals_evaluating_on_every_interval() {
    let rules = || -> Vec<AlertingRule> {
        [
            serde_json::json!({ "alert": "Errors", "for": "1m",
                "expr": "sum by (service) (rate(http_requests_total{code=~\"5..\"}[2m])) / sum by (service) (rate(http_requests_total[2m])) > 0.01",
                "annotations": { "summary": "{{ $labels.service }} fails {{ $value | humanizePercentage }}" } }),
            serde_json::json!({ "alert": "Slow", "for": "2m",
                "expr": "histogram_quantile(0.99, sum by (le, service) (rate(http_request_duration_seconds_bucket[2m]))) > 0.5" }),
            serde_json::json!({ "alert": "Flapping", "expr": "changes(up[10m]) > 0", "keep_firing_for": "1m" }),
            serde_json::json!({ "alert": "Many", "expr": "kube_deployment_spec_replicas > 2" }),
            // An `@` modifier keeps this one out of range batches: it is evaluated step by step.
            serde_json::json!({ "alert": "Down", "expr": "up @ end() == 0" }),
        ]
        .into_iter()
        .map(|j| compile(&spec(j)))
        .collect()
    };
    let mut w = World::new(common::topology(), 9, WorldOptions::default());
    let mut every = RuleEngine::new(rules(), 4);
    assert!(!every.can_lag(), "the @ rule cannot be batched");
    let mut late = RuleEngine::new(rules(), 4);
    // Catch-up points, uneven, some between evaluation ticks.
    let catch_ups = [3u64, 4, 9, 30, 31, 50, 97, 98, 150];
    for tick in 1..=150u64 {
        match tick {
            20 => scale(&mut w, 0),
            45 => scale(&mut w, 4),
            80 => scale(&mut w, 1),
            110 => scale(&mut w, 2),
            _ => {}
        }
        w.step();
        every.evaluate(&w);
        if catch_ups.contains(&tick) {
            late.catch_up(&w);
        }
    }
    assert!(every.history().len() >= 6, "{:?}", transitions(&every));
    assert_eq!(late.history(), every.history());
    assert_eq!(late.instances(), every.instances());
    assert_eq!(late.evaluations(), every.evaluations());
    for r in 0..5 {
        assert_eq!(late.rule_error(r), every.rule_error(r), "rule {r}");
    }
}
