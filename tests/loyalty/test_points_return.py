"""points_return: spent points go back to the lots they came from, once per reference."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from memberhub.core.errors import Conflict
from memberhub.loyalty.models import PointsEntry, PointsLot
from memberhub.loyalty.points import adjustment_request, points_redeem, points_return
from tests.loyalty.helpers import SYSTEM, account, assert_sound, member

pytestmark = pytest.mark.django_db


@pytest.fixture
def rich(stores: Any) -> Any:
    m = member()
    adjustment_request(actor=SYSTEM, points=500, reason="a", member_id=m.pk, now=timezone.now() - timedelta(days=400))
    adjustment_request(actor=SYSTEM, points=500, reason="b", member_id=m.pk)
    return m


def _remaining(m: Any) -> list[int]:
    return list(PointsLot.objects.filter(account__member=m).order_by("pk").values_list("remaining", flat=True))


def test_it_restores_the_drawn_lots_latest_first_in_parts(rich: Any) -> None:
    points_redeem(actor=SYSTEM, points=800, member_id=rich.pk, reference="order-1")
    assert _remaining(rich) == [0, 200]
    out = points_return(actor=SYSTEM, member_id=rich.pk, points=200, reason="refund", reference="order-1:r1",
                        spend_reference="order-1")
    assert out["restored_to_lots"] and not out["replayed"]
    assert _remaining(rich) == [0, 400]
    points_return(actor=SYSTEM, member_id=rich.pk, points=600, reason="refund", reference="order-1:r2",
                  spend_reference="order-1")
    assert _remaining(rich) == [500, 500]
    assert account(rich.pk).balance == 1000
    assert_sound(rich.pk)
    with pytest.raises(Conflict) as exc:
        points_return(actor=SYSTEM, member_id=rich.pk, points=1, reason="refund", reference="order-1:r3",
                      spend_reference="order-1")
    assert exc.value.code == "points_return_exceeds_spend"


def test_a_replay_answers_the_first_return_and_another_amount_is_refused(rich: Any) -> None:
    points_redeem(actor=SYSTEM, points=300, member_id=rich.pk, reference="reward-order:9")
    points_return(actor=SYSTEM, member_id=rich.pk, points=300, reason="cancel", reference="reward-order:9")
    again = points_return(actor=SYSTEM, member_id=rich.pk, points=300, reason="cancel", reference="reward-order:9")
    assert again["replayed"]
    assert account(rich.pk).balance == 1000
    with pytest.raises(Conflict) as exc:
        points_return(actor=SYSTEM, member_id=rich.pk, points=100, reason="cancel", reference="reward-order:9")
    assert exc.value.code == "points_return_exists"
    assert_sound(rich.pk)


def test_a_spend_without_known_draws_gets_a_new_lot_with_the_expiry_policy(rich: Any) -> None:
    points_redeem(actor=SYSTEM, points=300, member_id=rich.pk, reason="legacy reward", reference="old")
    points_return(actor=SYSTEM, member_id=rich.pk, points=300, reason="cancel", reference="old")
    lots = list(PointsLot.objects.filter(account__member=rich).order_by("pk"))
    assert len(lots) == 3 and lots[-1].points == 300 and lots[-1].expires_at is not None
    assert PointsEntry.objects.filter(account__member=rich, rule="return", kind="reverse", lot=lots[-1]).exists()
    assert account(rich.pk).balance == 1000
    assert_sound(rich.pk)


def test_points_whose_lot_expired_meanwhile_are_written_off_at_once(rich: Any) -> None:
    points_redeem(actor=SYSTEM, points=800, member_id=rich.pk, reference="order-2")
    later = timezone.now() + timedelta(days=3 * 366)  # every lot has expired by then
    points_return(actor=SYSTEM, member_id=rich.pk, points=800, reason="refund", reference="order-2", now=later)
    assert account(rich.pk).balance == 0
    assert PointsEntry.objects.filter(account__member=rich, kind="expire").exists()
    assert_sound(rich.pk, now=later)
