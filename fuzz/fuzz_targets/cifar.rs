//! Arbitrary bytes as CIFAR-10 and CIFAR-100 binary batches.
#![no_main]

use std::path::Path;

use infobound_data::readers::{Cifar100Label, parse_cifar10, parse_cifar100};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.bin");
    let _ = parse_cifar10(data, path);
    let _ = parse_cifar100(data, path, Cifar100Label::Coarse);
    let _ = parse_cifar100(data, path, Cifar100Label::Fine);
});
