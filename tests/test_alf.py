"""Tests of neurotrove.alf: examples, error messages, and properties checked against ONE-api."""

from __future__ import annotations

import datetime as dt
import re
import string
import uuid
from pathlib import PurePosixPath, PureWindowsPath

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from one.alf import path as one_path
from one.alf import spec as one_spec

from neurotrove import alf
from neurotrove.alf import (
    DatasetName,
    RelPath,
    SessionRef,
    add_uuid,
    build_filename,
    build_rel_path,
    find_session,
    is_hidden,
    is_valid_filename,
    parse_filename,
    parse_rel_path,
    parse_session_path,
    remove_uuid,
)
from neurotrove.errors import NeurotroveError, ValidationError

PARTS = ("namespace", "object", "attribute", "timescale", "extra", "extension")
ONE_FILE_RE = one_spec.regex(one_spec.FILE_SPEC)
UUID_A = "9c1f0d6c-2c1c-4c2b-9a4e-3f1e8c9b2a10"
UUID_B = "a976e418-c8b8-4d24-be47-d05120b18341"

PROPERTY = settings(max_examples=200, deadline=None)


def parts_of(name: DatasetName) -> tuple[str | None, ...]:
    return tuple(getattr(name, part) for part in PARTS)


def outcome(func, *args):
    """Call ``func``: return ``(result, None)``, or ``(None, error)`` for a ValidationError.

    Any other exception propagates and fails the test.
    """
    try:
        return func(*args), None
    except ValidationError as error:
        return None, error


# --------------------------------------------------------------------------------------------
# 1. Examples on realistic IBL names
# --------------------------------------------------------------------------------------------

# name -> (namespace, object, attribute, timescale, extra, extension)
REALISTIC = {
    "_ibl_trials.stimOn_times_bpod.npy": ("ibl", "trials", "stimOn_times", "bpod", None, "npy"),
    "_ibl_trials.table.pqt": ("ibl", "trials", "table", None, None, "pqt"),
    "spikes.times_ephysClock.npy": (None, "spikes", "times", "ephysClock", None, "npy"),
    "_iblrig_leftCamera.raw.mp4": ("iblrig", "leftCamera", "raw", None, None, "mp4"),
    "_ibl_wheel.timestamps.npy": ("ibl", "wheel", "timestamps", None, None, "npy"),
    "clusters.metrics.pqt": (None, "clusters", "metrics", None, None, "pqt"),
    "obj.attr_intervals.npy": (None, "obj", "attr_intervals", None, None, "npy"),
    "obj.attr_intervals_bpod.npy": (None, "obj", "attr_intervals", "bpod", None, "npy"),
    "trials.goCue_times.npy": (None, "trials", "goCue_times", None, None, "npy"),
    # A timescale that merely starts with 'times' is a timescale, not an attribute suffix.
    "obj.attr_timesX.npy": (None, "obj", "attr", "timesX", None, "npy"),
    "obj.attr_times_times.npy": (None, "obj", "attr_times", "times", None, "npy"),
    "obj.times_bpod.npy": (None, "obj", "times", "bpod", None, "npy"),
    "obj.attr_ephys_clock.npy": (None, "obj", "attr", "ephys_clock", None, "npy"),
    f"spikes.times.{UUID_A}.npy": (None, "spikes", "times", None, UUID_A, "npy"),
    f"_ibl_trials.stimOn_times_bpod.{UUID_A}.raw.npy": (
        "ibl",
        "trials",
        "stimOn_times",
        "bpod",
        f"{UUID_A}.raw",
        "npy",
    ),
    "channels._phy_ids.csv": (None, "channels", "_phy_ids", None, None, "csv"),
    "_spikeglx_ephysData_g0_t0.imec0.lf.bin": (
        "spikeglx",
        "ephysData_g0_t0",
        "imec0",
        None,
        "lf",
        "bin",
    ),
    "_spikeglx_ephysData_g0_t0.imec.wiring.json": (
        "spikeglx",
        "ephysData_g0_t0",
        "imec",
        None,
        "wiring",
        "json",
    ),
    "_iblmic_audioSpectrogram.frequencies.npy": (
        "iblmic",
        "audioSpectrogram",
        "frequencies",
        None,
        None,
        "npy",
    ),
    "wheelMoves.peakAmplitude.npy": (None, "wheelMoves", "peakAmplitude", None, None, "npy"),
    "_phy_spikes_subset.waveforms.npy": ("phy", "spikes_subset", "waveforms", None, None, "npy"),
    "spikes.times.raw.part-1.npy": (None, "spikes", "times", None, "raw.part-1", "npy"),
}


@pytest.mark.parametrize(("name", "expected"), REALISTIC.items(), ids=list(REALISTIC))
def test_parse_filename_realistic(name, expected):
    parsed = parse_filename(name)
    assert parts_of(parsed) == expected
    assert is_valid_filename(name)
    assert str(parsed) == name
    # ONE reads these names the same way.
    assert one_path.filename_parts(name) == expected


@pytest.mark.parametrize(("name", "expected"), REALISTIC.items(), ids=list(REALISTIC))
def test_build_filename_realistic(name, expected):
    namespace, obj, attribute, timescale, extra, extension = expected
    built = build_filename(
        obj, attribute, extension, namespace=namespace, timescale=timescale, extra=extra
    )
    assert built == name
    assert str(DatasetName(obj, attribute, extension, namespace, timescale, extra)) == name


def test_build_filename_extra_as_sequence_or_empty():
    assert build_filename("spikes", "times", "npy", extra=["raw", "part1"]) == (
        "spikes.times.raw.part1.npy"
    )
    assert build_filename("spikes", "times", "npy", extra=("raw",)) == "spikes.times.raw.npy"
    assert build_filename("spikes", "times", "npy", extra=[]) == "spikes.times.npy"
    assert build_filename("spikes", "times", "npy", extra="") == "spikes.times.npy"


def test_dataset_name_properties():
    name = parse_filename(f"_ibl_trials.stimOn_times_bpod.{UUID_A}.raw.npy")
    assert name.extras == (UUID_A, "raw")
    assert name.stem == "trials.stimOn_times"
    assert name.as_dict() == {
        "namespace": "ibl",
        "object": "trials",
        "attribute": "stimOn_times",
        "timescale": "bpod",
        "extra": f"{UUID_A}.raw",
        "extension": "npy",
    }
    assert parse_filename("clusters.metrics.pqt").extras == ()
    assert DatasetName("trials", "intervals", "npy", namespace="ibl") == parse_filename(
        "_ibl_trials.intervals.npy"
    )


REL_PATHS = {
    "alf/probe00/pykilosort/#2024-01-01#/spikes.times.npy": (
        "alf/probe00/pykilosort",
        "2024-01-01",
        "spikes.times.npy",
    ),
    "alf/probe00/pykilosort/spikes.times_ephysClock.npy": (
        "alf/probe00/pykilosort",
        "",
        "spikes.times_ephysClock.npy",
    ),
    "raw_video_data/_iblrig_leftCamera.raw.mp4": (
        "raw_video_data",
        "",
        "_iblrig_leftCamera.raw.mp4",
    ),
    "#2024-01-01#/_ibl_trials.table.pqt": ("", "2024-01-01", "_ibl_trials.table.pqt"),
    "alf/#v1.2#/clusters.metrics.pqt": ("alf", "v1.2", "clusters.metrics.pqt"),
    "clusters.metrics.pqt": ("", "", "clusters.metrics.pqt"),
    "raw-ephys.data/probe_00/channels._phy_ids.csv": (
        "raw-ephys.data/probe_00",
        "",
        "channels._phy_ids.csv",
    ),
}


@pytest.mark.parametrize(("rel_path", "expected"), REL_PATHS.items(), ids=list(REL_PATHS))
def test_parse_and_build_rel_path_realistic(rel_path, expected):
    collection, revision, filename = expected
    parsed = parse_rel_path(rel_path)
    assert (parsed.collection, parsed.revision, str(parsed.name)) == expected
    assert parsed.name == parse_filename(filename)
    assert str(parsed) == rel_path
    assert build_rel_path(filename, collection, revision) == rel_path
    assert parse_rel_path(PurePosixPath(rel_path)) == parsed
    one = one_path.rel_path_parts(rel_path, as_dict=True)
    assert (one["collection"] or "", one["revision"] or "") == (collection, revision)


def test_parse_rel_path_accepts_windows_paths():
    parsed = parse_rel_path(PureWindowsPath(r"alf\probe00\#2024-01-01#\spikes.times.npy"))
    assert parsed == RelPath("alf/probe00", "2024-01-01", parse_filename("spikes.times.npy"))


def test_build_rel_path_without_collection_or_revision():
    assert build_rel_path("trials.table.pqt") == "trials.table.pqt"
    assert build_rel_path("trials.table.pqt", revision="v2") == "#v2#/trials.table.pqt"
    assert build_rel_path("trials.table.pqt", collection="alf") == "alf/trials.table.pqt"


SESSIONS = {
    "mainenlab/Subjects/ZM_1743/2019-06-14/001": ("ZM_1743", dt.date(2019, 6, 14), 1, "mainenlab"),
    "Subjects/ZM_1743/2019-06-14/001": ("ZM_1743", dt.date(2019, 6, 14), 1, None),
    "ZM_1743/2019-06-14/001": ("ZM_1743", dt.date(2019, 6, 14), 1, None),
    "KS005/2019-04-01/1": ("KS005", dt.date(2019, 4, 1), 1, None),
    "KS005/2019-04-01/12": ("KS005", dt.date(2019, 4, 1), 12, None),
    "cortexlab/Subjects/KS005/2019-04-01/000": ("KS005", dt.date(2019, 4, 1), 0, "cortexlab"),
    "/SWC-053.b/2020-02-29/999/": ("SWC-053.b", dt.date(2020, 2, 29), 999, None),
    # A subject may be called 'Subjects'.
    "Subjects/2020-01-01/002": ("Subjects", dt.date(2020, 1, 1), 2, None),
    "lab/Subjects/Subjects/2020-01-01/002": ("Subjects", dt.date(2020, 1, 1), 2, "lab"),
}


@pytest.mark.parametrize(("path", "expected"), SESSIONS.items(), ids=list(SESSIONS))
def test_parse_session_path_realistic(path, expected):
    ref = parse_session_path(path)
    assert ref == SessionRef(*expected)
    assert parse_session_path(PurePosixPath(path.strip("/"))) == ref
    # find_session reads the same folder out of a path to a file in it.
    assert find_session(f"{path.rstrip('/')}/alf/x.y.npy") == (ref, "alf/x.y.npy")


def test_session_ref_path_and_key():
    ref = SessionRef("KS005", dt.date(2019, 4, 1), 7, lab="cortexlab")
    assert ref.path == PurePosixPath("cortexlab/Subjects/KS005/2019-04-01/007")
    assert ref.key == "cortexlab/KS005/2019-04-01/007"
    bare = SessionRef("KS005", dt.date(2019, 4, 1), 7)
    assert str(bare.path) == "KS005/2019-04-01/007"
    assert bare.key == "KS005/2019-04-01/007"


def test_find_session_variants():
    ref, rest = find_session("/data/lab/Subjects/KS005/2019-04-01/002/alf/trials.table.pqt")
    assert ref == SessionRef("KS005", dt.date(2019, 4, 1), 2, "lab")
    assert rest == "alf/trials.table.pqt"
    # The session folder itself, with or without a trailing slash.
    bare = SessionRef("KS005", dt.date(2019, 4, 1), 2)
    assert find_session("KS005/2019-04-01/002") == (bare, "")
    assert find_session("/x/KS005/2019-04-01/2/")[1] == ""
    # Windows paths, as a string with backslashes or as a PureWindowsPath.
    win = r"D:\data\lab\Subjects\KS005\2019-04-01\002\alf\probe00\spikes.times.npy"
    assert find_session(win) == (ref, "alf/probe00/spikes.times.npy")
    assert find_session(PureWindowsPath(win)) == (ref, "alf/probe00/spikes.times.npy")
    # Inside a longer path, the folder before 'Subjects/' is the lab.
    assert find_session("/mnt/data/Subjects/KS005/2019-04-01/002")[0].lab == "data"
    # The last session folder in the path wins.
    nested = "/a/KS001/2019-01-01/001/copied/KS002/2019-02-02/002/alf/x.y.npy"
    assert find_session(nested) == (SessionRef("KS002", dt.date(2019, 2, 2), 2), "alf/x.y.npy")
    # A folder that merely contains a date is not a session.
    with pytest.raises(ValidationError):
        find_session("/data/KS005/2019-04-01/alf/x.y.npy")
    with pytest.raises(ValidationError):
        find_session("/data/KS005/2019-04-01-extra/001")


def test_find_session_agrees_with_one_on_a_full_path():
    path = "/mnt/s0/Data/mainenlab/Subjects/ZM_1743/2019-06-14/001/alf/probe00/spikes.times.npy"
    one = one_path.session_path_parts(path, as_dict=True)
    ref, _ = find_session(path)
    assert (ref.lab, ref.subject, ref.date.isoformat(), ref.number) == (
        one["lab"],
        one["subject"],
        one["date"],
        int(one["number"]),
    )


def test_add_and_remove_uuid():
    assert add_uuid("spikes.times.npy", UUID_A) == f"spikes.times.{UUID_A}.npy"
    assert add_uuid("_ibl_trials.stimOn_times_bpod.raw.npy", uuid.UUID(UUID_A)) == (
        f"_ibl_trials.stimOn_times_bpod.raw.{UUID_A}.npy"
    )
    # Upper-case input is written in the canonical lower-case form.
    assert add_uuid("spikes.times.npy", UUID_A.upper()) == f"spikes.times.{UUID_A}.npy"
    # An existing id is replaced, not stacked.
    assert add_uuid(f"spikes.times.{UUID_A}.npy", UUID_B) == f"spikes.times.{UUID_B}.npy"
    assert remove_uuid(f"spikes.times.{UUID_A}.npy") == "spikes.times.npy"
    assert remove_uuid(f"_ibl_trials.table.raw.{UUID_A}.pqt") == "_ibl_trials.table.raw.pqt"
    assert remove_uuid("spikes.times.raw.npy") == "spikes.times.raw.npy"
    # An extra that only looks a bit like a UUID stays.
    assert remove_uuid("spikes.times.9c1f0d6c.npy") == "spikes.times.9c1f0d6c.npy"


@pytest.mark.parametrize(
    "name",
    ["spikes.times.npy", "_ibl_trials.stimOn_times_bpod.raw.npy", f"spikes.times.{UUID_B}.npy"],
)
def test_add_and_remove_uuid_agree_with_one(name):
    assert add_uuid(name, UUID_A) == one_path.add_uuid_string(name, UUID_A).name
    with_id = add_uuid(name, UUID_A)
    assert remove_uuid(with_id) == one_path.remove_uuid_string(with_id).name


def test_remove_uuid_differs_from_one_on_ids_that_are_not_last():
    # ONE only strips a lower-case v3/v4/v5 id that is the last extra part; we strip any id.
    inner = f"x.y.{UUID_A}.raw.npy"
    assert remove_uuid(inner) == "x.y.raw.npy"
    assert one_path.remove_uuid_string(inner).name == inner
    upper = f"x.y.{UUID_A.upper()}.npy"
    assert remove_uuid(upper) == "x.y.npy"
    assert one_path.remove_uuid_string(upper).name == upper


@pytest.mark.parametrize(
    ("name", "hidden"),
    [
        ("._spikes.times.npy", True),
        (".DS_Store", True),
        (".trove", True),
        ("spikes.times.npy", False),
        ("_ibl_trials.table.pqt", False),
        ("alf", False),
        ("", False),
    ],
)
def test_is_hidden(name, hidden):
    assert is_hidden(name) is hidden


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("trials.feedbackType.npy", True),
        ("_ns_obj.attr1.2622b17c-9408-4910-99cb-abf16d9225b9.metadata.json", True),
        ("channels._phy_ids.csv", True),
        ("spike_train.npy", False),
        ("notes.txt", False),
        ("spikes.times.npy\n", False),
        ("alf/spikes.times.npy", False),
        ("spikes.times_.npy", False),
        ("spikes.times.n-py", False),
        ("spikes.ti-mes.npy", False),
        ("", False),
        (None, False),
        (b"spikes.times.npy", False),
        (PurePosixPath("spikes.times.npy"), False),
    ],
)
def test_is_valid_filename(name, valid):
    assert is_valid_filename(name) is valid


# --------------------------------------------------------------------------------------------
# Known, deliberate differences from ONE (listed in alf.py's module docstring)
# --------------------------------------------------------------------------------------------


def test_namespace_needs_both_underscores_unlike_one():
    ours = parse_filename("_trials.x.npy")
    assert (ours.namespace, ours.object) == (None, "_trials")
    one = ONE_FILE_RE.match("_trials.x.npy")
    assert (one["namespace"], one["object"]) == ("trial", "s")


def test_namespace_followed_by_empty_object_differs_from_one():
    # ONE lets the closing underscore double as the object; we read the whole head as object.
    ours = parse_filename("_ibl_.x.npy")
    assert (ours.namespace, ours.object) == (None, "_ibl_")
    one = ONE_FILE_RE.match("_ibl_.x.npy")
    assert (one["namespace"], one["object"]) == ("ibl", "_")
    # Two leading underscores: ONE drops both, we keep them in the object.
    assert parse_filename("__x.y.npy").object == "__x"
    assert ONE_FILE_RE.match("__x.y.npy")["object"] == "x"


def test_trailing_newline_rejected_unlike_one():
    assert ONE_FILE_RE.match("spikes.times.npy\n") is not None
    with pytest.raises(ValidationError):
        parse_filename("spikes.times.npy\n")


@pytest.mark.parametrize(
    ("rel_path", "reason"),
    [
        ("alf/../spikes.times.npy", "'..'"),
        ("./spikes.times.npy", "'.'"),
        ("alf//spikes.times.npy", "empty"),
        ("/alf/spikes.times.npy", "absolute"),
        ("alf/#..#/spikes.times.npy", "'..'"),
    ],
)
def test_rel_paths_one_accepts_but_we_reject(rel_path, reason):
    assert one_path.rel_path_parts(rel_path, assert_valid=False)[-1] == "npy"
    with pytest.raises(ValidationError) as info:
        parse_rel_path(rel_path)
    assert reason in str(info.value)


def test_impossible_date_rejected_unlike_one():
    assert one_path.session_path_parts("KS005/2020-13-45/001", as_dict=True)["date"] == (
        "2020-13-45"
    )
    with pytest.raises(ValidationError, match="2020-13-45"):
        parse_session_path("KS005/2020-13-45/001")


@pytest.mark.parametrize(
    ("path", "one_reads"),
    [
        # Nested sessions: ONE takes the first folder, we take the innermost one.
        ("/a/KS001/2019-01-01/001/copied/KS002/2019-02-02/002/alf/x.y.npy", "KS001"),
        # ONE's search reads the prefix of a four-digit number and the tail of a subject.
        ("/data/KS005/2019-04-01/0012/alf", "KS005"),
        ("/data/a b/2019-04-01/001", "b"),
        # ONE's \d accepts any Unicode digit.
        ("KS/\u0662\u0660\u0662\u0660-\u0660\u0661-\u0660\u0661/\u0660\u0660\u0661", "KS"),
    ],
)
def test_find_session_differs_from_one_session_path_parts(path, one_reads):
    assert one_path.session_path_parts(path, as_dict=True)["subject"] == one_reads
    found, error = outcome(find_session, path)
    if found is not None:
        assert found[0].subject != one_reads
    else:
        assert "no session folder" in error.message


# --------------------------------------------------------------------------------------------
# 2. Error messages name what is wrong
# --------------------------------------------------------------------------------------------

ERRORS = [
    # file names
    (parse_filename, ("spikes.npy",), ["'spikes.npy'", "object.attribute.extension"]),
    (parse_filename, ("spikes..npy",), ["'spikes..npy'", "empty part"]),
    (parse_filename, ("spi kes.times.npy",), ["object 'spi kes'"]),
    (parse_filename, ("_ibl_wh€el.times.npy",), ["object 'wh€el'"]),
    (parse_filename, ("spikes.ti-mes.npy",), ["attribute 'ti-mes'"]),
    (parse_filename, ("spikes.times.n+py",), ["extension 'n+py'"]),
    (parse_filename, ("spikes.times.ra w.npy",), ["extra part 'ra w'"]),
    (parse_filename, ("alf/spikes.times.npy",), ["path separator"]),
    (parse_filename, ("alf\\spikes.times.npy",), ["path separator"]),
    (parse_filename, ("._spikes.times.npy",), ["hidden"]),
    (parse_filename, ("",), ["empty"]),
    (parse_filename, (b"spikes.times.npy",), ["bytes"]),
    (parse_filename, (None,), ["NoneType"]),
    # relative paths
    (parse_rel_path, ("alf/#x/spikes.times.npy",), ["'#x'", "#<revision>#"]),
    (parse_rel_path, ("alf/##/spikes.times.npy",), ["'##'"]),
    (parse_rel_path, ("alf/../spikes.times.npy",), ["'..'", "collection"]),
    (parse_rel_path, ("/alf/spikes.times.npy",), ["absolute", "'/alf/spikes.times.npy'"]),
    (parse_rel_path, ("al$f/spikes.times.npy",), ["collection 'al$f'", "'$'"]),
    (parse_rel_path, ("alf/#v 1#/spikes.times.npy",), ["revision 'v 1'", "' '"]),
    (parse_rel_path, ("#v1#/alf/spikes.times.npy",), ["right before the file name"]),
    (parse_rel_path, ("alf/spikes.npy",), ["'spikes.npy'"]),
    (parse_rel_path, (42,), ["int"]),
    # session paths
    (parse_session_path, ("KS005/2020-13-45/001",), ["'2020-13-45'", "calendar date"]),
    (parse_session_path, ("KS005/0000-01-01/001",), ["'0000-01-01'"]),
    (parse_session_path, ("KS005/2020-01-01/1000",), ["number '1000'"]),
    (parse_session_path, ("KS005/2020-1-1/001",), ["date '2020-1-1'"]),
    (parse_session_path, ("KS 005/2020-01-01/001",), ["subject 'KS 005'"]),
    (parse_session_path, ("l-b/Subjects/KS005/2020-01-01/001",), ["lab 'l-b'"]),
    (parse_session_path, ("lab/Subject/KS005/2020-01-01/001",), ["'lab/Subject'"]),
    (parse_session_path, ("../2020-01-01/001",), ["'..'"]),
    (parse_session_path, ("KS005/2020-01-01",), ["'KS005/2020-01-01'"]),
    (parse_session_path, (None,), ["NoneType"]),
    (find_session, ("/data/KS005/2020-13-45/001/alf",), ["'2020-13-45'"]),
    (find_session, ("/data/no/session/here",), ["'/data/no/session/here'", "no session"]),
    (find_session, (7,), ["int"]),
]

BUILD_ERRORS = [
    ({"object": "spi kes"}, ["object 'spi kes'"]),
    ({"object": ""}, ["object", "empty"]),
    ({"attribute": "ti-mes"}, ["attribute 'ti-mes'"]),
    ({"attribute": "times_bpod"}, ["attribute 'times_bpod'"]),
    ({"extension": "n.py"}, ["extension 'n.py'"]),
    ({"namespace": "i_b"}, ["namespace 'i_b'"]),
    ({"namespace": ""}, ["namespace", "empty"]),
    ({"timescale": "a.b"}, ["timescale 'a.b'"]),
    ({"timescale": "times"}, ["attribute='stim_times'"]),
    ({"extra": "ra w"}, ["extra 'ra w'"]),
    ({"extra": ["raw", ""]}, ["extra part", "empty"]),
    ({"extra": ["raw", 1]}, ["extra[1]", "int"]),
    ({"object": 3}, ["object", "int"]),
    ({"object": "_ibl_trials"}, ["namespace='ibl'"]),
    ({"object": "a/b"}, ["object 'a/b'"]),
]


@pytest.mark.parametrize(("func", "args", "fragments"), ERRORS)
def test_error_messages_name_the_fault(func, args, fragments):
    with pytest.raises(ValidationError) as info:
        func(*args)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, NeurotroveError)
    for fragment in fragments:
        assert fragment in message, (fragment, message)


@pytest.mark.parametrize(("change", "fragments"), BUILD_ERRORS)
def test_build_filename_errors_name_the_part(change, fragments):
    parts = {"object": "spikes", "attribute": "stim", "extension": "npy", **change}
    with pytest.raises(ValidationError) as info:
        build_filename(
            parts.pop("object"), parts.pop("attribute"), parts.pop("extension"), **parts
        )
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"collection": "alf/../.."}, "'..'"),
        ({"collection": "alf/"}, "empty"),
        ({"collection": "/alf"}, "empty"),
        ({"collection": "a#b"}, "'#'"),
        ({"collection": 5}, "int"),
        ({"revision": "v#1"}, "'#'"),
        ({"revision": "a/b"}, "'/'"),
        ({"revision": ".."}, "'..'"),
    ],
)
def test_build_rel_path_errors(kwargs, fragment):
    with pytest.raises(ValidationError) as info:
        build_rel_path("spikes.times.npy", **kwargs)
    assert fragment in str(info.value)


def test_error_context_carries_the_input():
    with pytest.raises(ValidationError) as info:
        parse_rel_path("alf/spikes.npy")
    assert info.value.context == {"rel_path": "alf/spikes.npy", "filename": "spikes.npy"}
    with pytest.raises(ValidationError) as info:
        parse_filename("spikes.npy")
    assert info.value.context["filename"] == "spikes.npy"
    with pytest.raises(ValidationError) as info:
        parse_session_path("KS005/2020-13-45/001")
    assert info.value.context["path"] == "KS005/2020-13-45/001"


@pytest.mark.parametrize("bad_id", ["nope", "9c1f0d6c", 12, None])
def test_add_uuid_rejects_bad_ids(bad_id):
    with pytest.raises(ValidationError, match="not a UUID") as info:
        add_uuid("spikes.times.npy", bad_id)
    assert repr(bad_id) in str(info.value)


def test_add_and_remove_uuid_reject_bad_names():
    with pytest.raises(ValidationError, match=r"spike_train\.npy"):
        add_uuid("spike_train.npy", UUID_A)
    with pytest.raises(ValidationError, match=r"spike_train\.npy"):
        remove_uuid("spike_train.npy")


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"number": 1000}, "1000"),
        ({"number": -1}, "-1"),
        ({"number": True}, "True"),
        ({"number": 1.0}, "1.0"),
        ({"lab": "l-b"}, "lab 'l-b'"),
        ({"lab": ""}, "lab ''"),
        ({"subject": ".."}, "subject '..'"),
        ({"subject": "a/b"}, "subject 'a/b'"),
        ({"date": dt.datetime(2020, 1, 1)}, "datetime.date"),
        ({"date": "2020-01-01"}, "'2020-01-01'"),
    ],
)
def test_session_ref_validates(kwargs, fragment):
    fields = {"subject": "KS005", "date": dt.date(2020, 1, 1), "number": 1, **kwargs}
    with pytest.raises(ValidationError) as info:
        SessionRef(**fields)
    assert fragment in str(info.value)


# --------------------------------------------------------------------------------------------
# 3. Properties
# --------------------------------------------------------------------------------------------

ALNUM = string.ascii_letters + string.digits
WORD = ALNUM + "_"

alnums = st.text(ALNUM, min_size=1, max_size=8)
namespaces = st.none() | alnums
# Objects: \w-ish, not starting with '_' (an object starting with '_' and no namespace would be
# read as a namespace by ONE, and possibly by us).
objects = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(ALNUM),
    st.text(WORD, max_size=12),
)
camel = st.builds(
    lambda head, tail: head + "".join(tail),
    st.text(string.ascii_lowercase, min_size=1, max_size=6),
    st.lists(
        st.builds(
            lambda a, b: a + b,
            st.sampled_from(string.ascii_uppercase + string.digits),
            st.text(ALNUM, max_size=4),
        ),
        max_size=3,
    ),
)
attributes = st.builds(
    lambda old_ns, base, suffix: old_ns + base + suffix,
    st.sampled_from(["", "", "", "_phy_", "_kilosort_"]),
    camel,
    st.sampled_from(["", "", "_times", "_intervals"]),
)
timescales = (
    st.none()
    | st.sampled_from(
        ["bpod", "ephysClock", "times", "intervals", "times_bpod", "timesX", "intervals2", "a_b"]
    )
    | st.from_regex(r"[A-Za-z0-9]{1,6}(_[A-Za-z0-9]{1,4})?", fullmatch=True)
)
extra_parts = st.from_regex(r"[A-Za-z0-9_-]{1,8}", fullmatch=True) | st.uuids().map(str)
extras = st.none() | st.lists(extra_parts, min_size=1, max_size=3).flatmap(
    lambda items: st.sampled_from([items, tuple(items), ".".join(items)])
)
extensions = alnums
realistic_parts = st.fixed_dictionaries(
    {
        "namespace": namespaces,
        "object": objects,
        "attribute": attributes,
        "timescale": timescales,
        "extra": extras,
        "extension": extensions,
    }
)


def _joined_extra(extra):
    if extra is None or isinstance(extra, str):
        return extra
    return ".".join(extra)


def _collides(parts) -> bool:
    """True when the timescale would be read back as the attribute's _times/_intervals suffix."""
    attribute, timescale = parts["attribute"], parts["timescale"]
    has_suffix = attribute.endswith(("_times", "_intervals"))
    return (
        timescale is not None
        and not has_suffix
        and re.match(r"(times|intervals)(_|$)", timescale) is not None
    )


def _build(parts):
    return build_filename(
        parts["object"],
        parts["attribute"],
        parts["extension"],
        namespace=parts["namespace"],
        timescale=parts["timescale"],
        extra=parts["extra"],
    )


@PROPERTY
@given(realistic_parts)
@example(
    {
        "namespace": None,
        "object": "obj",
        "attribute": "stim",
        "timescale": "times",
        "extra": None,
        "extension": "npy",
    }
)
@example(
    {
        "namespace": "ibl",
        "object": "trials",
        "attribute": "stimOn_times",
        "timescale": "times",
        "extra": ["raw"],
        "extension": "npy",
    }
)
def test_build_parse_round_trip(parts):
    expected = {**parts, "extra": _joined_extra(parts["extra"])}
    if _collides(parts):
        with pytest.raises(ValidationError, match="would be read back"):
            _build(parts)
        return
    name = _build(parts)
    parsed = parse_filename(name)
    assert parsed.as_dict() == expected
    assert str(parsed) == name
    # ONE, given the same name, reads the same parts.
    assert one_path.filename_parts(name, as_dict=True) == expected


optional_text = st.none() | st.text(max_size=6)


@PROPERTY
@given(
    obj=st.one_of(objects, st.text(max_size=6), st.integers()),
    attribute=st.one_of(attributes, st.text(max_size=6)),
    extension=st.one_of(extensions, st.text(max_size=4)),
    namespace=st.one_of(namespaces, optional_text),
    timescale=st.one_of(timescales, optional_text),
    extra=st.one_of(extras, optional_text, st.lists(st.text(max_size=4) | st.integers())),
)
def test_build_filename_raises_only_validation_error(
    obj, attribute, extension, namespace, timescale, extra
):
    name, error = outcome(
        lambda: build_filename(
            obj, attribute, extension, namespace=namespace, timescale=timescale, extra=extra
        )
    )
    if error is not None:
        assert error.message
        return
    parsed = parse_filename(name)
    joined = _joined_extra(extra) or None
    assert parts_of(parsed) == (namespace, obj, attribute, timescale, joined, extension)


# Strings assembled from ALF-ish fragments reach the parsers' interesting branches.
FRAGMENTS = [
    ".",
    ".",
    ".",
    "_",
    "_",
    "#",
    "/",
    "/",
    "-",
    "..",
    "\\",
    " ",
    "\n",
    "é",
    "€",
    "0",
    "7",
    "a",
    "Z",
    "ibl",
    "trials",
    "spikes",
    "times",
    "_times",
    "intervals",
    "_intervals",
    "bpod",
    "npy",
    "pqt",
    "raw",
    "alf",
    "probe00",
    "#2024-01-01#",
    "Subjects",
    "KS005",
    "2020-01-01",
    "2020-13-45",
    "0000-01-01",
    "001",
    "1000",
    "1",
    UUID_A,
    "_phy_",
    "stimOn",
]
near_alf = st.lists(st.sampled_from(FRAGMENTS), max_size=14).map("".join)


@st.composite
def mutated(draw, base):
    """Take a valid string and apply a few random edits with ALF-ish fragments."""
    text = draw(base)
    for _ in range(draw(st.integers(0, 3))):
        position = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        fragment = draw(st.sampled_from(FRAGMENTS))
        if action == "insert":
            text = text[:position] + fragment + text[position:]
        elif action == "delete":
            text = text[:position] + text[position + 1 :]
        else:
            text = text[:position] + fragment + text[position + 1 :]
    return text


valid_names = realistic_parts.filter(lambda p: not _collides(p)).map(_build)
any_names = st.one_of(st.text(max_size=30), near_alf, mutated(valid_names))


@PROPERTY
@given(any_names)
@example("_trials.x.npy")
@example("spikes.times.npy\n")
@example("")
def test_parse_filename_raises_only_validation_error(text):
    parsed, error = outcome(parse_filename, text)
    if error is not None:
        assert text in error.context.values()
        assert repr(text) in error.message
        assert not is_valid_filename(text)
        return
    assert is_valid_filename(text)
    assert str(parsed) == text


collection_segments = st.from_regex(r"[A-Za-z0-9_-]{1,6}(\.[A-Za-z0-9_-]{1,3})?", fullmatch=True)
collections = st.lists(collection_segments, max_size=3).map("/".join)
revisions = st.just("") | st.from_regex(
    r"[A-Za-z0-9_-]{1,6}([.-][A-Za-z0-9_]{1,4})?", fullmatch=True
)
valid_rel_paths = st.builds(build_rel_path, valid_names, collections, revisions)
any_rel_paths = st.one_of(st.text(max_size=30), near_alf, mutated(valid_rel_paths))


@PROPERTY
@given(any_rel_paths)
@example("alf/#x/spikes.times.npy")
@example("#/x.y.npy")
@example("alf/##/x.y.npy")
@example("a/#b#/#c#/x.y.npy")
def test_parse_rel_path_raises_only_validation_error(text):
    parsed, error = outcome(parse_rel_path, text)
    if error is not None:
        assert error.message
        assert error.context
        return
    assert str(parsed) == text
    assert parse_rel_path(PurePosixPath(text)) == parsed


session_refs = st.builds(
    SessionRef,
    subject=st.from_regex(r"[A-Za-z0-9_.-]{1,10}", fullmatch=True).filter(
        lambda s: set(s) != {"."}
    )
    | st.sampled_from(["Subjects", "001", "2020-01-01"]),
    date=st.dates(),
    number=st.integers(0, 999),
    lab=st.none() | st.from_regex(r"[A-Za-z0-9_]{1,8}", fullmatch=True) | st.just("Subjects"),
)


def _session_text(ref: SessionRef, padded: bool = True) -> str:
    number = f"{ref.number:03d}" if padded else str(ref.number)
    tail = f"{ref.subject}/{ref.date.isoformat()}/{number}"
    return f"{ref.lab}/Subjects/{tail}" if ref.lab else tail


any_session_paths = st.one_of(
    st.text(max_size=30),
    near_alf,
    mutated(session_refs.map(_session_text)),
    mutated(
        st.builds(lambda s, r: f"/root/{s}/{r}", session_refs.map(_session_text), valid_rel_paths)
    ),
)


@PROPERTY
@given(any_session_paths)
@example("KS005/2020-13-45/001")
@example("../2020-01-01/001")
@example("...//2020-01-01/001")
@example("a/Subjects/b/0000-01-01/1")
@example(".Subjects/Subjects/0/2000-01-01/000")  # a hidden lab folder, reported once
def test_session_parsers_raise_only_validation_error(text):
    ref, error = outcome(parse_session_path, text)
    if error is None:
        assert parse_session_path(str(ref.path)) == ref
        assert ref.date.isoformat() in text
    else:
        assert error.message
    found, error = outcome(find_session, text)
    if error is None:
        ref, rest = found
        assert text.replace("\\", "/").rstrip("/").endswith(rest)
        assert ref.subject in text
        assert f"/{rest}" in text.replace("\\", "/") or rest == ""
    else:
        assert error.message


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.text(max_size=30),
        near_alf,
        mutated(valid_names),
        mutated(valid_names.map(lambda n: "_" + n)),
    )
)
@example("_trials.x.npy")
@example("_ibl_.x.npy")
@example("__x.y.npy")
@example("_ibl__x.y.npy")
def test_filename_agrees_with_one(name):
    if "\n" in name:
        return
    one = ONE_FILE_RE.match(name)
    # Both read the same set of names as ALF.
    assert is_valid_filename(name) == (one is not None)
    if one is None:
        return
    ours = parse_filename(name).as_dict()
    namespace_closed = (
        one["namespace"] is not None and one.start("object") == one.end("namespace") + 1
    )
    if not name.startswith("_") or namespace_closed:
        assert ours == one.groupdict()
    if ours["namespace"] is not None:
        assert one.groupdict() == ours


@PROPERTY
@given(valid_rel_paths)
def test_rel_path_agrees_with_one(rel_path):
    ours = parse_rel_path(rel_path)
    one = one_path.rel_path_parts(rel_path, as_dict=True)
    assert ours.collection == (one.pop("collection") or "")
    assert ours.revision == (one.pop("revision") or "")
    assert ours.name.as_dict() == dict(one)


@PROPERTY
@given(st.one_of(any_rel_paths, mutated(valid_rel_paths.map(lambda p: "../" + p))))
@example("alf/./x.y.npy")
@example("/alf/x.y.npy")
def test_rel_path_acceptance_agrees_with_one(rel_path):
    if "\n" in rel_path:
        return
    one = one_path.rel_path_parts(rel_path, as_dict=True, assert_valid=False)
    ours, error = outcome(parse_rel_path, rel_path)
    if error is not None:
        if one["extension"] is None:
            return
        # ONE accepts it; the only reasons we may refuse are the documented ones.
        segments = (one["collection"] or "").split("/") if one["collection"] else []
        assert any(s in ("", ".", "..") for s in segments) or one["revision"] in (".", "..")
        return
    assert one["extension"] is not None
    assert ours.collection == (one["collection"] or "")
    assert ours.revision == (one["revision"] or "")


@PROPERTY
@given(session_refs)
def test_session_path_round_trip(ref):
    text = str(ref.path)
    assert parse_session_path(text) == ref
    assert parse_session_path(_session_text(ref, padded=False)) == ref
    assert parse_session_path(ref.path) == ref
    assert find_session("/any/prefix/" + text + "/alf/x.y.npy") == (ref, "alf/x.y.npy")
    assert find_session("/any/prefix/" + text) == (ref, "")
    assert ref.key.endswith(f"{ref.subject}/{ref.date.isoformat()}/{ref.number:03d}")
    one = one_path.session_path_parts(text, as_dict=True)
    assert (one["lab"], one["subject"], one["date"], int(one["number"])) == (
        ref.lab,
        ref.subject,
        ref.date.isoformat(),
        ref.number,
    )


def test_module_exports_exist():
    for name in alf.__all__:
        assert hasattr(alf, name), name
