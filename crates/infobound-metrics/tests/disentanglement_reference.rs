//! Reproduces reference/disentanglement_metrics.json (an independent NumPy
//! implementation of disentanglement_lib's definitions) to 1e-9, and D/C to 1e-12.

use std::path::PathBuf;

use infobound_data::FactorMatrix;
use infobound_metrics::{
    CodeMatrix, MigConfig, ModularityConfig, SapConfig, dci_from_importance, discretize_codes,
    mig_discrete, modularity, sap_continuous,
};
use serde_json::Value;

struct Case {
    raw: Value,
    codes: CodeMatrix,
    factors: FactorMatrix,
}

/// The reference cases from `INFOBOUND_REFERENCE_DIR` or the repository's `reference/` copy;
/// a missing file fails the test.
fn cases() -> Vec<Case> {
    let dir = std::env::var_os("INFOBOUND_REFERENCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../reference"));
    let path = dir.join("disentanglement_metrics.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reference file {} is missing ({e})", path.display()));
    let all: Vec<Value> = serde_json::from_str(&text).expect("valid reference JSON");
    all.into_iter()
        .map(|raw| {
            let codes = CodeMatrix::from_rows(&matrix(&raw["codes"])).unwrap();
            let rows = &raw["factors"].as_array().unwrap();
            let num_factors = rows[0].as_array().unwrap().len();
            let values = rows
                .iter()
                .flat_map(|r| {
                    r.as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_u64().unwrap() as usize)
                })
                .collect();
            let factors = FactorMatrix::new(num_factors, values).unwrap();
            Case {
                raw,
                codes,
                factors,
            }
        })
        .collect()
}

fn matrix(v: &Value) -> Vec<Vec<f64>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect()
}

fn close(actual: f64, expected: f64, tol: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= tol * expected.abs().max(1.0),
        "{what}: {actual} vs reference {expected}"
    );
}

#[test]
fn discretised_codes_match_numpy_histogram_and_digitize() {
    let cases = cases();
    for case in cases {
        let bins = case.raw["num_bins"].as_u64().unwrap() as usize;
        let discrete = discretize_codes(&case.codes, bins).unwrap();
        let expected = case.raw["discretized_codes"].as_array().unwrap();
        for (i, row) in expected.iter().enumerate() {
            for (j, v) in row.as_array().unwrap().iter().enumerate() {
                assert_eq!(
                    discrete[j][i] as u64,
                    v.as_u64().unwrap(),
                    "sample {i}, code {j}"
                );
            }
        }
    }
}

#[test]
fn mutual_information_and_mig_match_reference() {
    let cases = cases();
    for case in cases {
        let config = MigConfig {
            num_bins: case.raw["num_bins"].as_u64().unwrap() as usize,
            ..MigConfig::default()
        };
        let result = mig_discrete(&case.codes, &case.factors, &config).unwrap();
        let expected = matrix(&case.raw["mutual_information_nats[code][factor]"]);
        for (i, row) in expected.iter().enumerate() {
            for (k, &v) in row.iter().enumerate() {
                close(result.mutual_information[i][k], v, 1e-9, "MI");
            }
        }
        close(result.score, case.raw["mig"].as_f64().unwrap(), 1e-9, "MIG");
    }
}

#[test]
fn sap_continuous_matches_reference() {
    let cases = cases();
    for case in cases {
        let result = sap_continuous(&case.codes, &case.factors, &SapConfig::default()).unwrap();
        let expected = matrix(&case.raw["sap_continuous_matrix[code][factor]"]);
        for (i, row) in expected.iter().enumerate() {
            for (k, &v) in row.iter().enumerate() {
                close(result.score_matrix[i][k], v, 1e-9, "SAP matrix");
            }
        }
        close(
            result.score,
            case.raw["sap_continuous"].as_f64().unwrap(),
            1e-9,
            "SAP",
        );
    }
}

#[test]
fn modularity_matches_reference() {
    let cases = cases();
    for case in cases {
        let config = ModularityConfig {
            num_bins: case.raw["num_bins"].as_u64().unwrap() as usize,
            ..ModularityConfig::default()
        };
        let result = modularity(&case.codes, &case.factors, &config).unwrap();
        close(
            result.score,
            case.raw["modularity"].as_f64().unwrap(),
            1e-9,
            "modularity",
        );
    }
}

#[test]
fn dci_from_importance_matches_reference() {
    let cases = cases();
    for case in cases {
        let importance = matrix(&case.raw["dci_importance_matrix[code][factor]"]);
        let scores = dci_from_importance(&importance).unwrap();
        close(
            scores.disentanglement,
            case.raw["dci_disentanglement"].as_f64().unwrap(),
            1e-12,
            "D",
        );
        close(
            scores.completeness,
            case.raw["dci_completeness"].as_f64().unwrap(),
            1e-12,
            "C",
        );
    }
}
