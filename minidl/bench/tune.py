"""``python -m minidl tune``: time every conv path at the layers that matter here and
write this machine's table (minidl.ops.conv_tune)."""

import time

import numpy as np

import minidl
from minidl._threads import get_num_threads, set_num_threads
from minidl.ops import conv_plan as CP
from minidl.ops import conv_tune
from minidl.training import DEFAULT_BATCH_SIZE

# the digits' test split (minidl.data.load_digits), what evaluation runs in one batch
INFERENCE_BATCH = 360


def _model_layers(batch_sizes) -> set[tuple]:
    """The conv layers (conv_plan's cache keys, pooled ones included) of one training
    step of ``LeNet()``, the LeNet-digits model of the suite and the CIFAR-size network
    at each batch size, and of the two LeNets' inference on the digits' test split."""
    from minidl.bench import cifar
    from minidl.bench.end_to_end import MODELS
    from minidl.models import LeNet

    CP.clear_cache()
    lenets = [LeNet(widths=widths) for _, widths in MODELS]
    for n in batch_sizes:
        models = [(m, (n, 1, 8, 8)) for m in lenets] + [(cifar.cifar_net(), (n, 3, 32, 32))]
        for model, shape in models:
            x, y = cifar.synthetic_batch(shape)
            loss = minidl.nn.functional.cross_entropy(model(minidl.tensor(x)), minidl.tensor(y))
            loss.backward()
    with minidl.no_grad():
        for model in lenets:
            model(minidl.tensor(cifar.synthetic_batch((INFERENCE_BATCH, 1, 8, 8))[0]))
    keys = set(CP._PLANS)
    CP.clear_cache()
    return keys


def _suite_layers(batch_sizes) -> set[tuple]:
    """The conv layers of the benchmark suite (minidl.bench.shapes), training, float32."""
    from minidl.bench.shapes import CONV_SHAPES

    out = set()
    for s in CONV_SHAPES:
        for n in batch_sizes or (s.n,):
            layer = ((n, s.c, s.h, s.w), (s.f, s.c, s.k, s.k), np.dtype(np.float32))
            pair = ((s.stride,) * 2, (s.padding,) * 2, (1, 1))
            out.add(layer + pair + (1, True, 0, False))
    return out


def tune(full: bool = False, threads: tuple[int, ...] | None = None, log=print) -> str:
    """Time every eligible path of each pass at the suite's layers and those of the
    LeNets and the CIFAR-size network (``full``: more batch sizes, more repeats), at
    each thread count of ``threads`` (default: 1 and minidl's), and write the fastest as
    this machine's table; returns its path."""
    saved = get_num_threads()
    threads = tuple(sorted({1, saved})) if threads is None else tuple(threads)
    batches = (DEFAULT_BATCH_SIZE, 64) + ((1, 16, 128) if full else ())
    repeats = 7 if full else 5
    plans: dict[str, CP.ConvPlan] = {}
    start = time.perf_counter()
    try:
        for nt in threads:
            set_num_threads(nt)
            layers = _model_layers(batches) | _suite_layers(batches if full else ())
            for layer in sorted(layers, key=str):
                layer = layer[:8] + (nt,) + layer[9:]  # (..., threads, pooled)
                plan, _ = conv_tune.measure_plan(*layer, repeats=repeats)
                key = conv_tune.layer_key(*layer)
                plans[key] = plan
                k = layer[1][2]
                log(f"{key}: " + " / ".join(getattr(plan, p).describe(k) for p in CP.PASSES))
    finally:
        set_num_threads(saved)
    path = conv_tune.save_table(plans)
    CP.reload_table()
    log(f"{len(plans)} layers timed in {time.perf_counter() - start:.1f} s; table: {path}")
    return path
