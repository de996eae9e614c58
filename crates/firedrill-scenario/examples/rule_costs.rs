//! What each alert rule costs to evaluate: `rule_costs INDEX N` starts db_pool_exhaustion seed 1 (difficulty 0.5)
//! to its page, catches a fresh engine holding only rule INDEX (`all`: every rule) up to it, then steps N ticks
//! evaluating as an incident does (one evaluation every fourth tick). Under callgrind,
//! `--toggle-collect='firedrill_alerting::engine::RuleEngine::evaluate'` counts the evaluations, the incident's
//! start included: run once with `N = 0` and subtract, then divide by the evaluations it prints.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let inc = firedrill_scenario::Catalog::builtin()
        .expect("library")
        .start("db_pool_exhaustion", 1, 0.5)
        .expect("start");
    let instance = inc.instance();
    let rules: Vec<_> = match args.get(1).map(String::as_str) {
        Some("all") | None => instance.alerts.clone(),
        Some(i) => {
            let i: usize = i.parse().expect("a rule index or `all`");
            vec![
                instance
                    .alerts
                    .get(i)
                    .expect("a rule index in range")
                    .clone(),
            ]
        }
    };
    let n: u64 = args.get(2).and_then(|x| x.parse().ok()).unwrap_or(400);
    let mut engine = firedrill_alerting::RuleEngine::new(rules, instance.alert_interval_ticks);
    let mut world = inc.world().clone();
    // The evaluations due by the page first, so that each tick below evaluates when an incident's would.
    engine.evaluate(&world);
    let before = engine.evaluations();
    for _ in 0..n {
        world.step();
        engine.evaluate(&world);
    }
    eprintln!(
        "{} evaluations after the page",
        engine.evaluations() - before
    );
}
