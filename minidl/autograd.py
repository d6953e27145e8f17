"""Tensor and the reverse-mode tape.

Every differentiable op computes its forward with numpy (or a kernel) and calls
``record(out_data, inputs, backward)``. When grad mode is on and some input requires a
gradient, ``record`` creates one tape entry (the inputs, a backward closure and a sequence
number) and returns the output Tensor pointing at it. ``Tensor.backward()`` collects the
entries the output depends on, replays them in decreasing sequence number (reverse
recording order), accumulates into the leaves' ``.grad`` and frees each entry it used.

Nothing global holds an entry: a forward pass that is never differentiated is freed by
reference counting when its output goes away. Grad mode is per thread.
"""

from __future__ import annotations

import builtins
import functools
import itertools
import operator
import sys
import threading
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar, Union

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

# backward(grad_out) -> one gradient (or None) per input of the op
Backward = Callable[[np.ndarray], tuple[Optional[np.ndarray], ...]]

__all__ = [
    "Tensor",
    "check_inplace",
    "backward",
    "grad",
    "enable_grad",
    "is_grad_enabled",
    "is_tensor",
    "no_grad",
    "record",
    "set_grad_enabled",
    "tensor",
]


class _GradMode(threading.local):
    enabled = True  # class attribute: the default each new thread starts with


_grad_mode = _GradMode()

# Sequence numbers only need to increase along every path of the graph. One global
# counter (next() on itertools.count is atomic under the GIL) gives that even when a
# graph is built partly in one thread and partly in another.
_sequence = itertools.count()


def is_grad_enabled() -> bool:
    """True when ops record onto the tape in this thread."""
    return _grad_mode.enabled


_Func = TypeVar("_Func", bound=Callable[..., Any])
# what a binary Tensor op takes as its other operand; the dims of a reduction
TensorLike = Union["Tensor", np.ndarray, float, int, bool]
Dims = Union[int, tuple[int, ...], None]


class set_grad_enabled:
    """Context manager / decorator switching recording on or off in this thread."""

    def __init__(self, mode: bool = True) -> None:
        self._mode = bool(mode)
        self._saved: list[bool] = []

    def __enter__(self) -> set_grad_enabled:
        self._saved.append(_grad_mode.enabled)
        _grad_mode.enabled = self._mode
        return self

    def __exit__(self, *exc: object) -> None:
        _grad_mode.enabled = self._saved.pop()

    def __call__(self, func: _Func) -> _Func:
        mode = self._mode

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(mode):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class no_grad(set_grad_enabled):
    """``with minidl.no_grad():`` or ``@minidl.no_grad()``: nothing is recorded inside."""

    def __init__(self) -> None:
        super().__init__(False)


class enable_grad(set_grad_enabled):
    """Switch recording back on inside a ``no_grad`` block."""

    def __init__(self) -> None:
        super().__init__(True)


class _Entry:
    """One recorded op: its inputs, the closure computing their gradients, its order."""

    __slots__ = ("__weakref__", "backward", "inputs", "seq")
    inputs: tuple[Tensor, ...] | None  # None once freed
    backward: Backward | None

    def __init__(self, inputs: tuple[Tensor, ...], backward: Backward, seq: int) -> None:
        self.inputs = inputs
        self.backward = backward
        self.seq = seq

    @property
    def name(self) -> str | None:
        """The op that recorded this entry: the function its backward is defined in
        ("linear" for ``linear.<locals>.backward``, "conv2d" for ``_conv2d.<locals>...``);
        None once the entry is freed."""
        if self.backward is None:
            return None
        qualname = getattr(self.backward, "__qualname__", type(self.backward).__name__)
        return qualname.rsplit(".<locals>", 1)[0].rsplit(".<locals>.", 1)[-1].lstrip("_")

    def __repr__(self) -> str:
        if self.backward is None:
            return f"<tape entry #{self.seq} (freed)>"
        return f"<tape entry #{self.seq} {self.name} (live)>"


_DEFAULT_FLOAT = np.dtype(np.float32)


def _as_array(data: Any, dtype: DTypeLike | None = None, copy: bool = False) -> np.ndarray:
    """ndarray for ``data`` with minidl's dtype rules (Python floats -> float32)."""
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            raise TypeError(
                f"dtype must be a numpy or minidl dtype (minidl.float32, ...), got {dtype!r}"
            ) from None
        return np.array(data, dtype=dtype, copy=True) if copy else np.asarray(data, dtype=dtype)
    if isinstance(data, (np.ndarray, np.generic)):
        return np.array(data, copy=True) if copy else np.asarray(data)
    arr = np.asarray(data)
    if arr.dtype == np.float64:
        arr = arr.astype(_DEFAULT_FLOAT)
    elif arr.dtype.kind not in "biuf":
        raise TypeError(f"cannot make a tensor from data of dtype {arr.dtype}")
    return arr


class Tensor:
    """An ndarray plus what the tape needs: ``.data``, ``.grad``, ``.requires_grad``.

    ``Tensor(data, requires_grad=False)`` wraps ``data`` without copying when it is
    already an ndarray (a Tensor argument shares its array); ``minidl.tensor`` copies.
    Python floats become float32, Python ints int64; float ndarrays keep their dtype.
    Only floating-point tensors may require a gradient.
    """

    __slots__ = ("__weakref__", "_entry", "data", "grad", "requires_grad")
    __array_priority__ = 1000  # ndarray <op> Tensor defers to Tensor's reflected op
    data: np.ndarray
    grad: np.ndarray | None
    requires_grad: bool
    _entry: _Entry | None

    def __init__(
        self, data: ArrayLike | Tensor, requires_grad: bool = False, dtype: DTypeLike | None = None
    ) -> None:
        self.data = _as_array(data, dtype)
        self.grad = None
        self._entry = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # ---- attributes -------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def is_leaf(self) -> bool:
        return self._entry is None

    @property
    def grad_fn(self) -> _Entry | None:
        """The tape entry that produced this tensor (None for leaves)."""
        return self._entry

    def size(self, dim: int | None = None) -> tuple[int, ...] | int:
        shape = self.data.shape
        if dim is None:
            return shape
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
            raise TypeError(f"size: dim must be an int, got {dim!r}")
        n = len(shape)
        if not -builtins.max(n, 1) <= dim < builtins.max(n, 1) or n == 0:
            raise IndexError(f"size: dim {dim} out of range for a tensor with {n} dimensions")
        return shape[dim]

    def dim(self) -> int:
        return self.data.ndim

    def numel(self) -> int:
        return self.data.size

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(
                f"only floating-point tensors can require gradients, got dtype {self.data.dtype}"
            )
        self.requires_grad = bool(requires_grad)
        return self

    # ---- conversions ------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        return self.data

    def __array__(self, dtype: DTypeLike | None = None, copy: bool | None = None) -> np.ndarray:
        if dtype is None:
            return self.data
        return self.data.astype(dtype, copy=False)

    def item(self) -> builtins.float | builtins.int | bool:
        if self.data.size != 1:
            raise ValueError(
                "only one-element tensors can be converted to Python scalars, "
                f"got shape {self.data.shape}"
            )
        return self.data.item()

    def __float__(self) -> builtins.float:
        return float(self.item())

    def __int__(self) -> builtins.int:
        return int(self.item())

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise RuntimeError(
                f"the truth value of a tensor with {self.data.size} elements is ambiguous"
            )
        return bool(self.data.item())

    def __index__(self) -> builtins.int:
        if self.data.dtype.kind not in "iu" or self.data.size != 1:
            raise TypeError("only integer tensors of a single element can be used as an index")
        return int(self.data.item())

    def detach(self) -> Tensor:
        """A new leaf sharing this tensor's data, outside the graph."""
        return Tensor(self.data)

    def zero_(self) -> Tensor:
        check_inplace(self, "zero_")
        self.data[...] = 0
        return self

    def fill_(self, value: builtins.float | Tensor) -> Tensor:
        check_inplace(self, "fill_")
        self.data[...] = value.item() if isinstance(value, Tensor) else value
        return self

    def copy_(self, other: Tensor | ArrayLike) -> Tensor:
        check_inplace(self, "copy_")
        self.data[...] = _as_array(other)
        return self

    __hash__ = object.__hash__

    def __format__(self, spec: str) -> str:
        """``f"{loss:.4f}"`` formats a one-element tensor's value."""
        if self.data.size == 1 and (self.data.ndim == 0 or spec):
            return format(self.data.item(), spec)
        if spec:
            raise TypeError(
                f"unsupported format string {spec!r} for a tensor of shape {self.data.shape} "
                "(only one-element tensors take a format spec)"
            )
        return str(self)

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        extra = ""
        if self.data.dtype != _DEFAULT_FLOAT and self.data.dtype != np.int64:
            extra += f", dtype={self.data.dtype}"
        if self._entry is not None:
            extra += ", grad_fn=<tape entry>"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    # ---- autograd ---------------------------------------------------------------
    def backward(
        self,
        gradient: Tensor | ArrayLike | None = None,
        retain_graph: bool | None = None,
        create_graph: bool = False,
        *,
        grad: Tensor | ArrayLike | None = None,
    ) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (see ``backward``).

        ``grad=`` is an alias of PyTorch's ``gradient=``.
        """
        backward(self, gradient, retain_graph, create_graph, gradient=grad)

    def retain_grad(self) -> None:
        """Keep this non-leaf's gradient in ``.grad`` on backward (a no-op on leaves)."""
        if not self.requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self._entry is not None:
            _hooks_of(self).retain = weakref.ref(self)

    @property
    def retains_grad(self) -> bool:
        h = _hooked.get(id(self._entry)) if self._entry is not None else None
        return h is not None and h.retain is not None

    def register_hook(self, hook: Callable[[Tensor], Tensor | np.ndarray | None]) -> Any:
        """Call ``hook(grad)`` with this tensor's gradient on every backward; a returned
        Tensor or ndarray replaces the gradient. Returns a handle with ``remove()``."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if not callable(hook):
            raise TypeError(f"register_hook: hook must be callable, got {type(hook).__name__}")
        hooks = _hooks_of(self)
        hooks.fns.append(hook)
        return _HookHandle(hooks, hook)

    # The differentiable methods (+, -, exp, sum, reshape, ...) are attached by
    # minidl.ops, bound straight to its op functions: this module owns no op. Their
    # signatures, for type checkers only:
    if TYPE_CHECKING:

        def __add__(self, other: TensorLike) -> Tensor: ...
        def __radd__(self, other: TensorLike) -> Tensor: ...
        def __sub__(self, other: TensorLike) -> Tensor: ...
        def __rsub__(self, other: TensorLike) -> Tensor: ...
        def __mul__(self, other: TensorLike) -> Tensor: ...
        def __rmul__(self, other: TensorLike) -> Tensor: ...
        def __truediv__(self, other: TensorLike) -> Tensor: ...
        def __rtruediv__(self, other: TensorLike) -> Tensor: ...
        def __pow__(self, other: TensorLike) -> Tensor: ...
        def __rpow__(self, other: TensorLike) -> Tensor: ...
        def __matmul__(self, other: TensorLike) -> Tensor: ...
        def __rmatmul__(self, other: TensorLike) -> Tensor: ...
        def __neg__(self) -> Tensor: ...
        def __pos__(self) -> Tensor: ...
        def __abs__(self) -> Tensor: ...
        def __getitem__(self, index: Any) -> Tensor: ...
        def __setitem__(self, index: Any, value: TensorLike) -> None: ...
        def __lt__(self, other: Any) -> Tensor: ...
        def __le__(self, other: Any) -> Tensor: ...
        def __gt__(self, other: Any) -> Tensor: ...
        def __ge__(self, other: Any) -> Tensor: ...
        def __eq__(self, other: object) -> Tensor: ...  # type: ignore[override]
        def __ne__(self, other: object) -> Tensor: ...  # type: ignore[override]
        def add(self, other: TensorLike) -> Tensor: ...
        def sub(self, other: TensorLike) -> Tensor: ...
        def mul(self, other: TensorLike) -> Tensor: ...
        def div(self, other: TensorLike) -> Tensor: ...
        def matmul(self, other: TensorLike) -> Tensor: ...
        def neg(self) -> Tensor: ...
        def abs(self) -> Tensor: ...
        def exp(self) -> Tensor: ...
        def log(self) -> Tensor: ...
        def sqrt(self) -> Tensor: ...
        def pow(self, exponent: TensorLike) -> Tensor: ...
        def clamp(self, min: TensorLike | None = None, max: TensorLike | None = None) -> Tensor: ...
        def clip(self, min: TensorLike | None = None, max: TensorLike | None = None) -> Tensor: ...
        def sum(
            self,
            dim: Dims = None,
            keepdim: builtins.bool = False,
            *,
            axis: Dims = None,
            keepdims: builtins.bool | None = None,
        ) -> Tensor: ...
        def mean(
            self,
            dim: Dims = None,
            keepdim: builtins.bool = False,
            *,
            axis: Dims = None,
            keepdims: builtins.bool | None = None,
        ) -> Tensor: ...
        def max(self, dim: builtins.int | None = None, keepdim: builtins.bool = False) -> Any: ...
        def min(self, dim: builtins.int | None = None, keepdim: builtins.bool = False) -> Any: ...
        def amax(self, dim: Dims = (), keepdim: builtins.bool = False) -> Tensor: ...
        def amin(self, dim: Dims = (), keepdim: builtins.bool = False) -> Tensor: ...
        def argmax(
            self, dim: builtins.int | None = None, keepdim: builtins.bool = False
        ) -> Tensor: ...
        def argmin(
            self, dim: builtins.int | None = None, keepdim: builtins.bool = False
        ) -> Tensor: ...
        def var(
            self,
            dim: Dims | builtins.bool = None,
            unbiased: builtins.bool | None = None,
            keepdim: builtins.bool = False,
            *,
            correction: builtins.float | None = None,
        ) -> Tensor: ...
        def std(
            self,
            dim: Dims | builtins.bool = None,
            unbiased: builtins.bool | None = None,
            keepdim: builtins.bool = False,
            *,
            correction: builtins.float | None = None,
        ) -> Tensor: ...
        def norm(
            self, p: builtins.float | str = "fro", dim: Dims = None, keepdim: builtins.bool = False
        ) -> Tensor: ...
        def unsqueeze(self, dim: builtins.int) -> Tensor: ...
        def squeeze(self, dim: Dims = None) -> Tensor: ...
        def expand(self, *sizes: Any) -> Tensor: ...
        def repeat(self, *sizes: Any) -> Tensor: ...
        def contiguous(self) -> Tensor: ...
        def t(self) -> Tensor: ...
        @property
        def mT(self) -> Tensor: ...
        def add_(self, other: TensorLike, *, alpha: builtins.float = 1) -> Tensor: ...
        def mul_(self, other: TensorLike) -> Tensor: ...
        def long(self) -> Tensor: ...
        def int(self) -> Tensor: ...
        def bool(self) -> Tensor: ...
        def tolist(self) -> Any: ...
        def reshape(self, *shape: Any) -> Tensor: ...
        def view(self, *shape: Any) -> Tensor: ...
        def flatten(self, start_dim: builtins.int = 0, end_dim: builtins.int = -1) -> Tensor: ...
        def transpose(self, dim0: builtins.int, dim1: builtins.int) -> Tensor: ...
        def permute(self, *dims: Any) -> Tensor: ...
        @property
        def T(self) -> Tensor: ...
        def to(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def float(self) -> Tensor: ...
        def double(self) -> Tensor: ...
        def relu(self) -> Tensor: ...
        def sigmoid(self) -> Tensor: ...
        def tanh(self) -> Tensor: ...
        def softmax(self, dim: builtins.int) -> Tensor: ...
        def log_softmax(self, dim: builtins.int) -> Tensor: ...
        def clone(self) -> Tensor: ...


class _Hooks:
    """The hooks of one tensor, and for a non-leaf whether it retains its gradient."""

    __slots__ = ("fns", "owner", "retain")

    def __init__(self, owner: weakref.ref) -> None:
        self.fns: list[Callable] = []
        self.owner = owner  # the leaf Tensor or the non-leaf's entry; its death unregisters
        self.retain: weakref.ref | None = None  # the non-leaf Tensor whose .grad is kept


# id(leaf Tensor or non-leaf's entry) -> _Hooks. Keyed by id (Tensor's == is elementwise);
# each key's weakref callback removes it before the id can be reused. backward() looks
# here only when it is non-empty, so unused hooks cost nothing.
_hooked: dict[int, _Hooks] = {}


def _hooks_of(t: Tensor) -> _Hooks:
    key: Any = t if t._entry is None else t._entry
    h = _hooked.get(id(key))
    if h is None:
        k = id(key)
        h = _Hooks(weakref.ref(key, lambda _ref, k=k: _hooked.pop(k, None)))
        _hooked[k] = h
    return h


class _HookHandle:
    """What ``register_hook`` returns: ``remove()`` unregisters the hook."""

    __slots__ = ("_fn", "_hooks")

    def __init__(self, hooks: _Hooks, fn: Callable) -> None:
        self._hooks = hooks
        self._fn = fn

    def remove(self) -> None:
        fns = self._hooks.fns
        for i, f in enumerate(fns):
            if f is self._fn:
                del fns[i]
                break


def check_inplace(t: Tensor, what: str) -> None:
    """PyTorch's rule for in-place ops: not on a leaf that requires grad (unless under
    ``no_grad``); minidl also refuses them on a recorded non-leaf, whose saved values
    the tape could not protect."""
    if t.requires_grad and _grad_mode.enabled:
        if t._entry is None:
            raise RuntimeError(
                "a leaf Variable that requires grad is being used in an in-place operation."
            )
        raise RuntimeError(
            f"{what}: in-place operations on a tensor recorded on the tape are not supported "
            "(the backward of the op that made it may need its values); use the "
            "out-of-place op"
        )


def is_tensor(obj: object) -> bool:
    """True for a minidl Tensor (a Parameter too), as ``torch.is_tensor``.

    The one test of what counts as a tensor; the ops write it inline as
    ``isinstance(x, Tensor)`` where a function call would cost more than the test.
    """
    return isinstance(obj, Tensor)


def tensor(
    data: ArrayLike | Tensor, requires_grad: bool = False, dtype: DTypeLike | None = None
) -> Tensor:
    """A new leaf Tensor holding a copy of ``data`` (like ``torch.tensor``)."""
    t = Tensor.__new__(Tensor)
    t.data = _as_array(data, dtype, copy=True)
    t.grad = None
    t._entry = None
    t.requires_grad = False
    if requires_grad:
        t.requires_grad_(True)
    return t


def record(out_data: ArrayLike, inputs: tuple[Tensor, ...], backward: Backward) -> Tensor:
    """The output Tensor of an op, recorded on the tape when a gradient is needed.

    inputs: tuple of Tensors. backward(grad_out) -> tuple with exactly one ndarray
    (shaped like that input) or None per input, checked on every replay; it is called at
    most once unless retain_graph. The op's name in error messages is the function
    ``backward`` is defined in.
    """
    if type(out_data) is not np.ndarray:
        out_data = np.asarray(out_data)
    out = Tensor.__new__(Tensor)
    out.data = out_data
    out.grad = None
    if _grad_mode.enabled:
        for t in inputs:
            if t.requires_grad:
                out.requires_grad = True
                out._entry = _Entry(inputs, backward, next(_sequence))
                return out
    out.requires_grad = False
    out._entry = None
    return out


_FREED = (
    "Trying to backward through the graph a second time (or directly access saved "
    "tensors after they have already been freed). Specify retain_graph=True if you "
    "need to backward through the graph a second time."
)


def _accumulate_leaf(leaf: Tensor, g: np.ndarray) -> None:
    if g.shape != leaf.data.shape:  # an op's backward returned a wrongly-shaped gradient
        raise RuntimeError(
            f"internal error: gradient of shape {g.shape} for a tensor of shape {leaf.data.shape}"
        )
    if leaf.grad is None:
        leaf.grad = np.array(g, dtype=leaf.data.dtype, copy=True)
    else:
        leaf.grad = leaf.grad + g


def _gradient_count_error(entry: _Entry, input_grads: object) -> str:
    n = len(entry.inputs)
    if type(input_grads) is tuple:
        k = len(input_grads)
        got = f"{k} gradient{'s' if k != 1 else ''}"
    else:
        got = f"a {type(input_grads).__name__}"
    return (
        f"the backward of {entry.name} returned {got} for its {n} input"
        f"{'s' if n != 1 else ''}: it must return a tuple of one gradient (or None) per input"
    )


def _seed_gradient(output: Tensor, grad: Tensor | ArrayLike | None) -> np.ndarray:
    """The gradient a backward pass starts from at ``output`` (1 for a one-element one)."""
    data = output.data
    if grad is None:
        if data.size != 1:
            raise RuntimeError(
                f"grad can be implicitly created only for scalar outputs; got an output of "
                f"shape {data.shape}: pass backward(gradient) with a gradient of that shape"
            )
        return np.ones(data.shape, data.dtype)
    grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad)
    if grad.shape != data.shape:
        raise ValueError(
            f"backward: grad has shape {grad.shape} but the output has shape {data.shape}"
        )
    if grad.dtype != data.dtype:
        grad = grad.astype(data.dtype)
    return grad


def _apply_hooks(hooks: _Hooks, g: np.ndarray, keep: bool) -> np.ndarray:
    """``g`` after the tensor's hooks, in registration order; kept in ``.grad`` when the
    tensor retains its gradient and ``keep``."""
    for fn in list(hooks.fns):
        new = fn(Tensor(g))
        if new is not None:
            new = np.asarray(new.data if isinstance(new, Tensor) else new)
            if new.shape != g.shape:
                raise RuntimeError(
                    f"hook {getattr(fn, '__name__', fn)!r} returned a gradient of shape "
                    f"{new.shape} for a gradient of shape {g.shape}"
                )
            g = new.astype(g.dtype, copy=False)
    if keep and hooks.retain is not None:
        t = hooks.retain()
        if t is not None:
            t.grad = g.copy() if t.grad is None else t.grad + g
    return g


def backward(
    output: Tensor,
    grad: Tensor | ArrayLike | None = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    *,
    gradient: Tensor | ArrayLike | None = None,
) -> None:
    """Reverse-mode pass from ``output``: replay its entries, newest first.

    grad (or gradient): the gradient of some scalar with respect to ``output`` (defaults
    to 1 for a one-element output; required otherwise). Leaves' ``.grad`` accumulate
    across calls. Entries used are freed unless ``retain_graph``.
    """
    if gradient is not None:
        if grad is not None:
            raise TypeError("backward: pass the gradient once, as gradient= or grad=")
        grad = gradient
    if create_graph:
        raise NotImplementedError("backward: create_graph=True (higher-order gradients)")
    if not output.requires_grad:
        raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
    _run([(output, _seed_gradient(output, grad))], bool(retain_graph), None)


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Tensor | ArrayLike | Sequence[Tensor | ArrayLike | None] | None = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...]:
    """The gradients of ``outputs`` with respect to each of ``inputs``, as a tuple of
    Tensors (None for an unused input when ``allow_unused``), as ``torch.autograd.grad``.

    Leaves' ``.grad`` are left alone. grad_outputs: one gradient per output (None: 1 for
    a one-element output). The graph is freed unless ``retain_graph``.
    """
    if create_graph:
        raise NotImplementedError("grad: create_graph=True (higher-order gradients)")
    outs = (outputs,) if isinstance(outputs, Tensor) else tuple(outputs)
    ins = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    for name, seq in (("outputs", outs), ("inputs", ins)):
        if not seq or not all(isinstance(t, Tensor) for t in seq):
            raise TypeError(f"grad: {name} must be a Tensor or a non-empty sequence of Tensors")
    if grad_outputs is None or isinstance(grad_outputs, (Tensor, np.ndarray)):
        gouts: tuple = (grad_outputs,) if len(outs) == 1 else (grad_outputs,) * len(outs)
        if grad_outputs is not None and len(outs) != 1:
            raise ValueError("grad: grad_outputs needs one gradient per output")
    else:
        gouts = tuple(grad_outputs)
    if len(gouts) != len(outs):
        raise ValueError(
            f"grad: got {len(gouts)} grad_outputs for {len(outs)} outputs (one per output)"
        )
    for t in itertools.chain(outs, ins):
        if not t.requires_grad:
            raise RuntimeError(
                "One of the differentiated Tensors does not require grad"
                if any(t is i for i in ins)
                else "element 0 of tensors does not require grad and does not have a grad_fn"
            )
    captured: dict[int, np.ndarray | None] = {}
    for t in ins:
        captured[id(t if t._entry is None else t._entry)] = None
    _run([(o, _seed_gradient(o, g)) for o, g in zip(outs, gouts)], bool(retain_graph), captured)
    result = []
    for t in ins:
        g = captured[id(t if t._entry is None else t._entry)]
        if g is None and not allow_unused:
            raise RuntimeError(
                "One of the differentiated Tensors appears to not have been used in the "
                "graph. Set allow_unused=True if this is the desired behavior."
            )
        result.append(None if g is None else Tensor(g))
    return tuple(result)


def _unshared_refcount() -> int:
    """sys.getrefcount of a gradient array that only ``_run``'s loop holds, measured with
    the same loop shape; an array with a higher count is held elsewhere too."""
    inputs = (None,)
    input_grads = (np.empty(1),)
    for _, gi in zip(inputs, input_grads):
        return _getrefcount(gi)
    return 0


_getrefcount = sys.getrefcount
_UNSHARED = _unshared_refcount()
_ndarray = np.ndarray


def _run(
    roots: list[tuple[Tensor, np.ndarray]],
    retain_graph: bool,
    captured: dict[int, np.ndarray | None] | None,
) -> None:
    """Replay the entries the roots depend on. ``captured`` (for ``grad``): id of a leaf or
    entry -> its gradient, filled in instead of touching any ``.grad``."""
    hooked = _hooked
    # the slow path (hooks, retain_grad, grad()) only when one is in use
    special = captured is not None or bool(hooked)
    leaf_grads: dict[int, list] | None = {} if special else None

    grads: dict[_Entry, np.ndarray] = {}
    entries = []
    seen = set()
    for t, g in roots:
        root = t._entry
        if root is None:
            if leaf_grads is None:
                _accumulate_leaf(t, g)
            else:
                _add_leaf_grad(leaf_grads, t, g)
            continue
        if root.backward is None:
            raise RuntimeError(_FREED)
        grads[root] = grads[root] + g if root in grads else g
        if root not in seen:
            seen.add(root)
            entries.append(root)
    del g

    # Entries the roots depend on; each input tensor's entry is reached once.
    stack = list(entries)
    while stack:
        for t in stack.pop().inputs:
            e = t._entry
            if e is not None and e not in seen:
                if e.backward is None:
                    raise RuntimeError(_FREED)
                seen.add(e)
                entries.append(e)
                stack.append(e)
    if len(entries) > 1:
        entries.sort(key=_seq_of, reverse=True)

    for e in entries:
        g = grads.pop(e, None)
        inputs = e.inputs
        if g is not None:
            if special:
                k = id(e)
                h = hooked.get(k)
                if h is not None:
                    g = _apply_hooks(h, g, captured is None)
                if captured is not None and k in captured:
                    captured[k] = g
            input_grads = e.backward(g)
            g = None
            if type(input_grads) is not tuple or len(input_grads) != len(inputs):
                raise RuntimeError(_gradient_count_error(e, input_grads))
            for t, gi in zip(inputs, input_grads):
                if gi is None or not t.requires_grad:
                    continue
                pe = t._entry
                if pe is None:
                    if leaf_grads is not None:
                        _add_leaf_grad(leaf_grads, t, gi)
                    elif (
                        t.grad is None
                        and type(gi) is _ndarray
                        and gi.base is None
                        and _getrefcount(gi) == _UNSHARED
                        and gi.dtype == t.data.dtype
                        and gi.shape == t.data.shape
                        and gi.flags.writeable
                    ):
                        # a leaf's first gradient, a fresh array nothing else holds: take it
                        # over (copying a big input's gradient made fwd+bwd up to 2x slower)
                        t.grad = gi
                    else:
                        _accumulate_leaf(t, gi)
                elif pe in grads:
                    grads[pe] = grads[pe] + gi
                else:
                    grads[pe] = gi
            input_grads = None
        if not retain_graph:
            e.inputs = None
            e.backward = None

    if leaf_grads:
        for k, (t, g) in leaf_grads.items():
            h = hooked.get(k)
            if h is not None:
                g = _apply_hooks(h, g, False)
            if captured is None:
                _accumulate_leaf(t, g)
            elif k in captured:
                captured[k] = g


def _add_leaf_grad(leaf_grads: dict[int, list], t: Tensor, g: np.ndarray) -> None:
    """Sum a leaf's gradients of one pass (its hooks see the total, as in PyTorch)."""
    if g.shape != t.data.shape:
        raise RuntimeError(
            f"internal error: gradient of shape {g.shape} for a tensor of shape {t.data.shape}"
        )
    slot = leaf_grads.get(id(t))
    if slot is None:
        leaf_grads[id(t)] = [t, g]
    else:
        slot[1] = slot[1] + g


_seq_of = operator.attrgetter("seq")
