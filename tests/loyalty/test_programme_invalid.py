"""A stored programme that does not validate is refused loudly, never replaced by defaults."""

from __future__ import annotations

from typing import Any

import pytest

from memberhub.loyalty.checks import programme_valid
from memberhub.loyalty.models import Programme, Purchase
from memberhub.loyalty.programme import ProgrammeConfig, rules_current
from tests.loyalty.helpers import member

pytestmark = pytest.mark.django_db


def _store_raw(config: dict[str, Any]) -> None:
    rules_current()  # the row exists
    Programme.objects.filter(pk=1).update(config=config)


def test_an_invalid_stored_programme_refuses_earning_and_is_reported(admin_api: Any) -> None:
    m = member()
    good = ProgrammeConfig().model_dump(mode="json")
    _store_raw({**good, "earn": {**good["earn"], "points_per_yuan": "-3"}, "unknown_setting": 1})
    r = admin_api.post("/loyalty/purchases", {"member_id": m.pk, "channel": "offline", "order_no": "P-1",
                                              "paid_fen": 10000, "store": "SH"})
    assert r.status_code == 503 and r.json()["code"] == "programme_invalid", r.content
    problems = r.json()["detail"]["problems"]
    assert any("points_per_yuan" in p for p in problems) and any("unknown_setting" in p for p in problems)
    assert not Purchase.objects.exists()  # nothing recorded on default rules
    errors = programme_valid()
    assert [e.id for e in errors] == ["memberhub.E010"] and "points_per_yuan" in errors[0].msg

    # corrected through the API, the programme earns again and the check is clean
    fixed = admin_api._call("put", "/loyalty/programme", {"config": good, "reason": "repair"})
    assert fixed.status_code == 200, fixed.content
    r = admin_api.post("/loyalty/purchases", {"member_id": m.pk, "channel": "offline", "order_no": "P-1",
                                              "paid_fen": 10000, "store": "SH"})
    assert r.status_code == 201, r.content
    assert programme_valid() == []


def test_a_stored_programme_with_an_inconsistent_ladder_is_refused_too(admin_api: Any) -> None:
    good = ProgrammeConfig().model_dump(mode="json")
    _store_raw({**good, "benefits": {**good["benefits"], "platinum": {}}})  # a tier not on the ladder
    r = admin_api.get(f"/loyalty/members/{member().pk}/tier")
    assert r.status_code == 503 and r.json()["code"] == "programme_invalid"
