"""Side-by-side timing: interleave repeats of two callables so that drift hits both.

A *sample* is the mean time of ``number`` back-to-back calls, where ``number`` is chosen
per callable so that one sample lasts at least ``min_time`` seconds (one call for slow
callables such as the naive loops). Repeats alternate which callable runs first.
"""

import gc
import math
import statistics
import time
from dataclasses import asdict, dataclass, field


@dataclass
class Stats:
    """Seconds per call over the repeats of one callable."""

    median: float
    min: float
    max: float
    repeats: int
    number: int  # calls per sample
    samples: list[float] = field(default_factory=list)  # in the order they were taken

    @classmethod
    def of(cls, samples, number=1):
        """Median, min and max of ``samples`` (seconds per call)."""
        return cls(
            median=statistics.median(samples),
            min=min(samples),
            max=max(samples),
            repeats=len(samples),
            number=number,
            samples=list(samples),
        )

    def scaled(self, factor):
        """The same statistics times ``factor`` (a time measured on part of a batch)."""
        return Stats(
            self.median * factor,
            self.min * factor,
            self.max * factor,
            self.repeats,
            self.number,
            [t * factor for t in self.samples],
        )

    def to_dict(self):
        return asdict(self)


def sign_test_slower(times, baseline):
    """Whether ``times`` is slower than ``baseline``, sample i of each taken in the same
    interleaved round: (rounds where it was slower, rounds that differ, one-sided p-value
    of a sign test, i.e. the chance of at least that many slower rounds if neither side
    were slower).  A consistent slowdown of a few per cent shows as a small p even when
    the noise between rounds is larger; the same code on both sides does not."""
    if len(times) != len(baseline):
        raise ValueError(f"sign_test_slower: {len(times)} samples against {len(baseline)}")
    slower = sum(t > b for t, b in zip(times, baseline))
    rounds = sum(t != b for t, b in zip(times, baseline))
    p = sum(math.comb(rounds, k) for k in range(slower, rounds + 1)) / 2**rounds
    return slower, rounds, p


def gflops(flops, seconds):
    return flops / seconds / 1e9


def time_calls(fn, repeats, warmup=1):
    """Seconds of each of ``repeats`` back-to-back calls of fn() (after ``warmup`` untimed
    calls), one call per sample and no interleaving."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def _calibrate(fn, min_time):
    """Calls per sample so that a sample lasts at least ``min_time`` seconds."""
    start = time.perf_counter()
    fn()
    once = time.perf_counter() - start
    if once >= min_time:
        return 1
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            return number
        # aim slightly above min_time from the current estimate, grow at least 2x
        number = max(2 * number, int(number * min_time * 1.2 / max(elapsed, 1e-9)))


def _sample(fn, number):
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def time_interleaved(
    fns, repeats, min_time=0.01, warmup=1, repeats_override=None, disable_gc=True, pause_after=None
):
    """Time every callable of ``fns`` (name -> callable), interleaving their repeats.

    ``repeats_override`` maps a name to a smaller repeat count (the naive loops): that
    callable takes part only in the first rounds. ``disable_gc``: as timeit, no garbage
    collection while timing (end-to-end training keeps it on: it is part of the cost a
    user pays). ``pause_after`` maps a name to seconds of sleep after each of its samples
    (threaded OpenBLAS keeps its workers spinning for a while after a call, and the next
    sample would run against them). Returns name -> Stats.
    """
    repeats_override = repeats_override or {}
    pause_after = pause_after or {}
    numbers = {}
    for name, fn in fns.items():
        for _ in range(warmup):
            fn()
        slow = name in repeats_override
        numbers[name] = 1 if slow else _calibrate(fn, min_time)
    samples = {name: [] for name in fns}
    names = list(fns)
    # As timeit: no garbage collection while timing (one collection first, not one per
    # sample: with torch loaded a full collection costs ~0.1 s).
    gc_was_enabled = gc.isenabled()
    gc.collect()
    if disable_gc:
        gc.disable()
    try:
        for round_index in range(repeats):
            order = names if round_index % 2 == 0 else names[::-1]
            for name in order:
                if round_index >= repeats_override.get(name, repeats):
                    continue
                samples[name].append(_sample(fns[name], numbers[name]))
                if name in pause_after:
                    time.sleep(pause_after[name])
    finally:
        if gc_was_enabled:
            gc.enable()
    return {name: Stats.of(values, numbers[name]) for name, values in samples.items()}
