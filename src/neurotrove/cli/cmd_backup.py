"""``trove backup DEST``: a verified copy of the catalogue, taken while the trove is in use."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .base import open_trove
from .output import console, echo_json, print_table

__all__ = ["backup"]


def backup(
    ctx: typer.Context,
    dest: Annotated[Path, typer.Argument(help="A new folder for the backup.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the backup's folder and manifest as JSON.")
    ] = False,
) -> None:
    """Back up the catalogue to DEST (SQLite online backup, or pg_dump), verified by opening it.

    Data files are not copied: keep them on backed-up storage. Restore with trove restore.
    """
    from ..backup import read_manifest

    with open_trove(ctx) as trove:
        folder = trove.backup(dest)
    manifest = read_manifest(folder)
    if as_json:
        echo_json({"folder": str(folder), **manifest})
        return
    rows = [("backup", str(folder)), ("catalogue", manifest["source"])]
    rows.append(("schema", str(manifest.get("revision"))))
    if "rows" in manifest:
        counts = manifest["rows"]
        rows.append(("rows", ", ".join(f"{counts[k]} {k}" for k in ("sessions", "datasets"))))
    print_table(console(), ["what", "value"], rows, header=False, styles={"what": "bold"})
