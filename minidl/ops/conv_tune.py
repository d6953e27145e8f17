"""Measured conv dispatch: the tables ``python -m minidl tune`` writes, and the timing of
every eligible path of a layer that both it and ``minidl.backends.autotune`` run.

A table maps a layer's key (``layer_key``: shapes, dtype, stride, padding, dilation,
groups, training or not, threads, and whether a fused 2x2 max pool takes its output) to
the ConvPlan that measured fastest on this machine.
It lives in the user's cache folder (``MINIDL_CACHE_DIR``, else
``$XDG_CACHE_HOME/minidl``, else ``~/.cache/minidl``), one JSON file per CPU model and
instruction-set level, and is read once per process (``load_table``).  Layers it does not
name run the built-in rule (minidl.ops.conv_plan).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import time
from typing import Any, NamedTuple

import numpy as np

from minidl import _kernels as K
from minidl.ops import conv_plan as CP

FORMAT = 2  # 2: Winograd's channel-major layout is a choice of the plan ("channels")


# ---- where the table lives ----------------------------------------------------------


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what platform knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_level() -> int:
    """The instruction-set level the kernels run at (0 baseline, 1 AVX2 + FMA, 2 AVX-512)."""
    return int(K.direct_level())


def cache_dir() -> str:
    """MINIDL_CACHE_DIR, else $XDG_CACHE_HOME/minidl, else ~/.cache/minidl."""
    if os.environ.get("MINIDL_CACHE_DIR"):
        return os.environ["MINIDL_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "minidl")


def table_path() -> str:
    """This machine's table: one file per CPU model and instruction-set level."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", cpu_model()).strip("-").lower() or "cpu"
    return os.path.join(cache_dir(), f"conv-plans-{slug}-level{cpu_level()}.json")


def layer_key(
    ishape, wshape, dtype, stride, padding, dilation, groups, weight_grad, nt, pooled=False
) -> str:
    """The table's key of one layer (the fields of conv_plan's per-shape cache)."""
    dims = "x".join(str(int(v)) for v in tuple(ishape) + tuple(wshape))
    hyper = ",".join(f"{a}x{b}" for a, b in (stride, padding, dilation))
    mode = "train" if weight_grad else "infer"
    pool = "|pool" if pooled else ""
    return f"{dims}|{np.dtype(dtype).name}|{hyper}|g{groups}|{mode}|t{nt}{pool}"


def _pass_to_json(p: CP.PassPlan) -> dict[str, Any]:
    return {"path": p.path, "tile": p.tile, "layout": p.layout}


def plan_to_json(plan: CP.ConvPlan) -> dict[str, Any]:
    out: dict[str, Any] = {name: _pass_to_json(getattr(plan, name)) for name in CP.PASSES}
    out["keep_input"] = plan.keep_input
    return out


def plan_from_json(entry: dict[str, Any]) -> CP.ConvPlan:
    """A ConvPlan from its JSON form; ValueError/TypeError/KeyError if malformed."""
    passes = {name: CP.PassPlan(**entry[name]) for name in CP.PASSES}
    return CP.ConvPlan(**passes, keep_input=bool(entry.get("keep_input", False)))


def load_table(path: str | None = None) -> tuple[dict[str, CP.ConvPlan], dict[str, Any]]:
    """({key: plan}, meta) of the table at ``path`` (default: this machine's); ({}, meta
    with "error") when it is missing or unreadable (then the built-in rule runs)."""
    path = table_path() if path is None else path
    meta: dict[str, Any] = {"path": path}
    try:
        with open(path) as f:
            raw = json.load(f)
        if raw.get("format") != FORMAT:
            raise ValueError(f"format {raw.get('format')!r}, expected {FORMAT}")
        plans = {key: plan_from_json(entry) for key, entry in raw["plans"].items()}
    except FileNotFoundError:
        return {}, {**meta, "error": "no table"}
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        return {}, {**meta, "error": f"unreadable ({exc})"}
    meta.update(cpu=raw.get("cpu"), level=raw.get("level"), created=raw.get("created"))
    return plans, meta


def save_table(plans: dict[str, CP.ConvPlan], path: str | None = None) -> str:
    """Write ``plans`` as this machine's table (atomically); returns the path."""
    path = table_path() if path is None else path
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    raw = {
        "format": FORMAT,
        "cpu": cpu_model(),
        "level": cpu_level(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "plans": {key: plan_to_json(plan) for key, plan in sorted(plans.items())},
    }
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(raw, f, indent=1)
    os.replace(tmp, path)
    return path


# ---- timing the paths of one layer --------------------------------------------------


def _run_pass(which, p, x, w, g, stride, padding, dilation, groups, nt, pool=None):
    """One pass of the layer on PassPlan ``p`` (what minidl.ops.conv runs for it); with
    ``pool`` (_Pool), as the fused conv + 2x2 max pool + ReLU runs it (ops.fused)."""
    if pool is not None:
        return _run_pooled_pass(which, p, x, w, stride, padding, dilation, groups, nt, pool)
    if p.path == "depthwise":
        if which == "forward":
            return K.depthwise_conv2d_forward(x, w, None, stride, padding, dilation, nt)
        if which == "input":
            return K.depthwise_conv2d_backward_input(g, w, x.shape, stride, padding, dilation, nt)
        return K.depthwise_conv2d_backward_weight(
            x, g, w.shape, stride, padding, dilation, True, nt
        )
    if p.path == "winograd":
        common = dict(padding=padding, tile=p.tile, num_threads=nt, channel_major=p.channel_major)
        if which == "forward":
            return K.winograd_forward(x, w, None, **common)
        if which == "input":
            return K.winograd_backward_input(g, w, x.shape, **common)
        return K.winograd_backward_weight(x, g, w.shape, need_bias=True, **common)
    if p.path == "direct":
        if which == "forward":
            return K.direct_conv2d_forward(x, w, None, padding=padding, num_threads=nt)
        if which == "input":
            return K.direct_conv2d_backward_input(
                g, w, x.shape, padding=padding, layout=p.layout, num_threads=nt
            )
        return K.direct_conv2d_backward_weight(
            x, g, w.shape, padding=padding, need_bias=True, num_threads=nt
        )
    geometry = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    if which == "forward":
        return K.conv2d_forward(x, w, None, **geometry, num_threads=nt)
    if which == "input":
        return K.conv2d_backward_input(g, w, x.shape, **geometry, num_threads=nt)
    return K.conv2d_backward_weight(x, g, w.shape, **geometry, need_bias=True, num_threads=nt)


class _Pool(NamedTuple):
    """What a pooled layer's passes read: the pool's output gradient (N, F, Ho/2, Wo/2),
    its window codes, and whether the forward makes codes (training)."""

    grad: np.ndarray
    codes: np.ndarray
    need_codes: bool


def _run_pooled_pass(which, p, x, w, stride, padding, dilation, groups, nt, pool):
    """A pass of a layer whose output goes into a 2x2 max pool and ReLU, as ops.fused and
    conv2d_backward run it: a forward that pools as it goes does, any other pools apart;
    a gradient that spreads the pooled one does, any other reads it unpooled first."""
    if which == "forward":
        if p.pools_as_it_goes:
            return _pool_as_it_goes(p, x, w, padding, nt, pool)
        y = _run_pass("forward", p, x, w, None, stride, padding, dilation, groups, nt)
        return K.max_pool2d_relu_2x2_forward(y, nt, pool.need_codes)
    if not p.spreads_pooled(which):
        dy = K.max_pool2d_2x2_backward(pool.grad, pool.codes, nt)
        return _run_pass(which, p, x, w, dy, stride, padding, dilation, groups, nt)
    spread = dict(padding=padding, num_threads=nt, pool_codes=pool.codes)
    if p.path == "direct":
        return K.direct_conv2d_backward_weight(x, pool.grad, w.shape, need_bias=True, **spread)
    spread.update(tile=4, channel_major=True)
    if which == "input":
        return K.winograd_backward_input(pool.grad, w, x.shape, **spread)
    return K.winograd_backward_weight(x, pool.grad, w.shape, need_bias=True, **spread)


def _pool_as_it_goes(p, x, w, padding, nt, pool, keep_input=False):
    """The forward of PassPlan ``p``, whose kernel pools as it goes (ops.fused's call):
    (y, codes) of the channel-major Winograd (and V with ``keep_input``) or the direct
    kernel."""
    fused = dict(padding=padding, relu=True, need_codes=pool.need_codes, num_threads=nt)
    if p.channel_major:
        return K.winograd_pool_forward(x, w, None, tile=4, keep_input=keep_input, **fused)
    return K.direct_conv2d_pool_forward(x, w, None, **fused)


def _pool_for(x, w, weight_grad, stride, padding, dilation, groups, ho, wo, rng):
    """The _Pool of a layer that the fused conv + pool can take (float32, even outputs),
    else None (the layer is timed as a plain conv)."""
    if x.dtype != np.float32 or ho % 2 or wo % 2 or ho < 2 or wo < 2:
        return None
    geometry = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    y = K.conv2d_forward(x, w, None, **geometry, num_threads=1)
    _, codes = K.max_pool2d_relu_2x2_forward(y, 1, True)
    grad = rng.standard_normal((x.shape[0], w.shape[0], ho // 2, wo // 2)).astype(np.float32)
    return _Pool(grad, codes, weight_grad)


def measure_plan(
    ishape,
    wshape,
    dtype,
    stride,
    padding,
    dilation,
    groups,
    weight_grad,
    nt,
    pooled=False,
    repeats=3,
) -> tuple[CP.ConvPlan, dict[str, dict[str, float]]]:
    """(the fastest plan, {pass: {path description: best seconds}}) of one layer: every
    candidate of each pass timed on random data (best of ``repeats`` after a warm-up);
    ``pooled``: each as it runs under a fused 2x2 max pool and ReLU (_run_pooled_pass)."""
    ho, wo = CP.V.conv_output_size("tune", ishape, wshape[2:], stride, padding, dilation)
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(ishape).astype(dtype)
    w = rng.standard_normal(wshape).astype(dtype)
    g = rng.standard_normal((ishape[0], wshape[0], ho, wo)).astype(dtype)
    pool = None
    if pooled:
        pool = _pool_for(x, w, weight_grad, stride, padding, dilation, groups, ho, wo, rng)
    can = CP.candidates(ishape, wshape, dtype, stride, padding, dilation, groups)
    passes = CP.PASSES if weight_grad else ("forward", "input")
    chosen, times = {}, {}
    for which in passes:
        times[which] = {}
        best = None
        for p in can[which]:
            spent = _best_time(
                _run_pass, repeats, which, p, x, w, g, stride, padding, dilation, groups, nt, pool
            )
            times[which][p.describe(wshape[2])] = spent
            if best is None or spent < best[0]:
                best = (spent, p)
        if best[1] != CP.IM2COL:
            chosen[which] = best[1]
    if weight_grad:
        chosen = _kept_pair(
            chosen,
            times,
            can,
            x,
            w,
            g,
            stride,
            padding,
            dilation,
            groups,
            nt,
            repeats,
            ho,
            wo,
            pool,
        )
    plan = CP.compose(chosen, tuple(ishape), tuple(wshape), dtype, padding, weight_grad, ho, wo)
    return plan, times


def _best_time(run, repeats, *args) -> float:
    """The fastest of ``repeats`` timed calls run(*args), after one untimed call.

    Before each call the calling thread rewrites the array arguments, as the single-
    threaded op before a layer does in a network: a kernel that splits a small layer over
    threads must then fetch the other threads' share from this core's cache, which a warm
    loop hides (benchmarks/RESULTS.md: a split that won alone lost inside LeNet())."""
    arrays = [(a, a.copy()) for a in args if isinstance(a, np.ndarray)]
    run(*args)
    spent = []
    for _ in range(repeats):
        for a, pristine in arrays:
            np.copyto(a, pristine)
        start = time.perf_counter()
        run(*args)
        spent.append(time.perf_counter() - start)
    return min(spent)


def _run_kept_pair(p, x, w, g, stride, padding, dilation, groups, nt, pool=None):
    """The forward on PassPlan ``p`` keeping what it made of x, then the weight gradient
    reading it (im2col's cols or Winograd's V); with ``pool`` as _run_pooled_pass."""
    if p.path == "winograd":
        common = dict(padding=padding, tile=p.tile, num_threads=nt, channel_major=p.channel_major)
        if pool is not None and p.channel_major:
            *_, kept = _pool_as_it_goes(p, x, w, padding, nt, pool, keep_input=True)
            return K.winograd_backward_weight(
                x,
                pool.grad,
                w.shape,
                need_bias=True,
                kept_input=kept,
                pool_codes=pool.codes,
                **common,
            )
        y, kept = K.winograd_forward(x, w, None, keep_input=True, **common)
        g = g if pool is None else _pool_apart(y, pool, nt)
        return K.winograd_backward_weight(x, g, w.shape, need_bias=True, kept_input=kept, **common)
    geometry = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    y, kept = K.conv2d_forward(x, w, None, **geometry, keep_input=True, num_threads=nt)
    g = g if pool is None else _pool_apart(y, pool, nt)
    return K.conv2d_backward_weight(
        x, g, w.shape, **geometry, need_bias=True, kept_input=kept, num_threads=nt
    )


def _pool_apart(y, pool, nt):
    """The separate pool of a conv output ``y`` and the unpooled gradient that a pass
    then reads."""
    K.max_pool2d_relu_2x2_forward(y, nt, True)
    return K.max_pool2d_2x2_backward(pool.grad, pool.codes, nt)


def _kept_pair(
    chosen, times, can, x, w, g, stride, padding, dilation, groups, nt, repeats, ho, wo, pool
):
    """``chosen`` with the forward and the weight gradient moved to one path whose
    forward keeps its cols or V for the weight gradient, where that pair, timed
    together, beats the two passes' fastest paths timed apart."""
    k = w.shape[2]
    apart = sum(
        times[which][chosen.get(which, CP.IM2COL).describe(k)] for which in ("forward", "weight")
    )
    best = None
    for p in can["forward"]:
        if p.path not in ("im2col", "winograd") or p not in can["weight"]:
            continue
        pair = {**chosen, "forward": p, "weight": p}
        if not CP.compose(pair, x.shape, w.shape, x.dtype, padding, True, ho, wo).keep_input:
            continue  # too big to keep: compose would not keep it either
        spent = _best_time(
            _run_kept_pair, repeats, p, x, w, g, stride, padding, dilation, groups, nt, pool
        )
        times.setdefault("forward+weight kept", {})[p.describe(k)] = spent
        if spent < apart and (best is None or spent < best[0]):
            best = (spent, p)
    if best is None:
        return chosen
    return {**chosen, "forward": best[1], "weight": best[1]}


CP.install_measured(load_table, layer_key, measure_plan)
