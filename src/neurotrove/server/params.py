"""The parameters routes share, described once so the OpenAPI document says what is accepted.

Each is a type for a route's signature (``session: SessionRef = None``) whose pattern the
server enforces, so the description cannot drift from the checks. A pattern cannot say
everything: 29 February passes in every year, and the server refuses it in the others.

Examples
--------
>>> import re
>>> bool(re.match(EID_PATTERN, "KS005/2019-04-01/001")), bool(re.match(EID_PATTERN, "KS005"))
(True, False)
>>> bool(re.match(DATE_RANGE_PATTERN, "2020-02-29,")), bool(re.match(DATE_RANGE_PATTERN, ""))
(True, False)
>>> bool(re.match(QC_PATTERN, "pass")), bool(re.match(QC_PATTERN, "40"))
(True, True)
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Query

from ..qc import QC

__all__ = [
    "DATE_RANGE_PATTERN",
    "EID_PATTERN",
    "MAX_LIMIT",
    "MD5_PATTERN",
    "QC_PATTERN",
    "UPLOAD_PATTERN",
    "ContentMD5",
    "DateRange",
    "Limit",
    "Offset",
    "QCFilter",
    "QCLimit",
    "SessionRef",
]

MAX_LIMIT = 10_000
"""The most rows one page of a list holds."""

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# A calendar date; 29 February is allowed in every year (the server checks leap years).
_DATE = (
    r"[1-9][0-9]{3}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    r"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|[12][0-9]))"
)
_SESSION = rf"(?:.*/)?(?:\w+/Subjects/)?[\w.-]+/{_DATE}/[0-9]{{1,3}}(?:/.*)?"

EID_PATTERN = rf"^(?:{_UUID}|{_SESSION})$"
"""A session: its eid, or a path holding its folder (``[lab/Subjects/]subject/date/NNN``)."""

DATE_RANGE_PATTERN = rf"^(?:{_DATE}|(?:{_DATE})?,(?:{_DATE})?)$"
"""``DAY``, or ``START,END`` with either left empty."""


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in word)


QC_PATTERN = (
    r"^\s*(?:"
    + "|".join([*(_any_case(q.name) for q in QC), *(f"0*{q.value}" for q in QC)])
    + r")\s*$"
)
"""A QC outcome by name (any case) or number."""

UPLOAD_PATTERN = r"^[0-9a-f]{32}$"
"""An upload's id, as ``POST /uploads`` answers it."""

MD5_PATTERN = r"^\s*[0-9a-fA-F]{32}\s*$"
"""An md5 digest in hex."""

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Rows per page.")]
MAX_OFFSET = 2**63 - 1
"""The largest offset a database takes (a signed 64-bit integer), documented as the maximum."""

Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Rows to skip.")]
SessionRef = Annotated[
    str | None,
    Query(
        pattern=EID_PATTERN,
        description="A session: its eid, or a path holding its folder "
        "([lab/Subjects/]subject/YYYY-MM-DD/NNN).",
    ),
]
DateRange = Annotated[
    str | None,
    Query(
        pattern=DATE_RANGE_PATTERN,
        description="DAY, or START,END (either may be empty); dates are YYYY-MM-DD.",
    ),
]
QCLimit = Annotated[
    str,
    Query(pattern=QC_PATTERN, description="Only datasets at or below this QC (name or number)."),
]
QCFilter = Annotated[
    str | None,
    Query(pattern=QC_PATTERN, description="Only sessions with a dataset at or below this QC."),
]
ContentMD5 = Annotated[
    str,
    Header(alias="Content-MD5", pattern=MD5_PATTERN, description="The file's md5, 32 hex digits."),
]
