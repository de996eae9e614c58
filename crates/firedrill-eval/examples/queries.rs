//! A fixed list of `query_logs` and `query_traces` steps, for measuring those two actions alone:
//! `cargo run --release -p firedrill-eval --example queries -- [episodes] [metrics]` (with `metrics`, the
//! `query_metrics` steps over 5, 15, 30 and 60 minutes of every page service instead), or under
//! `valgrind --tool=callgrind --toggle-collect='*Episode::act*'`.
//!
//! Episode `k` of the benchmark's workload is reset and, for every service of its page, each query below is
//! taken from the same snapshot (so every query reads the same world): logs over 5, 15 and 30 minutes at info,
//! warn and error (20 lines), and traces over 15 minutes with and without `errors_only`. The random agent's
//! queries take the same parameters. Prints the mean µs per action kind and a hash of every observation, which
//! must not change when only the cost of the queries does.
use std::sync::Arc;
use std::time::{Duration, Instant};

use firedrill_agents::page_services;
use firedrill_env::action::{LevelFilter, LogsParams, MetricsParams, TracesParams};
use firedrill_env::{Action, Env};
use firedrill_eval::bench::episode;

/// The `firedrill` binary's allocator, so that this measures what the binary does.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let episodes: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(9);
    let metrics = args.get(2).is_some_and(|a| a == "metrics");
    let catalog = Arc::new(firedrill_scenario::Catalog::builtin().expect("library"));
    let mut env = Env::new(Arc::clone(&catalog));
    let (mut logs, mut traces) = ((0u32, Duration::ZERO), (0u32, Duration::ZERO));
    let mut hash = 0u64;
    for k in 0..episodes {
        let spec = episode(k);
        let page = env
            .reset(&spec.scenario, spec.seed, spec.difficulty)
            .expect("reset");
        let snapshot = env.snapshot().expect("reset");
        let mut actions = Vec::new();
        for service in page_services(&page) {
            if metrics {
                for window in [5, 15, 30, 60] {
                    actions.push(Action::QueryMetrics(MetricsParams {
                        service: service.clone(),
                        window_minutes: Some(window),
                    }));
                }
                continue;
            }
            for window in [5, 15, 30] {
                for level in [LevelFilter::Info, LevelFilter::Warn, LevelFilter::Error] {
                    actions.push(Action::QueryLogs(LogsParams {
                        service: service.clone(),
                        window_minutes: Some(window),
                        level: Some(level),
                        limit: Some(20),
                    }));
                }
            }
            for errors_only in [false, true] {
                actions.push(Action::QueryTraces(TracesParams {
                    service: service.clone(),
                    window_minutes: Some(15),
                    errors_only,
                }));
            }
        }
        for action in &actions {
            env.restore(snapshot.clone());
            let t = Instant::now();
            let step = env.step(action).expect("step");
            let spent = t.elapsed();
            let slot = if matches!(action, Action::QueryLogs(_) | Action::QueryMetrics(_)) {
                &mut logs
            } else {
                &mut traces
            };
            slot.0 += 1;
            slot.1 += spent;
            let text = serde_json::to_string(&step.observation).expect("observation");
            hash = xxhash_rust::xxh3::xxh3_64_with_seed(text.as_bytes(), hash);
        }
    }
    let first = if metrics {
        "query_metrics"
    } else {
        "query_logs"
    };
    for (name, (n, d)) in [(first, logs), ("query_traces", traces)] {
        if n == 0 {
            continue;
        }
        println!(
            "  {name:<18} {n:>6} {:>9.1} µs",
            d.as_secs_f64() * 1e6 / n.max(1) as f64
        );
    }
    println!("observations hash {hash:016x}");
}
