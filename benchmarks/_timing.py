"""Timing helpers the benchmarks share: a call's median time, a per-item median, peak RSS.

Examples
--------
>>> seconds, answer = median_call(lambda: sum(range(1000)))
>>> answer, seconds < 1
(499500, True)
>>> median_per_item(abs, [-1, 2, -3]) < 1
True
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["median_call", "median_per_item", "median_wall_and_cpu", "peak_mb"]


def median_call(
    fn: Callable[[], Any], *, least: int = 3, most: int = 15, budget: float = 2.0
) -> tuple[float, Any]:
    """Median time of one call of ``fn``, and what its untimed first call returned.

    The first call warms caches and is not timed; then ``least`` to ``most`` timed calls,
    stopping once ``budget`` seconds are spent. A first call over a second (a cold path, a
    large catalogue) is followed by one timed call only.
    """
    began = time.perf_counter()
    result = fn()
    if time.perf_counter() - began > 1.0:
        least = most = 1
    times: list[float] = []
    while len(times) < least or (len(times) < most and sum(times) < budget):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times), result


def median_wall_and_cpu(
    fn: Callable[[], Any], *, least: int = 3, most: int = 15, budget: float = 2.0
) -> tuple[float, float]:
    """Median time of one call of ``fn``, and its median CPU time in this thread.

    As :func:`median_call`, but at least ``least`` timed calls even after a slow first one
    (which may take a snapshot, say). The CPU time leaves out a loaded machine's waits and
    the database server's own work.
    """
    fn()
    times: list[float] = []
    cpu: list[float] = []
    while len(times) < least or (len(times) < most and sum(times) < budget):
        began, began_cpu = time.perf_counter(), time.thread_time()
        fn()
        times.append(time.perf_counter() - began)
        cpu.append(time.thread_time() - began_cpu)
    return statistics.median(times), statistics.median(cpu)


def median_per_item(fn: Callable[[Any], Any], items: list[Any]) -> float:
    """Median time of ``fn(item)`` over ``items``, after one untimed call on the first."""
    fn(items[0])
    times = []
    for item in items:
        began = time.perf_counter()
        fn(item)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def peak_mb() -> float:
    """This process's peak RSS in MB: ``VmHWM``, which ``exec`` resets.

    (``getrusage``'s ``ru_maxrss`` is carried over ``exec`` on Linux, so a child would
    report its parent's peak; it is the fallback where ``/proc`` is missing.)
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    scale = 1024**2 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale
