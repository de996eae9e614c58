//! `firedrill scenarios list | show | validate | schema`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use firedrill_scenario::instantiate::{candidates, topology_spec};
use firedrill_scenario::load::{load_file, scenario_files};
use firedrill_scenario::model::Scenario;
use firedrill_scenario::{LoadError, instantiate};
use serde_json::json;

#[derive(Debug, Subcommand)]
pub enum ScenariosCommand {
    /// List scenarios: id, tier, fault classes, title.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a scenario's public description and parameter space.
    Show {
        /// Scenario id.
        id: String,
        /// Also show the ground truth and the human-only description.
        #[arg(long)]
        reveal: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check scenario files or directories; every problem is reported as file:line:column.
    Validate {
        /// Files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Print the JSON Schema of scenario files.
    Schema,
}

fn classes(s: &Scenario) -> Vec<String> {
    let set: BTreeSet<&str> = s.faults.iter().map(|f| f.class.as_str()).collect();
    if set.is_empty() {
        vec!["no_fault".to_string()]
    } else {
        set.into_iter().map(String::from).collect()
    }
}

pub fn run(command: ScenariosCommand, extra: &[PathBuf]) -> Result<ExitCode, String> {
    match command {
        ScenariosCommand::List { json } => {
            let catalog = crate::catalog(extra)?;
            if json {
                let items: Vec<_> = catalog
                    .scenarios()
                    .iter()
                    .map(|s| json!({"id": s.id, "tier": s.tier, "fault_classes": classes(s), "title": s.title, "tags": s.tags}))
                    .collect();
                say!(
                    "{}",
                    serde_json::to_string_pretty(&items).map_err(|e| e.to_string())?
                );
            } else {
                let mut table = Table::new();
                table
                    .load_style(UTF8_FULL_CONDENSED)
                    .set_content_arrangement(ContentArrangement::Dynamic);
                table.set_header(["id", "tier", "fault classes", "title"]);
                for s in catalog.scenarios() {
                    table.add_row([
                        s.id.clone(),
                        format!("{:?}", s.tier).to_lowercase(),
                        classes(s).join(", "),
                        s.title.clone(),
                    ]);
                }
                say!("{table}");
            }
            Ok(ExitCode::SUCCESS)
        }
        ScenariosCommand::Show { id, reveal, json } => {
            let catalog = crate::catalog(extra)?;
            let s = catalog.require(&id).map_err(|e| e.to_string())?;
            show(s, reveal, json)
        }
        ScenariosCommand::Validate { paths } => validate(&paths),
        ScenariosCommand::Schema => {
            let schema = firedrill_scenario::scenario_schema();
            say!(
                "{}",
                serde_json::to_string_pretty(&schema).map_err(|e| e.to_string())?
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The parameter space in words, without revealing which parameter picks the faulty service.
fn parameter_space(s: &Scenario) -> Vec<(String, String)> {
    let spec = topology_spec(s).ok().map(|(t, _)| t);
    s.parameters
        .iter()
        .map(|(name, p)| {
            let text = if let Some(c) = &p.choice {
                format!("one of {} values", c.len())
            } else if let Some(r) = p.range {
                match p.hard {
                    Some(h) => format!(
                        "[{}, {}] at difficulty 0 .. [{}, {}] at difficulty 1",
                        r[0], r[1], h[0], h[1]
                    ),
                    None => format!("[{}, {}]", r[0], r[1]),
                }
            } else if let (Some(f), Some(spec)) = (&p.service, &spec) {
                format!("one of {} services", candidates(spec, f).len())
            } else {
                "service".to_string()
            };
            (name.clone(), text)
        })
        .collect()
}

fn show(s: &Scenario, reveal: bool, as_json: bool) -> Result<ExitCode, String> {
    let space = parameter_space(s);
    let topology = match &s.topology {
        firedrill_scenario::model::TopologyRef::Builtin(n) => n.clone(),
        firedrill_scenario::model::TopologyRef::Inline(_) => "inline".to_string(),
    };
    let services: Vec<String> = topology_spec(s)
        .map(|(t, _)| {
            t.services
                .iter()
                .map(|x| format!("{} ({})", x.name, x.kind.as_str()))
                .collect()
        })
        .unwrap_or_default();
    let truth = if reveal {
        let inst = instantiate(s, 0, 0.5).ok();
        Some(json!({
            "description": s.description,
            "fault_classes": classes(s),
            "faults": s.faults.iter().map(|f| json!({"id": f.id, "class": f.class, "mechanism": f.mechanism})).collect::<Vec<_>>(),
            "example_seed_0": inst.as_ref().map(|i| json!({
                "params": i.params,
                "root_causes": i.root_causes(),
            })),
            "mitigated": s.ground_truth.mitigated,
            "remediation": s.ground_truth.remediation,
        }))
    } else {
        None
    };
    if as_json {
        let mut doc = json!({
            "id": s.id, "title": s.title, "tier": s.tier, "tags": s.tags, "topology": topology,
            "services": services, "budget_minutes": s.budget_minutes,
            "parameters": space.iter().map(|(n, t)| json!({"name": n, "space": t})).collect::<Vec<_>>(),
            "difficulty": s.difficulty,
        });
        if let Some(t) = truth {
            doc["ground_truth"] = t;
        }
        say!(
            "{}",
            serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?
        );
        return Ok(ExitCode::SUCCESS);
    }
    say!("{} — {}", s.id, s.title);
    say!(
        "tier: {}   topology: {topology}   budget: {} simulated minutes",
        format!("{:?}", s.tier).to_lowercase(),
        s.budget_minutes
    );
    if !s.tags.is_empty() {
        say!("tags: {}", s.tags.join(", "));
    }
    say!("\nservices: {}", services.join(", "));
    say!("\nparameters (drawn from the seed):");
    for (n, t) in &space {
        say!("  {n}: {t}");
    }
    let d = &s.difficulty;
    say!("\ndifficulty 0 → 1 changes:");
    say!(
        "  red-herring deploys {} → {}",
        d.distractor_deploys[0],
        d.distractor_deploys[1]
    );
    say!(
        "  harmless config changes {} → {}",
        d.distractor_configs[0],
        d.distractor_configs[1]
    );
    say!(
        "  log warning noise ×{} → ×{}",
        d.log_noise[0],
        d.log_noise[1]
    );
    say!(
        "  concurrent benign events {} → {}",
        d.benign_events[0],
        d.benign_events[1]
    );
    say!("  and every parameter with a `hard` range");
    match truth {
        Some(t) => {
            say!("\nGROUND TRUTH (--reveal)");
            say!("{}", s.description.trim());
            say!(
                "{}",
                serde_json::to_string_pretty(&t).map_err(|e| e.to_string())?
            );
        }
        None => say!("\n(ground truth hidden; pass --reveal to see it)"),
    }
    Ok(ExitCode::SUCCESS)
}

fn validate(paths: &[PathBuf]) -> Result<ExitCode, String> {
    let mut files = Vec::new();
    let mut failed = 0usize;
    for p in paths {
        match scenario_files(p) {
            Ok(f) if f.is_empty() => {
                eprintln!("{}: no .yaml or .yml files found", p.display());
                failed += 1;
            }
            Ok(f) => files.extend(f),
            Err(e) => {
                eprintln!("{e}");
                failed += 1;
            }
        }
    }
    let mut ok = 0usize;
    for f in &files {
        match load_file(f) {
            Ok(s) => {
                ok += 1;
                say!("ok   {} ({})", f.display(), s.id);
            }
            Err(LoadError::Invalid(diags)) => {
                failed += 1;
                for d in diags {
                    eprintln!("{d}");
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("{e}");
            }
        }
    }
    say!("{ok} valid, {failed} invalid");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
