"""Bad input to the public API ends in neurotrove's own errors, naming the argument.

Two properties, drawn by Hypothesis:

- **wrong types**: for each argument of each public function, a value of a type the
  argument does not take (None, numbers, bytes, tuples, lists, dicts, sets, dates, plain
  objects ...) raises :class:`~neurotrove.errors.ValidationError` (``ConfigError`` for
  settings) whose message names the argument;
- **anything**: the read-only functions, given any value at all (right types included),
  return or raise a :class:`~neurotrove.errors.NeurotroveError`, never a Python error such as
  ``TypeError`` or ``AttributeError``. Table conditions run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import PurePath
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import neurotrove as nt
from neurotrove import alf
from neurotrove.catalog.tables import table_spec
from neurotrove.demo import write_example_tree
from neurotrove.errors import ConfigError, NeurotroveError, ValidationError
from neurotrove.query.conditions import OPERATORS

from .conftest import isolate_settings, module_catalogue

EXAMPLES = 60
"""Examples per argument; ``NEUROTROVE_INPUT_EXAMPLES`` raises it for a longer hunt."""
EXAMPLES = int(os.environ.get("NEUROTROVE_INPUT_EXAMPLES", EXAMPLES))
FAST = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
)

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.binary(max_size=6),
    st.text(max_size=8),
    st.dates(),
    st.datetimes(),
    st.uuids(),
    st.builds(object),
)
ANYTHING = st.one_of(
    SCALARS,
    st.tuples(SCALARS),
    st.tuples(SCALARS, SCALARS),
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.text(max_size=4), SCALARS, max_size=3),
    st.sets(st.integers(), max_size=3),
    st.frozensets(st.text(max_size=4), max_size=3),
)
"""Any value a user might pass by mistake, of every common Python type."""


# -- what each argument takes ----------------------------------------------------------------


def is_str(v: Any) -> bool:
    return isinstance(v, str)


def is_path(v: Any) -> bool:
    return isinstance(v, str | PurePath)


def is_names(v: Any) -> bool:
    return isinstance(v, str) or (
        isinstance(v, list | tuple | set | frozenset) and all(isinstance(i, str) for i in v)
    )


def is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def is_mapping(v: Any) -> bool:
    return isinstance(v, Mapping)


def is_session(v: Any) -> bool:
    """An eid, a session path or a session dict (a list of them for ``to_eid``)."""
    return isinstance(v, str | uuid.UUID | PurePath | Mapping)


def is_id(v: Any) -> bool:
    return isinstance(v, str | uuid.UUID)


def optional(fits: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or fits(v)


def is_session_number(v: Any) -> bool:
    return v is None or isinstance(v, str | float) or (isinstance(v, int) and 0 <= v <= 999)


@dataclasses.dataclass(frozen=True)
class Case:
    """One argument of one public function: how to call it and which values it takes."""

    name: str
    argument: str
    fits: Callable[[Any], bool]
    call: Callable[[Any, Any], Any]  # (trove, value)
    error: type[NeurotroveError] = ValidationError

    def __str__(self) -> str:
        return f"{self.name}:{self.argument}"


SPIKES = "spikes.times.npy"
TRIALS = "_ibl_trials.table.pqt"
SOME_ID = "9c1f0d6c-2c1c-4c2b-9a4e-3f1e8c9b2a10"


def _filename(part: str, value: Any) -> str:
    parts = {"object": "spikes", "attribute": "times", "extension": "npy", part: value}
    return alf.build_filename(**parts)


ALF_CASES = [
    Case("alf.is_hidden", "name", is_str, lambda t, v: alf.is_hidden(v)),
    Case("alf.parse_filename", "filename", is_str, lambda t, v: alf.parse_filename(v)),
    Case("alf.parse_rel_path", "rel_path", is_path, lambda t, v: alf.parse_rel_path(v)),
    Case("alf.parse_session_path", "path", is_path, lambda t, v: alf.parse_session_path(v)),
    Case("alf.find_session", "path", is_path, lambda t, v: alf.find_session(v)),
    Case("alf.remove_uuid", "filename", is_str, lambda t, v: alf.remove_uuid(v)),
    Case("alf.add_uuid", "filename", is_str, lambda t, v: alf.add_uuid(v, SOME_ID)),
    Case("alf.add_uuid", "dataset_id", is_id, lambda t, v: alf.add_uuid(SPIKES, v)),
    *[
        Case("alf.build_filename", part, is_str, lambda t, v, p=part: _filename(p, v))
        for part in ("object", "attribute", "extension")
    ],
    *[
        Case("alf.build_filename", part, optional(is_str), lambda t, v, p=part: _filename(p, v))
        for part in ("namespace", "timescale")
    ],
    Case(
        "alf.build_filename",
        "extra",
        lambda v: (
            v is None
            or isinstance(v, str)
            or (isinstance(v, list | tuple) and all(isinstance(i, str) for i in v))
        ),
        lambda t, v: _filename("extra", v),
    ),
    Case("alf.build_rel_path", "filename", is_str, lambda t, v: alf.build_rel_path(v)),
    Case("alf.build_rel_path", "collection", is_str, lambda t, v: alf.build_rel_path(SPIKES, v)),
    Case("alf.build_rel_path", "revision", is_str, lambda t, v: alf.build_rel_path(SPIKES, "", v)),
    Case(
        "alf.SessionRef",
        "subject",
        is_str,
        lambda t, v: alf.SessionRef(v, dt.date(2020, 1, 1), 1),
    ),
    Case(
        "alf.SessionRef",
        "date",
        lambda v: isinstance(v, dt.date) and not isinstance(v, dt.datetime),
        lambda t, v: alf.SessionRef("KS005", v, 1),
    ),
    Case(
        "alf.SessionRef",
        "number",
        lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 999,
        lambda t, v: alf.SessionRef("KS005", dt.date(2020, 1, 1), v),
    ),
    Case(
        "alf.SessionRef",
        "lab",
        optional(is_str),
        lambda t, v: alf.SessionRef("KS005", dt.date(2020, 1, 1), 1, v),
    ),
]

TOP_CASES = [
    Case("connect", "target", optional(is_path), lambda t, v: nt.connect(v)),
    Case("Trove", "root", is_path, lambda t, v: nt.Trove(v)),
    Case("Trove", "db", optional(is_str), lambda t, v: nt.Trove(t.root, db=v)),
    Case(
        "Trove",
        "table_defaults",
        optional(is_mapping),
        lambda t, v: nt.Trove(t.root, table_defaults=v),
    ),
    Case(
        "Settings.load",
        "profile",
        optional(is_str),
        lambda t, v: nt.Settings.load(profile=v),
        ConfigError,
    ),
    Case("register_loader", "extension", is_str, lambda t, v: nt.register_loader(v, str)),
    Case("register_loader", "loader", callable, lambda t, v: nt.register_loader("trace", v)),
]


def _eid(trove: nt.Trove) -> str:
    return str(trove.search(subject="KS005").index[0])


READ_CASES = [
    *[
        Case("search", name, is_names, lambda t, v, n=name: t.search(**{n: v}))
        for name in ("subject", "lab", "task_protocol", "projects", "dataset", "datasets")
    ],
    Case("search_page", "limit", optional(is_count), lambda t, v: t.search_page(limit=v)),
    Case("search_page", "offset", is_count, lambda t, v: t.search_page(offset=v)),
    Case("get_details", "eid", is_session, lambda t, v: t.get_details(v)),
    Case("list_datasets", "eid", optional(is_session), lambda t, v: t.list_datasets(v)),
    Case(
        "list_datasets",
        "filename",
        lambda v: v is None or is_names(v) or is_mapping(v),
        lambda t, v: t.list_datasets(_eid(t), filename=v),
    ),
    *[
        Case(
            "list_datasets",
            name,
            optional(is_names),
            lambda t, v, n=name: t.list_datasets(_eid(t), **{n: v}),
        )
        for name in ("collection", "revision")
    ],
    Case("list_collections", "eid", optional(is_session), lambda t, v: t.list_collections(v)),
    Case("list_revisions", "eid", optional(is_session), lambda t, v: t.list_revisions(v)),
    Case("get_dataset", "dataset_id", is_id, lambda t, v: t.get_dataset(v)),
    Case("locate_dataset", "dataset_id", is_id, lambda t, v: t.locate_dataset(v)),
    Case(
        "to_eid",
        "x",
        lambda v: is_session(v) or isinstance(v, list),
        lambda t, v: t.to_eid(v),
    ),
    Case("eid2path", "eid", is_session, lambda t, v: t.eid2path(v)),
    Case("path2eid", "path", is_path, lambda t, v: t.path2eid(v)),
    Case("load_dataset", "eid", is_session, lambda t, v: t.load_dataset(v, TRIALS)),
    Case(
        "load_dataset",
        "dataset",
        lambda v: is_str(v) or is_mapping(v),
        lambda t, v: t.load_dataset(_eid(t), v),
    ),
    Case(  # wildcards, or a list of them
        "load_dataset",
        "collection",
        optional(is_names),
        lambda t, v: t.load_dataset(_eid(t), TRIALS, collection=v),
    ),
    Case(
        "load_dataset",
        "revision",
        optional(is_str),
        lambda t, v: t.load_dataset(_eid(t), TRIALS, revision=v),
    ),
    Case(
        "load_datasets",
        "datasets",
        lambda v: isinstance(v, list | tuple) and all(is_str(i) or is_mapping(i) for i in v),
        lambda t, v: t.load_datasets(_eid(t), v),
    ),
    *[
        Case(
            "load_datasets",
            name,
            lambda v: (
                v is None
                or is_str(v)
                or (isinstance(v, list | tuple) and all(i is None or is_str(i) for i in v))
            ),
            lambda t, v, n=name: t.load_datasets(_eid(t), [TRIALS], **{n: v}),
        )
        for name in ("collections", "revisions")
    ],
    Case("load_object", "eid", is_session, lambda t, v: t.load_object(v, "trials")),
    Case("load_object", "obj", is_str, lambda t, v: t.load_object(_eid(t), v)),
    Case(
        "load_object",
        "collection",
        optional(is_names),
        lambda t, v: t.load_object(_eid(t), "trials", collection=v),
    ),
    Case(
        "load_object",
        "revision",
        optional(is_str),
        lambda t, v: t.load_object(_eid(t), "trials", revision=v),
    ),
    Case(
        "load_object",
        "attribute",
        optional(is_names),
        lambda t, v: t.load_object(_eid(t), "trials", attribute=v),
    ),
    Case("load_collection", "collection", is_names, lambda t, v: t.load_collection(_eid(t), v)),
    Case(
        "load_collection",
        "object",
        optional(is_names),
        lambda t, v: t.load_collection(_eid(t), "alf", object=v),
    ),
    Case(
        "load_collection",
        "revision",
        optional(is_str),
        lambda t, v: t.load_collection(_eid(t), "alf", revision=v),
    ),
    Case("load_dataset_from_id", "dataset_id", is_id, lambda t, v: t.load_dataset_from_id(v)),
    Case("table", "name", is_str, lambda t, v: t.table(v)),
]

WRITE_CASES = [
    Case(
        "table.insert",
        "records",
        lambda v: (
            is_mapping(v)
            or (isinstance(v, list | tuple | set | frozenset) and all(map(is_mapping, v)))
        ),
        lambda t, v: t.table("labs").insert(v),
    ),
    Case(
        "table.insert",
        "on_conflict",
        is_str,
        lambda t, v: t.table("labs").insert({"name": "cortexlab"}, on_conflict=v),
    ),
    Case("table.update", "values", is_mapping, lambda t, v: t.table("labs").update(v, name="x")),
    Case("set_qc", "target", is_session, lambda t, v: t.set_qc(v, "PASS")),
    Case(
        "set_qc",
        "extended_qc",
        optional(is_mapping),
        lambda t, v: t.set_qc(_eid(t), "PASS", extended_qc=v),
    ),
    Case("update_session", "eid", is_session, lambda t, v: t.update_session(v, narrative="x")),
    Case("register_subject", "nickname", is_str, lambda t, v: t.register_subject(v)),
    *[
        Case(
            "register_subject",
            name,
            optional(is_str),
            lambda t, v, n=name: t.register_subject("M1", **{n: v}),
        )
        for name in ("lab", "sex", "species", "strain", "genotype")
    ],
    Case(
        "register_subject",
        "json",
        optional(is_mapping),
        lambda t, v: t.register_subject("M1", json=v),
    ),
    Case("register_session", "subject", is_str, lambda t, v: t.register_session(v, "2020-01-01")),
    Case(
        "register_session",
        "number",
        is_session_number,
        lambda t, v: t.register_session("KS005", "2020-01-01", v),
    ),
    *[
        Case(
            "register_session",
            name,
            optional(is_str),
            lambda t, v, n=name: t.register_session("KS005", "2020-01-01", **{n: v}),
        )
        for name in ("lab", "task_protocol", "location", "narrative")
    ],
    *[
        Case(
            "register_session",
            name,
            is_names,
            lambda t, v, n=name: t.register_session("KS005", "2020-01-01", **{n: v}),
        )
        for name in ("projects", "users")
    ],
    Case(
        "register_session",
        "json",
        optional(is_mapping),
        lambda t, v: t.register_session("KS005", "2020-01-01", json=v),
    ),
    Case("register", "path", optional(is_path), lambda t, v: t.register(v, progress=False)),
    Case("register_files", "eid", is_session, lambda t, v: t.register_files(v, [SPIKES])),
    Case(
        "register_files",
        "paths",
        lambda v: (
            is_path(v)
            or (isinstance(v, list | tuple | set | frozenset) and v and all(map(is_path, v)))
        ),
        lambda t, v: t.register_files(_eid(t), v),
    ),
    *[
        Case(
            "register_files",
            name,
            optional(is_str),
            lambda t, v, n=name: t.register_files(_eid(t), [SPIKES], **{n: v}),
        )
        for name in ("collection", "revision")
    ],
    Case("export_one", "directory", optional(is_path), lambda t, v: t.export_one(v)),
    Case("import_one", "path", is_path, lambda t, v: t.import_one(v)),
    Case("backup", "dest", is_path, lambda t, v: t.backup(v)),
    Case("restore", "source", is_path, lambda t, v: t.restore(v)),
]

CASES = ALF_CASES + TOP_CASES + READ_CASES + WRITE_CASES


@pytest.fixture(scope="module")
def example_trove(tmp_path_factory: pytest.TempPathFactory) -> Iterator[nt.Trove]:
    """The demo tree, registered on SQLite, shared by the module (bad input writes nothing)."""
    with pytest.MonkeyPatch.context() as env:
        isolate_settings(env, tmp_path_factory.mktemp("home"))
        example = write_example_tree(tmp_path_factory.mktemp("data"))
        with nt.Trove(example.root, create=True) as trove:
            trove.register(progress=False)
            yield trove


def _names_argument(message: str, argument: str) -> bool:
    return re.search(rf"(?<![\w]){re.escape(argument)}(?![\w])", message) is not None


@pytest.mark.parametrize("case", CASES, ids=str)
@FAST
@given(data=st.data())
def test_a_wrong_type_raises_validation_error_naming_the_argument(
    example_trove: nt.Trove, case: Case, data: st.DataObject
) -> None:
    value = data.draw(ANYTHING.filter(lambda v: not case.fits(v)), label=case.argument)
    with pytest.raises(case.error) as raised:
        case.call(example_trove, value)
    assert _names_argument(str(raised.value), case.argument), str(raised.value)


def test_the_cases_cover_the_public_api() -> None:
    """Every public alf function, and every Trove method issue 16 names, has a case."""
    covered = {case.name for case in CASES}
    for name in alf.__all__:
        if name in ("DatasetName", "RelPath", "is_valid_filename"):  # see below / via parts
            continue
        assert f"alf.{name}" in covered, name
    for name in (
        "search", "list_datasets", "load_dataset", "load_object", "eid2path", "path2eid",
        "set_qc", "update_session", "register_subject", "register_session",
    ):  # fmt: skip
        assert name in covered, name


# The reports of issue 16 that started this module, as they were made.
REPORTED: list[tuple[str, Callable[[], Any]]] = [
    ("name", lambda: alf.is_hidden(("a", "b"))),
    ("name", lambda: alf.is_hidden({"a": 1})),
    ("extra", lambda: alf.build_filename("spikes", "times", "npy", extra=dt.datetime(2020, 1, 1))),
]


@pytest.mark.parametrize(("argument", "call"), REPORTED, ids=[r[0] for r in REPORTED])
def test_the_reported_calls_raise_validation_error(argument: str, call: Callable[[], Any]) -> None:
    with pytest.raises(ValidationError) as raised:
        call()
    assert _names_argument(str(raised.value), argument), str(raised.value)


@pytest.mark.parametrize("op", ["like", "regex", "contains"])
def test_a_text_operator_with_none_says_so(sessions: nt.Table, op: str) -> None:
    """SQLAlchemy's 'String value expected' and re's 'first argument must be string'."""
    with pytest.raises(ValidationError, match=rf"subject must be a str for '{op}'; got None"):
        sessions.get(subject=(None, op))


@pytest.mark.parametrize("condition", [40000, (40000, "<"), ([1, 40000], "in")])
def test_a_number_past_the_columns_range_is_refused_on_every_database(
    sessions: nt.Table, condition: Any
) -> None:
    """PostgreSQL failed the query ('smallint out of range'), SQLite answered nothing."""
    with pytest.raises(ValidationError, match="number=40000 is out of range"):
        sessions.get(number=condition)


# -- anything at all: a result or a neurotrove error --------------------------------------------


@FAST
@given(value=ANYTHING)
def test_is_valid_filename_answers_every_value(value: Any) -> None:
    """A predicate: False for anything that is not a str, never an error."""
    answer = alf.is_valid_filename(value)
    assert answer is False or (answer is True and isinstance(value, str))


PURE = [
    alf.is_hidden,
    alf.parse_filename,
    alf.parse_rel_path,
    alf.parse_session_path,
    alf.find_session,
    alf.remove_uuid,
    nt.QC.parse,
]


@pytest.mark.parametrize("function", PURE, ids=lambda f: f.__qualname__)
@FAST
@given(value=st.one_of(ANYTHING, st.text()))
@example(value=float("inf"))  # QC.parse raised OverflowError
def test_parsers_answer_or_raise_neurotrove_errors(
    function: Callable[[Any], Any], value: Any
) -> None:
    with contextlib.suppress(NeurotroveError):
        function(value)


READS: list[tuple[str, Callable[[nt.Trove, Any], Any]]] = [
    ("search.subject", lambda t, v: t.search(subject=v)),
    ("search.number", lambda t, v: t.search(number=v)),
    ("search.date_range", lambda t, v: t.search(date_range=v)),
    ("search.dataset_qc_lte", lambda t, v: t.search(dataset_qc_lte=v)),
    ("to_eid", lambda t, v: t.to_eid(v)),
    ("list_datasets.qc", lambda t, v: t.list_datasets(qc=v)),
    ("load_object.collection", lambda t, v: t.load_object(_eid(t), "trials", collection=v)),
]


@pytest.mark.parametrize("read", READS, ids=lambda r: r[0])
@FAST
@given(value=ANYTHING)
def test_reads_answer_or_raise_neurotrove_errors(
    example_trove: nt.Trove, read: tuple[str, Callable[[nt.Trove, Any], Any]], value: Any
) -> None:
    with contextlib.suppress(NeurotroveError):
        read[1](example_trove, value)


# -- table conditions, on SQLite and PostgreSQL -------------------------------------------------

SESSION_FIELDS = ["subject", "number", "date", "qc", "projects", "json.rig", "eid", "start_time"]


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]
)
def sessions(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[nt.Table]:
    with (
        pytest.MonkeyPatch.context() as env,
        module_catalogue(request, "nt_input") as db,
    ):
        isolate_settings(env, tmp_path_factory.mktemp("home"))
        with nt.Trove(tmp_path_factory.mktemp("input"), db=db, create=True) as trove:
            trove.register_session("KS005", "2020-01-01", projects=["ibl"], json={"rig": "a"})
            yield trove.table("sessions")


@FAST
@given(
    field=st.sampled_from(SESSION_FIELDS),
    op=st.sampled_from(OPERATORS),
    value=ANYTHING,
)
def test_a_condition_answers_or_raises_validation_error_naming_the_field(
    sessions: nt.Table, field: str, op: str, value: Any
) -> None:
    try:
        sessions.get(**{field: (value, op)})
    except ValidationError as error:
        message = str(error)
    else:
        return
    assert _names_argument(message, field), message


@pytest.mark.parametrize("op", ["like", "contains", "regex"])
@pytest.mark.parametrize("field", ["subject", "projects", "json.rig"])
@FAST
@given(value=ANYTHING.filter(lambda v: not isinstance(v, str)))
def test_text_operators_refuse_values_other_than_str(
    sessions: nt.Table, field: str, op: str, value: Any
) -> None:
    with pytest.raises(ValidationError) as raised:
        sessions.count(**{field: (value, op)})
    assert _names_argument(str(raised.value), field), str(raised.value)


def test_the_table_under_test_has_the_fields_drawn() -> None:
    """A misspelt field would only ever meet 'no such field', and test nothing else."""
    spec = table_spec("sessions")
    assert all(spec.has(f.partition(".")[0]) for f in SESSION_FIELDS)


def test_a_wrong_type_is_reported_before_anything_is_written(example_trove: nt.Trove) -> None:
    """The checks come first: a refused call leaves the catalogue as it was."""
    before = example_trove.table("subjects").count()
    with pytest.raises(ValidationError, match="json"):
        example_trove.register_subject("M7", json=["not", "a", "dict"])
    with pytest.raises(ValidationError, match="projects"):
        example_trove.register_session("M7", "2020-01-01", projects=None)
    assert example_trove.table("subjects").count() == before
