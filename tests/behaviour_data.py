"""Real rig files, NWB files (written with pynwb) and mask functions for the behaviour tests.

The rig describes one of each kind of feature Antelop's rigs hold, and the NWB file holds
them as labs' acquisition code writes them:

- ``LED_1``: an IntervalSeries in stimulus (interval);
- ``tone``: a TimeIntervals table in stimulus (interval);
- ``VALVE1``: a TimeSeries of reward events in stimulus (digital);
- ``scales``: an analog TimeSeries in acquisition with a starting time and a rate, and a
  conversion factor;
- ``wheel``: an analog TimeSeries in acquisition with timestamps;
- ``head``: a 3-D SpatialSeries in acquisition (kinematics, animal 1);
- ``nose``: a SpatialSeries in a Position of processing module ``behaviour_coords``;
- ``tail_base``: a DeepLabCut-style module (``deeplabcut``, one Position of body parts),
  found without naming the module;
- the video ``top_camera``: an external ``.avi`` next to the NWB file.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

RIG: dict[str, Any] = {
    "specification": "antelop-behaviour",
    "version": "0.0.1",
    "reference_point": "centre of the arena floor",
    "features": [
        {
            "name": "LED_1",
            "source": {"source_type": "stimulus"},
            "ownership": {"ownership": "world"},
            "data_type": "interval",
            "coordinates": [1.366, 0.5, 0.0],
            "description": "LED above port 1",
        },
        {
            "name": "tone",
            "source": {"source_type": "stimulus"},
            "data_type": "interval",
            "description": "Go tone",
        },
        {
            "name": "VALVE1",
            "source": {"source_type": "stimulus"},
            "ownership": {"ownership": "world"},
            "data_type": "digital",
            "coordinates": [1.366, 0.5, 0.0],
            "description": "Reward at port 1",
        },
        {
            "name": "scales",
            "source": {"source_type": "acquisition"},
            "ownership": {"ownership": "world"},
            "data_type": "analog",
            "coordinates": [0, 0, 0],
            "description": "Scales under the nest",
        },
        {
            "name": "wheel",
            "source": {"source_type": "acquisition"},
            "ownership": {"ownership": "world"},
            "data_type": "analog",
            "description": "Running wheel angle",
        },
        {
            "name": "head",
            "source": {"source_type": "acquisition", "video": "top_camera"},
            "ownership": {"ownership": "self", "animal": 1},
            "data_type": "kinematics",
            "description": "Head position, tracked",
        },
        {
            "name": "nose",
            "source": {
                "source_type": "processing",
                "module": "behaviour_coords",
                "video": "top_camera",
            },
            "ownership": {"ownership": "self", "animal": 1},
            "data_type": "kinematics",
            "description": "DLC nose",
        },
        {
            "name": "tail_base",
            "source": {"source_type": "deeplabcut", "video": "top_camera"},
            "ownership": {"ownership": "self", "animal": 1},
            "data_type": "kinematics",
            "description": "DLC tail base",
        },
    ],
    "videos": [{"name": "top_camera", "description": "Top-down video", "format": "avi"}],
}

MASKS_PY = '''\
import numpy as np


def led_trials(features, session):
    """A trial from each LED onset to its offset."""
    data, timestamps = features["LED_1"]
    return np.where(data > 0, 1, -1), timestamps


def tone_trials(features, session):
    """A trial from each tone onset to the next reward."""
    tone, times = features["tone"]
    rewards = features["VALVE1"].timestamps
    starts = times[tone > 0]
    ends = [rewards[rewards >= start][0] for start in starts]
    return np.ravel([[1, -1]] * len(starts)), np.ravel(list(zip(starts, ends)))


def broken(features, session):
    raise RuntimeError("the LED channel is miswired")


def overlapping(features, session):
    return [1, 1, -1, -1], [0.0, 1.0, 2.0, 3.0]


not_a_function = 3
'''

MASKS = [
    {"name": "trials", "description": "LED on to off", "function": "masks.led_trials"},
    {"name": "tone_trials", "description": "tone to reward", "function": "masks.tone_trials"},
]

START = dt.datetime(2024, 5, 1, 10, 30, tzinfo=dt.UTC)


def rig(**changes: Any) -> dict[str, Any]:
    """Return a deep copy of the rig with top-level keys changed."""
    document = copy.deepcopy(RIG)
    document.update(changes)
    return document


def write_rig(folder: Path, document: dict[str, Any] | None = None, name: str = "rig") -> Path:
    """Write a rig file and return its path."""
    path = folder / f"{name}.json"
    path.write_text(json.dumps(document if document is not None else RIG, indent=2))
    return path


def write_masks(folder: Path, source: str = MASKS_PY) -> Path:
    """Write the analysis folder's masks.py and return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "masks.py").write_text(source)
    return folder


@dataclass
class Recorded:
    """What an NWB file written by :func:`write_nwb` holds, to compare with what is read."""

    path: Path
    video: Path
    events: dict[str, tuple[np.ndarray, np.ndarray]]
    units: dict[str, str | None]


def write_nwb(folder: Path, name: str = "session", *, skip: tuple[str, ...] = (), seed: int = 0):
    """Write an NWB file holding every feature of :data:`RIG` (but those in ``skip``)."""
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries
    from pynwb.behavior import Position, SpatialSeries
    from pynwb.epoch import TimeIntervals
    from pynwb.image import ImageSeries
    from pynwb.misc import IntervalSeries

    random = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    nwbfile = NWBFile(
        session_description="a redhex session",
        identifier=f"{name}-{seed}",
        session_start_time=START,
    )
    events: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    units: dict[str, str | None] = {}

    def keep(key: str, data: Any, times: Any, unit: str | None) -> None:
        events[key] = (np.asarray(data), np.asarray(times, dtype=float))
        units[key] = unit

    led = np.array([1, -1, 1, -1, 1, -1], dtype=np.int8)
    led_times = np.array([1.0, 2.0, 4.0, 5.5, 8.0, 9.0])
    if "LED_1" not in skip:
        nwbfile.add_stimulus(
            IntervalSeries(name="LED_1", data=led, timestamps=led_times, description="LED")
        )
    keep("LED_1", led, led_times, None)
    tone = TimeIntervals(name="tone", description="go tone")
    for start, stop in ((0.5, 0.7), (3.5, 3.7), (7.5, 7.7)):
        tone.add_interval(start, stop)
    if "tone" not in skip:
        nwbfile.add_stimulus(tone)
    keep("tone", [1, -1, 1, -1, 1, -1], [0.5, 0.7, 3.5, 3.7, 7.5, 7.7], None)
    valve_times = np.array([1.5, 4.5, 8.5])
    if "VALVE1" not in skip:
        nwbfile.add_stimulus(
            TimeSeries(
                name="VALVE1", data=np.ones(3, dtype=np.int64), unit="n.a.", timestamps=valve_times
            )
        )
    keep("VALVE1", np.ones(3, dtype=np.int64), valve_times, "n.a.")
    raw = random.integers(0, 1000, size=200).astype(np.int32)
    if "scales" not in skip:
        nwbfile.add_acquisition(
            TimeSeries(
                name="scales", data=raw, unit="g", conversion=0.5, starting_time=0.25, rate=20.0
            )
        )
    keep("scales", raw * 0.5, 0.25 + np.arange(200) / 20.0, "g")
    wheel = random.normal(size=50)
    wheel_times = np.sort(random.uniform(0, 10, size=50))
    if "wheel" not in skip:
        nwbfile.add_acquisition(
            TimeSeries(name="wheel", data=wheel, unit="radians", timestamps=wheel_times)
        )
    keep("wheel", wheel, wheel_times, "radians")
    head = random.uniform(0, 1, size=(30, 3))
    head_times = np.linspace(0, 10, 30)
    if "head" not in skip:
        nwbfile.add_acquisition(
            SpatialSeries(
                name="head", data=head, reference_frame="arena centre", timestamps=head_times
            )
        )
    keep("head", head, head_times, "meters")
    video_times = np.linspace(0, 10, 41)
    for module_name, container, part in (
        ("behaviour_coords", "pose", "nose"),
        ("deeplabcut", "bodyparts", "tail_base"),
    ):
        module = nwbfile.create_processing_module(module_name, "pose estimation")
        position = Position(name=container)
        points = random.uniform(0, 640, size=(41, 2))
        if part not in skip:
            position.create_spatial_series(
                name=part,
                data=points,
                reference_frame="top left of the frame",
                unit="pixels",
                timestamps=video_times,
            )
        position.create_spatial_series(
            name=f"{part}_likelihood_x",
            data=points[:, :1],
            reference_frame="frame",
            timestamps=video_times,
        )
        module.add(position)
        keep(part, points, video_times, "pixels")
    video = folder / f"{name}_top.avi"
    video.write_bytes(b"RIFF" + bytes(random.integers(0, 256, size=4000, dtype=np.uint8)))
    if "top_camera" not in skip:
        nwbfile.add_acquisition(
            ImageSeries(
                name="top_camera",
                external_file=[video.name],
                format="external",
                starting_frame=[0],
                timestamps=video_times,
            )
        )
    path = folder / f"{name}.nwb"
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
    return Recorded(path, video, events, units)
