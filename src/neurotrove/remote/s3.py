"""An S3-compatible bucket as a download source: ``s3://bucket/prefix``.

The endpoint, region and credentials are those every AWS tool uses, resolved by botocore
exactly as the AWS CLI and boto3 resolve them: ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``
(or ``endpoint_url`` in ``~/.aws/config``), ``AWS_REGION`` / ``AWS_DEFAULT_REGION`` (or
``region``), and the credential chain (``AWS_ACCESS_KEY_ID`` ..., ``AWS_PROFILE``,
``~/.aws/credentials``, SSO, instance roles). Without credentials the bucket is read
anonymously (a public bucket).

Objects are read with obstore (a Rust client; ``benchmarks/bench_object_store.py`` chose it:
it downloads the same objects 2-3x faster than s3fs and boto3's transfer manager). Errors of
the client never leave this module: a missing object is a
:class:`~neurotrove.errors.NotFoundError`, refused credentials an
:class:`~neurotrove.errors.AuthError`, anything else a
:class:`~neurotrove.errors.RemoteError` with ``unreachable=True``, which downloads retry.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import errors as e

if TYPE_CHECKING:
    from obstore.store import S3Store

__all__ = ["S3Source", "parse_s3_url"]

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_AWS_ENDPOINT = re.compile(r"^https://s3[.\-]([a-z0-9\-]+\.)?amazonaws\.com(\.cn)?/?$")


def parse_s3_url(url: str) -> tuple[str, str]:
    """Split ``s3://bucket/prefix`` into the bucket and the prefix (no slashes around it).

    Raises
    ------
    ValidationError
        For a URL that is not ``s3://`` or whose bucket name is not valid.

    Examples
    --------
    >>> parse_s3_url("s3://lab-bucket/raw/")
    ('lab-bucket', 'raw')
    >>> parse_s3_url("s3://lab-bucket")
    ('lab-bucket', '')
    """
    if not url.lower().startswith("s3://"):
        raise e.ValidationError(f"{url} is not an S3 URL; write s3://bucket/prefix", url=url)
    bucket, _, prefix = url[5:].partition("/")
    if not _BUCKET.match(bucket):
        raise e.ValidationError(
            f"{url}: {bucket!r} is not a bucket name (3-63 lower-case letters, digits, dots "
            f"and hyphens); write s3://bucket/prefix",
            url=url,
        )
    return bucket, prefix.strip("/")


@dataclass(frozen=True)
class _AwsConfig:
    """What botocore resolved from the standard variables and files."""

    region: str
    endpoint: str | None
    credentials: Any  # botocore.credentials.Credentials or None (anonymous)


def _aws_config() -> _AwsConfig:
    """Resolve endpoint, region and credentials as the AWS CLI does (botocore)."""
    import botocore.session

    session = botocore.session.get_session()
    region = session.get_config_variable("region") or "us-east-1"
    client = session.create_client("s3", region_name=region)
    endpoint = client.meta.endpoint_url
    client.close()
    if endpoint and _AWS_ENDPOINT.match(endpoint):
        endpoint = None  # AWS itself: obstore builds the regional address
    return _AwsConfig(region, endpoint, session.get_credentials())


class _Credentials:
    """obstore's credential callback, over botocore's (refreshing) credentials."""

    def __init__(self, credentials: Any) -> None:
        self.credentials = credentials

    def __call__(self) -> dict[str, Any]:
        frozen = self.credentials.get_frozen_credentials()
        return {
            "access_key_id": frozen.access_key,
            "secret_access_key": frozen.secret_key,
            "token": frozen.token,
            "expires_at": dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10),
        }


class _ObjectResponse:
    """An object's body, answering as an HTTP response does for the download code."""

    def __init__(self, source: S3Source, key: str, result: Any, status: int) -> None:
        self.status_code = status
        self.headers: Mapping[str, str] = {}
        self._source = source
        self._key = key
        self._result = result

    def iter_raw(self, chunk_size: int | None = None) -> Iterator[bytes]:
        if self._result is None:
            return
        with self._source.translated(self._key):
            for chunk in self._result.stream(min_chunk_size=chunk_size or (1 << 20)):
                yield bytes(chunk)

    iter_bytes = iter_raw


class S3Source:
    """Objects of one bucket (under a prefix), read with obstore.

    Parameters
    ----------
    url : str
        ``s3://bucket/prefix``.
    timeout : float
        Seconds to wait to connect and between bytes received.

    Raises
    ------
    ValidationError
        For a malformed URL.
    ConfigError
        When obstore or botocore is not installed (``pip install 'neurotrove[s3]'``).
    """

    def __init__(self, url: str, *, timeout: float = 60.0) -> None:
        self.bucket, self.prefix = parse_s3_url(url)
        self.url = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        try:
            from obstore.store import S3Store
        except ImportError:
            raise e.ConfigError(
                f"reading {url} needs the S3 client: pip install 'neurotrove[s3]'", url=url
            ) from None
        config = _aws_config()
        options: dict[str, Any] = {
            "timeout": f"{max(1, round(timeout))}s",
            "connect_timeout": f"{max(1, round(min(timeout, 10)))}s",
        }
        if config.endpoint:
            options["allow_http"] = config.endpoint.startswith("http://")
        store_config: dict[str, Any] = {"region": config.region}
        if config.endpoint:
            store_config["endpoint"] = config.endpoint
        provider = None
        if config.credentials is None:
            store_config["skip_signature"] = True
        else:
            provider = _Credentials(config.credentials)
        # Downloads retry with their own backoff (remote.download); obstore fails fast.
        retry = {"max_retries": 0, "retry_timeout": dt.timedelta(seconds=timeout)}
        self.store: S3Store = S3Store(
            self.bucket,
            prefix=self.prefix or None,
            config=store_config,  # type: ignore[arg-type]
            client_options=options,  # type: ignore[arg-type]
            retry_config=retry,  # type: ignore[arg-type]
            credential_provider=provider,  # type: ignore[arg-type]
        )

    @contextmanager
    def translated(self, key: str) -> Iterator[None]:
        """Turn obstore's errors about ``key`` into neurotrove's."""
        from obstore import exceptions as oe

        where = f"{self.url}/{key}"
        try:
            yield
        except (oe.NotFoundError, FileNotFoundError):  # obstore raises either
            raise e.NotFoundError(
                f"{where} is not in the bucket; the catalogue says it is there: ask whoever "
                f"keeps the bucket to restore it",
                url=where,
            ) from None
        except (oe.PermissionDeniedError, oe.UnauthenticatedError, PermissionError) as error:
            raise e.AuthError(
                f"{self.url} refused to give {key}: {_first_line(error)}; check the AWS "
                f"credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID, ~/.aws/credentials)",
                url=where,
            ) from None
        except (oe.InvalidPathError, oe.UnknownConfigurationKeyError) as error:
            raise e.ConfigError(f"{where}: {_first_line(error)}", url=where) from None
        except (oe.BaseError, OSError) as error:
            raise e.RemoteError(
                f"{self.url} is unreachable ({_first_line(error)}) while reading {key}; check "
                f"the endpoint (AWS_ENDPOINT_URL) and your network",
                url=self.url,
                unreachable=True,
            ) from None

    @contextmanager
    def stream(
        self, method: str, path: str, *, headers: dict[str, str] | None = None
    ) -> Iterator[_ObjectResponse]:
        """Open the object ``path`` (a key under the prefix), from a ``Range`` offset if given."""
        import obstore

        offset = _range_start((headers or {}).get("Range"))
        with self.translated(path):
            try:
                options: Any = {"range": {"offset": offset}} if offset else None
                result = obstore.get(self.store, path, options=options)
            except Exception:
                if not offset:
                    raise
                size = obstore.head(self.store, path)["size"]
                if size != offset:
                    raise
                result = None  # the partial file is whole: nothing left to send
        status = 200 if not offset else (416 if result is None else 206)
        yield _ObjectResponse(self, path, result, status)

    def sign(self, path: str, expires: dt.timedelta) -> str:
        """Return a presigned GET URL of the object ``path``, valid for ``expires``."""
        import obstore

        with self.translated(path):
            return str(obstore.sign(self.store, "GET", path, expires))

    def close(self) -> None:
        """Nothing to release: obstore pools its connections per store."""


def _range_start(header: str | None) -> int:
    """Return N of ``bytes=N-``, else 0.

    Examples
    --------
    >>> _range_start("bytes=1024-"), _range_start(None)
    (1024, 0)
    """
    if not header:
        return 0
    match = re.fullmatch(r"bytes=(\d+)-", header.strip())
    return int(match.group(1)) if match else 0


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:300]
