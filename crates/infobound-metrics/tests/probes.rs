//! Logistic regression, linear probe, β-VAE score, explicitness, the `.npy` reader/writer and the
//! metric suite.

use infobound_data::{
    DataError, FactorMatrix, FactorSpace, GroundTruthDataset, ImageBatch, ObservationShape,
};
use infobound_metrics::{
    BetaVaeConfig, CodeMatrix, ExplicitnessConfig, LinearProbeConfig, LogisticRegression,
    LogisticRegressionConfig, MetricName, MetricsError, NpyError, SuiteInputs, beta_vae_score,
    codes_from_npy_bytes, codes_to_npy_bytes, explicitness, factors_from_npy_bytes,
    factors_to_npy_bytes, linear_probe, parse_metric_list, roc_auc, run_suite, write_atomically,
};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn uniform_codes(rng: &mut impl Rng, n: usize, d: usize) -> CodeMatrix {
    CodeMatrix::new(d, (0..n * d).map(|_| rng.random_range(-1.0..1.0)).collect()).unwrap()
}

/// Mean-form objective gradient, recomputed from the model's logits: the weights are read off as
/// `logits(e_j) − logits(0)`. Returns the largest absolute entry.
fn kkt_residual(model: &LogisticRegression, x: &CodeMatrix, labels: &[usize], c: f64) -> f64 {
    let d = x.num_codes();
    let k = model.classes().len();
    let probe: Vec<f64> = (0..=d)
        .flat_map(|r| (0..d).map(move |j| if r > 0 && j == r - 1 { 1.0 } else { 0.0 }))
        .collect();
    let logits = model
        .decision_function(&CodeMatrix::new(d, probe).unwrap())
        .unwrap();
    let weight = |class: usize, j: usize| logits[(j + 1) * k + class] - logits[class];
    let proba = model.predict_proba(x).unwrap();
    let n = x.num_samples() as f64;
    let fitted_rows: Vec<usize> = if k == 2 { vec![1] } else { (0..k).collect() };
    let mut worst = 0.0f64;
    for &class in &fitted_rows {
        let target = model.classes()[class];
        let mut grad = vec![0.0; d + 1];
        for (i, row) in x.rows().enumerate() {
            let residual = proba[i * k + class] - f64::from(u8::from(labels[i] == target));
            for j in 0..d {
                grad[j] += residual * row[j] / n;
            }
            grad[d] += residual / n;
        }
        for (j, g) in grad.iter_mut().take(d).enumerate() {
            *g += weight(class, j) / (c * n);
        }
        worst = grad.iter().fold(worst, |m, g| m.max(g.abs()));
    }
    worst
}

#[test]
fn logistic_regression_reaches_the_optimum_for_binary_and_multiclass() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let x = uniform_codes(&mut rng, 500, 4);
    for num_classes in [2usize, 5] {
        // Noisy labels from a linear rule, so the optimum is finite and non-trivial.
        let labels: Vec<usize> = x
            .rows()
            .map(|r| {
                let s = 2.0 * r[0] - r[1] + 0.5 * r[2] + rng.random_range(-0.7..0.7);
                ((s + 2.0) / 4.0 * num_classes as f64).clamp(0.0, num_classes as f64 - 1.0) as usize
                    * 3
            })
            .collect();
        for c in [1.0, 0.05] {
            let config = LogisticRegressionConfig {
                inverse_regularization: c,
                ..LogisticRegressionConfig::default()
            };
            let model = LogisticRegression::fit(&x, &labels, &config).unwrap();
            assert!(model.summary().converged);
            assert!(model.classes().iter().all(|c| c % 3 == 0));
            let residual = kkt_residual(&model, &x, &labels, c);
            assert!(
                residual < 1e-5,
                "K = {num_classes}, C = {c}: gradient {residual}"
            );
            let again = LogisticRegression::fit(&x, &labels, &config).unwrap();
            assert_eq!(model, again, "fits are deterministic");
        }
    }
}

#[test]
fn logistic_regression_separates_separable_classes_and_validates_input() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let x = uniform_codes(&mut rng, 300, 2);
    let labels: Vec<usize> = x
        .rows()
        .map(|r| usize::from(r[0] > 0.1) + 2 * usize::from(r[1] > 0.0))
        .collect();
    let model = LogisticRegression::fit(&x, &labels, &LogisticRegressionConfig::default()).unwrap();
    assert!(model.accuracy(&x, &labels).unwrap() > 0.95);
    let proba = model.predict_proba(&x).unwrap();
    for row in proba.chunks_exact(4) {
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
    assert!(matches!(
        LogisticRegression::fit(&x, &vec![1; 300], &LogisticRegressionConfig::default()),
        Err(MetricsError::InvalidInput(_))
    ));
    assert!(
        LogisticRegression::fit(&x, &labels[..10], &LogisticRegressionConfig::default()).is_err()
    );
    assert!(model.predict(&uniform_codes(&mut rng, 3, 5)).is_err());
}

#[test]
fn linear_probe_is_invariant_to_feature_scaling() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let train = uniform_codes(&mut rng, 400, 3);
    let test = uniform_codes(&mut rng, 200, 3);
    let label = |x: &CodeMatrix| -> Vec<usize> {
        x.rows().map(|r| usize::from(r[0] + r[2] > 0.0)).collect()
    };
    let (train_y, test_y) = (label(&train), label(&test));
    let base = linear_probe(
        &train,
        &train_y,
        &test,
        &test_y,
        &LinearProbeConfig::default(),
    )
    .unwrap();
    assert!(base.test_accuracy > 0.95, "{}", base.test_accuracy);
    let scale = |x: &CodeMatrix| {
        let v = x
            .as_slice()
            .iter()
            .enumerate()
            .map(|(i, v)| v * [1e3, 1e-3, 7.0][i % 3] + 5.0)
            .collect();
        CodeMatrix::new(3, v).unwrap()
    };
    let scaled = linear_probe(
        &scale(&train),
        &train_y,
        &scale(&test),
        &test_y,
        &LinearProbeConfig::default(),
    )
    .unwrap();
    assert!((scaled.train_accuracy - base.train_accuracy).abs() < 1e-12);
    assert!((scaled.test_accuracy - base.test_accuracy).abs() < 1e-12);
}

#[test]
fn roc_auc_matches_pair_counting() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    for _ in 0..20 {
        let n = 40;
        let scores: Vec<f64> = (0..n)
            .map(|_| f64::from(rng.random_range(0..6u8)))
            .collect();
        let positive: Vec<bool> = (0..n).map(|_| rng.random_bool(0.4)).collect();
        let mut wins = 0.0;
        let mut pairs = 0.0;
        for i in (0..n).filter(|&i| positive[i]) {
            for j in (0..n).filter(|&j| !positive[j]) {
                pairs += 1.0;
                wins += match scores[i].total_cmp(&scores[j]) {
                    std::cmp::Ordering::Greater => 1.0,
                    std::cmp::Ordering::Equal => 0.5,
                    std::cmp::Ordering::Less => 0.0,
                };
            }
        }
        match roc_auc(&scores, &positive) {
            Some(auc) => assert!((auc - wins / pairs).abs() < 1e-12),
            None => assert_eq!(pairs, 0.0),
        }
    }
    assert_eq!(roc_auc(&[1.0, 2.0], &[true, true]), None);
}

fn factor_sample(rng: &mut impl Rng, n: usize, sizes: &[usize]) -> FactorMatrix {
    let values = (0..n)
        .flat_map(|_| {
            sizes
                .iter()
                .map(|&s| rng.random_range(0..s))
                .collect::<Vec<_>>()
        })
        .collect();
    FactorMatrix::new(sizes.len(), values).unwrap()
}

#[test]
fn explicitness_is_high_for_informative_codes_and_chance_for_noise() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let sizes = [3, 4];
    let make = |rng: &mut ChaCha8Rng, n: usize, informative: bool| {
        let f = factor_sample(rng, n, &sizes);
        let codes: Vec<f64> = f
            .rows()
            .flat_map(|r| {
                let noise: [f64; 3] = [
                    rng.random_range(-1.0..1.0),
                    rng.random_range(-1.0..1.0),
                    rng.random_range(-1.0..1.0),
                ];
                if informative {
                    // One-hot-like codes: a linear boundary isolates every factor value.
                    vec![
                        r[0] as f64 + 0.1 * noise[0],
                        r[1] as f64 + 0.1 * noise[1],
                        (r[1] as f64 - 1.5).powi(2) + 0.1 * noise[2],
                    ]
                } else {
                    noise.to_vec()
                }
            })
            .collect();
        (CodeMatrix::new(3, codes).unwrap(), f)
    };
    let (train_c, train_f) = make(&mut rng, 400, true);
    let (test_c, test_f) = make(&mut rng, 200, true);
    let good = explicitness(
        &train_c,
        &train_f,
        &test_c,
        &test_f,
        &ExplicitnessConfig::default(),
    )
    .unwrap();
    assert!(good.test_score > 0.9, "{good:?}");
    assert_eq!(good.per_factor_test.len(), 2);
    let (train_c, train_f) = make(&mut rng, 400, false);
    let (test_c, test_f) = make(&mut rng, 200, false);
    let noise = explicitness(
        &train_c,
        &train_f,
        &test_c,
        &test_f,
        &ExplicitnessConfig::default(),
    )
    .unwrap();
    assert!((noise.test_score - 0.5).abs() < 0.1, "{noise:?}");
    let constant = FactorMatrix::new(2, vec![0; 800]).unwrap();
    assert!(
        explicitness(
            &train_c,
            &constant,
            &test_c,
            &test_f,
            &ExplicitnessConfig::default()
        )
        .is_err()
    );
}

/// Factors of sizes 4, 5, 6 rendered as a 1 × 1 × 3 "image" of the normalised factor vector.
struct TinyFactors {
    space: FactorSpace,
}

impl TinyFactors {
    fn new() -> Self {
        let names = ["a", "b", "c"].iter().map(|s| (*s).to_string()).collect();
        Self {
            space: FactorSpace::new(names, vec![4, 5, 6]).unwrap(),
        }
    }
}

impl GroundTruthDataset for TinyFactors {
    fn name(&self) -> &str {
        "tiny"
    }

    fn factor_space(&self) -> &FactorSpace {
        &self.space
    }

    fn observation_shape(&self) -> ObservationShape {
        ObservationShape {
            channels: 1,
            height: 1,
            width: 3,
        }
    }

    fn observations_from_factors(
        &self,
        factors: &FactorMatrix,
        _rng: &mut dyn RngCore,
    ) -> Result<ImageBatch, DataError> {
        let sizes = self.space.sizes();
        let pixels = factors
            .rows()
            .flat_map(|r| {
                r.iter()
                    .zip(sizes)
                    .map(|(&v, &s)| v as f32 / (s - 1) as f32)
                    .collect::<Vec<_>>()
            })
            .collect();
        ImageBatch::new(self.observation_shape(), pixels)
    }
}

fn small_beta_vae_config() -> BetaVaeConfig {
    BetaVaeConfig {
        batch_size: 16,
        num_train: 300,
        num_eval: 150,
        ..BetaVaeConfig::default()
    }
}

#[test]
fn beta_vae_score_is_one_for_perfect_codes_and_chance_for_random_codes() {
    let dataset = TinyFactors::new();
    let mut identity = |images: &ImageBatch| -> Result<CodeMatrix, MetricsError> {
        CodeMatrix::new(3, images.pixels().iter().map(|&p| f64::from(p)).collect())
    };
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let perfect =
        beta_vae_score(&dataset, &mut identity, &small_beta_vae_config(), &mut rng).unwrap();
    assert!(perfect.eval_accuracy > 0.97, "{perfect:?}");
    let mut noise_rng = ChaCha8Rng::seed_from_u64(7);
    let mut random = |images: &ImageBatch| -> Result<CodeMatrix, MetricsError> {
        CodeMatrix::new(
            3,
            (0..images.len() * 3)
                .map(|_| noise_rng.random_range(-1.0..1.0))
                .collect(),
        )
    };
    let chance = beta_vae_score(&dataset, &mut random, &small_beta_vae_config(), &mut rng).unwrap();
    assert!(
        (chance.eval_accuracy - 1.0 / 3.0).abs() < 0.12,
        "{chance:?}"
    );
    let mut short = |_: &ImageBatch| CodeMatrix::new(3, vec![0.0; 3]);
    assert!(matches!(
        beta_vae_score(&dataset, &mut short, &small_beta_vae_config(), &mut rng),
        Err(MetricsError::Representation(_))
    ));
}

#[test]
fn beta_vae_score_is_reproducible_from_the_seed() {
    let dataset = TinyFactors::new();
    let mut identity = |images: &ImageBatch| -> Result<CodeMatrix, MetricsError> {
        CodeMatrix::new(
            3,
            images
                .pixels()
                .iter()
                .map(|&p| f64::from(p) * 2.0)
                .collect(),
        )
    };
    let config = BetaVaeConfig {
        num_train: 60,
        num_eval: 30,
        ..small_beta_vae_config()
    };
    let a = beta_vae_score(
        &dataset,
        &mut identity,
        &config,
        &mut ChaCha8Rng::seed_from_u64(8),
    )
    .unwrap();
    let b = beta_vae_score(
        &dataset,
        &mut identity,
        &config,
        &mut ChaCha8Rng::seed_from_u64(8),
    )
    .unwrap();
    assert_eq!(a, b);
}

/// A format-1.0 `.npy` file built by hand, independent of the writer.
fn npy_bytes(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
    let order = if fortran { "True" } else { "False" };
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}");
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.extend_from_slice(data);
    out
}

#[test]
fn npy_reads_float32_float64_and_integer_arrays_in_any_order() {
    let f32_data: Vec<u8> = [1.5f32, -2.0, 3.25, 4.0, 5.0, 6.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let codes = codes_from_npy_bytes(&npy_bytes("<f4", false, "(2, 3)", &f32_data)).unwrap();
    assert_eq!(codes.as_slice(), &[1.5, -2.0, 3.25, 4.0, 5.0, 6.0]);
    let fortran = codes_from_npy_bytes(&npy_bytes("<f4", true, "(2, 3)", &f32_data)).unwrap();
    assert_eq!(fortran.as_slice(), &[1.5, 3.25, 5.0, -2.0, 4.0, 6.0]);
    let be_data: Vec<u8> = [0.5f64, 8.0].iter().flat_map(|v| v.to_be_bytes()).collect();
    let be = codes_from_npy_bytes(&npy_bytes(">f8", false, "(2, 1)", &be_data)).unwrap();
    assert_eq!(be.as_slice(), &[0.5, 8.0]);
    let i32_data: Vec<u8> = [0i32, 3, 2, 1]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let factors = factors_from_npy_bytes(&npy_bytes("<i4", false, "(2, 2)", &i32_data)).unwrap();
    assert_eq!(factors.as_slice(), &[0, 3, 2, 1]);
    let u8_factors =
        factors_from_npy_bytes(&npy_bytes("|u1", false, "(3, 1)", &[7, 0, 255])).unwrap();
    assert_eq!(u8_factors.as_slice(), &[7, 0, 255]);
}

#[test]
fn npy_round_trips_through_the_writer_and_file() {
    let codes = CodeMatrix::new(2, vec![0.1, -1e300, 3.0, f64::MIN_POSITIVE]).unwrap();
    assert_eq!(
        codes_from_npy_bytes(&codes_to_npy_bytes(&codes)).unwrap(),
        codes
    );
    let factors = FactorMatrix::new(3, vec![0, 1, 2, 40, 5, 6]).unwrap();
    let bytes = factors_to_npy_bytes(&factors).unwrap();
    assert_eq!(
        bytes.iter().position(|&b| b == b'\n').map(|p| (p + 1) % 64),
        Some(0)
    );
    assert_eq!(factors_from_npy_bytes(&bytes).unwrap(), factors);
    let dir = std::env::temp_dir().join(format!("infobound-npy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("codes.npy");
    write_atomically(&path, &codes_to_npy_bytes(&codes)).unwrap();
    assert_eq!(infobound_metrics::read_codes_npy(&path).unwrap(), codes);
    assert!(matches!(
        infobound_metrics::read_codes_npy(&dir.join("missing.npy")),
        Err(NpyError::Io { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn npy_rejects_malformed_and_unsuitable_arrays() {
    let f8 = |v: &[f64]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    assert!(matches!(
        codes_from_npy_bytes(b"not numpy"),
        Err(NpyError::Format(_))
    ));
    assert!(matches!(
        codes_from_npy_bytes(&[]),
        Err(NpyError::Format(_))
    ));
    let three_d = npy_bytes("<f8", false, "(1, 1, 2)", &f8(&[1.0, 2.0]));
    assert!(matches!(
        codes_from_npy_bytes(&three_d),
        Err(NpyError::Shape(_))
    ));
    let truncated = npy_bytes("<f8", false, "(2, 2)", &f8(&[1.0, 2.0, 3.0]));
    assert!(matches!(
        codes_from_npy_bytes(&truncated),
        Err(NpyError::Shape(_))
    ));
    let nan = npy_bytes("<f8", false, "(1, 2)", &f8(&[1.0, f64::NAN]));
    assert!(matches!(
        codes_from_npy_bytes(&nan),
        Err(NpyError::Values(MetricsError::NonFinite {
            row: 0,
            col: 1,
            ..
        }))
    ));
    let negative: Vec<u8> = [-1i64].iter().flat_map(|v| v.to_le_bytes()).collect();
    assert!(matches!(
        factors_from_npy_bytes(&npy_bytes("<i8", false, "(1, 1)", &negative)),
        Err(NpyError::Values(_))
    ));
    let floats = npy_bytes("<f8", false, "(1, 1)", &f8(&[1.0]));
    assert!(matches!(
        factors_from_npy_bytes(&floats),
        Err(NpyError::UnsupportedDtype { .. })
    ));
    let ints = npy_bytes("<i8", false, "(1, 1)", &[0; 8]);
    assert!(matches!(
        codes_from_npy_bytes(&ints),
        Err(NpyError::UnsupportedDtype { .. })
    ));
    let complex = npy_bytes("<c16", false, "(1, 1)", &[0; 16]);
    assert!(matches!(
        codes_from_npy_bytes(&complex),
        Err(NpyError::UnsupportedDtype { .. })
    ));
    let mut huge = npy_bytes("<f8", false, "(1, 1)", &f8(&[1.0]));
    huge[8] = 0xff;
    huge[9] = 0xff;
    assert!(matches!(
        codes_from_npy_bytes(&huge),
        Err(NpyError::Format(_))
    ));
}

fn metric(name: &str) -> MetricName {
    name.parse().expect("registered metric")
}

#[test]
fn metric_names_parse_and_unknown_names_fail() {
    assert_eq!(
        parse_metric_list("mig, SAP,dci,mig,explicitness").unwrap(),
        vec![
            metric("mig"),
            metric("sap"),
            metric("dci"),
            metric("explicitness")
        ]
    );
    for name in MetricName::all() {
        assert_eq!(name.as_str().parse::<MetricName>().unwrap(), name);
    }
    assert!(matches!(
        "factorvae2".parse::<MetricName>(),
        Err(MetricsError::InvalidParameter(_))
    ));
    assert!(parse_metric_list(" , ").is_err());
}

#[test]
fn suite_scores_codes_features_and_pairs() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let factors = factor_sample(&mut rng, 90, &[3, 3]);
    let codes: Vec<f64> = factors
        .rows()
        .flat_map(|r| {
            vec![
                r[0] as f64 + rng.random_range(-0.2..0.2),
                r[1] as f64 + rng.random_range(-0.2..0.2),
            ]
        })
        .collect();
    let codes = CodeMatrix::new(2, codes).unwrap();
    let inputs = SuiteInputs {
        codes: Some(&codes),
        factors: Some(&factors),
        features: Some(&codes),
        features_a: Some(&codes),
        features_b: Some(&codes),
        ..SuiteInputs::default()
    };
    let metrics = [
        metric("explicitness"),
        metric("vendi"),
        metric("fid"),
        metric("mig"),
        metric("snc"),
        metric("dci_lasso"),
    ];
    let report = run_suite(&metrics, &inputs, 3).unwrap();
    let split = report.split.as_ref().unwrap();
    assert_eq!(
        (split.kind.as_str(), split.num_train, split.num_test),
        ("random", 60, 30)
    );
    // With one multinomial model per factor the middle value is ranked too (explicitness ≈ 1).
    assert!(report.metrics[0].headline()[1].1 > 0.9);
    assert!(report.metrics[2].headline()[0].1 < 1e-8);
    assert_eq!(report.metrics[3].headline()[0].0, "mig");
    assert_eq!(report.metrics[4].headline()[1].0, "snc.test");
    assert_eq!(report.metrics[5].headline().len(), 3);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["metrics"][1]["metric"], "vendi");
    assert!(json["metrics"][1]["score"].as_f64().unwrap() > 1.0);
    assert_eq!(
        run_suite(&metrics, &inputs, 3).unwrap(),
        report,
        "same seed, same report"
    );
}

#[test]
fn suite_rejects_missing_inputs_and_degenerate_factors() {
    let codes = CodeMatrix::new(1, vec![0.0, 1.0, 2.0, 3.0]).unwrap();
    let constant = FactorMatrix::new(1, vec![2; 4]).unwrap();
    let inputs = SuiteInputs {
        codes: Some(&codes),
        factors: Some(&constant),
        ..SuiteInputs::default()
    };
    let err = run_suite(&[metric("mig")], &inputs, 0).unwrap_err();
    assert!(err.to_string().contains("single value"), "{err}");
    let err = run_suite(&[metric("vendi")], &SuiteInputs::default(), 0).unwrap_err();
    assert!(err.to_string().contains("needs features"), "{err}");
    let one = CodeMatrix::new(1, vec![0.0]).unwrap();
    let one_factor = FactorMatrix::new(1, vec![0]).unwrap();
    let tiny = SuiteInputs {
        codes: Some(&one),
        factors: Some(&one_factor),
        ..SuiteInputs::default()
    };
    assert!(run_suite(&[metric("mig")], &tiny, 0).is_err());
}
