"""/api/v1/analytics: runs in the background, snapshots, health, exports, roles and store scope."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from openpyxl import load_workbook

from memberhub.analytics.models import AnalyticsRun, MemberSnapshot
from tests.analytics.conftest import Shop
from tests.conftest import Api

CLV = {"kind": "clv", "params": {"observation_end": "2024-12-31"}}


@pytest.fixture
def current(crowd: Shop, admin_api: Api, run_jobs: Any) -> dict[str, Any]:
    r = run_jobs(admin_api.post, "/analytics/runs", CLV)
    assert r.status_code == 202, r.content
    return r.json()


def test_a_run_requested_over_the_api_executes_in_the_background(current: dict[str, Any], admin_api: Api) -> None:
    got = admin_api.get(f"/analytics/runs/{current['id']}").json()
    assert got["status"] == "succeeded" and got["is_current"]
    assert got["params"]["horizon_days"] == 365.0 and got["fitted"]["purchase_model"]["name"] == "bgnbd"
    assert got["counts"]["snapshots"] == MemberSnapshot.objects.filter(run_id=got["id"]).count()
    assert admin_api.get("/analytics/runs").json()["items"][0]["id"] == got["id"]


def test_snapshots_are_paginated_filtered_and_masked(current: dict[str, Any], admin_api: Api, make_key: Any,
                                                     client: Any) -> None:
    total = MemberSnapshot.objects.filter(run_id=current["id"]).count()
    seen, cursor = [], None
    while True:
        page = admin_api.get("/analytics/snapshots", params={"limit": 20, **({"cursor": cursor} if cursor else {})}).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == total == len({s["member"]["id"] for s in seen})
    stage = seen[0]["stage"]
    only = admin_api.get("/analytics/snapshots", params={"stage": stage, "limit": 200}).json()["items"]
    assert only and all(s["stage"] == stage for s in only)
    rich = admin_api.get("/analytics/snapshots", params={"min_clv_fen": 100000, "limit": 200}).json()["items"]
    assert all(s["clv_fen"] >= 100000 for s in rich)
    analyst = Api(client, make_key(["analytics:read"]))
    first = analyst.get("/analytics/snapshots", params={"limit": 5}).json()["items"]
    assert all(s["member"]["pii_masked"] for s in first)


def test_a_members_snapshot(current: dict[str, Any], admin_api: Api, crowd: Shop) -> None:
    m1 = crowd.members["m1"].pk
    r = admin_api.get(f"/analytics/members/{m1}/snapshot")
    assert r.status_code == 200 and r.json()["member"]["id"] == m1 and r.json()["frequency"] == 6
    assert admin_api.get(f"/analytics/members/{crowd.members['m8'].pk}/snapshot").status_code == 404  # erased
    assert admin_api.get("/analytics/members/999999/snapshot").status_code == 404
    assert admin_api.get(f"/analytics/members/{m1}/snapshot", params={"kind": "rfm"}).status_code == 404  # no rfm run


def test_a_store_scoped_caller_sees_only_their_stores_members(current: dict[str, Any], make_key: Any, client: Any,
                                                              crowd: Shop) -> None:
    bj = Api(client, make_key(["analytics:read", "members:read"], store_codes=["BJ"]))
    items = bj.get("/analytics/snapshots", params={"limit": 200}).json()["items"]
    assert [s["member"]["id"] for s in items] == [crowd.members["m6"].pk]
    assert bj.get(f"/analytics/members/{crowd.members['m1'].pk}/snapshot").status_code == 404
    h = bj.get("/analytics/health", params={"from": "2024-01-01", "to": "2024-12-31"}).json()
    assert h["period"]["stores"] == ["BJ"] and h["sales"]["net_fen"] == 9900 + 4400
    assert bj.get("/analytics/health", params={"store": "SH"}).status_code == 403


def test_health_over_the_api(shop: Shop, admin_api: Api) -> None:
    r = admin_api.get("/analytics/health", params={"from": "2024-03-01", "to": "2024-03-31", "store": "SH"})
    assert r.status_code == 200, r.content
    h = r.json()
    # March, store SH: m1 12000 (15th), m2 5000 (1st), m8 5000 (3rd, erased but a real sale)
    assert h["sales"]["purchases"] == 3 and h["sales"]["net_fen"] == 22000
    assert admin_api.get("/analytics/health", params={"from": "2024-04-01", "to": "2024-03-01"}).status_code == 422
    assert admin_api.get("/analytics/health", params={"store": "NOPE"}).status_code == 422
    assert admin_api.get("/analytics/health", params={"channel": "fax"}).status_code == 422


def test_a_health_run_is_stored_with_its_result(shop: Shop, admin_api: Api, run_jobs: Any) -> None:
    r = run_jobs(admin_api.post, "/analytics/runs", {"kind": "health", "params": {"date_from": "2024-01-01",
                                                                                  "date_to": "2024-12-31"}})
    run = admin_api.get(f"/analytics/runs/{r.json()['id']}").json()
    assert run["status"] == "succeeded" and run["result"]["members"]["total"] == 6  # 8 - merged - erased
    assert not run["is_current"]


def test_roles_and_bad_requests(shop: Shop, make_key: Any, client: Any, staff_api: Any, admin_api: Api) -> None:
    members_only = Api(client, make_key(["members:read"]))
    for path in ("/analytics/snapshots", "/analytics/health", "/analytics/export", "/analytics/runs",
                 "/analytics/runs/1", f"/analytics/members/{shop.members['m1'].pk}/snapshot"):
        assert members_only.get(path).status_code == 403, path
    assert members_only.post("/analytics/runs", {"kind": "health"}).status_code == 403
    analyst = staff_api("analyst")
    assert analyst.get("/analytics/health").status_code == 200
    # replacing the snapshots campaigns target also needs programme:manage
    assert analyst.post("/analytics/runs", CLV).status_code == 403
    assert staff_api("marketing").post("/analytics/runs", {"kind": "rfm"}).status_code == 202
    assert staff_api("cashier", ["SH"]).get("/analytics/health").status_code == 403
    assert admin_api.post("/analytics/runs", {"kind": "clv", "params": {"horizon_days": -1}}).status_code == 422
    assert admin_api.post("/analytics/runs", {"kind": "clv", "params": {"nope": 1}}).status_code == 422
    assert admin_api.post("/analytics/runs", {"kind": "magic"}).status_code == 422
    assert admin_api.get("/analytics/runs/424242").status_code == 404
    assert admin_api.get("/analytics/snapshots", params={"cursor": "garbage"}).status_code == 422
    assert admin_api.get("/analytics/snapshots", params={"limit": 0}).status_code == 422
    assert Api(client).get("/analytics/health").status_code == 401


def test_snapshot_export_parses_back_as_csv_and_excel(current: dict[str, Any], admin_api: Api) -> None:
    n = MemberSnapshot.objects.filter(run_id=current["id"]).count()
    r = admin_api.get("/analytics/export", params={"kind": "snapshots", "format": "csv"})
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    text = b"".join(r.streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == n
    by_id = {int(row["member_id"]): row for row in rows}
    snap = MemberSnapshot.objects.filter(run_id=current["id"]).first()
    assert by_id[snap.member_id]["segment"] == snap.segment
    assert int(by_id[snap.member_id]["clv_fen"]) == snap.clv_fen
    x = admin_api.get("/analytics/export", params={"kind": "snapshots", "format": "xlsx", "stage": snap.stage})
    assert x.status_code == 200
    ws = load_workbook(io.BytesIO(x.content), read_only=True).active
    table = list(ws.iter_rows(values_only=True))
    assert table[0][0] == "member_id" and len(table) - 1 == MemberSnapshot.objects.filter(
        run_id=current["id"], stage=snap.stage).count()


def test_health_export_parses_back(shop: Shop, admin_api: Api) -> None:
    params = {"kind": "health", "from": "2024-03-01", "to": "2024-03-31"}
    r = admin_api.get("/analytics/export", params={**params, "format": "csv"})
    rows = list(csv.reader(io.StringIO(b"".join(r.streaming_content).decode("utf-8-sig"))))
    assert rows[0] == ["section", "figure", "value"]
    assert ["sales", "net_fen", "22000"] in rows  # March: m1 12000, m2 5000, m8 5000
    x = admin_api.get("/analytics/export", params={**params, "format": "xlsx"})
    table = list(load_workbook(io.BytesIO(x.content), read_only=True).active.iter_rows(values_only=True))
    assert ("sales", "net_fen", 22000) in table


def test_no_current_run_means_no_snapshots(shop: Shop, admin_api: Api) -> None:
    assert admin_api.get("/analytics/snapshots").json() == {"items": [], "next_cursor": None}
    assert AnalyticsRun.objects.count() == 0
