"""Which kernel runs each pass of a 2-D convolution: one frozen plan per layer shape.

A conv2d has three passes: the forward, the input gradient ("input") and the weight
gradient ("weight").  Each runs on one of four kernel families (minidl._kernels):

- ``im2col``: im2col + GEMM, for every layer (any stride, dilation, groups, dtype);
- ``winograd``: F(2x2, 3x3) or F(4x4, 3x3) (``tile`` 2 or 4) and F(4x4, 5x5) (``tile``
  4) for 3x3 / 5x5 kernels, stride 1, dilation 1, one group, padding <= k - 1: fewer
  multiplications than GEMM, but transforms and a fixed cost per call; F(4x4, 3x3) on
  4x4 planes with padding 1 also has a channel-major ``layout`` ("channels": vectors
  across channels instead of tiles, float32 on AVX2 or AVX-512; it alone pools its
  output in registers, ops.fused);
- ``direct``: float32, stride 1, dilation 1, one group, on a CPU with AVX2 + FMA or
  AVX-512: no im2col, but lanes wasted on rounded-up blocks; the input gradient lays
  dY out in one of three ``layout`` s ("pitch", "rows", "half rows": direct_conv.h);
- ``depthwise``: groups = C_in with weight (k*C, 1, kh, kw) (any stride, padding,
  dilation, dtype): one plane per filter, no GEMM (minidl/_kernels/_depthwise.pyx).

The forward can also keep what it made of x for the weight gradient (``keep_input``):
im2col's cols when both run on im2col, Winograd's transformed input V when both run on
Winograd with one tile.

``plan_conv2d`` decides with the thresholds below (what each trades is on its line; the
timings behind them are in benchmarks/conv_dispatch.md, and
benchmarks/conv_dispatch_tables.py measures them again).  It asks the kernels for facts
only (the CPU level, a layout's vector width and lane efficiency, where the channel-major
Winograd fits and its vector width, the size of a kept V).
``candidates`` lists every path each pass can run at a shape; ``forced(plan)`` makes
every conv2d in a block run a given plan (tests, benchmarks, a measured calibration).
F.conv2d looks plans up by shape (``cached_plan``): one dict lookup per call.

Measured dispatch: ``python -m minidl tune`` times ``candidates`` on this machine and
writes the fastest per layer to a table (minidl.ops.conv_tune); a new shape takes the
table's plan when it names the layer, else the built-in rule.  minidl.backends switches
to timing each new shape in-process (``autotune``) or to im2col everywhere
(``deterministic``).  Either way the choice is made once per shape and remembered.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import numpy as np

from minidl import _kernels as K
from minidl._threads import get_num_threads
from minidl.ops import _validation as V

Path = Literal["im2col", "winograd", "direct", "depthwise"]
PATHS: tuple[Path, ...] = ("im2col", "winograd", "direct", "depthwise")
Layout = Literal["pitch", "rows", "half rows", "channels"]
PASSES = ("forward", "input", "weight")
LAYOUTS: tuple[Layout, ...] = ("pitch", "rows", "half rows")  # the direct input gradient's
CHANNELS: Layout = "channels"  # Winograd F(4x4, 3x3)'s channel-major layout

# ---- thresholds (built-in defaults) ------------------------------------------------
# r = C*F/(C+F): Winograd saves GEMM work ~C*F per output and pays transforms ~C+F.

# Keep im2col's cols up to this size: the weight gradient skips its im2col; bigger buffers fault.
MAX_SAVED_COLS_BYTES = 2 * 2**20
# Keep Winograd's V up to this size: the weight gradient skips a transform; bigger buffers fault.
MAX_KEPT_WINOGRAD_BYTES = 2 * 2**20
# 3x3 Winograd from this r per pass: 2.25x fewer multiply-adds against transforms per output.
WINOGRAD_MIN_CHANNEL_RATIO = {"forward": 16.0, "input": 8.0, "weight": 5.0}
# Winograd from this work N*Ho*Wo*C*F per pass: below it, its fixed cost per call dominates.
WINOGRAD_MIN_WORK = {"forward": 2**18, "input": 2**18, "weight": 2**18}
# Winograd on planes that are one tile from this r: their transforms need no gather.
WINOGRAD_ONE_TILE_MIN_CHANNEL_RATIO = 1.25
# ... and from this batch: the weight transform, paid once per call, against N tiles.
WINOGRAD_ONE_TILE_MIN_BATCH = 16
# 5x5 Winograd from this r per pass: 6x fewer multiply-adds against 64 GEMMs and 8x8 transforms.
WINOGRAD5_MIN_CHANNEL_RATIO = {"forward": 16.0, "input": 8.0, "weight": 4.0}
# ... but the forward from this r on AVX-512, where Winograd loads its patches and gathers
# its weight transform in registers (elsewhere it gathers and copies).
WINOGRAD5_AVX512_FORWARD_RATIO = 4.0
# 5x5 Winograd forward and weight gradient on 2+ threads from at least this r: the direct
# kernels split small layers, Winograd's blocks do not.
WINOGRAD5_THREADED_RATIO = 8.0
# Channel-major Winograd on 4x4 planes from these (smaller, larger) channel counts per vector
# width: lanes across channels (and no gathers) against lanes across tiles.
WINOGRAD_CHANNEL_MAJOR_MIN_CHANNELS = {16: (16, 16), 8: (6, 16)}
# Direct kernels from this share of useful lanes per pass: no im2col against wasted lanes.
DIRECT_MIN_EFFICIENCY = {"forward": 0.75, "input": 0.45, "weight": 0.75}
# Direct kernels on planes of at least this many outputs: per-sample copies against the work.
DIRECT_MIN_OUTPUTS = 32
# Direct kernels from this work N*Ho*Wo*C*F*kh*kw per pass: GEMM's lower fixed cost below it.
DIRECT_MIN_WORK = {"forward": 0, "input": 2**21, "weight": 2**20}
# Half rows once rows fill more than this of a half vector: fewer lanes against close adds.
DIRECT_HALF_ROWS_MIN_FILL = 0.5


@dataclass(frozen=True, slots=True)
class PassPlan:
    """The kernel one pass runs on: ``path``, with Winograd's output ``tile`` side (2 or
    4; 0 otherwise) and a ``layout``: the direct input gradient's dY' layout (one of
    LAYOUTS), "channels" for Winograd F(4x4, 3x3) channel-major, "" otherwise."""

    path: Path
    tile: int = 0
    layout: Layout | Literal[""] = ""

    def __post_init__(self) -> None:
        if self.path not in PATHS:
            raise ValueError(f"PassPlan: path must be one of {PATHS}, got {self.path!r}")
        if not (self.tile in (2, 4) if self.path == "winograd" else self.tile == 0):
            raise ValueError(
                f"PassPlan: tile is 2 or 4 for winograd and 0 otherwise, got {self.path} "
                f"with tile {self.tile!r}"
            )
        allowed = {"direct": LAYOUTS, "winograd": (CHANNELS,) if self.tile == 4 else ()}
        if self.layout and self.layout not in allowed.get(self.path, ()):
            raise ValueError(
                f"PassPlan: layout is one of {LAYOUTS} for the direct input gradient, "
                f"{CHANNELS!r} or '' for winograd with tile 4, and '' otherwise, got "
                f"{self.path} (tile {self.tile}) with layout {self.layout!r}"
            )

    @property
    def channel_major(self) -> bool:
        """Winograd's channel-major layout."""
        return self.layout == CHANNELS

    @property
    def pools_as_it_goes(self) -> bool:
        """As a forward: its kernel can pool its output 2x2 as it makes it (ops.fused):
        the direct kernels and the channel-major Winograd."""
        return self.path == "direct" or self.channel_major

    def spreads_pooled(self, which: str) -> bool:
        """As pass ``which``: its kernel reads a 2x2 max pool's gradient and window codes
        itself, no unpooled dY made first: the channel-major Winograd's gradients and
        the direct weight gradient."""
        return self.channel_major or (self.path == "direct" and which == "weight")

    def describe(self, k: int) -> str:
        """e.g. "winograd F(4x4, 3x3)", "direct (rows)" for a k x k kernel."""
        if self.path == "winograd":
            major = ", channel-major" if self.channel_major else ""
            return f"winograd F({self.tile}x{self.tile}, {k}x{k}){major}"
        if self.path == "direct" and self.layout:
            return f"direct ({self.layout})"
        return self.path


IM2COL = PassPlan("im2col")
DIRECT = PassPlan("direct")
DEPTHWISE = PassPlan("depthwise")
WINOGRAD_CHANNEL_MAJOR = PassPlan("winograd", 4, CHANNELS)


@dataclass(frozen=True, slots=True)
class ConvPlan:
    """Per pass the kernel that runs it, and whether the forward keeps what it made of x
    (im2col's cols, Winograd's V) for the weight gradient."""

    forward: PassPlan
    input: PassPlan
    weight: PassPlan
    keep_input: bool = False

    def __post_init__(self) -> None:
        for name in PASSES:
            if not isinstance(getattr(self, name), PassPlan):
                raise TypeError(f"ConvPlan: {name} must be a PassPlan, got {getattr(self, name)!r}")
        if (self.input.path == "direct") != (self.input.layout in LAYOUTS):
            raise ValueError("ConvPlan: a direct input gradient needs a layout (and only it)")
        if self.forward.layout in LAYOUTS or self.weight.layout in LAYOUTS:
            raise ValueError("ConvPlan: only the input gradient has a dY layout")
        if self.keep_input and (
            self.forward != self.weight or self.forward.path not in ("im2col", "winograd")
        ):
            raise ValueError(
                "ConvPlan: keep_input needs the forward and the weight gradient on the same "
                f"im2col or Winograd path, got {self.forward} and {self.weight}"
            )

    def describe(self, k: int) -> str:
        """One line per pass, for a k x k kernel (what ``minidl info --conv-plan`` prints)."""
        kept = {"im2col": "its cols", "winograd": "its transformed input V"}
        lines = []
        for name in PASSES:
            line = f"  {name:8s} {getattr(self, name).describe(k)}"
            if name == "forward" and self.keep_input:
                line += f", keeps {kept[self.forward.path]} for the weight gradient"
            lines.append(line)
        return "\n".join(lines)


# ---- what can run ----------------------------------------------------------------


def _winograd_eligible(wshape, stride, padding, dilation, groups) -> bool:
    """3x3 or 5x5, stride 1, dilation 1, one group, padding <= k - 1 (the input gradient
    runs the forward with padding k - 1 - p)."""
    k = wshape[2]
    return (
        k in (3, 5)
        and wshape[3] == k
        and stride == (1, 1)
        and dilation == (1, 1)
        and groups == 1
        and padding[0] <= k - 1
        and padding[1] <= k - 1
    )


def _direct_eligible(dtype, stride, dilation, groups) -> bool:
    return (
        dtype == np.float32
        and stride == (1, 1)
        and dilation == (1, 1)
        and groups == 1
        and K.direct_level() > 0
    )


def _depthwise_eligible(ishape, wshape, groups) -> bool:
    """groups == C_in, weight (k*C, 1, kh, kw): every filter reads one channel (any
    stride, padding, dilation, float32 or float64)."""
    return groups == ishape[1] and wshape[1] == 1


def _channel_major_fits(ishape, wshape, dtype, padding) -> bool:
    """Winograd's channel-major layout can run every pass (its fact: F(4x4, 3x3) on 4x4
    planes with padding 1, float32, AVX2 or AVX-512)."""
    return K.winograd_channel_major_fits(
        tuple(ishape), tuple(wshape), padding=padding, tile=4, dtype=dtype
    )


def _half_rows_fit(wo: int) -> bool:
    """A dY row fits half a vector (what the half-rows layout needs)."""
    return 2 * wo <= K.direct_vector_width()


def candidates(
    input_shape: tuple[int, int, int, int],
    weight_shape: tuple[int, int, int, int],
    dtype: np.dtype | type = np.float32,
    stride: tuple[int, int] = (1, 1),
    padding: tuple[int, int] = (0, 0),
    dilation: tuple[int, int] = (1, 1),
    groups: int = 1,
) -> dict[str, tuple[PassPlan, ...]]:
    """{pass: every PassPlan that can run it} for input (N, C, H, W) and weight
    (F, C/groups, kh, kw), im2col first (the eligibility rules, no tuning)."""
    wshape = tuple(weight_shape)
    ho, wo = V.conv_output_size("conv2d", tuple(input_shape), wshape[2:], stride, padding, dilation)
    out = {name: [IM2COL] for name in PASSES}
    if _winograd_eligible(wshape, stride, padding, dilation, groups):
        tiles = (2, 4) if wshape[2] == 3 else (4,)
        winograd = [PassPlan("winograd", tile) for tile in tiles]
        if _channel_major_fits(input_shape, wshape, dtype, padding):
            winograd.append(WINOGRAD_CHANNEL_MAJOR)
        for name in PASSES:
            out[name] += winograd
    if _direct_eligible(np.dtype(dtype), stride, dilation, groups):
        out["forward"].append(DIRECT)
        out["weight"].append(DIRECT)
        layouts = LAYOUTS if _half_rows_fit(wo) else LAYOUTS[:2]
        out["input"] += [PassPlan("direct", layout=layout) for layout in layouts]
    if _depthwise_eligible(tuple(input_shape), wshape, groups):
        for name in PASSES:
            out[name].append(DEPTHWISE)
    return {name: tuple(plans) for name, plans in out.items()}


# ---- the built-in rule ----------------------------------------------------------


def winograd_tile(ho: int, wo: int) -> int:
    """The 3x3 output tile side r for an (ho, wo) output plane: the one with fewer GEMM
    multiplications per plane, ceil(ho/r) * ceil(wo/r) * (r + 2)^2; 2 on a tie (F(2x2,
    3x3) rounds less)."""
    two = ((ho + 1) // 2) * ((wo + 1) // 2) * 16
    four = ((ho + 3) // 4) * ((wo + 3) // 4) * 36
    return 4 if four < two else 2


def direct_input_layout(
    input_shape: tuple[int, int, int, int],
    weight_shape: tuple[int, int, int, int],
    padding: tuple[int, int],
) -> Layout:
    """The direct input gradient's dY' layout: the one with the most useful lanes (pitch
    on a tie), half rows only where rows fill their half vectors (DIRECT_HALF_ROWS_MIN_FILL)."""
    wo = input_shape[3] + 2 * padding[1] - weight_shape[3] + 1
    useful = {
        layout: K.direct_efficiency(input_shape, weight_shape, padding=padding, layout=layout)[
            "input"
        ]
        for layout in LAYOUTS[:2]
    }
    half_vector = K.direct_vector_width() / 2
    if _half_rows_fit(wo) and wo / half_vector > DIRECT_HALF_ROWS_MIN_FILL:
        half = K.direct_efficiency(input_shape, weight_shape, padding=padding, layout="half rows")
        if half["input"] > max(useful.values()):
            return "half rows"
    return "rows" if useful["rows"] > useful["pitch"] else "pitch"


def _winograd_pays(which, k, n, c, f, ho, wo, tile, plane, num_threads) -> bool:
    """Whether Winograd with ``tile`` pays for pass ``which``, whose output plane is
    ``plane``: one tile per plane, or else enough channels and work."""
    ratio = c * f / (c + f)
    if max(plane) <= tile:
        return ratio >= WINOGRAD_ONE_TILE_MIN_CHANNEL_RATIO and n >= WINOGRAD_ONE_TILE_MIN_BATCH
    if k == 3:
        floor = WINOGRAD_MIN_CHANNEL_RATIO[which]
    else:
        floor = WINOGRAD5_MIN_CHANNEL_RATIO[which]
        if which == "forward" and K.direct_level() == 2:
            floor = WINOGRAD5_AVX512_FORWARD_RATIO
        if which != "input" and num_threads > 1:
            floor = max(floor, WINOGRAD5_THREADED_RATIO)
    return ratio >= floor and n * ho * wo * c * f >= WINOGRAD_MIN_WORK[which]


def _channel_major_pays(c: int, f: int) -> bool:
    """Whether C and F fill the channel-major vectors (WINOGRAD_CHANNEL_MAJOR_MIN_CHANNELS)."""
    low, high = WINOGRAD_CHANNEL_MAJOR_MIN_CHANNELS.get(K.winograd_channel_major_lanes(), (0, 0))
    return bool(low) and min(c, f) >= low and max(c, f) >= high


def _winograd_passes(ishape, wshape, dtype, padding, ho, wo, num_threads) -> dict[str, PassPlan]:
    """The passes Winograd takes (each must pay), with their tiles: the forward and the
    weight gradient tile the output plane, the input gradient the input plane; all three
    channel-major where that fits and pays."""
    n, c, h, w = ishape
    f, _, k, _ = wshape
    planes = {"forward": (ho, wo), "input": (h, w), "weight": (ho, wo)}
    tiles = {which: winograd_tile(*plane) if k == 3 else 4 for which, plane in planes.items()}
    major = _channel_major_pays(c, f) and _channel_major_fits(ishape, wshape, dtype, padding)
    return {
        which: WINOGRAD_CHANNEL_MAJOR if major else PassPlan("winograd", tiles[which])
        for which in PASSES
        if _winograd_pays(which, k, n, c, f, ho, wo, tiles[which], planes[which], num_threads)
    }


def _direct_passes(ishape, wshape, padding, ho, wo) -> dict[str, PassPlan]:
    """The passes the direct kernels take: planes of >= DIRECT_MIN_OUTPUTS outputs, and
    per pass enough work and a useful share of the issued multiply-adds."""
    if ho * wo < DIRECT_MIN_OUTPUTS:
        return {}
    n, c = ishape[:2]
    f, _, kh, kw = wshape
    work = n * ho * wo * c * f * kh * kw
    layout = direct_input_layout(ishape, wshape, padding)
    useful = K.direct_efficiency(ishape, wshape, padding=padding, layout=layout)
    plans = {"forward": DIRECT, "input": PassPlan("direct", layout=layout), "weight": DIRECT}
    return {
        which: plans[which]
        for which in PASSES
        if useful[which] >= DIRECT_MIN_EFFICIENCY[which] and work >= DIRECT_MIN_WORK[which]
    }


_ALL_IM2COL = (ConvPlan(IM2COL, IM2COL, IM2COL, False), ConvPlan(IM2COL, IM2COL, IM2COL, True))
_ALL_DEPTHWISE = ConvPlan(DEPTHWISE, DEPTHWISE, DEPTHWISE)


def plan_conv2d(
    input_shape: tuple[int, int, int, int],
    weight_shape: tuple[int, int, int, int],
    dtype: np.dtype | type = np.float32,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    weight_grad: bool = True,
    num_threads: int | None = None,
) -> ConvPlan:
    """The plan F.conv2d runs for input (N, C, H, W) and weight (F, C/groups, kh, kw) of
    ``dtype`` (float32 or float64); ``weight_grad``: whether the weight gradient will be
    needed (training); ``num_threads``: the kernels' thread count (default: minidl's).

    Winograd takes each pass where it pays (WINOGRAD_*), else the direct kernels where
    enough of their lanes are useful (DIRECT_*), else im2col; an im2col forward keeps
    its cols when they are small (MAX_SAVED_COLS_BYTES) and then the weight gradient
    reads them on im2col too, unless it runs on the direct kernels; a Winograd forward
    keeps V for a Winograd weight gradient (MAX_KEPT_WINOGRAD_BYTES)."""
    what = "plan_conv2d"
    ishape, wshape = tuple(input_shape), tuple(weight_shape)
    if len(ishape) != 4 or len(wshape) != 4:
        raise ValueError(f"{what}: expected 4-D shapes, got input {ishape} and weight {wshape}")
    if min(ishape + wshape) < 1:
        raise ValueError(f"{what}: empty input or weight (shapes {ishape} and {wshape})")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"{what}: dtype must be float32 or float64, got {dtype}")
    stride, padding, dilation = V.hyper(what, stride, padding, dilation)
    if ishape[1] != wshape[1] * groups or wshape[0] % groups:
        raise ValueError(f"{what}: input {ishape} and weight {wshape} do not match groups={groups}")
    ho, wo = V.conv_output_size(what, ishape, wshape[2:], stride, padding, dilation)
    nt = get_num_threads() if num_threads is None else num_threads
    return _plan(ishape, wshape, dtype, stride, padding, dilation, groups, weight_grad, nt, ho, wo)


def _plan(ishape, wshape, dtype, stride, padding, dilation, groups, weight_grad, nt, ho, wo):
    """plan_conv2d on checked, normalised arguments."""
    # Depth-wise layers (groups = C > 1): one plane per filter beats C tiny per-group GEMMs.
    if groups > 1 and _depthwise_eligible(ishape, wshape, groups):
        return _ALL_DEPTHWISE
    if _winograd_eligible(wshape, stride, padding, dilation, groups):
        chosen = _winograd_passes(ishape, wshape, dtype, padding, ho, wo, nt)
    else:
        chosen = {}
    if _direct_eligible(dtype, stride, dilation, groups):
        chosen = {**_direct_passes(ishape, wshape, padding, ho, wo), **chosen}
    return compose(chosen, ishape, wshape, dtype, padding, weight_grad, ho, wo, True)


def compose(
    chosen, ishape, wshape, dtype, padding, weight_grad, ho, wo, kept_cols_first=False
) -> ConvPlan:
    """The ConvPlan of the passes ``chosen`` ({pass: PassPlan}, im2col for the others),
    with keep_input decided by MAX_SAVED_COLS_BYTES / MAX_KEPT_WINOGRAD_BYTES;
    ``kept_cols_first`` (the built-in rule): small cols move a direct forward to im2col."""
    n, c = ishape[:2]
    cols_fit = weight_grad and (
        c * wshape[2] * wshape[3] * n * ho * wo * dtype.itemsize <= MAX_SAVED_COLS_BYTES
    )
    if not chosen:  # most small layers: every pass on im2col
        return _ALL_IM2COL[cols_fit]
    forward, input_, weight = (chosen.get(which, IM2COL) for which in PASSES)
    if kept_cols_first:
        movable = forward.path != "winograd" and weight.path != "direct"
    else:
        movable = forward.path == weight.path == "im2col"
    if cols_fit and movable:
        return ConvPlan(IM2COL, input_, IM2COL, True)
    keep = (
        weight_grad
        and forward == weight
        and forward.path == "winograd"
        and K.winograd_kept_input_elements(ishape, wshape, padding=padding, tile=forward.tile)
        * dtype.itemsize
        <= MAX_KEPT_WINOGRAD_BYTES
    )
    return ConvPlan(forward, input_, weight, keep)


# ---- what F.conv2d calls ----------------------------------------------------------

_PLANS: dict[tuple, ConvPlan] = {}
_MAX_PLANS = 4096
_forced: ConvPlan | None = None


def cached_plan(
    input_shape: tuple[int, int, int, int],
    weight_shape: tuple[int, int, int, int],
    dtype: np.dtype,
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
    weight_grad: bool,
    num_threads: int,
    pooled: bool = False,
) -> ConvPlan:
    """plan_conv2d for F.conv2d's checked arguments (pairs, a valid layer), remembered
    per shape; the forced plan inside ``forced``.  ``pooled``: the layer's output goes
    straight into a fused 2x2 max pool (ops.fused), a layer of its own for the measured
    dispatch, which times its forward with the pool and its gradients from the pooled
    one (the built-in rule does not tell them apart)."""
    if _forced is not None:
        check_plan(_forced, input_shape, weight_shape, dtype, stride, padding, dilation, groups)
        return _forced
    key = (
        input_shape,
        weight_shape,
        dtype,
        stride,
        padding,
        dilation,
        groups,
        weight_grad,
        num_threads,
        pooled,
    )
    plan = _PLANS.get(key)
    if plan is None:
        if len(_PLANS) >= _MAX_PLANS:
            _PLANS.clear()
        plan = _PLANS[key] = _choose(*key)
    return plan


def _choose(ishape, wshape, dtype, stride, padding, dilation, groups, weight_grad, nt, pooled):
    """A new shape's plan: im2col everywhere when deterministic; measured now under
    autotune; the table's when it names the layer; else the built-in rule."""
    if _mode == "deterministic":
        return _ALL_IM2COL[False]
    layer = (ishape, wshape, dtype, stride, padding, dilation, groups, weight_grad, nt, pooled)
    if _measured is not None:
        _, layer_key, measure = _measured
        if _mode == "autotune":
            return measure(*layer)[0]
        plan = _loaded_table().get(layer_key(*layer))
        if plan is not None:
            try:
                check_plan(plan, ishape, wshape, dtype, stride, padding, dilation, groups)
                return plan
            except ValueError:  # a table from another build: the built-in rule instead
                pass
    ho, wo = V.conv_output_size("conv2d", ishape, wshape[2:], stride, padding, dilation)
    return _plan(
        ishape, wshape, np.dtype(dtype), stride, padding, dilation, groups, weight_grad, nt, ho, wo
    )


_mode: Literal["table", "autotune", "deterministic"] = "table"
_table: dict | None = None
_table_meta: dict = {"path": "", "error": "no measured dispatch installed"}
# (load_table, layer_key, measure_plan) of minidl.ops.conv_tune, which installs them
_measured: tuple | None = None


def install_measured(load, layer_key, measure) -> None:
    """Called by minidl.ops.conv_tune when it is imported (it imports this module)."""
    global _measured
    _measured = (load, layer_key, measure)
    reload_table()


def _loaded_table() -> dict:
    """This machine's measured table ({} without one), read once per process."""
    global _table, _table_meta
    if _table is None:
        _table, _table_meta = _measured[0]() if _measured else ({}, _table_meta)
    return _table


def table_in_use() -> dict:
    """{"path", "cpu", "level", "created"} of the table dispatch reads, or {"path",
    "error"} when there is none (built-in defaults)."""
    _loaded_table()
    return dict(_table_meta)


def set_mode(mode: Literal["table", "autotune", "deterministic"]) -> None:
    """How new shapes get their plan (minidl.backends sets it); forgets remembered plans."""
    global _mode
    if mode not in ("table", "autotune", "deterministic"):
        raise ValueError(f"conv plan mode must be table, autotune or deterministic, got {mode!r}")
    _mode = mode
    _PLANS.clear()


def reload_table() -> None:
    """Read the table again on the next new shape (after ``minidl tune`` wrote one)."""
    global _table
    _table = None
    _PLANS.clear()


def clear_cache() -> None:
    """Forget the remembered plans (after changing a threshold)."""
    _PLANS.clear()


def check_plan(
    plan: ConvPlan,
    input_shape: tuple[int, int, int, int],
    weight_shape: tuple[int, int, int, int],
    dtype: np.dtype | type = np.float32,
    stride: tuple[int, int] = (1, 1),
    padding: tuple[int, int] = (0, 0),
    dilation: tuple[int, int] = (1, 1),
    groups: int = 1,
) -> None:
    """A ValueError naming the pass if ``plan`` cannot run this layer (see candidates)."""
    can = candidates(input_shape, weight_shape, dtype, stride, padding, dilation, groups)
    for name in PASSES:
        chosen = getattr(plan, name)
        if chosen not in can[name]:
            raise ValueError(
                f"conv plan: the {name} pass cannot run {chosen} for input {tuple(input_shape)} "
                f"{np.dtype(dtype)}, weight {tuple(weight_shape)}, stride {stride}, padding "
                f"{padding}, dilation {dilation}, groups {groups}; it can run "
                + ", ".join(str(p) for p in can[name])
            )


@contextmanager
def forced(plan: ConvPlan) -> Iterator[ConvPlan]:
    """Every conv2d whose forward runs inside the block runs ``plan`` (its backward too,
    whenever it runs); a layer the plan cannot run raises ValueError.  Process-wide, for
    tests, benchmarks and calibration; nested blocks restore the outer plan."""
    global _forced
    if not isinstance(plan, ConvPlan):
        raise TypeError(f"forced: expected a ConvPlan, got {type(plan).__name__}")
    outer = _forced
    _forced = plan
    try:
        yield plan
    finally:
        _forced = outer
