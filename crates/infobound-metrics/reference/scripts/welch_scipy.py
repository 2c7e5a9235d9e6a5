"""Writes crates/infobound-metrics/reference/welch_t_test_scipy.json: Welch's unequal-variance
t-test (`scipy.stats.ttest_ind(a, b, equal_var=False)`, two-sided) on fixed samples, the
reference for `infobound_metrics::welch_t_test` (tests/welch_scipy_reference.rs).

Each case records the samples and scipy's t statistic, Welch–Satterthwaite degrees of freedom
(`result.df`) and two-sided p-value, plus mean(a) - mean(b). The samples are drawn from a
seeded NumPy generator (seed 20261204, our choice) or written out, so the file is reproducible.

Run from anywhere: python crates/infobound-metrics/reference/scripts/welch_scipy.py
(venv: pip install numpy scipy; recorded with scipy 1.17.1).
"""
import json
import os

import numpy as np
import scipy
import scipy.stats

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "welch_t_test_scipy.json")


def cases():
    rng = np.random.default_rng(20261204)
    yield "two_each", [0.61, 0.64], [0.52, 0.58]
    yield "three_seeds", [0.612, 0.645, 0.661], [0.523, 0.551, 0.509]
    yield "unequal_sizes_and_variances", rng.normal(0.5, 0.02, 5), rng.normal(0.47, 0.2, 12)
    yield "large_samples", rng.normal(10.0, 3.0, 30), rng.normal(9.0, 0.5, 25)
    yield "large_t", rng.normal(1.0, 1e-4, 8), rng.normal(0.0, 1e-4, 6)
    yield "tiny_t", [1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0001]
    yield "one_sample_constant", [0.25, 0.25, 0.25], rng.normal(0.3, 0.05, 4)
    yield "two_versus_thirty", [3.0, 3.5], rng.normal(2.0, 1.0, 30)
    yield "negative_difference", rng.normal(-1.0, 0.3, 7), rng.normal(1.0, 0.8, 3)


def main():
    out = []
    for name, a, b in cases():
        a = [float(v) for v in a]
        b = [float(v) for v in b]
        result = scipy.stats.ttest_ind(a, b, equal_var=False)
        out.append(
            {
                "name": name,
                "a": a,
                "b": b,
                "mean_difference": float(np.mean(a) - np.mean(b)),
                "t": float(result.statistic),
                "degrees_of_freedom": float(result.df),
                "p_value": float(result.pvalue),
            }
        )
    with open(OUT, "w") as f:
        json.dump(
            {
                "source": "scipy.stats.ttest_ind(a, b, equal_var=False), two-sided",
                "scipy": scipy.__version__,
                "numpy": np.__version__,
                "script": "crates/infobound-metrics/reference/scripts/welch_scipy.py",
                "cases": out,
            },
            f,
            indent=1,
        )
        f.write("\n")


if __name__ == "__main__":
    main()
