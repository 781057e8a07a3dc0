"""An Allen cache's natural movie and scene templates: aggregates of a stimulus set.

AllenSDK's cache keeps them beside the manifest, at the paths its ``natural_movie`` and
``natural_scene`` entries name (``natural_movie_templates/natural_movie_<n>.h5``, a NumPy
``.npy`` array despite its name, and ``natural_scene_templates/natural_scene_<n>.tiff``).
:func:`register_templates` files them as the aggregates
``aggregates/StimulusSets/allen/naturalMovie.template.<n>.npy`` and
``naturalScene.template.<n>.tiff`` (:mod:`neurotrove.ephys.templates`);
:func:`export_templates` writes the templates of the exported sessions' stimulus sets back
where AllenSDK looks.
"""

from __future__ import annotations

import filecmp
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..ephys.templates import ALLEN_STIMULUS_SET, STIMULUS_SETS, stimulus_set_of
from ..errors import ConflictError
from ..files.aggregates import aggregate_folder
from ..loaders import load_file

if TYPE_CHECKING:
    from ..trove.trove import Trove

__all__ = ["export_templates", "register_templates", "template_files"]

# manifest key -> (the aggregate's name, the export's path, whether the file is a scene)
_KINDS = {
    "natural_movie": (
        "naturalMovie.template.{}.npy",
        "natural_movie_templates/natural_movie_{}.h5",
    ),
    "natural_scene": (
        "naturalScene.template.{}.tiff",
        "natural_scene_templates/natural_scene_{}.tiff",
    ),
}
_OBJECTS = {"naturalMovie": "natural_movie", "naturalScene": "natural_scene"}


def template_files(paths: Mapping[str, str]) -> dict[str, Path]:
    """Return the cache's template files, by the aggregate name each is filed under.

    ``paths`` are the manifest's resolved patterns (``.../natural_movie_%d.h5``).
    """
    found: dict[str, Path] = {}
    for key, (name, _) in _KINDS.items():
        pattern = Path(paths.get(key, ""))
        if pattern.name.count("%d") != 1 or not pattern.parent.is_dir():
            continue
        head, tail = pattern.name.split("%d")
        match = re.compile(rf"{re.escape(head)}(\d+){re.escape(tail)}").fullmatch
        for file in sorted(pattern.parent.iterdir()):
            number = match(file.name)
            if number is not None and file.is_file():
                found[name.format(int(number.group(1)))] = file
    return found


def register_templates(trove: Trove, files: Mapping[str, Path]) -> int:
    """File templates as aggregates of the stimulus set ``allen``; return how many are new.

    Each is linked (or copied, across file systems) into
    ``aggregates/StimulusSets/allen/`` under the data root, then registered. A template
    already there with the same content is left as it is.

    Raises
    ------
    ConflictError
        When the trove's template of that name has other content.
    """
    if not files:
        return 0
    folder = trove.root / aggregate_folder(STIMULUS_SETS, ALLEN_STIMULUS_SET)
    folder.mkdir(parents=True, exist_ok=True)
    added = 0
    for name, source in files.items():
        target = folder / name
        if target.exists():
            if filecmp.cmp(source, target, shallow=False):
                continue
            raise ConflictError(
                f"{target} holds another {name} than the Allen cache's {source}; move the "
                f"trove's aside (or keep it in a revision folder, #<date>#/) and import again",
                path=str(target),
            )
        _place(source, target)
        added += 1
    trove.register(folder, progress=False)
    return added


def _place(source: Path, target: Path) -> None:
    """Link ``source`` at ``target`` (or copy it there), appearing whole or not at all."""
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".allen-") as scratch:
        staged = Path(scratch) / target.name
        try:
            os.link(source, staged)
        except OSError:
            shutil.copyfile(source, staged)
        os.replace(staged, target)


def export_templates(
    trove: Trove,
    stage: Callable[[Path], AbstractContextManager[Path]],
    target: Path,
    eids: Iterable[str],
) -> int:
    """Write the templates of the sessions' stimulus sets into an exported cache.

    Movies become ``natural_movie_templates/natural_movie_<n>.h5`` (a ``.npy`` array, as
    AllenSDK reads it), scenes ``natural_scene_templates/natural_scene_<n>.tiff``; a
    template of another format is converted. Returns how many were written.

    Raises
    ------
    ConflictError
        When two of the sets hold different templates of the same number.
    """
    sets = sorted({found for eid in eids if (found := stimulus_set_of(trove, str(eid)))})
    chosen: dict[str, tuple[str, Path]] = {}  # export path -> (set, the trove's file)
    for name in sets:
        listed = trove.list_aggregates(STIMULUS_SETS, name, details=True)
        for row in listed.to_dict("records"):
            key = _OBJECTS.get(str(row["object"]))
            extra = str(row["extra"] or "")
            if row["identifier"] != name or key is None or not extra.isdigit():
                continue
            relative = _KINDS[key][1].format(int(extra))
            if relative in chosen and chosen[relative][0] == name:
                continue  # another revision: the default one is loaded below
            path = trove.load_aggregate(STIMULUS_SETS, name, str(row["name"]), download_only=True)
            if relative in chosen and not filecmp.cmp(chosen[relative][1], path, shallow=False):
                raise ConflictError(
                    f"stimulus sets {chosen[relative][0]!r} and {name!r} of the exported "
                    f"sessions hold different templates for {relative}; an Allen cache has "
                    f"one of each: export the sessions of one set at a time",
                    path=relative,
                )
            chosen[relative] = (name, Path(path))
    for relative, (_, source) in sorted(chosen.items()):
        with stage(target / relative) as staged:
            staged.parent.mkdir(parents=True, exist_ok=True)
            _write_as(source, staged, scene=relative.endswith(".tiff"))
    return len(chosen)


def _write_as(source: Path, staged: Path, *, scene: bool) -> None:
    """Copy a template into the export, converted to the format AllenSDK reads."""
    suffix = source.suffix.lower()
    if (scene and suffix in (".tif", ".tiff")) or (not scene and suffix == ".npy"):
        shutil.copyfile(source, staged)
        return
    data: Any = np.asarray(load_file(source))
    if scene:
        import tifffile

        tifffile.imwrite(staged, data)
    else:
        with staged.open("wb") as stream:
            np.save(stream, data, allow_pickle=False)
