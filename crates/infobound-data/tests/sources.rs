//! The dataset source config: the source table and the procedural registry walked entry by
//! entry, serde round-trips, validation and opening of fixture files in the official layouts,
//! and the typed error of every bad file.

use std::path::{Path, PathBuf};

use infobound_data::fixtures::{
    dsprites_fixture_pixel, mpi3d_fixture_byte, pickled_metadata_npy, write_dsprites_npz,
    write_mpi3d_npz,
};
use infobound_data::readers::{
    Cifar100Label, DSpritesFile, Mpi3dVariant, NpyArray, NpzArchive, NpzCompression, NpzWriter,
    ReadOptions,
};
use infobound_data::{
    DataError, DatasetSource, FactorMatrix, PROCEDURAL, SourceKind, dataset_by_name, dataset_info,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Reduced dSprites grid (48 images of 4 × 4).
const DSPRITES_SIZES: [usize; 6] = [1, 3, 2, 2, 2, 2];
/// Reduced MPI3D grid (12 images).
const MPI3D_SIZES: [usize; 7] = [2, 1, 1, 1, 1, 2, 3];

fn expect_invalid<T>(result: Result<T, DataError>, path: &Path, needle: &str) {
    match result {
        Err(DataError::InvalidFile { path: p, message }) => {
            assert_eq!(p, path, "error names the wrong file");
            assert!(
                message.contains(needle),
                "message `{message}` lacks `{needle}`"
            );
        }
        Err(other) => panic!("expected InvalidFile containing `{needle}`, got {other:?}"),
        Ok(_) => panic!("expected InvalidFile containing `{needle}`, got Ok"),
    }
}

fn dsprites_source(path: &Path, cache_dir: Option<PathBuf>) -> DatasetSource {
    DatasetSource::DspritesNpz {
        path: path.to_path_buf(),
        sha256: None,
        strict_shapes: false,
        cache_dir,
    }
}

fn mpi3d_source(path: &Path, factor_sizes: [usize; 7]) -> DatasetSource {
    DatasetSource::Mpi3dNpz {
        path: path.to_path_buf(),
        variant: Mpi3dVariant::Toy,
        sha256: None,
        strict_shapes: false,
        factor_sizes: Some(factor_sizes),
        cache_dir: None,
    }
}

#[test]
fn every_source_kind_round_trips_under_its_own_tag_and_description() {
    let mut tags = std::collections::HashSet::new();
    let mut descriptions = std::collections::HashSet::new();
    for kind in SourceKind::ALL {
        let example = kind.example();
        assert_eq!(example.kind(), kind);
        let json = serde_json::to_value(&example).unwrap();
        assert_eq!(json["source"], kind.tag(), "{kind:?} serialises its tag");
        let back: DatasetSource = serde_json::from_value(json).unwrap();
        assert_eq!(back, example);
        assert!(tags.insert(kind.tag()), "duplicate tag {}", kind.tag());
        assert!(!kind.description().trim().is_empty());
        assert!(
            descriptions.insert(kind.description()),
            "{kind:?} shares its description"
        );
        assert!(!example.description().is_empty());
    }
    assert_eq!(tags.len(), SourceKind::ALL.len());
}

#[test]
fn every_procedural_dataset_has_its_own_entry() {
    let mut descriptions = std::collections::HashSet::new();
    for entry in PROCEDURAL {
        let dataset = (entry.build)();
        assert_eq!(dataset.name(), entry.name);
        assert_eq!(dataset_by_name(entry.name).unwrap().name(), entry.name);
        assert_eq!(
            dataset_info(entry.name).unwrap().description,
            entry.description
        );
        assert!(!entry.description.trim().is_empty());
        assert!(
            descriptions.insert(entry.description),
            "{} shares its description",
            entry.name
        );
        let source: DatasetSource =
            serde_json::from_value(serde_json::json!({"source": "procedural", "name": entry.name}))
                .unwrap();
        source.validate().unwrap();
        assert!(source.description().contains(entry.description));
        assert_eq!(source.open_ground_truth().unwrap().name(), entry.name);
    }
}

#[test]
fn serde_rejects_unknown_fields_and_tags_and_takes_old_names() {
    let old: DatasetSource =
        serde_json::from_str(r#"{"source": "procedural", "dataset": "dsprites"}"#).unwrap();
    assert_eq!(
        old,
        DatasetSource::Procedural {
            name: "dsprites".into()
        }
    );
    for bad in [
        r#"{"source": "cifar10", "path": "x", "bogus": 1}"#,
        r#"{"source": "mpi3d", "path": "x"}"#,
        r#"{"source": "mpi3d_npz", "path": "x", "variant": "fake"}"#,
        r#"{"name": "dsprites"}"#,
    ] {
        assert!(
            serde_json::from_str::<DatasetSource>(bad).is_err(),
            "{bad} parsed"
        );
    }
    let defaults: DatasetSource =
        serde_json::from_str(r#"{"source": "cifar100", "path": "c"}"#).unwrap();
    assert_eq!(
        defaults,
        DatasetSource::Cifar100 {
            path: "c".into(),
            label: Cifar100Label::Fine,
            strict_shapes: true
        }
    );
    let unknown = DatasetSource::Procedural {
        name: "dsprite".into(),
    };
    assert!(matches!(
        unknown.validate(),
        Err(DataError::UnknownDataset { .. })
    ));
}

#[test]
fn dsprites_source_opens_a_fixture_with_its_pickled_metadata_member() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dsprites.npz");
    write_dsprites_npz(&path, DSPRITES_SIZES, 4, NpzCompression::Stored).unwrap();
    // The fixture holds the official fourth member: an object-dtype `.npy` (a pickle). Reading
    // it as an array is refused; the dSprites reader never touches it.
    let mut archive = NpzArchive::open(&path).unwrap();
    assert!(archive.keys().contains(&"metadata".to_string()));
    expect_invalid(archive.header("metadata"), &path, "unsupported dtype `|O`");
    let source = dsprites_source(&path, None);
    source.validate().unwrap();
    let data = source.open_ground_truth().unwrap();
    assert_eq!(data.name(), "dsprites");
    assert_eq!(data.factor_space().sizes(), &DSPRITES_SIZES);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let (factors, images) = data.sample(16, &mut rng).unwrap();
    for (row, image) in factors.rows().zip(images.pixels().chunks_exact(16)) {
        let index = row
            .iter()
            .zip(&DSPRITES_SIZES)
            .fold(0, |acc, (v, s)| acc * s + v);
        for (p, &v) in image.iter().enumerate() {
            assert_eq!(v, f32::from(dsprites_fixture_pixel(index, p)));
        }
    }
    // Stored archives are read in place: no cache file appears.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let strict = DatasetSource::DspritesNpz {
        path: path.clone(),
        sha256: None,
        strict_shapes: true,
        cache_dir: None,
    };
    expect_invalid(strict.validate(), &path, "official shape [737280, 64, 64]");
}

#[test]
fn deflated_members_are_decompressed_once_into_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let stored = dir.path().join("stored.npz");
    let deflated = dir.path().join("deflated.npz");
    write_dsprites_npz(&stored, DSPRITES_SIZES, 4, NpzCompression::Stored).unwrap();
    write_dsprites_npz(&deflated, DSPRITES_SIZES, 4, NpzCompression::Deflated).unwrap();
    let options = ReadOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        ..ReadOptions::fixture()
    };
    let a = DSpritesFile::open(&stored, &options).unwrap();
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0);
    let b = DSpritesFile::open(&deflated, &options).unwrap();
    let cached: Vec<PathBuf> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    let name = cached[0].file_name().unwrap().to_str().unwrap().to_string();
    assert!(
        name.starts_with("deflated.npz.imgs.") && name.ends_with(".npy"),
        "{name}"
    );
    let all = FactorMatrix::new(
        6,
        (0..48)
            .flat_map(|i| {
                let s = DSPRITES_SIZES;
                let mut out = [0usize; 6];
                let mut rest = i;
                for k in (0..6).rev() {
                    out[k] = rest % s[k];
                    rest /= s[k];
                }
                out
            })
            .collect(),
    )
    .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    use infobound_data::GroundTruthDataset;
    assert_eq!(
        a.observations_from_factors(&all, &mut rng).unwrap(),
        b.observations_from_factors(&all, &mut rng).unwrap()
    );
    // A second open reuses the cache rather than rewriting it.
    let modified = std::fs::metadata(&cached[0]).unwrap().modified().unwrap();
    DSpritesFile::open(&deflated, &options).unwrap();
    assert_eq!(
        std::fs::metadata(&cached[0]).unwrap().modified().unwrap(),
        modified
    );
    // Without a cache folder the cache goes next to the archive.
    DSpritesFile::open(&deflated, &ReadOptions::fixture()).unwrap();
    assert!(
        std::fs::read_dir(dir.path())
            .unwrap()
            .any(|e| e.unwrap().file_name() == cached[0].file_name().unwrap())
    );
}

#[test]
fn corrupt_deflated_member_fails_and_leaves_no_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let path = dir.path().join("dsprites.npz");
    write_dsprites_npz(&path, DSPRITES_SIZES, 32, NpzCompression::Deflated).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    // The `imgs` member is written first: its 38-byte local header (30 + `imgs.npy`) and any
    // extra field are followed by the deflate stream; flip bytes early in that stream.
    for b in &mut bytes[60..70] {
        *b ^= 0x5a;
    }
    std::fs::write(&path, &bytes).unwrap();
    let options = ReadOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        ..ReadOptions::fixture()
    };
    match DSpritesFile::open(&path, &options) {
        Err(DataError::InvalidFile { path: p, message }) => {
            assert_eq!(p, path);
            assert!(message.contains("array `imgs`"), "{message}");
        }
        other => panic!("expected InvalidFile, got {other:?}"),
    }
    assert_eq!(
        std::fs::read_dir(cache.path()).unwrap().count(),
        0,
        "no cache or temporary file is left behind"
    );
}

#[test]
fn mpi3d_source_reads_images_by_factors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mpi3d_toy.npz");
    write_mpi3d_npz(&path, MPI3D_SIZES, 5, NpzCompression::Stored).unwrap();
    let source = mpi3d_source(&path, MPI3D_SIZES);
    source.validate().unwrap();
    let data = source.open_ground_truth().unwrap();
    assert_eq!(data.name(), "mpi3d_toy");
    let factors = FactorMatrix::new(7, vec![1, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 1]).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let images = data.observations_from_factors(&factors, &mut rng).unwrap();
    for (row, index) in [(0usize, 11usize), (1, 1)] {
        let image = images.image(row);
        for c in 0..3 {
            for y in 0..5 {
                for x in 0..5 {
                    let expected = f32::from(mpi3d_fixture_byte(index, y, x, c)) / 255.0;
                    assert_eq!(image[c * 25 + y * 5 + x], expected);
                }
            }
        }
    }
    // The same file deflated reads the same through its cache.
    let deflated = dir.path().join("mpi3d_deflated.npz");
    write_mpi3d_npz(&deflated, MPI3D_SIZES, 5, NpzCompression::Deflated).unwrap();
    let again = mpi3d_source(&deflated, MPI3D_SIZES)
        .open_ground_truth()
        .unwrap();
    assert_eq!(
        again.observations_from_factors(&factors, &mut rng).unwrap(),
        images
    );
}

#[test]
fn bad_mpi3d_files_get_typed_errors_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mpi3d.npz");

    // Missing file.
    match mpi3d_source(&path, MPI3D_SIZES).validate() {
        Err(DataError::Io { path: p, .. }) => assert_eq!(p, path),
        other => panic!("expected Io, got {other:?}"),
    }

    // Wrong factor count for the number of images.
    write_mpi3d_npz(&path, MPI3D_SIZES, 2, NpzCompression::Stored).unwrap();
    expect_invalid(
        mpi3d_source(&path, [2, 1, 1, 1, 1, 2, 2]).validate(),
        &path,
        "expected 8 images for factor sizes",
    );

    // Truncated file: the zip directory at the end is gone.
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 30]).unwrap();
    expect_invalid(
        mpi3d_source(&path, MPI3D_SIZES).validate(),
        &path,
        "not a valid zip",
    );

    // Wrong key.
    let mut writer = NpzWriter::create(&path, NpzCompression::Stored).unwrap();
    writer
        .add(
            "imgs",
            &NpyArray::new(vec![12, 2, 2, 3], vec![0u8; 144]).unwrap(),
        )
        .unwrap();
    writer.finish().unwrap();
    expect_invalid(
        mpi3d_source(&path, MPI3D_SIZES).validate(),
        &path,
        "missing array `images` (found: imgs)",
    );

    // Wrong dtype.
    let mut writer = NpzWriter::create(&path, NpzCompression::Stored).unwrap();
    writer
        .add(
            "images",
            &NpyArray::new(vec![12, 2, 2, 3], vec![0f32; 144]).unwrap(),
        )
        .unwrap();
    writer.finish().unwrap();
    expect_invalid(
        mpi3d_source(&path, MPI3D_SIZES).validate(),
        &path,
        "expected dtype |u1, found <f4",
    );

    // Wrong shape (grayscale).
    let mut writer = NpzWriter::create(&path, NpzCompression::Stored).unwrap();
    writer
        .add(
            "images",
            &NpyArray::new(vec![12, 2, 2], vec![0u8; 48]).unwrap(),
        )
        .unwrap();
    writer.finish().unwrap();
    expect_invalid(
        mpi3d_source(&path, MPI3D_SIZES).validate(),
        &path,
        "expected shape [N, 64, 64, 3]",
    );
}

#[test]
fn truncating_an_open_file_gives_a_typed_error_on_lookup() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mpi3d.npz");
    write_mpi3d_npz(&path, MPI3D_SIZES, 8, NpzCompression::Stored).unwrap();
    let data = mpi3d_source(&path, MPI3D_SIZES)
        .open_ground_truth()
        .unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(400).unwrap();
    let last = FactorMatrix::new(7, vec![1, 0, 0, 0, 0, 1, 2]).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    expect_invalid(
        data.observations_from_factors(&last, &mut rng),
        &path,
        "truncated",
    );
}

#[test]
fn bad_dsprites_files_are_rejected_before_any_pixel_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dsprites.npz");
    let n = 48;
    let mut writer = NpzWriter::create(&path, NpzCompression::Stored).unwrap();
    writer
        .add(
            "imgs",
            &NpyArray::new(vec![n, 4, 4], vec![0u8; n * 16]).unwrap(),
        )
        .unwrap();
    writer
        .add(
            "latents_classes",
            &NpyArray::new(vec![n, 6], vec![0i32; n * 6]).unwrap(),
        )
        .unwrap();
    writer
        .add(
            "latents_values",
            &NpyArray::new(vec![n, 6], vec![0f64; n * 6]).unwrap(),
        )
        .unwrap();
    writer.add_raw("metadata", &pickled_metadata_npy()).unwrap();
    writer.finish().unwrap();
    expect_invalid(
        dsprites_source(&path, None).validate(),
        &path,
        "array `latents_classes`: expected dtype <i8, found <i4",
    );
}

#[test]
fn label_only_sources_have_no_ground_truth_and_hdf5_needs_its_feature() {
    let dir = tempfile::tempdir().unwrap();
    for kind in [
        SourceKind::Cifar10,
        SourceKind::Cifar100,
        SourceKind::ImageFolder,
    ] {
        assert!(!kind.has_ground_truth());
        match kind.example().open_ground_truth() {
            Err(DataError::NoGroundTruth {
                source_name,
                with_factors,
                ..
            }) => {
                assert_eq!(source_name, kind.tag());
                assert!(with_factors.contains("mpi3d_npz"));
            }
            other => panic!("{kind:?}: expected NoGroundTruth, got {:?}", other.err()),
        }
    }
    let h5 = DatasetSource::Shapes3dH5 {
        path: dir.path().join("3dshapes.h5"),
        sha256: None,
        strict_shapes: true,
    };
    #[cfg(not(feature = "hdf5"))]
    match h5.validate() {
        Err(DataError::FeatureDisabled { feature, what }) => {
            assert_eq!(feature, "hdf5");
            assert!(what.contains("3dshapes.h5"));
        }
        other => panic!("expected FeatureDisabled, got {other:?}"),
    }
    #[cfg(feature = "hdf5")]
    assert!(matches!(h5.validate(), Err(DataError::Io { .. })));
}

#[test]
fn cifar_validation_checks_files_and_record_counts() {
    let dir = tempfile::tempdir().unwrap();
    let record = 1 + 3072;
    for name in [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
        "test_batch.bin",
    ] {
        std::fs::write(dir.path().join(name), vec![1u8; 2 * record]).unwrap();
    }
    let lenient = DatasetSource::Cifar10 {
        path: dir.path().to_path_buf(),
        strict_shapes: false,
    };
    lenient.validate().unwrap();
    let strict = DatasetSource::Cifar10 {
        path: dir.path().to_path_buf(),
        strict_shapes: true,
    };
    let first = dir.path().join("data_batch_1.bin");
    expect_invalid(
        strict.validate(),
        &first,
        "expected the official 10000 images, found 2",
    );
    std::fs::write(dir.path().join("test_batch.bin"), vec![0u8; record + 1]).unwrap();
    expect_invalid(
        lenient.validate(),
        &dir.path().join("test_batch.bin"),
        "not a positive multiple of the 3073-byte",
    );
    std::fs::remove_file(dir.path().join("data_batch_3.bin")).unwrap();
    match lenient.validate() {
        Err(DataError::Io { path, .. }) => assert_eq!(path, dir.path().join("data_batch_3.bin")),
        other => panic!("expected Io, got {other:?}"),
    }
}

#[test]
fn atomic_writes_replace_whole_files_and_leave_no_temporaries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.bin");
    infobound_data::io::write_atomic(&path, b"first").unwrap();
    infobound_data::io::write_atomic(&path, b"second").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"second");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    {
        let mut file = infobound_data::io::AtomicFile::create(&path).unwrap();
        std::io::Write::write_all(&mut file, b"abandoned").unwrap();
    }
    assert_eq!(std::fs::read(&path).unwrap(), b"second");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let missing = dir.path().join("no_such_dir").join("x.bin");
    assert!(matches!(
        infobound_data::io::write_atomic(&missing, b"x"),
        Err(DataError::Io { .. })
    ));
}
