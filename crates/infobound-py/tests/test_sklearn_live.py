"""Metrics built on a scikit-learn / NumPy / SciPy estimator, against that estimator run live."""

import numpy as np
import pytest

import infobound

sklearn = pytest.importorskip("sklearn")
from sklearn.linear_model import Lasso, LogisticRegression  # noqa: E402
from scipy import linalg  # noqa: E402


def synthetic(seed, n=600, noise=0.3):
    """Three factors (sizes 4, 3, 5), each read by one noisy code, plus two noise codes."""
    rng = np.random.default_rng(seed)
    factors = np.stack([rng.integers(0, s, n) for s in (4, 3, 5)], axis=1)
    codes = np.concatenate(
        [factors + noise * rng.standard_normal(factors.shape), rng.standard_normal((n, 2))], axis=1
    )
    return codes, factors


def test_dci_lasso_importances_equal_scikit_learn_lasso():
    train_codes, train_factors = synthetic(1)
    test_codes, test_factors = synthetic(2, n=300)
    ours = infobound.dci_lasso(train_codes, train_factors, test_codes, test_factors, alpha=0.01)
    # Our definition (infobound-metrics dci_lasso): standardised codes and targets, |w| of
    # (1/2n)‖y − Xw − b‖² + α‖w‖₁, which is scikit-learn's Lasso objective.
    x = (train_codes - train_codes.mean(0)) / train_codes.std(0)
    importance = np.zeros((x.shape[1], train_factors.shape[1]))
    for k in range(train_factors.shape[1]):
        y = train_factors[:, k].astype(float)
        y = (y - y.mean()) / y.std()
        importance[:, k] = np.abs(Lasso(alpha=0.01, tol=1e-10, max_iter=100_000).fit(x, y).coef_)
    assert np.max(np.abs(np.array(ours.importance_matrix) - importance)) < 1e-4
    assert ours.metric_version == "infobound-dci-lasso/1"


def test_fid_equals_the_scipy_sqrtm_formula():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((500, 6))
    b = 0.5 + rng.standard_normal((400, 6)) @ rng.standard_normal((6, 6)) * 0.4
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(cov_a @ cov_b).real
    expected = np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2 * root)
    ours = infobound.fid(a, b)
    assert abs(ours.score - expected) < 1e-8 * max(1.0, expected)


def test_knn_accuracy_equals_a_numpy_weighted_vote():
    rng = np.random.default_rng(4)
    centres = rng.standard_normal((5, 8)) * 2
    bank_labels = rng.integers(0, 5, 400)
    query_labels = rng.integers(0, 5, 150)
    bank = centres[bank_labels] + rng.standard_normal((400, 8))
    queries = centres[query_labels] + rng.standard_normal((150, 8))
    k, tau = 20, 0.1
    ours = infobound.knn_accuracy(bank, bank_labels, queries, query_labels, k=k, temperature=tau)
    b = bank / np.linalg.norm(bank, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    sims = q @ b.T
    top = np.argsort(-sims, axis=1)[:, :k]
    votes = np.zeros((len(q), 5))
    for i in range(len(q)):
        np.add.at(votes[i], bank_labels[top[i]], np.exp(sims[i, top[i]] / tau))
    expected = np.mean(votes.argmax(1) == query_labels)
    # Our similarities are float32 (the reference implementations' precision): allow one query
    # whose top-k set or vote flips at a float32 tie.
    assert abs(ours.accuracy - expected) <= 1 / len(q)
    assert ours.num_queries == 150 and ours.bank_size == 400


def test_linear_probe_accuracy_equals_scikit_learn_logistic_regression():
    rng = np.random.default_rng(5)
    centres = rng.standard_normal((4, 6))
    train_labels = rng.integers(0, 4, 500)
    test_labels = rng.integers(0, 4, 250)
    train = centres[train_labels] + 0.8 * rng.standard_normal((500, 6))
    test = centres[test_labels] + 0.8 * rng.standard_normal((250, 6))
    ours = infobound.linear_probe(train, train_labels, test, test_labels)
    model = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(train, train_labels)
    # Both fit the same L2-regularised multinomial objective (C = 1); predictions may differ
    # only where two class probabilities nearly tie.
    assert abs(ours.test_accuracy - model.score(test, test_labels)) <= 2 / 250
    assert abs(ours.train_accuracy - model.score(train, train_labels)) <= 2 / 500
