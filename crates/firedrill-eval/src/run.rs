//! Running the matrix on worker threads.
//!
//! Workers take the next task index from a shared atomic counter and send each played episode back to the
//! calling thread, which puts them back in task order before anything sees them: the sink receives episodes in
//! report order and the report sums in report order, so results are identical for any number of threads.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

use firedrill_agents::{EpisodeRecord, run_episode};
use firedrill_scenario::Catalog;

use crate::EvalError;
use crate::matrix::{Matrix, Task};
use crate::report::{EpisodeSummary, Report};

/// Progress, reported once per finished episode (in the order episodes finish, which depends on threads).
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    /// Episodes finished so far.
    pub done: usize,
    /// Episodes in the matrix.
    pub total: usize,
    /// The episode that just finished.
    pub task: &'a Task,
}

/// Why one episode failed.
enum Failure {
    Run(firedrill_agents::RunError),
    Panic(String),
}

fn play(catalog: &Arc<Catalog>, task: &Task, difficulty: f64) -> Result<EpisodeRecord, Failure> {
    // An agent that panics must not take the whole evaluation down with an anonymous message: the panic is
    // turned into an error that names the episode.
    let played = catch_unwind(AssertUnwindSafe(|| {
        run_episode(
            Arc::clone(catalog),
            &task.agent,
            &task.scenario,
            task.seed,
            difficulty,
        )
    }));
    match played {
        Ok(r) => r.map_err(Failure::Run),
        Err(payload) => Err(Failure::Panic(
            payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into()),
        )),
    }
}

/// Plays every episode of `matrix` on `jobs` worker threads (at least one, at most one per episode).
///
/// `sink` receives each episode once, in report order (agent, scenario, seed, as [`Matrix::tasks`] lists them);
/// an error from it stops the run. `progress` is called on the calling thread after each episode finishes. The
/// first failing episode in report order stops the run and is returned as [`EvalError::Episode`]; the episodes
/// before it have reached the sink.
pub fn run_matrix(
    catalog: Arc<Catalog>,
    matrix: &Matrix,
    jobs: usize,
    sink: &mut dyn FnMut(&EpisodeRecord) -> Result<(), EvalError>,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Report, EvalError> {
    matrix.validate(&catalog)?;
    let tasks = matrix.tasks();
    let total = tasks.len();
    let jobs = jobs.clamp(1, total.max(1));
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<(usize, Result<EpisodeRecord, Failure>)>();
    let mut summaries: Vec<EpisodeSummary> = Vec::with_capacity(total);
    let mut outcome: Result<(), EvalError> = Ok(());

    std::thread::scope(|scope| {
        for _ in 0..jobs {
            let tx = tx.clone();
            let (tasks, next, stop, catalog) = (&tasks, &next, &stop, &catalog);
            let difficulty = matrix.difficulty;
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(task) = tasks.get(i) else { break };
                    if tx.send((i, play(catalog, task, difficulty))).is_err() {
                        break;
                    }
                }
            });
        }
        // The workers hold the only senders left, so the loop below ends when the last worker does.
        drop(tx);

        let mut pending: BTreeMap<usize, Result<EpisodeRecord, Failure>> = BTreeMap::new();
        let mut written = 0usize;
        for (received, (i, result)) in rx.into_iter().enumerate() {
            if result.is_err() {
                // Tasks are taken in index order, so every task before this one has already been taken and will
                // still arrive: the first failure in report order is found whatever the threads did.
                stop.store(true, Ordering::Relaxed);
            }
            progress(Progress {
                done: received + 1,
                total,
                task: &tasks[i],
            });
            pending.insert(i, result);
            while outcome.is_ok() {
                let Some(result) = pending.remove(&written) else {
                    break;
                };
                let task = &tasks[written];
                match result {
                    Ok(record) => match sink(&record) {
                        Ok(()) => summaries.push(EpisodeSummary::from(&record)),
                        Err(e) => {
                            stop.store(true, Ordering::Relaxed);
                            outcome = Err(e);
                        }
                    },
                    Err(f) => {
                        outcome = Err(EvalError::Episode {
                            agent: task.agent.clone(),
                            scenario: task.scenario.clone(),
                            seed: task.seed,
                            message: match f {
                                Failure::Run(e) => e.to_string(),
                                Failure::Panic(m) => {
                                    format!("the agent or simulator panicked: {m}")
                                }
                            },
                        });
                    }
                }
                written += 1;
            }
        }
    });
    outcome?;
    Ok(Report::new(matrix, &summaries))
}
