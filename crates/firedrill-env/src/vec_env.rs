//! A batch of environments stepped together, on several threads.
//!
//! Each slot runs its own episode. With [`AutoReset::SameStep`], a slot whose episode ends is reset at once to
//! the next episode of its schedule: the step result keeps the ended episode's final observation, reward and
//! grade, and carries the new episode's page in `reset_observation` (the observation to act on next). With
//! [`AutoReset::Disabled`], stepping an ended slot is an error until [`VecEnv::reset_slot`].
//!
//! Results do not depend on the thread count: every slot owns its episode and its generator, and whichever thread
//! steps a slot, its result is written back in slot order.
//!
//! A start (scenario, seed and difficulty) that the schedule holds more than once is started once and kept at its
//! page while it may come again; the other slots that reset to it fork it ([`VecEnv::reused_starts`]). A group of
//! rollouts from one start (GRPO-style sampling: the schedule repeats each start once per slot of the group) then
//! pays for the hour before the page once per group, not once per slot. The forks are the episodes a fresh
//! start gives, byte for byte.
//!
//! With more than one thread, the slots are stepped on a pool of worker threads that lives as long as the vector
//! environment (and its clones, which share it). Threads spawned for each step would each start with an empty
//! allocator heap, and the episodes their auto-resets build would be left on heaps abandoned at the end of the
//! step: measured, that cost a tenth of the second thread's gain (docs/benchmarks.md, "VecEnv on persistent
//! threads").

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use firedrill_scenario::{Catalog, Incident};
use serde::Serialize;

use crate::action::{Action, ActionKind};
use crate::env::{Env, EnvError, Step};
use crate::observation::Observation;

/// Which episode a slot plays.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpisodeSpec {
    /// Scenario id.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// Difficulty in [0, 1].
    pub difficulty: f64,
}

/// What happens when a slot's episode ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoReset {
    /// Nothing: stepping the slot again is an error until it is reset by hand.
    Disabled,
    /// The slot resets to its next episode in the same step; the ended episode's final observation stays in the
    /// step result.
    SameStep,
}

/// One slot's result of a batched step.
#[derive(Debug, Clone, Serialize)]
pub struct VecStep {
    /// The step, including the final observation when the episode ended.
    pub step: Step,
    /// With auto-reset, the page of the episode that replaced the ended one.
    pub reset_observation: Option<Observation>,
}

/// Many environments.
#[derive(Debug, Clone)]
pub struct VecEnv {
    catalog: Arc<Catalog>,
    envs: Vec<Env>,
    schedule: Vec<EpisodeSpec>,
    cursor: Vec<usize>,
    mode: AutoReset,
    threads: usize,
    /// The worker threads when `threads > 1`; `None` steps on the calling thread.
    pool: Option<Arc<rayon_core::ThreadPool>>,
    /// Starts the slots share (shared with clones: a kept start is the same incident whoever kept it).
    starts: Arc<SharedStarts>,
    /// Starts prepared ahead on the worker threads, when asked for ([`VecEnv::set_prefetch`]).
    prefetch: Option<Prefetch>,
}

/// Each slot's next start, prepared ahead on the worker threads between steps ([`VecEnv::set_prefetch`]).
///
/// A clone of a vector environment starts with nothing prepared: a prepared incident is used once, by one slot
/// of one environment.
#[derive(Debug)]
struct Prefetch {
    catalog: Arc<Catalog>,
    slots: Vec<Arc<PreparedStart>>,
    /// Resets that began a prepared start.
    used: AtomicU64,
}

impl Prefetch {
    fn new(catalog: Arc<Catalog>, slots: usize) -> Prefetch {
        Prefetch {
            catalog,
            slots: (0..slots).map(|_| Arc::default()).collect(),
            used: AtomicU64::new(0),
        }
    }
}

impl Drop for Prefetch {
    /// Takes back the starts still queued, so that the worker threads do not start episodes nobody will play
    /// (those being started finish, and are dropped).
    fn drop(&mut self) {
        for cell in &self.slots {
            if let Ok(mut state) = cell.state.lock()
                && matches!(&*state, Preparing::Queued(_))
            {
                *state = Preparing::Nothing;
            }
        }
    }
}

impl Clone for Prefetch {
    fn clone(&self) -> Prefetch {
        Prefetch::new(Arc::clone(&self.catalog), self.slots.len())
    }
}

/// One slot's prepared start and its state.
#[derive(Debug, Default)]
struct PreparedStart {
    state: Mutex<Preparing>,
    /// The incident of the slot's last finished episode, for the next start to recycle (its memory is reused,
    /// as [`Env::reset`] reuses it: starts in fresh memory made a loop without pauses a third slower,
    /// docs/benchmarks.md).
    spare: Mutex<Option<Incident>>,
    /// Signalled when a start that was running is ready (or failed).
    done: Condvar,
}

/// Where a slot's next start is.
#[derive(Debug, Default)]
enum Preparing {
    /// Nothing prepared or asked for.
    #[default]
    Nothing,
    /// A job on the worker threads will start this; until it begins, the slot may take the start back.
    Queued(EpisodeSpec),
    /// A worker thread is starting this.
    Running(EpisodeSpec),
    /// Started, at its page.
    Ready(EpisodeSpec, Box<Incident>),
}

impl PreparedStart {
    /// The job a worker thread runs: starts `spec` unless the slot took it back meanwhile. A start that fails
    /// leaves nothing prepared, so that the slot starts it itself and meets the error.
    fn run(&self, catalog: &Catalog, spec: EpisodeSpec) {
        {
            let Ok(mut state) = self.state.lock() else {
                return;
            };
            if !matches!(&*state, Preparing::Queued(s) if *s == spec) {
                return;
            }
            *state = Preparing::Running(spec.clone());
        }
        let spare = self.spare.lock().ok().and_then(|mut s| s.take());
        // A panic here would abort the process (a spawned job has nowhere to unwind to) and leave a waiting
        // slot waiting: it leaves nothing prepared instead, and the slot starts the episode itself, where a
        // panic reaches the caller as it would without prefetching.
        let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            catalog.start_recycling(&spec.scenario, spec.seed, spec.difficulty, spare)
        }))
        .ok()
        .and_then(Result::ok);
        if let Ok(mut state) = self.state.lock() {
            if matches!(&*state, Preparing::Running(s) if *s == spec) {
                *state = match started {
                    Some(incident) => Preparing::Ready(spec, Box::new(incident)),
                    None => Preparing::Nothing,
                };
            }
            self.done.notify_all();
        }
    }

    /// The prepared incident of `spec`, if it is ready or being started (then waits for it: it runs on another
    /// thread, since a job that starts an incident never waits for anything); `None` otherwise, having taken
    /// back a queued start, which the slot then starts itself.
    fn take(&self, spec: &EpisodeSpec) -> Option<Incident> {
        let mut state = self.state.lock().ok()?;
        loop {
            match std::mem::take(&mut *state) {
                Preparing::Ready(s, incident) if s == *spec => return Some(*incident),
                Preparing::Running(s) if s == *spec => {
                    *state = Preparing::Running(s);
                    state = self.done.wait(state).ok()?;
                }
                // Queued (taken back), another start (no longer wanted), or nothing.
                _ => return None,
            }
        }
    }
}

/// The starts a schedule holds more than once, and the latest of them started, at their page.
#[derive(Debug)]
struct SharedStarts {
    /// Sorted by [`start_key`].
    repeated: Vec<(String, u64, u64)>,
    /// At most one per slot, oldest first: a group's slots reset to its start within a few steps of each other.
    kept: Mutex<VecDeque<(EpisodeSpec, Arc<Incident>)>>,
    capacity: usize,
}

/// A start as a key: scenario, seed, difficulty's bits (compared bit for bit, as the environment does).
fn start_key(spec: &EpisodeSpec) -> (&str, u64, u64) {
    (&spec.scenario, spec.seed, spec.difficulty.to_bits())
}

impl SharedStarts {
    /// Whether the schedule holds `spec` more than once (its slots then share it).
    fn is_repeated(&self, spec: &EpisodeSpec) -> bool {
        let key = start_key(spec);
        self.repeated
            .binary_search_by(|(scenario, seed, bits)| (scenario.as_str(), *seed, *bits).cmp(&key))
            .is_ok()
    }

    fn new(schedule: &[EpisodeSpec], slots: usize) -> SharedStarts {
        let mut keys: Vec<(&str, u64, u64)> = schedule.iter().map(start_key).collect();
        keys.sort_unstable();
        let mut repeated: Vec<(String, u64, u64)> = keys
            .windows(2)
            .filter(|w| w[0] == w[1])
            .map(|w| (w[0].0.to_string(), w[0].1, w[0].2))
            .collect();
        repeated.dedup();
        SharedStarts {
            repeated,
            kept: Mutex::new(VecDeque::new()),
            capacity: slots.max(1),
        }
    }

    /// Resets `env` to `spec`: a fork of the kept start when there is one, a new start otherwise (kept when the
    /// schedule holds it again). Two slots that reset to a start at once on two threads may both start it: the
    /// same incident twice, kept once.
    fn reset(&self, env: &mut Env, spec: &EpisodeSpec) -> Result<Observation, EnvError> {
        let key = start_key(spec);
        if !self.is_repeated(spec) {
            return env.reset(&spec.scenario, spec.seed, spec.difficulty);
        }
        // The lock is held only to look the start up or to keep one; a poisoned lock (a panicking slot) only
        // means the start is not shared.
        let kept = self.kept.lock().ok().and_then(|kept| {
            kept.iter()
                .find(|(s, _)| start_key(s) == key)
                .map(|(_, page)| Arc::clone(page))
        });
        if let Some(page) = kept {
            return Ok(env.reset_from(&page));
        }
        let page = env.reset(&spec.scenario, spec.seed, spec.difficulty)?;
        if let Some(episode) = env.episode() {
            let incident = Arc::new(episode.incident().clone());
            if let Ok(mut kept) = self.kept.lock()
                && !kept.iter().any(|(s, _)| start_key(s) == key)
            {
                if kept.len() >= self.capacity {
                    kept.pop_front();
                }
                kept.push_back((spec.clone(), incident));
            }
        }
        Ok(page)
    }
}

impl VecEnv {
    /// `n` slots over `schedule`: slot `i` plays `schedule[i]`, then `schedule[i + n]`, and so on, wrapping.
    /// With `threads > 1`, starts that many worker threads, which stop when the last clone of this vector
    /// environment is dropped; if the system refuses them, every slot is stepped on the calling thread
    /// ([`VecEnv::threads`] then says 1).
    pub fn new(
        catalog: Arc<Catalog>,
        n: usize,
        schedule: Vec<EpisodeSpec>,
        mode: AutoReset,
        threads: usize,
    ) -> VecEnv {
        let threads = threads.max(1);
        let pool = (threads > 1)
            .then(|| {
                rayon_core::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(|i| format!("firedrill-vec-{i}"))
                    .build()
                    .ok()
            })
            .flatten()
            .map(Arc::new);
        VecEnv {
            envs: (0..n).map(|_| Env::new(catalog.clone())).collect(),
            catalog,
            starts: Arc::new(SharedStarts::new(&schedule, n)),
            schedule,
            cursor: (0..n).collect(),
            mode,
            threads: if pool.is_some() { threads } else { 1 },
            pool,
            prefetch: None,
        }
    }

    /// Whether to prepare each slot's next start ahead, on the worker threads, while the caller is busy between
    /// steps (off by default). A training loop whose policy runs elsewhere (a GPU) leaves the worker threads
    /// idle between steps; with prefetching they simulate the hour before the page of the episodes that come
    /// next meanwhile, and an auto-reset or [`VecEnv::reset_slot`] that finds its start prepared only begins it.
    /// Results are the same either way (a start is the same incident whenever it is started). The cost is
    /// memory, one prepared incident per slot, and, when the caller leaves the threads no idle time, nothing
    /// gained. Without worker threads ([`VecEnv::threads`] is 1) it does nothing. Starts the schedule holds more
    /// than once are not prepared: slots share them already.
    pub fn set_prefetch(&mut self, on: bool) {
        self.prefetch = match (&self.pool, on) {
            (Some(_), true) => Some(
                self.prefetch
                    .take()
                    .unwrap_or_else(|| Prefetch::new(Arc::clone(&self.catalog), self.envs.len())),
            ),
            _ => None,
        };
        self.queue_prefetches();
    }

    /// Resets that began a start prepared ahead ([`VecEnv::set_prefetch`]).
    pub fn prefetched_starts(&self) -> u64 {
        self.prefetch
            .as_ref()
            .map_or(0, |p| p.used.load(Ordering::Relaxed))
    }

    /// Waits until no start asked for is still queued or being started (for tests: which resets find their
    /// start prepared otherwise depends on the threads' timing, though their results do not).
    #[cfg(test)]
    fn settle(&self) {
        let Some(prefetch) = &self.prefetch else {
            return;
        };
        for cell in &prefetch.slots {
            let mut state = cell.state.lock().expect("state");
            while matches!(&*state, Preparing::Queued(_) | Preparing::Running(_)) {
                state = cell.done.wait(state).expect("state");
            }
        }
    }

    /// Asks the worker threads to prepare each slot's next start that is not prepared or asked for yet.
    fn queue_prefetches(&self) {
        let (Some(pool), Some(prefetch)) = (&self.pool, &self.prefetch) else {
            return;
        };
        if self.schedule.is_empty() {
            return;
        }
        for (i, (env, cell)) in self.envs.iter().zip(&prefetch.slots).enumerate() {
            let spec = &self.schedule[self.cursor[i] % self.schedule.len()];
            // Shared starts and a repeat of the slot's last start are forks already.
            if self.starts.is_repeated(spec)
                || env.last_start_is(&spec.scenario, spec.seed, spec.difficulty)
            {
                continue;
            }
            let Ok(mut state) = cell.state.lock() else {
                continue;
            };
            let asked = match &*state {
                Preparing::Queued(s) | Preparing::Running(s) | Preparing::Ready(s, _) => s == spec,
                Preparing::Nothing => false,
            };
            if asked {
                continue;
            }
            *state = Preparing::Queued(spec.clone());
            drop(state);
            let (cell, catalog, spec) = (
                Arc::clone(cell),
                Arc::clone(&prefetch.catalog),
                spec.clone(),
            );
            pool.spawn(move || cell.run(&catalog, spec));
        }
    }

    /// Threads that step the slots.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.envs.len()
    }

    /// Whether there are no slots.
    pub fn is_empty(&self) -> bool {
        self.envs.is_empty()
    }

    /// A slot's environment.
    pub fn env(&self, slot: usize) -> Option<&Env> {
        self.envs.get(slot)
    }

    /// Resets, over every slot, that forked a kept start instead of starting it ([`Env::reused_starts`]).
    pub fn reused_starts(&self) -> u64 {
        self.envs.iter().map(Env::reused_starts).sum()
    }

    fn next_spec(&mut self, slot: usize) -> Option<EpisodeSpec> {
        let n = self.envs.len();
        next_spec(&self.schedule, &mut self.cursor[slot], n)
    }

    /// Resets every slot to its next episode.
    pub fn reset(&mut self) -> Vec<Result<Observation, EnvError>> {
        let out = (0..self.envs.len()).map(|i| self.begin_next(i)).collect();
        self.queue_prefetches();
        out
    }

    /// Resets one slot to its next episode.
    pub fn reset_slot(&mut self, slot: usize) -> Result<Observation, EnvError> {
        let out = self.begin_next(slot);
        self.queue_prefetches();
        out
    }

    fn begin_next(&mut self, slot: usize) -> Result<Observation, EnvError> {
        if slot >= self.envs.len() {
            return Err(EnvError::NotReset);
        }
        let spec = self.next_spec(slot).ok_or(EnvError::NotReset)?;
        let prepared = self.prefetch.as_ref().map(|p| (&*p.slots[slot], &p.used));
        begin(&mut self.envs[slot], &spec, &self.starts, prepared)
    }

    /// Steps every slot with its action (`actions[i]` for slot `i`), on the configured threads. Threads take
    /// slots one at a time, so a slow slot (a trace query, a reset) does not leave the other threads idle; with
    /// [`AutoReset::SameStep`], a slot whose episode ended is reset on the thread that stepped it.
    pub fn step(&mut self, actions: &[Action]) -> Vec<Result<VecStep, EnvError>> {
        let n = self.envs.len().min(actions.len());
        let slots = self.envs.len();
        let (schedule, mode, starts) = (&self.schedule[..], self.mode, &*self.starts);
        let prefetch = self.prefetch.as_ref();
        let prepared = |i: usize| prefetch.map(|p| (&*p.slots[i], &p.used));
        let pairs = self.envs[..n].iter_mut().zip(self.cursor[..n].iter_mut());
        let pool = match &self.pool {
            Some(pool) if n >= 2 => pool,
            _ => {
                return pairs
                    .zip(actions)
                    .enumerate()
                    .map(|(i, ((e, c), a))| {
                        step_slot(e, a, c, schedule, slots, mode, starts, prepared(i))
                    })
                    .collect();
            }
        };
        // Costliest first (longest-processing-time order), so that a reset or a trace query taken last does not
        // leave the other threads idle at the end of the step. The order changes which thread steps a slot,
        // never what a slot computes.
        let mut order: Vec<(usize, (&mut Env, &mut usize))> = pairs.enumerate().collect();
        order.sort_by_key(|(i, _)| std::cmp::Reverse(expected_cost(&actions[*i])));
        let work = Mutex::new(order.into_iter());
        let done: Mutex<Vec<(usize, Result<VecStep, EnvError>)>> =
            Mutex::new(Vec::with_capacity(n));
        // A panic in a job is resumed by `scope` once every job has finished.
        pool.scope(|scope| {
            for _ in 0..self.threads.min(n) {
                scope.spawn(|_| {
                    let mut mine = Vec::new();
                    loop {
                        // The lock is held only to take the next slot. A poisoned lock means another job
                        // panicked: this one stops, and `scope` resumes that panic.
                        let next = work.lock().ok().and_then(|mut w| w.next());
                        let Some((i, (env, cursor))) = next else {
                            break;
                        };
                        mine.push((
                            i,
                            step_slot(
                                env,
                                &actions[i],
                                cursor,
                                schedule,
                                slots,
                                mode,
                                starts,
                                prepared(i),
                            ),
                        ));
                    }
                    if let Ok(mut done) = done.lock() {
                        done.append(&mut mine);
                    }
                });
            }
        });
        // Every slot below `n` was taken exactly once (a panic would have been resumed above).
        let mut out: Vec<Option<Result<VecStep, EnvError>>> = (0..n).map(|_| None).collect();
        for (i, r) in done.into_inner().unwrap_or_default() {
            out[i] = Some(r);
        }
        // The threads prepare the next starts while the caller works on these results.
        self.queue_prefetches();
        out.into_iter().flatten().collect()
    }
}

/// A rough estimate of what stepping with `action` costs, in microseconds of this machine (the per-action means
/// `firedrill bench` prints, docs/benchmarks.md): resolving ends the episode, and auto-reset then starts the next,
/// which simulates an hour of history; trace queries walk every trace of their window; other queries render a
/// window; and every action advances the world by its simulated time, at about 35 µs a simulated minute (four
/// ticks and one evaluation of the alert rules). Only the order matters: a long `wait` ranks with the queries
/// instead of last, where it would leave the other threads idle at the end of the step.
fn expected_cost(action: &Action) -> u32 {
    let kind = action.kind();
    let base: f64 = match kind {
        ActionKind::ResolveIncident => 1_500.0,
        ActionKind::QueryTraces => 200.0,
        ActionKind::QueryLogs | ActionKind::QueryMetrics => 50.0,
        _ => 5.0,
    };
    let waited_s = match action {
        Action::Wait(p) if p.minutes.is_finite() => p.minutes.clamp(0.0, 30.0) * 60.0,
        _ => 0.0,
    };
    (base + (kind.cost_s() + waited_s) / 60.0 * 35.0) as u32
}

/// The next episode of a slot whose schedule position is `cursor`, advancing it by the number of slots.
fn next_spec(schedule: &[EpisodeSpec], cursor: &mut usize, slots: usize) -> Option<EpisodeSpec> {
    if schedule.is_empty() {
        return None;
    }
    let spec = schedule[*cursor % schedule.len()].clone();
    *cursor += slots;
    Some(spec)
}

/// A slot's prepared start and the count of prepared starts begun, when prefetching.
type Prepared<'a> = Option<(&'a PreparedStart, &'a AtomicU64)>;

/// Resets `env` to `spec`: the start prepared for it when there is one, else as [`SharedStarts::reset`] does.
fn begin(
    env: &mut Env,
    spec: &EpisodeSpec,
    starts: &SharedStarts,
    prepared: Prepared<'_>,
) -> Result<Observation, EnvError> {
    if let Some((cell, used)) = prepared
        && let Some(incident) = cell.take(spec)
    {
        used.fetch_add(1, Ordering::Relaxed);
        let (page, previous) =
            env.reset_prepared(&spec.scenario, spec.seed, spec.difficulty, incident);
        if let Ok(mut spare) = cell.spare.lock() {
            *spare = previous;
        }
        return Ok(page);
    }
    starts.reset(env, spec)
}

/// Steps one slot and, when its episode ends under [`AutoReset::SameStep`], resets it to its next episode.
#[allow(clippy::too_many_arguments)]
fn step_slot(
    env: &mut Env,
    action: &Action,
    cursor: &mut usize,
    schedule: &[EpisodeSpec],
    slots: usize,
    mode: AutoReset,
    starts: &SharedStarts,
    prepared: Prepared<'_>,
) -> Result<VecStep, EnvError> {
    let step = env.step(action)?;
    let ended = step.terminated || step.truncated;
    let reset_observation = if ended && mode == AutoReset::SameStep {
        next_spec(schedule, cursor, slots).and_then(|spec| begin(env, &spec, starts, prepared).ok())
    } else {
        None
    };
    Ok(VecStep {
        step,
        reset_observation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::{ResolveParams, WaitParams};
    use firedrill_world::FaultClass;

    fn catalog() -> Arc<Catalog> {
        Arc::new(Catalog::builtin().expect("library"))
    }

    #[test]
    fn long_waits_rank_with_the_queries_and_resets_first() {
        let wait = |minutes| expected_cost(&Action::Wait(WaitParams { minutes }));
        let traces = expected_cost(&Action::QueryTraces(crate::action::TracesParams {
            service: "api".into(),
            window_minutes: None,
            errors_only: false,
        }));
        let resolve = expected_cost(&Action::ResolveIncident(ResolveParams {
            root_causes: vec![],
            fault_class: FaultClass::NoFault,
            evidence: vec![],
            remediation: String::new(),
            summary: String::new(),
        }));
        let list = expected_cost(&Action::ListServices);
        assert!(
            list < wait(1.0) && wait(1.0) < wait(5.0),
            "{list} {}",
            wait(1.0)
        );
        assert!(wait(5.0) > traces / 2 && wait(30.0) > traces);
        assert!(resolve > wait(30.0) && resolve > traces);
        // A malformed wait (the step will reject it) costs no more than the longest valid one.
        assert!(wait(f64::NAN) <= wait(30.0) && wait(1e9) == wait(30.0));
    }

    fn spec(scenario: &str, seed: u64) -> EpisodeSpec {
        EpisodeSpec {
            scenario: scenario.into(),
            seed,
            difficulty: 0.5,
        }
    }

    fn actions(round: usize, slots: usize) -> Vec<Action> {
        (0..slots)
            .map(|i| {
                if (round + i) % 3 == 2 {
                    Action::ResolveIncident(ResolveParams {
                        root_causes: Vec::new(),
                        fault_class: FaultClass::NoFault,
                        evidence: Vec::new(),
                        remediation: String::new(),
                        summary: String::new(),
                    })
                } else {
                    Action::Wait(WaitParams { minutes: 2.0 })
                }
            })
            .collect()
    }

    /// Resets every slot and steps them all `rounds` times with [`actions`]: every page and step result, as JSON.
    fn play(mut v: VecEnv, rounds: usize) -> Vec<String> {
        let mut log = Vec::new();
        for page in v.reset() {
            log.push(serde_json::to_string(&page.expect("reset")).expect("json"));
        }
        for round in 0..rounds {
            for r in v.step(&actions(round, v.len())) {
                log.push(serde_json::to_string(&r.expect("step")).expect("json"));
            }
        }
        log
    }

    /// Starts prepared ahead give the episodes a plain reset gives, through auto-reset and `reset_slot`, and
    /// are used: the results with prefetching on two threads are those of one thread without it.
    #[test]
    fn prefetched_starts_play_as_fresh_ones() {
        let families = ["oom_crash", "disk_full", "dns_failure", "cert_expiry"];
        // Twelve distinct starts for three slots: each slot plays four episodes in eleven rounds.
        let schedule: Vec<EpisodeSpec> = (0..12)
            .map(|k| spec(families[k % families.len()], k as u64))
            .collect();
        let plain = play(
            VecEnv::new(catalog(), 3, schedule.clone(), AutoReset::SameStep, 1),
            11,
        );
        let mut v = VecEnv::new(catalog(), 3, schedule.clone(), AutoReset::SameStep, 2);
        v.set_prefetch(true);
        let mut log = Vec::new();
        for page in v.reset() {
            log.push(serde_json::to_string(&page.expect("reset")).expect("json"));
        }
        for round in 0..11 {
            // Every start prepared before the even rounds, as a caller's policy would leave the workers time to;
            // in the odd rounds, a slot may take its start back from the queue or wait for one being started.
            if round % 2 == 0 {
                v.settle();
            }
            for r in v.step(&actions(round, v.len())) {
                log.push(serde_json::to_string(&r.expect("step")).expect("json"));
            }
        }
        assert_eq!(log, plain);
        assert!(v.prefetched_starts() > 0, "no prepared start was used");
        // A slot reset by hand begins its prepared start too.
        v.settle();
        let before = v.prefetched_starts();
        let page = v.reset_slot(1).expect("reset");
        assert_eq!(v.prefetched_starts(), before + 1);
        let mut fresh = Env::new(catalog());
        let k = v.cursor[1] - 3;
        let again = fresh
            .reset(&schedule[k % 12].scenario, schedule[k % 12].seed, 0.5)
            .expect("reset");
        assert_eq!(
            serde_json::to_string(&page).expect("json"),
            serde_json::to_string(&again).expect("json")
        );
        // Off again: nothing is prepared any more, and clones start with nothing prepared.
        let clone = v.clone();
        assert_eq!(clone.prefetched_starts(), 0);
        v.set_prefetch(false);
        assert_eq!(v.prefetched_starts(), 0);
    }

    /// Prefetching leaves the starts the schedule repeats to the slots that share them, and the episodes are
    /// still those of one thread without either.
    #[test]
    fn prefetching_and_shared_starts_play_together() {
        // Pairs of slots share a start, and one start in three is a single.
        let schedule: Vec<EpisodeSpec> = (0..18)
            .map(|k| match k % 3 {
                2 => spec("cert_expiry", 100 + k as u64),
                _ => spec("disk_full", k as u64 / 3),
            })
            .collect();
        let plain = play(
            VecEnv::new(catalog(), 4, schedule.clone(), AutoReset::SameStep, 1),
            9,
        );
        let mut v = VecEnv::new(catalog(), 4, schedule, AutoReset::SameStep, 2);
        v.set_prefetch(true);
        v.settle();
        let mut log = Vec::new();
        for page in v.reset() {
            log.push(serde_json::to_string(&page.expect("reset")).expect("json"));
        }
        for round in 0..9 {
            v.settle();
            for r in v.step(&actions(round, v.len())) {
                log.push(serde_json::to_string(&r.expect("step")).expect("json"));
            }
        }
        assert_eq!(log, plain);
        assert!(v.prefetched_starts() > 0, "no prepared start was used");
        assert!(v.reused_starts() > 0, "no shared start was forked");
    }

    /// Auto-reset on worker threads gives the same results as on one thread, and each slot moves through its
    /// own schedule entries (`i`, `i + n`, ...).
    #[test]
    fn threads_do_not_change_results_and_resets_follow_the_schedule() {
        let schedule = vec![
            spec("oom_crash", 1),
            spec("disk_full", 2),
            spec("dns_failure", 3),
        ];
        let runs: Vec<Vec<String>> = [1, 2, 3]
            .into_iter()
            .map(|threads| {
                let v = VecEnv::new(catalog(), 3, schedule.clone(), AutoReset::SameStep, threads);
                play(v, 6)
            })
            .collect();
        assert_eq!(runs[0], runs[1]);
        assert_eq!(runs[0], runs[2]);

        // Slot 0 resolves at rounds 2 and 5: its second episode is schedule[3 % 3] = oom_crash seed 1 again.
        let mut v = VecEnv::new(catalog(), 3, schedule.clone(), AutoReset::SameStep, 2);
        let pages: Vec<Observation> = v.reset().into_iter().map(|p| p.expect("reset")).collect();
        let mut env = Env::new(catalog());
        assert_eq!(
            Some(&pages[1]),
            env.reset("disk_full", 2, 0.5).ok().as_ref()
        );
        for round in 0..3 {
            let out = v.step(&actions(round, 3));
            let r0 = out[0].as_ref().expect("step");
            if round == 2 {
                assert!(r0.step.terminated);
                let again = env.reset("oom_crash", 1, 0.5).ok();
                assert_eq!(r0.reset_observation.as_ref(), again.as_ref());
            } else {
                assert!(r0.reset_observation.is_none());
            }
        }
    }

    /// Clones share the worker threads: two clones stepped at once from two threads of their own each give
    /// what one vector environment stepped alone gives.
    #[test]
    fn clones_share_the_pool_and_step_at_once() {
        let schedule = vec![spec("oom_crash", 1), spec("disk_full", 2)];
        let v = VecEnv::new(catalog(), 2, schedule.clone(), AutoReset::SameStep, 2);
        assert_eq!(v.threads(), 2);
        let alone = play(
            VecEnv::new(catalog(), 2, schedule, AutoReset::SameStep, 1),
            4,
        );
        let (a, b) = (v.clone(), v);
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| play(a, 4));
            let b = s.spawn(|| play(b, 4));
            (a.join().expect("a"), b.join().expect("b"))
        });
        assert_eq!(a, alone);
        assert_eq!(b, alone);
    }

    #[test]
    fn without_auto_reset_an_ended_slot_refuses_to_step() {
        let mut v = VecEnv::new(
            catalog(),
            1,
            vec![spec("oom_crash", 1)],
            AutoReset::Disabled,
            1,
        );
        assert!(v.reset()[0].is_ok());
        let out = v.step(&actions(2, 1));
        assert!(
            out[0]
                .as_ref()
                .is_ok_and(|r| r.step.terminated && r.reset_observation.is_none())
        );
        assert!(matches!(
            v.step(&actions(0, 1))[0],
            Err(EnvError::EpisodeEnded)
        ));
    }
}
