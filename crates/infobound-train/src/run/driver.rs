//! The one run driver: every model family implements [`RunFamily`] (its step, its checkpoint)
//! and this module owns what every run shares — fresh start or resume, `config.toml`, the
//! prefetched batches, the progress bar, the non-finite policy, interval statistics, the log
//! and checkpoint cadence, and the summary.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use indicatif::ProgressBar;
use serde::Serialize;

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

    /// Work after each step (diagnostics, monitors); `state().step` is already advanced.
    ///
    /// # Errors
    /// Any [`TrainError`] that makes the run stop.
    fn after_step(&mut self, _log: &mut TrainLog, _bar: &ProgressBar) -> Result<(), TrainError> {
        Ok(())
    }

    /// Called with the interval statistics before each log line (e.g. a plateau scheduler).
    fn after_interval(&mut self, _interval: &IntervalStats) {}

    /// Writes a checkpoint of the current state into `run`.
    ///
    /// # Errors
    /// [`TrainError::Checkpoint`] / [`TrainError::Io`].
    fn checkpoint(&self, run: &RunDir) -> Result<(), TrainError>;

    /// Writes the step-0 weights into `run.initial()` (called once, before a fresh run's first
    /// step): evaluation scores them as the untrained floor instead of re-drawing them.
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
/// checkpointing on its cadence.
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
    let mut log = TrainLog::open(run, start_step)?;
    let bar = progress_bar(options.progress, start_step, total);
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
            family.checkpoint(run)?;
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
/// keeps it through evaluation and the report).
///
/// # Errors
/// [`TrainError::RunDir`] for a fresh run into a used folder or a resume of a folder without
/// a run (invalid checkpoints are moved aside and named on stderr), then anything
/// [`train_loop`] returns.
pub fn run_training_locked<F: RunFamily>(
    mut family: F,
    run: &RunDir,
    _lock: &RunLock,
    options: TrainOptions,
) -> Result<(F, TrainSummary), TrainError> {
    check_run_folder(run, options.resume)?;
    let checkpoint = if options.resume {
        resume_checkpoint(&run.checkpoints())?
    } else {
        None
    };
    match checkpoint {
        Some(checkpoint) => family.restore(&checkpoint)?,
        None => {
            if options.resume {
                // A run killed before its first checkpoint: everything is drawn from the
                // configuration and (seed, step), so starting again from step 0 is the resume.
                eprintln!(
                    "infobound: {}: no valid checkpoint yet; training again from step 0",
                    run.root().display()
                );
            }
            family.save_initial(run)?;
        }
    }
    // A resume may extend the step budget (`--steps`); config.toml records what ran.
    write_atomic(&run.config(), family.config_toml()?.as_bytes())?;
    let summary = train_loop(&mut family, run, options)?;
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
