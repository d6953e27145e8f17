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
import threading
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar, Union

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

# backward(grad_out) -> one gradient (or None) per input of the op
Backward = Callable[[np.ndarray], tuple[Optional[np.ndarray], ...]]

__all__ = [
    "Tensor",
    "backward",
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
        dtype = np.dtype(dtype)
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
        return self.data.shape if dim is None else self.data.shape[dim]

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
        self.data[...] = 0
        return self

    def fill_(self, value: builtins.float) -> Tensor:
        self.data[...] = value
        return self

    def copy_(self, other: Tensor | ArrayLike) -> Tensor:
        self.data[...] = _as_array(other)
        return self

    __hash__ = object.__hash__

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
    def backward(self, grad: Tensor | ArrayLike | None = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (see ``backward``)."""
        backward(self, grad, retain_graph)

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
        def sum(self, dim: Dims = None, keepdim: bool = False) -> Tensor: ...
        def mean(self, dim: Dims = None, keepdim: bool = False) -> Tensor: ...
        def max(self, dim: builtins.int | None = None, keepdim: bool = False) -> Any: ...
        def argmax(self, dim: builtins.int | None = None, keepdim: bool = False) -> Tensor: ...
        def reshape(self, *shape: Any) -> Tensor: ...
        def view(self, *shape: Any) -> Tensor: ...
        def flatten(self, start_dim: builtins.int = 0, end_dim: builtins.int = -1) -> Tensor: ...
        def transpose(self, dim0: builtins.int, dim1: builtins.int) -> Tensor: ...
        def permute(self, *dims: Any) -> Tensor: ...
        @property
        def T(self) -> Tensor: ...
        def to(self, dtype: DTypeLike) -> Tensor: ...
        def float(self) -> Tensor: ...
        def double(self) -> Tensor: ...
        def relu(self) -> Tensor: ...
        def sigmoid(self) -> Tensor: ...
        def tanh(self) -> Tensor: ...
        def softmax(self, dim: builtins.int) -> Tensor: ...
        def log_softmax(self, dim: builtins.int) -> Tensor: ...
        def clone(self) -> Tensor: ...


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


def backward(
    output: Tensor, grad: Tensor | ArrayLike | None = None, retain_graph: bool = False
) -> None:
    """Reverse-mode pass from ``output``: replay its entries, newest first.

    grad: the gradient of some scalar with respect to ``output`` (defaults to 1 for a
    one-element output; required otherwise). Leaves' ``.grad`` accumulate across calls.
    Entries used are freed unless ``retain_graph``.
    """
    if not output.requires_grad:
        raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
    data = output.data
    if grad is None:
        if data.size != 1:
            raise RuntimeError(
                f"grad can be implicitly created only for scalar outputs; got an output of "
                f"shape {data.shape}: pass backward(grad) with a gradient of that shape"
            )
        grad = np.ones(data.shape, data.dtype)
    else:
        grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad)
        if grad.shape != data.shape:
            raise ValueError(
                f"backward: grad has shape {grad.shape} but the output has shape {data.shape}"
            )
        if grad.dtype != data.dtype:
            grad = grad.astype(data.dtype)

    root = output._entry
    if root is None:
        _accumulate_leaf(output, grad)
        return
    if root.backward is None:
        raise RuntimeError(_FREED)

    # Entries the output depends on; each input tensor's entry is reached once.
    entries = [root]
    seen = {root}
    stack = [root]
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

    grads = {root: grad}
    del grad
    for e in entries:
        g = grads.pop(e, None)
        inputs = e.inputs
        if g is not None:
            input_grads = e.backward(g)
            g = None
            if type(input_grads) is not tuple or len(input_grads) != len(inputs):
                raise RuntimeError(_gradient_count_error(e, input_grads))
            for t, gi in zip(inputs, input_grads):
                if gi is None or not t.requires_grad:
                    continue
                pe = t._entry
                if pe is None:
                    _accumulate_leaf(t, gi)
                elif pe in grads:
                    grads[pe] = grads[pe] + gi
                else:
                    grads[pe] = gi
            input_grads = None
        if not retain_graph:
            e.inputs = None
            e.backward = None


_seq_of = operator.attrgetter("seq")
