use firedrill_scenario::Catalog;
use firedrill_world::Actor;
fn main() {
    let cat = match Catalog::builtin() {
        Ok(c) => c,
        Err(d) => {
            for x in d {
                eprintln!("{x}");
            }
            return;
        }
    };
    let args: Vec<String> = std::env::args().collect();
    let seeds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3);
    for s in cat.scenarios() {
        for seed in 0..seeds {
            let inst = cat.instance(&s.id, seed, 0.5).unwrap();
            let target = inst
                .root_causes()
                .first()
                .map(|r| r.service.clone())
                .unwrap_or_default();
            match firedrill_scenario::Incident::start(inst.clone()) {
                Err(e) => println!("{} seed {seed} target {target}: {e}", s.id),
                Ok(mut inc) => {
                    let firing: Vec<String> = inc
                        .alerts()
                        .active(inc.world().topology())
                        .iter()
                        .filter(|a| a.state == firedrill_telemetry::AlertState::Firing)
                        .map(|a| format!("{}/{}", a.labels["alertname"], a.labels["service"]))
                        .collect();
                    let onset = inc
                        .fault_onsets()
                        .first()
                        .copied()
                        .flatten()
                        .unwrap_or(f64::NAN);
                    let mut noop = inc.clone();
                    while !noop.out_of_budget() {
                        noop.step();
                    }
                    for op in inst.truth.remediation.clone() {
                        if let Err(e) = inc.apply(&op, &Actor::oncall()) {
                            println!("  op error {e}");
                        }
                    }
                    let mut t_mit = None;
                    while !inc.out_of_budget() {
                        inc.step();
                        if inc.mitigated() && t_mit.is_none() {
                            t_mit = Some((inc.world().now_s() - inc.page_s()) / 60.0);
                        }
                    }
                    println!(
                        "{} seed {seed} target {target} onset {:.1} page {:.1} firing {:?} | noop mitigated {} | oracle mitigated {:?}",
                        s.id,
                        onset / 60.0,
                        inc.page_s() / 60.0,
                        firing,
                        noop.mitigated(),
                        t_mit
                    );
                }
            }
        }
    }
}
