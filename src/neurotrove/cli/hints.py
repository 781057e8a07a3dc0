"""The fixes that errors suggest, spelled as ``trove`` flags and commands.

The library's messages name fixes as Python (``pass replace=True``, ``list_datasets(eid)``)
and keep them as data in ``error.hints`` (:mod:`neurotrove.errors`). Here each hint is
spelled for the command line and put in place of its Python text, so no command handles
messages of its own:

- an :class:`~neurotrove.errors.ArgumentHint` is an argument of the call that failed; it
  becomes the option of the running command that takes that parameter (``--replace``,
  ``--collection COLLECTION``);
- a :class:`~neurotrove.errors.CallHint` names a library function; :data:`CALL_COMMANDS`
  says which command does what it does, and its arguments become that command's arguments
  and options (``trove subject add M2 --lab swc``).

A hint the command line cannot spell (a function without a command, an argument the
command has no option for) keeps its Python text, which is still true.

Examples
--------
>>> from neurotrove.cli import app
>>> import typer
>>> root = typer.main.get_command(app)
>>> from neurotrove.errors import CallHint
>>> spell(CallHint("trove.register_subject", {"nickname": "M2", "lab": "swc"}, 1), None, root)
'trove subject add M2 --lab swc'
>>> spell(CallHint("list_datasets", {"eid": ...}, positional=1), None, root)
'trove ls EID_OR_PATH'
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import Any

from ..errors import ArgumentHint, CallHint, Hint, NeurotroveError

__all__ = ["CALL_COMMANDS", "command_line_message", "spell"]

CALL_COMMANDS: Mapping[str, tuple[str, Mapping[str, str]]] = {
    "register": ("register", {}),
    "search": ("search", {}),
    "list_datasets": ("ls", {"eid": "session"}),
    "get_details": ("show", {"eid": "session"}),
    "load_datasets": (
        "get",
        {"eid": "session", "collections": "collection", "revisions": "revision"},
    ),
    "register_subject": ("subject add", {}),
    "register_session": ("session add", {}),
    "backup": ("backup", {}),
    "restore": ("restore", {}),
    "export_one": ("export-one", {}),
    "import_one": ("import-one", {"path": "directory"}),
    "pipeline.add_step": ("step add", {}),
    "pipeline.steps": ("step list", {}),
    "pipeline.remove_step": ("step remove", {}),
    "pipeline.run": ("run", {"func": "function"}),
    "pipeline.status": ("status", {}),
    "pipeline.check": ("check", {}),
    "pipeline.errors": ("errors", {}),
    "behaviour.upload_rig": ("rig upload", {"rig": "rig_file"}),
    "behaviour.rigs": ("rig list", {}),
    "behaviour.insert_nwb": ("insert-nwb", {"nwb_path": "nwb_file"}),
    "ephys.import_alf": ("ephys import-alf", {"eid": "session"}),
    "ephys.import_nwb": ("ephys import-nwb", {"eid": "session", "path": "nwb_file"}),
    "ephys.import_allen": ("ephys import-allen", {"path": "directory"}),
    "ephys.export_allen": ("export-allen", {"folder": "directory"}),
}
"""Library functions (as ``trove.<name>``, ``trove.`` left out) and the command doing the
same: its words after ``trove``, and the command's parameter for each Python argument whose
name differs."""

_TROVE = "trove."


def command_line_message(error: NeurotroveError, command: Any, root: Any) -> str:
    """Return the error's message with each hint's Python text spelled for the command line.

    Parameters
    ----------
    error : NeurotroveError
        The error, with its ``hints``.
    command : click command or None
        The command that failed (its options spell :class:`ArgumentHint`).
    root : click group or None
        The ``trove`` command group (it finds the commands :class:`CallHint` names).
    """
    message = error.message
    for hint in error.hints:
        spelled = spell(hint, command, root)
        if spelled is None:
            continue
        found = re.search(rf"(?<![\w.]){re.escape(hint.python)}(?!\w)", message)
        if found is not None:
            message = message[: found.start()] + spelled + message[found.end() :]
    return message


def spell(hint: Hint, command: Any, root: Any) -> str | None:
    """Spell a hint as the command line's words, or return ``None`` when it has none.

    ``command`` and ``root`` are click commands as typer builds them (``typer.main.
    get_command(app)``); only their ``params`` and ``commands`` are read.
    """
    if isinstance(hint, ArgumentHint):
        param = None if command is None else _param(command, hint.name)
        words = None if param is None else _words(param, hint.value)
        return None if words is None else " ".join(words)
    if isinstance(hint, CallHint):
        return _spell_call(hint, root)
    return None


def _spell_call(hint: CallHint, root: Any) -> str | None:
    name = hint.function.removeprefix(_TROVE)
    if name not in CALL_COMMANDS or root is None:
        return None
    path, renamed = CALL_COMMANDS[name]
    command = _command(root, path.split())
    if command is None:
        return None
    arguments: dict[str, list[str]] = {}
    options: list[str] = []
    for argument, value in (hint.arguments or {}).items():
        param = _param(command, renamed.get(argument, argument))
        spelled = None if param is None else _words(param, value)
        if param is None or spelled is None:
            return None
        if param.param_type_name == "argument":
            arguments[str(param.name)] = spelled
        else:
            options += spelled
    words = ["trove", *path.split()]
    for param in command.params:  # the command's arguments in its own order
        words += arguments.get(str(param.name), [])
    return " ".join(words + options)


def _command(root: Any, path: list[str]) -> Any:
    command = root
    for word in path:
        command = getattr(command, "commands", {}).get(word)
        if command is None:
            return None
    return command


def _param(command: Any, name: str) -> Any:
    return next((p for p in getattr(command, "params", ()) if p.name == name), None)


def _placeholder(param: Any) -> str:
    return str(param.metavar or str(param.name).upper()).strip("[]")


def _long(opts: list[str]) -> str:
    """Return the first long spelling of an option (``--collection`` of ``-c``)."""
    return next((o for o in opts if o.startswith("--")), opts[0])


def _words(param: Any, value: Any) -> list[str] | None:
    """Return the words giving ``value`` to a parameter (``...``: the user's own value)."""
    values = value if isinstance(value, list | tuple) else [value]
    if param.param_type_name == "argument":
        return [_placeholder(param) if v is ... else shlex.quote(str(v)) for v in values]
    if param.param_type_name != "option":
        return None
    flag = _long(param.opts)
    if param.is_flag:
        if value is True:
            return [flag]
        if value is False and param.secondary_opts:
            return [_long(param.secondary_opts)]
        return None
    words: list[str] = []
    for item in values:
        words += [flag, _placeholder(param) if item is ... else shlex.quote(str(item))]
    return words
