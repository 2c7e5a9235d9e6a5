//! Registry, manifests, PNG grids and the labelled image set.

use std::sync::Arc;

use infobound_data::{
    DSprites, DataError, FactorMatrix, GroundTruthDataset, ImageBatch, LabelledImages,
    ObservationShape, Shapes3D, dataset_by_name, dataset_info, factor_traversal_grid,
    list_datasets, manifest, manifest_names, save_png_grid,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[test]
fn registry_builds_the_procedural_datasets_and_rejects_unknown_names() {
    for name in ["dsprites", "shapes3d"] {
        let dataset = dataset_by_name(name).unwrap();
        assert_eq!(dataset.name(), name);
    }
    for bad in ["cifar10", "", "DSprites", "3dshapes"] {
        match dataset_by_name(bad) {
            Err(DataError::UnknownDataset { name, known }) => {
                assert_eq!(name, bad);
                assert!(known.contains("dsprites") && known.contains("shapes3d"));
            }
            other => panic!(
                "{bad}: expected UnknownDataset, got {:?}",
                other.map(|d| d.name().to_string())
            ),
        }
        assert!(dataset_info(bad).is_err());
    }
    let list = list_datasets();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].num_images, 737_280);
    assert_eq!(list[1].num_images, 480_000);
    assert_eq!(list[1].factor_sizes, vec![10, 10, 10, 8, 4, 15]);
    assert_eq!(list[0].observation_shape.channels, 1);
    assert_eq!(dataset_info("shapes3d").unwrap(), list[1]);
}

#[test]
fn manifests_parse_and_agree_with_the_procedural_grids() {
    let names = manifest_names();
    for expected in [
        "dsprites",
        "shapes3d",
        "mpi3d_toy",
        "mpi3d_realistic",
        "mpi3d_real",
        "cifar10",
        "cifar100",
    ] {
        assert!(names.contains(&expected), "{expected}");
    }
    for name in &names {
        let m = manifest(name).unwrap();
        assert_eq!(&m.name, name);
        assert!(!m.files.is_empty());
        for file in &m.files {
            if let Some(sha) = &file.sha256 {
                assert!(
                    sha.len() == 64
                        && sha
                            .chars()
                            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
                );
            }
            if let Some(md5) = &file.md5 {
                assert!(
                    md5.len() == 32
                        && md5
                            .chars()
                            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
                );
            }
            if file.sha256.is_some() || file.md5.is_some() {
                assert!(
                    !file.checksum_source.is_empty(),
                    "{name}: checksum without source"
                );
            }
        }
        if m.factors.is_empty() {
            // Labelled image sets: classes and splits add up.
            assert!(!m.class_names.is_empty());
            assert_eq!(
                m.splits.iter().map(|s| s.num_images).sum::<usize>(),
                m.num_images
            );
            assert!(m.factor_space().is_err());
        } else {
            assert_eq!(m.factor_space().unwrap().len(), m.num_images, "{name}");
            for f in &m.factors {
                assert!(
                    f.values.is_empty() || f.values.len() == f.size,
                    "{name}/{}",
                    f.name
                );
                assert!(f.value_names.is_empty() || f.value_names.len() == f.size);
            }
        }
    }
    assert_eq!(manifest("cifar10").unwrap().class_names.len(), 10);
    assert_eq!(manifest("cifar100").unwrap().class_names.len(), 100);
    assert!(matches!(
        manifest("mnist"),
        Err(DataError::UnknownDataset { .. })
    ));

    let sprites = DSprites::new();
    let shapes = Shapes3D::new();
    let sprite_values: Vec<Vec<f64>> = (0..6).map(|k| sprites.factor_values(k).unwrap()).collect();
    let shape_values: Vec<Vec<f64>> = (0..6).map(|k| shapes.factor_values(k).unwrap()).collect();
    for (dataset, values) in [
        (&sprites as &dyn GroundTruthDataset, sprite_values),
        (&shapes, shape_values),
    ] {
        let m = manifest(dataset.name()).unwrap();
        assert_eq!(&m.factor_space().unwrap(), dataset.factor_space());
        assert_eq!(m.observation, dataset.observation_shape());
        for (f, want) in m.factors.iter().zip(&values) {
            assert_eq!(f.values.len(), want.len());
            for (a, b) in f.values.iter().zip(want) {
                assert!((a - b).abs() < 1e-12, "{}/{}: {a} vs {b}", m.name, f.name);
            }
        }
    }
}

/// Decodes a PNG written by `save_png_grid`.
fn decode(path: &std::path::Path) -> image::DynamicImage {
    image::ImageReader::open(path).unwrap().decode().unwrap()
}

#[test]
fn png_grid_has_the_expected_layout_and_values() {
    let dir = tempfile::tempdir().unwrap();
    // Five 3×2 grayscale images with distinct constant values, 2 per row → 3 rows.
    let shape = ObservationShape {
        channels: 1,
        height: 3,
        width: 2,
    };
    let values = [0.0f32, 0.25, 0.5, 1.0, 2.0];
    let pixels: Vec<f32> = values
        .iter()
        .flat_map(|&v| std::iter::repeat_n(v, 6))
        .collect();
    let batch = ImageBatch::new(shape, pixels).unwrap();
    let path = dir.path().join("grid.png");
    save_png_grid(&batch, 2, &path).unwrap();
    let gray = decode(&path);
    assert_eq!(gray.color(), image::ColorType::L8);
    let gray = gray.to_luma8();
    // 2 columns of 2 px + one 2 px separator; 3 rows of 3 px + two separators.
    assert_eq!(gray.dimensions(), (2 * 2 + 2, 3 * 3 + 2 * 2));
    let cell = |i: usize| gray.get_pixel(((i % 2) * 4) as u32, ((i / 2) * 5) as u32)[0];
    assert_eq!(
        [cell(0), cell(1), cell(2), cell(3), cell(4)],
        [0, 64, 128, 255, 255]
    );
    // Separator column and the padding cell after the last image are mid grey.
    assert_eq!(gray.get_pixel(2, 0)[0], 128);
    assert_eq!(gray.get_pixel(5, 10)[0], 128);
    // Only the final file is left in the directory.
    let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(entries.len(), 1);

    let rgb_shape = ObservationShape {
        channels: 3,
        height: 1,
        width: 1,
    };
    let rgb = ImageBatch::new(rgb_shape, vec![1.0, 0.0, 0.5]).unwrap();
    save_png_grid(&rgb, 4, &path).unwrap();
    let decoded = decode(&path).to_rgb8();
    assert_eq!(decoded.dimensions(), (1, 1));
    assert_eq!(decoded.get_pixel(0, 0).0, [255, 0, 128]);

    assert!(save_png_grid(&rgb, 0, &path).is_err());
    let two_channels = ImageBatch::new(
        ObservationShape {
            channels: 2,
            height: 1,
            width: 1,
        },
        vec![0.0; 2],
    )
    .unwrap();
    assert!(save_png_grid(&two_channels, 1, &path).is_err());
    let missing_dir = dir.path().join("no/such/dir/x.png");
    assert!(matches!(
        save_png_grid(&rgb, 1, &missing_dir),
        Err(DataError::Io { .. })
    ));
}

#[test]
fn traversal_grid_varies_one_factor_per_row() {
    let shapes = Shapes3D::new();
    let (grid, columns) = factor_traversal_grid(&shapes, 4).unwrap();
    assert_eq!(columns, 15);
    assert_eq!(grid.len(), 6 * 15);
    // Same seed, same grid; another seed, another base state.
    assert_eq!(factor_traversal_grid(&shapes, 4).unwrap().0, grid);
    assert_ne!(
        factor_traversal_grid(&shapes, 5).unwrap().0.pixels(),
        grid.pixels()
    );
    // Row 4 is the shape factor: 4 distinct images, then black padding.
    let row = 4 * columns;
    for v in 1..4 {
        assert_ne!(grid.image(row + v - 1), grid.image(row + v));
    }
    assert!(grid.image(row + 4).iter().all(|&p| p == 0.0));
    // dSprites skips the single-valued colour factor: 5 rows of 40.
    let (sprites, columns) = factor_traversal_grid(&DSprites::new(), 0).unwrap();
    assert_eq!((sprites.len(), columns), (5 * 40, 40));
    let dir = tempfile::tempdir().unwrap();
    save_png_grid(&sprites, columns, &dir.path().join("d.png")).unwrap();
    assert_eq!(
        decode(&dir.path().join("d.png")).width() as usize,
        40 * 64 + 39 * 2
    );
}

#[test]
fn labelled_images_carry_their_factor_as_label() {
    let shapes: Arc<dyn GroundTruthDataset> = Arc::new(Shapes3D::new());
    let set = LabelledImages::new(shapes.clone(), "shape", 200, 9).unwrap();
    assert_eq!(
        (set.len(), set.num_classes(), set.label_factor_name()),
        (200, 4, "shape")
    );
    let labels = set.labels();
    assert_eq!(labels, set.factors().column(4));
    for class in 0..4 {
        assert!(
            labels.contains(&class),
            "class {class} missing from 200 draws"
        );
    }
    let (image, label) = set.get(17).unwrap();
    assert_eq!(label, labels[17]);
    let row = FactorMatrix::new(6, set.factors().row(17).to_vec()).unwrap();
    let want = shapes
        .observations_from_factors(&row, &mut ChaCha8Rng::seed_from_u64(1))
        .unwrap();
    assert_eq!(image, want.into_pixels());
    let (batch, batch_labels) = set.batch(&[3, 1, 3]).unwrap();
    assert_eq!(batch.len(), 3);
    assert_eq!(batch_labels, vec![labels[3], labels[1], labels[3]]);
    assert_eq!(batch.image(0), batch.image(2));
    // Same seed → same set; errors for bad input.
    let again = LabelledImages::new(shapes.clone(), "shape", 200, 9).unwrap();
    assert_eq!(again.labels(), labels);
    assert!(matches!(
        set.get(200),
        Err(DataError::IndexOutOfRange { .. })
    ));
    assert!(LabelledImages::new(shapes.clone(), "colour", 10, 0).is_err());
    assert!(LabelledImages::new(shapes.clone(), "shape", 0, 0).is_err());
    let hues = LabelledImages::new(shapes, "object_hue", 10, 0).unwrap();
    assert_eq!(hues.num_classes(), 10);
    let sprites: Arc<dyn GroundTruthDataset> = Arc::new(DSprites::new());
    assert!(LabelledImages::new(sprites, "color", 10, 0).is_err());
}
