"""How a catalogue snapshot is compressed on its way to a mirror: zstd, or gzip.

The server keeps each snapshot in both encodings; a client says which it reads (``Accept``)
and unpacks the bytes as they arrive. zstd unpacks four to ten times faster than gzip and
is a fifth smaller, so a new mirror is ready sooner; gzip is what clients before it read.
zstd comes from the standard library (``compression.zstd``, Python 3.14) or its backport
(``backports.zstd``); without either, only gzip is written and read.

Both check what they unpack: gzip's CRC and length, zstd's frame checksum (always written).

Examples
--------
>>> encoder = Encoder("gzip")
>>> packed = encoder.compress(b"catalogue " * 1000) + encoder.finish()
>>> decoder = Decoder("gzip")
>>> decoder.decompress(packed) + decoder.finish() == b"catalogue " * 1000, decoder.eof
(True, True)
>>> parse_accept("application/zstd, application/gzip;q=0.5") == (
...     ("zstd", "gzip") if "zstd" in available() else ("gzip",)
... )
True
"""

from __future__ import annotations

import zlib
from types import ModuleType
from typing import Any

__all__ = [
    "ENCODINGS",
    "MEDIA_TYPES",
    "Decoder",
    "Encoder",
    "accept_header",
    "available",
    "encoding_of",
    "parse_accept",
]

MEDIA_TYPES = {"zstd": "application/zstd", "gzip": "application/gzip"}
"""The media type of each encoding, in the order a client prefers them."""

ENCODINGS = {"zstd": ".zst", "gzip": ".gz"}
"""The file suffix of each encoding."""

ZSTD_LEVEL = 3
"""zstd's level: a quarter of gzip's compression time at level 3, and a smaller file."""

GZIP_LEVEL = 3


def _zstd() -> ModuleType | None:
    """Return the zstd module (the standard library's or its backport), or ``None``."""
    try:
        from compression import zstd  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        try:
            from backports import zstd  # type: ignore[no-redef,unused-ignore]
        except ImportError:
            return None
    return zstd  # type: ignore[no-any-return,unused-ignore]


def available() -> tuple[str, ...]:
    """Return the encodings this Python reads and writes, the preferred first."""
    return tuple(name for name in MEDIA_TYPES if name == "gzip" or _zstd() is not None)


def accept_header(encodings: tuple[str, ...] | None = None) -> str:
    """Return the ``Accept`` header asking for ``encodings`` (default: :func:`available`).

    Examples
    --------
    >>> accept_header(("gzip",))
    'application/gzip'
    """
    chosen = available() if encodings is None else encodings
    return ", ".join(
        MEDIA_TYPES[name] + ("" if n == 0 else f";q={0.9 - n / 10:.1f}")
        for n, name in enumerate(chosen)
    )


def parse_accept(header: str) -> tuple[str, ...]:
    """Return the encodings a request's ``Accept`` asks for and this server writes.

    Gzip only when the header names neither (clients before zstd send none), the client's
    preference first otherwise.

    Examples
    --------
    >>> parse_accept("")
    ('gzip',)
    >>> parse_accept("*/*")
    ('gzip',)
    """
    wanted: list[tuple[float, int, str]] = []
    for n, part in enumerate(header.split(",")):
        kind, *parameters = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        for encoding, media_type in MEDIA_TYPES.items():
            if kind == media_type and quality > 0 and encoding in available():
                wanted.append((-quality, n, encoding))
    return tuple(name for _, _, name in sorted(wanted)) or ("gzip",)


def encoding_of(media_type: str | None) -> str:
    """Return the encoding of a response's ``Content-Type`` (gzip unless it says zstd).

    Examples
    --------
    >>> encoding_of("application/zstd"), encoding_of("application/gzip"), encoding_of(None)
    ('zstd', 'gzip', 'gzip')
    """
    kind = (media_type or "").split(";")[0].strip()
    return next((name for name, known in MEDIA_TYPES.items() if known == kind), "gzip")


class Encoder:
    """Compresses a stream of bytes in one encoding.

    Parameters
    ----------
    encoding : str
        ``"zstd"`` or ``"gzip"``.
    """

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._packer: Any
        if encoding == "zstd":
            zstd = _zstd()
            if zstd is None:
                raise ValueError("zstd is not installed: pip install backports.zstd")
            parameter = zstd.CompressionParameter
            self._packer = zstd.ZstdCompressor(
                options={parameter.compression_level: ZSTD_LEVEL, parameter.checksum_flag: 1}
            )
        else:
            self._packer = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)

    def compress(self, data: bytes) -> bytes:
        """Return the compressed bytes of ``data`` ready so far."""
        return bytes(self._packer.compress(data))

    def finish(self) -> bytes:
        """Return the last compressed bytes (the end of the stream, with its checksum)."""
        return bytes(self._packer.flush())


class Decoder:
    """Unpacks a stream of bytes in one encoding, checking it.

    Parameters
    ----------
    encoding : str
        ``"zstd"`` or ``"gzip"``.

    Raises
    ------
    ValueError
        From :meth:`decompress` or :meth:`finish`, when the bytes are damaged (a checksum,
        a length, or bytes after the end).
    """

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._unpacker: Any
        if encoding == "zstd":
            zstd = _zstd()
            if zstd is None:
                raise ValueError("zstd is not installed: pip install backports.zstd")
            self._unpacker = zstd.ZstdDecompressor()
            self._errors: tuple[type[Exception], ...] = (zstd.ZstdError, EOFError)
        else:
            self._unpacker = zlib.decompressobj(wbits=31)
            self._errors = (zlib.error,)

    @property
    def eof(self) -> bool:
        """Whether the end of the stream was reached (with its checksum checked)."""
        return bool(self._unpacker.eof)

    def decompress(self, data: bytes) -> bytes:
        """Return the bytes ``data`` unpacks to."""
        try:
            out = bytes(self._unpacker.decompress(data))
        except self._errors as error:
            raise ValueError(str(error) or type(error).__name__) from None
        if self._unpacker.unused_data:
            raise ValueError("bytes after the end of the stream")
        return out

    def finish(self) -> bytes:
        """Return what is left to unpack (gzip keeps some back until the end)."""
        if self.encoding == "zstd":
            return b""
        try:
            return bytes(self._unpacker.flush())
        except zlib.error as error:
            raise ValueError(str(error)) from None
