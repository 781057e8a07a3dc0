"""Analysis functions: a lab's own code, run over sessions, its results kept with provenance.

An analysis is a function in the lab's analysis folder, declared with :func:`analysis`
(what it reads from a session and what it gives back) and run by name with
``trove.analysis.run("script.function", ...)`` (:class:`Analyses`). Results are datasets
of the session, or rows of the results table, stored with the code's hash, the inputs'
dataset ids, revisions and md5s, the parameters, who ran it and when; they are reused while
code and inputs stay the same.

See :mod:`neurotrove.analysis.interface` for a worked example.
"""

from __future__ import annotations

from .declare import (
    AnalysisDefinition,
    DatasetInput,
    DatasetOutput,
    ObjectInput,
    RowsOutput,
    TableInput,
    alf_object,
    analysis,
    dataset,
    rows,
    table,
)
from .interface import LIST_COLUMNS, Analyses
from .runs import REPORT_COLUMNS

__all__ = [
    "LIST_COLUMNS",
    "REPORT_COLUMNS",
    "Analyses",
    "AnalysisDefinition",
    "DatasetInput",
    "DatasetOutput",
    "ObjectInput",
    "RowsOutput",
    "TableInput",
    "alf_object",
    "analysis",
    "dataset",
    "rows",
    "table",
]
