import pytest

from memberhub.domain.points_adjust import (
    AdjustPolicy,
    SelfApproval,
    adjust_approval_check,
    adjust_needs_approval,
)
from memberhub.domain.points_rules import InvalidRule


def test_it_needs_approval_only_above_the_threshold():
    policy = AdjustPolicy(approval_threshold=1000)
    assert not adjust_needs_approval(points=1000, policy=policy)
    assert adjust_needs_approval(points=1001, policy=policy)


def test_it_treats_large_debits_like_large_credits():
    assert adjust_needs_approval(points=-5000, policy=AdjustPolicy(approval_threshold=1000))


def test_it_never_needs_approval_without_a_threshold():
    assert not adjust_needs_approval(points=10**9, policy=AdjustPolicy(approval_threshold=None))


def test_it_needs_approval_for_everything_with_a_zero_threshold():
    assert adjust_needs_approval(points=1, policy=AdjustPolicy(approval_threshold=0))


def test_it_refuses_self_approval():
    with pytest.raises(SelfApproval):
        adjust_approval_check(requested_by="staff-1", approved_by="staff-1")
    adjust_approval_check(requested_by="staff-1", approved_by="staff-2")


def test_it_refuses_a_negative_threshold():
    with pytest.raises(InvalidRule):
        AdjustPolicy(approval_threshold=-1)
