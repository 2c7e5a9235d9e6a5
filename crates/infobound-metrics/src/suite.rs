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
use serde::{Serialize, Serializer};

use crate::{CodeMatrix, MetricsError};

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

/// The arrays a metric runs on, as [`run_suite`] prepares them.
#[derive(Debug, Clone, Copy)]
pub enum MetricData<'a> {
    /// Codes and factors. Metrics with [`MetricSpec::uses_test_split`] get the training and
    /// test splits; the others get every row as `train_*` (and the same rows as `test_*`).
    CodesAndFactors {
        /// Training codes.
        train_codes: &'a CodeMatrix,
        /// Training factors.
        train_factors: &'a FactorMatrix,
        /// Test codes.
        test_codes: &'a CodeMatrix,
        /// Test factors.
        test_factors: &'a FactorMatrix,
    },
    /// One feature matrix.
    Features(&'a CodeMatrix),
    /// Two feature matrices.
    FeaturePair(&'a CodeMatrix, &'a CodeMatrix),
}

/// One registered metric: its name, what it needs and how it runs with its default
/// configuration. Every metric module defines its spec next to the metric; [`REGISTRY`] lists
/// them, one line each.
#[derive(Debug, Clone, Copy)]
pub struct MetricSpec {
    /// Name on the command line and in reports (unique, lowercase, `_`-separated).
    pub name: &'static str,
    /// What the metric is computed from.
    pub input: MetricInput,
    /// Whether it scores a held-out split (the others use every row).
    pub uses_test_split: bool,
    /// Runs the metric with its default configuration. Errors when `data` is not of the kind
    /// `input` names.
    pub run: fn(&MetricData<'_>) -> Result<MetricReport, MetricsError>,
}

impl MetricSpec {
    /// A [`MetricsError`] for `data` of the wrong kind.
    pub fn wrong_input(&self) -> MetricsError {
        MetricsError::InvalidInput(format!(
            "metric `{}` needs {}",
            self.name,
            match self.input {
                MetricInput::CodesAndFactors => "codes and factors",
                MetricInput::Features => "features",
                MetricInput::FeaturePair => "two feature sets",
            }
        ))
    }

    /// The codes and factors of `data`: (train codes, train factors, test codes, test
    /// factors).
    ///
    /// # Errors
    /// [`Self::wrong_input`] unless `data` is [`MetricData::CodesAndFactors`].
    pub fn codes_and_factors<'a>(&self, data: &MetricData<'a>) -> Result<Splits<'a>, MetricsError> {
        match *data {
            MetricData::CodesAndFactors {
                train_codes,
                train_factors,
                test_codes,
                test_factors,
            } => Ok((train_codes, train_factors, test_codes, test_factors)),
            _ => Err(self.wrong_input()),
        }
    }

    /// The feature matrix of `data`.
    ///
    /// # Errors
    /// [`Self::wrong_input`] unless `data` is [`MetricData::Features`].
    pub fn features<'a>(&self, data: &MetricData<'a>) -> Result<&'a CodeMatrix, MetricsError> {
        match *data {
            MetricData::Features(features) => Ok(features),
            _ => Err(self.wrong_input()),
        }
    }

    /// The two feature matrices of `data`.
    ///
    /// # Errors
    /// [`Self::wrong_input`] unless `data` is [`MetricData::FeaturePair`].
    pub fn feature_pair<'a>(
        &self,
        data: &MetricData<'a>,
    ) -> Result<(&'a CodeMatrix, &'a CodeMatrix), MetricsError> {
        match *data {
            MetricData::FeaturePair(first, second) => Ok((first, second)),
            _ => Err(self.wrong_input()),
        }
    }
}

/// Training and test codes and factors: (train codes, train factors, test codes, test factors).
pub type Splits<'a> = (
    &'a CodeMatrix,
    &'a FactorMatrix,
    &'a CodeMatrix,
    &'a FactorMatrix,
);

/// Every metric the suite computes, in the order it reports them. Adding a metric: write its
/// module with a `MetricSpec` const, add one line here.
pub static REGISTRY: &[MetricSpec] = &[
    crate::mig::MIG_SPEC,
    crate::sap::SAP_SPEC,
    crate::sap::SAP_DISCRETE_SPEC,
    crate::dci::DCI_SPEC,
    crate::dci::DCI_HISTOGRAM_SPEC,
    crate::dci::DCI_LASSO_SPEC,
    crate::modularity::MODULARITY_SPEC,
    crate::explicitness::EXPLICITNESS_SPEC,
    crate::snc::SNC_SPEC,
    crate::vendi::VENDI_SPEC,
    crate::collapse::COLLAPSE_SPEC,
    crate::fid::FID_SPEC,
];

/// A metric of [`REGISTRY`], by name.
#[derive(Debug, Clone, Copy)]
pub struct MetricName(&'static MetricSpec);

impl MetricName {
    /// Every registered metric, in registry order.
    pub fn all() -> impl Iterator<Item = Self> {
        REGISTRY.iter().map(Self)
    }

    /// The name used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        self.0.name
    }

    /// The inputs this metric needs.
    pub fn input(self) -> MetricInput {
        self.0.input
    }

    /// Whether the metric uses a train/test split (the others use the training codes only).
    pub fn uses_test_split(self) -> bool {
        self.0.uses_test_split
    }

    /// The registry entry.
    pub fn spec(self) -> &'static MetricSpec {
        self.0
    }
}

impl PartialEq for MetricName {
    fn eq(&self, other: &Self) -> bool {
        self.0.name == other.0.name
    }
}

impl Eq for MetricName {}

impl std::hash::Hash for MetricName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.name.hash(state);
    }
}

impl Serialize for MetricName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.name)
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
        Self::all().find(|m| m.as_str() == wanted).ok_or_else(|| {
            let names: Vec<&str> = Self::all().map(|m| m.as_str()).collect();
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

/// One metric's result: its name, headline numbers and full result. Serialised as the result's
/// fields with a `metric` field holding the name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricReport {
    /// The metric's registry name.
    pub metric: &'static str,
    /// `(label, value)` pairs worth printing, e.g. `("dci.disentanglement", 0.8)`.
    #[serde(skip)]
    pub headline: Vec<(String, f64)>,
    /// The metric's full result (its `*Result` / `*Score` type, serialised).
    #[serde(flatten)]
    pub result: serde_json::Map<String, serde_json::Value>,
}

impl MetricReport {
    /// Wraps `result` of metric `metric` with its headline numbers.
    pub fn new(
        metric: &'static str,
        headline: &[(&str, f64)],
        result: &impl Serialize,
    ) -> Result<Self, MetricsError> {
        let result = match serde_json::to_value(result) {
            Ok(serde_json::Value::Object(map)) => map,
            Ok(other) => {
                return Err(MetricsError::InvalidInput(format!(
                    "metric `{metric}` produced a non-object result {other}"
                )));
            }
            Err(e) => {
                return Err(MetricsError::InvalidInput(format!(
                    "metric `{metric}`: result not serialisable: {e}"
                )));
            }
        };
        Ok(Self {
            metric,
            headline: headline
                .iter()
                .map(|&(label, value)| (label.to_owned(), value))
                .collect(),
            result,
        })
    }

    /// The `(label, value)` pairs worth printing.
    pub fn headline(&self) -> Vec<(String, f64)> {
        self.headline.clone()
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

/// Fails unless `factors` pairs with `codes`, has n ≥ 2 rows and every factor takes ≥ 2 values:
/// the check [`run_suite`] (and so `infobound metrics`) makes before any code metric; `what`
/// names the inputs in the message (e.g. `codes`, `test codes`).
pub fn validate_codes(
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
        let data = match metric.input() {
            MetricInput::CodesAndFactors => {
                let (codes, factors) =
                    code_pair.ok_or_else(|| missing(metric, "codes and factors"))?;
                if metric.uses_test_split() {
                    match &drawn {
                        Some(((trc, trf), (tec, tef))) => MetricData::CodesAndFactors {
                            train_codes: trc,
                            train_factors: trf,
                            test_codes: tec,
                            test_factors: tef,
                        },
                        None => MetricData::CodesAndFactors {
                            train_codes: codes,
                            train_factors: factors,
                            test_codes: inputs.test_codes.unwrap_or(codes),
                            test_factors: inputs.test_factors.unwrap_or(factors),
                        },
                    }
                } else {
                    MetricData::CodesAndFactors {
                        train_codes: codes,
                        train_factors: factors,
                        test_codes: codes,
                        test_factors: factors,
                    }
                }
            }
            MetricInput::Features => {
                MetricData::Features(inputs.features.ok_or_else(|| missing(metric, "features"))?)
            }
            MetricInput::FeaturePair => {
                let (a, b) = inputs
                    .features_a
                    .zip(inputs.features_b)
                    .ok_or_else(|| missing(metric, "two feature sets"))?;
                MetricData::FeaturePair(a, b)
            }
        };
        reports.push((metric.spec().run)(&data)?);
    }
    Ok(SuiteReport {
        seed,
        split,
        metrics: reports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// 120 samples, factors of sizes 3 and 2, each read by one noisy code, plus a noise code.
    fn synthetic() -> (CodeMatrix, FactorMatrix) {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let factors: Vec<usize> = (0..120).flat_map(|i| [i % 3, (i / 3) % 2]).collect();
        let codes: Vec<f64> = factors
            .chunks_exact(2)
            .flat_map(|f| {
                [
                    f[0] as f64 + rng.random_range(-0.3..0.3),
                    f[1] as f64 + rng.random_range(-0.3..0.3),
                    rng.random_range(-1.0..1.0),
                ]
            })
            .collect();
        (
            CodeMatrix::new(3, codes).expect("finite codes"),
            FactorMatrix::new(2, factors).expect("factors"),
        )
    }

    /// Every registered metric refuses data of another kind than its `input`, naming itself
    /// and what it needs, instead of running on it.
    #[test]
    fn every_registered_metric_refuses_the_wrong_kind_of_data() {
        let (codes, factors) = synthetic();
        let kinds = [
            (
                MetricInput::CodesAndFactors,
                MetricData::CodesAndFactors {
                    train_codes: &codes,
                    train_factors: &factors,
                    test_codes: &codes,
                    test_factors: &factors,
                },
            ),
            (MetricInput::Features, MetricData::Features(&codes)),
            (
                MetricInput::FeaturePair,
                MetricData::FeaturePair(&codes, &codes),
            ),
        ];
        for spec in REGISTRY {
            for (kind, data) in &kinds {
                if *kind == spec.input {
                    continue;
                }
                let error = (spec.run)(data).expect_err(spec.name);
                assert_eq!(error.to_string(), spec.wrong_input().to_string());
                assert!(
                    error
                        .to_string()
                        .contains(&format!("`{}` needs", spec.name)),
                    "{error}"
                );
            }
        }
    }

    #[test]
    fn every_registered_metric_resolves_runs_and_is_named_once() {
        let (codes, factors) = synthetic();
        let inputs = SuiteInputs {
            codes: Some(&codes),
            factors: Some(&factors),
            features: Some(&codes),
            features_a: Some(&codes),
            features_b: Some(&codes),
            ..SuiteInputs::default()
        };
        let mut seen = std::collections::HashSet::new();
        for spec in REGISTRY {
            assert!(seen.insert(spec.name), "`{}` registered twice", spec.name);
            let name: MetricName = spec.name.parse().expect("registered name resolves");
            assert_eq!(name.spec().name, spec.name);
            let report = run_suite(&[name], &inputs, 1)
                .unwrap_or_else(|e| panic!("`{}` failed: {e}", spec.name));
            let result = &report.metrics[0];
            assert_eq!(result.metric, spec.name);
            assert!(
                !result.headline().is_empty(),
                "`{}` has no headline",
                spec.name
            );
            for (label, value) in result.headline() {
                assert!(value.is_finite(), "`{}`: {label} = {value}", spec.name);
            }
            assert_eq!(
                report.split.is_some(),
                spec.uses_test_split,
                "{}",
                spec.name
            );
        }
        assert_eq!(seen.len(), MetricName::all().count());
    }
}
