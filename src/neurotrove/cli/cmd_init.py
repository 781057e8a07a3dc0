"""``trove init [DIR]``: make a folder a trove, with its catalogue and settings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .base import options
from .output import console

__all__ = ["init"]


def init(
    ctx: typer.Context,
    directory: Annotated[
        Path | None,
        typer.Argument(
            metavar="DIR",
            show_default=False,
            help="The data root to make a trove of (default: the current folder).",
        ),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            metavar="URL",
            show_default=False,
            help="Keep the catalogue in this database, e.g. "
            "postgresql://lab@dbhost/trove, instead of DIR/.trove/catalog.db.",
        ),
    ] = None,
) -> None:
    """Create a trove: a catalogue and settings in DIR/.trove (nothing else is touched)."""
    from rich.text import Text

    from ..client import TROVE_DIR, connect

    chosen = options(ctx)
    given = directory or (chosen.root if chosen.root_given else None)
    target = (given or Path.cwd()).expanduser().absolute()
    trove_dir = target / TROVE_DIR
    existed = {name for name in ("config.toml", "catalog.db") if (trove_dir / name).exists()}
    with connect(target, db=db or chosen.db, create=True) as trove:
        dialect, where = trove.catalog.dialect, trove.catalog.where
    out = console()
    if "config.toml" in existed and (dialect != "sqlite" or "catalog.db" in existed):
        out.print(Text(f"{target} is already a trove (catalogue: {where}); nothing to create."))
        return
    out.print(Text.assemble(("Created", "green"), f" a trove in {target}:"))
    rows = [(f"{TROVE_DIR}/config.toml", "settings of this trove (default conditions)")]
    if dialect == "sqlite":
        rows.append((f"{TROVE_DIR}/catalog.db", "the catalogue (SQLite)"))
    else:
        rows.append(("catalogue", f"{where} ({dialect}; tables created or up to date)"))
    for path, what in rows:
        out.print(Text.assemble("  ", (f"{path:<22}", "bold"), what))
    if dialect != "sqlite":
        out.print(
            Text("Later commands need this catalogue too: pass --db URL or set NEUROTROVE_DB.")
        )
    out.print(
        Text(
            "Next: put session folders (<lab>/Subjects/<subject>/<YYYY-MM-DD>/<NNN>) "
            "under it, then run trove register."
        )
    )
