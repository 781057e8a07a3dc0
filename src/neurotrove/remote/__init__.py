"""Served troves: a server's catalogue mirrored locally, its files cached, writes sent back.

``nt.connect("http://...")`` builds a :class:`~neurotrove.Trove` from these parts:

- :mod:`.server`: the server, its login and the mirror's freshness (by mode);
- :mod:`.files`: the file store, a verified download cache;
- :mod:`.writes`: the write path, every write a request;
- :mod:`.credentials`: tokens kept with mode 0600, never passwords;
- :mod:`.mirror`: the catalogue copy and its freshness;
- :mod:`.download`: parallel, resumed, verified downloads into the cache;
- :mod:`.connection`: the one place where HTTP errors become neurotrove errors.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..trove.trove import Trove

__all__ = ["RemoteTrove"]


def RemoteTrove(url: str, **options: Any) -> Trove:
    """Open a served trove; deprecated, use ``nt.connect(url, ...)``, which returns a Trove.

    Every trove is a :class:`~neurotrove.Trove` now, built from the parts that
    :func:`~neurotrove.connect` picks; this name stays so that old scripts keep working.
    """
    warnings.warn(
        "RemoteTrove(url, ...) is deprecated: use nt.connect(url, ...), which returns the same "
        "Trove",
        DeprecationWarning,
        stacklevel=2,
    )
    from ..trove.connect import connect

    return connect(url, **options)
