"""A PyTorch training script for a small CNN runs on minidl with only its imports changed.

``SCRIPT`` is written as a PyTorch user writes one (it also runs on PyTorch itself, checked
below when torch is installed). The minidl run swaps the four import lines and nothing
else, trains on the digits for a few epochs and checks that the loss falls and that the
checkpoint reloads into an identical model.
"""

import numpy as np
import pytest

SCRIPT = """
import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn, optim
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)

digits = load_digits()
images = torch.tensor(digits.images[:600] / 16.0, dtype=torch.float32).unsqueeze(1)
labels = torch.tensor(digits.target[:600], dtype=torch.int64)
train_set = TensorDataset(images[:480], labels[:480])
test_set = TensorDataset(images[480:], labels[480:])
train_loader = DataLoader(train_set, batch_size=32, shuffle=True)
test_loader = DataLoader(test_set, batch_size=60)


class Net(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, kernel_size=3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.dropout = nn.Dropout(0.25)
        self.fc1 = nn.Linear(16 * 2 * 2, 64)
        self.fc2 = nn.Linear(64, num_classes)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = x.view(x.size(0), -1)
        x = self.dropout(F.relu(self.fc1(x)))
        return self.fc2(x)


model = Net()
criterion = nn.CrossEntropyLoss(label_smoothing=0.05)
optimizer = optim.Adam(model.parameters(), lr=0.01)
scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)

epoch_losses = []
for epoch in range(EPOCHS):
    model.train()
    total = 0.0
    for inputs, targets in train_loader:
        optimizer.zero_grad()
        loss = criterion(model(inputs), targets)
        loss.backward()
        optimizer.step()
        total += loss.item() * inputs.size(0)
    scheduler.step()
    epoch_losses.append(total / len(train_set))

    model.eval()
    correct = 0
    with torch.no_grad():
        for inputs, targets in test_loader:
            predicted = model(inputs).argmax(dim=1)
            correct += (predicted == targets).sum().item()
    accuracy = correct / len(test_set)
    print(f"epoch {epoch + 1}: last batch loss {loss:.4f}, test accuracy {accuracy:.3f}, "
          f"lr {scheduler.get_last_lr()[0]:.4g}")

torch.save(model.state_dict(), CHECKPOINT)
restored = Net()
restored.load_state_dict(torch.load(CHECKPOINT))
restored.eval()
with torch.no_grad():
    difference = (restored(images[:16]) - model(images[:16])).abs().max().item()
"""

TORCH_IMPORTS = {
    "import torch": "import minidl as torch",
    "from torch import nn, optim": "from minidl import nn, optim",
    "import torch.nn.functional as F": "import minidl.nn.functional as F",
    "from torch.utils.data import DataLoader, TensorDataset": (
        "from minidl.data import DataLoader, TensorDataset"
    ),
}


def minidl_script():
    lines = SCRIPT.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(("import ", "from ")) and "torch" in line:
            lines[i] = TORCH_IMPORTS[line]  # a KeyError means an import this test forgot
    return "\n".join(lines)


def run(text, tmp_path, epochs=3):
    namespace = {"EPOCHS": epochs, "CHECKPOINT": str(tmp_path / "model.ckpt"), "__name__": "s"}
    exec(compile(text, "pytorch_script.py", "exec"), namespace)
    return namespace


def test_only_the_import_lines_differ():
    ours, theirs = minidl_script().splitlines(), SCRIPT.splitlines()
    changed = [(a, b) for a, b in zip(theirs, ours) if a != b]
    assert len(ours) == len(theirs) and len(changed) == len(TORCH_IMPORTS)
    assert all(a.split()[0] in ("import", "from") for a, _ in changed)


def test_pytorch_script_trains_on_minidl(tmp_path, capsys):
    ns = run(minidl_script(), tmp_path)
    losses = ns["epoch_losses"]
    assert len(losses) == 3 and all(np.isfinite(losses))
    assert losses[-1] < 0.7 * losses[0], losses
    assert ns["accuracy"] > 0.5
    assert ns["difference"] == 0.0
    assert "epoch 3: last batch loss" in capsys.readouterr().out


def test_the_script_is_real_pytorch(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    ns = run(SCRIPT, tmp_path, epochs=2)
    assert ns["epoch_losses"][-1] < ns["epoch_losses"][0]
    assert ns["difference"] == 0.0
