//! Telemetry rendered from every family: the evidence that proves each cause is really observable, counters and
//! histograms are well formed, rendering is deterministic, and no text an agent can read names the fault class
//! or prescribes the fix.

use firedrill_scenario::model::EvidenceKind;
use firedrill_scenario::{Catalog, Incident};
use firedrill_telemetry::logs::{LogOptions, audit_log, render as render_logs};
use firedrill_telemetry::metrics::{CATALOGUE, render as render_metrics};
use firedrill_telemetry::traces::{find_trace, traces_between};
use firedrill_world::{Actor, FaultClass, Operation};

fn started(id: &str, seed: u64) -> Incident {
    let mut inc = Catalog::builtin()
        .expect("library")
        .start(id, seed, 0.5)
        .expect("start");
    for _ in 0..100 {
        inc.step();
    }
    inc
}

fn window(inc: &Incident) -> (i64, i64) {
    let w = inc.world();
    let end = (w.epoch_unix_s() as f64 + w.now_s()) as i64 * 1000 + 1;
    (end - 3 * 3600 * 1000, end)
}

#[test]
fn the_evidence_of_every_family_is_observable() {
    let catalog = Catalog::builtin().expect("library");
    for scenario in catalog.scenarios() {
        for seed in 0..3 {
            let inc = started(&scenario.id, seed);
            let (start, end) = window(&inc);
            let series = render_metrics(inc.world(), &|_| true, start, end);
            let logs = render_logs(
                inc.world(),
                start,
                end,
                &LogOptions {
                    noise: 1.0,
                    max_records: usize::MAX,
                },
            );
            let changes = audit_log(inc.world());
            for ev in &inc.instance().truth.evidence {
                let found = match ev.kind {
                    EvidenceKind::Metric => series.iter().any(|s| {
                        let name = &s.labels["__name__"];
                        (name == &ev.signal || name.starts_with(&format!("{}_", ev.signal)))
                            && s.labels["service"] == ev.service
                    }),
                    EvidenceKind::Log => logs
                        .iter()
                        .any(|l| l.event == ev.signal && l.service == ev.service),
                    EvidenceKind::Change => changes
                        .iter()
                        .any(|c| c.kind == ev.signal && c.service == ev.service),
                    EvidenceKind::Trace => true,
                };
                assert!(
                    found,
                    "{} seed {seed}: evidence {:?} not observable",
                    scenario.id, ev
                );
            }
        }
    }
}

#[test]
fn counters_are_monotonic_and_histograms_consistent() {
    let inc = started("db_pool_exhaustion", 2);
    let (start, end) = window(&inc);
    let series = render_metrics(inc.world(), &|_| true, start, end);
    assert!(!series.is_empty());
    let counters: Vec<&str> = CATALOGUE
        .iter()
        .filter(|m| m.kind == firedrill_telemetry::metrics::MetricKind::Counter)
        .map(|m| m.name)
        .collect();
    for s in &series {
        let name = s.labels["__name__"].as_str();
        if counters.contains(&name) || name.starts_with("http_request_duration_seconds_") {
            assert!(
                s.samples.windows(2).all(|w| w[1].1 >= w[0].1),
                "{name} {:?} decreases",
                s.labels
            );
        }
        assert!(
            s.samples.windows(2).all(|w| w[1].0 > w[0].0),
            "timestamps not increasing"
        );
    }
    // For one service: buckets non-decreasing in le, and _count equals the +Inf bucket.
    let buckets: Vec<_> = series
        .iter()
        .filter(|s| {
            s.labels["__name__"] == "http_request_duration_seconds_bucket"
                && s.labels["service"] == "api-gateway"
        })
        .collect();
    let mut by_le: Vec<(f64, f64)> = buckets
        .iter()
        .map(|s| {
            (
                s.labels["le"].parse::<f64>().unwrap_or(f64::INFINITY),
                s.samples.last().expect("sample").1,
            )
        })
        .collect();
    by_le.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(
        by_le.windows(2).all(|w| w[1].1 >= w[0].1),
        "buckets decrease with le: {by_le:?}"
    );
    let count = series
        .iter()
        .find(|s| {
            s.labels["__name__"] == "http_request_duration_seconds_count"
                && s.labels["service"] == "api-gateway"
        })
        .expect("count");
    assert_eq!(
        count.samples.last().expect("sample").1,
        by_le.last().expect("inf").1
    );
}

#[test]
fn rendering_is_deterministic_and_forks_render_alike() {
    let inc = started("oom_crash", 4);
    let fork = inc.clone();
    let (start, end) = window(&inc);
    let opts = LogOptions::default();
    assert_eq!(
        render_logs(inc.world(), start, end, &opts),
        render_logs(fork.world(), start, end, &opts)
    );
    assert_eq!(
        render_metrics(inc.world(), &|_| true, start, end),
        render_metrics(fork.world(), &|_| true, start, end)
    );
    let again = started("oom_crash", 4);
    assert_eq!(
        render_logs(inc.world(), start, end, &opts),
        render_logs(again.world(), start, end, &opts)
    );
}

#[test]
fn operations_leave_log_lines() {
    let mut inc = started("dns_failure", 1);
    let target = inc.service_id("order-service").expect("service");
    inc.apply(
        &Operation::Restart {
            service: target,
            memory_mb: None,
            cpu_millis: None,
        },
        &Actor::oncall(),
    )
    .expect("restart");
    let before = (inc.world().epoch_unix_s() as f64 + inc.world().now_s()) as i64 * 1000;
    for _ in 0..8 {
        inc.step();
    }
    let logs = render_logs(
        inc.world(),
        before - 1000,
        before + 3_600_000,
        &LogOptions::default(),
    );
    let mine: Vec<&str> = logs
        .iter()
        .filter(|l| l.service == "order-service")
        .map(|l| l.event)
        .collect();
    assert!(mine.contains(&"pod_terminated"), "{mine:?}");
    assert!(mine.contains(&"container_started"), "{mine:?}");
    assert!(mine.contains(&"container_ready"), "{mine:?}");
    assert!(
        audit_log(inc.world())
            .iter()
            .any(|c| c.actor == "oncall" && c.kind == "restart")
    );
}

#[test]
fn no_agent_visible_text_names_the_cause_or_prescribes_the_fix() {
    let forbidden_phrases = [
        "root cause",
        "should be",
        "you should",
        "will fix",
        "restart will",
        "rollback will",
        "try restarting",
        "try rolling",
        "red herring",
    ];
    let forbidden_words = [
        "fault",
        "faults",
        "faulty",
        "inject",
        "injected",
        "chaos",
        "consider",
        "leak",
        "leaks",
        "leaking",
        "leaked",
        "misconfigured",
        "misconfiguration",
        "distractor",
        "culprit",
    ];
    let catalog = Catalog::builtin().expect("library");
    for scenario in catalog.scenarios() {
        for seed in 0..3 {
            let inc = started(&scenario.id, seed);
            let (start, end) = window(&inc);
            let mut texts: Vec<String> = render_logs(
                inc.world(),
                start,
                end,
                &LogOptions {
                    noise: 3.0,
                    max_records: usize::MAX,
                },
            )
            .iter()
            .map(|l| l.logfmt())
            .collect();
            texts.extend(
                audit_log(inc.world())
                    .iter()
                    .map(|c| format!("{} {} {}", c.actor, c.kind, c.summary)),
            );
            for a in inc.alerts().active() {
                texts.push(format!("{:?} {:?}", a.labels, a.annotations));
            }
            texts.push(inc.instance().title.clone());
            for text in &texts {
                let lower = text.to_lowercase();
                for p in forbidden_phrases {
                    assert!(
                        !lower.contains(p),
                        "{} seed {seed}: {p:?} in {text}",
                        scenario.id
                    );
                }
                for word in lower.split(|c: char| !c.is_ascii_alphanumeric()) {
                    assert!(
                        !forbidden_words.contains(&word),
                        "{} seed {seed}: {word:?} in {text}",
                        scenario.id
                    );
                }
                for class in FaultClass::ALL {
                    assert!(
                        !lower.contains(class.as_str()),
                        "{} seed {seed}: class {} in {text}",
                        scenario.id,
                        class
                    );
                }
            }
        }
    }
}

#[test]
fn healthy_services_warn_too() {
    let inc = started("slow_query", 3);
    let (start, end) = window(&inc);
    let logs = render_logs(
        inc.world(),
        start,
        end,
        &LogOptions {
            noise: 2.0,
            max_records: usize::MAX,
        },
    );
    let warners: std::collections::BTreeSet<&str> = logs
        .iter()
        .filter(|l| l.level >= firedrill_telemetry::logs::Level::Warn)
        .map(|l| l.service.as_str())
        .collect();
    assert!(warners.len() >= 6, "only {warners:?} log warnings");
}

#[test]
fn traces_are_found_again_by_id() {
    let inc = started("cert_expiry", 2);
    let (start, end) = window(&inc);
    let traces = traces_between(inc.world(), end - 600_000, end, 50);
    assert!(!traces.is_empty());
    for t in &traces {
        let again = find_trace(inc.world(), &t.trace_id).expect("found");
        assert_eq!(&again, t);
        let root = &t.spans[0];
        assert!(root.parent_span_id.is_none());
        assert!(t.spans.iter().skip(1).all(|s| s.parent_span_id.is_some()));
    }
    assert!(find_trace(inc.world(), "00000000000000000000000000000000").is_none());
    assert!(find_trace(inc.world(), "not-a-trace").is_none());
    let _ = start;
}
