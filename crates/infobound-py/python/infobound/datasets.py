"""Ground-truth factor datasets: the procedural dSprites / 3DShapes, rendered offline, and readers
of the official dSprites and MPI3D ``.npz`` files.

A dataset has ``name``, ``factor_names``, ``factor_sizes``, ``image_shape`` (H, W, C),
``render(factors, seed=0) -> uint8 N×H×W×C`` and ``sample(n, seed=0) -> (factors int64 N×K,
images uint8 N×H×W×C)``; it is what :func:`infobound.factor_vae_score` and the other sampling
metrics take.
"""

import json
import os

import numpy as np

from . import _native

__all__ = ["DSprites", "Dataset", "Mpi3dNpz", "Shapes3D", "DSpritesNpz"]


class Dataset:
    """A ground-truth dataset backed by ``infobound-data``."""

    def __init__(self, native):
        self._native = native

    @property
    def name(self):
        return self._native.name

    @property
    def factor_names(self):
        return list(self._native.factor_names)

    @property
    def factor_sizes(self):
        return list(self._native.factor_sizes)

    @property
    def image_shape(self):
        return tuple(self._native.image_shape)

    def render(self, factors, seed=0):
        """Images of the rows of ``factors`` (N×K integers), uint8 N×H×W×C."""
        a = np.asarray(factors)
        if a.ndim == 1:
            a = a.reshape(1, -1)
        if a.dtype.kind not in "iu":
            raise ValueError(f"factors: need an integer array, got dtype {a.dtype}")
        return self._native.render(np.ascontiguousarray(a, dtype=np.int64), seed)

    def sample(self, n, seed=0):
        """``n`` uniformly drawn factor rows and their images."""
        if n <= 0:
            raise ValueError(f"sample: n must be positive, got {n}")
        return self._native.sample(int(n), seed)

    def __repr__(self):
        return f"infobound.datasets.Dataset({self.name!r}, factor_sizes={self.factor_sizes})"


def Shapes3D():
    """Procedural 3DShapes (64×64 RGB; factors as in Burgess & Kim 2018)."""
    return Dataset(_native.Dataset.procedural("shapes3d"))


def DSprites():
    """Procedural dSprites (64×64 binary; factors as in Matthey et al. 2017)."""
    return Dataset(_native.Dataset.procedural("dsprites"))


def _open(source):
    return Dataset(_native.Dataset.open(json.dumps(source)))


def DSpritesNpz(path, sha256=None, strict_shapes=True, cache_dir=None):
    """The official ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz``."""
    source = {"source": "dsprites_npz", "path": os.fspath(path), "strict_shapes": strict_shapes}
    if sha256 is not None:
        source["sha256"] = sha256
    if cache_dir is not None:
        source["cache_dir"] = os.fspath(cache_dir)
    return _open(source)


def Mpi3dNpz(path, variant, sha256=None, strict_shapes=True, factor_sizes=None, cache_dir=None):
    """One of the MPI3D ``.npz`` files; ``variant`` is ``toy``, ``realistic`` or ``real``."""
    source = {
        "source": "mpi3d_npz",
        "path": os.fspath(path),
        "variant": variant,
        "strict_shapes": strict_shapes,
    }
    if sha256 is not None:
        source["sha256"] = sha256
    if factor_sizes is not None:
        source["factor_sizes"] = list(factor_sizes)
    if cache_dir is not None:
        source["cache_dir"] = os.fspath(cache_dir)
    return _open(source)
