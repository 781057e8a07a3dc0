"""``trove restore SOURCE``: replace the catalogue with a backup made by ``trove backup``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .base import open_trove
from .output import note

__all__ = ["restore"]


def restore(
    ctx: typer.Context,
    source: Annotated[Path, typer.Argument(help="The folder trove backup wrote.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Replace this trove's catalogue with the backup in SOURCE, in one transaction.

    Everything recorded since the backup is lost; the backup is verified first.
    """
    from ..backup import read_manifest

    manifest = read_manifest(source)
    with open_trove(ctx) as trove:
        if not yes:
            typer.confirm(
                f"Replace the catalogue of {trove.root} with the backup of "
                f"{manifest['created_at']}?",
                abort=True,
            )
        trove.restore(source)
    note(f"restored {source} ({manifest['created_at']}) into {manifest['dialect']} catalogue")
