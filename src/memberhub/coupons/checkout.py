"""Coupons at the till: price a basket, redeem with the order, restore on a whole refund.

``coupons_redeem_for_order`` and ``coupons_restore_for_refund`` are the seams the purchase
service calls inside its own transaction: everything here runs in ``transaction.atomic()``,
so it commits or rolls back with the purchase. Exactly-k uses is the conditional UPDATE
``uses_left = uses_left - 1 WHERE uses_left >= 1`` (row count checked), backed by
``CheckConstraint(uses_left >= 0)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from memberhub.access import store_scope
from memberhub.access.principal import Principal, system_principal
from memberhub.access.roles import Cap
from memberhub.audit.services import audit_record
from memberhub.core.errors import ApplicationError, Conflict, NotFound, ValidationFailed
from memberhub.core.messages import DOMAIN_MESSAGES
from memberhub.coupons import seams
from memberhub.coupons.models import Coupon, CouponRedemption, CouponRedemptionReversal, CouponTemplate
from memberhub.coupons.templates import template_to_domain
from memberhub.domain import coupon_rules as rules
from memberhub.domain.coupon_codes import code_normalize, code_verify
from memberhub.domain.coupon_stack import (
    BasketPricing,
    CouponOffer,
    PricedLine,
    TierDiscount,
    basket_price,
    basket_price_best,
    coupon_restore_decide,
)
from memberhub.domain.coupon_validate import CouponDiscount
from memberhub.domain.member_status import Act
from memberhub.members.models import Member
from memberhub.members.services import member_act_check
from memberhub.stores.models import Store

MAX_CODES = 20


@dataclass(frozen=True)
class LineIn:
    line_id: str
    sku: str
    unit_price_fen: int
    qty: int
    category: str = ""
    tier_discountable: bool = True


@dataclass(frozen=True)
class BasketIn:
    lines: tuple[LineIn, ...]
    shipping_fee_fen: int = 0
    # the member's tier price as ‰ of the list price paid (金卡8折 = 800, none = 1000): the
    # programme's `discount_permille`, one unit for a tier discount across the API
    tier_discount_permille: int = 1000


def basket_in(value: BasketIn | Mapping[str, Any]) -> BasketIn:
    """Accept our dataclass or a plain mapping (what the purchase service may hold)."""
    if isinstance(value, BasketIn):
        return value
    lines = tuple(line if isinstance(line, LineIn) else LineIn(**line) for line in value.get("lines", ()))
    return BasketIn(lines=lines, shipping_fee_fen=int(value.get("shipping_fee_fen", 0)),
                    tier_discount_permille=int(value.get("tier_discount_permille", 1000)))


@dataclass
class Priced:
    pricing: BasketPricing
    coupons: dict[str, Coupon]  # by str(pk)
    unknown: list[dict[str, Any]] = field(default_factory=list)
    basket: BasketIn | None = None

    def refused(self) -> list[dict[str, Any]]:
        out = list(self.unknown)
        for r in self.pricing.refused:
            out.append({"code": self.coupons[r.coupon_id].code, "reason": str(r.code), "params": dict(r.params),
                        "message": str(DOMAIN_MESSAGES.get(str(r.code), str(r.code)))})
        return out

    def as_dict(self) -> dict[str, Any]:
        p = self.pricing
        code_of = {cid: c.code for cid, c in self.coupons.items()}
        return {
            "goods_gross_fen": p.goods_gross_fen, "tier_discount_fen": p.tier_discount_fen,
            "coupon_discount_fen": sum(d.amount_fen for d in p.applied), "discount_fen": p.discount_fen,
            "shipping_fee_fen": p.shipping_fee_fen, "shipping_discount_fen": p.shipping_discount_fen,
            "payable_fen": p.payable_fen,
            "lines": [{"line_id": ln.line_id, "gross_fen": ln.gross_fen, "tier_discount_fen": ln.tier_discount_fen,
                       "coupon_discount_fen": ln.coupon_discount_fen, "net_fen": ln.net_fen,
                       "coupons": {code_of[s.coupon_id]: s.amount_fen for s in ln.coupon_shares}} for ln in p.lines],
            "applied": [_applied(d, self.coupons[d.coupon_id]) for d in p.applied],
            "refused": self.refused(),
        }


def _applied(d: CouponDiscount, coupon: Coupon) -> dict[str, Any]:
    return {"code": coupon.code, "coupon_id": coupon.pk, "template_id": coupon.template_id, "kind": str(d.kind),
            "amount_fen": d.amount_fen, "shipping_fen": d.shipping_fen,
            "lines": {a.line_id: a.amount_fen for a in d.allocations}}


def _state(c: Coupon) -> rules.CouponState:
    status = {"used": rules.CouponStatus.USED, "revoked": rules.CouponStatus.REVOKED}.get(
        str(c.status), rules.CouponStatus.AVAILABLE)  # "expired" is told by the window
    if c.uses_left <= 0:
        status = rules.CouponStatus.USED
    return rules.CouponState(coupon_id=str(c.pk), template_id=str(c.template_id), valid_from=c.valid_from,
                             valid_until=c.valid_until, status=status,
                             owner_member_id=str(c.member_id) if c.member_id else None)


def _store(store_id: int | None) -> Store | None:
    if store_id is None:
        return None
    store = Store.objects.filter(pk=store_id).first()
    if store is None:
        raise ValidationFailed(_("Unknown store."), code="store_not_found", detail={"store_id": store_id})
    return store


def _domain_basket(basket: BasketIn, store: Store | None, channel: str) -> rules.Basket:
    if channel not in ("online", "offline"):
        raise ValidationFailed(_("Unknown channel."), code="invalid_channel", detail={"channel": channel})
    return rules.Basket(
        lines=tuple(rules.BasketLine(line_id=ln.line_id, sku=ln.sku, category=ln.category,
                                     unit_price_fen=ln.unit_price_fen, quantity=ln.qty,
                                     tier_discountable=ln.tier_discountable) for ln in basket.lines),
        store_id=store.code if store else "", channel=rules.Channel(channel), shipping_fee_fen=basket.shipping_fee_fen)


def coupons_price(*, member_id: int | None, codes: Sequence[str], basket: BasketIn | Mapping[str, Any],
                  channel: str, store_id: int | None, now: datetime, best: bool = False,
                  order_no: str | None = None) -> Priced:
    """Price the basket with these coupons; unknown codes and refusals are listed, never raised."""
    if len(codes) > MAX_CODES:
        raise ValidationFailed(_("Too many coupon codes."), code="too_many_codes", detail={"max": MAX_CODES})
    basket = basket_in(basket)
    store = _store(store_id)
    domain_basket = _domain_basket(basket, store, channel)
    normalized = [code_normalize(c) for c in codes]
    found = {c.code: c for c in Coupon.objects.select_related("template").filter(code__in=normalized)}
    unknown = [{"code": c, "reason": "coupon_not_found", "params": {"format": code_verify(code=c).reason or "ok"},
                "message": str(DOMAIN_MESSAGES["coupon_not_found"])} for c in normalized if c not in found]
    if member_id is not None:
        member = Member.objects.filter(pk=member_id).only("status").first()
        if member is None:
            raise NotFound(_("No such member."), code="member_not_found")
        if member.status not in (Member.Status.ACTIVE, Member.Status.FROZEN):
            raise Conflict(_("This member was erased or merged."), code="member_not_live")
    needs_tier = any(c.template.tiers for c in found.values())
    needs_first = any(c.template.first_purchase_only for c in found.values())
    tier = seams.member_tier_code(member_id) if member_id is not None and needs_tier else seams.DEFAULT_TIER
    first = member_id is not None and needs_first and not seams.member_has_purchases(
        member_id, channel=channel, order_no=order_no)
    member_ctx = rules.MemberContext(member_id=str(member_id or ""), tier=tier, is_first_purchase=first)
    templates: dict[int, rules.CouponTemplate] = {}
    offers = []
    for code in normalized:
        c = found.get(code)
        if c is None:
            continue
        if c.template_id not in templates:
            templates[c.template_id] = template_to_domain(c.template)
        offers.append(CouponOffer(template=templates[c.template_id], coupon=_state(c),
                                  budget_spent_fen=c.template.budget_spent_fen))
    off_bp = (1000 - basket.tier_discount_permille) * 10  # the pricing rules take what is taken off, in bp
    tier_discount = TierDiscount(tier=tier, percent_off_bp=off_bp) if off_bp > 0 else None
    price = basket_price_best if best else basket_price
    pricing = price(basket=domain_basket, member=member_ctx, now=now, offers=offers, tier_discount=tier_discount)
    return Priced(pricing=pricing, coupons={str(c.pk): c for c in found.values()}, unknown=unknown, basket=basket)


def coupons_validate(*, actor: Principal, member_id: int | None, codes: Sequence[str],
                     basket: BasketIn | Mapping[str, Any], channel: str, store_id: int | None,
                     now: datetime | None = None, best: bool = False) -> dict[str, Any]:
    actor.require(Cap.COUPONS_READ)
    if store_id is not None:
        actor.require_store(store_id)
    _serving(actor, member_id, store_id)
    return coupons_price(member_id=member_id, codes=codes, basket=basket, channel=channel, store_id=store_id,
                         now=now or timezone.now(), best=best).as_dict()


class CouponNotApplicable(ApplicationError):
    status = 422
    code = "coupon_not_applicable"
    default_message = _("A coupon does not apply to this order.")


def _serving(actor: Principal, member_id: int | None, store_id: int | None) -> None:
    """A store-scoped caller uses a member's coupons for its own members, or for anyone at one
    of its stores; bearer coupons (no member) only at one of its stores."""
    if actor.store_ids is None:
        return
    if member_id is None:
        if store_id is None:
            raise ValidationFailed(_("Name the store of the order."), code="store_required")
        return
    home = Member.objects.filter(pk=member_id).values_list("home_store_id", flat=True).first()
    if home is not None or Member.objects.filter(pk=member_id).exists():
        store_scope.require_serve(actor, home, store_id)


def _order_in_scope(actor: Principal, rows: Sequence[CouponRedemption]) -> bool:
    return all(store_scope.may_act_on_record(actor, r.store_id, r.member.home_store_id if r.member else None)
               for r in rows)


def _replay(redemptions: Iterable[CouponRedemption]) -> dict[str, Any]:
    rows = list(redemptions)
    return {"replayed": True, "coupon_discount_fen": sum(r.amount_fen for r in rows),
            "applied": [{"code": r.coupon.code, "coupon_id": r.coupon_id, "template_id": r.template_id,
                         "amount_fen": r.amount_fen, "shipping_fen": r.shipping_fen, "lines": r.allocations}
                        for r in rows]}


def _rows(pricing: BasketPricing, *, member_id: int | None, channel: str, order_no: str, store_id: int | None,
          now: datetime) -> list[CouponRedemption]:
    line_ids = [ln.line_id for ln in pricing.lines]
    return [CouponRedemption(coupon_id=int(d.coupon_id), template_id=int(d.template_id), member_id=member_id,
                             channel=channel, order_no=order_no, store_id=store_id, amount_fen=d.amount_fen,
                             shipping_fen=d.shipping_fen, allocations={a.line_id: a.amount_fen for a in d.allocations},
                             order_line_ids=line_ids, order_sales_fen=pricing.goods_net_fen, redeemed_at=now)
            for d in pricing.applied]


def coupons_redeem_for_order(*, actor: Principal, member_id: int | None, codes: Sequence[str],
                             basket: BasketIn | Mapping[str, Any], channel: str, store_id: int | None,
                             order_no: str, now: datetime | None = None) -> dict[str, Any]:
    """Use every coupon in ``codes`` on this order, or none (422 with the reasons / 409 if raced).

    Idempotent per (channel, order_no, coupon): the same order with the same coupons answers
    the first result again; a different set of coupons on an order already redeemed is 409.
    """
    actor.require(Cap.COUPONS_REDEEM)
    if store_id is not None:
        actor.require_store(store_id)
    _serving(actor, member_id, store_id)
    if not order_no or len(order_no) > 64:
        raise ValidationFailed(_("An order number of 1 to 64 characters is required."), code="invalid_order_no")
    now = now or timezone.now()
    normalized = sorted({code_normalize(c) for c in codes})
    if not normalized:
        raise ValidationFailed(_("Give at least one coupon code."), code="codes_required")
    with transaction.atomic():
        if member_id is not None:  # a frozen member redeems no coupon (409 member_frozen)
            member_act_check(member_id, Act.REDEEM_COUPON)
        earlier = list(CouponRedemption.objects.select_related("coupon", "reversal", "member")
                       .filter(channel=channel, order_no=order_no).order_by("pk"))
        if earlier and not _order_in_scope(actor, earlier):  # another store's order: say nothing of it
            raise Conflict(_("This order already has coupons redeemed or restored."), code="order_already_redeemed")
        if earlier:
            live = [r for r in earlier if not _reversed(r)]
            if sorted(r.coupon.code for r in live) == normalized and all(r.member_id == member_id for r in live):
                return _replay(live)
            raise Conflict(_("This order already has coupons redeemed or restored."), code="order_already_redeemed",
                           detail={"codes": sorted(r.coupon.code for r in earlier)})
        priced = coupons_price(member_id=member_id, codes=normalized, basket=basket, channel=channel,
                               store_id=store_id, now=now, order_no=order_no)
        if priced.unknown or priced.pricing.refused:
            raise CouponNotApplicable(detail={"refused": priced.refused()})
        pricing = priced.pricing
        for d in pricing.applied:
            coupon = priced.coupons[d.coupon_id]
            used = Coupon.objects.filter(pk=coupon.pk, uses_left__gte=1, status=Coupon.Status.AVAILABLE).update(
                uses_left=F("uses_left") - 1,
                status=Case(When(uses_left=1, then=Value(Coupon.Status.USED)), default=F("status")))
            if not used:
                raise Conflict(DOMAIN_MESSAGES["already_used"], code="coupon_already_used",
                               detail={"code": coupon.code})
            if coupon.template.budget_fen is not None:
                spent = CouponTemplate.objects.filter(
                    pk=coupon.template_id, budget_spent_fen__lte=F("budget_fen") - d.amount_fen
                ).update(budget_spent_fen=F("budget_spent_fen") + d.amount_fen)
                if not spent:
                    raise CouponNotApplicable(DOMAIN_MESSAGES["budget_exhausted"], code="budget_exhausted",
                                              detail={"code": coupon.code})
        try:
            with transaction.atomic():
                CouponRedemption.objects.bulk_create(_rows(pricing, member_id=member_id, channel=channel,
                                                           order_no=order_no, store_id=store_id, now=now))
        except IntegrityError:  # the same order raced us and won: the first result stands
            raise Conflict(_("This order already has coupons redeemed or restored."),
                           code="order_already_redeemed") from None
        result = priced.as_dict()
        audit_record(actor=actor, action="coupon.redeem", target_type="coupons.order", target_id=f"{channel}:{order_no}",
                     after={"member_id": member_id, "codes": normalized, "discount_fen": result["coupon_discount_fen"]})
    return {"replayed": False, **result}


def _reversed(r: CouponRedemption) -> bool:
    try:
        r.reversal  # noqa: B018  (the reverse one-to-one raises when absent)
    except CouponRedemptionReversal.DoesNotExist:
        return r.status == CouponRedemption.Status.RESTORED  # written before reversals existed
    return True


def coupons_restore_for_refund(*, channel: str, order_no: str, now: datetime | None = None,
                               refunded_line_ids: Sequence[str] | None = None,
                               actor: Principal | None = None, refund_ref: str = "") -> list[dict[str, Any]]:
    """退券: give the order's coupons back when the whole order is refunded and they are still valid.

    ``refunded_line_ids`` is every line refunded so far (this refund included); None = the
    whole order. Append-only: a restore adds a ``CouponRedemptionReversal`` (one per
    redemption, unique) and gives the use back with a conditional UPDATE; the redemption row
    is never changed. Idempotent: a coupon already restored is reported, not restored twice.
    """
    actor = actor or system_principal("refund")
    actor.require(Cap.COUPONS_REDEEM)
    now = now or timezone.now()
    with transaction.atomic():
        # the lock serialises two restores of one order; the unique reversal is the backstop
        rows = list(CouponRedemption.objects.select_for_update(of=("self",))
                    .select_related("coupon", "template", "reversal", "member")
                    .filter(channel=channel, order_no=order_no).order_by("pk"))
        if not rows or not _order_in_scope(actor, rows):  # another store's order answers as none
            return []
        done = {r.pk for r in rows if _reversed(r)}
        line_ids = list(rows[0].order_line_ids)
        pricing = BasketPricing(
            lines=tuple(PricedLine(line_id=i, gross_fen=0, tier_discount_fen=0, coupon_shares=(), net_fen=0)
                        for i in line_ids),
            applied=tuple(CouponDiscount(coupon_id=str(r.coupon_id), template_id=str(r.template_id),
                                         kind=rules.CouponKind(r.template.kind), amount_fen=r.amount_fen)
                          for r in rows if r.pk not in done),
            refused=(), tier_discount_fen=0, shipping_fee_fen=0, shipping_discount_fen=0)
        decisions = {d.coupon_id: d for d in coupon_restore_decide(
            pricing=pricing, refunded_line_ids=line_ids if refunded_line_ids is None else refunded_line_ids,
            coupons=[_state(r.coupon) for r in rows], now=now)}
        out = []
        for r in rows:
            if r.pk in done:
                out.append({"code": r.coupon.code, "restored": True, "reason": "already_restored"})
                continue
            d = decisions[str(r.coupon_id)]
            restored = d.restored and Coupon.objects.filter(
                Q(status=Coupon.Status.USED) | Q(status=Coupon.Status.AVAILABLE),
                pk=r.coupon_id, uses_left__lt=F("uses_total"),
            ).update(uses_left=F("uses_left") + 1, status=Coupon.Status.AVAILABLE) == 1
            if restored:
                try:
                    with transaction.atomic():
                        CouponRedemptionReversal.objects.create(
                            redemption=r, coupon_id=r.coupon_id, template_id=r.template_id, channel=channel,
                            order_no=order_no, amount_fen=r.amount_fen, reason=str(d.reason), refund_ref=refund_ref,
                            actor_label=actor.label, at=now)
                except IntegrityError:  # reversed meanwhile: undo our give-back by failing the whole restore
                    raise Conflict(_("The coupons of this order changed meanwhile; try again."),
                                   code="coupon_concurrent_change") from None
                if r.template.budget_fen is not None and r.amount_fen:
                    CouponTemplate.objects.filter(pk=r.template_id, budget_spent_fen__gte=r.amount_fen).update(
                        budget_spent_fen=F("budget_spent_fen") - r.amount_fen)
            reason = d.reason if restored or not d.restored else "revoked"
            out.append({"code": r.coupon.code, "restored": restored, "reason": str(reason)})
        audit_record(actor=actor, action="coupon.restore", target_type="coupons.order",
                     target_id=f"{channel}:{order_no}", after={"decisions": out})
    return out
