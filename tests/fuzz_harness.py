"""Random, mostly invalid calls of minidl's public ops, run in a subprocess.

``python tests/fuzz_harness.py FIRST COUNT`` runs cases FIRST .. FIRST+COUNT-1 and prints
one JSON line per case; before each call it prints ``start SEED`` so that the parent
(``tests/test_fuzz.py``) can name the case that killed the process (a segfault or an
abort) or hung it. A case is rebuilt from its seed alone, so any line is a reproducer:
``python tests/fuzz_harness.py SEED 1``.

An outcome is good when the call returns (and then, for conv / pool / linear, matches
the naive reference of ``minidl.reference`` on the same arguments), or raises ValueError
or TypeError with a message (or MemoryError for a valid call whose output cannot be
allocated). Anything else (IndexError, OverflowError, ZeroDivisionError, a wrong output
shape, a crash, a hang) is a finding.
"""

from __future__ import annotations

import json
import sys
import traceback

import numpy as np

NEAR_INT32 = (2**31 - 2, 2**31 - 1, 2**31, 2**32 + 1, 2**30 - 1, 2**63 - 1)


def _int_arg(rng: np.random.Generator, low: int = 0, high: int = 4):
    """An int-like hyperparameter: mostly small and valid, sometimes wrong or huge."""
    r = rng.random()
    if r < 0.55:
        return int(rng.integers(low, high + 1))
    if r < 0.65:
        return int(rng.choice(NEAR_INT32))
    if r < 0.72:
        return -int(rng.integers(1, 3))
    if r < 0.78:
        return float(rng.integers(1, 3)) + (0.5 if rng.random() < 0.5 else 0.0)
    if r < 0.82:
        return bool(rng.integers(0, 2))
    if r < 0.88:
        n = int(rng.integers(1, 4))
        return tuple(int(rng.integers(low, high + 1)) for _ in range(n))
    if r < 0.92:
        return (int(rng.integers(low, high + 1)), int(rng.choice(NEAR_INT32)))
    if r < 0.95:
        return None
    if r < 0.97:
        return "2"
    return np.int64(rng.integers(low, high + 1))


_DTYPES = (
    [np.float32] * 6
    + [np.float64] * 3
    + [np.float16, np.int64, np.bool_, np.complex64, object, np.int32]
)


def _array(rng: np.random.Generator, ndim: int | None = None, max_side: int = 6):
    """A random array: odd dtypes, zero sizes, NaN/inf, odd memory layouts."""
    if ndim is None:
        ndim = int(rng.choice([0, 1, 2, 3, 4, 4, 4, 4, 5]))
    shape = [int(rng.integers(0 if rng.random() < 0.08 else 1, max_side + 1)) for _ in range(ndim)]
    dtype = _DTYPES[int(rng.integers(len(_DTYPES)))]
    if dtype is object:
        a = np.empty(shape, dtype=object)
        a[...] = 1.0
        return a
    a = (
        rng.standard_normal(shape).astype(dtype)
        if shape
        else np.asarray(rng.standard_normal()).astype(dtype)
    )
    r = rng.random()
    if a.size and r < 0.08:
        a.flat[int(rng.integers(a.size))] = np.nan if a.dtype.kind in "fc" else 0
    elif a.size and r < 0.14 and a.dtype.kind in "fc":
        a.flat[int(rng.integers(a.size))] = np.inf
    layout = rng.random()
    if ndim and layout < 0.08:  # negatively strided
        a = a[..., ::-1]
    elif ndim and layout < 0.14:  # non-contiguous
        a = np.repeat(a, 2, axis=-1)[..., ::2]
    elif layout < 0.19:
        a.setflags(write=False)
    elif layout < 0.24 and a.dtype == np.float32:  # C-contiguous but misaligned
        raw = np.zeros(a.nbytes + 1, np.uint8)[1:]
        m = raw.view(np.float32).reshape(a.shape)
        m[...] = a
        a = m
    return a


def _maybe_tensor(rng, a, requires_grad_p=0.5):
    import minidl

    if rng.random() < 0.1:
        return a  # a plain ndarray
    t = minidl.Tensor(a)
    if a.dtype.kind == "f" and a.dtype != np.float16 and rng.random() < requires_grad_p:
        t.requires_grad_(True)
    return t


def _conv_case(rng):
    x = _array(rng, int(rng.choice([3, 4, 4, 4, 5])))
    c = x.shape[1] if x.ndim > 1 else 1
    groups = _int_arg(rng, 1, 2) if rng.random() < 0.3 else 1
    g = groups if isinstance(groups, int) and not isinstance(groups, bool) and 0 < groups < 5 else 1
    f = int(rng.integers(1, 4)) * g
    k = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    wshape = (
        (f, max(1, c // g), *k)
        if rng.random() < 0.85
        else tuple(int(rng.integers(0, 4)) for _ in range(int(rng.integers(1, 5))))
    )
    w = rng.standard_normal(wshape).astype(x.dtype if x.dtype.kind == "f" else np.float32)
    if rng.random() < 0.1:
        w = w.astype(np.float64)
    b = None
    if rng.random() < 0.5:
        b = rng.standard_normal(f if rng.random() < 0.9 else f + 1).astype(w.dtype)
        if rng.random() < 0.05:
            b = np.asarray(b[0])
    kw = {}
    for name, low in (("stride", 1), ("padding", 0), ("dilation", 1)):
        if rng.random() < 0.6:
            kw[name] = _int_arg(rng, low, 2)
    if groups != 1:
        kw["groups"] = groups
    return "conv2d", (x, w, b), kw


def _conv1d_case(rng):
    x = _array(rng, int(rng.choice([2, 3, 3, 4])))
    c = x.shape[1] if x.ndim > 1 else 1
    w = rng.standard_normal((int(rng.integers(1, 4)), c, int(rng.integers(1, 4)))).astype(
        x.dtype if x.dtype.kind == "f" else np.float32
    )
    b = (
        None
        if rng.random() < 0.5
        else rng.standard_normal(w.shape[0] if rng.random() < 0.9 else ()).astype(w.dtype)
    )
    kw = {
        n: _int_arg(rng, lo, 2)
        for n, lo in (("stride", 1), ("padding", 0), ("dilation", 1))
        if rng.random() < 0.5
    }
    return "conv1d", (x, w, b), kw


def _pool_case(rng, name):
    x = _array(rng, int(rng.choice([2, 3, 4, 4, 4, 5])))
    kw = {"kernel_size": _int_arg(rng, 1, 3)}
    if rng.random() < 0.6:
        kw["stride"] = _int_arg(rng, 1, 3)
    if rng.random() < 0.5:
        kw["padding"] = _int_arg(rng, 0, 1)
    return name, (x,), kw


def _linear_case(rng):
    x = _array(rng, int(rng.choice([1, 2, 2, 3])))
    d = x.shape[-1] if x.ndim else 1
    w = rng.standard_normal((int(rng.integers(1, 4)), d if rng.random() < 0.9 else d + 1))
    w = w.astype(x.dtype if x.dtype.kind == "f" else np.float32)
    b = None if rng.random() < 0.5 else rng.standard_normal(w.shape[0]).astype(w.dtype)
    return "linear", (x, w, b), {}


def _elementwise_case(rng):
    name = str(rng.choice(["relu", "sigmoid", "tanh", "flatten"]))
    return name, (_array(rng),), {}


def _softmax_case(rng):
    name = str(rng.choice(["softmax", "log_softmax"]))
    x = _array(rng)
    return name, (x, _int_arg(rng, -2, 3)), {}


def _loss_case(rng):
    name = str(rng.choice(["cross_entropy", "mse_loss"]))
    x = _array(rng, int(rng.choice([0, 1, 2, 2, 3])))
    if name == "cross_entropy":
        n = x.shape[0] if x.ndim else 1
        c = max(1, x.shape[1]) if x.ndim > 1 else 3
        t = rng.integers(-1 if rng.random() < 0.1 else 0, c + (rng.random() < 0.1), size=n)
        target = t if rng.random() < 0.8 else rng.standard_normal(n)
    else:
        target = _array(rng, x.ndim) if rng.random() < 0.7 else None
    kw = {}
    if rng.random() < 0.3:
        kw["reduction"] = str(rng.choice(["mean", "sum", "none", "avg"]))
    return name, (x, target), kw


def _dropout_case(rng):
    p = float(rng.choice([0.0, 0.5, 1.0, -0.1, 1.5, np.nan]))
    return "dropout", (_array(rng),), {"p": p, "training": bool(rng.integers(0, 2))}


# --- every other public op and module, arguments drawn from the signature ---------------

_ARRAY_PARAMS = {
    "input",
    "x",
    "tensor",
    "weight",
    "bias",
    "target",
    "running_mean",
    "running_var",
    "indices",
    "pos_weight",
    "_weight",
}
_STRINGS = {
    "mode": [
        "constant",
        "reflect",
        "replicate",
        "circular",
        "nearest",
        "bilinear",
        "bicubic",
        "linear",
        "area",
        "zeros",
        "bogus",
    ],
    "padding_mode": ["zeros", "reflect", "replicate", "circular", "bogus"],
    "reduction": ["mean", "sum", "none", "avg"],
    "approximate": ["none", "tanh", "exact"],
    "transforms": ["rot4", "flip", "rot4flip", "bogus"],
    "reduce": ["max", "mean", "sum", None, "bogus"],
}
_FLOATS = [0.0, -1.0, 0.5, 1.0, 2.0, 1e-5, np.nan, np.inf, -np.inf, 1e30, 3, True, "1", None]
_SKIP_MODULES = {"Module", "ModuleDict", "ModuleList", "Parameter", "Sequential"}


def _nice_array(rng, ndim=None):
    """A float32/float64 array, C-contiguous, sides 1..5 (to reach the valid paths too)."""
    if ndim is None:
        ndim = int(rng.choice([2, 3, 4, 4, 4]))
    dtype = np.float32 if rng.random() < 0.7 else np.float64
    return rng.standard_normal([int(rng.integers(1, 6)) for _ in range(ndim)]).astype(dtype)


def _related_array(rng, like, nice=False):
    """An array whose shape is taken from ``like``'s (often enough to make a valid call)."""
    if like is None or rng.random() < 0.3:
        return _nice_array(rng) if nice else _array(rng)
    r = rng.random()
    if r < 0.35:
        shape = like.shape
    elif r < 0.6 and like.ndim > 1:
        shape = (like.shape[1],)
    elif r < 0.75 and like.ndim:
        shape = (like.shape[0],)
    else:
        shape = like.shape[:-1]
    a = _nice_array(rng, len(shape)) if nice else _array(rng, len(shape))
    if a.shape != tuple(shape) and all(s >= 0 for s in shape):
        dtype = a.dtype if a.dtype != object else np.float32
        if rng.random() < 0.5:
            return rng.integers(0, 3, size=shape).astype(np.int64)
        return rng.standard_normal(shape).astype(dtype)
    return a


_SIZE_PARAMS = {
    "num_features",
    "num_channels",
    "in_channels",
    "out_channels",
    "in_features",
    "out_features",
    "num_embeddings",
    "embedding_dim",
    "normalized_shape",
    "num_classes",
}


# parameters whose nice values are small ints (0..3): the sizes but the shaped ones, and
# the window hyper-parameters
_SMALL_INT_PARAMS = (_SIZE_PARAMS - {"normalized_shape", "num_classes"}) | {
    "kernel_size",
    "stride",
    "num_groups",
    "output_size",
    "size",
    "dilation",
    "padding",
}


def _value(rng, name, default, like, nice=False):
    """A random value for the parameter ``name`` (default ``default``); ``nice`` values
    are mostly valid."""
    v = _any_value(rng, name, default, like, nice)
    return _unallocatable(v) if name in _SIZE_PARAMS else v


def _unallocatable(v):
    """A layer of 2**31 features is a valid request that takes minutes to fill in: sizes
    that big become ones no machine can allocate (a quick MemoryError or ValueError)."""

    def grow(n):
        return 2**62 if isinstance(n, int) and 2**20 <= n < 2**40 else n

    return tuple(grow(n) for n in v) if isinstance(v, tuple) else grow(v)


def _any_value(rng, name, default, like, nice):
    if name in _ARRAY_PARAMS:
        if default is None and name not in ("input", "x", "tensor") and rng.random() < 0.4:
            return None
        return _related_array(rng, like, nice)
    if nice and default is not None and not isinstance(default, str) and rng.random() < 0.6:
        return default
    if nice and name in _SMALL_INT_PARAMS:
        low = 0 if name == "padding" else 1
        if (
            like is not None
            and like.ndim > 1
            and rng.random() < 0.5
            and name in ("num_features", "in_channels", "num_channels", "num_groups")
        ):
            return int(like.shape[1])
        if like is not None and like.ndim and rng.random() < 0.5 and name == "in_features":
            return int(like.shape[-1])
        return int(rng.integers(low, 4))
    if name in _STRINGS:
        return _STRINGS[name][int(rng.integers(len(_STRINGS[name])))]
    if name in ("pad", "normalized_shape", "output_size", "size", "unflattened_size"):
        r = rng.random()
        if r < 0.4 and like is not None and like.ndim:
            k = int(rng.integers(1, like.ndim + 1))
            return (
                tuple(int(v) for v in like.shape[-k:])
                if name != "pad"
                else tuple(int(rng.integers(-1, 3)) for _ in range(2 * k))
            )
        if r < 0.7:
            return tuple(_int_arg(rng, 0, 4) for _ in range(int(rng.integers(0, 5))))
        return _int_arg(rng, 0, 4)
    if name == "dtype":
        return [None, np.float32, np.float64, np.int64, np.float16, "float32", "x"][
            int(rng.integers(7))
        ]
    if name in (
        "p",
        "eps",
        "momentum",
        "alpha",
        "negative_slope",
        "min_val",
        "max_val",
        "delta",
        "beta",
        "label_smoothing",
        "max_norm",
        "norm_type",
        "scale_factor",
        "value",
    ):
        if rng.random() < 0.4:
            return default
        return _FLOATS[int(rng.integers(len(_FLOATS)))]
    if isinstance(default, bool) or name in ("training", "inplace", "align_corners"):
        return [True, False, True, False, 0, 1, "yes", None][int(rng.integers(8))]
    if default is not None and rng.random() < 0.3:
        return default
    if name in ("dim", "start_dim", "end_dim", "ignore_index", "padding_idx", "num_classes"):
        return _int_arg(rng, -2, 3)
    return _int_arg(rng, 1 if name != "padding" else 0, 4)


def _signature_call(rng, fn, skip_self=False, like=None, nice=False):
    """(args, kwargs) for ``fn`` from its signature; some defaults left out."""
    import inspect

    args, kw = [], {}
    positional = True  # required arguments go by position until one is skipped
    for p in list(inspect.signature(fn).parameters.values())[int(skip_self) :]:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        required = p.default is p.empty
        if not required and rng.random() < 0.5:
            positional = False
            continue
        v = _value(rng, p.name, None if required else p.default, like, nice)
        if p.name in ("pad", "output_size", "size") or (skip_self and p.name == "kernel_size"):
            v = _unallocatable(v)  # 2**31 padding or output sizes: valid, but gigabytes
        if p.name in ("input", "x", "tensor") and like is None and isinstance(v, np.ndarray):
            like = v
        if required and positional and p.kind == p.POSITIONAL_OR_KEYWORD:
            args.append(v)
        else:
            positional = False
            kw[p.name] = v
    return tuple(args), kw


_SPECIAL = {
    "conv2d",
    "conv1d",
    "max_pool2d",
    "avg_pool2d",
    "linear",
    "relu",
    "sigmoid",
    "tanh",
    "flatten",
    "softmax",
    "log_softmax",
    "cross_entropy",
    "mse_loss",
    "dropout",
}


def _functional_case(rng):
    import minidl.nn.functional as F

    names = [n for n in F.__all__ if n not in _SPECIAL]
    name = names[int(rng.integers(len(names)))]
    nice = rng.random() < 0.5
    like = _nice_array(rng) if nice else None
    args, kw = _signature_call(rng, getattr(F, name), like=like, nice=nice)
    if nice and args and isinstance(args[0], np.ndarray):
        args = (like, *args[1:])
    return name, args, kw


def _module_case(rng):
    """("nn.Name", (constructor args, constructor kwargs, call inputs), {})."""
    import minidl.nn as nn

    names = [n for n in nn.__all__ if isinstance(getattr(nn, n), type) and n not in _SKIP_MODULES]
    name = names[int(rng.integers(len(names)))]
    cls = getattr(nn, name)
    nice = rng.random() < 0.5
    x = _nice_array(rng) if nice else _array(rng)
    cargs, ckw = _signature_call(rng, cls.__init__, skip_self=True, like=x, nice=nice)
    ckw = {k: v for k, v in ckw.items() if k not in ("_weight",)}
    inputs = [x]
    if name.endswith("Loss") or rng.random() < 0.05:
        inputs.append(_related_array(rng, x, nice))
    return "nn." + name, (cargs, ckw, inputs), {}


_FAMILIES = [
    (_conv_case, 6),
    (_conv1d_case, 2),
    (lambda r: _pool_case(r, "max_pool2d"), 4),
    (lambda r: _pool_case(r, "avg_pool2d"), 3),
    (_linear_case, 2),
    (_elementwise_case, 1),
    (_softmax_case, 1),
    (_loss_case, 2),
    (_dropout_case, 1),
    (_functional_case, 10),
    (_module_case, 6),
]
_WEIGHTS = np.array([w for _, w in _FAMILIES], dtype=float)


def make_case(seed: int):
    """(op name, positional args, keyword args) for ``seed``, arrays possibly wrapped."""
    rng = np.random.default_rng(seed)
    family = _FAMILIES[int(rng.choice(len(_FAMILIES), p=_WEIGHTS / _WEIGHTS.sum()))][0]
    name, args, kw = family(rng)

    def wrap(v):
        return _maybe_tensor(rng, v) if isinstance(v, np.ndarray) else v

    if name.startswith("nn."):
        cargs, ckw, inputs = args
        return name, (cargs, ckw, [wrap(a) for a in inputs]), kw
    args = tuple(wrap(a) for a in args)
    kw = {k: wrap(v) for k, v in kw.items()}
    return name, args, kw


def describe(value) -> str:
    import minidl

    if isinstance(value, minidl.Tensor):
        return f"Tensor({describe(value.data)}, requires_grad={value.requires_grad})"
    if isinstance(value, (list, tuple)) and any(
        isinstance(v, (np.ndarray, minidl.Tensor, list, tuple, dict)) for v in value
    ):
        return "[" + ", ".join(describe(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={describe(v)}" for k, v in value.items()) + "}"
    if isinstance(value, np.ndarray):
        flags = []
        if not value.flags.c_contiguous:
            flags.append("non-contiguous")
        if not value.flags.writeable:
            flags.append("read-only")
        if not value.flags.aligned or (value.ctypes.data % value.dtype.alignment):
            flags.append("misaligned")
        if value.dtype.kind in "fc" and value.size and not np.isfinite(value).all():
            flags.append("non-finite")
        return f"array{value.shape}:{value.dtype}{'[' + ','.join(flags) + ']' if flags else ''}"
    return repr(value)


def _reference(name, args, kw, out):
    """None when ``out`` matches the naive reference (or none applies), else a message."""
    import minidl
    from minidl import reference as R

    data = [a.data if isinstance(a, minidl.Tensor) else a for a in args]
    got = out.data if isinstance(out, minidl.Tensor) else None
    if got is None:
        return None
    if name == "conv2d":
        x, w, b = (np.asarray(a, np.float64) if a is not None else None for a in data)
        want = R.conv2d_forward(x, w, b, **kw)
    elif name in ("max_pool2d", "avg_pool2d"):
        x = np.asarray(data[0], np.float64)
        if x.ndim != 4:
            return None
        fn = R.max_pool2d_forward if name == "max_pool2d" else R.avg_pool2d_forward
        want = fn(x, **kw)
        want = want[0] if isinstance(want, tuple) else want
    elif name == "linear":
        x, w, b = (np.asarray(a, np.float64) if a is not None else None for a in data)
        want = x @ w.T + (0 if b is None else b)
    else:
        return None
    if want.shape != got.shape:
        return f"shape {got.shape}, reference {want.shape}"
    tol = {np.float16: 1e-2, np.float32: 1e-4}.get(got.dtype.type, 1e-10)
    if not np.allclose(
        got,
        want,
        rtol=tol,
        atol=tol * max(1.0, float(np.abs(want).max(initial=0.0, where=np.isfinite(want)))),
        equal_nan=True,
    ):
        return "values differ from the reference"
    return None


def run_case(seed: int) -> dict:
    import minidl.nn.functional as F

    name, args, kw = make_case(seed)
    row = {
        "seed": seed,
        "op": name,
        "args": [describe(a) for a in args],
        "kwargs": {k: describe(v) for k, v in kw.items()},
    }
    try:
        with np.errstate(all="ignore"):
            if name.startswith("nn."):
                import minidl.nn as nn

                cargs, ckw, inputs = args
                out = getattr(nn, name[3:])(*cargs, **ckw)(*inputs)
            else:
                out = getattr(F, name)(*args, **kw)
            if isinstance(out, tuple):
                out = out[0]
            if getattr(out, "requires_grad", False):
                out.sum().backward()
    except (ValueError, TypeError) as exc:
        row["outcome"] = "error" if str(exc) else "finding"
        row["error"] = f"{type(exc).__name__}: {exc}"[:300]
        return row
    except MemoryError as exc:
        row["outcome"] = "error"
        row["error"] = f"MemoryError: {exc}"[:300]
        return row
    except IndexError as exc:  # PyTorch's type for a dim out of range
        row["outcome"] = "error" if "dim" in str(exc) else "finding"
        row["error"] = f"IndexError: {exc}"[:300]
        return row
    except Exception as exc:  # noqa: BLE001  (every other exception is a finding)
        row["outcome"] = "finding"
        row["error"] = f"{type(exc).__name__}: {exc}"[:300]
        row["traceback"] = traceback.format_exc(limit=3)[-800:]
        return row
    try:
        with np.errstate(all="ignore"):
            mismatch = _reference(name, args, kw, out)
    except (ValueError, TypeError, MemoryError, IndexError):
        mismatch = None  # the reference itself does not take these arguments
    row["outcome"] = "finding" if mismatch else "ok"
    if mismatch:
        row["error"] = "wrong result: " + mismatch
    return row


def main(argv: list[str]) -> int:
    first, count = int(argv[1]), int(argv[2])
    import minidl  # noqa: F401  (imported before the first "start" line)

    for seed in range(first, first + count):
        print(f"start {seed}", flush=True)
        print(json.dumps(run_case(seed)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
