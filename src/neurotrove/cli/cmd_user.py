"""``trove user add|list|revoke``: the accounts of a served trove (run where the trove is)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .base import TroveGroup, open_trove
from .output import console, echo_json, frame_records, print_table

__all__ = ["user_app"]

user_app = typer.Typer(
    name="user",
    cls=TroveGroup,
    no_args_is_help=True,
    help="Add, list and revoke the users of a trove served with trove serve.",
)


def read_password(from_stdin: bool, prompt: str, *, confirm: bool) -> str:
    """Read a password from the first line of stdin, or ask for it (hidden) on the terminal.

    Raises
    ------
    ConfigError
        When there is no terminal to ask on and ``from_stdin`` is false; the message says to
        pipe the password in with ``--password-stdin``.
    """
    if from_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        from ..errors import ConfigError

        raise ConfigError(
            "there is no terminal to ask for the password on; pipe it in with "
            "--password-stdin (its first line is the password)"
        )
    value: str = typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm)
    return value


@user_app.command("add")
def add(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="The new user's name.")],
    admin: Annotated[
        bool, typer.Option("--admin", help="Make the user an administrator.")
    ] = False,
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password from the first line of stdin."),
    ] = False,
    email: Annotated[str | None, typer.Option("--email", show_default=False)] = None,
    full_name: Annotated[str | None, typer.Option("--full-name", show_default=False)] = None,
    lab: Annotated[str | None, typer.Option("--lab", show_default=False)] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Set a new password for an existing user.")
    ] = False,
    role: Annotated[
        str | None,
        typer.Option(
            "--role",
            help="reader (the default for a new user), writer or admin.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Add a user who can log in (asks for the password twice; only its hash is kept)."""
    from ..server.accounts import Accounts
    from ..server.roles import rights_of

    password = read_password(password_stdin, f"Password for {username}", confirm=True)
    with open_trove(ctx) as trove:
        Accounts(trove.catalog).add_user(
            username,
            password,
            admin=admin,
            email=email,
            full_name=full_name,
            lab=lab,
            replace=replace,
            role=role,
        )
        rights = rights_of(trove.catalog, username)
    kind = "administrator" if rights.is_admin else rights.role
    console().print(
        f"Added user {username} ({kind}); they log in with trove login or nt.connect(url)."
    )


@user_app.command("list")
def list_users(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the users, whether they can log in, and how many valid tokens they hold."""
    from ..server.accounts import Accounts

    with open_trove(ctx) as trove:
        users = Accounts(trove.catalog).list_users()
    if as_json:
        echo_json(frame_records(users))
        return
    columns = ["username", *users.columns]
    rows = [
        [name, *values] for name, values in zip(users.index, users.values.tolist(), strict=True)
    ]
    print_table(console(), columns, rows)


@user_app.command("revoke")
def revoke(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="The user whose tokens end now.")],
) -> None:
    """Revoke every token of a user (they must log in again)."""
    from ..server.accounts import Accounts, revocation_mark

    with open_trove(ctx) as trove:
        count = Accounts(trove.catalog, revocations=revocation_mark(trove.root)).revoke(username)
    console().print(f"Revoked {count} token{'s' if count != 1 else ''} of {username}.")


@user_app.command("role")
def role(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="The user.")],
    role: Annotated[str, typer.Argument(help="reader, writer or admin.")],
    labs: Annotated[
        list[str] | None,
        typer.Option(
            "--lab", help="Limit a writer to this lab (repeat for more).", show_default=False
        ),
    ] = None,
    projects: Annotated[
        list[str] | None,
        typer.Option(
            "--project",
            help="Limit a writer to this project (repeat for more).",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Give a user a role: reader, writer (everywhere, or of some labs and projects) or admin."""
    from ..server.roles import set_role

    with open_trove(ctx) as trove:
        rights = set_role(trove.catalog, username, role, labs=labs or (), projects=projects or ())
    if as_json:
        echo_json(
            {
                "username": username,
                "role": rights.role,
                "labs": sorted(rights.labs),
                "projects": sorted(rights.projects),
            }
        )
        return
    scope = ", ".join([*sorted(rights.labs), *sorted(rights.projects)])
    where = f" of {scope}" if scope else ""
    console().print(f"{username} is now a {rights.role}{where}.")
