"""A session's datasets as the server answers them: plain records, without a DataFrame.

``Trove.list_datasets(eid, details=True)`` builds a DataFrame (a QC categorical, nullable
integer columns) that the server would turn straight back into records: for the ~40
datasets of a session that costs more than the query. :func:`dataset_records` gives the same
records from the same rows and filters, in the same order (by ``rel_path``), with the
values a DataFrame's records would hold once made JSON: QC by name, missing values ``None``.

Examples
--------
>>> import tempfile, neurotrove as nt
>>> trove = nt.connect(tempfile.mkdtemp(), create=True)
>>> eid = trove.register_session("KS005", "2019-04-01")
>>> dataset_records(trove, eid)
[]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..qc import QC
from ..trove.reading import DATASET_COLUMNS

if TYPE_CHECKING:
    from ..trove.trove import Trove

__all__ = ["dataset_records"]

_QC_NAMES = {int(q): q.name for q in QC}


def _qc_name(value: Any) -> str:
    if value in _QC_NAMES:
        return _QC_NAMES[value]
    return QC(value or 0).name


def dataset_records(trove: Trove, eid: Any, **filters: Any) -> list[dict[str, Any]]:
    """Return a session's datasets as ``list_datasets(eid, details=True)``'s records.

    Parameters
    ----------
    trove : Trove
        The served trove.
    eid : str, UUID or path
        The session (see :meth:`~neurotrove.Trove.to_eid`).
    **filters
        The filters of :meth:`~neurotrove.Trove.list_datasets` (``filename``, ``qc``...).

    Raises
    ------
    NotFoundError
        When there is no such session.
    """
    rows = trove._filtered_datasets(eid, **filters)
    records = []
    for row in sorted(rows, key=lambda r: (str(r["eid"]), r["rel_path"])):
        record = {name: row[name] for name in DATASET_COLUMNS}
        record["qc"] = _qc_name(record["qc"])
        record["id"], record["eid"] = str(record["id"]), str(record["eid"])
        records.append(record)
    return records
