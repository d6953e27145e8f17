"""make_localization_digits, minidl.metrics.box_iou and examples/localize_digits.py."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from minidl import tensor
from minidl.data import load_digits, make_localization_digits
from minidl.metrics import box_iou

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "localize_digits.py"


@pytest.mark.parametrize("scale", [False, True])
@pytest.mark.parametrize("canvas", [8, 13, 24])
def test_each_digit_sits_inside_its_box(scale, canvas):
    images, labels, boxes = make_localization_digits(60, canvas, scale, random_state=3)
    assert images.shape == (60, 1, canvas, canvas) and images.dtype == np.float32
    assert labels.shape == (60,) and labels.dtype == np.int64
    assert boxes.shape == (60, 4) and boxes.dtype == np.float32
    assert set(labels) <= set(range(10))
    sizes = boxes[:, 2] - boxes[:, 0]
    assert np.array_equal(sizes, boxes[:, 3] - boxes[:, 1])  # squares
    assert boxes.min() >= 0 and boxes.max() <= canvas
    if scale:
        assert sizes.min() >= 8 and sizes.max() <= min(16, canvas)
    else:
        assert (sizes == 8).all()
    for image, box in zip(images[:, 0], boxes.astype(int)):
        x0, y0, x1, y1 = box
        inside = image[y0:y1, x0:x1]
        assert inside.sum() == image.sum() > 0  # no ink outside the box


def test_unscaled_digits_are_the_source_digits_and_seeded():
    X, y, _, _ = load_digits()
    images, labels, boxes = make_localization_digits(30, 20, digits=(X, y), random_state=5)
    for image, label, (x0, y0, _, _) in zip(images[:, 0], labels, boxes.astype(int)):
        patch = image[y0 : y0 + 8, x0 : x0 + 8]
        same = [i for i in range(len(X)) if np.array_equal(X[i, 0], patch)]
        assert same and label in y[same]
    again = make_localization_digits(30, 20, digits=(X, y), random_state=5)
    assert all(np.array_equal(a, b) for a, b in zip((images, labels, boxes), again))
    other = make_localization_digits(30, 20, digits=(X, y), random_state=6)
    assert not np.array_equal(boxes, other[2])


def test_make_localization_digits_validation():
    with pytest.raises(ValueError, match="canvas"):
        make_localization_digits(4, canvas=7)
    with pytest.raises(ValueError, match="n must"):
        make_localization_digits(-1)
    with pytest.raises(ValueError, match="digits"):
        make_localization_digits(4, digits=(np.zeros((3, 7, 7)), np.zeros(3)))
    assert make_localization_digits(0)[0].shape == (0, 1, 24, 24)


def _iou_loop(a, b):
    out = np.zeros((len(a), len(b)))
    for i, (ax0, ay0, ax1, ay1) in enumerate(a):
        for j, (bx0, by0, bx1, by1) in enumerate(b):
            w = max(0.0, min(ax1, bx1) - max(ax0, bx0))
            h = max(0.0, min(ay1, by1) - max(ay0, by0))
            union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - w * h
            out[i, j] = w * h / union
    return out


def _random_boxes(rng, n):
    corner = rng.uniform(0, 20, size=(n, 2))
    return np.concatenate([corner, corner + rng.uniform(0.5, 10, size=(n, 2))], axis=1)


def test_box_iou_pairwise_against_a_loop():
    rng = np.random.default_rng(0)
    a, b = _random_boxes(rng, 7), _random_boxes(rng, 5)
    iou = box_iou(a, b)
    assert iou.shape == (7, 5)
    np.testing.assert_allclose(iou, _iou_loop(a, b), rtol=1e-12)
    np.testing.assert_allclose(box_iou(tensor(a), b.tolist()), iou)
    np.testing.assert_array_equal(box_iou(a, a).diagonal(), np.ones(7))
    assert box_iou([[0, 0, 2, 2]], [[1, 1, 3, 3]])[0, 0] == pytest.approx(1 / 7)
    assert box_iou([[0, 0, 1, 1]], [[2, 2, 3, 3]])[0, 0] == 0


def test_box_iou_validation():
    with pytest.raises(ValueError, match=r"a must have shape \(N, 4\)"):
        box_iou(np.zeros((3, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="x1 >= x0"):
        box_iou(np.zeros((1, 4)), [[2, 0, 1, 1]])
    with pytest.raises(ValueError, match="NaN"):
        box_iou([[0, 0, np.nan, 1]], np.zeros((1, 4)))


def test_localize_digits_example_runs(capsys):
    spec = importlib.util.spec_from_file_location("localize_digits", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    accuracy, iou = module.main(["--epochs", "5", "--train-size", "1280"])
    out = capsys.readouterr().out
    assert "test accuracy" in out and "mean IoU" in out
    assert 0 <= accuracy <= 1 and 0 <= iou <= 1
    assert iou > 0.5  # five short epochs already find the digit
