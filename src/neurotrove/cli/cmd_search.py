"""``trove search``: find sessions, as a table or as JSON."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ..errors import ValidationError
from .base import open_trove
from .output import console, echo_json, frame_records, note, print_table

__all__ = ["COLUMNS", "date_range", "search"]

COLUMNS = ["lab", "subject", "date", "number", "task_protocol", "projects", "qc"]
"""The session columns of the table (after the eid), then the lab's own columns;
``--json`` gives them all."""


def date_range(text: str | None, start: str | None, end: str | None) -> Any:
    """Build ``search``'s ``date_range`` from ``--date-range START[,END]`` or ``--from/--to``.

    Examples
    --------
    >>> date_range("2019-04-01", None, None)
    '2019-04-01'
    >>> date_range("2019-04-01,", None, None), date_range(None, None, "2019-04-03")
    (['2019-04-01', None], [None, '2019-04-03'])
    """
    if text is not None:
        if start is not None or end is not None:
            raise ValidationError(
                "give --date-range or --from/--to, not both", filter="date_range"
            )
        parts = [part.strip() for part in text.split(",")]
        if len(parts) > 2 or not any(parts):
            raise ValidationError(
                f"--date-range {text!r} must be DAY, START,END, START, or ,END (dates as "
                f"YYYY-MM-DD)",
                filter="date_range",
            )
        if len(parts) == 1:
            return parts[0]
        return [parts[0] or None, parts[1] or None]
    if start is None and end is None:
        return None
    return [start, end]


def search(
    ctx: typer.Context,
    subject: Annotated[
        list[str] | None,
        typer.Option(
            "--subject",
            "-s",
            metavar="REGEX",
            show_default=False,
            help="Subject nickname (a regex; repeat for any of).",
        ),
    ] = None,
    lab: Annotated[
        list[str] | None,
        typer.Option(
            "--lab", metavar="REGEX", show_default=False, help="Lab (a regex; repeat for any of)."
        ),
    ] = None,
    projects: Annotated[
        list[str] | None,
        typer.Option(
            "--project",
            "--projects",
            metavar="REGEX",
            show_default=False,
            help="Project (a regex).",
        ),
    ] = None,
    task_protocol: Annotated[
        list[str] | None,
        typer.Option(
            "--task-protocol", metavar="REGEX", show_default=False, help="Task protocol (a regex)."
        ),
    ] = None,
    location: Annotated[
        list[str] | None,
        typer.Option(
            "--location", metavar="REGEX", show_default=False, help="Location (a regex)."
        ),
    ] = None,
    users: Annotated[
        list[str] | None,
        typer.Option(
            "--user", "--users", metavar="REGEX", show_default=False, help="User (a regex)."
        ),
    ] = None,
    range_: Annotated[
        str | None,
        typer.Option(
            "--date-range",
            metavar="START[,END]",
            show_default=False,
            help="One day, or an inclusive range; either end may be left out.",
        ),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            "--from", metavar="DATE", show_default=False, help="Sessions on or after DATE."
        ),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(
            "--to", metavar="DATE", show_default=False, help="Sessions on or before DATE."
        ),
    ] = None,
    number: Annotated[
        list[int] | None,
        typer.Option(
            "--number",
            "-n",
            metavar="N",
            show_default=False,
            help="Session number (repeat for any of).",
        ),
    ] = None,
    dataset: Annotated[
        list[str] | None,
        typer.Option(
            "--dataset",
            metavar="REGEX",
            show_default=False,
            help="A regex searched in dataset paths; the session needs every one given.",
        ),
    ] = None,
    datasets: Annotated[
        list[str] | None,
        typer.Option(
            "--datasets",
            metavar="REGEX",
            show_default=False,
            help="A regex matching whole file names; the session needs every one given.",
        ),
    ] = None,
    qc: Annotated[
        str | None,
        typer.Option(
            "--dataset-qc-lte",
            metavar="QC",
            show_default=False,
            help="Count only datasets at or below this QC (PASS, WARNING, FAIL...).",
        ),
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option(
            "--tag",
            metavar="TAG",
            show_default=False,
            help="Only sessions with datasets carrying the tag (a release's name works too).",
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            metavar="N",
            min=0,
            show_default=False,
            help="Show at most this many sessions.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON records.")] = False,
) -> None:
    """Find sessions, newest first. Text filters are regular expressions, as in ONE."""
    # Long on purpose: each filter of search() is an option here, as --help lists them.
    filters: dict[str, Any] = {
        "subject": subject,
        "lab": lab,
        "projects": projects,
        "task_protocol": task_protocol,
        "location": location,
        "users": users,
        "number": number,
        "dataset": dataset,
        "datasets": datasets,
        "dataset_qc_lte": qc,
        "date_range": date_range(range_, start, end),
        "tag": tag,
    }
    with open_trove(ctx, remote=True) as trove:
        found = trove.search(**{k: v for k, v in filters.items() if v not in (None, [])})
        info = trove.table("sessions").column_info()
    shown = [*COLUMNS, *info.index[info["lab"]]]  # and the lab's own columns
    total = len(found)
    if limit is not None:
        found = found.head(limit)
    if as_json:
        echo_json(frame_records(found))
    elif total:
        rows = ([eid, *(row[c] for c in shown)] for eid, row in found.iterrows())
        print_table(console(), ["eid", *shown], rows, styles={"eid": "cyan"})
    if total > len(found):
        note(f"showing {len(found)} of {total} sessions; raise --limit to see more")
    elif not total and not as_json:
        note("no sessions match")
