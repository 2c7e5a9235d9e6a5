//! Speed of the diversity and probe kernels: Vendi (both forms), the kNN monitor and logistic
//! regression, at the sizes of `shared/bench/torch_reference.py --sections metrics` where feasible.

use criterion::{BenchmarkId, Criterion};
use infobound_metrics::{
    CodeMatrix, KnnClassifier, KnnConfig, LogisticRegression, LogisticRegressionConfig,
    VendiConfig, VendiForm, VendiOrder, vendi_score,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn uniform(rng: &mut ChaCha8Rng, n: usize, d: usize) -> CodeMatrix {
    CodeMatrix::new(d, (0..n * d).map(|_| rng.random_range(-1.0..1.0)).collect()).unwrap()
}

fn vendi(c: &mut Criterion) {
    let mut group = c.benchmark_group("vendi_d128");
    group.sample_size(10);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for n in [1000, 5000] {
        let x = uniform(&mut rng, n, 128);
        for form in [VendiForm::Primal, VendiForm::Dual] {
            let config = VendiConfig {
                order: VendiOrder::Shannon,
                form,
            };
            group.bench_with_input(BenchmarkId::new(format!("{form:?}"), n), &x, |b, x| {
                b.iter(|| vendi_score(x, &config).unwrap())
            });
        }
    }
    group.finish();
}

fn knn(c: &mut Criterion) {
    let mut group = c.benchmark_group("knn_k200");
    group.sample_size(10);
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    // The second size is the torch reference's workload.
    for (bank_size, num_queries) in [(10_000, 2_000), (50_000, 10_000)] {
        let bank = uniform(&mut rng, bank_size, 512);
        let labels: Vec<usize> = (0..bank_size).map(|_| rng.random_range(0..10)).collect();
        let queries = uniform(&mut rng, num_queries, 512);
        let classifier = KnnClassifier::new(&bank, &labels, KnnConfig::default()).unwrap();
        group.bench_function(format!("bank{bank_size}x512_q{num_queries}"), |b| {
            b.iter(|| classifier.predict(&queries).unwrap())
        });
    }
    group.finish();
}

fn logistic(c: &mut Criterion) {
    let mut group = c.benchmark_group("logistic_regression");
    group.sample_size(10);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let x = uniform(&mut rng, 10_000, 10);
    // Noisy linear labels over 5 classes: a realistic, non-separable fit.
    let labels: Vec<usize> = x
        .rows()
        .map(|r| {
            let s = r[0] + 0.5 * r[1] - r[2] + rng.random_range(-0.5..0.5);
            ((s + 2.5).clamp(0.0, 4.999)) as usize
        })
        .collect();
    let config = LogisticRegressionConfig::default();
    group.bench_function("n10000_d10_k5", |b| {
        b.iter(|| LogisticRegression::fit(&x, &labels, &config).unwrap())
    });
    group.finish();
}

// Written out instead of `criterion_group!`, which generates an undocumented public function.
// Logistic regression runs first: on this machine scalar code on threads that ran a large faer
// matrix product runs ~20× slower afterwards (measured 75 ms → 2 s for this fit), which would
// distort it.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    logistic(&mut criterion);
    vendi(&mut criterion);
    knn(&mut criterion);
    criterion.final_summary();
}
