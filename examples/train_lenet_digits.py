"""Train LeNet on scikit-learn's 8x8 digits with minidl's public API.

The same recipe as ``python -m minidl train`` written out (the same weights for the same
seed): seeded init, shuffled and shift-augmented mini-batches, SGD with Nesterov momentum
on a per-step cosine schedule, all run by ``minidl.training.fit``.
Run: python examples/train_lenet_digits.py   (writes lenet_digits.npz)
"""

import minidl
from minidl import data, optim
from minidl.models import LeNet
from minidl.training import fit

EPOCHS, BATCH_SIZE, LR, SEED = 30, 32, 0.05, 0

minidl.set_num_threads(1)  # this model is too small to gain from more threads
minidl.manual_seed(SEED)
X_train, y_train, X_test, y_test = data.load_digits()
model = LeNet()
optimizer = optim.SGD(model.parameters(), lr=LR, momentum=0.9, nesterov=True)
loader = data.DataLoader(
    X_train,
    y_train,
    batch_size=BATCH_SIZE,
    shuffle=True,
    seed=SEED,
    transform=data.random_shift(max_shift=1, seed=SEED + 1),
)
scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=EPOCHS * len(loader))

history = fit(
    model,
    loader,
    optimizer,
    epochs=EPOCHS,
    scheduler=scheduler,  # stepped after every batch (scheduler_step="batch")
    eval_data=(X_test, y_test),
    log=print,
)
print(f"{sum(history.seconds):.1f} s; best test accuracy {max(history.test_accuracy):.4f}")

minidl.save(model.state_dict(), "lenet_digits.npz")
print("saved lenet_digits.npz")
