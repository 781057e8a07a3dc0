r"""Trove methods for aggregates: datasets of a subject or a project rather than a session.

An aggregate is ``aggregates/<relation>/<identifier>/[#revision#/]<name>`` under the data
root (ONE's layout, e.g. ``aggregates/Subjects/cortexlab/KS005/_ibl_subjectTrials.table.pqt``),
registered by ``trove register`` (:mod:`neurotrove.files.aggregates`). Its files come from the
trove's file store like a session's (checked in place, or downloaded from a server).

Examples
--------
>>> import tempfile, pathlib, neurotrove as nt
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> folder = root / "aggregates/Subjects/cortexlab/KS005"
>>> folder.mkdir(parents=True)
>>> _ = (folder / "_ibl_subjectTrials.table.csv").write_text("trial\n1\n2\n")
>>> trove = nt.connect(root, create=True)
>>> _ = trove.register(progress=False)
>>> trove.list_aggregates("subjects", "KS005")
['aggregates/Subjects/cortexlab/KS005/_ibl_subjectTrials.table.csv']
>>> len(trove.load_aggregate("Subjects", "cortexlab/KS005", "subjectTrials.table"))
2
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Literal, overload

from ..catalog import schema as s
from ..catalog.tables import table_spec
from ..errors import MultipleFoundError, NotFoundError
from ..files.aggregates import aggregate_folder
from ..loaders import load_file
from ..query.datasets import filter_rows, select_for_load
from ..query.frames import to_frame
from ..validation import check_str
from .loading import _LOAD_SELECT, LoadingMixin

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["AGGREGATE_COLUMNS", "AggregatesMixin"]

_d = s.datasets.c
AGGREGATE_COLUMNS = [
    "id",
    "rel_path",
    "relation",
    "identifier",
    "revision",
    "name",
    "namespace",
    "object",
    "attribute",
    "timescale",
    "extra",
    "extension",
    "dataset_type",
    "file_size",
    "hash",
    "exists",
    "qc",
    "default_revision",
]
"""The columns of ``list_aggregates(details=True)``; ``rel_path`` is from the data root."""

_SELECT = [*_LOAD_SELECT, _d.relation.label("relation"), _d.identifier.label("identifier")]


class AggregatesMixin(LoadingMixin):
    """List and load aggregates (mixed into :class:`~neurotrove.Trove`)."""

    def _aggregate_rows(
        self, relation: str, identifier: str | None, tag: str | Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """Read the aggregates of ``relation`` (any case) whose identifier matches ``identifier``.

        ``identifier`` matches the whole identifier (``cortexlab/KS005``) or its last parts
        (``KS005``), with shell wildcards; ``None`` matches every one.
        """
        check_str("relation", relation)
        if identifier is not None:
            check_str("identifier", identifier)
        where = [_d.session.is_(None), _d.relation.is_not(None), _d.deleted_at.is_(None)]
        with self.catalog.read() as conn:
            rows = self._dataset_rows(conn, where, _SELECT, tag=tag)
        wanted = relation.casefold()
        return [
            row
            for row in rows
            if str(row["relation"]).casefold() == wanted
            and (identifier is None or _identifies(str(row["identifier"]), identifier))
        ]

    @overload
    def list_aggregates(
        self,
        relation: str,
        identifier: str | None = None,
        *,
        dataset: str | Sequence[str] | Mapping[str, Any] | None = None,
        revision: str | Sequence[str] | None = None,
        tag: str | Sequence[str] | None = None,
        details: Literal[False] = False,
    ) -> list[str]: ...

    @overload
    def list_aggregates(
        self,
        relation: str,
        identifier: str | None = None,
        *,
        dataset: str | Sequence[str] | Mapping[str, Any] | None = None,
        revision: str | Sequence[str] | None = None,
        tag: str | Sequence[str] | None = None,
        details: Literal[True],
    ) -> pd.DataFrame: ...

    def list_aggregates(
        self,
        relation: str,
        identifier: str | None = None,
        *,
        dataset: str | Sequence[str] | Mapping[str, Any] | None = None,
        revision: str | Sequence[str] | None = None,
        tag: str | Sequence[str] | None = None,
        details: bool = False,
    ) -> list[str] | pd.DataFrame:
        """List the aggregates of a relation: datasets of a subject or a project.

        Parameters
        ----------
        relation : str
            What the data were aggregated over, as in ``aggregates/<relation>/``
            (``"Subjects"``, ``"Tags"``, ...; any case).
        identifier : str, optional
            Which one: the path after the relation (``"cortexlab/KS005"``) or its last
            parts (``"KS005"``), shell wildcards allowed; ``None`` lists them all.
        dataset : str, list of str, or dict of ALF parts, optional
            Shell wildcards on the file name (as ``list_datasets(filename=)``).
        revision : str or list of str, optional
            Shell wildcards on the revision (``''`` for none).
        tag : str or list of str, optional
            Only aggregates carrying the tag.
        details : bool
            Return a DataFrame indexed by dataset id (columns :data:`AGGREGATE_COLUMNS`)
            instead of the sorted paths.

        Returns
        -------
        list of str or pandas.DataFrame
            Paths relative to the data root, ``aggregates/<relation>/<identifier>/...``.
        """
        rows = filter_rows(
            self._aggregate_rows(relation, identifier, tag),
            filename=dataset,
            revision=revision,
            qc="CRITICAL",
        )
        listed = [{**row, "rel_path": _root_path(row)} for row in rows]
        if not details:
            return sorted(str(r["rel_path"]) for r in listed)
        listed.sort(key=lambda r: str(r["rel_path"]))
        data = {name: [r[name] for r in listed] for name in AGGREGATE_COLUMNS}
        return to_frame(table_spec("datasets"), AGGREGATE_COLUMNS, data)

    def load_aggregate(
        self,
        relation: str,
        identifier: str,
        dataset: str | Mapping[str, Any],
        *,
        revision: str | None = None,
        download_only: bool = False,
    ) -> Any:
        """Load one aggregate: a dataset of a subject or a project.

        Parameters
        ----------
        relation, identifier : str
            As for :meth:`list_aggregates`; ``identifier`` must name one subject or project.
        dataset : str or dict
            A file name, ``object.attribute`` (any extension), a wildcard or ALF parts.
        revision : str, optional
            ``None`` takes the default revision; a named one takes that revision or the last
            before it.
        download_only : bool
            Return the file's path instead of its content.

        Raises
        ------
        NotFoundError
            When nothing matches (the message names what the identifier has).
        MultipleFoundError
            When ``identifier`` matches several, or several files match ``dataset``.
        HashMismatchError
            When the file is not the catalogue's.
        """
        rows = self._aggregate_rows(relation, identifier)
        identifiers = sorted({str(r["identifier"]) for r in rows})
        if not identifiers:
            known = sorted({str(r["identifier"]) for r in self._aggregate_rows(relation, None)})
            raise NotFoundError(
                f"no aggregates of {relation}/{identifier}"
                + (f"; {relation} has {', '.join(known[:8])}" if known else ""),
                relation=relation,
                identifier=identifier,
            )
        if len(identifiers) > 1:
            raise MultipleFoundError(
                f"{identifier!r} names {len(identifiers)} {relation}: "
                f"{', '.join(identifiers[:8])}; give the whole identifier",
                relation=relation,
                identifier=identifier,
            )
        folder_name = aggregate_folder(str(rows[0]["relation"]), identifiers[0])
        row = select_for_load(rows, dataset, revision=revision, session=folder_name)
        (path,) = self.files.files(self.root / folder_name, [row], folder_name)
        return path if download_only else load_file(path)


def _identifies(full: str, pattern: str) -> bool:
    """Whether ``pattern`` names the identifier ``full``: all of it, or its last parts."""
    return fnmatchcase(full, pattern) or fnmatchcase(full, f"*/{pattern}")


def _root_path(row: Mapping[str, Any]) -> str:
    folder = aggregate_folder(str(row["relation"]), str(row["identifier"]))
    return f"{folder}/{row['rel_path']}"
