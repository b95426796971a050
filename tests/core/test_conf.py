"""Strict environment parsers: a wrong value stops the start and names the variable."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from memberhub.conf import (
    ConfigError,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_parsed,
    env_str,
    persistent_secret,
)


@pytest.mark.parametrize("raw,expected", [("1", True), ("TRUE", True), (" yes ", True), ("on", True),
                                          ("0", False), ("False", False), ("no", False), ("off", False)])
def test_it_parses_booleans(raw: str, expected: bool) -> None:
    assert env_bool("X", not expected, env={"X": raw}) is expected


@pytest.mark.parametrize("raw", ["maybe", "2", "y e s", "t"])
def test_it_refuses_a_boolean_it_does_not_know(raw: str) -> None:
    with pytest.raises(ConfigError, match="X="):
        env_bool("X", False, env={"X": raw})


def test_it_uses_defaults_for_missing_or_empty_values() -> None:
    assert env_bool("X", True, env={}) is True
    assert env_bool("X", True, env={"X": ""}) is True
    assert env_int("X", 7, env={"X": ""}) == 7
    assert env_str("X", "d", env={}) == "d"
    assert env_list("X", ["a"], env={"X": "  "}) == ["a"]


def test_it_parses_whole_numbers_within_bounds() -> None:
    assert env_int("X", 0, minimum=1, maximum=10, env={"X": " 5 "}) == 5


def test_it_refuses_a_number_below_the_minimum() -> None:
    with pytest.raises(ConfigError, match="below the minimum 1"):
        env_int("MEMBERHUB_SQLITE_TIMEOUT", 30, minimum=1, env={"MEMBERHUB_SQLITE_TIMEOUT": "0"})


def test_it_refuses_a_number_above_the_maximum() -> None:
    with pytest.raises(ConfigError, match="above the maximum 10"):
        env_int("X", 1, maximum=10, env={"X": "11"})


@pytest.mark.parametrize("raw", ["ten", "1.5", "0x10"])
def test_it_refuses_a_number_that_is_not_whole(raw: str) -> None:
    with pytest.raises(ConfigError, match="not a whole number"):
        env_int("X", 1, env={"X": raw})


def test_it_refuses_a_choice_outside_the_list() -> None:
    assert env_choice("MEMBERHUB_ENV", "development", ("development", "production"),
                      env={"MEMBERHUB_ENV": "Production"}) == "production"
    with pytest.raises(ConfigError, match="development, production"):
        env_choice("MEMBERHUB_ENV", "development", ("development", "production"), env={"MEMBERHUB_ENV": "prod"})


def test_it_splits_lists_and_drops_blanks() -> None:
    assert env_list("X", [], env={"X": "a.cn, b.cn,,"}) == ["a.cn", "b.cn"]


def test_it_wraps_parse_errors() -> None:
    assert env_parsed("X", float, 0.0, env={"X": "1.5"}) == 1.5
    with pytest.raises(ConfigError, match="X='abc' is invalid"):
        env_parsed("X", float, 0.0, env={"X": "abc"})


def test_it_creates_a_development_secret_once_and_privately(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "secret_key"
    first = persistent_secret(path, lambda: "first-value")
    second = persistent_secret(path, lambda: "second-value")
    assert first == second == "first-value"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_it_makes_one_complete_secret_when_many_processes_start_at_once(tmp_path: Path) -> None:
    import multiprocessing

    from memberhub.conf import persistent_secret

    path = tmp_path / "secret_key"
    with multiprocessing.get_context("fork").Pool(8) as pool:
        seen = pool.starmap(_read_secret, [(str(path),)] * 64)
    assert len(set(seen)) == 1 and seen[0]  # everyone got the same, non-empty key
    assert persistent_secret(path, lambda: "other") == seen[0]
    assert list(tmp_path.iterdir()) == [path]  # no temporary files left behind


def test_it_refuses_an_empty_secret_file(tmp_path: Path) -> None:
    from memberhub.conf import ConfigError, persistent_secret

    (tmp_path / "secret_key").write_text("")
    with pytest.raises(ConfigError, match="empty"):
        persistent_secret(tmp_path / "secret_key", lambda: "x")


def _read_secret(path: str) -> str:
    import secrets as _secrets
    from pathlib import Path

    from memberhub.conf import persistent_secret

    return persistent_secret(Path(path), lambda: _secrets.token_hex(16))
