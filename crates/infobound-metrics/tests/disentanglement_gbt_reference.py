"""Writes disentanglement_gbt_reference.json: scikit-learn GradientBoostingClassifier (defaults:
100 stages, depth 3, learning rate 0.1, friedman_mse) on small codes whose columns take at most
~150 distinct values, so the Rust histogram trees see exactly scikit-learn's candidate splits.
Test codes reuse the training value grid, so test predictions do not depend on where between two
grid values a threshold sits. Run: python disentanglement_gbt_reference.py (scikit-learn, numpy)."""
import json

import numpy as np
import sklearn
from sklearn.ensemble import GradientBoostingClassifier

rng = np.random.default_rng(7)
n_train, n_test = 300, 150
sizes = [3, 2, 5]
grid = np.round(np.linspace(-2.0, 2.0, 150), 6)


def draw(n):
    factors = np.stack([rng.integers(0, s, n) for s in sizes], axis=1)
    signal = factors / (np.array(sizes) - 1) + 0.35 * rng.standard_normal((n, 3))
    codes = np.concatenate([signal, rng.standard_normal((n, 1))], axis=1)
    # Snap every value to the shared grid.
    idx = np.clip(np.searchsorted(grid, codes), 0, len(grid) - 1)
    return grid[idx], factors


train_codes, train_factors = draw(n_train)
test_codes, test_factors = draw(n_test)
out = {
    "sklearn_version": sklearn.__version__,
    "train_codes": train_codes.tolist(),
    "train_factors": train_factors.tolist(),
    "test_codes": test_codes.tolist(),
    "test_factors": test_factors.tolist(),
    "models": [],
}
# Depth 3 is disentanglement_lib's setting; stumps (depth 1) split only large nodes, where two
# features practically never tie, so scikit-learn's random feature order cannot matter.
for depth in (3, 1):
    importances, train_accuracy, test_accuracy = [], [], []
    for k in range(len(sizes)):
        model = GradientBoostingClassifier(max_depth=depth, random_state=0)
        model.fit(train_codes, train_factors[:, k])
        importances.append(model.feature_importances_)
        train_accuracy.append(float(model.score(train_codes, train_factors[:, k])))
        test_accuracy.append(float(model.score(test_codes, test_factors[:, k])))
    out["models"].append({
        "max_depth": depth,
        "importance_matrix[code][factor]": np.array(importances).T.tolist(),
        "train_accuracy": train_accuracy,
        "test_accuracy": test_accuracy,
    })
    print(depth, train_accuracy, test_accuracy)
with open("disentanglement_gbt_reference.json", "w") as f:
    json.dump(out, f)
