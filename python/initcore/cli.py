"""The ``initcore`` command line: ``initcore train`` (the main job), ``initcore bench``,
``initcore experiment``, ``initcore sweep``.

``initcore train`` with no arguments trains a 784-256-128-10 ReLU network (He-normal weights,
dropout 0.2 after each hidden layer, Adam from learning rate 1e-3 with a cosine decay over the
20 epochs, batches of 64) on the embedded MNIST subset's stratified 4,000 / 1,000 split,
standardized with one mean and standard deviation of the training part, printing one line (or a
progress bar) per epoch and then the test accuracy. ``initcore train --help`` lists the options;
``--data DIR`` trains on full MNIST / Fashion-MNIST IDX files instead.

Why these defaults (final test accuracy after 20 epochs; ``--seed`` seeds the split, the
weights, shuffling and dropout): over seeds 0-3 the plain network (``--dropout 0 --schedule
none``) reached 93.7-95.1% (mean 94.5%), dropout 0.2 alone 94.2-95.3%, dropout 0.2 with the
cosine decay 94.4-95.5%; over seeds 0-7 the defaults give 94.2-96.1% (mean 95.1%; seed 0:
95.5%), in about 2 s of training (2.4 s wall in all) on two cores with a release build.
Per-pixel z-scores (``--standardize feature``) did no better: pixels that are almost always 0
get a tiny σ and rare test-time strokes become huge inputs.

Subcommands plug in through :data:`SUBCOMMANDS`: a module with ``add_subcommand(subparsers)``
that adds its parser and sets ``func`` (``args -> int``). Only the module of the subcommand being
run is imported, so ``initcore train`` does not load the benchmark's peers, and a missing
optional module fails with a one-line message. Bad arguments, missing or malformed files and
invalid values print one line on stderr and exit with status 2, never a traceback (set
``INITCORE_TRACEBACK=1`` to see one).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from collections.abc import Sequence

__all__ = ["main", "build_parser", "register_subcommand", "SUBCOMMANDS", "add_subcommand", "UsageError"]

#: name → (module, one-line help). The module's ``add_subcommand(subparsers)`` adds the parser.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "train": ("initcore.cli", "train an MLP on MNIST (the embedded subset or IDX files) and report test accuracy"),
    "bench": ("initcore.bench", "time training steps against the NumPy reference, PyTorch and JAX"),
    "experiment": ("initcore.experiments", "run the initialization / normalization experiments"),
    "sweep": ("initcore.sweep", "run a hyper-parameter sweep over train options and seeds (local processes or Ray)"),
}


def register_subcommand(name: str, module: str, help: str) -> None:
    """Adds (or replaces) a subcommand implemented by ``module.add_subcommand``."""
    SUBCOMMANDS[name] = (module, help)


class UsageError(Exception):
    """A bad command line or argument value: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse prints usage and exits; we want one line and status 2
        raise UsageError(f"{self.prog}: error: {message}")


# --- train ---------------------------------------------------------------------------------------

ACTIVATIONS = ("relu", "leaky_relu", "elu", "selu", "tanh", "sigmoid", "identity")
SCHEDULE_CHOICES = ("none", "step", "exponential", "cosine", "plateau")
STANDARDIZE_CHOICES = ("channel", "feature", "mean_image", "minmax", "none")


def _layers(text: str) -> list[int]:
    text = text.strip()
    if not text:
        return []
    try:
        sizes = [int(t) for t in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer widths such as 256,128, got {text!r}"
        ) from None
    if any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"layer widths must be positive, got {text!r}")
    return sizes


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def _nonneg_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not v >= 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return v


def _fraction(text: str) -> float:
    v = _nonneg_float(text)
    if not v < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text!r}")
    return v


def add_subcommand(subparsers) -> None:
    """Adds ``train`` (this module's own subcommand)."""
    from . import optim

    p = subparsers.add_parser(
        "train",
        help=SUBCOMMANDS["train"][1],
        description=SUBCOMMANDS["train"][1] + ".",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    a = p.add_argument_group("model")
    a.add_argument(
        "--layers",
        type=_layers,
        default=[256, 128],
        metavar="W1,W2,...",
        help="hidden layer widths ('' for none: softmax regression)",
    )
    a.add_argument("--activation", choices=ACTIVATIONS, default="relu", help="hidden activation")
    a.add_argument(
        "--init",
        default="he_normal",
        help="kernel initializer by name (he_normal, glorot_uniform, lecun_normal, orthogonal, ...)",
    )
    a.add_argument(
        "--batchnorm",
        choices=("none", "before", "after"),
        default="none",
        help="BatchNorm before or after each hidden activation",
    )
    a.add_argument(
        "--dropout",
        type=_fraction,
        default=0.2,
        help="dropout rate after each hidden layer (AlphaDropout for selu; 0: none)",
    )
    o = p.add_argument_group("optimization")
    o.add_argument("--optimizer", choices=sorted(optim.OPTIMIZERS), default="adam")
    o.add_argument(
        "--lr",
        type=_nonneg_float,
        default=None,
        help="learning rate (default: 1e-3 for adam/adamw, else the torch.optim default)",
    )
    o.add_argument("--momentum", type=_nonneg_float, default=None, help="momentum of sgd / rmsprop")
    o.add_argument("--weight-decay", type=_nonneg_float, default=None, help="weight decay (L2; decoupled for adamw)")
    o.add_argument(
        "--schedule",
        choices=SCHEDULE_CHOICES,
        default="cosine",
        help="learning-rate schedule: step (x0.1 every epochs/3), exponential (x0.9 per epoch), "
        "cosine (to 0 over the run), plateau (x0.5 after 2 epochs without improvement)",
    )
    o.add_argument("--epochs", type=_positive_int, default=20, help="passes over the training data")
    o.add_argument("--batch-size", type=_positive_int, default=64, help="samples per optimizer step")
    d = p.add_argument_group("data")
    d.add_argument(
        "--data",
        metavar="DIR",
        default=None,
        help="directory with MNIST/Fashion-MNIST IDX files (train-images-idx3-ubyte[.gz], ...); "
        "default: the embedded 5,000-image MNIST subset",
    )
    d.add_argument("--test-size", type=_positive_int, default=1000, help="test images held out of the embedded subset")
    d.add_argument(
        "--standardize",
        choices=STANDARDIZE_CHOICES,
        default="channel",
        help="input standardization fitted on the training part: channel (one mean/std, as "
        "torchvision), feature (per-pixel z-scores), mean_image, minmax, none",
    )
    d.add_argument(
        "--val-split",
        type=_fraction,
        default=0.0,
        help="fraction of the training part held out for validation (stratified); "
        "the plateau schedule monitors it when given, else the training loss",
    )
    r = p.add_argument_group("run")
    r.add_argument("--seed", type=int, default=0, help="seeds initialization, shuffling, dropout and the split")
    r.add_argument("--backend", choices=("rust", "numpy"), default="rust")
    r.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    r.add_argument("--threads", type=_positive_int, default=None, help="Rust threads (default: all cores)")
    r.add_argument(
        "--save",
        metavar="PATH",
        default=None,
        help="save the trained model (Sequential.load) and, if standardized, PATH.standardizer.npz",
    )
    r.add_argument("--quiet", action="store_true", help="print only the final result")
    p.set_defaults(func=run_train)


def _load_data(args):
    from . import data

    if args.data is not None:
        (x_train, y_train), (x_test, y_test) = data.load_mnist_dir(args.data, dtype=args.dtype)
        source = f"{args.data} ({x_train.shape[0]} train / {x_test.shape[0]} test)"
    else:
        (x_train, y_train), (x_test, y_test) = data.load_mnist_subset(
            split=True, test_size=args.test_size, seed=args.seed, dtype=args.dtype
        )
        source = f"embedded MNIST subset ({x_train.shape[0]} train / {x_test.shape[0]} test, stratified)"
    return x_train, y_train, x_test, y_test, source


def _build_model(args, input_dim: int, n_classes: int):
    from . import initializers
    from . import layers as L
    from .model import Sequential

    try:
        initializers.get(args.init)
    except (ValueError, TypeError) as e:
        raise UsageError(f"initcore train: error: argument --init: {e}") from None
    stack = []
    for width in args.layers:
        if args.batchnorm == "before":
            stack += [
                L.Dense(width, kernel_initializer=args.init, use_bias=False),
                L.BatchNorm(),
                L.Activation(args.activation),
            ]
        elif args.batchnorm == "after":
            stack += [L.Dense(width, kernel_initializer=args.init), L.Activation(args.activation), L.BatchNorm()]
        else:
            stack.append(L.Dense(width, activation=args.activation, kernel_initializer=args.init))
        if args.dropout > 0:
            stack.append(L.AlphaDropout(args.dropout) if args.activation == "selu" else L.Dropout(args.dropout))
    stack.append(L.Dense(n_classes, kernel_initializer=args.init))
    return Sequential(stack, input_dim=input_dim, seed=args.seed, dtype=args.dtype, backend=args.backend)


def _optimizer(args, params):
    from . import optim

    kw = {}
    if args.lr is not None:
        kw["lr"] = args.lr
    elif args.optimizer in ("adam", "adamw"):
        kw["lr"] = 1e-3
    if args.momentum is not None:
        if args.optimizer not in ("sgd", "rmsprop"):
            raise UsageError(f"initcore train: error: --momentum applies to sgd and rmsprop, not {args.optimizer}")
        kw["momentum"] = args.momentum
    if args.weight_decay is not None:
        kw["weight_decay"] = args.weight_decay
    return optim.get(args.optimizer, params, **kw)


def _schedule(args, monitor: str):
    from . import schedules

    if args.schedule == "none":
        return None
    if args.schedule == "step":
        return schedules.StepDecay(max(1, args.epochs // 3), gamma=0.1)
    if args.schedule == "exponential":
        return schedules.ExponentialDecay(0.9)
    if args.schedule == "cosine":
        return schedules.CosineDecay(args.epochs)
    return schedules.ReduceLROnPlateau(monitor=monitor, factor=0.5, patience=2, verbose=0 if args.quiet else 1)


def _save_standardizer(path: str, scaler) -> str:
    import tempfile

    import numpy as np

    target = path + ".standardizer.npz"
    st = scaler.state_dict()
    cfg = st["config"]
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=os.path.dirname(os.path.abspath(target)))
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(
                f,
                mode=cfg["mode"],
                channels=cfg["channels"],
                feature_range=np.array(cfg["feature_range"]),
                min_scale=cfg["min_scale"],
                shift=st["shift"],
                scale=st["scale"],
                mean=st["mean"],
                var=st["var"],
                n_samples_seen=st["n_samples_seen"],
            )
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return target


def run_train(args) -> int:
    """``initcore train``: returns 0 after printing the test accuracy."""
    import numpy as np

    import initcore

    from . import data

    t_start = time.perf_counter()
    if args.threads is not None:
        initcore.set_num_threads(args.threads)
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    x_train, y_train, x_test, y_test, source = _load_data(args)
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    scaler = None
    if args.standardize != "none":
        scaler = data.Standardizer(args.standardize).fit(x_train)
        x_train, x_test = scaler.transform(x_train), scaler.transform(x_test)
    validation = None
    if args.val_split > 0:
        x_train, x_val, y_train, y_val = data.train_test_split(
            x_train, y_train, test_size=args.val_split, seed=args.seed, stratify=y_train
        )
        validation = (x_val, y_val)
    model = _build_model(args, x_train.shape[1], n_classes)
    opt = _optimizer(args, model.parameters())
    sched = _schedule(args, "val_loss" if validation is not None else "loss")
    say(
        f"data: {source}; standardize: {args.standardize}"
        + (f"; validation: {validation[0].shape[0]} images" if validation is not None else "")
    )
    widths = "-".join(str(w) for w in [x_train.shape[1], *args.layers, n_classes])
    say(
        f"model: {widths} {args.activation}, init {args.init}, batchnorm {args.batchnorm}, dropout {args.dropout}, "
        f"{sum(p.size for p in model.parameters()):,} parameters, {args.dtype}, backend {args.backend}"
    )
    say(
        f"optimizer: {opt.kind} {', '.join(f'{k}={v}' for k, v in opt.hyper.items() if k != 'maximize')}; "
        f"schedule {args.schedule}; {args.epochs} epochs of batch {args.batch_size}"
    )
    t_fit = time.perf_counter()
    model.fit(
        x_train,
        y_train,
        optimizer=opt,
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_data=validation,
        callbacks=[sched] if sched is not None else None,
        verbose=0 if args.quiet else 1,
    )
    fit_seconds = time.perf_counter() - t_fit
    result = model.evaluate(x_test, y_test)
    correct = int(np.round(result["accuracy"] * x_test.shape[0]))
    print(
        f"test accuracy: {result['accuracy']:.4f} ({correct}/{x_test.shape[0]})  test loss: {result['loss']:.4f}  "
        f"training time: {fit_seconds:.1f} s  total: {time.perf_counter() - t_start:.1f} s",
        flush=True,
    )
    if args.save:
        model.save(args.save, callbacks=[sched] if sched is not None else [])
        say(f"saved the model to {args.save}")
        if scaler is not None:
            say(f"saved the input standardization to {_save_standardizer(args.save, scaler)}")
    return 0


# --- the command ---------------------------------------------------------------------------------


def _selected(argv: Sequence[str]) -> str | None:
    """The subcommand named on the command line (the first word not starting with '-')."""
    for a in argv:
        if not a.startswith("-"):
            return a
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The full parser. Only the selected subcommand's module is imported (``argv``); the
    others appear in ``--help`` with their one-line description."""
    import initcore

    parser = _Parser(
        prog="initcore",
        description="Train small MLPs fast on a CPU, and see what initialization, "
        "standardization and BatchNorm do inside them.",
    )
    parser.add_argument("--version", action="version", version=f"initcore {initcore.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{" + ",".join(SUBCOMMANDS) + "}", parser_class=_Parser)
    chosen = _selected(list(argv or []))
    for name, (module, help_text) in SUBCOMMANDS.items():
        if name == chosen:
            try:
                mod = importlib.import_module(module)
            except ImportError as e:
                raise UsageError(f"initcore {name}: not available: {module} cannot be imported ({e})") from None
            add = getattr(mod, "add_subcommand", None)
            if not callable(add):
                raise UsageError(f"initcore {name}: not available: {module} has no add_subcommand(subparsers)")
            add(sub)
        else:
            sub.add_parser(name, help=help_text, add_help=False)
    return parser


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``initcore`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    from .data import DataFormatError

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = os.environ.get("INITCORE_TRACEBACK", "") not in ("", "0")
    try:
        parser = build_parser(argv)
        args = parser.parse_args(argv)
        if getattr(args, "func", None) is None:
            print(f"initcore: error: choose a subcommand: {', '.join(SUBCOMMANDS)} (initcore --help)", file=sys.stderr)
            return 2
        return int(args.func(args) or 0)
    except UsageError as e:
        print(_one_line(e), file=sys.stderr)
        return 2
    except SystemExit as e:  # --help, --version
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    except KeyboardInterrupt:
        print("initcore: interrupted", file=sys.stderr)
        return 130
    except (OSError, DataFormatError, ValueError) as e:
        if debug:
            raise
        command = f"initcore {argv[0]}" if argv and not argv[0].startswith("-") else "initcore"
        print(f"{command}: error: {_one_line(e)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
