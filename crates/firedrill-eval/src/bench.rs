//! The throughput benchmark behind `firedrill bench`: resets/s, steps/s with structured and with text
//! observations, and [`VecEnv`] steps/s, on the basic suite.
//!
//! This module reads the wall clock, and only to time the environment: nothing it measures feeds back into a
//! simulation. The workload is fixed and deterministic:
//!
//! - **episodes**: episode `k` is basic family `k mod 9` (library order) at seed `k div 9`, difficulty 0.5;
//! - **resets**: `Env::reset` for episodes 0, 1, 2..., each timed on its own;
//! - **repeated resets**: [`GROUP`] resets in a row to each of episodes 0, 1, 2... (a group of rollouts from
//!   one start, as GRPO-style training samples them); only the resets that fork the start the environment kept
//!   are timed, from the third of each group on (see `Env::reset`);
//! - **steps**: the `random` baseline agent (seeded with the episode's seed) plays episodes 0, 1, 2... to
//!   their end: uniform over the thirteen action kinds with plausible parameters, so about one step in thirteen
//!   resolves the episode, and the mix holds queries, diagnostics, operations and waits. Only `Env::step` is
//!   timed (each call on its own): the agent's choice and the reset that starts each episode are not, as in
//!   Praetor's benchmark (random policy, reset time excluded);
//! - **whole episodes**: the steps phase again, its steps over the time of its steps and of the resets that
//!   started their episodes (timed apart, so the agent's choices are still left out), and the episodes it
//!   played to their end over the time of their resets and steps: the figures Praetor's benchmark gives for
//!   whole episodes;
//! - **text steps**: the same steps, each followed by `Observation::to_text()`, timed together;
//! - **vector steps**: a [`VecEnv`] of [`SLOTS_PER_THREAD`] × `threads` slots with [`AutoReset::SameStep`] over
//!   the same episode list, one `random` agent per slot, stepped with every slot's action at once;
//!   `VecEnv::step` is timed, which includes the auto-resets of slots whose episode ended. Run in
//!   [`VEC_ROUNDS`] alternating rounds of the same work, on `threads` threads and on one, with the same slots;
//! - **training loop**: the same vector steps on `threads` threads with a pause of `policy_ms` before each
//!   (sleeping, as the caller of a policy on a GPU does), once as they are and once with the next starts prepared
//!   during the pauses ([`VecEnv::set_prefetch`]); the rate counts the pauses. [`VEC_ROUNDS`] alternating rounds
//!   of each, the same work as a threaded round.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use firedrill_agents::{Agent, RandomAgent};
use firedrill_env::{ActionKind, AutoReset, Env, EpisodeSpec, Observation, VecEnv};
use firedrill_scenario::Catalog;
use firedrill_scenario::library::BASIC_FAMILIES;
use serde::Serialize;

use crate::EvalError;

/// Difficulty of every benchmark episode.
pub const BENCH_DIFFICULTY: f64 = 0.5;
/// Rounds of the vector benchmark: each runs the same work on `threads` threads, then on one.
pub const VEC_ROUNDS: usize = 3;
/// Slots per thread of the vector benchmark: enough work per `VecEnv::step` call that handing its slots to the
/// worker threads and waiting for the last one are small beside it.
pub const SLOTS_PER_THREAD: usize = 32;

/// Resets per start in the repeated-reset phase.
pub const GROUP: u64 = 8;

/// How long and how wide to measure.
#[derive(Debug, Clone, Copy)]
pub struct BenchOptions {
    /// Wall-clock seconds per phase (reset, step, text step, vector on `threads`; the one-thread vector phase
    /// repeats the work of the threaded one, however long that takes).
    pub seconds: f64,
    /// Threads of the multi-threaded vector phase.
    pub threads: usize,
    /// Milliseconds the policy of the training-loop phase takes per batch (see [`PolicyPause`]).
    pub policy_ms: f64,
}

/// The headline figures (`firedrill bench --json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchFigures {
    /// `Env::reset` calls per second, one thread.
    pub resets_per_sec: f64,
    /// `Env::reset` calls per second to the start of the reset before, which fork the incident the environment
    /// kept at its page (the third and later resets of a group), one thread.
    pub repeated_resets_per_sec: f64,
    /// `Env::step` calls per second with structured observations, one thread.
    pub steps_per_sec_structured: f64,
    /// `Env::step` plus `Observation::to_text()` per second, one thread.
    pub steps_per_sec_text: f64,
    /// Steps per second of whole episodes in the structured phase: the same steps over the time of the steps
    /// *and* of the `Env::reset` that started each episode (Praetor's "steps/s including resets"), one thread.
    pub steps_per_sec_with_resets: f64,
    /// Episodes played to their end per second in the structured phase, resets included, one thread.
    pub episodes_per_sec: f64,
    /// Environment steps per second through `VecEnv::step` on `threads` threads.
    pub vec_steps_per_sec: f64,
    /// The same on one thread, the base of the scaling ratio.
    pub vec_steps_per_sec_one_thread: f64,
    /// Threads of the vector phase.
    pub threads: usize,
    /// The policy pause of the training-loop phase, in milliseconds.
    pub policy_ms: f64,
    /// Environment steps per second of a training loop on `threads` threads whose policy takes `policy_ms` per
    /// batch, the pauses counted (`None` with one thread, where there is nothing to prepare starts on).
    pub vec_policy_steps_per_sec: Option<f64>,
    /// The same with the next starts prepared during the pauses ([`VecEnv::set_prefetch`]).
    pub vec_policy_steps_per_sec_prefetch: Option<f64>,
}

/// Mean cost of one action kind in the structured phase.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionTiming {
    /// Action name.
    pub action: &'static str,
    /// Steps of this kind.
    pub count: u64,
    /// Mean microseconds per step.
    pub mean_us: f64,
    /// Share of the phase's step time.
    pub share: f64,
}

/// Everything measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    /// The headline figures.
    pub figures: BenchFigures,
    /// Resets timed.
    pub resets: u64,
    /// Repeated resets timed (forks of a kept start).
    pub repeated_resets: u64,
    /// Steps timed in the structured phase.
    pub steps: u64,
    /// Episodes those steps belong to (the last may be unfinished).
    pub episodes: u64,
    /// Steps timed in the text phase.
    pub text_steps: u64,
    /// Mean microseconds of `to_text()` alone in the text phase.
    pub to_text_mean_us: f64,
    /// Steps through `VecEnv` on `threads` threads.
    pub vec_steps: u64,
    /// Slots of the vector phases.
    pub slots: usize,
    /// Mean simulated minutes per step in the structured phase (the world advances one 15 s tick per quarter
    /// minute, so this bounds how cheap a step can be).
    pub sim_minutes_per_step: f64,
    /// Per action kind, in the structured phase.
    pub per_action: Vec<ActionTiming>,
}

/// Episode `k` of the fixed workload.
pub fn episode(k: u64) -> EpisodeSpec {
    EpisodeSpec {
        scenario: BASIC_FAMILIES[(k % BASIC_FAMILIES.len() as u64) as usize].to_string(),
        seed: k / BASIC_FAMILIES.len() as u64,
        difficulty: BENCH_DIFFICULTY,
    }
}

fn rate(n: u64, d: Duration) -> f64 {
    if d.is_zero() {
        0.0
    } else {
        n as f64 / d.as_secs_f64()
    }
}

/// Times `Env::reset` over the workload's episodes for about `seconds`.
pub fn measure_resets(catalog: &Arc<Catalog>, seconds: f64) -> Result<(u64, Duration), EvalError> {
    let mut env = Env::new(Arc::clone(catalog));
    let wall = Instant::now();
    let (mut n, mut spent) = (0u64, Duration::ZERO);
    while n == 0 || wall.elapsed().as_secs_f64() < seconds {
        let spec = episode(n);
        let t = Instant::now();
        let page = env.reset(&spec.scenario, spec.seed, spec.difficulty)?;
        spent += t.elapsed();
        std::hint::black_box(page);
        n += 1;
    }
    Ok((n, spent))
}

/// Resets [`GROUP`] times in a row to each episode of the workload for about `seconds`, timing only the resets
/// that fork the start the environment kept (`Env::reused_starts` counts them): how many, and the time they took.
pub fn measure_repeated_resets(
    catalog: &Arc<Catalog>,
    seconds: f64,
) -> Result<(u64, Duration), EvalError> {
    let mut env = Env::new(Arc::clone(catalog));
    let wall = Instant::now();
    let (mut k, mut n, mut spent) = (0u64, 0u64, Duration::ZERO);
    while n == 0 || wall.elapsed().as_secs_f64() < seconds {
        let spec = episode(k);
        k += 1;
        for _ in 0..GROUP {
            let reused = env.reused_starts();
            let t = Instant::now();
            let page = env.reset(&spec.scenario, spec.seed, spec.difficulty)?;
            let took = t.elapsed();
            std::hint::black_box(page);
            if env.reused_starts() > reused {
                spent += took;
                n += 1;
            }
        }
    }
    Ok((n, spent))
}

/// Result of a single-thread step phase.
#[derive(Debug, Clone, Default)]
pub struct StepPhase {
    /// Steps timed.
    pub steps: u64,
    /// Episodes started.
    pub episodes: u64,
    /// Time in `Env::step` (and `to_text()` in the text phase).
    pub spent: Duration,
    /// Time in `to_text()` alone (text phase only).
    pub text: Duration,
    /// Per action kind: count and time.
    pub per_kind: BTreeMap<ActionKind, (u64, Duration)>,
    /// Simulated minutes the timed steps advanced the world by.
    pub sim_minutes: f64,
    /// Time in the `Env::reset` that starts each episode (timed apart from the steps).
    pub reset_spent: Duration,
    /// Episodes played to their end.
    pub finished: u64,
    /// Time in the resets and steps of the episodes played to their end.
    pub finished_spent: Duration,
}

/// Plays the workload with the random agent for about `seconds`, timing each `Env::step` (and `to_text()` on
/// every observation when `text`).
pub fn measure_steps(
    catalog: &Arc<Catalog>,
    seconds: f64,
    text: bool,
) -> Result<StepPhase, EvalError> {
    let mut env = Env::new(Arc::clone(catalog));
    let mut out = StepPhase::default();
    let wall = Instant::now();
    while out.steps == 0 || wall.elapsed().as_secs_f64() < seconds {
        let spec = episode(out.episodes);
        out.episodes += 1;
        let t = Instant::now();
        let mut obs = env.reset(&spec.scenario, spec.seed, spec.difficulty)?;
        out.reset_spent += t.elapsed();
        let mut agent = RandomAgent::new(spec.seed);
        loop {
            let action = agent.act(&obs);
            let t = Instant::now();
            let step = env.step(&action)?;
            let stepped = t.elapsed();
            let mut spent = stepped;
            if text {
                let t = Instant::now();
                std::hint::black_box(step.observation.to_text());
                let rendered = t.elapsed();
                out.text += rendered;
                spent += rendered;
            }
            out.spent += spent;
            out.steps += 1;
            out.sim_minutes += step.info.minutes;
            let slot = out.per_kind.entry(action.kind()).or_default();
            slot.0 += 1;
            slot.1 += stepped;
            if step.terminated || step.truncated {
                out.finished += 1;
                out.finished_spent = out.spent + out.reset_spent;
                break;
            }
            obs = step.observation;
            if wall.elapsed().as_secs_f64() >= seconds {
                return Ok(out);
            }
        }
    }
    Ok(out)
}

/// How long a [`measure_vec`] run lasts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum VecBudget {
    /// About this many seconds of wall time.
    Seconds(f64),
    /// Exactly this many environment steps (rounded up to whole `VecEnv` steps): the same work whatever the
    /// thread count, since every slot computes the same thing on any thread.
    Steps(u64),
}

/// Steps a [`VecEnv`] of `slots` slots on `threads` threads for the budget; returns environment steps and the
/// time spent in `VecEnv::step`.
pub fn measure_vec(
    catalog: &Arc<Catalog>,
    budget: VecBudget,
    slots: usize,
    threads: usize,
) -> Result<(u64, Duration), EvalError> {
    let run = measure_vec_with(catalog, budget, slots, threads, &PolicyPause::default())?;
    Ok((run.steps, run.stepping))
}

/// What a training loop does between two `VecEnv::step` calls, for [`measure_vec_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PolicyPause {
    /// How long the caller's policy takes per batch, slept (a policy on a GPU leaves the CPU idle meanwhile).
    pub pause: Duration,
    /// Whether the vector environment prepares its next starts meanwhile ([`VecEnv::set_prefetch`]).
    pub prefetch: bool,
}

/// A [`measure_vec_with`] run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct VecRun {
    /// Environment steps (every slot of every `VecEnv::step`).
    pub steps: u64,
    /// Time in `VecEnv::step`.
    pub stepping: Duration,
    /// Time in the policy pauses, as slept.
    pub paused: Duration,
}

impl VecRun {
    /// Adds another run's work and times to this one's.
    pub fn add(&mut self, other: &VecRun) {
        self.steps += other.steps;
        self.stepping += other.stepping;
        self.paused += other.paused;
    }

    /// Environment steps per second of the loop: the steps over the time of the steps and the pauses.
    pub fn loop_rate(&self) -> f64 {
        rate(self.steps, self.stepping + self.paused)
    }
}

/// [`measure_vec`] with a policy pause before each step (the random agents' own choices are still not timed).
pub fn measure_vec_with(
    catalog: &Arc<Catalog>,
    budget: VecBudget,
    slots: usize,
    threads: usize,
    policy: &PolicyPause,
) -> Result<VecRun, EvalError> {
    let slots = slots.max(1);
    // Long enough that no slot wraps around the schedule in any realistic run.
    let schedule: Vec<EpisodeSpec> = (0..slots as u64 * 4_096).map(episode).collect();
    let mut venv = VecEnv::new(
        Arc::clone(catalog),
        slots,
        schedule.clone(),
        AutoReset::SameStep,
        threads,
    );
    venv.set_prefetch(policy.prefetch);
    let mut observations: Vec<Observation> = venv.reset().into_iter().collect::<Result<_, _>>()?;
    // Slot `i` plays schedule entries `i`, `i + slots`, ...: its agent is seeded like the episode it plays.
    let mut cursor: Vec<usize> = (0..slots).collect();
    let mut agents: Vec<RandomAgent> = (0..slots)
        .map(|i| RandomAgent::new(schedule[i].seed))
        .collect();
    let wall = Instant::now();
    let (mut n, mut spent, mut paused) = (0u64, Duration::ZERO, Duration::ZERO);
    let more = |n: u64| match budget {
        VecBudget::Seconds(seconds) => wall.elapsed().as_secs_f64() < seconds,
        VecBudget::Steps(steps) => n < steps,
    };
    while n == 0 || more(n) {
        let actions: Vec<_> = agents
            .iter_mut()
            .zip(&observations)
            .map(|(a, o)| a.act(o))
            .collect();
        if !policy.pause.is_zero() {
            let t = Instant::now();
            std::thread::sleep(policy.pause);
            paused += t.elapsed();
        }
        let t = Instant::now();
        let results = venv.step(&actions);
        spent += t.elapsed();
        for (i, r) in results.into_iter().enumerate() {
            let r = r?;
            n += 1;
            match r.reset_observation {
                Some(page) => {
                    cursor[i] += slots;
                    agents[i] = RandomAgent::new(schedule[cursor[i] % schedule.len()].seed);
                    observations[i] = page;
                }
                None => observations[i] = r.step.observation,
            }
        }
    }
    Ok(VecRun {
        steps: n,
        stepping: spent,
        paused,
    })
}

/// The phases [`run_bench`] runs with `threads` threads, in order, as it names them to its `progress`.
pub fn bench_phases(threads: usize) -> Vec<String> {
    let mut phases = vec![
        "resets".to_string(),
        "resets to the start before".to_string(),
        "steps, structured".to_string(),
        "steps, text".to_string(),
        format!("VecEnv on {threads} threads and on 1, alternating"),
    ];
    if threads > 1 {
        phases.push("training loop, with and without prefetching".to_string());
    }
    phases
}

/// Runs every phase, calling `progress` with each phase's name (from [`bench_phases`]) as it begins.
pub fn run_bench(
    catalog: &Arc<Catalog>,
    options: BenchOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<BenchReport, EvalError> {
    let seconds = options.seconds.max(0.0);
    let threads = options.threads.max(1);
    let phases = bench_phases(threads);
    let mut phase = phases.iter();
    let mut begin = || {
        if let Some(name) = phase.next() {
            progress(name);
        }
    };
    begin();
    let (resets, reset_time) = measure_resets(catalog, seconds)?;
    begin();
    let (repeated_resets, repeated_reset_time) = measure_repeated_resets(catalog, seconds)?;
    begin();
    let structured = measure_steps(catalog, seconds, false)?;
    begin();
    let text = measure_steps(catalog, seconds, true)?;
    begin();
    let slots = SLOTS_PER_THREAD * threads;
    // The first threaded round sets the work; every later round, threaded or not, repeats exactly that work, so
    // the ratio of the two rates compares the same episodes and steps (a time budget each would cover more of
    // the schedule with more threads, a different mix of resets and actions). The rounds alternate, so that a
    // change in the machine's speed during the phase (another tenant, the clock) weighs on both sides alike
    // rather than on whichever ran second.
    let round_seconds = seconds / VEC_ROUNDS as f64;
    let (mut vecn, mut vecn_time) =
        measure_vec(catalog, VecBudget::Seconds(round_seconds), slots, threads)?;
    let work = vecn;
    let (mut vec1, mut vec1_time) = measure_vec(catalog, VecBudget::Steps(work), slots, 1)?;
    for _ in 1..VEC_ROUNDS {
        let (n, t) = measure_vec(catalog, VecBudget::Steps(work), slots, threads)?;
        vecn += n;
        vecn_time += t;
        let (n, t) = measure_vec(catalog, VecBudget::Steps(work), slots, 1)?;
        vec1 += n;
        vec1_time += t;
    }
    // A training loop whose policy pauses between steps, with and without starts prepared meanwhile: the same
    // work as a threaded round, alternating.
    let policy = |prefetch| PolicyPause {
        pause: Duration::from_secs_f64(options.policy_ms.max(0.0) / 1000.0),
        prefetch,
    };
    let (mut plain, mut prefetched) = (VecRun::default(), VecRun::default());
    if threads > 1 {
        begin();
        for _ in 0..VEC_ROUNDS {
            for (prefetch, sum) in [(false, &mut plain), (true, &mut prefetched)] {
                sum.add(&measure_vec_with(
                    catalog,
                    VecBudget::Steps(work),
                    slots,
                    threads,
                    &policy(prefetch),
                )?);
            }
        }
    }
    let total = structured.spent.as_secs_f64();
    let per_action = structured
        .per_kind
        .iter()
        .map(|(k, (count, d))| ActionTiming {
            action: k.name(),
            count: *count,
            mean_us: d.as_secs_f64() * 1e6 / (*count).max(1) as f64,
            share: if total > 0.0 {
                d.as_secs_f64() / total
            } else {
                0.0
            },
        })
        .collect();
    Ok(BenchReport {
        figures: BenchFigures {
            resets_per_sec: rate(resets, reset_time),
            repeated_resets_per_sec: rate(repeated_resets, repeated_reset_time),
            steps_per_sec_structured: rate(structured.steps, structured.spent),
            steps_per_sec_text: rate(text.steps, text.spent),
            steps_per_sec_with_resets: rate(
                structured.steps,
                structured.spent + structured.reset_spent,
            ),
            episodes_per_sec: rate(structured.finished, structured.finished_spent),
            vec_steps_per_sec: rate(vecn, vecn_time),
            vec_steps_per_sec_one_thread: rate(vec1, vec1_time),
            threads,
            policy_ms: options.policy_ms,
            vec_policy_steps_per_sec: (threads > 1).then(|| plain.loop_rate()),
            vec_policy_steps_per_sec_prefetch: (threads > 1).then(|| prefetched.loop_rate()),
        },
        resets,
        repeated_resets,
        steps: structured.steps,
        episodes: structured.episodes,
        text_steps: text.steps,
        to_text_mean_us: text.text.as_secs_f64() * 1e6 / text.steps.max(1) as f64,
        vec_steps: vecn,
        slots,
        sim_minutes_per_step: structured.sim_minutes / structured.steps.max(1) as f64,
        per_action,
    })
}
