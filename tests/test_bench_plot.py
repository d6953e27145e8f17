"""``minidl bench --plot`` and ``benchmarks/bench_suite.py --plot`` write the speed-up chart
(tiny settings: one repeat, smallest shapes, one op; no timing is asserted)."""

import importlib.util
from pathlib import Path

import pytest

from minidl import cli
from minidl.bench import suite

pytest.importorskip("matplotlib")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_PRESET = suite.preset


def _small(mode):
    return _PRESET("tiny").replace(ops=("max_pool2d",), end_to_end=False)


def test_minidl_bench_plot_at_1_and_2_threads(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(suite, "preset", _small)
    path = tmp_path / "speedups.png"
    assert cli.main(["bench", "--plot", str(path)]) == 0
    assert path.read_bytes()[:8] == PNG_MAGIC
    out = capsys.readouterr().out
    assert f"plot written to {path}" in out
    assert "max_pool2d" in out


def test_minidl_bench_plot_path_is_checked_first(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["bench", "--plot", str(tmp_path / "no" / "x.png")])
    assert exc.value.code == 2
    assert "--plot" in capsys.readouterr().err


def test_bench_suite_script_plot(tmp_path, capsys):
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_suite.py"
    spec = importlib.util.spec_from_file_location("bench_suite", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path = tmp_path / "suite.png"
    argv = ["--tiny", "--threads", "1,2", "--ops", "max_pool2d", "--plot", str(path)]
    assert module.main(argv) == 0
    assert path.read_bytes()[:8] == PNG_MAGIC
