"""Classify and localise digits with two heads (seed 004: "predicts corners of bounding
box"; "final divergence is weighted sum of 2 divergences").

Each image is one 8x8 digit pasted at a random position on a 24x24 canvas
(``minidl.data.make_localization_digits``); training images use the digits of the
training split, test images those of the test split. A shared conv trunk feeds a class
head (cross-entropy) and a box head that predicts (x0, y0, x1, y1) in pixels (smooth L1);
the loss is ``ce + box_weight * box_loss``. Prints the test accuracy and the mean IoU of
the predicted boxes against the true ones (``minidl.metrics.box_iou``).

Run: python examples/localize_digits.py [--epochs N] [--seed S] [--scale]
"""

import argparse
import time

import numpy as np

import minidl
import minidl.nn.functional as F
from minidl import data, nn, optim
from minidl.metrics import box_iou

CANVAS = 24


class Localizer(nn.Module):
    """(N, 1, 24, 24) -> (logits (N, 10), boxes (N, 4) in pixels)."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.MaxPool2d(2),
            nn.ReLU(),  # 12x12
            nn.Conv2d(16, 32, 3, padding=1, bias=False),
            nn.BatchNorm2d(32),
            nn.MaxPool2d(2),
            nn.ReLU(),  # 6x6
            nn.Conv2d(32, 64, 3, padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.Flatten(),  # the position stays in the flattened layout
            nn.Linear(64 * 6 * 6, 128),
            nn.ReLU(),
        )
        self.classify = nn.Linear(128, num_classes)
        self.box = nn.Linear(128, 4)

    def forward(self, x):
        h = self.trunk(x)
        return self.classify(h), self.box(h)


def predict(model, images, batch_size=500):
    model.eval()
    logits, boxes = [], []
    with minidl.no_grad():
        for i in range(0, len(images), batch_size):
            out, box = model(minidl.tensor(images[i : i + batch_size]))
            logits.append(out.data)
            boxes.append(box.data)
    return np.concatenate(logits), np.concatenate(boxes)


def main(argv=None):
    """Train, print the test accuracy and mean IoU, return them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-size", type=int, default=8000)
    parser.add_argument("--box-weight", type=float, default=1.0)
    parser.add_argument("--scale", action="store_true", help="digits of random sizes 8..16")
    args = parser.parse_args(argv)

    minidl.manual_seed(args.seed)
    X_train, y_train, X_test, y_test = data.load_digits()
    train_images, train_labels, train_boxes = data.make_localization_digits(
        args.train_size, CANVAS, args.scale, args.seed, digits=(X_train, y_train)
    )
    test_images, test_labels, test_boxes = data.make_localization_digits(
        2000, CANVAS, args.scale, args.seed + 1, digits=(X_test, y_test)
    )
    model = Localizer()
    loader = data.DataLoader(
        train_images, np.arange(args.train_size), batch_size=64, shuffle=True, seed=args.seed
    )
    optimizer = optim.Adam(model.parameters(), lr=3e-3)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs * len(loader))
    start = time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        totals = np.zeros(2)
        for images, index in loader:
            logits, boxes = model(images)
            ce = F.cross_entropy(logits, train_labels[index])
            box_loss = F.smooth_l1_loss(boxes, minidl.tensor(train_boxes[index]))
            loss = ce + args.box_weight * box_loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            totals += (ce.item(), box_loss.item())
        ce_mean, box_mean = totals / len(loader)
        print(f"epoch {epoch + 1:2d}/{args.epochs}  ce {ce_mean:.4f}  box {box_mean:.4f}")
    seconds = time.perf_counter() - start
    logits, boxes = predict(model, test_images)
    accuracy = float((logits.argmax(1) == test_labels).mean())
    iou = box_iou(boxes, test_boxes).diagonal()
    print(f"test accuracy {accuracy:.4f}  mean IoU {iou.mean():.4f}  ", end="")
    print(f"(IoU >= 0.5: {(iou >= 0.5).mean():.3f}; {len(test_labels)} test images, ", end="")
    print(f"training {seconds:.1f} s)")
    return accuracy, float(iou.mean())


if __name__ == "__main__":
    main()
