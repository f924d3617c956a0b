"""``compile`` and ``fit`` for :class:`~initcore.model.Sequential` (a mixin, so that the model
file holds the network and this one the training loop): the Keras-style epoch loop with
callbacks, validation, weights and schedules, handing whole epochs to the native engine when it
can (:mod:`initcore.fused`)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from . import fused as fused_mod
from . import layers as layers_mod
from . import losses, training
from ._guard import _count, _exclusive, _warn_non_finite

if TYPE_CHECKING:
    from .callbacks import Callback, History
    from .optim import Optimizer


class _Batches(Sequence):
    """The batches of one epoch: batch ``b`` is ``order[b * batch_size : (b + 1) * batch_size]``.
    With ``drop_single`` a batch of one row is left out; only the last batch can be one row short
    of two, unless every batch is one row."""

    def __init__(self, order, n: int, batch_size: int, drop_single: bool):
        self._order, self._size = order, batch_size
        self._count = -(-n // batch_size)
        if drop_single and batch_size == 1:
            self._count = 0
        elif drop_single and n % batch_size == 1:
            self._count -= 1

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, b):
        if isinstance(b, slice):
            return [self[i] for i in range(*b.indices(self._count))]
        if b < 0:
            b += self._count
        if not 0 <= b < self._count:
            raise IndexError(f"batch {b} out of range for {self._count} batches")
        return self._order[b * self._size : (b + 1) * self._size]


class FitMixin:
    """The training loop of :class:`~initcore.model.Sequential`."""

    # --- training loop ---------------------------------------------------------------------------
    def _batches(self, n, batch_size, order):
        """Row-index slices of ``order`` (a lazy sequence: a list of every slice, built twice per
        ``fit``, cost 0.24 µs per batch, 3% of the tiny network's step); a last batch of a single
        row is dropped when the model has BatchNorm (batch statistics need two rows, as in PyTorch)."""
        has_bn = any(isinstance(layer, layers_mod.BatchNorm) for layer in self.layers)
        return _Batches(order, n, batch_size, has_bn)

    def _accuracy_counts(self, out, y, loss):
        """(correct, count) for classification losses, else None."""
        if loss == "cross_entropy":
            if y.ndim == 2:  # soft targets: the arg-max class
                return int(np.count_nonzero(out.argmax(axis=1) == y.argmax(axis=1))), y.shape[0]
            return int(np.count_nonzero(out.argmax(axis=1) == y)), y.shape[0]
        if loss == "binary_cross_entropy":
            return int(np.count_nonzero((out > 0) == (y >= 0.5))), y.size
        return None

    def _make_optimizer(self, optimizer):
        from . import optim

        if optimizer is None:
            if self.optimizer is not None:
                return self.optimizer
            return optim.Adam(self.parameters(), lr=1e-3)
        if isinstance(optimizer, str):
            return optim.get(optimizer, self.parameters())
        if isinstance(optimizer, type) and issubclass(optimizer, optim.Optimizer):
            return optimizer(self.parameters())
        return optimizer

    # --- compile (Keras) ---------------------------------------------------------------------------
    def compile(self, optimizer="adam", loss="cross_entropy", metrics=None, lr=None, **optimizer_kwargs):
        """Records the training choices, as Keras's ``compile``; ``fit(x, y)`` then uses them.

        ``optimizer``: a name (``"adam"``, ...), an ``initcore.optim`` class, an optimizer object
        over this model's parameters, or a callable ``f(model) -> optimizer`` (for parameter
        groups: ``lambda m: optim.AdamW(optim.decay_groups(m, 0.05), lr=3e-3)``). A name or
        class is constructed with ``lr`` and ``optimizer_kwargs`` (``weight_decay``,
        ``clipnorm``, ...) when the model is built (at once if it is built already), so it
        can be chosen before the input width is known. ``loss``: a name, an
        ``initcore.losses.Loss`` or a Python callable. ``metrics``: see ``initcore.metrics``.
        Returns the model."""
        from . import metrics as metrics_mod

        spec = losses.get(loss)
        for m in metrics or []:  # checked now; fit and evaluate make their own
            metrics_mod.get(m)
        self.compiled = {
            "optimizer": optimizer,
            "lr": lr,
            "optimizer_kwargs": dict(optimizer_kwargs),
            "loss": spec,
            "metrics": list(metrics or []),
        }
        self.optimizer = None
        self._checked_optimizer = None
        if self.built:
            self._bind_compiled()
        return self

    def _bind_compiled(self):
        c = self.compiled
        self.optimizer = training.bind_optimizer(self, c["optimizer"], c["lr"], c["optimizer_kwargs"])

    @_exclusive
    def fit(
        self,
        x: ArrayLike,
        y: ArrayLike,
        optimizer: Optimizer | str | None = None,
        loss: Any = None,
        epochs: int = 1,
        batch_size: int = 32,
        validation_data: tuple | None = None,
        callbacks: Iterable[Callback] | None = None,
        shuffle: bool = True,
        verbose: int = 1,
        initial_epoch: int | None = None,
        *,
        check: bool = False,
        validation_split: float = 0.0,
        sample_weight: ArrayLike | None = None,
        class_weight: dict | None = None,
        metrics: list | None = None,
    ) -> History:
        """Trains for ``epochs`` epochs of minibatches; returns the ``History``.

        ``optimizer``: an ``initcore.optim`` object over ``model.parameters()``, a name or class
        (defaults), or ``None`` for the model's current one (``compile``'s, else ``Adam(lr=1e-3)``).
        ``loss``: a name, an ``initcore.losses.Loss`` or a callable (default: ``compile``'s, else
        ``"cross_entropy"``). Each epoch shuffles the rows with ``self.rng`` (``shuffle=True``)
        and runs ``train_step`` on consecutive batches; epochs are numbered from
        ``initial_epoch`` (default: ``epochs_completed``, so a loaded model's schedules resume).

        ``sample_weight (n,)`` / ``class_weight {class: weight}``: per-sample weights of the loss
        (Keras: the batch loss is ``Σ w_i·l_i / batch size``), in the gradient and the reported
        loss. ``validation_split=f``: the last ``1 − ⌊n(1 − f)⌋/n`` of the rows, before
        shuffling, are held out as the validation set (Keras; ``validation_data`` takes
        precedence). ``metrics``: names, ``initcore.metrics`` objects or callables (default
        ``compile``'s), logged per epoch for the training batches and the validation set.

        Epoch logs: ``loss`` (mean over the epoch's samples, weights changing meanwhile),
        ``accuracy`` (classification losses), the metrics, ``val_loss``/``val_accuracy``/
        ``val_<metric>`` (``evaluate`` on the validation set at the epoch end), ``lr`` (the
        learning rate at the epoch's start), ``seconds``. ``verbose=1`` adds a ``ProgressBar``;
        callbacks stop training by setting ``model.stop_training``.

        A fused model runs the batches of an epoch in one native call (``fused.train_batches``;
        the GIL released), returning to Python only for the batches some callback must see
        (``Callback.next_batch_hook``: a ``Watch`` record, a callback with batch hooks), for a
        progress report about every 0.1 s (``Callback.on_batches_end``), and for a pending
        signal: Ctrl-C raises ``KeyboardInterrupt`` after the step in progress, leaving the
        model, its optimizer and its Generator as of the last completed step. The result is the
        same bits as one ``train_step`` per batch. A per-step schedule
        (``initcore.schedules.StepSchedule``) passes its rates for those batches to the native
        call; a Python loss or metric computed from the training outputs runs batch by batch.

        ``epochs`` and ``initial_epoch`` are ints >= 0. A model with BatchNorm refuses one-row
        batches (``ValueError``) and skips a one-row trailing batch, noted in
        ``history.notes``. The first non-finite batch loss is warned about (``RuntimeWarning``
        naming the epoch and step; on the native path, the last step of the native call in which
        it happened); ``TerminateOnNaN`` stops there. ``check=True`` runs ``diagnostics.check``
        on the first batch before training on it (its ``InitWarning``s; the model's state is
        left unchanged).
        """
        from . import callbacks as cb_mod
        from . import metrics as metrics_mod

        compiled = self.compiled or {}
        spec = losses.get(loss if loss is not None else compiled.get("loss", "cross_entropy"))
        loss = self._loss_name(spec)
        metric_specs = metrics if metrics is not None else compiled.get("metrics", [])
        x = self._input(x)
        y = self._target(y, loss, x.shape[0])
        training.check_output_layer(self, loss)
        n = x.shape[0]
        if n == 0:
            raise ValueError("Sequential.fit: x has no rows")
        w = training.weights_array(sample_weight, class_weight, y, loss, n, self.dtype)
        epochs = _count("epochs", epochs)
        if initial_epoch is not None:
            initial_epoch = _count("initial_epoch", initial_epoch)
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"Sequential.fit: batch_size must be a positive int, got {batch_size!r}")
        wv = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError(
                    "Sequential.fit: validation_data must be (x_val, y_val) or (x_val, y_val, sample_weight)"
                )
            xv = self._input(validation_data[0], "validation_data[0]")
            yv = self._target(validation_data[1], loss, xv.shape[0], "validation_data[1]")
            if len(validation_data) == 3:
                wv = training.weights_array(validation_data[2], None, yv, loss, xv.shape[0], self.dtype)
        elif validation_split:
            (x, y, w), (xv, yv, wv) = training.split_validation(validation_split, [x, y, w], n)
            n = x.shape[0]
        has_val = validation_data is not None or bool(validation_split)
        has_bn = any(isinstance(layer, layers_mod.BatchNorm) for layer in self.layers)
        if has_bn and min(int(batch_size), n) == 1:
            raise ValueError(
                f"Sequential.fit: batch_size={batch_size} with {n} rows gives one-row batches, and the model has "
                "BatchNorm, whose batch statistics need at least two rows; use batch_size >= 2"
            )
        optimizer = self._make_optimizer(optimizer)
        self._check_optimizer(optimizer)
        self.optimizer, self.loss, self.loss_fn, self.stop_training = optimizer, loss, spec, False
        # The plain case (a loss by name without options, no weights) keeps the fused step's call.
        step_loss = loss if isinstance(spec, losses.Loss) and spec == losses.Loss(loss) else spec
        user = list(callbacks or [])
        self._fit_callbacks = user
        self.history = cb_mod.History()
        if has_bn and n % batch_size == 1:
            self.history.notes.append(
                f"the last batch of each epoch (1 row of {n}) was skipped: BatchNorm needs two rows "
                "(as PyTorch's drop_last)"
            )
        extra = [cb_mod.ProgressBar()] if verbose else []
        cbs = cb_mod.CallbackList(user + [self.history] + extra)
        cbs.set_model(self)
        start = self.epochs_completed if initial_epoch is None else int(initial_epoch)
        steps = len(self._batches(n, batch_size, None))
        self.fit_params = {
            "epochs": epochs,
            "initial_epoch": start,
            "steps": steps,
            "samples": n,
            "batch_size": int(batch_size),
            "verbose": verbose,
        }
        cbs.set_params(self.fit_params)
        logs, warned = {}, False
        cbs.on_train_begin(logs)
        # Until a model that cannot be fused says otherwise; the options the native epoch does
        # not take (weights, a Python loss, metrics on the outputs) run batch by batch.
        native = isinstance(spec, losses.Loss) and all(m in ("accuracy", "acc") for m in metric_specs)
        step_schedule = next((cb for cb in reversed(user) if getattr(cb, "per_step", False)), None)
        refresh = 0.1 if cbs.wants_batches_end() else 0.0  # seconds between progress reports
        for epoch in range(start, start + epochs):
            cbs.on_epoch_begin(epoch, {})
            lr = float(optimizer.lr)
            t0 = time.perf_counter()
            order = self.rng.permutation(n) if shuffle else np.arange(n)
            total, seen, acc = 0.0, 0, [0, 0]
            tracked = [metrics_mod.get(m) for m in metric_specs]
            for m in tracked:  # a Metric object given by the user is reused: start afresh
                m.reset()
            batches = self._batches(n, batch_size, order)
            b = 0
            while b < len(batches):
                # Batches no callback must see one at a time run natively, many per call
                # (fused.train_batches); the others, and every batch of a model that cannot be
                # fused, run one train_step each with their hooks.
                due = cbs.next_batch_hook(b) if native else b
                due = len(batches) if due is None else min(due, len(batches))
                if check and epoch == start and b == 0:
                    due = 0  # the start-up check sees the first batch before it is trained on
                if due > b:
                    lrs = moms = None
                    if step_schedule is not None:
                        lrs = step_schedule.lrs(optimizer.step_count, due - b)
                        if callable(getattr(step_schedule, "momentums", None)):  # OneCycle's cycled momentum
                            moms = step_schedule.momentums(optimizer.step_count, due - b)
                    got = fused_mod.train_batches(
                        self, x, y, optimizer, step_loss, order, batch_size, b, due - b, lrs, refresh, total, w, moms
                    )
                    if got is None:
                        native = False
                    else:
                        steps, new_total, size, correct, count = got
                        if lrs is not None and steps:
                            optimizer.lr = float(lrs[steps - 1])  # as the schedule's batch hook leaves it
                        if moms is not None and steps:
                            optimizer.set_momentum(float(moms[steps - 1]))
                        if not warned and steps and not math.isfinite(new_total - total):
                            warned = True
                            _warn_non_finite(new_total - total, epoch, f"step {b + steps - 1} at the latest")
                        seen += size
                        acc[0] += correct
                        acc[1] += count
                        blogs = {"size": size, "loss_sum": new_total - total, "correct": correct, "count": count}
                        total = new_total
                        cbs.on_batches_end(b, b + steps, blogs)
                        b += steps
                        if self.stop_training:
                            break
                        continue
                idx = batches[b]
                cbs.on_batch_begin(b, {"size": len(idx)})
                xb, yb = x[idx], y[idx]
                if check and epoch == start and b == 0:
                    self._check_first_batch(xb, yb, loss)
                value = self.train_step(xb, yb, optimizer, step_loss, sample_weight=None if w is None else w[idx])
                if not warned and not math.isfinite(value):
                    warned = True
                    _warn_non_finite(value, epoch, f"step {b}")
                total += value * len(idx)
                seen += len(idx)
                blogs = {"loss": value, "size": len(idx)}
                counts = self._accuracy_counts(self.last_output, yb, loss) if self.last_output is not None else None
                if counts is not None:
                    acc[0] += counts[0]
                    acc[1] += counts[1]
                    blogs["accuracy"] = counts[0] / counts[1]
                for m in tracked:
                    m.update(self.last_output, yb)
                cbs.on_batch_end(b, blogs)
                b += 1
                if self.stop_training:
                    break
            logs = {"loss": total / seen if seen else math.nan}
            if acc[1]:
                logs["accuracy"] = acc[0] / acc[1]
            for m in tracked:
                if m.name != "accuracy" or "accuracy" not in logs:
                    logs[m.name] = m.result()
            if has_val:
                val = self.evaluate(xv, yv, loss=spec, sample_weight=wv, metrics=metric_specs)
                logs.update({f"val_{k}": v for k, v in val.items()})
            logs["lr"] = lr
            logs["seconds"] = time.perf_counter() - t0
            self.epochs_completed = epoch + 1
            cbs.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        cbs.on_train_end(logs)
        return self.history

    def _check_first_batch(self, xb, yb, loss):
        """``fit(check=True)``: the measured start-up checks on the first batch (diagnostics)."""
        from .diagnostics import check as check_start

        if xb.shape[0] >= 2:  # BatchNorm's batch statistics need two rows
            check_start(self, xb, y=yb, loss=loss)

    # --- inference -------------------------------------------------------------------------------
    def _batch_size(self, batch_size):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"Sequential: batch_size must be a positive int, got {batch_size!r}")
        return int(batch_size)

    def _batched(self, x, batch_size):
        batch_size = self._batch_size(batch_size)
        return [slice(i, i + batch_size) for i in range(0, x.shape[0], batch_size)]
