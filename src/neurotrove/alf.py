"""ALF names and paths: parse and build them, and say precisely what is wrong with bad ones.

An ALF dataset lives at::

    [<lab>/Subjects/]<subject>/<YYYY-MM-DD>/<NNN>/[<collection>/][#<revision>#/]<file name>

and its file name reads ``[_<namespace>_]<object>.<attribute>[_<timescale>][.<extra>...].<ext>``.
The attribute keeps a ``_times`` or ``_intervals`` suffix; any other ``_x`` after it is the
timescale. Everything here is a pure function of strings: nothing touches the disk.

Where ONE-api's regular expression reads a name oddly, this module is stricter:

- a namespace needs both underscores (``_trials.x.npy`` is object ``_trials``; ONE reads
  namespace ``trial`` and object ``s``);
- a name must match in full (ONE accepts a trailing newline);
- collections may not contain ``.`` or ``..`` segments (ONE's pattern would let a
  collection climb out of the session folder);
- a session date must be a real calendar date.

Examples
--------
>>> from neurotrove import alf
>>> name = alf.parse_filename("_ibl_trials.stimOn_times_bpod.npy")
>>> name.namespace, name.object, name.attribute, name.timescale, name.extension
('ibl', 'trials', 'stimOn_times', 'bpod', 'npy')
>>> alf.build_filename("spikes", "times", "npy", timescale="ephysClock")
'spikes.times_ephysClock.npy'
>>> alf.parse_rel_path("alf/probe00/#2024-01-01#/spikes.times.npy").revision
'2024-01-01'
>>> alf.parse_session_path("mainenlab/Subjects/ZM_1743/2019-06-14/001").lab
'mainenlab'
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import uuid
from dataclasses import dataclass
from pathlib import PurePath, PurePosixPath
from typing import Any

from .errors import ValidationError
from .validation import check_names, check_str, wrong_type

__all__ = [
    "DatasetName",
    "RelPath",
    "SessionRef",
    "add_uuid",
    "build_filename",
    "build_rel_path",
    "find_session",
    "is_hidden",
    "is_valid_filename",
    "parse_filename",
    "parse_rel_path",
    "parse_session_path",
    "remove_uuid",
]

# The character classes of each ALF part. They are the published ALF specification.
_LAB = r"\w+"
_SUBJECT = r"[\w.-]+"
_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_NUMBER = r"[0-9]{1,3}"
_COLLECTION = r"[\w./-]+"
_REVISION = r"[\w.-]+"
_NAMESPACE = r"[a-zA-Z0-9]+"
_OBJECT = r"\w+"
# Letters and digits, optionally an (old-style) attribute namespace in front, and the two
# suffixes that belong to the attribute rather than being a timescale.
_ATTRIBUTE = r"(?:_[a-z]+_)?[a-zA-Z0-9]+(?:_times(?=[_.])|_intervals(?=[_.]))?"
_TIMESCALE = r"\w+"
_EXTRA = r"[.\w-]+"
_EXTENSION = r"\w+"

_FILENAME_RE = re.compile(
    rf"(?:_(?P<namespace>{_NAMESPACE})_)?(?P<object>{_OBJECT})"
    rf"\.(?P<attribute>{_ATTRIBUTE})(?:_(?P<timescale>{_TIMESCALE}))?"
    rf"(?:\.(?P<extra>{_EXTRA}))*\.(?P<extension>{_EXTENSION})"
)
_SESSION_BODY = rf"(?P<subject>{_SUBJECT})/(?P<date>{_DATE})/(?P<number>{_NUMBER})"
_SESSION_RE = re.compile(rf"(?:(?P<lab>{_LAB})/Subjects/|Subjects/)?{_SESSION_BODY}")
_SESSION_IN_PATH_RE = re.compile(rf"(?:^|/)(?:(?P<lab>{_LAB})/Subjects/)?{_SESSION_BODY}(?=/|$)")
_COLLECTION_RE = re.compile(_COLLECTION)
_REVISION_RE = re.compile(_REVISION)
# Each part on its own (the attribute without the look-ahead it needs inside a name).
_PART_RE = {
    "namespace": re.compile(_NAMESPACE),
    "object": re.compile(_OBJECT),
    "attribute": re.compile(r"(?:_[a-z]+_)?[a-zA-Z0-9]+(?:_times|_intervals)?"),
    "timescale": re.compile(_TIMESCALE),
    "extra": re.compile(_EXTRA),
    "extension": re.compile(_EXTENSION),
}
_REQUIRED_PARTS = ("object", "attribute", "extension")
_PART_RULES = {
    "namespace": "letters and digits only",
    "object": "letters, digits and '_' only",
    "attribute": "letters and digits, then optionally '_times' or '_intervals' and a '_timescale'",
    "timescale": "letters, digits and '_' only",
    "extension": "letters, digits and '_' only",
    "extra": "letters, digits, '_', '-' and '.' only",
    "extra part": "letters, digits, '_' and '-' only",
}
_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
_EXTRA_PART_RE = re.compile(r"[\w-]+")
_PATTERN_HELP = "[_namespace_]object.attribute[_timescale][.extra].extension"


@dataclass(frozen=True, slots=True)
class SessionRef:
    """The parts of a session's path: who, which day and which session of the day.

    Parameters
    ----------
    subject : str
        The subject's nickname.
    date : datetime.date
        The day of the session.
    number : int
        The session's number within the day, 1 to 999 (0 is allowed, as in ALF).
    lab : str or None
        The lab, when the data are laid out as ``<lab>/Subjects/...``.

    Examples
    --------
    >>> import datetime
    >>> ref = SessionRef("KS005", datetime.date(2019, 4, 1), 1, lab="cortexlab")
    >>> str(ref.path)
    'cortexlab/Subjects/KS005/2019-04-01/001'
    >>> ref.key
    'cortexlab/KS005/2019-04-01/001'
    """

    subject: str
    date: dt.date
    number: int
    lab: str | None = None

    def __post_init__(self) -> None:
        _check_name("subject", self.subject, _SUBJECT)
        if self.lab is not None:
            _check_name("lab", self.lab, _LAB)
        if isinstance(self.date, dt.datetime) or not isinstance(self.date, dt.date):
            raise ValidationError(
                f"session date {self.date!r} must be a datetime.date", field="date"
            )
        if isinstance(self.number, bool) or not isinstance(self.number, int):
            raise ValidationError(
                f"session number {self.number!r} must be an integer", field="number"
            )
        if not 0 <= self.number <= 999:
            raise ValidationError(
                f"session number {self.number} is out of range; ALF numbers are 0 to 999",
                field="number",
            )

    @property
    def path(self) -> PurePosixPath:
        """The session folder relative to the data root, number zero-padded to three digits."""
        parts = [self.subject, self.date.isoformat(), f"{self.number:03d}"]
        if self.lab:
            parts = [self.lab, "Subjects", *parts]
        return PurePosixPath(*parts)

    @property
    def key(self) -> str:
        """``lab/subject/YYYY-MM-DD/NNN`` (no lab: ``subject/YYYY-MM-DD/NNN``), used for ids."""
        tail = f"{self.subject}/{self.date.isoformat()}/{self.number:03d}"
        return f"{self.lab}/{tail}" if self.lab else tail


@dataclass(frozen=True, slots=True)
class DatasetName:
    """The parts of an ALF file name.

    ``str(name)`` builds the file name back; ``parse_filename(str(name)) == name`` always.

    Examples
    --------
    >>> name = DatasetName("trials", "intervals", "npy", namespace="ibl")
    >>> str(name)
    '_ibl_trials.intervals.npy'
    >>> DatasetName("spikes", "times", "npy", extra="raw.part1").extras
    ('raw', 'part1')
    """

    object: str
    attribute: str
    extension: str
    namespace: str | None = None
    timescale: str | None = None
    extra: str | None = None

    def __post_init__(self) -> None:
        for part in ("namespace", "object", "attribute", "timescale", "extra", "extension"):
            _check_part(part, getattr(self, part), required=part in _REQUIRED_PARTS)
        name = _join_filename(self)
        parsed = _FILENAME_RE.fullmatch(name)
        if parsed is None:
            raise ValidationError(_explain_filename(name, self), filename=name)
        for part in ("namespace", "object", "attribute", "timescale", "extra", "extension"):
            if parsed[part] != getattr(self, part):
                raise ValidationError(
                    f"the parts {self._parts_text()} would be read back from {name!r} with "
                    f"{part}={parsed[part]!r}; choose parts that do not run into each other "
                    f"(for example a timescale must not start with 'times' or 'intervals')",
                    filename=name,
                    part=part,
                )

    def __str__(self) -> str:
        return _join_filename(self)

    @property
    def extras(self) -> tuple[str, ...]:
        """The extra parts, split on dots (empty when there are none)."""
        return tuple(self.extra.split(".")) if self.extra else ()

    @property
    def stem(self) -> str:
        """``object.attribute`` with namespace and timescale, as ONE names a dataset type."""
        return f"{self.object}.{self.attribute}"

    def as_dict(self) -> dict[str, str | None]:
        """Return the parts as a dict, with the keys ONE uses for ``filename=`` filters."""
        return {
            "namespace": self.namespace,
            "object": self.object,
            "attribute": self.attribute,
            "timescale": self.timescale,
            "extra": self.extra,
            "extension": self.extension,
        }

    def _parts_text(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.as_dict().items() if v is not None)


@dataclass(frozen=True, slots=True)
class RelPath:
    """A dataset's path relative to its session folder: collection, revision and file name.

    An empty ``collection`` or ``revision`` means the dataset has none.

    Examples
    --------
    >>> rel = parse_rel_path("alf/#v2#/trials.table.pqt")
    >>> rel.collection, rel.revision, str(rel.name)
    ('alf', 'v2', 'trials.table.pqt')
    >>> str(rel)
    'alf/#v2#/trials.table.pqt'
    """

    collection: str
    revision: str
    name: DatasetName

    def __post_init__(self) -> None:
        if self.collection:
            _check_segments("collection", self.collection, _COLLECTION_RE)
        if self.revision:
            _check_segments("revision", self.revision, _REVISION_RE)

    def __str__(self) -> str:
        # The parts were checked when this was made, so join them without parsing again.
        text = str(self.name)
        if self.revision:
            text = f"#{self.revision}#/{text}"
        return f"{self.collection}/{text}" if self.collection else text


def _join_filename(name: DatasetName) -> str:
    text = f"_{name.namespace}_" if name.namespace is not None else ""
    text += f"{name.object}.{name.attribute}"
    if name.timescale is not None:
        text += f"_{name.timescale}"
    if name.extra is not None:
        text += f".{name.extra}"
    return f"{text}.{name.extension}"


def parse_filename(filename: str) -> DatasetName:
    """Split an ALF file name into its parts.

    Parameters
    ----------
    filename : str
        A file name such as ``_ibl_trials.intervals.npy`` (not a path).

    Returns
    -------
    DatasetName

    Raises
    ------
    ValidationError
        When the name is not ALF; the message says which part is wrong and why.

    Examples
    --------
    >>> parse_filename("spikes.times_ephysClock.npy").timescale
    'ephysClock'
    >>> parse_filename("spike_train.npy")
    Traceback (most recent call last):
    ...
    neurotrove.errors.ValidationError: 'spike_train.npy' is not an ALF file name: ...
    """
    return _parse_filename(check_str("filename", filename))


@functools.lru_cache(maxsize=16384)
def _parse_filename(filename: str) -> DatasetName:
    # Cached: a lab's file names repeat in every session, and parts are immutable.
    match = _FILENAME_RE.fullmatch(filename)
    if match is None:
        raise ValidationError(_explain_filename(filename), filename=filename)
    return DatasetName(**match.groupdict())


def is_valid_filename(filename: str) -> bool:
    """Return whether ``filename`` is a valid ALF file name.

    Examples
    --------
    >>> is_valid_filename("trials.feedbackType.npy"), is_valid_filename("notes.txt")
    (True, False)
    """
    return isinstance(filename, str) and _FILENAME_RE.fullmatch(filename) is not None


def build_filename(
    object: str,
    attribute: str,
    extension: str,
    *,
    namespace: str | None = None,
    timescale: str | None = None,
    extra: str | tuple[str, ...] | list[str] | None = None,
) -> str:
    """Build an ALF file name from its parts, checking that it reads back the same.

    Parameters
    ----------
    object, attribute, extension : str
        The required parts.
    namespace, timescale : str, optional
        Optional parts.
    extra : str or sequence of str, optional
        Extra parts, joined with dots.

    Returns
    -------
    str

    Raises
    ------
    ValidationError
        When a part has characters ALF does not allow, or when parts would run together
        so that the name reads back differently.

    Examples
    --------
    >>> build_filename("trials", "intervals", "npy", namespace="ibl", extra=["a", "b"])
    '_ibl_trials.intervals.a.b.npy'
    """
    if extra is not None and not isinstance(extra, str):
        extras = check_names("extra", extra, ordered=True)
        for item in extras:
            _check_part("extra part", item, required=True)
        extra = ".".join(extras)
    return str(DatasetName(object, attribute, extension, namespace, timescale, extra or None))


def _check_segments(kind: str, value: str, pattern: re.Pattern[str]) -> None:
    """Validate a collection or revision: allowed characters, no empty, '.' or '..' segments."""
    if not isinstance(value, str):
        raise ValidationError(f"{kind} must be a str, not {type(value).__name__}", **{kind: value})
    if not pattern.fullmatch(value):
        bad = sorted({c for c in value if not pattern.fullmatch(c)})
        raise ValidationError(
            f"{kind} {value!r} contains {', '.join(map(repr, bad)) or 'nothing'}; "
            f"use letters, digits, '_', '-', '.'" + (" and '/'" if kind == "collection" else ""),
            **{kind: value},
        )
    for segment in value.split("/"):
        if segment in ("", ".", ".."):
            raise ValidationError(
                f"{kind} {value!r} has an empty, '.' or '..' segment; a {kind} names folders "
                f"inside the session folder",
                **{kind: value},
            )


def build_rel_path(filename: str, collection: str = "", revision: str = "") -> str:
    """Join collection, revision and file name into a path relative to the session folder.

    Examples
    --------
    >>> build_rel_path("spikes.times.npy", "alf/probe00", "2024-01-01")
    'alf/probe00/#2024-01-01#/spikes.times.npy'
    >>> build_rel_path("trials.table.pqt")
    'trials.table.pqt'
    """
    check_str("collection", collection)
    check_str("revision", revision)
    parts = []
    if collection:
        _check_segments("collection", collection, _COLLECTION_RE)
        parts.append(collection)
    if revision:
        _check_segments("revision", revision, _REVISION_RE)
        parts.append(f"#{revision}#")
    parts.append(str(parse_filename(filename)))
    return "/".join(parts)


def parse_rel_path(rel_path: str | PurePath) -> RelPath:
    """Split a path relative to the session folder into collection, revision and file name.

    Parameters
    ----------
    rel_path : str or PurePath
        For example ``alf/probe00/#2024-01-01#/spikes.times.npy``.

    Returns
    -------
    RelPath

    Raises
    ------
    ValidationError
        When any part is not ALF; the message names the part.

    Examples
    --------
    >>> parse_rel_path("raw_video_data/_iblrig_leftCamera.raw.mp4").collection
    'raw_video_data'
    """
    text = rel_path.as_posix() if isinstance(rel_path, PurePath) else rel_path
    if not isinstance(text, str):
        raise wrong_type("rel_path", rel_path, "a str or a path")
    return _parse_rel_path(text)


@functools.lru_cache(maxsize=16384)
def _parse_rel_path(text: str) -> RelPath:
    if text.startswith("/"):
        raise ValidationError(
            f"dataset path {text!r} is absolute; give it relative to the session folder",
            rel_path=text,
        )
    folders, _, filename = text.rpartition("/")
    revision = ""
    segments = folders.split("/") if folders else []
    if segments and segments[-1].startswith("#"):
        last = segments.pop()
        if len(last) < 3 or not last.endswith("#"):
            raise ValidationError(
                f"revision folder {last!r} in {text!r} must be written '#<revision>#'",
                rel_path=text,
            )
        revision = last[1:-1]
        _check_segments("revision", revision, _REVISION_RE)
    collection = "/".join(segments)
    if any(s.startswith("#") for s in segments):
        raise ValidationError(
            f"in {text!r} the revision folder must come right before the file name",
            rel_path=text,
        )
    if collection:
        _check_segments("collection", collection, _COLLECTION_RE)
    try:
        name = parse_filename(filename)
    except ValidationError as error:
        raise ValidationError(error.message, rel_path=text, filename=filename) from None
    return RelPath(collection, revision, name)


def _path_text(path: Any, what: str) -> str:
    """Return ``path`` as a POSIX string, or say that it is neither a str nor a path."""
    if isinstance(path, PurePath):
        return path.as_posix()
    if isinstance(path, str):
        return path
    raise ValidationError(f"{what} must be a str or a path, not {type(path).__name__}", path=path)


def _explain_session(text: str) -> str:
    """Say which part of a would-be session folder path is wrong."""
    segments = text.strip("/").split("/")
    if len(segments) < 3:
        return "it has fewer than three folders"
    subject, date, number = segments[-3:]
    head = segments[:-3]
    if not re.fullmatch(_NUMBER, number):
        return f"session number {number!r} must be 1 to 3 digits (0 to 999)"
    if not re.fullmatch(_DATE, date):
        return f"date {date!r} must be written YYYY-MM-DD"
    if not re.fullmatch(_SUBJECT, subject):
        return f"subject {subject!r} must be letters, digits, '_', '-' and '.' only"
    if len(head) == 2 and head[1] == "Subjects":
        return f"lab {head[0]!r} must be letters, digits and '_' only"
    if head and head != ["Subjects"]:
        return f"{'/'.join(head)!r} before the subject must be '<lab>/Subjects' or 'Subjects'"
    return "it does not follow the layout"


def _session_from_match(match: re.Match[str], text: str) -> SessionRef:
    try:
        date = dt.date.fromisoformat(match["date"])
    except ValueError:
        raise ValidationError(
            f"{match['date']!r} in {text!r} is not a calendar date; session folders are "
            f"named YYYY-MM-DD",
            path=text,
        ) from None
    subject = match["subject"]
    if set(subject) == {"."}:
        raise ValidationError(f"{subject!r} is not a subject name", path=text)
    return SessionRef(subject, date, int(match["number"]), match["lab"])


def parse_session_path(path: str | PurePath) -> SessionRef:
    """Read a session folder path, relative to the data root, into its parts.

    Accepts ``<lab>/Subjects/<subject>/<date>/<number>``, ``Subjects/<subject>/<date>/<number>``
    and ``<subject>/<date>/<number>``; the number may or may not be zero-padded.

    Raises
    ------
    ValidationError
        When the path is not laid out as a session folder; the message shows the layout.

    Examples
    --------
    >>> parse_session_path("KS005/2019-04-01/1")
    SessionRef(subject='KS005', date=datetime.date(2019, 4, 1), number=1, lab=None)
    """
    text = _path_text(path, "a session path")
    match = _SESSION_RE.fullmatch(text.strip("/"))
    if match is None:
        raise ValidationError(
            f"{text!r} is not a session folder: {_explain_session(text)}; expected "
            f"[<lab>/Subjects/]<subject>/<YYYY-MM-DD>/<NNN>",
            path=text,
        )
    return _session_from_match(match, text)


def find_session(path: str | PurePath) -> tuple[SessionRef, str]:
    """Find the session a path belongs to, anywhere in the path.

    Parameters
    ----------
    path : str or PurePath
        An absolute or relative path to a session folder or to a file inside one.

    Returns
    -------
    SessionRef
        The session.
    str
        The rest of the path after the session folder (``''`` for the folder itself).

    Raises
    ------
    ValidationError
        When no session folder appears in the path.

    Examples
    --------
    >>> ref, rest = find_session("/data/lab/Subjects/KS005/2019-04-01/002/alf/trials.table.pqt")
    >>> ref.lab, ref.subject, ref.number, rest
    ('lab', 'KS005', 2, 'alf/trials.table.pqt')
    """
    text = _path_text(path, "a path").replace("\\", "/")
    matches = list(_SESSION_IN_PATH_RE.finditer(text))
    if not matches:
        raise ValidationError(
            f"{text!r} contains no session folder ([<lab>/Subjects/]<subject>/<YYYY-MM-DD>/<NNN>)",
            path=text,
        )
    match = matches[-1]
    return _session_from_match(match, text), text[match.end() :].strip("/")


def is_hidden(name: str) -> bool:
    """Return whether a file or folder name is hidden (starts with a dot, e.g. macOS ``._x``).

    Examples
    --------
    >>> is_hidden("._spikes.times.npy"), is_hidden("spikes.times.npy")
    (True, False)
    """
    return check_str("name", name).startswith(".")


def add_uuid(filename: str, dataset_id: str | uuid.UUID) -> str:
    """Put a dataset id into an ALF file name as its last extra part, as ONE does for downloads.

    Examples
    --------
    >>> add_uuid("spikes.times.npy", "9c1f0d6c-2c1c-4c2b-9a4e-3f1e8c9b2a10")
    'spikes.times.9c1f0d6c-2c1c-4c2b-9a4e-3f1e8c9b2a10.npy'
    """
    name = parse_filename(remove_uuid(filename))
    try:
        text = str(dataset_id if isinstance(dataset_id, uuid.UUID) else uuid.UUID(dataset_id))
    except (TypeError, ValueError, AttributeError):
        raise ValidationError(
            f"dataset_id {dataset_id!r} is not a UUID", filename=filename, dataset_id=dataset_id
        ) from None
    extra = f"{name.extra}.{text}" if name.extra else text
    return str(
        DatasetName(
            name.object, name.attribute, name.extension, name.namespace, name.timescale, extra
        )
    )


def remove_uuid(filename: str) -> str:
    """Remove a UUID from the extra parts of an ALF file name, if it has one.

    Examples
    --------
    >>> remove_uuid("spikes.times.9c1f0d6c-2c1c-4c2b-9a4e-3f1e8c9b2a10.npy")
    'spikes.times.npy'
    """
    name = parse_filename(filename)
    extras = [e for e in name.extras if not _UUID_RE.fullmatch(e)]
    return str(
        DatasetName(
            name.object,
            name.attribute,
            name.extension,
            name.namespace,
            name.timescale,
            ".".join(extras) or None,
        )
    )


def _check_name(kind: str, value: Any, pattern: str) -> None:
    if not isinstance(value, str) or not re.fullmatch(pattern, value) or set(value) == {"."}:
        raise ValidationError(
            f"{kind} {value!r} is not a valid ALF {kind}; use letters, digits and '_'"
            + (", '-' and '.'" if kind == "subject" else ""),
            field=kind,
            value=value,
        )


def _check_part(part: str, value: Any, *, required: bool) -> None:
    """Check one file-name part on its own: type, emptiness and characters."""
    if value is None and not required:
        return
    if not isinstance(value, str):
        raise ValidationError(
            f"ALF {part} must be a str, not {type(value).__name__}", part=part, value=value
        )
    if not value:
        raise ValidationError(
            f"ALF {part} is empty; leave it out (None) or give {_PART_RULES[part]}"
            if not required
            else f"ALF {part} is empty; it must be {_PART_RULES[part]}",
            part=part,
            value=value,
        )
    pattern = _PART_RE.get(part, _EXTRA_PART_RE)
    if not pattern.fullmatch(value):
        raise ValidationError(
            f"ALF {part} {value!r} must be {_PART_RULES[part]}", part=part, value=value
        )


def _explain_filename(name: str, parts: DatasetName | None = None) -> str:
    """Say why ``name`` is not an ALF file name, naming the part at fault."""
    prefix = f"{name!r} is not an ALF file name: "
    if not name:
        return prefix + "it is empty"
    if "/" in name or "\\" in name:
        return prefix + "it contains a path separator; give the file name only"
    if name.startswith("."):
        return prefix + "it is a hidden file (starts with '.')"
    pieces = name.split(".")
    if len(pieces) < 3:
        return (
            prefix + "it needs at least object.attribute.extension, e.g. 'spikes.times.npy' "
            f"({_PATTERN_HELP})"
        )
    if "" in pieces:
        return prefix + "it has an empty part between dots"
    if parts is not None:
        checks = [
            ("namespace", parts.namespace, _NAMESPACE),
            ("object", parts.object, _OBJECT),
            ("attribute", parts.attribute, _ATTRIBUTE),
            ("timescale", parts.timescale, _TIMESCALE),
            ("extension", parts.extension, _EXTENSION),
        ]
    else:
        head, attribute, extension = pieces[0], pieces[1], pieces[-1]
        namespace_match = re.fullmatch(rf"_({_NAMESPACE})_(.*)", head)
        checks = [
            ("object", namespace_match[2] if namespace_match else head, _OBJECT),
            ("attribute", attribute, rf"(?:_[a-z]+_)?[a-zA-Z0-9]+(?:_{_TIMESCALE})?"),
            ("extension", extension, _EXTENSION),
        ]
        extras = pieces[2:-1]
        checks += [("extra part", e, _EXTRA) for e in extras]
    for part, value, pattern in checks:
        if value is not None and not re.fullmatch(pattern, value):
            return prefix + f"{part} {value!r} must be {_PART_RULES[part]}"
    return prefix + f"it does not follow {_PATTERN_HELP}"
