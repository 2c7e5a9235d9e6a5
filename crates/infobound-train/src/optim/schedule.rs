//! Linear warm-up followed by cosine decay (Goyal et al. 2017; Loshchilov & Hutter 2017), the
//! learning-rate schedule of BYOL, Barlow Twins and MVEB.

use std::f64::consts::PI;

use serde::{Deserialize, Serialize};

use crate::TrainError;

/// The linear-scaling rule of Goyal et al. (2017), "Accurate, Large Minibatch SGD":
/// `lr = base_lr · batch_size / 256`.
///
/// MVEB uses `base_lr = 0.3` with a global batch of 4096, i.e. a peak rate of 4.8.
pub fn scaled_learning_rate(base_lr: f64, batch_size: usize) -> f64 {
    base_lr * batch_size as f64 / 256.0
}

/// Linear warm-up from `start_factor·peak_lr` to `peak_lr` over `warmup_steps`, then a half cosine
/// down to `final_factor·peak_lr` at `total_steps` (held there afterwards):
///
/// ```text
/// lr(t) = peak · (s + (1 − s)·t/W)                                   for t < W
/// lr(t) = peak · (f + (1 − f)·½·(1 + cos(π·(t − W)/(T − W))))      for W ≤ t ≤ T
/// lr(t) = peak · f                                                    for t > T
/// ```
///
/// with `W = warmup_steps`, `T = total_steps`, `s = start_factor`, `f = final_factor`. Both pieces
/// equal `peak` at `t = W`, so the schedule is continuous.
///
/// The cosine's span `S` is `T − W` by default ([`CosineSpan::AfterWarmup`]), as written above;
/// with [`CosineSpan::Total`] it is `T` (the phase is `π·(t − W)/T`, and the rate at `T` stays
/// above `f·peak`, held there afterwards).
///
/// MVEB (Wen et al. 2024) uses 10 warm-up epochs from `1e-3·peak` and cosine to `1e-3·peak`
/// (`peak = 0.3 × batch / 256`), with the span `T` ([`CosineSpan::Total`]).
///
/// The rate is a pure function of the step, so a resumed run gets exactly the same rates.
/// Values built by deserialisation bypass [`new`](Self::new): call [`validate`](Self::validate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WarmupCosineSchedule {
    /// Rate reached at the end of warm-up (> 0).
    pub peak_lr: f64,
    /// Number of linear warm-up steps `W` (may be 0).
    pub warmup_steps: usize,
    /// Step `T` at which the cosine reaches `final_factor·peak_lr` (`T > W`).
    pub total_steps: usize,
    /// Rate at step 0 as a fraction of the peak, in `[0, 1]` (MVEB: 1e-3).
    pub start_factor: f64,
    /// Rate at step `T` as a fraction of the peak, in `[0, 1]` (MVEB: 1e-3).
    pub final_factor: f64,
    /// What the cosine phase is divided by.
    pub cosine_span: CosineSpan,
}

/// The denominator `S` of the cosine phase `π·(t − W)/S` of [`WarmupCosineSchedule`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CosineSpan {
    /// `S = T − W`: the cosine reaches `f·peak` exactly at `T` (Loshchilov & Hutter's
    /// annealing after warm-up; Barlow Twins, facebookresearch/barlowtwins@8e8d284 `main.py`
    /// `adjust_learning_rate`: `step -= warmup_steps; max_steps -= warmup_steps`; solo-learn,
    /// vturrisi/solo-learn@9187ea3 `solo/utils/lr_scheduler.py` `LinearWarmupCosineAnnealingLR`).
    #[default]
    AfterWarmup,
    /// `S = T`: the released MVEB code (wlj6816/MVEB@9ac7965 `project/pretrainer.py`
    /// `adjust_lr`: `np.cos((step - self.warmup_steps) * np.pi / self.total_steps)`), whose
    /// cosine ends at `½(1 + cos(π(T − W)/T))` of the way down instead of the bottom.
    Total,
}

/// MVEB's fraction of the peak rate at the start of warm-up and at the end of the cosine.
const MVEB_END_FACTOR: f64 = 1e-3;

impl Default for WarmupCosineSchedule {
    /// MVEB's base rate 0.3 at batch 256, with its 10 warm-up and 800 total *epochs* taken as
    /// steps; callers normally set the step counts from the epoch counts × steps per epoch.
    fn default() -> Self {
        Self {
            peak_lr: 0.3,
            warmup_steps: 10,
            total_steps: 800,
            start_factor: MVEB_END_FACTOR,
            final_factor: MVEB_END_FACTOR,
            cosine_span: CosineSpan::AfterWarmup,
        }
    }
}

impl WarmupCosineSchedule {
    /// A schedule with MVEB's start and final factors (`1e-3`), validated.
    ///
    /// # Errors
    /// [`TrainError::Config`] if `peak_lr` is not finite and positive or
    /// `warmup_steps >= total_steps`.
    pub fn new(peak_lr: f64, warmup_steps: usize, total_steps: usize) -> Result<Self, TrainError> {
        let schedule = Self {
            peak_lr,
            warmup_steps,
            total_steps,
            start_factor: MVEB_END_FACTOR,
            final_factor: MVEB_END_FACTOR,
            cosine_span: CosineSpan::AfterWarmup,
        };
        schedule.validate()?;
        Ok(schedule)
    }

    /// This schedule with the cosine divided by `span`.
    pub fn with_cosine_span(self, span: CosineSpan) -> Self {
        Self {
            cosine_span: span,
            ..self
        }
    }

    /// Checks the invariants listed on the fields.
    ///
    /// # Errors
    /// [`TrainError::Config`] naming the first violated invariant.
    pub fn validate(&self) -> Result<(), TrainError> {
        if !(self.peak_lr.is_finite() && self.peak_lr > 0.0) {
            return Err(TrainError::Config(format!(
                "schedule peak_lr must be finite and > 0, got {}",
                self.peak_lr
            )));
        }
        if self.warmup_steps >= self.total_steps {
            return Err(TrainError::Config(format!(
                "schedule needs warmup_steps < total_steps, got {} >= {}",
                self.warmup_steps, self.total_steps
            )));
        }
        for (name, factor) in [
            ("start_factor", self.start_factor),
            ("final_factor", self.final_factor),
        ] {
            if !(0.0..=1.0).contains(&factor) {
                return Err(TrainError::Config(format!(
                    "schedule {name} must lie in [0, 1], got {factor}"
                )));
            }
        }
        Ok(())
    }

    /// The learning rate for optimiser step `step` (0-based: the first step uses `step = 0`).
    pub fn learning_rate(&self, step: usize) -> f64 {
        let factor = if step < self.warmup_steps {
            let progress = step as f64 / self.warmup_steps as f64;
            self.start_factor + (1.0 - self.start_factor) * progress
        } else {
            // Saturating so that an unvalidated schedule cannot underflow; `validate` rejects it.
            let cosine_steps = match self.cosine_span {
                CosineSpan::AfterWarmup => self.total_steps.saturating_sub(self.warmup_steps),
                CosineSpan::Total => self.total_steps,
            }
            .max(1) as f64;
            // Past `T` the rate is held at its value at `T`.
            let elapsed = step.min(self.total_steps).saturating_sub(self.warmup_steps);
            let progress = (elapsed as f64 / cosine_steps).min(1.0);
            self.final_factor + (1.0 - self.final_factor) * 0.5 * (1.0 + (PI * progress).cos())
        };
        self.peak_lr * factor
    }
}
