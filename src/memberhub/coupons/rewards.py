"""积分商城: rewards, exchanges (points and stock taken atomically), fulfilment.

An exchange locks the member row (so the per-member and per-period counts cannot race),
asks ``reward_exchange_check``, claims stock with ``stock_left >= q``, and spends points
through the loyalty seam, all in one transaction. Cancelling returns both.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from memberhub.access import store_scope
from memberhub.access.principal import Principal
from memberhub.access.roles import Cap
from memberhub.audit.services import audit_record
from memberhub.core.errors import ApplicationError, Conflict, NotFound, ValidationFailed
from memberhub.core.messages import DOMAIN_MESSAGES
from memberhub.coupons import seams
from memberhub.coupons.models import Reward, RewardOrder
from memberhub.domain import rewards as rules
from memberhub.members.models import Member
from memberhub.stores.models import Store

UNLIMITED_POINTS = 10**12  # the seam spends for real; the check only needs the balance when known
_REFUSALS = {
    "invalid_quantity": _("The quantity is not valid."),
    "not_available_yet": _("This reward is not available yet."),
    "no_longer_available": _("This reward is no longer available."),
    "out_of_stock": _("This reward is out of stock."),
    "member_limit_reached": _("The member has exchanged this reward as often as allowed."),
    "period_limit_reached": _("The member has reached this reward's limit for the period."),
}
MUTABLE = frozenset({"name", "description", "images", "stock_left", "per_member_limit", "period_limit_count",
                     "period_limit_period", "tiers", "available_from", "available_until", "is_active",
                     "points_price", "cash_fen"})


class ExchangeRefused(ApplicationError):
    status = 409
    code = "exchange_refused"


def reward_to_domain(r: Reward) -> rules.RewardItem:
    period = (rules.PeriodLimit(count=r.period_limit_count, period=rules.LimitPeriod(r.period_limit_period))
              if r.period_limit_count and r.period_limit_period else None)
    return rules.RewardItem(reward_id=str(r.pk or 0), points_price=r.points_price, cash_fen=r.cash_fen,
                            stock=r.stock_left, per_member_limit=r.per_member_limit, period_limit=period,
                            tiers=frozenset(r.tiers), available_from=r.available_from,
                            available_until=r.available_until)


def _view(r: Reward) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v)
            for k, v in ((f.attname, getattr(r, f.attname)) for f in Reward._meta.concrete_fields)}


def reward_create(*, actor: Principal, values: dict[str, Any]) -> Reward:
    actor.require(Cap.REWARDS_MANAGE)
    reward = Reward(**values)
    if bool(reward.period_limit_count) != bool(reward.period_limit_period):
        raise ValidationFailed(_("A period limit needs both a count and a period."), code="period_limit_incomplete")
    reward_to_domain(reward)
    with transaction.atomic():
        reward.save()
        audit_record(actor=actor, action="reward.create", target=reward, after=_view(reward))
    return reward


def reward_update(*, actor: Principal, reward_id: int, changes: dict[str, Any]) -> Reward:
    actor.require(Cap.REWARDS_MANAGE)
    with transaction.atomic():
        reward = Reward.objects.select_for_update().filter(pk=reward_id).first()
        if reward is None:
            raise NotFound(_("No such reward."), code="reward_not_found")
        before = _view(reward)
        for key, value in changes.items():
            if key in MUTABLE:
                setattr(reward, key, value)
        reward_to_domain(reward)
        reward.save()
        audit_record(actor=actor, action="reward.update", target=reward, before=before, after=_view(reward), diff=True)
    return reward


def _counts(reward: Reward, member_id: int, now: datetime) -> tuple[int, int]:
    live = RewardOrder.objects.filter(reward=reward, member_id=member_id).exclude(status=RewardOrder.Status.CANCELLED)
    total = live.aggregate(n=Sum("quantity"))["n"] or 0
    in_period = 0
    if reward.period_limit_count and reward.period_limit_period:
        start, end = rules.limit_period_window(period=rules.LimitPeriod(reward.period_limit_period),
                                               now=timezone.localtime(now))
        in_period = live.filter(created_at__gte=start, created_at__lt=end).aggregate(n=Sum("quantity"))["n"] or 0
    return total, in_period


def reward_exchange(*, actor: Principal, reward_id: int, member_id: int, quantity: int = 1,
                    store: str | None = None, now: datetime | None = None) -> RewardOrder:
    actor.require(Cap.REWARDS_EXCHANGE)
    now = now or timezone.now()
    the_store = None
    if store is not None:
        the_store = Store.objects.filter(code=store).first()
        if the_store is None:
            raise ValidationFailed(_("Unknown store."), code="store_not_found")
        actor.require_store(the_store.pk)
    with transaction.atomic():
        member = Member.objects.select_for_update(of=("self",)).filter(pk=member_id).first()
        if member is None or (the_store is None and not actor.sees_store(member.home_store_id)):
            raise NotFound(_("No such member."), code="member_not_found")
        if member.status != Member.Status.ACTIVE:
            raise Conflict(_("This member cannot exchange rewards now."), code="member_not_active",
                           detail={"status": member.status})
        reward = Reward.objects.filter(pk=reward_id, is_active=True).first()
        if reward is None:
            raise NotFound(_("No such reward."), code="reward_not_found")
        total, in_period = _counts(reward, member_id, now)
        outcome = rules.reward_exchange_check(
            item=reward_to_domain(reward), member_tier=seams.member_tier_code(member_id),
            points_balance=UNLIMITED_POINTS, now=timezone.localtime(now), quantity=quantity,
            exchanged_by_member=total, exchanged_in_period=in_period)
        if isinstance(outcome, rules.ExchangeRefusal):
            message = _REFUSALS.get(str(outcome.code)) or DOMAIN_MESSAGES.get(str(outcome.code)) or str(outcome.code)
            raise ExchangeRefused(message, code=str(outcome.code), detail=dict(outcome.params))
        if reward.stock_left is not None:
            taken = Reward.objects.filter(pk=reward.pk, stock_left__gte=quantity).update(
                stock_left=F("stock_left") - quantity)
            if not taken:
                raise ExchangeRefused(_REFUSALS["out_of_stock"], code="out_of_stock", detail={"stock_left": 0})
        order = RewardOrder.objects.create(reward=reward, member_id=member_id, quantity=quantity,
                                           points_total=outcome.points_total, cash_fen_total=outcome.cash_fen_total,
                                           store=the_store, created_at=now)
        order.points_ref = seams.points_spend_for(member_id=member_id, points=outcome.points_total,
                                                  reason=f"reward:{reward.pk}", ref=f"reward-order:{order.pk}")
        order.save(update_fields=["points_ref"])
        audit_record(actor=actor, action="reward.exchange", target=order,
                     after={"reward_id": reward.pk, "member_id": member_id, "quantity": quantity,
                            "points": outcome.points_total, "cash_fen": outcome.cash_fen_total})
    return order


def reward_order_move(*, actor: Principal, order_id: int, status: str, tracking_no: str = "",
                      reason: str = "") -> RewardOrder:
    """Fulfilment: pending → shipped → delivered | picked_up; cancel returns points and stock."""
    actor.require(Cap.REWARDS_EXCHANGE if status == RewardOrder.Status.PICKED_UP else Cap.REWARDS_MANAGE)
    with transaction.atomic():
        order = RewardOrder.objects.select_for_update().filter(pk=order_id).first()
        # the order is its store's (where it is picked up), else its member's home store's
        if order is None or not store_scope.may_act_on_record(actor, order.store_id, Member.objects.filter(
                pk=order.member_id).values_list("home_store_id", flat=True).first()):
            raise NotFound(_("No such reward order."), code="reward_order_not_found")
        try:
            target = rules.FulfilmentStatus(status)
        except ValueError:
            raise ValidationFailed(_("Unknown status."), code="invalid_status") from None
        move = rules.fulfilment_transition(current=rules.FulfilmentStatus(order.status), target=target)
        if move.restock:
            Reward.objects.filter(pk=order.reward_id, stock_left__isnull=False).update(
                stock_left=F("stock_left") + order.quantity)
        if move.return_points:
            seams.points_return_for(member_id=order.member_id, points=order.points_total,
                                    reason=f"reward-cancel:{order.reward_id}", ref=f"reward-order:{order.pk}")
        before = {"status": order.status}
        order.status = move.status.value
        if tracking_no:
            order.tracking_no = tracking_no
        order.save(update_fields=["status", "tracking_no", "updated_at"])
        audit_record(actor=actor, action="reward.order_move", target=order, before=before,
                     after={"status": order.status, "tracking_no": order.tracking_no}, reason=reason)
    return order


def reward_orders(*, actor: Principal, member_id: int | None = None, status: str | None = None) -> Any:
    if not actor.can(Cap.REWARDS_MANAGE):
        actor.require(Cap.REWARDS_EXCHANGE)
    qs = RewardOrder.objects.select_related("reward")
    if actor.store_ids is not None:
        qs = qs.filter(Q(member__home_store_id__in=actor.store_ids) | Q(store_id__in=actor.store_ids))
    if member_id is not None:
        qs = qs.filter(member_id=member_id)
    if status:
        qs = qs.filter(status=status)
    return qs
