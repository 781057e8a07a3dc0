"""A snapshot's compression: zstd for current clients, gzip for older ones, both checked.

The server keeps each snapshot in both encodings (compact, in WAL mode, so a mirror writes
it as it arrives and opens it as it is); the client unpacks whichever the server sent,
refusing damaged bytes, and resumes a download cut short in the encoding it began in.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from neurotrove.catalog.store import Catalog
from neurotrove.demo import write_example_tree
from neurotrove.errors import RemoteError
from neurotrove.remote.snapshot_download import PART, SnapshotDownload
from neurotrove.server.mirror_copies import (
    build_snapshot,
    servable_snapshot,
    snapshot_media_type,
    snapshot_path,
)
from neurotrove.server.mirror_copy import is_wal, write_snapshot
from neurotrove.snapshot_encodings import (
    MEDIA_TYPES,
    Decoder,
    Encoder,
    available,
    parse_accept,
)

zstd_only = pytest.mark.skipif("zstd" not in available(), reason="zstd is not installed")
ENCODINGS = pytest.mark.parametrize(
    "encoding", [pytest.param("zstd", marks=zstd_only), pytest.param("gzip")]
)


def _packed(encoding: str, data: bytes) -> bytes:
    encoder = Encoder(encoding)
    return encoder.compress(data) + encoder.finish()


def _unpacked(encoding: str, packed: bytes) -> bytes:
    decoder = Decoder(encoding)
    return decoder.decompress(packed) + decoder.finish()


@ENCODINGS
def test_damaged_or_cut_bytes_are_refused(encoding: str) -> None:
    data = bytes(range(256)) * 4000
    packed = bytearray(_packed(encoding, data))
    assert _unpacked(encoding, bytes(packed)) == data
    cut = Decoder(encoding)
    cut.decompress(bytes(packed[: len(packed) // 2]))
    assert not cut.eof
    with pytest.raises(ValueError, match="after the end"):
        Decoder(encoding).decompress(bytes(packed) + b"more")
    packed[-6] ^= 0xFF  # the checksum (gzip: its CRC; zstd: its frame checksum)
    with pytest.raises(ValueError, match="incorrect data check|corruption"):
        _unpacked(encoding, bytes(packed))


def test_a_client_gets_the_encoding_it_prefers_and_an_old_one_gzip() -> None:
    assert parse_accept("") == ("gzip",)  # clients before zstd send no Accept
    assert parse_accept("application/gzip") == ("gzip",)
    if "zstd" in available():
        assert parse_accept("application/zstd, application/gzip;q=0.5") == ("zstd", "gzip")
        assert parse_accept("application/gzip, application/zstd;q=0.5") == ("gzip", "zstd")
        assert parse_accept("application/zstd;q=0, application/gzip") == ("gzip",)


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    import neurotrove as nt

    root = tmp_path / "data"
    write_example_tree(root, n_subjects=2, days=2, oddities=False)
    with nt.connect(root, create=True) as trove:
        trove.register(progress=False)
    with Catalog(f"sqlite:///{root / '.trove' / 'catalog.db'}") as opened:
        yield opened


def test_a_snapshot_is_kept_in_each_encoding_compact_and_in_wal_mode(
    catalog: Catalog, tmp_path: Path
) -> None:
    folder = tmp_path / "snapshots"
    version, _ = build_snapshot(catalog, folder)
    expected = tmp_path / "expected.db"
    write_snapshot(catalog, expected)
    for encoding in available():
        path = snapshot_path(folder, version, encoding)
        assert snapshot_media_type(path) == MEDIA_TYPES[encoding]
        assert servable_snapshot(catalog, folder, encodings=(encoding,)) == (version, path)
        unpacked = tmp_path / f"unpacked-{encoding}.db"
        unpacked.write_bytes(_unpacked(encoding, path.read_bytes()))
        assert unpacked.read_bytes() == expected.read_bytes()
        assert is_wal(unpacked)
        conn = sqlite3.connect(f"file:{unpacked}?mode=ro", uri=True)
        try:
            assert conn.execute("PRAGMA freelist_count").fetchone() == (0,)
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        finally:
            conn.close()
    preferred = servable_snapshot(catalog, folder, encodings=available())
    assert preferred == (version, snapshot_path(folder, version, available()[0]))


class _Answer:
    """A streamed answer of ``GET /catalog``: a status, headers and the body's bytes."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes, cut: int | None):
        self.status_code = status
        self.headers = headers
        self._body = body
        self._cut = cut

    def iter_bytes(self, size: int) -> Iterator[bytes]:
        end = len(self._body) if self._cut is None else self._cut
        for start in range(0, end, 1000):
            yield self._body[start : min(end, start + 1000)]
        if self._cut is not None:
            raise RemoteError("server http://lab is unreachable (cut)", unreachable=True)


class _Server:
    """Serves one snapshot as ``trove serve`` does: the encoding Accept asks for, Range."""

    url = "http://lab"

    def __init__(self, packed: dict[str, bytes]) -> None:
        self.packed = packed
        self.asked: list[dict[str, str]] = []
        self.cut: int | None = None

    @contextlib.contextmanager
    def stream(self, method: str, path: str, **options: Any) -> Iterator[_Answer]:
        headers: dict[str, str] = options["headers"]
        self.asked.append(headers)
        encoding = next(e for e in parse_accept(headers.get("Accept", "")) if e in self.packed)
        body = self.packed[encoding]
        about = {
            "etag": '"g-7"',
            "x-catalog-version": "g-7",
            "last-modified": "Sat, 05 Dec 2026 00:00:00 GMT",
            "content-type": MEDIA_TYPES[encoding],
        }
        if "Range" in headers:
            start = int(headers["Range"].removeprefix("bytes=").rstrip("-"))
            about["content-range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
            about["content-length"] = str(len(body) - start)
            yield _Answer(206, about, body[start:], None)
            return
        about["content-length"] = str(len(body))
        cut, self.cut = self.cut, None
        yield _Answer(200, about, body, cut)


@ENCODINGS
def test_a_download_cut_short_is_resumed_in_the_encoding_it_began_in(
    catalog: Catalog, tmp_path: Path, encoding: str
) -> None:
    expected = tmp_path / "expected.db"
    write_snapshot(catalog, expected)
    data = expected.read_bytes()
    packed = {name: _packed(name, data) for name in available()}
    server = _Server(packed)
    folder = tmp_path / "mirror"
    download = SnapshotDownload(server, folder, progress=False)  # type: ignore[arg-type]
    if encoding == "gzip":  # an older server: gzip only
        server.packed = {"gzip": packed["gzip"]}
    server.cut = 3000
    with pytest.raises(RemoteError, match="unreachable"):
        download.fetch(None)
    assert (folder / PART).stat().st_size == 3000
    assert not download.unpacked.exists()
    server.packed = packed  # the server now offers both: the rest comes as it began
    assert download.fetch(None) == "g-7"
    assert server.asked[-1]["Accept"] == MEDIA_TYPES[encoding]
    assert download.unpacked.read_bytes() == data
