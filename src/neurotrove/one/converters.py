"""ONE's converters and lookups by name: references, probe insertions, types, URLs.

Mixed into :class:`~neurotrove.one.api.One`; each method reads the trove through its public
API. Experiment references are ONE's ``'YYYY-MM-DD_n_subject'`` strings and their dicts.

Examples
--------
>>> ConversionMixin.ref2dict("2019-04-01_1_KS005")
{'subject': 'KS005', 'date': datetime.date(2019, 4, 1), 'sequence': 1}
>>> ConversionMixin.dict2ref({"subject": "KS005", "date": "2019-04-01", "sequence": "001"})
'2019-04-01_001_KS005'
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .. import alf
from ..errors import ConfigError, MultipleFoundError, NotFoundError, ValidationError
from ..qc import QC
from ..query.datasets import filter_rows, last_before
from ..trove.trove import Trove
from .records import QC_TYPE, as_ref, as_uuid, autocomplete, dataset_frame

__all__ = ["ConversionMixin", "listable"]


def listable(function: Any) -> Any:
    """Let a method of one session also take a list of them, as ONE's converters do."""

    def wrapper(self: Any, value: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(value, list | tuple):
            return [function(self, v, *args, **kwargs) for v in value]
        return function(self, value, *args, **kwargs)

    wrapper.__name__ = function.__name__
    wrapper.__doc__ = function.__doc__
    return wrapper


class ConversionMixin:
    """References, insertions, dataset types and URLs (mixed into ``One``)."""

    trove: Trove

    def _eid(self, value: Any) -> str:
        return str(self.trove.to_eid(as_ref(value)))

    if TYPE_CHECKING:  # given by ``One``, which this is mixed into

        def search_terms(
            self, query_type: str | None = None, endpoint: str | None = None
        ) -> tuple[str, ...]:
            """Return the terms a search takes."""

        def _refresh(self, query_type: str | None) -> None: ...

    @listable
    def eid2ref(self, eid: Any, as_dict: bool = True, parse: bool = True) -> Any:
        """Return a session's reference: ``{subject, date, sequence}`` or ``'date_n_subject'``.

        ``parse=False`` gives the date as text and the sequence zero-padded to 3 digits.
        """
        details = self.trove.get_details(self._eid(eid))
        date, number = details["date"], int(details["number"])
        subject = details["subject"]
        if parse:
            ref: dict[str, Any] = {"subject": subject, "date": date, "sequence": number}
            text = f"{date:%Y-%m-%d}_{number:d}_{subject}"
        else:
            ref = {"subject": subject, "date": str(date), "sequence": f"{number:03d}"}
            text = f"{date}_{number:03d}_{subject}"
        return ref if as_dict else text

    @listable
    def ref2eid(self, ref: Any) -> uuid.UUID | None:
        """Return the eid (a UUID) of a reference (``'2019-04-01_1_KS005'`` or its dict)."""
        try:
            return uuid.UUID(self._eid(ref))
        except NotFoundError:
            return None

    @listable
    def ref2path(self, ref: Any) -> Path | None:
        """Return the folder of the session a reference names (``None`` if unknown)."""
        eid = self.ref2eid(ref)
        return None if eid is None else self.trove.eid2path(eid)

    @staticmethod
    def path2ref(path_str: Any, as_dict: bool = True, parse: bool = True) -> Any:
        """Return the reference of a session path (a dict, or ``'date_n_subject'``)."""
        if isinstance(path_str, list | tuple):
            return [ConversionMixin.path2ref(p, as_dict, parse) for p in path_str]
        session, _ = alf.find_session(Path(path_str).as_posix())
        ref = _ref_dict(session.subject, session.date, session.number, parse)
        return ref if as_dict else ConversionMixin.dict2ref(ref)

    @staticmethod
    def is_exp_ref(ref: Any) -> Any:
        """Return whether ``ref`` is an experiment reference (a str or a dict)."""
        if isinstance(ref, list | tuple):
            return [ConversionMixin.is_exp_ref(r) for r in ref]
        if isinstance(ref, Mapping):
            return {"subject", "date", "sequence"} <= set(ref)
        return isinstance(ref, str) and isinstance(as_ref(ref), dict)

    @staticmethod
    def ref2dict(ref: Any, parse: bool = True) -> Any:
        """Return a reference string as ``{subject, date, sequence}``."""
        if isinstance(ref, list | tuple):
            return [ConversionMixin.ref2dict(r, parse) for r in ref]
        found = as_ref(ref)
        if not isinstance(found, dict):
            raise ValidationError(f"{ref!r} is not a reference like '2019-04-01_1_KS005'")
        return _ref_dict(
            found["subject"], dt.date.fromisoformat(found["date"]), found["number"], parse
        )

    @staticmethod
    def dict2ref(ref_dict: Any) -> Any:
        """Return a reference dict as the string ``'YYYY-MM-DD_n_subject'``."""
        if isinstance(ref_dict, list | tuple):
            return [ConversionMixin.dict2ref(r) for r in ref_dict]
        date, sequence = ref_dict["date"], ref_dict["sequence"]
        if isinstance(sequence, str):
            return f"{date}_{sequence}_{ref_dict['subject']}"
        return f"{date}_{int(sequence):d}_{ref_dict['subject']}"

    # -- aggregates --------------------------------------------------------------------------

    def list_aggregates(
        self,
        relation: str,
        identifier: str | None = None,
        dataset: Any = None,
        revision: str | None = None,
        assert_unique: bool = False,
    ) -> pd.DataFrame:
        """List datasets aggregated over a relation (``'subjects'``, ``'tags'``, ...).

        As ONE: a frame indexed by dataset id with ``rel_path`` (from the cache root,
        ``aggregates/<Relation>/<identifier>/...``), ``relation`` (lower case) and
        ``identifier``; ``identifier`` is a regular expression searched in the identifier
        (``'KS005'`` finds ``cortexlab/KS005``); ``dataset`` takes shell wildcards. Each
        aggregate is listed in its default revision, or with ``revision`` in that revision
        or the last before it.

        Raises
        ------
        MultipleFoundError
            With ``assert_unique`` when several datasets match.
        """
        frame = self.trove.list_aggregates(relation, details=True)
        frame = frame[frame["exists"].to_numpy(dtype=bool)]  # ONE lists files it can fetch
        if identifier is not None:
            found = frame["identifier"].astype(str).str.contains(identifier)
            frame = frame[found.to_numpy(dtype=bool)]
        # Grouped by identifier and name, the revision chosen as for a session's datasets.
        records = [
            {
                **{str(k): v for k, v in r.items()},
                "qc": int(QC.parse(r["qc"])),
                "collection": f"{r['relation']}/{r['identifier']}",
            }
            for r in frame.reset_index().to_dict("records")
        ]
        rows = filter_rows(records, filename=_aggregate_name(dataset))
        rows = last_before(rows, revision, assert_unique=False)
        if assert_unique and len({(r["identifier"], r["name"]) for r in rows}) > 1:
            names = sorted({str(r["rel_path"]) for r in rows})
            raise MultipleFoundError(
                f"{len(names)} aggregates of {relation} match: {', '.join(names[:6])}; "
                f"name one with identifier= and dataset=",
                relation=relation,
                identifier=identifier,
            )
        return _aggregate_frame(rows)

    def load_aggregate(
        self,
        relation: str,
        identifier: str,
        dataset: Any = None,
        revision: str | None = None,
        download_only: bool = False,
    ) -> Any:
        """Load one dataset aggregated over a relation (a subject's, a tag's), as ONE does.

        ``dataset`` is a file name, ``object.attribute`` (any extension) or a wildcard;
        ``revision`` takes that revision or the last before it. Returns the content, or
        the file's path with ``download_only``.

        Raises
        ------
        NotFoundError
            When no aggregate matches.
        MultipleFoundError
            When several do.
        """
        if isinstance(dataset, str) and dataset.count(".") == 1:
            dataset += ".*"  # 'subjectTrials.table' means any extension, as in ONE
        frame = self.list_aggregates(relation, identifier, dataset, revision, assert_unique=True)
        if frame.empty:
            raise NotFoundError(
                f"{dataset or 'dataset'} not found for {relation}/{identifier}",
                relation=relation,
                identifier=identifier,
            )
        row = frame.iloc[0]
        return self.trove.load_aggregate(
            relation,
            str(row["identifier"]),
            str(row["rel_path"]).rpartition("/")[2],
            revision=revision,
            download_only=download_only,
        )

    # -- probe insertions --------------------------------------------------------------------

    def search_insertions(
        self, details: bool = False, query_type: str | None = None, **kwargs: Any
    ) -> Any:
        """Find probe insertions; return their pids (UUIDs), and records with ``details``."""
        self._refresh(query_type)
        terms = self.search_terms(endpoint="insertions")
        filters = {autocomplete(k, terms): v for k, v in kwargs.items()}
        if "laboratory" in filters:
            filters["lab"] = filters.pop("laboratory")
        found = self.trove.search_insertions(details=details, **filters)
        pids, records = found if details else (found, None)
        uuids = [uuid.UUID(str(p)) for p in pids]
        return (uuids, records) if details else uuids

    def pid2eid(self, pid: Any, query_type: str | None = None) -> tuple[uuid.UUID | None, Any]:
        """Return the ``(eid, probe name)`` of a probe insertion (``(None, None)`` unknown)."""
        eid, name = self.trove.pid2eid(str(pid))
        return as_uuid(eid), name

    def eid2pid(
        self, eid: Any, query_type: str | None = None, details: bool = False, **kwargs: Any
    ) -> Any:
        """Return a session's probe ids (UUIDs) and names (and records with ``details``)."""
        found = self.trove.eid2pid(self._eid(eid), details, **kwargs)
        pids = [uuid.UUID(str(p)) for p in found[0]]
        return (pids, *found[1:])

    def pid2path(self, pid: Any, query_type: str | None = None) -> Path | None:
        """Return the folder of a probe's ALF data (``<session>/alf/<probe>``)."""
        if isinstance(pid, list | tuple):
            return [self.pid2path(p) for p in pid]  # type: ignore[return-value]
        eid, name = self.trove.pid2eid(str(pid))
        if eid is None:
            return None
        return self.trove.eid2path(eid) / "alf" / str(name)

    # -- dataset types, revisions, URLs ------------------------------------------------------

    def describe_dataset(self, dataset_type: str | None = None) -> Any:
        """Print a dataset type's description and return its record (all types without one).

        ``dataset_type`` may also be a dataset's name (``_ibl_trials.table.pqt``).
        """
        table = self.trove.table("dataset_types")
        if not dataset_type:
            return table.get().reset_index().to_dict("records")
        found = table.get(name=dataset_type)
        if found.empty:
            found = table.get(name=self.dataset2type(dataset_type))
        record = found.reset_index().to_dict("records")[0]
        print(record.get("description") or "")
        return record

    def dataset2type(self, dset: Any) -> str:
        """Return the dataset type of a dataset given by id or by name."""
        text = str(dset)
        try:
            record = self.trove.get_dataset(str(uuid.UUID(text)))
        except ValueError:
            frame = self.trove.table("datasets").get(name=text)
            if frame.empty:
                raise NotFoundError(f"no dataset is named {text!r}", dataset=text) from None
            types = sorted({str(t) for t in frame["dataset_type"] if t is not None})
            if not types:
                raise NotFoundError(
                    f"dataset {text!r} has no dataset type", dataset=text
                ) from None
            return types[0]
        if record.get("dataset_type") is None:
            raise NotFoundError(f"dataset {text} has no dataset type", dataset=text)
        return str(record["dataset_type"])

    def type2datasets(self, eid: Any, dataset_type: str | Sequence[str], details: bool = False):  # type: ignore[no-untyped-def]
        """Return a session's datasets of a type (or types): sorted ``rel_path``, or a frame."""
        types = [dataset_type] if isinstance(dataset_type, str) else list(dataset_type)
        frame = self.trove.list_datasets(self._eid(eid), details=True, qc=QC.CRITICAL)
        frame = frame[frame["dataset_type"].isin(types)]
        return dataset_frame(frame, keep_eid=True) if details else sorted(frame["rel_path"])

    def describe_revision(self, revision: str, full: bool = False) -> dict[str, Any] | None:
        """Print a revision's description; return its record with ``full=True``."""
        found = self.trove.table("revisions").get(name=revision)
        if found.empty:
            print(f'revision "{revision}" not found')
            return None
        record = {str(k): v for k, v in found.reset_index().to_dict("records")[0].items()}
        print(record.get("description") or "")
        return record if full else None

    def record2url(self, record: Any) -> Any:
        """Return the URL a served trove serves a dataset's file at (a list for a frame)."""
        if isinstance(record, pd.DataFrame):
            return [self.record2url(row) for _, row in record.reset_index().iterrows()]
        url = self._server_url("record2url")
        dataset_id = str(record.get("id", getattr(record, "name", None)))
        found, folder = self.trove.locate_dataset(dataset_id)
        session = folder.relative_to(self.trove.root).as_posix()
        rel = PurePosixPath(found["rel_path"])
        name = alf.add_uuid(rel.name, dataset_id)
        parent = "" if str(rel.parent) == "." else f"{rel.parent}/"
        return f"{url}/data/{session}/{parent}{name}"

    def path2url(self, filepath: Any, query_type: str | None = None) -> Any:
        """Return the URL a served trove serves a local file's dataset at."""
        if isinstance(filepath, list | tuple):
            return [self.path2url(p) for p in filepath]
        self._server_url("path2url")
        path = Path(filepath)
        eid = self.trove.path2eid(path)
        if eid is None:
            raise NotFoundError(f"{path} is in no catalogued session", path=str(path))
        rel_path = path.relative_to(self.trove.eid2path(eid)).as_posix()
        frame = self.trove.list_datasets(eid, details=True, qc=QC.CRITICAL)
        ids = frame.index[frame["rel_path"] == rel_path]
        if len(ids) == 0:
            raise NotFoundError(f"{path} is not a catalogued dataset", path=str(path))
        return self.record2url({"id": ids[0]})

    def _server_url(self, what: str) -> str:
        if self.trove.url is None:
            raise ConfigError(
                f"{what} gives the URL a server serves a file at, and {self.trove.root} is a "
                f"local trove; open a served one with ONE(base_url=...)",
                root=str(self.trove.root),
            )
        return self.trove.url.rstrip("/")


def _aggregate_name(dataset: Any) -> Any:
    """ONE's ``dataset`` filter on a name: a name, a list of names, or ALF parts."""
    return None if dataset is None or dataset == "" else dataset


def _aggregate_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Shape aggregate rows as ONE's ``list_aggregates`` frame: its columns, order and dtypes."""

    def text(column: str) -> Any:
        return pd.array([str(r[column]) for r in rows], dtype="str")

    index = pd.Index([uuid.UUID(str(r["id"])) for r in rows], name="id", dtype=object)

    def objects(column: str) -> pd.Series:  # a Series keeps dtype object (an array is str)
        return pd.Series([r[column] for r in rows], index=index, dtype=object)

    frame = pd.DataFrame(
        {
            "file_size": pd.array([r["file_size"] for r in rows], dtype="UInt64"),
            "hash": objects("hash"),
            "exists": np.array([bool(r["exists"]) for r in rows], dtype=bool),
            "rel_path": objects("rel_path"),
            "default_revision": np.array([bool(r["default_revision"]) for r in rows], dtype=bool),
            "qc": pd.Categorical([QC(int(r["qc"])).name for r in rows], dtype=QC_TYPE),
            "relation": pd.array([str(r["relation"]).casefold() for r in rows], dtype="str"),
            "identifier": text("identifier"),
            "revision": text("revision"),
        },
        index=index,
    )
    if rows:
        return frame
    # With nothing found, ONE's frame has no revision column (added while choosing
    # revisions, which it skips) and an identifier column of dtype object.
    frame = frame.drop(columns="revision")
    frame["identifier"] = frame["identifier"].astype(object)
    return frame


def _ref_dict(subject: str, date: dt.date, number: int, parse: bool) -> dict[str, Any]:
    if parse:
        return {"subject": subject, "date": date, "sequence": int(number)}
    return {"subject": subject, "date": str(date), "sequence": f"{int(number):03d}"}
