"""Stored value (储值) and gift cards: top-up bonus, draw orders, refunds, ledger check."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memberhub.domain.wallet import (
    BONUS,
    CARD,
    PRINCIPAL,
    DrawOrder,
    GiftCard,
    InsufficientBalance,
    RefundExceedsPayment,
    TopUpRule,
    WalletAmountInvalid,
    WalletBalance,
    WalletDraw,
    WalletLedgerEntry,
    gift_card_draw,
    gift_card_refund,
    proportional_split,
    topup_apply,
    wallet_draw,
    wallet_ledger_check,
    wallet_refund,
)

RULES = (
    TopUpRule(rule_id="r500", threshold_fen=50_000, bonus_fen=3_000),
    TopUpRule(rule_id="r1000", threshold_fen=100_000, bonus_fen=10_000),
    TopUpRule(rule_id="r2000", threshold_fen=200_000, bonus_fen=25_000),
)
WALLET = WalletBalance(principal_fen=10_000, bonus_fen=1_000)


def test_it_gives_the_bonus_of_the_best_rule_reached():
    top_up = topup_apply(rules=RULES, amount_fen=150_000)
    assert (top_up.principal_fen, top_up.bonus_fen, top_up.rule_id) == (150_000, 10_000, "r1000")


def test_it_gives_no_bonus_below_every_threshold():
    assert topup_apply(rules=RULES, amount_fen=10_000).bonus_fen == 0


def test_it_does_not_add_rules_up():
    assert topup_apply(rules=RULES[:2], amount_fen=300_000).bonus_fen == 10_000


def test_it_refuses_a_non_positive_top_up():
    with pytest.raises(WalletAmountInvalid):
        topup_apply(rules=RULES, amount_fen=0)


def test_it_draws_principal_first():
    assert wallet_draw(balance=WALLET, amount_fen=10_500, order=DrawOrder.PRINCIPAL_FIRST) == WalletDraw(
        10_000, 500
    )


def test_it_draws_bonus_first():
    assert wallet_draw(balance=WALLET, amount_fen=1_500, order=DrawOrder.BONUS_FIRST) == WalletDraw(
        500, 1_000
    )


def test_it_draws_proportionally():
    assert wallet_draw(balance=WALLET, amount_fen=1_100, order=DrawOrder.PROPORTIONAL) == WalletDraw(
        1_000, 100
    )


def test_it_rounds_the_principal_share_half_up():
    # 5 fen from 1:1 is 2.5 : 2.5 -> principal 3, bonus 2
    assert proportional_split(amount_fen=5, principal_fen=100, bonus_fen=100) == WalletDraw(3, 2)


def test_it_refuses_to_overdraw():
    with pytest.raises(InsufficientBalance) as caught:
        wallet_draw(balance=WALLET, amount_fen=11_001, order=DrawOrder.PRINCIPAL_FIRST)
    assert caught.value.params["missing_fen"] == 1


def test_it_draws_what_there_is_when_partial_is_allowed():
    draw = wallet_draw(balance=WALLET, amount_fen=20_000, order=DrawOrder.BONUS_FIRST, allow_partial=True)
    assert draw == WalletDraw(10_000, 1_000)


def test_it_refunds_in_the_proportion_the_payment_drew():
    draw = wallet_draw(balance=WALLET, amount_fen=1_500, order=DrawOrder.BONUS_FIRST)  # 500 + 1000
    assert wallet_refund(draw=draw, refund_fen=300) == WalletDraw(100, 200)


def test_it_refunds_a_whole_payment_exactly():
    draw = WalletDraw(principal_fen=333, bonus_fen=667)
    assert wallet_refund(draw=draw, refund_fen=1000) == draw


def test_it_refuses_to_refund_more_than_was_drawn():
    with pytest.raises(RefundExceedsPayment):
        wallet_refund(draw=WalletDraw(100, 0), refund_fen=60, refunded_before_fen=50)


def test_it_draws_and_refunds_a_gift_card():
    drawn = gift_card_draw(card=GiftCard(code="GC1", balance_fen=5_000), amount_fen=3_000)
    assert (drawn.drawn_fen, drawn.balance_after_fen) == (3_000, 2_000)
    assert gift_card_refund(drawn_fen=3_000, refund_fen=1_000, refunded_before_fen=2_000) == 1_000


def test_it_refuses_to_overdraw_a_gift_card():
    with pytest.raises(InsufficientBalance):
        gift_card_draw(card=GiftCard(code="GC1", balance_fen=5_000), amount_fen=5_001)


def test_it_finds_a_sound_ledger_sound():
    entries = [
        WalletLedgerEntry("e1", PRINCIPAL, 100_000),
        WalletLedgerEntry("e2", BONUS, 10_000),
        WalletLedgerEntry("e3", PRINCIPAL, -500),
    ]
    assert wallet_ledger_check(entries=entries, balances={PRINCIPAL: 99_500, BONUS: 10_000}) == []


def test_it_reports_a_balance_that_does_not_match_its_entries():
    (violation,) = wallet_ledger_check(entries=[WalletLedgerEntry("e1", CARD, 5_000)], balances={CARD: 4_000})
    assert violation.code == "balance_mismatch" and violation.params == {
        "cached_fen": 4_000,
        "computed_fen": 5_000,
    }


def test_it_reports_the_entry_that_took_a_bucket_negative():
    entries = [
        WalletLedgerEntry("e1", BONUS, 100),
        WalletLedgerEntry("e2", BONUS, -300),
        WalletLedgerEntry("e3", BONUS, 500),
    ]
    (violation,) = wallet_ledger_check(entries=entries, balances={BONUS: 300})
    assert (violation.code, violation.entry_id) == ("negative_bucket", "e2")


def test_it_reports_unknown_buckets_and_duplicate_entries():
    entries = [WalletLedgerEntry("e1", PRINCIPAL, 100), WalletLedgerEntry("e1", "coins", 1)]
    codes = [v.code for v in wallet_ledger_check(entries=entries, balances={PRINCIPAL: 100})]
    assert codes == ["duplicate_entry", "unknown_bucket"]


buckets = st.tuples(st.integers(0, 10**7), st.integers(0, 10**7))


@given(balance=buckets, data=st.data(), order=st.sampled_from(list(DrawOrder)))
def test_it_draws_exactly_and_never_beyond_a_bucket(balance, data, order):
    wallet = WalletBalance(principal_fen=balance[0], bonus_fen=balance[1])
    amount = data.draw(st.integers(0, wallet.total_fen))
    draw = wallet_draw(balance=wallet, amount_fen=amount, order=order)
    assert draw.total_fen == amount
    assert 0 <= draw.principal_fen <= wallet.principal_fen and 0 <= draw.bonus_fen <= wallet.bonus_fen


@given(draw=buckets, cuts=st.lists(st.integers(0, 10**7), max_size=8))
def test_it_never_restores_more_than_was_drawn_over_partial_refunds(draw, cuts):
    paid = WalletDraw(principal_fen=draw[0], bonus_fen=draw[1])
    refunded = 0
    restored_p = restored_b = 0
    for cut in cuts:
        cut = min(cut, paid.total_fen - refunded)
        back = wallet_refund(draw=paid, refund_fen=cut, refunded_before_fen=refunded)
        assert back.principal_fen >= 0 and back.bonus_fen >= 0 and back.total_fen == cut
        refunded += cut
        restored_p += back.principal_fen
        restored_b += back.bonus_fen
        assert restored_p <= paid.principal_fen and restored_b <= paid.bonus_fen
    rest = wallet_refund(draw=paid, refund_fen=paid.total_fen - refunded, refunded_before_fen=refunded)
    assert (restored_p + rest.principal_fen, restored_b + rest.bonus_fen) == (
        paid.principal_fen,
        paid.bonus_fen,
    )
