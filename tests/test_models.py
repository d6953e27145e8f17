"""LeNet for 8x8 digits and its 28x28 variant."""

import numpy as np
import pytest

import minidl
from minidl.models import LeNet


def test_lenet_digits_shapes_and_names():
    model = LeNet()
    out = model(minidl.tensor(np.zeros((5, 1, 8, 8), dtype=np.float32)))
    assert out.shape == (5, 10) and out.dtype == np.float32
    names = list(model.state_dict())
    assert names[:2] == ["features.0.weight", "features.0.bias"]
    assert names[-1] == "classifier.3.bias"


def test_lenet28_shapes():
    model = LeNet(input_size=28)
    assert model(minidl.tensor(np.zeros((2, 1, 28, 28), dtype=np.float32))).shape == (2, 10)
    sd = model.state_dict()
    # classic LeNet-5 sizes: 6 and 16 maps of 5x5 filters, then 120 and 84 hidden units
    assert sd["features.0.weight"].shape == (6, 1, 5, 5)
    assert sd["features.3.weight"].shape == (16, 6, 5, 5)
    assert sd["classifier.1.weight"].shape == (120, 400)
    assert sd["classifier.3.weight"].shape == (84, 120)
    assert sd["classifier.5.weight"].shape == (10, 84)


@pytest.mark.parametrize("bad", [0, -3, 2.5, "8", (4,), (4, 0), (3, 4, 5), True])
def test_lenet_rejects_bad_input_size(bad):
    with pytest.raises(ValueError, match="input_size"):
        LeNet(input_size=bad)


@pytest.mark.parametrize(
    "size, final", [(1, (1, 1)), ((1, 2), (1, 1)), (5, (1, 1)), ((6, 13), (1, 3)), (32, (8, 8))]
)
def test_lenet_other_sizes_keep_size_through_convs_and_halve_in_pools(size, final):
    model = LeNet(num_classes=3, in_channels=2, input_size=size)
    h, w = (size, size) if isinstance(size, int) else size
    assert model(minidl.tensor(np.zeros((4, 2, h, w), dtype=np.float32))).shape == (4, 3)
    sd = model.state_dict()
    assert sd["features.0.weight"].shape == (6, 2, 3, 3)  # LeNet-5's widths by default
    assert sd["classifier.1.weight"].shape == (120, 16 * final[0] * final[1])
    # a square pair is the same network as the int
    assert LeNet(input_size=(8, 8)).state_dict().keys() == LeNet().state_dict().keys()
    assert repr(LeNet(input_size=(28, 28))) == repr(LeNet(input_size=28))


def test_lenet_matches_the_same_torch_network():
    torch = pytest.importorskip("torch")
    tnn = torch.nn
    ours = LeNet(widths=(4, 6, 12)).double()
    c1, c2, h = 4, 6, 12
    theirs = torch.nn.Module()
    theirs.features = tnn.Sequential(
        tnn.Conv2d(1, c1, 3, padding=1),
        tnn.MaxPool2d(2),
        tnn.ReLU(),
        tnn.Conv2d(c1, c2, 3, padding=1),
        tnn.MaxPool2d(2),
        tnn.ReLU(),
    )
    theirs.classifier = tnn.Sequential(
        tnn.Flatten(), tnn.Linear(c2 * 4, h), tnn.ReLU(), tnn.Linear(h, 10)
    )
    theirs = theirs.double()
    assert {k: tuple(v.shape) for k, v in theirs.state_dict().items()} == {
        k: v.shape for k, v in ours.state_dict().items()
    }
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).random((3, 1, 8, 8))
    expected = theirs.classifier(theirs.features(torch.from_numpy(x))).detach().numpy()
    np.testing.assert_allclose(ours(minidl.tensor(x)).data, expected, rtol=1e-10)


def test_pool_then_relu_equals_relu_then_pool_with_gradients():
    # LeNet pools before its ReLUs (a quarter of the ReLU work); the classic order must
    # give exactly the same outputs and gradients.
    from minidl import nn

    minidl.manual_seed(3)
    model = LeNet(widths=(4, 6, 12))
    f = model.features
    classic = nn.Sequential(f[0], nn.ReLU(), nn.MaxPool2d(2), f[3], nn.ReLU(), nn.MaxPool2d(2))
    x = np.random.default_rng(1).standard_normal((5, 1, 8, 8)).astype(np.float32)
    outputs, grads = [], []
    for features in (f, classic):
        model.zero_grad()
        out = model.classifier(features(minidl.tensor(x)))
        (out * minidl.tensor(np.arange(10, dtype=np.float32))).sum().backward()
        outputs.append(out.data)
        grads.append([p.grad.copy() for p in model.parameters()])
    np.testing.assert_array_equal(outputs[0], outputs[1])
    for a, b in zip(*grads):
        np.testing.assert_array_equal(a, b)
