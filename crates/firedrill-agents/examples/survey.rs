//! Prints, for one instance at the page, the change history and every service's health diagnostic, warning
//! logs and metrics (a debugging aid for the heuristic's signatures).
//! `cargo run --release -p firedrill-agents --example survey -- oom_crash 3`
use std::sync::Arc;

use firedrill_env::Env;
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let catalog = Arc::new(firedrill_scenario::Catalog::builtin().expect("library"));
    let scenario = a.get(1).map(String::as_str).unwrap_or("oom_crash");
    let seed: u64 = a.get(2).and_then(|s| s.parse().ok()).unwrap_or(0);
    let what = a.get(3).map(String::as_str).unwrap_or("hlm");
    let mut env = Env::new(catalog);
    let page = env.reset(scenario, seed, 0.5).expect("reset");
    println!("{}", page.to_text());
    let services = firedrill_agents::page_services(&page);
    let run = |env: &mut Env, j: String| {
        let s = env.step_json(&j).expect("step");
        println!(">>> {j}\n{}", s.observation.to_text());
    };
    run(&mut env, r#"{"action":"query_deploys"}"#.into());
    for s in &services {
        if what.contains('h') {
            run(
                &mut env,
                format!(r#"{{"action":"run_diagnostic","service":"{s}","check":"health"}}"#),
            );
        }
        if what.contains('l') {
            run(
                &mut env,
                format!(r#"{{"action":"query_logs","service":"{s}","level":"warn","limit":8}}"#),
            );
        }
        if what.contains('m') {
            run(
                &mut env,
                format!(r#"{{"action":"query_metrics","service":"{s}","window_minutes":30}}"#),
            );
        }
        if what.contains('c') {
            run(
                &mut env,
                format!(r#"{{"action":"run_diagnostic","service":"{s}","check":"connectivity"}}"#),
            );
        }
    }
}
