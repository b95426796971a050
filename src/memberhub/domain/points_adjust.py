"""Manual points adjustments (人工调整积分) and the four-eyes rule.

An adjustment whose size is above the programme's threshold needs a second member of
staff to approve it, because a manual credit is money out of the business with no
purchase behind it. Debits count too: a large wrong debit hurts a member as much.
"""

from __future__ import annotations

from dataclasses import dataclass

from memberhub.domain.errors import DomainError
from memberhub.domain.points_rules import InvalidRule


class SelfApproval(DomainError):
    """The person who requested an adjustment may not also approve it."""

    code = "self_approval"


@dataclass(frozen=True, slots=True)
class AdjustPolicy:
    approval_threshold: int | None = 1000  # |points| above this need approval; None = never

    def __post_init__(self) -> None:
        if self.approval_threshold is not None and self.approval_threshold < 0:
            raise InvalidRule("approval_threshold must be >= 0")


def adjust_needs_approval(*, points: int, policy: AdjustPolicy) -> bool:
    """True when an adjustment of ``points`` (credit > 0, debit < 0) needs a second approver.

    "Above" is strict: with threshold 1000, an adjustment of exactly 1000 goes through.
    """
    return policy.approval_threshold is not None and abs(points) > policy.approval_threshold


def adjust_approval_check(*, requested_by: str, approved_by: str) -> None:
    """Refuse an approval by the requester themselves (``SelfApproval``)."""
    if requested_by == approved_by:
        raise SelfApproval("an adjustment must be approved by another staff member", staff=requested_by)
