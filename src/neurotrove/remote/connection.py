"""Talking to a server: one httpx client, the token, and errors translated at this boundary.

Nothing from httpx reaches callers: a server that cannot be reached is a
:class:`~neurotrove.errors.RemoteError` with ``context["unreachable"] = True``; an error the
server answered is raised as the same class the server raised (``NotFoundError``,
``ValidationError`` ...) with the server's message; 401 triggers one fresh login.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .. import errors as e
from ..__about__ import __version__

if TYPE_CHECKING:
    import httpx

__all__ = ["API", "ServerConnection", "is_unreachable"]

API = "/api/v1"
"""The prefix of neurotrove's routes on a server."""

_KINDS: dict[str, type[e.NeurotroveError]] = {
    kind.__name__: kind
    for kind in (
        e.AuthError,
        e.CatalogError,
        e.ConfigError,
        e.ConflictError,
        e.ForbiddenError,
        e.HashMismatchError,
        e.MultipleFoundError,
        e.NotFoundError,
        e.ValidationError,
    )
}


def is_unreachable(error: BaseException) -> bool:
    """Return whether ``error`` says the server could not be reached (not that it refused)."""
    return isinstance(error, e.RemoteError) and bool(error.context.get("unreachable"))


def _transports_per_scheme() -> httpx.BaseTransport:
    """Return httpx's transport, made on first use for each scheme.

    httpx's default transport loads the certificate authorities when it is made, which
    costs more than a whole request on loopback. A plain-http server never needs them, so
    the https transport (verifying certificates against them, as httpx does by default) is
    made when an https URL is first asked for.
    """
    import ssl

    import httpx

    class Transports(httpx.BaseTransport):
        def __init__(self) -> None:
            self._made: dict[str, httpx.HTTPTransport] = {}
            self._lock = threading.Lock()

        def _for(self, scheme: str) -> httpx.HTTPTransport:
            transport = self._made.get(scheme)
            if transport is not None:
                return transport
            with self._lock:
                if scheme not in self._made:
                    # Plain http never does TLS: its pool gets a context that refuses every
                    # certificate (no authorities), so it could never be used unverified.
                    verify = True if scheme == "https" else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                    self._made[scheme] = httpx.HTTPTransport(
                        verify=verify,
                        trust_env=False,
                        limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
                    )
                return self._made[scheme]

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            return self._for(request.url.scheme).handle_request(request)

        def close(self) -> None:
            with self._lock:
                for transport in self._made.values():
                    transport.close()
                self._made.clear()

    return Transports()


class ServerConnection:
    """An HTTP connection to one server, sending the token and logging in again on 401.

    Parameters
    ----------
    url : str
        The server's address, e.g. ``http://labserver:8000``.
    timeout : float
        Seconds to wait to connect and between bytes received.
    token : callable
        Returns the token to send (``None`` to send none).
    login : callable
        Logs in afresh and returns the new token; called once when the server answers 401.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        token: Callable[[], str | None],
        login: Callable[[], str],
    ) -> None:
        import httpx

        self.url = url
        self._token = token
        self._login = login
        self._client = httpx.Client(
            base_url=url,
            timeout=httpx.Timeout(timeout),
            headers={"User-Agent": f"neurotrove/{__version__}"},
            transport=_transports_per_scheme(),
            trust_env=False,
        )

    def close(self) -> None:
        """Close the connections."""
        self._client.close()

    def _headers(self, headers: dict[str, str] | None, auth: bool) -> dict[str, str]:
        out = dict(headers or {})
        token = self._token() if auth else None
        if token:
            out["Authorization"] = f"Bearer {token}"
        return out

    @contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        import httpx

        try:
            yield
        except httpx.TransportError as error:
            reason = str(error) or type(error).__name__
            raise e.RemoteError(
                f"server {self.url} is unreachable ({reason}) while {what}; check the address "
                f"and your network, or use what is cached with mode='local'",
                url=self.url,
                unreachable=True,
            ) from None

    def request(
        self,
        method: str,
        path: str,
        *,
        auth: bool = True,
        headers: dict[str, str] | None = None,
        **options: Any,
    ) -> httpx.Response:
        """Send a request and return the response; errors the server answers are raised.

        A 401 with ``auth`` logs in once and sends the request again.
        """
        what = f"{method} {path}"
        with self._translated(what):
            response = self._client.request(
                method, path, headers=self._headers(headers, auth), **options
            )
            if response.status_code == 401 and auth:
                self._login()
                response = self._client.request(
                    method, path, headers=self._headers(headers, auth), **options
                )
        if response.status_code >= 400:
            raise self.error(response)
        return response

    @contextmanager
    def stream(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        passing: frozenset[int] = frozenset(),
    ) -> Iterator[httpx.Response]:
        """Open a streamed response (for downloads); the caller reads its body.

        Error statuses other than 416 and those in ``passing`` are raised; a 401 logs in
        once and retries. Errors while the caller reads the body are translated too.
        """
        what = f"downloading {path}"
        response = self._open(method, path, headers, what)
        if response.status_code == 401:
            response.close()
            self._login()
            response = self._open(method, path, headers, what)
        try:
            status = response.status_code
            if status >= 400 and status != 416 and status not in passing:
                with self._translated(what):
                    response.read()
                raise self.error(response)
            with self._translated(what):
                yield response
        finally:
            response.close()

    def _open(
        self, method: str, path: str, headers: dict[str, str] | None, what: str
    ) -> httpx.Response:
        with self._translated(what):
            request = self._client.build_request(
                method, path, headers=self._headers(headers, True)
            )
            # A server redirects a file kept in an object store to a presigned URL; httpx
            # drops the token when the redirect leaves the server's origin.
            return self._client.send(request, stream=True, follow_redirects=True)

    def error(self, response: httpx.Response) -> e.NeurotroveError:
        """Turn an error response into the error the server raised."""
        try:
            body = response.json()
        except ValueError:
            body = {}
        detail = body.get("detail") if isinstance(body, dict) else None
        if not isinstance(detail, str):
            detail = response.text[:300] or response.reason_phrase
        kind = _KINDS.get(str(body.get("error")) if isinstance(body, dict) else "")
        context = {"url": self.url, "status": response.status_code}
        if kind is e.HashMismatchError:
            return e.HashMismatchError(str(response.url), "", "", message=detail)
        if kind is not None:
            return kind(detail, **context)
        if response.status_code == 401:
            return e.AuthError(f"{self.url} refused the credentials: {detail}", **context)
        return e.RemoteError(
            f"{self.url} answered {response.status_code} to {response.request.method} "
            f"{response.request.url.path}: {detail}",
            **context,
        )
