"""``One``: ONE-api's methods, signatures and return types over any :class:`~neurotrove.Trove`.

A ONE script changes only its import line (``from neurotrove.one import ONE``). Every
method reads the trove through its public API and reshapes the answer into ONE's types:
``search`` gives a list of ``uuid.UUID``, ``list_datasets`` a sorted list of ``rel_path``
(or ONE's DataFrame with ``details=True``), ``get_details`` a Series. The trove answers:
a local catalogue, or a served trove's mirror, so every query works offline too.

Examples
--------
>>> import tempfile, neurotrove as nt
>>> from neurotrove.demo import write_example_tree
>>> root = tempfile.mkdtemp()
>>> _ = write_example_tree(root, oddities=False)
>>> nt.connect(root, create=True).register(progress=False).sessions_added
12
>>> from neurotrove.one import ONE
>>> one = ONE(cache_dir=root)
>>> eids = one.search(subject="KS005", datasets="_ibl_trials.table.pqt")
>>> len(eids), one.eid2ref(eids[0], as_dict=False)
(4, '2019-04-03_1_KS005')
>>> one.load_dataset(eids[0], "wheel.position").ndim  # the namespace may be left out
1
"""

from __future__ import annotations

import datetime as dt
import os
import re
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import NotFoundError, ValidationError
from ..loaders import AlfObject
from ..qc import QC
from ..trove.releases import restrict_to_release, restrict_to_tag
from ..trove.trove import Trove
from .converters import ConversionMixin, listable
from .patterns import list_pattern
from .records import (
    SEARCH_TERMS,
    NotSupportedError,
    as_ref,
    as_uuid,
    autocomplete,
    dataset_frame,
    dataset_record,
    session_record,
)
from .regex_loads import RegexLoads

__all__ = ["One"]

_REGEX_TERMS = ("subject", "lab", "projects", "task_protocol", "users", "location")


class One(ConversionMixin, RegexLoads):
    """ONE's API over a trove: search, list and load as ONE-api does.

    Parameters
    ----------
    cache_dir : str or Path, optional
        The data root of a local trove (``nt.connect(cache_dir)``); without one, the
        default trove.
    mode : {"local", "remote"}
        Kept for ONE's signature; a local trove always answers locally.
    wildcards : bool
        ``True`` (ONE's default): search terms are regular expressions and list filters
        shell wildcards. ``False``: search terms are plain text.
    tables_dir : str or Path, optional
        Where :meth:`save_loaded_ids` writes (ONE's tables folder); default ``cache_dir``.
    trove : Trove, optional
        An open trove to answer from instead of ``cache_dir``.
    """

    _search_terms = SEARCH_TERMS

    def __init__(
        self,
        cache_dir: str | os.PathLike[str] | None = None,
        mode: str = "local",
        wildcards: bool = True,
        tables_dir: str | os.PathLike[str] | None = None,
        *,
        trove: Trove | None = None,
    ) -> None:
        if mode not in ("local", "remote"):
            raise ValidationError(f"mode must be 'local' or 'remote', not {mode!r}", mode=mode)
        if trove is None:
            from .. import connect

            trove = connect(cache_dir)
        self.trove = trove
        self._mode = mode
        self.wildcards = wildcards
        self.record_loaded = False
        self._loaded: list[uuid.UUID] = []
        self._loaded_sessions: list[uuid.UUID] = []
        self._tables_dir = Path(tables_dir) if tables_dir is not None else None
        self._loaded_time = dt.datetime.now()
        self._tag: str | None = None

    # -- ONE's attributes --------------------------------------------------------------------

    @property
    def cache_dir(self) -> Path:
        """The folder sessions are in: the data root, or a served trove's file cache."""
        return Path(self.trove.root)

    @property
    def mode(self) -> str:
        """``"local"`` or ``"remote"``, as ONE's."""
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in ("local", "remote"):
            raise ValidationError(f"mode must be 'local' or 'remote', not {value!r}", mode=value)
        self._mode = value

    @property
    def offline(self) -> bool:
        """True when no server is asked: a local trove, or mode ``"local"``."""
        return self.mode == "local" or self.trove.url is None

    def __repr__(self) -> str:
        return f"One ({'off' if self.offline else 'on'}line, {self.cache_dir})"

    def __enter__(self) -> One:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the trove's connections (and a served trove's HTTP clients)."""
        self.trove.close()

    # -- the cache ---------------------------------------------------------------------------

    def load_cache(self, tables_dir: Any = None, clobber: bool = False, tag: Any = None) -> Any:
        """Bring the catalogue up to date (a served trove's mirror); return when it was.

        A local trove's catalogue is always current, so this only notes the time.

        Parameters
        ----------
        tag : str, optional
            A release or a dataset tag (``trove release list``, ``trove.tags()``): from now
            on every search, list and load sees only the datasets carrying it, and the
            sessions holding them, as ONE's tables of that tag hold (a release's datasets
            at the revision and md5 it kept). Later calls keep the tag, as ONE's do; open a
            new ``ONE(...)`` to see the whole trove again.

        Raises
        ------
        NotFoundError
            For a tag the trove does not have (the message lists those it has).
        ValidationError
            For a second, different tag (ONE loads one tag at a time), or a trove that was
            itself opened on a release.
        """
        if self.trove.url is not None and self.trove.mode != "local":
            self.trove.refresh()
        if tag is not None and tag != self._tag:
            self._within(str(tag))
        self._loaded_time = dt.datetime.now()
        return self._loaded_time

    def _within(self, tag: str) -> None:
        """Restrict every read to a release or a tag (see :meth:`load_cache`)."""
        if self._tag is not None or self.trove.in_release is not None:
            held = self._tag or self.trove.in_release
            raise ValidationError(
                f"this ONE already reads {held!r}; ONE loads one tag at a time, so open a new "
                f"ONE(...) to load_cache(tag={tag!r})",
                tag=tag,
            )
        parts = self.trove.parts
        if tag in {str(r["name"]) for r in self.trove.releases()}:
            restricted = restrict_to_release(parts, tag)
        else:
            restricted = restrict_to_tag(parts, tag)
        self.trove = Trove(restricted)  # the same connections, which it closes
        self._tag = tag

    def refresh_cache(self, mode: str = "auto") -> Any:
        """Refresh a served trove's mirror now (:meth:`load_cache`); return the time."""
        return self.load_cache()

    def save_cache(self, save_dir: Any = None, clobber: bool = False) -> None:
        """Do nothing: the catalogue saves every change itself (kept for ONE's API)."""

    def _refresh(self, query_type: str | None) -> None:
        if query_type == "remote" and self.trove.url is not None:
            self.trove.refresh()

    # -- search ------------------------------------------------------------------------------

    def search_terms(
        self, query_type: str | None = None, endpoint: str | None = None
    ) -> tuple[str, ...]:
        """Return the keyword arguments :meth:`search` takes (abbreviations are completed)."""
        if endpoint not in (None, "sessions"):
            if endpoint == "insertions":
                return ("name", "model", "serial", "session", "id", *self._search_terms)
            return ()
        return self._search_terms

    def search(
        self, details: bool = False, query_type: str | None = None, **kwargs: Any
    ) -> list[uuid.UUID] | tuple[list[uuid.UUID], list[dict[str, Any]]]:
        """Find sessions; return their eids (UUIDs), newest first, as ONE does.

        Terms may be abbreviated (``task=`` is ``task_protocol``, ``date=`` is
        ``date_range``, ``lab=`` is ``laboratory``); see :meth:`search_terms`.
        ``subject``, ``laboratory``, ``projects``, ``task_protocol``, ``users`` and
        ``location`` are regular expressions found anywhere (plain text with
        ``wildcards=False``); ``datasets`` must match whole file names, ``dataset`` anywhere
        in a ``rel_path``; a session must hold all of them. ``dataset_types`` keeps sessions
        with datasets of every type named; ``performance_gte``/``performance_lte`` compare
        the percentage of correct trials (the session's ``json`` ``n_correct_trials`` and
        ``n_trials``, as Alyx records them); ``django`` takes Alyx's lookups
        (``"subject__nickname,KS005"``).

        Returns
        -------
        list of UUID
            With ``details=True``, also a list of session dicts (ONE's cache fields).

        Examples
        --------
        >>> eids = one.search(task='training')  # doctest: +SKIP
        >>> eids = one.search(subject='^FD_04$')  # doctest: +SKIP
        """
        self._refresh(query_type)
        filters: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in kwargs.items():
            term = autocomplete(key, self.search_terms())
            if term in ("performance_gte", "performance_lte", "dataset_types", "django"):
                extra[term] = value
                continue
            term = "lab" if term == "laboratory" else term
            if not self.wildcards and term in _REGEX_TERMS:
                texts = [value] if isinstance(value, str) else list(value)
                value = [re.escape(str(text)) for text in texts]
            filters[term] = value
        if extra.get("django"):
            from ..query.alyx import session_conditions
            from ..query.lookups import parse_django

            where = session_conditions(
                parse_django(str(extra["django"])), self.trove.catalog.dialect
            )
            _, rows = self.trove.search_page(where=where, **filters)
            frame = pd.DataFrame(rows)
            if not frame.empty:
                frame = frame.set_index("eid")
        else:
            frame = self.trove.search(**filters)
        if not frame.empty and extra.get("dataset_types"):
            frame = frame[frame.index.isin(self._with_types(extra["dataset_types"]))]
        if not frame.empty and ("performance_gte" in extra or "performance_lte" in extra):
            frame = frame[[_performance_in(row, extra) for row in frame["json"]]]
        eids = [uuid.UUID(str(eid)) for eid in frame.index]
        if not details:
            return eids
        records = [
            session_record({str(k): v for k, v in row.items()}) for row in frame.to_dict("records")
        ]
        return eids, records

    def _with_types(self, types: str | Sequence[str]) -> set[str]:
        """Return the eids of sessions holding datasets of every one of ``types``."""
        wanted = [types] if isinstance(types, str) else list(types)
        frame = self.trove.table("datasets").get(dataset_type=(wanted, "in"))
        column = "session" if "session" in frame.columns else "eid"
        found = frame.groupby(column)["dataset_type"].nunique()
        return {str(eid) for eid in found[found == len(set(wanted))].index}

    # -- sessions ----------------------------------------------------------------------------

    def to_eid(self, id: Any) -> Any:
        """Return the eid (a UUID) of a session given in any form ONE takes, or a list."""
        if isinstance(id, list | tuple):
            return [uuid.UUID(self._eid(v)) for v in id]
        return uuid.UUID(self._eid(id))

    def list_subjects(self) -> list[str]:
        """Return the subjects' nicknames, sorted."""
        return self.trove.list_subjects()

    def get_details(self, eid: Any, full: bool = False, query_type: str | None = None) -> Any:
        """Return a session as ONE's cache has it (a Series named by its eid).

        With ``full=True``: its datasets, joined with the session's fields (a DataFrame
        indexed by ``(eid, id)``). A list of eids gives a list.
        """
        self._refresh(query_type)
        if isinstance(eid, list | tuple):
            return [self.get_details(e, full) for e in eid]
        key = self._eid(eid)
        record = session_record(self.trove.get_details(key))
        if not full:
            return pd.Series(record, name=uuid.UUID(key))
        frame = self.list_datasets(key, details=True, qc=QC.CRITICAL, keep_eid_index=True)
        frame = frame.assign(**{k: [v] * len(frame) for k, v in record.items()})
        return frame.astype({"number": "uint16"})  # as ONE's cache table

    @listable
    def eid2path(self, eid: Any, query_type: str | None = None) -> Path | None:
        """Return a session's folder on this machine (``None`` for an unknown eid)."""
        try:
            return self.trove.eid2path(as_ref(eid))
        except NotFoundError:
            return None

    @listable
    def path2eid(self, path_obj: Any, query_type: str | None = None) -> uuid.UUID | None:
        """Return the eid (a UUID) of the session a path is in (``None`` if not catalogued)."""
        return as_uuid(self.trove.path2eid(path_obj))

    # -- datasets ----------------------------------------------------------------------------

    def _listed(
        self, eid: Any, filename: Any, collection: Any, revision: Any, **options: Any
    ) -> Any:
        """Return the trove's dataset frame, filtered as ONE filters with :attr:`wildcards`.

        Shell wildcards go to the trove; with ``wildcards=False`` the filters are ONE's
        regular expressions (:func:`~neurotrove.one.patterns.list_pattern`), matched here.
        """
        key = None if eid is None else as_ref(eid)
        if self.wildcards:
            names = {"filename": filename, "collection": collection, "revision": revision}
            return self.trove.list_datasets(key, details=True, **names, **options)
        frame = self.trove.list_datasets(key, details=True, **options)
        if filename is None and collection is None and revision is None:
            return frame
        pattern = list_pattern(filename, collection, revision)
        return frame[[pattern.match(path) is not None for path in frame["rel_path"]]]

    def list_datasets(
        self,
        eid: Any = None,
        filename: Any = None,
        collection: Any = None,
        revision: Any = None,
        qc: Any = QC.FAIL,
        ignore_qc_not_set: bool = False,
        details: bool = False,
        query_type: str | None = None,
        default_revisions_only: bool = False,
        keep_eid_index: bool = False,
    ) -> Any:
        """List datasets: a sorted list of ``rel_path``, or ONE's DataFrame with ``details``.

        ``filename``, ``collection`` and ``revision`` are shell wildcards (a filename may be
        a dict of ALF parts, and may leave out its namespace). Without an eid every
        session's datasets are listed (and the frame is indexed by ``(eid, id)``).
        """
        self._refresh(query_type)
        frame = self._listed(
            eid,
            filename,
            collection,
            revision,
            qc=qc,
            ignore_qc_not_set=ignore_qc_not_set,
            default_revisions_only=default_revisions_only,
        )
        if not details:
            return sorted(set(frame["rel_path"]))  # of every session: each path once
        return dataset_frame(frame, keep_eid=eid is None or keep_eid_index)

    def list_collections(
        self,
        eid: Any = None,
        filename: Any = None,
        collection: Any = None,
        revision: Any = None,
        details: bool = False,
        query_type: str | None = None,
    ) -> Any:
        """List collections (``''`` is the session folder), sorted; or a dict of frames."""
        return self._grouped(
            "collection", eid, filename, collection, revision, details, query_type
        )

    def list_revisions(
        self,
        eid: Any = None,
        filename: Any = None,
        collection: Any = None,
        revision: Any = None,
        details: bool = False,
        query_type: str | None = None,
    ) -> Any:
        """List revisions (``''`` for none), sorted; or a dict of frames with ``details``."""
        return self._grouped("revision", eid, filename, collection, revision, details, query_type)

    def _grouped(
        self,
        by: str,
        eid: Any,
        filename: Any,
        collection: Any,
        revision: Any,
        details: bool,
        query_type: str | None,
    ) -> Any:
        self._refresh(query_type)
        frame = self._listed(eid, filename, collection, revision)
        if not details:
            return sorted(set(frame[by]))
        shaped = dataset_frame(frame, keep_eid=eid is None)
        keys = frame[by].to_numpy()
        return {key: shaped[keys == key] for key in sorted(set(keys))}

    # -- loading -----------------------------------------------------------------------------

    def _note(self, records: Sequence[Mapping[str, Any] | None]) -> None:
        if self.record_loaded:
            for record in records:
                if record is not None:
                    self._loaded.append(uuid.UUID(str(record["id"])))
                    if record.get("eid") is not None:  # an aggregate has no session
                        self._loaded_sessions.append(uuid.UUID(str(record["eid"])))

    def _note_paths(self, eid: str, paths: Sequence[Path]) -> None:
        if not self.record_loaded:
            return
        folder = self.trove.eid2path(eid)
        frame = self.trove.list_datasets(eid, details=True, qc=QC.CRITICAL)
        ids = dict(zip(frame["rel_path"], frame.index, strict=True))
        for path in paths:
            key = Path(path).relative_to(folder).as_posix()
            if key in ids:
                self._note([{"id": ids[key], "eid": eid}])

    def load_dataset(
        self,
        eid: Any,
        dataset: str | Mapping[str, Any],
        collection: str | None = None,
        revision: str | None = None,
        query_type: str | None = None,
        download_only: bool = False,
        check_hash: bool = True,
    ) -> Any:
        """Load one dataset of a session (``'trials.intervals'`` finds ``_ibl_`` files).

        Files are always checked: size every time, md5 when the file changed
        (``check_hash`` is kept for ONE's signature).
        """
        self._refresh(query_type)
        key = self._eid(eid)
        if not self.wildcards:
            return self._regex_load_dataset(key, dataset, collection, revision, download_only)
        options = {"collection": collection, "revision": revision}
        data = self.trove.load_dataset(key, dataset, download_only=download_only, **options)
        if self.record_loaded:
            _, records = self.trove.load_datasets(
                key, [dataset], collections=collection, revisions=revision, download_only=True
            )
            self._note(records)
        return data

    def load_datasets(
        self,
        eid: Any,
        datasets: Sequence[str | Mapping[str, Any]],
        collections: Any = None,
        revisions: Any = None,
        query_type: str | None = None,
        assert_present: bool = True,
        download_only: bool = False,
        check_hash: bool = True,
    ) -> tuple[list[Any], list[dict[str, Any] | None]]:
        """Load several datasets of a session; return the data and ONE's dataset records."""
        self._refresh(query_type)
        if not self.wildcards:
            found = self._regex_load_datasets(
                self._eid(eid), datasets, collections, revisions, assert_present, download_only
            )
            return found[0], [None if r is None else dataset_record(r) for r in found[1]]
        data, records = self.trove.load_datasets(
            self._eid(eid),
            datasets,
            collections=collections,
            revisions=revisions,
            assert_present=assert_present,
            download_only=download_only,
        )
        self._note(records)
        return data, [None if r is None else dataset_record(r) for r in records]

    def load_object(
        self,
        eid: Any,
        obj: str,
        collection: str | None = None,
        revision: str | None = None,
        query_type: str | None = None,
        download_only: bool = False,
        check_hash: bool = True,
        **kwargs: Any,
    ) -> AlfObject | list[Path]:
        """Load every attribute of an ALF object (a dict of attribute to data).

        ``attribute``, ``namespace``, ``timescale``, ``extra`` and ``extension`` filter
        the files, as in ONE.
        """
        self._refresh(query_type)
        key = self._eid(eid)
        if not self.wildcards:
            return self._regex_load_object(key, obj, collection, revision, download_only, kwargs)
        options = {"collection": collection, "revision": revision, **kwargs}
        loaded = self.trove.load_object(key, obj, download_only=download_only, **options)
        if self.record_loaded:
            paths = self.trove.load_object(key, obj, download_only=True, **options)
            self._note_paths(key, list(paths))  # type: ignore[arg-type]
        return loaded

    def load_collection(
        self,
        eid: Any,
        collection: str,
        object: str | Sequence[str] | None = None,
        revision: str | None = None,
        query_type: str | None = None,
        download_only: bool = False,
        check_hash: bool = True,
        **kwargs: Any,
    ) -> dict[str, AlfObject] | list[Path]:
        """Load every object of a collection: a dict of object name to its data."""
        self._refresh(query_type)
        if kwargs:
            raise NotSupportedError(
                f"load_collection filters on {', '.join(sorted(kwargs))} are not supported "
                f"by neurotrove.one yet; filter with object=",
                options=sorted(kwargs),
            )
        key = self._eid(eid)
        if not self.wildcards:
            return self._regex_load_collection(key, collection, object, revision, download_only)
        loaded = self.trove.load_collection(
            key, collection, object=object, revision=revision, download_only=download_only
        )
        if self.record_loaded:
            paths = self.trove.load_collection(
                key, collection, object=object, revision=revision, download_only=True
            )
            self._note_paths(key, list(paths))  # type: ignore[arg-type]
        return loaded

    def load_dataset_from_id(
        self,
        dset_id: Any,
        download_only: bool = False,
        details: bool = False,
        check_hash: bool = True,
    ) -> Any:
        """Load a dataset by its id; with ``details``, also its record (a Series)."""
        data, record = self.trove.load_dataset_from_id(
            str(dset_id), download_only=download_only, details=True
        )
        self._note([record])
        if not details:
            return data
        shaped = dataset_record(record)
        return data, pd.Series(
            {k: v for k, v in shaped.items() if k not in ("eid", "id")}, name=shaped["id"]
        )

    def save_loaded_ids(
        self, sessions_only: bool = False, clear_list: bool = True
    ) -> tuple[list[uuid.UUID], Path | None]:
        """Write the ids of the datasets (or sessions) loaded while ``record_loaded`` was on.

        Returns the ids and the CSV file (in the tables folder, named as ONE names it),
        or ``([], None)`` when nothing was recorded.
        """
        if not self._loaded:
            return [], None
        if sessions_only:
            name, ids = "session_uuid", list(dict.fromkeys(self._loaded_sessions))
        else:
            name, ids = "dataset_uuid", list(self._loaded)
        stamp = dt.datetime.now().strftime("%Y-%m-%dT%H-%M-%S%z")
        filename = (self._tables_dir or self.cache_dir) / f"{stamp}_loaded_{name}s.csv"
        pd.DataFrame({name: [str(i) for i in ids]}).to_csv(filename, index=False)
        if clear_list:
            self._loaded.clear()
            self._loaded_sessions.clear()
        return ids, filename


def _performance_in(row_json: Any, bounds: Mapping[str, Any]) -> bool:
    """Whether a session's percentage of correct trials is within the bounds asked for."""
    record = row_json if isinstance(row_json, Mapping) else {}
    trials, correct = record.get("n_trials"), record.get("n_correct_trials")
    if not trials or correct is None:
        return False
    performance = 100.0 * float(correct) / float(trials)
    low, high = bounds.get("performance_gte"), bounds.get("performance_lte")
    return (low is None or performance >= float(low)) and (
        high is None or performance <= float(high)
    )
