"""Rotation invariance by construction (seed 004): LeNet against InvariantLeNet.

Both models train on the upright 8x8 digits only, then classify the test digits rotated
by 0, 90, 180 and 270 degrees. LeNet has only ever seen upright digits; InvariantLeNet's
logits do not change under quarter turns (TransformConv2d layers, global average
pooling, a max over the rotations at the end), so its accuracy is the same on every
rotation. The price: it cannot tell a 6 from a rotated 9, nor tell which way is up.

Run: python examples/rotated_digits.py [--epochs N] [--seed S]
"""

import argparse
import time

import numpy as np

import minidl
import minidl.nn.functional as F
from minidl import data, optim
from minidl.models import InvariantLeNet, LeNet

ANGLES = (0, 90, 180, 270)


def train(model, X, y, epochs, seed, lr=0.01, batch_size=32):
    """A short explicit loop: Adam on a cosine schedule."""
    loader = data.DataLoader(X, y, batch_size=batch_size, shuffle=True, seed=seed)
    optimizer = optim.Adam(model.parameters(), lr=lr)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * len(loader))
    model.train()
    for _ in range(epochs):
        for images, labels in loader:
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
    return model


def rotated_accuracies(model, X, y):
    """Test accuracy on X rotated counter-clockwise by each angle in ANGLES."""
    model.eval()
    accuracies = []
    with minidl.no_grad():
        for angle in ANGLES:
            rotated = np.ascontiguousarray(np.rot90(X, angle // 90, axes=(2, 3)))
            predictions = model(minidl.tensor(rotated)).data.argmax(axis=1)
            accuracies.append(float(np.mean(predictions == y)))
    return accuracies


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20, help="training epochs per model")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    minidl.set_num_threads(1)  # these models are too small to gain from more threads
    X_train, y_train, X_test, y_test = data.load_digits()
    rows = []
    for make in (LeNet, InvariantLeNet):
        minidl.manual_seed(args.seed)
        start = time.perf_counter()
        model = train(make(), X_train, y_train, args.epochs, args.seed)
        seconds = time.perf_counter() - start
        rows.append((make.__name__, rotated_accuracies(model, X_test, y_test), seconds))

    print(f"test accuracy on the {len(y_test)} test digits rotated counter-clockwise")
    print(f"(both trained {args.epochs} epochs on upright digits only)\n")
    header = f"{'model':<16}" + "".join(f"{f'{a} deg':>9}" for a in ANGLES) + f"{'train s':>9}"
    print(header)
    print("-" * len(header))
    for name, accuracies, seconds in rows:
        cells = "".join(f"{a:>9.3f}" for a in accuracies)
        print(f"{name:<16}{cells}{seconds:>9.1f}")
    return rows


if __name__ == "__main__":
    main()
