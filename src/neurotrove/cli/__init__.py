"""The ``trove`` command line: thin commands over :class:`neurotrove.Trove`.

Each command lives in its own module (``cmd_<name>.py``), parses its options and calls one
library function; :mod:`.base` holds what they share, including the one place where errors
become messages, and :mod:`.output` the tables and JSON.

Examples
--------
>>> from typer.testing import CliRunner
>>> result = CliRunner().invoke(app, ["--version"])
>>> result.exit_code, result.stdout.startswith("trove (neurotrove) ")
(0, True)
"""

from __future__ import annotations

from collections.abc import Callable

import typer

from .base import TroveGroup, global_options
from .cmd_analysis import analysis_app
from .cmd_backup import backup
from .cmd_check import check
from .cmd_column import column_app
from .cmd_demo import demo
from .cmd_ephys import ephys_app
from .cmd_errors import errors
from .cmd_export_allen import export_allen
from .cmd_export_one import export_one, import_one
from .cmd_get import get
from .cmd_init import init
from .cmd_insert_nwb import insert_nwb
from .cmd_login import login, logout
from .cmd_ls import ls
from .cmd_register import register
from .cmd_release import release_app
from .cmd_restore import restore
from .cmd_rig import rig_app
from .cmd_run import run
from .cmd_search import search
from .cmd_serve import serve
from .cmd_session import session_app
from .cmd_show import show
from .cmd_status import status
from .cmd_step import step_app
from .cmd_subject import subject_app
from .cmd_user import user_app

__all__ = ["COMMANDS", "GROUPS", "app", "main"]

COMMANDS: dict[str, Callable[..., None]] = {
    "demo": demo,
    "init": init,
    "register": register,
    "search": search,
    "ls": ls,
    "show": show,
    "get": get,
    "serve": serve,
    "login": login,
    "logout": logout,
    "status": status,
    "run": run,
    "errors": errors,
    "check": check,
    "backup": backup,
    "restore": restore,
    "export-allen": export_allen,
    "export-one": export_one,
    "import-one": import_one,
    "insert-nwb": insert_nwb,
}
"""Every command, by name, in the order ``trove --help`` lists them."""

GROUPS: dict[str, typer.Typer] = {
    "user": user_app,
    "subject": subject_app,
    "session": session_app,
    "step": step_app,
    "rig": rig_app,
    "ephys": ephys_app,
    "column": column_app,
    "release": release_app,
    "analysis": analysis_app,
}
"""Commands with subcommands (``trove user add``)."""

app = typer.Typer(
    name="trove",
    cls=TroveGroup,
    callback=global_options,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
for _name, _command in COMMANDS.items():
    app.command(_name)(_command)
for _name, _group in GROUPS.items():
    app.add_typer(_group, name=_name)


def main() -> None:
    """Run the ``trove`` command line (the console script)."""
    app(prog_name="trove")
