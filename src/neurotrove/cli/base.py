"""Shared pieces of the ``trove`` commands.

- :func:`global_options`: ``--root``, ``--db``, ``--debug`` and ``--version``.
- :func:`open_trove`: the trove a command works on (``--root``, the trove holding a path
  the command was given, ``NEUROTROVE_ROOT``, the trove holding the current folder, ``root``
  in ``config.toml``, else a clear error).
- :class:`TroveGroup` and :func:`describe_error`: the one place where errors become a
  single ``error: ...`` line and an exit code.

Output helpers (tables, JSON) are in :mod:`.output`.

Heavy libraries (pandas, SQLAlchemy) are imported inside functions, so ``trove --help``
starts fast.
"""

from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from ..errors import ConfigError, NeurotroveError, ValidationError

if TYPE_CHECKING:
    from ..trove.trove import Trove

__all__ = [
    "Options",
    "SessionArgument",
    "TroveGroup",
    "describe_error",
    "global_options",
    "hoist_global_options",
    "open_trove",
    "options",
    "session_argument",
    "trove_root",
]

_GLOBAL_VALUED = ("--root", "--db", "--url")
_GLOBAL_FLAGS = ("--debug",)
# Errors click and typer raise on purpose (usage errors, --help, exits): they pass through.
_CLICK_ERRORS = (typer.Exit, typer.Abort, typer.exceptions.TyperException)


@dataclass(frozen=True)
class Options:
    """The global options, kept on the click context for the commands.

    Attributes
    ----------
    root : Path or None
        ``--root`` (or ``NEUROTROVE_ROOT``).
    root_given : bool
        Whether ``--root`` was typed on the command line (not taken from the environment).
    db : str or None
        ``--db`` (or ``NEUROTROVE_DB``).
    url : str or None
        ``--url`` (or ``NEUROTROVE_URL``): a server to work on instead of a local trove.
    debug : bool
        Show tracebacks.
    """

    root: Path | None = None
    root_given: bool = False
    db: str | None = None
    url: str | None = None
    debug: bool = False


def _show_version(value: bool) -> None:
    if value:
        from ..__about__ import __version__

        typer.echo(f"trove (neurotrove) {__version__}")
        raise typer.Exit()


def global_options(
    ctx: typer.Context,
    root: Annotated[
        Path | None,
        typer.Option(
            "--root",
            metavar="PATH",
            envvar="NEUROTROVE_ROOT",
            show_default=False,
            help="The trove's data root (default: the trove holding the current folder).",
        ),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            metavar="URL",
            envvar="NEUROTROVE_DB",
            show_default=False,
            help="A catalogue URL, e.g. postgresql://lab@dbhost/trove (default: the "
            "SQLite file in ROOT/.trove).",
        ),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            metavar="URL",
            envvar="NEUROTROVE_URL",
            show_default=False,
            help="Work on a served trove, e.g. http://labserver:8000 (search, ls, show, get).",
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_show_version, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Find, load and catalogue a lab's ALF data. Start with: trove demo.

    The options below may also follow the command name: trove search --root ~/data.
    """
    from ..catalog import audit

    token = audit.set_actor(audit.os_user(), "cli")  # the audit log's "who" of its writes
    ctx.call_on_close(lambda: audit.reset_actor(token))
    source = ctx.get_parameter_source("root")
    ctx.obj = Options(
        root=root,
        root_given=source is not None and source.name == "COMMANDLINE",
        db=db,
        url=url,
        debug=debug,
    )


def options(ctx: typer.Context) -> Options:
    """Return the global options of the running command."""
    found = ctx.find_object(Options)
    return found if found is not None else Options()


def trove_root(chosen: Options, near: str | Path | None = None) -> Path:
    """Return the data root to work on, or raise a :class:`ConfigError` saying how to pick one.

    The order is: ``--root`` typed on the command line; the trove holding ``near`` (a path
    the command was given, such as ``trove register ~/data``); ``NEUROTROVE_ROOT``; the trove
    holding the current folder; ``root`` set in ``config.toml``.
    """
    from ..config import Settings
    from ..trove.connect import find_root

    if chosen.root is not None and chosen.root_given:
        return chosen.root.expanduser()
    if near is not None and Path(near).expanduser().exists():
        found = find_root(Path(near).expanduser())
        if found is not None:
            return found
    if chosen.root is not None:
        return chosen.root.expanduser()
    found = find_root()
    if found is not None:
        return found
    configured = Settings.load().root
    if configured != Settings().root:
        return configured
    raise ConfigError(
        f"{Path.cwd()} is not inside a trove (no .trove folder here or above); run "
        f"trove init to make one here, or pass --root PATH (or set NEUROTROVE_ROOT)",
        cwd=str(Path.cwd()),
    )


def open_trove(
    ctx: typer.Context, near: str | Path | None = None, *, remote: bool = False
) -> Trove:
    """Open the trove to work on: ``--url``'s server, or the local trove of :func:`trove_root`.

    Only commands that read (``remote=True``) work on a server; a local trove must exist.
    """
    from ..trove.connect import connect

    chosen = options(ctx)
    if chosen.url is not None:
        if not remote:
            raise ConfigError(
                f"this command works on a local trove, on the machine that holds it; leave out "
                f"--url {chosen.url} (and NEUROTROVE_URL)",
                url=chosen.url,
            )
        return connect(chosen.url)
    return connect(trove_root(chosen, near), db=chosen.db, create=False)


def hoist_global_options(args: list[str]) -> list[str]:
    """Move ``--root``, ``--db`` and ``--debug`` typed after the command name to the front.

    So ``trove search --root ~/data`` works as ``trove --root ~/data search`` does.

    Examples
    --------
    >>> hoist_global_options(["search", "-s", "KS005", "--root", "/data", "--debug"])
    ['--root', '/data', '--debug', 'search', '-s', 'KS005']
    >>> hoist_global_options(["ls", "--db=sqlite:///x.db", "--", "--debug"])
    ['--db=sqlite:///x.db', 'ls', '--', '--debug']
    """
    front: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            rest += args[index:]
            break
        if arg in _GLOBAL_FLAGS or (arg.partition("=")[0] in _GLOBAL_VALUED and "=" in arg):
            front.append(arg)
        elif arg in _GLOBAL_VALUED and index + 1 < len(args):
            front += args[index : index + 2]
            index += 1
        else:
            rest.append(arg)
        index += 1
    return front + rest


SessionArgument = Annotated[
    str,
    typer.Argument(
        metavar="EID_OR_PATH",
        help="The session: an eid, subject/YYYY-MM-DD/NNN, or a path in its folder.",
    ),
]
"""The ``EID_OR_PATH`` argument of ``ls``, ``show`` and ``get`` (see :func:`session_argument`)."""


def session_argument(root: Path, text: str) -> str | Path:
    """Turn an EID_OR_PATH argument into what ``Trove.to_eid`` takes.

    An existing path (``.`` inside a session folder, a file of a session) becomes a path
    relative to the data root; anything else (an eid, ``subject/date/number``) is kept.
    """
    path = Path(text).expanduser()
    if not path.exists():
        return text
    resolved = path.resolve()
    return resolved.relative_to(root) if resolved.is_relative_to(root) else resolved


def describe_error(
    error: BaseException, *, command: Any = None, root: Any = None
) -> tuple[str, int]:
    """Return the one-line message and the exit code for an error.

    Bad input and configuration (:class:`ValidationError`, :class:`ConfigError`) exit with
    2, an interrupt with 130, every other error with 1. Fixes the message names as Python
    (``replace=True``) are spelled as the flags of ``command`` and the commands under
    ``root`` (``--replace``; see :mod:`.hints`).

    Examples
    --------
    >>> describe_error(KeyboardInterrupt())
    ('interrupted', 130)
    >>> describe_error(ValidationError("'GOOD' is not a QC outcome"))
    ("'GOOD' is not a QC outcome", 2)
    """
    if isinstance(error, KeyboardInterrupt):
        return "interrupted", 130
    if isinstance(error, NeurotroveError):
        message, code = error.message, 2 if isinstance(error, ValidationError | ConfigError) else 1
        if error.hints:
            from .hints import command_line_message

            message = command_line_message(error, command, root)
    elif isinstance(error, OSError):
        where = f": {error.filename}" if error.filename else ""
        message, code = f"{error.strerror or error}{where}", 1
    else:
        message = (
            f"unexpected {type(error).__name__}: {error} (rerun with --debug for the "
            f"traceback, and please report it)"
        )
        code = 1
    return " ".join(message.split("\n")), code


class TroveGroup(TyperGroup):
    """The ``trove`` command group; the one place where errors become messages.

    Global options may also follow the command name (:func:`hoist_global_options`).

    Any :class:`~neurotrove.errors.NeurotroveError`, ``OSError``, interrupt or unexpected
    exception from a command is printed as one red ``error: <message>`` line on stderr, with
    the exit code of :func:`describe_error`; the traceback is shown only with ``--debug``.
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """Parse the arguments, accepting the global options after the command name too."""
        return list(super().parse_args(ctx, hoist_global_options(args)))

    def invoke(self, ctx: Any) -> Any:
        """Run the command, mapping its errors (see the class docstring)."""
        try:
            return super().invoke(ctx)
        except (*_CLICK_ERRORS, BrokenPipeError):
            raise
        except (Exception, KeyboardInterrupt) as error:
            name = ctx.invoked_subcommand
            message, code = describe_error(
                error,
                command=self.get_command(ctx, name) if name else None,
                root=ctx.find_root().command,
            )
            if ctx.params.get("debug"):
                traceback.print_exception(error, file=sys.stderr)
            typer.secho(f"error: {message}", fg="red", err=True)
            raise typer.Exit(code) from None
