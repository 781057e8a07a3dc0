"""Waiting for another process: poll a condition until it holds or a deadline passes.

For what a test cannot make happen itself (a server answering, a subprocess reaching a
point, a lock wait showing up); time that a test only needs to pass is moved by a clock or
in the catalogue instead (``tests/serving.py`` ``tokens_age``).
"""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(condition: Callable[[], object], *, within: float, every: float = 0.02) -> bool:
    """Return ``True`` as soon as ``condition()`` is true, ``False`` after ``within`` seconds.

    The first check is at once; later ones every ``every`` seconds, growing to 0.2 s so a
    long wait does not keep a core busy.
    """
    deadline = time.monotonic() + within
    pause = every
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(pause)
        pause = min(pause * 1.5, 0.2)
