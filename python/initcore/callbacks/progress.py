"""Progress output of ``fit``: :class:`ProgressBar` (a tqdm bar per epoch on a terminal, one
line per epoch elsewhere) and the log formatting it shares with other printers."""

from __future__ import annotations

import shutil
import sys
import time
from typing import Any

import numpy as np

from .base import Callback


def _fmt(value) -> str:
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
            return f"{v:.3e}"
        return f"{v:.4f}"
    return str(value)


def format_logs(logs: dict[str, Any], skip=("seconds", "size")) -> str:
    """``"loss 0.1234  accuracy 0.9650  lr 0.001"``: the logs in one line."""
    return "  ".join(
        f"{k} {v:.4g}" if k == "lr" and isinstance(v, (float, np.floating)) else f"{k} {_fmt(v)}"
        for k, v in logs.items()
        if k not in skip
    )


def wrap_entries(entries: list[str], width: int, sep: str = "  ") -> list[str]:
    """Greedy lines of ``entries`` joined by ``sep``, each at most ``width`` characters. An
    entry longer than a line is broken at its spaces, and a single word longer than a line
    continues on the next one: nothing is dropped."""
    lines: list[str] = []
    cur = ""

    def add(piece: str, joiner: str) -> None:
        nonlocal cur
        if cur and len(cur) + len(joiner) + len(piece) <= width:
            cur += joiner + piece
            return
        if cur:
            lines.append(cur)
        while len(piece) > width:
            lines.append(piece[:width])
            piece = piece[width:]
        cur = piece

    for e in entries:
        if not e:
            continue
        if len(e) <= width:
            add(e, sep)
        else:
            for i, word in enumerate(e.split(" ")):
                add(word, sep if i == 0 else " ")
    if cur:
        lines.append(cur)
    return lines


class ProgressBar(Callback):
    """Progress of ``fit``: on a terminal, one tqdm bar per epoch (steps, running loss and
    accuracy, samples per second), ending with the epoch's logs; otherwise (a file, a pipe, a
    notebook log) one line per epoch: ``epoch 3/20  loss …  val_accuracy …  lr …  1.2 s  (3400 samples/s)``.
    ``fit(verbose=1)`` adds one; ``verbose=0`` does not."""

    def __init__(self, stream=None, bar: bool | None = None):
        super().__init__()
        self._stream = stream
        self._bar_mode = bar
        self.bar = None

    @property
    def stream(self):
        return self._stream if self._stream is not None else sys.stdout

    def _use_bar(self) -> bool:
        if self._bar_mode is not None:
            return self._bar_mode
        isatty = getattr(self.stream, "isatty", None)
        try:
            return bool(isatty and isatty())
        except (ValueError, OSError):  # a closed stream
            return False

    def on_train_begin(self, logs=None):
        p = self._fit_params()
        self.steps = p.get("steps")
        self.last_epoch = p.get("initial_epoch", 0) + p["epochs"] if "epochs" in p else None

    def _label(self, epoch) -> str:
        return f"epoch {epoch + 1}/{self.last_epoch}" if self.last_epoch else f"epoch {epoch + 1}"

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()
        self.samples = 0
        self.loss_sum = 0.0
        self.acc_sum = 0.0
        self.acc_n = 0
        if self._use_bar():
            from tqdm.auto import tqdm

            # An explicit size: a pseudo-terminal without one reports 0 × 0, and tqdm hides
            # every bar below row 0.
            size = shutil.get_terminal_size((100, 20))
            self.columns = max(int(size.columns), 40)
            # A compact format without the rate, so that the running loss and accuracy fit in
            # 80 columns next to the bar (tqdm cuts whatever does not fit in ncols).
            self.bar = tqdm(
                total=self.steps,
                desc=self._label(epoch),
                unit="step",
                file=self.stream,
                leave=True,
                ncols=self.columns,
                nrows=size.lines,
                bar_format="{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]{postfix}",
            )

    def on_batch_end(self, batch, logs=None):
        logs = logs or {}
        size = int(logs.get("size", 1))
        self.samples += size
        if "loss" in logs:
            self.loss_sum += float(logs["loss"]) * size
        if "accuracy" in logs:
            self.acc_sum += float(logs["accuracy"]) * size
            self.acc_n += size
        if self.bar is not None:
            self._postfix()
            self.bar.update(1)

    def _postfix(self) -> None:
        """The running loss and accuracy after the bar, and the speed where it fits (the bar
        keeps at least 10 columns): nothing tqdm would have to cut at the terminal width."""
        post = f"loss {self.loss_sum / max(self.samples, 1):.4f}"
        if self.acc_n:
            post += f" acc {self.acc_sum / self.acc_n:.4f}"
        dt = time.perf_counter() - self.t0
        speed = f" {self.samples / dt:.0f}/s" if dt > 0 else ""
        fixed = len(self._label(0)) + 40 + len(post)
        self.bar.postfix = post + (speed if fixed + len(speed) <= self.columns else "")

    def next_batch_hook(self, batch):
        return None  # on_batches_end keeps it up to date

    def on_batches_end(self, first, last, logs=None):
        logs = logs or {}
        size = int(logs.get("size", 0))
        self.samples += size
        self.loss_sum += float(logs.get("loss_sum", 0.0))
        if logs.get("count"):
            # Σ batch accuracy · batch size, as on_batch_end sums it (count = size·outputs).
            self.acc_sum += logs["correct"] * size / logs["count"]
            self.acc_n += size
        if self.bar is not None:
            self._postfix()
            self.bar.update(last - first)

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        seconds = float(logs.get("seconds", time.perf_counter() - self.t0))
        speed = f"  ({self.samples / seconds:.0f} samples/s)" if seconds > 0 and self.samples else ""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
            # The epoch's logs (validation metrics included) below the bar, wrapped at the
            # terminal width between entries: shortened or wrapped, never cut.
            text = f"{format_logs(logs)}  {seconds:.2f} s{speed}".strip()
            for line in wrap_entries(text.split("  "), self.columns - 2):
                print("  " + line, file=self.stream, flush=True)
        else:
            print(f"{self._label(epoch)}  {format_logs(logs)}  {seconds:.2f} s{speed}", file=self.stream, flush=True)

    def on_train_end(self, logs=None):
        if self.bar is not None:  # stopped mid-epoch
            self.bar.close()
            self.bar = None
