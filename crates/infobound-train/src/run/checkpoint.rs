//! Atomic checkpoints: each is a folder written under a temporary name and renamed into place,
//! then `checkpoints/latest` (written atomically) names it. A crash at any point leaves the
//! previous checkpoint intact; a non-finite model is never saved.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use serde::{Deserialize, Serialize};

use super::fsutil::{temp_path, write_atomic, write_json_atomic};
use crate::TrainError;

/// Scalar state saved beside the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Number of completed steps.
    pub step: usize,
    /// Current learning rate (after any plateau decay).
    pub learning_rate: f64,
    /// Best mean loss seen by the plateau scheduler.
    pub plateau_best: Option<f64>,
    /// Log intervals without improvement.
    pub plateau_bad_intervals: usize,
    /// Steps skipped by the gradient-skip rule or the non-finite guard.
    pub skipped_steps: usize,
}

/// How many checkpoints are kept (older ones are deleted after a new one lands).
const KEEP: usize = 2;

fn checkpoint_name(step: usize) -> String {
    format!("step-{step:08}")
}

/// Writes a checkpoint of `modules` (name → module) and optimisers for `state.step`.
pub fn save_checkpoint(
    dir: &Path,
    state: &TrainerState,
    modules: &[(&str, &dyn SaveModule)],
    optimizers: &[(&str, &ModuleOptimizer)],
) -> Result<PathBuf, TrainError> {
    std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
    let final_dir = dir.join(checkpoint_name(state.step));
    let tmp_dir = temp_path(&final_dir);
    if tmp_dir.exists() {
        std::fs::remove_dir_all(&tmp_dir).map_err(|e| TrainError::io(&tmp_dir, e))?;
    }
    std::fs::create_dir_all(&tmp_dir).map_err(|e| TrainError::io(&tmp_dir, e))?;
    for (name, module) in modules {
        let path = tmp_dir.join(format!("{name}.bpk"));
        module.save_to(&path)?;
    }
    for (name, optimizer) in optimizers {
        let path = tmp_dir.join(format!("{name}.bpk"));
        optimizer.save(&path).map_err(|e| TrainError::Checkpoint {
            path: path.clone(),
            message: e.to_string(),
        })?;
    }
    write_json_atomic(&tmp_dir.join("state.json"), state)?;
    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir).map_err(|e| TrainError::io(&final_dir, e))?;
    }
    std::fs::rename(&tmp_dir, &final_dir).map_err(|e| TrainError::io(&final_dir, e))?;
    write_atomic(&dir.join("latest"), checkpoint_name(state.step).as_bytes())?;
    prune(dir)?;
    Ok(final_dir)
}

fn prune(dir: &Path) -> Result<(), TrainError> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| TrainError::io(dir, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("step-") && !n.contains(".tmp"))
        .collect();
    names.sort();
    let excess = names.len().saturating_sub(KEEP);
    for name in &names[..excess] {
        let path = dir.join(name);
        std::fs::remove_dir_all(&path).map_err(|e| TrainError::io(&path, e))?;
    }
    Ok(())
}

/// The newest complete checkpoint folder, if any.
pub fn latest_checkpoint(dir: &Path) -> Result<Option<PathBuf>, TrainError> {
    let pointer = dir.join("latest");
    if !pointer.exists() {
        return Ok(None);
    }
    let name = std::fs::read_to_string(&pointer).map_err(|e| TrainError::io(&pointer, e))?;
    let path = dir.join(name.trim());
    if !path.join("state.json").exists() {
        return Err(TrainError::Checkpoint {
            path,
            message: "the checkpoint named by `latest` is incomplete".into(),
        });
    }
    Ok(Some(path))
}

/// Reads `state.json` of a checkpoint.
pub fn load_state(checkpoint: &Path) -> Result<TrainerState, TrainError> {
    let path = checkpoint.join("state.json");
    let text = std::fs::read_to_string(&path).map_err(|e| TrainError::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| TrainError::Checkpoint {
        path,
        message: e.to_string(),
    })
}

/// Loads a module's weights from `<checkpoint>/<name>.bpk`.
pub fn load_module<M: Module>(checkpoint: &Path, name: &str, module: M) -> Result<M, TrainError> {
    let path = checkpoint.join(format!("{name}.bpk"));
    module
        .try_load_file(&path)
        .map_err(|e| TrainError::Checkpoint {
            path,
            message: e.to_string(),
        })
}

/// Loads an optimiser's state from `<checkpoint>/<name>.bpk`.
pub fn load_optimizer(
    checkpoint: &Path,
    name: &str,
    optimizer: ModuleOptimizer,
) -> Result<ModuleOptimizer, TrainError> {
    let path = checkpoint.join(format!("{name}.bpk"));
    optimizer.load(&path).map_err(|e| TrainError::Checkpoint {
        path,
        message: e.to_string(),
    })
}

/// Object-safe saving of a module (Burn's `save_file` consumes the module).
pub trait SaveModule {
    /// Writes the weights as burnpack.
    fn save_to(&self, path: &Path) -> Result<(), TrainError>;
}

impl<M: Module + Clone> SaveModule for M {
    fn save_to(&self, path: &Path) -> Result<(), TrainError> {
        self.clone()
            .save_file(path)
            .map_err(|e| TrainError::Checkpoint {
                path: path.to_path_buf(),
                message: e.to_string(),
            })
    }
}
