//! Applies the intended remediation at the page and prints, minute by minute, whether the mitigated state
//! holds and which services break their objective (a debugging aid for scenario authors).
use firedrill_scenario::Catalog;
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let cat = Catalog::builtin().expect("library");
    let seed: u64 = a[2].parse().unwrap_or(0);
    let d: f64 = a
        .get(3)
        .and_then(|x| x.parse().ok())
        .unwrap_or((seed % 3) as f64 / 2.0);
    let mut inc = cat.start(&a[1], seed, d).expect("start");
    println!(
        "{:?} page {:.1}",
        inc.instance().root_causes(),
        inc.page_s() / 60.0
    );
    for op in inc.instance().truth.remediation.clone() {
        println!(
            "apply {op:?}: {:?}",
            inc.apply(&op, &firedrill_world::Actor::oncall())
        );
    }
    let mut n = 0;
    while !inc.out_of_budget() {
        inc.step();
        n += 1;
        if n % 4 == 0 || std::env::var("ALL").is_ok() {
            let w = inc.world();
            let bad: Vec<String> = (0..w.topology().len())
                .filter(|&i| w.frames()[i].error_ratio() > 0.02)
                .map(|i| {
                    format!(
                        "{}={:.3}",
                        w.topology().services[i].spec.name,
                        w.frames()[i].error_ratio()
                    )
                })
                .collect();
            println!(
                "t={:.1} now={} sustained={} over={:?}",
                w.now_s() / 60.0,
                inc.mitigated_now(),
                inc.mitigated(),
                bad
            );
        }
    }
}
