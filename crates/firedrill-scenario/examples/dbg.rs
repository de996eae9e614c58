use firedrill_scenario::Catalog;
use firedrill_world::{Actor, Operation};
fn main() {
    let mut inc = Catalog::builtin()
        .unwrap()
        .start("rate_limit_exhaustion", 4, 0.5)
        .unwrap();
    let name = inc.instance().root_causes()[0].service.clone();
    let t = inc.service_id(&name).unwrap();
    println!(
        "{name} {:?}",
        inc.apply(
            &Operation::SetConfig {
                service: t,
                key: "rate_limit.rps_per_replica".into(),
                value: "1000".into()
            },
            &Actor::oncall()
        )
    );
    for _ in 0..6 {
        inc.step();
        let f = inc.world().frame(t);
        println!(
            "off {} adm {} rej {} fx {:?}",
            f.offered_rps,
            f.admitted_rps,
            f.rejected_rps,
            inc.world().service(t).fx.rate_limit_rps
        );
    }
}
