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
