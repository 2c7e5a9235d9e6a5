"""Reference values of the SSL baselines' losses with local views (multi-crop), float64 NumPy.

Independent of the Rust code: every loss is written from its definition (the papers' two-view
losses; the multi-crop pairing as documented on `simsiam_loss`, `byol_loss` and
`barlow_twins_loss`). The two-view values reproduce the PyTorch numbers recorded in
`tests/ssl_objectives.rs`, which checks this script against PyTorch's `F.normalize`,
`F.cosine_similarity` and `BatchNorm1d` arithmetic.

Run: python3 scripts/ssl_multicrop_numpy.py > ssl_multicrop.json
"""

import json
import math

import numpy as np

B, D = 6, 4


def view(v):
    """The tests' `view(v, B, d)`."""
    return np.array(
        [[math.sin(1.3 * (v + 1) + 0.7 * i + 0.37 * j * j) + 0.1 * v for j in range(D)] for i in range(B)]
    )


def normalize(x):
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def mean_cos(a, b):
    return float((normalize(a) * normalize(b)).sum(1).mean())


def pairs(views):
    """Each global view g in {0, 1} against every other view (solo-learn's BYOL pairing)."""
    return [(g, v) for g in range(min(2, views)) for v in range(views) if v != g]


def simsiam(online, predictions):
    p = pairs(len(online))
    return -sum(mean_cos(predictions[v], online[g]) for g, v in p) / len(p)


def byol(predictions, target):
    return sum(2.0 - 2.0 * mean_cos(predictions[v], target[g]) for g, v in pairs(len(predictions)))


def standardise(x):
    return (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5)


def barlow(online, lam):
    views = len(online)
    bt_pairs = [(0, 1)] + [(g, l) for g in range(2) for l in range(2, views)]
    on_sum = off_sum = 0.0
    for a, b in bt_pairs:
        c = standardise(online[a]).T @ standardise(online[b]) / B
        diagonal = np.diagonal(c)
        on_sum += float(((1.0 - diagonal) ** 2).sum())
        off_sum += float((c**2).sum() - (diagonal**2).sum())
    on, off = on_sum / len(bt_pairs), off_sum / len(bt_pairs)
    return {"on_diagonal": on, "off_diagonal": off, "loss": on + lam * off}


def case(views):
    online = [view(v) for v in range(views)]
    predictions = [view(v + 20) for v in range(views)]
    target = [view(v + 10) for v in range(2)]
    return {
        "views": views,
        "simsiam": simsiam(online, predictions),
        "byol": byol(predictions, target),
        "barlow_twins_lambda_0.0051": barlow(online, 0.0051),
    }


if __name__ == "__main__":
    document = {
        "generator": "crates/infobound-models/reference/scripts/ssl_multicrop_numpy.py",
        "inputs": "online view v = view(v), predictions view(v + 20), target view(v + 10), B = 6, d = 4",
        "cases": [case(2), case(3), case(4)],
    }
    print(json.dumps(document, indent=2))
