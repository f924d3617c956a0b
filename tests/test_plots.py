"""initcore.plots: every figure writes a PNG (activation histograms, statistics against depth,
profile grids, the Watch heatmap, training curves, lines, optimizer trajectories), bad arguments
are refused, and without matplotlib the error says how to install it."""

import math
import sys

import numpy as np
import pytest

import initcore as ic
from initcore import diagnostics as D
from initcore import layers as L


def data(n=64, d=12, seed=0, scale=1.0, shift=0.0):
    return (np.random.default_rng(seed).standard_normal((n, d)) * scale + shift).astype(np.float32)


def _mlp(backend, seed=3, bn=False):
    layers = [L.Dense(16, activation="tanh", kernel_initializer="glorot_normal")]
    if bn:
        layers += [L.Dense(8), L.BatchNorm(), L.Activation("relu")]
    else:
        layers += [L.Dense(8, activation="relu", kernel_initializer="he_normal")]
    layers.append(L.Dense(3))
    return ic.Sequential(layers, input_dim=12, seed=seed, backend=backend)


# --- plots --------------------------------------------------------------------------------------------
def _png(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_every_plot_writes_a_png(tmp_path):
    from initcore import plots as P

    model = _mlp("numpy")
    x, y = data(n=48), np.arange(48) % 3
    t = D.activation_stats(model, x)
    watch = D.Watch(every=1, bins=10)
    h = model.fit(
        x,
        y,
        optimizer=ic.optim.Adam(model.parameters()),
        epochs=2,
        batch_size=16,
        callbacks=[watch],
        validation_data=(x, y),
        verbose=0,
    )
    figs = {
        "hist.png": P.activation_histograms(t, stage="both", title="t"),
        "grid.png": P.activation_histograms({"a": t, "b": t}, layers=[1, 2]),
        "depth.png": P.stats_vs_depth({"a": t, "b": [dict(r, act_std=0.0) for r in t]}),
        "profile.png": P.profile_grid({"p": {"a": t}, "q": {"b": t}}),
        "heat.png": P.watch_heatmap(h.watch, stage="pre"),
        "curves.png": P.training_curves({"a": h, "b": {"loss": [1.0, math.nan], "val_accuracy": [0.5, 0.2]}}),
        "lines.png": P.lines([1, 2, 3], {"a": [1, 2, math.nan]}, logx=True),
        "traj.png": P.trajectories(
            lambda X, Y: X * X + Y * Y,
            {"sgd": np.array([[1.0, 1.0], [0.5, 0.5], [0, 0]])},
            marks=[(0, 0)],
            saddles=[(1, 0)],
            log_levels=True,
        ),
    }
    for name, fig in figs.items():
        P.save(fig, tmp_path / "sub" / name)
        assert _png(tmp_path / "sub" / name), name
    assert len([a for a in figs["hist.png"].axes if a.get_visible()]) == 3
    assert len(figs["grid.png"].axes) == 4
    with pytest.raises(ValueError, match="stage"):
        P.activation_histograms(t, stage="x")
    with pytest.raises(ValueError, match="none of the metrics"):
        P.training_curves({"a": {"loss": [1]}}, metrics=("nope",))


def test_plots_without_matplotlib_say_how_to_install(monkeypatch):
    from initcore import plots as P

    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install initcore\[plot\]"):
        P.lines([1], {"a": [1]})
