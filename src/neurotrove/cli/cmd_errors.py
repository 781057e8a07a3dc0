"""``trove errors [STEP]``: why sessions failed a step, when, and on which machine."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .base import open_trove
from .output import cell_text, console, echo_json, frame_records, note, print_table

__all__ = ["errors"]


def errors(
    ctx: typer.Context,
    step: Annotated[
        str | None,
        typer.Argument(
            metavar="[STEP]", show_default=False, help="The step (default: every step)."
        ),
    ] = None,
    show_traceback: Annotated[
        bool, typer.Option("--traceback", help="Show each failure's traceback.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (tracebacks included).")
    ] = False,
) -> None:
    """List the sessions that failed: the error, when it happened and on which host.

    Run them again with trove run STEP MODULE:FUNCTION --retry-errors.
    """
    with open_trove(ctx, remote=True) as trove:
        frame = trove.pipeline.errors(step)
    if as_json:
        echo_json(frame_records(frame))
        return
    if frame.empty:
        note(f"no session failed {step}" if step else "no session failed any step")
        return
    records = frame_records(frame)
    if show_traceback:
        _print_tracebacks(records)
        return
    rows = [
        [_session(r), r["step"], _error(r), _when(r), r["host"], r["attempts"]] for r in records
    ]
    columns = ["session", "step", "error", "when (UTC)", "where", "attempts"]
    print_table(console(), columns, rows, styles={"session": "bold"})
    note(f"{len(rows)} failed; --traceback shows where; trove run --retry-errors runs them again")


def _session(record: dict[str, Any]) -> str:
    return f"{record['subject']}/{cell_text(record['date'])}/{int(record['number']):03d}"


def _when(record: dict[str, Any]) -> str:
    """When the failure was recorded, to the second (the catalogue keeps UTC)."""
    return cell_text(record["finished_at"])[:19].replace("T", " ")


def _error(record: dict[str, Any]) -> str:
    kind, message = record["error_type"] or "", record["error_message"] or ""
    return f"{kind}: {message}" if kind and message else kind or message


def _print_tracebacks(records: list[dict[str, Any]]) -> None:
    from rich.text import Text

    out = console()
    for index, record in enumerate(records):
        if index:
            out.print()
        out.print(
            Text.assemble(
                (f"{_session(record)} {record['step']}", "bold"),
                f" at {_when(record)} UTC on {record['host']}: {_error(record)}",
            )
        )
        out.print(Text((record["traceback"] or "(no traceback recorded)").rstrip()))
