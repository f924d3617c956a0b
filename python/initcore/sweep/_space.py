"""The search space: a grid crossed with seeded random draws.

``Space(grid, random, n_random, seed)`` expands to ``|grid| × n_random`` configurations, in a
fixed order: for each random draw (drawn once from ``numpy.random.default_rng(seed)``, so the
same space always gives the same configurations), every grid point in the order of
``itertools.product`` over the grid's keys as given. Each random draw is shared by all grid
points, so grid arms are compared at the same random values (the paired design; Ray Tune's
``num_samples`` redraws per grid point instead).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["Space", "Distribution", "uniform", "loguniform", "choice", "randint"]


class Distribution:
    """One random option: ``sample(rng)`` returns a plain Python value."""

    def sample(self, rng: np.random.Generator) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


class _Uniform(Distribution):
    def __init__(self, low: float, high: float, log: bool):
        low, high = float(low), float(high)
        if not (math.isfinite(low) and math.isfinite(high)) or not low < high:
            raise ValueError(f"uniform bounds must be finite with low < high, got low={low!r}, high={high!r}")
        if log and not low > 0:
            raise ValueError(f"loguniform bounds must be > 0, got low={low!r}")
        self.low, self.high, self.log = low, high, log

    def sample(self, rng):
        if self.log:
            return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return float(rng.uniform(self.low, self.high))

    def __repr__(self):
        return f"{'loguniform' if self.log else 'uniform'}({self.low!r}, {self.high!r})"


class _Choice(Distribution):
    def __init__(self, values: Sequence):
        self.values = list(values)
        if not self.values:
            raise ValueError("choice needs at least one value")

    def sample(self, rng):
        return self.values[int(rng.integers(len(self.values)))]

    def __repr__(self):
        return f"choice({self.values!r})"


class _RandInt(Distribution):
    def __init__(self, low: int, high: int):
        low, high = int(low), int(high)
        if not low < high:
            raise ValueError(f"randint needs low < high (high exclusive), got {low}, {high}")
        self.low, self.high = low, high

    def sample(self, rng):
        return int(rng.integers(self.low, self.high))

    def __repr__(self):
        return f"randint({self.low}, {self.high})"


def uniform(low: float, high: float) -> Distribution:
    """A float drawn uniformly from ``[low, high)``."""
    return _Uniform(low, high, log=False)


def loguniform(low: float, high: float) -> Distribution:
    """A float whose logarithm is uniform on ``[log low, log high)`` (learning rates)."""
    return _Uniform(low, high, log=True)


def choice(values: Sequence) -> Distribution:
    """One of ``values``, each equally likely."""
    return _Choice(values)


def randint(low: int, high: int) -> Distribution:
    """An integer in ``[low, high)``."""
    return _RandInt(low, high)


def _grid_values(name: str, values) -> list:
    # A string, a number or a layer list such as (256, 128) given alone is one fixed value; a list
    # of them is the arm's choices. Layers are the one option whose value is itself a sequence, so
    # a list of sequences is a list of choices and a flat list of ints under "layers" is one value.
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable) or isinstance(values, Mapping):
        return [values]
    values = list(values)
    if name == "layers" and values and all(isinstance(v, (int, np.integer)) for v in values):
        return [values]
    if not values:
        raise ValueError(f"Space: grid option {name!r} has no values")
    return values


class Space:
    """A grid of options crossed with ``n_random`` seeded random draws.

    ``grid``: option → list of values (a single value is fixed for every trial). ``random``:
    option → a :class:`Distribution` (``loguniform``, ``uniform``, ``choice``, ``randint``) or a
    list (a uniform choice). ``n_random``: the number of random draws (default 1 if ``random``
    is given). ``seed``: seeds the draws, not the trials. A plain ``dict`` passed to
    ``sweep.run`` is ``Space(grid=that_dict)``.
    """

    def __init__(
        self,
        grid: Mapping[str, Any] | None = None,
        random: Mapping[str, Any] | None = None,
        n_random: int | None = None,
        seed: int = 0,
    ):
        grid = dict(grid or {})
        random = dict(random or {})
        for name in list(grid) + list(random):
            if not isinstance(name, str) or not name:
                raise TypeError(f"Space: option names must be non-empty strings, got {name!r}")
        both = sorted(set(grid) & set(random))
        if both:
            raise ValueError(f"Space: options {both} are both in grid and in random")
        self.grid = {k: _grid_values(k, v) for k, v in grid.items()}
        self.random = {}
        for k, v in random.items():
            if isinstance(v, Distribution):
                self.random[k] = v
            elif isinstance(v, (list, tuple)):
                self.random[k] = choice(v)
            else:
                raise TypeError(f"Space: random option {k!r} must be a Distribution or a list, got {type(v).__name__}")
        if n_random is None:
            n_random = 1
        if isinstance(n_random, bool) or not isinstance(n_random, (int, np.integer)) or n_random < 1:
            raise ValueError(f"Space: n_random must be a positive int, got {n_random!r}")
        if n_random > 1 and not self.random:
            raise ValueError(f"Space: n_random={n_random} needs at least one random option")
        self.n_random = int(n_random)
        self.seed = int(seed)

    @classmethod
    def coerce(cls, space) -> Space:
        """``space`` itself, or ``Space(grid=space)`` for a mapping."""
        if isinstance(space, Space):
            return space
        if isinstance(space, Mapping):
            return cls(grid=space)
        raise TypeError(f"sweep: space must be a sweep.Space or a dict of option -> values, got {type(space).__name__}")

    @property
    def names(self) -> list[str]:
        """The options, grid first, in the order given (the columns of ``trials.csv``)."""
        return list(self.grid) + list(self.random)

    @property
    def swept(self) -> list[str]:
        """The options that take more than one value."""
        return [k for k, v in self.grid.items() if len(v) > 1] + list(self.random)

    def configs(self) -> list[dict[str, Any]]:
        """Every configuration, in the documented order."""
        rng = np.random.default_rng(self.seed)
        draws = [{k: d.sample(rng) for k, d in self.random.items()} for _ in range(self.n_random)]
        keys = list(self.grid)
        points = [dict(zip(keys, combo)) for combo in itertools.product(*(self.grid[k] for k in keys))]
        return [{**p, **d} for d in draws for p in points]

    def __len__(self) -> int:
        return math.prod(len(v) for v in self.grid.values()) * self.n_random

    def __repr__(self) -> str:
        return f"Space(grid={self.grid!r}, random={self.random!r}, n_random={self.n_random}, seed={self.seed})"


def parse_seeds(seeds) -> list[int]:
    """``seeds`` as a list of distinct ints: an int ``K`` (seeds 0..K-1), an iterable of ints, or
    a string such as ``"0-4"`` or ``"0,3,7"`` (the command line's ``--seeds``)."""
    if isinstance(seeds, str):
        out: list[int] = []
        for part in seeds.split(","):
            part = part.strip()
            try:
                if "-" in part[1:]:
                    i = part.index("-", 1)
                    lo, hi = int(part[:i]), int(part[i + 1 :])
                    if hi < lo:
                        raise ValueError
                    out += list(range(lo, hi + 1))
                else:
                    out.append(int(part))
            except ValueError:
                raise ValueError(f"seeds: expected K, A-B or a comma-separated list of ints, got {seeds!r}") from None
        seeds = out
    elif isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ValueError(f"seeds: a count must be >= 1, got {seeds}")
        seeds = list(range(int(seeds)))
    else:
        try:
            seeds = [int(s) for s in seeds]
        except (TypeError, ValueError):
            raise ValueError(f"seeds: expected an int count or an iterable of ints, got {seeds!r}") from None
    if not seeds:
        raise ValueError("seeds: no seeds given")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds: duplicates in {seeds}")
    return seeds


def _seeds_text(seeds: list[int]) -> str:
    """``"0-4"`` for a run of consecutive seeds, else ``"0,3,7"``."""
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(str(s) for s in seeds)
