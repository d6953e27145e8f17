"""Sequential's fused runs (minidl.nn.modules.fusion) give the separate modules' values
and gradients bit for bit: MaxPool2d(2) -> ReLU on both pool paths (AVX-512 and
portable), float32 and float64, with ties, signed zeros, infinities and NaNs; Conv2d ->
MaxPool2d(2) [-> ReLU] on the direct kernel at random layer shapes and 1 or 2 threads. A
run is not fused where something could observe or change what passes between its
children, or where the fused kernel does not apply."""

from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from kernel_checks import examples, kernels, pool_path, python_child, tricky_planes

import minidl
import minidl.nn.functional as F
from minidl import nn
from minidl.ops import conv_plan as CP
from minidl.ops import fused


@contextmanager
def _counting_fused_calls():
    calls = []
    original = fused.max_pool2d_relu

    def spy(input):
        out = original(input)
        calls.append(out is not None)
        return out

    fused.max_pool2d_relu = spy
    try:
        yield calls
    finally:
        fused.max_pool2d_relu = original


def _separate(x, g):
    """relu(max_pool2d(x, 2)) and its input gradient for ``g``, op by op."""
    t = minidl.tensor(x, requires_grad=True)
    y = F.relu(F.max_pool2d(t, 2))
    y.backward(g)
    return y.data, t.grad


@settings(max_examples=examples(80), deadline=None)
@given(
    n=st.integers(1, 3),
    c=st.integers(1, 20),
    half_h=st.integers(1, 5),
    half_w=st.sampled_from([1, 2, 3, 4, 5, 8, 9, 16, 17]),
    dtype=st.sampled_from([np.float32, np.float64]),
    specials=st.booleans(),
    threads=st.sampled_from([1, 2]),
    seed=st.integers(0, 2**31 - 1),
)
@pytest.mark.parametrize("simd", [True, False], ids=["simd", "portable"])
def test_pool_relu_run_gives_the_separate_modules_bits(
    simd, n, c, half_h, half_w, dtype, specials, threads, seed
):
    rng = np.random.default_rng(seed)
    x = tricky_planes(rng, (n, c, 2 * half_h, 2 * half_w), dtype, specials)
    g = rng.standard_normal((n, c, half_h, half_w)).astype(dtype)
    g.flat[::7] = -0.0  # finite upstream gradients, signed zeros included
    run = nn.Sequential(nn.MaxPool2d(2), nn.ReLU())
    minidl.set_num_threads(threads)
    try:
        with pool_path(simd), _counting_fused_calls() as calls:
            want_y, want_gx = _separate(x, g)
            t = minidl.tensor(x, requires_grad=True)
            y = run(t)
            y.backward(g)
            with minidl.no_grad():
                y_inference = run(minidl.tensor(x))
    finally:
        minidl.set_num_threads(1)
    assert calls == [True, True]
    assert y.data.dtype == dtype and y.data.tobytes() == want_y.tobytes()
    assert y_inference.data.tobytes() == want_y.tobytes()
    assert t.grad.tobytes() == want_gx.tobytes()


def test_pool_relu_run_gives_pytorchs_gradient_for_an_inf_where_relu_zeroed():
    """Where the ReLU zeroed a maximum the fused gradient is 0 whatever the upstream value,
    as PyTorch's ReLU backward gives; the separate minidl ReLU multiplies its 0/1 mask,
    so inf * 0 there is NaN."""
    x = np.array([[[[-1.0, -2.0], [-3.0, -4.0]], [[1.0, 2.0], [3.0, 4.0]]]], np.float32)
    g = np.array([[[[np.inf]], [[np.inf]]]], np.float32)
    t = minidl.tensor(x, requires_grad=True)
    nn.Sequential(nn.MaxPool2d(2), nn.ReLU())(t).backward(g)
    want = np.zeros_like(x)
    want[0, 1, 1, 1] = np.inf  # the second plane's maximum, 4.0
    np.testing.assert_array_equal(t.grad, want)
    torch = pytest.importorskip("torch")
    tt = torch.tensor(x, requires_grad=True)
    torch.nn.Sequential(torch.nn.MaxPool2d(2), torch.nn.ReLU())(tt).backward(torch.tensor(g))
    np.testing.assert_array_equal(t.grad, tt.grad.numpy())


def _observed(kind):
    """A Sequential(MaxPool2d(2), ReLU) that something watches between the two, and what
    it saw."""
    seen = []
    pool, relu = nn.MaxPool2d(2), nn.ReLU()
    if kind == "pool forward hook":
        pool.register_forward_hook(lambda m, i, o: seen.append(o.data.copy()))
    elif kind == "relu pre-hook":
        relu.register_forward_pre_hook(lambda m, i: seen.append(i[0].data.copy()))
    elif kind == "instance forward":
        plain = pool.forward
        pool.forward = lambda input: (seen.append(1), plain(input))[1]
    elif kind == "subclass":

        class Doubling(nn.ReLU):
            def forward(self, input):
                seen.append(1)
                return super().forward(input) * 2

        relu = Doubling()
    return nn.Sequential(pool, relu), seen


@pytest.mark.parametrize(
    "kind", ["pool forward hook", "relu pre-hook", "instance forward", "subclass"]
)
def test_a_watched_or_changed_pair_runs_module_by_module(kind):
    x = np.random.default_rng(1).standard_normal((2, 3, 4, 6))
    run, seen = _observed(kind)
    with _counting_fused_calls() as calls:
        y = run(minidl.tensor(x))
    assert calls == [] and len(seen) == 1
    want = np.maximum(F.max_pool2d(minidl.tensor(x), 2).data, 0)
    np.testing.assert_array_equal(y.data, want * (2 if kind == "subclass" else 1))


@pytest.mark.parametrize(
    "pool, shape",
    [
        (nn.MaxPool2d(2, stride=1), (2, 3, 4, 4)),
        (nn.MaxPool2d(3), (2, 3, 6, 6)),
        (nn.MaxPool2d(2, padding=1), (2, 3, 4, 4)),
        (nn.MaxPool2d(2, ceil_mode=True), (2, 3, 5, 5)),
        (nn.MaxPool2d(2), (2, 3, 5, 4)),  # odd height: the op declines
        (nn.MaxPool2d(2), (3, 4, 6)),  # unbatched: the op declines
    ],
)
def test_other_pools_and_inputs_run_module_by_module_with_the_same_values(pool, shape):
    x = np.random.default_rng(2).standard_normal(shape)
    with _counting_fused_calls() as calls:
        y = nn.Sequential(pool, nn.ReLU())(minidl.tensor(x))
    assert all(not fused_ran for fused_ran in calls)
    np.testing.assert_array_equal(y.data, F.relu(pool(minidl.tensor(x))).data)


def test_lenet_runs_its_pool_relu_pairs_fused_and_trains_the_same():
    """LeNet's two MaxPool2d -> ReLU pairs run fused (with their conv layer or on their
    own); one SGD step gives the weights of the same step run module by module."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 1, 8, 8)).astype(np.float32)
    target = rng.integers(0, 10, 16)
    weights = []
    for fuse in (True, False):
        minidl.manual_seed(0)
        model = minidl.models.LeNet()
        if not fuse:  # a hook on every module: nothing may run fused
            for module in model.modules():
                module.register_forward_hook(lambda m, i, o: None)
        opt = minidl.optim.SGD(model.parameters(), lr=0.1)
        with _counting("conv2d_max_pool2d") as convs, _counting("max_pool2d_relu") as pools:
            F.cross_entropy(model(minidl.tensor(x)), minidl.tensor(target)).backward()
        opt.step()
        assert convs.count(True) + pools.count(True) == (2 if fuse else 0)
        weights.append([p.data.tobytes() for p in model.parameters()])
    assert weights[0] == weights[1]


# ---- Conv2d -> MaxPool2d(2) [-> ReLU] -------------------------------------------------


@contextmanager
def _counting(name):
    calls = []
    original = getattr(fused, name)

    def spy(*args):
        out = original(*args)
        calls.append(out is not None)
        return out

    setattr(fused, name, spy)
    try:
        yield calls
    finally:
        setattr(fused, name, original)


def _layer(rng, c, f, k, bias):
    conv = nn.Conv2d(c, f, k, bias=bias)
    conv.weight.data = rng.standard_normal(conv.weight.shape).astype(np.float32)
    if bias:
        conv.bias.data = rng.standard_normal(f).astype(np.float32)
    return conv


def _grads(module, t):
    return [np.zeros(0) if t.grad is None else t.grad] + [p.grad for p in module.parameters()]


def _assert_fused_run_matches(conv, x, g, relu, input_grad, threads, plan):
    """Sequential(conv, MaxPool2d(2)[, ReLU]) under ``plan`` runs fused, and its output,
    its gradients for ``g`` and its no-grad output are the separate ops' bit for bit."""
    run = nn.Sequential(conv, nn.MaxPool2d(2), *([nn.ReLU()] if relu else []))
    results = []
    minidl.set_num_threads(threads)
    try:
        with CP.forced(plan):
            for fuse in (True, False):
                t = minidl.tensor(x, requires_grad=input_grad)
                with _counting("conv2d_max_pool2d") as calls:
                    if fuse:
                        y = run(t)
                    else:
                        y = F.max_pool2d(conv(t), 2)
                        y = F.relu(y) if relu else y
                assert calls == ([True] if fuse else [])
                conv.zero_grad()
                y.backward(g)
                results.append([y.data] + _grads(conv, t))
                with minidl.no_grad():
                    results[-1].append(run(minidl.tensor(x)).data)
    finally:
        minidl.set_num_threads(1)
    for got, want in zip(results[0], results[1]):
        assert got.dtype == want.dtype and got.tobytes() == want.tobytes()


@settings(max_examples=examples(60), deadline=None)
@given(
    n=st.integers(1, 5),
    c=st.integers(1, 8),
    f=st.integers(1, 20),
    k=st.sampled_from([1, 2, 3, 5]),
    padding=st.integers(0, 2),
    half_ho=st.integers(1, 5),
    half_wo=st.integers(1, 9),
    bias=st.booleans(),
    relu=st.booleans(),
    input_grad=st.booleans(),
    threads=st.sampled_from([1, 2]),
    seed=st.integers(0, 2**31 - 1),
)
def test_conv_pool_run_gives_the_separate_modules_bits(
    n, c, f, k, padding, half_ho, half_wo, bias, relu, input_grad, threads, seed
):
    """On the direct kernel (the plan forced there), float32: the output, and the
    gradients of the input, weight and bias, bit for bit; and at 1 and 2 threads. Without
    an input gradient the weight gradient spreads the pooled gradient itself."""
    if not kernels().direct_level():
        pytest.skip("no direct kernels on this CPU: the op declines, tested below")
    rng = np.random.default_rng(seed)
    h, w = 2 * half_ho + k - 1 - 2 * padding, 2 * half_wo + k - 1 - 2 * padding
    if h < 1 or w < 1:
        return
    conv = _layer(rng, c, f, k, bias)
    conv.padding = (padding, padding)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    g = rng.standard_normal((n, f, half_ho, half_wo)).astype(np.float32)
    _assert_fused_run_matches(
        conv, x, g, relu, input_grad, threads, CP.ConvPlan(CP.DIRECT, CP.IM2COL, CP.DIRECT)
    )


@settings(max_examples=examples(60), deadline=None)
@given(
    n=st.integers(1, 40),
    f=st.integers(1, 40),
    kh=st.integers(1, 5),
    kw=st.integers(1, 5),
    padding=st.integers(0, 2),
    half_ho=st.integers(1, 6),
    half_wo=st.integers(1, 9),
    bias=st.booleans(),
    relu=st.booleans(),
    input_grad=st.booleans(),
    tricky=st.booleans(),
    threads=st.sampled_from([1, 2]),
    seed=st.integers(0, 2**31 - 1),
)
def test_one_channel_conv_pool_run_gives_the_separate_modules_bits(
    n, f, kh, kw, padding, half_ho, half_wo, bias, relu, input_grad, tricky, threads, seed
):
    """One input channel, which runs on its own kernel where the filters fill 3/4 of a
    vector (from 12 filters on AVX-512, 6 on AVX2; vectors across filters,
    direct_conv_c1_pool.h): filters and windows past whole vectors, rectangular filters,
    and small integers (ties, zeros) as well as random values."""
    if not kernels().direct_level():
        pytest.skip("no direct kernels on this CPU: the op declines, tested below")
    rng = np.random.default_rng(seed)
    padding = min(padding, kh - 1, kw - 1)
    h, w = 2 * half_ho + kh - 1 - 2 * padding, 2 * half_wo + kw - 1 - 2 * padding
    assume(h >= 1 and w >= 1)
    conv = _layer(rng, 1, f, (kh, kw), bias)
    conv.padding = (padding, padding)
    shape = (n, 1, h, w)
    if tricky:
        x = tricky_planes(rng, shape, np.float32, False)
        conv.weight.data = tricky_planes(rng, conv.weight.shape, np.float32, False)
        if bias:  # -0, and an infinite bias (which the no-grad path adds before the pool)
            conv.bias.data[rng.integers(f)] = rng.choice([-0.0, np.inf, -np.inf])
    else:
        x = rng.standard_normal(shape).astype(np.float32)
    g = rng.standard_normal((n, f, half_ho, half_wo)).astype(np.float32)
    _assert_fused_run_matches(
        conv, x, g, relu, input_grad, threads, CP.ConvPlan(CP.DIRECT, CP.IM2COL, CP.DIRECT)
    )


@pytest.mark.parametrize("channels", [3, 1])
def test_conv_pool_run_declines_where_the_plan_is_not_direct_or_a_nan_reaches_the_pool(
    channels,
):
    rng = np.random.default_rng(4)
    conv = _layer(rng, channels, 8, 3, True)
    conv.padding = (1, 1)
    run = nn.Sequential(conv, nn.MaxPool2d(2), nn.ReLU())
    x = rng.standard_normal((4, channels, 6, 6)).astype(np.float32)
    nan_x = x.copy()
    nan_x[1, channels - 1, 3, 3] = np.nan
    cases = [
        (CP.ConvPlan(CP.IM2COL, CP.IM2COL, CP.IM2COL), x),  # not direct
        (CP.ConvPlan(CP.DIRECT, CP.IM2COL, CP.DIRECT), nan_x),  # a NaN
    ]
    if not kernels().direct_level():
        cases = cases[:1]
    for plan, data in cases:
        with CP.forced(plan), _counting("conv2d_max_pool2d") as calls:
            y = run(minidl.tensor(data))
            want = F.relu(F.max_pool2d(conv(minidl.tensor(data)), 2))
        assert calls == [False]
        assert y.data.tobytes() == want.data.tobytes()
    # float64 and odd conv outputs are not asked: the op declines
    for data in (x.astype(np.float64), x[:, :, :5, :]):
        conv64 = _layer(rng, channels, 8, 3, True)
        if data.dtype == np.float64:
            conv64 = conv64.double()
        conv64.padding = (1, 1)
        with _counting("conv2d_max_pool2d") as calls:
            y = nn.Sequential(conv64, nn.MaxPool2d(2))(minidl.tensor(data))
        assert calls == [False]
        want = F.max_pool2d(conv64(minidl.tensor(data)), 2)
        assert y.data.tobytes() == want.data.tobytes()


WGC = CP.WINOGRAD_CHANNEL_MAJOR


@settings(max_examples=examples(40), deadline=None)
@given(
    n=st.integers(1, 40),
    c=st.one_of(st.integers(1, 15), st.integers(16, 40)),
    f=st.integers(16, 40),
    swap=st.booleans(),
    bias=st.booleans(),
    relu=st.booleans(),
    input_grad=st.booleans(),
    keep=st.booleans(),
    threads=st.sampled_from([1, 2]),
    seed=st.integers(0, 2**31 - 1),
)
def test_winograd_conv_pool_run_gives_the_separate_modules_bits(
    n, c, f, swap, bias, relu, input_grad, keep, threads, seed
):
    """The channel-major Winograd layer (4x4 planes, padding 1, LeNet()'s conv2) pools
    each output plane in registers: output and gradients bit for bit the separate
    modules', with or without the forward keeping V, at 1 and 2 threads, for any channel
    counts (vectors part-filled on either side)."""
    if not kernels().winograd_channel_major_lanes():
        pytest.skip("no channel-major Winograd on this CPU (AVX2 or AVX-512): the op declines")
    if swap:
        c, f = f, c
    rng = np.random.default_rng(seed)
    conv = _layer(rng, c, f, 3, bias)
    conv.padding = (1, 1)
    x = rng.standard_normal((n, c, 4, 4)).astype(np.float32)
    x[0] = 0  # a zero plane: ties and signed zeros in the pool
    g = rng.standard_normal((n, f, 2, 2)).astype(np.float32)
    _assert_fused_run_matches(
        conv, x, g, relu, input_grad, threads, CP.ConvPlan(WGC, WGC, WGC, keep_input=keep)
    )


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_winograd_conv_pool_run_declines_on_a_nan_or_an_inf(bad):
    """A NaN reaching the pool, or an inf that Winograd would mix into a tile: the modules
    run one by one (the inf on im2col, as conv2d does), with their values."""
    rng = np.random.default_rng(5)
    conv = _layer(rng, 16, 16, 3, True)
    conv.padding = (1, 1)
    x = rng.standard_normal((4, 16, 4, 4)).astype(np.float32)
    x[2, 3, 1, 2] = bad
    run = nn.Sequential(conv, nn.MaxPool2d(2), nn.ReLU())
    plan = CP.ConvPlan(WGC, WGC, WGC)
    with CP.forced(plan), _counting("conv2d_max_pool2d") as calls, minidl.no_grad():
        y = run(minidl.tensor(x))
        want = F.relu(F.max_pool2d(conv(minidl.tensor(x)), 2))
    assert calls == [False]
    assert y.data.tobytes() == want.data.tobytes()


def test_winograd_conv_pool_run_declines_on_the_plane_major_layout():
    """Only the channel-major layout pools as it goes: on the plane-major F(4x4, 3x3) the
    modules run one by one, with their values."""
    rng = np.random.default_rng(6)
    conv = _layer(rng, 16, 16, 3, True)
    conv.padding = (1, 1)
    x = rng.standard_normal((4, 16, 4, 4)).astype(np.float32)
    run = nn.Sequential(conv, nn.MaxPool2d(2), nn.ReLU())
    planes = CP.PassPlan("winograd", 4)
    with CP.forced(CP.ConvPlan(planes, planes, planes)), _counting("conv2d_max_pool2d") as calls:
        y = run(minidl.tensor(x))
        want = F.relu(F.max_pool2d(conv(minidl.tensor(x)), 2))
    assert calls == [False]
    assert y.data.tobytes() == want.data.tobytes()


# ---- Linear -> ReLU ------------------------------------------------------------------
def _linear_run_results(lin, x, g, input_grad, threads, fuse):
    """(output, input/weight/bias gradients, no-grad output) of Linear -> ReLU, fused
    through Sequential or op by op."""
    run = nn.Sequential(lin, nn.ReLU())
    minidl.set_num_threads(threads)
    try:
        t = minidl.tensor(x, requires_grad=input_grad)
        with _counting("linear_relu") as calls:
            y = run(t) if fuse else F.relu(lin(t))
        lin.zero_grad()
        y.backward(g)
        with minidl.no_grad():
            y_eval = run(minidl.tensor(x)) if fuse else F.relu(lin(minidl.tensor(x)))
    finally:
        minidl.set_num_threads(1)
    return calls, [y.data] + _grads(lin, t) + [y_eval.data]


@settings(max_examples=examples(60), deadline=None)
@given(
    lead=st.lists(st.integers(1, 5), min_size=0, max_size=2),
    rows=st.integers(1, 300),
    in_features=st.integers(1, 40),
    out_features=st.integers(1, 40),
    dtype=st.sampled_from([np.float32, np.float64]),
    bias=st.booleans(),
    input_grad=st.booleans(),
    specials=st.booleans(),
    threads=st.sampled_from([1, 2]),
    seed=st.integers(0, 2**31 - 1),
)
def test_linear_relu_run_gives_the_separate_modules_bits(
    lead, rows, in_features, out_features, dtype, bias, input_grad, specials, threads, seed
):
    """Linear -> ReLU in a Sequential runs as one op (the ReLU applied to each block of
    the GEMM's output rows): output, input, weight and bias gradients and the no-grad
    output bit for bit the two modules', for any leading shape, both float dtypes, with
    NaN, infinities and signed zeros in the input, at 1 and 2 threads."""
    rng = np.random.default_rng(seed)
    lin = nn.Linear(in_features, out_features, bias=bias)
    if dtype == np.float64:
        lin = lin.double()
    shape = (*lead, rows, in_features)
    x = (tricky_planes(rng, shape, dtype, True) if specials else rng.standard_normal(shape)).astype(
        dtype
    )
    g = rng.standard_normal((*lead, rows, out_features)).astype(dtype)
    calls, fused_results = _linear_run_results(lin, x, g, input_grad, threads, True)
    assert calls == [True]
    _, separate = _linear_run_results(lin, x, g, input_grad, threads, False)
    for got, want in zip(fused_results, separate):
        assert got.dtype == want.dtype and got.tobytes() == want.tobytes()


def test_linear_relu_pair_declines_where_it_could_be_observed_or_has_no_kernel():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    lin = nn.Linear(6, 5)
    want = np.maximum(lin(minidl.tensor(x)).data, 0)
    hooked = nn.ReLU()
    hooked.register_forward_hook(lambda module, args, out: None)

    class MyLinear(nn.Linear):
        pass

    sub = MyLinear(6, 5)
    sub.load_state_dict(lin.state_dict())
    for run in (nn.Sequential(lin, hooked), nn.Sequential(sub, nn.ReLU())):
        with _counting("linear_relu") as calls:
            y = run(minidl.tensor(x))
        assert calls == []
        assert y.data.tobytes() == want.tobytes()
    # float16 has no kernel: the op declines, the modules run one by one
    lin16 = nn.Linear(6, 5).to(np.float16)
    x16 = x.astype(np.float16)
    with _counting("linear_relu") as calls:
        y = nn.Sequential(lin16, nn.ReLU())(minidl.tensor(x16))
    assert calls == [False]
    assert y.data.dtype == np.float16
    assert y.data.tobytes() == F.relu(lin16(minidl.tensor(x16))).data.tobytes()


_ONE_CHANNEL_CHECK = """
import sys
import numpy as np
import minidl
import minidl.nn.functional as F
from minidl import nn
from minidl.ops import conv_plan as CP
assert minidl._kernels.direct_level() == 1, minidl._kernels.direct_level()
rng = np.random.default_rng(0)
checked = 0
for f in (6, 8, 12, 20, 32):
    for k, p, h in ((3, 1, 8), (5, 0, 12), (3, 0, 10)):
        for bias, relu, tricky in ((True, True, False), (False, False, True), (True, True, True)):
            conv = nn.Conv2d(1, f, k, padding=p, bias=bias)
            x = rng.standard_normal((5, 1, h, h)).astype(np.float32)
            if tricky:
                x = rng.integers(-2, 3, size=x.shape).astype(np.float32)
                conv.weight.data = rng.integers(-2, 3, size=conv.weight.shape).astype(np.float32)
            run = nn.Sequential(conv, nn.MaxPool2d(2), *([nn.ReLU()] if relu else []))
            with CP.forced(CP.ConvPlan(CP.DIRECT, CP.IM2COL, CP.DIRECT)):
                results = []
                for fused in (True, False):
                    t = minidl.tensor(x, requires_grad=True)
                    y = run(t) if fused else F.max_pool2d(conv(t), 2)
                    if relu and not fused:
                        y = F.relu(y)
                    g = np.linspace(-1, 1, y.data.size, dtype=np.float32).reshape(y.shape)
                    conv.zero_grad()
                    y.backward(g)
                    with minidl.no_grad():
                        y0 = run(minidl.tensor(x))
                    results.append([y.data, t.grad, conv.weight.grad, y0.data])
            for a, b in zip(*results):
                assert a.tobytes() == b.tobytes(), (f, k, p, bias, relu, tricky)
            checked += 1
print(checked)
"""


def test_one_channel_conv_pool_avx2_build_with_the_level_capped():
    """MINIDL_CPU_LEVEL=1 runs the AVX2 build of the one-channel kernel (8 filters a
    vector) on an AVX-512 machine: fused runs give the separate modules' bits there too,
    with and without codes, at filter counts on both sides of its lane rule."""
    if kernels().direct_level() < 2:
        pytest.skip("this CPU runs the AVX2 build already (the hypothesis test above)")
    done = python_child(_ONE_CHANNEL_CHECK, env={"MINIDL_CPU_LEVEL": "1"}, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["45"], done.stdout
