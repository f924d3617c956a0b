"""A CSV log of the epochs: :class:`CSVLogger`."""

from __future__ import annotations

import csv
import io
import os

import numpy as np

from .._files import write_text
from .base import Callback


class CSVLogger(Callback):
    """Writes one row per epoch (``epoch`` and the epoch logs, columns sorted, ``NA`` where an
    epoch lacks a key) to ``path``; the file is rewritten atomically (temporary file +
    ``os.replace``) after each epoch. ``append=True`` keeps the rows already in the file."""

    def __init__(self, path, separator: str = ",", append: bool = False):
        super().__init__()
        self.path = os.fspath(path)
        self.sep = separator
        self.append = bool(append)
        self.rows: list[dict[str, str]] = []
        self.keys: list[str] = []

    def on_train_begin(self, logs=None):
        self.rows, self.keys = [], []
        if self.append and os.path.exists(self.path):
            with open(self.path, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f, delimiter=self.sep)
                self.keys = [k for k in (reader.fieldnames or []) if k != "epoch"]
                self.rows = [dict(r) for r in reader]

    @staticmethod
    def _cell(v) -> str:
        if isinstance(v, (float, np.floating)):
            return repr(float(v))
        if isinstance(v, (np.integer,)):
            return str(int(v))
        if isinstance(v, (list, tuple, np.ndarray)):
            return "[" + " ".join(repr(float(x)) for x in np.asarray(v, dtype=np.float64).ravel()) + "]"
        return str(v)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        row = {"epoch": str(int(epoch))}
        row.update({k: self._cell(v) for k, v in logs.items()})
        self.rows.append(row)
        self.keys = sorted(set(self.keys) | set(logs))
        buf = io.StringIO()
        writer = csv.DictWriter(
            buf,
            fieldnames=["epoch"] + self.keys,
            delimiter=self.sep,
            restval="NA",
            lineterminator="\n",
            extrasaction="ignore",
        )
        writer.writeheader()
        for r in self.rows:
            writer.writerow({k: (v if v != "" else "NA") for k, v in r.items()})
        write_text(self.path, buf.getvalue(), suffix=".csv")
