"""trove.ephys: Allen-style tables and unit filters, against hand-computed expectations.

Two sessions with one probe each. Which units pass which filter is worked out by hand in
``UNITS`` below; every test compares a query's units with that expectation.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest

import neurotrove as nt
from neurotrove.ephys import ProbeData
from neurotrove.errors import NotFoundError, ValidationError

# name: (session, quality, amplitude_cutoff, presence_ratio, isi_violations, snr, channel)
UNITS: dict[str, tuple[int, str, float | None, float, float, float, int]] = {
    "u0": (1, "good", 0.05, 0.99, 0.1, 3.0, 0),  # passes every default
    "u1": (1, "good", 0.20, 0.99, 0.1, 1.0, 1),  # amplitude cutoff too high
    "u2": (1, "good", 0.05, 0.90, 0.1, 2.5, 0),  # presence ratio too low
    "u3": (1, "good", 0.05, 0.99, 0.8, 4.0, 1),  # too many ISI violations
    "u4": (1, "noise", 0.01, 0.99, 0.1, 5.0, 1),  # not good
    "u5": (1, "good", 0.05, 0.99, 0.1, 2.0, 2),  # peak channel outside the brain
    "u6": (1, "good", None, 0.99, 0.1, 6.0, 0),  # no amplitude cutoff
    "v0": (2, "good", 0.00, 1.00, 0.0, 1.5, 0),
    "v1": (2, "good", 0.09, 0.96, 0.4, 2.2, 1),
    "v2": (2, "mua", 0.09, 0.96, 0.4, 3.0, 1),  # not good
}
STRUCTURES = {1: ["VISp", "CA1", None], 2: ["VISp", "LGd"]}
DEFAULT = {"u0", "v0", "v1"}


def _probe(session: int, name: str) -> ProbeData:
    mine = {k: v for k, v in UNITS.items() if v[0] == session}
    return ProbeData(
        name,
        {
            "model": "Neuropixels 1.0",
            "phase": "3a",
            "sampling_rate": 30000.0,
            "lfp_sampling_rate": 2500.0,
            "lfp_temporal_subsampling_factor": 2.0,
            "has_lfp_data": True,
        },
        channels={
            "local_index": list(range(len(STRUCTURES[session]))),
            "structure_acronym": STRUCTURES[session],
            "structure_id": [
                None if a is None else 100 + i for i, a in enumerate(STRUCTURES[session])
            ],
            "probe_vertical_position": [20.0 * i for i in range(len(STRUCTURES[session]))],
        },
        units={
            "cluster_id": [int(k[1:]) for k in mine],
            "quality": [v[1] for v in mine.values()],
            "amplitude_cutoff": [math.nan if v[2] is None else v[2] for v in mine.values()],
            "presence_ratio": [v[3] for v in mine.values()],
            "isi_violations": [v[4] for v in mine.values()],
            "snr": [v[5] for v in mine.values()],
            "peak_channel": [v[6] for v in mine.values()],
            "json": [
                {"analysis_metrics": {"g_osi_dg": 0.5 + int(k[1:]) / 10}}
                if k in ("u0", "u1")
                else None
                for k in mine
            ],
        },
    )


@pytest.fixture
def ephys_trove(trove: nt.Trove) -> nt.Trove:
    trove.register_subject("M1", lab="allen", sex="M", birth_date="2019-01-01", genotype="wt/wt")
    trove.register_subject(
        "M2", lab="allen", sex="F", birth_date="2019-02-01", genotype="Sst-IRES-Cre"
    )
    first = trove.register_session("M1", "2019-05-01", lab="allen", task_protocol="A")
    second = trove.register_session(
        "M2", "2019-05-02", lab="allen", task_protocol="B", start_time="2019-05-02T10:30:00"
    )
    trove.ephys.write_session(first, [_probe(1, "probeA")])
    trove.ephys.write_session(second, [_probe(2, "probeB")])
    return trove


def _names(trove: nt.Trove, frame: pd.DataFrame) -> set[str]:
    """Map unit ids back to the names in UNITS."""
    units = trove.table("units").get()
    probes = trove.table("probes").get()
    prefix = {pid: "u" if name == "probeA" else "v" for pid, name in probes["name"].items()}
    name_of = {
        unit: f"{prefix[row['probe']]}{row['cluster_id']}" for unit, row in units.iterrows()
    }
    return {name_of[unit] for unit in frame.index}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, DEFAULT),
        ({"filter_by_validity": False}, DEFAULT | {"u4", "v2"}),
        ({"amplitude_cutoff_maximum": None}, DEFAULT | {"u1", "u6"}),
        ({"presence_ratio_minimum": None}, DEFAULT | {"u2"}),
        ({"isi_violations_maximum": None}, DEFAULT | {"u3"}),
        ({"filter_out_of_brain_units": False}, DEFAULT | {"u5"}),
        ({"amplitude_cutoff_maximum": 0.06}, {"u0", "v0"}),
        ({"presence_ratio_minimum": 0.98}, {"u0", "v0"}),
        ({"isi_violations_maximum": 0.2}, {"u0", "v0"}),
        ({"snr_minimum": 2}, {"u0", "v1"}),
        ({"snr_maximum": 2}, {"v0"}),
        ({"snr": (2, ">")}, {"u0", "v1"}),
        ({"ecephys_structure_acronym": "VISp"}, {"u0", "v0"}),
        ({"ecephys_structure_acronym": ["LGd", "CA1"]}, {"v1"}),
        ({"session_type": "B"}, {"v0", "v1"}),
        ({"sex": "M"}, {"u0"}),
        ({"name": "probeB", "snr_minimum": 2}, {"v1"}),
        (
            {
                "filter_by_validity": False,
                "amplitude_cutoff_maximum": None,
                "snr_minimum": 2,
                "ecephys_structure_acronym": "VISp",
            },
            {"u0", "u6"},
        ),
    ],
)
def test_unit_filters(ephys_trove: nt.Trove, filters: dict[str, Any], expected: set[str]) -> None:
    filters = dict(filters)  # the parameters are shared by both databases' runs
    filter_by_validity = filters.pop("filter_by_validity", True)
    units = ephys_trove.ephys.get_units(filter_by_validity=filter_by_validity, **filters)
    assert _names(ephys_trove, units) == expected
    assert ("quality" in units.columns) is (not filter_by_validity)


def test_units_carry_channel_probe_and_session_columns(ephys_trove: nt.Trove) -> None:
    units = ephys_trove.ephys.get_units()
    (u0,) = [u for u in units.index if _names(ephys_trove, units.loc[[u]]) == {"u0"}]
    row = units.loc[u0]
    assert row["ecephys_structure_acronym"] == "VISp"
    assert row["ecephys_structure_id"] == 100
    assert row["local_index"] == 0
    assert row["name"] == "probeA"
    assert row["lfp_sampling_rate"] == 1250.0  # divided by the subsampling factor, as Allen
    assert row["session_type"] == "A"
    assert row["sex"] == "M"
    assert row["genotype"] == "wt/wt"
    assert row["age_in_days"] == 120.0  # 2019-01-01 to 2019-05-01
    assert row["snr"] == 3.0
    for hidden in ("has_nwb", "isi_experiment_id", "air_channel_index", "json"):
        assert hidden not in units.columns
    shown = ephys_trove.ephys.get_units(suppress=[])
    assert "has_nwb" in shown.columns and "lfp_temporal_subsampling_factor" in shown.columns
    fewer = ephys_trove.ephys.get_units(suppress=["snr", "sex"])
    assert "snr" not in fewer.columns and "has_nwb" in fewer.columns


def test_bad_unit_filters_name_the_valid_ones(ephys_trove: nt.Trove) -> None:
    with pytest.raises(
        ValidationError, match="no filter 'snr_minimum_x'.*ecephys_structure_acronym"
    ):
        ephys_trove.ephys.get_units(snr_minimum_x=2)
    with pytest.raises(ValidationError, match="no filter 'speed_minimum'.*<metric>_minimum"):
        ephys_trove.ephys.get_units(speed_minimum=2)
    with pytest.raises(ValidationError, match="snr_minimum='high' must be a number"):
        ephys_trove.ephys.get_units(snr_minimum="high")


def test_session_table_counts_and_structures(ephys_trove: nt.Trove) -> None:
    table = ephys_trove.ephys.get_session_table()
    assert list(table["session_type"]) == ["A", "B"]
    assert list(table["unit_count"]) == [1, 2]  # units passing the default filters
    assert list(table["channel_count"]) == [3, 2]
    assert list(table["probe_count"]) == [1, 1]
    assert list(table["ecephys_structure_acronyms"]) == [["CA1", "VISp"], ["LGd", "VISp"]]
    assert list(table["full_genotype"]) == ["wt/wt", "Sst-IRES-Cre"]
    assert list(table["age_in_days"]) == [120.0, 90.0]
    assert "has_nwb" not in table.columns and "date_of_acquisition" not in table.columns
    shown = ephys_trove.ephys.get_session_table(suppress=[])
    assert list(shown["date_of_acquisition"]) == ["2019-05-01", "2019-05-02T10:30:00"]
    assert list(shown["has_nwb"]) == [False, False]
    assert ephys_trove.ephys.get_all_session_types() == ["A", "B"]
    assert ephys_trove.ephys.get_all_sexes() == ["M", "F"]
    assert ephys_trove.ephys.get_all_ages() == [120.0, 90.0]
    assert ephys_trove.ephys.get_all_full_genotypes() == ["wt/wt", "Sst-IRES-Cre"]
    assert ephys_trove.ephys.get_structure_acronyms() == ["CA1", "LGd", "VISp"]


def test_probe_and_channel_tables(ephys_trove: nt.Trove) -> None:
    probes = ephys_trove.ephys.get_probes()
    assert list(probes["name"]) == ["probeA", "probeB"]
    assert list(probes["unit_count"]) == [1, 2]
    assert list(probes["channel_count"]) == [3, 2]
    assert list(probes["lfp_sampling_rate"]) == [1250.0, 1250.0]
    assert "session_type" not in probes.columns and "lfp_temporal_subsampling_factor" not in probes
    channels = ephys_trove.ephys.get_channels()
    assert len(channels) == 5
    by_place = {
        (probes.loc[p, "name"], i): n
        for p, i, n in zip(
            channels["ecephys_probe_id"],
            channels["local_index"],
            channels["unit_count"],
            strict=True,
        )
    }
    assert by_place == {
        ("probeA", 0): 1,
        ("probeA", 1): 0,
        ("probeA", 2): 0,
        ("probeB", 0): 1,
        ("probeB", 1): 1,
    }
    assert "name" not in channels.columns and "phase" in channels.columns


def test_a_session_in_the_bin_leaves_the_ephys_tables_until_restored(
    ephys_trove: nt.Trove,
) -> None:
    from neurotrove.server.bin import move_to_bin, restore
    from neurotrove.server.roles import Rights

    trove, admin = ephys_trove, Rights("admin", "admin")
    first, second = trove.ephys.get_session_table().index
    units_before = trove.ephys.get_units()
    move_to_bin(trove, admin, "session", first, via="python")
    assert list(trove.ephys.get_session_table().index) == [second]
    assert set(trove.ephys.get_probes()["ecephys_session_id"]) == {second}
    assert set(trove.ephys.get_channels()["ecephys_session_id"]) == {second}
    units = trove.ephys.get_units()
    assert set(units["ecephys_session_id"]) == {second}
    assert len(units) == (units_before["ecephys_session_id"] == second).sum()
    restore(trove, admin, "session", first, via="python")
    pd.testing.assert_frame_equal(trove.ephys.get_units(), units_before)


def test_a_trove_without_ephys_has_empty_tables_and_exports_an_empty_cache(
    registered: nt.Trove, tmp_path: Any
) -> None:
    # Sessions and datasets, but no probes: every table is empty, and exports as empty.
    methods = ("get_session_table", "get_probes", "get_channels", "get_units")
    empty = {method: getattr(registered.ephys, method)() for method in methods}
    assert all(frame.empty for frame in empty.values())
    manifest = registered.ephys.export_allen(tmp_path / "export")
    for name in ("sessions", "probes", "channels", "units"):
        assert pd.read_csv(tmp_path / "export" / f"{name}.csv").empty
    with nt.connect(tmp_path / "other", create=True) as other:
        report = other.ephys.import_allen(manifest.parent)
        assert (report.sessions, report.probes) == ([], 0)
    # The empty tables have the columns the tables have once a probe is written.
    eid = registered.search().index[0]
    registered.ephys.write_session(eid, [_probe(1, "probeA")])
    for method in methods:
        assert list(empty[method].columns) == list(getattr(registered.ephys, method)().columns)


def test_analysis_metrics_per_session_and_type(ephys_trove: nt.Trove) -> None:
    first = ephys_trove.ephys.get_session_table().index[0]
    metrics = ephys_trove.ephys.get_unit_analysis_metrics_for_session(first)
    assert _names(ephys_trove, metrics) == {"u0"}  # u1 fails the unit filters
    assert metrics.index.name == "ecephys_unit_id"
    assert metrics["g_osi_dg"].tolist() == [0.5]
    assert "snr" in metrics.columns  # annotated with the units table
    raw = ephys_trove.ephys.get_unit_analysis_metrics_for_session(first, annotate=False)
    assert sorted(raw["g_osi_dg"]) == [0.5, 0.6]
    assert list(raw.columns) == ["g_osi_dg"]
    typed = ephys_trove.ephys.get_unit_analysis_metrics_by_session_type("A")
    assert _names(ephys_trove, typed) == {"u0"}
    assert ephys_trove.ephys.get_unit_analysis_metrics_by_session_type("B").empty
    with pytest.raises(ValidationError, match="unrecognised session type 'C'.*A, B"):
        ephys_trove.ephys.get_unit_analysis_metrics_by_session_type("C")


def test_table_interface_writes_show_up_in_unit_tables(ephys_trove: nt.Trove) -> None:
    """An update through trove.table() invalidates the unit snapshot in the same transaction."""
    ephys = ephys_trove.ephys
    assert _names(ephys_trove, ephys.get_units()) == DEFAULT
    units = ephys_trove.table("units")
    assert units.update({"quality": "noise"}, cluster_id=1, quality="good") == 2  # u1 and v1
    assert _names(ephys_trove, ephys.get_units()) == {"u0", "v0"}
    channels = ephys_trove.table("channels")
    channels.update({"structure_acronym": "VISl"}, structure_acronym="LGd")
    assert ephys.get_structure_acronyms() == ["CA1", "VISl", "VISp"]
    probe = ephys_trove.table("probes").get_one(name="probeB")
    units.insert(
        [
            {
                "probe": probe["id"],
                "cluster_id": 7,
                "quality": "good",
                "peak_channel": 0,
                "amplitude_cutoff": 0.0,
                "presence_ratio": 1.0,
                "isi_violations": 0.0,
            }
        ]
    )
    assert _names(ephys_trove, ephys.get_units()) == {"u0", "v0", "v7"}
    with nt.connect(ephys_trove.root, db=ephys_trove.db) as again:  # a fresh client, same answer
        assert _names(again, again.ephys.get_units()) == {"u0", "v0", "v7"}


def test_a_damaged_snapshot_file_is_rebuilt(ephys_trove: nt.Trove) -> None:
    ephys_trove.ephys.get_units()
    files = list(ephys_trove.settings.cache_dir.glob("ephys/*/units-*.arrow"))
    assert len(files) == 1
    files[0].write_bytes(b"not arrow")
    with nt.connect(ephys_trove.root, db=ephys_trove.db) as again:
        assert _names(again, again.ephys.get_units()) == DEFAULT


def test_writing_a_session_again_keeps_ids_and_replaces_units(ephys_trove: nt.Trove) -> None:
    before = ephys_trove.table("units").get()
    first = ephys_trove.ephys.get_session_table().index[0]
    ephys_trove.ephys.write_session(first, [_probe(1, "probeA")])
    after = ephys_trove.table("units").get()
    assert sorted(before.index) == sorted(after.index)
    assert len(ephys_trove.table("channels").get()) == 5


def test_a_bad_probe_writes_nothing(ephys_trove: nt.Trove) -> None:
    first = ephys_trove.ephys.get_session_table().index[0]
    good = _probe(1, "probeA")
    good.units["snr"] = [0.0] * len(good.units["snr"])
    bad = ProbeData("probeC", channels={"local_index": [0, 0]})
    with pytest.raises(ValidationError, match=r"probe probeC, channels: local_index 0 appears"):
        ephys_trove.ephys.write_session(first, [good, bad])
    bad = ProbeData("probeC", units={"cluster_id": [1, 2], "snr": ["x", "y"]})
    with pytest.raises(
        ValidationError, match=r"probe probeC, units: column snr must hold numbers"
    ):
        ephys_trove.ephys.write_session(first, [good, bad])
    bad = ProbeData("probeC", units={"cluster_id": [1, 2], "speed": [1, 2]})
    with pytest.raises(ValidationError, match=r"unknown column 'speed'"):
        ephys_trove.ephys.write_session(first, [good, bad])
    assert _names(ephys_trove, ephys_trove.ephys.get_units(snr_minimum=1)) == {"u0", "v0", "v1"}
    assert len(ephys_trove.table("probes").get()) == 2


def test_insertions_as_one_finds_them(ephys_trove: nt.Trove) -> None:
    probes = ephys_trove.table("probes").get()
    pid = probes.index[probes["name"] == "probeA"][0]
    eid, name = ephys_trove.pid2eid(pid)
    assert name == "probeA" and eid == probes.loc[pid, "session"]
    assert ephys_trove.pid2eid("00000000-0000-0000-0000-000000000000") == (None, None)
    with pytest.raises(ValidationError, match="pid 'probe' is not a UUID"):
        ephys_trove.pid2eid("probe")
    pids, names = ephys_trove.eid2pid(eid)
    assert (pids, names) == ([pid], ["probeA"])
    pids, names, records = ephys_trove.eid2pid("M1/2019-05-01/001", details=True)
    assert records[0]["session_info"]["subject"] == "M1"
    assert records[0]["model"] == "Neuropixels 1.0"
    assert ephys_trove.search_insertions(subject="M2") == list(
        probes.index[probes["name"] == "probeB"]
    )
    assert len(ephys_trove.search_insertions(name="probe")) == 2
    assert ephys_trove.search_insertions(name="^probeA$", date_range=["2019-05-02", None]) == []
    _, details = ephys_trove.search_insertions(details=True, model="Neuropixels")
    assert [d["name"] for d in details] == ["probeB", "probeA"]  # newest session first
    with pytest.raises(ValidationError, match="no filter 'colour'"):
        ephys_trove.search_insertions(colour="red")
    with pytest.raises(NotFoundError):
        ephys_trove.eid2pid("M9/2019-05-01/001")


def test_session_data_without_spike_files(ephys_trove: nt.Trove) -> None:
    first = ephys_trove.ephys.get_session_table().index[0]
    data = ephys_trove.ephys.get_session_data(first)
    assert _names(ephys_trove, data.units) == {"u0"}
    assert data.spike_times == {}  # written by hand: no spike files to read
    assert data.probes is not None and list(data.probes["name"]) == ["probeA"]
    assert data.channels is not None and len(data.channels) == 3


def test_snapshots_are_patched_not_rebuilt_after_small_writes(
    ephys_trove: nt.Trove, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a write, only the changed units are read again, also by another process."""
    from neurotrove.ephys.unit_columns import UnitSnapshot

    ephys_trove.ephys.get_units()  # the snapshot file of this state
    reads: list[bool] = []
    build = UnitSnapshot.build

    def counting(conn: Any, where: Any = ()) -> Any:
        reads.append(bool(where))  # True: some units; False: every unit
        return build(conn, where)

    monkeypatch.setattr(UnitSnapshot, "build", staticmethod(counting))
    ephys_trove.table("units").update({"quality": "noise"}, cluster_id=1, quality="good")
    with nt.connect(ephys_trove.root, db=ephys_trove.db) as other:  # holds no snapshot yet
        assert _names(other, other.ephys.get_units()) == {"u0", "v0"}
        first = other.ephys.get_session_table().index[0]
        other.ephys.write_session(first, [_probe(1, "probeA")])  # u1 is good again
        relaxed = other.ephys.get_units(amplitude_cutoff_maximum=None)
        assert _names(other, relaxed) == {"u0", "u1", "u6", "v0"}  # v1 is still noise
    assert reads and all(reads)


def test_a_catalogue_built_anew_never_reuses_an_old_snapshot(root: Any) -> None:
    """Row numbers restart in a new catalogue; its units must not be taken from old files."""
    with nt.connect(root, create=True) as first:
        eid = first.register_session("M1", "2019-05-01", task_protocol="A")
        first.ephys.write_session(eid, [_probe(1, "probeA")])
        assert _names(first, first.ephys.get_units()) == {"u0"}
    for path in (root / ".trove").glob("catalog.db*"):
        path.unlink()
    with nt.connect(root, create=True) as second:
        eid = second.register_session("M2", "2019-05-02", task_protocol="B")
        second.ephys.write_session(eid, [_probe(2, "probeB")])
        assert _names(second, second.ephys.get_units()) == {"v0", "v1"}


def test_the_unit_snapshot_holds_what_the_database_holds(ephys_trove: nt.Trove) -> None:
    """The snapshot, read with the driver's own cursor (``COPY`` on PostgreSQL), holds the
    values SQLAlchemy reads row by row: missing values, NaN, empty and quoted text."""
    import pyarrow as pa
    import sqlalchemy as sa

    from neurotrove.ephys.filters import units_from
    from neurotrove.ephys.unit_columns import SNAPSHOT_COLUMNS, UnitSnapshot, uuid_strings
    from neurotrove.ephys.unit_columns import _expressions as snapshot_expressions

    units = ephys_trove.table("units")
    units.update({"quality": "", "snr": None}, cluster_id=2)
    units.update({"quality": 'a "quoted", \\N text', "firing_rate": math.nan}, cluster_id=3)
    units.update({"waveform_duration": 1e-300, "snr": 0.1 + 0.2}, cluster_id=4)
    with ephys_trove.catalog.read() as conn:
        snapshot = UnitSnapshot.build(conn)
        query = sa.select(*snapshot_expressions(conn.dialect.name)).select_from(units_from(1))
        rows = conn.execute(query.order_by(es_pk())).all()
    columns = list(zip(*rows, strict=True))
    expected = pa.Table.from_pydict(
        {
            name: uuid_strings(values) if kind == "uuid" else list(values)
            for (name, kind), values in zip(SNAPSHOT_COLUMNS, columns, strict=True)
        },
        schema=snapshot.schema,
    ).to_pandas()
    built = snapshot.to_pandas()
    assert len(built) == len(UNITS)
    assert set(built["quality"]) >= {"", 'a "quoted", \\N text'}
    pd.testing.assert_frame_equal(built, expected, check_dtype=False)


def es_pk() -> Any:
    from neurotrove.catalog import ephys_schema

    return ephys_schema.units.c.pk
