"""Files sent by the kernel: uvicorn's httptools protocol with ASGI's ``pathsend`` extension.

uvicorn offers neither of ASGI's zero-copy extensions (``http.response.zerocopysend``,
``http.response.pathsend``), so a file answered through it is read into Python memory and
written to the socket from there: two copies and, for a 1 MB file, a few hundred
microseconds a download. :class:`PathsendProtocol` is uvicorn's httptools protocol that
declares ``http.response.pathsend`` in every request's ``extensions`` and answers it with the
event loop's ``sendfile`` (the kernel's ``sendfile(2)``, from the page cache to the socket).
Starlette's :class:`~starlette.responses.FileResponse` uses the extension by itself for a
whole file; a ``Range`` request is still sent in pieces.

``trove serve`` uses it when httptools is installed (a dependency of the server: uvicorn's
fast HTTP parser); without it, uvicorn's default protocol serves as before.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

__all__ = ["PATHSEND", "PathsendProtocol", "supported"]

PATHSEND = "http.response.pathsend"
"""The ASGI extension: ``{"type": PATHSEND, "path": ...}`` sends a whole file as the body."""


_CYCLE_STATE = (
    "flow",
    "transport",
    "scope",
    "disconnected",
    "response_started",
    "response_complete",
    "chunked_encoding",
    "expected_content_length",
)
"""What :class:`_PathsendCycle` reads of uvicorn's response cycle: its own state, not an API."""


def supported() -> bool:
    """Whether this uvicorn's httptools protocol is the one :class:`PathsendProtocol` extends.

    The protocol reaches into uvicorn's response cycle (:data:`_CYCLE_STATE`, set in its
    ``__init__``) and its parser callbacks; a uvicorn that changed them is served by its own
    protocol instead (``trove serve`` then reads files into Python, as without httptools).

    Examples
    --------
    >>> supported()
    True
    """
    assigned = set(RequestResponseCycle.__init__.__code__.co_names)
    callbacks = ("on_message_begin", "on_headers_complete")
    return assigned.issuperset(_CYCLE_STATE) and all(
        callable(getattr(HttpToolsProtocol, name, None)) for name in callbacks
    )


class _PathsendCycle(RequestResponseCycle):
    """A request's response, which may send its body as a file named by ``pathsend``."""

    async def send(self, message: Any) -> None:
        """Send a message of the response; a ``pathsend`` one by the kernel."""
        if message["type"] != PATHSEND or not self.response_started or self.response_complete:
            await super().send(message)
            return
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()
        if not self.disconnected and self.scope["method"] != "HEAD":
            with open(message["path"], "rb") as file:
                if self.chunked_encoding:  # no Content-Length: not FileResponse's, sent as is
                    await super().send({"type": "http.response.body", "body": file.read()})
                    return
                count = self.expected_content_length
                if count:
                    try:
                        sent = await asyncio.get_running_loop().sendfile(
                            self.transport, file, 0, count
                        )
                    except ConnectionError:  # the client went away: as a write would, quietly
                        self.disconnected = True
                        self.transport.close()
                        return
                    self.expected_content_length -= sent
        await super().send({"type": "http.response.body", "body": b"", "more_body": False})


class PathsendProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with ``http.response.pathsend`` (see the module)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # asyncio's own loops send files with sendfile(2); uvloop has none (NotImplementedError).
        self._pathsend = isinstance(self.loop, asyncio.BaseEventLoop)

    def on_message_begin(self) -> None:
        """Start a request's scope, declaring the extension."""
        super().on_message_begin()
        if self._pathsend:
            self.scope["extensions"] = {PATHSEND: {}}

    def on_headers_complete(self) -> None:
        """Start the request's response cycle, which answers ``pathsend``."""
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and type(cycle) is RequestResponseCycle and cycle.scope is self.scope:
            cycle.__class__ = _PathsendCycle  # built by uvicorn, not yet running
