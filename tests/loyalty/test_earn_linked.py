"""On PostgreSQL a plain earn writes its rows in one statement: the same rows as one at a time."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.forms.models import model_to_dict

from memberhub.core import rows
from memberhub.domain.tiers import default_ladder
from memberhub.loyalty import ledger
from memberhub.loyalty.models import PointsEntry, PointsLot, Purchase, PurchaseLine, TierChange
from memberhub.loyalty.purchases import LineInput
from memberhub.loyalty.tiering import tier_fact_from
from tests.loyalty.helpers import account, assert_sound, buy, member

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
LINES = (LineInput(sku="A", category="food", paid_fen=8_000), LineInput(sku="B", category="toys", paid_fen=4_850))


def _written(order_no: str) -> dict[str, Any]:
    """The rows an order wrote, without ids, order numbers and creation times."""
    purchase = Purchase.objects.get(order_no=order_no)
    drop = {"id", "purchase", "lot", "order_no", "recorded_at", "created_at", "reason"}
    return {
        "purchase": {k: v for k, v in model_to_dict(purchase).items() if k not in drop},
        "lines": [{k: v for k, v in model_to_dict(x).items() if k not in drop}
                  for x in PurchaseLine.objects.filter(purchase=purchase).order_by("line_id")],
        "lots": [{k: v for k, v in model_to_dict(x).items() if k not in drop}
                 for x in PointsLot.objects.filter(purchase=purchase)],
        "entries": [{k: v for k, v in model_to_dict(x).items() if k not in drop}
                    for x in PointsEntry.objects.filter(purchase=purchase)],
    }


def test_a_plain_earn_writes_the_same_rows_either_way(stores: object, monkeypatch: pytest.MonkeyPatch) -> None:
    linked: list[Any] = []
    real = rows.insert_linked
    monkeypatch.setattr(rows, "insert_linked", lambda *a, **kw: linked.append(1) or real(*a, **kw))
    m = member()
    one = buy(m.pk, 12_850, at=NOW, now=NOW, lines=LINES, order_no="LINKED-1")
    after_one = account(m.pk)
    assert len(linked) == (1 if connection.vendor == "postgresql" else 0)  # SQLite: no data-modifying WITH
    with monkeypatch.context() as usual:
        usual.setattr(ledger, "credit_with_purchase", lambda *a, **kw: ledger.Linked(False))
        two = buy(m.pk, 12_850, at=NOW, now=NOW, lines=LINES, order_no="LINKED-2")
    after_two = account(m.pk)
    assert _written("LINKED-1") == _written("LINKED-2")
    assert one.purchase.points == two.purchase.points == 128
    assert (after_one.balance, after_one.pending, after_one.earned_total) == (128, 128, 128)
    assert (after_two.balance, after_two.pending, after_two.earned_total) == (256, 256, 256)
    # what the service answers is the same too: the entries and lines it returns
    assert [(e.kind, e.points, e.trace, e.reference, e.pk is not None) for e in one.entries] == \
        [(e.kind, e.points, e.trace, e.reference, e.pk is not None) for e in two.entries]
    lot = PointsLot.objects.get(purchase=one.purchase)
    assert one.entries[0].lot_id == lot.pk == PointsEntry.objects.get(purchase=one.purchase).lot_id
    assert [ln.purchase_id for ln in one.lines or []] == [one.purchase.pk] * 2
    assert_sound(m.pk, NOW)


def test_orders_of_any_number_of_lines_each_write_their_own(stores: object) -> None:
    """The statement is built once per shape and the rows joined per call: a three-line order
    after a one-line one (and the other way) writes its own lines, linked to its own purchase."""
    m = member()
    three = (*LINES, LineInput(sku="C", category="food", paid_fen=1_000))
    for n, lines in enumerate((LINES[:1], three, LINES[:1], LINES)):
        paid = sum(ln.paid_fen for ln in lines)
        got = buy(m.pk, paid, at=NOW, now=NOW, lines=lines, order_no=f"SHAPE-{n}")
        stored = PurchaseLine.objects.filter(purchase=got.purchase).order_by("pk")
        assert [(ln.sku, ln.paid_fen) for ln in stored] == [(ln.sku, ln.paid_fen) for ln in lines]
        assert PointsLot.objects.get(purchase=got.purchase).points == got.purchase.points
    assert PurchaseLine.objects.filter(purchase__member_id=m.pk).count() == 1 + 3 + 1 + 2
    assert_sound(m.pk, NOW)


def test_the_same_order_again_writes_nothing(stores: object) -> None:
    m = member()
    buy(m.pk, 10_000, at=NOW, now=NOW, order_no="AGAIN-1")
    again = buy(m.pk, 10_000, at=NOW, now=NOW, order_no="AGAIN-1")
    assert again.replayed
    acc = account(m.pk)
    assert (acc.balance, PointsLot.objects.filter(account=acc).count(), PurchaseLine.objects.count()) == (100, 1, 1)
    assert_sound(m.pk, NOW)


def test_an_earn_that_repays_a_debt_goes_the_usual_way(stores: object) -> None:
    m = member()
    buy(m.pk, 1_000, at=NOW, now=NOW)
    acc = account(m.pk)
    acc.debt = 4
    acc.save(update_fields=["debt"])
    done = ledger.credit_with_purchase(acc, Purchase(), [], 10, at=NOW, now=NOW,
                                       terms=ledger.LotTerms(NOW, None), why=ledger.Why())
    assert done == ledger.Linked(False)  # the split is not one lot: `credit` books it


def _tier_story(monkeypatch: pytest.MonkeyPatch, *, usual: bool) -> tuple[list[Any], list[str]]:
    """Four small purchases, one dated before the window (not counted), then the fifth in the
    window, which makes silver (5 purchases in 12 months): the tier changes and the SQL of
    the reads made through `rows.one` during the last purchase."""
    m = member()
    for i in range(4):
        buy(m.pk, 1_000, at=NOW - timedelta(days=10 - i), now=NOW - timedelta(days=10 - i))
    reads: list[str] = []
    with monkeypatch.context() as patch:
        if usual:
            patch.setattr(ledger, "credit_with_purchase", lambda *a, **kw: ledger.Linked(False))
        old = buy(m.pk, 900_000, at=NOW - timedelta(days=400), now=NOW)  # outside the rolling window
        assert old.tier_change is None and account(m.pk).tier == "normal"
        real = rows.one
        patch.setattr(rows, "one", lambda sql, params: reads.append(sql) or real(sql, params))
        fifth = buy(m.pk, 1_000, at=NOW, now=NOW)
    assert fifth.tier_change is not None and account(m.pk).tier == "silver"
    changes = [(c.from_tier, c.to_tier, c.reason, c.explanation) for c in TierChange.objects.filter(account__member=m)]
    assert_sound(m.pk, NOW)
    return changes, reads


def test_the_tier_totals_read_with_the_writes_decide_as_a_read_of_their_own(
        stores: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL the window's totals come back with the earn's one statement, which cannot
    see the purchase it writes: that purchase is added to them when it is in the window. The
    upgrade and its recorded explanation (totals, window, thresholds) are the same as with
    the totals read after the writes."""
    linked_changes, linked_reads = _tier_story(monkeypatch, usual=False)
    usual_changes, usual_reads = _tier_story(monkeypatch, usual=True)
    assert linked_changes == usual_changes
    assert linked_changes[0][3]["purchases"] == 5 and linked_changes[0][3]["spend_fen"] == 5_000
    totals_read = [sql for sql in usual_reads if "SUM(spend)" in sql]
    assert len(totals_read) == 1  # the usual way reads the totals apart
    together = [sql for sql in linked_reads if "SUM(spend)" in sql]
    assert len(together) == (0 if connection.vendor == "postgresql" else 1)


def test_tier_totals_add_an_unseen_purchase_only_inside_the_window() -> None:
    ladder = default_ladder()
    row = (10_000, 2, 100)
    inside = Purchase(at=NOW - timedelta(days=3), paid_fen=5_000, points=50)
    free = Purchase(at=NOW, paid_fen=0, points=0)
    before = Purchase(at=NOW - timedelta(days=400), paid_fen=5_000, points=50)
    later = Purchase(at=NOW + timedelta(minutes=1), paid_fen=5_000, points=50)
    def got(p: Purchase | None) -> tuple[int, int, int]:
        f = tier_fact_from(row, ladder=ladder, at=NOW, unseen=p)
        return f.paid_fen, f.count, f.points
    assert got(None) == (10_000, 2, 100)
    assert got(inside) == (15_000, 3, 150)
    assert got(free) == (10_000, 2, 100)  # a zero-value purchase is no purchase to count
    assert got(before) == got(later) == (10_000, 2, 100)
    assert tier_fact_from(None, ladder=ladder, at=NOW, unseen=inside).count == 1
