"""The one random generator every part of minidl draws from.

``minidl.manual_seed(seed)`` reseeds it, so weight initialisation, dropout masks and
anything else that draws without an explicit seed repeat bit for bit.
"""

from __future__ import annotations

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed minidl's global generator (like ``torch.manual_seed``); returns it."""
    global _generator
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"manual_seed expects an int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"manual_seed expects a non-negative seed, got {seed}")
    _generator = np.random.default_rng(int(seed))
    return _generator


def get_generator() -> np.random.Generator:
    """The global ``np.random.Generator`` (replaced by each ``manual_seed``)."""
    return _generator
