"""Data: the embedded MNIST subset and Boston housing table, IDX files (full MNIST and
Fashion-MNIST), splitting, standardization and mini-batches.

- :func:`load_mnist_subset`: 5,000 real MNIST digits (500 per class) shipped in the package.
- :func:`load_boston_housing`: the 506-town regression table (read its note on the ``B`` column).
- :func:`load_idx` / :func:`save_idx`: the IDX format of LeCun's MNIST files, gzipped or not,
  validated down to the exact byte count; :func:`load_mnist_dir` finds the standard four files.
- :func:`train_test_split`: seeded, optionally stratified (scikit-learn's argument order).
- :class:`Standardizer`: per-feature z-scores, per-channel, mean-image subtraction or min-max,
  fitted on the training set and applied unchanged to validation and test data.
- :func:`batches`, :func:`one_hot`.

A malformed file raises :class:`DataFormatError` (a ``ValueError``) naming the file; a missing
one ``FileNotFoundError``.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from collections.abc import Iterator
from typing import Union

import numpy as np

from ._files import atomic_write
from .backend import check_dtype
from .standardizer import NotFittedError, Standardizer

__all__ = [
    "load_mnist_subset",
    "load_boston_housing",
    "load_idx",
    "save_idx",
    "load_mnist_dir",
    "train_test_split",
    "Standardizer",
    "NotFittedError",
    "DataFormatError",
    "batches",
    "one_hot",
    "data_file",
    "IDX_IMAGES_MAGIC",
    "IDX_LABELS_MAGIC",
    "BOSTON_FEATURES",
]

PathLike = Union[str, "os.PathLike[str]"]

IDX_IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions (n, rows, cols)
IDX_LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension (n,)

# IDX type codes (third magic byte) → big-endian NumPy dtype (LeCun's format description).
_IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {dt.newbyteorder("=").str[1:]: code for code, dt in _IDX_TYPES.items()}


class DataFormatError(ValueError):
    """A data file is truncated, corrupt or not in the expected format."""


def data_file(name: str):
    """The path (a ``Traversable``) of a data file shipped in ``initcore/datasets/data``."""
    from importlib import resources

    return resources.files("initcore.datasets").joinpath("data", name)


def _load_npz(name: str):
    with data_file(name).open("rb") as f, np.load(f, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


# --- embedded data sets ------------------------------------------------------------------------


def load_mnist_subset(
    split: bool = False, test_size: int | float = 1000, seed: int = 0, flatten: bool = True, dtype="float32"
):
    """The embedded MNIST subset: the first 500 training images of each digit (5,000 in all,
    sorted by label; see ``datasets/data/PROVENANCE.md``).

    Returns ``(x, y)``: ``x`` float (5000, 784) — or (5000, 28, 28) with ``flatten=False`` —
    pixels scaled to [0, 1] (``uint8 / 255``); ``y`` int64 labels 0-9. With ``split=True``,
    ``((x_train, y_train), (x_test, y_test))`` from a stratified split seeded by ``seed``
    (default 4,000 / 1,000, i.e. 400 / 100 per digit), each part in shuffled order.
    """
    dt = check_dtype(dtype)
    z = _load_npz("mnist_5k.npz")
    x = (z["images"].astype(dt) / dt.type(255)).astype(dt, copy=False)
    if flatten:
        x = x.reshape(x.shape[0], -1)
    y = z["labels"].astype(np.int64)
    if not split:
        return x, y
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_size, seed=seed, stratify=y)
    return (x_tr, y_tr), (x_te, y_te)


BOSTON_FEATURES = ("CRIM", "ZN", "INDUS", "CHAS", "NOX", "RM", "AGE", "DIS", "RAD", "TAX", "PTRATIO", "B", "LSTAT")


def load_boston_housing(
    split: bool = False,
    test_size: int | float = 0.2,
    seed: int = 0,
    dtype="float32",
    drop_b: bool = False,
    return_feature_names: bool = False,
):
    """Boston housing (Harrison & Rubinfeld 1978): 506 towns, 13 features, target the median home
    value in $1000s. Returns ``(x, y)`` with ``y`` of shape (506,), or with ``split=True``
    ``((x_train, y_train), (x_test, y_test))`` (seeded, not stratified: a regression target);
    ``return_feature_names=True`` appends the tuple of column names.

    A note on the data. The ``B`` column is ``1000·(Bk − 0.63)²``, ``Bk`` being the proportion of
    Black residents by town: the authors built a racial-segregation assumption into a house-price
    model, and the transformation is not even invertible. scikit-learn deprecated and then
    removed ``load_boston`` (1.2) for that reason. It is kept here as a *historical benchmark
    only* — the self-normalizing-network experiments used it — and should not be used to build
    anything that informs decisions; ``drop_b=True`` leaves the column out.
    """
    dt = check_dtype(dtype)
    z = _load_npz("boston_housing.npz")
    x, y = z["features"], z["target"]
    names = tuple(str(n) for n in z["feature_names"])
    if drop_b:
        keep = [i for i, n in enumerate(names) if n != "B"]
        x, names = x[:, keep], tuple(names[i] for i in keep)
    x, y = np.ascontiguousarray(x, dtype=dt), np.ascontiguousarray(y, dtype=dt)
    if split:
        x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_size, seed=seed)
        out = ((x_tr, y_tr), (x_te, y_te))
    else:
        out = (x, y)
    return (*out, names) if return_feature_names else out


# --- IDX files ---------------------------------------------------------------------------------


class _Source:
    """A file's bytes, gunzipped on demand: ``take(n)`` makes at least the first ``n`` bytes
    available in ``data`` (fewer only at the end of the data), so a reader that knows from a
    header how long the data must be decompresses no more than that, plus one byte to see
    whether the stream goes on: a small gzip bomb cannot expand to gigabytes first."""

    def __init__(self, path: str):
        self.path = path
        with open(path, "rb") as f:
            raw = f.read()
        self.gz = raw[:2] == b"\x1f\x8b"  # gzip magic, whatever the file is called
        self.data = bytearray() if self.gz else raw
        self._src, self._d = raw, zlib.decompressobj(16 + zlib.MAX_WBITS) if self.gz else None

    def take(self, n: int) -> None:
        if not self.gz:
            return
        try:
            while len(self.data) < n:
                if self._d.eof:  # a member ended; gzip allows several back to back
                    if not self._d.unused_data:
                        return
                    self._src, self._d = self._d.unused_data, zlib.decompressobj(16 + zlib.MAX_WBITS)
                # b"" still flushes output zlib holds back when the last call hit its limit.
                piece = self._d.decompress(self._src, n - len(self.data))
                if not piece and not self._src and not self._d.eof:
                    raise EOFError("compressed file ended before the end-of-stream marker was reached")
                self.data += piece
                self._src = self._d.unconsumed_tail
        except (OSError, EOFError, zlib.error) as e:
            raise DataFormatError(f"{self.path}: corrupt or truncated gzip data ({e})") from None

    def check(self) -> None:
        """Before reporting a bad header: corrupt gzip data (which may still decompress to a few
        garbage bytes first) is the better diagnosis; look up to 1 MiB further for it."""
        self.take(len(self.data) + (1 << 20))

    def all(self) -> bytes:
        self.take(1 << 62)
        return bytes(self.data)


def _read_bytes(path: str) -> bytes:
    return _Source(path).all()


def load_idx(path: PathLike, magic: int | None = None) -> np.ndarray:
    """Reads an IDX file (gzipped or not; detected from its content, not its name).

    Format: 4 magic bytes ``0, 0, type, ndim`` (type 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C
    int32, 0x0D float32, 0x0E float64), ``ndim`` big-endian uint32 dimensions, then the data
    in C order, big-endian. ``magic`` (e.g. :data:`IDX_IMAGES_MAGIC` 0x00000803,
    :data:`IDX_LABELS_MAGIC` 0x00000801) requires that exact type and rank. The file must hold
    exactly the bytes its header announces: a truncated file, trailing bytes, a bad magic
    number or corrupt gzip data raise :class:`DataFormatError` naming the file — never a wrong
    array. Returns the array in native byte order.
    """
    path = os.fspath(path)
    src = _Source(path)
    src.take(4)
    data = src.data
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES or data[3] == 0:
        src.check()
    if len(data) < 4:
        raise DataFormatError(f"{path}: not an IDX file ({len(data)} bytes, shorter than the 4-byte magic number)")
    found = int.from_bytes(data[:4], "big")
    code, ndim = data[2], data[3]
    if data[0] != 0 or data[1] != 0 or code not in _IDX_TYPES or ndim == 0:
        raise DataFormatError(
            f"{path}: not an IDX file (magic number 0x{found:08X}; expected 0x0000TTNN with "
            f"type TT in {{{', '.join(f'{c:02X}' for c in _IDX_TYPES)}}} and NN >= 1 dimensions)"
        )
    if magic is not None and found != magic:
        raise DataFormatError(f"{path}: magic number 0x{found:08X}, expected 0x{magic:08X}")
    header = 4 + 4 * ndim
    src.take(header)
    data = src.data
    if len(data) < header:
        src.check()
        raise DataFormatError(f"{path}: truncated header ({len(data)} bytes, the {ndim} dimensions need {header})")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dt = _IDX_TYPES[code]
    expected = header + math.prod(dims) * dt.itemsize
    src.take(expected + 1)
    data = src.data
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        raise DataFormatError(
            f"{path}: {what}: {len(data)} bytes, but the header {dims} of {dt.newbyteorder('=')} announces {expected}"
        )
    arr = np.frombuffer(data, dtype=dt, offset=header, count=math.prod(dims)).reshape(dims)
    return arr.astype(dt.newbyteorder("="), copy=True)


def save_idx(path: PathLike, array: np.ndarray, compress: bool | None = None) -> None:
    """Writes ``array`` (uint8, int8, int16, int32, float32 or float64; ndim 1-255) as an IDX
    file, gzipped when ``compress`` is true (default: when the name ends in ``.gz``). The file
    is written to a temporary name and renamed, so it is never seen half-written."""
    path = os.fspath(path)
    a = np.asarray(array)
    key = a.dtype.newbyteorder("=").str[1:]
    if key not in _IDX_CODES:
        raise TypeError(
            f"save_idx: array dtype {a.dtype} has no IDX type (uint8, int8, int16, int32, float32, float64)"
        )
    if not 1 <= a.ndim <= 255:
        raise ValueError(f"save_idx: array must have 1 to 255 dimensions, got {a.ndim}")
    if any(d >= 2**32 for d in a.shape):
        raise ValueError(f"save_idx: dimensions must fit in uint32, got {a.shape}")
    code = _IDX_CODES[key]
    body = bytes([0, 0, code, a.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in a.shape)
    body += np.ascontiguousarray(a, dtype=_IDX_TYPES[code]).tobytes()
    if compress if compress is not None else path.endswith(".gz"):
        body = gzip.compress(body, mtime=0)
    atomic_write(path, lambda f: f.write(body), fsync=False)


def _find(directory: str, prefix: str, kind: str, rank: int) -> str:
    names = [f"{prefix}-{kind}-idx{rank}-ubyte", f"{prefix}-{kind}.idx{rank}-ubyte"]
    for n in names:
        for candidate in (n, n + ".gz"):
            p = os.path.join(directory, candidate)
            if os.path.isfile(p):
                return p
    raise FileNotFoundError(f"{directory}: no {names[0]}[.gz] (nor {names[1]}[.gz])")


def load_mnist_dir(directory: PathLike, flatten: bool = True, dtype="float32"):
    """Full MNIST or Fashion-MNIST (or any data set in their layout) from ``directory`` holding
    ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
    ``t10k-labels-idx1-ubyte`` (each optionally ``.gz``; the ``train-images.idx3-ubyte``
    spelling also works). Returns ``((x_train, y_train), (x_test, y_test))``: pixels scaled to
    [0, 1], flattened unless ``flatten=False``; int64 labels. Images must be 0x00000803 and
    labels 0x00000801 files with matching counts."""
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{directory}: no such directory")
    dt = check_dtype(dtype)
    out = []
    for prefix in ("train", "t10k"):
        ipath = _find(directory, prefix, "images", 3)
        lpath = _find(directory, prefix, "labels", 1)
        images = load_idx(ipath, magic=IDX_IMAGES_MAGIC)
        labels = load_idx(lpath, magic=IDX_LABELS_MAGIC)
        if images.shape[0] != labels.shape[0]:
            raise DataFormatError(f"{ipath} has {images.shape[0]} images but {lpath} has {labels.shape[0]} labels")
        x = (images.astype(dt) / dt.type(255)).astype(dt, copy=False)
        out.append((x.reshape(x.shape[0], -1) if flatten else x, labels.astype(np.int64)))
    return tuple(out)


# --- splitting ---------------------------------------------------------------------------------


def _n_test(test_size, n: int) -> int:
    if isinstance(test_size, bool):
        raise TypeError("test_size must be an int or a float, got bool")
    if isinstance(test_size, (float, np.floating)):
        if not 0.0 < test_size < 1.0:
            raise ValueError(f"test_size={test_size} should be a float in (0, 1) or an int in [1, n - 1]")
        k = math.ceil(test_size * n)  # scikit-learn rounds the test part up
    elif isinstance(test_size, (int, np.integer)):
        k = int(test_size)
    else:
        raise TypeError(f"test_size must be an int or a float, got {type(test_size).__name__}")
    if not 1 <= k <= n - 1:
        raise ValueError(f"test_size={test_size} gives {k} test samples out of n={n}; need 1 to n - 1")
    return k


def train_test_split(
    x, y=None, test_size: int | float = 0.25, seed: int | None = 0, stratify=None, shuffle: bool = True
):
    """Splits ``x`` (and ``y``) into a training and a test part, in scikit-learn's order:
    ``x_train, x_test, y_train, y_test`` (or ``x_train, x_test`` without ``y``).

    ``test_size``: a fraction (rounded up) or a count. ``stratify``: class labels (``True``
    means ``y``): each class gets its share of the test part, ``n_test·n_c/n`` rounded by the
    largest-remainder rule (ties broken by the seeded generator), so the class proportions of
    both parts match those of the whole as closely as integers allow. ``seed`` fixes the draw;
    both parts come out shuffled. ``shuffle=False`` keeps the order and takes the last
    ``n_test`` rows as the test part (not with ``stratify``).
    """
    x = np.asarray(x)
    if x.ndim == 0:
        raise ValueError("train_test_split: x must have at least one dimension")
    n = x.shape[0]
    if y is not None:
        y = np.asarray(y)
        if y.ndim == 0 or y.shape[0] != n:
            raise ValueError(f"train_test_split: x has {n} rows but y has shape {y.shape}")
    k = _n_test(test_size, n)
    if stratify is True:
        if y is None:
            raise ValueError("train_test_split: stratify=True needs y")
        stratify = y
    if not shuffle:
        if stratify is not None:
            raise ValueError("train_test_split: stratified splits need shuffle=True")
        tr, te = np.arange(n - k), np.arange(n - k, n)
    else:
        rng = np.random.default_rng(seed)
        if stratify is None:
            perm = rng.permutation(n)
            te, tr = perm[:k], perm[k:]
        else:
            tr, te = _stratified(np.asarray(stratify), n, k, rng)
    parts = (x[tr], x[te])
    if y is not None:
        parts += (y[tr], y[te])
    return parts


def _stratified(labels: np.ndarray, n: int, k: int, rng: np.random.Generator):
    if labels.shape[:1] != (n,):
        raise ValueError(f"train_test_split: stratify has shape {labels.shape}, expected ({n}, ...)")
    classes, inverse, counts = np.unique(
        labels, axis=0 if labels.ndim > 1 else None, return_inverse=True, return_counts=True
    )
    inverse = inverse.reshape(-1)
    c = len(classes)
    if counts.min() < 2:
        raise ValueError(
            "train_test_split: the least populated class in stratify has only 1 member; "
            "every class needs at least 2 to appear in both parts"
        )
    if k < c or n - k < c:
        raise ValueError(
            f"train_test_split: the test part ({k}) and the training part ({n - k}) must each be "
            f"at least the number of classes ({c}) to stratify"
        )
    exact = k * counts / n
    take = np.floor(exact).astype(np.int64)
    rem = exact - take
    # Largest remainder first; ties in a seeded random order.
    order = np.lexsort((rng.random(c), -rem))
    take[order[: k - int(take.sum())]] += 1
    tr, te = [], []
    for ci in range(c):
        members = rng.permutation(np.flatnonzero(inverse == ci))
        te.append(members[: take[ci]])
        tr.append(members[take[ci] :])
    tr, te = np.concatenate(tr), np.concatenate(te)
    return rng.permutation(tr), rng.permutation(te)


def batches(x, y=None, batch_size: int = 32, shuffle: bool = False, seed=None, drop_last: bool = False) -> Iterator:
    """Yields ``(x_batch, y_batch)`` (or ``x_batch`` without ``y``) of ``batch_size`` rows, the
    last one smaller unless ``drop_last``. ``shuffle`` draws one permutation per call from
    ``seed`` (an int or a ``numpy.random.Generator``)."""
    x = np.asarray(x)
    n = x.shape[0]
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batches: batch_size must be a positive int, got {batch_size!r}")
    if y is not None:
        y = np.asarray(y)
        if y.shape[:1] != (n,):
            raise ValueError(f"batches: x has {n} rows but y has shape {y.shape}")
    order = np.random.default_rng(seed).permutation(n) if shuffle else None
    stop = n - n % batch_size if drop_last else n
    for i in range(0, stop, batch_size):
        idx = order[i : i + batch_size] if order is not None else slice(i, i + batch_size)
        yield (x[idx], y[idx]) if y is not None else x[idx]


def one_hot(y, num_classes: int | None = None, dtype="float32") -> np.ndarray:
    """Integer labels (n,) → one-hot rows (n, num_classes)."""
    y = np.asarray(y)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise ValueError(f"one_hot: y must be 1-D integer labels, got {y.dtype} {y.shape}")
    k = int(y.max()) + 1 if num_classes is None and y.size else int(num_classes or 0)
    if y.size and (y.min() < 0 or y.max() >= k):
        raise ValueError(f"one_hot: labels must lie in [0, {k}), got [{y.min()}, {y.max()}]")
    out = np.zeros((y.shape[0], k), dtype=check_dtype(dtype))
    out[np.arange(y.shape[0]), y] = 1
    return out
