"""``trove export-one DIR`` and ``trove import-one DIR``: ONE's cache tables, out and in."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .base import open_trove
from .output import console, echo_json

__all__ = ["export_one", "import_one"]


def export_one(
    ctx: typer.Context,
    directory: Annotated[
        Path,
        typer.Argument(
            metavar="DIR",
            help="Where to write sessions.pqt, datasets.pqt and cache_info.json (created if "
            "missing); the data root lets One(cache_dir=ROOT, mode='local') find the files too.",
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Write the catalogue as ONE-compatible cache tables (sessions.pqt, datasets.pqt)."""
    import json

    with open_trove(ctx) as trove:
        folder = trove.export_one(directory)
    info = json.loads((folder / "cache_info.json").read_text())
    if as_json:
        echo_json({"folder": str(folder), **info})
        return
    tables = info["tables"]
    console().print(
        f"[green]Wrote[/green] {tables['sessions']['nrecs']} sessions and "
        f"{tables['datasets']['nrecs']} datasets to {folder}; read them with "
        f"one.api.One(cache_dir={str(folder)!r}, mode='local')"
    )


def import_one(
    ctx: typer.Context,
    directory: Annotated[
        Path,
        typer.Argument(
            metavar="TABLES_DIR", help="The folder of a ONE cache (sessions.pqt, datasets.pqt)."
        ),
    ],
    files_at: Annotated[
        str | None,
        typer.Option(
            "--files-at",
            metavar="URL",
            show_default=False,
            help="Where the files are, for a cache without them: an HTTP data server "
            "(ONE's HTTP_DATA_SERVER) or s3://bucket/prefix; they are loaded on demand.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Import a ONE cache's sessions and datasets into the trove, all or nothing."""
    with open_trove(ctx) as trove:
        report = trove.import_one(
            directory, progress=None if not as_json else False, files_at=files_at
        )
    if as_json:
        echo_json(
            {
                "sessions_added": report.sessions_added,
                "sessions_existing": report.sessions_existing,
                "datasets_written": report.datasets_written,
                "datasets_missing": report.datasets_missing,
                "ids_replaced": report.ids_replaced,
                "skipped": report.skipped_count,
                "seconds": round(report.seconds, 3),
            }
        )
        return
    console().print(str(report), markup=False, highlight=False)
