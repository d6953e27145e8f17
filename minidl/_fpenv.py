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
