"""``trove ls EID_OR_PATH``: list a session's datasets."""

from __future__ import annotations

from typing import Annotated

import typer

from .base import SessionArgument, open_trove, session_argument
from .output import console, echo_json, frame_records, note, print_table

__all__ = ["DETAIL_COLUMNS", "ls"]

DETAIL_COLUMNS = ["rel_path", "file_size", "qc", "exists", "default_revision"]
"""The columns of ``trove ls --details`` (``--json`` gives them all)."""


def ls(
    ctx: typer.Context,
    session: SessionArgument,
    collection: Annotated[
        str | None,
        typer.Option(
            "--collection",
            "-c",
            metavar="COLLECTION",
            show_default=False,
            help="Only this collection (wildcards allowed; '' for the session folder).",
        ),
    ] = None,
    revision: Annotated[
        str | None,
        typer.Option(
            "--revision",
            "-r",
            metavar="REVISION",
            show_default=False,
            help="Only this revision (wildcards allowed).",
        ),
    ] = None,
    filename: Annotated[
        str | None,
        typer.Option(
            "--filename",
            "-f",
            metavar="PATTERN",
            show_default=False,
            help="Only file names matching this wildcard, e.g. '*trials*'.",
        ),
    ] = None,
    details: Annotated[
        bool,
        typer.Option(
            "--details", "-l", help="Show size, QC, presence on disk and default revision."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List a session's datasets as paths relative to its folder (CRITICAL QC left out)."""
    with open_trove(ctx, near=session, remote=True) as trove:
        listed = trove.list_datasets(
            session_argument(trove.root, session),
            collection=collection,
            revision=revision,
            filename=filename,
            details=details,
        )
    if as_json:
        echo_json(listed if isinstance(listed, list) else frame_records(listed))
        return
    if not len(listed):
        note("no datasets match")
    elif isinstance(listed, list):
        typer.echo("\n".join(listed))
    else:
        out = console()
        rows = [list(row) for row in listed[DETAIL_COLUMNS].itertuples(index=False)]
        if out.is_terminal:  # sizes for people; exact bytes in a pipe
            from rich.filesize import decimal

            for row in rows:
                row[1] = decimal(row[1])
        print_table(
            out, ["dataset", "size", "qc", "exists", "default"], rows, styles={"dataset": "cyan"}
        )
