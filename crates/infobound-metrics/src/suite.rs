//! Named metrics over in-memory arrays: the logic behind `infobound metrics`, kept here so it is
//! tested with the metrics themselves. A metric is picked by [`MetricName`], the inputs it needs
//! are described by [`MetricInput`], and [`run_suite`] computes a list of them into one
//! serialisable [`SuiteReport`].

use std::fmt;
use std::str::FromStr;

use infobound_data::FactorMatrix;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::{
    CodeMatrix, CollapseConfig, CollapseDiagnostics, DciConfig, DciLassoConfig, DciLassoResult,
    DciResult, ExplicitnessConfig, ExplicitnessScore, FrechetDistance, MetricsError, MigConfig,
    MigResult, ModularityConfig, ModularityResult, SapConfig, SapResult, SncResult, VendiConfig,
    VendiScore, collapse_diagnostics, dci, dci_lasso, explicitness, frechet_distance, mig_discrete,
    modularity, sap_continuous, sap_discrete, snc, vendi_score,
};

/// A metric the suite can compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricName {
    /// Discrete MIG ([`crate::mig_discrete`]).
    Mig,
    /// Continuous-code SAP ([`crate::sap_continuous`]).
    Sap,
    /// SAP with linear-SVM classifiers ([`crate::sap_discrete`]).
    SapDiscrete,
    /// DCI with gradient-boosted trees ([`crate::dci`]).
    Dci,
    /// DCI with Lasso regressions ([`crate::dci_lasso`]).
    DciLasso,
    /// Modularity ([`crate::modularity`]).
    Modularity,
    /// Explicitness ([`crate::explicitness`]).
    Explicitness,
    /// Single-neuron classification ([`crate::snc`]).
    Snc,
    /// Vendi score of a feature set ([`crate::vendi_score`]).
    Vendi,
    /// Collapse diagnostics of a feature set ([`crate::collapse_diagnostics`]).
    Collapse,
    /// Fréchet distance between two feature sets ([`crate::frechet_distance`]).
    Fid,
}

/// What a metric is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricInput {
    /// Codes with factor labels (optionally a separate test split).
    CodesAndFactors,
    /// One feature matrix.
    Features,
    /// Two feature matrices.
    FeaturePair,
}

impl MetricName {
    /// Every metric, in the order the suite reports them.
    pub const ALL: [Self; 11] = [
        Self::Mig,
        Self::Sap,
        Self::SapDiscrete,
        Self::Dci,
        Self::DciLasso,
        Self::Modularity,
        Self::Explicitness,
        Self::Snc,
        Self::Vendi,
        Self::Collapse,
        Self::Fid,
    ];

    /// The name used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mig => "mig",
            Self::Sap => "sap",
            Self::SapDiscrete => "sap_discrete",
            Self::Dci => "dci",
            Self::DciLasso => "dci_lasso",
            Self::Modularity => "modularity",
            Self::Explicitness => "explicitness",
            Self::Snc => "snc",
            Self::Vendi => "vendi",
            Self::Collapse => "collapse",
            Self::Fid => "fid",
        }
    }

    /// The inputs this metric needs.
    pub fn input(self) -> MetricInput {
        match self {
            Self::Vendi | Self::Collapse => MetricInput::Features,
            Self::Fid => MetricInput::FeaturePair,
            _ => MetricInput::CodesAndFactors,
        }
    }

    /// Whether the metric uses a train/test split (the others use the training codes only).
    pub fn uses_test_split(self) -> bool {
        matches!(
            self,
            Self::SapDiscrete | Self::Dci | Self::DciLasso | Self::Explicitness | Self::Snc
        )
    }
}

impl fmt::Display for MetricName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MetricName {
    type Err = MetricsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace('-', "_");
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == wanted)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|m| m.as_str()).collect();
                MetricsError::InvalidParameter(format!(
                    "unknown metric `{s}` (available: {})",
                    names.join(", ")
                ))
            })
    }
}

/// Parses a comma-separated list of metric names, dropping repeats and keeping the first order.
pub fn parse_metric_list(list: &str) -> Result<Vec<MetricName>, MetricsError> {
    let mut metrics = Vec::new();
    for part in list.split(',').filter(|p| !p.trim().is_empty()) {
        let metric: MetricName = part.parse()?;
        if !metrics.contains(&metric) {
            metrics.push(metric);
        }
    }
    if metrics.is_empty() {
        return Err(MetricsError::InvalidParameter("no metric named".into()));
    }
    Ok(metrics)
}

/// One metric's result, tagged with its name when serialised.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "metric", rename_all = "snake_case")]
pub enum MetricReport {
    /// [`MetricName::Mig`].
    Mig(MigResult),
    /// [`MetricName::Sap`].
    Sap(SapResult),
    /// [`MetricName::SapDiscrete`].
    SapDiscrete(SapResult),
    /// [`MetricName::Dci`].
    Dci(DciResult),
    /// [`MetricName::DciLasso`].
    DciLasso(DciLassoResult),
    /// [`MetricName::Modularity`].
    Modularity(ModularityResult),
    /// [`MetricName::Explicitness`].
    Explicitness(ExplicitnessScore),
    /// [`MetricName::Snc`].
    Snc(SncResult),
    /// [`MetricName::Vendi`].
    Vendi(VendiScore),
    /// [`MetricName::Collapse`].
    Collapse(CollapseDiagnostics),
    /// [`MetricName::Fid`].
    Fid(FrechetDistance),
}

impl MetricReport {
    /// The headline numbers, `(label, value)`, for a one-line-per-number table.
    pub fn headline(&self) -> Vec<(String, f64)> {
        let rows: Vec<(&str, f64)> = match self {
            Self::Mig(r) => vec![("mig", r.score)],
            Self::Sap(r) => vec![("sap", r.score)],
            Self::SapDiscrete(r) => vec![("sap_discrete", r.score)],
            Self::Dci(r) => vec![
                ("dci.disentanglement", r.disentanglement),
                ("dci.completeness", r.completeness),
                ("dci.informativeness_train", r.informativeness_train),
                ("dci.informativeness_test", r.informativeness_test),
            ],
            Self::DciLasso(r) => vec![
                ("dci_lasso.disentanglement", r.disentanglement),
                ("dci_lasso.completeness", r.completeness),
                ("dci_lasso.informativeness_test", r.informativeness_test),
            ],
            Self::Modularity(r) => vec![("modularity", r.score)],
            Self::Explicitness(r) => vec![
                ("explicitness.train", r.train_score),
                ("explicitness.test", r.test_score),
            ],
            Self::Snc(r) => vec![("snc.train", r.train_score), ("snc.test", r.score)],
            Self::Vendi(r) => vec![("vendi", r.score)],
            Self::Collapse(r) => {
                let mut rows = vec![
                    ("collapse.effective_rank", r.effective_rank),
                    ("collapse.uniformity", r.uniformity),
                ];
                rows.extend(r.alignment.map(|a| ("collapse.alignment", a)));
                rows
            }
            Self::Fid(r) => vec![("fid", r.score)],
        };
        rows.into_iter().map(|(l, v)| (l.to_string(), v)).collect()
    }
}

/// The arrays a suite run may use; each metric takes what its [`MetricInput`] names.
#[derive(Debug, Clone, Copy, Default)]
pub struct SuiteInputs<'a> {
    /// Codes, one row per sample.
    pub codes: Option<&'a CodeMatrix>,
    /// Factor labels of `codes`.
    pub factors: Option<&'a FactorMatrix>,
    /// Optional held-out codes; without them, metrics that need a test split draw one.
    pub test_codes: Option<&'a CodeMatrix>,
    /// Factor labels of `test_codes`.
    pub test_factors: Option<&'a FactorMatrix>,
    /// Features for [`MetricInput::Features`] metrics.
    pub features: Option<&'a CodeMatrix>,
    /// First feature set for [`MetricInput::FeaturePair`] metrics.
    pub features_a: Option<&'a CodeMatrix>,
    /// Second feature set for [`MetricInput::FeaturePair`] metrics.
    pub features_b: Option<&'a CodeMatrix>,
}

/// How the train/test split of a suite run was obtained.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SplitInfo {
    /// `given` (a test set was supplied) or `random` (the codes were shuffled with the seed and
    /// split 2 : 1, the disentanglement_lib 10,000 / 5,000 ratio).
    pub kind: String,
    /// Training rows.
    pub num_train: usize,
    /// Test rows.
    pub num_test: usize,
}

/// Everything a suite run computed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SuiteReport {
    /// Seed of every random choice in the run.
    pub seed: u64,
    /// The split used by split metrics, if any ran.
    pub split: Option<SplitInfo>,
    /// One result per requested metric, in request order.
    pub metrics: Vec<MetricReport>,
}

/// Fails unless `factors` pairs with `codes`, has n ≥ 2 rows and every factor takes ≥ 2 values.
fn validate_codes(
    codes: &CodeMatrix,
    factors: &FactorMatrix,
    what: &str,
) -> Result<(), MetricsError> {
    if codes.num_samples() != factors.len() {
        return Err(MetricsError::ShapeMismatch(format!(
            "{what}: {} code rows but {} factor rows",
            codes.num_samples(),
            factors.len()
        )));
    }
    if codes.num_samples() < 2 {
        return Err(MetricsError::InvalidInput(format!(
            "{what}: need at least 2 samples, got {}",
            codes.num_samples()
        )));
    }
    for k in 0..factors.num_factors() {
        let column = factors.column(k);
        if column.iter().all(|&v| v == column[0]) {
            return Err(MetricsError::InvalidInput(format!(
                "{what}: factor {k} takes a single value ({}), so no metric can score it",
                column[0]
            )));
        }
    }
    Ok(())
}

fn take_rows(
    codes: &CodeMatrix,
    factors: &FactorMatrix,
    rows: &[usize],
) -> Result<(CodeMatrix, FactorMatrix), MetricsError> {
    let c: Vec<f64> = rows
        .iter()
        .flat_map(|&i| codes.row(i).iter().copied())
        .collect();
    let f: Vec<usize> = rows
        .iter()
        .flat_map(|&i| factors.row(i).iter().copied())
        .collect();
    Ok((
        CodeMatrix::new(codes.num_codes(), c)?,
        FactorMatrix::new(factors.num_factors(), f)?,
    ))
}

fn missing(metric: MetricName, what: &str) -> MetricsError {
    MetricsError::InvalidInput(format!("metric `{metric}` needs {what}"))
}

/// Computes `metrics` on `inputs` with the default configuration of each metric. All randomness
/// (the train/test split when no test set is given) comes from
/// `seed`, so a run is reproducible.
pub fn run_suite(
    metrics: &[MetricName],
    inputs: &SuiteInputs<'_>,
    seed: u64,
) -> Result<SuiteReport, MetricsError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let code_pair = match (inputs.codes, inputs.factors) {
        (Some(c), Some(f)) => {
            validate_codes(c, f, "codes")?;
            Some((c, f))
        }
        _ => None,
    };
    let needs_split = metrics.iter().any(|m| m.uses_test_split());
    let mut split = None;
    let mut drawn = None;
    if needs_split && let Some((codes, factors)) = code_pair {
        match (inputs.test_codes, inputs.test_factors) {
            (Some(tc), Some(tf)) => {
                if tc.num_codes() != codes.num_codes() || tf.num_factors() != factors.num_factors()
                {
                    return Err(MetricsError::ShapeMismatch(
                        "test codes/factors differ in width from the training ones".into(),
                    ));
                }
                validate_codes(tc, tf, "test codes")?;
                split = Some(SplitInfo {
                    kind: "given".into(),
                    num_train: codes.num_samples(),
                    num_test: tc.num_samples(),
                });
            }
            (None, None) => {
                let n = codes.num_samples();
                let mut order: Vec<usize> = (0..n).collect();
                order.shuffle(&mut rng);
                let num_train = (2 * n).div_ceil(3);
                let train = take_rows(codes, factors, &order[..num_train])?;
                let test = take_rows(codes, factors, &order[num_train..])?;
                validate_codes(&train.0, &train.1, "random training split")?;
                split = Some(SplitInfo {
                    kind: "random".into(),
                    num_train,
                    num_test: n - num_train,
                });
                drawn = Some((train, test));
            }
            _ => {
                return Err(MetricsError::InvalidInput(
                    "test codes and test factors must be given together".into(),
                ));
            }
        }
    }
    let mut reports = Vec::with_capacity(metrics.len());
    for &metric in metrics {
        let report = match metric.input() {
            MetricInput::CodesAndFactors => {
                let (codes, factors) =
                    code_pair.ok_or_else(|| missing(metric, "codes and factors"))?;
                let (train_c, train_f, test_c, test_f) = match &drawn {
                    Some(((trc, trf), (tec, tef))) => (trc, trf, tec, tef),
                    None => (
                        codes,
                        factors,
                        inputs.test_codes.unwrap_or(codes),
                        inputs.test_factors.unwrap_or(factors),
                    ),
                };
                match metric {
                    MetricName::Mig => {
                        MetricReport::Mig(mig_discrete(codes, factors, &MigConfig::default())?)
                    }
                    MetricName::Sap => {
                        MetricReport::Sap(sap_continuous(codes, factors, &SapConfig::default())?)
                    }
                    MetricName::SapDiscrete => MetricReport::SapDiscrete(sap_discrete(
                        train_c,
                        train_f,
                        test_c,
                        test_f,
                        &SapConfig::default(),
                    )?),
                    MetricName::Dci => MetricReport::Dci(dci(
                        train_c,
                        train_f,
                        test_c,
                        test_f,
                        &DciConfig::default(),
                    )?),
                    MetricName::DciLasso => MetricReport::DciLasso(dci_lasso(
                        train_c,
                        train_f,
                        test_c,
                        test_f,
                        &DciLassoConfig::default(),
                    )?),
                    MetricName::Snc => MetricReport::Snc(snc(train_c, train_f, test_c, test_f)?),
                    MetricName::Modularity => MetricReport::Modularity(modularity(
                        codes,
                        factors,
                        &ModularityConfig::default(),
                    )?),
                    _ => MetricReport::Explicitness(explicitness(
                        train_c,
                        train_f,
                        test_c,
                        test_f,
                        &ExplicitnessConfig::default(),
                    )?),
                }
            }
            MetricInput::Features => {
                let features = inputs.features.ok_or_else(|| missing(metric, "features"))?;
                if metric == MetricName::Vendi {
                    MetricReport::Vendi(vendi_score(features, &VendiConfig::default())?)
                } else {
                    MetricReport::Collapse(collapse_diagnostics(
                        features,
                        None,
                        &CollapseConfig::default(),
                    )?)
                }
            }
            MetricInput::FeaturePair => {
                let (a, b) = inputs
                    .features_a
                    .zip(inputs.features_b)
                    .ok_or_else(|| missing(metric, "two feature sets"))?;
                MetricReport::Fid(frechet_distance(a, b)?)
            }
        };
        reports.push(report);
    }
    Ok(SuiteReport {
        seed,
        split,
        metrics: reports,
    })
}
