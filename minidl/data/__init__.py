"""Data sets and mini-batching: the digits, ``DataLoader`` and augmentation.

Images are (N, C, H, W) float32 arrays; labels are int64 arrays of shape (N,).
"""

from minidl.data.digits import load_digits
from minidl.data.files import load_idx, load_image_folder, load_npz
from minidl.data.loader import DataLoader, random_shift

__all__ = [
    "DataLoader",
    "load_digits",
    "load_idx",
    "load_image_folder",
    "load_npz",
    "random_shift",
]
