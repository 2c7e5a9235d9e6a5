//! Optimisers and learning-rate schedules Burn lacks: LARS (You et al. 2017) with warm-up + cosine.
//!
//! ```no_run
//! use infobound_train::optim::{LarsConfig, WarmupCosineSchedule, scaled_learning_rate};
//! # fn demo() -> Result<(), infobound_train::TrainError> {
//! let mut optimizer = LarsConfig::default().init()?;
//! let schedule = WarmupCosineSchedule::new(scaled_learning_rate(0.3, 512), 100, 8000)?;
//! let lr = schedule.learning_rate(0);
//! # let _ = (&mut optimizer, lr);
//! # Ok(()) }
//! ```

mod finite;
mod lars;
mod schedule;

pub use finite::{gradients_are_finite, squared_gradient_norm};
pub use lars::{Lars, LarsConfig, LarsState};
pub use schedule::{CosineSpan, WarmupCosineSchedule, scaled_learning_rate};
