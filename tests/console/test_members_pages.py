"""The console's member pages through Django's test client: sign in, find a member the way the
counter does, open their 360 view; roles and store scopes decided by the services."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from memberhub.loyalty.purchases import PurchaseInput, purchase_record
from tests.conftest import Api
from tests.members.factories import member_make

pytestmark = pytest.mark.django_db

PASSWORD = "pw-123456789"


@pytest.fixture
def signed_in(make_staff: Callable[..., Any]) -> Callable[..., Client]:
    def sign_in(role: str, stores: list[str] | None = None) -> Client:
        user = make_staff(role, stores)
        client = Client()
        r = client.post("/console/login/", {"username": user.username, "password": PASSWORD})
        assert r.status_code == 302 and r["Location"] == "/console/", r.content[:500]
        return client

    return sign_in


@pytest.fixture
def member(stores: Any, system: Any) -> Any:
    m = member_make(phone="13800138000", store="SH", name="张三")
    purchase_record(actor=system, data=PurchaseInput(channel="offline", order_no="C-1", paid_fen=12_000,
                                                     store="SH", member_id=m.pk))
    return m


def test_it_sends_a_visitor_who_has_not_signed_in_to_the_login_page(db: Any) -> None:
    r = Client().get("/console/members/?q=138")
    assert r.status_code == 302 and r["Location"].startswith("/console/login/?next=")


def test_the_login_page_speaks_chinese_and_refuses_a_wrong_password(make_staff: Callable[..., Any]) -> None:
    user = make_staff("cashier", ["SH"])
    page = Client().get("/console/login/")
    assert page.status_code == 200 and "登录会员管理后台" in page.content.decode()
    r = Client().post("/console/login/", {"username": user.username, "password": "wrong-password-1"})
    assert r.status_code == 401 and "用户名或密码错误" in r.content.decode()
    assert 'name="password"' in r.content.decode()  # the form again, not the console


def test_a_cashier_finds_a_member_by_phone_in_any_format_and_sees_it_masked(
        signed_in: Callable[..., Client], member: Any) -> None:
    cashier = signed_in("cashier", ["SH"])
    for q in ("13800138000", "+86 138-0013-8000", "138 0013 8000", member.member_no):
        html = cashier.post("/console/members/", {"q": q}, HTTP_HX_REQUEST="true").content.decode()
        assert f"/console/members/{member.pk}/" in html, q
        assert "138****8000" in html and "13800138000" not in html  # the results, masked
    page = cashier.post("/console/members/", {"q": "+86 138-0013-8000"})
    assert page.status_code == 200 and "<html" in page.content.decode()  # without htmx: the whole page


def test_the_search_answers_htmx_with_the_results_alone(signed_in: Callable[..., Client], member: Any) -> None:
    cashier = signed_in("cashier", ["SH"])
    r = cashier.post("/console/members/", {"q": "张"}, HTTP_HX_REQUEST="true")
    html = r.content.decode()
    assert r.status_code == 200 and "<html" not in html and f"/console/members/{member.pk}/" in html


def test_the_360_view_shows_points_tier_and_statement(signed_in: Callable[..., Client], member: Any) -> None:
    r = signed_in("service").get(f"/console/members/{member.pk}/")
    html = r.content.decode()
    assert r.status_code == 200 and r["Cache-Control"] == "no-store"
    assert "138 0013 8000" in html  # customer service sees personal data whole
    assert "C-1" in html and "积分明细" in html


def test_a_cashier_of_another_store_cannot_open_the_member(signed_in: Callable[..., Client], member: Any) -> None:
    r = signed_in("cashier", ["BJ"]).get(f"/console/members/{member.pk}/")
    assert r.status_code in (403, 404)
    assert "refusal" in r.content.decode() and "13800138000" not in r.content.decode()


def test_a_role_without_member_access_gets_the_refusal_page(
        signed_in: Callable[..., Client], member: Any, admin_api: Api) -> None:
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("nobody", password=PASSWORD)  # no staff profile: no capability
    client = Client()
    client.post("/console/login/", {"username": user.username, "password": PASSWORD})
    r = client.get("/console/members/")
    assert r.status_code == 403 and "无权操作" in r.content.decode()
