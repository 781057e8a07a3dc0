"""Remote troves: a server's catalogue mirrored locally, its files cached, writes sent back.

- :class:`~.trove.RemoteTrove`: what ``nt.connect("http://...")`` returns;
- :mod:`.credentials`: tokens kept with mode 0600, never passwords;
- :mod:`.mirror`: the catalogue snapshot and its freshness;
- :mod:`.download`: parallel, resumed, verified downloads into the cache;
- :mod:`.http`: the one place where HTTP errors become neurotrove errors.
"""

from __future__ import annotations

from .trove import RemoteTrove

__all__ = ["RemoteTrove"]
