//! Welch's t-test against SciPy: `reference/welch_t_test_scipy.json`, written by
//! `reference/scripts/welch_scipy.py` with `scipy.stats.ttest_ind(a, b, equal_var=False)`
//! (scipy 1.17.1). t, the degrees of freedom and the two-sided p-value agree to 1e-9 relative
//! (the same formulas in f64; only the summation order of the means differs, and the
//! incomplete beta function is evaluated by a different algorithm than SciPy's Boost one).

use infobound_metrics::welch_t_test;
use serde_json::Value;

fn reference() -> Value {
    serde_json::from_str(include_str!("../reference/welch_t_test_scipy.json"))
        .expect("reference JSON parses")
}

fn vector(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn assert_relative(name: &str, what: &str, got: f64, expected: f64, tolerance: f64) {
    let error = (got - expected).abs() / expected.abs().max(f64::MIN_POSITIVE);
    assert!(
        error <= tolerance,
        "{name}: {what} = {got:e}, scipy {expected:e} (relative error {error:e})"
    );
}

#[test]
fn welch_t_test_matches_scipy_stats_ttest_ind() {
    let reference = reference();
    let cases = reference["cases"].as_array().expect("cases");
    assert!(cases.len() >= 8, "the reference holds every case");
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let test = welch_t_test(&vector(&case["a"]), &vector(&case["b"]))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let expected = |key: &str| case[key].as_f64().expect("number");
        assert_relative(name, "t", test.t, expected("t"), 1e-9);
        assert_relative(
            name,
            "degrees of freedom",
            test.degrees_of_freedom,
            expected("degrees_of_freedom"),
            1e-9,
        );
        assert_relative(name, "p", test.p_value, expected("p_value"), 1e-9);
        assert_relative(
            name,
            "mean difference",
            test.mean_difference,
            expected("mean_difference"),
            1e-9,
        );
    }
}
