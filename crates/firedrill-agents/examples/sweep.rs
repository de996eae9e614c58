//! Runs agents over the basic suite and prints per-family success and mean score (a quick check while tuning;
//! `firedrill eval` is the real tool).
//! `cargo run --release -p firedrill-agents --example sweep -- heuristic 10`
use std::sync::Arc;
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let agent = a.get(1).map(String::as_str).unwrap_or("heuristic");
    let n: u64 = a.get(2).and_then(|s| s.parse().ok()).unwrap_or(10);
    let only = a.get(3).cloned();
    let catalog = Arc::new(firedrill_scenario::Catalog::builtin().expect("library"));
    let (mut total, mut count) = (0.0, 0);
    for fam in firedrill_scenario::library::BASIC_FAMILIES {
        if only.as_deref().is_some_and(|o| o != fam) {
            continue;
        }
        let (mut ok, mut score, mut ret) = (0, 0.0, 0.0);
        let mut fails = Vec::new();
        for seed in 0..n {
            let r =
                firedrill_agents::run_episode(catalog.clone(), agent, fam, seed, 0.5).expect("run");
            if r.grade.success {
                ok += 1
            } else {
                fails.push(seed)
            }
            score += r.grade.score;
            ret += r.episode_return;
        }
        total += score;
        count += n;
        println!(
            "{fam:<24} success {ok}/{n} score {:.3} return {:.3} fails {:?}",
            score / n as f64,
            ret / n as f64,
            fails
        );
    }
    println!("overall mean score {:.3}", total / count as f64);
}
