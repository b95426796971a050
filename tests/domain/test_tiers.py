import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memberhub.domain.points_rules import InvalidRule
from memberhub.domain.tiers import (
    Combine,
    Mode,
    PurchaseFact,
    Reason,
    TierLadder,
    TierRule,
    TierState,
    UnknownTier,
    WindowKind,
    default_ladder,
    qualifying_totals,
    tier_evaluate,
    tier_progress,
    tier_qualified,
    upgrade_due,
)

SH = ZoneInfo("Asia/Shanghai")
AT = datetime(2025, 6, 15, 12, tzinfo=SH)
LADDER = TierLadder(tiers=(
    TierRule("normal", "普通"),
    TierRule("silver", "银卡", min_spend_fen=100_000, min_purchases=5),
    TierRule("gold", "金卡", min_spend_fen=500_000, min_purchases=15),
    TierRule("diamond", "钻石", min_spend_fen=2_000_000, min_purchases=30, combine=Combine.ALL),
), window=WindowKind.ROLLING, window_months=12, term_months=12)


def buys(n, fen_each, start=AT - timedelta(days=30), step=timedelta(days=1)):
    return [PurchaseFact(at=start + i * step, paid_fen=fen_each) for i in range(n)]


def evaluate(facts, state, mode=Mode.PERIODIC, ladder=LADDER, at=AT):
    return tier_evaluate(ladder=ladder, facts=facts, state=state, at=at, mode=mode)


def test_it_qualifies_on_any_criterion_by_default():
    assert tier_qualified(ladder=LADDER, totals=qualifying_totals(ladder=LADDER, facts=buys(5, 1), at=AT)) == "silver"
    assert tier_qualified(ladder=LADDER, totals=qualifying_totals(ladder=LADDER, facts=buys(1, 600_000),
                                                                  at=AT)) == "gold"


def test_it_needs_every_criterion_for_an_all_tier():
    only_spend = buys(2, 1_500_000)
    assert tier_qualified(ladder=LADDER, totals=qualifying_totals(ladder=LADDER, facts=only_spend, at=AT)) == "gold"
    both = buys(30, 70_000)
    assert tier_qualified(ladder=LADDER, totals=qualifying_totals(ladder=LADDER, facts=both, at=AT)) == "diamond"


def test_it_counts_a_rolling_window_of_twelve_months():
    old = [PurchaseFact(at=AT - timedelta(days=400), paid_fen=900_000)]
    future = [PurchaseFact(at=AT + timedelta(days=1), paid_fen=900_000)]
    totals = qualifying_totals(ladder=LADDER, facts=old + future + buys(1, 100), at=AT)
    assert (totals.spend_fen, totals.purchases) == (100, 1)


def test_it_counts_the_calendar_year_in_local_time():
    ladder = TierLadder(tiers=LADDER.tiers, window=WindowKind.CALENDAR_YEAR)
    facts = [PurchaseFact(at=datetime(2024, 12, 31, 16, 30, tzinfo=ZoneInfo("UTC")), paid_fen=500),  # 1 Jan local
             PurchaseFact(at=datetime(2024, 12, 31, 23, 0, tzinfo=SH), paid_fen=700)]
    assert qualifying_totals(ladder=ladder, facts=facts, at=AT).spend_fen == 500


def test_it_counts_a_lifetime_window():
    ladder = TierLadder(tiers=LADDER.tiers, window=WindowKind.LIFETIME)
    facts = [PurchaseFact(at=datetime(2001, 1, 1, tzinfo=SH), paid_fen=500_000)]
    assert tier_qualified(ladder=ladder, totals=qualifying_totals(ladder=ladder, facts=facts, at=AT)) == "gold"


def test_it_nets_refunds_given_as_negative_facts():
    facts = buys(5, 30_000) + [PurchaseFact(at=AT - timedelta(days=1), paid_fen=-30_000, count=-1)]
    totals = qualifying_totals(ladder=LADDER, facts=facts, at=AT)
    assert (totals.spend_fen, totals.purchases) == (120_000, 4)
    partial = PurchaseFact(at=AT, paid_fen=-100)
    assert partial.purchases == 0


def test_it_upgrades_on_purchase():
    decision = evaluate(buys(5, 1_000), TierState("normal"), mode=Mode.ON_PURCHASE)
    assert (decision.tier, decision.reason, decision.changed) == ("silver", Reason.UPGRADE, True)
    assert decision.term_ends_at == datetime(2026, 6, 15, 12, tzinfo=SH)


def test_it_never_downgrades_on_purchase():
    decision = evaluate([], TierState("gold", term_ends_at=AT - timedelta(days=1)), mode=Mode.ON_PURCHASE)
    assert (decision.tier, decision.reason) == ("gold", Reason.UNCHANGED)


def test_it_protects_a_tier_until_its_term_ends():
    state = TierState("gold", term_ends_at=AT + timedelta(days=10))
    decision = evaluate(buys(5, 1_000), state)
    assert (decision.tier, decision.reason) == ("gold", Reason.PROTECTED)
    assert decision.explanation["protected_until"] == state.term_ends_at.isoformat()


def test_it_downgrades_to_the_qualified_tier_after_the_term():
    decision = evaluate(buys(5, 1_000), TierState("diamond", term_ends_at=AT))
    assert (decision.tier, decision.reason) == ("silver", Reason.DOWNGRADE)


def test_it_downgrades_one_step_at_a_time_when_configured():
    ladder = TierLadder(tiers=LADDER.tiers, downgrade_one_step=True)
    decision = evaluate([], TierState("diamond", term_ends_at=AT), ladder=ladder)
    assert (decision.tier, decision.reason) == ("gold", Reason.DOWNGRADE)
    assert decision.term_ends_at == datetime(2026, 6, 15, 12, tzinfo=SH)


def test_it_gives_the_entry_tier_no_term():
    decision = evaluate([], TierState("silver", term_ends_at=AT))
    assert (decision.tier, decision.term_ends_at) == ("normal", None)


def test_it_renews_a_tier_kept_at_the_end_of_its_term():
    decision = evaluate(buys(15, 1_000), TierState("gold", term_ends_at=AT - timedelta(hours=1)))
    assert (decision.tier, decision.reason) == ("gold", Reason.RENEWED)
    assert decision.term_ends_at == datetime(2026, 6, 15, 12, tzinfo=SH)


def test_it_does_not_renew_every_night_on_a_ladder_without_terms():
    ladder = TierLadder(tiers=LADDER.tiers, term_months=None)
    decision = evaluate(buys(15, 1_000), TierState("gold"), ladder=ladder)
    assert (decision.tier, decision.reason, decision.term_ends_at) == ("gold", Reason.UNCHANGED, None)


def test_it_leaves_a_tier_unchanged_inside_its_term():
    state = TierState("gold", term_ends_at=AT + timedelta(days=1))
    decision = evaluate(buys(15, 1_000), state)
    assert (decision.reason, decision.term_ends_at) == (Reason.UNCHANGED, state.term_ends_at)


def test_it_upgrades_during_periodic_evaluation_even_inside_a_term():
    decision = evaluate(buys(15, 1_000), TierState("silver", term_ends_at=AT + timedelta(days=100)))
    assert (decision.tier, decision.reason) == ("gold", Reason.UPGRADE)


def test_it_lets_an_active_override_win():
    state = TierState("diamond", override_tier="diamond", override_ends_at=AT + timedelta(days=1))
    decision = evaluate([], state)
    assert (decision.tier, decision.reason, decision.override_cleared) == ("diamond", Reason.OVERRIDE_ACTIVE, False)


def test_it_gives_way_to_the_computed_tier_when_the_override_ends():
    state = TierState("diamond", term_ends_at=AT + timedelta(days=300), override_tier="diamond",
                      override_ends_at=AT)
    decision = evaluate(buys(5, 1_000), state, mode=Mode.ON_PURCHASE)
    assert (decision.tier, decision.reason, decision.override_cleared) == ("silver", Reason.OVERRIDE_ENDED, True)


def test_it_explains_the_decision_in_json():
    decision = evaluate(buys(5, 1_000), TierState("normal"))
    explanation = json.loads(json.dumps(decision.explanation))
    assert explanation["qualified_tier"] == "silver"
    assert (explanation["spend_fen"], explanation["purchases"]) == (5_000, 5)
    assert explanation["criteria"]["silver"] == {"combine": "any", "spend_fen": 100_000, "purchases": 5}
    assert explanation["window_start"] == datetime(2024, 6, 15, 12, tzinfo=SH).isoformat()


def test_it_refuses_a_tier_not_on_the_ladder():
    with pytest.raises(UnknownTier):
        evaluate([], TierState("platinum"))


def test_it_refuses_an_inconsistent_ladder():
    with pytest.raises(InvalidRule):
        TierLadder(tiers=(TierRule("a", "A", min_spend_fen=1),))
    with pytest.raises(InvalidRule):
        TierLadder(tiers=(TierRule("a", "A"), TierRule("a", "B", min_spend_fen=1)))
    with pytest.raises(InvalidRule):
        TierLadder(tiers=())


def test_it_ships_a_default_four_tier_ladder():
    assert [t.code for t in default_ladder().tiers] == ["normal", "silver", "gold", "diamond"]


# --- progress ----------------------------------------------------------------------------


def test_it_reports_what_is_missing_for_the_next_tier():
    facts = buys(3, 50_000, start=datetime(2025, 3, 1, tzinfo=SH))
    progress = tier_progress(ladder=LADDER, facts=facts, state=TierState("normal"), at=AT)
    gap = progress.next
    assert (gap.tier, gap.missing_spend_fen, gap.missing_purchases, gap.missing_points, gap.met) == (
        "silver", 0, 2, None, True)
    assert progress.keep is None


def test_it_dates_the_gap_to_when_the_oldest_purchase_ages_out():
    facts = buys(2, 10_000, start=datetime(2024, 9, 20, 10, tzinfo=SH), step=timedelta(days=30))
    progress = tier_progress(ladder=LADDER, facts=facts, state=TierState("normal"), at=AT)
    assert progress.next.missing_spend_fen == 80_000
    assert progress.next.deadline == date(2025, 9, 19)


def test_it_dates_a_calendar_year_gap_to_the_31st_of_december():
    ladder = TierLadder(tiers=LADDER.tiers, window=WindowKind.CALENDAR_YEAR)
    progress = tier_progress(ladder=ladder, facts=[], state=TierState("normal"), at=AT)
    assert progress.next.deadline == date(2025, 12, 31)


def test_it_reports_what_is_needed_to_keep_the_tier_by_the_term_end():
    term_end = datetime(2025, 9, 1, tzinfo=SH)
    facts = [PurchaseFact(at=datetime(2024, 8, 1, tzinfo=SH), paid_fen=300_000),  # ages out before term end
             PurchaseFact(at=datetime(2025, 5, 1, tzinfo=SH), paid_fen=200_000)]
    progress = tier_progress(ladder=LADDER, facts=facts, state=TierState("gold", term_ends_at=term_end), at=AT)
    keep = progress.keep
    assert (keep.tier, keep.missing_spend_fen, keep.missing_purchases, keep.met) == ("gold", 300_000, 14, False)
    assert keep.deadline == date(2025, 8, 31)
    assert progress.next.tier == "diamond"


def test_it_has_no_next_tier_at_the_top():
    progress = tier_progress(ladder=LADDER, facts=[], state=TierState("diamond"), at=AT)
    assert progress.next is None and progress.keep.deadline is None


def test_it_reports_progress_from_an_active_override_tier():
    state = TierState("gold", override_tier="gold", override_ends_at=datetime(2025, 7, 1, tzinfo=SH))
    progress = tier_progress(ladder=LADDER, facts=[], state=state, at=AT)
    assert progress.current == "gold" and progress.keep.deadline == date(2025, 6, 30)


def test_upgrade_is_due_when_the_window_qualifies_above_the_tier_held():
    facts = buys(5, 20_000)  # silver
    assert upgrade_due(ladder=LADDER, facts=facts, state=TierState("normal"), at=AT)
    assert not upgrade_due(ladder=LADDER, facts=facts, state=TierState("silver", AT + timedelta(days=90)), at=AT)
    assert not upgrade_due(ladder=LADDER, facts=facts, state=TierState("gold", AT + timedelta(days=90)), at=AT)
    assert upgrade_due(ladder=LADDER, facts=facts, state=TierState("gold", None, "gold", AT - timedelta(days=1)), at=AT)


_TIERS = [t.code for t in LADDER.tiers]


@settings(max_examples=300, deadline=None)
@given(n=st.integers(0, 40), fen=st.integers(0, 200_000), tier=st.sampled_from(_TIERS),
       term_days=st.one_of(st.none(), st.integers(-400, 400)), override=st.one_of(st.none(), st.sampled_from(_TIERS)),
       override_days=st.one_of(st.none(), st.integers(-30, 30)))
def test_when_no_upgrade_is_due_the_on_purchase_evaluation_changes_nothing(n, fen, tier, term_days, override,
                                                                           override_days):
    term = None if term_days is None else AT + timedelta(days=term_days)
    until = None if override is None or override_days is None else AT + timedelta(days=override_days)
    state = TierState(tier, term, override, until)
    facts = buys(n, fen)
    decision = tier_evaluate(ladder=LADDER, facts=facts, state=state, at=AT, mode=Mode.ON_PURCHASE)
    if not upgrade_due(ladder=LADDER, facts=facts, state=state, at=AT):
        assert (decision.tier, decision.term_ends_at, decision.override_cleared, decision.reason) == \
            (tier, term, False, Reason.UNCHANGED)
    else:
        assert decision.reason is not Reason.UNCHANGED
