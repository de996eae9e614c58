//! Prints key signals of chosen services every minute of a scenario's first two hours (a debugging aid).
use firedrill_scenario::{Catalog, Incident};
fn main() {
    let cat = Catalog::builtin().expect("library");
    let a: Vec<String> = std::env::args().collect();
    let d: f64 = std::env::var("D")
        .ok()
        .and_then(|x| x.parse().ok())
        .unwrap_or(0.5);
    let inst = cat
        .instance(&a[1], a[2].parse().unwrap_or(0), d)
        .expect("instance");
    println!("{:?}", inst.root_causes());
    let svc: Vec<String> = a[3].split(',').map(|s| s.to_string()).collect();
    let fix_at: Option<u64> = a.get(4).and_then(|x| x.parse().ok());
    let remediation = inst.truth.remediation.clone();
    let mut inc = Incident::build(inst);
    for tick in 0..480 {
        if fix_at == Some(tick) {
            for op in &remediation {
                println!(
                    "apply {op:?}: {:?}",
                    inc.apply(op, &firedrill_world::Actor::oncall())
                );
            }
        }
        inc.step();
    }
    let world = inc.world();
    let ring = world.history();
    for t in (ring.first_tick()..ring.end_tick()).step_by(4) {
        let mut line = format!("{:6.1}m", t as f64 * world.tick_s() / 60.0);
        for s in &svc {
            let id = world.topology().service_id(s).expect("service");
            let f = ring.get(t, id.index()).expect("frame");
            line += &format!(
                " | {s}: off {:.0} adm {:.0} err {:.3} rej {:.0} p50 {:.0} p99 {:.0} rdy {}/{} cpu {:.2} pool {:.1}/{:.0} mem {:.0} {:?}",
                f.offered_rps,
                f.admitted_rps,
                f.error_ratio(),
                f.rejected_rps,
                f.latency_median_ms,
                f.p99_ms(),
                f.ready,
                f.desired,
                f.cpu_utilisation(),
                f.pool_in_use,
                f.pool_max,
                f.memory_mb_max(),
                f.health
            );
        }
        println!("{line}");
    }
}
