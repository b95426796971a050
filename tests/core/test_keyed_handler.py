"""Keyed API requests take the shorter handler and get the same answers as through Django's."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections

from memberhub.core import keyed_handler
from memberhub.core.keyed_handler import is_keyed_api, keyed_middleware, with_keyed_api_handler
from memberhub.members.models import Member

pytestmark = pytest.mark.django_db

WSGIApp = Callable[..., Any]


@pytest.fixture
def apps() -> Iterator[tuple[WSGIApp, WSGIApp]]:
    """(Django's handler, the application with the keyed handler in front). As the test
    client does, connections are not closed between requests (the test's transaction)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        django_app = get_wsgi_application()
        yield django_app, with_keyed_api_handler(django_app)
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def call(app: WSGIApp, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
         query: str = "") -> tuple[int, dict[str, str], Any]:
    raw = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": query,
               "SERVER_NAME": "testserver", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
               "HTTP_HOST": "testserver", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(raw),
               "wsgi.errors": sys.stderr, "wsgi.version": (1, 0), "wsgi.multithread": False,
               "wsgi.multiprocess": True, "wsgi.run_once": False}
    if raw:
        environ |= {"CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(raw))}
    environ |= {"HTTP_" + k.upper().replace("-", "_"): v for k, v in (headers or {}).items()}
    started: list[Any] = []
    result = app(environ, lambda status, hdrs, exc=None: started.append((status, hdrs)))
    try:
        content = b"".join(result)
    finally:
        result.close()  # type: ignore[attr-defined]
    status, hdrs = started[0]
    answer = json.loads(content) if content else None
    # each request has its own id (header and error envelope): all else must be the same both ways
    assert dict(hdrs).get("X-Request-ID")
    if isinstance(answer, dict) and "request_id" in answer:
        assert answer.pop("request_id") == dict(hdrs)["X-Request-ID"]
    return int(status.split()[0]), {k: v for k, v in hdrs if k != "X-Request-ID"}, answer


def _same(a: tuple[int, dict[str, str], Any], b: tuple[int, dict[str, str], Any], *, ignore: tuple[str, ...] = ()) -> None:
    assert a[0] == b[0]
    assert a[1] == b[1]  # every header, value for value
    if isinstance(a[2], dict):
        assert {k: v for k, v in a[2].items() if k not in ignore} == {k: v for k, v in b[2].items() if k not in ignore}
    else:
        assert a[2] == b[2]


@pytest.fixture
def member() -> Member:
    from django.utils import timezone

    from memberhub.domain.member_identity import card_code_new

    return Member.objects.create(card_code=card_code_new(), registered_at=timezone.now())


def _order(member: Member, order_no: str, paid: int = 12_800, store: str = "SH") -> dict[str, Any]:
    return {"member_id": member.pk, "channel": "offline", "order_no": order_no, "store": store, "paid_fen": paid,
            "lines": [{"sku": "A", "category": "food", "paid_fen": paid}]}


PURCHASES = "/api/v1/loyalty/purchases"


def test_an_earn_gets_the_same_answer_both_ways(apps: tuple[WSGIApp, WSGIApp], make_key: Callable[..., str],
                                                member: Member) -> None:
    django_app, app = apps
    key = {"Authorization": f"Bearer {make_key()}"}
    created = [call(a, "POST", PURCHASES, _order(member, f"K-{n}"), key) for n, a in (("D", django_app), ("K", app))]
    assert created[0][0] == 201 and created[0][2]["points"] > 0
    _same(*created, ignore=("id", "order_no", "at", "tier_change"))
    # the same order again: its first answer (200, replayed), then a different amount: 409
    _same(call(django_app, "POST", PURCHASES, _order(member, "K-D"), key),
          call(app, "POST", PURCHASES, _order(member, "K-D"), key), ignore=("id", "at"))
    conflict = [call(a, "POST", PURCHASES, _order(member, "K-D", paid=100), key) for a in (django_app, app)]
    assert conflict[0][0] == 409 and conflict[0][2]["code"] == "order_exists"
    _same(*conflict, ignore=("detail",))


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"channel": "offline", "order_no": "X-1", "store": "SH"}, 422, "validation_error"),  # no amount
    (b"{not json", 400, "malformed_json"),
    ({"channel": "offline", "order_no": "X-2", "store": "NOPE", "paid_fen": 100}, 422, "store_not_found"),
])
def test_refusals_are_the_same_both_ways(apps: tuple[WSGIApp, WSGIApp], make_key: Callable[..., str],
                                         body: Any, status: int, code: str) -> None:
    django_app, app = apps
    key = {"Authorization": f"Bearer {make_key()}"}
    answers = [call(a, "POST", PURCHASES, body, key) for a in (django_app, app)]
    assert answers[0][0] == status and answers[0][2]["code"] == code
    _same(*answers)


@pytest.mark.parametrize(("scopes", "headers", "status", "code"), [
    (None, {"Authorization": "Bearer mh_000000000000_nonsense"}, 401, "not_authenticated"),
    (["members:read"], {}, 403, "permission_denied"),
    (None, {"Accept-Language": "en"}, 404, "not_found"),
])
def test_the_key_and_the_language_are_honoured_both_ways(
        apps: tuple[WSGIApp, WSGIApp], make_key: Callable[..., str], scopes: list[str] | None,
        headers: dict[str, str], status: int, code: str) -> None:
    django_app, app = apps
    headers = {"Authorization": f"Bearer {make_key(scopes)}", **headers}
    path = "/api/v1/nowhere" if code == "not_found" else PURCHASES
    body = None if code == "not_found" else {"channel": "offline", "order_no": "Y-1", "store": "SH", "paid_fen": 1}
    answers = [call(a, "POST", path, body, headers) for a in (django_app, app)]
    assert answers[0][0] == status and answers[0][2]["code"] == code
    if "Accept-Language" in headers:
        assert answers[1][1]["Content-Language"] == "en" and answers[1][2]["message"] == "Not found."
    _same(*answers)


def test_a_read_with_a_key_is_the_same_both_ways(apps: tuple[WSGIApp, WSGIApp], make_key: Callable[..., str],
                                                 member: Member) -> None:
    django_app, app = apps
    key = {"Authorization": f"Bearer {make_key()}"}
    answers = [call(a, "GET", f"/api/v1/members/{member.pk}", None, key) for a in (django_app, app)]
    assert answers[0][0] == 200 and answers[0][2]["id"] == member.pk
    _same(*answers)


def test_an_idempotency_key_still_replays(apps: tuple[WSGIApp, WSGIApp], make_key: Callable[..., str],
                                          member: Member) -> None:
    _django_app, app = apps
    headers = {"Authorization": f"Bearer {make_key()}", "Idempotency-Key": "till-7-0001"}
    first = call(app, "POST", PURCHASES, _order(member, "I-1"), headers)
    again = call(app, "POST", PURCHASES, _order(member, "I-1"), headers)
    assert first[0] == again[0] == 201 and again[2] == first[2]
    assert again[1].get("Idempotent-Replayed") == "true"


def test_only_keyed_api_requests_take_the_shorter_way() -> None:
    api = {"PATH_INFO": "/api/v1/members", "HTTP_AUTHORIZATION": "Bearer x"}
    assert is_keyed_api(api)
    assert not is_keyed_api({**api, "HTTP_IDEMPOTENCY_KEY": "k"})
    assert not is_keyed_api({"PATH_INFO": "/api/v1/members"})  # a browser session
    assert not is_keyed_api({**api, "PATH_INFO": "/admin/"})


def test_it_skips_only_the_middleware_it_names(settings: Any) -> None:
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "tests.somewhere.NewMiddleware"]
    kept = keyed_middleware(settings.MIDDLEWARE)
    assert "tests.somewhere.NewMiddleware" in kept  # a middleware added later still runs
    assert set(settings.MIDDLEWARE) - set(kept) == set(keyed_handler.SKIPPED)


def test_it_resolves_a_path_once(apps: tuple[WSGIApp, WSGIApp], make_key: Callable[..., str],
                                 member: Member) -> None:
    _django_app, app = apps
    key = {"Authorization": f"Bearer {make_key()}"}
    path = f"/api/v1/members/{member.pk}"
    call(app, "GET", path, None, key)
    hits = keyed_handler._resolve.cache_info().hits
    assert call(app, "GET", path, None, key)[0] == 200
    assert keyed_handler._resolve.cache_info().hits == hits + 1


def test_a_wrong_method_gets_the_envelope_both_ways(apps: tuple[WSGIApp, WSGIApp],
                                                    make_key: Callable[..., str]) -> None:
    django_app, app = apps
    key = {"Authorization": f"Bearer {make_key()}"}
    answers = [call(a, "DELETE", PURCHASES, None, key) for a in (django_app, app)]
    assert answers[0][0] == 405 and answers[0][2]["code"] == "method_not_allowed"
    _same(*answers)


def test_a_remembered_path_hands_each_request_its_own_kwargs(member: Member) -> None:
    from django.test import RequestFactory

    handler = keyed_handler.KeyedApiHandler()
    path = f"/api/v1/members/{member.pk}"
    request = RequestFactory().get(path)
    _view, _args, kwargs = handler.resolve_request(request)
    assert request.resolver_match.url_name == keyed_handler._resolve(path).url_name
    kwargs.clear()  # what a view middleware could do to its request's kwargs
    _view, _args, kwargs = handler.resolve_request(RequestFactory().get(path))
    assert kwargs and kwargs == keyed_handler._resolve(path).kwargs


def test_it_forgets_paths_when_the_url_table_changes(settings: Any, member: Member) -> None:
    keyed_handler._resolve(f"/api/v1/members/{member.pk}")
    assert keyed_handler._resolve.cache_info().currsize > 0
    settings.ROOT_URLCONF = "memberhub.urls"  # setting_changed, as a test swapping tables sends it
    assert keyed_handler._resolve.cache_info().currsize == 0
