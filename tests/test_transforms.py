"""minidl.transforms: each transform against a per-image loop with the same draws,
seeding, shapes, dtypes, validation, DataLoader(transform=...)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minidl
from minidl import transforms as T
from minidl.data import DataLoader, random_shift

MANY = settings(max_examples=25, deadline=None)


def _images(seed, shape, dtype=np.float32):
    return np.random.default_rng(seed).random(shape).astype(dtype)


def _affine_one(image, angle, scale, tx, ty):
    """One image, pixel by pixel: output (y, x) takes the nearest source pixel of the
    rotation (counter-clockwise as seen) and scaling about the centre then the shift."""
    c, h, w = image.shape
    cx, cy = (w - 1) / 2, (h - 1) / 2
    a = math.radians(angle)
    out = np.zeros_like(image)
    for y in range(h):
        for x in range(w):
            u, v = x - cx - tx, y - cy - ty
            sx = cx + (math.cos(a) * u - math.sin(a) * v) / scale
            sy = cy + (math.sin(a) * u + math.cos(a) * v) / scale
            i, j = round(sy), round(sx)  # Python's round: half to even
            if 0 <= i < h and 0 <= j < w:
                out[:, y, x] = image[:, i, j]
    return out


def _check_new_array(out, images):
    assert out.shape == images.shape and out.dtype == images.dtype
    assert type(out) is np.ndarray and out.flags.c_contiguous and out.flags.writeable
    assert not np.may_share_memory(out, images)


@MANY
@given(st.integers(0, 3), st.integers(0, 2**31 - 1), st.sampled_from([np.float32, np.float64]))
def test_random_shift_is_random_shift_of_minidl_data(max_shift, seed, dtype):
    images = _images(seed, (9, 2, 5, 7), dtype)
    a = T.RandomShift(max_shift, seed=seed)
    b = random_shift(max_shift, seed=seed)
    assert isinstance(b, T.RandomShift)
    for _ in range(2):
        np.testing.assert_array_equal(a(images), b(images))
    # the generator has made the same draws: one (2, N) integers call per batch
    ref = np.random.default_rng(seed)
    if max_shift:
        ref.integers(-max_shift, max_shift + 1, size=(2, 9))
        ref.integers(-max_shift, max_shift + 1, size=(2, 9))
    assert a.generator.random() == ref.random()


@MANY
@given(st.integers(0, 2**31 - 1), st.sampled_from([np.float32, np.float64]), st.integers(3, 9))
def test_random_rotation_matches_a_per_image_loop(seed, dtype, size):
    images = _images(seed, (5, 2, size, size + 1), dtype)
    out = T.RandomRotation(45, seed=seed)(images)
    _check_new_array(out, images)
    angles = np.random.default_rng(seed).uniform(-45, 45, size=5)
    for i in range(5):
        np.testing.assert_array_equal(out[i], _affine_one(images[i], angles[i], 1, 0, 0))


def test_random_rotation_by_quarter_turns_is_rot90():
    images = _images(0, (3, 2, 6, 6))
    for k in (1, 2, 3):
        out = T.RandomRotation((90 * k, 90 * k), seed=0)(images)
        np.testing.assert_array_equal(out, np.rot90(images, k, axes=(2, 3)))
    np.testing.assert_array_equal(T.RandomRotation(0)(images), images)


@MANY
@given(st.integers(0, 2**31 - 1), st.sampled_from([np.float32, np.float64]))
def test_random_affine_matches_a_per_image_loop(seed, dtype):
    images = _images(seed, (6, 1, 8, 7), dtype)
    out = T.RandomAffine(30, translate=(0.2, 0.3), scale=(0.7, 1.3), seed=seed)(images)
    _check_new_array(out, images)
    rng = np.random.default_rng(seed)
    angles = rng.uniform(-30, 30, size=6)
    tx = np.round(rng.uniform(-0.2 * 7, 0.2 * 7, size=6))
    ty = np.round(rng.uniform(-0.3 * 8, 0.3 * 8, size=6))
    scales = rng.uniform(0.7, 1.3, size=6)
    for i in range(6):
        want = _affine_one(images[i], angles[i], scales[i], tx[i], ty[i])
        np.testing.assert_array_equal(out[i], want)


def test_random_affine_pure_translation_shifts_whole_pixels():
    images = _images(1, (4, 1, 6, 6))
    out = T.RandomAffine(0, translate=(0.5, 0.5), seed=5)(images)
    rng = np.random.default_rng(5)
    rng.uniform(0, 0, size=4)
    tx = np.round(rng.uniform(-3, 3, size=4)).astype(int)
    ty = np.round(rng.uniform(-3, 3, size=4)).astype(int)
    for i in range(4):
        want = np.zeros_like(images[i])
        for y in range(6):
            for x in range(6):
                if 0 <= y - ty[i] < 6 and 0 <= x - tx[i] < 6:
                    want[:, y, x] = images[i, :, y - ty[i], x - tx[i]]
        np.testing.assert_array_equal(out[i], want)


@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_random_horizontal_flip_matches_a_per_image_loop(p):
    images = _images(2, (20, 3, 4, 5))
    out = T.RandomHorizontalFlip(p, seed=9)(images)
    _check_new_array(out, images)
    flips = np.random.default_rng(9).random(20) < p
    for i in range(20):
        want = images[i, :, :, ::-1] if flips[i] else images[i]
        np.testing.assert_array_equal(out[i], want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normalize_matches_a_per_channel_loop(dtype):
    images = _images(3, (4, 3, 5, 5), dtype)
    mean, std = [0.1, 0.5, 0.9], [0.2, 1.0, 4.0]
    out = T.Normalize(mean, std)(images)
    _check_new_array(out, images)
    for c in range(3):
        want = (images[:, c] - dtype(mean[c])) / dtype(std[c])
        np.testing.assert_allclose(out[:, c], want, rtol=1e-6)
    np.testing.assert_allclose(T.Normalize(0.5, 2)(images), (images - 0.5) / 2, rtol=1e-6)


def test_compose_applies_in_order_and_exposes_the_generator():
    images = _images(4, (5, 1, 6, 6))
    flip = T.RandomHorizontalFlip(1.0)
    norm = T.Normalize(0.5, 0.25)
    out = T.Compose([flip, norm])(images)
    np.testing.assert_allclose(out, (images[..., ::-1] - 0.5) / 0.25)
    assert T.Compose([flip, norm]).generator is None
    shift = T.RandomShift(1, seed=3)
    assert T.Compose([norm, shift]).generator is shift.generator
    assert T.Compose([norm, shift]).returns_new_array
    assert "Normalize" in repr(T.Compose([norm, shift]))


def test_seed_none_draws_from_minidls_global_generator():
    images = _images(5, (8, 1, 6, 6))
    for make in (
        lambda: T.RandomShift(2),
        lambda: T.RandomRotation(30),
        lambda: T.RandomAffine(10, translate=(0.1, 0.1), scale=(0.9, 1.1)),
        lambda: T.RandomHorizontalFlip(),
    ):
        t = make()
        assert t.generator is None
        minidl.manual_seed(11)
        a = t(images)
        minidl.manual_seed(11)
        b = make()(images)
        np.testing.assert_array_equal(a, b)
    x1 = T.RandomRotation(30, seed=1)(images)
    x2 = T.RandomRotation(30, seed=1)(images)
    x3 = T.RandomRotation(30, seed=2)(images)
    np.testing.assert_array_equal(x1, x2)
    assert not np.array_equal(x1, x3)


def test_data_loader_applies_the_transform_to_each_batch():
    X = _images(6, (10, 1, 4, 4))
    y = np.arange(10)
    loader = DataLoader(X, y, batch_size=4, transform=T.RandomHorizontalFlip(1.0))
    batches = list(loader)
    assert [xb.shape[0] for xb, _ in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([xb.data for xb, _ in batches]), X[..., ::-1])


def test_validation_errors():
    with pytest.raises(ValueError, match="max_shift"):
        T.RandomShift(-1)
    with pytest.raises(ValueError, match="max_shift"):
        T.RandomShift(1.5)
    with pytest.raises(ValueError, match="degrees"):
        T.RandomRotation(-5)
    with pytest.raises(ValueError, match="degrees"):
        T.RandomRotation((10, -10))
    with pytest.raises(ValueError, match="translate"):
        T.RandomAffine(0, translate=(0.5, 1.5))
    with pytest.raises(ValueError, match="translate"):
        T.RandomAffine(0, translate=0.5)
    with pytest.raises(ValueError, match="scale"):
        T.RandomAffine(0, scale=(0.0, 1.0))
    with pytest.raises(ValueError, match="p must be"):
        T.RandomHorizontalFlip(1.5)
    with pytest.raises(ValueError, match="std"):
        T.Normalize(0.0, 0.0)
    with pytest.raises(ValueError, match="mean has 2 values"):
        T.Normalize([0.0, 1.0], 1.0)(np.zeros((1, 3, 2, 2), np.float32))
    with pytest.raises(TypeError, match="floating"):
        T.Normalize(0.0, 1.0)(np.zeros((1, 1, 2, 2), np.int64))
    with pytest.raises(TypeError, match="callable"):
        T.Compose([1])
    for t in (T.RandomShift(1), T.RandomRotation(5), T.RandomHorizontalFlip(), T.Normalize(0, 1)):
        with pytest.raises(ValueError, match="N, C, H, W"):
            t(np.zeros((8, 8), np.float32))
