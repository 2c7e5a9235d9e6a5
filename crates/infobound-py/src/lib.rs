//! `infobound._native`: the Rust half of the Python package `infobound` (the Python half, in
//! `python/infobound/`, turns any NumPy array into the `float64` / `int64` arrays taken here and
//! the JSON results given back into dicts).
//!
//! Every function takes its metric's configuration as a JSON object of the fields to change
//! (unknown fields are an error) and returns the metric's result struct serialised as JSON, so
//! Python sees exactly the fields of the Rust result (`score`, per-factor parts,
//! `metric_version`, ...). Errors of the metrics and datasets, and any panic (caught, never
//! unwound into the interpreter), become `ValueError` with the Rust message. The computation runs
//! with the GIL released; a Python `encode` callable is called with the GIL taken back.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use infobound_data::source::DatasetSource;
use infobound_data::{FactorMatrix, GroundTruthDataset, ImageBatch, dataset_by_name};
use infobound_metrics::{
    BetaVaeConfig, CodeMatrix, DciConfig, DciLassoConfig, ExplicitnessConfig, FactorVaeConfig,
    KnnConfig, LinearProbeConfig, MetricsError, MigConfig, MigContinuousConfig, ModularityConfig,
    Representation, SapConfig, VendiConfig, validate_codes,
};
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a call failed: the message of the `ValueError` it raises in Python.
struct CallError(String);

impl From<MetricsError> for CallError {
    fn from(e: MetricsError) -> Self {
        Self(e.to_string())
    }
}

impl From<infobound_data::DataError> for CallError {
    fn from(e: infobound_data::DataError) -> Self {
        Self(e.to_string())
    }
}

impl From<CallError> for PyErr {
    fn from(e: CallError) -> Self {
        PyValueError::new_err(e.0)
    }
}

/// Runs `work` with the GIL released; a panic inside becomes a [`CallError`] instead of unwinding
/// into the interpreter.
fn detached<T: Send>(
    py: Python<'_>,
    work: impl FnOnce() -> Result<T, CallError> + Send,
) -> Result<T, CallError> {
    py.detach(|| {
        catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            Err(CallError(format!("internal error (panic): {what}")))
        })
    })
}

/// The JSON of a result struct.
fn to_json(value: &impl Serialize) -> Result<String, CallError> {
    serde_json::to_string(value).map_err(|e| CallError(format!("result not serialisable: {e}")))
}

/// `T::default()` with the fields of the JSON object `changes` replaced; a field `T` does not
/// have is an error naming the fields it has.
fn config<T: Serialize + DeserializeOwned + Default>(
    changes: &str,
    type_name: &str,
) -> Result<T, CallError> {
    let bad = |e: String| CallError(format!("{type_name}: {e}"));
    let mut merged = match serde_json::to_value(T::default()) {
        Ok(serde_json::Value::Object(map)) => map,
        other => return Err(bad(format!("default is not an object: {other:?}"))),
    };
    let changes: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(changes).map_err(|e| bad(format!("config is not an object: {e}")))?;
    for (key, value) in changes {
        if !merged.contains_key(&key) {
            let known: Vec<&str> = merged.keys().map(String::as_str).collect();
            return Err(bad(format!(
                "unknown field `{key}` (fields: {})",
                known.join(", ")
            )));
        }
        merged.insert(key, value);
    }
    serde_json::from_value(serde_json::Value::Object(merged)).map_err(|e| bad(e.to_string()))
}

/// A `float64` array (any memory order) as a row-major [`CodeMatrix`].
fn codes(array: &PyReadonlyArray2<'_, f64>, what: &str) -> Result<CodeMatrix, CallError> {
    let view = array.as_array();
    if view.nrows() == 0 {
        return Err(CallError(format!(
            "{what}: empty array (shape {:?})",
            view.shape()
        )));
    }
    CodeMatrix::new(view.ncols(), view.iter().copied().collect()).map_err(|e| {
        CallError(match e {
            MetricsError::NonFinite { row, col, .. } => {
                format!("{what} contains a non-finite value at row {row}, column {col}")
            }
            other => format!("{what}: {other}"),
        })
    })
}

/// Non-negative `int64` labels as `usize`.
fn labels(values: impl Iterator<Item = i64>, what: &str) -> Result<Vec<usize>, CallError> {
    values
        .enumerate()
        .map(|(i, v)| {
            usize::try_from(v).map_err(|_| {
                CallError(format!(
                    "{what}: labels must be non-negative, found {v} at flat index {i}"
                ))
            })
        })
        .collect()
}

/// An `int64` array (any memory order) as a [`FactorMatrix`].
fn factors(array: &PyReadonlyArray2<'_, i64>, what: &str) -> Result<FactorMatrix, CallError> {
    let view = array.as_array();
    if view.nrows() == 0 || view.ncols() == 0 {
        return Err(CallError(format!(
            "{what}: empty array (shape {:?})",
            view.shape()
        )));
    }
    let values = labels(view.iter().copied(), what)?;
    Ok(FactorMatrix::new(view.ncols(), values)?)
}

/// Codes with their factors, checked as `infobound metrics` checks them before any code metric
/// (same rows, n ≥ 2, no constant factor: `infobound_metrics::validate_codes`).
fn pair(
    codes_array: &PyReadonlyArray2<'_, f64>,
    factors_array: &PyReadonlyArray2<'_, i64>,
) -> Result<(CodeMatrix, FactorMatrix), CallError> {
    let c = codes(codes_array, "codes")?;
    let f = factors(factors_array, "factors")?;
    validate_codes(&c, &f, "codes")?;
    Ok((c, f))
}

/// A one-dimensional label array.
fn label_vector(array: &PyReadonlyArray1<'_, i64>, what: &str) -> Result<Vec<usize>, CallError> {
    labels(array.as_array().iter().copied(), what)
}

/// Discrete MIG (`infobound_metrics::mig_discrete`).
#[pyfunction]
fn mig(
    py: Python<'_>,
    codes_array: PyReadonlyArray2<'_, f64>,
    factors_array: PyReadonlyArray2<'_, i64>,
    config_json: &str,
) -> PyResult<String> {
    let (c, f) = pair(&codes_array, &factors_array)?;
    let cfg: MigConfig = config(config_json, "MigConfig")?;
    Ok(detached(py, || {
        to_json(&infobound_metrics::mig_discrete(&c, &f, &cfg)?)
    })?)
}

/// MIG from Gaussian posteriors (`infobound_metrics::mig_continuous`).
#[pyfunction]
fn mig_continuous(
    py: Python<'_>,
    mu_array: PyReadonlyArray2<'_, f64>,
    logvar_array: PyReadonlyArray2<'_, f64>,
    factors_array: PyReadonlyArray2<'_, i64>,
    config_json: &str,
    seed: u64,
) -> PyResult<String> {
    let (mu, f) = pair(&mu_array, &factors_array)?;
    let logvar = codes(&logvar_array, "logvar")?;
    let cfg: MigContinuousConfig = config(config_json, "MigContinuousConfig")?;
    Ok(detached(py, || {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        to_json(&infobound_metrics::mig_continuous(
            &mu, &logvar, &f, &cfg, &mut rng,
        )?)
    })?)
}

/// Continuous SAP (`infobound_metrics::sap_continuous`).
#[pyfunction]
fn sap(
    py: Python<'_>,
    codes_array: PyReadonlyArray2<'_, f64>,
    factors_array: PyReadonlyArray2<'_, i64>,
    config_json: &str,
) -> PyResult<String> {
    let (c, f) = pair(&codes_array, &factors_array)?;
    let cfg: SapConfig = config(config_json, "SapConfig")?;
    Ok(detached(py, || {
        to_json(&infobound_metrics::sap_continuous(&c, &f, &cfg)?)
    })?)
}

/// The four arrays of a train/test metric, converted.
struct Split {
    train_codes: CodeMatrix,
    train_factors: FactorMatrix,
    test_codes: CodeMatrix,
    test_factors: FactorMatrix,
}

fn split(
    train_codes: &PyReadonlyArray2<'_, f64>,
    train_factors: &PyReadonlyArray2<'_, i64>,
    test_codes: &PyReadonlyArray2<'_, f64>,
    test_factors: &PyReadonlyArray2<'_, i64>,
) -> Result<Split, CallError> {
    let s = Split {
        train_codes: codes(train_codes, "train_codes")?,
        train_factors: factors(train_factors, "train_factors")?,
        test_codes: codes(test_codes, "test_codes")?,
        test_factors: factors(test_factors, "test_factors")?,
    };
    validate_codes(&s.train_codes, &s.train_factors, "train_codes")?;
    validate_codes(&s.test_codes, &s.test_factors, "test_codes")?;
    Ok(s)
}

/// Defines a `#[pyfunction]` over a train/test split and a config type.
macro_rules! split_metric {
    ($(#[$doc:meta])* $name:ident, $config:ty, $run:path) => {
        $(#[$doc])*
        #[pyfunction]
        fn $name(
            py: Python<'_>,
            train_codes: PyReadonlyArray2<'_, f64>,
            train_factors: PyReadonlyArray2<'_, i64>,
            test_codes: PyReadonlyArray2<'_, f64>,
            test_factors: PyReadonlyArray2<'_, i64>,
            config_json: &str,
        ) -> PyResult<String> {
            let s = split(&train_codes, &train_factors, &test_codes, &test_factors)?;
            let cfg: $config = config(config_json, stringify!($config))?;
            Ok(detached(py, || {
                to_json(&$run(
                    &s.train_codes,
                    &s.train_factors,
                    &s.test_codes,
                    &s.test_factors,
                    &cfg,
                )?)
            })?)
        }
    };
}

split_metric!(
    /// Discrete SAP with linear SVMs (`infobound_metrics::sap_discrete`).
    sap_discrete,
    SapConfig,
    infobound_metrics::sap_discrete
);
split_metric!(
    /// DCI with gradient-boosted trees (`infobound_metrics::dci`).
    dci,
    DciConfig,
    infobound_metrics::dci
);
split_metric!(
    /// DCI with Lasso importances (`infobound_metrics::dci_lasso`).
    dci_lasso,
    DciLassoConfig,
    infobound_metrics::dci_lasso
);
split_metric!(
    /// Explicitness (`infobound_metrics::explicitness`).
    explicitness,
    ExplicitnessConfig,
    infobound_metrics::explicitness
);

/// SNC (`infobound_metrics::snc`; it has no parameters on arrays).
#[pyfunction]
fn snc(
    py: Python<'_>,
    train_codes: PyReadonlyArray2<'_, f64>,
    train_factors: PyReadonlyArray2<'_, i64>,
    test_codes: PyReadonlyArray2<'_, f64>,
    test_factors: PyReadonlyArray2<'_, i64>,
) -> PyResult<String> {
    let s = split(&train_codes, &train_factors, &test_codes, &test_factors)?;
    Ok(detached(py, || {
        to_json(&infobound_metrics::snc(
            &s.train_codes,
            &s.train_factors,
            &s.test_codes,
            &s.test_factors,
        )?)
    })?)
}

/// Modularity (`infobound_metrics::modularity`).
#[pyfunction]
fn modularity(
    py: Python<'_>,
    codes_array: PyReadonlyArray2<'_, f64>,
    factors_array: PyReadonlyArray2<'_, i64>,
    config_json: &str,
) -> PyResult<String> {
    let (c, f) = pair(&codes_array, &factors_array)?;
    let cfg: ModularityConfig = config(config_json, "ModularityConfig")?;
    Ok(detached(py, || {
        to_json(&infobound_metrics::modularity(&c, &f, &cfg)?)
    })?)
}

/// Vendi score of features (`infobound_metrics::vendi_score`).
#[pyfunction]
fn vendi(
    py: Python<'_>,
    features_array: PyReadonlyArray2<'_, f64>,
    config_json: &str,
) -> PyResult<String> {
    let x = codes(&features_array, "features")?;
    let cfg: VendiConfig = config(config_json, "VendiConfig")?;
    Ok(detached(py, || {
        to_json(&infobound_metrics::vendi_score(&x, &cfg)?)
    })?)
}

/// Fréchet distance between two feature sets (`infobound_metrics::frechet_distance`).
#[pyfunction]
fn fid(
    py: Python<'_>,
    features_a: PyReadonlyArray2<'_, f64>,
    features_b: PyReadonlyArray2<'_, f64>,
) -> PyResult<String> {
    let a = codes(&features_a, "features_a")?;
    let b = codes(&features_b, "features_b")?;
    Ok(detached(py, || {
        to_json(&infobound_metrics::frechet_distance(&a, &b)?)
    })?)
}

/// Weighted k-NN accuracy (`infobound_metrics::knn_accuracy`).
#[pyfunction]
fn knn_accuracy(
    py: Python<'_>,
    bank: PyReadonlyArray2<'_, f64>,
    bank_labels: PyReadonlyArray1<'_, i64>,
    queries: PyReadonlyArray2<'_, f64>,
    query_labels: PyReadonlyArray1<'_, i64>,
    config_json: &str,
) -> PyResult<String> {
    let bank = codes(&bank, "bank")?;
    let bank_labels = label_vector(&bank_labels, "bank_labels")?;
    let queries = codes(&queries, "queries")?;
    let query_labels = label_vector(&query_labels, "query_labels")?;
    let cfg: KnnConfig = config(config_json, "KnnConfig")?;
    Ok(detached(py, || {
        to_json(&infobound_metrics::knn_accuracy(
            &bank,
            &bank_labels,
            &queries,
            &query_labels,
            cfg,
        )?)
    })?)
}

/// Logistic-regression probe (`infobound_metrics::linear_probe`).
#[pyfunction]
fn linear_probe(
    py: Python<'_>,
    train_features: PyReadonlyArray2<'_, f64>,
    train_labels: PyReadonlyArray1<'_, i64>,
    test_features: PyReadonlyArray2<'_, f64>,
    test_labels: PyReadonlyArray1<'_, i64>,
    config_json: &str,
) -> PyResult<String> {
    let train = codes(&train_features, "train_features")?;
    let train_labels = label_vector(&train_labels, "train_labels")?;
    let test = codes(&test_features, "test_features")?;
    let test_labels = label_vector(&test_labels, "test_labels")?;
    let cfg: LinearProbeConfig = config(config_json, "LinearProbeConfig")?;
    Ok(detached(py, || {
        to_json(&infobound_metrics::linear_probe(
            &train,
            &train_labels,
            &test,
            &test_labels,
            &cfg,
        )?)
    })?)
}

/// A ground-truth dataset: a procedural one (`Dataset.procedural("shapes3d")`) or a real file
/// opened through `infobound_data::source::DatasetSource`.
#[pyclass(frozen, module = "infobound._native")]
struct Dataset {
    inner: Arc<dyn GroundTruthDataset>,
}

/// `(n, H, W, C)` `uint8` pixels from NCHW `f32` in [0, 1].
fn to_nhwc_u8(images: &ImageBatch) -> (Vec<u8>, [usize; 4]) {
    let shape = images.shape();
    let (c, h, w) = (shape.channels, shape.height, shape.width);
    let mut out = Vec::with_capacity(images.pixels().len());
    for i in 0..images.len() {
        let image = images.image(i);
        for y in 0..h {
            for x in 0..w {
                for ch in 0..c {
                    let v = image[(ch * h + y) * w + x];
                    // The datasets store 8-bit pixels divided by 255, so this rounding is exact.
                    out.push((v.clamp(0.0, 1.0) * 255.0).round() as u8);
                }
            }
        }
    }
    (out, [images.len(), h, w, c])
}

fn factor_array<'py>(py: Python<'py>, factors: &FactorMatrix) -> PyResult<Bound<'py, PyAny>> {
    let values: Vec<i64> = factors.as_slice().iter().map(|&v| v as i64).collect();
    Ok(PyArray1::from_vec(py, values)
        .reshape([factors.len(), factors.num_factors()])?
        .into_any())
}

fn image_array<'py>(py: Python<'py>, images: &ImageBatch) -> PyResult<Bound<'py, PyAny>> {
    let (pixels, shape) = to_nhwc_u8(images);
    Ok(PyArray1::from_vec(py, pixels).reshape(shape)?.into_any())
}

#[pymethods]
impl Dataset {
    /// A procedural dataset by registry name (`dsprites`, `shapes3d`).
    #[staticmethod]
    fn procedural(name: &str) -> PyResult<Self> {
        let inner: Arc<dyn GroundTruthDataset> =
            Arc::from(dataset_by_name(name).map_err(CallError::from)?);
        Ok(Self { inner })
    }

    /// A dataset from a `DatasetSource` JSON object (e.g. `{"source": "dsprites_npz", "path": ...}`).
    #[staticmethod]
    fn open(py: Python<'_>, source_json: &str) -> PyResult<Self> {
        let source: DatasetSource = serde_json::from_str(source_json)
            .map_err(|e| PyValueError::new_err(format!("invalid dataset source: {e}")))?;
        let inner = detached(py, || Ok(source.open_ground_truth()?))?;
        Ok(Self { inner })
    }

    /// Registry name of the dataset.
    #[getter]
    fn name(&self) -> String {
        self.inner.name().to_owned()
    }

    /// Number of values of each factor.
    #[getter]
    fn factor_sizes(&self) -> Vec<usize> {
        self.inner.factor_space().sizes().to_vec()
    }

    /// Factor names in storage order.
    #[getter]
    fn factor_names(&self) -> Vec<String> {
        self.inner.factor_space().names().to_vec()
    }

    /// `(height, width, channels)` of one image.
    #[getter]
    fn image_shape(&self) -> (usize, usize, usize) {
        let s = self.inner.observation_shape();
        (s.height, s.width, s.channels)
    }

    /// Images of the rows of `factors` (`int64`, n × num_factors) as `uint8` n × H × W × C.
    fn render<'py>(
        &self,
        py: Python<'py>,
        factors_array: PyReadonlyArray2<'py, i64>,
        seed: u64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let f = factors(&factors_array, "factors")?;
        let inner = Arc::clone(&self.inner);
        let images = detached(py, move || {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            Ok(inner.observations_from_factors(&f, &mut rng)?)
        })?;
        image_array(py, &images)
    }

    /// `n` uniform factor rows (`int64`) and their images (`uint8` n × H × W × C).
    fn sample<'py>(
        &self,
        py: Python<'py>,
        n: usize,
        seed: u64,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        if n == 0 {
            return Err(PyValueError::new_err("sample: n must be positive"));
        }
        let inner = Arc::clone(&self.inner);
        let (f, images) = detached(py, move || {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            Ok(inner.sample(n, &mut rng)?)
        })?;
        Ok((factor_array(py, &f)?, image_array(py, &images)?))
    }
}

/// A representation that calls the Python callable `encode` on NCHW `float32` images in [0, 1]
/// (the Python side adapts layout and output type). The first exception it raises is kept in
/// `raised` and re-raised unchanged after the metric stops.
fn python_representation(
    encode: Py<PyAny>,
    raised: Arc<Mutex<Option<PyErr>>>,
) -> impl FnMut(&ImageBatch) -> Result<CodeMatrix, MetricsError> + Send {
    move |images: &ImageBatch| {
        Python::attach(|py| {
            let shape = images.shape();
            let batch = PyArray1::from_slice(py, images.pixels())
                .reshape([images.len(), shape.channels, shape.height, shape.width])
                .and_then(|a| encode.bind(py).call1((a,)))
                .and_then(|out| out.extract::<PyReadonlyArray2<'_, f64>>());
            match batch {
                Ok(array) => codes(&array, "encode output")
                    .map_err(|CallError(m)| MetricsError::Representation(m)),
                Err(e) => {
                    let message = e.to_string();
                    if let Ok(mut slot) = raised.lock() {
                        slot.get_or_insert(e);
                    }
                    Err(MetricsError::Representation(message))
                }
            }
        })
    }
}

/// Runs a sampling metric with a Python `encode` and re-raises its exception, if it raised one.
fn with_encoder<R: Serialize>(
    py: Python<'_>,
    dataset: &Dataset,
    encode: Py<PyAny>,
    seed: u64,
    run: impl FnOnce(
        &dyn GroundTruthDataset,
        &mut dyn Representation,
        &mut ChaCha8Rng,
    ) -> Result<R, MetricsError>
    + Send,
) -> PyResult<String> {
    let raised = Arc::new(Mutex::new(None));
    let mut representation = python_representation(encode, Arc::clone(&raised));
    let inner = Arc::clone(&dataset.inner);
    let result = detached(py, move || {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        to_json(&run(inner.as_ref(), &mut representation, &mut rng)?)
    });
    if let Some(e) = raised.lock().ok().and_then(|mut slot| slot.take()) {
        return Err(e);
    }
    Ok(result?)
}

/// FactorVAE score (`infobound_metrics::factor_vae_score`) of `encode` on `dataset`.
#[pyfunction]
fn factor_vae_score(
    py: Python<'_>,
    dataset: &Dataset,
    encode: Py<PyAny>,
    config_json: &str,
    seed: u64,
) -> PyResult<String> {
    let cfg: FactorVaeConfig = config(config_json, "FactorVaeConfig")?;
    with_encoder(py, dataset, encode, seed, move |d, r, rng| {
        infobound_metrics::factor_vae_score(d, r, &cfg, rng)
    })
}

/// β-VAE score (`infobound_metrics::beta_vae_score`) of `encode` on `dataset`.
#[pyfunction]
fn beta_vae_score(
    py: Python<'_>,
    dataset: &Dataset,
    encode: Py<PyAny>,
    config_json: &str,
    seed: u64,
) -> PyResult<String> {
    let cfg: BetaVaeConfig = config(config_json, "BetaVaeConfig")?;
    with_encoder(py, dataset, encode, seed, move |d, r, rng| {
        infobound_metrics::beta_vae_score(d, r, &cfg, rng)
    })
}

/// `num_points` sampled factor rows and their codes under `encode`
/// (`infobound_metrics::sample_codes`), as `(codes float64, factors int64)` arrays.
#[pyfunction]
fn sample_codes<'py>(
    py: Python<'py>,
    dataset: &Dataset,
    encode: Py<PyAny>,
    num_points: usize,
    batch_size: usize,
    seed: u64,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let raised = Arc::new(Mutex::new(None));
    let mut representation = python_representation(encode, Arc::clone(&raised));
    let inner = Arc::clone(&dataset.inner);
    let result = detached(py, move || {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Ok(infobound_metrics::sample_codes(
            inner.as_ref(),
            &mut representation,
            num_points,
            batch_size,
            &mut rng,
        )?)
    });
    if let Some(e) = raised.lock().ok().and_then(|mut slot| slot.take()) {
        return Err(e);
    }
    let (c, f) = result?;
    let codes = PyArray1::from_slice(py, c.as_slice())
        .reshape([c.num_samples(), c.num_codes()])?
        .into_any();
    Ok((codes, factor_array(py, &f)?))
}

/// The extension module `infobound._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Dataset>()?;
    m.add_function(wrap_pyfunction!(mig, m)?)?;
    m.add_function(wrap_pyfunction!(mig_continuous, m)?)?;
    m.add_function(wrap_pyfunction!(sap, m)?)?;
    m.add_function(wrap_pyfunction!(sap_discrete, m)?)?;
    m.add_function(wrap_pyfunction!(dci, m)?)?;
    m.add_function(wrap_pyfunction!(dci_lasso, m)?)?;
    m.add_function(wrap_pyfunction!(explicitness, m)?)?;
    m.add_function(wrap_pyfunction!(snc, m)?)?;
    m.add_function(wrap_pyfunction!(modularity, m)?)?;
    m.add_function(wrap_pyfunction!(vendi, m)?)?;
    m.add_function(wrap_pyfunction!(fid, m)?)?;
    m.add_function(wrap_pyfunction!(knn_accuracy, m)?)?;
    m.add_function(wrap_pyfunction!(linear_probe, m)?)?;
    m.add_function(wrap_pyfunction!(factor_vae_score, m)?)?;
    m.add_function(wrap_pyfunction!(beta_vae_score, m)?)?;
    m.add_function(wrap_pyfunction!(sample_codes, m)?)?;
    Ok(())
}
