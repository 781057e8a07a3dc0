r"""Declaring an analysis: the ``@analysis`` decorator, its inputs and outputs, and loading.

An analysis is a function in the lab's analysis folder (``NEUROTROVE_ANALYSIS_DIR``,
``analysis_dir`` in ``config.toml``, or ``trove.analysis.analysis_dir``), found by its
``script.function`` name as mask functions are. The decorator says what it reads from a
session and what it gives back; the function itself is plain Python that a scientist can
call by hand::

    from neurotrove.analysis import analysis, rows, table

    @analysis(
        inputs={"times": "spikes.times", "clusters": "spikes.clusters"},
        outputs={"rates": "clusters.firingRate.npy", "summary": rows("units", "mean_rate")},
    )
    def firing_rates(times, clusters, window=1.0):
        ...
        return {"rates": rates, "summary": {"units": len(rates), "mean_rate": rates.mean()}}

Inputs name the function's parameters: a string is a dataset of the session, as
:meth:`~neurotrove.Trove.load_dataset` takes it (``"spikes.times"``, ``"alf/spikes.times.npy"``);
:func:`dataset` adds a collection or revision; :func:`alf_object` gives every attribute
of an ALF object (``spikes``) as ``load_object`` does; :func:`table` gives the session's rows of a
catalogue table (``units``, ``probes``, ``masks``) as a DataFrame. A parameter named
``session`` gets the session's details. Every other parameter is a parameter of the
analysis (``run(..., params={"window": 0.5})``). Outputs are dataset file names (written in
collection ``analysis`` unless they name one) or :func:`rows` of the results table.

Examples
--------
>>> import numpy as np
>>> @analysis(inputs={"times": "spikes.times"}, outputs={"count": "spikes.count.npy"})
... def count(times, scale=1):
...     return np.array([len(times) * scale])
>>> count.analysis.inputs["times"].name, count.analysis.outputs["count"].rel_path
('spikes.times', 'analysis/spikes.count.npy')
>>> count(np.zeros(3), scale=2).tolist()  # still a plain function
[6]
>>> count.analysis.params
{'scale': 1}
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .. import alf
from ..errors import ValidationError

__all__ = [
    "AnalysisDefinition",
    "DatasetInput",
    "DatasetOutput",
    "LoadedAnalysis",
    "ObjectInput",
    "RowsOutput",
    "TableInput",
    "alf_object",
    "analysis",
    "dataset",
    "load_analysis",
    "rows",
    "table",
]

F = TypeVar("F", bound=Callable[..., Any])

SESSION_PARAMETER = "session"
"""A parameter of this name gets the session's details (``trove.get_details(eid)``)."""

WRITABLE_EXTENSIONS = ("npy", "pqt", "parquet", "csv", "tsv", "json")
"""The file types an analysis's dataset outputs may have."""


@dataclass(frozen=True)
class DatasetInput:
    """A dataset of the session, loaded as :meth:`~neurotrove.Trove.load_dataset` does.

    Attributes
    ----------
    name : str
        ``object.attribute``, a file name, or a path relative to the session.
    collection, revision : str or None
        As in ``load_dataset``.
    """

    name: str
    collection: str | None = None
    revision: str | None = None

    def describe(self) -> str:
        """Say which dataset this is, for messages."""
        where = f" in collection {self.collection!r}" if self.collection is not None else ""
        return f"dataset {self.name!r}{where}"


@dataclass(frozen=True)
class ObjectInput:
    """Every attribute of an ALF object of the session, as :meth:`~neurotrove.Trove.load_object`.

    Attributes
    ----------
    name : str
        The object (``"spikes"``).
    collection, revision : str or None
        As in ``load_object``.
    """

    name: str
    collection: str | None = None
    revision: str | None = None

    def describe(self) -> str:
        """Say which object this is, for messages."""
        where = f" in collection {self.collection!r}" if self.collection is not None else ""
        return f"ALF object {self.name!r}{where}"


@dataclass(frozen=True)
class TableInput:
    """The session's rows of a catalogue table, as a DataFrame.

    Attributes
    ----------
    name : str
        The table (``trove.table(name)``), one with an ``eid`` column.
    """

    name: str

    def describe(self) -> str:
        """Say which table this is, for messages."""
        return f"table {self.name!r}"


@dataclass(frozen=True)
class DatasetOutput:
    """A file the analysis writes as a dataset of the session.

    Attributes
    ----------
    rel_path : str
        Where it goes in the session: ``collection/name.ext``.
    """

    rel_path: str

    @property
    def extension(self) -> str:
        """The file type (``npy``, ``pqt``, ``json`` ...)."""
        return self.rel_path.rpartition(".")[2]


@dataclass(frozen=True)
class RowsOutput:
    """Rows of the results table (``trove.analysis.results(name)``).

    Attributes
    ----------
    columns : tuple of str
        The columns every row must have; empty: any.
    """

    columns: tuple[str, ...] = ()


Input = DatasetInput | ObjectInput | TableInput
Output = DatasetOutput | RowsOutput


def dataset(
    name: str, *, collection: str | None = None, revision: str | None = None
) -> DatasetInput:
    """Declare a dataset input with its collection or revision.

    Examples
    --------
    >>> dataset("spikes.times", collection="alf/probe00").describe()
    "dataset 'spikes.times' in collection 'alf/probe00'"
    """
    for label, value in (("name", name), ("collection", collection), ("revision", revision)):
        if value is not None and (not isinstance(value, str) or not value):
            raise ValidationError(f"dataset {label} must be non-empty text, not {value!r}")
    return DatasetInput(name, collection, revision)


def alf_object(
    name: str, *, collection: str | None = None, revision: str | None = None
) -> ObjectInput:
    """Declare an ALF object input: all its attributes, as an ``AlfObject`` (a dict).

    Examples
    --------
    >>> alf_object("spikes", collection="alf/probe00").describe()
    "ALF object 'spikes' in collection 'alf/probe00'"
    """
    for label, value in (("name", name), ("collection", collection), ("revision", revision)):
        if value is not None and (not isinstance(value, str) or not value):
            raise ValidationError(f"object {label} must be non-empty text, not {value!r}")
    return ObjectInput(name, collection, revision)


def table(name: str) -> TableInput:
    """Declare a table input: the session's rows of ``trove.table(name)``.

    Examples
    --------
    >>> table("units").describe()
    "table 'units'"
    """
    if not isinstance(name, str) or not name:
        raise ValidationError(f"table name must be non-empty text, not {name!r}")
    return TableInput(name)


def rows(*columns: str) -> RowsOutput:
    """Declare an output stored as rows of the results table.

    The function gives a dict (one row), a list of dicts, or a DataFrame. With ``columns``,
    every row must have exactly those.

    Examples
    --------
    >>> rows("units", "mean_rate").columns
    ('units', 'mean_rate')
    """
    for column in columns:
        if not isinstance(column, str) or not column:
            raise ValidationError(f"rows() takes column names, not {column!r}")
    return RowsOutput(tuple(columns))


@dataclass(frozen=True)
class AnalysisDefinition:
    """What ``@analysis`` declared about a function.

    Attributes
    ----------
    inputs : dict of str to DatasetInput or TableInput
        By parameter name.
    outputs : dict of str to DatasetOutput or RowsOutput
        By the key the function returns them under.
    params : dict
        The other parameters and their defaults (``inspect.Parameter.empty``: required).
    wants_session : bool
        Whether the function takes ``session``.
    description : str
        The first line of the function's docstring.
    """

    inputs: dict[str, Input]
    outputs: dict[str, Output]
    params: dict[str, Any]
    wants_session: bool
    description: str = ""


def _as_input(name: str, spec: Any) -> Input:
    if isinstance(spec, str):
        return dataset(spec)
    if isinstance(spec, DatasetInput | ObjectInput | TableInput):
        return spec
    raise ValidationError(
        f"input {name!r}: {spec!r} is not an input; give a dataset name ('spikes.times'), "
        f"dataset(name, collection=...), alf_object(name) or table(name)",
        input=name,
    )


def _as_output(name: str, spec: Any, collection: str) -> Output:
    if isinstance(spec, RowsOutput):
        return spec
    if not isinstance(spec, str):
        raise ValidationError(
            f"output {name!r}: {spec!r} is not an output; give a dataset file name "
            f"('clusters.firingRate.npy') or rows(...)",
            output=name,
        )
    rel_path = spec if "/" in spec else f"{collection}/{spec}" if collection else spec
    try:
        parsed = alf.parse_rel_path(rel_path)
    except ValidationError as error:
        raise ValidationError(
            f"output {name!r}: {spec!r} is not an ALF file name ({error.message}); name it "
            f"object.attribute.ext, e.g. clusters.firingRate.npy",
            output=name,
        ) from None
    if parsed.name.extension not in WRITABLE_EXTENSIONS:
        raise ValidationError(
            f"output {name!r}: cannot write .{parsed.name.extension} files; use one of "
            f"{', '.join('.' + e for e in WRITABLE_EXTENSIONS)}",
            output=name,
        )
    return DatasetOutput(str(parsed))


def analysis(
    *,
    inputs: Mapping[str, str | Input],
    outputs: Mapping[str, str | RowsOutput],
    collection: str = "analysis",
) -> Callable[[F], F]:
    """Declare a function an analysis: what it reads from a session and what it gives back.

    Parameters
    ----------
    inputs : dict
        Parameter name to a dataset name (``"spikes.times"``), :func:`dataset`,
        :func:`alf_object` or :func:`table`.
    outputs : dict
        Name to a dataset file name (``"clusters.firingRate.npy"``, put in ``collection``
        unless it has a ``collection/``) or :func:`rows`. The function returns a dict with
        these keys (or, with one output, the value itself).
    collection : str
        Where dataset outputs go in the session.

    Returns
    -------
    callable
        A decorator; the function is unchanged, with its declaration in ``func.analysis``.

    Raises
    ------
    ValidationError
        When an input is not a parameter of the function, a required parameter is neither
        an input nor ``session``, or an output cannot be written.

    Examples
    --------
    >>> @analysis(inputs={"trials": "trials.table"}, outputs={"summary": rows("n")})
    ... def n_trials(trials, session):
    ...     return {"n": len(trials)}
    >>> n_trials.analysis.wants_session, n_trials.analysis.params
    (True, {})
    """
    if not isinstance(inputs, Mapping) or not isinstance(outputs, Mapping) or not outputs:
        raise ValidationError(
            "@analysis needs inputs={...} and at least one output in outputs={...}"
        )
    declared_inputs = {str(k): _as_input(str(k), v) for k, v in inputs.items()}
    declared_outputs = {str(k): _as_output(str(k), v, collection) for k, v in outputs.items()}
    paths = [o.rel_path for o in declared_outputs.values() if isinstance(o, DatasetOutput)]
    if len(set(paths)) != len(paths):
        raise ValidationError(f"two outputs are the same file: {sorted(paths)}")

    def decorate(func: F) -> F:
        if not callable(func):
            raise ValidationError(f"@analysis decorates a function, not {func!r}")
        signature = inspect.signature(func)
        parameters = signature.parameters
        name = getattr(func, "__qualname__", repr(func))
        for key in declared_inputs:
            if key not in parameters:
                raise ValidationError(
                    f"analysis {name}: input {key!r} is not a parameter of the function; "
                    f"its parameters are {', '.join(parameters) or 'none'}",
                    input=key,
                )
        params: dict[str, Any] = {}
        for key, parameter in parameters.items():
            if key in declared_inputs or key == SESSION_PARAMETER:
                continue
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                continue
            params[key] = parameter.default
        doc = inspect.getdoc(func) or ""
        func.analysis = AnalysisDefinition(  # type: ignore[attr-defined]
            declared_inputs,
            declared_outputs,
            params,
            SESSION_PARAMETER in parameters,
            doc.strip().splitlines()[0] if doc.strip() else "",
        )
        return func

    return decorate


@dataclass(frozen=True)
class LoadedAnalysis:
    """An analysis function loaded by name, with its declaration and the hash of its code.

    Attributes
    ----------
    name : str
        ``script.function``.
    func : callable
        The function.
    definition : AnalysisDefinition
        What it declared.
    code_hash : str
        sha256 of the sources it was loaded from: its script and the analysis folder's
        modules the script imports (an edit to any of them changes the hash).
    sources : tuple of Path
        Those source files.
    """

    name: str
    func: Callable[..., Any] = field(repr=False)
    definition: AnalysisDefinition
    code_hash: str
    sources: tuple[Path, ...] = ()


def code_hash(sources: Sequence[Path], folder: Path | None) -> str:
    """Return the sha256 of source files, each named relative to ``folder`` when inside it."""
    digest = hashlib.sha256()
    base = folder.resolve() if folder is not None else None
    for path in sorted({p.resolve() for p in sources}):
        label = (
            path.relative_to(base).as_posix() if base and path.is_relative_to(base) else path.name
        )
        digest.update(label.encode() + b"\0")
        try:
            digest.update(path.read_bytes())
        except OSError:  # a compiled module: its name stands for it
            digest.update(b"?")
        digest.update(b"\0")
    return digest.hexdigest()


def load_analysis(name: str, folder: Path | None) -> LoadedAnalysis:
    """Load analysis ``script.function`` from the analysis folder, reading it afresh.

    Raises
    ------
    ValidationError
        When the name is malformed, the script cannot be imported, has no such function, or
        the function is not declared with ``@analysis``; the message says what to do.
    """
    from ..behaviour.masks import load_function  # the lab-folder import machinery

    sources: list[Path] = []
    func = load_function(
        name,
        folder,
        kind="analysis",
        define="def {attribute}(...) with @neurotrove.analysis.analysis(inputs=..., outputs=...)",
        sources=sources,
    )
    definition = getattr(func, "analysis", None)
    if not isinstance(definition, AnalysisDefinition):
        raise ValidationError(
            f"{name} is a function but not an analysis: declare what it reads and gives back "
            f"with @analysis(inputs=..., outputs=...) from neurotrove.analysis",
            analysis=name,
        )
    return LoadedAnalysis(name, func, definition, code_hash(sources, folder), tuple(sources))


def analysis_names(folder: Path) -> list[tuple[str, str | None]]:
    """Return ``(script.function, problem)`` for every analysis in the folder's scripts.

    A script that cannot be imported is listed as ``(script, what is wrong)``, so one broken
    script does not hide the others.
    """
    from ..behaviour.masks import load_module

    found: list[tuple[str, str | None]] = []
    for script in sorted(folder.glob("*.py")):
        module = script.stem
        if not module.isidentifier() or module.startswith("_"):
            continue
        try:
            loaded = load_module(module, folder, kind="analysis")
        except ValidationError as error:
            found.append((module, error.message))
            continue
        for attribute, value in sorted(vars(loaded).items()):
            declared = isinstance(getattr(value, "analysis", None), AnalysisDefinition)
            if declared and getattr(value, "__module__", module) == module:
                found.append((f"{module}.{attribute}", None))
    return found
