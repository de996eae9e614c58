//! Same (scenario, seed, difficulty, operations) gives the same trajectory; a fork evolves exactly like the
//! original; a different seed gives a different world.

use firedrill_scenario::Catalog;
use firedrill_world::{Actor, Operation};

#[test]
fn same_inputs_same_trajectory_and_forks_match() {
    let catalog = Catalog::builtin().expect("library");
    for scenario in catalog.scenarios() {
        let a = catalog.start(&scenario.id, 5, 0.7).expect("start");
        let b = catalog.start(&scenario.id, 5, 0.7).expect("start");
        assert_eq!(
            a.digest().hex(),
            b.digest().hex(),
            "{}: two resets differ",
            scenario.id
        );

        let mut original = a;
        let mut fork = original.clone();
        let target = original
            .world()
            .topology()
            .service_id("api-gateway")
            .expect("gateway");
        for inc in [&mut original, &mut fork] {
            let op = Operation::Scale {
                service: target,
                replicas: 5,
            };
            inc.apply(&op, &Actor::oncall()).expect("scale");
            for _ in 0..30 {
                inc.step();
            }
        }
        assert_eq!(
            original.digest().hex(),
            fork.digest().hex(),
            "{}: fork diverged",
            scenario.id
        );

        let other = catalog.start(&scenario.id, 6, 0.7).expect("start");
        assert_ne!(
            b.digest().hex(),
            other.digest().hex(),
            "{}: seeds 5 and 6 gave the same world",
            scenario.id
        );
    }
}

/// A start looks ahead for the page on a fork when some rule has no compiled plan (its evaluations batch into
/// range queries), and steps interval by interval when all have one. Both must page at the same tick with the
/// same alert history: here the same incident is started with the shop's rules alone and with one more rule
/// that has no plan (an `offset`) and never fires.
#[test]
fn the_page_look_ahead_pages_where_stepping_does() {
    use firedrill_alerting::{AlertRuleSpec, AlertingRule};
    use firedrill_scenario::Incident;
    use firedrill_world::topology::SpecPath;
    use std::sync::Arc;

    let catalog = Catalog::builtin().expect("library");
    for scenario in catalog.scenarios() {
        for seed in 0..2 {
            let instance = catalog.instance(&scenario.id, seed, 0.5).expect("instance");
            let stepped = Incident::start(instance.clone()).expect("start");
            assert!(
                stepped.alerts().all_planned(),
                "{}: a shop rule has no plan",
                scenario.id
            );

            let mut with_unplanned = (*instance).clone();
            let spec = AlertRuleSpec {
                alert: "NeverFires".to_string(),
                expr: "up offset 1m < 0".to_string(),
                for_: None,
                keep_firing_for: None,
                labels: Default::default(),
                annotations: Default::default(),
            };
            let rule =
                AlertingRule::compile(&spec, &instance.topology, &SpecPath::root()).expect("rule");
            with_unplanned.alerts.push(rule);
            let looked_ahead = Incident::start(Arc::new(with_unplanned)).expect("start");
            let alerts = looked_ahead.alerts();
            assert!(
                !alerts.all_planned() && alerts.can_lag(),
                "the look-ahead is not taken"
            );

            assert_eq!(
                stepped.page_s(),
                looked_ahead.page_s(),
                "{} seed {seed}",
                scenario.id
            );
            assert_eq!(
                stepped.world().tick_count(),
                looked_ahead.world().tick_count()
            );
            assert_eq!(
                stepped.alerts().history(),
                alerts.history(),
                "{} seed {seed}: alert histories differ",
                scenario.id
            );
            assert_eq!(stepped.alerts().evaluations(), alerts.evaluations());
        }
    }
}
