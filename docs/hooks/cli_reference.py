"""An MkDocs hook: the command line reference, written from the ``trove`` app at build time.

``docs/cli.md`` holds the guide to the commands; the line ``<!-- trove reference -->`` in it
becomes one section per command (usage, help, every argument and option), read from the
typer app itself, so the reference never disagrees with ``trove COMMAND --help``.
``tests/test_docs.py`` checks both halves: every command and group is in the guide, and in
the reference with every option.

Loaded by ``mkdocs.yml`` (``hooks:``). Importable without MkDocs, for the tests.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

MARKER = "<!-- trove reference -->"
"""The line of ``docs/cli.md`` that the reference replaces."""

PAGE = "cli.md"

_ESCAPED = re.compile(r"([\\`*_\[\]|])")


def _text(help_text: str) -> str:
    """Help text as Markdown: paragraphs kept, Markdown's special characters shown as typed."""
    text = _ESCAPED.sub(r"\\\1", inspect.cleandoc(help_text.split("\f")[0]))
    return text.replace("<", "&lt;").replace(">", "&gt;")


def _argument_name(param: Any) -> str:
    name = param.metavar or param.name.upper()
    return f"{name}..." if param.nargs == -1 else name


def _usage(path: list[str], command: Any, context: Any) -> str:
    """``trove PATH [OPTIONS] ARGS``: arguments by name, optional ones in brackets."""
    words = ["trove", *path]
    if any(p.param_type_name == "option" for p in command.get_params(context)):
        words.append("[OPTIONS]")
    for param in command.get_params(context):
        if param.param_type_name == "argument":
            name = _argument_name(param)
            words.append(name if param.required else f"[{name}]")
    if hasattr(command, "list_commands"):
        words.append("COMMAND [ARGS]...")
    return " ".join(words)


def _option_row(param: Any, context: Any) -> str | None:
    """One table row: the flags (and the value they take), then the help ``--help`` shows."""
    if "--help" in getattr(param, "opts", ()) or getattr(param, "hidden", False):
        return None
    record = param.get_help_record(context)
    if record is None:
        return None
    flags, help_text = record
    if param.param_type_name == "argument":
        flags = _argument_name(param)
    meaning = " ".join(_text(help_text).split())
    return f"| `{flags}` | {meaning} |"


def _section(path: list[str], command: Any, parent: Any) -> list[str]:
    """Return the Markdown of one command (and, for a group, of its subcommands after it)."""
    context = command.context_class(command, info_name=path[-1], parent=parent)
    anchor = "trove-" + "-".join(path)
    level = "#" * (2 + len(path))  # commands under the page's "Reference", subcommands below
    usage = _usage(path, command, context)
    lines = [f"{level} trove {' '.join(path)} {{#{anchor}}}", "", f"`{usage}`"]
    lines += ["", _text(command.help or ""), ""]
    rows = [_option_row(p, context) for p in command.get_params(context)]
    rows = [row for row in rows if row]
    if rows:
        lines += ["| argument or option | meaning |", "| --- | --- |", *rows, ""]
    if hasattr(command, "list_commands"):
        for name in command.list_commands(context):
            lines += _section([*path, name], command.get_command(context, name), context)
    return lines


def render_reference() -> str:
    """Return the reference of every ``trove`` command, as Markdown, in ``--help`` order."""
    import typer

    from neurotrove.cli import app

    group = typer.main.get_command(app)
    context = group.context_class(group, info_name="trove")
    lines = ["### Global options {#global-options}", ""]
    lines += ["Given before the command: `trove --root ~/data search`.", ""]
    lines += ["| option | meaning |", "| --- | --- |"]
    rows = [_option_row(p, context) for p in group.get_params(context)]
    lines += [row for row in rows if row]
    lines.append("")
    for name in group.list_commands(context):
        lines += _section([name], group.get_command(context, name), context)
    return "\n".join(lines)


def on_page_markdown(markdown: str, *, page: Any, **kwargs: Any) -> str:
    """Put the generated reference in place of the marker on the command line page."""
    if page.file.src_uri != PAGE:
        return markdown
    if markdown.count(MARKER) != 1:
        raise ValueError(f"docs/{PAGE} must hold the line {MARKER} exactly once")
    return markdown.replace(MARKER, render_reference())
