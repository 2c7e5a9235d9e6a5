//! The layout of a run folder.

use std::path::{Path, PathBuf};

use crate::{TrainConfig, TrainError};

/// Paths inside a run folder:
/// `config.toml`, `train_log.jsonl`, `checkpoints/`, `metrics.json`, `reconstructions.png`,
/// `traversals.png`, `samples.png`, `loss.svg`, `environment.json`, `report.md`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// Wraps a folder (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Resolved configuration.
    pub fn config(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    /// One JSON object per logged step.
    pub fn train_log(&self) -> PathBuf {
        self.root.join("train_log.jsonl")
    }

    /// Checkpoint folder.
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoints")
    }

    /// Evaluation results.
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.json")
    }

    /// Versions, backend, device, threads, git commit.
    pub fn environment(&self) -> PathBuf {
        self.root.join("environment.json")
    }

    /// `initial/`: the run's step-0 weights (a checkpoint folder of its own), the untrained
    /// floor of every evaluation.
    pub fn initial(&self) -> PathBuf {
        self.root.join("initial")
    }

    /// A file of the run by name.
    pub fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Reads the resolved configuration of an existing run.
    pub fn load_config(&self) -> Result<TrainConfig, TrainError> {
        let path = self.config();
        if !path.exists() {
            return Err(TrainError::RunDir {
                path: self.root.clone(),
                message: "no config.toml: not an infobound run folder".into(),
            });
        }
        TrainConfig::from_file(&path)
    }
}
