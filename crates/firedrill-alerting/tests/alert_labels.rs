//! The engine resolves a returned sample to its alert through what it remembers of the result label sets it has
//! seen, and expands annotations only when they are read. These tests check both against a reference computed
//! from scratch at every evaluation: the PromQL engine's instant result, the rule's templates expanded over
//! each sample's labels and value, Prometheus's duplicate check.

mod common;

use std::collections::BTreeMap;

use firedrill_alerting::template::Data;
use firedrill_alerting::{AlertRuleSpec, AlertState, AlertingRule, RuleEngine};
use firedrill_promql::{Engine, EngineOptions, METRIC_NAME, Value};
use firedrill_query::WorldStorage;
use firedrill_world::topology::SpecPath;
use firedrill_world::{Actor, Operation, World, WorldOptions};

fn rule(json: serde_json::Value) -> AlertingRule {
    let spec: AlertRuleSpec = serde_json::from_value(json).expect("rule spec");
    AlertingRule::compile(&spec, &common::topology(), &SpecPath::root()).expect("rule")
}

fn scale(w: &mut World, service: &str, replicas: u32) {
    let service = w.topology().service_id(service).expect("service");
    w.apply(
        &Operation::Scale { service, replicas },
        &Actor("test".into()),
    )
    .expect("scale");
}

type Map = BTreeMap<String, String>;

/// What Prometheus makes of one evaluation of `rule`: each alert's labels with its annotations and value, or
/// `None` for the duplicate label set error.
fn reference(rule: &AlertingRule, world: &World) -> Option<BTreeMap<Map, (Map, f64)>> {
    let engine = Engine::new(EngineOptions::default());
    let t = firedrill_telemetry::metrics::tick_ms(world, world.tick_count());
    let samples = match engine
        .instant_expr(&WorldStorage::new(world), &rule.expr, t)
        .expect("evaluates")
    {
        Value::Vector(s) => s.into_iter().map(|(l, s)| (l, s.v)).collect(),
        Value::Scalar(s) => vec![(Default::default(), s.v)],
        other => panic!("{other:?}"),
    };
    let mut alerts = BTreeMap::new();
    for (labels, value) in samples {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .filter(|(k, _)| *k != METRIC_NAME)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let data = Data {
            labels: &labels,
            value,
        };
        let mut all = labels.clone();
        for (k, t) in &rule.labels {
            match t.expand(data) {
                v if v.is_empty() => all.remove(k),
                v => all.insert(k.clone(), v),
            };
        }
        all.insert("alertname".into(), rule.name().to_string());
        let annotations = rule
            .annotations
            .iter()
            .map(|(k, t)| (k.clone(), t.expand(data)))
            .collect();
        if alerts.insert(all, (annotations, value)).is_some() {
            return None;
        }
    }
    Some(alerts)
}

fn rules() -> Vec<AlertingRule> {
    vec![
        // Label templates over the labels only: resolved once per result label set. The annotation follows the
        // value, which changes while the alert stays the same.
        rule(serde_json::json!({
            "alert": "Replicas", "expr": "kube_deployment_spec_replicas > 1", "for": "1m",
            "labels": { "team": "{{ $labels.service }}-team", "severity": "page" },
            "annotations": { "summary": "{{ $labels.service }} wants {{ $value }} replicas" }
        })),
        // A label template over the value: the alert changes with the value, so nothing is remembered.
        rule(serde_json::json!({
            "alert": "Sized", "expr": "kube_deployment_spec_replicas{service=\"api\"} > 0",
            "labels": { "size": "{{ $value }}" },
            "annotations": { "summary": "{{ $labels.size }}{{ $labels.service }}" }
        })),
        // The rule's label hides the result's: different result label sets make one alert, whose annotation
        // follows the latest; when two are returned at once, they are duplicates (also once both are known).
        rule(serde_json::json!({
            "alert": "Counted", "expr": "count_values(\"replicas\", kube_deployment_spec_replicas)",
            "labels": { "replicas": "any" },
            "annotations": { "summary": "{{ $labels.replicas }} replicas, {{ $value }} services" }
        })),
        // An empty expansion removes a label: both services make one alert, always a duplicate.
        rule(serde_json::json!({
            "alert": "Anonymous", "expr": "up == 1", "labels": { "service": "" }
        })),
    ]
}

/// Every evaluation's alerts (labels, annotations, values) and rule errors equal the reference, while the
/// replicas of both services change so that alerts come, change value, change result labels and collide.
#[test]
fn alerts_equal_a_fresh_resolution_at_every_evaluation() {
    let mut w = World::new(common::topology(), 11, WorldOptions::default());
    let mut e = RuleEngine::new(rules(), 1);
    let plan = [
        (3, "api", 1),
        (8, "web", 1),
        (12, "api", 3),
        (20, "api", 1),
        (26, "api", 5),
        (33, "web", 5),
        (38, "api", 2),
        (44, "api", 3),
        (50, "web", 2),
    ];
    let (mut checked, mut duplicates, mut counted) = (0, 0, 0);
    let mut summaries = std::collections::BTreeSet::new();
    for tick in 1..=60u64 {
        for &(at, service, n) in &plan {
            if at == tick {
                scale(&mut w, service, n);
            }
        }
        w.step();
        e.evaluate(&w);
        let active = e.active();
        for (ri, r) in e.rules().iter().enumerate() {
            let mine: BTreeMap<_, _> = active
                .iter()
                .filter(|a| a.labels["alertname"] == r.name())
                .map(|a| (a.labels.clone(), (a.annotations.clone(), a.value)))
                .collect();
            match reference(r, &w) {
                Some(expected) => {
                    assert_eq!(e.rule_error(ri), None, "{} at {tick}", r.name());
                    // No `keep_firing_for`: the active alerts are exactly those returned.
                    assert_eq!(mine.len(), expected.len(), "{} at {tick}", r.name());
                    for (labels, (annotations, value)) in expected {
                        let (a, v) = &mine[&labels];
                        assert_eq!(a, &annotations, "{} at {tick}", r.name());
                        assert_eq!(v.to_bits(), value.to_bits(), "{} at {tick}", r.name());
                        checked += 1;
                        counted += usize::from(r.name() == "Counted");
                        summaries.extend(annotations.get("summary").cloned());
                    }
                }
                None => {
                    assert!(
                        e.rule_error(ri)
                            .is_some_and(|m| m.contains("same labelset")),
                        "{} at {tick}: {:?}",
                        r.name(),
                        e.rule_error(ri)
                    );
                    duplicates += 1;
                }
            }
        }
    }
    assert!(checked > 100, "{checked}");
    assert!(duplicates > 30, "{duplicates}");
    assert!(counted > 10, "{counted}");
    // The summaries followed the values and the result labels.
    for s in [
        "api wants 2 replicas",
        "api wants 3 replicas",
        "api wants 5 replicas",
        "1 replicas, 2 services",
        "2 replicas, 2 services",
        "5 replicas, 2 services",
    ] {
        assert!(summaries.contains(s), "{s}: {summaries:?}");
    }
    assert!(
        e.instances().iter().any(|a| a.state == AlertState::Firing),
        "{:?}",
        e.instances()
    );
}

/// A late start that is completed keeps resolving the alerts it knew to the right ones when the replayed
/// evaluations put alerts before them.
#[test]
fn a_completed_late_start_resolves_its_alerts_under_their_new_places() {
    let rules = || {
        vec![rule(serde_json::json!({
            "alert": "Replicas", "expr": "kube_deployment_spec_replicas > 2",
            "annotations": { "summary": "{{ $labels.service }} wants {{ $value }} replicas" }
        }))]
    };
    let mut w = World::new(common::topology(), 12, WorldOptions::default());
    let mut every = RuleEngine::new(rules(), 1);
    let mut late = RuleEngine::new(rules(), 1);
    for tick in 1..=70u64 {
        match tick {
            // web's alert comes and goes before the late start, api's after it.
            2 => scale(&mut w, "web", 3),
            10 => scale(&mut w, "web", 1),
            36 => scale(&mut w, "api", 4),
            55 => scale(&mut w, "api", 6),
            _ => {}
        }
        w.step();
        every.evaluate(&w);
        match tick {
            30 => assert!(late.begin_late(&w), "a quiet evaluation at 30"),
            t if t > 30 => late.evaluate(&w),
            _ => {}
        }
        if tick == 45 {
            late.complete(&w).expect("complete");
            assert_eq!(late.instances().len(), 2);
            assert_eq!(late.instances()[0].labels["service"], "web");
        }
    }
    assert_eq!(late.history(), every.history());
    assert_eq!(late.instances(), every.instances());
    assert_eq!(late.active(), every.active());
    assert_eq!(
        late.active()[0].annotations["summary"],
        "api wants 6 replicas"
    );
}

/// A late start whose first probes are not quiet (an alert is active at them) begins at an earlier quiet one,
/// carrying what those probes learnt of the series; completed, it is the engine that evaluated everything.
#[test]
fn a_late_start_past_probes_that_were_not_quiet_is_exact() {
    let rules = || {
        vec![rule(serde_json::json!({
            "alert": "Replicas", "expr": "kube_deployment_spec_replicas > 2", "for": "2m"
        }))]
    };
    let mut w = World::new(common::topology(), 5, WorldOptions::default());
    let mut every = RuleEngine::new(rules(), 1);
    let mut late = RuleEngine::new(rules(), 1);
    for tick in 1..=60u64 {
        match tick {
            // Active from 22 to 45: the probes at 30 and 25 see it, the one at 15 does not.
            22 => scale(&mut w, "web", 3),
            45 => scale(&mut w, "web", 1),
            _ => {}
        }
        w.step();
        every.evaluate(&w);
        match tick {
            30 => {
                assert!(!every.instances().is_empty(), "the alert is active at 30");
                assert!(late.begin_late(&w), "a quiet evaluation before 22");
            }
            t if t > 30 => late.evaluate(&w),
            _ => {}
        }
    }
    late.complete(&w).expect("complete");
    assert_eq!(late.history(), every.history());
    assert_eq!(late.instances(), every.instances());
    assert!(!every.history().is_empty());
}
