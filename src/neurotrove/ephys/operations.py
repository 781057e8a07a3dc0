"""The writes of ``trove.ephys``, each told for a local trove and for a served one.

A local trove writes its own catalogue (:mod:`.alf_import`, :mod:`.nwb_import`,
:mod:`neurotrove.interop.allen`, :mod:`.writing`); a served trove asks its server, which
runs the same code (:mod:`.to_server`). The trove's write path picks one
(:mod:`neurotrove.trove.operations`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..query.identify import to_eid
from ..trove.operations import Operation
from . import to_server
from .report import ImportReport
from .writing import ProbeData, write_session_ephys

if TYPE_CHECKING:
    from ..trove.catalogue_writes import CatalogueWrites
    from ..trove.trove import Trove

__all__ = ["IMPORT_ALF", "IMPORT_ALLEN", "IMPORT_NWB", "WRITE_SESSION"]


def _write_session(
    writes: CatalogueWrites, trove: Trove, eid: Any, probes: Sequence[ProbeData]
) -> list[str]:
    with writes.catalog.write() as conn:
        pids, _, _ = write_session_ephys(conn, to_eid(conn, eid, where=trove.root), probes)
    return pids


def _import_alf(writes: CatalogueWrites, trove: Trove, eid: Any) -> ImportReport:
    from .alf_import import import_alf

    return import_alf(trove, eid)


def _import_nwb(
    writes: CatalogueWrites, trove: Trove, eid: Any, path: str | os.PathLike[str]
) -> ImportReport:
    from .nwb_import import import_nwb

    return import_nwb(trove, eid, path)


def _import_allen(
    writes: CatalogueWrites, trove: Trove, path: str | os.PathLike[str], lab: str | None
) -> ImportReport:
    from ..interop.allen import import_allen

    report = import_allen(trove, path, lab=lab)
    # The unit snapshot of the imported state, made now: the first get_units() after a
    # large import then reads it instead of every unit from the database.
    trove.ephys.prepare_units()
    return report


WRITE_SESSION = Operation[list[str]](
    "ephys write_session", direct=_write_session, send=to_server.write_session
)
"""Write a session's probes, channels and units: ``(eid, probes)``."""

IMPORT_ALF = Operation[ImportReport](
    "ephys import_alf", direct=_import_alf, send=to_server.import_alf
)
"""Import probes from registered ALF datasets: ``(eid or None)``."""

IMPORT_NWB = Operation[ImportReport](
    "ephys import_nwb", direct=_import_nwb, send=to_server.import_nwb
)
"""Import an NWB file's electrodes and units into a session: ``(eid, path)``."""

IMPORT_ALLEN = Operation[ImportReport](
    "ephys import_allen", direct=_import_allen, send=to_server.import_allen
)
"""Import an Allen project cache: ``(path, lab)``."""
