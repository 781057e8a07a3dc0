"""Output helpers of the ``trove`` commands.

On a terminal, tables are drawn by rich with colour. In a pipe, the same tables are printed
as plain, unwrapped columns with no colour or box characters. ``--json`` prints pure JSON
(no markup) to stdout. Notes for the user go to stderr, so stdout stays parseable.

Examples
--------
>>> import datetime as dt
>>> to_jsonable({"date": dt.date(2019, 4, 1), "qc": float("nan"), "projects": ("ibl",)})
{'date': '2019-04-01', 'qc': None, 'projects': ['ibl']}
>>> cell_text(["ibl", "brainwide"]), cell_text(None), cell_text(True)
('ibl, brainwide', '', 'yes')
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import typer

from ..jsonable import frame_records, is_missing, to_jsonable

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "cell_text",
    "console",
    "echo_json",
    "frame_records",
    "note",
    "print_table",
    "to_jsonable",
]

_PIPE_WIDTH = 1000  # wide enough that rows in a pipe are never wrapped or cut


def console(*, stderr: bool = False) -> Console:
    """Return a rich console on stdout (or stderr): coloured on a terminal, plain in a pipe."""
    from rich.console import Console

    out = Console(stderr=stderr, highlight=False, emoji=False)
    if not out.is_terminal:  # never wrap or cut rows in a pipe, whatever COLUMNS says
        out.width = _PIPE_WIDTH
    return out


def note(message: str) -> None:
    """Tell the user something on stderr (dim on a terminal), leaving stdout to the data."""
    typer.secho(message, err=True, dim=True)


def echo_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout, and nothing else."""
    typer.echo(json.dumps(to_jsonable(data), indent=2, ensure_ascii=False, allow_nan=False))


def cell_text(value: Any) -> str:
    """Return how one value is shown in a table cell."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple | set):
        return ", ".join(cell_text(item) for item in value)
    if isinstance(value, Mapping):
        return json.dumps(to_jsonable(value)) if value else ""
    if isinstance(value, float) and not is_missing(value):
        return f"{value:.6g}"
    plain = to_jsonable(value)
    return "" if plain is None else str(plain)


def print_table(
    out: Console,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    title: str | None = None,
    header: bool = True,
    styles: Mapping[str, str] | None = None,
    indent: int = 0,
) -> None:
    """Print rows as a table: boxed on a terminal, plain columns in a pipe.

    Cells are shown as text, never as rich markup, so data cannot restyle the output. In a
    pipe, trailing spaces are removed from each line.
    """
    from rich import box
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    terminal = out.is_terminal
    table = Table(
        box=box.SIMPLE_HEAD if terminal else None,
        show_header=header,
        header_style="bold",
        title=title if terminal else None,
        title_justify="left",
        pad_edge=False,
        show_edge=False,
    )
    for name in columns:
        table.add_column(
            name, style=(styles or {}).get(name), no_wrap=not terminal, overflow="fold"
        )
    for row in rows:
        table.add_row(*(Text(cell_text(value)) for value in row))
    shown = Padding(table, (0, 0, 0, indent), expand=False) if indent else table
    if terminal:
        out.print(shown)
        return
    with out.capture() as captured:
        out.print(shown)
    out.file.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))
