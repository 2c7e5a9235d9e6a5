//! Disentanglement-metric timings on 10,000 × 10 codes with dSprites-like factors
//! (sizes 3, 6, 40, 32, 32): five noisy factor codes and five nuisance codes.

use std::time::Duration;

use criterion::Criterion;
use infobound_data::{
    DataError, FactorMatrix, FactorSpace, GroundTruthDataset, ImageBatch, ObservationShape,
};
use infobound_metrics::{
    CodeMatrix, DciConfig, DciLassoConfig, FactorVaeConfig, MetricsError, MigConfig,
    MigContinuousConfig, ModularityConfig, SapConfig, dci, dci_lasso, factor_vae_score,
    mig_continuous, mig_discrete, modularity, sap_continuous, sap_discrete, snc,
};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SIZES: [usize; 5] = [3, 6, 40, 32, 32];
const NUM_CODES: usize = 10;

fn space() -> FactorSpace {
    FactorSpace::new(
        (0..SIZES.len()).map(|k| format!("factor{k}")).collect(),
        SIZES.to_vec(),
    )
    .expect("valid factor space")
}

fn normal(rng: &mut dyn RngCore) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn encode(factors: &[f64], rng: &mut dyn RngCore) -> Vec<f64> {
    let mut row: Vec<f64> = factors.iter().map(|v| v + 0.05 * normal(rng)).collect();
    row.extend((SIZES.len()..NUM_CODES).map(|_| normal(rng)));
    row
}

fn sample(n: usize, seed: u64) -> (CodeMatrix, FactorMatrix) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let factors = space().sample(n, &mut rng);
    let values: Vec<f64> = factors
        .rows()
        .flat_map(|r| {
            let normalised: Vec<f64> = r
                .iter()
                .zip(SIZES)
                .map(|(&v, s)| v as f64 / (s - 1) as f64)
                .collect();
            encode(&normalised, &mut rng)
        })
        .collect();
    (
        CodeMatrix::new(NUM_CODES, values).expect("finite codes"),
        factors,
    )
}

/// Renders factors as a 1 × 1 × 5 image of normalised values.
struct SyntheticDataset {
    space: FactorSpace,
}

impl GroundTruthDataset for SyntheticDataset {
    fn name(&self) -> &str {
        "synthetic"
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

fn fast_metrics(c: &mut Criterion) {
    let (codes, factors) = sample(10_000, 1);
    let (test_codes, test_factors) = sample(5_000, 2);
    let mut group = c.benchmark_group("disentanglement_10000x10");
    group.sample_size(10);
    group.bench_function("mig_discrete", |b| {
        b.iter(|| mig_discrete(&codes, &factors, &MigConfig::default()).expect("mig"))
    });
    group.bench_function("sap_continuous", |b| {
        b.iter(|| sap_continuous(&codes, &factors, &SapConfig::default()).expect("sap"))
    });
    group.bench_function("sap_discrete", |b| {
        b.iter(|| {
            sap_discrete(
                &codes,
                &factors,
                &test_codes,
                &test_factors,
                &SapConfig::default(),
            )
            .expect("sap")
        })
    });
    group.bench_function("modularity", |b| {
        b.iter(|| modularity(&codes, &factors, &ModularityConfig::default()).expect("modularity"))
    });
    group.bench_function("snc", |b| {
        b.iter(|| snc(&codes, &factors, &test_codes, &test_factors).expect("snc"))
    });
    group.bench_function("dci_lasso", |b| {
        b.iter(|| {
            dci_lasso(
                &codes,
                &factors,
                &test_codes,
                &test_factors,
                &DciLassoConfig::default(),
            )
            .expect("dci lasso")
        })
    });
    group.bench_function("mig_continuous", |b| {
        let logvar = CodeMatrix::new(NUM_CODES, vec![(0.05f64).powi(2).ln(); 10_000 * NUM_CODES])
            .expect("finite");
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        b.iter(|| {
            mig_continuous(
                &codes,
                &logvar,
                &factors,
                &MigContinuousConfig::default(),
                &mut rng,
            )
            .expect("mig continuous")
        })
    });
    group.bench_function("factor_vae_score", |b| {
        let dataset = SyntheticDataset { space: space() };
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut noise_rng = ChaCha8Rng::seed_from_u64(6);
        let mut representation = |images: &ImageBatch| -> Result<CodeMatrix, MetricsError> {
            let values: Vec<f64> = (0..images.len())
                .flat_map(|i| {
                    let x: Vec<f64> = images.image(i).iter().map(|&p| f64::from(p)).collect();
                    encode(&x, &mut noise_rng)
                })
                .collect();
            CodeMatrix::new(NUM_CODES, values)
        };
        b.iter(|| {
            factor_vae_score(
                &dataset,
                &mut representation,
                &FactorVaeConfig::default(),
                &mut rng,
            )
            .expect("factor vae")
        })
    });
    group.finish();
}

fn dci_gbt(c: &mut Criterion) {
    let (codes, factors) = sample(10_000, 1);
    let (test_codes, test_factors) = sample(5_000, 2);
    let mut group = c.benchmark_group("disentanglement_10000x10");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    // `dci_exact` is the case `reference/scripts/dci_sklearn_timing.py` times for scikit-learn.
    group.bench_function("dci_exact", |b| {
        b.iter(|| {
            dci(
                &codes,
                &factors,
                &test_codes,
                &test_factors,
                &DciConfig::default(),
            )
            .expect("dci")
        })
    });
    group.bench_function("dci_histogram", |b| {
        b.iter(|| {
            dci(
                &codes,
                &factors,
                &test_codes,
                &test_factors,
                &DciConfig::histogram(),
            )
            .expect("dci")
        })
    });
    group.finish();
}

// Written out instead of `criterion_group!`, which generates an undocumented public function.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    fast_metrics(&mut criterion);
    dci_gbt(&mut criterion);
    criterion.final_summary();
}
