//! Arbitrary bytes through the `.npy` parser for every element type: must return `Ok` or a
//! typed error, never panic or allocate beyond the input.
#![no_main]

use std::path::Path;

use infobound_data::readers::npy::parse_npy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.npy");
    let _ = parse_npy::<u8>(data, path);
    let _ = parse_npy::<bool>(data, path);
    let _ = parse_npy::<i16>(data, path);
    let _ = parse_npy::<u32>(data, path);
    let _ = parse_npy::<i64>(data, path);
    let _ = parse_npy::<f32>(data, path);
    let _ = parse_npy::<f64>(data, path);
});
