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

import uuid

from .alf import SessionRef

__all__ = ["NEUROTROVE_NS", "dataset_id", "session_eid", "subject_id"]

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


def subject_id(nickname: str, lab: str | None) -> str:
    """Return the stable id of subject ``nickname`` of ``lab``.

    Examples
    --------
    >>> subject_id("KS005", "cortexlab") == subject_id("KS005", "cortexlab")
    True
    """
    return str(uuid.uuid5(NEUROTROVE_NS, f"subject:{lab or ''}/{nickname}"))
