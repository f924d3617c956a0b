"""Shared test machinery: the one comparison helper that holds every tolerance, hypothesis
strategies for float arrays, and a central finite-difference gradient."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import settings

import initcore as ic
from initcore import layers as L


def optional_torch():
    """PyTorch, or None where it is not installed. It is not in the test extra (PyPI's Linux
    wheel brings ~5 GB of CUDA libraries); `.ci/run` installs it (`.ci/torch-cache`), so under
    CI=true its absence is an error, never a silent skip."""
    try:
        import torch
    except ImportError:
        if os.environ.get("CI"):
            raise
        return None
    return torch


def require_torch():
    """PyTorch for a test that compares against it: skips the test where it is not installed
    (an error under CI, see `optional_torch`)."""
    torch = optional_torch()
    if torch is None:
        pytest.skip("PyTorch is not installed: pip install 'initcore[torch]'")
    return torch


settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=25, deadline=None)
settings.load_profile("ci")

# (rtol, atol) by kind of operation and dtype. "elementwise": one rounding or a stated few-ULP
# polynomial per element; "reduction": sums whose order differs from NumPy's (pairwise vs
# blocked), whose error grows like sqrt(n)·eps; "exact": must agree to the last bit.
TOLERANCES = {
    "exact": {np.float32: (0.0, 0.0), np.float64: (0.0, 0.0)},
    "elementwise": {np.float32: (2e-6, 1e-7), np.float64: (1e-14, 1e-300)},
    "transcendental": {np.float32: (5e-6, 1e-7), np.float64: (1e-13, 1e-300)},
    "reduction": {np.float32: (1e-4, 1e-5), np.float64: (1e-11, 1e-12)},
    "training": {np.float32: (1e-3, 1e-4), np.float64: (1e-9, 1e-10)},
    # Central differences (numeric_grad, eps=1e-6, float64 only) carry a rounding error of about
    # ulp(f)/eps ~ 1e-10*|f| and a truncation error of eps^2*f'''/6, far above "training".
    "gradcheck": {np.float64: (1e-6, 1e-8)},
    # A difference of O(1) terms that are each good to a few ULP (softmax − onehot, sigmoid − t):
    # the error is absolute, a few ULP of 1, however small the difference; pass the terms'
    # magnitude (e.g. the 1/n of a mean) as ``scale``.
    "difference": {np.float32: (5e-6, 5e-7), np.float64: (1e-13, 1e-15)},
}


def assert_close(actual, expected, kind="reduction", dtype=None, scale=None, err_msg=""):
    """Asserts ``actual`` ≈ ``expected`` within the tolerance of ``kind`` for ``dtype``
    (taken from ``expected`` when not given). ``scale`` multiplies atol, for values whose
    magnitude is known to be large (e.g. a sum of k products)."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape} {err_msg}"
    dt = np.dtype(dtype or expected.dtype).type
    if dt not in (np.float32, np.float64):
        np.testing.assert_array_equal(actual, expected, err_msg=err_msg)
        return
    rtol, atol = TOLERANCES[kind][dt]
    if scale is not None:
        atol = atol * scale
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=err_msg)


def numeric_grad(f, x, eps=1e-6):
    """Central finite differences of the scalar ``f()`` with respect to the float64 array
    ``x``, perturbed in place (and restored)."""
    g = np.zeros_like(x, dtype=np.float64)
    flat = x.reshape(-1)
    gflat = g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        fp = f()
        flat[i] = old - eps
        fm = f()
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * eps)
    return g


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dtype(request):
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# --- helpers shared by the reliability tests ---------------------------------------------------


def python(code, timeout=120, env=None):
    """Runs ``code`` in a fresh interpreter; returns the CompletedProcess (fails on a hang)."""
    full_env = dict(os.environ, **(env or {}))
    try:
        return subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=full_env,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the subprocess hung for {timeout} s")


def small_model(bn=False, seed=0, input_dim=6, backend="rust"):
    layers = [L.Dense(16, activation="relu")]
    if bn:
        layers.append(L.BatchNorm())
    layers.append(L.Dense(3))
    return ic.Sequential(layers, input_dim=input_dim, seed=seed, backend=backend)
