"""Catalogue rows shaped as Alyx's REST records: sessions, datasets and file records.

The rows come from :mod:`neurotrove.query.alyx`; nothing here reads the catalogue. Every
record carries absolute URLs built on the base URL the client used, so that Alyx
clients (which strip their base URL from ``next`` links and check that download URLs start
with their data server) see their own address. A dataset's ``data_url`` is
``<base>/data/<session path>/<rel_path with the dataset id>``, the session path being
``lab/Subjects/subject/YYYY-MM-DD/NNN``. A session without a lab is served with the lab
:data:`~neurotrove.query.alyx_params.NO_LAB` (in its record and its files' URLs), since
ONE-api's remote ``eid2path`` always puts a lab before ``Subjects``: so its downloads land
in the folder ``eid2path`` gives.

Examples
--------
>>> import datetime
>>> session_path("cortexlab", "KS005", datetime.date(2019, 4, 1), 1)
'cortexlab/Subjects/KS005/2019-04-01/001'
>>> data_url("http://h", "KS005/2019-04-01/001", "alf", "", "trials.table.pqt",
...          "9c1f0d6c-2c1c-4c2b-9a4e-3f1e8c9b2a10")
'http://h/data/KS005/2019-04-01/001/alf/trials.table.9c1f0d6c-2c1c-4c2b-9a4e-3f1e8c9b2a10.pqt'
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from ... import alf
from ...jsonable import to_jsonable
from ...qc import QC
from ...query.alyx import session_path
from ...query.alyx_params import NO_LAB

__all__ = [
    "DATA_PREFIX",
    "REPOSITORY",
    "data_url",
    "dataset_records",
    "file_record",
    "served_session_path",
    "session_detail",
    "session_path",
    "session_record",
    "start_time_text",
]

DATA_PREFIX = "/data"
"""Where the server's files are downloaded from (ONE's ``HTTP_DATA_SERVER`` is ``<url>/data``)."""

REPOSITORY = "trove"
"""The name of the one data repository a trove has."""


_SLOT = "00000000-0000-0000-0000-000000000000"


@functools.lru_cache(maxsize=4096)
def _rel_path(name: str, collection: str, revision: str) -> str:
    """``alf.build_rel_path``, remembered: a page repeats the same few dozen names."""
    return alf.build_rel_path(name, collection, revision)


@functools.lru_cache(maxsize=4096)
def _around_id(name: str, collection: str, revision: str) -> tuple[str, str]:
    """Split the relative path of a file with a dataset id in its name around the id."""
    head, _, tail = _rel_path(alf.add_uuid(name, _SLOT), collection, revision).rpartition(_SLOT)
    return head, tail


def data_url(
    base: str, session: str, collection: str, revision: str, name: str, dataset_id: str
) -> str:
    """Return the download URL of a dataset's file (its id inserted in the file name)."""
    try:
        text = str(uuid.UUID(dataset_id))
    except (TypeError, ValueError, AttributeError):
        text = alf.add_uuid(name, dataset_id)  # raises the error saying what is wrong
    head, tail = _around_id(name, collection, revision)
    return f"{base}{DATA_PREFIX}/{session}/{head}{text}{tail}"


def served_session_path(path: str, lab: str | None) -> str:
    """Return the session path Alyx clients are given: with :data:`NO_LAB` when it has no lab.

    Examples
    --------
    >>> served_session_path("SWC_043/2019-04-01/001", None)
    'nolab/Subjects/SWC_043/2019-04-01/001'
    """
    return path if lab else f"{NO_LAB}/Subjects/{path}"


def start_time_text(record: Mapping[str, Any]) -> str:
    """Give the session's start as ISO text with a UTC offset; midnight of its date if unknown.

    Alyx clients take the session's date from the first ten characters, so a start time on
    another day than the session's date (a time zone slip) is replaced by the date.
    """
    start = record.get("start_time")
    date = record["date"]
    if isinstance(date, str):
        date = dt.date.fromisoformat(date)
    if isinstance(start, str):
        start = dt.datetime.fromisoformat(start)
    if not isinstance(start, dt.datetime) or start.date() != date:
        start = dt.datetime.combine(date, dt.time())
    if start.tzinfo is None:
        start = start.replace(tzinfo=dt.UTC)
    return start.isoformat()


def _qc_name(value: Any) -> str:
    return QC.parse(value if value is not None else 0).name


def session_record(base: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """Shape one of ``Trove.search_page``'s sessions as Alyx's ``/sessions`` list record."""
    eid = str(record["eid"])
    return {
        "id": eid,
        "subject": record["subject"],
        "start_time": start_time_text(record),
        "number": int(record["number"]),
        "lab": record.get("lab") or NO_LAB,
        "projects": list(record.get("projects") or []),
        "url": f"{base}/sessions/{eid}",
        "task_protocol": record.get("task_protocol") or "",
    }


def session_detail(
    base: str,
    record: Mapping[str, Any],
    folder: str,
    server_path: str,
    datasets: Sequence[Mapping[str, Any]],
    insertions: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """Shape a session as Alyx's ``/sessions/{id}`` record, with its present datasets."""
    detail = session_record(base, record)
    detail.update(
        {
            "users": list(record.get("users") or []),
            "location": record.get("location"),
            "procedures": [],
            "type": "Experiment",
            "end_time": to_jsonable(record.get("end_time")),
            "narrative": record.get("narrative") or "",
            "parent_session": None,
            "n_correct_trials": None,
            "n_trials": None,
            "qc": _qc_name(record.get("qc")),
            "extended_qc": record.get("extended_qc") or {},
            "json": record.get("json") or {},
            "wateradmin_session_related": [],
            "notes": [],
            "probe_insertion": [
                {k: p[k] for k in ("id", "name", "model", "serial", "json")} for p in insertions
            ],
            "data_dataset_session_related": [
                {
                    "id": d["id"],
                    "name": d["name"],
                    "dataset_type": d["dataset_type"],
                    "data_url": d["file_records"][0]["data_url"],
                    "url": d["url"],
                    "file_size": d["file_size"],
                    "hash": d["hash"],
                    "version": d["version"],
                    "collection": d["collection"],
                    "revision": d["revision"] or "",
                    "default_revision": str(bool(d["default_dataset"])),
                    "qc": d["qc"],
                }
                for d in datasets
                if d["file_records"][0]["exists"]
            ],
            "rel_path": folder,
            "path": server_path,
            "default_data_repository_name": REPOSITORY,
            "default_data_repository_path": f"{base}{DATA_PREFIX}/",
        }
    )
    return detail


def file_record(base: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """Shape a dataset's file as Alyx's ``/files`` record (its id is the dataset's)."""
    dataset_id = str(row["id"])
    session = row["session_path"] and served_session_path(row["session_path"], row["lab"])
    relative = _rel_path(row["name"], row["collection"], row["revision"])
    return {
        "id": dataset_id,
        "url": f"{base}/files/{dataset_id}",
        "dataset": f"{base}/datasets/{dataset_id}",
        "data_repository": REPOSITORY,
        "data_repository_path": "/",
        "relative_path": f"{session}/{relative}" if session else relative,
        "data_url": (
            data_url(base, session, row["collection"], row["revision"], row["name"], dataset_id)
            if session
            else None
        ),
        "exists": bool(row["exists"]),
        "json": row["json"] or None,
    }


def dataset_records(base: str, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Shape dataset rows (from :func:`~neurotrove.query.alyx.dataset_page`) as records."""
    records = []
    for row in rows:
        dataset_id = str(row["id"])
        eid = row["session"]
        records.append(
            {
                "id": dataset_id,
                "url": f"{base}/datasets/{dataset_id}",
                "name": row["name"],
                "created_by": row["created_by"],
                "created_datetime": to_jsonable(row["created_at"]),
                "dataset_type": row["dataset_type"],
                "data_format": row["extension"],
                "collection": row["collection"],
                "session": f"{base}/sessions/{eid}" if eid is not None else None,
                "subject": row["subject"],
                "lab": row["lab"] or (NO_LAB if eid is not None else None),
                "date": to_jsonable(row["date"]),
                "experiment_number": row["number"],
                "file_size": row["file_size"],
                "hash": row["hash"],
                "version": None,
                "revision": row["revision"] or None,
                "default_dataset": bool(row["default_revision"]),
                "qc": _qc_name(row["qc"]),
                "protected": False,
                "public": False,
                "tags": list(row.get("tags", [])),
                "json": row["json"] or None,
                "file_records": [file_record(base, row)],
            }
        )
    return records
