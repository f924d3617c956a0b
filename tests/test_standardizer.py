"""The Standardizer (initcore.standardizer): its modes against NumPy, dtypes, the minimum scale,
state round trips and every error."""

import numpy as np
import pytest

from initcore import standardizer as D


def sample(rng, n=200, d=6):
    x = rng.standard_normal((n, d)) * np.arange(1, d + 1) + np.arange(d) * 3
    x[:, 2] = 4.0  # a constant feature
    return x


def test_standardizer_feature(rng):
    train, test = sample(rng), sample(rng, 50)
    s = D.Standardizer().fit(train)
    z = s.transform(train)
    assert z.dtype == np.float64
    mu, sd = train.mean(0), train.std(0)
    sd[2] = 1.0
    np.testing.assert_allclose(z, (train - mu) / sd, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(np.delete(z.std(0), 2), 1, rtol=1e-12)
    assert np.all(z[:, 2] == 0) and np.isfinite(z).all()
    # Fitted on train, applied unchanged to test: the training statistics, not the test's.
    np.testing.assert_allclose(s.transform(test), (test - mu) / sd, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(s.inverse_transform(s.transform(test)), test, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(s.mean_, mu)
    np.testing.assert_allclose(s.var_, train.var(0))


def test_standardizer_channel_mean_image_minmax(rng):
    train = sample(rng)
    z = D.Standardizer("channel").fit_transform(train)
    np.testing.assert_allclose(z, (train - train.mean()) / train.std(), rtol=1e-12)
    rgb = rng.random((30, 4, 3)) * [1, 2, 3] + [0, 10, 20]  # (n, pixels, channels)
    s = D.Standardizer("channel", channels=3).fit(rgb)
    zz = s.transform(rgb)
    assert zz.shape == rgb.shape
    np.testing.assert_allclose(zz.reshape(-1, 3).mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(zz.reshape(-1, 3).std(0), 1, rtol=1e-12)
    with pytest.raises(ValueError, match="multiple of channels=4"):
        D.Standardizer("channel", channels=4).fit(rgb.reshape(30, -1)[:, :6])
    z = D.Standardizer("mean_image").fit_transform(train)
    np.testing.assert_allclose(z, train - train.mean(0), atol=1e-12)
    s = D.Standardizer("minmax", feature_range=(-1, 1)).fit(train)
    z = s.transform(train)
    np.testing.assert_allclose(np.delete(z.min(0), 2), -1, atol=1e-12)
    np.testing.assert_allclose(np.delete(z.max(0), 2), 1, atol=1e-12)
    assert np.all(z[:, 2] == -1)
    np.testing.assert_allclose(s.inverse_transform(z), train, atol=1e-12)


def test_standardizer_dtypes_min_scale_state(rng):
    x8 = rng.integers(0, 256, (40, 5)).astype(np.uint8)
    s = D.Standardizer().fit(x8)
    assert s.transform(x8).dtype == np.float32
    assert s.transform(x8.astype(np.float64)).dtype == np.float64
    assert D.Standardizer(dtype="float64").fit(x8).transform(x8).dtype == np.float64
    rare = np.zeros((1000, 2))
    rare[0, 0] = 0.01  # a pixel lit once in the training set
    z = D.Standardizer().fit(rare).transform(np.array([[1.0, 0.0]]))
    assert z[0, 0] > 3000  # the problem min_scale addresses
    z = D.Standardizer(min_scale=0.1).fit(rare).transform(np.array([[1.0, 0.0]]))
    assert z[0, 0] < 10
    s = D.Standardizer("minmax", feature_range=(0, 2)).fit(rng.random((10, 3)))
    t = D.Standardizer.from_state_dict(s.state_dict())
    x = rng.random((4, 3))
    np.testing.assert_array_equal(t.transform(x), s.transform(x))
    assert "fitted on 10×3" in repr(t)


def test_standardizer_errors():
    s = D.Standardizer()
    with pytest.raises(D.NotFittedError, match="not fitted yet"):
        s.transform(np.zeros((2, 3)))
    assert issubclass(D.NotFittedError, ValueError)
    s.fit(np.random.default_rng(0).random((5, 3)))
    with pytest.raises(ValueError, match="x has 4 features, but the Standardizer was fitted on 3"):
        s.transform(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="NaN"):
        D.Standardizer().fit(np.array([[1.0, np.nan], [2.0, 3.0]]))
    with pytest.raises(ValueError, match="no rows"):
        D.Standardizer().fit(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        D.Standardizer().fit(np.zeros(3))
    with pytest.raises(ValueError, match="mode must be one of"):
        D.Standardizer("zscore")
    with pytest.raises(ValueError, match="feature_range"):
        D.Standardizer("minmax", feature_range=(1, 0))
    with pytest.raises(TypeError, match="real numbers"):
        D.Standardizer().fit(np.array([["a"]]))
