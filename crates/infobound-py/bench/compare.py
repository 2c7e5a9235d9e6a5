"""DCI / MIG / SAP from Python: infobound against NumPy / scikit-learn implementations of the same
definitions (disentanglement_lib's, re-written here with NumPy and scikit-learn; nothing copied),
on the same 10,000 × 10 codes with 5 factors.

    python crates/infobound-py/bench/compare.py [--repeat 3]

Prints a Markdown table of median wall-clock seconds and the scores (they must agree: the MIG and
SAP columns to 1e-9, DCI to the tie-breaking noted in infobound-metrics' README).
"""

import argparse
import statistics
import time

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.metrics import mutual_info_score

import infobound

N, D, SIZES = 10_000, 10, (3, 6, 40, 32, 32)


def data(seed):
    rng = np.random.default_rng(seed)
    factors = np.stack([rng.integers(0, s, N) for s in SIZES], axis=1)
    mixing = np.eye(D, len(SIZES)) + 0.2 * rng.standard_normal((D, len(SIZES)))
    codes = (factors / np.array(SIZES)) @ mixing.T + 0.1 * rng.standard_normal((N, D))
    return codes, factors


def numpy_mig(codes, factors, num_bins=20):
    """disentanglement_lib mig.py: histogram-discretised codes, sklearn mutual_info_score."""
    discrete = np.stack(
        [np.digitize(c, np.histogram(c, num_bins)[1][:-1]) for c in codes.T], axis=0
    )
    mi = np.array(
        [[mutual_info_score(f, z) for f in factors.T] for z in discrete]
    )
    entropy = np.array([mutual_info_score(f, f) for f in factors.T])
    top = np.sort(mi, axis=0)[::-1]
    return float(np.mean((top[0] - top[1]) / entropy))


def numpy_sap(codes, factors):
    """disentanglement_lib sap_score.py, continuous: R² of each code for each factor."""
    score = np.zeros((codes.shape[1], factors.shape[1]))
    for i, z in enumerate(codes.T):
        for j, f in enumerate(factors.T):
            cov = np.cov(z, f, ddof=1)
            score[i, j] = cov[0, 1] ** 2 / (cov[0, 0] * cov[1, 1]) if cov[0, 0] > 1e-12 else 0.0
    top = np.sort(score, axis=0)[::-1]
    return float(np.mean(top[0] - top[1]))


def sklearn_dci(train_codes, train_factors, test_codes, test_factors):
    """disentanglement_lib dci.py: one GradientBoostingClassifier() per factor."""
    importance = np.zeros((train_codes.shape[1], train_factors.shape[1]))
    for j in range(train_factors.shape[1]):
        model = GradientBoostingClassifier(random_state=0)
        model.fit(train_codes, train_factors[:, j])
        importance[:, j] = np.abs(model.feature_importances_)
    p = importance / np.maximum(importance.sum(axis=1, keepdims=True), 1e-11)
    h = -np.sum(p * np.log(np.maximum(p, 1e-11)), axis=1) / np.log(importance.shape[1])
    weights = importance.sum(axis=1) / importance.sum()
    return float(np.sum((1 - h) * weights))


def timed(fn, repeat):
    times, value = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    codes, factors = data(0)
    test_codes, test_factors = data(1)
    rows = [
        (
            "MIG (20 bins)",
            timed(lambda: infobound.mig(codes, factors).score, args.repeat),
            timed(lambda: numpy_mig(codes, factors), args.repeat),
        ),
        (
            "SAP (continuous)",
            timed(lambda: infobound.sap(codes, factors).score, args.repeat),
            timed(lambda: numpy_sap(codes, factors), args.repeat),
        ),
        (
            "DCI (GBT, D)",
            timed(
                lambda: infobound.dci(codes, factors, test_codes, test_factors).disentanglement,
                args.repeat,
            ),
            timed(
                lambda: sklearn_dci(codes, factors, test_codes, test_factors), 1
            ),
        ),
    ]
    print("| metric | infobound (s) | NumPy / scikit-learn (s) | ratio | infobound | reference |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, (ours_t, ours), (ref_t, ref) in rows:
        print(
            f"| {name} | {ours_t:.3f} | {ref_t:.3f} | {ref_t / ours_t:.1f}× | {ours:.6f} | {ref:.6f} |"
        )


if __name__ == "__main__":
    main()
