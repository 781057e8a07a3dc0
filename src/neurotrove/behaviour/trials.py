"""Events, masks and trials: ``(data, timestamps)`` pairs and splitting them by a mask.

Every behaviour feature of a session, whatever its data type, is read as ``(data,
timestamps)``: one timestamp per row of ``data`` (a 1-D array, or one row per sample for
multi-column data such as kinematics). A *mask* is such a pair whose data are ``+1`` where a
trial starts and ``-1`` where it ends, alternating, starting with ``+1``.

Examples
--------
>>> import numpy as np
>>> from neurotrove.behaviour.trials import Events, split_trials
>>> licks = Events(np.array([1, 1, 1, 1]), np.array([0.5, 1.5, 2.5, 4.0]), name="lick")
>>> mask = (np.array([1, -1, 1, -1]), np.array([1.0, 2.0, 3.0, 5.0]))
>>> [trial.timestamps.tolist() for trial in split_trials(licks, mask)]
[[1.5], [4.0]]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from ..errors import ValidationError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Events", "as_events", "check_mask", "split_trials"]

_AXES = ("x", "y", "z")


class Events(tuple[Any, Any]):
    """A feature's or a mask's ``(data, timestamps)``; unpacks as a 2-tuple.

    Parameters
    ----------
    data : numpy.ndarray
        One value (or one row of values) per timestamp.
    timestamps : numpy.ndarray
        Seconds, one per row of ``data``.
    name : str, optional
        The feature or mask.
    data_type : str, optional
        ``analog``, ``digital``, ``interval``, ``kinematics`` or ``mask``.
    unit : str, optional
        The unit of ``data``.

    Examples
    --------
    >>> import numpy as np
    >>> events = Events(np.array([0.1, 0.4]), np.array([0.0, 0.5]), name="scales", unit="g")
    >>> data, timestamps = events
    >>> events.to_df()
       timestamps  scales
    0         0.0     0.1
    1         0.5     0.4
    """

    name: str | None
    data_type: str | None
    unit: str | None

    def __new__(
        cls,
        data: Any,
        timestamps: Any,
        *,
        name: str | None = None,
        data_type: str | None = None,
        unit: str | None = None,
    ) -> Self:
        """Make the pair; ``data`` and ``timestamps`` become numpy arrays."""
        made = super().__new__(cls, (np.asarray(data), np.asarray(timestamps)))
        made.name = name
        made.data_type = data_type
        made.unit = unit
        return made

    def __getnewargs_ex__(self) -> tuple[tuple[Any, Any], dict[str, Any]]:
        return (self[0], self[1]), {
            "name": self.name,
            "data_type": self.data_type,
            "unit": self.unit,
        }

    def __repr__(self) -> str:
        what = ", ".join(
            f"{k}={v!r}"
            for k, v in (("name", self.name), ("data_type", self.data_type), ("unit", self.unit))
            if v is not None
        )
        shape = "x".join(str(n) for n in self.data.shape)
        return f"<Events {what}{', ' if what else ''}{shape} values>"

    @property
    def data(self) -> Any:
        """The values, one (row) per timestamp."""
        return self[0]

    @property
    def timestamps(self) -> Any:
        """The times of the values, in seconds."""
        return self[1]

    def to_df(self) -> pd.DataFrame:
        """Return a DataFrame with a ``timestamps`` column and one column per data column.

        One-column data are named after the feature (or ``data``); kinematics columns are
        ``x``, ``y`` and ``z``; other columns ``<name>_0``, ``<name>_1`` ...
        """
        import pandas as pd

        label = self.name or "data"
        columns: dict[str, Any] = {"timestamps": self.timestamps}
        data = self.data
        if data.ndim == 1:
            columns[label] = data
        else:
            flat = data.reshape(len(data), -1)
            names = (
                _AXES[: flat.shape[1]]
                if self.data_type == "kinematics" and flat.shape[1] <= 3
                else tuple(f"{label}_{i}" for i in range(flat.shape[1]))
            )
            columns.update((n, flat[:, i]) for i, n in enumerate(names))
        return pd.DataFrame(columns)


def as_events(value: Any, what: str) -> Events:
    """Read ``value`` as ``(data, timestamps)``: a 2-sequence or a dict with those keys.

    Raises
    ------
    ValidationError
        When ``value`` is neither, or the two do not have one timestamp per row of data.

    Examples
    --------
    >>> as_events({"data": [1, -1], "timestamps": [0.0, 1.0]}, "mask").data.tolist()
    [1, -1]
    """
    if isinstance(value, Events):
        events = value
    elif isinstance(value, Mapping) and {"data", "timestamps"} <= set(value):
        events = Events(value["data"], value["timestamps"])
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        events = Events(value[0], value[1])
    else:
        raise ValidationError(
            f"{what} must be (data, timestamps): a pair of arrays or a dict with 'data' and "
            f"'timestamps', not {type(value).__name__}",
            what=what,
        )
    data, timestamps = events
    if timestamps.ndim != 1:
        raise ValidationError(
            f"{what}: timestamps must be 1-D, one per row of data; they have shape "
            f"{timestamps.shape}",
            what=what,
        )
    if data.ndim == 0 or len(data) != len(timestamps):
        rows = "a scalar" if data.ndim == 0 else f"{len(data)} rows"
        raise ValidationError(
            f"{what}: data has {rows} but there are {len(timestamps)} timestamps; give one "
            f"timestamp per row of data",
            what=what,
        )
    return events


def check_sorted(timestamps: Any, what: str) -> None:
    """Refuse timestamps that are not finite or not in order (equal neighbours are fine).

    Examples
    --------
    >>> check_sorted(np.array([0.0, 2.0, 1.0]), "events")
    Traceback (most recent call last):
    ...
    neurotrove.errors.ValidationError: events: timestamps are not sorted: ...
    """
    if not np.issubdtype(timestamps.dtype, np.number):
        raise ValidationError(
            f"{what}: timestamps must be numbers (seconds), not {timestamps.dtype}", what=what
        )
    finite = np.isfinite(timestamps)
    if not finite.all():
        index = int(np.argmin(finite))
        raise ValidationError(
            f"{what}: timestamp {index} is {timestamps[index]}; every timestamp must be a "
            f"finite number of seconds",
            what=what,
        )
    drops = np.flatnonzero(np.diff(timestamps) < 0)
    if drops.size:
        index = int(drops[0]) + 1
        raise ValidationError(
            f"{what}: timestamps are not sorted: timestamp {index} ({timestamps[index]}) comes "
            f"before timestamp {index - 1} ({timestamps[index - 1]}); sort data and timestamps "
            f"together, e.g. with order = numpy.argsort(timestamps, kind='stable')",
            what=what,
        )


def check_mask(value: Any, what: str = "mask") -> Events:
    """Check a mask and return it as :class:`Events` (data as ``int8``, times as float).

    A mask's data hold only ``+1`` (a trial starts) and ``-1`` (it ends), alternating and
    starting with ``+1``, with as many ends as starts; its timestamps are sorted.

    Raises
    ------
    ValidationError
        Saying which rule is broken, and where.

    Examples
    --------
    >>> check_mask(([1, -1, 1], [0.0, 1.0, 2.0]))
    Traceback (most recent call last):
    ...
    neurotrove.errors.ValidationError: mask: 2 trial starts but 1 end; ...
    """
    events = as_events(value, what)
    data, timestamps = events
    if data.ndim != 1:
        raise ValidationError(f"{what}: data must be 1-D, not of shape {data.shape}", what=what)
    if data.size and not np.issubdtype(data.dtype, np.number):
        raise ValidationError(f"{what}: data must be +1 and -1, not {data.dtype}", what=what)
    bad = np.flatnonzero((data != 1) & (data != -1))
    if bad.size:
        index = int(bad[0])
        raise ValidationError(
            f"{what}: value {index} is {data[index].item()!r}; a mask holds only +1 (a trial "
            f"starts) and -1 (it ends)",
            what=what,
        )
    expected = np.where(np.arange(len(data)) % 2 == 0, 1, -1)
    wrong = np.flatnonzero(data != expected)
    if wrong.size:
        index = int(wrong[0])
        problem = (
            "a trial ends before any started"
            if data[index] == -1 and index == 0
            else "a trial ends twice"
            if data[index] == -1
            else f"a trial starts before the one started at value {index - 1} ended"
        )
        raise ValidationError(
            f"{what}: value {index} is {int(data[index]):+d}: {problem}; starts (+1) and ends "
            f"(-1) must alternate, starting with +1",
            what=what,
        )
    starts = int((data == 1).sum())
    if starts != len(data) - starts:
        ends = len(data) - starts
        raise ValidationError(
            f"{what}: {starts} trial starts but {ends} end{'s' if ends != 1 else ''}; the "
            f"last trial never ends, so add its end (-1)",
            what=what,
        )
    check_sorted(timestamps, what)
    return Events(
        data.astype(np.int8),
        timestamps.astype(np.float64),
        name=events.name,
        data_type="mask",
    )


def split_trials(events: Any, mask: Any) -> list[Events]:
    """Split events into trials: one ``(data, timestamps)`` per trial of the mask.

    A trial runs from a ``+1`` of the mask to the next ``-1``, both ends included, so an
    event at the very time one trial ends and the next starts is in both. Events outside
    every trial are in none; a trial without events gets empty arrays (of the events' dtype
    and row shape). Works for every data type: analog and digital values, interval edges,
    and kinematics rows.

    Parameters
    ----------
    events : (data, timestamps)
        A feature's events, e.g. ``trove.behaviour.events(eid, "LED_1")``. Timestamps
        must be sorted.
    mask : (data, timestamps)
        A mask, e.g. ``trove.behaviour.mask(eid, "trials")``.

    Returns
    -------
    list of Events
        One per trial, in order; each carries the events' name, data type and unit.

    Raises
    ------
    ValidationError
        For unsorted or mismatched events, or a mask that breaks the mask rules
        (see :func:`check_mask`).

    Examples
    --------
    >>> import numpy as np
    >>> position = (np.arange(10.0).reshape(5, 2), np.array([0.0, 1.0, 2.0, 3.0, 4.0]))
    >>> trials = split_trials(position, ([1, -1, 1, -1], [0.5, 2.0, 3.5, 3.9]))
    >>> [len(trial.data) for trial in trials]
    [2, 0]
    >>> trials[1].data.shape
    (0, 2)
    """
    found = as_events(events, "events")
    checked = check_mask(mask)
    data, timestamps = found
    check_sorted(timestamps, "events")
    starts = checked.timestamps[checked.data == 1]
    stops = checked.timestamps[checked.data == -1]
    first = np.searchsorted(timestamps, starts, side="left")
    last = np.searchsorted(timestamps, stops, side="right")
    return [
        Events(
            data[begin:end],
            timestamps[begin:end],
            name=found.name,
            data_type=found.data_type,
            unit=found.unit,
        )
        for begin, end in zip(first.tolist(), last.tolist(), strict=True)
    ]
