"""``trove subject add|list``: the lab's animals (``trove.register_subject``)."""

from __future__ import annotations

from typing import Annotated

import typer

from .base import TroveGroup, open_trove
from .output import console, echo_json, frame_records, note, print_table
from .values import json_fields

__all__ = ["JsonFieldOption", "subject_app"]

subject_app = typer.Typer(
    name="subject",
    cls=TroveGroup,
    no_args_is_help=True,
    help="Add and list subjects (a session's subject is added with the session).",
)

JsonFieldOption = Annotated[
    list[str] | None,
    typer.Option(
        "--json-field",
        metavar="KEY=VALUE",
        show_default=False,
        help="A field of the record's json (VALUE read as JSON if it is; repeat for several).",
    ),
]
"""``--json-field KEY=VALUE``: the ``json`` argument of ``register_subject`` and
``register_session`` (``--json`` prints JSON, as on every command)."""


@subject_app.command("add")
def add(
    ctx: typer.Context,
    nickname: Annotated[str, typer.Argument(metavar="NAME", help="The subject's nickname.")],
    lab: Annotated[
        str | None,
        typer.Option("--lab", metavar="LAB", show_default=False, help="The subject's lab."),
    ] = None,
    sex: Annotated[
        str | None, typer.Option("--sex", metavar="M|F|U", show_default=False, help="Its sex.")
    ] = None,
    birth_date: Annotated[
        str | None,
        typer.Option("--birth-date", metavar="DATE", show_default=False, help="YYYY-MM-DD."),
    ] = None,
    species: Annotated[
        str | None, typer.Option("--species", metavar="TEXT", show_default=False)
    ] = None,
    strain: Annotated[str | None, typer.Option("--strain", metavar="TEXT", show_default=False)] = (
        None
    ),
    genotype: Annotated[
        str | None, typer.Option("--genotype", metavar="TEXT", show_default=False)
    ] = None,
    json: JsonFieldOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the subject as JSON.")] = False,
) -> None:
    """Add a subject, e.g. the second animal of a two-animal rig before trove insert-nwb."""
    with open_trove(ctx, remote=True) as trove:
        subject_id = trove.register_subject(
            nickname,
            lab=lab,
            sex=sex,
            birth_date=birth_date,
            species=species,
            strain=strain,
            genotype=genotype,
            json=json_fields(json or ()) or None,
        )
        record = trove.table("subjects", use_defaults=False).get_one(id=subject_id)
    if as_json:
        echo_json(record)
        return
    where = f" of {lab}" if lab else ""
    console().print(f"Added subject {nickname}{where} (id {subject_id}).", markup=False)


@subject_app.command("list")
def list_subjects(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the subjects with their lab, sex, birth date, species, strain and genotype."""
    with open_trove(ctx, remote=True) as trove:
        frame = trove.table("subjects", use_defaults=False).get()
    if as_json:
        echo_json(frame_records(frame))
        return
    if frame.empty:
        note("no subjects yet; add one with trove subject add NAME --lab LAB")
        return
    frame = frame.sort_values(["nickname", "lab"], na_position="first")
    columns = ["nickname", "lab", "sex", "birth_date", "species", "strain", "genotype"]
    rows = [[row[c] for c in columns] for _, row in frame.iterrows()]
    print_table(console(), columns, rows, styles={"nickname": "bold"})
