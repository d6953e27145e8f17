"""The full benchmark suite of issue 5: minidl against the naive loops, pure Python,
numpy's matmul on the same GEMM and PyTorch, per op and end to end, at 1 and 2 threads.

    python benchmarks/bench_suite.py                       # full run (several minutes)
    python benchmarks/bench_suite.py --quick               # what `python -m minidl bench` runs
    python benchmarks/bench_suite.py --threads 1 --ops conv2d,max_pool2d --json out.json
    python benchmarks/bench_suite.py --end-to-end          # only LeNet / CIFAR-size net steps
    python benchmarks/bench_suite.py --quick --threads 1,2 --plot speedups.png

Run it on a quiet machine: every row interleaves minidl's repeats with the comparator's,
which cancels slow drift but not another process competing for the cores.
"""

import argparse
import sys
from pathlib import Path

try:
    import minidl  # noqa: F401
except ImportError:  # run from a source checkout without installing: use the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from minidl.bench import report, suite


def _csv(text):
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _names(text, allowed, what):
    """The comma-separated names of ``text``; exits naming those not in ``allowed``."""
    names = _csv(text)
    unknown = set(names) - set(allowed)
    if unknown:
        raise SystemExit(f"unknown {what} {sorted(unknown)}; choose from {allowed}")
    return names


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--quick",
        action="store_true",
        help="quick mode (LeNet-digits and CIFAR-like shapes, few repeats)",
    )
    mode.add_argument(
        "--tiny", action="store_true", help="one repeat at the smallest shapes (what the tests run)"
    )
    parser.add_argument("--repeats", type=int, help="interleaved samples per side and row")
    parser.add_argument("--naive-repeats", type=int, help="samples of the slow naive loops")
    parser.add_argument(
        "--naive-budget",
        type=float,
        help="seconds one naive call may take; the batch is cut to fit and "
        "the time scaled by N (default: 1.0)",
    )
    parser.add_argument("--min-time", type=float, help="seconds per sample (default 0.02)")
    parser.add_argument("--threads", type=str, help='thread counts, e.g. "1,2" (default)')
    parser.add_argument(
        "--families",
        type=str,
        help="shape families, comma-separated: " + ", ".join(suite.shapes.FAMILIES),
    )
    parser.add_argument(
        "--compare", type=str, help="comparators, comma-separated: " + ", ".join(suite.COMPARATORS)
    )
    selection = parser.add_mutually_exclusive_group()
    selection.add_argument(
        "--ops", type=str, help="only these ops (no end-to-end): " + ", ".join(suite.OPS)
    )
    selection.add_argument(
        "--end-to-end",
        action="store_true",
        help="only the LeNet epoch and inference and the CIFAR-size network step",
    )
    parser.add_argument("--no-end-to-end", action="store_true", help="skip LeNet end to end")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    parser.add_argument(
        "--plot",
        metavar="PATH",
        help="PNG bar chart of minidl's speed-up over PyTorch and the naive loops per op, "
        "shape and thread count, log axis (matplotlib)",
    )
    parser.add_argument("--markdown", metavar="PATH", help="write the table as markdown")
    return parser.parse_args(argv)


def config_from_args(args):
    config = suite.preset("quick" if args.quick else "tiny" if args.tiny else "full")
    changes = {}
    for name in ("repeats", "naive_repeats", "naive_budget", "min_time"):
        value = getattr(args, name)
        if value is not None:
            changes[name] = value
    if args.threads:
        changes["threads"] = tuple(int(t) for t in _csv(args.threads))
    if args.families:
        changes["families"] = _names(args.families, suite.shapes.FAMILIES, "families")
    if args.compare:
        changes["comparators"] = _names(args.compare, suite.COMPARATORS, "comparators")
    if args.ops:
        changes["ops"] = _names(args.ops, suite.OPS, "ops")
        changes["end_to_end"] = False
    if args.end_to_end:
        changes["ops"] = ()
        changes["end_to_end"] = True
    if args.no_end_to_end:
        changes["end_to_end"] = False
    if args.no_torch:
        changes["use_torch"] = False
    return config.replace(**changes)


def main(argv=None):
    args = parse_args(argv)
    config = config_from_args(args)
    if args.plot:  # fail before a long run, not after it
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise SystemExit("--plot needs matplotlib: pip install matplotlib") from None
    results = suite.run_suite(config, log=lambda line: print(line, flush=True))
    print()
    print(report.format_table(results))
    if args.json:
        report.write_json(results, args.json)
        print(f"results written to {args.json}")
    if args.markdown:
        report.write_markdown(results, args.markdown)
        print(f"markdown table written to {args.markdown}")
    if args.plot:
        report.write_plot(results, args.plot)
        print(f"plot written to {args.plot}")
    return 1 if any(r.get("error") for r in results["rows"]) else 0


if __name__ == "__main__":
    sys.exit(main())
