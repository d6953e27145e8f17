"""scikit-learn's 8x8 digits as minidl images: (N, 1, 8, 8) float32 and int64 labels."""

import numpy as np


def load_digits(test_size=0.2, random_state=0):
    """scikit-learn's bundled 8x8 digits, split stratified by label.

    Returns ``(X_train, y_train, X_test, y_test)``: images float32 (N, 1, 8, 8) with
    pixels scaled from 0..16 into [0, 1], labels int64 (N,).
    """
    from sklearn.datasets import load_digits as _sk_load_digits
    from sklearn.model_selection import train_test_split

    digits = _sk_load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    labels = digits.target.astype(np.int64)
    X_train, X_test, y_train, y_test = train_test_split(
        images, labels, test_size=test_size, random_state=random_state, stratify=labels
    )
    return X_train, y_train, X_test, y_test
