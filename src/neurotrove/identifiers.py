"""Stable identifiers: the same session or dataset gets the same UUID on every machine.

ONE's local caches draw a new namespace on every rebuild, so their eids change each time.
Here an eid is ``uuid5(NEUROTROVE_NS, "lab/subject/YYYY-MM-DD/NNN")`` (``subject/...`` when
the session has no lab), a dataset id is ``uuid5(eid, rel_path)`` and a subject id is
``uuid5(NEUROTROVE_NS, "subject:lab/nickname")``. Registering the same tree on a laptop and on
the lab server therefore gives the same ids. A session registered with an explicit id (from
Alyx, say) keeps it.

Examples
--------
>>> import datetime
>>> from neurotrove.alf import SessionRef
>>> from neurotrove.identifiers import session_eid, dataset_id
>>> eid = session_eid(SessionRef("KS005", datetime.date(2019, 4, 1), 1, lab="cortexlab"))
>>> eid == session_eid(SessionRef("KS005", datetime.date(2019, 4, 1), 1, lab="cortexlab"))
True
>>> len(dataset_id(eid, "alf/_ibl_trials.table.pqt"))
36
"""

from __future__ import annotations

import hashlib
import uuid

from .alf import SessionRef

__all__ = [
    "NEUROTROVE_NS",
    "aggregate_id",
    "dataset_id",
    "session_eid",
    "subject_id",
    "uuid5_bytes",
]

NEUROTROVE_NS = uuid.UUID("416750fb-3c31-461c-8c14-7d22e31b1e70")
"""The namespace of every neurotrove uuid5. Never change it: ids would change with it."""


def session_eid(ref: SessionRef) -> str:
    """Return the stable eid of a session.

    Examples
    --------
    >>> import datetime
    >>> session_eid(SessionRef("SWC_043", datetime.date(2020, 9, 21), 1))
    '...'
    """
    return str(uuid.uuid5(NEUROTROVE_NS, ref.key))


def dataset_id(eid: str, rel_path: str) -> str:
    """Return the stable id of the dataset at ``rel_path`` in session ``eid``.

    Examples
    --------
    >>> dataset_id("0fb0bb1e-8ba6-5a8a-8f5b-2b4a1c1f0a11", "alf/_ibl_trials.table.pqt")
    '...'
    """
    return str(uuid.uuid5(uuid.UUID(eid), rel_path))


def aggregate_id(path: str) -> str:
    """Return the stable id of the aggregate at ``path`` (relative to the data root).

    An aggregate has no session to be named after, so its id is
    ``uuid5(NEUROTROVE_NS, "aggregate:" + path)``.

    Examples
    --------
    >>> aggregate_id("aggregates/Subjects/cortexlab/KS005/_ibl_subjectTrials.table.pqt")
    '...'
    """
    return str(uuid.uuid5(NEUROTROVE_NS, f"aggregate:{path}"))


def uuid5_bytes(namespace: bytes, name: bytes) -> bytes:
    """Return the 16 bytes of ``uuid.uuid5(UUID(bytes=namespace), name)``, without the objects.

    What bulk paths (a scan, an import) use for :func:`dataset_id`, given the session's 16
    bytes and the UTF-8 ``rel_path``: three times cheaper than building the UUIDs.

    Examples
    --------
    >>> space, name = uuid.uuid4(), "alf/spikes.times.npy"
    >>> uuid5_bytes(space.bytes, name.encode()) == uuid.uuid5(space, name).bytes
    True
    >>> raw = uuid5_bytes(space.bytes, name.encode())
    >>> str(uuid.UUID(bytes=raw)) == dataset_id(str(space), name)
    True
    """
    digest = bytearray(hashlib.sha1(namespace + name, usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    return bytes(digest)


def subject_id(nickname: str, lab: str | None) -> str:
    """Return the stable id of subject ``nickname`` of ``lab``.

    Examples
    --------
    >>> subject_id("KS005", "cortexlab") == subject_id("KS005", "cortexlab")
    True
    """
    return str(uuid.uuid5(NEUROTROVE_NS, f"subject:{lab or ''}/{nickname}"))
