"""Where a session's behaviour is kept: ALF datasets in its folder, and their catalogue rows.

In the session folder (``trove.eid2path(eid)``):

=============================================== =============================================
file                                            holds
=============================================== =============================================
``behaviour/<feature>.values.npy``              analog, digital and interval values
``behaviour/<feature>.position.npy``            kinematics positions (one row per sample)
``behaviour/<feature>.timestamps.npy``          times of analog and kinematics samples (s)
``behaviour/<feature>.times.npy``               times of digital events and interval edges (s)
``behaviour/masks/<mask>.values.npy``           +1 where a trial starts, -1 where it ends
``behaviour/masks/<mask>.times.npy``            their times (s)
``behaviour/videos/<video>.raw.<format>``       the video file
``behaviour/videos/<video>.timestamps.npy``     its frame times (s), when the NWB file had them
=============================================== =============================================

``<feature>`` is the feature's name made an ALF object name (``rig_features.object``). Every
file is a dataset of the session (``trove.list_datasets(eid, collection="behaviour*")``), and
``trove.table("behaviour_datasets")`` says which feature, mask or video each pair belongs to.

Examples
--------
>>> feature_paths("LED_1", "interval")
('behaviour/LED_1.values.npy', 'behaviour/LED_1.times.npy')
>>> video_paths("top_camera", "avi")
('behaviour/videos/top_camera.raw.avi', 'behaviour/videos/top_camera.timestamps.npy')
"""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .. import alf
from ..catalog import behaviour_schema as b
from ..catalog import schema as s
from ..catalog.tables import rel_path_expression
from ..errors import ConflictError
from ..files.atomic import FileWrite
from ..files.hashing import file_md5
from ..identifiers import NEUROTROVE_NS, dataset_id
from ..trove.catalogue_writes import file_record

__all__ = [
    "COLLECTION",
    "MASK_COLLECTION",
    "VIDEO_COLLECTION",
    "Staging",
    "behaviour_id",
    "feature_paths",
    "mask_paths",
    "rig_id",
    "stored_rows",
    "video_paths",
]

COLLECTION = "behaviour"
"""The collection of a session's features."""
MASK_COLLECTION = "behaviour/masks"
"""The collection of a session's masks."""
VIDEO_COLLECTION = "behaviour/videos"
"""The collection of a session's videos."""

_ATTRIBUTES = {
    "analog": ("values", "timestamps"),
    "digital": ("values", "times"),
    "interval": ("values", "times"),
    "kinematics": ("position", "timestamps"),
}


def feature_paths(obj: str, data_type: str) -> tuple[str, str]:
    """Return the rel_paths of a feature's data and timestamps."""
    data, times = _ATTRIBUTES[data_type]
    return f"{COLLECTION}/{obj}.{data}.npy", f"{COLLECTION}/{obj}.{times}.npy"


def mask_paths(obj: str) -> tuple[str, str]:
    """Return the rel_paths of a mask's data and timestamps.

    Examples
    --------
    >>> mask_paths("trials")
    ('behaviour/masks/trials.values.npy', 'behaviour/masks/trials.times.npy')
    """
    return f"{MASK_COLLECTION}/{obj}.values.npy", f"{MASK_COLLECTION}/{obj}.times.npy"


def video_paths(obj: str, format: str) -> tuple[str, str]:
    """Return the rel_paths of a video file and of its frame times."""
    return (
        f"{VIDEO_COLLECTION}/{obj}.raw.{format.lower()}",
        f"{VIDEO_COLLECTION}/{obj}.timestamps.npy",
    )


def rig_id(name: str) -> str:
    """Return the stable id of the rig called ``name``."""
    return str(uuid.uuid5(NEUROTROVE_NS, f"rig:{name}"))


def child_id(parent: str, kind: str, name: str) -> str:
    """Return the stable id of a rig's feature or mask function, or a session's animal."""
    return str(uuid.uuid5(uuid.UUID(parent), f"{kind}:{name}"))


def behaviour_id(eid: str, kind: str, name: str) -> str:
    """Return the stable id of a session's behaviour dataset (a feature, mask or video)."""
    return str(uuid.uuid5(uuid.UUID(eid), f"behaviour/{kind}:{name}"))


def npy_bytes(array: Any) -> bytes:
    """Return an array as the bytes of a ``.npy`` file (never pickled)."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


class Staging:
    """Files of one behaviour write, staged beside their targets in a session folder.

    Each file is staged in the write's :class:`~neurotrove.files.atomic.FileWrite` (renamed
    into place once the transaction that records it commits, see
    :meth:`~neurotrove.trove.catalogue_writes.CatalogueWrites.commit_files`) or, when the
    target already holds the same content, registered where it is.

    Parameters
    ----------
    eid : str
        The session.
    folder : Path
        Its folder.
    files : FileWrite
        The write the files are staged in.
    replace : bool
        Whether a target with other content may be replaced (recomputed masks); otherwise
        that is a :class:`ConflictError`.
    """

    def __init__(self, eid: str, folder: Path, files: FileWrite, *, replace: bool = False) -> None:
        self.eid = eid
        self.folder = folder
        self.files = files
        self.replace = replace
        self.records: list[dict[str, Any]] = []

    def _record(self, rel_path: str, size: int, digest: str) -> str:
        rel = alf.parse_rel_path(rel_path)
        self.records.append(file_record(self.eid, rel, size, digest, None, True))
        return dataset_id(self.eid, str(rel))

    def _conflict(self, target: Path) -> ConflictError:
        return ConflictError(
            f"{target} already exists with other content, and is not this session's "
            f"behaviour; move it out of the session folder and insert again",
            path=str(target),
        )

    def array(self, rel_path: str, array: Any) -> str:
        """Stage an array as a ``.npy`` dataset; return the dataset's id."""
        rel = str(alf.parse_rel_path(rel_path))
        target = self.folder / rel
        data = npy_bytes(array)
        if target.exists():
            digest = hashlib.md5(data).hexdigest()  # noqa: S324 - ONE's and Alyx's checksum
            if _holds(target, len(data), digest):
                return self._record(rel_path, len(data), digest)
            if not self.replace:
                raise self._conflict(target)
        item = self.files.stage_bytes(target, data, dataset=(self.eid, rel))
        return self._record(rel_path, int(item.size or 0), str(item.md5))

    def copy(self, rel_path: str, source: Path) -> str:
        """Stage a copy of a file (md5-checked) as a dataset; return the dataset's id."""
        rel = str(alf.parse_rel_path(rel_path))
        target = self.folder / rel
        if source.resolve() == target.resolve() or (
            target.exists() and _holds(target, source.stat().st_size, file_md5(source))
        ):
            return self._record(rel_path, source.stat().st_size, file_md5(target))
        if target.exists():
            raise self._conflict(target)
        item = self.files.stage_copy(source, target, dataset=(self.eid, rel))
        return self._record(rel_path, int(item.size or 0), str(item.md5))


def _holds(target: Path, size: int, digest: str) -> bool:
    """Whether a file has exactly this size and md5."""
    return target.stat().st_size == size and file_md5(target) == digest


def stored_rows(
    conn: Connection, eid: str, *, kind: str | None = None, names: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Return a session's behaviour datasets with the rel_paths of their data and times."""
    data = s.datasets.alias("data_file")
    times = s.datasets.alias("times_file")
    row = b.behaviour_datasets.c
    query = (
        sa.select(
            b.behaviour_datasets,
            rel_path_expression(data.c.collection, data.c.revision, data.c.name).label(
                "data_path"
            ),
            rel_path_expression(times.c.collection, times.c.revision, times.c.name).label(
                "timestamps_path"
            ),
        )
        .select_from(
            b.behaviour_datasets.join(data, row.data_dataset == data.c.id).outerjoin(
                times, row.timestamps_dataset == times.c.id
            )
        )
        .where(row.session == eid)
        .order_by(row.kind, row.name)
    )
    if kind is not None:
        query = query.where(row.kind == kind)
    if names is not None:
        query = query.where(row.name.in_(list(names)))
    return [dict(r) for r in conn.execute(query).mappings()]
