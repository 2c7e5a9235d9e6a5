//! The `3dshapes.h5` reader on small HDF5 fixtures written here with the official layout
//! (`images` u8 [N, H, W, 3], `labels` f64 [N, 6], the first N rows of the official order), plus
//! every failure mode: missing datasets, wrong element types and shapes, labels off the grid or
//! out of row-major order, corrupt and truncated files, missing paths.
#![cfg(feature = "hdf5")]

use std::path::{Path, PathBuf};

use infobound_data::readers::{
    ChecksumStatus, ReadOptions, SHAPES3D_FILE_NAME, Shapes3dFile, sha256_file,
};
use infobound_data::{DataError, FactorMatrix, GroundTruthDataset};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Official 3DShapes factor sizes, last factor fastest.
const OFFICIAL_SIZES: [usize; 6] = [10, 10, 10, 8, 4, 15];
/// Image side of the fixtures (the official 64 would only make them slower).
const SIDE: usize = 4;

fn expect_invalid<T: std::fmt::Debug>(result: Result<T, DataError>, needle: &str) {
    match result {
        Err(DataError::InvalidFile { message, .. }) => assert!(
            message.contains(needle),
            "message `{message}` lacks `{needle}`"
        ),
        other => panic!("expected InvalidFile containing `{needle}`, got {other:?}"),
    }
}

/// Row-major unravelling written out independently of `FactorSpace`.
fn unravel(mut index: usize, sizes: &[usize]) -> Vec<usize> {
    let mut out = vec![0; sizes.len()];
    for k in (0..sizes.len()).rev() {
        out[k] = index % sizes[k];
        index /= sizes[k];
    }
    out
}

/// The official label value of class `class` of factor `factor`, from the 3DShapes README:
/// hues k/10, scale linspace(0.75, 1.25, 8), shape k, orientation linspace(−30, 30, 15).
fn label_value(factor: usize, class: usize) -> f64 {
    let k = class as f64;
    match factor {
        0..=2 => k / 10.0,
        3 => 0.75 + 0.5 * k / 7.0,
        4 => k,
        _ => -30.0 + 60.0 * k / 14.0,
    }
}

/// Labels of the first `n` images of the official file.
fn official_labels(n: usize) -> Vec<f64> {
    (0..n)
        .flat_map(|i| {
            unravel(i, &OFFICIAL_SIZES)
                .into_iter()
                .enumerate()
                .map(|(f, c)| label_value(f, c))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// HWC pixels of `n` images, different in every image, position and channel.
fn pixels(n: usize) -> Vec<u8> {
    (0..n * SIDE * SIDE * 3)
        .map(|j| ((j * 7 + j / (SIDE * SIDE * 3) * 13) % 256) as u8)
        .collect()
}

/// Writes `images` with `image_shape` and `labels` with `label_shape` (either may be left out).
fn write_h5<I: hdf5_metno::H5Type, L: hdf5_metno::H5Type>(
    path: &Path,
    images: Option<(&[I], &[usize])>,
    labels: Option<(&[L], &[usize])>,
) {
    let file = hdf5_metno::File::create(path).unwrap();
    if let Some((data, shape)) = images {
        file.new_dataset::<I>()
            .shape(shape)
            .create("images")
            .unwrap()
            .write_raw(data)
            .unwrap();
    }
    if let Some((data, shape)) = labels {
        file.new_dataset::<L>()
            .shape(shape)
            .create("labels")
            .unwrap()
            .write_raw(data)
            .unwrap();
    }
}

/// A well-formed fixture holding the first `n` official images.
fn fixture(dir: &Path, n: usize) -> PathBuf {
    let path = dir.join(format!("shapes3d_{n}.h5"));
    write_h5(
        &path,
        Some((&pixels(n)[..], &[n, SIDE, SIDE, 3][..])),
        Some((&official_labels(n)[..], &[n, 6][..])),
    );
    path
}

#[test]
fn reads_pixels_and_factors_of_a_reduced_grid() {
    let dir = tempfile::tempdir().unwrap();
    // 120 = 2 scales × 4 shapes × 15 orientations: the first rows of the official file.
    let n = 120;
    let path = fixture(dir.path(), n);
    let data = Shapes3dFile::open(&path, &ReadOptions::fixture()).unwrap();
    assert_eq!(data.name(), "shapes3d");
    assert_eq!(data.factor_space().sizes(), &[1, 1, 1, 2, 4, 15]);
    assert_eq!(
        data.factor_space().names(),
        &[
            "floor_hue",
            "wall_hue",
            "object_hue",
            "scale",
            "shape",
            "orientation"
        ]
    );
    let shape = data.observation_shape();
    assert_eq!((shape.channels, shape.height, shape.width), (3, SIDE, SIDE));
    assert_eq!(data.read_report().checksum, ChecksumStatus::NotChecked);

    // Ask for every image in a shuffled order; each must be image `index` of the file in CHW / 255.
    let sizes = data.factor_space().sizes().to_vec();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, rng.next_u32() as usize % (i + 1));
    }
    let rows: Vec<usize> = order.iter().flat_map(|&i| unravel(i, &sizes)).collect();
    let factors = FactorMatrix::new(6, rows).unwrap();
    let images = data.observations_from_factors(&factors, &mut rng).unwrap();
    let hwc = pixels(n);
    let labels = official_labels(n);
    let plane = SIDE * SIDE;
    for (b, &index) in order.iter().enumerate() {
        let image = images.image(b);
        for p in 0..plane {
            for c in 0..3 {
                let stored = hwc[(index * plane + p) * 3 + c];
                assert_eq!(image[c * plane + p], f32::from(stored) / 255.0);
            }
        }
        assert_eq!(
            data.label_values(factors.row(b)).unwrap(),
            &labels[index * 6..(index + 1) * 6]
        );
    }
    let (sampled, batch) = data.sample(8, &mut rng).unwrap();
    assert_eq!(batch.len(), 8);
    data.factor_space().validate_matrix(&sampled).unwrap();
}

#[test]
fn strict_options_need_the_official_shape() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(dir.path(), 60);
    expect_invalid(
        Shapes3dFile::open(&path, &ReadOptions::default()),
        "expected the official shape [480000, 64, 64, 3]",
    );
}

#[test]
fn checksum_mismatch_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(dir.path(), 60);
    let actual = sha256_file(&path).unwrap();
    let matching = ReadOptions {
        expected_sha256: Some(actual),
        ..ReadOptions::fixture()
    };
    let data = Shapes3dFile::open(&path, &matching).unwrap();
    assert_eq!(data.read_report().checksum, ChecksumStatus::Matches);
    let wrong = ReadOptions {
        expected_sha256: Some("0".repeat(64)),
        ..ReadOptions::fixture()
    };
    let data = Shapes3dFile::open(&path, &wrong).unwrap();
    assert_eq!(data.read_report().warnings().len(), 1);
}

#[test]
fn missing_datasets_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let n = 60;
    let no_labels = dir.path().join("no_labels.h5");
    write_h5::<u8, f64>(
        &no_labels,
        Some((&pixels(n)[..], &[n, SIDE, SIDE, 3][..])),
        None,
    );
    expect_invalid(
        Shapes3dFile::open(&no_labels, &ReadOptions::fixture()),
        "no dataset `labels`",
    );
    let no_images = dir.path().join("no_images.h5");
    write_h5::<u8, f64>(
        &no_images,
        None,
        Some((&official_labels(n)[..], &[n, 6][..])),
    );
    expect_invalid(
        Shapes3dFile::open(&no_images, &ReadOptions::fixture()),
        "no dataset `images`",
    );
}

#[test]
fn wrong_element_types_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let n = 60;
    let float_images = dir.path().join("float_images.h5");
    let as_f32: Vec<f32> = pixels(n).iter().map(|&p| f32::from(p)).collect();
    write_h5(
        &float_images,
        Some((&as_f32[..], &[n, SIDE, SIDE, 3][..])),
        Some((&official_labels(n)[..], &[n, 6][..])),
    );
    expect_invalid(
        Shapes3dFile::open(&float_images, &ReadOptions::fixture()),
        "dataset `images`: expected element type u8",
    );
    let float32_labels = dir.path().join("float32_labels.h5");
    let labels_f32: Vec<f32> = official_labels(n).iter().map(|&v| v as f32).collect();
    write_h5(
        &float32_labels,
        Some((&pixels(n)[..], &[n, SIDE, SIDE, 3][..])),
        Some((&labels_f32[..], &[n, 6][..])),
    );
    expect_invalid(
        Shapes3dFile::open(&float32_labels, &ReadOptions::fixture()),
        "dataset `labels`: expected element type f64",
    );
}

#[test]
fn wrong_shapes_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let n = 60;
    let cases: [(&str, Vec<usize>, Vec<usize>, &str); 4] = [
        (
            "grey.h5",
            vec![n * 3, SIDE, SIDE, 1],
            vec![n, 6],
            "dataset `images`: expected shape [N, 64, 64, 3]",
        ),
        (
            "flat.h5",
            vec![n, SIDE * SIDE * 3],
            vec![n, 6],
            "dataset `images`: expected shape [N, 64, 64, 3]",
        ),
        (
            "five_factors.h5",
            vec![n, SIDE, SIDE, 3],
            vec![n + n / 5, 5],
            "dataset `labels`: expected shape [60, 6]",
        ),
        (
            "fewer_labels.h5",
            vec![n / 2, SIDE * 2, SIDE, 3],
            vec![n, 6],
            "dataset `labels`: expected shape [30, 6]",
        ),
    ];
    for (name, image_shape, label_shape, needle) in cases {
        let path = dir.path().join(name);
        write_h5(
            &path,
            Some((&pixels(n)[..], &image_shape[..])),
            Some((&official_labels(n)[..], &label_shape[..])),
        );
        expect_invalid(Shapes3dFile::open(&path, &ReadOptions::fixture()), needle);
    }
}

#[test]
fn labels_must_follow_the_official_row_major_grid() {
    let dir = tempfile::tempdir().unwrap();
    let n = 60;
    let write_labels = |name: &str, labels: &[f64]| {
        let path = dir.path().join(name);
        write_h5(
            &path,
            Some((&pixels(n)[..], &[n, SIDE, SIDE, 3][..])),
            Some((labels, &[n, 6][..])),
        );
        path
    };

    // Two rows swapped: the grid is complete but not in row-major order.
    let mut swapped = official_labels(n);
    for f in 0..6 {
        swapped.swap(6 + f, 2 * 6 + f);
    }
    expect_invalid(
        Shapes3dFile::open(
            &write_labels("swapped.h5", &swapped),
            &ReadOptions::fixture(),
        ),
        "row 1 has factor classes",
    );

    // Rows in reverse order: the same grid, last image first.
    let reversed: Vec<f64> = official_labels(n)
        .chunks_exact(6)
        .rev()
        .flatten()
        .copied()
        .collect();
    expect_invalid(
        Shapes3dFile::open(
            &write_labels("reversed.h5", &reversed),
            &ReadOptions::fixture(),
        ),
        "row 0 has factor classes [0, 0, 0, 0, 3, 14]",
    );

    // A hue of 0.05 is not one of the official values k/10.
    let mut off_grid = official_labels(n);
    off_grid[3 * 6] = 0.05;
    expect_invalid(
        Shapes3dFile::open(
            &write_labels("off_grid.h5", &off_grid),
            &ReadOptions::fixture(),
        ),
        "row 3: floor_hue = 0.05 is not one of the official values",
    );

    // NaN labels match no value.
    let mut nan = official_labels(n);
    nan[5 * 6 + 5] = f64::NAN;
    expect_invalid(
        Shapes3dFile::open(&write_labels("nan.h5", &nan), &ReadOptions::fixture()),
        "row 5: orientation = NaN",
    );
}

#[test]
fn image_count_must_fill_the_inferred_grid() {
    let dir = tempfile::tempdir().unwrap();
    // 20 rows reach orientation 14 and shape 1, a 2 × 15 grid of 30 states.
    let path = fixture(dir.path(), 20);
    expect_invalid(
        Shapes3dFile::open(&path, &ReadOptions::fixture()),
        "the factor grid [1, 1, 1, 1, 2, 15] has 30 states but the file holds 20 images",
    );
}

#[test]
fn empty_files_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.h5");
    write_h5::<u8, f64>(
        &path,
        Some((&[][..], &[0, SIDE, SIDE, 3][..])),
        Some((&[][..], &[0, 6][..])),
    );
    expect_invalid(
        Shapes3dFile::open(&path, &ReadOptions::fixture()),
        "empty shape",
    );
}

#[test]
fn corrupt_and_truncated_files_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut noise = vec![0u8; 4096];
    rng.fill_bytes(&mut noise);
    let random = dir.path().join("random.h5");
    std::fs::write(&random, &noise).unwrap();
    expect_invalid(
        Shapes3dFile::open(&random, &ReadOptions::fixture()),
        "not a readable HDF5 file",
    );

    let whole = std::fs::read(fixture(dir.path(), 60)).unwrap();
    for keep in [whole.len() / 2, whole.len() - 1, 100] {
        let truncated = dir.path().join(format!("truncated_{keep}.h5"));
        std::fs::write(&truncated, &whole[..keep]).unwrap();
        let result = Shapes3dFile::open(&truncated, &ReadOptions::fixture());
        assert!(
            matches!(result, Err(DataError::InvalidFile { ref path, .. }) if path == &truncated),
            "truncated to {keep} bytes: {result:?}"
        );
    }

    // The HDF5 signature overwritten: libhdf5 finds no superblock. (Random flips elsewhere are
    // not tested: libhdf5 is not hardened against arbitrary metadata corruption, and its object
    // headers hold modification times, so such a test would not even be deterministic.)
    let mut unsigned = whole.clone();
    unsigned[..8].copy_from_slice(b"NOTHDF5!");
    let corrupt = dir.path().join("unsigned.h5");
    std::fs::write(&corrupt, &unsigned).unwrap();
    expect_invalid(
        Shapes3dFile::open(&corrupt, &ReadOptions::fixture()),
        "not a readable HDF5 file",
    );
}

#[test]
fn a_missing_path_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join(SHAPES3D_FILE_NAME);
    match Shapes3dFile::open(&missing, &ReadOptions::default()) {
        Err(DataError::Io { path, source }) => {
            assert_eq!(path, missing);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected an Io error, got {other:?}"),
    }
}

#[test]
fn chunked_deflated_datasets_read_like_contiguous_ones() {
    // The official download stores its datasets compressed; libhdf5 decodes them on read.
    let dir = tempfile::tempdir().unwrap();
    let n = 60;
    let path = dir.path().join("deflated.h5");
    let file = hdf5_metno::File::create(&path).unwrap();
    file.new_dataset::<u8>()
        .shape([n, SIDE, SIDE, 3])
        .chunk([7, SIDE, SIDE, 3])
        .deflate(4)
        .create("images")
        .unwrap()
        .write_raw(&pixels(n)[..])
        .unwrap();
    file.new_dataset::<f64>()
        .shape([n, 6])
        .chunk([7, 6])
        .deflate(4)
        .create("labels")
        .unwrap()
        .write_raw(&official_labels(n)[..])
        .unwrap();
    for key in ["images", "labels"] {
        let filters = file.dataset(key).unwrap().filters();
        assert_eq!(filters, [hdf5_metno::filters::Filter::Deflate(4)], "{key}");
    }
    drop(file);
    let deflated = Shapes3dFile::open(&path, &ReadOptions::fixture()).unwrap();
    let contiguous = Shapes3dFile::open(&fixture(dir.path(), n), &ReadOptions::fixture()).unwrap();
    assert_eq!(deflated.factor_space().sizes(), &[1, 1, 1, 1, 4, 15]);
    let all: Vec<usize> = (0..n).flat_map(|i| unravel(i, &[4, 15])).collect();
    let factors = FactorMatrix::new(
        6,
        all.chunks_exact(2)
            .flat_map(|sc| [0, 0, 0, 0, sc[0], sc[1]])
            .collect(),
    )
    .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    assert_eq!(
        deflated
            .observations_from_factors(&factors, &mut rng)
            .unwrap()
            .pixels(),
        contiguous
            .observations_from_factors(&factors, &mut rng)
            .unwrap()
            .pixels()
    );
}
