//! The run configuration of either family, as `infobound train` loads it: shipped presets (one
//! registry), files, `--set key.path=value` overrides, and the family decided once by the
//! objective registries of `infobound-models`.

use std::path::Path;

use infobound_models::ObjectiveConfig;
use infobound_models::ssl::SslObjectiveConfig;

use super::RunDir;
use crate::ssl::SslTrainConfig;
use crate::{TrainConfig, TrainError};

/// Every shipped preset, name → TOML (`presets/<name>.toml` inside this crate; the workspace's
/// top-level `configs/` links to that folder). Adding a preset is its file plus one line here.
const PRESETS: &[(&str, &str)] = &[
    ("quickstart", include_str!("../../presets/quickstart.toml")),
    (
        "alpha_tcvae_shapes3d",
        include_str!("../../presets/alpha_tcvae_shapes3d.toml"),
    ),
    (
        "beta_tcvae_shapes3d",
        include_str!("../../presets/beta_tcvae_shapes3d.toml"),
    ),
    (
        "beta_vae_shapes3d",
        include_str!("../../presets/beta_vae_shapes3d.toml"),
    ),
    (
        "factorvae_shapes3d",
        include_str!("../../presets/factorvae_shapes3d.toml"),
    ),
    (
        "alpha_tcvae_dsprites",
        include_str!("../../presets/alpha_tcvae_dsprites.toml"),
    ),
    (
        "beta_tcvae_dsprites",
        include_str!("../../presets/beta_tcvae_dsprites.toml"),
    ),
    (
        "beta_vae_dsprites",
        include_str!("../../presets/beta_vae_dsprites.toml"),
    ),
    (
        "factorvae_dsprites",
        include_str!("../../presets/factorvae_dsprites.toml"),
    ),
    (
        "beta_tcvae_dsprites_npz",
        include_str!("../../presets/beta_tcvae_dsprites_npz.toml"),
    ),
    (
        "beta_tcvae_mpi3d",
        include_str!("../../presets/beta_tcvae_mpi3d.toml"),
    ),
    (
        "mveb_quickstart",
        include_str!("../../presets/mveb_quickstart.toml"),
    ),
    (
        "simsiam_quickstart",
        include_str!("../../presets/simsiam_quickstart.toml"),
    ),
    (
        "byol_quickstart",
        include_str!("../../presets/byol_quickstart.toml"),
    ),
    (
        "barlow_twins_quickstart",
        include_str!("../../presets/barlow_twins_quickstart.toml"),
    ),
    (
        "simsiam_published_quickstart",
        include_str!("../../presets/simsiam_published_quickstart.toml"),
    ),
    (
        "byol_published_quickstart",
        include_str!("../../presets/byol_published_quickstart.toml"),
    ),
    (
        "barlow_twins_published_quickstart",
        include_str!("../../presets/barlow_twins_published_quickstart.toml"),
    ),
    (
        "mveb_cifar10",
        include_str!("../../presets/mveb_cifar10.toml"),
    ),
    (
        "mveb_imagenet",
        include_str!("../../presets/mveb_imagenet.toml"),
    ),
];

/// The model family a configuration trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Variational autoencoders ([`crate::vae`]).
    Vae,
    /// Self-supervised learning ([`crate::ssl`]).
    Ssl,
}

impl Family {
    /// The family of `[objective] kind = kind`, from the objective registries.
    ///
    /// # Errors
    /// [`TrainError::Config`] naming every registered kind when `kind` is unknown.
    pub fn of_objective_kind(kind: &str) -> Result<Self, TrainError> {
        if ObjectiveConfig::ACCEPTED_KINDS.contains(&kind) {
            Ok(Self::Vae)
        } else if SslObjectiveConfig::ACCEPTED_KINDS.contains(&kind) {
            Ok(Self::Ssl)
        } else {
            Err(TrainError::Config(format!(
                "unknown objective kind `{kind}`; VAE objectives: {}; self-supervised: {}",
                ObjectiveConfig::KINDS.join(", "),
                SslObjectiveConfig::KINDS.join(", ")
            )))
        }
    }
}

/// A run configuration of either family.
#[derive(Debug, Clone, PartialEq)]
pub enum RunConfig {
    /// A VAE run ([`crate::VaeTrainer`]).
    Vae(Box<TrainConfig>),
    /// A self-supervised run ([`crate::ssl::SslTrainer`]).
    Ssl(Box<SslTrainConfig>),
}

impl RunConfig {
    /// Every shipped preset name.
    pub fn preset_names() -> Vec<&'static str> {
        PRESETS.iter().map(|(name, _)| *name).collect()
    }

    /// The TOML text of a shipped preset.
    pub fn preset_text(name: &str) -> Option<&'static str> {
        PRESETS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, text)| *text)
    }

    /// A shipped preset with `overrides` (`key.path=value`) applied.
    ///
    /// # Errors
    /// [`TrainError::Config`] for an unknown preset, a bad override or an invalid result.
    pub fn preset(name: &str, overrides: &[String]) -> Result<Self, TrainError> {
        let text = Self::preset_text(name).ok_or_else(|| {
            TrainError::Config(format!(
                "unknown preset `{name}`; presets: {}",
                Self::preset_names().join(", ")
            ))
        })?;
        Self::from_value(parse_toml_value(text)?, overrides)
    }

    /// A `.toml` or `.json` file with `overrides` applied.
    ///
    /// # Errors
    /// [`TrainError::Io`] if unreadable, [`TrainError::Config`] naming the file otherwise.
    pub fn from_file(path: &Path, overrides: &[String]) -> Result<Self, TrainError> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        let value = match path.extension().and_then(|e| e.to_str()) {
            Some("json") => serde_json::from_str::<toml::Value>(&text)
                .map_err(|e| TrainError::Config(format!("{}: {e}", path.display())))?,
            _ => parse_toml_value(&text)
                .map_err(|e| TrainError::Config(format!("{}: {e}", path.display())))?,
        };
        Self::from_value(value, overrides)
            .map_err(|e| TrainError::Config(format!("{}: {e}", path.display())))
    }

    /// The resolved configuration of an existing run folder.
    ///
    /// # Errors
    /// [`TrainError::RunDir`] if the folder holds no `config.toml`.
    pub fn from_run(run: &RunDir) -> Result<Self, TrainError> {
        if !run.config().exists() {
            return Err(TrainError::RunDir {
                path: run.root().to_path_buf(),
                message: "no config.toml: not an infobound run folder".into(),
            });
        }
        Self::from_file(&run.config(), &[])
    }

    /// Applies `overrides` to a parsed configuration, decides its family by `[objective] kind`
    /// (no objective: the VAE default) and validates it.
    ///
    /// # Errors
    /// [`TrainError::Config`] for a bad override, an unknown objective kind, a field the
    /// family does not have, or a value out of its domain.
    pub fn from_value(mut value: toml::Value, overrides: &[String]) -> Result<Self, TrainError> {
        migrate_legacy_dataset(&mut value, false);
        migrate_legacy_capacity(&mut value);
        for assignment in overrides {
            apply_override(&mut value, assignment)?;
        }
        // `--set dataset.num_train=...` of earlier releases: an override names what it sets.
        migrate_legacy_dataset(&mut value, true);
        migrate_legacy_capacity(&mut value);
        let kind = value
            .get("objective")
            .and_then(|o| o.get("kind"))
            .and_then(toml::Value::as_str);
        let family = match kind {
            Some(kind) => Family::of_objective_kind(kind)?,
            None => Family::Vae,
        };
        let config = match family {
            Family::Ssl => {
                Self::Ssl(Box::new(value.try_into().map_err(
                    |e: toml::de::Error| TrainError::Config(e.to_string()),
                )?))
            }
            Family::Vae => {
                Self::Vae(Box::new(value.try_into().map_err(
                    |e: toml::de::Error| TrainError::Config(e.to_string()),
                )?))
            }
        };
        config.validate()?;
        Ok(config)
    }

    /// The family this configuration trains.
    pub fn family(&self) -> Family {
        match self {
            Self::Vae(_) => Family::Vae,
            Self::Ssl(_) => Family::Ssl,
        }
    }

    /// Checks every value that could otherwise fail deep inside training.
    ///
    /// # Errors
    /// [`TrainError::Config`] naming the offending value.
    pub fn validate(&self) -> Result<(), TrainError> {
        match self {
            Self::Vae(c) => c.validate(),
            Self::Ssl(c) => c.validate(),
        }
    }

    /// Run name (the default output folder is `runs/<name>-seed<seed>`).
    pub fn name(&self) -> &str {
        match self {
            Self::Vae(c) => &c.name,
            Self::Ssl(c) => &c.name,
        }
    }

    /// Seed of the run.
    pub fn seed(&self) -> u64 {
        match self {
            Self::Vae(c) => c.seed,
            Self::Ssl(c) => c.seed,
        }
    }

    /// Sets the step budget (`--steps`).
    pub fn set_steps(&mut self, steps: usize) {
        match self {
            Self::Vae(c) => c.steps = steps,
            Self::Ssl(c) => c.steps = steps,
        }
    }

    /// Sets the seed (`--seed`).
    pub fn set_seed(&mut self, seed: u64) {
        match self {
            Self::Vae(c) => c.seed = seed,
            Self::Ssl(c) => c.seed = seed,
        }
    }

    /// The resolved configuration as TOML.
    ///
    /// # Errors
    /// [`TrainError::Config`] if it cannot be encoded.
    pub fn to_toml(&self) -> Result<String, TrainError> {
        match self {
            Self::Vae(c) => c.to_toml(),
            Self::Ssl(c) => c.to_toml(),
        }
    }
}

/// The SSL keys that moved from `[dataset]` to `[labels]` when both families got one dataset
/// table ([`infobound_data::DatasetSource`]).
const LEGACY_LABEL_KEYS: [&str; 5] = [
    "label_factor",
    "image_size",
    "num_train",
    "num_test",
    "seed",
];

/// Rewrites the `[dataset]` tables of earlier releases: a VAE `name = "..."` without `source`
/// becomes `source = "procedural"`; an SSL `source = "procedural"` table's labelling keys move
/// to `[labels]` (replacing what `[labels]` holds when `overwrite`, for overrides). Anything
/// else is left for the parser to accept or reject.
fn migrate_legacy_dataset(value: &mut toml::Value, overwrite: bool) {
    let Some(root) = value.as_table_mut() else {
        return;
    };
    let Some(dataset) = root.get_mut("dataset").and_then(toml::Value::as_table_mut) else {
        return;
    };
    if !dataset.contains_key("source") && dataset.contains_key("name") {
        dataset.insert("source".into(), toml::Value::String("procedural".into()));
    }
    if dataset.get("source").and_then(toml::Value::as_str) != Some("procedural") {
        return;
    }
    let moved: Vec<(String, toml::Value)> = LEGACY_LABEL_KEYS
        .iter()
        .filter_map(|key| dataset.remove(*key).map(|v| (key.to_string(), v)))
        .collect();
    if moved.is_empty() {
        return;
    }
    let labels = root
        .entry("labels")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let Some(labels) = labels.as_table_mut() {
        for (key, v) in moved {
            if overwrite {
                labels.insert(key, v);
            } else {
                labels.entry(key).or_insert(v);
            }
        }
    }
}

/// α-TCVAE configurations (and run folders) of earlier releases set
/// `objective.capacity_warmup_steps = T`, a linear ramp: it becomes
/// `objective.capacity_schedule = { kind = "linear", warmup_steps = T }`, replacing the schedule
/// (an override of the old key names what it sets).
fn migrate_legacy_capacity(value: &mut toml::Value) {
    let Some(objective) = value
        .get_mut("objective")
        .and_then(toml::Value::as_table_mut)
    else {
        return;
    };
    if objective.get("kind").and_then(toml::Value::as_str) != Some("alpha_tcvae") {
        return;
    }
    let Some(steps) = objective.remove("capacity_warmup_steps") else {
        return;
    };
    let mut schedule = toml::Table::new();
    schedule.insert("kind".into(), toml::Value::String("linear".into()));
    schedule.insert("warmup_steps".into(), steps);
    objective.insert("capacity_schedule".into(), toml::Value::Table(schedule));
}

fn parse_toml_value(text: &str) -> Result<toml::Value, TrainError> {
    text.parse::<toml::Table>()
        .map(toml::Value::Table)
        .map_err(|e| TrainError::Config(e.to_string()))
}

/// Sets `key.path=value` in a parsed configuration, creating missing tables. The value is read
/// as a TOML value (`0.01`, `true`, `"text"`, `[1, 2]`); anything that does not parse as one is
/// taken as a bare string (`objective.kind=byol`).
///
/// # Errors
/// [`TrainError::Config`] for an assignment without `=`, an empty key, or a path through a
/// value that is not a table.
pub fn apply_override(config: &mut toml::Value, assignment: &str) -> Result<(), TrainError> {
    let (path, raw) = assignment.split_once('=').ok_or_else(|| {
        TrainError::Config(format!(
            "override `{assignment}` is not of the form key.path=value"
        ))
    })?;
    let keys: Vec<&str> = path.trim().split('.').collect();
    if keys.iter().any(|k| k.is_empty()) {
        return Err(TrainError::Config(format!(
            "override `{assignment}` has an empty key"
        )));
    }
    let raw = raw.trim();
    let value = format!("value = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("value"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let (last, parents) = keys.split_last().unwrap_or((&"", &[]));
    let mut table = config
        .as_table_mut()
        .ok_or_else(|| TrainError::Config("the configuration is not a TOML table".to_string()))?;
    for key in parents {
        let entry = table
            .entry(key.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = entry.as_table_mut().ok_or_else(|| {
            TrainError::Config(format!(
                "override `{assignment}`: `{key}` is a value, not a table"
            ))
        })?;
    }
    table.insert(last.to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks the preset registry: every preset loads, validates, re-encodes and reloads to
    /// the same configuration, and names are unique.
    #[test]
    fn every_preset_loads_and_round_trips() {
        let names = RunConfig::preset_names();
        let unique: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "duplicate preset names");
        for name in names {
            let config = RunConfig::preset(name, &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
            let text = config.to_toml().expect("encodes");
            let value = parse_toml_value(&text).expect("parses");
            let back = RunConfig::from_value(value, &[]).expect("reloads");
            assert_eq!(back, config, "{name} does not round-trip");
        }
    }

    /// Configurations of earlier releases (a VAE `[dataset] name`, an SSL procedural table
    /// with its labelling keys) load as the current layout.
    #[test]
    fn legacy_dataset_tables_still_load() {
        let vae = parse_toml_value("[dataset]\nname = \"dsprites\"\n[model]\nchannels = 1\n")
            .expect("parses");
        let RunConfig::Vae(vae) = RunConfig::from_value(vae, &[]).expect("loads") else {
            panic!("not a VAE config");
        };
        assert_eq!(vae.dataset.name(), "dsprites");
        let ssl = parse_toml_value(
            "[objective]\nkind = \"simsiam\"\n[network.predictor]\n[dataset]\n\
             source = \"procedural\"\ndataset = \"shapes3d\"\nlabel_factor = \"floor_hue\"\n\
             image_size = 16\n",
        )
        .expect("parses");
        match RunConfig::from_value(ssl, &[]) {
            Ok(RunConfig::Ssl(ssl)) => {
                assert_eq!(ssl.dataset.name(), "shapes3d");
                assert_eq!(ssl.labels.label_factor, "floor_hue");
                assert_eq!(ssl.labels.image_size, 16);
            }
            Ok(RunConfig::Vae(_)) => panic!("not an SSL config"),
            // The predictor table of this sketch may be incomplete; the dataset part is what
            // is under test, so only a dataset error fails.
            Err(e) => assert!(!e.to_string().contains("dataset"), "{e}"),
        }
    }

    /// An α-TCVAE `capacity_warmup_steps` of earlier releases (in a file, a run folder or an
    /// override) is the linear schedule it meant; the staircase is the default otherwise.
    #[test]
    fn legacy_capacity_warmup_steps_is_the_linear_schedule() {
        use infobound_models::objectives::{AlphaTcvaeConfig, CapacitySchedule};
        let alpha = |config: RunConfig| match config {
            RunConfig::Vae(vae) => match vae.objective {
                ObjectiveConfig::AlphaTcvae(c) => c,
                other => panic!("not α-TCVAE: {other:?}"),
            },
            RunConfig::Ssl(_) => panic!("not a VAE config"),
        };
        let text = "[objective]\nkind = \"alpha_tcvae\"\ncapacity_warmup_steps = 560\n";
        let loaded = alpha(RunConfig::from_value(parse_toml_value(text).unwrap(), &[]).unwrap());
        assert_eq!(
            loaded.capacity_schedule,
            CapacitySchedule::Linear { warmup_steps: 560 }
        );
        let fresh = "[objective]\nkind = \"alpha_tcvae\"\n";
        let overridden = alpha(
            RunConfig::from_value(
                parse_toml_value(fresh).unwrap(),
                &["objective.capacity_warmup_steps=7".into()],
            )
            .unwrap(),
        );
        assert_eq!(
            overridden.capacity_schedule,
            CapacitySchedule::Linear { warmup_steps: 7 }
        );
        let default = alpha(RunConfig::from_value(parse_toml_value(fresh).unwrap(), &[]).unwrap());
        assert_eq!(
            default.capacity_schedule,
            AlphaTcvaeConfig::default().capacity_schedule
        );
    }

    #[test]
    fn every_registered_objective_kind_has_a_family_and_unknown_ones_are_errors() {
        for kind in ObjectiveConfig::ACCEPTED_KINDS {
            assert_eq!(Family::of_objective_kind(kind).unwrap(), Family::Vae);
        }
        for kind in SslObjectiveConfig::ACCEPTED_KINDS {
            assert_eq!(Family::of_objective_kind(kind).unwrap(), Family::Ssl);
        }
        let error = Family::of_objective_kind("simclr").unwrap_err().to_string();
        assert!(
            error.contains("simclr") && error.contains("mveb"),
            "{error}"
        );
    }
}
