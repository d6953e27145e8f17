"""``minidl train --data``: npz, IDX and image-folder data sets made here, resumed runs,
and one-line errors for bad paths and files."""

import gzip
import os
import signal

import numpy as np
import pytest

import minidl
from minidl import cli

H, W, CLASSES, PER_CLASS = 10, 12, 3, 12


def _images(seed=0):
    """Class k: a bright bar at row 2 + 3k on noise; (N, H, W) uint8 and (N,) labels."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 60, size=(CLASSES * PER_CLASS, H, W), dtype=np.uint8)
    y = np.repeat(np.arange(CLASSES), PER_CLASS)
    for i, label in enumerate(y):
        X[i, 2 + 3 * label] = 250
    return X, y


def _idx(path, array, magic, gz=False):
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    with (gzip.open if gz else open)(path, "wb") as f:
        f.write(raw)


def _train(tmp_path, *extra, epochs=1):
    save = tmp_path / "w.npz"
    argv = ["train", "--epochs", str(epochs), "--batch-size", "8", "--save", str(save), "-q"]
    code = cli.main(argv + list(extra))
    return code, save


def _check_model(save, channels=1, classes=CLASSES):
    weights = minidl.load(str(save))
    assert weights["features.0.weight"].shape[1] == channels
    assert weights["classifier.5.weight"].shape[0] == classes
    # two 2x2 pools: (10, 12) -> (2, 3) feature maps of 16 channels
    assert weights["classifier.1.weight"].shape[1] == 16 * (H // 4) * (W // 4)


def test_npz_with_a_test_split(tmp_path):
    X, y = _images()
    path = tmp_path / "d.npz"
    np.savez(path, X_train=X, y_train=y, X_test=X[::3], y_test=y[::3])
    metrics = tmp_path / "m.json"
    code, save = _train(tmp_path, "--data", str(path), "--metrics-json", str(metrics), epochs=2)
    assert code == 0
    _check_model(save)
    import json

    report = json.loads(metrics.read_text())
    assert report["data"] == str(path) and len(report["history"]) == 2
    assert 0.0 <= report["test_accuracy"] <= 1.0


@pytest.mark.parametrize("gz", [False, True])
def test_idx_labels_found_beside_the_images(tmp_path, gz):
    X, y = _images()
    suffix = ".gz" if gz else ""
    images = tmp_path / f"train-images-idx3-ubyte{suffix}"
    _idx(images, X, 0x803, gz)
    _idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", y, 0x801, gz)
    code, save = _train(tmp_path, "--data", str(images))
    assert code == 0
    _check_model(save)


def test_idx_as_images_comma_labels(tmp_path):
    X, y = _images()
    _idx(tmp_path / "a.idx", X, 0x803)
    _idx(tmp_path / "b.idx", y, 0x801)
    code, save = _train(tmp_path, "--data", f"{tmp_path / 'a.idx'},{tmp_path / 'b.idx'}")
    assert code == 0
    _check_model(save)


def test_image_folder(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    X, y = _images()
    root = tmp_path / "imgs"
    for i, (img, label) in enumerate(zip(X, y)):
        folder = root / f"class_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"{i}.png")
    code, save = _train(tmp_path, "--data", str(root))
    assert code == 0
    _check_model(save)


def test_a_data_run_resumes_to_the_uninterrupted_weights(tmp_path, monkeypatch):
    X, y = _images()
    path = tmp_path / "d.npz"
    np.savez(path, X=X, y=y)
    full = tmp_path / "full"
    full.mkdir()
    assert _train(full, "--data", str(path), epochs=2)[0] == 0

    # interrupt the same run after its first epoch (as Ctrl-C would)
    cut = tmp_path / "cut"
    cut.mkdir()
    original = cli._SaveWeights.on_epoch_end

    def then_interrupt(self, epoch, row, model):
        original(self, epoch, row, model)
        if epoch == 1:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(cli._SaveWeights, "on_epoch_end", then_interrupt)
    assert _train(cut, "--data", str(path), epochs=2)[0] == 130
    monkeypatch.undo()
    ckpt = cut / "w-resume.npz"
    assert minidl.load(str(ckpt))["cli"]["data"] == str(path)
    # from another folder: the checkpoint holds the data's absolute path
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "--resume", str(ckpt), "-q"]) == 0
    resumed, expected = minidl.load(str(cut / "w.npz")), minidl.load(str(full / "w.npz"))
    assert sorted(resumed) == sorted(expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(resumed[name], value, err_msg=name)


def _bad(tmp_path, capsys, data):
    code, save = _train(tmp_path, "--data", data)
    err = capsys.readouterr().err
    assert code == 2 and not save.exists()
    assert len(err.strip().splitlines()) == 1 and err.startswith("minidl train: error: --data")
    return err


def test_bad_data_paths_and_files_are_one_line_errors(tmp_path, capsys):
    missing = str(tmp_path / "nothing.npz")
    assert missing in _bad(tmp_path, capsys, missing)

    not_npz = tmp_path / "broken.npz"
    not_npz.write_bytes(b"not a zip file")
    assert "broken.npz" in _bad(tmp_path, capsys, str(not_npz))

    other = tmp_path / "notes.txt"
    other.write_text("hello")
    assert "notes.txt" in _bad(tmp_path, capsys, str(other))

    X, y = _images()
    images = tmp_path / "t10k-images-idx3-ubyte"
    _idx(images, X, 0x803)
    assert "t10k-labels-idx1-ubyte does not exist" in _bad(tmp_path, capsys, str(images))

    _idx(tmp_path / "t10k-labels-idx1-ubyte", y[:-1], 0x801)  # one label short
    assert "t10k" in _bad(tmp_path, capsys, str(images))

    wrong_magic = tmp_path / "w.idx"
    _idx(wrong_magic, X, 0x801)
    assert "magic number" in _bad(tmp_path, capsys, f"{wrong_magic},{tmp_path / 'w.idx'}")

    assert "IMAGES,LABELS" in _bad(tmp_path, capsys, "a,b,c")

    empty = tmp_path / "empty_folder"
    empty.mkdir()
    assert "empty_folder" in _bad(tmp_path, capsys, str(empty))
