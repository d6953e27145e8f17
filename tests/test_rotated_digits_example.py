"""examples/rotated_digits.py runs (one epoch each) and shows what it claims."""

import importlib.util
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "rotated_digits.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("rotated_digits", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rotated_digits_table(example, capsys):
    rows = example.main(["--epochs", "2"])
    out = capsys.readouterr().out
    assert [name for name, _, _ in rows] == ["LeNet", "InvariantLeNet"]
    assert "0 deg" in out and "270 deg" in out and "InvariantLeNet" in out
    lenet, invariant = rows[0][1], rows[1][1]
    assert len(lenet) == len(invariant) == 4
    assert all(0.0 <= a <= 1.0 for a in lenet + invariant)
    # invariant logits: the same predictions, so the same accuracy, on every rotation
    assert max(invariant) - min(invariant) < 1e-12
    assert lenet[0] > 0.5 and invariant[0] > 0.2  # two epochs learn something (chance: 0.1)
