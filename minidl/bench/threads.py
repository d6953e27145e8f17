"""Set one thread count for minidl, PyTorch and numpy's BLAS at once.

Only numpy's own BLAS is touched here: scipy's BLAS, which minidl's kernels call from
inside their OpenMP loops, is pinned to one thread by minidl itself (minidl._threads), and
a global threadpool_limits would undo that pin.
"""

import contextlib


def _numpy_blas_controllers():
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return []
    return [
        lib
        for lib in ThreadpoolController().select(user_api="blas").lib_controllers
        if "numpy" in (lib.filepath or "").replace("\\", "/").lower()
    ]


@contextlib.contextmanager
def thread_count(n, torch=None):
    """Within the block minidl, ``torch`` (the module, if given) and numpy's BLAS use at
    most ``n`` threads; the previous settings come back afterwards."""
    import minidl

    previous_minidl = minidl.get_num_threads()
    previous_torch = torch.get_num_threads() if torch is not None else None
    numpy_blas = [(lib, lib.num_threads) for lib in _numpy_blas_controllers()]
    minidl.set_num_threads(n)
    if torch is not None:
        torch.set_num_threads(n)
    for lib, _ in numpy_blas:
        lib.set_num_threads(n)
    try:
        yield
    finally:
        minidl.set_num_threads(previous_minidl)
        if torch is not None:
            torch.set_num_threads(previous_torch)
        for lib, threads in numpy_blas:
            lib.set_num_threads(threads)
