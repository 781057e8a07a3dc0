"""``trove get EID DATASET...``: find datasets' files, or copy them to a folder."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import ValidationError
from .base import SessionArgument, open_trove, session_argument
from .output import console, echo_json

__all__ = ["copy_files", "get"]


def copy_files(paths: list[Path], folder: Path) -> list[Path]:
    """Copy files into ``folder`` under their own names, each checked and renamed into place.

    Raises
    ------
    ValidationError
        When two of the files have the same name (they would overwrite each other).
    """
    from ..files.atomic import copy_file

    twice = sorted(name for name, count in Counter(p.name for p in paths).items() if count > 1)
    if twice:
        raise ValidationError(
            f"{', '.join(twice)} would be copied to {folder} more than once (same name in "
            f"several collections or revisions); get them one at a time into different "
            f"folders",
            names=twice,
        )
    targets = []
    for path in paths:
        target = folder.expanduser() / path.name
        copy_file(path, target)
        targets.append(target)
    return targets


def get(
    ctx: typer.Context,
    session: SessionArgument,
    datasets: Annotated[
        list[str],
        typer.Argument(
            metavar="DATASET",
            help="File names ('_ibl_trials.table.pqt'), object.attribute, or paths in the "
            "session ('alf/probe00/spikes.times.npy').",
        ),
    ],
    collection: Annotated[
        str | None,
        typer.Option(
            "--collection",
            "-c",
            metavar="COLLECTION",
            show_default=False,
            help="The collection, when a name is in several.",
        ),
    ] = None,
    revision: Annotated[
        str | None,
        typer.Option(
            "--revision",
            "-r",
            metavar="REVISION",
            show_default=False,
            help="A revision (default: the default revision, else the last).",
        ),
    ] = None,
    to: Annotated[
        Path | None,
        typer.Option(
            "--to",
            metavar="DIR",
            show_default=False,
            help="Copy the files into DIR (default: print where they are).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Find datasets of a session as load_dataset does, and print their paths or copy them.

    Each file is checked against the catalogue (present, the registered size, and the
    registered md5 when its modification time changed) before it is given.
    """
    with open_trove(ctx, near=session, remote=True) as trove:
        paths, records = trove.load_datasets(
            session_argument(trove.root, session),
            datasets,
            collections=collection,
            revisions=revision,
            download_only=True,
        )
    found = [Path(path) for path in paths]
    copies = copy_files(found, to) if to is not None else None
    if as_json:
        echo_json(
            [
                {
                    "dataset": name,
                    "id": record["id"] if record else None,
                    "rel_path": record["rel_path"] if record else None,
                    "path": path,
                    **({"copied_to": copies[index]} if copies is not None else {}),
                }
                for index, (name, record, path) in enumerate(
                    zip(datasets, records, found, strict=True)
                )
            ]
        )
    elif copies is None:
        typer.echo("\n".join(str(path) for path in found))
    else:
        _print_copies(records, copies)


def _print_copies(records: list[Any], copies: list[Path]) -> None:
    from rich.text import Text

    out = console()
    for record, target in zip(records, copies, strict=True):
        out.print(Text.assemble(("copied ", "green"), record["rel_path"], " -> ", str(target)))
