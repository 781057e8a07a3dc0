"""Dataset filters of ``search`` answered in memory, for one state of the catalogue.

``search(datasets=[two names])`` at consortium scale matches tens of thousands of sessions:
asking the database for them and decoding them into a DataFrame costs 0.3-0.5 s at 50,000
sessions, however good the index. So the first search with a ``dataset`` or ``datasets``
filter takes a :class:`SearchSnapshot` of the catalogue's current state
(:meth:`~neurotrove.catalog.store.Catalog.version`): the frame of every session in search
order, and, for each dataset name (or ``rel_path``) a search asks about, the rows of the
frame holding it present on disk, with each dataset's QC. Later searches answer from NumPy masks
over these in milliseconds, until the next write to the catalogue, which makes the next
search take a new snapshot. The other filters of the same search, and the table's default
conditions, still go to the database (they are selective and indexed).

Nothing mutable in the snapshot is handed out: a result is a new frame whose JSON values and
lists are copies (a nested JSON value by a round trip through JSON), so changing a result in
place never changes the next one. Its strings and dates, immutable, are the snapshot's, each
kept once however many sessions hold it (:func:`_share_values`). The snapshot is one per
catalogue and is replaced, not kept beside the old one, when the catalogue changes.

Examples
--------
>>> import tempfile, pathlib, neurotrove as nt
>>> trove = nt.connect(tempfile.mkdtemp(), create=True)
>>> eid = trove.register_session("KS005", "2019-04-01")
>>> folder = trove.root / trove.eid2path(eid) / "alf"
>>> folder.mkdir(parents=True)
>>> _ = (folder / "spikes.times.npy").write_bytes(b"")
>>> _ = trove.register(progress=False)
>>> list(trove.search(datasets="spikes.times.npy").subject)
['KS005']
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..catalog import schema as s
from ..catalog.tables import TableSpec
from .frames import collection_paused, select_records, to_frame
from .sessions import (
    binned_datasets,
    distinct_dataset_names,
    distinct_dataset_paths,
    outside_bin,
    rel_path_of,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from ..catalog.store import Catalog

__all__ = ["DATASET_FILTERS", "SearchSnapshot", "current", "snapshot"]

DATASET_FILTERS = ("dataset", "datasets")
"""The filters a snapshot answers: patterns over the datasets each session holds."""

_snapshots: weakref.WeakKeyDictionary[Catalog, SearchSnapshot] = weakref.WeakKeyDictionary()
_taking = threading.Lock()


def catalog_version(conn: Connection) -> str | None:
    """Return the catalogue's state as seen by this transaction, or None if it has none."""
    state = s.catalog_state.c
    row = conn.execute(sa.select(state.generation, state.version)).first()
    return None if row is None else f"{row.generation}-{row.version}"


def snapshot(catalog: Catalog, conn: Connection, spec: TableSpec) -> SearchSnapshot | None:
    """Return the snapshot of the state ``conn`` reads, taking it if the catalogue changed.

    None when the catalogue has no version to tell its states apart (its state row was
    deleted): the caller then asks the database.
    """
    version = catalog_version(conn)
    if version is None:
        return None
    with _taking:
        current = _snapshots.get(catalog)
        if current is None or current.version != version:
            current = _snapshots[catalog] = SearchSnapshot(conn, spec, version)
    return current


def current(catalog: Catalog, conn: Connection) -> SearchSnapshot | None:
    """Return the snapshot of the state ``conn`` reads if one is taken already, else None."""
    version = catalog_version(conn)
    with _taking:
        found = _snapshots.get(catalog)
    return found if found is not None and found.version == version else None


class SearchSnapshot:
    """Every session in search order, and which of them hold which datasets.

    Parameters
    ----------
    conn : Connection
        A read transaction; the snapshot is of the state it sees.
    spec : TableSpec
        The sessions table's view (``table_spec("sessions")``).
    version : str
        That state's name, from :func:`catalog_version`.
    """

    def __init__(self, conn: Connection, spec: TableSpec, version: str) -> None:
        self.version = version
        self.spec = spec
        self._raw = conn.dialect.name == "sqlite"
        with collection_paused():
            names, data = select_records(conn, spec)
            _share_values(spec, data)
            frame = to_frame(spec, names, data)
            del data
            self._json = [n for n in frame.columns if spec.column(n).kind == "json"]
            self._lists = [n for n in frame.columns if spec.column(n).kind == "list"]
            self._result = _ResultColumns(frame, spec)
            self.frame = self._result.whole().drop(columns=self._json)
        keys = [str(eid) for eid in self.frame.index]
        self._row: dict[Any, int] = {
            (bytes.fromhex(k.replace("-", "")) if self._raw else k): i for i, k in enumerate(keys)
        }
        self._holders: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]] = {}
        self._names: list[str] | None = None
        self._paths: list[tuple[str, str, str]] | None = None
        self._bin: list[tuple[Any, str, str, str]] | None = None
        self._outside_bin: tuple[np.ndarray, np.ndarray] | None = None
        self._ranks: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.frame)

    # -- sorting, for pages sorted by a column (:mod:`.ordering`) ----------------------------

    def rows_outside_bin(self, conn: Connection) -> np.ndarray:
        """Return the frame rows (ascending) of the sessions not in the bin."""
        return self._bin_masks(conn)[1]

    def outside_bin(self, conn: Connection, rows: np.ndarray) -> np.ndarray:
        """Return those of ``rows`` (ascending) whose sessions are not in the bin.

        A look-up per row in a mask, not a set intersection (which sorts both sides: 40 ms
        for 24,000 of 50,000 sessions).
        """
        outside: np.ndarray = rows[self._bin_masks(conn)[0][rows]]
        return outside

    def _bin_masks(self, conn: Connection) -> tuple[np.ndarray, np.ndarray]:
        """Return the frame's mask of sessions not in the bin, and its rows."""
        import numpy as np

        with self._lock:
            if self._outside_bin is None:
                key: Any = s.sessions.c.id
                selected: Any = sa.type_coerce(key, sa.LargeBinary) if self._raw else key
                query = sa.select(selected).where(s.sessions.c.deleted_at.is_not(None))
                mask = np.ones(len(self), dtype=bool)
                binned = [self._row.get(eid) for eid in conn.execute(query).scalars()]
                mask[[r for r in binned if r is not None]] = False
                self._outside_bin = (mask, np.flatnonzero(mask))
            return self._outside_bin

    def sorted_rows(self, rows: np.ndarray, sort: str) -> np.ndarray:
        """Return ``rows`` sorted by ``sort`` (ties in search order), from a cached ranking."""
        import numpy as np

        from .ordering import sort_frame_rows

        with self._lock:
            rank = self._ranks.get(sort)
            if rank is None:
                everything = np.arange(len(self))
                rank = np.empty(len(self), dtype=np.int64)
                rank[sort_frame_rows(self.frame, everything, sort)] = everything
                self._ranks[sort] = rank
        return rows[np.argsort(rank[rows], kind="stable")]

    # -- which sessions match -----------------------------------------------------------------

    def matching(
        self,
        conn: Connection,
        filters: Sequence[tuple[str, Sequence[str]]],
        qc_limit: int,
        where: Sequence[Any] = (),
    ) -> np.ndarray:
        """Return the frame rows (ascending) matching every dataset pattern and ``where``.

        Parameters
        ----------
        conn : Connection
            A read transaction on the snapshot's state.
        filters : sequence of (filter, patterns)
            ``("datasets", [...])`` patterns match whole file names, ``("dataset", [...])``
            patterns search the ``rel_path``; the session must hold a present dataset at or
            below ``qc_limit`` for every pattern.
        qc_limit : int
            The highest QC counted.
        where : sequence of SQL conditions
            Further conditions on the sessions, asked of the database.
        """
        import numpy as np

        mask = np.ones(len(self), dtype=bool)
        for target, patterns in filters:
            for pattern in patterns:
                held = np.zeros(len(self), dtype=bool)
                for key in self._keys(conn, target, pattern):
                    rows, qc = self._held_by(conn, key)
                    held[rows[qc <= qc_limit]] = True
                mask &= held
        if where and mask.any():
            mask &= self._rows_where(conn, where)
        return np.flatnonzero(mask)

    def frame_at(self, rows: np.ndarray) -> pd.DataFrame:
        """Return a new DataFrame of these frame rows, sharing nothing mutable."""
        with collection_paused():
            return self._frame_at(rows)

    def _frame_at(self, rows: np.ndarray) -> pd.DataFrame:
        import numpy as np

        result = self._result
        count = len(rows)
        # Every object column in one take (a block as pandas keeps it), then the JSON and
        # list rows replaced by copies of what was taken.
        objects = result.objects.take(rows, axis=1)
        for at, name in result.copied:
            taken = objects[at]
            if name in self._lists:
                objects[at] = np.fromiter(map(list, taken), dtype=object, count=count)
            elif (flat := result.flat[name][rows]).all():
                objects[at] = np.fromiter(map(dict.copy, taken), dtype=object, count=count)
            else:
                objects[at] = np.fromiter(
                    (
                        v.copy() if f else json.loads(json.dumps(v))
                        for v, f in zip(taken, flat, strict=True)
                    ),
                    dtype=object,
                    count=count,
                )
        return result.frame(objects, rows)

    def eids_at(self, rows: np.ndarray) -> list[str]:
        """Return the eids of these frame rows."""
        return [str(eid) for eid in self.frame.index[rows]]

    # -- the parts, taken when first asked for ------------------------------------------------

    def _keys(self, conn: Connection, target: str, pattern: str) -> list[tuple[str, ...]]:
        compiled = re.compile(pattern)
        with self._lock:
            if target == "datasets":
                if self._names is None:
                    self._names = distinct_dataset_names(conn)
                return [("name", n) for n in self._names if compiled.fullmatch(n)]
            if self._paths is None:
                self._paths = distinct_dataset_paths(conn)
            return [
                ("path", n, c, r)
                for n, c, r in self._paths
                if compiled.search(rel_path_of(c, r, n))
            ]

    def _held_by(self, conn: Connection, key: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Return the frame rows holding a present dataset ``key``, and the dataset's QC."""
        import numpy as np

        with self._lock:
            found = self._holders.get(key)
            if found is not None:
                return found
            d = s.datasets.c
            session: Any = sa.type_coerce(d.session, sa.LargeBinary) if self._raw else d.session
            # One row per dataset (a session may hold the name in several collections and
            # revisions), straight from the covering index on (name, collection, revision,
            # session, qc, exists); the repeats are harmless to the masks.
            query = sa.select(session, d.qc).where(d.name == key[1], d.exists.is_(True))
            if key[0] == "path":
                query = query.where(d.collection == key[2], d.revision == key[3])
                outside = outside_bin(self._binned(conn), paths={(key[1], key[2], key[3])})
            else:
                outside = outside_bin(self._binned(conn), names={key[1]})
            query = query.where(*outside)  # datasets in the bin are not held
            rows, qc = [], []
            position = self._row
            for eid, value in conn.execute(query).all():
                row = position.get(eid)
                if row is not None:
                    rows.append(row)
                    qc.append(value)
            found = self._holders[key] = (
                np.array(rows, dtype=np.int64),
                np.array(qc, dtype=np.int64),
            )
            return found

    def _binned(self, conn: Connection) -> list[tuple[Any, str, str, str]]:
        """Return the datasets in the bin (read once per snapshot, under its lock)."""
        if self._bin is None:
            self._bin = binned_datasets(conn)
        return self._bin

    def _rows_where(self, conn: Connection, where: Sequence[Any]) -> np.ndarray:
        import numpy as np

        key = self.spec.column(self.spec.key).sql
        selected: Any = sa.type_coerce(key, sa.LargeBinary) if self._raw else key
        query = sa.select(selected).select_from(self.spec.from_clause).where(*where)
        mask = np.zeros(len(self), dtype=bool)
        rows = [self._row.get(eid) for eid in conn.execute(query).scalars()]
        mask[[r for r in rows if r is not None]] = True
        return mask


class _ResultColumns:
    """A snapshot's columns as results are built from them: the object columns in one array.

    pandas keeps a frame's object columns in one two-dimensional block; a result built
    column by column (a Series each) is stacked into one again, a second pass over every
    value. Here the object columns are one array (a row per column, in the frame's order),
    taken at once for a result and given to pandas as its block; the other columns (numbers,
    times, QC categoricals) are taken and inserted one by one, in their places.

    The values are the snapshot's own, each string and date once (:func:`_share_values`).

    Parameters
    ----------
    frame : pandas.DataFrame
        The snapshot's frame, JSON columns included.
    spec : TableSpec
        Its table's view, which tells the JSON and list columns.

    Attributes
    ----------
    flat : dict of str to numpy.ndarray
        Per JSON column, which values are flat dicts (of scalars), copied by ``dict.copy``;
        a result copies the others (nested) by a round trip through JSON.
    """

    def __init__(self, frame: pd.DataFrame, spec: TableSpec) -> None:
        import numpy as np
        import pandas as pd

        names = list(frame.columns)
        self.object_names = [n for n in names if frame[n].dtype == object]
        self._object_columns = pd.Index(self.object_names, dtype=object)
        kinds = [spec.column(n).kind for n in self.object_names]
        self.objects = np.empty((len(self.object_names), len(frame)), dtype=object)
        self.flat: dict[str, np.ndarray] = {}
        for at, (name, kind) in enumerate(zip(self.object_names, kinds, strict=True)):
            self.objects[at] = values = frame[name].to_numpy(dtype=object)
            if kind == "json":
                self.flat[name] = np.fromiter(map(_flat, values), dtype=bool, count=len(frame))
        self.index = frame.index
        self.copied = [
            (at, name)
            for at, (name, kind) in enumerate(zip(self.object_names, kinds, strict=True))
            if kind in ("json", "list")
        ]
        self.others = [
            (names.index(n), n, frame[n].array) for n in names if n not in self.object_names
        ]
        self.columns = frame.columns

    def whole(self) -> pd.DataFrame:
        """Return the frame of every row, sharing the values (for the snapshot itself)."""
        return self._frame(self.objects, self.index, [values for _, _, values in self.others])

    def frame(self, objects: np.ndarray, rows: np.ndarray) -> pd.DataFrame:
        """Return the result of ``rows``, given its object columns (taken and copied)."""
        others = [values.take(rows) for _, _, values in self.others]
        return self._frame(objects, self.index.take(rows), others)

    def _frame(self, objects: np.ndarray, index: pd.Index, others: list[Any]) -> pd.DataFrame:
        import pandas as pd

        # A two-dimensional array becomes the frame's block as it is (the transpose of its
        # transpose), not copied; ``dtype=object`` keeps pandas from inferring other types.
        result = pd.DataFrame(
            objects.T, index=index, columns=self._object_columns, dtype=object, copy=False
        )
        for (position, name, _), values in zip(self.others, others, strict=True):
            result.insert(position, name, values)
        result.columns = self.columns
        return result


def _share_values(spec: TableSpec, data: dict[str, list[Any]]) -> None:
    """Make equal strings and dates of the snapshot's values one object, in place.

    A result touches every value it holds (a reference more), and every dict and list it
    copies along with what they hold; each object touched out of the cache costs. As read,
    each value is an object of its own: 50,000 sessions of 12 labs hold 50,000 lab names,
    the lists 70,000 project names for 4 projects, and a JSON column read from PostgreSQL
    holds its keys once per dict (psycopg decodes each value alone, where SQLite's one
    decoding of the whole column shares them): a 24,000-session result took 12 ms longer on
    PostgreSQL than on SQLite for that alone. So equal strings and dates become the first of
    them seen, in the text and date columns, the lists and the flat JSON dicts (made anew,
    their keys and values shared). They are immutable: sharing them hands out nothing
    mutable. Each column's values are replaced as it is done, so the old ones are freed
    column by column, not kept until the end.
    """
    strings: dict[str, str] = {}
    dates: dict[dt.date, dt.date] = {}
    one = strings.setdefault

    def same(value: Any) -> Any:
        kind = type(value)
        if kind is str:
            return one(value, value)
        if kind is dt.date:
            return dates.setdefault(value, value)
        return value

    def json_value(value: Any) -> Any:  # a JSON object's keys are strings
        if not _flat(value):
            return value  # nested: copied whole by each result
        return dict(zip(map(one, value, value), map(same, value.values()), strict=True))

    for name, values in data.items():
        kind = spec.column(name).kind
        if kind == "json":
            values[:] = map(json_value, values)
        elif kind == "list":  # of strings: a link table's text column
            values[:] = [list(map(one, items, items)) for items in values]
        elif kind in ("text", "date"):
            values[:] = map(same, values)


_SCALARS = frozenset({str, int, float, bool, type(None)})
"""The types of a flat JSON dict's values, which ``dict.copy`` copies whole."""


def _flat(value: Any) -> bool:
    """Whether a JSON value is a dict of scalars, which ``dict.copy`` copies whole."""
    return type(value) is dict and _SCALARS.issuperset(map(type, value.values()))
