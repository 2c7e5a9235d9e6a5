//! `infobound metrics`: scores codes, features or feature pairs stored as `.npy` files with the
//! metrics of `infobound-metrics`, prints a table and optionally writes the full results as JSON.
//!
//! ```text
//! infobound metrics --codes codes.npy --factors factors.npy --metrics mig,sap,dci --json out.json
//! infobound metrics --features x.npy --metrics vendi
//! infobound metrics --features-a a.npy --features-b b.npy --metrics fid
//! ```

use std::path::{Path, PathBuf};

use infobound_metrics::{
    CodeMatrix, MetricInput, NpyError, SuiteInputs, parse_metric_list, read_codes_npy,
    read_factors_npy, run_suite, write_atomically,
};

use crate::error::CliError;

/// Metrics run on codes when `--metrics` is not given.
const DEFAULT_CODE_METRICS: &str = "mig,sap,dci,modularity,explicitness";

/// Arguments of `infobound metrics`.
#[derive(Debug, clap::Args)]
pub struct MetricsArgs {
    /// Codes: float32/float64 `.npy` array of shape [n, d].
    #[arg(long, requires = "factors")]
    pub codes: Option<PathBuf>,
    /// Factor labels of `--codes`: non-negative integer `.npy` array of shape [n, f].
    #[arg(long, requires = "codes")]
    pub factors: Option<PathBuf>,
    /// Held-out codes for metrics with a train/test split (otherwise a seeded 2:1 split is drawn).
    #[arg(long, requires_all = ["test_factors", "codes"])]
    pub test_codes: Option<PathBuf>,
    /// Factor labels of `--test-codes`.
    #[arg(long, requires = "test_codes")]
    pub test_factors: Option<PathBuf>,
    /// Features for `vendi` and `collapse`: float `.npy` array [n, d].
    #[arg(long)]
    pub features: Option<PathBuf>,
    /// First feature set for `fid`.
    #[arg(long, requires = "features_b")]
    pub features_a: Option<PathBuf>,
    /// Second feature set for `fid`.
    #[arg(long, requires = "features_a")]
    pub features_b: Option<PathBuf>,
    /// Comma-separated metrics: mig, sap, sap_discrete, dci, dci_lasso, modularity, explicitness,
    /// snc, vendi, collapse, fid. Default: the code metrics with `--codes`, else vendi, else fid.
    #[arg(long)]
    pub metrics: Option<String>,
    /// Seed of the random train/test split drawn when no test set is given.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write all results as JSON to this file (atomically).
    #[arg(long)]
    pub json: Option<PathBuf>,
}

fn npy_error(path: &Path, error: NpyError) -> CliError {
    match error {
        NpyError::Io { path, source } => CliError::Io { path, source },
        other => CliError::Usage(format!("{}: {other}", path.display())),
    }
}

fn load_codes(path: Option<&PathBuf>) -> Result<Option<CodeMatrix>, CliError> {
    path.map(|p| read_codes_npy(p).map_err(|e| npy_error(p, e)))
        .transpose()
}

/// Runs `infobound metrics`.
pub fn run(args: MetricsArgs) -> Result<(), CliError> {
    let list = match (&args.metrics, &args.codes, &args.features) {
        (Some(list), _, _) => list.clone(),
        (None, Some(_), _) => DEFAULT_CODE_METRICS.into(),
        (None, None, Some(_)) => "vendi".into(),
        (None, None, None) if args.features_a.is_some() => "fid".into(),
        _ => {
            return Err(CliError::Usage(
                "give --codes and --factors, --features, or --features-a and --features-b".into(),
            ));
        }
    };
    let metrics = parse_metric_list(&list).map_err(|e| CliError::Usage(e.to_string()))?;
    for metric in &metrics {
        let (present, flags) = match metric.input() {
            MetricInput::CodesAndFactors => (args.codes.is_some(), "--codes and --factors"),
            MetricInput::Features => (args.features.is_some(), "--features"),
            MetricInput::FeaturePair => {
                (args.features_a.is_some(), "--features-a and --features-b")
            }
        };
        if !present {
            return Err(CliError::Usage(format!("metric `{metric}` needs {flags}")));
        }
    }
    let codes = load_codes(args.codes.as_ref())?;
    let test_codes = load_codes(args.test_codes.as_ref())?;
    let features = load_codes(args.features.as_ref())?;
    let features_a = load_codes(args.features_a.as_ref())?;
    let features_b = load_codes(args.features_b.as_ref())?;
    let load_factors = |path: Option<&PathBuf>| {
        path.map(|p| read_factors_npy(p).map_err(|e| npy_error(p, e)))
            .transpose()
    };
    let factors = load_factors(args.factors.as_ref())?;
    let test_factors = load_factors(args.test_factors.as_ref())?;
    let inputs = SuiteInputs {
        codes: codes.as_ref(),
        factors: factors.as_ref(),
        test_codes: test_codes.as_ref(),
        test_factors: test_factors.as_ref(),
        features: features.as_ref(),
        features_a: features_a.as_ref(),
        features_b: features_b.as_ref(),
    };
    let report = run_suite(&metrics, &inputs, args.seed)?;
    if let Some(split) = &report.split {
        println!(
            "split: {} ({} train / {} test, seed {})",
            split.kind, split.num_train, split.num_test, report.seed
        );
    }
    for result in &report.metrics {
        for (label, value) in result.headline() {
            println!("{label:<28} {value:>10.4}");
        }
    }
    if let Some(path) = &args.json {
        let json = serde_json::to_vec_pretty(&report).map_err(|e| CliError::Io {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        write_atomically(path, &json).map_err(|e| npy_error(path, e))?;
    }
    Ok(())
}
