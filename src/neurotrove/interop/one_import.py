"""Import a ONE cache (``sessions.pqt`` and ``datasets.pqt``) into a trove.

What is kept
------------
- Sessions keep ONE's eid, lab, subject, date, number, task_protocol and projects; subjects,
  labs and projects are created as needed. A session already in the trove (same subject,
  date and number) is kept with its own eid, and the datasets are attached to it.
- Datasets keep ONE's id, file size, md5, QC and default revision. ONE's local caches
  (``make_parquet_db``) give the same ``rel_path`` the same id in every session, so only
  ``(eid, id)`` is unique there, while a neurotrove dataset id is unique on its own: an id
  found in more than one row of ``datasets.pqt`` is replaced by neurotrove's own stable id,
  ``uuid5(eid, rel_path)``, and ONE's id is kept in the dataset's ``json`` as ``one_id``.
- ``exists`` is the table's ``exists`` *and* the file being under the data root: a session
  folder that is not there marks all its datasets missing without a look at each file.
  With ``files_at=URL`` (a cache imported without its files, which are on an HTTP data
  server or in a bucket) ``exists`` is the table's, and each dataset records the URL as
  its ``store``: loads fetch its file from there into the file cache, verified.
- Without a ``default_revision`` column, the last revision (ONE's order) of each dataset
  becomes its default, as ``register`` does.
- Legacy tables are read too: int64 id pairs (``id_0``/``id_1``, ``eid_0``/``eid_1``) and a
  ``project`` column.

Rows whose ``rel_path`` is not an ALF name (ONE writes a NaN row for a hidden ``._x.npy``)
are not imported and are listed in the report with the reason.

How
---
The datasets table is read in batches of 10,000 rows
(``pyarrow.parquet.ParquetFile.iter_batches``): once for the ids found in more than one row
(kept as 16-byte keys), once to write them with bulk inserts, all in one write
transaction: an error anywhere (a malformed table, an eid missing from ``sessions.pqt``)
rolls everything back and changes nothing. Rows are written as tuples through
:func:`~neurotrove.catalog.writes.bulk_insert` (an upsert on the dataset key), and a first
large import builds the secondary indexes of ``datasets`` once at the end
(:mod:`neurotrove.catalog.bulk`), as a first registration does.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .. import alf
from ..catalog import schema as s
from ..catalog.bulk import indexes_deferred
from ..catalog.dataset_rows import COLUMNS, DatasetRow, name_parts
from ..catalog.tables import table_spec
from ..catalog.writes import bulk_insert, ensure_rows, insert_records, large_cache, utcnow
from ..errors import NotFoundError, ValidationError
from ..identifiers import uuid5_bytes
from ..progress import progress_bar
from ..qc import QC
from ..remote.object_store import normalise_store_url

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sqlalchemy.engine import Connection

    from ..trove.trove import Trove

__all__ = ["ImportReport", "import_tables"]

_BATCH = 10_000
_MAX_LISTED = 1_000


@dataclass
class ImportReport:
    """What ``import_one`` did.

    Attributes
    ----------
    sessions_added, sessions_existing : int
        Sessions new to the trove, and those it already had (kept with their own eid).
    datasets_written : int
        Datasets inserted or updated.
    datasets_missing : int
        Of those, how many have no file under the data root (``exists=False``).
    ids_replaced : int
        Datasets whose ONE id was shared with another session and was replaced (see the
        module notes); ONE's id is in ``json["one_id"]``.
    skipped : list of (str, str)
        Rows not imported, as ``(what, reason)`` (at most 1,000 listed).
    skipped_count : int
        All rows not imported.
    seconds : float
        Wall time.
    """

    folder: Path
    sessions_added: int = 0
    sessions_existing: int = 0
    datasets_written: int = 0
    datasets_missing: int = 0
    ids_replaced: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    skipped_count: int = 0
    seconds: float = 0.0

    def __str__(self) -> str:
        lines = [
            f"imported {self.folder} in {self.seconds:.1f} s",
            f"  sessions: {self.sessions_added} new, {self.sessions_existing} already here",
            f"  datasets: {self.datasets_written} written, {self.datasets_missing} not on disk, "
            f"{self.ids_replaced} ids replaced (shared between sessions)",
        ]
        if self.skipped_count:
            lines.append(f"  {self.skipped_count} rows not imported:")
            lines += [f"    {what}: {why}" for what, why in self.skipped[:20]]
        return "\n".join(lines)

    def _skip(self, what: str, why: str) -> None:
        self.skipped_count += 1
        if len(self.skipped) < _MAX_LISTED:
            self.skipped.append((what, why))


def _tables(path: Path) -> tuple[Path, Path]:
    folder = path if path.is_dir() else path.parent
    files = (folder / "sessions.pqt", folder / "datasets.pqt")
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise NotFoundError(
            f"{folder} has no {' or '.join(missing)}; give the folder of a ONE cache (the one "
            f"holding sessions.pqt and datasets.pqt, e.g. ONE's cache_dir)",
            path=str(path),
        )
    return files


def _open(path: Path) -> pq.ParquetFile:
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except Exception as error:  # pyarrow raises several kinds for a file that is not parquet
        raise ValidationError(
            f"{path} is not a readable parquet file ({error}); export the ONE cache again "
            f"(one.alf.cache.make_parquet_db or the server's cache.zip)",
            path=str(path),
        ) from None


def _id_columns(path: Path, names: Sequence[str], name: str) -> list[str]:
    """Return the column(s) holding id ``name``: ``[name]`` or the legacy int pair."""
    if name in names:
        return [name]
    if f"{name}_0" in names and f"{name}_1" in names:
        return [f"{name}_0", f"{name}_1"]
    raise ValidationError(
        f"{path} has no {name!r} column (nor the legacy {name}_0/{name}_1 pair); its columns "
        f"are {', '.join(names)}. Give a ONE cache table (one.alf.cache.make_parquet_db)",
        path=str(path),
    )


def _require(path: Path, names: Sequence[str], wanted: Iterable[str]) -> None:
    missing = [n for n in wanted if n not in names]
    if missing:
        raise ValidationError(
            f"{path} lacks the column(s) {', '.join(missing)} of a ONE cache table; its "
            f"columns are {', '.join(names)}. Rebuild it with one.alf.cache.make_parquet_db",
            path=str(path),
        )


def _ids(columns: Sequence[pa.Array], path: Path, what: str) -> list[str]:
    """Return ids as lowercase UUID strings, from a string column or an int64 pair."""
    import numpy as np

    if len(columns) == 2:
        pair = np.stack(
            [c.to_numpy(zero_copy_only=False).astype("<i8") for c in columns], axis=1
        ).copy()
        return [str(uuid.UUID(bytes=row.tobytes())) for row in pair]
    out = []
    for index, value in enumerate(columns[0].to_pylist()):
        try:
            out.append(str(uuid.UUID(str(value))))
        except ValueError:
            raise ValidationError(
                f"{path}, row {index}: {what} {value!r} is not a UUID; ONE's tables hold UUID "
                f"strings (or int64 pairs) there",
                path=str(path),
                row=index,
            ) from None
    return out


def _session_folder(root: Path, lab: str | None, subject: str, date: Any, number: int) -> str:
    ref = alf.SessionRef(subject, date, number, lab)
    canonical = str(ref.path)
    if lab and not (root / canonical).is_dir():
        bare = f"{subject}/{ref.date.isoformat()}/{number:03d}"
        if (root / bare).is_dir():
            return bare
    return canonical


def _import_sessions(
    conn: Connection, trove: Trove, path: Path, report: ImportReport
) -> dict[str, tuple[str, Path]]:
    """Insert the sessions; return ONE's eid -> (stored eid, session folder on disk)."""
    import pyarrow.parquet as pq

    names = pq.read_schema(path).names
    id_columns = _id_columns(path, names, "id")
    _require(path, names, ("subject", "date", "number"))
    projects = "projects" if "projects" in names else "project" if "project" in names else None
    wanted = [*id_columns, "subject", "date", "number"]
    wanted += [c for c in ("lab", "task_protocol", projects) if c is not None and c in names]
    table = pq.read_table(path, columns=wanted)
    eids = _ids([table.column(c) for c in id_columns], path, "id")
    columns = {c: table.column(c).to_pylist() for c in wanted if c not in id_columns}
    records = []
    for index, eid in enumerate(eids):
        subject, date, number = (columns[c][index] for c in ("subject", "date", "number"))
        lab = (columns.get("lab") or [None] * len(eids))[index] or None
        try:
            folder = _session_folder(trove.root, lab, subject, date, int(number))
        except (ValidationError, TypeError, ValueError) as error:
            reason = error.message if isinstance(error, ValidationError) else str(error)
            raise ValidationError(
                f"{path}, row {index} (session {eid}): {reason}; fix the row or leave it out",
                path=str(path),
                row=index,
            ) from None
        joined = (columns.get(projects or "") or [None] * len(eids))[index]
        records.append(
            {
                "eid": eid,
                "subject": subject,
                "lab": lab,
                "date": date,
                "number": int(number),
                "task_protocol": (columns.get("task_protocol") or [None] * len(eids))[index]
                or None,
                "projects": [p for p in str(joined or "").split(",") if p],
                "folder": folder,
            }
        )
    result = insert_records(conn, table_spec("sessions"), records, on_conflict="skip")
    report.sessions_added, report.sessions_existing = result.inserted, result.skipped
    stored: set[str] = set()
    for start in range(0, len(eids), 500):
        chunk = eids[start : start + 500]
        stored.update(
            conn.execute(sa.select(s.sessions.c.id).where(s.sessions.c.id.in_(chunk))).scalars()
        )
    mapping = {r["eid"]: (r["eid"], trove.root / r["folder"]) for r in records}
    for record in records:
        if record["eid"] not in stored:  # the trove had this session under its own eid
            eid = trove.to_eid(
                {"subject": record["subject"], "date": record["date"], "number": record["number"]}
            )
            mapping[record["eid"]] = (eid, trove.eid2path(eid))
    return mapping


def _shared_ids(parquet: pq.ParquetFile, columns: list[str], batch: int) -> set[str]:
    """Return the dataset ids found in more than one row (as lowercase UUID strings).

    The ids are read a batch at a time and kept as 16-byte keys (32 MB for 2M rows), so the
    count does not hold the whole column as strings or Python objects.
    """
    import numpy as np

    keys = []
    for chunk in parquet.iter_batches(batch_size=batch, columns=columns):
        if len(columns) == 2:
            pair = np.stack(
                [chunk.column(c).to_numpy(zero_copy_only=False).astype("<i8") for c in columns],
                axis=1,
            )
            keys.append(np.ascontiguousarray(pair).view("V16").ravel())
        else:
            # Malformed ids are reported by the import loop, with their row.
            keys.append(
                np.array([_uuid_bytes(v) for v in chunk.column(0).to_pylist()], dtype="V16")
            )
    if not keys:
        return set()
    unique, counts = np.unique(np.concatenate(keys), return_counts=True)
    return {str(uuid.UUID(bytes=bytes(k))) for k in unique[counts > 1]}


def _uuid_bytes(value: Any) -> bytes:
    try:
        return uuid.UUID(str(value)).bytes
    except ValueError:
        return bytes(16)


def _upsert(conn: Connection, rows: list[DatasetRow]) -> None:
    """Write dataset rows; a row whose key is stored updates it."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(s.datasets)
    statement = statement.on_conflict_do_update(
        index_elements=["session", "collection", "revision", "name"],
        set_={
            name: statement.excluded[name]
            for name in ("file_size", "hash", "exists", "qc", "default_revision", "json", "store")
        },
    )
    bulk_insert(conn, s.datasets, COLUMNS, rows, statement=statement)


def _group(row: Any) -> tuple[Any, Any, Any]:
    """Return the (session, collection, name) whose revisions a default is chosen among."""
    return row.session, row.collection, row.name


def _default_to_latest(conn: Connection, eids: Sequence[str]) -> None:
    """Make the last revision of each dataset of these sessions its only default.

    Sessions are read 500 at a time through the session index and each
    (session, collection, name) group is settled in Python, then only the rows whose flag
    changes are updated by primary key.  (A correlated ``max(revision)`` subquery looks
    simpler, but without table statistics SQLite answers it through the name index and
    scans every session's copy of the dataset: quadratic at 50k sessions.)
    """
    d = s.datasets
    # On SQLite the ids as stored (16 bytes), which the update below binds back as they are,
    # rather than a UUID string decoded for each of the (millions of) rows.
    raw = conn.dialect.name == "sqlite"
    ident: Any = sa.type_coerce(d.c.id, sa.LargeBinary) if raw else d.c.id
    session: Any = sa.type_coerce(d.c.session, sa.LargeBinary) if raw else d.c.session
    for start in range(0, len(eids), 500):
        rows = conn.execute(
            sa.select(
                ident.label("id"),
                session.label("session"),
                d.c.collection,
                d.c.name,
                d.c.default_revision,
            )
            .where(d.c.session.in_(eids[start : start + 500]))
            .order_by(d.c.session, d.c.collection, d.c.name, d.c.revision)
        ).all()
        changes = []
        for k, row in enumerate(rows):
            following = rows[k + 1] if k + 1 < len(rows) else None
            # Ordered by revision within a group, so the group's last row is the latest.
            latest = following is None or _group(following) != _group(row)
            if bool(row.default_revision) != latest:
                changes.append({"row_id": row.id, "flag": latest})
        if changes:
            conn.execute(
                sa.update(d)
                .where(d.c.id == sa.bindparam("row_id"))
                .values(default_revision=sa.bindparam("flag")),
                changes,
            )


_QC_NAMES = {q.name: int(q) for q in QC}


def _qc(value: Any, path: Path, index: int) -> int:
    if value is None or value != value:  # NaN
        return 0
    if isinstance(value, str) and value in _QC_NAMES:
        return _QC_NAMES[value]
    try:
        return int(QC.parse(value))
    except ValidationError as error:
        raise ValidationError(f"{path}, row {index}: {error.message}", path=str(path)) from None


def import_tables(
    trove: Trove,
    path: Path,
    *,
    progress: bool | None = None,
    batch: int = _BATCH,
    files_at: str | None = None,
) -> ImportReport:
    """Import the ONE cache in ``path`` (a folder, or one of its tables) into ``trove``.

    See :meth:`neurotrove.Trove.import_one` and the module notes.

    Raises
    ------
    NotFoundError
        When ``sessions.pqt`` or ``datasets.pqt`` is missing.
    ValidationError
        For a malformed table, naming the file, the row and what to do; nothing is written.

    Examples
    --------
    >>> import tempfile, pathlib, neurotrove as nt
    >>> from one.alf.cache import make_parquet_db
    >>> from neurotrove.demo import write_example_tree
    >>> source = pathlib.Path(tempfile.mkdtemp())
    >>> _ = write_example_tree(source, oddities=False)
    >>> _ = make_parquet_db(source)
    >>> report = nt.connect(source, create=True).import_one(source, progress=False)
    >>> report.sessions_added, report.datasets_missing
    (12, 0)

    Long on purpose: read, check, map ids, then write everything in one transaction;
    the transaction's extent is the function's.
    """
    began = time.perf_counter()
    store = normalise_store_url(files_at) if files_at is not None else None
    sessions_path, datasets_path = _tables(path)
    report = ImportReport(folder=sessions_path.parent)
    parquet = _open(datasets_path)
    _open(sessions_path)
    names = parquet.schema_arrow.names
    eid_columns = _id_columns(datasets_path, names, "eid")
    id_columns = _id_columns(datasets_path, names, "id")
    _require(datasets_path, names, ("rel_path",))
    optional = [c for c in ("file_size", "hash", "exists", "qc", "default_revision") if c in names]
    shared = _shared_ids(parquet, id_columns, batch)
    now = utcnow()
    unsaid: set[str] = set()  # sessions whose datasets need their default revision settled
    namespaces: dict[str, bytes] = {}  # eid -> its 16 bytes, the namespace of its dataset ids
    with (
        indexes_deferred(trove.catalog, s.datasets, parquet.metadata.num_rows),
        trove.catalog.write() as conn,
        large_cache(conn),
    ):
        sessions = _import_sessions(conn, trove, sessions_path, report)
        folders_present: dict[Path, bool] = {}
        total = parquet.metadata.num_rows
        offset = 0
        with progress_bar(total, "importing ONE datasets", enabled=progress) as bar:
            for chunk in parquet.iter_batches(
                batch_size=batch, columns=[*eid_columns, *id_columns, "rel_path", *optional]
            ):
                eids = _ids([chunk.column(c) for c in eid_columns], datasets_path, "eid")
                ids = _ids([chunk.column(c) for c in id_columns], datasets_path, "id")
                values = {c: chunk.column(c).to_pylist() for c in ("rel_path", *optional)}
                defaults = values.get("default_revision") or [None] * len(ids)
                rows: list[DatasetRow] = []
                for k, (one_eid, one_id) in enumerate(zip(eids, ids, strict=True)):
                    index = offset + k
                    rel_path = values["rel_path"][k]
                    where = f"{datasets_path.name} row {index}"
                    if one_eid not in sessions:
                        raise ValidationError(
                            f"{datasets_path}, row {index}: eid {one_eid} is not in "
                            f"{sessions_path.name}; the two tables must come from one cache",
                            path=str(datasets_path),
                            row=index,
                        )
                    eid, folder = sessions[one_eid]
                    if not isinstance(rel_path, str) or not rel_path:
                        report._skip(where, "no rel_path (ONE writes such rows for ._ files)")
                        continue
                    try:
                        rel = alf.parse_rel_path(rel_path)
                    except ValidationError as error:
                        report._skip(f"{where} ({rel_path})", error.message)
                        continue
                    canonical = str(rel)
                    replaced = one_id in shared
                    exists = bool(values["exists"][k]) if "exists" in values else True
                    if exists and store is None:
                        present = folders_present.get(folder)
                        if present is None:
                            present = folders_present[folder] = folder.is_dir()
                        exists = present and (folder / rel_path).is_file()
                    size = values["file_size"][k] if "file_size" in values else None
                    digest = values["hash"][k] if "hash" in values else None
                    default = defaults[k]
                    if replaced:  # dataset_id(eid, rel_path), as 16 bytes
                        space = namespaces.get(eid)
                        if space is None:
                            space = namespaces[eid] = uuid.UUID(eid).bytes
                        row_id: str | bytes = uuid5_bytes(space, canonical.encode())
                    else:
                        row_id = one_id
                    rows.append(
                        DatasetRow(
                            row_id,
                            eid,
                            *name_parts(rel),
                            file_size=None if size is None or size != size else int(size),
                            hash=digest or None,
                            exists=exists,
                            qc=(
                                _qc(values["qc"][k], datasets_path, index) if "qc" in values else 0
                            ),
                            default_revision=True if default is None else bool(default),
                            created_at=now,
                            created_by=None,
                            json={"one_id": one_id} if replaced else None,
                            file_mtime_ns=None,
                            store=store,
                        )
                    )
                    report.ids_replaced += replaced
                    report.datasets_missing += not exists
                    if default is None and rel.revision:
                        unsaid.add(eid)
                if rows:
                    ensure_rows(conn, s.dataset_types, "name", {r.dataset_type for r in rows})
                    ensure_rows(
                        conn,
                        s.revisions,
                        "name",
                        {r.revision for r in rows},
                        extra={"created_at": now},
                    )
                    _upsert(conn, rows)
                    report.datasets_written += len(rows)
                offset += chunk.num_rows
                bar.advance(chunk.num_rows)
        _default_to_latest(conn, sorted(unsaid))
    report.seconds = time.perf_counter() - began
    return report
