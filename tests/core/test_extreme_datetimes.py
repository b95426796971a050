"""A time at the calendar's edge (year 1 or 9999 with an offset) has no UTC equivalent:
422 `datetime_out_of_range`, not a 500; an imported row with one is rejected with its number."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api
from tests.members.factories import imported

pytestmark = pytest.mark.django_db

EDGES = ["0001-01-01T00:00:00+05:00", "0001-01-01T00:00:00+14:00", "0001-01-01T03:00:00+08:00",
         "9999-12-31T23:59:59-05:00", "9999-12-31T23:59:59-12:00", "9999-12-31T20:00:00-08:00"]


@pytest.mark.parametrize("at", EDGES)
def test_an_edge_of_the_calendar_answers_422_not_500(admin_api: Api, stores: Any, at: str) -> None:
    """SQLite keeps times as UTC text, so these have no stored form: 422. PostgreSQL's timestamps
    reach 4713 BC, so there the time is a valid filter and a purchase is judged by the purchase
    date rules. Neither answers 5xx (the conftest fails the test on any)."""
    from django.db import connection

    purchase = admin_api.post("/loyalty/purchases", {"channel": "offline", "order_no": "X1", "store": "SH", "at": at,
                                                     "paid_fen": 100, "lines": [{"paid_fen": 100, "qty": 1}]})
    listed = admin_api.get("/members", params={"registered_from": at})
    if connection.vendor == "sqlite":
        assert purchase.status_code == 422, purchase.content
        assert listed.status_code == 422 and listed.json()["code"] == "datetime_out_of_range", listed.content
    else:
        assert purchase.status_code < 500 and listed.status_code == 200


def test_an_imported_row_at_the_edge_is_rejected_with_its_number(admin_api: Api, stores: Any) -> None:
    csv = "order_no,store,at,paid\n" + "".join(f"E{i},SH,{at},5\n" for i, at in enumerate(EDGES)) + \
        "OK,SH,2026-03-01 10:00,5\n"
    job = imported(admin_api, "/loyalty/purchases/import", csv.encode(), "orders.csv")
    assert job["status"] == "done", job
    assert job["report"]["created"] == 1
    assert {(r["row"], r["code"]) for r in job["report"]["rejections"]} == {(i, "at_invalid") for i in range(2, 8)}
