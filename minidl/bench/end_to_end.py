"""LeNet on the digits in minidl and in an equivalent PyTorch model, side by side.

Two architectures are timed (``MODELS``):
- ``LeNet-digits``: the network whose layers are the LeNet-digits shapes of the kernel
  benchmarks (conv 1->6 at 8x8, k3 p1; conv 6->16 at 4x4, k3 p1; then LeNet-5's 120-84
  MLP), the small network issue 5's end-to-end targets are about;
- ``LeNet() default``: the wider model ``minidl train`` trains (widths 32/64/128), whose
  conv 32->64 makes the forward pass GEMM-bound.

The PyTorch model is an ``nn.Sequential`` mirroring minidl's LeNet leaf by leaf, with the
weights copied from minidl's state_dict, and checked to give the same outputs before
anything is timed. Both train on the same batches (already in memory, one fixed shuffled
order), batch size 64, SGD with momentum 0.9, at the same thread count.
"""

import numpy as np

END_TO_END = ("lenet-train-epoch", "lenet-inference")  # the suite's op names for the rows
BATCH_SIZE = 64
# shape name in the suite's rows -> LeNet(widths=...) (None: LeNet()'s defaults)
MODELS = (("LeNet-digits", (6, 16, 120, 84)), ("LeNet() default", None))
LR = 0.05
MOMENTUM = 0.9


def _leaves(model):
    return [m for m in model.modules() if not list(m.children())]


def _as_tuple(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _mirror_leaf(torch, module):
    """The torch.nn module equivalent to one minidl leaf module."""
    nn = torch.nn
    kind = type(module).__name__
    if kind == "Conv2d":
        return nn.Conv2d(
            module.in_channels,
            module.out_channels,
            module.kernel_size,
            stride=module.stride,
            padding=module.padding,
            dilation=getattr(module, "dilation", 1),
            groups=getattr(module, "groups", 1),
            bias=module.bias is not None,
        )
    if kind == "Linear":
        return nn.Linear(module.in_features, module.out_features, bias=module.bias is not None)
    if kind in ("MaxPool2d", "AvgPool2d"):
        kwargs = dict(stride=module.stride, padding=getattr(module, "padding", 0))
        if kind == "AvgPool2d":
            kwargs["count_include_pad"] = getattr(module, "count_include_pad", True)
        return getattr(nn, kind)(module.kernel_size, **kwargs)
    if kind == "Flatten":
        return nn.Flatten(getattr(module, "start_dim", 1), getattr(module, "end_dim", -1))
    if kind == "Dropout":
        return nn.Dropout(module.p)
    if kind in ("ReLU", "Tanh", "Sigmoid"):
        return getattr(nn, kind)()
    raise NotImplementedError(f"no PyTorch mirror for minidl module {kind}")


def torch_mirror(torch, model):
    """An nn.Sequential of model's leaves with model's weights (checked equal outputs)."""
    mirror = torch.nn.Sequential(*[_mirror_leaf(torch, m) for m in _leaves(model)])
    ours = [p for _, p in model.named_parameters()]
    theirs = list(mirror.parameters())
    if [tuple(p.shape) for p in ours] != [tuple(p.shape) for p in theirs]:
        raise RuntimeError(
            "the PyTorch mirror's parameters do not match LeNet's: "
            f"{[tuple(p.shape) for p in ours]} vs {[tuple(p.shape) for p in theirs]}"
        )
    with torch.no_grad():
        for mine, other in zip(ours, theirs):
            other.copy_(torch.from_numpy(np.array(mine.data, dtype=np.float32)))
    return mirror


def check_same_outputs(torch, model, mirror, images):
    import minidl

    model.eval()
    mirror.eval()
    with minidl.no_grad():
        ours = np.asarray(model(minidl.tensor(images)).data)
    with torch.no_grad():
        theirs = mirror(torch.from_numpy(images)).numpy()
    model.train()
    mirror.train()
    if ours.shape != theirs.shape or not np.allclose(ours, theirs, rtol=1e-4, atol=1e-5):
        raise RuntimeError(
            "the PyTorch mirror of LeNet does not reproduce minidl's outputs "
            f"(max difference {np.max(np.abs(ours - theirs)):.3g})"
        )


def _batches(n, batch_size, seed=0):
    order = np.random.default_rng(seed).permutation(n)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def build(torch=None, max_train=None, widths=None):
    """Callables {framework: {"epoch": f, "inference": f}} and a description dict for
    ``LeNet(widths=widths)``. ``max_train`` limits the training images (the tiny test mode)."""
    import minidl
    import minidl.nn.functional as F
    from minidl import optim
    from minidl.data import load_digits
    from minidl.models import LeNet

    X_train, y_train, X_test, y_test = load_digits()
    if max_train is not None:
        X_train, y_train = X_train[:max_train], y_train[:max_train]
    index_batches = _batches(len(X_train), BATCH_SIZE)

    minidl.manual_seed(0)
    model = LeNet(widths=widths)
    inference_model = LeNet(widths=widths)
    inference_model.load_state_dict(model.state_dict())
    inference_model.eval()
    optimizer = optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    batches = [(minidl.tensor(np.ascontiguousarray(X_train[i])), y_train[i]) for i in index_batches]
    test_images = minidl.tensor(np.ascontiguousarray(X_test))

    def minidl_epoch():
        model.train()
        for xb, yb in batches:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            optimizer.step()

    def minidl_inference():
        with minidl.no_grad():
            inference_model(test_images)

    calls = {"minidl": {"epoch": minidl_epoch, "inference": minidl_inference}}
    about = {
        "train_images": len(X_train),
        "test_images": len(X_test),
        "batches_per_epoch": len(batches),
        "batch_size": BATCH_SIZE,
        "optimizer": f"SGD(lr={LR}, momentum={MOMENTUM})",
        "model": repr(model),
    }
    if torch is None:
        return calls, about

    mirror = torch_mirror(torch, model)
    check_same_outputs(torch, model, mirror, np.ascontiguousarray(X_test[:32]))
    torch_inference_model = torch_mirror(torch, inference_model)
    torch_inference_model.eval()
    torch_optimizer = torch.optim.SGD(mirror.parameters(), lr=LR, momentum=MOMENTUM)
    torch_batches = [
        (torch.from_numpy(np.ascontiguousarray(X_train[i])), torch.from_numpy(y_train[i]))
        for i in index_batches
    ]
    torch_test = torch.from_numpy(np.ascontiguousarray(X_test))
    cross_entropy = torch.nn.functional.cross_entropy

    def torch_epoch():
        mirror.train()
        for xb, yb in torch_batches:
            torch_optimizer.zero_grad()
            loss = cross_entropy(mirror(xb), yb)
            loss.backward()
            torch_optimizer.step()

    def torch_inference():
        with torch.no_grad():
            torch_inference_model(torch_test)

    calls["torch"] = {"epoch": torch_epoch, "inference": torch_inference}
    about["torch_model"] = repr(mirror)
    return calls, about
