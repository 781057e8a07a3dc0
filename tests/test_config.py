"""Settings: arguments > environment > profile > config.toml > defaults."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import neurotrove as nt
from neurotrove.config import Settings
from neurotrove.errors import ConfigError


@pytest.fixture
def config_file(isolated_settings: Path) -> Path:
    folder = isolated_settings / "config"
    folder.mkdir(exist_ok=True)
    return folder / "config.toml"


def test_precedence(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_file.write_text(
        'hash_workers = 3\ncheck_hash = true\nroot = "/from/toml"\n'
        '[profiles.lab]\nhash_workers = 5\ndb = "postgresql://lab@db/trove"\n'
    )
    settings = Settings.load()
    assert (settings.hash_workers, settings.check_hash) == (3, True)
    monkeypatch.setenv("NEUROTROVE_PROFILE", "lab")
    assert Settings.load().hash_workers == 5
    assert Settings.load().db == "postgresql://lab@db/trove"
    monkeypatch.setenv("NEUROTROVE_HASH_WORKERS", "7")
    assert Settings.load().hash_workers == 7
    assert Settings.load(hash_workers=9).hash_workers == 9


def test_environment_root_beats_toml(config_file: Path) -> None:
    config_file.write_text('root = "/from/toml"\n')
    assert Settings.load().root.name == "default-trove"  # NEUROTROVE_ROOT from the fixture


def test_toml_root_is_used_without_environment(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NEUROTROVE_ROOT")
    config_file.write_text('root = "~/lab-data"\n')
    assert Settings.load().root == Path("~/lab-data").expanduser()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hash_workers = 'many'\n", "setting hash_workers = 'many' is invalid"),
        ("colour = 'red'\n", "unknown key(s) colour in"),
        ("[profiles.lab]\ncolour = 1\n", "unknown key(s) colour in profile lab"),
        ("root = \n", "is not valid TOML"),
        ("[defaults]\nsessions = 1\n", "[defaults.sessions] in"),
    ],
)
def test_bad_configuration_is_reported(
    config_file: Path, text: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file.write_text(text)
    if "profiles" in text:
        monkeypatch.setenv("NEUROTROVE_PROFILE", "lab")
    with pytest.raises(ConfigError) as caught:
        Settings.load()
    assert message in str(caught.value)


def test_missing_profile(config_file: Path) -> None:
    config_file.write_text("[profiles.lab]\nhash_workers = 2\n")
    with pytest.raises(ConfigError, match="profile 'home' is not in .*known profiles: lab"):
        Settings.load(profile="home")


def test_bad_environment_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEUROTROVE_CHECK_HASH", "maybe")
    with pytest.raises(ConfigError, match="NEUROTROVE_CHECK_HASH"):
        Settings.load()


def test_settings_are_read_when_asked_not_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEUROTROVE_HASH_WORKERS", "2")
    assert Settings.load().hash_workers == 2
    monkeypatch.setenv("NEUROTROVE_HASH_WORKERS", "6")
    assert Settings.load().hash_workers == 6


def test_connect_without_argument_opens_the_default_trove(isolated_settings: Path) -> None:
    with nt.connect() as trove:
        assert trove.root == (isolated_settings / "default-trove").resolve()
        assert (trove.root / ".trove" / "catalog.db").is_file()
        trove.register_session("KS005", "2019-04-01")
    with nt.connect() as again:
        assert list(again.search()["subject"]) == ["KS005"]


def test_connect_to_a_missing_trove_without_create(tmp_path: Path) -> None:
    from neurotrove.errors import NotFoundError

    with pytest.raises(NotFoundError, match="trove init"):
        nt.connect(tmp_path / "nothing", create=False)


def test_connect_to_a_server_url_gives_a_remote_trove_without_touching_the_network(
    tmp_path: Path,
) -> None:
    trove = nt.connect("HTTP://LabServer:8000/", mode="local")
    assert isinstance(trove, nt.Trove)
    assert (trove.url, trove.mode, trove.username) == ("http://labserver:8000", "local", None)
    assert trove.root == (Path(os.environ["NEUROTROVE_CACHE_DIR"]) / "labserver_8000").resolve()
    with pytest.raises(nt.NotFoundError, match="no copy of the catalogue"):
        trove.search()
    with pytest.raises(ConfigError, match="is a server"):
        nt.connect("http://labserver:8000", db="sqlite:///x.db")
    with pytest.raises(ConfigError, match="username= is for servers"):
        nt.connect(tmp_path, username="alice")
    with pytest.raises(ConfigError, match="mode = 'nearby' is invalid"):
        nt.connect("http://labserver:8000", mode="nearby")


def test_remote_settings_are_typed_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEUROTROVE_DOWNLOAD_WORKERS", "8")
    monkeypatch.setenv("NEUROTROVE_MIRROR_MAX_AGE", "2.5")
    settings = Settings.load(download_retries=0)
    assert (settings.download_workers, settings.mirror_max_age, settings.download_retries) == (
        8,
        2.5,
        0,
    )
    monkeypatch.setenv("NEUROTROVE_TIMEOUT", "soon")
    with pytest.raises(ConfigError, match="NEUROTROVE_TIMEOUT"):
        Settings.load()
