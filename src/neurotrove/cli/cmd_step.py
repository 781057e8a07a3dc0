"""``trove step add|list|remove``: the pipeline's processing steps (``trove.pipeline``)."""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated

import typer

from .base import TroveGroup, open_trove
from .output import console, echo_json, frame_records, note, print_table
from .values import conditions

__all__ = ["step_app"]

step_app = typer.Typer(
    name="step",
    cls=TroveGroup,
    no_args_is_help=True,
    help="Add, list and remove processing steps (trove run runs them, trove status counts).",
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@step_app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The step's name, e.g. suite2p.")],
    requires: Annotated[
        list[str] | None,
        typer.Option(
            "--requires",
            metavar="STEP",
            show_default=False,
            help="A step that must be done for a session first (repeat for several).",
        ),
    ] = None,
    outputs: Annotated[
        list[str] | None,
        typer.Option(
            "--output",
            "--outputs",
            metavar="PATTERN",
            show_default=False,
            help="Files it writes, a glob in the session folder such as 'suite2p/**' (repeat "
            "for several); used to measure output, clean up failures and check.",
        ),
    ] = None,
    where: Annotated[
        list[str] | None,
        typer.Option(
            "--where",
            metavar="CONDITION",
            show_default=False,
            help="Which sessions it applies to: FIELD=VALUE or FIELD OP VALUE, e.g. "
            "json.imaging=true, 'number>1', 'subject regex ^ATL' (repeat: all must hold).",
        ),
    ] = None,
    manual: Annotated[
        bool,
        typer.Option("--manual", help="A step a person sets (a QC step); trove run refuses it."),
    ] = False,
    description: Annotated[
        str | None,
        typer.Option("--description", metavar="TEXT", show_default=False, help="What it does."),
    ] = None,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace", help="Redefine an existing step (its sessions' statuses are kept)."
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Define a processing step: what it requires, writes, and which sessions it applies to."""
    with open_trove(ctx) as trove:
        step = trove.pipeline.add_step(
            name,
            requires=requires or (),
            outputs=outputs or (),
            where=conditions(where or ()) or None,
            manual=manual,
            description=description,
            replace=replace,
        )
    if as_json:
        echo_json(dataclasses.asdict(step))
        return
    needs = f", after {', '.join(step.requires)}" if step.requires else ""
    writes = f", writing {', '.join(step.outputs)}" if step.outputs else ""
    kind = "manual step" if step.manual else "step"
    console().print(
        f"{'Redefined' if replace else 'Added'} {kind} {step.name}{needs}{writes}.",
        markup=False,
    )


@step_app.command("list")
def list_steps(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the steps with what they require, write and apply to."""
    with open_trove(ctx, remote=True) as trove:
        frame = trove.pipeline.steps()
    if as_json:
        echo_json(frame_records(frame))
        return
    if frame.empty:
        note("no pipeline steps yet; add one with trove step add NAME")
        return
    columns = ["requires", "outputs", "conditions", "manual", "description"]
    rows = [
        [name, *(_shown(row[c]) if c == "conditions" else row[c] for c in columns)]
        for name, row in frame.iterrows()
    ]
    print_table(console(), ["step", *columns], rows, styles={"step": "bold"})


def _shown(stored: object) -> str:
    """Show a step's stored conditions (``{field: [value, op]}``) as ``--where`` takes them."""
    if not isinstance(stored, dict):
        return ""
    parts = []
    for field, (value, op) in stored.items():
        text = value if isinstance(value, str) else json.dumps(value)
        parts.append(f"{field}={text}" if op == "==" else f"{field} {op} {text}")
    return ", ".join(parts)


@step_app.command("remove")
def remove(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The step to remove.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove a step and every status recorded for it (refused while other steps need it)."""
    with open_trove(ctx) as trove:
        trove.pipeline.step(name)  # an unknown step fails before the question
        if not yes:
            typer.confirm(
                f"Remove step {name} and the status of every session for it?", abort=True
            )
        trove.pipeline.remove_step(name)
    console().print(f"Removed step {name}.", markup=False)
