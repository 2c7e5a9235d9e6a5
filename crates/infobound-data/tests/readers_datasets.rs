//! dSprites, MPI3D, CIFAR and image-folder readers on small fixtures built here with the
//! official layouts, plus every failure mode (wrong keys, dtypes, shapes, order, labels) and
//! checksum reporting.

use std::path::{Path, PathBuf};

use infobound_data::readers::{
    CIFAR_IMAGE_BYTES, ChecksumStatus, Cifar100Label, CifarSplit, DSpritesFile, ImageFolder,
    MPI3D_FACTOR_SIZES, Mpi3dFile, Mpi3dVariant, NpyArray, NpzCompression, NpzWriter, ReadOptions,
    parse_cifar10, parse_cifar100, read_cifar10, read_cifar100, sha256_file, verify_sha256,
};
use infobound_data::{DataError, FactorMatrix, GroundTruthDataset};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Reduced dSprites grid: color 1, shape 3, scale 2, orientation 2, posX 2, posY 2 (48 images).
const SIZES: [usize; 6] = [1, 3, 2, 2, 2, 2];
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

use infobound_data::fixtures::{
    dsprites_fixture_pixel as dsprites_pixel, mpi3d_fixture_byte as mpi3d_byte,
};

struct DSpritesArrays {
    imgs: NpyArray<u8>,
    classes: NpyArray<i64>,
    values: NpyArray<f64>,
}

fn dsprites_arrays() -> DSpritesArrays {
    let n: usize = SIZES.iter().product();
    let pixels = (0..n)
        .flat_map(|i| (0..SIDE * SIDE).map(move |p| dsprites_pixel(i, p)))
        .collect();
    let classes: Vec<i64> = (0..n)
        .flat_map(|i| unravel(i, &SIZES).into_iter().map(|c| c as i64))
        .collect();
    let values = classes.iter().map(|&c| c as f64 * 0.5).collect();
    DSpritesArrays {
        imgs: NpyArray::new(vec![n, SIDE, SIDE], pixels).unwrap(),
        classes: NpyArray::new(vec![n, 6], classes).unwrap(),
        values: NpyArray::new(vec![n, 6], values).unwrap(),
    }
}

fn write_dsprites(path: &Path, arrays: &DSpritesArrays, skip: Option<&str>) {
    let mut writer = NpzWriter::create(path, NpzCompression::Deflated).unwrap();
    if skip != Some("imgs") {
        writer.add("imgs", &arrays.imgs).unwrap();
    }
    if skip != Some("latents_classes") {
        writer.add("latents_classes", &arrays.classes).unwrap();
    }
    if skip != Some("latents_values") {
        writer.add("latents_values", &arrays.values).unwrap();
    }
    writer.finish().unwrap();
}

fn temp_file(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

#[test]
fn dsprites_fixture_looks_up_images_by_factors() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_file(&dir, "dsprites.npz");
    write_dsprites(&path, &dsprites_arrays(), None);
    let data = DSpritesFile::open(&path, &ReadOptions::fixture()).unwrap();
    assert_eq!(data.factor_space().sizes(), &SIZES);
    assert_eq!(data.factor_space().names()[4], "posX");
    assert_eq!(data.observation_shape().numel(), SIDE * SIDE);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (factors, images) = data.sample(20, &mut rng).unwrap();
    for (row, image) in factors
        .rows()
        .zip(images.pixels().chunks_exact(SIDE * SIDE))
    {
        let index = row.iter().zip(&SIZES).fold(0, |acc, (v, s)| acc * s + v);
        for (p, &v) in image.iter().enumerate() {
            assert_eq!(v, f32::from(dsprites_pixel(index, p)));
        }
        let values = data.latent_values(row).unwrap();
        assert_eq!(values[3], row[3] as f64 * 0.5);
    }
    let out_of_range = FactorMatrix::new(6, vec![0, 3, 0, 0, 0, 0]).unwrap();
    assert!(matches!(
        data.observations_from_factors(&out_of_range, &mut rng),
        Err(DataError::FactorOutOfRange { .. })
    ));
    assert_eq!(data.read_report().checksum, ChecksumStatus::NotChecked);
}

#[test]
fn dsprites_strict_mode_requires_the_official_shape() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_file(&dir, "dsprites.npz");
    write_dsprites(&path, &dsprites_arrays(), None);
    expect_invalid(
        DSpritesFile::open(&path, &ReadOptions::default()),
        "expected the official shape [737280, 64, 64]",
    );
}

#[test]
fn dsprites_rejects_missing_keys_wrong_dtypes_shapes_and_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_file(&dir, "dsprites.npz");
    for key in ["imgs", "latents_classes", "latents_values"] {
        write_dsprites(&path, &dsprites_arrays(), Some(key));
        expect_invalid(
            DSpritesFile::open(&path, &ReadOptions::fixture()),
            &format!("missing array `{key}`"),
        );
    }

    let mut arrays = dsprites_arrays();
    let (shape, mut classes) = arrays.classes.into_parts();
    classes.swap(6 * 3 + 5, 6 * 4 + 5);
    arrays.classes = NpyArray::new(shape, classes).unwrap();
    write_dsprites(&path, &arrays, None);
    expect_invalid(
        DSpritesFile::open(&path, &ReadOptions::fixture()),
        "row 3 has factor classes",
    );

    let mut arrays = dsprites_arrays();
    let (shape, mut classes) = arrays.classes.into_parts();
    classes[7] = -1;
    arrays.classes = NpyArray::new(shape, classes).unwrap();
    write_dsprites(&path, &arrays, None);
    expect_invalid(
        DSpritesFile::open(&path, &ReadOptions::fixture()),
        "negative class",
    );

    let mut arrays = dsprites_arrays();
    let (shape, mut pixels) = arrays.imgs.into_parts();
    pixels[17] = 255;
    arrays.imgs = NpyArray::new(shape, pixels).unwrap();
    write_dsprites(&path, &arrays, None);
    expect_invalid(
        DSpritesFile::open(&path, &ReadOptions::fixture()),
        "pixels must be 0 or 1",
    );

    // Images stored as float instead of bytes.
    let arrays = dsprites_arrays();
    let mut writer = NpzWriter::create(&path, NpzCompression::Stored).unwrap();
    let floats: Vec<f32> = arrays.imgs.data().iter().map(|&p| f32::from(p)).collect();
    writer
        .add(
            "imgs",
            &NpyArray::new(arrays.imgs.shape().to_vec(), floats).unwrap(),
        )
        .unwrap();
    writer.add("latents_classes", &arrays.classes).unwrap();
    writer.add("latents_values", &arrays.values).unwrap();
    writer.finish().unwrap();
    expect_invalid(
        DSpritesFile::open(&path, &ReadOptions::fixture()),
        "expected dtype |u1, found <f4",
    );

    // Label rows that disagree with the image count.
    let arrays = dsprites_arrays();
    let mut writer = NpzWriter::create(&path, NpzCompression::Stored).unwrap();
    writer.add("imgs", &arrays.imgs).unwrap();
    let short: Vec<i64> = arrays.classes.data()[..6 * 47].to_vec();
    writer
        .add(
            "latents_classes",
            &NpyArray::new(vec![47, 6], short).unwrap(),
        )
        .unwrap();
    writer.add("latents_values", &arrays.values).unwrap();
    writer.finish().unwrap();
    expect_invalid(
        DSpritesFile::open(&path, &ReadOptions::fixture()),
        "expected shape [48, 6] to match `imgs`",
    );
}

#[test]
fn dsprites_truncated_file_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_file(&dir, "dsprites.npz");
    write_dsprites(&path, &dsprites_arrays(), None);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    expect_invalid(
        DSpritesFile::open(&path, &ReadOptions::fixture()),
        "not a valid zip",
    );
}

#[test]
fn checksum_mismatch_is_reported_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_file(&dir, "dsprites.npz");
    write_dsprites(&path, &dsprites_arrays(), None);
    let actual = sha256_file(&path).unwrap();
    let options = ReadOptions {
        expected_sha256: Some("0".repeat(64)),
        ..ReadOptions::fixture()
    };
    let data = DSpritesFile::open(&path, &options).unwrap();
    assert_eq!(
        data.read_report().checksum,
        ChecksumStatus::Mismatch {
            expected: "0".repeat(64),
            actual: actual.clone()
        }
    );
    assert_eq!(data.read_report().warnings().len(), 1);
    let options = ReadOptions {
        expected_sha256: Some(actual.to_uppercase()),
        ..ReadOptions::fixture()
    };
    let data = DSpritesFile::open(&path, &options).unwrap();
    assert_eq!(data.read_report().checksum, ChecksumStatus::Matches);
    assert!(data.read_report().warnings().is_empty());
}

#[test]
fn sha256_matches_the_fips_test_vector() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_file(&dir, "abc.txt");
    std::fs::write(&path, b"abc").unwrap();
    // FIPS 180-2 appendix B.1.
    let expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    assert_eq!(sha256_file(&path).unwrap(), expected);
    assert_eq!(
        verify_sha256(&path, Some(expected)).unwrap().checksum,
        ChecksumStatus::Matches
    );
    assert!(matches!(
        verify_sha256(&path, Some("xyz")),
        Err(DataError::InvalidArgument(_))
    ));
}

fn write_mpi3d(path: &Path, n: usize, h: usize, w: usize, channels: usize) {
    let mut pixels = Vec::new();
    for i in 0..n {
        for y in 0..h {
            for x in 0..w {
                for c in 0..channels {
                    pixels.push(mpi3d_byte(i, y, x, c));
                }
            }
        }
    }
    let mut writer = NpzWriter::create(path, NpzCompression::Stored).unwrap();
    writer
        .add(
            "images",
            &NpyArray::new(vec![n, h, w, channels], pixels).unwrap(),
        )
        .unwrap();
    writer.finish().unwrap();
}

#[test]
fn mpi3d_fixture_converts_hwc_to_chw() {
    let sizes = [2, 1, 1, 1, 1, 2, 3];
    let (h, w) = (3, 5);
    let dir = tempfile::tempdir().unwrap();
    let path = temp_file(&dir, "mpi3d_toy.npz");
    write_mpi3d(&path, 12, h, w, 3);
    let data =
        Mpi3dFile::open_with_factor_sizes(&path, Mpi3dVariant::Toy, sizes, &ReadOptions::fixture())
            .unwrap();
    assert_eq!(data.name(), "mpi3d_toy");
    assert_eq!(data.factor_space().names()[5], "horizontal_axis");
    let factors = FactorMatrix::new(7, vec![1, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 1]).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let images = data.observations_from_factors(&factors, &mut rng).unwrap();
    for (row, index) in [(0usize, 8usize), (1, 4)] {
        let image = images.image(row);
        for c in 0..3 {
            for y in 0..h {
                for x in 0..w {
                    let expected = f32::from(mpi3d_byte(index, y, x, c)) / 255.0;
                    assert_eq!(image[c * h * w + y * w + x], expected);
                }
            }
        }
    }
}

#[test]
fn mpi3d_rejects_wrong_counts_channels_and_strict_grids() {
    let sizes = [2, 1, 1, 1, 1, 2, 3];
    let dir = tempfile::tempdir().unwrap();
    let path = temp_file(&dir, "mpi3d.npz");
    write_mpi3d(&path, 11, 2, 2, 3);
    expect_invalid(
        Mpi3dFile::open_with_factor_sizes(
            &path,
            Mpi3dVariant::Real,
            sizes,
            &ReadOptions::fixture(),
        ),
        "expected 12 images",
    );
    write_mpi3d(&path, 12, 2, 2, 4);
    expect_invalid(
        Mpi3dFile::open_with_factor_sizes(
            &path,
            Mpi3dVariant::Real,
            sizes,
            &ReadOptions::fixture(),
        ),
        "expected shape [N, 64, 64, 3]",
    );
    assert!(matches!(
        Mpi3dFile::open_with_factor_sizes(
            &path,
            Mpi3dVariant::Real,
            sizes,
            &ReadOptions::default()
        ),
        Err(DataError::InvalidArgument(_))
    ));
    expect_invalid(
        Mpi3dFile::open(&path, Mpi3dVariant::Real, &ReadOptions::default()),
        "expected shape [N, 64, 64, 3]",
    );
    write_mpi3d(&path, 12, 2, 2, 3);
    expect_invalid(
        Mpi3dFile::open(&path, Mpi3dVariant::Real, &ReadOptions::default()),
        &format!(
            "expected {} images",
            MPI3D_FACTOR_SIZES.iter().product::<usize>()
        ),
    );
}

fn cifar_records(labels: &[&[u8]]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (i, label) in labels.iter().enumerate() {
        bytes.extend_from_slice(label);
        bytes.extend((0..CIFAR_IMAGE_BYTES).map(|p| ((p * 13 + i * 7) % 256) as u8));
    }
    bytes
}

#[test]
fn cifar10_records_decode_to_chw_images() {
    let bytes = cifar_records(&[&[3], &[9], &[0]]);
    let data = parse_cifar10(&bytes, Path::new("data_batch_1.bin")).unwrap();
    assert_eq!(data.labels, vec![3, 9, 0]);
    assert_eq!(data.class_names[3], "cat");
    assert_eq!(data.images.len(), 3);
    let image = data.images.image(1);
    // Channel c, row y, column x sits at byte 1 + 1024c + 32y + x of the record.
    let (c, y, x) = (2usize, 5usize, 31usize);
    let p = 1024 * c + 32 * y + x;
    assert_eq!(image[p], ((p * 13 + 7) % 256) as f32 / 255.0);
    expect_invalid(
        parse_cifar10(&bytes[..bytes.len() - 1], Path::new("b.bin")),
        "3073-byte",
    );
    expect_invalid(parse_cifar10(&[], Path::new("b.bin")), "positive multiple");
    expect_invalid(
        parse_cifar10(&cifar_records(&[&[1], &[10]]), Path::new("b.bin")),
        "record 1: label 10",
    );
}

#[test]
fn cifar100_selects_coarse_or_fine_labels() {
    let bytes = cifar_records(&[&[4, 77], &[19, 99]]);
    let fine = parse_cifar100(&bytes, Path::new("train.bin"), Cifar100Label::Fine).unwrap();
    assert_eq!(fine.labels, vec![77, 99]);
    assert_eq!(fine.class_names.len(), 100);
    let coarse = parse_cifar100(&bytes, Path::new("train.bin"), Cifar100Label::Coarse).unwrap();
    assert_eq!(coarse.labels, vec![4, 19]);
    assert_eq!(coarse.images, fine.images);
    expect_invalid(
        parse_cifar100(
            &cifar_records(&[&[20, 1]]),
            Path::new("t.bin"),
            Cifar100Label::Coarse,
        ),
        "label 20 is outside the 20 classes",
    );
}

#[test]
fn cifar_directories_concatenate_batches_in_order() {
    let dir = tempfile::tempdir().unwrap();
    for i in 1..=5u8 {
        let bytes = cifar_records(&[&[i], &[i + 1]]);
        std::fs::write(dir.path().join(format!("data_batch_{i}.bin")), bytes).unwrap();
    }
    std::fs::write(dir.path().join("test_batch.bin"), cifar_records(&[&[7]])).unwrap();
    let train = read_cifar10(dir.path(), CifarSplit::Train, &ReadOptions::fixture()).unwrap();
    assert_eq!(train.labels, vec![1, 2, 2, 3, 3, 4, 4, 5, 5, 6]);
    assert_eq!(train.images.len(), 10);
    let test = read_cifar10(dir.path(), CifarSplit::Test, &ReadOptions::fixture()).unwrap();
    assert_eq!(test.labels, vec![7]);
    expect_invalid(
        read_cifar10(dir.path(), CifarSplit::Train, &ReadOptions::default()),
        "expected the official 10000 images, found 2",
    );
    std::fs::remove_file(dir.path().join("data_batch_4.bin")).unwrap();
    assert!(matches!(
        read_cifar10(dir.path(), CifarSplit::Train, &ReadOptions::fixture()),
        Err(DataError::Io { .. })
    ));
    std::fs::write(dir.path().join("test.bin"), cifar_records(&[&[1, 2]])).unwrap();
    let test100 = read_cifar100(
        dir.path(),
        CifarSplit::Test,
        Cifar100Label::Fine,
        &ReadOptions::fixture(),
    )
    .unwrap();
    assert_eq!(test100.labels, vec![2]);
}

fn write_png(path: &Path, width: u32, height: u32, seed: u8) {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([seed, (x * 40) as u8, (y * 50) as u8])
    });
    image.save(path).unwrap();
}

#[test]
fn image_folder_sorts_classes_and_decodes_pngs() {
    let dir = tempfile::tempdir().unwrap();
    for (class, seeds) in [("zebra", vec![10u8, 20]), ("ant", vec![30u8])] {
        std::fs::create_dir(dir.path().join(class)).unwrap();
        for (k, seed) in seeds.into_iter().enumerate() {
            write_png(
                &dir.path().join(class).join(format!("img{k}.png")),
                4,
                3,
                seed,
            );
        }
    }
    std::fs::write(dir.path().join("zebra").join("notes.txt"), "ignored").unwrap();
    let folder = ImageFolder::open(dir.path(), None).unwrap();
    assert_eq!(
        folder.class_names(),
        &["ant".to_string(), "zebra".to_string()]
    );
    assert_eq!(folder.labels(), vec![0, 1, 1]);
    let shape = folder.observation_shape();
    assert_eq!((shape.channels, shape.height, shape.width), (3, 3, 4));
    let loaded = folder.load(&[2, 0]).unwrap();
    assert_eq!(loaded.labels, vec![1, 0]);
    let image = loaded.images.image(0);
    // Red plane is the seed (20 for zebra/img1), green is 40·x, blue 50·y.
    assert_eq!(image[0], 20.0 / 255.0);
    assert_eq!(image[12 + 3], 120.0 / 255.0);
    assert_eq!(image[24 + 4 * 2], 100.0 / 255.0);
    assert!(matches!(
        folder.load(&[3]),
        Err(DataError::IndexOutOfRange { .. })
    ));

    let resized = ImageFolder::open(dir.path(), Some((8, 6)))
        .unwrap()
        .load_all()
        .unwrap();
    assert_eq!(resized.images.shape().height, 8);
    assert_eq!(resized.images.shape().width, 6);
    assert!(
        resized
            .images
            .pixels()
            .iter()
            .all(|v| (0.0..=1.0).contains(v))
    );

    write_png(&dir.path().join("ant").join("big.png"), 5, 3, 1);
    expect_invalid(ImageFolder::open(dir.path(), None), "pass a target size");
    std::fs::write(
        dir.path().join("ant").join("broken.png"),
        b"\x89PNG not really",
    )
    .unwrap();
    expect_invalid(
        ImageFolder::open(dir.path(), Some((4, 4)))
            .unwrap()
            .load_all(),
        "cannot decode PNG",
    );
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    expect_invalid(ImageFolder::open(dir.path(), Some((4, 4))), "no .png file");
}

/// `ShorterSideCenterCrop` keeps the aspect ratio and the centre (torchvision `Resize` +
/// `CenterCrop`): an 8 × 4 image striped red | green green | blue brought to 4 × 4 (scale 1)
/// is the green middle, where `Stretch` squashes all three stripes in.
#[test]
fn image_folder_center_crop_keeps_the_aspect_ratio() {
    use infobound_data::readers::ImageFit;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("only")).unwrap();
    let stripes = image::RgbImage::from_fn(8, 4, |x, _| match x {
        0..=1 => image::Rgb([255, 0, 0]),
        2..=5 => image::Rgb([0, 255, 0]),
        _ => image::Rgb([0, 0, 255]),
    });
    stripes.save(dir.path().join("only").join("a.png")).unwrap();
    let load = |fit| {
        ImageFolder::open(dir.path(), Some((4, 4)))
            .unwrap()
            .with_fit(fit)
            .load_all()
            .unwrap()
            .images
            .into_pixels()
    };
    let cropped = load(ImageFit::ShorterSideCenterCrop);
    let plane = 16;
    assert!(cropped[..plane].iter().all(|&r| r < 0.02), "{cropped:?}");
    assert!(
        cropped[plane..2 * plane].iter().all(|&g| g > 0.98),
        "{cropped:?}"
    );
    assert!(
        cropped[2 * plane..].iter().all(|&b| b < 0.02),
        "{cropped:?}"
    );
    let stretched = load(ImageFit::Stretch);
    assert!(stretched[0] > 0.5, "the stretched left column is red");
    let source = infobound_data::DatasetSource::ImageFolder {
        path: dir.path().to_path_buf(),
        test_path: None,
        image_size: Some(4),
        fit: ImageFit::ShorterSideCenterCrop,
    };
    let text = serde_json::to_string(&source).unwrap();
    assert!(
        text.contains(r#""fit":"shorter_side_center_crop""#),
        "{text}"
    );
}

#[test]
fn options_take_expected_digests_from_the_manifests() {
    let options = ReadOptions::from_manifest("cifar10", "cifar-10-binary.tar.gz").unwrap();
    assert!(options.strict_shapes);
    let manifest = infobound_data::manifest("cifar10").unwrap();
    let listed = manifest
        .files
        .iter()
        .find(|f| f.name == "cifar-10-binary.tar.gz");
    assert_eq!(options.expected_sha256, listed.unwrap().sha256);
    let dsprites =
        ReadOptions::from_manifest("dsprites", infobound_data::readers::DSPRITES_FILE_NAME);
    assert!(dsprites.is_ok());
    assert!(matches!(
        ReadOptions::from_manifest("dsprites", "nope.npz"),
        Err(DataError::InvalidArgument(_))
    ));
    assert!(matches!(
        ReadOptions::from_manifest("nope", "x"),
        Err(DataError::UnknownDataset { .. })
    ));
}

proptest::proptest! {
    #[test]
    fn arbitrary_cifar_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..7000)) {
        let path = Path::new("fuzz.bin");
        let ten = parse_cifar10(&bytes, path);
        proptest::prop_assert_eq!(ten.is_ok(), !bytes.is_empty() && bytes.len() % 3073 == 0 && bytes.iter().step_by(3073).all(|&l| l < 10));
        let _ = parse_cifar100(&bytes, path, Cifar100Label::Fine);
    }
}
