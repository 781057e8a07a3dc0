"""The session page's summaries: behaviour (trials, wheel, rig recordings) and ephys.

Each summary is shown only when the session holds what it sums up, and is computed from
the session's own datasets and rows (never a scan of the catalogue): the trials and wheel
objects of its ALF files, the behaviour datasets of its rig recordings, and its probes and
units in the ephys tables. A summary that cannot be read (a file missing on disk, a format
not understood) is left out rather than failing the page.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ...errors import NeurotroveError

__all__ = ["behaviour_summary", "ephys_summary"]

Section = tuple[str, dict[str, Any]]
"""A titled table of a summary: ``(title, {label: value})``."""

_READ_ERRORS = (NeurotroveError, OSError, ValueError, KeyError, TypeError)
"""What reading a session's files for a summary may raise; the summary is then left out."""


def behaviour_summary(trove: Any, eid: str, datasets: list[dict[str, Any]]) -> list[Section]:
    """Return the behaviour sections of a session page: trials, wheel, rig recordings."""
    sections: list[Section] = []
    for title, summary in (
        ("Trials", _trials(trove, eid, datasets)),
        ("Wheel", _wheel(trove, eid, datasets)),
        ("Rig recordings", _rig(trove, eid)),
    ):
        if summary:
            sections.append((title, summary))
    return sections


def _collection_of(datasets: list[dict[str, Any]], obj: str) -> str | None:
    """Return the first collection holding ALF object ``obj`` (``None``: none does)."""
    found = sorted({d.get("collection") or "" for d in datasets if d.get("object") == obj})
    return found[0] if found else None


def _trials(trove: Any, eid: str, datasets: list[dict[str, Any]]) -> dict[str, Any]:
    """Count trials; performance overall and on easy trials; choices; reaction time."""
    import numpy as np

    collection = _collection_of(datasets, "trials")
    if collection is None:
        return {}
    try:
        trials = trove.load_object(eid, "trials", collection=collection)
    except _READ_ERRORS:
        return {}
    summary: dict[str, Any] = {"collection": collection or "(session folder)"}
    lengths = [len(v) for v in trials.values() if hasattr(v, "__len__")]
    count = max(lengths, default=0)
    summary["trials"] = count
    feedback = _array(trials.get("feedbackType"), count)
    if feedback is not None:
        summary["performance (correct)"] = f"{float(np.mean(feedback == 1)):.0%}"
        left, right = (
            _array(trials.get("contrastLeft"), count),
            _array(trials.get("contrastRight"), count),
        )
        if left is not None and right is not None:
            contrast = np.fmax(np.nan_to_num(left), np.nan_to_num(right))
            easy = contrast >= 0.5
            if easy.any():
                share = float(np.mean(feedback[easy] == 1))
                summary["performance on easy trials (contrast ≥ 50%)"] = f"{share:.0%}"
    choice = _array(trials.get("choice"), count)
    if choice is not None:
        summary["choices (left / right / no-go)"] = (
            f"{int(np.sum(choice == 1))} / {int(np.sum(choice == -1))} / "
            f"{int(np.sum(choice == 0))}"
        )
    response, start = (
        _array(trials.get("response_times"), count),
        _array(trials.get("stimOn_times"), count),
    )
    if response is not None and start is not None:
        reaction = response - start
        if np.isfinite(reaction).any():
            summary["median reaction time"] = f"{float(np.nanmedian(reaction)):.3f} s"
    return summary


def _array(values: Any, count: int) -> Any:
    """Return a trials column as floats, if it has one value per trial."""
    import numpy as np

    if values is None or not hasattr(values, "__len__") or len(values) != count or not count:
        return None
    try:
        return np.asarray(values, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        return None


def _wheel(trove: Any, eid: str, datasets: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum up the wheel: samples, duration, sampling rate, distance turned, movements."""
    import numpy as np

    collection = _collection_of(datasets, "wheel")
    if collection is None:
        return {}
    try:
        wheel = trove.load_object(eid, "wheel", collection=collection)
        position = np.asarray(wheel["position"], dtype=float).reshape(-1)
        times = np.asarray(wheel["timestamps"], dtype=float).reshape(-1)
    except _READ_ERRORS:
        return {}
    summary: dict[str, Any] = {"collection": collection or "(session folder)"}
    summary["samples"] = f"{len(position):,}"
    if len(times) == len(position) and len(times) > 1:
        duration = float(times[-1] - times[0])
        summary["duration"] = f"{duration / 60:.1f} min"
        if duration > 0:
            summary["sampling rate"] = f"{(len(times) - 1) / duration:.0f} Hz"
    if len(position) > 1:
        summary["distance turned"] = f"{float(np.nansum(np.abs(np.diff(position)))):.1f} rad"
    moves = _collection_of(datasets, "wheelMoves")
    if moves is not None:
        try:
            intervals = trove.load_object(eid, "wheelMoves", collection=moves)["intervals"]
            summary["movements"] = f"{len(intervals):,}"
        except _READ_ERRORS:
            pass
    return summary


def _rig(trove: Any, eid: str) -> dict[str, Any]:
    """Count the features, masks and videos of a rig recording (``trove.behaviour``)."""
    from ...catalog.behaviour_schema import behaviour_datasets

    table = behaviour_datasets.c
    query = (
        sa.select(table.kind, sa.func.count(), sa.func.sum(table.trials))
        .where(table.session == eid)
        .group_by(table.kind)
    )
    with trove.catalog.read() as conn:
        rows = conn.execute(query).all()
    summary: dict[str, Any] = {}
    for kind, count, trials in sorted(rows):
        summary[f"{kind}s"] = int(count)
        if kind == "mask" and trials:
            summary["trials defined by masks"] = int(trials)
    return summary


def ephys_summary(trove: Any, eid: str) -> list[dict[str, Any]]:
    """Return a session's probes, each with its units, good units and brain regions."""
    from ...catalog.ephys_schema import probe_insertions, units

    probes, unit = probe_insertions.c, units.c
    query = (
        sa.select(
            probes.id,
            probes.name,
            probes.model,
            sa.func.count(unit.id).label("units"),
            sa.func.count(unit.id).filter(unit.quality == "good").label("good"),
            sa.func.count(sa.distinct(unit.structure_acronym)).label("regions"),
        )
        .select_from(probe_insertions.outerjoin(units, unit.probe == probes.id))
        .where(probes.session == eid)
        .group_by(probes.id, probes.name, probes.model)
        .order_by(probes.name)
    )
    with trove.catalog.read() as conn:
        rows = [dict(row) for row in conn.execute(query).mappings()]
        for row in rows:
            acronyms = (
                sa.select(unit.structure_acronym, sa.func.count())
                .where(unit.probe == row["id"], unit.structure_acronym.is_not(None))
                .group_by(unit.structure_acronym)
                .order_by(sa.func.count().desc(), unit.structure_acronym)
                .limit(5)
            )
            row["top regions"] = ", ".join(a for a, _ in conn.execute(acronyms))
    return rows
