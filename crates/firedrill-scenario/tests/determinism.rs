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
            let mut looked_ahead = Incident::start(Arc::new(with_unplanned)).expect("start");
            // The shop's rules alone begin late (at a quiet evaluation); compare whole histories.
            let mut stepped = stepped;
            stepped.complete_alert_history();
            looked_ahead.complete_alert_history();
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

/// A start runs the hour of history without evaluating the alert rules and begins them at a quiet evaluation
/// near its end (`RuleEngine::begin_late`). Against a start that runs every evaluation: the same page, the same
/// active alerts in the same order, the same alerts and history once the skipped evaluations are replayed, the
/// same digest, and still all of that after the episode goes on and after hours (when the incident replays
/// the skipped evaluations by itself before its frame ring evicts what they read).
#[test]
fn a_late_start_of_the_rules_equals_evaluating_every_interval() {
    use firedrill_scenario::Incident;

    let catalog = Catalog::builtin().expect("library");
    let mut began_late = 0;
    let mut starts = 0;
    for scenario in catalog.scenarios() {
        for seed in 0..3 {
            let instance = catalog.instance(&scenario.id, seed, 0.5).expect("instance");
            let mut fast = Incident::start(instance.clone()).expect("start");
            let mut every = Incident::start_evaluating_all(instance).expect("start");
            let what = format!("{} seed {seed}", scenario.id);
            starts += 1;
            began_late += usize::from(fast.alerts().skipped_evaluations());
            assert!(!every.alerts().skipped_evaluations(), "{what}");
            assert_eq!(fast.page_s(), every.page_s(), "{what}: page");
            assert_eq!(fast.world().tick_count(), every.world().tick_count());
            assert_eq!(
                fast.alerts().active(),
                every.alerts().active(),
                "{what}: page alerts"
            );
            assert_eq!(fast.alerts().evaluations(), every.alerts().evaluations());
            assert_eq!(fast.digest().hex(), every.digest().hex(), "{what}: digest");

            for _ in 0..40 {
                fast.step();
                every.step();
            }
            assert_eq!(
                fast.alerts().active(),
                every.alerts().active(),
                "{what}: later"
            );
            let mut completed = fast.clone();
            completed.complete_alert_history();
            assert!(!completed.alerts().skipped_evaluations());
            assert_eq!(
                completed.alerts().history(),
                every.alerts().history(),
                "{what}"
            );
            assert_eq!(
                completed.alerts().instances(),
                every.alerts().instances(),
                "{what}"
            );
            assert_eq!(
                fast.digest().hex(),
                every.digest().hex(),
                "{what}: digest later"
            );

            // Hours later (one family: six hours of ticks), past the frame ring's capacity.
            if scenario.id == "oom_crash" && seed == 0 {
                let capacity = fast.world().history().capacity_ticks() as u64;
                while fast.world().tick_count() <= capacity + 10 {
                    fast.step();
                    every.step();
                }
                assert!(
                    !fast.alerts().skipped_evaluations(),
                    "replayed before eviction"
                );
                assert_eq!(fast.alerts().history(), every.alerts().history());
                assert_eq!(fast.alerts().instances(), every.alerts().instances());
                assert_eq!(fast.digest().hex(), every.digest().hex());
            }
        }
    }
    // Most starts find a quiet evaluation (the fault has not shown yet an hour in).
    assert!(
        began_late * 2 > starts,
        "only {began_late} of {starts} starts began late"
    );
}

/// The rule engine of a finished incident rebinds to a new world of the same topology (another family, another
/// seed), and the incident started with it is the one started afresh: same trajectory, same alerts.
#[test]
fn a_rule_engine_rebinds_across_the_shop_and_starts_the_same_incident() {
    let catalog = Catalog::builtin().expect("library");
    let first = catalog.start("oom_crash", 3, 0.5).expect("start");
    let next = catalog
        .instance("db_pool_exhaustion", 8, 0.5)
        .expect("instance");
    let fresh = firedrill_scenario::Incident::build(next.clone());
    let rebound = first.alerts().clone().rebind(
        first.world(),
        fresh.world(),
        next.alerts.clone(),
        next.alert_interval_ticks,
    );
    assert!(
        rebound.is_some(),
        "two worlds of the shop share every label set the rules read"
    );

    let mut a = firedrill_scenario::Incident::start(next.clone()).expect("start");
    let mut b = firedrill_scenario::Incident::start_recycling(next, Some(first)).expect("start");
    assert_eq!(a.page_s(), b.page_s());
    for _ in 0..80 {
        a.step();
        b.step();
    }
    a.complete_alert_history();
    b.complete_alert_history();
    assert_eq!(a.digest().hex(), b.digest().hex());
    assert_eq!(
        format!("{:?}", a.alerts().history()),
        format!("{:?}", b.alerts().history())
    );
}
