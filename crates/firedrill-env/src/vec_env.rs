//! A batch of environments stepped together, on several threads.
//!
//! Each slot runs its own episode. With [`AutoReset::SameStep`], a slot whose episode ends is reset at once to
//! the next episode of its schedule: the step result keeps the ended episode's final observation, reward and
//! grade, and carries the new episode's page in `reset_observation` (the observation to act on next). With
//! [`AutoReset::Disabled`], stepping an ended slot is an error until [`VecEnv::reset_slot`].
//!
//! Results do not depend on the thread count: every slot owns its episode and its generator, and slots are
//! split into contiguous chunks whose results are written back in slot order.

use std::sync::Arc;

use firedrill_scenario::Catalog;
use serde::Serialize;

use crate::action::Action;
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
}

impl VecEnv {
    /// `n` slots over `schedule`: slot `i` plays `schedule[i]`, then `schedule[i + n]`, and so on, wrapping.
    pub fn new(
        catalog: Arc<Catalog>,
        n: usize,
        schedule: Vec<EpisodeSpec>,
        mode: AutoReset,
        threads: usize,
    ) -> VecEnv {
        VecEnv {
            envs: (0..n).map(|_| Env::new(catalog.clone())).collect(),
            schedule,
            cursor: (0..n).collect(),
            mode,
            threads: threads.max(1),
        }
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

    fn next_spec(&mut self, slot: usize) -> Option<EpisodeSpec> {
        if self.schedule.is_empty() {
            return None;
        }
        let spec = self.schedule[self.cursor[slot] % self.schedule.len()].clone();
        self.cursor[slot] += self.envs.len();
        Some(spec)
    }

    /// Resets every slot to its next episode.
    pub fn reset(&mut self) -> Vec<Result<Observation, EnvError>> {
        (0..self.envs.len()).map(|i| self.reset_slot(i)).collect()
    }

    /// Resets one slot to its next episode.
    pub fn reset_slot(&mut self, slot: usize) -> Result<Observation, EnvError> {
        let spec = self.next_spec(slot).ok_or(EnvError::NotReset)?;
        self.envs[slot].reset(&spec.scenario, spec.seed, spec.difficulty)
    }

    /// Steps every slot with its action (`actions[i]` for slot `i`), on the configured threads.
    pub fn step(&mut self, actions: &[Action]) -> Vec<Result<VecStep, EnvError>> {
        let n = self.envs.len().min(actions.len());
        let chunk = n.div_ceil(self.threads).max(1);
        let mut results: Vec<Result<Step, EnvError>> = Vec::with_capacity(n);
        if self.threads == 1 || n < 2 {
            for (env, a) in self.envs.iter_mut().zip(actions) {
                results.push(env.step(a));
            }
        } else {
            let chunks: Vec<Vec<Result<Step, EnvError>>> = std::thread::scope(|scope| {
                let handles: Vec<_> = self.envs[..n]
                    .chunks_mut(chunk)
                    .zip(actions[..n].chunks(chunk))
                    .map(|(envs, acts)| {
                        scope.spawn(move || {
                            envs.iter_mut()
                                .zip(acts)
                                .map(|(e, a)| e.step(a))
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .collect()
            });
            results.extend(chunks.into_iter().flatten());
        }
        let mut out = Vec::with_capacity(n);
        for (slot, r) in results.into_iter().enumerate() {
            out.push(r.map(|step| {
                let ended = step.terminated || step.truncated;
                let reset_observation = if ended && self.mode == AutoReset::SameStep {
                    self.reset_slot(slot).ok()
                } else {
                    None
                };
                VecStep {
                    step,
                    reset_observation,
                }
            }));
        }
        out
    }
}
