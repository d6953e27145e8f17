"""How conv2d picks its kernels, as ``torch.backends``: measured, fixed, or tabled.

- ``autotune(True)``: the first call of each new layer shape in the process times every
  eligible path of each pass (as ``torch.backends.cudnn.benchmark``) and keeps the
  fastest for that shape; the first call is slower, and the choice can differ from run
  to run when timings are close (results then differ in the last bits).
- ``deterministic(True)``: one fixed path for every pass everywhere (im2col + GEMM), so
  the results do not depend on timings, tables or the CPU's instruction set (only on
  the BLAS kernel scipy's OpenBLAS picks for the CPU: identical on machines where it
  picks the same one).  Wins over ``autotune``.
- neither (the default): the table ``python -m minidl tune`` wrote for this CPU, for the
  layers it names, else the built-in rule.  The same table gives the same choice, so a
  seeded ``minidl train`` is bit-identical run to run on one machine.
"""

from __future__ import annotations

from minidl.ops import conv_plan, conv_tune  # noqa: F401  (conv_tune installs the table)

_autotune = False
_deterministic = False


def _apply() -> None:
    if _deterministic:
        conv_plan.set_mode("deterministic")
    elif _autotune:
        conv_plan.set_mode("autotune")
    else:
        conv_plan.set_mode("table")


def autotune(enabled: bool | None = None) -> bool:
    """Switch per-shape timing on or off (with no argument: only report); returns the
    setting now in force."""
    global _autotune
    if enabled is not None:
        if not isinstance(enabled, bool):
            raise TypeError(f"autotune: enabled must be a bool, got {type(enabled).__name__}")
        _autotune = enabled
        _apply()
    return _autotune


def deterministic(enabled: bool | None = None) -> bool:
    """Switch the one-fixed-path mode on or off (with no argument: only report); returns
    the setting now in force."""
    global _deterministic
    if enabled is not None:
        if not isinstance(enabled, bool):
            raise TypeError(f"deterministic: enabled must be a bool, got {type(enabled).__name__}")
        _deterministic = enabled
        _apply()
    return _deterministic


def use_deterministic_algorithms(mode: bool) -> None:
    """As ``torch.use_deterministic_algorithms``: ``deterministic(mode)``."""
    deterministic(mode)


def are_deterministic_algorithms_enabled() -> bool:
    """As ``torch.are_deterministic_algorithms_enabled``."""
    return _deterministic
