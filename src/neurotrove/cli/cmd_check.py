"""``trove check STEP [--fix]``: compare a step's status with its output files on disk."""

from __future__ import annotations

from typing import Annotated

import typer

from .base import open_trove
from .output import console, echo_json, frame_records, note, print_table

__all__ = ["check"]


def check(
    ctx: typer.Context,
    step: Annotated[str, typer.Argument(help="The step to check.")],
    fix: Annotated[
        bool,
        typer.Option(
            "--fix", help="Correct the statuses (dates from the files' modification times)."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List sessions marked done whose outputs are missing, and outputs on disk not done."""
    with open_trove(ctx, remote=not fix) as trove:
        frame = trove.pipeline.check(step, fix=fix)
    if as_json:
        echo_json(frame_records(frame))
        return
    if frame.empty:
        note(f"{step}: the status of every session agrees with the files on disk")
        return
    rows = [
        [
            f"{r['subject']}/{r['date']}/{int(r['number']):03d}",
            r["status"],
            r["problem"],
            r["files"],
            "yes" if r["fixed"] else "no",
        ]
        for _, r in frame.iterrows()
    ]
    print_table(console(), ["session", "status", "problem", "files", "fixed"], rows)
    if not fix:
        note(f"{len(frame)} discrepancies; trove check {step} --fix corrects them")
