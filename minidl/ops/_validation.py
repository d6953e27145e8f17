"""Input checks shared by every op: one clear ValueError / TypeError per problem.

The kernels trust their arguments, so everything that could make them read or write out
of bounds is checked here first. The checks are written to be cheap on the happy path
(tiny networks spend most of their time in op overhead).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import numpy as np

from minidl.autograd import Tensor

_INT = (int, np.integer)
_IntOrPair = Union[int, Sequence[int]]  # 3 or (3, 3)


# ---- tensor arguments -----------------------------------------------------------------
def data_of(what: str, name: str, value: object) -> np.ndarray:
    """The ndarray of a Tensor argument; a TypeError naming the argument for anything else."""
    if isinstance(value, Tensor):
        data = value.data
        if type(data) is np.ndarray:
            return data
    hint = " (wrap arrays with minidl.tensor(...))" if isinstance(value, np.ndarray) else ""
    raise TypeError(
        f"{what}: argument '{name}' must be a minidl.Tensor, not {type(value).__name__}{hint}"
    )


def optional_data_of(what: str, name: str, value: object) -> np.ndarray | None:
    """data_of for an argument that may be None (a bias)."""
    return None if value is None else data_of(what, name, value)


# ---- small scalars ------------------------------------------------------------------
def dim_index(dim: int, ndim: int, what: str) -> int:
    """``dim`` as a non-negative axis of an ``ndim``-dimensional tensor."""
    if type(dim) is int and -ndim <= dim < ndim:  # the common case, fast
        return dim % ndim
    if type(dim) is not int and (isinstance(dim, bool) or not isinstance(dim, _INT)):
        raise TypeError(f"{what}: dim must be an int, got {dim!r}")
    n = ndim if ndim else 1
    if not -n <= dim < n:
        raise IndexError(f"{what}: dim {dim} out of range for a tensor with {ndim} dimensions")
    return int(dim) % n


def reduction(value: str, what: str) -> None:
    if value not in ("mean", "sum", "none"):
        raise ValueError(f"{what}: reduction must be 'mean', 'sum' or 'none', got {value!r}")


def probability(p: float, what: str) -> None:
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)):
        raise TypeError(f"{what}: p must be a number, got {type(p).__name__}")
    if not 0 <= p <= 1:  # also rejects NaN
        raise ValueError(f"{what}: p must be in [0, 1], got {p}")


# ---- dtypes -------------------------------------------------------------------------
def same_float_dtype(what: str, **arrays: np.ndarray | None) -> np.dtype | None:
    """All given arrays (None skipped) share one float dtype, else a TypeError naming them."""
    first_name = first = None
    for name, arr in arrays.items():
        if arr is None:
            continue
        dt = arr.dtype
        if dt.kind != "f":
            raise TypeError(f"{what}: {name} must be float32 or float64, got dtype {dt}")
        if first is None:
            first_name, first = name, dt
        elif dt is not first and dt != first:
            raise TypeError(
                f"{what}: mixed dtypes: {first_name} is {first} but {name} is {dt}; "
                f"convert one (e.g. .float() or .double())"
            )
    return first


def float_image(what: str, x: np.ndarray) -> None:
    """float32 or float64 only: the kernels have no other instantiation (float16 too)."""
    if x.dtype.type is not np.float32 and x.dtype.type is not np.float64:
        raise TypeError(f"{what}: input must be a float32 or float64 image, got dtype {x.dtype}")


# ---- losses -------------------------------------------------------------------------
def class_targets(
    target: object,
    logits: np.ndarray,
    what: str,
    ignore_index: int | None = None,
    check_range: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Integer class indices matching logits (N, C[, d1, ...]) as an int64 ndarray, and a
    bool mask of the targets equal to ``ignore_index`` (None when there are none); ignored
    targets may lie outside 0..C-1.  check_range=False: the caller checks that the others
    lie in 0..C-1 (then only an ignore_index inside that range is looked for)."""
    t = target.data if isinstance(target, Tensor) else np.asarray(target)
    if logits.dtype.kind != "f":
        raise TypeError(f"{what}: input must be float logits, got dtype {logits.dtype}")
    if t.dtype.kind not in "iu":
        raise TypeError(f"{what}: target must hold integer class indices, got dtype {t.dtype}")
    if logits.ndim == 0:
        raise ValueError(f"{what}: input must have shape (N, C) or (C,), got a 0-d tensor")
    expected = () if logits.ndim == 1 else (logits.shape[0],) + logits.shape[2:]
    if t.shape != expected:
        raise ValueError(
            f"{what}: target shape {t.shape} does not match input shape {logits.shape} "
            f"(expected target shape {expected})"
        )
    n_classes = logits.shape[0 if logits.ndim == 1 else 1]
    t = t.astype(np.int64, copy=False)
    ignored = None
    if ignore_index is not None and 0 <= ignore_index < n_classes:
        ignored = t == ignore_index
    # one reduction checks both ends: negative indices are huge as unsigned integers
    if check_range and t.size and t.view(np.uint64).max() >= n_classes:
        if ignore_index is not None and ignored is None:
            ignored = t == ignore_index
        out = (t < 0) | (t >= n_classes)
        if ignored is not None:
            out &= ~ignored
        if out.any():
            bad = t[out]
            lo, hi = bad.min(), bad.max()
            bad = lo if lo < 0 else hi
            raise ValueError(
                f"{what}: target {bad} is out of range for {n_classes} classes "
                f"(valid: 0..{n_classes - 1})"
            )
    if ignored is not None and not ignored.any():
        ignored = None
    return t, ignored


# ---- linear -------------------------------------------------------------------------
def linear_args(x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> None:
    if w.ndim != 2:
        raise ValueError(
            f"linear: weight must be 2-D (out_features, in_features), got shape {w.shape}"
        )
    if x.ndim == 0 or x.shape[-1] != w.shape[1]:
        raise ValueError(
            f"linear: input shape {x.shape} does not match weight shape {w.shape} "
            f"(input's last dim must be in_features={w.shape[1]})"
        )
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(
            f"linear: bias shape {b.shape} does not match weight shape {w.shape} "
            f"(expected ({w.shape[0]},))"
        )
    dx, dw = x.dtype, w.dtype
    if dx is not dw or (b is not None and b.dtype is not dw):
        same_float_dtype("linear", input=x, weight=w, bias=b)
    elif dx.kind != "f":
        raise TypeError(f"linear: input must be float32 or float64, got dtype {dx}")


# ---- sizes: ops and layer constructors ----------------------------------------------
def pair(value: int | Sequence[int], name: str, what: str, n: int = 2) -> tuple[int, ...]:
    """An int or a length-n tuple/list of ints as an n-tuple of Python ints (the
    ``kernel_size=3`` -> ``(3, 3)`` of every conv and pooling op and layer)."""
    if type(value) is int:
        return (value,) * n
    if type(value) is tuple and len(value) == n and all(type(v) is int for v in value):
        return value  # the common case (a module's stored tuple), fast
    if isinstance(value, (tuple, list)):
        if len(value) != n:
            raise ValueError(f"{what}: {name} must be an int or a tuple of {n} ints, got {value!r}")
        for v in value:
            if isinstance(v, bool) or not isinstance(v, _INT):
                raise TypeError(f"{what}: {name} must contain ints, got {value!r}")
        return tuple(int(v) for v in value)
    if isinstance(value, _INT) and not isinstance(value, bool):
        return (int(value),) * n
    raise TypeError(
        f"{what}: {name} must be an int or a tuple of {n} ints, "
        f"got {type(value).__name__} {value!r}"
    )


def positive_int(value: int, name: str, what: str) -> int:
    """``value`` as a Python int >= 1 (a layer's channel or feature count)."""
    if isinstance(value, bool) or not isinstance(value, _INT) or value < 1:
        raise ValueError(f"{what}: {name} must be a positive int, got {value!r}")
    return int(value)


# ---- convolution and pooling ---------------------------------------------------------
def kernel_array(x: np.ndarray) -> np.ndarray:
    """``x`` as the kernels read it: C-contiguous and aligned to its dtype. A copy only
    when needed (``np.ascontiguousarray`` keeps a misaligned C-contiguous view as it is)."""
    flags = x.flags
    if flags.c_contiguous and flags.aligned:
        return x
    return np.array(x, order="C")


# The kernels index planes, padded planes and im2col matrices with C ints.
INDEX_MAX = 2**31 - 1


def index_sizes(what: str, **sizes: int) -> None:
    """ValueError naming the first argument whose size (a Python int the kernels would
    derive from it) does not fit the kernels' index type."""
    for name, size in sizes.items():
        if size > INDEX_MAX:
            raise ValueError(
                f"{what}: {name} is too large: it makes a size of {size}, above "
                f"{INDEX_MAX}, the largest the kernels can index"
            )


def _conv_output_size(
    what: str,
    size: tuple[int, ...],
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    dilation: tuple[int, ...],
    input_shape: tuple[int, ...],
) -> tuple[int, int]:
    padded = max(size[0] + 2 * padding[0], size[1] + 2 * padding[1])
    span = max(dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1)
    rows = kernel[0] * kernel[1] * (input_shape[1] if len(input_shape) == 4 else 1)
    if max(stride[0], stride[1], dilation[0], dilation[1], padded, span, rows) > INDEX_MAX:
        index_sizes(
            what,
            stride=max(stride),
            padding=padded,
            dilation=max(span, *dilation),
            kernel_size=rows,
        )
    eh = size[0] + 2 * padding[0] - dilation[0] * (kernel[0] - 1) - 1
    ew = size[1] + 2 * padding[1] - dilation[1] * (kernel[1] - 1) - 1
    if eh >= 0 and ew >= 0:
        return (eh // stride[0] + 1, ew // stride[1] + 1)
    out = "x".join(str(e // s + 1 if e >= 0 else 0) for e, s in ((eh, stride[0]), (ew, stride[1])))
    raise ValueError(
        f"{what}: computed output size {out} is too small (input shape {input_shape}, "
        f"kernel {kernel}, stride {stride}, padding {padding}, dilation {dilation})"
    )


def hyper(
    what: str, stride: _IntOrPair, padding: _IntOrPair, dilation: _IntOrPair
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """Normalised and range-checked (stride, padding, dilation) pairs."""
    if (
        type(stride) is int
        and type(padding) is int
        and type(dilation) is int
        and stride >= 1
        and padding >= 0
        and dilation >= 1
    ):  # the common case, fast
        return (stride, stride), (padding, padding), (dilation, dilation)
    stride = pair(stride, "stride", what)
    padding = pair(padding, "padding", what)
    dilation = pair(dilation, "dilation", what)
    if stride[0] < 1 or stride[1] < 1:
        raise ValueError(f"{what}: stride must be >= 1, got {stride}")
    if padding[0] < 0 or padding[1] < 0:
        raise ValueError(f"{what}: padding must be >= 0, got {padding}")
    if dilation[0] < 1 or dilation[1] < 1:
        raise ValueError(f"{what}: dilation must be >= 1, got {dilation}")
    return stride, padding, dilation


def groups_arg(what: str, groups: int) -> int:
    if isinstance(groups, bool) or not isinstance(groups, _INT):
        raise TypeError(f"{what}: groups must be an int, got {groups!r}")
    if groups < 1:
        raise ValueError(f"{what}: groups must be >= 1, got {groups}")
    return int(groups)


def conv_arrays(what: str, x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> None:
    """Rank and dtype checks for conv2d / conv_transpose2d inputs.

    x (N, C, H, W); conv2d weight (F, C/groups, kh, kw); transposed weight
    (C, F/groups, kh, kw); bias (F,). Dtype and rank only: channels need ``groups``.
    """
    if x.ndim != 4:
        raise ValueError(f"{what}: expected a 4-D input (N, C, H, W), got shape {x.shape}")
    if w.ndim != 4:
        raise ValueError(f"{what}: expected a 4-D weight, got shape {w.shape}")
    dt = x.dtype
    if (
        dt is not w.dtype
        or (b is not None and b.dtype is not dt)
        or (dt.type is not np.float32 and dt.type is not np.float64)
    ):
        float_image(what, x)
        float_image(what, w)
        same_float_dtype(what, input=x, weight=w, bias=b)
    if b is not None and b.ndim != 1:
        raise ValueError(f"{what}: bias must be 1-D, got shape {b.shape}")


def conv_channels(
    what: str,
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    groups: int,
    transposed: bool = False,
    empty_batch_ok: bool = False,
) -> int:
    """Channel consistency; returns the number of output channels. An empty batch
    (N = 0) passes only for callers that handle it (the kernels must not see one)."""
    c = x.shape[1]
    if transposed:
        if w.shape[0] != c:
            raise ValueError(
                f"{what}: input shape {x.shape} has {c} channels but weight shape "
                f"{w.shape} expects {w.shape[0]} (weight is (C_in, C_out/groups, kh, kw))"
            )
        if c % groups:
            raise ValueError(f"{what}: groups={groups} does not divide the {c} input channels")
        f = w.shape[1] * groups
    else:
        f = w.shape[0]
        if c % groups:
            raise ValueError(
                f"{what}: groups={groups} does not divide the {c} input channels "
                f"(input shape {x.shape})"
            )
        if f % groups:
            raise ValueError(
                f"{what}: groups={groups} does not divide the {f} output channels "
                f"(weight shape {w.shape})"
            )
        if w.shape[1] * groups != c:
            raise ValueError(
                f"{what}: input shape {x.shape} has {c} channels but weight shape {w.shape} "
                f"expects {w.shape[1] * groups} (= {w.shape[1]} x groups={groups})"
            )
    if b is not None and b.ndim != 1:
        raise ValueError(f"{what}: bias must be 1-D ({f},), got shape {b.shape}")
    if b is not None and b.shape[0] != f:
        raise ValueError(
            f"{what}: bias shape {b.shape} does not match {f} output channels "
            f"(weight shape {w.shape})"
        )
    if 0 in x.shape[(1 if empty_batch_ok else 0) :] or 0 in w.shape:
        raise ValueError(f"{what}: empty input or weight (shapes {x.shape} and {w.shape})")
    return f


def conv_output_size(
    what: str,
    x_shape: tuple[int, ...],
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    dilation: tuple[int, ...],
) -> tuple[int, int]:
    return _conv_output_size(what, x_shape[2:], kernel, stride, padding, dilation, x_shape)


def pool_args(
    what: str,
    x: np.ndarray,
    kernel_size: _IntOrPair,
    stride: _IntOrPair | None,
    padding: _IntOrPair,
    ceil_mode: bool = False,
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, int]]:
    """(kernel, stride, padding, output (Ho, Wo)) for max/avg pooling of x (N, C, H, W).

    An empty batch (N = 0) passes; with ``ceil_mode`` the output size rounds up, as
    PyTorch's, as long as the last window starts inside the input or its left padding.
    Valid arguments are remembered per shape: a layer's checks cost one dict lookup.
    """
    # only plain ints are keys: True == 1 and 2.0 == 2 as keys, but both are errors
    plain = _plain_ints(kernel_size) and _plain_ints(stride) and _plain_ints(padding)
    if plain:
        key = (what, x.shape, x.dtype, kernel_size, stride, padding, bool(ceil_mode))
        result = _pool_args_seen.get(key)
        if result is not None:
            return result
    result = _check_pool_args(what, x, kernel_size, stride, padding, ceil_mode)
    if plain:
        if len(_pool_args_seen) >= _POOL_ARGS_KEPT:
            _pool_args_seen.clear()
        _pool_args_seen[key] = result
    return result


def _plain_ints(v: object) -> bool:
    """None, an int or a pair of ints, each exactly of type int."""
    t = type(v)
    return (
        t is int
        or v is None
        or (t is tuple and len(v) == 2 and type(v[0]) is int and type(v[1]) is int)  # type: ignore[arg-type,index]
    )


_pool_args_seen: dict = {}
_POOL_ARGS_KEPT = 256


def _check_pool_args(
    what: str,
    x: np.ndarray,
    kernel_size: _IntOrPair,
    stride: _IntOrPair | None,
    padding: _IntOrPair,
    ceil_mode: bool,
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, int]]:
    if x.ndim != 4:
        raise ValueError(f"{what}: expected a 4-D input (N, C, H, W), got shape {x.shape}")
    float_image(what, x)
    if 0 in x.shape[1:]:
        raise ValueError(f"{what}: empty input of shape {x.shape}")
    kernel = pair(kernel_size, "kernel_size", what)
    stride = (
        kernel
        if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0)
        else pair(stride, "stride", what)
    )
    padding = pair(padding, "padding", what)
    if kernel[0] < 1 or kernel[1] < 1:
        raise ValueError(f"{what}: kernel_size must be >= 1, got {kernel}")
    if stride[0] < 1 or stride[1] < 1:
        raise ValueError(f"{what}: stride must be >= 1, got {stride}")
    if padding[0] < 0 or padding[1] < 0:
        raise ValueError(f"{what}: padding must be >= 0, got {padding}")
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"{what}: padding {padding} must be at most half the kernel size {kernel}")
    out = _conv_output_size(what, x.shape[2:], kernel, stride, padding, (1, 1), x.shape)
    if ceil_mode:
        out = tuple(
            _ceil_pool_size(x.shape[2 + a], kernel[a], stride[a], padding[a]) for a in range(2)
        )
    return kernel, stride, padding, out


def _ceil_pool_size(size: int, k: int, s: int, p: int) -> int:
    out = -(-(size + 2 * p - k) // s) + 1
    if (out - 1) * s >= size + p:  # the last window would start in the right padding
        out -= 1
    return out


# ---- batch norm -----------------------------------------------------------------------
def buffer_of(what, name, value):
    """The ndarray of a running-statistics argument: a Tensor, an ndarray or None."""
    if value is None or type(value) is np.ndarray:
        return value
    if isinstance(value, Tensor):
        return value.data
    raise TypeError(
        f"{what}: argument '{name}' must be a minidl.Tensor, an ndarray or None, "
        f"not {type(value).__name__}"
    )


def _real(what, name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{what}: {name} must be a number, got {type(value).__name__} {value!r}")


def batch_norm_args(what, x, w, b, rm, rv, training, momentum, eps):
    """x (N, C, ...); weight, bias, running_mean, running_var (C,) or None, one float dtype."""
    if x.ndim < 2:
        raise ValueError(f"{what}: expected an input of shape (N, C, ...), got shape {x.shape}")
    if 0 in x.shape:
        raise ValueError(f"{what}: empty input of shape {x.shape}")
    float_image(what, x)
    same_float_dtype(what, input=x, weight=w, bias=b, running_mean=rm, running_var=rv)
    c = x.shape[1]
    for name, a in (("weight", w), ("bias", b), ("running_mean", rm), ("running_var", rv)):
        if a is not None and a.shape != (c,):
            raise ValueError(
                f"{what}: {name} shape {a.shape} does not match the {c} channels of input "
                f"shape {x.shape} (expected ({c},))"
            )
    if (rm is None) != (rv is None):
        raise ValueError(f"{what}: give both running_mean and running_var, or neither")
    _real(what, "momentum", momentum)
    _real(what, "eps", eps)
    if not (eps > 0 if training else eps >= 0):
        raise ValueError(
            f"{what}: eps must be {'> 0 when training' if training else '>= 0'}, got {eps}"
        )
    if training:
        if x.size // c <= 1:
            raise ValueError(
                f"{what}: expected more than 1 value per channel when training, "
                f"got input shape {x.shape}"
            )
        if rm is not None and not (rm.flags.writeable and rv.flags.writeable):
            raise ValueError(f"{what}: running_mean and running_var must be writeable arrays")
    elif rm is None:
        raise ValueError(f"{what}: running_mean and running_var are required when not training")
