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
use std::sync::{Arc, Mutex};

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
    envs: Vec<Env>,
    schedule: Vec<EpisodeSpec>,
    cursor: Vec<usize>,
    mode: AutoReset,
    threads: usize,
    /// The worker threads when `threads > 1`; `None` steps on the calling thread.
    pool: Option<Arc<rayon_core::ThreadPool>>,
    /// Starts the slots share (shared with clones: a kept start is the same incident whoever kept it).
    starts: Arc<SharedStarts>,
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
        let repeated = self
            .repeated
            .binary_search_by(|(scenario, seed, bits)| (scenario.as_str(), *seed, *bits).cmp(&key))
            .is_ok();
        if !repeated {
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
            starts: Arc::new(SharedStarts::new(&schedule, n)),
            schedule,
            cursor: (0..n).collect(),
            mode,
            threads: if pool.is_some() { threads } else { 1 },
            pool,
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
        (0..self.envs.len()).map(|i| self.reset_slot(i)).collect()
    }

    /// Resets one slot to its next episode.
    pub fn reset_slot(&mut self, slot: usize) -> Result<Observation, EnvError> {
        let spec = self.next_spec(slot).ok_or(EnvError::NotReset)?;
        self.starts.reset(&mut self.envs[slot], &spec)
    }

    /// Steps every slot with its action (`actions[i]` for slot `i`), on the configured threads. Threads take
    /// slots one at a time, so a slow slot (a trace query, a reset) does not leave the other threads idle; with
    /// [`AutoReset::SameStep`], a slot whose episode ended is reset on the thread that stepped it.
    pub fn step(&mut self, actions: &[Action]) -> Vec<Result<VecStep, EnvError>> {
        let n = self.envs.len().min(actions.len());
        let slots = self.envs.len();
        let (schedule, mode, starts) = (&self.schedule[..], self.mode, &*self.starts);
        let pairs = self.envs[..n].iter_mut().zip(self.cursor[..n].iter_mut());
        let pool = match &self.pool {
            Some(pool) if n >= 2 => pool,
            _ => {
                return pairs
                    .zip(actions)
                    .map(|((e, c), a)| step_slot(e, a, c, schedule, slots, mode, starts))
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
                            step_slot(env, &actions[i], cursor, schedule, slots, mode, starts),
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

/// Steps one slot and, when its episode ends under [`AutoReset::SameStep`], resets it to its next episode.
fn step_slot(
    env: &mut Env,
    action: &Action,
    cursor: &mut usize,
    schedule: &[EpisodeSpec],
    slots: usize,
    mode: AutoReset,
    starts: &SharedStarts,
) -> Result<VecStep, EnvError> {
    let step = env.step(action)?;
    let ended = step.terminated || step.truncated;
    let reset_observation = if ended && mode == AutoReset::SameStep {
        next_spec(schedule, cursor, slots).and_then(|spec| starts.reset(env, &spec).ok())
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
