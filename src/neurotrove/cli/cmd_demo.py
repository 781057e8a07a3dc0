"""``trove demo [DIR]``: build an example trove, search it, load from it, and say how.

Each step prints the command (``$``) and the Python (``>>>``) a user would type to do the
same, then what it gave. It needs no terminal and takes a few seconds.
"""

from __future__ import annotations

import shlex
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import ValidationError
from .base import options
from .cmd_register import print_report
from .output import console, print_table

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["DEFAULT_FOLDER", "MARKER", "check_folder", "demo"]

DEFAULT_FOLDER = "neurotrove-demo"
"""Where ``trove demo`` writes when given no folder (in the current directory)."""

MARKER = "DEMO"
"""A file in ``<DIR>/.trove`` saying ``trove demo`` made the folder (so it may be reused)."""

SUBJECT, TRIALS = "KS005", "_ibl_trials.table.pqt"
_TRIAL_COLUMNS = ["stimOn_times", "contrastLeft", "contrastRight", "choice", "feedbackType"]


def check_folder(folder: Path) -> bool:
    """Return whether ``folder`` already holds a demo trove; refuse any other non-empty folder.

    Raises
    ------
    ValidationError
        When ``folder`` is a file, or a folder with other content.
    """
    from ..trove.trove import TROVE_DIR

    if (folder / TROVE_DIR / MARKER).is_file():
        return True
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ValidationError(
            f"{folder} is not empty and was not made by trove demo; give a new or empty "
            f"folder: trove demo PATH",
            path=str(folder),
        )
    return False


def demo(
    ctx: typer.Context,
    directory: Annotated[
        Path | None,
        typer.Argument(
            metavar="DIR",
            show_default=False,
            help=f"Where to build the example trove (default: ./{DEFAULT_FOLDER}).",
        ),
    ] = None,
) -> None:
    """Build an example trove of an IBL-style lab, search it and load a trials table.

    Prints each step with the command and the Python that does the same. Run it again
    into the same folder at any time.
    """
    import neurotrove as nt
    from neurotrove.demo import write_example_tree
    from neurotrove.trove.trove import TROVE_DIR

    folder = directory if directory is not None else Path(DEFAULT_FOLDER)
    root, shown = folder.expanduser(), shlex.quote(str(folder))
    again = check_folder(root)
    out = console()
    out.print(
        f"[bold]neurotrove demo[/]: an example lab's data, catalogued, found and loaded"
        f"{' (again)' if again else ''}."
    )

    _step(out, 1, f"Write an example ALF tree into {folder}")
    with out.status("writing files...") if out.is_terminal else nullcontext():
        (root / TROVE_DIR).mkdir(parents=True, exist_ok=True)
        (root / TROVE_DIR / MARKER).write_text(
            "Made by trove demo; delete the whole folder when done.\n"
        )
        # Example data is never something to commit: git ignores the whole folder, so a
        # demo run inside a checkout (neurotrove's own, or a lab's project) leaves it clean.
        ignore = root / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# Made by trove demo: example data, not to commit\n*\n")
        tree = write_example_tree(root)
    files = sum(1 for p in root.rglob("*") if p.is_file() and TROVE_DIR not in p.parts)
    subjects = len({session.parent.parent.name for session in tree.sessions})
    _say(
        out,
        f"{len(tree.sessions)} sessions of {subjects} subjects, {files} files, laid out as "
        f"[<lab>/Subjects/]<subject>/<YYYY-MM-DD>/<NNN>/<collection>/<file>.",
    )

    _step(
        out,
        2,
        "Catalogue it",
        [f"trove init {shown}", f"cd {shown} && trove register"],
        [f"trove = nt.connect({str(folder)!r})", "trove.register()"],
    )
    with nt.connect(root, db=options(ctx).db, create=True) as trove:
        print_report(out, trove.register(), indent=3)

        _step(
            out,
            3,
            f"Search the sessions of {SUBJECT} that have a trials table",
            [f"trove search --subject {SUBJECT} --datasets {TRIALS}"],
            [f"trove.search(subject={SUBJECT!r}, datasets=[{TRIALS!r}])"],
        )
        sessions = trove.search(subject=SUBJECT, datasets=[TRIALS])
        columns = ["lab", "subject", "date", "number"]
        print_table(
            out,
            ["eid", *columns],
            (
                [eid, *row]
                for eid, row in zip(sessions.index, sessions[columns].values, strict=True)
            ),
            styles={"eid": "cyan"},
            indent=3,
        )
        eid = str(sessions.index[0])

        _step(
            out,
            4,
            "List the datasets of the newest",
            [f"trove ls {eid}"],
            [f"trove.list_datasets({eid!r})"],
        )
        out.print(
            "\n".join(f"   {rel_path}" for rel_path in trove.list_datasets(eid)), markup=False
        )

        _step(
            out,
            5,
            "Load its trials",
            [f"trove get {eid} {TRIALS} --to /tmp"],
            [
                f"trials = trove.load_object({eid!r}, 'trials', collection='alf')",
                "trials.to_df().head()",
            ],
        )
        trials = trove.load_object(eid, "trials", collection="alf")
    _print_trials(out, trials)
    _next_steps(out, shown, eid)


def _step(
    out: Console,
    number: int,
    title: str,
    commands: list[str] | None = None,
    python: list[str] | None = None,
) -> None:
    out.print(f"\n[bold]{number}. {_escape(title)}[/]")
    _say(out, "", commands=commands, python=python)


def _say(
    out: Console, text: str, *, commands: list[str] | None = None, python: list[str] | None = None
) -> None:
    """Print narration, then the command lines and Python lines that do the same."""
    for line in commands or []:
        out.print(f"   [dim]$[/] [cyan]{_escape(line)}[/]")
    for line in python or []:
        out.print(f"   [dim]>>>[/] [green]{_escape(line)}[/]")
    if text:
        out.print(f"   {_escape(text)}")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _print_trials(out: Console, trials: Any) -> None:
    frame = trials.to_df()
    correct = float((frame["feedbackType"] > 0).mean())
    _say(
        out,
        f"{len(frame)} trials, {len(frame.columns)} attributes, "
        f"{correct:.0%} correct; the first five:",
    )
    head = frame[_TRIAL_COLUMNS].head()
    print_table(
        out,
        ["trial", *_TRIAL_COLUMNS],
        (
            [index, *row]
            for index, row in zip(head.index, head.itertuples(index=False), strict=True)
        ),
        indent=3,
    )


def _next_steps(out: Console, shown: str, eid: str) -> None:
    out.print("\n[bold]Next[/], from inside the trove:")
    _say(
        out,
        "",
        commands=[
            f"cd {shown}",
            f"trove show {eid}",
            f"trove get {eid} {TRIALS} --to /tmp",
            "trove search --lab mainenlab --date-range 2019-04-02, --json",
            "trove user add alice && trove serve   # share it with the lab over HTTP",
        ],
        python=["import neurotrove as nt; nt.connect('.').search(lab='cortexlab')"],
    )
