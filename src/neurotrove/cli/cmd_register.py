"""``trove register [PATH]``: catalogue the ALF sessions and datasets under a folder."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .base import open_trove
from .output import console, echo_json, print_table

if TYPE_CHECKING:
    from rich.console import Console

    from ..files.register import RegisterReport

__all__ = ["FIRST_SKIPPED", "print_report", "register"]

FIRST_SKIPPED = 3
"""How many files not registered are listed without ``--verbose``."""


def register(
    ctx: typer.Context,
    path: Annotated[
        Path | None,
        typer.Argument(
            show_default=False,
            help="A folder or file inside the trove (default: the whole trove).",
        ),
    ] = None,
    hash_: Annotated[
        bool,
        typer.Option(
            "--hash/--no-hash",
            help="Compute md5s of new and changed files (--no-hash: sizes only).",
        ),
    ] = True,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="List every file not registered.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON (every field of it).")
    ] = False,
) -> None:
    """Catalogue the ALF sessions and datasets under PATH; safe to run again at any time.

    Unchanged files are not hashed again, changed files are updated, vanished files are
    marked missing. Files that are not ALF are listed with the reason, never dropped
    silently. A progress bar shows on a terminal.
    """
    start = None if path is None else path.expanduser().absolute()
    with open_trove(ctx, near=start) as trove:
        report = trove.register(start, hash=hash_)
    if as_json:
        echo_json(dataclasses.asdict(report))
        return
    print_report(console(), report, verbose=verbose)


def print_report(
    out: Console, report: RegisterReport, *, verbose: bool = False, indent: int = 0
) -> None:
    """Print what a register run did, listing the first files not registered (or all)."""
    from rich.text import Text

    pad = " " * indent
    inner = indent + 2
    out.print(
        Text.assemble(pad, ("Registered", "green"), f" {report.root} in {report.seconds:.1f} s")
    )
    print_table(
        out,
        ["what", "count"],
        [
            ("sessions", f"{report.sessions_seen} found, {report.sessions_added} new"),
            (
                "datasets",
                f"{report.datasets_added} added, {report.datasets_updated} updated, "
                f"{report.datasets_unchanged} unchanged, {report.datasets_missing} "
                f"missing on disk",
            ),
            (
                "hashed",
                f"{report.bytes_hashed / 1e6:.1f} MB; {report.hidden} hidden files ignored",
            ),
        ],
        header=False,
        styles={"what": "bold"},
        indent=inner,
    )
    if report.skipped_count:
        shown = report.skipped if verbose else report.skipped[:FIRST_SKIPPED]
        out.print(
            Text(
                f"{pad}{report.skipped_count} not registered (not ALF, or not in a "
                f"session folder):",
                style="yellow",
            )
        )
        print_table(
            out,
            ["path", "reason"],
            [(item.path, item.reason) for item in shown],
            header=False,
            indent=inner,
        )
        rest = report.skipped_count - len(shown)
        if rest:
            hint = "" if verbose else "; trove register --verbose lists them all"
            out.print(Text(f"{pad}  ... and {rest} more{hint}"))
    if report.errors:
        out.print(Text(f"{pad}{len(report.errors)} could not be read:", style="red"))
        print_table(
            out,
            ["path", "reason"],
            [(item.path, item.reason) for item in report.errors],
            header=False,
            indent=inner,
        )
