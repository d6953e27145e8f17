"""How minidl and PyTorch slow down when another process holds a core (issue 22).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/contention.py [--epochs 3]

Times ``minidl train`` (LeNet on the digits, ``--epochs`` epochs, in a child process) at
1 and 2 threads on the idle machine and again while a busy-loop process (started and
ended here) spins on one core, and a 2-thread PyTorch conv2d backward the same way.
Prints each time and the factors the issue sets targets for: busy 2 threads / busy 1
thread (<= 1.5) and busy 1 thread / idle 1 thread (<= 2.2). Run it on a quiet machine.
"""

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _spin(stop):
    x = 0
    while not stop.is_set():
        x += 1


def _train_seconds(threads, epochs):
    with tempfile.TemporaryDirectory() as tmp:
        metrics = os.path.join(tmp, "m.json")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "minidl",
                "train",
                "--epochs",
                str(epochs),
                "--threads",
                str(threads),
                "--save",
                os.path.join(tmp, "w.npz"),
                "--metrics-json",
                metrics,
            ],
            check=True,
            capture_output=True,
        )
        with open(metrics) as f:
            return json.load(f)["train_seconds"]


def _torch_conv_backward_ms(threads, repeats=20):
    code = f"""
import time, statistics, torch
torch.set_num_threads({threads})
x = torch.randn(64, 32, 16, 16, requires_grad=True)
w = torch.randn(64, 32, 3, 3, requires_grad=True)
times = []
for _ in range({repeats}):
    y = torch.nn.functional.conv2d(x, w, padding=1)
    t = time.perf_counter(); y.sum().backward(); times.append(time.perf_counter() - t)
print(statistics.median(times) * 1e3)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return float(out.stdout) if out.returncode == 0 else float("nan")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    rows = {}
    for busy in (False, True):
        stop = multiprocessing.Event()
        spinner = multiprocessing.Process(target=_spin, args=(stop,)) if busy else None
        if spinner:
            spinner.start()
            time.sleep(0.5)
        try:
            for threads in (1, 2):
                times = sorted(_train_seconds(threads, args.epochs) for _ in range(args.repeats))
                rows[("minidl", busy, threads)] = times[len(times) // 2]
                rows[("torch conv bwd ms", busy, threads)] = _torch_conv_backward_ms(threads)
        finally:
            if spinner:
                stop.set()
                spinner.join()
    for (what, busy, threads), value in rows.items():
        print(f"{what:18s} {'busy' if busy else 'idle'}  {threads} thread(s)  {value:8.3f}")
    m = {k[1:]: v for k, v in rows.items() if k[0] == "minidl"}
    print(f"minidl busy 2 threads / busy 1 thread: {m[(True, 2)] / m[(True, 1)]:.2f} (<= 1.5)")
    print(f"minidl busy 1 thread / idle 1 thread: {m[(True, 1)] / m[(False, 1)]:.2f} (<= 2.2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
