"""Tests of neurotrove.loaders: file readers by extension, and ALF objects checked against ONE."""

from __future__ import annotations

import io
import json
import logging
import pickle
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal

from neurotrove import alf, loaders
from neurotrove.errors import NotFoundError, ValidationError
from neurotrove.loaders import (
    AlfObject,
    assemble_object,
    load_file,
    loader_for,
    register_loader,
    unregister_loader,
)

N_TRIALS = 12


@pytest.fixture
def registry() -> Iterator[None]:
    """Put back the loaders of the extensions the tests re-register."""
    saved = {extension: loader_for(extension) for extension in ("npy", "txt", "trace")}
    yield
    for extension, loader in saved.items():
        if loader is None:
            unregister_loader(extension)
        else:
            register_loader(extension, loader)


def npy_bytes(array: np.ndarray[Any, Any]) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    return buffer.getvalue()


def npz_bytes(**arrays: Any) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# load_file: one reader per extension


@pytest.mark.parametrize(
    "array",
    [
        np.arange(5.0),
        np.arange(6, dtype=np.int32).reshape(3, 2),
        np.arange(3, dtype=np.uint8).reshape(1, 3),
        np.array(["left", "right"]),
        np.zeros((2, 3, 4), dtype=bool),
    ],
    ids=["vector", "matrix", "row", "strings", "3d"],
)
def test_npy_round_trips_with_dtype_and_shape(tmp_path: Path, array: np.ndarray[Any, Any]) -> None:
    path = tmp_path / "spikes.values.npy"
    np.save(path, array)
    loaded = load_file(path)
    assert type(loaded) is np.ndarray
    assert loaded.dtype == array.dtype
    assert loaded.shape == array.shape
    assert_array_equal(loaded, array)


def test_npy_single_column_is_flattened_as_in_one(tmp_path: Path) -> None:
    path = tmp_path / "trials.quiescencePeriod.npy"
    np.save(path, np.array([[0.2], [0.4], [0.6]]))
    assert_array_equal(load_file(path), [0.2, 0.4, 0.6])
    assert load_file(path).shape == (3,)
    mapped = load_file(path, mmap=True)
    assert isinstance(mapped, np.memmap)
    assert mapped.shape == (3,)


def test_mmap_gives_a_read_only_memmap_of_the_file(tmp_path: Path) -> None:
    array = np.random.default_rng(0).normal(size=(100, 3))
    path = tmp_path / "spikes.features.npy"
    np.save(path, array)
    mapped = load_file(path, mmap=True)
    assert isinstance(mapped, np.memmap)
    assert_array_equal(mapped, array)
    with pytest.raises(ValueError, match="read-only"):
        mapped[0, 0] = 1.0
    assert not isinstance(load_file(path), np.memmap)


def test_load_file_takes_a_string_path(tmp_path: Path) -> None:
    np.save(tmp_path / "spikes.times.npy", np.arange(3.0))
    assert_array_equal(load_file(str(tmp_path / "spikes.times.npy")), [0.0, 1.0, 2.0])


@pytest.mark.parametrize("extension", ["pqt", "parquet"])
def test_parquet_round_trips_as_a_dataframe(tmp_path: Path, extension: str) -> None:
    frame = pd.DataFrame({"a": [1, 2, 3], "b": [0.5, np.nan, 2.0], "c": ["x", "y", "z"]})
    path = tmp_path / f"clusters.metrics.{extension}"
    frame.to_parquet(path)
    pd.testing.assert_frame_equal(load_file(path), frame)


@pytest.mark.parametrize(("extension", "separator"), [("csv", ","), ("tsv", "\t"), ("ssv", " ")])
def test_text_tables_round_trip_as_dataframes(
    tmp_path: Path, extension: str, separator: str
) -> None:
    frame = pd.DataFrame({"trial": [1, 2, 3], "contrast": [0.25, 1.0, 0.0], "side": list("LRL")})
    path = tmp_path / f"_ibl_trials.summary.{extension}"
    frame.to_csv(path, sep=separator, index=False)
    pd.testing.assert_frame_equal(load_file(path), frame)


def test_single_column_csv_stays_a_dataframe(tmp_path: Path) -> None:
    path = tmp_path / "probes.description.csv"
    path.write_text("label\nprobe00\nprobe01\n")
    loaded = load_file(path)
    assert isinstance(loaded, pd.DataFrame)
    assert list(loaded["label"]) == ["probe00", "probe01"]


@pytest.mark.parametrize("document", [{"columns": ["a", "b"], "units": "uV"}, [1, 2.5, None]])
def test_json_round_trips(tmp_path: Path, document: Any) -> None:
    path = tmp_path / "probes.description.json"
    path.write_text(json.dumps(document))
    assert load_file(path) == document


def test_jsonable_gives_one_record_per_line(tmp_path: Path) -> None:
    records = [{"trial": 1, "events": [0.1, 0.2]}, {"trial": 2, "events": []}]
    path = tmp_path / "_iblrig_taskData.raw.jsonable"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n\n")
    assert load_file(path) == records


@pytest.mark.parametrize("extension", ["yaml", "yml"])
def test_yaml_round_trips(tmp_path: Path, extension: str) -> None:
    path = tmp_path / f"_iblrig_settings.raw.{extension}"
    path.write_text("rig: rig01\nchannels: [1, 2]\nnested: {gain: 500}\n")
    assert load_file(path) == {"rig": "rig01", "channels": [1, 2], "nested": {"gain": 500}}


@pytest.mark.parametrize("extension", ["tiff", "tif", "TIFF"])
def test_tiff_gives_the_image_and_a_stack_its_pages(tmp_path: Path, extension: str) -> None:
    import tifffile

    image = np.arange(12, dtype=np.uint8).reshape(3, 4)
    tifffile.imwrite(tmp_path / f"naturalScene.template.{extension}", image)
    loaded = load_file(tmp_path / f"naturalScene.template.{extension}")
    assert loaded.dtype == np.uint8 and loaded.tolist() == image.tolist()
    stack = np.arange(24, dtype=np.uint16).reshape(2, 3, 4)
    tifffile.imwrite(tmp_path / "stack.frames.tif", stack)
    assert load_file(tmp_path / "stack.frames.tif").tolist() == stack.tolist()


def test_npz_with_only_arr_0_gives_that_array(tmp_path: Path) -> None:
    path = tmp_path / "spikes.templates.npz"
    np.savez(path, np.arange(4))
    assert_array_equal(load_file(path), np.arange(4))


def test_npz_with_named_arrays_gives_a_dict_of_arrays(tmp_path: Path) -> None:
    path = tmp_path / "spikes.templates.npz"
    np.savez_compressed(path, waveforms=np.ones((2, 3)), channels=np.array([4, 5]))
    loaded = load_file(path)
    assert isinstance(loaded, dict)
    assert set(loaded) == {"waveforms", "channels"}
    assert_array_equal(loaded["waveforms"], np.ones((2, 3)))
    assert_array_equal(loaded["channels"], [4, 5])


@pytest.mark.parametrize(
    "name",
    [
        "sub.raw.nwb",
        "_spikeglx_ephysData_g0_t0.imec0.ap.bin",
        "_spikeglx_ephysData_g0_t0.imec0.ap.cbin",
        "_iblrig_leftCamera.raw.mp4",
        "_iblrig_bodyCamera.raw.avi",
        "notes.weird.xyz",
        "README",
    ],
)
def test_files_for_other_tools_load_as_their_path(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"\x00\x01 not empty")
    assert load_file(path) == path
    assert isinstance(load_file(str(path)), Path)


@pytest.mark.parametrize(
    "name", ["a.b.npy", "a.b.pqt", "a.b.json", "a.b.csv", "a.b.yaml", "a.b.mp4", "a.b.xyz"]
)
def test_empty_file_loads_as_none(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.touch()
    assert load_file(path) is None
    assert load_file(path, mmap=True) is None


def test_missing_file_is_not_found_and_named(tmp_path: Path) -> None:
    path = tmp_path / "spikes.times.npy"
    with pytest.raises(NotFoundError, match=r"spikes\.times\.npy does not exist"):
        load_file(path)


def test_registered_loader_reads_its_extension(tmp_path: Path, registry: None) -> None:
    path = tmp_path / "notes.session.txt"
    path.write_text("mouse was calm")
    assert load_file(path) == path
    register_loader("txt", lambda p: p.read_text().upper())
    assert load_file(path) == "MOUSE WAS CALM"
    register_loader(".TRACE", lambda p: p.read_text().split())
    (tmp_path / "lick.events.trace").write_text("1 2 3")
    assert load_file(tmp_path / "lick.events.trace") == ["1", "2", "3"]
    assert loader_for(".trace") is loader_for("trace") is not None
    unregister_loader(".txt")
    assert load_file(path) == path


def test_registered_loader_replaces_a_built_in_one(tmp_path: Path, registry: None) -> None:
    path = tmp_path / "spikes.times.npy"
    np.save(path, np.arange(3))
    register_loader(".npy", lambda p: ("mine", p.name))
    assert load_file(path) == ("mine", "spikes.times.npy")


def test_errors_of_a_registered_loader_pass_through(tmp_path: Path, registry: None) -> None:
    def refuse(path: Path) -> Any:
        raise KeyError(path.name)

    register_loader("trace", refuse)
    (tmp_path / "a.b.trace").write_text("x")
    with pytest.raises(KeyError, match=r"a\.b\.trace"):
        load_file(tmp_path / "a.b.trace")


@pytest.mark.parametrize("extension", ["", ".", "tar.gz", ".n py", 3])
def test_register_loader_rejects_malformed_extensions(extension: Any) -> None:
    with pytest.raises(ValidationError, match="is not a file extension"):
        register_loader(extension, str)


def test_register_loader_needs_a_callable() -> None:
    with pytest.raises(ValidationError, match="must be a callable"):
        register_loader(".trace", "not a function")  # type: ignore[arg-type]


BROKEN_FILES = {
    "truncated npy": ("spikes.times.npy", npy_bytes(np.arange(100.0))[:-50], ".npy array"),
    "npy header only": ("spikes.times.npy", npy_bytes(np.arange(100.0))[:30], ".npy array"),
    "not npy": ("spikes.times.npy", b"these are not the spikes", ".npy array"),
    "pickled npy": ("a.b.npy", npy_bytes(np.array([{}, 1], dtype=object)), ".npy array"),
    "npz in npy": ("a.b.npy", npz_bytes(x=np.arange(3)), ".npy array"),
    "truncated npz": ("a.b.npz", npz_bytes(x=np.arange(300))[:100], ".npz archive"),
    "not parquet": ("trials.table.pqt", b"PAR1 not really a parquet file", "Parquet table"),
    "truncated parquet": (
        "trials.table.parquet",
        parquet_bytes(pd.DataFrame({"a": range(100)}))[:-40],
        "Parquet table",
    ),
    "bad json": ("probes.description.json", b'{"probe": "probe00",', "JSON"),
    "bad jsonable": ("task.data.jsonable", b'{"a": 1}\n{"a": \n', "JSON lines"),
    "bad yaml": ("rig.settings.yaml", b"rig: [rig01, rig02\n", "YAML"),
    "ragged csv": ("a.b.csv", b"a,b\n1,2\n3,4,5,6\n", "CSV table"),
    "not utf-8 tsv": ("a.b.tsv", b"a\tb\n\xff\xfe\x00\t1\n", "tab-separated table"),
    "not a tiff": ("naturalScene.template.1.tiff", b"II*\x00garbage", "TIFF image"),
}


@pytest.mark.parametrize(
    ("name", "content", "what"), list(BROKEN_FILES.values()), ids=list(BROKEN_FILES)
)
def test_broken_file_raises_validation_error_naming_it(
    tmp_path: Path, name: str, content: bytes, what: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValidationError) as info:
        load_file(path)
    message = str(info.value)
    assert f"cannot read {path} as" in message
    assert what in message
    assert "download it again" in message
    assert info.value.context["path"] == str(path)


def test_truncated_npy_raises_validation_error_when_memory_mapped(tmp_path: Path) -> None:
    path = tmp_path / "spikes.times.npy"
    path.write_bytes(npy_bytes(np.arange(100.0))[:-50])
    with pytest.raises(ValidationError, match=r"spikes\.times\.npy as a NumPy \.npy array"):
        load_file(path, mmap=True)


def test_importing_loaders_leaves_heavy_libraries_unloaded() -> None:
    code = (
        "import sys, neurotrove.loaders; "
        "print(sorted({'pandas', 'pyarrow', 'yaml'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------------------
# ALF objects on disk, and ONE's reading of them


def write_trials(folder: Path) -> list[Path]:
    """A trials object as IBL extracts it: a table plus a few separate attributes."""
    rng = np.random.default_rng(1)
    starts = np.cumsum(rng.uniform(2.0, 5.0, N_TRIALS))
    contrast = rng.choice([0.0, 0.0625, 0.25, 1.0], N_TRIALS)
    left = rng.random(N_TRIALS) < 0.5
    table = pd.DataFrame(
        {
            "intervals_0": starts,
            "intervals_1": starts + rng.uniform(1.0, 2.0, N_TRIALS),
            "stimOn_times": starts + 0.1,
            "goCue_times": starts + 0.12,
            "response_times": starts + 0.8,
            "choice": rng.choice([-1, 0, 1], N_TRIALS),
            "feedbackType": rng.choice([-1, 1], N_TRIALS),
            "contrastLeft": np.where(left, contrast, np.nan),
            "contrastRight": np.where(left, np.nan, contrast),
            "probabilityLeft": np.full(N_TRIALS, 0.5),
            "feedback_times": starts + 0.9,
            "rewardVolume": rng.choice([0.0, 1.5], N_TRIALS),
            "firstMovement_times": starts + 0.5,
        }
    )
    table.to_parquet(folder / "_ibl_trials.table.pqt")
    np.save(folder / "_ibl_trials.goCueTrigger_times.npy", starts + 0.11)
    np.save(folder / "_ibl_trials.stimOff_times.npy", starts + 1.0)
    np.save(folder / "_ibl_trials.intervals_bpod.npy", np.c_[starts - 0.01, starts + 2.0])
    quiescence = rng.uniform(0.2, 0.6, N_TRIALS).reshape(N_TRIALS, 1)  # a MATLAB column
    np.save(folder / "_ibl_trials.quiescencePeriod.npy", quiescence)
    return sorted(folder.glob("_ibl_trials.*"))


def write_table_with_parts(timescale: str, extra: str) -> Callable[[Path], list[Path]]:
    def write(folder: Path) -> list[Path]:
        starts = np.arange(N_TRIALS) * 3.0
        table = pd.DataFrame(
            {"intervals_0": starts, "intervals_1": starts + 2, "stimOn_times": starts + 0.1}
        )
        name = alf.build_filename(
            "trials",
            "table",
            "pqt",
            namespace="ibl",
            timescale=timescale or None,
            extra=extra or None,
        )
        table.to_parquet(folder / name)
        np.save(folder / "_ibl_trials.feedback_times_bpod.npy", starts + 1)
        return sorted(folder.glob("_ibl_trials.*"))

    return write


def write_table_overriding_a_file(folder: Path) -> list[Path]:
    pd.DataFrame({"choice": [1, -1, 1], "feedbackType": [1, 1, -1]}).to_parquet(
        folder / "_ibl_trials.table.pqt"
    )
    np.save(folder / "_ibl_trials.choice.npy", np.array([0, 0, 0]))
    return sorted(folder.glob("_ibl_trials.*"))


def write_wheel(folder: Path) -> list[Path]:
    """Wheel position sampled evenly, with (sample, time) pairs instead of one time each."""
    np.save(
        folder / "_ibl_wheel.position.npy", np.cumsum(np.random.default_rng(2).normal(size=50))
    )
    np.save(folder / "_ibl_wheel.timestamps.npy", np.array([[0, 10.0], [49, 14.9]]))
    return sorted(folder.glob("_ibl_wheel.*"))


def write_wheel_timestamps_with_timescale(folder: Path) -> list[Path]:
    np.save(folder / "_ibl_wheel.position.npy", np.linspace(0, 1, 20))
    np.save(folder / "_ibl_wheel.timestamps_bpod.npy", np.array([[0, 1.0], [19, 2.9]]))
    return sorted(folder.glob("_ibl_wheel.*"))


def write_wheel_inconsistent(folder: Path) -> list[Path]:
    np.save(folder / "_ibl_wheel.position.npy", np.linspace(0, 1, 20))
    np.save(folder / "_ibl_wheel.timestamps.npy", np.array([[0, 1.0], [9, 2.0], [19, 2.9]]))
    return sorted(folder.glob("_ibl_wheel.*"))


def write_spikes(folder: Path) -> list[Path]:
    rng = np.random.default_rng(3)
    n = 200
    np.save(folder / "spikes.times_ephysClock.npy", np.sort(rng.uniform(0, 100, n)))
    np.save(folder / "spikes.clusters.npy", rng.integers(0, 10, n).astype(np.uint32))
    np.save(folder / "spikes.amps.npy", rng.uniform(50e-6, 300e-6, n))
    np.save(folder / "spikes.depths.npy", rng.uniform(0, 3840, n).astype(np.float32))
    np.save(folder / "spikes.samples.npy", rng.integers(0, 3_000_000, (n, 1)))
    return sorted(folder.glob("spikes.*"))


def write_clusters_with_metadata(folder: Path) -> list[Path]:
    rng = np.random.default_rng(4)
    np.save(folder / "clusters.waveformFeatures.npy", rng.normal(size=(10, 3)))
    (folder / "clusters.waveformFeatures.metadata.json").write_text(
        json.dumps({"columns": ["amplitude", "width", "asymmetry"], "units": ["uV", "ms", ""]})
    )
    np.save(folder / "clusters.depths.npy", rng.uniform(0, 3840, 10))
    (folder / "clusters.depths.metadata.json").write_text(json.dumps({"units": "um"}))
    np.save(folder / "clusters.channels.npy", np.arange(10))
    (folder / "clusters.orphan.metadata.json").write_text(json.dumps({"note": "no data"}))
    metrics = pd.DataFrame(
        {"firing_rate": rng.uniform(0, 20, 10), "label": rng.integers(0, 2, 10)}
    )
    metrics.to_parquet(folder / "clusters.metrics.pqt")
    return sorted(folder.glob("clusters.*"))


def write_metadata_in_another_folder(folder: Path) -> list[Path]:
    (folder / "a").mkdir()
    (folder / "b").mkdir()
    np.save(folder / "a" / "clusters.waveformFeatures.npy", np.ones((4, 2)))
    (folder / "b" / "clusters.waveformFeatures.metadata.json").write_text(
        '{"columns": ["x", "y"]}'
    )
    return sorted(folder.rglob("clusters.*"))


def write_camera_with_extras(folder: Path) -> list[Path]:
    times = np.arange(30) / 30
    np.save(folder / "_ibl_leftCamera.times.npy", times)
    np.save(folder / "_ibl_leftCamera.times.raw.npy", times + 0.002)
    np.save(folder / "_ibl_leftCamera.ROIMotionEnergy.part1.npy", np.ones(30))
    np.save(folder / "_ibl_leftCamera.ROIMotionEnergy.part2.npy", np.zeros(30))
    np.save(folder / "_ibl_leftCamera.timestamps_ephys.raw.npy", np.array([[0, 5.0], [29, 6.0]]))
    return sorted(folder.glob("_ibl_leftCamera.*"))


def write_rms_with_vector_timestamps(folder: Path) -> list[Path]:
    rng = np.random.default_rng(5)
    np.save(folder / "_iblqc_ephysTimeRmsAP.rms.npy", rng.uniform(size=(15, 384)))
    np.save(folder / "_iblqc_ephysTimeRmsAP.timestamps.npy", np.arange(15) * 10.0)
    return sorted(folder.glob("_iblqc_ephysTimeRmsAP.*"))


OBJECTS: dict[str, Callable[[Path], list[Path]]] = {
    "trials": write_trials,
    "table with timescale": write_table_with_parts("bpod", ""),
    "table with extra": write_table_with_parts("", "v2"),
    "table with timescale and extra": write_table_with_parts("bpod", "v2"),
    "table overriding a file": write_table_overriding_a_file,
    "wheel": write_wheel,
    "wheel timestamps with timescale": write_wheel_timestamps_with_timescale,
    "wheel with inconsistent lengths": write_wheel_inconsistent,
    "spikes": write_spikes,
    "clusters with metadata": write_clusters_with_metadata,
    "metadata in another folder": write_metadata_in_another_folder,
    "camera with extras": write_camera_with_extras,
    "rms with vector timestamps": write_rms_with_vector_timestamps,
}


def assemble(paths: list[Path], **options: Any) -> AlfObject:
    return assemble_object([(alf.parse_filename(p.name), p) for p in paths], **options)


def load_with_one(paths: list[Path]) -> dict[str, Any]:
    from one.alf import io as alfio

    return dict(alfio.load_object(paths))


def assert_same_as_one(ours: AlfObject, theirs: dict[str, Any]) -> None:
    assert sorted(ours) == sorted(theirs)
    for key, expected in theirs.items():
        actual = ours[key]
        if isinstance(expected, pd.DataFrame):
            pd.testing.assert_frame_equal(actual, expected)
        elif isinstance(expected, np.ndarray):
            assert isinstance(actual, np.ndarray), key
            assert actual.shape == expected.shape, key
            assert_array_equal(actual, expected, err_msg=key)
        else:
            assert actual == expected, key


@pytest.mark.parametrize("mmap", [False, True], ids=["read", "mmap"])
@pytest.mark.parametrize("write", list(OBJECTS.values()), ids=list(OBJECTS))
def test_assemble_object_matches_one_load_object(
    tmp_path: Path, write: Callable[[Path], list[Path]], mmap: bool
) -> None:
    paths = write(tmp_path)
    assert_same_as_one(assemble(paths, mmap=mmap), load_with_one(paths))


def test_trials_table_expands_into_columns_and_joins_intervals(tmp_path: Path) -> None:
    paths = write_trials(tmp_path)
    table = pd.read_parquet(tmp_path / "_ibl_trials.table.pqt")
    trials = assemble(paths, obj="trials")
    assert trials.object_name == "trials"
    assert "table" not in trials
    assert_array_equal(trials.intervals, table[["intervals_0", "intervals_1"]].to_numpy())
    assert trials["intervals_bpod"].shape == (N_TRIALS, 2)
    assert trials["quiescencePeriod"].shape == (N_TRIALS,)
    assert_array_equal(trials["stimOn_times"], table["stimOn_times"])
    # Unlike ONE, which casts the whole table to one dtype, integer columns stay integers.
    assert trials["feedbackType"].dtype.kind == "i"


def test_table_parts_go_on_its_column_names(tmp_path: Path) -> None:
    trials = assemble(write_table_with_parts("bpod", "v2")(tmp_path))
    assert sorted(trials) == ["feedback_times_bpod", "intervals_bpod.v2", "stimOn_times_bpod.v2"]
    assert trials["intervals_bpod.v2"].shape == (N_TRIALS, 2)


def test_table_column_replaces_a_file_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="neurotrove.loaders"):
        trials = assemble(write_table_overriding_a_file(tmp_path))
    assert_array_equal(trials.choice, [1, -1, 1])
    assert "_ibl_trials.choice.npy" in caplog.text


def test_wheel_timestamps_are_interpolated_to_one_per_sample(tmp_path: Path) -> None:
    wheel = assemble(write_wheel(tmp_path), mmap=True)
    assert isinstance(wheel.position, np.memmap)
    assert_array_equal(wheel.timestamps, np.linspace(10.0, 14.9, 50))


def test_inconsistent_lengths_are_logged_and_left_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="neurotrove.loaders"):
        wheel = assemble(write_wheel_inconsistent(tmp_path))
    assert wheel.timestamps.shape == (3, 2)
    assert "inconsistent lengths" in caplog.text
    assert "'wheel'" in caplog.text


def test_metadata_columns_split_the_array_and_the_rest_is_kept(tmp_path: Path) -> None:
    clusters = assemble(write_clusters_with_metadata(tmp_path))
    features = np.load(tmp_path / "clusters.waveformFeatures.npy")
    assert "waveformFeatures" not in clusters
    assert_array_equal(clusters.width, features[:, 1])
    assert clusters["waveformFeaturesmetadata"] == {"units": ["uV", "ms", ""]}
    assert clusters["depthsmetadata"] == {"units": "um"}
    assert clusters["depths"].shape == (10,)
    assert "orphan" not in "".join(clusters)
    assert isinstance(clusters.metrics, pd.DataFrame)


def test_metadata_columns_that_do_not_fit_the_array_are_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "clusters.waveformFeatures.npy", np.ones((4, 3)))
    meta = tmp_path / "clusters.waveformFeatures.metadata.json"
    meta.write_text('{"columns": ["x", "y"]}')
    with pytest.raises(ValidationError, match=r"clusters\.waveformFeatures\.metadata\.json"):
        assemble(sorted(tmp_path.iterdir()))


def test_metadata_column_clashing_with_a_file_is_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "clusters.waveformFeatures.npy", np.ones((4, 2)))
    np.save(tmp_path / "clusters.depths.npy", np.ones(4))
    (tmp_path / "clusters.waveformFeatures.metadata.json").write_text(
        '{"columns": ["depths", "y"]}'
    )
    with pytest.raises(ValidationError, match=r"'depths'.*clusters\.depths\.npy"):
        assemble(sorted(tmp_path.iterdir()))


def test_two_files_with_one_key_are_refused_like_one_does(tmp_path: Path) -> None:
    np.save(tmp_path / "_ibl_trials.choice.npy", np.ones(3))
    np.save(tmp_path / "_misc_trials.choice.npy", np.ones(3))
    paths = sorted(tmp_path.iterdir())
    with pytest.raises(ValidationError) as info:
        assemble(paths)
    assert all(str(path) in str(info.value) for path in paths)
    with pytest.raises(AssertionError):
        load_with_one(paths)


def test_files_of_several_objects_are_refused(tmp_path: Path) -> None:
    paths = write_wheel(tmp_path) + write_spikes(tmp_path)
    with pytest.raises(ValidationError, match="spikes, wheel"):
        assemble(paths)
    with pytest.raises(ValidationError, match="only object 'trials'"):
        assemble(write_wheel(tmp_path), obj="trials")


def test_no_files_is_not_found() -> None:
    with pytest.raises(NotFoundError, match="'trials'"):
        assemble_object([], obj="trials")


def test_broken_file_in_an_object_is_named(tmp_path: Path) -> None:
    paths = write_spikes(tmp_path)
    (tmp_path / "spikes.amps.npy").write_bytes(b"\x93NUMPY broken")
    with pytest.raises(ValidationError, match=r"spikes\.amps\.npy"):
        assemble(paths)


# ---------------------------------------------------------------------------------------------
# AlfObject


def test_to_df_of_trials_has_one_column_per_attribute_column(tmp_path: Path) -> None:
    paths = write_trials(tmp_path)
    frame = assemble(paths).to_df()
    assert len(frame) == N_TRIALS
    assert {"intervals_0", "intervals_1", "intervals_bpod_0", "intervals_bpod_1"} <= set(frame)
    assert {"stimOn_times", "feedbackType", "goCueTrigger_times", "quiescencePeriod"} <= set(frame)
    assert "intervals" not in frame
    from one.alf import io as alfio

    expected = alfio.load_object(paths).to_df()
    pd.testing.assert_frame_equal(frame, expected, check_like=True, check_dtype=False)


def test_to_df_leaves_out_metadata_and_refuses_different_lengths(tmp_path: Path) -> None:
    clusters = assemble(write_clusters_with_metadata(tmp_path))
    assert sorted(map(str, clusters.to_df().columns)) == [
        "amplitude",
        "asymmetry",
        "channels",
        "depths",
        "width",
    ]
    ragged = AlfObject({"times": np.ones(5), "amps": np.ones(4)}, object_name="spikes")
    with pytest.raises(ValidationError, match=r"times \(5\), amps \(4\)"):
        ragged.to_df()


def test_repr_shows_the_object_and_its_attributes() -> None:
    spikes = AlfObject(
        {"times": np.zeros(3), "features": np.zeros((3, 2), np.float32), "meta": {"a": 1}},
        object_name="spikes",
    )
    assert repr(spikes) == (
        "<AlfObject 'spikes': times (3,) float64, features (3, 2) float32, meta dict of 1>"
    )


def test_attributes_read_by_key_or_dot_and_survive_pickling() -> None:
    wheel = AlfObject({"position": np.arange(3.0)}, object_name="wheel")
    assert wheel.position is wheel["position"]
    with pytest.raises(AttributeError, match="'wheel' has no attribute 'velocity'"):
        _ = wheel.velocity
    copy = pickle.loads(pickle.dumps(wheel))  # noqa: S301 (our own bytes)
    assert copy.object_name == "wheel"
    assert_array_equal(copy.position, wheel.position)
    assert wheel.copy().object_name == "wheel"


PLAIN_AND_OTHER_TABLES = {
    "numbers": pd.DataFrame(
        {
            "intervals_0": [0.0, 2.0],
            "intervals_1": [1.5, 3.0],
            "choice": [1, -1],
            "ok": [True, False],
            "gain": np.array([1, 2], dtype="float32"),
            "contrast": [0.5, np.nan],
        }
    ),
    "strings": pd.DataFrame({"name": ["a", "b"], "choice": [1, -1]}),
    "stored index": pd.DataFrame({"x": [1.0, 2.0]}, index=pd.Index([5, 6], name="trial")),
    "nullable ints": pd.DataFrame({"x": pd.array([1, None], dtype="Int64")}),
    "times": pd.DataFrame({"x": pd.to_datetime(["2020-01-01", "2020-01-02"])}),
    "categories": pd.DataFrame({"x": pd.Categorical(["a", "b"])}),
}


@pytest.mark.parametrize("case", list(PLAIN_AND_OTHER_TABLES))
def test_tables_read_from_arrow_give_what_pandas_gives(
    tmp_path: Path, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "_ibl_trials.table.pqt"
    PLAIN_AND_OTHER_TABLES[case].to_parquet(path)
    fast = assemble([path])
    monkeypatch.setattr(loaders, "_parquet_columns", lambda path: None)  # the DataFrame path
    slow = assemble([path])
    assert list(fast) == list(slow)
    for key, values in slow.items():
        assert type(fast[key]) is type(values)
        assert (fast[key].dtype, fast[key].shape) == (values.dtype, values.shape)
        assert fast[key].flags.writeable == values.flags.writeable
        assert_array_equal(fast[key], values)
