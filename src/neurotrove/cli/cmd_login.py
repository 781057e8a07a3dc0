"""``trove login [URL]`` and ``trove logout [URL]``: keep a server's token, never a password.

As alyx-connector's setup does, ``trove login`` with no argument asks for the server's
address, the username, whether this is the default server, and the password (hidden).
"""

from __future__ import annotations

import getpass
import os
from typing import Annotated

import typer

from .base import options

__all__ = ["login", "logout"]


def _ask(question: str, default: str | None = None) -> str:
    answer: str = typer.prompt(question, default=default, show_default=default is not None)
    return answer.strip()


def login(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Argument(metavar="URL", show_default=False, help="The server, http://host:port."),
    ] = None,
    username: Annotated[
        str | None, typer.Option("--username", "-u", show_default=False, help="Log in as.")
    ] = None,
    default: Annotated[
        bool | None,
        typer.Option(
            "--default/--no-default",
            show_default=False,
            help="Make this the server nt.connect() opens with no argument (asked if not given).",
        ),
    ] = None,
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password from the first line of stdin."),
    ] = False,
) -> None:
    """Log in to a server and keep the token (mode 0600) in the user config folder."""
    from ..config import Settings
    from ..remote.credentials import CredentialStore, normalise_url
    from ..trove.connect import connect
    from .cmd_user import read_password
    from .output import console

    settings = Settings.load()
    store = CredentialStore(settings.config_dir)
    chosen_url = url or options(ctx).url
    if chosen_url is None:
        chosen_url = _ask("Server address (http://host:port)", store.default_server())
    address = normalise_url(chosen_url)
    with connect(address, settings=settings, mode="auto") as trove:
        trove.server_info()  # a clear error now for a wrong address, before any question
        if username is None:
            suggested = (
                store.default_username(address) or os.environ.get("USER") or getpass.getuser()
            )
            username = _ask(f"Username at {address}", suggested)
        if default is None:
            default = typer.confirm(
                "Make this the default server (nt.connect() with no argument)?", default=True
            )
        password = read_password(password_stdin, f"Password for {username}", confirm=False)
        trove.login(username, password, make_default=default)
    console().print(
        f"Logged in to {address} as {username}"
        + (" (the default server)" if default else "")
        + f"; the token is in {store.path} (the password is not stored)."
    )


def logout(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Argument(
            metavar="URL", show_default=False, help="The server (default: the default one)."
        ),
    ] = None,
    username: Annotated[
        str | None, typer.Option("--username", "-u", show_default=False, help="Only this user.")
    ] = None,
) -> None:
    """Forget the token(s) kept for a server (it also ends them on the server if reachable)."""
    from ..config import Settings
    from ..errors import AuthError, ConfigError, NeurotroveError
    from ..remote.connection import API, ServerConnection
    from ..remote.credentials import CredentialStore, normalise_url
    from .output import console, note

    settings = Settings.load()
    store = CredentialStore(settings.config_dir)
    chosen = url or options(ctx).url or store.default_server()
    if chosen is None:
        raise ConfigError("no server given and no default server; trove logout URL")
    address = normalise_url(chosen)
    names = [username] if username else list(store.usernames(address))
    for name in names:
        token = store.token(address, name)
        if not token:
            continue

        def no_login() -> str:
            raise AuthError("the token is no longer valid on the server")

        def held(token: str = token) -> str:
            return token

        connection = ServerConnection(
            address, timeout=settings.timeout, token=held, login=no_login
        )
        try:
            connection.request("POST", f"{API}/auth/logout")
        except NeurotroveError as error:
            note(f"could not end {name}'s token on the server ({error.message}); forgot it here")
        finally:
            connection.close()
    had = store.forget(address, username)
    console().print(f"Logged out of {address}." if had else f"No token was kept for {address}.")
