"""infobound's disentanglement, diversity and probe metrics on NumPy arrays.

Every metric returns a :class:`Result`: a ``dict`` of the Rust result struct's fields (``score``,
per-factor parts, ``metric_version``, the configuration used), also readable as attributes.
Keyword arguments change fields of the metric's Rust configuration (e.g. ``num_bins=20`` for MIG);
an unknown one raises ``ValueError``. Codes take any real dtype, labels any integer dtype, both
in C or Fortran order. Bad input raises ``ValueError`` with the Rust message.
"""

import json

import numpy as np

from . import _native
from . import datasets

__all__ = [
    "Result",
    "beta_vae_score",
    "datasets",
    "dci",
    "dci_lasso",
    "explicitness",
    "factor_vae_score",
    "fid",
    "knn_accuracy",
    "linear_probe",
    "mig",
    "mig_continuous",
    "modularity",
    "sample_codes",
    "sap",
    "sap_discrete",
    "snc",
    "vendi",
]


class Result(dict):
    """A metric's result: the Rust result struct's fields, as a dict and as attributes."""

    def __getattr__(self, name):
        try:
            value = self[name]
        except KeyError:
            raise AttributeError(name) from None
        return Result(value) if isinstance(value, dict) else value


def _codes(x, what):
    """A 2-D float64 array, C order, from any real array-like."""
    a = np.asarray(x)
    if a.dtype.kind not in "fiu":
        raise ValueError(f"{what}: need a real-valued array, got dtype {a.dtype}")
    if a.ndim != 2:
        raise ValueError(f"{what}: need a 2-D array (samples × dimensions), got shape {a.shape}")
    return np.ascontiguousarray(a, dtype=np.float64)


def _int64(a, what):
    if a.dtype.kind not in "iu":
        raise ValueError(f"{what}: need an integer array, got dtype {a.dtype}")
    if a.dtype.kind == "u" and a.size and a.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{what}: label {a.max()} does not fit in int64")
    return np.ascontiguousarray(a, dtype=np.int64)


def _factors(x, what):
    """A 2-D int64 array (one column per factor); a 1-D array is one factor."""
    a = np.asarray(x)
    if a.ndim == 1:
        a = a.reshape(-1, 1)
    if a.ndim != 2:
        raise ValueError(f"{what}: need a 2-D array (samples × factors), got shape {a.shape}")
    return _int64(a, what)


def _labels(x, what):
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"{what}: need a 1-D label array, got shape {a.shape}")
    return _int64(a, what)


def _result(text):
    return Result(json.loads(text))


def _config(config):
    return json.dumps(config)


def mig(codes, factors, **config):
    """Discrete MIG (Chen et al. 2018, disentanglement_lib's histogram form); config: MigConfig."""
    return _result(
        _native.mig(_codes(codes, "codes"), _factors(factors, "factors"), _config(config))
    )


def mig_continuous(mu, logvar, factors, seed=0, **config):
    """MIG from Gaussian posteriors N(mu, exp(logvar)); config: MigContinuousConfig."""
    return _result(
        _native.mig_continuous(
            _codes(mu, "mu"),
            _codes(logvar, "logvar"),
            _factors(factors, "factors"),
            _config(config),
            seed,
        )
    )


def sap(codes, factors, **config):
    """Continuous SAP (Kumar et al. 2018): R² of each code for each factor; config: SapConfig."""
    return _result(
        _native.sap(_codes(codes, "codes"), _factors(factors, "factors"), _config(config))
    )


def _split(train_codes, train_factors, test_codes, test_factors):
    return (
        _codes(train_codes, "train_codes"),
        _factors(train_factors, "train_factors"),
        _codes(test_codes, "test_codes"),
        _factors(test_factors, "test_factors"),
    )


def sap_discrete(train_codes, train_factors, test_codes, test_factors, **config):
    """Discrete SAP with linear SVMs on a train/test split; config: SapConfig."""
    return _result(
        _native.sap_discrete(
            *_split(train_codes, train_factors, test_codes, test_factors), _config(config)
        )
    )


def dci(train_codes, train_factors, test_codes, test_factors, **config):
    """DCI (Eastwood & Williams 2018) with scikit-learn-exact gradient-boosted trees.

    config: DciConfig, e.g. ``random_state=0``, ``split_search={"histogram": {"max_bins": 256}}``.
    """
    return _result(
        _native.dci(
            *_split(train_codes, train_factors, test_codes, test_factors), _config(config)
        )
    )


def dci_lasso(train_codes, train_factors, test_codes, test_factors, **config):
    """DCI with Lasso importances; config: DciLassoConfig."""
    return _result(
        _native.dci_lasso(
            *_split(train_codes, train_factors, test_codes, test_factors), _config(config)
        )
    )


def explicitness(train_codes, train_factors, test_codes, test_factors, **config):
    """Explicitness (Ridgeway & Mozer 2018): one-vs-rest logistic AUC; config: ExplicitnessConfig."""
    return _result(
        _native.explicitness(
            *_split(train_codes, train_factors, test_codes, test_factors), _config(config)
        )
    )


def snc(train_codes, train_factors, test_codes, test_factors):
    """SNC: accuracy of the best single-code classifier per factor, on the test split."""
    return _result(_native.snc(*_split(train_codes, train_factors, test_codes, test_factors)))


def modularity(codes, factors, **config):
    """Modularity (Ridgeway & Mozer 2018); config: ModularityConfig."""
    return _result(
        _native.modularity(
            _codes(codes, "codes"), _factors(factors, "factors"), _config(config)
        )
    )


def vendi(features, **config):
    """Vendi score (Friedman & Dieng 2023) with the cosine kernel; config: VendiConfig."""
    return _result(_native.vendi(_codes(features, "features"), _config(config)))


def fid(features_a, features_b):
    """Fréchet distance between Gaussians fitted to two feature sets (FID from features)."""
    return _result(_native.fid(_codes(features_a, "features_a"), _codes(features_b, "features_b")))


def knn_accuracy(bank, bank_labels, queries, query_labels, **config):
    """Weighted k-NN accuracy (Wu et al. 2018 monitor); config: KnnConfig (k, temperature)."""
    return _result(
        _native.knn_accuracy(
            _codes(bank, "bank"),
            _labels(bank_labels, "bank_labels"),
            _codes(queries, "queries"),
            _labels(query_labels, "query_labels"),
            _config(config),
        )
    )


def linear_probe(train_features, train_labels, test_features, test_labels, **config):
    """Multinomial logistic-regression probe accuracy; config: LinearProbeConfig."""
    return _result(
        _native.linear_probe(
            _codes(train_features, "train_features"),
            _labels(train_labels, "train_labels"),
            _codes(test_features, "test_features"),
            _labels(test_labels, "test_labels"),
            _config(config),
        )
    )


def _dataset(dataset):
    if not isinstance(dataset, datasets.Dataset):
        raise ValueError(f"need an infobound.datasets.Dataset, got {type(dataset).__name__}")
    return dataset._native


def _encoder(encode, channels_last):
    """Adapts a user's ``encode`` to the native call: NCHW float32 in, 2-D float64 out.

    A PyTorch tensor output (anything with ``detach``) is moved to the CPU first.
    """

    def call(images):
        out = encode(np.transpose(images, (0, 2, 3, 1)) if channels_last else images)
        if hasattr(out, "detach"):
            out = out.detach().cpu().numpy()
        codes = _codes(out, "encode output")
        if codes.shape[0] != images.shape[0]:
            raise ValueError(
                f"encode output: {codes.shape[0]} rows for a batch of {images.shape[0]} images"
            )
        return codes

    return call


def factor_vae_score(dataset, encode, seed=0, channels_last=False, **config):
    """FactorVAE score (Kim & Mnih 2018) of ``encode`` on ``dataset``; config: FactorVaeConfig.

    ``encode(images) -> codes`` gets float32 images in [0, 1], N×C×H×W (N×H×W×C with
    ``channels_last=True``), and returns an N×d array (NumPy or a PyTorch tensor).
    """
    return _result(
        _native.factor_vae_score(_dataset(dataset), _encoder(encode, channels_last), _config(config), seed)
    )


def beta_vae_score(dataset, encode, seed=0, channels_last=False, **config):
    """β-VAE score (Higgins et al. 2017) of ``encode`` on ``dataset``; config: BetaVaeConfig.

    ``encode`` as for :func:`factor_vae_score`.
    """
    return _result(
        _native.beta_vae_score(_dataset(dataset), _encoder(encode, channels_last), _config(config), seed)
    )


def sample_codes(dataset, encode, num_points, batch_size=64, seed=0, channels_last=False):
    """``num_points`` uniform factor draws of ``dataset`` encoded by ``encode``.

    Returns ``(codes float64 N×d, factors int64 N×K)``, ready for the array metrics.
    """
    return _native.sample_codes(
        _dataset(dataset), _encoder(encode, channels_last), num_points, batch_size, seed
    )
