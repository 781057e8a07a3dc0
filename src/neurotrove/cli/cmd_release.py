"""``trove release create|list|show``: named sets of datasets that never change."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .base import TroveGroup, open_trove
from .output import console, echo_json, print_table
from .values import json_fields

__all__ = ["release_app"]

release_app = typer.Typer(
    name="release",
    cls=TroveGroup,
    no_args_is_help=True,
    help="Make, list and show releases: named sets of datasets that never change.",
)

_COLUMNS = ["name", "datasets", "created_at", "created_by", "note"]


def _show(record: dict[str, Any], as_json: bool) -> None:
    if as_json:
        echo_json(record)
        return
    out = console()
    for key in ("name", "note", "created_by", "created_at", "datasets", "conditions"):
        out.print(f"{key:>10}: {record[key] if record[key] is not None else ''}")


@release_app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The release's name, e.g. 2026_Q4_paper.")],
    conditions: Annotated[
        list[str] | None,
        typer.Argument(
            help="KEY=VALUE conditions as search and list take them: subject=KS005, "
            "collection=alf, 'date_range=[\"2026-01-01\", null]'; none: every dataset.",
            show_default=False,
        ),
    ] = None,
    note: Annotated[
        str | None, typer.Option("--note", help="What the release is.", show_default=False)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Make a release of the datasets the conditions match, each as it is now."""
    chosen = json_fields(conditions or [], option="condition")
    with open_trove(ctx) as trove:
        record = trove.create_release(name, note, **chosen)
    if as_json:
        echo_json(record)
        return
    console().print(
        f"Made release {name} of {record['datasets']} datasets; read it with "
        f"nt.connect(..., release={name!r}) or ONE's load_cache(tag={name!r})."
    )


@release_app.command("list")
def list_releases(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the releases, oldest first."""
    with open_trove(ctx) as trove:
        records = trove.releases()
    if as_json:
        echo_json(records)
        return
    print_table(console(), _COLUMNS, [[r[c] for c in _COLUMNS] for r in records])


@release_app.command("show")
def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The release.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show a release: its note, who made it and when, its conditions, how many datasets."""
    with open_trove(ctx) as trove:
        record = trove.release(name)
    _show(record, as_json)
