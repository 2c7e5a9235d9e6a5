//! Arbitrary text as a run configuration with `--set` overrides, as `infobound train --config F
//! --set K=V` reads them: lines starting with `--set ` are overrides, the rest is the TOML file;
//! then `RunConfig::from_value` (overrides, family, validation) and `apply_override` alone.
#![no_main]

use infobound_train::{RunConfig, apply_override};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (overrides, file): (Vec<&str>, Vec<&str>) =
        text.lines().partition(|l| l.starts_with("--set "));
    let overrides: Vec<String> = overrides
        .iter()
        .map(|l| l["--set ".len()..].to_string())
        .collect();
    let Ok(value) = toml::from_str::<toml::Value>(&file.join("\n")) else {
        return;
    };
    let mut alone = value.clone();
    for assignment in &overrides {
        let _ = apply_override(&mut alone, assignment);
    }
    if let Ok(config) = RunConfig::from_value(value, &overrides) {
        let _ = config.to_toml();
    }
});
