"""``trove insert-nwb EID_OR_PATH FILE --rig NAME``: a session's behaviour from its NWB file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .base import SessionArgument, open_trove, session_argument
from .cmd_rig import AnalysisOption
from .output import console, echo_json, frame_records, print_table

__all__ = ["insert_nwb"]


def insert_nwb(
    ctx: typer.Context,
    session: SessionArgument,
    nwb_file: Annotated[Path, typer.Argument(metavar="FILE", help="The session's NWB file.")],
    rig: Annotated[str, typer.Option("--rig", help="The rig it was recorded in.")],
    animals: Annotated[
        list[str] | None,
        typer.Option(
            "--animal",
            metavar="SUBJECT",
            show_default=False,
            help="A subject in the rig, animal 1 first (default: the session's subject).",
        ),
    ] = None,
    analysis_dir: AnalysisOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Insert a session's features, videos and masks from its NWB file, all or nothing."""
    with open_trove(ctx, session) as trove:
        if analysis_dir is not None:
            trove.behaviour.analysis_dir = analysis_dir
        frame = trove.behaviour.insert_nwb(
            session_argument(trove.root, session), animals or None, nwb_file, rig
        )
    if as_json:
        echo_json(frame_records(frame))
        return
    columns = ["kind", "name", "data_type", "animal_subject", "trials", "data_path"]
    rows = [[row[c] for c in columns] for _, row in frame.iterrows()]
    print_table(console(), columns, rows, styles={"name": "bold"})
