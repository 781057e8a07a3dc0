"""Choose datasets the way ONE does: wildcards, ALF parts, QC, and revisions.

These are pure functions over dataset rows (dicts with at least ``rel_path``, ``collection``,
``revision``, ``name``, the ALF part columns, ``qc``, ``exists`` and ``default_revision``).
A session holds at most a few thousand datasets, so its rows are filtered here in Python,
where the matching is exact and identical on every database.

Semantics, as in ONE-api 3.x:

- ``filename``, ``collection`` and ``revision`` are shell wildcards (``*``, ``?``, ``[..]``),
  matched case-sensitively against the whole value; a list means any of them; ``''`` means
  "none"; a ``filename`` may be a dict of ALF parts, each a wildcard (``''`` again meaning
  the name has no such part, ``'?*'`` that it has one).
- A file name given without its namespace (``trials.intervals.npy``) finds the namespaced
  file (``_ibl_trials.intervals.npy``) when no file has that very name, as ONE documents;
  several namespaces are a :class:`~neurotrove.errors.MultipleFoundError`.
- For loading, a revision is resolved per dataset: ``None`` takes the default revision (or,
  without one, the last); a named revision takes that one or the last one before it in
  lexicographic order.

Examples
--------
>>> rows = [
...     {"rel_path": "alf/spikes.times.npy", "collection": "alf", "revision": "",
...      "name": "spikes.times.npy", "object": "spikes", "qc": 0, "default_revision": False},
...     {"rel_path": "alf/#2024-01-01#/spikes.times.npy", "collection": "alf",
...      "revision": "2024-01-01", "name": "spikes.times.npy", "object": "spikes", "qc": 0,
...      "default_revision": True},
... ]
>>> [r["revision"] for r in last_before(rows, None)]
['2024-01-01']
>>> [r["revision"] for r in last_before(rows, "2023-06-01")]
['']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any

from ..errors import ArgumentHint, CallHint, MultipleFoundError, NotFoundError, ValidationError
from ..qc import QC
from ..validation import check_names, check_str, wrong_type

__all__ = [
    "ALF_PARTS",
    "filter_rows",
    "last_before",
    "matches",
    "select_for_load",
]

ALF_PARTS = ("namespace", "object", "attribute", "timescale", "extra", "extension")
Row = Mapping[str, Any]


def _patterns(value: str | Sequence[str], what: str) -> list[str]:
    return check_names(what, value)


def matches(value: str | None, patterns: str | Sequence[str], what: str = "value") -> bool:
    """Return whether ``value`` matches any of the shell-wildcard ``patterns``.

    Examples
    --------
    >>> matches("alf/probe00", "*probe*"), matches("", ""), matches(None, "*")
    (True, True, False)
    """
    if value is None:
        return False
    return any(fnmatchcase(value, p) for p in _patterns(patterns, what))


def _parts_test(filename: Mapping[str, Any]) -> Any:
    unknown = set(filename) - set(ALF_PARTS)
    if unknown:
        raise ValidationError(
            f"filename parts {', '.join(sorted(unknown))} are not ALF parts; use "
            f"{', '.join(ALF_PARTS)}",
            field="filename",
        )
    parts = {k: v for k, v in filename.items() if v is not None}
    # A part a name does not have reads as '', so {"namespace": ""} means "no namespace".
    return lambda row: all(matches(row.get(k) or "", v, k) for k, v in parts.items())


def filter_rows(
    rows: Iterable[Row],
    *,
    filename: str | Sequence[str] | Mapping[str, Any] | None = None,
    collection: str | Sequence[str] | None = None,
    revision: str | Sequence[str] | None = None,
    qc: Any = QC.FAIL,
    ignore_qc_not_set: bool = False,
    default_revisions_only: bool = False,
) -> list[Row]:
    """Keep the rows matching every filter; ``None`` filters match everything.

    Parameters
    ----------
    rows : iterable of mapping
        Dataset rows.
    filename : str, list of str, or dict of ALF parts, optional
        Wildcards on the file name (or on ``rel_path`` when a pattern has a ``/``).
    collection, revision : str or list of str, optional
        Wildcards on the collection and revision (``''`` for none).
    qc : QC, int or str
        Keep datasets at or below this QC (ONE's default keeps all but CRITICAL).
    ignore_qc_not_set : bool
        Drop datasets whose QC is NOT_SET.
    default_revisions_only : bool
        Keep only default revisions.

    Returns
    -------
    list
    """
    threshold = int(QC.parse(qc))
    kept = []
    for row in rows:
        row_qc = int(row["qc"])
        if row_qc > threshold or (ignore_qc_not_set and row_qc == QC.NOT_SET):
            continue
        if default_revisions_only and not row["default_revision"]:
            continue
        if collection is not None and not matches(row["collection"], collection, "collection"):
            continue
        if revision is not None and not matches(row["revision"], revision, "revision"):
            continue
        kept.append(row)
    if filename is None:
        return kept
    if isinstance(filename, Mapping):
        name_test = _parts_test(filename)
        return [row for row in kept if name_test(row)]
    chosen: set[int] = set()
    for pattern in _patterns(filename, "filename"):
        chosen.update(id(row) for row in _named(kept, pattern))
    return [row for row in kept if id(row) in chosen]


def _named(rows: Sequence[Row], pattern: str) -> list[Row]:
    """Return the rows a file-name pattern means: by name, else by name without namespace.

    As ONE documents (``one.load_dataset(eid, 'trials.intervals')``), a name given without
    its namespace finds the namespaced file (``_ibl_trials.intervals.npy``) when no file
    has that very name and the files it finds share one namespace.

    Raises
    ------
    MultipleFoundError
        When the name, without a namespace, matches files of several namespaces.
    """
    if "/" in pattern:  # a path relative to the session
        return [row for row in rows if fnmatchcase(row["rel_path"], pattern)]
    direct = [row for row in rows if fnmatchcase(row["name"], pattern)]
    if direct or pattern.startswith("_"):
        return direct
    found = [
        row
        for row in rows
        if row.get("namespace")
        and fnmatchcase(str(row["name"]).removeprefix(f"_{row['namespace']}_"), pattern)
    ]
    namespaces = sorted({str(row["namespace"]) for row in found})
    if len(namespaces) > 1:
        names = sorted({str(row["name"]) for row in found})
        raise MultipleFoundError(
            f"{pattern!r} names files of {len(namespaces)} namespaces "
            f"({', '.join(namespaces)}): {', '.join(names[:6])}; give the full file name, "
            f"e.g. {names[0]!r}",
            filename=pattern,
            namespaces=namespaces,
        )
    return found


def _group(row: Row) -> tuple[str, str]:
    return row["collection"], row["name"]


def last_before(
    rows: Iterable[Row], revision: str | None, *, assert_unique: bool = True
) -> list[Row]:
    """Resolve revisions: at most one row per dataset (collection and name).

    ``None`` takes the dataset's default revision, or the last revision when none is the
    default; a named revision takes that revision or the last one before it. Datasets with no
    revision at or before the named one are dropped.

    Raises
    ------
    MultipleFoundError
        With ``revision=None`` when a dataset has several default revisions.
    """
    if revision is not None:
        check_str("revision", revision)
    ordered = list(rows)
    groups: dict[tuple[str, str], list[Row]] = {}
    for row in ordered:
        groups.setdefault(_group(row), []).append(row)
    chosen: set[int] = set()
    for members in groups.values():
        if revision is None:
            defaults = [r for r in members if r["default_revision"]]
            if assert_unique and len(defaults) > 1:
                listed = ", ".join(repr(r["revision"]) for r in defaults)
                raise MultipleFoundError(
                    f"{members[0]['name']} in {members[0]['collection'] or 'the session root'} "
                    f"has several default revisions ({listed}); set one with "
                    f"register_files(..., default_revision=True) or pass revision=",
                    hints=[ArgumentHint("revision")],
                    dataset=members[0]["name"],
                )
            pick = defaults[0] if len(defaults) == 1 else max(members, key=_revision)
        else:
            earlier = [r for r in members if r["revision"] <= revision]
            if not earlier:
                continue
            pick = max(earlier, key=_revision)
        chosen.add(id(pick))
    return [row for row in ordered if id(row) in chosen]


def _revision(row: Row) -> str:
    return str(row["revision"])


def select_for_load(
    rows: Sequence[Row],
    dataset: str | Mapping[str, Any],
    *,
    collection: str | Sequence[str] | None = None,
    revision: str | None = None,
    session: str = "",
) -> Row:
    """Pick the one dataset ``load_dataset`` should load, as ONE does.

    ``dataset`` is a file name (``'_ibl_trials.table.pqt'``), ``object.attribute`` (any
    extension), a wildcard, a dict of ALF parts, or a path relative to the session
    (``'alf/#v2#/trials.table.pqt'``, with ``collection`` and ``revision`` left ``None``).

    Raises
    ------
    NotFoundError
        When nothing matches (the message lists what the session has that looks close).
    MultipleFoundError
        When the dataset is in several collections, or several files match.
    ValidationError
        When a relative path is given together with ``collection`` or ``revision``.
    """
    if not isinstance(dataset, str | Mapping):
        raise wrong_type("dataset", dataset, "a file name (str) or a dict of ALF parts")
    if isinstance(dataset, str) and dataset.count(".") == 1 and "/" not in dataset:
        dataset += ".*"  # 'trials.intervals' means any extension
    relative = isinstance(dataset, str) and "/" in dataset
    if relative and (collection is not None or revision is not None):
        raise ValidationError(
            f"{dataset!r} is a path relative to the session, so collection and revision must "
            f"not be given as well",
            dataset=dataset,
        )
    matched = filter_rows(rows, filename=dataset, collection=collection)
    where = f" in session {session}" if session else ""
    if not matched:
        nearby, hints = _nearby(rows, dataset)
        raise NotFoundError(
            f"dataset {dataset!r}{_in(collection)} not found{where}{nearby}",
            hints=hints,
            session=session,
            dataset=dataset,
        )
    if not relative:
        collections = sorted({r["collection"] for r in matched})
        if len(collections) > 1:
            raise MultipleFoundError(
                f"dataset {dataset!r} is in several collections{where}: "
                f"{', '.join(repr(c) for c in collections)}; pass collection=",
                hints=[ArgumentHint("collection")],
                session=session,
                dataset=dataset,
                collections=collections,
            )
    chosen = last_before(matched, revision)
    if not chosen:
        revisions = sorted({r["revision"] for r in matched})
        raise NotFoundError(
            f"dataset {dataset!r}{where} has no revision at or before {revision!r} "
            f"(it has {', '.join(repr(r) for r in revisions)})",
            session=session,
            dataset=dataset,
            revision=revision,
        )
    if len(chosen) > 1:
        paths = ", ".join(r["rel_path"] for r in chosen[:6])
        raise MultipleFoundError(
            f"{len(chosen)} datasets match {dataset!r}{where}: {paths}; give the full file name",
            session=session,
            dataset=dataset,
        )
    return chosen[0]


def _in(collection: Any) -> str:
    return f" in collection {collection!r}" if collection is not None else ""


def _nearby(rows: Sequence[Row], dataset: Any) -> tuple[str, list[CallHint]]:
    """Hint at datasets of the same object, to help a user spot a typo (text and hints)."""
    if isinstance(dataset, Mapping):
        obj = dataset.get("object")
    else:
        text = str(dataset).rsplit("/", 1)[-1]
        obj = text.lstrip("_").split(".")[0].split("_")[-1]
    close = sorted({r["rel_path"] for r in rows if obj and r.get("object") == obj})
    if close:
        return f"; the session has {', '.join(close[:8])}", []
    listing = CallHint("list_datasets", {"eid": ...}, positional=1)
    return f"; list the session's datasets with {listing.python}", [listing]
