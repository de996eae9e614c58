//! Alert rules follow Prometheus semantics on the simulated clock: pending when the condition first holds,
//! firing after `for`, resolved when it stops holding (after `keep_firing_for`).

use std::sync::Arc;

use firedrill_telemetry::alerts::{AlertRuleSpec, AlertState, Comparison, Threshold};
use firedrill_telemetry::{AlertEngine, AlertRule, KeyMetric};
use firedrill_world::spec::TopologySpec;
use firedrill_world::topology::SpecPath;
use firedrill_world::{Actor, Operation, Topology, World, WorldOptions};

fn world() -> World {
    let spec: TopologySpec = serde_json::from_str(include_str!(
        "../../firedrill-world/tests/fixtures/small.json"
    ))
    .expect("spec");
    let topology = Arc::new(Topology::compile(&spec, &SpecPath::root()).expect("topology"));
    World::new(topology, 1, WorldOptions::default())
}

fn rule(world: &World, for_: &str, keep: &str) -> AlertRule {
    let spec = AlertRuleSpec {
        name: "ApiErrors".into(),
        threshold: Threshold {
            metric: KeyMetric::ErrorRatio,
            op: Comparison::Gt,
            value: 0.2,
        },
        services: Some(vec!["api".into()]),
        kinds: None,
        for_: for_.into(),
        keep_firing_for: keep.into(),
        severity: "critical".into(),
        labels: Default::default(),
        summary: "{{ $labels.service }} errors at {{ $value }}".into(),
    };
    AlertRule::compile(&spec, world.topology(), &SpecPath::root()).expect("rule")
}

fn states(engine: &AlertEngine) -> Vec<(f64, AlertState)> {
    engine.history().iter().map(|t| (t.t_s, t.to)).collect()
}

#[test]
fn pending_then_firing_after_for_then_resolved() {
    let mut w = world();
    let mut engine = AlertEngine::new(vec![rule(&w, "1m", "0s")]);
    for _ in 0..10 {
        w.step();
        engine.evaluate(&w);
    }
    assert!(
        engine.history().is_empty(),
        "a healthy world raised {:?}",
        states(&engine)
    );
    let api = w.topology().service_id("api").expect("api");
    w.apply(
        &Operation::SetFlag {
            service: api,
            flag: 0,
            enabled: true,
        },
        &Actor::oncall(),
    )
    .expect("flag");
    for _ in 0..6 {
        w.step();
        engine.evaluate(&w);
    }
    let s = states(&engine);
    assert_eq!(s[0].1, AlertState::Pending);
    assert_eq!(s[1].1, AlertState::Firing);
    assert_eq!(
        s[1].0 - s[0].0,
        60.0,
        "fires exactly `for` after it became pending"
    );
    let active = engine.active(w.topology());
    assert_eq!(active[0].labels["alertname"], "ApiErrors");
    assert!(active[0].annotations["summary"].starts_with("api errors at 0."));
    w.apply(
        &Operation::SetFlag {
            service: api,
            flag: 0,
            enabled: false,
        },
        &Actor::oncall(),
    )
    .expect("flag");
    w.step();
    engine.evaluate(&w);
    assert_eq!(
        states(&engine).last().map(|x| x.1),
        Some(AlertState::Inactive)
    );
}

#[test]
fn keep_firing_for_holds_the_alert_and_a_short_blip_never_fires() {
    let mut w = world();
    let api = w.topology().service_id("api").expect("api");
    let mut engine = AlertEngine::new(vec![rule(&w, "2m", "0s"), rule(&w, "0s", "1m")]);
    w.run(4);
    w.apply(
        &Operation::SetFlag {
            service: api,
            flag: 0,
            enabled: true,
        },
        &Actor::oncall(),
    )
    .expect("flag");
    w.step();
    engine.evaluate(&w);
    w.apply(
        &Operation::SetFlag {
            service: api,
            flag: 0,
            enabled: false,
        },
        &Actor::oncall(),
    )
    .expect("flag");
    let mut firing_ticks = 0;
    for _ in 0..8 {
        w.step();
        engine.evaluate(&w);
        if engine.any_firing() {
            firing_ticks += 1;
        }
    }
    // Rule 0 (for 2m) saw one bad tick: pending, then back to inactive, never firing.
    assert!(
        engine
            .history()
            .iter()
            .filter(|t| t.rule == 0)
            .all(|t| t.to != AlertState::Firing)
    );
    // Rule 1 fired at once and kept firing for a minute after the condition cleared.
    assert_eq!(firing_ticks, 3, "{:?}", states(&engine));
}
