"""``trove export-allen DIR``: write the ephys tables as an Allen project cache."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .base import open_trove
from .output import console, echo_json

__all__ = ["export_allen"]


def export_allen(
    ctx: typer.Context,
    directory: Annotated[
        Path,
        typer.Argument(
            metavar="DIR",
            help="Where to write manifest.json, sessions.csv, probes.csv, channels.csv "
            "and units.csv (created if missing).",
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Write probes, channels and units as a cache AllenSDK's EcephysProjectCache.fixed reads."""
    from rich.text import Text

    with open_trove(ctx) as trove:
        manifest = trove.ephys.export_allen(directory)
        sessions = len(trove.ephys.get_session_table())
    if as_json:
        echo_json({"manifest": str(manifest), "sessions": sessions})
        return
    console().print(
        Text.assemble(
            ("Wrote", "green"),
            f" an Allen project cache of {sessions} sessions to {manifest.parent}; read it "
            f"with EcephysProjectCache.fixed(manifest={str(manifest)!r})",
        )
    )
