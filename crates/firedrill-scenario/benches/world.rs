//! Reset (world built and run through its history until the page) and one tick, per basic family.
//!
//! Run with `cargo bench -p firedrill-scenario --bench world`; results are written up in docs/benchmarks.md.

use std::sync::Arc;

use firedrill_scenario::{Catalog, Incident, Instance};

const FAMILIES: [&str; 9] = firedrill_scenario::library::BASIC_FAMILIES;

/// The `firedrill` binary's allocator, so that these figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    divan::main();
}

fn instance(family: &str) -> Arc<Instance> {
    Catalog::builtin()
        .expect("library")
        .instance(family, 1, 0.5)
        .expect("instance")
}

/// Reset: build the world and simulate its history (at least 60 minutes) up to the page.
#[divan::bench(args = FAMILIES)]
fn reset(bencher: divan::Bencher, family: &str) {
    let inst = instance(family);
    bencher.bench(|| Incident::start(Arc::clone(&inst)).expect("start"));
}

/// One tick of the twelve-service world after the page (world and fault program, no telemetry rendering).
#[divan::bench(args = FAMILIES)]
fn tick(bencher: divan::Bencher, family: &str) {
    let incident = Incident::start(instance(family)).expect("start");
    bencher
        .with_inputs(|| incident.clone())
        .bench_local_refs(|inc| inc.step());
}

/// One tick of the bare world (no alert evaluation, no fault program).
#[divan::bench(args = FAMILIES)]
fn world_step(bencher: divan::Bencher, family: &str) {
    let incident = Incident::start(instance(family)).expect("start");
    bencher
        .with_inputs(|| incident.world().clone())
        .bench_local_refs(|w| w.step());
}

/// Ticks in a row for [`world_ticks_after_page`].
const TICKS_IN_A_ROW: usize = 100;

/// The bare world's first hundred ticks after the page, in a row on one world, as an environment steps it: the
/// time per tick without the cold caches of a fresh clone that [`world_step`] times (divan reports the time of
/// the hundred and their rate in ticks per second).
#[divan::bench(args = FAMILIES)]
fn world_ticks_after_page(bencher: divan::Bencher, family: &str) {
    let incident = Incident::start(instance(family)).expect("start");
    bencher
        .counter(divan::counter::ItemsCount::new(TICKS_IN_A_ROW))
        .with_inputs(|| incident.world().clone())
        .bench_local_refs(|w| {
            for _ in 0..TICKS_IN_A_ROW {
                w.step();
            }
        });
}

/// Forking an incident at the page (`Incident::clone`): what a snapshot of an episode, or a reset to the start
/// the environment kept, costs. The hour before the page is shared by the fork, not copied.
#[divan::bench(args = FAMILIES)]
fn fork_at_page(bencher: divan::Bencher, family: &str) {
    let incident = Incident::start(instance(family)).expect("start");
    bencher.bench_local(|| incident.clone());
}
