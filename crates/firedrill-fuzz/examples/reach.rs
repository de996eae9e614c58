//! How far the `scenario_values` target's inputs get: `reach DIR` reads every input in DIR (a corpus), makes each
//! into its scenario file, and counts how many parse and validate, instantiate, and start, with the most common
//! validation messages. A target whose inputs mostly stop at the parser tests the parser only; this tells.
//! `reach --text FILE` prints the scenario file one input makes (to see what a crashing input changed).

use std::collections::BTreeMap;
use std::sync::Arc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, file] = &args[..]
        && flag == "--text"
    {
        let data = std::fs::read(file).unwrap_or_else(|e| panic!("{file}: {e}"));
        println!(
            "{}",
            firedrill_fuzz::scenario_text(&data).unwrap_or_default()
        );
        return;
    }
    let Some(dir) = args.first() else {
        eprintln!("usage: reach CORPUS_DIR | reach --text INPUT");
        std::process::exit(2);
    };
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let (mut inputs, mut parsed, mut instantiated, mut started) = (0, 0, 0, 0);
    let mut messages: BTreeMap<String, usize> = BTreeMap::new();
    for file in files {
        // A corpus being fuzzed loses files as libFuzzer reduces them.
        let Ok(data) = std::fs::read(&file) else {
            continue;
        };
        let Some(text) = firedrill_fuzz::scenario_text(&data) else {
            continue;
        };
        inputs += 1;
        match firedrill_scenario::parse_scenario("input", &text) {
            Ok(scenario) => {
                parsed += 1;
                if let Ok(instance) = firedrill_scenario::instantiate(&scenario, 0, 0.0) {
                    instantiated += 1;
                    if firedrill_scenario::Incident::start(Arc::new(instance)).is_ok() {
                        started += 1;
                    }
                }
            }
            Err(diagnostics) => {
                let first: String = diagnostics[0].message.chars().take(80).collect();
                *messages.entry(first).or_default() += 1;
            }
        }
    }
    println!(
        "{inputs} inputs: {parsed} valid, {instantiated} instantiated at seed 0, {started} started"
    );
    let mut messages: Vec<_> = messages.into_iter().collect();
    messages.sort_by_key(|(m, n)| (std::cmp::Reverse(*n), m.clone()));
    for (message, n) in messages.iter().take(15) {
        println!("{n:6}  {message}");
    }
}
