"""``initcore sweep``: a sweep over ``initcore train`` options from the command line.

::

    initcore sweep --param init=he_normal,glorot_uniform --param activation=relu,tanh \\
                   --seeds 0-4 --epochs 10 [--ray ADDRESS|local] [--scheduler asha] --out DIR

``--param NAME=V1,V2,...`` adds a grid option (any ``initcore train`` option, ``-`` or ``_`` in
its name; a ``layers`` value is itself comma-separated, so its choices are separated by ``/``:
``--param layers=256,128/512``). ``--random NAME=loguniform:LOW:HIGH`` (or ``uniform:LOW:HIGH``,
``randint:LOW:HIGH``, ``choice:A,B,C``) adds a random option drawn ``--n-random`` times. It prints
a progress bar over trials, then the ranked summary, and writes ``trials.csv``, ``epochs.csv``,
``summary.csv``, ``summary.md``, ``curves.png`` and ``final.png`` into ``--out`` (the figures need
matplotlib; without it the command says which it skipped). ``trials.csv`` is rewritten after every
finished trial, so Ctrl-C leaves the finished trials on disk (exit status 130).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from . import _space
from ._trial import TRAIN_OPTIONS, check_train_config

HELP = "run a hyper-parameter sweep over train options and seeds, on local processes or a Ray cluster"


def _option_name(name: str) -> str:
    name = name.strip().lstrip("-").replace("-", "_")
    if name not in TRAIN_OPTIONS:
        raise argparse.ArgumentTypeError(f"{name!r} is not an initcore train option ({', '.join(TRAIN_OPTIONS)})")
    return name


def _param(text: str):
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=V1,V2,..., got {text!r}")
    name, values = text.split("=", 1)
    name = _option_name(name)
    parts = values.split("/") if name == "layers" else values.split(",")
    if any(p.strip() == "" for p in parts) and name != "layers":
        raise argparse.ArgumentTypeError(f"empty value in {text!r}")
    try:
        typed = [check_train_config({name: p.strip()})[name] for p in parts]
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).replace("sweep: ", "")) from None
    return name, typed


_RANDOM_TEXT: dict[str, str] = {}  # option -> its --random spec as typed, for summary.md


def _random(text: str):
    if "=" not in text or ":" not in text:
        raise argparse.ArgumentTypeError(
            f"expected NAME=loguniform:LOW:HIGH (or uniform, randint, choice), got {text!r}"
        )
    name, spec = text.split("=", 1)
    name = _option_name(name)
    _RANDOM_TEXT[name] = spec
    kind, _, rest = spec.partition(":")
    try:
        if kind == "choice":
            values = [check_train_config({name: v.strip()})[name] for v in rest.split(",")]
            return name, _space.choice(values)
        low, high = rest.split(":")
        if kind == "randint":
            return name, _space.randint(int(low), int(high))
        if kind in ("uniform", "loguniform"):
            return name, getattr(_space, kind)(float(low), float(high))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{text!r}: {str(e).replace('sweep: ', '')}") from None
    raise argparse.ArgumentTypeError(
        f"unknown distribution {kind!r} in {text!r} (loguniform, uniform, randint, choice)"
    )


def _seeds(text: str):
    try:
        return _space.parse_seeds(int(text) if text.isdigit() and "-" not in text and "," not in text else text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_subcommand(subparsers) -> None:
    from ..cli import _positive_int

    p = subparsers.add_parser(
        "sweep",
        help=HELP,
        description=HELP + ". " + __doc__.split("\n\n")[2].replace("\n", " ") + "",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    s = p.add_argument_group("space")
    s.add_argument(
        "--param", type=_param, action="append", default=[], metavar="NAME=V1,V2", help="a grid option (repeatable)"
    )
    s.add_argument(
        "--random",
        type=_random,
        action="append",
        default=[],
        metavar="NAME=DIST:A:B",
        help="a random option: loguniform:LOW:HIGH, uniform:LOW:HIGH, randint:LOW:HIGH or choice:A,B (repeatable)",
    )
    s.add_argument("--n-random", type=_positive_int, default=None, help="random draws (default 1)")
    s.add_argument("--space-seed", type=int, default=0, help="seeds the random draws")
    s.add_argument(
        "--seeds",
        type=_seeds,
        default=[0, 1, 2],
        metavar="K|A-B|A,B,C",
        help="trial seeds: a count K (0..K-1), a range or a list",
    )
    s.add_argument("--epochs", type=_positive_int, default=10, help="epochs per trial (unless --param epochs=...)")
    d = p.add_argument_group("data")
    d.add_argument(
        "--data",
        default="mnist",
        metavar="mnist|boston|DIR",
        help="the embedded MNIST subset (4,000/1,000 split), Boston housing, or a folder of MNIST IDX files",
    )
    r = p.add_argument_group("run")
    r.add_argument(
        "--ray",
        metavar="ADDRESS",
        default=None,
        help="run on Ray Tune: a cluster's host:port, 'auto' (Ray's default lookup) or 'local' (start one here)",
    )
    r.add_argument("--scheduler", choices=("none", "asha"), default="none", help="early stopping (with --ray)")
    r.add_argument("--jobs", type=_positive_int, default=None, help="concurrent trials (default: every CPU)")
    r.add_argument("--metric", default=None, help="the metric that ranks configs (default val_accuracy, val_loss)")
    r.add_argument("--mode", choices=("max", "min"), default=None, help="default: min for losses, else max")
    r.add_argument("--out", default=os.path.join("runs", "sweep"), metavar="DIR", help="where the files go")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_sweep)


def _command(args) -> str:
    """The command line that ran this sweep, for summary.md."""
    words = ["initcore", "sweep"]
    for name, values in args.param:
        sep = "/" if name == "layers" else ","
        words += ["--param", f"{name.replace('_', '-')}=" + sep.join(_space_text(v) for v in values)]
    for name, _ in args.random:
        words += ["--random", f"{name.replace('_', '-')}={args.random_text[name]}"]
    if args.n_random:
        words += ["--n-random", str(args.n_random)]
    words += ["--seeds", _space._seeds_text(args.seeds), "--epochs", str(args.epochs)]
    for flag, value, default in (
        ("--data", args.data, "mnist"),
        ("--ray", args.ray, None),
        ("--scheduler", args.scheduler, "none"),
    ):
        if value != default:
            words += [flag, value]
    return shlex.join(words)


def _space_text(v) -> str:
    return ",".join(str(x) for x in v) if isinstance(v, (list, tuple)) else str(v)


def run_sweep(args) -> int:
    from ..cli import UsageError
    from . import Space, run

    names = [n for n, _ in args.param] + [n for n, _ in args.random]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise UsageError(f"initcore sweep: error: option {dup[0]} is given more than once")
    if args.scheduler != "none" and args.ray is None:
        raise UsageError("initcore sweep: error: --scheduler asha needs --ray (the local engine runs every epoch)")
    if args.n_random is not None and args.n_random > 1 and not args.random:
        raise UsageError("initcore sweep: error: --n-random needs at least one --random option")
    args.random_text = dict(_RANDOM_TEXT)
    space = Space(grid=dict(args.param), random=dict(args.random), n_random=args.n_random, seed=args.space_seed)
    engine = "local" if args.ray is None else "ray"
    address = None if args.ray in (None, "auto") else args.ray
    n = len(space) * len(args.seeds)
    print(
        f"sweep: {len(space)} configs × {len(args.seeds)} seeds = {n} trials of {args.epochs} "
        f"epoch{'s' if args.epochs != 1 else ''} on {args.data}, "
        f"engine {engine}{'' if address is None else ' ' + address}"
        + (f", scheduler {args.scheduler}" if args.scheduler != "none" else ""),
        flush=True,
    )
    try:
        result = run(
            space,
            args.data,
            seeds=args.seeds,
            epochs=args.epochs,
            engine=engine,
            ray_address=address,
            scheduler=None if args.scheduler == "none" else args.scheduler,
            n_jobs=args.jobs,
            metric=args.metric,
            mode=args.mode,
            out=args.out,
            progress=not args.quiet,
        )
    except KeyboardInterrupt:
        print(
            f"initcore sweep: interrupted; the finished trials are in {os.path.join(args.out, 'trials.csv')}",
            file=sys.stderr,
            flush=True,
        )
        return 130
    # Rewrite summary.md with the command that made it (the sweep itself does not know it).
    from ._results import write_atomic

    md = result.markdown([p for p in result.files["written"] if p.endswith(".png")], _command(args))
    write_atomic(os.path.join(args.out, "summary.md"), md)
    table = result.summary_table()
    print(f"\n{table}\n", flush=True)
    for t in result.errors:
        print(f"trial {t.index} (seed {t.seed}) failed: {t.row()['error']}", flush=True)
    print(f"wrote {', '.join(os.path.basename(p) for p in result.files['written'])} to {args.out}", flush=True)
    for name, why in result.files["skipped"]:
        print(f"skipped {name}: {why} (pip install 'initcore[plot]')", flush=True)
    return 0
