//! Fault programs with phases: a fault injected after an operation, and one injected on a state condition.

use std::sync::Arc;

use firedrill_scenario::{Incident, instantiate, parse_scenario};
use firedrill_world::{Actor, Operation};

const EXAMPLE: &str = include_str!("../../../docs/examples/checkout_pool_leak.yaml");

fn with_phases() -> String {
    let extra_faults = r#"
  - id: after_rollback
    class: config_error
    target: checkout
    actor: config-sync
    mechanism:
      set_config: { key: http.client.timeout_ms, value: "50" }
  - id: when_hot
    class: dns_failure
    target: edge
    mechanism:
      set_config: { key: dns.resolver, value: "10.0.0.2" }
  - id: when_full
    class: config_error
    target: checkout
    mechanism:
      set_config: { key: log.level, value: debug }
phases:
  - id: pool_full
    trigger: { when: { service: checkout, metric: pool_utilisation, op: ">=", value: 0.99 } }
    faults: [when_full]
  - id: chained
    trigger: { after_operation: { operation: deploy, service: checkout } }
    faults: [after_rollback]
  - id: late
    trigger: { after_page_minutes: 20 }
    faults: [when_hot]
"#;
    EXAMPLE
        .replace("\nground_truth:", &format!("{extra_faults}\nground_truth:"))
        .replace(
            "  mitigated:\n    faults_cleared: true",
            "  root_causes: [pool_leak]\n  mitigated:\n    faults_cleared: true",
        )
}

#[test]
fn phases_inject_after_an_operation_and_after_the_page() {
    let scenario = parse_scenario("phases.yaml", &with_phases()).expect("valid");
    let instance = Arc::new(instantiate(&scenario, 3, 0.5).expect("instance"));
    let mut inc = Incident::start(instance).expect("start");
    let leak_onset = inc.fault_onsets()[0].expect("leak started");
    let full_onset = inc.fault_onsets()[3].expect("the state condition fired before the page");
    assert!(full_onset > leak_onset && full_onset <= inc.page_s());
    assert_eq!(
        inc.fault_onsets()[1],
        None,
        "the chained fault waits for its trigger"
    );
    let checkout = inc.service_id("checkout").expect("service");
    inc.apply(
        &Operation::Deploy {
            service: checkout,
            version: 0,
        },
        &Actor::oncall(),
    )
    .expect("rollback");
    assert!(
        inc.fault_onsets()[1].is_some(),
        "the rollback triggers the chained fault"
    );
    assert_eq!(
        inc.world()
            .service(checkout)
            .config
            .get("http.client.timeout_ms")
            .map(String::as_str),
        Some("50")
    );
    assert_eq!(inc.fault_onsets()[2], None);
    for _ in 0..(20 * 4 + 1) {
        inc.step();
    }
    assert!(
        inc.fault_onsets()[2].is_some(),
        "the late phase fired 20 minutes after the page"
    );
}

#[test]
fn a_fault_without_onset_or_phase_is_rejected_with_its_position() {
    let text = with_phases().replace("    faults: [when_hot]\n", "    faults: []\n");
    let errs = parse_scenario("phases.yaml", &text).expect_err("invalid");
    let line = text
        .lines()
        .position(|l| l.contains("- id: when_hot"))
        .expect("line")
        + 1;
    assert!(
        errs.iter()
            .any(|e| e.line == line && e.message.contains("no phase injects it")),
        "{errs:?}"
    );
}
