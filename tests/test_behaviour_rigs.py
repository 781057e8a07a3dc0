"""Rig files: Antelop's format taken unchanged, and every bad file reported precisely."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from neurotrove.behaviour import check_rig, rig_problems, rig_schema
from neurotrove.behaviour.interface import mask_definitions
from neurotrove.errors import ValidationError

from .behaviour_data import MASKS, RIG, rig, write_masks

# The trimmed example of Antelop's docs' format: a DLC feature in a processing module, an
# LED interval, a valve and scales, one video; spelled as the pre-rename files spell it.
ANTELOP_STYLE = {
    "specification": "antelope-behaviour",
    "version": "0.0.1",
    "reference_point": "corner of the box",
    "features": [
        {
            "name": "snout",
            "source": {"source_type": "processing", "module": "pose", "video": "overhead"},
            "ownership": {"ownership": "self", "animal": 1},
            "data_type": "kinematics",
            "description": "tracked snout",
        },
        {
            "name": "LED_2",
            "source": {"source_type": "stimulus"},
            "ownership": {"ownership": "world"},
            "data_type": "interval",
            "coordinates": [0.2, 1.1, 0.0],
            "description": "LED two",
        },
        {
            "name": "VALVE2",
            "source": {"source_type": "stimulus"},
            "ownership": {"ownership": "world"},
            "data_type": "digital",
            "coordinates": [0.2, 1.1, 0.0],
            "description": "Reward at port 2",
        },
        {
            "name": "balance",
            "source": {"source_type": "acquisition"},
            "ownership": {"ownership": "world"},
            "data_type": "analog",
            "coordinates": [0, 0, 0],
            "description": "balance",
        },
    ],
    "videos": [{"name": "overhead", "description": "overhead camera", "format": "mp4"}],
}


def feature(index: int, **changes: Any) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        document["features"][index].update(changes)

    return change


def without(*path: Any) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        target: Any = document
        for part in path[:-1]:
            target = target[part]
        del target[path[-1]]

    return change


def apply(*changes: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    document = rig()
    for change in changes:
        change(document)
    return document


def _animal(number: int | None, owner: str = "self") -> dict[str, Any]:
    ownership: dict[str, Any] = {"ownership": owner}
    if number is not None:
        ownership["animal"] = number
    return {"ownership": ownership}


BAD: dict[str, tuple[dict[str, Any], set[tuple[str, str]]]] = {
    "no specification": (apply(without("specification")), {("$.specification", "required")}),
    "another format": (
        rig(specification="nwb-rig"),
        {("$.specification", "enum")},
    ),
    "version is a number": (rig(version=1), {("$.version", "type")}),
    "no features": (rig(features=[]), {("$.features", "minItems")}),
    "features not a list": (rig(features={"name": "x"}), {("$.features", "type")}),
    "a feature without a name": (
        apply(without("features", 2, "name")),
        {("$.features[2].name", "required")},
    ),
    "an unknown data type": (
        apply(feature(1, data_type="video")),
        {("$.features[1].data_type", "enum")},
    ),
    "an unknown source type": (
        apply(feature(0, source={"source_type": "camera"})),
        {("$.features[0].source.source_type", "enum")},
    ),
    "a misspelt key": (
        apply(without("features", 3, "data_type"), feature(3, data_typ="analog")),
        {
            ("$.features[3].data_typ", "additionalProperties"),
            ("$.features[3].data_type", "required"),
        },
    ),
    "two coordinates": (
        apply(feature(0, coordinates=[1.0, 2.0])),
        {("$.features[0].coordinates", "minItems")},
    ),
    "a coordinate that is text": (
        apply(feature(0, coordinates=[1.0, "2", 0])),
        {("$.features[0].coordinates[1]", "type")},
    ),
    "two features of one name": (
        apply(feature(4, name="scales")),
        {("$.features[4].name", "unique-name")},
    ),
    "a video that is not there": (
        apply(feature(5, source={"source_type": "acquisition", "video": "side_camera"})),
        {("$.features[5].source.video", "video-exists")},
    ),
    "processing without a module": (
        apply(feature(6, source={"source_type": "processing"})),
        {("$.features[6].source.module", "module-required")},
    ),
    "a self feature of no animal": (
        apply(feature(5, **_animal(None))),
        {("$.features[5].ownership.animal", "animal-required")},
    ),
    "a world feature of an animal": (
        apply(feature(2, **_animal(1, "world"))),
        {("$.features[2].ownership.animal", "animal-of-world")},
    ),
    "animals 1 and 3": (
        apply(feature(7, **_animal(3))),
        {("$.features[7].ownership.animal", "animal-numbers")},
    ),
    "animal 0": (
        apply(*(feature(i, **_animal(0)) for i in (5, 6, 7))),
        {(f"$.features[{i}].ownership.animal", "minimum") for i in (5, 6, 7)},
    ),
    "an mkv video": (
        rig(videos=[{"name": "top_camera", "description": "top", "format": "mkv"}]),
        {("$.videos[0].format", "enum")},
    ),
    "two videos of one name": (
        rig(videos=[RIG["videos"][0], {**RIG["videos"][0], "format": "mp4"}]),
        {("$.videos[1].name", "unique-name")},
    ),
    "a name with no letter": (apply(feature(4, name="--")), {("$.features[4].name", "alf-name")}),
}


def test_antelop_style_rig_files_are_taken_unchanged(tmp_path: Path) -> None:
    for document in (ANTELOP_STYLE, {**ANTELOP_STYLE, "specification": "antelop-behaviour"}, RIG):
        path = tmp_path / "rig.json"
        path.write_text(json.dumps(document))
        checked, masks = check_rig(path)
        assert [f.name for f in checked.features] == [f["name"] for f in document["features"]]
        assert checked.document == document and masks == []


@pytest.mark.parametrize("case", list(BAD))
def test_each_bad_rig_is_reported_with_its_json_path_and_rule(case: str) -> None:
    document, expected = BAD[case]
    found = {(p.path, p.rule) for p in rig_problems(document)}
    assert found == expected


def test_every_problem_of_a_file_is_listed_at_once_and_nothing_else(tmp_path: Path) -> None:
    document = apply(
        without("version"),
        feature(0, data_type="video"),
        feature(4, name="scales"),
        feature(6, source={"source_type": "processing"}),
    )
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ValidationError) as raised:
        check_rig(path)
    problems = raised.value.context["problems"]
    assert [(p.path, p.rule) for p in problems] == [
        ("$.features[0].data_type", "enum"),
        ("$.features[4].name", "unique-name"),
        ("$.features[6].source.module", "module-required"),
        ("$.version", "required"),
    ]
    message = raised.value.message
    assert message.startswith(f"{path} is not a valid rig: 4 problems; nothing was stored")
    assert "$.features[0].data_type: 'video' is not one of 'digital', 'analog'" in message


def test_problems_at_a_path_and_inside_it_are_listed_in_path_order() -> None:
    # masks[0] has an empty key (its problem is at masks[0].) and lacks its name and function
    # (masks[0].name, masks[0].function): a path and the paths inside it, sorted together.
    problems = rig_problems(RIG, masks=[{"": 1}])
    assert [(p.path, p.rule) for p in problems] == [
        ("masks[0].", "additionalProperties"),
        ("masks[0].function", "required"),
        ("masks[0].name", "required"),
    ]


def test_problem_messages_say_what_to_write_instead() -> None:
    messages = {p.path: p.message for p in rig_problems(BAD["a misspelt key"][0])}
    assert "did you mean 'data_type'?" in messages["$.features[3].data_typ"]
    assert (
        "a feature needs name, source, data_type, description"
        in messages["$.features[3].data_type"]
    )
    (video,) = rig_problems(BAD["a video that is not there"][0])
    assert "the rig's videos are 'top_camera'" in video.message


def test_files_that_are_not_json_name_the_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "rig.json"
    path.write_text('{"specification": "antelop-behaviour",\n  "version": }')
    with pytest.raises(ValidationError, match=rf"{path} is not JSON: .* line 2 column 14"):
        check_rig(path)
    with pytest.raises(ValidationError, match="does not exist"):
        check_rig(tmp_path / "missing.json")
    assert [(p.path, p.rule) for p in rig_problems([1, 2])] == [("$", "type")]


def test_mask_functions_must_be_importable_and_callable(tmp_path: Path) -> None:
    analysis = write_masks(tmp_path / "analysis")
    masks = [
        *MASKS,
        {"name": "gone", "function": "masks.not_there", "description": ""},
        {"name": "three", "function": "masks.not_a_function", "description": ""},
        {"name": "elsewhere", "function": "other_masks.trials", "description": ""},
        {"name": "bare", "function": "led_trials", "description": ""},
        {"name": "trials", "function": "masks.tone_trials", "description": ""},
        {"name": "extra", "function": "masks.led_trials", "colour": "red"},
    ]
    problems = [(p.path, p.rule) for p in rig_problems(RIG, masks=masks, analysis_dir=analysis)]
    assert problems == [
        ("masks[2].function", "importable"),
        ("masks[3].function", "callable"),
        ("masks[4].function", "importable"),
        ("masks[5].function", "function-name"),
        ("masks[6].name", "unique-name"),
        ("masks[7].colour", "additionalProperties"),
    ]
    assert rig_problems(RIG, masks=MASKS, analysis_dir=analysis) == []
    # Without the analysis folder, masks.py is nowhere to be imported from.
    assert {p.rule for p in rig_problems(RIG, masks=MASKS)} == {"importable"}


def test_the_schema_ships_with_the_package_and_is_valid_draft_7() -> None:
    Draft7Validator.check_schema(rig_schema())
    assert rig_schema()["properties"]["specification"]["enum"][0] == "antelop-behaviour"


def test_cli_mask_options_read_name_function_and_description() -> None:
    assert mask_definitions(["trials:masks.led_trials"]) == [
        {"name": "trials", "function": "masks.led_trials", "description": ""}
    ]
    with pytest.raises(ValidationError, match="NAME:MODULE.FUNCTION"):
        mask_definitions(["masks.led_trials"])
