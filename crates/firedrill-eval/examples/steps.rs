//! Runs one phase of the throughput benchmark alone, for profiling:
//! `cargo run --release -p firedrill-eval --example steps -- [steps|text|resets|vec1|vec2] [seconds] [slots]`
//! (`slots`: VecEnv slots in all, default the benchmark's; for vec1/vec2, `seconds` may be `Nsteps`: exactly N
//! environment steps, a fixed amount of work for instruction counts), or under
//! `perf record --call-graph dwarf` / `valgrind --tool=callgrind`.
//!
//! `episodes N` plays the first N episodes of the steps phase whole (reset, then the random agent's steps to
//! the end), untimed: the same work every run, for instruction counts of its resets and steps apart, e.g.
//! `valgrind --tool=callgrind --toggle-collect='*Env::step*' target/release/examples/steps episodes 100` (or
//! `'*Env::reset*'`), divided by the steps (or episodes) it prints. `episodes N text` also renders every
//! observation as text (`'*Observation::to_text*'` counts that alone).
//!
//! `groups G N` times `VecEnv::reset` of G slots on one thread over N starts (the benchmark's first N episodes):
//! once with a schedule that repeats each start G times in a row (a group of rollouts per start: one slot
//! starts it, the others fork it) and once with N × G distinct starts; it prints the mean per slot of each.
use std::sync::Arc;

/// The `firedrill` binary's allocator, so that this measures what `firedrill bench` does.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use firedrill_eval::bench::{
    SLOTS_PER_THREAD, VecBudget, measure_resets, measure_steps, measure_vec,
};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let phase = args.get(1).map(String::as_str).unwrap_or("steps");
    let seconds: f64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let catalog = Arc::new(firedrill_scenario::Catalog::builtin().expect("library"));
    match phase {
        "episodes" => {
            let n: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100);
            let text = args.get(3).is_some_and(|a| a == "text");
            let (steps, episodes) = play_episodes(&catalog, n, text);
            println!("{steps} steps in {episodes} episodes");
        }
        "resets" => {
            let (n, d) = measure_resets(&catalog, seconds).expect("resets");
            println!("{n} resets, {:.0}/s", n as f64 / d.as_secs_f64());
        }
        "vec1" | "vec2" => {
            let threads = if phase == "vec1" { 1 } else { 2 };
            let slots: usize = args
                .get(3)
                .and_then(|s| s.parse().ok())
                .unwrap_or(2 * SLOTS_PER_THREAD);
            // `[seconds]` may be a fixed amount of work instead: `2000steps`, for instruction counts.
            let budget = match args.get(2).and_then(|s| s.strip_suffix("steps")) {
                Some(n) => VecBudget::Steps(n.parse().expect("a step count")),
                None => VecBudget::Seconds(seconds),
            };
            let (n, d) = measure_vec(&catalog, budget, slots, threads).expect("vec");
            println!(
                "{n} steps on {threads} threads, {:.0}/s",
                n as f64 / d.as_secs_f64()
            );
        }
        // `vecpause THREADS PAUSE_MS STEPS`: VecEnv loop rates with a policy pause, prefetching off then on.
        "vecpause" => {
            let threads: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2);
            let ms: f64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(2.0);
            let steps: u64 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(20_000);
            for prefetch in [false, true] {
                let policy = firedrill_eval::bench::PolicyPause {
                    pause: std::time::Duration::from_secs_f64(ms / 1000.0),
                    prefetch,
                };
                let r = firedrill_eval::bench::measure_vec_with(
                    &catalog,
                    VecBudget::Steps(steps),
                    SLOTS_PER_THREAD * threads,
                    threads,
                    &policy,
                )
                .expect("vec");
                println!(
                    "prefetch {prefetch}: {} steps, stepping {:.3} s, paused {:.3} s, {:.0} steps/s of the loop",
                    r.steps,
                    r.stepping.as_secs_f64(),
                    r.paused.as_secs_f64(),
                    r.loop_rate()
                );
            }
        }
        "groups" => {
            let g: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(8);
            let n: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(50);
            let grouped: Vec<_> = (0..n)
                .flat_map(|k| std::iter::repeat_n(firedrill_eval::bench::episode(k), g))
                .collect();
            let distinct: Vec<_> = (0..n * g as u64)
                .map(firedrill_eval::bench::episode)
                .collect();
            for (name, schedule) in [("grouped", grouped), ("distinct", distinct)] {
                let mut v = firedrill_env::VecEnv::new(
                    Arc::clone(&catalog),
                    g,
                    schedule,
                    firedrill_env::AutoReset::Disabled,
                    1,
                );
                let t = std::time::Instant::now();
                for _ in 0..n {
                    for r in v.reset() {
                        r.expect("reset");
                    }
                }
                println!(
                    "{name}: {:.1} µs per slot reset ({} forks)",
                    t.elapsed().as_secs_f64() * 1e6 / (n as f64 * g as f64),
                    v.reused_starts()
                );
            }
        }
        p => {
            let r = measure_steps(&catalog, seconds, p == "text").expect("steps");
            println!(
                "{} steps in {} episodes, {:.0}/s",
                r.steps,
                r.episodes,
                r.steps as f64 / r.spent.as_secs_f64()
            );
            for (k, (n, d)) in &r.per_kind {
                println!(
                    "  {:<18} {:>6} {:>9.1} µs",
                    k.name(),
                    n,
                    d.as_secs_f64() * 1e6 / *n as f64
                );
            }
        }
    }
}

/// Plays the first `n` episodes of the steps phase whole with the random agent, rendering every observation
/// as text when `text`; returns (steps, episodes).
fn play_episodes(catalog: &Arc<firedrill_scenario::Catalog>, n: u64, text: bool) -> (u64, u64) {
    use firedrill_agents::{Agent, RandomAgent};
    let mut env = firedrill_env::Env::new(Arc::clone(catalog));
    let mut steps = 0;
    for k in 0..n {
        let spec = firedrill_eval::bench::episode(k);
        let mut obs = env
            .reset(&spec.scenario, spec.seed, spec.difficulty)
            .expect("reset");
        let mut agent = RandomAgent::new(spec.seed);
        let mut chars = 0usize;
        if text {
            chars += obs.to_text().len();
        }
        loop {
            let step = env.step(&agent.act(&obs)).expect("step");
            steps += 1;
            if text {
                chars += step.observation.to_text().len();
            }
            if step.terminated || step.truncated {
                break;
            }
            obs = step.observation;
        }
        std::hint::black_box(chars);
    }
    (steps, n)
}
