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

__all__ = ["FIRST_SKIPPED", "print_report", "refuse_changes", "register"]

FIRST_SKIPPED = 3
"""How many files not registered are listed without ``--verbose``."""
FIRST_CHANGED = 20
"""How many changed files are listed without ``--verbose``."""


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
    accept_changes: Annotated[
        bool,
        typer.Option(
            "--accept-changes",
            help="Record files whose content changed under the same name as their new "
            "version (without it they are reported and left as catalogued).",
        ),
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="List every file not registered.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON (every field of it).")
    ] = False,
) -> None:
    """Catalogue the ALF sessions and datasets under PATH; safe to run again at any time.

    Unchanged files are not hashed again, vanished files are marked missing, and a file
    only touched gets its new time. A file whose content changed under the same name is
    reported as changed and left as catalogued (exit status 1) unless --accept-changes
    records it. Files that are not ALF are listed with the reason, never dropped silently.
    Work is committed every few seconds, so an interrupted run keeps what it finished. A
    progress bar shows on a terminal.
    """
    start = None if path is None else path.expanduser().absolute()
    with open_trove(ctx, near=start) as trove:
        report = trove.register(start, hash=hash_, accept_changes=accept_changes)
    if as_json:
        echo_json(dataclasses.asdict(report))
        refuse_changes(report)
        return
    print_report(console(), report, verbose=verbose)
    refuse_changes(report)


def refuse_changes(report: RegisterReport) -> None:
    """Fail (exit status 1, one line) when changed files were left as catalogued."""
    if not report.changes_refused:
        return
    from ..errors import HashMismatchError
    from ..files.verify import accept_command

    first = report.changed[0]
    where = report.root / first.path if report.changes_refused == 1 else "PATH"
    raise HashMismatchError(
        first.path,
        first.recorded,
        first.found,
        message=(
            f"{report.changes_refused} file(s) changed under the same name and were not "
            f"recorded, e.g. {first.path} ({first.what} {first.recorded} -> {first.found}); "
            f"restore them, or record them on purpose with "
            f"{accept_command(where)}"
        ),
    )


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
                f"{report.datasets_unchanged} unchanged, {report.datasets_changed} changed, "
                f"{report.datasets_missing} missing on disk",
            ),
            (
                "hashed",
                f"{report.files_hashed} files, {report.bytes_hashed / 1e6:.1f} MB; "
                f"{report.hidden} hidden files ignored",
            ),
        ],
        header=False,
        styles={"what": "bold"},
        indent=inner,
    )
    if report.datasets_changed:
        out.print(
            Text(
                f"{pad}{report.changes_summary()}:",
                style="yellow" if report.changes_accepted else "red",
            )
        )
        listed = report.changed if verbose else report.changed[:FIRST_CHANGED]
        print_table(
            out,
            ["path", "what", "recorded", "found"],
            [(item.path, item.what, item.recorded, item.found) for item in listed],
            header=False,
            indent=inner,
        )
        if report.datasets_changed > len(listed):
            hint = "" if verbose else "; trove register --verbose lists them all"
            out.print(Text(f"{pad}  ... and {report.datasets_changed - len(listed)} more{hint}"))
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
