//! DCI's gradient-boosted trees against scikit-learn's `GradientBoostingClassifier` on codes with
//! at most 150 distinct values (fixture written by `disentanglement_gbt_reference.py`), where the
//! histogram split search ([`DciSplitSearch::Histogram`]) sees exactly scikit-learn's candidate
//! thresholds. (The exact search is checked in `sklearn_reference.rs`.)

use infobound_data::FactorMatrix;
use infobound_metrics::{CodeMatrix, DciConfig, DciResult, DciSplitSearch, dci};
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

fn vector(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
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

/// Our DCI with `max_depth` on the fixture, and the fixture's scikit-learn model of that depth.
fn run(max_depth: usize) -> (DciResult, Value) {
    let reference: Value =
        serde_json::from_str(include_str!("disentanglement_gbt_reference.json")).unwrap();
    let train_codes = CodeMatrix::from_rows(&matrix(&reference["train_codes"])).unwrap();
    let test_codes = CodeMatrix::from_rows(&matrix(&reference["test_codes"])).unwrap();
    let train_factors = factor_matrix(&reference["train_factors"]);
    let test_factors = factor_matrix(&reference["test_factors"]);
    let config = DciConfig {
        max_depth,
        split_search: DciSplitSearch::Histogram { max_bins: 256 },
        ..DciConfig::default()
    };
    let result = dci(
        &train_codes,
        &train_factors,
        &test_codes,
        &test_factors,
        &config,
    )
    .unwrap();
    let model = reference["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["max_depth"].as_u64() == Some(max_depth as u64))
        .unwrap()
        .clone();
    (result, model)
}

fn max_abs_difference(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    a.iter()
        .flatten()
        .zip(b.iter().flatten())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Accuracies are counts over the same n, so they agree up to the rounding of the division.
fn assert_close(got: &[f64], want: &[f64]) {
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-12, "accuracy {g} vs scikit-learn {w}");
    }
}

#[test]
fn boosted_stumps_match_scikit_learn_exactly() {
    let (result, model) = run(1);
    let expected = matrix(&model["importance_matrix[code][factor]"]);
    let gap = max_abs_difference(&result.importance_matrix, &expected);
    assert!(gap < 1e-9, "importances differ by {gap}");
    assert_close(&result.train_accuracy, &vector(&model["train_accuracy"]));
    assert_close(&result.test_accuracy, &vector(&model["test_accuracy"]));
}

#[test]
fn depth_three_trees_match_scikit_learn_up_to_tie_breaking() {
    // In small deep nodes several codes often isolate the same samples with the same gain;
    // scikit-learn breaks such ties by a random feature order, we by the lowest code index, so
    // importances move a little and a test prediction may flip.
    let (result, model) = run(3);
    let expected = matrix(&model["importance_matrix[code][factor]"]);
    let gap = max_abs_difference(&result.importance_matrix, &expected);
    assert!(gap < 0.02, "importances differ by {gap}");
    assert_close(&result.train_accuracy, &vector(&model["train_accuracy"]));
    for (got, want) in result
        .test_accuracy
        .iter()
        .zip(vector(&model["test_accuracy"]))
    {
        assert!(
            (got - want).abs() <= 3.0 / 150.0,
            "test accuracy {got} vs {want}"
        );
    }
}
