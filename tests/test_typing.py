"""mypy sees initcore's real types through ``import initcore as ic`` (not ``Any`` from the lazy
``__getattr__``): a small typed user script checks clean, and the same script with type errors
is rejected on exactly the lines that hold them."""

import os
import re
import subprocess
import sys
import textwrap

import mypy  # noqa: F401  (the test extra has it; fail loudly without it)

USER_SCRIPT = textwrap.dedent(
    """
    import numpy as np

    import initcore as ic
    from initcore import layers as L


    def train(x: np.ndarray, y: np.ndarray) -> float:
        model: ic.Sequential = ic.Sequential(
            [ic.layers.Dense(16, activation="relu"), L.BatchNorm(), ic.layers.Dense(3)], input_dim=4, seed=0
        )
        opt = ic.optim.Adam(model.parameters(), lr=1e-3)
        history: ic.History = model.fit(x, y, optimizer=opt, epochs=1, verbose=0)
        dense: L.Dense = model.layers[0]  # type: ignore[assignment]
        units: int = dense.units
        out: np.ndarray = model.predict(x)
        weights: list[np.ndarray] = model.get_weights()
        scores: dict[str, float] = model.evaluate(x, y)
        return scores["loss"] + units + out.size + len(weights) + len(history.epoch)

    reveal_type(ic.Sequential)
    reveal_type(ic.layers.Dense)
    reveal_type(ic.Sequential([]).predict)
    """
)

BROKEN = {
    'ic.layers.Dense("ten")': "arg-type",
    "ic.Sequential([]).summary() + 1": "operator",
    "ic.Sequential([], input_dim=2).build(3).nonexistent": "attr-defined",
    "ic.layers.BatchNorm(momentum=[0.1])": "arg-type",
}


def test_mypy_sees_real_types_and_rejects_wrong_uses(tmp_path):
    # One mypy run (it takes a while): the typed script, then one wrong use per line.
    good = USER_SCRIPT.splitlines()
    source = "\n".join(good + list(BROKEN)) + "\n"
    script = tmp_path / "user_script.py"
    script.write_text(source)
    cmd = [
        sys.executable,
        "-m",
        "mypy",
        "--show-error-codes",
        "--cache-dir",
        str(tmp_path / ".mypy_cache"),
        script.name,
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "MYPYPATH": ""})
    by_line = {}
    for line in r.stdout.splitlines():
        if line.startswith(script.name + ":"):
            by_line.setdefault(int(line.split(":")[1]), []).append(line)
    good_lines = [line for n, lines in by_line.items() if n <= len(good) for line in lines]
    assert not [line for line in good_lines if ": error:" in line], r.stdout
    notes = [line.split("Revealed type is ", 1)[1] for line in good_lines if "Revealed type is" in line]
    assert len(notes) == 3, r.stdout
    assert notes[0].startswith('"def (layers: typing.Iterable[initcore.layers.Layer]') and notes[0].endswith(
        '-> initcore.model.Sequential"'
    ), notes[0]
    assert notes[1].startswith('"def (units: int,') and notes[1].endswith('-> initcore.layers.Dense"'), notes[1]
    assert re.search(r"batch_size: int =\) -> numpy\.ndarray\[", notes[2]), notes[2]
    for i, (code, err) in enumerate(BROKEN.items(), start=len(good) + 1):
        assert any(f"[{err}]" in line for line in by_line.get(i, [])), (
            f"line {i} {code!r}: expected [{err}]\n{r.stdout}"
        )
