"""Module methods as PyTorch: apply, forward pre-hooks, named_modules / named_children,
get_submodule, to(dtype / "cpu"), requires_grad_, extra_repr, name checks, summary."""

import numpy as np
import pytest

import minidl
from minidl import nn, tensor


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
        self.register_buffer("scale", np.ones(3, np.float32))

    def forward(self, x):
        return self.head(self.conv(x)) * tensor(self.scale)


def test_apply_visits_children_first_then_self_and_returns_self():
    model = Block()
    seen = []
    assert model.apply(lambda m: seen.append(type(m).__name__)) is model
    assert seen == ["Conv2d", "Flatten", "Linear", "Sequential", "Block"]

    def init_linear(m):
        if isinstance(m, nn.Linear):
            nn.init.zeros_(m.weight)

    model.apply(init_linear)
    assert not model.head[1].weight.data.any()


def test_forward_pre_hook_can_replace_the_inputs_and_be_removed():
    layer = nn.Linear(2, 2)
    calls = []

    def hook(module, inputs):
        calls.append(inputs[0].shape)
        return inputs[0] * 0

    handle = layer.register_forward_pre_hook(hook)
    out = layer(tensor(np.ones((1, 2), np.float32)))
    np.testing.assert_allclose(out.data[0], layer.bias.data)
    assert calls == [(1, 2)]
    layer.register_forward_pre_hook(lambda m, inputs: None)  # None keeps the inputs
    handle.remove()
    out = layer(tensor(np.ones((1, 2), np.float32)))
    assert not np.allclose(out.data[0], layer.bias.data)
    assert calls == [(1, 2)]


def test_named_modules_children_and_get_submodule_match_torch():
    torch = pytest.importorskip("torch")

    def build(lib):
        shared = lib.nn.Linear(2, 2)
        return lib.nn.Sequential(shared, lib.nn.ReLU(), shared, lib.nn.Sequential(lib.nn.Tanh()))

    ours, theirs = build(minidl), build(torch)
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_modules(remove_duplicate=False)] == [
        n for n, _ in theirs.named_modules(remove_duplicate=False)
    ]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    assert [n for n, _ in ours.named_modules(prefix="m")] == [
        n for n, _ in theirs.named_modules(prefix="m")
    ]
    assert isinstance(ours.get_submodule("3.0"), nn.Tanh)
    assert ours.get_submodule("") is ours
    with pytest.raises(AttributeError, match="has no attribute `7`"):
        ours.get_submodule("7")


def test_to_dtype_device_and_errors():
    model = Block()
    assert model.to(np.float64) is model
    assert model.conv.weight.dtype == np.float64 and model.scale.dtype == np.float64
    assert model.to("cpu") is model and model.conv.weight.dtype == np.float64
    model.to("cpu", np.float32)
    assert model.conv.weight.dtype == np.float32
    model.to(device="cpu", dtype="float64")
    assert model.head[1].bias.dtype == np.float64
    with pytest.raises(ValueError, match="CPU only.*cuda"):
        model.to("cuda")
    with pytest.raises(ValueError, match="CPU only"):
        model.to("cuda:0")
    with pytest.raises(TypeError, match="floating point"):
        model.to(np.int64)


def test_requires_grad_freezes_and_unfreezes():
    model = Block()
    assert model.requires_grad_(False) is model
    assert not any(p.requires_grad for p in model.parameters())
    model.head.requires_grad_()
    assert [n for n, p in model.named_parameters() if p.requires_grad] == [
        "head.1.weight",
        "head.1.bias",
    ]


def test_repr_is_built_from_extra_repr_as_torch():
    torch = pytest.importorskip("torch")

    class Scale(nn.Module):
        def extra_repr(self):
            return "factor=2"

    class TScale(torch.nn.Module):
        def extra_repr(self):
            return "factor=2"

    class Outer(nn.Module):
        def __init__(self, lib, scale):
            super().__init__()
            self.s = scale()
            self.f = lib.nn.Linear(2, 3)

        def extra_repr(self):
            return "outer=1"

    class TOuter(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.s = TScale()
            self.f = torch.nn.Linear(2, 3)

        def extra_repr(self):
            return "outer=1"

    assert repr(Scale()) == repr(TScale()).replace("TScale", "Scale")
    assert repr(Outer(minidl, Scale)) == repr(TOuter()).replace("TOuter", "Outer").replace(
        "TScale", "Scale"
    )


@pytest.mark.parametrize("register", ["register_buffer", "register_parameter"])
def test_register_rejects_bad_names_as_torch(register):
    torch = pytest.importorskip("torch")
    ours, theirs = nn.Linear(2, 2), torch.nn.Linear(2, 2)
    value = {"register_buffer": (np.zeros(1), torch.zeros(1))}.get(
        register, (nn.Parameter(np.zeros(1)), torch.nn.Parameter(torch.zeros(1)))
    )
    for name in ["", "a.b", "forward", "training"]:
        with pytest.raises(KeyError) as theirs_err:
            getattr(theirs, register)(name, value[1])
        with pytest.raises((KeyError, ValueError)) as ours_err:
            getattr(ours, register)(name, value[0])
        assert isinstance(ours_err.value, ValueError)
        assert type(theirs_err.value) is KeyError
    with pytest.raises(TypeError, match="should be a string"):
        getattr(ours, register)(3, value[0])
    # re-registering an entry of the same kind is allowed
    getattr(ours, register)("extra", value[0])
    getattr(ours, register)("extra", value[0])
    with pytest.raises(KeyError, match="already exists"):
        ours.register_buffer("weight", np.zeros(1)) if register == "register_buffer" else (
            ours.register_parameter("in_features", nn.Parameter(np.zeros(1)))
        )


def test_summary_errors_speak_of_the_users_input_shape():
    model = minidl.models.LeNet()
    with pytest.raises(ValueError) as err:
        nn.summary(model, (1, 28, 28))
    message = str(err.value)
    assert "input_shape (1, 28, 28)" in message and "classifier.1" in message
    assert "(2, " not in message
    with pytest.raises(ValueError, match=r"input_shape \(3, 8, 8\).*'features.0' \(Conv2d\)"):
        nn.summary(model, (3, 8, 8))
