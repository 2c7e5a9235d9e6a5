"""Procedural datasets and the sampling metrics with a Python `encode`."""

import numpy as np
import pytest

import infobound
from infobound import datasets


def test_procedural_datasets_describe_their_factors():
    shapes = datasets.Shapes3D()
    assert shapes.factor_sizes == [10, 10, 10, 8, 4, 15]
    assert len(shapes.factor_names) == 6
    assert shapes.image_shape == (64, 64, 3)
    sprites = datasets.DSprites()
    assert sprites.factor_sizes == [1, 3, 6, 40, 32, 32]
    assert sprites.image_shape == (64, 64, 1)


@pytest.mark.parametrize("make", [datasets.Shapes3D, datasets.DSprites])
def test_sample_is_seeded_and_render_reproduces_it(make):
    d = make()
    factors, images = d.sample(5, seed=3)
    h, w, c = d.image_shape
    assert factors.dtype == np.int64 and factors.shape == (5, len(d.factor_sizes))
    assert images.dtype == np.uint8 and images.shape == (5, h, w, c)
    again_factors, again_images = d.sample(5, seed=3)
    assert np.array_equal(factors, again_factors) and np.array_equal(images, again_images)
    assert not np.array_equal(d.sample(5, seed=4)[0], factors)
    assert np.array_equal(d.render(np.asfortranarray(factors.astype(np.uint8))), images)
    assert np.all(factors < np.array(d.factor_sizes)) and np.all(factors >= 0)
    assert images.max() > images.min()


def test_render_rejects_bad_factors():
    d = datasets.DSprites()
    with pytest.raises(ValueError):
        d.render([[0, 0, 0, 0, 0, 32]])
    with pytest.raises(ValueError, match="non-negative"):
        d.render([[0, 0, 0, 0, 0, -1]])
    with pytest.raises(ValueError):
        d.render([[0, 0, 0]])
    with pytest.raises(ValueError, match="integer"):
        d.render([[0.0, 0, 0, 0, 0, 0]])
    with pytest.raises(ValueError):
        d.sample(0)


def test_real_file_readers_report_a_missing_file(tmp_path):
    with pytest.raises(ValueError):
        datasets.DSpritesNpz(tmp_path / "missing.npz")
    with pytest.raises(ValueError):
        datasets.Mpi3dNpz(tmp_path / "missing.npz", "toy")
    with pytest.raises(ValueError, match="invalid dataset source"):
        datasets.Mpi3dNpz(tmp_path / "missing.npz", "cartoon")


def sprite_oracle(images):
    """Hand-made dSprites codes from NCHW float images: pixel count (scale), centroid x and y."""
    x = images[:, 0]
    mass = x.sum(axis=(1, 2))
    ys, xs = np.mgrid[0 : x.shape[1], 0 : x.shape[2]]
    cx = (x * xs).sum(axis=(1, 2)) / np.maximum(mass, 1)
    cy = (x * ys).sum(axis=(1, 2)) / np.maximum(mass, 1)
    return np.stack([mass, cx, cy], axis=1)


def noise(images):
    return np.random.default_rng(len(images)).standard_normal((len(images), 3))


SMALL = dict(batch_size=16, num_train=200, num_eval=100, num_variance_estimate=500)


def test_factor_vae_score_separates_an_informative_encoder_from_noise():
    d = datasets.DSprites()
    oracle = infobound.factor_vae_score(d, sprite_oracle, seed=1, **SMALL)
    random = infobound.factor_vae_score(d, noise, seed=1, **SMALL)
    assert oracle.metric_version.startswith("infobound-factor-vae/")
    assert oracle.eval_accuracy > random.eval_accuracy + 0.2
    assert oracle == infobound.factor_vae_score(d, sprite_oracle, seed=1, **SMALL)


def test_beta_vae_score_and_channels_last_encoders():
    d = datasets.DSprites()
    small = dict(batch_size=16, num_train=100, num_eval=50)
    nchw = infobound.beta_vae_score(d, sprite_oracle, seed=2, **small)
    nhwc = infobound.beta_vae_score(
        d, lambda x: sprite_oracle(np.transpose(x, (0, 3, 1, 2))), seed=2, channels_last=True, **small
    )
    assert nchw == nhwc
    assert 0.0 <= nchw.eval_accuracy <= 1.0


class FakeTensor:
    """Stands in for a torch tensor: the wrapper calls `.detach().cpu().numpy()`."""

    def __init__(self, array):
        self.array = array

    def detach(self):
        return self

    def cpu(self):
        return self

    def numpy(self):
        return self.array


def test_sample_codes_takes_tensor_outputs_and_feeds_the_array_metrics():
    d = datasets.DSprites()
    codes, factors = infobound.sample_codes(
        d, lambda x: FakeTensor(sprite_oracle(x).astype(np.float32)), 300, batch_size=64, seed=5
    )
    assert codes.shape == (300, 3) and factors.shape == (300, 6)
    result = infobound.mig(codes, factors[:, 2:])
    assert 0.0 <= result.score <= 1.0


def test_encoder_errors_reach_python():
    d = datasets.DSprites()

    class Boom(RuntimeError):
        pass

    def broken(images):
        raise Boom("model failed")

    with pytest.raises(Boom, match="model failed"):
        infobound.factor_vae_score(d, broken, **SMALL)
    with pytest.raises(ValueError, match="encode output"):
        infobound.beta_vae_score(d, lambda x: np.zeros((3, 2)), batch_size=8, num_train=10, num_eval=5)
    with pytest.raises(ValueError, match="encode output"):
        infobound.sample_codes(d, lambda x: np.full((len(x), 2), np.nan), 10)
    with pytest.raises(ValueError, match="Dataset"):
        infobound.factor_vae_score("dsprites", sprite_oracle)
