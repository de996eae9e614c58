#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
#[inline(never)]
fn fork(inc: &firedrill_scenario::Incident) -> firedrill_scenario::Incident {
    inc.clone()
}
#[inline(never)]
fn fork_world(w: &firedrill_world::World) -> firedrill_world::World {
    w.clone()
}
#[inline(never)]
fn fork_rules(w: &firedrill_alerting::RuleEngine) -> firedrill_alerting::RuleEngine {
    w.clone()
}
fn main() {
    let catalog = firedrill_scenario::Catalog::builtin().expect("library");
    let inc = catalog.start("db_pool_exhaustion", 1, 0.5).expect("start");
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    for _ in 0..n {
        std::hint::black_box(fork(&inc));
        std::hint::black_box(fork_world(inc.world()));
        std::hint::black_box(fork_rules(inc.alerts()));
    }
}
