"""Settings: one typed object, built when asked for and never at import.

Precedence, highest first:

1. arguments given in code (``Settings.load(root=...)``, ``nt.connect(..., db=...)``);
2. ``NEUROTROVE_*`` environment variables;
3. the chosen profile in ``config.toml`` (``[profiles.<name>]``);
4. the top level of ``config.toml`` in the user config directory;
5. the named defaults below.

``config.toml`` lives in the platform's user config directory (``NEUROTROVE_CONFIG_DIR``
overrides it). A trove also reads ``<root>/.trove/config.toml`` for its own table defaults.

Example ``config.toml``::

    root = "~/data"            # the trove nt.connect() opens
    hash_workers = 4

    [defaults.sessions]        # conditions applied to trove.table("sessions").get()
    qc = [50, "<"]             # (value, op): hide CRITICAL sessions

    [profiles.lab]
    db = "postgresql://lab@dbhost/trove"

Examples
--------
>>> from neurotrove.config import Settings
>>> settings = Settings.load(root="/tmp/example-trove", hash_workers=2)
>>> settings.hash_workers
2
>>> str(settings.root)
'/tmp/example-trove'
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .validation import wrong_type

__all__ = [
    "DEFAULT_DOWNLOAD_RETRIES",
    "DEFAULT_DOWNLOAD_WORKERS",
    "DEFAULT_HASH_WORKERS",
    "DEFAULT_MIRROR_MAX_AGE_S",
    "DEFAULT_TIMEOUT_S",
    "MODES",
    "OBJECT_FILES",
    "Settings",
    "load_toml",
    "table_defaults_from_toml",
]

ENV_PREFIX = "NEUROTROVE_"
DEFAULT_HASH_WORKERS = 4
"""Files hashed at once by ``register``; md5 releases the GIL, so threads overlap reads."""

DEFAULT_DOWNLOAD_WORKERS = 4
"""Files a remote trove downloads at once."""
DEFAULT_DOWNLOAD_RETRIES = 3
"""How often a failed download is retried (with backoff, resuming) before giving up."""
DEFAULT_MIRROR_MAX_AGE_S = 60.0
"""How old (seconds) a remote trove's mirror may be before ``mode="auto"`` checks the server."""
DEFAULT_TIMEOUT_S = 30.0
"""How long (seconds) a remote trove waits for the server to connect or send data."""
MODES = ("auto", "local", "remote")
"""A remote trove's modes: check the server when the mirror is stale and work offline when
it is unreachable; never touch the network; check the server on every query."""

OBJECT_FILES = ("redirect", "proxy")
"""How ``trove serve`` answers for a file in an object store: a redirect to a presigned URL,
or the file itself, fetched into the server's cache."""

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _user_config_dir() -> Path:
    import platformdirs

    return platformdirs.user_config_path("neurotrove", appauthor=False)


def _user_cache_dir() -> Path:
    import platformdirs

    return platformdirs.user_cache_path("neurotrove", appauthor=False)


def _default_root() -> Path:
    import platformdirs

    return platformdirs.user_data_path("neurotrove", appauthor=False) / "trove"


@dataclass(frozen=True)
class Settings:
    """Everything neurotrove can be configured with.

    Attributes
    ----------
    root : Path
        The data root of the trove that ``nt.connect()`` opens with no argument.
    db : str or None
        A catalogue URL (``sqlite:///...`` or ``postgresql://...``); ``None`` means the
        embedded SQLite file ``<root>/.trove/catalog.db``.
    config_dir : Path
        Where ``config.toml`` (and, for servers, tokens) live.
    cache_dir : Path
        Where downloaded files are cached.
    hash_workers : int
        How many files ``register`` hashes at once: in threads, or, when the files to hash
        hold 256 MB or more, in as many worker processes.
    check_hash : bool
        Verify md5 (not only size) of every file before loading it.
    progress : bool or None
        Show progress bars; ``None`` means only when attached to a terminal.
    profile : str or None
        The ``[profiles.<name>]`` section of ``config.toml`` in use.
    table_defaults : mapping
        Default conditions per table, e.g. ``{"sessions": {"qc": (50, "<")}}``.
    url : str or None
        A server that ``nt.connect()`` opens with no argument (``NEUROTROVE_URL``).
    mode : str
        A remote trove's mode: ``"auto"``, ``"local"`` or ``"remote"`` (see :data:`MODES`).
    mirror_max_age : float
        Seconds a remote trove's mirror is trusted in ``mode="auto"`` before the server is
        asked whether the catalogue changed (one small request when it did not).
    download_workers : int
        Files a remote trove downloads at once.
    download_retries : int
        Retries of a failed download (resumed where it stopped, with backoff).
    timeout : float
        Seconds to wait for the server to connect or to send data.
    analysis_dir : Path or None
        The folder holding a lab's analysis code, where behaviour mask functions and
        analysis functions (``module.function``) are imported from
        (``NEUROTROVE_ANALYSIS_DIR``).
    object_files : str
        How ``trove serve`` answers a request for a file in an object store (an S3 bucket,
        an HTTP data server): ``"redirect"`` to a short-lived presigned URL, or ``"proxy"``
        (fetch it into the server's cache and send it, for stores clients cannot reach).
    """

    root: Path = field(default_factory=_default_root)
    db: str | None = None
    config_dir: Path = field(default_factory=_user_config_dir)
    cache_dir: Path = field(default_factory=_user_cache_dir)
    hash_workers: int = DEFAULT_HASH_WORKERS
    check_hash: bool = False
    progress: bool | None = None
    profile: str | None = None
    table_defaults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    url: str | None = None
    mode: str = "auto"
    mirror_max_age: float = DEFAULT_MIRROR_MAX_AGE_S
    download_workers: int = DEFAULT_DOWNLOAD_WORKERS
    download_retries: int = DEFAULT_DOWNLOAD_RETRIES
    timeout: float = DEFAULT_TIMEOUT_S
    analysis_dir: Path | None = None
    object_files: str = "redirect"

    @classmethod
    def load(cls, *, profile: str | None = None, **overrides: Any) -> Settings:
        """Build settings from arguments, the environment and ``config.toml``.

        Parameters
        ----------
        profile : str, optional
            A ``[profiles.<name>]`` section of ``config.toml``; defaults to
            ``NEUROTROVE_PROFILE``.
        **overrides
            Values that win over everything else; ``None`` values are ignored.

        Returns
        -------
        Settings

        Raises
        ------
        ConfigError
            When a value has the wrong type, a key is unknown or the profile does not exist.
        """
        names = {f.name for f in fields(cls)}
        _check_names(overrides, names)
        for given in (profile, overrides.get("profile")):
            if given is not None and not isinstance(given, str):
                raise wrong_type("profile", given, "a str", ConfigError)
        env = {
            name: os.environ[ENV_PREFIX + name.upper()]
            for name in names
            if os.environ.get(ENV_PREFIX + name.upper())
        }
        env.pop("table_defaults", None)
        config_dir = Path(
            overrides.get("config_dir") or env.get("config_dir") or _user_config_dir()
        ).expanduser()
        config_file = config_dir / "config.toml"
        document = load_toml(config_file)
        top = {k: v for k, v in document.items() if k not in ("profiles", "defaults")}
        profile = profile or overrides.pop("profile", None) or env.get("profile")
        profile_values: dict[str, Any] = {}
        if profile:
            profiles = document.get("profiles", {})
            if profile not in profiles:
                raise ConfigError(
                    f"profile {profile!r} is not in {config_file}; known profiles: "
                    f"{', '.join(sorted(profiles)) or 'none'}",
                    profile=profile,
                    path=str(config_file),
                )
            profile_values = dict(profiles[profile])
        for source, where in ((top, str(config_file)), (profile_values, f"profile {profile}")):
            bad = set(source) - names
            if bad:
                raise ConfigError(
                    f"unknown key(s) {', '.join(sorted(bad))} in {where}; valid keys are "
                    f"{', '.join(sorted(names - {'table_defaults'}))}",
                    path=str(config_file),
                )
        merged: dict[str, Any] = {**top, **profile_values, **env}
        merged.update({k: v for k, v in overrides.items() if v is not None})
        merged["profile"] = profile
        merged["config_dir"] = config_dir
        merged.setdefault("table_defaults", table_defaults_from_toml(document, config_file))
        return cls(**{name: _coerce(name, value) for name, value in merged.items()})

    def with_changes(self, **changes: Any) -> Settings:
        """Return a copy with some settings changed (``None`` values are ignored).

        Examples
        --------
        >>> Settings.load(root="/tmp/a").with_changes(root="/tmp/b").root.name
        'b'
        """
        _check_names(changes, {f.name for f in fields(self)})
        return replace(self, **{k: _coerce(k, v) for k, v in changes.items() if v is not None})


def _check_names(given: Mapping[str, Any], names: set[str]) -> None:
    """Refuse settings that do not exist, listing those that do."""
    unknown = set(given) - names
    if unknown:
        raise ConfigError(
            f"unknown setting(s) {', '.join(sorted(unknown))}; valid settings are "
            f"{', '.join(sorted(names))}",
            settings=sorted(unknown),
        )


def load_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file, or return ``{}`` when it does not exist.

    Raises
    ------
    ConfigError
        When the file is not valid TOML; the message gives the file and the parser's reason.
    """
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}", path=str(path)) from None
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}", path=str(path)) from None


def table_defaults_from_toml(
    document: Mapping[str, Any], where: Path | str
) -> dict[str, dict[str, Any]]:
    """Read the ``[defaults.<table>]`` sections of a parsed ``config.toml``.

    A two-element array whose second element is a string, such as ``[50, "<"]``, becomes the
    ``(value, op)`` condition ``(50, "<")``; other values are kept as they are.

    Examples
    --------
    >>> table_defaults_from_toml({"defaults": {"sessions": {"qc": [50, "<"]}}}, "config.toml")
    {'sessions': {'qc': (50, '<')}}
    """
    defaults = document.get("defaults", {})
    if not isinstance(defaults, Mapping):
        raise ConfigError(f"[defaults] in {where} must be a table of tables", path=str(where))
    result: dict[str, dict[str, Any]] = {}
    for table, conditions in defaults.items():
        if not isinstance(conditions, Mapping):
            raise ConfigError(
                f"[defaults.{table}] in {where} must be a table of field = condition",
                path=str(where),
            )
        result[table] = {
            key: tuple(value)
            if isinstance(value, list) and len(value) == 2 and isinstance(value[1], str)
            else value
            for key, value in conditions.items()
        }
    return result


def _coerce(name: str, value: Any) -> Any:
    """Turn a value from the environment or TOML into the type of setting ``name``."""
    try:
        if name in ("root", "config_dir", "cache_dir"):
            return Path(str(value)).expanduser()
        if name == "analysis_dir":
            return None if value is None else Path(str(value)).expanduser()
        if name in ("db", "profile", "url"):
            return None if value is None else str(value)
        if name in ("hash_workers", "download_workers"):
            number = int(value)
            if number < 1:
                raise ValueError
            return number
        if name == "download_retries":
            number = int(value)
            if number < 0:
                raise ValueError
            return number
        if name in ("mirror_max_age", "timeout"):
            seconds = float(value)
            if not seconds >= 0:
                raise ValueError
            return seconds
        if name == "mode":
            if str(value) not in MODES:
                raise ValueError
            return str(value)
        if name == "object_files":
            if str(value) not in OBJECT_FILES:
                raise ValueError
            return str(value)
        if name in ("check_hash", "progress"):
            if value is None or isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if name == "progress" and text == "auto":
                return None
            if text in _TRUE | _FALSE:
                return text in _TRUE
            raise ValueError
        if name == "table_defaults":
            if not isinstance(value, Mapping):
                raise ValueError
            return {str(k): dict(v) for k, v in value.items()}
    except (TypeError, ValueError):
        expected = {
            "hash_workers": "a positive integer",
            "download_workers": "a positive integer",
            "download_retries": "a whole number, 0 or more",
            "mirror_max_age": "a number of seconds, 0 or more",
            "timeout": "a number of seconds, 0 or more",
            "mode": " or ".join(MODES),
            "object_files": " or ".join(OBJECT_FILES),
            "check_hash": "true or false",
            "progress": "true, false or auto",
            "table_defaults": "a mapping of table name to conditions",
        }.get(name, "a string")
        raise ConfigError(
            f"setting {name} = {value!r} is invalid; it must be {expected} "
            f"(set by argument, {ENV_PREFIX}{name.upper()} or config.toml)",
            setting=name,
            value=value,
        ) from None
    return value
