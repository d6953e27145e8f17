"""Threads and processes never corrupt each other (issue 22).

Two Python threads training two models at once get the weights of training them one
after the other; ``no_grad`` is per thread; a model shared by inference threads gives
one thread's outputs; kernels work in a child forked after OpenMP ran in the parent;
forward passes that are never differentiated free their graphs.
"""

import multiprocessing
import threading
import tracemalloc

import numpy as np
import pytest

import minidl
import minidl.nn.functional as F
from minidl.data import DataLoader, load_digits
from minidl.models import LeNet


def _fresh_model(seed):
    minidl.manual_seed(seed)
    return LeNet()


def _train(model, steps, seed, out, key):
    X, y, _, _ = load_digits()
    opt = minidl.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loader = DataLoader(X, y, batch_size=32, shuffle=True, seed=seed)
    done = 0
    while done < steps:
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            done += 1
            if done == steps:
                break
    out[key] = {k: v.copy() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("threads", [1, 2])
def test_two_threads_training_two_models_get_the_sequential_weights(threads):
    saved = minidl.get_num_threads()
    minidl.set_num_threads(threads)
    try:
        sequential, concurrent = {}, {}
        for key, seed in (("a", 1), ("b", 2)):
            _train(_fresh_model(seed), 20, seed, sequential, key)
        models = {"a": _fresh_model(1), "b": _fresh_model(2)}
        workers = [
            threading.Thread(target=_train, args=(models[k], 20, s, concurrent, k))
            for k, s in (("a", 1), ("b", 2))
        ]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=120)
        assert not any(w.is_alive() for w in workers)
    finally:
        minidl.set_num_threads(saved)
    for key in ("a", "b"):
        for name, value in sequential[key].items():
            np.testing.assert_array_equal(concurrent[key][name], value, err_msg=f"{key}.{name}")


def test_no_grad_in_one_thread_does_not_reach_another():
    entered, checked = threading.Event(), threading.Event()
    seen = {}

    def inside_no_grad():
        with minidl.no_grad():
            entered.set()
            checked.wait(timeout=10)
            seen["inner"] = minidl.is_grad_enabled()

    t = threading.Thread(target=inside_no_grad)
    t.start()
    entered.wait(timeout=10)
    x = minidl.tensor([1.0, 2.0], requires_grad=True)
    seen["outer_records"] = (x * 2).requires_grad
    seen["outer"] = minidl.is_grad_enabled()
    checked.set()
    t.join(timeout=10)
    assert seen == {"inner": False, "outer_records": True, "outer": True}


def test_a_model_shared_by_inference_threads_gives_one_threads_outputs():
    model = _fresh_model(3).eval()
    X = load_digits()[2][:96]
    with minidl.no_grad():
        want = model(minidl.tensor(X)).data
    results = [None] * 4

    def infer(i):
        with minidl.no_grad():
            results[i] = [model(minidl.tensor(X)).data for _ in range(10)]

    workers = [threading.Thread(target=infer, args=(i,)) for i in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    for outputs in results:
        for out in outputs:
            np.testing.assert_array_equal(out, want)


def _conv_in_child(queue):
    rng = np.random.default_rng(0)
    x = minidl.tensor(rng.standard_normal((8, 4, 12, 12)).astype(np.float32))
    w = minidl.tensor(rng.standard_normal((8, 4, 3, 3)).astype(np.float32))
    minidl.set_num_threads(2)
    queue.put(float(F.conv2d(x, w, padding=1).data.sum()))


def test_kernels_work_in_a_process_forked_after_openmp_ran():
    rng = np.random.default_rng(0)
    x = minidl.tensor(rng.standard_normal((8, 4, 12, 12)).astype(np.float32))
    w = minidl.tensor(rng.standard_normal((8, 4, 3, 3)).astype(np.float32))
    saved = minidl.get_num_threads()
    minidl.set_num_threads(2)
    try:
        want = float(F.conv2d(x, w, padding=1).data.sum())  # the parent's OpenMP team exists
    finally:
        minidl.set_num_threads(saved)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_conv_in_child, args=(queue,))
    child.start()
    child.join(timeout=60)
    if child.is_alive():
        child.kill()
        pytest.fail("a kernel hung in a child forked after OpenMP ran in the parent")
    assert child.exitcode == 0
    assert queue.get(timeout=5) == want


def test_forward_passes_never_differentiated_free_their_graphs():
    model = _fresh_model(4)
    x = minidl.tensor(load_digits()[0][:32])

    def forward_many(n):
        for _ in range(n):
            model(x).sum()

    forward_many(50)  # warm caches and free lists
    tracemalloc.start()
    try:
        forward_many(100)
        base = tracemalloc.get_traced_memory()[0]
        forward_many(1000)
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    # one forward's graph holds ~100 KB of activations: a leak of 1000 would be ~100 MB
    assert grown < 2 * 2**20, f"{grown / 2**20:.1f} MiB still held after 1000 forwards"
