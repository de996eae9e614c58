//! Validity of the built-in library, for every family over seeds 0..50 at difficulties 0, 0.5 and 1: the page
//! comes from an alert that actually fired; the intended operations reach the mitigated state; doing nothing for
//! the whole budget does not (except in the no-fault control, where doing nothing is the right answer).

use std::collections::BTreeSet;
use std::sync::Arc;

use firedrill_alerting::AlertState;
use firedrill_scenario::instantiate::{candidates, topology_spec};
use firedrill_scenario::{Catalog, Incident};
use firedrill_world::Actor;

const SEEDS: std::ops::Range<u64> = 0..50;
/// Both ends of the difficulty range and its middle: every seed at each.
const DIFFICULTIES: [f64; 3] = [0.0, 0.5, 1.0];

fn catalog() -> Catalog {
    match Catalog::builtin() {
        Ok(c) => c,
        Err(d) => panic!("built-in library invalid: {d:?}"),
    }
}

fn run_to_budget(incident: &mut Incident) {
    while !incident.out_of_budget() {
        incident.step();
    }
}

#[test]
fn library_has_the_nine_basic_families() {
    let ids: Vec<String> = catalog().scenarios().iter().map(|s| s.id.clone()).collect();
    for id in firedrill_scenario::library::BASIC_FAMILIES {
        assert!(ids.iter().any(|x| x == id), "missing {id}");
    }
}

#[test]
fn every_family_pages_is_solvable_and_is_not_solved_by_waiting() {
    let catalog = catalog();
    let mut failures = Vec::new();
    for scenario in catalog.scenarios() {
        let control = scenario.faults.is_empty();
        for (seed, difficulty) in SEEDS.flat_map(|s| DIFFICULTIES.map(|d| (s, d))) {
            let instance = catalog
                .instance(&scenario.id, seed, difficulty)
                .expect("instance");
            let incident = match Incident::start(Arc::clone(&instance)) {
                Ok(i) => i,
                Err(e) => {
                    failures.push(format!(
                        "{} seed {seed} difficulty {difficulty}: {e}",
                        scenario.id
                    ));
                    continue;
                }
            };
            // The page is an alert that fired on the simulated series, at or after the minimum history.
            let fired = incident
                .alerts()
                .history()
                .iter()
                .any(|t| t.to == AlertState::Firing && t.t_s <= incident.page_s());
            if !fired || incident.page_s() < instance.min_history_s {
                failures.push(format!(
                    "{} seed {seed} difficulty {difficulty}: page without a firing alert",
                    scenario.id
                ));
            }

            let mut idle = incident.clone();
            run_to_budget(&mut idle);
            if !control && idle.mitigated() {
                failures.push(format!(
                    "{} seed {seed} difficulty {difficulty}: doing nothing reached the mitigated state",
                    scenario.id
                ));
            }

            let mut fixed = incident;
            for op in &instance.truth.remediation {
                if let Err(e) = fixed.apply(op, &Actor::oncall()) {
                    failures.push(format!(
                        "{} seed {seed} difficulty {difficulty}: remediation {op:?} refused: {e}",
                        scenario.id
                    ));
                }
            }
            run_to_budget(&mut fixed);
            if !fixed.mitigated() {
                failures.push(format!(
                    "{} seed {seed} difficulty {difficulty}: intended remediation did not mitigate",
                    scenario.id
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The seed picks the faulty service among every plausible one (every service its `target` parameter allows),
/// and there are more than a handful of those.
#[test]
fn seeds_vary_the_faulty_service_widely() {
    let catalog = catalog();
    for scenario in catalog.scenarios().iter().filter(|s| !s.faults.is_empty()) {
        let (spec, _) = topology_spec(scenario).expect("topology");
        let filter = scenario.parameters["target"]
            .service
            .as_ref()
            .expect("a service parameter");
        let plausible: BTreeSet<String> = candidates(&spec, filter)
            .into_iter()
            .map(|i| spec.services[i].name.clone())
            .collect();
        let mut picked = BTreeSet::new();
        for seed in SEEDS {
            let i = catalog.instance(&scenario.id, seed, 0.5).expect("instance");
            picked.insert(i.root_causes()[0].service.clone());
        }
        assert_eq!(
            picked, plausible,
            "{}: picked over 50 seeds against the plausible services",
            scenario.id
        );
        assert!(
            plausible.len() >= 5,
            "{}: only {plausible:?} are plausible",
            scenario.id
        );
    }
}

#[test]
fn difficulty_changes_the_problem_not_only_the_budget() {
    let catalog = catalog();
    for scenario in catalog.scenarios() {
        let easy = catalog.instance(&scenario.id, 11, 0.0).expect("easy");
        let hard = catalog.instance(&scenario.id, 11, 1.0).expect("hard");
        assert!(
            hard.scheduled.len() > easy.scheduled.len(),
            "{}: no more distractors at difficulty 1",
            scenario.id
        );
        assert!(
            hard.log_noise > easy.log_noise,
            "{}: no more log noise at difficulty 1",
            scenario.id
        );
    }
}

/// The catalog parses every alert expression once and instantiates with the parsed expressions: the instances
/// are those built by parsing at every instantiation.
#[test]
fn instances_from_pre_parsed_rules_equal_instances_parsed_afresh() {
    let catalog = catalog();
    for scenario in catalog.scenarios() {
        for seed in 0..2 {
            let cached = catalog.instance(&scenario.id, seed, 0.5).expect("instance");
            let fresh = firedrill_scenario::instantiate::instantiate(scenario, seed, 0.5)
                .expect("instance");
            assert_eq!(
                format!("{:?}", cached.alerts),
                format!("{:?}", fresh.alerts),
                "{} seed {seed}",
                scenario.id
            );
            assert_eq!(format!("{cached:?}"), format!("{fresh:?}"));
        }
    }
}
