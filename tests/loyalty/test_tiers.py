"""Tier upgrades, the periodic evaluation, overrides, progress, what-if and merges."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from memberhub.loyalty.models import PointsEntry, Purchase, TierChange
from memberhub.loyalty.points import points_redeem
from memberhub.loyalty.programme import ProgrammeConfig
from memberhub.loyalty.purchases import RefundInput, purchase_refund
from memberhub.loyalty.tiering import tier_override, tier_progress_get, tier_whatif_run, tiers_evaluate_all
from memberhub.members.merge import member_merge
from tests.loyalty.helpers import SYSTEM, account, assert_sound, buy, member

pytestmark = pytest.mark.django_db
TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=TZ)


def test_a_qualifying_purchase_upgrades_at_once(stores: object) -> None:
    m = member()
    for i in range(4):
        buy(m.pk, 1_000, at=NOW - timedelta(days=10 - i), now=NOW - timedelta(days=10 - i))
    assert account(m.pk).tier == "normal"
    result = buy(m.pk, 1_000, at=NOW, now=NOW)  # the 5th purchase: silver
    assert result.tier_change is not None and result.tier_change.reason == "upgrade"
    acc = account(m.pk)
    assert acc.tier == "silver" and acc.tier_term_ends_at == datetime(2027, 3, 10, 12, 0, tzinfo=TZ)
    # silver earns ×1.2 from now on
    assert buy(m.pk, 10_000, at=NOW, now=NOW).purchase.points == 120


def test_downgrade_waits_for_the_periodic_evaluation_after_the_term(stores: object) -> None:
    m = member()
    buy(m.pk, 500_000, at=NOW, now=NOW)  # ¥5000: gold by spend
    assert account(m.pk).tier == "gold"
    purchase_refund(actor=SYSTEM, data=RefundInput(channel="offline", order_no=Purchase.objects.get().order_no,
                                                   refund_no="R"), now=NOW + timedelta(days=3))
    assert account(m.pk).tier == "gold"  # no downgrade on refund
    tiers_evaluate_all(now=NOW + timedelta(days=30))
    assert account(m.pk).tier == "gold"  # protected until the term ends
    tiers_evaluate_all(now=NOW + timedelta(days=400))
    acc = account(m.pk)
    assert acc.tier == "normal"
    assert list(TierChange.objects.filter(account=acc).values_list("reason", flat=True).order_by("pk")) == [
        "upgrade", "downgrade"]


def test_the_nightly_evaluation_counts_a_purchase_made_while_it_runs(
        stores: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """The job takes minutes over many members. A member it has not reached yet buys meanwhile,
    and that purchase keeps their gold: when the job gets there it counts (as of the job's
    start it did not, and the member was downgraded to silver the night they re-qualified)."""
    from django.utils import timezone

    from memberhub.loyalty import tiering

    first, kept = member(), member()  # the job goes by member id
    clock = timezone.now()
    buy(first.pk, 100_000, at=clock - timedelta(days=20), now=clock - timedelta(days=20))
    last_year = clock - timedelta(days=400)
    buy(kept.pk, 500_000, at=last_year, now=last_year)  # gold, its term ended ~35 days ago
    buy(kept.pk, 400_000, at=clock - timedelta(days=20), now=clock - timedelta(days=20))  # silver's worth
    assert account(kept.pk).tier == "gold"
    real = tiering.tier_evaluate_account

    def evaluate(**kw: object) -> object:
        decision = real(**kw)  # type: ignore[arg-type]
        if kw["member_id"] == first.pk:
            buy(kept.pk, 100_000)  # at the till, on the clock, while the job goes on: ¥5,000 in the window
        return decision

    monkeypatch.setattr(tiering, "tier_evaluate_account", evaluate)
    tiering.tiers_evaluate_all()
    assert account(kept.pk).tier == "gold"
    last = TierChange.objects.filter(account__member=kept).latest("pk")
    assert (last.reason, last.to_tier, last.explanation["spend_fen"]) == ("renewed", "gold", 500_000)


def test_downgrade_one_step_at_a_time(stores: object) -> None:
    from memberhub.loyalty.programme import programme_config_set

    config = ProgrammeConfig()
    config.tiers.downgrade_one_step = True
    programme_config_set(config)
    m = member()
    buy(m.pk, 500_000, at=NOW, now=NOW)
    tiers_evaluate_all(now=NOW + timedelta(days=400))
    assert account(m.pk).tier == "silver"


def test_an_override_gives_way_to_the_computed_tier_after_its_end(stores: object) -> None:
    m = member()
    buy(m.pk, 1_000, at=NOW, now=NOW)
    tier_override(actor=SYSTEM, member_id=m.pk, tier="diamond", ends_at=NOW + timedelta(days=30), reason="VIP guest",
                  now=NOW)
    assert account(m.pk).tier == "diamond"
    tiers_evaluate_all(now=NOW + timedelta(days=10))
    assert account(m.pk).tier == "diamond"
    tiers_evaluate_all(now=NOW + timedelta(days=31))
    acc = account(m.pk)
    assert acc.tier == "normal" and acc.override_tier is None
    assert TierChange.objects.filter(account=acc, reason="override_ended").exists()


def test_progress_says_what_is_missing_and_until_when(stores: object) -> None:
    m = member()
    buy(m.pk, 40_000, at=NOW - timedelta(days=5), now=NOW - timedelta(days=5))
    progress = tier_progress_get(actor=SYSTEM, member_id=m.pk, now=NOW)
    assert progress["tier"] == "normal"
    assert progress["next"]["tier"] == "silver"
    assert progress["next"]["missing_spend_fen"] == 60_000 and progress["next"]["missing_purchases"] == 4
    assert progress["next"]["deadline"] == "2027-03-04"
    assert progress["keep"] is None


def test_what_if_evaluates_a_proposed_ladder_without_applying_it(stores: object) -> None:
    for spend in (50_000, 150_000, 600_000):
        buy(member().pk, spend, at=NOW - timedelta(days=1), now=NOW - timedelta(days=1))
    config = ProgrammeConfig()
    config.tiers.tiers[1].min_spend_fen = 40_000
    report = tier_whatif_run(actor=SYSTEM, config=config, at=NOW)
    assert report["members"] == 3
    assert report["proposed_counts"]["silver"] == 2 and report["up"] == 1
    assert sorted(account(p.member_id).tier for p in Purchase.objects.all()) == ["gold", "normal", "silver"]


def test_merging_members_combines_ledgers_and_re_evaluates_the_tier(stores: object) -> None:
    a, b = member(), member()
    old = NOW - timedelta(days=20)
    buy(a.pk, 60_000, at=old, now=old)
    buy(b.pk, 50_000, at=old, now=old)
    points_redeem(actor=SYSTEM, member_id=b.pk, points=100, now=old + timedelta(days=10))
    buy(b.pk, 10_000, at=NOW, now=NOW)  # pending
    member_merge(actor=SYSTEM, survivor_id=a.pk, absorbed_id=b.pk, reason="same person")
    acc_a, acc_b = account(a.pk), account(b.pk)
    assert (acc_a.balance, acc_b.balance) == (600 + 400 + 100, 0)
    assert acc_a.tier == "silver"  # ¥1200 spend together
    assert PointsEntry.objects.filter(account=acc_b, kind="transfer").count() == 2
    assert Purchase.objects.filter(member=a).count() == 3
    assert_sound(a.pk)
    assert_sound(b.pk)


def test_a_merge_releases_the_absorbed_members_open_holds_so_their_points_move_too(stores: object) -> None:
    """A hold settled after the merge gave its points back to the merged member, where
    nobody could use them. The merge releases it first: the points move with the rest, and
    the checkout that held them is told the hold was released."""
    from memberhub.core.errors import Conflict
    from memberhub.loyalty.models import Hold
    from memberhub.loyalty.points import hold_confirm, hold_create, hold_release

    a, b = member(), member()
    old = NOW - timedelta(days=20)
    buy(a.pk, 60_000, at=old, now=old)
    buy(b.pk, 50_000, at=old, now=old)
    hold = hold_create(actor=SYSTEM, member_id=b.pk, points=100, now=NOW)
    assert account(b.pk).balance == 400
    member_merge(actor=SYSTEM, survivor_id=a.pk, absorbed_id=b.pk, reason="same person")
    assert Hold.objects.get(pk=hold.pk).state == "released"
    assert (account(a.pk).balance, account(b.pk).balance) == (600 + 500, 0)
    with pytest.raises(Conflict) as refused:
        hold_confirm(actor=SYSTEM, hold_id=hold.pk, now=NOW)
    assert refused.value.code == "hold_released"
    hold_release(actor=SYSTEM, hold_id=hold.pk, now=NOW)  # again: nothing more
    assert (account(a.pk).balance, account(b.pk).balance) == (600 + 500, 0)
    assert_sound(a.pk)
    assert_sound(b.pk)
