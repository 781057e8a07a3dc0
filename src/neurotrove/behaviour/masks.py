r"""Mask functions: a lab's own code that splits a session into trials.

A mask function is named ``module.function`` (``masks.led_trials``) and lives in the lab's
analysis folder (``NEUROTROVE_ANALYSIS_DIR``, ``analysis_dir`` in ``config.toml``, or
``trove.behaviour.analysis_dir``), or in any importable module. It is called as::

    func(features, session=record)

where ``features`` maps each feature name of the rig to its ``(data, timestamps)``
(:class:`~neurotrove.behaviour.trials.Events`) and ``record`` is the session's details
(:meth:`~neurotrove.Trove.get_details`, plus ``rig`` and ``animals``). It returns ``(data,
timestamps)`` with ``+1`` where a trial starts and ``-1`` where it ends (a dict with
``data`` and ``timestamps`` works too).

A module in the analysis folder is read afresh every time masks are computed, so an edited
``masks.py`` takes effect at the next :meth:`~neurotrove.behaviour.Behaviour.recompute_masks`
without restarting Python; so are the modules of that folder it imports (``import helpers``
finds ``helpers.py`` beside it). The folder is never put on ``sys.path``: an import hook
answers for it, only in the thread loading the masks and only while it loads them, so a
server's other threads never import from it, and no ``.pyc`` is written into it.

Examples
--------
>>> import pathlib, tempfile
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "masks.py").write_text(
...     "def whole(features, session):\n"
...     "    data, timestamps = features['LED_1']\n"
...     "    return [1, -1], [timestamps[0], timestamps[-1]]\n")
>>> func = load_function("masks.whole", folder)
>>> mask = compute_mask("trials", "masks.whole", func, {"LED_1": ([1, -1], [0.5, 2.5])}, {})
>>> mask.data.tolist(), mask.timestamps.tolist()
([1, -1], [0.5, 2.5])
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import re
import sys
import threading
import types
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from ..errors import NeurotroveError, ValidationError
from .trials import Events, check_mask

__all__ = ["check_function_name", "compute_mask", "load_function", "load_module"]

_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_FUNCTION_NAME = re.compile(rf"{_IDENTIFIER}(?:\.{_IDENTIFIER})+")
_WHERE_HINT = (
    "put the module in the analysis folder (NEUROTROVE_ANALYSIS_DIR, analysis_dir in "
    "config.toml, or trove.behaviour.analysis_dir) or install it"
)


def check_function_name(name: Any) -> str | None:
    """Return what is wrong with a mask function's name, or ``None`` if it is well formed.

    Examples
    --------
    >>> check_function_name("masks.led_trials") is None
    True
    >>> check_function_name("led_trials")
    "'led_trials' must be module.function, e.g. masks.led_trials"
    """
    if not isinstance(name, str) or _FUNCTION_NAME.fullmatch(name) is None:
        return f"{name!r} must be module.function, e.g. masks.led_trials"
    return None


class _FreshSourceLoader(importlib.machinery.SourceFileLoader):
    """Runs a module from its current source: no cached ``.pyc`` is read or written."""

    def get_code(self, fullname: str) -> types.CodeType:
        path = self.get_filename(fullname)
        return self.source_to_code(self.get_data(path), path)


class _AnalysisFolderFinder(importlib.abc.MetaPathFinder):
    """Finds modules in the analysis folder of the mask load running in this thread."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        folder = _loading_from.get()
        if folder is None:
            return None
        if path is None:  # a top-level module: look in the folder itself
            folders = [folder]
        else:  # a submodule: look in its package, if the package is in the folder
            folders = [Path(p) for p in path if Path(p).is_relative_to(folder)]
        leaf = fullname.rpartition(".")[2]
        for where in folders:
            source = _source_in(where, leaf)
            if source is not None:
                return _spec(fullname, source)
        return None


_loading_from: ContextVar[Path | None] = ContextVar("mask_analysis_folder", default=None)
"""The analysis folder of the mask load running in this thread, if one is."""

_finder = _AnalysisFolderFinder()
_load_lock = threading.Lock()
"""Loads take turns: a module being loaded is in the process-wide ``sys.modules``."""


def _source_in(folder: Path, leaf: str) -> Path | None:
    for candidate in (folder / f"{leaf}.py", folder / leaf / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _spec(module_name: str, source: Path) -> importlib.machinery.ModuleSpec:
    package = source.name == "__init__.py"
    spec = importlib.util.spec_from_file_location(
        module_name,
        source,
        loader=_FreshSourceLoader(module_name, str(source)),
        submodule_search_locations=[str(source.parent)] if package else None,
    )
    if spec is None:  # pragma: no cover - a .py file always has a spec
        raise ValidationError(f"cannot load {source} as a module", module=module_name)
    return spec


def load_function(
    name: str,
    analysis_dir: Path | None,
    *,
    kind: str = "mask function",
    define: str = "def {attribute}(features, session): ...",
    sources: list[Path] | None = None,
) -> Callable[..., Any]:
    """Import mask function ``module.function``, reading the module afresh from the folder.

    Parameters
    ----------
    name : str
        ``module.function`` (the module may be dotted: ``lab.masks.led_trials``).
    analysis_dir : Path or None
        The analysis folder; a module there is executed from its current source. Modules
        elsewhere are imported as usual.
    kind : str
        What the function is, for messages (``"analysis"`` loads analysis functions).
    define : str
        How to define a missing function, for the message (``{attribute}`` is its name).
    sources : list of Path, optional
        Receives the source files of the analysis folder that the load executed (the
        module and the folder's modules it imports), so that a caller can hash the code.

    Raises
    ------
    ValidationError
        When the name is malformed, the module cannot be found or fails to run, or the
        function is missing or not callable; the message says what to do.
    """
    problem = check_function_name(name)
    if problem is not None:
        raise ValidationError(problem, function=name)
    module_name, _, attribute = name.rpartition(".")
    module = _load_module(module_name, name, analysis_dir, kind, sources)
    func = getattr(module, attribute, None)
    if func is None:
        where = getattr(module, "__file__", None) or module_name
        raise ValidationError(
            f"{kind} {name}: {where} has no {attribute!r}; define "
            f"{define.format(attribute=attribute)} there",
            function=name,
        )
    if not callable(func):
        raise ValidationError(
            f"{kind} {name}: {attribute!r} in {module_name} is a "
            f"{type(func).__name__}, not a function",
            function=name,
        )
    return func  # type: ignore[no-any-return]


def load_module(
    module_name: str,
    analysis_dir: Path | None,
    *,
    kind: str = "mask function",
    sources: list[Path] | None = None,
) -> types.ModuleType:
    """Import module ``module_name`` afresh from the analysis folder (see :func:`load_function`).

    Raises
    ------
    ValidationError
        When the module cannot be found or fails to run.
    """
    return _load_module(module_name, module_name, analysis_dir, kind, sources)


def _source_of(module_name: str, analysis_dir: Path | None) -> Path | None:
    if analysis_dir is None:
        return None
    *packages, leaf = module_name.split(".")
    return _source_in(analysis_dir.joinpath(*packages), leaf)


def _load_module(
    module_name: str,
    name: str,
    analysis_dir: Path | None,
    kind: str = "mask function",
    sources: list[Path] | None = None,
) -> types.ModuleType:
    folder = analysis_dir.resolve() if analysis_dir is not None else None
    with _load_lock:
        if _finder not in sys.meta_path:
            sys.meta_path.insert(0, _finder)  # before the installed modules, as a path entry
        token = _loading_from.set(folder)
        before = set(sys.modules)
        try:
            module = _import(module_name, name, folder, kind)
            if sources is not None:
                sources.append(Path(module.__file__ or module_name))
            return module
        finally:
            _loading_from.reset(token)
            if folder is not None:
                # What the folder's modules imported from it is read afresh next time too,
                # and never found by code that does not load masks.
                for added in set(sys.modules) - before:
                    origin = getattr(sys.modules.get(added), "__file__", None)
                    if origin is not None and Path(origin).is_relative_to(folder):
                        sys.modules.pop(added, None)
                        if sources is not None:
                            sources.append(Path(origin))


def _import(
    module_name: str, name: str, folder: Path | None, kind: str = "mask function"
) -> types.ModuleType:
    source = _source_of(module_name, folder)
    try:
        if source is None:
            return importlib.import_module(module_name)
        parent = module_name.rpartition(".")[0]
        if parent:
            importlib.import_module(parent)
        spec = _spec(module_name, source)
        module = importlib.util.module_from_spec(spec)
        # The module is importable by its name while it runs (dataclasses need that), and
        # not afterwards, so that what is found never depends on what ran before.
        previous = sys.modules.get(module_name)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)  # type: ignore[union-attr]
        finally:
            if previous is None:
                sys.modules.pop(module_name, None)
            else:
                sys.modules[module_name] = previous
        return module
    except ModuleNotFoundError as error:
        missing = error.name or module_name
        looked = f" (not in {folder})" if folder is not None else ""
        importer = "" if missing == module_name else f", which {module_name} imports,"
        raise ValidationError(
            f"{kind} {name}: cannot import {missing}{importer}{looked}: {error}; {_WHERE_HINT}",
            function=name,
        ) from None
    except SyntaxError as error:
        raise ValidationError(
            f"{kind} {name}: {error.filename} line {error.lineno}: {error.msg}; "
            f"fix the syntax error",
            function=name,
        ) from None
    except Exception as error:
        raise ValidationError(
            f"{kind} {name}: importing {module_name} raised {type(error).__name__}: {error}",
            function=name,
        ) from error


def compute_mask(
    mask: str,
    function: str,
    func: Callable[..., Any],
    features: Mapping[str, Any],
    record: Mapping[str, Any],
) -> Events:
    """Call a mask function on a session's features and check what it returns.

    Raises
    ------
    ValidationError
        When the function raises (its error is chained) or returns something that is not a
        mask; the message names the mask, the function and the session.
    """
    session = record.get("eid", "?")
    where = f"mask {mask!r} ({function}) of session {session}"
    try:
        output = func(features, session=record)
    except NeurotroveError as error:
        raise ValidationError(f"{where} raised: {error.message}", mask=mask) from error
    except Exception as error:
        raise ValidationError(
            f"{where} raised {type(error).__name__}: {error}; nothing was stored",
            mask=mask,
            function=function,
            session=session,
        ) from error
    checked = check_mask(output, where)
    return Events(checked.data, checked.timestamps, name=mask, data_type="mask")
