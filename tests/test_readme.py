"""The README's "Using it" examples run as written (a new user's first copy and paste), in order,
in one namespace, and train what they say they train."""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def using_it_blocks():
    text = README.read_text(encoding="utf-8")
    section = re.search(r"^## Using it\n(.*?)^## ", text, re.S | re.M)
    assert section, "README has no 'Using it' section"
    return re.findall(r"```python\n(.*?)```", section.group(1), re.S)


def test_using_it_examples_run_as_written(capsys):
    blocks = using_it_blocks()
    assert len(blocks) >= 2
    ns = {}
    for i, code in enumerate(blocks):
        try:
            exec(compile(code, f"README.md 'Using it' block {i}", "exec"), ns)
        except Exception as e:  # name the block in the failure
            pytest.fail(f"README 'Using it' block {i} raised {type(e).__name__}: {e}")
    out = capsys.readouterr().out
    assert "'accuracy'" in out, "the first example prints model.evaluate(...)"
    ic, model = ns["ic"], ns["model"]
    # The first example's model (reported by its print) and the second's, trained as written.
    first = ns["history"].history
    assert first["val_accuracy"][-1] > 0.85
    h = model.history.history
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "lr"} <= h.keys()
    assert h["val_accuracy"][-1] > 0.85
    assert model.__dict__.get("_fused_train") is not None, "the example did not train on the fused path"
    assert isinstance(model.optimizer, ic.optim.AdamW) and len(model.optimizer.param_groups) == 2
    assert model.evaluate(ns["x_test"], ns["y_test"])["accuracy"] > 0.85
