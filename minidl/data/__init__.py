"""Data sets and mini-batching: the digits (and digits to localise), ``Dataset`` /
``DataLoader`` and augmentation.

Images are (N, C, H, W) float32 arrays; labels are int64 arrays of shape (N,).
"""

from minidl.data.dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split
from minidl.data.digits import load_digits
from minidl.data.files import load_idx, load_image_folder, load_npz
from minidl.data.loader import DataLoader, default_collate, random_shift
from minidl.data.localization import make_localization_digits

__all__ = [
    "ConcatDataset",
    "DataLoader",
    "Dataset",
    "Subset",
    "TensorDataset",
    "default_collate",
    "load_digits",
    "load_idx",
    "load_image_folder",
    "load_npz",
    "make_localization_digits",
    "random_shift",
    "random_split",
]
