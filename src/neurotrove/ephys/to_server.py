"""Ephys writes of a served trove (``nt.connect(url)``), sent to the server to run there.

These are the ``send`` halves of the operations in :mod:`.operations`.

A served trove's catalogue is a read-only mirror, so its imports run on the server, with
the same code a local trove runs (routes in :mod:`neurotrove.server.ephys`):

- ``import_alf`` imports the server's registered ALF datasets (upload spike-sorter output
  first with ``register_files``);
- ``import_nwb`` uploads the NWB file (md5-checked), which the server registers as a
  dataset of the session (:func:`nwb_dataset_name`), so every client can download it for
  spike times; a file the session holds already (a relative path naming one of its
  datasets) is not sent again;
- ``import_allen`` uploads the cache's manifest and CSV tables (not its NWB files);
- ``write_session`` sends the probes as JSON.

Each returns what the local method returns, and the mirror is refreshed before it does.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from .. import alf
from ..errors import NotFoundError, ValidationError
from ..jsonable import to_jsonable
from .report import ImportReport
from .writing import ProbeData

if TYPE_CHECKING:
    from ..trove.parts import ServerLink
    from ..trove.trove import Trove

__all__ = ["import_alf", "import_allen", "import_nwb", "nwb_dataset_name", "write_session"]


def _report(answer: Mapping[str, Any]) -> ImportReport:
    return ImportReport(
        sessions=list(answer["sessions"]),
        probes=int(answer["probes"]),
        channels=int(answer["channels"]),
        units=int(answer["units"]),
        skipped=[(str(what), str(why)) for what, why in answer["skipped"]],
    )


def nwb_dataset_name(name: str, rel_path: str | None = None) -> str:
    """Return the dataset path an uploaded NWB file is registered under in its session.

    A file inside the session folder keeps its place there; others go to the folder's top.
    A name that is not ALF (most NWB names) becomes ``ecephys.recording.<stem>.nwb``.

    Examples
    --------
    >>> nwb_dataset_name("sub-01_ses-02.nwb"), nwb_dataset_name("x.nwb", "raw/x.nwb")
    ('ecephys.recording.sub01ses02.nwb', 'raw/ecephys.recording.x.nwb')
    >>> nwb_dataset_name("ecephys.units.nwb")
    'ecephys.units.nwb'
    """
    collection = "" if rel_path is None else str(PurePosixPath(rel_path).parent).strip(".")
    try:
        return alf.build_rel_path(name, collection, "")
    except ValidationError:
        stem = re.sub(r"[^A-Za-z0-9]", "", name.rsplit(".", 1)[0]) or "session"
        return alf.build_rel_path(f"ecephys.recording.{stem}.nwb", collection, "")


def import_alf(server: ServerLink, trove: Trove, eid: Any) -> ImportReport:
    """Run ``import_alf`` on the server (every session, or session ``eid``)."""
    key = None if eid is None else trove.to_eid(eid)
    return _report(server.send("POST", "/ephys/import-alf", {"eid": key}))


def import_nwb(
    server: ServerLink, trove: Trove, eid: Any, path: str | os.PathLike[str]
) -> ImportReport:
    """Upload an NWB file (unless the session holds it already) and import it on the server.

    A relative ``path`` names a file in the session folder (here, the cache's), as on a
    local trove; a file there keeps its place in the session, any other file goes to the
    session folder's top under its own name.

    Raises
    ------
    NotFoundError
        When the file is neither on this machine nor a dataset of the session.
    """
    key = trove.to_eid(eid)
    folder = trove.eid2path(key).resolve()
    given = Path(path).expanduser()
    file = given if given.is_absolute() else folder / given
    if not given.is_absolute():
        wanted = given.as_posix()
        if wanted in trove.list_datasets(key, qc="CRITICAL"):
            body = {"rel_path": wanted}
            return _report(server.send("POST", f"/ephys/sessions/{key}/nwb", body))
        if not file.is_file() and given.is_file():
            file = given.resolve()  # relative to the working directory
    if not file.is_file():
        raise NotFoundError(
            f"NWB file {file} does not exist here, and session {key} has no dataset "
            f"{given.as_posix()!r} on {server.url}",
            path=str(file),
        )
    resolved = file.resolve()
    inside = resolved.relative_to(folder).as_posix() if resolved.is_relative_to(folder) else None
    body = {"rel_path": nwb_dataset_name(resolved.name, inside), "upload": server.upload(resolved)}
    return _report(server.send("POST", f"/ephys/sessions/{key}/nwb", body))


def import_allen(
    server: ServerLink, trove: Trove, path: str | os.PathLike[str], lab: str | None
) -> ImportReport:
    """Upload an Allen cache's manifest and tables and import them on the server.

    Raises
    ------
    ValidationError
        When a table the manifest names lies outside the manifest's folder.
    """
    from ..interop.allen import cache_files

    manifest, files = cache_files(path)
    base = manifest.parent.resolve()
    uploads = []
    for file in files:
        resolved = file.resolve()
        if not resolved.is_relative_to(base):
            raise ValidationError(
                f"{file} is outside the Allen cache folder {base}; a served trove uploads the "
                f"cache's folder only, so keep its tables beside the manifest",
                path=str(file),
            )
        uploads.append(
            {"upload": server.upload(resolved), "path": resolved.relative_to(base).as_posix()}
        )
    body = {
        "manifest": {"upload": server.upload(manifest), "path": manifest.name},
        "files": uploads,
        "lab": lab,
    }
    return _report(server.send("POST", "/ephys/import-allen", body))


def write_session(
    server: ServerLink, trove: Trove, eid: Any, probes: Sequence[ProbeData]
) -> list[str]:
    """Send a session's probes to the server, which writes them in one transaction."""
    key = trove.to_eid(eid)
    body = {"probes": [to_jsonable(asdict(probe)) for probe in probes]}
    return [str(pid) for pid in server.send("POST", f"/ephys/sessions/{key}/probes", body)["pids"]]
