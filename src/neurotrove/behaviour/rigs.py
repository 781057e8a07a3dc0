"""Rig files: read them, check them, and say precisely what is wrong with bad ones.

A rig file is Antelop's behaviour rig JSON, taken unchanged. It is checked in two passes,
and every problem of both is reported, each with its JSON path and the rule it breaks:

1. the JSON Schema shipped with neurotrove (``rig.schema.json``; the rule is the schema
   keyword, such as ``required`` or ``enum``);
2. rules the schema cannot express: ``unique-name`` (features, videos and masks),
   ``video-exists`` (a feature's ``source.video`` is one of ``videos``),
   ``module-required`` (a ``processing`` feature names its module), ``animal-required``
   and ``animal-of-world`` (only ``self`` features belong to an animal), ``animal-numbers``
   (animals are numbered 1 to N without gaps), ``alf-name`` (a name must hold a letter or
   digit), and for mask functions ``function-name``, ``importable`` and ``callable``.

Examples
--------
>>> rig = {"specification": "antelop-behaviour", "version": "1", "reference_point": "corner",
...        "features": [{"name": "LED_1", "source": {"source_type": "stimulus"},
...                      "data_type": "interval", "description": "LED", "coordinates": [1, 2]},
...                     {"name": "nose", "source": {"source_type": "processing", "video": "top"},
...                      "ownership": {"ownership": "self", "animal": 2},
...                      "data_type": "kinematics", "description": "DLC nose"}]}
>>> for problem in rig_problems(rig):
...     print(problem)
$.features[0].coordinates: holds 2 numbers; coordinates are exactly 3 (x, y, z) [minItems]
$.features[1].ownership.animal: animal 2 is used but animal 1 is not; animals are numbered
  1, 2, 3 ... without gaps [animal-numbers]
$.features[1].source.module: a processing feature names its NWB processing module [module-required]
$.features[1].source.video: there is no video 'top'; the rig has no videos [video-exists]
"""

from __future__ import annotations

import difflib
import functools
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import ValidationError
from .masks import check_function_name, load_function

__all__ = [
    "Feature",
    "MaskDefinition",
    "Rig",
    "RigProblem",
    "Video",
    "alf_objects",
    "build_rig",
    "check_rig",
    "parse_masks",
    "read_rig",
    "rig_problems",
    "rig_schema",
]


@dataclass(frozen=True)
class RigProblem:
    """One problem of a rig file: where (a JSON path), which rule, and what is wrong.

    Examples
    --------
    >>> print(RigProblem("$.features[0].name", "required", "required key 'name' is missing"))
    $.features[0].name: required key 'name' is missing [required]
    """

    path: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message} [{self.rule}]"


@dataclass(frozen=True)
class Feature:
    """A feature of a rig: something recorded in it, and where the NWB file holds it."""

    number: int
    name: str
    object: str
    source_type: str
    module: str | None
    video: str | None
    ownership: str
    animal: int | None
    data_type: str
    coordinates: tuple[float, float, float] | None
    description: str


@dataclass(frozen=True)
class Video:
    """A video of a rig, kept as an external file of the NWB file."""

    name: str
    object: str
    description: str
    format: str
    reference_point: str | None


@dataclass(frozen=True)
class MaskDefinition:
    """A named mask of a rig and the ``module.function`` computing it."""

    name: str
    function: str
    description: str
    object: str


@dataclass(frozen=True)
class Rig:
    """A checked rig file."""

    specification: str
    version: str
    reference_point: str
    features: tuple[Feature, ...]
    videos: tuple[Video, ...]
    document: dict[str, Any]

    @property
    def animals(self) -> int:
        """How many animals the rig's features belong to (the highest animal number)."""
        return max((f.animal or 0 for f in self.features), default=0)


@functools.cache
def rig_schema() -> dict[str, Any]:
    """Return the rig JSON Schema shipped with neurotrove (draft-07).

    Examples
    --------
    >>> rig_schema()["required"]
    ['specification', 'version', 'reference_point', 'features']
    """
    text = resources.files(__package__).joinpath("rig.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def read_rig(source: str | os.PathLike[str] | Mapping[str, Any]) -> tuple[Any, str]:
    """Return a rig document and how to name it in messages: a file's path, or ``"rig"``.

    Raises
    ------
    ValidationError
        When the file cannot be read or is not JSON (with the line and column).
    """
    if isinstance(source, Mapping):
        return dict(source), "rig"
    path = Path(source).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValidationError(f"rig file {path} does not exist", path=str(path)) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ValidationError(f"cannot read rig file {path}: {error}", path=str(path)) from None
    try:
        return json.loads(text), str(path)
    except json.JSONDecodeError as error:
        raise ValidationError(
            f"rig file {path} is not JSON: {error.msg} at line {error.lineno} column "
            f"{error.colno}",
            path=str(path),
        ) from None


# -- the schema pass ------------------------------------------------------------------


def _json_path(parts: Iterable[Any]) -> str:
    text = "$"
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _order(problem: RigProblem) -> tuple[Any, ...]:
    pieces = re.findall(r"\[(\d+)\]|\.([^.\[]+)", problem.path)
    # The path's pieces as one tuple, so a shorter path sorts first instead of its rule (a
    # str) being compared with the longer path's next piece (a tuple).
    return (tuple((0, int(n), "") if n else (1, 0, key) for n, key in pieces), problem.rule)


def _noun(parts: Sequence[Any]) -> str:
    if not parts:
        return "a rig file"
    if len(parts) >= 2 and parts[-2] == "features":
        return "a feature"
    if len(parts) >= 2 and parts[-2] == "videos":
        return "a video"
    return {"source": "a feature's source", "ownership": "a feature's ownership"}.get(
        str(parts[-1]), "this object"
    )


_JSON_TYPES = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "array": "a list",
    "object": "an object",
}


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "null"


def _schema_problems(document: Any) -> list[RigProblem]:
    from jsonschema import Draft7Validator

    problems: list[RigProblem] = []
    for error in Draft7Validator(rig_schema()).iter_errors(document):
        parts = list(error.absolute_path)
        rule = str(error.validator)
        value = error.instance
        if rule == "required":
            wanted = list(error.validator_value)
            for key in wanted:
                if isinstance(value, dict) and key not in value:
                    problems.append(
                        RigProblem(
                            _json_path([*parts, key]),
                            rule,
                            f"required key {key!r} is missing; {_noun(parts)} needs "
                            f"{', '.join(wanted)}",
                        )
                    )
        elif rule == "additionalProperties":
            allowed = list(error.schema.get("properties", {}))
            for key in sorted(set(value) - set(allowed)):
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                problems.append(
                    RigProblem(
                        _json_path([*parts, key]),
                        rule,
                        f"unknown key {key!r}; {hint}{_noun(parts)} has only {', '.join(allowed)}",
                    )
                )
        elif rule == "enum":
            choices = ", ".join(repr(v) for v in error.validator_value)
            problems.append(
                RigProblem(_json_path(parts), rule, f"{value!r} is not one of {choices}")
            )
        elif rule == "type":
            expected = _JSON_TYPES.get(str(error.validator_value), str(error.validator_value))
            problems.append(
                RigProblem(
                    _json_path(parts),
                    rule,
                    f"{value!r} is {_type_of(value)}; it must be {expected}",
                )
            )
        elif rule in ("minItems", "maxItems") and parts and parts[-1] == "coordinates":
            problems.append(
                RigProblem(
                    _json_path(parts),
                    rule,
                    f"holds {len(value)} numbers; coordinates are exactly 3 (x, y, z)",
                )
            )
        elif rule == "minItems":
            problems.append(
                RigProblem(_json_path(parts), rule, "is empty; a rig needs at least one feature")
            )
        elif rule == "minLength":
            problems.append(RigProblem(_json_path(parts), rule, "is empty"))
        elif rule == "minimum":
            problems.append(
                RigProblem(
                    _json_path(parts),
                    rule,
                    f"{value!r} is below {error.validator_value}; animals are numbered from 1",
                )
            )
        else:
            problems.append(RigProblem(_json_path(parts), rule, error.message))
    return problems


# -- rules the schema cannot express ----------------------------------------------------


def alf_objects(names: Sequence[str]) -> list[str]:
    """Return an ALF object name for each name.

    Runs of non-word characters become ``_``, and a name that would repeat an earlier one
    gets ``_2``, ``_3`` ...

    Examples
    --------
    >>> alf_objects(["LED 1", "LED-1", "nose", "_tail"])
    ['LED_1', 'LED_1_2', 'nose', 'tail']
    """
    objects: list[str] = []
    for name in names:
        base = re.sub(r"\W+", "_", name).strip("_") or "x"
        candidate, count = base, 1
        while candidate in objects:
            count += 1
            candidate = f"{base}_{count}"
        objects.append(candidate)
    return objects


def _items(document: Any, key: str) -> list[tuple[int, dict[str, Any]]]:
    values = document.get(key) if isinstance(document, dict) else None
    if not isinstance(values, list):
        return []
    return [(i, v) for i, v in enumerate(values) if isinstance(v, dict)]


def _unique_names(entries: list[tuple[int, dict[str, Any]]], where: str) -> list[RigProblem]:
    problems = []
    first: dict[str, int] = {}
    for index, entry in entries:
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            continue
        if name in first:
            problems.append(
                RigProblem(
                    f"{where}[{index}].name",
                    "unique-name",
                    f"{name!r} is also the name of {where.removeprefix('$.')}[{first[name]}]; "
                    f"names must be unique within a rig",
                )
            )
        else:
            first[name] = index
        if not re.search(r"\w", name):
            problems.append(
                RigProblem(
                    f"{where}[{index}].name",
                    "alf-name",
                    f"{name!r} holds no letter or digit, so it cannot name ALF datasets",
                )
            )
    return problems


def _semantic_problems(document: Any) -> list[RigProblem]:
    features = _items(document, "features")
    videos = _items(document, "videos")
    problems = _unique_names(features, "$.features") + _unique_names(videos, "$.videos")
    video_names = [v["name"] for _, v in videos if isinstance(v.get("name"), str)]
    used: dict[int, int] = {}  # animal number -> first feature index
    for index, feature in features:
        at = f"$.features[{index}]"
        source = feature.get("source")
        if isinstance(source, dict):
            if source.get("source_type") == "processing" and "module" not in source:
                problems.append(
                    RigProblem(
                        f"{at}.source.module",
                        "module-required",
                        "a processing feature names its NWB processing module",
                    )
                )
            video = source.get("video")
            if isinstance(video, str) and video and video not in video_names:
                known = (
                    f"the rig's videos are {', '.join(map(repr, video_names))}"
                    if video_names
                    else "the rig has no videos"
                )
                problems.append(
                    RigProblem(
                        f"{at}.source.video",
                        "video-exists",
                        f"there is no video {video!r}; {known}",
                    )
                )
        ownership = feature.get("ownership")
        if not isinstance(ownership, dict):
            continue
        owner, animal = ownership.get("ownership"), ownership.get("animal")
        if owner == "self" and "animal" not in ownership:
            problems.append(
                RigProblem(
                    f"{at}.ownership.animal",
                    "animal-required",
                    "a self feature says which animal it belongs to (1 for the first)",
                )
            )
        elif owner == "world" and "animal" in ownership:
            problems.append(
                RigProblem(
                    f"{at}.ownership.animal",
                    "animal-of-world",
                    "a world feature belongs to the rig, not to an animal; make it self or "
                    "remove animal",
                )
            )
        if owner == "self" and isinstance(animal, int) and not isinstance(animal, bool):
            used.setdefault(animal, index)
    numbers = sorted(used)
    for missing in (n for n in range(1, numbers[-1] if numbers else 1) if n not in used):
        above = next(n for n in numbers if n > missing)
        problems.append(
            RigProblem(
                f"$.features[{used[above]}].ownership.animal",
                "animal-numbers",
                f"animal {above} is used but animal {missing} is not; animals are numbered "
                f"1, 2, 3 ... without gaps",
            )
        )
    return problems


def parse_masks(
    masks: Iterable[Any] | None,
) -> tuple[list[MaskDefinition], list[RigProblem]]:
    """Read mask definitions (dicts with ``name``, ``function``, ``description``).

    Returns the definitions that are well formed and the problems of the others.

    Examples
    --------
    >>> masks, problems = parse_masks([{"name": "trials", "function": "masks.led_trials"},
    ...                                {"name": "trials", "function": "led"}])
    >>> [m.name for m in masks]
    ['trials']
    >>> for problem in problems:
    ...     print(problem)
    masks[1].function: 'led' must be module.function, e.g. masks.led_trials [function-name]
    masks[1].name: 'trials' is also the name of masks[0]; names must be unique within a rig
      [unique-name]
    """
    problems: list[RigProblem] = []
    entries: list[tuple[int, dict[str, Any]]] = []
    bad: set[int] = set()

    def problem(index: int, key: str, rule: str, message: str) -> None:
        problems.append(RigProblem(f"masks[{index}]{key}", rule, message))
        bad.add(index)

    for index, mask in enumerate(masks or ()):
        if isinstance(mask, MaskDefinition):
            mask = {"name": mask.name, "function": mask.function, "description": mask.description}
        if not isinstance(mask, Mapping):
            problem(
                index,
                "",
                "type",
                f"a mask is a dict with name, function and description, not {type(mask).__name__}",
            )
            continue
        entry = dict(mask)
        for key in sorted(set(entry) - {"name", "function", "description"}):
            problem(
                index,
                f".{key}",
                "additionalProperties",
                f"unknown key {key!r}; a mask has only name, function and description",
            )
        for key in ("name", "function"):
            if not isinstance(entry.get(key), str) or not entry.get(key):
                problem(index, f".{key}", "required", f"a mask needs a {key} (text)")
        if not isinstance(entry.get("description", ""), str):
            problem(index, ".description", "type", "a mask's description is text")
        if index not in bad:
            message = check_function_name(entry["function"])
            if message is not None:
                problem(index, ".function", "function-name", message)
        entries.append((index, entry))
    for found in _unique_names(entries, "$.masks"):
        problems.append(RigProblem(found.path.removeprefix("$."), found.rule, found.message))
        bad.add(int(found.path.split("[")[1].split("]")[0]))
    good = [entry for index, entry in entries if index not in bad]
    objects = alf_objects([e["name"] for e in good])
    definitions = [
        MaskDefinition(e["name"], e["function"], e.get("description") or "", obj)
        for e, obj in zip(good, objects, strict=True)
    ]
    return definitions, sorted(problems, key=_order)


def _function_problems(
    masks: Sequence[MaskDefinition], analysis_dir: Path | None
) -> list[RigProblem]:
    problems = []
    for index, mask in enumerate(masks):
        try:
            load_function(mask.function, analysis_dir)
        except ValidationError as error:
            rule = "callable" if "not a function" in error.message else "importable"
            problems.append(RigProblem(f"masks[{index}].function", rule, error.message))
    return problems


def rig_problems(
    document: Any,
    *,
    masks: Iterable[Mapping[str, Any] | MaskDefinition] | None = None,
    analysis_dir: Path | None = None,
    check_functions: bool = True,
) -> list[RigProblem]:
    """Return every problem of a rig document (and of its masks), sorted by JSON path.

    Parameters
    ----------
    document : dict
        The rig JSON, parsed.
    masks : list of dict, optional
        Mask definitions (``name``, ``function``, ``description``) to check with it.
    analysis_dir : Path, optional
        Where mask functions are imported from.
    check_functions : bool
        Import each mask function to check that it exists and is callable.
    """
    problems = _schema_problems(document) + _semantic_problems(document)
    definitions, mask_problems = parse_masks(masks)
    if check_functions:
        mask_problems += _function_problems(definitions, analysis_dir)
    unique = {(p.path, p.rule, p.message): p for p in problems}
    ordered = sorted(unique.values(), key=_order)
    return ordered + sorted(mask_problems, key=_order)


def check_rig(
    source: str | os.PathLike[str] | Mapping[str, Any],
    *,
    masks: Iterable[Mapping[str, Any] | MaskDefinition] | None = None,
    analysis_dir: Path | None = None,
    check_functions: bool = True,
) -> tuple[Rig, list[MaskDefinition]]:
    """Read and check a rig file (and its masks); return the rig and the mask definitions.

    Raises
    ------
    ValidationError
        Listing every problem, each with its JSON path and rule (also in
        ``.context["problems"]``), or when the file cannot be read.
    """
    document, where = read_rig(source)
    problems = rig_problems(
        document, masks=masks, analysis_dir=analysis_dir, check_functions=check_functions
    )
    if problems:
        listed = "\n".join(f"  {p}" for p in problems)
        raise ValidationError(
            f"{where} is not a valid rig: {len(problems)} problem"
            f"{'s' if len(problems) != 1 else ''}; nothing was stored:\n{listed}",
            path=where,
            problems=problems,
        )
    definitions, _ = parse_masks(masks)
    return build_rig(document), definitions


def build_rig(document: dict[str, Any]) -> Rig:
    """Build a :class:`Rig` from a rig document that passed :func:`rig_problems`."""
    features = document["features"]
    objects = alf_objects([f["name"] for f in features])
    built = []
    for number, (feature, obj) in enumerate(zip(features, objects, strict=True), start=1):
        source = feature["source"]
        ownership = feature.get("ownership") or {"ownership": "world"}
        coordinates = feature.get("coordinates")
        built.append(
            Feature(
                number=number,
                name=feature["name"],
                object=obj,
                source_type=source["source_type"],
                module=source.get("module"),
                video=source.get("video"),
                ownership=ownership["ownership"],
                animal=ownership.get("animal"),
                data_type=feature["data_type"],
                coordinates=(
                    (float(coordinates[0]), float(coordinates[1]), float(coordinates[2]))
                    if coordinates is not None
                    else None
                ),
                description=feature["description"],
            )
        )
    videos = document.get("videos") or []
    video_objects = alf_objects([v["name"] for v in videos])
    return Rig(
        specification=document["specification"],
        version=document["version"],
        reference_point=document["reference_point"],
        features=tuple(built),
        videos=tuple(
            Video(v["name"], obj, v["description"], v["format"], v.get("reference_point"))
            for v, obj in zip(videos, video_objects, strict=True)
        ),
        document=document,
    )
