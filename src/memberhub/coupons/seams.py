"""The seams to the loyalty engine, in ONE place (the engine is being built concurrently).

Each function tries the loyalty app first and falls back to a safe answer, so coupons,
rewards and the wallet work before the engine lands and switch over when it does:

- ``member_tier_code``: the member's current tier code; "normal" (普通) until loyalty answers.
- ``member_has_purchases``: has the member bought anything? Falls back to our own redemption
  records (a member who has used a coupon on an order has purchased).
- ``points_spend_for`` / ``points_return_for``: move points through the loyalty ledger
  (``points.points_redeem`` / ``points.points_return``) inside the caller's transaction;
  without a loyalty service they refuse with ``points_unavailable`` (409), never silently
  skip the points.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from django.core.exceptions import FieldError
from django.utils.translation import gettext_lazy as _

from memberhub.core.errors import ApplicationError

DEFAULT_TIER = "normal"


def _loyalty(module: str, *names: str) -> Callable[..., Any] | None:
    try:
        mod = importlib.import_module(f"memberhub.loyalty.{module}")
    except ImportError:
        return None
    for name in names:
        fn = getattr(mod, name, None)
        if callable(fn):
            return fn
    return None


def member_tier_code(member_id: int) -> str:
    fn = _loyalty("selectors", "member_tier_code", "member_tier")
    if fn is not None:
        tier = fn(member_id=member_id)
        code = getattr(tier, "code", tier)
        return str(code) if code else DEFAULT_TIER
    try:  # the engine keeps the tier on its points account (override first)
        from memberhub.loyalty.models import PointsAccount

        row = PointsAccount.objects.filter(member_id=member_id).values_list("override_tier", "tier").first()
    except (ImportError, AttributeError, FieldError):
        return DEFAULT_TIER
    return (row[0] or row[1]) if row else DEFAULT_TIER


def member_has_purchases(member_id: int, *, channel: str | None = None, order_no: str | None = None) -> bool:
    """Any purchase before this one? ``channel``/``order_no`` name the order being paid, so a
    purchase service that records the order before redeeming its coupons is not counted."""
    fn = _loyalty("selectors", "member_has_purchases")
    if fn is not None:
        return bool(fn(member_id=member_id))
    from memberhub.coupons.models import CouponRedemption

    if CouponRedemption.objects.filter(member_id=member_id).exclude(channel=channel, order_no=order_no).exists():
        return True
    try:
        from memberhub.loyalty.models import Purchase

        return Purchase.objects.filter(member_id=member_id).exclude(channel=channel, order_no=order_no).exists()
    except (ImportError, AttributeError, FieldError):
        return False


class PointsUnavailable(ApplicationError):
    status = 409
    code = "points_unavailable"
    default_message = _("Points cannot be spent or returned yet: the points ledger is not available.")


def points_spend_for(*, member_id: int, points: int, reason: str, ref: str) -> str:
    """Spend ``points`` from the member's points ledger; returns the ledger's reference.

    Must run inside the caller's transaction so the points and the coupon/reward commit or
    roll back together.
    """
    fn = _loyalty("services", "points_spend_for")
    if fn is not None:
        result = fn(member_id=member_id, points=points, reason=reason, ref=ref)
        return str(getattr(result, "pk", None) or result or ref)
    redeem = _loyalty("points", "points_redeem")  # loyalty's "spend against a reward"
    if redeem is None:
        raise PointsUnavailable()
    from memberhub.access.principal import system_principal

    # no reason: the redeem entries then carry ``ref`` as theirs, which is how
    # ``points_return`` finds the lots they drew and gives the points back to them
    redeem(actor=system_principal(f"coupons:{reason}"), points=points, member_id=member_id, reference=ref)
    return ref


def points_return_for(*, member_id: int, points: int, reason: str, ref: str) -> str:
    """Give back points spent earlier under ``ref``: ``loyalty.points.points_return`` restores
    the lots the spend drew (reversing entries), once per ``ref``."""
    fn = _loyalty("points", "points_return")
    if fn is None:
        raise PointsUnavailable()
    from memberhub.access.principal import system_principal

    fn(actor=system_principal(f"coupons:{reason}"), member_id=member_id, points=points, reason=reason, reference=ref)
    return ref
