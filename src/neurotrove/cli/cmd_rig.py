"""``trove rig validate|upload|list``: behaviour rig files (Antelop's rig JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import ValidationError
from .base import TroveGroup, open_trove
from .output import console, echo_json, frame_records, note, print_table

__all__ = ["MaskOption", "rig_app"]

rig_app = typer.Typer(
    name="rig",
    cls=TroveGroup,
    no_args_is_help=True,
    help="Check, upload and list behaviour rig files (Antelop's rig JSON format).",
)

MaskOption = Annotated[
    list[str] | None,
    typer.Option(
        "--mask",
        metavar="NAME:MODULE.FUNCTION[:DESCRIPTION]",
        show_default=False,
        help="A mask function of the rig, in the analysis folder (repeat for several).",
    ),
]
AnalysisOption = Annotated[
    Path | None,
    typer.Option(
        "--analysis-dir",
        metavar="DIR",
        show_default=False,
        help="Where mask functions are imported from (default: NEUROTROVE_ANALYSIS_DIR).",
    ),
]
RigFile = Annotated[Path, typer.Argument(metavar="FILE", help="The rig JSON file.")]


@rig_app.command("validate")
def validate(
    rig_file: RigFile,
    masks: MaskOption = None,
    analysis_dir: AnalysisOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the problems as JSON.")] = False,
) -> None:
    """List every problem of a rig file with its JSON path and the rule it breaks."""
    from ..behaviour import rig_problems
    from ..behaviour.interface import mask_definitions
    from ..behaviour.rigs import read_rig
    from ..config import Settings

    folder = analysis_dir or Settings.load().analysis_dir
    document, where = read_rig(rig_file)
    problems = rig_problems(document, masks=mask_definitions(masks or ()), analysis_dir=folder)
    if as_json:
        echo_json([{"path": p.path, "rule": p.rule, "message": p.message} for p in problems])
    elif problems:
        rows = [[p.path, p.rule, p.message] for p in problems]
        print_table(console(), ["path", "rule", "problem"], rows, styles={"path": "bold"})
    if problems:
        count = len(problems)
        raise ValidationError(
            f"{where} is not a valid rig: {count} problem{'s' if count != 1 else ''}",
            path=where,
        )
    if not as_json:
        features = document["features"]
        videos = document.get("videos") or []
        console().print(
            f"{where} is a valid rig: {len(features)} feature{'s' if len(features) != 1 else ''}"
            f" ({', '.join(f['name'] for f in features)}), {len(videos)} "
            f"video{'s' if len(videos) != 1 else ''}"
            + (f", {len(masks)} mask function{'s' if len(masks) != 1 else ''}" if masks else "")
        )


@rig_app.command("upload")
def upload(
    ctx: typer.Context,
    rig_file: RigFile,
    name: Annotated[str, typer.Option("--name", help="The rig's unique name.")],
    experimenter: Annotated[
        str | None, typer.Option("--experimenter", help="Who uploads it.", show_default=False)
    ] = None,
    masks: MaskOption = None,
    analysis_dir: AnalysisOption = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace a rig of that name no session uses.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the stored rig as JSON.")] = False,
) -> None:
    """Check a rig file and store it with one row per feature and its mask functions."""
    from ..behaviour.interface import mask_definitions

    definitions = mask_definitions(masks or ())
    with open_trove(ctx) as trove:
        if analysis_dir is not None:
            trove.behaviour.analysis_dir = analysis_dir
        stored = trove.behaviour.upload_rig(
            rig_file, name, experimenter=experimenter, masks=definitions, replace=replace
        )
    if as_json:
        echo_json(stored)
        return
    shown = ", ".join(stored["masks"]) or "none"
    console().print(
        f"Uploaded rig {name}: {len(stored['features'])} features "
        f"({', '.join(stored['features'])}); masks: {shown}."
    )


@rig_app.command("list")
def list_rigs(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the rigs with their features and masks."""
    with open_trove(ctx, remote=True) as trove:
        frame = trove.behaviour.rigs()
    if as_json:
        echo_json(frame_records(frame.drop(columns=["rig_json"])))
        return
    if frame.empty:
        note("no rigs yet; upload one with trove rig upload FILE --name NAME")
        return
    columns = ["name", "experimenter", "version", "animals", "features", "masks", "created_at"]
    rows = [[row[c] for c in columns] for _, row in frame.iterrows()]
    print_table(console(), columns, rows, styles={"name": "bold"})
