//! The Burn dataset/batcher adapter.
#![cfg(feature = "burn")]

use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::tensor::Device;
use infobound_data::{
    DSprites, GroundTruthBatcher, GroundTruthDataset, GroundTruthItem, GroundTruthStates, Shapes3D,
    images_to_tensor,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[test]
fn states_index_the_flat_space_and_subsets_are_seeded() {
    let sprites: Arc<dyn GroundTruthDataset> = Arc::new(DSprites::new());
    let all = GroundTruthStates::all(sprites.clone());
    assert_eq!(all.len(), 737_280);
    let item = all.get(1024 + 33).unwrap();
    assert_eq!(item.index, 1057);
    // Strides (last fastest): posY 1, posX 32, orientation 1024.
    assert_eq!(item.factors, vec![0, 0, 0, 1, 1, 1]);
    let subset = GroundTruthStates::random_subset(sprites.clone(), 50, 3).unwrap();
    assert_eq!(subset.len(), 50);
    let indices: Vec<usize> = (0..50).map(|i| subset.get(i).unwrap().index).collect();
    assert!(
        indices.windows(2).all(|w| w[0] < w[1]),
        "sorted and distinct"
    );
    let again = GroundTruthStates::random_subset(sprites.clone(), 50, 3).unwrap();
    assert_eq!(again.get(7).unwrap(), subset.get(7).unwrap());
    assert!(subset.get(50).is_err());
    assert!(GroundTruthStates::random_subset(sprites, 737_281, 0).is_err());
}

#[test]
fn batcher_renders_nchw_in_unit_range_with_factors() {
    let device = Device::flex();
    let shapes: Arc<dyn GroundTruthDataset> = Arc::new(Shapes3D::new());
    let states = GroundTruthStates::random_subset(shapes.clone(), 20, 1).unwrap();
    let items: Vec<GroundTruthItem> = (0..5).map(|i| states.get(i).unwrap()).collect();
    let batcher = GroundTruthBatcher::new(shapes.clone());
    let batch = batcher.batch(items.clone(), &device).unwrap();
    assert_eq!(batch.images.dims(), [5, 3, 64, 64]);
    assert_eq!(batch.factors.dims(), [5, 6]);
    let pixels = batch
        .images
        .clone()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert!(pixels.iter().all(|v| (0.0..=1.0).contains(v)));
    assert!(pixels.iter().any(|&v| v > 0.5));
    let factors = batch
        .factors
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .unwrap();
    let want: Vec<i64> = items
        .iter()
        .flat_map(|i| i.factors.iter().map(|&v| v as i64))
        .collect();
    assert_eq!(factors, want);
    assert_eq!(
        batch.indices,
        items.iter().map(|i| i.index).collect::<Vec<_>>()
    );

    // The fast path gives the same tensor as the batcher.
    let matrix = infobound_data::FactorMatrix::new(
        6,
        items.iter().flat_map(|i| i.factors.clone()).collect(),
    )
    .unwrap();
    let images = shapes
        .observations_from_factors(&matrix, &mut ChaCha8Rng::seed_from_u64(0))
        .unwrap();
    let direct = images_to_tensor(&images, &device)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert_eq!(direct, pixels);

    // Hand-made items outside the space are an error, not a panic.
    let bad = GroundTruthItem {
        index: 0,
        factors: vec![0, 0, 0, 0, 9, 0],
    };
    assert!(batcher.batch(vec![bad], &device).is_err());
}
