"""Every bad input raises ValueError with the Rust message; nothing crashes the interpreter."""

import numpy as np
import pytest

import infobound

RNG = np.random.default_rng(0)
CODES = RNG.standard_normal((60, 3))
FACTORS = np.stack([np.arange(60) % 3, (np.arange(60) // 3) % 2], axis=1)
LABELS = np.arange(60) % 3


def codes_and_factors(codes, factors, **kw):
    return [
        lambda: infobound.mig(codes, factors, **kw),
        lambda: infobound.sap(codes, factors, **kw),
        lambda: infobound.modularity(codes, factors, **kw),
        lambda: infobound.mig_continuous(codes, np.zeros(np.shape(codes)), factors, **kw),
        lambda: infobound.dci(codes, factors, CODES, FACTORS, **kw),
        lambda: infobound.dci(CODES, FACTORS, codes, factors, **kw),
        lambda: infobound.dci_lasso(codes, factors, CODES, FACTORS, **kw),
        lambda: infobound.sap_discrete(codes, factors, CODES, FACTORS, **kw),
        lambda: infobound.explicitness(codes, factors, CODES, FACTORS, **kw),
        lambda: infobound.snc(codes, factors, CODES, FACTORS),
    ]


def with_nan():
    c = CODES.copy()
    c[7, 1] = np.nan
    return c


def with_inf():
    c = CODES.copy()
    c[3, 0] = np.inf
    return c


BAD_CODES = {
    "nan": (with_nan(), "row 7, column 1"),
    "inf": (with_inf(), "row 3, column 0"),
    "one-dimensional": (CODES[:, 0], "2-D"),
    "empty rows": (np.zeros((0, 3)), "empty"),
    "no columns": (np.zeros((60, 0)), "at least one column"),
    "strings": (np.array([["a"] * 3] * 60), "real-valued"),
}


@pytest.mark.parametrize("name", BAD_CODES)
def test_bad_codes_raise_value_error(name):
    codes, message = BAD_CODES[name]
    for call in codes_and_factors(codes, FACTORS):
        with pytest.raises(ValueError, match=message):
            call()


BAD_FACTORS = {
    "shape mismatch": (FACTORS[:50], "mismatch|rows"),
    "constant factor": (np.stack([FACTORS[:, 0], np.zeros(60, int)], axis=1), "single value|constant|one value"),
    "negative label": (FACTORS - 1, "non-negative"),
    "float labels": (FACTORS.astype(float), "integer"),
    "empty": (np.zeros((0, 2), int), "empty|mismatch|rows"),
    "three-dimensional": (FACTORS[:, :, None], "2-D"),
}


@pytest.mark.parametrize("name", BAD_FACTORS)
def test_bad_factors_raise_value_error(name):
    factors, message = BAD_FACTORS[name]
    for call in codes_and_factors(CODES, factors):
        with pytest.raises(ValueError, match=message):
            call()


def test_unknown_or_ill_typed_config_raises_value_error():
    with pytest.raises(ValueError, match="unknown field `num_bin`"):
        infobound.mig(CODES, FACTORS, num_bin=10)
    with pytest.raises(ValueError, match="MigConfig"):
        infobound.mig(CODES, FACTORS, num_bins="ten")
    with pytest.raises(ValueError, match="num_bins|bins"):
        infobound.mig(CODES, FACTORS, num_bins=0)
    with pytest.raises(ValueError, match="DciConfig"):
        infobound.dci(CODES, FACTORS, CODES, FACTORS, split_search="bogus")
    with pytest.raises(ValueError, match="alpha"):
        infobound.dci_lasso(CODES, FACTORS, CODES, FACTORS, alpha=-1.0)


def test_feature_and_probe_metrics_reject_bad_input():
    calls = [
        lambda: infobound.vendi(with_nan()),
        lambda: infobound.vendi(np.zeros((0, 3))),
        lambda: infobound.fid(CODES, RNG.standard_normal((60, 4))),
        lambda: infobound.fid(with_inf(), CODES),
        lambda: infobound.knn_accuracy(CODES, LABELS[:50], CODES, LABELS),
        lambda: infobound.knn_accuracy(CODES, LABELS, CODES, LABELS, k=0),
        lambda: infobound.knn_accuracy(CODES, -LABELS - 1, CODES, LABELS),
        lambda: infobound.knn_accuracy(CODES, LABELS.astype(float), CODES, LABELS),
        lambda: infobound.knn_accuracy(CODES, LABELS[:, None], CODES, LABELS),
        lambda: infobound.linear_probe(CODES, LABELS, RNG.standard_normal((60, 2)), LABELS),
        lambda: infobound.linear_probe(CODES, np.zeros(60, int), CODES, LABELS),
        lambda: infobound.linear_probe(with_nan(), LABELS, CODES, LABELS),
    ]
    for i, call in enumerate(calls):
        with pytest.raises(ValueError):
            call()
            pytest.fail(f"call {i} did not raise")


def test_a_good_call_still_works_after_errors():
    result = infobound.mig(CODES, FACTORS)
    assert 0.0 <= result.score <= 1.0
    assert result["score"] == result.score
