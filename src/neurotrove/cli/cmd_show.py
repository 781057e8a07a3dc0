"""``trove show EID_OR_PATH``: a session's details and its datasets by collection."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .base import SessionArgument, open_trove, session_argument
from .output import console, echo_json, print_table

__all__ = ["show", "summary"]


def summary(details: dict[str, Any], root: Any) -> dict[str, Any]:
    """Return the session's fields, its folder on disk and its datasets per collection."""
    datasets = details.pop("datasets")
    counts: dict[str, dict[str, int]] = {}
    for collection, exists in zip(datasets["collection"], datasets["exists"], strict=True):
        count = counts.setdefault(collection, {"datasets": 0, "missing": 0})
        count["datasets"] += 1
        count["missing"] += 0 if exists else 1
    details["path"] = str(root / details["folder"]) if details.get("folder") else None
    details["datasets"] = {name: counts[name] for name in sorted(counts)}
    return details


def show(
    ctx: typer.Context,
    session: SessionArgument,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show a session: every field, where it is, and how many datasets each collection has."""
    with open_trove(ctx, near=session, remote=True) as trove:
        details = trove.get_details(session_argument(trove.root, session), full=True)
        info = summary(details, trove.root)
    if as_json:
        echo_json(info)
        return
    out = console()
    counts = info.pop("datasets")
    print_table(
        out,
        ["field", "value"],
        info.items(),
        header=False,
        styles={"field": "bold"},
        title="session",
    )
    rows = [
        (name or "(session folder)", count["datasets"], count["missing"] or "")
        for name, count in counts.items()
    ]
    rows.append(
        (
            "total",
            sum(c["datasets"] for c in counts.values()),
            sum(c["missing"] for c in counts.values()) or "",
        )
    )
    print_table(out, ["collection", "datasets", "missing on disk"], rows, title="datasets")
