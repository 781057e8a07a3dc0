"""Behaviour in NWB files: read a rig's features and videos with pynwb, and write them back.

Each feature of a rig is looked up by its name where its ``source_type`` says:

- ``acquisition`` and ``stimulus``: ``nwbfile.acquisition[name]``, ``nwbfile.stimulus[name]``;
- ``processing``: ``nwbfile.processing[module][name]``;
- ``deeplabcut``: ``nwbfile.processing[module][name]``, or, without a module, the one
  processing module holding ``name``.

Inside that group the name may be a series or table itself, or a series inside a container
such as ``Position`` (a container of that name holding one series, or a series of that name
in any container, as pose-estimation modules store one series per body part).

What each data type accepts, and what it becomes:

- ``analog``: any TimeSeries; its values (``data * conversion + offset``).
- ``digital``: any TimeSeries; the event values at their times.
- ``interval``: an IntervalSeries (its signed values), or a TimeIntervals table, whose rows
  become ``+1`` at ``start_time`` and ``-1`` at ``stop_time``.
- ``kinematics``: a SpatialSeries, alone or in a container such as ``Position``; its
  positions, one row per sample (1 to 3 axes).

Timestamps are the series' own, or ``starting_time + i / rate`` for a series that has a rate.
A video is the ``ImageSeries`` of its name in ``acquisition``, with one external file
(resolved from the NWB file's folder).

pynwb is imported only here, inside the functions that need it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, ValidationError
from ..files.atomic import FileWrite, replace_file
from .rigs import Feature, Video
from .trials import Events, as_events, check_sorted

__all__ = [
    "FeatureData",
    "VideoData",
    "open_nwb",
    "read_features",
    "read_videos",
    "require_pynwb",
    "write_nwb",
]

MASK_MODULE = "trove_masks"
"""The processing module an exported NWB file holds a session's masks in."""


@dataclass
class FeatureData:
    """A feature read from an NWB file: its events and where and how the file held them."""

    feature: Feature
    events: Events
    source: dict[str, Any] = field(default_factory=dict)


@dataclass
class VideoData:
    """A video of an NWB file: its external file, its frame times, and how they were given."""

    video: Video
    file: Path
    timestamps: Any
    source: dict[str, Any] = field(default_factory=dict)


class _Problem(Exception):
    """One thing an NWB file lacks, collected so that all are reported at once."""


def require_pynwb() -> Any:
    """Import pynwb, or say how to install it.

    Raises
    ------
    ConfigError
        When pynwb is not installed.
    """
    try:
        import pynwb
    except ImportError:
        raise ConfigError(
            "reading and writing NWB files needs pynwb; install it with "
            "pip install 'neurotrove[nwb]'"
        ) from None
    return pynwb


@contextlib.contextmanager
def open_nwb(path: Path) -> Iterator[Any]:
    """Open an NWB file for reading and yield its ``NWBFile``.

    Raises
    ------
    ValidationError
        When the file does not exist or pynwb cannot read it.
    ConfigError
        When pynwb is not installed.
    """
    pynwb = require_pynwb()
    if not path.is_file():
        raise ValidationError(f"NWB file {path} does not exist", path=str(path))
    try:
        io = pynwb.NWBHDF5IO(str(path), mode="r")
    except Exception as error:
        raise ValidationError(
            f"cannot read {path} as an NWB file ({type(error).__name__}: {error}); check that "
            f"it is a complete NWB 2 file, e.g. by opening it with pynwb.NWBHDF5IO",
            path=str(path),
        ) from None
    try:
        try:
            nwbfile = io.read()
        except Exception as error:
            raise ValidationError(
                f"cannot read {path} as an NWB file ({type(error).__name__}: {error}); check "
                f"that it is a complete NWB 2 file, e.g. by opening it with pynwb.NWBHDF5IO",
                path=str(path),
            ) from None
        yield nwbfile
    finally:
        io.close()


# -- reading ----------------------------------------------------------------------------


def _names(mapping: Mapping[str, Any]) -> str:
    return ", ".join(map(repr, sorted(mapping))) or "nothing"


def _groups(nwbfile: Any, feature: Feature) -> list[tuple[str, str | None, Mapping[str, Any]]]:
    """Where a feature may be: ``(group, module, its objects by name)``."""
    if feature.source_type in ("acquisition", "stimulus"):
        return [(feature.source_type, None, getattr(nwbfile, feature.source_type))]
    modules = nwbfile.processing
    if feature.module is not None:
        if feature.module not in modules:
            raise _Problem(
                f"the file has no processing module {feature.module!r} (its modules: "
                f"{_names(modules)})"
            )
        return [("processing", feature.module, modules[feature.module].data_interfaces)]
    if not modules:
        raise _Problem("the file has no processing modules; name the module in the rig")
    return [("processing", name, module.data_interfaces) for name, module in modules.items()]


def _is_data(value: Any) -> bool:
    from hdmf.common import DynamicTable
    from pynwb import TimeSeries

    return isinstance(value, TimeSeries | DynamicTable)


def _find(feature: Feature, nwbfile: Any) -> tuple[Any, dict[str, Any]]:
    """Return the object holding a feature and where it was found."""
    from pynwb import TimeSeries

    name = feature.name
    found: list[tuple[Any, dict[str, Any]]] = []
    places = []
    for group, module, objects in _groups(nwbfile, feature):
        place = group if module is None else f"processing[{module!r}]"
        places.append(f"{place} holds {_names(objects)}")
        where = {"group": group, "module": module}
        direct = objects.get(name)
        if direct is not None:
            if _is_data(direct):
                found.append((direct, {**where, "container": None}))
                continue
            inner = [c for c in direct.children if isinstance(c, TimeSeries)]
            named = [c for c in inner if c.name == name]
            if named or len(inner) == 1:
                chosen = (named or inner)[0]
                found.append((chosen, {**where, **_container(direct)}))
                continue
        for value in objects.values():
            if _is_data(value):
                continue
            for child in getattr(value, "children", ()):
                if isinstance(child, TimeSeries) and child.name == name:
                    found.append((child, {**where, **_container(value)}))
    if not found:
        raise _Problem(f"not found: {'; '.join(places)}")
    if len(found) > 1:
        shown = ", ".join(_show_place(w) for _, w in found)
        raise _Problem(f"found in several places ({shown}); name the module in the rig")
    return found[0]


def _container(value: Any) -> dict[str, Any]:
    return {"container": value.name, "container_type": type(value).__name__}


def _show_place(where: Mapping[str, Any]) -> str:
    text = str(where["group"])
    if where.get("module"):
        text = f"processing[{where['module']!r}]"
    if where.get("container"):
        text += f"[{where['container']!r}]"
    return text


def _a(noun: str) -> str:
    """``noun`` with its indefinite article: "an IntervalSeries", "a TimeSeries"."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def _text_array(values: Any) -> Any:
    array = np.asarray(values)
    if array.dtype.kind == "O":  # variable-length strings come back as bytes objects
        return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in array.ravel()])
    return array


def _timing(series: Any, count: int) -> tuple[Any, dict[str, Any]]:
    stamps = series.timestamps
    if stamps is not None:
        return np.asarray(stamps[:], dtype=np.float64), {"timing": "timestamps"}
    rate = series.rate
    if rate is None or not float(rate) > 0:
        raise _Problem("has neither timestamps nor a positive rate, so its times are unknown")
    start = float(series.starting_time or 0.0)
    times = start + np.arange(count, dtype=np.float64) / float(rate)
    return times, {"timing": "rate", "starting_time": start, "rate": float(rate)}


def _read(feature: Feature, found: Any) -> tuple[Events, dict[str, Any]]:
    from hdmf.common import DynamicTable
    from pynwb.behavior import SpatialSeries
    from pynwb.misc import IntervalSeries

    kind = feature.data_type
    shown = _a(type(found).__name__)
    if isinstance(found, DynamicTable):
        if kind != "interval" or not {"start_time", "stop_time"} <= set(found.colnames):
            hint = "describe it as interval" if kind != "interval" else "it has no start_time"
            raise _Problem(f"is a table ({type(found).__name__}); {hint}")
        start = np.asarray(found["start_time"][:], dtype=np.float64)
        stop = np.asarray(found["stop_time"][:], dtype=np.float64)
        order = np.argsort(start, kind="stable")
        start, stop = start[order], stop[order]
        if np.any(stop < start):
            row = int(np.flatnonzero(stop < start)[0])
            raise _Problem(f"interval {row} ends ({stop[row]}) before it starts ({start[row]})")
        if np.any(start[1:] < stop[:-1]):
            row = int(np.flatnonzero(start[1:] < stop[:-1])[0]) + 1
            raise _Problem(f"interval {row} starts before interval {row - 1} ends")
        data = np.tile(np.array([1, -1], dtype=np.int8), len(start))
        times = np.column_stack([start, stop]).ravel()
        table = {"neurodata_type": "TimeIntervals", "description": found.description}
        return Events(data, times, name=feature.name, data_type=kind), table
    expected = {"interval": IntervalSeries, "kinematics": SpatialSeries}.get(kind)
    if expected is not None and not isinstance(found, expected):
        noun = "an IntervalSeries or TimeIntervals" if kind == "interval" else "a SpatialSeries"
        raise _Problem(f"is {shown}; a {kind} feature is {noun}")
    if kind in ("analog", "digital") and isinstance(found, IntervalSeries):
        raise _Problem(f"is {shown}; describe it as interval")
    data = _text_array(found.data[:])
    source: dict[str, Any] = {
        "neurodata_type": type(found).__name__,
        "description": found.description,
        "comments": found.comments,
    }
    conversion, offset = float(found.conversion), float(getattr(found, "offset", 0.0) or 0.0)
    if (conversion != 1.0 or offset != 0.0) and not isinstance(found, IntervalSeries):
        data = data * conversion + offset  # values in the series' unit
        source["converted"] = {"conversion": conversion, "offset": offset}
    times, timing = _timing(found, len(data))
    source.update(timing)
    if isinstance(found, SpatialSeries):
        source["reference_frame"] = found.reference_frame
    if kind in ("digital", "interval") and data.ndim != 1:
        raise _Problem(f"has data of shape {data.shape}; {kind} data are 1-D")
    if kind == "kinematics" and (data.ndim > 2 or (data.ndim == 2 and data.shape[1] > 3)):
        raise _Problem(f"has data of shape {data.shape}; kinematics have 1 to 3 axes")
    unit = None if isinstance(found, IntervalSeries) else found.unit
    return Events(data, times, name=feature.name, data_type=kind, unit=unit), source


def read_features(nwbfile: Any, features: Sequence[Feature], where: str) -> list[FeatureData]:
    """Read every feature from an open NWB file.

    Raises
    ------
    ValidationError
        Listing every feature that is missing or does not fit its description.
    """
    read = []
    problems = []
    for feature in features:
        label = f"feature {feature.name!r} ({feature.data_type}, from {feature.source_type})"
        try:
            found, place = _find(feature, nwbfile)
            events, source = _read(feature, found)
            checked = as_events(events, label)
            check_sorted(checked.timestamps, label)
        except _Problem as problem:
            problems.append(f"{label}: {problem}")
            continue
        except ValidationError as error:
            problems.append(error.message)
            continue
        read.append(FeatureData(feature, events, {**place, **source}))
    if problems:
        listed = "\n".join(f"  {p}" for p in problems)
        raise ValidationError(
            f"{where} does not hold what the rig describes ({len(problems)} problem"
            f"{'s' if len(problems) != 1 else ''}); nothing was inserted:\n{listed}",
            path=where,
            problems=problems,
        )
    return read


def relative_external_files(nwb_path: Path) -> list[str]:
    """Return the external files of an NWB file's ImageSeries given relative to the file.

    These travel with the NWB file when it is sent to a server (an absolute path must be
    one the server sees). Only relative names inside the file's folder are returned.
    """
    from pynwb.image import ImageSeries

    found = []
    with open_nwb(nwb_path) as nwbfile:
        for series in nwbfile.acquisition.values():
            if isinstance(series, ImageSeries) and series.external_file is not None:
                for item in series.external_file[:]:
                    name = item.decode() if isinstance(item, bytes) else str(item)
                    if not Path(name).is_absolute() and ".." not in Path(name).parts:
                        found.append(name)
    return sorted(set(found))


def read_videos(nwbfile: Any, videos: Sequence[Video], nwb_path: Path) -> list[VideoData]:
    """Find each video's external file (and frame times) in an open NWB file.

    Raises
    ------
    ValidationError
        Listing every video that is missing, not external, or whose file is not there.
    """
    from pynwb.image import ImageSeries

    read = []
    problems = []
    for video in videos:
        label = f"video {video.name!r}"
        series = nwbfile.acquisition.get(video.name)
        if not isinstance(series, ImageSeries):
            what = "not in acquisition" if series is None else _a(type(series).__name__)
            problems.append(
                f"{label} is {what}; a video is an ImageSeries in acquisition (acquisition "
                f"holds {_names(nwbfile.acquisition)})"
            )
            continue
        files = [] if series.external_file is None else list(series.external_file[:])
        if len(files) != 1:
            problems.append(
                f"{label} has {len(files)} external files; neurotrove takes a video as one "
                f"external file (ImageSeries with format='external')"
            )
            continue
        name = files[0].decode() if isinstance(files[0], bytes) else str(files[0])
        path = Path(name) if Path(name).is_absolute() else nwb_path.parent / name
        if not path.is_file():
            problems.append(f"{label}: its external file {path} does not exist")
            continue
        suffix = path.suffix.lower().lstrip(".")
        if suffix != video.format.lower():
            problems.append(
                f"{label}: its external file {path.name} is not .{video.format}, the format "
                f"the rig gives"
            )
            continue
        source: dict[str, Any] = {"external_file": name, "description": series.description}
        stamps = series.timestamps
        timestamps = None
        if stamps is not None:
            timestamps = np.asarray(stamps[:], dtype=np.float64)
            source["timing"] = "timestamps"
        elif series.rate is not None:
            source.update(
                timing="rate", starting_time=float(series.starting_time or 0.0), rate=series.rate
            )
            frames = getattr(series, "num_samples", None)
            if frames:
                source["num_samples"] = int(frames)
                timestamps = source["starting_time"] + np.arange(int(frames)) / series.rate
        read.append(VideoData(video, path, timestamps, source))
    if problems:
        listed = "\n".join(f"  {p}" for p in problems)
        raise ValidationError(
            f"{nwb_path} does not hold the rig's videos; nothing was inserted:\n{listed}",
            path=str(nwb_path),
            problems=problems,
        )
    return read


# -- writing ----------------------------------------------------------------------------


@dataclass
class ExportedFeature:
    """A stored feature to write: its events, unit and the NWB source recorded at insertion."""

    name: str
    data_type: str
    events: Events
    unit: str | None
    source: Mapping[str, Any]


def _timing_arguments(source: Mapping[str, Any], timestamps: Any) -> dict[str, Any]:
    if source.get("timing") == "rate":
        return {"starting_time": float(source["starting_time"]), "rate": float(source["rate"])}
    return {"timestamps": np.asarray(timestamps, dtype=np.float64)}


def _series(item: ExportedFeature) -> Any:
    from pynwb import TimeSeries
    from pynwb.behavior import SpatialSeries
    from pynwb.epoch import TimeIntervals
    from pynwb.misc import IntervalSeries

    source = item.source
    data, timestamps = item.events
    description = source.get("description") or item.name
    kind = source.get("neurodata_type")
    if kind == "TimeIntervals":
        table = TimeIntervals(name=item.name, description=description)
        for start, stop in zip(timestamps[0::2], timestamps[1::2], strict=True):
            table.add_interval(float(start), float(stop))
        return table
    common: dict[str, Any] = {
        "name": item.name,
        "data": data,
        "description": description,
        **_timing_arguments(source, timestamps),
    }
    if source.get("comments"):
        common["comments"] = source["comments"]
    if item.data_type == "interval":
        return IntervalSeries(**common)
    if item.data_type == "kinematics":
        return SpatialSeries(
            **common,
            reference_frame=source.get("reference_frame") or "unknown",
            unit=item.unit or "meters",
        )
    return TimeSeries(**common, unit=item.unit or "n/a")


def _container_for(source: Mapping[str, Any], series: Any) -> Any:
    from pynwb.behavior import BehavioralTimeSeries, Position, SpatialSeries

    name = source["container"]
    if isinstance(series, SpatialSeries):
        return Position(name=name)
    return BehavioralTimeSeries(name=name)


def write_nwb(
    target: Path,
    *,
    session: Mapping[str, Any],
    features: Sequence[ExportedFeature],
    masks: Sequence[Events],
    videos: Sequence[VideoData],
    files: FileWrite | None = None,
) -> None:
    """Write a session's behaviour to a new NWB file at ``target`` (atomically).

    The file is written under a hidden name beside ``target`` and renamed onto it when
    complete: staged in ``files`` (which the caller places) when given, else at once.

    Each feature goes where it was found when inserted, as the same kind of object (series
    with timestamps or with a rate, IntervalSeries, TimeIntervals, SpatialSeries in their
    container); masks go to the ``trove_masks`` processing module as IntervalSeries; videos
    are ImageSeries in acquisition pointing at the session's video files.

    Long on purpose: the file's sections are written in the order NWB nests them, and
    splitting them would pass the half-built file through every helper.
    """
    pynwb = require_pynwb()
    from pynwb.image import ImageSeries
    from pynwb.misc import IntervalSeries

    start = session.get("start_time")
    if start is None or (isinstance(start, float) and np.isnan(start)):
        start = dt.datetime.combine(session["date"], dt.time())
    if hasattr(start, "to_pydatetime"):
        start = start.to_pydatetime()
    if start.tzinfo is None:
        start = start.replace(tzinfo=dt.UTC)
    nwbfile = pynwb.NWBFile(
        session_description=session.get("narrative")
        or session.get("task_protocol")
        or f"behaviour of session {session['eid']}",
        identifier=str(session["eid"]),
        session_start_time=start,
        session_id=f"{session['subject']}/{session['date']}/{int(session['number']):03d}",
    )
    modules: dict[str, Any] = {}
    containers: dict[tuple[str, str | None, str], Any] = {}

    def module(name: str, description: str) -> Any:
        if name not in modules:
            modules[name] = nwbfile.create_processing_module(name, description)
        return modules[name]

    def place(group: str, module_name: str | None, value: Any) -> None:
        if group == "acquisition":
            nwbfile.add_acquisition(value)
        elif group == "stimulus":
            nwbfile.add_stimulus(value)
        else:
            module(str(module_name), f"behaviour read from {module_name}").add(value)

    for item in features:
        source = item.source
        series = _series(item)
        group, module_name = str(source.get("group", "acquisition")), source.get("module")
        if source.get("container"):
            key = (group, module_name, str(source["container"]))
            if key not in containers:
                containers[key] = _container_for(source, series)
                place(group, module_name, containers[key])
            container = containers[key]
            add = getattr(container, "add_spatial_series", None) or container.add_timeseries
            add(series)
        else:
            place(group, module_name, series)
    for mask in masks:
        module(MASK_MODULE, "trial masks computed by neurotrove's mask functions").add(
            IntervalSeries(
                name=str(mask.name),
                data=mask.data,
                timestamps=mask.timestamps,
                description=f"mask {mask.name}: +1 where a trial starts, -1 where it ends",
            )
        )
    for video in videos:
        try:
            external = os.path.relpath(video.file, target.parent)
        except ValueError:  # another drive
            external = str(video.file)
        arguments: dict[str, Any] = {
            "name": video.video.name,
            "external_file": [external],
            "format": "external",
            "starting_frame": [0],
            "description": video.source.get("description") or video.video.description,
        }
        if video.source.get("timing") == "rate":
            arguments.update(
                starting_time=float(video.source["starting_time"]),
                rate=float(video.source["rate"]),
            )
            if video.source.get("num_samples"):
                arguments["num_samples"] = int(video.source["num_samples"])
        elif video.timestamps is not None:
            arguments["timestamps"] = np.asarray(video.timestamps, dtype=np.float64)
        try:
            nwbfile.add_acquisition(ImageSeries(**arguments))
        except ValueError as error:
            raise ValidationError(
                f"cannot write video {video.video.name!r} of session {session['eid']}: {error}",
                video=video.video.name,
            ) from None
    staging = (
        replace_file(target, suffix=".nwb")
        if files is None
        else files.stage_written(target, suffix=".nwb")
    )
    with staging as temporary, pynwb.NWBHDF5IO(str(temporary), mode="w") as io:
        io.write(nwbfile)
