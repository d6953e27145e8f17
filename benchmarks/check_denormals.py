"""Do denormal floats appear while LeNet trains? (Pitfall: they can slow small networks by
several times near convergence.) Counts denormal float32 values in the parameters, their
gradients, the optimiser's momentum buffers (minidl.optim flushes those: Optimizer.step)
and the conv features over 30 epochs of SGD on the digits.
With ``--flush``, trains with minidl.set_flush_denormal(True) too and compares the two
runs: the late epochs' losses and whether the final weights differ.
Run by hand:  python benchmarks/check_denormals.py [--flush] [--epochs N]
"""

import argparse
import sys
from pathlib import Path

import numpy as np

try:
    import minidl  # noqa: F401
except ImportError:  # run from a source checkout without installing: use the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import minidl
import minidl.nn.functional as F
from minidl import data, optim
from minidl.models import LeNet

SMALLEST_NORMAL = np.finfo(np.float32).tiny


def denormal_fraction(a):
    """Share of the finite, non-zero values of ``a`` that are denormal."""
    a = np.abs(a[np.isfinite(a)])
    return np.count_nonzero((a > 0) & (a < SMALLEST_NORMAL)) / max(a.size, 1)


def train(epochs=30, report_every=5, flush=False):
    """Train LeNet for ``epochs`` (FTZ/DAZ on if ``flush``); returns (losses per epoch,
    final state_dict)."""
    minidl.set_flush_denormal(flush)
    X, y, _, _ = data.load_digits()
    minidl.manual_seed(0)
    minidl.set_num_threads(1)
    model = LeNet()
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    loader = data.DataLoader(X, y, batch_size=32, shuffle=True, seed=0)
    losses = []
    for epoch in range(1, epochs + 1):
        worst = 0.0
        for images, labels in loader:
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            for p in model.parameters():
                state = [v for v in optimizer.state[p].values() if isinstance(v, np.ndarray)]
                worst = max(
                    worst,
                    denormal_fraction(p.data),
                    denormal_fraction(p.grad),
                    *(denormal_fraction(v) for v in state),
                )
        losses.append(loss.item())
        if epoch % report_every == 0:
            with minidl.no_grad():
                features = model.features(minidl.tensor(X[:256])).data
            print(
                f"epoch {epoch}: loss {loss.item():.4f}, worst denormal fraction in "
                f"params/grads/momenta {worst:.2e}, in conv features "
                f"{denormal_fraction(features):.2e}"
            )

    minidl.set_flush_denormal(False)
    return losses, {k: np.array(v) for k, v in model.state_dict().items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--flush", action="store_true", help="compare with FTZ/DAZ on")
    args = parser.parse_args()
    print("FTZ/DAZ off:")
    losses, state = train(args.epochs)
    if not args.flush:
        return
    print("FTZ/DAZ on:")
    flushed_losses, flushed_state = train(args.epochs, flush=True)
    late = slice(-5, None)
    print(f"last 5 epochs' final-batch losses, off: {np.round(losses[late], 6).tolist()}")
    print(f"                                    on:  {np.round(flushed_losses[late], 6).tolist()}")
    same = all(np.array_equal(state[k], flushed_state[k]) for k in state)
    worst = max(np.max(np.abs(state[k] - flushed_state[k])) for k in state)
    print(f"final weights identical: {same} (largest difference {worst:.3g})")


if __name__ == "__main__":
    main()
