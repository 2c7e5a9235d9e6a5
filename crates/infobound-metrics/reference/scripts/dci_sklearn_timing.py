"""Times disentanglement_lib's DCI (`compute_importance_gbt` of
google-research/disentanglement_lib @ 86a644d4ed35c771560dc3360756363d35477357,
`disentanglement_lib/evaluation/metrics/dci.py`, reimplemented in
`dci_explicitness_reference.py`) on the workload of the criterion case
`disentanglement_10000x10/dci_exact` (crates/infobound-metrics/benches/metrics.rs): 10,000 training
and 5,000 test points, factors of sizes 3, 6, 40, 32, 32 (dSprites-like), codes = factor / (size − 1)
+ 0.05·N(0, 1) for the five factors and five N(0, 1) nuisance codes. The data are drawn with numpy,
not the bench's ChaCha8 stream: same distribution and shape, not the same numbers.

Prints one JSON record in the format of ../shared/bench/torch_reference.py
(`bench`, `case`, `ms_median`, ...). Run: python reference/scripts/dci_sklearn_timing.py [repeats]
"""
import json
import sys
import time

import numpy as np
import sklearn

from dci_explicitness_reference import compute_importance_gbt, completeness, disentanglement

SIZES = [3, 6, 40, 32, 32]


def sample(rng, n):
    factors = np.stack([rng.integers(0, s, n) for s in SIZES], axis=1)
    signal = factors / (np.array(SIZES) - 1.0) + 0.05 * rng.standard_normal((n, len(SIZES)))
    return np.concatenate([signal, rng.standard_normal((n, 5))], axis=1), factors


def main():
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    rng = np.random.default_rng(1)
    train_codes, train_factors = sample(rng, 10_000)
    test_codes, test_factors = sample(rng, 5_000)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        imp, train_acc, test_acc = compute_importance_gbt(
            train_codes.T, train_factors.T, test_codes.T, test_factors.T, 0)
        times.append(1000.0 * (time.perf_counter() - start))
    print(json.dumps({
        "bench": "dci", "case": "N10000_L10_K5_sklearn_gbt", "ours": "disentanglement_10000x10/dci_exact",
        "sklearn_version": sklearn.__version__, "repeats": repeats,
        "ms_median": float(np.median(times)), "ms_all": times,
        "disentanglement": disentanglement(imp), "completeness": completeness(imp),
        "informativeness_test": float(np.mean(test_acc)),
    }))


if __name__ == "__main__":
    main()
