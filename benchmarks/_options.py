"""The options every benchmark takes: ``--data``, ``--port`` and ``--output``.

- ``--data DIR``: where the benchmark writes what it makes (trees, troves, copies of
  catalogues, caches, logs). Default: ``<home>/<name>``, where ``<home>`` is
  ``$NEUROTROVE_BENCH_CACHE`` or ``~/.cache/neurotrove-bench``; never the checkout.
- ``--port N``: the port of the first server the benchmark starts (``trove serve``, nginx,
  ``moto_server``, ...); a second server takes ``N + 1``, and so on. ``0`` (the default)
  picks a free port for each server when it starts.
- ``--output FILE``: also write the printed markdown to ``FILE``.

Catalogues drawn by ``generate.py`` are inputs shared by several benchmarks: they stay in
``generate.py``'s cache (:func:`catalogue_home`) and a benchmark copies one into ``--data``
before it writes to it.

Examples
--------
>>> import argparse
>>> parser = argparse.ArgumentParser()
>>> add_common_options(parser)
>>> args = parser.parse_args(["--port", "8123"])
>>> free_port(args), free_port(args, 1)
(8123, 8124)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

CACHE_VARIABLE = "NEUROTROVE_BENCH_CACHE"
"""The environment variable naming the benchmarks' home folder."""

_CHECKOUT = Path(__file__).resolve().parent.parent


def bench_home() -> Path:
    """Return the benchmarks' home folder: ``$NEUROTROVE_BENCH_CACHE`` or the user cache.

    Returns
    -------
    Path
        ``$NEUROTROVE_BENCH_CACHE`` if set, else ``~/.cache/neurotrove-bench``.
    """
    value = os.environ.get(CACHE_VARIABLE)
    return Path(value).expanduser() if value else Path.home() / ".cache" / "neurotrove-bench"


def catalogue_home() -> Path:
    """Return the folder ``generate.py`` keeps its catalogues in (shared, read only).

    Returns
    -------
    Path
        The same folder as :func:`bench_home`: ``generate.py``'s default ``--home``.
    """
    return bench_home()


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--data``, ``--port`` and ``--output`` to a benchmark's parser.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The benchmark's parser.
    """
    parser.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help=f"where to write trees, troves, caches and logs (default: a folder under "
        f"${CACHE_VARIABLE} or ~/.cache/neurotrove-bench; never the checkout)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=0,
        metavar="N",
        help="the port of the first server started (the next ones count up); "
        "0, the default, picks a free port",
    )
    parser.add_argument(
        "--output", type=Path, metavar="FILE", help="also write the markdown table to FILE"
    )


def data_dir(args: argparse.Namespace, name: str) -> Path:
    """Return (and create) the benchmark's data folder.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options, with ``--data`` from :func:`add_common_options`.
    name : str
        The benchmark's folder under the home folder when ``--data`` is not given.

    Returns
    -------
    Path
        ``--data`` if given, else ``bench_home() / name``, absolute.

    Raises
    ------
    SystemExit
        If the folder is inside the checkout.
    """
    folder = (args.data if args.data is not None else bench_home() / name).resolve()
    if folder == _CHECKOUT or _CHECKOUT in folder.parents:
        raise SystemExit(f"--data {folder} is inside the checkout {_CHECKOUT}: choose another")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextlib.contextmanager
def scratch_dir(args: argparse.Namespace, name: str) -> Iterator[Path]:
    """Yield a new empty folder in the data folder, removed at the end.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options, with ``--data``.
    name : str
        As for :func:`data_dir`; also the start of the folder's name.

    Yields
    ------
    Path
        ``<data>/<name>-<random>``, which two runs at once never share.
    """
    folder = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=data_dir(args, name)))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def free_port(args: argparse.Namespace, offset: int = 0) -> int:
    """Return the port of a server to start: ``--port`` plus ``offset``, or a free one.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options, with ``--port``.
    offset : int
        Which server of the benchmark this is (0 for the first).

    Returns
    -------
    int
        ``--port + offset`` when ``--port`` is not 0, else a port of 127.0.0.1 that was free
        a moment ago (bound to 0 and released).
    """
    if args.port:
        return int(args.port) + offset
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_output(args: argparse.Namespace, markdown: str) -> None:
    """Write the markdown the benchmark printed to ``--output``, if given.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options, with ``--output``.
    markdown : str
        The text printed on standard output.
    """
    if args.output is None:
        return
    path = Path(args.output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown if markdown.endswith("\n") else markdown + "\n")
