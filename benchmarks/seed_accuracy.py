"""Test accuracy of ``minidl train``'s defaults over several seeds, with the convolution
kernels as shipped (Winograd and direct where F.conv2d picks them) and with both switched
off (every conv pass on im2col + GEMM).

Winograd and the direct kernels round differently from im2col (float32), so single runs
differ; this shows whether the distribution of the final accuracy moved.  Each run is a
fresh process.

    python benchmarks/seed_accuracy.py [--seeds 10]        # ~1 minute per 10 runs
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

RUN = r"""
import sys
import minidl.ops.conv_plan as plan
if sys.argv[2] == "im2col":  # no layer is big enough for Winograd or the direct kernels
    plan.WINOGRAD_MIN_WORK = {k: float("inf") for k in plan.WINOGRAD_MIN_WORK}
    plan.DIRECT_MIN_WORK = {k: float("inf") for k in plan.DIRECT_MIN_WORK}
from minidl.cli import main
sys.exit(main(["train", "--seed", sys.argv[1], "--metrics-json", sys.argv[3],
               "--save", sys.argv[4]]))
"""


def accuracies(mode, seeds, folder):
    out = []
    metrics, weights = os.path.join(folder, "m.json"), os.path.join(folder, "w.npz")
    for seed in range(seeds):
        subprocess.run(
            [sys.executable, "-c", RUN, str(seed), mode, metrics, weights],
            check=True,
            capture_output=True,
        )
        with open(metrics) as f:
            out.append(json.load(f)["test_accuracy"])
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for mode in ("shipped", "im2col"):
            accs = accuracies(mode, args.seeds, folder)
            print(
                f"{mode:9s}",
                " ".join(f"{a:.4f}" for a in accs),
                f"mean {np.mean(accs):.4f} min {np.min(accs):.4f}",
            )


if __name__ == "__main__":
    main()
