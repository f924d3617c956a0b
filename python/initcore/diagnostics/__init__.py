"""Diagnostics: what happens inside a network at the first pass and during training.

- :func:`activation_stats` — per-layer pre-activation and activation statistics on a batch
  (mean, std, min, max, histogram, saturated and dead fractions) as a :class:`StatsTable`;
- :func:`gradient_stats` — per-parameter gradient norms and update-to-weight ratios
  (:func:`snapshot` the weights before ``optimizer.step()``);
- :class:`Watch` — a ``fit`` callback recording both every N steps with the Rust
  ``column_stats`` kernel (``history.watch``);
- :func:`check` — :class:`InitWarning` for problems measured on a batch at the first pass
  (saturation, zeros per sample and per unit, forward and backward gain per layer, symmetric
  weights, unscaled input), each naming the layer, the number and a fix; :func:`measure` returns
  those numbers.

Pictures of these records are in :mod:`initcore.plots`.
"""

from .activations import Block, activation_stats, blocks, trace
from .checks import InitWarning, check, measure
from .gradients import gradient_stats, snapshot
from .tables import StatsTable
from .watch import Watch, WatchLog

__all__ = [
    "activation_stats",
    "gradient_stats",
    "snapshot",
    "Watch",
    "WatchLog",
    "check",
    "measure",
    "InitWarning",
    "StatsTable",
    "Block",
    "blocks",
    "trace",
]
