"""Refunds (退款扣回积分): how many points to take back, and from where.

Clawback is proportional to the refunded paid amount of each line and is computed on
the *cumulative* refund — ``round(earned × refunded_so_far / paid) − clawed_so_far`` —
so a line refunded in several parts never loses more than it earned, and a full refund
takes back exactly what was earned, whatever the rounding. The rounding is the one
recorded when the line earned (the rule may have changed since).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from memberhub.domain.errors import DomainError
from memberhub.domain.points_lots import InvalidAmount
from memberhub.domain.points_rules import LineEarn, Rounding, TraceStep, round_points


class InvalidRefund(DomainError):
    """A refund names an unknown line or refunds more than was paid for it."""

    code = "invalid_refund"


@dataclass(frozen=True, slots=True)
class EarnedLine:
    """The persisted state of one earning line: what it earned and what was refunded so far."""

    line_id: str
    paid_fen: int
    points: int
    rounding: Rounding = Rounding.FLOOR
    refunded_fen: int = 0
    clawed_back: int = 0

    @classmethod
    def from_earn(cls, earn: LineEarn) -> EarnedLine:
        return cls(line_id=earn.line_id, paid_fen=earn.paid_fen, points=earn.points, rounding=earn.rounding)


@dataclass(frozen=True, slots=True)
class LineClawback:
    line_id: str
    refund_fen: int
    points: int  # to take back now
    refunded_fen_total: int  # to persist on the line
    clawed_back_total: int  # to persist on the line; never above the line's points


@dataclass(frozen=True, slots=True)
class Clawback:
    points: int
    lines: tuple[LineClawback, ...]
    trace: tuple[TraceStep, ...]


def whole_refund(*, lines: Sequence[EarnedLine]) -> dict[str, int]:
    """The refund amounts that refund every line in full (what is left of it)."""
    return {line.line_id: line.paid_fen - line.refunded_fen for line in lines}


def refund_clawback(*, lines: Sequence[EarnedLine], refund_fen: Mapping[str, int]) -> Clawback:
    """Points to take back for refunding ``refund_fen[line_id]`` fen of each named line.

    Raises ``InvalidRefund`` for an unknown line, a negative amount, or more than the
    line has left to refund.
    """
    by_id = {line.line_id: line for line in lines}
    result: list[LineClawback] = []
    trace: list[TraceStep] = []
    for line_id, amount in refund_fen.items():
        line = by_id.get(line_id)
        if line is None:
            raise InvalidRefund(f"line {line_id!r} is not on the order", line_id=line_id)
        if amount < 0:
            raise InvalidRefund("refund amount must be >= 0", line_id=line_id, refund_fen=amount)
        refunded = line.refunded_fen + amount
        if refunded > line.paid_fen:
            raise InvalidRefund(
                f"line {line_id!r}: refunding {amount} fen exceeds the {line.paid_fen - line.refunded_fen} left",
                line_id=line_id, refund_fen=amount, refundable_fen=line.paid_fen - line.refunded_fen,
            )
        if line.paid_fen <= 0 or line.points <= 0:
            target = line.clawed_back
        else:
            target = round_points(Fraction(line.points * refunded, line.paid_fen), line.rounding)
            target = min(max(target, line.clawed_back), line.points)
        points = target - line.clawed_back
        result.append(LineClawback(line_id, amount, points, refunded, target))
        trace.append(TraceStep(line_id, "refund_proportional", line.rounding.value,
                               f"{refunded}/{line.paid_fen}", str(points)))
    return Clawback(points=sum(c.points for c in result), lines=tuple(result), trace=tuple(trace))


@dataclass(frozen=True, slots=True)
class ClawbackSettlement:
    """Where a clawback comes from. The four parts always add up to the clawback."""

    from_pending: int  # voids the order's own still-pending points (no balance impact on spendable)
    from_balance: int  # taken from spendable points
    into_negative: int  # balance allowed below zero by policy (透支)
    debt: int  # shortfall recorded as a debt that future earning repays (积分欠款)


def clawback_settle(*, clawback: int, available: int, max_negative: int, pending: int = 0) -> ClawbackSettlement:
    """Decide how a clawback is covered, cheapest for the member's experience first.

    1. the order's own pending points (still in the return window) are voided;
    2. then spendable points (``available``, may already be negative);
    3. then the balance may go negative down to ``-max_negative`` (0 = never);
    4. the rest is a debt, repaid by future earning (see ``debt_repay``).
    """
    if clawback < 0 or pending < 0 or max_negative < 0:
        raise InvalidAmount("clawback, pending and max_negative must be >= 0")
    from_pending = min(clawback, pending)
    left = clawback - from_pending
    from_balance = min(left, max(available, 0))
    left -= from_balance
    headroom = max(max_negative + min(available, 0), 0)
    into_negative = min(left, headroom)
    return ClawbackSettlement(from_pending, from_balance, into_negative, left - into_negative)


@dataclass(frozen=True, slots=True)
class DebtRepayment:
    to_negative: int  # brings a negative balance back towards zero (no new lot for it)
    to_debt: int  # repays the recorded debt
    to_lot: int  # becomes a new spendable lot


def debt_repay(*, earn: int, debt: int, balance: int = 0) -> DebtRepayment:
    """Split a new earn: first refill a negative balance, then repay debt, the rest is a new lot.

    A negative balance is owed inside the ledger and a debt outside it; both come before
    the member gets new spendable points, otherwise a clawback could be dodged by
    earning and spending again.
    """
    if earn < 0 or debt < 0:
        raise InvalidAmount("earn and debt must be >= 0")
    to_negative = min(earn, max(-balance, 0))
    to_debt = min(earn - to_negative, debt)
    return DebtRepayment(to_negative, to_debt, earn - to_negative - to_debt)
