//! Capacity schedules C_t of the capacity-penalised objectives (|KL − C_t| terms).

use serde::{Deserialize, Serialize};

use super::StepContext;
use crate::ModelError;

/// How the capacity C_t rises to its final value C (serde tag `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CapacitySchedule {
    /// The α-TCVAE authors' per-epoch staircase: C_t = C · min(e / (W + 1), 1), where
    /// e = 1 + ⌊t·B / `epoch_images`⌋ is the 1-based epoch of step t at batch size B, so the
    /// first epoch already trains at C / (W + 1). Source: Cmeo97/benchmark_VAE @2777974,
    /// `src/pythae/models/tc_vae/tc_vae_model.py` (`C_factor = min(epoch / (warmup_epoch + 1), 1)`)
    /// with epochs counted from 1 in `src/pythae/trainers/base_trainer/base_trainer.py`.
    EpochStaircase {
        /// W, epochs of warm-up (the authors' `warmup_epoch`, 25 in `tc_vae_config.py`).
        warmup_epochs: usize,
        /// Images in one epoch (the authors: the 80 % train split, 384,000 3DShapes images).
        epoch_images: usize,
    },
    /// Linear in steps, C_t = C · min(t / T, 1) (Burgess et al. 2018 § 4); T = 0 is C at once.
    Linear {
        /// T, steps of warm-up.
        warmup_steps: usize,
    },
}

impl Default for CapacitySchedule {
    /// The authors' staircase on 3DShapes: W = 25 (`tc_vae_config.py` @2777974) and an epoch
    /// of 384,000 images (`examples/scripts/training.py` @2777974 trains on 80 % of 480,000).
    fn default() -> Self {
        Self::EpochStaircase {
            warmup_epochs: 25,
            epoch_images: 384_000,
        }
    }
}

impl CapacitySchedule {
    /// C_t for the step in `context`, given the final capacity `capacity_max`.
    pub fn capacity(&self, capacity_max: f64, context: &StepContext) -> f64 {
        let fraction = match *self {
            Self::EpochStaircase {
                warmup_epochs,
                epoch_images,
            } => {
                let seen = context.step as u128 * context.batch_size as u128;
                let epoch = 1 + seen / epoch_images.max(1) as u128;
                epoch as f64 / (warmup_epochs as f64 + 1.0)
            }
            Self::Linear { warmup_steps: 0 } => 1.0,
            Self::Linear { warmup_steps } => context.step as f64 / warmup_steps as f64,
        };
        capacity_max * fraction.min(1.0)
    }

    /// Checks the schedule's values.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] for an epoch of zero images.
    pub fn validate(&self) -> Result<(), ModelError> {
        match self {
            Self::EpochStaircase {
                epoch_images: 0, ..
            } => Err(ModelError::InvalidConfig(
                "capacity_schedule.epoch_images must be positive".into(),
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(step: usize, batch_size: usize) -> StepContext {
        StepContext {
            step,
            batch_size,
            dataset_size: 480_000,
        }
    }

    #[test]
    fn the_staircase_starts_at_one_step_of_w_plus_one_and_holds_within_an_epoch() {
        let schedule = CapacitySchedule::EpochStaircase {
            warmup_epochs: 25,
            epoch_images: 1_000,
        };
        assert!((schedule.capacity(26.0, &at(0, 100)) - 1.0).abs() < 1e-12);
        // Step 9 has seen 900 images: still epoch 1.
        assert!((schedule.capacity(26.0, &at(9, 100)) - 1.0).abs() < 1e-12);
        // Step 10 begins epoch 2.
        assert!((schedule.capacity(26.0, &at(10, 100)) - 2.0).abs() < 1e-12);
        // Epoch 26 = W + 1 reaches C and it stays there.
        assert!((schedule.capacity(26.0, &at(250, 100)) - 26.0).abs() < 1e-12);
        assert!((schedule.capacity(26.0, &at(10_000, 100)) - 26.0).abs() < 1e-12);
    }

    #[test]
    fn the_linear_ramp_reaches_c_at_t_and_zero_steps_means_c_at_once() {
        let linear = CapacitySchedule::Linear { warmup_steps: 100 };
        assert_eq!(linear.capacity(30.0, &at(0, 64)), 0.0);
        assert!((linear.capacity(30.0, &at(50, 64)) - 15.0).abs() < 1e-12);
        assert_eq!(linear.capacity(30.0, &at(500, 64)), 30.0);
        let at_once = CapacitySchedule::Linear { warmup_steps: 0 };
        assert_eq!(at_once.capacity(30.0, &at(0, 64)), 30.0);
    }

    #[test]
    fn an_epoch_of_zero_images_is_rejected() {
        let schedule = CapacitySchedule::EpochStaircase {
            warmup_epochs: 25,
            epoch_images: 0,
        };
        assert!(matches!(
            schedule.validate(),
            Err(ModelError::InvalidConfig(_))
        ));
        assert!(CapacitySchedule::default().validate().is_ok());
    }

    #[test]
    fn schedules_round_trip_through_serde() {
        for schedule in [
            CapacitySchedule::default(),
            CapacitySchedule::Linear { warmup_steps: 560 },
        ] {
            let text = serde_json::to_string(&schedule).expect("serialises");
            let back: CapacitySchedule = serde_json::from_str(&text).expect("parses");
            assert_eq!(back, schedule);
        }
    }
}
