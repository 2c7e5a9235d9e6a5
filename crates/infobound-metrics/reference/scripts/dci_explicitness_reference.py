"""Writes reference/dci_explicitness_sklearn.json: disentanglement_lib's DCI (gradient-boosted
trees) and explicitness, recomputed with scikit-learn on synthetic codes.

The metric code is a reimplementation, in a few lines, of google-research/disentanglement_lib @
86a644d4ed35c771560dc3360756363d35477357:
- `disentanglement_lib/evaluation/metrics/dci.py`: `compute_importance_gbt` (one
  `GradientBoostingClassifier()` per factor, importances = `abs(feature_importances_)`, train and
  test accuracy), `disentanglement`, `completeness` (scipy entropy of importance + 1e-11);
- `disentanglement_lib/evaluation/metrics/modularity_explicitness.py`:
  `compute_modularity_explicitness` (codes standardised with the training mean and population
  standard deviation, `utils.normalize_data`) and `explicitness_per_factor` (`LogisticRegression()`
  with defaults, `predict_proba`, `roc_auc_score` against `MultiLabelBinarizer` one-hot labels,
  macro average); scores averaged over factors.
The upstream code is not copied into this repository.

disentanglement_lib leaves `random_state=None`; scikit-learn then breaks exact ties between
equally good splits on different codes by a random feature order. Each case is therefore fitted
with `random_state` = 0..4 and every run is recorded, so a test can tell exact agreement (all
seeds equal) from agreement up to tie-breaking (the seeds' spread).

Run from the repository root: python reference/scripts/dci_explicitness_reference.py
(venv: pip install scikit-learn==1.9.1 numpy).
"""
import json
import os
import sys

import numpy as np
import scipy
import scipy.stats
import sklearn
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import MultiLabelBinarizer

SEEDS = [0, 1, 2, 3, 4]
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "dci_explicitness_sklearn.json")


# ---- disentanglement_lib dci.py, reimplemented (arrays are [codes or factors][points]) ----
def compute_importance_gbt(x_train, y_train, x_test, y_test, random_state):
    num_factors, num_codes = y_train.shape[0], x_train.shape[0]
    importance_matrix = np.zeros([num_codes, num_factors], dtype=np.float64)
    train_acc, test_acc = [], []
    for i in range(num_factors):
        model = GradientBoostingClassifier(random_state=random_state)
        model.fit(x_train.T, y_train[i, :])
        importance_matrix[:, i] = np.abs(model.feature_importances_)
        train_acc.append(np.mean(model.predict(x_train.T) == y_train[i, :]))
        test_acc.append(np.mean(model.predict(x_test.T) == y_test[i, :]))
    return importance_matrix, train_acc, test_acc


def disentanglement(importance_matrix):
    per_code = 1.0 - scipy.stats.entropy(importance_matrix.T + 1e-11, base=importance_matrix.shape[1])
    if importance_matrix.sum() == 0.0:
        importance_matrix = np.ones_like(importance_matrix)
    code_importance = importance_matrix.sum(axis=1) / importance_matrix.sum()
    return float(np.sum(per_code * code_importance))


def completeness(importance_matrix):
    per_factor = 1.0 - scipy.stats.entropy(importance_matrix + 1e-11, base=importance_matrix.shape[0])
    if importance_matrix.sum() == 0.0:
        importance_matrix = np.ones_like(importance_matrix)
    factor_importance = importance_matrix.sum(axis=0) / importance_matrix.sum()
    return float(np.sum(per_factor * factor_importance))


# ---- disentanglement_lib modularity_explicitness.py, reimplemented ----
def normalize_data(data, mean=None, stddev=None):
    if mean is None:
        mean = np.mean(data, axis=1)
    if stddev is None:
        stddev = np.std(data, axis=1)
    return (data - mean[:, np.newaxis]) / stddev[:, np.newaxis], mean, stddev


def explicitness_per_factor(mus_train, y_train, mus_test, y_test):
    x_train, x_test = mus_train.T, mus_test.T
    clf = LogisticRegression().fit(x_train, y_train)
    mlb = MultiLabelBinarizer()
    roc_train = roc_auc_score(mlb.fit_transform(np.expand_dims(y_train, 1)), clf.predict_proba(x_train))
    roc_test = roc_auc_score(mlb.fit_transform(np.expand_dims(y_test, 1)), clf.predict_proba(x_test))
    return float(roc_train), float(roc_test)


def explicitness(mus_train, ys_train, mus_test, ys_test):
    train_norm, mean, std = normalize_data(mus_train)
    test_norm, _, _ = normalize_data(mus_test, mean, std)
    per = [explicitness_per_factor(train_norm, ys_train[i], test_norm, ys_test[i])
           for i in range(ys_train.shape[0])]
    return {
        "per_factor_train": [p[0] for p in per],
        "per_factor_test": [p[1] for p in per],
        "train_score": float(np.mean([p[0] for p in per])),
        "test_score": float(np.mean([p[1] for p in per])),
    }


# ---- cases (rows = points, as stored) ----
def draw(rng, n, sizes, encode):
    factors = np.stack([rng.integers(0, s, n) for s in sizes], axis=1)
    return encode(factors, rng), factors


def continuous(factors, rng):
    """Noisy, partly nonlinear and mixed codes of five factors plus three nuisance codes."""
    v = factors / (np.array(SIZES_A) - 1.0)
    n = len(factors)
    noise = lambda s: s * rng.standard_normal(n)
    codes = [
        v[:, 0] + noise(0.15),
        np.sin(2.5 * v[:, 1]) + noise(0.1),
        v[:, 2] + 0.3 * v[:, 3] + noise(0.1),
        np.exp(v[:, 3]) + noise(0.2),
        v[:, 4] - 0.5 * v[:, 0] + noise(0.3),
        noise(1.0),
        noise(1.0),
        0.2 * v[:, 2] + noise(0.5),
    ]
    return np.stack(codes, axis=1)


def offset_scale(factors, rng):
    """Codes around 1000 with small noise: float32 rounding merges close values, exercising
    scikit-learn's float32 features and FEATURE_THRESHOLD."""
    v = factors / (np.array(SIZES_B) - 1.0)
    n = len(factors)
    codes = [
        1000.0 + v[:, 0] + 0.05 * rng.standard_normal(n),
        -300.0 + 0.01 * v[:, 1] + 0.002 * rng.standard_normal(n),
        v[:, 2] * 1e-3 + 1e-4 * rng.standard_normal(n),
        rng.standard_normal(n),
        np.round(v[:, 0] * 4 + rng.standard_normal(n), 1),
    ]
    return np.stack(codes, axis=1)


def duplicated(factors, rng):
    """Code 1 is an increasing function of code 0 and code 3 is discrete: different codes induce
    identical partitions, so scikit-learn's random feature order breaks exact ties."""
    v = factors / (np.array(SIZES_C) - 1.0)
    n = len(factors)
    c0 = v[:, 0] + 0.2 * rng.standard_normal(n)
    codes = [
        c0,
        2.0 * c0 + 1.0,
        v[:, 1] + 0.2 * rng.standard_normal(n),
        rng.integers(0, 3, n).astype(np.float64),
    ]
    return np.stack(codes, axis=1)


SIZES_A = [3, 6, 10, 4, 2]
SIZES_B = [4, 3, 5]
SIZES_C = [3, 4]
CASES = [
    ("continuous", SIZES_A, continuous, 1000, 500, 11),
    ("offset_scale", SIZES_B, offset_scale, 800, 400, 12),
    ("duplicated_codes", SIZES_C, duplicated, 600, 300, 13),
]


def main():
    out = {
        "generator": "reference/scripts/dci_explicitness_reference.py",
        "disentanglement_lib_commit": "86a644d4ed35c771560dc3360756363d35477357",
        "sklearn_version": sklearn.__version__,
        "numpy_version": np.__version__,
        "scipy_version": scipy.__version__,
        "seeds": SEEDS,
        # Per-tree splitter seeds: RandomState(s).randint(0, RAND_R_MAX) drawn one at a time, as
        # each boosting tree draws its own (sklearn/tree/_splitter.pyx, RAND_R_MAX = 2^31 - 1).
        "numpy_legacy_randint_2147483647": {
            str(s): [int(r.randint(0, 2147483647)) for r in [np.random.RandomState(s)] for _ in range(700)]
            for s in [0, 1, 4294967295]
        },
        "cases": [],
    }
    for name, sizes, encode, n_train, n_test, seed in CASES:
        rng = np.random.default_rng(seed)
        train_codes, train_factors = draw(rng, n_train, sizes, encode)
        test_codes, test_factors = draw(rng, n_test, sizes, encode)
        runs = []
        for s in SEEDS:
            imp, train_acc, test_acc = compute_importance_gbt(
                train_codes.T, train_factors.T, test_codes.T, test_factors.T, s)
            runs.append({
                "random_state": s,
                "importance_matrix": imp.tolist(),
                "disentanglement": disentanglement(imp),
                "completeness": completeness(imp),
                "train_accuracy": [float(a) for a in train_acc],
                "test_accuracy": [float(a) for a in test_acc],
            })
            print(name, s, runs[-1]["disentanglement"], runs[-1]["completeness"], file=sys.stderr)
        spread = float(np.max(np.abs(np.array([r["importance_matrix"] for r in runs])
                                     - np.array(runs[0]["importance_matrix"]))))
        case = {
            "name": name,
            "factor_sizes": sizes,
            "train_codes": train_codes.tolist(),
            "train_factors": train_factors.tolist(),
            "test_codes": test_codes.tolist(),
            "test_factors": test_factors.tolist(),
            "dci_runs": runs,
            "dci_max_importance_spread_over_seeds": spread,
            "explicitness": explicitness(train_codes.T, train_factors.T, test_codes.T, test_factors.T),
        }
        print(name, "spread", spread, "explicitness", case["explicitness"]["train_score"],
              case["explicitness"]["test_score"], file=sys.stderr)
        out["cases"].append(case)
    tmp = OUT + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f)
    os.replace(tmp, OUT)


if __name__ == "__main__":
    main()
