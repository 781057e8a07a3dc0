"""``trove ephys import-alf|import-nwb|import-allen``: fill the probe, channel and unit tables.

``trove register`` catalogues spike-sorting output as datasets; these commands read it into
``trove.ephys``'s tables (what ``get_units`` and ``get_session_table`` answer from).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .base import TroveGroup, open_trove, session_argument
from .output import console, echo_json, print_table

if TYPE_CHECKING:
    from ..ephys.report import ImportReport

__all__ = ["ephys_app"]

ephys_app = typer.Typer(
    name="ephys",
    cls=TroveGroup,
    no_args_is_help=True,
    help="Import probes, channels and units (from ALF datasets, NWB files or an Allen cache).",
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print the import's report as JSON.")]


@ephys_app.command("import-alf")
def import_alf(
    ctx: typer.Context,
    session: Annotated[
        str | None,
        typer.Argument(
            metavar="[EID_OR_PATH]",
            show_default=False,
            help="One session (default: every session with clusters.* datasets).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Import each registered collection holding clusters.* as a probe (run after register)."""
    with open_trove(ctx, near=session, remote=True) as trove:
        eid = None if session is None else session_argument(trove.root, session)
        report = trove.ephys.import_alf(eid)
    _show(report, as_json)


@ephys_app.command("import-nwb")
def import_nwb(
    ctx: typer.Context,
    session: Annotated[
        str,
        typer.Argument(
            metavar="EID_OR_PATH",
            help="The session: an eid, subject/YYYY-MM-DD/NNN, or a path in its folder.",
        ),
    ],
    nwb_file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            help="The NWB file: a path, else a file in the session folder; on a served "
            "trove it is uploaded and kept as a dataset of the session.",
        ),
    ],
    as_json: JsonOption = False,
) -> None:
    """Import an NWB file's electrodes (channels, by electrode group) and units."""
    file = nwb_file.expanduser()
    with open_trove(ctx, near=session, remote=True) as trove:
        report = trove.ephys.import_nwb(
            session_argument(trove.root, session), file.absolute() if file.exists() else file
        )
    _show(report, as_json)


@ephys_app.command("import-allen")
def import_allen(
    ctx: typer.Context,
    directory: Annotated[
        Path,
        typer.Argument(
            metavar="DIR",
            help="An Allen project cache: manifest.json (or the folder holding it) with "
            "sessions, probes, channels and units.csv.",
        ),
    ],
    lab: Annotated[
        str | None,
        typer.Option("--lab", metavar="LAB", show_default=False, help="File its sessions here."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Import an Allen project cache's sessions, probes, channels and units."""
    with open_trove(ctx, remote=True) as trove:
        report = trove.ephys.import_allen(directory, lab=lab)
    _show(report, as_json)


def _show(report: ImportReport, as_json: bool) -> None:
    if as_json:
        echo_json(dataclasses.asdict(report))
        return
    out = console()
    rows = [
        ("sessions", len(report.sessions)),
        ("probes", report.probes),
        ("channels", report.channels),
        ("units", report.units),
    ]
    print_table(out, ["what", "count"], rows, header=False, styles={"what": "bold"})
    if report.skipped:
        out.print(f"{len(report.skipped)} not imported:", style="yellow", markup=False)
        print_table(out, ["what", "why"], report.skipped, header=False, indent=2)
