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
    files: Annotated[
        str | None,
        typer.Option(
            "--files",
            metavar="URL",
            show_default=False,
            help="The trove's files are not in DIR but in this store: s3://bucket/prefix "
            "(endpoint, region and credentials from the standard AWS variables and files) "
            "or an https:// data server. Loads download them into the file cache.",
        ),
    ] = None,
) -> None:
    """Create a trove: a catalogue and settings in DIR/.trove (nothing else is touched).

    With --db the catalogue's URL is recorded in DIR/.trove/config.toml, so every command
    and nt.connect(DIR) use it; so is the store of --files. Nothing is written unless the
    catalogue can be reached.
    """
    from rich.text import Text

    from ..trove.init import CATALOG_FILE, CONFIG_FILE, TROVE_DIR, init_trove

    chosen = options(ctx)
    given = directory or (chosen.root if chosen.root_given else None)
    target = (given or Path.cwd()).expanduser().absolute()
    report = init_trove(target, db=db or chosen.db, files=files)
    out = console()
    if not report.created:
        out.print(
            Text(f"{target} is already a trove (catalogue: {report.where}); nothing to create.")
        )
        if files is not None:
            out.print(Text(f"Its files store is now {files} (recorded in config.toml)."))
        return
    if report.replaced is not None:
        out.print(Text(f"Replaced the catalogue it recorded, {report.replaced}.", style="yellow"))
    out.print(Text.assemble(("Created", "green"), f" a trove in {target}:"))
    rows = [(f"{TROVE_DIR}/{CONFIG_FILE}", "settings of this trove (default conditions)")]
    if report.dialect == "sqlite":
        rows.append((f"{TROVE_DIR}/{CATALOG_FILE}", "the catalogue (SQLite)"))
    else:
        recorded = "; its URL is recorded in config.toml" if report.recorded else ""
        rows.append(("catalogue", f"{report.where} ({report.dialect}{recorded})"))
    if files is not None:
        rows.append(("files", f"{files} (recorded in config.toml)"))
    for path, what in rows:
        out.print(Text.assemble("  ", (f"{path:<22}", "bold"), what))
    if report.dialect != "sqlite" and not report.recorded:
        out.print(
            Text(
                "The URL holds a password, so it is not recorded: later commands need --db URL "
                "(or NEUROTROVE_DB); better, keep the password in ~/.pgpass."
            )
        )
    out.print(
        Text(
            "Next: put session folders (<lab>/Subjects/<subject>/<YYYY-MM-DD>/<NNN>) "
            "under it, then run trove register."
        )
    )
