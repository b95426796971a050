"""The console in a real browser (chromium): what a cashier does at the counter."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from memberhub.loyalty.purchases import PurchaseInput, purchase_record
from memberhub.loyalty.selectors import points_summary
from tests.members.factories import member_make

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "pw-123456789"


def _sign_in(page: Any, base: str, username: str) -> None:
    page.goto(f"{base}/console/")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(f"{base}/console/members/")


def test_a_cashier_finds_a_member_by_a_scanned_phone_and_opens_their_card(
        live_server: Any, page: Any, make_staff: Callable[..., Any], system: Any, tmp_path: Path) -> None:
    member = member_make(phone="13800138000", store="SH", name="张三")
    purchase_record(actor=system, data=PurchaseInput(channel="offline", order_no="C-1", paid_fen=12_000,
                                                     store="SH", member_id=member.pk))
    cashier = make_staff("cashier", ["SH"])
    _sign_in(page, live_server.url, cashier.username)
    # a scanner types into the focused box and presses Enter: keyboard only
    page.keyboard.type("138 0013 8000")
    page.keyboard.press("Enter")
    row = page.locator("#results table tbody tr")
    row.first.wait_for()
    assert row.count() == 1 and "138****8000" in row.inner_text()
    row.get_by_role("link").click()
    page.wait_for_url(f"{live_server.url}/console/members/{member.pk}/")
    expected = points_summary(actor=system, member_id=member.pk)["available"]
    assert expected > 0 and page.locator("[data-points-available]").inner_text().strip() == str(expected)
    assert "C-1" in page.locator("main").inner_text()
    page.screenshot(path=str(tmp_path / "member.png"), full_page=True)


def test_a_cashier_of_another_store_gets_the_refusal_page(
        live_server: Any, page: Any, make_staff: Callable[..., Any]) -> None:
    member = member_make(phone="13800138001", store="SH")
    cashier = make_staff("cashier", ["BJ"])
    _sign_in(page, live_server.url, cashier.username)
    response = page.goto(f"{live_server.url}/console/members/{member.pk}/")
    assert response.status in (403, 404)
    assert page.locator(".refusal").is_visible() and "13800138001" not in page.content()
