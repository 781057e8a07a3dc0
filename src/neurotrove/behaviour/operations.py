"""The writes of ``trove.behaviour``, each told for a local trove and for a served one.

A local trove checks and writes in its own catalogue and session folders (:mod:`.ingest`);
a served trove sends the same request to its server (routes in
:mod:`neurotrove.server.behaviour`), which runs the local code with its own analysis folder:
a rig goes as its JSON, an NWB file is uploaded (md5-checked) with the video files it names
relative to itself, and mask recomputation runs where the mask functions are.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConflictError, NotFoundError, ValidationError
from ..progress import progress_bar
from ..trove.operations import Operation
from .ingest import Functions, insert_session, recompute_session, write_rig
from .nwb import relative_external_files, require_pynwb
from .rigs import check_rig, read_rig

if TYPE_CHECKING:
    import pandas as pd

    from ..trove.catalogue_writes import CatalogueWrites
    from ..trove.parts import ServerLink
    from ..trove.trove import Trove

__all__ = ["INSERT_NWB", "RECOMPUTE_COLUMNS", "RECOMPUTE_MASKS", "UPLOAD_RIG", "MaskRecompute"]

RECOMPUTE_COLUMNS = ["eid", "subject", "date", "number", "mask", "trials", "error"]
"""The columns of :meth:`~neurotrove.behaviour.Behaviour.recompute_masks`' report."""

RigFile = str | os.PathLike[str] | Mapping[str, Any]


# -- rigs ----------------------------------------------------------------------------------


def _store_rig(
    writes: CatalogueWrites,
    trove: Trove,
    rig: RigFile,
    name: str,
    experimenter: str | None,
    masks: Sequence[Mapping[str, Any]],
    replace: bool,
    analysis_dir: Path | None,
) -> None:
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise ValidationError(
            f"rig name {name!r} must be non-empty text of at most 255 characters", rig=name
        )
    checked, definitions = check_rig(rig, masks=masks, analysis_dir=analysis_dir)
    with writes.catalog.write() as conn:
        write_rig(conn, checked, definitions, name, experimenter=experimenter, replace=replace)


def _send_rig(
    server: ServerLink,
    trove: Trove,
    rig: RigFile,
    name: str,
    experimenter: str | None,
    masks: Sequence[Mapping[str, Any]],
    replace: bool,
    analysis_dir: Path | None,
) -> None:
    document, _ = read_rig(rig)  # checked and stored by the server, with its analysis folder
    body = {
        "rig": document,
        "name": name,
        "experimenter": experimenter,
        "masks": [dict(m) for m in masks],
        "replace": replace,
    }
    server.send("POST", "/behaviour/rigs", body)


UPLOAD_RIG = Operation[None]("behaviour upload_rig", direct=_store_rig, send=_send_rig)
"""Check and store a rig: ``(rig, name, experimenter, masks, replace, analysis_dir)``."""


# -- NWB sessions --------------------------------------------------------------------------


def _insert_nwb(
    writes: CatalogueWrites,
    trove: Trove,
    session: Any,
    animals: Any,
    nwb_path: Path,
    rig: str,
    analysis_dir: Path | None,
) -> str:
    require_pynwb()
    return insert_session(writes, trove, analysis_dir, session, animals, nwb_path.resolve(), rig)


def _send_nwb(
    server: ServerLink,
    trove: Trove,
    session: Any,
    animals: Any,
    nwb_path: Path,
    rig: str,
    analysis_dir: Path | None,
) -> str:
    key: str = trove.to_eid(session)
    if not nwb_path.is_file():
        raise ValidationError(f"NWB file {nwb_path} does not exist", path=str(nwb_path))
    require_pynwb()
    listed = [animals] if isinstance(animals, str | Mapping) else animals
    names = None if animals is None else [a if isinstance(a, Mapping) else str(a) for a in listed]
    videos = [
        {"upload": server.upload(nwb_path.parent / name), "path": name}
        for name in relative_external_files(nwb_path)
        if (nwb_path.parent / name).is_file()
    ]
    body = {"upload": server.upload(nwb_path), "rig": rig, "animals": names, "videos": videos}
    server.send("POST", f"/behaviour/sessions/{key}/nwb", body)
    return key


INSERT_NWB = Operation[str]("behaviour insert_nwb", direct=_insert_nwb, send=_send_nwb)
"""Insert a session's behaviour from NWB: ``(session, animals, nwb_path, rig, analysis_dir)``."""


# -- masks ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MaskRecompute:
    """Which sessions' masks to compute again, and how (see ``recompute_masks``).

    Attributes
    ----------
    sessions : pandas.DataFrame
        The sessions (rows of ``trove.table("session_rigs")``, indexed by eid).
    eid : str or None
        The one session asked for, if one was.
    masks : list of str or None
        Only these masks.
    skip_errors : bool
        Report a failing session and go on.
    conditions : dict
        The conditions that chose the sessions, when no eid was given.
    progress : bool or None
        Show a progress bar; ``None`` shows one on a terminal.
    analysis_dir : Path or None
        Where mask functions are imported from (a local trove).
    """

    sessions: pd.DataFrame
    eid: str | None
    masks: list[str] | None
    skip_errors: bool
    conditions: Mapping[str, Any]
    progress: bool | None
    analysis_dir: Path | None


def _recompute(writes: CatalogueWrites, trove: Trove, request: MaskRecompute) -> pd.DataFrame:
    import pandas as pd

    report: list[dict[str, Any]] = []
    cache: Functions = {}
    with progress_bar(len(request.sessions), "recomputing masks", enabled=request.progress) as bar:
        for key, session in request.sessions.iterrows():
            shown = {
                "eid": key,
                "subject": session["subject"],
                "date": session["date"],
                "number": session["number"],
            }
            try:
                done = recompute_session(
                    writes, trove, request.analysis_dir, str(key), request.masks, cache
                )
            except (ValidationError, NotFoundError, ConflictError) as error:
                if not request.skip_errors:
                    raise
                report.append({**shown, "mask": None, "trials": None, "error": error.message})
            else:
                report += [
                    {**shown, "mask": name, "trials": trials, "error": None}
                    for name, trials in done
                ]
            bar.advance()
    frame = pd.DataFrame(report, columns=RECOMPUTE_COLUMNS)
    frame["trials"] = frame["trials"].astype("Int64")
    return frame


def _send_recompute(server: ServerLink, trove: Trove, request: MaskRecompute) -> pd.DataFrame:
    import pandas as pd

    body = {  # the mask functions run on the server, from its analysis folder
        "eid": request.eid,
        "masks": request.masks,
        "skip_errors": request.skip_errors,
        "conditions": dict(request.conditions),
    }
    answer = server.send("POST", "/behaviour/masks/recompute", body)
    frame = pd.DataFrame(answer["results"], columns=RECOMPUTE_COLUMNS)
    frame["trials"] = frame["trials"].astype("Int64")
    return frame


RECOMPUTE_MASKS = Operation["pd.DataFrame"](
    "behaviour recompute_masks", direct=_recompute, send=_send_recompute
)
"""Compute masks again from stored features: ``(MaskRecompute)``."""
