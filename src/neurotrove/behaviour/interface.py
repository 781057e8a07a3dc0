r"""``trove.behaviour``: rigs, NWB sessions, masks and trials.

Examples
--------
A rig with one LED, a session recorded in it, and a mask function in the analysis folder:

>>> import json, pathlib, tempfile
>>> import numpy as np, neurotrove as nt
>>> from pynwb import NWBFile, NWBHDF5IO
>>> from pynwb.misc import IntervalSeries
>>> from datetime import datetime, timezone
>>> work = pathlib.Path(tempfile.mkdtemp())
>>> _ = (work / "masks.py").write_text(
...     "def led_trials(features, session):\n"
...     "    data, timestamps = features['LED_1']\n"
...     "    return data, timestamps\n")
>>> rig = {"specification": "antelop-behaviour", "version": "0.0.1",
...        "reference_point": "centre", "features": [
...            {"name": "LED_1", "source": {"source_type": "stimulus"},
...             "ownership": {"ownership": "world"}, "data_type": "interval",
...             "coordinates": [1.366, 0.5, 0.0], "description": "Intervals for LED_1"}]}
>>> _ = (work / "redhex_1.json").write_text(json.dumps(rig))
>>> nwbfile = NWBFile(session_description="demo", identifier="demo",
...                   session_start_time=datetime(2024, 5, 1, tzinfo=timezone.utc))
>>> nwbfile.add_stimulus(IntervalSeries(name="LED_1", data=np.array([1, -1, 1, -1]),
...                                     timestamps=np.array([1.0, 2.0, 3.0, 4.0])))
>>> with NWBHDF5IO(str(work / "session.nwb"), "w") as io:
...     io.write(nwbfile)
>>> trove = nt.connect(work / "trove", create=True)
>>> eid = trove.register_session("mouse01", "2024-05-01")
>>> b = trove.behaviour
>>> b.analysis_dir = work
>>> b.upload_rig(work / "redhex_1.json", name="redhex_1", experimenter="alice",
...              masks=[{"name": "trials", "description": "LED on to off",
...                      "function": "masks.led_trials"}])["features"]
['LED_1']
>>> _ = b.insert_nwb(eid, ["mouse01"], work / "session.nwb", "redhex_1")
>>> b.events(eid, "LED_1").timestamps.tolist()
[1.0, 2.0, 3.0, 4.0]
>>> [len(t.data) for t in nt.split_trials(b.events(eid, "LED_1"), b.mask(eid, "trials"))]
[2, 2]
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConflictError, NotFoundError, ValidationError
from ..files.atomic import STAGING_FOLDER, FileWrite, recover_writes
from .ingest import (
    load_events,
    session_context,
)
from .nwb import (
    ExportedFeature,
    VideoData,
    require_pynwb,
    write_nwb,
)
from .operations import (
    INSERT_NWB,
    RECOMPUTE_COLUMNS,
    RECOMPUTE_MASKS,
    UPLOAD_RIG,
    MaskRecompute,
)
from .rigs import RigProblem, Video, read_rig, rig_problems
from .store import stored_rows
from .trials import Events, split_trials

if TYPE_CHECKING:
    import pandas as pd

    from ..trove.trove import Trove

__all__ = ["RECOMPUTE_COLUMNS", "Behaviour", "mask_definitions"]


class Behaviour:
    """The behaviour of a trove's sessions: rigs, NWB ingestion, masks and trials.

    Get one with ``trove.behaviour``. Rigs, features, mask functions and each session's
    rig, animals and behaviour datasets live in the catalogue (``trove.table("rigs")``,
    ``"rig_features"``, ``"mask_functions"``, ``"session_rigs"``, ``"session_animals"``,
    ``"behaviour_datasets"``); the data are ALF datasets of the sessions (see
    :mod:`neurotrove.behaviour.store` for their names).

    On a served trove (``nt.connect("http://...")``) everything that reads works from the
    mirror and the file cache; writes run on the server: a rig is sent as its JSON, an NWB
    file is uploaded (md5-checked) with the video files it names relative to itself, and
    the server inserts it with the same checks, all or nothing; mask functions are
    imported from the server's analysis folder.

    Parameters
    ----------
    trove : Trove
        The trove.

    Attributes
    ----------
    analysis_dir : Path or None
        Where mask functions are imported from; by default the ``analysis_dir`` setting
        (``NEUROTROVE_ANALYSIS_DIR``, or ``analysis_dir`` in ``config.toml``).
    """

    def __init__(self, trove: Trove) -> None:
        self._trove = trove
        self._analysis_dir: Path | None = trove.settings.analysis_dir

    def __repr__(self) -> str:
        return f"<Behaviour of {self._trove!r}>"

    @property
    def analysis_dir(self) -> Path | None:
        """The folder mask functions (``module.function``) are imported from."""
        return self._analysis_dir

    @analysis_dir.setter
    def analysis_dir(self, folder: str | os.PathLike[str] | None) -> None:
        self._analysis_dir = None if folder is None else Path(folder).expanduser().resolve()

    # -- rigs ------------------------------------------------------------------------------

    def validate_rig(
        self,
        rig: str | os.PathLike[str] | Mapping[str, Any],
        *,
        masks: Iterable[Mapping[str, Any]] | None = None,
    ) -> list[RigProblem]:
        """Return every problem of a rig file and its masks (an empty list when valid).

        Each problem has its JSON path, the rule it breaks and what is wrong (see
        :mod:`neurotrove.behaviour.rigs` for the rules). Mask functions are imported from
        :attr:`analysis_dir` to check that they exist and are callable.

        Raises
        ------
        ValidationError
            When the file cannot be read or is not JSON.
        """
        document, _ = read_rig(rig)
        return rig_problems(document, masks=masks, analysis_dir=self.analysis_dir)

    def upload_rig(
        self,
        rig: str | os.PathLike[str] | Mapping[str, Any],
        name: str,
        *,
        experimenter: str | None = None,
        masks: Iterable[Mapping[str, Any]] = (),
        replace: bool = False,
    ) -> dict[str, Any]:
        """Check a rig file and store it, one row per feature, with its mask functions.

        Parameters
        ----------
        rig : path or dict
            An Antelop-format rig JSON file (or the parsed document).
        name : str
            The rig's unique name, e.g. ``"redhex_1"``.
        experimenter : str, optional
            Who uploads it (a user of the trove; created when missing).
        masks : list of dict
            Mask definitions, each with ``name``, ``function`` (``module.function`` in the
            analysis folder) and ``description``.
        replace : bool
            Replace a rig of the same name that no session uses yet.

        Returns
        -------
        dict
            The rig's row of ``trove.table("rigs")``.

        Raises
        ------
        ValidationError
            Listing every problem of the rig file and the masks; nothing is stored.
        ConflictError
            When the name is taken (or, with ``replace``, sessions use that rig).
        """
        self._trove.apply(
            UPLOAD_RIG, rig, name, experimenter, list(masks), replace, self.analysis_dir
        )
        return self.rig(name)

    def rig(self, name: str) -> dict[str, Any]:
        """Return a rig's row of ``trove.table("rigs")`` (with ``rig_json``).

        Raises
        ------
        NotFoundError
            When there is no rig of that name.
        """
        try:
            return self._trove.table("rigs", use_defaults=False).get_one(name=name)
        except NotFoundError:
            rigs = self.rigs().name.tolist()
            listed = ", ".join(map(repr, rigs)) if rigs else "none yet"
            raise NotFoundError(
                f"there is no rig {name!r}; the rigs are {listed}", rig=name
            ) from None

    def rigs(self) -> pd.DataFrame:
        """Return every rig (``trove.table("rigs")``)."""
        return self._trove.table("rigs").get()

    def features(self, rig: str) -> pd.DataFrame:
        """Return a rig's features, in the order of its JSON (``trove.table("rig_features")``)."""
        self.rig(rig)
        return self._trove.table("rig_features").get(rig=rig)

    # -- sessions --------------------------------------------------------------------------

    def insert_nwb(
        self,
        session: Any,
        animals: Any,
        nwb_path: str | os.PathLike[str],
        rig: str,
    ) -> pd.DataFrame:
        """Insert a session's behaviour from its NWB file, as described by its rig.

        Every feature of the rig is read from the NWB file (see
        :mod:`neurotrove.behaviour.nwb` for where and how), each video's external file is
        copied into the session, the rig's masks are computed, and all of it is written
        as ALF datasets of the session (see :mod:`neurotrove.behaviour.store`) and
        recorded in one transaction. On any error nothing is inserted and no file is left.

        Parameters
        ----------
        session : str, UUID, path or dict
            The session (registered already, e.g. with ``trove.register_session``).
        animals : list of str, or None
            The subjects in the rig, animal 1 first (nicknames, ids, or dicts with
            ``nickname`` and ``lab``); ``None`` means the session's subject, for a rig of
            one animal.
        nwb_path : path
            The session's NWB file.
        rig : str
            The rig it was recorded in (uploaded with :meth:`upload_rig`).

        Returns
        -------
        pandas.DataFrame
            The session's behaviour datasets (:meth:`datasets`).

        Raises
        ------
        ValidationError
            When the NWB file lacks a described feature or video (all are listed), cannot
            be read, the animals do not match the rig, or a mask function fails.
        NotFoundError
            For an unknown session, rig or subject.
        ConflictError
            When the session already holds behaviour.
        """
        eid = self._trove.apply(
            INSERT_NWB, session, animals, Path(nwb_path).expanduser(), rig, self.analysis_dir
        )
        return self.datasets(eid)

    def datasets(self, eid: Any) -> pd.DataFrame:
        """Return a session's behaviour datasets (``trove.table("behaviour_datasets")``)."""
        key = self._trove.to_eid(eid)
        return self._trove.table("behaviour_datasets", use_defaults=False).get(eid=key)

    def _rows(self, eid: Any, kind: str, names: Sequence[str] | None) -> tuple[str, list[Any]]:
        key = self._trove.to_eid(eid)
        with self._trove.catalog.read() as conn:
            rows = stored_rows(conn, key, kind=kind, names=names)
            if names is not None and len(rows) < len(names):
                known = [r["name"] for r in stored_rows(conn, key, kind=kind)]
                missing = [n for n in names if n not in {r["name"] for r in rows}]
                listed = ", ".join(map(repr, known)) or "none"
                raise NotFoundError(
                    f"session {key} has no {kind} {', '.join(map(repr, missing))}; its "
                    f"{kind}s are {listed}",
                    session=key,
                    name=missing,
                )
        return key, rows

    def events(self, eid: Any, feature: str) -> Events:
        """Return a feature's ``(data, timestamps)`` in a session (``.to_df()`` for a table).

        Raises
        ------
        NotFoundError
            When the session has no such feature; the message lists its features.
        """
        key, (row,) = self._rows(eid, "feature", [feature])
        return load_events(self._trove, key, row)

    def mask(self, eid: Any, name: str) -> Events:
        """Return a mask's ``(data, timestamps)``: +1 where a trial starts, -1 where it ends.

        Raises
        ------
        NotFoundError
            When the session has no such mask.
        """
        key, (row,) = self._rows(eid, "mask", [name])
        return load_events(self._trove, key, row)

    def trials(self, eid: Any, feature: str, mask: str) -> list[Events]:
        """Return a feature's events split into the trials of a mask (:func:`split_trials`)."""
        return split_trials(self.events(eid, feature), self.mask(eid, mask))

    def video(self, eid: Any, name: str) -> Path:
        """Return the path of a session's video file (downloaded first on a served trove)."""
        key, (row,) = self._rows(eid, "video", [name])
        path: Path = self._trove.load_dataset(key, row["data_path"], download_only=True)
        return path

    def recompute_masks(
        self,
        eid: Any = None,
        *,
        masks: Sequence[str] | None = None,
        progress: bool | None = None,
        skip_errors: bool = False,
        **conditions: Any,
    ) -> pd.DataFrame:
        """Run the mask functions again, after editing them, for one session or many.

        The functions' modules are read afresh from the analysis folder. Each session's
        masks are replaced in one transaction: a session whose function fails keeps the
        masks it had.

        Parameters
        ----------
        eid : str, UUID, path or dict, optional
            One session.
        masks : list of str, optional
            Only these masks (default: every mask of the session's rig).
        progress : bool or None
            Show a progress bar; ``None`` shows one on a terminal.
        skip_errors : bool
            Record a failing session in the report's ``error`` column and go on, instead
            of raising.
        **conditions
            Instead of ``eid``: conditions on ``trove.table("session_rigs")`` choosing the
            sessions, e.g. ``rig="redhex_1"`` or ``subject="mouse01"``.

        Returns
        -------
        pandas.DataFrame
            One row per session and mask: :data:`RECOMPUTE_COLUMNS`.

        Raises
        ------
        ValidationError
            Without a session or conditions, or when a mask function fails (unless
            ``skip_errors``); the sessions before it keep their new masks.
        """
        if eid is not None and conditions:
            raise ValidationError("give a session or conditions, not both")
        if eid is not None:
            key = self._trove.to_eid(eid)
            sessions = self._trove.table("session_rigs", use_defaults=False).get(eid=key)
            if sessions.empty:
                raise NotFoundError(
                    f"session {key} holds no behaviour; insert it with insert_nwb first",
                    session=key,
                )
        elif conditions:
            sessions = self._trove.table("session_rigs").get(**conditions)
        else:
            raise ValidationError(
                "say which sessions' masks to recompute: an eid, or conditions on "
                "trove.table('session_rigs') such as rig='redhex_1'"
            )
        request = MaskRecompute(
            sessions,
            None if eid is None else str(sessions.index[0]),
            None if masks is None else list(masks),
            skip_errors,
            conditions,
            self._trove.settings.progress if progress is None else progress,
            self.analysis_dir,
        )
        return self._trove.apply(RECOMPUTE_MASKS, request)

    # -- export ----------------------------------------------------------------------------

    def export_nwb(
        self, eid: Any, path: str | os.PathLike[str], *, overwrite: bool = False
    ) -> Path:
        """Write a session's behaviour to a new NWB file; return its path.

        Each feature is written where it was found and as what it was (a series with
        timestamps or a rate, an IntervalSeries, TimeIntervals, a SpatialSeries in its
        container), so :meth:`insert_nwb` re-imports the same data with the same rig.
        Videos are ImageSeries pointing at the session's video files (relative to the new
        file); masks go to the ``trove_masks`` processing module.

        Raises
        ------
        NotFoundError
            When the session holds no behaviour.
        ConflictError
            When ``path`` exists and ``overwrite`` is false.
        """
        require_pynwb()
        target = Path(path).expanduser().resolve()
        if target.exists() and not overwrite:
            raise ConflictError(
                f"{target} exists; choose another path or pass overwrite=True", path=str(target)
            )
        key = self._trove.to_eid(eid)
        with self._trove.catalog.read() as conn:
            session_context(self._trove, conn, key)  # says so when there is no behaviour
            rows = stored_rows(conn, key)
        details = self._trove.get_details(key)
        features = [
            ExportedFeature(
                r["name"], r["data_type"], load_events(self._trove, key, r), r["unit"], r["json"]
            )
            for r in rows
            if r["kind"] == "feature"
        ]
        masks = [load_events(self._trove, key, r) for r in rows if r["kind"] == "mask"]
        videos = []
        for row in (r for r in rows if r["kind"] == "video"):
            source = row["json"] or {}
            file = self._trove.load_dataset(key, row["data_path"], download_only=True)
            timestamps = (
                self._trove.load_dataset(key, row["timestamps_path"])
                if row["timestamps_path"]
                else None
            )
            video = Video(
                row["name"], row["name"], source.get("rig_description", ""), source["format"], None
            )
            videos.append(VideoData(video, Path(file), timestamps, source))
        home = self._trove.root / STAGING_FOLDER
        recover_writes(home)
        with FileWrite(home) as files:
            write_nwb(
                target,
                session=details,
                features=features,
                masks=masks,
                videos=videos,
                files=files,
            )
            files.complete()
        return target


def mask_definitions(specs: Iterable[str]) -> list[dict[str, str]]:
    """Read ``NAME:MODULE.FUNCTION[:DESCRIPTION]`` mask options (the CLI's ``--mask``).

    Examples
    --------
    >>> mask_definitions(["trials:masks.led_trials:LED on to reward"])
    [{'name': 'trials', 'function': 'masks.led_trials', 'description': 'LED on to reward'}]
    """
    definitions = []
    for spec in specs:
        name, _, rest = spec.partition(":")
        function, _, description = rest.partition(":")
        if not name or not function:
            raise ValidationError(
                f"--mask {spec!r} must be NAME:MODULE.FUNCTION[:DESCRIPTION], e.g. "
                f"trials:masks.led_trials",
                mask=spec,
            )
        definitions.append({"name": name, "function": function, "description": description})
    return definitions
