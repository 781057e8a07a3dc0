"""``trove session add SUBJECT DATE [NUMBER]``: a new session (``trove.register_session``)."""

from __future__ import annotations

from typing import Annotated

import typer

from .base import TroveGroup, open_trove, options
from .cmd_subject import JsonFieldOption
from .output import console, echo_json
from .values import json_fields

__all__ = ["session_app"]

session_app = typer.Typer(
    name="session",
    cls=TroveGroup,
    no_args_is_help=True,
    help="Add sessions (find them with trove search, show one with trove show).",
)


@session_app.command("add")
def add(
    ctx: typer.Context,
    subject: Annotated[
        str,
        typer.Argument(
            metavar="SUBJECT", help="The subject's nickname (added with the session if new)."
        ),
    ],
    date: Annotated[str, typer.Argument(metavar="DATE", help="The session's day, YYYY-MM-DD.")],
    number: Annotated[
        int | None,
        typer.Argument(
            metavar="[NUMBER]",
            min=1,
            show_default=False,
            help="Its number that day (default: the next free one).",
        ),
    ] = None,
    lab: Annotated[
        str | None,
        typer.Option("--lab", metavar="LAB", show_default=False, help="The lab."),
    ] = None,
    task_protocol: Annotated[
        str | None, typer.Option("--task-protocol", metavar="TEXT", show_default=False)
    ] = None,
    projects: Annotated[
        list[str] | None,
        typer.Option(
            "--project",
            "--projects",
            metavar="NAME",
            show_default=False,
            help="A project (repeat for several).",
        ),
    ] = None,
    users: Annotated[
        list[str] | None,
        typer.Option(
            "--user",
            "--users",
            metavar="NAME",
            show_default=False,
            help="Who ran it (repeat for several).",
        ),
    ] = None,
    location: Annotated[
        str | None, typer.Option("--location", metavar="TEXT", show_default=False)
    ] = None,
    start_time: Annotated[
        str | None,
        typer.Option(
            "--start-time", metavar="DATETIME", show_default=False, help="YYYY-MM-DDTHH:MM:SS."
        ),
    ] = None,
    end_time: Annotated[
        str | None, typer.Option("--end-time", metavar="DATETIME", show_default=False)
    ] = None,
    narrative: Annotated[
        str | None, typer.Option("--narrative", metavar="TEXT", show_default=False)
    ] = None,
    json: JsonFieldOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the session as JSON.")] = False,
) -> None:
    """Add a session and make its folder, e.g. before trove insert-nwb fills it."""
    with open_trove(ctx, remote=True) as trove:
        eid = trove.register_session(
            subject,
            date,
            number,
            lab=lab,
            task_protocol=task_protocol,
            projects=projects or (),
            users=users or (),
            location=location,
            start_time=start_time,
            end_time=end_time,
            narrative=narrative,
            json=json_fields(json or ()) or None,
        )
        details = trove.get_details(eid)
        folder = trove.eid2path(eid) if options(ctx).url is None else details["folder"]
    if as_json:
        echo_json(details)
        return
    console().print(
        f"Added session {details['subject']}/{details['date']}/{details['number']:03d} "
        f"(eid {eid}) in {folder}",
        markup=False,
    )
