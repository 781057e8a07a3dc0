"""The program each md5 worker process runs (:mod:`neurotrove.files.hash_processes`).

It is run by file path with ``python -I``, so it imports nothing but the standard library
and never the caller's ``__main__`` (which ``multiprocessing`` would import again, running an
unguarded script twice).

Protocol, over stdin and stdout in bytes: the parent sends groups of file paths, each path
ended by a NUL byte and each group by one more NUL. For every path, in order, the worker
answers one line: ``=`` and the md5 hex digest, or ``!``, the errno, a space and the reason
the file could not be read. It flushes its answers at the end of each group, and exits when
stdin closes. It runs at a lower priority (``nice``) than the process that started it.
"""

from __future__ import annotations

import hashlib
import os
import sys

_BUFFER = 1 << 20
_NICENESS = 10


def _answer(path: bytes, view: memoryview) -> bytes:
    try:
        digest = hashlib.md5(usedforsecurity=False)
        with open(path, "rb", buffering=0) as handle:
            while size := handle.readinto(view):
                digest.update(view[:size])
    except OSError as error:
        reason = (error.strerror or str(error)).replace("\n", " ")
        return b"!%d %s\n" % (error.errno or 0, reason.encode("utf-8", "replace"))
    return b"=%s\n" % digest.hexdigest().encode()


def main() -> int:
    """Answer groups of paths until stdin closes."""
    if hasattr(os, "nice"):
        # Below the registering process, which is the critical path: it gets its core
        # whenever it has work, and the workers take every other cycle.
        os.nice(_NICENESS)
    source, sink = sys.stdin.fileno(), sys.stdout.buffer
    view = memoryview(bytearray(_BUFFER))
    pending = b""
    answers: list[bytes] = []
    while chunk := os.read(source, 1 << 16):
        *complete, pending = (pending + chunk).split(b"\0")
        for path in complete:
            if path:
                answers.append(_answer(path, view))
            else:  # the end of a group
                sink.write(b"".join(answers))
                sink.flush()
                answers.clear()
    return 0


if __name__ == "__main__":
    sys.exit(main())
