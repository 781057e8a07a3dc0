"""Natural movie and scene templates: aggregates of a stimulus set.

A stimulus set is the images and movies a project shows its animals. Its templates are
aggregates (datasets of no session) at ``aggregates/StimulusSets/<set>/``, named
``naturalMovie.template.<n>.npy`` (frames x rows x columns) and
``naturalScene.template.<n>.<ext>`` (``.tiff`` as in Allen's caches, or ``.npy``).

A session's template ``n`` is, in order:

1. the session's own dataset ``naturalMovie.template.<n>.*`` (stimuli made for that
   session, e.g. a noise movie with the session's seed);
2. the aggregate of the session's stimulus set: the one its ``json["stimulus_set"]``
   names, else the trove's only stimulus set.

``trove.ephys.import_allen`` files an Allen cache's templates under the set
:data:`ALLEN_STIMULUS_SET` and names it on the sessions it imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError

if TYPE_CHECKING:
    from ..trove.trove import Trove

__all__ = [
    "ALLEN_STIMULUS_SET",
    "STIMULUS_SETS",
    "STIMULUS_SET_KEY",
    "STIMULUS_TEMPLATE_NAMES",
    "load_template",
    "stimulus_set_of",
    "stimulus_sets",
]

STIMULUS_SETS = "StimulusSets"
"""The aggregates' relation of stimulus sets: ``aggregates/StimulusSets/<set>/``."""

STIMULUS_SET_KEY = "stimulus_set"
"""The key of a session's ``json`` that names its stimulus set."""

ALLEN_STIMULUS_SET = "allen"
"""The stimulus set ``import_allen`` files an Allen cache's templates under."""

STIMULUS_TEMPLATE_NAMES = {
    "scene": "naturalScene.template.{number}",
    "movie": "naturalMovie.template.{number}",
}
"""The dataset names of stimulus templates, without extension."""


def stimulus_sets(trove: Trove) -> list[str]:
    """Return the names of the trove's stimulus sets (those holding an aggregate)."""
    found = trove.list_aggregates(STIMULUS_SETS, details=True)
    return sorted({str(name) for name in found["identifier"]})


def stimulus_set_of(trove: Trove, eid: str) -> str | None:
    """Return the stimulus set of a session: the one it names, else the trove's only one.

    ``None`` when the session names none and the trove has none or several.
    """
    named = (trove.get_details(eid).get("json") or {}).get(STIMULUS_SET_KEY)
    if named:
        return str(named)
    sets = stimulus_sets(trove)
    return sets[0] if len(sets) == 1 else None


def load_template(trove: Trove, eid: str, kind: str, number: int) -> Any:
    """Load a session's natural ``kind`` (``"movie"`` or ``"scene"``) template ``number``.

    Raises
    ------
    NotFoundError
        When neither the session nor its stimulus set holds it; the message names the
        dataset, the aggregate it would be and the sets the trove has.
    """
    name = STIMULUS_TEMPLATE_NAMES[kind].format(number=int(number))
    try:
        return trove.load_dataset(eid, f"{name}.*")
    except NotFoundError:
        pass
    chosen = stimulus_set_of(trove, eid)
    if chosen is not None:
        try:
            return trove.load_aggregate(STIMULUS_SETS, chosen, f"{name}.*")
        except NotFoundError:
            pass
    sets = stimulus_sets(trove)
    if chosen is not None:
        where = f"stimulus set {chosen!r} has no aggregates/{STIMULUS_SETS}/{chosen}/{name}.*"
    elif sets:
        where = (
            f"the session names no stimulus set and the trove has {len(sets)} "
            f"({', '.join(sets[:8])}): name one with "
            f"trove.update_session(eid, json={{{STIMULUS_SET_KEY!r}: <set>}})"
        )
    else:
        where = (
            f"the trove has no stimulus set: put the template at "
            f"aggregates/{STIMULUS_SETS}/<set>/{name}.npy under the data root and run "
            f"trove register (import_allen does so for an Allen cache's templates)"
        )
    raise NotFoundError(
        f"no natural {kind} template {number} for session {eid}: it is neither the "
        f"session's dataset {name}.* nor an aggregate of its stimulus set; {where}",
        session=eid,
        dataset=name,
    )
