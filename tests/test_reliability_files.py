"""Files and archives (issue 9): decompression bombs stop at the size a header declares, killed
saves leave no debris the next save does not remove, and saved files follow the umask."""

import gzip
import os
import signal
import textwrap
import zipfile
import zlib

import numpy as np
import pytest

import initcore as ic
from conftest import python, small_model


def _peak_rss_run(code):
    r = python(
        textwrap.dedent(code)
        + textwrap.dedent(
            """
            import resource
            print("peak_mib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
            """
        ),
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    return int(r.stdout.split("peak_mib")[-1])


def _gzip_zeros(f, nbytes, prefix=b""):
    c = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    f.write(c.compress(prefix))
    chunk = bytes(1 << 20)
    for _ in range(nbytes >> 20):
        f.write(c.compress(chunk))
    f.write(c.flush())


def test_load_idx_stops_at_the_size_its_header_declares(tmp_path):
    bomb = tmp_path / "bomb-images-idx3-ubyte.gz"
    header = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in (10, 28, 28))
    with open(bomb, "wb") as f:
        _gzip_zeros(f, 512 << 20, header)  # 512 MiB of zeros, ~0.5 MiB on disk
    assert bomb.stat().st_size < 4 << 20
    code = f"""
        import time, initcore.data as D
        t = time.perf_counter()
        try:
            D.load_idx({str(bomb)!r})
        except D.DataFormatError as e:
            assert "trailing bytes" in str(e), e
        else:
            raise SystemExit("no error")
        print("seconds", time.perf_counter() - t)
        """
    base = _peak_rss_run("import initcore.data\n")
    peak = _peak_rss_run(code)
    assert peak - base < 64, f"load_idx used {peak - base} MiB on a 512 MiB bomb"


def test_load_idx_still_reads_valid_and_multi_member_gzip(tmp_path):
    from initcore import data as D

    a = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)
    p = tmp_path / "a.idx.gz"
    D.save_idx(p, a)
    np.testing.assert_array_equal(D.load_idx(p), a)
    body = gzip.decompress(p.read_bytes())
    (tmp_path / "b.gz").write_bytes(gzip.compress(body[:20]) + gzip.compress(body[20:]))
    np.testing.assert_array_equal(D.load_idx(tmp_path / "b.gz"), a)
    (tmp_path / "c.gz").write_bytes(gzip.compress(body)[:-12])
    with pytest.raises(D.DataFormatError, match="corrupt or truncated"):
        D.load_idx(tmp_path / "c.gz")


def test_loading_a_checkpoint_bomb_fails_before_decompressing_it(tmp_path):
    m = small_model()
    good = tmp_path / "m.npz"
    m.save(good)
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
        with dst.open("a99.npy", "w", force_zip64=True) as f:
            header = {"descr": "|u1", "fortran_order": False, "shape": (512 << 20,)}
            np.lib.format.write_array_header_1_0(f, header)
            chunk = bytes(1 << 20)
            for _ in range(512):
                f.write(chunk)
    assert bomb.stat().st_size < 8 << 20
    code = f"""
        import initcore as ic
        try:
            ic.Sequential.load({str(bomb)!r})
        except ValueError as e:
            assert "declare" in str(e) and "bytes" in str(e), e
        else:
            raise SystemExit("no error")
        """
    base = _peak_rss_run("import initcore as ic\nic.Sequential\n")
    peak = _peak_rss_run(code)
    assert peak - base < 64, f"Sequential.load used {peak - base} MiB on a 512 MiB bomb"
    assert ic.Sequential.load(good).predict(np.ones((2, 6))).shape == (2, 3)


# --- 9. stale temporary files, permissions --------------------------------------------------------------------
def test_a_killed_save_leaves_a_temp_file_that_the_next_save_removes(tmp_path):
    target = tmp_path / "m.npz"
    code = f"""
        import os, signal, zipfile
        import initcore as ic
        from initcore import layers as L
        m = ic.Sequential([L.Dense(64), L.Dense(3)], input_dim=6)
        real = zipfile.ZipFile.open
        def dying_open(self, name, mode="r", **kw):
            f = real(self, name, mode, **kw)
            if mode == "w" and name != "header.npy":
                f.write(b"x" * 1000)
                os.kill(os.getpid(), signal.SIGKILL)
            return f
        zipfile.ZipFile.open = dying_open
        m.save({str(target)!r})
        """
    seen = set()
    for _ in range(3):
        r = python(code)
        assert r.returncode == -signal.SIGKILL
        # Each killed save leaves its file; the next save removed the one before it.
        stale = [f for f in os.listdir(tmp_path) if f.startswith(".m.npz.tmp-")]
        assert len(stale) == 1 and stale[0] not in seen and not target.exists()
        seen.add(stale[0])
    (tmp_path / ".other.npz.tmp-1-x.npz").write_bytes(b"not ours")
    small_model().save(target)
    assert sorted(os.listdir(tmp_path)) == [".other.npz.tmp-1-x.npz", "m.npz"]


def test_a_temp_file_of_a_live_writer_is_kept(tmp_path):
    live = tmp_path / f".m.npz.tmp-{os.getppid()}-abc.npz"
    live.write_bytes(b"")
    small_model().save(tmp_path / "m.npz")
    assert live.exists()


def test_saved_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        small_model().save(tmp_path / "a.npz")
        os.umask(0o027)
        small_model().save(tmp_path / "b.npz")
        ic.data.save_idx(tmp_path / "c.idx", np.zeros(3, np.uint8))
    finally:
        os.umask(old)
    assert (tmp_path / "a.npz").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.npz").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "c.idx").stat().st_mode & 0o777 == 0o640
