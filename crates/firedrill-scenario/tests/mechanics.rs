//! The mechanics behind each family, checked on the simulated state: symptoms follow from causes, waiting makes
//! things worse, symptomatic fixes help only for a while, and fixing the root heals dependents.

use firedrill_scenario::{Catalog, Incident};
use firedrill_world::{Actor, EventKind, Operation, ServiceFrame, ServiceId};

fn catalog() -> Catalog {
    Catalog::builtin().expect("built-in library")
}

fn start(id: &str, seed: u64) -> Incident {
    catalog().start(id, seed, 0.5).expect("start")
}

fn target(incident: &Incident) -> ServiceId {
    let name = &incident.instance().root_causes()[0].service;
    incident.service_id(name).expect("target")
}

fn entry(incident: &Incident) -> ServiceId {
    incident.world().topology().entries[0].service
}

/// Frames of one service from tick `from` to the latest.
fn frames_since(incident: &Incident, id: ServiceId, from: u64) -> Vec<ServiceFrame> {
    let ring = incident.world().history();
    (from.max(ring.first_tick())..ring.end_tick())
        .filter_map(|t| ring.get(t, id.index()).copied())
        .collect()
}

fn onset_tick(incident: &Incident) -> u64 {
    let onset = incident.fault_onsets()[0].expect("onset");
    (onset / incident.world().tick_s()).floor() as u64
}

fn ratio_5m(incident: &Incident, id: ServiceId) -> f64 {
    firedrill_telemetry::KeyMetric::ErrorRatio5m
        .value(incident.world(), id)
        .unwrap_or(0.0)
}

/// Applies the scenario's intended remediation.
fn remediate(incident: &mut Incident) {
    for op in incident.instance().truth.remediation.clone() {
        incident.apply(&op, &Actor::oncall()).expect("remediation");
    }
}

/// Restarts every pod of a service.
fn restart(incident: &mut Incident, service: ServiceId) {
    let op = Operation::Restart {
        service,
        memory_mb: None,
        cpu_millis: None,
    };
    incident.apply(&op, &Actor::oncall()).expect("restart");
}

fn steps(incident: &mut Incident, n: usize) {
    for _ in 0..n {
        incident.step();
    }
}

fn events_of(incident: &Incident, id: ServiceId, kind: EventKind) -> Vec<firedrill_world::Event> {
    incident
        .world()
        .events()
        .iter()
        .filter(|e| e.service == id.0 && e.kind == kind)
        .copied()
        .collect()
}

#[test]
fn oom_memory_climbs_to_the_limit_then_kills_and_backs_off() {
    for seed in 0..6 {
        let mut inc = start("oom_crash", seed);
        steps(&mut inc, 60);
        let t = target(&inc);
        let limit = inc.world().service(t).memory_mb as f64;
        let after = frames_since(&inc, t, onset_tick(&inc));
        // Memory rises tick over tick towards the limit before the first kill.
        let peak = after.iter().map(|f| f.memory_mb_max()).fold(0.0, f64::max);
        assert!(
            peak >= 0.85 * limit,
            "seed {seed}: peak {peak} vs limit {limit}"
        );
        let kills = events_of(&inc, t, EventKind::OomKilled);
        assert!(kills.len() >= 2, "seed {seed}: {} OOM kills", kills.len());
        assert!(
            kills
                .iter()
                .all(|k| k.a as f64 > limit && k.b as f64 == limit),
            "kills report working set over limit"
        );
        // Back-off grows between restarts of the same replica.
        let backoffs: Vec<f32> = events_of(&inc, t, EventKind::CrashLoopBackOff)
            .iter()
            .filter(|e| e.replica == 0)
            .map(|e| e.a)
            .collect();
        assert!(
            backoffs.windows(2).any(|w| w[1] > w[0]),
            "seed {seed}: back-off never grew: {backoffs:?}"
        );
        // Someone sees errors while the target has no ready replica: its callers, or its own clients at the edge.
        let entry = entry(&inc);
        let gaps: Vec<u64> = (onset_tick(&inc)..inc.world().tick_count())
            .filter(|&k| {
                inc.world()
                    .history()
                    .get(k, t.index())
                    .is_some_and(|f| f.ready == 0)
            })
            .collect();
        assert!(
            !gaps.is_empty(),
            "seed {seed}: no gap with zero ready replicas"
        );
        let upstream_errors = gaps.iter().any(|&k| {
            inc.world()
                .history()
                .get(k, entry.index())
                .is_some_and(|f| f.error_rps > 0.5)
        });
        assert!(
            upstream_errors,
            "seed {seed}: no errors at the entry point during gaps"
        );
    }
}

#[test]
fn db_pool_fills_times_out_and_a_restart_only_helps_until_the_leak_refills() {
    for seed in 0..4 {
        let inc = start("db_pool_exhaustion", seed);
        let t = target(&inc);
        let before: Vec<ServiceFrame> = frames_since(&inc, t, onset_tick(&inc));
        assert!(
            before
                .first()
                .is_some_and(|f| f.pool_in_use < 0.5 * f.pool_max),
            "seed {seed}: pool already full at onset"
        );
        assert!(
            before.iter().any(|f| f.pool_in_use >= 0.999 * f.pool_max),
            "seed {seed}: pool never filled"
        );
        assert!(
            before.iter().any(|f| f.pool_timeouts_rps > 0.0),
            "seed {seed}: no pool timeouts"
        );
        let entry = entry(&inc);
        assert!(
            ratio_5m(&inc, entry) > 0.02,
            "seed {seed}: errors did not reach the entry point"
        );
        // The database is not the one failing.
        let db = inc.service_id("postgres-db").expect("db");
        assert!(
            inc.world().frame(db).error_ratio() < 0.01,
            "seed {seed}: the database itself fails"
        );

        // A restart empties the pool for a while...
        let mut restarted = inc.clone();
        restart(&mut restarted, t);
        steps(&mut restarted, 12);
        let f = *restarted.world().frame(t);
        assert!(
            f.pool_in_use < 0.6 * f.pool_max,
            "seed {seed}: restart did not empty the pool"
        );
        assert!(
            restarted.world().frame(entry).error_ratio() < 0.02,
            "seed {seed}: restart did not help at all"
        );
        // ...until the leak refills it.
        steps(&mut restarted, 240);
        let refilled = frames_since(&restarted, t, restarted.world().tick_count() - 200)
            .iter()
            .any(|f| f.pool_in_use >= 0.999 * f.pool_max);
        assert!(
            refilled,
            "seed {seed}: the leak did not refill the pool after a restart"
        );

        // A rollback removes the leak for good.
        let mut rolled = inc.clone();
        remediate(&mut rolled);
        steps(&mut rolled, 240);
        let tail = frames_since(&rolled, t, rolled.world().tick_count() - 160);
        assert!(
            tail.iter().all(|f| f.pool_in_use < 0.5 * f.pool_max),
            "seed {seed}: pool filled again after rollback"
        );
    }
}

#[test]
fn slow_query_lock_waits_rise_after_the_deploy_and_a_rollback_clears_them() {
    for seed in 0..4 {
        let inc = start("slow_query", seed);
        let db = inc.service_id("postgres-db").expect("db");
        let onset = onset_tick(&inc);
        let ring = inc.world().history();
        let before = ring.get(onset - 2, db.index()).expect("frame").lock_wait_ms;
        assert!(
            before < 1.0,
            "seed {seed}: lock waits before the deploy: {before}"
        );
        let after = inc.world().frame(db).lock_wait_ms;
        assert!(
            after > 100.0,
            "seed {seed}: lock waits after the deploy: {after}"
        );
        assert!(
            !events_of(&inc, db, EventKind::LockWaits).is_empty(),
            "seed {seed}: no lock-wait log"
        );
        let mut rolled = inc.clone();
        remediate(&mut rolled);
        steps(&mut rolled, 16);
        assert!(
            rolled.world().frame(db).lock_wait_ms < 1.0,
            "seed {seed}: rollback did not clear lock waits"
        );
    }
}

#[test]
fn disk_fills_after_debug_logging_and_frees_after_the_fix() {
    for seed in 0..4 {
        let inc = start("disk_full", seed);
        let t = target(&inc);
        let after = frames_since(&inc, t, onset_tick(&inc));
        assert!(
            after
                .windows(2)
                .take(20)
                .all(|w| w[1].disk_used_gb >= w[0].disk_used_gb),
            "seed {seed}: disk not filling"
        );
        let mut idle = inc.clone();
        steps(&mut idle, 100);
        let f = *idle.world().frame(t);
        assert!(
            f.disk_used_gb >= 0.99 * f.disk_size_gb,
            "seed {seed}: disk never full"
        );
        assert!(
            !events_of(&idle, t, EventKind::DiskFull).is_empty(),
            "seed {seed}: no disk-full event"
        );
        // Writes fail while the volume is full; log rotation frees a little now and then, so look at the
        // last five minutes rather than one tick.
        let recent = frames_since(&idle, t, idle.world().tick_count().saturating_sub(20));
        let worst = recent.iter().map(|f| f.error_ratio()).fold(0.0, f64::max);
        assert!(
            worst > 0.05,
            "seed {seed}: full disk causes no errors (worst {worst:.3} in 5 minutes)"
        );
        // Restarting changes nothing: the configuration stays.
        let mut restarted = idle.clone();
        restart(&mut restarted, t);
        steps(&mut restarted, 20);
        assert!(
            restarted.world().frame(t).disk_used_gb >= 0.99 * f.disk_size_gb,
            "seed {seed}: restart freed the disk"
        );
        let mut fixed = idle.clone();
        remediate(&mut fixed);
        steps(&mut fixed, 40);
        let g = *fixed.world().frame(t);
        assert!(
            g.disk_used_gb < 0.9 * g.disk_size_gb && g.error_ratio() < 0.02,
            "seed {seed}: fix did not free space"
        );
    }
}

#[test]
fn expired_certificate_breaks_callers_until_a_restart_loads_the_renewed_one() {
    for seed in 0..4 {
        let inc = start("cert_expiry", seed);
        let t = target(&inc);
        let callers_fail = inc
            .world()
            .topology()
            .callers(t)
            .any(|c| inc.world().frame(c).tls_failures_rps > 0.0)
            || inc.world().frame(t).error_ratio() > 0.5;
        assert!(callers_fail, "seed {seed}: nobody sees handshake failures");
        assert!(inc.world().frame(t).cert_expires_in_s < 0.0);
        let mut fixed = inc.clone();
        restart(&mut fixed, t);
        steps(&mut fixed, 12);
        assert!(
            fixed.world().frame(t).cert_expires_in_s > 0.0,
            "seed {seed}: restart did not load the renewed certificate"
        );
        assert!(
            fixed
                .world()
                .topology()
                .callers(t)
                .all(|c| fixed.world().frame(c).tls_failures_rps == 0.0)
        );
    }
}

#[test]
fn dns_misconfiguration_fails_outgoing_calls_until_restored_and_restart_does_not_help() {
    for seed in 0..4 {
        let inc = start("dns_failure", seed);
        let t = target(&inc);
        assert!(
            inc.world().frame(t).dns_failures_rps > 0.0,
            "seed {seed}: no resolution failures"
        );
        let mut restarted = inc.clone();
        restart(&mut restarted, t);
        steps(&mut restarted, 12);
        assert!(
            restarted.world().frame(t).dns_failures_rps > 0.0,
            "seed {seed}: a restart fixed DNS"
        );
        let mut fixed = inc.clone();
        remediate(&mut fixed);
        steps(&mut fixed, 4);
        assert_eq!(fixed.world().frame(t).dns_failures_rps, 0.0, "seed {seed}");
    }
}

#[test]
fn rate_limit_rejects_until_scaled_or_raised_and_restart_does_not_help() {
    for seed in 0..6 {
        let inc = start("rate_limit_exhaustion", seed);
        let t = target(&inc);
        assert!(
            inc.world().frame(t).rejected_rps > 0.0,
            "seed {seed}: nothing rejected"
        );
        let mut restarted = inc.clone();
        restart(&mut restarted, t);
        steps(&mut restarted, 12);
        assert!(
            restarted.world().frame(t).rejected_rps > 0.0,
            "seed {seed}: a restart fixed the rate limit"
        );
        let mut scaled = inc.clone();
        let replicas = scaled.world().service(t).desired * 2;
        scaled
            .apply(
                &Operation::Scale {
                    service: t,
                    replicas,
                },
                &Actor::oncall(),
            )
            .expect("scale");
        steps(&mut scaled, 12);
        assert_eq!(
            scaled.world().frame(t).rejected_rps,
            0.0,
            "seed {seed}: scaling did not help"
        );
        let mut raised = inc.clone();
        raised
            .apply(
                &Operation::SetConfig {
                    service: t,
                    key: "rate_limit.rps_per_replica".into(),
                    value: "1000".into(),
                },
                &Actor::oncall(),
            )
            .expect("raise");
        steps(&mut raised, 4);
        assert_eq!(
            raised.world().frame(t).rejected_rps,
            0.0,
            "seed {seed}: raising the limit did not help"
        );
    }
}

#[test]
fn bad_deploy_saturates_the_new_version_and_a_rollback_recovers() {
    for seed in 0..4 {
        let mut inc = start("bad_deployment_cascade", seed);
        steps(&mut inc, 60);
        let t = target(&inc);
        // CPU per request rises several-fold with the new version.
        let per_request = |f: &ServiceFrame| f.cpu_cores as f64 / (f.admitted_rps as f64).max(1e-9);
        let ring = inc.world().history();
        let before = per_request(ring.get(onset_tick(&inc) - 2, t.index()).expect("frame"));
        let after = per_request(inc.world().frame(t));
        assert!(
            after > 2.0 * before,
            "seed {seed}: CPU per request {before:.5} -> {after:.5}"
        );
        assert!(
            !events_of(&inc, t, EventKind::OomKilled).is_empty(),
            "seed {seed}: the bad version never ran out of memory"
        );
        let mut rolled = inc.clone();
        remediate(&mut rolled);
        steps(&mut rolled, 60);
        let f = rolled.world().frame(t);
        assert!(
            f.error_ratio() < 0.02 && f.cpu_utilisation() < 0.9,
            "seed {seed}: no recovery after rollback"
        );
    }
}

#[test]
fn no_fault_burst_pages_and_ends_by_itself() {
    for seed in 0..4 {
        let mut inc = start("no_fault_control", seed);
        let entry = entry(&inc);
        assert!(
            inc.world().frame(entry).rejected_rps > 0.0
                || inc.world().frame(entry).error_ratio() > 0.0
        );
        steps(&mut inc, 60);
        assert!(
            inc.mitigated(),
            "seed {seed}: the control did not settle by itself"
        );
    }
}

#[test]
fn a_leaf_fault_reaches_the_entry_point_and_fixing_the_root_heals_dependents_quickly() {
    // db_pool with a leaf client: errors appear at the entry point; after the rollback every service is
    // healthy again within a bounded number of ticks.
    for seed in 0..6 {
        let inc = start("db_pool_exhaustion", seed);
        let entry = entry(&inc);
        assert!(
            ratio_5m(&inc, entry) > 0.02,
            "seed {seed}: no symptom at the entry point"
        );
        let mut fixed = inc.clone();
        remediate(&mut fixed);
        let mut healed_after = None;
        for k in 0..40 {
            fixed.step();
            let all_ok = fixed
                .world()
                .frames()
                .iter()
                .all(|f| f.error_ratio() < 0.02);
            if all_ok {
                healed_after = Some(k + 1);
                break;
            }
        }
        assert!(
            healed_after.is_some(),
            "seed {seed}: dependents not healed within 40 ticks (10 minutes)"
        );
    }
}
