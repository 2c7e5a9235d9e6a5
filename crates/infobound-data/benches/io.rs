//! I/O and augmentation throughput: multi-crop views per second at CIFAR (32 px) and ImageNet
//! (224 px) scale, and `.npz` read bandwidth (uncompressed MB/s) for stored and deflated archives.
#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented `pub fn benches`"
)]

use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use infobound_data::augment::{MultiCropAugmenter, MultiCropConfig};
use infobound_data::readers::{NpyArray, NpzArchive, NpzCompression, NpzWriter};
use infobound_data::{ImageBatch, ObservationShape};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A batch of `n` random RGB images of side `side`.
fn random_batch(n: usize, side: usize) -> ImageBatch {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let shape = ObservationShape {
        channels: 3,
        height: side,
        width: side,
    };
    let pixels = (0..n * shape.numel())
        .map(|_| rng.random::<f32>())
        .collect();
    ImageBatch::new(shape, pixels).expect("pixels fill the batch")
}

/// Multi-crop views per second (all views of a batch, on the global rayon pool).
fn bench_multicrop(c: &mut Criterion, name: &str, config: MultiCropConfig, batch: ImageBatch) {
    let augmenter = MultiCropAugmenter::new(config).expect("valid config");
    let views = (batch.len() * augmenter.num_views()) as u64;
    let mut group = c.benchmark_group("multicrop_views");
    group.throughput(Throughput::Elements(views));
    let mut step = 0;
    group.bench_function(name, |b| {
        b.iter(|| {
            step += 1;
            augmenter
                .augment(&batch, 0, step)
                .expect("augmentation succeeds")
        })
    });
    group.finish();
}

fn augmentation(c: &mut Criterion) {
    bench_multicrop(
        c,
        "cifar_2x32_6x16",
        MultiCropConfig::mveb_cifar(),
        random_batch(256, 32),
    );
    bench_multicrop(
        c,
        "imagenet_2x224_6x96",
        MultiCropConfig::mveb_imagenet(),
        random_batch(8, 256),
    );
}

/// Writes a dSprites-like archive: 0/1 bytes in blobs, so deflate has realistic work to do.
fn write_archive(path: &Path, compression: NpzCompression, images: usize) -> u64 {
    let side = 64;
    let pixels: Vec<u8> = (0..images * side * side)
        .map(|p| {
            let (i, y, x) = (p / (side * side), (p / side) % side, p % side);
            u8::from((x + i) % 17 < 6 && (y + 2 * i) % 23 < 9)
        })
        .collect();
    let bytes = pixels.len() as u64;
    let array = NpyArray::new(vec![images, side, side], pixels).expect("shape matches");
    let mut writer = NpzWriter::create(path, compression).expect("temp file");
    writer.add("imgs", &array).expect("entry written");
    writer.finish().expect("archive finished");
    bytes
}

fn npz_read(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut group = c.benchmark_group("npz_read");
    for (name, compression) in [
        ("stored", NpzCompression::Stored),
        ("deflated", NpzCompression::Deflated),
    ] {
        let path = dir.path().join(format!("{name}.npz"));
        let bytes = write_archive(&path, compression, 4096);
        group.throughput(Throughput::Bytes(bytes));
        group.bench_function(name, |b| {
            b.iter(|| {
                NpzArchive::open(&path)
                    .and_then(|mut npz| npz.read::<u8>("imgs"))
                    .expect("archive reads")
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = augmentation, npz_read
}
criterion_main!(benches);
