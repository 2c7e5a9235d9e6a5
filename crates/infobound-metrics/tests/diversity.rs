//! Vendi score, Fréchet distance, kNN monitor and collapse diagnostics: reference vectors,
//! analytic cases and symmetries.

use std::path::PathBuf;

use infobound_data::{ImageBatch, ObservationShape};
use infobound_metrics::{
    CodeMatrix, CollapseConfig, FeatureExtractor, KnnClassifier, KnnConfig, MetricsError,
    PixelFeatures, VendiConfig, VendiForm, VendiOrder, alignment, collapse_diagnostics,
    effective_rank, fid, frechet_distance, frechet_distance_gaussians, knn_accuracy,
    pixel_vendi_score, uniformity, vendi_score, vendi_score_from_kernel,
};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A reference file from `INFOBOUND_REFERENCE_DIR` or the repository's `reference/` copy;
/// a missing file fails the test.
fn reference(name: &str) -> serde_json::Value {
    let dir = std::env::var_os("INFOBOUND_REFERENCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../reference"));
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reference file {} is missing ({e})", path.display()));
    serde_json::from_str(&text).expect("reference JSON parses")
}

fn matrix(value: &serde_json::Value) -> CodeMatrix {
    let rows: Vec<Vec<f64>> = value
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect()
        })
        .collect();
    CodeMatrix::from_rows(&rows).unwrap()
}

fn gaussian(rng: &mut ChaCha8Rng, n: usize, d: usize) -> CodeMatrix {
    let values = (0..n * d)
        .map(|_| {
            // Box–Muller: two uniforms give one standard normal.
            let u1: f64 = rng.random_range(f64::EPSILON..1.0);
            let u2: f64 = rng.random();
            (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        })
        .collect();
    CodeMatrix::new(d, values).unwrap()
}

fn config(order: VendiOrder, form: VendiForm) -> VendiConfig {
    VendiConfig { order, form }
}

#[test]
fn vendi_reproduces_reference_vectors_in_both_forms() {
    let cases = reference("vendi.json");
    for case in cases.as_array().unwrap() {
        assert_eq!(case["kernel"], "cosine");
        let x = matrix(&case["x"]);
        for form in [VendiForm::Primal, VendiForm::Dual, VendiForm::Auto] {
            for (order, key) in [
                (VendiOrder::Shannon, "vendi_q1"),
                (VendiOrder::Q(2.0), "vendi_q2"),
            ] {
                let expected = case[key].as_f64().unwrap();
                let got = vendi_score(&x, &config(order, form)).unwrap().score;
                assert!(
                    (got - expected).abs() <= 1e-9 * expected,
                    "{key} {form:?}: {got} vs {expected}"
                );
            }
        }
    }
}

#[test]
fn vendi_of_identical_rows_is_one_and_of_orthogonal_rows_is_n() {
    let identical = CodeMatrix::from_rows(&vec![vec![0.3, -1.2, 2.0]; 7]).unwrap();
    let n = 6;
    let orthogonal: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| if i == j { 2.5 } else { 0.0 }).collect())
        .collect();
    let orthogonal = CodeMatrix::from_rows(&orthogonal).unwrap();
    for order in [
        VendiOrder::Shannon,
        VendiOrder::Infinity,
        VendiOrder::Q(0.5),
        VendiOrder::Q(2.0),
    ] {
        let one = vendi_score(&identical, &config(order, VendiForm::Auto)).unwrap();
        assert!((one.score - 1.0).abs() < 1e-9, "{order:?}: {}", one.score);
        let all = vendi_score(&orthogonal, &config(order, VendiForm::Auto)).unwrap();
        assert!(
            (all.score - n as f64).abs() < 1e-9,
            "{order:?}: {}",
            all.score
        );
    }
}

#[test]
fn vendi_orders_are_ordered_and_q1_is_the_shannon_limit() {
    let x = gaussian(&mut ChaCha8Rng::seed_from_u64(3), 30, 5);
    let score = |order| {
        vendi_score(&x, &config(order, VendiForm::Auto))
            .unwrap()
            .score
    };
    let (q0, q_half, q1, q2, q_inf) = (
        score(VendiOrder::Q(0.0)),
        score(VendiOrder::Q(0.5)),
        score(VendiOrder::Shannon),
        score(VendiOrder::Q(2.0)),
        score(VendiOrder::Infinity),
    );
    assert!((q0 - 5.0).abs() < 1e-9, "q = 0 counts the rank: {q0}");
    assert!(q0 >= q_half && q_half >= q1 && q1 >= q2 && q2 >= q_inf);
    assert_eq!(score(VendiOrder::Q(1.0)), q1);
    assert!((score(VendiOrder::Q(1.0 + 1e-7)) - q1).abs() < 1e-5);
}

#[test]
fn vendi_user_kernel_matches_cosine_features_and_rejects_bad_kernels() {
    let x = gaussian(&mut ChaCha8Rng::seed_from_u64(4), 9, 4);
    let unit: Vec<Vec<f64>> = x
        .rows()
        .map(|r| {
            let norm = r.iter().map(|v| v * v).sum::<f64>().sqrt();
            r.iter().map(|v| v / norm).collect()
        })
        .collect();
    let kernel: Vec<f64> = unit
        .iter()
        .flat_map(|a| {
            unit.iter()
                .map(move |b| a.iter().zip(b).map(|(p, q)| p * q).sum())
        })
        .collect();
    let from_kernel = vendi_score_from_kernel(&kernel, 9, VendiOrder::Shannon).unwrap();
    let from_features = vendi_score(&x, &VendiConfig::default()).unwrap();
    assert!((from_kernel.score - from_features.score).abs() < 1e-10);
    let mut bad = kernel.clone();
    bad[0] = 2.0;
    assert!(matches!(
        vendi_score_from_kernel(&bad, 9, VendiOrder::Shannon),
        Err(MetricsError::InvalidInput(_))
    ));
    assert!(vendi_score_from_kernel(&kernel, 8, VendiOrder::Shannon).is_err());
    assert!(matches!(
        vendi_score(&x, &config(VendiOrder::Q(-1.0), VendiForm::Auto)),
        Err(MetricsError::InvalidParameter(_))
    ));
    let zero_row = CodeMatrix::from_rows(&[vec![1.0, 0.0], vec![0.0, 0.0]]).unwrap();
    assert!(vendi_score(&zero_row, &VendiConfig::default()).is_err());
}

#[test]
fn pixel_vendi_of_repeated_image_is_one_and_of_disjoint_blobs_is_count() {
    let shape = ObservationShape {
        channels: 1,
        height: 64,
        width: 64,
    };
    // Four images, each lit in a different quadrant: orthogonal after resizing.
    let mut pixels = vec![0.0f32; 4 * 64 * 64];
    for q in 0..4 {
        for y in 0..32 {
            for x in 0..32 {
                let (oy, ox) = ((q / 2) * 32, (q % 2) * 32);
                pixels[q * 4096 + (oy + y) * 64 + ox + x] = 1.0;
            }
        }
    }
    let distinct = ImageBatch::new(shape, pixels.clone()).unwrap();
    let score = pixel_vendi_score(&distinct, &VendiConfig::default()).unwrap();
    assert!((score.score - 4.0).abs() < 1e-9, "{}", score.score);
    let repeated = ImageBatch::new(shape, pixels[..4096].repeat(5)).unwrap();
    let score = pixel_vendi_score(&repeated, &VendiConfig::default()).unwrap();
    assert!((score.score - 1.0).abs() < 1e-9);
}

#[test]
fn pixel_features_area_average_downsamples_exactly() {
    let shape = ObservationShape {
        channels: 2,
        height: 4,
        width: 4,
    };
    let pixels: Vec<f32> = (0..32).map(|v| v as f32).collect();
    let batch = ImageBatch::new(shape, pixels).unwrap();
    let features = PixelFeatures::new(2).unwrap().extract(&batch).unwrap();
    assert_eq!(features.num_codes(), 8);
    // Top-left 2×2 block of channel 0: 0, 1, 4, 5.
    assert_eq!(features.row(0)[0], 2.5);
    // Bottom-right block of channel 1: 26, 27, 30, 31.
    assert_eq!(features.row(0)[7], 28.5);
    // A 3 → 2 resize splits the middle pixel between both outputs.
    let odd = ImageBatch::new(
        ObservationShape {
            channels: 1,
            height: 1,
            width: 3,
        },
        vec![0.0, 3.0, 6.0],
    )
    .unwrap();
    let mut to_two = PixelFeatures::new(2).unwrap();
    let f = to_two.extract(&odd).unwrap();
    // Left output: (0·1 + 3·½) / 1.5 = 1; right: (3·½ + 6·1) / 1.5 = 5; the single row is repeated.
    let expected = [1.0, 5.0, 1.0, 5.0];
    assert!(
        f.row(0)
            .iter()
            .zip(&expected)
            .all(|(a, b)| (a - b).abs() < 1e-12),
        "{:?}",
        f.row(0)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn vendi_is_invariant_to_row_permutation_and_feature_rotation(
        seed in 0u64..1000, n in 3usize..20, d in 2usize..6, angle in 0.0f64..std::f64::consts::TAU,
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let x = gaussian(&mut rng, n, d);
        let base = vendi_score(&x, &VendiConfig::default()).unwrap().score;
        let mut rows: Vec<Vec<f64>> = x.rows().map(<[f64]>::to_vec).collect();
        rows.reverse();
        rows.swap(0, n / 2);
        let permuted = vendi_score(&CodeMatrix::from_rows(&rows).unwrap(), &VendiConfig::default())
            .unwrap()
            .score;
        prop_assert!((permuted - base).abs() < 1e-9 * base);
        // A Givens rotation of features 0 and 1 preserves every inner product.
        let (s, c) = angle.sin_cos();
        for r in &mut rows {
            let (a, b) = (r[0], r[1]);
            r[0] = c * a - s * b;
            r[1] = s * a + c * b;
        }
        let rotated = vendi_score(&CodeMatrix::from_rows(&rows).unwrap(), &VendiConfig::default())
            .unwrap()
            .score;
        prop_assert!((rotated - base).abs() < 1e-9 * base);
        prop_assert!((1.0 - 1e-9..=n as f64 + 1e-9).contains(&base));
    }
}

#[test]
fn frechet_distance_of_a_set_with_itself_is_zero_and_shift_gives_squared_norm() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let x = gaussian(&mut rng, 200, 6);
    let same = frechet_distance(&x, &x).unwrap();
    assert!(same.score.abs() < 1e-8, "{}", same.score);
    let shift = [1.0, -2.0, 0.5, 0.0, 3.0, -0.25];
    let shifted: Vec<f64> = x
        .rows()
        .flat_map(|r| r.iter().zip(&shift).map(|(v, s)| v + s).collect::<Vec<_>>())
        .collect();
    let shifted = CodeMatrix::new(6, shifted).unwrap();
    let d = frechet_distance(&x, &shifted).unwrap();
    let expected: f64 = shift.iter().map(|s| s * s).sum();
    assert!(
        (d.score - expected).abs() < 1e-8,
        "{} vs {expected}",
        d.score
    );
    assert!(d.covariance_term.abs() < 1e-8);
}

#[test]
fn frechet_distance_matches_the_analytic_gaussian_formula() {
    // Diagonal covariances commute: the trace term is Σ (√a_i − √b_i)².
    let a = [4.0, 1.0, 9.0];
    let b = [1.0, 1.0, 0.25];
    let diag = |v: &[f64]| -> Vec<f64> {
        (0..3)
            .flat_map(|i| (0..3).map(move |j| (i, j)))
            .map(|(i, j)| if i == j { v[i] } else { 0.0 })
            .collect()
    };
    let (mean_term, cov_term) =
        frechet_distance_gaussians(&[0.0, 1.0, 0.0], &diag(&a), &[1.0, 1.0, 2.0], &diag(&b))
            .unwrap();
    assert!((mean_term - 5.0).abs() < 1e-12);
    let expected: f64 = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x.sqrt() - y.sqrt()).powi(2))
        .sum();
    assert!(
        (cov_term - expected).abs() < 1e-10,
        "{cov_term} vs {expected}"
    );
    // A non-commuting pair: Σ₁ = [[2, 1], [1, 2]], Σ₂ = I gives tr(Σ₁) + 2 − 2 tr(Σ₁^{1/2}),
    // with eigenvalues 3 and 1: 4 + 2 − 2 (√3 + 1).
    let (_, term) = frechet_distance_gaussians(
        &[0.0; 2],
        &[2.0, 1.0, 1.0, 2.0],
        &[0.0; 2],
        &[1.0, 0.0, 0.0, 1.0],
    )
    .unwrap();
    assert!((term - (6.0 - 2.0 * (3f64.sqrt() + 1.0))).abs() < 1e-10);
}

#[test]
fn frechet_distance_is_symmetric_and_rejects_bad_input() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let a = gaussian(&mut rng, 50, 4);
    let b: Vec<f64> = gaussian(&mut rng, 80, 4)
        .as_slice()
        .iter()
        .map(|v| 2.0 * v + 0.3)
        .collect();
    let b = CodeMatrix::new(4, b).unwrap();
    let ab = frechet_distance(&a, &b).unwrap().score;
    let ba = frechet_distance(&b, &a).unwrap().score;
    assert!((ab - ba).abs() < 1e-9 * ab.max(1.0), "{ab} vs {ba}");
    assert!(ab > 1.0);
    let narrow = gaussian(&mut rng, 10, 3);
    assert!(matches!(
        frechet_distance(&a, &narrow),
        Err(MetricsError::ShapeMismatch(_))
    ));
    let single = gaussian(&mut rng, 1, 4);
    assert!(frechet_distance(&a, &single).is_err());
}

#[test]
fn fid_through_pixel_features_is_zero_for_equal_sets() {
    let shape = ObservationShape {
        channels: 1,
        height: 8,
        width: 8,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let pixels: Vec<f32> = (0..20 * 64).map(|_| rng.random()).collect();
    let batch = ImageBatch::new(shape, pixels).unwrap();
    let mut extractor = PixelFeatures::new(4).unwrap();
    let d = fid(&batch, &batch, &mut extractor).unwrap();
    assert_eq!(d.extractor, "pixels4");
    assert_eq!(d.feature_dim, 16);
    assert!(d.score.abs() < 1e-9);
}

/// Brute-force weighted kNN, written independently of the blocked implementation.
fn knn_brute_force(bank: &[Vec<f64>], labels: &[usize], query: &[f64], k: usize, t: f64) -> usize {
    let unit = |v: &[f64]| {
        let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        v.iter().map(|x| x / n).collect::<Vec<_>>()
    };
    let q = unit(query);
    let mut sims: Vec<(f64, usize)> = bank
        .iter()
        .enumerate()
        .map(|(j, b)| (unit(b).iter().zip(&q).map(|(a, b)| a * b).sum(), j))
        .collect();
    sims.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut votes = [0.0f64; 8];
    for &(s, j) in &sims[..k] {
        votes[labels[j]] += (s / t).exp();
    }
    (0..8)
        .max_by(|&a, &b| votes[a].total_cmp(&votes[b]).then(b.cmp(&a)))
        .unwrap()
}

#[test]
fn knn_matches_brute_force_across_block_boundaries() {
    let mut rng = ChaCha8Rng::seed_from_u64(10);
    let bank = gaussian(&mut rng, 400, 12);
    let labels: Vec<usize> = (0..400).map(|_| rng.random_range(0..8)).collect();
    let queries = gaussian(&mut rng, 300, 12);
    let config = KnnConfig {
        k: 25,
        temperature: 0.1,
    };
    let predicted = KnnClassifier::new(&bank, &labels, config)
        .unwrap()
        .predict(&queries)
        .unwrap();
    let rows: Vec<Vec<f64>> = bank.rows().map(<[f64]>::to_vec).collect();
    let agree = queries
        .rows()
        .zip(&predicted)
        .filter(|(q, p)| knn_brute_force(&rows, &labels, q, 25, 0.1) == **p)
        .count();
    // f32 similarities may flip a near-tie at the k-th neighbour; allow one query in 300.
    assert!(agree >= 299, "{agree} of 300 agree");
}

#[test]
fn knn_classifies_separated_clusters_perfectly_and_validates_input() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let centres = [[5.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 5.0]];
    let mut make = |n: usize| {
        let mut values = Vec::new();
        let mut labels = Vec::new();
        for i in 0..n {
            let c = i % 3;
            values.extend(centres[c].iter().map(|v| v + rng.random_range(-0.5..0.5)));
            labels.push(c);
        }
        (CodeMatrix::new(3, values).unwrap(), labels)
    };
    let (bank, bank_labels) = make(300);
    let (queries, query_labels) = make(90);
    let result = knn_accuracy(
        &bank,
        &bank_labels,
        &queries,
        &query_labels,
        KnnConfig::default(),
    )
    .unwrap();
    assert_eq!(result.accuracy, 1.0);
    assert_eq!(result.config.k, 200);
    let too_many = KnnConfig {
        k: 301,
        temperature: 0.1,
    };
    assert!(KnnClassifier::new(&bank, &bank_labels, too_many).is_err());
    assert!(KnnClassifier::new(&bank, &bank_labels[..10], KnnConfig::default()).is_err());
}

#[test]
fn effective_rank_counts_equal_directions() {
    let rows: Vec<Vec<f64>> = (0..12)
        .map(|i| (0..5).map(|j| if i % 4 == j { 3.0 } else { 0.0 }).collect())
        .collect();
    let x = CodeMatrix::from_rows(&rows).unwrap();
    assert!((effective_rank(&x).unwrap() - 4.0).abs() < 1e-9);
    let collapsed = CodeMatrix::from_rows(&vec![vec![1.0, 2.0, 3.0]; 10]).unwrap();
    assert!((effective_rank(&collapsed).unwrap() - 1.0).abs() < 1e-6);
    assert!(effective_rank(&CodeMatrix::from_rows(&[vec![0.0, 0.0]]).unwrap()).is_err());
}

#[test]
fn uniformity_and_alignment_match_direct_formulas() {
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let x = gaussian(&mut rng, 15, 3);
    let mut total = 0.0;
    let mut pairs = 0.0;
    for i in 0..15 {
        for j in i + 1..15 {
            let d2: f64 = x
                .row(i)
                .iter()
                .zip(x.row(j))
                .map(|(a, b)| (a - b) * (a - b))
                .sum();
            total += (-2.0 * d2).exp();
            pairs += 1.0;
        }
    }
    assert!((uniformity(&x, 2.0).unwrap() - (total / pairs).ln()).abs() < 1e-10);
    let y: Vec<f64> = x.as_slice().iter().map(|v| v + 0.5).collect();
    let y = CodeMatrix::new(3, y).unwrap();
    // Every pair is offset by (0.5, 0.5, 0.5): squared distance 0.75.
    assert!((alignment(&x, &y, 2.0).unwrap() - 0.75).abs() < 1e-12);
    let identical = CodeMatrix::from_rows(&vec![vec![1.0, 0.0]; 4]).unwrap();
    assert!(uniformity(&identical, 2.0).unwrap().abs() < 1e-12);
    let diagnostics = collapse_diagnostics(&x, Some(&x), &CollapseConfig::default()).unwrap();
    assert_eq!(diagnostics.alignment, Some(0.0));
    assert!(diagnostics.uniformity < 0.0);
    assert!(diagnostics.effective_rank > 1.0 && diagnostics.effective_rank <= 3.0);
}
