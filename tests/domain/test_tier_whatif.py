import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from memberhub.domain.tier_whatif import WhatIfMember, tier_whatif, tier_whatif_rows
from memberhub.domain.tiers import PurchaseFact, TierLadder, TierRule

SH = ZoneInfo("Asia/Shanghai")
AT = datetime(2025, 6, 15, tzinfo=SH)
PROPOSED = TierLadder(tiers=(TierRule("normal", "普通"), TierRule("silver", "银卡", min_spend_fen=50_000),
                             TierRule("gold", "金卡", min_spend_fen=200_000)))


def member(member_id, current, *spends, days_ago=10):
    return WhatIfMember(member_id, current, [PurchaseFact(AT - timedelta(days=days_ago), s) for s in spends])


def test_it_counts_members_per_proposed_tier_and_their_moves():
    members = [member("1", "normal", 60_000), member("2", "gold", 60_000), member("3", "silver", 60_000),
               member("4", "normal", 10_000), member("5", "silver", 150_000, 100_000)]
    report = tier_whatif(ladder=PROPOSED, members=members, at=AT)
    assert report.members == 5
    assert report.proposed_counts == {"normal": 1, "silver": 3, "gold": 1}
    assert report.current_counts == {"normal": 2, "gold": 1, "silver": 2}
    assert (report.up, report.down, report.same, report.unmapped) == (2, 1, 2, 0)
    assert report.transitions["gold"] == {"silver": 1}


def test_it_counts_members_whose_tier_is_not_on_the_proposed_ladder_as_unmapped():
    report = tier_whatif(ladder=PROPOSED, members=[member("1", "diamond", 10)], at=AT)
    assert (report.unmapped, report.up, report.down, report.same) == (1, 0, 0, 0)
    assert report.transitions == {"diamond": {"normal": 1}}


def test_it_ignores_purchases_outside_the_window():
    report = tier_whatif(ladder=PROPOSED, members=[member("1", "normal", 500_000, days_ago=400)], at=AT)
    assert report.proposed_counts["normal"] == 1


def test_it_reports_zero_for_an_empty_population():
    report = tier_whatif(ladder=PROPOSED, members=[], at=AT)
    assert report.members == 0 and report.proposed_counts == {"normal": 0, "silver": 0, "gold": 0}


def test_it_gives_the_same_report_from_flat_rows():
    members = [member("1", "normal", 60_000), member("2", "gold", 60_000), member("3", "silver"),
               member("4", "diamond", 300_000, days_ago=400)]
    rows = [(m.member_id, f.at, f.paid_fen, f.points, f.purchases) for m in members for f in m.facts]
    rows.append(("stranger", AT, 999_999, 0, 1))
    from_rows = tier_whatif_rows(ladder=PROPOSED, current={m.member_id: m.current_tier for m in members},
                                 rows=rows, at=AT)
    assert from_rows == tier_whatif(ladder=PROPOSED, members=members, at=AT)


def _population(n):
    rng = random.Random(7)
    histories = [[PurchaseFact(AT - timedelta(days=rng.randrange(0, 500)), rng.randrange(1_000, 40_000))
                  for _ in range(12)] for _ in range(500)]
    return [WhatIfMember(str(i), rng.choice(["normal", "silver", "gold"]), histories[i % 500]) for i in range(n)]


@pytest.mark.slow
def test_it_counts_every_one_of_100k_members():
    members = _population(100_000)
    report = tier_whatif(ladder=PROPOSED, members=members, at=AT)
    assert report.members == 100_000


@pytest.mark.slow
def test_it_gives_the_same_report_from_rows_as_from_facts_at_100k():
    members = _population(100_000)
    rows = [(m.member_id, f.at, f.paid_fen, f.points, 1) for m in members for f in m.facts]
    current = {m.member_id: m.current_tier for m in members}
    report = tier_whatif_rows(ladder=PROPOSED, current=current, rows=rows, at=AT)
    assert report == tier_whatif(ladder=PROPOSED, members=members, at=AT)
