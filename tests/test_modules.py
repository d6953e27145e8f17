"""nn.Module behaviour: registration, names, state_dict, train/eval, repr, init."""

import math

import numpy as np
import pytest

import minidl
from minidl import nn
from minidl.nn.modules.module import StateDictError


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.scale = nn.Parameter(np.ones(1, dtype=np.float32))
        self.head = nn.Linear(4 * 4 * 4, 3)
        self.not_a_param = np.zeros(3)

    def forward(self, x):
        return self.head(self.features(x).flatten(1)) * self.scale


def test_attribute_assignment_registers_parameters_and_children():
    net = Net()
    names = [name for name, _ in net.named_parameters()]
    assert names == ["scale", "features.0.weight", "features.0.bias", "head.weight", "head.bias"]
    assert [name for name, _ in net.named_children()] == ["features", "head"]
    assert [name for name, _ in net.named_modules()] == [
        "",
        "features",
        "features.0",
        "features.1",
        "features.2",
        "head",
    ]
    assert len(list(net.parameters())) == 5
    assert len(list(net.parameters(recurse=False))) == 1
    assert net.features[0] is list(net.children())[0][0]
    assert "not_a_param" not in dict(net.named_parameters())


def test_reassigning_replaces_and_shared_parameters_are_listed_once():
    lin = nn.Linear(2, 2)
    shared = nn.Sequential(lin, lin)
    assert len(list(shared.parameters())) == 2
    lin.bias = None
    assert [n for n, _ in lin.named_parameters()] == ["weight"]
    with pytest.raises(TypeError, match="bias"):
        lin.bias = np.zeros(2)  # only a Parameter or None may take a parameter's place
    with pytest.raises(TypeError):
        lin.register_parameter("w2", np.zeros(2))


def test_assignment_before_init_is_a_clear_error():
    class Bad(nn.Module):
        def __init__(self):
            self.lin = nn.Linear(1, 1)

    with pytest.raises(AttributeError, match="__init__"):
        Bad()


def test_state_dict_keys_shapes_and_copies():
    net = Net()
    sd = net.state_dict()
    assert list(sd) == ["scale", "features.0.weight", "features.0.bias", "head.weight", "head.bias"]
    assert sd["features.0.weight"].shape == (4, 1, 3, 3)
    assert sd["head.weight"].shape == (3, 64)
    sd["head.bias"][...] = 123.0  # a copy: the module must not change
    assert not np.any(net.head.bias.data == 123.0)


def test_load_state_dict_round_trip_bit_exact(tmp_path):
    minidl.manual_seed(0)
    a = Net()
    minidl.manual_seed(1)
    b = Net()
    minidl.save(a.state_dict(), tmp_path / "a.npz")
    result = b.load_state_dict(minidl.load(tmp_path / "a.npz"))
    assert result.missing_keys == [] and result.unexpected_keys == []
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and va.dtype == vb.dtype
        assert np.array_equal(va, vb)


def test_load_state_dict_names_missing_unexpected_and_misshaped_keys():
    net = Net()
    sd = net.state_dict()
    del sd["head.bias"]
    sd["extra.weight"] = np.zeros(2)
    sd["features.0.weight"] = np.zeros((5, 1, 3, 3))
    with pytest.raises(StateDictError) as info:
        net.load_state_dict(sd)
    message = str(info.value)
    assert '"head.bias"' in message and '"extra.weight"' in message
    assert "features.0.weight" in message and "(5, 1, 3, 3)" in message
    assert isinstance(info.value, RuntimeError) and isinstance(info.value, ValueError)

    sd["features.0.weight"] = np.zeros((4, 1, 3, 3))
    missing, unexpected = net.load_state_dict(sd, strict=False)
    assert missing == ["head.bias"] and unexpected == ["extra.weight"]
    assert np.all(net.features[0].weight.data == 0)


def test_load_state_dict_casts_to_the_parameter_dtype():
    lin = nn.Linear(2, 3)
    lin.load_state_dict({"weight": np.arange(6.0).reshape(3, 2), "bias": np.ones(3)})
    assert lin.weight.dtype == np.float32
    assert np.array_equal(lin.weight.data, np.arange(6, dtype=np.float32).reshape(3, 2))


def test_train_eval_recursive_and_dropout():
    net = nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.Dropout(0.5)))
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    x = minidl.tensor(np.ones((3, 4), dtype=np.float32))
    assert np.array_equal(net[1](x).data, x.data)  # dropout is the identity in eval mode
    net.train()
    assert all(m.training for m in net.modules())
    out = net[1](minidl.tensor(np.ones((50, 40), dtype=np.float32))).data
    assert set(np.unique(out)) <= {0.0, 2.0} and 0 < out.mean() < 2


def test_zero_grad_sets_none_or_zeros():
    lin = nn.Linear(3, 2)
    x = minidl.tensor(np.ones((4, 3), dtype=np.float32))
    lin(x).sum().backward()
    assert lin.weight.grad is not None
    lin.zero_grad(set_to_none=False)
    assert np.all(lin.weight.grad == 0)
    lin.zero_grad()
    assert lin.weight.grad is None and lin.bias.grad is None


def test_linear_matches_numpy():
    lin = nn.Linear(5, 3)
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    expected = x @ lin.weight.data.T + lin.bias.data
    np.testing.assert_allclose(lin(minidl.tensor(x)).data, expected, rtol=1e-6, atol=1e-6)


def test_sequential_container_behaviour():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    assert len(seq) == 2 and isinstance(seq[-1], nn.ReLU)
    seq.append(nn.Linear(3, 1))
    assert [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear"]
    assert isinstance(seq[1:], nn.Sequential) and len(seq[1:]) == 2
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    del seq[1]
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    with pytest.raises(IndexError):
        seq[5]
    out = seq(minidl.tensor(np.ones((4, 2), dtype=np.float32)))
    assert out.shape == (4, 1)


def test_dtype_conversion():
    lin = nn.Linear(2, 2)
    assert lin.weight.dtype == np.float32
    before = lin.weight.data.copy()
    lin.double()
    assert lin.weight.dtype == np.float64 and lin.bias.dtype == np.float64
    assert np.array_equal(lin.weight.data, before.astype(np.float64))
    x = minidl.tensor(np.ones((1, 2)), dtype=np.float64)
    assert lin(x).dtype == np.float64
    assert lin.float().weight.dtype == np.float32


def test_repr_layout():
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten())
    assert repr(net) == (
        "Sequential(\n"
        "  (0): Conv2d(1, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))\n"
        "  (1): ReLU()\n"
        "  (2): Flatten(start_dim=1, end_dim=-1)\n"
        ")"
    )


def _layer_pairs(torch_nn):
    """The same layer built in minidl and in torch."""
    return [
        (nn.Conv2d(1, 8, 3, padding=1), torch_nn.Conv2d(1, 8, 3, padding=1)),
        (
            nn.Conv2d(4, 6, (3, 5), stride=2, dilation=2, groups=2, bias=False),
            torch_nn.Conv2d(4, 6, (3, 5), stride=2, dilation=2, groups=2, bias=False),
        ),
        (nn.Conv1d(2, 4, 3, stride=2), torch_nn.Conv1d(2, 4, 3, stride=2)),
        (
            nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1),
            torch_nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1),
        ),
        (nn.Linear(10, 5), torch_nn.Linear(10, 5)),
        (nn.Linear(10, 5, bias=False), torch_nn.Linear(10, 5, bias=False)),
        (nn.MaxPool2d(2), torch_nn.MaxPool2d(2)),
        (nn.MaxPool2d(3, stride=1, padding=1), torch_nn.MaxPool2d(3, stride=1, padding=1)),
        (nn.AvgPool2d(2), torch_nn.AvgPool2d(2)),
        (nn.ReLU(), torch_nn.ReLU()),
        (nn.Sigmoid(), torch_nn.Sigmoid()),
        (nn.Tanh(), torch_nn.Tanh()),
        (nn.Flatten(), torch_nn.Flatten()),
        (nn.Dropout(0.25), torch_nn.Dropout(0.25)),
        (nn.CrossEntropyLoss(), torch_nn.CrossEntropyLoss()),
        (nn.MSELoss(), torch_nn.MSELoss()),
        (
            nn.Sequential(nn.Conv2d(1, 2, 3), nn.Sequential(nn.ReLU(), nn.Linear(3, 4))),
            torch_nn.Sequential(
                torch_nn.Conv2d(1, 2, 3),
                torch_nn.Sequential(torch_nn.ReLU(), torch_nn.Linear(3, 4)),
            ),
        ),
    ]


def test_repr_state_dict_keys_and_shapes_match_torch():
    torch = pytest.importorskip("torch")
    for ours, theirs in _layer_pairs(torch.nn):
        assert repr(ours) == repr(theirs)
        ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
        assert list(ours_sd) == list(theirs_sd)
        for key in ours_sd:
            assert ours_sd[key].shape == tuple(theirs_sd[key].shape), key
        assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]


def test_forward_matches_torch_after_loading_its_weights():
    torch = pytest.importorskip("torch")
    theirs = torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(48, 5),
    ).double()
    ours = nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(48, 5)
    ).double()
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((2, 1, 8, 8))
    np.testing.assert_allclose(
        ours(minidl.tensor(x)).data, theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-10
    )


@pytest.mark.parametrize(
    "make, fan_in",
    [
        (lambda: nn.Linear(50, 400), 50),
        (lambda: nn.Conv2d(6, 100, (3, 2)), 6 * 3 * 2),
        (lambda: nn.Conv1d(4, 200, 5), 4 * 5),
        # transposed conv weight is (in, out // groups, kh, kw): PyTorch's fan_in uses dim 1
        (lambda: nn.ConvTranspose2d(200, 6, 3), 6 * 3 * 3),
    ],
)
def test_default_init_is_uniform_within_one_over_sqrt_fan_in(make, fan_in):
    minidl.manual_seed(0)
    layer = make()
    # kaiming_uniform(a=sqrt(5)): gain sqrt(2 / (1 + 5)), bound sqrt(3) * gain / sqrt(fan_in)
    bound = math.sqrt(3.0) * math.sqrt(2.0 / 6.0) / math.sqrt(fan_in)
    w = layer.weight.data.astype(np.float64).ravel()
    assert np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.95 * bound
    assert abs(w.var() - bound**2 / 3) < 0.1 * bound**2 / 3  # variance of U(-b, b)
    b = layer.bias.data.astype(np.float64)
    assert np.abs(b).max() <= 1 / math.sqrt(fan_in)


def test_init_is_reproducible_with_manual_seed():
    minidl.manual_seed(3)
    a = nn.Conv2d(2, 3, 3).state_dict()
    minidl.manual_seed(3)
    b = nn.Conv2d(2, 3, 3).state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    c = nn.Conv2d(2, 3, 3).state_dict()
    assert not np.array_equal(a["weight"], c["weight"])


def test_init_functions_fill_in_place():
    t = nn.Parameter(np.empty((20, 30), dtype=np.float32))
    assert nn.init.zeros_(t) is t and np.all(t.data == 0)
    nn.init.ones_(t)
    assert np.all(t.data == 1)
    nn.init.uniform_(t, -2, 3)
    assert t.data.min() >= -2 and t.data.max() <= 3 and t.data.dtype == np.float32
    nn.init.xavier_uniform_(t)
    assert np.abs(t.data).max() <= math.sqrt(6.0 / 50)
    nn.init.kaiming_uniform_(t, nonlinearity="relu")
    assert np.abs(t.data).max() <= math.sqrt(2.0) * math.sqrt(3.0 / 30)
    assert nn.init.calculate_gain("tanh") == pytest.approx(5 / 3)
    with pytest.raises(ValueError):
        nn.init.kaiming_uniform_(nn.Parameter(np.zeros(3, dtype=np.float32)))
    with pytest.raises(ValueError):
        nn.init.calculate_gain("nope")


def test_bad_layer_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="Conv2d: kernel_size must be an int or a tuple of 2"):
        nn.Conv2d(1, 1, (3, 3, 3))
    with pytest.raises(TypeError, match="Conv1d: stride must contain ints"):
        nn.Conv1d(1, 1, 3, stride=(1.5,))
    with pytest.raises(ValueError, match="in_features"):
        nn.Linear(0, 3)
    with pytest.raises(ValueError, match="dropout probability"):
        nn.Dropout(1.5)
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="avg")


def test_summary_lists_layers_and_total(capsys):
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 10)
    )
    nn.summary(net, (1, 8, 8))
    text = capsys.readouterr().out
    assert "Conv2d-1" in text and "[-1, 4, 8, 8]" in text and "[-1, 4, 4, 4]" in text
    assert "[-1, 10]" in text
    total = (4 * 9 + 4) + (64 * 10 + 10)
    assert f"Total params: {total:,}" in text
    assert net.training  # summary restores the mode


def test_forward_hook_runs_and_is_removable():
    seen = []
    lin = nn.Linear(2, 2)
    handle = lin.register_forward_hook(lambda m, inp, out: seen.append(out.shape))
    lin(minidl.tensor(np.ones((3, 2), dtype=np.float32)))
    handle.remove()
    lin(minidl.tensor(np.ones((3, 2), dtype=np.float32)))
    assert seen == [(3, 2)]


def test_max_pool_layer_returns_pytorchs_indices():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype(np.float32)
    out, indices = nn.MaxPool2d(3, stride=2, padding=1, return_indices=True)(minidl.tensor(x))
    t_out, t_indices = torch.nn.MaxPool2d(3, stride=2, padding=1, return_indices=True)(
        torch.tensor(x)
    )
    np.testing.assert_array_equal(out.data, t_out.numpy())
    np.testing.assert_array_equal(indices.data, t_indices.numpy())


@pytest.mark.parametrize(
    "layer, option",
    [
        (lambda: nn.MaxPool2d(2, dilation=2), "dilation"),
        (lambda: nn.MaxPool2d(2, ceil_mode=True), "ceil_mode"),
        (lambda: nn.AvgPool2d(2, ceil_mode=True), "ceil_mode"),
        (lambda: nn.AvgPool2d(2, divisor_override=3), "divisor_override"),
    ],
)
def test_pool_layers_pass_unsupported_options_to_the_functional(layer, option):
    with pytest.raises(ValueError, match=f"pool2d: .*{option}"):
        layer()(minidl.tensor(np.zeros((1, 1, 4, 4), np.float32)))


def test_is_tensor():
    assert minidl.is_tensor(minidl.tensor([1.0]))
    assert minidl.is_tensor(nn.Parameter(np.zeros(2, np.float32)))
    assert not minidl.is_tensor(np.zeros(2))
    assert not minidl.is_tensor([1.0])
