"""The floating-point environment of minidl's threads: flushing denormals to zero."""

from minidl import _kernels
from minidl._threads import get_num_threads


def set_flush_denormal(mode: bool) -> bool:
    """Flush denormal floats to zero (FTZ and DAZ in MXCSR) or stop, as
    ``torch.set_flush_denormal``: on the calling thread and minidl's OpenMP threads (threads
    started later inherit it).  Returns False, changing nothing, where unsupported (not
    x86).  Off by default."""
    if not isinstance(mode, bool):
        raise TypeError(f"set_flush_denormal: mode must be a bool, got {type(mode).__name__}")
    return _kernels.set_flush_denormal(mode, max(get_num_threads(), 1))


class denormals_flushed:
    """``with denormals_flushed():`` FTZ and DAZ on for the calling thread inside the
    block, then as they were (the optimisers' updates: minidl.optim.Optimizer.step)."""

    __slots__ = ("_state",)

    def __enter__(self) -> None:
        self._state = _kernels.flush_denormal_enter()

    def __exit__(self, *exc: object) -> None:
        _kernels.flush_denormal_restore(self._state)
