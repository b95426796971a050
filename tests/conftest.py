"""Shared fixtures: stores, staff of every role, API keys, and an API client helper."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.test import Client

from memberhub.access.principal import Principal, system_principal
from memberhub.access.roles import ALL_CAPS


class Api:
    """A thin JSON client for /api/v1 with a bearer key or a logged-in session."""

    def __init__(self, client: Client, token: str | None = None) -> None:
        self.client = client
        self.headers: dict[str, str] = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}

    def _call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, **kw: Any) -> Any:
        extra = {**self.headers, **{f"HTTP_{k.upper().replace('-', '_')}": v for k, v in (headers or {}).items()}}
        fn = getattr(self.client, method)
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if method in ("get", "delete"):
            return fn(f"/api/v1{path}", data=kw.get("params"), **extra)
        return fn(f"/api/v1{path}", data=body, content_type=kw.get("content_type", "application/json"), **extra)

    def get(self, path: str, **kw: Any) -> Any:
        return self._call("get", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self._call("post", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self._call("patch", path, body, **kw)


@contextmanager
def database_held(pg_lock: str, params: list[Any] | None = None) -> Iterator[None]:
    """Another connection holds what the next request must wait for, and Django's connection
    gives up waiting after 0.2 s: SQLite's write lock (busy timeout) or, on PostgreSQL, the
    lock `pg_lock` takes (lock timeout). The lock is let go on leaving."""
    from django.db import connection, connections

    with connection.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout = 200" if connection.vendor == "sqlite" else "SET lock_timeout = '200ms'")
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            if other.vendor == "sqlite":
                cursor.execute("BEGIN IMMEDIATE")
            else:
                other.set_autocommit(False)
                cursor.execute(pg_lock, params or [])
        yield
    finally:
        other.close()  # rolls back: the lock is let go
        connection.close()  # the next request opens one with the configured timeouts


def race_posts(token: str, path: str, bodies: list[Any], *, timeout: float = 180) -> list[Any]:
    """POST each body at once from its own thread and connection (released together by a
    barrier); returns the responses in order. A crash in a thread fails the caller."""
    import threading

    from django.db import connection

    barrier = threading.Barrier(len(bodies))
    results: list[Any] = [None] * len(bodies)

    def run(i: int) -> None:
        try:
            api = Api(Client(), token)
            barrier.wait(10)
            results[i] = api.post(path, bodies[i])
        except Exception as exc:  # a crash must fail the test, not vanish with the thread
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not [r for r in results if isinstance(r, Exception)], results
    return results


@pytest.fixture
def stores(db: Any) -> dict[str, Any]:
    from memberhub.stores.models import Store

    return {
        code: Store.objects.create(code=code, name=name)
        for code, name in (("SH", "上海南京路店"), ("BJ", "北京三里屯店"), ("ONLINE", "官方商城"))
    }


@pytest.fixture
def system() -> Principal:
    return system_principal("test")


@pytest.fixture
def make_key(stores: dict[str, Any], system: Principal) -> Callable[..., str]:
    from memberhub.access.services import apikey_create

    def make(scopes: list[str] | None = None, store_codes: list[str] | None = None) -> str:
        _key, plain = apikey_create(actor=system, name="test", scopes=scopes or sorted(ALL_CAPS), store_codes=store_codes)
        return plain

    return make


@pytest.fixture
def admin_api(make_key: Callable[..., str], client: Client) -> Api:
    return Api(client, make_key())


@pytest.fixture
def make_staff(stores: dict[str, Any]) -> Callable[..., Any]:
    from memberhub.access.services import staff_create

    def make(role: str, store_codes: list[str] | None = None, username: str | None = None) -> Any:
        return staff_create(actor=None, username=username or f"{role}-{'-'.join(store_codes or ['all'])}",
                            password="pw-123456789", role=role, store_codes=store_codes)

    return make


@pytest.fixture
def staff_api(make_staff: Callable[..., Any]) -> Callable[..., Api]:
    def make(role: str, store_codes: list[str] | None = None) -> Api:
        client = Client()
        client.force_login(make_staff(role, store_codes))
        return Api(client)

    return make


@pytest.fixture(autouse=True)
def _no_server_errors(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Fail any test during which the API answered 500 (or another 5xx than 503, which says the
    database is down or busy), whatever the test itself asserted (threads included: the test
    client is patched at class level)."""
    errors: list[str] = []
    original = Client.request

    def request(self: Client, **kw: Any) -> Any:
        response = original(self, **kw)
        if response.status_code >= 500 and response.status_code != 503:  # 503: the database's outage, not a bug
            errors.append(f"{kw.get('REQUEST_METHOD')} {kw.get('PATH_INFO')} -> {response.status_code}: "
                          f"{response.content[:300]!r}")
        return response

    monkeypatch.setattr(Client, "request", request)
    yield
    assert not errors, "server errors: " + "; ".join(errors)


# --- run-level guards used by scripts/test -------------------------------------------------

def pytest_sessionstart(session: Any) -> None:
    """Fail fast when the suite runs on another database than the one it was meant for."""
    import os

    expected = os.environ.get("MEMBERHUB_EXPECT_DB")
    if expected:
        from django.conf import settings

        engine = settings.DATABASES["default"]["ENGINE"]
        if expected not in engine:
            raise pytest.UsageError(f"expected the {expected} database, settings use {engine}")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    import os

    skipped = terminalreporter.stats.get("skipped", [])
    if os.environ.get("MEMBERHUB_FAIL_ON_SKIP") == "1" and skipped:
        terminalreporter.write_line(f"FAIL: {len(skipped)} test(s) skipped; every suite must run here", red=True)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    import os

    if os.environ.get("MEMBERHUB_FAIL_ON_SKIP") == "1" and session.config.pluginmanager.get_plugin("terminalreporter"):
        stats = session.config.pluginmanager.get_plugin("terminalreporter").stats
        if stats.get("skipped") and session.exitstatus == 0:
            session.exitstatus = 1
