//! Forks db_pool_exhaustion seed 1 (difficulty 0.5) at its page N times: the incident whole, its world alone and
//! its rule engine alone (for profilers: a fixed amount of work), e.g.
//! `valgrind --tool=callgrind --toggle-collect='fork::fork_incident' target/release/examples/fork 100`, divided
//! by N (`fork::fork_world`, `fork::fork_rules` for the parts).

/// The `firedrill` binary's allocator, so that the counts are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[inline(never)]
fn fork_incident(incident: &firedrill_scenario::Incident) -> firedrill_scenario::Incident {
    incident.clone()
}

#[inline(never)]
fn fork_world(world: &firedrill_world::World) -> firedrill_world::World {
    world.clone()
}

#[inline(never)]
fn fork_rules(rules: &firedrill_alerting::RuleEngine) -> firedrill_alerting::RuleEngine {
    rules.clone()
}

fn main() {
    let catalog = firedrill_scenario::Catalog::builtin().expect("library");
    let incident = catalog.start("db_pool_exhaustion", 1, 0.5).expect("start");
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100);
    for _ in 0..n {
        std::hint::black_box(fork_incident(&incident));
        std::hint::black_box(fork_world(incident.world()));
        std::hint::black_box(fork_rules(incident.alerts()));
    }
    println!("{n} forks of each");
}
