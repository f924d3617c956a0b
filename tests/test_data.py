"""Data: the embedded sets, seeded stratified splits, IDX round trips and every way an IDX file
can be wrong, the MNIST directory loader, batches and one_hot (the Standardizer: test_standardizer.py)."""

import gzip
import os

import numpy as np
import pytest

from initcore import data as D


def row_set(x):
    return sorted(bytes(r) for r in np.ascontiguousarray(x).reshape(x.shape[0], -1).view(np.uint8))


# --- embedded data ------------------------------------------------------------------------------


def test_mnist_subset():
    x, y = D.load_mnist_subset()
    assert x.shape == (5000, 784) and x.dtype == np.float32 and x.flags.c_contiguous
    assert x.min() == 0.0 and x.max() == 1.0
    assert y.dtype == np.int64 and np.bincount(y).tolist() == [500] * 10
    x3, _ = D.load_mnist_subset(flatten=False, dtype="float64")
    assert x3.shape == (5000, 28, 28) and x3.dtype == np.float64
    np.testing.assert_array_equal(x3.reshape(5000, -1).astype(np.float32), x)
    # scaled by exactly 1/255: the values are k/255
    np.testing.assert_allclose(np.round(x3 * 255), x3 * 255, atol=1e-9)
    with pytest.raises(ValueError, match="dtype"):
        D.load_mnist_subset(dtype="uint8")


def test_mnist_subset_split_is_stratified_seeded_and_a_partition():
    (xa, ya), (xb, yb) = D.load_mnist_subset(split=True)
    assert xa.shape == (4000, 784) and xb.shape == (1000, 784)
    assert np.bincount(ya).tolist() == [400] * 10 and np.bincount(yb).tolist() == [100] * 10
    assert not np.all(np.diff(ya) >= 0)  # shuffled, not sorted by label
    x, _ = D.load_mnist_subset()
    assert row_set(np.concatenate([xa, xb])) == row_set(x)
    (xa2, ya2), (xb2, yb2) = D.load_mnist_subset(split=True)
    np.testing.assert_array_equal(xb, xb2)
    np.testing.assert_array_equal(ya, ya2)
    (_, _), (xb3, _) = D.load_mnist_subset(split=True, seed=1)
    assert row_set(xb3) != row_set(xb)
    (_, _), (xs, ys) = D.load_mnist_subset(split=True, test_size=0.1)
    assert np.bincount(ys).tolist() == [50] * 10


def test_boston_housing():
    x, y, names = D.load_boston_housing(return_feature_names=True)
    assert x.shape == (506, 13) and y.shape == (506,) and x.dtype == np.float32
    assert names == D.BOSTON_FEATURES and names[11] == "B"
    assert y.min() == 5.0 and y.max() == 50.0
    xd, _, nd = D.load_boston_housing(drop_b=True, return_feature_names=True, dtype="float64")
    assert xd.shape == (506, 12) and "B" not in nd and xd.dtype == np.float64
    np.testing.assert_allclose(xd[:, :11], x[:, :11], rtol=1e-6)
    np.testing.assert_allclose(xd[:, 11], x[:, 12], rtol=1e-6)  # LSTAT moved left by one
    (xa, ya), (xb, yb) = D.load_boston_housing(split=True)
    assert xa.shape == (404, 13) and xb.shape == (102, 13)  # ceil(0.2·506) = 102, as scikit-learn


# --- splitting ------------------------------------------------------------------------------------


def test_train_test_split_stratified_proportions():
    y = np.repeat([0, 1, 2], [50, 30, 20])
    x = np.arange(100).reshape(100, 1) * 10
    xa, xb, ya, yb = D.train_test_split(x, y, test_size=0.25, seed=3, stratify=y)
    assert len(xb) == 25 and len(xa) == 75
    exact = 25 * np.array([50, 30, 20]) / 100
    assert np.all(np.abs(np.bincount(yb) - exact) < 1)
    np.testing.assert_array_equal(y[xa[:, 0] // 10], ya)  # rows keep their labels
    np.testing.assert_array_equal(y[xb[:, 0] // 10], yb)
    assert sorted(np.concatenate([xa, xb])[:, 0].tolist()) == list(range(0, 1000, 10))
    # stratify=True means "by y"; same seed, same split
    again = D.train_test_split(x, y, test_size=0.25, seed=3, stratify=True)
    np.testing.assert_array_equal(again[1], xb)


def test_train_test_split_plain():
    x = np.arange(20)
    xa, xb = D.train_test_split(x, test_size=0.3, seed=0)
    assert len(xb) == 6 and sorted(np.concatenate([xa, xb]).tolist()) == list(range(20))
    xa, xb = D.train_test_split(x, test_size=4, shuffle=False)
    assert xb.tolist() == [16, 17, 18, 19] and xa.tolist() == list(range(16))
    xa2, xb2 = D.train_test_split(x, test_size=0.3, seed=0)
    assert D.train_test_split(x, test_size=0.3, seed=0)[1].tolist() == xb2.tolist()


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(test_size=0), ValueError, "test_size"),
        (dict(test_size=1.0), ValueError, "test_size"),
        (dict(test_size=10), ValueError, "need 1 to n - 1"),
        (dict(test_size="0.2"), TypeError, "test_size"),
        (dict(test_size=2, stratify=True), ValueError, "number of classes"),
        (dict(test_size=0.5, stratify=np.array([0] * 9 + [1])), ValueError, "only 1 member"),
        (dict(test_size=0.5, stratify=True, shuffle=False), ValueError, "shuffle"),
    ],
)
def test_train_test_split_errors(kwargs, exc, match):
    x = np.zeros((10, 2))
    y = np.repeat([0, 1, 2], [4, 3, 3])
    with pytest.raises(exc, match=match):
        D.train_test_split(x, y, **kwargs)
    with pytest.raises(ValueError, match="y has shape"):
        D.train_test_split(x, y[:5])


# --- IDX -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, dtype, suffix):
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((4, 3, 5)) * 100).astype(dtype)
    p = tmp_path / f"a.idx{suffix}"
    D.save_idx(p, a)
    raw = open(p, "rb").read()
    assert (raw[:2] == b"\x1f\x8b") == (suffix == ".gz")
    b = D.load_idx(p)
    assert b.dtype == np.dtype(dtype) and b.dtype.isnative
    np.testing.assert_array_equal(a, b)


def test_idx_header_is_lecuns(tmp_path):
    labels = np.array([7, 2, 1], np.uint8)
    p = tmp_path / "labels"
    D.save_idx(p, labels)
    assert open(p, "rb").read() == bytes.fromhex("00000801 00000003 070201".replace(" ", ""))
    imgs = np.arange(2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 3)
    D.save_idx(p, imgs, compress=True)  # gzip chosen explicitly, content-detected on load
    assert gzip.decompress(open(p, "rb").read())[:16] == bytes.fromhex("00000803000000020000000200000003")
    np.testing.assert_array_equal(D.load_idx(p, magic=D.IDX_IMAGES_MAGIC), imgs)


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return path


def idx_bytes(a):
    return bytes([0, 0, 0x08, a.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in a.shape) + a.tobytes()


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda b: b[:-1], "truncated: 27 bytes"),
        (lambda b: b[:10], "truncated header"),
        (lambda b: b + b"\x00", "trailing bytes"),
        (lambda b: b[:2], "shorter than the 4-byte magic"),
        (lambda b: b"\x01" + b[1:], "magic number 0x01000803"),
        (lambda b: b[:2] + b"\x07" + b[3:], "magic number 0x00000703"),
        (lambda b: b[:3] + b"\x00" + b[4:], "magic number 0x00000800"),
        (lambda b: gzip.compress(b)[:-6], "corrupt or truncated gzip"),
        (lambda b: gzip.compress(b)[:12] + b"garbage" * 3, "corrupt or truncated gzip"),
    ],
)
def test_idx_bad_files_raise_naming_the_file(tmp_path, mutate, match):
    good = idx_bytes(np.arange(12, dtype=np.uint8).reshape(2, 2, 3))
    assert len(good) == 28
    p = write(tmp_path / "broken-file", mutate(good))
    with pytest.raises(D.DataFormatError, match=match) as e:
        D.load_idx(p)
    assert "broken-file" in str(e.value) and isinstance(e.value, ValueError)


def test_idx_expected_magic(tmp_path):
    p = write(tmp_path / "lbl", idx_bytes(np.arange(5, dtype=np.uint8)))
    with pytest.raises(D.DataFormatError, match="0x00000801, expected 0x00000803"):
        D.load_idx(p, magic=D.IDX_IMAGES_MAGIC)
    with pytest.raises(FileNotFoundError):
        D.load_idx(tmp_path / "nope")
    with pytest.raises(TypeError, match="no IDX type"):
        D.save_idx(tmp_path / "x", np.zeros(3, np.uint16))


def make_mnist_dir(root, gz=True, dotted=False, n_train=6, n_test=4):
    rng = np.random.default_rng(1)
    os.makedirs(root, exist_ok=True)
    parts = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        imgs = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        sep = "." if dotted else "-"
        ext = ".gz" if gz else ""
        D.save_idx(os.path.join(root, f"{prefix}-images{sep}idx3-ubyte{ext}"), imgs)
        D.save_idx(os.path.join(root, f"{prefix}-labels{sep}idx1-ubyte{ext}"), labels)
        parts[prefix] = (imgs, labels)
    return parts


@pytest.mark.parametrize("gz,dotted", [(True, False), (False, False), (False, True)])
def test_load_mnist_dir(tmp_path, gz, dotted):
    parts = make_mnist_dir(tmp_path / "m", gz=gz, dotted=dotted)
    (xa, ya), (xb, yb) = D.load_mnist_dir(tmp_path / "m")
    assert xa.shape == (6, 784) and xb.shape == (4, 784) and xa.dtype == np.float32
    np.testing.assert_array_equal(xa, (parts["train"][0].reshape(6, -1) / np.float32(255)).astype(np.float32))
    np.testing.assert_array_equal(yb, parts["t10k"][1].astype(np.int64))
    (x3, _), _ = D.load_mnist_dir(tmp_path / "m", flatten=False, dtype="float64")
    assert x3.shape == (6, 28, 28) and x3.dtype == np.float64


def test_load_mnist_dir_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such directory"):
        D.load_mnist_dir(tmp_path / "absent")
    make_mnist_dir(tmp_path / "m")
    os.remove(tmp_path / "m" / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        D.load_mnist_dir(tmp_path / "m")
    D.save_idx(tmp_path / "m" / "t10k-labels-idx1-ubyte", np.zeros(3, np.uint8))
    with pytest.raises(D.DataFormatError, match="4 images but .* 3 labels"):
        D.load_mnist_dir(tmp_path / "m")
    # labels and images swapped: the magic numbers catch it
    D.save_idx(tmp_path / "m" / "t10k-labels-idx1-ubyte", np.zeros((4, 28, 28), np.uint8))
    with pytest.raises(D.DataFormatError, match="0x00000803, expected 0x00000801"):
        D.load_mnist_dir(tmp_path / "m")


# --- batches, one_hot -------------------------------------------------------------------------------


def test_batches_and_one_hot():
    x = np.arange(10).reshape(10, 1)
    y = np.arange(10) % 3
    sizes = [len(xb) for xb, _ in D.batches(x, y, batch_size=4)]
    assert sizes == [4, 4, 2]
    assert [len(b) for b in D.batches(x, batch_size=4, drop_last=True)] == [4, 4]
    seen = np.concatenate([xb[:, 0] for xb, _ in D.batches(x, y, batch_size=3, shuffle=True, seed=0)])
    assert sorted(seen.tolist()) == list(range(10)) and seen.tolist() != list(range(10))
    for xb, yb in D.batches(x, y, batch_size=3, shuffle=True, seed=0):
        np.testing.assert_array_equal(xb[:, 0] % 3, yb)
    with pytest.raises(ValueError, match="batch_size"):
        next(D.batches(x, batch_size=0))
    oh = D.one_hot(np.array([2, 0, 1]))
    np.testing.assert_array_equal(oh, np.eye(3, dtype=np.float32)[[2, 0, 1]])
    assert D.one_hot(np.array([1]), num_classes=4).shape == (1, 4)
    with pytest.raises(ValueError, match="labels must lie"):
        D.one_hot(np.array([5]), num_classes=3)


def test_datasets_package_reexports():
    import initcore.datasets as ds

    assert ds.load_mnist_subset is D.load_mnist_subset and ds.load_idx is D.load_idx
    assert ds.data_file("PROVENANCE.md").read_text().startswith("# Data for initcore")
