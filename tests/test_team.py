"""The thread-team step (``rust/kernels/team.rs``) is on by default, so the whole suite runs on it;
``INITCORE_TEAM=0`` returns to one fork-join per kernel. Both must keep passing: the native-epoch
and fused-step tests that matter for the choice are rerun here in a child process with the team
off (the choice is made once per process, hence the child). They check whole epochs and steps
bit-identical for 1, 2 and 3 threads and equal to the layer-by-layer path, callbacks taking
effect at their step, flat memory, and Ctrl-C within a long epoch."""

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

TESTS = [
    "test_fit_native.py::test_whole_epochs_are_bit_identical_for_1_2_and_3_threads",
    "test_fit_native.py::test_native_epochs_equal_one_step_per_batch",
    "test_fit_native.py::test_a_learning_rate_change_mid_epoch_takes_effect_at_its_step",
    "test_fit_native.py::test_a_stop_mid_epoch_takes_effect_after_its_step",
    "test_fit_native.py::test_ctrl_c_mid_native_epoch_raises_and_keeps_the_last_step",
    "test_fit_native.py::test_rss_stays_flat_over_10000_native_steps",
    "test_fused.py::test_bit_identical_for_any_thread_count",
    "test_fused.py::test_fused_equals_layer_by_layer_bit_for_bit",
    "test_fused.py::test_fit_equals_the_layer_path",
]


def test_the_kernel_by_kernel_path_passes_the_native_epoch_and_fused_step_tests():
    env = dict(os.environ, INITCORE_TEAM="0", INITCORE_NUM_THREADS="2")
    args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--benchmark-disable", *TESTS]
    r = subprocess.run(args, cwd=HERE, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert " passed" in r.stdout and "failed" not in r.stdout, r.stdout[-2000:]
    assert "skipped" not in r.stdout, r.stdout[-2000:]
