//! `firedrill simulate`: run a scenario with no agent and report alerts, health and key metrics.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::Args;
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use firedrill_alerting::AlertState;
use firedrill_scenario::{Catalog, Incident};
use firedrill_world::{Health, ServiceFrame, ServiceId};
use serde_json::{Value, json};

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Scenario id.
    scenario: String,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Difficulty in [0, 1].
    #[arg(long, default_value_t = 0.5)]
    difficulty: f64,
    /// Simulated minutes to run after the page (default: the scenario's budget).
    #[arg(long)]
    minutes: Option<f64>,
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
    /// Include the ground truth.
    #[arg(long)]
    reveal: bool,
}

fn health_char(h: Health) -> char {
    match h {
        Health::Healthy => '.',
        Health::Degraded => 'd',
        Health::Unhealthy => 'U',
        Health::Down => 'X',
    }
}

fn key_metrics(f: &ServiceFrame) -> Value {
    json!({
        "rps": round(f.offered_rps as f64, 2),
        "error_ratio": round(f.error_ratio(), 4),
        "p99_ms": round(f.p99_ms(), 1),
        "ready": f.ready,
        "desired": f.desired,
        "cpu_utilisation": round(f.cpu_utilisation(), 3),
        "memory_mb_max": round(f.memory_mb_max(), 1),
    })
}

fn round(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    if x.is_finite() {
        (x * m).round() / m
    } else {
        0.0
    }
}

pub fn run(args: SimulateArgs, catalog: &Catalog) -> Result<ExitCode, String> {
    if !(0.0..=1.0).contains(&args.difficulty) {
        return Err(format!(
            "--difficulty must be in [0, 1], got {}",
            args.difficulty
        ));
    }
    if let Some(m) = args.minutes
        && !(0.0..=24.0 * 60.0).contains(&m)
    {
        return Err(format!("--minutes must be in [0, 1440], got {m}"));
    }
    let mut incident = catalog
        .start(&args.scenario, args.seed, args.difficulty)
        .map_err(|e| e.to_string())?;
    let page_s = incident.page_s();
    let minutes = args.minutes.unwrap_or(incident.instance().budget_s / 60.0);
    let end_s = page_s + minutes * 60.0;
    while incident.world().now_s() + 1e-9 < end_s {
        incident.step();
    }
    // The whole alert history is shown, including what a fast start skipped.
    incident.complete_alert_history();
    let hash = incident.digest().hex();
    if args.json {
        say!(
            "{}",
            serde_json::to_string(&json_report(&incident, &args, &hash))
                .map_err(|e| e.to_string())?
        );
    } else {
        print_human(&incident, &args, &hash);
    }
    Ok(ExitCode::SUCCESS)
}

fn alerts_json(incident: &Incident) -> Vec<Value> {
    let engine = incident.alerts();
    let mut grouped: BTreeMap<usize, Vec<Value>> = BTreeMap::new();
    for t in engine.history() {
        grouped.entry(t.instance).or_default().push(json!({
            "t_s": t.t_s,
            "minute_from_page": round((t.t_s - incident.page_s()) / 60.0, 2),
            "state": t.to,
            "value": round(t.value, 4),
        }));
    }
    grouped
        .into_iter()
        .map(|(instance, changes)| {
            let alert = engine.instance(instance);
            json!({
                "name": engine.rules()[alert.rule].name(),
                "labels": alert.labels,
                "changes": changes,
            })
        })
        .collect()
}

fn json_report(incident: &Incident, args: &SimulateArgs, hash: &str) -> Value {
    let world = incident.world();
    let topo = world.topology();
    let ring = world.history();
    let ticks: Vec<Value> = (ring.first_tick()..ring.end_tick())
        .map(|t| {
            let frames = ring.tick(t).unwrap_or(&[]);
            let services: BTreeMap<&str, Value> = frames
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let mut m = key_metrics(f);
                    m["health"] = json!(f.health.as_str());
                    (topo.service(ServiceId(i as u16)).name(), m)
                })
                .collect();
            json!({"tick": t, "t_s": t as f64 * world.tick_s(), "services": services})
        })
        .collect();
    let mut doc = json!({
        "scenario": args.scenario,
        "title": incident.instance().title,
        "seed": args.seed,
        "difficulty": args.difficulty,
        "tick_s": world.tick_s(),
        "page_s": incident.page_s(),
        "end_s": world.now_s(),
        "mitigated": incident.mitigated(),
        "ticks": ticks,
        "alerts": alerts_json(incident),
        "trajectory_hash": hash,
    });
    if args.reveal {
        doc["ground_truth"] = json!({
            "root_causes": incident.instance().root_causes(),
            "params": incident.instance().params,
            "evidence": incident.instance().truth.evidence,
        });
    }
    doc
}

fn print_human(incident: &Incident, args: &SimulateArgs, hash: &str) {
    let world = incident.world();
    let topo = world.topology();
    let page_s = incident.page_s();
    let fmt_t = |t: f64| {
        let m = (t - page_s) / 60.0;
        format!("{}{:.1}m", if m >= 0.0 { "+" } else { "" }, m)
    };
    say!(
        "{} — {}\nseed {}  difficulty {}  page at minute {:.1} of the world  ran {:.1} minutes after the page",
        args.scenario,
        incident.instance().title,
        args.seed,
        args.difficulty,
        page_s / 60.0,
        (world.now_s() - page_s) / 60.0
    );

    say!("\nalerts (times relative to the page):");
    let engine = incident.alerts();
    let mut any = false;
    for t in engine.history() {
        // Pending and pending-then-dropped alerts never reached a receiver.
        if t.to == AlertState::Pending
            || (t.from == AlertState::Pending && t.to == AlertState::Inactive)
        {
            continue;
        }
        any = true;
        let what = match t.to {
            AlertState::Firing => "FIRING  ",
            _ => "resolved",
        };
        let alert = engine.instance(t.instance);
        // Prometheus style, without the labels every alert of a service shares.
        let labels: Vec<String> = alert
            .labels
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "alertname" | "severity" | "job" | "namespace"))
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect();
        say!(
            "  {:>8}  {}  {}{{{}}}  value {:.3}",
            fmt_t(t.t_s),
            what,
            engine.rules()[t.rule].name(),
            labels.join(", "),
            t.value
        );
    }
    if !any {
        say!("  none");
    }

    // Health per minute from 30 minutes before the page to the end: '.' healthy, 'd' degraded,
    // 'U' unhealthy, 'X' down, '|' the page.
    let ring = world.history();
    let per_min = (60.0 / world.tick_s()).round().max(1.0) as u64;
    let page_tick = (page_s / world.tick_s()).round() as u64;
    let start = page_tick
        .saturating_sub(30 * per_min)
        .max(ring.first_tick());
    let width = topo.service_names().map(|n| n.len()).max().unwrap_or(8);
    say!(
        "\nhealth per minute ('.' healthy, 'd' degraded, 'U' unhealthy, 'X' down, '|' page), from {}:",
        fmt_t(start as f64 * world.tick_s())
    );
    for i in 0..topo.len() {
        let mut line = String::new();
        let mut t = start;
        while t < ring.end_tick() {
            if t <= page_tick && page_tick < t + per_min {
                line.push('|');
            }
            let worst = (t..(t + per_min).min(ring.end_tick()))
                .filter_map(|k| ring.get(k, i))
                .map(|f| f.health)
                .max()
                .unwrap_or_default();
            line.push(health_char(worst));
            t += per_min;
        }
        say!(
            "  {:width$}  {line}",
            topo.service(ServiceId(i as u16)).name()
        );
    }

    let at_page = ring.tick(page_tick);
    let mut table = Table::new();
    table
        .load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    table.set_header([
        "service",
        "health",
        "rps",
        "errors",
        "p99 ms",
        "ready",
        "cpu",
        "mem MiB (max)",
        "at page: errors / p99",
    ]);
    for (i, f) in world.frames().iter().enumerate() {
        let page = at_page
            .and_then(|p| p.get(i))
            .map(|p| format!("{:.1}% / {:.0}", p.error_ratio() * 100.0, p.p99_ms()))
            .unwrap_or_default();
        table.add_row([
            topo.service(ServiceId(i as u16)).name().to_string(),
            f.health.as_str().to_string(),
            format!("{:.1}", f.offered_rps),
            format!("{:.1}%", f.error_ratio() * 100.0),
            format!("{:.0}", f.p99_ms()),
            format!("{}/{}", f.ready, f.desired),
            format!("{:.0}%", f.cpu_utilisation() * 100.0),
            format!("{:.0} / {}", f.memory_mb_max(), f.memory_limit_mb),
            page,
        ]);
    }
    say!(
        "\nkey metrics at the end ({}):\n{table}",
        fmt_t(world.now_s())
    );
    say!("\nmitigated (sustained): {}", incident.mitigated());
    if args.reveal {
        say!("\nground truth:");
        for rc in incident.instance().root_causes() {
            say!(
                "  {} on {} ({}), onset minute {:.1} of the world",
                rc.fault_class,
                rc.service,
                rc.fault,
                rc.onset_s.unwrap_or(f64::NAN) / 60.0
            );
        }
        if incident.instance().root_causes().is_empty() {
            say!("  no fault");
        }
    }
    say!("\ntrajectory hash: {hash}");
}
