"""Processing status, QC and batch runs: which sessions need which step, run it, keep the record.

``trove.pipeline`` is a :class:`Pipeline`. Steps are stored in the catalogue with what they
require, the files they write and which sessions they apply to; the status of each step for
each session (``pending``, ``running``, ``done``, ``failed``, ``skipped``) is a row of
``trove.table("step_status")``, with who ran it where and when, the output bytes, and the
error and traceback of a failure.

See :mod:`neurotrove.pipeline.interface` for a worked example.
"""

from __future__ import annotations

from ..catalog.pipeline_schema import STATUSES
from .interface import SUMMARY_COLUMNS, Pipeline
from .runner import DEFAULT_LEASE_S, RunReport, SessionRecord
from .steps import Step

__all__ = [
    "DEFAULT_LEASE_S",
    "STATUSES",
    "SUMMARY_COLUMNS",
    "Pipeline",
    "RunReport",
    "SessionRecord",
    "Step",
]
