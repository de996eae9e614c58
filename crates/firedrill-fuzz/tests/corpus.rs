//! Replays every committed fuzz input (`fuzz/corpus/TARGET/` and `fuzz/regressions/TARGET/`) through its target on
//! the stable toolchain: the inputs a fuzzer found, crashes included once fixed, keep failing loudly here if a
//! change brings a panic back.

use std::path::{Path, PathBuf};

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_committed_input_runs_without_a_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut total = 0;
    for (name, target) in firedrill_fuzz::TARGETS {
        let mut files = inputs(&root.join("corpus").join(name));
        // Each target has seeds: an empty corpus would make this test pass without running anything.
        assert!(
            !files.is_empty(),
            "no corpus for the {name} target under {}",
            root.display()
        );
        files.extend(inputs(&root.join("regressions").join(name)));
        for file in &files {
            let data = std::fs::read(file).expect("a readable corpus file");
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(
                outcome.is_ok(),
                "{name} panicked on {} ({} bytes)",
                file.display(),
                data.len()
            );
        }
        total += files.len();
    }
    eprintln!("{total} inputs replayed");
}

/// The structured scenario target's base documents are valid scenarios that start: otherwise its edits would only
/// ever exercise the validator.
#[test]
fn every_unedited_document_starts() {
    for pick in 0..9u8 {
        let text = firedrill_fuzz::scenario_text(&[pick]).expect("a document");
        let scenario = firedrill_scenario::parse_scenario("doc.json", &text)
            .unwrap_or_else(|e| panic!("document {pick} does not parse: {e:?}"));
        let instance = firedrill_scenario::instantiate(&scenario, 1, 0.5)
            .unwrap_or_else(|e| panic!("document {pick} does not instantiate: {e:?}"));
        firedrill_scenario::Incident::start(std::sync::Arc::new(instance))
            .unwrap_or_else(|e| panic!("document {pick} does not start: {e}"));
    }
}

/// The cargo-fuzz crate builds only on nightly, outside CI: each target it declares must still name a body of
/// this crate, and each body must have its target, seeds included.
#[test]
fn every_target_has_its_cargo_fuzz_binary() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("fuzz/Cargo.toml");
    let declared = manifest.matches("[[bin]]").count();
    assert_eq!(
        declared,
        firedrill_fuzz::TARGETS.len(),
        "fuzz/Cargo.toml declares {declared} targets"
    );
    for (name, _) in firedrill_fuzz::TARGETS {
        assert!(
            manifest.contains(&format!(
                "name = \"{name}\"\npath = \"fuzz_targets/{name}.rs\""
            )),
            "fuzz/Cargo.toml lacks the {name} target"
        );
        let source = std::fs::read_to_string(root.join("fuzz_targets").join(format!("{name}.rs")))
            .unwrap_or_else(|e| panic!("fuzz/fuzz_targets/{name}.rs: {e}"));
        assert!(
            source.contains(&format!("firedrill_fuzz::{name}(data)")),
            "fuzz/fuzz_targets/{name}.rs does not call firedrill_fuzz::{name}"
        );
    }
}
