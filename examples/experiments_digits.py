"""Try LeNet widths / optimisers / schedules on the digits (results: EXPERIMENTS.md).

Usage: python examples/experiments_digits.py "dict(widths=(32, 64, 128), epochs=30)" ...
Each argument is the keyword arguments of minidl.training.train_digits; every config runs for
seeds 0, 1, 2 on THREADS threads (default 1) and prints test accuracy, wall and CPU seconds.
"""

import os
import sys
import time

import minidl
from minidl.training import train_digits

minidl.set_num_threads(int(os.environ.get("THREADS", "1")))
for spec in sys.argv[1:]:
    kwargs = eval(spec)
    accs, walls, cpus = [], [], []
    for seed in (0, 1, 2):
        cpu = time.process_time()
        _, history = train_digits(seed=seed, **kwargs)
        cpus.append(time.process_time() - cpu)
        accs.append(history[-1]["test_accuracy"])
        walls.append(sum(history.seconds))
    print(
        f"{spec} | "
        + " / ".join(f"{a:.4f}" for a in accs)
        + f" | wall {max(walls):.1f} s | cpu {max(cpus):.1f} s",
        flush=True,
    )
