"""Try LeNet widths / optimisers / schedules on the digits (results: EXPERIMENTS.md).

Usage: python examples/experiments_digits.py "dict(widths=(32, 64, 128), epochs=30)" ...
Each argument is the keyword arguments of minidl.cli.train; every config runs for
seeds 0, 1, 2 on THREADS threads (default 1) and prints test accuracy, wall and CPU seconds.
"""

import os
import sys
import time

import minidl
from minidl.cli import train

minidl.set_num_threads(int(os.environ.get("THREADS", "1")))
for spec in sys.argv[1:]:
    kwargs = eval(spec)
    accs, walls, cpus = [], [], []
    for seed in (0, 1, 2):
        cpu = time.process_time()
        _, metrics = train(seed=seed, log=lambda *a: None, **kwargs)
        cpus.append(time.process_time() - cpu)
        accs.append(metrics["test_accuracy"])
        walls.append(metrics["train_seconds"])
    print(
        f"{spec} | "
        + " / ".join(f"{a:.4f}" for a in accs)
        + f" | wall {max(walls):.1f} s | cpu {max(cpus):.1f} s",
        flush=True,
    )
