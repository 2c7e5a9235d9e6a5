//! Rendering throughput of the procedural datasets (target: ≥ 2,000 images/s per core).
// criterion_group! generates an undocumented `pub fn benches`.
#![allow(missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use infobound_data::{DSprites, FactorMatrix, GroundTruthDataset, Shapes3D};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Images per measured batch.
const BATCH: usize = 256;

/// Renders a fixed random batch on one thread, so the figure is images/s per core.
fn bench_render(c: &mut Criterion, dataset: &dyn GroundTruthDataset) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let factors: FactorMatrix = dataset.factor_space().sample(BATCH, &mut rng);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread rayon pool");
    let mut group = c.benchmark_group("render_one_core");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function(dataset.name(), |b| {
        b.iter(|| {
            pool.install(|| {
                dataset
                    .observations_from_factors(&factors, &mut rng)
                    .expect("valid factors render")
            })
        })
    });
    group.finish();
}

fn render(c: &mut Criterion) {
    bench_render(c, &DSprites::new());
    bench_render(c, &Shapes3D::new());
}

criterion_group!(benches, render);
criterion_main!(benches);
