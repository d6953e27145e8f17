"""minidl.gradcheck: passes correct gradients, names the input and element of a wrong one."""

import numpy as np
import pytest

import minidl
from minidl.autograd import record, tensor
from minidl.gradcheck import GradcheckError


def _x(requires_grad=True, dtype=np.float64):
    return tensor(np.linspace(0.5, 2.0, 6).reshape(2, 3), dtype=dtype, requires_grad=requires_grad)


def test_correct_gradient_passes_and_returns_true():
    assert minidl.gradcheck(lambda t: (t * t).exp(), [_x()]) is True


def test_wrong_gradient_names_input_and_worst_element():
    def bad_square(t):  # backward of t**2 with one element's gradient broken
        def backward(g):
            grad = 2 * g * t.data
            grad[1, 2] += 1.0
            return (grad,)

        return record(t.data**2, (t,), backward)

    with pytest.raises(GradcheckError, match=r"input 1 .*index \(1, 2\).*analytic.*numeric"):
        minidl.gradcheck(lambda a, b: a + bad_square(b), [_x(), _x()])
    assert issubclass(GradcheckError, AssertionError)


def test_float32_inputs_requiring_grad_are_rejected():
    with pytest.raises(TypeError, match="float64"):
        minidl.gradcheck(lambda t: t * 2, [_x(dtype=np.float32)])


def test_inputs_without_grad_are_passed_through():
    const = _x(requires_grad=False, dtype=np.float32)
    assert minidl.gradcheck(lambda c, t: t * c.double(), [const, _x()])


def test_no_input_requiring_grad_is_an_error():
    with pytest.raises(ValueError, match="requires_grad"):
        minidl.gradcheck(lambda t: t, [_x(requires_grad=False)])


def test_fn_must_return_a_tensor():
    with pytest.raises(TypeError, match="Tensor"):
        minidl.gradcheck(lambda t: 3.0, [_x()])


def test_leaves_grad_is_left_untouched():
    x = _x()
    x.grad = np.full((2, 3), 7.0)
    minidl.gradcheck(lambda t: t * 3, [x])
    assert np.all(x.grad == 7.0)
