"""Memory stays flat over a long training run (issue 22).

    python benchmarks/memory_soak.py [--steps 10000] [--every 500]

Trains ``LeNet()`` on the digits (batch 32, SGD) for ``--steps`` steps and prints the
process's resident set size every ``--every`` steps, then the last sample against the one
at step 1,000 (the target: within 5 %).
"""

import argparse
import os
import resource
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def rss_mib():
    """Current resident set size (MiB), from /proc where there is one."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * resource.getpagesize() / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--every", type=int, default=500)
    args = parser.parse_args(argv)

    import minidl
    import minidl.nn.functional as F
    from minidl.data import DataLoader, load_digits
    from minidl.models import LeNet

    minidl.manual_seed(0)
    minidl.set_num_threads(1)
    X, y, _, _ = load_digits()
    model = LeNet()
    opt = minidl.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loader = DataLoader(X, y, batch_size=32, shuffle=True, seed=0)
    samples = {}
    step = 0
    while step < args.steps:
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step == 1 or step % args.every == 0:
                samples[step] = rss_mib()
                print(f"step {step:6d}  rss {samples[step]:8.1f} MiB", flush=True)
            if step == args.steps:
                break
    ref = samples.get(1000, samples[min(samples)])
    last = samples[max(samples)]
    print(f"last / step-1000 sample: {last / ref:.4f} ({last - ref:+.1f} MiB)")
    return 0 if last <= 1.05 * ref else 1


if __name__ == "__main__":
    sys.exit(main())
