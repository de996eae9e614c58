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

/// The times an alert shows are simulated times: at the page, every firing alert became active during the
/// history (at most an hour and a half before the page, not after it), and the page's `startsAt` is that
/// moment as a date, before the page's own time.
#[test]
fn alerts_became_active_before_the_page_within_the_history() {
    let catalog = Arc::new(Catalog::builtin().expect("library"));
    for family in firedrill_scenario::library::BASIC_FAMILIES {
        let mut env = Env::new(Arc::clone(&catalog));
        let page = env.reset(family, 2, 0.5).expect("reset");
        assert!(!page.firing_alerts.is_empty(), "{family}");
        for a in &page.firing_alerts {
            assert!(
                (-90.0..=0.0).contains(&a.active_since_minutes),
                "{family}: {} active since t{:+} min",
                a.name,
                a.active_since_minutes
            );
        }
        let json = serde_json::to_value(&page).expect("json");
        let alerts = json["content"]["alertmanager"]["alerts"]
            .as_array()
            .expect("alerts");
        let ep = env.episode().expect("episode");
        let world = ep.incident().world();
        let page_date = firedrill_telemetry::logs::rfc3339_ms(
            world.epoch_unix_s() * 1000 + (ep.incident().page_s() * 1000.0) as i64,
        );
        for a in alerts {
            let starts = a["startsAt"].as_str().expect("startsAt");
            // RFC 3339 in UTC with milliseconds: text order is time order.
            assert!(
                starts <= page_date.as_str() && starts[..4] == page_date[..4],
                "{family}: startsAt {starts}, page at {page_date}"
            );
        }
    }
}
