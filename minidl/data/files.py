"""Your own data from files: npz arrays, MNIST-style IDX files, folders of images.

Every loader returns images as float32 (N, C, H, W) arrays scaled to [0, 1] and labels as
int64 (N,) arrays, and checks what it reads: a file that is not what it claims to be
(wrong magic number, truncated, an array of Python objects, counts that disagree, labels
out of range) is a ``ValueError`` (or ``TypeError`` for a wrong dtype) that names the path.
Nothing is ever unpickled: npz files are opened with ``allow_pickle=False``.
"""

from __future__ import annotations

import gzip
import os
import zipfile
import zlib
from pathlib import Path
from typing import Union

import numpy as np

PathLike = Union[str, "os.PathLike[str]"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")

# IDX: two zero bytes, a type code, the number of dimensions, then one big-endian uint32
# per dimension and the data. MNIST uses unsigned bytes: images 0x00000803 (3 dims),
# labels 0x00000801 (1 dim).
_IDX_IMAGES_MAGIC = 0x00000803
_IDX_LABELS_MAGIC = 0x00000801


# ---- shared checks ------------------------------------------------------------------
def _check_num_classes(num_classes: int | None) -> None:
    if num_classes is None:
        return
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        raise TypeError(f"num_classes must be an int or None, got {type(num_classes).__name__}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")


def _images(array: np.ndarray, where: str) -> np.ndarray:
    """(N, H, W) or (N, C, H, W) pixels -> float32 (N, C, H, W) in [0, 1].

    Integer pixels are 0..255 (divided by 255); float pixels must already be in [0, 1].
    """
    if array.ndim == 3:
        array = array[:, None, :, :]
    if array.ndim != 4:
        raise ValueError(
            f"{where}: images must have shape (N, H, W) or (N, C, H, W), got {array.shape}"
        )
    if 0 in array.shape[1:]:
        raise ValueError(f"{where}: images have an empty dimension, shape {array.shape}")
    kind = array.dtype.kind
    if kind == "b":
        return array.astype(np.float32)
    if kind in "iu":
        if array.size and (array.min() < 0 or array.max() > 255):
            raise ValueError(
                f"{where}: integer pixels must be in 0..255, got {array.min()}..{array.max()}"
            )
        return (array / np.float32(255)).astype(np.float32)
    if kind == "f":
        images = array.astype(np.float32)
        if not np.all(np.isfinite(images)):
            raise ValueError(f"{where}: images contain NaN or infinite values")
        if images.size and (images.min() < 0 or images.max() > 1):
            raise ValueError(
                f"{where}: float pixels must be in [0, 1], got {images.min()}..{images.max()} "
                f"(store 0..255 pixels as uint8, or divide them by 255)"
            )
        return images
    raise TypeError(f"{where}: images must be numbers, got dtype {array.dtype}")


def _labels(array: np.ndarray, where: str, num_classes: int | None) -> np.ndarray:
    """Integer class indices (N,) -> int64, each in 0..num_classes-1 (or >= 0)."""
    if array.ndim != 1:
        raise ValueError(f"{where}: labels must have shape (N,), got {array.shape}")
    if array.dtype.kind not in "iu":
        raise TypeError(f"{where}: labels must be integers (class indices), got {array.dtype}")
    labels = array.astype(np.int64)
    if labels.size:
        low, high = int(labels.min()), int(labels.max())
        if low < 0:
            raise ValueError(f"{where}: labels out of range: {low} is negative")
        if num_classes is not None and high >= num_classes:
            raise ValueError(
                f"{where}: labels out of range: {high} for num_classes={num_classes} "
                f"(labels must be 0..{num_classes - 1})"
            )
    return labels


def _same_count(images: np.ndarray, labels: np.ndarray, where: str) -> None:
    if len(images) != len(labels):
        raise ValueError(
            f"{where}: mismatched counts: {len(images)} images but {len(labels)} labels"
        )
    if len(images) == 0:
        raise ValueError(f"{where}: no images")


# ---- npz ----------------------------------------------------------------------------
def load_npz(
    path: PathLike,
    test_size: float = 0.2,
    random_state: int | None = 0,
    *,
    num_classes: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Images and labels from an ``.npz`` file: ``(X_train, y_train, X_test, y_test)``.

    The file holds either ``X_train``, ``y_train``, ``X_test``, ``y_test`` or ``X``, ``y``
    (split stratified by label with ``test_size`` and ``random_state``, as
    ``load_digits``). Images are (N, H, W) or (N, C, H, W): uint8 0..255 or floats in
    [0, 1]; labels are integer class indices (N,), below ``num_classes`` when it is given.
    Returns float32 (N, C, H, W) images in [0, 1] and int64 (N,) labels.
    """
    _check_num_classes(num_classes)
    where = os.fspath(path)
    if not os.path.isfile(where):
        raise FileNotFoundError(f"load_npz: no such file: {where}")
    try:
        loaded = np.load(where, allow_pickle=False)
    except (ValueError, OSError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
        # np.load's own words: a pickle it refuses to load, a broken zip, not numpy at all
        raise ValueError(f"load_npz: cannot read {where}: {exc}") from exc
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise ValueError(f"load_npz: {where} is a single .npy array, not an .npz archive")
    with loaded as npz:
        names = set(npz.files)
        if {"X_train", "y_train", "X_test", "y_test"} <= names:
            wanted = ("X_train", "y_train", "X_test", "y_test")
        elif {"X", "y"} <= names:
            wanted = ("X", "y")
        else:
            raise ValueError(
                f"load_npz: {where} must hold arrays X_train, y_train, X_test, y_test "
                f"or X, y; it holds {sorted(names)}"
            )
        arrays = {}
        for name in wanted:
            try:
                arrays[name] = npz[name]
            except (ValueError, OSError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
                # an object array (it would need pickle), a truncated or corrupt member
                raise ValueError(f"load_npz: cannot read {name!r} from {where}: {exc}") from exc

    def images(name):
        return _images(arrays[name], f"load_npz: {where} [{name}]")

    def labels(name):
        return _labels(arrays[name], f"load_npz: {where} [{name}]", num_classes)

    if "X" in arrays:
        X, y = images("X"), labels("y")
        _same_count(X, y, f"load_npz: {where} [X, y]")
        from sklearn.model_selection import train_test_split

        try:
            X_train, X_test, y_train, y_test = train_test_split(
                X, y, test_size=test_size, random_state=random_state, stratify=y
            )
        except ValueError as exc:
            raise ValueError(f"load_npz: cannot split {where} stratified: {exc}") from exc
        return X_train, y_train, X_test, y_test

    X_train, y_train = images("X_train"), labels("y_train")
    X_test, y_test = images("X_test"), labels("y_test")
    _same_count(X_train, y_train, f"load_npz: {where} [X_train, y_train]")
    _same_count(X_test, y_test, f"load_npz: {where} [X_test, y_test]")
    if X_train.shape[1:] != X_test.shape[1:]:
        raise ValueError(
            f"load_npz: {where}: X_train images are {X_train.shape[1:]} but X_test images "
            f"are {X_test.shape[1:]}"
        )
    return X_train, y_train, X_test, y_test


# ---- IDX (MNIST, Fashion-MNIST) -----------------------------------------------------
def _read_maybe_gzipped(path: str, what: str) -> bytes:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load_idx: no such file: {path}")
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"load_idx: {what} file {path} is a broken gzip file: {exc}") from exc


def _read_idx(path: str, magic: int, ndim: int, what: str) -> np.ndarray:
    raw = _read_maybe_gzipped(path, what)
    header = 4 + 4 * ndim
    if len(raw) < 4:
        raise ValueError(f"load_idx: {what} file {path} is truncated ({len(raw)} bytes)")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise ValueError(
            f"load_idx: {what} file {path} has magic number 0x{found:08X}, expected "
            f"0x{magic:08X} (IDX {what}: unsigned bytes, {ndim} dimension"
            f"{'s' if ndim > 1 else ''})"
        )
    if len(raw) < header:
        raise ValueError(
            f"load_idx: {what} file {path} is truncated: {len(raw)} bytes, its header "
            f"alone needs {header}"
        )
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(raw) != expected:
        state = "truncated" if len(raw) < expected else "longer than its header says"
        raise ValueError(
            f"load_idx: {what} file {path} is {state}: {len(raw)} bytes, its header "
            f"(shape {shape}) says {expected}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def load_idx(
    images_path: PathLike, labels_path: PathLike, *, num_classes: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels from a pair of IDX files (MNIST, Fashion-MNIST), gzipped or not.

    ``images_path`` holds (N, H, W) unsigned bytes (magic number 0x00000803),
    ``labels_path`` (N,) unsigned bytes (0x00000801); a gzipped file is recognised by its
    content, not its name. Returns ``(X, y)``: float32 (N, 1, H, W) images in [0, 1] and
    int64 (N,) labels (below ``num_classes`` when it is given).
    """
    _check_num_classes(num_classes)
    images_path, labels_path = os.fspath(images_path), os.fspath(labels_path)
    pixels = _read_idx(images_path, _IDX_IMAGES_MAGIC, 3, "images")
    raw_labels = _read_idx(labels_path, _IDX_LABELS_MAGIC, 1, "labels")
    X = _images(pixels, f"load_idx: {images_path}")
    y = _labels(raw_labels, f"load_idx: {labels_path}", num_classes)
    _same_count(X, y, f"load_idx: {images_path} and {labels_path}")
    return X, y


# ---- a folder of images -------------------------------------------------------------
def _image_size(size) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (size, size)
    if (
        not isinstance(size, (tuple, list))
        or len(size) != 2
        or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) for s in size)
    ):
        raise TypeError(f"load_image_folder: size must be (H, W) ints or None, got {size!r}")
    if min(size) < 1:
        raise ValueError(f"load_image_folder: size must be positive, got {tuple(size)}")
    return int(size[0]), int(size[1])


def load_image_folder(
    root: PathLike, size: tuple[int, int] | None = None, grayscale: bool = True
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images from ``root/<class>/<file>.png|.jpg|.jpeg``, one sub-folder per class.

    Classes are the sub-folders in sorted order (label 0 is the first, as torchvision's
    ``ImageFolder``); files in a class are read in sorted order, other files and hidden
    entries are skipped. Each image is converted to grayscale (C = 1) or RGB (C = 3) and
    resized to ``size = (H, W)`` (bilinear); with ``size=None`` every image must already
    have the same size. Needs Pillow (``pip install "minidl[images]"``).

    Returns ``(X, y, classes)``: float32 (N, C, H, W) images in [0, 1], int64 (N,) labels
    and the class names (``classes[y[i]]`` is the folder of image ``i``).
    """
    size = _image_size(size)
    where = os.fspath(root)
    if not os.path.isdir(where):
        raise FileNotFoundError(f"load_image_folder: no such folder: {where}")
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError as exc:
        raise ImportError(
            'load_image_folder needs Pillow: pip install "minidl[images]" (or pillow)'
        ) from exc

    base = Path(where)
    classes = sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ValueError(f"load_image_folder: {where} has no class sub-folders")
    mode = "L" if grayscale else "RGB"
    images, labels = [], []
    for label, name in enumerate(classes):
        files = sorted(
            p
            for p in (base / name).iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
        )
        if not files:
            raise ValueError(
                f"load_image_folder: class folder {base / name} has no "
                f"{'/'.join(IMAGE_EXTENSIONS)} files"
            )
        for file in files:
            try:
                with Image.open(file) as img:
                    img = img.convert(mode)
                    if size is not None and img.size != (size[1], size[0]):
                        img = img.resize((size[1], size[0]), Image.BILINEAR)
                    pixels = np.asarray(img, dtype=np.uint8)
            except (UnidentifiedImageError, OSError, ValueError) as exc:
                raise ValueError(f"load_image_folder: cannot read image {file}: {exc}") from exc
            if images and pixels.shape != images[0].shape:
                raise ValueError(
                    f"load_image_folder: {file} is {pixels.shape[1]}x{pixels.shape[0]} but "
                    f"the first image is {images[0].shape[1]}x{images[0].shape[0]}; pass "
                    f"size=(H, W) to resize them all"
                )
            images.append(pixels)
            labels.append(label)
    stacked = np.stack(images)
    if grayscale:
        stacked = stacked[:, None, :, :]
    else:
        stacked = stacked.transpose(0, 3, 1, 2)  # (N, H, W, 3) -> (N, 3, H, W)
    X = (stacked / np.float32(255)).astype(np.float32)
    return np.ascontiguousarray(X), np.asarray(labels, dtype=np.int64), classes
