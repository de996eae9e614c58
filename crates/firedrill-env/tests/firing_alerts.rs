//! The firing alerts an observation shows are those of the alert engine at that moment, whatever the caching.

use std::sync::Arc;

use firedrill_alerting::AlertState;
use firedrill_env::action::{Action, RestartParams, WaitParams};
use firedrill_env::{Env, Observation};
use firedrill_scenario::Catalog;

fn engine_view(env: &Env) -> Vec<(String, String, String, f64)> {
    let ep = env.episode().expect("episode");
    let inc = ep.incident();
    let page = inc.page_s();
    inc.alerts()
        .active()
        .into_iter()
        .filter(|a| a.state == AlertState::Firing)
        .map(|a| {
            (
                a.labels["alertname"].clone(),
                a.labels["service"].clone(),
                a.labels["severity"].clone(),
                a.active_since_s - page,
            )
        })
        .collect()
}

fn shown(obs: &Observation) -> Vec<(String, String, String, f64)> {
    obs.firing_alerts
        .iter()
        .map(|a| {
            (
                a.name.clone(),
                a.service.clone(),
                a.severity.clone(),
                a.active_since_minutes * 60.0,
            )
        })
        .collect()
}

fn same(a: &[(String, String, String, f64)], b: &[(String, String, String, f64)]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.0 == y.0 && x.1 == y.1 && x.2 == y.2 && (x.3 - y.3).abs() < 1.0)
}

#[test]
fn observations_show_the_alerts_firing_at_each_step() {
    let catalog = Arc::new(Catalog::builtin().expect("library"));
    for family in firedrill_scenario::library::BASIC_FAMILIES {
        let mut env = Env::new(Arc::clone(&catalog));
        let page = env.reset(family, 2, 0.5).expect("reset");
        assert!(same(&shown(&page), &engine_view(&env)), "{family} page");
        let mut changes = 0;
        let mut last = shown(&page);
        for k in 0..40 {
            // Restarting the first alerted service makes alerts come and go; waiting lets them settle.
            let action = match (k % 4, last.first()) {
                (1, Some(a)) => Action::RestartService(RestartParams {
                    service: a.1.clone(),
                    memory_mb: None,
                    cpu_millis: None,
                }),
                _ => Action::Wait(WaitParams { minutes: 1.0 }),
            };
            let step = env.step(&action).expect("step");
            let now = shown(&step.observation);
            assert!(same(&now, &engine_view(&env)), "{family} step {k}");
            if !same(&now, &last) {
                changes += 1;
            }
            last = now;
            if step.terminated || step.truncated {
                break;
            }
        }
        // The check means something only if the firing set changed at least once somewhere.
        if family == "oom_crash" {
            assert!(changes > 0, "no alert changed in {family}");
        }
    }
}
