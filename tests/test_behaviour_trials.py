"""split_trials and masks: every event type, the edge cases, and the mask rules."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import neurotrove as nt
from neurotrove.behaviour import Events, check_mask
from neurotrove.errors import ValidationError

MASK = (np.array([1, -1, 1, -1, 1, -1]), np.array([1.0, 2.0, 4.0, 5.0, 7.0, 8.0]))


def test_events_inside_each_trial_are_kept_and_those_outside_are_dropped() -> None:
    times = np.array([0.5, 1.0, 1.5, 2.0, 3.0, 4.5, 6.0, 8.0, 9.0])
    events = (np.arange(9) * 10, times)
    trials = nt.split_trials(events, MASK)
    assert [t.timestamps.tolist() for t in trials] == [[1.0, 1.5, 2.0], [4.5], [8.0]]
    assert [t.data.tolist() for t in trials] == [[10, 20, 30], [50], [70]]


def test_a_trial_without_events_gets_empty_arrays_of_the_events_dtype_and_shape() -> None:
    positions = (np.ones((3, 2), dtype=np.float32), np.array([1.5, 1.6, 7.5]))
    trials = nt.split_trials(positions, MASK)
    assert [len(t.data) for t in trials] == [2, 0, 1]
    assert trials[1].data.shape == (0, 2) and trials[1].data.dtype == np.float32
    assert trials[1].timestamps.shape == (0,)


def test_an_event_where_one_trial_ends_and_the_next_starts_is_in_both() -> None:
    mask = ([1, -1, 1, -1], [0.0, 1.0, 1.0, 2.0])
    trials = nt.split_trials(([7], [1.0]), mask)
    assert [t.data.tolist() for t in trials] == [[7], [7]]


def test_every_event_type_splits_and_keeps_its_name_type_and_unit() -> None:
    kinds = {
        "analog": Events(np.linspace(0, 1, 9), np.arange(9.0), name="scales", unit="g"),
        "digital": Events(np.array([1, 1, 1]), np.array([1.5, 4.5, 9.0]), name="VALVE1"),
        "interval": Events(np.array([1, -1, 1, -1]), np.array([1.2, 1.8, 4.1, 4.9])),
        "kinematics": Events(np.arange(18.0).reshape(9, 2), np.arange(9.0), name="nose"),
    }
    for kind, events in kinds.items():
        typed = Events(*events, name=events.name, data_type=kind, unit=events.unit)
        trials = nt.split_trials(typed, MASK)
        assert len(trials) == 3
        assert all(t.data_type == kind and t.name == events.name for t in trials)
        assert all(t.unit == events.unit for t in trials)
    assert nt.split_trials(kinds["kinematics"], MASK)[1].data.tolist() == [
        [8.0, 9.0],
        [10.0, 11.0],
    ]
    assert nt.split_trials(kinds["interval"], MASK)[1].data.tolist() == [1, -1]


def test_unsorted_events_are_refused_saying_where_and_how_to_sort() -> None:
    with pytest.raises(ValidationError, match=r"timestamp 2 \(1.0\) comes before timestamp 1"):
        nt.split_trials(([1, 2, 3], [0.5, 3.0, 1.0]), MASK)
    with pytest.raises(ValidationError, match="argsort"):
        nt.split_trials(([1, 2, 3], [0.5, 3.0, 1.0]), MASK)


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        (([1, 0, -1], [0.0, 1.0, 2.0]), r"value 1 is 0; a mask holds only \+1"),
        (([-1, 1], [0.0, 1.0]), "value 0 is -1: a trial ends before any started"),
        (([1, 1, -1, -1], [0.0, 1.0, 2.0, 3.0]), "a trial starts before the one started"),
        (([1, -1, -1], [0.0, 1.0, 2.0]), "value 2 is -1: a trial ends twice"),
        (([1, -1, 1], [0.0, 1.0, 2.0]), "2 trial starts but 1 end; the last trial never ends"),
        (([1, -1], [2.0, 1.0]), "timestamps are not sorted"),
        (([1, -1], [0.0, float("nan")]), "timestamp 1 is nan"),
        (([1, -1], [0.0]), "data has 2 rows but there are 1 timestamps"),
        ("trials", "must be \\(data, timestamps\\)"),
        (([True, False], [0.0, 1.0]), "must be \\+1 and -1, not bool"),
    ],
)
def test_bad_masks_are_refused_with_the_rule_they_break(mask: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        nt.split_trials(([1], [1.0]), mask)


def test_a_mask_with_no_trials_gives_no_trials_and_dicts_work_as_pairs() -> None:
    assert nt.split_trials(([1, 2], [0.0, 1.0]), ([], [])) == []
    mask = check_mask({"data": [1.0, -1.0], "timestamps": [0, 1]})
    assert mask.data.dtype == np.int8 and mask.timestamps.dtype == np.float64


def test_events_unpack_pickle_and_become_dataframes() -> None:
    events = Events(
        np.arange(6.0).reshape(3, 2),
        [0.0, 1.0, 2.0],
        name="nose",
        data_type="kinematics",
        unit="pixels",
    )
    data, timestamps = events
    assert data.shape == (3, 2) and timestamps.tolist() == [0.0, 1.0, 2.0]
    again = pickle.loads(pickle.dumps(events))  # noqa: S301 - our own bytes
    assert again.name == "nose" and again.unit == "pixels" and again.data.tolist() == data.tolist()
    assert list(events.to_df().columns) == ["timestamps", "x", "y"]
    wide = Events(np.zeros((2, 4)), [0.0, 1.0], name="lfp")
    assert list(wide.to_df().columns) == ["timestamps", "lfp_0", "lfp_1", "lfp_2", "lfp_3"]


@given(
    st.lists(st.floats(0, 100, allow_nan=False), max_size=60),
    st.lists(st.floats(0, 100, allow_nan=False), min_size=0, max_size=20),
)
def test_each_trial_holds_exactly_the_events_between_its_start_and_end(
    times: list[float], edges: list[float]
) -> None:
    """The brute-force definition (Antelop's boolean matrix) and split_trials agree."""
    timestamps = np.sort(np.array(times))
    cut = np.sort(np.array(edges))[: len(edges) // 2 * 2]
    mask = (np.tile([1, -1], len(cut) // 2), cut)
    data = np.arange(len(timestamps))
    trials = nt.split_trials((data, timestamps), mask)
    starts, stops = cut[0::2], cut[1::2]
    assert len(trials) == len(starts)
    for trial, start, stop in zip(trials, starts, stops, strict=True):
        inside = (timestamps >= start) & (timestamps <= stop)
        assert trial.data.tolist() == data[inside].tolist()
