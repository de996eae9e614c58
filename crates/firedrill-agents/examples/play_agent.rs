//! Plays one episode with a built-in agent and prints every observation as text (a debugging aid).
//! `cargo run --release -p firedrill-agents --example play_agent -- heuristic oom_crash 3`
use std::sync::Arc;
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let catalog = Arc::new(firedrill_scenario::Catalog::builtin().expect("library"));
    let agent = a.get(1).map(String::as_str).unwrap_or("oracle");
    let scenario = a.get(2).map(String::as_str).unwrap_or("oom_crash");
    let seed: u64 = a.get(3).and_then(|s| s.parse().ok()).unwrap_or(0);
    let d: f64 = a.get(4).and_then(|s| s.parse().ok()).unwrap_or(0.5);
    let rec = firedrill_agents::run_episode(catalog, agent, scenario, seed, d).expect("episode");
    println!("{}", rec.page.to_text());
    for s in &rec.steps {
        println!(">>> {}", s.action);
        println!("{}", s.observation.to_text());
        println!("reward {:?}", s.reward);
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&rec.grade).unwrap_or_default()
    );
    println!("return {:.3}", rec.episode_return);
}
