"""Request ids, JSON access lines, `/metrics`, `/healthz` and `/readyz`."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client, override_settings

from memberhub.core.health import heartbeat
from memberhub.core.request_log import JsonFormatter, RequestIdFilter
from tests.conftest import Api, database_held

pytestmark = pytest.mark.django_db


def _metric(text: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels` (0 when there is none)."""
    total = 0.0
    for line in text.splitlines():
        m = re.match(rf"{re.escape(name)}(?:\{{(.*)\}})? (\S+)$", line)
        if m and all(f'{k}="{v}"' in (m.group(1) or "") for k, v in labels.items()):
            total += float(m.group(2))
    return total


def _scrape(**extra: Any) -> str:
    r = Client().get("/metrics", **extra)
    assert r.status_code == 200, r.content
    return r.content.decode()


def test_it_answers_every_request_with_an_id_found_in_the_error_envelope() -> None:
    r = Client().get("/api/v1/members/1", HTTP_AUTHORIZATION="Bearer nope")
    assert r.status_code == 401
    rid = r["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid)
    assert r.json()["request_id"] == rid
    assert Client().get("/healthz")["X-Request-ID"] != rid  # a new one each time


def test_it_keeps_a_sane_request_id_from_the_caller_and_replaces_any_other() -> None:
    assert Client().get("/healthz", HTTP_X_REQUEST_ID="till-7:0042")["X-Request-ID"] == "till-7:0042"
    replaced = Client().get("/healthz", HTTP_X_REQUEST_ID="bad id\nInjected: yes")["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", replaced)


def test_it_logs_one_json_line_per_request_without_the_query_string(
        admin_api: Api, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="memberhub.access"):
        r = admin_api.get("/members", params={"phone": "13800138000"})
    records = [rec for rec in caplog.records if rec.name == "memberhub.access"]
    assert len(records) == 1
    RequestIdFilter().filter(records[0])  # as the configured handler does
    line = JsonFormatter().format(records[0])
    assert "\n" not in line and "13800138000" not in line
    data = json.loads(line)
    assert data["request_id"] == r["X-Request-ID"]
    assert data["method"] == "GET" and data["path"] == "/api/v1/members" and data["status"] == r.status_code
    assert data["route"] == "api/v1/members" and data["actor"].startswith("apikey:")
    assert data["duration_ms"] >= 0 and data["level"] == "INFO"


def test_it_counts_requests_by_route_and_status(admin_api: Api) -> None:
    before = _scrape()
    for _ in range(3):
        admin_api.get("/members/999999")
    after = _scrape()
    labels = {"route": "api/v1/members/<member_id>", "status": "404"}
    name = "memberhub_http_requests_total"
    assert _metric(after, name, **labels) - _metric(before, name, **labels) == 3
    assert _metric(after, "memberhub_http_request_duration_seconds_count", route=labels["route"]) >= 3


def test_it_counts_earns_and_checkouts_once_each(admin_api: Api, stores: Any,
                                                 django_capture_on_commit_callbacks: Any) -> None:
    before = _scrape()
    body = {"channel": "offline", "order_no": "M-1", "paid_fen": 12_000, "store": "SH"}
    line = {"line_id": "L1", "sku": "SKU-A", "category": "food", "qty": 1, "unit_price_fen": 6000}
    till = {"channel": "offline", "store": "SH", "order_no": "CO-1", "lines": [line]}
    with django_capture_on_commit_callbacks(execute=True):
        assert admin_api.post("/loyalty/purchases", body).status_code == 201
        assert admin_api.post("/loyalty/purchases", body).status_code == 200  # a replay: not a second earn
        assert admin_api.post("/checkout", till).status_code == 201
        assert admin_api.post("/checkout", till).status_code == 200  # a replay
    after = _scrape()
    # the checkout's purchase is an earn too
    assert _metric(after, "memberhub_earns_total") - _metric(before, "memberhub_earns_total") == 2
    assert _metric(after, "memberhub_checkouts_total") - _metric(before, "memberhub_checkouts_total") == 1


@pytest.mark.django_db(transaction=True)
def test_it_counts_requests_the_database_could_not_serve(admin_api: Api, stores: Any) -> None:
    from memberhub.loyalty.models import PointsAccount

    member = admin_api.post("/members", {"phone": "13800138111"}).json()
    earn = {"member_id": member["id"], "channel": "offline", "store": "SH", "paid_fen": 100}
    assert admin_api.post("/loyalty/purchases", {**earn, "order_no": "L-0"}).status_code == 201
    before = _scrape()
    with database_held(f"SELECT id FROM {PointsAccount._meta.db_table} WHERE member_id = %s FOR UPDATE",
                       [member["id"]]):
        r = admin_api.post("/loyalty/purchases", {**earn, "order_no": "L-1"})
    assert r.status_code == 503
    after = _scrape()
    name = "memberhub_database_errors_total"
    assert _metric(after, name, kind="locked") - _metric(before, name, kind="locked") == 1


def test_it_serves_metrics_to_this_host_or_with_the_token_only() -> None:
    assert Client().get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 403
    with override_settings(METRICS_TOKEN="s3cret-metrics-token"):
        assert Client().get("/metrics").status_code == 403  # a token is set: loopback is not enough
        assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
        ok = Client().get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer s3cret-metrics-token")
        assert ok.status_code == 200 and b"memberhub_http_requests_total" in ok.content


def test_healthz_answers_without_the_database() -> None:
    r = Client().get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_readyz_needs_the_database_the_migrations_and_a_live_job_consumer() -> None:
    r = Client().get("/readyz")  # the tests run jobs inline: no consumer to wait for
    assert r.status_code == 200 and r.json()["ready"] is True
    assert r.json()["checks"]["job_consumer"] == {"ok": True, "mode": "inline"}
    queued = {**_huey(), "immediate": False}
    with override_settings(HUEY=queued):
        r = Client().get("/readyz")
        assert r.status_code == 503 and r.json()["checks"]["job_consumer"]["ok"] is False
        assert r.json()["checks"]["database"] == {"ok": True} and r.json()["checks"]["migrations"] == {"ok": True}
        heartbeat()
        r = Client().get("/readyz")
        assert r.status_code == 200, r.json()
        assert _metric(_scrape(), "memberhub_jobs_consumer_heartbeat_age_seconds") < 60


def test_check_warns_when_jobs_wait_and_no_consumer_reports(capsys: pytest.CaptureFixture[str]) -> None:
    from huey.contrib.djhuey import HUEY

    with override_settings(HUEY={**_huey(), "immediate": False}):
        call_command("check")
        assert "memberhub.W002" not in capsys.readouterr().err  # nothing waits: nothing to say
        HUEY.storage.enqueue(b"a job nobody runs")
        try:
            call_command("check")
        finally:
            HUEY.storage.flush_queue()
    assert "memberhub.W002" in capsys.readouterr().err


def _huey() -> dict[str, Any]:
    from django.conf import settings

    return dict(settings.HUEY)
