//! The discrete SAP score matrix against scikit-learn's `LinearSVC(C=0.01,
//! class_weight="balanced")` (fixture written by `disentanglement_svm_reference.py`), for both of
//! our solvers.

use infobound_data::FactorMatrix;
use infobound_metrics::{CodeMatrix, SapConfig, SvmSolver, sap_discrete};
use serde_json::Value;

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

fn factor_matrix(v: &Value) -> FactorMatrix {
    let rows = matrix(v);
    FactorMatrix::new(
        rows[0].len(),
        rows.iter().flatten().map(|&x| x as usize).collect(),
    )
    .unwrap()
}

#[test]
fn sap_discrete_score_matrix_matches_linear_svc() {
    let reference: Value =
        serde_json::from_str(include_str!("disentanglement_svm_reference.json")).unwrap();
    let train_codes = CodeMatrix::from_rows(&matrix(&reference["train_codes"])).unwrap();
    let test_codes = CodeMatrix::from_rows(&matrix(&reference["test_codes"])).unwrap();
    let train_factors = factor_matrix(&reference["train_factors"]);
    let test_factors = factor_matrix(&reference["test_factors"]);
    let expected = matrix(&reference["score_matrix[code][factor]"]);
    for solver in [SvmSolver::Newton, SvmSolver::DualCoordinateDescent] {
        let config = SapConfig {
            svm_solver: solver,
            ..SapConfig::default()
        };
        let result = sap_discrete(
            &train_codes,
            &train_factors,
            &test_codes,
            &test_factors,
            &config,
        )
        .unwrap();
        for (i, row) in expected.iter().enumerate() {
            for (k, &want) in row.iter().enumerate() {
                let got = result.score_matrix[i][k];
                // Solvers stop at a tolerance, so a test point next to a decision boundary may
                // flip: allow one of the 400 test points.
                assert!(
                    (got - want).abs() <= 1.0 / 400.0 + 1e-12,
                    "{solver:?}: accuracy[{i}][{k}] = {got}, LinearSVC {want}"
                );
            }
        }
    }
}
