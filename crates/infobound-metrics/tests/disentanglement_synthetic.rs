//! Disentanglement metrics on constructed codes whose answer is known: codes equal to the factors
//! (plus small noise) must score high, rotated (mixed) codes lower; nuisance and collapsed codes
//! behave as the definitions say; symmetries hold; bad input is an error, never a panic.

use infobound_data::{
    DataError, FactorMatrix, FactorSpace, GroundTruthDataset, ImageBatch, ObservationShape,
};
use infobound_metrics::{
    CodeMatrix, DciConfig, DciLassoConfig, FactorVaeConfig, MetricsError, MigConfig,
    MigContinuousConfig, ModularityConfig, SapConfig, SncConfig, SvmSolver, dci, dci_from_dataset,
    dci_from_importance, dci_lasso, dci_lasso_from_dataset, factor_vae_from_groups,
    factor_vae_score, mig_continuous, mig_discrete, mig_discrete_from_dataset, modularity,
    modularity_from_dataset, sap_continuous, sap_continuous_from_dataset, sap_discrete,
    sap_discrete_from_dataset, snc, snc_from_dataset,
};
use proptest::prelude::*;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SIZES: [usize; 3] = [4, 5, 6];

fn normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn factors(n: usize, seed: u64) -> FactorMatrix {
    let space = FactorSpace::new(
        SIZES.iter().map(|s| format!("f{s}")).collect(),
        SIZES.to_vec(),
    )
    .unwrap();
    space.sample(n, &mut ChaCha8Rng::seed_from_u64(seed))
}

/// Standardised factor values plus `noise`·N(0, 1), then `extra` pure-noise codes.
fn perfect_codes(f: &FactorMatrix, noise: f64, extra: usize, seed: u64) -> CodeMatrix {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let rows: Vec<Vec<f64>> = f
        .rows()
        .map(|r| {
            let mut row: Vec<f64> = r
                .iter()
                .zip(SIZES)
                .map(|(&v, s)| v as f64 / (s - 1) as f64 + noise * normal(&mut rng))
                .collect();
            row.extend((0..extra).map(|_| normal(&mut rng)));
            row
        })
        .collect();
    CodeMatrix::from_rows(&rows).unwrap()
}

/// Mixes every pair of the first three codes by a 45° rotation chain (an entangled basis).
fn rotated(codes: &CodeMatrix) -> CodeMatrix {
    let rows: Vec<Vec<f64>> = codes
        .rows()
        .map(|r| {
            let mut out = r.to_vec();
            out[0] = r[0] + r[1] + r[2];
            out[1] = r[0] - r[1];
            out[2] = r[0] + r[1] - 2.0 * r[2];
            out
        })
        .collect();
    CodeMatrix::from_rows(&rows).unwrap()
}

#[test]
fn mig_discrete_prefers_aligned_codes() {
    let f = factors(3000, 1);
    let good = mig_discrete(&perfect_codes(&f, 0.01, 2, 2), &f, &MigConfig::default()).unwrap();
    let bad = mig_discrete(
        &rotated(&perfect_codes(&f, 0.01, 2, 2)),
        &f,
        &MigConfig::default(),
    )
    .unwrap();
    assert!(good.score > 0.8, "aligned MIG {}", good.score);
    assert!(
        bad.score < good.score - 0.3,
        "rotated MIG {} vs {}",
        bad.score,
        good.score
    );
    assert_eq!(good.metric_version, "infobound-mig-discrete/1");
}

#[test]
fn mig_continuous_prefers_aligned_posteriors() {
    let f = factors(600, 3);
    let mu = perfect_codes(&f, 0.0, 1, 4);
    let logvar = CodeMatrix::new(4, vec![(0.05f64).powi(2).ln(); 600 * 4]).unwrap();
    let config = MigContinuousConfig {
        num_entropy_samples: 300,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let good = mig_continuous(&mu, &logvar, &f, &config, &mut rng).unwrap();
    let bad = mig_continuous(&rotated(&mu), &logvar, &f, &config, &mut rng).unwrap();
    assert!(good.score > 0.7, "aligned continuous MIG {}", good.score);
    assert!(
        bad.score < good.score - 0.3,
        "{} vs {}",
        bad.score,
        good.score
    );
    // The posterior MI of a pure-noise code is close to 0.
    assert!(good.mutual_information[3].iter().all(|m| m.abs() < 0.15));
}

#[test]
fn sap_both_forms_prefer_aligned_codes() {
    let f = factors(1500, 6);
    let f_test = factors(800, 7);
    let codes = perfect_codes(&f, 0.05, 2, 8);
    let codes_test = perfect_codes(&f_test, 0.05, 2, 9);
    let config = SapConfig::default();
    let good = sap_continuous(&codes, &f, &config).unwrap();
    let bad = sap_continuous(&rotated(&codes), &f, &config).unwrap();
    assert!(good.score > 0.9, "SAP continuous {}", good.score);
    assert!(bad.score < good.score - 0.3);
    let good = sap_discrete(&codes, &f, &codes_test, &f_test, &config).unwrap();
    let bad = sap_discrete(
        &rotated(&codes),
        &f,
        &rotated(&codes_test),
        &f_test,
        &config,
    )
    .unwrap();
    // A linear one-vs-rest SVM on one code separates the two end classes of an ordinal factor.
    assert!(good.score > 0.2, "SAP discrete {}", good.score);
    assert!(bad.score < good.score, "{} vs {}", bad.score, good.score);
}

#[test]
fn sap_discrete_solvers_agree() {
    let f = factors(1000, 26);
    let f_test = factors(500, 27);
    let codes = perfect_codes(&f, 0.2, 1, 28);
    let codes_test = perfect_codes(&f_test, 0.2, 1, 29);
    let newton = sap_discrete(&codes, &f, &codes_test, &f_test, &SapConfig::default()).unwrap();
    let dual = SapConfig {
        svm_solver: SvmSolver::DualCoordinateDescent,
        ..SapConfig::default()
    };
    let dual = sap_discrete(&codes, &f, &codes_test, &f_test, &dual).unwrap();
    for (a, b) in newton
        .score_matrix
        .iter()
        .flatten()
        .zip(dual.score_matrix.iter().flatten())
    {
        assert!((a - b).abs() < 0.01, "Newton accuracy {a} vs dual CD {b}");
    }
}

#[test]
fn modularity_is_high_for_aligned_codes() {
    let f = factors(3000, 11);
    let config = ModularityConfig::default();
    let good = modularity(&perfect_codes(&f, 0.01, 0, 12), &f, &config).unwrap();
    let bad = modularity(&rotated(&perfect_codes(&f, 0.01, 0, 12)), &f, &config).unwrap();
    assert!(good.score > 0.95, "modularity {}", good.score);
    assert!(
        bad.score < good.score - 0.1,
        "{} vs {}",
        bad.score,
        good.score
    );
}

fn small_dci() -> DciConfig {
    DciConfig {
        num_stages: 30,
        ..DciConfig::default()
    }
}

#[test]
fn dci_gbt_scores_aligned_codes_high_and_mixed_codes_lower() {
    let f = factors(1000, 13);
    let f_test = factors(500, 14);
    let codes = perfect_codes(&f, 0.02, 2, 15);
    let codes_test = perfect_codes(&f_test, 0.02, 2, 16);
    let good = dci(&codes, &f, &codes_test, &f_test, &small_dci()).unwrap();
    assert!(good.disentanglement > 0.9, "D {}", good.disentanglement);
    assert!(good.completeness > 0.9, "C {}", good.completeness);
    assert!(
        good.informativeness_test > 0.95,
        "I {}",
        good.informativeness_test
    );
    for k in 0..3 {
        let column_sum: f64 = good.importance_matrix.iter().map(|r| r[k]).sum();
        assert!(
            (column_sum - 1.0).abs() < 1e-9,
            "importances of factor {k} sum to {column_sum}"
        );
    }
    // Nuisance codes carry almost no importance.
    assert!(
        good.importance_matrix[3..]
            .iter()
            .flatten()
            .all(|&v| v < 0.05)
    );
    let bad = dci(
        &rotated(&codes),
        &f,
        &rotated(&codes_test),
        &f_test,
        &small_dci(),
    )
    .unwrap();
    assert!(
        bad.disentanglement < good.disentanglement - 0.2,
        "rotated D {} vs {}",
        bad.disentanglement,
        good.disentanglement
    );
}

#[test]
fn dci_gbt_handles_binary_factor_and_collapsed_code() {
    let space = FactorSpace::new(vec!["a".into(), "b".into()], vec![2, 3]).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    let f = space.sample(600, &mut rng);
    let f_test = space.sample(300, &mut rng);
    let encode = |f: &FactorMatrix, rng: &mut ChaCha8Rng| {
        let rows: Vec<Vec<f64>> = f
            .rows()
            .map(|r| vec![r[0] as f64 + 0.05 * normal(rng), r[1] as f64, 0.0])
            .collect();
        CodeMatrix::from_rows(&rows).unwrap()
    };
    let codes = encode(&f, &mut rng);
    let codes_test = encode(&f_test, &mut rng);
    let result = dci(&codes, &f, &codes_test, &f_test, &small_dci()).unwrap();
    assert_eq!(result.test_accuracy, vec![1.0, 1.0]);
    assert_eq!(
        result.importance_matrix[2],
        vec![0.0, 0.0],
        "collapsed code"
    );
    assert!(result.disentanglement > 0.99 && result.completeness > 0.99);
}

#[test]
fn dci_lasso_prefers_aligned_codes() {
    let f = factors(1000, 18);
    let f_test = factors(500, 19);
    let codes = perfect_codes(&f, 0.02, 2, 20);
    let codes_test = perfect_codes(&f_test, 0.02, 2, 21);
    let config = DciLassoConfig::default();
    let good = dci_lasso(&codes, &f, &codes_test, &f_test, &config).unwrap();
    let bad = dci_lasso(
        &rotated(&codes),
        &f,
        &rotated(&codes_test),
        &f_test,
        &config,
    )
    .unwrap();
    assert!(good.disentanglement > 0.9 && good.completeness > 0.9);
    assert!(good.informativeness_test > 0.95);
    assert!(bad.disentanglement < good.disentanglement - 0.2);
}

#[test]
fn snc_matches_aligned_codes_and_penalises_mixing() {
    let f = factors(2000, 22);
    let f_test = factors(1000, 23);
    let codes = perfect_codes(&f, 0.01, 2, 24);
    let codes_test = perfect_codes(&f_test, 0.01, 2, 25);
    let good = snc(&codes, &f, &codes_test, &f_test).unwrap();
    assert_eq!(good.matched_code, vec![0, 1, 2]);
    // Equal-frequency bins do not sit exactly on class boundaries when classes are unequal in
    // size, so even perfect codes lose a few points.
    assert!(good.score > 0.93, "SNC {}", good.score);
    // Flipping a code's sign must not matter: the bin → value map is one-to-one but free.
    let flipped_rows: Vec<Vec<f64>> = codes
        .rows()
        .map(|r| vec![-r[0], r[1], r[2], r[3], r[4]])
        .collect();
    let flipped_test: Vec<Vec<f64>> = codes_test
        .rows()
        .map(|r| vec![-r[0], r[1], r[2], r[3], r[4]])
        .collect();
    let flipped = snc(
        &CodeMatrix::from_rows(&flipped_rows).unwrap(),
        &f,
        &CodeMatrix::from_rows(&flipped_test).unwrap(),
        &f_test,
    )
    .unwrap();
    assert!((flipped.score - good.score).abs() < 0.02);
    let bad = snc(&rotated(&codes), &f, &rotated(&codes_test), &f_test).unwrap();
    assert!(
        bad.score < good.score - 0.2,
        "{} vs {}",
        bad.score,
        good.score
    );
}

#[test]
fn snc_reuses_codes_when_factors_outnumber_them() {
    let f = factors(600, 32);
    let f_test = factors(300, 33);
    let two = |c: &CodeMatrix| {
        let rows: Vec<Vec<f64>> = c.rows().map(|r| vec![r[0], r[2]]).collect();
        CodeMatrix::from_rows(&rows).unwrap()
    };
    let result = snc(
        &two(&perfect_codes(&f, 0.01, 0, 34)),
        &f,
        &two(&perfect_codes(&f_test, 0.01, 0, 35)),
        &f_test,
    )
    .unwrap();
    assert_eq!(result.matched_code.len(), 3);
    assert_eq!(result.matched_code[0], 0);
    assert_eq!(result.matched_code[2], 1);
    // Factor 1 has no code of its own, so it is predicted near chance.
    assert!(result.per_factor_test_accuracy[1] < 0.5);
    assert!(result.per_factor_test_accuracy[0] > 0.9 && result.per_factor_test_accuracy[2] > 0.9);
}

/// Factors 4 × 5 × 6 rendered as a 1 × 1 × 3 "image" of normalised factor values.
struct TinyDataset {
    space: FactorSpace,
}

impl TinyDataset {
    fn new() -> Self {
        Self {
            space: FactorSpace::new(
                SIZES.iter().map(|s| format!("f{s}")).collect(),
                SIZES.to_vec(),
            )
            .unwrap(),
        }
    }
}

impl GroundTruthDataset for TinyDataset {
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
            width: SIZES.len(),
        }
    }

    fn observations_from_factors(
        &self,
        factors: &FactorMatrix,
        _rng: &mut dyn RngCore,
    ) -> Result<ImageBatch, DataError> {
        let pixels = factors
            .rows()
            .flat_map(|r| r.iter().zip(SIZES).map(|(&v, s)| v as f32 / (s - 1) as f32))
            .collect();
        ImageBatch::new(self.observation_shape(), pixels)
    }
}

/// Codes = pixels mapped through `mix` rows, plus a collapsed (constant) code.
fn linear_representation(
    mix: [[f64; 3]; 3],
) -> impl FnMut(&ImageBatch) -> Result<CodeMatrix, MetricsError> {
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    move |images: &ImageBatch| {
        let rows: Vec<Vec<f64>> = (0..images.len())
            .map(|i| {
                let x = images.image(i);
                let mut row: Vec<f64> = mix
                    .iter()
                    .map(|m| {
                        m.iter().zip(x).map(|(a, &p)| a * f64::from(p)).sum::<f64>()
                            + 0.01 * normal(&mut rng)
                    })
                    .collect();
                row.push(0.0);
                Ok(row)
            })
            .collect::<Result<_, MetricsError>>()?;
        CodeMatrix::from_rows(&rows)
    }
}

#[test]
fn factor_vae_score_is_perfect_for_aligned_codes_and_prunes_collapsed_dim() {
    let dataset = TinyDataset::new();
    let config = FactorVaeConfig {
        num_train: 300,
        num_eval: 200,
        num_variance_estimate: 1000,
        ..FactorVaeConfig::default()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(30);
    let mut aligned = linear_representation([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]);
    let good = factor_vae_score(&dataset, &mut aligned, &config, &mut rng).unwrap();
    assert_eq!(good.num_active_dims, 3);
    assert!(good.eval_accuracy > 0.98, "aligned {}", good.eval_accuracy);
    let mut mixed = linear_representation([[1.0, 1.0, 0.0], [1.0, -1.0, 0.0], [0.0, 0.0, 1.0]]);
    let bad = factor_vae_score(&dataset, &mut mixed, &config, &mut rng).unwrap();
    assert!(
        bad.eval_accuracy < good.eval_accuracy - 0.2,
        "mixed {} vs aligned {}",
        bad.eval_accuracy,
        good.eval_accuracy
    );
}

#[test]
fn factor_vae_kernel_votes_on_given_groups() {
    let mut rng = ChaCha8Rng::seed_from_u64(36);
    // Three informative codes, one collapsed (constant) code.
    let global: Vec<Vec<f64>> = (0..500)
        .map(|_| vec![normal(&mut rng), normal(&mut rng), normal(&mut rng), 1.0])
        .collect();
    let global = CodeMatrix::from_rows(&global).unwrap();
    // Fixing factor k freezes code k (aligned) or code (k + 1) mod 3 (permuted).
    let group = |k: usize, frozen: usize, rng: &mut ChaCha8Rng| {
        let rows: Vec<Vec<f64>> = (0..64)
            .map(|_| {
                let mut row = vec![normal(rng), normal(rng), normal(rng), 1.0];
                row[frozen] = 0.3 + 0.01 * normal(rng);
                row
            })
            .collect();
        (k, CodeMatrix::from_rows(&rows).unwrap())
    };
    let groups = |shift: usize, rng: &mut ChaCha8Rng| -> Vec<(usize, CodeMatrix)> {
        (0..60)
            .map(|v| group(v % 3, (v + shift) % 3, rng))
            .collect()
    };
    let config = FactorVaeConfig::default();
    let train = groups(0, &mut rng);
    let eval = groups(0, &mut rng);
    let aligned = factor_vae_from_groups(&global, &train, &eval, 3, &config).unwrap();
    assert_eq!(aligned.num_active_dims, 3);
    assert_eq!(aligned.eval_accuracy, 1.0);
    assert_eq!(aligned.train_votes[1], vec![0, 20, 0, 0]);
    // A classifier learned on one assignment fails on another: accuracy 0.
    let shifted = groups(1, &mut rng);
    let crossed = factor_vae_from_groups(&global, &train, &shifted, 3, &config).unwrap();
    assert_eq!(crossed.eval_accuracy, 0.0);
    // Pruning everything leaves no voter.
    let pruned = FactorVaeConfig {
        prune_threshold: 100.0,
        ..FactorVaeConfig::default()
    };
    let none = factor_vae_from_groups(&global, &train, &eval, 3, &pruned).unwrap();
    assert_eq!((none.num_active_dims, none.eval_accuracy), (0, 0.0));
    assert!(factor_vae_from_groups(&global, &train, &eval, 2, &config).is_err());
}

#[test]
fn dataset_wrappers_sample_and_score_aligned_codes_high() {
    let dataset = TinyDataset::new();
    let mut rng = ChaCha8Rng::seed_from_u64(31);
    let identity = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    let mut representation = linear_representation(identity);
    let mig = mig_discrete_from_dataset(
        &dataset,
        &mut representation,
        &MigConfig {
            num_train: 2000,
            ..MigConfig::default()
        },
        &mut rng,
    )
    .unwrap();
    assert!(
        mig.score > 0.9 && mig.num_samples == 2000,
        "MIG {}",
        mig.score
    );
    let sap = sap_continuous_from_dataset(
        &dataset,
        &mut representation,
        &SapConfig {
            num_train: 1000,
            ..SapConfig::default()
        },
        &mut rng,
    )
    .unwrap();
    assert!(sap.score > 0.9, "SAP {}", sap.score);
    let sap_svm = sap_discrete_from_dataset(
        &dataset,
        &mut representation,
        &SapConfig {
            num_train: 1000,
            num_test: 500,
            ..SapConfig::default()
        },
        &mut rng,
    )
    .unwrap();
    // A one-feature linear SVM only separates the end classes of an ordinal factor, so the
    // discrete SAP of perfect codes is modest; each factor's own code must still predict it best.
    for k in 0..3 {
        let best = (0..4)
            .max_by(|&a, &b| sap_svm.score_matrix[a][k].total_cmp(&sap_svm.score_matrix[b][k]))
            .unwrap();
        assert_eq!(best, k, "factor {k}: {:?}", sap_svm.score_matrix);
    }
    let modularity = modularity_from_dataset(
        &dataset,
        &mut representation,
        &ModularityConfig {
            num_train: 2000,
            ..ModularityConfig::default()
        },
        &mut rng,
    )
    .unwrap();
    // The collapsed fourth code scores 0 by definition, so the mean is at most 3/4.
    assert!(modularity.score > 0.7 && modularity.per_code[3] == 0.0);
    let dci = dci_from_dataset(
        &dataset,
        &mut representation,
        &DciConfig {
            num_train: 600,
            num_test: 300,
            num_stages: 20,
            ..DciConfig::default()
        },
        &mut rng,
    )
    .unwrap();
    assert!(dci.disentanglement > 0.9 && dci.informativeness_test > 0.95);
    let lasso = dci_lasso_from_dataset(
        &dataset,
        &mut representation,
        &DciLassoConfig {
            num_train: 600,
            num_test: 300,
            ..DciLassoConfig::default()
        },
        &mut rng,
    )
    .unwrap();
    assert!(lasso.disentanglement > 0.9);
    let snc = snc_from_dataset(
        &dataset,
        &mut representation,
        &SncConfig {
            num_train: 1000,
            num_test: 500,
            ..SncConfig::default()
        },
        &mut rng,
    )
    .unwrap();
    assert_eq!(snc.matched_code, vec![0, 1, 2]);
    assert!(snc.score > 0.9, "SNC {}", snc.score);
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let f = factors(50, 40);
    let codes = perfect_codes(&f, 0.1, 1, 41);
    let short = perfect_codes(&factors(49, 42), 0.1, 1, 43);
    assert!(matches!(
        mig_discrete(&short, &f, &MigConfig::default()),
        Err(MetricsError::ShapeMismatch(_))
    ));
    let one_row = FactorMatrix::new(3, vec![0, 0, 0]).unwrap();
    let one_code_row = CodeMatrix::new(4, vec![0.0; 4]).unwrap();
    assert!(matches!(
        sap_continuous(&one_code_row, &one_row, &SapConfig::default()),
        Err(MetricsError::InvalidInput(_))
    ));
    let constant_factor = FactorMatrix::new(1, vec![2; 50]).unwrap();
    assert!(matches!(
        modularity(&codes, &constant_factor, &ModularityConfig::default()),
        Err(MetricsError::InvalidInput(_))
    ));
    assert!(matches!(
        dci(
            &codes,
            &constant_factor,
            &codes,
            &constant_factor,
            &small_dci()
        ),
        Err(MetricsError::InvalidInput(_))
    ));
    assert!(matches!(
        CodeMatrix::new(2, vec![0.0, f64::NAN]),
        Err(MetricsError::NonFinite { .. })
    ));
    assert!(dci_from_importance(&[vec![f64::NAN, 1.0], vec![0.0, 1.0]]).is_err());
    assert!(dci_from_importance(&[vec![1.0, 1.0]]).is_err());
    assert!(dci_from_importance(&[vec![1.0, 1.0], vec![1.0]]).is_err());
    let one_code = CodeMatrix::new(1, vec![0.5; 50]).unwrap();
    assert!(mig_discrete(&one_code, &f, &MigConfig::default()).is_err());
    assert!(snc(&codes, &f, &short, &f).is_err());
    let bad_bins = MigConfig {
        num_bins: 0,
        ..MigConfig::default()
    };
    assert!(matches!(
        mig_discrete(&codes, &f, &bad_bins),
        Err(MetricsError::InvalidParameter(_))
    ));
    // A constant code has exactly zero MI and zero SAP score, without NaN.
    let with_constant: Vec<Vec<f64>> = codes.rows().map(|r| vec![r[0], r[1], r[2], 7.0]).collect();
    let with_constant = CodeMatrix::from_rows(&with_constant).unwrap();
    let m = mig_discrete(&with_constant, &f, &MigConfig::default()).unwrap();
    assert!(m.mutual_information[3].iter().all(|&v| v == 0.0));
    let s = sap_continuous(&with_constant, &f, &SapConfig::default()).unwrap();
    assert!(s.score_matrix[3].iter().all(|&v| v == 0.0));
}

fn permuted_and_scaled(codes: &CodeMatrix, order: &[usize], scale: &[f64]) -> CodeMatrix {
    let rows: Vec<Vec<f64>> = codes
        .rows()
        .map(|r| order.iter().map(|&j| r[j] * scale[j]).collect())
        .collect();
    CodeMatrix::from_rows(&rows).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn mig_sap_modularity_invariant_to_code_permutation_and_positive_scaling(
        seed in 0u64..1000,
        order in Just((0..5).collect::<Vec<usize>>()).prop_shuffle(),
        scale in proptest::collection::vec(0.1f64..10.0, 5),
    ) {
        let f = factors(300, seed);
        let codes = perfect_codes(&f, 0.3, 2, seed + 1);
        let transformed = permuted_and_scaled(&codes, &order, &scale);
        let a = mig_discrete(&codes, &f, &MigConfig::default()).unwrap();
        let b = mig_discrete(&transformed, &f, &MigConfig::default()).unwrap();
        prop_assert!((a.score - b.score).abs() < 1e-9);
        let a = sap_continuous(&codes, &f, &SapConfig::default()).unwrap();
        let b = sap_continuous(&transformed, &f, &SapConfig::default()).unwrap();
        prop_assert!((a.score - b.score).abs() < 1e-9);
        let a = modularity(&codes, &f, &ModularityConfig::default()).unwrap();
        let b = modularity(&transformed, &f, &ModularityConfig::default()).unwrap();
        prop_assert!((a.score - b.score).abs() < 1e-9);
    }

    #[test]
    fn dci_scores_invariant_to_permuting_rows_and_columns_of_importance(
        values in proptest::collection::vec(0.0f64..5.0, 12),
        rows in Just((0..4).collect::<Vec<usize>>()).prop_shuffle(),
        cols in Just((0..3).collect::<Vec<usize>>()).prop_shuffle(),
    ) {
        let r: Vec<Vec<f64>> = values.chunks(3).map(<[f64]>::to_vec).collect();
        let p: Vec<Vec<f64>> = rows.iter().map(|&i| cols.iter().map(|&j| r[i][j]).collect()).collect();
        let a = dci_from_importance(&r).unwrap();
        let b = dci_from_importance(&p).unwrap();
        prop_assert!((a.disentanglement - b.disentanglement).abs() < 1e-12);
        prop_assert!((a.completeness - b.completeness).abs() < 1e-12);
        prop_assert!((0.0..=1.0 + 1e-12).contains(&a.disentanglement));
    }
}
