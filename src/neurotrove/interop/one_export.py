"""ONE's cache tables: export a trove as ``sessions.pqt``/``datasets.pqt``, and import them.

ONE-api (``one.api.One(cache_dir=root, mode="local")``) reads two parquet tables:

- ``sessions.pqt``, indexed by ``id``: ``lab, subject, date (date32), number (uint16),
  task_protocol, projects`` (project names joined by commas);
- ``datasets.pqt``, indexed by ``[eid, id]``: ``rel_path`` (relative to the session folder,
  with ``collection/#revision#/``), ``file_size`` (nullable UInt64), ``hash`` (md5),
  ``exists``, ``qc`` (ordered categorical ``NOT_SET < PASS < WARNING < FAIL < CRITICAL``) and
  ``default_revision``.

Each carries ``one_metadata`` in its parquet schema (``date_created``, ``origin``,
``min_api_version``), and ``cache_info.json`` repeats it with each table's row count and size.

Exporting streams the catalogue in batches through :class:`pyarrow.parquet.ParquetWriter`
into files staged beside their targets (one :class:`~neurotrove.files.atomic.FileWrite`),
and renames them into place only when all are complete, so an error leaves the previous
tables (or none) and never half a table; an export killed mid-way is undone (or, once every
table was complete, finished) by the trove's next open or export.

Choices
-------
- Datasets not in a session (neurotrove allows them) are left out: ONE indexes by session.
- Datasets marked missing (``exists=False``) are exported with ``exists=False``, as Alyx
  does, so ONE lists them but does not load them. Hidden files (``._x.npy``) and names that
  are not ALF are never in the catalogue, so never in the tables (ONE's own
  ``make_parquet_db`` writes a NaN row for ``._x.npy`` and then cannot load its cache).
- ``min_api_version`` is ``2.7.0``: the tables already have ``qc`` and ``projects``, so no
  ONE patch applies to them.

Examples
--------
>>> import tempfile
>>> import neurotrove as nt
>>> from neurotrove.demo import write_example_tree
>>> root = tempfile.mkdtemp()
>>> _ = write_example_tree(root, oddities=False)
>>> trove = nt.connect(root, create=True)
>>> _ = trove.register(progress=False)
>>> folder = trove.export_one(root)
>>> sorted(p.name for p in folder.glob("*.pqt"))
['datasets.pqt', 'sessions.pqt']
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..catalog import schema as s
from ..files.atomic import FileWrite, recover_writes
from ..qc import QC
from ..query.sessions import rel_path_of

if TYPE_CHECKING:
    import pyarrow as pa

    from ..catalog.store import Catalog

__all__ = [
    "MIN_API_VERSION",
    "QC_NAMES",
    "TABLE_FILES",
    "CacheInfo",
    "export_tables",
]

MIN_API_VERSION = "2.7.0"
"""The oldest ONE that reads the exported tables without patching them."""

QC_NAMES = tuple(q.name for q in sorted(QC))
"""ONE's QC categories, in order: ``NOT_SET, PASS, WARNING, FAIL, CRITICAL``."""

TABLE_FILES = ("sessions.pqt", "datasets.pqt")
"""The files of a ONE cache, besides ``cache_info.json``."""

_BATCH = 100_000


@dataclass(frozen=True)
class CacheInfo:
    """What an export wrote: ONE's metadata and each table's row count and size.

    Attributes
    ----------
    folder : Path
        Where the tables are.
    metadata : dict
        ``date_created``, ``origin`` and ``min_api_version``, as stored in each table.
    tables : dict
        ``{name: {"nrecs": rows, "size": bytes}}``.
    """

    folder: Path
    metadata: dict[str, Any]
    tables: dict[str, dict[str, int]]

    def as_json(self) -> dict[str, Any]:
        """Return the contents of ``cache_info.json``."""
        return {**self.metadata, "tables": self.tables}


def one_date(moment: dt.datetime | None = None) -> str:
    """Return a time as ONE's ``date_created``: local time, ``'YYYY-MM-DD HH:MM'``.

    Examples
    --------
    >>> one_date(dt.datetime(2024, 5, 6, 7, 8, 9))
    '2024-05-06 07:08'
    """
    return (moment or dt.datetime.now()).isoformat(sep=" ", timespec="minutes")


def _schemas() -> tuple[pa.Schema, pa.Schema]:
    import pyarrow as pa

    sessions = pa.schema(
        [
            ("id", pa.string()),
            ("lab", pa.string()),
            ("subject", pa.string()),
            ("date", pa.date32()),
            ("number", pa.uint16()),
            ("task_protocol", pa.string()),
            ("projects", pa.string()),
        ]
    )
    datasets = pa.schema(
        [
            ("eid", pa.string()),
            ("id", pa.string()),
            ("rel_path", pa.string()),
            ("file_size", pa.uint64()),
            ("hash", pa.string()),
            ("exists", pa.bool_()),
            ("qc", pa.dictionary(pa.int8(), pa.string(), ordered=True)),
            ("default_revision", pa.bool_()),
        ]
    )
    return sessions, datasets


def _pandas_metadata(schema: pa.Schema, index: list[str], dtypes: dict[str, str]) -> bytes:
    """Return the ``pandas`` schema metadata that makes ``read_parquet`` restore ONE's frame."""
    columns = []
    for field in schema:
        pandas_type = dtypes.get(field.name, "unicode")
        numpy_type = {"date": "object", "categorical": "int8", "uint64": "UInt64"}.get(
            pandas_type, pandas_type
        )
        if pandas_type == "unicode":
            numpy_type = "object"
        extra = {"num_categories": len(QC_NAMES), "ordered": True} if field.name == "qc" else None
        columns.append(
            {
                "name": field.name,
                "field_name": field.name,
                "pandas_type": pandas_type,
                "numpy_type": numpy_type,
                "metadata": extra,
            }
        )
    import pandas as pd
    import pyarrow as pa

    document = {
        "index_columns": index,
        "column_indexes": [],
        "columns": columns,
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": pd.__version__,
    }
    return json.dumps(document).encode()


def _with_metadata(
    schema: pa.Schema, index: list[str], dtypes: dict[str, str], one: dict[str, Any]
) -> pa.Schema:
    return schema.with_metadata(
        {
            b"pandas": _pandas_metadata(schema, index, dtypes),
            b"one_metadata": json.dumps(one).encode(),
        }
    )


def _session_batches(conn: Any, batch: int, tag: str | None = None) -> Iterator[list[Any]]:
    projects: dict[str, list[str]] = {}
    link = s.session_projects.c
    for session, project in conn.execute(
        sa.select(link.session, link.project).order_by(link.session, link.project)
    ):
        projects.setdefault(session, []).append(project)
    query = (
        sa.select(
            s.sessions.c.id,
            s.sessions.c.lab,
            s.subjects.c.nickname,
            s.sessions.c.date,
            s.sessions.c.number,
            s.sessions.c.task_protocol,
        )
        .select_from(s.sessions.join(s.subjects, s.sessions.c.subject == s.subjects.c.id))
        .order_by(s.sessions.c.id)
    )
    if tag is not None:
        d = s.datasets.c
        query = query.where(s.sessions.c.id.in_(sa.select(d.session).where(_tagged(d.id, tag))))
    rows = []
    for row in conn.execution_options(yield_per=batch).execute(query):
        rows.append((*row, ",".join(projects.get(row.id, ()))))
        if len(rows) >= batch:
            yield rows
            rows = []
    if rows:
        yield rows


def _tagged(id_column: Any, tag: str) -> Any:
    """Return the condition that a dataset carries ``tag``."""
    tags = s.dataset_tags.c
    return id_column.in_(sa.select(tags.dataset).where(tags.tag == tag))


def _dataset_batches(conn: Any, batch: int, tag: str | None = None) -> Iterator[list[Any]]:
    d = s.datasets.c
    kept = s.release_datasets.c
    # A release's datasets carry the md5 and size they had when released, so ONE checks
    # a file against those.
    source: Any = s.datasets
    hash_: Any = d.hash
    size: Any = d.file_size
    if tag is not None:
        source = s.datasets.outerjoin(
            s.release_datasets, sa.and_(kept.dataset == d.id, kept.release == tag)
        )
        hash_ = sa.func.coalesce(kept.hash, d.hash)
        size = sa.func.coalesce(kept.file_size, d.file_size)
    query = (
        sa.select(
            d.session,
            d.id,
            d.collection,
            d.revision,
            d.name,
            size.label("file_size"),
            hash_.label("hash"),
            d.exists,
            d.qc,
            d.default_revision,
        )
        .select_from(source)
        .where(d.session.is_not(None))
        .order_by(d.session, d.id)
    )
    if tag is not None:
        query = query.where(_tagged(d.id, tag))
    rows = []
    for row in conn.execution_options(yield_per=batch).execute(query):
        rows.append(row)
        if len(rows) >= batch:
            yield rows
            rows = []
    if rows:
        yield rows


def _sessions_table(rows: list[Any], schema: pa.Schema, no_lab: str = "") -> pa.Table:
    import pyarrow as pa

    columns = list(zip(*rows, strict=True))
    lab = [value or no_lab for value in columns[1]]  # ONE holds a missing lab as ''
    protocol = [value or "" for value in columns[5]]
    arrays = [columns[0], lab, columns[2], columns[3], columns[4], protocol, columns[6]]
    return pa.Table.from_arrays(
        [pa.array(a, type=f.type) for a, f in zip(arrays, schema, strict=True)], schema=schema
    )


def _datasets_table(rows: list[Any], schema: pa.Schema) -> pa.Table:
    import pyarrow as pa

    codes = {int(q): k for k, q in enumerate(sorted(QC))}
    qc = pa.DictionaryArray.from_arrays(
        pa.array([codes[r.qc] for r in rows], type=pa.int8()),
        pa.array(QC_NAMES, type=pa.string()),
        ordered=True,
    )
    arrays = [
        pa.array([r.session for r in rows], type=pa.string()),
        pa.array([r.id for r in rows], type=pa.string()),
        pa.array([rel_path_of(r.collection, r.revision, r.name) for r in rows], type=pa.string()),
        pa.array([r.file_size for r in rows], type=pa.uint64()),
        pa.array([r.hash for r in rows], type=pa.string()),
        pa.array([bool(r.exists) for r in rows], type=pa.bool_()),
        qc,
        pa.array([bool(r.default_revision) for r in rows], type=pa.bool_()),
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def export_tables(
    catalog: Catalog,
    folder: Path,
    *,
    origin: str,
    date_created: str | None = None,
    batch: int = _BATCH,
    staging: Path | None = None,
    tag: str | None = None,
    no_lab: str = "",
) -> CacheInfo:
    """Write ONE's cache tables of the catalogue into ``folder``, atomically.

    Parameters
    ----------
    catalog : Catalog
        The catalogue to export (read in one transaction, so the tables agree).
    folder : Path
        Where ``sessions.pqt``, ``datasets.pqt`` and ``cache_info.json`` go (created).
    origin : str
        What the tables come from (ONE re-downloads a remote cache whose origin changed).
    date_created : str, optional
        ONE's ``'YYYY-MM-DD HH:MM'``; the default is now.
    batch : int
        Rows read and written at a time.
    staging : Path, optional
        The folder of write journals (the trove's ``.trove/staging``; by default
        ``folder/.trove-staging``), where an interrupted export is found and undone.
    tag : str, optional
        Only the datasets carrying this tag (a release's, with the md5s it kept), and their
        sessions; ``database_tags`` then names it, as ONE's ``load_cache(tag=)`` expects.

    no_lab : str
        The lab of sessions without one: ONE's ``''`` (a data root's tables), or the lab a
        server gives Alyx clients for them (``nolab``), so ONE's paths match its URLs.

    Returns
    -------
    CacheInfo
    """
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    one: dict[str, Any] = {
        "date_created": date_created or one_date(),
        "origin": origin,
        "min_api_version": MIN_API_VERSION,
    }
    if tag is not None:
        one["database_tags"] = [tag]
    session_schema, dataset_schema = _schemas()
    plans: list[tuple[str, Any, Any, Any, Any]] = [
        (
            "sessions",
            _with_metadata(session_schema, ["id"], {"date": "date", "number": "uint16"}, one),
            _session_batches,
            functools.partial(_sessions_table, no_lab=no_lab),
            session_schema,
        ),
        (
            "datasets",
            _with_metadata(
                dataset_schema,
                ["eid", "id"],
                {
                    "file_size": "uint64",
                    "exists": "bool",
                    "qc": "categorical",
                    "default_revision": "bool",
                },
                one,
            ),
            _dataset_batches,
            _datasets_table,
            dataset_schema,
        ),
    ]
    home = staging if staging is not None else folder / ".trove-staging"
    recover_writes(home)
    tables: dict[str, dict[str, int]] = {}
    with FileWrite(home) as files:
        with catalog.read() as conn:
            for name, schema, batches, to_table, bare in plans:
                with (
                    files.stage_written(folder / f"{name}.pqt") as staged,
                    pq.ParquetWriter(staged, schema) as writer,
                ):
                    count = 0
                    for rows in batches(conn, batch, tag):
                        writer.write_table(to_table(rows, bare).replace_schema_metadata(None))
                        count += len(rows)
                    if count == 0:  # datasets keep their QC categories even when empty
                        empty = _datasets_table([], bare) if name == "datasets" else None
                        writer.write_table(empty if empty is not None else bare.empty_table())
                tables[name] = {"nrecs": count, "size": files.staged[-1].size or 0}
        info = CacheInfo(folder, one, tables)
        files.stage_bytes(
            folder / "cache_info.json", json.dumps(info.as_json(), indent=1).encode()
        )
        files.complete()
    if staging is None:
        with contextlib.suppress(OSError):
            home.rmdir()
    return info
