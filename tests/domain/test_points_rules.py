import json
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memberhub.domain.points_rules import (
    ActionAward,
    ActionRule,
    EarnRules,
    InvalidRule,
    OrderLine,
    Rounding,
    Stacking,
    TimeMultiplier,
    action_points,
    earn_points,
    round_points,
)

SH = ZoneInfo("Asia/Shanghai")
PLAIN_DAY = datetime(2025, 6, 10, 14, 0, tzinfo=SH)


def line(paid_fen, sku="SKU1", category="food", line_id="L1"):
    return OrderLine(line_id=line_id, sku=sku, category=category, paid_fen=paid_fen)


def test_it_earns_the_base_rate_per_yuan_rounded_down_by_default():
    result = earn_points(rules=EarnRules(), lines=[line(12_899)], at=PLAIN_DAY)
    assert result.points == 128


@pytest.mark.parametrize(("rounding", "expected"), [(Rounding.FLOOR, 128), (Rounding.HALF_UP, 129),
                                                    (Rounding.CEIL, 129)])
def test_it_applies_the_configured_rounding(rounding, expected):
    result = earn_points(rules=EarnRules(rounding=rounding), lines=[line(12_850)], at=PLAIN_DAY)
    assert result.points == expected


def test_it_rounds_half_up_symmetrically():
    assert round_points(Fraction(-5, 2), Rounding.HALF_UP) == -3
    assert round_points(Fraction(5, 2), Rounding.HALF_UP) == 3


def test_it_rounds_once_per_line_not_per_factor():
    rules = EarnRules(category_multipliers={"food": Decimal("1.5")})
    # 0.99 yuan × 1.5 × 1.5 = 2.2275 → 2 (rounding after each factor would give 0)
    result = earn_points(rules=rules, lines=[line(99)], at=PLAIN_DAY, tier_multiplier=Decimal("1.5"))
    assert result.points == 2


def test_it_multiplies_by_tier_and_category():
    rules = EarnRules(category_multipliers={"food": Decimal(2)})
    result = earn_points(rules=rules, lines=[line(10_000)], at=PLAIN_DAY, tier_code="gold",
                         tier_multiplier=Decimal("1.5"))
    assert result.points == 300
    assert [s.step for s in result.lines[0].trace] == ["base_rate", "tier_multiplier", "category_multiplier",
                                                       "rounding"]


def test_it_lets_a_sku_multiplier_override_its_category():
    rules = EarnRules(category_multipliers={"food": Decimal(2)}, sku_multipliers={"SKU1": Decimal(3)})
    result = earn_points(rules=rules, lines=[line(1000)], at=PLAIN_DAY)
    assert result.points == 30
    assert "category_multiplier" not in [s.step for s in result.lines[0].trace]


def test_it_earns_nothing_on_excluded_skus_and_categories():
    rules = EarnRules(excluded_skus=frozenset({"GIFTCARD"}), excluded_categories=frozenset({"tobacco"}))
    result = earn_points(rules=rules, lines=[line(5000, sku="GIFTCARD", line_id="a"),
                                             line(5000, category="tobacco", line_id="b"),
                                             line(5000, line_id="c")], at=PLAIN_DAY)
    assert [(x.points, x.excluded) for x in result.lines] == [(0, True), (0, True), (50, False)]
    assert result.points == 50
    assert result.lines[0].trace[0].step == "excluded_sku"
    assert result.lines[1].trace[0].step == "excluded_category"


def test_it_earns_nothing_on_a_negative_paid_amount():
    assert earn_points(rules=EarnRules(), lines=[line(-500)], at=PLAIN_DAY).points == 0


def test_it_doubles_points_inside_a_promotion_window_only():
    week = TimeMultiplier(code="double_week", multiplier=Decimal(2), starts_at=datetime(2025, 6, 1, tzinfo=SH),
                          ends_at=datetime(2025, 6, 8, tzinfo=SH))
    rules = EarnRules(time_multipliers=(week,))
    assert earn_points(rules=rules, lines=[line(1000)], at=datetime(2025, 6, 7, 23, 59, tzinfo=SH)).points == 20
    assert earn_points(rules=rules, lines=[line(1000)], at=datetime(2025, 6, 8, 0, 0, tzinfo=SH)).points == 10


def test_it_applies_the_member_day_on_the_local_8th_of_every_month():
    member_day = TimeMultiplier(code="member_day", multiplier=Decimal(3), day_of_month=8)
    rules = EarnRules(time_multipliers=(member_day,))
    assert earn_points(rules=rules, lines=[line(1000)], at=datetime(2025, 7, 8, 9, tzinfo=SH)).points == 30
    # 7 Jul 17:00 UTC is 8 Jul 01:00 in Shanghai
    utc_evening = datetime(2025, 7, 7, 17, tzinfo=ZoneInfo("UTC"))
    assert earn_points(rules=rules, lines=[line(1000)], at=utc_evening).points == 30
    assert earn_points(rules=rules, lines=[line(1000)], at=datetime(2025, 7, 9, 9, tzinfo=SH)).points == 10


def test_it_takes_only_the_best_time_multiplier_by_default():
    promos = (TimeMultiplier("member_day", Decimal(2), day_of_month=10),
              TimeMultiplier("summer", Decimal(3), starts_at=datetime(2025, 6, 1, tzinfo=SH)))
    result = earn_points(rules=EarnRules(time_multipliers=promos), lines=[line(1000)], at=PLAIN_DAY)
    assert result.points == 30
    assert [s.code for s in result.lines[0].trace if s.step == "time_multiplier"] == ["summer"]


def test_it_multiplies_time_multipliers_when_configured_to_stack():
    promos = (TimeMultiplier("member_day", Decimal(2), day_of_month=10),
              TimeMultiplier("summer", Decimal(3), starts_at=datetime(2025, 6, 1, tzinfo=SH)))
    rules = EarnRules(time_multipliers=promos, stacking=Stacking.MULTIPLY)
    assert earn_points(rules=rules, lines=[line(1000)], at=PLAIN_DAY).points == 60


def test_it_limits_a_time_multiplier_to_its_categories():
    promo = TimeMultiplier("beauty_week", Decimal(2), starts_at=datetime(2025, 6, 1, tzinfo=SH),
                           categories=frozenset({"beauty"}))
    rules = EarnRules(time_multipliers=(promo,))
    result = earn_points(rules=rules, lines=[line(1000, category="beauty", line_id="a"), line(1000, line_id="b")],
                         at=PLAIN_DAY)
    assert [x.points for x in result.lines] == [20, 10]


def test_it_produces_a_json_serialisable_trace_explaining_the_result():
    rules = EarnRules(category_multipliers={"food": Decimal("1.6")})
    result = earn_points(rules=rules, lines=[line(8000)], at=PLAIN_DAY, tier_code="silver")
    assert result.points == 128
    payload = json.loads(json.dumps(result.trace))
    assert payload[-1] == {"line_id": "L1", "step": "rounding", "code": "floor", "factor": None, "value": "128"}
    assert payload[0]["step"] == "base_rate" and payload[0]["value"] == "80"
    assert payload[1] == {"line_id": "L1", "step": "category_multiplier", "code": "food", "factor": "1.6",
                          "value": "128"}


def test_it_refuses_misconfigured_rules():
    with pytest.raises(InvalidRule):
        EarnRules(points_per_yuan=Decimal(-1))
    with pytest.raises(InvalidRule):
        EarnRules(category_multipliers={"food": Decimal(-2)})
    with pytest.raises(InvalidRule):
        TimeMultiplier("always", Decimal(2))
    with pytest.raises(InvalidRule):
        TimeMultiplier("bad_day", Decimal(2), day_of_month=32)


def test_it_freezes_rule_mappings():
    rules = EarnRules(category_multipliers={"food": Decimal(2)})
    with pytest.raises(TypeError):
        rules.category_multipliers["food"] = Decimal(9)


@given(paid=st.lists(st.integers(0, 10_000_000), min_size=1, max_size=6),
       rate=st.decimals(min_value=0, max_value=10, places=2),
       rounding=st.sampled_from(list(Rounding)))
def test_it_keeps_every_line_within_one_point_of_the_exact_value(paid, rate, rounding):
    lines = [line(p, line_id=str(i)) for i, p in enumerate(paid)]
    result = earn_points(rules=EarnRules(points_per_yuan=rate, rounding=rounding), lines=lines, at=PLAIN_DAY)
    for earned, p in zip(result.lines, paid, strict=True):
        exact = Fraction(p, 100) * Fraction(rate)
        assert abs(earned.points - exact) < 1 and earned.points >= 0
    assert result.points == sum(x.points for x in result.lines)


# --- action points -----------------------------------------------------------------------


def test_it_awards_action_points_without_caps():
    assert action_points(rule=ActionRule("review", 10), at=PLAIN_DAY, history=[]).points == 10


def test_it_caps_check_in_to_once_a_local_day():
    rule = ActionRule("check_in", 5, per_day=5)
    earlier_today = [ActionAward(at=PLAIN_DAY - timedelta(hours=3), points=5)]
    assert action_points(rule=rule, at=PLAIN_DAY, history=earlier_today).points == 0
    yesterday = [ActionAward(at=PLAIN_DAY - timedelta(days=1), points=5)]
    assert action_points(rule=rule, at=PLAIN_DAY, history=yesterday).points == 5


def test_it_awards_the_remainder_under_a_monthly_cap():
    rule = ActionRule("review", 20, per_month=50)
    history = [ActionAward(at=datetime(2025, 6, d, tzinfo=SH), points=20) for d in (1, 2)]
    result = action_points(rule=rule, at=PLAIN_DAY, history=history)
    assert result.points == 10
    assert result.trace[-1].step == "cap_month"
    last_month = [ActionAward(at=datetime(2025, 5, d, tzinfo=SH), points=20) for d in (1, 2, 3)]
    assert action_points(rule=rule, at=PLAIN_DAY, history=last_month).points == 20


def test_it_awards_registration_once_per_lifetime():
    rule = ActionRule("registration", 100, per_lifetime=100)
    assert action_points(rule=rule, at=PLAIN_DAY, history=[]).points == 100
    again = [ActionAward(at=datetime(2020, 1, 1, tzinfo=SH), points=100)]
    assert action_points(rule=rule, at=PLAIN_DAY, history=again).points == 0


def test_it_awards_the_birthday_once_a_year():
    rule = ActionRule("birthday", 200, per_year=200)
    assert action_points(rule=rule, at=PLAIN_DAY,
                         history=[ActionAward(datetime(2024, 6, 10, tzinfo=SH), 200)]).points == 200
    assert action_points(rule=rule, at=PLAIN_DAY,
                         history=[ActionAward(datetime(2025, 1, 10, tzinfo=SH), 200)]).points == 0


def test_awards_booked_out_of_order_still_count_against_their_period():
    """Two tills at once (the later event booked first), or a backdated event: the day's cap
    is what the day gives in all, whatever order its awards were booked in."""
    rule = ActionRule("check_in", 5, per_day=5)
    later_today = [ActionAward(at=PLAIN_DAY + timedelta(milliseconds=3), points=5)]
    assert action_points(rule=rule, at=PLAIN_DAY, history=later_today).points == 0
    same_moment = [ActionAward(at=PLAIN_DAY, points=5)]
    assert action_points(rule=rule, at=PLAIN_DAY, history=same_moment).points == 0
    tomorrow = [ActionAward(at=PLAIN_DAY + timedelta(days=1), points=5)]
    assert action_points(rule=rule, at=PLAIN_DAY, history=tomorrow).points == 5
    monthly = ActionRule("review", 20, per_month=50)
    later_this_month = [ActionAward(at=PLAIN_DAY + timedelta(days=d), points=20) for d in (1, 2)]
    assert action_points(rule=monthly, at=PLAIN_DAY, history=later_this_month).points == 10


@given(offsets=st.lists(st.integers(min_value=-3 * 24 * 60, max_value=3 * 24 * 60), min_size=1, max_size=25),
       points=st.integers(min_value=1, max_value=30), per_day=st.integers(min_value=0, max_value=60),
       per_month=st.integers(min_value=0, max_value=200))
def test_no_day_or_month_ever_gives_more_than_its_cap_whatever_the_booking_order(
        offsets: list[int], points: int, per_day: int, per_month: int) -> None:
    """Events minutes apart over a week, booked in the order given (not their time order),
    each decided against what was booked before it."""
    rule = ActionRule("review", points, per_day=per_day, per_month=per_month)
    booked: list[ActionAward] = []
    for minutes in offsets:
        at = PLAIN_DAY + timedelta(minutes=minutes)
        booked.append(ActionAward(at=at, points=action_points(rule=rule, at=at, history=booked).points))
    days: dict[object, int] = {}
    months: dict[object, int] = {}
    for award in booked:
        local = award.at.astimezone(SH)
        days[local.date()] = days.get(local.date(), 0) + award.points
        months[(local.year, local.month)] = months.get((local.year, local.month), 0) + award.points
    assert max(days.values()) <= per_day
    assert max(months.values()) <= per_month


def test_it_refuses_negative_action_points():
    with pytest.raises(InvalidRule):
        ActionRule("review", -1)
