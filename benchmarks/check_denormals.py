"""Do denormal floats appear while LeNet trains? (Pitfall: they can slow small networks by
several times near convergence.) Counts denormal float32 values in the parameters, their
gradients and the conv features over 30 epochs of SGD on the digits.
Run by hand:  python benchmarks/check_denormals.py
"""

import numpy as np

import minidl
import minidl.nn.functional as F
from minidl import data, optim
from minidl.models import LeNet

SMALLEST_NORMAL = np.finfo(np.float32).tiny


def denormal_fraction(a):
    """Share of the finite, non-zero values of ``a`` that are denormal."""
    a = np.abs(a[np.isfinite(a)])
    return np.count_nonzero((a > 0) & (a < SMALLEST_NORMAL)) / max(a.size, 1)


def main(epochs=30, report_every=5):
    X, y, _, _ = data.load_digits()
    minidl.manual_seed(0)
    minidl.set_num_threads(1)
    model = LeNet()
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    loader = data.DataLoader(X, y, batch_size=32, shuffle=True, seed=0)
    for epoch in range(1, epochs + 1):
        worst = 0.0
        for images, labels in loader:
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            for p in model.parameters():
                worst = max(worst, denormal_fraction(p.data), denormal_fraction(p.grad))
        if epoch % report_every == 0:
            with minidl.no_grad():
                features = model.features(minidl.tensor(X[:256])).data
            print(
                f"epoch {epoch}: loss {loss.item():.4f}, worst denormal fraction in "
                f"params/grads {worst:.2e}, in conv features {denormal_fraction(features):.2e}"
            )


if __name__ == "__main__":
    main()
