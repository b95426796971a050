"""Issuing: to one member with limits, in bulk with progress, bearer codes, claim codes, revoke."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from memberhub.coupons.models import Coupon, IssueBatch
from memberhub.domain.coupon_codes import code_verify
from tests.coupons.factories import fixed_window, template_make
from tests.members.factories import member_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(stores: Any) -> Any:
    return member_make()


@pytest.fixture
def run_jobs(django_capture_on_commit_callbacks: Any) -> Any:
    """Background jobs are enqueued on commit; run them (HUEY is immediate in tests)."""

    def post(api: Any, path: str, body: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return api.post(path, body)

    return post


def _issue(api: Any, template: Any, member: Any, **kw: Any) -> Any:
    return api.post(f"/coupons/templates/{template.pk}/issue", {"member_id": member.pk, **kw})


def test_it_issues_a_coupon_with_its_validity_window(admin_api: Any, member: Any) -> None:
    t = template_make(valid_days=7)
    r = _issue(admin_api, t, member)
    assert r.status_code == 201, r.content
    [c] = r.json()
    assert code_verify(code=c["code"]).valid
    local_until = timezone.localtime(timezone.datetime.fromisoformat(c["valid_until"]))
    assert (local_until.hour, local_until.minute) == (0, 0)  # runs to local midnight of day 7
    assert c["member_id"] == member.pk and c["uses_left"] == 1


def test_it_enforces_the_per_member_limit(admin_api: Any, member: Any) -> None:
    t = template_make(per_member_limit=2)
    assert _issue(admin_api, t, member, quantity=2).status_code == 201
    r = _issue(admin_api, t, member)
    assert r.status_code == 409 and r.json()["code"] == "member_limit_reached"
    assert r.json()["detail"] == {"limit": 2, "issued": 2}


def test_it_stops_at_the_total_quantity(admin_api: Any, member: Any) -> None:
    t = template_make(total_quantity=1)
    assert _issue(admin_api, t, member).status_code == 201
    r = _issue(admin_api, t, member_make(phone="13900139000"))
    assert r.status_code == 409 and r.json()["code"] == "sold_out"
    t.refresh_from_db()
    assert t.issued_count == 1


def test_it_refuses_an_ended_or_inactive_campaign(admin_api: Any, member: Any) -> None:
    ended = template_make(**fixed_window(days_before=10, days_after=-1))
    assert _issue(admin_api, ended, member).json()["code"] == "template_ended"
    off = template_make(is_active=False)
    assert _issue(admin_api, off, member).json()["code"] == "template_inactive"
    assert _issue(admin_api, template_make(), type("M", (), {"pk": 99999})()).status_code == 404


def test_it_issues_to_a_list_in_the_background_with_progress(admin_api: Any, stores: Any, run_jobs: Any) -> None:
    members = [member_make(phone=f"1380013{8000 + i:04d}") for i in range(7)]
    t = template_make(total_quantity=5)
    r = run_jobs(admin_api, f"/coupons/templates/{t.pk}/issue-bulk", {"member_ids": [m.pk for m in members] + [424242]})
    assert r.status_code == 202, r.content
    batch = admin_api.get(f"/coupons/batches/{r.json()['id']}").json()
    assert batch["status"] == "done"
    assert (batch["total"], batch["done"], batch["failed"]) == (8, 5, 3)
    assert batch["failures"] == {"member_not_found": 1, "sold_out": 2}
    assert Coupon.objects.filter(template=t).count() == 5


def test_it_issues_to_a_segment(admin_api: Any, stores: Any, run_jobs: Any) -> None:
    for i in range(3):
        member_make(phone=f"1380013{8000 + i:04d}", store="SH")
    member_make(phone="13900139000", store="BJ")
    t = template_make()
    r = run_jobs(admin_api, f"/coupons/templates/{t.pk}/issue-bulk", {"segment": {"store": "SH"}})
    assert r.status_code == 202, r.content
    assert IssueBatch.objects.get().done == 3
    assert admin_api.post(f"/coupons/templates/{t.pk}/issue-bulk", {}).json()["code"] == "audience_required"


def test_it_generates_unique_bearer_codes_in_bulk(admin_api: Any, stores: Any, run_jobs: Any) -> None:
    t = template_make()
    r = run_jobs(admin_api, f"/coupons/templates/{t.pk}/codes", {"count": 3000, "prefix": "SH"})
    assert r.status_code == 202, r.content
    batch = admin_api.get(f"/coupons/batches/{r.json()['id']}").json()
    assert (batch["status"], batch["done"]) == ("done", 3000)
    codes = list(Coupon.objects.filter(batch_id=batch["id"]).values_list("code", flat=True))
    assert len(set(codes)) == 3000
    assert all(code_verify(code=c, prefix="SH", length=10).valid for c in codes[:200])
    page = admin_api.get(f"/coupons/batches/{batch['id']}/coupons", params={"limit": 10}).json()
    assert len(page["items"]) == 10 and page["next_cursor"]
    assert admin_api.post(f"/coupons/templates/{t.pk}/codes", {"count": 10, "prefix": "S0"}).status_code == 422


def test_a_member_claims_a_bearer_code_once(admin_api: Any, member: Any, run_jobs: Any) -> None:
    t = template_make()
    run_jobs(admin_api, f"/coupons/templates/{t.pk}/codes", {"count": 1})
    code = Coupon.objects.get().code
    dashed = f"{code[:4]}-{code[4:8]}-{code[8:]}".lower()
    r = admin_api.post("/coupons/claim", {"code": dashed, "member_id": member.pk})
    assert r.status_code == 201, r.content
    assert r.json()["member_id"] == member.pk
    other = member_make(phone="13900139000")
    r = admin_api.post("/coupons/claim", {"code": code, "member_id": other.pk})
    assert r.status_code == 409 and r.json()["code"] == "already_claimed"


def test_a_public_claim_code_issues_within_the_limit(admin_api: Any, member: Any) -> None:
    template_make(claim_code="WELCOME", per_member_limit=1)
    r = admin_api.post("/coupons/claim", {"code": "welcome", "member_id": member.pk})
    assert r.status_code == 201 and Coupon.objects.get().source == "claim"
    assert admin_api.post("/coupons/claim", {"code": "WELCOME", "member_id": member.pk}).json()["code"] == \
        "member_limit_reached"
    assert admin_api.post("/coupons/claim", {"code": "NOPE2345", "member_id": member.pk}).status_code == 404


def test_it_revokes_an_available_coupon(admin_api: Any, member: Any) -> None:
    [c] = _issue(admin_api, template_make(), member).json()
    r = admin_api.post(f"/coupons/{c['id']}/revoke", {"reason": "误发"})
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    assert admin_api.post(f"/coupons/{c['id']}/revoke", {"reason": "again"}).status_code == 409


def test_it_lists_a_members_coupons(admin_api: Any, member: Any) -> None:
    t = template_make()
    _issue(admin_api, t, member, quantity=3)
    r = admin_api.get("/coupons", params={"member_id": member.pk, "status": "available"})
    assert len(r.json()["items"]) == 3
    code = r.json()["items"][0]["code"]
    assert admin_api.get(f"/coupons/code/{code.lower()}").json()["code"] == code


def test_exchange_for_points_refuses_cleanly_without_the_points_ledger(admin_api: Any, member: Any,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from memberhub.coupons import seams

    monkeypatch.setattr(seams, "_loyalty", lambda *a, **k: None)  # as before the engine lands
    t = template_make(points_price=500)
    r = admin_api.post(f"/coupons/templates/{t.pk}/exchange", {"member_id": member.pk})
    assert r.status_code == 409 and r.json()["code"] == "points_unavailable"
    assert Coupon.objects.count() == 0  # the coupon rolled back with the points


def test_exchange_for_points_spends_through_the_seam(admin_api: Any, member: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from memberhub.coupons import seams

    spent: list[tuple[int, int, str]] = []
    monkeypatch.setattr(seams, "points_spend_for",
                        lambda *, member_id, points, reason, ref: spent.append((member_id, points, ref)) or ref)
    t = template_make(points_price=500)
    r = admin_api.post(f"/coupons/templates/{t.pk}/exchange", {"member_id": member.pk})
    assert r.status_code == 201, r.content
    assert spent == [(member.pk, 500, f"coupon:{r.json()['code']}")]
    assert admin_api.post(f"/coupons/templates/{template_make().pk}/exchange",
                          {"member_id": member.pk}).json()["code"] == "not_exchangeable"


def test_issuing_can_be_timed_in_the_past_for_tests(member: Any) -> None:
    from memberhub.access.principal import system_principal
    from memberhub.coupons.issuing import coupon_issue

    t = template_make(valid_days=1)
    [c] = coupon_issue(actor=system_principal("t"), template_id=t.pk, member_id=member.pk,
                       now=timezone.now() - timedelta(days=5))
    assert c.valid_until < timezone.now()


def test_a_code_clash_redraws_the_chunk(admin_api: Any, stores: Any, run_jobs: Any,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from memberhub.coupons import issuing

    t = template_make()
    taken = coupon_make_code(t, stores)
    real = issuing.codes_generate
    calls: list[int] = []

    def clashing(**kw: Any) -> list[str]:
        calls.append(kw["count"])
        codes = real(**kw)
        return [taken, *codes[1:]] if len(calls) == 1 else codes

    monkeypatch.setattr(issuing, "codes_generate", clashing)
    r = run_jobs(admin_api, f"/coupons/templates/{t.pk}/codes", {"count": 50})
    assert admin_api.get(f"/coupons/batches/{r.json()['id']}").json()["done"] == 50
    assert len(calls) == 2 and Coupon.objects.filter(batch_id=r.json()["id"]).count() == 50
    assert Coupon.objects.filter(code=taken).count() == 1


def coupon_make_code(template: Any, stores: Any) -> str:
    from tests.coupons.factories import coupon_make

    return coupon_make(template, member_make(phone="13700137000").pk).code


def test_it_issues_to_an_rfm_segment_and_a_lifecycle_stage(admin_api: Any, stores: Any, run_jobs: Any) -> None:
    from django.utils import timezone

    from memberhub.analytics.models import AnalyticsRun, MemberSnapshot

    members = [member_make(phone=f"1370013{8000 + i:04d}", store="SH") for i in range(4)]
    now = timezone.now()

    def snapshots(kind: str, rows: list[tuple[Any, str, str]]) -> None:
        run = AnalyticsRun.objects.create(kind=kind, status="succeeded", created_at=now, is_current=True)
        MemberSnapshot.objects.bulk_create(
            MemberSnapshot(run=run, member=m, recency_days=1, frequency=1, monetary_fen=100, r_score=1, f_score=1,
                           m_score=1, segment=seg, stage=stage) for m, seg, stage in rows)

    snapshots("rfm", [(members[0], "重要挽留客户", ""), (members[1], "重要挽留客户", ""), (members[2], "一般发展客户", "")])
    snapshots("clv", [(members[0], "重要挽留客户", "沉睡"), (members[1], "重要挽留客户", "成熟"),
                      (members[3], "一般价值客户", "沉睡")])
    t = template_make()
    r = run_jobs(admin_api, f"/coupons/templates/{t.pk}/issue-bulk",
                 {"segment": {"rfm_segment": "重要挽留客户", "stage": "沉睡"}})
    assert r.status_code == 202, r.content
    assert list(Coupon.objects.filter(template=t).values_list("member_id", flat=True)) == [members[0].pk]
