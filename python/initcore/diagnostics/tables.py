"""``StatsTable``: a list of records (dicts) that prints as an aligned text table."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np


def _is_scalar(v) -> bool:
    return v is None or isinstance(v, (bool, int, float, str, np.integer, np.floating, np.bool_))


def format_value(v) -> str:
    """One cell: floats with 4 significant digits (scientific when tiny or huge), ``-`` for None."""
    if v is None:
        return "-"
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if math.isnan(f):
            return "nan"
        if math.isinf(f):
            return "inf" if f > 0 else "-inf"
        if f == 0:
            return "0"
        if abs(f) < 1e-3 or abs(f) >= 1e5:
            return f"{f:.3e}"
        return f"{f:.4g}"
    return str(v)


class StatsTable(list):
    """A list of records (one ``dict`` per row, same keys), printable as an aligned table.

    ``str(table)`` shows the scalar columns (arrays such as histograms are kept in the records
    but not printed); ``table.columns`` lists the printed ones in order. ``to_dicts()`` returns
    plain dicts (copies), ``to_pandas()`` a ``pandas.DataFrame`` of every column (pandas is
    optional), ``to_markdown()`` a Markdown table of the printed columns.
    """

    def __init__(self, records: Iterable[dict[str, Any]] = (), columns: Sequence[str] | None = None, title: str = ""):
        super().__init__(dict(r) for r in records)
        self.title = title
        self._columns = list(columns) if columns is not None else None

    @property
    def columns(self) -> list[str]:
        if self._columns is not None:
            return list(self._columns)
        cols: list[str] = []
        for r in self:
            for k, v in r.items():
                if k not in cols and _is_scalar(v):
                    cols.append(k)
        return cols

    def column(self, name: str) -> list:
        """The values of column ``name``, row by row."""
        return [r.get(name) for r in self]

    def to_dicts(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self]

    def to_pandas(self):
        try:
            import pandas as pd
        except ImportError as e:  # pragma: no cover - pandas is optional
            raise ImportError("StatsTable.to_pandas needs pandas: pip install pandas") from e
        return pd.DataFrame(self.to_dicts())

    def _cells(self):
        cols = self.columns
        return cols, [[format_value(r.get(c)) for c in cols] for r in self]

    def __str__(self) -> str:
        cols, rows = self._cells()
        if not cols:
            return self.title or "(empty table)"
        width = [max([len(cols[i])] + [len(row[i]) for row in rows]) for i in range(len(cols))]
        numeric = [all(_looks_numeric(row[i]) for row in rows) and rows for i in range(len(cols))]

        def line(cells):
            return "  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, width, numeric)).rstrip()

        out = [self.title] if self.title else []
        out += [line(cols), "  ".join("-" * w for w in width)]
        out += [line(row) for row in rows]
        return "\n".join(out)

    def to_markdown(self) -> str:
        cols, rows = self._cells()

        def esc(cells):  # a '|' inside a cell (as in "max|mean|") would split it
            return " | ".join(c.replace("|", "\\|") for c in cells)

        out = ["| " + esc(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
        out += ["| " + esc(row) + " |" for row in rows]
        return "\n".join(out)

    def __repr__(self) -> str:
        return f"StatsTable({len(self)} rows, columns={self.columns})"


def _looks_numeric(s: str) -> bool:
    if s in ("-", "nan", "inf", "-inf"):
        return True
    try:
        float(s)
        return True
    except ValueError:
        return False
