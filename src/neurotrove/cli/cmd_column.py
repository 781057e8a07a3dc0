"""``trove column add|list``: a lab's own typed columns (``trove.add_column``)."""

from __future__ import annotations

from typing import Annotated

import typer

from ..jsonable import to_jsonable
from .base import TroveGroup, open_trove
from .output import console, echo_json, print_table

__all__ = ["column_app"]

column_app = typer.Typer(
    name="column",
    cls=TroveGroup,
    no_args_is_help=True,
    help="Add and list a table's columns, the lab's own (e.g. imaging_depth) and built-in.",
)


@column_app.command("add")
def add(
    ctx: typer.Context,
    table: Annotated[str, typer.Argument(metavar="TABLE", help="sessions or subjects.")],
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="The column's name, e.g. imaging_depth.")
    ],
    kind: Annotated[
        str,
        typer.Argument(metavar="TYPE", help="bool, int, float, text, date or datetime."),
    ],
    nullable: Annotated[
        bool,
        typer.Option(
            "--nullable/--not-null",
            help="Whether a row may have no value (--not-null needs --default).",
        ),
    ] = False,
    default: Annotated[
        str | None,
        typer.Option(
            "--default", metavar="VALUE", show_default=False, help="The value of rows without one."
        ),
    ] = None,
    from_json: Annotated[
        str | None,
        typer.Option(
            "--from-json",
            metavar="KEY",
            show_default=False,
            help="Copy the values kept so far under this key of the rows' json (all or none).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the column as JSON.")] = False,
) -> None:
    """Add a typed column to the catalogue, e.g. trove column add sessions suite2p bool.

    Without --nullable the column may not be empty, so it needs --default (say
    --default false); with --from-json the values of that json key are copied and checked,
    and nothing changes if one does not convert.
    """
    with open_trove(ctx) as trove:
        column = trove.add_column(
            table, name, kind, nullable=nullable, default=default, from_json=from_json
        )
        copied = (
            trove.table(table, use_defaults=False).count(**{name: (None, "!=")})
            if from_json
            else 0
        )
    if as_json:
        echo_json({**to_jsonable(column.__dict__), "copied": copied})
        return
    done = f"Added {column.kind} column {column.table}.{column.name}"
    if from_json:
        done += f", with the values of json.{from_json} of {copied} row(s)"
    console().print(done + ".", markup=False)


@column_app.command("sync")
def sync(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print what was added as JSON.")] = (
        False
    ),
) -> None:
    """Add the columns declared in the trove's settings that its catalogue lacks.

    They are declared in .trove/config.toml, e.g. [columns.sessions] with
    imaging_depth = "float" or suite2p = {type = "bool", nullable = false, default = false}.
    """
    from ..catalog.lab_columns import declared_columns
    from ..config import load_toml
    from ..errors import ConfigError
    from ..trove.init import TROVE_DIR

    with open_trove(ctx) as trove:
        path = trove.root / TROVE_DIR / "config.toml"
        added = []
        for declared in declared_columns(load_toml(path), str(path)):
            info = trove.table(declared.table).column_info()
            if declared.name in info.index:
                kind = str(info.loc[declared.name, "type"])
                whose = "lab" if info.loc[declared.name, "lab"] else "built-in"
                if kind != declared.kind or whose != "lab":
                    raise ConfigError(
                        f"{path} declares {declared.table}.{declared.name} as {declared.kind}, "
                        f"but the catalogue has it as a {whose} {kind} column; correct the "
                        f"declaration",
                        path=str(path),
                    )
                continue
            added.append(
                trove.add_column(
                    declared.table,
                    declared.name,
                    declared.kind,
                    nullable=declared.nullable,
                    default=declared.default,
                    from_json=declared.from_json,
                )
            )
    if as_json:
        echo_json([to_jsonable(column.__dict__) for column in added])
        return
    for column in added:
        console().print(f"Added {column.kind} column {column.table}.{column.name}.", markup=False)
    if not added:
        console().print("Every declared column is in the catalogue.", markup=False)


@column_app.command("list")
def list_columns(
    ctx: typer.Context,
    table: Annotated[str, typer.Argument(metavar="TABLE", help="A table, e.g. sessions.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List a table's columns: name, type, whether it may be empty, and whose it is."""
    with open_trove(ctx, remote=True) as trove:
        info = trove.table(table).column_info()
    rows = [
        {
            "name": str(name),
            "type": row["type"],
            "nullable": bool(row["nullable"]),
            "lab": bool(row["lab"]),
        }
        for name, row in info.iterrows()
    ]
    if as_json:
        echo_json(rows)
        return
    shown = [
        [r["name"], r["type"], "yes" if r["nullable"] else "no", "lab" if r["lab"] else ""]
        for r in rows
    ]
    print_table(console(), ["name", "type", "nullable", "added by"], shown)
