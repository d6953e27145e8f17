"""minidl.viz and ``minidl train --plot-dir``: each picture is a valid PNG of a sensible
size (written into tmp_path, nothing committed)."""

import struct

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import minidl  # noqa: E402
from minidl import cli, nn, viz  # noqa: E402
from minidl.models import LeNet  # noqa: E402
from minidl.training import History  # noqa: E402


def _png_size(path):
    """(width, height) of a PNG file, after checking its signature and header chunk."""
    raw = path.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert raw[12:16] == b"IHDR" and raw.endswith(b"IEND\xaeB`\x82")
    assert len(raw) > 5_000  # something was drawn, not an empty canvas
    return struct.unpack(">II", raw[16:24])


def _sensible(path, min_side=250, max_side=2000):
    width, height = _png_size(path)
    assert min_side <= width <= max_side and min_side <= height <= max_side, (width, height)


def test_plot_filters_of_a_layer_and_of_a_weight(tmp_path):
    minidl.manual_seed(0)
    conv = nn.Conv2d(1, 6, 3)
    fig = viz.plot_filters(conv, tmp_path / "a.png")
    assert len(fig.axes) == 2  # the mosaic and its colour bar
    _sensible(tmp_path / "a.png")
    weight = np.random.default_rng(0).standard_normal((100, 3, 5, 5))
    viz.plot_filters(weight, tmp_path / "b.png")  # 300 tiles: the first 64 shown
    _sensible(tmp_path / "b.png")
    assert viz.plot_filters(conv.weight) is not None  # no path: nothing written
    with pytest.raises(TypeError, match="conv layer"):
        viz.plot_filters(np.zeros((3, 3)))
    with pytest.raises(TypeError, match="conv layer"):
        viz.plot_filters(nn.ReLU())


def test_plot_feature_maps_by_module_and_by_name(tmp_path):
    minidl.manual_seed(0)
    model = LeNet()
    x = np.random.default_rng(1).random((3, 1, 8, 8)).astype(np.float32)
    model.train()
    viz.plot_feature_maps(model, x, "features.0", tmp_path / "maps.png")
    _sensible(tmp_path / "maps.png")
    assert model.training  # mode restored
    viz.plot_feature_maps(model, minidl.tensor(x[0]), model.features[4], tmp_path / "pool.png")
    _sensible(tmp_path / "pool.png")
    with pytest.raises(ValueError, match="not in the model"):
        viz.plot_feature_maps(model, x, "nope")
    with pytest.raises(ValueError, match=r"\(N, C, H, W\) maps"):
        viz.plot_feature_maps(model, x, "classifier.0")
    with pytest.raises(ValueError, match="x must be"):
        viz.plot_feature_maps(model, np.zeros((8, 8), np.float32), "features.0")


def test_plot_history(tmp_path):
    history = History(
        {"epoch": e, "loss": 2.0 / e, "train_accuracy": 1 - 0.5 / e, "test_accuracy": 1 - 0.6 / e}
        for e in range(1, 6)
    )
    fig = viz.plot_history(history, tmp_path / "h.png")
    assert len(fig.axes) == 2
    _sensible(tmp_path / "h.png")
    only_loss = History({"epoch": e, "loss": 1.0 / e} for e in range(1, 4))
    assert len(viz.plot_history(only_loss).axes) == 1
    with pytest.raises(TypeError, match="History"):
        viz.plot_history({"loss": [1.0]})
    with pytest.raises(ValueError, match="no epochs"):
        viz.plot_history(History())


def test_plot_confusion_matrix(tmp_path):
    rng = np.random.default_rng(2)
    y_true = rng.integers(0, 10, 200)
    y_pred = np.where(rng.random(200) < 0.8, y_true, rng.integers(0, 10, 200))
    fig = viz.plot_confusion_matrix(y_true, y_pred, tmp_path / "c.png")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert len(texts) == 100  # one count per cell
    assert sum(int(t) for t in texts) == 200
    _sensible(tmp_path / "c.png")
    with pytest.raises(ValueError, match="same"):
        viz.plot_confusion_matrix([1, 2], [1])


def test_train_plot_dir_saves_three_pictures(tmp_path, capsys):
    folder = tmp_path / "new" / "plots"  # created, parents too
    code = cli.main(
        ["train", "--epochs", "2", "--save", str(tmp_path / "w.npz"), "--plot-dir", str(folder)]
    )
    assert code == 0
    for name in ("history.png", "filters.png", "confusion.png"):
        _sensible(folder / name)
    assert "plots saved" in capsys.readouterr().out


def test_train_plot_dir_problems_fail_before_training(tmp_path, monkeypatch, capsys):
    def refuse(**kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(cli, "train_digits", refuse)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for bad, problem in ((a_file, "is not a folder"), (a_file / "sub", "cannot be created")):
        code = cli.main(["train", "--save", str(tmp_path / "w.npz"), "--plot-dir", str(bad)])
        assert code == 2
        assert problem in capsys.readouterr().err
