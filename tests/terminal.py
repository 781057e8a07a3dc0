"""The ``trove`` command run on a pseudo-terminal, answering its prompts as a person would.

Hidden prompts (passwords) need a real terminal: ``getpass`` turns echo off on the process's
controlling terminal, and without one the command must refuse. So the command runs in its
own session with a pseudo-terminal as its controlling terminal, and each answer is typed
only once its prompt is on the screen (``getpass`` discards what was typed before it
turned echo off).
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass

# The process becomes the leader of a new session whose controlling terminal is the
# pseudo-terminal on its stdin, then runs the real entry point (the console script's).
_ON_TERMINAL = (
    "import os, sys; os.login_tty(os.dup(0)); sys.argv[0] = 'trove'; "
    "from neurotrove.cli import main; main()"
)


@dataclass(frozen=True)
class Session:
    """What a command run on a terminal showed, and how it ended."""

    exit_code: int
    screen: str
    """Everything the terminal showed (output and echoed input), with ``\\n`` line ends."""


def run_on_terminal(
    *args: str, answers: tuple[tuple[str, str], ...] = (), timeout: float = 60.0
) -> Session:
    """Run ``trove ARGS`` on a pseudo-terminal; type each answer when its prompt shows.

    Parameters
    ----------
    *args : str
        The command line after ``trove``.
    answers : tuple of (prompt, answer)
        In order: when ``prompt`` appears (after the previous one), ``answer`` and Enter are
        typed.
    timeout : float
        Seconds before the command is killed and the test fails.
    """
    controller, terminal = os.openpty()
    process = subprocess.Popen(
        [sys.executable, "-c", _ON_TERMINAL, *args],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        close_fds=True,
    )
    os.close(terminal)
    screen = b""
    seen = 0  # where the next prompt is looked for
    pending = list(answers)
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"trove {' '.join(args)} hung; the screen: {screen!r}")
            ready, _, _ = select.select([controller], [], [], left)
            if not ready:
                continue
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the command ended and closed the terminal
                break
            if not chunk:
                break
            screen += chunk
            while pending and (found := screen.find(pending[0][0].encode(), seen)) >= 0:
                prompt, answer = pending.pop(0)
                seen = found + len(prompt)
                os.write(controller, answer.encode() + b"\n")
        code = process.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(controller)
    assert not pending, f"never asked {pending[0][0]!r}; the screen: {screen!r}"
    return Session(code, screen.decode(errors="replace").replace("\r\n", "\n"))
