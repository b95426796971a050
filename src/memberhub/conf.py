"""Strict parsers for environment settings.

A wrong value stops the start with a message that names the variable; a silent
fallback to a default would hide a typo in production.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

PREFIX = "MEMBERHUB_"


class ConfigError(Exception):
    """A setting is missing or malformed; the message is shown to whoever starts the service."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_str(name: str, default: str | None = None, *, env: Mapping[str, str] = os.environ) -> str | None:
    value = env.get(name)
    if value is None or value == "":
        return default
    return value


def env_bool(name: str, default: bool, *, env: Mapping[str, str] = os.environ) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    low = raw.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean: use one of 1/0, true/false, yes/no, on/off")


def env_int(
    name: str, default: int, *, minimum: int | None = None, maximum: int | None = None,
    env: Mapping[str, str] = os.environ,
) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name}={value} is below the minimum {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name}={value} is above the maximum {maximum}")
    return value


def env_choice(name: str, default: str, choices: tuple[str, ...], *, env: Mapping[str, str] = os.environ) -> str:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value not in choices:
        raise ConfigError(f"{name}={raw!r} is not one of: {', '.join(choices)}")
    return value


def env_list(name: str, default: list[str], *, env: Mapping[str, str] = os.environ) -> list[str]:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [part.strip() for part in raw.split(",") if part.strip()]


def env_parsed(name: str, parse: Callable[[str], T], default: T, *, env: Mapping[str, str] = os.environ) -> T:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return parse(raw)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{name}={raw!r} is invalid: {exc}") from None


def default_data_dir() -> Path:
    """The user's data directory (XDG on Linux), where the embedded database lives."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "memberhub"


PRIVATE_UMASK = 0o077


def data_dir_private(path: Path) -> None:
    """Make the data directory 0700 and everything in it readable by its owner only.

    The SQLite database, its WAL, the task queue and the development keys hold session keys
    and encryption keys: a copy of the database read by another local user logged in as an
    admin. A directory made by an older version (0755, files 0644) is tightened in place; a
    file the process does not own (a shared dir by mistake) is left as it is."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    for root, dirs, files in os.walk(path):
        for name in (root, *(os.path.join(root, n) for n in (*dirs, *files))):
            try:
                st = os.lstat(name)
                if st.st_mode & 0o077 and not os.path.islink(name):
                    os.chmod(name, st.st_mode & 0o700)
            except OSError:
                pass


def persistent_secret(path: Path, make: Callable[[], str]) -> str:
    """Read a development secret from the data dir, creating it once.

    Development keeps working across restarts without the operator inventing keys;
    production refuses this path (see settings) and demands explicit secrets. Two processes
    starting at once on a fresh data dir must agree on one key and never read a half-written
    file, so the key is written to a temporary file and hard-linked into place (atomic, and
    it fails instead of overwriting when the other process won).
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(make())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process created it first: use theirs
        finally:
            tmp.unlink()
    value = path.read_text(encoding="utf-8").strip()
    if not value:
        raise ConfigError(f"{path} is empty: delete it to have a new development secret made")
    return value


def random_token() -> str:
    return secrets.token_urlsafe(48)


# Placeholders people paste into production; a key containing one was typed, not generated.
KNOWN_WEAK = ("changeme", "change-me", "change_me", "django-insecure", "placeholder", "example", "password",
              "secret-key", "secretkey", "your-", "xxxxxxxx")


def secret_weakness(value: str, *, min_length: int, min_distinct: int = 10) -> str | None:
    """Why a production secret looks typed rather than generated, or None. Heuristics, meant to
    catch "changeme", a short word or a repeated pattern, which a generated key never is: a
    random 64-character token has ~40 distinct characters and almost no repeated pairs."""
    if len(value) < min_length:
        return f"it is shorter than {min_length} characters"
    if len(set(value)) < min_distinct:
        return f"it has fewer than {min_distinct} distinct characters"
    pairs = [value[i:i + 2] for i in range(len(value) - 1)]
    if len(set(pairs)) * 2 < len(pairs):
        return "it repeats a pattern"
    low = value.lower()
    if any(word in low for word in KNOWN_WEAK):
        return "it contains a known default or placeholder"
    return None


def fernet_weakness(key: str) -> str | None:
    """A Fernet key is 32 random bytes; one with few distinct bytes (all zeros, "AAAA…=") was made
    by hand. Random 32 bytes have ~30 distinct values; fewer than 16 is about impossible."""
    import base64

    raw = base64.urlsafe_b64decode(key.encode())
    if len(set(raw)) < 16:
        return "it is not random (too few distinct bytes)"
    return None


def allowed_hosts_problem(hosts: list[str]) -> str | None:
    wild = [h for h in hosts if "*" in h]
    if wild:
        return f"it holds a wildcard ({', '.join(wild)}): list the host names the service answers to"
    return None
