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
``annealing``       constant learning rate vs step decay vs ReduceLROnPlateau, with the best
                    constant rate of a sweep as the baseline
``standardization`` raw 0-255, [0, 1], centred, per-feature and per-channel input with
                    sigmoid, tanh and ReLU; n·E[x²] against n·Var(x)
``lsuv``            LSUV and orthogonal against Glorot and He in deep nets
``activations``     sigmoid, tanh, ReLU, Leaky ReLU, PReLU, ELU, SELU, Maxout: accuracy, time
                    per epoch, dead and saturated fractions over training
==================  =========================================================================

Common options: ``--seeds K`` (each arm over K seeds, mean ± std, through
``experiments._common.run_trials``), ``--data PATH`` (full MNIST or Fashion-MNIST IDX files
instead of the embedded subset), and the lists an experiment sweeps (``--inits``, ``--lrs``).
Without matplotlib an experiment still computes and prints its numbers and lists the figures
it skipped. ``all --report FILE`` also writes one self-contained HTML page
(:mod:`initcore.experiments.report`).
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
    "batchnorm": ("batch_norm", "BatchNorm none/before/after the activation at increasing learning rates"),
    "optimizers": ("optimizers", "seven optimizers on a 2-D valley and saddle, and on MNIST"),
    "annealing": ("annealing", "constant lr vs step decay vs ReduceLROnPlateau"),
    "standardization": ("standardization", "raw / [0,1] / centred / standardized input with sigmoid, tanh, ReLU"),
    "lsuv": ("lsuv_exp", "LSUV and orthogonal vs Glorot and He in deep nets"),
    "activations": ("activations", "eight activations: accuracy, time per epoch, dead and saturated fractions"),
}

#: the options an experiment may take (besides out_dir, quick, seed, backend, verbose)
COMMON_OPTIONS = ("seeds", "inits", "lrs")

__all__ = ["EXPERIMENTS", "get", "run", "run_all", "add_subcommand", "main"]


def get(name: str):
    """The module of experiment ``name`` (it has ``run(out_dir, quick=False, ...)``)."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose one of: {', '.join(EXPERIMENTS)}, all")
    return importlib.import_module(f".{EXPERIMENTS[name][0]}", __name__)


def run(name: str, out_dir: str | None = None, quick: bool = False, **kwargs) -> dict[str, Any]:
    """Runs experiment ``name`` into ``out_dir`` (default ``runs/NAME``); returns its results.
    ``kwargs`` of value None are dropped; ``seeds``/``inits``/``lrs`` must be options ``name``
    takes (a ValueError names the ones it does not)."""
    import inspect

    module = get(name)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    params = inspect.signature(module.run).parameters
    bad = [k for k in kwargs if k not in params]
    if bad:
        opts = ", ".join("--" + k for k in bad)
        raise ValueError(
            f"experiment {name} does not take {opts} (it takes: "
            f"{', '.join('--' + k for k in COMMON_OPTIONS if k in params) or 'none of them'})"
        )
    return module.run(out_dir if out_dir is not None else os.path.join("runs", name), quick=quick, **kwargs)


def run_all(out_dir: str | None = None, quick: bool = False, report: str | None = None, **kwargs):
    """Every experiment, each into ``out_dir/NAME`` (default ``runs/NAME``); options an
    experiment does not take (``--lrs`` for ``depth``) are left out for it. ``report``: also
    write the HTML page there (:func:`initcore.experiments.report.write`)."""
    import inspect

    base = out_dir if out_dir is not None else "runs"
    results = {}
    for name in EXPERIMENTS:
        params = inspect.signature(get(name).run).parameters
        kw = {k: v for k, v in kwargs.items() if k in params}
        results[name] = run(name, os.path.join(base, name), quick=quick, **kw)
    if report is not None:
        from . import report as report_mod

        report_mod.write(results, report)
    return results


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
    p.add_argument("--seeds", type=int, default=None, help="run each trained arm over K seeds (mean ± std)")
    p.add_argument(
        "--data",
        default=None,
        metavar="PATH",
        help="directory of MNIST-layout IDX files (full MNIST or Fashion-MNIST) instead of the embedded subset",
    )
    p.add_argument("--inits", default=None, help="comma-separated initializers to sweep (e.g. Glorot,He,orthogonal)")
    p.add_argument("--lrs", default=None, help="comma-separated learning rates to sweep (e.g. 0.01,0.1)")
    p.add_argument("--report", default=None, metavar="FILE", help="with all: also write one self-contained HTML page")
    p.set_defaults(func=main)


def _floats(text, opt):
    try:
        vals = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"{opt} takes comma-separated numbers, got {text!r}") from None
    if not vals or not all(v > 0 for v in vals):
        raise ValueError(f"{opt} takes positive numbers, got {text!r}")
    return vals


def main(args: argparse.Namespace) -> int:
    from . import _common

    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    if args.seeds is not None and args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    if args.report is not None and args.name != "all":
        raise ValueError("--report needs NAME = all (the page covers every experiment)")
    if importlib.util.find_spec("matplotlib") is None:
        # said before minutes of computation; the numbers are still computed and printed
        print(
            "initcore experiment: matplotlib is not installed, so the figures are skipped "
            "(pip install 'initcore[plot]'); the numbers are printed and written to summary.md",
            flush=True,
        )
    _common.set_data_path(args.data)
    kw = {
        "backend": args.backend,
        "seed": args.seed,
        "seeds": args.seeds,
        "inits": tuple(v.strip() for v in args.inits.split(",") if v.strip()) if args.inits else None,
        "lrs": _floats(args.lrs, "--lrs") if args.lrs else None,
    }
    try:
        if args.name == "all":
            run_all(args.out, quick=args.quick, report=args.report, **kw)
        else:
            run(args.name, args.out, quick=args.quick, **kw)
    finally:
        _common.set_data_path(None)
    return 0
