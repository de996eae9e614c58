//! The scenario language: the committed JSON Schema is current, and bad documents get precise positions.

use firedrill_scenario::parse_scenario;

const DNS: &str = include_str!("../library/scenarios/dns_failure.yaml");

fn schema_path() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/scenario.schema.json")
}

#[test]
fn committed_schema_is_current() {
    let generated = serde_json::to_string_pretty(&firedrill_scenario::scenario_schema())
        .expect("schema")
        + "\n";
    if std::env::var_os("FIREDRILL_BLESS").is_some() {
        std::fs::write(schema_path(), &generated).expect("write schema");
        return;
    }
    let committed = std::fs::read_to_string(schema_path()).expect("docs/scenario.schema.json");
    assert_eq!(
        committed, generated,
        "docs/scenario.schema.json is stale: run `firedrill scenarios schema > docs/scenario.schema.json`"
    );
}

fn first_error(text: &str) -> (usize, usize, String) {
    let errs = parse_scenario("x.yaml", text).expect_err("should fail");
    let e = &errs[0];
    (e.line, e.col, e.message.clone())
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .expect("needle")
        + 1
}

#[test]
fn unknown_fields_are_rejected_with_their_position() {
    let text = DNS.replace(
        "budget_minutes: 30",
        "budget_minutes: 30\nbudget_minute: 31",
    );
    let (line, _col, msg) = first_error(&text);
    assert_eq!(line, line_of(&text, "budget_minute: 31"));
    assert!(msg.contains("budget_minute"), "{msg}");
}

#[test]
fn wrong_types_are_rejected_with_their_position() {
    let text = DNS.replace("budget_minutes: 30", "budget_minutes: thirty");
    let (line, _, _) = first_error(&text);
    assert_eq!(line, line_of(&text, "thirty"));
}

#[test]
fn references_are_checked() {
    let cases = [
        (
            "set_config: { key: dns.resolver, value: $resolver }",
            "set_config: { key: dns.resolver, value: $resolvr }",
            "unknown parameter $resolvr",
        ),
        (
            "{ kind: log, service: $target, signal: dns_resolution }",
            "{ kind: log, service: ghost-service, signal: dns_resolution }",
            "unknown service \"ghost-service\"",
        ),
        (
            "set_config: { key: dns.resolver, value: $resolver }",
            "set_config: { key: log.level, value: verbose }",
            "invalid value",
        ),
        (
            "topology: shop",
            "topology: mall",
            "unknown built-in topology",
        ),
        (
            "class: dns_failure",
            "class: dns_failures",
            "unknown variant",
        ),
    ];
    for (from, to, expected) in cases {
        assert!(DNS.contains(from), "fixture lacks {from}");
        let text = DNS.replace(from, to);
        let (line, col, msg) = first_error(&text);
        assert!(msg.contains(expected), "{to}: {msg}");
        assert!(line > 0 && col > 0, "{to}: no position");
        assert_eq!(line, line_of(&text, to), "{to}: {msg}");
    }
}

#[test]
fn syntax_errors_have_positions_and_never_panic() {
    let (line, col, _) = first_error("id: x\ntitle: [unclosed\n");
    assert!(line >= 2 && col > 0);
    for text in [
        "",
        "---",
        "[]",
        "id: 3",
        "\u{0}",
        "a: &a [*a]",
        "faults: {",
        "id: x\nid: y\n",
    ] {
        let _ = parse_scenario("x.yaml", text);
    }
}

proptest::proptest! {
    #[test]
    fn mutated_documents_never_panic(cut in 0usize..2000, insert in "[ -~\n]{0,12}") {
        let mut text = DNS.to_string();
        let at = cut.min(text.len());
        let at = (0..=at).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        text.insert_str(at, &insert);
        let _ = parse_scenario("fuzz.yaml", &text);
    }
}

/// Numbers that would make an instance huge or a start endless are refused where they are written: a fuzzer
/// found that `distractor_configs: [0, 1e9]` allocated until the process died.
#[test]
fn sizes_and_times_are_bounded() {
    let cases = [
        (
            "budget_minutes: 30",
            "budget_minutes: 30\ndifficulty: { distractor_configs: [0, 1e9] }",
            "distractor_configs: both values must be in [0, 50]",
        ),
        (
            "budget_minutes: 30",
            "budget_minutes: 30\ndifficulty: { log_noise: [1, -2] }",
            "log_noise: both values must be in [0, 100]",
        ),
        (
            "budget_minutes: 30",
            "budget_minutes: 30\npage: { max_wait_minutes: 100000 }",
            "max_wait_minutes: must be in [0, 1440] minutes",
        ),
        (
            "onset: { range: [58, 70] }",
            "onset: { range: [58, 1e12] }",
            "onset must be in [0, 1440] minutes",
        ),
    ];
    for (from, to, expected) in cases {
        assert!(DNS.contains(from), "fixture lacks {from}");
        let text = DNS.replacen(from, to, 1);
        let errs = parse_scenario("x.yaml", &text).expect_err(to);
        assert!(
            errs.iter().any(|e| e.message.contains(expected)),
            "{to}: {errs:?}"
        );
    }
    // Both kinds at once are both reported.
    let text = DNS.replacen(
        "budget_minutes: 30",
        "budget_minutes: 30\ndifficulty: { benign_events: [0, 51] }\npage: { min_history_minutes: -1 }",
        1,
    );
    let errs = parse_scenario("x.yaml", &text).expect_err("two bad sections");
    assert!(
        errs.iter().any(|e| e.message.contains("benign_events")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.message.contains("min_history_minutes")),
        "{errs:?}"
    );
}

/// An error inside an inline topology is reported where it is, with the topology's own message (not only "no
/// variant matched" at the start of the block).
#[test]
fn errors_inside_an_inline_topology_keep_their_position() {
    let text = "id: x\ntitle: t\ntier: basic\ntopology:\n  tick_s: 15\n  services:\n    - name: a\n      kind: service\n      replicas: -1\n";
    let (line, col, msg) = first_error(text);
    assert_eq!((line, col), (9, 17), "{msg}");
    assert!(msg.contains("u32"), "{msg}");
    let (line, _, msg) = first_error("id: x\ntitle: t\ntier: basic\ntopology: 5\n");
    assert_eq!(line, 4, "{msg}");
    assert!(msg.contains("built-in topology"), "{msg}");
}
