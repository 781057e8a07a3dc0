"""``trove serve [DIR]``: share a trove's catalogue and files over HTTP, with token auth."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from .base import options, trove_root

__all__ = ["serve"]


def serve(
    ctx: typer.Context,
    directory: Annotated[
        Path | None,
        typer.Argument(
            metavar="DIR",
            show_default=False,
            help="The trove to serve (default: --root, or the trove holding the current folder).",
        ),
    ] = None,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on; 0.0.0.0 for every interface.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port.")] = 8000,
    public_read: Annotated[
        bool,
        typer.Option(
            "--public-read",
            help="Let anyone search and download without a token (writes always need one).",
        ),
    ] = False,
    token_ttl: Annotated[
        str,
        typer.Option(
            "--token-ttl", metavar="DURATION", help="How long login tokens last (e.g. 12h, 30d)."
        ),
    ] = "30d",  # noqa: S107 - a duration, not a password
    object_files: Annotated[
        str | None,
        typer.Option(
            "--object-files",
            metavar="redirect|proxy",
            show_default=False,
            help="Files in an S3 bucket or on an HTTP data server: redirect clients to a "
            "short-lived presigned URL (the default), or proxy them (for buckets clients "
            "cannot reach).",
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            help="Worker processes (uvicorn's), sharing the port; about one per core.",
        ),
    ] = 1,
    accel_redirect: Annotated[
        str | None,
        typer.Option(
            "--accel-redirect",
            metavar="LOCATION",
            show_default=False,
            help="Behind nginx: its internal location serving the data root (e.g. "
            "/protected/). Downloads are authorised here and answered with X-Accel-Redirect; "
            "nginx sends the bytes. See the server docs, 'Deploying behind nginx'.",
        ),
    ] = None,
    signed_links: Annotated[
        str | None,
        typer.Option(
            "--signed-links",
            metavar="LOCATION",
            show_default=False,
            help="Behind nginx: its location serving the data root to signed links (e.g. "
            "/files/). Clients ask for links to many files at once and nginx sends each one, "
            "checking the link (secure_link). Needs --link-secret. See the server docs, "
            "'Signed links'.",
        ),
    ] = None,
    link_secret: Annotated[
        Path | None,
        typer.Option(
            "--link-secret",
            metavar="FILE",
            show_default=False,
            help="With --signed-links: the file of the key signing links, which nginx "
            "includes; written (readable by you alone) when missing.",
        ),
    ] = None,
    log_level: Annotated[
        str, typer.Option("--log-level", help="uvicorn's log level (info, warning, debug).")
    ] = "info",
) -> None:
    """Serve a trove: its catalogue, files and writes, at http://HOST:PORT/api/v1.

    Clients connect with nt.connect("http://HOST:PORT") or trove login. Users are added with
    trove user add. The OpenAPI description is at /openapi.json, the docs at /api/v1/docs.
    """
    # Long on purpose: each setting of the server is an option here, as --help lists them.
    from rich.text import Text

    from ..config import Settings
    from ..server import serve as run
    from ..server.accounts import Accounts, parse_duration
    from ..server.run import check_address
    from ..trove.connect import connect
    from .output import console, note

    chosen = options(ctx)
    ttl = parse_duration(token_ttl)
    if accel_redirect is not None:
        from ..server.files import check_accel_prefix

        accel_redirect = check_accel_prefix(accel_redirect)
    if signed_links is not None:
        from ..server.file_links import configured

        if link_secret is not None:
            link_secret = link_secret.expanduser().resolve()
        links = configured(signed_links, link_secret)  # checked, and the key written
        signed_links = None if links is None else links.location
    if object_files is not None:
        Settings.load(object_files=object_files)  # refuses a wrong value, naming the right
        os.environ["NEUROTROVE_OBJECT_FILES"] = object_files  # the workers' settings too
    root = (directory.expanduser() if directory is not None else trove_root(chosen)).resolve()
    with connect(root, db=chosen.db, create=False) as trove:
        where = trove.catalog.where
        users = Accounts(trove.catalog).list_users()
    check_address(host, port)  # before saying where it serves
    can_log_in = int(users["can_log_in"].sum()) if len(users) else 0
    access = (
        "anyone may read; writes need a token" if public_read else "reads and writes need a token"
    )
    console(stderr=True).print(
        Text.assemble(
            ("Serving ", "green"),
            str(root),
            f" (catalogue: {where}) at http://{host}:{port} — {access}",
        )
    )
    note(
        f"ONE-api and alyx-connector: base_url http://{host}:{port}, "
        f"HTTP_DATA_SERVER http://{host}:{port}/data (see the README)"
    )
    if accel_redirect is not None:
        note(
            f"Downloads answer with X-Accel-Redirect: {accel_redirect}<path>; nginx must map "
            f"that internal location to {root}/ (see 'Deploying behind nginx')"
        )
    if signed_links is not None:
        note(
            f"Clients fetch files from signed links {signed_links}<path>: nginx must include "
            f"{link_secret} and check them there, serving {root}/ (see 'Signed links')"
        )
    if can_log_in == 0:
        note(f"No user can log in yet: add one with trove --root {root} user add NAME")
    run(
        root,
        db=chosen.db,
        host=host,
        port=port,
        public_read=public_read,
        token_ttl=ttl,
        workers=workers,
        log_level=log_level,
        accel_redirect=accel_redirect,
        signed_links=signed_links,
        link_secret=link_secret,
    )
