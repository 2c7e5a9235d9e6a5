//! Arbitrary bytes as an image folder: the input is cut into records that become class folders,
//! PNG files (whole, truncated or garbage), zero-byte files, symlinks (to a file, to a folder, to
//! nothing, to themselves) and folders named like images; then `ImageFolder::open` (with and
//! without a target size) and `load_all`.
//!
//! Layout of the input: byte 0 picks the target size (`None` when even, else
//! `(1 + b % 8, 1 + (b >> 4) % 8)`); then records `[kind][len lo][len hi][len bytes]`, where
//! `kind % 8` is the entry kind (see `Entry`) and `(kind >> 3) % 3` the class folder `c0`..`c2`.
#![no_main]

use std::path::{Path, PathBuf};

use infobound_data::readers::ImageFolder;
use libfuzzer_sys::fuzz_target;

fn scratch() -> PathBuf {
    std::env::temp_dir().join(format!(
        "infobound-fuzz-image-folder-{}",
        std::process::id()
    ))
}

/// Builds the folder under `root` from `records`; returns nothing, every error is ignored (an
/// entry that cannot be made is just not there).
fn build(root: &Path, mut records: &[u8]) {
    let mut count = 0usize;
    let mut last_file: Option<PathBuf> = None;
    while let [kind, lo, hi, rest @ ..] = records {
        let len = usize::from(u16::from_le_bytes([*lo, *hi])).min(rest.len());
        let (bytes, tail) = rest.split_at(len);
        records = tail;
        let class = root.join(format!("c{}", (kind >> 3) % 3));
        let _ = std::fs::create_dir_all(&class);
        let path = class.join(format!("{count:03}.png"));
        count += 1;
        let _ = match kind % 8 {
            // A file with these bytes.
            0..=2 => std::fs::write(&path, bytes).map(|()| last_file = Some(path.clone())),
            // A zero-byte file.
            3 => std::fs::write(&path, []),
            // A symlink to the previous file (or to nothing when there is none).
            4 => std::os::unix::fs::symlink(
                last_file
                    .clone()
                    .unwrap_or_else(|| root.join("missing.png")),
                &path,
            ),
            // A dangling symlink.
            5 => std::os::unix::fs::symlink(root.join("missing.png"), &path),
            // A symlink to itself (a loop) and one to the class folder.
            6 => std::os::unix::fs::symlink(&path, &path).and_then(|()| {
                std::os::unix::fs::symlink(&class, class.join(format!("{count:03}d.png")))
            }),
            // A folder named like an image.
            _ => std::fs::create_dir(&path),
        };
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&size_byte, records)) = data.split_first() else {
        return;
    };
    let root = scratch();
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("scratch folder");
    build(&root, records);
    let target = (size_byte % 2 == 1).then(|| {
        (
            1 + usize::from(size_byte % 8),
            1 + usize::from((size_byte >> 4) % 8),
        )
    });
    if let Ok(folder) = ImageFolder::open(&root, target) {
        let _ = folder.load_all();
        let _ = folder.load(&[usize::MAX]);
    }
});
