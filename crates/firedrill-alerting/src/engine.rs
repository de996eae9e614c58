//! Rule evaluation on the simulated clock, with the state machine of Prometheus's alerting rules
//! (`rules/alerting.go`): an alert is pending from the first evaluation that returns it, fires once it has
//! been returned at every evaluation for `for`, keeps firing for `keep_firing_for` after it stops being
//! returned, and is resolved after that.

use std::collections::BTreeMap;
use std::sync::Arc;

use firedrill_promql::{Engine, EngineOptions, InstantPlan, Labels, Series, Value};
use firedrill_query::{CachedWorldStorage, SeriesCache, WorldStorage};
use firedrill_world::World;
use serde::Serialize;

use crate::cache::FamilyCache;
use crate::rule::AlertingRule;
use crate::template::Data;

/// State of an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// Not returned by the expression (or resolved).
    Inactive,
    /// Returned, but not yet for `for`.
    Pending,
    /// Firing.
    Firing,
}

impl AlertState {
    /// Prometheus's `alertstate` label value (`inactive`, `pending`, `firing`).
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert (a rule and one label set of its result) over the whole episode.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertInstance {
    /// Index of the rule.
    pub rule: usize,
    /// Labels: the result's (without `__name__`), the rule's, and `alertname`. Shared, as they never change
    /// once the alert exists: forking the engine does not copy them.
    pub labels: Arc<BTreeMap<String, String>>,
    /// The result's labels (without `__name__`) at the latest evaluation that returned the alert: with
    /// [`AlertInstance::value`], what its annotations are expanded from ([`RuleEngine::annotations`]). Kept
    /// instead of the expanded text because formatting every annotation at every evaluation cost more than
    /// the rest of the state machine, and they are read only when an alert is shown.
    result: Labels,
    /// Current state.
    pub state: AlertState,
    /// When the current activation began (Unix ms).
    pub active_at_ms: i64,
    /// The same moment in simulated seconds since the world began.
    pub active_at_s: f64,
    /// When it last started firing (Unix ms).
    pub fired_at_ms: Option<i64>,
    /// Since when a firing alert has not been returned (Unix ms), while `keep_firing_for` holds it.
    keep_firing_since_ms: Option<i64>,
    /// The value at the latest evaluation that returned the alert.
    pub value: f64,
}

impl AlertInstance {
    /// The `service` label, if any.
    pub fn service(&self) -> Option<&str> {
        self.labels.get("service").map(String::as_str)
    }
}

/// One change of state of an alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertTransition {
    /// Simulated seconds since the world began.
    pub t_s: f64,
    /// Index of the rule.
    pub rule: usize,
    /// Index of the alert ([`RuleEngine::instance`]).
    pub instance: usize,
    /// Previous state.
    pub from: AlertState,
    /// New state.
    pub to: AlertState,
    /// The alert's value at that evaluation (its last value when it resolves).
    pub value: f64,
}

/// A pending or firing alert, as an alert receiver sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActiveAlert {
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// Pending or firing.
    pub state: AlertState,
    /// When the alert became active, simulated seconds since the world began.
    pub active_since_s: f64,
    /// When it started firing (Unix ms), if it is firing: the `startsAt` Prometheus sends to Alertmanager.
    pub fired_at_unix_ms: Option<i64>,
    /// Latest value.
    pub value: f64,
}

/// Evaluates a set of alerting rules against a world at a fixed interval and keeps every alert's history.
///
/// Cloning is cheap in rules (shared) and copies the alert states, so a forked incident forks its alerts.
#[derive(Debug, Clone)]
pub struct RuleEngine {
    rules: Arc<[AlertingRule]>,
    interval_ticks: u64,
    engine: Engine,
    /// Each rule compiled for repeated instant evaluation, where its shape allows ([`InstantPlan`]): the
    /// engine's result with the label work kept between evaluations.
    plans: Vec<Option<InstantPlan>>,
    /// The samples the plans read, kept between evaluations so each renders only the ticks since the last.
    series: SeriesCache,
    instances: Vec<AlertInstance>,
    /// (rule, labels) to instance index; ordered, so nothing depends on hash order. This and `seen` change
    /// only when an alert appears, so forks of the engine share them until one does (copy on write).
    index: Arc<BTreeMap<(usize, Labels), usize>>,
    /// Per rule whose label templates do not read `$value` (`None` for the others): each result label set
    /// seen, to the alert it makes. An alert's labels then depend on the result's labels alone, so a rule
    /// returning the same series at every evaluation skips the label work (template expansion, building the
    /// label set and looking it up) after the first.
    seen: Vec<Option<Arc<BTreeMap<Labels, usize>>>>,
    history: Vec<AlertTransition>,
    /// The latest evaluation error of each rule (Prometheus's rule health), if the latest evaluation failed.
    errors: Vec<Option<String>>,
    evaluations: u64,
    /// The world tick of the next evaluation that has not run.
    next_due_tick: u64,
    /// After [`RuleEngine::begin_late`]: the tick of the quiet evaluation this engine began with. The
    /// evaluations before it were skipped; [`RuleEngine::complete`] replays them.
    began_at: Option<u64>,
}

/// Why [`RuleEngine::complete`] cannot replay the evaluations a late start skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the world no longer holds the samples of the evaluations skipped before tick {began_at} (its oldest \
     tick is {oldest})"
)]
pub struct SkippedEvaluationsLost {
    /// The tick the engine began at.
    pub began_at: u64,
    /// The world's oldest tick still held.
    pub oldest: u64,
}

impl RuleEngine {
    /// An engine evaluating `rules` every `interval_ticks` ticks (at least 1).
    pub fn new(rules: Vec<AlertingRule>, interval_ticks: u64) -> RuleEngine {
        let n = rules.len();
        let engine = Engine::new(EngineOptions::default());
        let plans = rules
            .iter()
            .map(|r| InstantPlan::compile(&r.expr, engine.options()))
            .collect();
        let seen = rules
            .iter()
            .map(|r| {
                r.labels
                    .iter()
                    .all(|(_, t)| !t.reads_value())
                    .then(Arc::default)
            })
            .collect();
        RuleEngine {
            rules: rules.into(),
            interval_ticks: interval_ticks.max(1),
            engine,
            plans,
            series: SeriesCache::default(),
            instances: Vec::new(),
            index: Arc::default(),
            seen,
            history: Vec::new(),
            errors: vec![None; n],
            evaluations: 0,
            next_due_tick: interval_ticks.max(1),
            began_at: None,
        }
    }

    /// This engine, which evaluated `rules` (as written) every `interval_ticks` over world `old`, made new for
    /// world `new`: what [`RuleEngine::new`] would build, but keeping the label work its plans and series cache
    /// did, which depends on the series' label sets alone. Only when the rules and the interval are the same and
    /// every series it read has the same labels in both worlds (see [`SeriesCache::rebind`]); `None` otherwise
    /// (build one with [`RuleEngine::new`]). A new episode of the same topology then skips most of its first,
    /// cold evaluation.
    pub fn rebind(
        mut self,
        old: &World,
        new: &World,
        rules: Vec<AlertingRule>,
        interval_ticks: u64,
    ) -> Option<RuleEngine> {
        let same_rules = rules.len() == self.rules.len()
            && rules
                .iter()
                .zip(self.rules.iter())
                .all(|(a, b)| a.spec == b.spec);
        if !same_rules
            || interval_ticks.max(1) != self.interval_ticks
            || !self.series.rebind(old, new)
        {
            return None;
        }
        self.rules = rules.into();
        self.forget_alerts();
        Some(self)
    }

    /// Forgets every evaluation (alerts, their history, errors, the count and the schedule), keeping the plans
    /// and the series cache: what they learnt about the series' label sets holds for any evaluation of the same
    /// world, and the cache's samples depend on their tick alone.
    fn forget_alerts(&mut self) {
        self.instances.clear();
        self.index = Arc::default();
        for seen in self.seen.iter_mut().flatten() {
            *seen = Arc::default();
        }
        self.history.clear();
        self.errors = vec![None; self.rules.len()];
        self.evaluations = 0;
        self.next_due_tick = self.interval_ticks;
        self.began_at = None;
    }

    /// The rules.
    pub fn rules(&self) -> &[AlertingRule] {
        &self.rules
    }

    /// Ticks between evaluations.
    pub fn interval_ticks(&self) -> u64 {
        self.interval_ticks
    }

    /// Every alert seen so far, in order of first appearance.
    pub fn instances(&self) -> &[AlertInstance] {
        &self.instances
    }

    /// One alert.
    pub fn instance(&self, index: usize) -> &AlertInstance {
        &self.instances[index]
    }

    /// An alert's annotations, expanded from its labels and value at the latest evaluation that returned it
    /// (as Prometheus expands them at each evaluation; here only when asked).
    pub fn annotations(&self, index: usize) -> BTreeMap<String, String> {
        let inst = &self.instances[index];
        annotations(&self.rules[inst.rule], &inst.result, inst.value)
    }

    /// Every state change so far, in time order.
    pub fn history(&self) -> &[AlertTransition] {
        &self.history
    }

    /// The latest evaluation error of a rule, if its latest evaluation failed.
    pub fn rule_error(&self, rule: usize) -> Option<&str> {
        self.errors.get(rule).and_then(|e| e.as_deref())
    }

    /// Evaluations run so far.
    pub fn evaluations(&self) -> u64 {
        self.evaluations
    }

    /// Runs the evaluations that are due by the world's current tick (one every `interval_ticks` ticks,
    /// the first one interval after the world began) and have not run yet: called after every tick, this
    /// evaluates exactly on the interval; called later, it catches up (see [`RuleEngine::catch_up`]).
    pub fn evaluate(&mut self, world: &World) {
        self.catch_up(world);
    }

    /// Runs every evaluation due by the world's current tick that has not run yet, in time order, as if each
    /// had run on its tick.
    ///
    /// Alerts do not act on the world, so evaluations may lag behind it: an incident that simulates an hour
    /// of history can evaluate its rules once at the end. Rules with a compiled [`InstantPlan`] are then
    /// evaluated time by time through the series cache (which renders each tick once); the others as one
    /// range query over the pending evaluation times, which renders every window once instead of once per
    /// evaluation. The state machine then steps through the results in order. The result is exactly that of evaluating on
    /// each tick, provided the world still holds the samples the earliest pending evaluation reads (its
    /// frame ring has not evicted them) and every rule [reads only its past](AlertingRule::range_evaluable);
    /// a rule that does not, or whose range query fails, is evaluated step by step, still at the pending
    /// times, which matches only if it reads no samples newer than each time (see
    /// [`RuleEngine::can_lag`]).
    pub fn catch_up(&mut self, world: &World) {
        let now = world.tick_count();
        if now < self.next_due_tick {
            return;
        }
        let first = self.next_due_tick;
        let ticks: Vec<u64> = (first..=now)
            .step_by(self.interval_ticks as usize)
            .collect();
        self.next_due_tick = ticks.last().map_or(first, |&t| t + self.interval_ticks);
        self.evaluate_ticks(world, &ticks);
    }

    /// Whether evaluations may lag behind the world without changing any result: every rule reads only
    /// samples at or before its evaluation time ([`AlertingRule::range_evaluable`]).
    pub fn can_lag(&self) -> bool {
        self.rules.iter().all(AlertingRule::range_evaluable)
    }

    /// Whether every rule is evaluated through a compiled plan (see [`InstantPlan`]). Such an evaluation costs
    /// the same whether it runs on its tick or later in a batch, so deferring evaluations saves nothing.
    pub fn all_planned(&self) -> bool {
        self.plans.iter().all(Option::is_some)
    }

    /// The world tick of the next evaluation that has not run.
    pub fn next_due_tick(&self) -> u64 {
        self.next_due_tick
    }

    /// Evaluates every rule at the world's current time, outside the schedule.
    pub fn evaluate_now(&mut self, world: &World) {
        self.evaluate_ticks(world, &[world.tick_count()]);
    }

    /// Whether [`RuleEngine::begin_late`] may be used: every rule has a compiled plan (an evaluation at any
    /// past time then costs what it costs on its tick), reads only its past, and has no `keep_firing_for`
    /// (which would let an alert outlive an evaluation that returns nothing).
    pub fn can_begin_late(&self) -> bool {
        self.all_planned() && self.can_lag() && self.rules.iter().all(|r| r.keep_firing_for_ms == 0)
    }

    /// Begins a new engine at a recent evaluation instead of the first: from the last evaluation due by the
    /// world's current tick backwards (then 5, 15 and 30 evaluations back), looks for a *quiet* one, at which
    /// every rule evaluates without error and returns nothing, and makes it this engine's first evaluation.
    /// Returns whether one was found; if not, the engine is unchanged.
    ///
    /// Exact, because an evaluation's result depends only on the samples it reads, never on the alert states,
    /// and after a quiet evaluation every alert is inactive whatever came before (no rule holds one with
    /// `keep_firing_for`, see [`RuleEngine::can_begin_late`]): the states from then on are those of evaluating
    /// every interval from the start. What a late start lacks is the history before it (the transitions, the
    /// alerts seen only then), which [`RuleEngine::complete`] replays on demand; [`RuleEngine::evaluations`]
    /// counts the skipped evaluations already. An incident starts this way: before the fault, a healthy world
    /// makes every evaluation of its history quiet, and the hour of evaluations that would change nothing is
    /// not run.
    ///
    /// Only for a new engine that has not evaluated yet and [can begin late](RuleEngine::can_begin_late).
    /// When no quiet evaluation is found, the engine has evaluated nothing, as before the call; only what its
    /// plans and series cache learnt about the world's series while probing is kept.
    pub fn begin_late(&mut self, world: &World) -> bool {
        if self.evaluations > 0 || !self.can_begin_late() {
            return false;
        }
        let interval = self.interval_ticks;
        let now = world.tick_count();
        if now < interval {
            return false;
        }
        let last = now / interval * interval;
        for back in [0, 5, 15, 30] {
            let Some(at) = last.checked_sub(back * interval).filter(|&t| t >= interval) else {
                break;
            };
            // Each probe evaluates in place: a probe that is not quiet leaves alerts and errors, which are
            // forgotten, and what its plans and cache learnt about the world's series (their label sets, the
            // plans' numbering of them), which holds at any time, so the next probe does not start cold. (A
            // copy of the engine per probe cost more than the label work it kept.)
            self.evaluate_ticks(world, &[at]);
            if self.instances.is_empty() && self.errors.iter().all(Option::is_none) {
                self.evaluations = at / interval;
                self.next_due_tick = at + interval;
                self.began_at = Some(at);
                return true;
            }
            self.forget_alerts();
        }
        false
    }

    /// Whether the engine began late and has not replayed the evaluations it skipped
    /// ([`RuleEngine::complete`]): until then, [`RuleEngine::history`] and [`RuleEngine::instances`] hold only
    /// what followed the quiet evaluation it began at.
    pub fn skipped_evaluations(&self) -> bool {
        self.began_at.is_some()
    }

    /// Replays the evaluations a late start skipped ([`RuleEngine::begin_late`]), so that the history, the
    /// alerts and their order are exactly those of evaluating every interval from the start. Needs the world
    /// that the engine evaluates, still holding every tick from its first (its frame ring evicts the oldest
    /// ticks after hours); does nothing for an engine that did not begin late.
    pub fn complete(&mut self, world: &World) -> Result<(), SkippedEvaluationsLost> {
        let Some(began_at) = self.began_at else {
            return Ok(());
        };
        // The world stores its ticks from 1 on (tick 0 is the state it was built in).
        let oldest = world.history().first_tick();
        if oldest > 1 {
            return Err(SkippedEvaluationsLost { began_at, oldest });
        }
        let mut before = RuleEngine::new(self.rules.to_vec(), self.interval_ticks);
        let ticks: Vec<u64> = (self.interval_ticks..=began_at)
            .step_by(self.interval_ticks as usize)
            .collect();
        before.evaluate_ticks(world, &ticks);
        // Alerts seen before keep their places (they appeared first); the later ones follow in the order they
        // appeared. After the quiet evaluation every alert was inactive, so the later state of an alert seen on
        // both sides is this engine's.
        let mut key_of: Vec<Option<(usize, Labels)>> = vec![None; self.instances.len()];
        for (key, &i) in self.index.iter() {
            key_of[i] = Some(key.clone());
        }
        let mut instances = before.instances;
        let mut index = Arc::unwrap_or_clone(before.index);
        let mut remap = Vec::with_capacity(self.instances.len());
        for (inst, key) in std::mem::take(&mut self.instances).into_iter().zip(key_of) {
            let key = key.expect("every alert is indexed");
            let i = match index.get(&key) {
                Some(&i) => {
                    instances[i] = inst;
                    i
                }
                None => {
                    instances.push(inst);
                    index.insert(key, instances.len() - 1);
                    instances.len() - 1
                }
            };
            remap.push(i);
        }
        let mut history = before.history;
        history.extend(std::mem::take(&mut self.history).into_iter().map(|mut t| {
            t.instance = remap[t.instance];
            t
        }));
        // The alerts this engine resolved keep theirs under their new indices; those seen only before the
        // late start are resolved again when they come back.
        for seen in self.seen.iter_mut().flatten() {
            for i in Arc::make_mut(seen).values_mut() {
                *i = remap[*i];
            }
        }
        self.instances = instances;
        self.index = Arc::new(index);
        self.history = history;
        self.began_at = None;
        Ok(())
    }

    /// Evaluates every rule at each of `ticks` (ascending, none after the world's current tick) and applies
    /// the results in time order, rule by rule within a time.
    fn evaluate_ticks(&mut self, world: &World, ticks: &[u64]) {
        if ticks.is_empty() {
            return;
        }
        let times: Vec<i64> = ticks.iter().map(|&t| tick_ms(world, t)).collect();
        let step_ms = match times.as_slice() {
            [a, b, ..] => b - a,
            _ => 0,
        };
        // Whole-millisecond ticks make a regular grid; anything else is evaluated step by step.
        let regular = step_ms > 0
            && times
                .iter()
                .enumerate()
                .all(|(i, &t)| t == times[0] + i as i64 * step_ms);
        if !self.series.serves_only() {
            // The plans are the cache's only readers: it need not render what none of their selectors matches
            // (the request-serving rules' `job` matchers leave out the database, cache and third-party jobs).
            let selectors: Vec<_> = self
                .plans
                .iter()
                .flatten()
                .flat_map(|p| p.selectors())
                .collect();
            self.series.serve_only(world, &selectors);
        }
        let storage = &FamilyCache::new(WorldStorage::new(world));
        let keyed = &CachedWorldStorage::new(world, &mut self.series);
        let rules = Arc::clone(&self.rules);
        let engine = &self.engine;
        // Rules without a plan are batched into one range query each where they can be; the others are evaluated
        // time by time, all rules at one time before the next, so the series cache moves forward with them.
        let batched: Vec<Option<Vec<Evaluated>>> = rules
            .iter()
            .zip(&self.plans)
            .map(|(rule, plan)| {
                if plan.is_some() || !regular || !rule.range_evaluable() {
                    return None;
                }
                let last = times[times.len() - 1];
                match engine.range_expr(storage, &rule.expr, times[0], last, step_ms) {
                    Ok(Value::Matrix(series)) => split_steps(series, &times),
                    _ => None,
                }
            })
            .collect();
        let mut per_rule: Vec<Vec<Evaluated>> = batched
            .iter()
            .map(|b| Vec::with_capacity(if b.is_some() { 0 } else { times.len() }))
            .collect();
        for &t in &times {
            for (ri, (rule, plan)) in rules.iter().zip(self.plans.iter_mut()).enumerate() {
                if batched[ri].is_some() {
                    continue;
                }
                let found = match plan.as_mut().and_then(|p| p.eval(keyed, t)) {
                    Some(v) => results(rule, v),
                    None => match engine.instant_expr(storage, &rule.expr, t) {
                        Ok(v) => results(rule, v),
                        Err(e) => Err(e.to_string()),
                    },
                };
                per_rule[ri].push(found);
            }
        }
        for (ri, b) in batched.into_iter().enumerate() {
            if let Some(b) = b {
                per_rule[ri] = b;
            }
        }
        let mut per_rule: Vec<_> = per_rule.into_iter().map(Vec::into_iter).collect();
        for (&tick, &ts) in ticks.iter().zip(&times) {
            self.evaluations += 1;
            let t_s = tick as f64 * world.tick_s();
            for (ri, rule) in rules.iter().enumerate() {
                let Some(found) = per_rule[ri].next() else {
                    continue;
                };
                // A failing rule changes no alert, as in Prometheus (the rule's health turns bad).
                self.errors[ri] = found
                    .and_then(|found| self.apply(ri, rule, found, ts, t_s))
                    .err();
            }
        }
    }

    fn apply(
        &mut self,
        ri: usize,
        rule: &AlertingRule,
        found: Vec<Sampled>,
        ts: i64,
        t_s: f64,
    ) -> Result<(), String> {
        let duplicate = || {
            format!(
                "vector contains metrics with the same labelset after applying alert labels (rule {})",
                rule.name()
            )
        };
        // Every returned alert is resolved to its instance before any state changes: a duplicate label set
        // fails the whole evaluation of the rule, as in Prometheus. Alerts already known are found by index;
        // the label work (templates, the label set) is done only for result label sets not seen before.
        let mut returned: Vec<(usize, Labels, f64)> = Vec::with_capacity(found.len());
        let mut new: BTreeMap<Labels, (BTreeMap<String, String>, Labels, f64)> = BTreeMap::new();
        for (result, value) in found {
            if let Some(&i) = self.seen[ri].as_ref().and_then(|seen| seen.get(&result)) {
                returned.push((i, result, value));
                continue;
            }
            let (key, all) = alert_labels(rule, &result, value);
            let key = (ri, key);
            match self.index.get(&key) {
                Some(&i) => {
                    if let Some(seen) = &mut self.seen[ri] {
                        Arc::make_mut(seen).insert(result.clone(), i);
                    }
                    returned.push((i, result, value));
                }
                // Not an alert's labels yet, so equal to no known alert's: only to another new one.
                None => {
                    if new.insert(key.1, (all, result, value)).is_some() {
                        return Err(duplicate());
                    }
                }
            }
        }
        returned.sort_unstable_by_key(|r| r.0);
        if returned.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(duplicate());
        }
        // New alerts take the next indices in label order, after every known one (so `returned` stays sorted).
        for (key, (all, result, value)) in new {
            let i = self.instances.len();
            self.instances.push(AlertInstance {
                rule: ri,
                labels: Arc::new(all),
                result: Labels::empty(),
                state: AlertState::Inactive,
                active_at_ms: ts,
                active_at_s: t_s,
                fired_at_ms: None,
                keep_firing_since_ms: None,
                value,
            });
            Arc::make_mut(&mut self.index).insert((ri, key), i);
            if let Some(seen) = &mut self.seen[ri] {
                Arc::make_mut(seen).insert(result.clone(), i);
            }
            returned.push((i, result, value));
        }
        let mut returned_idx = Vec::with_capacity(returned.len());
        for (idx, result, value) in returned {
            let inst = &mut self.instances[idx];
            if inst.state == AlertState::Inactive {
                inst.active_at_ms = ts;
                inst.active_at_s = t_s;
                inst.fired_at_ms = None;
            }
            inst.value = value;
            inst.result = result;
            inst.keep_firing_since_ms = None;
            returned_idx.push(idx);
        }
        let returned = returned_idx;
        for idx in 0..self.instances.len() {
            let inst = &mut self.instances[idx];
            if inst.rule != ri {
                continue;
            }
            let before = inst.state;
            if returned.binary_search(&idx).is_ok() {
                if inst.state == AlertState::Inactive {
                    inst.state = AlertState::Pending;
                }
                if inst.state == AlertState::Pending && ts - inst.active_at_ms >= rule.for_ms {
                    inst.state = AlertState::Firing;
                    inst.fired_at_ms = Some(ts);
                }
            } else if inst.state != AlertState::Inactive {
                let keep = inst.state == AlertState::Firing && rule.keep_firing_for_ms > 0 && {
                    let since = *inst.keep_firing_since_ms.get_or_insert(ts);
                    ts - since < rule.keep_firing_for_ms
                };
                if !keep {
                    inst.state = AlertState::Inactive;
                    inst.keep_firing_since_ms = None;
                }
            }
            if inst.state != before {
                self.history.push(AlertTransition {
                    t_s,
                    rule: ri,
                    instance: idx,
                    from: before,
                    to: inst.state,
                    value: inst.value,
                });
            }
        }
        Ok(())
    }

    /// Alerts pending or firing now, the longest active first (then in rule order, then by labels): an order
    /// that depends only on the alerts active now, not on which alerts came and went before.
    pub fn active(&self) -> Vec<ActiveAlert> {
        let mut active: Vec<&AlertInstance> = self
            .instances
            .iter()
            .filter(|i| i.state != AlertState::Inactive)
            .collect();
        active.sort_by(|a, b| {
            (a.active_at_ms, a.rule, &a.labels).cmp(&(b.active_at_ms, b.rule, &b.labels))
        });
        active
            .into_iter()
            .map(|i| ActiveAlert {
                labels: BTreeMap::clone(&i.labels),
                annotations: annotations(&self.rules[i.rule], &i.result, i.value),
                state: i.state,
                active_since_s: i.active_at_s,
                fired_at_unix_ms: i.fired_at_ms.filter(|_| i.state == AlertState::Firing),
                value: i.value,
            })
            .collect()
    }

    /// Whether any alert is firing now.
    pub fn any_firing(&self) -> bool {
        self.instances.iter().any(|i| i.state == AlertState::Firing)
    }
}

/// A result sample: its labels (without `__name__`) and value.
type Sampled = (Labels, f64);

/// One evaluation's result: the samples, or why the evaluation failed.
type Evaluated = Result<Vec<Sampled>, String>;

/// Unix milliseconds of the end of world tick `tick`, the time a rule evaluated then sees.
fn tick_ms(world: &World, tick: u64) -> i64 {
    firedrill_telemetry::metrics::tick_ms(world, tick)
}

/// A range query's result cut into the instant results at each of `times`: at each time, the series that
/// have a point there, in series order (which the state machine does not depend on). `None` if a point
/// falls off the grid, which a range query never produces.
fn split_steps(series: Vec<Series>, times: &[i64]) -> Option<Vec<Evaluated>> {
    let mut steps: Vec<Vec<Sampled>> = vec![Vec::new(); times.len()];
    for s in series {
        let labels = s.labels.without_name();
        for sample in s.samples {
            let i = times.binary_search(&sample.t).ok()?;
            steps[i].push((labels.clone(), sample.v));
        }
    }
    Some(steps.into_iter().map(Ok).collect())
}

/// The samples of a rule's result with their labels (without `__name__`).
fn results(rule: &AlertingRule, v: Value) -> Result<Vec<Sampled>, String> {
    let samples: Vec<(Labels, f64)> = match v {
        Value::Vector(s) => s.into_iter().map(|(l, s)| (l, s.v)).collect(),
        Value::Scalar(s) => vec![(Labels::empty(), s.v)],
        other => {
            return Err(format!(
                "rule {} returned a {}, not an instant vector",
                rule.name(),
                other.result_type()
            ));
        }
    };
    Ok(samples
        .into_iter()
        .map(|(labels, value)| (labels.without_name(), value))
        .collect())
}

/// The labels templates see: a result's, as names to values.
fn template_labels(result: &Labels) -> BTreeMap<String, String> {
    result
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// An alert's label set and its labels: the result's (`result`, without `__name__`), the rule's label
/// templates expanded over them and `value` (an empty expansion removes the label), and `alertname`.
fn alert_labels(
    rule: &AlertingRule,
    result: &Labels,
    value: f64,
) -> (Labels, BTreeMap<String, String>) {
    let labels = template_labels(result);
    // Templates see the result's labels (not the rule's own), as in Prometheus.
    let data = Data {
        labels: &labels,
        value,
    };
    let mut all = labels.clone();
    for (k, t) in &rule.labels {
        let v = t.expand(data);
        if v.is_empty() {
            all.remove(k);
        } else {
            all.insert(k.clone(), v);
        }
    }
    all.insert("alertname".into(), rule.name().to_string());
    let key = Labels::new(all.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    (key, all)
}

/// A rule's annotations expanded over a result's labels and value.
fn annotations(rule: &AlertingRule, result: &Labels, value: f64) -> BTreeMap<String, String> {
    if rule.annotations.is_empty() {
        return BTreeMap::new();
    }
    let labels = template_labels(result);
    let data = Data {
        labels: &labels,
        value,
    };
    rule.annotations
        .iter()
        .map(|(k, t)| (k.clone(), t.expand(data)))
        .collect()
}
