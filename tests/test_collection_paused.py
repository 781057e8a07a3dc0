"""Large answers are built without turning the garbage collector off for a server's threads."""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from neurotrove.query.frames import BUILD_GEN0_THRESHOLD, collection_paused


@pytest.fixture(autouse=True)
def _collector_as_python_leaves_it() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)
    gc.unfreeze()
    gc.enable()


@contextlib.contextmanager
def _collections() -> Iterator[list[int]]:
    """Yield the generations the collector collects, as it collects them, in the block."""
    collections: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "stop":
            collections.append(info["generation"])

    gc.callbacks.append(count)
    try:
        yield collections
    finally:
        gc.callbacks.remove(count)


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_cycles_are_collected_by_themselves_while_an_answer_is_built() -> None:
    """A server's other threads keep their garbage collected during a long build."""
    with _collections() as collections, collection_paused():
        assert gc.isenabled()
        for _ in range(3 * BUILD_GEN0_THRESHOLD):
            _Cycle()  # garbage at once, reachable only from itself
    assert collections  # without anyone calling gc.collect()


def test_the_collector_is_as_it_was_once_every_build_has_ended() -> None:
    before = gc.get_threshold()
    inside = threading.Barrier(4)

    def build() -> bool:
        with collection_paused():
            inside.wait(30)  # all four builds overlap, and end in any order
            enabled = gc.isenabled()
            inside.wait(30)
        return enabled

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(lambda _: build(), range(4)))
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
    assert gc.isenabled()


def test_objects_someone_else_froze_stay_frozen() -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with collection_paused():
            pass
        # Not unfrozen (that would leave 0); a few frozen objects may be freed meanwhile.
        assert frozen > 0 and gc.get_freeze_count() > frozen * 0.99
    finally:
        gc.unfreeze()


def test_what_a_build_made_is_handed_to_the_oldest_generation() -> None:
    """The answer a build returns is alive: no young collection traverses it afterwards."""
    with _collections() as collections, collection_paused():
        answer = [[row] for row in range(BUILD_GEN0_THRESHOLD // 2)]
    assert collections == []  # none while it was built
    assert gc.get_count()[0] < 100  # and nothing young left to collect after
    young = {id(o) for generation in (0, 1) for o in gc.get_objects(generation=generation)}
    assert id(answer) not in young and id(answer[-1]) not in young
    assert gc.get_freeze_count() == 0
