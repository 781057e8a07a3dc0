"""ONE's load methods with ``one.wildcards = False``: names as regular expressions.

With ``wildcards=False`` ONE-api reads the dataset name, the object, ALF parts and the
collection of ``load_dataset``, ``load_datasets``, ``load_object`` and ``load_collection``
as regular expressions (``load_object(eid, 'spikes', collection='.*probe00')``); revisions
are still named, and resolved to that one or the last before it. The facade lists the
session's datasets, keeps those the pattern ONE builds matches
(:func:`~neurotrove.one.patterns.list_pattern`), picks revisions as ONE does, and loads the
chosen datasets by id, so what is loaded went through the trove's file checks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import alf
from ..errors import MultipleFoundError, NotFoundError
from ..loaders import AlfObject, assemble_object
from ..query.datasets import last_before
from ..trove.trove import Trove

__all__ = ["RegexLoads"]

Row = Mapping[str, Any]


class RegexLoads:
    """The load methods' regular-expression mode (mixed into ``One``)."""

    trove: Trove

    if TYPE_CHECKING:  # given by ``One``, which this is mixed into

        def _listed(
            self, eid: Any, filename: Any, collection: Any, revision: Any, **options: Any
        ) -> Any: ...

        def _note(self, records: Sequence[Mapping[str, Any] | None]) -> None: ...

    def _matching(self, eid: Any, filename: Any, collection: Any) -> list[dict[str, Any]]:
        """Return the session's dataset rows matching ``filename`` and ``collection``."""
        frame = self._listed(eid, filename, collection, None).reset_index()
        rows: list[dict[str, Any]] = frame.to_dict("records")
        return rows

    def _regex_dataset(
        self, eid: Any, dataset: Any, collection: Any, revision: str | None
    ) -> dict[str, Any]:
        """Pick the one dataset ``load_dataset`` loads in regular-expression mode."""
        matched = self._matching(eid, dataset, collection)
        if not matched:
            raise NotFoundError(
                f"no dataset of session {eid} matches {dataset!r}"
                + (f" in a collection matching {collection!r}" if collection is not None else "")
                + " (one.wildcards is False: names are regular expressions)",
                dataset=str(dataset),
            )
        _one_of(matched, "collection", f"{dataset!r} is in several collections; pass collection=")
        chosen = last_before(matched, revision)
        if not chosen:
            raise NotFoundError(
                f"{dataset!r} has no revision at or before {revision!r}", dataset=str(dataset)
            )
        if len(chosen) > 1:
            paths = ", ".join(sorted(r["rel_path"] for r in chosen)[:6])
            raise MultipleFoundError(f"{len(chosen)} datasets match {dataset!r}: {paths}")
        return dict(chosen[0])

    def _load_rows(self, rows: Sequence[Row], download_only: bool) -> list[Any]:
        """Load (or download) each row by its id; note what was loaded."""
        loaded = [
            self.trove.load_dataset_from_id(str(r["id"]), download_only=download_only)
            for r in rows
        ]
        self._note([{"id": r["id"], "eid": r["eid"]} for r in rows])
        return loaded

    def _regex_load_dataset(
        self, eid: Any, dataset: Any, collection: Any, revision: str | None, download_only: bool
    ) -> Any:
        (data,) = self._load_rows(
            [self._regex_dataset(eid, dataset, collection, revision)], download_only
        )
        return data

    def _regex_load_datasets(
        self,
        eid: Any,
        datasets: Sequence[Any],
        collections: Any,
        revisions: Any,
        assert_present: bool,
        download_only: bool,
    ) -> tuple[list[Any], list[dict[str, Any] | None]]:
        data: list[Any] = []
        records: list[dict[str, Any] | None] = []
        for index, dataset in enumerate(datasets):
            collection = _nth(collections, index)
            try:
                row = self._regex_dataset(eid, dataset, collection, _nth(revisions, index))
            except NotFoundError:
                if assert_present:
                    raise
                data.append(None)
                records.append(None)
                continue
            (loaded,) = self._load_rows([row], download_only)
            data.append(loaded)
            records.append(dict(row))
        return data, records

    def _regex_load_object(
        self,
        eid: Any,
        obj: str,
        collection: Any,
        revision: str | None,
        download_only: bool,
        parts: Mapping[str, Any],
    ) -> AlfObject | list[Path]:
        matched = last_before(
            self._matching(eid, {"object": obj, **parts}, collection),
            revision,
            assert_unique=False,
        )
        if not matched:
            raise NotFoundError(
                f"session {eid} has no ALF object matching {obj!r}"
                + (f" in a collection matching {collection!r}" if collection is not None else "")
                + " (one.wildcards is False: names are regular expressions)",
                object=obj,
            )
        _one_of(
            matched, "collection", f"object {obj!r} is in several collections; pass collection="
        )
        _one_of(matched, "object", f"several objects match {obj!r}; be more specific")
        paths = self._load_rows(matched, download_only=True)
        if download_only:
            return paths
        names = [alf.parse_filename(r["name"]) for r in matched]
        return assemble_object(list(zip(names, paths, strict=True)), obj=matched[0]["object"])

    def _regex_load_collection(
        self,
        eid: Any,
        collection: str,
        object: Any,
        revision: str | None,
        download_only: bool,
    ) -> dict[str, AlfObject] | list[Path]:
        parts = {} if object is None else {"object": object}
        matched = last_before(
            self._matching(eid, parts, collection), revision, assert_unique=False
        )
        if not matched:
            raise NotFoundError(
                f"session {eid} has no datasets in a collection matching {collection!r}"
                " (one.wildcards is False: names are regular expressions)",
                collection=collection,
            )
        paths = self._load_rows(matched, download_only=True)
        if download_only:
            return paths
        grouped: dict[str, list[tuple[alf.DatasetName, Path]]] = {}
        for row, path in zip(matched, paths, strict=True):
            grouped.setdefault(row["object"], []).append((alf.parse_filename(row["name"]), path))
        for name in grouped:  # an object of several collections is not merged
            _one_of(
                [r for r in matched if r["object"] == name],
                "collection",
                f"object {name!r} is in several collections matching {collection!r}",
            )
        return {name: assemble_object(files, obj=name) for name, files in sorted(grouped.items())}


def _nth(value: Any, index: int) -> Any:
    """Return a per-dataset option: the same for all (``None``, a string) or the index-th."""
    if value is None or isinstance(value, str):
        return value
    return list(value)[index]


def _one_of(rows: Sequence[Row], field: str, message: str) -> None:
    values = sorted({str(r[field]) for r in rows})
    if len(values) > 1:
        raise MultipleFoundError(f"{message} ({', '.join(map(repr, values))})", **{field: values})
