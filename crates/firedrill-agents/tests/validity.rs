//! Validity of the benchmark (PRODUCT.md §5, issue 3 item 7): over every basic family and seeds 0..20, the
//! oracle solves every instance, the honest heuristic solves most, and the baselines that stand for ways of
//! gaming the reward score low. Plus determinism of replay and one regression test per reward exploit measured
//! on the peer environments that could apply to us.

use std::sync::Arc;

use firedrill_agents::{EpisodeRecord, run_episode};
use firedrill_env::action::{Action, ResolveParams, RestartParams, RollbackParams, WaitParams};
use firedrill_env::{Env, EnvError, Grade};
use firedrill_scenario::Catalog;
use firedrill_scenario::instantiate::RootCause;
use firedrill_scenario::library::BASIC_FAMILIES;
use firedrill_world::FaultClass;

const SEEDS: std::ops::Range<u64> = 0..20;
const DIFFICULTY: f64 = 0.5;

fn catalog() -> Arc<Catalog> {
    Arc::new(Catalog::builtin().expect("library"))
}

/// Every episode of `agent` on one family.
fn family(cat: &Arc<Catalog>, agent: &str, family: &str) -> Vec<EpisodeRecord> {
    SEEDS
        .map(|seed| run_episode(cat.clone(), agent, family, seed, DIFFICULTY).expect("episode"))
        .collect()
}

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = xs.collect();
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// At difficulty 0.5 as the issue asks, and at both ends of the difficulty range: a scenario the oracle cannot
/// solve at some difficulty is a broken scenario there.
#[test]
fn the_oracle_solves_every_instance() {
    let cat = catalog();
    for difficulty in [0.0, DIFFICULTY, 1.0] {
        for fam in BASIC_FAMILIES {
            let eps: Vec<EpisodeRecord> = SEEDS
                .map(|seed| {
                    run_episode(cat.clone(), "oracle", fam, seed, difficulty).expect("episode")
                })
                .collect();
            for e in &eps {
                assert!(
                    e.grade.success,
                    "oracle failed {fam} seed {} difficulty {difficulty}: {:?}",
                    e.seed, e.grade.lost
                );
            }
            let m = mean(eps.iter().map(|e| e.grade.score));
            assert!(
                m >= 0.9,
                "oracle mean score {m:.3} on {fam} at difficulty {difficulty}"
            );
        }
    }
}

#[test]
fn the_heuristic_solves_at_least_80_percent() {
    let cat = catalog();
    let mut ok = 0;
    let mut n = 0;
    for fam in BASIC_FAMILIES {
        for e in family(&cat, "heuristic", fam) {
            n += 1;
            ok += e.grade.success as usize;
            // An honest agent cites only what it saw.
            assert_eq!(e.grade.hallucinated_citations, 0, "{fam} seed {}", e.seed);
        }
    }
    let rate = ok as f64 / n as f64;
    assert!(rate >= 0.8, "heuristic success rate {rate:.3}");
}

/// noop, restart-all, farmer and early-resolve score at most 0.25 on average on every family and earn less return
/// than the oracle there.
#[test]
fn gaming_baselines_score_low_and_earn_less_than_the_oracle() {
    let cat = catalog();
    for fam in BASIC_FAMILIES {
        let oracle = family(&cat, "oracle", fam);
        let oracle_return = mean(oracle.iter().map(|e| e.episode_return));
        for agent in ["noop", "restart-all", "farmer", "early-resolve"] {
            let eps = family(&cat, agent, fam);
            let score = mean(eps.iter().map(|e| e.grade.score));
            let ret = mean(eps.iter().map(|e| e.episode_return));
            assert!(score <= 0.25, "{agent} scores {score:.3} on {fam}");
            assert!(
                ret < oracle_return,
                "{agent} earns {ret:.3} on {fam}, oracle {oracle_return:.3}"
            );
        }
    }
}

/// random scores at most 0.2 on average on every family.
#[test]
fn random_scores_at_most_0_2() {
    let cat = catalog();
    for fam in BASIC_FAMILIES {
        let m = mean(family(&cat, "random", fam).iter().map(|e| e.grade.score));
        assert!(m <= 0.2, "random mean score {m:.3} on {fam}");
    }
}

/// The first root cause of the episode `env` plays (ground truth, for tests that play a known answer).
fn first_root_cause(env: &Env) -> RootCause {
    env.episode()
        .expect("episode")
        .incident()
        .instance()
        .root_causes()[0]
        .clone()
}

fn wait(minutes: f64) -> Action {
    Action::Wait(WaitParams { minutes })
}

fn resolve(root_causes: Vec<String>, class: FaultClass, evidence: Vec<String>) -> Action {
    Action::ResolveIncident(ResolveParams {
        root_causes,
        fault_class: class,
        evidence,
        remediation: String::new(),
        summary: String::new(),
    })
}

/// Investigates the alerted service, waits for the burst to pass and resolves `no_fault`, optionally after an
/// operation; returns the grade.
fn no_fault_episode(seed: u64, operation: Option<Action>) -> Grade {
    let mut env = Env::new(catalog());
    let page = env
        .reset("no_fault_control", seed, DIFFICULTY)
        .expect("reset");
    let service = page.firing_alerts[0].service.clone();
    let step = env
        .step_json(&format!(
            r#"{{"action":"query_metrics","service":"{service}","window_minutes":15}}"#
        ))
        .expect("step");
    let cite = firedrill_agents::heuristic::evidence_ids(&step.observation);
    if let Some(op) = operation {
        env.step(&op).expect("step");
    }
    let mut last = None;
    for _ in 0..40 {
        let s = env.step(&wait(1.0)).expect("step");
        if env.episode().is_some_and(|e| e.incident().mitigated()) || s.truncated {
            last = Some(s);
            break;
        }
    }
    if let Some(s) = last.filter(|s| s.truncated) {
        return s.info.grade.expect("grade at truncation");
    }
    let end = env
        .step(&resolve(
            Vec::new(),
            FaultClass::NoFault,
            cite[..1].to_vec(),
        ))
        .expect("resolve");
    end.info.grade.expect("grade")
}

#[test]
fn no_fault_control_rewards_restraint() {
    for seed in SEEDS {
        let clean = no_fault_episode(seed, None).score;
        assert!(
            clean >= 0.9,
            "seed {seed}: investigate and resolve scores {clean:.3}"
        );
        let service = {
            let mut env = Env::new(catalog());
            let page = env
                .reset("no_fault_control", seed, DIFFICULTY)
                .expect("reset");
            page.firing_alerts[0].service.clone()
        };
        for op in [
            Action::RestartService(RestartParams {
                service: service.clone(),
                memory_mb: None,
                cpu_millis: None,
            }),
            Action::RollbackDeploy(RollbackParams {
                service: "order-service".into(),
                version: None,
            }),
        ] {
            let with_op = no_fault_episode(seed, Some(op.clone()));
            assert!(
                with_op.score < clean,
                "seed {seed}: {op:?} did not cost points ({:.3} vs {clean:.3})",
                with_op.score
            );
            // With nothing broken, the outcome is leaving the system alone: the system's recovery from the
            // page is not credited to an agent that changed it.
            assert!(
                !with_op.mitigated && !with_op.success,
                "seed {seed}: {op:?} {with_op:?}"
            );
            assert!(
                with_op.lost.iter().any(|l| l.reason == "disturbed_control"),
                "seed {seed}: {:?}",
                with_op.lost
            );
        }
    }
}

/// Replaying (scenario, seed, difficulty, action log) reproduces every observation byte for byte.
#[test]
fn replay_is_byte_identical() {
    let cat = catalog();
    for fam in BASIC_FAMILIES {
        let rec = run_episode(cat.clone(), "heuristic", fam, 3, DIFFICULTY).expect("episode");
        let mut env = Env::new(cat.clone());
        let page = env.reset(fam, 3, DIFFICULTY).expect("reset");
        assert_eq!(
            serde_json::to_string(&page).ok(),
            serde_json::to_string(&rec.page).ok()
        );
        for (i, s) in rec.steps.iter().enumerate() {
            let step = env.step_json(&s.action.to_string()).expect("step");
            assert_eq!(
                serde_json::to_string(&step.observation).ok(),
                serde_json::to_string(&s.observation).ok(),
                "{fam} step {i} differs"
            );
            assert_eq!(step.breakdown, s.reward, "{fam} step {i} reward differs");
        }
    }
}

// ---- Regression tests for the exploits measured on the peers (praetor.md §5.3, sre_gym.md §10). ----

/// Diagnostic farming: re-reading the same evidence pays its information reward once.
#[test]
fn information_reward_is_paid_once_per_proof() {
    let mut env = Env::new(catalog());
    env.reset("db_pool_exhaustion", 1, DIFFICULTY)
        .expect("reset");
    let target = first_root_cause(&env).service;
    let q = format!(r#"{{"action":"query_logs","service":"{target}","level":"warn","limit":200}}"#);
    let first = env.step_json(&q).expect("step");
    assert!(first.breakdown.information > 0.0, "the proof paid nothing");
    for _ in 0..5 {
        let again = env.step_json(&q).expect("step");
        assert_eq!(again.breakdown.information, 0.0, "re-reading paid again");
        assert!(again.reward < 0.0, "re-reading is not free");
    }
}

/// correct_op farming: operations with made-up parameters are refused with a penalty every time.
#[test]
fn refused_operations_cost_every_time() {
    let mut env = Env::new(catalog());
    env.reset("slow_query", 0, DIFFICULTY).expect("reset");
    for i in 0..5 {
        let s = env
            .step(&Action::RollbackDeploy(RollbackParams {
                service: "order-service".into(),
                version: Some(format!("v9.{i}")),
            }))
            .expect("step");
        assert!(!s.info.valid);
        assert!(
            s.breakdown.invalid < 0.0 && s.reward < 0.0,
            "{:?}",
            s.breakdown
        );
        assert!(
            s.info.minutes > 0.0,
            "a refused action must still cost time"
        );
    }
}

/// Stepping after the end is an error; `terminated` never reverts and nothing more is paid.
#[test]
fn an_ended_episode_never_reopens() {
    let mut env = Env::new(catalog());
    env.reset("oom_crash", 2, DIFFICULTY).expect("reset");
    let end = env
        .step(&resolve(
            vec!["frontend-bff".into()],
            FaultClass::BadDeploy,
            Vec::new(),
        ))
        .expect("resolve");
    assert!(end.terminated);
    for a in [
        wait(1.0),
        resolve(
            vec!["frontend-bff".into()],
            FaultClass::BadDeploy,
            Vec::new(),
        ),
    ] {
        assert!(matches!(env.step(&a), Err(EnvError::EpisodeEnded)));
    }
    assert!(matches!(
        env.step_json("{\"action\":\"wait\",\"minutes\":1}"),
        Err(EnvError::EpisodeEnded)
    ));
}

/// Declaring before the fix holds: resolving right after the remediation, before the mitigated state is
/// sustained, scores less than waiting to verify.
#[test]
fn declaring_before_the_fix_holds_scores_less() {
    let cat = catalog();
    for seed in 0..5 {
        let verified = run_episode(
            cat.clone(),
            "oracle",
            "db_pool_exhaustion",
            seed,
            DIFFICULTY,
        )
        .expect("episode");
        let mut env = Env::new(cat.clone());
        env.reset("db_pool_exhaustion", seed, DIFFICULTY)
            .expect("reset");
        let ep = env.episode().expect("episode");
        let cause = ep.incident().instance().root_causes()[0].clone();
        env.step(&Action::RollbackDeploy(RollbackParams {
            service: cause.service.clone(),
            version: None,
        }))
        .expect("rollback");
        let early = env
            .step(&resolve(vec![cause.service], cause.fault_class, Vec::new()))
            .expect("resolve");
        let g = early.info.grade.expect("grade");
        assert!(
            !g.mitigated,
            "seed {seed}: mitigation credited before it was sustained"
        );
        assert!(g.score < verified.grade.score, "seed {seed}");
    }
}

/// Diagnosing from the page alone: in bad_deployment_cascade the page's alert is at the root service, so a
/// blind resolve can name the right service and class. Without a citation that proves the cause it earns half the
/// diagnosis; the same answer citing what `query_deploys` returned earns all of it.
#[test]
fn an_unsupported_diagnosis_earns_half() {
    let cat = catalog();
    for seed in 0..5 {
        let mut env = Env::new(cat.clone());
        env.reset("bad_deployment_cascade", seed, DIFFICULTY)
            .expect("reset");
        let cause = first_root_cause(&env);
        let blind = env
            .step(&resolve(
                vec![cause.service.clone()],
                cause.fault_class,
                Vec::new(),
            ))
            .expect("resolve")
            .info
            .grade
            .expect("grade");
        assert_eq!(blind.components.diagnosis.fraction, 0.5, "seed {seed}");
        assert!(blind.diagnosis_correct, "seed {seed}");
        assert!(
            blind
                .lost
                .iter()
                .any(|l| l.reason == "unsupported_diagnosis"),
            "seed {seed}: {:?}",
            blind.lost
        );
        assert!(blind.score <= 0.25, "seed {seed}: {}", blind.score);

        let mut env = Env::new(cat.clone());
        env.reset("bad_deployment_cascade", seed, DIFFICULTY)
            .expect("reset");
        let deploys = env
            .step_json(r#"{"action":"query_deploys"}"#)
            .expect("query_deploys");
        let cited = firedrill_agents::heuristic::evidence_ids(&deploys.observation);
        let supported = env
            .step(&resolve(vec![cause.service], cause.fault_class, cited))
            .expect("resolve")
            .info
            .grade
            .expect("grade");
        assert_eq!(supported.components.diagnosis.fraction, 1.0, "seed {seed}");
        assert!(
            supported
                .lost
                .iter()
                .all(|l| l.reason != "unsupported_diagnosis"),
            "seed {seed}: {:?}",
            supported.lost
        );
    }
}

/// Blind "restart every service with more memory": counted harmful, scored low even with the right answer.
#[test]
fn blind_restarts_are_harmful() {
    let cat = catalog();
    let mut env = Env::new(cat);
    let page = env.reset("oom_crash", 4, DIFFICULTY).expect("reset");
    let cause = first_root_cause(&env);
    for s in firedrill_agents::page_services(&page) {
        env.step(&Action::RestartService(RestartParams {
            service: s,
            memory_mb: Some(1024),
            cpu_millis: None,
        }))
        .expect("restart");
    }
    let mut end = None;
    for _ in 0..20 {
        let s = env.step(&wait(1.0)).expect("wait");
        if s.truncated {
            end = Some(s);
            break;
        }
    }
    let end = match end {
        Some(e) => e,
        None => env
            .step(&resolve(vec![cause.service], cause.fault_class, Vec::new()))
            .expect("resolve"),
    };
    let g = end.info.grade.expect("grade");
    assert!(g.harmful_actions >= 8, "{} harmful", g.harmful_actions);
    assert_eq!(g.components.safety.fraction, 0.0);
    assert!(g.lost.iter().any(|l| l.reason == "harmful_action"));
}

/// Citing ids that were never returned is counted and costs evidence points.
#[test]
fn hallucinated_citations_are_counted() {
    let cat = catalog();
    let honest = run_episode(cat.clone(), "oracle", "dns_failure", 5, DIFFICULTY).expect("episode");
    let mut env = Env::new(cat);
    env.reset("dns_failure", 5, DIFFICULTY).expect("reset");
    let cause = first_root_cause(&env);
    let end = env
        .step(&resolve(
            vec![cause.service],
            cause.fault_class,
            vec!["ev-1".into(), "ev-999".into(), "not-an-id".into()],
        ))
        .expect("resolve");
    let g = end.info.grade.expect("grade");
    assert_eq!(g.hallucinated_citations, 3);
    assert!(g.lost.iter().any(|l| l.reason == "hallucinated_citation"));
    assert!(g.score < honest.grade.score);
}

/// Wandering with bogus operations before the fix scores less than the clean fix.
#[test]
fn bogus_operations_on_the_way_cost_points() {
    let cat = catalog();
    let clean = run_episode(cat.clone(), "oracle", "cert_expiry", 2, DIFFICULTY).expect("episode");
    let mut env = Env::new(cat);
    env.reset("cert_expiry", 2, DIFFICULTY).expect("reset");
    let inst = env
        .episode()
        .expect("episode")
        .incident()
        .instance()
        .root_causes();
    let target = inst[0].service.clone();
    let bystander = ["payment-service", "inventory-service"]
        .into_iter()
        .find(|s| *s != target)
        .unwrap_or("payment-service");
    for _ in 0..2 {
        env.step(&Action::RestartService(RestartParams {
            service: bystander.into(),
            memory_mb: None,
            cpu_millis: None,
        }))
        .expect("bogus");
    }
    env.step(&Action::RestartService(RestartParams {
        service: target.clone(),
        memory_mb: None,
        cpu_millis: None,
    }))
    .expect("fix");
    let mut end = None;
    for _ in 0..30 {
        let s = env.step(&wait(1.0)).expect("wait");
        if s.truncated || env.episode().is_some_and(|e| e.incident().mitigated()) {
            end = Some(s);
            break;
        }
    }
    let g = match end {
        Some(s) if s.truncated => s.info.grade.expect("grade"),
        _ => env
            .step(&resolve(vec![target], inst[0].fault_class, Vec::new()))
            .expect("resolve")
            .info
            .grade
            .expect("grade"),
    };
    assert!(
        g.harmful_actions >= 1,
        "restarting a healthy bystander is harmful"
    );
    assert!(g.score < clean.grade.score);
}

/// Episodes the heuristic once lost, each to a habit a senior engineer would not have: resolving while a rollback
/// was still rolling out (`bad_deployment_cascade`), blaming the newest deploy among the database's clients rather
/// than the client its lock-wait lines name (`slow_query`), calling the incident over while a service it had
/// already looked at was crash-looping (`oom_crash`), and waiting out the budget after rolling back a red-herring
/// deploy while another service kept alerting (`oom_crash` 135 and 178).
#[test]
fn the_heuristic_verifies_like_a_senior_engineer() {
    let cat = catalog();
    let cases = [
        ("bad_deployment_cascade", 8, 0.5),
        ("bad_deployment_cascade", 16, 0.0),
        ("slow_query", 4, 0.5),
        ("slow_query", 83, 0.0),
        ("oom_crash", 13, 0.0),
        ("oom_crash", 6, 1.0),
        ("oom_crash", 135, 0.25),
        ("oom_crash", 178, 0.75),
    ];
    for (fam, seed, difficulty) in cases {
        let e = run_episode(cat.clone(), "heuristic", fam, seed, difficulty).expect("episode");
        assert!(
            e.grade.success,
            "heuristic failed {fam} seed {seed} difficulty {difficulty}: {:?}",
            e.grade.lost
        );
    }
}
