"""Plain JSON values from catalogue records and DataFrames, for the CLI and the server.

Examples
--------
>>> import datetime as dt
>>> to_jsonable({"date": dt.date(2019, 4, 1), "qc": float("nan"), "projects": ("ibl",)})
{'date': '2019-04-01', 'qc': None, 'projects': ['ibl']}
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Mapping
from enum import Enum
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, TypeGuard

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["frame_records", "is_dataframe", "is_missing", "to_jsonable"]


def is_dataframe(value: Any) -> TypeGuard[pd.DataFrame]:
    """Whether ``value`` is a pandas DataFrame, without importing pandas to find out.

    Examples
    --------
    >>> import pandas as pd
    >>> is_dataframe(pd.DataFrame()), is_dataframe({"a": [1]})
    (True, False)
    """
    kind = type(value)
    return any(
        c.__name__ == "DataFrame" and c.__module__.partition(".")[0] == "pandas"
        for c in kind.__mro__
    )


def is_missing(value: Any) -> bool:
    """Whether a scalar is a missing value (None, NaN, NaT, pandas.NA)."""
    if value is None:
        return True
    try:
        return bool(value != value)
    except (TypeError, ValueError):
        return True


def to_jsonable(value: Any) -> Any:
    """Turn a value from a DataFrame or a dict of details into plain JSON types.

    Dates become ISO strings, missing values (NaN, NaT) ``None``, numpy values Python ones.
    """
    if isinstance(value, Enum):
        return value.name
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(item) for item in value]
    if isinstance(value, dt.date | dt.time):
        return None if is_missing(value) else value.isoformat()
    if isinstance(value, uuid.UUID | PurePath):
        return str(value)
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return to_jsonable(value.tolist())
    if is_missing(value):
        return None
    return str(value)


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Return the rows of a DataFrame as dicts, its index (``eid``, ``id``) as the first key."""
    name = str(frame.index.name or "index")
    rows = frame.to_dict("records")
    return [
        {name: key, **{str(column): value for column, value in row.items()}}
        for key, row in zip(frame.index, rows, strict=True)
    ]
