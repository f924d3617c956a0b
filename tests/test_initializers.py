"""Initializers: each one's sample mean and variance against its formula within sampling error,
its distribution shape (Kolmogorov-Smirnov), orthogonality with the sign correction, the gain
table, fans, and name / config round trips."""

import math

import numpy as np
import pytest
from scipy import stats

from initcore import initializers as I

SHAPE = (300, 400)  # fan_in 300, fan_out 400: fan_in, fan_out and fan_avg all differ
FAN_IN, FAN_OUT = SHAPE
N = SHAPE[0] * SHAPE[1]


def draw(init, shape=SHAPE, seed=0, dtype=np.float64):
    w = init(shape, np.random.default_rng(seed), dtype=dtype)
    assert w.shape == tuple(shape) and w.dtype == dtype and w.flags.c_contiguous
    return w


def check_moments(w, mean, var):
    """|sample mean − mean| and |sample var − var| within 5 standard errors (the SE of the
    variance from the sample's fourth central moment, valid for any distribution)."""
    x = w.astype(np.float64).ravel()
    n = x.size
    m = x.mean()
    s2 = x.var()
    m4 = np.mean((x - m) ** 4)
    assert abs(m - mean) < 5 * math.sqrt(var / n) + 1e-12, (m, mean)
    assert abs(s2 - var) < 5 * math.sqrt(max(m4 - s2**2, 0) / n) + 1e-12, (s2, var)


def ks_pvalue(x, dist, args=()):
    return stats.kstest(np.asarray(x, np.float64).ravel(), dist, args=args).pvalue


# (name, target variance, distribution): the formulas written out again, independently.
NAMED = [
    ("glorot_uniform", 2.0 / (FAN_IN + FAN_OUT), "uniform"),
    ("glorot_normal", 2.0 / (FAN_IN + FAN_OUT), "normal"),
    ("he_normal", 2.0 / FAN_IN, "normal"),
    ("he_uniform", 2.0 / FAN_IN, "uniform"),
    ("lecun_normal", 1.0 / FAN_IN, "normal"),
    ("lecun_uniform", 1.0 / FAN_IN, "uniform"),
    ("xavier_uniform", 2.0 / (FAN_IN + FAN_OUT), "uniform"),
    ("xavier_normal", 2.0 / (FAN_IN + FAN_OUT), "normal"),
    ("kaiming_normal", 2.0 / FAN_IN, "normal"),  # a=0, leaky_relu → gain √2
    ("kaiming_uniform", 2.0 / FAN_IN, "uniform"),
]


@pytest.mark.parametrize("name,var,dist", NAMED, ids=[n for n, _, _ in NAMED])
def test_named_moments_and_shape(name, var, dist):
    w = draw(I.get(name))
    check_moments(w, 0.0, var)
    sd = math.sqrt(var)
    if dist == "normal":
        # Untruncated: exactly N(0, σ²) (the papers, PyTorch), so tails beyond 2σ exist.
        assert ks_pvalue(w / sd, "norm") > 1e-3
        assert np.mean(np.abs(w) > 2 * sd) > 0.03
    else:
        a = math.sqrt(3 * var)
        assert ks_pvalue(w, "uniform", (-a, 2 * a)) > 1e-3
        assert np.abs(w).max() <= a


@pytest.mark.parametrize("mode,n", [("fan_in", FAN_IN), ("fan_out", FAN_OUT), ("fan_avg", (FAN_IN + FAN_OUT) / 2)])
def test_variance_scaling_truncated_normal_keras_correction(mode, n):
    scale = 2.5
    w = draw(I.VarianceScaling(scale, mode, "truncated_normal"), seed=1)
    var = scale / n
    check_moments(w, 0.0, var)  # the correction restores the intended variance
    sigma = math.sqrt(var) / 0.87962566103423978  # σ of the normal before the cut at ±2σ
    assert np.abs(w).max() <= 2 * sigma
    assert ks_pvalue(w / sigma, stats.truncnorm(-2, 2).cdf) > 1e-3


@pytest.mark.parametrize("dist", ["untruncated_normal", "uniform"])
@pytest.mark.parametrize("mode,n", [("fan_in", FAN_IN), ("fan_out", FAN_OUT), ("fan_avg", (FAN_IN + FAN_OUT) / 2)])
def test_variance_scaling_modes(dist, mode, n):
    w = draw(I.VarianceScaling(0.7, mode, dist), seed=2)
    check_moments(w, 0.0, 0.7 / n)


def test_truncation_constant_is_the_truncated_unit_normal_std():
    assert I.TRUNCATED_NORMAL_STDDEV_CORRECTION == pytest.approx(stats.truncnorm(-2, 2).std(), abs=1e-15)


def test_plain_distributions():
    w = draw(I.RandomNormal(0.3, 0.2))
    check_moments(w, 0.3, 0.04)
    assert ks_pvalue((w - 0.3) / 0.2, "norm") > 1e-3
    w = draw(I.RandomUniform(-0.1, 0.3))
    check_moments(w, 0.1, 0.4**2 / 12)
    assert ks_pvalue(w, "uniform", (-0.1, 0.4)) > 1e-3
    # Keras TruncatedNormal: cut at ±2·stddev, no variance correction.
    w = draw(I.TruncatedNormal(1.0, 0.5))
    tn = stats.truncnorm(-2, 2, loc=1.0, scale=0.5)
    check_moments(w, 1.0, tn.var())
    assert ks_pvalue(w, tn.cdf) > 1e-3
    assert np.all(np.abs(w - 1.0) <= 1.0)
    assert np.all(draw(I.Zeros()) == 0) and np.all(draw(I.Ones()) == 1)
    assert np.all(draw(I.Constant(0.25), shape=(3,)) == 0.25)


def test_keras_defaults():
    assert I.RandomNormal().get_config() == {"mean": 0.0, "stddev": 0.05}
    assert I.RandomUniform().get_config() == {"minval": -0.05, "maxval": 0.05}
    assert I.VarianceScaling().get_config() == {"scale": 1.0, "mode": "fan_in", "distribution": "truncated_normal"}


@pytest.mark.parametrize("shape", [(64, 32), (32, 64), (50, 50), (3, 4, 20, 6), (1, 7), (7, 1)])
def test_orthogonal(shape):
    gain = 1.7
    w = draw(I.Orthogonal(gain), shape=shape, seed=3)
    m = w.reshape(-1, shape[-1])
    rows, cols = m.shape
    if rows >= cols:
        np.testing.assert_allclose(m.T @ m, gain**2 * np.eye(cols), atol=1e-12)
    else:
        np.testing.assert_allclose(m @ m.T, gain**2 * np.eye(rows), atol=1e-12)
    # Sign correction: with A the same Gaussian draw, Qᵀ A = R has a positive diagonal.
    a = np.random.default_rng(3).standard_normal((max(rows, cols), min(rows, cols)))
    q = (m if rows >= cols else m.T) / gain
    r = q.T @ a
    np.testing.assert_allclose(np.tril(r, -1), 0, atol=1e-10)
    assert np.all(np.diag(r) > 0)


def test_orthogonal_is_haar():
    """For Haar Q on O(3), Q[0,0] is uniform on [−1, 1]. Without the sign correction LAPACK's
    Householder QR makes it one-signed, and this test fails."""
    rng = np.random.default_rng(4)
    x = [I.Orthogonal()((3, 3), rng, np.float64)[0, 0] for _ in range(1500)]
    assert ks_pvalue(x, "uniform", (-1, 2)) > 1e-3


def test_identity():
    np.testing.assert_array_equal(draw(I.Identity(0.5), shape=(3, 5)), 0.5 * np.eye(3, 5))
    with pytest.raises(ValueError, match="2-D"):
        I.Identity()((3,), np.random.default_rng(0))


def test_gain_table_matches_torch():
    assert I.calculate_gain("linear") == 1.0
    assert I.calculate_gain("sigmoid") == 1.0
    assert I.calculate_gain("conv2d") == 1.0
    assert I.calculate_gain("tanh") == 5.0 / 3
    assert I.calculate_gain("relu") == math.sqrt(2.0)
    assert I.calculate_gain("leaky_relu") == math.sqrt(2.0 / (1 + 0.01**2))
    assert I.calculate_gain("leaky_relu", 0.2) == math.sqrt(2.0 / 1.04)
    assert I.calculate_gain("selu") == 0.75
    with pytest.raises(ValueError, match="nonlinearity"):
        I.calculate_gain("swish")
    with pytest.raises(ValueError, match="negative_slope"):
        I.calculate_gain("leaky_relu", "x")


def test_kaiming_parameters():
    w = draw(I.KaimingNormal(a=0.2, mode="fan_out", nonlinearity="leaky_relu"), seed=5)
    check_moments(w, 0.0, 2.0 / (1 + 0.04) / FAN_OUT)
    w = draw(I.KaimingUniform(nonlinearity="tanh"), seed=6)
    check_moments(w, 0.0, (5 / 3) ** 2 / FAN_IN)
    w = draw(I.XavierNormal(gain=2.0), seed=7)
    check_moments(w, 0.0, 4 * 2.0 / (FAN_IN + FAN_OUT))


def test_fans():
    assert I.compute_fans((5,)) == (5, 5)
    assert I.compute_fans(()) == (1, 1)
    assert I.compute_fans((3, 7)) == (3, 7)
    assert I.compute_fans((2, 3, 4, 5)) == (24, 30)
    # A zero fan does not divide by zero.
    assert I.get("he_normal")((0, 4), np.random.default_rng(0)).shape == (0, 4)


def test_vector_shape_and_dtypes_and_determinism():
    init = I.get("he_normal")
    b = init(1000, np.random.default_rng(0))
    assert b.shape == (1000,) and b.dtype == np.float32
    w32 = init((20, 30), np.random.default_rng(9), np.float32)
    w64 = init((20, 30), np.random.default_rng(9), np.float64)
    np.testing.assert_array_equal(w32, w64.astype(np.float32))  # one rounding of the same draw
    np.testing.assert_array_equal(init((20, 30), 9), w32)  # int seed accepted
    with pytest.raises(ValueError, match="dtype"):
        init((2, 2), np.random.default_rng(0), np.int32)
    with pytest.raises(ValueError, match="shape"):
        init((2, -1), np.random.default_rng(0))
    with pytest.raises(TypeError, match="rng"):
        init((2, 2), "seed")


ALL = [
    I.Zeros(),
    I.Ones(),
    I.Constant(0.3),
    I.RandomNormal(0.1, 0.2),
    I.RandomUniform(-1, 2),
    I.TruncatedNormal(0, 1),
    I.VarianceScaling(2.0, "fan_avg", "uniform"),
    I.GlorotUniform(),
    I.GlorotNormal(),
    I.HeNormal(),
    I.HeUniform(),
    I.LecunNormal(),
    I.LecunUniform(),
    I.KaimingNormal(0.1, "fan_out", "leaky_relu"),
    I.KaimingUniform(),
    I.XavierNormal(1.5),
    I.XavierUniform(),
    I.Orthogonal(2.0),
    I.Identity(3.0),
]


@pytest.mark.parametrize("init", ALL, ids=[type(i).__name__ for i in ALL])
def test_serialize_round_trip(init):
    cfg = I.serialize(init)
    back = I.get(cfg)
    assert type(back) is type(init) and back == init and I.serialize(back) == cfg
    a = init((6, 6), np.random.default_rng(11))
    np.testing.assert_array_equal(a, back((6, 6), np.random.default_rng(11)))


def test_get_by_name():
    assert isinstance(I.get("he_normal"), I.HeNormal)
    assert isinstance(I.get("HeNormal"), I.HeNormal)
    assert isinstance(I.get("Glorot_Uniform"), I.GlorotUniform)
    assert isinstance(I.get("kaiming_normal"), I.KaimingNormal)
    assert I.get(None) is None
    h = I.HeNormal()
    assert I.get(h) is h
    fn = lambda shape, rng, dtype=np.float32: np.zeros(shape, dtype)  # noqa: E731
    assert I.get(fn) is fn
    with pytest.raises(ValueError, match="unknown initializer 'he_normall'"):
        I.get("he_normall")
    with pytest.raises(TypeError, match="initializer must be"):
        I.get(3)
    with pytest.raises(ValueError, match="unknown initializer class"):
        I.get({"class_name": "Nope", "config": {}})


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        I.VarianceScaling(1.0, "fan_sum")
    with pytest.raises(ValueError, match="distribution.*ambiguous"):
        I.VarianceScaling(1.0, "fan_in", "normal")
    with pytest.raises(ValueError, match="scale"):
        I.VarianceScaling(0.0)
    with pytest.raises(ValueError, match="stddev"):
        I.RandomNormal(0, -1)
    with pytest.raises(ValueError, match="maxval"):
        I.RandomUniform(1, 0)
    with pytest.raises(ValueError, match="at least 2"):
        I.Orthogonal()((5,), np.random.default_rng(0))
