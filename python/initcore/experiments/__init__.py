"""The classic initialization experiments, reproduced on the embedded data.

``initcore experiment NAME [--out DIR] [--quick]`` (or ``all``) runs one; so does
``initcore.experiments.run(NAME, out_dir, quick)`` or the module's own ``run(out_dir, quick=False)``.
Each prints its key numbers as tables, writes PNG figures and a Markdown ``summary.md`` into
``out_dir`` (default ``runs/NAME``) and returns a dict of its results. ``quick=True`` shrinks
data, widths and epochs so that the test suite can run every experiment in seconds while still
checking the theory.

==================  =========================================================================
``init-compare``    N(0,1) vs Glorot vs He with sigmoid and ReLU on MNIST: first-layer
                    variance against n_in·Var(x)·Var(w), saturation, accuracy curves
``depth``           100 layers of 512: no activation / tanh / ReLU × N(0,1), N(0,1)·0.01,
                    Glorot, He: activation std layer by layer
``vanishing``       deep sigmoid with N(0, 0.01²) vs ReLU with He: per-layer activations and
                    gradient norms
``snn``             20×100 SELU + lecun_normal vs ReLU + He, with and without BatchNorm,
                    Nadam, on MNIST and Boston housing
``batchnorm``       BatchNorm none / before / after the activation at increasing learning rates
``optimizers``      SGD, momentum, Nesterov, Adagrad, RMSprop, Adam, Nadam on a narrow valley
                    and a saddle in 2-D, and on MNIST
``annealing``       constant learning rate vs step decay vs ReduceLROnPlateau
==================  =========================================================================
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
from typing import Any

#: name → (module, one-line description)
EXPERIMENTS: dict[str, tuple] = {
    "init-compare": ("init_compare", "N(0,1) vs Glorot vs He with sigmoid and ReLU on MNIST"),
    "depth": ("depth", "activation std through 100 layers for 3 activations x 4 inits"),
    "vanishing": ("vanishing", "deep sigmoid + N(0, 0.01^2) vs ReLU + He: activations and gradients per layer"),
    "snn": ("snn", "self-normalizing SELU net vs ReLU, with and without BatchNorm (MNIST, Boston)"),
    "batchnorm": ("batchnorm", "BatchNorm none/before/after the activation at increasing learning rates"),
    "optimizers": ("optimizers", "seven optimizers on a 2-D valley and saddle, and on MNIST"),
    "annealing": ("annealing", "constant lr vs step decay vs ReduceLROnPlateau"),
}

__all__ = ["EXPERIMENTS", "get", "run", "run_all", "add_subcommand", "main"]


def get(name: str):
    """The module of experiment ``name`` (it has ``run(out_dir, quick=False, ...)``)."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose one of: {', '.join(EXPERIMENTS)}, all")
    return importlib.import_module(f".{EXPERIMENTS[name][0]}", __name__)


def run(name: str, out_dir: str | None = None, quick: bool = False, **kwargs) -> dict[str, Any]:
    """Runs experiment ``name`` into ``out_dir`` (default ``runs/NAME``); returns its results."""
    module = get(name)
    return module.run(out_dir if out_dir is not None else os.path.join("runs", name), quick=quick, **kwargs)


def run_all(out_dir: str | None = None, quick: bool = False, **kwargs) -> dict[str, dict[str, Any]]:
    """Every experiment, each into ``out_dir/NAME`` (default ``runs/NAME``)."""
    base = out_dir if out_dir is not None else "runs"
    return {name: run(name, os.path.join(base, name), quick=quick, **kwargs) for name in EXPERIMENTS}


def add_subcommand(subparsers) -> None:
    """Adds ``experiment NAME|all [--out DIR] [--quick] [--backend] [--seed]`` to the CLI."""
    lines = "\n".join(f"  {n:<13} {d}" for n, (_, d) in EXPERIMENTS.items())
    p = subparsers.add_parser(
        "experiment",
        help="run a classic initialization experiment (figures + summary.md)",
        description=f"experiments:\n{lines}\n  {'all':<13} every experiment, each into OUT/NAME",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", choices=list(EXPERIMENTS) + ["all"], metavar="NAME", help="experiment name, or all")
    p.add_argument("--out", default=None, help="output directory (default runs/NAME; with all: runs/, one folder each)")
    p.add_argument("--quick", action="store_true", help="small and fast version (seconds), as the tests run it")
    p.add_argument("--backend", choices=("rust", "numpy"), default="rust", help="kernels (default rust)")
    p.add_argument("--seed", type=int, default=0, help="seed of data split, weights and shuffling")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    if importlib.util.find_spec("matplotlib") is None:
        # Checked before minutes of computation, not when the first figure is drawn.
        from ..cli import UsageError

        raise UsageError("initcore experiment: the figures need matplotlib: pip install 'initcore[plot]'")
    kw = {"backend": args.backend, "seed": args.seed}
    if args.name == "all":
        run_all(args.out, quick=args.quick, **kw)
    else:
        run(args.name, args.out, quick=args.quick, **kw)
    return 0
