"""load_npz, load_idx and load_image_folder on small data sets written here (no download)."""

import gzip
import struct

import numpy as np
import pytest

from minidl.data import load_idx, load_image_folder, load_npz


# ---- IDX ----------------------------------------------------------------------------
def _idx_bytes(array, magic=None):
    """The IDX encoding written from the format's definition: magic, big-endian dims, data."""
    array = np.asarray(array, dtype=np.uint8)
    magic = 0x0800 + array.ndim if magic is None else magic
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.tobytes()


def _write(path, data, gz=False):
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.fixture
def idx_pixels():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(7, 5, 4), dtype=np.uint8), rng.integers(0, 10, size=7)


@pytest.mark.parametrize("gz", [False, True])
def test_load_idx_reads_images_and_labels(tmp_path, idx_pixels, gz):
    pixels, labels = idx_pixels
    suffix = ".gz" if gz else ""
    images_path = _write(tmp_path / f"images-idx3-ubyte{suffix}", _idx_bytes(pixels), gz)
    labels_path = _write(tmp_path / f"labels-idx1-ubyte{suffix}", _idx_bytes(labels), gz)
    X, y = load_idx(images_path, str(labels_path))
    assert X.dtype == np.float32 and X.shape == (7, 1, 5, 4)
    assert y.dtype == np.int64 and y.shape == (7,)
    np.testing.assert_array_equal(X[:, 0], pixels.astype(np.float32) / 255)
    np.testing.assert_array_equal(y, labels)
    assert X.min() >= 0 and X.max() <= 1


def test_load_idx_recognises_gzip_by_content_not_name(tmp_path, idx_pixels):
    pixels, labels = idx_pixels
    images_path = _write(tmp_path / "images.idx", _idx_bytes(pixels), gz=True)
    labels_path = _write(tmp_path / "labels.gz", _idx_bytes(labels), gz=False)
    X, y = load_idx(images_path, labels_path)
    assert X.shape == (7, 1, 5, 4) and np.array_equal(y, labels)


def _idx_pair(tmp_path, images_data, labels_data):
    return (
        _write(tmp_path / "images", images_data),
        _write(tmp_path / "labels", labels_data),
    )


def test_load_idx_wrong_magic_names_the_file(tmp_path, idx_pixels):
    pixels, labels = idx_pixels
    # images and labels swapped: each magic number is the other's
    images_path, labels_path = _idx_pair(tmp_path, _idx_bytes(labels), _idx_bytes(pixels))
    with pytest.raises(ValueError, match=r"magic number 0x00000801, expected 0x00000803") as e:
        load_idx(images_path, labels_path)
    assert str(images_path) in str(e.value)
    images_path, labels_path = _idx_pair(
        tmp_path, _idx_bytes(pixels), _idx_bytes(labels, magic=0x0D01)
    )
    with pytest.raises(ValueError, match=r"labels file .*labels has magic number 0x00000D01"):
        load_idx(images_path, labels_path)
    images_path, labels_path = _idx_pair(tmp_path, b"\x89PNG\r\n\x1a\n", _idx_bytes(labels))
    with pytest.raises(ValueError, match="magic number"):
        load_idx(images_path, labels_path)


@pytest.mark.parametrize("gz", [False, True])
def test_load_idx_truncated_files(tmp_path, idx_pixels, gz):
    pixels, labels = idx_pixels
    good_labels = _write(tmp_path / "labels", _idx_bytes(labels), gz)
    full = _idx_bytes(pixels)
    for cut, pattern in [
        (len(full) - 1, r"is truncated: 155 bytes, its header \(shape \(7, 5, 4\)\) says 156"),
        (10, "truncated: 10 bytes, its header alone needs 16"),
        (2, r"truncated \(2 bytes\)"),
    ]:
        images_path = _write(tmp_path / "images", full[:cut], gz)
        with pytest.raises(ValueError, match=pattern) as e:
            load_idx(images_path, good_labels)
        assert str(images_path) in str(e.value)
    images_path = _write(tmp_path / "images", full + b"\x00", gz)
    with pytest.raises(ValueError, match="longer than its header says"):
        load_idx(images_path, good_labels)


def test_load_idx_broken_gzip(tmp_path, idx_pixels):
    pixels, labels = idx_pixels
    data = gzip.compress(_idx_bytes(pixels))
    images_path, labels_path = _idx_pair(tmp_path, data[: len(data) // 2], _idx_bytes(labels))
    with pytest.raises(ValueError, match=r"images file .*images is a broken gzip file"):
        load_idx(images_path, labels_path)


def test_load_idx_mismatched_counts_and_labels_out_of_range(tmp_path, idx_pixels):
    pixels, labels = idx_pixels
    images_path, labels_path = _idx_pair(tmp_path, _idx_bytes(pixels), _idx_bytes(labels[:6]))
    with pytest.raises(ValueError, match="mismatched counts: 7 images but 6 labels"):
        load_idx(images_path, labels_path)
    bad = labels.copy()
    bad[3] = 12
    images_path, labels_path = _idx_pair(tmp_path, _idx_bytes(pixels), _idx_bytes(bad))
    with pytest.raises(ValueError, match=r"labels out of range: 12 for num_classes=10") as e:
        load_idx(images_path, labels_path, num_classes=10)
    assert str(labels_path) in str(e.value)
    assert load_idx(images_path, labels_path)[1][3] == 12  # no bound asked for, none checked


def test_load_idx_missing_file_and_bad_num_classes(tmp_path, idx_pixels):
    pixels, labels = idx_pixels
    images_path, labels_path = _idx_pair(tmp_path, _idx_bytes(pixels), _idx_bytes(labels))
    with pytest.raises(FileNotFoundError, match="no such file: .*nothing-here"):
        load_idx(tmp_path / "nothing-here", labels_path)
    with pytest.raises(ValueError, match="num_classes must be >= 1"):
        load_idx(images_path, labels_path, num_classes=0)
    with pytest.raises(TypeError, match="num_classes must be an int"):
        load_idx(images_path, labels_path, num_classes=2.5)


# ---- npz ----------------------------------------------------------------------------
def _labels_balanced(n, classes=3):
    return np.arange(n) % classes


def test_load_npz_split_arrays_uint8(tmp_path):
    rng = np.random.default_rng(1)
    arrays = {
        "X_train": rng.integers(0, 256, size=(6, 5, 5), dtype=np.uint8),
        "y_train": np.array([0, 1, 2, 0, 1, 2], dtype=np.int32),
        "X_test": rng.integers(0, 256, size=(3, 5, 5), dtype=np.uint8),
        "y_test": np.array([2, 1, 0], dtype=np.uint8),
    }
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    X_train, y_train, X_test, y_test = load_npz(path)
    assert X_train.shape == (6, 1, 5, 5) and X_test.shape == (3, 1, 5, 5)
    assert X_train.dtype == np.float32 and y_test.dtype == np.int64
    np.testing.assert_array_equal(X_train[:, 0], arrays["X_train"].astype(np.float32) / 255)
    np.testing.assert_array_equal(y_test, [2, 1, 0])


def test_load_npz_X_y_is_split_stratified(tmp_path):
    rng = np.random.default_rng(2)
    n = 50
    y = _labels_balanced(n, 5)
    X = rng.random((n, 3, 4, 4))  # float64 in [0, 1], 3 channels
    X[:, 0, 0, 0] = y  # mark each image with its label (scaled below)
    X[:, 0, 0, 0] /= 10
    path = tmp_path / "d.npz"
    np.savez_compressed(path, X=X, y=y)
    X_train, y_train, X_test, y_test = load_npz(path)
    assert len(X_train) == 40 and len(X_test) == 10
    assert X_train.dtype == np.float32 and X_train.shape[1:] == (3, 4, 4)
    assert np.array_equal(np.bincount(y_test), [2] * 5)  # 20% of every class
    for images, labels in [(X_train, y_train), (X_test, y_test)]:  # pairs kept together
        np.testing.assert_allclose(images[:, 0, 0, 0], labels / 10, rtol=1e-6)
    again = load_npz(path)
    assert np.array_equal(again[3], y_test)
    other = load_npz(path, test_size=0.4, random_state=1)
    assert len(other[2]) == 20


def test_load_npz_refuses_object_arrays_without_unpickling(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, X=np.array([object(), None], dtype=object), y=np.array([0, 1]))
    with pytest.raises(ValueError, match=r"cannot read 'X' from .*evil.npz.*allow_pickle"):
        load_npz(path)
    pickled = tmp_path / "pickled.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="pickled.npy"):
        load_npz(pickled)


@pytest.mark.parametrize(
    "arrays, error, pattern",
    [
        ({"images": np.zeros((2, 3, 3))}, ValueError, r"must hold arrays .*it holds \['images'\]"),
        (
            {"X": np.zeros((4, 3, 3)), "y": np.array([0, 1, 0])},
            ValueError,
            r"\[X, y\]: mismatched counts: 4 images but 3 labels",
        ),
        ({"X": np.zeros((4, 3)), "y": np.zeros(4, int)}, ValueError, r"\[X\]: images must have"),
        (
            {"X": np.full((4, 2, 2), 2.0), "y": np.zeros(4, int)},
            ValueError,
            r"float pixels must be in \[0, 1\]",
        ),
        (
            {"X": np.full((4, 2, 2), 300), "y": np.zeros(4, int)},
            ValueError,
            "integer pixels must be in 0..255",
        ),
        (
            {"X": np.full((4, 2, 2), np.nan), "y": np.zeros(4, int)},
            ValueError,
            "NaN",
        ),
        (
            {"X": np.zeros((4, 2, 2)), "y": np.array([0, 1, -1, 0])},
            ValueError,
            r"\[y\]: labels out of range: -1 is negative",
        ),
        (
            {"X": np.zeros((4, 2, 2)), "y": np.array([0.0, 1.0, 1.0, 0.0])},
            TypeError,
            "labels must be integers",
        ),
        (
            {"X": np.zeros((4, 2, 2)), "y": np.zeros((4, 1), int)},
            ValueError,
            r"labels must have shape \(N,\)",
        ),
        (
            {"X": np.array(["a", "b"]), "y": np.zeros(2, int)},
            ValueError,
            "images must have shape",
        ),
        (
            {
                "X_train": np.zeros((2, 3, 3)),
                "y_train": np.zeros(2, int),
                "X_test": np.zeros((2, 4, 4)),
                "y_test": np.zeros(2, int),
            },
            ValueError,
            r"X_train images are \(1, 3, 3\) but X_test images are \(1, 4, 4\)",
        ),
        (
            {
                "X_train": np.zeros((2, 3, 3)),
                "y_train": np.zeros(2, int),
                "X_test": np.zeros((2, 3, 3)),
                "y_test": np.zeros(1, int),
            },
            ValueError,
            r"\[X_test, y_test\]: mismatched counts",
        ),
        (
            {"X": np.zeros((3, 2, 2)), "y": np.array([0, 1, 1])},  # class 0 has one member
            ValueError,
            "cannot split .* stratified",
        ),
    ],
)
def test_load_npz_bad_contents(tmp_path, arrays, error, pattern):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(error, match=pattern) as e:
        load_npz(path)
    assert str(path) in str(e.value)


def test_load_npz_labels_above_num_classes(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.zeros((6, 2, 2)), y=np.array([0, 1, 2, 0, 1, 2]))
    with pytest.raises(ValueError, match="labels out of range: 2 for num_classes=2"):
        load_npz(path, num_classes=2)
    assert load_npz(path, test_size=0.5, num_classes=3)[1].max() <= 2


def test_load_npz_not_an_npz(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_npz(tmp_path / "missing.npz")
    text = tmp_path / "notes.npz"
    text.write_text("hello, this is not numpy")
    with pytest.raises(ValueError, match="cannot read .*notes.npz"):
        load_npz(text)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(ValueError, match=r"single.npy is a single .npy array"):
        load_npz(single)
    good = tmp_path / "good.npz"
    np.savez(good, X=np.zeros((10, 2, 2)), y=_labels_balanced(10, 2))
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:-40])
    with pytest.raises(ValueError, match="truncated.npz"):
        load_npz(truncated)


# ---- image folders --------------------------------------------------------------------
@pytest.fixture
def image_folder(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(3)
    root = tmp_path / "shapes"
    expected = {}
    for cls, count in [("circle", 2), ("square", 3)]:
        (root / cls).mkdir(parents=True)
        for i in range(count):
            pixels = rng.integers(0, 256, size=(6, 5, 3), dtype=np.uint8)  # H 6, W 5, RGB
            name = f"{i}.png" if i % 2 == 0 else f"{i}.PNG"
            Image.fromarray(pixels, "RGB").save(root / cls / name)
            expected[(cls, i)] = pixels
    (root / "square" / "notes.txt").write_text("not an image")  # skipped
    (root / ".hidden").mkdir()  # not a class
    return root, expected


def test_load_image_folder_rgb_and_grayscale(image_folder):
    from PIL import Image

    root, expected = image_folder
    X, y, classes = load_image_folder(root, grayscale=False)
    assert classes == ["circle", "square"]
    assert X.shape == (5, 3, 6, 5) and X.dtype == np.float32
    assert y.dtype == np.int64 and y.tolist() == [0, 0, 1, 1, 1]
    np.testing.assert_array_equal(
        X[2], expected[("square", 0)].transpose(2, 0, 1).astype(np.float32) / 255
    )
    G, y2, _ = load_image_folder(str(root))  # grayscale by default
    assert G.shape == (5, 1, 6, 5) and np.array_equal(y2, y)
    gray = np.asarray(Image.fromarray(expected[("circle", 1)], "RGB").convert("L"))
    np.testing.assert_array_equal(G[1, 0], gray.astype(np.float32) / 255)


def test_load_image_folder_resizes_jpeg_and_mixed_sizes(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    root = tmp_path / "data"
    for cls, shape in [("a", (10, 12)), ("b", (7, 7))]:
        (root / cls).mkdir(parents=True)
        Image.fromarray(np.full(shape, 200, np.uint8), "L").save(root / cls / "x.jpg")
        Image.fromarray(np.full(shape, 50, np.uint8), "L").save(root / cls / "y.jpeg")
    with pytest.raises(ValueError, match=r"is 7x7 but the first image is 12x10; pass size"):
        load_image_folder(root)
    X, y, classes = load_image_folder(root, size=(8, 9))
    assert X.shape == (4, 1, 8, 9) and classes == ["a", "b"] and y.tolist() == [0, 0, 1, 1]
    # a constant image stays (close to) constant through JPEG and the resize
    np.testing.assert_allclose(X[0], 200 / 255, atol=3 / 255)
    np.testing.assert_allclose(X[3], 50 / 255, atol=3 / 255)
    assert load_image_folder(root, size=4)[0].shape == (4, 1, 4, 4)


def test_load_image_folder_bad_inputs(tmp_path, image_folder):
    root, _ = image_folder
    with pytest.raises(FileNotFoundError, match="no such folder"):
        load_image_folder(tmp_path / "nope")
    with pytest.raises(TypeError, match=r"size must be \(H, W\)"):
        load_image_folder(root, size=(3, 4, 5))
    with pytest.raises(TypeError, match=r"size must be \(H, W\)"):
        load_image_folder(root, size=(3.0, 4))
    with pytest.raises(ValueError, match="size must be positive"):
        load_image_folder(root, size=(0, 4))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="has no class sub-folders"):
        load_image_folder(empty)
    (empty / "cats").mkdir()
    (empty / "cats" / "readme.txt").write_text("no pictures")
    with pytest.raises(ValueError, match=r"class folder .*cats has no .png/.jpg/.jpeg files"):
        load_image_folder(empty)
    (root / "circle" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(ValueError, match=r"cannot read image .*broken.png"):
        load_image_folder(root)


def test_load_image_folder_without_pillow(monkeypatch, image_folder):
    import sys

    root, _ = image_folder
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match=r"needs Pillow: pip install \"minidl\[images\]\""):
        load_image_folder(root)
