"""``trove status [STEP...]``: a table of the pipeline steps by the state of their sessions."""

from __future__ import annotations

from typing import Annotated

import typer

from .base import open_trove
from .output import console, echo_json, frame_records, note, print_table

__all__ = ["status"]


def status(
    ctx: typer.Context,
    steps: Annotated[
        list[str] | None,
        typer.Argument(metavar="[STEP]...", show_default=False, help="Steps (default: all)."),
    ] = None,
    everything: Annotated[
        bool,
        typer.Option("--all", help="Count every session, ignoring default session conditions."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Count, for each step, the sessions pending, running, done, failed and skipped.

    'pending' sessions can run now; 'waiting' ones need a required step first; 'stale' ones
    were claimed by a runner that stopped (the next trove run takes them over).
    """
    from ..pipeline.runner import format_bytes

    with open_trove(ctx, remote=True) as trove:
        frame = trove.pipeline.status(steps or None, use_defaults=not everything)
    if as_json:
        echo_json(frame_records(frame))
        return
    if frame.empty:
        note("no pipeline steps yet; add one with trove step add NAME")
        return
    columns = ["step", "pending", "waiting", "running", "stale", "done", "failed", "skipped"]
    rows = [
        [
            f"{step}{' (manual)' if row['manual'] else ''}",
            *(row[c] for c in columns[1:]),
            format_bytes(row["output_bytes"]),
        ]
        for step, row in frame.iterrows()
    ]
    print_table(console(), [*columns, "output"], rows, styles={"step": "bold"})
