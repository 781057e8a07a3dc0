"""A capability's write, told once for each place a trove writes.

A capability (``trove.ephys``, ``trove.behaviour``, ...) that writes more than the trove's
own write methods describes the write as an :class:`Operation`: how it is done straight in
the catalogue (``direct``, given the :class:`~.catalogue_writes.CatalogueWrites` and the
trove) and how it is sent to a server (``send``, given the server and the trove). The
trove's write path picks one (:meth:`~neurotrove.trove.parts.WritePath.run`), so the
capability never asks what kind of trove it runs on. An operation that only a catalogue's
own machine can do leaves ``send`` out and says what to do instead in ``advice``.

Examples
--------
>>> import tempfile, neurotrove as nt
>>> COUNT_SUBJECTS = Operation(
...     "count subjects",
...     direct=lambda writes, trove: len(trove.list_subjects()),
...     advice="count them on the server",
... )
>>> nt.connect(tempfile.mkdtemp(), create=True).apply(COUNT_SUBJECTS)
0
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from .parts import ServerLink
    from .trove import Trove

__all__ = ["Operation"]

T = TypeVar("T")


@dataclass(frozen=True)
class Operation(Generic[T]):
    """A write of a capability, done directly or sent to a server.

    Attributes
    ----------
    name : str
        What it does, for messages (``"import ALF ephys"``).
    direct : callable
        ``direct(writes, trove, *args, **kwargs)``: the write, in the trove's own catalogue;
        ``writes`` is its :class:`~.catalogue_writes.CatalogueWrites` (which places files).
    send : callable, optional
        ``send(server, trove, *args, **kwargs)``: the write, asked of a server; the trove
        reads its mirror (refreshed by the server's :meth:`~.parts.ServerLink.send`).
    advice : str
        What to do instead where the operation cannot run (no ``send``: on a served trove).
    """

    name: str
    direct: Callable[..., T]
    send: Callable[..., T] | None = None
    advice: str = ""

    def sent(self, server: ServerLink, trove: Trove, *args: Any, **kwargs: Any) -> T:
        """Run the operation against ``server``, or refuse with :attr:`advice`.

        Raises
        ------
        ConfigError
            When the operation has no ``send``.
        """
        from ..errors import ConfigError

        if self.send is None:
            raise ConfigError(
                f"{self.name} needs the catalogue itself, and {server.url} is a served trove "
                f"whose catalogue here is a read-only mirror; {self.advice}",
                url=server.url,
            )
        return self.send(server, trove, *args, **kwargs)
