"""Tensor API and tape semantics: recording, accumulation, freeing, threads, memory."""

import gc
import threading
import tracemalloc
import weakref

import numpy as np
import pytest

import minidl
from minidl.autograd import Tensor, backward, record, tensor


# ---- Tensor API -----------------------------------------------------------------------
def test_default_dtypes_follow_pytorch():
    assert tensor([1.0, 2.0]).dtype == np.float32
    assert tensor(3.5).dtype == np.float32
    assert tensor([1, 2]).dtype == np.int64
    assert tensor(np.zeros(2, np.float64)).dtype == np.float64
    assert tensor([1.0], dtype=np.float64).dtype == np.float64


def test_tensor_copies_and_Tensor_wraps():
    arr = np.zeros(3, np.float32)
    copied = tensor(arr)
    wrapped = Tensor(arr)
    arr[0] = 7
    assert copied.data[0] == 0
    assert wrapped.data[0] == 7
    assert Tensor(wrapped).data is arr  # a Tensor argument shares its array


def test_attributes_and_conversions():
    t = tensor(np.arange(6, dtype=np.float32).reshape(2, 3), requires_grad=True)
    assert t.shape == (2, 3) and t.ndim == 2 and t.dtype == np.float32
    assert t.size() == (2, 3) and t.size(1) == 3 and t.numel() == 6 and len(t) == 2
    assert t.grad is None and t.requires_grad and t.is_leaf
    assert np.asarray(t) is t.data
    assert t.numpy() is t.data
    assert tensor([4.5]).item() == 4.5
    assert float(tensor(2.0)) == 2.0
    with pytest.raises(ValueError, match="one-element"):
        t.item()
    d = t.detach()
    assert not d.requires_grad and d.data is t.data


def test_repr_is_readable():
    assert repr(tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert "requires_grad=True" in repr(tensor([1.0], requires_grad=True))
    assert "dtype=float64" in repr(tensor([1.0], dtype=np.float64))
    assert "grad_fn" in repr(tensor([1.0], requires_grad=True) * 2)


def test_only_float_tensors_can_require_grad():
    with pytest.raises(TypeError, match="int64"):
        tensor([1, 2], requires_grad=True)


def test_numpy_array_on_the_left_uses_the_tensor_op():
    a = tensor([1.0, 2.0], requires_grad=True)
    out = np.array([3.0, 4.0], np.float32) * a
    assert isinstance(out, Tensor)
    out.sum().backward()
    np.testing.assert_array_equal(a.grad, [3.0, 4.0])


def test_python_scalars_adopt_the_tensor_dtype():
    for dt in (np.float32, np.float64):
        t = tensor([1.0], dtype=dt)
        for out in (t + 1, 2.5 * t, t / 3, 1 - t, t**2, 2**t, t + np.float64(1)):
            assert out.dtype == dt


def test_mixed_float_dtypes_are_a_type_error_naming_both():
    a = tensor([1.0], dtype=np.float32)
    b = tensor([1.0], dtype=np.float64)
    with pytest.raises(TypeError, match="float32.*float64"):
        a + b
    with pytest.raises(TypeError, match="float32.*float64"):
        a * np.ones(1, np.float64)


def test_integer_operands_join_the_float_dtype():
    a = tensor([1.5], requires_grad=True)
    out = a * tensor([2])
    assert out.dtype == np.float32
    out.backward()
    assert a.grad.tolist() == [2.0]


def test_comparisons_return_plain_bool_tensors():
    a = tensor([1.0, 3.0], requires_grad=True)
    out = a > 2
    assert out.dtype == bool and not out.requires_grad
    assert out.data.tolist() == [False, True]
    assert (a.argmax() == 1).item()


# ---- recording ------------------------------------------------------------------------
def test_nothing_is_recorded_without_requires_grad():
    a = tensor([1.0])
    out = (a * 2).exp()
    assert not out.requires_grad and out.grad_fn is None


def test_nothing_is_recorded_under_no_grad():
    a = tensor([1.0], requires_grad=True)
    with minidl.no_grad():
        out = a * 2
        assert not minidl.is_grad_enabled()
    assert minidl.is_grad_enabled()
    assert not out.requires_grad and out.grad_fn is None


def test_no_grad_as_decorator_and_enable_grad_inside():
    a = tensor([1.0], requires_grad=True)

    @minidl.no_grad()
    def f():
        inner = a * 2
        with minidl.enable_grad():
            recorded = a * 2
        return inner, recorded

    inner, recorded = f()
    assert inner.grad_fn is None and recorded.grad_fn is not None
    assert minidl.is_grad_enabled()


def test_no_grad_restores_the_mode_after_an_exception():
    with pytest.raises(KeyError), minidl.no_grad():
        raise KeyError
    assert minidl.is_grad_enabled()


def test_record_returns_plain_tensor_for_numpy_scalars():
    a = tensor([2.0], requires_grad=True)
    out = record(np.float32(3.0), (a,), lambda g: (g,))
    assert isinstance(out.data, np.ndarray) and out.data.shape == ()


# ---- backward -------------------------------------------------------------------------
def test_gradients_accumulate_across_backward_calls():
    a = tensor([2.0], requires_grad=True)
    (a * a).backward()
    (a * 3).backward()
    np.testing.assert_allclose(a.grad, [4.0 + 3.0])
    a.grad = None
    (a * a).backward()
    np.testing.assert_allclose(a.grad, [4.0])


def test_shared_subexpression_gets_summed_gradient():
    a = tensor([3.0], requires_grad=True)
    b = a * a  # used twice below
    out = b * b + b  # a^4 + a^2 -> 4a^3 + 2a
    out.backward()
    np.testing.assert_allclose(a.grad, [4 * 27 + 6])


def test_non_scalar_output_needs_an_explicit_grad():
    a = tensor([1.0, 2.0], requires_grad=True)
    out = a * 2
    with pytest.raises(RuntimeError, match="scalar"):
        out.backward()
    out.backward(np.array([1.0, 10.0], np.float32))
    np.testing.assert_allclose(a.grad, [2.0, 20.0])


def test_explicit_grad_shape_is_checked():
    a = tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
        (a * 2).backward(np.ones(3))


def test_backward_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        tensor([1.0]).backward()


def test_backward_on_a_leaf_sets_its_grad():
    a = tensor([1.0], requires_grad=True)
    a.backward()
    np.testing.assert_array_equal(a.grad, [1.0])


def test_second_backward_through_freed_graph_raises():
    a = tensor([2.0], requires_grad=True)
    out = (a * a).exp()
    out.backward()
    with pytest.raises(RuntimeError, match="second time"):
        out.backward()


def test_backward_through_partly_freed_graph_raises():
    a = tensor([2.0], requires_grad=True)
    mid = a * a
    mid.exp().backward()  # frees mid's entry too
    with pytest.raises(RuntimeError, match="second time"):
        (mid * 3).backward()


def test_retain_graph_allows_a_second_backward():
    a = tensor([2.0], requires_grad=True)
    out = (a * a).exp()
    out.backward(retain_graph=True)
    first = a.grad.copy()
    out.backward()
    np.testing.assert_allclose(a.grad, 2 * first)
    with pytest.raises(RuntimeError):
        out.backward()


def test_entries_are_freed_after_backward():
    a = tensor([2.0], requires_grad=True)
    mid = a * a
    out = mid.exp()
    closure_ref = weakref.ref(out.grad_fn.backward)
    entry_ref = weakref.ref(mid.grad_fn)
    out.backward()
    gc.collect()
    assert closure_ref() is None  # closures are dropped by backward
    assert out.grad_fn.inputs is None
    del out, mid
    assert entry_ref() is None  # and nothing else holds the entries


def test_forward_without_backward_is_freed_by_refcount():
    a = tensor(np.ones(3, np.float32), requires_grad=True)
    out = (a * 2).exp().sum()
    ref = weakref.ref(out.grad_fn)
    del out
    assert ref() is None


def test_gradient_flows_only_to_inputs_that_need_it():
    a = tensor([1.0, 2.0], requires_grad=True)
    b = tensor([3.0, 4.0])
    (a * b).sum().backward()
    assert b.grad is None
    np.testing.assert_array_equal(a.grad, [3.0, 4.0])


def test_leaf_grad_does_not_alias_other_arrays():
    a = tensor([1.0], requires_grad=True)
    b = tensor([1.0], requires_grad=True)
    g = np.array([5.0], np.float32)
    (a + b).backward(g)
    a.grad += 1
    assert b.grad[0] == 5.0 and g[0] == 5.0


def test_module_level_backward_function():
    a = tensor([3.0], requires_grad=True)
    backward((a * a).sum())
    np.testing.assert_allclose(a.grad, [6.0])


def test_tensor_declares_every_method_the_ops_attach():
    """autograd.Tensor lists the ops' methods for type checkers (under TYPE_CHECKING);
    minidl.ops attaches them at import: the two lists must agree."""
    import ast
    import inspect

    from minidl import autograd, ops

    tree = ast.parse(inspect.getsource(autograd))
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Tensor"]
    (block,) = [
        n for n in cls.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING"
    ]
    declared = {n.name for n in block.body if isinstance(n, ast.FunctionDef)}
    assert declared == set(ops._METHODS)
    for name, op in ops._METHODS.items():
        assert getattr(Tensor, name) is op or isinstance(op, property)


# ---- the gradient contract: one gradient (or None) per input ---------------------------
def _op_returning(grads):
    """An op of two inputs whose backward returns ``grads(g)``."""

    def two_input_op(a, b):
        return record(a.data + b.data, (a, b), lambda g: grads(g))

    return two_input_op


@pytest.mark.parametrize(
    "grads, got",
    [
        (lambda g: (g, g, g), "3 gradients"),
        (lambda g: (g,), "1 gradient for"),
        (lambda g: (), "0 gradients"),
        (lambda g: [g, g], "a list"),
        (lambda g: g, "a ndarray"),
        (lambda g: None, "a NoneType"),
    ],
)
def test_backward_returning_the_wrong_number_of_gradients_raises(grads, got):
    a = tensor([1.0, 2.0], requires_grad=True)
    b = tensor([3.0, 4.0], requires_grad=True)
    out = _op_returning(grads)(a, b).exp().sum()
    with pytest.raises(RuntimeError, match=f"backward of two_input_op returned {got} .*its 2"):
        out.backward()


def test_backward_returning_one_gradient_or_none_per_input_is_accepted():
    a = tensor([1.0, 2.0], requires_grad=True)
    b = tensor([3.0, 4.0], requires_grad=True)
    _op_returning(lambda g: (g, None))(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad, [1.0, 1.0])
    assert b.grad is None


def test_entry_is_named_after_its_op():
    a = tensor([1.0, 2.0], requires_grad=True)
    out = a.exp()
    assert out.grad_fn.name == "exp"
    assert "exp" in repr(out.grad_fn)
    out.sum().backward()
    assert out.grad_fn.name is None and "freed" in repr(out.grad_fn)


@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("op", ["linear", "conv2d", "conv_transpose2d"])
def test_ops_with_an_optional_bias_return_one_gradient_per_input(op, with_bias):
    from minidl.nn import functional as F

    rng = np.random.default_rng(0)
    if op == "linear":
        x, w, b = rng.standard_normal((2, 3)), rng.standard_normal((4, 3)), rng.standard_normal(4)
    else:
        x, w = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((2, 2, 3, 3))
        b = rng.standard_normal(2)
    inputs = [tensor(x, requires_grad=True), tensor(w, requires_grad=True)]
    if with_bias:
        inputs.append(tensor(b, requires_grad=True))
    out = getattr(F, op)(*inputs)
    grads = out.grad_fn.backward(np.ones(out.shape))
    assert type(grads) is tuple and len(grads) == len(inputs)
    for t, g in zip(inputs, grads):
        assert g.shape == t.shape


# ---- threads ---------------------------------------------------------------------------
def test_grad_mode_is_thread_local():
    seen = {}
    inside = threading.Event()
    release = threading.Event()

    def other():
        inside.wait()
        seen["other"] = minidl.is_grad_enabled()
        release.set()

    t = threading.Thread(target=other)
    t.start()
    with minidl.no_grad():
        inside.set()
        release.wait(10)
    t.join()
    assert seen["other"] is True


def test_two_threads_build_graphs_concurrently():
    errors = []
    barrier = threading.Barrier(2)

    def work(scale):
        try:
            rng = np.random.default_rng(int(abs(scale)))
            for _ in range(200):
                x = tensor(rng.standard_normal(5), dtype=np.float64, requires_grad=True)
                first = (x * scale).exp()
                barrier.wait(10)  # the other thread records between our two ops
                out = (first * x).sum()
                barrier.wait(10)
                out.backward()
                expected = np.exp(scale * x.data) * (scale * x.data + 1)
                np.testing.assert_allclose(x.grad, expected, rtol=1e-12)
        except Exception as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=work, args=(s,)) for s in (1.0, -2.0)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


# ---- memory ----------------------------------------------------------------------------
def test_memory_stays_flat_over_a_training_loop():
    import minidl.nn.functional as F

    rng = np.random.default_rng(0)
    w = tensor(rng.standard_normal((4, 3)).astype(np.float32), requires_grad=True)
    x = tensor(rng.standard_normal((8, 3)).astype(np.float32))
    target = rng.integers(0, 4, 8)

    def step():
        loss = F.cross_entropy(F.linear(x, w).relu(), target)
        loss.backward()
        w.data -= 0.01 * w.grad
        w.grad = None

    tracemalloc.start()
    try:
        for _ in range(1000):
            step()
        gc.collect()
        current_1000, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(1000):
            step()
        peak_1000_2000 = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        for _ in range(1000):
            step()
        gc.collect()
        current_3000, peak_2000_3000 = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # A graph kept alive per step would cost kilobytes per iteration: megabytes here.
    assert current_3000 - current_1000 < 16 * 1024, (current_1000, current_3000)
    # Peaks jitter by tens of kB (interpreter-internal buffers), so only gross growth fails.
    assert peak_2000_3000 - peak_1000_2000 < 256 * 1024, (peak_1000_2000, peak_2000_3000)


def test_overhead_benchmark_tiny_mode_runs():
    import importlib.util
    import os

    path = os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        "benchmarks",
        "bench_overhead.py",
    )
    spec = importlib.util.spec_from_file_location("bench_overhead", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows = bench.overhead_rows(quick=True)
    assert {r["op"] for r in rows} >= {"conv2d forward (1x1x1x1)", "add (recorded, 1 element)"}
    assert all(r["minidl_us"] > 0 for r in rows)
    assert "conv2d forward" in bench.format_rows(rows)
    step = bench.lenet_step()
    before = [p.data.copy() for p in step.model.parameters()]
    step()
    for p, old in zip(step.model.parameters(), before):
        assert p.grad is not None and p.grad.shape == old.shape
        assert not np.array_equal(p.data, old)
