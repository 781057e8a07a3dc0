"""Writing behaviour: rigs into the catalogue, NWB sessions and masks into session folders.

Every write here follows one pattern: read and check everything first (the rig, the
session, the animals, the NWB file, the mask functions' output), then stage the files
beside their targets (hidden, journaled), then record the datasets and the behaviour rows in
one transaction and rename the files into place once it has committed
(:meth:`~neurotrove.trove.catalogue_writes.CatalogueWrites.commit_files`). Any error before
or during that transaction leaves the catalogue and the session folder as they were, and so
does a kill: the next open or write of the trove removes what a killed insert staged, or
finishes placing the files of one that had committed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..catalog import behaviour_schema as b
from ..catalog import schema as s
from ..catalog.types import as_uuid_string
from ..catalog.writes import ensure_rows, lock_key, utcnow
from ..errors import (
    ArgumentHint,
    CallHint,
    ConflictError,
    MultipleFoundError,
    NotFoundError,
    ValidationError,
)
from ..files.hashing import file_md5
from ..jsonable import to_jsonable
from ..query.identify import session_folder, to_eid
from .masks import compute_mask, load_function
from .nwb import open_nwb, read_features, read_videos
from .rigs import Feature, MaskDefinition, Rig, Video, build_rig
from .store import (
    Staging,
    behaviour_id,
    child_id,
    feature_paths,
    mask_paths,
    rig_id,
    stored_rows,
    video_paths,
)
from .trials import Events

if TYPE_CHECKING:
    from ..trove.catalogue_writes import CatalogueWrites
    from ..trove.trove import Trove

__all__ = [
    "StoredRig",
    "insert_session",
    "load_events",
    "load_stored_rig",
    "recompute_session",
    "write_rig",
]

Functions = dict[str, Callable[..., Any]]


@dataclass(frozen=True)
class StoredRig:
    """A rig as the catalogue holds it: its features, mask functions and videos."""

    id: str
    name: str
    animals: int
    features: tuple[Feature, ...]
    masks: tuple[MaskDefinition, ...]
    videos: tuple[Video, ...]
    created_at: Any = None  # when this definition was stored: a replaced rig has another

    def feature_id(self, name: str) -> str:
        """Return the id of the rig's feature ``name``."""
        return child_id(self.id, "feature", name)

    def mask_id(self, name: str) -> str:
        """Return the id of the rig's mask function ``name``."""
        return child_id(self.id, "mask", name)


# -- rigs -------------------------------------------------------------------------------


def write_rig(
    conn: Connection,
    rig: Rig,
    masks: Sequence[MaskDefinition],
    name: str,
    *,
    experimenter: str | None,
    replace: bool,
) -> None:
    """Insert a checked rig, one row per feature and its mask functions.

    Raises
    ------
    ConflictError
        When a rig of that name exists (and ``replace`` is false, or sessions use it).
    """
    rigs = b.rigs.c
    lock_key(conn, f"rig:{name}")  # one writer of the name at a time; insert_nwb checks too
    existing = conn.execute(sa.select(rigs.id).where(rigs.name == name)).scalar()
    if existing is not None:
        if not replace:
            raise ConflictError(
                f"there is already a rig {name!r}; rig names are unique, so upload this one "
                f"under another name (or pass replace=True to change a rig no session uses)",
                hints=[ArgumentHint("replace", True)],
                rig=name,
            )
        used = conn.execute(
            sa.select(sa.func.count()).where(b.session_rigs.c.rig == existing)
        ).scalar_one()
        if used:
            raise ConflictError(
                f"rig {name!r} is the rig of {used} session{'s' if used != 1 else ''}, whose "
                f"data it describes; upload the changed rig under a new name instead",
                rig=name,
            )
        conn.execute(sa.delete(b.mask_functions).where(b.mask_functions.c.rig == existing))
        conn.execute(sa.delete(b.rig_features).where(b.rig_features.c.rig == existing))
        conn.execute(sa.delete(b.rigs).where(rigs.id == existing))
    ensure_rows(conn, s.users, "username", [experimenter])
    now = utcnow()
    key = rig_id(name)
    conn.execute(
        sa.insert(b.rigs).values(
            id=key,
            name=name,
            experimenter=experimenter,
            specification=rig.specification,
            version=rig.version,
            reference_point=rig.reference_point,
            animals=rig.animals,
            rig_json=rig.document,
            created_at=now,
        )
    )
    conn.execute(
        sa.insert(b.rig_features),
        [
            {
                "id": child_id(key, "feature", f.name),
                "rig": key,
                "number": f.number,
                "name": f.name,
                "object": f.object,
                "source_type": f.source_type,
                "module": f.module,
                "video": f.video,
                "ownership": f.ownership,
                "animal": f.animal,
                "data_type": f.data_type,
                "x": f.coordinates[0] if f.coordinates else None,
                "y": f.coordinates[1] if f.coordinates else None,
                "z": f.coordinates[2] if f.coordinates else None,
                "description": f.description,
                "annotation": None,
                "attachment": None,
            }
            for f in rig.features
        ],
    )
    if masks:
        conn.execute(
            sa.insert(b.mask_functions),
            [
                {
                    "id": child_id(key, "mask", m.name),
                    "rig": key,
                    "name": m.name,
                    "object": m.object,
                    "description": m.description,
                    "function": m.function,
                    "created_at": now,
                }
                for m in masks
            ],
        )


def _rig_names(conn: Connection) -> str:
    names = list(conn.execute(sa.select(b.rigs.c.name).order_by(b.rigs.c.name)).scalars())
    if not names:
        return "no rig is uploaded yet; upload one with trove.behaviour.upload_rig"
    shown = ", ".join(map(repr, names[:20]))
    return f"the rigs are {shown}{' ...' if len(names) > 20 else ''}"


def load_stored_rig(
    conn: Connection, name: str | None = None, *, key: str | None = None
) -> StoredRig:
    """Read a rig (by name, or by id) with its features and mask functions.

    Raises
    ------
    NotFoundError
        When there is no such rig; the message lists the rigs.
    """
    rigs = b.rigs.c
    where = rigs.name == name if key is None else rigs.id == key
    row = conn.execute(sa.select(b.rigs).where(where)).mappings().first()
    if row is None:
        raise NotFoundError(f"there is no rig {name!r}; {_rig_names(conn)}", rig=name)
    f = b.rig_features.c
    features = tuple(
        Feature(
            number=r.number,
            name=r.name,
            object=r.object,
            source_type=r.source_type,
            module=r.module,
            video=r.video,
            ownership=r.ownership,
            animal=r.animal,
            data_type=r.data_type,
            coordinates=(r.x, r.y, r.z) if r.x is not None else None,
            description=r.description or "",
        )
        for r in conn.execute(
            sa.select(b.rig_features).where(f.rig == row["id"]).order_by(f.number)
        )
    )
    m = b.mask_functions.c
    masks = tuple(
        MaskDefinition(r.name, r.function, r.description or "", r.object)
        for r in conn.execute(
            sa.select(b.mask_functions).where(m.rig == row["id"]).order_by(m.name)
        )
    )
    videos = build_rig(row["rig_json"]).videos
    return StoredRig(
        row["id"], row["name"], row["animals"], features, masks, videos, row["created_at"]
    )


# -- sessions ---------------------------------------------------------------------------


def _refuse_replaced(conn: Connection, rig: StoredRig) -> None:
    """Refuse to link a session to a rig replaced since the session's data were computed."""
    lock_key(conn, f"rig:{rig.name}")  # no replacement until this session is recorded
    stored = conn.execute(sa.select(b.rigs.c.created_at).where(b.rigs.c.id == rig.id)).first()
    if stored is None or stored.created_at != rig.created_at:
        raise ConflictError(
            f"rig {rig.name!r} was replaced while this session was being inserted, so its "
            f"masks were computed with the old definition; insert the session again",
            rig=rig.name,
        )


def _refuse_existing(conn: Connection, eid: str) -> None:
    w = b.session_rigs.c
    found = conn.execute(
        sa.select(b.rigs.c.name, w.nwb_file)
        .select_from(b.session_rigs.join(b.rigs, w.rig == b.rigs.c.id))
        .where(w.session == eid)
    ).first()
    if found is not None:
        raise ConflictError(
            f"session {eid} already holds behaviour of rig {found.name!r}, inserted from "
            f"{found.nwb_file}; a session is inserted once (recompute its masks with "
            f"recompute_masks)",
            session=eid,
            rig=found.name,
        )


def _subject(conn: Connection, item: Any, lab: str | None, number: int) -> tuple[str, str]:
    subjects = s.subjects.c
    if isinstance(item, Mapping):
        nickname, wanted_lab = item.get("nickname"), item.get("lab", lab)
        rows = conn.execute(
            sa.select(subjects.id, subjects.nickname, subjects.lab).where(
                subjects.nickname == nickname
            )
        ).all()
        rows = [r for r in rows if r.lab == wanted_lab] or rows
    elif isinstance(item, uuid.UUID) or (isinstance(item, str) and _is_uuid(item)):
        key = as_uuid_string(item, "animal")
        rows = conn.execute(
            sa.select(subjects.id, subjects.nickname, subjects.lab).where(subjects.id == key)
        ).all()
    elif isinstance(item, str):
        rows = conn.execute(
            sa.select(subjects.id, subjects.nickname, subjects.lab).where(
                subjects.nickname == item
            )
        ).all()
        rows = [r for r in rows if r.lab == lab] or rows
    else:
        raise ValidationError(
            f"animal {number} is {item!r}; give a subject's nickname, id, or a dict with "
            f"nickname and lab",
            animal=number,
        )
    if not rows:
        arguments = {"nickname": item, "lab": lab if lab is not None else ...}
        adding = CallHint("trove.register_subject", arguments, positional=1)
        raise NotFoundError(
            f"animal {number}: there is no subject {item!r}; register it first with "
            f"{adding.python}",
            hints=[adding] if isinstance(item, str) else [],
            animal=number,
        )
    if len(rows) > 1:
        labs = ", ".join(sorted(str(r.lab) for r in rows))
        raise MultipleFoundError(
            f"animal {number}: subject {item!r} exists in several labs ({labs}); give "
            f"{{'nickname': ..., 'lab': ...}}",
            animal=number,
        )
    return str(rows[0].id), str(rows[0].nickname)


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def resolve_animals(
    conn: Connection, eid: str, given: Any, rig: StoredRig
) -> list[tuple[int, str, str]]:
    """Return ``(animal number, subject id, nickname)`` for each animal of the session.

    Raises
    ------
    ValidationError
        When the count differs from the rig's animals, or a subject is given twice.
    NotFoundError
        When a subject is not registered.
    """
    needed = max(1, rig.animals)
    session = conn.execute(
        sa.select(s.subjects.c.id, s.subjects.c.nickname, s.sessions.c.lab)
        .select_from(s.sessions.join(s.subjects, s.sessions.c.subject == s.subjects.c.id))
        .where(s.sessions.c.id == eid)
    ).one()
    plural = f"{needed} animal{'s' if needed != 1 else ''}"
    if given is None:
        if needed > 1:
            raise ValidationError(
                f"rig {rig.name!r} holds {plural}; give animals=[...], one subject per "
                f"animal, animal 1 first",
                hints=[ArgumentHint("animals", [...])],
                rig=rig.name,
            )
        return [(1, str(session.id), str(session.nickname))]
    items = [given] if isinstance(given, str | Mapping | uuid.UUID) else list(given)
    if len(items) != needed:
        raise ValidationError(
            f"rig {rig.name!r} holds {plural}, but {len(items)} "
            f"{'was' if len(items) == 1 else 'were'} given ({', '.join(map(repr, items))}); "
            f"give one subject per animal, animal 1 first; nothing was inserted",
            rig=rig.name,
            animals=items,
        )
    resolved = [
        (number, *_subject(conn, item, session.lab, number))
        for number, item in enumerate(items, start=1)
    ]
    ids = [subject for _, subject, _ in resolved]
    if len(set(ids)) != len(ids):
        raise ValidationError(
            f"animals {', '.join(map(repr, items))} name the same subject twice; each animal "
            f"is a different subject",
            animals=items,
        )
    return resolved


def load_events(trove: Trove, eid: str, row: Mapping[str, Any]) -> Events:
    """Load a stored feature's or mask's ``(data, timestamps)`` (downloading if remote)."""
    paths = [row["data_path"], row["timestamps_path"]]
    values, _ = trove.load_datasets(eid, paths)
    kind = "mask" if row["kind"] == "mask" else row["data_type"]
    return Events(values[0], values[1], name=row["name"], data_type=kind, unit=row["unit"])


def _load_functions(
    masks: Iterable[MaskDefinition], analysis_dir: Path | None, cache: Functions
) -> Functions:
    for mask in masks:
        if mask.function not in cache:
            cache[mask.function] = load_function(mask.function, analysis_dir)
    return cache


def _mask_rows(
    eid: str, rig: StoredRig, staging: Staging, computed: Sequence[tuple[MaskDefinition, Events]]
) -> list[dict[str, Any]]:
    now = utcnow()
    rows = []
    for mask, events in computed:
        data_path, times_path = mask_paths(mask.object)
        rows.append(
            {
                "id": behaviour_id(eid, "mask", mask.name),
                "session": eid,
                "kind": "mask",
                "name": mask.name,
                "mask_function": rig.mask_id(mask.name),
                "data_type": "mask",
                "trials": int((events.data == 1).sum()),
                "data_dataset": staging.array(data_path, events.data),
                "timestamps_dataset": staging.array(times_path, events.timestamps),
                "json": {"function": mask.function},
                "created_at": now,
            }
        )
    return rows


def insert_session(
    writes: CatalogueWrites,
    trove: Trove,
    analysis_dir: Path | None,
    session: Any,
    animals: Any,
    nwb_path: Path,
    rig_name: str,
) -> str:
    """Insert a session's behaviour from its NWB file; return its eid.

    See :meth:`~neurotrove.behaviour.Behaviour.insert_nwb`.

    Long on purpose: read and check everything, compute, stage, then record in one
    transaction; the order is the safety argument, so it reads top to bottom in one place.
    """
    with trove.catalog.read() as conn:
        eid = to_eid(conn, session, where=trove.root)
        folder = session_folder(conn, trove.root, eid)
        _refuse_existing(conn, eid)
        rig = load_stored_rig(conn, rig_name)
        owners = resolve_animals(conn, eid, animals, rig)
    functions = _load_functions(rig.masks, analysis_dir, {})
    details = trove.get_details(eid)
    with open_nwb(nwb_path) as nwbfile:
        features = read_features(nwbfile, rig.features, str(nwb_path))
        videos = read_videos(nwbfile, rig.videos, nwb_path)
    record = {**details, "rig": rig.name, "animals": [nickname for _, _, nickname in owners]}
    events = {item.feature.name: item.events for item in features}
    computed = [
        (m, compute_mask(m.name, m.function, functions[m.function], events, record))
        for m in rig.masks
    ]
    subject_of = {number: subject for number, subject, _ in owners}
    digest = file_md5(nwb_path)
    now = utcnow()
    with writes.file_write() as files:
        staging = Staging(eid, folder, files)
        rows: list[dict[str, Any]] = []
        for item in features:
            feature = item.feature
            data_path, times_path = feature_paths(feature.object, feature.data_type)
            coordinates = feature.coordinates or (None, None, None)
            rows.append(
                {
                    "id": behaviour_id(eid, "feature", feature.name),
                    "session": eid,
                    "kind": "feature",
                    "name": feature.name,
                    "feature": rig.feature_id(feature.name),
                    "data_type": feature.data_type,
                    "animal": feature.animal if feature.ownership == "self" else None,
                    "subject": subject_of.get(feature.animal or 0)
                    if feature.ownership == "self"
                    else None,
                    "unit": item.events.unit,
                    "x": coordinates[0],
                    "y": coordinates[1],
                    "z": coordinates[2],
                    "data_dataset": staging.array(data_path, item.events.data),
                    "timestamps_dataset": staging.array(times_path, item.events.timestamps),
                    "json": to_jsonable(item.source),
                    "created_at": now,
                }
            )
        rows += _mask_rows(eid, rig, staging, computed)
        for video in videos:
            file_path, times_path = video_paths(video.video.object, video.video.format)
            rows.append(
                {
                    "id": behaviour_id(eid, "video", video.video.name),
                    "session": eid,
                    "kind": "video",
                    "name": video.video.name,
                    "data_type": "video",
                    "data_dataset": staging.copy(file_path, video.file),
                    "timestamps_dataset": None
                    if video.timestamps is None
                    else staging.array(times_path, video.timestamps),
                    "json": to_jsonable(
                        {
                            **video.source,
                            "format": video.video.format,
                            "rig_description": video.video.description,
                        }
                    ),
                    "created_at": now,
                }
            )

        def write(conn: Connection) -> None:
            conn.execute(
                sa.insert(b.session_rigs).values(
                    session=eid,
                    rig=rig.id,
                    nwb_file=str(nwb_path),
                    nwb_md5=digest,
                    inserted_at=now,
                )
            )
            conn.execute(
                sa.insert(b.session_animals),
                [
                    {
                        "id": child_id(eid, "animal", str(number)),
                        "session": eid,
                        "animal": number,
                        "subject": subject,
                    }
                    for number, subject, _ in owners
                ],
            )
            conn.execute(sa.insert(b.behaviour_datasets), [_complete(r) for r in rows])

        def check(conn: Connection) -> None:
            # Another job may have inserted the session since it was read above.
            lock_key(conn, f"behaviour:{eid}")
            _refuse_existing(conn, eid)
            _refuse_replaced(conn, rig)

        writes.commit_files(eid, folder, staging.records, files, before=check, also=write)
    return eid


_ROW_FIELDS = [c.name for c in b.behaviour_datasets.columns]


def _complete(row: Mapping[str, Any]) -> dict[str, Any]:
    """Give a behaviour row every column, so that rows can be inserted together."""
    return {name: row.get(name) for name in _ROW_FIELDS}


def session_context(
    trove: Trove, conn: Connection, eid: str
) -> tuple[Path, StoredRig, list[dict[str, Any]], list[str]]:
    """Return a session's folder, rig, stored features and animal nicknames.

    Raises
    ------
    NotFoundError
        When the session holds no behaviour.
    """
    folder = session_folder(conn, trove.root, eid)
    key = conn.execute(
        sa.select(b.session_rigs.c.rig).where(b.session_rigs.c.session == eid)
    ).scalar()
    if key is None:
        raise NotFoundError(
            f"session {eid} holds no behaviour; insert it first with trove.behaviour.insert_nwb",
            session=eid,
        )
    rig = load_stored_rig(conn, key=key)
    features = stored_rows(conn, eid, kind="feature")
    a = b.session_animals.c
    nicknames = list(
        conn.execute(
            sa.select(s.subjects.c.nickname)
            .select_from(b.session_animals.join(s.subjects, a.subject == s.subjects.c.id))
            .where(a.session == eid)
            .order_by(a.animal)
        ).scalars()
    )
    return folder, rig, features, nicknames


def recompute_session(
    writes: CatalogueWrites,
    trove: Trove,
    analysis_dir: Path | None,
    eid: str,
    names: Sequence[str] | None,
    cache: Functions,
) -> list[tuple[str, int]]:
    """Recompute a session's masks from its stored features; return ``(mask, trials)``.

    All of the session's masks are replaced in one transaction, or none is.
    """
    with trove.catalog.read() as conn:
        folder, rig, features, nicknames = session_context(trove, conn, eid)
    masks = list(rig.masks)
    if names is not None:
        known = {m.name for m in masks}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValidationError(
                f"rig {rig.name!r} has no mask {', '.join(map(repr, unknown))}; its masks are "
                f"{', '.join(map(repr, sorted(known))) or 'none'}",
                rig=rig.name,
            )
        masks = [m for m in masks if m.name in names]
    if not masks:
        return []
    functions = _load_functions(masks, analysis_dir, cache)
    details = trove.get_details(eid)
    record = {**details, "rig": rig.name, "animals": nicknames}
    events = {row["name"]: load_events(trove, eid, row) for row in features}
    computed = [
        (m, compute_mask(m.name, m.function, functions[m.function], events, record)) for m in masks
    ]
    with writes.file_write() as files:
        staging = Staging(eid, folder, files, replace=True)
        rows = _mask_rows(eid, rig, staging, computed)

        def write(conn: Connection) -> None:
            ids = [row["id"] for row in rows]
            conn.execute(sa.delete(b.behaviour_datasets).where(b.behaviour_datasets.c.id.in_(ids)))
            conn.execute(sa.insert(b.behaviour_datasets), [_complete(r) for r in rows])

        def serialise(conn: Connection) -> None:
            lock_key(conn, f"behaviour:{eid}")

        writes.commit_files(
            eid, folder, staging.records, files, before=serialise, also=write, replace=True
        )
    return [(mask.name, int((mask_events.data == 1).sum())) for mask, mask_events in computed]
