"""Test accuracy of ``minidl train``'s defaults over several seeds, with the convolution
kernels as shipped (Winograd and direct where F.conv2d picks them) and with both switched
off (every conv pass on im2col + GEMM).

Winograd and the direct kernels round differently from im2col (float32), so single runs
differ; this shows whether the distribution of the final accuracy moved.  Each run is a
fresh process (the switch patches module constants) calling
``minidl.training.train_digits``.

    python benchmarks/seed_accuracy.py [--seeds 10]        # ~1 minute per 10 runs
"""

import argparse
import subprocess
import sys

import numpy as np

RUN = r"""
import sys
try:
    import minidl  # noqa: F401
except ImportError:  # run from a source checkout without installing: use the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import minidl
import minidl.ops.conv_plan as plan
if sys.argv[2] == "im2col":  # no layer is big enough for Winograd or the direct kernels
    plan.WINOGRAD_MIN_WORK = {k: float("inf") for k in plan.WINOGRAD_MIN_WORK}
    plan.WINOGRAD_ONE_TILE_MIN_BATCH = float("inf")
    plan.DIRECT_MIN_WORK = {k: float("inf") for k in plan.DIRECT_MIN_WORK}
from minidl.training import train_digits
minidl.set_num_threads(1)
_, history = train_digits(seed=int(sys.argv[1]))
print(repr(history[-1]["test_accuracy"]))
"""


def accuracies(mode: str, seeds: int) -> list[float]:
    out = []
    for seed in range(seeds):
        run = subprocess.run(
            [sys.executable, "-c", RUN, str(seed), mode],
            check=True,
            capture_output=True,
            text=True,
        )
        out.append(float(run.stdout.split()[-1]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    for mode in ("shipped", "im2col"):
        accs = accuracies(mode, args.seeds)
        print(
            f"{mode:9s}",
            " ".join(f"{a:.4f}" for a in accs),
            f"mean {np.mean(accs):.4f} min {np.min(accs):.4f}",
        )


if __name__ == "__main__":
    main()
