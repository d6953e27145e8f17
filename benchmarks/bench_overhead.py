"""Python overhead per op on one-element tensors: the floor of a tiny network's run time.

    python benchmarks/bench_overhead.py [--quick] [--threads N]

Prints the median time per call (microseconds) over several repeats, for minidl and, when
installed, PyTorch side by side, then one LeNet() training step (batch 32 on the digits).
Targets: a recorded elementwise op <= 5 us; conv2d on a 1x1x1x1 input <= 10 us forward and
<= 30 us forward+backward. ``overhead_rows(quick=True)`` returns the same rows for use from
tests (no timing is asserted there).
"""

import argparse
import statistics
import time

import numpy as np


def _time_per_call(fn, number, repeats):
    """Median over ``repeats`` of the mean time per call (microseconds) of ``number`` calls."""
    fn()  # warm up (imports, caches)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - start) / number * 1e6)
    return statistics.median(samples)


def _minidl_cases():
    import minidl
    import minidl.nn.functional as F

    a = minidl.tensor([1.5], requires_grad=True)
    b = minidl.tensor([2.5], requires_grad=True)
    x = minidl.tensor(np.ones((1, 1, 1, 1), np.float32), requires_grad=True)
    w = minidl.tensor(np.ones((1, 1, 1, 1), np.float32), requires_grad=True)
    bias = minidl.tensor(np.zeros(1, np.float32), requires_grad=True)

    def conv_fwd_bwd():
        F.conv2d(x, w, bias).backward()

    def mul_fwd_bwd():
        (a * b).backward()

    return {
        "add (recorded, 1 element)": lambda: a + b,
        "mul (recorded, 1 element)": lambda: a * b,
        "exp (recorded, 1 element)": a.exp,
        "mul forward+backward (1 element)": mul_fwd_bwd,
        "conv2d forward (1x1x1x1)": lambda: F.conv2d(x, w, bias),
        "conv2d forward+backward (1x1x1x1)": conv_fwd_bwd,
    }


def _torch_cases():
    try:
        import torch
        import torch.nn.functional as TF
    except ImportError:
        return {}
    a = torch.tensor([1.5], requires_grad=True)
    b = torch.tensor([2.5], requires_grad=True)
    x = torch.ones((1, 1, 1, 1), requires_grad=True)
    w = torch.ones((1, 1, 1, 1), requires_grad=True)
    bias = torch.zeros(1, requires_grad=True)

    def conv_fwd_bwd():
        TF.conv2d(x, w, bias).backward()

    def mul_fwd_bwd():
        (a * b).backward()

    return {
        "add (recorded, 1 element)": lambda: a + b,
        "mul (recorded, 1 element)": lambda: a * b,
        "exp (recorded, 1 element)": a.exp,
        "mul forward+backward (1 element)": mul_fwd_bwd,
        "conv2d forward (1x1x1x1)": lambda: TF.conv2d(x, w, bias),
        "conv2d forward+backward (1x1x1x1)": conv_fwd_bwd,
    }


TARGETS_US = {
    "add (recorded, 1 element)": 5.0,
    "mul (recorded, 1 element)": 5.0,
    "exp (recorded, 1 element)": 5.0,
    "conv2d forward (1x1x1x1)": 10.0,
    "conv2d forward+backward (1x1x1x1)": 30.0,
}


def overhead_rows(quick=False, threads=None):
    """[{'op', 'minidl_us', 'torch_us' (None without torch), 'target_us' (or None)}]."""
    import minidl

    if threads is not None:
        minidl.set_num_threads(threads)
    number, repeats = (200, 3) if quick else (20000, 7)
    ours = _minidl_cases()
    theirs = _torch_cases()
    if theirs and threads is not None:
        import torch

        torch.set_num_threads(threads)
    rows = []
    for name, fn in ours.items():
        torch_fn = theirs.get(name)
        rows.append(
            {
                "op": name,
                "minidl_us": _time_per_call(fn, number, repeats),
                "torch_us": _time_per_call(torch_fn, number, repeats) if torch_fn else None,
                "target_us": TARGETS_US.get(name),
            }
        )
    return rows


def lenet_step(batch_size=32, threads=None):
    """One training step of LeNet() on the digits (forward, cross-entropy, backward, SGD
    with momentum, as ``minidl train``), cycling over a few fixed batches; the model is
    ``step.model``."""
    import minidl
    import minidl.nn.functional as F
    from minidl import data, optim
    from minidl.models import LeNet

    if threads is not None:
        minidl.set_num_threads(threads)
    minidl.manual_seed(0)
    X, y, _, _ = data.load_digits()
    batches = [
        (minidl.tensor(X[i : i + batch_size]), y[i : i + batch_size])
        for i in range(0, 8 * batch_size, batch_size)
    ]
    model = LeNet()
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    state = {"i": 0}

    def step():
        xb, yb = batches[state["i"] % len(batches)]
        state["i"] += 1
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step.model = model
    return step


def format_rows(rows):
    lines = [f"{'op':<36} {'minidl us':>10} {'torch us':>10} {'target us':>10}"]
    for r in rows:
        torch_us = f"{r['torch_us']:.2f}" if r["torch_us"] is not None else "-"
        target = f"{r['target_us']:.0f}" if r["target_us"] is not None else "-"
        lines.append(f"{r['op']:<36} {r['minidl_us']:>10.2f} {torch_us:>10} {target:>10}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few calls (a smoke run)")
    parser.add_argument("--threads", type=int, default=1, help="kernel threads (default 1)")
    args = parser.parse_args(argv)
    rows = overhead_rows(quick=args.quick, threads=args.threads)
    print(f"per-call time, median of repeats, {args.threads} thread(s)")
    print(format_rows(rows))
    step = lenet_step(threads=args.threads)
    number, repeats = (2, 3) if args.quick else (20, 15)
    print(f"LeNet() training step, batch 32: {_time_per_call(step, number, repeats):.1f} us")


if __name__ == "__main__":
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main()
