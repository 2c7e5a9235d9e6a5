"""The Python results equal the reference vectors the Rust crate is tested on
(`reference/disentanglement_metrics.json`, `reference/vendi.json`, and scikit-learn's DCI and
explicitness in `crates/infobound-metrics/reference/dci_explicitness_sklearn.json`), with the
tolerances of the Rust tests."""

import numpy as np
import pytest

import infobound


def close(actual, expected, tol):
    actual = np.asarray(actual, dtype=float)
    expected = np.asarray(expected, dtype=float)
    assert actual.shape == expected.shape
    assert np.all(np.abs(actual - expected) <= tol * np.maximum(np.abs(expected), 1.0)), (
        actual,
        expected,
    )


def test_mig_sap_modularity_match_the_reference(disentanglement_reference):
    for case in disentanglement_reference:
        codes = np.array(case["codes"])
        factors = np.array(case["factors"])
        mig = infobound.mig(codes, factors, num_bins=case["num_bins"])
        close(mig.score, case["mig"], 1e-9)
        close(mig.mutual_information, case["mutual_information_nats[code][factor]"], 1e-9)
        assert mig.metric_version == "infobound-mig-discrete/1"
        assert len(mig.per_factor_gap) == len(case["factor_sizes"])
        sap = infobound.sap(codes, factors)
        close(sap.score, case["sap_continuous"], 1e-9)
        close(sap.score_matrix, case["sap_continuous_matrix[code][factor]"], 1e-9)
        modularity = infobound.modularity(codes, factors, num_bins=case["num_bins"])
        close(modularity.score, case["modularity"], 1e-9)


@pytest.mark.parametrize(
    "convert",
    [
        lambda c, f: (np.asfortranarray(c), np.asfortranarray(f)),
        lambda c, f: (c, f.astype(np.uint8)),
        lambda c, f: (c, f.astype(np.int32)),
        lambda c, f: (c[:, ::-1].copy()[:, ::-1], f.astype(np.uint16)),
        lambda c, f: (c.tolist(), f.tolist()),
    ],
)
def test_memory_order_and_integer_dtype_do_not_change_results(disentanglement_reference, convert):
    case = disentanglement_reference[0]
    codes = np.array(case["codes"])
    factors = np.array(case["factors"])
    base = infobound.mig(codes, factors)
    c, f = convert(codes, factors)
    assert infobound.mig(c, f) == base
    assert infobound.sap(c, f) == infobound.sap(codes, factors)


def test_float32_codes_equal_their_float64_cast(disentanglement_reference):
    case = disentanglement_reference[0]
    codes32 = np.array(case["codes"], dtype=np.float32)
    factors = np.array(case["factors"])
    assert infobound.mig(codes32, factors) == infobound.mig(codes32.astype(np.float64), factors)
    assert infobound.sap(codes32, factors) == infobound.sap(codes32.astype(np.float64), factors)


def test_vendi_matches_the_reference(vendi_reference):
    for case in vendi_reference:
        x = np.array(case["x"])
        result = infobound.vendi(x)
        close(result.score, case["vendi_q1"], 1e-9)
        assert result.metric_version.startswith("infobound-vendi/")
        close(infobound.vendi(x, order={"q": 2.0}).score, case["vendi_q2"], 1e-9)


def has_repeated_float32_values(codes):
    c = np.asarray(codes, dtype=np.float32)
    return any(len(np.unique(c[:, j])) < c.shape[0] for j in range(c.shape[1]))


def test_dci_matches_scikit_learn_for_every_recorded_random_state(sklearn_reference):
    for case in sklearn_reference["cases"]:
        arrays = [
            np.array(case[k]) for k in ("train_codes", "train_factors", "test_codes", "test_factors")
        ]
        # The Rust test's tolerances: 1e-12 on distinct float32 values, 1e-3 where ties make
        # scikit-learn's introsort order matter (see infobound-metrics/tests/sklearn_reference.rs).
        tol = 1e-3 if has_repeated_float32_values(arrays[0]) else 1e-12
        for run in case["dci_runs"]:
            ours = infobound.dci(*arrays, random_state=run["random_state"])
            gap = np.max(np.abs(np.array(ours.importance_matrix) - np.array(run["importance_matrix"])))
            assert gap < tol, (case["name"], run["random_state"], gap)
            assert abs(ours.disentanglement - run["disentanglement"]) < tol
            assert abs(ours.completeness - run["completeness"]) < tol
            assert ours.train_accuracy == run["train_accuracy"]
            assert ours.test_accuracy == run["test_accuracy"]
            assert ours.metric_version == "infobound-dci-gbt-exact/2"
            assert ours.config["random_state"] == run["random_state"]


def test_explicitness_matches_disentanglement_lib(sklearn_reference):
    for case in sklearn_reference["cases"]:
        arrays = [
            np.array(case[k]) for k in ("train_codes", "train_factors", "test_codes", "test_factors")
        ]
        ours = infobound.explicitness(*arrays)
        want = case["explicitness"]
        assert np.max(np.abs(np.array(ours.per_factor_train) - want["per_factor_train"])) < 1e-3
        assert np.max(np.abs(np.array(ours.per_factor_test) - want["per_factor_test"])) < 1e-3
