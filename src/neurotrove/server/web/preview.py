"""Previews of a dataset's file for its page: a plot, a table's first rows, or pretty text.

Numeric arrays (``.npy``) are drawn as an SVG line, downsampled to at most
:data:`PLOT_POINTS` points per line (the minimum and maximum of each bin, so spikes stay
visible); tables (``.pqt``, ``.parquet``, ``.csv``, ``.tsv``) show their first
:data:`TABLE_ROWS` rows; JSON and YAML are pretty-printed (up to :data:`TEXT_BYTES`); any
other file shows its size and a download link. The file is read memory-mapped or in part,
never whole, so a preview of a large file costs what the preview shows.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["PLOT_POINTS", "TABLE_ROWS", "TEXT_BYTES", "Preview", "preview"]

PLOT_POINTS = 1000
"""The most points a line of a plotted array has (bins of min and max)."""

LONGEST_READ = 2_000_000
"""Arrays longer than this are read at a stride (every k-th row) before binning."""

TABLE_ROWS = 20
"""How many rows of a table are shown."""

TEXT_BYTES = 256 * 1024
"""How much of a JSON or YAML file is pretty-printed."""

_WIDTH, _HEIGHT = 900.0, 260.0
_COLOURS = ("#2a6fb0", "#c0392b", "#27ae60", "#8e44ad", "#d35400", "#16a085")


@dataclass
class Preview:
    """What the dataset page shows of a file.

    Attributes
    ----------
    kind : str
        ``plot``, ``table``, ``text`` or ``file`` (size and download only).
    summary : str
        One line: shape and dtype, rows and columns, or size.
    lines : list of str
        For a plot: SVG polyline points, one string per line.
    columns, rows : list
        For a table: its column names and first rows.
    text : str
        For JSON and YAML: the pretty-printed content.
    """

    kind: str
    summary: str
    lines: list[tuple[str, str]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    text: str = ""
    width: float = _WIDTH
    height: float = _HEIGHT


def _plot(path: Path) -> Preview:
    import numpy as np

    array = np.load(path, mmap_mode="r", allow_pickle=False)
    summary = f"array {tuple(array.shape)} of {array.dtype}"
    if array.ndim == 0 or array.size == 0 or array.dtype.kind not in "biuf":
        return Preview("file", summary)
    # A very long array is read at a stride first, so a preview never reads it all.
    step = max(1, array.shape[0] // LONGEST_READ)
    rows = array[::step]
    data = np.asarray(rows).reshape(rows.shape[0], -1) if rows.ndim > 1 else rows[:, None]
    data = data[:, : len(_COLOURS)].astype(float)
    n = data.shape[0]
    bins = max(1, min(n, PLOT_POINTS // 2))
    edges = np.linspace(0, n, bins + 1).astype(int)
    xs: list[float] = []
    columns: list[list[float]] = [[] for _ in range(data.shape[1])]
    for start, stop in itertools.pairwise(edges):
        if stop <= start:
            continue
        chunk = data[start:stop]
        xs.extend([float(start), float(stop - 1)])
        for i in range(data.shape[1]):
            finite = chunk[:, i][np.isfinite(chunk[:, i])]
            low, high = (finite.min(), finite.max()) if finite.size else (np.nan, np.nan)
            columns[i].extend([float(low), float(high)])
    values = np.array(columns)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return Preview("file", summary)
    low, high = float(finite.min()), float(finite.max())
    span_y = (high - low) or 1.0
    span_x = (n - 1) or 1
    lines = []
    for i, column in enumerate(values):
        points = " ".join(
            f"{x / span_x * _WIDTH:.1f},{_HEIGHT - (y - low) / span_y * _HEIGHT:.1f}"
            for x, y in zip(xs, column, strict=True)
            if np.isfinite(y)
        )
        lines.append((points, _COLOURS[i]))
    summary += f"; range {low:.4g} to {high:.4g}"
    if n > bins:
        summary += f"; drawn as the min and max of {bins} bins"
    if step > 1:
        summary += f" of every {step}th row"
    return Preview("plot", summary, lines=lines)


def _table(path: Path, extension: str) -> Preview:
    import pandas as pd

    if extension in ("pqt", "parquet"):
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(path)
        batch = next(parquet.iter_batches(batch_size=TABLE_ROWS), None)
        frame = batch.to_pandas() if batch is not None else pd.DataFrame()
        total = parquet.metadata.num_rows
    else:
        frame = pd.read_csv(path, nrows=TABLE_ROWS, sep="\t" if extension == "tsv" else ",")
        total = None
    frame = frame.head(TABLE_ROWS)
    rows = [[_cell(v) for v in row] for row in frame.itertuples(index=False)]
    count = f"{total:,} rows" if total is not None else "first rows"
    summary = f"table of {count} and {len(frame.columns)} columns"
    return Preview("table", summary, columns=[str(c) for c in frame.columns], rows=rows)


def _cell(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _text(path: Path, extension: str) -> Preview:
    import yaml

    with path.open("rb") as stream:
        raw = stream.read(TEXT_BYTES + 1)
    cut = len(raw) > TEXT_BYTES
    text = raw[:TEXT_BYTES].decode(errors="replace")
    if not cut:
        try:
            if extension == "json":
                text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
            else:
                text = yaml.safe_dump(yaml.safe_load(text), sort_keys=False, allow_unicode=True)
        except (ValueError, yaml.YAMLError):
            pass  # shown as it is
    summary = f"{extension.upper()}" + (f", the first {TEXT_BYTES // 1024} kB" if cut else "")
    return Preview("text", summary, text=text)


def preview(path: Path, size: int | None) -> Preview:
    """Return the preview of the file at ``path`` (already checked to be inside the root)."""
    extension = path.suffix.lower().lstrip(".")
    shown = f"{size:,} bytes" if size is not None else "size unknown"
    try:
        if extension == "npy":
            return _plot(path)
        if extension in ("pqt", "parquet", "csv", "tsv"):
            return _table(path, extension)
        if extension in ("json", "yaml", "yml"):
            return _text(path, extension)
    except (OSError, ValueError) as error:
        return Preview("file", f"{shown}; no preview ({type(error).__name__}: {error})")
    return Preview("file", shown)
