"""Writes disentanglement_svm_reference.json: disentanglement_lib's discrete SAP score matrix,
i.e. the test accuracy of scikit-learn `LinearSVC(C=0.01, class_weight="balanced")` trained on one
code to predict one factor, for small synthetic codes. Run: python disentanglement_svm_reference.py."""
import json

import numpy as np
import sklearn
from sklearn.svm import LinearSVC

rng = np.random.default_rng(11)
sizes = [2, 4, 6]


def draw(n):
    factors = np.stack([rng.integers(0, s, n) for s in sizes], axis=1)
    signal = 3.0 * factors / (np.array(sizes) - 1) + 0.3 * rng.standard_normal((n, 3))
    codes = np.concatenate([signal, rng.standard_normal((n, 1))], axis=1)
    return codes, factors


train_codes, train_factors = draw(800)
test_codes, test_factors = draw(400)
matrix = []
for i in range(train_codes.shape[1]):
    row = []
    for j in range(len(sizes)):
        model = LinearSVC(C=0.01, class_weight="balanced")
        model.fit(train_codes[:, i:i + 1], train_factors[:, j])
        row.append(float(np.mean(model.predict(test_codes[:, i:i + 1]) == test_factors[:, j])))
    matrix.append(row)
with open("disentanglement_svm_reference.json", "w") as f:
    json.dump({
        "sklearn_version": sklearn.__version__,
        "train_codes": train_codes.tolist(),
        "train_factors": train_factors.tolist(),
        "test_codes": test_codes.tolist(),
        "test_factors": test_factors.tolist(),
        "score_matrix[code][factor]": matrix,
    }, f)
print(np.array(matrix))
