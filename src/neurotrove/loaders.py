"""Readers of file contents: one loader per extension, and ALF objects assembled from files.

``load_file`` reads a file through a registry keyed by extension, which ``register_loader``
extends. ``assemble_object`` loads the files of one ALF object into an ``AlfObject`` with the
semantics of ONE-api's ``one.alf.io.load_object``. pandas, pyarrow, PyYAML and tifffile are
imported only when a file needs them.
"""

from __future__ import annotations

import json
import logging
import os
import re
import zipfile
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .alf import DatasetName
from .errors import ConfigError, NotFoundError, ValidationError
from .jsonable import is_dataframe

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "AlfObject",
    "Loader",
    "assemble_object",
    "load_file",
    "loader_for",
    "register_loader",
    "unregister_loader",
]

Loader = Callable[[Path], Any]
"""A reader of one file: takes its path, returns its content."""

_log = logging.getLogger(__name__)
_EXTENSION = re.compile(r"\w+")
_TABLE_KEY = re.compile(r"table(?:[_.]|$)")
# What the built-in readers raise on a damaged file; they turn library errors into these.
_BROKEN_FILE_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error)


def _read_npy(path: Path, mmap: bool = False) -> Any:
    with path.open("rb") as stream:  # opened here, so that no failure leaves it open
        if stream.read(6) != b"\x93NUMPY":
            raise ValueError("it does not start as a .npy file does")
        if not mmap:
            stream.seek(0)
            array = np.load(stream, allow_pickle=False)
    if mmap:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    # A MATLAB-style single column (n, 1) is read as a vector, as ONE does (a view).
    return array.reshape(-1) if array.ndim == 2 and array.shape[1] == 1 else array


def _read_npz(path: Path) -> Any:
    with path.open("rb") as stream:
        loaded = np.load(stream, allow_pickle=False)
        if isinstance(loaded, np.ndarray):  # a plain .npy under an .npz name
            return loaded
        with loaded as archive:
            arrays = {name: archive[name] for name in archive.files}
    return arrays["arr_0"] if set(arrays) == {"arr_0"} else arrays


def _read_parquet(path: Path) -> Any:
    import pyarrow
    import pyarrow.parquet

    try:  # one file: ParquetFile costs about half of read_table's dataset machinery
        with pyarrow.parquet.ParquetFile(path) as stream:
            return stream.read().to_pandas()
    except pyarrow.ArrowException as error:
        raise ValueError(str(error)) from error


def _text_table(separator: str) -> Loader:
    def read_text_table(path: Path) -> Any:
        import pandas

        return pandas.read_csv(path, sep=separator)  # its parser errors are ValueErrors

    return read_text_table


def _read_json(path: Path) -> Any:
    return json.loads(path.read_bytes())


def _read_jsonable(path: Path) -> list[Any]:
    records = []
    for number, line in enumerate(path.read_bytes().splitlines(), start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except ValueError as error:
                raise ValueError(f"line {number}: {error}") from error
    return records


def _read_yaml(path: Path) -> Any:
    import yaml

    try:
        return yaml.safe_load(path.read_bytes())
    except yaml.YAMLError as error:
        raise ValueError(str(error)) from error


def _read_tiff(path: Path) -> Any:
    try:
        import tifffile
    except ImportError:
        raise ConfigError(
            f"reading {path.name} (a TIFF image) needs tifffile; install it with "
            f"pip install 'neurotrove[nwb]' (or pip install tifffile)",
            path=str(path),
        ) from None
    # Opened here, so that no failure leaves it open; tifffile's errors are ValueErrors.
    with path.open("rb") as stream, tifffile.TiffFile(stream) as tiff:
        if not tiff.series:  # tifffile logs what is wrong and would give an empty array
            raise ValueError("it holds no image")
        return tiff.asarray()


def _keep_path(path: Path) -> Path:
    return path


_CSV, _TSV, _SSV = _text_table(","), _text_table("\t"), _text_table(" ")
_FORMATS: dict[Loader, str] = {
    _read_npy: "a NumPy .npy array",
    _read_npz: "a NumPy .npz archive",
    _read_parquet: "a Parquet table",
    _CSV: "a CSV table",
    _TSV: "a tab-separated table",
    _SSV: "a space-separated table",
    _read_json: "JSON",
    _read_jsonable: "JSON lines (one JSON document per line)",
    _read_yaml: "YAML",
    _read_tiff: "a TIFF image",
}
_VIDEO = ("mp4", "avi", "mov", "mkv", "mj2", "webm")
_LOADERS: dict[str, Loader] = {
    **{"npy": _read_npy, "npz": _read_npz, "pqt": _read_parquet, "parquet": _read_parquet},
    **{"csv": _CSV, "tsv": _TSV, "htsv": _TSV, "ssv": _SSV},
    **{"json": _read_json, "jsonable": _read_jsonable, "yaml": _read_yaml, "yml": _read_yaml},
    **{"tif": _read_tiff, "tiff": _read_tiff},
    **dict.fromkeys(("nwb", "bin", "cbin", *_VIDEO), _keep_path),
}


def _extension_key(extension: str) -> str:
    key = extension[1:] if isinstance(extension, str) and extension.startswith(".") else extension
    if not isinstance(key, str) or not _EXTENSION.fullmatch(key):
        raise ValidationError(
            f"{extension!r} is not a file extension; give one such as '.npy' or 'npy' "
            f"(letters, digits and '_')",
            extension=extension,
        )
    return key.lower()


def register_loader(extension: str, loader: Loader) -> None:
    """Read files with this extension with ``loader`` from now on, replacing any before it.

    Parameters
    ----------
    extension : str
        The extension, with or without the leading dot; case does not matter.
    loader : callable
        Takes the file's ``Path`` and returns its content. Its errors pass through as they are.

    Examples
    --------
    >>> register_loader(".trace", lambda path: path.read_text().split())
    >>> loader_for("TRACE") is not None
    True
    >>> unregister_loader(".trace")
    """
    key = _extension_key(extension)
    if not callable(loader):
        raise ValidationError(
            f"the loader for {extension!r} must be a callable taking a Path, not a "
            f"{type(loader).__name__}",
            extension=extension,
        )
    _LOADERS[key] = loader


def unregister_loader(extension: str) -> None:
    """Forget the loader of an extension, so that ``load_file`` returns such files' paths.

    Examples
    --------
    >>> register_loader(".trace", lambda path: path.read_text().split())
    >>> unregister_loader(".trace")
    >>> loader_for(".trace") is None
    True
    """
    _LOADERS.pop(_extension_key(extension), None)


def loader_for(extension: str) -> Loader | None:
    """Return the loader registered for an extension, or None (such files load as paths).

    Examples
    --------
    >>> loader_for(".npy") is loader_for("NPY") is not None, loader_for(".xyz")
    (True, None)
    """
    return _LOADERS.get(_extension_key(extension))


def load_file(path: str | os.PathLike[str], *, mmap: bool = False) -> Any:
    """Read one file by its extension.

    ``.npy`` gives an array (a ``(n, 1)`` column is flattened to ``(n,)``, as in ONE);
    ``.npz`` its only array ``arr_0``, or else a dict of arrays; ``.pqt``, ``.parquet``,
    ``.csv``, ``.tsv`` and ``.ssv`` a DataFrame; ``.json`` and ``.yaml`` what they hold;
    ``.jsonable`` a list of records; ``.tif`` and ``.tiff`` the image's array (its pages
    stacked; with tifffile, ``pip install 'neurotrove[nwb]'``); ``.nwb``, ``.bin``,
    ``.cbin``, video and unregistered extensions the ``Path`` itself. An empty file gives
    None, as in ONE.

    Parameters
    ----------
    path : str or path-like
        The file.
    mmap : bool
        Memory-map ``.npy`` files read-only instead of reading them into memory.

    Raises
    ------
    NotFoundError
        When the file does not exist.
    ValidationError
        When the file cannot be read as its extension says; the message names the file.

    Examples
    --------
    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = Path(tmp.name) / "spikes.times.npy"
    >>> np.save(path, np.array([[0.5], [1.5], [2.5]]))
    >>> load_file(path), type(load_file(path, mmap=True)).__name__
    (array([0.5, 1.5, 2.5]), 'memmap')
    >>> (Path(tmp.name) / "raw.ap.cbin").write_bytes(bytes(8))
    8
    >>> load_file(Path(tmp.name) / "raw.ap.cbin").name
    'raw.ap.cbin'
    >>> tmp.cleanup()
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            return None
    except FileNotFoundError:
        raise NotFoundError(
            f"{path} does not exist; download it again, or run register to update the "
            f"catalogue if it was moved or deleted",
            path=str(path),
        ) from None
    except OSError as error:
        raise ValidationError(f"cannot read {path}: {error}", path=str(path)) from error
    loader = _LOADERS.get(path.suffix[1:].lower(), _keep_path)
    what = _FORMATS.get(loader)
    if what is None:  # the user's own loader, or a path: nothing of ours to translate
        return loader(path)
    try:
        return _read_npy(path, mmap=True) if mmap and loader is _read_npy else loader(path)
    except _BROKEN_FILE_ERRORS as error:
        raise ValidationError(
            f"cannot read {path} as {what}: {error}. The file is damaged or in another "
            f"format: download it again, or rewrite it and register it again, or read it with "
            f"your own loader through neurotrove.loaders.register_loader({path.suffix!r}, ...)",
            path=str(path),
            format=what,
        ) from error


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.shape} {value.dtype}"
    if hasattr(value, "shape"):
        return f"{type(value).__name__} {tuple(value.shape)}"
    if isinstance(value, dict | list):
        return f"{type(value).__name__} of {len(value)}"
    return "None" if value is None else type(value).__name__


_Pairs = Mapping[str, Any] | Iterable[tuple[str, Any]]


class AlfObject(dict[str, Any]):
    """The attributes of one ALF object, by key (``attribute[_timescale][.extra]``).

    Values can be read with dot access too (``trials.intervals``), as in ONE.

    Parameters
    ----------
    data : mapping or iterable of pairs, optional
        The attributes.
    object_name : str, optional
        The ALF object's name (``trials``, ``spikes``), kept in ``.object_name``.

    Examples
    --------
    >>> trials = AlfObject({"intervals": np.array([[0.0, 1.5], [2.0, 3.0]]),
    ...                     "feedbackType": np.array([1, -1])}, object_name="trials")
    >>> trials
    <AlfObject 'trials': intervals (2, 2) float64, feedbackType (2,) int64>
    >>> trials.feedbackType
    array([ 1, -1])
    """

    def __init__(self, data: _Pairs = (), /, *, object_name: str | None = None) -> None:
        super().__init__(data)
        self.object_name = object_name

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("__") and name in self:
            return self[name]
        owner = vars(self).get("object_name")
        raise AttributeError(
            f"ALF object {owner!r} has no attribute {name!r}; it has: {', '.join(self) or '-'}"
        )

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *(key for key in self if key.isidentifier())]

    def __repr__(self) -> str:
        attributes = ", ".join(f"{key} {_describe(value)}" for key, value in self.items())
        name = f" {self.object_name!r}" if self.object_name else ""
        return f"<AlfObject{name}: {attributes or 'no attributes'}>"

    def copy(self) -> AlfObject:
        """Return a shallow copy that keeps the object name."""
        return AlfObject(self, object_name=self.object_name)

    def to_df(self) -> pd.DataFrame:
        """Return the array attributes as a DataFrame with one row per element.

        A 2-D attribute ``x`` becomes columns ``x_0, x_1, ...`` (a single column stays
        ``x``). Values that are not 1-D or 2-D arrays (metadata dicts, paths, tables) are
        left out; 3-D arrays are left out with a logged warning, as in ONE.

        Raises
        ------
        ValidationError
            When the arrays have different lengths; the message lists them.

        Examples
        --------
        >>> trials = AlfObject({"intervals": np.array([[0.0, 1.5], [2.0, 3.0]]),
        ...                     "feedbackType": np.array([1, -1])}, object_name="trials")
        >>> list(trials.to_df().columns)
        ['intervals_0', 'intervals_1', 'feedbackType']
        """
        import pandas

        columns: dict[str, Any] = {}
        lengths: dict[str, int] = {}
        for key, value in self.items():
            if not isinstance(value, np.ndarray) or value.ndim == 0:
                continue
            if value.ndim > 2:
                _log.warning("%s has %d dimensions; left out of the DataFrame", key, value.ndim)
                continue
            lengths[key] = value.shape[0]
            if value.ndim == 1 or value.shape[1] == 1:
                columns[key] = value.reshape(-1)
            else:
                columns.update({f"{key}_{i}": value[:, i] for i in range(value.shape[1])})
        if len(set(lengths.values())) > 1:
            listing = ", ".join(f"{key} ({n})" for key, n in lengths.items())
            raise ValidationError(
                f"attributes of ALF object {self.object_name!r} have different lengths: "
                f"{listing}; a DataFrame needs one row per element, so select attributes of "
                f"one length first",
                object=self.object_name,
                lengths=lengths,
            )
        return pandas.DataFrame(columns)


def _key(name: DatasetName) -> str:
    """Return ONE's key for a file: attribute, then ``_timescale``, then ``.extra``."""
    key = f"{name.attribute}_{name.timescale}" if name.timescale else name.attribute
    return f"{key}.{name.extra}" if name.extra else key


def _is_metadata(name: DatasetName) -> bool:
    return name.extension == "json" and any(part.startswith("metadata") for part in name.extras)


def _prefix(name: DatasetName) -> str:
    """Return ``[_namespace_]object.attribute[_timescale]``, which companions start with."""
    return ".".join(str(name).split(".")[:2])


def _shape(value: Any) -> tuple[int, ...] | None:
    """Return the shape of an array or DataFrame (what ONE checks), else None."""
    if isinstance(value, np.ndarray):
        return tuple(value.shape)
    if is_dataframe(value):
        return tuple(value.shape)
    return None


def _dimensions_agree(data: Mapping[str, Any]) -> bool:
    """Apply ALF's rule as ONE checks it: first dimensions are all n or 1.

    Keys starting with ``timestamps`` may also hold a ``(2, 2)`` array of (sample, time).
    """
    lengths = []
    for key, value in data.items():
        shape = _shape(value)
        if not shape:
            continue
        if not key.startswith("timestamps"):
            lengths.append(shape[0])
        elif isinstance(value, np.ndarray):
            if value.ndim == 1 or (value.ndim == 2 and value.shape[1] == 1):
                lengths.append(shape[0])
            elif shape != (2, 2):
                return False
    return not lengths or set(lengths) <= {max(lengths), 1}


def _table_columns(columns: Iterable[tuple[str, Any]], suffix: str) -> dict[str, Any]:
    """Return a table's columns (name, array) renamed and re-paired as ONE does.

    The table's own ``_timescale.extra`` suffix goes on each column name (before a trailing
    ``_0``/``_1``), then each ``x_0``/``x_1`` pair becomes one ``(n, 2)`` array ``x``.
    """
    arrays: dict[str, Any] = {}
    for name, values in columns:
        name = f"{name[:-2]}{suffix}{name[-2:]}" if name[-2:] in ("_0", "_1") else name + suffix
        arrays[name] = values
    merged: dict[str, Any] = {}
    for name, values in arrays.items():
        base, end = name[:-2], name[-2:]
        if end == "_0" and base and f"{base}_1" in arrays:
            merged[base] = np.column_stack((values, arrays[f"{base}_1"]))
        elif not (end == "_1" and base and f"{base}_0" in arrays):
            merged[name] = values
    return merged


def _frame_columns(table: pd.DataFrame) -> list[tuple[str, Any]]:
    return [(str(column), table.iloc[:, i].to_numpy()) for i, column in enumerate(table.columns)]


class _TableColumns:
    """A Parquet table's columns as NumPy arrays, read without building a DataFrame.

    Only for tables whose columns pandas would hand back as the same plain NumPy arrays
    (see :func:`_parquet_columns`); it never leaves :func:`assemble_object`.
    """

    def __init__(self, columns: list[tuple[str, Any]]) -> None:
        self.columns = columns
        self.shape = (len(columns[0][1]) if columns else 0, len(columns))


_PLAIN_NUMPY = {
    *(f"int{bits}" for bits in (8, 16, 32, 64)),
    *(f"uint{bits}" for bits in (8, 16, 32, 64)),
    "float32",
    "float64",
    "bool",
}


def _parquet_columns(path: Path) -> _TableColumns | None:
    """Read a Parquet table's columns straight from Arrow into NumPy (no copy when it can).

    Returns None, for the DataFrame path to read it instead, unless ``to_pandas()`` would
    give exactly these arrays: every column of a plain integer, float or bool type (nulls
    only in floats, as NaN), no stored index, string column names as stored. Any error
    also returns None, so that ``load_file`` reports it as it always does.
    """
    try:
        import pyarrow.parquet

        with pyarrow.parquet.ParquetFile(path) as stream:  # about half read_table's cost
            table = stream.read()
        names = table.column_names
        if table.num_columns == 0 or len(set(names)) != len(names):
            return None
        meta = table.schema.pandas_metadata
        if meta is not None:
            if any(not isinstance(index, dict) for index in meta.get("index_columns", [])):
                return None
            described = meta.get("columns", [])
            if [c.get("name") for c in described] != names or len(
                meta.get("column_indexes", [])
            ) > 1:
                return None
            if any(c.get("numpy_type") not in _PLAIN_NUMPY for c in described):
                return None
        columns: list[tuple[str, Any]] = []
        for name, column in zip(names, table.columns, strict=True):
            dtype = np.dtype(column.type.to_pandas_dtype())
            if dtype.name not in _PLAIN_NUMPY or (column.null_count and dtype.kind != "f"):
                return None
            if meta is not None and meta["columns"][len(columns)]["numpy_type"] != dtype.name:
                return None
            values = column.to_numpy()
            values.flags.writeable = False  # as pandas' copy-on-write views are
            columns.append((name, values))
    except Exception:  # load_file reads it again and reports the error
        return None
    return _TableColumns(columns)


class _Assembly:
    """An object being assembled, with where each key came from, for messages."""

    def __init__(self, object_name: str) -> None:
        self.result = AlfObject(object_name=object_name)
        self.sources: dict[str, str] = {}

    def put(self, key: str, value: Any, source: str) -> None:
        if key in self.result:
            raise ValidationError(
                f"attribute {key!r} of ALF object {self.result.object_name!r} comes from both "
                f"{self.sources[key]} and {source}; rename one of them or load them apart",
                object=self.result.object_name,
                attribute=key,
            )
        self.result[key] = value
        self.sources[key] = source

    def put_with_metadata(self, key: str, value: Any, path: Path, meta_path: Path) -> None:
        meta = load_file(meta_path)
        if not isinstance(meta, dict | None):
            raise ValidationError(
                f"{meta_path} holds a JSON {type(meta).__name__}, not an object such as "
                f'{{"columns": ["x", "y"]}}; rewrite it',
                path=str(meta_path),
            )
        meta = dict(meta or {})
        columns = meta.pop("columns", None)
        if columns is None:
            self.put(key, value, path.name)
        elif (
            isinstance(value, np.ndarray)
            and value.ndim >= 2
            and isinstance(columns, list)
            and len(columns) == value.shape[1]
            and all(isinstance(column, str) for column in columns)
        ):
            for index, column in enumerate(columns):
                self.put(column, value[:, index], f"column {index} of {path.name}")
        else:
            raise ValidationError(
                f"{meta_path.name} names the columns {columns!r}, but {path.name} holds "
                f"{_describe(value)}; 'columns' must name each column of a 2-D array: fix "
                f"the metadata file",
                path=str(meta_path),
            )
        if meta:  # the rest is kept under ONE's key, '<key>metadata'
            self.put(f"{key}metadata", meta, meta_path.name)

    def expand_tables(self) -> None:
        """Replace each ``table`` DataFrame by its columns, which win over files, as in ONE."""
        for table_key in [key for key in self.result if _TABLE_KEY.match(key)]:
            table = self.result[table_key]
            if isinstance(table, _TableColumns):
                columns = table.columns
            elif _shape(table) is None or isinstance(table, np.ndarray):
                continue
            else:
                columns = _frame_columns(table)
            del self.result[table_key]
            source = self.sources.pop(table_key)
            for key, values in _table_columns(columns, table_key[len("table") :]).items():
                if key in self.result:
                    _log.warning("%s: %s replaces %s", source, key, self.sources[key])
                self.result[key] = values
                self.sources[key] = f"column {key!r} of {source}"

    def align_timestamps(self) -> None:
        """Interpolate (sample, time) timestamps to one per sample when dimensions agree."""
        result = self.result
        if not _dimensions_agree(result):
            sizes = ", ".join(f"{k} {_shape(v)}" for k, v in result.items() if _shape(v))
            _log.warning(
                "ALF object %r has attributes of inconsistent lengths: %s; check that its "
                "files come from one collection and revision",
                result.object_name,
                sizes,
            )
            return
        lengths = [s[0] for k, v in result.items() if "timestamps" not in k and (s := _shape(v))]
        if not lengths:
            return
        samples = np.arange(max(lengths))
        for key, value in result.items():
            if "timestamps" in key and isinstance(value, np.ndarray) and value.ndim == 2:
                if value.shape[1] == 1:
                    result[key] = value.reshape(-1)
                elif value.shape[1] == 2:
                    result[key] = np.interp(samples, value[:, 0], value[:, 1])


def assemble_object(
    files: Sequence[tuple[DatasetName, Path]], *, obj: str | None = None, mmap: bool = False
) -> AlfObject:
    """Load the files of one ALF object into an ``AlfObject``, as ONE's ``load_object`` does.

    - Keys are the attribute, then ``_timescale`` and ``.extra`` when the name has them.
    - A ``<prefix>*.metadata*.json`` companion in the same folder as a data file, where
      ``<prefix>`` is the data file's ``[_namespace_]object.attribute[_timescale]``, is not
      data: its ``columns`` list splits the array into one attribute per column, and the
      rest of it is kept under ``<key>metadata``. Companions must be among ``files``.
    - Each ``table`` DataFrame is replaced by its columns, suffixed with the table's own
      timescale and extra parts; ``x_0``/``x_1`` pairs become one ``(n, 2)`` array ``x``.
      A column wins over a file of the same key (as in ONE), with a logged warning.
    - When first dimensions agree, a ``(2, 2)`` ``timestamps`` array of (sample, time) rows
      is interpolated to one time per sample. When they do not, a warning is logged.

    Parameters
    ----------
    files : sequence of (DatasetName, Path)
        The object's files with their parsed names.
    obj : str, optional
        The object's name; when given, every file must belong to it.
    mmap : bool
        Memory-map ``.npy`` files.

    Raises
    ------
    NotFoundError
        When ``files`` is empty or a file does not exist.
    ValidationError
        When the files belong to several objects, two give the same key, a metadata file
        does not fit its array, or a file cannot be read.

    Examples
    --------
    >>> import tempfile
    >>> import pandas as pd
    >>> from neurotrove import alf
    >>> tmp = tempfile.TemporaryDirectory()
    >>> table = Path(tmp.name) / "_ibl_trials.table.pqt"
    >>> pd.DataFrame({"intervals_0": [0.0, 2.0], "intervals_1": [1.5, 3.0],
    ...               "choice": [1, -1]}).to_parquet(table)
    >>> assemble_object([(alf.parse_filename(table.name), table)], obj="trials")
    <AlfObject 'trials': intervals (2, 2) float64, choice (2,) int64>
    >>> tmp.cleanup()
    """
    entries = [(name, Path(path)) for name, path in files]
    if not entries:
        raise NotFoundError(
            f"no files were given for ALF object {obj!r}; list the object's datasets first",
            object=obj,
        )
    objects = sorted({name.object for name, _ in entries})
    if len(objects) > 1 or (obj is not None and objects != [obj]):
        wanted = f"only object {obj!r}" if obj else "one object"
        raise ValidationError(
            f"the files belong to ALF objects {', '.join(objects)}, but {wanted} can be "
            f"assembled at a time; pass that object's files",
            objects=objects,
        )
    by_key: dict[str, list[str]] = {}
    for name, path in entries:
        by_key.setdefault(_key(name), []).append(str(path))
    clashes = {key: paths for key, paths in by_key.items() if len(paths) > 1}
    if clashes:
        listing = "; ".join(f"{key!r} from {', '.join(paths)}" for key, paths in clashes.items())
        raise ValidationError(
            f"several files give the same attribute of ALF object {objects[0]!r}: {listing}; "
            f"load one namespace, collection or revision at a time",
            object=objects[0],
            clashes=clashes,
        )
    metadata = [(str(name), path) for name, path in entries if _is_metadata(name)]
    assembly = _Assembly(objects[0])
    for name, path in entries:
        if _is_metadata(name):
            continue
        # ONE's pick among companions is the file system's order; ours prefers an exact match.
        prefix = _prefix(name)
        companions = sorted(
            (not meta.startswith(prefix + "."), meta, meta_path)
            for meta, meta_path in metadata
            if meta_path.parent == path.parent and meta.startswith(prefix)
        )
        value: Any = None
        if (
            not companions
            and _TABLE_KEY.match(_key(name))
            and _LOADERS.get(path.suffix[1:].lower()) is _read_parquet
        ):
            value = _parquet_columns(path)  # its columns are all the object keeps of it
        if value is None:
            value = load_file(path, mmap=mmap)
        if companions:
            assembly.put_with_metadata(_key(name), value, path, companions[0][2])
        else:
            assembly.put(_key(name), value, path.name)
    assembly.expand_tables()
    assembly.align_timestamps()
    return assembly.result
