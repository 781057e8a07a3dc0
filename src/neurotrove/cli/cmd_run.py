"""``trove run STEP MODULE:FUNCTION``: run a step on every session that needs it."""

from __future__ import annotations

import dataclasses
import importlib
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import ValidationError
from .base import open_trove
from .output import console, echo_json, print_table

if TYPE_CHECKING:
    from ..pipeline.runner import RunReport

__all__ = ["load_function", "parse_size", "run"]

_SIZE = re.compile(r"\s*([0-9.]+(?:e[0-9]+)?)\s*([kmgtp]?i?b?)\s*", re.IGNORECASE)
_UNITS = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12, "p": 1e15}


def parse_size(text: str) -> float:
    """Read a size such as ``30GB``, ``500MiB`` or ``1e9`` as bytes.

    Examples
    --------
    >>> parse_size("30GB"), parse_size("1.5k"), parse_size("2GiB")
    (30000000000.0, 1500.0, 2147483648.0)
    """
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValidationError(f"--max-bytes {text!r} is not a size; write e.g. 30GB or 500MB")
    number, unit = float(match.group(1)), match.group(2).lower()
    prefix = unit[:1] if unit[:1] in _UNITS and unit[:1] != "b" else ""
    scale = 1024 ** "kmgtp".index(prefix) * 1024 if prefix and "i" in unit else _UNITS[prefix]
    return number * scale


def load_function(target: str) -> Callable[..., Any]:
    """Import ``module:function`` (the current folder is searched too, as uvicorn does)."""
    module_name, _, name = target.partition(":")
    if not module_name or not name:
        raise ValidationError(
            f"{target!r} must name a function as module:function, e.g. mylab.pipeline:register_vr"
        )
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValidationError(
            f"cannot import {module_name!r} ({error}); run from the folder holding it, or "
            f"install it",
            function=target,
        ) from None
    func = getattr(module, name, None)
    if not callable(func):
        raise ValidationError(f"{module_name} has no function {name!r}", function=target)
    return func  # type: ignore[no-any-return]


def run(
    ctx: typer.Context,
    step: Annotated[str, typer.Argument(help="The step to run.")],
    function: Annotated[
        str, typer.Argument(metavar="MODULE:FUNCTION", help="func(session) doing the step.")
    ],
    max_bytes: Annotated[
        str | None,
        typer.Option(
            "--max-bytes", metavar="SIZE", help="Start no new session past this output (30GB)."
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option("--workers", "-w", min=0, help="Worker processes (0: this process)."),
    ] = 0,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            metavar="ADDRESS",
            help="Run on a Dask cluster, e.g. tcp://127.0.0.1:8786 (needs dask[distributed]).",
        ),
    ] = None,
    retry_errors: Annotated[
        bool, typer.Option("--retry-errors", help="Run sessions that failed before, too.")
    ] = False,
    raise_errors: Annotated[
        bool, typer.Option("--raise-errors", help="Stop at the first failure.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the run's report as JSON.")
    ] = False,
) -> None:
    """Run STEP on each session that needs it; record each outcome in the catalogue.

    Sessions are claimed one at a time, so several trove run processes (on several
    machines) share the work without running any session twice. A failure is recorded with
    its traceback (trove errors STEP shows them) and the files it created are removed. The
    exit code is 1 when any session failed.
    """
    func = load_function(function)
    limit = parse_size(max_bytes) if max_bytes is not None else None
    if workers and scheduler:
        raise ValidationError("give --workers or --scheduler, not both")
    with open_trove(ctx) as trove:
        if scheduler is not None:
            try:
                from distributed import Client
            except ImportError:
                raise ValidationError(
                    "--scheduler needs Dask: pip install 'neurotrove[pipeline]'"
                ) from None
            with Client(scheduler) as client:  # type: ignore[no-untyped-call]
                report = trove.pipeline.run(
                    step,
                    func,
                    max_bytes=limit,
                    skip_errors=not retry_errors,
                    raise_errors=raise_errors,
                    executor=client,
                )
        else:
            report = trove.pipeline.run(
                step,
                func,
                max_bytes=limit,
                skip_errors=not retry_errors,
                raise_errors=raise_errors,
                executor=workers or None,
            )
    if as_json:
        echo_json(dataclasses.asdict(report))
    else:
        _print_report(report)
    if report.failed:
        attempted = len(report.done) + len(report.failed)
        typer.secho(
            f"error: {step} failed for {len(report.failed)} of {attempted} session"
            f"{'s' if attempted != 1 else ''}; trove errors {step} shows why",
            err=True,
            fg="red",
        )
        raise typer.Exit(1)


def _print_report(report: RunReport) -> None:
    from ..pipeline.runner import format_bytes

    rows = [
        ("done", f"{len(report.done)} ({format_bytes(report.output_bytes)})"),
        ("failed", str(len(report.failed))),
        ("taken by other runners", str(len(report.taken))),
        (
            "not started",
            f"{report.not_started}" + (f" ({report.stopped})" if report.stopped else ""),
        ),
        ("time", f"{report.seconds:.1f} s"),
    ]
    print_table(console(), ["what", "count"], rows, header=False, styles={"what": "bold"})
