"""Engine events: birthdays (job), registration points, tier changes — and the coupons that
issue-on-event rules give for them, fired by the real events."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from memberhub.core import events
from memberhub.coupons.models import Coupon
from memberhub.loyalty.jobs import birthdays_award
from memberhub.loyalty.models import PointsEntry
from memberhub.loyalty.programme import ProgrammeConfig, programme_config_set
from memberhub.loyalty.tiering import tier_override
from tests.coupons.factories import template_make
from tests.loyalty.helpers import SYSTEM, account, assert_sound, buy, member

pytestmark = pytest.mark.django_db
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def heard() -> Any:
    seen: list[tuple[str, dict[str, Any]]] = []
    listeners = []
    for name in (events.MEMBER_BIRTHDAY, events.MEMBER_REGISTERED, events.TIER_UPGRADED, events.TIER_CHANGED):
        def listen(*, _name: str = name, **payload: Any) -> None:
            seen.append((_name, payload))
        listeners.append((name, events.subscribe(name)(listen)))
    yield seen
    for name, fn in listeners:
        events.unsubscribe(name, fn)


def _at(y: int, m: int, d: int, hour: int = 9) -> datetime:
    return datetime(y, m, d, hour, tzinfo=SHANGHAI)


def _birthday_points(m: Any) -> list[tuple[int, str]]:
    return list(PointsEntry.objects.filter(account__member=m, rule="birthday").order_by("pk")
                .values_list("points", "reference"))


def test_the_birthday_job_awards_the_tiers_points_once_a_year_and_fires_the_event(
        stores: Any, heard: list[Any], django_capture_on_commit_callbacks: Any) -> None:
    template = template_make(name="生日券", issue_rules=[{"event": events.MEMBER_BIRTHDAY}])
    gold = member(birthday=date(1990, 5, 20))
    tier_override(actor=SYSTEM, member_id=gold.pk, tier="gold", ends_at=None, reason="vip")
    plain = member(birthday=date(1991, 5, 20))
    member(birthday=date(1990, 5, 21))  # not today
    with django_capture_on_commit_callbacks(execute=True):
        counts = birthdays_award(now=_at(2025, 5, 20))
    assert counts == {"members": 2, "points": 300}
    assert _birthday_points(gold) == [(300, "birthday:2025")]
    assert _birthday_points(plain) == [(0, "birthday:2025")]  # no birthday points on 普通, the year is marked
    assert sorted(p["member_id"] for n, p in heard if n == events.MEMBER_BIRTHDAY) == sorted([gold.pk, plain.pk])
    assert Coupon.objects.filter(template=template, member=gold).count() == 1
    assert Coupon.objects.filter(template=template, member=plain).count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert birthdays_award(now=_at(2025, 5, 20, 23)) == {"members": 0, "points": 0}  # re-run: nothing twice
    assert Coupon.objects.filter(template=template).count() == 2
    assert account(gold.pk).balance == 300
    birthdays_award(now=_at(2026, 5, 20))
    assert [r for _p, r in _birthday_points(gold)] == ["birthday:2025", "birthday:2026"]
    assert_sound(gold.pk)


def test_the_day_is_the_programmes_local_day(stores: Any) -> None:
    fifteenth = member(birthday=date(1990, 3, 15))
    fourteenth = member(birthday=date(1990, 3, 14))
    for m in (fifteenth, fourteenth):
        tier_override(actor=SYSTEM, member_id=m.pk, tier="silver", ends_at=None, reason="vip")
    birthdays_award(now=datetime(2025, 3, 14, 17, 30, tzinfo=ZoneInfo("UTC")))  # 01:30 on the 15th in Shanghai
    assert _birthday_points(fifteenth) == [(100, "birthday:2025")]
    assert _birthday_points(fourteenth) == []


def test_a_29_february_birthday_is_kept_on_28_february_in_other_years(stores: Any) -> None:
    leapling = member(birthday=date(2000, 2, 29))
    birthdays_award(now=_at(2025, 2, 28))
    assert [r for _p, r in _birthday_points(leapling)] == ["birthday:2025"]
    birthdays_award(now=_at(2028, 2, 28))  # a leap year: wait for the day itself
    assert [r for _p, r in _birthday_points(leapling)] == ["birthday:2025"]
    birthdays_award(now=_at(2028, 2, 29))
    assert [r for _p, r in _birthday_points(leapling)] == ["birthday:2025", "birthday:2028"]


def test_frozen_and_erased_members_get_no_birthday_gift(stores: Any) -> None:
    """A frozen member earns nothing (docs/members.md), birthday gifts included."""
    from memberhub.members.models import Member

    frozen = member(birthday=date(1990, 6, 1))
    gone = member(birthday=date(1990, 6, 1))
    member(birthday=date(1990, 6, 1))
    Member.objects.filter(pk=frozen.pk).update(status=Member.Status.FROZEN)
    Member.objects.filter(pk=gone.pk).update(status=Member.Status.ERASED)
    assert birthdays_award(now=_at(2025, 6, 1))["members"] == 1
    assert _birthday_points(frozen) == []


def test_registration_earns_the_configured_points_and_the_welcome_coupon(
        stores: Any, django_capture_on_commit_callbacks: Any) -> None:
    template = template_make(name="新人券", issue_rules=[{"event": events.MEMBER_REGISTERED}])
    with django_capture_on_commit_callbacks(execute=True):
        m = member()
    entries = list(PointsEntry.objects.filter(account__member=m).values_list("rule", "points", "reference"))
    assert entries == [("action:registration", 100, "registration")]
    assert Coupon.objects.filter(template=template, member=m).count() == 1
    # a re-delivered event changes nothing
    from memberhub.loyalty.hooks import on_member_registered

    on_member_registered(member_id=m.pk)
    assert account(m.pk).balance == 100
    assert_sound(m.pk)


def test_registration_earns_nothing_when_the_programme_gives_no_points(
        stores: Any, django_capture_on_commit_callbacks: Any) -> None:
    config = ProgrammeConfig()
    config.actions["registration"] = config.actions["registration"].model_copy(update={"points": 0})
    programme_config_set(config)
    with django_capture_on_commit_callbacks(execute=True):
        m = member()
    assert not PointsEntry.objects.filter(account__member=m).exists()


def test_an_upgrade_on_purchase_fires_the_tier_events_and_the_upgrade_coupon(
        stores: Any, heard: list[Any], django_capture_on_commit_callbacks: Any) -> None:
    silver = template_make(name="升银卡券", issue_rules=[{"event": events.TIER_UPGRADED, "to_tiers": ["silver"]}])
    gold = template_make(name="升金卡券", issue_rules=[{"event": events.TIER_UPGRADED, "to_tiers": ["gold"]}])
    m = member()
    with django_capture_on_commit_callbacks(execute=True):
        buy(m.pk, 100_000)  # 银卡: ¥1000 in the window
    assert account(m.pk).tier == "silver"
    assert (events.TIER_UPGRADED, {"member_id": m.pk, "from_tier": "normal", "to_tier": "silver",
                                   "reason": "upgrade"}) in heard
    assert any(n == events.TIER_CHANGED and p["to_tier"] == "silver" for n, p in heard)
    assert Coupon.objects.filter(template=silver, member=m).count() == 1
    assert not Coupon.objects.filter(template=gold).exists()


def test_a_merge_that_lifts_the_survivors_tier_fires_the_tier_events(
        stores: Any, heard: list[Any], django_capture_on_commit_callbacks: Any) -> None:
    from memberhub.members.merge import member_merge

    survivor, absorbed = member(), member()
    tier_override(actor=SYSTEM, member_id=absorbed.pk, tier="gold", ends_at=None, reason="vip")
    with django_capture_on_commit_callbacks(execute=True):
        member_merge(actor=SYSTEM, survivor_id=survivor.pk, absorbed_id=absorbed.pk, reason="duplicate")
    assert any(n == events.TIER_UPGRADED and p["member_id"] == survivor.pk and p["to_tier"] == "gold"
               for n, p in heard)


def test_the_birthday_job_issues_each_tiers_birthday_coupon_once_a_year(
        stores: Any, django_capture_on_commit_callbacks: Any) -> None:
    """Both ways of naming a birthday coupon per tier: an issue rule `{event: member.birthday,
    to_tiers: [gold]}` and the tier benefit `benefits.silver.birthday_coupon_template`."""
    for_gold = template_make(name="金卡生日券", issue_rules=[{"event": events.MEMBER_BIRTHDAY, "to_tiers": ["gold"]}])
    for_silver = template_make(name="银卡生日券")
    config = ProgrammeConfig().model_dump(mode="json")
    config["benefits"]["silver"]["birthday_coupon_template"] = str(for_silver.pk)
    programme_config_set(config)
    gold, silver, plain = (member(birthday=date(1990, 5, 20)) for _ in range(3))
    tier_override(actor=SYSTEM, member_id=gold.pk, tier="gold", ends_at=None, reason="vip")
    tier_override(actor=SYSTEM, member_id=silver.pk, tier="silver", ends_at=None, reason="vip")
    for hour in (9, 10):  # two runs on the day: one coupon each
        with django_capture_on_commit_callbacks(execute=True):
            birthdays_award(now=_at(2025, 5, 20, hour))
    got = {(c.template_id, c.member_id) for c in Coupon.objects.all()}
    assert got == {(for_gold.pk, gold.pk), (for_silver.pk, silver.pk)}
    assert Coupon.objects.count() == 2
    from memberhub.coupons.handlers import on_member_birthday

    on_member_birthday(member_id=silver.pk, year=2025, tier="silver", coupon_template=str(for_silver.pk))  # redelivered
    assert Coupon.objects.count() == 2
    with django_capture_on_commit_callbacks(execute=True):
        birthdays_award(now=_at(2026, 5, 20))  # next year: one more each
    assert Coupon.objects.filter(member=gold, template=for_gold).count() == 2
    assert Coupon.objects.filter(member=silver, template=for_silver).count() == 2
    assert not Coupon.objects.filter(member=plain).exists()
