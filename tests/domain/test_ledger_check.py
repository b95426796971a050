from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from memberhub.domain.ledger_check import LedgerEntry, ledger_check
from memberhub.domain.points_lots import Lot

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2025, 1, 1, tzinfo=SH)
NOW = datetime(2025, 6, 1, tzinfo=SH)


def lot(lot_id, points, remaining, expires_at=None, available_at=None):
    return Lot(lot_id, points, remaining, T0, expires_at=expires_at, available_at=available_at)


def entry(entry_id, points, lot_id=None):
    return LedgerEntry(entry_id, T0, points, "earn" if points > 0 else "spend", lot_id)


def codes(violations):
    return [v.code for v in violations]


def test_it_finds_nothing_wrong_with_a_sound_account():
    entries = [entry("e1", 100, "l1"), entry("e2", 50, "l2"), entry("e3", -30, "l1")]
    lots = [lot("l1", 100, 70), lot("l2", 50, 50, available_at=NOW + timedelta(days=3))]
    assert ledger_check(balance=120, entries=entries, lots=lots, pending_balance=50, now=NOW, max_negative=0) == []


def test_it_reports_a_balance_that_is_not_the_sum_of_entries():
    violations = ledger_check(balance=99, entries=[entry("e1", 100)], lots=[lot("l1", 100, 99)])
    assert codes(violations) == ["balance_mismatch"]


def test_it_reports_a_negative_lot_and_one_holding_more_than_it_earned():
    violations = ledger_check(balance=0, entries=[], lots=[lot("a", 10, -5), lot("b", 10, 15)])
    assert codes(violations) == ["lot_negative", "lot_over_remaining", "lots_balance_mismatch"]
    assert [v.ref for v in violations[:2]] == ["a", "b"]


def test_it_reports_lots_that_do_not_hold_the_balance():
    violations = ledger_check(balance=100, entries=[entry("e1", 100)], lots=[lot("l1", 100, 60)])
    assert codes(violations) == ["lots_balance_mismatch"]


def test_it_accepts_an_overdraft_with_empty_lots_within_policy():
    entries = [entry("e1", 100), entry("e2", -100), entry("e3", -20)]
    assert ledger_check(balance=-20, entries=entries, lots=[lot("l1", 100, 0)], max_negative=50) == []
    assert codes(ledger_check(balance=-20, entries=entries, lots=[lot("l1", 100, 0)], max_negative=10)) == [
        "negative_beyond_policy"]


def test_it_reports_duplicate_ids():
    violations = ledger_check(balance=20, entries=[entry("e1", 10), entry("e1", 10)],
                              lots=[lot("l1", 10, 10), lot("l1", 10, 10)])
    assert codes(violations) == ["duplicate_entry", "duplicate_lot"]


def test_it_reconciles_each_lot_with_its_tagged_entries():
    entries = [entry("e1", 100, "l1"), entry("e2", -30, "l1"), entry("e3", -10, "ghost")]
    violations = ledger_check(balance=60, entries=entries, lots=[lot("l1", 100, 60)])
    assert codes(violations) == ["entry_unknown_lot", "lot_entries_mismatch"]


def test_it_reports_an_expired_lot_that_still_holds_points():
    lots = [lot("l1", 10, 10, expires_at=NOW - timedelta(days=1))]
    assert codes(ledger_check(balance=10, entries=[entry("e1", 10)], lots=lots, now=NOW)) == [
        "lot_expired_not_swept"]
    assert ledger_check(balance=10, entries=[entry("e1", 10)], lots=lots) == []


def test_it_reports_a_pending_balance_that_does_not_match_the_pending_lots():
    lots = [lot("l1", 10, 10, available_at=NOW + timedelta(days=1))]
    violations = ledger_check(balance=10, entries=[entry("e1", 10)], lots=lots, pending_balance=0, now=NOW)
    assert codes(violations) == ["pending_mismatch"]


def test_it_reports_inconsistent_lot_dates_and_empty_lots():
    lots = [Lot("l1", 0, 0, T0, expires_at=T0)]
    assert codes(ledger_check(balance=0, entries=[], lots=lots)) == ["lot_points_not_positive",
                                                                       "lot_dates_inconsistent"]
