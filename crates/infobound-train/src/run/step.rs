//! What one optimisation step reports, read back from the device once, after the optimiser
//! step.

use burn::tensor::Tensor;

use crate::TrainError;

/// What a step did to the parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// The update was applied.
    Applied,
    /// The update was discarded by a rule (the gradient-skip rule, a non-finite gradient);
    /// the step's terms are logged.
    Skipped,
    /// The loss was NaN or ±∞: the update was discarded and the step's terms are not logged.
    /// Too many in a row end the run ([`crate::TrainError::Diverged`]).
    NonFinite,
}

/// One step's host-side record: its named values and outcome.
#[derive(Debug, Clone)]
pub struct StepRecord {
    /// Named scalars (`loss` first), for the log.
    pub terms: Vec<(String, f64)>,
    /// What happened to the update.
    pub outcome: StepOutcome,
}

/// Reads a `[n]` tensor of a step's scalars back to the host: the step's one device → host
/// transfer.
///
/// # Errors
/// [`TrainError::Config`] if the tensor is not f32/f64 (a backend that cannot read back).
pub fn read_back(packed: Tensor<1>) -> Result<Vec<f64>, TrainError> {
    packed
        .into_data()
        .convert::<f64>()
        .try_to_vec::<f64>()
        .map_err(|e| TrainError::Config(format!("cannot read the step's values back: {e:?}")))
}

/// The consecutive non-finite steps a run tolerates before it stops with
/// [`TrainError::Diverged`]; shared by every family.
#[derive(Debug, Clone, Copy)]
pub struct NonFinitePolicy {
    /// Non-finite steps in a row that are skipped; one more ends the run.
    pub max_consecutive: usize,
    consecutive: usize,
}

impl NonFinitePolicy {
    /// A policy tolerating `max_consecutive` non-finite steps in a row.
    pub fn new(max_consecutive: usize) -> Self {
        Self {
            max_consecutive,
            consecutive: 0,
        }
    }

    /// Records the outcome of `step`.
    ///
    /// # Errors
    /// [`TrainError::Diverged`] once more than `max_consecutive` steps in a row were
    /// non-finite.
    pub fn observe(&mut self, step: usize, outcome: StepOutcome) -> Result<(), TrainError> {
        if outcome != StepOutcome::NonFinite {
            self.consecutive = 0;
            return Ok(());
        }
        self.consecutive += 1;
        if self.consecutive > self.max_consecutive {
            return Err(TrainError::Diverged {
                step,
                consecutive: self.consecutive,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_tolerates_its_budget_and_resets_on_a_finite_step() {
        let mut policy = NonFinitePolicy::new(2);
        policy.observe(0, StepOutcome::NonFinite).unwrap();
        policy.observe(1, StepOutcome::NonFinite).unwrap();
        policy.observe(2, StepOutcome::Skipped).unwrap();
        policy.observe(3, StepOutcome::NonFinite).unwrap();
        policy.observe(4, StepOutcome::NonFinite).unwrap();
        let error = policy.observe(5, StepOutcome::NonFinite).unwrap_err();
        assert!(matches!(
            error,
            TrainError::Diverged {
                step: 5,
                consecutive: 3
            }
        ));
    }
}
