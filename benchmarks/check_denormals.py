"""Do denormal floats appear while LeNet trains? (Pitfall: they can slow small networks by
several times near convergence.) Counts denormal float32 values in the parameters, their
gradients and the conv features over 30 epochs of SGD on the digits.
Run by hand:  python benchmarks/check_denormals.py
"""
import numpy as np

import minidl
import minidl.nn.functional as F
from minidl import optim, data
from minidl.models import LeNet
tiny = np.finfo(np.float32).tiny
def denormal_fraction(a):
    a = np.abs(a[np.isfinite(a)])
    return np.count_nonzero((a > 0) & (a < tiny)) / max(a.size, 1)
X, y, Xt, yt = data.load_digits()
minidl.manual_seed(0); minidl.set_num_threads(1)
model = LeNet(); opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
loader = data.DataLoader(X, y, batch_size=32, shuffle=True, seed=0)
for epoch in range(30):
    worst = 0.0
    for xb, yb in loader:
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(); loss.backward(); opt.step()
        for p in model.parameters():
            worst = max(worst, denormal_fraction(p.data), denormal_fraction(p.grad))
    if epoch % 5 == 4:
        acts = model.features(minidl.tensor(X[:256])).data
        print(f"epoch {epoch+1}: loss {loss.item():.4f}, worst denormal fraction in params/grads {worst:.2e}, in features {denormal_fraction(acts):.2e}")
