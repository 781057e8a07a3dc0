"""``trove analysis list|run``: the lab's analysis functions, run over sessions with provenance."""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import ValidationError
from .base import TroveGroup, open_trove
from .output import console, echo_json, frame_records, note, print_table

__all__ = ["analysis_app", "parse_params"]

analysis_app = typer.Typer(
    name="analysis",
    cls=TroveGroup,
    no_args_is_help=True,
    help="List and run the lab's analysis functions; results are kept with provenance.",
)

AnalysisDir = Annotated[
    Path | None,
    typer.Option(
        "--analysis-dir",
        metavar="DIR",
        show_default=False,
        help="Where analyses are imported from (default: NEUROTROVE_ANALYSIS_DIR).",
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def parse_params(items: list[str]) -> dict[str, Any]:
    """Read ``--param name=value`` options; a value is JSON when it parses as JSON, else text.

    Examples
    --------
    >>> parse_params(["window=0.5", "label=left", "bins=[1, 2]"])
    {'window': 0.5, 'label': 'left', 'bins': [1, 2]}
    """
    params: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise ValidationError(f"--param {item!r} must be NAME=VALUE, e.g. --param window=0.5")
        try:
            params[name.strip()] = json.loads(text)
        except ValueError:
            params[name.strip()] = text
    return params


@analysis_app.command("list")
def list_analyses(
    ctx: typer.Context, analysis_dir: AnalysisDir = None, as_json: AsJson = False
) -> None:
    """List the analyses in the analysis folder: inputs, outputs, parameters, stored results."""
    with open_trove(ctx, remote=True) as trove:
        if analysis_dir is not None:
            trove.analysis.analysis_dir = analysis_dir
        frame = trove.analysis.list()
    if as_json:
        echo_json(frame_records(frame))
        return
    if frame.empty:
        note("no analyses in the analysis folder; declare one with @analysis(...)")
        return
    columns = ["name", "inputs", "outputs", "params", "stored", "problem"]
    rows = [[name, *(row[c] for c in columns[1:])] for name, row in frame.iterrows()]
    print_table(console(), columns, rows, styles={"name": "bold"})


@analysis_app.command("run")
def run_analysis(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="SCRIPT.FUNCTION", help="The analysis.")],
    sessions: Annotated[
        list[str] | None,
        typer.Option("--session", "-e", help="A session (eid or subject/date/number); repeat."),
    ] = None,
    subject: Annotated[
        str | None, typer.Option("--subject", "-s", help="Sessions of subjects matching this.")
    ] = None,
    params: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", metavar="NAME=VALUE", help="A parameter (JSON value)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Compute even where a result holds.")
    ] = False,
    skip_errors: Annotated[
        bool, typer.Option("--skip-errors", help="Report failing sessions and go on.")
    ] = False,
    workers: Annotated[
        int, typer.Option("--workers", "-w", min=0, help="Worker processes (0: this process).")
    ] = 0,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            metavar="ADDRESS",
            help="Run on a Dask cluster, e.g. tcp://127.0.0.1:8786 (needs dask[distributed]).",
        ),
    ] = None,
    analysis_dir: AnalysisDir = None,
    as_json: AsJson = False,
) -> None:
    """Run SCRIPT.FUNCTION on sessions, reusing results whose code and inputs are unchanged.

    Without --session, every session (of --subject) is analysed. The function runs here,
    in --workers processes, or on a Dask cluster (--scheduler); workers import it from the
    same analysis folder. The exit code is 1 when a session failed.
    """
    conditions: dict[str, Any] = {"subject": subject} if subject is not None else {}
    if workers and scheduler:
        raise ValidationError("give --workers or --scheduler, not both")
    with open_trove(ctx, remote=True) as trove, ExitStack() as stack:
        if analysis_dir is not None:
            trove.analysis.analysis_dir = analysis_dir
        executor: Any = workers or None
        if scheduler is not None:
            try:
                from distributed import Client
            except ImportError:
                raise ValidationError(
                    "--scheduler needs Dask: pip install 'neurotrove[pipeline]'"
                ) from None
            executor = stack.enter_context(Client(scheduler))  # type: ignore[no-untyped-call]
        report = trove.analysis.run(
            name,
            sessions or None,
            params=parse_params(params or []),
            force=force,
            skip_errors=skip_errors,
            executor=executor,
            **conditions,
        )
    if as_json:
        echo_json(frame_records(report))
    else:
        columns = ["subject", "date", "number", "status", "outputs", "rows", "error"]
        rows = [[row[c] for c in columns] for _, row in report.iterrows()]
        print_table(console(), columns, rows, styles={"status": "bold"})
    failed = int((report["status"] == "failed").sum())
    if failed:
        typer.secho(
            f"error: {name} failed for {failed} of {len(report)} sessions", err=True, fg="red"
        )
        raise typer.Exit(1)
