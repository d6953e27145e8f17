"""Train LeNet on scikit-learn's 8x8 digits with minidl's public API.

The same recipe as ``python -m minidl train`` written out: seeded init, shuffled and
shift-augmented mini-batches, SGD with Nesterov momentum on a cosine schedule.
Run: python examples/train_lenet_digits.py   (writes lenet_digits.npz)
"""

import numpy as np

import minidl
import minidl.nn.functional as F
from minidl import data, optim
from minidl.models import LeNet

EPOCHS, BATCH_SIZE, LR, SEED = 30, 32, 0.05, 0

minidl.set_num_threads(1)  # this model is too small to gain from more threads
minidl.manual_seed(SEED)
X_train, y_train, X_test, y_test = data.load_digits()
loader = data.DataLoader(
    X_train,
    y_train,
    batch_size=BATCH_SIZE,
    shuffle=True,
    seed=SEED,
    transform=data.random_shift(max_shift=1, seed=SEED + 1),
)
model = LeNet()
optimizer = optim.SGD(model.parameters(), lr=LR, momentum=0.9, nesterov=True)
scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=EPOCHS * len(loader))

for epoch in range(1, EPOCHS + 1):
    model.train()
    total = 0.0
    for images, labels in loader:
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        total += loss.item() * len(labels)

    model.eval()
    with minidl.no_grad():
        predictions = model(minidl.tensor(X_test)).data.argmax(axis=1)
    test_accuracy = np.mean(predictions == y_test)
    print(f"epoch {epoch:2d}  loss {total / len(X_train):.4f}  test acc {test_accuracy:.4f}")

minidl.save(model.state_dict(), "lenet_digits.npz")
print("saved lenet_digits.npz")
