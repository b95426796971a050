"""Bulk import of purchases: CDNOW imports cleanly (zero-value rows included) and again
changes nothing; CSV rows are grouped into orders and bad rows are reported."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from memberhub.core.tabular import rows_from_file
from memberhub.loyalty.imports import orders_import
from memberhub.loyalty.models import PointsAccount, Purchase, PurchaseLine
from memberhub.members.models import Member
from tests.loyalty.helpers import SYSTEM, assert_sound, member

pytestmark = pytest.mark.django_db
CDNOW = Path(__file__).resolve().parent.parent / "data" / "CDNOW_master.txt"


def _import(content: bytes, filename: str = "orders.csv", **kw: Any) -> dict[str, Any]:
    return orders_import(actor=SYSTEM, rows=rows_from_file(io.BytesIO(content), filename=filename), **kw).as_dict()


@pytest.mark.slow
def test_the_cdnow_history_imports_cleanly_and_idempotently(stores: object) -> None:
    out = io.StringIO()
    call_command("import_data", "orders", str(CDNOW), "--quiet", stdout=out)
    assert '"created": 69659' in out.getvalue() and '"rejected": 0' in out.getvalue()
    assert Purchase.objects.count() == 69_659 and PurchaseLine.objects.count() == 69_659
    assert Purchase.objects.filter(paid_fen=0).count() == 80  # zero-value purchases kept
    first = Purchase.objects.get(order_no="cdnow-00001-19970101-1")
    assert (first.paid_fen, first.external_ref, first.member_id) == (1_177, "cdnow:00001", None)
    again = _import(CDNOW.read_bytes(), filename=CDNOW.name)
    assert (again["created"], again["existing"], again["rejected"]) == (0, 69_659, 0)


def test_cdnow_rows_can_create_placeholder_members_that_earn(stores: object) -> None:
    head = b"".join(CDNOW.read_bytes().splitlines(keepends=True)[:40])
    report = _import(head, filename="cdnow.txt", create_members=True, source="cdnow")
    assert report["created"] == 39 and report["members_created"] > 0
    again = _import(head, filename="cdnow.txt", create_members=True, source="cdnow")
    assert again["existing"] == 39 and again["members_created"] == 0
    placeholder = Member.objects.get(import_key="ext:cdnow:00002")
    account = PointsAccount.objects.get(member=placeholder)
    assert account.earned_total == 89  # ¥12.00 + ¥77.00
    assert_sound(placeholder.pk)


def test_csv_rows_group_into_orders_and_bad_rows_are_reported(stores: object) -> None:
    m = member(phone="13700001111")
    csv = (
        b"order_no,channel,store,at,member,sku,category,qty,unit_price,paid\n"
        b"O-1,offline,SH,2026-03-01 10:00,13700001111,A,food,1,50.00,50.00\n"
        b"O-1,offline,SH,2026-03-01 10:00,13700001111,B,toys,2,10.00,18.00\n"
        b"O-2,offline,XX,2026-03-01,,A,food,1,5,5\n"
        b"O-3,offline,SH,not-a-date,,A,food,1,5,5\n"
        b"O-4,offline,SH,2026-03-02,,A,food,1,5,5.005\n"
        b"O-5,online,ONLINE,2026-03-02,,A,food,1,5,5\n"
    )
    report = _import(csv)
    assert (report["total"], report["created"], report["rejected"]) == (6, 2, 3)
    assert sorted(r["code"] for r in report["rejections"]) == ["at_invalid", "paid_invalid", "store_not_found"]
    order = Purchase.objects.get(order_no="O-1")
    assert order.member_id == m.pk and order.paid_fen == 6_800 and order.lines.count() == 2
    assert order.total_fen == 7_000  # the list price: 1 × ¥50 + 2 × ¥10
    assert Purchase.objects.get(order_no="O-5").member_id is None
    assert _import(csv)["existing"] == 2


def _orders_csv(numbers: range) -> bytes:
    """One unclaimed order per number, each with its own amount, so a line on the wrong
    purchase shows."""
    rows = [f"IMP-{n},online,,2026-03-01,,SKU-{n},food,1,{n}.00,{n}.00" for n in numbers]
    return ("order_no,channel,store,at,member,sku,category,qty,unit_price,paid\n" + "\n".join(rows) + "\n").encode()


def _each_line_on_its_own_purchase(numbers: range) -> None:
    purchases = {p.order_no: p for p in Purchase.objects.filter(order_no__startswith="IMP-")}
    assert sorted(purchases) == sorted(f"IMP-{n}" for n in numbers)
    for line in PurchaseLine.objects.filter(purchase__order_no__startswith="IMP-").select_related("purchase"):
        n = int(line.purchase.order_no.removeprefix("IMP-"))
        assert (line.sku, line.paid_fen, line.purchase.paid_fen) == (f"SKU-{n}", n * 100, n * 100)
    assert PurchaseLine.objects.filter(purchase__order_no__startswith="IMP-").count() == len(numbers)


def test_new_purchases_get_their_own_lines_when_some_orders_are_there_already(stores: object) -> None:
    # A chunk of 1,000 rows where every 7th order was imported before: the new ones' ids are
    # read back, not counted on (and so are the ids after the highest row was deleted, which
    # SQLite's AUTOINCREMENT does not hand out again).
    assert _import(_orders_csv(range(1, 1201, 7)))["created"] == 172
    report = _import(_orders_csv(range(1, 1201)))
    assert (report["created"], report["existing"]) == (1_028, 172)
    _each_line_on_its_own_purchase(range(1, 1201))
    Purchase.objects.filter(order_no="IMP-1200").delete()
    assert _import(_orders_csv(range(1201, 1301)))["created"] == 100
    report = _import(_orders_csv(range(1, 1301)))
    assert (report["created"], report["existing"]) == (1, 1_299)
    _each_line_on_its_own_purchase(range(1, 1301))


def test_an_unclaimed_order_keeps_its_list_price_and_what_was_paid(stores: object) -> None:
    csv = (b"order_no,channel,store,at,member,sku,category,qty,unit_price,paid\n"
           b"U-1,online,,2026-03-01,,A,food,1,50.00,45.00\n"
           b"U-1,online,,2026-03-01,,B,toys,2,10.00,18.00\n"
           b"U-2,online,,2026-03-01,,C,food,1,,9.00\n")
    assert _import(csv)["created"] == 2
    one, two = Purchase.objects.get(order_no="U-1"), Purchase.objects.get(order_no="U-2")
    assert (one.member_id, one.total_fen, one.paid_fen, one.lines.count()) == (None, 7_000, 6_300, 2)
    assert (two.total_fen, two.paid_fen) == (900, 900)  # no unit price: the list price is what was paid


def test_a_row_holding_a_nul_character_stops_the_import_with_its_number(stores: object) -> None:
    """On PostgreSQL the SKU with U+0000 failed the import with a database error."""
    from memberhub.core.errors import ValidationFailed

    csv = (b"order_no,channel,store,at,member,sku,category,qty,unit_price,paid\n"
           b"O-1,offline,SH,2026-03-01 10:00,,A,food,1,50.00,50.00\n"
           b"O-2,offline,SH,2026-03-01 10:00,,A\x00,food,1,50.00,50.00\n")
    with pytest.raises(ValidationFailed) as refused:
        _import(csv)
    assert refused.value.code == "invalid_characters" and refused.value.detail == {"row": 3}
    assert not Purchase.objects.filter(order_no="O-2").exists()


def test_an_imported_amount_above_the_ceiling_is_rejected(stores: object) -> None:
    """The import takes amounts within the same ceiling as the API (a 9×10¹⁸ fen row went in)."""
    csv = (
        b"order_no,channel,store,at,paid_fen\n"
        b"H-1,offline,SH,2026-03-01 10:00,9000000000000000000\n"
        b"H-2,offline,SH,2026-03-01 10:00,-5\n"
        b"H-3,offline,SH,2026-03-01 10:00,500\n"
    )
    report = _import(csv)
    assert (report["created"], report["rejected"]) == (1, 2)
    assert sorted(r["code"] for r in report["rejections"]) == ["paid_out_of_range", "paid_out_of_range"]
    assert list(Purchase.objects.values_list("order_no", flat=True)) == ["H-3"]
