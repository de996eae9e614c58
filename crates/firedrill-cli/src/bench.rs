//! `firedrill bench`: environment throughput on the basic suite (the workload is described in
//! `firedrill_eval::bench`). The wall clock is read here to time the environment, never inside it.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use comfy_table::{CellAlignment, ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use firedrill_eval::bench::{BenchOptions, GROUP, bench_phases, run_bench};
use firedrill_scenario::Catalog;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Wall-clock seconds per phase (resets, structured steps, text steps, VecEnv on all threads; then VecEnv
    /// on one thread repeats exactly the threaded phase's steps, so the two compare the same work).
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Threads of the VecEnv phase [default: the available cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Print `{resets_per_sec, steps_per_sec_structured, steps_per_sec_text, vec_steps_per_sec, threads}`
    /// (plus `repeated_resets_per_sec`, `steps_per_sec_with_resets`, `episodes_per_sec` and
    /// `vec_steps_per_sec_one_thread`) as JSON.
    #[arg(long)]
    json: bool,
    /// Milliseconds the policy of the training-loop phase takes per batch of actions (slept between
    /// `VecEnv` steps, as a caller waiting for a policy on a GPU leaves the CPU idle)
    #[arg(long, default_value_t = 2.0)]
    policy_ms: f64,
}

fn thousands(x: f64) -> String {
    let digits: Vec<char> = (x.round() as u64).to_string().chars().rev().collect();
    let groups: Vec<String> = digits
        .chunks(3)
        .map(|g| g.iter().rev().collect())
        .rev()
        .collect();
    groups.join(",")
}

pub fn run(args: BenchArgs, catalog: Catalog) -> Result<ExitCode, String> {
    if !(args.seconds.is_finite() && args.seconds > 0.0 && args.seconds <= 3600.0) {
        return Err(format!(
            "--seconds must be in (0, 3600], got {}",
            args.seconds
        ));
    }
    if !(args.policy_ms.is_finite() && (0.0..=1000.0).contains(&args.policy_ms)) {
        return Err(format!(
            "--policy-ms must be in [0, 1000], got {}",
            args.policy_ms
        ));
    }
    let threads = args.threads.unwrap_or_else(crate::eval::available_cores);
    if threads == 0 {
        return Err("--threads must be at least 1".into());
    }
    let catalog = Arc::new(catalog);
    if !args.json {
        eprintln!(
            "measuring five phases of {:.1} s each (resets, repeated resets, steps, text steps, VecEnv {threads} threads), then the same VecEnv steps on 1 thread{}...",
            args.seconds,
            if threads > 1 {
                format!(
                    " and in a training loop whose policy takes {} ms, with and without prefetching",
                    args.policy_ms
                )
            } else {
                String::new()
            }
        );
    }
    // One tick per phase, named as it begins; drawn on a terminal only, and never with `--json`.
    let phases = bench_phases(threads);
    let bar = crate::eval::progress_bar(
        phases.len() as u64,
        args.json,
        "{bar:24.cyan/blue} {pos}/{len} phases done; now {msg}  {elapsed}",
    );
    // Phases last seconds: the elapsed time moves meanwhile.
    bar.enable_steady_tick(std::time::Duration::from_millis(250));
    let mut begun = 0u64;
    let r = run_bench(
        &catalog,
        BenchOptions {
            seconds: args.seconds,
            threads,
            policy_ms: args.policy_ms,
        },
        &mut |phase| {
            bar.set_position(begun);
            bar.set_message(phase.to_string());
            begun += 1;
        },
    );
    bar.finish_and_clear();
    let r = r.map_err(|e| e.to_string())?;
    if args.json {
        say!(
            "{}",
            serde_json::to_string_pretty(&r.figures).map_err(|e| e.to_string())?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let f = &r.figures;
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(["measure", "per second", "work measured"]);
    t.add_row([
        "resets".to_string(),
        thousands(f.resets_per_sec),
        format!("{} resets", r.resets),
    ]);
    t.add_row([
        "resets to the start before".to_string(),
        thousands(f.repeated_resets_per_sec),
        format!(
            "{} resets, each a fork of the start kept ({} resets per start)",
            r.repeated_resets, GROUP
        ),
    ]);
    t.add_row([
        "steps, structured".to_string(),
        thousands(f.steps_per_sec_structured),
        format!(
            "{} steps in {} episodes; {:.2} simulated min per step",
            r.steps, r.episodes, r.sim_minutes_per_step
        ),
    ]);
    t.add_row([
        "steps of whole episodes".to_string(),
        thousands(f.steps_per_sec_with_resets),
        format!(
            "the same steps with the resets that started their episodes; {} episodes/s",
            thousands(f.episodes_per_sec)
        ),
    ]);
    t.add_row([
        "steps, text".to_string(),
        thousands(f.steps_per_sec_text),
        format!(
            "{} steps; to_text() {:.1} µs each",
            r.text_steps, r.to_text_mean_us
        ),
    ]);
    t.add_row([
        "VecEnv steps, 1 thread".to_string(),
        thousands(f.vec_steps_per_sec_one_thread),
        format!("{} slots", r.slots),
    ]);
    t.add_row([
        format!("VecEnv steps, {} threads", f.threads),
        thousands(f.vec_steps_per_sec),
        format!(
            "{} steps; {:.2}× one thread",
            r.vec_steps,
            if f.vec_steps_per_sec_one_thread > 0.0 {
                f.vec_steps_per_sec / f.vec_steps_per_sec_one_thread
            } else {
                0.0
            }
        ),
    ]);
    if let (Some(plain), Some(prefetched)) = (
        f.vec_policy_steps_per_sec,
        f.vec_policy_steps_per_sec_prefetch,
    ) {
        t.add_row([
            format!(
                "training loop, {} threads, policy {} ms",
                f.threads, f.policy_ms
            ),
            thousands(plain),
            "VecEnv steps with the policy's pause before each, the pauses counted".to_string(),
        ]);
        t.add_row([
            "the same, next starts prepared".to_string(),
            thousands(prefetched),
            format!(
                "VecEnv::set_prefetch(true): {:.2}× without",
                if plain > 0.0 { prefetched / plain } else { 0.0 }
            ),
        ]);
    }
    if let Some(c) = t.column_mut(1) {
        c.set_cell_alignment(CellAlignment::Right);
    }
    say!("{t}");
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header([
            "action (structured phase)",
            "steps",
            "mean µs",
            "share of time",
        ]);
    for a in &r.per_action {
        t.add_row([
            a.action.to_string(),
            a.count.to_string(),
            format!("{:.1}", a.mean_us),
            format!("{:.1}%", a.share * 100.0),
        ]);
    }
    for i in 1..4 {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    say!("{t}");
    say!(
        "Workload: the random agent on the nine basic families (episode k: family k mod 9, seed k div 9, \
         difficulty 0.5); reset time is not counted in step rates."
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_groups_digits_by_three() {
        assert_eq!(super::thousands(0.0), "0");
        assert_eq!(super::thousands(999.4), "999");
        assert_eq!(super::thousands(1000.0), "1,000");
        assert_eq!(super::thousands(1234567.0), "1,234,567");
    }
}
