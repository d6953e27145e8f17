"""Load a checkpoint written by ``minidl train`` and classify test digits.

Run: python examples/predict_digits.py [lenet_digits.npz]
"""

import sys

import numpy as np

import minidl
from minidl import data
from minidl.models import LeNet
from minidl.nn.functional import softmax

path = sys.argv[1] if len(sys.argv) > 1 else "lenet_digits.npz"
model = LeNet()
model.load_state_dict(minidl.load(path))  # npz without pickle: safe on untrusted files
model.eval()

_, _, X_test, y_test = data.load_digits()
with minidl.no_grad():
    probabilities = softmax(model(minidl.tensor(X_test)), dim=1).data
predicted = probabilities.argmax(axis=1)

for image, label, guess, p in zip(X_test[:5], y_test[:5], predicted[:5], probabilities[:5]):
    rows = ["".join(" .:-=+*#%@"[int(v * 9)] for v in row) for row in image[0]]
    print("\n".join(rows))
    print(f"true {label}  predicted {guess}  (p = {p[guess]:.3f})\n")
print(f"test accuracy {np.mean(predicted == y_test):.4f} on {len(y_test)} images")
