"""DepthwiseSeparableConv2d, MobileNetDigits, the CLI registry and summary of the layers of
issue 20."""

import numpy as np
import pytest

import minidl
import minidl.nn.functional as F
from minidl import cli, gradcheck, nn, tensor
from minidl.models import MobileNetDigits
from minidl.summary import summary_text


def test_separable_conv_children_keys_and_repr():
    m = nn.DepthwiseSeparableConv2d(4, 6, 3, stride=2, padding=1)
    assert list(m.state_dict()) == [
        "depthwise.weight",
        "depthwise.bias",
        "pointwise.weight",
        "pointwise.bias",
    ]
    assert m.depthwise.weight.shape == (4, 1, 3, 3) and m.depthwise.groups == 4
    assert m.pointwise.weight.shape == (6, 4, 1, 1)
    assert "(depthwise): Conv2d(4, 4, kernel_size=(3, 3), stride=(2, 2)" in repr(m)
    assert list(nn.DepthwiseSeparableConv2d(4, 6, 3, bias=False).state_dict()) == [
        "depthwise.weight",
        "pointwise.weight",
    ]


def test_separable_conv_is_the_two_convs():
    rng = np.random.default_rng(0)
    m = nn.DepthwiseSeparableConv2d(3, 5, 3, stride=2, padding=1).double()
    x = rng.standard_normal((2, 3, 7, 7))
    # each input channel with its own filter, then a 1x1 mix (written out with numpy)
    dw = np.stack(
        [
            F.conv2d(
                tensor(x[:, c : c + 1]), m.depthwise.weight[c : c + 1], stride=2, padding=1
            ).data[:, 0]
            + m.depthwise.bias.data[c]
            for c in range(3)
        ],
        axis=1,
    )
    want = np.einsum("nchw,fc->nfhw", dw, m.pointwise.weight.data[:, :, 0, 0])
    want += m.pointwise.bias.data[None, :, None, None]
    np.testing.assert_allclose(m(tensor(x)).data, want, rtol=1e-12, atol=1e-12)


def test_separable_conv_gradcheck():
    m = nn.DepthwiseSeparableConv2d(2, 3, 3, padding=1).double()
    x = tensor(np.random.default_rng(1).standard_normal((2, 2, 5, 5)), requires_grad=True)
    assert gradcheck(lambda t, *p: m(t), (x, *m.parameters()))


def test_separable_conv_validation():
    with pytest.raises(ValueError, match="in_channels"):
        nn.DepthwiseSeparableConv2d(0, 3, 3)
    with pytest.raises(ValueError, match="out_channels"):
        nn.DepthwiseSeparableConv2d(2, 1.5, 3)


def test_mobilenet_shapes_layers_and_backward():
    minidl.manual_seed(0)
    m = MobileNetDigits()
    kinds = {type(layer).__name__ for layer in m.modules()}
    assert {"BatchNorm2d", "ReLU6", "DepthwiseSeparableConv2d", "AdaptiveAvgPool2d"} <= kinds
    x = tensor(np.random.default_rng(0).random((4, 1, 8, 8)).astype(np.float32))
    out = m(x)
    assert out.shape == (4, 10) and out.dtype == np.float32
    F.cross_entropy(out, np.arange(4)).backward()
    assert all(p.grad is not None and np.isfinite(p.grad).all() for p in m.parameters())
    m.eval()
    assert m(x).shape == (4, 10)


def test_mobilenet_is_in_the_cli_registry():
    assert cli.MODELS["mobilenet"] is MobileNetDigits
    assert cli.build_parser().parse_args(["train", "--model", "mobilenet"]).model == "mobilenet"


def test_mobilenet_learns_a_little(tmp_path):
    # two epochs on the digits: far above chance (10 %)
    metrics = tmp_path / "m.json"
    code = cli.main(
        [
            "train",
            "--model",
            "mobilenet",
            "--epochs",
            "2",
            "--save",
            str(tmp_path / "m.npz"),
            "--metrics-json",
            str(metrics),
            "--quiet",
        ]
    )
    assert code == 0
    import json

    assert json.loads(metrics.read_text())["test_accuracy"] > 0.5
    restored = MobileNetDigits()
    restored.load_state_dict(minidl.load(str(tmp_path / "m.npz")))


def test_summary_separable_conv_beside_a_standard_conv():
    text = summary_text(
        nn.Sequential(nn.DepthwiseSeparableConv2d(32, 64, 3, padding=1)), (32, 8, 8)
    )
    # 32*9 + 32 + 32*64 + 64 = 2,432 against 32*64*9 + 64 = 18,496
    assert "2,432 params (a standard Conv2d of that shape: 18,496)" in text
    assert "Total params: 2,432" in text


def test_summary_handles_every_layer_of_issue_20():
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU6(),
        nn.TransformConv2d(4, 4, 3, padding=1),
        nn.MinPool2d(2),
        nn.Upsample(scale_factor=2),
        nn.DepthwiseSeparableConv2d(4, 8, 3, padding=1),
        nn.AdaptiveAvgPool2d(1),
    )
    text = summary_text(model, (1, 8, 8))
    for name, shape, count in [
        ("BatchNorm2d-2", "[-1, 4, 8, 8]", "8"),
        ("ReLU6-3", "[-1, 4, 8, 8]", "0"),
        ("TransformConv2d-4", "[-1, 4, 8, 8]", "148"),
        ("MinPool2d-5", "[-1, 4, 4, 4]", "0"),
        ("Upsample-6", "[-1, 4, 8, 8]", "0"),
        ("AdaptiveAvgPool2d-9", "[-1, 8, 1, 1]", "0"),
    ]:
        line = next(row for row in text.splitlines() if name in row)
        assert shape in line and line.split()[-1] == count, line
    assert "separable conv above: 80 params (a standard Conv2d of that shape: 296)" in text
