"""``OneAlyx`` and ``ONE()``: the facade over a served trove, and ONE's constructor.

``ONE(base_url=URL, username=..., password=...)`` opens the served trove at ``URL`` (a
mirror of its catalogue and a file cache, :func:`neurotrove.connect`), logs in when a
password is given (the token is kept, never the password), and answers every query from
the mirror, as :class:`~neurotrove.one.api.One` does. ``one.alyx.rest(...)`` is a thin
client of the server's Alyx-compatible REST routes.

Examples
--------
>>> from neurotrove.one import ONE
>>> one = ONE(base_url="http://127.0.0.1:8000", username="ann", password="...")  # doctest: +SKIP
>>> one.alyx.rest("sessions", "list", subject="KS005")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from ..errors import AuthError, NotFoundError, RemoteError, ValidationError
from ..trove.trove import Trove
from .api import One

__all__ = ["ONE", "AlyxClient", "OneAlyx"]

_METHODS = {
    "list": "GET",
    "read": "GET",
    "create": "POST",
    "update": "PUT",
    "partial_update": "PATCH",
    "delete": "DELETE",
}


class AlyxClient:
    """A thin client of a trove server's Alyx-compatible REST routes (ONE's ``one.alyx``).

    Parameters
    ----------
    base_url : str
        The server.
    token : callable
        Returns the token to send (``None``: none yet).
    login : callable
        Logs in and returns a new token; called once when the server answers 401.
    timeout : float
        Seconds to wait for an answer.
    """

    def __init__(
        self,
        base_url: str,
        token: Callable[[], str | None],
        login: Callable[[], str],
        *,
        user: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.user = user
        self._token = token
        self._login = login
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout)

    @property
    def is_logged_in(self) -> bool:
        """Whether a token is at hand."""
        return self._token() is not None

    def close(self) -> None:
        """Close the HTTP connection."""
        self._client.close()

    def _send(self, method: str, path: str, **options: Any) -> Any:
        for attempt in (1, 2):
            token = self._token()
            headers = {"Accept": "application/json"}
            if token:
                headers["Authorization"] = f"Token {token}"
            try:
                response = self._client.request(method, path, headers=headers, **options)
            except httpx.HTTPError as error:
                raise RemoteError(
                    f"{method} {self.base_url}{path} failed: {error}; check that the server runs",
                    url=self.base_url,
                ) from None
            if response.status_code in (401, 403) and attempt == 1:
                self._login()
                continue
            break
        if response.status_code >= 400:
            raise _error(method, f"{self.base_url}{path}", response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def get(self, rest_query: str, **params: Any) -> Any:
        """GET a path of the server (``/sessions?subject=KS005``), following pages."""
        path = rest_query if rest_query.startswith("/") else f"/{rest_query}"
        answer = self._send("GET", path, params=params or None)
        if not (isinstance(answer, dict) and "results" in answer and "count" in answer):
            return answer
        results = list(answer["results"])
        while answer.get("next"):
            following = str(answer["next"]).removeprefix(self.base_url)
            answer = self._send("GET", following)
            results.extend(answer["results"])
        return results

    def rest(
        self,
        url: str | None = None,
        action: str | None = None,
        id: Any = None,
        data: Mapping[str, Any] | None = None,
        files: Any = None,
        no_cache: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Call an Alyx REST route: ``rest('sessions', 'list', subject='KS005')``.

        Parameters
        ----------
        url : str
            The endpoint (``sessions``, ``datasets``, ``insertions``, ``dataset-types``,
            ``revisions``, ``files``...), or a full URL of the server.
        action : {"list", "read", "create", "update", "partial_update", "delete"}
            ``list`` follows every page and returns one list of records.
        id : str, optional
            The record, for ``read``, ``update``, ``partial_update`` and ``delete``.
        data : dict, optional
            The body of a write.
        **kwargs
            Query filters of a ``list``; a list value is sent comma-joined, as ONE does.

        Raises
        ------
        ValidationError
            For an unknown action, or a filter the server refuses (400).
        NotFoundError
            For an unknown record or route (404).
        AuthError
            When the server refuses the credentials.
        """
        if not url:
            raise ValidationError(
                "rest() needs an endpoint, e.g. rest('sessions', 'list')", endpoint=url
            )
        action = action or ("read" if id is not None else "list")
        if action not in _METHODS:
            raise ValidationError(
                f"unknown action {action!r}; use one of {', '.join(_METHODS)}", action=action
            )
        if files is not None:
            raise ValidationError("rest(files=...) uploads are not supported; use the trove")
        endpoint = url.removeprefix(self.base_url).strip("/")
        if id is not None:
            endpoint = f"{endpoint}/{id}"
        params = {
            k: ",".join(map(str, v)) if isinstance(v, list | tuple) else v
            for k, v in kwargs.items()
        }
        if action == "list":
            return self.get(f"/{endpoint}", **params)
        if action == "read" or action == "delete":
            return self._send(_METHODS[action], f"/{endpoint}", params=params or None)
        return self._send(_METHODS[action], f"/{endpoint}", json=dict(data or {}))


def _error(method: str, url: str, response: httpx.Response) -> Exception:
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text
    text = f"{method} {url} answered {response.status_code}: {detail}"
    if response.status_code == 404:
        return NotFoundError(text, url=url)
    if response.status_code == 400:
        return ValidationError(text, url=url)
    if response.status_code in (401, 403):
        return AuthError(f"{text}; log in with ONE(base_url=..., password=...)", url=url)
    return RemoteError(text, url=url, status=response.status_code)


class OneAlyx(One):
    """ONE's API over a served trove (``ONE(base_url=...)``).

    Queries are answered from the trove's mirror of the server's catalogue; files come
    through its download cache, checked. ``alyx`` is a client of the server's Alyx REST
    routes.

    Parameters
    ----------
    username, password : str, optional
        Who to log in as. With a password, the facade logs in at once (the token is
        kept, never the password); without, it uses the token kept by ``trove login`` or
        ``NEUROTROVE_USER``/``NEUROTROVE_PASSWORD``.
    base_url : str
        The server.
    cache_dir : str or Path, optional
        Kept for ONE's signature; the mirror and file cache are where ``nt.connect``
        keeps them (``NEUROTROVE_CACHE_DIR``).
    mode : {"remote", "local"}
        ``"local"`` never touches the network (what is mirrored and cached keeps working).
    wildcards : bool
        As in :class:`~neurotrove.one.api.One`.
    trove : Trove, optional
        An open served trove to answer from.
    """

    def __init__(
        self,
        username: str | None = None,
        password: str | None = None,
        base_url: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        mode: str = "remote",
        wildcards: bool = True,
        tables_dir: str | os.PathLike[str] | None = None,
        *,
        trove: Trove | None = None,
        **kwargs: Any,
    ) -> None:
        if trove is None:
            if not base_url:
                raise ValidationError(
                    "OneAlyx needs base_url=, the server's address; for a local trove use "
                    "ONE(cache_dir=...)"
                )
            from .. import connect

            trove = connect(base_url, username=username, mode=mode)
        token = trove.login(username, password) if password is not None else None
        super().__init__(mode=mode, wildcards=wildcards, tables_dir=tables_dir, trove=trove)
        url = trove.url
        if url is None:
            raise ValidationError(f"{trove.root} is a local trove; OneAlyx needs a served one")
        self._alyx = AlyxClient(
            url,
            token=lambda: self._token,
            login=self._relogin,
            user=trove.username,
            timeout=float(trove.settings.timeout),
        )
        self._token: str | None = token
        self._password = password  # only until the first login the client needs

    def _relogin(self) -> str:
        self._token = self.trove.login(self.trove.username, self._password)
        return self._token

    @property
    def alyx(self) -> AlyxClient:
        """The client of the server's Alyx REST routes (``one.alyx.rest(...)``)."""
        if self._alyx._token() is None and self.mode != "local":
            with contextlib.suppress(AuthError):  # a --public-read server needs no token
                self._relogin()
        return self._alyx

    def __repr__(self) -> str:
        return f"One ({'off' if self.offline else 'on'}line, {self.trove.url})"

    def close(self) -> None:
        """Close the Alyx REST client and the trove's connections."""
        self._alyx.close()
        super().close()


def ONE(*, mode: str | None = None, wildcards: bool = True, **kwargs: Any) -> One:
    """Open ONE's API over a trove: ``ONE(cache_dir=ROOT)`` or ``ONE(base_url=URL, ...)``.

    Parameters
    ----------
    mode : {"local", "remote"}, optional
        ``"local"`` never touches a network.
    wildcards : bool
        Search terms are regular expressions (list filters shell wildcards).
    **kwargs
        ``cache_dir`` (a local trove's data root) or ``base_url`` (a server), with
        ``username`` and ``password``; ``tables_dir``.

    Returns
    -------
    One or OneAlyx
    """
    if kwargs.get("base_url"):
        return OneAlyx(mode=mode or "remote", wildcards=wildcards, **kwargs)
    unknown = set(kwargs) - {"cache_dir", "tables_dir", "trove"}
    if unknown:
        raise ValidationError(
            f"ONE() without base_url takes cache_dir and tables_dir, not "
            f"{', '.join(sorted(unknown))}; give base_url= to open a served trove",
            options=sorted(unknown),
        )
    return One(mode=mode or "local", wildcards=wildcards, **kwargs)
