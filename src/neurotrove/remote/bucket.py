"""A trove's own store as a bucket (``s3://bucket/prefix``): writing to it, registering from it.

:class:`Bucket` lists, inspects, hashes, puts and deletes the objects under a prefix with
botocore (the AWS settings are those of :mod:`.s3`). Every put is verified by the server:
``Content-MD5`` on a single ``PUT``, and on each part of a multipart upload, which is
completed only once every part is in (and aborted on any failure), so an object appears
under its key whole or not at all. The bytes sent are the bytes hashed: a file whose md5 is
not the one expected (changed since it was hashed) is refused before the object completes.
Its md5 is kept in the object's metadata (``x-amz-meta-md5``), because an ETag is not an md5
for a multipart upload. A put never replaces an object (``If-None-Match: *``) unless asked to
(recomputed datasets): a key written meanwhile by another writer is a
:class:`~neurotrove.errors.ConflictError`. The client checks what the server received too:
the ETag of a single ``PUT``, and of each part, is the md5 of the bytes stored (without
SSE-KMS or SSE-C encryption), so a mismatch is refused (the object deleted, the upload
aborted) even by a server that ignores ``Content-MD5``, as moto, which the tests run
against, does (S3 and MinIO refuse a mismatch with BadDigest themselves).

:class:`BucketListing` is how ``trove register`` finds files in a bucket
(:class:`~neurotrove.files.scan.Listing`): a listing instead of a walk, an object's
ETag (as a 60-bit stamp, :func:`etag_stamp`) in place of a file's mtime, and md5s read from
the metadata when recorded there, else computed by streaming the object.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from .. import errors as e
from ..files.scan import FoundFile, FoundSession, ScanResult, scan_objects
from .s3 import S3Source, _aws_config, _first_line, parse_s3_url

__all__ = [
    "HASH_REQUESTS",
    "HEAD_FROM",
    "MULTIPART_FROM",
    "Bucket",
    "BucketListing",
    "ObjectInfo",
    "etag_stamp",
]

MULTIPART_FROM = 64 << 20
"""Files of this many bytes or more are put in parts (of this size) rather than in one PUT."""

HASH_REQUESTS = 16
"""How many objects ``trove register`` reads (or asks for their md5) at once, at least."""

HEAD_FROM = 1 << 20
"""An object this large or larger is asked for its recorded md5 (``HEAD``) before any read."""

_CHUNK = 1 << 20


def etag_stamp(etag: str) -> int:
    """Return a 60-bit number of an ETag: what the catalogue keeps to see an object changed.

    Examples
    --------
    >>> etag = "9b2cf535f27731c974343645a3985328"
    >>> etag_stamp(f'"{etag}"') == etag_stamp(etag) < 2**60
    True
    """
    digest = hashlib.sha1(etag.strip('"').encode(), usedforsecurity=False).hexdigest()
    return int(digest[:15], 16)


@dataclass(frozen=True)
class ObjectInfo:
    """What a HEAD says of an object: size, ETag, and the md5 recorded in its metadata."""

    size: int
    etag: str
    md5: str | None


class Bucket:
    """The objects of one bucket under a prefix, for writing and listing (botocore).

    Parameters
    ----------
    url : str
        ``s3://bucket/prefix``.
    timeout : float
        Seconds to wait to connect and between bytes.

    Raises
    ------
    ValidationError
        For a malformed URL.
    ConfigError
        When botocore is not installed (``pip install 'neurotrove[s3]'``).
    """

    def __init__(self, url: str, *, timeout: float = 60.0) -> None:
        self.bucket, self.prefix = parse_s3_url(url)
        self.url = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        self.timeout = timeout
        self._source: S3Source | None = None  # obstore, for listings
        self._client: Any = None
        self._opening = threading.Lock()
        try:
            import botocore.config  # noqa: F401 - said now, not at the first put
        except ImportError:
            raise e.ConfigError(
                f"writing to {url} needs the S3 client: pip install 'neurotrove[s3]'", url=url
            ) from None

    @property
    def client(self) -> Any:
        """The S3 client of botocore, made at first use (its models take a second to load).

        A register that finds nothing new, or only small objects, never needs it: it lists
        and reads with obstore.
        """
        with self._opening:
            if self._client is None:
                import botocore
                import botocore.config
                import botocore.session

                config = _aws_config()
                self._client = botocore.session.get_session().create_client(
                    "s3",
                    region_name=config.region,
                    endpoint_url=config.endpoint,
                    config=botocore.config.Config(
                        connect_timeout=min(self.timeout, 10),
                        read_timeout=self.timeout,
                        retries={"max_attempts": 4, "mode": "standard"},
                        max_pool_connections=HASH_REQUESTS * 2,
                        signature_version=None if config.credentials else botocore.UNSIGNED,
                    ),
                )
            return self._client

    def key(self, rel: str) -> str:
        """Return the full key of ``rel`` (a path relative to the trove's root)."""
        return f"{self.prefix}/{rel}" if self.prefix else rel

    @contextlib.contextmanager
    def translated(self, rel: str) -> Iterator[None]:
        """Turn botocore's errors about ``rel`` into neurotrove's."""
        from botocore.exceptions import BotoCoreError, ClientError

        where = f"{self.url}/{rel}"
        try:
            yield
        except ClientError as error:
            info = error.response.get("Error", {})
            code = str(info.get("Code", ""))
            message = str(info.get("Message", "")) or code
            if code in ("NoSuchKey", "404", "NotFound"):
                raise e.NotFoundError(f"{where} is not in the bucket", url=where) from None
            if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"):
                raise e.AuthError(
                    f"{self.url} refused {rel}: {message}; check the AWS credentials "
                    f"(AWS_PROFILE, AWS_ACCESS_KEY_ID, ~/.aws/credentials)",
                    url=where,
                ) from None
            if code in ("BadDigest", "InvalidDigest"):
                raise e.HashMismatchError(
                    where, "the md5 sent", "other bytes received", "the upload was refused; retry"
                ) from None
            if code in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                raise e.ConflictError(
                    f"{where} was written by another writer meanwhile; register the file "
                    f"under another revision (revision=...)",
                    url=where,
                ) from None
            raise e.RemoteError(f"{self.url}: {code} {message} ({rel})", url=self.url) from None
        except (BotoCoreError, OSError) as error:
            raise e.RemoteError(
                f"{self.url} is unreachable ({_first_line(error)}) while writing or reading "
                f"{rel}; check the endpoint (AWS_ENDPOINT_URL) and your network",
                url=self.url,
                unreachable=True,
            ) from None

    def objects(self, rel_start: str = "") -> Iterator[tuple[str, int, str]]:
        """Yield ``(key relative to the prefix, size, ETag)`` of the objects under ``rel_start``.

        ``rel_start`` is a folder (its objects) or an object; ``""`` lists everything.
        Objects come sorted by key. The whole bucket is listed with obstore, whose pages
        are parsed in Rust (botocore's XML parsing costs more than the requests).
        """
        if not rel_start:
            yield from self._listed()
            return
        base = f"{self.prefix}/" if self.prefix else ""
        prefix = base + rel_start if rel_start else base
        paginator = self.client.get_paginator("list_objects_v2")
        with self.translated(rel_start or "."):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    rel = str(item["Key"])[len(base) :]
                    if rel_start and rel != rel_start and not rel.startswith(rel_start + "/"):
                        continue  # "alf/x" is not under "alf/x.npy"'s neighbour "alf/x.npy.bak"
                    yield rel, int(item["Size"]), str(item["ETag"])

    def _listed(self) -> Iterator[tuple[str, int, str]]:
        """Every object under the prefix, listed with obstore."""
        import obstore

        source = self._obstore()
        with source.translated("."):
            for batch in obstore.list(source.store, chunk_size=1000):
                for item in batch:
                    yield str(item["path"]), int(item["size"]), str(item["e_tag"] or "")

    def head(self, rel: str) -> ObjectInfo | None:
        """Return what the object ``rel`` is, or ``None`` when there is none."""
        try:
            with self.translated(rel):
                answer = self.client.head_object(Bucket=self.bucket, Key=self.key(rel))
        except e.NotFoundError:
            return None
        md5 = (answer.get("Metadata") or {}).get("md5")
        return ObjectInfo(int(answer["ContentLength"]), str(answer["ETag"]), md5)

    def md5(self, rel: str, info: ObjectInfo | None = None, *, size: int | None = None) -> str:
        """Return the md5 of object ``rel``: its metadata's, else computed by streaming it.

        An object known to be under :data:`HEAD_FROM` bytes (``size``, from a listing) is
        read with one ``GET`` (obstore), whose headers carry the metadata too, rather than a
        ``HEAD`` and then a ``GET``: for small objects, requests, not bytes, bound the rate.
        """
        if info is None and size is not None and size < HEAD_FROM:
            return self._small_md5(rel)
        info = info or self.head(rel)
        if info is not None and info.md5:
            return info.md5
        digest = hashlib.md5(usedforsecurity=False)
        with self.translated(rel):
            body = self.client.get_object(Bucket=self.bucket, Key=self.key(rel))["Body"]
            for chunk in body.iter_chunks(_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    def _small_md5(self, rel: str) -> str:
        """Return a small object's md5 from one ``GET`` (obstore): its metadata's, else hashed."""
        import obstore

        source = self._obstore()
        with source.translated(rel):
            result = obstore.get(source.store, rel)
            data = bytes(result.bytes())  # read whole (small), so the connection is reused
        recorded = result.attributes.get("md5")
        if recorded:
            return str(recorded)
        return hashlib.md5(data, usedforsecurity=False).hexdigest()

    def _obstore(self) -> S3Source:
        """Return the obstore client of this bucket and prefix (listings, small reads)."""
        with self._opening:
            if self._source is None:
                self._source = S3Source(self.url, timeout=self.timeout)
            return self._source

    def fetch(self, rel: str, target: Path) -> None:
        """Copy object ``rel`` into the local file ``target`` (kept to restore a replaced one)."""
        with self.translated(rel), target.open("wb") as out:
            body = self.client.get_object(Bucket=self.bucket, Key=self.key(rel))["Body"]
            for chunk in body.iter_chunks(_CHUNK):
                out.write(chunk)

    def put(
        self,
        rel: str,
        source: Path,
        md5: str,
        *,
        on_upload: Callable[[str], None] | None = None,
        replace: bool = False,
    ) -> str:
        """Put ``source`` at ``rel``, checked against ``md5`` by the server; return the ETag.

        Never replaces an object unless ``replace``. A file of :data:`MULTIPART_FROM` bytes
        or more goes in parts, each checked, completed only once all are in and aborted on
        any failure; ``on_upload`` is given the multipart upload's id first (to journal it).

        Raises
        ------
        ConflictError
            When an object appeared at ``rel`` meanwhile (and not ``replace``).
        HashMismatchError
            When the bytes the server received are not the ones hashed (a single put's
            object is deleted again, unless it replaced one).
        """
        size = source.stat().st_size
        key = self.key(rel)
        metadata = {"md5": md5}
        only_new: dict[str, str] = {} if replace else {"IfNoneMatch": "*"}
        with self.translated(rel):
            if size < MULTIPART_FROM:
                body = source.read_bytes()  # the bytes sent are the bytes checked
                digest = hashlib.md5(body, usedforsecurity=False)
                _check_md5(source, md5, digest.hexdigest())
                answer = self.client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=body,
                    ContentMD5=_b64(digest.digest()),
                    Metadata=metadata,
                    **only_new,
                )
                if not _received(answer, md5):
                    if not replace:  # ours (If-None-Match): nothing half-right stays
                        with contextlib.suppress(Exception):
                            self.client.delete_object(Bucket=self.bucket, Key=key)
                    raise _corrupted(f"{self.url}/{rel}", md5, answer)
                return str(answer["ETag"])
            upload = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=key, Metadata=metadata
            )["UploadId"]
            try:
                if on_upload is not None:
                    on_upload(upload)
                parts = self._put_parts(key, upload, source, md5)
                answer = self.client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload,
                    MultipartUpload={"Parts": parts},
                    **only_new,
                )
            except BaseException:
                with contextlib.suppress(Exception):
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=key, UploadId=upload
                    )
                raise
            return str(answer["ETag"])

    def _put_parts(self, key: str, upload: str, source: Path, md5: str) -> list[dict[str, Any]]:
        """Send the file's parts, each with its Content-MD5; check the whole file's md5."""
        whole = hashlib.md5(usedforsecurity=False)
        parts = []
        with source.open("rb") as handle:
            number = 1
            while chunk := handle.read(MULTIPART_FROM):
                whole.update(chunk)
                part = hashlib.md5(chunk, usedforsecurity=False)
                answer = self.client.upload_part(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload,
                    PartNumber=number,
                    Body=chunk,
                    ContentMD5=_b64(part.digest()),
                )
                if not _received(answer, part.hexdigest()):
                    raise _corrupted(f"{self.url}/{key} part {number}", part.hexdigest(), answer)
                parts.append({"PartNumber": number, "ETag": answer["ETag"]})
                number += 1
        _check_md5(source, md5, whole.hexdigest())
        return parts

    def abort(self, rel: str, upload: str) -> None:
        """Abort the multipart upload ``upload`` of ``rel`` (nothing if it is over)."""
        with contextlib.suppress(e.NotFoundError, e.RemoteError), self.translated(rel):
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=self.key(rel), UploadId=upload
            )

    def delete(self, rel: str) -> None:
        """Delete the object ``rel`` (nothing if there is none)."""
        with self.translated(rel):
            self.client.delete_object(Bucket=self.bucket, Key=self.key(rel))

    def close(self) -> None:
        """Close the client's connections."""
        with self._opening:
            if self._client is not None:
                self._client.close()
                self._client = None


def _check_md5(source: Path, expected: str, sent: str) -> None:
    """Refuse a put whose bytes are not those the caller hashed (before it completes)."""
    if sent != expected:
        raise e.HashMismatchError(
            str(source),
            f"md5:{expected}",
            f"md5:{sent}",
            "the file is not the one hashed (it changed meanwhile?); nothing was written",
        )


def _received(answer: dict[str, Any], md5: str) -> bool:
    """Whether a put's (or a part's) answer shows the server stored the bytes of ``md5``.

    The ETag of a single put or a part is the md5 of what was stored, except under SSE-KMS
    or SSE-C encryption, whose ETags are not md5s and are not checked here (those servers
    check ``Content-MD5`` themselves).
    """
    if answer.get("SSECustomerAlgorithm") or answer.get("ServerSideEncryption") in (
        "aws:kms",
        "aws:kms:dsse",
    ):
        return True
    etag = str(answer.get("ETag", "")).strip('"')
    return "-" in etag or len(etag) != 32 or etag == md5


def _corrupted(where: str, md5: str, answer: dict[str, Any]) -> e.HashMismatchError:
    etag = str(answer.get("ETag", "")).strip('"')
    return e.HashMismatchError(
        where,
        f"md5:{md5}",
        f"md5:{etag}",
        "the server stored other bytes than those sent (damaged on the way); nothing was "
        "written: retry",
    )


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


class _ObjectHashers:
    """Hash groups of objects in threads: from their metadata's md5, else by streaming."""

    def __init__(self, bucket: Bucket, workers: int) -> None:
        self.bucket = bucket
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="neurotrove-s3md5")

    def _hash(self, files: Sequence[FoundFile]) -> list[str | OSError]:
        out: list[str | OSError] = []
        for file in files:
            try:
                out.append(self.bucket.md5(file.location, size=file.size))
            except e.NeurotroveError as error:
                out.append(OSError(error.message))
        return out

    def submit(self, files: list[FoundFile]) -> Future[list[str | OSError]]:
        return self.pool.submit(self._hash, list(files))


class BucketListing:
    """The files of a trove whose store is a bucket, as ``trove register`` finds them.

    Parameters
    ----------
    bucket : Bucket
        The bucket and prefix holding the trove's sessions.
    """

    def __init__(self, bucket: Bucket) -> None:
        self.bucket = bucket
        self.where = bucket.url

    def scan(
        self, rel_start: PurePosixPath, on_session: Callable[[FoundSession], None]
    ) -> ScanResult:
        """List the objects under ``rel_start`` and group them into sessions."""
        start = "" if not rel_start.parts else rel_start.as_posix()
        objects = ((key, size, etag_stamp(etag)) for key, size, etag in self.bucket.objects(start))
        return scan_objects(objects, rel_start, on_session=on_session)

    @contextlib.contextmanager
    def hashers(self, workers: int) -> Iterator[_ObjectHashers]:
        """Threads that hash objects; queued work is dropped on an error.

        At least :data:`HASH_REQUESTS` at once: each object costs a request or two, whose
        latency, not the md5, bounds the rate.
        """
        hashers = _ObjectHashers(self.bucket, max(workers, HASH_REQUESTS))
        try:
            yield hashers
        except BaseException:
            hashers.pool.shutdown(wait=True, cancel_futures=True)
            raise
        hashers.pool.shutdown(wait=True)
