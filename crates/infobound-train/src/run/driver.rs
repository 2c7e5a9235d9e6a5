//! The one run driver: every model family implements [`RunFamily`] (its step, its checkpoint)
//! and this module owns what every run shares — fresh start or resume, `config.toml`, the
//! prefetched batches, the progress bar, the non-finite policy, interval statistics, the log
//! and checkpoint cadence, and the summary.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use indicatif::ProgressBar;
use serde::Serialize;

use super::Ranks;
use super::RunDir;
use super::checkpoint::{TrainerState, resume_checkpoint};
use super::fsutil::write_atomic;
use super::interval::IntervalStats;
use super::lock::RunLock;
use super::log::{TrainLog, due, insert_number, progress_bar};
use super::prefetch::prefetch;
use super::step::{NonFinitePolicy, StepOutcome, StepRecord};
use crate::TrainError;

/// Options that do not change the result of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrainOptions {
    /// Continue from the newest checkpoint of the run folder.
    pub resume: bool,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

/// Budget and cadence of a run's loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopSettings {
    /// Total optimisation steps.
    pub steps: usize,
    /// Steps between log lines.
    pub log_every: usize,
    /// Steps between checkpoints (a final one is always written).
    pub checkpoint_every: usize,
    /// Non-finite steps in a row that are skipped before the run stops.
    pub max_consecutive_nonfinite: usize,
}

/// What a finished (or resumed and finished) run reports.
#[derive(Debug, Clone, Serialize)]
pub struct TrainSummary {
    /// Steps completed.
    pub steps: usize,
    /// Steps whose update was discarded (a skip rule or a non-finite value).
    pub skipped_steps: usize,
    /// Mean loss over the last log interval.
    pub final_loss: f64,
    /// Mean of every logged term over the last log interval.
    pub final_terms: BTreeMap<String, f64>,
    /// Wall time of this invocation in seconds.
    pub wall_seconds: f64,
    /// Optimisation steps per second in this invocation.
    pub steps_per_second: f64,
}

impl TrainSummary {
    /// The last interval's mean of `name` (NaN if it was not logged).
    pub fn final_term(&self, name: &str) -> f64 {
        self.final_terms.get(name).copied().unwrap_or(f64::NAN)
    }
}

/// Fault-injection hook of the reliability suite (`crates/infobound-cli/tests/faults.rs`): if
/// this environment variable holds a step number `N`, the driver sets one input value of step
/// `N`'s batch to NaN, to test that the non-finite guard skips the step and that no poisoned
/// parameters reach a checkpoint. It is read only here and changes nothing when unset, like
/// the checkpoint writer's `INFOBOUND_FAULT_STOP_CHECKPOINT_AFTER_FILES`.
pub const FAULT_NAN_AT_STEP_ENV: &str = "INFOBOUND_FAULT_NAN_AT_STEP";

/// A step's batch that the fault hook can poison.
pub trait PoisonableBatch {
    /// Sets one input value to NaN.
    fn poison(&mut self);
}

impl PoisonableBatch for infobound_data::ImageBatch {
    fn poison(&mut self) {
        if let Some(first) = self.pixels_mut().first_mut() {
            *first = f32::NAN;
        }
    }
}

impl<T> PoisonableBatch for (Vec<infobound_data::ImageBatch>, T) {
    fn poison(&mut self) {
        if let Some(view) = self.0.first_mut() {
            view.poison();
        }
    }
}

/// A model family's trainer, as the shared driver runs it.
pub trait RunFamily {
    /// Everything one step consumes, prepared on the prefetch thread.
    type Batch: PoisonableBatch + Send + 'static;

    /// Budget and cadence.
    fn settings(&self) -> LoopSettings;

    /// Counters saved with every checkpoint.
    fn state(&self) -> &TrainerState;

    /// The processes of the job this trainer belongs to ([`Ranks::single`] outside MPI).
    fn ranks(&mut self) -> &mut Ranks;

    /// Gives every rank rank 0's weights (called once every rank has built or restored its
    /// trainer, before the first step).
    ///
    /// # Errors
    /// [`TrainError::DataParallel`] if the exchange fails.
    fn broadcast_weights(&mut self) -> Result<(), TrainError>;

    /// Called on every rank before each checkpoint: averages over the ranks what each holds
    /// differently (batch-norm running statistics), so that rank 0 saves the job's state.
    ///
    /// # Errors
    /// [`TrainError::DataParallel`] if the exchange fails.
    fn synchronise(&mut self) -> Result<(), TrainError> {
        Ok(())
    }

    /// Mutable counters.
    fn state_mut(&mut self) -> &mut TrainerState;

    /// A function giving the batch of step t from t alone (run on the prefetch thread).
    fn batch_maker(&self) -> Box<dyn Fn(usize) -> Result<Self::Batch, TrainError> + Send>;

    /// One optimisation step on `batch`. It reads the step's values back once, after the
    /// optimiser step, and discards the update itself when the record is not `Applied`.
    ///
    /// # Errors
    /// Any [`TrainError`] that makes the run stop.
    fn train_step(&mut self, step: usize, batch: Self::Batch) -> Result<StepRecord, TrainError>;

    /// Work after each step (diagnostics, monitors); `state().step` is already advanced. Called
    /// on every rank; only rank 0's `log` writes.
    ///
    /// # Errors
    /// Any [`TrainError`] that makes the run stop.
    fn after_step(&mut self, _log: &mut TrainLog, _bar: &ProgressBar) -> Result<(), TrainError> {
        Ok(())
    }

    /// Called with the interval statistics before each log line (e.g. a plateau scheduler).
    fn after_interval(&mut self, _interval: &IntervalStats) {}

    /// Writes a checkpoint of the current state into `run` (called on rank 0 only).
    ///
    /// # Errors
    /// [`TrainError::Checkpoint`] / [`TrainError::Io`].
    fn checkpoint(&self, run: &RunDir) -> Result<(), TrainError>;

    /// Writes the step-0 weights into `run.initial()` (called once, on rank 0, before a fresh
    /// run's first step): evaluation scores them as the untrained floor instead of re-drawing them.
    ///
    /// # Errors
    /// [`TrainError::Checkpoint`] / [`TrainError::Io`].
    fn save_initial(&self, run: &RunDir) -> Result<(), TrainError>;

    /// Restores weights, optimiser moments and counters from a checkpoint folder.
    ///
    /// # Errors
    /// [`TrainError::Checkpoint`] if the checkpoint does not fit this configuration.
    fn restore(&mut self, checkpoint: &Path) -> Result<(), TrainError>;

    /// The resolved configuration as TOML (`config.toml`).
    ///
    /// # Errors
    /// [`TrainError::Config`] if it cannot be encoded.
    fn config_toml(&self) -> Result<String, TrainError>;
}

/// Trains `family` until its step budget, logging to `run`'s `train_log.jsonl` and
/// checkpointing on its cadence. In a job of several ranks every rank runs this loop and only
/// rank 0 writes the log, the progress bar and the checkpoints.
///
/// # Errors
/// The first error of a step, the log, a checkpoint, or [`TrainError::Diverged`].
pub fn train_loop<F: RunFamily>(
    family: &mut F,
    run: &RunDir,
    options: TrainOptions,
) -> Result<TrainSummary, TrainError> {
    let started = Instant::now();
    let settings = family.settings();
    let start_step = family.state().step;
    let total = settings.steps;
    let root = family.ranks().is_root();
    let mut log = if root {
        TrainLog::open(run, start_step)?
    } else {
        TrainLog::discard()
    };
    let bar = progress_bar(options.progress && root, start_step, total);
    let batches = prefetch(start_step, total, family.batch_maker());
    let mut interval = IntervalStats::default();
    let mut last = IntervalStats::default();
    let mut nonfinite = NonFinitePolicy::new(settings.max_consecutive_nonfinite);
    let mut interval_started = Instant::now();
    let poisoned_step = std::env::var(FAULT_NAN_AT_STEP_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok());
    for (step, batch) in (start_step..total).zip(batches.iter()) {
        let mut batch = batch?;
        if poisoned_step == Some(step) {
            batch.poison();
        }
        let record = family.train_step(step, batch)?;
        nonfinite.observe(step, record.outcome)?;
        let state = family.state_mut();
        if record.outcome != StepOutcome::Applied {
            state.skipped_steps += 1;
        }
        if record.outcome != StepOutcome::NonFinite {
            interval.add(&record.terms);
        }
        state.step = step + 1;
        bar.inc(1);
        family.after_step(&mut log, &bar)?;
        let state = family.state();
        if due(state.step, settings.log_every, total) {
            let elapsed = interval_started.elapsed().as_secs_f64();
            family.after_interval(&interval);
            let state = family.state();
            let mut row = serde_json::Map::new();
            row.insert("step".into(), state.step.into());
            row.extend(interval.means());
            insert_number(&mut row, "learning_rate", state.learning_rate);
            row.insert("skipped_steps".into(), state.skipped_steps.into());
            insert_number(
                &mut row,
                "steps_per_second",
                interval.steps() as f64 / elapsed.max(1e-9),
            );
            bar.set_message(interval.short());
            log.write(&serde_json::Value::from(row))?;
            last = std::mem::take(&mut interval);
            interval_started = Instant::now();
        }
        if due(family.state().step, settings.checkpoint_every, total) {
            family.synchronise()?;
            if root {
                family.checkpoint(run)?;
            }
        }
    }
    bar.finish_and_clear();
    let wall = started.elapsed().as_secs_f64();
    let final_terms: BTreeMap<String, f64> = last
        .means()
        .into_iter()
        .filter_map(|(name, value)| value.as_f64().map(|v| (name, v)))
        .collect();
    let state = family.state();
    Ok(TrainSummary {
        steps: state.step,
        skipped_steps: state.skipped_steps,
        final_loss: final_terms.get("loss").copied().unwrap_or(f64::NAN),
        final_terms,
        wall_seconds: wall,
        steps_per_second: (state.step - start_step) as f64 / wall.max(1e-9),
    })
}

/// Trains `family` into `run` under the run folder's lock ([`RunLock`], held until training
/// ends): fresh (refusing a folder that already holds a run) or resumed from the newest valid
/// checkpoint, writing `config.toml` first. Returns the trainer (for evaluation) and the
/// summary.
///
/// # Errors
/// [`TrainError::RunLocked`] if another process holds the folder, then as
/// [`run_training_locked`].
pub fn run_training<F: RunFamily>(
    family: F,
    run: &RunDir,
    options: TrainOptions,
) -> Result<(F, TrainSummary), TrainError> {
    let lock = RunLock::acquire(run.root())?;
    run_training_locked(family, run, &lock, options)
}

/// As [`run_training`], for a caller that already holds the run folder's `lock` (the CLI
/// keeps it through evaluation and the report). In a data-parallel job this is rank 0's call;
/// the other ranks call [`follow_training`].
///
/// # Errors
/// [`TrainError::RunDir`] for a fresh run into a used folder or a resume of a folder without
/// a run (invalid checkpoints are moved aside and named on stderr), then anything
/// [`train_loop`] returns.
pub fn run_training_locked<F: RunFamily>(
    family: F,
    run: &RunDir,
    _lock: &RunLock,
    options: TrainOptions,
) -> Result<(F, TrainSummary), TrainError> {
    train_ranks(family, run, options)
}

/// A rank other than 0 of a data-parallel job: trains in step with rank 0 — from the
/// checkpoint rank 0 resumes (read from the shared run folder) and with rank 0's weights —
/// and writes nothing.
///
/// # Errors
/// [`TrainError::DataParallel`] if rank 0 could not start the run or an exchange fails, then
/// anything [`train_loop`] returns.
pub fn follow_training<F: RunFamily>(
    mut family: F,
    run: &RunDir,
    options: TrainOptions,
) -> Result<(F, TrainSummary), TrainError> {
    if family.ranks().is_root() {
        return Err(TrainError::DataParallel(
            "rank 0 trains with run_training_locked, holding the run folder's lock".into(),
        ));
    }
    train_ranks(family, run, options)
}

/// The start of a run on every rank: rank 0 checks the folder and picks the checkpoint to
/// resume (moving invalid ones aside) and tells the others, which restore the same one;
/// everyone then takes rank 0's weights, and rank 0 writes `config.toml` and trains.
fn train_ranks<F: RunFamily>(
    mut family: F,
    run: &RunDir,
    options: TrainOptions,
) -> Result<(F, TrainSummary), TrainError> {
    let root = family.ranks().is_root();
    let mut start = if root {
        check_run_folder(run, options.resume).and_then(|()| {
            if options.resume {
                resume_checkpoint(&run.checkpoints())
            } else {
                Ok(None)
            }
        })
    } else {
        Ok(None)
    };
    if family.ranks().is_distributed() {
        // Rank 0's verdict travels as text: "ok" and the checkpoint path (empty for none), or
        // "error" and the message, so that no rank waits for a start that will not come.
        let verdict = root.then(|| match &start {
            Ok(checkpoint) => format!(
                "ok\n{}",
                checkpoint
                    .as_ref()
                    .map(|c| c.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ),
            Err(e) => format!("error\n{e}"),
        });
        let agreed = family.ranks().broadcast_text(verdict)?;
        if !root {
            start = match agreed.split_once('\n') {
                Some(("ok", "")) => Ok(None),
                Some(("ok", path)) => Ok(Some(std::path::PathBuf::from(path))),
                Some((_, message)) => Err(TrainError::DataParallel(format!(
                    "rank 0 could not start the run: {message}"
                ))),
                None => Err(TrainError::DataParallel(format!(
                    "rank 0 sent an unreadable start: {agreed:?}"
                ))),
            };
        }
    }
    match start? {
        Some(checkpoint) => family.restore(&checkpoint)?,
        None => {
            if options.resume && root {
                // A run killed before its first checkpoint: everything is drawn from the
                // configuration and (seed, step), so starting again from step 0 is the resume.
                eprintln!(
                    "infobound: {}: no valid checkpoint yet; training again from step 0",
                    run.root().display()
                );
            }
            if root {
                family.save_initial(run)?;
            }
        }
    }
    family.broadcast_weights()?;
    if root {
        // A resume may extend the step budget (`--steps`); config.toml records what ran.
        write_atomic(&run.config(), family.config_toml()?.as_bytes())?;
    }
    let summary = train_loop(&mut family, run, options)?;
    family.ranks().finish();
    Ok((family, summary))
}

/// Checks, before anything is written, that `run` can take a fresh run (it holds none) or a
/// resume (it holds a run: its `config.toml`; without a valid checkpoint yet the resumed run
/// starts again from step 0).
///
/// # Errors
/// [`TrainError::RunDir`] saying which.
pub fn check_run_folder(run: &RunDir, resume: bool) -> Result<(), TrainError> {
    if resume {
        if !run.config().exists() {
            return Err(TrainError::RunDir {
                path: run.root().to_path_buf(),
                message: "nothing to resume: no config.toml (not an infobound run folder)".into(),
            });
        }
    } else if run.config().exists() {
        return Err(TrainError::RunDir {
            path: run.root().to_path_buf(),
            message: "already holds a run; pass --resume to continue it or choose another --out"
                .into(),
        });
    }
    Ok(())
}
