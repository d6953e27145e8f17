"""Print, save and plot the suite's results; check them against the targets of issues 5
and 23 (ratios are the comparator's time / minidl's, so every goal is a lower bound)."""

import json

from minidl.bench.cifar import STEP as CIFAR_STEP
from minidl.bench.end_to_end import MODELS
from minidl.bench.ops import FWD_BWD, NAIVE, NUMPY_GEMM, ONE_THREAD, TORCH


def format_time(seconds):
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _stats_cell(stats):
    if not stats:
        return "-"
    return (
        f"{format_time(stats['median'])} [{format_time(stats['min'])}, {format_time(stats['max'])}]"
    )


def ratio_cell(row):
    """'x12.3' = the comparator takes 12.3 times minidl's time; GEMM rows: % of BLAS."""
    if row.get("error"):
        return "ERROR"
    ratio = row.get("ratio")
    if ratio is None:
        return "-"
    if row["comparator"] == NUMPY_GEMM:
        return f"{100 * ratio:.0f}% of BLAS"
    return f"x{ratio:.3g}" if ratio < 1000 else f"x{ratio:,.0f}"


def _gflops_cell(row):
    if "minidl_gflops" not in row:
        return ""
    text = f"{row['minidl_gflops']:.1f} GF/s"
    if "other_gflops" in row:
        text += f" vs {row['other_gflops']:.1f}"
    return text


COLUMNS = (
    "op",
    "shape",
    "pass",
    "thr",
    "vs",
    "minidl median [min, max]",
    "other median [min, max]",
    "ratio",
    "GFLOP/s",
    "note",
)


def _cells(row):
    return (
        row["op"],
        f"{row['shape']} ({row['label']})",
        row["pass"],
        str(row["threads"]),
        row["comparator"] or "-",
        _stats_cell(row["minidl"]),
        _stats_cell(row["other"]),
        ratio_cell(row),
        _gflops_cell(row),
        row.get("error") or row.get("note") or "",
    )


def format_row_line(row):
    return " | ".join(_cells(row))


def format_table(results):
    rows = [COLUMNS] + [_cells(r) for r in results["rows"]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS) - 1)]
    lines = []
    for index, cells in enumerate(rows):
        line = "  ".join(c.ljust(w) for c, w in zip(cells, widths)) + "  " + cells[-1]
        lines.append(line.rstrip())
        if index == 0:
            lines.append("-" * min(len(line), 200))
    lines.append("")
    lines.append(
        "ratio: the comparator's median time / minidl's (x3 = minidl 3 times faster);"
        " numpy-gemm rows: minidl's GFLOP/s as % of numpy's matmul on the same GEMM."
    )
    meta = results.get("meta", {})
    if meta:
        blas = ", ".join(
            f"{p.get('internal_api')} {p.get('version')} ({p.get('architecture')})"
            for p in meta.get("blas", [])
            if p.get("user_api") == "blas"
        )
        lines.append(
            f"machine: {meta.get('cpu')}, {meta.get('cores_available')} cores; "
            f"numpy {meta.get('numpy')}, torch {meta.get('torch')}, BLAS {blas or '?'}; "
            f"{meta.get('seconds', 0):.1f} s"
        )
    if results.get("targets"):
        lines.append("")
        lines.append(format_targets(results["targets"]))
    return "\n".join(lines)


# ---- targets (issues 5 and 23) -----------------------------------------------------------
def _find(rows, **match):
    return [
        r
        for r in rows
        if not r.get("error")
        and r.get("ratio") is not None
        and all(r.get(k) == v if not callable(v) else v(r.get(k)) for k, v in match.items())
    ]


def _starts(prefix):
    return lambda shape: shape.startswith(prefix)


def _ratio_targets(rows):
    """[(issue, target, the rows it is measured on, goal)]: each row's ratio >= goal."""
    lenet, cifar = _starts("LeNet-digits"), _starts("CIFAR-like")
    conv_fb = dict(op="conv2d", comparator=TORCH, **{"pass": FWD_BWD})
    one = dict(threads=1)  # issue 23's targets are at 1 thread
    table = []
    for model, _ in MODELS:
        epoch = dict(op="lenet-train-epoch", comparator=TORCH, shape=model)
        inference = dict(op="lenet-inference", comparator=TORCH, shape=model)
        table += [
            (5, f"{model} epoch: torch time / minidl >= 2", epoch, 2.0),
            (5, f"{model} inference: torch / minidl >= 2", inference, 2.0),
            (23, f"{model} epoch: minidl <= 1/3 of torch", {**epoch, **one}, 3.0),
            (23, f"{model} inference: minidl <= 0.4 of torch", {**inference, **one}, 2.5),
        ]
    table += [
        (5, "conv2d fwd+bwd LeNet shapes: torch / minidl >= 2", {**conv_fb, "shape": lenet}, 2.0),
        (
            5,
            "max pool fwd+bwd LeNet shapes: torch / minidl >= 5",
            dict(op="max_pool2d", comparator=TORCH, **{"pass": FWD_BWD}, shape=lenet),
            5.0,
        ),
        (
            5,
            "conv2d fwd+bwd CIFAR shapes: torch / minidl >= 1/1.5",
            {**conv_fb, "shape": cifar},
            1 / 1.5,
        ),
        (
            5,
            "conv2d fwd CIFAR shapes: >= 70% of numpy GEMM GFLOP/s",
            dict(op="conv2d", comparator=NUMPY_GEMM, **{"pass": "fwd"}, shape=cifar),
            0.7,
        ),
        (
            5,
            "conv2d fwd+bwd vs naive loops >= 1000x (every shape)",
            dict(op="conv2d", comparator=NAIVE, **{"pass": FWD_BWD}),
            1000.0,
        ),
        (
            23,
            "conv2d fwd+bwd LeNet-digits layers: minidl <= 0.4 of torch",
            {**conv_fb, "shape": lenet, **one},
            2.5,
        ),
        (
            23,
            "conv2d fwd+bwd CIFAR-like layers: minidl <= torch",
            {**conv_fb, "shape": cifar, **one},
            1.0,
        ),
        (
            23,
            "conv2d fwd+bwd vs naive loops >= 1000x (every shape)",
            dict(op="conv2d", comparator=NAIVE, **{"pass": FWD_BWD}, **one),
            1000.0,
        ),
        (
            23,
            "CIFAR-size network step: minidl <= torch",
            dict(op=CIFAR_STEP, comparator=TORCH, **one),
            1.0,
        ),
    ]
    return table


# "Not slower" is judged by a sign test over the interleaved rounds: a 2-thread median a
# hair under the 1-thread one, from the same code on both sides, is noise, not a slowdown.
NOT_SLOWER_P = 0.05


def _paired(rows, op, shape=None):
    """The thread-scaling rows of ``op`` (and ``shape``): both sides timed interleaved."""
    return [
        r
        for r in rows
        if not r.get("error")
        and r["op"] == op
        and r["comparator"] == ONE_THREAD
        and (shape is None or r["shape"] == shape)
    ]


def _speedups(rows, paired, op, shape=None):
    """minidl's time at 1 thread / at 2 threads for the rows of ``op`` (and ``shape``):
    the ratios of its thread-scaling rows ``paired`` (both timed interleaved) where there
    are any, else its median at 1 thread over its median at 2 from the separate rows."""
    if paired:
        return [r["ratio"] for r in paired]
    by_threads = {}
    for r in rows:
        if r.get("error") or r["op"] != op or (shape is not None and r["shape"] != shape):
            continue
        by_threads.setdefault(r["threads"], []).append(r["minidl"]["median"])
    if 1 not in by_threads or 2 not in by_threads:
        return []
    return [min(by_threads[1]) / max(by_threads[2])]


def _judge_not_slower(check, paired):
    """A "not slower" check whose ratio is under 1 is still met when none of its
    interleaved rows shows 2 threads slower by the sign test (every p >= NOT_SLOWER_P);
    the note gives the row with the smallest p."""
    tested = [r for r in paired if r.get("p_slower") is not None]
    if check["met"] or not tested:
        return
    row = min(tested, key=lambda r: r["p_slower"])
    check["met"] = row["p_slower"] >= NOT_SLOWER_P
    verdict = "not significantly slower" if check["met"] else "slower"
    check["note"] = (
        f"{verdict}: 2 threads slower in {row['slower_rounds']} of {row['rounds']} "
        f"interleaved rounds, sign test p = {row['p_slower']:.2g}"
    )


def targets(rows):
    """[{issue, target, threads, worst measured value, goal, met}] for the rows present
    (and a ``note`` where a "not slower" check is met by its sign test)."""
    checks = []

    def add(issue, name, values_by_threads, goal):
        for threads, values in sorted(values_by_threads.items()):
            worst = min(values)
            checks.append(
                {
                    "issue": issue,
                    "target": name,
                    "threads": threads,
                    "worst": worst,
                    "goal": goal,
                    "met": bool(worst >= goal),
                }
            )

    for issue, name, match, goal in _ratio_targets(rows):
        by_threads = {}
        for r in _find(rows, **match):
            by_threads.setdefault(r["threads"], []).append(r["ratio"])
        add(issue, name, by_threads, goal)
    # (target, op, shape, goal, whether it only asks "not slower")
    scaling = [
        ("CIFAR-size network step: 2 threads >= 1.7x faster than 1", CIFAR_STEP, None, 1.7, False),
    ] + [
        (f"{model} {what}: 2 threads not slower than 1", op, model, 1.0, True)
        for model, _ in MODELS
        if model.startswith("LeNet()")
        for what, op in (("epoch", "lenet-train-epoch"), ("inference", "lenet-inference"))
    ]
    for name, op, shape, goal, not_slower in scaling:
        paired = _paired(rows, op, shape)
        found = _speedups(rows, paired, op, shape)
        if found:
            add(23, name, {2: found}, goal)
            if not_slower:
                _judge_not_slower(checks[-1], paired)
    return checks


def format_targets(checks):
    lines = []
    for issue in sorted({c.get("issue", 5) for c in checks}):
        lines.append(f"targets (issue {issue}), worst row per thread count:")
        for c in checks:
            if c.get("issue", 5) != issue:
                continue
            status = "met" if c["met"] else "MISSED"
            lines.append(
                f"  [{status:6}] {c['target']} @ {c['threads']} thread(s): {c['worst']:.3g}"
                f" (goal {c['goal']:.3g})" + (f"; {c['note']}" if c.get("note") else "")
            )
    return "\n".join(lines)


# ---- files -----------------------------------------------------------------------------
def write_json(results, path):
    with open(path, "w") as f:
        json.dump(results, f, indent=1, default=str)


PLOT_COMPARATORS = (TORCH, NAIVE)


def write_plot(results, path, comparators=PLOT_COMPARATORS):
    """A PNG bar chart of minidl's speed-up over each of ``comparators`` (default: PyTorch
    and the naive loops): one panel per comparator, a group of bars per op, shape and
    pass, one bar per thread count, on a log axis (right of the line at 1: minidl is
    faster). A ValueError when no measured row compares with them."""
    try:
        import matplotlib
    except ImportError:
        raise SystemExit(
            "--plot needs matplotlib, which is not installed: "
            "pip install matplotlib (or run without --plot)"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [
        r
        for r in results["rows"]
        if r.get("ratio") and not r.get("error") and r["comparator"] in comparators
    ]
    if not rows:
        raise ValueError(f"no successful rows against {', '.join(comparators)} to plot")
    shown = [c for c in comparators if any(r["comparator"] == c for r in rows)]
    threads = sorted({r["threads"] for r in rows})
    labels = {
        c: list(dict.fromkeys(_plot_label(r) for r in rows if r["comparator"] == c)) for c in shown
    }
    heights = [0.8 + 0.12 * len(threads) * len(labels[c]) for c in shown]
    fig, axes = plt.subplots(
        len(shown),
        1,
        squeeze=False,
        figsize=(8, sum(heights) + 0.5),
        gridspec_kw={"height_ratios": heights},
    )
    bar = 0.8 / len(threads)
    colors = plt.get_cmap("tab10")
    for ax, comparator in zip(axes[:, 0], shown):
        names = labels[comparator]
        for k, nthreads in enumerate(threads):
            mine = {
                _plot_label(r): r["ratio"]
                for r in rows
                if r["comparator"] == comparator and r["threads"] == nthreads
            }
            where = [i for i, name in enumerate(names) if name in mine]
            ax.barh(
                [i - 0.4 + bar * (k + 0.5) for i in where],
                [mine[names[i]] for i in where],
                height=bar,
                color=colors(k),
                label=f"{nthreads} thread{'s' if nthreads > 1 else ''}",
            )
        ax.set_yticks(range(len(names)), names, fontsize=6)
        ax.set_ylim(len(names) - 0.5, -0.5)
        ax.set_xscale("log")
        ax.axvline(1, color="black", linewidth=0.8)
        ax.tick_params(axis="x", labelsize=7)
        ax.set_xlabel(f"speed-up of minidl over {comparator} (its time / minidl's)", fontsize=7)
        ax.set_title(f"minidl vs {comparator}", fontsize=8)
        ax.legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_label(row):
    return f"{row['op']} {row['shape']} {row['pass']}"


def format_markdown(results):
    """The table as GitHub markdown (for benchmarks/RESULTS.md), then the targets."""
    head = (
        "| op | shape | pass | threads | vs | minidl median [min, max] | "
        "other median [min, max] | ratio | GFLOP/s |"
    )
    lines = [head, "|" + "---|" * 9]
    for row in results["rows"]:
        cells = _cells(row)
        shape = cells[1].replace("->", "→")
        lines.append(
            "| "
            + " | ".join(
                [
                    cells[0],
                    shape,
                    cells[2],
                    cells[3],
                    cells[4],
                    cells[5],
                    cells[6],
                    cells[7],
                    cells[8],
                ]
            )
            + " |"
        )
    lines.append("")
    lines.append(
        "ratio: the comparator's median time / minidl's (x3 = minidl 3 times faster); "
        "numpy-gemm rows: minidl's GFLOP/s as % of numpy's matmul on the same GEMM."
    )
    notes = sorted({r["note"] for r in results["rows"] if r.get("note")})
    if notes:
        lines.append("")
        lines.append("Notes on rows: " + "; ".join(notes) + ".")
    if results.get("targets"):
        lines.append("")
        lines.append("```")
        lines.append(format_targets(results["targets"]))
        lines.append("```")
    return "\n".join(lines)


def write_markdown(results, path):
    with open(path, "w") as f:
        f.write(format_markdown(results) + "\n")
