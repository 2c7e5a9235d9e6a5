//! Scratch timing (deleted after use).
use infobound_metrics::{CodeMatrix, KnnClassifier, KnnConfig};
use rand::{Rng, SeedableRng};
#[test]
fn time_full_knn() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let bank = CodeMatrix::new(512, (0..50_000 * 512).map(|_| rng.random_range(-1.0..1.0)).collect()).unwrap();
    let labels: Vec<usize> = (0..50_000).map(|_| rng.random_range(0..10)).collect();
    let queries = CodeMatrix::new(512, (0..10_000 * 512).map(|_| rng.random_range(-1.0..1.0)).collect()).unwrap();
    let c = KnnClassifier::new(&bank, &labels, KnnConfig::default()).unwrap();
    let t = std::time::Instant::now();
    let p = c.predict(&queries).unwrap();
    eprintln!("KNN_FULL {:?} {}", t.elapsed(), p.len());
}
#[test]
fn time_logistic() {
    use infobound_metrics::{LogisticRegression, LogisticRegressionConfig};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let x = CodeMatrix::new(10, (0..100_000).map(|_| rng.random_range(-1.0..1.0)).collect()).unwrap();
    let labels: Vec<usize> = x.rows().map(|r| { let s = r[0] + 0.5 * r[1] - r[2] + rng.random_range(-0.5..0.5); ((s + 2.5).clamp(0.0, 4.999)) as usize }).collect();
    let t = std::time::Instant::now();
    let m = LogisticRegression::fit(&x, &labels, &LogisticRegressionConfig::default()).unwrap();
    eprintln!("LOGISTIC {:?} {:?}", t.elapsed(), m.summary());
}
