//! The incident runtime: a world, its fault program and its alert rules, advanced together on the simulated
//! clock. [`Incident::start`] runs the history up to the page; after that the caller steps it and applies
//! operations. Cloning an incident forks it.

use std::sync::Arc;

use firedrill_alerting::{AlertState, RuleEngine};
use firedrill_world::{Actor, OpError, Operation, ServiceId, World, WorldOptions};
use serde::Serialize;

use crate::instantiate::{ClearCondition, FaultAction, Instance, PhaseTrigger};

/// Why an incident could not start.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StartError {
    /// No alert fired before the page deadline.
    #[error("no alert fired by minute {deadline_min:.0}: the scenario never pages")]
    NeverPaged {
        /// The deadline, minutes.
        deadline_min: f64,
    },
}

/// An incident in progress.
#[derive(Debug, Clone)]
pub struct Incident {
    instance: Arc<Instance>,
    world: World,
    alerts: RuleEngine,
    injected: Vec<bool>,
    injected_at: Vec<Option<f64>>,
    phase_fired: Vec<bool>,
    next_scheduled: usize,
    page_s: Option<f64>,
    mitigated_since: Option<f64>,
}

/// Rule evaluations per chunk when looking ahead for the page (see `Incident::skip_to_earliest_page`).
const PAGE_SEARCH_EVALUATIONS: u64 = 8;

/// Start-of-world epoch: the seed shifts it by whole days so that dates vary but the time of day of the page
/// follows the scenario.
fn epoch_for(seed: u64) -> i64 {
    WorldOptions::default().epoch_unix_s + (seed % 97) as i64 * 86_400
}

impl Incident {
    /// Builds the world and runs it until the page: the first alert that fires after the minimum history.
    pub fn start(instance: Arc<Instance>) -> Result<Incident, StartError> {
        Incident::start_recycling(instance, None)
    }

    /// [`Incident::start`], taking over the alert-rule engine of a finished incident when it can
    /// ([`RuleEngine::rebind`]: the same rules over a world of the same topology), so that the label work of
    /// its first evaluation is not done again. The incident is the one [`Incident::start`] gives, whatever
    /// `previous` was.
    pub fn start_recycling(
        instance: Arc<Instance>,
        previous: Option<Incident>,
    ) -> Result<Incident, StartError> {
        let mut incident = Incident::build_recycling(instance, previous);
        if !incident.run_history_quietly() {
            incident.run_history_before_page();
            incident.skip_to_earliest_page()?;
        }
        incident.run_to_page()
    }

    /// [`Incident::start`] with every alert-rule evaluation of the history run, in order (no late start): the
    /// reference the fast start is checked against.
    pub fn start_evaluating_all(instance: Arc<Instance>) -> Result<Incident, StartError> {
        let mut incident = Incident::build(instance);
        incident.run_history_before_page();
        incident.skip_to_earliest_page()?;
        incident.run_to_page()
    }

    /// Runs the ticks before the minimum history without evaluating the alert rules, then begins them at a
    /// quiet evaluation near its end ([`RuleEngine::begin_late`]): in a healthy world before the fault, the
    /// hour of evaluations before it would change no alert. Returns false, having run nothing, when the rules
    /// cannot begin late or the history is too long for the frame ring to keep what the skipped evaluations
    /// read (then they could not be replayed); returns true otherwise, with every evaluation due by then run
    /// (all of them when no quiet one was found).
    fn run_history_quietly(&mut self) -> bool {
        let tick_s = self.world.tick_s();
        let ticks = (self.instance.min_history_s / tick_s).ceil() as usize;
        if !self.alerts.can_begin_late() || ticks >= self.world.history().capacity_ticks() / 4 {
            return false;
        }
        while self.world.now_s() + tick_s < self.instance.min_history_s {
            self.advance();
        }
        self.alerts.begin_late(&self.world);
        self.alerts.catch_up(&self.world);
        true
    }

    /// From the end of the history on, steps tick by tick until the page.
    fn run_to_page(mut self) -> Result<Incident, StartError> {
        let incident = &mut self;
        loop {
            incident.step();
            let now = incident.world.now_s();
            if now >= incident.instance.min_history_s {
                let fired_now = incident
                    .alerts
                    .history()
                    .iter()
                    .rev()
                    .take_while(|t| t.t_s >= now)
                    .any(|t| t.to == AlertState::Firing);
                if fired_now
                    || (incident.alerts.any_firing() && incident.injected.iter().any(|x| *x))
                {
                    incident.page_s = Some(now);
                    // The hour before the page is shared with every fork of the incident from here on, not
                    // copied: an episode's snapshot, or a repeated start, copies only the ticks after it.
                    incident.world.freeze_history();
                    return Ok(self);
                }
            }
            if now > incident.instance.page_deadline_s {
                return Err(StartError::NeverPaged {
                    deadline_min: incident.instance.page_deadline_s / 60.0,
                });
            }
        }
    }

    /// Runs the ticks before the earliest possible page (the minimum history) with the alert rules evaluated
    /// in batches rather than on every interval: alerts do not act on the world, and a batch renders each
    /// rule's windows once for all its evaluations (see [`RuleEngine::catch_up`]). Equivalent to stepping
    /// tick by tick; the page check starts with the first tick at or after the minimum history.
    fn run_history_before_page(&mut self) {
        if !self.alerts.can_lag() {
            return;
        }
        // A batch must still find every sample its earliest evaluation reads in the frame ring: catching up
        // every quarter of the ring's capacity leaves three quarters for the rules' windows (hours).
        let max_lag = (self.world.history().capacity_ticks() as u64 / 4).max(1);
        let tick_s = self.world.tick_s();
        while self.world.now_s() + tick_s < self.instance.min_history_s {
            self.advance();
            if self.world.tick_count() >= self.alerts.next_due_tick() + max_lag {
                self.alerts.catch_up(&self.world);
            }
        }
        self.alerts.catch_up(&self.world);
    }

    /// From the minimum history on, looks ahead for the page in chunks instead of evaluating the rules on
    /// every interval: a fork runs a chunk with the rules caught up once at its end, and the first tick at
    /// which the page could arrive (an alert turning firing, or one firing already) is read from its alert
    /// history. The incident then runs, again without per-interval evaluations, to just before that tick, and
    /// the caller's tick-by-tick loop takes over and decides exactly. Forking costs a copy of the world; a
    /// chunk of evaluations batched into range queries costs much more.
    ///
    /// When every rule has a compiled plan, a batch costs what evaluating on every interval does, and the
    /// look-ahead would only add the fork and the chunk it runs twice (about 14 % of a start): the caller's
    /// loop then runs from the minimum history on its own.
    fn skip_to_earliest_page(&mut self) -> Result<(), StartError> {
        if !self.alerts.can_lag() || self.alerts.all_planned() {
            return Ok(());
        }
        let chunk = PAGE_SEARCH_EVALUATIONS * self.alerts.interval_ticks();
        loop {
            let mut probe = self.clone();
            let from = probe.world.tick_count() + 1;
            for _ in 0..chunk {
                probe.advance();
                if probe.world.now_s() > probe.instance.page_deadline_s {
                    break;
                }
            }
            probe.alerts.catch_up(&probe.world);
            match probe.earliest_possible_page(from) {
                Some(page) => {
                    while self.world.tick_count() + 1 < page {
                        self.advance();
                    }
                    self.alerts.catch_up(&self.world);
                    return Ok(());
                }
                None if probe.world.now_s() > probe.instance.page_deadline_s => {
                    return Err(StartError::NeverPaged {
                        deadline_min: probe.instance.page_deadline_s / 60.0,
                    });
                }
                // No page in the chunk: the probe is exactly where this incident would be.
                None => *self = probe,
            }
        }
    }

    /// The first tick from `from` on at which the page condition of [`Incident::start`] could hold, judged
    /// from the alert history alone: an alert turns firing then, or one is firing while a fault has been
    /// injected. Never later than the true page; `None` if no tick up to the current one qualifies.
    fn earliest_possible_page(&self, from: u64) -> Option<u64> {
        let tick_s = self.world.tick_s();
        let history = self.alerts.history();
        let mut states = vec![AlertState::Inactive; self.alerts.instances().len()];
        let mut firing = 0usize;
        let mut next = 0;
        for tick in from..=self.world.tick_count() {
            let t_s = tick as f64 * tick_s;
            let mut turned_firing = false;
            while let Some(tr) = history.get(next).filter(|tr| tr.t_s <= t_s + tick_s * 0.5) {
                if states[tr.instance] == AlertState::Firing {
                    firing -= 1;
                }
                if tr.to == AlertState::Firing {
                    firing += 1;
                    turned_firing |= tr.t_s > t_s - tick_s * 0.5;
                }
                states[tr.instance] = tr.to;
                next += 1;
            }
            // A fault injected during tick k is visible to the check after it, at time k + 1 ticks.
            let injected = self
                .injected_at
                .iter()
                .flatten()
                .any(|&at| at <= t_s - tick_s * 0.5);
            if turned_firing || (firing > 0 && injected) {
                return Some(tick);
            }
        }
        None
    }

    /// Builds the world at second zero without running anything (for tools that replay a whole timeline; the
    /// page time stays unset).
    pub fn build(instance: Arc<Instance>) -> Incident {
        Incident::build_recycling(instance, None)
    }

    /// [`Incident::build`], with the alert-rule engine of `previous` rebound to the new world where it can be.
    fn build_recycling(instance: Arc<Instance>, previous: Option<Incident>) -> Incident {
        let options = WorldOptions {
            epoch_unix_s: epoch_for(instance.seed),
            ..WorldOptions::default()
        };
        let world = World::new(instance.topology.clone(), instance.seed, options);
        let rules = instance.alerts.clone();
        let interval = instance.alert_interval_ticks;
        let alerts = match previous {
            Some(p) => p
                .alerts
                .rebind(&p.world, &world, rules, interval)
                .unwrap_or_else(|| RuleEngine::new(instance.alerts.clone(), interval)),
            None => RuleEngine::new(rules, interval),
        };
        let n = instance.faults.len();
        Incident {
            world,
            alerts,
            injected: vec![false; n],
            injected_at: vec![None; n],
            phase_fired: vec![false; instance.phases.len()],
            next_scheduled: 0,
            page_s: None,
            mitigated_since: None,
            instance,
        }
    }

    /// The instance.
    pub fn instance(&self) -> &Instance {
        &self.instance
    }

    /// The shared instance.
    pub fn instance_arc(&self) -> &Arc<Instance> {
        &self.instance
    }

    /// The world.
    pub fn world(&self) -> &World {
        &self.world
    }

    /// The alert rules and their alerts.
    ///
    /// After [`Incident::start`], the rules may have begun at a quiet evaluation near the end of the history
    /// ([`RuleEngine::begin_late`]): the alerts active now are exact, but the history and the alerts seen
    /// before that evaluation are missing until [`Incident::complete_alert_history`] replays them.
    pub fn alerts(&self) -> &RuleEngine {
        &self.alerts
    }

    /// Replays the alert-rule evaluations a fast start skipped (see [`Incident::alerts`]), so that the alert
    /// history is that of evaluating every interval from the start. Always possible: an incident replays them
    /// by itself before its frame ring would evict what they read.
    pub fn complete_alert_history(&mut self) {
        // `step` replays them while the ring still holds the first tick, so this cannot fail.
        let _ = self.alerts.complete(&self.world);
    }

    /// When the page arrived, seconds since the world began (None only before start returns).
    pub fn page_s(&self) -> f64 {
        self.page_s.unwrap_or(f64::NAN)
    }

    /// When the budget ends, seconds.
    pub fn deadline_s(&self) -> f64 {
        self.page_s() + self.instance.budget_s
    }

    /// Whether the budget is spent.
    pub fn out_of_budget(&self) -> bool {
        self.world.now_s() >= self.deadline_s()
    }

    /// When each fault actually started (None if not yet).
    pub fn fault_onsets(&self) -> &[Option<f64>] {
        &self.injected_at
    }

    /// Advances one tick: due distractors and faults first, then the world, then phase triggers and alerts.
    pub fn step(&mut self) {
        // The next tick would evict the first from the frame ring: replay the evaluations a fast start skipped
        // while their samples are still there (after hours of simulated time, if ever).
        if self.alerts.skipped_evaluations()
            && self.world.tick_count() + 2 >= self.world.history().capacity_ticks() as u64
        {
            self.complete_alert_history();
        }
        self.advance();
        self.alerts.evaluate(&self.world);
    }

    /// One tick of everything but the alert rules (which nothing in the tick reads).
    fn advance(&mut self) {
        let next_t = self.world.now_s() + self.world.tick_s();
        while let Some(s) = self.instance.scheduled.get(self.next_scheduled) {
            if s.t_s > next_t {
                break;
            }
            let action = s.action.clone();
            self.next_scheduled += 1;
            self.perform(&action);
        }
        for i in 0..self.instance.faults.len() {
            if !self.injected[i] && self.instance.faults[i].onset_s.is_some_and(|t| t <= next_t) {
                self.inject(i);
            }
        }
        for p in 0..self.instance.phases.len() {
            if self.phase_fired[p] {
                continue;
            }
            let due = match &self.instance.phases[p].trigger {
                PhaseTrigger::At(t) => *t <= next_t,
                PhaseTrigger::AfterPage(d) => self.page_s.is_some_and(|pg| pg + d <= next_t),
                PhaseTrigger::When(service, metric, op, value) => metric
                    .value(&self.world, *service)
                    .is_some_and(|v| op.holds(v, *value)),
                PhaseTrigger::AfterOperation(..) => false,
            };
            if due {
                self.fire_phase(p);
            }
        }
        self.world.step();
        self.track_mitigation();
    }

    /// Applies an operator's operation. Phases triggered by it fire at once.
    pub fn apply(&mut self, op: &Operation, actor: &Actor) -> Result<usize, OpError> {
        let change = self.world.apply(op, actor)?;
        for p in 0..self.instance.phases.len() {
            if self.phase_fired[p] {
                continue;
            }
            if let PhaseTrigger::AfterOperation(name, service) = &self.instance.phases[p].trigger
                && name == op.name()
                && service.is_none_or(|s| s == op.service())
            {
                self.fire_phase(p);
            }
        }
        Ok(change)
    }

    fn fire_phase(&mut self, p: usize) {
        self.phase_fired[p] = true;
        for k in self.instance.phases[p].faults.clone() {
            if !self.injected[k] {
                self.inject(k);
            }
        }
    }

    fn inject(&mut self, i: usize) {
        self.injected[i] = true;
        self.injected_at[i] = Some(self.world.now_s());
        for action in self.instance.faults[i].actions.clone() {
            self.perform(&action);
        }
    }

    fn perform(&mut self, action: &FaultAction) {
        match action {
            // A scheduled change that is refused (say, a deploy of the running version after an operator rolled
            // forward) is simply skipped: the world stays consistent either way.
            FaultAction::Operation(op, actor) => {
                let _ = self.world.apply(op, actor);
            }
            FaultAction::Perturbation(p) => self.world.perturb(p),
        }
    }

    /// Whether fault `i`'s mechanism is gone, judged from the state.
    pub fn fault_cleared(&self, i: usize) -> bool {
        if !self.injected[i] {
            return false;
        }
        let f = &self.instance.faults[i];
        let w = &self.world;
        let id = f.service;
        let frame = w.frame(id);
        match &f.clear {
            ClearCondition::VersionGone(v) => {
                !w.runs_version(id, *v) && w.service(id).version != *v
            }
            ClearCondition::ConfigNot { key, value } => {
                w.service(id).config.get(key) != Some(value)
            }
            ClearCondition::MemoryFits => {
                let spec = &w.topology().service(id).spec;
                let per_replica = frame.admitted_rps as f64 / frame.ready.max(1) as f64;
                let need = spec.base_memory_mb + spec.memory_per_rps_mb * per_replica;
                w.service(id).memory_mb as f64 >= need * 1.1
            }
            ClearCondition::FlagOff(flag) => !w.flag_enabled(id, *flag as usize),
            ClearCondition::CertificateValid => frame.ready > 0 && frame.cert_expires_in_s > 0.0,
            ClearCondition::NotRateLimited => {
                frame.ready > 0 && frame.rejected_rps as f64 <= 0.01 * frame.offered_rps as f64
            }
            ClearCondition::NetworkAttached => !w.service(id).detached,
            ClearCondition::CpuHeadroom => frame.ready > 0 && frame.cpu_utilisation() < 0.9,
            ClearCondition::OutageOver => w.service(id).outage_error_ratio == 0.0,
            ClearCondition::QosMatched => frame.qos_mismatches == 0,
        }
    }

    /// Whether every condition of the mitigated state holds right now (not yet sustained).
    pub fn mitigated_now(&self) -> bool {
        let truth = &self.instance.truth;
        if truth.faults_cleared && !truth.root_causes.iter().all(|&i| self.fault_cleared(i)) {
            return false;
        }
        truth.slo.iter().all(|slo| {
            slo.services.iter().all(|&s| {
                let f = self.world.frame(s);
                slo.max_error_ratio.is_none_or(|m| f.error_ratio() <= m)
                    && slo.max_p99_ms.is_none_or(|m| f.p99_ms() <= m)
            })
        })
    }

    fn track_mitigation(&mut self) {
        if self.mitigated_now() {
            if self.mitigated_since.is_none() {
                self.mitigated_since = Some(self.world.now_s());
            }
        } else {
            self.mitigated_since = None;
        }
    }

    /// Whether the mitigated state has held for the sustain window.
    pub fn mitigated(&self) -> bool {
        self.mitigated_since
            .is_some_and(|since| self.world.now_s() - since >= self.instance.truth.sustain_s)
    }

    /// Since when the mitigated state has held, if it does.
    pub fn mitigated_since(&self) -> Option<f64> {
        self.mitigated_since
    }

    /// The service with this name.
    pub fn service_id(&self, name: &str) -> Option<ServiceId> {
        self.world.topology().service_id(name)
    }

    /// A compact digest of everything observable: every frame field and every cumulative total (the counters and
    /// histogram buckets metrics render from) of every tick held, every event, change and alert transition.
    /// Equal digests mean equal trajectories.
    pub fn digest(&self) -> TrajectoryHasher {
        let mut h = TrajectoryHasher::default();
        let ring = self.world.history();
        for t in ring.first_tick()..ring.end_tick() {
            for f in ring.tick(t).unwrap_or(&[]) {
                h.frame(f);
            }
            for s in 0..self.world.topology().len() {
                if let Some(totals) = ring.totals(t, s) {
                    h.totals(totals);
                }
            }
        }
        for e in self.world.events().iter() {
            h.write(&e.t_ms.to_le_bytes());
            h.write(&[e.kind as u8, e.replica]);
            h.write(&e.service.to_le_bytes());
            h.write(&e.a.to_bits().to_le_bytes());
            h.write(&e.b.to_bits().to_le_bytes());
            h.write(&e.c.to_le_bytes());
        }
        for c in self.world.changes() {
            h.write(format!("{:?}", c).as_bytes());
        }
        // The whole alert history, with the evaluations a fast start skipped replayed on a copy.
        let completed;
        let alerts = if self.alerts.skipped_evaluations() {
            let mut all = self.alerts.clone();
            let _ = all.complete(&self.world);
            completed = all;
            &completed
        } else {
            &self.alerts
        };
        for a in alerts.history() {
            h.write(&a.t_s.to_bits().to_le_bytes());
            h.write(&(a.rule as u32).to_le_bytes());
            for (k, v) in alerts.instance(a.instance).labels.iter() {
                h.write(k.as_bytes());
                h.write(&[0]);
                h.write(v.as_bytes());
                h.write(&[0]);
            }
            h.write(&[a.from as u8, a.to as u8]);
        }
        h
    }
}

/// A stable 128-bit hash (XXH3) of a trajectory, fed field by field in a fixed order.
#[derive(Default)]
pub struct TrajectoryHasher {
    inner: xxhash_rust::xxh3::Xxh3Default,
}

impl std::fmt::Debug for TrajectoryHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TrajectoryHasher({})", self.hex())
    }
}

impl TrajectoryHasher {
    /// Feeds bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
    }

    /// Feeds a tick's cumulative totals, field by field.
    pub fn totals(&mut self, t: &firedrill_world::frame::ServiceTotals) {
        let fields = t.server_errors.iter().chain([
            &t.pool_timeouts,
            &t.dns_failures,
            &t.tls_failures,
            &t.published,
            &t.consumed,
            &t.latency_sum_s,
        ]);
        for x in fields.chain(&t.latency_buckets) {
            self.write(&x.to_bits().to_le_bytes());
        }
    }

    /// Feeds a frame, field by field.
    pub fn frame(&mut self, f: &firedrill_world::ServiceFrame) {
        let floats = [
            f.offered_rps,
            f.admitted_rps,
            f.error_rps,
            f.rejected_rps,
            f.latency_median_ms,
            f.latency_sigma,
            f.cpu_cores,
            f.cpu_limit_cores,
            f.memory_limit_mb,
            f.pool_in_use,
            f.pool_max,
            f.pool_timeouts_rps,
            f.pool_wait_ms,
            f.lock_wait_ms,
            f.disk_used_gb,
            f.disk_size_gb,
            f.cert_expires_in_s,
            f.dns_failures_rps,
            f.tls_failures_rps,
            f.published_hz,
            f.delivered_hz,
            f.consumed_hz,
            f.queue_depth,
            f.cache_hit_ratio,
            f.db_connections,
            f.log_lines_per_s,
            f.log_drop_ratio,
        ];
        for x in floats.iter().chain(f.replica_memory_mb.iter()) {
            self.write(&x.to_bits().to_le_bytes());
        }
        self.write(&[
            f.ready,
            f.desired,
            f.pods,
            f.pending,
            f.version,
            f.err_cause as u8,
            f.health as u8,
            f.qos_mismatches,
        ]);
        self.write(&f.err_dep.to_le_bytes());
        for x in [
            f.requests_total,
            f.errors_total,
            f.rejected_total,
            f.cpu_seconds_total,
        ] {
            self.write(&x.to_bits().to_le_bytes());
        }
        self.write(&f.restarts_total.to_le_bytes());
        self.write(&f.oom_kills_total.to_le_bytes());
    }

    /// The hash as 32 hex digits.
    pub fn hex(&self) -> String {
        format!("{:032x}", self.inner.digest128())
    }
}

/// A summary of an alert transition for reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertChange {
    /// Seconds since the world began.
    pub t_s: f64,
    /// New state.
    pub state: AlertState,
    /// Value.
    pub value: f64,
}
