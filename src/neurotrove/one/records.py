"""Shapes of ONE's answers: eids as UUIDs, session records, dataset frames, search terms.

The facade (:mod:`neurotrove.one`) reads a :class:`~neurotrove.Trove` and returns what
ONE-api returns; these helpers turn the trove's frames and dicts into ONE's types.

Examples
--------
>>> autocomplete("task", SEARCH_TERMS)
'task_protocol'
>>> as_ref("2019-04-01_1_KS005")
{'subject': 'KS005', 'date': '2019-04-01', 'number': 1}
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from ..errors import NeurotroveError, ValidationError
from ..qc import QC

__all__ = [
    "QC_TYPE",
    "SEARCH_TERMS",
    "NotSupportedError",
    "as_ref",
    "as_uuid",
    "autocomplete",
    "dataset_frame",
    "dataset_record",
    "session_record",
]

SEARCH_TERMS = (
    "datasets",
    "date_range",
    "laboratory",
    "number",
    "projects",
    "subject",
    "task_protocol",
    "dataset_qc_lte",
    "dataset",
    "dataset_types",
    "performance_gte",
    "performance_lte",
    "users",
    "location",
    "django",
)
"""The terms ``search`` takes: ONE's local ones first, then those of its remote search."""

QC_TYPE = pd.CategoricalDtype([q.name for q in sorted(QC)], ordered=True)
"""ONE's dtype of the ``qc`` column: the QC names, ordered."""

_REF = re.compile(r"^(?P<date>\d{4}-\d{2}-\d{2})_(?P<number>\d{1,3})_(?P<subject>.+)$")


class NotSupportedError(NeurotroveError, NotImplementedError):
    """A ONE method or option the facade does not offer (yet); the message says what to use."""


def autocomplete(term: str, terms: Iterable[str] = SEARCH_TERMS) -> str:
    """Return the search term ``term`` names: itself, or the one term it starts.

    Raises
    ------
    ValidationError
        When ``term`` starts no term, or several.

    Examples
    --------
    >>> autocomplete("date"), autocomplete("lab"), autocomplete("dataset")
    ('date_range', 'laboratory', 'dataset')
    """
    options = tuple(terms)
    key = term.casefold()
    if key in options:
        return key
    found = [t for t in options if t.casefold().startswith(key)]
    if len(found) == 1:
        return found[0]
    what = f"is ambiguous ({', '.join(found)})" if found else "is not a search term"
    raise ValidationError(
        f"search term {term!r} {what}; the terms are {', '.join(options)}", filter=term
    )


def as_uuid(value: Any) -> uuid.UUID | None:
    """Return ``value`` as a UUID (``None`` stays ``None``)."""
    if value is None or isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(str(value))


def as_ref(value: Any) -> Any:
    """Turn an experiment reference (``'2019-04-01_1_KS005'``) into a session dict.

    Anything else is returned as it is, for :meth:`~neurotrove.Trove.to_eid`.
    """
    if isinstance(value, str):
        found = _REF.match(value)
        if found:
            return {
                "subject": found["subject"],
                "date": found["date"],
                "number": int(found["number"]),
            }
        if value.startswith(("http://", "https://")):  # an Alyx URL of the session
            return value.rstrip("/").rsplit("/", 1)[-1]
    if isinstance(value, Mapping) and "sequence" in value and "number" not in value:
        return {**{k: v for k, v in value.items() if k != "sequence"}, "number": value["sequence"]}
    return value


def session_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """Return a session as ONE's cache has it: lab, subject, date, number, protocol, projects."""
    projects = row.get("projects") or []
    return {
        "lab": row.get("lab") or "",
        "subject": row["subject"],
        "date": row["date"],
        "number": int(row["number"]),
        "task_protocol": row.get("task_protocol") or "",
        "projects": projects if isinstance(projects, str) else ",".join(projects),
    }


_DATASET_COLUMNS = ("rel_path", "file_size", "hash", "exists", "qc", "default_revision")


def dataset_frame(frame: pd.DataFrame, *, keep_eid: bool) -> pd.DataFrame:
    """Return the trove's dataset frame as ONE's: indexed by id (or ``(eid, id)``), UUIDs.

    Columns: ``rel_path, file_size, hash, exists, qc, default_revision``, with ONE's dtypes.
    """
    ids = [uuid.UUID(str(i)) for i in frame.index]
    if keep_eid:
        eids = [uuid.UUID(str(e)) for e in frame["eid"]]
        index: pd.Index = pd.MultiIndex.from_arrays([eids, ids], names=["eid", "id"])
    else:
        index = pd.Index(ids, name="id", dtype=object)
    return pd.DataFrame(
        {
            "rel_path": frame["rel_path"].to_numpy(dtype=object),
            "file_size": pd.array(frame["file_size"].to_numpy(), dtype="UInt64"),
            "hash": frame["hash"].to_numpy(dtype=object),
            "exists": frame["exists"].to_numpy(dtype=bool),
            "qc": pd.Categorical(frame["qc"].astype(str).to_numpy(), dtype=QC_TYPE),
            "default_revision": frame["default_revision"].to_numpy(dtype=bool),
        },
        index=index,
    )


def dataset_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """Return a dataset record of a load as ONE's ``load_datasets`` gives it."""
    qc = record["qc"]
    return {
        "eid": as_uuid(record["eid"]),
        "id": as_uuid(record["id"]),
        "rel_path": record["rel_path"],
        "file_size": record["file_size"],
        "hash": record["hash"],
        "exists": bool(record["exists"]),
        "qc": qc if isinstance(qc, str) else QC(int(qc)).name,
        "default_revision": bool(record["default_revision"]),
        "revision": record["revision"],
    }
