//! The environment's reset and step, per basic family and per action kind (divan).
//!
//! Run with `cargo bench -p firedrill-eval --bench env`; `firedrill bench` measures the same operations as
//! throughput over a fixed workload, and docs/benchmarks.md records both.

use std::sync::Arc;

use firedrill_env::action::{
    DiagnosticCheck, DiagnosticParams, LogsParams, MetricsParams, ServiceParams, TracesParams,
    WaitParams,
};
use firedrill_env::{Action, Env};
use firedrill_scenario::Catalog;

const FAMILIES: [&str; 9] = firedrill_scenario::library::BASIC_FAMILIES;

/// The `firedrill` binary's allocator, so that these figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    divan::main();
}

fn catalog() -> Arc<Catalog> {
    Arc::new(Catalog::builtin().expect("library"))
}

/// An environment at the page of `family`, seed 1, difficulty 0.5, and the first alerted service.
fn at_page(family: &str) -> (Env, String) {
    let mut env = Env::new(catalog());
    let page = env.reset(family, 1, 0.5).expect("reset");
    let service = page
        .firing_alerts
        .first()
        .map(|a| a.service.clone())
        .unwrap_or_else(|| "frontend".into());
    (env, service)
}

/// `Env::reset`: instantiate, simulate the history to the page, build the page observation.
#[divan::bench(args = FAMILIES)]
fn reset(bencher: divan::Bencher, family: &str) {
    let mut env = Env::new(catalog());
    bencher.bench_local(|| env.reset(family, 1, 0.5).expect("reset"));
}

/// The action kinds measured one by one, on the first alerted service of db_pool_exhaustion at the page.
const KINDS: [&str; 7] = [
    "describe_service",
    "query_metrics",
    "query_logs",
    "query_traces",
    "run_diagnostic",
    "query_deploys",
    "wait_1min",
];

fn action(kind: &str, service: &str) -> Action {
    let service = service.to_string();
    match kind {
        "describe_service" => Action::DescribeService(ServiceParams { service }),
        "query_metrics" => Action::QueryMetrics(MetricsParams {
            service,
            window_minutes: None,
        }),
        "query_logs" => Action::QueryLogs(LogsParams {
            service,
            window_minutes: None,
            level: None,
            limit: None,
        }),
        "query_traces" => Action::QueryTraces(TracesParams {
            service,
            window_minutes: None,
            errors_only: false,
        }),
        "run_diagnostic" => Action::RunDiagnostic(DiagnosticParams {
            service,
            check: DiagnosticCheck::Health,
        }),
        "query_deploys" => {
            Action::QueryDeploys(firedrill_env::action::DeploysParams { service: None })
        }
        _ => Action::Wait(WaitParams { minutes: 1.0 }),
    }
}

/// One `Env::step` with a structured observation (the fork of the episode it steps is not timed).
#[divan::bench(args = KINDS)]
fn step(bencher: divan::Bencher, kind: &str) {
    let (env, service) = at_page("db_pool_exhaustion");
    let a = action(kind, &service);
    bencher
        .with_inputs(|| env.clone())
        .bench_local_refs(|e| e.step(&a).expect("step"));
}

/// One `Env::step` followed by `Observation::to_text()`.
#[divan::bench(args = KINDS)]
fn step_text(bencher: divan::Bencher, kind: &str) {
    let (env, service) = at_page("db_pool_exhaustion");
    let a = action(kind, &service);
    bencher
        .with_inputs(|| env.clone())
        .bench_local_refs(|e| e.step(&a).expect("step").observation.to_text());
}
