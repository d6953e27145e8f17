"""A leaf's gradient is its own array: never shared with another leaf, the graph or the caller."""

import numpy as np

import minidl
import minidl.nn.functional as F
from minidl import tensor


def test_gradient_used_twice_is_not_aliased():
    # add's backward hands the same array to both inputs: each leaf needs its own
    a = tensor([1.0, 2.0], requires_grad=True)
    b = tensor([3.0, 4.0], requires_grad=True)
    (a + b).sum().backward()
    assert a.grad is not b.grad and not np.shares_memory(a.grad, b.grad)
    a.grad += 1
    np.testing.assert_array_equal(b.grad, [1.0, 1.0])


def test_same_leaf_twice_accumulates():
    a = tensor([1.0, 2.0], requires_grad=True)
    (a + a).sum().backward()
    np.testing.assert_array_equal(a.grad, [2.0, 2.0])
    (a * a).sum().backward()
    np.testing.assert_array_equal(a.grad, [4.0, 6.0])


def test_user_gradient_is_not_aliased():
    a = tensor([1.0, 2.0], requires_grad=True)
    b = tensor([3.0, 4.0], requires_grad=True)
    g = np.array([5.0, 6.0], dtype=np.float32)
    (a + b).backward(g)
    for leaf in (a, b):
        assert not np.shares_memory(leaf.grad, g)
    g[:] = 0
    np.testing.assert_array_equal(a.grad, [5.0, 6.0])


def test_gradient_held_by_the_graph_is_not_aliased():
    # the output's data and the op's saved arrays must stay intact after backward
    x = tensor(np.linspace(-1, 1, 6).reshape(2, 3), requires_grad=True)
    y = x.exp()
    saved = y.data.copy()
    y.backward(np.ones((2, 3), np.float32))
    np.testing.assert_array_equal(y.data, saved)
    x.grad[...] = 0
    np.testing.assert_array_equal(y.data, saved)


def test_retained_graph_gives_the_same_gradients_twice():
    minidl.manual_seed(0)
    x = tensor(np.random.default_rng(0).standard_normal((4, 5)), requires_grad=True)
    w = tensor(np.random.default_rng(1).standard_normal((3, 5)), requires_grad=True)
    loss = F.cross_entropy(F.linear(x, w).relu(), np.array([0, 1, 2, 1]))
    loss.backward(retain_graph=True)
    first = (x.grad.copy(), w.grad.copy())
    x.grad = w.grad = None
    loss.backward()
    np.testing.assert_array_equal(x.grad, first[0])
    np.testing.assert_array_equal(w.grad, first[1])


def test_leaf_gradients_are_independent_arrays():
    minidl.manual_seed(0)
    model = minidl.nn.Linear(4, 3)
    x = tensor(np.ones((2, 4), np.float32))
    F.cross_entropy(model(x), np.array([0, 2])).backward()
    grads = [p.grad for p in model.parameters()]
    assert not np.shares_memory(grads[0], grads[1])
    for p, g in zip(model.parameters(), grads):
        assert g.shape == p.data.shape and g.dtype == p.data.dtype
