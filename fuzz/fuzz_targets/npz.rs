//! Arbitrary bytes as an `.npz` archive: every entry's header and data are read as the dtypes
//! the dataset readers use. Deflate bombs are bounded by the 1032:1 ratio check.
#![no_main]

use std::io::Cursor;
use std::path::Path;

use infobound_data::readers::NpzArchive;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let len = data.len() as u64;
    let Ok(mut archive) = NpzArchive::from_reader(Cursor::new(data), len, Path::new("fuzz.npz"))
    else {
        return;
    };
    for key in archive.keys() {
        let _ = archive.header(&key);
        let _ = archive.read::<u8>(&key);
        let _ = archive.read::<i64>(&key);
        let _ = archive.read::<f64>(&key);
    }
});
